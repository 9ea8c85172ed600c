# The two commands of the README, and a few more. CMake does the building;
# this file only strings the steps together.
#
#   make demo    install missing Debian packages, build, dump the sample store
#   make check   install missing packages, build with sanitizers, run every test
#   make fuzz    build the libFuzzer targets with clang and run each one
#                FUZZ_SECONDS (default 60)
#   make bench   benchmarks against SoftHSM's own tools (see docs/benchmarks.md)

JOBS         ?= $(shell nproc 2>/dev/null || echo 2)
BUILD        ?= build
CHECK_BUILD  ?= build-check
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all deps build demo check fuzz bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	$(BUILD)/tools/tokenfs dump testdata/store

# The test build runs under AddressSanitizer and UndefinedBehaviorSanitizer
# with warnings as errors, so every test doubles as a memory-safety check.
check: deps
	@cmake -S . -B $(CHECK_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTFS_SANITIZE=ON -DTFS_WERROR=ON >/dev/null
	@cmake --build $(CHECK_BUILD) -j$(JOBS)
	@cd $(CHECK_BUILD) && ctest --output-on-failure -j$(JOBS)

fuzz: deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTFS_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS)
	@scripts/run-fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: build
	@bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(CHECK_BUILD) $(FUZZ_BUILD)
