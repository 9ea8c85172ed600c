"""Real SoftHSM 2.6.1 through PyKCS11, for the tests' small PKCS#11 scripts
(p11ops.py, pr627_softhsm.py): one place that knows the module's path, how
a missing SoftHSM skips outside CI and fails in it, and how to open one
token of a store in a private softhsm2.conf.
"""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

MODULE = os.environ.get("SOFTHSM2_MODULE", "/usr/lib/softhsm/libsofthsm2.so")


def missing(*tools):
    """None when PyKCS11, the module, softhsm2-util and the other commands named
    are there; else, after saying what is missing on stderr, the exit code a
    test returns: 77 (skip) outside CI, 1 in CI."""
    gone = []
    try:
        import PyKCS11  # noqa: F401
    except ImportError:
        gone.append("PyKCS11")
    if not os.path.exists(MODULE):
        gone.append(MODULE)
    gone += [t for t in ("softhsm2-util", *tools) if shutil.which(t) is None]
    if not gone:
        return None
    ci = os.environ.get("CI") == "true"
    print(f"{'FAIL' if ci else 'SKIP'}: missing {', '.join(gone)}", file=sys.stderr)
    return 1 if ci else 77


def tokenfs(env):
    """A function running the tokenfs under test ($TOKENFS) with env and
    arguments, its output captured as text."""
    path = os.environ["TOKENFS"]

    def run(*args):
        return subprocess.run([path, *args], env=env, capture_output=True, text=True)
    return run


def init_token(tokendir, conf, label, so_pin, user_pin):
    """A fresh token `label` made by softhsm2-util in tokendir (created
    0700 when missing), with conf written as its softhsm2.conf."""
    os.makedirs(tokendir, 0o700, exist_ok=True)
    with open(conf, "w") as f:
        f.write(f"directories.tokendir = {os.path.abspath(tokendir)}\n"
                "objectstore.backend = file\nlog.level = ERROR\n")
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label,
                    "--so-pin", so_pin, "--pin", user_pin], check=True,
                   env=dict(os.environ, SOFTHSM2_CONF=conf), stdout=subprocess.DEVNULL)


def open_session(tokendir, label):
    """A read-write session on the token labelled `label` in tokendir (its
    own softhsm2.conf, removed at exit). Returns (PyKCS11, session)."""
    import PyKCS11
    conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
    conf.write(f"directories.tokendir = {os.path.abspath(tokendir)}\n"
               "objectstore.backend = file\nlog.level = ERROR\n")
    conf.close()
    atexit.register(os.unlink, conf.name)
    os.environ["SOFTHSM2_CONF"] = conf.name
    lib = PyKCS11.PyKCS11Lib()
    lib.load(MODULE)
    slot = next(s for s in lib.getSlotList(tokenPresent=True)
                if lib.getTokenInfo(s).label.strip() == label)
    return PyKCS11, lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
