#!/usr/bin/env bash
# The library as a consumer gets it: install into a scratch prefix, then
# build a program against it with nothing but pkg-config, and run it.
set -u
build=${1:?usage: install_test.sh BUILD_DIR TESTDATA [EXTRA_CFLAGS]}
testdata=${2:?}
extra=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$(find "$work/prefix" -name tokenfs.pc)")
cat >"$work/consumer.c" <<'C'
#include <stdio.h>
#include <tokenfs/tokenfs.h>
int main(int argc, char **argv)
{
	tfs_store *s;
	tfs_error err;
	char msg[1200];
	if (argc != 2 || tfs_store_open(&s, argv[1], NULL, &err) != TFS_OK) {
		puts(tfs_error_format(&err, msg, sizeof(msg)));
		return 1;
	}
	printf("%zu tokens\n", tfs_store_token_count(s));
	tfs_store_free(s);
	return 0;
}
C
# shellcheck disable=SC2086
if cc $extra "$work/consumer.c" $(pkg-config --cflags --libs tokenfs) \
     -Wl,-rpath,"$(pkg-config --variable=libdir tokenfs)" -o "$work/consumer" &&
   [ "$("$work/consumer" "$testdata/store")" = "2 tokens" ]; then
  echo "1 passed, 0 failed"
else
  echo "0 passed, 1 failed"
  exit 1
fi
