#!/bin/sh
# make install PREFIX=... puts cnn.h, the libraries and cnn.pc in place, and
# `cc app.c $(pkg-config --cflags --libs cnn)` builds a program against them
# that also runs (README, "Building and installing"): against the shared
# library found through LD_LIBRARY_PATH, and through an rpath (the line the
# README gives for a private prefix); and linked statically.
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
passed=0
failed=0
check() {
    if "$@" >"$prefix/log" 2>&1; then passed=$((passed + 1)); else
        failed=$((failed + 1)); echo "test_install: failed: $*" >&2; cat "$prefix/log" >&2; fi
}
# runs WHAT COMMAND...: COMMAND prints what the program must print.
runs() {
    what=$1
    shift
    out=$("$@" 2>&1)
    if [ "$out" = "$want" ]; then passed=$((passed + 1)); else
        failed=$((failed + 1))
        printf 'test_install: failed: %s: expected "%s", got:\n%s\n' "$what" "$want" "$out" >&2
    fi
}
check make -s install PREFIX="$prefix"
check test -f "$prefix/include/cnn.h" -a -f "$prefix/lib/libcnn.a" -a -f "$prefix/lib/libcnn.so" \
    -a -f "$prefix/lib/libcnn.so.0" -a -f "$prefix/lib/pkgconfig/cnn.pc"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"

# A program that uses the library for real: builds a model, counts its
# parameters, and reports a refused layer with the library's message.
cat >"$prefix/app.c" <<'EOF'
#include <cnn.h>
#include <stdio.h>

int main(void)
{
    cnn_model *m = NULL;
    if (cnn_model_create(&m, cnn_shape_hwc(8, 8, 1))
        || cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3}))
        || cnn_model_add_flatten(m, cnn_flatten())
        || cnn_model_add_dense(m, cnn_dense(.units = 2))) {
        fprintf(stderr, "%s\n", cnn_last_error());
        return 1;
    }
    printf("params: %lld\n", (long long)cnn_model_param_count(m));
    printf("units 0: %s\n", cnn_status_name(cnn_model_add_dense(m, cnn_dense(.units = 0))));
    cnn_model_free(m);
    return 0;
}
EOF
# 3*3*1*4 + 4 = 40; 6*6*4 * 2 + 2 = 290
want="params: 330
units 0: CNN_ERR_INVALID_ARGUMENT"

# the README's line: the shared library, found at run time through
# LD_LIBRARY_PATH (a private prefix) ...
check sh -c "cc '$prefix/app.c' \$(pkg-config --cflags --libs cnn) -o '$prefix/app'"
check sh -c "LD_LIBRARY_PATH='$prefix/lib' ldd '$prefix/app' | grep -q 'libcnn.so.0 => $prefix/lib/libcnn.so.0'"
runs "app with LD_LIBRARY_PATH" env LD_LIBRARY_PATH="$prefix/lib" "$prefix/app"
# ... or through the rpath the README gives, with no environment
check sh -c "cc '$prefix/app.c' \$(pkg-config --cflags --libs cnn) \
    -Wl,-rpath,\$(pkg-config --variable=libdir cnn) -o '$prefix/app_rpath'"
check sh -c "env -u LD_LIBRARY_PATH ldd '$prefix/app_rpath' | grep -q 'libcnn.so.0 => $prefix/lib/libcnn.so.0'"
runs "app with an rpath" env -u LD_LIBRARY_PATH "$prefix/app_rpath"
# statically linked: nothing to find at run time
check sh -c "cc -static-libgcc '$prefix/app.c' \$(pkg-config --cflags cnn) '$prefix/lib/libcnn.a' \$(pkg-config --libs-only-l --static cnn | sed 's/-lcnn//') -o '$prefix/app_static'"
check sh -c "! ldd '$prefix/app_static' | grep -q libcnn"
runs "app linked statically" "$prefix/app_static"
# the README's example builds too
check sh -c "cc examples/quickstart.c \$(pkg-config --cflags --libs cnn) -o '$prefix/quickstart'"
echo "test_install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
