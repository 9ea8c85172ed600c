#!/usr/bin/python3
"""PIN operations done by real SoftHSM 2.6.1 through PyKCS11, so tests can
compare what tokenfs rekey writes with what SoftHSM itself writes.

usage: p11ops.py TOKENDIR LABEL OP ARGS...   (PINs as env:VAR or literal)
  setpin   OLD NEW      C_SetPIN as the user
  setsopin OLD NEW      C_SetPIN as the SO
  initpin  SOPIN NEW    C_InitPIN: the SO sets the user PIN
  badlogin user|so      one failed login (sets the PIN-count-low flag)
  login    user|so PIN  exit 0 when the login succeeds, 3 when refused
Exit 77 outside CI when PyKCS11 or SoftHSM is missing.
"""
import os
import sys

import softhsm_session


def pin(arg):
    return os.environ[arg[4:]] if arg.startswith("env:") else arg


def main():
    skip = softhsm_session.missing()
    if skip is not None:
        return skip
    tokendir, label, op, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    PyKCS11, s = softhsm_session.open_session(tokendir, label)
    kind = {"user": PyKCS11.CKU_USER, "so": PyKCS11.CKU_SO}
    if op == "setpin":
        s.login(pin(args[0]))
        s.setPin(pin(args[0]), pin(args[1]))
    elif op == "setsopin":
        s.login(pin(args[0]), user_type=PyKCS11.CKU_SO)
        s.setPin(pin(args[0]), pin(args[1]))
    elif op == "initpin":
        s.login(pin(args[0]), user_type=PyKCS11.CKU_SO)
        s.initPin(pin(args[1]))
    elif op == "badlogin":
        try:
            s.login("definitely-not-the-pin", user_type=kind[args[0]])
            return 1
        except PyKCS11.PyKCS11Error:
            pass
    elif op == "login":
        try:
            s.login(pin(args[1]), user_type=kind[args[0]])
        except PyKCS11.PyKCS11Error:
            return 3
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
