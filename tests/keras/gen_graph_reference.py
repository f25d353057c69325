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
padded explicitly here.
"""
import io
import json
import os
import re
import sys
import zipfile

import h5py
import numpy as np
import torch
import torch.nn.functional as F

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


def snake(name):
    """Keras's to_snake_case: "Conv2D" -> "conv2d", "BatchNormalization" -> "batch_normalization"."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def load(path):
    """(config, {layer name: [weights]})."""
    if path.endswith(".h5"):
        f = h5py.File(path, "r")
        config = json.loads(f.attrs["model_config"])
        mw = f["model_weights"]
        weights = {}
        for name in mw.attrs["layer_names"]:
            name = name.decode()
            g = mw[name]
            weights[name] = [np.array(g[w.decode()], dtype=np.float64) for w in g.attrs["weight_names"]]
        return config, weights
    z = zipfile.ZipFile(path)
    config = json.loads(z.read("config.json"))
    f = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
    weights, seen = {}, {}
    for layer in config["config"]["layers"]:
        key = snake(layer["class_name"])
        count = seen.get(key, 0)
        seen[key] = count + 1
        key = key if count == 0 else "%s_%d" % (key, count)
        g = f["layers"].get(key)
        if g is not None and "vars" in g and len(g["vars"]):
            weights[layer["config"]["name"]] = [np.array(g["vars"][str(i)], dtype=np.float64)
                                                for i in range(len(g["vars"]))]
    return config, weights


def same_pad(x, k, s, d=(1, 1)):
    """TensorFlow's 'same' padding of NCHW x for kernel k, strides s."""
    pads = []
    for axis in (3, 2):  # F.pad lists the last dimension first
        size, kk, ss, dd = x.shape[axis], k[axis - 2], s[axis - 2], d[axis - 2]
        ke = (kk - 1) * dd + 1
        out = -(-size // ss)
        total = max((out - 1) * ss + ke - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def activation(x, name):
    return {"linear": lambda t: t, "relu": F.relu, "softmax": lambda t: F.softmax(t, dim=-1)}[name](x)


def inbound(layer):
    nodes = layer["inbound_nodes"]
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3
        names = []

        def walk(a):
            if isinstance(a, list):
                for e in a:
                    walk(e)
            elif isinstance(a, dict) and a.get("class_name") == "__keras_tensor__":
                names.append(a["config"]["keras_history"][0])
        walk(node["args"])
        return names
    return [t[0] for t in node]


def run(config, weights, x):
    """x NHWC float64 -> (features, output) of the graph."""
    out = {}
    layers = config["config"]["layers"]
    order = []
    for layer in layers:
        c, cls, name = layer["config"], layer["class_name"], layer["config"]["name"]
        order.append(name)
        if cls == "InputLayer":
            out[name] = x.permute(0, 3, 1, 2)  # NCHW
            continue
        ins = [out[n] for n in inbound(layer)]
        t = ins[0]
        w = weights.get(name, [])
        if cls in ("Conv2D", "DepthwiseConv2D"):
            k, s, d = c["kernel_size"], c["strides"], c.get("dilation_rate", [1, 1])
            if c["padding"] == "same":
                t = same_pad(t, k, s, d)
            kern = torch.tensor(w[0])
            if cls == "Conv2D":
                kern = kern.permute(3, 2, 0, 1)
                groups = 1
            else:  # (kh, kw, in, mult) -> (in * mult, 1, kh, kw)
                kh, kw, cin, mult = kern.shape
                kern = kern.permute(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
                groups = cin
            bias = torch.tensor(w[1]) if c.get("use_bias", True) else None
            t = F.conv2d(t, kern, bias, stride=s, dilation=d, groups=groups)
            t = activation(t, c.get("activation", "linear"))
        elif cls == "BatchNormalization":
            gamma, beta, mean, var = (torch.tensor(v).view(1, -1, 1, 1) for v in w)
            t = (t - mean) / torch.sqrt(var + c["epsilon"]) * gamma + beta
        elif cls == "Activation":
            t = activation(t, c["activation"])
        elif cls == "ReLU":
            t = F.relu(t)
        elif cls == "Add":
            t = sum(ins[1:], ins[0])
        elif cls == "AveragePooling2D":
            assert c["padding"] == "valid"
            t = F.avg_pool2d(t, c["pool_size"], c["strides"])
        elif cls == "GlobalAveragePooling2D":
            t = t.mean(dim=(2, 3))
        elif cls == "Flatten":
            t = t.permute(0, 2, 3, 1).reshape(t.shape[0], -1) if t.dim() == 4 else t
        elif cls == "Dense":
            t = activation(t @ torch.tensor(w[0]) + torch.tensor(w[1]), c["activation"])
        elif cls == "Dropout":
            pass
        else:
            raise SystemExit("layer class %s: not in this generator" % cls)
        out[name] = t
    last = layers[-1]
    features = out[inbound(last)[0]]
    return features, out[last["config"]["name"]]


def main():
    models_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "shared", "keras-models")
    lines = ["# tests/keras/gen_graph_reference.py: PyTorch float64 outputs of the Functional models",
             "# <model> <what> <rank> <dims...> then the values"]
    for key, file, scale in MODELS:
        config, weights = load(os.path.join(models_dir, file))
        shape = None
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "InputLayer":
                c = layer["config"]
                shape = (c.get("batch_shape") or c.get("batch_input_shape"))[1:]
        features, output = run(config, weights, inputs(shape, scale))
        for what, t in (("features", features), ("output", output)):
            t = t.reshape(N, -1)
            lines.append("%s %s 2 %d %d" % (key, what, t.shape[0], t.shape[1]))
            lines += ["%.9g" % v for v in t.flatten().tolist()]
    with open(os.path.join(HERE, "graph_outputs.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
