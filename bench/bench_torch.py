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
       bench_torch.py qaccuracy MODEL.h5 NCAL ENGINE
       bench_torch.py qinfer MODEL.h5 float|int8 BATCH THREADS STEPS NCAL ENGINE
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


# ---- int8 inference (bench/int8_run.py; bench_int8.c is our side) ----------

def keras_sequential(path):
    """A Keras Sequential .h5 saved by cnn (the same trained weights) as an
    eager nn.Sequential a PyTorch user would write, plus the groups to fuse
    and whether it ends in softmax. Flatten: Keras flattens NHWC, so the
    following Dense's rows are permuted to NCHW order instead of the
    activations. A Dense's BatchNormalization is folded in eval mode
    (fuse_modules has no Linear+BatchNorm1d+ReLU in this torch)."""
    config, weights = keras_torch.load(path)
    t = lambda a: torch.tensor(a, dtype=torch.float32)
    mods, fuse, hwc, flat_hwc = [], [], [28, 28, 1], None
    layers = [l for l in config["config"]["layers"] if l["class_name"] != "InputLayer"]
    softmax = False
    for n, layer in enumerate(layers):
        cls, c = layer["class_name"], layer["config"]
        w = weights.get(c["name"], [])
        act = c.get("activation", "linear")
        if cls == "Conv2D":
            k = c["kernel_size"][0]
            assert c["padding"] == "same" and k % 2 == 1 and c["strides"] == [1, 1]
            conv = nn.Conv2d(hwc[2], c["filters"], k, padding=k // 2, bias=len(w) > 1)
            conv.weight.data = t(w[0]).permute(3, 2, 0, 1).contiguous()
            if len(w) > 1:
                conv.bias.data = t(w[1])
            mods.append(conv)
            hwc[2] = c["filters"]
        elif cls == "Dense":
            lin = nn.Linear(w[0].shape[0], w[0].shape[1], bias=len(w) > 1)
            wt = t(w[0])
            if flat_hwc is not None:
                h, ww, ch = flat_hwc
                wt = wt.reshape(h, ww, ch, -1).permute(2, 0, 1, 3).reshape(h * ww * ch, -1)
                flat_hwc = None
            lin.weight.data = wt.t().contiguous()
            if len(w) > 1:
                lin.bias.data = t(w[1])
            mods.append(lin)
        elif cls == "BatchNormalization":
            gamma, beta, mean, var = (t(a) for a in w)
            if isinstance(mods[-1], nn.Linear):
                lin = mods[-1]
                scale = gamma / torch.sqrt(var + c["epsilon"])
                bias = lin.bias.data if lin.bias is not None else torch.zeros_like(mean)
                fused = nn.Linear(lin.in_features, lin.out_features)
                fused.weight.data = lin.weight.data * scale[:, None]
                fused.bias.data = (bias - mean) * scale + beta
                mods[-1] = fused
            else:
                bn = nn.BatchNorm2d(len(gamma), eps=c["epsilon"])
                bn.weight.data, bn.bias.data = gamma, beta
                bn.running_mean.data, bn.running_var.data = mean, var
                mods.append(bn)
        elif cls == "MaxPooling2D":
            assert c["pool_size"] == [2, 2] and c["strides"] == [2, 2] and c["padding"] == "valid"
            mods.append(nn.MaxPool2d(2))
            hwc[0], hwc[1] = hwc[0] // 2, hwc[1] // 2
        elif cls == "Flatten":
            mods.append(nn.Flatten())
            flat_hwc = list(hwc)
        elif cls == "Dropout":
            pass
        elif cls == "Activation":
            pass  # its activation is appended below
        else:
            raise SystemExit("int8 bench: layer class %s not handled" % cls)
        if act == "relu":
            mods.append(nn.ReLU())
        elif act == "softmax":
            assert n == len(layers) - 1
            softmax = True
        elif act != "linear":
            raise SystemExit("int8 bench: activation %s not handled" % act)
    # fusion groups: conv(+bn)(+relu), linear+relu
    i = 0
    while i < len(mods):
        if isinstance(mods[i], (nn.Conv2d, nn.Linear)):
            g = [i]
            if i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm2d):
                g.append(i + 1)
            if g[-1] + 1 < len(mods) and isinstance(mods[g[-1] + 1], nn.ReLU):
                g.append(g[-1] + 1)
            if len(g) > 1:
                fuse.append([str(j) for j in g])
            i = g[-1]
        i += 1
    return nn.Sequential(*mods), fuse, softmax


class QNet(nn.Module):
    """QuantStub -> the body -> DeQuantStub (-> softmax in float, as ours)."""

    def __init__(self, body, softmax):
        super().__init__()
        self.quant, self.body = torch.quantization.QuantStub(), body
        self.dequant, self.softmax = torch.quantization.DeQuantStub(), softmax

    def forward(self, x):
        y = self.dequant(self.body(self.quant(x)))
        return F.softmax(y, dim=-1) if self.softmax else y


def fashion(ncal):
    d = "/usr/share/datasets/fashion-mnist/"
    cal = read_idx(d + "train-images-idx3-ubyte.gz")[:ncal].float().div_(255).unsqueeze(1)
    tx = read_idx(d + "t10k-images-idx3-ubyte.gz").float().div_(255).unsqueeze(1)
    ty = read_idx(d + "t10k-labels-idx1-ubyte.gz").long()
    return cal, tx, ty


def quantized(path, cal, engine):
    """Eager post-training static quantization: fuse, the engine's default
    qconfig with a per-channel symmetric weight observer, calibrate on cal,
    convert. Returns (float model, int8 model)."""
    body, fuse, softmax = keras_sequential(path)
    net = QNet(body, softmax).eval()
    import copy
    q = copy.deepcopy(net)
    torch.backends.quantized.engine = engine
    q.body = torch.quantization.fuse_modules(q.body, fuse) if fuse else q.body
    base = torch.quantization.get_default_qconfig(engine)
    q.qconfig = torch.quantization.QConfig(
        activation=base.activation, weight=torch.quantization.default_per_channel_weight_observer)
    torch.quantization.prepare(q, inplace=True)
    with torch.no_grad():
        for i in range(0, cal.shape[0], 100):
            q(cal[i:i + 100])
    torch.quantization.convert(q, inplace=True)
    return net, q


def bench_qaccuracy(path, ncal, engine):
    cal, tx, ty = fashion(ncal)
    net, q = quantized(path, cal, engine)
    with torch.no_grad():
        pf = torch.cat([net(tx[i:i + 500]).argmax(1) for i in range(0, tx.shape[0], 500)])
        pq = torch.cat([q(tx[i:i + 500]).argmax(1) for i in range(0, tx.shape[0], 500)])
    n = tx.shape[0]
    emit(kind="qaccuracy", engine=engine, test_images=n, float=(pf == ty).sum().item() / n,
         int8=(pq == ty).sum().item() / n, agreement=(pf == pq).sum().item() / n)


def bench_qinfer(path, dtype, batch, threads, steps, ncal, engine):
    cal, tx, _ = fashion(ncal)
    net, q = quantized(path, cal, engine)
    model = q if dtype == "int8" else net
    x = tx[:batch].contiguous()
    times = []
    with torch.no_grad():
        for i in range(steps + 3):  # 3 warm-up calls
            t0 = time.perf_counter()
            model(x)
            if i >= 3:
                times.append(time.perf_counter() - t0)
    emit(kind="qinfer", dtype=dtype, engine=engine, batch=batch, threads=threads, step_s=times)


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
    elif mode == "qaccuracy":  # MODEL.h5 NCAL ENGINE
        torch.set_num_threads(1)
        bench_qaccuracy(argv[2], int(argv[3]), argv[4])
    elif mode == "qinfer":  # MODEL.h5 float|int8 BATCH THREADS STEPS NCAL ENGINE
        torch.set_num_threads(int(argv[5]))
        bench_qinfer(argv[2], argv[3], int(argv[4]), int(argv[5]), int(argv[6]), int(argv[7]),
                     argv[8])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
