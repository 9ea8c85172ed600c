#!/usr/bin/env bash
# tokenfs backup from the command line: every archive format unpacks to the
# very files, modes and mtimes of the store; the archive is 0600 whatever
# the umask; an existing file is never replaced without --force; --dry-run
# writes nothing; and a seal inside a backup names a changed byte in any
# member. (A backup of a store SoftHSM is writing to: backup_live.py.)
# The sealed backup is checked both unpacked and as the archive itself, and
# a restored backup is opened and used by real SoftHSM.
set -u
. "$(dirname "$0")/lib.sh"
need python3 tar unzip zstd xz softhsm2-util
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -a "$TFS_TESTDATA/store" "$work/store"
# git does not keep modes: restore what SoftHSM creates.
find "$work/store" -type d -exec chmod 0700 {} + && find "$work/store" -type f -exec chmod 0600 {} +
store="$work/store"
demo=$(grep -l demo "$store"/*/token.object | xargs dirname)
demodir=$(basename "$demo")
export UPIN=user-pin-1 SPIN=so-secret-1
b() { "$TOKENFS" backup "$@"; }

# Every format: unpacked, the same files with the same bytes, modes and
# mtimes (tar and unzip restore them).
for ext in tar tar.gz tgz tar.xz tar.zst zip; do
  out="$work/b.$ext"
  (umask 000 && b --out "$out" "$store" >"$work/log" 2>&1); rc=$?
  check "$ext: exit $rc, want 0 ($(cat "$work/log"))" [ $rc -eq 0 ]
  check "$ext: archive is 0600 under umask 000" [ "$(stat -c %a "$out")" = 600 ]
  x="$work/x-$ext"; mkdir "$x"
  case $ext in
    zip) (cd "$x" && unzip -q "$out") ;;
    *) tar xf "$out" -C "$x" ;;
  esac
  check "$ext: unpacked files equal the store" diff -r "$store" "$x"
  same_meta=yes
  while IFS= read -r f; do
    [ "$(stat -c '%a %Y' "$store/$f")" = "$(stat -c '%a %Y' "$x/$f")" ] || { same_meta="no: $f"; break; }
  done < <(cd "$store" && find . -mindepth 1)
  check "$ext: modes and mtimes preserved ($same_meta)" [ "$same_meta" = yes ]
done
check "tar.gz is gzip" [ "$(head -c2 "$work/b.tar.gz" | od -An -tx1 | tr -d ' ')" = 1f8b ]
check "tar.zst is zstd" zstd -t -q "$work/b.tar.zst"
check "tar.xz is xz" xz -t "$work/b.tar.xz"

# Never clobber; --force replaces; nothing left beside the target.
before=$(sha256sum "$work/b.tar" | cut -d' ' -f1)
err=$(b --out "$work/b.tar" "$store" 2>&1 >/dev/null); rc=$?
check "existing file: exit $rc, want 2" [ $rc -eq 2 ]
case "$err" in *"exists; --force replaces it"*) pass ;; *) fail "clobber message: $err" ;; esac
check "existing file: unchanged" [ "$(sha256sum "$work/b.tar" | cut -d' ' -f1)" = "$before" ]
b --force --token second --out "$work/b.tar" "$store" >/dev/null 2>&1
check "--force: replaced (one token now)" [ "$(tar tf "$work/b.tar" | cut -d/ -f1 | sort -u | wc -l)" -eq 1 ]
ln -s "$work/b.tar" "$work/link.tar"
b --force --out "$work/link.tar" "$store" >/dev/null 2>&1; rc=$?
check "--force does not replace a symlink: exit $rc" [ $rc -eq 2 ] && [ -L "$work/link.tar" ]
check "no temporary file left" [ -z "$(ls -A "$work" | grep tokenfs-)" ]

# Refusals before anything is read or written.
b --out "$work/b.rar" "$store" >/dev/null 2>&1; rc=$?
check "unknown extension: exit $rc, want 2" [ $rc -eq 2 ] && [ ! -e "$work/b.rar" ]
b --out "$work/n.tar" --token nosuch "$store" >/dev/null 2>&1; rc=$?
check "--token selecting nothing: exit $rc, want 2, no file" [ $rc -eq 2 ] && [ ! -e "$work/n.tar" ]
b --out "$work/w.tar" --user-pin nosuch=pass:wrong-pin "$store" >/dev/null 2>&1; rc=$?
check "--user-pin TOKEN= naming no token: exit $rc, want 2, no file" [ $rc -eq 2 ] && [ ! -e "$work/w.tar" ]
# A wrong PIN is a finding about its token: archived, without a seal (exit 1).
err=$(b --out "$work/w.tar" --user-pin pass:wrong-pin "$store" 2>&1 >/dev/null); rc=$?
check "wrong PIN: exit $rc, want 1, archived unsealed" [ $rc -eq 1 ] && [ -e "$work/w.tar" ] &&
  ! tar tf "$work/w.tar" | grep -q tokenfs.seal
check "wrong PIN: [pin.wrong] for each token" [ "$(grep -c '\[pin.wrong\]' <<<"$err")" -eq 2 ]
rm -f "$work/w.tar"
check "no temporary file after refusals" [ -z "$(ls -A "$work" | grep tokenfs-)" ]

# --dry-run reads everything and writes nothing; reports counts.
out=$(b --dry-run --format json --out "$work/d.tar.gz" "$store"); rc=$?
check "dry run: exit $rc" [ $rc -eq 0 ] && [ ! -e "$work/d.tar.gz" ]
want_files=$(find "$store" -type f | wc -l)
got=$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["format_version"], len(d["tokens"]), d["objects"], d["files"], d["dry_run"])' <<<"$out")
check "dry run: JSON counts (got $got)" [ "$got" = "1 2 17 $want_files True" ]
check "dry run: text says would" sh -c "'$TOKENFS' backup -n --out '$work/d.tar' '$store' | grep -q '^dry run: would archive 2 tokens, 17 objects'"

# The backup reads like dump: nothing in the store changes.
snap() { (cd "$store" && find . -printf '%p %m %s %T@\n' | sort && find . -type f -exec sha256sum {} + | sort); }
snap >"$work/s1"
b --user-pin env:UPIN --token demo --out "$work/r.tar" "$store" >/dev/null 2>&1
snap >"$work/s2"
check "the store is untouched by a sealed backup" cmp -s "$work/s1" "$work/s2"
"$TOKENFS" diff --user-pin env:UPIN --token demo "$TFS_TESTDATA/store" "$store" >/dev/null 2>&1
snap >"$work/s3"
check "the store is untouched by diff" cmp -s "$work/s1" "$work/s3"

# A seal inside the backup: checks clean unpacked, and names a change of
# any byte of any member.
b --user-pin env:UPIN --token demo --out "$work/s.tar.gz" "$store" >"$work/log" 2>&1
check "sealed backup: says sealed" grep -q 'sealed; the same state' "$work/log"
clean="$work/sealed"; mkdir "$clean" && tar xzf "$work/s.tar.gz" -C "$clean"
check "the seal is a member" [ -f "$clean/$demodir/tokenfs.seal" ]
check "the seal is 0600" [ "$(stat -c %a "$clean/$demodir/tokenfs.seal")" = 600 ]
check "no plaintext of the user PIN in the archive" sh -c "! zcat '$work/s.tar.gz' | grep -a -q user-pin-1"
vs() { "$TOKENFS" verify-integrity --user-pin env:UPIN --so-pin env:SPIN --check-seal "$@"; }
vs "$clean/$demodir" >"$work/out" 2>&1
check "unpacked: matches its seal" grep -q 'the token matches its seal' "$work/out"
vs --token demo "$work/s.tar.gz" >"$work/out" 2>&1
check "the archive itself: matches its seal" grep -q 'the token matches its seal' "$work/out"
detected=0 missed=""
for f in $(cd "$clean/$demodir" && ls); do
  [ "$f" = tokenfs.seal ] && continue
  size=$(stat -c %s "$clean/$demodir/$f")
  # generation: a flip of a high byte is a jump (an error); of the low
  # byte, a small rise is what SoftHSM does in use (information, below).
  case "$f" in
    generation) offsets="0 3" ;;
    token.object) offsets="40" ;;
    # object files: the middle byte of one, the last byte of the next
    *) if [ "$size" -eq 0 ]; then offsets=append
       elif [ $((detected % 2)) -eq 0 ]; then offsets=$((size / 2))
       else offsets=$((size - 1)); fi ;;
  esac
  for off in $offsets; do
    t="$work/t"; rm -rf "$t"; cp -a "$clean" "$t"
    python3 - "$t/$demodir/$f" "$off" <<'EOF'
import sys
p, off = sys.argv[1], sys.argv[2]
b = bytearray(open(p, "rb").read())
if off == "append":
    b += b"\0"
else:
    b[int(off)] ^= 0xFF
open(p, "wb").write(b)
EOF
    if vs --fail-on error "$t/$demodir" 2>&1 | grep -Eq '^ +error +seal\.'; then
      detected=$((detected + 1))
    else
      missed="$missed $f@$off"
    fi
  done
done
check "every changed member named by the seal ($detected detected; missed:${missed:- none})" [ -z "$missed" ] && [ $detected -gt 25 ]
t="$work/t"; rm -rf "$t"; cp -a "$clean" "$t"
python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[7]+=1; open(p,"wb").write(b)' "$t/$demodir/generation"
check "generation + 1: seal.generation-bumped, information" sh -c "'$TOKENFS' verify-integrity --user-pin env:UPIN --check-seal '$t/$demodir' | grep -Eq '^ +info +seal.generation-bumped'"
# The seal itself, changed: bad MAC.
t="$work/t"; rm -rf "$t"; cp -a "$clean" "$t"
sed -i 's/"label":"demo"/"label":"demO"/' "$t/$demodir/tokenfs.seal"
check "a changed seal: seal.bad-mac" sh -c "'$TOKENFS' verify-integrity --user-pin env:UPIN --check-seal '$t/$demodir' | grep -q seal.bad-mac"

# A torn object that stays torn is damage, not a write in flux: archived as
# it is (it is what the store holds), named on stderr and in the JSON, exit 1.
dam="$work/dam"; cp -a "$store" "$dam"
victim=$(find "$dam/$demodir" -name '*.object' ! -name token.object -size +1k | sort | head -1)
truncate -s 500 "$victim"
vname=$(basename "$victim")
b --user-pin env:UPIN --token demo --out "$work/dam.tar" "$dam" >"$work/out" 2>"$work/err"; rc=$?
check "torn object: exit $rc, want 1" [ $rc -eq 1 ]
check "torn object: still archived, torn bytes and all" sh -c "tar xOf '$work/dam.tar' '$demodir/$vname' | cmp -s - '$victim'"
check "torn object: a warning names the file ($(cat "$work/err"))" grep -q "warning: backup: $demodir/$vname: offset [0-9]*: " "$work/err"
check "torn object: the report says damaged" grep -q '1 damaged object files archived as they are' "$work/out"
b --format json --token demo --out "$work/dam.tgz" "$dam" >"$work/out" 2>/dev/null; rc=$?
got=$(python3 -c 'import json,sys; d=json.load(sys.stdin); t=d["tokens"][0]; print(d["exit"], [x["file"] for x in t["damaged"]], bool(t["damaged"][0]["defect"]))' <"$work/out")
check "torn object: JSON damaged list (exit $rc, got $got)" [ $rc -eq 1 ] && [ "$got" = "1 ['$vname'] True" ]
got=$(b --format json --token demo --out "$work/ok.tar" "$store" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"][0]["damaged"])')
check "healthy store: empty damaged list (got $got)" [ "$got" = "[]" ]

# An archive inside the store being read is refused (it would archive its
# own temporary file and leave a file in a token directory): exit 2, nothing
# written; also through a symlink, and into the tokendir itself.
ins="$work/ins"; cp -a "$store" "$ins"
snapi() { (cd "$ins" && find . -printf '%p %s\n' | sort); }
snapi >"$work/i1"
ln -s "$ins/$demodir" "$work/tokdir-link"
for o in "$ins/$demodir/in.tar" "$ins/in.tar" "$work/tokdir-link/in.tar" "$ins/$demodir/../$demodir/in.zip"; do
  err=$(b --out "$o" "$ins" 2>&1 >/dev/null); rc=$?
  check "--out $o inside the store: exit $rc, want 2" [ $rc -eq 2 ]
  case "$err" in *"inside the store being backed up"*) pass ;; *) fail "inside message: $err" ;; esac
done
err=$(b --out "$ins/$demodir/in2.tar" "$ins/$demodir" 2>&1 >/dev/null); rc=$?
check "--out inside the token directory given as PATH: exit $rc, want 2" [ $rc -eq 2 ]
case "$err" in *"inside the store being backed up"*) pass ;; *) fail "inside message: $err" ;; esac
snapi >"$work/i2"
check "nothing written inside the store" cmp -s "$work/i1" "$work/i2"
b --out "$work/outside.tar" "$ins/$demodir" >/dev/null 2>&1; rc=$?
check "--out beside the store: exit $rc, want 0" [ $rc -eq 0 ]

# Without a PIN, a seal already in the store goes along as it is, with a
# note (text and JSON) that it was not checked against the archived bytes;
# a sealed backup replaces it and says nothing of the kind.
os="$work/oldseal"; cp -a "$clean" "$os"
b --token demo --out "$work/os.tar" "$os" >"$work/out" 2>&1; rc=$?
check "old seal, no PIN: exit $rc, want 0" [ $rc -eq 0 ]
check "old seal, no PIN: archived as it was" sh -c "tar xOf '$work/os.tar' '$demodir/tokenfs.seal' | cmp -s - '$os/$demodir/tokenfs.seal'"
check "old seal, no PIN: a note says unchecked ($(cat "$work/out"))" grep -q "note: the token's existing tokenfs.seal is archived as it was, not checked" "$work/out"
got=$(b --format json --token demo --out "$work/os2.tar" "$os" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"][0]["old_seal_unchecked"])')
check "old seal, no PIN: JSON old_seal_unchecked (got $got)" [ "$got" = True ]
b --user-pin env:UPIN --token demo --out "$work/os3.tar" "$os" >"$work/out" 2>&1
check "old seal, PIN: no note" sh -c "! grep -q 'not checked' '$work/out'"
got=$(b --format json --token demo --out "$work/os4.tar" "$store" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"][0]["old_seal_unchecked"])')
check "no seal in the store: old_seal_unchecked false (got $got)" [ "$got" = False ]

# A write that fails (here a file size limit, as a full disk would) names
# the system's reason, not only libarchive's "Write error"; no file is left.
err=$( (trap '' XFSZ; ulimit -f 8; "$TOKENFS" backup --out "$work/big.tar" "$store") 2>&1 >/dev/null); rc=$?
check "write error: exit $rc, want 2" [ $rc -eq 2 ]
case "$err" in *"File too large"*) pass ;; *) fail "write error without its reason: $err" ;; esac
check "write error: no archive, no temporary file" [ ! -e "$work/big.tar" ] && [ -z "$(ls -A "$work" | grep tokenfs-)" ]

# A restore is what a backup is for: a sealed tar.gz unpacked with tar into
# a fresh tokendir is opened by real SoftHSM 2.6.1, which logs in with both
# PINs, finds every attribute as before and signs and encrypts with the keys
# (p11check.py; it logs in, so it gets copies).
cp -a "$store" "$work/before" && chmod -R go-rwx "$work/before"
/usr/bin/python3 "$here/p11check.py" snapshot "$work/before" demo env:UPIN "$work/before.json" >/dev/null
check "restore: snapshot of the store before" [ $? -eq 0 ]
b --user-pin env:UPIN --token demo --out "$work/restore.tar.gz" "$store" >/dev/null 2>&1
check "restore: sealed backup made" [ -s "$work/restore.tar.gz" ]
mkdir -m 0700 "$work/restored" && tar xzf "$work/restore.tar.gz" -C "$work/restored"
"$TOKENFS" verify-integrity --user-pin env:UPIN --check-seal "$work/restored" >"$work/out" 2>&1
check "restore: the seal holds on the restored store" grep -q "the token matches its seal" "$work/out"
out=$(/usr/bin/python3 "$here/p11check.py" check "$work/restored" demo env:SPIN env:UPIN "$work/before.json" --wrong-pin wrong-pin-0 2>&1)
check "restore: SoftHSM reads and uses every key of the restored token ($(echo "$out" | tail -3 | tr '\n' ' '))" [ $? -eq 0 ]

finish
