# SAM - build, test and run. See README.md for the two commands that matter.
#
#   make            build build/sam (and build/libsam.a)
#   make test       install deps if missing, build, run all tests (plain + ASan/UBSan + fuzz + kernels)
#   make check      run the unit/integration tests of the current build only
#   (test also builds everything with clang: warnings-free on gcc and clang)
#   make san        build the test suite with ASan+UBSan into build/san/
#   make fuzz       build and run the GGUF fuzzer for FUZZ_SECONDS
#   make kernel-check  SIMD kernels vs the portable ones, natively and (arm64 NEON) under qemu
#   make bench      run the benchmarks in bench/ (writes to stdout)
#   make run        install deps if missing, build, and run SAM
#   make format     clang-format every source file

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CPPFLAGS_BASE := -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc -pthread
CPPFLAGS_SAM := $(CPPFLAGS_BASE)
PKGS    := libmicrohttpd jansson sqlite3 libcurl libcrypto
# Headers only: these are opened with dlopen when first used (include/sam/dl.h),
# so commands that neither read images nor speak do not load them
DL_PKGS := espeak-ng tesseract lept
LIBS    := -lm -pthread
ifneq ($(PKGS),)
CPPFLAGS_SAM += $(shell pkg-config --cflags $(PKGS) $(DL_PKGS))
LIBS    += $(shell pkg-config --libs $(PKGS))
endif

LIB_SRC  := $(sort $(wildcard src/*/*.c))
LIB_SRC  := $(filter-out src/cli/main.c src/supervisor/samd.c,$(LIB_SRC))
TEST_SRC := $(sort $(wildcard tests/*/*.c)) tests/runner.c
TEST_SRC := $(filter-out tests/fuzz/% tests/helpers/% tests/kernels/%,$(TEST_SRC))
# Small programs tests start as child processes (fake services and the like)
HELPER_SRC := $(sort $(wildcard tests/helpers/*.c))
HELPER_BIN := $(HELPER_SRC:tests/helpers/%.c=$(BUILD)/test-helpers/%)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
# Data files compiled into libsam as const char arrays (scripts/embed.sh)
GEN_SRC  := $(BUILD)/gen/curriculum_data.c
LIB_OBJ  += $(GEN_SRC:%.c=%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
DEPS     := $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(HELPER_SRC:%.c=$(BUILD)/%.d) $(BUILD)/src/cli/main.d $(BUILD)/src/supervisor/samd.d

.PHONY: all test check san fuzz kernel-check bench run deps deps-test format clean
all: $(BUILD)/sam $(BUILD)/sam-supervise $(BUILD)/sam-tests $(HELPER_BIN)

# `make V=1` shows the full command lines
ifeq ($(V),1)
Q :=
else
Q := @
endif

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS_SAM) $(CFLAGS) $(WARN) -MMD -MP -c $< -o $@

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS_SAM) -Itests $(CFLAGS) $(WARN) -MMD -MP -c $< -o $@

$(BUILD)/gen/curriculum_data.c: share/curriculum.jsonl scripts/embed.sh
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GEN     $@")
	$(Q)scripts/embed.sh sam_curriculum_builtin $< > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS_SAM) $(CFLAGS) $(WARN) -MMD -MP -c $< -o $@

$(BUILD)/libsam.a: $(LIB_OBJ)
	@rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)ar rcs $@ $^

$(BUILD)/sam: $(BUILD)/src/cli/main.o $(BUILD)/libsam.a
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

# The supervisor is its own lean binary (behind `sam supervise`): it links only
# what it uses from libsam, and none of the engine, HTTP server or libcurl,
# so it stays small and an engine crash can never take it down.
SUP_LIBS := $(shell pkg-config --libs sqlite3 jansson) -lm -pthread
$(BUILD)/sam-supervise: $(BUILD)/src/supervisor/samd.o $(BUILD)/libsam.a
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) -Wl,--as-needed -o $@ $^ $(SUP_LIBS)

$(BUILD)/test-helpers/%: $(BUILD)/tests/helpers/%.o $(BUILD)/libsam.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

# the vision tests draw their images with leptonica itself
$(BUILD)/sam-tests: $(TEST_OBJ) $(BUILD)/libsam.a
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LIBS) $(shell pkg-config --libs lept)

deps:
	@scripts/deps.sh

deps-test:
	@scripts/deps.sh --test

# The whole suite, as CI runs it: plain build, sanitizer build, bounded fuzzing.
test: deps-test
	$(MAKE) all
	$(MAKE) CC=clang BUILD=build/clang all
	$(MAKE) check
	$(MAKE) san
	$(MAKE) fuzz
	$(MAKE) kernel-check
	@cat build/summary-plain build/san/summary-san build/kernels/summary-* | \
		awk '{p += $$1; f += $$2; s += $$3} END {printf "all stages (gcc, clang build, ASan+UBSan, fuzz, kernels native and arm64) done\n%d passed, %d failed, %d skipped\n", p, f, s}'

check: all
	TEST_SUMMARY=$(BUILD)/summary-plain SAM_BIN=$(abspath $(BUILD)/sam) \
		SAM_TEST_HELPERS=$(abspath $(BUILD)/test-helpers) $(BUILD)/sam-tests $(T)

SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
san:
	$(MAKE) BUILD=build/san CFLAGS="$(SAN_FLAGS)" all
	TEST_SUMMARY=build/san/summary-san SAM_SANITIZED=1 SAM_BIN=$(abspath build/san/sam) \
		SAM_TEST_HELPERS=$(abspath build/san/test-helpers) \
		ASAN_OPTIONS=detect_leaks=1 build/san/sam-tests $(T)

FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
fuzz: $(BUILD)/fuzz-gguf
	@mkdir -p $(BUILD)/fuzz-corpus
	tests/fuzz/seed-corpus.sh $(BUILD)/fuzz-corpus
	@echo "  FUZZ    gguf reader for $(FUZZ_SECONDS) s (log: $(BUILD)/fuzz.log)"
	@$(BUILD)/fuzz-gguf -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
		-rss_limit_mb=2048 $(BUILD)/fuzz-corpus > $(BUILD)/fuzz.log 2>&1 || \
		{ tail -n 60 $(BUILD)/fuzz.log; echo "fuzzing found a crash (see above)"; exit 1; }
	@tail -n 1 $(BUILD)/fuzz.log

$(BUILD)/fuzz-gguf: tests/fuzz/fuzz_gguf.c $(LIB_SRC) $(GEN_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS_SAM) -O1 -g -fsanitize=fuzzer,address,undefined $(WARN) -o $@ \
		tests/fuzz/fuzz_gguf.c $(LIB_SRC) $(GEN_SRC) $(LIBS)

# The kernel checker links only the quant sources, not libsam, whose
# libraries exist here for x86-64 only: so it also builds static for arm64
# and runs under qemu user-mode emulation, once with the dot-product
# instructions (-cpu max) and once without (-cpu cortex-a53). Each run
# leaves "passed failed skipped" in $(BUILD)/kernels/ for `make test`.
KCHECK_SRC := tests/kernels/kernel_check.c $(sort $(wildcard src/engine/quant*.c)) src/engine/ggml_types.c
KCHECK_DEP := $(KCHECK_SRC) $(wildcard src/engine/quant*.h) include/sam/quant.h include/sam/ggml_types.h
CROSS_CC ?= aarch64-linux-gnu-gcc
QEMU_AARCH64 ?= qemu-aarch64-static

$(BUILD)/kernels/kernel-check: $(KCHECK_DEP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CPPFLAGS_BASE) $(CFLAGS) $(WARN) -o $@ $(KCHECK_SRC) -lm

$(BUILD)/kernels/kernel-check-aarch64: $(KCHECK_DEP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@ ($(CROSS_CC))")
	$(Q)$(CROSS_CC) $(CPPFLAGS_BASE) $(OPT) -g $(WARN) -static -o $@ $(KCHECK_SRC) -lm

kernel-check: $(BUILD)/kernels/kernel-check
	@rm -f $(BUILD)/kernels/summary-*
	$(BUILD)/kernels/kernel-check --summary $(BUILD)/kernels/summary-native
	@if command -v $(CROSS_CC) >/dev/null 2>&1 && command -v $(QEMU_AARCH64) >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory $(BUILD)/kernels/kernel-check-aarch64 && \
		echo "$(QEMU_AARCH64) -cpu max: arm64 NEON with dot-product instructions" && \
		$(QEMU_AARCH64) -cpu max $(BUILD)/kernels/kernel-check-aarch64 --expect neon-dotprod \
			--summary $(BUILD)/kernels/summary-neon-dotprod && \
		echo "$(QEMU_AARCH64) -cpu cortex-a53: arm64 NEON without them" && \
		$(QEMU_AARCH64) -cpu cortex-a53 $(BUILD)/kernels/kernel-check-aarch64 --expect neon \
			--summary $(BUILD)/kernels/summary-neon; \
	else \
		echo "*** SKIPPED: arm64 NEON kernel check: $(CROSS_CC) or $(QEMU_AARCH64) not installed (scripts/deps.sh --test installs them) ***"; \
		echo "0 0 1" > $(BUILD)/kernels/summary-neon; \
	fi

bench: $(BUILD)/sam
	bench/run.sh $(abspath $(BUILD)/sam)

run: deps
	$(MAKE) $(BUILD)/sam
	scripts/run.sh $(abspath $(BUILD)/sam)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(DEPS)
