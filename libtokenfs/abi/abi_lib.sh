# shellcheck shell=bash
# Shared by scripts/abi-baseline.sh, libtokenfs/abi_check.sh and
# libtokenfs/abi_check_selftest.sh, so the baseline, the check and the
# self-test read and compare an ABI the same way. Source it; needs abidw and
# abidiff (abigail-tools 2.2, Debian 12).
#
# Why --exported-interfaces-only: GCC writes a declaration DIE of an exported
# function into every translation unit that calls it, and abidw 2.2 reads
# the units in the order of their paths. When a caller comes first
# (change/seal_step.c calls tfs_verify_token, defined in verify/verify.c),
# abidw keeps that declaration-only copy, writes it without an elf-symbol-id
# and drops the definition, so in the XML the function is tied to no ELF
# symbol, and abidiff compares only the functions tied to one: 84 of the 206
# exported functions, tfs_verify_token among them, had their types silently
# unchecked, and tfs_verify_summary growing from 512 to 576 bits passed.
# With the option abidw builds only what the ELF symbols export, from their
# definitions, and ties every one.
# tfs_abi_untied catches that failure (or any other that leaves a symbol
# unchecked) in both the baseline and the library under test.
#
# Why --short-locs --no-comp-dir-path --no-corpus-path --no-elf-needed: the
# XML then records no absolute path of the checkout or the build directory
# and not the sanitizer runtimes, so a baseline written in one checkout and
# build configuration compares cleanly in another (CI clones elsewhere).
# abidiff's --headers-dir filter matches a type's file by base name, so short
# locations still tell public types (include/tokenfs/*.h) from private ones.

# tfs_abi_dump LIBRARY OUT.abi: the ABI of LIBRARY as ABIXML.
tfs_abi_dump() {
	abidw --exported-interfaces-only --short-locs --no-comp-dir-path --no-corpus-path \
		--no-elf-needed --out-file "$2" "$1"
}

# tfs_abi_untied ABI.abi: prints the defined ELF symbols that no function or
# variable declaration of the XML is tied to (their types would go
# unchecked); nothing when every one is tied.
tfs_abi_untied() {
	python3 - "$1" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
syms = set()
for m in re.finditer(r"<elf-symbol name='([^']+)'([^>]*)/>", text):
    attrs = m.group(2)
    if "is-defined='yes'" not in attrs:
        continue
    ver = re.search(r"version='([^']*)'", attrs)
    default = "is-default-version='yes'" in attrs
    syms.add(m.group(1) + (("@@" if default else "@") + ver.group(1) if ver else ""))
tied = set(re.findall(r"elf-symbol-id='([^']+)'", text))
for s in sorted(syms - tied):
    print(s)
EOF
}

# tfs_abi_no_dwarf ABI.abi: true when the XML has no declaration at all: the
# library was built without -g (CMAKE_BUILD_TYPE=Release), so only symbol
# names could be compared.
tfs_abi_no_dwarf() {
	! grep -q '<function-decl ' "$1"
}
# shellcheck disable=SC2034 # used by the scripts that source this file
NO_DWARF_HINT="it has no debug information; build it with -g (CMAKE_BUILD_TYPE Debug or RelWithDebInfo)"

# tfs_abi_diff OLD.abi NEW.abi HEADERS_DIR: abidiff's report on stdout, its
# exit status as the status (0: no change a linked program could see; added
# functions are not changes). Types not defined in a header of HEADERS_DIR
# are private (opaque to programs), so their layout may change.
tfs_abi_diff() {
	abidiff --no-added-syms --headers-dir1 "$3" --headers-dir2 "$3" "$1" "$2"
}

# tfs_abi_require: fails with a message when abidw or abidiff is missing.
tfs_abi_require() {
	local t
	for t in abidw abidiff python3; do
		if ! command -v "$t" >/dev/null; then
			echo "FAIL: $t is required (abigail-tools; scripts/install-deps.sh check installs it)"
			return 1
		fi
	done
}
