#!/bin/sh
# The shared library exports exactly the API that include/cnn.h declares:
# every function declared there is exported, and nothing else is (the
# library is built with -fvisibility=hidden; CNN_API marks the API).
# Internal functions stay reachable for the tests and fuzzers through the
# static library.
root=$(cd "$(dirname "$0")/.." && pwd)
lib=${CNN_BUILD:-$root/build}/libcnn.so
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { failed=$((failed + 1)); echo "test_exports: $*" >&2; }
if [ ! -f "$lib" ]; then
    fail "no $lib (run make first)"
    echo "test_exports: $passed passed, $failed failed"
    exit 1
fi
# Declared: every cnn_ function the preprocessed header declares (macros
# such as cnn_conv2d(...) are expanded away by -E; function-pointer
# typedefs and members are written (*name)( or type (*name)(, which the
# pattern, a name followed by "(" and then not "*", does not take).
${CC:-cc} -E -P -I"$root/include" "$root/include/cnn.h" |
    grep -oE '\bcnn_[a-z0-9_]+[[:space:]]*\([^*]' | sed -E 's/[[:space:]]*\(.$//' | sort -u >"$tmp/declared"
# Exported: defined dynamic symbols (functions and data).
nm -D --defined-only "$lib" | awk '{print $NF}' | grep -v '^_' | sort -u >"$tmp/exported"
if [ -s "$tmp/declared" ]; then passed=$((passed + 1)); else fail "found no declarations in cnn.h"; fi
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
if [ -z "$missing" ]; then passed=$((passed + 1)); else
    fail "declared in cnn.h but not exported (mark them CNN_API): $(echo $missing)"; fi
if [ -z "$extra" ]; then passed=$((passed + 1)); else
    fail "exported but not declared in cnn.h (internal symbols leak): $(echo $extra)"; fi
# cnn_version() agrees with the header's CNN_VERSION_* macros.
cat >"$tmp/v.c" <<'C'
#include <stdio.h>
#include <string.h>
#include "cnn.h"
int main(void)
{
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", CNN_VERSION_MAJOR, CNN_VERSION_MINOR, CNN_VERSION_PATCH);
    printf("%s %s\n", cnn_version(), strcmp(want, cnn_version()) == 0 ? "same" : want);
    return 0;
}
C
cp "$lib" "$tmp/libcnn.so.0" # the soname the program asks for
# A library built with the sanitizers (make sanitize) needs their runtime
# first in the program too.
san=""
if ldd "$lib" 2>/dev/null | grep -q libasan; then san="-fsanitize=address,undefined"; fi
if ${CC:-cc} $san -I"$root/include" "$tmp/v.c" -o "$tmp/v" "$tmp/libcnn.so.0" 2>"$tmp/err"; then
    out=$(LD_LIBRARY_PATH="$tmp" "$tmp/v" 2>&1)
    case "$out" in
        *" same") passed=$((passed + 1)) ;;
        *) fail "cnn_version() and CNN_VERSION_* disagree: $out" ;;
    esac
else
    fail "a program using cnn_version() does not link against libcnn.so: $(cat "$tmp/err")"
fi
echo "test_exports: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
