#!/usr/bin/env bash
# Crash and fault tests of `tokenfs migrate`, `tokenfs rekey` and `tokenfs
# recover` (issues 9 and 10).
#
# strace 6.1 kills tokenfs, or fails one system call, at every step of a
# migration of a copy of testdata's `demo` token (13 objects, 7 private;
# CBC), in both directions: CBC -> GCM, and GCM -> CBC from a GCM copy made
# by `tokenfs migrate --to gcm`; and a rekey that rotates the token key and
# sets both PINs (the old PINs must open the old state, the new PINs the
# new one, and every value decrypt under the key they unwrap). After each, `tokenfs recover` must exit 0
# and crash_check.py (an independent decoder, never tokenfs) must find the
# token wholly old (every file byte-identical, same inodes) or wholly new
# (every value and both PIN blobs in the new layout, generations + 1),
# every value decrypting to its original plaintext under both PINs, nothing
# of the transaction left; then migrate again completes it. Whenever the
# token is CBC, real SoftHSM 2.6.1 logs in with both PINs and lists the
# same objects as from the untouched fixture (every point, not a sample).
#
# How the steps are counted. strace counts `when=N` per system call and per
# process (man strace: "Accounting of syscalls that are subject to
# injection is done per syscall and per tracee"), so a set of several
# syscalls with when=N would stop at whichever reaches its Nth call first
# and never reach most steps. So each syscall is injected on its own, at
# every N from 1 until a run gets past its last call: together that is
# every write-related call of the run. strace -P with every path of the
# token directory (and the staged and journal names) narrows what is
# traced, and what `when` counts, to the calls on the token: tokenfs also
# opens its libraries and every /proc/PID/maps (the SoftHSM check), and
# writes warnings that depend on the processes running (the other
# direction's pkcs11-tool, other tests), so unfiltered numbers move from
# run to run. The few calls outside the token get runs of their own: the
# first openat (a library), the report on stdout and a warning on stderr.
# A SIGKILL injected on syscall entry kills before the call runs, so
# "killed at call N" is "crashed right after the step before it"; the run
# that gets past the last call is the crash after the last step. Every
# step of a counting run is named by its call (the token as T) and its
# occurrence, and must have been killed at least once.
#
# NB: `-e trace=none -e inject=...` injects nothing in strace 6.1 (the
# syscall is not stopped at); every run here traces the injected syscall
# and the test checks from strace's log that the kill or fault happened.
#
# Faults, each at every N of the calls on the token: write ENOSPC; fsync,
# syncfs, renameat, unlinkat, fchmod, openat and pread64 EIO (and
# fdatasync, rename, renameat2, unlink, pwrite64, ftruncate when tokenfs
# uses them); write ENOSPC with every later unlinkat failing too (the
# staged files cannot be removed); a write that claims a byte it did not
# write (strace retval=1: the read-back must catch it). A failure inside
# the token directory must exit 2 (spec: I/O) with a message naming a path
# in it; a failed report on stdout exits 2; a failed warning on stderr
# cannot be reported (exit 0). Exit 0 is accepted after a fault only where
# the fault cannot matter (a read-only open before the token is locked,
# the unchecked journal write) and the store is then wholly migrated. The
# store must be byte-identical to before (rolled back) unless the message
# says the change is committed, and in either case pass the checks above
# after `tokenfs recover` (which must reach that very state). Recovery
# itself is killed and failed at every rename, unlink and fsync, from a
# committed and from an uncommitted crash, then run again.
#
# Env: TOKENFS, TFS_TESTDATA (as every CLI test); PYTHON (default
# /usr/bin/python3, which has python3-cryptography). Outside CI a missing
# strace, SoftHSM or pkcs11-tool skips (77); in CI it fails.
set -u
. "$(dirname "$0")/lib.sh"
need strace pkcs11-tool
here=$(cd "$(dirname "$0")" && pwd)
module=/usr/lib/softhsm/libsofthsm2.so
PY=${PYTHON:-/usr/bin/python3}
skip_or_fail() {
  if [ "${CI:-}" = true ]; then echo "FAIL: $*" >&2; exit 1; fi
  echo "SKIP: $*" >&2; exit 77
}
[ -e "$module" ] || skip_or_fail "$module missing"
"$PY" -c 'import cryptography' 2>/dev/null || skip_or_fail "$PY has no cryptography module"
start=$(date +%s)
work=$(mktemp -d)
# TFS_KEEP_WORK=1 keeps every state, log and check for a look afterwards.
if [ "${TFS_KEEP_WORK:-}" = 1 ]; then echo "work directory: $work" >&2; else trap 'rm -rf "$work"' EXIT; fi
export U=user-pin-1 S=so-secret-1
# LeakSanitizer cannot run under ptrace and turns every traced run's exit
# status into 1; only traced runs go without it.
traced_asan="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
SET=openat,write,pwrite64,fsync,fdatasync,syncfs,rename,renameat,renameat2,unlink,unlinkat,ftruncate,fchmod,fchown

src=$(grep -l demo "$TFS_TESTDATA"/store/*/token.object | head -n1 | xargs dirname)
[ -d "$src" ] || { fail "no demo token in $TFS_TESTDATA/store"; finish; exit 1; }
fresh() { # fresh SRC DST: a private copy, 0700 / 0600
  rm -rf "$2" && cp -a "$1" "$2" && chmod 700 "$2" && chmod 600 "$2"/*
}
# --force everywhere: no SoftHSM uses these private copies, but this test's
# own pkcs11-tool runs (and other tests) load libsofthsm2.so meanwhile.
migrate() { # migrate LAYOUT DIR [>out 2>err]
  "$TOKENFS" migrate --to "$1" --user-pin env:U --so-pin env:S --force "$2"
}
# change_args TO DIR: the command under test, in cargs. TO is a layout
# (migrate --to TO) or cbc-rekeyed: rekey with a new token key and new PINs
# (issue 10: a rotation cut short must never pair a blob with a key that
# does not open the objects).
export NU=rotated-user-5 NS=rotated-so-5
change_args() {
  if [ "$1" = cbc-rekeyed ]; then
    cargs=(rekey --rotate-token-key --user-pin env:U --so-pin env:S --new-user-pin env:NU
           --new-so-pin env:NS --force "$2")
  else
    cargs=(migrate --to "$1" --user-pin env:U --so-pin env:S --force "$2")
  fi
}
manifest() { find "$1" -maxdepth 1 -type f -printf '%f %i %T@ %m %U %G\n' | sort; }
digest() { (cd "$1" && find . -maxdepth 1 -type f -printf '%f\n' | LC_ALL=C sort | xargs sha256sum); }

# --- SoftHSM 2.6.1 reading a CBC token: the user PIN logs in and lists the
# same labels as from the fixture; the SO PIN logs in (on a throwaway copy:
# C_InitPIN rewrites the user blob with the same PIN).
hsm_use() { # hsm_use DIR: SoftHSM's tokendir is DIR/hsm, its conf DIR/softhsm2.conf
  hsm_dir="$1/hsm" hsm_conf="$1/softhsm2.conf"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$hsm_dir" \
    >"$hsm_conf"
}
hsm_labels() {
  SOFTHSM2_CONF=$hsm_conf pkcs11-tool --module "$module" --login --pin "$U" --list-objects \
    2>/dev/null | sed -n 's/^ *label: *//p' | LC_ALL=C sort | sha256sum
}
softhsm_ok() { # softhsm_ok DIR: prints what is wrong, if anything
  rm -rf "$hsm_dir" && mkdir "$hsm_dir" && cp -a "$1" "$hsm_dir/tok" || return 1
  [ "$(hsm_labels)" = "$hsm_want" ] || { echo "user login/listing differs"; return 1; }
  SOFTHSM2_CONF=$hsm_conf pkcs11-tool --module "$module" --login --login-type so --so-pin "$S" \
    --init-pin --new-pin "$U" >/dev/null 2>&1 || { echo "SO login failed"; return 1; }
}
fresh "$src" "$work/hsm-base"
hsm_use "$work"
rm -rf "$hsm_dir" && mkdir "$hsm_dir" && cp -a "$work/hsm-base" "$hsm_dir/tok"
hsm_want=$(hsm_labels)
check "SoftHSM 2.6.1 lists the fixture's objects" [ "$hsm_want" != "$(: | sha256sum)" ]
hsm_runs=0

# --- reference copies: plain (the CBC fixture) and a GCM copy by migrate.
fresh "$src" "$work/plain"
fresh "$src" "$work/orig-cbc"
fresh "$src" "$work/orig-gcm"
migrate gcm "$work/orig-gcm" >/dev/null 2>"$work/err"
rc=$?
check "GCM master made by migrate --to gcm: $(cat "$work/err")" [ $rc -eq 0 ]
digest "$work/orig-cbc" >"$work/orig-cbc.digest"
digest "$work/orig-gcm" >"$work/orig-gcm.digest"
point_seq=0
cases="$work/cases.tsv"
: >"$cases"
add_case() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$cases"; }
add_case master-gcm "$work/orig-gcm" "$work/orig-cbc" cbc gcm new -

# --- the checker must catch what it is there to catch: a store with one
# object migrated and the rest not, and one with a staged file left.
fresh "$src" "$work/neg-mixed"
cp "$work/orig-gcm/$(cd "$work/orig-gcm" && ls ./*.object | grep -v token | head -n1)" "$work/neg-mixed/"
fresh "$src" "$work/neg-left"
cp "$work/neg-left/token.object" "$work/neg-left/token.object.tokenfs-new"
printf 'neg-mixed\t%s\t%s\tcbc\tgcm\tany\t-\nneg-left\t%s\t%s\tcbc\tgcm\tany\t-\n' \
  "$work/neg-mixed" "$work/orig-cbc" "$work/neg-left" "$work/orig-cbc" >"$work/neg.tsv"
negout=$("$PY" "$here/crash_check.py" --plain-ref "$work/plain" "$work/neg.tsv")
check "crash_check.py flags a mixed store: $negout" grep -q '^FAIL neg-mixed (mixed)' <<<"$negout"
check "crash_check.py flags a left staged file: $negout" grep -q '^FAIL neg-left.*left' <<<"$negout"

# --- strace must really inject here (ptrace may be forbidden in a container).
fresh "$work/orig-cbc" "$work/probe"
(ASAN_OPTIONS=$traced_asan strace -f -o "$work/probe.log" -e trace=renameat \
  -e inject=renameat:signal=KILL:when=1 "$TOKENFS" migrate --to gcm --user-pin env:U \
  --so-pin env:S --force "$work/probe" >/dev/null 2>&1; exit $?) 2>/dev/null
probe_rc=$?
if ! grep -q 'killed by SIGKILL' "$work/probe.log" 2>/dev/null; then
  skip_or_fail "strace cannot inject a kill here (exit $probe_rc): $(head -c 300 "$work/probe.log" 2>/dev/null)"
fi

# label LOGLINE W: a step's name, the same in every run: the call without
# pid, fd numbers, result, and with the token directory as T.
label() { label_stream "$2" <<<"$1"; }
label_stream() {
  sed -E -e 's/^[0-9]+ +//' -e "s#$1#T#g" -e 's/[0-9]+</</g' -e 's/\) += .*$/)/' \
    -e 's/<[^T>][^>]*>/<->/g' -e 's/^(write|pwrite64)\(([^,]*), ".*"(\.\.\.)?, /\1(\2, DATA, /'
}
# steps LOG SYSCALL W: the labels of a log's SYSCALL calls, with occurrence.
steps() {
  grep -E "^[0-9]+ +$2\(" "$1" | label_stream "$3" | awk '{ n[$0]++; print $0 " #" n[$0] }'
}

# run_point DIRN MODE CMD SYSCALL N BASE FROM TO EXPECT [TAG]
#   MODE kill, an errno (ENOSPC, EIO), LIE (the call does nothing and
#   returns 1: a write that claims a byte it did not write) or
#   ENOSPC+NOCLEAN (ENOSPC, and every unlinkat after fails with EIO, so the
#   failed command cannot remove its staged files); CMD migrate|recover;
#   BASE the state to start from; EXPECT the state recovery must reach:
#   any, old or new; TAG names BASE. $target says which calls strace
#   counts: token (the token's paths), stdout, stderr or none (all).
# Sets last_done=1 when the run got past the SYSCALL's last call, and
# last_step to the label of the step hit.
run_point() {
  local dirn=$1 mode=$2 cmd=$3 s=$4 n=$5 base=$6 from=$7 to=$8 expect=$9 tag=${10:-}
  point_seq=$((point_seq + 1))
  local id="$dirn-$cmd$tag-$mode-$s-$n.$point_seq" d="$work/$dirn" W="$work/$dirn/w"
  last_log="$d/$id.log"
  local log="$d/$id.log" out="$d/$id.out" err="$d/$id.err" rc inj args
  fresh "$base" "$W"
  manifest "$W" >"$d/$id.man"
  digest "$W" >"$d/$id.before"
  local traced=$s more=()
  case $mode in
    kill) inj="$s:signal=KILL:when=$n" ;;
    LIE) inj="$s:retval=1:when=$n" ;;
    ENOSPC+NOCLEAN) inj="$s:error=ENOSPC:when=$n" traced="$s,unlinkat"
                    more=(-e inject=unlinkat:error=EIO:when=1+) ;;
    *) inj="$s:error=$mode:when=$n" ;;
  esac
  if [ "$cmd" = migrate ]; then
    change_args "$to" "$W"
    args=("${cargs[@]}")
  else
    args=(recover --force "$W")
  fi
  # (a subshell, so that bash does not report the kill on stderr)
  local only=()
  case $target in
    token) only=("${token_paths[@]}") ;;
    stdout) only=(-P "$out") ;;
    stderr) only=(-P "$err") ;;
  esac
  (ASAN_OPTIONS=$traced_asan strace -f -y -o "$log" "${only[@]}" -e trace="$traced" -e inject="$inj" \
    "${more[@]}" "$TOKENFS" "${args[@]}" >"$out" 2>"$err"; exit $?) 2>/dev/null
  rc=$?
  last_done=0
  last_step=
  local hit
  if [ "$mode" = kill ]; then
    if grep -q '+++ killed by SIGKILL +++' "$log"; then
      hit=$(grep -E "^[0-9]+ +$s\(.* = \?$" "$log" | tail -n1)
      [ "$rc" -eq 137 ] || fail "$id: killed but exit $rc"
    else
      last_done=1
      check "$id: past the last $s, $cmd exits 0 (exit $rc: $(head -c 300 "$err"))" [ "$rc" -eq 0 ]
    fi
  else
    hit=$(grep -E "^[0-9]+ +$s\(.*\(INJECTED\)$" "$log" | head -n1)
    if [ -z "$hit" ] && [ "$mode" = ENOSPC+NOCLEAN ]; then
      # past the last write, only the journal's removal fails: committed
      last_done=1
      check "$id: a failed removal of the journal exits 2 and says committed ($(tr '\n' ' ' <"$err"))" \
        eval '[ "$rc" -eq 2 ] && grep -q committed "$err"'
      expect=new
    elif [ -z "$hit" ]; then
      last_done=1
      check "$id: past the last $s, $cmd exits 0 (exit $rc: $(head -c 300 "$err"))" [ "$rc" -eq 0 ]
    elif [[ $hit == *"$W"* ]] && [ "$rc" -eq 0 ] && { [ "$mode" = LIE ] ||
         [[ $hit =~ ^[0-9]+\ +openat\(.*O_RDONLY && $hit != *tokenfs* ]]; }; then
      # Not noticed, and allowed so only if it changed nothing: a lying
      # write of the journal (staged files are read back, the journal is
      # not), or a read-only open before the token is locked (the files
      # are opened and read again under the lock). The store must then be
      # wholly migrated.
      expect=new
    elif [[ $hit == *"$W"* ]]; then
      # inside the token directory: exit 2 and a message naming it
      check "$id: $cmd exits 2 on a failed step in the token (exit $rc; $hit)" [ "$rc" -eq 2 ]
      check "$id: the message names a path in the token ($(tr '\n' ' ' <"$err"))" grep -qF "$W" "$err"
      if [ "$cmd" = migrate ]; then
        # the message says whether the change is committed; it must be right
        if grep -q committed "$err"; then expect=new; else expect=old; fi
      fi
    elif [[ $hit =~ ^[0-9]+\ +write\(1\< ]]; then
      check "$id: a failed report on stdout exits 2 (exit $rc)" [ "$rc" -eq 2 ]
      expect=new
    elif [[ $hit =~ ^[0-9]+\ +write\(2\< ]]; then
      check "$id: a lost warning on stderr changes nothing else (exit $rc)" [ "$rc" -eq 0 ]
      expect=new
    else
      check "$id: failed outside the token, $cmd does not exit 0 silently (exit $rc; $hit)" \
        [ "$rc" -ne 0 ]
    fi
  fi
  [ -n "${hit:-}" ] && last_step=$(label "$hit" "$W")
  if [ "$mode" != kill ] && [ "$mode" != ENOSPC+NOCLEAN ] && [ "$cmd" = migrate ] &&
     [ "$expect" = old ]; then
    digest "$W" >"$d/$id.after"
    check "$id: a failure before the commit point leaves every file as it was" \
      cmp -s "$d/$id.before" "$d/$id.after"
  fi
  # the crashed or failed state, recovered by migrate itself (its first step)
  fresh "$W" "$d/$id.direct"
  "$TOKENFS" recover --force "$W" >"$d/$id.rec" 2>&1
  rc=$?
  check "$id: recover exits 0 ($(tr '\n' ' ' <"$d/$id.rec"))" [ $rc -eq 0 ]
  # wholly CBC: real SoftHSM must read it
  local layout
  digest "$W" >"$d/$id.rec.digest"
  if cmp -s "$d/$id.rec.digest" "$work/orig-$from.digest"; then layout=$from; else layout=$to; fi
  local why
  if [ "$layout" = cbc-rekeyed ]; then  # the new state opens with the new PINs only
    why=$(U=$NU S=$NS softhsm_ok "$W")
    rc=$?
    check "$id: SoftHSM 2.6.1 reads the recovered rekeyed token with the new PINs ($why)" [ $rc -eq 0 ]
    hsm_runs=$((hsm_runs + 1))
  elif [ "$layout" = cbc ]; then
    why=$(softhsm_ok "$W")
    rc=$?
    check "$id: SoftHSM 2.6.1 reads the recovered CBC token ($why)" [ $rc -eq 0 ]
    hsm_runs=$((hsm_runs + 1))
  fi
  mv "$W" "$d/$id.state"
  add_case "$id" "$d/$id.state" "$work/orig-$from" "$from" "$to" "$expect" "$d/$id.man"
  # A rotation run again rotates again: "completing" is migrate's notion.
  [ "$to" = cbc-rekeyed ] && return
  # then migrating again completes it (or writes nothing: generations + 1 once)
  fresh "$d/$id.state" "$d/$id.again"
  manifest "$d/$id.again" >"$d/$id.again.man"
  migrate "$to" "$d/$id.again" >"$d/$id.again.out" 2>&1
  rc=$?
  check "$id: migrate again exits 0 ($(tr '\n' ' ' <"$d/$id.again.out"))" [ $rc -eq 0 ]
  add_case "$id.again" "$d/$id.again" "$work/orig-$from" "$from" "$to" new "$d/$id.again.man"
  migrate "$to" "$d/$id.direct" >"$d/$id.direct.out" 2>&1
  rc=$?
  check "$id: migrate without recover first exits 0 ($(tr '\n' ' ' <"$d/$id.direct.out"))" \
    [ $rc -eq 0 ]
  add_case "$id.direct" "$d/$id.direct" "$work/orig-$from" "$from" "$to" new -
  if [ "$to" = cbc ]; then
    why=$(softhsm_ok "$d/$id.again")
    rc=$?
    check "$id: SoftHSM 2.6.1 reads the token migrated again ($why)" [ $rc -eq 0 ]
    hsm_runs=$((hsm_runs + 1))
  fi
}

# count DIRN FROM TO: a full traced run; the log of every call in SET.
count_run() {
  local dirn=$1 from=$2 to=$3 W="$work/$1/w"
  fresh "$work/orig-$from" "$W"
  change_args "$to" "$W"
  ASAN_OPTIONS=$traced_asan strace -f -y -o "$work/$dirn/count.log" "${token_paths[@]}" -e trace="$SET" \
    "$TOKENFS" "${cargs[@]}" >/dev/null 2>&1
  check "$dirn: the counting run exits 0" [ $? -eq 0 ]
}

# kill_all DIRN FROM TO: kill migrate at every step of every syscall in SET.
kill_all() {
  local dirn=$1 from=$2 to=$3 s n total=0 W="$work/$1/w" covered="$work/$1/covered"
  local count="$work/$1/count.log" want missing step
  : >"$covered"
  for s in ${SET//,/ }; do
    want=$(steps "$count" "$s" "$W")
    [ -n "$want" ] || continue
    target=token
    for n in $(seq 1 400); do
      run_point "$dirn" kill migrate "$s" "$n" "$work/orig-$from" "$from" "$to" any
      total=$((total + 1))
      [ -n "$last_step" ] && steps "$last_log" "$s" "$W" | tail -n1 >>"$covered"
      [ "$last_done" = 1 ] && break
    done
    # every step of the counting run killed at least once; one that moved
    # between runs (it should not: -P) is aimed at again once
    missing=$(grep -vxF -f "$covered" <<<"$want")
    while IFS= read -r step; do
      [ -n "$step" ] || continue
      n=$(grep -nxF "$step" <<<"$want" | cut -d: -f1)
      run_point "$dirn" kill migrate "$s" "$n" "$work/orig-$from" "$from" "$to" any
      total=$((total + 1))
      [ -n "$last_step" ] && steps "$last_log" "$s" "$W" | tail -n1 >>"$covered"
    done <<<"$missing"
    missing=$(grep -vxF -f "$covered" <<<"$want")
    check "$dirn: every $s step killed once at least (missing: $missing)" [ -z "$missing" ]
  done
  # outside the token: before anything (the first library), before the
  # report on stdout, at a warning on stderr (if tokenfs writes one here)
  target=none
  run_point "$dirn" kill migrate openat 1 "$work/orig-$from" "$from" "$to" old
  check "$dirn: the first openat is not in the token ($last_step)" grep -qvE '<T|"T' <<<"$last_step"
  target=stdout
  run_point "$dirn" kill migrate write 1 "$work/orig-$from" "$from" "$to" new
  target=stderr
  run_point "$dirn" kill migrate write 1 "$work/orig-$from" "$from" "$to" any
  target=token
  kills=$((total + 3))
}

# fault_all DIRN FROM TO: every N of each syscall that can fail.
fault_all() {
  local dirn=$1 from=$2 to=$3 spec s e n total=0
  target=token
  for spec in write:ENOSPC pwrite64:ENOSPC fsync:EIO fdatasync:EIO syncfs:EIO rename:EIO \
              renameat:EIO renameat2:EIO unlink:EIO unlinkat:EIO ftruncate:EIO fchmod:EIO \
              write:ENOSPC+NOCLEAN write:LIE openat:EIO pread64:EIO; do
    s=${spec%%:*} e=${spec#*:}
    case $s in openat|pread64) ;; *) grep -qE "^[0-9]+ +$s\(" "$work/$dirn/count.log" || continue ;; esac
    for n in $(seq 1 200); do
      run_point "$dirn" "$e" migrate "$s" "$n" "$work/orig-$from" "$from" "$to" any
      total=$((total + 1))
      [ "$last_done" = 1 ] && break
    done
  done
  # the report on stdout and a warning on stderr cannot be written
  for target in stdout stderr; do
    run_point "$dirn" ENOSPC migrate write 1 "$work/orig-$from" "$from" "$to" any
    total=$((total + 1))
  done
  target=token
  faults=$total
}

# recover_all DIRN FROM TO: recovery killed and failed at each rename,
# unlink and fsync, from a committed crash (killed at the first rename
# after the journal's) and an uncommitted one (killed at the syncfs).
recover_all() {
  local dirn=$1 from=$2 to=$3 total=0 base s n mode expect W="$work/$1/w"
  for base in committed uncommitted; do
    fresh "$work/orig-$from" "$W"
    change_args "$to" "$W"
    if [ $base = committed ]; then
      (ASAN_OPTIONS=$traced_asan strace -f -o /dev/null -e trace=renameat \
        -e inject=renameat:signal=KILL:when=2 "$TOKENFS" "${cargs[@]}" >/dev/null 2>&1; exit $?) 2>/dev/null
      check "$dirn: crashed after the commit point" [ -e "$W/tokenfs.journal" ]
      expect=new
    else
      (ASAN_OPTIONS=$traced_asan strace -f -o /dev/null -e trace=syncfs \
        -e inject=syncfs:signal=KILL:when=1 "$TOKENFS" "${cargs[@]}" >/dev/null 2>&1; exit $?) 2>/dev/null
      check "$dirn: crashed before the commit point with staged files" \
        [ ! -e "$W/tokenfs.journal" -a -e "$W/token.object.tokenfs-new" ]
      expect=old
    fi
    rm -rf "$work/$dirn/crash-$base" && mv "$W" "$work/$dirn/crash-$base"
    for mode in kill EIO; do
      for s in renameat unlinkat fsync syncfs; do
        for n in $(seq 1 50); do
          run_point "$dirn" "$mode" recover "$s" "$n" "$work/$dirn/crash-$base" "$from" "$to" \
            "$expect" "@$base"
          total=$((total + 1))
          [ "$last_done" = 1 ] && break
        done
      done
    done
  done
  recovers=$total
}

# token_paths: strace -P for every name a migration uses in the token.
token_paths=(-P "$work/TOKDIR")
target=token
# The two directions run side by side (two cores), each with its own
# counters, SoftHSM directory and batch of checks; their counts are added.
direction() {
  local dirn=$1 from=$2 to=$3 d="$work/$1"
  passed=0 failed=0 hsm_runs=0 kills=0 faults=0 recovers=0
  cases="$d/cases.tsv"
  : >"$cases"
  hsm_use "$d"
  local W="$d/w" f
  token_paths=(-P "$W" -P "$W/tokenfs.journal" -P "$W/tokenfs.journal.tmp")
  for f in $(ls "$work/orig-$from"); do token_paths+=(-P "$W/$f" -P "$W/$f.tokenfs-new"); done
  count_run "$dirn" "$from" "$to"
  kill_all "$dirn" "$from" "$to"
  fault_all "$dirn" "$from" "$to"
  recover_all "$dirn" "$from" "$to"
  # the independent checks of every state, in one batch
  "$PY" "$here/crash_check.py" --plain-ref "$work/plain" "$cases" >"$d/check.out" 2>&1
  grep -v '^ok ' "$d/check.out" | grep -v 'passed,.*failed$' >&2
  local ok bad
  ok=$(grep -c '^ok ' "$d/check.out")
  bad=$(grep -c '^FAIL ' "$d/check.out")
  passed=$((passed + ok)) failed=$((failed + bad))
  [ "$ok" -gt 0 ] || fail "$dirn: crash_check.py checked nothing: $(tail -n3 "$d/check.out")"
  [ "$((ok + bad))" -eq "$(wc -l <"$cases")" ] ||
    fail "$dirn: crash_check.py did not report every case"
  echo "$passed $failed $hsm_runs $kills $faults $recovers $((ok + bad)) $(grep -c '^ok .* old$' "$d/check.out") $(grep -c '^ok .* new$' "$d/check.out")" >"$d/result"
}
mkdir -p "$work/to-gcm" "$work/to-cbc" "$work/rekey"
direction to-gcm cbc gcm &
pid_gcm=$!
direction to-cbc gcm cbc &
pid_cbc=$!
wait $pid_gcm
direction rekey cbc cbc-rekeyed &
pid_rekey=$!
wait $pid_cbc
wait $pid_rekey

# the GCM master, checked in the main shell
"$PY" "$here/crash_check.py" --plain-ref "$work/plain" "$cases" >"$work/check.out" 2>&1
check "the GCM master is wholly GCM: $(grep -v '^ok' "$work/check.out")" \
  grep -q '^ok master-gcm new' "$work/check.out"
declare -A r
for dirn in to-gcm to-cbc rekey; do
  if ! read -r p f h k fa rc st so sn <"$work/$dirn/result"; then
    fail "$dirn: the direction did not finish"
    continue
  fi
  passed=$((passed + p)) failed=$((failed + f))
  r[$dirn]="$h $k $fa $rc $st $so $sn"
done
read -r h1 k1 f1 r1 s1 o1 n1 <<<"${r[to-gcm]:-0 0 0 0 0 0 0}"
read -r h2 k2 f2 r2 s2 o2 n2 <<<"${r[to-cbc]:-0 0 0 0 0 0 0}"
read -r h3 k3 f3 r3 s3 o3 n3 <<<"${r[rekey]:-0 0 0 0 0 0 0}"
echo "kill points tested: $k1 (migrate to gcm) + $k2 (migrate to cbc) + $k3 (rekey: rotation and new PINs)"
echo "fault points tested: $f1 + $f2 + $f3"
echo "recovery kill/fault points tested: $r1 + $r2 + $r3"
echo "states checked by crash_check.py: $((s1 + s2 + s3)) ($((o1 + o2 + o3)) wholly old, $((n1 + n2 + n3)) wholly new); SoftHSM 2.6.1 checks: $((h1 + h2 + h3))"
echo "runtime: $(($(date +%s) - start))s"
finish
