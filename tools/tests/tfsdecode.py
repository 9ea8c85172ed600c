#!/usr/bin/python3
"""tfsdecode: an independent reader of SoftHSMv2 token stores, for tests.

Written from the format description (FORMAT.md sections 2 and 3) and
nothing else: it shares no code with libtokenfs and never runs tokenfs, so
when both agree on a store, the agreement means something.  It exists to
check what `tokenfs migrate` writes (the AES-GCM layout of SoftHSMv2 pull
request #627, or back to CBC) from the outside.

What it does:
  * parses object files strictly (every length bounded by the bytes that
    remain, trailing bytes are an error) and keeps the byte offset of every
    attribute and value;
  * derives master keys from PINs, unwraps the PIN blobs in either layout and
    reports which layout each blob uses;
  * decrypts every encrypted value (GCM tried first, since a tag match is
    conclusive; then CBC) and reports the layout of each; a value that
    decrypts in neither is an error, never silently skipped.

As a module: decode_token(), layout_signature(), layout_problems().
As a command:
    tfsdecode.py TOKEN_DIR [--so-pin-env VAR] [--user-pin-env VAR]
                           [--so-pin PIN] [--user-pin PIN]
prints a JSON summary (plaintexts as hex; never a PIN, and the token key
only as a SHA-256 fingerprint).

Needs Debian's /usr/bin/python3 with python3-cryptography.
"""
import argparse
import hashlib
import json
import os
import stat
import struct
import sys
from dataclasses import dataclass, field
from typing import List, Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# Attribute kinds of the object-file grammar.
KIND_BOOL, KIND_ULONG, KIND_BYTES, KIND_MAP, KIND_MECHS = 1, 2, 3, 4, 5
KIND_NAMES = {KIND_BOOL: "bool", KIND_ULONG: "ulong", KIND_BYTES: "bytes",
              KIND_MAP: "map", KIND_MECHS: "mechanisms"}

CKA_PRIVATE = 0x2
# Vendor attributes of token.object (CKA_VENDOR_DEFINED + 'SH' + n).
CKA_OS_TOKENLABEL = 0x80005349
CKA_OS_TOKENSERIAL = 0x8000534A
CKA_OS_TOKENFLAGS = 0x8000534B
CKA_OS_SOPIN = 0x8000534C
CKA_OS_USERPIN = 0x8000534D
BLOB_TYPES = {"so": CKA_OS_SOPIN, "user": CKA_OS_USERPIN}

PIN_BLOB_LEN = 72
SALT_LEN, IV_LEN, TAG_LEN, KEY_LEN = 8, 16, 16, 32
PIN_MAGIC = b"RJR"
KDF_BASE_ROUNDS = 1500

LAYOUT_GCM, LAYOUT_CBC = "gcm", "cbc"


class FormatError(Exception):
    """A file does not follow the object-file grammar; names file and offset.

    offset follows the rule of testdata/malformed/MANIFEST.tsv: a fixed-size
    field that does not fit -> where it starts (inside a map: the map's
    length field); a length or count too large -> that length/count field;
    a bad kind -> that kind field.
    """

    def __init__(self, message, offset):
        super().__init__(message)
        self.offset = offset


class DecryptError(Exception):
    """A PIN blob or value that decrypts in neither layout."""


class WrongPin(DecryptError):
    """A PIN that unwraps its blob in neither layout."""


# ---------------------------------------------------------------------------
# Object files

@dataclass
class Attribute:
    """One attribute (or map entry) as stored, with where it was found.

    offset is where its type field starts; value_offset where its value
    starts (for kind 3, 4 and 5: the length/count field).  For kind-3 values
    of encrypted objects, plaintext and layout are filled by decryption.
    """
    type: int
    kind: int
    offset: int
    value_offset: int
    value: object
    plaintext: Optional[bytes] = None
    layout: Optional[str] = None

    @property
    def encrypted(self):
        return self.layout is not None


@dataclass
class ObjectFile:
    """A parsed object file: its generation counter and attributes in order."""
    generation: int
    attributes: List[Attribute] = field(default_factory=list)

    def last(self, type_):
        """The attribute of that type that SoftHSM would use (the last one)."""
        found = [a for a in self.attributes if a.type == type_]
        return found[-1] if found else None


class _Reader:
    """A cursor over bytes that refuses to read past `end`.

    Every read names the field, so a FormatError says what was cut where.
    map_at is the offset of the enclosing map's length field (None at top
    level): a field cut by the map's end is blamed on that length.
    """

    def __init__(self, data, pos, end, name, map_at=None):
        self.data, self.pos, self.end, self.name, self.map_at = data, pos, end, name, map_at

    def remaining(self):
        return self.end - self.pos

    def fail(self, message, offset):
        if self.map_at is not None:
            message += f" (inside the map whose length is at offset {self.map_at})"
        raise FormatError(f"{self.name}: {message}", offset)

    def take(self, n, what):
        if n > self.remaining():
            self.fail(f"{what} at offset {self.pos} needs {n} bytes, {self.remaining()} remain",
                      self.pos if self.map_at is None else self.map_at)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u64(self, what):
        return struct.unpack(">Q", self.take(8, what))[0]


def _parse_value(r, kind, in_map):
    """Reads one value of `kind`; maps are allowed only at top level."""
    if kind == KIND_BOOL:
        return r.take(1, "bool")[0] != 0
    if kind == KIND_ULONG:
        return r.u64("ulong")
    if kind == KIND_BYTES:
        at = r.pos
        n = r.u64("byte-string length")
        if n > r.remaining():
            r.fail(f"byte-string length {n} at offset {at} exceeds the {r.remaining()} "
                   "bytes that remain", at)
        return r.take(n, "byte string")
    if kind == KIND_MECHS:
        at = r.pos
        count = r.u64("mechanism count")
        if count > r.remaining() // 8:
            r.fail(f"mechanism count {count} at offset {at} exceeds the {r.remaining()} "
                   "bytes that remain", at)
        return [r.u64("mechanism") for _ in range(count)]
    if kind == KIND_MAP and not in_map:
        at = r.pos
        n = r.u64("map length")
        if n > r.remaining():
            r.fail(f"map length {n} at offset {at} exceeds the {r.remaining()} bytes that remain",
                   at)
        inner = _Reader(r.data, r.pos, r.pos + n, r.name, map_at=at)
        entries = _parse_attributes(inner, in_map=True)
        r.pos = inner.end
        return entries
    where = "inside a map" if in_map else "at top level"
    r.fail(f"kind {kind} at offset {r.pos - 8} is not allowed {where}", r.pos - 8)


def _parse_attributes(r, in_map):
    """Reads attributes until the reader's end, which must be met exactly."""
    attrs = []
    while r.remaining() > 0:
        start = r.pos
        type_ = r.u64("attribute type")
        kind = r.u64("attribute kind")
        value_offset = r.pos
        value = _parse_value(r, kind, in_map)
        attrs.append(Attribute(type_, kind, start, value_offset, value))
    return attrs


def parse_object(data, name="object"):
    """Parses a whole object file (bytes) into an ObjectFile.

    Strict on purpose: a checker must not accept what SoftHSM might read
    differently.  An empty file is an error here (SoftHSM skips it, but a
    migration must never leave one behind); a file of just the generation
    is a valid object with no attributes.
    """
    r = _Reader(data, 0, len(data), name)
    generation = r.u64("generation")
    return ObjectFile(generation, _parse_attributes(r, in_map=False))


def read_object(path):
    """Reads and parses one object file."""
    with open(path, "rb") as f:
        return parse_object(f.read(), os.path.basename(path))


# ---------------------------------------------------------------------------
# Keys and encryption

def kdf(pin, salt):
    """Master key of a PIN blob: SHA-256 iterated 1500 + salt[7] times."""
    if len(salt) != SALT_LEN:
        raise ValueError("salt must be 8 bytes")
    h = hashlib.sha256(salt + pin).digest()
    for _ in range(KDF_BASE_ROUNDS + salt[7] - 1):
        h = hashlib.sha256(h).digest()
    return h


def _gcm_decrypt(key, iv, ct_and_tag):
    """AES-256-GCM with a 16-byte IV, tag appended, empty AAD; None on tag mismatch."""
    if len(ct_and_tag) < TAG_LEN:
        return None
    ct, tag = ct_and_tag[:-TAG_LEN], ct_and_tag[-TAG_LEN:]
    dec = Cipher(algorithms.AES(key), modes.GCM(iv, tag)).decryptor()
    try:
        return dec.update(ct) + dec.finalize()
    except InvalidTag:
        return None


def _cbc_decrypt(key, iv, ct):
    """AES-256-CBC with PKCS#7 padding; None when the padding is invalid."""
    if len(ct) == 0 or len(ct) % 16:
        return None
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = dec.update(ct) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        return None


def unwrap_pin_blob(blob, pin):
    """Returns (token_key, layout) of a 72-byte PIN blob, or raises WrongPin.

    GCM first: a tag match is conclusive.  CBC needs valid padding and the
    "RJR" magic; a GCM blob can never pass as CBC by accident because its
    plaintext would have to start with the magic.
    """
    if len(blob) != PIN_BLOB_LEN:
        raise DecryptError(f"PIN blob is {len(blob)} bytes, not {PIN_BLOB_LEN}")
    salt, iv, rest = blob[:SALT_LEN], blob[SALT_LEN:SALT_LEN + IV_LEN], blob[SALT_LEN + IV_LEN:]
    master = kdf(pin, salt)
    key = _gcm_decrypt(master, iv, rest)
    if key is not None and len(key) == KEY_LEN:
        return key, LAYOUT_GCM
    plain = _cbc_decrypt(master, iv, rest)
    if plain is not None and len(plain) == len(PIN_MAGIC) + KEY_LEN and plain.startswith(PIN_MAGIC):
        return plain[len(PIN_MAGIC):], LAYOUT_CBC
    raise WrongPin("the PIN unwraps the blob in neither GCM nor CBC")


def decrypt_value(token_key, stored):
    """Returns (plaintext, layout) of one stored encrypted value, or raises.

    GCM first (tag), then CBC (PKCS#7 padding).  A CBC false positive on a
    damaged GCM value is possible (about 1 in 256); callers that know the
    plaintext compare it.
    """
    if len(stored) < IV_LEN + 16:
        raise DecryptError(f"{len(stored)} bytes is too short for an encrypted value")
    iv, rest = stored[:IV_LEN], stored[IV_LEN:]
    plain = _gcm_decrypt(token_key, iv, rest)
    if plain is not None:
        return plain, LAYOUT_GCM
    plain = _cbc_decrypt(token_key, iv, rest)
    if plain is not None:
        return plain, LAYOUT_CBC
    raise DecryptError(f"a {len(stored)}-byte value decrypts in neither GCM nor CBC")


def is_private(obj):
    """CKA_PRIVATE true or absent: SoftHSM then encrypts the object's byte strings."""
    attr = obj.last(CKA_PRIVATE)
    return attr is None or (attr.kind == KIND_BOOL and attr.value)


def encrypted_attributes(obj):
    """The attributes SoftHSM stores encrypted: non-empty top-level byte strings
    of a private object.  Map entries, bools, ulongs and mechanism sets never are."""
    if not is_private(obj):
        return []
    return [a for a in obj.attributes if a.kind == KIND_BYTES and len(a.value) > 0]


def decrypt_object(obj, token_key, name):
    """Fills plaintext and layout of every encrypted attribute of `obj`."""
    for a in encrypted_attributes(obj):
        try:
            a.plaintext, a.layout = decrypt_value(token_key, a.value)
        except DecryptError as e:
            raise DecryptError(f"{name}: attribute {a.type:#x} at offset {a.offset}: {e}") from None


# ---------------------------------------------------------------------------
# Token directories

def is_object_name(name):
    """SoftHSM's rule for object files: ends in .object, longer than 7, not token.object."""
    return name.endswith(".object") and len(name) > 7 and name != "token.object"


def read_generation_file(tokdir):
    """The token's generation counter, or None when the file is absent."""
    path = os.path.join(tokdir, "generation")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    if len(data) != 8:
        raise FormatError(f"{path}: {len(data)} bytes, not 8", 0)
    return struct.unpack(">Q", data)[0]


def _list_dir(tokdir):
    """(regular files, other entries) of a token directory, names sorted.

    SoftHSM only reads regular files; symlinks and subdirectories are kept
    apart so that a checker can still see one left behind."""
    files, others = [], []
    for name in sorted(os.listdir(tokdir)):
        st = os.lstat(os.path.join(tokdir, name))
        (files if stat.S_ISREG(st.st_mode) else others).append(name)
    return files, others


def _token_key(meta, pins):
    """Unwraps each PIN blob a PIN is given for; returns (blobs, token key, keys equal).

    blobs maps role -> {"length", "layout"}; layout is None without a PIN.
    Raises WrongPin (naming the role) for a PIN that does not unwrap.
    """
    blobs, keys = {}, {}
    for role, type_ in BLOB_TYPES.items():
        attr = meta.last(type_)
        if attr is None:
            blobs[role] = None
            continue
        if attr.kind != KIND_BYTES:
            raise FormatError(f"token.object: {role} PIN blob has kind {attr.kind}", attr.offset)
        blobs[role] = {"length": len(attr.value), "layout": None}
        if pins.get(role) is None:
            continue
        try:
            keys[role], blobs[role]["layout"] = unwrap_pin_blob(attr.value, pins[role])
        except WrongPin as e:
            raise WrongPin(f"{role} PIN: {e}") from None
    distinct = set(keys.values())
    key = keys.get("user", keys.get("so"))
    return blobs, key, (len(distinct) == 1 if len(keys) == 2 else None)


def _meta_text(meta, type_):
    attr = meta.last(type_)
    return None if attr is None else attr.value.decode("ascii", "replace")


def _meta_ulong(meta, type_):
    attr = meta.last(type_)
    return None if attr is None else attr.value


def decode_token(tokdir, so_pin=None, user_pin=None):
    """Reads one token directory completely and decrypts what the PINs allow.

    PINs are str or bytes.  Returns a dict:
      dir, files (every regular file name), other_entries (symlinks,
      subdirectories, ...), label, serial, flags,
      token_object (ObjectFile of token.object),
      blobs {"so"|"user": None | {"length", "layout"}},
      token_key (bytes or None), token_keys_equal (True/False, None unless
      both PINs are given), generation (the generation file, or None),
      objects {file name: ObjectFile} with plaintext/layout filled in.
    Raises WrongPin, FormatError, or DecryptError for any value that does
    not decrypt under the token key.
    """
    pins = {role: (p.encode() if isinstance(p, str) else p)
            for role, p in (("so", so_pin), ("user", user_pin))}
    meta = read_object(os.path.join(tokdir, "token.object"))
    blobs, key, keys_equal = _token_key(meta, pins)
    if keys_equal is False:
        raise DecryptError(f"{tokdir}: the SO and user blobs wrap different token keys")
    files, others = _list_dir(tokdir)
    objects = {}
    for name in files:
        if not is_object_name(name):
            continue
        obj = read_object(os.path.join(tokdir, name))
        if key is not None:
            decrypt_object(obj, key, name)
        objects[name] = obj
    label = _meta_text(meta, CKA_OS_TOKENLABEL)
    return {
        "dir": tokdir,
        "files": files,
        "other_entries": others,
        "label": None if label is None else label.rstrip(" "),
        "serial": _meta_text(meta, CKA_OS_TOKENSERIAL),
        "flags": _meta_ulong(meta, CKA_OS_TOKENFLAGS),
        "token_object": meta,
        "blobs": blobs,
        "token_key": key,
        "token_keys_equal": keys_equal,
        "generation": read_generation_file(tokdir),
        "objects": objects,
    }


# ---------------------------------------------------------------------------
# Layout facts

def value_shape(attr):
    """How one top-level attribute is stored: 'plain', 'empty', 'gcm' or 'cbc'."""
    if attr.layout is not None:
        return attr.layout
    if attr.kind == KIND_BYTES and len(attr.value) == 0:
        return "empty"
    return "plain"


def layout_signature(tok):
    """The layout facts of a decoded token (decode_token with PINs), JSON-able.

    blobs: role -> [length, layout]; objects: file -> generation and one
    [type, kind, shape, stored length, plaintext length] per attribute, in
    file order (lengths only for byte strings).  Two stores in the same
    layout with the same content have equal signatures up to generations.
    """
    objects = {}
    for name, obj in tok["objects"].items():
        rows = []
        for a in obj.attributes:
            stored = len(a.value) if a.kind == KIND_BYTES else None
            plain = len(a.plaintext) if a.plaintext is not None else stored
            rows.append([a.type, a.kind, value_shape(a), stored, plain])
        objects[name] = {"generation": obj.generation, "attributes": rows}
    return {
        "blobs": {r: None if b is None else [b["length"], b["layout"]]
                  for r, b in tok["blobs"].items()},
        "generation": tok["generation"],
        "token_object_generation": tok["token_object"].generation,
        "objects": objects,
    }


def expected_stored_length(n, layout):
    """Stored length of an n-byte plaintext: IV + ciphertext (+ tag for GCM)."""
    if layout == LAYOUT_GCM:
        return IV_LEN + n + TAG_LEN
    return IV_LEN + (n // 16 + 1) * 16


def layout_problems(tok, expect, roles=("so", "user")):
    """Everything in a decoded token that is not exactly the `expect` layout.

    For gcm that is PR #627's layout: blobs of 72 bytes decrypting with GCM;
    every encrypted value IV16 || ct || tag16, stored = plaintext + 32.
    For cbc: blobs with the magic, values IV16 || PKCS#7 ciphertext.
    roles: the PIN blobs that must be in the layout; the token must have
    been decoded with their PINs.  An absent blob is no problem here (a
    token whose user PIN was never set has none).
    Returns a list of messages (empty when all is as expected).
    """
    problems = []
    for role in roles:
        blob = tok["blobs"][role]
        if blob is None:
            continue
        if blob["layout"] is None:
            problems.append(f"{role} PIN blob not checked (no PIN)")
        elif blob["length"] != PIN_BLOB_LEN or blob["layout"] != expect:
            problems.append(f"{role} PIN blob: {blob['length']} bytes, {blob['layout']}")
    if all(tok["blobs"][r] for r in ("so", "user")) and set(roles) == {"so", "user"} \
            and tok["token_keys_equal"] is not True:
        problems.append("SO and user blobs not both checked to wrap one token key")
    for name, obj in tok["objects"].items():
        for a in encrypted_attributes(obj):
            if a.layout != expect:
                problems.append(f"{name}: {a.type:#x} at {a.offset} is {a.layout}, not {expect}")
            elif len(a.value) != expected_stored_length(len(a.plaintext), expect):
                problems.append(f"{name}: {a.type:#x} stored {len(a.value)} bytes for "
                                f"{len(a.plaintext)} of plaintext")
    return problems


# ---------------------------------------------------------------------------
# Command line

def _json_value(v):
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, list):
        return [_json_attr(e) if isinstance(e, Attribute) else e for e in v]
    return v


def _json_attr(a):
    d = {"type": a.type, "kind": KIND_NAMES[a.kind], "offset": a.offset,
         "value": _json_value(a.value)}
    if a.encrypted:
        d["layout"] = a.layout
        d["plaintext"] = a.plaintext.hex()
    return d


def summary(tok):
    """A JSON-able summary; the token key appears only as a fingerprint."""
    key = tok["token_key"]
    return {
        "dir": tok["dir"], "label": tok["label"], "serial": tok["serial"],
        "flags": tok["flags"], "generation": tok["generation"],
        "token_object_generation": tok["token_object"].generation,
        "blobs": tok["blobs"],
        "token_key_sha256": None if key is None else hashlib.sha256(key).hexdigest(),
        "token_keys_equal": tok["token_keys_equal"],
        "files": tok["files"], "other_entries": tok["other_entries"],
        "objects": {n: {"generation": o.generation, "private": bool(is_private(o)),
                        "attributes": [_json_attr(a) for a in o.attributes]}
                    for n, o in tok["objects"].items()},
    }


def _pin_arg(direct, env_name):
    """A PIN from --X-pin-env VAR (preferred: keeps it out of ps) or --X-pin."""
    if env_name:
        if env_name not in os.environ:
            raise SystemExit(f"tfsdecode: environment variable {env_name} is not set")
        return os.environ[env_name]
    return direct


def main(argv=None):
    p = argparse.ArgumentParser(description="Decode one SoftHSMv2 token directory (JSON).")
    p.add_argument("tokdir", metavar="TOKEN_DIR", help="one token directory (holds token.object)")
    p.add_argument("--so-pin")
    p.add_argument("--user-pin")
    p.add_argument("--so-pin-env", metavar="VAR")
    p.add_argument("--user-pin-env", metavar="VAR")
    args = p.parse_args(argv)
    try:
        tok = decode_token(args.tokdir, _pin_arg(args.so_pin, args.so_pin_env),
                           _pin_arg(args.user_pin, args.user_pin_env))
    except (FormatError, DecryptError, OSError) as e:
        print(f"tfsdecode: {e}", file=sys.stderr)
        return 1
    json.dump(summary(tok), sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
