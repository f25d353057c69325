#!/usr/bin/env python3
"""Writes Fashion-MNIST's IDX files as PNG files in class folders, the
layout `cnn train --data DIR` and Keras's image_dataset_from_directory
read:

    OUT/train/<class>/00000.png ... (60,000 images)
    OUT/test/<class>/00000.png ...  (10,000 images)

--train-per-class N and --test-per-class N keep only the first N images
of each class (in IDX order): a small subset for quick runs (the
transfer-learning walk-through, scripts/transfer_demo.sh).

Folders are named after the classes ("T-shirt/top" becomes "T-shirt_top":
a folder name cannot hold a slash); a file's name is its index in the IDX
file, so a folder's listing order (class, then file name) is the IDX order
within each class. Only the standard library: no NumPy, no Pillow.

usage: scripts/fashion_to_folders.py [--train-per-class N] [--test-per-class N]
                                     OUT [IDX_DIR]
       (IDX_DIR: default /usr/share/datasets/fashion-mnist)"""
import gzip
import os
import struct
import sys
import zlib

CLASSES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    rank = magic & 0xFF
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return dims, data[4 + 4 * rank:]


def png(rows, cols, pixels):
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    raw = b"".join(b"\0" + pixels[r * cols:(r + 1) * cols] for r in range(rows))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", cols, rows, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def find(src, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(src, candidate)
        if os.path.exists(path):
            return path
    sys.exit("fashion_to_folders: %s[.gz] not found in %s" % (name, src))


def convert(src, out, part, prefix, per_class=None):
    (n, rows, cols), pixels = read_idx(find(src, prefix + "-images-idx3-ubyte"))
    (m,), labels = read_idx(find(src, prefix + "-labels-idx1-ubyte"))
    if n != m:
        sys.exit("fashion_to_folders: %d images but %d labels" % (n, m))
    for name in CLASSES:
        os.makedirs(os.path.join(out, part, name), exist_ok=True)
    size = rows * cols
    kept = [0] * len(CLASSES)
    for i in range(n):
        if per_class is not None:
            if kept[labels[i]] >= per_class:
                continue
            kept[labels[i]] += 1
        path = os.path.join(out, part, CLASSES[labels[i]], "%05d.png" % i)
        with open(path, "wb") as f:
            f.write(png(rows, cols, pixels[i * size:(i + 1) * size]))
    written = sum(kept) if per_class is not None else n
    print("%s: %d images in %d class folders" % (os.path.join(out, part), written, len(CLASSES)))


def main():
    args = sys.argv[1:]
    limits = {"--train-per-class": None, "--test-per-class": None}
    while args and args[0] in limits:
        if len(args) < 2 or not args[1].isdigit() or int(args[1]) < 1:
            sys.exit("fashion_to_folders: %s needs a count >= 1\n\n%s" % (args[0], __doc__))
        limits[args[0]] = int(args[1])
        args = args[2:]
    if len(args) not in (1, 2) or args[0].startswith("-"):
        sys.exit(__doc__)
    out = args[0]
    src = args[1] if len(args) == 2 else "/usr/share/datasets/fashion-mnist"
    convert(src, out, "train", "train", limits["--train-per-class"])
    convert(src, out, "test", "t10k", limits["--test-per-class"])


if __name__ == "__main__":
    main()
