#!/usr/bin/env bash
# Records libtokenfs's ABI as the baseline the abi_check test compares with.
# Run it only for a deliberate ABI change, and say so in the commit message:
#
#   scripts/abi-baseline.sh build-check
set -euo pipefail
build=${1:?usage: abi-baseline.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/.." && pwd)
abidw --no-corpus-path --headers-dir "$src/libtokenfs/include/tokenfs" \
  "$build/libtokenfs/libtokenfs.so" >"$src/libtokenfs/abi/libtokenfs.abi"
echo "wrote libtokenfs/abi/libtokenfs.abi"
