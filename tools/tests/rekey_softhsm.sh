#!/usr/bin/env bash
# tokenfs rekey against real SoftHSM 2.6.1: every operation (C_SetPIN-like,
# C_InitPIN-like reset, new SO PIN, SO PIN recovered from the user PIN, token
# key rotation, relabel) on a testdata token and on a fresh store; SoftHSM
# logs in with the new PIN and refuses the old one, every attribute equals
# its value before, keys sign and encrypt as before (p11check.py); token
# flags are exactly what SoftHSM's own C_InitPIN / C_SetPIN leave; after a
# rotation the old token key decrypts nothing; a GCM token (pr627) through
# tokenfs itself; refusals write nothing; no PIN in any output.
set -u
. "$(dirname "$0")/lib.sh"
need python3 softhsm2-util pkcs11-tool
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
need_pr627
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$work/all-output.txt"
# Every tokenfs run goes through here, so the leak check sees all output.
tfs() { "$TOKENFS" "$@" 2>&1 | tee -a "$log"; return "${PIPESTATUS[0]}"; }
copy() { rm -rf "$work/$1"; cp -a "$2" "$work/$1"; chmod -R go-rwx "$work/$1"; }
snapshot() { (cd "$1" && find . -printf '%p %s %m %i %T@\n' | sort && find . -type f -exec sha256sum {} + | sort); }
flags() {  # the token flags of token LABEL in tokendir DIR, by the independent decoder
  $py - "$1" "$2" "$here" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[3])
import tfsdecode
for d in os.listdir(sys.argv[1]):
    t = tfsdecode.decode_token(os.path.join(sys.argv[1], d))
    if t["label"] == sys.argv[2]:
        print(hex(t["flags"]))
PY
}
export U=user-pin-1 S=so-secret-1 NU=fresh-user-77 NS=fresh-so-77 NU2=second-user-88

# --- flags as SoftHSM's own C_InitPIN and C_SetPIN leave them, after a
# failed login set the PIN-count-low flag
for op in "initpin|--so-pin env:S --new-user-pin env:NU|user|env:S env:NU" \
          "setpin|--user-pin env:U --new-user-pin env:NU|user|env:U env:NU" \
          "setsopin|--so-pin env:S --new-so-pin env:NS|so|env:S env:NS"; do
  IFS='|' read -r name rekey_args who p11_args <<<"$op"
  copy a "$TFS_TESTDATA/store"; copy b "$TFS_TESTDATA/store"
  $py "$here/p11ops.py" "$work/a" demo badlogin "$who" && $py "$here/p11ops.py" "$work/b" demo badlogin "$who"
  before=$(flags "$work/b" demo)
  # shellcheck disable=SC2086
  $py "$here/p11ops.py" "$work/a" demo "$name" $p11_args
  check "SoftHSM $name" [ $? -eq 0 ]
  # shellcheck disable=SC2086
  tfs rekey --force --token demo $rekey_args "$work/b" >/dev/null
  check "tokenfs rekey as $name" [ $? -eq 0 ]
  fa=$(flags "$work/a" demo) fb=$(flags "$work/b" demo)
  check "$name: token flags $fb equal SoftHSM's $fa (were $before)" [ -n "$fa" ] && [ "$fa" = "$fb" ]
done

# --- each operation, then real SoftHSM: new PIN in, old PIN out, keys as before
# op NAME REKEY_ARGS SO_AFTER USER_AFTER OLD_PIN_REFUSED
op() {
  local name=$1 args=$2 so=$3 user=$4 wrong=$5
  copy "$name" "$src"
  # shellcheck disable=SC2086
  tfs rekey --force --token "$label" $args "$work/$name" >/dev/null
  check "$label/$name: rekey exits 0" [ $? -eq 0 ]
  out=$($py "$here/p11check.py" check "$work/$name" "$label" "$so" "$user" "$work/$label.json" \
        --wrong-pin "$wrong" 2>&1)
  check "$label/$name: SoftHSM after rekey: $(tail -n3 <<<"$out")" [ $? -eq 0 ]
}
for t in "demo:$TFS_TESTDATA/store:so-secret-1:user-pin-1" "every:$work/every-made:every-so-1:every-user-1"; do
  IFS=: read -r label src so user <<<"$t"
  [ "$label" = every ] && { $py "$here/p11check.py" make-store "$work/every-made" >/dev/null; check "make-store" [ $? -eq 0 ]; }
  export CU=$user CS=$so
  copy snap "$src"
  $py "$here/p11check.py" snapshot "$work/snap" "$label" env:CU "$work/$label.json" >/dev/null
  check "$label: snapshot" [ $? -eq 0 ]
  op setpin "--user-pin env:CU --new-user-pin env:NU" env:CS env:NU "$user"
  op initpin "--so-pin env:CS --new-user-pin env:NU" env:CS env:NU "$user"
  op setsopin "--so-pin env:CS --new-so-pin env:NS" env:NS env:CU "$so"
  op recover-so "--user-pin env:CU --new-so-pin env:NS" env:NS env:CU "$so"
  op rotate "--user-pin env:CU --so-pin env:CS --rotate-token-key" env:CS env:CU wrong-pin-00
  op rotate-new-pins "--user-pin env:CU --new-so-pin env:NS --new-user-pin env:NU --rotate-token-key" \
     env:NS env:NU "$user"

  # The SO PIN recovered from the user PIN resets the user PIN in SoftHSM.
  copy sorec "$src"
  tfs rekey --force --token "$label" --user-pin env:CU --new-so-pin env:NS "$work/sorec" >/dev/null
  $py "$here/p11ops.py" "$work/sorec" "$label" initpin env:NS env:NU2
  check "$label: SoftHSM's C_InitPIN with the recovered SO PIN" [ $? -eq 0 ]
  $py "$here/p11ops.py" "$work/sorec" "$label" login user env:NU2
  check "$label: ... and SoftHSM logs in with the user PIN it set" [ $? -eq 0 ]

  # After a rotation the old token key decrypts nothing.
  copy rot "$src"
  old=$(tfs dump --format json --reveal --token "$label" --user-pin env:CU "$work/rot" |
        $py -c 'import json,sys; print(json.load(sys.stdin)["tokens"][0]["token_key"])')
  tfs rekey --force --token "$label" --user-pin env:CU --so-pin env:CS --rotate-token-key "$work/rot" >/dev/null
  res=$($py - "$work/rot" "$label" "$old" "$here" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[4])
import tfsdecode
root, label, old = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
opened = tried = 0
for d in os.listdir(root):
    tok = os.path.join(root, d)
    if tfsdecode.decode_token(tok)["label"] != label:
        continue
    for f in os.listdir(tok):
        if not tfsdecode.is_object_name(f):
            continue
        obj = tfsdecode.read_object(os.path.join(tok, f))
        for a in tfsdecode.encrypted_attributes(obj):
            tried += 1
            try:
                tfsdecode.decrypt_value(old, a.value)
                opened += 1
            except tfsdecode.DecryptError:
                pass
print(tried, opened)
PY
)
  read -r tried opened <<<"$res"
  check "$label: the old token key opens none of $tried values after rotation (opened $opened)" \
        [ "$tried" -gt 0 ] && [ "$opened" = 0 ]
done

# --- a GCM token through tokenfs itself (no SoftHSM reads PR #627's layout)
copy gcm "$pr627/tokens"
export PU=4321 PS=12345678
gtok=$(ls -d "$work"/gcm/*/)
tfs dump --format json --reveal --user-pin env:PU "$work/gcm" >"$work/gcm-before.json"
tfs rekey --force --user-pin env:PU --new-so-pin env:NS --new-user-pin env:NU --rotate-token-key "$work/gcm" >/dev/null
check "pr627: rekey with rotation" [ $? -eq 0 ]
tfs dump --format json --reveal --user-pin env:NU --so-pin env:NS "$work/gcm" >"$work/gcm-after.json"
check "pr627: both new PINs open the token" [ $? -eq 0 ]
tfs dump --user-pin env:PU "$work/gcm" >"$work/old-pin.txt"
check "pr627: the old user PIN is refused (pin.wrong, exit 1)" [ $? -eq 1 ] &&
  grep -q "\[pin.wrong\]" "$work/old-pin.txt"
res=$($py - "$work/gcm-before.json" "$work/gcm-after.json" <<'PY'
import json, sys
a, b = (json.load(open(p))["tokens"][0] for p in sys.argv[1:3])
bad = []
if a["token_key"] == b["token_key"]: bad.append("token key not rotated")
if [x["layout"] for x in b["pin_blobs"].values()] != ["gcm", "gcm"]: bad.append("blob layouts")
n = 0
for x, y in zip(a["objects"], b["objects"]):
    for p, q in zip(x["attributes"], y["attributes"]):
        strip = lambda v: [{k: e[k] for k in e if k != "offset"} for e in v] if isinstance(v, list) else v
        if strip(p.get("value")) != strip(q.get("value")): bad.append(f'{x["file"]} {p["type"]:#x}')
        if p.get("decrypted"):
            n += 1
            if q.get("layout") != "gcm": bad.append("layout")
print(n, len(bad), "; ".join(bad[:4]))
PY
)
read -r n nbad detail <<<"$res"
check "pr627: $n values decrypt to the same plaintext, still GCM ($detail)" [ "$n" -gt 0 ] && [ "$nbad" = 0 ]

# --- relabel: no PIN; SoftHSM shows the new label; bad labels refused
copy label "$TFS_TESTDATA/store"
tfs rekey --force --token demo --new-label "Schlüssel-ÄÖ" "$work/label" >/dev/null
check "relabel without a PIN" [ $? -eq 0 ]
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/label" >"$work/label.conf"
SOFTHSM2_CONF="$work/label.conf" pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so -L 2>/dev/null >"$work/slots.txt"
check "SoftHSM lists the new label" grep -q "Schlüssel-ÄÖ" "$work/slots.txt"
before=$(snapshot "$work/label")
tfs rekey --force --token second --new-label "$(printf 'a%.0s' $(seq 33))" "$work/label" >/dev/null
check "a 33-byte label is refused" [ $? -eq 2 ]
tfs rekey --force --token second --new-label "$(printf 'bad\033]0;x')" "$work/label" >/dev/null
check "a label with control characters is refused" [ $? -eq 2 ]
check "refused labels wrote nothing" [ "$before" = "$(snapshot "$work/label")" ]

# --- refusals: exit 2, nothing written
copy ref "$TFS_TESTDATA/store"
before=$(snapshot "$work/ref")
tfs rekey --force --token demo --user-pin pass:wrong-pin-0 --new-user-pin env:NU "$work/ref" >/dev/null
check "wrong PIN exits 2" [ $? -eq 2 ]
tfs rekey --force --token demo --user-pin env:U --new-user-pin pass:abc "$work/ref" >/dev/null
check "a 3-byte new PIN exits 2" [ $? -eq 2 ]
tfs rekey --force --token demo --user-pin env:U --new-user-pin "pass:$(printf 'x%.0s' $(seq 256))" "$work/ref" >/dev/null
check "a 256-byte new PIN exits 2" [ $? -eq 2 ]
out=$(tfs rekey --force --token demo --user-pin env:U --rotate-token-key "$work/ref")
check "rotation without authority over the SO blob exits 2" [ $? -eq 2 ]
check "... and says what is missing" grep -q "give the SO PIN (--so-pin) or a new one (--new-so-pin)" <<<"$out"
tfs rekey --force --token demo --new-user-pin env:NU "$work/ref" >/dev/null
check "a new PIN without a current PIN exits 2" [ $? -eq 2 ]
tfs rekey --force --token demo "$work/ref" >/dev/null
check "nothing to change exits 2" [ $? -eq 2 ]
# A mismatch at the prompt, typed at a real terminal.
res=$(TOKENFS="$TOKENFS" DIR="$work/ref" $py - <<'PY'
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(os.environ["TOKENFS"], [os.environ["TOKENFS"], "rekey", "--force", "--token", "demo",
             "--user-pin", "env:U", "--new-user-pin", os.environ["DIR"]])
out = b""
for answer in (b"first-pin-1\n", b"other-pin-2\n"):
    # "New user PIN for token 'demo' (serial ...): ", then "Repeat ...".
    while not (b"PIN for token 'demo'" in out and out.endswith(b": ")):
        out += os.read(fd, 1024)
    os.write(fd, answer)
    out = b""
try:
    while True:
        chunk = os.read(fd, 1024)
        if not chunk:
            break
        out += chunk
except OSError:
    pass
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), b"differ" in out)
PY
)
check "a mismatched prompt exits 2 and says so ($res)" [ "$res" = "2 True" ]
check "refusals wrote nothing" [ "$before" = "$(snapshot "$work/ref")" ]

# --- review findings, each pinned down
# A repeated user PIN blob: every copy is re-wrapped, none opens with the old PIN.
copy dup "$TFS_TESTDATA/store"
dtok=$(dirname "$(grep -l second "$work"/dup/*/token.object)")
$py - "$dtok/token.object" "$here" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
import tfsdecode
p = sys.argv[1]
data = open(p, "rb").read()
obj = tfsdecode.parse_object(data)
a = obj.attributes[-1]
assert a.type == 0x8000534D, hex(a.type)      # CKA_OS_USERPIN, the last attribute
open(p, "ab").write(data[a.offset:])          # a second copy of it
PY
export U2=user-pin-2 S2=so-secret-2
tfs rekey --force --token second --user-pin env:U2 --new-user-pin env:NU "$work/dup" >/dev/null
check "rekey of a token with a repeated user blob exits 0" [ $? -eq 0 ]
res=$($py - "$dtok/token.object" "$here" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[2])
import tfsdecode
obj = tfsdecode.read_object(sys.argv[1])
old = new = 0
for a in obj.attributes:
    if a.type != 0x8000534D:
        continue
    for pin, name in ((os.environ["U2"].encode(), "old"), (os.environ["NU"].encode(), "new")):
        try:
            tfsdecode.unwrap_pin_blob(a.value, pin)
            if name == "old": old += 1
            else: new += 1
        except tfsdecode.DecryptError:
            pass
print(old, new)
PY
)
check "every copy opens with the new PIN, none with the old ($res)" [ "$res" = "0 2" ]

# A PIN reset is not refused over a damaged object it does not touch; a
# rotation is, and then reports nothing as changed.
copy dmg "$TFS_TESTDATA/store"
priv=$(awk -F'\t' '$1=="demo" && $4=="rsa2048-gen-priv" {print $3}' "$TFS_TESTDATA/store-inventory.tsv")
victim=$(dirname "$(grep -l demo "$work"/dmg/*/token.object)")/$priv
$py "$here/damage_value.py" "$victim" >/dev/null
json=$("$TOKENFS" rekey --force --token demo --so-pin env:S --user-pin env:U --rotate-token-key \
       --format json "$work/dmg" 2>>"$log")
check "rotation over a damaged object exits 1" [ $? -eq 1 ]
check "... and claims nothing: $json" $py -c 'import json,sys; t=json.load(sys.stdin)["tokens"][0]; sys.exit(t["committed"] or t["token_key_rotated"])' <<<"$json"
tfs rekey --force --token demo --so-pin env:S --new-user-pin env:NU "$work/dmg" >/dev/null
check "a PIN reset beside a damaged object exits 0" [ $? -eq 0 ]

# The same token named twice is changed once.
copy twice "$TFS_TESTDATA/store"
ttok=$(dirname "$(grep -l demo "$work"/twice/*/token.object)")
tfs rekey --force --token demo --user-pin env:U --new-user-pin env:NU "$work/twice" "$ttok" >/dev/null
check "the same token twice: changed once, exit 0" [ $? -eq 0 ]

# A seal that cannot be remade after the change: the change is reported done.
copy sealed "$TFS_TESTDATA/store"
stok=$(dirname "$(grep -l demo "$work"/sealed/*/token.object)")
tfs verify-integrity --seal --user-pin env:U --token demo "$work/sealed" >/dev/null
if chattr +i "$stok/tokenfs.seal" 2>/dev/null; then
  out=$(tfs rekey --force --token demo --user-pin env:U --new-user-pin env:NU "$work/sealed")
  rc=$?
  chattr -i "$stok/tokenfs.seal"
  check "a seal that cannot be remade: exit 0, the change reported ($rc: $out)" \
    [ $rc -eq 0 ] && grep -q "user PIN: set" <<<"$out" && grep -q "seal: could NOT be made anew" <<<"$out"
else
  fail "chattr +i is needed to make the seal unwritable for root"
fi

# --- no PIN, old or new, in any output
# The pr627 PINs are short numbers: matched as whole words, so that a pid or
# a temporary name that happens to contain 4321 is not taken for a leak.
leaks=$(grep -c -e user-pin-1 -e so-secret-1 -e "$NU" -e "$NS" -e "$NU2" -e every-user-1 -e every-so-1 \
        -e first-pin-1 -e '\b4321\b' -e '\b12345678\b' "$log")
check "no PIN in any rekey output ($leaks lines)" [ "$leaks" = 0 ]
check "no PIN in any file of the stores" [ -z "$(grep -rl -e "$NU" -e "$NS" -e "$NU2" "$work"/setpin* "$work"/gcm "$work"/sorec 2>/dev/null)" ]
finish
