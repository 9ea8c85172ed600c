#!/usr/bin/python3
"""crash_check: is a token directory wholly as before or wholly migrated?

The checker of migrate_crash.sh (issue 9).  It reads stores with tfsdecode
(next to this script: written from FORMAT.md, shares no code with
libtokenfs, never runs tokenfs), so tokenfs is never used to check tokenfs.

    crash_check.py --plain-ref DIR [--so-pin-env VAR] [--user-pin-env VAR] CASES

--plain-ref is an untouched copy of the token in its original layout: every
checked store must decrypt to exactly its plaintext.  CASES is a file of
tab-separated lines, one store to check per line:

    ID  DIR  ORIG  FROM  TO  ALLOWED  MANIFEST

  ID        a name for the report
  DIR       the token directory to check
  ORIG      the token directory as it was before the command ran (a copy)
  FROM, TO  the layouts before and after the migration: gcm or cbc; TO
            cbc-rekeyed: a rekey to a fresh token key and new PINs (from the
            environment variables NS and NU): the old PINs must open the
            old state, the new PINs the new one, whose token key differs
  ALLOWED   old, new or any (old or new)
  MANIFEST  '-' or a file of "name inode mtime mode uid gid" lines (find
            -printf '%f %i %T@ %m %U %G'), taken of DIR before the command

A store passes when:
  - nothing of a transaction is left (*.tokenfs-new, tokenfs.journal*), no
    file is missing or added, modes and owners are kept (MANIFEST);
  - both PINs unwrap a blob, both blobs wrap ORIG's token key, every
    encrypted value decrypts, and every attribute (type, kind, plaintext or
    value, order) equals the plain reference's;
  - it is "old": every file byte-identical to ORIG and, with a MANIFEST,
    the same inode and mtime (nothing was even replaced); or
  - it is "new": both blobs and every encrypted value in TO's layout (PR
    #627's for gcm), each object that had an encrypted value rewritten with
    generation = ORIG's + 1, token.object rewritten with generation + 1, the
    generation file + 1 (absent stays absent), every other file
    byte-identical (and, with a MANIFEST, the same inode and mtime), and no
    IV used twice;
  - and that state is one ALLOWED admits.
Anything else ("mixed") fails, with a line per file saying what it holds.

Prints "ok ID STATE" or "FAIL ID: reasons" per case, then "N passed, N
failed"; exits 0 only when every case passed.
"""
import argparse
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tfsdecode as td  # noqa: E402

TXN_SUFFIX = ".tokenfs-new"
TXN_NAMES = ("tokenfs.journal", "tokenfs.journal.tmp")


def norm_value(v):
    """A comparable form of a value: map entries without their offsets."""
    if isinstance(v, list):
        return [norm_attr(e) if isinstance(e, td.Attribute) else e for e in v]
    return v


def norm_attr(a):
    """(type, kind, plaintext or value) of an attribute: what must survive."""
    return (a.type, a.kind, a.plaintext if a.plaintext is not None else norm_value(a.value))


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def read_manifest(path):
    rows = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 6:
                rows[parts[0]] = parts[1:]
    return rows


class Ref:
    """A decoded token plus the bytes of every file, cached per directory."""

    def __init__(self, tokdir, so, user):
        self.dir = tokdir
        self.tok = td.decode_token(tokdir, so, user)
        self.files = {n: read_bytes(os.path.join(tokdir, n)) for n in self.tok["files"]}


def compare_content(tok, ref, problems, same_key=True):
    """Same token key (unless rekeyed), same files, same attributes and
    plaintexts as ref."""
    if tok["token_keys_equal"] is not True:
        problems.append("the SO and user blobs do not both unwrap one token key")
    if same_key and tok["token_key"] != ref.tok["token_key"]:
        problems.append("the token key differs from the reference's")
    mine, theirs = tok["objects"], ref.tok["objects"]
    if sorted(mine) != sorted(theirs):
        problems.append(f"object files {sorted(set(mine) ^ set(theirs))} differ from the reference")
    for name in sorted(set(mine) & set(theirs)):
        a = [norm_attr(x) for x in mine[name].attributes]
        b = [norm_attr(x) for x in theirs[name].attributes]
        if a != b:
            diff = [f"{x[0]:#x}" for x, y in zip(a, b) if x != y]
            problems.append(f"{name}: attributes differ from the reference "
                            f"({len(a)} vs {len(b)}; differing types {diff[:6]})")
    meta_a = [norm_attr(x) for x in tok["token_object"].attributes
              if x.type not in td.BLOB_TYPES.values()]
    meta_b = [norm_attr(x) for x in ref.tok["token_object"].attributes
              if x.type not in td.BLOB_TYPES.values()]
    if meta_a != meta_b:
        problems.append("token.object: attributes other than the PIN blobs changed")


def expected_changed(orig, name):
    """Whether migrating ORIG rewrites file `name` (both PINs given)."""
    if name in ("token.object", "generation"):
        return True
    obj = orig.tok["objects"].get(name)
    return obj is not None and len(td.encrypted_attributes(obj)) > 0


def generation_of(data):
    return struct.unpack(">Q", data[:8])[0] if len(data) >= 8 else None


def all_ivs(tok):
    ivs = []
    meta = tok["token_object"]
    for t in td.BLOB_TYPES.values():
        a = meta.last(t)
        if a is not None and a.kind == td.KIND_BYTES and len(a.value) == td.PIN_BLOB_LEN:
            ivs.append(a.value[td.SALT_LEN:td.SALT_LEN + td.IV_LEN])
    for obj in tok["objects"].values():
        for a in td.encrypted_attributes(obj):
            ivs.append(a.value[:td.IV_LEN])
    return ivs


def check_case(case, refs, plain, pins):
    cid, d, orig_dir, frm, to, allowed, manifest = case
    problems = []
    try:
        names = sorted(os.listdir(d))
    except OSError as e:
        return "error", [f"cannot list {d}: {e}"]
    left = [n for n in names if n.endswith(TXN_SUFFIX) or n in TXN_NAMES]
    if left:
        problems.append(f"transaction files left: {left}")
    if orig_dir not in refs:
        refs[orig_dir] = Ref(orig_dir, *pins)
    orig = refs[orig_dir]
    rekeyed = to.endswith("-rekeyed")
    to = to.split("-")[0]
    try:
        tok = td.decode_token(d, *pins)
        opened_by = "old"
    except td.WrongPin as e:
        if not rekeyed:
            return "undecodable", problems + [f"does not decode: {e}"]
        try:  # a rekeyed token opens with the new PINs only
            tok = td.decode_token(d, os.environ["NS"], os.environ["NU"])
            opened_by = "new"
        except (td.FormatError, td.DecryptError, OSError) as e2:
            return "undecodable", problems + [f"opens with neither the old nor the new PINs: {e2}"]
    except (td.FormatError, td.DecryptError, OSError) as e:
        return "undecodable", problems + [f"does not decode: {e}"]
    if tok["other_entries"]:
        problems.append(f"entries that are not regular files: {tok['other_entries']}")
    files = [n for n in tok["files"] if n not in left]
    if sorted(files) != sorted(orig.files):
        problems.append(f"file list differs: missing {sorted(set(orig.files) - set(files))}, "
                        f"added {sorted(set(files) - set(orig.files))}")
    compare_content(tok, plain, problems, same_key=opened_by == "old")

    data = {n: read_bytes(os.path.join(d, n)) for n in files}
    man = read_manifest(manifest) if manifest != "-" else None
    stats = {n: os.lstat(os.path.join(d, n)) for n in files}
    if man is not None:
        for n in files:
            if n in man:
                mode, uid, gid = man[n][2:5]
                st = stats[n]
                if (f"{st.st_mode & 0o7777:o}", str(st.st_uid), str(st.st_gid)) != (mode, uid, gid):
                    problems.append(f"{n}: mode/owner {st.st_mode & 0o7777:o} {st.st_uid}:"
                                    f"{st.st_gid}, was {mode} {uid}:{gid}")

    def untouched(n):
        """Byte-identical to ORIG and, with a manifest, never replaced."""
        if data.get(n) != orig.files.get(n):
            return False
        if man is not None and n in man:
            st = stats[n]
            if str(st.st_ino) != man[n][0]:
                return False
            # find's %T@ has 10 fractional digits; compare at microseconds.
            if abs(float(man[n][1]) - st.st_mtime_ns / 1e9) > 1e-6:
                return False
        return True

    per_file = {}
    for n in sorted(set(files) & set(orig.files)):
        if untouched(n):
            per_file[n] = "untouched"
        elif data[n] == orig.files[n]:
            per_file[n] = "same bytes, replaced"
        else:
            per_file[n] = "changed"

    old = opened_by == "old" and all(v == "untouched" for v in per_file.values()) and \
        td.layout_problems(tok, frm) == []
    new_problems = list(td.layout_problems(tok, to))
    if rekeyed and opened_by != "new":
        new_problems.append("the old PINs still open it")
    if rekeyed and tok["token_key"] == orig.tok["token_key"]:
        new_problems.append("the token key was not rotated")
    for n, v in per_file.items():
        if expected_changed(orig, n):
            if v != "changed":
                new_problems.append(f"{n}: not rewritten ({v})")
                continue
            g_old, g_new = generation_of(orig.files[n]), generation_of(data[n])
            if g_old is None or g_new != g_old + 1:
                new_problems.append(f"{n}: generation {g_new}, was {g_old}")
        elif v != "untouched":
            new_problems.append(f"{n}: needed no change but is {v}")
    ivs = all_ivs(tok)
    if len(set(ivs)) != len(ivs):
        new_problems.append("an IV is used twice")
    new = not new_problems

    state = "old" if old else "new" if new else "mixed"
    if state == "mixed":
        layouts = {}
        for n, obj in tok["objects"].items():
            ls = sorted({a.layout for a in td.encrypted_attributes(obj)})
            layouts[n] = "/".join(ls) if ls else "-"
        blobs = {r: (b or {}).get("layout") for r, b in tok["blobs"].items()}
        problems.append(f"mixed state: blobs {blobs}; " + "; ".join(
            f"{n} {per_file.get(n)} {layouts.get(n, '')}".rstrip() for n in sorted(per_file)
            if not n.endswith(".lock")))
        problems.append("not wholly new because: " + "; ".join(new_problems[:8]))
    elif allowed != "any" and state != allowed:
        problems.append(f"state is {state}, expected {allowed}")
    return state, problems


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--plain-ref", required=True)
    p.add_argument("--so-pin-env", default="S")
    p.add_argument("--user-pin-env", default="U")
    p.add_argument("cases")
    args = p.parse_args(argv)
    pins = (os.environ[args.so_pin_env], os.environ[args.user_pin_env])
    plain = Ref(args.plain_ref, *pins)
    refs = {}
    passed = failed = 0
    with open(args.cases) as f:
        cases = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    for case in cases:
        if len(case) != 7:
            print(f"FAIL {case[0]}: malformed case line ({len(case)} fields)")
            failed += 1
            continue
        try:
            state, problems = check_case(case, refs, plain, pins)
        except Exception as e:  # a checker bug must fail the case, not pass it
            state, problems = "error", [f"checker error: {type(e).__name__}: {e}"]
        if problems:
            failed += 1
            print(f"FAIL {case[0]} ({state}): " + " | ".join(problems))
        else:
            passed += 1
            print(f"ok {case[0]} {state}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
