#!/usr/bin/env python3
"""Types a line and a TAB into a real interactive bash (readline on a
pseudo-terminal) with the tokenfs completion loaded, and checks the line it
completes to: what COMP_WORDBREAKS and readline really do with "=" and ":",
which calling the function directly cannot show.

  completion_pty.py COMPLETION_SCRIPT TOKENFS TYPED EXPECTED

EXPECTED is the whole line after the TAB ("tokenfs" stands for TOKENFS);
exit 0 when the line ends so.
"""
import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time


def read_quiet(fd, quiet=0.6, limit=30.0, until=None):
    """Reads until nothing has come for `quiet` seconds, and `until` (when
    given) is at the end of the last line: the completion asks tokenfs,
    which takes a while under the sanitizers."""
    out, last, start = b"", time.time(), time.time()
    while time.time() - start < limit:
        if time.time() - last >= quiet and (
                until is None or last_line(out.decode(errors="replace")).endswith(until)):
            break
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
            last = time.time()
    return out.decode(errors="replace")


def last_line(out):
    return out.split("\r")[-1].split("\n")[-1]


def main():
    script, tokenfs, typed, expected = sys.argv[1:5]
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(PS1="$ ", TERM="dumb", INPUTRC="/dev/null",
                          TFS_COMPLETION_TEST_VAR="1")
        os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
    # Wide enough that readline never scrolls the line.
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 1000, 0, 0))
    read_quiet(fd)
    setup = ("bind 'set enable-bracketed-paste off'; "
             "bind 'set show-all-if-ambiguous off'; . '%s'; complete -F _tokenfs '%s'\n"
             % (script, tokenfs))
    os.write(fd, setup.encode())
    read_quiet(fd)
    want = expected.replace("tokenfs", tokenfs, 1)
    os.write(fd, (tokenfs + " " + typed + "\t").encode())
    out = read_quiet(fd, until=want)
    os.write(fd, b"\x15exit\n")
    read_quiet(fd, quiet=0.2, limit=2)
    os.waitpid(pid, 0)
    line = last_line(out)
    if line.endswith(want):
        return 0
    print("typed %r, TAB gave %r, want it to end %r" % (typed, line, want), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
