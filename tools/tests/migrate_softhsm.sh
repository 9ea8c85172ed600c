#!/usr/bin/env bash
# migrate against real SoftHSM 2.6.1: CBC -> GCM -> CBC on every testdata token
# and on a fresh store with every object kind (p11check.py make-store). Before,
# SoftHSM records every readable attribute and a signature, encryption and MAC
# with each key; the GCM state must be exactly PR #627's layout with the same
# plaintexts (pr627_layout.py --compare, an independent decoder); after the
# way back SoftHSM logs in with both PINs, every attribute equals its value
# before, and every key signs, verifies, encrypts and MACs as before. The
# pr627 fixture (written by a PR #627 build) migrates to CBC, and SoftHSM
# 2.6.1 reads every plaintext its README lists.
set -u
. "$(dirname "$0")/lib.sh"
need python3 softhsm2-util pkcs11-tool
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
need_pr627
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tokdir() { dirname "$(grep -l "$2" "$1"/*/token.object | head -n1)"; }

# round_trip NAME TOKENDIR LABEL SO USER
round_trip() {
  local name=$1 src=$2 label=$3
  export MS=$4 MU=$5
  cp -a "$src" "$work/$name-orig"
  cp -a "$src" "$work/$name-snap"
  $py "$here/p11check.py" snapshot "$work/$name-snap" "$label" env:MU "$work/$name.json" >/dev/null
  check "$name: SoftHSM snapshot before" [ $? -eq 0 ]
  cp -a "$src" "$work/$name"
  "$TOKENFS" migrate --force --to gcm --token "$label" --user-pin env:MU --so-pin env:MS "$work/$name" >/dev/null
  check "$name: migrate --to gcm" [ $? -eq 0 ]
  out=$($py "$here/pr627_layout.py" --compare "$(tokdir "$work/$name-orig" "$label")" "$(tokdir "$work/$name" "$label")" \
        --so-pin-env MS --user-pin-env MU --expect gcm 2>&1)
  check "$name: GCM state is PR #627's layout with the same plaintexts: $(tail -n3 <<<"$out")" [ $? -eq 0 ]
  cp -a "$work/$name" "$work/$name-gcm"
  "$TOKENFS" migrate --force --to cbc --token "$label" --user-pin env:MU --so-pin env:MS "$work/$name" >/dev/null
  check "$name: migrate --to cbc" [ $? -eq 0 ]
  out=$($py "$here/pr627_layout.py" --compare "$(tokdir "$work/$name-gcm" "$label")" "$(tokdir "$work/$name" "$label")" \
        --so-pin-env MS --user-pin-env MU --expect cbc 2>&1)
  check "$name: CBC state has the same plaintexts: $(tail -n3 <<<"$out")" [ $? -eq 0 ]
  out=$($py "$here/p11check.py" check "$work/$name" "$label" env:MS env:MU "$work/$name.json" --wrong-pin wrong-pin-0 2>&1)
  check "$name: SoftHSM after CBC -> GCM -> CBC: $(tail -n4 <<<"$out")" [ $? -eq 0 ]
}

round_trip demo "$TFS_TESTDATA/store" demo so-secret-1 user-pin-1
round_trip second "$TFS_TESTDATA/store" second so-secret-2 user-pin-2
$py "$here/p11check.py" make-store "$work/every-made" >/dev/null
check "p11check make-store" [ $? -eq 0 ]
round_trip every "$work/every-made" every every-so-1 every-user-1

# The PR #627 fixture: GCM -> CBC, then stock SoftHSM reads it.
cp -a "$pr627/tokens" "$work/pr627"
chmod -R go-rwx "$work/pr627"
export PS=12345678 PU=4321
"$TOKENFS" migrate --force --to cbc --user-pin env:PU --so-pin env:PS "$work/pr627" >/dev/null
check "pr627 fixture: migrate --to cbc" [ $? -eq 0 ]
out=$($py "$here/pr627_softhsm.py" "$work/pr627" 2>&1)
check "pr627 fixture: SoftHSM 2.6.1 reads every README plaintext: $(tail -n4 <<<"$out")" [ $? -eq 0 ]
finish
