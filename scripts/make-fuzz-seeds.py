#!/usr/bin/env python3
"""Writes the committed seed corpora of the store fuzzers from testdata/.

fuzz/corpus/fuzz_object:   every .object file of testdata (store and malformed)
fuzz/corpus/fuzz_tokendir: each token directory of testdata/store, and the
                           whole store, as images in fuzz_tokendir.c's format
fuzz/corpus/fuzz_archive:  testdata tokens as tar, tar.gz, tar.xz, tar.bz2 and
                           zip (as a tar of / holds them, and as a token's
                           contents), one cut short, and one with every kind
                           of member tokenfs must refuse or report
fuzz/corpus/fuzz_export_key: key objects in plaintext: testdata's public keys
                           and plaintext secret, and (with PyKCS11 and
                           SoftHSM 2.6.1) RSA, EC, Ed25519 and DSA private
                           keys made with CKA_PRIVATE false in a scratch store
fuzz/corpus/fuzz_journal:  write-engine journals (libtokenfs/txn/journal.h):
                           valid ones, each cut at every field, and damaged
                           ones that each break one rule of the parser
fuzz/corpus/fuzz_verify:   the fuzz_tokendir images (the demo token's PIN is
                           the target's fixed PIN, so its values decrypt)
fuzz/corpus/fuzz_render:   the same images behind a --reveal byte (0 and 1),
                           and a hostile demo token: file names with terminal
                           and bidi controls, a label with U+202E, a plaintext
                           key behind a flipped CKA_PRIVATE, a CKA_VALUE in a
                           CKA_WRAP_TEMPLATE
fuzz/corpus/fuzz_seal:     seals of the demo token and of the hostile one,
                           made by `tokenfs verify-integrity --seal` (only when
                           TOKENFS names the binary; the target re-signs them
                           with its own key)

Deterministic: seeds are named by the SHA-256 of their bytes.

Usage: make-fuzz-seeds.py [TARGET...]   (default: every target above)
"""
import bz2
import gzip
import hashlib
import io
import lzma
import os
import struct
import sys
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTDATA = os.path.join(ROOT, "testdata")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def write_seed(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha256(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def record(kind, rel, data=b""):
    p = rel.encode()
    if len(p) > 255:
        raise SystemExit(f"path too long for the image format: {rel}")
    out = struct.pack("BB", kind, len(p)) + p
    if kind == 1:
        if len(data) > 0xFFFF:
            raise SystemExit(f"file too large for the image format: {rel}")
        out += struct.pack(">H", len(data)) + data
    return out


def image(top, prefix):
    """An image of the tree at top, with paths starting at prefix."""
    out = b""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        rel = os.path.relpath(dirpath, top)
        base = prefix if rel == "." else os.path.join(prefix, rel) if prefix else rel
        if base:
            out += record(0, base)
        for fn in sorted(filenames):
            with open(os.path.join(dirpath, fn), "rb") as f:
                out += record(1, os.path.join(base, fn) if base else fn, f.read())
    return out


# --- journals: the format of libtokenfs/txn/journal.h, keep the two in step
JOURNAL_MAGIC = b"TFSJRNL1"


def be64(v):
    return struct.pack(">Q", v)


def journal_entry(name, old, new):
    """One entry: the file's name and its old and new contents (None: absent)."""
    def part(content):
        if content is None:
            return be64(0) + bytes(32)
        return be64(len(content)) + hashlib.sha256(content).digest()
    n = name.encode()
    return be64(len(n)) + n + part(old) + part(new)


def journal(entries, count=None, check=None):
    body = JOURNAL_MAGIC + be64(len(entries) if count is None else count) + b"".join(entries)
    return body + (hashlib.sha256(body).digest() if check is None else check)


def seal_journal(body):
    """A body (anything) followed by its correct check sum."""
    return body + hashlib.sha256(body).digest()


def uuid_name(i):
    h = hashlib.sha256(b"tokenfs journal seed %d" % i).hexdigest()
    return "%s-%s-%s-%s-%s.object" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])


def journal_seeds():
    seeds = []
    tok_old, tok_new = b"token.object before" * 20, b"token.object after" * 21
    gen_old, gen_new = be64(41), be64(42)
    # what the write engine writes: an object added, changed, removed; a
    # migration of a whole token; a PIN change; nothing at all
    add = journal([journal_entry("generation", gen_old, gen_new),
                   journal_entry(uuid_name(0), None, b"new object" * 50)])
    change = journal([journal_entry(uuid_name(1), b"old value" * 40, b"new value" * 41)])
    remove = journal([journal_entry(uuid_name(2), b"doomed" * 30, None),
                      journal_entry("generation", gen_old, gen_new)])
    migrate = journal([journal_entry("token.object", tok_old, tok_new),
                       journal_entry("generation", gen_old, gen_new)] +
                      [journal_entry(uuid_name(10 + i), b"cbc %d" % i * 60, b"gcm %d" % i * 61)
                       for i in range(6)])
    pin = journal([journal_entry("token.object", tok_old, tok_new)])
    empty = journal([])
    longest = journal([journal_entry("x" * 248 + ".object", b"a", b"b"),
                       journal_entry("a.object", b"", b"")])
    valid = [add, change, remove, migrate, pin, empty, longest]
    seeds += valid
    # torn writes: a journal cut at, just before and just after the end of
    # each of its fields, and a longer one cut in a few places
    cuts = {0, 1, 7, 8, 9, 15, 16, 17, len(add) - 33, len(add) - 32, len(add) - 1}
    p = 16
    while p < len(add) - 32:   # the fields of each entry
        (n,) = struct.unpack(">Q", add[p:p + 8])
        for off in (8, 8 + n, 16 + n, 48 + n, 56 + n, 88 + n):
            cuts.update((p + off - 1, p + off, p + off + 1))
        p += 88 + n
    seeds += [add[:c] for c in sorted(cuts)]
    seeds += [empty[:c] for c in (8, 16, len(empty) - 1)]
    seeds += [migrate[:c] for c in (len(migrate) // 2, len(migrate) - 32, len(migrate) - 1)]
    # damaged: each breaks one rule
    flip = bytearray(migrate)
    flip[100] ^= 0x01
    seeds.append(bytes(flip))                                  # a bit flipped: check sum
    seeds.append(migrate[:-1] + bytes([migrate[-1] ^ 0x80]))   # the check sum itself
    seeds.append(b"TFSJRNL2" + add[8:])                        # magic
    seeds.append(add + b"\0")                                 # a byte after the check sum
    seeds.append(add + add)                                    # two journals back to back
    e = journal_entry("token.object", tok_old, tok_new)
    seeds.append(journal([e], count=2))                        # fewer entries than counted
    seeds.append(journal([e, e], count=1))                     # more
    seeds.append(journal([e], count=2 ** 64 - 1))              # a count no input can hold
    seeds.append(journal([e], count=2 ** 63))
    seeds.append(journal([e, journal_entry("generation", gen_old, gen_new), e]))  # twice
    seeds.append(journal([journal_entry(uuid_name(3), b"a", b"b"),
                          journal_entry(uuid_name(3), b"b", b"c")]))
    for bad in ("../token.object", "a/b.object", ".object", "..object", ".hidden.object",
                "object", "token.lock", "tokens", "generation.tmp", "x.object\0y",
                "x" * 249 + ".object", "x" * 300 + ".object"):
        seeds.append(journal([journal_entry(bad, b"a", b"b")]))     # a name never replaced
    zero = be64(0) + bytes(72)                                  # name_len 0
    seeds.append(seal_journal(JOURNAL_MAGIC + be64(1) + zero))
    huge = be64(2 ** 64 - 1) + b"token.object" + bytes(80)       # name_len past the end
    seeds.append(seal_journal(JOURNAL_MAGIC + be64(1) + huge))
    seeds.append(seal_journal(JOURNAL_MAGIC + be64(1) + be64(256) + b"x" * 256 + bytes(80)))
    seeds.append(b"")
    seeds.append(JOURNAL_MAGIC)
    return seeds


def object_seeds():
    for sub in ("store", "malformed"):
        for dirpath, _, filenames in os.walk(os.path.join(TESTDATA, sub)):
            for fn in sorted(filenames):
                if fn.endswith(".object"):
                    with open(os.path.join(dirpath, fn), "rb") as f:
                        write_seed("fuzz_object", f.read())


def tokendir_seeds():
    store = os.path.join(TESTDATA, "store")
    for tok in sorted(os.listdir(store)):
        write_seed("fuzz_tokendir", image(os.path.join(store, tok), tok))
    write_seed("fuzz_tokendir", image(store, ""))


def hostile_token(dst):
    """A copy of the demo token made hostile (see the docstring) in dst."""
    import shutil
    store = os.path.join(TESTDATA, "store")
    demo = next(os.path.join(store, t) for t in sorted(os.listdir(store))
                if b"demo" in open(os.path.join(store, t, "token.object"), "rb").read())
    shutil.copytree(demo, dst)
    objs = sorted(f for f in os.listdir(dst) if f.endswith(".object") and f != "token.object")
    os.rename(os.path.join(dst, objs[0]), os.path.join(dst, "\u202egpj\x1b]0;x\x07.object"))
    for name in objs[1:]:
        path = os.path.join(dst, name)
        data = bytearray(open(path, "rb").read())
        pos, attrs = 8, {}
        while pos + 16 <= len(data):
            t, k = struct.unpack(">QQ", data[pos:pos + 16])
            attrs[t] = pos + 16
            pos += 16 + (1 if k == 1 else 8 if k == 2 else
                         8 + struct.unpack(">Q", data[pos + 16:pos + 24])[0] * (8 if k == 5 else 1))
        if data[attrs.get(0x2, 0)] == 0 and 0x11 in attrs and 0x100 in attrs:
            data[attrs[0x2]] = 0xFF  # a plaintext key that claims to be encrypted
            secret = bytes(range(16))
            entries = struct.pack(">QQQ", 0x11, 3, 16) + secret + \
                struct.pack(">QQQ", 0x3, 3, 9) + "\u202etmpl".encode()[:9]
            data += struct.pack(">QQQ", 0x40000211, 4, len(entries)) + entries
            open(path, "wb").write(bytes(data))
            break


def render_seeds():
    import tempfile
    store = os.path.join(TESTDATA, "store")
    images = [image(os.path.join(store, t), t) for t in sorted(os.listdir(store))]
    with tempfile.TemporaryDirectory() as tmp:
        hostile_token(os.path.join(tmp, "t"))
        images.append(image(os.path.join(tmp, "t"), "t"))
        for img in images:
            write_seed("fuzz_verify", img)
            write_seed("fuzz_render", b"\x00" + img)
            write_seed("fuzz_render", b"\x01" + img)
        tokenfs = os.environ.get("TOKENFS")
        if not tokenfs:
            print("TOKENFS not set: no fuzz_seal seeds", file=sys.stderr)
            return
        import subprocess
        for tok in ("demo", "hostile"):
            d = os.path.join(tmp, tok)
            if tok == "demo":
                shutil_copy = __import__("shutil").copytree
                shutil_copy(next(os.path.join(store, t) for t in sorted(os.listdir(store))
                                 if b"demo" in open(os.path.join(store, t, "token.object"),
                                                    "rb").read()), d)
            else:
                d = os.path.join(tmp, "t")
            subprocess.run([tokenfs, "verify-integrity", "--user-pin", "env:PIN", "--seal",
                            "--fail-on", "error", d], env=dict(os.environ, PIN="user-pin-1"),
                           capture_output=True)
            write_seed("fuzz_seal", open(os.path.join(d, "tokenfs.seal"), "rb").read())


def tar_of(top, prefix, extra=None):
    """A plain tar of the tree at top under prefix, deterministic (fixed
    mtime and owner, SoftHSM's modes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        def add(name, kind, data=b"", link="", mode=0o600):
            m = tarfile.TarInfo(name)
            m.type, m.linkname, m.mode, m.mtime = kind, link, mode, 1700000000
            if kind == tarfile.REGTYPE:
                m.size = len(data)
                t.addfile(m, io.BytesIO(data))
            else:
                t.addfile(m)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            rel = os.path.relpath(dirpath, top)
            base = prefix if rel == "." else os.path.join(prefix, rel)
            add(base, tarfile.DIRTYPE, mode=0o700)
            for fn in sorted(filenames):
                with open(os.path.join(dirpath, fn), "rb") as f:
                    add(os.path.join(base, fn), tarfile.REGTYPE, f.read())
        if extra:
            extra(add)
    return buf.getvalue()


def zip_of(top, prefix):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            rel = os.path.relpath(dirpath, top)
            base = prefix if rel == "." else os.path.join(prefix, rel)
            info = zipfile.ZipInfo(base + "/", (2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o40700 << 16) | 0x10
            z.writestr(info, b"")
            for fn in sorted(filenames):
                info = zipfile.ZipInfo(os.path.join(base, fn), (2024, 1, 1, 0, 0, 0))
                info.external_attr = 0o100600 << 16
                with open(os.path.join(dirpath, fn), "rb") as f:
                    z.writestr(info, f.read(), zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def archive_seeds():
    store = os.path.join(TESTDATA, "store")
    toks = sorted(os.listdir(store))
    small = os.path.join(store, toks[-1])  # "second": 4 objects
    deep = "var/lib/softhsm/tokens/" + toks[-1]
    plain = tar_of(small, deep)
    write_seed("fuzz_archive", plain)
    write_seed("fuzz_archive", gzip.compress(plain, mtime=0))
    write_seed("fuzz_archive", lzma.compress(plain))
    write_seed("fuzz_archive", bz2.compress(plain))
    write_seed("fuzz_archive", tar_of(small, "."))
    write_seed("fuzz_archive", zip_of(small, deep))
    gz = gzip.compress(tar_of(os.path.join(store, toks[0]), "tokens/" + toks[0]), mtime=0)
    write_seed("fuzz_archive", gz[: len(gz) // 2])

    def hostile(add):
        add("../../etc/x.object", tarfile.REGTYPE, b"x" * 16)
        add("/etc/y.object", tarfile.REGTYPE, b"y" * 16)
        add(deep + "/11111111-1111-1111-1111-111111111111.object", tarfile.SYMTYPE,
            link="/etc/shadow")
        add(deep + "/22222222-2222-2222-2222-222222222222.object", tarfile.LNKTYPE,
            link=deep + "/token.object")
        add(deep + "/fifo", tarfile.FIFOTYPE)
        add(deep + "/generation", tarfile.REGTYPE, b"\0" * 7)
        add("a", tarfile.REGTYPE, b"file")
        add("a/b/token.object", tarfile.REGTYPE, b"\0" * 8)
        add("x/./y//z/token.object", tarfile.REGTYPE, b"\0" * 8)
    write_seed("fuzz_archive", tar_of(small, deep, hostile))


def export_key_seeds():
    """Plaintext key objects (CKO_PUBLIC_KEY, _PRIVATE_KEY, _SECRET_KEY with
    CKA_PRIVATE false): testdata's, then fresh private keys from SoftHSM."""
    import glob
    import subprocess
    import tempfile
    for path in sorted(glob.glob(os.path.join(TESTDATA, "store", "*", "*.object"))):
        data = open(path, "rb").read()
        # CKA_PRIVATE (0x2) stored as bool false: 8-byte type, kind 1, 0x00
        if os.path.basename(path) != "token.object" and \
                struct.pack(">QQB", 2, 1, 0) in data and struct.pack(">QQ", 0x100, 2) in data:
            write_seed("fuzz_export_key", data)
    try:
        import PyKCS11
    except ImportError:
        print("PyKCS11 missing: no private-key seeds", file=sys.stderr)
        return
    tmp = tempfile.mkdtemp()
    tokendir = os.path.join(tmp, "tokens")
    os.makedirs(tokendir)
    conf = os.path.join(tmp, "softhsm2.conf")
    with open(conf, "w") as f:
        f.write(f"directories.tokendir = {tokendir}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = conf
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "seeds", "--so-pin",
                    "12345678", "--pin", "12345678"], check=True, stdout=subprocess.DEVNULL)
    lib = PyKCS11.PyKCS11Lib()
    lib.load("/usr/lib/softhsm/libsofthsm2.so")
    s = lib.openSession(lib.getSlotList(tokenPresent=True)[0],
                        PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
    s.login("12345678")
    P, T, F = PyKCS11, PyKCS11.CK_TRUE, PyKCS11.CK_FALSE
    plain = [(P.CKA_TOKEN, T), (P.CKA_PRIVATE, F), (P.CKA_SENSITIVE, F), (P.CKA_EXTRACTABLE, T)]
    dsa_p = subprocess.run(["openssl", "dsaparam", "-text", "-noout", "1024"], check=True,
                           capture_output=True, text=True).stdout
    nums, cur = {}, None
    for line in dsa_p.splitlines():
        if line.strip().rstrip(":") in ("P", "Q", "G", "p", "q", "g"):
            cur = line.strip().rstrip(":").upper()
            nums[cur] = ""
        elif cur and line.startswith("    "):
            nums[cur] += line.strip().replace(":", "")
        else:
            cur = None  # SEED, pcounter, h
    dsa = [(P.CKA_PRIME, bytes.fromhex(nums["P"]).lstrip(b"\0")),
           (P.CKA_SUBPRIME, bytes.fromhex(nums["Q"]).lstrip(b"\0")),
           (P.CKA_BASE, bytes.fromhex(nums["G"]).lstrip(b"\0"))]
    for mech, pub in ((P.CKM_RSA_PKCS_KEY_PAIR_GEN, [(P.CKA_MODULUS_BITS, 1024),
                                                   (P.CKA_PUBLIC_EXPONENT, (1, 0, 1))]),
                      (P.CKM_EC_KEY_PAIR_GEN, [(P.CKA_EC_PARAMS, bytes.fromhex("06082a8648ce3d030107"))]),
                      (P.CKM_EC_EDWARDS_KEY_PAIR_GEN, [(P.CKA_EC_PARAMS, bytes.fromhex("06032b6570"))]),
                      (P.CKM_DSA_KEY_PAIR_GEN, dsa)):
        s.generateKeyPair([(P.CKA_TOKEN, T)] + pub, plain, P.Mechanism(mech))
    s.logout()
    s.closeSession()
    for path in glob.glob(os.path.join(tokendir, "*", "*.object")):
        if os.path.basename(path) != "token.object":
            write_seed("fuzz_export_key", open(path, "rb").read())
    subprocess.run(["rm", "-rf", tmp], check=True)


def main():
    every = {"fuzz_object", "fuzz_tokendir", "fuzz_journal", "fuzz_render", "fuzz_archive",
             "fuzz_export_key"}
    targets = set(sys.argv[1:]) or every
    unknown = targets - every
    if unknown:
        raise SystemExit("unknown target: " + " ".join(sorted(unknown)))
    if "fuzz_journal" in targets:
        for data in journal_seeds():
            write_seed("fuzz_journal", data)
    if "fuzz_object" in targets:
        object_seeds()
    if "fuzz_tokendir" in targets:
        tokendir_seeds()
    if "fuzz_render" in targets:  # also fuzz_verify and fuzz_seal
        render_seeds()
    if "fuzz_archive" in targets:
        archive_seeds()
    if "fuzz_export_key" in targets:
        export_key_seeds()
    return 0


if __name__ == "__main__":
    sys.exit(main())
