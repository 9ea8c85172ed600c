#!/usr/bin/env bash
# Regenerates testdata/der/: DER inputs for the attribute-value decoders in
# libtokenfs/der (tokenfs/decode.h), all made by the openssl command.
#
#   spki-*.der        SubjectPublicKeyInfo of fresh keys: RSA 2048/3072,
#                     RSA-PSS, EC P-256/P-384/P-521/secp256k1/brainpoolP256r1
#                     (named), P-256 with explicit parameters, P-384 with a
#                     compressed point, Ed25519, Ed448, X25519, X448, DSA
#   cert-*.der        certificates: a self-signed RSA 3072 CA with a long
#                     UTF-8 subject (escapes, multi-valued RDN), an EC P-384
#                     leaf it issued (GeneralizedTime notAfter), a self-signed
#                     Ed25519 one, a v1 P-521 one, and certificates built with
#                     `openssl asn1parse -genconf` around crafted Names (every
#                     string type, every escape, hex dumps, an empty Name,
#                     invalid UTF-8) and one with a damaged RSA key
#   name-*.der        the subject or issuer Name cut out of cert-<x>.der
#   ecparams-*.der    CKA_EC_PARAMS forms: named curves, explicit prime and
#                     characteristic-two parameters, Edwards/Montgomery OIDs,
#                     PKCS#11 3.0 PrintableString curve names, implicitlyCA
#   ecpoint-<k>-der.der / ecpoint-<k>-bare.bin
#                     the public point of spki-<k>.der inside a DER OCTET
#                     STRING, or bare
#   int-*.der         DER INTEGERs (CKA_SERIAL_NUMBER): signs, 64-bit edges
#   malformed/        damaged inputs and MANIFEST.tsv: file, decoder, status,
#                     offset ("-": none), a text the error message contains
#
# The tests do not read expected values from here: they run openssl on the
# same bytes at test time and compare. Keys are random and thrown away, so a
# rebuild changes most bytes; offsets in malformed/MANIFEST.tsv are computed
# here from the structure (openssl asn1parse), not typed in.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/testdata/der
mal=$out/malformed
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$out" "$mal"
find "$out" -maxdepth 2 \( -name '*.der' -o -name '*.bin' -o -name MANIFEST.tsv \) -delete

hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
unhex() { printf '%b' "$(printf '%s' "$1" | sed 's/../\\x&/g')"; }
slice() { tail -c +$(($2 + 1)) "$1" | head -c "$3"; }
size() { wc -c < "$1" | tr -d ' '; }
# patch FILE OFFSET HEXBYTE: overwrite one byte.
patch() { printf "\\x$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
# offsets of every occurrence of an ASCII marker in a file
find_marker() { grep -obUa -- "$2" "$1" | cut -d: -f1; }

# elems FILE: one line per element, "offset depth header-length length tag".
elems() {
	openssl asn1parse -inform DER -in "$1" |
	sed -E 's/^ *([0-9]+):d=([0-9]+) +hl= *([0-9]+) +l= *([0-9]+) +(prim|cons): *(.*)$/\1 \2 \3 \4 \6/'
}
# elem FILE DEPTH N: "offset header-length length" of the N-th element (from
# 1) at that depth, in file order.
elem() { elems "$1" | awk -v d="$2" -v n="$3" '$2 == d && ++k == n { print $1, $3, $4; exit }'; }
# tbs_elem CERT N: the N-th field of tbsCertificate counting the serial
# number as 1 (so the same N works for v1 certificates, which lack [0]).
tbs_elem() {
	local first
	first=$(elems "$1" | awk '$2 == 2 { print $5, $6; exit }')
	if [ "$first" = "cont [" ]; then elem "$1" 2 $(($2 + 1)); else elem "$1" 2 "$2"; fi
}
# cut_elem FILE "off hl len" OUT
cut_elem() { set -- "$1" $2 "$3"; slice "$1" "$2" $(($3 + $4)) > "$5"; }

# ---- keys and public keys ----

key() { # key NAME genpkey-arguments...
	local name=$1
	shift
	openssl genpkey "$@" -out "$tmp/$name.key" 2>/dev/null
	openssl pkey -in "$tmp/$name.key" -pubout -outform DER -out "$out/spki-$name.der"
}
key rsa2048 -algorithm RSA -pkeyopt rsa_keygen_bits:2048
key rsa3072 -algorithm RSA -pkeyopt rsa_keygen_bits:3072
key rsapss2048 -algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048
for c in P-256 P-384 P-521 secp256k1 brainpoolP256r1; do
	n=$(echo "$c" | tr -d '-' | tr 'A-Z' 'a-z')
	key "ec-$n" -algorithm EC -pkeyopt ec_paramgen_curve:"$c" -pkeyopt ec_param_enc:named_curve
done
for a in ed25519 ed448 x25519 x448; do key "$a" -algorithm "$a"; done
openssl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:2048 -out "$tmp/dsa.param" 2>/dev/null
key dsa2048 -paramfile "$tmp/dsa.param"
openssl ec -in "$tmp/ec-p256.key" -param_enc explicit -pubout -outform DER \
	-out "$out/spki-ec-p256-explicit.der" 2>/dev/null
openssl ec -in "$tmp/ec-p384.key" -conv_form compressed -pubout -outform DER \
	-out "$out/spki-ec-p384-compressed.der" 2>/dev/null

# ---- EC points: the BIT STRING content of the SPKI ----

point() { # point SPKI-NAME: writes the bare point to $tmp/point
	local f=$out/spki-$1.der off hl len
	read -r off hl len < <(elem "$f" 1 2)
	slice "$f" $((off + hl + 1)) $((len - 1)) > "$tmp/point"
}
wrap_octets() { openssl asn1parse -genstr "FORMAT:HEX,OCTETSTRING:$(hex "$1")" -noout -out "$2"; }
for k in ec-p256 ec-p384-compressed ed25519 x448 ec-brainpoolp256r1; do
	point "$k"
	wrap_octets "$tmp/point" "$out/ecpoint-$k-der.der"
done
for k in ec-p521 ec-p384-compressed ed448 x25519; do
	point "$k"
	cp "$tmp/point" "$out/ecpoint-$k-bare.bin"
done

# ---- EC parameters ----

for c in prime256v1 secp384r1 secp521r1 secp256k1 brainpoolP256r1 brainpoolP384t1; do
	openssl ecparam -name "$c" -outform DER -out "$out/ecparams-$c.der"
done
openssl ecparam -name prime256v1 -param_enc explicit -outform DER -out "$out/ecparams-explicit-prime256v1.der"
openssl ecparam -name sect163k1 -param_enc explicit -outform DER -out "$out/ecparams-explicit-sect163k1.der"
for o in ED25519 ED448 X25519 X448; do
	openssl asn1parse -genstr "OID:$o" -noout -out "$out/ecparams-oid-$(echo $o | tr 'A-Z' 'a-z').der"
done
for n in edwards25519 edwards448 curve25519 curve448 secp256r1; do
	openssl asn1parse -genstr "PRINTABLESTRING:$n" -noout -out "$out/ecparams-name-$n.der"
done
openssl asn1parse -genstr NULL -noout -out "$out/ecparams-implicitlyca.der"

# ---- certificates made by openssl req / x509 ----

# The CA: long UTF-8 subject; O holds a comma and a plus sign, OU+CN is a
# multi-valued RDN, a value starts with "#" and one ends with a space.
ca_subj='/C=DE/ST=Baden-Württemberg/L=Ölbronn-Dürrn/O=Müller\, Söhne \+ Partner GmbH'
ca_subj+='/OU=#7 Forschung & Entwicklung+CN=Jürgen Groß — 株式会社テスト ☃ /title=Chief "Quoted" <Officer>; etc.'
ca_subj+='/serialNumber=0042/emailAddress=juergen@example.test'
openssl req -x509 -new -key "$tmp/rsa3072.key" -utf8 -subj "$ca_subj" -days 3650 -sha384 \
	-set_serial 0x9f0123456789abcdef0123456789abcdef012345 -out "$tmp/ca.pem"
openssl x509 -in "$tmp/ca.pem" -outform DER -out "$out/cert-rsa3072-utf8.der"

openssl req -new -key "$tmp/ec-p384.key" -subj '/O=tokenfs/CN=tokenfs EC P-384 leaf' -out "$tmp/leaf.csr"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:leaf.example.test\n' > "$tmp/leaf.ext"
openssl x509 -req -in "$tmp/leaf.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/rsa3072.key" -days 10000 \
	-set_serial 2 -extfile "$tmp/leaf.ext" -outform DER -out "$out/cert-ec-p384-leaf.der" 2>/dev/null

openssl req -x509 -new -key "$tmp/ed25519.key" -subj '/DC=test/DC=example/CN=Ed25519 "quoted"' \
	-days 30 -set_serial 1 -outform DER -out "$out/cert-ed25519.der"

openssl req -new -key "$tmp/ec-p521.key" -subj '/CN=version 1/O=tokenfs' -out "$tmp/v1.csr"
openssl x509 -req -in "$tmp/v1.csr" -key "$tmp/ec-p521.key" -days 365 -set_serial 0x7f \
	-outform DER -out "$out/cert-ec-p521-v1.der" 2>/dev/null

# ---- certificates around crafted Names (asn1parse -genconf) ----
# Signature and key are placeholders: the tests only read the names.

edpub=$(point ed25519 && hex "$tmp/point")
crafted() { # crafted OUT-NAME: the [name] sections come on stdin
	{
		cat <<-EOF
		asn1=SEQUENCE:cert
		[cert]
		tbs=SEQUENCE:tbs
		alg=SEQUENCE:sigalg
		sig=FORMAT:HEX,BITSTRING:$(printf '%0128d' 0)
		[tbs]
		ver=EXPLICIT:0,INTEGER:2
		serial=INTEGER:${serial:-0x0100}
		sigalg=SEQUENCE:sigalg
		issuer=SEQUENCE:name
		validity=SEQUENCE:validity
		subject=SEQUENCE:name
		spki=SEQUENCE:spki
		[sigalg]
		oid=OID:ED25519
		[validity]
		nb=${not_before:-UTCTIME:260101000000Z}
		na=${not_after:-GENERALIZEDTIME:20991231235959Z}
		[spki]
		alg=SEQUENCE:spkialg
		key=FORMAT:HEX,BITSTRING:${spki_key:-$edpub}
		[spkialg]
		oid=OID:${spki_oid:-ED25519}
		EOF
		[ -z "${spki_params:-}" ] || echo "$spki_params"
		cat
	} > "$tmp/$1.cnf"
	openssl asn1parse -genconf "$tmp/$1.cnf" -noout -out "$out/$1.der"
}

# Every string type OpenSSL prints as text; T61String holds Latin-1 "café".
printf '%s\n' '[name]' 1=SET:r1 2=SET:r2 3=SET:r3 4=SET:r4 5=SET:r5 6=SET:r6 \
	'[r1]' a=SEQUENCE:a1 '[a1]' t=OID:C v=PRINTABLESTRING:DE \
	'[r2]' a=SEQUENCE:a2 '[a2]' t=OID:O $'v=T61:caf\xe9 cr\xe8me' \
	'[r3]' a=SEQUENCE:a3 '[a3]' t=OID:OU 'v=FORMAT:UTF8,BMPSTRING:Jürgen ☃ Ω' \
	'[r4]' a=SEQUENCE:a4 '[a4]' t=OID:CN 'v=FORMAT:UTF8,UNIVERSALSTRING:x😀y' \
	'[r5]' a=SEQUENCE:a5 '[a5]' t=OID:emailAddress v=IA5STRING:a@b.example \
	'[r6]' a=SEQUENCE:a6 b=SEQUENCE:b6 '[a6]' t=OID:serialNumber v=NUMERICSTRING:0042 \
	'[b6]' t=OID:DC v=IA5STRING:example \
	| crafted cert-name-strings

# Every escape: leading "#", a lone "#", spaces at both ends, a lone space,
# the special characters, and control characters patched in below.
printf '%s\n' '[name]' 1=SET:r1 2=SET:r2 3=SET:r3 4=SET:r4 5=SET:r5 6=SET:r6 7=SET:r7 \
	'[r1]' a=SEQUENCE:a1 '[a1]' t=OID:CN 'v=UTF8:\#hash first' \
	'[r2]' a=SEQUENCE:a2 '[a2]' t=OID:CN 'v=UTF8:\#' \
	'[r3]' a=SEQUENCE:a3 '[a3]' t=OID:CN 'v=UTF8:"  two  "' \
	'[r4]' a=SEQUENCE:a4 '[a4]' t=OID:CN 'v=UTF8:" "' \
	'[r5]' a=SEQUENCE:a5 '[a5]' t=OID:O 'v=UTF8:a,b+c\"d\\e<f>g;h=i' \
	'[r6]' a=SEQUENCE:a6 '[a6]' t=OID:OU 'v=UTF8:ctlAxDxNx' \
	'[r7]' a=SEQUENCE:a7 '[a7]' t=OID:L 'v=UTF8:trailing\#' \
	| crafted cert-name-escapes
for m in $(find_marker "$out/cert-name-escapes.der" ctlAxDxNx); do
	patch "$out/cert-name-escapes.der" $((m + 4)) 01
	patch "$out/cert-name-escapes.der" $((m + 6)) 7f
	patch "$out/cert-name-escapes.der" $((m + 8)) 00
done

# Values OpenSSL dumps as #hex: an unknown attribute type, and known types
# with values of types it has no text for (SEQUENCE, BIT STRING,
# ObjectDescriptor); one RDN holds three attributes.
printf '%s\n' '[name]' 1=SET:r1 2=SET:r2 3=SET:r3 \
	'[r1]' a=SEQUENCE:a1 '[a1]' t=OID:1.2.3.4.5 'v=UTF8:unknown attribute' \
	'[r2]' a=SEQUENCE:a2 b=SEQUENCE:b2 c=SEQUENCE:c2 '[a2]' t=OID:CN v=FORMAT:HEX,BITSTRING:78ff \
	'[b2]' t=OID:O v=IMPLICIT:7U,UTF8:descriptor '[c2]' t=OID:OU v=UTF8:text \
	'[r3]' a=SEQUENCE:a3 '[a3]' t=OID:CN v=SEQUENCE:s3 '[s3]' x=INTEGER:1 \
	| crafted cert-name-dump

# Value types OpenSSL refuses to load in a Name at all (INTEGER, OCTET
# STRING, BOOLEAN, GeneralString, VisibleString, UTCTime): tokenfs shows
# them anyway, by the same rules (der_units_test).
printf '%s\n' '[name]' 1=SET:r1 2=SET:r2 3=SET:r3 4=SET:r4 5=SET:r5 6=SET:r6 \
	'[r1]' a=SEQUENCE:a1 '[a1]' t=OID:CN v=INTEGER:42 \
	'[r2]' a=SEQUENCE:a2 '[a2]' t=OID:O v=FORMAT:HEX,OCTETSTRING:78ff \
	'[r3]' a=SEQUENCE:a3 '[a3]' t=OID:OU v=BOOLEAN:TRUE \
	'[r4]' a=SEQUENCE:a4 '[a4]' t=OID:L v=GENSTR:general \
	'[r5]' a=SEQUENCE:a5 '[a5]' t=OID:title 'v=VISIBLESTRING:Mr. X' \
	'[r6]' a=SEQUENCE:a6 '[a6]' t=OID:pseudonym v=UTCTIME:260101000000Z \
	| crafted cert-name-nonstring

printf '%s\n' '[name]' | crafted cert-name-empty

# A UTF8String that is not UTF-8 (C3 28, a lone FF, overlong C0 AF).
# OpenSSL refuses to load it; der_units_test checks the \XX escapes.
printf '%s\n' '[name]' 1=SET:r1 '[r1]' a=SEQUENCE:a1 '[a1]' t=OID:CN 'v=UTF8:bad Q( lone Q overlong QQ end' \
	| crafted cert-name-invalid-utf8
f=$out/cert-name-invalid-utf8.der
for m in $(find_marker "$f" 'bad Q'); do
	patch "$f" $((m + 4)) c3
	patch "$f" $((m + 12)) ff
	patch "$f" $((m + 23)) c0
	patch "$f" $((m + 24)) af
done

# An rsaEncryption key whose RSAPublicKey lacks the exponent: the
# certificate still decodes, with public_key_error.
printf '%s\n' '[name]' 1=SET:r1 '[r1]' a=SEQUENCE:a1 '[a1]' t=OID:CN 'v=UTF8:damaged key' |
	spki_oid=rsaEncryption spki_key=3003020101 crafted cert-badkey

# UTCTime's century boundary (RFC 5280 4.1.2.5.1: YY >= 50 is 19YY).
printf '%s\n' '[name]' 1=SET:r1 '[r1]' a=SEQUENCE:a1 '[a1]' t=OID:CN 'v=UTF8:UTCTime 1950 to 2049' |
	not_before=UTCTIME:500101000000Z not_after=UTCTIME:491231235959Z crafted cert-utctime-boundary
printf '%s\n' '[name]' 1=SET:r1 '[r1]' a=SEQUENCE:a1 '[a1]' t=OID:CN 'v=UTF8:GeneralizedTime' |
	not_before=GENERALIZEDTIME:19491231235959Z not_after=GENERALIZEDTIME:99991231235959Z \
	crafted cert-generalizedtime

# ---- Names cut out of the certificates ----

for c in rsa3072-utf8 ec-p384-leaf ed25519 name-strings name-escapes name-dump name-empty \
	name-nonstring name-invalid-utf8; do
	cut_elem "$out/cert-$c.der" "$(tbs_elem "$out/cert-$c.der" 5)" "$out/name-$c-subject.der"
done
cut_elem "$out/cert-ec-p384-leaf.der" "$(tbs_elem "$out/cert-ec-p384-leaf.der" 3)" \
	"$out/name-ec-p384-leaf-issuer.der"

# ---- INTEGERs ----

for v in 0 1 127 128 255 256 -1 -128 -129 -256 4097 9223372036854775807 9223372036854775808 \
	-9223372036854775808 -9223372036854775809 18446744073709551616 \
	0x9f0123456789abcdef0123456789abcdef012345 \
	-0x123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef01; do
	n=$(echo "$v" | tr -d 'x' | cut -c1-24)
	openssl asn1parse -genstr "INTEGER:$v" -noout -out "$out/int-$n.der"
done

# ---- malformed ----

manifest=$mal/MANIFEST.tsv
{
	echo "# Damaged DER for the decoders, made by scripts/make-der-fixtures.sh."
	echo "# file<TAB>decoder<TAB>status (format, truncated, limit)<TAB>offset (- for none)<TAB>text the message contains"
} > "$manifest"
bad() { # bad FILE DECODER STATUS OFFSET TEXT
	printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$manifest"
}

cert=$out/cert-ec-p384-leaf.der
clen=$(size "$cert")
read -r _ chl clen_inner < <(elem "$cert" 0 1)

head -c 1 "$cert" > "$mal/cert-trunc-1.der"
bad cert-trunc-1.der certificate truncated 1 "no length octet"
head -c 3 "$cert" > "$mal/cert-trunc-3.der"
bad cert-trunc-3.der certificate truncated 1 "cut short inside its 2 length octets"
for cut in 4 100 $((clen / 2)) $((clen - 1)); do
	head -c "$cut" "$cert" > "$mal/cert-trunc-$cut.der"
	bad "cert-trunc-$cut.der" certificate truncated 1 "length $clen_inner of the SEQUENCE at offset 0 exceeds the $((cut - chl)) bytes left"
done

cp "$cert" "$mal/cert-wrong-outer-tag.der"
patch "$mal/cert-wrong-outer-tag.der" 0 31
bad cert-wrong-outer-tag.der certificate format 0 "expected SEQUENCE (0x30) at the start, found SET (0x31)"

# The signature BIT STRING's length one more than the certificate holds.
read -r boff bhl blen < <(elem "$cert" 1 3)
lb=$(slice "$cert" $((boff + bhl - 1)) 1 | od -An -tu1 | tr -d ' ')
[ "$lb" -lt 255 ] || { echo "unlucky length byte 0xff; run again" >&2; exit 1; }
cp "$cert" "$mal/cert-inner-len-past-end.der"
patch "$mal/cert-inner-len-past-end.der" $((boff + bhl - 1)) "$(printf '%02x' $((lb + 1)))"
bad cert-inner-len-past-end.der certificate truncated $((boff + 1)) "length $((blen + 1)) of the BIT STRING at offset $boff exceeds the $blen bytes left"

# The outer length one byte longer than the file.
cp "$cert" "$mal/cert-len-past-end.der"
lo=$(slice "$cert" 3 1 | od -An -tu1 | tr -d ' ')
[ "$lo" -lt 255 ] || { echo "unlucky length byte 0xff; run again" >&2; exit 1; }
patch "$mal/cert-len-past-end.der" 3 "$(printf '%02x' $((lo + 1)))"
bad cert-len-past-end.der certificate truncated 1 "length $((clen_inner + 1)) of the SEQUENCE at offset 0 exceeds the $clen_inner bytes left"

{ cat "$cert"; printf '\0\0'; } > "$mal/cert-trailing-garbage.der"
bad cert-trailing-garbage.der certificate format "$clen" "2 bytes after the end of the SEQUENCE"

# BER: indefinite outer length; the outer length in 3 octets.
{ printf '\x30\x80'; slice "$cert" "$chl" "$clen_inner"; printf '\0\0'; } > "$mal/cert-indefinite-length.der"
bad cert-indefinite-length.der certificate format 1 "indefinite length (BER, not DER)"
{ printf '\x30\x83\x00'; slice "$cert" 2 $((clen - 2)); } > "$mal/cert-long-length.der"
bad cert-long-length.der certificate format 1 "length with a leading zero octet (not DER)"

# The signature BIT STRING in the constructed form (BER only).
cp "$cert" "$mal/cert-constructed-bitstring.der"
patch "$mal/cert-constructed-bitstring.der" "$boff" 23
bad cert-constructed-bitstring.der certificate format "$boff" "constructed BIT STRING (BER, not DER)"

# Validity as a SET: structurally fine DER, wrong for X.509 (libtasn1).
read -r voff _ _ < <(tbs_elem "$cert" 4)
cp "$cert" "$mal/cert-validity-as-set.der"
patch "$mal/cert-validity-as-set.der" "$voff" 31
bad cert-validity-as-set.der certificate format - "does not match the ASN.1 type Certificate"

# notBefore with a letter in it.
toff=$(elems "$cert" | awk '$5 == "UTCTIME" { print $1; exit }')
cp "$cert" "$mal/cert-bad-time.der"
patch "$mal/cert-bad-time.der" $((toff + 4)) 58
bad cert-bad-time.der certificate format "$toff" "notBefore UTCTime"

# 1000 nested SEQUENCEs: the scan stops at depth 33.
# Wrapper i (1 = innermost) gets a header of hdr[i] bytes; the element at
# depth 33 is wrapper 968, after the headers of wrappers 969..1000.
printf '' > "$tmp/nest"
declare -a hdr
for i in $(seq 1 1000); do
	n=$(size "$tmp/nest")
	if [ "$n" -lt 128 ]; then h=$(printf '30%02x' "$n")
	elif [ "$n" -lt 256 ]; then h=$(printf '3081%02x' "$n")
	else h=$(printf '3082%04x' "$n"); fi
	hdr[i]=$((${#h} / 2))
	{ unhex "$h"; cat "$tmp/nest"; } > "$tmp/nest2"
	mv "$tmp/nest2" "$tmp/nest"
done
cp "$tmp/nest" "$mal/nested-1000.der"
depth_off=0
for i in $(seq 969 1000); do depth_off=$((depth_off + hdr[i])); done
bad nested-1000.der certificate limit "$depth_off" "nested deeper than 32 levels"
cp "$tmp/nest" "$mal/name-nested-1000.der"
bad name-nested-1000.der name limit "$depth_off" "nested deeper than 32 levels"

# A Name whose RDN is a SEQUENCE, not a SET; an RDN that is an empty SET.
unhex 3011300f300d0603550403130674657374696e > "$mal/name-rdn-as-sequence.der"
bad name-rdn-as-sequence.der name format - "does not match the ASN.1 type Name"
unhex 30023100 > "$mal/name-empty-rdn.der"
bad name-empty-rdn.der name format 2 "RDN 1 of the Name is an empty SET"

# EC parameters: an INTEGER; trailing bytes; a curve name that is not
# PrintableString; explicit parameters whose prime is negative.
unhex 020101 > "$mal/ecparams-integer.der"
bad ecparams-integer.der ec_params format 0 "found INTEGER (0x02)"
{ cat "$out/ecparams-prime256v1.der"; printf '\x05\x00'; } > "$mal/ecparams-trailing.der"
bad ecparams-trailing.der ec_params format "$(size "$out/ecparams-prime256v1.der")" "2 bytes after the end of the OBJECT IDENTIFIER"
unhex 1305656432353c > "$mal/ecparams-name-not-printable.der"
bad ecparams-name-not-printable.der ec_params format 0 "byte 0x3c, not a PrintableString character"
head -c 30 "$out/ecparams-explicit-prime256v1.der" > "$mal/ecparams-explicit-truncated.der"
read -r _ ehl elen < <(elem "$out/ecparams-explicit-prime256v1.der" 0 1)
bad ecparams-explicit-truncated.der ec_params truncated 1 "length $elen of the SEQUENCE at offset 0 exceeds the $((30 - ehl)) bytes left"

# EC points: a wrapped point cut short (even length, so not a bare point
# either), a form byte that is none, an empty OCTET STRING.
head -c 40 "$out/ecpoint-ec-p256-der.der" > "$mal/ecpoint-truncated.der"
bad ecpoint-truncated.der ec_point truncated 1 "exceeds the 38 bytes left, and not a bare point"
unhex 040305aabb > "$mal/ecpoint-bad-form.der"
bad ecpoint-bad-form.der ec_point format 2 "starting 0x05, not an EC point"
unhex 0400 > "$mal/ecpoint-empty-octets.der"
bad ecpoint-empty-octets.der ec_point format 2 "holds 0 bytes"
unhex 3003020101 > "$mal/ecpoint-sequence.der"
bad ecpoint-sequence.der ec_point format 0 "neither a DER OCTET STRING"

# INTEGERs: padded (not DER), no content, wrong tag.
unhex 02020001 > "$mal/int-padded.der"
bad int-padded.der integer format 0 "redundant leading 0x00 octet"
unhex 0202ff80 > "$mal/int-padded-negative.der"
bad int-padded-negative.der integer format 0 "redundant leading 0xff octet"
unhex 0200 > "$mal/int-empty.der"
bad int-empty.der integer format 0 "INTEGER with no content octets"
unhex 0a0101 > "$mal/int-enumerated.der"
bad int-enumerated.der integer format 0 "expected INTEGER (0x02) at the start, found ENUMERATED (0x0a)"

# Public keys: an RSA key without its exponent; a 31-byte Ed25519 key; an
# EC key without parameters.
cp "$out/cert-badkey.der" "$tmp/x.der"
cut_elem "$tmp/x.der" "$(tbs_elem "$tmp/x.der" 6)" "$mal/spki-rsa-no-exponent.der"
bad spki-rsa-no-exponent.der public_key_info format - "does not match the ASN.1 type RSAPublicKey"
printf '%s\n' 'asn1=SEQUENCE:spki' '[spki]' a=SEQUENCE:alg "k=FORMAT:HEX,BITSTRING:${edpub:2}" '[alg]' o=OID:ED25519 > "$tmp/s.cnf"
openssl asn1parse -genconf "$tmp/s.cnf" -noout -out "$mal/spki-ed25519-short.der"
bad spki-ed25519-short.der public_key_info format 12 "Ed25519 public key of 31 bytes, not 32"
printf '%s\n' 'asn1=SEQUENCE:spki' '[spki]' a=SEQUENCE:alg "k=FORMAT:HEX,BITSTRING:$edpub" '[alg]' o=OID:id-ecPublicKey > "$tmp/s.cnf"
openssl asn1parse -genconf "$tmp/s.cnf" -noout -out "$mal/spki-ec-no-params.der"
bad spki-ec-no-params.der public_key_info format 16 "EC public key without curve parameters"

echo "testdata/der: $(find "$out" -maxdepth 1 -type f \( -name '*.der' -o -name '*.bin' \) | wc -l) fixtures," \
	"$(find "$mal" -name '*.der' | wc -l) malformed"

# ---- seed corpora of the fuzz/fuzz_der_* targets ----
# One directory per target, named as the fuzz/CMakeLists.txt replay test
# expects; fuzz_der_attribute's inputs start with two selector bytes (see
# fuzz/fuzz_der_attribute.c).

corpus=$root/fuzz/corpus
seed() { # seed TARGET FILE...
	local t=$1
	shift
	mkdir -p "$corpus/$t"
	for f in "$@"; do cp "$f" "$corpus/$t/$(basename "$f")"; done
}
for t in certificate name integer public_key_info ec_params ec_point attribute; do
	rm -rf "$corpus/fuzz_der_$t"
done
seed fuzz_der_certificate "$root/testdata/certs/imported-rsa-cert.der" "$out"/cert-*.der "$mal"/cert-*.der \
	"$mal/nested-1000.der"
seed fuzz_der_name "$out"/name-*.der "$mal"/name-*.der
seed fuzz_der_integer "$out"/int-*.der "$mal"/int-*.der
seed fuzz_der_public_key_info "$root/testdata/certs/imported-rsa-pub.der" "$out"/spki-*.der "$mal"/spki-*.der
seed fuzz_der_ec_params "$out"/ecparams-*.der "$mal"/ecparams-*.der
seed fuzz_der_ec_point "$out"/ecpoint-* "$mal"/ecpoint-*.der
# attribute: type index, object index, value (fuzz_der_attribute.c tables)
mkdir -p "$corpus/fuzz_der_attribute"
aseed() { { unhex "$2"; cat "$3"; } > "$corpus/fuzz_der_attribute/$1"; }
aseed cert-value 0000 "$out/cert-ed25519.der"
aseed subject 0100 "$out/name-rsa3072-utf8-subject.der"
aseed issuer 0200 "$out/name-ec-p384-leaf-issuer.der"
aseed serial 0300 "$out/int-4097.der"
aseed spki 0405 "$out/spki-ec-p256.der"
aseed ecparams 0502 "$out/ecparams-prime256v1.der"
aseed ecpoint-ec 0602 "$out/ecpoint-ec-p256-der.der"
aseed ecpoint-ed25519 0603 "$out/ecpoint-ed25519-der.der"
aseed ecpoint-x25519 0604 "$out/ecpoint-x25519-bare.bin"
printf '\x07\x05\x00\xc1\x02\x03' > "$corpus/fuzz_der_attribute/modulus"
printf '\x08\x05%s' 20261122 > "$corpus/fuzz_der_attribute/start-date"
printf '\x09\x05%s' 20240230 > "$corpus/fuzz_der_attribute/end-date-bad"
printf '\x0a\x06label' > "$corpus/fuzz_der_attribute/no-decoder"
echo "fuzz/corpus: $(find "$corpus" -path "*/fuzz_der_*" -type f | wc -l) seeds for fuzz_der_*"
