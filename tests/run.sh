#!/bin/sh
# Runs every test program in the given directory and adds up their
# "N passed, N failed" lines; a program that crashes or exits non-zero
# counts as failed. The last line is the total CI reads.
dir=${1:-build/tests}
passed=0
failed=0
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
    line=$(printf '%s\n' "$out" | grep -E '^[a-z_0-9]+: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    p=$(printf '%s' "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
    [ -n "$p" ] || p=0
    [ -n "$f" ] || f=0
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    echo "$name: exit $rc in $(( $(date +%s) - start ))s"
    passed=$((passed + p))
    failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
