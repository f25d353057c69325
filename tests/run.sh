#!/bin/sh
# Runs every test program in the given directory and adds up their
# "N passed, N failed" lines (", K skipped" when a test could not run part
# of itself: a data set or model file from outside the repository missing);
# a program that crashes or exits non-zero counts as failed. The skipped
# parts are listed, then the last line is the total CI reads:
# "N passed, N failed", with ", K skipped" appended when K > 0.
dir=${1:-build/tests}
passed=0
failed=0
skipped=0
skips=""
here=$(dirname "$0")
for t in "$dir"/test_* "$here"/test_*.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t")
    start=$(date +%s)
    case "$t" in
        *.sh) out=$(sh "$t" 2>&1) ;;
        *) out=$("$t" 2>&1) ;;
    esac
    rc=$?
    printf '%s\n' "$out" | sed "s/^/  /"
    line=$(printf '%s\n' "$out" | grep -E '^[a-z_0-9]+: [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' | tail -n 1)
    p=$(printf '%s' "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    s=$(printf '%s' "$line" | sed -nE 's/.* ([0-9]+) skipped$/\1/p')
    [ -n "$p" ] || p=0
    [ -n "$f" ] || f=0
    [ -n "$s" ] || s=0
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    echo "$name: exit $rc in $(( $(date +%s) - start ))s"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    skips="$skips$(printf '%s\n' "$out" | sed -n "s/^skipped: /  $name: /p")
"
done
if [ "$skipped" -gt 0 ]; then
    echo "Skipped (files from outside the repository are missing; CNN_REQUIRE_TEST_DATA=1 makes this a failure):"
    printf '%s' "$skips" | grep -v '^$'
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
