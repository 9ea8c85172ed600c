#!/usr/bin/python3
"""verify-integrity on hostile certificate and CKA_PUBLIC_KEY_INFO values
(semantics_cert.c, semantics_cert_der.c): each finding is the one expected,
word for word where the message is fixed.

verify reads a certificate without OpenSSL's X.509 parser when OpenSSL would
read it alike, and leaves every other value to d2i_X509. These cases sit on
both sides of that line: values libtasn1's strict DER rejects but OpenSSL
accepts (non-minimal lengths, a BOOLEAN of 0x01), values libtasn1 takes but
OpenSSL rejects (a non-minimal serial or version, a Name with invalid UTF-8
or an INTEGER value), and the attribute, check value and key comparisons.

A real SoftHSM 2.6.1 token (PyKCS11) holds an RSA pair (CKA_ID 01) and an
EC P-256 pair (CKA_ID 02); each certificate is a C_CreateObject with a
CKA_VALUE built here (python3-cryptography for names and keys, DER by hand
for the hostile bits; signatures are not checked by verify). Public keys
with a CKA_PUBLIC_KEY_INFO are C_CreateObject'd and their attribute set in
the file (damage_value.py), as SoftHSM 2.6.1 leaves it empty. The
BER-but-not-DER cases are checked to be accepted by `openssl x509`; for a
few more (a version of 5, a v1 unique ID, short and non-digit times, an odd
BMPString, a two-octet BOOLEAN, 9 unused bits, a padded INTEGER parameter, a
padded OID) `openssl x509` gives the verdict verify must agree with.

With the per-part OpenSSL decoders of semantics_cert_der.c switched off, 5
of these fail (bad UTF-8 and INTEGER in a Name, the odd BMPString, the
unused bits, the padded parameter): libtasn1 alone reads them.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402
import softhsm_session  # noqa: E402

LABEL, SO_PIN, USER_PIN = "certtok", "so-cert-1", "user-cert-1"
HERE = os.path.dirname(os.path.abspath(__file__))
CKA_CHECK_VALUE, CKA_PUBLIC_KEY_INFO = 0x90, 0x129


def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        head = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + head + content


def seq(*parts):
    return tlv(0x30, b"".join(parts))


def integer(v):
    n = max(1, (v.bit_length() + 8) // 8) if v >= 0 else ((-v - 1).bit_length() + 8) // 8
    return tlv(0x02, v.to_bytes(n, "big", signed=True))


def name_der(cn, tag=0x0C):
    """Name with one CN of string type `tag` (bytes taken as given)."""
    raw = cn if isinstance(cn, bytes) else cn.encode()
    return seq(tlv(0x31, seq(tlv(0x06, bytes.fromhex("550403")), tlv(tag, raw))))


SHA256_RSA = seq(tlv(0x06, bytes.fromhex("2a864886f70d01010b")), b"\x05\x00")
VALIDITY = seq(tlv(0x17, b"250101000000Z"), tlv(0x17, b"350101000000Z"))


def cert(spki, subject, issuer=None, serial=None, version=None, extensions=b"",
         outer_len=None, sigalg=SHA256_RSA, validity=VALIDITY, signature=None):
    """A certificate's DER; serial and version are DER INTEGERs as given."""
    tbs = b"".join([
        version if version is not None else tlv(0xA0, integer(2)),
        serial if serial is not None else integer(5),
        sigalg, issuer if issuer is not None else subject, validity, subject, spki,
        extensions])
    body = seq(tbs) + SHA256_RSA + (signature or tlv(0x03, b"\x00" + b"\x5a" * 64))
    if outer_len is None:
        return tlv(0x30, body)
    # BER: the outer length in a non-minimal long form.
    return b"\x30" + bytes([0x80 | outer_len]) + len(body).to_bytes(outer_len, "big") + body


def spki_of(pub):
    from cryptography.hazmat.primitives import serialization
    return pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def rsa_spki(n, e):
    from cryptography.hazmat.primitives.asymmetric import rsa
    return spki_of(rsa.RSAPublicNumbers(e, n).public_key())


def cases(rsa_n, rsa_e, ec_point):
    """(label, CKA_ID, CKA_VALUE, CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER,
    [(code, exact message or None, substring)]) for each certificate."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
    good_rsa = rsa_spki(rsa_n, rsa_e)

    def rsapss(spki):
        """The same key as RSA-PSS without parameters (any hash)."""
        at = 19 if spki[1] == 0x82 else 18
        assert spki[at] == 0x03
        return seq(seq(tlv(0x06, bytes.fromhex("2a864886f70d01010a"))), spki[at:])
    good_ec = spki_of(ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ec_point))
    other_rsa = spki_of(rsa.generate_private_key(65537, 1024).public_key())
    other_ec = spki_of(ec.generate_private_key(ec.SECP256R1()).public_key())
    ed = spki_of(ed25519.Ed25519PrivateKey.generate().public_key())
    dsa_spki = spki_of(dsa.generate_private_key(1024).public_key())
    # The RSA OID with a BIT STRING that holds no RSAPublicKey.
    bad_rsa = seq(seq(tlv(0x06, bytes.fromhex("2a864886f70d010101")), b"\x05\x00"),
                  tlv(0x03, b"\x00" + b"\x30\x03\x02\x01"))
    # The P-256 OID with a point off the curve (x = y = 1).
    off_curve = good_ec[:-64] + b"\x00" * 31 + b"\x01" + b"\x00" * 31 + b"\x01"
    crit01 = tlv(0xA3, seq(seq(tlv(0x06, bytes.fromhex("551d13")), tlv(0x01, b"\x01"),
                               tlv(0x04, seq()))))

    out = []

    def add(label, kid, value, subject, issuer=None, serial=None, expect=()):
        out.append((label, kid, value, subject, issuer if issuer is not None else subject,
                    serial if serial is not None else integer(5),
                    None if expect is None else list(expect)))

    def plain(label, kid, spki, **kw):
        subj = name_der(label)
        add(label, kid, cert(spki, subj, **kw), subj, **{k: v for k, v in kw.items()
                                                          if k in ("issuer", "serial")})

    plain("rsa-ok", b"\x01", good_rsa)
    plain("ec-ok", b"\x02", good_ec)
    plain("ed25519", b"\x03", ed)
    plain("dsa", b"\x04", dsa_spki)
    plain("v1-no-version", b"\x01", good_rsa, version=b"")
    plain("negative-serial", b"\x01", good_rsa, serial=integer(-5))
    plain("ber-outer-length", b"\x01", good_rsa, outer_len=3)
    plain("ber-boolean-01", b"\x01", good_rsa, extensions=crit01)

    subj = name_der("subject-mismatch")
    add("subject-mismatch", b"\x05", cert(good_rsa, subj), name_der("someone else"), subj, None,
        [("cert.attribute-mismatch",
          'CKA_SUBJECT is "/CN=someone else" but the certificate\'s subject is '
          '"/CN=subject-mismatch"', None)])
    subj = name_der("issuer-encoding")
    add("issuer-encoding", b"\x05", cert(good_rsa, subj, issuer=name_der("issuer-encoding")),
        subj, name_der("issuer-encoding", 0x13), None,
        [("cert.attribute-mismatch",
          'CKA_ISSUER is "/CN=issuer-encoding" but the certificate\'s issuer is '
          '"/CN=issuer-encoding" (same text, different encoding)', None)])
    subj = name_der("serial-mismatch")
    add("serial-mismatch", b"\x05", cert(good_rsa, subj), subj, None, integer(7),
        [("cert.attribute-mismatch",
          "CKA_SERIAL_NUMBER is 020107 but the certificate's serial number is 020105 "
          "(both DER INTEGERs)", None)])
    subj = name_der("negative-serial-mismatch")
    add("negative-serial-mismatch", b"\x05", cert(good_rsa, subj, serial=integer(-5)), subj,
        None, integer(5),
        [("cert.attribute-mismatch",
          "CKA_SERIAL_NUMBER is 020105 but the certificate's serial number is 0201fb "
          "(both DER INTEGERs)", None)])
    plain("check-value", b"\x05", good_rsa)
    out[-1][6].append(("cert.check-value-mismatch", None,
                       "CKA_CHECK_VALUE is 000000 but the certificate's check value is "))

    plain("rsa-other-key", b"\x01", other_rsa)
    out[-1][6].append(("cert.key-mismatch", None, "the certificate's key is not the key of"))
    plain("ec-other-key", b"\x02", other_ec)
    out[-1][6].append(("cert.key-mismatch", None, "the certificate's key is not the key of"))
    # rsaEncryption without its NULL parameters: OpenSSL reads the key all
    # the same, so it is compared. (A 1024-bit key's SPKI: a 3-octet
    # header, a 15-octet AlgorithmIdentifier, then the BIT STRING.)
    assert other_rsa[3:5] == b"\x30\x0d" and other_rsa[18] == 0x03
    plain("rsa-other-key-no-params", b"\x01",
          seq(seq(tlv(0x06, bytes.fromhex("2a864886f70d010101"))), other_rsa[18:]))
    out[-1][6].append(("cert.key-mismatch", None, "the certificate's key is not the key of"))
    plain("rsapss-ok", b"\x01", rsapss(good_rsa))
    plain("rsa-key-not-rsa", b"\x01", bad_rsa)
    out[-1][6].append(("cert.key-mismatch", None,
                       "the RSA key in the SubjectPublicKeyInfo does not decode"))
    plain("ec-off-curve", b"\x02", off_curve)
    out[-1][6].append(("cert.key-mismatch", None,
                       "the SubjectPublicKeyInfo's EC point is not a point on prime256v1"))

    ok = cert(good_rsa, name_der("truncated"))
    add("truncated", b"\x05", ok[:-10], name_der("truncated"), None, None,
        [("cert.malformed", f"CKA_VALUE ({len(ok) - 10} bytes) is not a DER X.509 certificate",
          None)])
    ok = cert(good_rsa, name_der("trailing-byte"))
    add("trailing-byte", b"\x05", ok + b"\x00", name_der("trailing-byte"), None, None,
        [("cert.malformed",
          f"CKA_VALUE ({len(ok) + 1} bytes) has bytes after its DER X.509 certificate", None)])

    def malformed(label, value, subject):
        add(label, b"\x05", value, subject, None, None,
            [("cert.malformed", f"CKA_VALUE ({len(value)} bytes) is not a DER X.509 certificate",
              None)])
    subj = name_der("serial-not-minimal")
    malformed("serial-not-minimal", cert(good_rsa, subj, serial=b"\x02\x02\x00\x05"), subj)
    subj = name_der("version-not-minimal")
    malformed("version-not-minimal",
              cert(good_rsa, subj, version=tlv(0xA0, b"\x02\x02\x00\x02")), subj)
    subj = name_der(b"\xc0\x80bad")
    malformed("name-bad-utf8", cert(good_rsa, subj), subj)
    subj = name_der(b"\x05", 0x02)
    malformed("name-integer-value", cert(good_rsa, subj), subj)

    # Values whose verdict is OpenSSL's to give: cert.malformed exactly when
    # `openssl x509` cannot read the certificate either (main() asks it).
    def oracle(label, **kw):
        subj = name_der(label)
        add(label, b"\x05", cert(good_rsa, subj, **kw), subj, None, None, None)
    oracle("version-5", version=tlv(0xA0, integer(4)))
    oracle("v1-with-unique-id", version=b"", extensions=tlv(0x81, b"\x00\xaa"))
    oracle("time-too-short", validity=seq(tlv(0x17, b"2501010000Z"), tlv(0x17, b"350101000000Z")))
    oracle("time-not-a-time", validity=seq(tlv(0x17, b"ABCDEFGHIJKLM"), tlv(0x17, b"350101000000Z")))
    subj = name_der(b"\x00a\x00", 0x1E)
    add("bmpstring-odd", b"\x05", cert(good_rsa, subj), subj, None, None, None)
    oracle("critical-two-octets",
           extensions=tlv(0xA3, seq(seq(tlv(0x06, bytes.fromhex("551d13")), tlv(0x01, b"\x00\xff"),
                                        tlv(0x04, seq())))))
    oracle("extensions-empty", extensions=tlv(0xA3, seq()))
    oracle("signature-9-unused-bits", signature=tlv(0x03, b"\x09\x00"))
    oracle("sigalg-param-padded-integer",
           sigalg=seq(tlv(0x06, bytes.fromhex("2a864886f70d01010b")), b"\x02\x02\x00\x01"))
    oracle("sigalg-oid-padded", sigalg=seq(tlv(0x06, bytes.fromhex("2a864886f70d8001010b"))))
    return out, good_rsa, other_rsa, good_ec, rsapss


def main():
    code = softhsm_session.missing()
    if code is not None:
        print("SKIP: PyKCS11 or SoftHSM missing", file=sys.stderr)
        return code or 77
    tokenfs = os.environ["TOKENFS"]
    root = tempfile.mkdtemp(prefix="tfs-vcert-")
    env = dict(os.environ, UP=USER_PIN)
    try:
        tokendir = os.path.join(root, "tokens")
        softhsm_session.init_token(tokendir, os.path.join(root, "softhsm2.conf"), LABEL,
                                   SO_PIN, USER_PIN)
        P, s = softhsm_session.open_session(tokendir, LABEL)
        s.login(USER_PIN)
        tokdir = os.path.join(tokendir, os.listdir(tokendir)[0])

        def files():
            return {n[:-7] for n in os.listdir(tokdir) if n.endswith(".object")}

        T = True
        rpub, _ = s.generateKeyPair(
            [(P.CKA_TOKEN, T), (P.CKA_VERIFY, T), (P.CKA_MODULUS_BITS, 2048),
             (P.CKA_PUBLIC_EXPONENT, (1, 0, 1)), (P.CKA_ID, (1,)), (P.CKA_LABEL, "rsa")],
            [(P.CKA_TOKEN, T), (P.CKA_PRIVATE, T), (P.CKA_SENSITIVE, T), (P.CKA_SIGN, T),
             (P.CKA_ID, (1,)),
             (P.CKA_LABEL, "rsa")], P.Mechanism(P.CKM_RSA_PKCS_KEY_PAIR_GEN))
        epub, _ = s.generateKeyPair(
            [(P.CKA_TOKEN, T), (P.CKA_VERIFY, T), (P.CKA_ID, (2,)), (P.CKA_LABEL, "ec"),
             (P.CKA_EC_PARAMS, bytes.fromhex("06082a8648ce3d030107"))],
            [(P.CKA_TOKEN, T), (P.CKA_PRIVATE, T), (P.CKA_SENSITIVE, T), (P.CKA_SIGN, T),
             (P.CKA_ID, (2,)),
             (P.CKA_LABEL, "ec")], P.Mechanism(P.CKM_EC_KEY_PAIR_GEN))
        n, e = (int.from_bytes(bytes(v), "big") for v in
                s.getAttributeValue(rpub, [P.CKA_MODULUS, P.CKA_PUBLIC_EXPONENT]))
        point = bytes(s.getAttributeValue(epub, [P.CKA_EC_POINT])[0])[2:]  # OCTET STRING
        certs, good_rsa, other_rsa, good_ec, rsapss = cases(n, e, point)

        made = {}
        for label, kid, value, subj, iss, serial, expect in certs:
            before = files()
            s.createObject([(P.CKA_CLASS, P.CKO_CERTIFICATE), (P.CKA_TOKEN, T),
                            (P.CKA_CERTIFICATE_TYPE, P.CKC_X_509), (P.CKA_LABEL, label),
                            (P.CKA_ID, tuple(kid)), (P.CKA_VALUE, tuple(value)),
                            (P.CKA_SUBJECT, tuple(subj)), (P.CKA_ISSUER, tuple(iss)),
                            (P.CKA_SERIAL_NUMBER, tuple(serial))])
            (made[label],) = files() - before
        # Public keys whose CKA_PUBLIC_KEY_INFO is set in the file.
        ber_spki = b"\x30\x83\x00" + good_rsa[2:]  # outer length 0x82 LL LL as 0x83 00 LL LL
        spkis = [
            ("spki-rsa-ok", "rsa", good_rsa, []),
            ("spki-rsa-other-key", "rsa", other_rsa,
             [("key.public-key-info-mismatch", None, "CKA_PUBLIC_KEY_INFO does not describe")]),
            ("spki-rsa-truncated", "rsa", good_rsa[:-5],
             [("key.public-key-info-mismatch", None, "not one DER SubjectPublicKeyInfo")]),
            ("spki-rsa-ber-length", "rsa", ber_spki, []),
            # OpenSSL reads an RSA-PSS key as RSA: compared, not skipped.
            ("spki-rsapss-ok", "rsa", rsapss(good_rsa), []),
            ("spki-rsapss-other-key", "rsa", rsapss(other_rsa),
             [("key.public-key-info-mismatch", None, "the moduli differ")]),
            ("spki-ec-ok", "ec", good_ec, []),
            ("spki-ec-off-curve", "ec", good_ec[:-64] + b"\x00" * 31 + b"\x01" * 33,
             [("key.public-key-info-mismatch", None, "is not a point on prime256v1")]),
        ]
        for i, (label, kind, der, expect) in enumerate(spkis):
            t = [(P.CKA_CLASS, P.CKO_PUBLIC_KEY), (P.CKA_TOKEN, T), (P.CKA_LABEL, label),
                 (P.CKA_ID, (0x20 + i,))]
            if kind == "rsa":
                t += [(P.CKA_KEY_TYPE, P.CKK_RSA),
                      (P.CKA_MODULUS, tuple(n.to_bytes((n.bit_length() + 7) // 8, "big"))),
                      (P.CKA_PUBLIC_EXPONENT, (1, 0, 1))]
            else:
                t += [(P.CKA_KEY_TYPE, P.CKK_EC),
                      (P.CKA_EC_PARAMS, tuple(bytes.fromhex("06082a8648ce3d030107"))),
                      (P.CKA_EC_POINT, tuple(b"\x04\x41" + point))]
            before = files()
            s.createObject(t)
            (made[label],) = files() - before
        s.logout()
        s.closeSession()

        def damage(label, attr, hexval):
            path = os.path.join(tokdir, made[label] + ".object")
            r = subprocess.run([sys.executable, os.path.join(HERE, "damage_value.py"), "--set",
                                path, hex(attr), hexval], capture_output=True, text=True)
            check(r.returncode == 0, f"{label}: {hex(attr)} set ({r.stderr.strip()})")
        damage("check-value", CKA_CHECK_VALUE, "000000")
        for label, _, der, _ in spkis:
            damage(label, CKA_PUBLIC_KEY_INFO, der.hex())

        # The BER cases are ones OpenSSL reads; the DER reader does not.
        for label in ("ber-outer-length", "ber-boolean-01"):
            value = next(c[2] for c in certs if c[0] == label)
            r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"],
                               input=value, capture_output=True)
            check(r.returncode == 0 and label.encode() in r.stdout,
                  f"{label}: openssl x509 reads it ({r.stderr.decode()[:200]})")

        for i, (label, kid, value, subj, iss, serial, expect) in enumerate(certs):
            if expect is not None:
                continue
            r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout"], input=value,
                               capture_output=True)
            bad = [("cert.malformed",
                    f"CKA_VALUE ({len(value)} bytes) is not a DER X.509 certificate", None)]
            certs[i] = (label, kid, value, subj, iss, serial, bad if r.returncode else [])
            print(f"{label}: openssl x509 {'rejects' if r.returncode else 'reads'} it")

        r = subprocess.run([tokenfs, "verify-integrity", "--format", "json", "--user-pin",
                            "env:UP", tokendir], env=env, capture_output=True, text=True)
        check(r.returncode == 1, f"verify exits 1 on findings ({r.returncode}: {r.stderr})")
        found = {}
        for t in json.loads(r.stdout)["tokens"]:
            for f in t["findings"]:
                if f["code"].startswith(("cert.", "key.")):
                    found.setdefault(f.get("object"), []).append(f)
        expected = [(c[0], c[6]) for c in certs] + [(x[0], x[3]) for x in spkis]
        for label, expect in expected:
            got = found.pop(made[label], [])
            met = all(any(f["code"] == c and (m is None or f["message"] == m) and
                          (sub is None or sub in f["message"]) for f in got)
                      for c, m, sub in expect)
            check(len(got) == len(expect) and met,
                  f"{label}: findings {[(f['code'], f['message']) for f in got]}, "
                  f"expected {expect}")
        check(not found, f"no finding on other objects: {found}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
