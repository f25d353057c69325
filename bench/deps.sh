#!/bin/sh
# What the benchmark needs besides the build: PyTorch from Debian, and
# OpenBLAS so that PyTorch's matrix products do not fall back to Debian's
# reference BLAS (the default libblas.so.3 alternative without it).
# bench/decode.c also times libspng (libspng-dev), which the library does not use.
set -e
missing=""
for p in python3-torch libopenblas0-pthread dataset-fashion-mnist libspng-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "bench: missing Debian packages:$missing; install them with: sudo apt-get install -y$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq $missing >/dev/null
