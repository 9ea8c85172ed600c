#!/usr/bin/env bash
# Records libtokenfs's ABI as the baseline the abi_check test compares with
# (libtokenfs/abi/libtokenfs.abi). Run it only for a deliberate ABI change,
# and say in the commit message which change:
#
#   cmake --build build-check --target tokenfs_shared
#   scripts/abi-baseline.sh build-check
#
# BUILD_DIR may be any configuration with debug information (Debug or
# RelWithDebInfo, sanitizers or not; Release has no -g and is refused), and
# the checkout may be anywhere: the baseline records no absolute path and no
# DT_NEEDED list (libtokenfs/abi/abi_lib.sh says why), so CI compares it
# from its own clone.
#
# Functions only added need no new baseline (the check accepts additions),
# but regenerate it after merging branches that add or change public
# functions or types, so that later changes to the new ones are checked too:
#
#   cmake --build build-check --target tokenfs_shared
#   (cd build-check && ctest -R '^abi_check$' --output-on-failure)
#       # fails listing every changed function and type: each must be meant
#   scripts/abi-baseline.sh build-check
#       # prints what differs from the previous baseline, additions included:
#       # name those changes in the commit message
#   (cd build-check && ctest -R abi_check --output-on-failure)   # passes
#   git commit -m "ABI baseline: <the deliberate changes>" libtokenfs/abi/libtokenfs.abi
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
if tfs_abi_no_dwarf "$tmp"; then
	echo "abi-baseline.sh: cannot record the types of $lib: $NO_DWARF_HINT" >&2
	exit 2
fi
untied=$(tfs_abi_untied "$tmp")
if [ -n "$untied" ]; then
	echo "abi-baseline.sh: abidw tied no declaration to: $(tr "\n" " " <<<"$untied")" >&2
	echo "abi-baseline.sh: not writing a baseline that would not check them" >&2
	exit 1
fi
if grep -qE "(path|filepath)='/" "$tmp"; then
	echo "abi-baseline.sh: the ABI records an absolute path; CI would not match it:" >&2
	grep -oE "(path|filepath)='/[^']*'" "$tmp" | sort -u | head -5 >&2
	exit 1
fi
if [ -f "$out" ] && [ -z "$(tfs_abi_untied "$out")" ]; then
	changes=$(abidiff --headers-dir1 "$src/libtokenfs/include/tokenfs" \
		--headers-dir2 "$src/libtokenfs/include/tokenfs" "$out" "$tmp") || true
	echo "changes from the previous baseline: ${changes:-none}"
fi
cp "$tmp" "$out"
echo "wrote libtokenfs/abi/libtokenfs.abi ($(grep -c '<elf-symbol ' "$out") symbols)"
