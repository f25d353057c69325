"""A Keras Functional model's config and weights run as a PyTorch graph: the
one translation shared by the fixture generator (tests/keras/gen_graph_reference.py,
float64, inference) and the benchmark (bench/bench_torch.py, float32, inference
and training). No TensorFlow: the config is read as JSON, the weights with h5py.

    config, weights = load(path)            # .h5 (Keras 2) or .keras (Keras 3)
    g = KerasGraph(config, weights, torch.float32)
    features, output = g(x_nhwc)            # the classifier's input, the model's output
    logits = g(x_nhwc, logits=True)[1]      # the last layer without its softmax

Layouts: activations run NCHW inside; Conv2D kernels (kh, kw, in, out) become
(out, in, kh, kw), DepthwiseConv2D (kh, kw, in, mult) becomes PyTorch's
grouped (in * mult, 1, kh, kw); Flatten flattens NHWC, as Keras does.
TensorFlow's 'same' padding puts the odd pixel after (bottom/right), which
PyTorch's padding does not: such convolutions are padded explicitly.

reference=True (the fixtures) computes BatchNormalization in inference as
(x - mean) / sqrt(var + eps) * gamma + beta and pads every 'same' convolution
explicitly, as the fixtures were first computed; reference=False (the benchmark)
uses what a PyTorch user would: F.batch_norm, with batch statistics while
training (Keras's momentum: PyTorch's is 1 - it), and the convolution's own
padding where it is symmetric.
"""
import io
import json
import re
import zipfile

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def snake(name):
    """Keras's to_snake_case: "Conv2D" -> "conv2d", "BatchNormalization" -> "batch_normalization"."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def load(path):
    """(config, {layer name: [weights as float64 arrays]})."""
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


def input_shape(config):
    """(rows, cols, channels) of the model's InputLayer."""
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "InputLayer":
            c = layer["config"]
            return tuple((c.get("batch_shape") or c.get("batch_input_shape"))[1:])
    raise SystemExit("no InputLayer in the config")


def same_pads(shape, k, s, d=(1, 1)):
    """TensorFlow's 'same' padding of an NCHW shape: F.pad's (left, right, top, bottom)."""
    pads = []
    for axis in (3, 2):  # F.pad lists the last dimension first
        size, kk, ss, dd = shape[axis], k[axis - 2], s[axis - 2], d[axis - 2]
        ke = (kk - 1) * dd + 1
        out = -(-size // ss)
        total = max((out - 1) * ss + ke - size, 0)
        pads += [total // 2, total - total // 2]
    return pads


def same_pad(x, k, s, d=(1, 1)):
    return F.pad(x, same_pads(x.shape, k, s, d))


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


class KerasGraph(nn.Module):
    """The config's layers in order, each reading its inbound layers' outputs."""

    def __init__(self, config, weights, dtype=torch.float64, reference=False):
        super().__init__()
        self.layers = config["config"]["layers"]
        self.reference = reference
        self.w = nn.ParameterDict()
        for layer in self.layers:
            c, cls, name = layer["config"], layer["class_name"], layer["config"]["name"]
            w = [torch.tensor(v, dtype=dtype) for v in weights.get(name, [])]
            if cls == "Conv2D":
                w[0] = w[0].permute(3, 2, 0, 1).contiguous()
            elif cls == "DepthwiseConv2D":  # (kh, kw, in, mult) -> (in * mult, 1, kh, kw)
                kh, kw, cin, mult = w[0].shape
                w[0] = w[0].permute(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw).contiguous()
            for i, v in enumerate(w):
                # BatchNormalization's moving statistics are state, not parameters
                trained = not (cls == "BatchNormalization" and i >= 2)
                self.w["%s_%d" % (name, i)] = nn.Parameter(v, requires_grad=trained)

    def weight(self, name, i):
        return self.w["%s_%d" % (name, i)]

    def forward(self, x, logits=False):
        """x NHWC -> (the last layer's input, the model's output); logits: the
        last layer's activation left out (for a cross-entropy from logits)."""
        out = {}
        for n, layer in enumerate(self.layers):
            c, cls, name = layer["config"], layer["class_name"], layer["config"]["name"]
            if cls == "InputLayer":
                out[name] = x.permute(0, 3, 1, 2)  # NCHW
                continue
            ins = [out[i] for i in inbound(layer)]
            t = ins[0]
            act = c.get("activation", "linear")
            if logits and n == len(self.layers) - 1:
                act = "linear"
            if cls in ("Conv2D", "DepthwiseConv2D"):
                k, s, d = c["kernel_size"], c["strides"], c.get("dilation_rate", [1, 1])
                padding = 0
                if c["padding"] == "same":
                    pads = same_pads(t.shape, k, s, d)
                    if not self.reference and pads[0] == pads[1] and pads[2] == pads[3]:
                        padding = (pads[2], pads[0])
                    else:
                        t = F.pad(t, pads)
                kern = self.weight(name, 0)
                groups = 1 if cls == "Conv2D" else t.shape[1]
                bias = self.weight(name, 1) if c.get("use_bias", True) else None
                t = F.conv2d(t, kern, bias, stride=s, padding=padding, dilation=d, groups=groups)
                t = activation(t, act)
            elif cls == "BatchNormalization":
                gamma, beta, mean, var = (self.weight(name, i) for i in range(4))
                if self.reference and not self.training:
                    v = lambda p: p.view(1, -1, 1, 1)
                    t = (t - v(mean)) / torch.sqrt(v(var) + c["epsilon"]) * v(gamma) + v(beta)
                else:
                    t = F.batch_norm(t, mean.data, var.data, gamma, beta, self.training,
                                     1 - c["momentum"], c["epsilon"])
            elif cls == "Activation":
                t = activation(t, act)
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
                t = activation(t @ self.weight(name, 0) + self.weight(name, 1), act)
            elif cls == "Dropout":
                pass
            else:
                raise SystemExit("layer class %s: not in tests/keras/keras_torch.py" % cls)
            out[name] = t
        last = self.layers[-1]
        return out[inbound(last)[0]], out[last["config"]["name"]]
