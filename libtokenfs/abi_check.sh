#!/usr/bin/env bash
# The shared library's ABI against the committed baseline
# (libtokenfs/abi/libtokenfs.abi): any change to what a linked program sees
# (a removed or changed function, a changed public type) fails. Functions
# added to the public headers are not breaks and pass. How the ABI is read
# and compared, and why, is in libtokenfs/abi/abi_lib.sh;
# abi_check_selftest.sh proves the comparison still sees layout changes.
#
#   abi_check.sh BUILD_DIR SOURCE_DIR
set -u
build=${1:?usage: abi_check.sh BUILD_DIR SOURCE_DIR}
src=${2:?}
. "$src/libtokenfs/abi/abi_lib.sh"
fail() {
	echo "FAIL: $*"
	echo "0 passed, 1 failed"
	exit 1
}
tfs_abi_require || fail "cannot compare the ABI"
baseline=$src/libtokenfs/abi/libtokenfs.abi
hdrs=$src/libtokenfs/include/tokenfs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A symbol that no declaration of the XML is tied to has its types compared
# by nothing: such a baseline or dump would pass any change to them.
untied=$(tfs_abi_untied "$baseline")
[ -z "$untied" ] || fail "the baseline ties no declaration to $(echo "$untied" | wc -l) exported
symbols, so their types are not checked: $(tr "\n" " " <<<"$untied")
It was written by an older scripts/abi-baseline.sh: rebuild the library at the
baseline's commit and run scripts/abi-baseline.sh BUILD_DIR there."
tfs_abi_dump "$build/libtokenfs/libtokenfs.so" "$tmp/current.abi" ||
	fail "abidw cannot read $build/libtokenfs/libtokenfs.so"
tfs_abi_no_dwarf "$tmp/current.abi" &&
	fail "cannot compare the types of $build/libtokenfs/libtokenfs.so: $NO_DWARF_HINT"
untied=$(tfs_abi_untied "$tmp/current.abi")
[ -z "$untied" ] || fail "abidw tied no declaration to these exported symbols of
$build/libtokenfs/libtokenfs.so, so their types would not be checked: $(tr "\n" " " <<<"$untied")"

report=$(tfs_abi_diff "$baseline" "$tmp/current.abi" "$hdrs" 2>&1)
rc=$?
if [ "$rc" -eq 0 ]; then
	echo "1 passed, 0 failed"
	exit 0
fi
printf '%s\n' "$report"
echo "FAIL: the ABI of libtokenfs changed (abidiff exit $rc). If that is deliberate,"
echo "run scripts/abi-baseline.sh $build and commit the new baseline with the reason."
echo "0 passed, 1 failed"
exit 1
