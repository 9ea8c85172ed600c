#!/usr/bin/env bash
# tokenfs benchmarks against SoftHSM 2.6.1's own tools (docs/benchmarks.md).
#
#   bench/run.sh BUILD        what `make bench` runs (BUILD: the cmake build dir)
#
# For each N it makes (once, cached) a SoftHSM 2.6.1 store of N objects, a
# realistic mix created through PyKCS11 by real SoftHSM (bench/make-store.py),
# then times, on a warm page cache, one checked warm-up run and then several
# repetitions of each command (softhsm2-dump-file: no separate warm-up, see
# below), and prints medians and ratios:
#
#   tokenfs dump                         vs  softhsm2-dump-file on every .object
#   tokenfs dump --user-pin --format json vs pkcs11-tool --list-objects --login
#   tokenfs verify-integrity --user-pin  vs  the decrypting dump (skipped, with
#                                            a note, while the command is missing)
#   cat of every .object (the floor), openssl speed's AES-256-CBC floor, and the
#   peak resident memory of every tokenfs run (/usr/bin/time -v).
#
# and, for one store (BENCH_MIGRATE_N, default 10,000 objects), writing:
#
#   tokenfs migrate --to gcm (CBC -> GCM)  vs  the write floor: cp -a of the
#                                            token directory, then sync
#
# each run on a fresh copy of the store (made, and flushed, outside the timed
# part), on the file system of the cache, floor and migrate runs alternating;
# median and best wall time, and migrate's peak resident memory (time %M).
# The copies are removed only at the end (2 x BENCH_MIGRATE_RUNS + 1 of
# them, ~80 MB each at 10,000 objects): on ext4 without a journal, creating
# a file skips every inode freed in the last minute, so removing 20,000
# files between runs would slow the next runs down.
#
# Stores are cached under BUILD/bench-cache/nN/ and rebuilt only when
# bench/make-store.py or the key pool changes. Nothing here is committed.
#
# Environment (all optional):
#   BENCH_SIZES      object counts, default "1000 5000 10000 20000"
#   BENCH_AES_N      also a store of this many private AES-256 keys and nothing
#                    else (default 2000; 0: none): decryption and JSON output
#                    without certificate decoding. Its rows are "aesN".
#   BENCH_MIN_RUNS   repetitions at least (default 3)
#   BENCH_MAX_RUNS   repetitions at most (default 10; hyperfine stops earlier
#                    once 3 s have been spent on a command)
#   BENCH_BASELINES  0 skips softhsm2-dump-file and pkcs11-tool (quick runs)
#   BENCH_VERIFY_CMD how to call verify-integrity, default
#                    "verify-integrity --user-pin env:BENCH_PIN"
#   SOFTHSM2_MODULE  default /usr/lib/softhsm/libsofthsm2.so
#   NO_HYPERFINE=1   use the built-in timing loop even if hyperfine exists
#   BENCH_PARTS      what to run: "read" (dump, verify), "migrate",
#                    "backup" (against tar czf), "archive" (verify-integrity
#                    of a tar.gz of the store against the same on the
#                    directory), "pinaudit" (needs no store: it runs
#                    BUILD/tools/tfs_pin_audit_bench (bench/pin_audit_bench.c):
#                    guesses/s per thread against the SHA-256 compression rate
#                    measured in the same run, and the scaling to all cores),
#                    or several (the default: all of them): BENCH_PARTS=migrate
#                    bench/run.sh BUILD times migrate alone, and makes only its store
#   BENCH_ARCHIVE_N  the store the archive part runs on (default 10000)
#   BENCH_PINAUDIT_SECONDS  seconds per pin-audit measurement (default 6)
#   BENCH_MIGRATE_N  the store migrate runs on (default 10000)
#   BENCH_MIGRATE_RUNS  timed runs of migrate and of the floor (default 5)
#   BENCH_MIGRATE_DIR   where the copies are made (default BUILD/bench-cache):
#                    the file system both are measured on
#   BENCH_MIGRATE_CMD   how to call migrate, default "migrate --to gcm
#                    --user-pin env:BENCH_PIN --so-pin env:BENCH_SO_PIN"
#   BENCH_BACKUP_N   the store `backup` archives (part "backup", default 10000),
#                    timed against `tar czf` of the same directory, runs
#                    alternating (BENCH_BACKUP_RUNS, default 5)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -eq 1 ] || { echo "usage: bench/run.sh BUILD_DIR" >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
TOKENFS=$BUILD/tools/tokenfs
CACHE=$BUILD/bench-cache
MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
PY=/usr/bin/python3 # the Debian python, which has PyKCS11
MAKE_STORE=$REPO/bench/make-store.py
SIZES=${BENCH_SIZES:-1000 5000 10000 20000}
AES_N=${BENCH_AES_N:-2000}
MIN_RUNS=${BENCH_MIN_RUNS:-3}
MAX_RUNS=${BENCH_MAX_RUNS:-10}
BASELINES=${BENCH_BASELINES:-1}
VERIFY_CMD=${BENCH_VERIFY_CMD:-verify-integrity --user-pin env:BENCH_PIN}
PARTS=${BENCH_PARTS:-read migrate backup archive pinaudit}
BACKUP_N=${BENCH_BACKUP_N:-10000}
BACKUP_RUNS=${BENCH_BACKUP_RUNS:-5}
ARCHIVE_N=${BENCH_ARCHIVE_N:-10000}
MIGRATE_N=${BENCH_MIGRATE_N:-10000}
MIGRATE_RUNS=${BENCH_MIGRATE_RUNS:-5}
MIGRATE_CMD=${BENCH_MIGRATE_CMD:-migrate --to gcm --user-pin env:BENCH_PIN --so-pin env:BENCH_SO_PIN}
TARGET_N=10000 # the issue's targets are stated for 10,000 objects
RSS_N=20000    # ... and the memory target for 20,000
LABEL=bench
SO_PIN=bench-so-pin
export BENCH_PIN=bench-user-pin # read by tokenfs as --user-pin env:BENCH_PIN
export BENCH_SO_PIN=$SO_PIN     # ... and --so-pin env:BENCH_SO_PIN
POOL_KEYS=8 # RSA 2048 keys (with certificates) and EC certificates reused

TTY=false
[ -t 1 ] && TTY=true
say() { printf '%s\n' "$*"; }
step() { if $TTY; then printf '\r\033[K%s' "$*"; else printf '%s\n' "$*"; fi; }
endstep() { if $TTY; then printf '\r\033[K'; fi; }
die() { endstep; echo "bench: $*" >&2; exit 1; }

RUN_READ=false RUN_MIGRATE=false RUN_BACKUP=false RUN_ARCHIVE=false RUN_PINAUDIT=false
for part in $PARTS; do
	case $part in
	read) RUN_READ=true ;;
	migrate) RUN_MIGRATE=true ;;
	backup) RUN_BACKUP=true ;;
	archive) RUN_ARCHIVE=true ;;
	pinaudit) RUN_PINAUDIT=true ;;
	*) die "BENCH_PARTS: unknown part '$part' (read, migrate, backup, archive, pinaudit)" ;;
	esac
done
READ_SIZES=
$RUN_READ && READ_SIZES=$SIZES
[ "$AES_N" = 0 ] || ! $RUN_READ || READ_SIZES="$READ_SIZES aes$AES_N"
# every store a part uses, each once
STORE_SIZES=$READ_SIZES
if $RUN_MIGRATE && ! grep -qw -- "$MIGRATE_N" <<<"$READ_SIZES"; then
	STORE_SIZES="$READ_SIZES $MIGRATE_N"
fi
if $RUN_BACKUP && ! grep -qw -- "$BACKUP_N" <<<"$STORE_SIZES"; then
	STORE_SIZES="$STORE_SIZES $BACKUP_N"
fi
if $RUN_ARCHIVE && ! grep -qw -- "$ARCHIVE_N" <<<"$STORE_SIZES"; then
	STORE_SIZES="$STORE_SIZES $ARCHIVE_N"
fi

# --- prerequisites ------------------------------------------------------------
[ -x "$TOKENFS" ] || die "no $TOKENFS: build first (make bench builds)"
for t in softhsm2-util softhsm2-dump-file pkcs11-tool openssl find "$PY"; do
	command -v "$t" >/dev/null || die "missing: $t (scripts/install-deps.sh installs it)"
done
[ -x /usr/bin/time ] || die "missing: /usr/bin/time (Debian package time)"
[ -r "$MODULE" ] || die "missing: $MODULE"
"$PY" -c 'import PyKCS11' 2>/dev/null || die "missing: python3-pykcs11 for $PY"
HYPERFINE=
TIMER="the built-in loop (no hyperfine)"
if [ -z "${NO_HYPERFINE:-}" ] && command -v hyperfine >/dev/null; then
	HYPERFINE=$(command -v hyperfine)
	TIMER="hyperfine $("$HYPERFINE" --version | cut -d' ' -f2)"
fi

mkdir -p "$CACHE"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tokenfs-bench.XXXXXX")
STAGE=
SCRATCH= # migrate's copies, next to the cached stores (same file system)
cleanup() {
	rm -rf "$WORK"
	[ -z "$STAGE" ] || rm -rf "$STAGE"
	[ -z "$SCRATCH" ] || rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- key pool: made once by openssl, reused by every store --------------------
POOL=$CACHE/pool
if [ ! -s "$POOL/stamp" ]; then
	step "bench: making the key pool ($POOL_KEYS RSA 2048 keys + certificates, $POOL_KEYS EC certificates)"
	rm -rf "$POOL" "$POOL.tmp"
	mkdir -p "$POOL.tmp"
	for k in $(seq 1 $POOL_KEYS); do
		(
			cd "$POOL.tmp"
			openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-$k.pem
			openssl rsa -in rsa-$k.pem -traditional -outform DER -out rsa-$k.der 2>/dev/null
			openssl req -new -x509 -key rsa-$k.pem -sha256 -days 3650 -set_serial $((0x2000 + k)) \
				-subj "/O=tokenfs bench/CN=bench rsa $k" -outform DER -out cert-rsa-$k.der
			openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec-$k.pem
			openssl req -new -x509 -key ec-$k.pem -sha256 -days 3650 -set_serial $((0x3000 + k)) \
				-subj "/O=tokenfs bench/CN=bench ec $k" -outform DER -out cert-ec-$k.der
		)
	done
	openssl rand -hex 8 >"$POOL.tmp/stamp"
	mv "$POOL.tmp" "$POOL"
	endstep
fi
RECIPE="$(sha256sum "$MAKE_STORE" | cut -c1-16)-$(cat "$POOL/stamp")"

conf_for() { # conf_for TOKENDIR CONF
	cat >"$2" <<-EOF
		directories.tokendir = $1
		objectstore.backend = file
		log.level = ERROR
		slots.removable = false
	EOF
}

# Where to let SoftHSM write: it truncates and rewrites each object file once
# per attribute, which ext4 turns into a block flush per rewrite (~80 objects/s);
# on tmpfs it makes ~1,000 objects/s. The finished store is copied to the cache.
stage_dir() {
	local free_kb
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		free_kb=$(df -Pk /dev/shm | awk 'NR==2 {print $4}')
		if [ "${free_kb:-0}" -gt $((($1 * 8 + 65536))) ]; then
			mktemp -d /dev/shm/tokenfs-bench-store.XXXXXX
			return
		fi
	fi
	mktemp -d "$CACHE/stage.XXXXXX"
}

# make_store N|aesN: $CACHE/nN/{tokens,softhsm-tokens,meta}; aesN: N AES keys
make_store() {
	local n=${1#aes} dir=$CACHE/n$1 fill=fill
	[ "$1" = "$n" ] || fill=fill-aes
	if [ -s "$dir/meta" ] && grep -qx "recipe=$RECIPE" "$dir/meta"; then
		return
	fi
	rm -rf "$dir"
	STAGE=$(stage_dir "$n")
	mkdir -m 0700 "$STAGE/tokens"
	conf_for "$STAGE/tokens" "$STAGE/softhsm2.conf"
	say "bench: generating a store of $n objects ($fill) through SoftHSM $(softhsm2-util --version) (once; cached in $dir)"
	local t0 t1
	t0=$(date +%s%N)
	SOFTHSM2_CONF=$STAGE/softhsm2.conf softhsm2-util --init-token --free --label "$LABEL" \
		--so-pin "$SO_PIN" --pin "$BENCH_PIN" >/dev/null
	SOFTHSM2_CONF=$STAGE/softhsm2.conf "$PY" "$MAKE_STORE" $fill "$MODULE" "$LABEL" "$BENCH_PIN" \
		"$POOL" "$n" >"$WORK/fill.out"
	t1=$(date +%s%N)
	local stats
	stats=$("$PY" "$MAKE_STORE" stats "$STAGE/tokens")
	grep -q "^objects=$n " <<<"$stats" || die "store of $n: SoftHSM wrote $stats"
	mkdir -p "$dir.tmp"
	cp -a "$STAGE/tokens" "$dir.tmp/tokens"
	# pkcs11-tool runs through SoftHSM, which rewrites `generation` when it
	# opens a token: give it its own copy so the measured store stays as made.
	cp -a "$STAGE/tokens" "$dir.tmp/softhsm-tokens"
	rm -rf "$STAGE"
	STAGE=
	{
		echo "recipe=$RECIPE"
		echo "generation_ms=$(((t1 - t0) / 1000000))"
		tr ' ' '\n' <<<"$stats"
	} >"$dir.tmp/meta"
	mv "$dir.tmp" "$dir"
	say "bench:   $(tail -n 1 "$WORK/fill.out") ($(((t1 - t0) / 1000000)) ms with token init)"
}

meta() { sed -n "s/^$2=//p" "$CACHE/n$1/meta"; }

# --- timing -------------------------------------------------------------------
# measure NAME CMD: runs CMD (a shell command) MIN..MAX times, output to
# /dev/null; sets MEDIAN_MS (wall clock), RUNS and CPU_MS (mean user + system
# time, which other load on the machine disturbs less). The checked warm-up
# runs before (warmup).
measure() {
	local name=$1 cmd=$2
	step "bench:   timing $name ..."
	if [ -n "$HYPERFINE" ]; then
		"$HYPERFINE" --style none --warmup 0 --min-runs "$MIN_RUNS" --max-runs "$MAX_RUNS" \
			--ignore-failure --export-json "$WORK/hf.json" "$cmd" >"$WORK/hf.log" 2>&1 ||
			{ cat "$WORK/hf.log" >&2; die "hyperfine failed on: $cmd"; }
		read -r MEDIAN_MS RUNS CPU_MS < <("$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print("%.1f %d %.1f" % (r["median"] * 1000, len(r["times"]), (r["user"] + r["system"]) * 1000))' "$WORK/hf.json")
	else
		local times=() cpus=() t0 t1 spent=0
		while [ ${#times[@]} -lt "$MIN_RUNS" ] ||
			{ [ ${#times[@]} -lt "$MAX_RUNS" ] && [ $spent -lt 3000000000 ]; }; do
			t0=$(date +%s%N)
			/usr/bin/time -f '%U %S' -o "$WORK/cpu.txt" bash -c "$cmd" >/dev/null 2>&1 || true
			t1=$(date +%s%N)
			times+=($((t1 - t0)))
			cpus+=("$(awk '{ printf "%.0f", ($1 + $2) * 1000 }' "$WORK/cpu.txt")")
			spent=$((spent + t1 - t0))
		done
		RUNS=${#times[@]}
		CPU_MS=$(printf '%s\n' "${cpus[@]}" | awk '{ s += $1 } END { printf "%.1f", s / NR }')
		MEDIAN_MS=$(printf '%s\n' "${times[@]}" | sort -n | awk '
			{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			                    printf "%.1f", m / 1e6 }')
	fi
	# The 1-minute load average right after each measurement: this process
	# accounts for about 1; more means something else competed for the CPUs.
	LOAD_MAX=$(awk -v m="${LOAD_MAX:-0}" '{ print ($1 > m) ? $1 : m }' /proc/loadavg)
	endstep
}

# warmup NAME CMD: the warm-up run, checked. Sets WARM_RC, WARM_WHY (the
# start of stderr, or of stdout) and WARM_LINES (lines of output matching
# WARM_COUNT, an extended regex, when set).
warmup() {
	step "bench:   warm-up $1 ..."
	set +e
	bash -c "$2" >"$WORK/warm.out" 2>"$WORK/warm.err"
	WARM_RC=$?
	set -e
	WARM_LINES=
	[ -z "${WARM_COUNT:-}" ] || WARM_LINES=$(grep -cE "$WARM_COUNT" "$WORK/warm.out" || true)
	# what a note about a failed warm-up quotes: stderr, else the output's start
	WARM_WHY=
	if [ "$WARM_RC" -ne 0 ]; then
		WARM_WHY=$(head -c 300 "$WORK/warm.err" | tr -cd '[:print:]\n' | tr '\n' ' ')
		[ -n "$WARM_WHY" ] ||
			WARM_WHY=$(head -n 3 "$WORK/warm.out" | cut -c1-200 | tr -cd '[:print:]\n' | tr '\n' ' ')
	fi
	rm -f "$WORK/warm.out"
	endstep
}

# peak_rss CMD: peak resident set size in MiB of one run (/usr/bin/time -v).
peak_rss() {
	/usr/bin/time -v -o "$WORK/time.txt" bash -c "exec $1" >/dev/null 2>&1 || true
	awk -F: '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$WORK/time.txt"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
per_obj() { awk -v ms="$1" -v n="$2" 'BEGIN { printf "%.1f", ms * 1000 / n }'; }

# --- machine and AES floor ----------------------------------------------------
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
MEM=$(free -g | awk '/^Mem:/ { print $2 " GiB" }')
say "bench: $(nproc) CPUs ($CPU), $MEM RAM, $(uname -sr), $(openssl version | cut -d' ' -f1-2)"
say "bench: timing with $TIMER; $MIN_RUNS..$MAX_RUNS runs after a checked warm-up"
aes_bps() { # bytes per second of AES-256-CBC decryption in chunks of $1 bytes
	openssl speed -elapsed -seconds 1 -bytes "$1" -decrypt -evp aes-256-cbc -mr 2>/dev/null |
		awk -F: '/^\+F:/ { print $4 }'
}
AES_BULK=
if $RUN_READ; then
	step "bench: openssl speed (AES-256-CBC decryption) ..."
	AES_BULK=$(aes_bps 16384)
	AES_SMALL=$(aes_bps 64)
	endstep
	say "bench: AES-256-CBC decryption: $(awk -v b="$AES_BULK" 'BEGIN { printf "%.0f", b / 1e6 }') MB/s in 16 KiB chunks, $(awk -v b="$AES_SMALL" 'BEGIN { printf "%.0f", b / 1e6 }') MB/s in 64-byte chunks"
fi

VERIFY=false
if "$TOKENFS" ${VERIFY_CMD%% *} --help >/dev/null 2>&1; then
	VERIFY=true
fi

# --- stores -------------------------------------------------------------------
for n in $STORE_SIZES; do make_store "$n"; done

# --- runs ---------------------------------------------------------------------
P11_MATCH='^((Private Key|Public Key|Secret Key|Certificate) Object|Data object)'
# One row per measurement, tab-separated:
#   n what ms runs cpu_ms base_name base_ms cat_ms floor_ms rss_mib
ROWS=$WORK/rows.tsv
: >"$ROWS"
row() { local IFS=$'\t'; echo "$*" >>"$ROWS"; }
NOTES=()
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)

for n in $READ_SIZES; do
	cnt=${n#aes} # objects in the store
	dir=$CACHE/n$n
	store=$dir/tokens
	conf_for "$dir/softhsm-tokens" "$dir/softhsm2.conf"
	export SOFTHSM2_CONF=$dir/softhsm2.conf
	say "bench: N=$n ($(meta "$n" files) files, $(meta "$n" bytes) bytes; generated in $(meta "$n" generation_ms) ms)"

	# The floor: reading the bytes. Also warms the page cache for what follows.
	cat_cmd="find '$store' -type f -name '*.object' -exec cat {} +"
	warmup "cat" "$cat_cmd"
	measure "cat of every .object" "$cat_cmd"
	cat_ms=$MEDIAN_MS
	row "$n" cat "$cat_ms" "$RUNS" "$CPU_MS" - - - - -

	# dump without a PIN vs softhsm2-dump-file on every .object
	cmd="'$TOKENFS' dump '$store'"
	WARM_COUNT='' warmup "tokenfs dump" "$cmd"
	[ "$WARM_RC" -eq 0 ] || NOTES+=("N=$n: tokenfs dump exited $WARM_RC: $WARM_WHY")
	measure "tokenfs dump" "$cmd"
	ms=$MEDIAN_MS runs=$RUNS cpu=$CPU_MS
	rss=$(peak_rss "$cmd")
	base_ms=-
	if [ "$BASELINES" = 1 ]; then
		# No separate warm-up here: the page cache is warm from the runs
		# above over the same files, and one run starts softhsm2-dump-file
		# N+1 times (a 20,000-object run takes about a minute).
		bcmd="find '$store' -type f -name '*.object' -exec softhsm2-dump-file {} \\;"
		measure "softhsm2-dump-file on every .object" "$bcmd"
		base_ms=$MEDIAN_MS
	fi
	row "$n" dump "$ms" "$runs" "$cpu" softhsm2-dump-file "$base_ms" "$cat_ms" - "$rss"

	# everything decrypted vs pkcs11-tool --list-objects --login
	floor_ms=$(awk -v b="$(meta "$n" encrypted_bytes)" -v s="$AES_BULK" 'BEGIN { printf "%.2f", b / s * 1000 }')
	cmd="'$TOKENFS' dump --user-pin env:BENCH_PIN --format json '$store'"
	WARM_COUNT='"uuid":' warmup "tokenfs dump --user-pin --format json" "$cmd"
	[ "$WARM_RC" -eq 0 ] || NOTES+=("N=$n: tokenfs dump --user-pin exited $WARM_RC: $WARM_WHY")
	[ "$WARM_LINES" = "$cnt" ] || NOTES+=("N=$n: tokenfs dump --format json showed $WARM_LINES objects, not $cnt")
	measure "tokenfs dump --user-pin --format json" "$cmd"
	ms=$MEDIAN_MS runs=$RUNS cpu=$CPU_MS
	rss=$(peak_rss "$cmd")
	dump_json_ms=$ms
	base_ms=-
	if [ "$BASELINES" = 1 ]; then
		bcmd="pkcs11-tool --module '$MODULE' --token-label $LABEL --login --pin '$BENCH_PIN' --list-objects"
		WARM_COUNT=$P11_MATCH warmup "pkcs11-tool --list-objects --login" "$bcmd"
		[ "$WARM_RC" -eq 0 ] && [ "$WARM_LINES" = "$cnt" ] ||
			NOTES+=("N=$n: pkcs11-tool exited $WARM_RC and listed $WARM_LINES objects, not $cnt")
		measure "pkcs11-tool --list-objects --login" "$bcmd"
		base_ms=$MEDIAN_MS
	fi
	row "$n" dump-pin "$ms" "$runs" "$cpu" pkcs11-tool "$base_ms" "$cat_ms" "$floor_ms" "$rss"

	# verify-integrity with the PIN, compared with the decrypting dump
	if $VERIFY; then
		cmd="'$TOKENFS' $VERIFY_CMD '$store'"
		WARM_COUNT='' warmup "tokenfs ${VERIFY_CMD%% *}" "$cmd"
		[ "$WARM_RC" -eq 0 ] || NOTES+=("N=$n: tokenfs ${VERIFY_CMD%% *} exited $WARM_RC: $WARM_WHY")
		if [ "$WARM_RC" -ge 2 ]; then
			row "$n" verify - - - "dump --user-pin" "$dump_json_ms" "$cat_ms" "$floor_ms" -
		else
			measure "tokenfs ${VERIFY_CMD%% *}" "$cmd"
			ms=$MEDIAN_MS runs=$RUNS cpu=$CPU_MS
			rss=$(peak_rss "$cmd")
			row "$n" verify "$ms" "$runs" "$cpu" "dump --user-pin" "$dump_json_ms" "$cat_ms" "$floor_ms" "$rss"
		fi
		# ... and writing a seal (to a scratch file: the store stays as made)
		cmd="'$TOKENFS' $VERIFY_CMD --seal --seal-file '$WORK/bench.seal' '$store'"
		WARM_COUNT='' warmup "tokenfs ${VERIFY_CMD%% *} --seal" "$cmd"
		if [ "$WARM_RC" -ge 2 ]; then
			NOTES+=("N=$n: tokenfs ${VERIFY_CMD%% *} --seal exited $WARM_RC: $WARM_WHY")
			row "$n" verify-seal - - - "dump --user-pin" "$dump_json_ms" "$cat_ms" "$floor_ms" -
		else
			measure "tokenfs ${VERIFY_CMD%% *} --seal" "$cmd"
			ms=$MEDIAN_MS runs=$RUNS cpu=$CPU_MS
			rss=$(peak_rss "$cmd")
			row "$n" verify-seal "$ms" "$runs" "$cpu" "dump --user-pin" "$dump_json_ms" "$cat_ms" "$floor_ms" "$rss"
		fi
		rm -f "$WORK/bench.seal"
	fi
done
unset SOFTHSM2_CONF

# --- migrate vs the write floor -------------------------------------------------
# timed CMD: one run of CMD (a shell command; output to $WORK/run.out and
# $WORK/run.err). Sets RUN_RC, RUN_MS (wall clock), RUN_CPU (user + system
# ms) and RUN_RSS (peak resident MiB of the largest process, /usr/bin/time %M).
timed() {
	local t0 t1
	set +e
	t0=$(date +%s%N)
	/usr/bin/time -f '%U %S %M' -o "$WORK/run.time" bash -c "$1" >"$WORK/run.out" 2>"$WORK/run.err"
	RUN_RC=$?
	t1=$(date +%s%N)
	set -e
	RUN_MS=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.1f", d / 1e6 }')
	# the last line: time puts "Command exited with non-zero status" first
	read -r RUN_CPU RUN_RSS < <(awk 'END { printf "%.0f %.1f\n", ($1 + $2) * 1000, $3 / 1024 }' "$WORK/run.time")
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
	printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
smallest() { printf '%s\n' "$@" | sort -n | head -n 1; }
largest() { printf '%s\n' "$@" | sort -n | tail -n 1; }
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.1f", s / NR }'; }
MIGRATE_LABEL="tokenfs $(cut -d' ' -f1-3 <<<"$MIGRATE_CMD") (CBC -> GCM)"
MIG_MS='' MIG_BEST='' FLOOR_MS='' FLOOR_BEST='' MIG_RSS=''

if $RUN_MIGRATE; then
	n=$MIGRATE_N
	store=$CACHE/n$n/tokens
	SCRATCH=$(mktemp -d "${BENCH_MIGRATE_DIR:-$CACHE}/tokenfs-migrate.XXXXXX")
	FS=$(findmnt -no FSTYPE -T "$SCRATCH" 2>/dev/null || stat -f -c %T "$SCRATCH")
	FS_DEV=$(df -P "$SCRATCH" | awk 'NR==2 { print $1 }')
	say "bench: migrate N=$n ($(meta "$n" files) files, $(meta "$n" bytes) bytes) on $FS ($FS_DEV), $MIGRATE_RUNS runs each after a checked warm-up"
	if [ "$FS" = ext4 ] && ! compgen -G "/proc/fs/jbd2/${FS_DEV##*/}-*" >/dev/null; then
		NOTES+=("$FS_DEV is ext4 without a journal: creating a file there skips every inode freed in the last 60 s (fs/ext4/ialloc.c, recently_deleted), so files deleted by other processes slow down both migrate and cp -a, and make them noisy")
	fi
	# migrate [json] [again]: one timed run of migrate on a fresh copy of
	# the CBC store ($SCRATCH/mK), made and flushed before the timed part
	# (with "again": on the copy the last run left). migrate refuses while
	# any process has SoftHSM loaded (someone else's pkcs11-tool on a shared
	# machine), before it writes anything: such a run is not counted, and is
	# tried again a little later on the same copy.
	SOFTHSM_WAITS=0 COPIES=0
	migrate() {
		local tries=0 fmt=
		[ "${1:-}" != json ] || { fmt="--format json"; shift; }
		if [ "${1:-}" != again ]; then
			COPIES=$((COPIES + 1))
			cp -a "$store" "$SCRATCH/m$COPIES"
			sync
		fi
		while :; do
			timed "exec '$TOKENFS' $MIGRATE_CMD $fmt '$SCRATCH/m$COPIES'"
			[ "$RUN_RC" -eq 2 ] && grep -q 'has SoftHSM loaded' "$WORK/run.err" || return 0
			tries=$((tries + 1)) SOFTHSM_WAITS=$((SOFTHSM_WAITS + 1))
			[ $tries -lt 30 ] || return 0
			sleep 2
		done
	}

	# Warm-up (also warms the page cache), checked: every object seen and
	# every value re-encrypted; a second run finds nothing left to do.
	step "bench:   warm-up migrate ..."
	check_json() { # check_json KEY=VALUE|KEY>VALUE...: what does not hold of run.out's token
		"$PY" - "$WORK/run.out" "$@" 2>&1 <<-'EOF'
			import json, sys
			t = json.load(open(sys.argv[1]))["tokens"][0]
			bad = []
			for c in sys.argv[2:]:
			    k, op, v = c.partition(">") if ">" in c else c.partition("=")
			    if not (t[k] > int(v) if op == ">" else str(t[k]) == v):
			        bad.append("%s is %s" % (k, t[k]))
			print(", ".join(bad))
		EOF
	}
	migrate json
	warm_bad=
	if [ "$RUN_RC" -ne 0 ]; then
		warm_bad="exited $RUN_RC: $(head -c 300 "$WORK/run.err" | tr -cd '[:print:]\n' | tr '\n' ' ')"
	else
		warm_bad=$(check_json objects=$n values_already=0 'values_reencrypted>0' 'objects_rewritten>0')
		if [ -z "$warm_bad" ]; then
			migrate json again
			[ "$RUN_RC" -eq 0 ] || warm_bad="a second run exited $RUN_RC"
			[ -n "$warm_bad" ] || warm_bad=$(check_json values_reencrypted=0 files_written=0)
			[ -z "$warm_bad" ] || warm_bad="a second run found more to do: $warm_bad"
		fi
	fi
	endstep

	if [ -n "$warm_bad" ]; then
		NOTES+=("N=$n: migrate's warm-up failed, not timed: $warm_bad")
		row "$n" migrate - - - "cp -a + sync" - - - -
	else
		f_ms=() f_cpu=() m_ms=() m_cpu=() m_rss=()
		for i in $(seq 1 "$MIGRATE_RUNS"); do
			# floor and migrate alternate, so a change of load hits both
			step "bench:   timing cp -a + sync ($i/$MIGRATE_RUNS) ..."
			sync
			timed "cp -a '$store' '$SCRATCH/f$i' && sync"
			[ "$RUN_RC" -eq 0 ] || die "cp -a + sync failed: $(head -c 300 "$WORK/run.err")"
			f_ms+=("$RUN_MS") f_cpu+=("$RUN_CPU")
			step "bench:   timing migrate ($i/$MIGRATE_RUNS) ..."
			migrate
			[ "$RUN_RC" -eq 0 ] || die "migrate exited $RUN_RC: $(head -c 300 "$WORK/run.err")"
			m_ms+=("$RUN_MS") m_cpu+=("$RUN_CPU") m_rss+=("$RUN_RSS")
		done
		LOAD_MAX=$(awk -v m="${LOAD_MAX:-0}" '{ print ($1 > m) ? $1 : m }' /proc/loadavg)
		endstep
		[ $SOFTHSM_WAITS -eq 0 ] ||
			NOTES+=("N=$n: migrate refused to run $SOFTHSM_WAITS time(s) because another process had SoftHSM loaded; those runs were repeated, not counted")
		FLOOR_MS=$(median "${f_ms[@]}") FLOOR_BEST=$(smallest "${f_ms[@]}")
		MIG_MS=$(median "${m_ms[@]}") MIG_BEST=$(smallest "${m_ms[@]}")
		MIG_RSS=$(largest "${m_rss[@]}")
		cat_ms=$(awk -F'\t' -v n="$n" '$1 == n && $2 == "cat" { print $3 }' "$ROWS")
		row "$n" copy "$FLOOR_MS" "$MIGRATE_RUNS" "$(mean "${f_cpu[@]}")" - - - - -
		row "$n" migrate "$MIG_MS" "$MIGRATE_RUNS" "$(mean "${m_cpu[@]}")" "cp -a + sync" \
			"$FLOOR_MS" "${cat_ms:--}" - "$MIG_RSS"
		say "bench:   migrate ${m_ms[*]} ms (median $MIG_MS), cp -a + sync ${f_ms[*]} ms (median $FLOOR_MS): $(ratio "$MIG_MS" "$FLOOR_MS")x the floor; peak RSS $MIG_RSS MiB"
	fi
fi
# --- backup vs tar czf -----------------------------------------------------------
# Both archive the same token directory into a gzip'd tar on the same file
# system, alternating; tokenfs reads every file under SoftHSM's read lock at
# least twice (until two reads agree) and fsyncs the archive, tar does not.
BK_MS='' BK_BEST='' TAR_MS='' TAR_BEST='' BK_RSS=''
if $RUN_BACKUP; then
	n=$BACKUP_N
	store=$CACHE/n$n/tokens
	bdir=$(mktemp -d "$CACHE/tokenfs-backup.XXXXXX")
	say "bench: backup N=$n ($(meta "$n" files) files, $(meta "$n" bytes) bytes), $BACKUP_RUNS runs each after a checked warm-up"
	step "bench:   warm-up backup ..."
	timed "'$TOKENFS' backup --out '$bdir/w.tar.gz' '$store'"
	[ "$RUN_RC" -eq 0 ] || die "backup exited $RUN_RC: $(head -c 300 "$WORK/run.err")"
	mkdir "$bdir/x"
	tar xzf "$bdir/w.tar.gz" -C "$bdir/x"
	diff -r "$store" "$bdir/x" >/dev/null || die "backup: the archive does not unpack to the store"
	rm -rf "$bdir/x" "$bdir/w.tar.gz"
	t_ms=() t_cpu=() b_ms=() b_cpu=() b_rss=()
	for i in $(seq 1 "$BACKUP_RUNS"); do
		step "bench:   timing tar czf ($i/$BACKUP_RUNS) ..."
		timed "tar czf '$bdir/t.tar.gz' -C '$store' ."
		[ "$RUN_RC" -eq 0 ] || die "tar czf failed: $(head -c 300 "$WORK/run.err")"
		t_ms+=("$RUN_MS") t_cpu+=("$RUN_CPU")
		rm -f "$bdir/t.tar.gz"
		step "bench:   timing backup ($i/$BACKUP_RUNS) ..."
		timed "'$TOKENFS' backup --out '$bdir/b.tar.gz' '$store'"
		[ "$RUN_RC" -eq 0 ] || die "backup exited $RUN_RC: $(head -c 300 "$WORK/run.err")"
		b_ms+=("$RUN_MS") b_cpu+=("$RUN_CPU") b_rss+=("$RUN_RSS")
		rm -f "$bdir/b.tar.gz"
	done
	rm -rf "$bdir"
	LOAD_MAX=$(awk -v m="${LOAD_MAX:-0}" '{ print ($1 > m) ? $1 : m }' /proc/loadavg)
	endstep
	TAR_MS=$(median "${t_ms[@]}") TAR_BEST=$(smallest "${t_ms[@]}")
	BK_MS=$(median "${b_ms[@]}") BK_BEST=$(smallest "${b_ms[@]}") BK_RSS=$(largest "${b_rss[@]}")
	row "$n" tarczf "$TAR_MS" "$BACKUP_RUNS" "$(mean "${t_cpu[@]}")" - - - - -
	row "$n" backup "$BK_MS" "$BACKUP_RUNS" "$(mean "${b_cpu[@]}")" "tar czf" "$TAR_MS" - - "$BK_RSS"
	say "bench:   backup ${b_ms[*]} ms (median $BK_MS), tar czf ${t_ms[*]} ms (median $TAR_MS): $(ratio "$BK_MS" "$TAR_MS")x; peak RSS $BK_RSS MiB"
fi
# --- archive: verify-integrity of a tar.gz of the store, and of the directory --
ARC_MS='' ARC_DIR_MS='' ARC_RSS=''
if $RUN_ARCHIVE; then
	n=$ARCHIVE_N
	store=$CACHE/n$n/tokens
	tar -czf "$WORK/store.tar.gz" -C "$CACHE/n$n" tokens
	say "bench: archive N=$n: verify-integrity of a $(stat -c %s "$WORK/store.tar.gz")-byte tar.gz (tar czf) of the store, and of the directory"
	dcmd="'$TOKENFS' $VERIFY_CMD '$store'"
	acmd="'$TOKENFS' $VERIFY_CMD '$WORK/store.tar.gz'"
	WARM_COUNT='' warmup "verify-integrity (directory)" "$dcmd"
	[ "$WARM_RC" -eq 0 ] || NOTES+=("N=$n: verify-integrity of the directory exited $WARM_RC: $WARM_WHY")
	WARM_COUNT='' warmup "verify-integrity (tar.gz)" "$acmd"
	[ "$WARM_RC" -eq 0 ] || NOTES+=("N=$n: verify-integrity of the tar.gz exited $WARM_RC: $WARM_WHY")
	measure "verify-integrity (directory)" "$dcmd"
	ARC_DIR_MS=$MEDIAN_MS
	row "$n" verify-dir "$MEDIAN_MS" "$RUNS" "$CPU_MS" - - - - "$(peak_rss "$dcmd")"
	measure "verify-integrity (tar.gz)" "$acmd"
	ARC_MS=$MEDIAN_MS
	ARC_RSS=$(peak_rss "$acmd")
	row "$n" verify-archive "$MEDIAN_MS" "$RUNS" "$CPU_MS" "verify on the directory" \
		"$ARC_DIR_MS" - - "$ARC_RSS"
	say "bench:   tar.gz $ARC_MS ms, directory $ARC_DIR_MS ms: $(ratio "$ARC_MS" "$ARC_DIR_MS")x; peak RSS $ARC_RSS MiB"
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
# --- pin-audit: guesses/s against the SHA-256 compression limit ----------------
PINAUDIT_OUT=
if $RUN_PINAUDIT; then
	[ -x "$BUILD/tools/tfs_pin_audit_bench" ] || die "no $BUILD/tools/tfs_pin_audit_bench: build first"
	step "bench: pin-audit (guesses/s vs the SHA-256 compression rate) ..."
	PINAUDIT_OUT=$("$BUILD/tools/tfs_pin_audit_bench" "${BENCH_PINAUDIT_SECONDS:-6}") ||
		die "tfs_pin_audit_bench failed"
	endstep
fi

T_SPENT=$(($(date +%s) - T_START))

# --- report -------------------------------------------------------------------
label_of() {
	case $1 in
	cat) echo "cat every .object (floor)" ;;
	dump) echo "tokenfs dump" ;;
	dump-pin) echo "tokenfs dump --user-pin --format json" ;;
	verify) echo "tokenfs ${VERIFY_CMD%% *} --user-pin" ;;
	verify-seal) echo "tokenfs ${VERIFY_CMD%% *} --user-pin --seal" ;;
	copy) echo "cp -a of the token directory + sync (write floor)" ;;
	migrate) echo "$MIGRATE_LABEL" ;;
	tarczf) echo "tar czf of the token directory (backup baseline)" ;;
	backup) echo "tokenfs backup --out FILE.tar.gz" ;;
	verify-dir) echo "tokenfs ${VERIFY_CMD%% *} --user-pin, the directory" ;;
	verify-archive) echo "tokenfs ${VERIFY_CMD%% *} --user-pin, a tar.gz of it" ;;
	esac
}
REPORT=$CACHE/latest.md
{
	echo "Machine: $(nproc) CPUs ($CPU), $MEM RAM, $(uname -sr); SoftHSM $(softhsm2-util --version), $(openssl version | cut -d' ' -f1-2); $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "tokenfs: $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown), built in $BUILD"
	echo "Timing: $TIMER, $MIN_RUNS..$MAX_RUNS runs after one checked warm-up; runs took ${T_SPENT} s; load average before $LOAD_BEFORE, highest after a measurement ${LOAD_MAX:-?}, after $LOAD_AFTER"
	printf 'Stores (generation through SoftHSM, cached):'
	for n in $STORE_SIZES; do printf ' N=%s %s ms;' "$n" "$(meta "$n" generation_ms)"; done
	echo
	echo
	echo "Medians of wall-clock time in ms; CPU = mean user + system ms; speed-up = baseline / tokenfs;"
	if [ -n "$AES_BULK" ]; then
		echo "x cat = tokenfs / cat of the same files; AES floor = the store's encrypted bytes at openssl speed's"
		echo "AES-256-CBC rate ($(awk -v b="$AES_BULK" 'BEGIN { printf "%.0f", b / 1e6 }') MB/s); for verify-integrity, speed-up is verify / decrypting dump (target <= 2)."
	fi
	$RUN_ARCHIVE && echo "For the tar.gz, speed-up is verify of the tar.gz / verify of the directory (read in memory, never unpacked)."
	$RUN_MIGRATE && echo "For migrate, speed-up is migrate / the write floor (target <= 2), each run on a fresh copy: median of $MIGRATE_RUNS."
	echo
	echo "| N | command | median ms | CPU ms | runs | baseline | baseline ms | speed-up | x cat | us/object | AES floor ms | peak RSS MiB |"
	echo "|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
	while IFS=$'\t' read -r n what ms runs cpu bname bms cms fms rss; do
		if [ "$what" = verify ] || [ "$what" = verify-seal ]; then
			speed="$(ratio "$ms" "$bms") of dump"
		elif [ "$what" = migrate ]; then
			speed="$(ratio "$ms" "$bms") of floor"
		elif [ "$what" = verify-archive ]; then
			speed="$(ratio "$ms" "$bms") of directory"
		elif [ "$bms" = - ] || [ "$ms" = - ]; then
			speed=-
		else
			speed="$(ratio "$bms" "$ms")x"
		fi
		xcat=-
		[ "$what" = cat ] || [ "$ms" = - ] || [ "$cms" = - ] || xcat=$(ratio "$ms" "$cms")
		uso=-
		[ "$ms" = - ] || uso=$(per_obj "$ms" "${n#aes}")
		echo "| $n | $(label_of "$what") | $ms | $cpu | $runs | $bname | $bms | $speed | $xcat | $uso | $fms | $rss |"
	done <"$ROWS"
	$VERIFY || ! $RUN_READ || {
		echo
		echo "verify-integrity: skipped: \`tokenfs ${VERIFY_CMD%% *} --help\` fails (the command does not exist yet); the row appears once it does."
	}

	[ -z "$READ_SIZES" ] || {
	echo
	echo "Growth: us per object (median wall time / N); linear cost keeps a row flat."
	echo
	echo "| command | $(for n in $SIZES; do printf 'N=%s | ' "$n"; done)largest / smallest N |"
	echo "|---|$(for _ in $SIZES; do printf -- '---:|'; done)---:|"
	for what in cat dump dump-pin verify verify-seal; do
		line=$(awk -F'\t' -v w="$what" '$1 ~ /^[0-9]+$/ && $2 == w && $3 != "-" { printf "%s %.1f\n", $1, $3 * 1000 / $1 }' "$ROWS")
		[ -n "$line" ] || continue
		first=$(head -n 1 <<<"$line" | cut -d' ' -f2)
		last=$(tail -n 1 <<<"$line" | cut -d' ' -f2)
		echo "| $(label_of "$what") | $(cut -d' ' -f2 <<<"$line" | paste -sd'|' | sed 's/|/ | /g') | $(ratio "$last" "$first") |"
	done
	line=$(awk -F'\t' '$1 ~ /^[0-9]+$/ && $2 == "dump" && $7 != "-" { printf "%s %.1f\n", $1, $7 * 1000 / $1 }' "$ROWS")
	[ -z "$line" ] || echo "| softhsm2-dump-file (baseline) | $(cut -d' ' -f2 <<<"$line" | paste -sd'|' | sed 's/|/ | /g') | $(ratio "$(tail -n 1 <<<"$line" | cut -d' ' -f2)" "$(head -n 1 <<<"$line" | cut -d' ' -f2)") |"
	line=$(awk -F'\t' '$1 ~ /^[0-9]+$/ && $2 == "dump-pin" && $7 != "-" { printf "%s %.1f\n", $1, $7 * 1000 / $1 }' "$ROWS")
	[ -z "$line" ] || echo "| pkcs11-tool (baseline) | $(cut -d' ' -f2 <<<"$line" | paste -sd'|' | sed 's/|/ | /g') | $(ratio "$(tail -n 1 <<<"$line" | cut -d' ' -f2)" "$(head -n 1 <<<"$line" | cut -d' ' -f2)") |"
	}

	echo
	if $RUN_READ; then
		echo "Targets (issue): N=$TARGET_N, warm page cache; memory at N=$RSS_N"
	else
		echo "Targets (issue):"
	fi
	echo
	if $RUN_READ; then
	t=$(awk -F'\t' -v n=$TARGET_N '$1 == n && $2 == "dump-pin"' "$ROWS")
	if [ -n "$t" ]; then
		IFS=$'\t' read -r _ _ ms _ _ _ bms cms _ _ <<<"$t"
		if [ "$bms" != - ]; then
			s=$(ratio "$bms" "$ms")
			ok=$(awk -v s="$s" 'BEGIN { print (s >= 20) ? "MET" : "NOT MET" }')
			echo "- decrypting dump >= 20x faster than pkcs11-tool --list-objects --login: ${s}x: $ok"
		fi
		c=$(ratio "$ms" "$cms")
		ok=$(awk -v c="$c" 'BEGIN { print (c <= 3) ? "MET" : "NOT MET" }')
		echo "- decrypting dump within 3x of cat: ${c}x: $ok"
	else
		echo "- N=$TARGET_N not in BENCH_SIZES: speed targets not evaluated"
	fi
	# Issue 11 (item 13), side by side in this run: wall and CPU time over cat's.
	vs_cat() { # vs_cat WHAT KEY LIMIT TEXT
		local t ms cpu cms ccpu
		t=$(awk -F'\t' -v n="$2" -v w="$1" '$1 == n && $2 == w' "$ROWS")
		[ -n "$t" ] || { echo "- $4, N=$2: not measured"; return; }
		IFS=$'\t' read -r _ _ ms _ cpu _ _ cms _ _ <<<"$t"
		ccpu=$(awk -F'\t' -v n="$2" '$1 == n && $2 == "cat" { print $5 }' "$ROWS")
		local c ok
		c=$(ratio "$ms" "$cms")
		ok=$(awk -v c="$c" -v l="$3" 'BEGIN { print (c <= l) ? "MET" : "NOT MET" }')
		echo "- $4 within ${3}x of cat, N=$2: ${c}x wall ($ms vs $cms ms), $(ratio "$cpu" "$ccpu")x CPU: $ok"
	}
	vs_cat dump-pin "$TARGET_N" 1.5 "decrypting JSON dump"
	[ "$AES_N" = 0 ] || vs_cat dump-pin "aes$AES_N" 1.5 "decrypting JSON dump"
	vs_cat dump "$TARGET_N" 1.2 "plain dump"
	[ "$AES_N" = 0 ] || vs_cat dump "aes$AES_N" 1.2 "plain dump"
	t=$(awk -F'\t' -v n=$TARGET_N '$1 == n && $2 == "verify"' "$ROWS")
	if [ -n "$t" ]; then
		IFS=$'\t' read -r _ _ ms _ _ _ bms _ _ _ <<<"$t"
		if [ "$ms" = - ]; then
			echo "- verify-integrity within 2x of the decrypting dump: NOT MET (the command failed)"
		else
			v=$(ratio "$ms" "$bms")
			ok=$(awk -v v="$v" 'BEGIN { print (v <= 2) ? "MET" : "NOT MET" }')
			echo "- verify-integrity within 2x of the decrypting dump: ${v}x: $ok"
		fi
	elif $VERIFY; then
		echo "- verify-integrity within 2x of the decrypting dump: N=$TARGET_N not measured"
	else
		echo "- verify-integrity within 2x of the decrypting dump: not measured (command missing)"
	fi
	t=$(awk -F'\t' -v n=$RSS_N '$1 == n && $10 != "-" { if ($10 + 0 > m + 0) { m = $10; w = $2 } } END { if (m != "") print m, w }' "$ROWS")
	if [ -n "$t" ]; then
		read -r m w <<<"$t"
		ok=$(awk -v m="$m" 'BEGIN { print (m < 64) ? "MET" : "NOT MET" }')
		echo "- peak memory < 64 MB at N=$RSS_N: largest tokenfs peak RSS ${m} MiB ($(label_of "$w")): $ok"
	fi
	fi # RUN_READ
	if $RUN_ARCHIVE; then
		if [ -z "$ARC_MS" ]; then
			echo "- verify-integrity of a tar.gz, N=$ARCHIVE_N: not measured"
		else
			echo "- verify-integrity of a tar.gz of the store, N=$ARCHIVE_N: $(ratio "$ARC_MS" "$ARC_DIR_MS")x the time on the directory ($ARC_MS vs $ARC_DIR_MS ms), peak RSS $ARC_RSS MiB (the issue states no target)"
		fi
	fi
	if $RUN_MIGRATE; then
		if [ -z "$MIG_MS" ]; then
			echo "- migrate within 2x of the write floor (cp -a + sync), N=$MIGRATE_N: NOT MET (migrate failed)"
		else
			v=$(ratio "$MIG_MS" "$FLOOR_MS")
			ok=$(awk -v v="$v" 'BEGIN { print (v <= 2) ? "MET" : "NOT MET" }')
			echo "- migrate within 2x of the write floor (cp -a + sync), N=$MIGRATE_N: ${v}x (median $MIG_MS vs $FLOOR_MS ms; best $MIG_BEST vs $FLOOR_BEST ms, $(ratio "$MIG_BEST" "$FLOOR_BEST")x): $ok"
			ok=$(awk -v m="$MIG_RSS" 'BEGIN { print (m < 64) ? "MET" : "NOT MET" }')
			echo "- migrate peak memory < 64 MB, N=$MIGRATE_N: ${MIG_RSS} MiB: $ok"
		fi
	fi
	if $RUN_BACKUP; then
		if [ -z "$BK_MS" ]; then
			echo "- backup within 1.5x of tar czf, N=$BACKUP_N: NOT MET (backup failed)"
		else
			v=$(ratio "$BK_MS" "$TAR_MS")
			ok=$(awk -v v="$v" 'BEGIN { print (v <= 1.5) ? "MET" : "NOT MET" }')
			echo "- backup within 1.5x of tar czf, N=$BACKUP_N: ${v}x (median $BK_MS vs $TAR_MS ms; best $BK_BEST vs $TAR_BEST ms, $(ratio "$BK_BEST" "$TAR_BEST")x): $ok"
		fi
	fi
	if $RUN_PINAUDIT; then
		echo
		echo "pin-audit (bench/pin_audit_bench.c; per layout: the raw SHA-256 compression rate"
		echo "of OpenSSL's block function, one chain and two interleaved, and the search's guesses/s;"
		echo "target: per thread >= 90% of rate / KDF rounds):"
		echo
		echo '```'
		printf '%s\n' "$PINAUDIT_OUT"
		echo '```'
	fi
	if awk -v m="${LOAD_MAX:-0}" 'BEGIN { exit !(m > 1.5) }'; then
		NOTES+=("other processes competed for the CPUs (1-minute load average up to $LOAD_MAX during the runs, on $(nproc) CPUs; the benchmark itself accounts for about 1): wall times are noisy, the CPU column is steadier")
	fi
	if [ ${#NOTES[@]} -gt 0 ]; then
		echo
		echo "Notes:"
		for note in "${NOTES[@]}"; do echo "- $note"; done
	fi
} >"$REPORT"

echo
cat "$REPORT"
echo
say "bench: report saved to $REPORT (paste into docs/benchmarks.md)"
