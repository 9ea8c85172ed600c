#!/usr/bin/env bash
# Crash and fault tests of `tokenfs migrate` and `tokenfs recover` (issue 9).
#
# strace 6.1 kills tokenfs, or fails one system call, at every step of a
# migration of a copy of testdata's `demo` token (13 objects, 7 private;
# CBC), in both directions: CBC -> GCM, and GCM -> CBC from a GCM copy made
# by `tokenfs migrate --to gcm`. After each, `tokenfs recover` must exit 0
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
# every write-related call of the run. A SIGKILL injected on syscall entry
# kills before the call runs, so "killed at call N" is "crashed right after
# the step before it"; the run that gets past the last call is the crash
# after the last step. Before anything is opened in the token directory,
# tokenfs opens its libraries and every /proc/PID/maps (the SoftHSM check):
# those openat calls change nothing and their number changes with the
# processes running, so the openat kills take N=1 and then every openat
# from a little before the first one in the token directory; every step is
# identified by its call (path, flags) and its occurrence, and a step
# missed because the /proc count moved between runs is retried.
#
# NB: `-e trace=none -e inject=...` injects nothing in strace 6.1 (the
# syscall is not stopped at); every run here traces the injected syscall
# and the test checks from strace's log that the kill or fault happened.
#
# Faults: write ENOSPC, fsync / fdatasync / syncfs EIO, rename / renameat /
# renameat2 / unlink / unlinkat EIO at every N: a failure inside the token
# directory must exit 2 naming a path in it; a failed report on stdout
# exits 2, a failed warning on stderr cannot be reported (exit 0); the
# store must be byte-identical to before (rolled back) unless the message
# says the change is committed, and in either case pass the checks above
# after `tokenfs recover`. Recovery itself is killed and failed at every
# rename, unlink and fsync, from a committed and from an uncommitted crash.
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
trap 'rm -rf "$work"' EXIT
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
migrate() { # migrate LAYOUT DIR [>out 2>err]
  "$TOKENFS" migrate --to "$1" --user-pin env:U --so-pin env:S --force "$2"
}
manifest() { find "$1" -maxdepth 1 -type f -printf '%f %i %T@ %m %U %G\n' | sort; }
digest() { (cd "$1" && find . -maxdepth 1 -type f -printf '%f\n' | LC_ALL=C sort | xargs sha256sum); }

# --- SoftHSM 2.6.1 reading a CBC token: the user PIN logs in and lists the
# same labels as from the fixture; the SO PIN logs in (on a throwaway copy:
# C_InitPIN rewrites the user blob with the same PIN).
hsm_conf="$work/softhsm2.conf"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/hsm" >"$hsm_conf"
hsm_labels() {
  SOFTHSM2_CONF=$hsm_conf pkcs11-tool --module "$module" --login --pin "$U" --list-objects \
    2>/dev/null | sed -n 's/^ *label: *//p' | LC_ALL=C sort | sha256sum
}
softhsm_ok() { # softhsm_ok DIR: prints what is wrong, if anything
  rm -rf "$work/hsm" && mkdir "$work/hsm" && cp -a "$1" "$work/hsm/tok" || return 1
  [ "$(hsm_labels)" = "$hsm_want" ] || { echo "user login/listing differs"; return 1; }
  SOFTHSM2_CONF=$hsm_conf pkcs11-tool --module "$module" --login --login-type so --so-pin "$S" \
    --init-pin --new-pin "$U" >/dev/null 2>&1 || { echo "SO login failed"; return 1; }
}
fresh "$src" "$work/hsm-base"
rm -rf "$work/hsm" && mkdir "$work/hsm" && cp -a "$work/hsm-base" "$work/hsm/tok"
hsm_want=$(hsm_labels)
hsm_runs=0

# --- reference copies: plain (the CBC fixture) and a GCM copy by migrate.
fresh "$src" "$work/plain"
fresh "$src" "$work/orig-cbc"
fresh "$src" "$work/orig-gcm"
migrate gcm "$work/orig-gcm" >/dev/null 2>"$work/err"
check "GCM master made by migrate --to gcm: $(cat "$work/err")" [ $? -eq 0 ]
digest "$work/orig-cbc" >"$work/orig-cbc.digest"
digest "$work/orig-gcm" >"$work/orig-gcm.digest"
seq=0
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
ASAN_OPTIONS=$traced_asan strace -f -o "$work/probe.log" -e trace=renameat \
  -e inject=renameat:signal=KILL:when=1 "$TOKENFS" migrate --to gcm --user-pin env:U \
  --so-pin env:S --force "$work/probe" >/dev/null 2>&1
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
#   MODE kill|ENOSPC|EIO; CMD migrate|recover; BASE the state to start from;
#   EXPECT the state recovery must reach: any, old or new; TAG names BASE.
# Sets last_done=1 when the run got past the SYSCALL's last call, and
# last_step to the label of the step hit.
run_point() {
  local dirn=$1 mode=$2 cmd=$3 s=$4 n=$5 base=$6 from=$7 to=$8 expect=$9 tag=${10:-}
  seq=$((seq + 1))
  local id="$dirn-$cmd$tag-$mode-$s-$n.$seq" d="$work/$dirn" W="$work/$dirn/w"
  last_log="$d/$id.log"
  local log="$d/$id.log" out="$d/$id.out" err="$d/$id.err" rc inj args
  fresh "$base" "$W"
  manifest "$W" >"$d/$id.man"
  digest "$W" >"$d/$id.before"
  if [ "$mode" = kill ]; then inj="$s:signal=KILL:when=$n"; else inj="$s:error=$mode:when=$n"; fi
  if [ "$cmd" = migrate ]; then
    args=(migrate --to "$to" --user-pin env:U --so-pin env:S --force "$W")
  else
    args=(recover --force "$W")
  fi
  # (a subshell, so that bash does not report the kill on stderr)
  (ASAN_OPTIONS=$traced_asan strace -f -y -o "$log" -e trace="$s" -e inject="$inj" \
    "$TOKENFS" "${args[@]}" >"$out" 2>"$err"; exit $?) 2>/dev/null
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
    hit=$(grep -E "^[0-9]+ +$s\(.*\(INJECTED\)$" "$log" | tail -n1)
    if [ -z "$hit" ]; then
      last_done=1
      check "$id: past the last $s, $cmd exits 0 (exit $rc: $(head -c 300 "$err"))" [ "$rc" -eq 0 ]
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
  if [ "$mode" != kill ] && [ "$cmd" = migrate ] && [ "$expect" = old ]; then
    digest "$W" >"$d/$id.after"
    check "$id: a failure before the commit point leaves every file as it was" \
      cmp -s "$d/$id.before" "$d/$id.after"
  fi
  # the crashed or failed state, recovered by migrate itself (its first step)
  fresh "$W" "$d/$id.direct"
  "$TOKENFS" recover --force "$W" >"$d/$id.rec" 2>&1
  check "$id: recover exits 0 ($(tr '\n' ' ' <"$d/$id.rec"))" [ $? -eq 0 ]
  # wholly CBC: real SoftHSM must read it
  local layout
  digest "$W" >"$d/$id.rec.digest"
  if cmp -s "$d/$id.rec.digest" "$work/orig-$from.digest"; then layout=$from; else layout=$to; fi
  if [ "$layout" = cbc ]; then
    local why
    why=$(softhsm_ok "$W")
    check "$id: SoftHSM 2.6.1 reads the recovered CBC token ($why)" [ $? -eq 0 ]
    hsm_runs=$((hsm_runs + 1))
  fi
  mv "$W" "$d/$id.state"
  add_case "$id" "$d/$id.state" "$work/orig-$from" "$from" "$to" "$expect" "$d/$id.man"
  # then migrating again completes it (or writes nothing: generations + 1 once)
  local final=$to
  fresh "$d/$id.state" "$d/$id.again"
  manifest "$d/$id.again" >"$d/$id.again.man"
  migrate "$final" "$d/$id.again" >"$d/$id.again.out" 2>&1
  check "$id: migrate again exits 0 ($(tr '\n' ' ' <"$d/$id.again.out"))" [ $? -eq 0 ]
  add_case "$id.again" "$d/$id.again" "$work/orig-$from" "$from" "$to" new -
  migrate "$final" "$d/$id.direct" >"$d/$id.direct.out" 2>&1
  check "$id: migrate without recover first exits 0 ($(tr '\n' ' ' <"$d/$id.direct.out"))" [ $? -eq 0 ]
  add_case "$id.direct" "$d/$id.direct" "$work/orig-$from" "$from" "$to" new -
  if [ "$to" = cbc ]; then
    local why
    why=$(softhsm_ok "$d/$id.again")
    check "$id: SoftHSM 2.6.1 reads the token migrated again ($why)" [ $? -eq 0 ]
    hsm_runs=$((hsm_runs + 1))
  fi
  rm -f "$d/$id.again.man"
}

# count DIRN FROM TO: a full traced run; the log of every call in SET.
count_run() {
  local dirn=$1 from=$2 to=$3 W="$work/$1/w"
  fresh "$work/orig-$from" "$W"
  ASAN_OPTIONS=$traced_asan strace -f -y -o "$work/$dirn/count.log" -e trace="$SET" \
    "$TOKENFS" migrate --to "$to" --user-pin env:U --so-pin env:S --force "$W" >/dev/null 2>&1
  check "$dirn: the counting run exits 0" [ $? -eq 0 ]
}

# kill_all DIRN FROM TO: kill migrate at every step of every syscall in SET.
kill_all() {
  local dirn=$1 from=$2 to=$3 s n total=0 W="$work/$1/w"
  local covered="$work/$dirn/covered"
  : >"$covered"
  for s in ${SET//,/ }; do
    local want
    want=$(steps "$work/$dirn/count.log" "$s" "$W")
    [ -n "$want" ] || continue
    [ "$s" = openat ] && want=$(grep -E '<T|"T' <<<"$want")
    n=1
    while [ "$n" -le 400 ]; do
      run_point "$dirn" kill migrate "$s" "$n" "$work/orig-$from" "$from" "$to" any
      total=$((total + 1))
      if [ -n "$last_step" ]; then
        local occ
        occ=$(steps "$work/$dirn/$dirn-migrate-kill-$s-$n.log" "$s" "$W" | tail -n1)
        echo "$occ" >>"$covered"
      fi
      [ "$last_done" = 1 ] && break
      if [ "$s" = openat ] && [ "$n" -eq 1 ]; then
        # skip the libraries and /proc: from a little before the first
        # openat in the token directory (as counted)
        local first
        first=$(steps "$work/$dirn/count.log" openat "$W" | grep -nE '<T|"T' | head -n1 | cut -d: -f1)
        n=$((first > 6 ? first - 5 : 2))
        continue
      fi
      n=$((n + 1))
    done
    # every step of the counting run must have been killed at least once
    local missing tries
    for tries in 1 2 3; do
      missing=$(grep -vxF -f "$covered" <<<"$want")
      [ -n "$missing" ] || break
      while IFS= read -r step; do
        local pos
        pos=$(steps "$work/$dirn/count.log" "$s" "$W" | grep -nxF "$step" | cut -d: -f1)
        run_point "$dirn" kill migrate "$s" "$((pos + tries - 1))" "$work/orig-$from" "$from" "$to" any
        total=$((total + 1))
        [ -n "$last_step" ] && steps "$work/$dirn/$dirn-migrate-kill-$s-$((pos + tries - 1)).log" "$s" "$W" |
          tail -n1 >>"$covered"
      done <<<"$missing"
    done
    missing=$(grep -vxF -f "$covered" <<<"$want")
    check "$dirn: every $s step killed once at least (missing: $missing)" [ -z "$missing" ]
  done
  eval "kills_${dirn//-/_}=$total"
}

# fault_all DIRN FROM TO: every N of each syscall that can fail.
fault_all() {
  local dirn=$1 from=$2 to=$3 spec s e n total=0
  for spec in write:ENOSPC pwrite64:ENOSPC fsync:EIO fdatasync:EIO syncfs:EIO rename:EIO \
              renameat:EIO renameat2:EIO unlink:EIO unlinkat:EIO; do
    s=${spec%%:*} e=${spec#*:}
    grep -qE "^[0-9]+ +$s\(" "$work/$dirn/count.log" || continue
    for n in $(seq 1 200); do
      run_point "$dirn" "$e" migrate "$s" "$n" "$work/orig-$from" "$from" "$to" any
      total=$((total + 1))
      [ "$last_done" = 1 ] && break
    done
  done
  eval "faults_${dirn//-/_}=$total"
}

# recover_all DIRN FROM TO: recovery killed and failed at each rename,
# unlink and fsync, from a committed crash (killed at the first rename
# after the journal's) and an uncommitted one (killed at the syncfs).
recover_all() {
  local dirn=$1 from=$2 to=$3 total=0 base s n mode expect W="$work/$1/w"
  for base in committed uncommitted; do
    fresh "$work/orig-$from" "$W"
    if [ $base = committed ]; then
      ASAN_OPTIONS=$traced_asan strace -f -o /dev/null -e trace=renameat \
        -e inject=renameat:signal=KILL:when=2 "$TOKENFS" migrate --to "$to" --user-pin env:U \
        --so-pin env:S --force "$W" >/dev/null 2>&1
      check "$dirn: crashed after the commit point" [ -e "$W/tokenfs.journal" ]
      expect=new
    else
      ASAN_OPTIONS=$traced_asan strace -f -o /dev/null -e trace=syncfs \
        -e inject=syncfs:signal=KILL:when=1 "$TOKENFS" migrate --to "$to" --user-pin env:U \
        --so-pin env:S --force "$W" >/dev/null 2>&1
      check "$dirn: crashed before the commit point with staged files" \
        [ ! -e "$W/tokenfs.journal" -a -e "$W/token.object.tokenfs-new" ]
      expect=old
    fi
    rm -rf "$work/$dirn/crash-$base" && mv "$W" "$work/$dirn/crash-$base"
    for mode in kill EIO; do
      for s in renameat unlinkat fsync syncfs; do
        for n in $(seq 1 50); do
          run_point "$dirn" "$mode" recover "$s" "$n" "$work/$dirn/crash-$base" "$from" "$to" "$expect"
          total=$((total + 1))
          [ "$last_done" = 1 ] && break
        done
      done
    done
  done
  eval "recovers_${dirn//-/_}=$total"
}

for dirn in to-gcm to-cbc; do
  mkdir -p "$work/$dirn"
  if [ $dirn = to-gcm ]; then from=cbc to=gcm; else from=gcm to=cbc; fi
  count_run $dirn $from $to
  kill_all $dirn $from $to
  fault_all $dirn $from $to
  recover_all $dirn $from $to
done

# --- the independent checks of every state, in one batch
"$PY" "$here/crash_check.py" --plain-ref "$work/plain" "$cases" >"$work/check.out" 2>&1
grep -v '^ok ' "$work/check.out" | grep -v 'passed,.*failed$' >&2
ok=$(grep -c '^ok ' "$work/check.out")
bad=$(grep -c '^FAIL ' "$work/check.out")
passed=$((passed + ok))
failed=$((failed + bad))
[ "$ok" -gt 0 ] || fail "crash_check.py checked nothing: $(tail -n3 "$work/check.out")"
[ "$((ok + bad))" -eq "$(wc -l <"$cases")" ] || fail "crash_check.py did not report every case"

echo "kill points tested: $kills_to_gcm (to gcm) + $kills_to_cbc (to cbc)"
echo "fault points tested: $faults_to_gcm (to gcm) + $faults_to_cbc (to cbc)"
echo "recovery kill/fault points tested: $recovers_to_gcm (to gcm) + $recovers_to_cbc (to cbc)"
echo "states checked by crash_check.py: $((ok + bad)); SoftHSM 2.6.1 logins: $hsm_runs"
echo "runtime: $(($(date +%s) - start))s"
finish
