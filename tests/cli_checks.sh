# Check helpers shared by the command-line tests (sourced, not run: its
# name does not start with test_). The sourcing script sets test_name,
# tmp (a scratch directory), cnn (the tool), passed=0 and failed=0.
ok() { passed=$((passed + 1)); }
bad() {
    failed=$((failed + 1))
    echo "$test_name: failed: $*" >&2
    if [ -s "$tmp/err" ]; then sed 's/^/    /' "$tmp/err" | head -n 5 >&2; fi
}
# run ARGS...: cnn's output goes to $tmp/out and $tmp/err, its status to $rc.
run() { "$cnn" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
# expect STATUS WHAT ARGS...
expect() {
    want=$1 what=$2
    shift 2
    run "$@"
    if [ "$rc" -eq "$want" ]; then ok; else bad "$what: exit $rc, expected $want"; fi
}
# has FILE TEXT WHAT: FILE contains TEXT.
has() { if grep -q -F -- "$2" "$1"; then ok; else bad "$3: '$2' not found in $(basename "$1")"; fi; }
