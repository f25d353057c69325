#!/bin/sh
# make install PREFIX=... puts cnn.h, the libraries and cnn.pc in place, and
# `cc app.c $(pkg-config --cflags --libs cnn)` builds a program against them
# (shared and static).
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
passed=0
failed=0
check() {
    if "$@" >"$prefix/log" 2>&1; then passed=$((passed + 1)); else
        failed=$((failed + 1)); echo "test_install: failed: $*" >&2; cat "$prefix/log" >&2; fi
}
check make -s install PREFIX="$prefix"
check test -f "$prefix/include/cnn.h" -a -f "$prefix/lib/libcnn.a" -a -f "$prefix/lib/libcnn.so" \
    -a -f "$prefix/lib/pkgconfig/cnn.pc"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
check sh -c "cc examples/quickstart.c \$(pkg-config --cflags --libs cnn) -o '$prefix/app'"
check sh -c "LD_LIBRARY_PATH='$prefix/lib' ldd '$prefix/app' | grep -q 'libcnn.so.0 => $prefix/lib'"
check sh -c "cc -static-libgcc examples/quickstart.c \$(pkg-config --cflags cnn) '$prefix/lib/libcnn.a' \$(pkg-config --libs-only-l --static cnn | sed 's/-lcnn//') -o '$prefix/app_static'"
echo "test_install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
