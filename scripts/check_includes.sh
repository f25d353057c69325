#!/bin/sh
# The include rule of docs/ARCHITECTURE.md, checked: every #include of the
# library, the tool, the MPI add-on and the examples points one way,
#
#   cli -> (cnn.h) -> io -> model -> layers -> kernels -> core
#
# A folder of src/ may include its own headers and those of the folders to
# its right (skipping some is fine), never one to its left; cnn.h (the
# public header) is open to all. cli/ and examples/ see only the public
# headers; mpi/ (libcnn_mpi) the public headers and core/error.h. tests/,
# fuzz/ and bench/ may include anything (they test and time internals) and
# are not checked.
#
#   sh scripts/check_includes.sh [ROOT]
#
# Prints each include that breaks the rule as "file:line: #include "x":
# FOLDER/ may include only ...", then "check_includes: N files, N
# violations". Exits 0 when there are none, 1 when there are, 2 when it
# could not check (no src/ under ROOT, awk failed).
root=${1:-$(dirname "$0")/..}
if ! cd "$root" 2>/dev/null || [ ! -d src ]; then
    echo "check_includes: ${1:-.}: no src/ to check" >&2
    exit 2
fi

# What each folder may include: header paths as written in #include, a
# trailing / meaning every header of that folder.
allowed_for() {
    case $1 in
    src/core) echo "cnn.h core/" ;;
    src/kernels) echo "cnn.h core/ kernels/" ;;
    src/layers) echo "cnn.h core/ kernels/ layers/" ;;
    src/model) echo "cnn.h core/ kernels/ layers/ model/" ;;
    src/io) echo "cnn.h core/ kernels/ layers/ model/ io/" ;;
    src/quant) echo "cnn.h core/ kernels/ quant/" ;;
    src/export) echo "cnn.h core/ kernels/ layers/ model/ quant/ export/" ;;
    include) echo "cnn.h" ;;
    cli) echo "cnn.h cnn_mpi.h cli.h" ;;
    mpi) echo "cnn.h cnn_mpi.h core/error.h" ;;
    examples) echo "cnn.h" ;;
    esac
}

out=$(mktemp) || exit 2
trap 'rm -f "$out"' EXIT
files=0
for folder in src/core src/kernels src/layers src/model src/io src/quant src/export include cli mpi examples; do
    [ -d "$folder" ] || continue
    list=$(find "$folder" -type f \( -name '*.c' -o -name '*.h' \) | sort)
    [ -n "$list" ] || continue
    files=$((files + $(printf '%s\n' "$list" | wc -l)))
    # Every include: "x" always; <x> when x names a project header (angle
    # brackets hide nothing from the rule); a macro include is refused.
    # shellcheck disable=SC2086 # the file names have no spaces
    awk -v folder="$folder" -v allowed="$(allowed_for "$folder")" '
        /^[ \t]*#[ \t]*include/ {
            text = $0
            sub(/^[ \t]*#[ \t]*include[ \t]*/, "", text)
            open = substr(text, 1, 1)
            if (open != "\"" && open != "<") {
                printf "%s:%d: #include %s: not a header name\n", FILENAME, FNR, text
                next
            }
            name = substr(text, 2)
            sub(/[">].*/, "", name)
            if (open == "<" && name !~ /^(core|kernels|layers|model|io|quant|cli)\// \
                && name !~ /^(cnn|cnn_mpi|cli)\.h$/)
                next   # a system or third-party header
            ok = 0
            n = split(allowed, a, " ")
            for (i = 1; i <= n; i++)
                if (name == a[i] || (a[i] ~ /\/$/ && index(name, a[i]) == 1 && name !~ /\.\./))
                    ok = 1
            if (!ok)
                printf "%s:%d: #include %s%s%s: %s/ may include only %s\n", FILENAME, FNR, open,
                       name, open == "<" ? ">" : "\"", folder, allowed
        }' $list >>"$out" || { echo "check_includes: awk failed on $folder" >&2; exit 2; }
done
violations=$(wc -l <"$out")
cat "$out"
echo "check_includes: $files files, $violations violations"
[ "$violations" -eq 0 ]
