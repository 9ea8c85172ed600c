#!/usr/bin/env bash
# export's writes under attack (findings of a hostile review): with --force a
# key file is the caller's own, never a previous owner's and never through a
# planted link; an output directory others control, or one inside the token,
# is refused; a failure part-way leaves nothing (no plaintext key without a
# manifest); a --pkcs12 name is checked before anything is written and never
# collides with a key's file; labels that collide with the fallback names
# still give every key its own file.
set -u
. "$(dirname "$0")/lib.sh"
need strace python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$TFS_TESTDATA/store" "$work/s"
D=$(dirname "$(grep -l demo "$work"/s/*/token.object)")
export UP=user-pin-1
x() { "$TOKENFS" export --user-pin env:UP --no-encrypt --include-unextractable "$@"; }
nfiles() { find "$1" -type f 2>/dev/null | wc -l; }

# --force over a file owned by another user and over a planted symlink.
mkdir "$work/o1" && chmod 700 "$work/o1"
touch "$work/o1/ec-p256-gen-priv_02.key.pem" && chown 65534:65534 "$work/o1/ec-p256-gen-priv_02.key.pem"
echo victim >"$work/victim" && chown 65534:65534 "$work/victim"
ln -s "$work/victim" "$work/o1/rsa2048-gen-priv_01.key.pem"
x --force --out "$work/o1" "$D" >/dev/null 2>"$work/err"; rc=$?
check "--force over foreign files: exit 0 ($rc: $(head -c 300 "$work/err"))" [ "$rc" -eq 0 ]
for f in ec-p256-gen-priv_02.key.pem rsa2048-gen-priv_01.key.pem; do
  check "$f: a regular file" [ -f "$work/o1/$f" ] && [ ! -L "$work/o1/$f" ]
  check "$f: owned by the caller, 0600" [ "$(stat -c '%u %a' "$work/o1/$f")" = "$(id -u) 600" ]
done
check "the symlink's target is untouched" [ "$(cat "$work/victim")" = victim ]

# Output directories the caller does not control, or inside the token.
mkdir -p "$work/shared" && chmod 1777 "$work/shared"
x --out "$work/shared" "$D" >/dev/null 2>"$work/err"; rc=$?
check "a directory others can write: exit 2 ($rc)" [ "$rc" -eq 2 ]
check "... says why" grep -q "lets others write" "$work/err"
mkdir "$work/real" && ln -s "$work/real" "$work/link"
x --out "$work/link" "$D" >/dev/null 2>"$work/err"; rc=$?
check "a symlinked directory: exit 2 ($rc)" [ "$rc" -eq 2 ] && [ "$(nfiles "$work/real")" -eq 0 ]
mkdir "$work/theirs" && chown 65534 "$work/theirs" && chmod 700 "$work/theirs"
x --out "$work/theirs" "$D" >/dev/null 2>"$work/err"; rc=$?
check "a directory owned by another user: exit 2 ($rc)" [ "$rc" -eq 2 ]
x --out "$D/keys" "$D" >/dev/null 2>"$work/err"; rc=$?
check "a directory inside the token: exit 2 ($rc), nothing made" [ "$rc" -eq 2 ] && [ ! -e "$D/keys" ]
check "... says why" grep -q "inside a token directory" "$work/err"

# --pkcs12 names checked before the first byte is written.
export PASS="correct horse 7"
for bad in "" "./" "nodir/x.p12" ".."; do
  rm -rf "$work/o2"
  "$TOKENFS" export --user-pin env:UP --passout env:PASS --pkcs12 "$bad" --out "$work/o2" "$D" \
    >/dev/null 2>"$work/err"; rc=$?
  check "--pkcs12 '$bad': exit 2 ($rc), nothing written" [ "$rc" -eq 2 ] && [ ! -e "$work/o2" ]
  check "--pkcs12 '$bad': a clean message" bash -c '! grep -qP "[\x00-\x08\x0e-\x1f\x7f-\xff]" "$1"' _ "$work/err"
done
# A bundle named like a key file: both kept, under --force too.
rm -rf "$work/o3"
"$TOKENFS" export --user-pin env:UP --passout env:PASS --include-unextractable --force \
  --pkcs12 ec-p256-gen-priv_02.key.pem --out "$work/o3" "$D" >/dev/null 2>"$work/err"; rc=$?
check "--pkcs12 named like a key file: exit 0 ($rc)" [ "$rc" -eq 0 ]
check "... the bundle is a PKCS#12 file" \
  openssl pkcs12 -in "$work/o3/ec-p256-gen-priv_02.key.pem" -passin env:PASS -noout
check "... and the EC key has a file of its own" \
  bash -c 'ls "$1" | grep -q "^ec-p256-gen-priv_02_.*\.key\.pem$"' _ "$work/o3"

# A key whose flags were edited to let it out (CKA_EXTRACTABLE true while
# CKA_NEVER_EXTRACTABLE says it never was) stays in without
# --include-unextractable.
cp -r "$work/s" "$work/t" && Dt=$(dirname "$(grep -l demo "$work"/t/*/token.object)")
aes=$Dt/ca4ee17d-5f67-dfc0-21da-9179d47c3894.object  # 'aes128-public-plaintext', extractable
python3 "$(dirname "$0")/damage_value.py" --bool "$aes" 0x164 1 >/dev/null  # CKA_NEVER_EXTRACTABLE
"$TOKENFS" export --user-pin env:UP --no-encrypt --out "$work/o5" \
  --object ca4ee17d-5f67-dfc0-21da-9179d47c3894 "$Dt" >"$work/out" 2>&1; rc=$?
check "an edited never-extractable key: not exported (exit $rc)" [ "$rc" -eq 1 ] && \
  [ -z "$(ls "$work/o5" 2>/dev/null | grep -v export.json)" ]
check "... and the report says it was edited" grep -q "tamper sign" "$work/out"

# A failure part-way (ENOSPC on a write) leaves nothing behind.
for n in 4 8 12; do
  rm -rf "$work/o4"
  ASAN_OPTIONS=detect_leaks=0 strace -f -o /dev/null -e trace=write -e inject=write:error=ENOSPC:when=$n \
    "$TOKENFS" export --user-pin env:UP --no-encrypt --include-unextractable --out "$work/o4" "$D" \
    >/dev/null 2>"$work/err"; rc=$?
  if [ "$rc" -eq 0 ]; then
    check "ENOSPC at write $n: a complete export" [ -f "$work/o4/export.json" ]
  else
    check "ENOSPC at write $n: exit 2 ($rc), no file left" [ "$rc" -eq 2 ] && [ "$(nfiles "$work/o4")" -eq 0 ]
  fi
done
finish
