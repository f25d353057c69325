#!/bin/sh
# The table of docs/DEPLOY.md: exports each model with cnn export --c,
# compiles NAME.c for a Cortex-M4 with Debian's gcc-arm-none-eabi
# (-mcpu=cortex-m4 -mthumb -Os -c) and reads flash (text + rodata) and RAM
# (data + bss: the static arena) from arm-none-eabi-size; then builds
# NAME.c + NAME_test.c for ARM Linux (arm-linux-gnueabihf-gcc -static) and
# runs the test vectors under qemu-arm, and says whether the outputs' bits
# equal x86's (gcc -O2). Each model twice: float, and int8 (--int8,
# calibrated on uniform inputs: the sizes do not depend on the data).
#
#   sh scripts/deploy_sizes.sh [MODEL...]     (default: the table's models)
#
# Prints a Markdown table. Needs build/cnn (make), gcc, arm-none-eabi-gcc,
# arm-linux-gnueabihf-gcc and qemu-arm.
root=$(cd "$(dirname "$0")/.." && pwd)
cnn=${CNN:-$root/build/cnn}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for tool in "$cnn" gcc arm-none-eabi-gcc arm-none-eabi-size arm-linux-gnueabihf-gcc qemu-arm; do
    command -v "$tool" >/dev/null 2>&1 || { echo "deploy_sizes: $tool not found" >&2; exit 2; }
done
[ $# -gt 0 ] || set -- "$root/models/mlperf-tiny/mlperf-tiny-resnet8-cifar10.h5" \
    "$root/models/mlperf-tiny/mlperf-tiny-mobilenetv1-vww96.h5" \
    "$root/examples/tutorial_convnet.model" "$root/examples/fashion_bn.model"

# the bytes of an object's sections whose names start with one of the words
sections() {
    arm-none-eabi-size -A "$1" | awk -v want="$2" '
        BEGIN { n = split(want, w, " ") }
        { for (i = 1; i <= n; i++) if (index($1, w[i]) == 1) { sum += $2; break } }
        END { print sum + 0 }'
}

echo "| model | kind | flash (text + rodata) | RAM (data + bss) | arena | qemu-arm vectors | bits = x86 |"
echo "|---|---|---:|---:|---:|---|---|"
row() { # MODEL KIND [OPTIONS]
    model=$1 kind=$2
    shift 2
    name=$(basename "$model" | sed 's/\.[^.]*$//; s/[^A-Za-z0-9_]/_/g; s/^[^A-Za-z]/m&/')_$kind
    d="$tmp/$name"
    if ! "$cnn" export "$model" --c "$d" --name "$name" "$@" >"$tmp/log" 2>&1; then
        echo "| $(basename "$model") | $kind | refused: $(grep -v warning "$tmp/log" | tail -n 1 | sed 's/^cnn export: export: //') | | | | |"
        return
    fi
    arm-none-eabi-gcc -std=c99 -mcpu=cortex-m4 -mthumb -Os -c "$d/$name.c" -o "$d/m4.o" || exit 1
    flash=$(sections "$d/m4.o" ".text .rodata")
    ram=$(sections "$d/m4.o" ".data .bss")
    arena=$(sed -n 's/^#define [A-Z0-9_]*_ARENA_BYTES \([0-9]*\)$/\1/p' "$d/$name.h")
    arm-linux-gnueabihf-gcc -std=c99 -O2 -static "$d/$name.c" "$d/${name}_test.c" -o "$d/arm" || exit 1
    gcc -std=c99 -O2 "$d/$name.c" "$d/${name}_test.c" -o "$d/x86" || exit 1
    if qemu-arm "$d/arm" >"$d/vec" 2>&1; then vec=pass; else vec=FAIL; fi
    "$d/x86" --dump >"$d/x86.dump"
    qemu-arm "$d/arm" --dump >"$d/arm.dump"
    if cmp -s "$d/x86.dump" "$d/arm.dump"; then same=yes; else same=no; fi
    echo "| $(basename "$model") | $kind | $flash | $ram | $arena | $vec | $same |"
}

for model in "$@"; do
    row "$model" float
    row "$model" int8 --int8
done
