#!/usr/bin/env bash
# A run that holds the PIN and the token key leaves no core dump when it is
# killed by a signal that dumps core. tokenfs sets RLIMIT_CORE to 0 and
# PR_SET_DUMPABLE to 0 before it reads any PIN (tfs_protect_process).
#
# The test first proves that this machine does write cores (a python process
# killed the same way, in the same directory, under the same limit), so a
# missing core means tokenfs prevented it.
set -u
. "$(dirname "$0")/lib.sh"
need python3
work=$(mktemp -d)
trap 'kill -9 $locker 2>/dev/null; rm -rf "$work"' EXIT
locker=
cp -a "$TFS_TESTDATA/store" "$work/store"
mkdir "$work/cores"
cd "$work/cores" || exit 1
ulimit -c unlimited

# The control: a process killed by SIGABRT here writes a core.
python3 -c 'import os, signal; os.kill(os.getpid(), signal.SIGABRT)' 2>/dev/null
if ! ls core* >/dev/null 2>&1; then
  echo "this machine writes no core files here (core_pattern: $(cat /proc/sys/kernel/core_pattern))" >&2
  [ "${CI:-}" = true ] && exit 1
  exit 77
fi
check "the control process wrote a core" true
rm -f core*

# Hold a write lock on the demo token's last object, as a SoftHSM writer
# would: tokenfs derives the token key, decrypts the objects before it, and
# waits for the lock with every secret in memory.
tok=$(grep -l demo "$work"/store/*/token.object | head -1)
tok=${tok%/token.object}
last=$(ls "$tok"/*.object | grep -v token.object | sort | tail -1)
python3 - "$last" "$work/locked" <<'PY' &
import fcntl, sys, time
f = open(sys.argv[1], "r+b")
fcntl.lockf(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(120)
PY
locker=$!
for _ in $(seq 100); do [ -e "$work/locked" ] && break; sleep 0.1; done

# ASan turns cores off on its own unless told not to; tell it, so that only
# tokenfs's own protection is under test.
export TFS_TEST_PIN=user-pin-1
ASAN_OPTIONS=disable_coredump=0:detect_leaks=0:handle_abort=0 \
  "$TOKENFS" dump --token demo --user-pin env:TFS_TEST_PIN --lock-timeout 60000 "$work/store" \
  >/dev/null 2>&1 &
pid=$!
# Wait until it is blocked on the lock (its state is S, not running).
blocked=no
for _ in $(seq 100); do
  sleep 0.1
  if grep -q "Max core file size *0 *0" "/proc/$pid/limits" 2>/dev/null &&
     [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = S ]; then
    blocked=yes; break
  fi
done
check "tokenfs set its core limit to 0 and waits on the lock" [ "$blocked" = yes ]
kill -ABRT "$pid"
wait "$pid"
rc=$?
check "tokenfs died of SIGABRT (status $rc)" [ "$rc" -eq 134 ]
check "no core file was written" [ -z "$(ls -A)" ]
if ls core* >/dev/null 2>&1; then
  grep -c "$TFS_TEST_PIN" core* >&2
fi
finish
