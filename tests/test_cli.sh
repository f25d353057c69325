#!/bin/sh
# Real runs of the cnn tool (build/cnn) on a small IDX data set made here:
# the first images of Fashion-MNIST when installed (or $FASHION_MNIST), else
# synthetic stripes. CNN=path runs another build of the tool.
# Checks help and usage exits, train/save/summary/evaluate/predict/visualize,
# the history CSV and the plot, resuming (after --epochs 1 and after Ctrl-C)
# to the same bytes as an uninterrupted run, and damaged input files.
root=$(cd "$(dirname "$0")/.." && pwd)
cnn=${CNN:-$root/build/cnn}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

if [ -z "$CNN" ] && ! make -s -C "$root" all >"$tmp/make.log" 2>&1; then
    cat "$tmp/make.log" >&2
    echo "test_cli: 0 passed, 1 failed"
    exit 1
fi

if [ ! -x "$cnn" ]; then
    echo "test_cli: $cnn is missing"
    echo "test_cli: 0 passed, 1 failed"
    exit 1
fi

test_name=test_cli
. "$root/tests/cli_checks.sh"
# fails_cleanly WHAT ARGS...: exits 1 (not a crash, not success) with a message.
fails_cleanly() {
    what=$1
    shift
    run "$@"
    if [ "$rc" -eq 1 ] && grep -q "^cnn [a-z]*: " "$tmp/err"; then ok; else
        bad "$what: exit $rc, expected 1 with a 'cnn COMMAND: ' message"; fi
}
is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }
check_png() { if [ -f "$1" ] && is_png "$1"; then ok; else bad "$2: $1 is not a PNG"; fi; }

# ---- data: 512 training and 200 test images in IDX files, pictures as PNG ----
data=$tmp/data
mkdir -p "$data"
python3 - "$data" "${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}" <<'EOF' || { echo "test_cli: 0 passed, 1 failed"; exit 1; }
import gzip, os, struct, sys, zlib
out, src = sys.argv[1], sys.argv[2]

def idx(path, dims, body):
    with open(path, 'wb') as f:
        f.write(struct.pack('>BBBB', 0, 0, 8, len(dims)) + b''.join(struct.pack('>I', d) for d in dims) + body)

def png(path, rows, cols, channels, pixels):
    raw = b''.join(b'\0' + bytes(pixels[r * cols * channels:(r + 1) * cols * channels]) for r in range(rows))
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    header = struct.pack('>IIBBBBB', cols, rows, 8, {1: 0, 3: 2}[channels], 0, 0, 0)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))

sets = {'train': 512, 't10k': 200}
images = {}
if os.path.exists(os.path.join(src, 'train-images-idx3-ubyte.gz')):
    for name, n in sets.items():
        with gzip.open(os.path.join(src, name + '-images-idx3-ubyte.gz')) as f:
            f.read(16)
            pixels = f.read(n * 784)
        with gzip.open(os.path.join(src, name + '-labels-idx1-ubyte.gz')) as f:
            f.read(8)
            labels = f.read(n)
        images[name] = (pixels, labels)
else:
    # Synthetic: class k is a bright horizontal band at rows 2k+3..2k+6, plus noise.
    seed = 12345
    for name, n in sets.items():
        pixels, labels = bytearray(), bytearray()
        for i in range(n):
            k = (i * 7 + (name == 't10k')) % 10
            labels.append(k)
            for r in range(28):
                for c in range(28):
                    seed = (seed * 1103515245 + 12345) % 2**31
                    v = 200 if 2 * k + 3 <= r <= 2 * k + 6 else 0
                    pixels.append(min(255, v + seed % 40))
        images[name] = (bytes(pixels), bytes(labels))
for name, n in sets.items():
    pixels, labels = images[name]
    idx(os.path.join(out, name + '-images-idx3-ubyte'), [n, 28, 28], pixels)
    idx(os.path.join(out, name + '-labels-idx1-ubyte'), [n], labels)
first = images['t10k'][0][:784]
png(os.path.join(out, 'item.png'), 28, 28, 1, first)
png(os.path.join(out, 'photo.png'), 30, 40, 3, [(i * 7) % 256 for i in range(30 * 40 * 3)])
EOF

cat >"$tmp/small.model" <<'EOF'
input shape=28,28,1
Conv2D filters=4 kernel_size=3 activation=relu
MaxPooling2D pool_size=2
Flatten
Dropout rate=0.2
Dense units=10 activation=softmax
EOF
printf 'input shape=2000,2000,3\nFlatten\nDense 128 activation=relu\nDense 10 activation=softmax\n' \
    >"$tmp/big.model"
train="train $tmp/small.model --data $data --batch-size 32 --seed 7 --threads 1"

# ---- help and usage errors ----
for c in summary train evaluate predict visualize; do
    expect 0 "cnn $c --help" "$c" --help
    has "$tmp/out" "Usage: cnn $c" "cnn $c --help"
done
expect 0 "cnn --help" --help
has "$tmp/out" "130" "cnn --help documents exit status 130"
expect 2 "cnn without a command"
expect 2 "unknown command" frobnicate
expect 2 "unknown option" $train --epoch 2
has "$tmp/err" "did you mean '--epochs'" "unknown option suggestion"
expect 2 "option without its value" $train --epochs
expect 2 "bad number" $train --epochs two
expect 2 "bad optimizer" $train --optimizer adamw
expect 2 "bad --max-memory" summary "$tmp/small.model" --max-memory 12X
expect 2 "summary without MODEL" summary
expect 2 "predict without IMAGE" predict "$tmp/small.model"
expect 2 "train without data" train "$tmp/small.model"
expect 2 "--data with --train-images" $train --train-images x --train-labels y
expect 2 "visualize without --out" visualize "$tmp/small.model" "$data/item.png"

# ---- train, save, history, plot, test accuracy ----
expect 0 "train 2 epochs" $train --epochs 2 --validation-split 0.1 --save "$tmp/m.cnn" \
    --history "$tmp/h.csv" --plot "$tmp/curves.png"
has "$tmp/out" "Epoch 2/2" "train progress"
has "$tmp/out" "val_accuracy" "train validation metrics"
has "$tmp/out" "Test loss" "train test evaluation"
if [ -f "$tmp/m.cnn" ] && [ "$(head -c 8 "$tmp/m.cnn")" = CNNMODEL ]; then ok; else bad "saved model"; fi
if [ -f "$tmp/m.ckpt.cnn" ]; then ok; else bad "default checkpoint m.ckpt.cnn"; fi
if [ "$(head -n 1 "$tmp/h.csv")" = "epoch,loss,accuracy,val_loss,val_accuracy" ] \
    && [ "$(wc -l <"$tmp/h.csv")" -eq 3 ] && [ "$(cut -d, -f1 "$tmp/h.csv" | tail -n 2 | tr '\n' ' ')" = "1 2 " ] \
    && ! grep -q ',,' "$tmp/h.csv"; then ok; else bad "history CSV rows"; cat "$tmp/h.csv" >&2; fi
check_png "$tmp/curves.png" "--plot"
expect 0 "continue training a saved model" train "$tmp/m.cnn" --data "$data" --epochs 1 --threads 1 \
    --save "$tmp/m2.cnn"
has "$tmp/out" "Continuing with the saved optimizer state" "continued training keeps the optimizer"
expect 0 "train with explicit files" train "$tmp/small.model" --threads 1 \
    --train-images "$data/train-images-idx3-ubyte" --train-labels "$data/train-labels-idx1-ubyte" \
    --test-images "$data/t10k-images-idx3-ubyte" --test-labels "$data/t10k-labels-idx1-ubyte" \
    --loss categorical_crossentropy --optimizer sgd --lr 0.05 --momentum 0.9 --checkpoint "$tmp/c.cnn"

# ---- issue 12: a last Dense without softmax: the warning, --from-logits ----
printf 'input shape=28,28,1\nConv2D 4 3 activation=swish\nMaxPooling2D 2\nFlatten\nDense 10\n' \
    >"$tmp/logits.model"
logits="train $tmp/logits.model --data $data --batch-size 32 --seed 7 --threads 1 --epochs 2"
expect 0 "linear output, probabilities expected" $logits
has "$tmp/err" "warning: the loss sparse_categorical_crossentropy expects probabilities but the last layer's output is linear" \
    "linear output warning"
plain_acc=$(sed -n 's/^Test loss: [0-9.]* - test accuracy: \([0-9.]*\).*/\1/p' "$tmp/out")
expect 0 "--from-logits" $logits --from-logits --save "$tmp/logits.cnn"
if [ -s "$tmp/err" ]; then bad "--from-logits: no warning expected"; else ok; fi
has "$tmp/out" "loss sparse_categorical_crossentropy from logits" "--from-logits compiles with it"
logits_acc=$(sed -n 's/^Test loss: [0-9.]* - test accuracy: \([0-9.]*\).*/\1/p' "$tmp/out")
if awk -v a="$logits_acc" -v p="$plain_acc" 'BEGIN { exit !(a > 0.5 && a > p + 0.2) }'; then ok
else bad "--from-logits trains: test accuracy $logits_acc (without: $plain_acc)"; fi
expect 0 "continue a from_logits model" train "$tmp/logits.cnn" --data "$data" --epochs 3 \
    --threads 1
has "$tmp/out" "loss sparse_categorical_crossentropy from logits" "from_logits kept in the file"
if [ -s "$tmp/err" ]; then bad "continued from_logits model: no warning expected"; else ok; fi
expect 1 "--from-logits with mse" $logits --from-logits --loss mse
has "$tmp/err" "from_logits applies to the cross-entropy losses only" "--from-logits with mse"

# ---- summary ----
expect 0 "summary of a description" summary "$tmp/small.model"
has "$tmp/out" "Total params: 6,810" "summary table"
expect 0 "summary of a saved model" summary "$tmp/m.cnn" --batch 32
has "$tmp/out" "conv2d (Conv2D)" "summary of the saved model"
has "$tmp/out" "Memory for a batch of 32" "summary --batch memory"
has "$tmp/out" "FLOPs per image" "summary --batch FLOPs"
expect 0 "summary of a model too big to build" summary "$tmp/big.model"
has "$tmp/out" "Total params: 1,536,001,418" "big model table"
has "$tmp/out" "cannot be built" "big model refused"
expect 0 "summary with a larger budget" summary "$tmp/big.model" --max-memory 8G
if grep -q "cannot be built" "$tmp/out"; then bad "--max-memory 8G still refuses"; else ok; fi

# ---- evaluate ----
expect 0 "evaluate" evaluate "$tmp/m.cnn" --data "$data" --class-names fashion-mnist
has "$tmp/out" "Confusion matrix" "evaluate confusion matrix"
has "$tmp/out" "Ankle boot" "evaluate class names"
has "$tmp/out" "Per-class accuracy" "evaluate per-class accuracy"
expect 0 "evaluate explicit files" evaluate "$tmp/m.cnn" --test-images "$data/t10k-images-idx3-ubyte" \
    --test-labels "$data/t10k-labels-idx1-ubyte"
expect 2 "evaluate wrong number of class names" evaluate "$tmp/m.cnn" --data "$data" --class-names a,b

# ---- predict ----
expect 0 "predict a PNG" predict "$tmp/m.cnn" "$data/item.png" --top 3
has "$tmp/out" "  3. " "predict top 3"
fails_cleanly "predict an image of the wrong size" predict "$tmp/m.cnn" "$data/photo.png"
has "$tmp/err" "use --resize" "size mismatch message"
has "$tmp/err" "30x40x3" "size mismatch names the image size"
expect 0 "predict --resize" predict "$tmp/m.cnn" "$data/photo.png" --resize --invert
expect 0 "predict an IDX image" predict "$tmp/m.cnn" "$data/t10k-images-idx3-ubyte" --index 0 --top 1
# the PNG written from test image 0 and IDX image 0 give the same prediction
run predict "$tmp/m.cnn" "$data/item.png" --top 1
png_pred=$(tail -n 1 "$tmp/out")
run predict "$tmp/m.cnn" "$data/t10k-images-idx3-ubyte" --index 0 --top 1
if [ "$png_pred" = "$(tail -n 1 "$tmp/out")" ]; then ok; else bad "PNG and IDX predictions differ"; fi

# ---- class names kept in the model; --no-checkpoint; machine-readable output ----
mkdir -p "$tmp/nockpt"
if (cd "$tmp/nockpt" && "$cnn" $train --epochs 1 --class-names fashion-mnist --no-checkpoint \
    --save named.cnn >"$tmp/out" 2>"$tmp/err"); then ok; else bad "train --class-names --no-checkpoint"; fi
has "$tmp/out" "Checkpoints: none (--no-checkpoint)" "--no-checkpoint announced"
if [ "$(ls "$tmp/nockpt")" = "named.cnn" ]; then ok; else
    bad "--no-checkpoint left files behind: $(ls "$tmp/nockpt" | tr '\n' ' ')"; fi
expect 0 "evaluate names from the model" evaluate "$tmp/nockpt/named.cnn" --data "$data"
has "$tmp/out" "Ankle boot" "evaluate shows the model's class names"
expect 0 "predict names from the model" predict "$tmp/nockpt/named.cnn" "$data/item.png" --top 10
has "$tmp/out" "T-shirt/top" "predict shows the model's class names"
# ---- --dtype-policy: announced, kept in the saved model, a bad name refused ----
expect 0 "train --dtype-policy mixed_bfloat16" $train --epochs 1 --dtype-policy mixed_bfloat16 \
    --no-checkpoint --save "$tmp/bf16.cnn"
has "$tmp/out" "Dtype policy: mixed_bfloat16" "--dtype-policy announced"
expect 0 "resume keeps the policy" $train --epochs 1 --resume "$tmp/bf16.cnn" --epochs 2 \
    --no-checkpoint
has "$tmp/out" "Dtype policy: mixed_bfloat16" "the saved model's policy"
expect 2 "train --dtype-policy unknown" $train --dtype-policy mixed_float16
has "$tmp/err" "--dtype-policy: dtype policy: expected float32 or mixed_bfloat16, got \"mixed_float16\"" \
    "bad --dtype-policy message"
expect 2 "train --class-names of the wrong count" $train --class-names a,b,c
has "$tmp/err" "--class-names: class names: 3 names, the model's output has 10 classes" \
    "wrong class-name count message"
expect 2 "train --class-names with a duplicate" $train --class-names a,b,c,d,e,f,g,h,i,a
has "$tmp/err" "name 9 (\"a\") repeats name 0" "duplicate class-name message"
expect 2 "--checkpoint with --no-checkpoint" $train --checkpoint x.cnn --no-checkpoint
expect 2 "bad --format" predict "$tmp/m.cnn" "$data/item.png" --format xml
expect 2 "evaluate --format csv" evaluate "$tmp/m.cnn" --data "$data" --format csv
# json: stdout is one document (python3 -m json.tool parses it), messages on stderr
expect 0 "evaluate --format json" evaluate "$tmp/nockpt/named.cnn" --data "$data" --format json
if python3 -m json.tool "$tmp/out" >/dev/null; then ok; else bad "evaluate JSON does not parse"; fi
if python3 - "$tmp/out" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["class_names"][9] == "Ankle boot" and r["images"] == 200
assert sum(map(sum, r["confusion_matrix"])) == 200 and len(r["per_class"]) == 10
assert r["correct"] == sum(r["confusion_matrix"][k][k] for k in range(10))
assert abs(r["accuracy"] - r["correct"] / 200) < 1e-6 and r["per_class"][9]["name"] == "Ankle boot"
EOF
then ok; else bad "evaluate JSON content"; fi
expect 0 "predict --format json" predict "$tmp/nockpt/named.cnn" "$data/item.png" \
    "$data/t10k-images-idx3-ubyte" --top 2 --format json
if python3 -m json.tool "$tmp/out" >/dev/null; then ok; else bad "predict JSON does not parse"; fi
has "$tmp/err" "Pixels 0..255" "predict JSON: messages on stderr"
if python3 - "$tmp/out" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
p = r["predictions"]
assert len(p) == 201 and r["class_names"][0] == "T-shirt/top"
assert p[0]["index"] is None and p[1]["index"] == 0 and p[200]["index"] == 199
for q in p:
    assert len(q["top"]) == 2 and len(q["probabilities"]) == 10
    assert q["class"] == q["top"][0]["class"] and q["name"] == r["class_names"][q["class"]]
    assert abs(sum(q["probabilities"]) - 1) < 1e-4
assert p[0]["class"] == p[1]["class"]  # the PNG is test image 0
EOF
then ok; else bad "predict JSON content"; fi
# names that need escaping; a model without names gives null
names=$(printf 'say "hi",back\\slash,tab\tx,d,e,f,g,h,i,caf\303\251')
expect 0 "predict --format json with escaped names" predict "$tmp/m.cnn" "$data/item.png" \
    --format json --class-names "$names"
if python3 -c 'import json,sys; n=json.load(open(sys.argv[1]))["class_names"]; assert n[0]=="say \"hi\"" and n[1]=="back\\slash" and n[2]=="tab\tx" and n[9]=="caf\u00e9", n' "$tmp/out"; then ok; else
    bad "JSON escaping of class names"; fi
expect 0 "predict --format json without names" predict "$tmp/m.cnn" "$data/item.png" --format json
if python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["class_names"] is None and r["predictions"][0]["name"] is None' "$tmp/out"; then ok; else
    bad "JSON without class names"; fi
expect 0 "predict --format csv" predict "$tmp/m.cnn" "$data/item.png" "$data/t10k-images-idx3-ubyte" \
    --format csv --class-names "$names"
if python3 - "$tmp/out" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8')))
assert rows[0][:5] == ["image", "index", "class", "name", "probability"], rows[0]
assert rows[0][5] == 'say "hi"' and rows[0][14] == "caf\u00e9" and len(rows) == 202
assert all(len(r) == 15 for r in rows) and rows[1][1] == "" and rows[2][1] == "0"
assert abs(sum(map(float, rows[1][5:])) - 1) < 1e-4
EOF
then ok; else bad "predict CSV content"; head -n 2 "$tmp/out" >&2; fi
if grep -q "Pixels" "$tmp/out"; then bad "predict CSV: a message on stdout"; else ok; fi
expect 0 "predict --format csv without names" predict "$tmp/m.cnn" "$data/item.png" --format csv
if head -n 1 "$tmp/out" | grep -q '^image,index,class,name,probability,class_0,.*,class_9$'; then ok; else
    bad "CSV header without names: $(head -n 1 "$tmp/out")"; fi

# ---- visualize ----
expect 0 "visualize" visualize "$tmp/m.cnn" "$data/item.png" --out "$tmp/vis"
has "$tmp/vis/index.html" "1. max_pooling2d <small>(MaxPooling2D)</small>" "index.html names layers"
has "$tmp/vis/index.html" "(None, 13, 13, 4)" "index.html shows shapes"
for f in input.png layer_00_conv2d.png layer_01_max_pooling2d.png layer_04_dense.png \
    kernels_conv2d.png; do
    check_png "$tmp/vis/$f" "visualize"
done

# ---- every file written follows the umask, as every Unix tool's do (they were 0600) ----
for mask in 022 077; do
    if [ $mask = 022 ]; then want=644 model=m.keras; else want=600 model=m.h5; fi
    u=$tmp/umask$mask
    mkdir "$u"
    (umask $mask && "$cnn" $train --epochs 1 --save "$u/$model" --checkpoint "$u/c.cnn" \
        --history "$u/h.csv" --plot "$u/p.png" >"$tmp/out" 2>"$tmp/err") || bad "umask $mask: train"
    (umask $mask && "$cnn" visualize "$tmp/m.cnn" "$data/item.png" --out "$u/vis" \
        >"$tmp/out" 2>"$tmp/err") || bad "umask $mask: visualize"
    for f in "$model" c.cnn h.csv p.png vis/index.html vis/input.png vis/layer_00_conv2d.png \
        vis/kernels_conv2d.png; do
        got=$(stat -c %a "$u/$f" 2>/dev/null)
        if [ "$got" = "$want" ]; then ok; else bad "umask $mask: $f has mode '$got', expected $want"; fi
    done
done
# the history CSV replaces only a regular file: a FIFO in its place is refused, and stays
mkfifo "$tmp/fifo.csv"
fails_cleanly "history over a FIFO" $train --epochs 1 --history "$tmp/fifo.csv" \
    --checkpoint "$tmp/fifo.ckpt.cnn"
has "$tmp/err" "fifo.csv: expected a regular file to replace, got a FIFO" "history over a FIFO"
if [ -p "$tmp/fifo.csv" ]; then ok; else bad "the FIFO in the history's place was replaced"; fi

# ---- resuming gives the same model as an uninterrupted run ----
expect 0 "train 2 epochs in one go" $train --epochs 2 --save "$tmp/a.cnn" --checkpoint "$tmp/a.ckpt"
expect 0 "train 1 epoch" $train --epochs 1 --checkpoint "$tmp/b.ckpt.cnn"
expect 0 "resume to 2 epochs" $train --epochs 2 --save "$tmp/b.cnn" --checkpoint "$tmp/b.ckpt.cnn" \
    --resume "$tmp/b.ckpt.cnn"
has "$tmp/out" "Resuming from" "resume announces itself"
if cmp -s "$tmp/a.cnn" "$tmp/b.cnn"; then ok; else bad "resumed model differs from uninterrupted"; fi
run predict "$tmp/a.cnn" "$data/t10k-images-idx3-ubyte"
mv "$tmp/out" "$tmp/pred_a"
run predict "$tmp/b.cnn" "$data/t10k-images-idx3-ubyte"
if cmp -s "$tmp/pred_a" "$tmp/out"; then ok; else bad "resumed predictions differ"; fi
expect 2 "resume past the end" $train --epochs 2 --resume "$tmp/b.cnn"

# ---- training tools: BatchNormalization, L2, schedules, callbacks, augmentation ----
printf '%s\n' 'input shape=28,28,1' 'Conv2D 4 3 use_bias=false kernel_regularizer=l2(0.001)' \
    'BatchNormalization' 'LeakyReLU' 'MaxPooling2D' 'Flatten' 'Dense 10 softmax' >"$tmp/bn.model"
tools="--lr-schedule step --lr-decay-rate 0.5 --augment-flip --augment-shift 1 --augment-rotation 5"
tools="$tools --clipnorm 1"
bntrain="train $tmp/bn.model --data $data --batch-size 32 --seed 7 --threads 1"
expect 0 "BatchNormalization model with the training tools, 2 epochs" $bntrain --epochs 2 $tools \
    --save "$tmp/c.cnn" --checkpoint "$tmp/c.ckpt"
has "$tmp/out" "Augmentation: horizontal flips, shifts of up to 1 pixels, rotations of up to 5 degrees" \
    "augmentation announced"
has "$tmp/out" "Learning rate: step decay by 0.5 every" "schedule announced"
has "$tmp/out" "clipnorm 1" "clipnorm announced"
expect 0 "the same, 1 epoch" $bntrain --epochs 1 $tools --checkpoint "$tmp/d.ckpt.cnn"
expect 0 "resumed with schedule and augmentation" $bntrain --epochs 2 $tools --save "$tmp/d.cnn" \
    --checkpoint "$tmp/d.ckpt.cnn" --resume "$tmp/d.ckpt.cnn"
if cmp -s "$tmp/c.cnn" "$tmp/d.cnn"; then ok; else bad "resumed (augmented, scheduled) model differs"; fi
expect 0 "callbacks" $bntrain --epochs 3 --validation-split 0.2 --early-stopping 0 \
    --restore-best-weights --save-best "$tmp/best.cnn" --reduce-lr-on-plateau 1 --save "$tmp/e.cnn"
has "$tmp/out" "EarlyStopping: monitor val_loss, patience 0, restore_best_weights" \
    "EarlyStopping announced"
has "$tmp/out" "ModelCheckpoint: $tmp/best.cnn when val_loss improves" "ModelCheckpoint announced"
has "$tmp/out" "Epoch 1: val_loss improved from None to " "ModelCheckpoint's Keras line"
if grep -q "^Epoch [23]: val_loss \(improved from [0-9]*\.[0-9]\{5\} to [0-9]*\.[0-9]\{5\}, saving model to $tmp/best.cnn\|did not improve from [0-9]*\.[0-9]\{5\}\)$" "$tmp/out"; then ok; else
    bad "ModelCheckpoint's later lines"; grep "^Epoch [0-9]:" "$tmp/out" >&2; fi
if [ -f "$tmp/best.cnn" ]; then ok; else bad "--save-best wrote no file"; fi
expect 2 "step schedule without a rate" $train --lr-schedule step
has "$tmp/err" "--lr-schedule step needs --lr-decay-rate" "schedule usage message"
expect 2 "val_loss without validation" $train --early-stopping 2 --monitor val_loss
has "$tmp/err" "--monitor val_loss needs validation data" "monitor usage message"
expect 2 "restore without early stopping" $train --restore-best-weights
expect 2 "both clipnorms" $train --clipnorm 1 --global-clipnorm 1
expect 2 "unknown monitor" $train --early-stopping 1 --monitor val_los

# ---- Ctrl-C: checkpoint, exit 130, the printed command resumes ----
long="$train --epochs 40 --batch-size 16"
expect 0 "uninterrupted long run" $long --save "$tmp/full.cnn" --checkpoint "$tmp/full.ckpt.cnn"
"$cnn" $long --save "$tmp/int.cnn" --history "$tmp/int.csv" >"$tmp/int.out" 2>"$tmp/int.err" &
pid=$!
tries=0
while ! grep -q "^Epoch 2/" "$tmp/int.out" 2>/dev/null && [ $tries -lt 600 ]; do
    sleep 0.05
    tries=$((tries + 1))
done
kill -INT "$pid"
wait "$pid"
rc=$?
if [ "$rc" -eq 130 ] && grep -q "To resume, run:" "$tmp/int.err"; then ok; else
    bad "Ctrl-C: exit $rc, expected 130 with a resume command"; cat "$tmp/int.err" >&2; fi
if [ -f "$tmp/int.ckpt.cnn" ]; then ok; else bad "Ctrl-C checkpoint int.ckpt.cnn"; fi
resume=$(tail -n 1 "$tmp/int.err")
case "$resume" in
*"--resume $tmp/int.ckpt.cnn") ok ;;
*) bad "resume command: $resume" ;;
esac
sh -c "$resume" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 0 ]; then ok; else bad "running the resume command: exit $rc"; fi
if cmp -s "$tmp/full.cnn" "$tmp/int.cnn"; then ok; else bad "model resumed after Ctrl-C differs"; fi
if [ "$(wc -l <"$tmp/int.csv")" -eq 41 ]; then ok; else bad "history after resume: $(wc -l <"$tmp/int.csv") lines, expected 41"; fi

# ---- damaged and wrong files: a clear message, exit 1, never a crash ----
head -c 200 "$tmp/m.cnn" >"$tmp/truncated.cnn"
fails_cleanly "truncated model" summary "$tmp/truncated.cnn"
has "$tmp/err" "truncated" "truncated model message"
fails_cleanly "truncated model (predict)" predict "$tmp/truncated.cnn" "$data/item.png"
fails_cleanly "truncated model (evaluate)" evaluate "$tmp/truncated.cnn" --data "$data"
printf 'NOTAMODEL-------------------------------------' >"$tmp/magic.cnn"
fails_cleanly "wrong magic" summary "$tmp/magic.cnn"
has "$tmp/err" "magic" "wrong magic message"
printf 'input shape=28,28,1\nConv2d 8 3\n' >"$tmp/unknown.model"
fails_cleanly "unknown layer" summary "$tmp/unknown.model"
has "$tmp/err" "unknown layer 'Conv2d' (did you mean 'Conv2D'?)" "unknown layer message"
fails_cleanly "unknown layer (train)" train "$tmp/unknown.model" --data "$data"
fails_cleanly "missing model file" summary "$tmp/none.model"
printf 'not an image at all' >"$tmp/garbage.png"
fails_cleanly "undecodable image" predict "$tmp/m.cnn" "$tmp/garbage.png"
head -c 5000 "$data/train-images-idx3-ubyte" >"$tmp/short-idx"
fails_cleanly "truncated IDX" train "$tmp/small.model" --train-images "$tmp/short-idx" \
    --train-labels "$data/train-labels-idx1-ubyte" --threads 1
fails_cleanly "labels that do not match" train "$tmp/small.model" --threads 1 \
    --train-images "$data/train-images-idx3-ubyte" --train-labels "$data/t10k-labels-idx1-ubyte"
fails_cleanly "data that do not fit the model" train "$root/examples/seed.model" --data "$data"
fails_cleanly "model too big to train" train "$tmp/big.model" --data "$data"

# ---- a new user's first hour (issue 12) ----
# the image and label files swapped: the rank read before the tensor is freed
fails_cleanly "swapped train files" train "$tmp/small.model" --threads 1 \
    --train-images "$data/train-labels-idx1-ubyte" --train-labels "$data/train-images-idx3-ubyte"
has "$tmp/err" "got rank 1 (labels? check the order" "swapped files name rank 1"
fails_cleanly "swapped test files" evaluate "$tmp/m.cnn" \
    --test-images "$data/t10k-labels-idx1-ubyte" --test-labels "$data/t10k-images-idx3-ubyte"
has "$tmp/err" "got rank 1 " "evaluate: swapped files name rank 1"
fails_cleanly "labels given to predict" predict "$tmp/m.cnn" "$data/t10k-labels-idx1-ubyte"
has "$tmp/err" "got rank 1 " "predict: labels name rank 1"
# the split printed is the split trained on; an empty part is an error, not SIGFPE
python3 - "$data" "$tmp" <<'PY'
import sys
data, out = sys.argv[1], sys.argv[2]
for kind, row in (('images', 784), ('labels', 1)):
    src = open('%s/train-%s-idx%d-ubyte' % (data, kind, 3 if row > 1 else 1), 'rb').read()
    head = 16 if row > 1 else 8
    body = src[head:head + 20 * row]
    open('%s/twenty-%s' % (out, kind), 'wb').write(src[:4] + (20).to_bytes(4, 'big') + src[8:head] + body)
PY
fails_cleanly "validation split leaving no training data" train "$tmp/small.model" --threads 1 \
    --train-images "$tmp/twenty-images" --train-labels "$tmp/twenty-labels" --validation-split 0.96
has "$tmp/err" "--validation-split 0.96 of 20 images would train on 0 and validate on 20" \
    "empty split message"
expect 0 "validation split sizes printed" $train --epochs 1 --validation-split 0.1 \
    --checkpoint "$tmp/split.ckpt"
has "$tmp/out" "Training on 460 images, validating on 52; batch size 32, 15 steps per epoch" \
    "split sizes and steps"
# --momentum is a usage error with adam, written or the default
expect 2 "--momentum with the default optimizer" $train --momentum 0.9
has "$tmp/err" "--momentum applies to sgd and rmsprop, not adam (the default optimizer)" \
    "momentum with default adam message"
expect 2 "--momentum with --optimizer adam" $train --momentum 0.9 --optimizer adam
expect 2 "--momentum with a saved adam model" train "$tmp/m.cnn" --data "$data" --momentum 0.9
has "$tmp/err" "not adam (the saved model's optimizer)" "momentum with saved adam message"
# the input options: the same words in predict and visualize, --scale in visualize
for c in predict visualize; do
    run "$c" --help
    sed -n '/^Pixels (/,/^$/p' "$tmp/out" | grep -v '^$' >"$tmp/pixels-$c"
done
if [ -s "$tmp/pixels-predict" ] && cmp -s "$tmp/pixels-predict" "$tmp/pixels-visualize"; then ok; else
    bad "predict and visualize describe their pixel options differently"; fi
has "$tmp/pixels-visualize" "--scale S" "visualize --help shows --scale"
for c in train evaluate predict visualize; do
    run "$c" --help
    grep -A 2 '^  --scale S ' "$tmp/out" >"$tmp/scale-$c"
done
if [ -s "$tmp/scale-train" ] && cmp -s "$tmp/scale-train" "$tmp/scale-evaluate" \
    && cmp -s "$tmp/scale-train" "$tmp/scale-predict" \
    && cmp -s "$tmp/scale-train" "$tmp/scale-visualize"; then ok; else
    bad "--scale is described differently by train, evaluate, predict and visualize"; fi
has "$tmp/pixels-visualize" "255 - pixel" "visualize --invert is 255 - pixel"
expect 0 "visualize --scale 1 --invert" visualize "$tmp/m.cnn" "$data/item.png" --out "$tmp/vis1" \
    --scale 1 --invert
has "$tmp/out" "Pixels 0..255 x 1, inverted (255 - pixel)" "visualize states its pixels"
if cmp -s "$tmp/vis/layer_04_dense.png" "$tmp/vis1/layer_04_dense.png"; then
    bad "visualize --scale 1 --invert changed nothing"; else ok; fi
expect 2 "visualize --scale malformed" visualize "$tmp/m.cnn" "$data/item.png" --out "$tmp/vis1" \
    --scale x
# a description's random weights are called what they are
expect 0 "evaluate a description" evaluate "$tmp/small.model" --data "$data"
has "$tmp/err" "warning: $tmp/small.model is a model description, so its weights are random" \
    "evaluate warns about untrained weights"
cp "$tmp/small.model" "$tmp/near.model"
cp "$tmp/m.cnn" "$tmp/near.cnn"
expect 0 "predict with a description beside a saved model" predict "$tmp/near.model" "$data/item.png"
has "$tmp/err" "did you mean the saved model $tmp/near.cnn?" "predict names the saved model"
expect 0 "predict a saved model" predict "$tmp/m.cnn" "$data/item.png"
if [ -s "$tmp/err" ]; then bad "predict of a saved model warns: $(cat "$tmp/err")"; else ok; fi

# did you mean: initials, a shorter or longer first word, Keras's underscores
expect 2 "--learning-rate" $train --learning-rate 0.01
has "$tmp/err" "unknown option '--learning-rate' (did you mean '--lr'?)" "--learning-rate suggests --lr"
expect 2 "summary --batch-size" summary "$tmp/small.model" --batch-size 32
has "$tmp/err" "(did you mean '--batch'?)" "summary --batch-size suggests --batch"
expect 2 "--batch_size" $train --batch_size 8
has "$tmp/err" "(did you mean '--batch-size'?)" "--batch_size suggests --batch-size"
expect 2 "--output" visualize "$tmp/m.cnn" "$data/item.png" --output "$tmp/vis"
has "$tmp/err" "(did you mean '--out'?)" "--output suggests --out"
expect 2 "--foo" $train --foo 1
if grep -q "did you mean" "$tmp/err"; then bad "--foo got a suggestion: $(cat "$tmp/err")"; else ok; fi
printf 'input shape=28,28,1\nConv2D 4 3 activation=rleu\n' >"$tmp/typo.model"
fails_cleanly "misspelt activation" summary "$tmp/typo.model"
has "$tmp/err" "got 'rleu' (did you mean 'relu'?)" "activation suggestion"
# --top larger than the classes: all of them, the columns aligned
expect 0 "predict --top 20 of 10 classes" predict "$tmp/m.cnn" "$data/item.png" --top 20
if [ "$(grep -c '^ *[0-9]*\. ' "$tmp/out")" -eq 10 ] \
    && [ "$(grep '^ *[0-9]*\. ' "$tmp/out" | awk '{ print length($0) }' | sort -u | wc -l)" -eq 1 ] \
    && grep -q '^   1\. ' "$tmp/out" && grep -q '^  10\. ' "$tmp/out"; then ok; else
    bad "predict --top 20: rows not 10 or not aligned"; cat "$tmp/out" >&2; fi
# a model without Flatten fails before training starts, naming the layer
printf 'input shape=28,28,1\nConv2D 4 3\nDense 10 activation=softmax\n' >"$tmp/noflat.model"
fails_cleanly "Dense on a rank-3 output" train "$tmp/noflat.model" --data "$data" --threads 1
has "$tmp/err" "from layer dense (Dense), has shape (26, 26, 10)" "no-Flatten message names the layer"
has "$tmp/err" "add Flatten" "no-Flatten message suggests Flatten"
if grep -q "^Epoch" "$tmp/out"; then bad "no-Flatten model started an epoch"; else ok; fi
expect 0 "summary --help" summary --help
has "$tmp/out" "Keras model file, .h5 or .keras" "summary --help names Keras files"

# ---- folders of images: --data DIR of class folders (cnn_dataset) ----
photos=$tmp/photos
python3 - "$photos" <<'EOF2' || bad "writing the image folders"
import os, struct, sys, zlib
root = sys.argv[1]
def png(path, rows, cols, pixels):
    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xffffffff)
    raw = b"".join(b"\0" + bytes(pixels[r * cols:(r + 1) * cols]) for r in range(rows))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", cols, rows, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
for part, count in (("train", 24), ("test", 8)):
    for k, name in enumerate(("cat", "dog")):
        d = os.path.join(root, part, name)
        os.makedirs(d)
        for i in range(count):
            # cats: vertical stripes, dogs: horizontal ones
            px = [200 if ((c if k == 0 else r) // 4 + i) % 2 else 30 for r in range(28) for c in range(28)]
            png(os.path.join(d, "%03d.png" % i), 28, 28, px)
    open(os.path.join(root, part, "cat", "notes.txt"), "w").write("not an image\n")
    os.makedirs(os.path.join(root, part, ".thumbnails"))
EOF2
printf 'input shape=28,28,1\nConv2D 4 3 activation=relu\nMaxPooling2D 2\nFlatten\nDense 2 activation=softmax\n' >"$tmp/two.model"
expect 0 "train from class folders" train "$tmp/two.model" --data "$photos/train" \
    --test-data "$photos/test" --validation-split 0.25 --epochs 2 --seed 3 --workers 2 \
    --save "$tmp/two.cnn" --no-checkpoint
has "$tmp/out" "36 files in 2 classes, the training subset" "the training split by files"
has "$tmp/out" "12 files in 2 classes, the validation subset" "the validation split by files"
has "$tmp/out" "16 files in 2 classes: cat 8, dog 8" "files per class"
has "$tmp/out" "Class names (kept in the model): cat, dog" "class names from the folders"
has "$tmp/out" "Test loss:" "test data from a folder"
# the same seed, the same weights; --workers does not change them
cp "$tmp/two.cnn" "$tmp/two_a.cnn"
expect 0 "train again with 1 worker" train "$tmp/two.model" --data "$photos/train" \
    --test-data "$photos/test" --validation-split 0.25 --epochs 2 --seed 3 --workers 1 \
    --save "$tmp/two.cnn" --no-checkpoint
if cmp -s "$tmp/two.cnn" "$tmp/two_a.cnn"; then ok; else bad "folder training: --workers changed the weights"; fi
expect 0 "predict a directory" predict "$tmp/two.cnn" "$photos/test" --format csv
if [ "$(grep -c '\.png,' "$tmp/out")" -eq 16 ]; then ok; else bad "predict DIR: expected 16 images"; fi
has "$tmp/out" "image,index,class,name,probability,cat,dog" "predict DIR prints the class names"
expect 0 "predict a directory named with a trailing /" predict "$tmp/two.cnn" "$photos/test/"
if grep -q '//' "$tmp/out"; then bad "predict DIR/: a doubled / in the file names"; else ok; fi
expect 0 "evaluate a folder" evaluate "$tmp/two.cnn" --data "$photos/test"
has "$tmp/out" "Evaluated 16 images" "evaluate a folder: every image"
fails_cleanly "10-class model on 2 class folders" train "$tmp/small.model" --data "$photos/train" --no-checkpoint
has "$tmp/err" "the data have 2 classes" "class count mismatch"
expect 2 "--test-data with IDX data" train "$tmp/two.model" --data "$data" --test-data "$photos/test"
expect 2 "--image-size not the model's" train "$tmp/two.model" --data "$photos/train" --image-size 32,32
expect 0 "--random-crop" train "$tmp/two.model" --data "$photos/train" --image-size 32,32 \
    --random-crop --no-checkpoint --test-data "$photos/test"
has "$tmp/out" "Test loss:" "--random-crop trains and tests"
expect 2 "--random-crop from a smaller size" train "$tmp/two.model" --data "$photos/train" \
    --image-size 20,32 --random-crop
expect 2 "--color-mode not the model's" train "$tmp/two.model" --data "$photos/train" --color-mode rgb
# a CSV list of files; and resuming a folder run from its checkpoint gives
# the bytes of an uninterrupted one
printf 'path,label\ncat/000.png,cat\ndog/000.png,dog\ncat/001.png,cat\ndog/001.png,dog\n' >"$photos/test/list.csv"
expect 0 "evaluate a CSV list" evaluate "$tmp/two.cnn" --data "$photos/test/list.csv"
has "$tmp/out" "Evaluated 4 images" "evaluate a CSV list: its 4 images"
expect 0 "folder: 2 epochs" train "$tmp/two.model" --data "$photos/train" --epochs 2 --seed 4 \
    --augment-flip --save "$tmp/whole.cnn" --checkpoint "$tmp/whole.ckpt.cnn"
expect 0 "folder: 1 epoch" train "$tmp/two.model" --data "$photos/train" --epochs 1 --seed 4 \
    --augment-flip --checkpoint "$tmp/half.ckpt.cnn"
expect 0 "folder: resumed to 2" train "$tmp/two.model" --data "$photos/train" --epochs 2 \
    --seed 4 --augment-flip --resume "$tmp/half.ckpt.cnn" --save "$tmp/resumed.cnn" \
    --checkpoint "$tmp/half.ckpt.cnn"
if cmp -s "$tmp/whole.cnn" "$tmp/resumed.cnn"; then ok; else bad "folder: resumed run differs"; fi
printf 'this is not a PNG' >"$photos/train/dog/zz-broken.png"
fails_cleanly "a bad image" train "$tmp/two.model" --data "$photos/train" --no-checkpoint
has "$tmp/err" "zz-broken.png" "a bad image is named"
expect 0 "--skip-bad-images" train "$tmp/two.model" --data "$photos/train" --no-checkpoint --skip-bad-images
has "$tmp/out" "Skipped 1 bad image (--skip-bad-images):" "skipped images counted"
has "$tmp/out" "dog/zz-broken.png" "skipped images listed"

echo "test_cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
