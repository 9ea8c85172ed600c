#!/usr/bin/python3
"""The PKCS#11 URIs of `tokenfs dump` against p11tool's (issue 12, item 7).

A store made now by real SoftHSM 2.6.1 (softhsm2-util, then PyKCS11 in a
child process) holds two tokens, one with a label of spaces, ';', '/', '%'
and UTF-8, and keys of every kind SoftHSM makes (RSA and EC key pairs, AES
and generic secrets, private and public, a certificate, data objects) with
awkward labels (every printable ASCII character, UTF-8, a tab, 128 bytes)
and IDs (0x00, 0xff, none).

tokenfs dumps each token first, as JSON with and without the user PIN and
as text. Then p11tool (GnuTLS) opens a copy of the store through
libsofthsm2.so, and:

  * every URI `p11tool --list-all --login` prints for a token equals one of
    tokenfs's object URIs with the PIN, and the other way round (as
    multisets, exact strings);
  * `p11tool --list-tokens` prints exactly tokenfs's token URIs;
  * without a PIN, tokenfs's URIs of the public objects equal what
    `p11tool --list-all` (no login) prints, a private object with a label
    or ID has "uri": null and a "uri_unknown" reason naming --user-pin,
    and one with neither has the same URI as with the PIN;
  * the text output's uri lines are the JSON's.

PINs reach tokenfs as env:VAR and p11tool through GNUTLS_PIN, never on a
command line. Needs /usr/bin/python3 with python3-pykcs11 and
python3-cryptography, softhsm2 and gnutls-bin (p11tool). Missing tools
skip (exit 77) outside CI and fail in it. Prints "N passed, N failed".
"""
import collections
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402

MODULE = os.environ.get("SOFTHSM2_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
TOKENS = {  # label -> (SO PIN, user PIN)
    "uri test; ä/100% x": ("uri-so-1", "uri-user-1"),
    "second": ("second-so-1", "second-user-1"),
}
PIN_ENV = "TFS_URI_TEST_PIN"
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))

def skip_or_fail(why):
    if os.environ.get("CI") == "true":
        print(f"FAIL: {why} (required in CI; scripts/install-deps.sh check installs it)")
        sys.exit(1)
    print(f"SKIP: {why}")
    sys.exit(77)


def write_conf(path, tokendir):
    with open(path, "w") as f:
        f.write(f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n")


def self_signed_cert():
    """DER of a self-signed certificate (python3-cryptography), so that the
    store holds a certificate object as pkcs11-tool would write one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "uri test certificate")])
    now = datetime.datetime(2026, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(0x1207)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER), name.public_bytes()


def child_create(label):
    """Runs in its own process (its own C_Initialize): the objects of one token."""
    import PyKCS11
    from PyKCS11 import (CKA_CLASS, CKA_TOKEN, CKA_PRIVATE, CKA_LABEL, CKA_ID, CKA_VALUE,
                         CKA_KEY_TYPE, CKA_VALUE_LEN, CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT,
                         CKA_EC_PARAMS, CKA_SIGN, CKA_VERIFY, CKA_SUBJECT, CKA_CERTIFICATE_TYPE,
                         CKO_SECRET_KEY, CKO_DATA, CKO_CERTIFICATE, CKK_AES, CKK_GENERIC_SECRET,
                         CKC_X_509, CKM_AES_KEY_GEN, CKM_GENERIC_SECRET_KEY_GEN,
                         CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_EC_KEY_PAIR_GEN, Mechanism)
    lib = PyKCS11.PyKCS11Lib()
    lib.load(MODULE)
    slot = next(s for s in lib.getSlotList(tokenPresent=True)
                if lib.getTokenInfo(s).label.rstrip(" ") == label)
    s = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
    s.login(TOKENS[label][1])

    def named(t, lbl, id_):
        if lbl is not None:
            t.append((CKA_LABEL, lbl))
        if id_ is not None:
            t.append((CKA_ID, tuple(id_)))
        return t

    def secret(lbl, id_, private=True, key_type=CKK_AES):
        mech = CKM_AES_KEY_GEN if key_type == CKK_AES else CKM_GENERIC_SECRET_KEY_GEN
        t = [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, key_type), (CKA_VALUE_LEN, 32),
             (CKA_TOKEN, True), (CKA_PRIVATE, private)]
        s.generateKey(named(t, lbl, id_), Mechanism(mech))

    def data(lbl, private):
        s.createObject([(CKA_CLASS, CKO_DATA), (CKA_TOKEN, True), (CKA_PRIVATE, private),
                        (CKA_LABEL, lbl), (CKA_VALUE, b"uri test data")])

    if label == "second":
        data("second token data", False)
        secret("b key", b"\x99", private=True)
        s.logout()
        return
    pub = [(CKA_TOKEN, True), (CKA_PRIVATE, False), (CKA_VERIFY, True),
           (CKA_MODULUS_BITS, 2048), (CKA_PUBLIC_EXPONENT, (1, 0, 1))]
    prv = [(CKA_TOKEN, True), (CKA_PRIVATE, True), (CKA_SIGN, True)]
    s.generateKeyPair(named(pub, "rsa;key 100%", b"\xff\x10"), named(prv, "rsa;key 100%", b"\xff\x10"),
                      Mechanism(CKM_RSA_PKCS_KEY_PAIR_GEN))
    p256 = (0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07)
    pub = [(CKA_TOKEN, True), (CKA_PRIVATE, False), (CKA_VERIFY, True), (CKA_EC_PARAMS, p256)]
    prv = [(CKA_TOKEN, True), (CKA_PRIVATE, True), (CKA_SIGN, True)]
    s.generateKeyPair(named(pub, "clé élliptique ü € pub", b"\x00\x01"),
                      named(prv, "clé élliptique ü € priv", b"\x00\x01"),
                      Mechanism(CKM_EC_KEY_PAIR_GEN))
    secret("all " + PRINTABLE, b"\x01\x02\xab")
    secret("pub secret/x?y=1&z#frag", b"AB", private=False, key_type=CKK_GENERIC_SECRET)
    secret(None, None)                      # SoftHSM gives it an empty label and ID
    secret("\u00e9" * 64, b"\x00")          # 128 bytes of UTF-8: p11tool's limit
    der, subject = self_signed_cert()
    s.createObject(named([(CKA_CLASS, CKO_CERTIFICATE), (CKA_CERTIFICATE_TYPE, CKC_X_509),
                          (CKA_TOKEN, True), (CKA_PRIVATE, False), (CKA_SUBJECT, tuple(subject)),
                          (CKA_VALUE, tuple(der))], "cert [x] @host:443", b"\xff\x10"))
    data("data\t~tab", False)
    data("priv data/ü", True)
    s.logout()


def tokenfs(*args, pin=None):
    env = dict(os.environ)
    if pin is not None:
        env[PIN_ENV] = pin
        args = ("--user-pin", f"env:{PIN_ENV}") + args
    r = subprocess.run([os.environ["TOKENFS"], "dump", *args], capture_output=True, text=True, env=env)
    return r


def p11tool(conf, *args, pin=None):
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    env.pop("GNUTLS_PIN", None)
    if pin is not None:
        env["GNUTLS_PIN"] = pin
    r = subprocess.run(["p11tool", "--provider", MODULE, *args], capture_output=True, text=True, env=env)
    check(r.returncode == 0, f"p11tool {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return [line.split("URL: ", 1)[1] for line in r.stdout.splitlines() if line.strip().startswith("URL: ")]


def same(got, want, what):
    g, w = collections.Counter(got), collections.Counter(want)
    ok = g == w and len(w) > 0
    if not ok:
        for u in sorted(w - g):
            print(f"  only p11tool/expected: {u}", file=sys.stderr)
        for u in sorted(g - w):
            print(f"  only tokenfs: {u}", file=sys.stderr)
    check(ok, what)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--create":
        child_create(sys.argv[2])
        return 0
    for tool in ("softhsm2-util", "p11tool"):
        if shutil.which(tool) is None:
            skip_or_fail(f"{tool} not installed")
    try:
        import PyKCS11  # noqa: F401
        import cryptography  # noqa: F401
    except ImportError as e:
        skip_or_fail(f"python module missing: {e}")
    if not os.path.exists(MODULE):
        skip_or_fail(f"no SoftHSM module at {MODULE}")

    tmp = tempfile.mkdtemp(prefix="tfs-uri-")
    try:
        store = os.path.join(tmp, "store")
        os.mkdir(store)
        conf = os.path.join(tmp, "softhsm2.conf")
        write_conf(conf, store)
        env = dict(os.environ, SOFTHSM2_CONF=conf)
        for label, (so, user) in TOKENS.items():
            subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label,
                            "--so-pin", so, "--pin", user], env=env, check=True, capture_output=True)
            subprocess.run([sys.executable, __file__, "--create", label], env=env, check=True)

        # tokenfs first, on the store as SoftHSM left it.
        dumps = {}
        for label, (_, user) in TOKENS.items():
            with_pin = tokenfs("--format", "json", "-t", label, store, pin=user)
            check(with_pin.returncode == 0, f"dump --user-pin of '{label}': exit {with_pin.returncode}: "
                                            f"{with_pin.stderr.strip()}")
            no_pin = tokenfs("--format", "json", "-t", label, store)
            check(no_pin.returncode == 0, f"dump of '{label}' without PIN: exit {no_pin.returncode}")
            text = tokenfs("-t", label, store, pin=user)
            check(user not in with_pin.stdout + with_pin.stderr + text.stdout + text.stderr,
                  "the PIN appears in tokenfs's output")
            dumps[label] = (json.loads(with_pin.stdout)["tokens"][0],
                            json.loads(no_pin.stdout)["tokens"][0], text.stdout)

        # Then p11tool, on a copy: a login rewrites token.object.
        copy = os.path.join(tmp, "copy")
        shutil.copytree(store, copy, symlinks=True)
        conf2 = os.path.join(tmp, "copy.conf")
        write_conf(conf2, copy)
        token_urls = p11tool(conf2, "--list-tokens")
        same([d[0].get("uri") for d in dumps.values()], token_urls, "token URIs equal p11tool --list-tokens")

        for label, (_, user) in TOKENS.items():
            tok, tok_nopin, text = dumps[label]
            objs = tok["objects"]
            check(all(o.get("uri") for o in objs), f"'{label}': every object has a URI with the PIN")
            check(tok_nopin.get("uri") == tok.get("uri"), f"'{label}': the token URI needs no PIN")
            # Which token p11tool lists: by tokenfs's URI, or by label if it has none.
            url = tok.get("uri") or "pkcs11:token=" + urllib.parse.quote(label, safe="")
            listed = p11tool(conf2, "--list-all", "--login", url, pin=user)
            print("\n".join(listed)) if os.environ.get("TFS_URI_DEBUG") else None
            same([o.get("uri") for o in objs], listed,
                 f"'{label}': object URIs equal p11tool --list-all --login ({len(listed)} objects)")
            public = p11tool(conf2, "--list-all", url)
            same([o.get("uri") for o in tok_nopin["objects"] if not o["private"]], public,
                 f"'{label}': without a PIN, public objects' URIs equal p11tool --list-all")
            by_uuid = {o["uuid"]: o for o in objs}
            for o in tok_nopin["objects"]:
                if not o["private"]:
                    continue
                named = any(a["name"] in ("CKA_LABEL", "CKA_ID") and a["value"]
                            for a in o["attributes"])
                if named:
                    check(o.get("uri") is None and "--user-pin" in o.get("uri_unknown", ""),
                          f"'{label}': private object {o['uuid']} without PIN: no URI and why")
                else:
                    check(o.get("uri") == by_uuid[o["uuid"]].get("uri"),
                          f"'{label}': private object {o['uuid']} without label or ID: same URI")
            lines = [line.split("uri:", 1)[1].strip() for line in text.splitlines()
                     if line.strip().startswith("uri:")]
            same(lines, [tok.get("uri")] + [o.get("uri") for o in objs], f"'{label}': text uri lines = JSON")
        # docs/json.md's example, as written there, on the copy.
        label = "uri test; ä/100% x"
        doc = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                                "json.md")).read()
        m = re.search(r"(uri=\$\(tokenfs dump .*?\n.*?\n.*?\"\$uri\")", doc, re.S)
        check(m is not None, "docs/json.md has the p11tool example")
        if m:
            cmd = m.group(1).replace("tokenfs", os.environ["TOKENFS"], 1).replace("/var/lib/softhsm/tokens", copy)
            r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True,
                               env=dict(os.environ, SOFTHSM2_CONF=conf2, PIN=TOKENS[label][1]))
            first = next((o["uri"] for o in dumps[label][0]["objects"]
                          if o["summary"].startswith("private key")), "")
            check(r.returncode == 0 and f"URL: {first}\n" in r.stdout and "Private key" in r.stdout,
                  f"the docs example finds the key through p11tool: {r.stdout} {r.stderr}")
        # The awkward labels really are in the URIs, encoded as RFC 7512 says.
        every = [o.get("uri") or "" for o in dumps["uri test; ä/100% x"][0]["objects"]]
        check(any(";object=rsa%3Bkey%20100%25;" in u for u in every), "';', ' ', '%' encoded")
        check((dumps["uri test; ä/100% x"][0].get("uri") or "").endswith(";token=uri%20test%3B%20%C3%A4%2F100%25%20x"),
              "the token label encoded")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
