#!/usr/bin/env bash
# Archives as input (issue 14): the real SoftHSM store of testdata/, as a
# directory and as tar, tar.gz, tar.xz, tar.zst and zip (and a tar.gz without
# an extension: detection by content), gives the same dump and verify-integrity
# (with a PIN, and --check-seal of a seal made on the directory), paths
# aside. Damage is a finding and what could be read is still reported; caps
# stop archive bombs with a clear error; '..', absolute, symlink, hard link
# and device members are reported, and strace shows that no file outside the
# archive is opened. Nothing is ever written.
set -u
. "$(dirname "$0")/lib.sh"
need tar gzip xz zstd zip strace python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export UP=user-pin-1

# The store where a tar of / puts it, with SoftHSM's modes (git loses them).
root=$work/root
mkdir -p "$root/var/lib/softhsm"
cp -r "$TFS_TESTDATA/store" "$root/var/lib/softhsm/tokens"
D=$root/var/lib/softhsm/tokens
find "$D" -type d -exec chmod 0700 {} + && find "$D" -type f -exec chmod 0600 {} +
demo=$(grep -l demo "$D"/*/token.object | head -n1)
demo=$(basename "$(dirname "$demo")")

# A seal of the demo token, made on the directory, travels in the archives.
"$TOKENFS" verify-integrity --token demo --user-pin env:UP --seal "$D" >/dev/null
check "seal written on the directory" [ -s "$D/$demo/tokenfs.seal" ]

tar -cf "$work/s.tar" -C "$root" var
tar -czf "$work/s.tar.gz" -C "$root" var
tar -cJf "$work/s.tar.xz" -C "$root" var
tar --zstd -cf "$work/s.tar.zst" -C "$root" var
(cd "$root" && zip -qr "$work/s.zip" var)
cp "$work/s.tar.gz" "$work/backup-no-extension"
archives=(s.tar s.tar.gz s.tar.xz s.tar.zst s.zip backup-no-extension)
sums_before=$(cd "$work" && sha256sum "${archives[@]}" && find root -printf '%p %s %m %T@\n' | sort)

runs=(
  "dump"
  "dump --format json"
  "dump --format softhsm --reveal"
  "dump --token demo --user-pin env:UP"
  "verify-integrity"
  "verify-integrity --format json --fail-on info"
  "verify-integrity --token demo --user-pin env:UP"
  "verify-integrity --token demo --user-pin env:UP --check-seal"
)
for r in "${runs[@]}"; do
  # shellcheck disable=SC2086
  want=$("$TOKENFS" $r "$D" 2>&1)
  wrc=$?
  for a in "${archives[@]}"; do
    # shellcheck disable=SC2086
    got=$("$TOKENFS" $r "$work/$a" 2>&1)
    grc=$?
    check "$r $a: exit $grc, directory $wrc" [ "$grc" -eq "$wrc" ]
    check "$r $a: names members as ARCHIVE:member" grep -qF "$work/$a:var/lib/softhsm/tokens/$demo" <<<"$got"
    same=$(sed "s|$work/$a:var/lib/softhsm/tokens|$D|g" <<<"$got")
    if [ "$same" = "$want" ]; then pass; else
      fail "$r $a: differs from the directory"; diff <(echo "$want") <(echo "$same") | head -n 8 >&2
    fi
  done
done
out=$("$TOKENFS" verify-integrity --token demo --user-pin env:UP --check-seal "$work/s.tar.xz")
check "check-seal in an archive: the token matches its seal" grep -q "matches its seal" <<<"$out"
sums_after=$(cd "$work" && sha256sum "${archives[@]}" && find root -printf '%p %s %m %T@\n' | sort)
check "reading changed an archive or the store" [ "$sums_before" = "$sums_after" ]
check "nothing unpacked beside the archives" [ -z "$(find "$work" -maxdepth 1 -newer "$work/backup-no-extension" ! -path "$work")" ]

# An archive of one token directory's contents ("tar -C tok ."): that token.
tar -czf "$work/tok.tar.gz" -C "$D/$demo" .
want=$("$TOKENFS" verify-integrity --user-pin env:UP --check-seal "$D/$demo" 2>&1)
got=$("$TOKENFS" verify-integrity --user-pin env:UP --check-seal "$work/tok.tar.gz" 2>&1 |
      sed "s|$work/tok.tar.gz:\.|$D/$demo|g")
check "token-contents archive verifies as its directory" [ "$got" = "$want" ]

# A directory stays a directory, whatever its name.
mkdir "$work/dir.tar.gz" && cp -r "$D/$demo" "$work/dir.tar.gz/"
check "a directory named *.tar.gz is a tokendir" "$TOKENFS" dump --token demo "$work/dir.tar.gz" >/dev/null

# A changed byte in a member is named by the seal.
python3 - "$work/s.tar" "$work/tampered.tar" "$demo" <<'PY'
import sys, tarfile, io
src, dst, demo = sys.argv[1:]
with tarfile.open(src) as t, tarfile.open(dst, "w") as o:
    done = False
    for m in t.getmembers():
        data = t.extractfile(m).read() if m.isfile() else None
        if not done and m.isfile() and f"/{demo}/" in m.name and m.name.endswith(".object") \
                and not m.name.endswith("token.object"):
            data = bytearray(data); data[-1] ^= 1; data = bytes(data); done = True
        o.addfile(m, io.BytesIO(data) if data is not None else None)
PY
out=$("$TOKENFS" verify-integrity --token demo --user-pin env:UP --check-seal "$work/tampered.tar")
rc=$?
check "tampered member: exit $rc, want 1" [ "$rc" -eq 1 ]
check "tampered member: the seal names the change" grep -q "seal\.\(attribute\|file\)-changed" <<<"$out"

# A damaged object inside an archive: the line names the member and the offset.
mkdir -p "$work/mal/tokens"
cp -r "$D/$demo" "$work/mal/tokens/"
cp "$TFS_TESTDATA/malformed/trunc-in-bool.object" "$work/mal/tokens/$demo/"
tar -czf "$work/mal.tar.gz" -C "$work/mal" tokens
err=$("$TOKENFS" dump "$work/mal.tar.gz" 2>&1 >/dev/null)
check "damaged object: member and offset named" grep -qx "tokenfs: $work/mal.tar.gz:tokens/$demo/trunc-in-bool.object: offset 48: file ends inside the bool value of CKA_TOKEN: 0 of 1 bytes present" <<<"$err"

# ---- damage ----
size=$(stat -c %s "$work/s.tar.gz")
head -c $((size * 2 / 3)) "$work/s.tar.gz" >"$work/cut.tar.gz"
err=$("$TOKENFS" dump "$work/cut.tar.gz" 2>&1 >"$work/cut.out")
rc=$?
check "truncated gzip: dump exit $rc, want 1" [ "$rc" -eq 1 ]
check "truncated gzip: archive.damaged" grep -q "^tokenfs: error: $work/cut.tar.gz: .*\[archive.damaged\]" <<<"$err"
check "truncated gzip: members before the cut are dumped" grep -q "^  Object " "$work/cut.out"
out=$("$TOKENFS" verify-integrity --format json "$work/cut.tar.gz")
check "truncated gzip: verify reports archive.damaged" grep -q '"code":"archive.damaged"' <<<"${out//[[:space:]]/}"

# A tar header with a bad checksum after the first few members.
python3 - "$work/s.tar" "$work/badsum.tar" <<'PY'
import sys, tarfile
data = bytearray(open(sys.argv[1], "rb").read())
with tarfile.open(sys.argv[1]) as t:
    m = t.getmembers()[12]
data[m.offset + 148] ^= 0x11     # a digit of the header's checksum
open(sys.argv[2], "wb").write(data)
PY
err=$("$TOKENFS" dump "$work/badsum.tar" 2>&1 >"$work/badsum.out")
rc=$?
check "bad tar checksum: exit $rc, want 1" [ "$rc" -eq 1 ]
check "bad tar checksum: archive.damaged" grep -q "\[archive.damaged\]" <<<"$err"
check "bad tar checksum: earlier members dumped" grep -q "^  Object " "$work/badsum.out"

# A member cut short: a plain tar ending inside an object's data.
python3 - "$work/s.tar" "$work/short.tar" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    m = [m for m in t.getmembers() if m.isfile() and m.size > 600][3]
open(sys.argv[2], "wb").write(open(sys.argv[1], "rb").read()[:m.offset_data + 300])
PY
err=$("$TOKENFS" dump "$work/short.tar" 2>&1 >/dev/null)
check "member cut short: archive.member-damaged" grep -q "\[archive.member-damaged\]" <<<"$err"

# ---- bombs: each cap a clear error (exit 2), found before the bytes ----
mkdir "$work/b" && truncate -s 10G "$work/b/huge" && tar -S -czf "$work/sparse.tar.gz" -C "$work/b" huge
rm "$work/b/huge"
err=$("$TOKENFS" verify-integrity "$work/sparse.tar.gz" 2>&1)
rc=$?
check "10 GiB sparse member: exit $rc, want 2" [ "$rc" -eq 2 ]
check "10 GiB sparse member: member-size cap" grep -q "huge: member declares 10737418240 bytes, over the 67108864-byte member-size cap" <<<"$err"
dd if=/dev/zero bs=1M count=100 2>/dev/null >"$work/b/zeros" && (cd "$work/b" && zip -q ../zeros.zip zeros)
err=$("$TOKENFS" dump "$work/zeros.zip" 2>&1)
rc=$?
check "100 MiB of zeros in a $(stat -c %s "$work/zeros.zip")-byte zip: exit $rc" [ "$rc" -eq 2 ]
check "zip bomb: member-size cap" grep -q "member-size cap" <<<"$err"
python3 - "$work/many.tar" "$work/b/zeros" <<'PY'
import sys, tarfile, io
zeros = open(sys.argv[2], "rb").read()[:30 << 20]
with tarfile.open(sys.argv[1], "w") as t:
    for i in range(3):
        m = tarfile.TarInfo(f"z{i}"); m.size = len(zeros); t.addfile(m, io.BytesIO(zeros))
    for i in range(1200):
        m = tarfile.TarInfo(f"m/{i}"); t.addfile(m, io.BytesIO(b""))
PY
gzip -1 "$work/many.tar"
err=$("$TOKENFS" dump --max-unpacked 50M "$work/many.tar.gz" 2>&1)
rc=$?
check "total cap: exit $rc, want 2" [ "$rc" -eq 2 ]
check "total cap: named" grep -q "more than 52428800 bytes, the cap on all members (--max-unpacked)" <<<"$err"
err=$("$TOKENFS" dump --max-members 1000 "$work/many.tar.gz" 2>&1)
rc=$?
check "member count cap: exit $rc, want 2" [ "$rc" -eq 2 ]
check "member count cap: named" grep -q "more than 1000 members, the member-count cap" <<<"$err"
err=$("$TOKENFS" dump "$work/many.tar.gz" 2>&1)
check "under the caps: read whole, no token in it" grep -q "no token directory" <<<"$err"

# ---- unsafe members: reported, never followed; nothing outside is opened ----
mkdir "$work/outside"
cp "$D/$demo/token.object" "$work/outside/secret.object"
python3 - "$work/s.tar" "$work/evil.tar" "$demo" "$work/outside/secret.object" <<'PY'
import sys, tarfile, io, shutil
src, dst, demo, secret = sys.argv[1:]
shutil.copy(src, dst)
tok = f"var/lib/softhsm/tokens/{demo}"
with tarfile.open(dst, "a") as t:
    def add(name, kind=tarfile.REGTYPE, data=b"", link=""):
        m = tarfile.TarInfo(name); m.type = kind; m.linkname = link; m.mode = 0o600
        if kind == tarfile.REGTYPE:
            m.size = len(data); t.addfile(m, io.BytesIO(data))
        else:
            t.addfile(m)
    depth = "../" * 12
    add(f"{depth}{secret.lstrip('/')}", data=b"x" * 40)
    add(secret, data=b"y" * 40)
    add(f"{tok}/11111111-1111-1111-1111-111111111111.object", tarfile.SYMTYPE, link=secret)
    add(f"{tok}/22222222-2222-2222-2222-222222222222.object", tarfile.LNKTYPE, link=secret)
    add(f"{tok}/33333333-3333-3333-3333-333333333333.object", tarfile.CHRTYPE)
PY
err=$("$TOKENFS" dump "$work/evil.tar" 2>&1 >/dev/null)
rc=$?
check "unsafe members: exit $rc, want 1" [ "$rc" -eq 1 ]
check "'..' member reported" grep -q "\.\./.*: member is a path with a '\.\.' component: never extracted, followed or read \[archive.unsafe-path\]" <<<"$err"
check "absolute member reported" grep -q "$work/evil.tar:$work/outside/secret.object: member is an absolute path" <<<"$err"
check "symlink member reported" grep -q "11111111-.*symbolic link to '$work/outside/secret.object': recorded as a link, never followed \[archive.link\]" <<<"$err"
check "hard link member reported" grep -q "22222222-.*hard link to '$work/outside/secret.object': not followed \[archive.link\]" <<<"$err"
check "device member reported" grep -q "33333333-.*character device: recorded, never opened \[archive.special-file\]" <<<"$err"
# LeakSanitizer cannot run under ptrace; leaks are checked by the runs above.
for c in "dump" "verify-integrity --user-pin env:UP --token demo" "verify-integrity --user-pin env:UP --token demo --check-seal"; do
  # shellcheck disable=SC2086
  ASAN_OPTIONS=detect_leaks=0 strace -f -qq -e trace=%file -o "$work/trace" "$TOKENFS" $c "$work/evil.tar" >/dev/null 2>&1
  opened=$(grep -E 'open(at)?\(' "$work/trace" | grep -F "$work" | grep -vF "\"$work/evil.tar\"")
  check "$c evil.tar: opened outside the archive: $opened" [ -z "$opened" ]
  resolved=$(grep -F "evil.tar:" "$work/trace")
  check "$c evil.tar: a member path reached the file system: $resolved" [ -z "$resolved" ]
  arc=$(grep -F "\"$work/evil.tar\"" "$work/trace")
  check "$c evil.tar: archive opened O_RDONLY|O_NOFOLLOW" grep -q "O_RDONLY.*O_NOFOLLOW" <<<"$arc"
  bad=$(grep -E '^[0-9]+ +(creat|unlink|unlinkat|rename|renameat|renameat2|mkdir|mkdirat|symlink|symlinkat|link|linkat)\(' "$work/trace")
  check "$c evil.tar: wrote to the file system: $bad" [ -z "$bad" ]
done

# ---- nothing is written into an archive ----
err=$("$TOKENFS" verify-integrity --token demo --user-pin env:UP --seal "$work/s.tar.gz" 2>&1)
rc=$?
check "--seal on an archive: exit $rc, want 2" [ "$rc" -eq 2 ]
check "--seal on an archive: says why" grep -q "is an archive, and --seal writes into the token directory" <<<"$err"
err=$("$TOKENFS" migrate --dry-run --to gcm --user-pin env:UP "$work/s.tar.gz" 2>&1)
rc=$?
check "migrate on an archive: exit $rc, want 2" [ "$rc" -eq 2 ]
check "migrate on an archive: says why" grep -q "is an archive; tokenfs changes stores only in place" <<<"$err"

# An object file of zeros (a crash can leave one) is an empty tar to
# libarchive; by its name it is still dumped as the damaged object it is.
head -c 2048 /dev/zero >"$work/zeros.object"
err=$("$TOKENFS" dump "$work/zeros.object" 2>&1 >/dev/null)
rc=$?
check "zero-filled .object: exit $rc, want 1" [ "$rc" -eq 1 ]
check "zero-filled .object: read as an object file" grep -q "^tokenfs: $work/zeros.object: offset " <<<"$err"

# Not an archive, not a store: one clear line.
echo "hello" >"$work/notes.txt"
err=$("$TOKENFS" dump "$work/notes.txt" 2>&1)
rc=$?
check "plain file: exit $rc, want 2" [ "$rc" -eq 2 ]
check "plain file: message" grep -q "not a token store: expected a tokendir, a token directory, a .object file or a tar or zip archive" <<<"$err"
finish
