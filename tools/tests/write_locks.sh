#!/usr/bin/env bash
# Write commands side by side on one token (a hostile review's findings):
#   - a second tokenfs writer while the first is between its commit and its
#     re-seal waits for the token directory and gives up (exit 2): before
#     the re-seal ran under the transaction's flock, the second change went
#     in and the first run then sealed over it, reporting a seal "made anew"
#     that did not verify;
#   - a second writer while the first is inside its transaction: exit 2,
#     the first completes;
#   - a process holding SoftHSM's write lock on token.lock (as SoftHSM does
#     during its own transactions): migrate and recover refuse within
#     --lock-timeout and write nothing.
# strace delays one system call of the first run (inject=...:delay_enter);
# --force only skips the /proc scan for processes with SoftHSM loaded, which
# other tests on this machine may be.
set -u
. "$(dirname "$0")/lib.sh"
need strace python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
traced_asan="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export U=user-pin-1 S=so-secret-1
fresh() {
  rm -rf "$work/s" && cp -r "$TFS_TESTDATA/store" "$work/s"
  find "$work/s" -type d -exec chmod 0700 {} + && find "$work/s" -type f -exec chmod 0600 {} +
  D=$(dirname "$(grep -l demo "$work"/s/*/token.object)")
}
digest() { (cd "$1" && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs sha256sum); }
# slow SYSCALL CMD...: CMD in the background, its first SYSCALL held 3 s.
slow() {
  local sc=$1; shift
  (ASAN_OPTIONS=$traced_asan strace -f -o /dev/null -e trace="$sc" \
    -e inject="$sc:delay_enter=3000000:when=1" "$@" >"$work/a.out" 2>&1; echo $? >"$work/a.rc") &
  apid=$!
}

ASAN_OPTIONS=$traced_asan strace -f -o /dev/null -e trace=getpid -e inject=getpid:delay_enter=1 \
  true 2>/dev/null || {
  [ "${CI:-}" = true ] && { echo "FAIL: strace cannot inject here" >&2; exit 1; }
  echo "SKIP: strace cannot inject here" >&2; exit 77; }

# --- a change between another run's commit and its re-seal.
fresh
"$TOKENFS" verify-integrity --seal --user-pin env:U "$D" >/dev/null 2>&1
check "seal written" [ -f "$D/tokenfs.seal" ]
# The seal's rename (rename(2): the transaction itself uses renameat) is held.
slow rename "$TOKENFS" rekey --force --user-pin env:U --new-label first "$D"
sleep 1.5
"$TOKENFS" rekey --force --lock-timeout 300 --new-label second "$D" >"$work/b.out" 2>&1; rc=$?
wait "$apid"
check "a writer during another's re-seal: exit 2 ($rc: $(head -c 300 "$work/b.out"))" [ "$rc" -eq 2 ]
check "... saying the token is locked" grep -q "locked" "$work/b.out"
check "the first run: exit 0 ($(cat "$work/a.rc"))" [ "$(cat "$work/a.rc")" -eq 0 ]
check "... and its seal was made anew" grep -q "made anew" "$work/a.out"
"$TOKENFS" verify-integrity --check-seal --fail-on error --user-pin env:U "$D" >"$work/v.out" 2>&1; rc=$?
check "the seal reported made anew verifies the token (exit $rc: $(grep -m2 'error ' "$work/v.out"))" [ "$rc" -eq 0 ]

# --- a second writer inside the first one's transaction (held at the
# journal's rename, the commit point).
fresh
slow renameat "$TOKENFS" migrate --force --to gcm --user-pin env:U --so-pin env:S "$D"
sleep 1.5
before=$(digest "$D")
"$TOKENFS" rekey --force --lock-timeout 300 --new-label second "$D" >"$work/b.out" 2>&1; rc=$?
wait "$apid"
check "a writer during another's transaction: exit 2 ($rc)" [ "$rc" -eq 2 ] && grep -q locked "$work/b.out"
check "the first run completes: exit $(cat "$work/a.rc")" [ "$(cat "$work/a.rc")" -eq 0 ]
"$TOKENFS" verify-integrity --fail-on error --user-pin env:U --so-pin env:S "$D" >/dev/null 2>&1; rc=$?
check "the migrated token verifies (exit $rc)" [ "$rc" -eq 0 ]
check "... and is not the state seen during the run" [ "$before" != "$(digest "$D")" ]

# --- SoftHSM's write lock on token.lock held by another process.
fresh
python3 - "$D/token.lock" "$work/ready" <<'EOF' &
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(6)
EOF
lpid=$!
for _ in $(seq 50); do [ -e "$work/ready" ] && break; sleep 0.1; done
before=$(digest "$D")
start=$(date +%s%N)
"$TOKENFS" migrate --force --to gcm --lock-timeout 400 --user-pin env:U --so-pin env:S "$D" \
  >"$work/m.out" 2>&1; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "token.lock held: migrate exit 2 ($rc) in bounded time (${ms} ms)" [ "$rc" -eq 2 ] && [ "$ms" -lt 4000 ]
check "... naming token.lock and the pid" grep -q "token.lock.*pid $lpid" "$work/m.out"
"$TOKENFS" recover --force --lock-timeout 400 "$D" >"$work/r.out" 2>&1; rc=$?
check "token.lock held: recover exit 2 ($rc)" [ "$rc" -eq 2 ]
check "... and nothing was written" [ "$before" = "$(digest "$D")" ]
kill "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null
finish
