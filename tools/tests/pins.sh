#!/usr/bin/env bash
# Unlocking with PINs: both PINs of every fixture token reveal the same token
# key; a wrong PIN is a finding about its token (exit 1, [pin.wrong]) and
# changes nothing; key material
# is redacted unless --reveal, and its KCV matches SoftHSM's CKA_CHECK_VALUE;
# and no PIN ever appears in any output, whatever SPEC form brings it.
set -u
. "$(dirname "$0")/lib.sh"
need python3 openssl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -a "$TFS_TESTDATA/store" "$work/store"
store="$work/store"
snapshot() { (cd "$store" && find . -printf '%p %s %m %T@\n' | sort && find . -type f -exec sha256sum {} + | sort); }
before=$(snapshot)

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

tokens="demo:so-secret-1:user-pin-1 second:so-secret-2:user-pin-2"
for t in $tokens; do
  IFS=: read -r label so user <<<"$t"
  ku=$("$TOKENFS" dump --format json --reveal --token "$label" --user-pin "pass:$user" "$store" | json 'd["tokens"][0]["token_key"]')
  ks=$("$TOKENFS" dump --format json --reveal --token "$label" --so-pin "pass:$so" "$store" | json 'd["tokens"][0]["token_key"]')
  check "$label: user and SO PIN give the same token key ($ku / $ks)" [ -n "$ku" ] && [ "$ku" = "$ks" ]
  check "$label: token key is 32 bytes" [ ${#ku} -eq 64 ]
  layouts=$("$TOKENFS" dump --format json --token "$label" --user-pin "pass:$user" --so-pin "pass:$so" "$store" |
            json '"%s %s" % (d["tokens"][0]["pin_blobs"]["so"]["layout"], d["tokens"][0]["pin_blobs"]["user"]["layout"])')
  check "$label: both blobs are CBC ($layouts)" [ "$layouts" = "cbc cbc" ]
  "$TOKENFS" dump --token "$label" --user-pin "pass:$user" --so-pin "pass:$so" "$store" >/dev/null 2>&1
  check "$label: both PINs together exit 0" [ $? -eq 0 ]
  # Without --reveal there is no token key in the output.
  n=$("$TOKENFS" dump --format json --token "$label" --user-pin "pass:$user" "$store" | grep -c '"token_key"')
  check "$label: token key only with --reveal" [ "$n" -eq 0 ]
done

# A wrong PIN: a finding about that token (exit 1, [pin.wrong]), the
# message, and the store untouched.
serial=$("$TOKENFS" dump --format json --token demo "$store" | json 'd["tokens"][0]["serial"]')
err=$("$TOKENFS" dump --token demo --user-pin pass:wrong-pin "$store" 2>&1 >/dev/null)
rc=$?
check "wrong PIN: exit $rc, want 1" [ "$rc" -eq 1 ]
check "wrong PIN: a pin.wrong finding" grep -qF "[pin.wrong]" <<<"$err"
case "$err" in
  *"wrong user PIN for token 'demo' (serial $serial)"*) pass ;;
  *) fail "wrong PIN message: $err" ;;
esac
err=$("$TOKENFS" dump --token demo --so-pin pass:user-pin-1 "$store" 2>&1 >/dev/null)
check "user PIN as SO PIN: exit 1" [ $? -eq 1 ]
case "$err" in *"wrong SO PIN for token 'demo'"*) pass ;; *) fail "wrong SO PIN message: $err" ;; esac
check "wrong PIN changed the store" [ "$before" = "$(snapshot)" ]

# Key material: redacted by default, with the fingerprint SoftHSM's own
# CKA_CHECK_VALUE confirms; revealed with --reveal, and then its KCV computed
# by openssl equals CKA_CHECK_VALUE.
"$TOKENFS" dump --format json --token demo --user-pin pass:user-pin-1 "$store" >"$work/red.json"
"$TOKENFS" dump --format json --token demo --user-pin pass:user-pin-1 --reveal "$store" >"$work/rev.json"
python3 - "$work/red.json" "$work/rev.json" <<'PY' >"$work/keys.txt"
import json, sys
red, rev = (json.load(open(p)) for p in sys.argv[1:3])
for ro, vo in zip(red["tokens"][0]["objects"], rev["tokens"][0]["objects"]):
    a = {x["name"]: x for x in ro["attributes"]}
    b = {x["name"]: x for x in vo["attributes"]}
    if a.get("CKA_CLASS", {}).get("value") == 4 and a.get("CKA_KEY_TYPE", {}).get("value") == 0x1f:
        print(a["CKA_VALUE"].get("redacted", False), "value" in a["CKA_VALUE"], a["CKA_VALUE"]["fingerprint"],
              b["CKA_VALUE"]["value"], b["CKA_CHECK_VALUE"]["value"])
PY
aes=0
while read -r redacted has_value fp value kcv; do
  aes=$((aes + 1))
  check "AES key redacted by default" [ "$redacted" = True ] && [ "$has_value" = False ]
  check "fingerprint $fp is kcv:$kcv (SoftHSM's CKA_CHECK_VALUE)" [ "$fp" = "kcv:$kcv" ]
  ct=$(head -c 16 /dev/zero | openssl enc "-aes-$(( ${#value} * 4 ))-ecb" -nopad -K "$value" | head -c 3 | od -An -tx1 | tr -d ' \n')
  check "revealed AES key's openssl KCV $ct = CKA_CHECK_VALUE $kcv" [ "$ct" = "$kcv" ]
done <"$work/keys.txt"
check "demo has 3 AES keys (got $aes)" [ "$aes" -eq 3 ]

# No PIN in any output, by any SPEC form, right or wrong, any format.
pin=user-pin-1
printf '%s\n' "$pin" >"$work/pinfile"
export TFS_TEST_PIN="$pin"
specs=("env:TFS_TEST_PIN" "file:$work/pinfile" "fd:3" "stdin" "pass:$pin")
for spec in "${specs[@]}"; do
  for fmt in text json; do
    for extra in "" "--reveal"; do
      # shellcheck disable=SC2086
      out=$("$TOKENFS" dump --format "$fmt" $extra --token demo --user-pin "$spec" "$store" \
              3<"$work/pinfile" <"$work/pinfile" 2>&1)
      rc=$?
      check "$spec $fmt $extra: exit $rc" [ "$rc" -eq 0 ]
      check "$spec $fmt $extra: output decrypted" grep -q 'decrypted' <<<"$out"
      if grep -qF "$pin" <<<"$out"; then fail "$spec $fmt $extra: the PIN appears in the output"; else pass; fi
    done
  done
done
# A wrong PIN is not echoed either.
out=$(TFS_TEST_PIN=not-this-one "$TOKENFS" dump --token demo --user-pin env:TFS_TEST_PIN "$store" 2>&1)
if grep -qF "not-this-one" <<<"$out"; then fail "a wrong PIN appears in the output"; else pass; fi

# A bare --user-pin prompts on the terminal without echo (a real pty, typed
# into only once the prompt shows, as a person would); without a terminal it
# is a usage error.
out=$(python3 - "$TOKENFS" "$store" "$pin" <<'PY'
import os, pty, select, signal, sys, time
tokenfs, store, pin = sys.argv[1:4]
pid, fd = pty.fork()
if pid == 0:
    os.execv(tokenfs, [tokenfs, "dump", "--token", "demo", "--user-pin", store])
out, typed, deadline = b"", False, time.time() + 30
while True:
    left = deadline - time.time()
    if left <= 0 or not select.select([fd], [], [], left)[0]:
        os.kill(pid, signal.SIGKILL)  # no prompt or no end in time: fail, never hang
        break
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if not typed and b"User PIN for token 'demo' (serial " in out:
        os.write(fd, pin.encode() + b"\n")
        typed = True
os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
PY
)
check "prompt: decrypted" grep -q 'decrypted' <<<"$out"
check "prompt: asked, naming the token" grep -q "User PIN for token 'demo' (serial [0-9a-f]*): " <<<"$out"
if grep -qF "$pin" <<<"$out"; then fail "prompt echoed the PIN"; else pass; fi
setsid "$TOKENFS" dump --token demo --user-pin "$store" </dev/null >/dev/null 2>"$work/err"
check "no terminal: exit 2" [ $? -eq 2 ]
check "store unchanged after all PIN tests" [ "$before" = "$(snapshot)" ]
finish
