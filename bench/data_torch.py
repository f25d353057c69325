"""PyTorch side of the data-pipeline benchmark (bench/data_run.py):
torchvision's ImageFolder + DataLoader(num_workers=WORKERS) with the same
resize (bilinear, antialias off, as Keras and cnn resize) and colour mode,
images/s delivered over one pass of the folder, as one JSON line.

usage: data_torch.py DIR ROWS COLS CHANNELS WORKERS BATCH"""
import json
import sys
import time

import torch
from torchvision import datasets, transforms


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    root = sys.argv[1]
    rows, cols, channels, workers, batch = map(int, sys.argv[2:])
    steps = []
    if channels == 1:
        steps.append(transforms.Grayscale(1))
    elif channels == 4:
        steps.append(transforms.Lambda(lambda im: im.convert("RGBA")))
    else:
        steps.append(transforms.Lambda(lambda im: im.convert("RGB")))
    steps.append(transforms.PILToTensor())
    steps.append(transforms.Lambda(lambda t: t.float()))
    steps.append(transforms.Resize((rows, cols), antialias=False))
    steps.append(transforms.Lambda(lambda t: t / 255.0))
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ds = datasets.ImageFolder(root, transform=transforms.Compose(steps))
    scan = time.perf_counter() - t0
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=False,
                                         num_workers=workers)
    t0 = time.perf_counter()
    n = 0
    checksum = 0.0
    for x, _ in loader:
        n += x.shape[0]
        checksum += float(x[0, 0, 0, 0])
    t = time.perf_counter() - t0
    print(json.dumps({"impl": "pytorch", "kind": "stream", "images": n, "workers": workers,
                      "scan_s": round(scan, 4), "seconds": round(t, 4),
                      "images_per_s": round(n / t, 1), "checksum": checksum}))


if __name__ == "__main__":
    main()
