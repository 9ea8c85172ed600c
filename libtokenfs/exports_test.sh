#!/usr/bin/env bash
# The library's surface is its public headers: the shared library exports
# exactly the functions include/tokenfs/*.h declare (internal tfs_seal_*,
# tfs_sem_* and the like stay hidden), and the command uses no internal
# header, so what it does another program can do with the public API.
#
#   exports_test.sh BUILD_DIR SOURCE_DIR
set -u
build=${1:?usage: exports_test.sh BUILD_DIR SOURCE_DIR}
src=${2:?}
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

exported=$(nm -D --defined-only "$build/libtokenfs/libtokenfs.so" | awk '{print $3}' | sed 's/@.*//' |
  grep -v '^TOKENFS_' | sort)
declared=$(grep -oE '^    tfs_[A-Za-z0-9_]+;' "$build/libtokenfs/tokenfs.map" | tr -d ' ;' | sort)
extra=$(comm -23 <(echo "$exported") <(echo "$declared"))
missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
[ -z "$extra" ] && ok || bad "exported but not in a public header: $(echo $extra)"
[ -z "$missing" ] && ok || bad "declared in a public header but not defined: $(echo $missing)"
n=$(echo "$exported" | wc -l)
[ "$n" -ge 100 ] && ok || bad "only $n symbols exported: the list is not being read"

internal=$(grep -nE '#include "(core|format|names|store|findings|crypto|keys|der|verify|seal|txn|change|testutil)/' \
  "$src"/tools/*.c "$src"/tools/*.h 2>/dev/null | grep -v '_test\.c:')
[ -z "$internal" ] && ok || bad "the command includes internal headers:
$internal"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
