#!/usr/bin/env bash
# Installs the Debian 12 packages one kind of work needs, and only those that
# are missing, so each make target can call it every time at no cost. Needs
# root (or sudo) only when something is missing.
#
#   scripts/install-deps.sh build   building the library and the command (make demo)
#   scripts/install-deps.sh check   build + the test suite (make check)
#   scripts/install-deps.sh fuzz    build + the libFuzzer toolchain (make fuzz)
#   scripts/install-deps.sh bench   check + the benchmark tools (make bench)
set -euo pipefail

build=(
  cmake make gcc pkg-config
  libssl-dev        # OpenSSL 3: EVP, RAND, CRYPTO_memcmp, OPENSSL_cleanse
  libtasn1-6-dev    # DER decoding
  libtasn1-bin      # asn1Parser, compiles the ASN.1 module at build time
  libjson-c-dev     # JSON output and manifests
  libp11-kit-dev    # the maintained pkcs11.h our name tables are generated from
  libarchive-dev    # archives: read in memory as input, written by backup
  python3           # build-time generators
  scdoc             # the man pages (docs/man/*.scd), generated at build time
)
check=(
  libcmocka-dev
  softhsm2 opensc python3-pykcs11 openssl   # real SoftHSM 2.6.1 to compare with
  python3-cryptography  # the tests' own decoder, independent of libtokenfs
  strace                # kill and I/O-error injection at every system call
  tar gzip xz-utils zstd zip unzip  # archives of a store, as operators make them
  util-linux            # setpriv: a read-only store as an unprivileged user
  jq                    # the JSON examples of docs/json.md, run as written
  abigail-tools         # abidiff: the library's ABI against its baseline
  groff-base man-db     # the man pages must render without warnings
  gnutls-bin            # p11tool: the PKCS#11 URIs dump prints are the ones it prints
)
fuzz=(clang libclang-rt-14-dev)
bench=(time linux-perf valgrind)  # perf and callgrind: the profiles of docs/benchmarks.md

packages=()
for kind in "${@:-check}"; do
  case $kind in
    build) packages+=("${build[@]}") ;;
    check) packages+=("${build[@]}" "${check[@]}") ;;
    fuzz)  packages+=("${build[@]}" "${fuzz[@]}") ;;
    bench) packages+=("${build[@]}" "${check[@]}" "${bench[@]}") ;;
    *) echo "install-deps: unknown kind '$kind' (build, check, fuzz or bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
