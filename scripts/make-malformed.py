#!/usr/bin/env python3
"""Write testdata/malformed/*.object and MANIFEST.tsv from one real object.

Plain python3, standard library only. Deterministic: the same store gives the
same output, byte for byte.

The source is the one object file in testdata/store that has a non-empty
CKA_WRAP_TEMPLATE attribute map and a non-empty CKA_ALLOWED_MECHANISMS set
(the demo token's "aes256-wrapping-templates" key, made by
scripts/make-testdata.sh). It has top-level bools, ulongs, byte strings, two
non-empty attribute maps (with bool, ulong and byte-string entries) and a
mechanism set, so every field kind can be damaged in place.

Offsets in MANIFEST.tsv are computed from the parsed structure and then
checked against a strict reference parser (check() below). The convention,
one rule for every file:

  * a fixed-size field (an 8-byte ULONG: generation, type, kind, ulong value,
    length, count; or the 1-byte bool) that does not fit in what is left of
    the file: the offset where that field starts;
  * a length or count whose bytes do not fit in what is left of the file (or
    of the enclosing map): the offset of that length/count field. A cut
    inside byte-string data, inside a map's entries or inside a mechanism
    set's members is therefore reported at the value's length/count field:
    a reader cannot tell a cut file from a length that is too large;
  * a fixed-size field inside a map that does not fit in the map's declared
    length (a map length that is too short or too long): the offset of the
    map's length field;
  * an unknown kind, or kind 4 (map) inside a map: the offset of that kind
    field;
  * empty file: 0; generation-only file: 8 (valid: no attributes);
  * duplicate attribute type (valid format, an anomaly): the offset of the
    type field of the repeat.

Usage: scripts/make-malformed.py [STORE [OUTDIR]]
       (defaults testdata/store and testdata/malformed, from the repo root)
"""
import os
import struct
import sys

CKA_NAMES = {
    0x000: "CKA_CLASS", 0x001: "CKA_TOKEN", 0x002: "CKA_PRIVATE",
    0x003: "CKA_LABEL", 0x011: "CKA_VALUE", 0x086: "CKA_TRUSTED",
    0x090: "CKA_CHECK_VALUE", 0x100: "CKA_KEY_TYPE", 0x102: "CKA_ID",
    0x103: "CKA_SENSITIVE", 0x162: "CKA_EXTRACTABLE",
    0x40000211: "CKA_WRAP_TEMPLATE", 0x40000212: "CKA_UNWRAP_TEMPLATE",
    0x40000600: "CKA_ALLOWED_MECHANISMS",
}
CKA_TOKEN = 0x001
CKA_LABEL = 0x003
CKA_WRAP_TEMPLATE = 0x40000211
CKA_UNWRAP_TEMPLATE = 0x40000212
CKA_ALLOWED_MECHANISMS = 0x40000600

BOOL, ULONG, BYTES, MAP, MECHS = 1, 2, 3, 4, 5

NEAR_2_64 = 0xFFFFFFFFFFFFFFF0
# count * 8 wraps to 8 in 64-bit arithmetic.
MUL_WRAPS_TO_8 = 0x2000000000000001


def name(t):
    return CKA_NAMES.get(t, "0x%X" % t)


def u64(data, off):
    return struct.unpack_from(">Q", data, off)[0]


def be(v):
    return struct.pack(">Q", v)


class FormatError(Exception):
    def __init__(self, offset, what):
        super().__init__("offset %d: %s" % (offset, what))
        self.offset = offset
        self.what = what


# ---------------------------------------------------------------------------
# Structure of a well-formed file (used to find where to damage it)

def parse_attr(data, off, end, in_map):
    """Parse one attribute or map entry at off; return (dict, next offset)."""
    a = {"off": off, "type": u64(data, off), "kind_off": off + 8,
         "kind": u64(data, off + 8), "value_off": off + 16}
    v = off + 16
    kind = a["kind"]
    if kind == BOOL:
        a["end"] = v + 1
    elif kind == ULONG:
        a["end"] = v + 8
    elif kind == BYTES:
        n = u64(data, v)
        a.update(len_off=v, length=n, data_off=v + 8, end=v + 8 + n)
    elif kind == MAP and not in_map:
        n = u64(data, v)
        a.update(len_off=v, length=n, data_off=v + 8, end=v + 8 + n)
        entries, p = [], v + 8
        while p < a["end"]:
            e, p = parse_attr(data, p, a["end"], True)
            entries.append(e)
        assert p == a["end"], "map entries do not fill the map"
        a["entries"] = entries
    elif kind == MECHS:
        n = u64(data, v)
        a.update(count_off=v, count=n, data_off=v + 8, end=v + 8 + 8 * n)
    else:
        raise ValueError("source object has kind %d at %d" % (kind, off + 8))
    assert a["end"] <= end
    return a, a["end"]


def parse(data):
    attrs, p = [], 8
    while p < len(data):
        a, p = parse_attr(data, p, len(data), False)
        attrs.append(a)
    return attrs


# ---------------------------------------------------------------------------
# Strict reference checker: returns None for a valid file, else the
# FormatError of the first defect, with the offset convention above.

def check(data):
    if len(data) == 0:
        raise FormatError(0, "empty file")

    def need(p, n, limit, what, map_len_off=None):
        if n > limit - p:
            if map_len_off is not None:
                raise FormatError(map_len_off,
                                  "%s at %d does not fit in the map" % (what, p))
            raise FormatError(p, "%s cut short" % what)

    def value(p, kind, limit, map_len_off, in_map):
        if kind == BOOL:
            need(p, 1, limit, "bool value", map_len_off)
            return p + 1
        if kind == ULONG:
            need(p, 8, limit, "ulong value", map_len_off)
            return p + 8
        if kind in (BYTES, MAP, MECHS):
            need(p, 8, limit, "length/count", map_len_off)
            n = u64(data, p)
            size = n * 8 if kind == MECHS else n   # Python ints: no wrap
            if size > limit - (p + 8):
                raise FormatError(p, "length/count %d runs past the end" % n)
            if kind == MAP:
                if in_map:
                    raise FormatError(p - 8, "map nested in a map")
                q, mend = p + 8, p + 8 + size
                while q < mend:
                    q = attribute(q, mend, p, True)
            return p + 8 + size
        raise FormatError(p - 8, "unknown kind %d" % kind)

    def attribute(p, limit, map_len_off, in_map):
        need(p, 8, limit, "type", map_len_off)
        need(p + 8, 8, limit, "kind", map_len_off)
        kind = u64(data, p + 8)
        if in_map and kind == MAP:
            raise FormatError(p + 8, "map nested in a map")
        return value(p + 16, kind, limit, map_len_off, in_map)

    need(0, 8, len(data), "generation")
    p = 8
    seen = set()
    dup = None
    while p < len(data):
        t_off = p
        p = attribute(p, len(data), None, False)
        t = u64(data, t_off)
        if t in seen and dup is None:
            dup = t_off
        seen.add(t)
    return dup   # None, or the offset of the first repeated type


# ---------------------------------------------------------------------------

def find_source(store):
    found = []
    for root, dirs, files in os.walk(store):
        dirs.sort()
        for f in sorted(files):
            if not f.endswith(".object") or f == "token.object":
                continue
            path = os.path.join(root, f)
            with open(path, "rb") as fh:
                data = fh.read()
            try:
                attrs = parse(data)
            except (ValueError, AssertionError, struct.error):
                continue
            by = {a["type"]: a for a in attrs}
            w, m = by.get(CKA_WRAP_TEMPLATE), by.get(CKA_ALLOWED_MECHANISMS)
            if w and w["kind"] == MAP and w["entries"] and m and m["count"]:
                found.append((path, data, attrs))
    if len(found) != 1:
        sys.exit("expected exactly one object with a non-empty "
                 "CKA_WRAP_TEMPLATE and CKA_ALLOWED_MECHANISMS in %s, found %d"
                 % (store, len(found)))
    return found[0]


def cases(data, attrs):
    """Yield (filename, bytes, offset, description)."""
    by = {a["type"]: a for a in attrs}
    first = {}
    for a in attrs:
        first.setdefault(a["kind"], a)
    ul = first[ULONG]                       # CKA_CLASS
    bo = first[BOOL]                        # CKA_TOKEN
    bs = next(a for a in attrs if a["kind"] == BYTES and a["length"] > 0)
    mp = by[CKA_WRAP_TEMPLATE]
    ms = by[CKA_ALLOWED_MECHANISMS]
    mid = attrs[attrs.index(bs) + 1]        # the attribute after the label
    size = len(data)

    def put(offset, v):
        return data[:offset] + be(v) + data[offset + 8:]

    yield ("empty.object", b"", 0, "empty file (SoftHSM skips it)")
    yield ("generation-only.object", data[:8], 8,
           "VALID: only the 8-byte generation, an object with no attributes")
    yield ("trunc-in-generation.object", data[:4], 0,
           "cut after 4 of the 8 generation bytes")
    yield ("trunc-in-type.object", data[:mid["off"] + 3], mid["off"],
           "cut 3 bytes into the type field of %s" % name(mid["type"]))
    yield ("trunc-in-kind.object", data[:mid["kind_off"] + 5], mid["kind_off"],
           "cut 5 bytes into the kind field of %s" % name(mid["type"]))
    yield ("trunc-in-bool.object", data[:bo["value_off"]], bo["value_off"],
           "cut before the 1-byte bool value of %s" % name(bo["type"]))
    yield ("trunc-in-ulong.object", data[:ul["value_off"] + 4], ul["value_off"],
           "cut 4 bytes into the ulong value of %s" % name(ul["type"]))
    yield ("trunc-in-bytes-len.object", data[:bs["len_off"] + 4], bs["len_off"],
           "cut 4 bytes into the byte-string length of %s" % name(bs["type"]))
    cut = bs["data_off"] + bs["length"] // 2
    yield ("trunc-in-bytes-data.object", data[:cut], bs["len_off"],
           "cut at %d, inside the %d data bytes of %s (data at %d); offset is "
           "its length field" % (cut, bs["length"], name(bs["type"]),
                                 bs["data_off"]))
    yield ("trunc-in-map-len.object", data[:mp["len_off"] + 4], mp["len_off"],
           "cut 4 bytes into the map length of %s" % name(mp["type"]))
    e = mp["entries"][-1]
    cut = e["kind_off"] + 3
    yield ("trunc-in-map-entry.object", data[:cut], mp["len_off"],
           "cut at %d, inside the kind field of the last entry (%s at %d) of "
           "%s; offset is the map length field"
           % (cut, name(e["type"]), e["off"], name(mp["type"])))
    yield ("trunc-in-mech-count.object", data[:ms["count_off"] + 4],
           ms["count_off"],
           "cut 4 bytes into the mechanism count of %s" % name(ms["type"]))
    last = ms["data_off"] + 8 * (ms["count"] - 1)
    yield ("trunc-in-mech-member.object", data[:last + 4], ms["count_off"],
           "cut 4 bytes into mechanism %d of %d (at %d) of %s; offset is the "
           "count field" % (ms["count"], ms["count"], last, name(ms["type"])))

    past = size - bs["data_off"] + 1
    yield ("len-past-end.object", put(bs["len_off"], past), bs["len_off"],
           "byte-string length of %s set to %d, 1 more than the bytes left"
           % (name(bs["type"]), past))
    yield ("len-near-2-64.object", put(bs["len_off"], NEAR_2_64), bs["len_off"],
           "byte-string length of %s set to 0x%016X (offset+length wraps)"
           % (name(bs["type"]), NEAR_2_64))
    yield ("map-len-near-2-64.object", put(mp["len_off"], NEAR_2_64),
           mp["len_off"], "map length of %s set to 0x%016X"
           % (name(mp["type"]), NEAR_2_64))
    yield ("mech-count-near-2-64.object", put(ms["count_off"], NEAR_2_64),
           ms["count_off"], "mechanism count of %s set to 0x%016X"
           % (name(ms["type"]), NEAR_2_64))
    yield ("mech-count-mul-overflow.object",
           put(ms["count_off"], MUL_WRAPS_TO_8), ms["count_off"],
           "mechanism count of %s set to 0x%016X: count*8 wraps to 8 in 64 bits"
           % (name(ms["type"]), MUL_WRAPS_TO_8))

    yield ("unknown-kind-7.object", put(ul["kind_off"], 7), ul["kind_off"],
           "kind of %s set to 7 (unknown kind)" % name(ul["type"]))
    e = mp["entries"][0]
    yield ("map-entry-unknown-kind-7.object", put(e["kind_off"], 7),
           e["kind_off"], "kind of map entry %s in %s set to 7"
           % (name(e["type"]), name(mp["type"])))
    yield ("map-len-short-by-1.object", put(mp["len_off"], mp["length"] - 1),
           mp["len_off"], "map length of %s is %d, its entries fill %d"
           % (name(mp["type"]), mp["length"] - 1, mp["length"]))
    yield ("map-len-long-by-1.object", put(mp["len_off"], mp["length"] + 1),
           mp["len_off"], "map length of %s is %d, its entries fill %d"
           % (name(mp["type"]), mp["length"] + 1, mp["length"]))

    # A kind-4 entry (holding one bool entry) appended to the map.
    inner = be(CKA_TOKEN) + be(BOOL) + b"\xff"
    nested = be(CKA_UNWRAP_TEMPLATE) + be(MAP) + be(len(inner)) + inner
    out = (put(mp["len_off"], mp["length"] + len(nested))[:mp["end"]]
           + nested + data[mp["end"]:])
    yield ("map-nested.object", out, mp["end"] + 8,
           "a %s entry of kind 4 (a map, holding one bool) appended inside %s "
           "(map length adjusted); offset is the nested kind field"
           % (name(CKA_UNWRAP_TEMPLATE), name(mp["type"])))

    garbage = b"\xde\xad\xbe"
    yield ("trailing-garbage.object", data + garbage, size,
           "%d bytes after the last attribute" % len(garbage))

    copy = data[bs["off"]:bs["end"]]
    yield ("duplicate-label.object", data[:bs["end"]] + copy + data[bs["end"]:],
           bs["end"], "VALID format, anomaly: %s repeated right after itself "
           "(the last one wins in SoftHSM); offset is the repeat"
           % name(bs["type"]))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    store = sys.argv[1] if len(sys.argv) > 1 else os.path.join(repo, "testdata", "store")
    outdir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(repo, "testdata", "malformed")

    path, data, attrs = find_source(store)
    assert check(data) is None, "source object does not pass the checker"
    src = os.path.relpath(path, repo)

    os.makedirs(outdir, exist_ok=True)
    for f in sorted(os.listdir(outdir)):
        if f.endswith(".object") or f == "MANIFEST.tsv":
            os.remove(os.path.join(outdir, f))

    rows = []
    for fname, body, offset, desc in cases(data, attrs):
        valid = desc.startswith("VALID")
        try:
            dup = check(body)
            got = dup if dup is not None else (8 if len(body) == 8 else None)
            ok = valid and got == offset
        except FormatError as e:
            got, ok = e.offset, (not valid and e.offset == offset)
        if not ok:
            sys.exit("%s: manifest offset %d, reference checker says %r"
                     % (fname, offset, got))
        with open(os.path.join(outdir, fname), "wb") as fh:
            fh.write(body)
        rows.append((fname, offset, desc))

    with open(os.path.join(outdir, "MANIFEST.tsv"), "w") as fh:
        fh.write("# made by scripts/make-malformed.py from %s (%d bytes)\n"
                 % (src, len(data)))
        fh.write("# columns: filename<TAB>offset of the defect<TAB>description;"
                 " offset rules in scripts/make-malformed.py\n")
        for fname, offset, desc in rows:
            fh.write("%s\t%d\t%s\n" % (fname, offset, desc))
    print("make-malformed: %d files from %s" % (len(rows), src))


if __name__ == "__main__":
    main()
