#!/bin/sh
# cnn export --c (docs/DEPLOY.md), each a real run: models exported, their C
# compiled warning-free (-std=c99 -Wall -Wextra -pedantic -Werror) with gcc
# and clang, with no undefined symbol (no libc, no libm), and their test
# vectors passed; a tampered expected value fails them; layers without a
# kernel refused by name with nothing written; names that are not C
# identifiers and targets that are not regular files refused. With
# arm-linux-gnueabihf-gcc and qemu-arm: the same files cross-compiled
# statically, their vectors passed under qemu-arm and their outputs' bits
# equal to x86's; with arm-none-eabi-gcc: compiled for a Cortex-M4 (skips
# counted otherwise).
root=$(cd "$(dirname "$0")/.." && pwd)
cnn=${CNN:-$root/build/cnn}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
skipped=0

if [ -z "$CNN" ] && ! make -s -C "$root" all >"$tmp/make.log" 2>&1; then
    cat "$tmp/make.log" >&2
    echo "test_export: 0 passed, 1 failed"
    exit 1
fi

test_name=test_export
. "$root/tests/cli_checks.sh"
skip() { skipped=$((skipped + 1)); echo "skipped: $*"; }
flags="-std=c99 -Wall -Wextra -pedantic -Werror -O2"

# export MODEL NAME [OPTIONS]: exports, compiles with each compiler, runs the vectors
export_and_test() {
    model=$1 name=$2 dir="$tmp/$2"
    shift 2
    expect 0 "export $name" export "$model" --c "$dir" --name "$name" "$@"
    has "$tmp/out" "Arena:" "export $name prints the arena"
    arena=$(sed -n "s/^#define $(echo "$name" | tr a-z A-Z)_ARENA_BYTES \([0-9]*\)$/\1/p" "$dir/$name.h")
    if [ -n "$arena" ] && grep -q "^Arena: $arena bytes" "$tmp/out"; then ok; else
        bad "$name: the arena printed is not the header's ($arena)"; fi
    # the generated code's own includes: stdint.h and its header only
    if grep '^#include' "$dir/$name.c" | grep -v -e '<stdint.h>' -e "\"$name.h\"" | grep -q .; then
        bad "$name.c includes more than stdint.h"; else ok; fi
    for cc in gcc clang; do
        if ! command -v $cc >/dev/null 2>&1; then skip "$cc not installed"; continue; fi
        # shellcheck disable=SC2086
        if $cc $flags -fno-tree-loop-distribute-patterns -c "$dir/$name.c" -o "$tmp/$name.$cc.o" \
            2>"$tmp/err" || $cc $flags -c "$dir/$name.c" -o "$tmp/$name.$cc.o" 2>"$tmp/err"; then
            ok; else bad "$name.c does not compile warning-free with $cc"; continue; fi
        # shellcheck disable=SC2086
        if $cc $flags -c "$dir/${name}_test.c" -o "$tmp/${name}_test.$cc.o" 2>"$tmp/err" &&
            $cc "$tmp/$name.$cc.o" "$tmp/${name}_test.$cc.o" -o "$tmp/${name}_test.$cc" 2>"$tmp/err"
        then ok; else bad "${name}_test.c does not build with $cc"; continue; fi
        if "$tmp/${name}_test.$cc" >"$tmp/vec" 2>&1 && grep -q ': ok$' "$tmp/vec"; then ok; else
            cat "$tmp/vec" >&2; bad "$name: test vectors fail ($cc)"; fi
    done
    if command -v gcc >/dev/null 2>&1; then
        # gcc itself may turn loops into memset/memcpy; without that pattern
        # pass nothing is left to link against
        gcc -std=c99 -O2 -fno-tree-loop-distribute-patterns -c "$dir/$name.c" -o "$tmp/u.o"
        if [ -z "$(nm -u "$tmp/u.o")" ]; then ok; else
            bad "$name.o needs $(nm -u "$tmp/u.o" | tr '\n' ' ')"; fi
        "$tmp/${name}_test.gcc" --dump >"$tmp/$name.x86"
    fi
}

export_and_test "$root/tests/data/export/zoo.model" zoo
export_and_test "$root/examples/resnet_fashion.model" resnet_fashion
export_and_test "$root/examples/lenet5.model" lenet5
export_and_test "$root/models/mlperf-tiny/mlperf-tiny-resnet8-cifar10.h5" resnet8

# ---- int8: the integer outputs are libcnn's, bit for bit ----
export_and_test "$root/tests/data/export/chain_int8.model" chain8 --int8
has "$tmp/vec" "int8 outputs identical" "chain8: the int8 outputs are checked"
export_and_test "$root/examples/fashion_bn.model" fashion8 --int8
# calibrated on images from an IDX file
python3 - "$tmp" <<'PY' || bad "cannot write the calibration IDX"
import struct, sys
n = 32
body = bytes((i * 37 + p * 11) % 256 for i in range(n) for p in range(14 * 12))
with open(sys.argv[1] + '/calib.idx', 'wb') as f:
    f.write(struct.pack('>BBBBIII', 0, 0, 8, 3, n, 14, 12) + body)
PY
printf 'input shape=14,12,1\nConv2D 4 3 activation=relu\nMaxPooling2D 2\nFlatten\nDense 3 activation=softmax\n' \
    >"$tmp/gray.model"
export_and_test "$tmp/gray.model" gray8 --int8 --calibrate "$tmp/calib.idx" --count 20
# the test inputs are the first calibration images: pixel 11 is 11/255
if grep -q "0.0431372[0-9]*f" "$tmp/gray8/gray8_test.c"; then ok; else
    bad "gray8: the test inputs are not the calibration images"; fi
# a changed int8 expectation fails the test
sed 's/^static const int8_t test_expected_q\[\([0-9]*\)\] = {$/&\n    (int8_t)(1 +/; ' "$tmp/chain8/chain8_test.c" |
    awk 'f == 1 { sub(/,/, "),"); f = 2 } /\(int8_t\)\(1 \+$/ { f = 1 } { print }' >"$tmp/tampered8.c"
if gcc -std=c99 -O2 "$tmp/chain8/chain8.c" "$tmp/tampered8.c" -I"$tmp/chain8" -o "$tmp/tampered8" 2>"$tmp/err" &&
    ! "$tmp/tampered8" >"$tmp/vec"; then ok; else bad "a wrong int8 expectation passes"; fi
has "$tmp/vec" "int8 outputs DIFFERENT" "the tampered int8 vectors report"
# graphs: every op kind the quantizer makes (pad, tables, Add, Concatenate
# requantized, global pooling), the arena at the quantizer's own plan
export_and_test "$root/tests/data/export/graph_int8.model" graph8 --int8
has "$tmp/vec" "int8 outputs identical" "graph8: the int8 outputs are checked"
for kernel in q_pad q_lut q_add q_concat q_global_avg q_depthwise; do
    if grep -q "^    $kernel(arena" "$tmp/graph8/graph8.c"; then ok; else
        bad "graph8: no $kernel call (the test model lost an op kind)"; fi
done
# MLPerf Tiny ResNet-8 (Keras .h5) int8, calibrated on RGB images; then the
# same file through cnn quantize and cnn export QUANTIZED: no Python anywhere
python3 - "$tmp" <<'PY' || bad "cannot write the RGB calibration IDX"
import struct, sys
n = 8
body = bytes((i * 37 + p * 11) % 256 for i in range(n) for p in range(32 * 32 * 3))
with open(sys.argv[1] + '/rgb.idx', 'wb') as f:
    f.write(struct.pack('>BBBBIIII', 0, 0, 8, 4, n, 32, 32, 3) + body)
PY
r8="$root/models/mlperf-tiny/mlperf-tiny-resnet8-cifar10.h5"
export_and_test "$r8" resnet8q --int8 --calibrate "$tmp/rgb.idx"
has "$tmp/vec" "int8 outputs identical" "resnet8q: the int8 outputs are checked"
if grep -q "^    q_add(arena" "$tmp/resnet8q/resnet8q.c"; then ok; else bad "resnet8q: no Add"; fi
expect 0 "quantize ResNet-8 (.h5)" quantize "$r8" --calibrate "$tmp/rgb.idx" --out "$tmp/r8.q"
export_and_test "$tmp/r8.q" resnet8file
has "$tmp/vec" "int8 outputs identical" "resnet8file: the int8 outputs are checked"
# the arena is the quantizer's plan: what cnn quantize reports per image
kib=$(sed -n 's/^Arena: [0-9]* bytes (\([0-9.]*\) KiB;.*/\1/p' "$tmp/out")
if [ -n "$kib" ] && "$cnn" summary "$tmp/r8.q" 2>/dev/null | grep -q "$kib KiB"; then ok; else
    bad "resnet8file: the arena ($kib KiB) is not the quantized model's"; fi
expect 2 "--int8 on a quantized file" export "$tmp/r8.q" --c "$tmp/q2" --int8
has "$tmp/err" "already quantized" "the quantized-file refusal says why"
# a layer the quantizer cannot take: refused by name, nothing written
expect 1 "int8 of Rescaling is refused" export "$root/tests/data/export/zoo.model" --c "$tmp/t8" --int8
has "$tmp/err" "layer 0 'rescaling' (Rescaling)" "the int8 refusal names the layer"
if [ -e "$tmp/t8" ]; then bad "a refused int8 export made its directory"; else ok; fi
expect 2 "--calibrate without --int8" export "$root/examples/lenet5.model" --c "$tmp/t9" --calibrate "$tmp/calib.idx"

# ---- a test that can fail: one expected value changed ----
sed 's/^static const float test_expected\[\([0-9]*\)\] = {$/&\n    1000.0f +/' "$tmp/zoo/zoo_test.c" \
    >"$tmp/tampered.c"
if gcc -std=c99 -O2 "$tmp/zoo/zoo.c" "$tmp/tampered.c" -I"$tmp/zoo" -o "$tmp/tampered" 2>"$tmp/err" &&
    ! "$tmp/tampered" >"$tmp/vec"; then ok; else bad "a wrong expected value passes"; fi
has "$tmp/vec" "FAILED" "the tampered vectors report"

# ---- refused: layers with no exported kernel, named; nothing written ----
printf 'input shape=8,8,2\nConv2D 4 3\nSeparableConv2D 4 3 name=sep\nFlatten\nDense 2\n' >"$tmp/sep.model"
expect 1 "SeparableConv2D is refused" export "$tmp/sep.model" --c "$tmp/refused" --name sep
has "$tmp/err" "layer 1 'sep' (SeparableConv2D)" "the refusal names the layer and its kind"
if [ -e "$tmp/refused" ]; then bad "a refused export made its directory"; else ok; fi
printf 'input shape=4\nDense 3 activation=gelu name=g\n' >"$tmp/gelu.model"
expect 1 "gelu is refused" export "$tmp/gelu.model" --c "$tmp/refused" --name g
has "$tmp/err" "'g' (Dense): activation 'gelu'" "the refusal names the activation"
printf 'input shape=4\nLayerNormalization name=ln\n' >"$tmp/ln.model"
expect 1 "LayerNormalization is refused" export "$tmp/ln.model" --c "$tmp/refused"
has "$tmp/err" "'ln' (LayerNormalization)" "the refusal names LayerNormalization"

# ---- hostile names and paths ----
small="$root/examples/lenet5.model"
for bad_name in 1abc a-b ../up 'a b' _x int "$(printf 'a%.0s' $(seq 1 49))" ''; do
    expect 1 "name '$bad_name' is refused" export "$small" --c "$tmp/names" --name "$bad_name"
done
has "$tmp/err" "expected a C identifier" "the name refusal says what is expected"
if [ -z "$(ls -A "$tmp/names" 2>/dev/null)" ]; then ok; else bad "a refused name wrote files"; fi
mkdir -p "$tmp/dir/m.c"
expect 1 "a directory at NAME.c" export "$small" --c "$tmp/dir" --name m
has "$tmp/err" "not a regular file" "a directory target is named"
if [ -e "$tmp/dir/m.h" ]; then bad "m.h written although m.c is refused"; else ok; fi
mkdir -p "$tmp/fifo" && mkfifo "$tmp/fifo/m_test.c"
expect 1 "a FIFO at NAME_test.c" export "$small" --c "$tmp/fifo" --name m
if [ -p "$tmp/fifo/m_test.c" ]; then ok; else bad "the FIFO was replaced"; fi
: >"$tmp/plainfile"
expect 1 "DIR is a regular file" export "$small" --c "$tmp/plainfile"
expect 2 "--c is required" export "$small"
expect 0 "export --help" export --help
has "$tmp/out" "NAME_predict_with_arena" "the help shows the API"
# an existing regular file is replaced whole
mkdir -p "$tmp/again" && echo old >"$tmp/again/model.c"
expect 0 "an existing NAME.c is replaced" export "$small" --c "$tmp/again"
if grep -q "model_predict_with_arena" "$tmp/again/model.c"; then ok; else bad "model.c not replaced"; fi

# ---- ARM: Linux (qemu-arm) and a Cortex-M4 ----
if command -v arm-linux-gnueabihf-gcc >/dev/null 2>&1 && command -v qemu-arm >/dev/null 2>&1; then
    for name in zoo resnet8 chain8 fashion8 graph8 resnet8q resnet8file; do
        d="$tmp/$name"
        if arm-linux-gnueabihf-gcc -std=c99 -Wall -Wextra -pedantic -Werror -O2 -static \
            "$d/$name.c" "$d/${name}_test.c" -o "$tmp/$name.arm" 2>"$tmp/err"; then ok; else
            bad "$name does not cross-compile for ARM Linux"; continue; fi
        if qemu-arm "$tmp/$name.arm" >"$tmp/vec" 2>&1 && grep -q ': ok$' "$tmp/vec"; then ok; else
            cat "$tmp/vec" >&2; bad "$name: test vectors fail under qemu-arm"; fi
        qemu-arm "$tmp/$name.arm" --dump >"$tmp/$name.armdump"
        if cmp -s "$tmp/$name.x86" "$tmp/$name.armdump"; then ok; else
            bad "$name: ARM outputs differ from x86's"; fi
    done
else
    skip "arm-linux-gnueabihf-gcc or qemu-arm not installed (the ARM Linux runs)"
fi
if command -v arm-none-eabi-gcc >/dev/null 2>&1; then
    for name in zoo resnet8 chain8 graph8 resnet8q; do
        if arm-none-eabi-gcc -std=c99 -Wall -Wextra -pedantic -Werror -mcpu=cortex-m4 -mthumb -Os \
            -c "$tmp/$name/$name.c" -o "$tmp/$name.m4.o" 2>"$tmp/err"; then ok; else
            bad "$name does not compile for a Cortex-M4"; fi
    done
else
    skip "arm-none-eabi-gcc not installed (the Cortex-M4 build)"
fi

if [ "$skipped" -gt 0 ]; then
    echo "test_export: $passed passed, $failed failed, $skipped skipped"
else
    echo "test_export: $passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
