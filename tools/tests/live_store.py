#!/usr/bin/python3
"""A live store is not a damaged store.

SoftHSM 2.6.1 unlocks before its buffered write reaches the file and writes
a new object many times as its attributes grow (FORMAT.md section 4), so a
reader beside it sees empty, torn, generation-only and half-created
objects, objects that vanish between listing and reading, and an empty
token.object during logins. This test runs a real SoftHSM writer (PyKCS11,
in a second process: logins, C_GenerateKey, C_GenerateKeyPair,
C_CreateObject, C_SetAttributeValue on old and new objects,
C_DestroyObject) beside 200 runs of each read command (dump, dump --format
json, verify-integrity with a PIN). None may exit 2, and none may report a
finding at warning or error that the quiet store does not have. Then a
truly torn file (a stable cut), fresh and at rest, must still be reported.

usage: live_store.py [RUNS]   (TOKENFS in the environment; default 200)
       live_store.py --writer TOKENDIR STOPFILE   (the writer process)
"""
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checks import expect as check, finish  # noqa: E402
import softhsm_session  # noqa: E402

SO, USER = "so-live-1", "user-live-1"


def writer(tokendir, stop):
    P, s = softhsm_session.open_session(tokendir, "live")
    T = P.CK_TRUE
    n = 0
    while not os.path.exists(stop):
        n += 1
        s.login(USER)  # rewrites token.object
        base = s.findObjects([(P.CKA_LABEL, "base-aes")])[0]  # private: found logged in
        k = s.generateKey([(P.CKA_CLASS, P.CKO_SECRET_KEY), (P.CKA_KEY_TYPE, P.CKK_AES),
                           (P.CKA_TOKEN, T), (P.CKA_PRIVATE, T), (P.CKA_SENSITIVE, T),
                           (P.CKA_VALUE_LEN, 32), (P.CKA_LABEL, f"live-{n}"),
                           (P.CKA_ID, b"live")], P.Mechanism(P.CKM_AES_KEY_GEN))
        pub, priv = s.generateKeyPair(
            [(P.CKA_TOKEN, T), (P.CKA_PRIVATE, P.CK_FALSE),
             (P.CKA_EC_PARAMS, bytes.fromhex("06082a8648ce3d030107")),
             (P.CKA_LABEL, f"live-ec-{n}"), (P.CKA_ID, f"ec{n}".encode())],
            [(P.CKA_TOKEN, T), (P.CKA_PRIVATE, T), (P.CKA_SENSITIVE, T),
             (P.CKA_LABEL, f"live-ec-{n}"), (P.CKA_ID, f"ec{n}".encode())],
            P.Mechanism(P.CKM_EC_KEY_PAIR_GEN))
        d = s.createObject([(P.CKA_CLASS, P.CKO_DATA), (P.CKA_TOKEN, T),
                            (P.CKA_PRIVATE, T), (P.CKA_LABEL, f"live-data-{n}"),
                            (P.CKA_VALUE, b"x" * (n % 300))])
        s.setAttributeValue(k, [(P.CKA_LABEL, f"live-{n}-renamed")])
        s.setAttributeValue(base, [(P.CKA_LABEL, "base-aes"), (P.CKA_ID, bytes([n % 256]))])
        for o in (k, pub, priv, d):
            s.destroyObject(o)
        s.logout()
        time.sleep(0.003)
    return 0


def make_store(tokendir):
    softhsm_session.init_token(tokendir, os.path.join(os.path.dirname(tokendir), "softhsm2.conf"),
                               "live", SO, USER)
    P, s = softhsm_session.open_session(tokendir, "live")
    T = P.CK_TRUE
    s.login(USER)
    s.generateKey([(P.CKA_CLASS, P.CKO_SECRET_KEY), (P.CKA_KEY_TYPE, P.CKK_AES),
                   (P.CKA_TOKEN, T), (P.CKA_PRIVATE, T), (P.CKA_SENSITIVE, T),
                   (P.CKA_VALUE_LEN, 32), (P.CKA_LABEL, "base-aes"), (P.CKA_ID, b"b")],
                  P.Mechanism(P.CKM_AES_KEY_GEN))
    s.generateKeyPair([(P.CKA_TOKEN, T), (P.CKA_PRIVATE, P.CK_FALSE),
                       (P.CKA_MODULUS_BITS, 2048), (P.CKA_PUBLIC_EXPONENT, (1, 0, 1)),
                       (P.CKA_LABEL, "base-rsa"), (P.CKA_ID, b"r")],
                      [(P.CKA_TOKEN, T), (P.CKA_PRIVATE, T), (P.CKA_SENSITIVE, T),
                       (P.CKA_LABEL, "base-rsa"), (P.CKA_ID, b"r")],
                      P.Mechanism(P.CKM_RSA_PKCS_KEY_PAIR_GEN))
    s.logout()
    s.closeSession()


COMMANDS = {
    "dump": ["dump"],
    "dump-json": ["dump", "--format", "json"],
    "verify": ["verify-integrity", "--format", "json", "--user-pin", "env:TFS_LIVE_PIN"],
}


def run(cmd, tokendir):
    r = subprocess.run([os.environ["TOKENFS"], *COMMANDS[cmd], tokendir], capture_output=True,
                       text=True, env=dict(os.environ, TFS_LIVE_PIN=USER))
    loud = set()
    if cmd == "verify" and r.stdout:
        for t in json.loads(r.stdout)["tokens"]:
            for f in t.get("findings", []) + t.get("store_findings", []):
                if f["severity"] in ("warning", "error"):
                    loud.add((f["code"], f["message"]))
    for line in r.stderr.splitlines():
        loud.add(("stderr", line))
    return r.returncode, loud


def main(argv):
    if argv[:1] == ["--writer"]:
        return writer(argv[1], argv[2])
    skip = softhsm_session.missing()
    if skip is not None:
        return skip
    runs = int(argv[0]) if argv else 200

    work = tempfile.mkdtemp()
    writer_proc = None
    try:
        tokendir = os.path.join(work, "tokens")
        make_store(tokendir)
        quiet = {cmd: run(cmd, tokendir) for cmd in COMMANDS}
        for cmd, (rc, loud) in quiet.items():
            check(f"quiet store: {cmd} exit {rc}, want 0: {sorted(loud)}", rc == 0 and not loud)
        stop = os.path.join(work, "stop")
        writer_proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--writer",
                                        tokendir, stop])
        time.sleep(0.5)
        bad = {cmd: [] for cmd in COMMANDS}
        exit2 = {cmd: 0 for cmd in COMMANDS}
        start = time.monotonic()
        # Six readers at a time: 600 runs of a sanitizer build in about a
        # minute, and readers beside each other as on a real host.
        jobs = [cmd for _ in range(runs) for cmd in COMMANDS]
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            for cmd, (rc, loud) in zip(jobs, pool.map(lambda c: run(c, tokendir), jobs)):
                extra = loud - quiet[cmd][1]
                if rc == 2:
                    exit2[cmd] += 1
                if extra or rc != 0:
                    bad[cmd].append((rc, sorted(extra)[:3]))
        took = time.monotonic() - start
        open(stop, "w").close()
        wrc = writer_proc.wait(timeout=60)
        writer_proc = None
        check(f"the writer ran throughout (exit {wrc})", wrc == 0)
        for cmd in COMMANDS:
            check(f"{runs} runs of {cmd} beside the writer: {exit2[cmd]} exit 2", exit2[cmd] == 0)
            check(f"{runs} runs of {cmd}: {len(bad[cmd])} with a finding or exit the quiet "
                  f"store has not; first: {bad[cmd][:3]}", not bad[cmd])
        print(f"  {3 * runs} reads beside a live writer in {took:.1f} s")
        # A truly torn file stays torn: fresh (settled by two reads) and at rest.
        tok = os.path.join(tokendir, os.listdir(tokendir)[0])
        src = next(os.path.join(tok, n) for n in sorted(os.listdir(tok))
                   if n.endswith(".object") and n != "token.object")
        for age in ("fresh", "at rest"):
            cut = os.path.join(tok, "0badc0de-0000-0000-0000-00000000000%d.object"
                               % (age == "fresh"))
            data = open(src, "rb").read()
            open(cut, "wb").write(data[:len(data) // 2])
            open(cut[:-len(".object")] + ".lock", "w").close()
            if age == "at rest":
                os.utime(cut, (time.time() - 60, time.time() - 60))
            rc, loud = run("verify", tokendir)
            torn = [m for c, m in loud if c == "object.torn" and "0badc0de" not in m]
            check(f"stable cut ({age}): verify exit {rc}, want 1", rc == 1)
            check(f"stable cut ({age}): reported as object.torn: {sorted(loud)}",
                  any(c == "object.torn" for c, _ in loud))
            rc, loud = run("dump", tokendir)
            check(f"stable cut ({age}): dump exit {rc}, want 1, and says so",
                  rc == 1 and any("0badc0de" in m for _, m in loud))
            os.unlink(cut)
            os.unlink(cut[:-len(".object")] + ".lock")
            del torn
    finally:
        if writer_proc is not None:
            writer_proc.kill()
            writer_proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
