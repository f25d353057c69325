#!/usr/bin/python3
"""Fixtures for tests/test_keras.c and tests/test_keras.sh: digit images and the
outputs of the two real Keras models in ../shared/keras-models/, computed
independently of the library: PyTorch (float64) with the weights read by h5py.

Regenerate (from the repository root; Debian's python3-torch, python3-h5py and
python3-sklearn):

    /usr/bin/python3 tests/keras/gen_keras.py [KERAS_MODELS_DIR]

Writes, deterministically:
  tests/keras/digits-images-idx3-ubyte  100 handwritten digits, 28x28, 0..255
  tests/keras/digits-labels-idx1-ubyte  their labels (10 of each class)
  tests/keras/outputs.txt               both models' softmax outputs for them

The digits: there is no MNIST package in Debian, so these are the UCI
handwritten digits that python3-sklearn ships (8x8, 16 grey levels), brought
to MNIST's form the way MNIST was made: each digit scaled to fit a 20x20 box
(bilinear, grey levels stretched so the strokes are about as crisp as MNIST's),
placed in a 28x28 image with its centre of mass at the centre, white on black,
rounded to bytes. They are blurrier than MNIST's, so the models classify fewer
of them correctly than of MNIST's test set (outputs.txt records how many).

The networks (what ../shared/keras-models/README.md describes):
  keras2 (mnist-keras2.2.4.h5, raw pixels 0..255):
    Conv2D(64,3,same) relu MaxPool2 Conv2D(32,3,same) relu MaxPool2 Flatten
    Dense(10) softmax
  keras3 (mnist-keras3.14.keras, pixels / 255):
    Conv2D(32,3,valid,relu) MaxPool2 Conv2D(64,3,valid,relu) MaxPool2 Flatten
    Dense(128,relu) Dropout Dense(10,softmax)
Layouts: Keras Conv2D kernels (kh, kw, in, out) -> PyTorch (out, in, kh, kw) by
permute(3, 2, 0, 1); Keras's Flatten is over NHWC, so the NCHW maps are
permuted to NHWC before flattening; Dense kernels are (in, out): y = x @ K + b.

Fixture format: '#' comments; each tensor is a line "<name> <rank> <dims...>"
then its values, one per line (%.9g).
"""
import io
import os
import struct
import sys
import zipfile

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "shared",
                                                           "keras-models")
PER_CLASS = 10


def mnist_like(img8):
    """An 8x8 digit (0..16) as a 28x28 MNIST-style image (0..255 floats): its
    bounding box scaled (bilinear) so the longer side is 20 pixels, grey
    levels stretched (0.3..0.7 -> 0..1) to make the blurred strokes about as
    crisp as MNIST's, centre of mass moved to the centre."""
    ys, xs = np.nonzero(img8 > 0)
    t = torch.tensor(img8 / 16.0, dtype=torch.float64)[None, None]
    t = t[:, :, ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = t.shape[2], t.shape[3]
    scale = 20.0 / max(h, w)
    rows, cols = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    big = F.interpolate(t, size=(rows, cols), mode="bilinear", align_corners=False)[0, 0]
    big = np.clip((big.numpy() - 0.3) / 0.4, 0, 1)
    out = np.zeros((28, 28))
    y0, x0 = (28 - rows) // 2, (28 - cols) // 2
    out[y0:y0 + rows, x0:x0 + cols] = big
    r, c = np.indices(out.shape)
    cy, cx = (r * out).sum() / out.sum(), (c * out).sum() / out.sum()
    out = np.roll(np.roll(out, int(round(13.5 - cy)), axis=0), int(round(13.5 - cx)), axis=1)
    return np.round(out * 255.0)


def digits():
    d = load_digits()
    images, labels = [], []
    for k in range(10):
        idx = np.nonzero(d.target == k)[0][:PER_CLASS]
        for i in idx:
            images.append(mnist_like(d.images[i]))
            labels.append(k)
    return np.array(images), np.array(labels)


def conv(x, kernel, bias, same):
    w = torch.tensor(np.asarray(kernel), dtype=torch.float64).permute(3, 2, 0, 1)
    b = torch.tensor(np.asarray(bias), dtype=torch.float64)
    if same:  # 3x3 stride 1: one cell each side
        x = F.pad(x, (1, 1, 1, 1))
    return F.conv2d(x, w, b)


def dense(x, kernel, bias):
    return x @ torch.tensor(np.asarray(kernel), dtype=torch.float64) + torch.tensor(
        np.asarray(bias), dtype=torch.float64)


def flatten_nhwc(x):
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


def keras2(x, path):
    f = h5py.File(path, "r")
    w = f["model_weights"]
    def get(layer, name):
        return w[layer][layer][name + ":0"]
    x = F.relu(conv(x, get("conv2d_1", "kernel"), get("conv2d_1", "bias"), True))
    x = F.max_pool2d(x, 2)
    x = F.relu(conv(x, get("conv2d_2", "kernel"), get("conv2d_2", "bias"), True))
    x = F.max_pool2d(x, 2)
    x = dense(flatten_nhwc(x), get("dense_1", "kernel"), get("dense_1", "bias"))
    return F.softmax(x, dim=1)


def keras3(x, path):
    z = zipfile.ZipFile(path)
    f = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
    def get(layer, i):
        return f["layers"][layer]["vars"][str(i)]
    x = F.relu(conv(x, get("conv2d", 0), get("conv2d", 1), False))
    x = F.max_pool2d(x, 2)
    x = F.relu(conv(x, get("conv2d_1", 0), get("conv2d_1", 1), False))
    x = F.max_pool2d(x, 2)
    x = F.relu(dense(flatten_nhwc(x), get("dense", 0), get("dense", 1)))
    x = dense(x, get("dense_1", 0), get("dense_1", 1))  # Dropout: identity at inference
    return F.softmax(x, dim=1)


def write_idx(path, array, type_code):
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, type_code, array.ndim))
        for d in array.shape:
            f.write(struct.pack(">I", d))
        f.write(array.astype(np.uint8).tobytes())


def write_tensor(out, name, t):
    t = np.asarray(t)
    out.write("%s %d %s\n" % (name, t.ndim, " ".join(str(d) for d in t.shape)))
    for v in t.reshape(-1):
        out.write("%.9g\n" % np.float32(v))


def main():
    images, labels = digits()
    write_idx(os.path.join(HERE, "digits-images-idx3-ubyte"), images, 0x08)
    write_idx(os.path.join(HERE, "digits-labels-idx1-ubyte"), labels, 0x08)
    x = torch.tensor(images, dtype=torch.float64)[:, None]  # NCHW, 0..255
    p2 = keras2(x, os.path.join(MODELS, "mnist-keras2.2.4.h5")).numpy()
    p3 = keras3(x / 255.0, os.path.join(MODELS, "mnist-keras3.14.keras")).numpy()
    acc2 = (p2.argmax(1) == labels).mean()
    acc3 = (p3.argmax(1) == labels).mean()
    with open(os.path.join(HERE, "outputs.txt"), "w") as out:
        out.write("# outputs of the real Keras models on tests/keras/digits-*, by PyTorch"
                  " %s in float64 from h5py-read weights (tests/keras/gen_keras.py)\n"
                  % torch.__version__)
        out.write("# accuracy on these digits: keras2 %.2f, keras3 %.2f\n" % (acc2, acc3))
        write_tensor(out, "labels", labels)
        write_tensor(out, "keras2", p2)
        write_tensor(out, "keras3", p3)
    print("keras2 accuracy %.2f, keras3 accuracy %.2f" % (acc2, acc3))


if __name__ == "__main__":
    main()
