#!/usr/bin/python3
"""`tokenfs dump --user-pin ... --format json` against real SoftHSM 2.6.1.

For every token of two stores -- a copy of testdata/store and a store made
just now through PKCS#11 -- tokenfs dumps each token first (with and without
--reveal, the user PIN passed as env:VAR), and only then does SoftHSM open
the same files: the script logs in as the user through PyKCS11, matches
every PKCS#11 object to a tokenfs object by (CKA_CLASS, CKA_LABEL, CKA_ID)
(1:1 and complete both ways) and calls C_GetAttributeValue for every
attribute type tokenfs lists, one type per call:

  * a value SoftHSM returns must equal tokenfs's byte for byte (bools,
    ulongs, plaintext of decrypted byte strings, mechanism sets; attribute
    maps: entry types and lengths through PyKCS11, entry values through
    ctypes on the same loaded module, as PyKCS11 1.5 cannot make the third
    call an attribute array needs);
  * where SoftHSM answers CKR_ATTRIBUTE_SENSITIVE, tokenfs must show the
    value revealed, and where possible the value is proven right against
    what SoftHSM does return: RSA components against CKA_MODULUS and
    CKA_PUBLIC_EXPONENT, EC private values against the public key's
    CKA_EC_POINT, secret keys against CKA_CHECK_VALUE;
  * without --reveal, key material carries "redacted": true, its length and
    fingerprint and no value, and everything else is as with --reveal;
  * no PIN appears in tokenfs's stdout or stderr;
  * SoftHSM leaves every <uuid>.object file as tokenfs read it, and tokenfs
    dumps the same after SoftHSM has had the store.

Needs the Debian python (/usr/bin/python3, with python3-pykcs11), softhsm2
and openssl. TOKENFS and TFS_TESTDATA come from ctest's environment. Missing
tools skip (exit 77), or fail when CI=true. Prints "N passed, N failed".

The script runs itself as a child (--pkcs11-create, --pkcs11-read) for the
PKCS#11 work, one process per store, so that each C_Initialize sees its own
SOFTHSM2_CONF and SoftHSM never has a store open while tokenfs reads it.
"""
import collections
import ctypes
import hashlib
import importlib.util
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import traceback

MODULE = os.environ.get("SOFTHSM2_MODULE", "/usr/lib/softhsm/libsofthsm2.so")

# Fixture PINs (testdata/README.md) and the fresh store's.
FIXTURE_PINS = {"demo": ("so-secret-1", "user-pin-1"),
                "second": ("so-secret-2", "user-pin-2")}
FRESH_LABEL, FRESH_SO_PIN, FRESH_USER_PIN = "fresh", "fresh-so-pin-7", "fresh-user-pin-7"
PIN_ENV = "TFS_AGREEMENT_PIN"

CKR_OK, CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID = 0x0, 0x11, 0x12
CKO_DATA, CKO_PUBLIC_KEY, CKO_PRIVATE_KEY, CKO_SECRET_KEY = 0, 2, 3, 4
CKK_RSA, CKK_EC, CKK_GENERIC_SECRET, CKK_AES = 0x0, 0x3, 0x10, 0x1F
A_CLASS, A_LABEL, A_VALUE, A_CHECK_VALUE, A_KEY_TYPE, A_ID = 0x0, 0x3, 0x11, 0x90, 0x100, 0x102
A_MODULUS, A_PUBLIC_EXPONENT, A_PRIVATE_EXPONENT = 0x120, 0x122, 0x123
A_PRIME_1, A_PRIME_2, A_EXPONENT_1, A_EXPONENT_2, A_COEFFICIENT = 0x124, 0x125, 0x126, 0x127, 0x128
A_EC_PARAMS, A_EC_POINT = 0x180, 0x181
RSA_PRIVATE = (A_PRIVATE_EXPONENT, A_PRIME_1, A_PRIME_2, A_EXPONENT_1, A_EXPONENT_2, A_COEFFICIENT)
# Key material (secret and private keys): what tokenfs must redact.
KEY_MATERIAL = {A_VALUE} | set(RSA_PRIVATE)
ULONG = ctypes.sizeof(ctypes.c_ulong)


class CkAttribute(ctypes.Structure):
    _fields_ = [("type", ctypes.c_ulong), ("pValue", ctypes.c_void_p),
                ("ulValueLen", ctypes.c_ulong)]


# ---------------------------------------------------------------------------
# Elliptic curves, to prove a revealed EC private value against the public
# point SoftHSM returns (affine arithmetic; a = -3 for both curves).

P256_OID = bytes.fromhex("06082a8648ce3d030107")  # DER of prime256v1
CURVES = {
    P256_OID: (
        2**256 - 2**224 + 2**192 + 2**96 - 1,
        0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
        0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5, 32),
    bytes.fromhex("06052b81040022"): (  # secp384r1
        2**384 - 2**128 - 2**96 + 2**32 - 1,
        0xAA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C3A545E3872760AB7,
        0x3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D7A431D7C90EA0E5F, 48),
}


def ec_mul(k, point, p):
    def add(a, b):
        if a is None:
            return b
        if b is None:
            return a
        if a[0] == b[0] and (a[1] + b[1]) % p == 0:
            return None
        if a == b:
            lam = (3 * a[0] * a[0] - 3) * pow(2 * a[1], -1, p) % p
        else:
            lam = (b[1] - a[1]) * pow(b[0] - a[0], -1, p) % p
        x = (lam * lam - a[0] - b[0]) % p
        return x, (lam * (a[0] - x) - a[1]) % p
    result = None
    while k:
        if k & 1:
            result = add(result, point)
        point, k = add(point, point), k >> 1
    return result


def ec_point_bytes(der):
    """CKA_EC_POINT: a DER OCTET STRING around 04||X||Y (SoftHSM 2.6), or bare."""
    if len(der) > 2 and der[0] == 0x04 and der[1] < 0x80 and der[1] == len(der) - 2:
        return der[2:]
    if len(der) > 3 and der[0] == 0x04 and der[1] == 0x81 and der[2] == len(der) - 3:
        return der[3:]
    return der


def aes_kcv(key):
    out = subprocess.run(["openssl", "enc", "-aes-%d-ecb" % (len(key) * 8), "-nopad",
                          "-K", key.hex()], input=bytes(16), capture_output=True, check=True)
    return out.stdout[:3]


# ---------------------------------------------------------------------------
# Children: the PKCS#11 side.

def p11_open():
    import PyKCS11
    lib = PyKCS11.PyKCS11Lib()
    lib.load(MODULE)
    return PyKCS11, lib


def p11_template(PyKCS11, pairs):
    """A template from (type, value) pairs, typed by the Python value (not by
    PyKCS11's guess from the type, which would mangle non-UTF-8 labels)."""
    t = PyKCS11.LowLevel.ckattrlist(len(pairs))
    for i, (typ, v) in enumerate(pairs):
        if isinstance(v, bool):
            t[i].SetBool(typ, v)
        elif isinstance(v, int):
            t[i].SetNum(typ, v)
        elif isinstance(v, bytes):
            t[i].SetBin(typ, PyKCS11.ckbytelist(v))
        elif isinstance(v, list):
            t[i].SetList(typ, p11_template(PyKCS11, v))
        else:
            raise TypeError(v)
    return t


def child_create(req):
    """Makes the fresh token's objects (labels, ids and values with
    non-ASCII and non-UTF-8 bytes)."""
    PyKCS11, lib = p11_open()
    P = PyKCS11
    slot = next(s for s in lib.getSlotList(tokenPresent=True)
                if lib.getTokenInfo(s).label.rstrip(" ") == req["label"])
    s = lib.openSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION)
    s.login(req["pin"])
    tok = [(P.CKA_TOKEN, True)]

    def check(rv, what):
        if rv != P.CKR_OK:
            raise SystemExit("creating %s: %s" % (what, P.CKR.get(rv, hex(rv))))

    def key(mech, what, pairs):
        m, h = P.Mechanism(mech, None), P.LowLevel.CK_OBJECT_HANDLE()
        check(lib.lib.C_GenerateKey(s.session, m.to_native(), p11_template(P, tok + pairs), h), what)

    def pair(mech, what, pub, priv):
        m = P.Mechanism(mech, None)
        hp, hq = P.LowLevel.CK_OBJECT_HANDLE(), P.LowLevel.CK_OBJECT_HANDLE()
        check(lib.lib.C_GenerateKeyPair(s.session, m.to_native(), p11_template(P, tok + pub),
                                        p11_template(P, tok + priv), hp, hq), what)

    def obj(what, pairs):
        h = P.LowLevel.CK_OBJECT_HANDLE()
        check(lib.lib.C_CreateObject(s.session, p11_template(P, tok + pairs), h), what)

    readable = [(P.CKA_SENSITIVE, False), (P.CKA_EXTRACTABLE, True)]
    key(P.CKM_AES_KEY_GEN, "aes256 readable", readable + [
        (P.CKA_PRIVATE, True), (P.CKA_VALUE_LEN, 32), (P.CKA_ENCRYPT, True), (P.CKA_DECRYPT, True),
        (P.CKA_LABEL, "aes256-readable-clé-ключ".encode()), (P.CKA_ID, b"\x10\xff\x00\x80")])
    key(P.CKM_GENERIC_SECRET_KEY_GEN, "generic secret readable", readable + [
        (P.CKA_PRIVATE, True), (P.CKA_VALUE_LEN, 32), (P.CKA_SIGN, True), (P.CKA_VERIFY, True),
        (P.CKA_LABEL, b"generic-\xff\xfe-not-utf8"), (P.CKA_ID, b"\x11\xc3"),
        (P.CKA_ALLOWED_MECHANISMS, struct.pack("=QQ", P.CKM_SHA256_HMAC, P.CKM_SHA512_HMAC))])
    pair(P.CKM_EC_KEY_PAIR_GEN, "EC P-256 pair",
         [(P.CKA_PRIVATE, False), (P.CKA_VERIFY, True), (P.CKA_EC_PARAMS, P256_OID),
          (P.CKA_LABEL, "ec-p256-fresh-pub-ü".encode()), (P.CKA_ID, b"\x12\xee")],
         readable + [(P.CKA_PRIVATE, True), (P.CKA_SIGN, True), (P.CKA_DERIVE, True),
                     (P.CKA_LABEL, "ec-p256-fresh-priv-ü".encode()), (P.CKA_ID, b"\x12\xee")])
    pair(P.CKM_RSA_PKCS_KEY_PAIR_GEN, "RSA 2048 pair",
         [(P.CKA_PRIVATE, False), (P.CKA_VERIFY, True), (P.CKA_ENCRYPT, True),
          (P.CKA_MODULUS_BITS, 2048), (P.CKA_PUBLIC_EXPONENT, b"\x01\x00\x01"),
          (P.CKA_LABEL, b"rsa2048-fresh-pub"), (P.CKA_ID, b"\x13")],
         readable + [(P.CKA_PRIVATE, True), (P.CKA_SIGN, True), (P.CKA_DECRYPT, True),
                     (P.CKA_LABEL, b"rsa2048-fresh-priv"), (P.CKA_ID, b"\x13")])
    key(P.CKM_AES_KEY_GEN, "aes256 sensitive", [
        (P.CKA_PRIVATE, True), (P.CKA_SENSITIVE, True), (P.CKA_EXTRACTABLE, False),
        (P.CKA_VALUE_LEN, 32), (P.CKA_WRAP, True), (P.CKA_UNWRAP, True),
        (P.CKA_LABEL, "aes256-sensitive-ß".encode()), (P.CKA_ID, b"\x14"),
        (P.CKA_WRAP_TEMPLATE, [(P.CKA_CLASS, P.CKO_SECRET_KEY), (P.CKA_EXTRACTABLE, True)]),
        (P.CKA_UNWRAP_TEMPLATE, [(P.CKA_LABEL, "unwrapped-é\x00".encode()), (P.CKA_SENSITIVE, True),
                                 (P.CKA_KEY_TYPE, P.CKK_AES)])])
    key(P.CKM_AES_KEY_GEN, "aes128 public readable", readable + [
        (P.CKA_PRIVATE, False), (P.CKA_VALUE_LEN, 16), (P.CKA_ENCRYPT, True),
        (P.CKA_LABEL, b"aes128-public-readable"), (P.CKA_ID, b"\x15")])
    key(P.CKM_AES_KEY_GEN, "aes128 public sensitive", [
        (P.CKA_PRIVATE, False), (P.CKA_SENSITIVE, True), (P.CKA_VALUE_LEN, 16),
        (P.CKA_LABEL, b"aes128-public-sensitive"), (P.CKA_ID, b"\x16")])
    obj("private data", [
        (P.CKA_CLASS, P.CKO_DATA), (P.CKA_PRIVATE, True), (P.CKA_APPLICATION, b""),
        (P.CKA_LABEL, "data-private-ü-\U0001f511".encode()),
        (P.CKA_OBJECT_ID, bytes.fromhex("06092b0601040182e47e01")),
        (P.CKA_VALUE, bytes(range(256)))])
    obj("public data", [
        (P.CKA_CLASS, P.CKO_DATA), (P.CKA_PRIVATE, False), (P.CKA_APPLICATION, b"tokenfs-\xe9"),
        (P.CKA_LABEL, b"data-public-\x00\xff"), (P.CKA_VALUE, b"\x00\xffpublic\x80")])
    s.logout()
    s.closeSession()
    return {"created": 11}


def child_read(req):
    """Reads, for every object of every requested token, each requested
    attribute type with its own C_GetAttributeValue."""
    PyKCS11, lib = p11_open()
    P = PyKCS11
    low, out = lib.lib, {}
    try:
        cdll = ctypes.CDLL(MODULE)  # the same loaded module, the same sessions
        get = cdll.C_GetAttributeValue
        get.argtypes = [ctypes.c_ulong, ctypes.c_ulong, ctypes.POINTER(CkAttribute), ctypes.c_ulong]
        get.restype = ctypes.c_ulong
    except (OSError, AttributeError):
        get = None

    def ctypes_map(sess, h, typ):
        outer = CkAttribute(typ, None, 0)
        rv = get(sess, h, ctypes.byref(outer), 1)
        if rv:
            return rv, None
        arr = (CkAttribute * (outer.ulValueLen // ctypes.sizeof(CkAttribute)))()
        outer.pValue = ctypes.cast(arr, ctypes.c_void_p)
        rv = get(sess, h, ctypes.byref(outer), 1)  # entry types and lengths
        if rv:
            return rv, None
        bufs = [ctypes.create_string_buffer(max(e.ulValueLen, 1)) for e in arr]
        for e, b in zip(arr, bufs):
            e.pValue = ctypes.cast(b, ctypes.c_void_p)
        rv = get(sess, h, ctypes.byref(outer), 1)  # entry values
        return rv, [[e.type, b.raw[:e.ulValueLen].hex()] for e, b in zip(arr, bufs)]

    for slot in lib.getSlotList(tokenPresent=True):
        info = lib.getTokenInfo(slot)
        if not info.flags & P.CKF_TOKEN_INITIALIZED:
            continue
        label = info.label.rstrip(" ")
        if label not in req["tokens"]:
            out[label] = None
            continue
        kinds = {int(t): k for t, k in req["tokens"][label]["kinds"].items()}
        for t in (A_CLASS, A_LABEL, A_ID):
            kinds.setdefault(t, "ulong" if t == A_CLASS else "bytes")
        s = lib.openSession(slot, P.CKF_SERIAL_SESSION)
        s.login(req["tokens"][label]["pin"])
        objs = []
        for h in s.findObjects():
            readings = {}
            for typ, kind in sorted(kinds.items()):
                tl = P.LowLevel.ckattrlist(1)
                tl[0].SetType(typ)
                rv = low.C_GetAttributeValue(s.session, h, tl)  # length
                if rv == CKR_OK:
                    rv = low.C_GetAttributeValue(s.session, h, tl)  # value
                r = {"rv": rv}
                if rv == CKR_OK:
                    raw = bytes(tl[0].GetBin())
                    r["raw"] = raw.hex()
                    if kind == "map":
                        # PyKCS11's second call gets CK_ATTRIBUTEs with types
                        # and lengths only (their pValues stay NULL).
                        n = ctypes.sizeof(CkAttribute)
                        r["pykcs11_entries"] = [
                            [ctypes.c_ulong.from_buffer_copy(raw, i).value,
                             ctypes.c_ulong.from_buffer_copy(raw, i + n - ULONG).value]
                            for i in range(0, len(raw) - len(raw) % n, n)]
                        if get is not None:
                            r["ctypes_rv"], r["entries"] = ctypes_map(s.session.value(), h.value(), typ)
                readings[str(typ)] = r
            objs.append({"handle": h.value(), "readings": readings})
        s.logout()
        s.closeSession()
        out[label] = objs
    return out


def child_main(mode):
    req = json.load(sys.stdin)
    res = child_create(req) if mode == "--pkcs11-create" else child_read(req)
    json.dump(res, sys.stdout)
    return 0


# ---------------------------------------------------------------------------
# Parent.

class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: " + what, file=sys.stderr)
        return ok


C = Checks()


def need(ok, what):
    if ok:
        return
    if os.environ.get("CI") == "true":
        print("FAIL: %s is required in CI (scripts/install-deps.sh installs it)" % what, file=sys.stderr)
        sys.exit(1)
    print("SKIP: %s not available" % what, file=sys.stderr)
    sys.exit(77)


def snapshot(store):
    snap = {}
    for root, dirs, files in os.walk(store):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                snap[os.path.relpath(p, store)] = hashlib.sha256(fh.read()).hexdigest()
    return snap


def child(mode, conf, req):
    """Runs this script as a PKCS#11 child on the store of conf; None if it
    failed (reported)."""
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    r = subprocess.run([sys.executable, os.path.abspath(__file__), mode], input=json.dumps(req),
                       capture_output=True, text=True, env=env, timeout=120)
    if not C.check(r.returncode == 0, "%s child exited %d: %s" % (mode, r.returncode, r.stderr)):
        return None
    return json.loads(r.stdout)


def tokenfs(store, label, pins, reveal):
    """One token's JSON dump, the user PIN given by env:; checks the exit
    status and that no PIN shows in the output."""
    so, user = pins
    argv = [os.environ["TOKENFS"], "dump", "--format", "json", "--user-pin", "env:" + PIN_ENV,
            "--token", label, store] + (["--reveal"] if reveal else [])
    r = subprocess.run(argv, capture_output=True, env=dict(os.environ, **{PIN_ENV: user}), timeout=60)
    what = "tokenfs dump %s%s" % (label, " --reveal" if reveal else "")
    C.check(user not in " ".join(argv), "%s: the PIN is on the command line" % what)
    C.check(r.returncode == 0,
            "%s: exit %d: %s" % (what, r.returncode, r.stderr.decode(errors="replace")))
    for pin in (user, so):
        for form in (pin.encode(), pin.encode().hex().encode()):
            C.check(form not in r.stdout and form not in r.stderr,
                    "%s: a PIN appears in its output" % what)
    doc = json.loads(r.stdout)
    C.check(len(doc["tokens"]) == 1 and doc["tokens"][0]["label"] == label,
            "%s: selects one token labelled %s" % (what, label))
    return doc["tokens"][0]


def last_by_type(obj):
    attrs = {}
    for a in obj.get("attributes", []):
        attrs[a["type"]] = a  # SoftHSM uses the last of repeated types
    return attrs


def expected_raw(kind, value):
    """What C_GetAttributeValue returns for a tokenfs value of this kind."""
    if kind == "bool":
        return bytes([1 if value else 0])
    if kind == "ulong":
        return value.to_bytes(ULONG, sys.byteorder)
    if kind == "bytes":
        return bytes.fromhex(value)
    if kind == "mechanisms":
        return b"".join(m.to_bytes(ULONG, sys.byteorder) for m in value)
    raise ValueError(kind)


def fingerprint(key_type, typ, value):
    if typ == A_VALUE and key_type == CKK_AES and len(value) in (16, 24, 32):
        return "kcv:" + aes_kcv(value).hex()
    return "sha256:" + hashlib.sha256(value).hexdigest()[:16]


def name(a):
    return a.get("name") or "0x%x" % a["type"]


def check_redaction(tag, rev_tok, red_tok, counts):
    C.check("token_key" in rev_tok and "token_key" not in red_tok,
            "%s: token_key only with --reveal" % tag)
    if not C.check([o["uuid"] for o in rev_tok["objects"]] == [o["uuid"] for o in red_tok["objects"]],
                   "%s: the same objects with and without --reveal" % tag):
        return
    for ro, do in zip(rev_tok["objects"], red_tok["objects"]):
        cls = last_by_type(ro).get(A_CLASS, {}).get("value")
        ktype = last_by_type(ro).get(A_KEY_TYPE, {}).get("value")
        if not C.check(len(ro.get("attributes", [])) == len(do.get("attributes", [])),
                       "%s %s: attribute count" % (tag, ro["uuid"])):
            continue
        for ra, da in zip(ro["attributes"], do["attributes"]):
            where = "%s %s %s" % (tag, ro["uuid"], name(ra))
            material = (cls in (CKO_SECRET_KEY, CKO_PRIVATE_KEY) and ra["type"] in KEY_MATERIAL
                        and ra.get("value"))
            if not material:
                C.check(ra == da, "%s: differs without --reveal: %r vs %r" % (where, da, ra))
                continue
            value = bytes.fromhex(ra["value"])
            counts["redacted"] += 1
            C.check(da.get("redacted") is True and "value" not in da,
                    "%s: key material not redacted without --reveal" % where)
            C.check(da.get("length") == len(value), "%s: redacted length %r, want %d"
                    % (where, da.get("length"), len(value)))
            fp = fingerprint(ktype, ra["type"], value)
            C.check(da.get("fingerprint") == fp, "%s: fingerprint %r, want %s"
                    % (where, da.get("fingerprint"), fp))
            rest = {k: v for k, v in da.items() if k not in ("redacted", "length", "fingerprint")}
            C.check(rest == {k: v for k, v in ra.items() if k != "value"},
                    "%s: other members differ without --reveal" % where)


def fmt_key(k):
    def b(h):
        if h is None:
            return "-"
        raw = bytes.fromhex(h)
        try:
            return repr(raw.decode())
        except UnicodeDecodeError:
            return "0x" + h
    return "class %s label %s id %s" % (k[0], b(k[1]), b(k[2]))


def compare_token(tag, tok, p11objs, counts):
    """tok: the --reveal dump of one token; p11objs: the child's readings."""
    tf = {}
    for o in tok["objects"]:
        if not C.check("error" not in o, "%s %s: tokenfs: %s" % (tag, o["uuid"], o.get("error"))):
            continue
        attrs = last_by_type(o)
        lab, oid = attrs.get(A_LABEL), attrs.get(A_ID)
        ok = all(a is None or "value" in a for a in (lab, oid)) and A_CLASS in attrs
        if not C.check(ok, "%s %s: no plaintext class, label or id to match by" % (tag, o["uuid"])):
            continue
        k = (attrs[A_CLASS]["value"], lab and lab["value"], oid and oid["value"])
        C.check(k not in tf, "%s: two tokenfs objects with %s" % (tag, fmt_key(k)))
        tf[k] = (o, attrs)
    p11 = {}
    for po in p11objs:
        rd = po["readings"]
        cls = rd[str(A_CLASS)]
        k = (int.from_bytes(bytes.fromhex(cls["raw"]), sys.byteorder) if cls["rv"] == 0 else None,
             rd[str(A_LABEL)].get("raw"), rd[str(A_ID)].get("raw"))
        C.check(k not in p11, "%s: two PKCS#11 objects with %s" % (tag, fmt_key(k)))
        p11[k] = po
    for k in sorted(set(tf) - set(p11), key=str):
        C.check(False, "%s: tokenfs object %s (%s) not found through PKCS#11"
                % (tag, tf[k][0]["uuid"], fmt_key(k)))
    for k in sorted(set(p11) - set(tf), key=str):
        C.check(False, "%s: PKCS#11 object %s not in tokenfs's dump" % (tag, fmt_key(k)))
    matched = sorted(set(tf) & set(p11), key=str)
    counts["objects"] += len(matched)
    C.check(len(matched) == len(tok["objects"]) == len(p11objs) and matched,
            "%s: %d tokenfs objects, %d PKCS#11 objects, %d matched"
            % (tag, len(tok["objects"]), len(p11objs), len(matched)))
    sensitive = []
    for k in matched:
        o, attrs = tf[k]
        rd = p11[k]["readings"]
        # The other types seen in this token: SoftHSM must not have them
        # either (tokenfs lists every attribute SoftHSM knows of).
        for typ in sorted(int(t) for t in rd if int(t) not in attrs):
            counts["absent"] += 1
            C.check(rd[str(typ)]["rv"] == CKR_ATTRIBUTE_TYPE_INVALID,
                    "%s %s (%s): SoftHSM has attribute 0x%x (rv 0x%x), tokenfs does not list it"
                    % (tag, o["uuid"], fmt_key(k), typ, rd[str(typ)]["rv"]))
        for typ, a in attrs.items():
            where = "%s %s (%s) %s" % (tag, o["uuid"], fmt_key(k), name(a))
            r = rd[str(typ)]
            if r["rv"] == CKR_ATTRIBUTE_SENSITIVE:
                counts["sensitive"] += 1
                has = ("value" in a and not a.get("redacted")
                       and (a.get("decrypted") or not a.get("encrypted")))
                if C.check(has, "%s: SoftHSM keeps it secret and tokenfs does not reveal it: %r"
                           % (where, a)):
                    sensitive.append((k, typ))
                continue
            if not C.check(r["rv"] == CKR_OK,
                           "%s: SoftHSM's C_GetAttributeValue: rv 0x%x" % (where, r["rv"])):
                continue
            counts["compared"] += 1
            got = bytes.fromhex(r["raw"])
            if a["kind"] == "map":
                counts["maps"] += 1
                want = {e["type"]: expected_raw(e["kind"], e["value"]) for e in a["value"]}
                ok = C.check(sorted(tuple(e) for e in r["pykcs11_entries"]) ==
                             sorted((t, len(v)) for t, v in want.items()),
                             "%s: map entry types/lengths: SoftHSM %s, tokenfs %s"
                             % (where, r["pykcs11_entries"], {t: len(v) for t, v in want.items()}))
                if r.get("entries") is None or r.get("ctypes_rv"):
                    counts["maps_unread"] += 1
                else:
                    counts["map_entries"] += len(r["entries"])
                    ok &= C.check({t: bytes.fromhex(v) for t, v in r["entries"]} == want,
                                  "%s: map entries: SoftHSM %s, tokenfs %s"
                                  % (where, r["entries"], {t: v.hex() for t, v in want.items()}))
                counts["equal"] += ok
                continue
            if not C.check("value" in a and not a.get("decrypt_error"),
                           "%s: SoftHSM returns %s, tokenfs shows no plaintext: %r"
                           % (where, got.hex(), a)):
                continue
            want = expected_raw(a["kind"], a["value"])
            if o["private"] and a["kind"] == "bytes" and want:
                C.check(a.get("encrypted") and a.get("decrypted"),
                        "%s: a private object's value not marked encrypted and decrypted" % where)
            if C.check(got == want, "%s: SoftHSM %s, tokenfs %s" % (where, got.hex(), want.hex())):
                counts["equal"] += 1
                counts["decrypted"] += bool(a.get("decrypted"))
                if k[0] in (CKO_SECRET_KEY, CKO_PRIVATE_KEY) and typ in KEY_MATERIAL and want:
                    counts["material"] += 1
    prove_sensitive(tag, sensitive, tf, p11, counts)


def p11_value(p11, k, typ):
    r = p11[k]["readings"].get(str(typ), {})
    return bytes.fromhex(r["raw"]) if r.get("rv") == CKR_OK else None


def prove_sensitive(tag, sensitive, tf, p11, counts):
    """Values SoftHSM will not hand out, proven right against what it does."""
    by_obj = collections.defaultdict(list)
    for k, typ in sensitive:
        by_obj[k].append(typ)
    for k, types in by_obj.items():
        attrs = tf[k][1]
        val = {t: bytes.fromhex(a["value"]) for t, a in attrs.items()
               if a["kind"] == "bytes" and "value" in a}
        ktype = attrs.get(A_KEY_TYPE, {}).get("value")
        where = "%s %s (%s)" % (tag, tf[k][0]["uuid"], fmt_key(k))
        proven = []
        if k[0] == CKO_SECRET_KEY and A_VALUE in types:
            kcv = p11_value(p11, k, A_CHECK_VALUE)
            v = val[A_VALUE]
            mine = (aes_kcv(v) if ktype == CKK_AES else
                    hashlib.sha1(v).digest()[:3] if ktype == CKK_GENERIC_SECRET else None)
            if kcv and mine is not None and C.check(
                    mine == kcv, "%s: revealed CKA_VALUE has check value %s, SoftHSM's "
                    "CKA_CHECK_VALUE is %s" % (where, mine.hex(), kcv.hex())):
                proven.append(A_VALUE)
        elif k[0] == CKO_PRIVATE_KEY and ktype == CKK_RSA:
            n = int.from_bytes(p11_value(p11, k, A_MODULUS) or b"", "big")
            e = int.from_bytes(p11_value(p11, k, A_PUBLIC_EXPONENT) or b"", "big")
            d, p, q, dp, dq, qi = (int.from_bytes(val.get(t, b""), "big") for t in RSA_PRIVATE)
            lam = (p - 1) * (q - 1) // math.gcd(p - 1, q - 1) if p > 1 and q > 1 else 0
            if n and e and C.check(
                    lam and p * q == n and (d * e - 1) % lam == 0
                    and dp == d % (p - 1) and dq == d % (q - 1) and (qi * q) % p == 1,
                    "%s: revealed RSA private components do not fit SoftHSM's modulus and "
                    "exponent" % where):
                proven += [t for t in types if t in RSA_PRIVATE]
        elif k[0] == CKO_PRIVATE_KEY and ktype == CKK_EC and A_VALUE in types:
            curve = CURVES.get(p11_value(p11, k, A_EC_PARAMS) or b"")
            pubs = [pk for pk in p11 if pk[0] == CKO_PUBLIC_KEY and pk[2] == k[2]]
            point = (ec_point_bytes(p11_value(p11, pubs[0], A_EC_POINT) or b"")
                     if len(pubs) == 1 else None)
            if curve and point:
                pp, gx, gy, size = curve
                x, y = ec_mul(int.from_bytes(val[A_VALUE], "big"), (gx, gy), pp)
                mine = b"\x04" + x.to_bytes(size, "big") + y.to_bytes(size, "big")
                if C.check(mine == point, "%s: revealed EC private value times G is not SoftHSM's "
                                          "CKA_EC_POINT of the public key with the same id" % where):
                    proven.append(A_VALUE)
        counts["proven"] += len(proven)


def check_store(name, store, conf, pins_by_label, totals):
    """tokenfs first, then SoftHSM, on the same files."""
    before = snapshot(store)
    r = subprocess.run([os.environ["TOKENFS"], "dump", "--format", "json", store],
                       capture_output=True, timeout=60)
    labels = [t["label"] for t in json.loads(r.stdout)["tokens"]]
    C.check(r.returncode == 0 and sorted(labels) == sorted(pins_by_label),
            "%s: tokenfs lists tokens %s (exit %d), want %s"
            % (name, labels, r.returncode, sorted(pins_by_label)))
    rev, red = {}, {}
    for label in labels:
        if label not in pins_by_label:
            continue
        rev[label] = tokenfs(store, label, pins_by_label[label], True)
        red[label] = tokenfs(store, label, pins_by_label[label], False)
    C.check(snapshot(store) == before, "%s: tokenfs changed the store" % name)

    req = {"tokens": {}}
    for label, tok in rev.items():
        kinds = {}
        for o in tok["objects"]:
            for a in o.get("attributes", []):
                C.check(kinds.setdefault(a["type"], a["kind"]) == a["kind"],
                        "%s %s: attribute 0x%x has two kinds" % (name, label, a["type"]))
        req["tokens"][label] = {"pin": pins_by_label[label][1], "kinds": kinds}
    readings = child("--pkcs11-read", conf, req)
    if readings is None:
        return
    C.check(sorted(readings) == sorted(rev), "%s: SoftHSM's tokens %s, tokenfs's %s"
            % (name, sorted(readings), sorted(rev)))

    after = snapshot(store)
    changed = sorted(f for f in set(before) | set(after) if before.get(f) != after.get(f))
    C.check(not [f for f in changed if f.endswith(".object") and not f.endswith("token.object")],
            "%s: SoftHSM changed object files: %s" % (name, changed))
    for label in rev:
        again = tokenfs(store, label, pins_by_label[label], True)
        again["generation"] = rev[label]["generation"]  # the generation file may move
        C.check(again == rev[label],
                "%s %s: tokenfs dumps differently after SoftHSM opened the store" % (name, label))

    for label in sorted(rev):
        tag = "%s/%s" % (name, label)
        counts = collections.Counter()
        check_redaction(tag, rev[label], red[label], counts)
        if readings.get(label) is not None:
            compare_token(tag, rev[label], readings[label], counts)
        c = counts
        print("%s: %d objects matched 1:1; %d attribute values compared, %d equal to SoftHSM's "
              "(%d decrypted, %d key material, %d maps with %d entries%s)"
              % (tag, c["objects"], c["compared"], c["equal"], c["decrypted"], c["material"],
                 c["maps"], c["map_entries"],
                 ", %d maps' entry values not read" % c["maps_unread"] if c["maps_unread"] else ""))
        print("%s: %d values SoftHSM keeps secret, revealed by tokenfs (%d proven against what "
              "SoftHSM returns); %d key material values redacted without --reveal; %d absent "
              "attributes absent in SoftHSM too"
              % (tag, c["sensitive"], c["proven"], c["redacted"], c["absent"]))
        totals.update(counts)
    if changed:
        print("%s: SoftHSM rewrote %s (no object file)" % (name, ", ".join(changed)))


def main():
    for v in ("TOKENFS", "TFS_TESTDATA"):
        if not os.environ.get(v):
            print("FAIL: %s must be set (ctest sets it)" % v, file=sys.stderr)
            return 1
    need(importlib.util.find_spec("PyKCS11") is not None,
         "PyKCS11 in %s (run with /usr/bin/python3; package python3-pykcs11)" % sys.executable)
    need(os.access(MODULE, os.R_OK), MODULE)
    need(shutil.which("softhsm2-util") is not None, "softhsm2-util")
    need(shutil.which("openssl") is not None, "openssl")

    tmp = tempfile.mkdtemp(prefix="tfs-pkcs11-agreement.")
    totals = collections.Counter()
    try:
        def conf_for(tokendir):
            path = tokendir + ".conf"
            with open(path, "w") as fh:
                fh.write("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
                         % tokendir)
            return path

        # The fixtures, on a copy (SoftHSM rewrites files when it opens one).
        copy = os.path.join(tmp, "fixture")
        shutil.copytree(os.path.join(os.environ["TFS_TESTDATA"], "store"), copy, symlinks=True)
        check_store("testdata", copy, conf_for(copy), FIXTURE_PINS, totals)

        # A store made just now by SoftHSM.
        fresh = os.path.join(tmp, "fresh")
        os.mkdir(fresh, 0o700)
        conf = conf_for(fresh)
        r = subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", FRESH_LABEL,
                            "--so-pin", FRESH_SO_PIN, "--pin", FRESH_USER_PIN],
                           env=dict(os.environ, SOFTHSM2_CONF=conf), capture_output=True, text=True)
        if (C.check(r.returncode == 0, "softhsm2-util --init-token: " + r.stderr) and
                child("--pkcs11-create", conf, {"label": FRESH_LABEL, "pin": FRESH_USER_PIN})):
            check_store("fresh", fresh, conf, {FRESH_LABEL: (FRESH_SO_PIN, FRESH_USER_PIN)}, totals)
    except Exception:  # still print the closing line
        C.check(False, traceback.format_exc())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if totals["compared"] == 0:
        C.check(False, "nothing was compared")
    print("%d passed, %d failed" % (C.passed, C.failed))
    return 1 if C.failed or C.passed == 0 else 0


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] in ("--pkcs11-create", "--pkcs11-read"):
        sys.exit(child_main(sys.argv[1]))
    sys.exit(main())
