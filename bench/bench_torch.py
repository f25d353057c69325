"""PyTorch side of the benchmark: the same networks and measurements as
bench_cnn.c, printed as the same JSON lines. Run by bench/run.py with the
settings a knowledgeable user would use on this machine (see run.py):
OPENBLAS_CORETYPE=SKYLAKEX, OPENBLAS_NUM_THREADS=1, glibc malloc tunables
that keep freed tensors mapped, torch.set_num_threads(threads).

usage: bench_torch.py train|infer NET BATCH THREADS STEPS
       bench_torch.py keras train|infer FILE BATCH THREADS STEPS
       bench_torch.py conv BATCH H W CIN COUT K THREADS REPS
       bench_torch.py large forward|train SIZE THREADS
       bench_torch.py fashion STEPS THREADS
"""
import gzip
import json
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# the Keras graph as PyTorch runs it, shared with the fixture generator
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "keras"))
import keras_torch  # noqa: E402


class SamePad(nn.Module):
    """TensorFlow 'same' padding: the odd extra goes bottom/right."""

    def __init__(self, k):
        super().__init__()
        total = k - 1
        self.pad = (total // 2, total - total // 2, total // 2, total - total // 2)

    def forward(self, x):
        return F.pad(x, self.pad) if any(self.pad) else x


def conv_same(cin, cout, k):
    # symmetric padding for odd k is exactly TF's 'same'; PyTorch then fuses it
    if k % 2 == 1:
        return nn.Conv2d(cin, cout, k, padding=k // 2)
    return nn.Sequential(SamePad(k), nn.Conv2d(cin, cout, k))


def network(name):
    if name == "tutorial":
        # Conv 32@5x5 same -> pool -> Conv 64@5x5 same -> pool -> Dense 1024 -> Dense 10
        return nn.Sequential(
            conv_same(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
            conv_same(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(7 * 7 * 64, 1024), nn.ReLU(), nn.Linear(1024, 10))
    if name == "lenet5":
        return nn.Sequential(
            conv_same(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(5 * 5 * 16, 120), nn.Tanh(),
            nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))
    raise SystemExit("unknown network " + name)


def emit(**fields):
    fields["impl"] = "pytorch"
    fields["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(fields), flush=True)


def bench_train(net, batch, threads, steps, infer):
    torch.manual_seed(0)
    model = network(net)
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times = []
    for i in range(steps + 3):  # 3 warm-up steps
        t0 = time.perf_counter()
        if infer:
            with torch.no_grad():
                model(x)
        else:
            opt.zero_grad(set_to_none=False)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    emit(kind="infer" if infer else "train", net=net, batch=batch, threads=threads,
         step_s=times)


def bench_keras(mode, path, batch, threads, steps):
    """A Keras file's graph and weights (tests/keras/keras_torch.py), float32:
    inference without autograd, or training steps (batch statistics in
    BatchNormalization, cross-entropy from the logits, SGD with momentum)."""
    torch.manual_seed(0)
    config, weights = keras_torch.load(path)
    model = keras_torch.KerasGraph(config, weights, torch.float32)
    h, w, c = keras_torch.input_shape(config)
    x = torch.rand(batch, c, h, w).permute(0, 2, 3, 1)  # NCHW in memory, as users keep it
    classes = model(x[:1])[1].shape[-1]
    y = torch.randint(0, classes, (batch,))
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01,
                          momentum=0.9)
    model.train(mode == "train")
    times = []
    for i in range(steps + 3):  # 3 warm-up steps
        t0 = time.perf_counter()
        if mode == "infer":
            with torch.no_grad():
                model(x)
        else:
            opt.zero_grad(set_to_none=False)
            F.cross_entropy(model(x, logits=True)[1], y).backward()
            opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    emit(kind=mode, net=os.path.basename(path), batch=batch, threads=threads, step_s=times)


def bench_conv(batch, h, w, cin, cout, k, threads, reps):
    x = torch.rand(batch, cin, h, w, requires_grad=False)
    wt = torch.rand(cout, cin, k, k) - 0.5
    pad = k // 2
    y = F.conv2d(x, wt, padding=pad)
    dy = torch.rand_like(y)
    bias_sizes = [cout]
    out = {}
    for name, mask in (("forward", None), ("backward_data", [True, False, False]),
                       ("backward_weights", [False, True, True])):
        times = []
        for i in range(reps + 2):
            t0 = time.perf_counter()
            if mask is None:
                F.conv2d(x, wt, padding=pad)
            else:
                torch.ops.aten.convolution_backward(dy, x, wt, bias_sizes, [1, 1], [pad, pad],
                                                    [1, 1], False, [0, 0], 1, mask)
            if i >= 2:
                times.append(time.perf_counter() - t0)
        out[name] = times
    emit(kind="conv", batch=batch, h=h, w=w, cin=cin, cout=cout, k=k, threads=threads,
         flops=2.0 * batch * h * w * cin * cout * k * k, step_s=out)


def bench_large(mode, size, threads):
    """The seed network's two conv + pool stages on one size x size x 3 image."""
    torch.manual_seed(0)
    model = nn.Sequential(conv_same(3, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
                          conv_same(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    x = torch.rand(1, 3, size, size)
    y = torch.tensor([3])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times = []
    for i in range(3):
        t0 = time.perf_counter()
        if mode == "forward":
            with torch.no_grad():
                model(x)
        else:
            opt.zero_grad(set_to_none=False)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    emit(kind="large", mode=mode, size=size, threads=threads, step_s=times[1:])


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return torch.frombuffer(bytearray(data[4 + 4 * rank:]), dtype=torch.uint8).reshape(dims)


def bench_fashion(steps, threads):
    """Real training on Fashion-MNIST, batches of 64, for the peak RSS."""
    d = "/usr/share/datasets/fashion-mnist/"
    x = read_idx(d + "train-images-idx3-ubyte.gz").float().div_(255).unsqueeze(1)
    y = read_idx(d + "train-labels-idx1-ubyte.gz").long()
    torch.manual_seed(0)
    model = network("tutorial")
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    perm = torch.randperm(x.shape[0])
    t0 = time.perf_counter()
    for s in range(steps):
        idx = perm[s * 64:(s + 1) * 64]
        opt.zero_grad(set_to_none=False)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    emit(kind="fashion", steps=steps, threads=threads,
         step_s=[(time.perf_counter() - t0) / steps])


def main(argv):
    mode = argv[1]
    if mode in ("train", "infer"):
        net, batch, threads, steps = argv[2], int(argv[3]), int(argv[4]), int(argv[5])
        torch.set_num_threads(threads)
        bench_train(net, batch, threads, steps, mode == "infer")
    elif mode == "keras":
        batch, threads, steps = int(argv[4]), int(argv[5]), int(argv[6])
        torch.set_num_threads(threads)
        bench_keras(argv[2], argv[3], batch, threads, steps)
    elif mode == "conv":
        args = [int(a) for a in argv[2:10]]
        torch.set_num_threads(args[6])
        bench_conv(*args)
    elif mode == "fashion":
        torch.set_num_threads(int(argv[3]))
        bench_fashion(int(argv[2]), int(argv[3]))
    elif mode == "large":
        torch.set_num_threads(int(argv[4]))
        bench_large(argv[2], int(argv[3]), int(argv[4]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
