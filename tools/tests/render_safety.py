#!/usr/bin/env python3
"""What dump and verify-integrity show, on a store made by real SoftHSM 2.6.1
and on hostile copies of it (issue 11 items 7, 8, 9; issue 12 items 1, 2):

- labels: a key made by pkcs11-tool --label 'Schlüssel-ÄÖ' shows its label as
  text in the summary, the attribute line and JSON's `text`; a label of 64
  bytes or more too; binary attributes (CKA_ID, CKA_CHECK_VALUE) are hex;
  docs/json.md's "labels of every secret key" example prints the labels;
- redaction by attribute: a plaintext key whose CKA_PRIVATE was set to true
  (one byte), a plaintext CKA_VALUE inside CKA_WRAP_TEMPLATE, and both sides
  of a --check-seal difference never show the key without --reveal;
- --format softhsm refuses files with key material without --reveal (exit 2,
  nothing on stdout) and with it equals softhsm2-dump-file;
- terminal safety: ESC, OSC, BEL, 0xff and newline in a token directory name,
  U+202E in an object file name and in a label, never reach the output raw;
- hard links: an object hard-linked to another file is the finding
  file.hard-link and none of that file's bytes are shown.

The object files are read by the small parser below, not by tokenfs, to find
the key bytes that must not appear.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import expect as check, finish  # noqa: E402

TOKENFS = os.environ["TOKENFS"]
MODULE = "/usr/lib/softhsm/libsofthsm2.so"
DUMP_FILE = os.environ.get("TFS_SOFTHSM2_DUMP_FILE", "/usr/bin/softhsm2-dump-file")
HERE = os.path.dirname(os.path.abspath(__file__))
DOCS = os.path.join(HERE, "..", "..", "docs", "json.md")
LABEL = "Schlüssel-ÄÖ"
LONG = "long-label-" + "x" * 60  # 71 bytes
WIDE = "ä" * 200                   # 400 bytes: shown cut, never inside a character
PIN = "5678"

CKA_PRIVATE, CKA_LABEL, CKA_VALUE, CKA_WRAP_TEMPLATE = 0x2, 0x3, 0x11, 0x40000211




def need(*tools):
    for t in tools:
        if shutil.which(t) is None and not os.path.exists(t):
            if os.environ.get("CI") == "true":
                print(f"FAIL: {t} is required in CI", file=sys.stderr)
                sys.exit(1)
            print(f"SKIP: {t} not installed", file=sys.stderr)
            sys.exit(77)


def run(*args, env=None):
    p = subprocess.run([TOKENFS, *args], capture_output=True, env=env)
    return p.returncode, p.stdout, p.stderr


def attrs(data):
    """Top-level attributes of an object file: (type, kind, value offset, value)."""
    out, pos = [], 8
    while pos + 16 <= len(data):
        t, k = struct.unpack(">QQ", data[pos:pos + 16])
        pos += 16
        if k == 1:
            out.append((t, k, pos, data[pos:pos + 1]))
            pos += 1
        elif k == 2:
            out.append((t, k, pos, data[pos:pos + 8]))
            pos += 8
        else:
            (n,) = struct.unpack(">Q", data[pos:pos + 8])
            vlen = n * 8 if k == 5 else n
            out.append((t, k, pos + 8, data[pos + 8:pos + 8 + vlen]))
            pos += 8 + vlen
    return out


def find(data, typ):
    return next(a for a in attrs(data) if a[0] == typ)


def shows(out, secret):
    """Whether output bytes contain secret raw, as hex, or as spaced hex."""
    def spaced(b):
        return " ".join(f"{x:02x}" for x in b).encode()
    h = secret.hex()
    # hexdump -C style rows split at 8 bytes: either half gives it away.
    return secret in out or h.encode() in out or h.upper().encode() in out or \
        spaced(secret) in out or spaced(secret[:8]) in out or \
        (len(secret) >= 16 and spaced(secret[8:16]) in out)


BIDI = re.compile("[\u0080-\u009f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def unsafe(out):
    """Raw bytes a terminal acts on: C0 but newline and tab, DEL, C1, 0xff, bidi."""
    if re.search(rb"[\x00-\x08\x0b-\x1f\x7f\xff]", out):
        return True
    try:
        return BIDI.search(out.decode("utf-8")) is not None
    except UnicodeDecodeError:
        return True


def make_store(tmp):
    tokendir = os.path.join(tmp, "tokens")
    os.mkdir(tokendir, 0o700)
    conf = os.path.join(tmp, "softhsm2.conf")
    with open(conf, "w") as f:
        f.write(f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "render",
                    "--so-pin", "1234", "--pin", PIN], env=env, check=True, capture_output=True)

    def p11(*args):
        subprocess.run(["pkcs11-tool", "--module", MODULE, "--token-label", "render", "--login",
                        "--pin", PIN, *args], env=env, check=True, capture_output=True)
    # pkcs11-tool --keygen makes CKA_PRIVATE false keys: plaintext in the file.
    p11("--keygen", "--key-type", "AES:16", "--id", "4142", "--label", LABEL)
    p11("--keygen", "--key-type", "AES:16", "--id", "43", "--label", LONG)
    p11("--keygen", "--key-type", "AES:16", "--id", "44", "--label", "rlo-\u202etxt.exe")
    p11("--keygen", "--key-type", "AES:16", "--id", "46", "--label", WIDE)
    p11("--keygen", "--key-type", "AES:32", "--id", "45", "--label", "private-aes", "--private",
        "--sensitive")
    return tokendir


def object_files(tokendir):
    (tok,) = [d for d in os.listdir(tokendir)]
    tokpath = os.path.join(tokendir, tok)
    files = {}
    for name in sorted(os.listdir(tokpath)):
        if name.endswith(".object") and name != "token.object":
            data = open(os.path.join(tokpath, name), "rb").read()
            files[os.path.join(tokpath, name)] = data
    return tokpath, files


def by_label(files, label):
    for path, data in files.items():
        t = find(data, CKA_LABEL)
        if t[3] == label.encode():
            return path, data
    raise KeyError(label)


def labels(tokendir, files):
    rc, out, err = run("dump", tokendir)
    text = out.decode("utf-8", "replace")
    check(f"dump exits 0 (rc {rc}: {err!r})", rc == 0)
    check("summary shows the UTF-8 label: " + text[:0],
          f"secret key AES 128-bit '{LABEL}' id 4142" in text)
    check("CKA_LABEL line shows the UTF-8 label as text",
          re.search(r'CKA_LABEL\s+bytes\s+"' + re.escape(LABEL) + '"', text) is not None)
    check("a 71-byte label shows in the summary", f"'{LONG}' id 43" in text)
    check("a 71-byte label shows as text on its line",
          re.search(r'CKA_LABEL\s+bytes\s+"' + re.escape(LONG) + '"', text) is not None)
    check("a 400-byte label is cut at a character in its line",
          re.search(r'CKA_LABEL\s+bytes\s+"' + "ä" * 128 + r'\.\.\." \(400 bytes\)', text) is not None)
    check("... and in the summary", f"'{'ä' * 64}...' id 46" in text)
    check("CKA_CHECK_VALUE is hex, not text",
          re.search(r"CKA_CHECK_VALUE\s+bytes\s+[0-9a-f]{6}\n", text) is not None and
          re.search(r'CKA_CHECK_VALUE\s+bytes\s+"', text) is None)
    check("CKA_ID is hex even when printable (4142 = 'AB')",
          re.search(r"CKA_ID\s+bytes\s+4142\n", text) is not None)
    rc, out, _ = run("dump", "--format", "json", tokendir)
    doc = json.loads(out)
    objs = doc["tokens"][0]["objects"]
    found = [a for o in objs for a in o["attributes"] if a["name"] == "CKA_LABEL" and
             a.get("text") == LABEL]
    check("JSON CKA_LABEL has text beside the hex value",
          len(found) == 1 and found[0]["value"] == LABEL.encode().hex())
    check("JSON CKA_ID has no text",
          all("text" not in a for o in objs for a in o["attributes"] if a["name"] == "CKA_ID"))
    # docs/json.md's example, as written there.
    doc_text = open(DOCS).read()
    m = re.search(r"(tokenfs dump --format json \S+ \|\n\s+jq -r '[^']+')", doc_text)
    check("docs/json.md has the labels example", m is not None)
    if m:
        cmd = m.group(1).replace("tokenfs", TOKENFS, 1).replace("/var/lib/softhsm/tokens", tokendir)
        got = subprocess.run(["bash", "-c", cmd], capture_output=True).stdout.decode()
        lines = got.splitlines()
        check(f"docs example prints the labels, got {lines!r}",
              LABEL in lines and LONG in lines and "rlo-\\u202etxt.exe" in lines and WIDE in lines and
              any(x.startswith("hex:") for x in lines))


def flipped_private(tmp, tokendir, files):
    """11.7: one byte (CKA_PRIVATE) makes a plaintext key look encrypted."""
    work = os.path.join(tmp, "flip")
    shutil.copytree(tokendir, work)
    path, data = by_label(files, LABEL)
    key = find(data, CKA_VALUE)[3]
    check("the AES key is 16 bytes in the file", len(key) == 16)
    priv = find(data, CKA_PRIVATE)
    flipped = bytearray(data)
    flipped[priv[2]] = 0xFF
    wpath = path.replace(tokendir, work)
    open(wpath, "wb").write(flipped)
    env = dict(os.environ, PIN=PIN)
    for args in (["dump"], ["dump", "--format", "json"], ["dump", "--user-pin", "env:PIN"],
                 ["dump", "--format", "json", "--user-pin", "env:PIN"], ["dump", wpath]):
        rc, out, err = run(*args, work, env=env) if args[-1] != wpath else run(*args, env=env)
        check(f"{' '.join(args)}: flipped CKA_PRIVATE does not show the key", not shows(out + err, key))
    rc, out, _ = run("dump", work)
    check("flipped key is shown redacted, marked as stored encrypted",
          b"<redacted: 16 bytes, stored encrypted> sha256:" in out)
    rc, out, _ = run("dump", "--reveal", work)
    check("--reveal does show it (the check can see the key)", shows(out, key))
    return key


def map_key(tmp, tokendir, files):
    """11.7: a plaintext CKA_VALUE inside CKA_WRAP_TEMPLATE, and --check-seal."""
    work = os.path.join(tmp, "map")
    shutil.copytree(tokendir, work)
    path, data = by_label(files, LONG)
    secret = bytes.fromhex("5ec7e75ec7e75ec7e75ec7e75ec7e75e")
    entries = struct.pack(">QQQ", CKA_VALUE, 3, len(secret)) + secret + \
        struct.pack(">QQQ", CKA_LABEL, 3, 4) + b"tmpl"
    wpath = path.replace(tokendir, work)
    open(wpath, "wb").write(data + struct.pack(">QQQ", CKA_WRAP_TEMPLATE, 4, len(entries)) + entries)
    for fmt in ("text", "json"):
        rc, out, err = run("dump", "--format", fmt, work)
        check(f"dump --format {fmt}: map entry CKA_VALUE not shown", not shows(out + err, secret))
    rc, out, _ = run("dump", "--format", "json", "--reveal", work)
    check("--reveal shows the map entry (the check can see it)", shows(out, secret))
    # Seal, change the entry, check: neither value may appear.
    env = dict(os.environ, PIN=PIN)
    rc, out, err = run("verify-integrity", "--user-pin", "env:PIN", "--seal", "--fail-on", "error",
                       work, env=env)
    check(f"--seal works (rc {rc}: {err[-300:]!r})", rc in (0, 1))
    seals = [os.path.join(d, "tokenfs.seal") for d in
             (os.path.join(work, t) for t in os.listdir(work))]
    check("the seal file does not hold the template's key",
          all(not shows(open(f, "rb").read(), secret) for f in seals if os.path.exists(f)) and
          any(os.path.exists(f) for f in seals))
    newer = bytes.fromhex("0ddba11c0ddba11c0ddba11c0ddba11c")
    changed = open(wpath, "rb").read().replace(secret, newer)
    open(wpath, "wb").write(changed)
    for fmt in ("text", "json"):
        rc, out, err = run("verify-integrity", "--user-pin", "env:PIN", "--check-seal", "--format",
                           fmt, work, env=env)
        check(f"--check-seal ({fmt}) reports the change (rc {rc})",
              rc == 1 and b"seal.attribute-changed" in out + err)
        check(f"--check-seal ({fmt}) shows neither the old nor the new key",
              not shows(out + err, secret) and not shows(out + err, newer))


def softhsm_format(tokendir, files):
    """12.2: raw bytes of key files only with --reveal."""
    rc, out, err = run("dump", "--format", "softhsm", tokendir)
    check(f"--format softhsm without --reveal: exit 2 (got {rc})", rc == 2)
    check("--format softhsm without --reveal: nothing on stdout", out == b"")
    check("--format softhsm without --reveal: says --reveal", b"--reveal" in err)
    path, data = by_label(files, LABEL)
    rc, out, _ = run("dump", "--format", "softhsm", "--reveal", path)
    want = subprocess.run([DUMP_FILE, path], capture_output=True).stdout
    check("--format softhsm --reveal equals softhsm2-dump-file", rc == 0 and out == want)
    check("... and shows the key", shows(out, find(data, CKA_VALUE)[3]))


def hostile_names(tmp, tokendir):
    """11.8: names and labels with terminal controls and bidi controls."""
    work = os.path.join(tmp, "names")
    shutil.copytree(tokendir, work)
    (tok,) = os.listdir(work)
    bad_dir = b"tok\x1b]0;pwned\x07\xff\nx\x1b[2J\xc2\x9b31m"  # ... and C1 CSI
    os.rename(os.path.join(work, tok).encode(), os.path.join(work.encode(), bad_dir))
    tokpath = os.path.join(work.encode(), bad_dir)
    objs = sorted(n for n in os.listdir(tokpath) if n.endswith(b".object") and n != b"token.object")
    os.rename(os.path.join(tokpath, objs[0]),
              os.path.join(tokpath, "\u202egpj.object".encode()))
    runs = [["dump"], ["dump", "--format", "json"], ["dump", "--format", "softhsm", "--reveal"],
            ["verify-integrity"], ["verify-integrity", "--format", "json"]]
    for args in runs:
        rc, out, err = run(*args, work)
        check(f"{' '.join(args)}: no raw control, 0xff or bidi in stdout", not unsafe(out))
        check(f"{' '.join(args)}: no raw control, 0xff or bidi in stderr", not unsafe(err))
    rc, out, _ = run("dump", "--format", "softhsm", "--reveal", work)
    check("--format softhsm: one header line per file despite a newline in the name",
          out.count(b"Dump of object file") == len(objs) + 1 and
          all(line.startswith(b"Dump of object file") or not line.startswith(b"x")
              for line in out.split(b"\n")))
    rc, out, _ = run("dump", "--format", "json", work)
    doc = json.loads(out)
    check("JSON keeps the label with its bidi control escaped as \\u202e text",
          any(a.get("text") == "rlo-\\u202etxt.exe" for o in doc["tokens"][0]["objects"]
              for a in o.get("attributes", [])))


def hard_link(tmp, tokendir):
    """11.9: an object hard-linked to another file."""
    work = os.path.join(tmp, "link")
    shutil.copytree(tokendir, work)
    shadow = os.path.join(tmp, "shadow")
    marker = b"root:$6$SHADOWMARKERxyz:19000:0:99999:7:::\n"
    open(shadow, "wb").write(marker)
    tokpath, files = object_files(work)
    victim = next(iter(files))
    os.unlink(victim)
    os.link(shadow, victim)
    leak = marker[:16]
    for args in (["dump"], ["dump", "--format", "json"], ["dump", "--format", "softhsm", "--reveal"],
                 ["verify-integrity"], ["verify-integrity", "--format", "json"]):
        rc, out, err = run(*args, work)
        check(f"{' '.join(args)}: nothing of the linked file shown", not shows(out + err, leak))
        check(f"{' '.join(args)}: exit 1 or 2, got {rc}", rc in (1, 2))
    rc, out, err = run("verify-integrity", "--format", "json", work)
    codes = [f["code"] for t in json.loads(out)["tokens"] for f in t["findings"]]
    check(f"verify reports file.hard-link (got {codes})", "file.hard-link" in codes)
    rc, out, err = run("dump", work)
    check("dump reports file.hard-link", b"[file.hard-link]" in err)


def main():
    need("softhsm2-util", "pkcs11-tool", "jq", DUMP_FILE, MODULE)
    tmp = tempfile.mkdtemp(prefix="tfs-render-safety.")
    try:
        tokendir = make_store(tmp)
        _, files = object_files(tokendir)
        labels(tokendir, files)
        flipped_private(tmp, tokendir, files)
        map_key(tmp, tokendir, files)
        softhsm_format(tokendir, files)
        hostile_names(tmp, tokendir)
        hard_link(tmp, tokendir)
    finally:
        shutil.rmtree(tmp)
    sys.exit(finish())


if __name__ == "__main__":
    main()
