#!/usr/bin/python3
"""Fixtures for the Functional (graph) models in tests/test_keras.c: the outputs
of the three real Functional Keras models, computed independently of the
library: PyTorch (float64) running each model's Keras config as a graph, with
the weights read by h5py.

Regenerate (from the repository root; Debian's python3-torch and python3-h5py):

    /usr/bin/python3 tests/keras/gen_graph_reference.py [KERAS_MODELS_DIR]

Models (KERAS_MODELS_DIR defaults to ../shared/keras-models; the two MLPerf Tiny
ones are also in models/mlperf-tiny/):
  mlperf-tiny-resnet8-cifar10.h5     ResNet-8, Add (Keras 2.4, inbound_nodes lists)
  mlperf-tiny-mobilenetv1-vww96.h5   MobileNetV1 0.25, depthwise (a chain, class Functional)
  resnet-mnist-keras3.11.keras       ResNet on MNIST, Add (Keras 3, keras_history)

Inputs need no file: example n's value at (i, j, c) is
    ((n * 37 + i * i * 3 + j * 7 + c * 101 + i * j) % 256) * scale
with scale 1 for ResNet-8 (trained on raw pixels) and 1/255 for the others;
tests/test_keras.c computes the same integers.

Writes tests/keras/graph_outputs.txt: for each model, the output of the layer
before the classifier ("<model> features N D") and the softmax output
("<model> output N D"), one value per line (%.9g). TensorFlow's 'same' padding
puts the odd pixel after (bottom/right), which PyTorch's padding does not: it is
padded explicitly. The graph itself is tests/keras/keras_torch.py, which the
benchmark (bench/bench_torch.py) runs too.
"""
import os
import sys

import numpy as np
import torch

from keras_torch import KerasGraph, input_shape, load

HERE = os.path.dirname(os.path.abspath(__file__))
N = 2
MODELS = [
    ("resnet8", "mlperf-tiny-resnet8-cifar10.h5", 1.0),
    ("mobilenet", "mlperf-tiny-mobilenetv1-vww96.h5", 1.0 / 255),
    ("resnet_mnist", "resnet-mnist-keras3.11.keras", 1.0 / 255),
]


def inputs(shape, scale):
    h, w, c = shape
    n, i, j, k = np.meshgrid(np.arange(N), np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    v = (n * 37 + i * i * 3 + j * 7 + k * 101 + i * j) % 256
    return torch.tensor(v * scale, dtype=torch.float64)  # NHWC


def main():
    models_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "shared", "keras-models")
    lines = ["# tests/keras/gen_graph_reference.py: PyTorch float64 outputs of the Functional models",
             "# <model> <what> <rank> <dims...> then the values"]
    for key, file, scale in MODELS:
        config, weights = load(os.path.join(models_dir, file))
        graph = KerasGraph(config, weights, torch.float64, reference=True).eval()
        with torch.no_grad():
            features, output = graph(inputs(input_shape(config), scale))
        for what, t in (("features", features), ("output", output)):
            t = t.reshape(N, -1)
            lines.append("%s %s 2 %d %d" % (key, what, t.shape[0], t.shape[1]))
            lines += ["%.9g" % v for v in t.flatten().tolist()]
    with open(os.path.join(HERE, "graph_outputs.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
