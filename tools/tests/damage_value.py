#!/usr/bin/python3
"""Damages or rewrites values of a real store's object files, found with the
independent decoder (tfsdecode), for tests that need a defect SoftHSM's
API cannot make.

usage:
  damage_value.py FILE [ATTR_TYPE]
      Flips the last byte of the block before the last of an encrypted
      value (default CKA_PRIVATE_EXPONENT, 0x123): in CBC that flips the
      padding byte of the plaintext, which no key accepts (CBC has no
      integrity; only the padding can tell); in GCM any flip fails the tag.
      Prints the file offset of the value's bytes.
  damage_value.py --set FILE ATTR_TYPE HEX [PIN_ENV]
      Replaces the value of byte-string attribute ATTR_TYPE with HEX (""
      for empty). A non-empty value of a private object is encrypted (CBC,
      SoftHSM's layout) under the token key, which the user PIN in
      $PIN_ENV unwraps from FILE's token.object. Everything else of the
      file stays byte for byte.
  damage_value.py --bool FILE ATTR_TYPE 0|1
      Sets bool attribute ATTR_TYPE (0x00 or 0xff, as SoftHSM writes).
  damage_value.py --kind FILE ATTR_TYPE
      Stores ATTR_TYPE as a ulong 0 instead of what it is (a wrong kind).
  damage_value.py --blob-length TOKEN_OBJECT PIN_ENV
      Rewraps the user PIN blob with the right PIN around "RJR" and only 31
      bytes of the token key: it opens, and holds the wrong length.
"""
import os
import struct
import sys

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tfsdecode  # noqa: E402


def find(obj, attr_type):
    return next(a for a in obj.attributes if a.type == attr_type)


def cbc_encrypt(key, plain):
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv + enc.update(padded) + enc.finalize()


def user_token_key(token_object, pin_env):
    meta = tfsdecode.read_object(token_object)
    blob = meta.last(tfsdecode.CKA_OS_USERPIN).value
    key, _ = tfsdecode.unwrap_pin_blob(blob, os.environ[pin_env].encode())
    return key


def end_of(data, attr):
    """Where an attribute's stored bytes end (kind 3: length + bytes)."""
    if attr.kind == tfsdecode.KIND_BYTES:
        (n,) = struct.unpack(">Q", data[attr.value_offset:attr.value_offset + 8])
        return attr.value_offset + 8 + n
    if attr.kind == tfsdecode.KIND_ULONG:
        return attr.value_offset + 8
    if attr.kind == tfsdecode.KIND_BOOL:
        return attr.value_offset + 1
    raise SystemExit("damage_value: only bool, ulong and byte-string attributes")


def flip(path, attr_type):
    attr = find(tfsdecode.read_object(path), attr_type)
    data = bytearray(open(path, "rb").read())
    start = attr.value_offset + 8  # after the length field
    data[start + len(attr.value) - 17] ^= 0x01
    open(path, "wb").write(bytes(data))
    print(start)


def set_value(path, attr_type, value, pin_env):
    obj = tfsdecode.read_object(path)
    attr = find(obj, attr_type)
    data = open(path, "rb").read()
    if value and tfsdecode.is_private(obj):
        if pin_env is None:
            raise SystemExit("damage_value: a private object's value needs PIN_ENV")
        tokobj = os.path.join(os.path.dirname(path), "token.object")
        value = cbc_encrypt(user_token_key(tokobj, pin_env), value)
    new = struct.pack(">Q", len(value)) + value
    open(path, "wb").write(data[:attr.value_offset] + new + data[end_of(data, attr):])


def set_kind(path, attr_type):
    attr = find(tfsdecode.read_object(path), attr_type)
    data = open(path, "rb").read()
    new = struct.pack(">QQ", tfsdecode.KIND_ULONG, 0)
    open(path, "wb").write(data[:attr.offset + 8] + new + data[end_of(data, attr):])


def set_bool(path, attr_type, value):
    attr = find(tfsdecode.read_object(path), attr_type)
    data = bytearray(open(path, "rb").read())
    data[attr.value_offset] = 0xFF if value else 0x00
    open(path, "wb").write(bytes(data))


def blob_length(path, pin_env):
    key = user_token_key(path, pin_env)
    salt = os.urandom(8)
    master = tfsdecode.kdf(os.environ[pin_env].encode(), salt)
    blob = salt + cbc_encrypt(master, tfsdecode.PIN_MAGIC + key[:31])
    assert len(blob) == 72  # 34 bytes pad to 48, as 35 do
    set_value_raw(path, tfsdecode.CKA_OS_USERPIN, blob)


def set_value_raw(path, attr_type, value):
    attr = find(tfsdecode.read_object(path), attr_type)
    data = open(path, "rb").read()
    new = struct.pack(">Q", len(value)) + value
    open(path, "wb").write(data[:attr.value_offset] + new + data[end_of(data, attr):])


def main(argv):
    if argv[:1] == ["--set"]:
        set_value(argv[1], int(argv[2], 0), bytes.fromhex(argv[3]),
                  argv[4] if len(argv) > 4 else None)
    elif argv[:1] == ["--bool"]:
        set_bool(argv[1], int(argv[2], 0), int(argv[3]))
    elif argv[:1] == ["--kind"]:
        set_kind(argv[1], int(argv[2], 0))
    elif argv[:1] == ["--blob-length"]:
        blob_length(argv[1], argv[2])
    else:
        flip(argv[0], int(argv[1], 0) if len(argv) > 1 else 0x123)


if __name__ == "__main__":
    main(sys.argv[1:])
