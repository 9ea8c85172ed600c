#!/usr/bin/env bash
# Read-only by construction, proven: every read command on a copy of the
# store leaves contents, sizes, modes and mtimes of every entry identical and
# creates nothing; under strace, every open is O_RDONLY with O_NOFOLLOW for
# files and every lock is a read lock; a writer's lock gives a bounded wait
# and a clear message, never a hang.
set -u
. "$(dirname "$0")/lib.sh"
need strace python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The copies under $work/s are what must not change; traces and markers go
# beside them.
mkdir "$work/s"
cp -a "$TFS_TESTDATA/store" "$work/s/store"
cp -a "$TFS_TESTDATA/malformed" "$work/s/malformed"
store="$work/s/store"

snapshot() {
  (cd "$work/s" && find . -printf '%p %y %s %m %T@\n' | sort && find . -type f -exec sha256sum {} + | sort)
}
before=$(snapshot)
tok=$(ls "$store" | head -n1)
obj=$(ls "$store/$tok" | grep -v '^token' | grep '\.object$' | head -n1)
commands=(
  "dump $store"
  "dump --format json $store"
  "dump --format softhsm --reveal $store"
  "dump $store/$tok"
  "dump $store/$tok/$obj"
  "dump --token demo --object ${obj%.object} $store"
  "dump --format json $work/s/malformed/trunc-in-bool.object $work/s/malformed/empty.object"
  "verify-integrity $store"
  "verify-integrity --format json --fail-on info $store/$tok"
  "verify-integrity $work/s/malformed/trunc-in-bool.object"
  "pin-audit --digits-max 0 --max-time 1 --threads 2 $store"
)
for c in "${commands[@]}"; do
  # shellcheck disable=SC2086
  "$TOKENFS" $c >/dev/null 2>&1
  after=$(snapshot)
  check "tokenfs $c changed the store" [ "$before" = "$after" ]
done

# Every open of a store file is read-only; every lock a read lock.
for c in "${commands[@]}"; do
  # shellcheck disable=SC2086
  strace -f -qq -e trace=openat,open,fcntl,flock,creat,unlink,unlinkat,rename,renameat,truncate,ftruncate \
    -o "$work/trace" "$TOKENFS" $c >/dev/null 2>&1
  opens=$(grep -E "open(at)?\(.*\"$work/s" "$work/trace")
  check "$c: opened store files" [ -n "$opens" ]
  bad=$(printf '%s\n' "$opens" | grep -E 'O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND')
  check "$c: writable open: $bad" [ -z "$bad" ]
  nofollow=$(printf '%s\n' "$opens" | grep '\.object"' | grep -v O_NOFOLLOW)
  check "$c: .object opened without O_NOFOLLOW: $nofollow" [ -z "$nofollow" ]
  locks=$(grep -E 'F_SETLK' "$work/trace")
  check "$c: took read locks" [ -n "$locks" ]
  wr=$(printf '%s\n' "$locks" | grep -E 'F_WRLCK')
  check "$c: write lock taken: $wr" [ -z "$wr" ]
  mod=$(grep -E '^[0-9]+ +(creat|unlink|unlinkat|rename|renameat|truncate|ftruncate|flock)\(' "$work/trace")
  check "$c: modifying call: $mod" [ -z "$mod" ]
done

# A SoftHSM writer holding F_WRLCK on an object: a bounded wait, exit 2, and
# a message that names the file. Python's lockf is fcntl(F_SETLK) on Linux.
target="$store/$tok/$obj"
python3 - "$target" "$work/locked" <<'PY' &
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(20)
PY
holder=$!
for _ in $(seq 100); do [ -e "$work/locked" ] && break; sleep 0.05; done
start=$(date +%s%N)
err=$("$TOKENFS" dump --lock-timeout 300 "$target" 2>&1 >/dev/null)
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
check "locked object: exit $rc, want 2" [ "$rc" -eq 2 ]
case "$err" in
  "tokenfs: $target: write-locked by another process (pid $holder)"*) pass ;;
  *) fail "locked object message: $err" ;;
esac
check "locked object: waited ${ms} ms, want 300..5000" [ "$ms" -ge 300 ] && [ "$ms" -lt 5000 ]

# The lock holder made the snapshot differ only by nothing: still identical.
check "lock test changed the store" [ "$before" = "$(snapshot)" ]
finish
