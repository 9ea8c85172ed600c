#!/usr/bin/env bash
# The library as a consumer gets it: install into a scratch prefix, then
# build programs against it with nothing but pkg-config, and with CMake's
# find_package(tokenfs), and run them. The pkg-config program is the C block
# of the README's "Library use" section, exactly as written there.
set -u
build=${1:?usage: install_test.sh BUILD_DIR TESTDATA [EXTRA_CFLAGS]}
testdata=${2:?}
extra=${3:-}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

if ! cmake --install "$build" --prefix "$work/prefix" >/dev/null; then
  echo "FAIL: cmake --install"; echo "0 passed, 1 failed"; exit 1
fi
export PKG_CONFIG_PATH=$(dirname "$(find "$work/prefix" -name tokenfs.pc)")

# The README's example, verbatim.
awk '/^## Library use/{s=1} s&&/^```c$/{c=1;next} c&&/^```$/{exit} c' "$src/README.md" >"$work/labels.c"
[ "$(wc -l <"$work/labels.c")" -gt 10 ] && ok || bad "no C example found in README.md"
# shellcheck disable=SC2086
if cc $extra -Wall -Werror "$work/labels.c" $(pkg-config --cflags --libs tokenfs) \
     -Wl,-rpath,"$(pkg-config --variable=libdir tokenfs)" -o "$work/labels"; then
  ok
  out=$("$work/labels" "$testdata/store")
  grep -q "^token 'demo'" <<<"$out" && ok || bad "README example: no token line: $out"
  grep -q "  99bf426f-0f35-ab28-7c20-b5aafeeca46c  data-public$" <<<"$out" && ok ||
    bad "README example: the public data object's label is not printed"
  grep -q "label encrypted" <<<"$out" && ok || bad "README example: encrypted labels not told apart"
else
  bad "the README example does not compile against the installed library"
fi
# Compiler flags come only from what the public headers need.
cflags=$(pkg-config --cflags tokenfs)
grep -q "json-c" <<<"$cflags" && bad "tokenfs.pc brings json-c into consumers' flags: $cflags" || ok
grep -q "p11-kit" <<<"$cflags" && ok || bad "tokenfs.pc lacks p11-kit, which tokenfs/pkcs11.h needs: $cflags"

# find_package(tokenfs) from a CMake project.
mkdir -p "$work/cmake-consumer"
cp "$work/labels.c" "$work/cmake-consumer/labels.c"
cat >"$work/cmake-consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(consumer C)
find_package(tokenfs 0.1 REQUIRED)
add_executable(labels labels.c)
target_link_libraries(labels PRIVATE tokenfs::tokenfs)
CMAKE
if CFLAGS="$extra" LDFLAGS="$extra" cmake -S "$work/cmake-consumer" -B "$work/cmake-build" \
     -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/cmake.log" 2>&1 &&
   cmake --build "$work/cmake-build" >>"$work/cmake.log" 2>&1; then
  out=$("$work/cmake-build/labels" "$testdata/store")
  grep -q "data-public" <<<"$out" && ok || bad "find_package consumer: wrong output: $out"
else
  cat "$work/cmake.log"
  bad "a CMake project cannot build with find_package(tokenfs)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
