#!/usr/bin/env bash
# The bash completion (tools/completion/tokenfs.bash), called as bash calls
# it: COMP_WORDS split at "=" and ":" as COMP_WORDBREAKS splits them,
# COMP_CWORD the word under the cursor; a reply replaces only the text after
# the last "=" or ":" (readline's word), so "--format=" completes to "json". Expected commands and options come
# from the binary's --help, so the test fails when the completion misses
# one; values are checked against what each command accepts.
set -u
. "$(dirname "$0")/lib.sh"
need bash python3
: "${TFS_COMPLETION:?TFS_COMPLETION must point at tools/completion/tokenfs.bash}"
# shellcheck source=/dev/null
. "$TFS_COMPLETION"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# complete WORD...: COMPREPLY, sorted, one per line, for the last WORD.
complete_words() {
  COMP_WORDS=("$TOKENFS" "$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE="${COMP_WORDS[*]}"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _tokenfs
  printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort
}

# expect DESCRIPTION "EXPECTED WORDS" WORD...: the replies are exactly these.
expect() {
  local what=$1 want got
  want=$(printf '%s\n' $2 | sed '/^$/d' | sort)
  shift 2
  got=$(complete_words "$@")
  if [ "$got" = "$want" ]; then
    pass
  else
    fail "$what: got [$(echo $got)], want [$(echo $want)]"
  fi
}

# Commands, from tokenfs --help, and `help`.
cmds=$("$TOKENFS" --help | awk '/^Commands:/ {on=1; next} on && /^ +[a-z]/ {print $1; next} on {exit}')
check "tokenfs --help lists commands" test "$(echo "$cmds" | wc -l)" -ge 5
expect "every command" "$cmds help" ''
expect "a command by prefix" "verify-integrity" ve
expect "tokenfs help COMMAND" "$cmds" help ''
expect "global options" "--help --version" --

# Every command completes exactly the long options of its --help.
for c in $cmds; do
  # An option line is indented by 2 to 7 spaces (deeper lines continue a
  # description, and prose there may start with an option's name).
  opts=$("$TOKENFS" "$c" --help | sed -nE 's/^ {2,7}(-[A-Za-z], +)?(--[a-z0-9][a-z0-9-]*)([ =].*)?$/\2/p')
  check "$c --help has options" test -n "$opts"
  expect "$c: every option of --help" "$opts" "$c" --
done
expect "dump --fo" "--format" dump --fo
expect "verify-integrity --se" "--seal --seal-file" verify-integrity --se
expect "--to is migrate's, not dump's" "--token" dump --to
expect "migrate --to" "--to --token" migrate --to

# Values, asked of the command itself.
expect "dump --format" "text json softhsm" dump --format ''
expect "dump -f" "text json softhsm" dump -f ''
expect "verify-integrity --format" "text json" verify-integrity --format ''
expect "dump --format=js" "json" dump --format = js
expect "dump --format=" "text json softhsm" dump --format =
expect "migrate --to" "gcm cbc" migrate --to ''
expect "rekey --to c" "cbc" rekey --to c
expect "verify-integrity --fail-on" "error warning info" verify-integrity --fail-on ''
expect "--token takes any text" "" dump --token ''
expect "export --secret-format" "raw hex jwk" export --secret-format ''
expect "pin-audit --role" "user so both" pin-audit --role ''
expect "diff --format" "text json" diff --format ''
# Numbers in a description are quantities, not choices: "default 1G" must not
# offer a one-byte cap, nor "4 to 19" the bounds of --digits-max.
expect "dump --max-unpacked" "" dump --max-unpacked ''
expect "pin-audit --digits-max" "" pin-audit --digits-max ''
expect "backup --lock-timeout" "" backup --lock-timeout ''
# accepts CMD OPT VALUE: getopt takes OPT before --help, which exits 0.
accepts() { "$TOKENFS" "$@" --help >/dev/null 2>&1; }
# Each value offered is accepted, and a word that is not one is refused.
for v in $(complete_words dump --format ''); do
  check "dump accepts --format $v" accepts dump --format "$v"
done
check "dump refuses --format yaml" eval '! accepts dump --format yaml'

# PIN SPEC forms after every PIN option.
expect "--user-pin e" "env:" dump --user-pin e
expect "--so-pin ''" "env: file: fd: stdin prompt pass:" verify-integrity --so-pin ''
expect "--new-so-pin f" "file: fd:" rekey --new-so-pin f
expect "--new-user-pin s" "stdin" rekey --new-user-pin s
expect "export --passout ''" "env: file: fd: stdin prompt pass:" export --passout ''
expect "--user-pin=e" "env:" dump --user-pin = e
expect "--user-pin TOKEN=e" "env:" dump --user-pin alpha = e
export TFS_COMPLETION_TEST_VAR=1
expect "--user-pin env:TFS_COMPLETION_T" "TFS_COMPLETION_TEST_VAR" dump --user-pin env : TFS_COMPLETION_T
expect "--so-pin TOKEN=env:TFS_COMPLETION_T" "TFS_COMPLETION_TEST_VAR" dump --so-pin alpha = env : TFS_COMPLETION_T
expect "--user-pin TOKEN=p" "prompt pass:" verify-integrity --user-pin alpha = p
mkdir -p "$work/pins" && : >"$work/pins/user.pin"
expect "--user-pin file:DIR/" "$work/pins/user.pin" dump --user-pin file : "$work/pins/"
# A bare --user-pin is followed by a PATH, not only by a SPEC.
expect "--user-pin PATH" "$work/pins/" dump --user-pin "$work/pi"
expect "--user-pin --re" "--reveal" dump --user-pin --re

# Files and directories for PATH and --seal-file.
mkdir -p "$work/store/token-a" && : >"$work/store/token-a/token.object"
expect "PATH: a directory" "$work/store/token-a/" dump "$work/store/tok"
expect "PATH: a file" "$work/store/token-a/token.object" dump --user-pin env:X "$work/store/token-a/t"
expect "--seal-file PATH" "$work/store/token-a/token.object" verify-integrity --seal-file "$work/store/token-a/to"
expect "backup -o FILE" "$work/store/token-a/token.object" backup -o "$work/store/token-a/to"
expect "export --out DIR" "$work/store/token-a/" export --out "$work/store/tok"
expect "pin-audit --wordlist FILE" "$work/pins/user.pin" pin-audit --wordlist "$work/pins/u"
expect "diff A B" "$work/store/token-a/" diff "$work/store/token-a" "$work/store/tok"

# The same in a real interactive bash, typed with a TAB: readline's own
# word splitting at "=" and ":".
pty_check() {
  check "bash, TAB after '$1'" python3 "$(dirname "$0")/completion_pty.py" "$TFS_COMPLETION" "$TOKENFS" "$1" "$2"
}
pty_check "ve" "tokenfs verify-integrity "
pty_check "dump --fo" "tokenfs dump --format "
pty_check "dump --format=js" "tokenfs dump --format=json "
pty_check "migrate --to g" "tokenfs migrate --to gcm "
pty_check "dump --user-pin e" "tokenfs dump --user-pin env:"
pty_check "dump --user-pin=e" "tokenfs dump --user-pin=env:"
pty_check "dump --user-pin env:TFS_COMPLETION_T" "tokenfs dump --user-pin env:TFS_COMPLETION_TEST_VAR "
pty_check "rekey --new-so-pin file:$work/pins/u" "tokenfs rekey --new-so-pin file:$work/pins/user.pin "

finish
