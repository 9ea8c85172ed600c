#!/usr/bin/python3
"""Real SoftHSM 2.6.1 reads the pr627 fixture after `tokenfs migrate --to cbc`.

usage: pr627_softhsm.py TOKENDIR   (a migrated copy; its token is "pr627")

Logs in with the user PIN 4321 through PyKCS11 and reads back every plaintext
the fixture's README lists (values written by a SoftHSM built from pull
request #627, now CBC), then logs in as SO with 12345678. Prints
"N passed, N failed". Exit 77 outside CI when PyKCS11 or SoftHSM is missing.
"""
import hashlib
import sys

import softhsm_session
from checks import check, finish
from pr627_layout import CERT_NAME, MODULUS

USER_PIN, SO_PIN = "4321", "12345678"
# (label, class name, attribute name, expected hex), from the README.
EXPECTED = [
    ("pr627-aes256", "CKO_SECRET_KEY", "CKA_VALUE",
     "a10466d6eca2e5977d0e0879123b00d3f213dc16be1dc2f78477456ba7de5d2f"),
    ("pr627-aes256", "CKO_SECRET_KEY", "CKA_CHECK_VALUE", "f0209d"),
    ("pr627-aes256", "CKO_SECRET_KEY", "CKA_ID", "01"),
    ("pr627-private-data", "CKO_DATA", "CKA_VALUE", b"pr627 private data".hex()),
    ("pr627-private-data", "CKO_DATA", "CKA_APPLICATION", b"pr627".hex()),
    ("pr627-public-data", "CKO_DATA", "CKA_VALUE", b"pr627 public data".hex()),
    ("pr627-ec-p256", "CKO_PRIVATE_KEY", "CKA_EC_PARAMS", "06082a8648ce3d030107"),
    ("pr627-ec-p256", "CKO_PRIVATE_KEY", "CKA_ID", "02"),
    ("pr627-ec-p256", "CKO_PUBLIC_KEY", "CKA_EC_POINT",
     "044104687f3caea3ade71fcb90c70ec64e8ed1b96869418ab43a41e2b390e4f49debba"
     "41393099241a662dd199d0659a916d5682b285518891f181c6bb283bf70c258c"),
    ("pr627-rsa2048", "CKO_PRIVATE_KEY", "CKA_MODULUS", MODULUS),
    ("pr627-rsa2048", "CKO_PRIVATE_KEY", "CKA_PUBLIC_EXPONENT", "010001"),
    ("pr627-rsa2048", "CKO_PUBLIC_KEY", "CKA_MODULUS", MODULUS),
    ("pr627-rsa2048-cert", "CKO_CERTIFICATE", "CKA_SERIAL_NUMBER", "02020627"),
    ("pr627-rsa2048-cert", "CKO_CERTIFICATE", "CKA_CHECK_VALUE", "4bc942"),
    ("pr627-rsa2048-cert", "CKO_CERTIFICATE", "CKA_SUBJECT", CERT_NAME),
]
CERT_SHA256 = "c3828930ad0c82ae5cbe630b193d9dbdbfde7065b9e7bac88f0369430340c933"


def main():
    skip = softhsm_session.missing()
    if skip is not None:
        return skip

    PyKCS11, session = softhsm_session.open_session(sys.argv[1], "pr627")
    session.login(USER_PIN)
    for label, cls, attr, want in EXPECTED:
        objs = session.findObjects([(PyKCS11.CKA_LABEL, label),
                                    (PyKCS11.CKA_CLASS, getattr(PyKCS11, cls))])
        check(len(objs) == 1, f"{label} {cls}: {len(objs)} objects")
        if len(objs) != 1:
            continue
        got = bytes(session.getAttributeValue(objs[0], [getattr(PyKCS11, attr)])[0]).hex()
        check(got == want, f"{label} {attr}: {got[:40]}... != {want[:40]}...")
    cert = session.findObjects([(PyKCS11.CKA_LABEL, "pr627-rsa2048-cert")])
    der = bytes(session.getAttributeValue(cert[0], [PyKCS11.CKA_VALUE])[0]) if cert else b""
    check(hashlib.sha256(der).hexdigest() == CERT_SHA256, "certificate SHA-256")
    session.logout()
    session.login(SO_PIN, user_type=PyKCS11.CKU_SO)
    check(True, "SO login")
    session.logout()
    session.closeSession()
    return finish()


if __name__ == "__main__":
    sys.exit(main())
