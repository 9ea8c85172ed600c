#!/usr/bin/env bash
# abi_check must not go blind again. It once passed a public struct growing
# from 512 to 576 bits because abidw had tied the only function taking it to
# no ELF symbol (libtokenfs/abi/abi_lib.sh). This test runs the check's own
# dump and comparison (abi_lib.sh):
#   - on a tiny library built twice with the same trap (the exported function
#     is declared in a translation unit read before the one defining it): growing its public
#     struct must fail and name it; a change to a private struct only, or the
#     same library built in another directory, must pass;
#   - on libtokenfs itself: for every public struct, a copy of the library's
#     ABI in which only that struct is larger must fail and name it;
#   - the untied-symbol guard must name a symbol whose tie was removed.
#
#   abi_check_selftest.sh BUILD_DIR SOURCE_DIR C_COMPILER
set -u
build=${1:?usage: abi_check_selftest.sh BUILD_DIR SOURCE_DIR C_COMPILER}
src=${2:?}
cc=${3:-cc}
. "$src/libtokenfs/abi/abi_lib.sh"
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
tfs_abi_require || { echo "0 passed, 1 failed"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- a tiny library with the trap -------------------------------------------
# abidw reads translation units in the order of their paths: a_caller.c,
# which only calls st_call (a declaration DIE), comes before z_callee.c, which
# defines it, as change/seal_step.c comes before verify/verify.c. st_call is
# the only function that takes the struct.
mini() { # DIR CFLAGS...: builds DIR/libst.so from the same sources
	local d=$1
	shift
	mkdir -p "$d/inc"
	cat >"$d/inc/st.h" <<'H'
struct st_pub {
	long a;
	long b;
#ifdef ST_PUB_GROWS
	long c;
#endif
};
typedef struct st_priv st_priv; /* opaque: its layout is private */
int st_call(struct st_pub *p, st_priv *q);
int st_wrap(void);
H
	printf '#include "st.h"\nint st_wrap(void) { return st_call(0, 0); }\n' >"$d/a_caller.c"
	cat >"$d/z_callee.c" <<'C'
#include "st.h"
struct st_priv {
	int x;
#ifdef ST_PRIV_GROWS
	int y;
#endif
};
int st_call(struct st_pub *p, st_priv *q) { return p && q ? (int)p->a + q->x : 0; }
C
	(cd "$d" && "$cc" -g -O0 -fPIC -shared -Iinc "$@" -o libst.so a_caller.c z_callee.c)
}
if mini "$tmp/v1" && mini "$tmp/pub" -DST_PUB_GROWS && mini "$tmp/priv" -DST_PRIV_GROWS &&
	mini "$tmp/elsewhere/v1"; then
	for v in v1 pub priv elsewhere/v1; do tfs_abi_dump "$tmp/$v/libst.so" "$tmp/$v.abi"; done
	untied=$(tfs_abi_untied "$tmp/v1.abi")
	[ -z "$untied" ] && ok || bad "the dump of the tiny library ties no declaration to: $untied"
	grep -q "elf-symbol-id='st_call'" "$tmp/v1.abi" && ok ||
		bad "st_call (declared in a_caller.c before z_callee.c defines it) is not tied to its symbol"

	report=$(tfs_abi_diff "$tmp/v1.abi" "$tmp/pub.abi" "$tmp/v1/inc" 2>&1)
	rc=$?
	[ "$rc" -ne 0 ] && grep -qF "'struct st_pub'" <<<"$report" && ok ||
		bad "a public struct that grows passes (abidiff exit $rc): $report"
	report=$(tfs_abi_diff "$tmp/v1.abi" "$tmp/priv.abi" "$tmp/v1/inc" 2>&1)
	rc=$?
	[ "$rc" -eq 0 ] && ok || bad "a change to a private struct only fails (exit $rc): $report"
	# Another checkout: the same sources built elsewhere, headers from there.
	report=$(tfs_abi_diff "$tmp/v1.abi" "$tmp/elsewhere/v1.abi" "$tmp/elsewhere/v1/inc" 2>&1)
	rc=$?
	[ "$rc" -eq 0 ] && ok || bad "the same library built in another directory differs (exit $rc): $report"
	if grep -qE "(path|filepath)='/" "$tmp/v1.abi"; then
		bad "the dump records absolute paths"
	else ok; fi

	# The guard sees a symbol that lost its tie (what abidw 2.2 did by default).
	sed "s/ elf-symbol-id='st_call'//" "$tmp/v1.abi" >"$tmp/blind.abi"
	[ "$(tfs_abi_untied "$tmp/blind.abi")" = st_call ] && ok ||
		bad "the guard does not name st_call in a dump where it is tied to nothing"
else
	bad "cannot build the tiny library with $cc"
fi

# --- every public struct of libtokenfs --------------------------------------
lib=$build/libtokenfs/libtokenfs.so
hdrs=$src/libtokenfs/include/tokenfs
if ! tfs_abi_dump "$lib" "$tmp/lib.abi"; then
	bad "abidw cannot read $lib"
elif tfs_abi_no_dwarf "$tmp/lib.abi"; then
	bad "cannot compare the types of $lib: $NO_DWARF_HINT"
else
	untied=$(tfs_abi_untied "$tmp/lib.abi")
	[ -z "$untied" ] && ok || bad "the dump of libtokenfs ties no declaration to: $untied"
	if report=$(tfs_abi_diff "$tmp/lib.abi" "$tmp/lib.abi" "$hdrs" 2>&1); then ok; else
		bad "libtokenfs differs from itself: $report"
	fi
	# One copy per public struct (defined in include/tokenfs/*.h), that
	# struct 64 bits larger with a member added at its end.
	python3 - "$tmp/lib.abi" "$hdrs" "$tmp" <<'PY' >"$tmp/structs"
import os, re, sys
abi, hdrs, out = sys.argv[1:4]
text = open(abi).read()
public = set(os.listdir(hdrs))
# A private header may share a public one's base name (change/change.h):
# keep the structs a public header defines.
defined = set()
for h in public:
    defined |= set(re.findall(r"struct (\w+) \{", open(os.path.join(hdrs, h)).read()))
decl = re.compile(r"<class-decl name='([A-Za-z_][A-Za-z0-9_]*)' size-in-bits='(\d+)'[^>]*?"
                  r"filepath='([^']*)'[^>]*>(.*?)</class-decl>", re.S)
names = sorted({m.group(1) for m in decl.finditer(text) if m.group(3) in public and m.group(1) in defined})
for name in sorted(defined - set(names)):
    print("note: struct %s is defined in a public header but no exported function or "
          "variable reaches it, so its layout is not part of the ABI" % name, file=sys.stderr)
for name in names:
    def grow(m):
        if m.group(1) != name:
            return m.group(0)
        size = int(m.group(2))
        first = re.search(r"<var-decl [^>]*type-id='([^']+)'", m.group(4))
        member = ("<data-member access='public' layout-offset-in-bits='%d'>"
                  "<var-decl name='abi_selftest_added' type-id='%s' visibility='default'/>"
                  "</data-member>\n" % (size, first.group(1))) if first else ""
        head = m.group(0)[: m.start(4) - m.start(0)]
        head = head.replace("size-in-bits='%d'" % size, "size-in-bits='%d'" % (size + 64), 1)
        return head + m.group(4) + member + "</class-decl>"
    open(os.path.join(out, name + ".abi"), "w").write(decl.sub(grow, text))
    print(name)
PY
	n=$(wc -l <"$tmp/structs")
	[ "$n" -ge 10 ] && ok || bad "only $n public structs found in the ABI of libtokenfs: the dump is not being read"
	while read -r name; do
		report=$(tfs_abi_diff "$tmp/$name.abi" "$tmp/lib.abi" "$hdrs" 2>&1)
		rc=$?
		[ "$rc" -ne 0 ] && grep -qF "'struct $name'" <<<"$report" && ok ||
			bad "struct $name grown by 64 bits passes the check (abidiff exit $rc)"
	done <"$tmp/structs"
	echo "checked $n public structs: $(tr "\n" " " <"$tmp/structs")"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
