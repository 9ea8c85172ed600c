#!/usr/bin/python3
"""Damages one encrypted value of an object file so that it no longer
decrypts, found with the independent decoder (tfsdecode).

usage: damage_value.py FILE [ATTR_TYPE]   (default CKA_PRIVATE_EXPONENT, 0x123)

Flips the last byte of the block before the last: in CBC that flips the
padding byte of the plaintext, which no key accepts (CBC has no integrity;
only the padding can tell); in GCM any flip fails the tag. Prints the file
offset of the value's bytes.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tfsdecode  # noqa: E402

path = sys.argv[1]
attr_type = int(sys.argv[2], 0) if len(sys.argv) > 2 else 0x123
attr = next(a for a in tfsdecode.read_object(path).attributes if a.type == attr_type)
data = bytearray(open(path, "rb").read())
start = attr.value_offset + 8  # after the length field
data[start + len(attr.value) - 17] ^= 0x01
open(path, "wb").write(bytes(data))
print(start)
