# cnn - build the library (static + shared), the cnn tool, the examples and the tests.
PREFIX ?= /usr/local
CC ?= cc
CFLAGS ?= -O2
CFLAGS += -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -fPIC -pthread
CPPFLAGS += -Iinclude -Isrc
LDLIBS += -ljansson -lstb -lz -lm -pthread
BUILD ?= build
VERSION = 0.1.0

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
BENCH_BIN := $(BUILD)/bench/bench_cnn $(BUILD)/bench/peak
$(BUILD)/bench/bench_cnn: bench/bench_cnn.c $(BUILD)/libcnn.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(BUILD)/libcnn.a $(LDLIBS)

$(BUILD)/bench/peak: bench/peak.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@

bench: $(BENCH_BIN)
	sh bench/deps.sh
	/usr/bin/python3 bench/run.py $(BENCH_ARGS)

tests: $(TESTS)

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
