#!/usr/bin/python3
"""Benchmark stores: fill one SoftHSM 2.6.1 token with N objects, and
count what a store holds.

Usage: make-store.py fill MODULE TOKEN_LABEL USER_PIN POOL_DIR N
       make-store.py fill-aes MODULE TOKEN_LABEL USER_PIN POOL_DIR N
       make-store.py stats TOKENDIR

SOFTHSM2_CONF must already point at the benchmark tokendir, and the token
must already be initialised (bench/run.sh does both). Every object is created
by real SoftHSM through PKCS#11 (PyKCS11, /usr/bin/python3), in one logged-in
session; nothing here writes object-file bytes.

The mix repeats in blocks of 10 objects (N must be a multiple of 10):

  2  AES-256 secret keys, private, sensitive        C_GenerateKey
  2  EC P-256 key pair (public + private)           C_GenerateKeyPair
  2  RSA 2048 key pair (public + private)           C_CreateObject
  2  X.509 certificates, public: the RSA pair's     C_CreateObject
     (same CKA_ID) and an EC one with no key here
  2  data objects, one private (256 B), one public  C_CreateObject

`fill-aes` makes N private, sensitive AES-256 keys (C_GenerateKey) and
nothing else: the store where decryption and the JSON writer, not
certificate decoding, set the pace (POOL_DIR is not used).

RSA 2048 generation inside SoftHSM costs ~0.1 s a pair, far too slow for
thousands, so the RSA keys (and the certificates) come from a small pool
made once by openssl (POOL_DIR/rsa-K.der, PKCS#1 DER; POOL_DIR/cert-*-K.der)
and are reused under distinct labels and ids: SoftHSM still encrypts every
copy with its own random IV, so no two object files are alike.

Progress goes to stderr; the last line on stdout is "created N objects in S s".

`stats` prints one line of key=value pairs about a tokendir (stdlib only):
objects (.object files other than token.object), files and bytes (every
file), encrypted_values and encrypted_bytes (non-empty top-level byte
strings of objects whose CKA_PRIVATE is true or absent: what a PIN run
decrypts).
"""
import glob
import os
import sys
import time


# --- just enough DER to take apart an RSAPrivateKey and an X.509 certificate

def der_read(buf, p):
    """Returns (tag, start of content, end of content) of the TLV at p."""
    tag = buf[p]
    n = buf[p + 1]
    p += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[p:p + k], "big")
        p += k
    return tag, p, p + n


def der_children(buf, start, end):
    out, p = [], start
    while p < end:
        tag, s, e = der_read(buf, p)
        out.append((tag, p, s, e))
        p = e
    return out


def rsa_components(der):
    """PKCS#1 RSAPrivateKey -> dict of unsigned big-endian byte strings."""
    _, s, e = der_read(der, 0)
    ints = [der[cs:ce].lstrip(b"\x00") or b"\x00" for (_, _, cs, ce) in der_children(der, s, e)]
    names = ["version", "n", "e", "d", "p", "q", "dp", "dq", "qinv"]
    return dict(zip(names, ints))


def cert_fields(der):
    """X.509 DER -> (serial INTEGER TLV, issuer Name TLV, subject Name TLV)."""
    _, s, e = der_read(der, 0)                       # Certificate
    _, tbs_s, tbs_e = der_read(der, s)               # TBSCertificate
    kids = der_children(der, tbs_s, tbs_e)
    if kids[0][0] == 0xA0:                           # [0] version
        kids = kids[1:]
    tlv = lambda k: der[k[1]:k[3]]
    # serial, signature, issuer, validity, subject
    return tlv(kids[0]), tlv(kids[2]), tlv(kids[4])


def stats(tokendir):
    import struct
    objects = files = size = enc_values = enc_bytes = 0
    for root, _, names in os.walk(tokendir):
        for name in names:
            path = os.path.join(root, name)
            files += 1
            size += os.path.getsize(path)
            if not name.endswith(".object") or name == "token.object":
                continue
            objects += 1
            data = open(path, "rb").read()
            p, private, strings = 8, True, []
            while p < len(data):
                t, k = struct.unpack_from(">QQ", data, p)
                p += 16
                if k == 1:
                    if t == 0x2:                     # CKA_PRIVATE
                        private = data[p] != 0
                    p += 1
                elif k == 2:
                    p += 8
                elif k in (3, 4):
                    n = struct.unpack_from(">Q", data, p)[0]
                    if k == 3 and n:
                        strings.append(n)
                    p += 8 + n
                elif k == 5:
                    p += 8 + 8 * struct.unpack_from(">Q", data, p)[0]
                else:
                    sys.exit("%s: unknown kind %d" % (path, k))
            if private:
                enc_values += len(strings)
                enc_bytes += sum(strings)
    print("objects=%d files=%d bytes=%d encrypted_values=%d encrypted_bytes=%d"
          % (objects, files, size, enc_values, enc_bytes))


def fill_aes(module, label, pin, n):
    import PyKCS11
    from PyKCS11.LowLevel import (
        CKA_CLASS, CKA_DECRYPT, CKA_ENCRYPT, CKA_EXTRACTABLE, CKA_ID, CKA_KEY_TYPE,
        CKA_LABEL, CKA_PRIVATE, CKA_SENSITIVE, CKA_TOKEN, CKA_UNWRAP, CKA_VALUE_LEN,
        CKA_WRAP, CKF_RW_SESSION, CKF_SERIAL_SESSION, CKK_AES, CKM_AES_KEY_GEN,
        CKO_SECRET_KEY, CKU_USER,
    )
    T, F = PyKCS11.CK_TRUE, PyKCS11.CK_FALSE
    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    slot = next(s for s in lib.getSlotList(tokenPresent=True)
                if lib.getTokenInfo(s).label.strip() == label)
    ses = lib.openSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
    ses.login(pin, CKU_USER)
    gen = PyKCS11.Mechanism(CKM_AES_KEY_GEN, None)
    t0 = time.monotonic()
    for k in range(n):
        ses.generateKey([
            (CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES),
            (CKA_TOKEN, T), (CKA_PRIVATE, T),
            (CKA_LABEL, "aes256-%06d" % k), (CKA_ID, k.to_bytes(4, "big")),
            (CKA_VALUE_LEN, 32), (CKA_SENSITIVE, T), (CKA_EXTRACTABLE, F),
            (CKA_ENCRYPT, T), (CKA_DECRYPT, T), (CKA_WRAP, T), (CKA_UNWRAP, T),
        ], mecha=gen)
        if (k + 1) % 1000 == 0 and k + 1 < n:
            sys.stderr.write("  %d/%d keys, %.0f s\n" % (k + 1, n, time.monotonic() - t0))
    ses.logout()
    ses.closeSession()
    print("created %d objects in %.1f s" % (n, time.monotonic() - t0))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "stats":
        return stats(sys.argv[2])
    if len(sys.argv) != 7 or sys.argv[1] not in ("fill", "fill-aes"):
        sys.exit(__doc__)
    aes_only = sys.argv[1] == "fill-aes"
    module, label, pin, pool, n = sys.argv[2:]
    n = int(n)
    if n <= 0 or n % 10:
        sys.exit("N must be a positive multiple of 10")

    import PyKCS11
    from PyKCS11.LowLevel import (
        CKA_APPLICATION, CKA_CERTIFICATE_TYPE, CKA_CLASS, CKA_COEFFICIENT,
        CKA_DECRYPT, CKA_DERIVE, CKA_EC_PARAMS, CKA_ENCRYPT, CKA_EXPONENT_1,
        CKA_EXPONENT_2, CKA_EXTRACTABLE, CKA_ID, CKA_ISSUER, CKA_KEY_TYPE,
        CKA_LABEL, CKA_MODULUS, CKA_PRIME_1, CKA_PRIME_2, CKA_PRIVATE,
        CKA_PRIVATE_EXPONENT, CKA_PUBLIC_EXPONENT, CKA_SENSITIVE,
        CKA_SERIAL_NUMBER, CKA_SIGN, CKA_SUBJECT, CKA_TOKEN, CKA_UNWRAP,
        CKA_VALUE, CKA_VALUE_LEN, CKA_VERIFY, CKA_WRAP, CKC_X_509, CKF_RW_SESSION,
        CKF_SERIAL_SESSION, CKK_AES, CKK_EC, CKK_RSA, CKM_AES_KEY_GEN,
        CKM_EC_KEY_PAIR_GEN, CKO_CERTIFICATE, CKO_DATA, CKO_PRIVATE_KEY,
        CKO_PUBLIC_KEY, CKO_SECRET_KEY, CKU_USER,
    )
    T, F = PyKCS11.CK_TRUE, PyKCS11.CK_FALSE
    EC_P256 = bytes.fromhex("06082a8648ce3d030107")

    if aes_only:
        return fill_aes(module, label, pin, n)
    rsa = [rsa_components(open(f, "rb").read())
           for f in sorted(glob.glob(os.path.join(pool, "rsa-*.der")))]
    rsa_certs = [open(f, "rb").read() for f in sorted(glob.glob(os.path.join(pool, "cert-rsa-*.der")))]
    ec_certs = [open(f, "rb").read() for f in sorted(glob.glob(os.path.join(pool, "cert-ec-*.der")))]
    if not rsa or len(rsa_certs) != len(rsa) or not ec_certs:
        sys.exit("pool %s is incomplete" % pool)
    rsa_certs = [(c,) + cert_fields(c) for c in rsa_certs]
    ec_certs = [(c,) + cert_fields(c) for c in ec_certs]

    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    slot = next(s for s in lib.getSlotList(tokenPresent=True)
                if lib.getTokenInfo(s).label.strip() == label)
    ses = lib.openSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
    ses.login(pin, CKU_USER)

    aes_gen = PyKCS11.Mechanism(CKM_AES_KEY_GEN, None)
    ec_gen = PyKCS11.Mechanism(CKM_EC_KEY_PAIR_GEN, None)
    tty = sys.stderr.isatty()
    t0 = time.monotonic()
    made = 0

    def progress(final=False):
        el = time.monotonic() - t0
        msg = "  %d/%d objects, %.0f s, %.0f objects/s" % (made, n, el, made / el if el else 0)
        if tty:
            sys.stderr.write("\r" + msg + ("\n" if final else ""))
        elif final or made % 1000 == 0:
            sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    for b in range(n // 10):
        oid = b.to_bytes(4, "big")
        tag = "%06d" % b
        # 2 AES-256, private and sensitive
        for k in range(2):
            ses.generateKey([
                (CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES),
                (CKA_TOKEN, T), (CKA_PRIVATE, T),
                (CKA_LABEL, "aes256-%s-%d" % (tag, k)), (CKA_ID, oid + bytes([k])),
                (CKA_VALUE_LEN, 32), (CKA_SENSITIVE, T), (CKA_EXTRACTABLE, F),
                (CKA_ENCRYPT, T), (CKA_DECRYPT, T), (CKA_WRAP, T), (CKA_UNWRAP, T),
            ], mecha=aes_gen)
        # EC P-256 pair, generated on the token
        ses.generateKeyPair(
            [(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, CKK_EC),
             (CKA_TOKEN, T), (CKA_PRIVATE, F),
             (CKA_LABEL, "ec-p256-%s" % tag), (CKA_ID, oid + b"\x02"),
             (CKA_EC_PARAMS, EC_P256), (CKA_VERIFY, T)],
            [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_KEY_TYPE, CKK_EC),
             (CKA_TOKEN, T), (CKA_PRIVATE, T),
             (CKA_LABEL, "ec-p256-%s" % tag), (CKA_ID, oid + b"\x02"),
             (CKA_SENSITIVE, T), (CKA_EXTRACTABLE, F), (CKA_SIGN, T), (CKA_DERIVE, T)],
            mecha=ec_gen)
        # RSA 2048 pair from the pool
        r = rsa[b % len(rsa)]
        ses.createObject([
            (CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, CKK_RSA),
            (CKA_TOKEN, T), (CKA_PRIVATE, F),
            (CKA_LABEL, "rsa2048-%s" % tag), (CKA_ID, oid + b"\x03"),
            (CKA_MODULUS, r["n"]), (CKA_PUBLIC_EXPONENT, r["e"]),
            (CKA_VERIFY, T), (CKA_ENCRYPT, T)])
        ses.createObject([
            (CKA_CLASS, CKO_PRIVATE_KEY), (CKA_KEY_TYPE, CKK_RSA),
            (CKA_TOKEN, T), (CKA_PRIVATE, T),
            (CKA_LABEL, "rsa2048-%s" % tag), (CKA_ID, oid + b"\x03"),
            (CKA_MODULUS, r["n"]), (CKA_PUBLIC_EXPONENT, r["e"]),
            (CKA_PRIVATE_EXPONENT, r["d"]), (CKA_PRIME_1, r["p"]), (CKA_PRIME_2, r["q"]),
            (CKA_EXPONENT_1, r["dp"]), (CKA_EXPONENT_2, r["dq"]), (CKA_COEFFICIENT, r["qinv"]),
            (CKA_SENSITIVE, T), (CKA_EXTRACTABLE, F), (CKA_SIGN, T), (CKA_DECRYPT, T)])
        # certificates: the RSA key's (same CKA_ID as its pair), and an EC
        # certificate without a key on the token (a CA's or a peer's: its own
        # CKA_ID; sharing the generated EC pair's id would claim a key pair
        # it does not match, which verify-integrity rightly reports)
        for (der, serial, issuer, subject), sub, idb in (
                (rsa_certs[b % len(rsa_certs)], "rsa", b"\x03"),
                (ec_certs[b % len(ec_certs)], "ec-ca", b"\x04")):
            ses.createObject([
                (CKA_CLASS, CKO_CERTIFICATE), (CKA_CERTIFICATE_TYPE, CKC_X_509),
                (CKA_TOKEN, T), (CKA_PRIVATE, F),
                (CKA_LABEL, "cert-%s-%s" % (sub, tag)), (CKA_ID, oid + idb),
                (CKA_SUBJECT, subject), (CKA_ISSUER, issuer),
                (CKA_SERIAL_NUMBER, serial), (CKA_VALUE, der)])
        # data objects
        ses.createObject([
            (CKA_CLASS, CKO_DATA), (CKA_TOKEN, T), (CKA_PRIVATE, T),
            (CKA_LABEL, "data-private-%s" % tag), (CKA_APPLICATION, "tokenfs-bench"),
            (CKA_VALUE, os.urandom(256))])
        ses.createObject([
            (CKA_CLASS, CKO_DATA), (CKA_TOKEN, T), (CKA_PRIVATE, F),
            (CKA_LABEL, "data-public-%s" % tag), (CKA_APPLICATION, "tokenfs-bench"),
            (CKA_VALUE, os.urandom(128))])
        made += 10
        if tty or (made % 1000 == 0 and made < n):
            progress()
    progress(final=True)
    ses.logout()
    ses.closeSession()
    print("created %d objects in %.1f s" % (made, time.monotonic() - t0))


if __name__ == "__main__":
    main()
