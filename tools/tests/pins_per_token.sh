#!/usr/bin/env bash
# One PIN per token (issue 12, items 3 and 4), on a store made by real
# SoftHSM 2.6.1: two tokens, alpha and beta, with different user and SO
# PINs (softhsm2-util), each holding a private AES key and a private data
# object (pkcs11-tool), so every label and value is stored encrypted.
#
# - readers (verify-integrity, dump, diff, export, backup's seal): with
#   --user-pin/--so-pin TOKEN=SPEC every token opens with its own PIN; one
#   PIN for both is wrong for beta, which is then a pin.wrong finding of beta
#   (exit 1) while alpha is still read and decrypted;
# - TOKEN by label, serial and directory; an entry naming the token wins
#   over one without TOKEN; a TOKEN naming no token is a usage error (exit 2)
#   before any PIN is read; one entry per token and role;
# - writers (migrate, rekey): a wrong PIN for one token refuses the run and
#   writes nothing to either token; per-token PINs migrate both, and real
#   SoftHSM then logs in to each token with its own user and SO PIN; rekey
#   sets a new PIN per token (--new-user-pin TOKEN=SPEC);
# - a prompt names its token (a real pty);
# - item 4: a PIN given with one .object file decrypts it through the
#   token.object beside it; a lone copy says exactly why not;
# - no PIN in any output.
set -u
. "$(dirname "$0")/lib.sh"
need python3 softhsm2-util pkcs11-tool tar
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$work/all-output.txt"
# Every tokenfs run goes through here, so the PIN check below sees all output.
tfs() { "$TOKENFS" "$@" 2> >(tee -a "$log" >&2) | tee -a "$log"; return "${PIPESTATUS[0]}"; }
json() { $py -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
not() { ! "$@"; }
snapshot() { (cd "$1" && find . -printf '%p %s %m %T@\n' | sort && find . -type f -exec sha256sum {} + | sort); }

export PA=alpha-user-1 PB=beta-user-2 SA=alpha-so-1 SB=beta-so-2

# --- the store, by SoftHSM's own tools
store="$work/tokens"
mkdir -p "$store" "$work/conf"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$store" \
  >"$work/conf/softhsm2.conf"
module=/usr/lib/softhsm/libsofthsm2.so
for t in alpha:$SA:$PA beta:$SB:$PB; do
  IFS=: read -r label so user <<<"$t"
  SOFTHSM2_CONF=$work/conf/softhsm2.conf softhsm2-util --init-token --free --label "$label" \
    --so-pin "$so" --pin "$user" >/dev/null
  check "softhsm2-util made $label" [ $? -eq 0 ]
  SOFTHSM2_CONF=$work/conf/softhsm2.conf pkcs11-tool --module "$module" --token-label "$label" \
    --login --pin "$user" --keygen --key-type AES:32 --label "key-$label" --id 01 --private \
    --sensitive >/dev/null 2>&1
  check "pkcs11-tool made the key of $label" [ $? -eq 0 ]
  echo "the data of $label" >"$work/data.txt"
  SOFTHSM2_CONF=$work/conf/softhsm2.conf pkcs11-tool --module "$module" --token-label "$label" \
    --login --pin "$user" --write-object "$work/data.txt" --type data --label "data-$label" \
    --private >/dev/null 2>&1
  check "pkcs11-tool made the data object of $label" [ $? -eq 0 ]
done
tokdir() { grep -l "$1" "$store"/*/token.object | head -n1 | xargs dirname; }
adir=$(tokdir alpha) bdir=$(tokdir beta)
aser=$(tfs dump --format json --token alpha "$store" | json 'd["tokens"][0]["serial"]')
bser=$(tfs dump --format json --token beta "$store" | json 'd["tokens"][0]["serial"]')
check "two token directories, two serials" [ -n "$adir" ] && [ -n "$bdir" ] && [ "$adir" != "$bdir" ] &&
  [ -n "$aser" ] && [ -n "$bser" ]
before=$(snapshot "$store")

# unlocked LABEL: what verify-integrity --format json says of that token
vjson() { tfs verify-integrity --format json "$@"; }
unlocked() { json "[t['summary']['unlocked'] for t in d['tokens'] if t.get('label') == '$1'][0]"; }
codes() { json "' '.join(f['code'] for t in d['tokens'] if t.get('label') == '$1' for f in t['findings'])"; }

# --- verify-integrity: one PIN for both drops nothing: beta's is a finding
out=$(vjson --user-pin env:PA "$store" 2>/dev/null); rc=$?
check "verify, one PIN for both: exit $rc, want 1" [ $rc -eq 1 ]
check "verify, one PIN for both: both tokens reported" [ "$(json 'len(d["tokens"])' <<<"$out")" = 2 ]
check "verify, one PIN for both: alpha unlocked" [ "$(unlocked alpha <<<"$out")" = True ]
check "verify, one PIN for both: beta not, pin.wrong ($(codes beta <<<"$out"))" \
  [ "$(unlocked beta <<<"$out")" = False ] && [ "$(codes beta <<<"$out")" = pin.wrong ]
why=$(json "[t['summary']['not_checked_reason'] for t in d['tokens'] if t.get('label') == 'beta'][0]" <<<"$out")
check "verify, one PIN for both: beta's checks not run because of the wrong PIN ($why)" [ "$why" = wrong-pin ]
for sel in "alpha beta" "$aser $bser" "$(basename "$adir") $(basename "$bdir")"; do
  read -r a b <<<"$sel"
  out=$(vjson --user-pin "$a=env:PA" --user-pin "$b=env:PB" "$store"); rc=$?
  check "verify, TOKEN=$a/$b: exit $rc, want 0" [ $rc -eq 0 ]
  check "verify, TOKEN=$a/$b: both unlocked" [ "$(unlocked alpha <<<"$out")" = True ] &&
    [ "$(unlocked beta <<<"$out")" = True ]
done
# The entry naming the token wins over the one without TOKEN, in either order.
for args in "--user-pin env:PB --user-pin alpha=env:PA" "--user-pin alpha=env:PA --user-pin env:PB"; do
  # shellcheck disable=SC2086
  out=$(vjson $args "$store"); rc=$?
  check "verify, $args: exit $rc, want 0, both unlocked" [ $rc -eq 0 ] &&
    [ "$(unlocked alpha <<<"$out")" = True ] && [ "$(unlocked beta <<<"$out")" = True ]
done
out=$(vjson --so-pin "alpha=env:SA" --so-pin "$bser=env:SB" "$store"); rc=$?
check "verify, per-token SO PINs: exit $rc, want 0, both unlocked" [ $rc -eq 0 ] &&
  [ "$(unlocked alpha <<<"$out")" = True ] && [ "$(unlocked beta <<<"$out")" = True ]
out=$(vjson --so-pin env:SA "$store" 2>/dev/null); rc=$?
check "verify, alpha's SO PIN for both: exit $rc, want 1, beta pin.wrong" [ $rc -eq 1 ] &&
  [ "$(codes beta <<<"$out")" = pin.wrong ] && [ "$(unlocked alpha <<<"$out")" = True ]
# TOKEN= naming no token: exit 2 before any PIN is read (the variable is unset).
err=$(tfs verify-integrity --user-pin nosuch=env:TFS_UNSET_VAR --user-pin env:PA "$store" 2>&1 >/dev/null); rc=$?
check "verify, TOKEN naming no token: exit $rc, want 2" [ $rc -eq 2 ]
check "verify, TOKEN naming no token: says so" grep -q "no token matches --user-pin nosuch=" <<<"$err"
check "verify, TOKEN naming no token: no PIN was read" not grep -q "environment variable" <<<"$err"
err=$(tfs verify-integrity --token alpha --user-pin beta=env:PB "$store" 2>&1 >/dev/null); rc=$?
check "verify, TOKEN not selected by --token: exit $rc, want 2" [ $rc -eq 2 ]
err=$(tfs verify-integrity --user-pin alpha=env:PA --user-pin alpha=env:PB "$store" 2>&1 >/dev/null); rc=$?
check "verify, two PINs for one token: exit $rc, want 2" [ $rc -eq 2 ] &&
  grep -q "given twice" <<<"$err"
err=$(tfs verify-integrity --user-pin alpha=env:PA --user-pin "$aser=env:PB" "$store" 2>&1 >/dev/null); rc=$?
check "verify, two entries naming alpha (label, serial): exit $rc, want 2" [ $rc -eq 2 ] &&
  grep -q "two --user-pin entries name token 'alpha'" <<<"$err"
err=$(tfs verify-integrity --user-pin "alpha=$PA" "$store" 2>&1 >/dev/null); rc=$?
check "verify, TOKEN=<not a SPEC>: exit $rc, want 2, not echoed" [ $rc -eq 2 ] && not grep -qF "$PA" <<<"$err"

# --- dump: beta's values stay encrypted, alpha's are decrypted; both shown
decrypted() { json "sum(1 for t in d['tokens'] if t['label'] == '$1' for o in t['objects'] for a in o['attributes'] if a.get('decrypted'))"; }
out=$(tfs dump --format json --user-pin env:PA "$store" 2>"$work/err"); rc=$?
check "dump, one PIN for both: exit $rc, want 1" [ $rc -eq 1 ]
check "dump, one PIN for both: [pin.wrong] for beta" grep -q "wrong user PIN for token 'beta'.*\[pin.wrong\]" "$work/err"
check "dump, one PIN for both: alpha decrypted, beta not" [ "$(decrypted alpha <<<"$out")" -gt 0 ] &&
  [ "$(decrypted beta <<<"$out")" = 0 ]
# ...and the JSON says which token's PIN was wrong, for scripts.
pin_of() { json "[t['pin_blobs']['$2']['pin'] for t in d['tokens'] if t['label'] == '$1'][0]"; }
check "dump JSON, one PIN for both: user PIN opened alpha, wrong for beta, no SO PIN ($(pin_of alpha user <<<"$out") $(pin_of beta user <<<"$out") $(pin_of beta so <<<"$out"))" \
  [ "$(pin_of alpha user <<<"$out")" = opened ] && [ "$(pin_of beta user <<<"$out")" = wrong ] &&
  [ "$(pin_of beta so <<<"$out")" = None ]
text=$(tfs dump --user-pin env:PA "$store" 2>/dev/null)
check "dump text, one PIN for both: beta's user blob is marked wrong PIN" \
  grep -q "PIN blobs: *SO present, user present (wrong PIN)" <<<"$text"
out=$(tfs dump --format json --user-pin "$(basename "$adir")=env:PA" --user-pin "beta=env:PB" "$store"); rc=$?
check "dump, per-token PINs: exit $rc, want 0, both decrypted" [ $rc -eq 0 ] &&
  [ "$(decrypted alpha <<<"$out")" -gt 0 ] && [ "$(decrypted beta <<<"$out")" -gt 0 ]
text=$(tfs dump --user-pin alpha=env:PA --user-pin beta=env:PB "$store")
check "dump text: beta's data object by its decrypted label" grep -q "data-beta" <<<"$text"

# --- diff: the same store twice; beta's wrong PIN is a finding, not an abort
cp -a "$store" "$work/copy"
out=$(tfs diff --format json --user-pin env:PA "$store" "$work/copy" 2>"$work/err"); rc=$?
check "diff, one PIN for both: exit $rc, want 1, [pin.wrong]" [ $rc -eq 1 ] && grep -q "\[pin.wrong\]" "$work/err"
check "diff, one PIN for both: alpha compared decrypted, beta as stored" \
  [ "$(json "' '.join('%s:%s' % (t['label'], t['unlocked']) for t in d['tokens'])" <<<"$out")" = "$(
    for d in "$adir" "$bdir"; do basename "$d"; done | sort | while read -r n; do
      [ "$n" = "$(basename "$adir")" ] && printf 'alpha:True ' || printf 'beta:False '; done | sed 's/ $//')" ]
out=$(tfs diff --format json --user-pin alpha=env:PA --user-pin beta=env:PB "$store" "$work/copy"); rc=$?
check "diff, per-token PINs: exit $rc, want 0, both unlocked, equal" [ $rc -eq 0 ] &&
  [ "$(json 'all(t["unlocked"] for t in d["tokens"]) and len(d["tokens"]) == 2 and d["equal"]' <<<"$out")" = True ]

# --- export: alpha's secret key out, beta's left out (exit 1); then both
tfs export --out "$work/x1" --no-encrypt --include-unextractable --secret-format hex --user-pin env:PA "$store" >/dev/null 2>"$work/err"; rc=$?
check "export, one PIN for both: exit $rc, want 1, [pin.wrong]" [ $rc -eq 1 ] && grep -q "\[pin.wrong\]" "$work/err"
check "export, one PIN for both: alpha's key written" [ -n "$(ls "$work/x1" | grep -i alpha)" ]
check "export, one PIN for both: beta's not" [ -z "$(ls "$work/x1" | grep -i beta)" ]
tfs export --out "$work/x2" --no-encrypt --include-unextractable --secret-format hex --user-pin alpha=env:PA \
  --user-pin "$bser=env:PB" "$store" >/dev/null; rc=$?
check "export, per-token PINs: exit $rc, want 0, both keys" [ $rc -eq 0 ] &&
  [ -n "$(ls "$work/x2" | grep -i alpha)" ] && [ -n "$(ls "$work/x2" | grep -i beta)" ]

# --- backup: each token sealed with its own PIN; the seals check
tfs backup --out "$work/b1.tar" --user-pin env:PB "$store" >/dev/null 2>"$work/err"; rc=$?
check "backup, one PIN for both: exit $rc, want 1, [pin.wrong] for alpha" [ $rc -eq 1 ] &&
  grep -q "wrong user PIN for token 'alpha'.*\[pin.wrong\]" "$work/err"
check "backup, one PIN for both: one seal (beta's)" [ "$(tar tf "$work/b1.tar" | grep -c tokenfs.seal)" = 1 ] &&
  tar tf "$work/b1.tar" | grep -q "$(basename "$bdir")/tokenfs.seal"
tfs backup --out "$work/b2.tar" --user-pin alpha=env:PA --user-pin beta=env:PB "$store" >/dev/null; rc=$?
check "backup, per-token PINs: exit $rc, want 0, two seals" [ $rc -eq 0 ] &&
  [ "$(tar tf "$work/b2.tar" | grep -c tokenfs.seal)" = 2 ]
out=$(vjson --check-seal --user-pin alpha=env:PA --user-pin beta=env:PB "$work/b2.tar"); rc=$?
check "backup, per-token PINs: both seals check in the archive (exit $rc)" [ $rc -eq 0 ] &&
  [ "$(json 'all(t["summary"]["sealed"] for t in d["tokens"])' <<<"$out")" = True ]
check "readers changed nothing" [ "$before" = "$(snapshot "$store")" ]

# --- writers refuse rather than guess
for args in "migrate --to gcm --user-pin env:PA" \
            "migrate --to gcm --user-pin alpha=env:PA --user-pin beta=env:PA" \
            "migrate --to gcm --user-pin alpha=env:PA --user-pin beta=env:PB --so-pin env:SA" \
            "rekey --rotate-token-key --user-pin env:PB"; do
  # shellcheck disable=SC2086
  err=$(tfs $args --force "$store" 2>&1 >/dev/null); rc=$?
  check "$args: exit $rc, want 2" [ $rc -eq 2 ]
  check "$args: says nothing was written" grep -q "nothing was written to any token" <<<"$err"
  check "$args: nothing written" [ "$before" = "$(snapshot "$store")" ]
done
err=$(tfs migrate --to gcm --force --user-pin nosuch=env:PA --user-pin env:PA "$store" 2>&1 >/dev/null); rc=$?
check "migrate, TOKEN naming no token: exit $rc, want 2, nothing written" [ $rc -eq 2 ] &&
  grep -q "no token matches --user-pin nosuch=" <<<"$err" && [ "$before" = "$(snapshot "$store")" ]

# Per-token PINs: both tokens migrate to GCM (both blobs re-wrapped), back
# to CBC, and stock SoftHSM logs in to each with its own PINs.
pins="--user-pin alpha=env:PA --user-pin $bser=env:PB --so-pin $(basename "$adir")=env:SA --so-pin beta=env:SB"
# shellcheck disable=SC2086
tfs migrate --to gcm --force $pins "$store" >/dev/null; rc=$?
check "migrate --to gcm, per-token PINs: exit $rc, want 0" [ $rc -eq 0 ]
# shellcheck disable=SC2086
out=$(tfs dump --format json $pins "$store"); rc=$?
check "after migrate: both tokens' blobs GCM, values decrypted (exit $rc)" [ $rc -eq 0 ] &&
  [ "$(json "' '.join(t['pin_blobs']['so']['layout'] + t['pin_blobs']['user']['layout'] for t in d['tokens'])" <<<"$out")" = "gcmgcm gcmgcm" ] &&
  [ "$(decrypted alpha <<<"$out")" -gt 0 ] && [ "$(decrypted beta <<<"$out")" -gt 0 ]
# shellcheck disable=SC2086
tfs rekey --rotate-token-key --force $pins "$store" >/dev/null; rc=$?
check "rekey --rotate-token-key, per-token PINs: exit $rc, want 0" [ $rc -eq 0 ]
# shellcheck disable=SC2086
tfs migrate --to cbc --force $pins "$store" >/dev/null; rc=$?
check "migrate --to cbc, per-token PINs: exit $rc, want 0" [ $rc -eq 0 ]
for t in alpha:user:PA alpha:so:SA beta:user:PB beta:so:SB; do
  IFS=: read -r label who var <<<"$t"
  $py "$here/p11ops.py" "$store" "$label" login "$who" "env:$var" >/dev/null 2>&1
  check "SoftHSM logs in to $label as $who with its own PIN" [ $? -eq 0 ]
done
$py "$here/p11ops.py" "$store" beta login user env:PA >/dev/null 2>&1
check "SoftHSM refuses alpha's PIN on beta" [ $? -eq 3 ]

# New PINs per token (rekey --new-user-pin TOKEN=SPEC).
export NA=alpha-new-3 NB=beta-new-4
# shellcheck disable=SC2086
tfs rekey --force $pins --new-user-pin alpha=env:NA --new-user-pin "$bser=env:NB" "$store" >/dev/null; rc=$?
check "rekey, a new user PIN per token: exit $rc, want 0" [ $rc -eq 0 ]
out=$(tfs rekey --force --user-pin alpha=env:NA --new-user-pin alpha=env:PA "$store"); rc=$?
check "rekey, a new PIN for alpha only: exit $rc, want 0, beta left alone" [ $rc -eq 0 ] &&
  grep -q 'token "beta".*no --new-\*-pin names it; left as it is' <<<"$out"
for t in alpha:user:PA beta:user:NB alpha:so:SA beta:so:SB; do
  IFS=: read -r label who var <<<"$t"
  $py "$here/p11ops.py" "$store" "$label" login "$who" "env:$var" >/dev/null 2>&1
  check "after rekey: SoftHSM logs in to $label as $who with \$$var" [ $? -eq 0 ]
done
tfs rekey --force --user-pin beta=env:NB --new-user-pin beta=env:PB "$store" >/dev/null
check "rekey: beta's user PIN back" [ $? -eq 0 ]

# --- a prompt names its token (a real pty; typed once the prompt shows)
out=$($py - "$TOKENFS" "$store" "$PB" <<'PY'
import os, pty, select, signal, sys, time
tokenfs, store, pin = sys.argv[1:4]
pid, fd = pty.fork()
if pid == 0:
    os.execv(tokenfs, [tokenfs, "dump", "--brief", "--user-pin", "alpha=env:PA",
                       "--user-pin", "beta=prompt", store])
out, typed, deadline = b"", False, time.time() + 30
while True:
    left = deadline - time.time()
    if left <= 0 or not select.select([fd], [], [], left)[0]:
        os.kill(pid, signal.SIGKILL)  # never hang
        break
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if not typed and b"User PIN for token 'beta' (serial " in out:
        os.write(fd, pin.encode() + b"\n")
        typed = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
print("\nexit=%d" % os.waitstatus_to_exitcode(status))
PY
)
check "prompt names its token" grep -q "User PIN for token 'beta' (serial $bser): " <<<"$out"
check "prompt: only beta asked" not grep -q "for token 'alpha'" <<<"$out"
check "prompt: beta decrypted, exit 0" grep -q "data-beta" <<<"$out" && grep -q "exit=0" <<<"$out"
if grep -qF "$PB" <<<"$out"; then fail "the prompt echoed the PIN"; else pass; fi

# --- item 4: one .object file with a PIN
obj=$(grep -l . "$bdir"/*.object | grep -v token.object | head -n1)
out=$(tfs dump --format json --user-pin env:PB "$obj"); rc=$?
check "one .object with its PIN: exit $rc, want 0" [ $rc -eq 0 ]
check "one .object with its PIN: decrypted through the token.object beside it" \
  [ "$(decrypted beta <<<"$out")" -gt 0 ]
out=$(vjson --user-pin alpha=env:PA --user-pin beta=env:PB "$adir" "$obj" 2>/dev/null); rc=$?
check "verify one .object, TOKEN=beta: unlocked (exit $rc)" \
  [ "$(json "[t['summary']['unlocked'] for t in d['tokens']]" <<<"$out")" = "[True, True]" ]
err=$(tfs verify-integrity --user-pin alpha=env:PA "$obj" 2>&1 >/dev/null); rc=$?
check "one .object, TOKEN naming another token: exit $rc, want 2" [ $rc -eq 2 ] &&
  grep -q "no token matches --user-pin alpha=" <<<"$err"
err=$(tfs dump --user-pin env:PA "$obj" 2>&1 >/dev/null); rc=$?
check "one .object, wrong PIN: exit $rc, want 1, [pin.wrong]" [ $rc -eq 1 ] && grep -q "\[pin.wrong\]" <<<"$err"
mkdir "$work/lone"
cp "$obj" "$work/lone/"
lone="$work/lone/$(basename "$obj")"
err=$(tfs dump --user-pin env:PB "$lone" 2>&1 >/dev/null); rc=$?
check "lone .object with a PIN: exit $rc, want 1" [ $rc -eq 1 ]
check "lone .object: one line naming the file and why" \
  [ "$(grep -c "$lone: the PIN is not used: there is no token.object beside it" <<<"$err")" = 1 ]
echo junk >"$work/lone/token.object"
err=$(tfs dump --user-pin env:PB "$lone" 2>&1 >/dev/null); rc=$?
check "lone .object beside a damaged token.object: exit $rc, want 1, says why" [ $rc -eq 1 ] &&
  grep -q "$lone: the PIN is not used: $work/lone/token.object, which holds the PIN blobs, cannot be read" <<<"$err"
err=$(tfs verify-integrity --seal --user-pin env:PB "$obj" 2>&1 >/dev/null); rc=$?
check "--seal of one .object: refused (exit $rc)" [ $rc -eq 2 ] && [ ! -e "$bdir/tokenfs.seal" ]

# --- no PIN in any output
for p in "$PA" "$PB" "$SA" "$SB" "$NA" "$NB"; do
  if grep -qF -- "$p" "$log"; then fail "PIN $p appears in the output"; else pass; fi
done
finish
