#!/usr/bin/env python3
"""The man pages are complete, in step with --help, render cleanly and install.

  manpages.py TOKENFS SOURCE_DIR BUILD_DIR

Fails when:
- a command of `tokenfs --help` has no docs/man/tokenfs-CMD.1.scd, no built
  page, or is not named in tokenfs(1);
- an option of `tokenfs CMD --help` (long, with its short form) is not
  documented on the command's page, or the page documents one --help does
  not have; an option is documented where a line of the OPTIONS section
  starts with `*-x*, *--long*` or `*--long*` and a tab-indented
  explanation follows;
- a page that takes PINs lacks a PIN SPEC form, or a page lacks one of the
  sections every page has;
- a built page does not render without warnings (groff -man -ww, man -l);
- `cmake --install` into a temporary prefix does not install every page,
  the bash completion and the docs the pages cite.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "EXAMPLES", "SEE ALSO"]
SPEC_FORMS = ["*env:*", "*file:*", "*fd:*", "*stdin*", "*pass:*"]
# An option line of --help: indented by 2 to 7 spaces, "-x, --long" or
# "--long", the name ended by a blank, "=" or the line's end. Lines indented
# by 8 or more continue a description; prose there may start with an option
# name ("--no-encrypt. RSA, ..."), which defines nothing.
HELP_OPTION = re.compile(r"^ {2,7}(?:(-[A-Za-z]), +)?(--[a-z0-9][a-z0-9-]*)(?=[ =]|$)")
# An option's definition in scdoc: a line of the OPTIONS section starting
# with the bold option, its explanation indented by a tab below it.
PAGE_OPTION = re.compile(r"^(?:\*(-[A-Za-z])\*, )?\*(--[a-z0-9][a-z0-9-]*)\*")

failures = []
passes = 0


def check(ok, what):
    global passes
    if ok:
        passes += 1
    else:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True)


def commands(tokenfs):
    out = run(tokenfs, "--help").stdout
    cmds, on = [], False
    for line in out.splitlines():
        if line.startswith("Commands:"):
            on = True
        elif on and re.match(r"^ +[a-z]", line):
            cmds.append(line.split()[0])
        elif on:
            break
    return cmds


def help_options(tokenfs, cmd):
    """{long: short or None} of `tokenfs CMD --help`."""
    r = run(tokenfs, cmd, "--help")
    opts = {}
    for line in r.stdout.splitlines():
        m = HELP_OPTION.match(line)
        if m:
            opts[m.group(2)] = m.group(1)
    return r.returncode, r.stdout, opts


def page_options(text):
    """{long: short or None} defined in the page's OPTIONS section."""
    m = re.search(r"^# OPTIONS\n(.*?)(?=^# )", text, re.M | re.S)
    lines = (m.group(1) if m else "").splitlines()
    opts = {}
    for line, after in zip(lines, lines[1:]):
        m = PAGE_OPTION.match(line)
        if m and after.startswith("\t"):
            opts[m.group(2)] = m.group(1)
    return opts


def render(page):
    r = run("groff", "-man", "-Tutf8", "-ww", "-z", page)
    check(r.returncode == 0 and r.stderr == "",
          "%s: groff -man -ww warns: %s" % (os.path.basename(page), r.stderr.strip()))
    env = dict(os.environ, MANWIDTH="80")
    env.pop("MAN_KEEP_FORMATTING", None)  # plain text, so NAME can be found
    r = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True, env=env)
    check(r.returncode == 0 and r.stderr == "" and "NAME" in r.stdout,
          "%s: man -l fails or warns: %s" % (os.path.basename(page), r.stderr.strip()))


def main():
    tokenfs, src, build = sys.argv[1:4]
    mandir_src = os.path.join(src, "docs", "man")
    mandir_build = os.path.join(build, "docs", "man")
    for tool in ("groff", "man"):
        if shutil.which(tool) is None:
            print("FAIL: %s is required (scripts/install-deps.sh check installs it)" % tool,
                  file=sys.stderr)
            return 1

    cmds = commands(tokenfs)
    check(len(cmds) >= 5, "tokenfs --help lists the commands (found %r)" % cmds)
    sources = sorted(f for f in os.listdir(mandir_src) if f.endswith(".scd"))
    pages = [f[:-len(".scd")] for f in sources]

    top = open(os.path.join(mandir_src, "tokenfs.1.scd"), encoding="utf-8").read()
    for cmd in cmds:
        name = "tokenfs-%s.1" % cmd
        scd = os.path.join(mandir_src, name + ".scd")
        check(os.path.exists(scd), "command '%s' has no man page docs/man/%s.scd (start from "
              "tokenfs-recover.1.scd: its OPTIONS must list what '%s --help' lists, and "
              "tokenfs.1.scd must name it under COMMANDS and SEE ALSO)" % (cmd, name, cmd))
        check(os.path.exists(os.path.join(mandir_build, name)),
              "command '%s': the build made no %s" % (cmd, name))
        check("*tokenfs-%s*(1)" % cmd in top, "tokenfs(1) does not name tokenfs-%s(1)" % cmd)
        if not os.path.exists(scd):
            continue
        text = open(scd, encoding="utf-8").read()
        rc, help_text, hopts = help_options(tokenfs, cmd)
        check(rc == 0 and hopts, "tokenfs %s --help prints its options (exit %d)" % (cmd, rc))
        popts = page_options(text)
        for opt, short in sorted(hopts.items()):
            check(opt in popts, "%s: option %s of --help is not documented" % (name, opt))
            if opt in popts:
                check(popts[opt] == short, "%s: %s has short form %s in --help, %s on the page"
                      % (name, opt, short, popts[opt]))
        for opt in sorted(set(popts) - set(hopts)):
            check(False, "%s documents %s, which 'tokenfs %s --help' does not have"
                  % (name, opt, cmd))
        if "SPEC" in help_text:
            for form in SPEC_FORMS:
                check(form in text, "%s: the PIN SPEC form %s is not described" % (name, form))
        check("*tokenfs*(1)" in text and "*softhsm2-util*(1)" in text,
              "%s: SEE ALSO names tokenfs(1) and softhsm2-util(1)" % name)

    # tokenfs(1): the global options it documents exist, and `help` is there.
    for opt in page_options(top):
        check(run(tokenfs, opt).returncode == 0, "tokenfs(1) documents %s, which fails" % opt)
    check("*help* [_COMMAND_]" in top, "tokenfs(1) describes 'tokenfs help'")

    for scd, page in zip(sources, pages):
        text = open(os.path.join(mandir_src, scd), encoding="utf-8").read()
        for s in SECTIONS:
            check(re.search(r"^# %s$" % s, text, re.M) is not None, "%s: no %s section" % (scd, s))
        for code in ("*0*", "*1*", "*2*"):
            check(code in text, "%s: EXIT STATUS does not explain %s" % (scd, code))
        built = os.path.join(mandir_build, page)
        check(os.path.exists(built), "%s was not built" % page)
        if os.path.exists(built):
            render(built)

    with tempfile.TemporaryDirectory() as prefix:
        r = run("cmake", "--install", build, "--prefix", prefix)
        check(r.returncode == 0, "cmake --install failed: %s" % r.stderr.strip())
        for page in pages:
            section = page.rsplit(".", 1)[1]
            path = os.path.join(prefix, "share", "man", "man" + section, page)
            check(os.path.isfile(path), "cmake --install did not install %s" % path)
        comp = os.path.join(prefix, "share", "bash-completion", "completions", "tokenfs")
        check(os.path.isfile(comp), "cmake --install did not install the bash completion")
        for doc in re.findall(r"_([a-z]+\.md)_", "".join(
                open(os.path.join(mandir_src, s), encoding="utf-8").read() for s in sources)):
            path = os.path.join(prefix, "share", "doc", "tokenfs", doc)
            check(os.path.isfile(path), "a page cites %s, not installed at %s" % (doc, path))

    print("%d passed, %d failed" % (passes, len(failures)))
    return 1 if failures or passes == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
