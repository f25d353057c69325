#!/bin/sh
# The cnn tool on real Keras models. Always: the MLPerf Tiny models shipped in
# models/mlperf-tiny/ (their checksums; Functional: summary's Connected to;
# transfer learning with --replace-head and --freeze). With mnist-keras2.2.4.h5
# and mnist-keras3.14.keras, which have no licence and are not in the repository ($CNN_KERAS_MODELS, else
# ../shared/keras-models): summary, evaluate and predict with --scale,
# fine-tuning one epoch with --from and saving back to .keras and .h5, whose
# layout tests/keras/check_layout.py compares with Keras's own files (h5py),
# and damaged files refused; without them that part is skipped and counted
# ("skipped: ..."; a failure with CNN_REQUIRE_TEST_DATA=1, as in CI).
# CNN=path runs another build of the tool.
root=$(cd "$(dirname "$0")/.." && pwd)
cnn=${CNN:-$root/build/cnn}
models=${CNN_KERAS_MODELS:-$root/../shared/keras-models}
h5=$models/mnist-keras2.2.4.h5
k3=$models/mnist-keras3.14.keras
images=$root/tests/keras/digits-images-idx3-ubyte
labels=$root/tests/keras/digits-labels-idx1-ubyte
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
skipped=0

ok() { passed=$((passed + 1)); }
bad() {
    failed=$((failed + 1))
    echo "test_keras.sh: failed: $*" >&2
    if [ -s "$tmp/err" ]; then sed 's/^/    /' "$tmp/err" | head -n 5 >&2; fi
}
run() { "$cnn" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
expect() {
    want=$1 what=$2
    shift 2
    run "$@"
    if [ "$rc" -eq "$want" ]; then ok; else bad "$what: exit $rc, expected $want"; fi
}
has() { if grep -qF -- "$2" "$1"; then ok; else bad "$3: no '$2' in the output"; fi; }

# finish: the summary line and the exit status.
finish() {
    if [ "$skipped" -gt 0 ]; then
        echo "test_keras_sh: $passed passed, $failed failed, $skipped skipped"
    else
        echo "test_keras_sh: $passed passed, $failed failed"
    fi
    [ "$failed" -eq 0 ]
    exit
}

if [ -z "$CNN" ] && ! make -s -C "$root" all >"$tmp/make.log" 2>&1; then
    cat "$tmp/make.log" >&2
    echo "test_keras_sh: 0 passed, 1 failed"
    exit 1
fi
for f in "$images" "$labels"; do
    if [ ! -f "$f" ]; then
        bad "$f is missing"
        finish
    fi
done

# ---- the MLPerf Tiny models shipped in models/mlperf-tiny/: unchanged, Functional ----
if (cd "$root/models/mlperf-tiny" && sed -n 's/^| `\([^`]*\.h5\)` | .* | `\([0-9a-f]*\)` |$/\2  \1/p' \
    README.md | sha256sum -c --quiet - && [ "$(grep -c '\.h5` | ' README.md)" -eq 2 ]) \
    >"$tmp/sum" 2>&1; then ok; else bad "models/mlperf-tiny: checksums"; cat "$tmp/sum" >&2; fi
for f in mlperf-tiny-resnet8-cifar10.h5 mlperf-tiny-mobilenetv1-vww96.h5; do
    expect 0 "summary $f (Functional)" summary "$root/models/mlperf-tiny/$f"
    has "$tmp/out" "Connected to" "summary $f"
done
# transfer learning on ResNet-8: a 3-class head, the base frozen, one epoch
python3 - "$tmp" <<'EOF'
import struct, sys
def idx(path, dims, body):
    with open(path, 'wb') as f:
        f.write(struct.pack('>BBBB', 0, 0, 8, len(dims)) + b''.join(struct.pack('>I', d) for d in dims) + body)
idx(sys.argv[1] + '/rgb-images', [8, 32, 32, 3], bytes((i * 7) % 256 for i in range(8 * 32 * 32 * 3)))
idx(sys.argv[1] + '/rgb-labels', [8], bytes(i % 3 for i in range(8)))
EOF
expect 0 "train --replace-head 3 --freeze activation_6" train \
    "$root/models/mlperf-tiny/mlperf-tiny-resnet8-cifar10.h5" --train-images "$tmp/rgb-images" \
    --train-labels "$tmp/rgb-labels" --scale 1 --replace-head 3 --freeze activation_6 \
    --epochs 1 --batch-size 4 --threads 1 --no-checkpoint --save "$tmp/head.cnn"
expect 0 "summary of the new head" summary "$tmp/head.cnn"
has "$tmp/out" "Trainable params: 195" "summary of the new head"
has "$tmp/out" "dense (Dense)                   (None, 3)            195" "summary of the new head"
expect 2 "train --freeze with --resume" train "$tmp/head.cnn" --resume "$tmp/head.cnn" \
    --train-images "$tmp/rgb-images" --train-labels "$tmp/rgb-labels" --freeze conv2d
has "$tmp/err" "--freeze and --replace-head start a new training" "--freeze with --resume"
expect 1 "train --freeze unknown" train "$root/models/mlperf-tiny/mlperf-tiny-resnet8-cifar10.h5" \
    --train-images "$tmp/rgb-images" --train-labels "$tmp/rgb-labels" --freeze nope --no-checkpoint
has "$tmp/err" "freeze: no layer named \"nope\"" "--freeze unknown"
# visualize on a graph: the first Conv2D reads the input, not the layer before it
printf 'input shape=8,8,3 name=x\nDepthwiseConv2D 3 padding=same depth_multiplier=2 name=dw\nConv2D 4 3 padding=same inputs=x name=c\nConcatenate inputs=dw,c\nGlobalAveragePooling2D\nDense 2 softmax\n' \
    >"$tmp/branch.model"
expect 0 "visualize a graph" visualize "$tmp/branch.model" "$tmp/rgb-images" --index 0 --resize \
    --out "$tmp/vis"
if [ -f "$tmp/vis/kernels_c.png" ]; then ok; else bad "visualize a graph: no kernels_c.png"; fi
# a Sequential nested in a Functional model (tf.keras 2's layout, made from our own .h5 by
# tests/keras/nest_sequential.py): the same predictions as the flat model
printf 'input shape=32,32,3\nConv2D 2 3 name=c1\nFlatten name=f\nDense 4 relu name=h\nDense 3 softmax name=d\n' \
    >"$tmp/flat.model"
expect 0 "train the flat model" train "$tmp/flat.model" --train-images "$tmp/rgb-images" \
    --train-labels "$tmp/rgb-labels" --epochs 1 --batch-size 4 --no-checkpoint --save "$tmp/flat.h5"
if /usr/bin/python3 "$root/tests/keras/nest_sequential.py" "$tmp/flat.h5" "$tmp/nested.h5"; then
    expect 0 "predict flat" predict "$tmp/flat.h5" "$tmp/rgb-images" --top 3
    cp "$tmp/out" "$tmp/flat.out"
    expect 0 "predict nested" predict "$tmp/nested.h5" "$tmp/rgb-images" --top 3
    if cmp -s "$tmp/out" "$tmp/flat.out"; then ok; else bad "nested Sequential: predictions differ"; fi
    expect 0 "summary nested" summary "$tmp/nested.h5"
    has "$tmp/out" "h (Dense)                       (None, 4)            7204        f[0][0]" "summary nested"
else
    bad "tests/keras/nest_sequential.py failed (python3-h5py)"
fi
# ... and as Keras 3's legacy .h5 writer saves it (weights named by their paths, inner/h/kernel)
if /usr/bin/python3 "$root/tests/keras/nest_sequential.py" --keras3 "$tmp/flat.h5" \
    "$tmp/nested3.h5"; then
    expect 0 "predict nested (Keras 3 legacy .h5)" predict "$tmp/nested3.h5" "$tmp/rgb-images" \
        --top 3
    if cmp -s "$tmp/out" "$tmp/flat.out"; then ok; else bad "nested3.h5: predictions differ"; fi
else
    bad "tests/keras/nest_sequential.py --keras3 failed (python3-h5py)"
fi
# the same in Keras 3's .keras layout (tests/keras/nest_sequential_keras3.py): the nested
# layers' variables under layers/sequential/layers/<key>/, the outer Dense dense_1 at
# layers/dense/ (numbered among the outer model's layers)
printf 'input shape=32,32,3\nConv2D 2 3 name=c1\nFlatten name=f\nDense 4 relu\nDense 3 softmax\n' \
    >"$tmp/flat3.model"
for f in flat flat3; do
    expect 0 "train $f.model (.keras)" train "$tmp/$f.model" --train-images "$tmp/rgb-images" \
        --train-labels "$tmp/rgb-labels" --epochs 1 --batch-size 4 --no-checkpoint \
        --save "$tmp/$f.keras"
    if /usr/bin/python3 "$root/tests/keras/nest_sequential_keras3.py" "$tmp/$f.keras" \
        "$tmp/nested-$f.keras"; then
        expect 0 "predict $f.keras" predict "$tmp/$f.keras" "$tmp/rgb-images" --top 3
        cp "$tmp/out" "$tmp/flat.out"
        expect 0 "predict nested-$f.keras" predict "$tmp/nested-$f.keras" "$tmp/rgb-images" --top 3
        if cmp -s "$tmp/out" "$tmp/flat.out"; then ok; else bad "nested-$f.keras: predictions differ"; fi
    else
        bad "tests/keras/nest_sequential_keras3.py failed (python3-h5py)"
    fi
done
expect 0 "summary nested .keras" summary "$tmp/nested-flat3.keras"
has "$tmp/out" "dense_1 (Dense)                 (None, 3)            15          dense[0][0]" \
    "summary nested .keras"
# a broadcasting Multiply (a squeeze-and-excitation gate, (8, 8, 16) x (16)) trains and
# round-trips through .keras and .h5 with the same predictions as the .cnn
printf 'input shape=32,32,3 name=x\nConv2D 16 3 activation=relu padding=same name=features\nGlobalAveragePooling2D\nDense 16 sigmoid name=gate\nMultiply inputs=features,gate\nGlobalAveragePooling2D\nDense 3 softmax\n' \
    >"$tmp/se.model"
for f in cnn keras h5; do
    expect 0 "train the broadcasting block (.$f)" train "$tmp/se.model" --train-images \
        "$tmp/rgb-images" --train-labels "$tmp/rgb-labels" --epochs 1 --batch-size 4 --threads 1 \
        --no-checkpoint --save "$tmp/se.$f"
    expect 0 "predict the broadcasting block (.$f)" predict "$tmp/se.$f" "$tmp/rgb-images" --top 3
    cp "$tmp/out" "$tmp/se-$f.out"
done
if cmp -s "$tmp/se-cnn.out" "$tmp/se-keras.out" && cmp -s "$tmp/se-cnn.out" "$tmp/se-h5.out"; then
    ok
else
    bad "the broadcasting block: predictions differ between .cnn, .keras and .h5"
fi
# a Functional model as a layer: refused, saying what is supported
python3 - "$tmp/nested-flat3.keras" "$tmp/nested-functional.keras" <<'EOF'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
with zipfile.ZipFile(sys.argv[2], "w") as o:
    for n in z.namelist():
        b = z.read(n)
        o.writestr(n, b.replace(b'"class_name": "Sequential"', b'"class_name": "Functional"')
                   if n == "config.json" else b)
EOF
expect 1 "nested Functional" summary "$tmp/nested-functional.keras"
has "$tmp/err" "a Functional model used as a layer of another is not supported (a nested Sequential is)" \
    "nested Functional"

# The rest needs the two MNIST models.
for f in "$h5" "$k3"; do
    if [ ! -f "$f" ]; then
        if [ "${CNN_REQUIRE_TEST_DATA:-}" = 1 ]; then
            : >"$tmp/err"
            bad "$f is missing (CNN_REQUIRE_TEST_DATA=1: nothing may be skipped)"
        else
            skipped=$((skipped + 1))
            echo "skipped: the cnn tool on the real Keras models: summary, evaluate, predict, train --from, exported layout ($f not found; set CNN_KERAS_MODELS to a directory holding it)"
        fi
        finish
    fi
done

# ---- Keras's own Sequential .keras nested in a Functional model: the same predictions ----
if /usr/bin/python3 "$root/tests/keras/nest_sequential_keras3.py" "$k3" "$tmp/nested-k3.keras"; then
    expect 0 "predict .keras flat" predict "$k3" "$images" --index 55 --top 3 --scale 1/255
    cp "$tmp/out" "$tmp/flat.out"
    expect 0 "predict .keras nested" predict "$tmp/nested-k3.keras" "$images" --index 55 --top 3 \
        --scale 1/255
    if cmp -s "$tmp/out" "$tmp/flat.out"; then ok; else bad "nested $k3: predictions differ"; fi
else
    bad "tests/keras/nest_sequential_keras3.py $k3 failed"
fi

# ---- summary: Keras's names, shapes and parameter counts ----
expect 0 "summary .h5" summary "$h5"
has "$tmp/out" "conv2d_2 (Conv2D)            (None, 14, 14, 32)        18464" "summary .h5"
has "$tmp/out" "Total params: 34,794" "summary .h5"
expect 0 "summary .keras" summary "$k3"
has "$tmp/out" "dense (Dense)                (None, 128)               204928" "summary .keras"
has "$tmp/out" "Total params: 225,034" "summary .keras"

# ---- evaluate and predict, each model at the pixel scale it was trained on ----
expect 0 "evaluate .h5 --scale 1" evaluate "$h5" --test-images "$images" --test-labels "$labels" \
    --scale 1
has "$tmp/out" "pixels 0..255 x 1)" "evaluate header"
has "$tmp/out" "accuracy: 0.8600 (86/100 correct)" "evaluate .h5"
expect 0 "evaluate .keras" evaluate "$k3" --test-images "$images" --test-labels "$labels"
has "$tmp/out" "pixels 0..255 x 1/255)" "evaluate header"
has "$tmp/out" "accuracy: 0.8700 (87/100 correct)" "evaluate .keras"
expect 0 "predict .h5" predict "$h5" "$images" --index 55 --top 1 --scale 1
has "$tmp/out" "Pixels 0..255 x 1" "predict header"
has "$tmp/out" "  1. 5 " "predict .h5"
expect 0 "predict .keras --scale 1/255" predict "$k3" "$images" --index 55 --top 1 --scale 1/255
has "$tmp/out" "  1. 5 " "predict .keras"
expect 2 "bad --scale" predict "$k3" "$images" --scale 0
expect 2 "bad --scale" evaluate "$k3" --test-images "$images" --test-labels "$labels" --scale x

# ---- fine-tune one epoch from each file and save back to Keras ----
expect 0 "train --from .h5" train --from "$h5" --train-images "$images" --train-labels "$labels" \
    --scale 1 --epochs 1 --threads 1 --save "$tmp/tuned.h5"
has "$tmp/out" "compiled with its training config and Adam's saved state" "train --from .h5"
has "$tmp/out" "Pixels 0..255 x 1" "train header"
has "$tmp/out" "Epoch 1/1" "train --from .h5"
expect 0 "train .keras" train "$k3" --train-images "$images" --train-labels "$labels" \
    --epochs 1 --threads 1 --save "$tmp/tuned.keras" --test-images "$images" \
    --test-labels "$labels"
has "$tmp/out" "Saved the model to $tmp/tuned.keras" "train .keras"
expect 0 "evaluate the fine-tuned .keras" evaluate "$tmp/tuned.keras" --test-images "$images" \
    --test-labels "$labels"
expect 0 "evaluate the fine-tuned .h5" evaluate "$tmp/tuned.h5" --test-images "$images" \
    --test-labels "$labels" --scale 1
expect 2 "MODEL and --from" train "$k3" --from "$h5" --train-images "$images" \
    --train-labels "$labels"

# ---- the exported files are laid out as Keras's (h5py) ----
if /usr/bin/python3 "$root/tests/keras/check_layout.py" "$h5" "$tmp/tuned.h5" "$k3" \
    "$tmp/tuned.keras" >"$tmp/layout" 2>&1; then ok; else
    bad "layout of the exported files:"; sed 's/^/    /' "$tmp/layout" | head -n 20 >&2; fi

# ---- damaged files ----
head -c 100000 "$h5" >"$tmp/cut.h5"
expect 1 "truncated .h5" summary "$tmp/cut.h5"
has "$tmp/err" "truncated" "truncated .h5"
head -c 2000000 "$k3" >"$tmp/cut.keras"
expect 1 "truncated .keras" evaluate "$tmp/cut.keras" --test-images "$images" \
    --test-labels "$labels"
has "$tmp/err" "cnn evaluate: $tmp/cut.keras: " "truncated .keras"

finish
