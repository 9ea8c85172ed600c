#!/usr/bin/env bash
# Usage errors and I/O errors exit 2 with one line; help and version exit 0.
set -u
. "$(dirname "$0")/lib.sh"
store="$TFS_TESTDATA/store"

expect() { # expect RC ARGS...
  local want=$1; shift
  "$TOKENFS" "$@" >/dev/null 2>&1
  local rc=$?
  check "tokenfs $*: exit $rc, want $want" [ "$rc" -eq "$want" ]
}
expect 0 --help
expect 0 --version
expect 0 dump --help
expect 0 help
check "tokenfs help dump is dump --help" \
  [ "$("$TOKENFS" help dump)" = "$("$TOKENFS" dump --help)" ]
expect 2 help nosuchcommand
expect 2 verify "$TFS_TESTDATA/store"
check "a mistyped command gets the nearest one" \
  grep -q "did you mean 'verify-integrity'" <<<"$("$TOKENFS" verify x 2>&1)"
check "a far-off command gets no guess" \
  bash -c '! "$TOKENFS" zzzzzz 2>&1 | grep -q "did you mean"'
expect 2
expect 2 frobnicate
expect 2 dump
expect 2 dump --format xml "$store"
expect 2 dump --lock-timeout 0 "$store"
expect 2 dump /nonexistent/store
expect 2 dump "$TFS_TESTDATA/README.md"
expect 0 dump "$store"
expect 0 dump --format json "$store"
expect 0 dump --format softhsm --reveal "$store"
expect 2 dump --format softhsm "$store"   # key material as stored: needs --reveal

out=$("$TOKENFS" --version)
case "$out" in "tokenfs "[0-9]*) pass ;; *) fail "--version printed '$out'" ;; esac
err=$("$TOKENFS" dump /nonexistent/store 2>&1)
check "missing path names the path: $err" [ "$err" = "tokenfs: /nonexistent/store: No such file or directory" ]
"$TOKENFS" dump --help | grep -q -- '--format FMT'; check "dump --help documents --format" [ $? -eq 0 ]

# Selection: by label, by serial, by directory name, by uuid.
demo_dir=$(grep -l 'demo' "$store"/*/token.object | head -n1 | xargs dirname)
serial=$("$TOKENFS" dump --format json --token demo "$store" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"][0]["serial"])')
for sel in demo "$serial" "$(basename "$demo_dir")"; do
  n=$("$TOKENFS" dump --format json --token "$sel" "$store" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["tokens"]))')
  check "--token $sel selects one token (got $n)" [ "$n" = 1 ]
done
uuid=$(ls "$demo_dir" | grep -v '^token' | grep '\.object$' | head -n1 | sed 's/\.object$//')
n=$("$TOKENFS" dump --format json --object "$uuid" "$store" | python3 -c 'import json,sys; print(sum(len(t["objects"]) for t in json.load(sys.stdin)["tokens"]))')
check "--object selects one object (got $n)" [ "$n" = 1 ]
n=$("$TOKENFS" dump --format json --token nosuchtoken "$store" 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["tokens"]))')
check "--token with no match selects nothing (got $n)" [ "$n" = 0 ]
# ... and is an error, so that a typo never passes as a clean check.
expect 2 dump --token nosuchtoken "$store"
expect 2 verify-integrity --token nosuchtoken "$store"
expect 2 dump --object nosuchobject "$store"
# A usage error comes before any PIN is tried: with a wrong PIN, --seal-file
# over two tokens is reported as the usage error, and nothing is written.
sf=$(mktemp -u)
out=$(TFS_WRONG=wrong "$TOKENFS" verify-integrity --user-pin env:TFS_WRONG --seal --seal-file "$sf" "$store" 2>&1)
check "--seal-file with two tokens: the usage error, not the PIN ($out)" \
  bash -c 'grep -q "select one token" <<<"$1" && ! grep -qi "pin" <<<"$1"' _ "$out"
check "--seal-file with two tokens writes nothing" [ ! -e "$sf" ]
# A token directory without token.object is an error finding, not a pass.
work=$(mktemp -d)
mkdir -p "$work/s/tok" "$work/home/Documents" "$work/home/.cache" "$work/empty"
printf '\0\0\0\0\0\0\0\1' >"$work/s/tok/generation"
expect 1 verify-integrity --fail-on error "$work/s"
# A directory that holds no token at all is not a store: never a pass, and
# never each subdirectory of a home directory taken for a damaged token.
for cmd in dump verify-integrity; do
  for d in home empty; do
    expect 2 $cmd "$work/$d"
    check "$cmd $d: says it is not a token store" \
      grep -q "not a token store" <<<"$("$TOKENFS" $cmd "$work/$d" 2>&1)"
  done
done
rm -rf "$work"
# Hostile text in a store (terminal escapes, invalid UTF-8 in a label)
# reaches neither the terminal raw nor JSON invalid.
work=$(mktemp -d)
cp -a "$store" "$work/esc"
python3 - "$work"/esc/*/token.object <<'PY'
import sys
for p in sys.argv[1:]:
    b = bytearray(open(p, "rb").read())
    i = b.find(b"demo    ")
    if i >= 0:
        b[i:i + 20] = b"\x1b]0;PWN\x07\x1b[31mRED\xff\xfe  "
        open(p, "wb").write(bytes(b))
PY
for cmd in dump verify-integrity; do
  out=$("$TOKENFS" $cmd "$work/esc" 2>&1)
  if printf '%s' "$out" | grep -q $'\x1b'; then fail "$cmd: a raw escape reached the terminal"; else pass; fi
  check "$cmd: the label shows escaped" grep -qF 'x1b]0;PWN' <<<"$out"
  "$TOKENFS" $cmd --format json "$work/esc" 2>/dev/null | python3 -c 'import json,sys; json.load(sys.stdin)'
  check "$cmd --format json stays valid JSON with invalid UTF-8 in a label" [ $? -eq 0 ]
done
rm -rf "$work"
finish
