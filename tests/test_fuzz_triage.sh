#!/bin/sh
# scripts/fuzz_triage.sh tells libhdf5's crashes and hangs (known, contained
# by the isolated reader) from anything else, which must fail the triage.
# Fake harnesses print the reports the real ones print on replay: a
# sanitizer report whose first frames are the runtime's interceptors and
# then libhdf5; one whose first real frame is ours; a replay that passes;
# and one with no stack at all.
here=$(cd "$(dirname "$0")" && pwd)
triage="$here/../scripts/fuzz_triage.sh"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "test_fuzz_triage: failed: $1" >&2; fi; }

# fake HARNESS BODY: build-fuzz/fuzz/fuzz_HARNESS printing BODY on stderr, one recorded crash.
fake() {
    mkdir -p "$tmp/$1/fuzz" "$tmp/$1/crashes"
    printf '#!/bin/sh\ncat >&2 <<"REPORT"\n%s\nREPORT\nexit 1\n' "$2" >"$tmp/$1/fuzz/fuzz_keras"
    chmod +x "$tmp/$1/fuzz/fuzz_keras"
    echo x >"$tmp/$1/crashes/keras-crash-0001"
}

fake hdf5 "==1==ERROR: AddressSanitizer: heap-buffer-overflow
    #0 0x55 in strdup (/work/build-fuzz/fuzz/fuzz_keras+0x28b0a5) (BuildId: 1)
    #1 0x7f in H5MM_strdup (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x18431d) (BuildId: 2)
    #2 0x55 in open_attr /work/src/io/keras_h5.c:303:18"
out=$(FUZZ_BUILD="$tmp/hdf5" bash "$triage" keras 2>&1); rc=$?
check "libhdf5's crash is libhdf5's" '[ $rc -eq 0 ] && echo "$out" | grep -q "keras-crash-0001: libhdf5"'

fake glibc "==1==ERROR: AddressSanitizer: SEGV on unknown address 0x6130000105c8
    #0 0x7f in __memcpy_avx512_unaligned_erms string/../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S:350
    #1 0x55 in __interceptor_memcpy (/work/build-fuzz/fuzz/fuzz_keras+0x248ca7) (BuildId: 1)
    #2 0x7f  (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x190f18) (BuildId: 2)
    #3 0x7f in H5O__msg_iterate_real (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x1b4ca4) (BuildId: 2)"
out=$(FUZZ_BUILD="$tmp/glibc" bash "$triage" keras 2>&1); rc=$?
check "glibc's memcpy (symbolized by its source) called from libhdf5 is libhdf5's" '[ $rc -eq 0 ] && echo "$out" | grep -q "keras-crash-0001: libhdf5"'

fake ours "==1==ERROR: AddressSanitizer: heap-buffer-overflow
    #0 0x55 in __asan_memcpy (/work/build-fuzz/fuzz/fuzz_keras+0x1) (BuildId: 1)
    #1 0x55 in read_strings /work/src/io/keras_h5.c:252:13
    #2 0x7f in H5Aread (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x58cf5) (BuildId: 2)"
out=$(FUZZ_BUILD="$tmp/ours" bash "$triage" keras 2>&1); rc=$?
check "a crash in our code fails the triage" '[ $rc -ne 0 ] && echo "$out" | grep -q "OURS: .*read_strings"'

fake gone "Running: keras-crash-0001
Executed keras-crash-0001 in 3 ms"
out=$(FUZZ_BUILD="$tmp/gone" bash "$triage" keras 2>&1); rc=$?
check "an input that no longer fails passes" '[ $rc -eq 0 ] && echo "$out" | grep -q "no longer fails"'

fake nostack "==1==ERROR: libFuzzer: out-of-memory (used: 2100Mb; exceeds: 2048Mb)"
out=$(FUZZ_BUILD="$tmp/nostack" bash "$triage" keras 2>&1); rc=$?
check "a report without a stack fails the triage" '[ $rc -ne 0 ] && echo "$out" | grep -q "unknown"'

echo "test_fuzz_triage: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
