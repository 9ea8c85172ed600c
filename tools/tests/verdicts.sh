#!/usr/bin/env bash
# Verdicts that must not be given on nothing, and messages and exit codes
# that agree: verify-integrity, --seal and --check-seal on an empty
# directory or a tokendir of symlinks (exit 2, not a pass); a PIN typed into
# a SPEC is never echoed; PIN blobs that open but hold the wrong length, or
# are empty or of the wrong kind, are called damaged; a file over the cap
# and an unreadable file give the same exit code in every command and
# format; one --lock-timeout for a whole run of locked files.
set -u
. "$(dirname "$0")/lib.sh"
need python3 setpriv
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill $locker 2>/dev/null; rm -rf "$work"' EXIT
locker=
fresh() { # a copy of the fixture store with SoftHSM's modes
  rm -rf "$work/store"
  cp -a "$TFS_TESTDATA/store" "$work/store"
  find "$work/store" -type d -exec chmod 0700 {} + && find "$work/store" -type f -exec chmod 0600 {} +
}
export UPIN=user-pin-1 SOPIN=so-secret-1
v() { "$TOKENFS" verify-integrity "$@"; }
demo_dir() { grep -l demo "$work/store"/*/token.object | head -n1 | xargs dirname; }

# ---- 2. no verdict on nothing ----
mkdir -p "$work/empty" "$work/links"
fresh
for d in "$work/store"/*/; do ln -s "$d" "$work/links/$(basename "$d")"; done
for where in empty links; do
  for args in "" "--user-pin env:UPIN --seal" "--user-pin env:UPIN --check-seal" "--format json"; do
    # shellcheck disable=SC2086
    v $args "$work/$where" >"$work/out" 2>"$work/err"; rc=$?
    check "verify $args on $where: exit $rc, want 2" [ $rc -eq 2 ]
    check "verify $args on $where: says nothing was verified" grep -q "not a token store" "$work/err"
  done
done
check "--seal on a tokendir of symlinks wrote no seal" [ -z "$(find "$work/store" -name tokenfs.seal)" ]
# --check-seal where no token has a seal, and where the selection is empty.
v --user-pin env:UPIN --check-seal --token demo "$work/store" >/dev/null 2>"$work/err"; rc=$?
check "--check-seal without a seal: exit $rc, want 2" [ $rc -eq 2 ]
v --user-pin env:UPIN --check-seal --token nosuch "$work/store" >/dev/null 2>"$work/err"; rc=$?
check "--check-seal matching no token: exit $rc, want 2" [ $rc -eq 2 ]
check "--check-seal matching no token: says so" grep -q "no token" "$work/err"

# ---- 10. a PIN typed into a SPEC is never echoed ----
for spec in "env:Typed-PIN-4711" "file:Typed-PIN-4711" "fd:47114711"; do
  for cmd in "dump" "verify-integrity"; do
    "$TOKENFS" $cmd --user-pin "$spec" "$work/store" >/dev/null 2>"$work/err"; rc=$?
    check "$cmd --user-pin $spec: exit $rc, want 2" [ $rc -eq 2 ]
    check "$cmd --user-pin $spec: the argument is not echoed ($(cat "$work/err"))" \
      bash -c "! grep -q 4711 '$work/err'"
  done
done

# ---- 10. PIN blobs: damaged, not "wrong PIN" or "never set" ----
fresh
demo=$(demo_dir)
python3 "$here/damage_value.py" --blob-length "$demo/token.object" UPIN
for cmd in dump verify-integrity; do
  "$TOKENFS" $cmd --user-pin env:UPIN --token demo "$work/store" >"$work/err" 2>&1
  check "$cmd: a blob that opens with the right PIN but holds 34 bytes is damaged ($(head -c 300 "$work/err"))" \
    grep -q "PIN blob damaged: the PIN opens it" "$work/err"
  check "$cmd: ... and not a wrong PIN" bash -c "! grep -q 'wrong user PIN' '$work/err'"
done
v --user-pin env:UPIN --token demo "$work/store" >/dev/null 2>&1; rc=$?
check "verify: damaged blob is a finding, exit $rc, want 1" [ $rc -eq 1 ]
fresh
demo=$(demo_dir)
python3 "$here/damage_value.py" --set "$demo/token.object" 0x8000534D ""
"$TOKENFS" dump --user-pin env:UPIN --token demo "$work/store" >/dev/null 2>"$work/err"; rc=$?
check "empty user blob: says it is empty ($(cat "$work/err"))" grep -q "user PIN blob of token 'demo' is empty" "$work/err"
check "empty user blob: not 'never set'" bash -c "! grep -q 'never set' '$work/err'"
check "empty user blob: dump exit $rc, want 1 (damage)" [ $rc -eq 1 ]
fresh
demo=$(demo_dir)
python3 "$here/damage_value.py" --kind "$demo/token.object" 0x8000534D
"$TOKENFS" dump --user-pin env:UPIN --token demo "$work/store" >/dev/null 2>"$work/err"
check "ulong user blob: says what is there ($(cat "$work/err"))" grep -q "is stored as a ulong" "$work/err"

# ---- 10. exit codes agree: over the cap, unreadable ----
# Each case: dump in three formats and verify-integrity; all must say 1.
# A damaged token.object has no label: select the token by its directory.
all_one() { # WHAT
  local what=$1 rc f sel
  sel=$(basename "$(demo_dir)")
  for f in text json softhsm; do
    # --reveal: softhsm output of files holding key material needs it.
    "$TOKENFS" dump --format $f --reveal --token "$sel" "$work/store" >/dev/null 2>&1; rc=$?
    check "$what: dump --format $f exit $rc, want 1" [ $rc -eq 1 ]
  done
  for f in text json; do
    v --format $f --fail-on error --token "$sel" "$work/store" >/dev/null 2>&1; rc=$?
    check "$what: verify --format $f exit $rc, want 1" [ $rc -eq 1 ]
  done
}
fresh
demo=$(demo_dir)
obj=$(ls "$demo"/*.object | grep -v token.object | head -n1)
truncate -s 70M "$obj"
all_one "an object over the 64 MiB cap"
fresh
demo=$(demo_dir)
truncate -s 70M "$demo/token.object"
all_one "token.object over the cap"
# Unreadable: root reads anything, so drop the capabilities that let it.
noread() { setpriv --inh-caps=-all --bounding-set=-dac_override,-dac_read_search "$@"; }
all_one_noread() {
  local what=$1 rc f sel
  sel=$(basename "$demo")
  for f in text json softhsm; do
    noread "$TOKENFS" dump --format $f --reveal --token "$sel" "$work/store" >/dev/null 2>&1; rc=$?
    check "$what: dump --format $f exit $rc, want 1" [ $rc -eq 1 ]
  done
  noread "$TOKENFS" verify-integrity --fail-on error --token "$sel" "$work/store" >/dev/null 2>&1; rc=$?
  check "$what: verify exit $rc, want 1" [ $rc -eq 1 ]
}
fresh
demo=$(demo_dir)
obj=$(ls "$demo"/*.object | grep -v token.object | head -n1)
chmod 000 "$obj"
all_one_noread "an unreadable object"
chmod 600 "$obj"
chmod 000 "$demo/token.object"
all_one_noread "an unreadable token.object"

# ---- 10. one lock budget for the run, exit 2 in dump and verify ----
fresh
demo=$(demo_dir)
python3 - "$demo" "$work/locked" <<'EOF' &
import fcntl, os, sys, time
fds = []
for name in sorted(os.listdir(sys.argv[1])):
    if name.endswith(".object") and name != "token.object":
        fd = os.open(os.path.join(sys.argv[1], name), os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        fds.append(fd)
open(sys.argv[2], "w").write(str(len(fds)))
time.sleep(120)
EOF
locker=$!
for _ in $(seq 100); do [ -s "$work/locked" ] && break; sleep 0.1; done
check "12 objects write-locked" [ "$(cat "$work/locked")" -ge 12 ]
for cmd in "dump" "dump --format json" "dump --format softhsm" "verify-integrity" "verify-integrity --user-pin env:UPIN"; do
  start=$(date +%s%N)
  $TOKENFS $cmd --lock-timeout 1000 --token demo "$work/store" >/dev/null 2>"$work/err"; rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  check "$cmd with $(cat "$work/locked") locked objects: exit $rc, want 2" [ $rc -eq 2 ]
  check "$cmd: one 1000 ms budget for the run, took $ms ms" [ $ms -lt 4000 ]
  check "$cmd: names the lock" grep -q "write-locked by another process" "$work/err"
done
# Two PATHs share the budget too.
start=$(date +%s%N)
$TOKENFS dump --lock-timeout 1500 "$demo" "$demo" >/dev/null 2>&1; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "dump of two locked PATHs: exit $rc, want 2" [ $rc -eq 2 ]
check "dump of two locked PATHs: one 1500 ms budget, took $ms ms" [ $ms -lt 2900 ]
kill $locker 2>/dev/null
finish
