#!/usr/bin/env python3
"""Types a line and a TAB into a real interactive bash (readline on a
pseudo-terminal) with the tokenfs completion loaded, and checks the line it
completes to: what COMP_WORDBREAKS and readline really do with "=" and ":",
which calling the function directly cannot show.

  completion_pty.py COMPLETION_SCRIPT TOKENFS TYPED EXPECTED

EXPECTED is the whole line after the TAB ("tokenfs" stands for TOKENFS),
as readline holds it; exit 0 when it is exactly that.
"""
import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios
import time


def read_quiet(fd, quiet=0.6, limit=40.0, until=None, after=None):
    """Reads until nothing has come for `quiet` seconds, and `until` (when
    given) ends the last line, after the text `after` (when given): the
    completion asks tokenfs, which takes a while under the sanitizers on a
    loaded machine."""
    out, last, start = b"", time.time(), time.time()
    while time.time() - start < limit:
        text = out.decode(errors="replace")
        if after is not None:
            text = text.split(after, 1)[1] if after in text else None
        if time.time() - last >= quiet and text is not None and (
                until is None or last_line(text).endswith(until)):
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
    # Input typed while bash runs a command goes through the terminal's
    # cooked mode, where TAB is no completion: type only at a fresh prompt,
    # after the setup has said it is done.
    # Ctrl-T prints readline's buffer: the line as completed, whatever the
    # screen shows.
    setup = ("bind 'set enable-bracketed-paste off'; "
             "bind -x '\"\\C-t\": printf \"\\nLINE<%%s>\\n\" \"$READLINE_LINE\"'; "
             "bind 'set show-all-if-ambiguous off'; . '%s'; complete -F _tokenfs '%s'; "
             "echo SETUP''DONE\n" % (script, tokenfs))
    os.write(fd, setup.encode())
    out = read_quiet(fd, until="$ ", after="SETUPDONE")
    if "SETUPDONE" not in out:
        print("bash did not run the setup: %r" % out[-300:], file=sys.stderr)
        return 1
    want = expected.replace("tokenfs", tokenfs, 1)
    os.write(fd, (tokenfs + " " + typed + "\t").encode())
    out = read_quiet(fd, until=want)
    os.write(fd, b"\x14")
    out = read_quiet(fd, after="LINE<", limit=10)
    os.write(fd, b"\x15exit\n")
    read_quiet(fd, quiet=0.2, limit=2)
    os.waitpid(pid, 0)
    m = re.search(r"LINE<(.*)>", out)
    line = m.group(1) if m else "(no line: %r)" % out[-200:]
    if line == want:
        return 0
    print("typed %r, TAB gave %r, want %r" % (typed, line, want), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
