#!/usr/bin/env bash
# `make demo` as a new user runs it: a quiet build, then the sample store in
# summary form with its PIN and a verify-integrity report; no make or
# asn1Parser noise, no attribute hex dump.
set -u
. "$(dirname "$0")/lib.sh"
need make cmake
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
out=$(cd "$src" && make demo BUILD="$build" 2>&1)
rc=$?
check "make demo succeeds (exit $rc)" [ "$rc" -eq 0 ]
lines=$(wc -l <<<"$out")
check "make demo prints a page, not a dump ($lines lines)" [ "$lines" -le 60 ]
check "no 'Entering directory' lines" bash -c '! grep -q "Entering directory" <<<"$1"' _ "$out"
check "no stray 'Done.' from asn1Parser" bash -c '! grep -qx "Done\." <<<"$1"' _ "$out"
check "no attribute lines (summary form)" bash -c '! grep -q "CKA_[A-Z_]* *bytes" <<<"$1"' _ "$out"
check "the demo token, decrypted, one line per object" grep -q "private key RSA 2048 'imported-rsa-priv' id 06" <<<"$out"
check "the verify-integrity report" grep -q 'decrypted 39 of 39 encrypted values' <<<"$out"
check "the sample's one real finding" grep -q 'key.plaintext' <<<"$out"
check "no permission noise from the checkout's modes" bash -c '! grep -q "perm.exposed" <<<"$1"' _ "$out"
finish
