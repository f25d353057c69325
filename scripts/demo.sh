#!/bin/sh
# The main job: build everything and train the TensorFlow tutorial convnet on
# Fashion-MNIST (summary, progress bar, test accuracy).
# usage: scripts/demo.sh [EPOCHS] [THREADS]   (defaults: 5 epochs, all cores)
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh
make -s -j"$(nproc)" all
exec ./build/examples/fashion_mnist /usr/share/datasets/fashion-mnist "${1:-5}" "${2:-0}"
