#!/usr/bin/python3
"""p11check: real SoftHSM 2.6.1 as the judge of a store another tool rewrote.

A write command (`tokenfs migrate`, a rekey, ...) is right only if SoftHSM
itself still opens the store it wrote and finds every object as it was. This
script asks SoftHSM, through PyKCS11, before and after:

  p11check.py make-store TOKENDIR
      A fresh store with every object kind (token "every", SO PIN "every-so-1",
      user PIN "every-user-1"), made by softhsm2-util, pkcs11-tool and PyKCS11.
  p11check.py snapshot TOKENDIR LABEL USERPIN OUT.json
      Logs in as the user and records every attribute of every object that
      C_GetAttributeValue returns (sensitive ones as "sensitive"), keyed by
      (CKA_CLASS, CKA_LABEL, CKA_ID), and one operation per key: a signature,
      a ciphertext or a MAC over fixed data, with its verification.
  p11check.py check TOKENDIR LABEL SOPIN USERPIN BEFORE.json [--wrong-pin PIN]...
      SoftHSM must log in with the user PIN and, separately, with the SO PIN;
      every attribute must equal BEFORE's; every key must still do its
      operation (deterministic outputs equal BEFORE's; signatures verify
      through SoftHSM and with python3-cryptography from BEFORE's public
      values; ciphertexts and MACs of readable keys equal what
      python3-cryptography computes from BEFORE's CKA_VALUE). Each
      --wrong-pin must be refused (CKR_PIN_INCORRECT) for the user and the SO.
      Prints "FAIL: ..." (one line each) and "N passed, N failed"; exit 0 only
      when all pass.

TOKENDIR is the directory named by directories.tokendir (a token directory,
one holding token.object, is taken as its parent). A PIN argument of the form
env:NAME is read from that environment variable, to keep it off command
lines. PINs are never printed.

SoftHSM is not a read-only reader: every C_Login rewrites token.object (and
may create the token's generation file), a failed login sets count-low flags.
snapshot and check work on the store they are given, so callers give them a
copy (cp -a) of the store under test.

Runs with Debian's /usr/bin/python3 (python3-pykcs11, python3-cryptography),
module /usr/lib/softhsm/libsofthsm2.so (or $SOFTHSM2_MODULE), one process per
store with its own SOFTHSM2_CONF in a temporary directory. Without PyKCS11 or
SoftHSM: exit 77 outside CI, exit 1 when CI=true. Usage errors: exit 2.
"""
import argparse
import ctypes
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile

MODULE = os.environ.get("SOFTHSM2_MODULE", "/usr/lib/softhsm/libsofthsm2.so")

EVERY_LABEL, EVERY_SO_PIN, EVERY_USER_PIN = "every", "every-so-1", "every-user-1"

# Fixed inputs, so that deterministic outputs (RSA PKCS#1 v1.5 signatures,
# CBC ciphertexts, HMACs) made before and after a rewrite can be compared.
MESSAGE = b"p11check: the same message before and after the rewrite\n"
PLAINTEXT = b"p11check plaintext: 45 bytes, not a multiple."
IV16 = bytes(range(0x10, 0x20))
IV8 = bytes(range(0x20, 0x28))

CKR_OK = 0x0
CKR_ATTRIBUTE_SENSITIVE = 0x11
CKR_ATTRIBUTE_TYPE_INVALID = 0x12
CKR_PIN_INCORRECT = 0xA0
CKO_DATA, CKO_CERTIFICATE, CKO_PUBLIC_KEY, CKO_PRIVATE_KEY, CKO_SECRET_KEY = 0, 1, 2, 3, 4
CKK_RSA, CKK_EC, CKK_GENERIC_SECRET, CKK_DES3, CKK_AES = 0x0, 0x3, 0x10, 0x15, 0x1F
CKM_SHA256_RSA_PKCS, CKM_ECDSA, CKM_SHA256_HMAC = 0x40, 0x1041, 0x251
CKM_DES3_CBC_PAD, CKM_AES_CBC_PAD = 0x136, 0x1085
CKA_ALLOWED_MECHANISMS = 0x40000600
# CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE (which 2.6.1 refuses)
ARRAY_ATTRIBUTES = (0x40000211, 0x40000212, 0x40000213)
# Token flags SoftHSM changes on a failed or a good login: not compared.
VOLATILE_TOKEN_FLAGS = 0x10000 | 0x20000 | 0x100000 | 0x200000

# DER of the curve OIDs SoftHSM accepts in CKA_EC_PARAMS, with the hash whose
# size fits the curve (CKM_ECDSA signs a digest the caller made).
EC_CURVES = {
    "06082a8648ce3d030107": ("SECP256R1", "SHA256"),
    "06052b81040022": ("SECP384R1", "SHA384"),
    "06052b81040023": ("SECP521R1", "SHA512"),
}


class CkAttribute(ctypes.Structure):
    """CK_ATTRIBUTE, for the reads PyKCS11 1.5 cannot make (attribute arrays'
    entry values) and to see each type's own return value."""
    _fields_ = [("type", ctypes.c_ulong), ("pValue", ctypes.c_void_p),
                ("ulValueLen", ctypes.c_ulong)]


# ---------------------------------------------------------------------------
# Environment: what is needed, and the skip/fail convention of the tests.

def need(ok, what):
    """Exit 77 (skip) when a tool is missing, but 1 in CI, where a missing
    tool means the CI image is wrong rather than that the test cannot run."""
    if ok:
        return
    if os.environ.get("CI") == "true":
        print("FAIL: %s is required in CI" % what, file=sys.stderr)
        sys.exit(1)
    print("SKIP: %s not available" % what, file=sys.stderr)
    sys.exit(77)


def need_softhsm(*tools):
    """PyKCS11, python3-cryptography, the SoftHSM module and the named tools."""
    import importlib.util
    need(importlib.util.find_spec("PyKCS11") is not None,
         "PyKCS11 in %s (use /usr/bin/python3; package python3-pykcs11)" % sys.executable)
    need(importlib.util.find_spec("cryptography") is not None, "python3-cryptography")
    need(os.access(MODULE, os.R_OK), MODULE)
    for tool in tools:
        need(shutil.which(tool) is not None, tool)


def pin_arg(text):
    """A PIN from the command line, or from $NAME for env:NAME."""
    if text.startswith("env:"):
        value = os.environ.get(text[4:])
        if value is None:
            print("p11check: environment variable %s is not set" % text[4:], file=sys.stderr)
            sys.exit(2)
        return value
    return text


def store_root(path):
    """SoftHSM needs the tokendir; a token directory is taken as its parent."""
    path = os.path.abspath(path)
    if os.path.isfile(os.path.join(path, "token.object")):
        return os.path.dirname(path)
    return path


def write_conf(tokendir):
    """A softhsm2.conf for this store alone, in a fresh temporary directory
    (not inside the store: SoftHSM would try a subdirectory as a token)."""
    confdir = tempfile.mkdtemp(prefix="p11check-conf.")
    conf = os.path.join(confdir, "softhsm2.conf")
    with open(conf, "w") as fh:
        fh.write("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
                 % tokendir)
    return confdir, conf


# ---------------------------------------------------------------------------
# SoftHSM through PyKCS11, one store per process.

class SoftHSM:
    """The module loaded for one store. SOFTHSM2_CONF is read at
    C_Initialize, so it is set before PyKCS11 loads the module, and a process
    never loads a second store."""

    def __init__(self, tokendir):
        import PyKCS11
        self.P = PyKCS11
        self.confdir, conf = write_conf(tokendir)
        os.environ["SOFTHSM2_CONF"] = conf
        self.lib = PyKCS11.PyKCS11Lib()
        self.lib.load(MODULE)
        # The same loaded module (dlopen returns the same handle), for reads
        # through raw CK_ATTRIBUTEs in PyKCS11's sessions.
        self.get = ctypes.CDLL(MODULE).C_GetAttributeValue
        self.get.argtypes = [ctypes.c_ulong, ctypes.c_ulong, ctypes.POINTER(CkAttribute),
                             ctypes.c_ulong]
        self.get.restype = ctypes.c_ulong

    def close(self):
        shutil.rmtree(self.confdir, ignore_errors=True)

    def slot(self, label):
        """The one initialized token with this label."""
        found = [s for s in self.lib.getSlotList(tokenPresent=True)
                 if self.lib.getTokenInfo(s).flags & self.P.CKF_TOKEN_INITIALIZED
                 and self.lib.getTokenInfo(s).label.rstrip(" ") == label]
        if len(found) != 1:
            raise P11Failure("%d initialized tokens labelled %r (want 1)" % (len(found), label))
        return found[0]

    def session(self, slot, rw=False):
        flags = self.P.CKF_SERIAL_SESSION | (self.P.CKF_RW_SESSION if rw else 0)
        return self.lib.openSession(slot, flags)

    def login_rv(self, slot, pin, so=False):
        """C_Login's return value in a new session (closed again); SO login
        needs a read/write session and no other session open."""
        self.lib.closeAllSessions(slot)
        s = self.session(slot, rw=so)
        try:
            s.login(pin, self.P.CKU_SO if so else self.P.CKU_USER)
            s.logout()
            return CKR_OK
        except self.P.PyKCS11Error as e:
            return e.value
        finally:
            s.closeSession()

    def rv_name(self, rv):
        return self.P.CKR.get(rv, "0x%x" % rv)


class P11Failure(Exception):
    """A PKCS#11 step that makes the rest of the run pointless."""


def template(P, pairs):
    """A low-level template typed by the Python value: PyKCS11's high-level
    templates guess the type from the attribute and cannot express
    CKA_ALLOWED_MECHANISMS (packed CK_ULONGs) as bytes."""
    t = P.LowLevel.ckattrlist(len(pairs))
    for i, (typ, v) in enumerate(pairs):
        if isinstance(v, bool):
            t[i].SetBool(typ, v)
        elif isinstance(v, int):
            t[i].SetNum(typ, v)
        elif isinstance(v, str):
            t[i].SetBin(typ, P.ckbytelist(v.encode()))
        elif isinstance(v, bytes):
            t[i].SetBin(typ, P.ckbytelist(v))
        elif isinstance(v, list):
            t[i].SetList(typ, template(P, v))
        else:
            raise TypeError(v)
    return t


def mechanisms(*mechs):
    """CKA_ALLOWED_MECHANISMS as the module sees it: native CK_ULONGs."""
    return b"".join(m.to_bytes(ctypes.sizeof(ctypes.c_ulong), sys.byteorder) for m in mechs)


# ---------------------------------------------------------------------------
# Reading every attribute.

def attribute_types(P):
    """Every type worth asking for: all of 0..0x7ff (the standard range,
    so nothing SoftHSM stores is missed for want of a name), the array
    attributes, and every name PyKCS11 knows. Types SoftHSM does not keep
    answer CKR_ATTRIBUTE_TYPE_INVALID and are left out of the record."""
    types = set(range(0x800)) | set(ARRAY_ATTRIBUTES) | {CKA_ALLOWED_MECHANISMS}
    types |= {k for k in P.CKA if isinstance(k, int)}
    return sorted(types)


def attribute_name(P, typ):
    name = P.CKA.get(typ)
    return name if isinstance(name, str) else "0x%x" % typ


def read_raw(get, sess, obj, typ):
    """(rv, bytes) for one plain attribute: a length call, then the value."""
    a = CkAttribute(typ, None, 0)
    rv = get(sess, obj, ctypes.byref(a), 1)
    if rv != CKR_OK:
        return rv, None
    buf = ctypes.create_string_buffer(max(a.ulValueLen, 1))
    a.pValue = ctypes.cast(buf, ctypes.c_void_p)
    rv = get(sess, obj, ctypes.byref(a), 1)
    return rv, buf.raw[:a.ulValueLen] if rv == CKR_OK else None


def read_array(get, sess, obj, typ):
    """(rv, [[type, hex], ...]) for an attribute array (CKA_WRAP_TEMPLATE
    and kin): the array's length, then entry types and lengths, then
    entry values."""
    outer = CkAttribute(typ, None, 0)
    rv = get(sess, obj, ctypes.byref(outer), 1)
    if rv != CKR_OK:
        return rv, None
    entries = (CkAttribute * (outer.ulValueLen // ctypes.sizeof(CkAttribute)))()
    outer.pValue = ctypes.cast(entries, ctypes.c_void_p)
    rv = get(sess, obj, ctypes.byref(outer), 1)
    if rv != CKR_OK:
        return rv, None
    bufs = [ctypes.create_string_buffer(max(e.ulValueLen, 1)) for e in entries]
    for e, b in zip(entries, bufs):
        e.pValue = ctypes.cast(b, ctypes.c_void_p)
    rv = get(sess, obj, ctypes.byref(outer), 1)
    if rv != CKR_OK:
        return rv, None
    return rv, sorted([e.type, b.raw[:e.ulValueLen].hex()] for e, b in zip(entries, bufs))


def read_attributes(hsm, sess, obj):
    """{name: record}: "sensitive", {"hex": ...}, {"entries": ...} for
    arrays, or {"rv": name} for any other refusal. Absent types are omitted,
    so an attribute that appears later is seen as a difference too."""
    out = {}
    for typ in attribute_types(hsm.P):
        if typ in ARRAY_ATTRIBUTES:
            rv, value = read_array(hsm.get, sess, obj, typ)
            record = {"entries": value}
        else:
            rv, value = read_raw(hsm.get, sess, obj, typ)
            record = {"hex": value.hex() if value is not None else None}
        if rv == CKR_ATTRIBUTE_TYPE_INVALID:
            continue
        if rv == CKR_ATTRIBUTE_SENSITIVE:
            record = "sensitive"
        elif rv != CKR_OK:
            record = {"rv": hsm.rv_name(rv)}
        out[attribute_name(hsm.P, typ)] = record
    return out


def value(obj, name):
    """An attribute's bytes, or None when absent, sensitive or refused."""
    rec = obj["attributes"].get(name)
    if isinstance(rec, dict) and rec.get("hex") is not None:
        return bytes.fromhex(rec["hex"])
    return None


def ulong(obj, name):
    raw = value(obj, name)
    return int.from_bytes(raw, sys.byteorder) if raw is not None else None


def flag(obj, name):
    raw = value(obj, name)
    return bool(raw and raw[0])


def object_key(obj):
    """The identity an object keeps through any rewrite that is right:
    class, label and id (the file's UUID is not visible through PKCS#11)."""
    lab, oid = value(obj, "CKA_LABEL"), value(obj, "CKA_ID")
    return "class=%s label=%s id=%s" % (ulong(obj, "CKA_CLASS"),
                                         lab.hex() if lab is not None else "-",
                                         oid.hex() if oid is not None else "-")


def describe(key):
    """A key for messages, the label shown as text when it is UTF-8."""
    cls, lab, oid = (part.split("=", 1)[1] for part in key.split(" "))
    text = lab
    if lab != "-":
        try:
            text = repr(bytes.fromhex(lab).decode())
        except UnicodeDecodeError:
            text = "0x" + lab
    return "[class %s label %s id %s]" % (cls, text, oid)


def read_objects(hsm, session):
    """{key: {"handle", "attributes"}} of every object the session sees
    (the handle is PyKCS11's, valid in this session only).
    Objects with the same key (ambiguous for matching) get "#n" suffixes in
    the order of their attribute records, which is stable while they are
    unchanged."""
    found = []
    for h in session.findObjects():
        obj = {"handle": h, "attributes": read_attributes(hsm, session.session.value(), h.value())}
        found.append(obj)
    by_key = {}
    for obj in found:
        by_key.setdefault(object_key(obj), []).append(obj)
    out = {}
    for key, objs in by_key.items():
        if len(objs) == 1:
            out[key] = objs[0]
            continue
        objs.sort(key=lambda o: json.dumps(o["attributes"], sort_keys=True))
        for i, obj in enumerate(objs):
            out["%s #%d" % (key, i)] = obj
    return out


def token_record(hsm, slot):
    """What identifies the token (flags without the login-count bits)."""
    info = hsm.lib.getTokenInfo(slot)
    return {"label": info.label.rstrip(" "), "serial": info.serialNumber.rstrip(" "),
            "manufacturer": info.manufacturerID.rstrip(" "), "model": info.model.rstrip(" "),
            "flags": info.flags & ~VOLATILE_TOKEN_FLAGS}


# ---------------------------------------------------------------------------
# Operations: what each key must still do.

def allowed(obj, mech):
    """CKA_ALLOWED_MECHANISMS permits mech (no list: everything)."""
    raw = value(obj, "CKA_ALLOWED_MECHANISMS")
    if not raw:
        return True
    n = ctypes.sizeof(ctypes.c_ulong)
    return mech in {int.from_bytes(raw[i:i + n], sys.byteorder) for i in range(0, len(raw), n)}


def ec_hash(obj_with_params):
    raw = value(obj_with_params, "CKA_EC_PARAMS") if obj_with_params else None
    return EC_CURVES.get(raw.hex(), (None, "SHA256"))[1] if raw else "SHA256"


def find_public(objects, priv):
    """The public key object paired with a private key: same CKA_ID and key
    type (and, for RSA, the same modulus)."""
    for key, obj in sorted(objects.items()):
        if (ulong(obj, "CKA_CLASS") == CKO_PUBLIC_KEY
                and value(obj, "CKA_ID") == value(priv, "CKA_ID")
                and ulong(obj, "CKA_KEY_TYPE") == ulong(priv, "CKA_KEY_TYPE")
                and (ulong(priv, "CKA_KEY_TYPE") != CKK_RSA
                     or value(obj, "CKA_MODULUS") == value(priv, "CKA_MODULUS"))):
            return key
    return None


def find_certificate(objects, priv):
    """A certificate with the private key's CKA_ID, whose public key must
    verify the key's signatures too."""
    for key, obj in sorted(objects.items()):
        if (ulong(obj, "CKA_CLASS") == CKO_CERTIFICATE
                and value(obj, "CKA_ID") == value(priv, "CKA_ID")):
            return key
    return None


def plan(objects, key):
    """The operation a key is meant for, or None: signing for private keys
    with CKA_SIGN, CBC-PAD for AES and DES3 keys with CKA_ENCRYPT, SHA-256
    HMAC for generic secrets with CKA_SIGN. The plan is made once, at
    snapshot time; check replays it, so a key that lost a usage fails."""
    obj = objects[key]
    cls, ktype = ulong(obj, "CKA_CLASS"), ulong(obj, "CKA_KEY_TYPE")
    if cls == CKO_PRIVATE_KEY and flag(obj, "CKA_SIGN"):
        pub = find_public(objects, obj)
        base = {"kind": "sign", "public": pub, "certificate": find_certificate(objects, obj)}
        if ktype == CKK_RSA and allowed(obj, CKM_SHA256_RSA_PKCS):
            return dict(base, mechanism=CKM_SHA256_RSA_PKCS, input=MESSAGE.hex(),
                        deterministic=True)
        if ktype == CKK_EC and allowed(obj, CKM_ECDSA):
            hname = ec_hash(objects.get(pub) or obj)
            digest = hashlib.new(hname.lower(), MESSAGE).digest()
            return dict(base, mechanism=CKM_ECDSA, input=digest.hex(), hash=hname,
                        deterministic=False)
    if cls == CKO_SECRET_KEY and flag(obj, "CKA_ENCRYPT"):
        mech, iv = {CKK_AES: (CKM_AES_CBC_PAD, IV16), CKK_DES3: (CKM_DES3_CBC_PAD, IV8)}.get(
            ktype, (None, None))
        if mech is not None and allowed(obj, mech):
            return {"kind": "encrypt", "mechanism": mech, "iv": iv.hex(), "input": PLAINTEXT.hex(),
                    "decrypt": flag(obj, "CKA_DECRYPT"), "deterministic": True}
    if cls == CKO_SECRET_KEY and ktype == CKK_GENERIC_SECRET and flag(obj, "CKA_SIGN"):
        if allowed(obj, CKM_SHA256_HMAC):
            return {"kind": "mac", "mechanism": CKM_SHA256_HMAC, "input": MESSAGE.hex(),
                    "deterministic": True}
    return None


def mech_of(hsm, op):
    iv = bytes.fromhex(op["iv"]) if op.get("iv") else None
    return hsm.P.Mechanism(op["mechanism"], iv)


def p11_call(hsm, fn, *args):
    """(result, None) or (None, "CKR_..."): a refusal is a finding, not a crash."""
    try:
        return fn(*args), None
    except hsm.P.PyKCS11Error as e:
        return None, hsm.rv_name(e.value)


def perform(hsm, session, objects, key, op):
    """Runs a planned operation now: {"output": hex, "error": None} or
    {"output": None, "error": "CKR_..."}."""
    h = objects[key]["handle"]
    data = bytes.fromhex(op["input"])
    out, err = None, None
    if op["kind"] in ("sign", "mac"):
        out, err = p11_call(hsm, session.sign, h, data, mech_of(hsm, op))
    elif op["kind"] == "encrypt":
        out, err = p11_call(hsm, session.encrypt, h, data, mech_of(hsm, op))
    return {"output": bytes(out).hex() if out is not None else None, "error": err}


def softhsm_verify(hsm, session, objects, key, op, output):
    """SoftHSM's own C_Verify / C_Decrypt of an output: True, False or an
    error name; None when there is nothing to verify with."""
    data, out = bytes.fromhex(op["input"]), bytes.fromhex(output)
    if op["kind"] == "sign":
        if op.get("public") not in objects:
            return None
        h = objects[op["public"]]["handle"]
        ok, err = p11_call(hsm, session.verify, h, data, out, mech_of(hsm, op))
    elif op["kind"] == "mac":
        ok, err = p11_call(hsm, session.verify, objects[key]["handle"], data,
                           out, mech_of(hsm, op))
    elif op["kind"] == "encrypt" and op.get("decrypt"):
        got, err = p11_call(hsm, session.decrypt, objects[key]["handle"], out,
                            mech_of(hsm, op))
        ok = got is not None and bytes(got) == data
    else:
        return None
    return err if err else bool(ok)


# python3-cryptography: the judge that is not SoftHSM.

def python_verify(objects, key, op, output):
    """Verifies a signature with the public values recorded in objects
    (the public key object, else the RSA private key's own CKA_MODULUS and
    CKA_PUBLIC_EXPONENT, and the certificate with the key's id): a list of
    (what, ok) pairs."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
    from cryptography import x509
    sig, data = bytes.fromhex(output), bytes.fromhex(op["input"])
    checks = []
    pub_obj = objects.get(op.get("public"))
    priv = objects[key]
    keys = []
    if op["mechanism"] == CKM_SHA256_RSA_PKCS:
        src = pub_obj if pub_obj and value(pub_obj, "CKA_MODULUS") else priv
        n, e = value(src, "CKA_MODULUS"), value(src, "CKA_PUBLIC_EXPONENT")
        if n and e:
            keys.append(("CKA_MODULUS/CKA_PUBLIC_EXPONENT",
                         rsa.RSAPublicNumbers(int.from_bytes(e, "big"),
                                              int.from_bytes(n, "big")).public_key()))
    elif op["mechanism"] == CKM_ECDSA and pub_obj:
        params, point = value(pub_obj, "CKA_EC_PARAMS"), value(pub_obj, "CKA_EC_POINT")
        curve = EC_CURVES.get(params.hex() if params else "", (None,))[0]
        if curve and point:
            keys.append(("CKA_EC_POINT", ec.EllipticCurvePublicKey.from_encoded_point(
                getattr(ec, curve)(), der_octet_string(point))))
    cert = objects.get(op.get("certificate"))
    if cert and value(cert, "CKA_VALUE"):
        keys.append(("certificate", x509.load_der_x509_certificate(value(cert, "CKA_VALUE"))
                     .public_key()))
    for what, pub in keys:
        try:
            if op["mechanism"] == CKM_SHA256_RSA_PKCS:
                pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
            else:
                half = len(sig) // 2
                der = utils.encode_dss_signature(int.from_bytes(sig[:half], "big"),
                                                 int.from_bytes(sig[half:], "big"))
                pub.verify(der, data, ec.ECDSA(utils.Prehashed(getattr(hashes, op["hash"])())))
            checks.append((what, True))
        except (InvalidSignature, ValueError, TypeError):
            checks.append((what, False))
    return checks


def der_octet_string(raw):
    """CKA_EC_POINT is a DER OCTET STRING around 04||X||Y in SoftHSM 2.6;
    a bare point is taken as it is."""
    if len(raw) > 2 and raw[0] == 0x04:
        if raw[1] < 0x80 and raw[1] == len(raw) - 2:
            return raw[2:]
        if raw[1] == 0x81 and len(raw) > 3 and raw[2] == len(raw) - 3:
            return raw[3:]
    return raw


def python_output(obj, op):
    """What python3-cryptography computes for a deterministic secret-key
    operation from the key's readable CKA_VALUE, or None (sensitive key)."""
    key = value(obj, "CKA_VALUE")
    if not key or op["kind"] not in ("encrypt", "mac"):
        return None
    data = bytes.fromhex(op["input"])
    if op["kind"] == "mac":
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    if op["mechanism"] == CKM_AES_CBC_PAD:
        alg, block = algorithms.AES(key), 128
    else:
        alg, block = algorithms.TripleDES(key), 64
    padder = padding.PKCS7(block).padder()
    padded = padder.update(data) + padder.finalize()
    enc = Cipher(alg, modes.CBC(bytes.fromhex(op["iv"]))).encryptor()
    return (enc.update(padded) + enc.finalize()).hex()


# ---------------------------------------------------------------------------
# snapshot

def snapshot_token(hsm, slot, user_pin):
    """Everything check compares: the token, what a session sees without
    login (public objects), and after a user login every object and one
    operation per key. Problems while recording are returned as a list."""
    problems = []
    hsm.lib.closeAllSessions(slot)
    s = hsm.session(slot)
    public = sorted(read_objects(hsm, s))
    s.login(user_pin)
    try:
        objects = read_objects(hsm, s)
        ops = {}
        for key in sorted(objects):
            op = plan(objects, key)
            if op is None:
                continue
            done = perform(hsm, s, objects, key, op)
            if done["error"]:
                problems.append("%s: %s failed: %s" % (describe(key), op["kind"], done["error"]))
                continue
            op["output"] = done["output"]
            op["softhsm_verify"] = softhsm_verify(hsm, s, objects, key, op, done["output"])
            if op["kind"] == "sign":
                op["python_verify"] = python_verify(objects, key, op, done["output"])
            else:
                op["python_output"] = python_output(objects[key], op)
            problems += recorded_problems(key, op)
            ops[key] = op
    finally:
        s.logout()
        s.closeSession()
    for obj in objects.values():
        del obj["handle"]  # handles are per session; keys identify objects
    return {"format": "p11check-snapshot", "version": 1, "token": token_record(hsm, slot),
            "public_objects": public, "objects": objects, "operations": ops}, problems


def recorded_problems(key, op):
    """A snapshot must itself be sound: what it records has to verify."""
    out = []
    if op.get("softhsm_verify") not in (True, None):
        out.append("%s: SoftHSM does not verify/decrypt its own %s: %s"
                   % (describe(key), op["kind"], op["softhsm_verify"]))
    for what, ok in op.get("python_verify", []):
        if not ok:
            out.append("%s: python3-cryptography rejects the signature (%s)"
                       % (describe(key), what))
    if op.get("python_output") not in (None, op["output"]):
        out.append("%s: python3-cryptography computes another %s" % (describe(key), op["kind"]))
    return out


def cmd_snapshot(args):
    need_softhsm()
    hsm = SoftHSM(store_root(args.tokendir))
    try:
        snap, problems = snapshot_token(hsm, hsm.slot(args.label), pin_arg(args.userpin))
    except (P11Failure, hsm.P.PyKCS11Error) as e:
        print("p11check snapshot: %s" % e, file=sys.stderr)
        return 1
    finally:
        hsm.close()
    # 0600: readable keys' CKA_VALUE is in it.
    with os.fdopen(os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        json.dump(snap, fh, indent=1, sort_keys=True)
        fh.write("\n")
    for p in problems:
        print("FAIL: " + p, file=sys.stderr)
    print("snapshot: %d objects (%d public), %d operations recorded%s"
          % (len(snap["objects"]), len(snap["public_objects"]), len(snap["operations"]),
             ", %d problems" % len(problems) if problems else ""))
    return 1 if problems else 0


# ---------------------------------------------------------------------------
# check

class Checks:
    """Counts results; prints each failure on one line."""

    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: " + " ".join(str(what).split()), flush=True)
        return ok


def compare_attributes(C, before, after, key):
    """Every attribute readable before reads the same now, and none appears."""
    b, a = before["attributes"], after["attributes"]
    for name in sorted(set(b) | set(a)):
        if name not in a:
            C.check(False, "%s %s: gone (was %s)" % (describe(key), name, short(b[name])))
        elif name not in b:
            C.check(False, "%s %s: new (now %s)" % (describe(key), name, short(a[name])))
        else:
            C.check(a[name] == b[name], "%s %s: now %s, before %s"
                    % (describe(key), name, short(a[name]), short(b[name])))


def short(rec):
    """A record for a message: values over 16 bytes (key material among
    them) as their length and a SHA-256 prefix, enough to tell them apart."""
    if isinstance(rec, dict) and rec.get("hex") and len(rec["hex"]) > 32:
        raw = bytes.fromhex(rec["hex"])
        return "%d bytes sha256:%s" % (len(raw), hashlib.sha256(raw).hexdigest()[:16])
    text = json.dumps(rec, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def compare_objects(C, before, after):
    """The same objects by (class, label, id), 1:1, with equal attributes."""
    for key in sorted(set(before) - set(after)):
        C.check(False, "%s: object missing (not found through PKCS#11)" % describe(key))
    for key in sorted(set(after) - set(before)):
        C.check(False, "%s: object not in the snapshot" % describe(key))
    for key in sorted(set(before) & set(after)):
        compare_attributes(C, before[key], after[key], key)


def check_operation(C, hsm, session, before, objects, key, op):
    """Replays BEFORE's operation on the key found now and judges it by
    SoftHSM and by python3-cryptography, always from BEFORE's values."""
    where = "%s %s" % (describe(key), op["kind"])
    if not C.check(key in objects, "%s: key missing, cannot %s" % (where, op["kind"])):
        return
    done = perform(hsm, session, objects, key, op)
    if not C.check(done["error"] is None, "%s: SoftHSM refuses: %s" % (where, done["error"])):
        return
    out = done["output"]
    if op["deterministic"]:
        C.check(out == op["output"], "%s: output differs from the snapshot's" % where)
    if op["kind"] == "sign" and op.get("public") is not None:
        C.check(softhsm_verify(hsm, session, objects, key, op, out) is True,
                "%s: SoftHSM's public key %s does not verify the signature made now"
                % (where, describe(op["public"])))
        C.check(softhsm_verify(hsm, session, objects, key, op, op["output"]) is True,
                "%s: SoftHSM's public key does not verify the snapshot's signature" % where)
    elif op["kind"] in ("mac", "encrypt") and op.get("softhsm_verify") is not None:
        C.check(softhsm_verify(hsm, session, objects, key, op, op["output"]) is True,
                "%s: SoftHSM does not %s the snapshot's output now"
                % (where, "verify" if op["kind"] == "mac" else "decrypt"))
    if op["kind"] == "sign":
        results = python_verify(before, key, op, out)
        C.check(results or op.get("public") is None,
                "%s: no public values in the snapshot to verify with" % where)
        for what, ok in results:
            C.check(ok, "%s: python3-cryptography rejects the signature made now (snapshot's %s)"
                    % (where, what))
    elif op.get("python_output") is not None:
        C.check(out == op["python_output"],
                "%s: differs from python3-cryptography with the snapshot's CKA_VALUE" % where)


def check_logins(C, hsm, slot, so_pin, user_pin, wrong_pins):
    """User and SO PINs are accepted, each wrong PIN refused for both
    roles. Wrong PINs come last: a failed login changes token flags."""
    for role, pin, so in (("user", user_pin, False), ("SO", so_pin, True)):
        rv = hsm.login_rv(slot, pin, so)
        C.check(rv == CKR_OK, "login as %s with the %s PIN: %s" % (role, role, hsm.rv_name(rv)))
    for i, pin in enumerate(wrong_pins, 1):
        for role, so in (("user", False), ("SO", True)):
            rv = hsm.login_rv(slot, pin, so)
            C.check(rv == CKR_PIN_INCORRECT, "login as %s with wrong PIN #%d: %s, want "
                    "CKR_PIN_INCORRECT" % (role, i, hsm.rv_name(rv)))


def check_token(C, hsm, slot, snap, so_pin, user_pin, wrong_pins):
    before = snap["objects"]
    token = token_record(hsm, slot)
    for field in sorted(snap["token"]):
        C.check(token.get(field) == snap["token"][field], "token %s: now %r, before %r"
                % (field, token.get(field), snap["token"][field]))
    hsm.lib.closeAllSessions(slot)
    s = hsm.session(slot)
    public = sorted(read_objects(hsm, s))
    C.check(public == snap["public_objects"], "objects seen without login: now %s, before %s"
            % ([describe(k) for k in public], [describe(k) for k in snap["public_objects"]]))
    _, err = p11_call(hsm, s.login, user_pin)
    if C.check(err is None, "user login: %s" % err):
        objects = read_objects(hsm, s)
        compare_objects(C, before, objects)
        for key, op in sorted(snap["operations"].items()):
            check_operation(C, hsm, s, before, objects, key, op)
        s.logout()
    s.closeSession()
    check_logins(C, hsm, slot, so_pin, user_pin, wrong_pins)


def cmd_check(args):
    need_softhsm()
    with open(args.before) as fh:
        snap = json.load(fh)
    if snap.get("format") != "p11check-snapshot":
        print("p11check check: %s is not a p11check snapshot" % args.before, file=sys.stderr)
        return 2
    C = Checks()
    hsm = SoftHSM(store_root(args.tokendir))
    try:
        slot = hsm.slot(args.label)
        check_token(C, hsm, slot, snap, pin_arg(args.sopin), pin_arg(args.userpin),
                    [pin_arg(p) for p in args.wrong_pin])
    except P11Failure as e:
        C.check(False, str(e))
    except hsm.P.PyKCS11Error as e:
        C.check(False, "PKCS#11: %s" % e)
    finally:
        hsm.close()
    print("%d passed, %d failed" % (C.passed, C.failed))
    return 0 if C.failed == 0 and C.passed > 0 else 1


# ---------------------------------------------------------------------------
# make-store

def run(argv, env, what):
    """A tool's run; its output is shown only when it fails (none of them
    echo PINs)."""
    r = subprocess.run(argv, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise P11Failure("%s failed (exit %d): %s" % (what, r.returncode,
                                                      (r.stderr or r.stdout).strip()))
    return r


def make_tool_objects(conf, workdir):
    """The objects other tools make: the token (softhsm2-util), an X.509
    certificate and its imported RSA key (openssl, pkcs11-tool
    --write-object) and a secret key from pkcs11-tool --keygen, which is
    public (CKA_PRIVATE false) and so stored in plaintext."""
    pin_env = "P11CHECK_USER_PIN"
    env = dict(os.environ, SOFTHSM2_CONF=conf, **{pin_env: EVERY_USER_PIN})
    run(["softhsm2-util", "--init-token", "--free", "--label", EVERY_LABEL,
         "--so-pin", EVERY_SO_PIN, "--pin", EVERY_USER_PIN], env, "softhsm2-util --init-token")
    key_pem, cert_pem = os.path.join(workdir, "key.pem"), os.path.join(workdir, "cert.pem")
    key_der, cert_der = os.path.join(workdir, "key.der"), os.path.join(workdir, "cert.der")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
         "-subj", "/CN=tokenfs every-object store", "-keyout", key_pem, "-out", cert_pem],
        env, "openssl req")
    run(["openssl", "x509", "-in", cert_pem, "-outform", "DER", "-out", cert_der], env,
        "openssl x509")
    run(["openssl", "pkey", "-in", key_pem, "-outform", "DER", "-out", key_der], env,
        "openssl pkey")
    tool = ["pkcs11-tool", "--module", MODULE, "--token-label", EVERY_LABEL,
            "--login", "--pin", "env:" + pin_env]
    run(tool + ["--write-object", cert_der, "--type", "cert", "--id", "20",
                "--label", "cert-every"], env, "pkcs11-tool --write-object cert")
    run(tool + ["--write-object", key_der, "--type", "privkey", "--id", "20", "--usage-sign",
                "--label", "cert-every-key"], env, "pkcs11-tool --write-object privkey")
    run(tool + ["--keygen", "--key-type", "AES:32", "--id", "21", "--usage-decrypt",
                "--label", "aes-keygen-public"], env, "pkcs11-tool --keygen")


def make_pkcs11_objects(hsm):
    """The objects made through PyKCS11: key pairs, secret keys of each
    type, data objects; with templates and allowed-mechanism lists. Returns
    the labels made."""
    P = hsm.P
    slot = hsm.slot(EVERY_LABEL)
    s = hsm.session(slot, rw=True)
    s.login(EVERY_USER_PIN)
    low, made = hsm.lib.lib, []
    tok = [(P.CKA_TOKEN, True)]

    def ok(rv, label):
        if rv != CKR_OK:
            raise P11Failure("creating %s: %s" % (label, hsm.rv_name(rv)))
        made.append(label)

    def key(mech, label, pairs):
        h = P.LowLevel.CK_OBJECT_HANDLE()
        ok(low.C_GenerateKey(s.session, P.Mechanism(mech, None).to_native(),
                             template(P, tok + [(P.CKA_LABEL, label)] + pairs), h), label)

    def pair(mech, label, pub, priv):
        hp, hq = P.LowLevel.CK_OBJECT_HANDLE(), P.LowLevel.CK_OBJECT_HANDLE()
        ok(low.C_GenerateKeyPair(s.session, P.Mechanism(mech, None).to_native(),
                                 template(P, tok + [(P.CKA_LABEL, label + "-pub")] + pub),
                                 template(P, tok + [(P.CKA_LABEL, label)] + priv), hp, hq), label)

    def obj(label, pairs):
        h = P.LowLevel.CK_OBJECT_HANDLE()
        ok(low.C_CreateObject(s.session, template(P, tok + [(P.CKA_LABEL, label)] + pairs), h),
           label)

    hidden = [(P.CKA_PRIVATE, True), (P.CKA_SENSITIVE, True), (P.CKA_EXTRACTABLE, False)]
    readable = [(P.CKA_PRIVATE, True), (P.CKA_SENSITIVE, False), (P.CKA_EXTRACTABLE, True)]
    pair(P.CKM_RSA_PKCS_KEY_PAIR_GEN, "rsa2048",
         [(P.CKA_PRIVATE, False), (P.CKA_VERIFY, True), (P.CKA_ENCRYPT, True), (P.CKA_ID, b"\x01"),
          (P.CKA_MODULUS_BITS, 2048), (P.CKA_PUBLIC_EXPONENT, b"\x01\x00\x01"), (P.CKA_WRAP, True),
          (P.CKA_WRAP_TEMPLATE, [(P.CKA_CLASS, P.CKO_SECRET_KEY), (P.CKA_KEY_TYPE, P.CKK_AES)])],
         hidden + [(P.CKA_SIGN, True), (P.CKA_DECRYPT, True), (P.CKA_ID, b"\x01")])
    pair(P.CKM_EC_KEY_PAIR_GEN, "ec-p256",
         [(P.CKA_PRIVATE, False), (P.CKA_VERIFY, True), (P.CKA_ID, b"\x02"),
          (P.CKA_EC_PARAMS, bytes.fromhex("06082a8648ce3d030107"))],
         hidden + [(P.CKA_SIGN, True), (P.CKA_DERIVE, True), (P.CKA_ID, b"\x02"),
                   (P.CKA_UNWRAP_TEMPLATE, [(P.CKA_CLASS, P.CKO_SECRET_KEY),
                                            (P.CKA_KEY_TYPE, P.CKK_AES), (P.CKA_VALUE_LEN, 32)]),
                   (P.CKA_ALLOWED_MECHANISMS, mechanisms(P.CKM_ECDSA, P.CKM_ECDH1_DERIVE))])
    pair(P.CKM_EC_KEY_PAIR_GEN, "ec-p384-readable",
         [(P.CKA_PRIVATE, True), (P.CKA_VERIFY, True), (P.CKA_ID, b"\x03"),
          (P.CKA_EC_PARAMS, bytes.fromhex("06052b81040022"))],
         readable + [(P.CKA_SIGN, True), (P.CKA_ID, b"\x03")])
    key(P.CKM_AES_KEY_GEN, "aes256-readable", readable + [
        (P.CKA_VALUE_LEN, 32), (P.CKA_ENCRYPT, True), (P.CKA_DECRYPT, True), (P.CKA_ID, b"\x10"),
        (P.CKA_ALLOWED_MECHANISMS, mechanisms(P.CKM_AES_CBC_PAD, P.CKM_AES_GCM))])
    key(P.CKM_AES_KEY_GEN, "aes256-wrap", hidden + [
        (P.CKA_VALUE_LEN, 32), (P.CKA_ENCRYPT, True), (P.CKA_DECRYPT, True), (P.CKA_WRAP, True),
        (P.CKA_UNWRAP, True), (P.CKA_ID, b"\x11"),
        (P.CKA_WRAP_TEMPLATE, [(P.CKA_CLASS, P.CKO_SECRET_KEY), (P.CKA_EXTRACTABLE, True)]),
        (P.CKA_UNWRAP_TEMPLATE, [(P.CKA_LABEL, "unwrapped-é".encode()), (P.CKA_SENSITIVE, True),
                                 (P.CKA_KEY_TYPE, P.CKK_AES)])])
    key(P.CKM_GENERIC_SECRET_KEY_GEN, "hmac-sensitive", hidden + [
        (P.CKA_VALUE_LEN, 32), (P.CKA_SIGN, True), (P.CKA_VERIFY, True), (P.CKA_ID, b"\x12"),
        (P.CKA_ALLOWED_MECHANISMS, mechanisms(P.CKM_SHA256_HMAC))])
    obj("hmac-imported", readable + [
        (P.CKA_CLASS, P.CKO_SECRET_KEY), (P.CKA_KEY_TYPE, P.CKK_GENERIC_SECRET),
        (P.CKA_SIGN, True), (P.CKA_VERIFY, True), (P.CKA_ID, b"\x13"),
        (P.CKA_VALUE, hashlib.sha256(b"p11check hmac-imported").digest())])
    # getMechanismList gives names; DES3 exists only if SoftHSM's OpenSSL has it.
    if "CKM_DES3_KEY_GEN" in hsm.lib.getMechanismList(slot):
        key(P.CKM_DES3_KEY_GEN, "des3", hidden + [
            (P.CKA_ENCRYPT, True), (P.CKA_DECRYPT, True), (P.CKA_ID, b"\x14")])
    obj("données-privées", [
        (P.CKA_CLASS, P.CKO_DATA), (P.CKA_PRIVATE, True), (P.CKA_APPLICATION, b"p11check"),
        (P.CKA_OBJECT_ID, bytes.fromhex("06092b0601040182e47e01")),
        (P.CKA_VALUE, bytes(range(256)))])
    obj("data-public", [
        (P.CKA_CLASS, P.CKO_DATA), (P.CKA_PRIVATE, False), (P.CKA_APPLICATION, b"p11check"),
        (P.CKA_VALUE, b"\x00\xffpublic data\x80")])
    s.logout()
    s.closeSession()
    return made


def cmd_make_store(args):
    need_softhsm("softhsm2-util", "pkcs11-tool", "openssl")
    tokendir = os.path.abspath(args.tokendir)
    if os.path.exists(tokendir) and os.listdir(tokendir):
        print("p11check make-store: %s is not empty" % tokendir, file=sys.stderr)
        return 2
    os.makedirs(tokendir, 0o700, exist_ok=True)
    confdir, conf = write_conf(tokendir)
    workdir = tempfile.mkdtemp(prefix="p11check-make.")
    try:
        # Other tools first, then this process loads SoftHSM once, last, so
        # no two SoftHSM instances ever have the store open together.
        make_tool_objects(conf, workdir)
        hsm = SoftHSM(tokendir)
        try:
            made = make_pkcs11_objects(hsm)
        finally:
            hsm.close()
    except P11Failure as e:
        print("p11check make-store: %s" % e, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(confdir, ignore_errors=True)
    print("make-store: token %r in %s: cert-every, cert-every-key, aes-keygen-public, %s"
          % (EVERY_LABEL, tokendir, ", ".join(made)))
    return 0


# ---------------------------------------------------------------------------

def main(argv):
    ap = argparse.ArgumentParser(prog="p11check.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make-store", help="a fresh store with every object kind")
    p.add_argument("tokendir")
    p.set_defaults(fn=cmd_make_store)
    p = sub.add_parser("snapshot", help="record what SoftHSM sees")
    for a in ("tokendir", "label", "userpin", "out"):
        p.add_argument(a)
    p.set_defaults(fn=cmd_snapshot)
    p = sub.add_parser("check", help="compare a rewritten store with a snapshot")
    for a in ("tokendir", "label", "sopin", "userpin", "before"):
        p.add_argument(a)
    p.add_argument("--wrong-pin", action="append", default=[], metavar="PIN",
                   help="must be refused for the user and the SO (repeatable)")
    p.set_defaults(fn=cmd_check)
    args = ap.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
