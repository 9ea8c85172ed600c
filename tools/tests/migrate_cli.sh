#!/usr/bin/env bash
# tokenfs migrate and recover from the command line: refusals write nothing
# (a process with libsofthsm2.so mapped, a tampered value, a wrong PIN, a
# missing PIN, a read-only store, a dry run), minimal writes (public objects
# and lock files keep inode, mtime and bytes; a second run writes nothing),
# --keep-other-blob, and no PIN in any output.
set -u
. "$(dirname "$0")/lib.sh"
need python3 setpriv
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0
work=$(mktemp -d)
sleeper=
trap '[ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null; rm -rf "$work"' EXIT
module=/usr/lib/softhsm/libsofthsm2.so

fresh() { rm -rf "$work/store"; cp -a "$TFS_TESTDATA/store" "$work/store"; chmod -R go-rwx "$work/store"; }
tokdir() { dirname "$(grep -l "$1" "$work"/store/*/token.object | head -n1)"; }
# Every file's path, size, mode, inode, mtime and content hash.
snapshot() { (cd "$1" && find . -printf '%p %s %m %i %T@\n' | sort && find . -type f -exec sha256sum {} + | sort); }
export U=user-pin-1 S=so-secret-1

# --- a dry run decides and writes nothing
fresh
before=$(snapshot "$work/store")
out=$("$TOKENFS" migrate --force --to gcm --dry-run --user-pin env:U --so-pin env:S --token demo "$work/store" 2>&1)
check "dry run exits 0: $out" [ $? -eq 0 ]
check "dry run says what would change" grep -q "would be migrated" <<<"$out"
check "dry run writes nothing" [ "$before" = "$(snapshot "$work/store")" ]

# --- a wrong PIN, a missing PIN, a usage error: exit 2, nothing written
err=$("$TOKENFS" migrate --force --to gcm --user-pin pass:not-the-pin --token demo "$work/store" 2>&1 >/dev/null)
check "wrong PIN exits 2" [ $? -eq 2 ]
check "... and says so: $err" grep -q "wrong user PIN" <<<"$err"
"$TOKENFS" migrate --force --to gcm --token demo "$work/store" >/dev/null 2>&1
check "no PIN exits 2" [ $? -eq 2 ]
err=$("$TOKENFS" migrate --force --to gcm --user-pin env:U --token demo "$work/store" 2>&1 >/dev/null)
check "one PIN without --keep-other-blob exits 2" [ $? -eq 2 ]
check "... and says which blob needs which PIN: $err" grep -q "SO PIN blob can only be re-wrapped with the SO PIN" <<<"$err"
"$TOKENFS" migrate --force --to aes "$work/store" >/dev/null 2>&1
check "unknown layout exits 2" [ $? -eq 2 ]
check "refusals wrote nothing" [ "$before" = "$(snapshot "$work/store")" ]

# --- a tampered value: named, exit 1, nothing written
fresh
demo=$(tokdir demo)
priv=$(awk -F'\t' '$1=="demo" && $4=="rsa2048-gen-priv" {print $3}' "$TFS_TESTDATA/store-inventory.tsv" | head -n1)
victim="$demo/$priv"
check "inventory names the RSA private key" [ -f "$victim" ]
off=$(/usr/bin/python3 "$(dirname "$0")/damage_value.py" "$victim")
before=$(snapshot "$work/store")
err=$("$TOKENFS" migrate --force --to gcm --user-pin env:U --so-pin env:S --token demo "$work/store" 2>&1 >/dev/null)
rc=$?
check "tampered value exits 1 (got $rc)" [ "$rc" -eq 1 ]
check "the damaged value is named with file and offset $off: $err" grep -q "$priv: offset $off: CKA_PRIVATE_EXPONENT does not decrypt" <<<"$err"
check "tampered store: nothing written" [ "$before" = "$(snapshot "$work/store")" ]

# --- a read-only store (as an unprivileged user): exit 2, nothing written
fresh
chown -R 65534:65534 "$work/store"
chmod -R a-w "$work/store"
chmod a+x "$work"
before=$(snapshot "$work/store")
err=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$TOKENFS" migrate --force --to gcm \
      --user-pin env:U --so-pin env:S --token demo "$work/store" 2>&1 >/dev/null)
rc=$?
check "read-only store exits 2 (got $rc): $err" [ "$rc" -eq 2 ]
check "... naming the directory" grep -q "not writable" <<<"$err"
check "read-only store: nothing written" [ "$before" = "$(snapshot "$work/store")" ]
chmod -R u+w "$work/store"
chown -R 0:0 "$work/store"

# --- a process with SoftHSM loaded: refused, named, nothing written
fresh
if [ -e "$module" ] && /usr/bin/python3 -c 'import PyKCS11' 2>/dev/null; then
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/other" >"$work/sh.conf"
  mkdir -p "$work/other"
  SOFTHSM2_CONF="$work/sh.conf" /usr/bin/python3 -c '
import PyKCS11, sys, time
lib = PyKCS11.PyKCS11Lib(); lib.load(sys.argv[1])
print("ready", flush=True); time.sleep(120)' "$module" >"$work/sleeper.out" &
  sleeper=$!
  for _ in $(seq 100); do grep -q ready "$work/sleeper.out" 2>/dev/null && break; sleep 0.1; done
  before=$(snapshot "$work/store")
  err=$("$TOKENFS" migrate --to gcm --user-pin env:U --so-pin env:S --token demo "$work/store" 2>&1 >/dev/null)
  rc=$?
  check "running SoftHSM: exit 2 (got $rc)" [ "$rc" -eq 2 ]
  check "... names the process by pid: $err" grep -q "process $sleeper (python3) has SoftHSM loaded" <<<"$err"
  check "running SoftHSM: nothing written" [ "$before" = "$(snapshot "$work/store")" ]
  "$TOKENFS" recover "$work/store" >/dev/null 2>&1
  check "recover refuses too" [ $? -eq 2 ]
  "$TOKENFS" migrate --to gcm --dry-run --user-pin env:U --so-pin env:S --token demo "$work/store" >/dev/null 2>&1
  check "a dry run is allowed beside SoftHSM" [ $? -eq 0 ]
  out=$("$TOKENFS" migrate --force --to gcm --user-pin env:U --so-pin env:S --token demo "$work/store" 2>&1)
  check "--force goes on: $out" grep -q "migrated" <<<"$out"
  kill "$sleeper"; wait "$sleeper" 2>/dev/null; sleeper=
elif [ "${CI:-}" = true ]; then
  fail "SoftHSM or PyKCS11 missing in CI"
fi

# --- minimal writes: what does not change keeps inode, mtime and bytes
fresh
demo=$(tokdir demo)
keep() { (cd "$demo" && for f in *.lock $(awk -F'\t' '$1=="demo" && $8=="false" {print $3}' "$TFS_TESTDATA/store-inventory.tsv"); do
  stat -c '%n %i %Y.%y %s' "$f"; sha256sum "$f"; done); }
kept=$(keep)
nlocks=$(ls "$demo"/*.lock | wc -l)
npublic=$(awk -F'\t' '$1=="demo" && $8=="false"' "$TFS_TESTDATA/store-inventory.tsv" | wc -l)
check "fixture has public objects ($npublic) and lock files ($nlocks)" [ "$npublic" -gt 0 ] && [ "$nlocks" -gt 0 ]
sleep 0.05
json=$("$TOKENFS" migrate --force --to gcm --format json --user-pin env:U --so-pin env:S --token demo "$work/store" 2>/dev/null)
check "migrate exits 0" [ $? -eq 0 ]
check "public objects and lock files untouched" [ "$kept" = "$(keep)" ]
files=$(python3 -c 'import json,sys; t=json.load(sys.stdin)["tokens"][0]; print(t["files_written"], t["objects_rewritten"])' <<<"$json")
read -r nfiles nobjs <<<"$files"
check "files written = rewritten objects + token.object + generation ($files)" [ "$nfiles" -eq $((nobjs + 2)) ]
after=$(snapshot "$work/store")
out=$("$TOKENFS" migrate --force --to gcm --user-pin env:U --so-pin env:S --token demo "$work/store" 2>&1)
check "a second run exits 0" [ $? -eq 0 ]
check "a second run writes nothing: $out" [ "$after" = "$(snapshot "$work/store")" ]
check "... and says so" grep -q "nothing written" <<<"$out"

# --- --keep-other-blob: only the user PIN; the SO blob stays CBC
fresh
out=$("$TOKENFS" migrate --force --to gcm --keep-other-blob --user-pin env:U --token demo "$work/store" 2>&1)
check "--keep-other-blob exits 0" [ $? -eq 0 ]
check "... says who can log in: $out" grep -q "logs in with the user PIN" <<<"$out"
lay=$("$TOKENFS" dump --format json --token demo --user-pin env:U --so-pin env:S "$work/store" 2>/dev/null |
      python3 -c 'import json,sys; b=json.load(sys.stdin)["tokens"][0]["pin_blobs"]; print(b["so"]["layout"], b["user"]["layout"])')
check "SO blob kept CBC, user blob GCM ($lay)" [ "$lay" = "cbc gcm" ]
out=$("$TOKENFS" migrate --force --to gcm --user-pin env:U --so-pin env:S --token demo "$work/store" 2>&1)
check "with both PINs the migration completes: $out" grep -q "SO rewrapped, user already" <<<"$out"

# --- seals: one that verified is made anew; one that did not is left alone
fresh
demo=$(tokdir demo)
"$TOKENFS" verify-integrity --seal --user-pin env:U --token demo "$work/store" >/dev/null 2>&1
check "seal written" [ -f "$demo/tokenfs.seal" ]
out=$("$TOKENFS" migrate --force --to gcm --user-pin env:U --so-pin env:S --token demo "$work/store" 2>&1)
check "a seal that verified is remade: $out" grep -q "verified before the migration and was made anew" <<<"$out"
"$TOKENFS" verify-integrity --check-seal --fail-on error --user-pin env:U --token demo "$work/store" >/dev/null 2>&1
check "the remade seal verifies the migrated token" [ $? -eq 0 ]
fresh
demo=$(tokdir demo)
"$TOKENFS" verify-integrity --seal --user-pin env:U --token demo "$work/store" >/dev/null 2>&1
pub=$(awk -F'\t' '$1=="demo" && $4=="rsa2048-gen-pub" {print $3}' "$TFS_TESTDATA/store-inventory.tsv")
sed -i 's/rsa2048-gen-pub/rsa2048-gen-PUB/' "$demo/$pub"
sealsum=$(sha256sum <"$demo/tokenfs.seal")
out=$("$TOKENFS" migrate --force --to gcm --user-pin env:U --so-pin env:S --token demo "$work/store" 2>&1)
check "a seal that did not verify is reported: $out" grep -q "did NOT verify" <<<"$out"
check "... and left alone" [ "$sealsum" = "$(sha256sum <"$demo/tokenfs.seal")" ]

# --- no PIN in any output or file other than as its wrapped blob
fresh
export U2=user-pin-2 S2=so-secret-2
all=$("$TOKENFS" migrate --force --to gcm --user-pin env:U2 --so-pin env:S2 --token second --format json "$work/store" 2>&1
      "$TOKENFS" migrate --force --to cbc --user-pin env:U2 --so-pin env:S2 --token second "$work/store" 2>&1
      "$TOKENFS" migrate --force --to gcm --user-pin pass:wrong --so-pin env:S2 --token second "$work/store" 2>&1)
check "no PIN in any migrate output" [ -z "$(grep -e user-pin-2 -e so-secret-2 <<<"$all")" ]
check "no PIN in any file of the store" [ -z "$(grep -rl -e user-pin-2 -e so-secret-2 "$work/store")" ]

finish
