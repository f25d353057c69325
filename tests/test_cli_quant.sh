#!/bin/sh
# cnn quantize and the commands that run its files (evaluate, predict,
# summary): a small convnet trained here for one epoch on the first images
# of Fashion-MNIST (or synthetic stripes), quantized from IDX files, from
# the MNIST layout and from a folder of class folders; the MLPerf Tiny
# ResNet-8 (a Keras .h5 graph); and hostile inputs - truncated and damaged
# quantized files, a layer int8 cannot run, calibration data of the wrong
# shape, missing options. CNN=path runs another build of the tool.
root=$(cd "$(dirname "$0")/.." && pwd)
cnn=${CNN:-$root/build/cnn}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
if [ ! -x "$cnn" ]; then
    echo "test_cli_quant: $cnn is missing"
    echo "test_cli_quant: 0 passed, 1 failed"
    exit 1
fi
test_name=test_cli_quant
. "$root/tests/cli_checks.sh"
fails_cleanly() {
    what=$1
    shift
    run "$@"
    if [ "$rc" -eq 1 ] && grep -q "^cnn [a-z]*: " "$tmp/err"; then ok; else
        bad "$what: exit $rc, expected 1 with a 'cnn COMMAND: ' message"; fi
}

# ---- data: 300 training and 200 test images, IDX files and class folders ----
data=$tmp/data
mkdir -p "$data"
python3 - "$data" "${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}" <<'EOF' || { echo "test_cli_quant: 0 passed, 1 failed"; exit 1; }
import gzip, os, struct, sys, zlib
out, src = sys.argv[1], sys.argv[2]
def idx(path, dims, body):
    with open(path, 'wb') as f:
        f.write(struct.pack('>BBBB', 0, 0, 8, len(dims)) + b''.join(struct.pack('>I', d) for d in dims) + body)
def png(path, rows, cols, pixels):
    raw = b''.join(b'\0' + bytes(pixels[r * cols:(r + 1) * cols]) for r in range(rows))
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    header = struct.pack('>IIBBBBB', cols, rows, 8, 0, 0, 0, 0)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
sets = {'train': 300, 't10k': 200}
images = {}
if os.path.exists(os.path.join(src, 'train-images-idx3-ubyte.gz')):
    for name, n in sets.items():
        with gzip.open(os.path.join(src, name + '-images-idx3-ubyte.gz')) as f:
            f.read(16); pixels = f.read(n * 784)
        with gzip.open(os.path.join(src, name + '-labels-idx1-ubyte.gz')) as f:
            f.read(8); labels = f.read(n)
        images[name] = (pixels, labels)
else:
    seed = 12345
    for name, n in sets.items():
        pixels, labels = bytearray(), bytearray()
        for i in range(n):
            k = (i * 7 + (name == 't10k')) % 10
            labels.append(k)
            for r in range(28):
                for c in range(28):
                    seed = (seed * 1103515245 + 12345) % 2**31
                    pixels.append(min(255, (200 if 2 * k + 3 <= r <= 2 * k + 6 else 0) + seed % 40))
        images[name] = (bytes(pixels), bytes(labels))
for name, n in sets.items():
    pixels, labels = images[name]
    idx(os.path.join(out, name + '-images-idx3-ubyte'), [n, 28, 28], pixels)
    idx(os.path.join(out, name + '-labels-idx1-ubyte'), [n], labels)
idx(os.path.join(out, 'wide-images'), [4, 28, 30], bytes(4 * 28 * 30))
pixels, labels = images['t10k']
for i in range(40):
    d = os.path.join(out, 'folder', 'c%d' % labels[i])
    os.makedirs(d, exist_ok=True)
    png(os.path.join(d, '%03d.png' % i), 28, 28, pixels[i * 784:(i + 1) * 784])
EOF

cat >"$tmp/small.model" <<'EOF'
input shape=28,28,1
Conv2D filters=8 kernel_size=3 padding=same use_bias=false
BatchNormalization
Activation relu
MaxPooling2D pool_size=2
Flatten
Dropout rate=0.2
Dense units=10 activation=softmax
EOF
expect 0 "train the small model" train "$tmp/small.model" --data "$data" --epochs 1 --threads 1 \
    --save "$tmp/small.cnn"

# ---- help and usage ----
expect 0 "quantize --help" quantize --help
has "$tmp/out" "--calibrate DATA" "quantize --help"
has "$tmp/out" "--calibration-images N" "quantize --help"
has "$tmp/out" "--calibration-method M" "quantize --help names the method option"
run --help
has "$tmp/out" "quantize" "cnn --help lists quantize"
expect 2 "quantize without --calibrate" quantize "$tmp/small.cnn" --out "$tmp/q"
has "$tmp/err" "--calibrate DATA is required" "missing --calibrate"
expect 2 "quantize without --out" quantize "$tmp/small.cnn" --calibrate "$data"
has "$tmp/err" "--out FILE is required" "missing --out"
expect 2 "quantize with --calibration-images 0" quantize "$tmp/small.cnn" --calibrate "$data" \
    --out "$tmp/q" --calibration-images 0

# ---- quantize from the MNIST layout, IDX images and a folder ----
expect 0 "quantize (MNIST layout)" quantize "$tmp/small.cnn" --calibrate "$data" \
    --calibration-images 100 --out "$tmp/small.q" --threads 1
has "$tmp/out" "Saved $tmp/small.q" "quantize output"
has "$tmp/out" "int8 (float32:" "quantize sizes"
if [ -s "$tmp/small.q" ] && [ "$(head -c 8 "$tmp/small.q")" = "CNNQUANT" ]; then ok; else
    bad "the quantized file does not start with CNNQUANT"; fi
expect 0 "quantize (IDX images)" quantize "$tmp/small.cnn" \
    --calibrate "$data/train-images-idx3-ubyte" --calibration-images 100 --out "$tmp/idx.q"
if cmp -s "$tmp/small.q" "$tmp/idx.q"; then ok; else
    bad "the same 100 images from IDX and from the MNIST layout gave different files"; fi
expect 0 "quantize (folder)" quantize "$tmp/small.cnn" --calibrate "$data/folder" \
    --out "$tmp/folder.q"
has "$tmp/out" "Saved" "quantize from a folder"

# ---- --calibration-method: a different file; minmax is the default ----
for m in percentile percentile:99.9 mse; do
    expect 0 "quantize --calibration-method $m" quantize "$tmp/small.cnn" --calibrate "$data" \
        --calibration-images 100 --out "$tmp/m.q" --calibration-method $m
    has "$tmp/out" "calibrated ($m)" "quantize names the method"
done
expect 0 "quantize --calibration-method minmax" quantize "$tmp/small.cnn" --calibrate "$data" \
    --calibration-images 100 --out "$tmp/mm.q" --calibration-method minmax
if cmp -s "$tmp/small.q" "$tmp/mm.q"; then ok; else bad "minmax is not the default"; fi
for m in median percentile:49 percentile:x mse:1; do
    expect 2 "quantize --calibration-method $m" quantize "$tmp/small.cnn" --calibrate "$data" \
        --out "$tmp/q" --calibration-method $m
    has "$tmp/err" "--calibration-method: expected minmax, percentile" "bad method named"
done

# ---- summary, evaluate, predict of the quantized file ----
expect 0 "summary of a quantized file" summary "$tmp/small.q"
has "$tmp/out" "Quantized model (int8)" "summary header"
has "$tmp/out" "conv2d                           Conv2D" "summary op row (BN and relu fused)"
has "$tmp/out" "the float32 model's:" "summary float size"
if grep -q "BatchNormalization" "$tmp/out"; then bad "summary: BatchNormalization not folded"; else ok; fi
expect 0 "evaluate float" evaluate "$tmp/small.cnn" --data "$data" --threads 1
facc=$(sed -n 's/^accuracy: \([0-9.]*\).*/\1/p' "$tmp/out")
expect 0 "evaluate int8" evaluate "$tmp/small.q" --data "$data" --threads 1
has "$tmp/out" "Evaluated 200 images with the int8 model" "evaluate int8 header"
qacc=$(sed -n 's/^accuracy: \([0-9.]*\).*/\1/p' "$tmp/out")
# int8 within 3 points of float on 200 images
if [ -n "$facc" ] && [ -n "$qacc" ] && \
    awk -v f="$facc" -v q="$qacc" 'BEGIN { exit !(q > f - 0.03 && q <= 1) }'; then ok; else
    bad "int8 accuracy $qacc vs float $facc"; fi
expect 0 "evaluate int8 (json)" evaluate "$tmp/small.q" --data "$data" --format json
has "$tmp/out" '"quantized": true, "images": 200' "evaluate json"
expect 0 "evaluate int8 (IDX files)" evaluate "$tmp/small.q" \
    --test-images "$data/t10k-images-idx3-ubyte" --test-labels "$data/t10k-labels-idx1-ubyte"
has "$tmp/out" "accuracy: $qacc" "the same accuracy from IDX files"
expect 0 "evaluate int8 (folder)" evaluate "$tmp/small.q" --data "$data/folder"
has "$tmp/out" "Evaluated 40 images" "evaluate a folder"
expect 0 "predict int8 (IDX)" predict "$tmp/small.q" "$data/t10k-images-idx3-ubyte" --index 3 \
    --format csv
has "$tmp/out" "image,index,class,name,probability" "predict csv header"
expect 0 "predict int8 (folder)" predict "$tmp/small.q" "$data/folder" --top 1
has "$tmp/out" "000.png" "predict names the images"

# ---- a Keras graph: the MLPerf Tiny ResNet-8 (raw pixels) ----
r8=$root/models/mlperf-tiny/mlperf-tiny-resnet8-cifar10.h5
expect 1 "ResNet-8 on 28x28x1 images" quantize "$r8" --calibrate "$data" --out "$tmp/r8.q"
has "$tmp/err" "calibration data: dimension 1 is 28, the model expects 32" "wrong-shaped calibration"
python3 - "$tmp/cifar-images" <<'EOF'
import struct, sys
n = 16
with open(sys.argv[1], 'wb') as f:
    f.write(struct.pack('>BBBB', 0, 0, 8, 4) + struct.pack('>4I', n, 32, 32, 3))
    f.write(bytes((i * 37 + i // 97) % 256 for i in range(n * 32 * 32 * 3)))
EOF
expect 0 "quantize ResNet-8" quantize "$r8" --calibrate "$tmp/cifar-images" --scale 1 \
    --out "$tmp/r8.q"
expect 0 "summary of int8 ResNet-8" summary "$tmp/r8.q"
has "$tmp/out" "add_2                            Add" "ResNet-8's Add ops"
expect 0 "predict int8 ResNet-8" predict "$tmp/r8.q" "$tmp/cifar-images" --scale 1 --index 0

# ---- refusals and hostile files ----
cat >"$tmp/upsample.model" <<'EOF'
input shape=8,8,1
UpSampling2D
Flatten
Dense units=2
EOF
expect 1 "a layer int8 cannot run" quantize "$tmp/upsample.model" \
    --calibrate "$data/wide-images" --out "$tmp/u.q"
has "$tmp/err" "calibration data" "refused before or at calibration"
python3 - "$tmp/up8" <<'EOF'
import struct, sys
with open(sys.argv[1], 'wb') as f:
    f.write(struct.pack('>BBBB', 0, 0, 8, 3) + struct.pack('>3I', 4, 8, 8) + bytes(4 * 64))
EOF
expect 1 "UpSampling2D refused by name" quantize "$tmp/upsample.model" --calibrate "$tmp/up8" \
    --out "$tmp/u.q"
has "$tmp/err" "layer 0 'up_sampling2d' (UpSampling2D): this layer kind has no int8 kernel" \
    "the refusal names the layer"
if [ -e "$tmp/u.q" ]; then bad "a refused model left a file"; else ok; fi
expect 1 "quantizing a quantized file" quantize "$tmp/small.q" --calibrate "$data" --out "$tmp/x.q"
has "$tmp/err" "already an int8 quantized model" "quantize twice"
size=$(wc -c <"$tmp/small.q")
head -c $((size / 2)) "$tmp/small.q" >"$tmp/cut.q"
fails_cleanly "a truncated quantized file" evaluate "$tmp/cut.q" --data "$data"
has "$tmp/err" "cut.q: checksum" "truncated file named"
head -c 10 "$tmp/small.q" >"$tmp/tiny.q"
fails_cleanly "a 10-byte quantized file" summary "$tmp/tiny.q"
cp "$tmp/small.q" "$tmp/flip.q"
printf '\377' | dd of="$tmp/flip.q" bs=1 seek=200 conv=notrunc 2>/dev/null
fails_cleanly "a damaged quantized file" predict "$tmp/flip.q" "$data/t10k-images-idx3-ubyte"
has "$tmp/err" "flip.q: checksum: expected CRC-32" "damaged file named"
fails_cleanly "train refuses a quantized file" train "$tmp/small.q" --data "$data" --epochs 1
has "$tmp/err" "an int8 quantized model" "train names the format"

echo "test_cli_quant: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
