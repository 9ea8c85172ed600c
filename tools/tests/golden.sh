#!/usr/bin/env bash
# Golden output: exact stdout (and for malformed files, exact stderr) of the
# CLI on the committed fixtures, compared with tools/tests/golden/. After an
# intended change of output, run `golden.sh --update` and review the diff
# like code: every changed line is a change users see.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cd "$TFS_TESTDATA/.." || exit 1   # paths in the output are relative: testdata/...
export TFS_GOLDEN_PIN=user-pin-1 TFS_GOLDEN_PIN2=user-pin-2
cases=(
  "dump-store.txt|dump testdata/store"
  "dump-store.json|dump --format json testdata/store"
  "dump-demo-pin.txt|dump --token demo --user-pin env:TFS_GOLDEN_PIN testdata/store"
  "dump-demo-pin.json|dump --format json --token demo --user-pin env:TFS_GOLDEN_PIN testdata/store"
  "dump-second-pin.txt|dump --token second --user-pin env:TFS_GOLDEN_PIN2 testdata/store"
  "help.txt|--help"
  "dump-help.txt|dump --help"
  "verify-help.txt|verify-integrity --help"
)
update=${1:-}
for c in "${cases[@]}"; do
  name=${c%%|*}
  args=${c#*|}
  # shellcheck disable=SC2086
  out=$("$TOKENFS" $args 2>&1)
  if [ "$update" = --update ]; then
    printf '%s\n' "$out" >"$here/golden/$name"
    continue
  fi
  if [ "$out" = "$(cat "$here/golden/$name")" ]; then pass; else
    fail "tokenfs $args differs from golden/$name:"
    diff <(printf '%s\n' "$out") "$here/golden/$name" | head -20 >&2
  fi
done
# Every malformed fixture's exact error line.
out=$(for f in testdata/malformed/*.object; do "$TOKENFS" dump "$f" 2>&1 >/dev/null; done)
if [ "$update" = --update ]; then
  printf '%s\n' "$out" >"$here/golden/malformed.stderr"
  echo "golden files updated; review git diff tools/tests/golden"
  exit 0
fi
if [ "$out" = "$(cat "$here/golden/malformed.stderr")" ]; then pass; else
  fail "malformed errors differ from golden/malformed.stderr:"
  diff <(printf '%s\n' "$out") "$here/golden/malformed.stderr" | head -20 >&2
fi
finish
