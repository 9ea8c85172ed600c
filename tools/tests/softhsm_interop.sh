#!/usr/bin/env bash
# `tokenfs dump --format softhsm` on a store made just now by the installed
# SoftHSM must print exactly what softhsm2-dump-file prints for each of its
# object files, in tokenfs's order: tokens sorted by directory name, in each
# token.object first and then the other .object files sorted by name, every
# path spelled <tokendir as given>/<token dir>/<file>.
#
# TOKENFS: path to the tokenfs binary (set by ctest).
# A missing SoftHSM or OpenSC tool skips the test (exit 77), or fails it in CI.
set -euo pipefail
export LC_ALL=C

MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
DUMP=${TFS_SOFTHSM2_DUMP_FILE:-/usr/bin/softhsm2-dump-file}

die() { echo "softhsm_interop: $*" >&2; exit 1; }

missing() {
	if [[ -n ${CI:-} && ${CI} != false && ${CI} != 0 ]]; then
		die "$1 not found, and CI is set"
	fi
	echo "softhsm_interop: SKIP: $1 not found" >&2
	exit 77
}

[[ -n ${TOKENFS:-} && -x ${TOKENFS} ]] || die "TOKENFS must name the tokenfs binary (got '${TOKENFS:-}')"
[[ -x $DUMP ]] || missing "$DUMP"
[[ -r $MODULE ]] || missing "$MODULE"
for t in softhsm2-util pkcs11-tool openssl; do
	command -v "$t" >/dev/null || missing "$t"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tfs-softhsm-interop.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tokendir=$tmp/tokens
mkdir -m 0700 "$tokendir"
export SOFTHSM2_CONF=$tmp/softhsm2.conf
cat >"$SOFTHSM2_CONF" <<EOF
directories.tokendir = $tokendir
objectstore.backend = file
log.level = ERROR
EOF

softhsm2-util --init-token --free --label fresh --so-pin 1234 --pin 5678 >/dev/null

p11() {
	pkcs11-tool --module "$MODULE" --token-label fresh --login --pin 5678 "$@" \
		>"$tmp/p11.log" 2>&1 || { cat "$tmp/p11.log" >&2; die "pkcs11-tool $* failed"; }
}

# Objects of every kind: key pairs, secret keys private and public (no
# --private: CKA_PRIVATE false), a certificate, public and private data.
p11 --keypairgen --key-type rsa:2048 --id 01 --label rsa2048
p11 --keypairgen --key-type EC:prime256v1 --id 02 --label ec-p256
p11 --keygen --key-type AES:32 --id 03 --label aes256 --private --sensitive
p11 --keygen --key-type GENERIC:32 --id 04 --label generic32 --private
p11 --keygen --key-type AES:16 --id 05 --label aes128-public --extractable

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$tmp/cert.key" -subj "/CN=tokenfs interop" -days 1 \
	-outform DER -out "$tmp/cert.der" 2>/dev/null
p11 --write-object "$tmp/cert.der" --type cert --id 06 --label cert
printf 'public data object\n' >"$tmp/data-pub"
printf 'private data object\n' >"$tmp/data-priv"
p11 --write-object "$tmp/data-pub" --type data --label data-public
p11 --write-object "$tmp/data-priv" --type data --label data-private --private

# What SoftHSM's tool prints, file by file, in tokenfs's order.
one() {
	local rc=0
	"$DUMP" "$1" >>"$tmp/want" || rc=$?
	[[ $rc == 1 ]] || die "$DUMP $1 exited $rc (1 means it dumped)"
	files=$((files + 1))
}
: >"$tmp/want"
files=0
# Globs expand sorted byte-wise under LC_ALL=C.
for dir in "$tokendir"/*; do
	if [[ ! -d $dir || -L $dir ]]; then continue; fi
	if [[ -f $dir/token.object ]]; then one "$dir/token.object"; fi
	for obj in "$dir"/?*.object; do
		if [[ $obj == */token.object || ! -f $obj || -L $obj ]]; then continue; fi
		one "$obj"
	done
done
((files >= 10)) || die "expected at least 10 object files in the new store, found $files"

rc=0
"$TOKENFS" dump --format softhsm --reveal "$tokendir" >"$tmp/got" || rc=$?
[[ $rc == 0 ]] || die "tokenfs dump --format softhsm exited $rc"

if ! cmp -s "$tmp/want" "$tmp/got"; then
	diff -u --label softhsm2-dump-file --label "tokenfs dump --format softhsm" \
		"$tmp/want" "$tmp/got" | head -200 >&2 || true
	die "outputs differ ($files object files)"
fi
echo "softhsm_interop: $files object files, $(wc -c <"$tmp/want") bytes, identical"
