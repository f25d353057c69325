# cnn - build the library (static + shared), the cnn tool, the examples and the tests.
PREFIX ?= /usr/local
CC ?= cc
CFLAGS ?= -O2
CFLAGS += -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -fPIC -pthread
CPPFLAGS += -Iinclude -Isrc
# Keras files: Debian's serial HDF5 (.h5 and the weights inside .keras; its
# headers live in a subdirectory) and libzip (the .keras archive).
HDF5_CPPFLAGS ?= -I/usr/include/hdf5/serial
CPPFLAGS += $(HDF5_CPPFLAGS)
LDLIBS += -ljansson -lstb -ljpeg -lpng16 -lhdf5_serial -lzip -lz -lm -pthread
BUILD ?= build
# The version is the header's (CNN_VERSION_MAJOR/MINOR/PATCH in cnn.h).
VERSION := $(shell sed -n 's/^\#define CNN_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$$/\2/p' include/cnn.h | paste -sd.)

LIB_SRC := $(sort $(wildcard src/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
CLI_SRC := $(sort $(wildcard cli/*.c))
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TEST_SUPPORT := $(filter-out $(TEST_SRC),$(wildcard tests/*.c))

all: $(BUILD)/libcnn.a $(BUILD)/libcnn.so $(if $(CLI_SRC),$(BUILD)/cnn) $(EXAMPLES)

$(BUILD)/%.o: %.c $(wildcard include/*.h) $(wildcard src/*/*.h) $(wildcard cli/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# activation_simd.h's wide helpers (tanh, derivatives; activation.c, pool.c)
# take and return vectors but are always inlined into functions built for
# their instruction set: no call crosses the ABI GCC's -Wpsabi notes are about.
$(BUILD)/src/kernels/activation.o $(BUILD)/src/kernels/pool.o: CFLAGS += -Wno-psabi

# Only the API that include/cnn.h marks CNN_API leaves libcnn.so
# (tests/test_exports.sh checks it); tests and fuzzers that need internals
# link libcnn.a. Programs keep default visibility (test_alloc_fail's malloc
# must interpose on the C library's).
$(LIB_OBJ): CFLAGS += -fvisibility=hidden

$(BUILD)/libcnn.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libcnn.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libcnn.so.0 $(CFLAGS) $^ -o $@ $(LDLIBS)

# The cnn command-line tool (only public API: cnn.h).
$(BUILD)/cnn: $(CLI_OBJ) $(BUILD)/libcnn.a
	$(CC) $(CFLAGS) $(CLI_OBJ) -o $@ $(BUILD)/libcnn.a $(LDLIBS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libcnn.a include/cnn.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(BUILD)/libcnn.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(TEST_SUPPORT) tests/test.h $(BUILD)/libcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Itests $< $(TEST_SUPPORT) -o $@ $(BUILD)/libcnn.a $(LDLIBS)

# The benchmark against PyTorch (needs python3-torch; see bench/run.py).
BENCH_BIN := $(BUILD)/bench/bench_cnn $(BUILD)/bench/peak $(BUILD)/bench/bench_kernels \
	$(BUILD)/bench/bench_data $(BUILD)/bench/bench_int8 $(BUILD)/examples/fashion_mnist
$(BUILD)/bench/bench_cnn: bench/bench_cnn.c $(BUILD)/libcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(BUILD)/libcnn.a $(LDLIBS)

# Naive against fast kernels (bench/bench_kernels.c), run by hand.
$(BUILD)/bench/bench_kernels: bench/bench_kernels.c $(BUILD)/libcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(BUILD)/libcnn.a $(LDLIBS)

# The data-pipeline side (bench/data_run.py) uses the stream inside the library.
$(BUILD)/bench/bench_data: bench/bench_data.c $(BUILD)/libcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(BUILD)/libcnn.a $(LDLIBS)

# int8 against float: the GEMM (bench_qgemm) and a trained model's accuracy
# and speed (bench_quant), run by hand; bench_int8: make bench's int8 section.
$(BUILD)/bench/bench_qgemm $(BUILD)/bench/bench_quant $(BUILD)/bench/bench_int8: $(BUILD)/bench/%: bench/%.c $(BUILD)/libcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(BUILD)/libcnn.a $(LDLIBS)

# bfloat16 against float32 products, interleaved (bench/bench_bf16.c), run by hand.
$(BUILD)/bench/bench_bf16: bench/bench_bf16.c $(BUILD)/libcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(BUILD)/libcnn.a $(LDLIBS)

$(BUILD)/bench/peak: bench/peak.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@

# Decoding speed: stb_image, libspng, libpng, libjpeg-turbo (bench/decode.c).
$(BUILD)/bench/decode: bench/decode.c $(BUILD)/libcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(BUILD)/libcnn.a $(LDLIBS) -lspng

bench: $(BENCH_BIN)
	sh bench/deps.sh
	/usr/bin/python3 bench/run.py $(BENCH_ARGS)

# model_diff compares two saved models' weights (tests/test_mpi.sh).
tests: $(TESTS) $(BUILD)/tests/tools/model_diff

check test: $(TESTS)
	@sh tests/run.sh $(BUILD)/tests

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	$(if $(CLI_SRC),install -m 755 $(BUILD)/cnn $(DESTDIR)$(PREFIX)/bin/)
	install -m 644 include/cnn.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libcnn.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libcnn.so $(DESTDIR)$(PREFIX)/lib/libcnn.so.$(VERSION)
	ln -sf libcnn.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libcnn.so.0
	ln -sf libcnn.so.0 $(DESTDIR)$(PREFIX)/lib/libcnn.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' cnn.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/cnn.pc

clean:
	rm -rf $(BUILD)

.PHONY: all tests check test install clean bench

# ---- Data-parallel training over MPI (README: "Beyond one machine") --------
# Built only when mpicc is found (Debian: openmpi-bin, libopenmpi-dev); the
# library and cnn never need MPI. libcnn_mpi.a (include/cnn_mpi.h) fills
# fit's cnn_parallel hooks from an MPI communicator; cnn-mpi is the cnn tool
# with cli/mpi/parallel.c linked in place of cli/parallel.c:
#   mpirun -np N build/cnn-mpi train MODEL ...
# MPICC= (empty) builds without it.
MPICC ?= $(shell command -v mpicc 2>/dev/null)
ifneq ($(strip $(MPICC)),)
all: $(BUILD)/libcnn_mpi.a $(BUILD)/cnn-mpi

$(BUILD)/mpi/%.o: mpi/%.c include/cnn.h include/cnn_mpi.h $(wildcard src/core/*.h)
	@mkdir -p $(dir $@)
	$(MPICC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libcnn_mpi.a: $(BUILD)/mpi/cnn_mpi.o
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/cli/mpi/%.o: cli/mpi/%.c cli/cli.h include/cnn.h include/cnn_mpi.h
	@mkdir -p $(dir $@)
	$(MPICC) $(CPPFLAGS) -Icli $(CFLAGS) -c $< -o $@

CLI_MPI_OBJ := $(filter-out $(BUILD)/cli/parallel.o,$(CLI_OBJ)) $(BUILD)/cli/mpi/parallel.o
$(BUILD)/cnn-mpi: $(CLI_MPI_OBJ) $(BUILD)/libcnn_mpi.a $(BUILD)/libcnn.a
	$(MPICC) $(CFLAGS) $(CLI_MPI_OBJ) -o $@ $(BUILD)/libcnn_mpi.a $(BUILD)/libcnn.a $(LDLIBS)

# The scaling benchmark (bench/mpi_scaling.sh; docs/BENCHMARKS.md).
$(BUILD)/bench/mpi_scaling: bench/mpi_scaling.c $(BUILD)/libcnn_mpi.a $(BUILD)/libcnn.a
	@mkdir -p $(dir $@)
	$(MPICC) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(BUILD)/libcnn_mpi.a $(BUILD)/libcnn.a $(LDLIBS)

bench-mpi: $(BUILD)/bench/mpi_scaling
	sh bench/mpi_scaling.sh $(BENCH_ARGS)

install: install-mpi
install-mpi: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/cnn_mpi.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libcnn_mpi.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/cnn-mpi $(DESTDIR)$(PREFIX)/bin/
.PHONY: install-mpi bench-mpi
endif

# ---- Hostile input: fuzzing, sanitizers, soak (SECURITY.md) ----------------
# make fuzz [FUZZ_SECONDS=60]   each libFuzzer harness for FUZZ_SECONDS under
#                               ASan + UBSan (clang), corpus in build-fuzz/
# make fuzz-hours [FUZZ_CPU_SECONDS=1800] [FUZZ_JOBS=2]
#                               the long campaign: each harness for that much
#                               CPU time, niced, FUZZ_JOBS at once
#                               (scripts/fuzz_hours.sh; summary in
#                               build-fuzz/logs/summary.txt)
# make sanitize                 the whole suite built with ASan + UBSan and
#                               -DNDEBUG in build-asan/ (sanitize-build: build)
# make soak [SOAK_RUNS=500]     the SIGKILL-during-training test, longer
# make fuzz-corpus              regenerates the seed corpora in fuzz/corpus/
SAN_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
SAN_BUILD ?= build-asan
FUZZ_CC ?= clang
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_RSS_MB ?= 2048
FUZZ_CPU_SECONDS ?= 1800
FUZZ_JOBS ?= 2
FUZZ_HARNESSES := idx model description image keras decode dataset keras_isolated
SOAK_RUNS ?= 500

# clang -O1 with the sanitizers spends over 20 CPU minutes on conv_direct.c's
# unrolled tile kernels (about a minute at -O0): the fuzz build compiles that
# one file at -O0. It is a kernel, not a parser; the harnesses still run it.
$(FUZZ_BUILD)/src/kernels/conv_direct.o: CFLAGS += -O0

# The corpus replay test includes the harnesses.
$(BUILD)/tests/test_fuzz_corpus: $(wildcard fuzz/*.c fuzz/*.h)

# In the fuzz build (BUILD=$(FUZZ_BUILD), CFLAGS with the sanitizers): the
# image harness carries its own instrumented copy of stb_image, so the
# fuzzer sees the decoder's coverage. That copy is built with ASan but not
# UBSan: stb 2.27's known arithmetic undefined behaviour (SECURITY.md) would
# stop every run, while its memory errors are what must not happen.
$(BUILD)/fuzz/stb_image_impl.o: fuzz/stb_image_impl.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fno-sanitize=undefined -w -c $< -o $@

$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(BUILD)/fuzz/stb_image_impl.o $(BUILD)/libcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fsanitize=fuzzer $< \
		$(if $(filter image decode,$*),$(BUILD)/fuzz/stb_image_impl.o) -o $@ $(BUILD)/libcnn.a $(LDLIBS)

fuzz-build:
	sh scripts/deps.sh --fuzz
	CC='$(FUZZ_CC)' CFLAGS='$(SAN_FLAGS) -fsanitize=fuzzer-no-link' $(MAKE) --no-print-directory \
		BUILD=$(FUZZ_BUILD) $(FUZZ_HARNESSES:%=$(FUZZ_BUILD)/fuzz/fuzz_%)

fuzz: fuzz-build
	@for h in $(FUZZ_HARNESSES); do \
		mkdir -p $(FUZZ_BUILD)/corpus/$$h $(FUZZ_BUILD)/crashes fuzz/regressions/$$h || exit 1; \
		echo "fuzz_$$h: $(FUZZ_SECONDS) s"; \
		LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp $(FUZZ_BUILD)/fuzz/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=$(FUZZ_RSS_MB) \
			-timeout=20 -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/crashes/$$h- \
			$$(test -f fuzz/$$h.dict && echo -dict=fuzz/$$h.dict) \
			$(FUZZ_BUILD)/corpus/$$h fuzz/corpus/$$h fuzz/regressions/$$h || exit 1; \
	done

fuzz-hours: fuzz-build
	FUZZ_BUILD='$(abspath $(FUZZ_BUILD))' FUZZ_RSS_MB=$(FUZZ_RSS_MB) \
		bash scripts/fuzz_hours.sh $(FUZZ_CPU_SECONDS) $(FUZZ_JOBS) $(FUZZ_HARNESSES)

# The sanitizer build also defines NDEBUG: the suite passes without asserts.
# The kill test runs fewer times there (each run starts an instrumented tool).
sanitize-build:
	CFLAGS='$(SAN_FLAGS) -DNDEBUG' $(MAKE) --no-print-directory BUILD=$(SAN_BUILD) all tests

sanitize: sanitize-build
	CNN='$(CURDIR)/$(SAN_BUILD)/cnn' CNN_BUILD='$(SAN_BUILD)' KILL_RUNS=$${KILL_RUNS:-20} \
		ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1} \
		UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1} sh tests/run.sh $(SAN_BUILD)/tests

soak: all
	KILL_RUNS=$(SOAK_RUNS) sh tests/test_kill.sh

fuzz-corpus: $(BUILD)/libcnn.a
	@mkdir -p $(BUILD)/fuzz
	$(CC) $(CPPFLAGS) $(CFLAGS) fuzz/gen_corpus.c -o $(BUILD)/fuzz/gen_corpus $(BUILD)/libcnn.a $(LDLIBS)
	$(BUILD)/fuzz/gen_corpus

.PHONY: fuzz fuzz-build fuzz-hours sanitize sanitize-build soak fuzz-corpus
