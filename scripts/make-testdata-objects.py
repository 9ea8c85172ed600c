#!/usr/bin/python3
"""PKCS#11 helpers for scripts/make-testdata.sh.

Run by scripts/make-testdata.sh with SOFTHSM2_CONF already pointing at the
test store. The PKCS#11 subcommands need the Debian system python
(/usr/bin/python3), which has python3-pykcs11; the pyenv python on PATH does
not.

Every object is created by real SoftHSM 2.6.1 through PKCS#11
(C_GenerateKeyPair, C_GenerateKey, C_CreateObject, C_SetAttributeValue);
nothing here writes object-file bytes. The only file this script writes is
the inventory (testdata/store-inventory.tsv), which maps each object file to
the object it holds. It is built by watching which <uuid>.object files appear
in the token directory after each creation step, and cross-checked against
the plaintext attributes (class, key type, CKA_PRIVATE, and the label of
public objects) that SoftHSM wrote.

Subcommands:
  demo MODULE STORE INVENTORY          create the PyKCS11-made objects in "demo"
  relabel-second MODULE                rename the pkcs11-tool EC public key
  record STORE INVENTORY TOKEN SPEC... add the token's new object files to the
                                       inventory; SPEC is LABEL|CLASS|ID
  check-inventory STORE INVENTORY      every object file listed exactly once
"""
import ctypes
import os
import struct
import sys

# PKCS#11 numbers used by the stdlib-only parts (record, check-inventory).
CLASS_NAMES = {0: "CKO_DATA", 1: "CKO_CERTIFICATE", 2: "CKO_PUBLIC_KEY",
               3: "CKO_PRIVATE_KEY", 4: "CKO_SECRET_KEY"}
KEY_TYPE_NAMES = {0x00: "CKK_RSA", 0x03: "CKK_EC", 0x10: "CKK_GENERIC_SECRET",
                  0x1F: "CKK_AES"}
A_CLASS, A_PRIVATE, A_LABEL, A_KEY_TYPE = 0x000, 0x002, 0x003, 0x100
A_OS_TOKENLABEL = 0x80005349

# DER of the named-curve OID prime256v1 (1.2.840.10045.3.1.7).
EC_P256 = bytes.fromhex("06082a8648ce3d030107")

# Fixed, published test values (see testdata/README.md).
PUBLIC_AES128_VALUE = bytes(range(0x00, 0x10))          # 000102...0f
PRIVATE_DATA_VALUE = b"tokenfs private data object payload"
PUBLIC_DATA_VALUE = b"tokenfs public data object payload"

INVENTORY_HEADER = ("# token\ttoken_dir\tobject_file\tlabel\tclass\tkey_type"
                    "\tid\tprivate\n")


# ---------------------------------------------------------------------------
# Minimal reader of SoftHSM object files (top level only), for the inventory.

def read_attrs(path):
    with open(path, "rb") as fh:
        data = fh.read()
    attrs, p = {}, 8
    while p < len(data):
        t, k = struct.unpack_from(">QQ", data, p)
        p += 16
        if k == 1:
            v, p = data[p] != 0, p + 1
        elif k == 2:
            v, p = struct.unpack_from(">Q", data, p)[0], p + 8
        elif k in (3, 4):
            n = struct.unpack_from(">Q", data, p)[0]
            v, p = data[p + 8:p + 8 + n], p + 8 + n
        elif k == 5:
            n = struct.unpack_from(">Q", data, p)[0]
            v, p = None, p + 8 + 8 * n
        else:
            raise ValueError("%s: kind %d" % (path, k))
        attrs[t] = v
    return attrs


def token_dir(store, label):
    for d in sorted(os.listdir(store)):
        tok = os.path.join(store, d, "token.object")
        if os.path.isfile(tok):
            if read_attrs(tok)[A_OS_TOKENLABEL].rstrip(b" ").decode() == label:
                return d
    sys.exit("no token labelled %r in %s" % (label, store))


def object_files(store, tdir):
    return sorted(f for f in os.listdir(os.path.join(store, tdir))
                  if f.endswith(".object") and f != "token.object")


def inventory_rows(inventory):
    if not os.path.exists(inventory):
        return []
    with open(inventory) as fh:
        return [l.rstrip("\n").split("\t") for l in fh if not l.startswith("#")]


def record(store, inventory, token, specs):
    """specs: [(label, class name, id hex)] of the objects made since the
    last record call for this token."""
    tdir = token_dir(store, token)
    known = {(r[1], r[2]) for r in inventory_rows(inventory)}
    new = [f for f in object_files(store, tdir) if (tdir, f) not in known]
    if len(new) != len(specs):
        sys.exit("record %s: %d new object files, expected %d (%s)"
                 % (token, len(new), len(specs), ", ".join(s[0] for s in specs)))
    by_class = {}
    for f in new:
        a = read_attrs(os.path.join(store, tdir, f))
        by_class.setdefault(CLASS_NAMES[a[A_CLASS]], []).append((f, a))
    rows = []
    for label, cls, oid in specs:
        cands = by_class.get(cls, [])
        if len(cands) != 1:
            sys.exit("record %s: cannot tell which new file is %s" % (token, label))
        f, a = cands[0]
        private = a.get(A_PRIVATE, True)
        if not private and a[A_LABEL].decode() != label:
            sys.exit("record %s: %s holds label %r, expected %r"
                     % (token, f, a[A_LABEL], label))
        kt = a.get(A_KEY_TYPE)
        rows.append([token, tdir, f, label, cls,
                     KEY_TYPE_NAMES.get(kt, "-" if kt is None else hex(kt)),
                     oid or "-", "true" if private else "false"])
    with open(inventory, "a") as fh:
        if fh.tell() == 0:
            fh.write(INVENTORY_HEADER)
        for r in rows:
            fh.write("\t".join(r) + "\n")


def check_inventory(store, inventory):
    listed = [(r[1], r[2]) for r in inventory_rows(inventory)]
    on_disk = [(d, f) for d in sorted(os.listdir(store))
               if os.path.isdir(os.path.join(store, d))
               for f in object_files(store, d)]
    if sorted(listed) != sorted(on_disk) or len(set(listed)) != len(listed):
        sys.exit("inventory does not match the store:\n listed %s\n on disk %s"
                 % (sorted(listed), sorted(on_disk)))
    print("inventory: %d objects, every object file listed once" % len(listed))


# ---------------------------------------------------------------------------
# PKCS#11 (PyKCS11) parts

def open_session(module, token_label, pin):
    import PyKCS11
    from PyKCS11.LowLevel import CKF_RW_SESSION, CKF_SERIAL_SESSION, CKU_USER
    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    for s in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(s).label.strip() == token_label:
            ses = lib.openSession(s, CKF_SERIAL_SESSION | CKF_RW_SESSION)
            ses.login(pin, CKU_USER)
            return ses
    sys.exit("no token labelled %r" % token_label)


def mechs(*mech):
    """CKA_ALLOWED_MECHANISMS value: a native CK_MECHANISM_TYPE array.

    PyKCS11 treats this attribute as a byte array, so pass the bytes of the
    C array (native unsigned long, native byte order) exactly as a C caller
    would.
    """
    return bytes((ctypes.c_ulong * len(mech))(*mech))


def demo(module, store, inventory):
    import PyKCS11
    from PyKCS11.LowLevel import (
        CKA_ALLOWED_MECHANISMS, CKA_APPLICATION, CKA_CLASS, CKA_DECRYPT,
        CKA_DERIVE, CKA_EC_PARAMS, CKA_ENCRYPT, CKA_EXTRACTABLE, CKA_ID,
        CKA_KEY_TYPE, CKA_LABEL, CKA_MODULUS_BITS, CKA_PRIVATE,
        CKA_PUBLIC_EXPONENT, CKA_SENSITIVE, CKA_SIGN, CKA_TOKEN, CKA_UNWRAP,
        CKA_UNWRAP_TEMPLATE, CKA_VALUE, CKA_VALUE_LEN, CKA_VERIFY, CKA_WRAP,
        CKA_WRAP_TEMPLATE, CKK_AES, CKK_EC, CKK_GENERIC_SECRET, CKK_RSA,
        CKM_AES_KEY_GEN, CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_PAD,
        CKM_EC_KEY_PAIR_GEN, CKM_ECDSA, CKM_ECDSA_SHA256,
        CKM_GENERIC_SECRET_KEY_GEN, CKM_RSA_PKCS, CKM_RSA_PKCS_KEY_PAIR_GEN,
        CKM_RSA_PKCS_PSS, CKM_SHA256_HMAC, CKM_SHA256_RSA_PKCS, CKO_DATA,
        CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_SECRET_KEY,
    )
    T, F = PyKCS11.CK_TRUE, PyKCS11.CK_FALSE

    session = open_session(module, "demo", "user-pin-1")

    def rec(*specs):
        record(store, inventory, "demo", [s.split("|") for s in specs])

    # 01: RSA 2048 key pair generated on the token. The private key is
    # sensitive and never extractable, and carries a mechanism set.
    session.generateKeyPair(
        [
            (CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, CKK_RSA),
            (CKA_TOKEN, T), (CKA_PRIVATE, F),
            (CKA_LABEL, "rsa2048-gen-pub"), (CKA_ID, bytes([0x01])),
            (CKA_MODULUS_BITS, 2048),
            (CKA_PUBLIC_EXPONENT, bytes([0x01, 0x00, 0x01])),
            (CKA_VERIFY, T), (CKA_ENCRYPT, T),
        ],
        [
            (CKA_CLASS, CKO_PRIVATE_KEY), (CKA_KEY_TYPE, CKK_RSA),
            (CKA_TOKEN, T), (CKA_PRIVATE, T),
            (CKA_LABEL, "rsa2048-gen-priv"), (CKA_ID, bytes([0x01])),
            (CKA_SENSITIVE, T), (CKA_EXTRACTABLE, F),
            (CKA_SIGN, T), (CKA_DECRYPT, T),
            (CKA_ALLOWED_MECHANISMS,
             mechs(CKM_RSA_PKCS, CKM_SHA256_RSA_PKCS, CKM_RSA_PKCS_PSS)),
        ],
        mecha=PyKCS11.Mechanism(CKM_RSA_PKCS_KEY_PAIR_GEN, None),
    )
    rec("rsa2048-gen-pub|CKO_PUBLIC_KEY|01", "rsa2048-gen-priv|CKO_PRIVATE_KEY|01")

    # 02: EC P-256 key pair generated on the token.
    session.generateKeyPair(
        [
            (CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, CKK_EC),
            (CKA_TOKEN, T), (CKA_PRIVATE, F),
            (CKA_LABEL, "ec-p256-gen-pub"), (CKA_ID, bytes([0x02])),
            (CKA_EC_PARAMS, EC_P256), (CKA_VERIFY, T),
        ],
        [
            (CKA_CLASS, CKO_PRIVATE_KEY), (CKA_KEY_TYPE, CKK_EC),
            (CKA_TOKEN, T), (CKA_PRIVATE, T),
            (CKA_LABEL, "ec-p256-gen-priv"), (CKA_ID, bytes([0x02])),
            (CKA_SENSITIVE, T), (CKA_EXTRACTABLE, F),
            (CKA_SIGN, T), (CKA_DERIVE, T),
            (CKA_ALLOWED_MECHANISMS, mechs(CKM_ECDSA, CKM_ECDSA_SHA256)),
        ],
        mecha=PyKCS11.Mechanism(CKM_EC_KEY_PAIR_GEN, None),
    )
    rec("ec-p256-gen-pub|CKO_PUBLIC_KEY|02", "ec-p256-gen-priv|CKO_PRIVATE_KEY|02")

    # 03: AES-256, private and sensitive.
    session.generateKey(
        [
            (CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES),
            (CKA_TOKEN, T), (CKA_PRIVATE, T),
            (CKA_LABEL, "aes256-private"), (CKA_ID, bytes([0x03])),
            (CKA_VALUE_LEN, 32), (CKA_SENSITIVE, T), (CKA_EXTRACTABLE, F),
            (CKA_ENCRYPT, T), (CKA_DECRYPT, T),
        ],
        mecha=PyKCS11.Mechanism(CKM_AES_KEY_GEN, None),
    )
    rec("aes256-private|CKO_SECRET_KEY|03")

    # 04: generic secret, 32 bytes, private and sensitive.
    session.generateKey(
        [
            (CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_GENERIC_SECRET),
            (CKA_TOKEN, T), (CKA_PRIVATE, T),
            (CKA_LABEL, "generic-secret-32"), (CKA_ID, bytes([0x04])),
            (CKA_VALUE_LEN, 32), (CKA_SENSITIVE, T), (CKA_EXTRACTABLE, F),
            (CKA_SIGN, T), (CKA_VERIFY, T),
            (CKA_ALLOWED_MECHANISMS, mechs(CKM_SHA256_HMAC)),
        ],
        mecha=PyKCS11.Mechanism(CKM_GENERIC_SECRET_KEY_GEN, None),
    )
    rec("generic-secret-32|CKO_SECRET_KEY|04")

    # 05: AES-128 with CKA_PRIVATE false, extractable, not sensitive, with a
    # fixed known value: on disk it is plaintext, on purpose.
    session.createObject([
        (CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES),
        (CKA_TOKEN, T), (CKA_PRIVATE, F),
        (CKA_LABEL, "aes128-public-plaintext"), (CKA_ID, bytes([0x05])),
        (CKA_VALUE, PUBLIC_AES128_VALUE),
        (CKA_SENSITIVE, F), (CKA_EXTRACTABLE, T),
        (CKA_ENCRYPT, T), (CKA_DECRYPT, T),
    ])
    rec("aes128-public-plaintext|CKO_SECRET_KEY|05")

    # 06 is the imported RSA key + certificate (softhsm2-util / pkcs11-tool).

    # 07: AES-256 wrapping key with non-empty wrap/unwrap templates
    # (attribute maps: bool, ulong and byte-string entries) and a mechanism
    # set.
    session.generateKey(
        [
            (CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES),
            (CKA_TOKEN, T), (CKA_PRIVATE, T),
            (CKA_LABEL, "aes256-wrapping-templates"), (CKA_ID, bytes([0x07])),
            (CKA_VALUE_LEN, 32), (CKA_SENSITIVE, T), (CKA_EXTRACTABLE, F),
            (CKA_WRAP, T), (CKA_UNWRAP, T),
            (CKA_WRAP_TEMPLATE, [
                (CKA_CLASS, CKO_SECRET_KEY),
                (CKA_KEY_TYPE, CKK_AES),
                (CKA_EXTRACTABLE, T),
            ]),
            (CKA_UNWRAP_TEMPLATE, [
                (CKA_CLASS, CKO_SECRET_KEY),
                (CKA_KEY_TYPE, CKK_AES),
                (CKA_LABEL, "unwrapped-by-07"),
                (CKA_SENSITIVE, T),
                (CKA_EXTRACTABLE, F),
            ]),
            (CKA_ALLOWED_MECHANISMS,
             mechs(CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_PAD)),
        ],
        mecha=PyKCS11.Mechanism(CKM_AES_KEY_GEN, None),
    )
    rec("aes256-wrapping-templates|CKO_SECRET_KEY|07")

    # Private data object.
    session.createObject([
        (CKA_CLASS, CKO_DATA), (CKA_TOKEN, T), (CKA_PRIVATE, T),
        (CKA_LABEL, "data-private"), (CKA_APPLICATION, "tokenfs-tests"),
        (CKA_VALUE, PRIVATE_DATA_VALUE),
    ])
    rec("data-private|CKO_DATA|")

    # Public data object.
    session.createObject([
        (CKA_CLASS, CKO_DATA), (CKA_TOKEN, T), (CKA_PRIVATE, F),
        (CKA_LABEL, "data-public"), (CKA_APPLICATION, "tokenfs-tests"),
        (CKA_VALUE, PUBLIC_DATA_VALUE),
    ])
    rec("data-public|CKO_DATA|")

    # Read back what must be readable, as a sanity check of the intent.
    h = session.findObjects([(CKA_LABEL, "aes128-public-plaintext")])
    assert len(h) == 1
    val = bytes(session.getAttributeValue(h[0], [CKA_VALUE])[0])
    assert val == PUBLIC_AES128_VALUE, val.hex()
    h = session.findObjects([(CKA_LABEL, "data-private")])
    assert len(h) == 1
    val = bytes(session.getAttributeValue(h[0], [CKA_VALUE])[0])
    assert val == PRIVATE_DATA_VALUE, val

    session.logout()
    session.closeSession()


def relabel_second(module):
    """pkcs11-tool gives both halves of a key pair the same label; rename the
    public key through C_SetAttributeValue so every label is distinct (this
    also leaves one object that was modified after its creation)."""
    from PyKCS11.LowLevel import CKA_CLASS, CKA_LABEL, CKO_PUBLIC_KEY
    ses = open_session(module, "second", "user-pin-2")
    objs = ses.findObjects([(CKA_CLASS, CKO_PUBLIC_KEY),
                            (CKA_LABEL, "ec-p384-gen-priv")])
    assert len(objs) == 1, objs
    ses.setAttributeValue(objs[0], [(CKA_LABEL, "ec-p384-gen-pub")])
    ses.logout()
    ses.closeSession()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "demo" and len(args) == 3:
        demo(*args)
    elif cmd == "relabel-second" and len(args) == 1:
        relabel_second(*args)
    elif cmd == "record" and len(args) >= 4:
        record(args[0], args[1], args[2], [s.split("|") for s in args[3:]])
    elif cmd == "check-inventory" and len(args) == 2:
        check_inventory(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
