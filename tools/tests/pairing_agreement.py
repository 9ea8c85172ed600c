#!/usr/bin/python3
"""dump, export and verify-integrity see the same key pairs (one pairing
model, tokenfs/pairing.h), and dump reports the per-object anomalies verify
reports, through the same library check.

A real SoftHSM 2.6.1 token made through PyKCS11 holds:
- ec1: an EC P-256 private key (CKA_ID 01) whose public key object is
  another key's (ec2's public key, its CKA_ID set to 01): same ID, same
  curve, different key;
- long: a private key and another key's public key whose 40-byte CKA_IDs
  differ only in their last byte;
- ec3: an intact EC pair (CKA_ID 03).
With the user PIN, verify-integrity must report key.pair-mismatch on ec1
naming ec2's public key, and nothing about long; dump must not list ec1 with
that public key, nor long's halves as one key (each used to: dump paired an
EC private key with any public key of its ID and curve, and compared IDs by
a hex string cut at 39 bytes), and must list ec3 as one key; every pair dump
lists is one verify does not contradict; export refuses ec1.
On testdata/malformed's generation-only and duplicate-label files dump's
stderr says exactly what verify-integrity's findings say.
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402
import softhsm_session  # noqa: E402

LABEL, SO_PIN, USER_PIN = "pairtok", "so-pair-1", "user-pair-1"
P256 = bytes.fromhex("06082a8648ce3d030107")
LONG1 = b"\xaa" * 39 + b"\x01"
LONG2 = b"\xaa" * 39 + b"\x02"


def make_token(root):
    tokendir = os.path.join(root, "tokens")
    softhsm_session.init_token(tokendir, os.path.join(root, "softhsm2.conf"), LABEL, SO_PIN,
                               USER_PIN)
    return tokendir


def fill(tokendir):
    """Makes the objects; returns {name: uuid} of the private and public
    key objects that remain."""
    P, s = softhsm_session.open_session(tokendir, LABEL)
    s.login(USER_PIN)
    T, F = True, False
    tokdir = os.path.join(tokendir, os.listdir(tokendir)[0])

    def files():
        return {n[:-7] for n in os.listdir(tokdir) if n.endswith(".object") and n != "token.object"}

    made = {}
    for name, kid in (("ec1", b"\x01"), ("ec2", b"\x02"), ("ec3", b"\x03"),
                      ("long1", LONG1), ("long2", LONG2)):
        t = [(P.CKA_LABEL, name), (P.CKA_ID, kid)]
        before = files()
        pub, priv = s.generateKeyPair(
            [(P.CKA_TOKEN, T), (P.CKA_VERIFY, T), (P.CKA_EC_PARAMS, P256)] + t,
            [(P.CKA_TOKEN, T), (P.CKA_PRIVATE, T), (P.CKA_SIGN, T), (P.CKA_SENSITIVE, F),
             (P.CKA_EXTRACTABLE, T)] + t,
            P.Mechanism(P.CKM_EC_KEY_PAIR_GEN))
        new = files() - before
        check(len(new) == 2, f"{name}: two object files made: {new}")
        made[name] = (pub, priv, new)
    uuids = {}

    def split(name):
        """Which new file is the public key: it is not a private object, so
        its CKA_LABEL is stored in plaintext (8-byte length, then the
        bytes); the private key's is ciphertext."""
        pub, priv, new = made[name]
        stored = len(name).to_bytes(8, "big") + name.encode()
        for u in new:
            data = open(os.path.join(tokdir, u + ".object"), "rb").read()
            uuids[f"{name}.{'pub' if stored in data else 'priv'}"] = u
    for name in made:
        split(name)
    check(all(f"{n}.{k}" in uuids for n in made for k in ("pub", "priv")),
          f"public and private halves told apart: {uuids}")
    # ec1's own public key goes; ec2's takes its CKA_ID.
    s.destroyObject(made["ec1"][0])
    s.setAttributeValue(made["ec2"][0], [(P.CKA_ID, (1,))])
    # long1's private key and long2's public key remain.
    s.destroyObject(made["long1"][0])
    s.destroyObject(made["long2"][1])
    s.logout()
    s.closeSession()
    return uuids


def main():
    code = softhsm_session.missing()
    if code is not None:
        return code
    root = tempfile.mkdtemp(prefix="tfs-pair-")
    env = dict(os.environ, UP=USER_PIN, PASS="export-pass-1")
    tfs = softhsm_session.tokenfs(env)

    try:
        tokendir = make_token(root)
        u = fill(tokendir)

        r = tfs("verify-integrity", "--format", "json", "--user-pin", "env:UP", tokendir)
        v = json.loads(r.stdout)
        findings = [f for t in v["tokens"] for f in t["findings"]]
        mism = [f for f in findings if f["code"] in ("key.pair-mismatch", "cert.key-mismatch")]
        check(len(mism) == 1 and mism[0]["code"] == "key.pair-mismatch" and
              mism[0]["object"] == u["ec1.priv"] and u["ec2.pub"] in mism[0]["message"],
              f"verify: key.pair-mismatch on ec1 naming ec2's public key only: {mism}")

        r = tfs("dump", "--format", "json", "--user-pin", "env:UP", tokendir)
        check(r.returncode == 0, f"dump of the token: exit 0 ({r.returncode}: {r.stderr})")
        keys = [k for t in json.loads(r.stdout)["tokens"] for k in t["keys"]]
        pairs = {(k["private"], k["public"]) for k in keys if k["private"] and k["public"]}
        check((u["ec1.priv"], u["ec2.pub"]) not in pairs,
              "dump does not list ec1's private key with ec2's public key")
        check((u["long1.priv"], u["long2.pub"]) not in pairs,
              "dump does not pair keys whose 40-byte CKA_IDs differ in the last byte")
        check((u["ec3.priv"], u["ec3.pub"]) in pairs, f"dump pairs ec3's halves: {keys}")
        contradicted = {(f["object"], o) for f in mism for o in u.values() if o in f["message"]}
        check(not (pairs & contradicted),
              f"no pair dump lists is one verify reports as a mismatch: {pairs & contradicted}")
        check(len({k["private"] for k in keys if k["private"]}) ==
              len([k for k in keys if k["private"]]), "each private key in one key only")

        out = os.path.join(root, "out")
        r = tfs("export", "--out", out, "--user-pin", "env:UP", "--passout", "env:PASS",
                "--format", "json", tokendir)
        flat = json.dumps(json.loads(r.stdout))
        check(r.returncode == 1 and '"failed"' in flat and "does not match" in flat and
              u["ec2.pub"] in flat and not any(f.startswith("ec1") for f in os.listdir(out)),
              f"export refuses ec1, naming ec2's public key ({r.returncode}): {flat[:2000]}")
        check(any(f.startswith("ec3") and f.endswith(".key.pem") for f in os.listdir(out)),
              f"export writes ec3: {os.listdir(out)}")

        # Anomalies: what dump prints on stderr is what verify finds.
        mal = os.path.join(os.environ["TFS_TESTDATA"], "malformed")
        for name in ("generation-only", "duplicate-label"):
            path = os.path.join(mal, name + ".object")
            d = tfs("dump", path)
            v = json.loads(tfs("verify-integrity", "--format", "json", path).stdout)
            said = [f"tokenfs: {f['path']}: offset {f['offset']}: {f['message']}"
                    for t in v["tokens"] for f in t["findings"]
                    if f["code"] in ("object.generation-only", "object.duplicate-attribute")]
            check(d.returncode == 1 and said and d.stderr.splitlines() == said,
                  f"{name}: dump says what verify finds: {d.stderr.splitlines()} vs {said}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
