# The two commands of the README, and a few more. CMake does the building;
# this file only strings the steps together.
#
#   make demo    install missing Debian packages, build, dump the sample store
#   make check   install missing packages, build with sanitizers, run every test
#   make fuzz    build the libFuzzer targets with clang and run each one
#                FUZZ_SECONDS (default 60)
#   make bench   benchmarks against SoftHSM's own tools (see docs/benchmarks.md)

# cmake's own make runs would otherwise print "Entering directory" lines.
MAKEFLAGS    += --no-print-directory
JOBS         ?= $(shell nproc 2>/dev/null || echo 2)
BUILD        ?= build
CHECK_BUILD  ?= build-check
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all build demo check fuzz bench clean

all: build

build:
	@scripts/install-deps.sh build
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# The demo builds only the command, quietly (the log is kept for a failure),
# then shows the sample store as a user first sees it: decrypted with its
# PIN, one line per object and key, then the integrity report. The store is
# copied with the modes SoftHSM gives its files (git keeps only 0644), so the
# report shows what the sample holds rather than the checkout's modes. Exit
# status 1 (findings) is the demo working: the sample has a plaintext key.
DEMO_PIN   = user-pin-1
DEMO_STORE = $(BUILD)/demo-store
demo:
	@scripts/install-deps.sh build
	@echo "Building tokenfs in $(BUILD)/ (log: $(BUILD)/build.log) ..."
	@mkdir -p $(BUILD)
	@{ cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo && \
	   cmake --build $(BUILD) -j$(JOBS) --target tokenfs; } >$(BUILD)/build.log 2>&1 \
	  || { cat $(BUILD)/build.log; exit 1; }
	@rm -rf $(DEMO_STORE) && cp -r testdata/store $(DEMO_STORE) && \
	  find $(DEMO_STORE) -type d -exec chmod 0700 {} + && \
	  find $(DEMO_STORE) -type f -exec chmod 0600 {} +
	@echo
	@echo '$$ tokenfs dump --brief --token demo --user-pin env:DEMO_PIN $(DEMO_STORE)'
	@DEMO_PIN=$(DEMO_PIN) $(BUILD)/tools/tokenfs dump --brief --token demo \
	  --user-pin env:DEMO_PIN $(DEMO_STORE); test $$? -le 1
	@echo
	@echo '$$ tokenfs verify-integrity --token demo --user-pin env:DEMO_PIN $(DEMO_STORE)'
	@DEMO_PIN=$(DEMO_PIN) $(BUILD)/tools/tokenfs verify-integrity --token demo \
	  --user-pin env:DEMO_PIN $(DEMO_STORE); test $$? -le 1

# The test build runs under AddressSanitizer and UndefinedBehaviorSanitizer
# with warnings as errors, so every test doubles as a memory-safety check.
check:
	@scripts/install-deps.sh check
	@cmake -S . -B $(CHECK_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTFS_SANITIZE=ON -DTFS_WERROR=ON >/dev/null
	@cmake --build $(CHECK_BUILD) -j$(JOBS)
	@cd $(CHECK_BUILD) && ctest --output-on-failure -j$(JOBS)

fuzz:
	@scripts/install-deps.sh fuzz
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTFS_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS)
	@scripts/run-fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: build
	@scripts/install-deps.sh bench
	@bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(CHECK_BUILD) $(FUZZ_BUILD)
