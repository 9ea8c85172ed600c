#!/usr/bin/env bash
# dump's readable side: decoded certificate fields equal the openssl
# command's reading of the same bytes; keys pair into private key, public
# key and certificate; bad DER stays hex with a one-line decode error.
set -u
. "$(dirname "$0")/lib.sh"
need python3 openssl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
store="$TFS_TESTDATA/store"
export UPIN=user-pin-1 UPIN2=user-pin-2
"$TOKENFS" dump --format json --token demo --user-pin env:UPIN "$store" >"$work/demo.json"
check "dump with PIN" [ $? -eq 0 ]

# The certificate's decoded fields against openssl x509 on the same DER.
python3 - "$work/demo.json" "$work/cert.der" >"$work/dec.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for o in d["tokens"][0]["objects"]:
    a = {x["name"]: x for x in o["attributes"]}
    if a["CKA_CLASS"]["value"] == 1:
        v = a["CKA_VALUE"]
        open(sys.argv[2], "wb").write(bytes.fromhex(v["value"]))
        dec = v["decoded"]
        print(dec["subject"]); print(dec["issuer"]); print(dec["serial"])
        print(dec["sha256_fingerprint"]); print(dec["not_before"]); print(dec["not_after"])
        print(o["summary"])
PY
mapfile -t dec <"$work/dec.txt"
x() { openssl x509 -inform DER -in "$work/cert.der" -noout -nameopt RFC2253,-esc_msb "$@"; }
check "subject = openssl (${dec[0]})" [ "subject=${dec[0]}" = "$(x -subject)" ]
check "issuer = openssl" [ "issuer=${dec[1]}" = "$(x -issuer)" ]
check "serial = openssl (${dec[2]})" [ "serial=${dec[2]^^}" = "$(x -serial)" ]
check "fingerprint = openssl" [ "sha256 Fingerprint=${dec[3]}" = "$(x -fingerprint -sha256)" ]
nb=$(date -u -d "$(x -startdate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ)
na=$(date -u -d "$(x -enddate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ)
check "notBefore = openssl ($nb)" [ "${dec[4]}" = "$nb" ]
check "notAfter = openssl ($na)" [ "${dec[5]}" = "$na" ]
check "certificate summary line (${dec[6]})" [ "${dec[6]}" = "certificate RSA 2048 'imported-rsa-cert' id 06" ]

# Pairing: demo's three keys, second's P-384 pair.
keys=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join(sorted("%s:%s:%d" % (k["id"], k["summary"].replace(" ", "_"),
      sum(k[p] is not None for p in ("private", "public", "certificate"))) for k in d["tokens"][0]["keys"])))' "$work/demo.json")
check "demo keys paired ($keys)" [ "$keys" = "01:RSA_2048:2 02:EC_P-256:2 06:RSA_2048:3" ]
keys=$("$TOKENFS" dump --format json --token second --user-pin env:UPIN2 "$store" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join("%s:%s:%d" % (k["id"], k["summary"].replace(" ", "_"),
      sum(k[p] is not None for p in ("private", "public", "certificate"))) for k in d["tokens"][0]["keys"]))')
check "second keys paired ($keys)" [ "$keys" = "01:EC_P-384:2" ]

# The EC public key's curve and point form, against openssl.
python3 - "$work/demo.json" "$work/ecpub" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for o in d["tokens"][0]["objects"]:
    a = {x["name"]: x for x in o["attributes"]}
    if a["CKA_CLASS"]["value"] == 2 and a["CKA_KEY_TYPE"]["value"] == 3:
        open(sys.argv[2] + ".params", "w").write(a["CKA_EC_PARAMS"]["decoded"]["oid"])
        open(sys.argv[2] + ".form", "w").write(a["CKA_EC_POINT"]["decoded"]["form"])
PY
check "P-256 OID" [ "$(cat "$work/ecpub.params")" = "1.2.840.10045.3.1.7" ]
check "uncompressed point" [ "$(cat "$work/ecpub.form")" = "uncompressed" ]

# Bad DER in a certificate: the value stays as hex, with a decode error.
cp -a "$store" "$work/store"
cert=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for o in d["tokens"][0]["objects"]:
    a = {x["name"]: x for x in o["attributes"]}
    if a["CKA_CLASS"]["value"] == 1:
        v = a["CKA_VALUE"]
        print(o["file"], v["offset"] + 24)   # the DER starts after type, kind, length
' "$work/demo.json")
read -r cfile coff <<<"$cert"
dir=$(dirname "$(ls "$work"/store/*/"$cfile")")
printf '\x05' | dd of="$dir/$cfile" bs=1 seek="$coff" conv=notrunc status=none   # outer tag: NULL
out=$("$TOKENFS" dump --format json --token demo "$work/store")
check "bad DER: dump still exits 0" [ $? -eq 0 ]
r=$(python3 -c '
import json, sys
d = json.load(sys.stdin)
for o in d["tokens"][0]["objects"]:
    for a in o["attributes"]:
        if "decode_error" in a:
            print(a["name"], "decoded" in a, a["value"][:2])' <<<"$out")
check "bad DER: CKA_VALUE keeps its hex, gets decode_error, no decoded ($r)" [ "$r" = "CKA_VALUE False 05" ]
text=$("$TOKENFS" dump --token demo "$work/store" | grep -c '(not decoded: ')
check "bad DER: one decode error line in text ($text)" [ "$text" -eq 1 ]
finish
