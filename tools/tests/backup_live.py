#!/usr/bin/python3
"""backup of a live store: never a torn or mixed object.

A real SoftHSM 2.6.1, driven through PyKCS11 by a second process, keeps
creating, changing (C_SetAttributeValue) and destroying objects in a token
while `tokenfs backup` archives it again and again for about 35 seconds.
Every archive is then unpacked and checked with tfsdecode.py, the
independent decoder (shares no code with libtokenfs):

  * every object file parses completely, none is empty;
  * every encrypted value decrypts under the token key (a torn ciphertext
    does not);
  * every object has the whole attribute set of a finished object of its
    kind (SoftHSM writes a new object ~25 times while its list grows);
  * every key's label and CKA_ID are equal (the loop changes both in one
    C_SetAttributeValue, so a mix of two writes shows);
  * the seal inside the archive (made from the snapshot) checks clean
    against the unpacked files, generations included.

As a contrast, plain `tar cf` of the same live directory is checked the
same way and its torn archives are counted (reported, not required: it
depends on timing). That the checker finds those proves it can fail.

Usage: backup_live.py (TOKENFS in the environment); --loop TOKENDIR runs the
PKCS#11 writer.
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402
import softhsm_session  # noqa: E402
import tfsdecode  # noqa: E402

LABEL = "live"
SO_PIN = "so-live-1"
USER_PIN = "user-live-1"
DURATION = float(os.environ.get("BACKUP_LIVE_SECONDS", "35"))
CKA_CLASS, CKA_LABEL, CKA_ID = 0x0, 0x3, 0x102
CKO_DATA, CKO_SECRET_KEY = 0, 4


def loop(tokendir, stop_file):
    """The writer, until stop_file exists: data objects created, relabelled
    and destroyed; AES keys generated, their label and CKA_ID changed
    together in one C_SetAttributeValue, and destroyed."""
    P, s = softhsm_session.open_session(tokendir, LABEL)
    s.login(USER_PIN)
    data, keys, i = [], [], 0
    while not os.path.exists(stop_file):
        i += 1
        data.append(s.createObject([(P.CKA_CLASS, P.CKO_DATA), (P.CKA_TOKEN, True),
                                    (P.CKA_PRIVATE, True), (P.CKA_LABEL, "obj-%d" % i),
                                    (P.CKA_APPLICATION, "backup_live"),
                                    (P.CKA_VALUE, b"value" * 8)]))
        keys.append(s.generateKey([(P.CKA_CLASS, P.CKO_SECRET_KEY), (P.CKA_KEY_TYPE, P.CKK_AES),
                                   (P.CKA_VALUE_LEN, 32), (P.CKA_TOKEN, True),
                                   (P.CKA_PRIVATE, True), (P.CKA_LABEL, "k-v%d" % i),
                                   (P.CKA_ID, b"k-v%d" % i)]))
        s.setAttributeValue(keys[len(keys) // 2], [(P.CKA_LABEL, "k-w%d" % i),
                                                   (P.CKA_ID, b"k-w%d" % i)])
        s.setAttributeValue(data[len(data) // 2], [(P.CKA_LABEL, "obj-w%d" % i)])
        if len(data) > 5:
            s.destroyObject(data.pop(0))
        if len(keys) > 4:
            s.destroyObject(keys.pop(0))
        # An application pauses between requests now and then; a writer
        # that never does is refused, bounded (tested by the count below).
        time.sleep(random.uniform(0.0, 0.06))
    s.logout()


def make_token(root):
    tokendir = os.path.join(root, "tokens")
    softhsm_session.init_token(tokendir, os.path.join(root, "softhsm2.conf"), LABEL, SO_PIN,
                               USER_PIN)
    return tokendir


def finished_shapes(tok):
    """Attribute type sets of the finished objects, by (class, key or not)."""
    shapes = {}
    for obj in tok["objects"].values():
        cls = obj.last(CKA_CLASS)
        if cls is not None:
            shapes.setdefault(cls.value, set()).add(frozenset(a.type for a in obj.attributes))
    return shapes


def problems(tokdir, reference):
    """What is wrong with one unpacked token, by the independent decoder."""
    out = []
    try:
        tok = tfsdecode.decode_token(tokdir, user_pin=USER_PIN)
    except Exception as e:  # FormatError, DecryptError: torn bytes
        return [f"does not decode: {e}"]
    if tok["generation"] is None:
        out.append("no 8-byte generation file")
    for name, obj in tok["objects"].items():
        cls = obj.last(CKA_CLASS)
        types = frozenset(a.type for a in obj.attributes)
        if cls is None or types not in reference.get(cls.value, ()):
            out.append(f"{name}: not a finished object ({len(types)} attributes)")
            continue
        if cls.value == CKO_SECRET_KEY:
            label, id_ = obj.last(CKA_LABEL).plaintext, obj.last(CKA_ID).plaintext
            if label is None or not label.startswith(b"k-") or label != id_:
                out.append(f"{name}: label {label!r} and CKA_ID {id_!r} from different writes")
    return out


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--loop":
        loop(sys.argv[2], sys.argv[3])
        return 0
    code = softhsm_session.missing()
    if code is not None:
        return code
    tokenfs = os.environ["TOKENFS"]
    root = tempfile.mkdtemp(prefix="tfs-backup-live-")

    try:
        tokendir = make_token(root)
        stop = os.path.join(root, "stop")
        # A quiet reference: the shapes of finished objects of each kind.
        writer = subprocess.Popen([sys.executable, __file__, "--loop", tokendir, stop])
        time.sleep(2.0)
        open(stop, "w").close()
        check(writer.wait(timeout=60) == 0, "the PKCS#11 writer ran")
        os.unlink(stop)
        tokdir = os.path.join(tokendir, os.listdir(tokendir)[0])
        reference = finished_shapes(tfsdecode.decode_token(tokdir, user_pin=USER_PIN))
        check(CKO_DATA in reference and CKO_SECRET_KEY in reference,
              f"reference shapes of data objects and keys: {sorted(reference)}")

        writer = subprocess.Popen([sys.executable, __file__, "--loop", tokendir, stop])
        env = dict(os.environ, UP=USER_PIN)
        n = bad = tarred = torn_tar = refused = 0
        deadline = time.monotonic() + DURATION
        while time.monotonic() < deadline:
            n += 1
            out = os.path.join(root, f"b{n}.tar.gz")
            r = subprocess.run([tokenfs, "backup", "--user-pin", "env:UP", "--max-reads", "200",
                                "--out", out, tokendir], env=env, capture_output=True, text=True)
            if r.returncode != 0:
                # Only the bounded "never held still" refusal is acceptable.
                refused += 1
                check("changed on each of" in r.stderr and not os.path.exists(out),
                      f"backup {n} failed: {r.stderr.strip()}")
                continue
            check(os.stat(out).st_mode & 0o777 == 0o600, f"backup {n} is not 0600")
            x = os.path.join(root, f"x{n}")
            os.mkdir(x)
            # Unpacked for the independent decoder; the seal is checked on
            # the archive itself, read in memory.
            subprocess.run(["tar", "xzf", out, "-C", x], check=True)
            t = os.path.join(x, os.listdir(x)[0])
            p = problems(t, reference)
            s = subprocess.run([tokenfs, "verify-integrity", "--user-pin", "env:UP",
                                "--check-seal", "--fail-on", "error", out],
                               env=env, capture_output=True, text=True)
            if s.returncode != 0:
                p.append("its seal does not check clean: " + s.stdout[-400:])
            if p:
                bad += 1
                print(f"backup {n}:", *p, sep="\n  ", file=sys.stderr)
            shutil.rmtree(x)
            os.unlink(out)
            # The contrast: a plain tar of the same live directory.
            if n % 2 == 0:
                tarred += 1
                y = os.path.join(root, "y")
                os.mkdir(y)
                subprocess.run(["tar", "cf", os.path.join(root, "plain.tar"), "-C", tokendir, "."],
                               capture_output=True)
                subprocess.run(["tar", "xf", os.path.join(root, "plain.tar"), "-C", y],
                               capture_output=True)
                names = [d for d in os.listdir(y) if d != "."]
                if names and problems(os.path.join(y, names[0]), reference):
                    torn_tar += 1
                shutil.rmtree(y)
        open(stop, "w").close()
        check(writer.wait(timeout=60) == 0, "the PKCS#11 writer ran throughout")
        good = n - refused - bad
        print(f"{n} backups during live writes: {good} consistent, {bad} torn or mixed, "
              f"{refused} refused (never held still); plain tar: {torn_tar} of {tarred} torn")
        check(bad == 0, f"{bad} of {n} backups hold a torn or mixed object")
        check(good >= 10, f"only {good} backups succeeded")
    finally:
        if os.path.exists(os.path.join(root, "stop")) is False:
            open(os.path.join(root, "stop"), "w").close()
        shutil.rmtree(root, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
