#!/bin/bash
# Replays every crash, hang and out-of-memory input a harness recorded in
# build-fuzz/crashes/ and says where each one stops: in libhdf5 (its known
# unfixed bugs, SECURITY.md: contained by cnn_model_load_keras_isolated) or
# anywhere else (ours to fix). Used for fuzz_keras, which runs libhdf5 in
# process under fork mode (scripts/fuzz_hours.sh).
#
#   bash scripts/fuzz_triage.sh HARNESS
#
# Prints one line per input and a total; exit status 1 if any input stops
# outside libhdf5 or could not be told, so that a new defect of ours cannot
# hide among libhdf5's.
# FUZZ_TRIAGE_TIMEOUT (5 s): the per-input timeout of the replay (a hang costs it).
set -u
[ $# -eq 1 ] || { echo "usage: bash scripts/fuzz_triage.sh HARNESS" >&2; exit 2; }
h=$1
root=$(cd "$(dirname "$0")/.." && pwd)
fb=${FUZZ_BUILD:-$root/build-fuzz}
exe=$fb/fuzz/fuzz_$h
[ -x "$exe" ] || { echo "fuzz_triage: $exe is missing (make fuzz-build)" >&2; exit 2; }
libhdf5=0 gone=0 ours=0
for f in "$fb/crashes/$h"-crash-* "$fb/crashes/$h"-timeout-* "$fb/crashes/$h"-oom-* \
         "$fb/crashes/$h"-leak-*; do
    [ -e "$f" ] || continue
    log=$(LSAN_OPTIONS=suppressions=$root/fuzz/lsan.supp timeout 120 "$exe" -timeout="${FUZZ_TRIAGE_TIMEOUT:-5}" \
          -rss_limit_mb="${FUZZ_RSS_MB:-2048}" "$f" 2>&1)
    # The first stack frame that is neither libFuzzer, the sanitizer runtime
    # (its interceptors - strdup, memcpy, malloc - sit in the harness binary
    # with no source line: "in strdup (.../fuzz_keras+0x...)") nor libc
    # (named by its file, or - with glibc's debug symbols installed - by
    # glibc's own source tree: "in __memcpy_avx512_unaligned_erms
    # string/../sysdeps/x86_64/..."): where the fault, the hang or the
    # allocation is.
    frame=$(printf '%s\n' "$log" | grep -E '^ +#[0-9]+ 0x' |
        grep -vE 'fuzzer::|__sanitizer|__asan|__ubsan|__lsan|__interceptor|libclang_rt|/libc\.so|libc_start|_start |/fuzz_[a-z_]+\+0x| [a-z]+/\.\./sysdeps/' |
        head -1)
    case $frame in
    *libhdf5*) where=libhdf5; libhdf5=$((libhdf5 + 1)) ;;
    "")
        if printf '%s\n' "$log" | grep -q 'Executed .* in'; then
            where="no longer fails"
            gone=$((gone + 1))
        else
            where="unknown (no stack)"
            ours=$((ours + 1))
        fi ;;
    *) where="OURS: $frame"; ours=$((ours + 1)) ;;
    esac
    echo "$(basename "$f"): $where"
done
echo "fuzz_triage $h: $libhdf5 in libhdf5, $gone no longer failing, $ours elsewhere"
[ "$ours" -eq 0 ]
