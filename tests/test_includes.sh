#!/bin/sh
# The include rule of docs/ARCHITECTURE.md (cli -> io -> model -> layers ->
# kernels -> core; cli/ and examples/ on the public headers only) holds for
# the tree, and scripts/check_includes.sh, which checks it, can fail: a
# copy of the tree with one forbidden include planted per folder must
# report each of them, by file and line, and exit 1.
root=$(cd "$(dirname "$0")/.." && pwd)
check=$root/scripts/check_includes.sh
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() {
    failed=$((failed + 1))
    echo "test_includes: failed: $*" >&2
}

# 1. The tree itself: no violation, and every source file looked at.
out=$(sh "$check" "$root" 2>&1)
rc=$?
if [ $rc -eq 0 ]; then ok; else bad "the tree breaks the include rule (exit $rc):"; echo "$out" >&2; fi
want=$(cd "$root" && find src include cli mpi examples -type f \( -name '*.c' -o -name '*.h' \) | wc -l)
case $out in
*"check_includes: $want files, 0 violations"*) ok ;;
*) bad "expected 'check_includes: $want files, 0 violations', got: $(printf '%s' "$out" | tail -n 1)" ;;
esac

# 2. A copy with forbidden includes planted: each reported, exit 1.
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && cp -R src include cli mpi examples "$tmp/")
plant() { # file, include line: appended, so its line number is the file's last
    printf '%s\n' "$2" >>"$tmp/$1"
    echo "$1:$(wc -l <"$tmp/$1"):"
}
expect=""
expect="$expect $(plant src/kernels/gemm.c '#include "model/model.h"')"   # up to model
expect="$expect $(plant src/core/tensor.c '#include "kernels/vec.h"')"    # core on kernels
expect="$expect $(plant src/layers/dense.c '#include "io/description.h"')" # up to io
expect="$expect $(plant src/model/run.c '#include "io/keras.h"')"          # model on io
expect="$expect $(plant src/kernels/pool.h '#include <layers/layer.h>')"   # angle brackets
expect="$expect $(plant src/layers/conv2d.c '#include "../model/model.h"')"
expect="$expect $(plant src/io/idx.c '#include "cli.h"')"                  # io on the tool
expect="$expect $(plant cli/train.c '#include "model/fit.h"')"             # cli on internals
expect="$expect $(plant examples/quickstart.c '#include "core/error.h"')"
expect="$expect $(plant mpi/cnn_mpi.c '#include "model/model.h"')"
expect="$expect $(plant include/cnn.h '#include "core/tensor.h"')"
expect="$expect $(plant src/quant/qmodel.c '#include "model/model.h"')"   # quant on internals
expect="$expect $(plant src/kernels/qgemm.c '#include "quant/qmodel.h"')" # kernels on quant
# allowed ones planted too: downward, skipping a folder, <system> headers
plant src/io/idx.c '#include "kernels/gemm.h"' >/dev/null
plant src/model/run.c '#include <stdio.h>' >/dev/null
plant cli/train.c '#include "cnn_mpi.h"' >/dev/null
out=$(sh "$check" "$tmp" 2>&1)
rc=$?
if [ $rc -eq 1 ]; then ok; else bad "planted violations: exit $rc, expected 1"; fi
n=0
for where in $expect; do
    n=$((n + 1))
    case $out in
    *"$where"*) ok ;;
    *) bad "planted violation $where not reported" ;;
    esac
done
case $out in
*"check_includes: "*" files, $n violations"*) ok ;;
*) bad "expected exactly the $n planted violations, got:"; echo "$out" >&2 ;;
esac

# 3. A directory without sources is an error, not "0 violations".
sh "$check" "$tmp/cli" >/dev/null 2>&1
rc=$?
if [ $rc -eq 2 ]; then ok; else bad "no src/: exit $rc, expected 2"; fi

echo "test_includes: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
