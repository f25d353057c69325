#!/bin/sh
# make bench's "int8 inference" section, its parts checked without timing
# anything: bench_int8 trains each network a few steps and saves .cnn and
# .h5; PyTorch's copy (bench_torch.py keras_sequential: NHWC Flatten rows
# permuted, Dense BatchNormalization folded) must give our float accuracy
# on the 10 000 test images - the same weights, or the side-by-side means
# nothing; both int8 paths stay near their float; qinfer prints one time per
# requested call, for a Keras graph too (ResNet-8). Needs Fashion-MNIST and Debian's python3-torch (skipped,
# counted, without them).
root=$(cd "$(dirname "$0")/.." && pwd)
fashion=/usr/share/datasets/fashion-mnist
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() {
    failed=$((failed + 1))
    echo "test_bench_int8.sh: failed: $*" >&2
    if [ -s "$tmp/err" ]; then sed 's/^/    /' "$tmp/err" | head -n 5 >&2; fi
}
finish() {
    echo "test_bench_int8_sh: $passed passed, $failed failed$1"
    [ "$failed" -eq 0 ]
    exit
}
if [ ! -f "$fashion/t10k-images-idx3-ubyte.gz" ] ||
    ! /usr/bin/python3 -c "import torch, h5py" 2>/dev/null; then
    echo "skipped: make bench's int8 section (needs $fashion and /usr/bin/python3 with torch, h5py)"
    finish ", 1 skipped"
fi
if ! make -s -C "$root" build/bench/bench_int8 >"$tmp/err" 2>&1; then
    bad "make build/bench/bench_int8"
    finish
fi
b=$root/build/bench/bench_int8
torch="/usr/bin/python3 $root/bench/bench_torch.py"
# field NAME of the JSON line in FILE
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])[sys.argv[2]])" "$1" "$2"; }
# |a - b| <= tol
near() { /usr/bin/python3 -c "import sys; sys.exit(abs(float(sys.argv[1]) - float(sys.argv[2])) > float(sys.argv[3]))" "$1" "$2" "$3"; }

"$b" >/dev/null 2>&1
if [ $? -eq 2 ]; then ok; else bad "bench_int8 without arguments: expected exit 2"; fi

# a Keras graph (ResNet-8, shipped in models/): quantized on random images, timed
"$b" qinfer "$root/models/mlperf-tiny/mlperf-tiny-resnet8-cifar10.h5" int8 2 1 2 10 \
    >"$tmp/out" 2>"$tmp/err" && [ "$(field "$tmp/out" step_s | tr -cd , | wc -c)" -eq 1 ] && ok ||
    bad "ResNet-8 .h5: our qinfer int8: expected 2 times"

for case in "tutorial_convnet onednn" "fashion_bn qnnpack"; do
    set -- $case
    net=$1 engine=$2
    if "$b" prepare "$root/examples/$net.model" 4 "$tmp/$net.cnn" "$tmp/$net.h5" \
        >"$tmp/out" 2>"$tmp/err" && [ -s "$tmp/$net.cnn" ] && [ -s "$tmp/$net.h5" ]; then
        ok
    else
        bad "$net: prepare"
        continue
    fi
    "$b" qaccuracy "$tmp/$net.cnn" 100 >"$tmp/ours" 2>"$tmp/err" || bad "$net: our qaccuracy"
    $torch qaccuracy "$tmp/$net.h5" 100 "$engine" >"$tmp/theirs" 2>"$tmp/err" ||
        bad "$net: PyTorch qaccuracy ($engine)"
    of=$(field "$tmp/ours" float) oq=$(field "$tmp/ours" int8)
    tf=$(field "$tmp/theirs" float) tq=$(field "$tmp/theirs" int8)
    # the same weights: float accuracies equal but for float rounding at a tie
    if near "$of" "$tf" 0.0005; then ok; else bad "$net: float accuracy cnn $of, PyTorch $tf"; fi
    if near "$of" "$oq" 0.03; then ok; else bad "$net: cnn int8 $oq far from float $of"; fi
    if near "$tf" "$tq" 0.03; then ok; else bad "$net: PyTorch int8 $tq far from float $tf"; fi
    for dtype in float int8; do
        "$b" qinfer "$tmp/$net.cnn" $dtype 3 1 2 50 >"$tmp/out" 2>"$tmp/err" &&
            [ "$(field "$tmp/out" step_s | tr -cd , | wc -c)" -eq 1 ] && ok ||
            bad "$net: our qinfer $dtype: expected 2 times"
        $torch qinfer "$tmp/$net.h5" $dtype 3 1 2 50 "$engine" >"$tmp/out" 2>"$tmp/err" &&
            [ "$(field "$tmp/out" step_s | tr -cd , | wc -c)" -eq 1 ] && ok ||
            bad "$net: PyTorch qinfer $dtype: expected 2 times"
    done
done
finish
