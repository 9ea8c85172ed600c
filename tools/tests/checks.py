"""The counters every Python CLI test reports with: each claim is checked
once, a failed one is printed as "FAIL: ..." on stderr, and finish() prints
the "N passed, N failed" line ctest and CI read and gives the exit status
(0 only when something passed and nothing failed).

    from checks import check, finish     # check(ok, what)
    from checks import expect as check   # the same, as check(what, ok)
"""
import sys

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, file=sys.stderr)
    return bool(ok)


def expect(what, ok):
    return check(ok, what)


def finish():
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1
