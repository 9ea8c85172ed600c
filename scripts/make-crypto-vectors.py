#!/usr/bin/env python3
"""Known-answer vectors for libtokenfs/crypto, made by an implementation
that shares no code with it.

  KDF   python hashlib (SHA-256)
  CBC   the `openssl enc -aes-256-cbc -K .. -iv ..` command line
  GCM   GHASH and counter mode written here in Python over AES-256 blocks
        from `openssl enc -aes-256-ecb -nopad`; checked first against test
        case 18 of the GCM specification (a 60-byte IV, so the same GHASH
        path that derives J0 from the 16-byte IVs of SoftHSM's GCM layout)

and the expected outcome of each negative case (wrong PIN, damaged blob,
wrong key) is derived here from the decrypted bytes, by the rules of
docs/format.md, not by running libtokenfs.

All random-looking inputs are derived from fixed labels, so a second run
writes identical files: `--check` fails when the committed files differ.
The real-token vectors read the PIN blobs of testdata/store/*/token.object
and prove the KDF against real SoftHSM output: the CBC blob must decrypt to
"RJR" || token key under the master key computed here.

Writes: testdata/crypto/{kdf,pinblob,value}.vec and the seed corpora
fuzz/corpus/fuzz_pinblob/ and fuzz/corpus/fuzz_value/.

Line format of the .vec files (parsed by libtokenfs/crypto/testvec.c):
    # comment
    <kind> name=<text> <field>=<hex> ... expect=<ok|wrong_pin|damaged> ...
Fields are separated by single spaces; an empty hex field is written
`field=` and means zero bytes.
"""

import argparse
import glob
import hashlib
import os
import re
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The fixed token key of fuzz/fuzz_value.c: keep the two in step.
VALUE_KEY_LABEL = "value-key"

# The PINs of the real tokens in testdata/store, by token label.
REAL_PINS = {
    "demo": {"so": b"so-secret-1", "user": b"user-pin-1"},
    "second": {"so": b"so-secret-2", "user": b"user-pin-2"},
}

CKA_OS_TOKENLABEL = 0x80005349
CKA_OS_SOPIN = 0x8000534C
CKA_OS_USERPIN = 0x8000534D


def det(label, n):
    """n deterministic bytes named by label (SHA-256 in counter mode)."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"tokenfs-crypto-vectors/%s/%d" % (label.encode(), i)).digest()
        i += 1
    return out[:n]


# ---------------------------------------------------------------- KDF

def kdf(pin, salt):
    assert len(salt) == 8
    h = hashlib.sha256(salt + pin).digest()
    for _ in range(1500 + salt[7] - 1):
        h = hashlib.sha256(h).digest()
    return h


# ---------------------------------------------------------------- AES via openssl(1)

def openssl(args, data):
    r = subprocess.run(["openssl"] + args, input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=False)
    return r.returncode, r.stdout


def cbc_encrypt(key, iv, pt):
    """AES-256-CBC with PKCS#7 padding, by openssl enc."""
    rc, out = openssl(["enc", "-aes-256-cbc", "-K", key.hex(), "-iv", iv.hex()], pt)
    assert rc == 0
    return out


def cbc_decrypt_raw(key, iv, ct):
    """AES-256-CBC without unpadding, by openssl enc -nopad."""
    rc, out = openssl(["enc", "-d", "-aes-256-cbc", "-nopad", "-K", key.hex(),
                       "-iv", iv.hex()], ct)
    assert rc == 0 and len(out) == len(ct)
    return out


def aes_ecb(key, blocks):
    rc, out = openssl(["enc", "-aes-256-ecb", "-nopad", "-K", key.hex()], blocks)
    assert rc == 0 and len(out) == len(blocks)
    return out


def pkcs7_unpad(buf):
    """The unpadded bytes, or None when the padding is invalid."""
    if not buf or len(buf) % 16:
        return None
    p = buf[-1]
    if p < 1 or p > 16 or buf[-p:] != bytes([p]) * p:
        return None
    return buf[:-p]


# ---------------------------------------------------------------- GCM in Python

_R = 0xE1 << 120


def _gf_mult(x, y):
    z, v = 0, y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return z


def _ghash(h, data):
    assert len(data) % 16 == 0
    y = 0
    for i in range(0, len(data), 16):
        y = _gf_mult(y ^ int.from_bytes(data[i:i + 16], "big"), h)
    return y


def _pad16(b):
    return b + bytes(-len(b) % 16)


def gcm_encrypt(key, iv, pt, aad=b""):
    h = int.from_bytes(aes_ecb(key, bytes(16)), "big")
    if len(iv) == 12:
        j0 = iv + b"\x00\x00\x00\x01"
    else:
        lens = (0).to_bytes(8, "big") + (len(iv) * 8).to_bytes(8, "big")
        j0 = _ghash(h, _pad16(iv) + lens).to_bytes(16, "big")
    ctr = int.from_bytes(j0[12:], "big")
    nblocks = (len(pt) + 15) // 16
    counters = b"".join(j0[:12] + ((ctr + i) & 0xFFFFFFFF).to_bytes(4, "big")
                        for i in range(nblocks + 1))
    stream = aes_ecb(key, counters)
    ct = bytes(a ^ b for a, b in zip(pt, stream[16:]))
    lens = (len(aad) * 8).to_bytes(8, "big") + (len(ct) * 8).to_bytes(8, "big")
    s = _ghash(h, _pad16(aad) + _pad16(ct) + lens)
    tag = (s ^ int.from_bytes(stream[:16], "big")).to_bytes(16, "big")
    return ct, tag


def gcm_decrypt(key, iv, ct, tag):
    """The plaintext, or None on a tag mismatch (CTR mode is its own inverse)."""
    pt, _ = gcm_encrypt(key, iv, ct)
    _, tag2 = gcm_encrypt(key, iv, pt)
    return pt if tag2 == tag else None


def gcm_selftest():
    """GCM specification (McGrew and Viega), test case 18: AES-256, 60-byte IV."""
    k = bytes.fromhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
    p = bytes.fromhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
    a = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
    iv = bytes.fromhex("9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728"
                       "c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b")
    c = bytes.fromhex("5a8def2f0c9e53f1f75d7853659e2a20eeb2b22aafde6419a058ab4f6f746bf4"
                      "0fc0c3b780f244452da3ebf1c5d82cdea2418997200ef82e44ae7e3f")
    t = bytes.fromhex("a44a8266ee1c8eb0c8b5d4cf5ae9f19a")
    if gcm_encrypt(k, iv, p, a) != (c, t):
        sys.exit("GCM self-test (spec test case 18) failed: the Python GCM is wrong")


# ---------------------------------------------------------------- PIN blobs

def wrap_cbc(pin, salt, iv, token_key):
    return salt + iv + cbc_encrypt(kdf(pin, salt), iv, b"RJR" + token_key)


def wrap_gcm(pin, salt, iv, token_key):
    ct, tag = gcm_encrypt(kdf(pin, salt), iv, token_key)
    return salt + iv + ct + tag


def classify_blob(blob, pin):
    """(expect, layout, token key) by the rules of docs/format.md."""
    if len(blob) != 72:
        return "damaged", None, None
    salt, iv, body = blob[:8], blob[8:24], blob[24:]
    mk = kdf(pin, salt)
    key = gcm_decrypt(mk, iv, body[:32], body[32:])
    if key is not None:
        return "ok", "gcm", key
    pt = pkcs7_unpad(cbc_decrypt_raw(mk, iv, body))
    if pt is None or len(pt) != 35:
        return "wrong_pin", None, None
    if pt[:3] != b"RJR":
        return "damaged", None, None
    return "ok", "cbc", pt[3:]


def classify_value(key, ct):
    """(expect, layout, plaintext) by the rules of docs/format.md."""
    if len(ct) < 32:
        return "damaged", None, None
    pt = gcm_decrypt(key, ct[:16], ct[16:-16], ct[-16:])
    if pt is not None:
        return "ok", "gcm", pt
    if len(ct) % 16 == 0:
        pt = pkcs7_unpad(cbc_decrypt_raw(key, ct[:16], ct[16:]))
        if pt is not None:
            return "ok", "cbc", pt
    return "damaged", None, None


def flip(b, i, mask=0x01):
    return b[:i] + bytes([b[i] ^ mask]) + b[i + 1:]


# ---------------------------------------------------------------- real tokens

def parse_object(data):
    """{type: value} for the top-level attributes of an object file."""
    attrs, p = {}, 8
    while p < len(data):
        t, k = struct.unpack(">QQ", data[p:p + 16])
        p += 16
        if k == 1:
            v, p = data[p], p + 1
        elif k == 2:
            v, p = struct.unpack(">Q", data[p:p + 8])[0], p + 8
        elif k in (3, 4):
            n = struct.unpack(">Q", data[p:p + 8])[0]
            v, p = data[p + 8:p + 8 + n], p + 8 + n
        elif k == 5:
            n = struct.unpack(">Q", data[p:p + 8])[0]
            v, p = None, p + 8 + 8 * n
        else:
            raise ValueError("unknown kind %d" % k)
        attrs[t] = v
    return attrs


def real_tokens(store):
    """[(label, role, pin, blob)] for every PIN blob of a known token."""
    out = []
    for path in sorted(glob.glob(os.path.join(store, "*", "token.object"))):
        with open(path, "rb") as f:
            attrs = parse_object(f.read())
        label = attrs.get(CKA_OS_TOKENLABEL, b"").decode("ascii", "replace").rstrip()
        if label not in REAL_PINS:
            continue
        for role, t in (("so", CKA_OS_SOPIN), ("user", CKA_OS_USERPIN)):
            if t in attrs:
                out.append((label, role, REAL_PINS[label][role], attrs[t]))
    return sorted(out)


# ---------------------------------------------------------------- output

class Vec:
    def __init__(self, header):
        self.lines = ["# " + l if l else "#" for l in header.splitlines()]
        self.lines.append("# Made by scripts/make-crypto-vectors.py; do not edit by hand.")

    def add(self, kind, name, **fields):
        parts = [kind, "name=" + name]
        for k, v in fields.items():
            parts.append("%s=%s" % (k, v.hex() if isinstance(v, bytes) else v))
        self.lines.append(" ".join(parts))

    def text(self):
        return "\n".join(self.lines) + "\n"


# PINs: empty, 1 byte, 255 bytes (SoftHSM's maximum), and non-ASCII bytes
# including a NUL, which must count as a PIN byte, not a terminator.
PINS = [
    ("empty", b""),
    ("1byte", b"7"),
    ("long255", bytes((0x21 + i % 94) for i in range(255))),
    ("nonascii", b"\xc3\xa9t\xc3\xa9\x00\xff\x80pin"),
]
# salt[7] = 0x00 and 0xff: the KDF's fewest (1500) and most (1755) rounds.
SALT_LAST = [0x00, 0xFF, 0x00, 0xFF]


def make_kdf(tokens):
    v = Vec("SoftHSM KDF: key = SHA-256^(1500 + salt[7]) over salt || PIN.\n"
            "kdf name= pin= salt= key=")
    for (pname, pin), last in zip(PINS, SALT_LAST):
        salt = det("kdf-salt-" + pname, 7) + bytes([last])
        v.add("kdf", pname + "-r%d" % (1500 + last), pin=pin, salt=salt, key=kdf(pin, salt))
    for label, role, pin, blob in tokens:
        salt = blob[:8]
        v.add("kdf", "real-%s-%s" % (label, role), pin=pin, salt=salt, key=kdf(pin, salt))
    return v


def make_pinblob(tokens, corpus):
    v = Vec("PIN blobs. pinblob name= pin= blob= expect= [layout= key=]\n"
            "expect: ok (then layout and key), wrong_pin or damaged.")
    made = {}
    for (pname, pin), last in zip(PINS, SALT_LAST):
        tk = det("token-key-" + pname, 32)
        for layout, wrap in (("cbc", wrap_cbc), ("gcm", wrap_gcm)):
            salt = det("blob-salt-%s-%s" % (layout, pname), 7) + bytes([last])
            iv = det("blob-iv-%s-%s" % (layout, pname), 16)
            blob = wrap(pin, salt, iv, tk)
            assert classify_blob(blob, pin) == ("ok", layout, tk)
            name = "%s-%s" % (layout, pname)
            made[name] = (pin, blob, tk)
            v.add("pinblob", name, pin=pin, blob=blob, expect="ok", layout=layout, key=tk)
            corpus[name] = bytes([len(pin) % 256]) + pin[:255] + blob
    for label, role, pin, blob in tokens:
        expect, layout, tk = classify_blob(blob, pin)
        if expect != "ok" or layout != "cbc":
            sys.exit("real token %s %s PIN does not unwrap: KDF or store is wrong" % (label, role))
        name = "real-%s-%s" % (label, role)
        v.add("pinblob", name, pin=pin, blob=blob, expect="ok", layout="cbc", key=tk)
        corpus[name] = bytes([len(pin)]) + pin + blob

    # Negative cases; each expectation is derived, then checked to be the
    # one named, so a vector always shows what it claims to show.
    def neg(name, pin, blob, want):
        got = classify_blob(blob, pin)[0]
        assert got == want, (name, got, want)
        v.add("pinblob", name, pin=pin, blob=blob, expect=want)

    for layout in ("cbc", "gcm"):
        pin, blob, _ = made[layout + "-1byte"]
        neg(layout + "-wrong-pin", b"8", blob, "wrong_pin")
        neg(layout + "-wrong-pin-empty", b"", blob, "wrong_pin")
        neg(layout + "-truncated-71", pin, blob[:71], "damaged")
        neg(layout + "-extended-73", pin, blob + b"\x00", "damaged")
        neg(layout + "-empty", pin, b"", "damaged")
    pin, blob, _ = made["cbc-nonascii"]
    # IV bytes 0..2 XOR into the decrypted magic; the padding stays valid.
    neg("cbc-flip-iv0", pin, flip(blob, 8), "damaged")
    neg("cbc-flip-iv2", pin, flip(blob, 10, 0x80), "damaged")
    # The first ciphertext block scrambles the first plaintext block.
    neg("cbc-flip-ct0", pin, flip(blob, 24), "damaged")
    # The last block holds the padding: damage there looks like a wrong PIN.
    neg("cbc-flip-last", pin, flip(blob, 71), "wrong_pin")
    # A changed salt changes the master key: also a wrong PIN.
    neg("cbc-flip-salt7", pin, flip(blob, 7), "wrong_pin")
    pin, blob, _ = made["gcm-nonascii"]
    neg("gcm-flip-tag", pin, flip(blob, 71), "wrong_pin")
    neg("gcm-flip-ct", pin, flip(blob, 24), "wrong_pin")
    neg("gcm-flip-iv", pin, flip(blob, 8), "wrong_pin")
    return v


VALUE_LENGTHS = [0, 1, 15, 16, 17, 100]


def make_value(corpus):
    key = det(VALUE_KEY_LABEL, 32)
    v = Vec("Encrypted attribute values. value name= key= ct= expect= [layout= pt=]\n"
            "All but the wrong-key vectors use the fixed key of fuzz/fuzz_value.c:\n"
            + key.hex())
    made = {}
    for n in VALUE_LENGTHS:
        pt = det("value-pt-%d" % n, n)
        iv = det("value-iv-cbc-%d" % n, 16)
        ct = iv + cbc_encrypt(key, iv, pt)
        assert classify_value(key, ct) == ("ok", "cbc", pt)
        made["cbc-%d" % n] = ct
        v.add("value", "cbc-len%d" % n, key=key, ct=ct, expect="ok", layout="cbc", pt=pt)
        iv = det("value-iv-gcm-%d" % n, 16)
        c, tag = gcm_encrypt(key, iv, pt)
        ct = iv + c + tag
        assert classify_value(key, ct) == ("ok", "gcm", pt)
        made["gcm-%d" % n] = ct
        v.add("value", "gcm-len%d" % n, key=key, ct=ct, expect="ok", layout="gcm", pt=pt)
    for name in ("cbc-0", "cbc-17", "gcm-0", "gcm-16", "gcm-100"):
        corpus[name] = made[name]

    def neg(name, k, ct, want, want_layout=None):
        got = classify_value(k, ct)
        assert got[0] == want and got[1] == want_layout, (name, got)
        if want == "ok":
            v.add("value", name, key=k, ct=ct, expect=want, layout=want_layout, pt=got[2])
        else:
            v.add("value", name, key=k, ct=ct, expect=want)

    # A wrong key: CBC checks only the padding, so about 1 value in 256
    # "decrypts" to garbage. Find one wrong key of each kind.
    ct = made["cbc-17"]
    wrong = {}
    i = 0
    while len(wrong) < 2:
        k = det("value-wrong-key-%d" % i, 32)
        wrong.setdefault(classify_value(k, ct)[0], k)
        i += 1
    neg("cbc-wrong-key", wrong["damaged"], ct, "damaged")
    neg("cbc-wrong-key-false-accept", wrong["ok"], ct, "ok", "cbc")
    neg("gcm-wrong-key", wrong["damaged"], made["gcm-17"], "damaged")
    neg("cbc-truncated-block", key, made["cbc-17"][:-16], "damaged")
    neg("cbc-short-31", key, made["cbc-17"][:31], "damaged")
    neg("cbc-ragged-33", key, made["cbc-17"][:33], "damaged")
    neg("gcm-flip-tag-len1", key, flip(made["gcm-1"], len(made["gcm-1"]) - 1), "damaged")
    neg("gcm-flip-ct-len100", key, flip(made["gcm-100"], 40), "damaged")
    neg("empty", key, b"", "damaged")
    return v


def check_fuzz_value_key():
    """fuzz/fuzz_value.c must hold the key its seeds were made with."""
    with open(os.path.join(ROOT, "fuzz", "fuzz_value.c")) as f:
        src = f.read()
    body = src[src.index("key[TFS_KEY_LEN] = {"):]
    body = body[:body.index("};")]
    got = bytes(int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]{2})", body))
    if got != det(VALUE_KEY_LABEL, 32):
        sys.exit("fuzz/fuzz_value.c: key differs from det(%r) = %s"
                 % (VALUE_KEY_LABEL, det(VALUE_KEY_LABEL, 32).hex()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default=os.path.join(ROOT, "testdata", "store"),
                    help="store whose token.object PIN blobs become vectors")
    ap.add_argument("--check", action="store_true",
                    help="compare with the committed files instead of writing")
    args = ap.parse_args()

    gcm_selftest()
    check_fuzz_value_key()
    tokens = real_tokens(args.store)
    if not tokens:
        print("warning: no known tokens under %s: no real-token vectors" % args.store,
              file=sys.stderr)
    blob_corpus, value_corpus = {}, {}
    files = {
        "testdata/crypto/kdf.vec": make_kdf(tokens).text().encode(),
        "testdata/crypto/pinblob.vec": make_pinblob(tokens, blob_corpus).text().encode(),
        "testdata/crypto/value.vec": make_value(value_corpus).text().encode(),
    }
    for name, data in blob_corpus.items():
        files["fuzz/corpus/fuzz_pinblob/seed-%s.bin" % name] = data
    for name, data in value_corpus.items():
        files["fuzz/corpus/fuzz_value/seed-%s.bin" % name] = data

    stale = []
    for rel, data in sorted(files.items()):
        path = os.path.join(ROOT, rel)
        if args.check:
            try:
                with open(path, "rb") as f:
                    if f.read() != data:
                        stale.append(rel)
            except FileNotFoundError:
                stale.append(rel)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    if stale:
        sys.exit("out of date (re-run scripts/make-crypto-vectors.py): " + ", ".join(stale))
    print("%s %d files" % ("checked" if args.check else "wrote", len(files)))


if __name__ == "__main__":
    main()
