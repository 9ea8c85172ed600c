#!/usr/bin/env python3
"""Every command's JSON document has a top-level "format_version" (and
"command"), and every member it holds is documented in that command's
section of docs/json.md: the output of each command, run on the real
SoftHSM store of testdata/ (with a PIN where that adds members), is walked
whole and each member name must appear there as `name` or "name".

usage: json_documented.py TOKENFS SOURCE_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import expect as check, finish  # noqa: E402

tokenfs, root = sys.argv[1], sys.argv[2]
ENV = dict(os.environ, UPIN="user-pin-1", SOPIN="so-secret-1")

# The sections of docs/json.md, by their "## " heading: which command each
# documents ("" is the part before the first such heading: dump).
doc = open(os.path.join(root, "docs/json.md")).read()
parts = re.split(r"^## (.*)$", doc, flags=re.M)
sections = {"dump": parts[0]}
for head, body in zip(parts[1::2], parts[2::2]):
    sections[head.strip()] = body
# dump's document spans its own headings (TOKEN, OBJECT, ...) up to the
# first section of another command.
for head in ("Document", "TOKEN", "KEY", "OBJECT", "ATTRIBUTE", "decoded", "Example"):
    sections["dump"] += sections.get(head, "")


def section_for(cmd):
    for head, body in sections.items():
        names = re.split(r",\s*|\s+and\s+", head)
        if cmd in names:
            return body
    return None


def keys(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(k)
            keys(v, out)
    elif isinstance(node, list):
        for v in node:
            keys(v, out)
    return out


work = tempfile.mkdtemp()
try:
    store = os.path.join(work, "store")
    shutil.copytree(os.path.join(root, "testdata/store"), store)
    for d, _, files in os.walk(store):
        os.chmod(d, 0o700)
        for f in files:
            os.chmod(os.path.join(d, f), 0o600)
    pin = ["--token", "demo", "--user-pin", "env:UPIN"]
    runs = [
        ("dump", ["dump", store]),
        ("dump", ["dump", "--reveal", *pin, store]),
        ("verify-integrity", ["verify-integrity", store]),
        ("verify-integrity", ["verify-integrity", *pin, store]),
        ("migrate", ["migrate", "--to", "gcm", "--dry-run", *pin, "--so-pin", "env:SOPIN", store]),
        ("rekey", ["rekey", "--dry-run", "--new-label", "renamed", *pin, store]),
        ("recover", ["recover", "--force", store]),
        ("backup", ["backup", "--out", os.path.join(work, "b.tar.gz"), *pin, store]),
        ("diff", ["diff", *pin, store, store]),
        ("export", ["export", "--out", os.path.join(work, "ex"), "--no-encrypt", *pin, store]),
        ("pin-audit", ["pin-audit", "--token", "demo", "--role", "user", "--max-time", "1",
                       "--digits-max", "4", store]),
    ]
    for cmd, args in runs:
        r = subprocess.run([tokenfs, args[0], "--format", "json", *args[1:]],
                           capture_output=True, text=True, env=ENV)
        what = " ".join(a if not a.startswith(work) else os.path.basename(a) for a in args)
        try:
            d = json.loads(r.stdout)
        except ValueError:
            check(f"{what}: a JSON document on stdout (exit {r.returncode}: {r.stderr[:300]})",
                  False)
            continue
        check(f"{what}: exit {r.returncode} is 0 or 1 ({r.stderr[:300]})", r.returncode in (0, 1))
        check(f"{what}: top-level format_version 1", d.get("format_version") == 1)
        if cmd != "export":  # the export manifest is a file of its own (docs/json.md)
            check(f"{what}: top-level command {cmd!r} (got {d.get('command')!r})",
                  d.get("command") == cmd)
        body = section_for(cmd)
        if not check(f"{cmd}: docs/json.md has a section for it", body is not None):
            continue
        missing = sorted(k for k in keys(d, set())
                         if f"`{k}`" not in body and f'"{k}"' not in body)
        check(f"{what}: every member is documented in its section of docs/json.md "
              f"(missing: {missing})", not missing)
finally:
    shutil.rmtree(work, ignore_errors=True)
sys.exit(finish())
