#!/bin/sh
# Builds the library and runs the whole test suite; the last line is
# "N passed, N failed".
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh
make -s -j"$(nproc)" all tests
sh tests/run.sh build/tests
