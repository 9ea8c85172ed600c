#!/usr/bin/env python3
"""Cross-checks `tokenfs dump --format json` against an independent reading.

This script parses every object file itself (a separate, deliberately plain
implementation of the grammar in docs/format.md) and compares every field of
the JSON: tokens, their metadata, every object and every attribute with its
kind, value, offset and encrypted mark. Exit 1 on any difference.
"""
import hashlib
import json
import os
import struct
import subprocess
import sys

CKA_PRIVATE = 0x2
KINDS = {1: "bool", 2: "ulong", 3: "bytes", 4: "map", 5: "mechanisms"}


def u64(b, off):
    return struct.unpack_from(">Q", b, off)[0]


def parse_value(b, off, kind):
    """Returns (json value, next offset)."""
    if kind == 1:
        return b[off] != 0, off + 1
    if kind == 2:
        return u64(b, off), off + 8
    if kind == 3:
        n = u64(b, off)
        return b[off + 8:off + 8 + n].hex(), off + 8 + n
    if kind == 4:
        n = u64(b, off)
        end, off = off + 8 + n, off + 8
        entries = []
        while off < end:
            t, k = u64(b, off), u64(b, off + 8)
            v, nxt = parse_value(b, off + 16, k)
            entries.append({"type": t, "kind": KINDS[k], "offset": off, "value": v})
            off = nxt
        return entries, end
    if kind == 5:
        n = u64(b, off)
        return [u64(b, off + 8 + 8 * i) for i in range(n)], off + 8 + 8 * n
    raise ValueError(f"kind {kind}")


def parse_object(b):
    gen, off, attrs = u64(b, 0), 8, []
    while off < len(b):
        t, k = u64(b, off), u64(b, off + 8)
        v, nxt = parse_value(b, off + 16, k)
        attrs.append({"type": t, "kind": KINDS[k], "offset": off, "value": v})
        off = nxt
    return gen, attrs


KEY_MATERIAL = {0x11, 0x123, 0x124, 0x125, 0x126, 0x127, 0x128, 0x637}
CKA_CLASS, CKA_KEY_TYPE, CKK_AES = 0x0, 0x100, 0x1F


def fingerprint(value_hex, key_type, attr_type):
    """tokenfs's fingerprint, computed independently: the AES key check value
    by the openssl command, else a SHA-256 prefix by hashlib."""
    value = bytes.fromhex(value_hex)
    if key_type == CKK_AES and attr_type == 0x11 and len(value) in (16, 24, 32):
        ct = subprocess.run(["openssl", "enc", f"-aes-{len(value) * 8}-ecb", "-nopad",
                             "-K", value_hex], input=bytes(16), check=True,
                            capture_output=True).stdout
        return "kcv:" + ct[:3].hex()
    return "sha256:" + hashlib.sha256(value).hexdigest()[:16]


def strip(attr, raw):
    """The fields this script can compute, from a tokenfs JSON attribute; a
    redacted value is checked against its fingerprint and replaced by the
    raw value so the comparison stays whole."""
    out = {k: attr[k] for k in ("type", "kind", "offset") + (("value",) if "value" in attr else ())}
    if attr["kind"] == "map":
        out["value"] = [strip(e, r) for e, r in zip(attr["value"], raw["value"])]
    return out


def main():
    tokenfs, store = sys.argv[1], sys.argv[2]
    doc = json.loads(subprocess.run([tokenfs, "dump", "--format", "json", store],
                                    check=True, capture_output=True).stdout)
    problems, compared = [], 0
    dirs = sorted(d for d in os.listdir(store) if os.path.isdir(os.path.join(store, d)))
    if [t["dir"] for t in doc["tokens"]] != [os.path.join(store, d) for d in dirs]:
        problems.append("token list differs")
    for tok in doc["tokens"]:
        with open(os.path.join(tok["dir"], "token.object"), "rb") as f:
            _, meta = parse_object(f.read())
        m = {a["type"]: a["value"] for a in meta}
        label = bytes.fromhex(m[0x80005349]).decode().rstrip(" ")
        serial = bytes.fromhex(m[0x8000534A]).decode()
        want = {"label": label, "serial": serial, "flags": m[0x8000534B],
                "slot_id": int(serial[-8:], 16) & 0x7FFFFFFF}
        with open(os.path.join(tok["dir"], "generation"), "rb") as f:
            want["generation"] = u64(f.read(), 0)
        for k, v in want.items():
            if tok[k] != v:
                problems.append(f"{tok['dir']}: {k} {tok[k]!r} != {v!r}")
        files = sorted(f for f in os.listdir(tok["dir"])
                       if f.endswith(".object") and f != "token.object")
        if [o["file"] for o in tok["objects"]] != files:
            problems.append(f"{tok['dir']}: object list differs")
        for obj in tok["objects"]:
            with open(os.path.join(tok["dir"], obj["file"]), "rb") as f:
                gen, attrs = parse_object(f.read())
            if obj["generation"] != gen:
                problems.append(f"{obj['file']}: generation")
            private = next((a["value"] for a in attrs if a["type"] == CKA_PRIVATE), True)
            if obj["private"] != private:
                problems.append(f"{obj['file']}: private")
            cls = next((a["value"] for a in attrs if a["type"] == CKA_CLASS), None)
            ktype = next((a["value"] for a in attrs if a["type"] == CKA_KEY_TYPE), None)
            if len(obj["attributes"]) != len(attrs):
                problems.append(f"{obj['file']}: attribute count")
                continue
            for a, raw in zip(obj["attributes"], attrs):
                # Key material is redacted however it is stored; a value
                # still encrypted is named by a SHA-256 of its stored bytes.
                secret = cls in (3, 4) and a["type"] in KEY_MATERIAL and raw["value"] != ""
                if secret:
                    want_fp = (fingerprint(raw["value"], ktype, a["type"]) if not private else
                               "sha256:" + hashlib.sha256(bytes.fromhex(raw["value"])).hexdigest()[:16])
                    if ("value" in a or not a.get("redacted") or a["length"] * 2 != len(raw["value"])
                            or a["fingerprint"] != want_fp):
                        problems.append(f"{obj['file']}: key material {a['type']:#x} not redacted right")
                    raw = {k: v for k, v in raw.items() if k != "value"}
                if strip(a, raw) != raw:
                    problems.append(f"{obj['file']}: attribute {a['type']:#x} differs")
            for a in obj["attributes"]:
                enc = private and a["kind"] == "bytes" and (a.get("length", 0) > 0 if a.get("redacted")
                                                            else a["value"] != "")
                if a.get("encrypted", False) != enc:
                    problems.append(f"{obj['file']}: encrypted mark of {a['type']:#x}")
                compared += 1
    for p in problems:
        print("FAIL:", p, file=sys.stderr)
    print(f"{compared - len(problems)} passed, {len(problems)} failed")
    return 1 if problems or compared == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
