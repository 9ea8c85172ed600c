#!/usr/bin/env bash
# Every malformed fixture: exit 1, exactly one line on stderr naming the file
# and the offset from MANIFEST.tsv, and nothing on stderr that a sanitizer
# would print.
set -u
. "$(dirname "$0")/lib.sh"
dir="$TFS_TESTDATA/malformed"
rows=0
while IFS=$'\t' read -r file offset desc; do
  case "$file" in '#'*|'') continue ;; esac
  rows=$((rows + 1))
  for fmt in text json softhsm; do
    reveal=()
    [ "$fmt" = softhsm ] && reveal=(--reveal) # files as stored: key material needs it
    err=$("$TOKENFS" dump --format "$fmt" "${reveal[@]}" "$dir/$file" 2>&1 >/dev/null)
    rc=$?
    check "$file ($fmt): exit $rc, want 1" [ "$rc" -eq 1 ]
    check "$file ($fmt): one stderr line, got: $err" [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ]
    case "$err" in
      "tokenfs: $dir/$file: offset $offset: "?*) pass ;;
      *) fail "$file ($fmt): want 'tokenfs: $dir/$file: offset $offset: ...' ($desc), got '$err'" ;;
    esac
  done
done < "$dir/MANIFEST.tsv"
check "manifest has rows" [ "$rows" -ge 20 ]
finish
