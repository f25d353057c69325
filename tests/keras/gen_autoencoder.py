#!/usr/bin/python3
"""Fixture for tests/test_keras_autoencoder.c: the outputs of the real Keras
2.12 denoising autoencoder ../shared/keras-models/conv2dtranspose-autoencoder-
keras2.12.h5 (no licence: not in the repository), computed independently of
the library: PyTorch (float64) with the weights read by h5py.

Regenerate (from the repository root; Debian's python3-torch, python3-h5py):

    /usr/bin/python3 tests/keras/gen_autoencoder.py [KERAS_MODELS_DIR]

Writes, deterministically, tests/keras/autoencoder_outputs.txt: the outputs
for 8 of the digits of tests/keras/digits-images-idx3-ubyte (indices 0, 10,
..., 70: one of each class 0-7), pixels scaled to [0, 1]. If
/usr/share/datasets/fashion-mnist is there it also prints the reconstruction
MSE on its 10,000 clean test images (the figure in docs/KERAS.md).

The network (what ../shared/keras-models/README.md describes):
  Conv2D(32,3,same,relu) MaxPool2 Conv2D(32,3,same,relu) MaxPool2
  Conv2DTranspose(32,3,strides 2,same,relu) x 2 Conv2D(1,3,same,sigmoid)
Layouts: Keras Conv2D kernels (kh, kw, in, out) -> PyTorch (out, in, kh, kw)
by permute(3, 2, 0, 1); Conv2DTranspose kernels (kh, kw, out, in) ->
PyTorch's conv_transpose2d weight (in, out, kh, kw) by permute(3, 2, 0, 1).
TensorFlow's same padding for a 3x3 transposed convolution with stride 2:
output 2n of the full (2n + 1)-long result. TensorFlow pads the adjoint
convolution by (n - 1) * 2 + 3 - 2n = 1 in total, max(k - s, 0) // 2 = 0 at
the top/left and 1 at the bottom/right, so the full result loses its LAST
row and column. (PyTorch's padding=1, output_padding=1 would drop the first
instead and give another image: MSE 0.15 instead of 0.004.)
"""
import gzip
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "shared",
                                                           "keras-models")
FILE = "conv2dtranspose-autoencoder-keras2.12.h5"
FASHION = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def idx_images(data):
    n, rows, cols = (int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(data[16:16 + n * rows * cols], dtype=np.uint8).reshape(n, rows, cols)


def weights(path):
    f = h5py.File(path, "r")
    w = f["model_weights"]
    def get(layer, name):
        return torch.tensor(np.asarray(w[layer][layer][name + ":0"]), dtype=torch.float64)
    return {layer: (get(layer, "kernel"), get(layer, "bias"))
            for layer in ("conv2d", "conv2d_1", "conv2d_transpose", "conv2d_transpose_1",
                          "conv2d_2")}


def forward(x, w):
    """x (n, 28, 28) in [0, 1] -> (n, 28, 28, 1)."""
    h = x[:, None]
    def conv(h, name):
        k, b = w[name]
        return F.conv2d(h, k.permute(3, 2, 0, 1), b, padding=1)  # 3x3 same, stride 1
    def deconv(h, name):
        k, b = w[name]
        full = F.conv_transpose2d(h, k.permute(3, 2, 0, 1), b, stride=2)  # 2n + 1
        return full[:, :, :-1, :-1]
    h = F.max_pool2d(F.relu(conv(h, "conv2d")), 2)        # 14: even sizes, same = valid
    h = F.max_pool2d(F.relu(conv(h, "conv2d_1")), 2)      # 7
    h = F.relu(deconv(h, "conv2d_transpose"))             # 14
    h = F.relu(deconv(h, "conv2d_transpose_1"))           # 28
    h = torch.sigmoid(conv(h, "conv2d_2"))
    return h.permute(0, 2, 3, 1)


def main():
    w = weights(os.path.join(MODELS, FILE))
    with open(os.path.join(HERE, "digits-images-idx3-ubyte"), "rb") as f:
        digits = idx_images(f.read())
    x = torch.tensor(digits[0:80:10].astype(np.float32) / np.float32(255), dtype=torch.float64)
    out = forward(x, w)
    mse = ((out[..., 0] - x) ** 2).mean().item()
    all_x = torch.tensor(digits.astype(np.float32) / np.float32(255), dtype=torch.float64)
    all_mse = ((forward(all_x, w)[..., 0] - all_x) ** 2).mean().item()
    path = os.path.join(HERE, "autoencoder_outputs.txt")
    with open(path, "w") as f:
        f.write("# outputs of %s on digits 0, 10, ..., 70 of tests/keras/digits-images-idx3-ubyte"
                " / 255, by PyTorch %s in float64 (tests/keras/gen_autoencoder.py)\n"
                % (FILE, torch.__version__.split("a")[0]))
        f.write("# reconstruction MSE: these 8 %.6f, all 100 digits %.6f\n" % (mse, all_mse))
        f.write("output 4 %s\n" % " ".join(str(d) for d in out.shape))
        for v in out.reshape(-1).tolist():
            f.write("%.9g\n" % v)
    print("%s: MSE on the 8 digits %.6f, on all 100 %.6f" % (os.path.relpath(path), mse, all_mse))
    if os.path.exists(FASHION):
        with gzip.open(FASHION, "rb") as f:
            fashion = idx_images(f.read())
        total = 0.0
        for i in range(0, len(fashion), 1000):
            xb = torch.tensor(fashion[i:i + 1000].astype(np.float32) / np.float32(255),
                              dtype=torch.float64)
            total += ((forward(xb, w)[..., 0] - xb) ** 2).sum().item()
        print("Fashion-MNIST test images (clean, [0, 1]): MSE %.6f" % (total / fashion.size))


if __name__ == "__main__":
    main()
