#!/usr/bin/env bash
# export and backup write outside the token, through libtokenfs's atomic
# writer (store/fs_write.c) and the archive writer (backup/archive.c). Here
# strace kills each of them, or fails one system call, at every
# write-related call of a full run that touches the output (found from a
# traced clean run: each call's ordinal among calls of its name, which is
# how strace counts `when`), with no test hook in the code:
#   - ENOSPC on write, EIO on every other call (openat, fsync, renameat2,
#     fchmod, mkdir, close, unlink): exit 2 naming a file under the output,
#     and nothing left there (no key file, no manifest, no archive, no
#     temporary file); or exit 0 and the output byte-identical to a clean
#     run's.
#   - EINTR on write: retried, the output byte-identical to a clean run's.
#   - kill -9: every file under its final name is byte-identical to a clean
#     run's (a temporary file may be left: 0600, a dot-name), and a present
#     export.json means the whole export is there.
# Before fs_write.c removed a new file whose directory fsync failed, an
# EIO there left a plaintext private key behind (exit 2, no manifest).
set -u
. "$(dirname "$0")/lib.sh"
need strace tar perl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
traced_asan="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
cp -r "$TFS_TESTDATA/store" "$work/s"
find "$work/s" -type d -exec chmod 0700 {} + && find "$work/s" -type f -exec chmod 0600 {} +
D=$(dirname "$(grep -l demo "$work"/s/*/token.object)")
export UP=user-pin-1
SET=openat,write,fsync,fdatasync,rename,renameat,renameat2,link,linkat,unlink,unlinkat,mkdir,mkdirat,fchmod,fchown,close

# strace must be able to inject here (ptrace may be forbidden in a container).
ASAN_OPTIONS=$traced_asan strace -f -o /dev/null -e trace=getpid -e inject=getpid:error=EIO \
  true 2>/dev/null || {
  [ "${CI:-}" = true ] && { echo "FAIL: strace cannot inject here" >&2; exit 1; }
  echo "SKIP: strace cannot inject here" >&2; exit 77; }

# points LOG DIR: "SYSCALL N" for each call in LOG whose line names DIR.
points() { PDIR=$2 perl -ne 'BEGIN { $d = $ENV{PDIR} } if (/^\d+\s+(\w+)\(/) { $n{$1}++; print "$1 $n{$1}\n" if index($_, $d) >= 0 }' "$1"; }

traced() { # traced LOG INJECT CMD...: CMD under strace; its exit status
  local log=$1 inj=$2; shift 2
  # In a subshell that waits, so bash's "Killed" notice goes nowhere.
  (ASAN_OPTIONS=$traced_asan strace -f -y -o "$log" -e trace="$SET" ${inj:+-e inject="$inj"} "$@" \
    >/dev/null 2>"$work/err"; exit $?) 2>/dev/null
}

# Final-name files of DIR (none when DIR is absent) and dot-name leftovers.
finals() { find "$1" -mindepth 1 -maxdepth 1 ! -name '.*' -printf '%f\n' 2>/dev/null | sort; }
temps() { find "$1" -mindepth 1 -maxdepth 1 -name '.*.tokenfs-*' 2>/dev/null | wc -l; }
# same_as REF DIR: every final-name file of DIR equals REF's.
same_as() {
  local f
  for f in $(finals "$2"); do cmp -s "$1/$f" "$2/$f" || return 1; done
}
whole() { [ "$(finals "$1")" = "$(finals "$2")" ] && same_as "$1" "$2" && [ "$(temps "$2")" -eq 0 ]; }
empty() { [ -z "$(find "$1" -mindepth 1 2>/dev/null)" ]; }

# run_all WHAT OUTDIR REF SETUP CMD...: every kill and fault point of CMD.
# SETUP prepares OUTDIR before each run.
run_all() {
  local what=$1 out=$2 ref=$3 setup=$4; shift 4
  local log=$work/count.log sc n rc inj injs e bad=0 kills=0 faults=0 leftovers=0
  $setup
  traced "$log" "" "$@" || { fail "$what: a clean traced run failed: $(head -c 300 "$work/err")"; return; }
  points "$log" "$out" >"$work/points"
  check "$what: system calls on the output found ($(wc -l <"$work/points"))" [ -s "$work/points" ]
  while read -r sc n; do
    # kill -9 at this call
    $setup
    traced /dev/null "$sc:signal=KILL:when=$n" "$@"; rc=$?
    kills=$((kills + 1))
    leftovers=$((leftovers + $(temps "$out")))
    if ! same_as "$ref" "$out"; then
      fail "$what: kill at $sc #$n: a file under its final name differs from a clean run's"; bad=1
    elif [ -e "$out/export.json" ] && ! [ "$(finals "$out")" = "$(finals "$ref")" ]; then
      fail "$what: kill at $sc #$n: export.json without every file"; bad=1
    fi
    # a failure at this call
    e=EIO; [ "$sc" = write ] && e=ENOSPC
    injs=("$sc:error=$e:when=$n")
    [ "$sc" = write ] && injs+=("write:error=EINTR:when=$n")
    for inj in "${injs[@]}"; do
      $setup
      traced /dev/null "$inj" "$@"; rc=$?
      faults=$((faults + 1))
      if [ "$rc" -eq 0 ]; then
        whole "$ref" "$out" || { fail "$what: $inj: exit 0 but the output is not a clean run's"; bad=1; }
      elif [ "$rc" -eq 2 ]; then
        case $inj in *EINTR*) fail "$what: $inj: an interrupted write was not retried (exit 2)"; bad=1 ;; esac
        empty "$out" || { fail "$what: $inj: exit 2 but left $(find "$out" -mindepth 1 -printf '%f ')"; bad=1; }
        grep -q "$work" "$work/err" || { fail "$what: $inj: the error names no file: $(head -c 200 "$work/err")"; bad=1; }
      else
        fail "$what: $inj: exit $rc: $(head -c 300 "$work/err")"; bad=1
      fi
    done
  done <"$work/points"
  echo "$what: $kills kill points, $faults fault points; $leftovers temporary files left by kills"
  check "$what: $kills kill points and $faults fault points hold ($leftovers temporary files left by kills)" [ "$bad" -eq 0 ]
}

# --- export: 12 files of a demo token, plaintext keys (--no-encrypt).
X=("$TOKENFS" export --user-pin env:UP --no-encrypt --include-unextractable --out "$work/out" "$D")
"${X[@]}" >/dev/null 2>"$work/err" || fail "export: a clean run failed: $(cat "$work/err")"
mv "$work/out" "$work/xref"
check "export: a clean run wrote files" [ "$(finals "$work/xref" | wc -l)" -gt 2 ]
x_setup() { rm -rf "$work/out"; }
run_all export "$work/out" "$work/xref" x_setup "${X[@]}"

# The roll-back's removals are made durable like the writes: after the last
# unlink, an fsync of the output directory (else a crash could bring key
# files back without their manifest).
last=$(grep '^write ' "$work/points" | tail -1 | cut -d' ' -f2)
x_setup
(ASAN_OPTIONS=$traced_asan strace -f -y -o "$work/rb.log" -e trace=unlink,fsync,write \
  -e inject=write:error=ENOSPC:when="$last" "${X[@]}" >/dev/null 2>&1)
check "export roll-back: files removed, then the directory fsync'd" \
  env OUT="<$work/out>)" perl -ne 'if (/^\d+\s+unlink\(/) { $u = 1; $f = 0 }
    $f = 1 if $u && /^\d+\s+fsync\(/ && index($_, $ENV{OUT}) >= 0; END { exit !($u && $f) }' "$work/rb.log"

# A directory export makes is durable before the export is reported done:
# its parent is fsync'd after the mkdir, and when that fails nothing stays.
x_setup
(ASAN_OPTIONS=$traced_asan strace -f -y -o "$work/mk.log" -e trace=mkdir,fsync "${X[@]}" >/dev/null 2>&1)
check "export: the new directory's parent fsync'd right after the mkdir" \
  env P="<$work>)" perl -ne 'if ($m && !$d) { $ok = /^\d+\s+fsync\(/ && index($_, $ENV{P}) >= 0; $d = 1 }
    $m = 1 if /^\d+\s+mkdir\(/; END { exit !$ok }' "$work/mk.log"
n=$(grep -n "fsync(.*<$work>)" "$work/mk.log" | head -1 | cut -d: -f1)
n=$(head -n "$n" "$work/mk.log" | grep -c ' fsync(')
x_setup
(ASAN_OPTIONS=$traced_asan strace -f -o /dev/null -e trace=fsync -e inject=fsync:error=EIO:when="$n" \
  "${X[@]}" >/dev/null 2>"$work/err"); rc=$?
check "export: that fsync fails: exit 2 ($rc), no directory left" [ "$rc" -eq 2 ] && [ ! -e "$work/out" ]

# --- backup: tar and tar.zst archives of the whole store.
mkdir "$work/b"
b_setup() { rm -rf "$work/b"; mkdir "$work/b"; }
for ext in tar tar.zst; do
  B=("$TOKENFS" backup --out "$work/b/a.$ext" "$work/s")
  "${B[@]}" >/dev/null 2>"$work/err" || fail "backup $ext: a clean run failed: $(cat "$work/err")"
  mkdir "$work/bref-$ext" && mv "$work/b/a.$ext" "$work/bref-$ext/"
  run_all "backup $ext" "$work/b" "$work/bref-$ext" b_setup "${B[@]}"
done

# backup --force over an archive, and the directory fsync fails: the old
# archive is gone already, so the new one stays, and the message says so.
b_setup
echo old >"$work/b/a.tar"
ASAN_OPTIONS=$traced_asan strace -f -o /dev/null -e trace=fsync -e inject=fsync:error=EIO:when=2 \
  "$TOKENFS" backup --force --out "$work/b/a.tar" "$work/s" >/dev/null 2>"$work/err"; rc=$?
check "backup --force, directory fsync fails: exit 2 ($rc)" [ "$rc" -eq 2 ]
check "... the new archive is in place" cmp -s "$work/bref-tar/a.tar" "$work/b/a.tar"
check "... and the message says it may not survive a crash" grep -q "in place but may not survive" "$work/err"
# Without --force the same failure leaves no archive.
b_setup
ASAN_OPTIONS=$traced_asan strace -f -o /dev/null -e trace=fsync -e inject=fsync:error=EIO:when=2 \
  "$TOKENFS" backup --out "$work/b/a.tar" "$work/s" >/dev/null 2>"$work/err"; rc=$?
check "backup, directory fsync fails: exit 2 ($rc), no archive" [ "$rc" -eq 2 ] && empty "$work/b"
check "... and the message says it was removed" grep -q "the new file was removed" "$work/err"

# A file system without RENAME_NOREPLACE (EINVAL): the archive is linked
# into place and its temporary name unlinked. When that unlink fails, two
# names would share the file (a hard link, which the store reader refuses):
# the link is undone and the backup fails, leaving nothing.
b_setup
ASAN_OPTIONS=$traced_asan strace -f -o /dev/null -e trace=renameat2,unlink \
  -e inject=renameat2:error=EINVAL -e inject=unlink:error=EIO:when=1 \
  "$TOKENFS" backup --out "$work/b/a.tar" "$work/s" >/dev/null 2>"$work/err"; rc=$?
check "backup, link() fallback, unlinking the temporary name fails: exit 2 ($rc), nothing left ($(find "$work/b" -mindepth 1 -printf '%f '))" \
  [ "$rc" -eq 2 ] && empty "$work/b"
# ...and when it works, one name, the archive.
b_setup
ASAN_OPTIONS=$traced_asan strace -f -o /dev/null -e trace=renameat2 -e inject=renameat2:error=EINVAL \
  "$TOKENFS" backup --out "$work/b/a.tar" "$work/s" >/dev/null 2>"$work/err"; rc=$?
check "backup, link() fallback: exit 0 ($rc), the archive alone, one link" \
  [ "$rc" -eq 0 ] && [ "$(finals "$work/b")" = a.tar ] && [ "$(temps "$work/b")" -eq 0 ] && \
  [ "$(stat -c %h "$work/b/a.tar")" -eq 1 ]
finish
