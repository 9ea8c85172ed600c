#!/usr/bin/python3
"""Real SoftHSM 2.6.1 reads the pr627 fixture after `tokenfs migrate --to cbc`.

usage: pr627_softhsm.py TOKENDIR   (a migrated copy; its token is "pr627")

Logs in with the user PIN 4321 through PyKCS11 and reads back every plaintext
the fixture's README lists (values written by a SoftHSM built from pull
request #627, now CBC), then logs in as SO with 12345678. Prints
"N passed, N failed". Exit 77 outside CI when PyKCS11 or SoftHSM is missing.
"""
import hashlib
import os
import sys
import tempfile

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
USER_PIN, SO_PIN = "4321", "12345678"
MODULUS = ("e1642bb9688b0b2a551b4e1c37eccc82c9aec52eb321254e5dfa335ebde99c46"
           "068836102ddb26d551900392e87562be98bef8784a389a19ab1b93c9cdcb93d5"
           "a51d88a3a6b6f375586e57d063828e3b09463bb0ac98f87b031b7eca86bb8b34"
           "72f2c8d1b11c10747688c3d72197494d17186aa9b9f0b5bb29003cd80681a89f"
           "515ce80ce3d266206ebcbd0806a7f518bdcdb01c6ed3e36b872c3170adb84670"
           "0b18ad2cc6e6b881f02b2a2a18d1102dfb80b98144194e90b05d77e50a9d2cf4"
           "2e67776e7eb3710ff53c85d0560d5e084d6f30189a10fe117a961dfaa9b1a6e8"
           "e6028c429f3df322dcf72b87536142eecf01350590369ed2120322217df40329")
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
    ("pr627-rsa2048-cert", "CKO_CERTIFICATE", "CKA_SUBJECT",
     "303331193017060355040a0c10746f6b656e66732066697874757265733116301406035504030c0d70723632372d72736132303438"),
]
CERT_SHA256 = "c3828930ad0c82ae5cbe630b193d9dbdbfde7065b9e7bac88f0369430340c933"


def main():
    try:
        import PyKCS11
    except ImportError:
        return 1 if os.environ.get("CI") == "true" else 77
    if not os.path.exists(MODULE):
        return 1 if os.environ.get("CI") == "true" else 77
    tokendir = os.path.abspath(sys.argv[1])
    conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
    conf.write(f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n")
    conf.close()
    os.environ["SOFTHSM2_CONF"] = conf.name
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAIL:", what, file=sys.stderr)

    lib = PyKCS11.PyKCS11Lib()
    lib.load(MODULE)
    slot = next(s for s in lib.getSlotList(tokenPresent=True)
                if lib.getTokenInfo(s).label.strip() == "pr627")
    session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
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
    os.unlink(conf.name)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
