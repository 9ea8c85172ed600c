#!/usr/bin/env bash
# Review of one PIN per token (issue 12 items 3, 4), on a store made by real
# SoftHSM 2.6.1 whose second token is labelled with the first token's
# serial (softhsm2-util allows it), and a third token with its own PINs:
# - a TOKEN= that names two tokens of one PATH (serial of one, label of the
#   other) is a usage error: before, rekey --new-user-pin SERIAL=... set
#   the new PIN on both tokens; the token's directory names it alone;
# - a writer refuses up front, writing nothing, when a token it would
#   change has no PIN: before, rekey wrote the first token and then failed
#   on the next ones (a partial multi-token write);
# - a writer refuses, writing nothing, when one of its PATHs does not open,
#   or a PIN blob it must re-wrap has no PIN (SO blob, migrate --to);
# - rekey --new-label alone still needs no PIN;
# - backup's seal: a wrong PIN of either role is pin.wrong (exit 1) even
#   when the other PIN opens the token key.
set -u
. "$(dirname "$0")/lib.sh"
need python3 softhsm2-util tar
py=/usr/bin/python3
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
json() { $py -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
snapshot() { (cd "$1" && find . -printf '%p %s %m %T@\n' | sort && find . -type f -exec sha256sum {} + | sort); }
export PA=alpha-user-1 PG=gamma-user-3 SG=so-gamma-user-3 NEW=new-user-9
store="$work/tokens"
mkdir -p "$store" "$work/conf"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$store" \
  >"$work/conf/softhsm2.conf"
init() { SOFTHSM2_CONF=$work/conf/softhsm2.conf softhsm2-util --init-token --free --label "$1" \
  --so-pin "so-$2" --pin "$2" >/dev/null; }
init alpha "$PA"
check "softhsm2-util made alpha" [ $? -eq 0 ]
aser=$("$TOKENFS" dump --format json "$store" | json 'd["tokens"][0]["serial"]')
adir=$(dirname "$(grep -l alpha "$store"/*/token.object)")
# The second token: labelled with alpha's serial, the same user PIN.
init "$aser" "$PA"
check "softhsm2-util made a token labelled $aser" [ $? -eq 0 ]
init gamma "$PG"
check "softhsm2-util made gamma" [ $? -eq 0 ]
before=$(snapshot "$store")
unlocked() { "$TOKENFS" verify-integrity --format json --user-pin env:"$1" "$store" 2>/dev/null |
  json "' '.join(sorted(t['label'] for t in d['tokens'] if t['summary']['unlocked']))"; }

# --- a TOKEN that is one token's serial and another's label
err=$("$TOKENFS" rekey --force --user-pin "$aser=env:PA" --new-user-pin "$aser=env:NEW" "$store" 2>&1 >/dev/null); rc=$?
check "rekey, TOKEN naming two tokens: exit $rc, want 2" [ $rc -eq 2 ]
check "rekey, TOKEN naming two tokens: says so" grep -q "new-user-pin $aser= names two tokens" <<<"$err"
check "rekey, TOKEN naming two tokens: nothing written" [ "$before" = "$(snapshot "$store")" ]
check "rekey, TOKEN naming two tokens: no token has the new PIN" [ -z "$(unlocked NEW)" ]
"$TOKENFS" verify-integrity --user-pin "$aser=env:PA" "$store" >/dev/null 2>&1; rc=$?
check "verify, TOKEN naming two tokens: exit $rc, want 2" [ $rc -eq 2 ]
# By its directory, alpha alone.
"$TOKENFS" rekey --force --dry-run --user-pin "$(basename "$adir")=env:PA" \
  --new-user-pin "$(basename "$adir")=env:NEW" "$store" >/dev/null 2>&1; rc=$?
check "rekey --dry-run, TOKEN by directory: exit $rc, want 0" [ $rc -eq 0 ] &&
  [ "$before" = "$(snapshot "$store")" ]

# --- a writer with no PIN for some token it would change: nothing written
for args in "rekey --user-pin alpha=env:PA --new-user-pin env:NEW" \
            "rekey --user-pin alpha=env:PA --rotate-token-key" \
            "migrate --to gcm --user-pin alpha=env:PA" \
            "migrate --to gcm --user-pin gamma=env:PG --so-pin gamma=env:SG"; do
  # shellcheck disable=SC2086
  err=$("$TOKENFS" $args --force "$store" 2>&1 >/dev/null); rc=$?
  check "$args: exit $rc, want 2" [ $rc -eq 2 ]
  check "$args: names a token without a PIN" grep -q "no --user-pin or --so-pin is for token" <<<"$err"
  check "$args: nothing written" [ "$before" = "$(snapshot "$store")" ]
done
check "no token took the new PIN" [ -z "$(unlocked NEW)" ]
# A blob to be re-wrapped without its PIN: migrate refused that token only
# after the others were written (before: gamma migrated, exit 2).
for args in "migrate --to gcm --user-pin env:PA --user-pin gamma=env:PG --so-pin gamma=env:SG" \
            "rekey --rotate-token-key --user-pin env:PA --user-pin gamma=env:PG --so-pin gamma=env:SG"; do
  # shellcheck disable=SC2086
  err=$("$TOKENFS" $args --force "$store" 2>&1 >/dev/null); rc=$?
  check "$args: exit $rc, want 2" [ $rc -eq 2 ]
  check "$args: names the blob and token" grep -q "SO PIN blob.*(token 'alpha'" <<<"$err"
  check "$args: nothing written" [ "$before" = "$(snapshot "$store")" ]
done
"$TOKENFS" migrate --to gcm --dry-run --keep-other-blob --force --user-pin env:PA \
  --user-pin gamma=env:PG "$store" >/dev/null 2>&1; rc=$?
check "migrate --keep-other-blob --dry-run, user PINs only: exit $rc, want 0" [ $rc -eq 0 ]
# A PATH that does not open refuses a writer before the tokens of the
# PATHs before it are written (before: alpha migrated, then exit 2).
export SA=so-$PA
for args in "migrate --to gcm --user-pin env:PA --so-pin env:SA" "rekey --new-label x"; do
  # shellcheck disable=SC2086
  err=$("$TOKENFS" $args --force --token alpha "$store" "$work/no-such-dir" 2>&1 >/dev/null); rc=$?
  check "$args, second PATH missing: exit $rc, want 2" [ $rc -eq 2 ]
  check "$args, second PATH missing: nothing written" [ "$before" = "$(snapshot "$store")" ] &&
    grep -q "nothing was written to any token" <<<"$err"
done
# A new PIN named for one token leaves the others alone, PIN or not.
"$TOKENFS" rekey --force --user-pin gamma=env:PG --new-user-pin gamma=env:NEW "$store" >/dev/null 2>&1; rc=$?
check "rekey, new PIN for gamma only: exit $rc, want 0" [ $rc -eq 0 ]
check "only gamma has the new PIN ($(unlocked NEW))" [ "$(unlocked NEW)" = gamma ]
# A new label needs no PIN.
"$TOKENFS" rekey --force --new-label delta --token gamma "$store" >/dev/null 2>&1; rc=$?
check "rekey --new-label without a PIN: exit $rc, want 0" [ $rc -eq 0 ]

# --- backup's seal: a wrong PIN is pin.wrong (exit 1) even when the other
# PIN opens, as verify-integrity reports it (before: exit 0, silently).
export BAD=not-the-pin
for pins in "--user-pin env:NEW --so-pin env:BAD" "--user-pin env:BAD --so-pin env:SG"; do
  rm -f "$work/b.tar"
  # shellcheck disable=SC2086
  err=$("$TOKENFS" backup --token delta $pins --out "$work/b.tar" "$store" 2>&1 >/dev/null); rc=$?
  check "backup $pins: exit $rc, want 1, pin.wrong" [ $rc -eq 1 ] && grep -q "pin.wrong" <<<"$err"
  "$TOKENFS" verify-integrity --token delta $pins "$store" >/dev/null 2>&1; rc=$?
  check "verify-integrity $pins: exit $rc, want 1 too" [ $rc -eq 1 ]
done
rm -f "$work/b.tar"
"$TOKENFS" backup --token delta --user-pin env:NEW --so-pin env:SG --out "$work/b.tar" "$store" >/dev/null 2>&1; rc=$?
check "backup, both PINs right: exit $rc, want 0, sealed" [ $rc -eq 0 ] &&
  tar tf "$work/b.tar" | grep -q tokenfs.seal
finish
