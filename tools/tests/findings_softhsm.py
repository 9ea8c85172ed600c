#!/usr/bin/python3
"""Two findings whose severity rests on what real SoftHSM 2.6.1 does
(docs/findings.md), checked against it:

- key.bad-length: `softhsm2-util --import FILE --aes` of a key kept as hex
  text (32 hex digits and a newline) makes a 33-byte AES key. SoftHSM
  refuses to use it (CKR_MECHANISM_INVALID) and uses the binary import of
  the same key; verify-integrity reports the first as an error, without a
  PIN (from CKA_VALUE_LEN) and with one (from CKA_VALUE), and not the second.
- object.torn: an EC public key file cut inside a field is left out of the
  token by SoftHSM (C_FindObjects no longer lists it); cut between two
  attributes before CKA_EC_POINT, SoftHSM writes it back at its first
  listing with CKA_EC_POINT empty. Both are errors; a cut that keeps the
  key's attributes is the warning object.ends-early.

usage: findings_softhsm.py   (TOKENFS in the environment)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checks import expect as check, finish  # noqa: E402
import softhsm_session  # noqa: E402

TOKENFS = os.environ["TOKENFS"]
SO, USER = "so-findings-1", "user-findings-1"
CKA_VALUE, CKA_VALUE_LEN, CKA_EC_PARAMS, CKA_EC_POINT = 0x11, 0x161, 0x180, 0x181

# Runs in a child: the module reads SOFTHSM2_CONF once per process.
ENCRYPT = """
import sys, PyKCS11
p = PyKCS11.PyKCS11Lib(); p.load(sys.argv[1])
slot = p.getSlotList(tokenPresent=True)[0]
s = p.openSession(slot, PyKCS11.CKF_SERIAL_SESSION); s.login(sys.argv[2])
for label in sys.argv[3:]:
    k = s.findObjects([(PyKCS11.CKA_LABEL, label)])[0]
    try:
        s.encrypt(k, bytes(16), PyKCS11.Mechanism(PyKCS11.CKM_AES_ECB)); print(label, "ok")
    except PyKCS11.PyKCS11Error as e:
        print(label, str(e).split()[0])
"""


def conf_env(tokendir):
    conf = tokendir + ".conf"
    with open(conf, "w") as f:
        f.write(f"directories.tokendir = {tokendir}\nobjectstore.backend = file\n"
                "log.level = ERROR\n")
    return dict(os.environ, SOFTHSM2_CONF=conf)


def run(*args, env=None):
    return subprocess.run(list(args), capture_output=True, text=True, env=env)


def verify(path, *args):
    r = run(TOKENFS, "verify-integrity", "--format", "json", *args, path,
            env=dict(os.environ, TFS_PIN=USER))
    doc = json.loads(r.stdout) if r.stdout.strip() else {"tokens": []}
    return r.returncode, [f for t in doc["tokens"] for f in t.get("findings", [])]


def objects(path, *args):
    r = run(TOKENFS, "dump", "--format", "json", *args, path, env=dict(os.environ, TFS_PIN=USER))
    return [o for t in json.loads(r.stdout)["tokens"] for o in t["objects"]]


def attr(obj, typ):
    return next((a for a in obj.get("attributes", []) if a["type"] == typ), None)


def listed(env, tokendir):
    """The public-key lines SoftHSM lists, and its exit code."""
    r = run("pkcs11-tool", "--module", softhsm_session.MODULE, "--token-label", "fnd",
            "--list-objects", env=env)
    return r.returncode, [ln for ln in r.stdout.splitlines() if ln.startswith("Public Key Object")]


def main():
    skip = softhsm_session.missing("pkcs11-tool")
    if skip is not None:
        return skip
    work = tempfile.mkdtemp()
    try:
        tokendir = os.path.join(work, "tokens")
        os.mkdir(tokendir)
        env = conf_env(tokendir)
        run("softhsm2-util", "--init-token", "--free", "--label", "fnd", "--so-pin", SO,
            "--pin", USER, env=env)
        # softhsm2-util reads a key file as a line of text: a NUL or a line
        # break in random bytes cuts the binary key short (about one run in
        # eight). Bytes 0x21..0xfe keep the binary key 16 bytes long.
        key = bytes(0x21 + b % 0xde for b in os.urandom(16))
        with open(os.path.join(work, "aes.hex"), "w") as f:
            f.write(key.hex() + "\n")
        with open(os.path.join(work, "aes.bin"), "wb") as f:
            f.write(key)
        for name, label, kid in (("aes.hex", "aes-hex", "01"), ("aes.bin", "aes-bin", "02")):
            r = run("softhsm2-util", "--import", os.path.join(work, name), "--aes", "--token",
                    "fnd", "--label", label, "--id", kid, "--pin", USER, env=env)
            check(f"softhsm2-util --import {name} --aes: exit {r.returncode} {r.stderr}",
                  r.returncode == 0)
        r = run("pkcs11-tool", "--module", softhsm_session.MODULE, "--token-label", "fnd",
                "--login", "--pin", USER, "--keypairgen", "--key-type", "EC:prime256v1",
                "--id", "03", "--label", "ec", env=env)
        check(f"pkcs11-tool --keypairgen: exit {r.returncode}", r.returncode == 0)
        tok = os.path.join(tokendir, os.listdir(tokendir)[0])

        # ---- key.bad-length ----
        r = run("/usr/bin/python3", "-c", ENCRYPT, softhsm_session.MODULE, USER, "aes-hex",
                "aes-bin", env=env)
        used = dict(ln.split() for ln in r.stdout.splitlines())
        check(f"SoftHSM refuses the 33-byte key and uses the 16-byte one: {used} {r.stderr}",
              used == {"aes-hex": "CKR_MECHANISM_INVALID", "aes-bin": "ok"})
        objs = objects(tokendir, "--user-pin", "env:TFS_PIN")  # labels are private
        by_label = {}
        for o in objs:
            lab = attr(o, 3)
            if lab is not None and lab.get("text"):
                by_label[lab["text"]] = o["uuid"]
        hex_uuid = by_label.get("aes-hex")
        hex_obj = next((o for o in objs if o["uuid"] == hex_uuid), {})
        check("the hex import is 33 bytes by its CKA_VALUE_LEN",
              (attr(hex_obj, CKA_VALUE_LEN) or {}).get("value") == 33)
        for args, where in (((), CKA_VALUE_LEN), (("--user-pin", "env:TFS_PIN"), CKA_VALUE)):
            rc, found = verify(tokendir, *args)
            bad = [(f["object"], f["severity"], f["attribute"]) for f in found
                   if f["code"] == "key.bad-length"]
            check(f"verify {' '.join(args) or 'without a PIN'}: key.bad-length, an error, on "
                  f"the hex key only, at {where:#x}: {bad}", bad == [(hex_uuid, "error", where)])
            check(f"verify {' '.join(args)}: exit {rc}, want 1", rc == 1)

        # ---- object.torn / object.ends-early on the EC public key ----
        pub = next(o for o in objs if (attr(o, 0) or {}).get("value") == 2)
        point = attr(pub, CKA_EC_POINT)
        params = attr(pub, CKA_EC_PARAMS)
        last = pub["attributes"][-1]
        cuts = [
            ("inside CKA_EC_POINT's value", point["offset"] + 24 + 10, "object.torn", "error",
             "gone"),
            ("inside an attribute's type", params["offset"] + 3, "object.torn", "error",
             "emptied"),
            ("between attributes, before CKA_EC_PARAMS", params["offset"], "object.torn",
             "error", "emptied"),
            ("between attributes, before the last one", last["offset"], "object.ends-early",
             "warning", "kept"),
        ]
        base = os.path.join(work, "base")
        shutil.copytree(tokendir, base)
        for what, size, code, sev, softhsm in cuts:
            shutil.rmtree(tokendir)
            shutil.copytree(base, tokendir)
            path = os.path.join(tok, pub["file"])
            os.truncate(path, size)
            rc, found = verify(tokendir)
            got = [(f["code"], f["severity"]) for f in found if f["object"] == pub["uuid"]]
            check(f"cut {what} (at {size}): {code} {sev}: {got}", (code, sev) in got)
            check(f"cut {what}: verify exit {rc}, want 1", rc == 1)
            if sev == "error":
                rc, _ = verify(tokendir, "--fail-on", "error")
                check(f"cut {what}: fails --fail-on error (exit {rc})", rc == 1)
            # What SoftHSM does with it (it may rewrite the file: a copy).
            rc, pubs = listed(env, tokendir)
            after = [o for o in objects(tokendir) if o["uuid"] == pub["uuid"]]
            ec_point = (attr(after[0], CKA_EC_POINT) or {}).get("value") if after else None
            if softhsm == "gone":
                check(f"cut {what}: SoftHSM lists no public key: {pubs}", rc == 0 and not pubs)
            elif softhsm == "emptied":
                check(f"cut {what}: SoftHSM wrote the key back with CKA_EC_POINT empty "
                      f"({ec_point!r})", rc == 0 and len(pubs) == 1 and ec_point == "")
            else:
                check(f"cut {what}: SoftHSM keeps the point ({ec_point!r})",
                      rc == 0 and len(pubs) == 1 and ec_point == point["value"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
