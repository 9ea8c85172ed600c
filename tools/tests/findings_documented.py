#!/usr/bin/env python3
"""Every finding code the sources can emit (or the public headers name) is
documented in docs/findings.md, and every code documented there is one the
sources can emit.

A code is a string literal such as "object.torn": a lower-case word, a dot
and a hyphenated word. File names of the same shape ("token.object",
"tokenfs.seal") are told apart by their extension.
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
FILE_EXTS = {"object", "lock", "seal", "so", "txt", "vec", "journal", "json", "pem",
             "der", "tar", "gz", "xz", "zst", "zip", "tgz", "tmp", "new", "conf", "asn",
             "p12", "jwk", "hex", "key", "bin", "md", "c", "h", "sh", "py"}
literal = re.compile(r'"([a-z][a-z0-9]*\.[a-z0-9]+(?:-[a-z0-9]+)*)"')


def codes_in(paths):
    found = {}
    for path in paths:
        if path.name.endswith("_test.c") or path.name in ("testvec.c", "testutil.c", "testkit.c"):
            continue
        for m in literal.finditer(path.read_text()):
            code = m.group(1)
            if code.split(".", 1)[1] in FILE_EXTS or code.startswith("libsofthsm2"):
                continue
            found.setdefault(code, str(path.relative_to(root)))
    return found


emitted = codes_in(sorted(list(root.glob("libtokenfs/**/*.c")) + list(root.glob("tools/*.c"))))
# A code the public headers name (an example in a comment) must be one the
# sources emit, as finding.h's "object.truncated" once was not.
named = codes_in(sorted(root.glob("libtokenfs/include/tokenfs/*.h")))

doc = (root / "docs/findings.md").read_text()
documented = set(re.findall(r"^\| `([a-z0-9]+\.[a-z0-9-]+)` \|", doc, re.M))

bad = 0
for code in sorted(set(emitted) - documented):
    print(f"FAIL: {code} (emitted in {emitted[code]}) has no row in docs/findings.md")
    bad += 1
for code in sorted(set(named) - set(emitted)):
    print(f"FAIL: {named[code]} names {code}, which no source emits")
    bad += 1
for code in sorted(documented - set(emitted)):
    print(f"FAIL: docs/findings.md documents {code}, which no source emits")
    bad += 1
print(f"{len(emitted)} codes emitted, {len(documented)} documented")
print(f"{len(set(emitted) & documented)} passed, {bad} failed")
sys.exit(1 if bad or not emitted else 0)
