#!/usr/bin/python3
"""tokenfs export against real SoftHSM 2.6.1 and the OpenSSL CLI.

A fresh store (RSA 2048/3072, EC P-256/P-384/P-521/secp256k1, Ed25519, an
imported RSA key with its certificate, AES and generic secrets, keys marked
unextractable, and a token whose EC private key is paired with a public key
that is not its own) and a copy of testdata/store are exported; then:

- `openssl pkey -pubout` of every exported private key equals the SPKI of
  the public key SoftHSM returns for the pair through PKCS#11 (built by
  python3-cryptography, not by tokenfs);
- a signature made by `openssl pkeyutl` with the exported key verifies in
  SoftHSM (C_Verify) with the token's public key, and a signature SoftHSM
  makes (C_Sign) verifies with `openssl pkeyutl` and the exported public key;
- exported secret keys equal CKA_VALUE as SoftHSM returns it;
- the imported key and certificate come out byte for byte as they went in,
  and the PKCS#12 bundle opens with `openssl pkcs12 -passin` holding them;
- encrypted PEM does not open without the passphrase; plaintext needs
  --no-encrypt; unextractable keys are skipped (exit 1) without the flag;
  a wrong PIN, an existing file, a selector that matches nothing write
  nothing; a mismatched pair is refused;
- no key material, PIN or passphrase appears in any output or error.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import expect as check, finish  # noqa: E402
import softhsm_session  # noqa: E402

TOKENFS = os.environ.get("TOKENFS")
TESTDATA = os.environ.get("TFS_TESTDATA")
USER, SO, PASS = "exp-user-pin", "exp-so-pin", "correct horse 7"
outputs = []   # every stdout/stderr tokenfs printed
secrets = []   # every piece of key material seen



def run(args, env=None, **kw):
    e = dict(os.environ, PIN=USER, PASS=PASS, SOPIN=SO)
    e.update(env or {})
    # A new session has no controlling terminal: a prompt fails at once
    # instead of waiting for a person.
    r = subprocess.run([TOKENFS, "export"] + args, env=e, capture_output=True,
                       start_new_session=True, **kw)
    outputs.append(r.stdout)
    outputs.append(r.stderr)
    return r


OPENSSL_ENV = dict(os.environ, PASS=PASS)


def openssl(*args, data=None):
    return subprocess.run(["openssl"] + list(args), input=data, capture_output=True,
                          env=OPENSSL_ENV)


# ---- the fresh store ----

def make_store(tmp):
    from cryptography.hazmat.primitives.asymmetric import rsa, ec
    from cryptography.hazmat.primitives import serialization, hashes
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    import datetime
    tokendir = os.path.join(tmp, "tokens")
    os.makedirs(tokendir)
    conf = os.path.join(tmp, "softhsm2.conf")
    with open(conf, "w") as f:
        f.write(f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    for label in ("exp", "mismatch"):
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label,
                        "--so-pin", SO, "--pin", USER], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    P, s = softhsm_session.open_session(tokendir, "exp")
    s.login(USER)
    T, F = P.CK_TRUE, P.CK_FALSE
    out_priv = [(P.CKA_TOKEN, T), (P.CKA_PRIVATE, T), (P.CKA_SIGN, T),
                (P.CKA_SENSITIVE, F), (P.CKA_EXTRACTABLE, T)]
    locked_priv = [(P.CKA_TOKEN, T), (P.CKA_PRIVATE, T), (P.CKA_SIGN, T),
                   (P.CKA_SENSITIVE, T), (P.CKA_EXTRACTABLE, F)]
    pub = [(P.CKA_TOKEN, T), (P.CKA_VERIFY, T)]

    def pair(label, kid, mech, pub_extra, priv=out_priv):
        t = [(P.CKA_LABEL, label), (P.CKA_ID, (kid,))]
        s.generateKeyPair(pub + t + pub_extra, priv + t, P.Mechanism(mech))

    rsa_gen = P.CKM_RSA_PKCS_KEY_PAIR_GEN
    pair("rsa2048", 1, rsa_gen, [(P.CKA_MODULUS_BITS, 2048), (P.CKA_PUBLIC_EXPONENT, (1, 0, 1))])
    pair("rsa3072", 2, rsa_gen, [(P.CKA_MODULUS_BITS, 3072), (P.CKA_PUBLIC_EXPONENT, (1, 0, 1))])
    curves = {"p256": "06082a8648ce3d030107", "p384": "06052b81040022",
              "p521": "06052b81040023", "secp256k1": "06052b8104000a"}
    for kid, (name, oid) in enumerate(curves.items(), start=3):
        pair(name, kid, P.CKM_EC_KEY_PAIR_GEN, [(P.CKA_EC_PARAMS, bytes.fromhex(oid))])
    pair("ed25519", 7, P.CKM_EC_EDWARDS_KEY_PAIR_GEN,
         [(P.CKA_EC_PARAMS, bytes.fromhex("06032b6570"))])
    pair("brainpoolP256r1", 15, P.CKM_EC_KEY_PAIR_GEN,
         [(P.CKA_EC_PARAMS, bytes.fromhex("06092b2403030208010107"))])
    pair("ed448", 14, P.CKM_EC_EDWARDS_KEY_PAIR_GEN,
         [(P.CKA_EC_PARAMS, bytes.fromhex("06032b6571"))])
    from cryptography.hazmat.primitives.asymmetric import dsa
    pq = dsa.generate_parameters(key_size=2048).parameter_numbers()

    def b_(i):
        return i.to_bytes((i.bit_length() + 7) // 8, "big")

    pair("dsa", 13, P.CKM_DSA_KEY_PAIR_GEN, [(P.CKA_PRIME, b_(pq.p)), (P.CKA_SUBPRIME, b_(pq.q)),
                                             (P.CKA_BASE, b_(pq.g))])
    secret = [(P.CKA_TOKEN, T), (P.CKA_PRIVATE, T), (P.CKA_CLASS, P.CKO_SECRET_KEY)]
    s.generateKey(secret + [(P.CKA_KEY_TYPE, P.CKK_AES), (P.CKA_VALUE_LEN, 32),
                            (P.CKA_SENSITIVE, F), (P.CKA_EXTRACTABLE, T),
                            (P.CKA_LABEL, "aes"), (P.CKA_ID, (8,))],
                  P.Mechanism(P.CKM_AES_KEY_GEN))
    s.generateKey(secret + [(P.CKA_KEY_TYPE, P.CKK_GENERIC_SECRET), (P.CKA_VALUE_LEN, 32),
                            (P.CKA_SENSITIVE, F), (P.CKA_EXTRACTABLE, T),
                            (P.CKA_LABEL, "hmac/../secret"), (P.CKA_ID, (9,))],
                  P.Mechanism(P.CKM_GENERIC_SECRET_KEY_GEN))
    # Marked never to leave the token.
    pair("locked-rsa", 10, rsa_gen, [(P.CKA_MODULUS_BITS, 2048),
                                     (P.CKA_PUBLIC_EXPONENT, (1, 0, 1))], priv=locked_priv)
    s.generateKey(secret + [(P.CKA_KEY_TYPE, P.CKK_AES), (P.CKA_VALUE_LEN, 16),
                            (P.CKA_SENSITIVE, T), (P.CKA_EXTRACTABLE, F),
                            (P.CKA_LABEL, "locked-aes"), (P.CKA_ID, (11,))],
                  P.Mechanism(P.CKM_AES_KEY_GEN))
    # An RSA key and certificate made by OpenSSL, created as objects.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tokenfs export test")])
    now = datetime.datetime(2026, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(0x1013).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    n = key.private_numbers()

    def b(i):
        return i.to_bytes((i.bit_length() + 7) // 8, "big")

    ident = [(P.CKA_TOKEN, T), (P.CKA_LABEL, "imported"), (P.CKA_ID, (12,))]
    s.createObject(ident + [(P.CKA_CLASS, P.CKO_PRIVATE_KEY), (P.CKA_KEY_TYPE, P.CKK_RSA),
                            (P.CKA_PRIVATE, T), (P.CKA_SIGN, T), (P.CKA_SENSITIVE, F),
                            (P.CKA_EXTRACTABLE, T),
                            (P.CKA_MODULUS, b(n.public_numbers.n)),
                            (P.CKA_PUBLIC_EXPONENT, b(n.public_numbers.e)),
                            (P.CKA_PRIVATE_EXPONENT, b(n.d)), (P.CKA_PRIME_1, b(n.p)),
                            (P.CKA_PRIME_2, b(n.q)), (P.CKA_EXPONENT_1, b(n.dmp1)),
                            (P.CKA_EXPONENT_2, b(n.dmq1)), (P.CKA_COEFFICIENT, b(n.iqmp))])
    s.createObject(ident + [(P.CKA_CLASS, P.CKO_PUBLIC_KEY), (P.CKA_KEY_TYPE, P.CKK_RSA),
                            (P.CKA_VERIFY, T), (P.CKA_MODULUS, b(n.public_numbers.n)),
                            (P.CKA_PUBLIC_EXPONENT, b(n.public_numbers.e))])
    der = cert.public_bytes(serialization.Encoding.DER)
    s.createObject(ident + [(P.CKA_CLASS, P.CKO_CERTIFICATE),
                            (P.CKA_CERTIFICATE_TYPE, P.CKC_X_509),
                            (P.CKA_VALUE, der), (P.CKA_SUBJECT, name.public_bytes())])
    imported = (key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()), der)
    secrets.extend([b(n.d), b(n.p), b(n.q)])
    s.logout()
    s.closeSession()

    # The mismatch token: EC private key A paired (same CKA_ID, same curve)
    # with the public key of B; A's own public key is gone.
    P, m = softhsm_session.open_session(tokendir, "mismatch")
    m.login(USER)
    # A key type with no standard key file: Diffie-Hellman, in the DSA
    # key's group (generating DH parameters takes seconds).
    dhp = pq
    t = [(P.CKA_LABEL, "dh"), (P.CKA_ID, (3,))]
    m.generateKeyPair([(P.CKA_TOKEN, T), (P.CKA_PRIME, b(dhp.p)), (P.CKA_BASE, b(dhp.g))] + t,
                      [(P.CKA_TOKEN, T), (P.CKA_PRIVATE, T), (P.CKA_DERIVE, T),
                       (P.CKA_SENSITIVE, F), (P.CKA_EXTRACTABLE, T)] + t,
                      P.Mechanism(P.CKM_DH_PKCS_KEY_PAIR_GEN))
    for kid in (1, 2):
        t = [(P.CKA_LABEL, f"ec{kid}"), (P.CKA_ID, (kid,))]
        m.generateKeyPair(pub + t + [(P.CKA_EC_PARAMS, bytes.fromhex(curves["p256"]))],
                          out_priv + t, P.Mechanism(P.CKM_EC_KEY_PAIR_GEN))
    pubs = m.findObjects([(P.CKA_CLASS, P.CKO_PUBLIC_KEY)])
    for o in pubs:
        if bytes(m.getAttributeValue(o, [P.CKA_ID])[0]) == b"\x01":
            m.destroyObject(o)
        else:
            m.setAttributeValue(o, [(P.CKA_ID, (1,))])
    m.logout()
    m.closeSession()
    return tokendir, imported


# ---- what SoftHSM says, through PKCS#11 ----

def spki_of(P, s, o):
    """The SubjectPublicKeyInfo DER of a public key object, built by
    python3-cryptography from what SoftHSM returns."""
    from cryptography.hazmat.primitives.asymmetric import rsa, dsa, ed25519, ed448
    from cryptography.hazmat.primitives import serialization
    kt = s.getAttributeValue(o, [P.CKA_KEY_TYPE])[0]
    if kt == P.CKK_DSA:
        p, q, g, y = (int.from_bytes(bytes(v), "big") for v in s.getAttributeValue(
            o, [P.CKA_PRIME, P.CKA_SUBPRIME, P.CKA_BASE, P.CKA_VALUE]))
        k = dsa.DSAPublicNumbers(y, dsa.DSAParameterNumbers(p, q, g)).public_key()
    elif kt == P.CKK_RSA:
        n, e = s.getAttributeValue(o, [P.CKA_MODULUS, P.CKA_PUBLIC_EXPONENT])
        k = rsa.RSAPublicNumbers(int.from_bytes(bytes(e), "big"),
                                 int.from_bytes(bytes(n), "big")).public_key()
    else:
        params, point = (bytes(v) for v in s.getAttributeValue(o, [P.CKA_EC_PARAMS,
                                                                   P.CKA_EC_POINT]))
        raw = point[2:] if point[1] < 0x80 else point[3:]  # DER OCTET STRING
        if kt == P.CKK_EC_EDWARDS and len(raw) == 57:
            k = ed448.Ed448PublicKey.from_public_bytes(raw)
        elif kt == P.CKK_EC_EDWARDS:
            k = ed25519.Ed25519PublicKey.from_public_bytes(raw)
        else:
            from cryptography.hazmat.primitives.asymmetric.ec import (
                EllipticCurvePublicKey, SECP256R1, SECP384R1, SECP521R1, SECP256K1,
                BrainpoolP256R1)
            curve = {"06082a8648ce3d030107": SECP256R1(), "06052b81040022": SECP384R1(),
                     "06052b81040023": SECP521R1(), "06052b8104000a": SECP256K1(),
                     "06092b2403030208010107": BrainpoolP256R1()}[params.hex()]
            k = EllipticCurvePublicKey.from_encoded_point(curve, raw)
    return k.public_bytes(serialization.Encoding.DER,
                          serialization.PublicFormat.SubjectPublicKeyInfo)


def sign_mech(P, kt):
    if kt == P.CKK_RSA:
        return P.Mechanism(P.CKM_SHA256_RSA_PKCS)
    if kt == P.CKK_DSA:
        return P.Mechanism(P.CKM_DSA)
    return P.Mechanism(P.CKM_EDDSA if kt == P.CKK_EC_EDWARDS else P.CKM_ECDSA)


def ecdsa_der_to_raw(sig, size):
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    r, s_ = decode_dss_signature(sig)
    return r.to_bytes(size, "big") + s_.to_bytes(size, "big")


def ecdsa_raw_to_der(sig):
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    h = len(sig) // 2
    return encode_dss_signature(int.from_bytes(sig[:h], "big"), int.from_bytes(sig[h:], "big"))


def pkcs8_der(pem, password=None):
    """A PEM private key as unencrypted PKCS#8 DER, read by python3-cryptography."""
    from cryptography.hazmat.primitives import serialization
    k = serialization.load_pem_private_key(pem, password)
    return k.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def by_uuid(manifest):
    return {i["object_uuid"]: i for i in manifest["items"] if i.get("object_uuid")}


def find_item(manifest, kind, label):
    for i in manifest["items"]:
        if i["kind"] == kind and i["label"] == label:
            return i
    return None


def check_pairs(tokendir, token, pin, out, manifest, tmp, passin):
    """Every private key SoftHSM lists against its exported files."""
    P, s = softhsm_session.open_session(tokendir, token)
    s.login(pin)
    data = b"tokenfs export: sign me"
    msg = os.path.join(tmp, "msg")
    with open(msg, "wb") as f:
        f.write(data)
    import hashlib
    digest = os.path.join(tmp, "digest")
    with open(digest, "wb") as f:
        f.write(hashlib.sha256(data).digest())
    checked = 0
    for priv in s.findObjects([(P.CKA_CLASS, P.CKO_PRIVATE_KEY)]):
        label, kid = s.getAttributeValue(priv, [P.CKA_LABEL, P.CKA_ID])
        kid = bytes(kid)
        kt = s.getAttributeValue(priv, [P.CKA_KEY_TYPE])[0]
        item = next((i for i in manifest["items"] if i["kind"] == "private_key"
                     and i["id"] == kid.hex() and i["label"] == label), None)
        pubs = s.findObjects([(P.CKA_CLASS, P.CKO_PUBLIC_KEY), (P.CKA_ID, kid),
                              (P.CKA_KEY_TYPE, kt)])
        if item is not None and item["status"] == "skipped":
            continue  # the policy; checked by the caller
        if not check(f"{token}/{label}: exported", item is not None and item["status"] == "written"):
            continue
        key = os.path.join(out, item["file"])
        with open(key, "rb") as f:
            head = f.read(40)
        check(f"{label}: encrypted PKCS#8", head.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY"))
        r = openssl("pkey", "-in", key, "-passin", passin, "-pubout", "-outform", "DER")
        check(f"{label}: openssl reads it with the passphrase", r.returncode == 0)
        if pubs:
            check(f"{label}: pkey -pubout equals SoftHSM's public key (SPKI DER)",
                  r.stdout == spki_of(P, s, pubs[0]))
        # The private scalars, for the leak check.
        t = openssl("pkey", "-in", key, "-passin", passin, "-text", "-noout")
        secrets.append(t.stdout)
        # openssl signs with the exported key, SoftHSM verifies.
        sig_file = os.path.join(tmp, "sig")
        ed = kt == P.CKK_EC_EDWARDS
        args = (["-rawin", "-in", msg] if ed else
                ["-rawin", "-digest", "sha256", "-in", msg] if kt == P.CKK_RSA else ["-in", digest])
        
        r = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", key, "-passin", passin,
                            "-out", sig_file] + args, capture_output=True, env=OPENSSL_ENV)
        check(f"{label}: openssl pkeyutl signs", r.returncode == 0)
        with open(sig_file, "rb") as f:
            sig = f.read()
        if pubs:
            if kt == P.CKK_EC:
                point = bytes(s.getAttributeValue(pubs[0], [P.CKA_EC_POINT])[0])
                raw = point[2:] if point[1] < 0x80 else point[3:]
                size = (len(raw) - 1) // 2
                sig_p11, to_sign = ecdsa_der_to_raw(sig, size), hashlib.sha256(data).digest()
            elif kt == P.CKK_DSA:
                size = len(bytes(s.getAttributeValue(pubs[0], [P.CKA_SUBPRIME])[0]))
                sig_p11, to_sign = ecdsa_der_to_raw(sig, size), hashlib.sha256(data).digest()
            else:
                sig_p11, to_sign = sig, data
            try:
                ok = s.verify(pubs[0], to_sign, sig_p11, sign_mech(P, kt))
            except Exception as e:  # CKR_SIGNATURE_INVALID raises
                print("verify:", e, file=sys.stderr)
                ok = False
            check(f"{label}: SoftHSM verifies openssl's signature", ok)
        # SoftHSM signs, openssl verifies with the exported public key.
        pub_item = next((i for i in manifest["items"] if i["kind"] == "public_key"
                         and i["id"] == kid.hex() and pubs), None)
        if pub_item is None:
            continue
        digest_first = kt in (P.CKK_EC, P.CKK_DSA)
        to_sign = hashlib.sha256(data).digest() if digest_first else data
        sig = bytes(s.sign(priv, to_sign, sign_mech(P, kt)))
        if digest_first:
            sig = ecdsa_raw_to_der(sig)
        with open(sig_file, "wb") as f:
            f.write(sig)
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey",
                            os.path.join(out, pub_item["file"]), "-sigfile", sig_file] + args,
                           capture_output=True)
        check(f"{label}: openssl verifies SoftHSM's signature with the exported public key",
              r.returncode == 0)
        checked += 1
    # Secret keys that SoftHSM lets out must equal what was exported.
    for sk in s.findObjects([(P.CKA_CLASS, P.CKO_SECRET_KEY)]):
        label, kid = s.getAttributeValue(sk, [P.CKA_LABEL, P.CKA_ID])
        item = next((i for i in manifest["items"] if i["kind"] == "secret_key"
                     and i["label"] == label), None)
        try:
            value = bytes(s.getAttributeValue(sk, [P.CKA_VALUE])[0])
        except Exception:
            value = None  # sensitive or unextractable for SoftHSM too
        if item is None or item["status"] != "written":
            continue
        with open(os.path.join(out, item["file"]), "rb") as f:
            exported = f.read()
        secrets.append(exported)
        if value is not None:
            check(f"{token}/{label}: exported bytes equal SoftHSM's CKA_VALUE", exported == value)
            checked += 1
            continue
        # A sensitive key SoftHSM will not show: compare what it computes.
        kt = s.getAttributeValue(sk, [P.CKA_KEY_TYPE])[0]
        if kt == P.CKK_AES:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
            kcv = bytes(s.getAttributeValue(sk, [P.CKA_CHECK_VALUE])[0])
            enc = Cipher(algorithms.AES(exported), modes.ECB()).encryptor()
            check(f"{token}/{label}: exported key gives SoftHSM's CKA_CHECK_VALUE",
                  enc.update(bytes(16))[:3] == kcv and len(kcv) == 3)
            checked += 1
        elif kt == P.CKK_GENERIC_SECRET:
            import hashlib
            import hmac
            mac = bytes(s.sign(sk, data, P.Mechanism(P.CKM_SHA256_HMAC)))
            check(f"{token}/{label}: SoftHSM's HMAC-SHA-256 equals one with the exported key",
                  mac == hmac.new(exported, data, hashlib.sha256).digest())
            checked += 1
    s.logout()
    s.closeSession()
    return checked


def main():
    need = softhsm_session.missing("openssl")
    if need is not None:
        return need
    tmp = tempfile.mkdtemp(prefix="tfs-export-")
    try:
        return body(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def usage(tmp):
    """--help explains every option; contradictions are usage errors."""
    r = subprocess.run([TOKENFS, "export", "--help"], capture_output=True, text=True)
    options = ["--out", "--user-pin", "--so-pin", "--passout", "--no-encrypt", "--secret-format",
               "--pkcs12", "--include-unextractable", "--token", "--object", "--id", "--label",
               "--force", "--format", "--lock-timeout", "--help", "Policy:"]
    check("export --help: exit 0, every option explained",
          r.returncode == 0 and all(o in r.stdout for o in options))
    d = os.path.join(tmp, "usage")
    store = os.path.join(TESTDATA, "store")
    for args in ([store], ["--out", d], ["--out", d, "--passout", "env:PASS", "--no-encrypt", store],
                 ["--out", d, "--pkcs12", "b.p12", "--no-encrypt", store],
                 ["--out", d, "--secret-format", "pem", "--no-encrypt", store],
                 ["--out", d, "--id", "0x1", "--no-encrypt", store],
                 ["--out", d, "--format", "xml", "--no-encrypt", store]):
        r = run(args)
        check(f"export {' '.join(args)}: exit 2, nothing written",
              r.returncode == 2 and not os.path.exists(d) and r.stderr.count(b"\n") >= 1)


def body(tmp):
    usage(tmp)
    tokendir, (imported_key, imported_cert) = make_store(tmp)
    snapshot = {f: open(os.path.join(r, f), "rb").read()
                for r, _, fs in os.walk(tokendir) for f in fs}
    out = os.path.join(tmp, "out")

    # Without the policy flag the locked keys are skipped, and exit 1.
    r = run(["--out", out, "--user-pin", "env:PIN", "--passout", "env:PASS", "--token", "exp",
             "--format", "json", "--pkcs12", "bundle.p12", tokendir])
    m = json.loads(r.stdout)
    check("export without --include-unextractable exits 1", r.returncode == 1)
    check("manifest has format_version 1", m.get("format_version") == 1)
    skipped = {i["label"] for i in m["items"] if i["status"] == "skipped"}
    check("the unextractable keys are skipped, and only they",
          skipped == {"locked-rsa", "locked-aes"} and m["counts"]["skipped"] == 2)
    check("nothing else failed", m["counts"]["failed"] == 0 and m["counts"]["unsupported"] == 0)
    check("export.json is what the report says",
          json.load(open(os.path.join(out, "export.json"))) == m)
    files = sorted(os.listdir(out))
    check("every file is 0600",
          all(os.stat(os.path.join(out, f)).st_mode & 0o777 == 0o600 for f in files))
    check("the directory is 0700", os.stat(out).st_mode & 0o777 == 0o700)
    check("no file of a locked private or secret key",
          not any(f.startswith("locked") and ".pub." not in f for f in files))
    check("file names are made safe",
          all("/" not in i["file"] for i in m["items"] if i["file"]) and
          "hmac_.._secret_09.secret.bin" in files)
    for i in m["items"]:
        if i["file"] and i["kind"] != "secret_key":
            import hashlib
            d = open(os.path.join(out, i["file"]), "rb").read()
            check(f"{i['file']}: manifest hash", i["file_sha256"] == "sha256:" + hashlib.sha256(d).hexdigest())
    check("the store is untouched",
          snapshot == {f: open(os.path.join(r_, f), "rb").read()
                       for r_, _, fs in os.walk(tokendir) for f in fs})

    n = check_pairs(tokendir, "exp", USER, out, m, tmp, "env:PASS")
    check("RSA 2048/3072, 5 EC curves, Ed25519, Ed448, DSA, imported, AES, generic: all checked",
          n == 13)

    # The imported key and certificate, byte for byte.
    key_item = find_item(m, "private_key", "imported")
    pem = open(os.path.join(out, key_item["file"]), "rb").read()
    check("imported key comes out as it went in", pkcs8_der(pem, PASS.encode()) == imported_key)
    cert_item = find_item(m, "certificate", "imported")
    r = openssl("x509", "-in", os.path.join(out, cert_item["file"]), "-outform", "DER")
    check("imported certificate comes out as it went in", r.stdout == imported_cert)

    # PKCS#12: opens with the passphrase, holds the key with its certificate.
    p12 = os.path.join(out, "bundle.p12")
    r = openssl("pkcs12", "-in", p12, "-passin", "env:PASS", "-nodes")
    check("openssl pkcs12 -passin opens the bundle", r.returncode == 0)
    secrets.append(r.stdout)
    blocks, name, cur = [], None, None
    for line in r.stdout.decode().splitlines():
        if line.strip().startswith("friendlyName:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("-----BEGIN"):
            cur = [line]
        elif line.startswith("-----END") and cur is not None:
            cur.append(line)
            blocks.append((name, "\n".join(cur) + "\n"))
            cur = None
        elif cur is not None:
            cur.append(line)
    keys = {n_: b for n_, b in blocks if "PRIVATE KEY" in b}
    certs = {n_: b for n_, b in blocks if "CERTIFICATE" in b}
    want = {"rsa2048", "rsa3072", "p256", "p384", "p521", "secp256k1", "brainpoolP256r1",
            "ed25519", "ed448", "dsa", "imported"}
    check("the bundle holds every exported private key, by friendly name", set(keys) == want)
    k = pkcs8_der(keys["imported"].encode()) if "imported" in keys else None
    c = openssl("x509", "-outform", "DER", data=certs.get("imported", "").encode()).stdout
    check("the bundle's 'imported' key and certificate are the right ones",
          k == imported_key and c == imported_cert and list(certs) == ["imported"])
    r = subprocess.run(["openssl", "pkcs12", "-in", p12, "-passin", "pass:wrong", "-nodes"],
                       capture_output=True)
    check("the bundle does not open with a wrong passphrase", r.returncode != 0)

    # Encrypted PEM does not open without the passphrase.
    key = os.path.join(out, find_item(m, "private_key", "p256")["file"])
    for passin in ("pass:", "pass:wrong"):
        r = openssl("pkey", "-in", key, "-passin", passin, "-noout")
        check(f"encrypted key does not open with {passin}", r.returncode != 0)

    # Again into the same directory: refused, nothing changed.
    before = {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out)}
    r = run(["--out", out, "--user-pin", "env:PIN", "--passout", "env:PASS", "--token", "exp",
             tokendir])
    check("existing files: exit 2", r.returncode == 2 and b"refusing to overwrite" in r.stderr)
    check("existing files: nothing changed",
          before == {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out)})
    r = run(["--out", out, "--user-pin", "env:PIN", "--passout", "env:PASS", "--token", "exp",
             "--force", "--label", "p256", tokendir])
    check("--force replaces", r.returncode == 0 and
          open(key, "rb").read() != before[os.path.basename(key)])

    # Plaintext only with --no-encrypt; never by default.
    plain = os.path.join(tmp, "plain")
    r = run(["--out", plain, "--user-pin", "env:PIN", "--token", "exp", tokendir],
            stdin=subprocess.DEVNULL)
    check("no --passout and no --no-encrypt: exit 2, nothing written",
          r.returncode == 2 and not os.path.exists(plain))
    r = run(["--out", plain, "--user-pin", "env:PIN", "--no-encrypt", "--token", "exp",
             "--include-unextractable", "--secret-format", "hex", "--id", "0a", "--id", "0B",
             "--label", "ed25519", tokendir])
    check("--no-encrypt --include-unextractable: exit 0", r.returncode == 0)
    written = sorted(os.listdir(plain))
    check("selection by --id and --label", written == sorted([
        "locked-rsa_0a.key.pem", "locked-rsa_0a.pub.pem", "locked-aes_0b.secret.hex",
        "ed25519_07.key.pem", "ed25519_07.pub.pem", "export.json"]))
    with open(os.path.join(plain, "locked-rsa_0a.key.pem"), "rb") as f:
        check("--no-encrypt writes plaintext PKCS#8", f.read(27) == b"-----BEGIN PRIVATE KEY-----")
    r = openssl("pkey", "-in", os.path.join(plain, "locked-rsa_0a.key.pem"), "-pubout")
    check("the unextractable key, exported on request, is the pair's",
          r.stdout == open(os.path.join(plain, "locked-rsa_0a.pub.pem"), "rb").read())
    secrets.append(openssl("pkey", "-in", os.path.join(plain, "locked-rsa_0a.key.pem"),
                           "-text", "-noout").stdout)
    secrets.append(bytes.fromhex(open(os.path.join(plain, "locked-aes_0b.secret.hex")).read()))
    jwk = os.path.join(tmp, "jwk")
    r = run(["--out", jwk, "--user-pin", "env:PIN", "--no-encrypt", "--secret-format", "jwk",
             "--label", "aes", tokendir])
    j = json.load(open(os.path.join(jwk, "aes_08.secret.jwk")))
    aes = open(os.path.join(out, "aes_08.secret.bin"), "rb").read()
    check("JWK holds the AES key", j["kty"] == "oct" and j["kid"] == "aes" and
          base64.urlsafe_b64decode(j["k"] + "=" * (-len(j["k"]) % 4)) == aes)

    # The SO PIN unlocks the same token key.
    so_dir = os.path.join(tmp, "so")
    r = run(["--out", so_dir, "--so-pin", "env:SOPIN", "--no-encrypt", "--label", "aes", tokendir])
    check("--so-pin exports too", r.returncode == 0 and
          open(os.path.join(so_dir, "aes_08.secret.bin"), "rb").read() == aes)

    # A wrong PIN is a finding about its token (pin.wrong, exit 1): its
    # private objects are not exported, its public ones are.
    bad = os.path.join(tmp, "bad")
    r = run(["--out", bad, "--user-pin", "env:PIN", "--passout", "env:PASS", tokendir],
            env={"PIN": "wrong-pin-9"})
    written = sorted(os.listdir(bad)) if os.path.isdir(bad) else []
    check("wrong PIN: exit 1, [pin.wrong], no private key written",
          r.returncode == 1 and b"[pin.wrong]" in r.stderr and
          not any(".key." in f or f.endswith(".key") or ".secret." in f for f in written))
    shutil.rmtree(bad, ignore_errors=True)
    # With the right user PIN the token key is known: a wrong SO PIN beside
    # it is reported, and the export is whole.
    r = run(["--out", bad, "--user-pin", "env:PIN", "--so-pin", "env:SOPIN", "--passout",
             "env:PASS", tokendir], env={"SOPIN": "wrong-so-pin"})
    check("right user PIN, wrong SO PIN: exit 1, [pin.wrong], keys written",
          r.returncode == 1 and b"[pin.wrong]" in r.stderr and
          any(".secret." in f for f in os.listdir(bad)))
    shutil.rmtree(bad, ignore_errors=True)
    # A selector that matches nothing writes nothing.
    r = run(["--out", bad, "--user-pin", "env:PIN", "--passout", "env:PASS", "--id", "77",
             tokendir])
    check("unmatched --id: exit 2, nothing written", r.returncode == 2 and not os.path.exists(bad))

    # A private key whose paired public key is another key's: refused.
    mm = os.path.join(tmp, "mm")
    r = run(["--out", mm, "--user-pin", "env:PIN", "--passout", "env:PASS", "--token",
             "mismatch", "--format", "json", tokendir])
    mj = json.loads(r.stdout)
    bad_item = find_item(mj, "private_key", "ec1")
    check("mismatched pair: exit 1, the key refused and not written",
          r.returncode == 1 and bad_item["status"] == "failed" and
          "does not match" in bad_item["reason"] and bad_item["file"] is None and
          not any(f.startswith("ec1") for f in os.listdir(mm)))
    check("mismatched pair: the rest still written", find_item(mj, "private_key", "ec2")["status"] == "written")
    dh = find_item(mj, "private_key", "dh")
    check("a DH key is reported unsupported, by name",
          dh["status"] == "unsupported" and "CKK_DH" in dh["reason"] and
          b"CKK_DH" in r.stderr)

    # README, "Leaving SoftHSM": into another PKCS#11 token with pkcs11-tool
    # --write-object, then out again: the same key, certificate and secret.
    if shutil.which("pkcs11-tool"):
        env = dict(os.environ, SOFTHSM2_CONF=os.path.join(tmp, "softhsm2.conf"))
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "new", "--so-pin",
                        SO, "--pin", USER], check=True, env=env, stdout=subprocess.DEVNULL)
        kder, cder = os.path.join(tmp, "key.der"), os.path.join(tmp, "cert.der")
        openssl("pkey", "-in", os.path.join(out, key_item["file"]), "-passin", "env:PASS",
                "-outform", "DER", "-out", kder)
        openssl("x509", "-in", os.path.join(out, cert_item["file"]), "-outform", "DER", "-out", cder)
        p11 = ["pkcs11-tool", "--module", softhsm_session.MODULE, "--token-label", "new",
               "--login", "--pin", USER]
        for args in (["--write-object", kder, "--type", "privkey", "--id", "01", "--label", "web"],
                     ["--write-object", cder, "--type", "cert", "--id", "01", "--label", "web"],
                     ["--write-object", os.path.join(out, "aes_08.secret.bin"), "--type",
                      "secrkey", "--key-type", "AES:32", "--id", "02", "--label", "aes"]):
            check("pkcs11-tool " + args[0] + " " + args[3],
                  subprocess.run(p11 + args, env=env, capture_output=True).returncode == 0)
        again = os.path.join(tmp, "again")
        r = run(["--out", again, "--user-pin", "env:PIN", "--no-encrypt", "--token", "new",
                 "--include-unextractable", "--format", "json", tokendir])
        am = json.loads(r.stdout) if r.stdout else {"items": []}
        k2, c2, s2 = (find_item(am, kind, lab) for kind, lab in
                      (("private_key", "web"), ("certificate", "web"), ("secret_key", "aes")))
        check("README round trip: key, certificate, secret come back the same",
              r.returncode == 0 and k2 and c2 and s2 and
              pkcs8_der(open(os.path.join(again, k2["file"]), "rb").read()) == imported_key and
              openssl("x509", "-in", os.path.join(again, c2["file"]), "-outform", "DER").stdout
              == imported_cert and
              open(os.path.join(again, s2["file"]), "rb").read() == aes)
        os.unlink(kder)
    elif os.environ.get("CI") == "true":
        check("pkcs11-tool (opensc) is installed", False)

    # testdata/store, a copy: every key of both tokens.
    td = os.path.join(tmp, "testdata")
    shutil.copytree(os.path.join(TESTDATA, "store"), td)
    for token, pin in (("demo", "user-pin-1"), ("second", "user-pin-2")):
        o = os.path.join(tmp, "td-" + token)
        r = run(["--out", o, "--user-pin", "env:PIN", "--passout", "env:PASS", "--token", token,
                 "--include-unextractable", "--format", "json", td], env={"PIN": pin})
        check(f"testdata {token}: exit 0", r.returncode == 0)
        tm = json.loads(r.stdout)
        n = check_pairs(td, token, pin, o, tm, tmp, "env:PASS")
        check(f"testdata {token}: keys checked", n >= 1)
    r = openssl("pkey", "-in", os.path.join(tmp, "td-demo", "imported-rsa-priv_06.key.pem"),
                "-passin", "env:PASS", "-outform", "DER")
    check("testdata: the imported key equals certs/imported-rsa-key.der",
          r.stdout == open(os.path.join(TESTDATA, "certs", "imported-rsa-key.der"), "rb").read())

    # No key material, PIN or passphrase in anything tokenfs printed.
    blob = b"".join(outputs)
    needles = [USER.encode(), SO.encode(), PASS.encode()]
    for sec in secrets:
        if isinstance(sec, bytes) and sec.startswith(b"Private-Key") or b"priv:" in sec:
            # openssl -text: hex lines of the private value(s)
            for line in sec.decode(errors="replace").splitlines():
                h = line.strip().replace(":", "")
                if len(h) >= 16 and all(ch in "0123456789abcdef" for ch in h):
                    needles.append(h.encode())
        elif b"PRIVATE KEY" in sec:
            needles += [ln for ln in sec.splitlines() if len(ln) > 40 and b"-----" not in ln]
        elif len(sec) >= 8:
            needles += [sec, sec.hex().encode(), sec.hex().upper().encode(),
                        base64.b64encode(sec), base64.urlsafe_b64encode(sec).rstrip(b"=")]
    leaks = [n_ for n_ in needles if n_ in blob]
    check(f"no key material in any output ({len(needles)} needles, {len(blob)} bytes)",
          not leaks and len(needles) > 20)

    return finish()


if __name__ == "__main__":
    sys.exit(main())
