#!/usr/bin/python3
"""What real SoftHSM 2.6.1 does in normal use must verify clean, and the
damage its API cannot make must not.

Part 1 (no false positives): through PyKCS11 (and ctypes for C_CopyObject,
which PyKCS11 lacks) a fresh token gets a key of every type SoftHSM 2.6.1
generates (AES 128/192/256, DES2, DES3, generic secret, RSA, EC P-256 and
P-384, Ed25519 and Ed448, DSA and DH with their domain parameters), a key
made by C_UnwrapKey (CKA_VALUE_LEN stays 0), copies of a private and a
public key by C_CopyObject, C_SetAttributeValue on both halves of a pair,
a data object, softhsm2-util --import of a PKCS#8 key, a user PIN change,
an SO PIN change, C_InitPIN and failed logins of both roles.
`verify-integrity --user-pin` must then report no error and no warning
except one real exposure made on purpose: a secret key with CKA_PRIVATE
false (key.plaintext, a warning).

Part 2 (no false negatives): in copies of that store, tools/tests/
damage_value.py empties CKA_EC_POINT of the EC public key and CKA_MODULUS
of the RSA public key, puts garbage, a cut and nothing into the EC private
key's CKA_EC_PARAMS, and turns an AES key into what a failed C_GenerateKey
leaves (CKA_TOKEN false, empty CKA_VALUE). Each must give its finding at
its severity; dump must show a decode error for the bad parameters.

usage: softhsm_behaviours.py   (TOKENFS in the environment)
"""
import ctypes
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checks import expect as check, finish  # noqa: E402
import softhsm_session  # noqa: E402
import tfsdecode  # noqa: E402

TOKENFS = os.environ["TOKENFS"]
SO, USER = "so-behaviour-1", "user-behaviour-1"



class CKAttribute(ctypes.Structure):
    _fields_ = [("type", ctypes.c_ulong), ("pValue", ctypes.c_void_p),
                ("ulValueLen", ctypes.c_ulong)]


def copy_object(session, obj, label):
    """C_CopyObject with a new label, straight into the module PyKCS11 loaded."""
    so = ctypes.CDLL(softhsm_session.MODULE)
    value = ctypes.create_string_buffer(label.encode(), len(label))
    tmpl = (CKAttribute * 1)(CKAttribute(0x3, ctypes.cast(value, ctypes.c_void_p), len(label)))
    new = ctypes.c_ulong()
    rv = so.C_CopyObject(ctypes.c_ulong(int(session.session.value())),
                         ctypes.c_ulong(obj.value()), tmpl, ctypes.c_ulong(1),
                         ctypes.byref(new))
    if rv != 0:
        raise RuntimeError(f"C_CopyObject: 0x{rv:x}")


def ulong(n):
    """A CK_ULONG for attributes PyKCS11 does not know to be numbers."""
    return list(struct.pack("=L" if ctypes.sizeof(ctypes.c_ulong) == 4 else "=Q", n))


def make_store(tokendir):
    import PyKCS11 as P
    conf = os.path.join(os.path.dirname(tokendir), "softhsm2.conf")
    softhsm_session.init_token(tokendir, conf, "behave", SO, USER)
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    P, s = softhsm_session.open_session(tokendir, "behave")
    s.login(USER)
    T, F = P.CK_TRUE, P.CK_FALSE
    made = []

    def secret(label, ktype, mech, length=None, private=T, extra=()):
        t = [(P.CKA_CLASS, P.CKO_SECRET_KEY), (P.CKA_KEY_TYPE, ktype), (P.CKA_TOKEN, T),
             (P.CKA_PRIVATE, private), (P.CKA_SENSITIVE, T), (P.CKA_LABEL, label),
             (P.CKA_ID, label.encode())] + list(extra)
        if length:
            t.append((P.CKA_VALUE_LEN, length))
        made.append(label)
        return s.generateKey(t, P.Mechanism(mech))

    secret("aes128", P.CKK_AES, P.CKM_AES_KEY_GEN, 16)
    secret("aes192", P.CKK_AES, P.CKM_AES_KEY_GEN, 24)
    wrapkey = secret("aes256", P.CKK_AES, P.CKM_AES_KEY_GEN, 32,
                     extra=[(P.CKA_WRAP, T), (P.CKA_UNWRAP, T)])
    secret("des2", P.CKK_DES2, P.CKM_DES2_KEY_GEN)
    secret("des3", P.CKK_DES3, P.CKM_DES3_KEY_GEN)
    secret("generic", P.CKK_GENERIC_SECRET, P.CKM_GENERIC_SECRET_KEY_GEN, 32)
    # The one real exposure: a secret key anyone who reads the file has.
    secret("exposed", P.CKK_AES, P.CKM_AES_KEY_GEN, 16, private=F)
    # C_UnwrapKey: SoftHSM refuses CKA_VALUE_LEN here and leaves it 0.
    inner = secret("to-wrap", P.CKK_AES, P.CKM_AES_KEY_GEN, 16,
                   extra=[(P.CKA_EXTRACTABLE, T)])
    wrapped = bytes(s.wrapKey(wrapkey, inner, P.Mechanism(P.CKM_AES_KEY_WRAP)))
    s.unwrapKey(wrapkey, wrapped,
                [(P.CKA_CLASS, P.CKO_SECRET_KEY), (P.CKA_KEY_TYPE, P.CKK_AES),
                 (P.CKA_TOKEN, T), (P.CKA_PRIVATE, T), (P.CKA_SENSITIVE, T),
                 (P.CKA_LABEL, "unwrapped"), (P.CKA_ID, b"unwrapped")],
                P.Mechanism(P.CKM_AES_KEY_WRAP))
    made.append("unwrapped")

    def pair(label, mech, pub_extra, priv_extra=()):
        pub = [(P.CKA_TOKEN, T), (P.CKA_PRIVATE, F), (P.CKA_LABEL, label),
               (P.CKA_ID, label.encode())] + list(pub_extra)
        priv = [(P.CKA_TOKEN, T), (P.CKA_PRIVATE, T), (P.CKA_SENSITIVE, T),
                (P.CKA_LABEL, label), (P.CKA_ID, label.encode())] + list(priv_extra)
        made.append(label)
        return s.generateKeyPair(pub, priv, P.Mechanism(mech))

    rsa_pub, rsa_priv = pair("rsa", P.CKM_RSA_PKCS_KEY_PAIR_GEN,
                             [(P.CKA_MODULUS_BITS, 2048), (P.CKA_PUBLIC_EXPONENT, (1, 0, 1))])
    pair("ec256", P.CKM_EC_KEY_PAIR_GEN,
         [(P.CKA_EC_PARAMS, bytes.fromhex("06082a8648ce3d030107"))])
    pair("ec384", P.CKM_EC_KEY_PAIR_GEN, [(P.CKA_EC_PARAMS, bytes.fromhex("06052b81040022"))])
    pair("ed25519", P.CKM_EC_EDWARDS_KEY_PAIR_GEN,
         [(P.CKA_EC_PARAMS, bytes.fromhex("06032b6570"))])
    pair("ed448", P.CKM_EC_EDWARDS_KEY_PAIR_GEN,
         [(P.CKA_EC_PARAMS, bytes.fromhex("06032b6571"))])
    # DSA and DH from domain parameters SoftHSM generates (kept as objects).
    dsa = s.generateKey([(P.CKA_CLASS, P.CKO_DOMAIN_PARAMETERS), (P.CKA_KEY_TYPE, P.CKK_DSA),
                         (P.CKA_TOKEN, T), (P.CKA_PRIME_BITS, ulong(1024)), (P.CKA_LABEL, "dsa-params")],
                        P.Mechanism(P.CKM_DSA_PARAMETER_GEN))
    p, q, g = s.getAttributeValue(dsa, [P.CKA_PRIME, P.CKA_SUBPRIME, P.CKA_BASE])
    pair("dsa", P.CKM_DSA_KEY_PAIR_GEN,
         [(P.CKA_PRIME, bytes(p)), (P.CKA_SUBPRIME, bytes(q)), (P.CKA_BASE, bytes(g))])
    dh = s.generateKey([(P.CKA_CLASS, P.CKO_DOMAIN_PARAMETERS), (P.CKA_KEY_TYPE, P.CKK_DH),
                        (P.CKA_TOKEN, T), (P.CKA_PRIME_BITS, ulong(1024)), (P.CKA_LABEL, "dh-params")],
                       P.Mechanism(P.CKM_DH_PKCS_PARAMETER_GEN))
    p, g = s.getAttributeValue(dh, [P.CKA_PRIME, P.CKA_BASE])
    pair("dh", P.CKM_DH_PKCS_KEY_PAIR_GEN, [(P.CKA_PRIME, bytes(p)), (P.CKA_BASE, bytes(g))])
    # C_CopyObject of both halves; C_SetAttributeValue on both.
    copy_object(s, rsa_priv, "rsa-copy")
    copy_object(s, rsa_pub, "rsa-copy")
    s.setAttributeValue(rsa_pub, [(P.CKA_LABEL, "rsa-renamed")])
    s.setAttributeValue(rsa_priv, [(P.CKA_LABEL, "rsa-renamed"), (P.CKA_ID, b"rsa-new-id")])
    s.setAttributeValue(rsa_pub, [(P.CKA_ID, b"rsa-new-id")])
    s.createObject([(P.CKA_CLASS, P.CKO_DATA), (P.CKA_TOKEN, T), (P.CKA_PRIVATE, T),
                    (P.CKA_LABEL, "data"), (P.CKA_APPLICATION, "behaviours"),
                    (P.CKA_VALUE, b"some data")])
    # PINs: change the user's, fail logins of both roles, C_InitPIN, SO change.
    s.setPin(USER, USER + "x")
    s.logout()
    for role, pin in ((P.CKU_USER, "wrong-user"), (P.CKU_SO, "wrong-so")):
        try:
            s.login(pin, role)
        except P.PyKCS11Error:
            pass
    s.login(SO, P.CKU_SO)
    s.initPin(USER)
    s.setPin(SO, SO + "x")
    s.logout()
    s.login(USER)
    s.logout()
    s.closeSession()
    # softhsm2-util --import of a PKCS#8 key (it makes the public half too).
    pem = os.path.join(os.path.dirname(tokendir), "import.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", pem], check=True,
                   stderr=subprocess.DEVNULL)
    subprocess.run(["softhsm2-util", "--import", pem, "--token", "behave", "--label",
                    "imported", "--id", "0a0b", "--pin", USER], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return made


def verify(tokendir, *args):
    r = subprocess.run([TOKENFS, "verify-integrity", "--format", "json", "--user-pin",
                        "env:TFS_USER_PIN", *args, tokendir], capture_output=True, text=True,
                       env=dict(os.environ, TFS_USER_PIN=USER))
    doc = json.loads(r.stdout) if r.stdout else {"tokens": []}
    found = [f for t in doc["tokens"] for f in t.get("findings", [])]
    return r.returncode, found, r.stderr


def labels(tokdir):
    """{label: object file} with the user PIN."""
    tok = tfsdecode.decode_token(tokdir, user_pin=USER)
    out = {}
    for name, obj in tok["objects"].items():
        a = obj.last(0x3)
        text = (a.plaintext if a.plaintext is not None else a.value) if a else b""
        cls = obj.last(0x0).value
        out[(text.decode(), cls)] = os.path.join(tokdir, name)
    return out


def damaged(base, work, name, edits):
    """A copy of the token with edits applied: [(label, class, args...)]."""
    tok = os.path.join(work, name)
    shutil.copytree(base, tok)
    files = labels(tok)
    for label, cls, *args in edits:
        path = files[(label, cls)]
        subprocess.run([sys.executable, os.path.join(HERE, "damage_value.py"), args[0], path,
                        *args[1:]], check=True, env=dict(os.environ, TFS_USER_PIN=USER))
    return tok


def main():
    skip = softhsm_session.missing()
    if skip is not None:
        return skip
    work = tempfile.mkdtemp()
    try:
        tokendir = os.path.join(work, "tokens")
        made = make_store(tokendir)
        base = os.path.join(tokendir, os.listdir(tokendir)[0])
        # ---- part 1: SoftHSM's own behaviour verifies clean ----
        rc, found, err = verify(base)
        loud = [(f["code"], f["severity"], f["message"]) for f in found
                if f["severity"] in ("warning", "error")]
        expected = [x for x in loud if x[0] == "key.plaintext"]
        check(f"{len(made)} keys and pairs made ({', '.join(made)})", len(made) >= 16)
        check(f"exactly one real exposure, the CKA_PRIVATE false key: {expected}",
              len(expected) == 1)
        check(f"nothing else at warning or error: {[x for x in loud if x not in expected]}",
              len(loud) == len(expected))
        check(f"verify exit {rc} (1: the exposure is a warning) {err}", rc == 1)
        rc, found, err = verify(base, "--fail-on", "error")
        check(f"--fail-on error: exit {rc}, want 0 {err}", rc == 0)
        # ---- part 2: damage SoftHSM's API cannot make is found ----
        cases = [
            ("ec-point-empty", [("ec256", 2, "--set", "0x181", "")],
             "key.material-empty", "error", 0x181),
            ("modulus-empty", [("rsa-renamed", 2, "--set", "0x120", "")],
             "key.material-empty", "error", 0x120),
            ("params-empty", [("ec384", 3, "--set", "0x180", "")],
             "key.material-empty", "error", 0x180),
            ("params-garbage", [("ec384", 3, "--set", "0x180", "deadbeef00112233",
                                 "TFS_USER_PIN")],
             "key.ec-params-invalid", "error", 0x180),
            ("params-cut", [("ec384", 3, "--set", "0x180", "06052b8104", "TFS_USER_PIN")],
             "key.ec-params-invalid", "error", 0x180),
            ("leftover", [("aes128", 4, "--bool", "0x1", "0"),
                          ("aes128", 4, "--set", "0x11", "")],
             "object.creation-leftover", "warning", 0x11),
        ]
        clean = {(f["code"], f["object"], f["attribute"]) for f in verify(base)[1]}
        for name, edits, code, sev, attr in cases:
            tok = damaged(base, work, name, edits)
            rc, found, err = verify(tok)
            new = [f for f in found if (f["code"], f["object"], f["attribute"]) not in clean
                   and f["severity"] != "info"]
            hit = [f for f in new if f["code"] == code and f["severity"] == sev
                   and f["attribute"] == attr]
            check(f"{name}: {code} ({sev}) at attribute 0x{attr:x}; new findings: "
                  f"{[(f['code'], f['severity'], f['message']) for f in new]} {err}", len(hit) == 1)
            check(f"{name}: exit {rc}, want 1", rc == 1)
            if name.startswith("params-") and name != "params-empty":
                d = subprocess.run([TOKENFS, "dump", "--user-pin", "env:TFS_USER_PIN", tok],
                                   capture_output=True, text=True,
                                   env=dict(os.environ, TFS_USER_PIN=USER))
                lines = d.stdout.splitlines()
                shown = [lines[k + 1].strip() for k, ln in enumerate(lines[:-1])
                         if "CKA_EC_PARAMS" in ln and "not decoded" in lines[k + 1]]
                check(f"{name}: dump shows the decode error: {shown}", len(shown) == 1)
                # Nothing but the defect: the error's unset location was stack bytes.
                check(f"{name}: the decode error has no stray location: {shown}",
                      all(x.startswith("(not decoded: offset ") for x in shown))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
