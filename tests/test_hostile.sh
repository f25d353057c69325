#!/bin/sh
# Hostile inputs and outputs for the cnn tool (issue 18), each a real run:
#   sizes that overflow 64 bits (summary --batch), --max-memory below a page,
#   an IDX of labels given as images (the message once used freed memory),
#   outputs that are a device node (our own, made with mknod: never the real
#   /dev/null) or a FIFO, a symlink planted at the old temporary name, an
#   output that is an input, two runs writing one file, an output directory
#   that is missing, control characters in layer names, and .h5 files that
#   crash or hang libhdf5 (made here from a model cnn saves).
root=$(cd "$(dirname "$0")/.." && pwd)
cnn=${CNN:-$root/build/cnn}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

if [ -z "$CNN" ] && ! make -s -C "$root" all >"$tmp/make.log" 2>&1; then
    cat "$tmp/make.log" >&2
    echo "test_hostile: 0 passed, 1 failed"
    exit 1
fi

test_name=test_hostile
. "$root/tests/cli_checks.sh"
no_epoch() { if grep -q "^Epoch" "$tmp/out"; then bad "$1: training started"; else ok; fi; }

# ---- data: 64 images of 8x8 and their labels ----
python3 - "$tmp" <<'EOF' || { echo "test_hostile: 0 passed, 1 failed"; exit 1; }
import struct, sys
d = sys.argv[1]
def idx(path, dims, body):
    with open(path, 'wb') as f:
        f.write(struct.pack('>BBBB', 0, 0, 8, len(dims)) + b''.join(struct.pack('>I', n) for n in dims) + body)
n = 64
labels = bytes(i % 4 for i in range(n))
pixels = bytes((200 if (p // 8) // 2 == labels[i] else 10) for i in range(n) for p in range(64))
idx(d + '/x.idx', [n, 8, 8], pixels)
idx(d + '/y.idx', [n], labels)
EOF
printf 'input shape=8,8,1\nConv2D 4 3 activation=relu\nFlatten\nDense 4 activation=softmax\n' \
    >"$tmp/m.model"
train="train $tmp/m.model --train-images $tmp/x.idx --train-labels $tmp/y.idx --batch-size 16
--seed 1 --threads 1 --epochs 1"

# ---- 1. sizes beyond 64 bits: a refusal, not a negative number that "fits" ----
printf 'input shape=2147483647\nDense 2\n' >"$tmp/wide.model"
expect 0 "summary --batch 2^30 of 2^31 inputs" summary "$tmp/wide.model" --batch 1073741824
has "$tmp/out" "Training with a batch of 1073741824 needs more than 2^63 bytes" "summary overflow"
if grep -q -- "needs -" "$tmp/out"; then bad "summary printed a negative size"; else ok; fi

# ---- 12. a budget below one page ----
expect 2 "--max-memory 1e-9K" summary "$tmp/m.model" --max-memory 1e-9K
has "$tmp/err" "--max-memory: expected at least 4096 bytes, got '1e-9K' (0 bytes)" "tiny budget"
expect 2 "--max-memory 0" $train --max-memory 0

# ---- 3. labels given as images: the message names the rank (it read freed memory) ----
expect 1 "labels as images" train "$tmp/m.model" --train-images "$tmp/y.idx" \
    --train-labels "$tmp/y.idx"
has "$tmp/err" "got rank 1 (labels? check the order of the image and label files)" "rank 1"

# ---- 6. outputs that are not regular files are refused, before training, and stay ----
mkfifo "$tmp/fifo" "$tmp/fifo.h5"
if mknod "$tmp/dev" c 1 3 2>/dev/null && mknod "$tmp/dev.keras" c 1 3; then
    specials="dev fifo"
else
    echo "test_hostile: mknod failed (not root?): the device node cases are skipped" >&2
    specials="fifo"
fi
for s in $specials; do
    for opt in save checkpoint save-best history plot; do
        case $opt in save-best) extra="--validation-split 0.25" ;; *) extra="" ;; esac
        expect 1 "--$opt $s" $train $extra --"$opt" "$tmp/$s"
        has "$tmp/err" "--$opt $tmp/$s: expected a regular file to replace, got a" "--$opt $s"
        no_epoch "--$opt $s"
    done
done
# Keras exports too
for k in fifo.h5 dev.keras; do
    [ -e "$tmp/$k" ] || continue
    expect 1 "--save $k" $train --save "$tmp/$k" --checkpoint "$tmp/ck.cnn"
    has "$tmp/err" "--save $tmp/$k: expected a regular file to replace, got a" "--save $k"
    no_epoch "--save $k"
done
if [ -p "$tmp/fifo" ] && [ -p "$tmp/fifo.h5" ]; then ok; else bad "a FIFO was replaced"; fi
if [ -e "$tmp/dev" ]; then
    if [ -c "$tmp/dev" ] && [ -c "$tmp/dev.keras" ]; then ok; else
        bad "a device node was replaced"; fi
fi
ls "$tmp"/*.lock >/dev/null 2>&1 && bad "lock files left behind: $(ls "$tmp"/*.lock)" || ok

# ---- 7. a symlink planted at the old fixed temporary name is not followed ----
mkdir "$tmp/d"
echo precious >"$tmp/victim"
ln -s "$tmp/victim" "$tmp/d/h.csv.tmp"
ln -s "$tmp/victim" "$tmp/d/p.png.tmp"
expect 0 "history beside a planted symlink" $train --history "$tmp/d/h.csv" --plot "$tmp/d/p.png" \
    --checkpoint "$tmp/d/ck.cnn"
if [ "$(cat "$tmp/victim")" = precious ]; then ok; else bad "the symlink's target was overwritten"; fi
has "$tmp/d/h.csv" "epoch,loss,accuracy" "history written"
# a symlink planted at the lock's name is refused, not followed
ln -s "$tmp/victim" "$tmp/d/s.cnn.lock"
expect 1 "lock name planted" $train --save "$tmp/d/s.cnn" --checkpoint "$tmp/d/ck.cnn"
has "$tmp/err" "s.cnn.lock" "planted lock named"
if [ "$(cat "$tmp/victim")" = precious ]; then ok; else bad "the lock symlink's target changed"; fi

# ---- 8. an output that is an input; two runs writing one file ----
cp "$tmp/x.idx" "$tmp/x.keep"
expect 1 "--save over --train-images" train "$tmp/m.model" --train-images "$tmp/x.idx" \
    --train-labels "$tmp/y.idx" --save "$tmp/x.idx" --checkpoint "$tmp/ck.cnn"
has "$tmp/err" "--save $tmp/x.idx is the same file as --train-images $tmp/x.idx" "save over input"
if cmp -s "$tmp/x.idx" "$tmp/x.keep"; then ok; else bad "--train-images was overwritten"; fi
ln "$tmp/m.model" "$tmp/hardlink.csv"
cp "$tmp/m.model" "$tmp/m.keep"
expect 1 "--history over MODEL (a hard link)" $train --history "$tmp/hardlink.csv"
has "$tmp/err" "is the same file as MODEL $tmp/m.model" "history over model"
if cmp -s "$tmp/m.model" "$tmp/m.keep"; then ok; else bad "MODEL was overwritten"; fi
# training a saved model in place is allowed
expect 0 "save a model" $train --save "$tmp/s.cnn" --checkpoint "$tmp/ck.cnn"
expect 0 "train a saved model in place" train "$tmp/s.cnn" --train-images "$tmp/x.idx" \
    --train-labels "$tmp/y.idx" --batch-size 16 --threads 1 --save "$tmp/s.cnn" \
    --checkpoint "$tmp/ck.cnn"
# two runs, one --save: the second fails at once, the first goes on
"$cnn" train "$tmp/m.model" --train-images "$tmp/x.idx" --train-labels "$tmp/y.idx" \
    --batch-size 1 --threads 1 --epochs 100000 --save "$tmp/both.cnn" \
    --checkpoint "$tmp/both.ck.cnn" >"$tmp/first.out" 2>&1 &
first=$!
tries=0
while ! grep -q "^Epoch" "$tmp/first.out" 2>/dev/null && [ $tries -lt 300 ]; do
    sleep 0.1
    tries=$((tries + 1))
done
expect 1 "a second run with the same --save" $train --save "$tmp/both.cnn" --checkpoint "$tmp/c2.cnn"
has "$tmp/err" "--save $tmp/both.cnn: another cnn is writing it" "second run"
no_epoch "second run"
if kill -0 $first 2>/dev/null; then ok; else bad "the first run died"; fi
kill -KILL $first 2>/dev/null
wait $first 2>/dev/null
# its lock dies with it: a new run may write there
expect 0 "after the holder was killed" $train --save "$tmp/both.cnn" --checkpoint "$tmp/c2.cnn"

# ---- 9. an output directory that is missing: before the first epoch ----
expect 1 "--save into a missing directory" $train --save "$tmp/nowhere/m.cnn" \
    --checkpoint "$tmp/ck.cnn"
has "$tmp/err" "--save $tmp/nowhere/m.cnn: cannot create $tmp/nowhere/m.cnn.lock in its directory" \
    "missing directory"
no_epoch "missing directory"
# a read-only directory: root may write anywhere, so as root the run is
# made as nobody (setpriv), in a copy of the data it can read
mkdir "$tmp/ro" "$tmp/ro/out" && cp "$tmp/m.model" "$tmp/x.idx" "$tmp/y.idx" "$tmp/ro/"
chmod 755 "$tmp" "$tmp/ro" && chmod 644 "$tmp/ro/m.model" "$tmp/ro/x.idx" "$tmp/ro/y.idx"
chmod 555 "$tmp/ro/out"
as=""
if [ "$(id -u)" -eq 0 ]; then
    if setpriv --reuid 65534 --regid 65534 --clear-groups true 2>/dev/null; then
        as="setpriv --reuid 65534 --regid 65534 --clear-groups"
    else
        as=skip
    fi
fi
if [ "$as" != skip ]; then
    $as "$cnn" train "$tmp/ro/m.model" --train-images "$tmp/ro/x.idx" \
        --train-labels "$tmp/ro/y.idx" --batch-size 16 --threads 1 --epochs 1 \
        --save "$tmp/ro/out/m.cnn" --no-checkpoint >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 1 ]; then ok; else bad "--save into a read-only directory: exit $rc, expected 1"; fi
    has "$tmp/err" "--save $tmp/ro/out/m.cnn: cannot create $tmp/ro/out/m.cnn.lock in its directory (Permission denied)" \
        "read-only directory"
    no_epoch "read-only directory"
else
    echo "test_hostile: cannot run as another user: the read-only directory case is skipped" >&2
fi
chmod 700 "$tmp"

# ---- 9. control characters in layer names are escaped when printed ----
printf 'input shape=8,8,1\nConv2D 4 3 name="a\033[2Jb"\nFlatten name="x\ty"\nDense 4\n' \
    >"$tmp/esc.model"
expect 0 "summary of escaped names" summary "$tmp/esc.model"
if LC_ALL=C grep -q "$(printf '\033')" "$tmp/out"; then bad "summary printed a raw ESC"; else ok; fi
has "$tmp/out" 'a\x1b[2Jb' "ESC shown as \\x1b"
has "$tmp/out" 'x\ty' "tab shown as \\t"

# ---- 4. a checkpoint whose step lies past the end of the epoch ----
expect 0 "a checkpoint" $train --checkpoint "$tmp/pos.cnn"
python3 - "$tmp/pos.cnn" <<'EOF'
import struct, sys, zlib
path = sys.argv[1]
b = bytearray(open(path, 'rb').read())
# optimizer steps 4 (64 images, batches of 16), epoch 1, step 0, 620 slots
at = b.find(struct.pack('<QIQQ', 4, 1, 0, 620))
assert at > 0, 'training block not found'
struct.pack_into('<QIQ', b, at, 3, 0, 3)  # 3 steps done, in epoch 1, at step 3
struct.pack_into('<I', b, len(b) - 4, zlib.crc32(bytes(b[:-4])) & 0xffffffff)
open(path, 'wb').write(b)
EOF
expect 1 "resume past the epoch's end" train "$tmp/m.model" --resume "$tmp/pos.cnn" \
    --train-images "$tmp/x.idx" --train-labels "$tmp/y.idx" --batch-size 32 --epochs 2 \
    --checkpoint "$tmp/pos2.cnn"
has "$tmp/err" "$tmp/pos.cnn is at step 3 of epoch 1, but an epoch has 2 steps with --batch-size 32" \
    "step past the end"
no_epoch "step past the end"
expect 0 "resume at step 3 of 4" train "$tmp/m.model" --resume "$tmp/pos.cnn" \
    --train-images "$tmp/x.idx" --train-labels "$tmp/y.idx" --batch-size 16 --epochs 1 \
    --checkpoint "$tmp/pos2.cnn"
has "$tmp/out" "Resuming from $tmp/pos.cnn at epoch 1, step 3" "resume at step 3"

# ---- 11. a loss that does not fit the output ----
expect 1 "binary_crossentropy on a softmax" $train --loss binary_crossentropy
has "$tmp/err" "binary_crossentropy scores each of the 4 outputs as its own yes/no" "bce softmax"
no_epoch "bce softmax"
printf 'input shape=8,8,1\nFlatten\nDense 4 activation=sigmoid\n' >"$tmp/sig.model"
expect 0 "binary_crossentropy on sigmoids" train "$tmp/sig.model" --train-images "$tmp/x.idx" \
    --train-labels "$tmp/y.idx" --batch-size 16 --threads 1 --epochs 1 --loss binary_crossentropy \
    --save "$tmp/sig.cnn" --checkpoint "$tmp/ck.cnn"
expect 0 "evaluate binary accuracy" evaluate "$tmp/sig.cnn" --test-images "$tmp/x.idx" \
    --test-labels "$tmp/y.idx"
has "$tmp/out" "(binary accuracy over the 4 outputs; the top class is right for" "binary accuracy"

# ---- libhdf5 crashes and hangs stay in the reading process ----
expect 0 "save an .h5" $train --save "$tmp/k.h5" --checkpoint "$tmp/ck.cnn"
python3 - "$tmp" <<'EOF'
import struct, sys
d = sys.argv[1]
b = bytearray(open(d + '/k.h5', 'rb').read())
g = b.find(b'GCOL')
p, best, best_size = g + 16, 0, 0
while p + 16 <= len(b):
    idx = struct.unpack_from('<H', b, p)[0]
    size = struct.unpack_from('<Q', b, p + 8)[0]
    if idx == 0 or size > len(b):
        break
    if size > best_size:
        best, best_size = p, size
    p += 16 + (size + 7) // 8 * 8
crash = bytearray(b)
struct.pack_into('<Q', crash, best + 8, 1 << 28)  # longer than its heap: H5HG_read
open(d + '/crash.h5', 'wb').write(crash)
hang = bytearray(b)
hang[g + 16:g + 32] = bytes(16)  # free space of size 0: the heap parser never advances
open(d + '/hang.h5', 'wb').write(hang)
EOF
expect 1 "an .h5 that crashes libhdf5" summary "$tmp/crash.h5"
has "$tmp/err" "cnn summary: reading $tmp/crash.h5: the HDF5 library crashed (" "crash"
start=$(date +%s)
expect 1 "an .h5 that hangs libhdf5" summary "$tmp/hang.h5"
has "$tmp/err" "cnn summary: reading $tmp/hang.h5: the HDF5 library gave no answer in 10 s" "hang"
took=$(( $(date +%s) - start ))
if [ $took -le 20 ]; then ok; else bad "the hang took ${took}s"; fi
expect 1 "train on an .h5 that crashes libhdf5" train "$tmp/crash.h5" --train-images "$tmp/x.idx" \
    --train-labels "$tmp/y.idx" --checkpoint "$tmp/ck.cnn"
has "$tmp/err" "the HDF5 library crashed" "train crash"
expect 0 "the undamaged .h5" summary "$tmp/k.h5"

# ---- a folder image whose header declares more than --max-memory lets a decode take ----
# 54 bytes declaring 4000x4000 RGB (48 MB, which stb would zero-fill): within the old
# 4 GiB decode limit of a folder read into memory, beyond --max-memory 2M
python3 - "$tmp/folder" <<'EOF'
import os, struct, sys
def bmp(path, w, h, pixels=b''):
    with open(path, 'wb') as f:
        f.write(b'BM' + struct.pack('<IHHI', 54 + w * h * 3, 0, 0, 54)
                + struct.pack('<IiiHHIIiiII', 40, w, h, 1, 24, 0, 0, 0, 0, 0, 0) + pixels)
for k in range(4):
    os.makedirs('%s/c%d' % (sys.argv[1], k))
    bmp('%s/c%d/ok.bmp' % (sys.argv[1], k), 8, 8, bytes(range(192)))
bmp(sys.argv[1] + '/c0/huge.bmp', 4000, 4000)
EOF
expect 1 "evaluate a folder with a huge image header" evaluate "$tmp/s.cnn" --data "$tmp/folder" \
    --max-memory 2M --threads 1
has "$tmp/err" "$tmp/folder/c0/huge.bmp: image declares 4000 x 4000 x 3, which needs" "decode budget"
has "$tmp/err" "more than the allowed 2097152" "decode budget named"
expect 0 "the same folder skipping bad images" evaluate "$tmp/s.cnn" --data "$tmp/folder" \
    --max-memory 2M --threads 1 --skip-bad-images

echo "test_hostile: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
