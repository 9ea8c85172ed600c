#!/usr/bin/env bash
# The shared library's ABI against the committed baseline
# (libtokenfs/abi/libtokenfs.abi): any change to what a linked program sees
# (a removed or changed function, a changed public type) fails. Functions
# added to the public headers are not breaks and pass.
#
#   abi_check.sh BUILD_DIR SOURCE_DIR
set -u
build=${1:?usage: abi_check.sh BUILD_DIR SOURCE_DIR}
src=${2:?}
if ! command -v abidiff >/dev/null; then
  echo "FAIL: abidiff (abigail-tools) is required; scripts/install-deps.sh check installs it"
  echo "0 passed, 1 failed"
  exit 1
fi
hdrs=$src/libtokenfs/include/tokenfs
report=$(abidiff --no-added-syms --headers-dir1 "$hdrs" --headers-dir2 "$hdrs" \
  "$src/libtokenfs/abi/libtokenfs.abi" "$build/libtokenfs/libtokenfs.so" 2>&1)
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
