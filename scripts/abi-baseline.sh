#!/usr/bin/env bash
# Records libtokenfs's ABI as the baseline the abi_check test compares with
# (libtokenfs/abi/libtokenfs.abi). Run it only for a deliberate ABI change,
# and say in the commit message which change:
#
#   cmake --build build-check --target tokenfs_shared
#   scripts/abi-baseline.sh build-check
#
# BUILD_DIR may be any configuration (Debug or not, sanitizers or not) and
# the checkout may be anywhere: the baseline records no absolute path and no
# DT_NEEDED list (libtokenfs/abi/abi_lib.sh says why), so CI compares it
# from its own clone. Functions only added need no new baseline (the check
# accepts additions); still, after merging branches that add or change public
# functions or types, regenerate it from the merged tree so later changes to
# the new ones are checked too:
#
#   git merge ...; cmake --build build-check --target tokenfs_shared
#   scripts/abi-baseline.sh build-check
#   (cd build-check && ctest -R 'abi_check' --output-on-failure)
#   git diff --stat libtokenfs/abi/     # only the intended changes
#   git commit -m "ABI baseline: <the deliberate changes>" libtokenfs/abi/
#
# It refuses to write a baseline in which an exported symbol is tied to no
# declaration (such a symbol's types would never be compared).
set -euo pipefail
build=${1:?usage: abi-baseline.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/.." && pwd)
. "$src/libtokenfs/abi/abi_lib.sh"
tfs_abi_require
lib=$build/libtokenfs/libtokenfs.so
[ -f "$lib" ] || { echo "abi-baseline.sh: no $lib; build the tokenfs_shared target first" >&2; exit 2; }
out=$src/libtokenfs/abi/libtokenfs.abi
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
tfs_abi_dump "$lib" "$tmp"
untied=$(tfs_abi_untied "$tmp")
if [ -n "$untied" ]; then
	echo "abi-baseline.sh: abidw tied no declaration to: $(echo $untied)" >&2
	echo "abi-baseline.sh: not writing a baseline that would not check them" >&2
	exit 1
fi
if grep -qE "(path|filepath)='/" "$tmp"; then
	echo "abi-baseline.sh: the ABI records an absolute path; CI would not match it:" >&2
	grep -oE "(path|filepath)='/[^']*'" "$tmp" | sort -u | head -5 >&2
	exit 1
fi
cp "$tmp" "$out"
echo "wrote libtokenfs/abi/libtokenfs.abi ($(grep -c '<elf-symbol ' "$out") symbols)"
