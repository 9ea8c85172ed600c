#!/usr/bin/env bash
# tokenfs pin-audit against tokens made by real SoftHSM 2.6.1 (softhsm2-util),
# in the CBC layout and, after `tokenfs migrate --to gcm`, the GCM layout:
#  - a random 4-digit user PIN is found among the all-digit PINs, an SO PIN
#    from the common list in the common list;
#  - a random 6-character PIN is found by a given mask, a random word from a
#    wordlist (file and stdin);
#  - each found PIN is printed with --reveal and appears nowhere without it
#    (text and JSON, stdout and stderr);
#  - a random 12-character PIN is not found within --max-time 2, and the
#    report carries the estimates (digits 4 to 10, the mask);
#  - Ctrl-C stops the search and reports what was covered;
#  - the store is byte-for-byte unchanged; usage errors exit 2.
# The PINs are random on every run, so no expected output is built in.
set -u
. "$(dirname "$0")/lib.sh"
need softhsm2-util python3
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
py=python3

rand_digits() { $py -c "import secrets; print(''.join(secrets.choice('0123456789') for _ in range($1)))"; }
rand_from() { $py -c "import secrets,sys; print(secrets.choice(sys.argv[1:]))" "$@"; }
snapshot() { (cd "$1" && find . -printf '%p %s %m %T@\n' | sort && find . -type f -exec sha256sum {} + | sort); }
# jq-less JSON reads: jget FILE EXPR (EXPR over `d`, the document)
jget() { $py -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

mkdir -p "$work/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$work" >"$work/softhsm2.conf"
export SOFTHSM2_CONF=$work/softhsm2.conf
init() { softhsm2-util --init-token --free --label "$1" --so-pin "$2" --pin "$3" >/dev/null; }

# --- the tokens ---------------------------------------------------------------
here=$(cd "$(dirname "$0")" && pwd)
# a 4-digit PIN outside the common list, so that the digits find it
U4=$(rand_digits 4)
while grep -q "\"$U4\"" "$here/../../libtokenfs/audit/common_pins.c"; do U4=$(rand_digits 4); done
SO_COMMON=$(rand_from 87654321 12345678 00000000 3537363231383830 changeme)
# 6 characters, 2 of them unknown: mask "Q?lx?d?d!"-like, 2,600 candidates
lower=$($py -c "import secrets,string; print(secrets.choice(string.ascii_lowercase))")
UMASK="Q${lower}x$(rand_digits 2)!"
MASK='Q?lx?d?d!'
$py -c "import secrets,string
for _ in range(300): print(''.join(secrets.choice(string.ascii_lowercase) for _ in range(9)))" >"$work/words"
UWORD=$(sed -n "$((RANDOM % 300 + 1))p" "$work/words")
U12=$($py -c "import secrets,string; a=string.ascii_letters+string.digits; print(''.join(secrets.choice(a) for _ in range(12)))")
STRONG_SO=$($py -c "import secrets,string; a=string.ascii_letters+string.digits; print(''.join(secrets.choice(a) for _ in range(16)))")
init digits "$SO_COMMON" "$U4"
init masked "$STRONG_SO" "$UMASK"
init worded "$STRONG_SO" "$UWORD"
init strong "$STRONG_SO" "$U12"
check "softhsm2-util made 4 tokens" [ "$(ls "$work/tokens" | wc -l)" -eq 4 ]

# the same tokens in the GCM layout, by tokenfs itself
cp -a "$work/tokens" "$work/gcm"
for t in "digits:$SO_COMMON:$U4" "masked:$STRONG_SO:$UMASK" "worded:$STRONG_SO:$UWORD"; do
  IFS=: read -r label S U <<<"$t"
  S=$S U=$U "$TOKENFS" migrate --force --to gcm --token "$label" --user-pin env:U --so-pin env:S \
    "$work/gcm" >/dev/null 2>&1
  check "migrate $label to gcm" [ $? -eq 0 ]
done

before_cbc=$(snapshot "$work/tokens")
before_gcm=$(snapshot "$work/gcm")

# run NAME ARGS...: tokenfs pin-audit, stdout in $work/NAME.out, stderr in .err
run() {
  local name=$1; shift
  "$TOKENFS" pin-audit "$@" >"$work/$name.out" 2>"$work/$name.err"
  echo $? >"$work/$name.rc"
}
rc() { cat "$work/$1.rc"; }
# no_leak NAME PIN: the PIN is in neither output of run NAME
no_leak() { ! grep -qF -- "$2" "$work/$1.out" "$work/$1.err"; }
absent() { ! grep -q "$@"; }

# found LAYOUT LABEL ROLE PIN KIND ARGS...: found in space KIND, printed only
# with --reveal, the layout in JSON.
found() {
  local layout=$1 label=$2 role=$3 pin=$4 kind=$5; shift 5
  local store=$work/tokens
  [ "$layout" = gcm ] && store=$work/gcm
  local n=$layout-$label-$role
  run "$n-text" --token "$label" --role "$role" "$@" "$store"
  check "$n: exit 1 when found (got $(rc "$n-text"))" [ "$(rc "$n-text")" -eq 1 ]
  check "$n: reported FOUND" grep -q "FOUND in" "$work/$n-text.out"
  check "$n: no PIN line without --reveal" absent "PIN: " "$work/$n-text.out"
  run "$n-json" --token "$label" --role "$role" --format json "$@" "$store"
  check "$n json: found, space $kind, layout $layout" \
    [ "$(jget "$work/$n-json.out" "(lambda b: (b['found'], d['spaces'][b['space']]['kind'], b['layout'], 'pin' in b))(d['tokens'][0]['blobs'][0])")" = "(True, '$kind', '$layout', False)" ]
  # an all-digit PIN may be part of a count, a rate or a time by chance
  # (00000000 in 100000000.0): for those the checks above (no "PIN:" line,
  # no "pin" member) must do
  if [[ $pin == *[!0-9]* ]]; then
    check "$n: the PIN appears nowhere without --reveal" no_leak "$n-text" "$pin"
    check "$n json: the PIN appears nowhere without --reveal" no_leak "$n-json" "$pin"
  fi
  run "$n-reveal" --token "$label" --role "$role" --reveal "$@" "$store"
  check "$n: --reveal prints the PIN" grep -qxF "    PIN: $pin" "$work/$n-reveal.out"
  [ "$layout" = gcm ] && return # JSON with --reveal: once per token is enough
  run "$n-rjson" --token "$label" --role "$role" --reveal --format json "$@" "$store"
  check "$n json: --reveal gives the PIN" \
    [ "$(jget "$work/$n-rjson.out" "d['tokens'][0]['blobs'][0]['pin']")" = "$pin" ]
}

for layout in cbc gcm; do
  found "$layout" digits user "$U4" digits --threads 2
  found "$layout" digits so "$SO_COMMON" common --digits-max 0
  found "$layout" masked user "$UMASK" mask --digits-max 0 --mask "$MASK"
  found "$layout" worded user "$UWORD" wordlist --digits-max 0 --wordlist "$work/words"
done
# a backup archive of the store is audited as it is, read in memory
tar czf "$work/tokens.tar.gz" -C "$work" tokens
run archive --token digits --role user --digits-max 4 --reveal "$work/tokens.tar.gz"
check "an archive of the store: the 4-digit PIN found" grep -qxF "    PIN: $U4" "$work/archive.out"
# the wordlist from standard input, on one thread
run stdin --token worded --role user --digits-max 0 --wordlist - --reveal --threads 1 "$work/tokens" <"$work/words"
check "wordlist from stdin: found" grep -qxF "    PIN: $UWORD" "$work/stdin.out"
# --min-len/--max-len take prefixes of the mask: those of 4 and 5 positions
# of the 6-position "Q?lx?d?d!" cannot find the 6-character PIN
run prefix --token masked --role user --digits-max 0 --mask "$MASK" --min-len 4 --max-len 5 --format json "$work/tokens"
check "mask prefixes 4 to 5: 2 spaces, not found, all exhausted" \
  [ "$(jget "$work/prefix.out" "([s['mask'] for s in d['spaces'][1:]], d['tokens'][0]['blobs'][0]['found'], d['tokens'][0]['blobs'][0]['stopped'])")" = "(['Q?lx?d', 'Q?lx?d?d'], False, 'exhausted')" ]
check "not found: exit 0" [ "$(rc prefix)" -eq 0 ]

# --- a 12-character random PIN: not found in 2 s, with the estimates --------
start=$(date +%s.%N)
run strong --token strong --role user --max-time 2 --mask '?a?a?a?a?a?a?a?a?a?a?a?a' --format json "$work/tokens"
elapsed=$($py -c "import time; print(time.time() - $start)")
check "strong: exit 0 (not found)" [ "$(rc strong)" -eq 0 ]
check "strong: stopped by --max-time within ~2 s (took $elapsed s)" \
  $py -c "import sys; sys.exit(not ($elapsed < 6))"
check "strong: not found, max-time, some candidates tried, a rate" \
  [ "$(jget "$work/strong.out" "(lambda b: (b['found'], b['stopped'], b['tried'] > 0, b['guesses_per_second'] > 0))(d['tokens'][0]['blobs'][0])")" = "(False, 'max-time', True, True)" ]
# estimates: every digit length 4 to 10 the run did not cover (on a fast or
# idle machine 2 s may cover 4 and 5 digits), and the mask
check "strong: estimates for digits 4 to 10 not covered, and for the mask" $py - "$work/strong.out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
b = d["tokens"][0]["blobs"][0]
covered = {s["length"] for s, t in zip(d["spaces"], b["tried_per_space"])
           if s["kind"] == "digits" and t == s["candidates"]}
est = sorted((e["space"], e["length"]) for e in b["estimates"] if e["space"] in ("digits", "mask"))
want = sorted([("digits", n) for n in range(4, 11) if n not in covered] + [("mask", 12)])
sys.exit(0 if est == want and len(want) >= 6 else 1)
PY
check "strong: the mask estimate is 95^12 candidates / rate" \
  $py -c "import json,sys; d=json.load(open('$work/strong.out')); b=d['tokens'][0]['blobs'][0]; e=[e for e in b['estimates'] if e['space']=='mask'][0]; sys.exit(not (abs(e['candidates']-95**12)/95**12 < 1e-9 and abs(e['seconds']*b['guesses_per_second']/95**12-1) < 1e-6))"
check "strong: the verdict names digit lengths" \
  [ "$(jget "$work/strong.out" "d['tokens'][0]['verdict']['year']['digits_max'] >= d['tokens'][0]['verdict']['hour']['digits_max'] >= 4")" = True ]
run strong-text --token strong --role user --max-time 2 --mask '?a?a?a?a?a?a?a?a?a?a?a?a' "$work/tokens"
check "strong text: not found, stopped by --max-time" grep -q "not found: .*stopped by --max-time" "$work/strong-text.out"
check "strong text: estimate lines" grep -q "all-digit PINs of length 10 .* candidates" "$work/strong-text.out"
check "strong text: mask estimate" grep -q "mask ?a?a?a?a?a?a?a?a?a?a?a?a .*years" "$work/strong-text.out"
check "strong text: verdict" grep -q "verdict:" "$work/strong-text.out"

# --- progress: at a terminal (script(1) gives a pty), rate, done/total, ETA;
# none into a file
if command -v script >/dev/null; then
  script -qefc "'$TOKENFS' pin-audit --token strong --role user --digits-max 0 --max-time 1 --mask '?a?a?a?a?a?a' '$work/tokens'" \
    /dev/null </dev/null >"$work/tty.out" 2>&1
  check "progress at a terminal: done/total, rate, ETA" \
    grep -aqE "pin-audit 'strong' user PIN: [0-9]+/7350918907[0-9]{2} candidates, [0-9]+/s, ETA" "$work/tty.out"
else
  fail "script(1) (bsdutils) is missing: the terminal progress is untested"
fi
check "no progress when stderr is a file" absent -a "ETA" "$work/strong-text.err"

# --- Ctrl-C: stops cleanly and reports what was covered -----------------------
"$TOKENFS" pin-audit --token strong --role user --digits-max 8 --format json "$work/tokens" \
  >"$work/int.out" 2>"$work/int.err" &
pid=$!
sleep 2
kill -INT "$pid"
wait "$pid"
irc=$?
check "SIGINT: exit 1 (got $irc)" [ "$irc" -eq 1 ]
check "SIGINT: interrupted, with the candidates covered" \
  [ "$(jget "$work/int.out" "(d['interrupted'], d['tokens'][0]['blobs'][0]['stopped'], sum(d['tokens'][0]['blobs'][0]['tried_per_space']) == d['tokens'][0]['blobs'][0]['tried'] > 0)")" = "(True, 'interrupted', True)" ]
check "SIGINT: a warning says so" grep -q "interrupted" "$work/int.err"

# --- read-only, usage errors --------------------------------------------------
check "the CBC store is unchanged" [ "$before_cbc" = "$(snapshot "$work/tokens")" ]
check "the GCM store is unchanged" [ "$before_gcm" = "$(snapshot "$work/gcm")" ]
for bad in "--role admin" "--digits-max 3" "--digits-max 20" "--mask ab?q" "--threads 0" \
           "--max-time -1" "--wordlist $work/nonexistent" "--format xml" "--min-len 5 --max-len 4" \
           "--token nosuchtoken"; do
  # shellcheck disable=SC2086
  "$TOKENFS" pin-audit $bad "$work/tokens" >/dev/null 2>"$work/bad.err"
  r=$?
  check "pin-audit $bad: exit 2 (got $r)" [ "$r" -eq 2 ]
  check "pin-audit $bad: one line" [ "$(wc -l <"$work/bad.err")" -le 2 ]
done
"$TOKENFS" pin-audit --mask 'ab?q' "$work/tokens" 2>&1 | grep -q "offset 2"
check "a bad mask names its offset" [ $? -eq 0 ]
"$TOKENFS" pin-audit --help | grep -q -- "--max-time SECS"
check "--help documents the options" [ $? -eq 0 ]
finish
