#!/usr/bin/env bash
# What this library writes, read by real SoftHSM and by tokenfs:
#  - a CBC user PIN blob made by libtokenfs, put into a copy of a real token,
#    lets SoftHSM 2.6.1 log in with the new PIN (and no longer the old one);
#  - a GCM copy of each fixture token (PR #627's layout, made by libtokenfs)
#    decrypts to exactly the plaintext of the CBC original.
set -u
. "$(dirname "$0")/lib.sh"
: "${TESTKIT:?TESTKIT must point at tfs_testkit}"
need pkcs11-tool softhsm2-util python3
module=/usr/lib/softhsm/libsofthsm2.so
[ -e "$module" ] || { [ "${CI:-}" = true ] && { echo "FAIL: $module missing" >&2; exit 1; }; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- a new CBC user PIN, checked by SoftHSM itself
cp -a "$TFS_TESTDATA/store" "$work/login"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/login" >"$work/login.conf"
demo=$(grep -l demo "$work"/login/*/token.object | head -n1 | xargs dirname)
TFS_OLD_PIN=user-pin-1 TFS_NEW_PIN=brand-new-pin-42 "$TESTKIT" set-pin "$demo" user cbc
check "testkit set-pin" [ $? -eq 0 ]
out=$(SOFTHSM2_CONF="$work/login.conf" pkcs11-tool --module "$module" --token-label demo --login \
      --pin brand-new-pin-42 --list-objects 2>&1)
check "SoftHSM logs in with the PIN blob libtokenfs wrote: $out" [ $? -eq 0 ]
check "SoftHSM then shows private labels" grep -q 'imported-rsa-priv' <<<"$out"
SOFTHSM2_CONF="$work/login.conf" pkcs11-tool --module "$module" --token-label demo --login \
  --pin user-pin-1 --list-objects >/dev/null 2>&1
check "the old PIN no longer logs in" [ $? -ne 0 ]

# --- GCM copies decrypt to the CBC originals' plaintext
cp -a "$TFS_TESTDATA/store" "$work/gcm"
for t in demo:so-secret-1:user-pin-1 second:so-secret-2:user-pin-2; do
  IFS=: read -r label so user <<<"$t"
  dir=$(grep -l "$label" "$work"/gcm/*/token.object | head -n1 | xargs dirname)
  TFS_SO_PIN=$so TFS_USER_PIN=$user "$TESTKIT" to-layout "$dir" gcm
  check "$label: testkit to-layout gcm" [ $? -eq 0 ]
  export PIN_U=$user PIN_S=$so
  "$TOKENFS" dump --format json --reveal --token "$label" --user-pin env:PIN_U --so-pin env:PIN_S \
    "$TFS_TESTDATA/store" >"$work/cbc.json"
  check "$label: CBC original dumps clean" [ $? -eq 0 ]
  "$TOKENFS" dump --format json --reveal --token "$label" --user-pin env:PIN_U --so-pin env:PIN_S \
    "$work/gcm" >"$work/gcm.json"
  check "$label: GCM copy dumps clean" [ $? -eq 0 ]
  result=$(python3 - "$work/cbc.json" "$work/gcm.json" <<'PY'
import json, sys
cbc, gcm = (json.load(open(p))["tokens"][0] for p in sys.argv[1:3])
bad = []
if cbc["token_key"] != gcm["token_key"]: bad.append("token key")
if [b["layout"] for b in gcm["pin_blobs"].values()] != ["gcm", "gcm"]: bad.append("blob layouts")
def plain(v):
    """A value without file offsets, which move when ciphertext sizes change."""
    if isinstance(v, list):
        return [{k: plain(e[k]) for k in e if k != "offset"} if isinstance(e, dict) else e for e in v]
    return v
values = 0
for a, b in zip(cbc["objects"], gcm["objects"]):
    if a["file"] != b["file"]: bad.append("object order"); continue
    for x, y in zip(a["attributes"], b["attributes"]):
        if plain(x.get("value")) != plain(y.get("value")) or x["type"] != y["type"]:
            bad.append(f'{a["file"]} {x["type"]:#x}')
        if x.get("decrypted"):
            values += 1
            if x["layout"] != "cbc" or y["layout"] != "gcm": bad.append(f'{a["file"]} layout')
print(values, len(bad), "; ".join(bad[:5]))
PY
)
  read -r values nbad detail <<<"$result"
  check "$label: $values decrypted values equal in CBC and GCM ($detail)" [ "$nbad" = 0 ] && [ "$values" -gt 0 ]
done
finish
