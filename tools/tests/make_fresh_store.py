#!/usr/bin/python3
"""Makes a fresh SoftHSM 2.6.1 token whose keys are all private, through
PyKCS11 (Debian's python3-pykcs11): AES-256 and generic secret keys, RSA 2048
and EC P-256 key pairs, a private data object.

usage: make_fresh_store.py TOKENDIR   (SO PIN fresh-so, user PIN fresh-user)
Exit 77 when PyKCS11 or SoftHSM is missing outside CI.
"""
import os
import subprocess
import sys

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def main():
    tokendir = os.path.abspath(sys.argv[1])
    try:
        import PyKCS11
        from PyKCS11 import LowLevel as LL
    except ImportError:
        return 1 if os.environ.get("CI") == "true" else 77
    if not os.path.exists(MODULE):
        return 1 if os.environ.get("CI") == "true" else 77
    os.makedirs(tokendir, exist_ok=True)
    conf = os.path.join(tokendir, "..", "softhsm2.conf")
    with open(conf, "w") as f:
        f.write(f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    os.environ["SOFTHSM2_CONF"] = conf
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "fresh",
                    "--so-pin", "fresh-so", "--pin", "fresh-user"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    lib = PyKCS11.PyKCS11Lib()
    lib.load(MODULE)
    slot = next(s for s in lib.getSlotList(tokenPresent=True)
                if lib.getTokenInfo(s).label.strip() == "fresh")
    session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
    session.login("fresh-user")
    T, F = PyKCS11.CK_TRUE, PyKCS11.CK_FALSE
    secret = [(PyKCS11.CKA_TOKEN, T), (PyKCS11.CKA_PRIVATE, T), (PyKCS11.CKA_SENSITIVE, T),
              (PyKCS11.CKA_EXTRACTABLE, F)]
    session.generateKey(secret + [(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY),
                                  (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES),
                                  (PyKCS11.CKA_VALUE_LEN, 32), (PyKCS11.CKA_LABEL, "aes"),
                                  (PyKCS11.CKA_ID, (1,))],
                        PyKCS11.Mechanism(PyKCS11.CKM_AES_KEY_GEN))
    session.generateKey(secret + [(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY),
                                  (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_GENERIC_SECRET),
                                  (PyKCS11.CKA_VALUE_LEN, 32), (PyKCS11.CKA_LABEL, "hmac"),
                                  (PyKCS11.CKA_ID, (2,))],
                        PyKCS11.Mechanism(PyKCS11.CKM_GENERIC_SECRET_KEY_GEN))
    pub = [(PyKCS11.CKA_TOKEN, T), (PyKCS11.CKA_VERIFY, T)]
    session.generateKeyPair(pub + [(PyKCS11.CKA_MODULUS_BITS, 2048),
                                   (PyKCS11.CKA_PUBLIC_EXPONENT, (1, 0, 1)),
                                   (PyKCS11.CKA_LABEL, "rsa"), (PyKCS11.CKA_ID, (3,))],
                            secret + [(PyKCS11.CKA_SIGN, T), (PyKCS11.CKA_LABEL, "rsa"),
                                      (PyKCS11.CKA_ID, (3,))],
                            PyKCS11.Mechanism(PyKCS11.CKM_RSA_PKCS_KEY_PAIR_GEN))
    p256 = bytes.fromhex("06082a8648ce3d030107")
    session.generateKeyPair(pub + [(PyKCS11.CKA_EC_PARAMS, p256), (PyKCS11.CKA_LABEL, "ec"),
                                   (PyKCS11.CKA_ID, (4,))],
                            secret + [(PyKCS11.CKA_SIGN, T), (PyKCS11.CKA_LABEL, "ec"),
                                      (PyKCS11.CKA_ID, (4,))],
                            PyKCS11.Mechanism(PyKCS11.CKM_EC_KEY_PAIR_GEN))
    session.createObject([(PyKCS11.CKA_CLASS, PyKCS11.CKO_DATA), (PyKCS11.CKA_TOKEN, T),
                          (PyKCS11.CKA_PRIVATE, T), (PyKCS11.CKA_LABEL, "secret-data"),
                          (PyKCS11.CKA_APPLICATION, "tokenfs tests"),
                          (PyKCS11.CKA_VALUE, b"\x00 private bytes \xff")])
    session.logout()
    session.closeSession()
    return 0


if __name__ == "__main__":
    sys.exit(main())
