#!/usr/bin/env bash
# Rebuild testdata/store (a SoftHSMv2 token store) and testdata/certs with
# real SoftHSM 2.6.1 tools: softhsm2-util, pkcs11-tool (OpenSC) and PyKCS11.
#
# Run from anywhere; paths are relative to the repository root. Idempotent:
# wipes and recreates testdata/store and testdata/certs. The result is
# committed; tests never run this script.
#
# Needs (Debian 12): softhsm2 2.6.1, opensc, python3-pykcs11, openssl.
# PyKCS11 lives in the system python: /usr/bin/python3, not a pyenv python.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
PY=/usr/bin/python3
STORE=testdata/store
CERTS=testdata/certs
INVENTORY=testdata/store-inventory.tsv

for tool in softhsm2-util softhsm2-dump-file pkcs11-tool openssl "$PY"; do
	command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[ -r "$MODULE" ] || { echo "missing: $MODULE" >&2; exit 1; }
"$PY" -c 'import PyKCS11' || { echo "missing: python3-pykcs11 for $PY" >&2; exit 1; }

ver=$(softhsm2-util --version)
[ "$ver" = "2.6.1" ] || echo "warning: softhsm2-util is $ver, the fixtures are meant to come from 2.6.1" >&2

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

rm -rf "$STORE" "$CERTS" "$INVENTORY"
mkdir -p "$STORE" "$CERTS"
chmod 0700 "$STORE"

cat >"$TMP/softhsm2.conf" <<EOF
directories.tokendir = $REPO/$STORE
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
export SOFTHSM2_CONF="$TMP/softhsm2.conf"

p11() { pkcs11-tool --module "$MODULE" "$@"; }
objs() { "$PY" scripts/make-testdata-objects.py "$@"; }
# record TOKEN 'LABEL|CLASS|ID'...: add the object files that appeared since
# the last record for TOKEN to the inventory.
record() { objs record "$STORE" "$INVENTORY" "$@"; }

# --- tokens -----------------------------------------------------------------
softhsm2-util --init-token --free --label demo --so-pin so-secret-1 --pin user-pin-1
softhsm2-util --init-token --free --label second --so-pin so-secret-2 --pin user-pin-2

# --- OpenSSL material for the imported key + certificate (id 06) ------------
# Test keys only, generated fresh on every run.
openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
	-out "$CERTS/imported-rsa-key.pem"
openssl pkey -in "$CERTS/imported-rsa-key.pem" -outform DER -out "$CERTS/imported-rsa-key.der"
openssl pkey -in "$CERTS/imported-rsa-key.pem" -pubout -out "$CERTS/imported-rsa-pub.pem"
openssl pkey -in "$CERTS/imported-rsa-key.pem" -pubout -outform DER -out "$CERTS/imported-rsa-pub.der"
openssl req -new -x509 -key "$CERTS/imported-rsa-key.pem" -sha256 -days 3650 \
	-set_serial 0x1001 -subj "/O=tokenfs/CN=tokenfs test certificate" \
	-out "$CERTS/imported-rsa-cert.pem"
openssl x509 -in "$CERTS/imported-rsa-cert.pem" -outform DER -out "$CERTS/imported-rsa-cert.der"

# --- demo -------------------------------------------------------------------
# Objects 01-05, 07 and the two data objects through PyKCS11 (records
# its own inventory rows).
objs demo "$MODULE" "$STORE" "$INVENTORY"

# 06: private key through SoftHSM's own importer (PKCS#8), public key and
# certificate through pkcs11-tool; all three share id 06.
softhsm2-util --import "$CERTS/imported-rsa-key.pem" --token demo --pin user-pin-1 \
	--label imported-rsa-priv --id 06 --no-public-key
record demo 'imported-rsa-priv|CKO_PRIVATE_KEY|06'
p11 --token-label demo --login --pin user-pin-1 --write-object "$CERTS/imported-rsa-pub.der" \
	--type pubkey --id 06 --label imported-rsa-pub
record demo 'imported-rsa-pub|CKO_PUBLIC_KEY|06'
p11 --token-label demo --login --pin user-pin-1 --write-object "$CERTS/imported-rsa-cert.der" \
	--type cert --id 06 --label imported-rsa-cert
record demo 'imported-rsa-cert|CKO_CERTIFICATE|06'

# --- second -----------------------------------------------------------------
# pkcs11-tool defaults: secret keys and data objects come out CKA_PRIVATE
# false unless --private is given.
p11 --token-label second --login --pin user-pin-2 --keypairgen --key-type EC:secp384r1 \
	--id 01 --label ec-p384-gen-priv --usage-sign
objs relabel-second "$MODULE"
record second 'ec-p384-gen-pub|CKO_PUBLIC_KEY|01' 'ec-p384-gen-priv|CKO_PRIVATE_KEY|01'
p11 --token-label second --login --pin user-pin-2 --keygen --key-type AES:32 \
	--id 02 --label aes256-pkcs11-tool --usage-decrypt
record second 'aes256-pkcs11-tool|CKO_SECRET_KEY|02'
printf 'tokenfs second-token public data' >"$TMP/second-data.bin"
p11 --token-label second --login --pin user-pin-2 --write-object "$TMP/second-data.bin" \
	--type data --label data-public-second --application-label tokenfs-tests
record second 'data-public-second|CKO_DATA|'

# --- verification -----------------------------------------------------------
fail=0
n=0
while IFS= read -r -d '' f; do
	n=$((n + 1))
	# softhsm2-dump-file exits 1 on success, and also on most damaged files:
	# it flags damage only in its text (a line ending in "...", "unknown
	# attribute format", "overflow length", or a dump that stops mid-field).
	set +e
	out=$(softhsm2-dump-file "$f" 2>&1)
	rc=$?
	set -e
	last=$(tail -n 1 <<<"$out")
	if [ "$rc" -ne 1 ] || [ ! -s "$f" ] ||
		grep -qE '\.\.\.$|unknown attribute format|overflow|[Ee]rror' <<<"$out" ||
		grep -qE '^[0-9a-f ]+$| attribute$' <<<"$last"; then
		echo "dump failed (rc $rc): $f" >&2
		echo "$out" | tail -5 >&2
		fail=1
	fi
done < <(find "$STORE" -name '*.object' -print0)
echo "softhsm2-dump-file: $n object files checked"

list_demo=$(p11 --token-label demo --login --pin user-pin-1 --list-objects 2>"$TMP/list.err")
list_second=$(p11 --token-label second --login --pin user-pin-2 --list-objects 2>>"$TMP/list.err")
for label in rsa2048-gen-pub rsa2048-gen-priv ec-p256-gen-pub ec-p256-gen-priv \
	aes256-private generic-secret-32 aes128-public-plaintext \
	imported-rsa-priv imported-rsa-pub imported-rsa-cert \
	aes256-wrapping-templates data-private data-public; do
	grep -qE "label: *'?$label'?\$" <<<"$list_demo" || { echo "demo lacks $label" >&2; fail=1; }
done
for label in ec-p384-gen-priv ec-p384-gen-pub aes256-pkcs11-tool data-public-second; do
	grep -qE "label: *'?$label'?\$" <<<"$list_second" || { echo "second lacks $label" >&2; fail=1; }
done
want_demo=13 want_second=4
count_objects() { grep -cE '^((Private Key|Public Key|Secret Key|Certificate) Object|Data object)'; }
got_demo=$(count_objects <<<"$list_demo")
got_second=$(count_objects <<<"$list_second")
[ "$got_demo" -eq "$want_demo" ] || { echo "demo: $got_demo objects, want $want_demo" >&2; fail=1; }
[ "$got_second" -eq "$want_second" ] || { echo "second: $got_second objects, want $want_second" >&2; fail=1; }
echo "pkcs11-tool: demo $got_demo objects, second $got_second objects"

# Permissions are SoftHSM's own (2.6.1: 0600 files, 0700 directories); check,
# never change them.
bad=$(find "$STORE" -mindepth 1 \( -type f ! -perm 0600 -o -type d ! -perm 0700 \) -print)
if [ -n "$bad" ]; then
	echo "unexpected permissions:" >&2
	echo "$bad" >&2
	fail=1
fi

objs check-inventory "$STORE" "$INVENTORY" || fail=1

[ "$fail" -eq 0 ] || { echo "make-testdata: verification FAILED" >&2; exit 1; }

# --- malformed object files, derived from the new store ----------------------
"$PY" scripts/make-malformed.py

echo "make-testdata: OK ($STORE, $CERTS, $INVENTORY, testdata/malformed)"
