#!/bin/sh
# The library never ends the process: no exit, abort or assert in src/ (a
# user's mistake is a status and a message, never a crash), checked twice -
# in the source, and in what the built library links against (so a macro
# or a helper cannot hide a call). The suite itself also runs with -DNDEBUG
# (the sanitizer build), so no test depends on an assert either.
#   CNN_BUILD=dir checks another build's libcnn.a (default build/).
root=$(cd "$(dirname "$0")/.." && pwd)
lib=$root/${CNN_BUILD:-build}/libcnn.a
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() {
    failed=$((failed + 1))
    echo "test_no_exit: failed: $*" >&2
}

# 1. The source: calls of exit, _Exit, _exit, quick_exit, abort, assert
#    (comments and strings aside: none are allowed to look like a call).
#    One exception: the child process that src/io/keras_isolate.c forks to
#    run libhdf5 ends with _exit - it is the library's own process, never
#    the caller's, and must not run the caller's atexit handlers.
hits=$(grep -rnE '\b(exit|_Exit|_exit|quick_exit|abort|assert)[[:space:]]*\(' "$root/src" \
    --include='*.c' --include='*.h' | grep -vE '/src/io/keras_isolate\.c:[0-9]+:[[:space:]]*_exit\(')
if [ -z "$hits" ]; then ok; else bad "src/ calls exit, abort or assert:"; echo "$hits" >&2; fi
hits=$(grep -rnE '#[[:space:]]*include[[:space:]]*<assert\.h>' "$root/src")
if [ -z "$hits" ]; then ok; else bad "src/ includes assert.h:"; echo "$hits" >&2; fi

# 2. The library as built: no undefined reference to a function that ends
#    the process.
if [ ! -f "$lib" ] && [ -z "$CNN_BUILD" ]; then
    make -s -C "$root" "build/libcnn.a" >/dev/null 2>&1
fi
if [ -f "$lib" ]; then
    ok
    symbols=$(nm -u "$lib" 2>/dev/null | awk '/^.*:$/ { obj = $0 } $NF != "_exit" || obj != "keras_isolate.o:" { print $NF }' |
        sed 's/@.*//' | sort -u |
        grep -E '^(exit|_exit|_Exit|quick_exit|abort|__assert_fail|__assert_perror_fail|__assert|err|errx|verr|verrx|error|error_at_line)$')
    if [ -z "$symbols" ]; then ok; else
        bad "$(basename "$lib") links against: $(echo $symbols)"
        for s in $symbols; do
            nm -A -u "$lib" 2>/dev/null | grep -E "[[:space:]]$s(@.*)?\$" | sed 's/^/    /' >&2
        done
    fi
else
    bad "$lib is missing"
fi

echo "test_no_exit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
