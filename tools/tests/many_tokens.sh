#!/usr/bin/env bash
# 200,000 token directories (each with only a token.lock): verify-integrity and dump --token must stay
# linear in the number of tokens. Attributing store findings to tokens used
# to compare every finding with every token (16.8 s at 32k directories,
# killed after 300 s at 200k); ctest's TIMEOUT for this test is the bound.
set -u
. "$(dirname "$0")/lib.sh"
need python3 jq
# tmpfs when there is one: making 200,000 directories on an overlay disk
# costs more than the run under test.
tmp=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=200000
python3 -c "
import os, sys
for i in range($n):
    d = os.path.join(sys.argv[1], 'd%06d' % i)
    os.mkdir(d, 0o700)
    os.close(os.open(os.path.join(d, 'token.lock'), os.O_CREAT | os.O_WRONLY, 0o600))
" "$tmp"

"$TOKENFS" verify-integrity --format json "$tmp" >"$tmp.json" 2>"$tmp.err"
rc=$?
check "verify-integrity reports the missing token.object (exit 1, got $rc)" [ "$rc" -eq 1 ]
tokens=$(jq '[.tokens[] | select(.store_findings == null)] | length' "$tmp.json")
check "verify-integrity reports every token ($tokens)" [ "$tokens" -eq "$n" ]
per=$(jq '[.tokens[] | select(.dir | endswith("/d123456")) | .findings[].code] | join(",")' "$tmp.json")
check "a token's findings are its own ($per)" [ "$per" = '"token.metadata-missing"' ]

"$TOKENFS" dump --token d123456 "$tmp" >"$tmp.out" 2>"$tmp.err"
check "dump --token reports one token's finding" \
  [ "$(grep -c 'token.metadata-missing' "$tmp.err")" -eq 1 ]
check "dump --token names the selected token" grep -q "/d123456 " "$tmp.out"
rm -f "$tmp.json" "$tmp.err" "$tmp.out"
finish
