#!/usr/bin/env python3
"""Generate libtokenfs's PKCS#11 name tables (see libtokenfs/names/).

usage: gen-pkcs11-names.py PKCS11_H NAMES_H SOFTHSM_NAMES OUTPUT_C
       gen-pkcs11-names.py --self-test

PKCS11_H is p11-kit's pkcs11.h, NAMES_H is libtokenfs/include/tokenfs/names.h
(for SoftHSM's vendor attributes, TFS_CKA_*), SOFTHSM_NAMES is
libtokenfs/names/softhsm-2.6.1.names.

Values are evaluated here, because the tables must be sorted for a binary
search, and the generated file has the C compiler prove every evaluation with
a _Static_assert against the header's own macro. Any name that cannot be
resolved or evaluated stops the build: a silently shorter table would print
"unknown" where the user expects a name.

Preferred name when several names share a value in one name space: names in
DEPRECATED lose to any other name; among the rest the last one defined in the
header wins (headers add the new spelling after the old one: CKK_ECDSA, then
CKK_EC).

SoftHSM compat tables: softhsm2-dump-file fills a std::map in the order of
its tables.h, so for a value named twice the last assignment wins; the
.names file keeps that order and this script applies the same rule.
"""

import os
import re
import sys
import tempfile

# The name spaces of tokenfs/names.h, in its enum order.
NAME_SPACES = ("CKA", "CKO", "CKK", "CKC", "CKM", "CKH", "CKF")

# Spellings PKCS#11 replaced; they never win over a current alias.
DEPRECATED = frozenset((
    "CKA_ECDSA_PARAMS",
    "CKK_ECDSA",
    "CKK_CAST5",
    "CKM_ECDSA_KEY_PAIR_GEN",
    "CKM_CAST5_KEY_GEN",
    "CKM_CAST5_ECB",
    "CKM_CAST5_CBC",
    "CKM_CAST5_MAC",
    "CKM_CAST5_MAC_GENERAL",
    "CKM_CAST5_CBC_PAD",
    "CKM_PBE_MD5_CAST5_CBC",
    "CKM_PBE_SHA1_CAST5_CBC",
    # 2.40's misspelling, kept by 3.0 beside the fixed name.
    "CKM_DSA_PROBABLISTIC_PARAMETER_GEN",
))

# Macros with a name-space prefix that belong to another set of values:
# PKCS#11 3.2's hedge types (CKA_HEDGE_TYPE) reuse the CKH_ prefix.
FOREIGN = frozenset((
    "CKH_HEDGE_PREFERRED",
    "CKH_HEDGE_REQUIRED",
    "CKH_DETERMINISTIC_REQUIRED",
))

# CKF_ names several flag sets; only CK_TOKEN_INFO.flags is a name space here.
# The bool says whether the header must define the name; CKF_ERROR_STATE is
# PKCS#11 3.0 and older headers lack it.
TOKEN_FLAGS = (
    ("CKF_RNG", True),
    ("CKF_WRITE_PROTECTED", True),
    ("CKF_LOGIN_REQUIRED", True),
    ("CKF_USER_PIN_INITIALIZED", True),
    ("CKF_RESTORE_KEY_NOT_NEEDED", True),
    ("CKF_CLOCK_ON_TOKEN", True),
    ("CKF_PROTECTED_AUTHENTICATION_PATH", True),
    ("CKF_DUAL_CRYPTO_OPERATIONS", True),
    ("CKF_TOKEN_INITIALIZED", True),
    ("CKF_SECONDARY_AUTHENTICATION", True),
    ("CKF_USER_PIN_COUNT_LOW", True),
    ("CKF_USER_PIN_FINAL_TRY", True),
    ("CKF_USER_PIN_LOCKED", True),
    ("CKF_USER_PIN_TO_BE_CHANGED", True),
    ("CKF_SO_PIN_COUNT_LOW", True),
    ("CKF_SO_PIN_FINAL_TRY", True),
    ("CKF_SO_PIN_LOCKED", True),
    ("CKF_SO_PIN_TO_BE_CHANGED", True),
    ("CKF_ERROR_STATE", False),
)

# Integer types a header casts to; every one is at most 64 bits wide.
CAST_WORDS = frozenset(("unsigned", "signed", "long", "int", "short", "char"))

MASK64 = (1 << 64) - 1


class GenError(Exception):
    pass


# --- reading a header -------------------------------------------------------

DEFINE_RE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)(\(?)(.*)$")


def strip_comments(text):
    """Comments go; their newlines stay, so line numbers stay right."""
    text = re.sub(r"/\*.*?\*/", lambda m: " " + "\n" * m.group(0).count("\n"),
                  text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def read_defines(path):
    """Object-like macros of a header: name -> [(expression, line)], one
    entry per distinct definition (conditional branches can differ; only a
    name the tables need must be unambiguous). The order of the dict is the
    order of first definition."""
    with open(path, encoding="utf-8") as f:
        text = strip_comments(f.read())
    defines = {}
    lines = text.split("\n")
    for lineno, line in enumerate(lines, 1):
        m = DEFINE_RE.match(line)
        if not m or m.group(2):
            continue
        name, expr = m.group(1), m.group(3)
        # Continuation lines belong to this define.
        i = lineno - 1
        while expr.endswith("\\") and i + 1 < len(lines):
            i += 1
            expr = expr[:-1] + " " + lines[i]
        expr = " ".join(expr.split())
        seen = defines.setdefault(name, [])
        if all(expr != e for e, _ in seen):
            seen.append((expr, lineno))
    return defines


# --- evaluating a constant expression ---------------------------------------

TOKEN_RE = re.compile(r"\s*(?:(0[xX][0-9a-fA-F]+|\d+)[uUlL]*|([A-Za-z_]\w*)"
                      r"|(<<|>>|[-+*|&^~()]))")


def c_integer(literal):
    if re.fullmatch(r"0[0-7]+", literal):
        return int(literal, 8)
    if re.fullmatch(r"0\d+", literal):
        raise GenError("bad octal literal %s" % literal)
    return int(literal, 0)


def tokenize(expr):
    tokens, pos = [], 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = TOKEN_RE.match(expr, pos)
        if not m or m.end() == pos:
            raise GenError("cannot read %r at %r" % (expr, expr[pos:]))
        pos = m.end()
        if m.group(1):
            tokens.append(("num", c_integer(m.group(1))))
        elif m.group(2):
            tokens.append(("id", m.group(2)))
        else:
            tokens.append(("op", m.group(3)))
    return tokens


class Evaluator:
    """C integer constant expressions of object-like macros, computed as
    unsigned 64-bit (LP64 unsigned long; the compiler re-checks each)."""

    BINARY = (("|",), ("^",), ("&",), ("<<", ">>"), ("+", "-"), ("*",))

    def __init__(self, defines):
        self.defines = defines
        self.cache = {}
        self.active = set()

    def value(self, name):
        if name in self.cache:
            return self.cache[name]
        if name not in self.defines:
            raise GenError("%s is not defined" % name)
        if name in self.active:
            raise GenError("%s is defined in terms of itself" % name)
        if len(self.defines[name]) > 1:
            raise GenError("%s has several definitions (lines %s)" % (
                name, ", ".join(str(n) for _, n in self.defines[name])))
        self.active.add(name)
        try:
            expr = self.defines[name][0][0]
            try:
                v = self.expression(expr)
            except GenError as e:
                raise GenError("%s: %s" % (name, e)) from None
        finally:
            self.active.discard(name)
        self.cache[name] = v
        return v

    def expression(self, expr):
        self.toks, self.pos = tokenize(expr), 0
        if not self.toks:
            raise GenError("empty expression")
        v = self.binary(0)
        if self.pos != len(self.toks):
            raise GenError("trailing tokens in %r" % expr)
        return v

    def peek(self):
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self, op=None):
        t = self.peek()
        if t is None or (op is not None and t != ("op", op)):
            raise GenError("expected %r" % (op or "operand"))
        self.pos += 1
        return t

    def binary(self, level):
        if level == len(self.BINARY):
            return self.unary()
        v = self.binary(level + 1)
        while True:
            t = self.peek()
            if not t or t[0] != "op" or t[1] not in self.BINARY[level]:
                return v
            self.pos += 1
            v = self.apply(t[1], v, self.binary(level + 1))

    @staticmethod
    def apply(op, a, b):
        if op in ("<<", ">>") and b >= 64:
            raise GenError("shift by %d" % b)
        r = {"|": a | b, "^": a ^ b, "&": a & b, "<<": a << b,
             ">>": a >> b, "+": a + b, "-": a - b, "*": a * b}[op]
        return r & MASK64

    def unary(self):
        t = self.take()
        if t == ("op", "~"):
            return ~self.unary() & MASK64
        if t == ("op", "-"):
            return -self.unary() & MASK64
        if t == ("op", "+"):
            return self.unary()
        if t == ("op", "("):
            if self.is_cast():
                return self.unary()
            v = self.binary(0)
            self.take(")")
            return v
        if t[0] == "num":
            return t[1] & MASK64
        if t[0] == "id":
            # A nested expression needs its own token stream.
            saved = (self.toks, self.pos)
            try:
                return self.value(t[1])
            finally:
                self.toks, self.pos = saved
        raise GenError("unexpected %r" % (t[1],))

    def is_cast(self):
        """After "(": skips "type)" when the parentheses hold a type name."""
        end = self.pos
        while end < len(self.toks) and self.toks[end][0] == "id":
            end += 1
        words = [t[1] for t in self.toks[self.pos:end]]
        if not words or end >= len(self.toks) or self.toks[end] != ("op", ")"):
            return False
        typedef = (len(words) == 1 and re.fullmatch(r"CK_[A-Z_]+", words[0])
                   and words[0] not in self.defines)
        if not typedef and not all(w in CAST_WORDS for w in words):
            return False
        self.pos = end + 1
        return True


# --- choosing names ---------------------------------------------------------

def header_names(defines, ns):
    """The header's names in name space ns, in order of definition."""
    if ns == "CKF":
        return [n for n, required in TOKEN_FLAGS if required or n in defines]
    prefix = ns + "_"
    return [n for n in defines
            if n.startswith(prefix) and not n.endswith("_VENDOR_DEFINED")
            and n not in FOREIGN]


def preferred(entries):
    """entries: (name, value) in order of definition -> {value: name}."""
    by_value = {}
    for name, value in entries:
        by_value.setdefault(value, []).append(name)
    chosen = {}
    for value, names in by_value.items():
        current = [n for n in names if n not in DEPRECATED] or names
        chosen[value] = current[-1]
    return chosen


def last_wins(entries):
    """What a std::map filled in order holds: {value: name}."""
    table = {}
    for name, value in entries:
        table[value] = name
    return table


def read_softhsm_names(path):
    """[(ns, name, lineno)] from a .names file: "NS NAME" per line."""
    out, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if (len(words) != 2 or words[0] not in NAME_SPACES
                    or not words[1].startswith(words[0] + "_")):
                raise GenError('%s:%d: expected "NS NS_NAME"' % (path, lineno))
            if words[1] in seen:
                raise GenError("%s:%d: %s listed twice"
                               % (path, lineno, words[1]))
            seen.add(words[1])
            out.append((words[0], words[1], lineno))
    return out


def vendor_names(names_h):
    """SoftHSM's vendor attributes from names.h: CKA_X -> (value, macro)."""
    defines = read_defines(names_h)
    ev = Evaluator(defines)
    out = {}
    for macro in defines:
        if macro.startswith("TFS_CKA_"):
            out[macro[len("TFS_"):]] = (ev.value(macro), macro)
    if "CKA_VENDOR_SOFTHSM" not in out:
        raise GenError("%s: no TFS_CKA_VENDOR_SOFTHSM" % names_h)
    return out


def current_tables(pkcs11_h, ev, vendor):
    """{ns: {value: preferred name}} from the header plus vendor names."""
    tables = {}
    for ns in NAME_SPACES:
        try:
            entries = [(n, ev.value(n)) for n in header_names(ev.defines, ns)]
        except GenError as e:
            raise GenError("%s: %s" % (pkcs11_h, e)) from None
        if ns == "CKA":
            entries += [(n, v) for n, (v, _) in vendor.items()]
        if not entries:
            raise GenError("%s: no %s_ names" % (pkcs11_h, ns))
        tables[ns] = preferred(entries)
    return tables


def softhsm_tables(path, ev, vendor):
    """{ns: {value: name}} as softhsm2-dump-file's maps hold them."""
    by_ns = {}
    for ns, name, lineno in read_softhsm_names(path):
        try:
            value = vendor[name][0] if name in vendor else ev.value(name)
        except GenError as e:
            raise GenError("%s:%d: %s" % (path, lineno, e)) from None
        by_ns.setdefault(ns, []).append((name, value))
    return {ns: last_wins(entries) for ns, entries in by_ns.items()}


# --- writing C --------------------------------------------------------------

def c_static_asserts(tables_list, vendor):
    """The compiler's proof of every value the generator computed."""
    checked = {}
    for tables in tables_list:
        for table in tables.values():
            for value, name in table.items():
                checked[name] = value
    lines = []
    for name in sorted(checked):
        macro = vendor[name][1] if name in vendor else name
        lines.append('_Static_assert((%s) == 0x%xULL, "%s");'
                     % (macro, checked[name], name))
    return lines


def c_table(var, table):
    lines = ["static const struct tfs_name_entry %s[] = {" % var]
    for value in sorted(table):
        lines.append('\t{ UINT64_C(0x%x), "%s" },' % (value, table[value]))
    lines.append("};")
    return lines


def c_tables(prefix, tables):
    """The sorted arrays and the directory indexed by tfs_name_space."""
    lines, directory = [], []
    for ns in NAME_SPACES:
        arr = "%s_%s" % (prefix, ns.lower())
        if ns in tables:
            lines += c_table(arr, tables[ns])
            directory.append("\t[TFS_NS_%s] = { %s, sizeof(%s) / sizeof(%s[0]) },"
                             % (ns, arr, arr, arr))
        else:
            directory.append("\t[TFS_NS_%s] = { NULL, 0 }," % ns)
    lines.append("")
    lines.append("const struct tfs_name_table tfs_names_%s[TFS_NS_COUNT] = {"
                 % prefix)
    lines += directory
    lines.append("};")
    lines.append("")
    return lines


def generate(pkcs11_h, names_h, softhsm_path):
    ev = Evaluator(read_defines(pkcs11_h))
    vendor = vendor_names(names_h)
    current = current_tables(pkcs11_h, ev, vendor)
    softhsm = softhsm_tables(softhsm_path, ev, vendor)
    sources = ", ".join(os.path.basename(p)
                        for p in (pkcs11_h, names_h, softhsm_path))
    out = [
        "/* Generated by scripts/gen-pkcs11-names.py from %s." % sources,
        " * Do not edit. */",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "#include <p11-kit/pkcs11.h>",
        "#include <tokenfs/names.h>",
        '#include "names/names_table.h"',
        "",
        "/* The generator evaluated each value; the compiler checks it. */",
    ]
    out += c_static_asserts((current, softhsm), vendor)
    out.append("")
    out += c_tables("current", current)
    out += c_tables("softhsm", softhsm)
    return "\n".join(out)


def write_atomically(path, text):
    """A failed run must not leave a half-written file that looks current."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".gen-names-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# --- self test --------------------------------------------------------------

def check(ok, what):
    if not ok:
        raise GenError("self test failed: %s" % what)


def self_test():
    d = {"A": [("(1UL << 31)", 1)],
         "B": [("((unsigned long) (A | 0x211UL))", 2)],
         "C": [("(CK_ULONG)-1L", 3)], "D": [("(~0UL ^ (A + A - 1))", 4)],
         "O": [("010", 5)], "T": [("1", 6), ("2", 7)]}
    ev = Evaluator(d)
    check(ev.value("B") == 0x80000211, "B")
    check(ev.value("C") == MASK64, "C")
    check(ev.value("D") == 0xffffffff00000000, "D")
    check(ev.value("O") == 8, "octal")
    for bad in ("sizeof(int)", "A ? 1 : 2", "(1UL << 64)", "E", "X", "(A",
                "A B", "089", "", "T"):
        try:
            Evaluator(dict(d, X=[(bad, 8)])).value("X")
        except GenError:
            continue
        check(False, "accepted %r" % bad)
    check(preferred([("CKK_ECDSA", 3), ("CKK_EC", 3)]) == {3: "CKK_EC"},
          "deprecated first")
    check(preferred([("CKK_EC", 3), ("CKK_ECDSA", 3)]) == {3: "CKK_EC"},
          "deprecated last")
    check(preferred([("X_OLD", 1), ("X_NEW", 1)]) == {1: "X_NEW"},
          "last defined")
    check(last_wins([("CKK_EC", 3), ("CKK_ECDSA", 3)]) == {3: "CKK_ECDSA"},
          "last assignment")


def main(argv):
    try:
        if argv[1:] == ["--self-test"]:
            self_test()
            return 0
        if len(argv) != 5:
            sys.stderr.write(__doc__)
            return 2
        text = generate(argv[1], argv[2], argv[3])
        write_atomically(argv[4], text)
    except (GenError, OSError) as e:
        sys.stderr.write("gen-pkcs11-names: error: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
