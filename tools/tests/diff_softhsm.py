#!/usr/bin/python3
"""tokenfs diff against real SoftHSM 2.6.1.

A token is made with softhsm2-util and filled through PyKCS11; `tokenfs
backup` takes state A, then one C_SetAttributeValue changes CKA_LABEL and
the bool CKA_DECRYPT of one key, and the live store is state B. `tokenfs
diff --user-pin A B` must name exactly those two attributes of exactly that
object, with their old and new values (the label decrypted), and nothing
else as changed. Also: exit codes (0 same, 1 different, 2 errors), key
material shown by length and fingerprint only unless --reveal, a destroyed
and a created object, and without a PIN the same attributes still named.
The backup archive itself (read in memory) and its unpacked copy give the
same diff.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402
import softhsm_session  # noqa: E402

LABEL, SO_PIN, USER_PIN = "difftok", "so-diff-1", "user-diff-1"


def make_token(root):
    tokendir = os.path.join(root, "tokens")
    softhsm_session.init_token(tokendir, os.path.join(root, "softhsm2.conf"), LABEL, SO_PIN,
                               USER_PIN)
    return tokendir


def main():
    code = softhsm_session.missing()
    if code is not None:
        return code
    root = tempfile.mkdtemp(prefix="tfs-diff-")
    env = dict(os.environ, UP=USER_PIN, BAD="not-the-pin")
    tfs = softhsm_session.tokenfs(env)

    def diff_json(*args):
        r = tfs("diff", "--format", "json", *args)
        return r.returncode, json.loads(r.stdout) if r.stdout else None

    try:
        tokendir = make_token(root)
        P, s = softhsm_session.open_session(tokendir, LABEL)
        s.login(USER_PIN)

        def aes(label, **extra):
            t = [(P.CKA_CLASS, P.CKO_SECRET_KEY), (P.CKA_KEY_TYPE, P.CKK_AES), (P.CKA_VALUE_LEN, 32),
                 (P.CKA_TOKEN, True), (P.CKA_PRIVATE, True), (P.CKA_LABEL, label),
                 (P.CKA_ENCRYPT, True), (P.CKA_DECRYPT, True), (P.CKA_SENSITIVE, False),
                 (P.CKA_EXTRACTABLE, True)]
            return s.generateKey(t + list(extra.items()))

        tokdir = os.path.join(tokendir, os.listdir(tokendir)[0])

        def objects():
            return {n[:-7] for n in os.listdir(tokdir)
                    if n.endswith(".object") and n != "token.object"}

        def made(fn):
            """Runs fn; returns its result and the uuid of the object file it made."""
            before = objects()
            h = fn()
            new = objects() - before
            check(len(new) == 1, f"one new object file: {new}")
            return h, new.pop() if new else None

        changed, changed_uuid = made(lambda: aes("before"))
        kept, kept_uuid = made(lambda: aes("kept"))
        doomed = s.createObject([(P.CKA_CLASS, P.CKO_DATA), (P.CKA_TOKEN, True),
                                 (P.CKA_PRIVATE, True), (P.CKA_LABEL, "doomed")])

        # State A: a backup, unpacked.
        backup = os.path.join(root, "a.tar.gz")
        r = tfs("backup", "--user-pin", "env:UP", "--out", backup, tokendir)
        check(r.returncode == 0, f"backup: {r.stderr}")
        a_root = os.path.join(root, "A")
        os.mkdir(a_root)
        subprocess.run(["tar", "xzf", backup, "-C", a_root], check=True)

        rc, d = diff_json("--user-pin", "env:UP", a_root, tokendir)
        check(rc == 0 and d["equal"] is True, f"A against the untouched store: equal, exit 0 (got {rc})")
        r = tfs("diff", a_root, tokendir)
        check(r.returncode == 0 and ": same" in r.stdout, "text: same, exit 0")

        # One C_SetAttributeValue: a label and a bool.
        s.setAttributeValue(changed, [(P.CKA_LABEL, "after"), (P.CKA_DECRYPT, False)])
        rc, d = diff_json("--user-pin", "env:UP", a_root, tokendir)
        check(rc == 1 and d["equal"] is False, f"after C_SetAttributeValue: exit 1 (got {rc})")
        t = d["tokens"][0]
        ch = t["changes"]
        named = sorted((c["object"], c["attribute"]) for c in ch if c["change"] == "attribute-changed")
        check(named == sorted([(changed_uuid, "CKA_DECRYPT"), (changed_uuid, "CKA_LABEL")]),
              f"exactly CKA_LABEL and CKA_DECRYPT of {changed_uuid} named: {named}")
        others = [c for c in ch if c["change"] != "attribute-changed"]
        check(others == [], f"nothing else changed: {others}")
        by = {c["attribute"]: c for c in ch}
        # The archive itself, read in memory, says the same as its unpacked copy.
        rc_arc, d_arc = diff_json("--user-pin", "env:UP", backup, tokendir)
        named_arc = sorted((c["object"], c["attribute"]) for c in d_arc["tokens"][0]["changes"]
                           if c["change"] == "attribute-changed") if d_arc else None
        check(rc_arc == 1 and named_arc == named, f"the archive itself: the same diff ({named_arc})")
        check(by.get("CKA_LABEL", {}).get("old") == '"before"' and
              by.get("CKA_LABEL", {}).get("new") == '"after"',
              f"label old and new, decrypted: {by.get('CKA_LABEL')}")
        check(by.get("CKA_DECRYPT", {}).get("old") == "true" and
              by.get("CKA_DECRYPT", {}).get("new") == "false",
              f"bool old and new: {by.get('CKA_DECRYPT')}")
        check(t["unlocked"] is True, "unlocked with the PIN")

        # Without a PIN: the same attributes, values as stored.
        rc, d = diff_json(a_root, tokendir)
        named = sorted(c["attribute"] for c in d["tokens"][0]["changes"])
        check(rc == 1 and named == ["CKA_DECRYPT", "CKA_LABEL"], f"no PIN: same names: {named}")
        r = tfs("diff", a_root, tokendir)
        check(r.returncode == 1 and "CKA_LABEL changed from" in r.stdout and "after" not in r.stdout,
              "no PIN: text names CKA_LABEL, shows no plaintext")

        # Destroy one object, create another.
        s.destroyObject(doomed)
        aes("newcomer")
        rc, d = diff_json("--user-pin", "env:UP", a_root, tokendir)
        kinds = sorted(c["change"] for c in d["tokens"][0]["changes"])
        check(kinds.count("file-added") == 2 and kinds.count("file-removed") == 2,
              f"an object removed and one added (object and lock files): {kinds}")
        added = [c["message"] for c in d["tokens"][0]["changes"] if c["change"] == "file-added"
                 and c["file"].endswith(".object")]
        check(any("secret key AES 256-bit 'newcomer'" in m for m in added),
              f"the new object described as dump summarises it: {added}")

        # Key material: A's copy of the kept key gets the changed key's file
        # (the same token key), so CKA_VALUE differs. Redacted by default.
        value_changed = s.getAttributeValue(changed, [P.CKA_VALUE])[0]
        value_kept = s.getAttributeValue(kept, [P.CKA_VALUE])[0]
        a_tok = os.path.join(a_root, os.listdir(a_root)[0])
        shutil.copy(os.path.join(a_tok, changed_uuid + ".object"),
                    os.path.join(a_tok, kept_uuid + ".object"))
        secrets = [bytes(value_changed).hex(), bytes(value_kept).hex()]
        r = tfs("diff", "--user-pin", "env:UP", a_root, tokendir)
        check(r.returncode == 1 and "CKA_VALUE changed from <redacted key material, 32 bytes, kcv:"
              in r.stdout, "key material: length and fingerprint")
        check(not any(x in r.stdout.lower() for x in secrets), "key material not shown without --reveal")
        r = tfs("diff", "--user-pin", "env:UP", "--reveal", a_root, tokendir)
        check(all(x in r.stdout.lower() for x in secrets), "--reveal shows both keys")

        # A wrong PIN is a finding about its token (exit 1, values compared
        # as stored); errors: exit 2.
        r = tfs("diff", "--user-pin", "env:BAD", a_root, tokendir)
        check(r.returncode == 1 and "[pin.wrong]" in r.stderr, "wrong PIN: exit 1, [pin.wrong]")
        check(tfs("diff", a_root).returncode == 2, "one PATH: exit 2")
        check(tfs("diff", a_root, os.path.join(root, "nonesuch")).returncode == 2, "missing PATH: exit 2")
        check(tfs("diff", "--token", "nosuch", a_root, tokendir).returncode == 2,
              "--token selecting nothing: exit 2")
        # A token only on one side: the same token under another directory
        # name is one token removed and one added.
        other = os.path.join(root, "other")
        shutil.copytree(tokendir, other, symlinks=True)
        (tok_name,) = [n for n in os.listdir(other) if os.path.isdir(os.path.join(other, n))]
        os.rename(os.path.join(other, tok_name), os.path.join(other, "moved-" + tok_name))
        rc, d = diff_json(other, tokendir)
        check(rc == 1 and sorted(t["state"] for t in d["tokens"]) == ["added", "removed"],
              f"a token added and one removed: {d}")
        # A directory holding no token is no store to compare with.
        empty = os.path.join(root, "empty")
        os.mkdir(empty, 0o700)
        r = tfs("diff", empty, tokendir)
        check(r.returncode == 2 and "not a token store" in r.stderr, "an empty directory: exit 2")
        s.logout()
    finally:
        if os.environ.get("TFS_KEEP_TMP"):  # for debugging: keep the stores
            print("kept:", root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
