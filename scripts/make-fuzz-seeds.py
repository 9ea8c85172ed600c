#!/usr/bin/env python3
"""Writes the committed seed corpora of the store fuzzers from testdata/.

fuzz/corpus/fuzz_object:   every .object file of testdata (store and malformed)
fuzz/corpus/fuzz_tokendir: each token directory of testdata/store, and the
                           whole store, as images in fuzz_tokendir.c's format

Deterministic: seeds are named by the SHA-256 of their bytes.
"""
import hashlib
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTDATA = os.path.join(ROOT, "testdata")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def write_seed(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha256(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def record(kind, rel, data=b""):
    p = rel.encode()
    if len(p) > 255:
        raise SystemExit(f"path too long for the image format: {rel}")
    out = struct.pack("BB", kind, len(p)) + p
    if kind == 1:
        if len(data) > 0xFFFF:
            raise SystemExit(f"file too large for the image format: {rel}")
        out += struct.pack(">H", len(data)) + data
    return out


def image(top, prefix):
    """An image of the tree at top, with paths starting at prefix."""
    out = b""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        rel = os.path.relpath(dirpath, top)
        base = prefix if rel == "." else os.path.join(prefix, rel) if prefix else rel
        if base:
            out += record(0, base)
        for fn in sorted(filenames):
            with open(os.path.join(dirpath, fn), "rb") as f:
                out += record(1, os.path.join(base, fn) if base else fn, f.read())
    return out


def main():
    for sub in ("store", "malformed"):
        for dirpath, _, filenames in os.walk(os.path.join(TESTDATA, sub)):
            for fn in sorted(filenames):
                if fn.endswith(".object"):
                    with open(os.path.join(dirpath, fn), "rb") as f:
                        write_seed("fuzz_object", f.read())
    store = os.path.join(TESTDATA, "store")
    for tok in sorted(os.listdir(store)):
        write_seed("fuzz_tokendir", image(os.path.join(store, tok), tok))
    write_seed("fuzz_tokendir", image(store, ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
