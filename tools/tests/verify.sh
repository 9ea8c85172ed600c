#!/usr/bin/env bash
# verify-integrity from the command line: exit codes and --fail-on, what a
# run without a PIN says it skipped, wrong PINs, permissions, damaged files,
# and a fresh all-private token from real SoftHSM that verifies clean.
set -u
. "$(dirname "$0")/lib.sh"
need python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -a "$TFS_TESTDATA/store" "$work/store"
# git does not keep modes: restore what SoftHSM creates.
find "$work/store" -type d -exec chmod 0700 {} + && find "$work/store" -type f -exec chmod 0600 {} +
store="$work/store"
export UPIN=user-pin-1 SOPIN=so-secret-1 BAD=not-the-pin
v() { "$TOKENFS" verify-integrity "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# Clean fixtures: only the plaintext keys they hold on purpose (warnings).
v "$store" >"$work/out" 2>&1; rc=$?
check "no PIN: exit $rc, want 1 (plaintext fixture keys)" [ $rc -eq 1 ]
check "no PIN: says what was not checked" grep -q 'not checked: decryption' "$work/out"
codes=$(v --format json "$store" | json '" ".join(sorted({f["code"] for t in d["tokens"] for f in t["findings"] if f["severity"] != "info"}))')
check "clean fixtures: only key.plaintext above info (got: $codes)" [ "$codes" = "key.plaintext" ]
v --fail-on error "$store" >/dev/null 2>&1
check "--fail-on error: exit 0" [ $? -eq 0 ]
v --fail-on info "$store" >/dev/null 2>&1
check "--fail-on info: exit 1" [ $? -eq 1 ]
out=$(v --format json --user-pin env:UPIN --token demo "$store")
check "user PIN: every value decrypted" [ "$(json 'd["tokens"][0]["summary"]["values_decrypted"] == d["tokens"][0]["summary"]["values_encrypted"] > 0' <<<"$out")" = True ]
check "user PIN: nothing skipped" [ "$(json 'd["tokens"][0]["summary"]["not_checked"], d["tokens"][0]["summary"]["not_checked_reason"]' <<<"$out")" = "[] None" ]
check "user PIN: mechanism sets need 2.4.0" [ "$(json 'd["tokens"][0]["summary"]["min_softhsm"]' <<<"$out")" = 2.4.0 ]
check "user PIN: every value is CBC, needs_gcm false" [ "$(json 'd["tokens"][0]["summary"]["needs_gcm"]' <<<"$out")" = False ]
# Machine fields hold codes: a version, a boolean (null: unknown), a list.
out=$(v --format json --token demo "$store")
check "no PIN: min_softhsm is a version" [ "$(json 'd["tokens"][0]["summary"]["min_softhsm"]' <<<"$out")" = 2.4.0 ]
check "no PIN: needs_gcm unknown (null)" [ "$(json 'd["tokens"][0]["summary"]["needs_gcm"]' <<<"$out")" = None ]
check "no PIN: not_checked lists codes" [ "$(json '",".join(d["tokens"][0]["summary"]["not_checked"]), d["tokens"][0]["summary"]["not_checked_reason"]' <<<"$out")" = "pin-blobs,encrypted-values,private-values no-pin" ]
# After a migration to GCM the token needs a #627 build, and says so.
cp -a "$store" "$work/gcm"
"$TOKENFS" migrate --to gcm --force --token demo --user-pin env:UPIN --so-pin env:SOPIN "$work/gcm" >/dev/null 2>&1
check "migrated to GCM" [ $? -eq 0 ]
out=$(v --format json --token demo --user-pin env:UPIN "$work/gcm")
check "GCM store: needs_gcm true, min_softhsm still a version" [ "$(json 'd["tokens"][0]["summary"]["needs_gcm"], d["tokens"][0]["summary"]["min_softhsm"]' <<<"$out")" = "True 2.4.0" ]
v --token demo --user-pin env:UPIN "$work/gcm" | grep -q 'loads in SoftHSM 2.4.0 built with pull request #627'
check "GCM store: the text says a #627 build" [ $? -eq 0 ]
rm -rf "$work/gcm"

# A wrong PIN is a finding about its token (pin.wrong, exit 1), with the
# library's message; the token is still reported.
out=$(v --user-pin env:BAD --token demo "$store" 2>/dev/null); rc=$?
check "wrong PIN: exit $rc, want 1" [ $rc -eq 1 ]
check "wrong PIN: a pin.wrong finding" grep -q "error *pin.wrong" <<<"$out"
case "$out" in *"wrong user PIN for token 'demo'"*) pass ;; *) fail "wrong PIN message: $out" ;; esac

# Permissions that expose keys.
demo=$(grep -l demo "$store"/*/token.object | head -n1 | xargs dirname)
victim=$(ls "$demo" | grep -v '^token' | grep '\.object$' | head -n1)
chmod 0644 "$demo/$victim"
out=$(v --format json --token demo "$store")
check "world-readable object: perm.exposed on it" [ "$(json "any(f['code']=='perm.exposed' and f['path'].endswith('$victim') for f in d['tokens'][0]['findings'])" <<<"$out")" = True ]
chmod 0600 "$demo/$victim"

# A damaged object: named with its offset, the rest still checked.
cp "$TFS_TESTDATA/malformed/unknown-kind-7.object" "$demo/00000000-0000-0000-0000-000000000000.object"
touch "$demo/00000000-0000-0000-0000-000000000000.lock"
chmod 0600 "$demo"/00000000-*
out=$(v --format json --token demo "$store")
check "malformed object: object.malformed at offset 16" [ "$(json "any(f['code']=='object.malformed' and f['offset']==16 and f['object'].startswith('00000000') for f in d['tokens'][0]['findings'])" <<<"$out")" = True ]
check "malformed object: exit 1" [ "$(json 'd["exit"]' <<<"$out")" = 1 ]
cp "$TFS_TESTDATA/malformed/trunc-in-bool.object" "$demo/00000000-0000-0000-0000-000000000000.object"
out=$(v --format json --token demo "$store")
check "cut object: object.torn" [ "$(json "any(f['code']=='object.torn' and f['object'].startswith('00000000') for f in d['tokens'][0]['findings'])" <<<"$out")" = True ]
rm "$demo"/00000000-*

# Seals: --seal then --check-seal on an untouched store passes; any tamper
# fails naming the file and the attribute; a seal needs a PIN.
v --seal --token demo "$store" >/dev/null 2>&1
check "--seal without a PIN: exit 2" [ $? -eq 2 ]
v --seal --user-pin env:UPIN --token demo --fail-on error "$store" >/dev/null 2>&1
check "--seal: exit 0" [ $? -eq 0 ]
check "--seal wrote tokenfs.seal" [ -s "$demo/tokenfs.seal" ]
v --check-seal --user-pin env:UPIN --token demo --fail-on error "$store" >/dev/null 2>&1
check "--check-seal on the untouched store: exit 0" [ $? -eq 0 ]
cp -a "$store" "$work/sealed"
sdemo="$work/sealed/$(basename "$demo")"
seal_check() { v --check-seal --user-pin env:UPIN --token demo --format json "$work/sealed"; }
# A flipped bool in a public object: SoftHSM cannot tell, the seal can.
pubdata=$(python3 - "$sdemo" <<'PY'
import os, struct, sys
d = sys.argv[1]
for f in sorted(os.listdir(d)):
    if not f.endswith(".object") or f == "token.object":
        continue
    b = open(os.path.join(d, f), "rb").read()
    off = 8
    while off < len(b):
        t, k = struct.unpack_from(">QQ", b, off)
        if t == 0x170 and k == 1:       # CKA_MODIFIABLE, a bool
            print(f, off + 16)
            sys.exit(0)
        n = {1: 1, 2: 8}.get(k)
        if n is None:
            n = 8 + struct.unpack_from(">Q", b, off + 16)[0] * (8 if k == 5 else 1)
        off += 16 + n
PY
)
read -r pfile poff <<<"$pubdata"
printf '\x00' | dd of="$sdemo/$pfile" bs=1 seek="$poff" conv=notrunc status=none
out=$(seal_check); rc=$(json 'd["exit"]' <<<"$out")
check "flipped CKA_MODIFIABLE: exit 1" [ "$rc" = 1 ]
check "flipped CKA_MODIFIABLE: named with its file and attribute" [ "$(json "any(f['code']=='seal.attribute-changed' and f['path'].endswith('$pfile') and f['attribute_name']=='CKA_MODIFIABLE' for f in d['tokens'][0]['findings'])" <<<"$out")" = True ]
cp -a "$demo/$pfile" "$sdemo/$pfile"
touch "$sdemo/stray-file"
out=$(seal_check)
check "added file: seal.file-added" [ "$(json "any(f['code']=='seal.file-added' and f['path'].endswith('stray-file') for f in d['tokens'][0]['findings'])" <<<"$out")" = True ]
rm "$sdemo/stray-file"
python3 - "$sdemo/tokenfs.seal" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
m = re.search(r'"mac"\s*:\s*"([0-9a-f])', s)
c = "1" if m.group(1) == "0" else "0"   # always a different digit
open(p, "w").write(s[:m.start(1)] + c + s[m.end(1):])
PY
out=$(seal_check)
check "edited seal: seal.bad-mac" [ "$(json "[f['code'] for f in d['tokens'][0]['findings'] if f['severity']=='error']" <<<"$out")" = "['seal.bad-mac']" ]

# A fresh token from real SoftHSM whose keys are all private: exit 0 and
# nothing above info, with the user PIN.
/usr/bin/python3 "$(dirname "$0")/make_fresh_store.py" "$work/fresh/tokens"; rc=$?
if [ $rc -eq 77 ]; then need softhsm2-util; fi
check "fresh store made by SoftHSM" [ $rc -eq 0 ]
export FPIN=fresh-user
v --user-pin env:FPIN "$work/fresh/tokens" >"$work/out" 2>&1; rc=$?
check "fresh all-private token: exit $rc, want 0 ($(head -c 600 "$work/out"))" [ $rc -eq 0 ]
n=$(v --format json --user-pin env:FPIN "$work/fresh/tokens" | json 'sum(1 for t in d["tokens"] for f in t["findings"] if f["severity"] != "info")')
check "fresh all-private token: no finding above info (got $n)" [ "$n" = 0 ]
finish
