# Shared by the CLI tests: counters, checks and the closing line ctest and CI
# read ("N passed, N failed"). Source it after setting -u; TOKENFS and
# TFS_TESTDATA come from ctest's environment.
: "${TOKENFS:?TOKENFS must point at the built tokenfs binary}"
: "${TFS_TESTDATA:?TFS_TESTDATA must point at testdata/}"
passed=0
failed=0

pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
  local what=$1; shift
  if "$@"; then pass; else fail "$what"; fi
}

# need TOOL...: a tool the test cannot do without. Missing in CI fails the
# test; elsewhere it skips (exit 77) so a partial developer machine can still
# run the rest.
need() {
  for t in "$@"; do
    if ! command -v "$t" >/dev/null 2>&1; then
      if [ "${CI:-}" = "true" ]; then
        echo "FAIL: $t is required in CI (scripts/install-deps.sh installs it)" >&2
        exit 1
      fi
      echo "SKIP: $t not installed" >&2
      exit 77
    fi
  done
}

# need_pr627: sets pr627 to the fixture written by a SoftHSM built from pull
# request #627 (TFS_PR627, or ../shared beside the checkout). Missing: fails
# in CI, skips elsewhere, like a missing tool.
need_pr627() {
  pr627=${TFS_PR627:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../../shared/fixtures/pr627-store}
  if [ ! -d "$pr627" ]; then
    [ "${CI:-}" = true ] && { echo "FAIL: no pr627 fixture at $pr627" >&2; exit 1; }
    echo "SKIP: no pr627 fixture at $pr627" >&2
    exit 77
  fi
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}
