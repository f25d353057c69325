#!/bin/sh
# Builds the library and runs the whole test suite; the last line is
# "N passed, N failed", with ", K skipped" appended when tests had to skip
# part of themselves because a file from outside the repository is missing
# (a Keras model of $CNN_KERAS_MODELS, else ../shared/keras-models; the
# Fashion-MNIST package; Open MPI): the skipped parts are listed above it.
#   sh scripts/test.sh        the suite (build/)
#   sh scripts/test.sh --ci   what CI runs (.ci/run): the suite; the suite
#                             again built with AddressSanitizer and
#                             UndefinedBehaviorSanitizer and -DNDEBUG
#                             (build-asan/, `make sanitize`); a short training
#                             and the file parsers under valgrind
#                             (tests/valgrind.sh). Each step ends with its own
#                             total; the last line adds them all up, and the
#                             exit status is non-zero if anything failed.
#                             CNN_REQUIRE_TEST_DATA=1 is set: CI has every
#                             file, so a skip there is a failure.
set -e
cd "$(dirname "$0")/.."
if [ "${1:-}" != --ci ]; then
    sh scripts/deps.sh
    make -s -j"$(nproc)" all tests
    sh tests/run.sh build/tests
    exit
fi

sh scripts/deps.sh --ci
set +e
export CNN_REQUIRE_TEST_DATA=1
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
passed=0
failed=0
skipped=0
# step NAME COMMAND...: runs COMMAND, shows its output and adds up its
# "N passed, N failed[, K skipped]" total: its last such line, which make may
# follow with its own error line (a step without one, a build, counts as one
# failure if it fails).
step() {
    name=$1
    shift
    start=$(date +%s)
    "$@" >"$log/out" 2>&1
    rc=$?
    at=$(grep -nE '^([a-z_0-9]+: )?[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log/out" \
        | tail -n 1 | cut -d: -f1)
    total=""
    [ -z "$at" ] || total=$(sed -n "${at}p" "$log/out")
    if [ -n "$total" ]; then
        sed "${at}d" "$log/out"
        p=$(printf '%s' "$total" | sed -E 's/^([a-z_0-9]+: )?([0-9]+) passed.*/\2/')
        f=$(printf '%s' "$total" | sed -E 's/.* ([0-9]+) failed.*/\1/')
        s=$(printf '%s' "$total" | sed -nE 's/.* ([0-9]+) skipped$/\1/p')
    else
        cat "$log/out"
        p=0
        f=0
        s=0
    fi
    [ -n "$s" ] || s=0
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    extra=""
    [ "$s" -eq 0 ] || extra=", $s skipped"
    echo "== $name: $p passed, $f failed$extra, exit $rc in $(($(date +%s) - start)) s"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
}
step "build" make -s -j"$(nproc)" all tests
step "suite" sh tests/run.sh build/tests
step "sanitizer build (ASan + UBSan, -DNDEBUG)" make -s -j"$(nproc)" --no-print-directory sanitize-build
step "suite under ASan + UBSan" make -s --no-print-directory sanitize
step "valgrind" sh tests/valgrind.sh
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
