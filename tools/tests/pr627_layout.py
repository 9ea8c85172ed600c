#!/usr/bin/python3
"""Is what tokenfs writes exactly the AES-GCM layout of SoftHSMv2 PR #627?

Checked with tfsdecode (next to this script), a decoder that shares no code
with libtokenfs and never runs tokenfs, in three modes:

  --fixture-only
      Proves the decoder right before trusting it: decodes a copy of the
      pr627 store (a real store written by the PR #627 build; TFS_PR627 or
      ../shared/fixtures/pr627-store) and checks every fact and plaintext of
      its README, sensitive values by their relations to the public ones;
      decodes a copy of testdata/store (CBC, SoftHSM 2.6.1; TFS_TESTDATA or
      testdata/) against its README, inventory and certs/; runs the vectors
      of testdata/crypto and the offsets of testdata/malformed/MANIFEST.tsv.

  --compare SRC DST --so-pin-env VAR --user-pin-env VAR --expect gcm|cbc
            [--writer migrate|testkit]
      Checks that token directory DST is SRC migrated to the expected
      layout: same files, same token key, same plaintext everywhere; the PIN
      blobs 72 bytes in the layout; every encrypted value in the layout with
      the right stored length (GCM: IV16 || ct || tag16 = plaintext + 32),
      none left in the other; empty byte strings stored empty; every other
      value, attribute order, type and kind unchanged; a rewritten file's
      generation = source + 1; the token's generation file old + 1 if
      anything changed and it existed (absent stays absent); a file that
      needed no change byte-identical; file modes kept; no IV used for two
      different ciphertexts.  Leaving out one PIN variable means that blob
      must be kept as it was (migrate --keep-other-blob).  --writer testkit
      accepts what tfs_testkit does differently from `tokenfs migrate`: it
      rewrites every object (generation + 1, content the same), writes
      0600, and creates the generation file (1) when there was none.

  --roundtrip migrate|testkit [--migrate-arg ARG]...
      The fixture checks, then --compare on real conversions of copies:
      testdata's tokens to GCM and back, the pr627 token to CBC and back
      (its README plaintexts checked again at the end), with
      `$TOKENFS migrate --force` (the copies are private; other tests may
      have SoftHSM loaded) or `$TESTKIT to-layout`.  For migrate also: a
      second run writes nothing, --keep-other-blob keeps the SO blob, and
      its JSON counts match the files.  Then a good GCM copy is damaged in
      ten ways (a value left in CBC, an empty value encrypted, a generation
      not raised, a staged file left, two ciphertexts swapped, ...) that
      --compare must each report.

Prints "N passed, N failed"; exit 0 only when nothing failed.  A missing
tool or fixture skips (exit 77), or fails (exit 1) when CI=true.  PINs are
read from the environment and never printed.
"""
import argparse
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def missing(what):
    """A tool or fixture this test cannot do without: skip, or fail in CI."""
    if os.environ.get("CI") == "true":
        print(f"FAIL: {what} is required in CI", file=sys.stderr)
        sys.exit(1)
    print(f"SKIP: {what}", file=sys.stderr)
    sys.exit(77)


try:
    from cryptography import x509
    from cryptography.hazmat.primitives import padding, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    sys.path.insert(0, HERE)
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    import tfsdecode as td
except ImportError as e:
    missing(f"python3-cryptography ({e})")

# PKCS#11 numbers used below.
CKA_CLASS, CKA_PRIVATE, CKA_LABEL, CKA_APPLICATION, CKA_VALUE = 0x0, 0x2, 0x3, 0x10, 0x11
CKA_OBJECT_ID, CKA_CERTIFICATE_TYPE, CKA_ISSUER, CKA_SERIAL_NUMBER = 0x12, 0x80, 0x81, 0x82
CKA_CHECK_VALUE, CKA_KEY_TYPE, CKA_SUBJECT, CKA_ID, CKA_SENSITIVE = 0x90, 0x100, 0x101, 0x102, 0x103
CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT = 0x120, 0x122, 0x123
CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT = range(0x124, 0x129)
CKA_EC_PARAMS, CKA_EC_POINT = 0x180, 0x181
CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE, CKA_ALLOWED_MECHANISMS = 0x40000211, 0x40000212, 0x40000600
CKO = {"CKO_DATA": 0, "CKO_CERTIFICATE": 1, "CKO_PUBLIC_KEY": 2, "CKO_PRIVATE_KEY": 3,
       "CKO_SECRET_KEY": 4}
CKK = {"CKK_RSA": 0x0, "CKK_EC": 0x3, "CKK_GENERIC_SECRET": 0x10, "CKK_AES": 0x1F}
CKC_X_509 = 0
KEY_CLASSES = (CKO["CKO_PUBLIC_KEY"], CKO["CKO_PRIVATE_KEY"], CKO["CKO_SECRET_KEY"])

# ---------------------------------------------------------------------------
# What the pr627 store's README states (copied from it; it is the reference).

PR627_SO_PIN, PR627_USER_PIN = "12345678", "4321"
PR627_TOKEN = "59f78de4-bf3f-c8cd-f685-1ff3185fd2a6"
AES = "a9af6ca4-92e6-5c8e-24d9-5b8c7313bfce.object"
EC_PRIV = "e768824b-ad3d-6ae3-612a-39560901bb57.object"
EC_PUB = "c4bf8d41-b55d-71ea-f0fa-7f307e2e0954.object"
RSA_PRIV = "781e0d24-e556-f221-1556-d6ad9560a05d.object"
RSA_PUB = "91e586cd-9ec5-395e-f2a4-d27db4917534.object"
CERT = "3cc5a763-0d01-049f-f06f-adcb3597f9d0.object"
DATA_PRIV = "5a989d19-e431-2608-c48d-71ac3fd15b16.object"
DATA_PUB = "f70ae468-f40b-f3c2-2e25-34623bac6763.object"

# file: (class, CKA_PRIVATE, label, id or None, key type, CKA_SENSITIVE or None, generation)
PR627_OBJECTS = {
    AES: ("CKO_SECRET_KEY", True, "pr627-aes256", "01", "CKK_AES", False, 35),
    EC_PRIV: ("CKO_PRIVATE_KEY", True, "pr627-ec-p256", "02", "CKK_EC", True, 33),
    EC_PUB: ("CKO_PUBLIC_KEY", False, "pr627-ec-p256", "02", "CKK_EC", None, 28),
    RSA_PRIV: ("CKO_PRIVATE_KEY", True, "pr627-rsa2048", "03", "CKK_RSA", True, 39),
    RSA_PUB: ("CKO_PUBLIC_KEY", False, "pr627-rsa2048", "03", "CKK_RSA", None, 29),
    CERT: ("CKO_CERTIFICATE", False, "pr627-rsa2048-cert", "03", None, None, 26),
    DATA_PRIV: ("CKO_DATA", True, "pr627-private-data", None, None, None, 12),
    DATA_PUB: ("CKO_DATA", False, "pr627-public-data", None, None, None, 12),
}

MODULUS = (
    "e1642bb9688b0b2a551b4e1c37eccc82c9aec52eb321254e5dfa335ebde99c46"
    "068836102ddb26d551900392e87562be98bef8784a389a19ab1b93c9cdcb93d5"
    "a51d88a3a6b6f375586e57d063828e3b09463bb0ac98f87b031b7eca86bb8b34"
    "72f2c8d1b11c10747688c3d72197494d17186aa9b9f0b5bb29003cd80681a89f"
    "515ce80ce3d266206ebcbd0806a7f518bdcdb01c6ed3e36b872c3170adb84670"
    "0b18ad2cc6e6b881f02b2a2a18d1102dfb80b98144194e90b05d77e50a9d2cf4"
    "2e67776e7eb3710ff53c85d0560d5e084d6f30189a10fe117a961dfaa9b1a6e8"
    "e6028c429f3df322dcf72b87536142eecf01350590369ed2120322217df40329")
EC_X = "687f3caea3ade71fcb90c70ec64e8ed1b96869418ab43a41e2b390e4f49debba"
EC_Y = "41393099241a662dd199d0659a916d5682b285518891f181c6bb283bf70c258c"
CERT_NAME = ("303331193017060355040a0c10746f6b656e66732066697874757265733116301406"
             "035504030c0d70723632372d72736132303438")

# (file, attribute, plaintext hex): the README's "Plaintext values" table.
PR627_PLAINTEXTS = [
    (AES, CKA_VALUE, "a10466d6eca2e5977d0e0879123b00d3f213dc16be1dc2f78477456ba7de5d2f"),
    (AES, CKA_CHECK_VALUE, "f0209d"),
    (DATA_PRIV, CKA_VALUE, b"pr627 private data".hex()),
    (DATA_PUB, CKA_VALUE, b"pr627 public data".hex()),
    (DATA_PRIV, CKA_APPLICATION, b"pr627".hex()),
    (DATA_PUB, CKA_APPLICATION, b"pr627".hex()),
    (DATA_PRIV, CKA_OBJECT_ID, ""),
    (DATA_PUB, CKA_OBJECT_ID, ""),
    (EC_PRIV, CKA_EC_PARAMS, "06082a8648ce3d030107"),
    (EC_PUB, CKA_EC_PARAMS, "06082a8648ce3d030107"),
    (EC_PUB, CKA_EC_POINT, "044104" + EC_X + EC_Y),
    (RSA_PRIV, CKA_PUBLIC_EXPONENT, "010001"),
    (RSA_PUB, CKA_PUBLIC_EXPONENT, "010001"),
    (RSA_PRIV, CKA_MODULUS, MODULUS),
    (RSA_PUB, CKA_MODULUS, MODULUS),
    (CERT, CKA_SERIAL_NUMBER, "02020627"),
    (CERT, CKA_SUBJECT, CERT_NAME),
    (CERT, CKA_ISSUER, CERT_NAME),
    (CERT, CKA_CHECK_VALUE, "4bc942"),
]
CERT_SHA256 = "c3828930ad0c82ae5cbe630b193d9dbdbfde7065b9e7bac88f0369430340c933"

# (file, attribute, plaintext length, stored length): "Encrypted attributes".
PR627_ENCRYPTED = [
    (AES, CKA_LABEL, 12, 44), (AES, CKA_VALUE, 32, 64), (AES, CKA_CHECK_VALUE, 3, 35),
    (AES, CKA_ID, 1, 33),
    (EC_PRIV, CKA_LABEL, 13, 45), (EC_PRIV, CKA_VALUE, 32, 64), (EC_PRIV, CKA_ID, 1, 33),
    (EC_PRIV, CKA_EC_PARAMS, 10, 42),
    (RSA_PRIV, CKA_LABEL, 13, 45), (RSA_PRIV, CKA_ID, 1, 33), (RSA_PRIV, CKA_MODULUS, 256, 288),
    (RSA_PRIV, CKA_PUBLIC_EXPONENT, 3, 35), (RSA_PRIV, CKA_PRIVATE_EXPONENT, 256, 288),
    (RSA_PRIV, CKA_PRIME_1, 128, 160), (RSA_PRIV, CKA_PRIME_2, 128, 160),
    (RSA_PRIV, CKA_EXPONENT_1, 128, 160), (RSA_PRIV, CKA_EXPONENT_2, 128, 160),
    (RSA_PRIV, CKA_COEFFICIENT, 128, 160),
    (DATA_PRIV, CKA_LABEL, 18, 50), (DATA_PRIV, CKA_APPLICATION, 5, 37),
    (DATA_PRIV, CKA_VALUE, 18, 50),
]

# SoftHSM's default empty templates: which objects carry which (kind 4, length 0).
PR627_EMPTY_MAPS = {
    CKA_WRAP_TEMPLATE: {EC_PUB, RSA_PUB, AES},
    CKA_UNWRAP_TEMPLATE: {EC_PRIV, RSA_PRIV, AES},
}

# testdata/README.md
FIXTURE_PINS = {"demo": ("so-secret-1", "user-pin-1"), "second": ("so-secret-2", "user-pin-2")}
TESTDATA_COUNTS = {"demo": 13, "second": 4}
# label: {attribute: plaintext} from testdata/README.md's object tables.
TESTDATA_VALUES = {
    "aes128-public-plaintext": {CKA_VALUE: bytes(range(16)), CKA_CHECK_VALUE: bytes.fromhex("c6a13b")},
    "data-private": {CKA_VALUE: b"tokenfs private data object payload",
                     CKA_APPLICATION: b"tokenfs-tests"},
    "data-public": {CKA_VALUE: b"tokenfs public data object payload",
                    CKA_APPLICATION: b"tokenfs-tests"},
    "data-public-second": {CKA_VALUE: b"tokenfs second-token public data",
                           CKA_APPLICATION: b"tokenfs-tests"},
}


# ---------------------------------------------------------------------------
# Counting

class Results:
    """Counts checks; prints each failure with what was expected."""

    def __init__(self):
        self.passed = self.failed = 0

    def check(self, what, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {what}" + (f": {detail}" if detail else ""), file=sys.stderr)
        return ok

    def equal(self, what, got, want):
        return self.check(what, got == want, f"got {got!r}, want {want!r}")

    def none(self, what, problems):
        """Passes when a list of problems is empty; shows the first few."""
        return self.check(what, not problems,
                          f"{len(problems)} problem(s): " + "; ".join(problems[:6]))

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 and self.passed > 0 else 1


# ---------------------------------------------------------------------------
# Copies of fixtures

def copy_tree(src, dst):
    """cp -a, then the modes SoftHSM writes (0700/0600): git and the read-only
    shared fixture keep other modes, and writers need to replace files."""
    subprocess.run(["cp", "-a", src, dst], check=True)
    os.chmod(dst, 0o700)
    for root, dirs, files in os.walk(dst):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o700)
        for f in files:
            os.chmod(os.path.join(root, f), 0o600)


def pr627_root():
    return os.environ.get("TFS_PR627") or os.path.join(
        os.path.dirname(REPO), "shared", "fixtures", "pr627-store")


def testdata_root():
    return os.environ.get("TFS_TESTDATA") or os.path.join(REPO, "testdata")


def token_dirs_by_label(tokendir):
    """label -> token directory, for every token of a tokendir."""
    out = {}
    for name in sorted(os.listdir(tokendir)):
        path = os.path.join(tokendir, name)
        if os.path.isfile(os.path.join(path, "token.object")):
            meta = td.read_object(os.path.join(path, "token.object"))
            out[meta.last(td.CKA_OS_TOKENLABEL).value.decode().rstrip(" ")] = path
    return out


# ---------------------------------------------------------------------------
# Reading decoded objects

def value(obj, type_):
    """The value SoftHSM would return: plaintext if encrypted, else as stored;
    None when the attribute is absent."""
    a = obj.last(type_)
    if a is None:
        return None
    return a.plaintext if a.encrypted else a.value


def as_int(b):
    return int.from_bytes(b, "big")


def der_octet_string(point):
    """The uncompressed point inside CKA_EC_POINT's DER OCTET STRING (short form)."""
    if len(point) < 2 or point[0] != 0x04 or point[1] != len(point) - 2:
        raise ValueError("CKA_EC_POINT is not a short-form OCTET STRING")
    return point[2:]


def rsa_problems(obj, modulus, exponent):
    """The README's RSA relations between decrypted private components and the
    public key: a sensitive value can only be proven right this way."""
    p, q = as_int(value(obj, CKA_PRIME_1)), as_int(value(obj, CKA_PRIME_2))
    d = as_int(value(obj, CKA_PRIVATE_EXPONENT))
    dp, dq = as_int(value(obj, CKA_EXPONENT_1)), as_int(value(obj, CKA_EXPONENT_2))
    qinv = as_int(value(obj, CKA_COEFFICIENT))
    n, e = as_int(modulus), as_int(exponent)
    lam = (p - 1) * (q - 1) // _gcd(p - 1, q - 1)
    facts = {"p*q = n": p * q == n, "dp = d mod p-1": dp == d % (p - 1),
             "dq = d mod q-1": dq == d % (q - 1), "qinv*q = 1 mod p": qinv * q % p == 1,
             "e*d = 1 mod lcm": e * d % lam == 1}
    return [k for k, ok in facts.items() if not ok]


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


# ---------------------------------------------------------------------------
# a. The pr627 store: the decoder against the README of a real GCM store

def readme_sha256s(root):
    """path -> SHA-256 from the README's closing list."""
    out, on = {}, False
    with open(os.path.join(root, "README.md")) as f:
        for line in f:
            if line.startswith("## SHA-256"):
                on = True
            elif on and line.startswith("    ") and len(line.split()) == 2:
                digest, path = line.split()
                out[os.path.normpath(path)] = digest
    return out


def check_pr627_files(res, root):
    """Every file of the copy is the one the README lists, byte for byte."""
    want = readme_sha256s(root)
    got = {}
    for base, _, files in os.walk(os.path.join(root, "tokens")):
        for f in files:
            path = os.path.join(base, f)
            with open(path, "rb") as fh:
                got[os.path.relpath(path, root)] = hashlib.sha256(fh.read()).hexdigest()
    res.equal("pr627: 18 files, each with the README's SHA-256", (len(want), got), (18, want))


def check_pr627_token(res, tok):
    res.equal("pr627: label", tok["label"], "pr627")
    res.equal("pr627: label blank padded to 32", tok["token_object"].last(td.CKA_OS_TOKENLABEL).value,
              b"pr627".ljust(32))
    res.equal("pr627: serial", tok["serial"], "f6851ff3185fd2a6")
    res.equal("pr627: slot ID from the serial", int(tok["serial"][-8:], 16) & 0x7FFFFFFF, 408933030)
    res.equal("pr627: flags", tok["flags"], 0x42D)
    res.equal("pr627: token.object generation", tok["token_object"].generation, 12)
    res.equal("pr627: no generation file", tok["generation"], None)
    res.equal("pr627: both blobs 72-byte GCM", tok["blobs"],
              {"so": {"length": 72, "layout": "gcm"}, "user": {"length": 72, "layout": "gcm"}})
    res.equal("pr627: SO and user blobs wrap one token key", tok["token_keys_equal"], True)
    res.equal("pr627: 8 objects", sorted(tok["objects"]), sorted(PR627_OBJECTS))
    res.none("pr627: every value in the GCM layout", td.layout_problems(tok, "gcm"))
    res.check("pr627: the checker sees it is not CBC", td.layout_problems(tok, "cbc"))


def check_pr627_objects(res, tok):
    """The Objects table: class, CKA_PRIVATE, label, id, key type, sensitivity, generation."""
    for name, (cls, private, label, id_, ktype, sensitive, gen) in PR627_OBJECTS.items():
        obj = tok["objects"][name]
        got = (value(obj, CKA_CLASS), value(obj, CKA_PRIVATE), value(obj, CKA_LABEL),
               value(obj, CKA_ID), obj.generation)
        want = (CKO[cls], private, label.encode(), None if id_ is None else bytes.fromhex(id_), gen)
        res.equal(f"pr627 {label} ({name}): class, private, label, id, generation", got, want)
        if ktype:
            res.equal(f"pr627 {label}: key type", value(obj, CKA_KEY_TYPE), CKK[ktype])
        if sensitive is not None:
            res.equal(f"pr627 {label}: sensitive", value(obj, CKA_SENSITIVE), sensitive)
    res.equal("pr627 cert: X.509", value(tok["objects"][CERT], CKA_CERTIFICATE_TYPE), CKC_X_509)


def check_pr627_plaintexts(res, tok):
    for name, type_, want in PR627_PLAINTEXTS:
        res.equal(f"pr627 {name} {type_:#x} plaintext", value(tok["objects"][name], type_).hex(), want)


def check_pr627_encrypted(res, tok):
    """Exactly the README's 21 encrypted values, with its plaintext and stored lengths."""
    got = sorted((name, a.type, len(a.plaintext), len(a.value), a.layout)
                 for name, obj in tok["objects"].items() for a in obj.attributes if a.encrypted)
    want = sorted((n, t, p, s, "gcm") for n, t, p, s in PR627_ENCRYPTED)
    res.equal("pr627: the 21 encrypted values and their lengths", got, want)


def check_pr627_plain_kinds(res, tok):
    """Empty strings stay empty; default templates and mechanism sets are empty
    and stored in plaintext; byte strings of public objects are not encrypted."""
    objs = tok["objects"]
    for type_, holders in PR627_EMPTY_MAPS.items():
        got = {n for n, o in objs.items() if o.last(type_) is not None}
        res.equal(f"pr627: which objects carry {type_:#x}", got, holders)
        for n in holders:
            a = objs[n].last(type_)
            res.equal(f"pr627 {n} {type_:#x}: empty map", (a.kind, a.value), (td.KIND_MAP, []))
    for n, o in objs.items():
        mech = o.last(CKA_ALLOWED_MECHANISMS)
        is_key = value(o, CKA_CLASS) in KEY_CLASSES
        res.equal(f"pr627 {n}: empty CKA_ALLOWED_MECHANISMS on keys only",
                  None if mech is None else (mech.kind, mech.value),
                  (td.KIND_MECHS, []) if is_key else None)
        empties = [a for a in o.attributes if a.kind == td.KIND_BYTES and not a.value]
        res.check(f"pr627 {n}: empty byte strings stored empty, not encrypted",
                  all(not a.encrypted for a in empties))
        if not td.is_private(o):
            res.check(f"pr627 {n}: public object has nothing encrypted",
                      not any(a.encrypted for a in o.attributes))
    res.check("pr627: some empty byte strings exist (CKA_SUBJECT, ...)",
              sum(1 for o in objs.values() for a in o.attributes
                  if a.kind == td.KIND_BYTES and not a.value) > 5)


def check_pr627_relations(res, tok):
    """Key material proven by what it must satisfy, not only by a tag match."""
    objs = tok["objects"]
    aes_key = value(objs[AES], CKA_VALUE)
    enc = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()
    res.equal("pr627 AES: check value = AES-ECB(key, 0^16)[:3]",
              (enc.update(bytes(16)) + enc.finalize())[:3], value(objs[AES], CKA_CHECK_VALUE))

    d = as_int(value(objs[EC_PRIV], CKA_VALUE))
    pub = ec.derive_private_key(d, ec.SECP256R1()).public_key().public_numbers()
    point = der_octet_string(value(objs[EC_PUB], CKA_EC_POINT))
    res.equal("pr627 EC: d*G = the public point",
              b"\x04" + pub.x.to_bytes(32, "big") + pub.y.to_bytes(32, "big"), point)
    res.equal("pr627 EC: point = 04 || X || Y", point.hex(), "04" + EC_X + EC_Y)

    res.none("pr627 RSA: private components fit the modulus",
             rsa_problems(objs[RSA_PRIV], value(objs[RSA_PRIV], CKA_MODULUS),
                          value(objs[RSA_PRIV], CKA_PUBLIC_EXPONENT)))

    der = value(objs[CERT], CKA_VALUE)
    res.equal("pr627 cert: 838 bytes with the README's SHA-256",
              (len(der), hashlib.sha256(der).hexdigest()), (838, CERT_SHA256))
    res.equal("pr627 cert: check value = SHA-1(DER)[:3]",
              hashlib.sha1(der).digest()[:3], value(objs[CERT], CKA_CHECK_VALUE))
    cert = x509.load_der_x509_certificate(der)
    res.equal("pr627 cert: serial 0x0627, subject = issuer",
              (cert.serial_number, cert.subject.public_bytes().hex(), cert.issuer.public_bytes().hex()),
              (0x0627, CERT_NAME, CERT_NAME))
    key = cert.public_key()
    res.equal("pr627 cert: its key is the token's RSA key", key.public_numbers().n,
              as_int(bytes.fromhex(MODULUS)))
    try:
        key.verify(cert.signature, cert.tbs_certificate_bytes, asym_padding.PKCS1v15(),
                   cert.signature_hash_algorithm)
        res.check("pr627 cert: self-signature verifies", True)
    except Exception as e:  # noqa: BLE001 -- any failure is the finding
        res.check("pr627 cert: self-signature verifies", False, str(e))


def check_pr627_pins(res, tokdir):
    """One PIN alone gives the same key; a wrong PIN is refused in both layouts."""
    so_only = td.decode_token(tokdir, so_pin=PR627_SO_PIN)
    user_only = td.decode_token(tokdir, user_pin=PR627_USER_PIN)
    res.check("pr627: SO-only and user-only decoding find one token key",
              so_only["token_key"] is not None and so_only["token_key"] == user_only["token_key"])
    for role in ("so", "user"):
        try:
            td.decode_token(tokdir, **{f"{role}_pin": "wrong-pin"})
            res.check(f"pr627: a wrong {role} PIN is refused", False, "accepted")
        except td.WrongPin:
            res.check(f"pr627: a wrong {role} PIN is refused", True)


def check_pr627(res, work):
    root = pr627_root()
    if not os.path.isfile(os.path.join(root, "README.md")):
        missing(f"the pr627 fixture ({root})")
    copy = os.path.join(work, "pr627")
    copy_tree(root, copy)
    check_pr627_files(res, copy)
    tokdir = os.path.join(copy, "tokens", PR627_TOKEN)
    tok = td.decode_token(tokdir, PR627_SO_PIN, PR627_USER_PIN)
    check_pr627_token(res, tok)
    check_pr627_objects(res, tok)
    check_pr627_plaintexts(res, tok)
    check_pr627_encrypted(res, tok)
    check_pr627_plain_kinds(res, tok)
    check_pr627_relations(res, tok)
    check_pr627_pins(res, tokdir)


# ---------------------------------------------------------------------------
# testdata: the decoder against SoftHSM 2.6.1's CBC store and the project's vectors

def read_inventory(testdata):
    """store-inventory.tsv rows as dicts."""
    rows = []
    with open(os.path.join(testdata, "store-inventory.tsv")) as f:
        header = None
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if line.startswith("#"):
                header = [h.strip("# ") for h in fields]
            elif line.strip():
                rows.append(dict(zip(header, fields)))
    return rows


def check_testdata_token(res, label, tok, inventory):
    so_user = "SO and user"
    res.equal(f"testdata {label}: both blobs 72-byte CBC", tok["blobs"],
              {"so": {"length": 72, "layout": "cbc"}, "user": {"length": 72, "layout": "cbc"}})
    res.equal(f"testdata {label}: {so_user} blobs wrap one token key", tok["token_keys_equal"], True)
    res.equal(f"testdata {label}: flags", tok["flags"], 0x42D)
    res.check(f"testdata {label}: has a generation file", tok["generation"] is not None)
    res.equal(f"testdata {label}: object count", len(tok["objects"]), TESTDATA_COUNTS[label])
    res.none(f"testdata {label}: every value in the CBC layout", td.layout_problems(tok, "cbc"))
    rows = [r for r in inventory if r["token"] == label]
    res.equal(f"testdata {label}: inventory lists every object file once",
              sorted(r["object_file"] for r in rows), sorted(tok["objects"]))
    for r in rows:
        obj = tok["objects"].get(r["object_file"])
        if obj is None:
            continue
        got = (value(obj, CKA_LABEL), value(obj, CKA_CLASS), value(obj, CKA_KEY_TYPE),
               value(obj, CKA_ID), td.is_private(obj))
        want = (r["label"].encode(), CKO[r["class"]],
                None if r["key_type"] == "-" else CKK[r["key_type"]],
                None if r["id"] == "-" else bytes.fromhex(r["id"]), r["private"] == "true")
        res.equal(f"testdata {r['label']}: label, class, key type, id, private", got, want)
        for type_, want_value in TESTDATA_VALUES.get(r["label"], {}).items():
            res.equal(f"testdata {r['label']}: {type_:#x}", value(obj, type_), want_value)


def check_testdata_relations(res, testdata, tokens):
    """The imported RSA key, decrypted from CBC, is the PEM it was imported from;
    the wrapping template's map entries are in plaintext."""
    demo = tokens["demo"]["objects"]
    by_label = {value(o, CKA_LABEL): o for o in demo.values()}
    with open(os.path.join(testdata, "certs", "imported-rsa-key.pem"), "rb") as f:
        pem = serialization.load_pem_private_key(f.read(), None).private_numbers()
    priv = by_label[b"imported-rsa-priv"]
    res.equal("testdata imported-rsa-priv: decrypted components = the imported PEM",
              [as_int(value(priv, t)) for t in (CKA_MODULUS, CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
                                               CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2,
                                               CKA_COEFFICIENT)],
              [pem.public_numbers.n, pem.d, pem.p, pem.q, pem.dmp1, pem.dmq1, pem.iqmp])
    gen = by_label[b"rsa2048-gen-priv"]
    res.none("testdata rsa2048-gen-priv: private components fit the modulus",
             rsa_problems(gen, value(gen, CKA_MODULUS), value(gen, CKA_PUBLIC_EXPONENT)))
    with open(os.path.join(testdata, "certs", "imported-rsa-cert.der"), "rb") as f:
        res.equal("testdata imported-rsa-cert: CKA_VALUE = certs/imported-rsa-cert.der",
                  value(by_label[b"imported-rsa-cert"], CKA_VALUE), f.read())
    unwrap = by_label[b"aes256-wrapping-templates"].last(CKA_UNWRAP_TEMPLATE).value
    res.equal("testdata aes256-wrapping-templates: map entry label in plaintext",
              [e.value for e in unwrap if e.type == CKA_LABEL], [b"unwrapped-by-07"])


def check_vectors(res, testdata):
    """testdata/crypto/*.vec: KDF, PIN blobs and values, each outcome as listed."""
    n = bad = 0
    for kind in ("kdf", "pinblob", "value"):
        with open(os.path.join(testdata, "crypto", f"{kind}.vec")) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                fields = dict(kv.split("=", 1) for kv in line.split()[1:])
                n += 1
                if not _vector_ok(kind, fields):
                    bad += 1
                    print(f"FAIL: vector {kind} {fields['name']}", file=sys.stderr)
    res.check(f"crypto vectors: {n} agree with tfsdecode", n > 40 and bad == 0, f"{bad} differ")


def _vector_ok(kind, v):
    h = {k: bytes.fromhex(x) for k, x in v.items() if k not in ("name", "expect", "layout")}
    if kind == "kdf":
        return td.kdf(h["pin"], h["salt"]) == h["key"]
    try:
        if kind == "pinblob":
            got = td.unwrap_pin_blob(h["blob"], h["pin"])
            want = (h.get("key"), v.get("layout"))
        else:
            got = td.decrypt_value(h["key"], h["ct"])
            want = (h.get("pt"), v.get("layout"))
    except td.DecryptError:
        return v["expect"] in ("wrong_pin", "damaged")
    return v["expect"] == "ok" and got == want


def check_malformed(res, testdata):
    """The parser is strict and blames the offset the manifest names."""
    d = os.path.join(testdata, "malformed")
    with open(os.path.join(d, "MANIFEST.tsv")) as f:
        rows = [ln.rstrip("\n").split("\t") for ln in f if not ln.startswith("#") and ln.strip()]
    wrong = []
    for name, offset, desc in rows:
        try:
            td.read_object(os.path.join(d, name))
            got = "valid"
        except td.FormatError as e:
            got = e.offset
        want = "valid" if desc.startswith("VALID") else int(offset)
        if got != want:
            wrong.append(f"{name}: {got} (want {want})")
    res.none(f"malformed: {len(rows)} files rejected at the manifest's offset, or valid", wrong)


def check_testdata(res, work):
    testdata = testdata_root()
    if not os.path.isdir(os.path.join(testdata, "store")):
        missing(f"testdata ({testdata})")
    copy = os.path.join(work, "testdata-store")
    copy_tree(os.path.join(testdata, "store"), copy)
    inventory = read_inventory(testdata)
    tokens = {}
    for label, path in token_dirs_by_label(copy).items():
        so, user = FIXTURE_PINS[label]
        tokens[label] = td.decode_token(path, so, user)
        check_testdata_token(res, label, tokens[label], inventory)
    res.equal("testdata: two tokens", sorted(tokens), ["demo", "second"])
    n = sum(1 for t in tokens.values() for o in t["objects"].values() for a in o.attributes
            if a.encrypted)
    res.equal("testdata: CBC values decrypted (39 demo + 4 second)", n, 43)
    check_testdata_relations(res, testdata, tokens)
    check_vectors(res, testdata)
    check_malformed(res, testdata)


# ---------------------------------------------------------------------------
# b. DST is SRC migrated to the expected layout

def canonical(v):
    """A stored value without file offsets (map entries move with ciphertext sizes)."""
    if isinstance(v, list):
        return [(e.type, e.kind, canonical(e.value)) if isinstance(e, td.Attribute) else e for e in v]
    return v


def predicted_signature(sig, expect, roles):
    """The layout signature SRC must have once migrated: encrypted rows and the
    blobs of `roles` in the expected layout and length, everything else as it
    was; no generations."""
    objects = {}
    for name, o in sig["objects"].items():
        rows = []
        for type_, kind, shape, stored, plain in o["attributes"]:
            if shape in ("gcm", "cbc"):
                shape, stored = expect, td.expected_stored_length(plain, expect)
            rows.append([type_, kind, shape, stored, plain])
        objects[name] = rows
    blobs = {r: [td.PIN_BLOB_LEN, expect] if b is not None and r in roles else b
             for r, b in sig["blobs"].items()}
    return {"blobs": blobs, "objects": objects}


def signature_problems(src, dst, expect, roles):
    """Order, types, kinds, shapes and lengths of every attribute, predicted from SRC."""
    want = predicted_signature(td.layout_signature(src), expect, roles)
    got = td.layout_signature(dst)
    problems = []
    if got["blobs"] != want["blobs"]:
        problems.append(f"blobs {got['blobs']} (want {want['blobs']})")
    for name, rows in want["objects"].items():
        have = got["objects"].get(name, {}).get("attributes")
        if have is None:
            continue
        if len(have) != len(rows):
            problems.append(f"{name}: {len(have)} attributes, want {len(rows)}")
        for i, (g, w) in enumerate(zip(have, rows)):
            if g != w:
                problems.append(f"{name}: attribute #{i} [type, kind, shape, stored, plain] "
                                f"= {g}, want {w}")
                break
    return problems


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def needs_rewrite(obj, expect):
    """An object holding a value not yet in the expected layout."""
    return any(a.layout != expect for a in td.encrypted_attributes(obj))


def object_problems(name, a, b, expect, changed, writer):
    """One object: plaintexts equal, everything else unchanged, the generation rule."""
    problems = []
    for x, y in zip(a.attributes, b.attributes):
        if x.type != y.type or x.kind != y.kind:
            continue  # reported by signature_problems
        if x.encrypted != y.encrypted or (x.encrypted and x.plaintext != y.plaintext):
            problems.append(f"{name}: {x.type:#x} plaintext differs")
        elif not x.encrypted and canonical(x.value) != canonical(y.value):
            problems.append(f"{name}: {x.type:#x} ({td.KIND_NAMES[x.kind]}) changed")
    needed = needs_rewrite(a, expect)
    if needed and not changed:
        problems.append(f"{name}: holds values not in {expect} but was not rewritten")
    if changed and not needed and writer == "migrate":
        problems.append(f"{name}: rewritten although already in {expect}")
    if changed and b.generation != a.generation + 1:
        problems.append(f"{name}: generation {b.generation}, want {a.generation + 1}")
    return problems


def token_object_problems(src, dst, expect, changed, writer, roles):
    """token.object: label, serial, flags kept; the blobs of `roles` rewrapped
    only if needed, any other blob (no PIN given: --keep-other-blob) kept."""
    a, b = src["token_object"], dst["token_object"]
    problems = []
    if [(x.type, x.kind) for x in a.attributes] != [(y.type, y.kind) for y in b.attributes]:
        problems.append("token.object: attribute order, types or kinds differ")
    blob_types = set(td.BLOB_TYPES.values())
    for x, y in zip(a.attributes, b.attributes):
        if x.type not in blob_types and (x.type, x.kind, x.value) != (y.type, y.kind, y.value):
            problems.append(f"token.object: {x.type:#x} changed")
    needed = any(src["blobs"][r] is not None and src["blobs"][r]["layout"] != expect for r in roles)
    if needed and not changed:
        problems.append("token.object: blobs not in the layout, file not rewritten")
    for role, type_ in td.BLOB_TYPES.items():
        if src["blobs"][role] is None:
            continue
        same = a.last(type_).value == b.last(type_).value
        if role not in roles and not same:
            problems.append(f"token.object: {role} blob changed although its PIN was not given")
        if writer == "migrate" and role in roles and src["blobs"][role]["layout"] == expect \
                and not same:
            problems.append(f"token.object: {role} blob was already {expect} but changed")
    if changed and b.generation != a.generation + 1:
        problems.append(f"token.object: generation {b.generation}, want {a.generation + 1}")
    return problems


def generation_problems(src, dst, any_change, writer):
    """The token's generation file: old + 1 after a change, absent stays absent."""
    old, new = src["generation"], dst["generation"]
    if writer == "testkit":
        want = (old or 0) + 1  # tfs_testkit always writes it, from 0 when absent
    elif old is None:
        want = None
    else:
        want = old + 1 if any_change else old
    return [] if new == want else [f"generation file {new}, want {want}"]


def iv_problems(src, dst):
    """No IV (salt+IV for blobs) serves two different ciphertexts under one key.

    Random 16-byte IVs never collide; a repeat means a derived or reused IV,
    fatal for GCM.  A value kept byte for byte is the same ciphertext."""
    seen, problems = {}, []
    for tok in (src, dst):
        for name, obj in tok["objects"].items():
            for a in td.encrypted_attributes(obj):
                seen.setdefault(a.value[:16], set()).add(a.value)
        for type_ in td.BLOB_TYPES.values():
            blob = tok["token_object"].last(type_)
            if blob is not None:
                seen.setdefault(blob.value[:24], set()).add(blob.value)
    for iv, values in seen.items():
        if len(values) > 1:
            problems.append(f"IV {iv.hex()} used for {len(values)} different ciphertexts")
    return problems


def migration_problems(src_dir, dst_dir, so_pin, user_pin, expect, writer="migrate", before=None):
    """Everything by which DST is not SRC migrated to `expect`; [] when it is.

    before: optional {name: (inode, mtime_ns)} of DST taken before the writer
    ran; files that needed no change must then keep inode and mtime.
    A PIN given as None (--keep-other-blob) means that blob must be kept.
    Returns (problems, facts) where facts counts what changed.
    """
    if so_pin is None and user_pin is None:
        raise ValueError("migration_problems needs at least one PIN")
    try:
        src = td.decode_token(src_dir, so_pin, user_pin)
    except (td.FormatError, td.DecryptError) as e:
        return [f"SRC does not decode: {e}"], {}
    try:
        dst = td.decode_token(dst_dir, so_pin, user_pin)
    except (td.FormatError, td.DecryptError) as e:
        return [f"DST does not decode: {e}"], {}
    roles = tuple(r for r, pin in (("so", so_pin), ("user", user_pin)) if pin is not None)
    problems = list(td.layout_problems(dst, expect, roles))
    problems += file_set_problems(src, dst, writer)
    if src["token_key"] != dst["token_key"]:
        problems.append("token key differs")
    problems += signature_problems(src, dst, expect, roles)
    problems += iv_problems(src, dst)
    changed = {f for f in src["files"] if f in dst["files"] and
               read_bytes(os.path.join(src_dir, f)) != read_bytes(os.path.join(dst_dir, f))}
    for name, a in src["objects"].items():
        if name in dst["objects"]:
            problems += object_problems(name, a, dst["objects"][name], expect, name in changed, writer)
    problems += token_object_problems(src, dst, expect, "token.object" in changed, writer, roles)
    problems += generation_problems(src, dst, bool(changed - {"generation"}), writer)
    if writer == "migrate":
        problems += mode_problems(src_dir, dst_dir, set(src["files"]) & set(dst["files"]))
        if before is not None:
            problems += untouched_problems(dst_dir, before, changed)
    return problems, change_facts(src, dst_dir, expect, roles, changed)


def change_facts(src, dst_dir, expect, roles, changed):
    """What a migration of SRC must report, in the terms of migrate's JSON."""
    layouts = [a.layout for o in src["objects"].values() for a in td.encrypted_attributes(o)]
    blobs = {}
    for role, blob in src["blobs"].items():
        if blob is None:
            blobs[role] = "absent"
        elif role not in roles:
            blobs[role] = "kept"
        else:
            blobs[role] = "already" if blob["layout"] == expect else "rewrapped"
    return {"objects_rewritten": len(changed & set(src["objects"])),
            "values_reencrypted": sum(1 for x in layouts if x != expect),
            "values_already": sum(1 for x in layouts if x == expect),
            "blobs": blobs,
            "files_written": len(changed),
            "bytes_written": sum(os.path.getsize(os.path.join(dst_dir, f)) for f in changed)}


def file_set_problems(src, dst, writer):
    """Same file names: nothing staged left behind, nothing lost.  tfs_testkit
    creates a generation file where there was none (checked by its own rule)."""
    extra = set(dst["files"]) - set(src["files"])
    if writer == "testkit" and src["generation"] is None:
        extra.discard("generation")
    lost = set(src["files"]) - set(dst["files"])
    problems = []
    if extra or lost:
        problems.append(f"files differ: only in SRC {sorted(lost)}, only in DST {sorted(extra)}")
    if src["other_entries"] != dst["other_entries"]:
        problems.append(f"non-regular entries {dst['other_entries']}, want {src['other_entries']}")
    return problems


def mode_problems(src_dir, dst_dir, files):
    """A rewritten file keeps the mode of the file it replaces."""
    out = []
    for f in sorted(files):
        m1 = stat.S_IMODE(os.stat(os.path.join(src_dir, f)).st_mode)
        m2 = stat.S_IMODE(os.stat(os.path.join(dst_dir, f)).st_mode)
        if m1 != m2:
            out.append(f"{f}: mode {m2:o}, want {m1:o}")
    return out


def snapshot(tokdir):
    """inode and mtime of every file, to prove later that a file was not touched."""
    out = {}
    for f in os.listdir(tokdir):
        st = os.stat(os.path.join(tokdir, f))
        out[f] = (st.st_ino, st.st_mtime_ns)
    return out


def untouched_problems(dst_dir, before, changed):
    after = snapshot(dst_dir)
    return [f"{f}: touched (inode or mtime changed) although its bytes did not change"
            for f, v in before.items() if f not in changed and after.get(f) != v]


def pin_from_env(var):
    """A PIN from the environment; None when no variable is named."""
    if var is None:
        return None
    if var not in os.environ:
        raise SystemExit(f"pr627_layout: PIN variable {var} is not set")
    return os.environ[var]


def run_compare(res, args):
    src, dst = args.compare
    for d in (src, dst):
        if not os.path.isfile(os.path.join(d, "token.object")):
            raise SystemExit(f"pr627_layout: {d} is not a token directory")
    so, user = pin_from_env(args.so_pin_env), pin_from_env(args.user_pin_env)
    if so is None and user is None:
        raise SystemExit("pr627_layout: --compare needs --so-pin-env, --user-pin-env or both")
    problems, facts = migration_problems(src, dst, so, user, args.expect, args.writer)
    res.none(f"{dst} is {src} migrated to {args.expect} ({facts})", problems)


# ---------------------------------------------------------------------------
# Round trips with a real writer, and damage the comparison must find

class Writer:
    """Runs `tokenfs migrate` or `tfs_testkit to-layout` on one token directory."""

    def __init__(self, kind, extra_args=()):
        self.kind, self.extra_args = kind, list(extra_args)
        var = "TOKENFS" if kind == "migrate" else "TESTKIT"
        self.binary = os.environ.get(var)
        if not self.binary or not os.access(self.binary, os.X_OK):
            missing(f"{var} (the {kind} writer)")
        if kind == "migrate":
            probe = subprocess.run([self.binary, "migrate", "--help"], capture_output=True, text=True)
            if "unknown command" in probe.stderr:
                missing(f"'tokenfs migrate' in {self.binary}")

    def run(self, tokdir, layout, so, user):
        """Returns (exit code, stdout, stderr); the PINs go through the environment.
        A PIN of None: migrate with --keep-other-blob (tfs_testkit cannot)."""
        env = dict(os.environ)
        env.update({k: v for k, v in (("TFS_SO_PIN", so), ("TFS_USER_PIN", user)) if v is not None})
        if self.kind == "migrate":
            # --force: the store is a fresh private copy no SoftHSM can have open, and
            # another test of a parallel ctest run may well have libsofthsm2.so loaded.
            cmd = [self.binary, "migrate", "--to", layout, "--format", "json", "--force"]
            for role, pin in (("so", so), ("user", user)):
                if pin is not None:
                    cmd += [f"--{role}-pin", f"env:TFS_{role.upper()}_PIN"]
            if so is None or user is None:
                cmd.append("--keep-other-blob")
            cmd += [*self.extra_args, tokdir]
        else:
            cmd = [self.binary, "to-layout", tokdir, layout]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
        return p.returncode, p.stdout, p.stderr


def migrate_step(res, writer, src, dst, layout, so, user, what):
    """Copies SRC to DST, converts DST, compares; returns whether it all held."""
    copy_tree(src, dst)
    before = snapshot(dst)
    rc, out, err = writer.run(dst, layout, so, user)
    if not res.check(f"{what}: {writer.kind} to {layout} exits 0", rc == 0, f"exit {rc}: {err.strip()}"):
        return False
    for secret in (so, user):
        if secret is not None and len(secret) >= 6:  # a 4-digit PIN can occur in any number printed
            res.check(f"{what}: no PIN in the writer's output", secret not in out + err)
    problems, facts = migration_problems(src, dst, so, user, layout, writer.kind, before)
    ok = res.none(f"{what}: DST is SRC migrated to {layout} ({facts})", problems)
    if writer.kind == "migrate":
        check_migrate_json(res, what, out, facts)
    return ok


def check_migrate_json(res, what, out, facts):
    """migrate's JSON counts agree with what changed on disk."""
    try:
        tok = json.loads(out)["tokens"][0]
    except (ValueError, KeyError, IndexError) as e:
        res.check(f"{what}: migrate --format json parses", False, str(e))
        return
    got = {k: tok.get(k) for k in facts}
    want = facts
    res.equal(f"{what}: migrate JSON counts match the files", got, want)


def roundtrip(res, writer, work):
    kind = writer.kind
    testdata = os.path.join(work, "rt-testdata")
    copy_tree(os.path.join(testdata_root(), "store"), testdata)
    for label, path in token_dirs_by_label(testdata).items():
        so, user = FIXTURE_PINS[label]
        gcm, cbc = os.path.join(work, f"rt-{label}-gcm"), os.path.join(work, f"rt-{label}-cbc")
        if migrate_step(res, writer, path, gcm, "gcm", so, user, f"{label} CBC -> GCM"):
            migrate_step(res, writer, gcm, cbc, "cbc", so, user, f"{label} GCM -> CBC")
            if label == "demo":
                check_damage(res, path, gcm, so, user, kind, work)
        if kind == "migrate":
            migrate_step(res, writer, path, os.path.join(work, f"rt-{label}-noop"), "cbc", so, user,
                         f"{label} CBC -> CBC (nothing to do)")
            migrate_step(res, writer, path, os.path.join(work, f"rt-{label}-keep-so"), "gcm", None,
                         user, f"{label} CBC -> GCM, user PIN only, SO blob kept")
    pr627 = os.path.join(work, "rt-pr627")
    copy_tree(pr627_root(), pr627)
    tokdir = os.path.join(pr627, "tokens", PR627_TOKEN)
    cbc, gcm = os.path.join(work, "rt-pr627-cbc"), os.path.join(work, "rt-pr627-gcm")
    if migrate_step(res, writer, tokdir, cbc, "cbc", PR627_SO_PIN, PR627_USER_PIN, "pr627 GCM -> CBC"):
        if migrate_step(res, writer, cbc, gcm, "gcm", PR627_SO_PIN, PR627_USER_PIN, "pr627 CBC -> GCM"):
            back = td.decode_token(gcm, PR627_SO_PIN, PR627_USER_PIN)
            check_pr627_plaintexts(res, back)


# Damage: each function changes a good DST copy in one way; --compare must object.

def gcm_encrypt(key, plaintext):
    iv = os.urandom(16)
    enc = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    ct = enc.update(plaintext) + enc.finalize()
    return iv + ct + enc.tag


def cbc_encrypt(key, plaintext):
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv + enc.update(padder.update(plaintext) + padder.finalize()) + enc.finalize()


def replace_value(path, attr, new):
    """Rewrites one kind-3 value in place of the old (length field included)."""
    data = read_bytes(path)
    start = attr.value_offset
    end = start + 8 + len(attr.value)
    with open(path, "wb") as f:
        f.write(data[:start] + struct.pack(">Q", len(new)) + new + data[end:])


def patch(path, offset, new):
    data = read_bytes(path)
    with open(path, "wb") as f:
        f.write(data[:offset] + new + data[offset + len(new):])


def first_private(tok, want):
    """(file name, object) of the first private object with an attribute `want` accepts."""
    for name, obj in sorted(tok["objects"].items()):
        if td.is_private(obj) and any(want(a) for a in obj.attributes):
            return name, obj
    raise LookupError("no such object")


def damage_other_layout(d, tok, key):
    name, obj = first_private(tok, lambda a: a.encrypted)
    a = next(a for a in obj.attributes if a.encrypted)
    other = cbc_encrypt if a.layout == "gcm" else gcm_encrypt
    replace_value(os.path.join(d, name), a, other(key, a.plaintext))


def damage_tag(d, tok, key):
    name, obj = first_private(tok, lambda a: a.encrypted)
    a = next(a for a in obj.attributes if a.encrypted)
    end = a.value_offset + 8 + len(a.value) - 1
    patch(os.path.join(d, name), end, bytes([a.value[-1] ^ 1]))


def damage_empty_encrypted(d, tok, key):
    name, obj = first_private(tok, lambda a: a.kind == td.KIND_BYTES and not a.value)
    a = next(a for a in obj.attributes if a.kind == td.KIND_BYTES and not a.value)
    replace_value(os.path.join(d, name), a, gcm_encrypt(key, b""))


def damage_bool(d, tok, key):
    name, obj = first_private(tok, lambda a: a.kind == td.KIND_BOOL and a.type != CKA_PRIVATE)
    a = next(a for a in obj.attributes if a.kind == td.KIND_BOOL and a.type != CKA_PRIVATE)
    patch(os.path.join(d, name), a.value_offset, b"\x00" if a.value else b"\xff")


def damage_swap_ciphertexts(d, tok, key):
    """Two values of one object exchanged: GCM without AAD cannot see it."""
    name, obj = first_private(tok, lambda a: a.type == CKA_ID and a.encrypted)
    x, y = obj.last(CKA_LABEL), obj.last(CKA_ID)
    path = os.path.join(d, name)
    later, earlier = (x, y) if x.offset > y.offset else (y, x)
    replace_value(path, later, earlier.value)
    replace_value(path, earlier, later.value)


def damage_swap_attributes(d, tok, key):
    name, obj = first_private(tok, lambda a: a.encrypted)
    path = os.path.join(d, name)
    data = read_bytes(path)
    a, b = obj.attributes[0], obj.attributes[1]
    first, second = data[a.offset:b.offset], data[b.offset:obj.attributes[2].offset]
    with open(path, "wb") as f:
        f.write(data[:a.offset] + second + first + data[b.offset + len(second):])


def damage_object_generation(d, tok, key):
    name, obj = first_private(tok, lambda a: a.encrypted)
    patch(os.path.join(d, name), 0, struct.pack(">Q", obj.generation - 1))


def damage_token_generation(d, tok, key):
    path = os.path.join(d, "generation")
    if tok["generation"] is None:
        with open(path, "wb") as f:
            f.write(struct.pack(">Q", 1))
    else:
        patch(path, 0, struct.pack(">Q", tok["generation"] - 1))


def damage_staged_leftover(d, tok, key):
    with open(os.path.join(d, "token.object.tokenfs-new"), "wb") as f:
        f.write(read_bytes(os.path.join(d, "token.object")))


def damage_so_blob_from(src_dir):
    """The SO blob put back as SRC had it (a blob left in the old layout)."""
    def damage(d, tok, key):
        old = td.read_object(os.path.join(src_dir, "token.object")).last(td.CKA_OS_SOPIN).value
        replace_value(os.path.join(d, "token.object"), tok["token_object"].last(td.CKA_OS_SOPIN), old)
    return damage


def check_damage(res, src, good, so, user, writer, work):
    """Each kind of damage to a good migrated copy must be reported by --compare."""
    tok = td.decode_token(good, so, user)
    expect = "gcm"
    cases = {"a value in the other layout": damage_other_layout,
             "a flipped GCM tag": damage_tag,
             "an empty value stored encrypted": damage_empty_encrypted,
             "a bool flipped": damage_bool,
             "CKA_LABEL and CKA_ID ciphertexts swapped": damage_swap_ciphertexts,
             "two attributes in swapped order": damage_swap_attributes,
             "an object generation not raised": damage_object_generation,
             "the token generation not raised": damage_token_generation,
             "a staged file left behind": damage_staged_leftover,
             "the SO blob left in CBC": damage_so_blob_from(src)}
    for i, (what, damage) in enumerate(cases.items()):
        d = os.path.join(work, f"damage-{i}")
        copy_tree(good, d)
        damage(d, tok, tok["token_key"])
        problems, _ = migration_problems(src, d, so, user, expect, writer)
        res.check(f"--compare finds {what}", problems, "no problem reported")


# ---------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--fixture-only", action="store_true",
                      help="prove the decoder on the pr627 store and testdata")
    mode.add_argument("--compare", nargs=2, metavar=("SRC", "DST"),
                      help="check token dir DST is token dir SRC migrated to --expect")
    mode.add_argument("--roundtrip", choices=("migrate", "testkit"),
                      help="fixtures, then convert copies with $TOKENFS migrate or $TESTKIT and compare")
    p.add_argument("--expect", choices=("gcm", "cbc"), default="gcm")
    p.add_argument("--so-pin-env", metavar="VAR")
    p.add_argument("--user-pin-env", metavar="VAR")
    p.add_argument("--writer", choices=("migrate", "testkit"), default="migrate",
                   help="what made DST (testkit rewrites every object)")
    p.add_argument("--migrate-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for tokenfs migrate in --roundtrip (--force is given)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    res = Results()
    writer = Writer(args.roundtrip, args.migrate_arg) if args.roundtrip else None  # may skip: before any work
    work = tempfile.mkdtemp(prefix="pr627-layout-")
    try:
        if args.compare:
            run_compare(res, args)
        else:
            check_pr627(res, work)
            check_testdata(res, work)
            if writer:
                roundtrip(res, writer, work)
    except Exception:  # noqa: BLE001 -- counted as a failure, with where it happened
        res.check("no unexpected error", False, traceback.format_exc())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return res.finish()


if __name__ == "__main__":
    sys.exit(main())
