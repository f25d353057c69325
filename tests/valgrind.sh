#!/bin/sh
# A short training run and the file parsers under valgrind (memcheck): no
# invalid read or write, no use of uninitialised memory, no definite or
# indirect leak. Run by `sh scripts/test.sh --ci` (not by tests/run.sh:
# valgrind is slow and cannot run the sanitizer build).
#   CNN_BUILD=dir uses another build (default build/).
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/${CNN_BUILD:-build}
cnn=$build/cnn
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
# libjpeg-turbo's SIMD code reads row padding that does not change its
# results, which memcheck reports as uses of uninitialised memory; its
# README asks memory checkers to run without it (the pixels are the same).
export JSIMD_FORCENONE=1

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind: valgrind is not installed (sh scripts/deps.sh --ci installs it)"
    echo "valgrind: 0 passed, 1 failed"
    exit 1
fi
for f in "$cnn" "$build/tests/test_fuzz_corpus"; do
    if [ ! -x "$f" ]; then
        echo "valgrind: $f is missing (make all tests)"
        echo "valgrind: 0 passed, 1 failed"
        exit 1
    fi
done

# vg WHAT COMMAND...: runs COMMAND under memcheck; it must exit 0 with no error.
vg() {
    what=$1
    shift
    if valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect --track-origins=yes "$@" >"$tmp/out" 2>"$tmp/err"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "valgrind: failed: $what (exit $?)" >&2
        grep -E '^==[0-9]+==' "$tmp/err" | head -n 30 >&2
        tail -n 3 "$tmp/err" >&2
    fi
}

python3 - "$tmp" <<'EOF' || { echo "valgrind: 0 passed, 1 failed"; exit 1; }
import struct, sys
out = sys.argv[1]
def idx(path, dims, body):
    with open(path, 'wb') as f:
        f.write(struct.pack('>BBBB', 0, 0, 8, len(dims)) + b''.join(struct.pack('>I', d) for d in dims) + body)
n, seed = 48, 11
pixels, labels = bytearray(), bytearray()
for i in range(n):
    labels.append(i % 3)
    for r in range(10):
        for c in range(10):
            seed = (seed * 1103515245 + 12345) % 2**31
            pixels.append(min(255, (200 if (r + c * (i % 3)) % 4 == 0 else 10) + seed % 40))
idx(out + '/x.idx', [n, 10, 10], bytes(pixels))
idx(out + '/y.idx', [n], bytes(labels))
EOF
cat >"$tmp/tiny.model" <<'EOF'
input shape=10,10,1
Conv2D 4 3 padding=same activation=relu
MaxPooling2D 2
Conv2D 4 3 activation=relu
Flatten
Dropout 0.2
Dense 3 activation=softmax
EOF
data="--train-images $tmp/x.idx --train-labels $tmp/y.idx"
test_data="--test-images $tmp/x.idx --test-labels $tmp/y.idx"

# shellcheck disable=SC2086
vg "train 2 epochs (2 threads, validation, history, plot)" "$cnn" train "$tmp/tiny.model" $data \
    $test_data --epochs 2 --batch-size 16 --validation-split 0.25 --threads 2 --seed 1 \
    --save "$tmp/m.cnn" --checkpoint "$tmp/ck.cnn" --history "$tmp/h.csv" --plot "$tmp/p.png"
# shellcheck disable=SC2086
vg "resume to 3 epochs" "$cnn" train "$tmp/tiny.model" $data --epochs 3 --batch-size 16 \
    --validation-split 0.25 --threads 2 --seed 1 --save "$tmp/m3.cnn" --checkpoint "$tmp/ck.cnn" \
    --resume "$tmp/ck.cnn"
# shellcheck disable=SC2086
vg "evaluate" "$cnn" evaluate "$tmp/m.cnn" $test_data --threads 1
vg "visualize" "$cnn" visualize "$tmp/m.cnn" "$tmp/x.idx" --index 2 --out "$tmp/vis" --threads 1
vg "predict a PNG, resized" "$cnn" predict "$tmp/m.cnn" "$tmp/vis/input.png" --resize --threads 1
vg "summary of a Keras JSON description" "$cnn" summary "$root/tests/data/keras2_mnist.json" \
    --batch 8
# every parser on the fuzz seeds and regressions (system libstb, libjansson, zlib)
cd "$root" || exit 1
vg "fuzz corpus replay" "$build/tests/test_fuzz_corpus"
# every kind of PNG and JPEG, damaged files (libpng, libjpeg-turbo)
vg "image formats" "$build/tests/test_image_formats"

echo "valgrind: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
