#!/usr/bin/python3
"""Forward/backward reference values from PyTorch for tests/test_reference.c.

Regenerate (from the repository root, with Debian's python3-torch, torch 1.13):

    /usr/bin/python3 tests/reference/gen_reference.py

It rewrites tests/reference/<case>.txt; the output is deterministic (fixed seeds),
so an unchanged script gives byte-identical fixtures.

Precision: inputs, weights and targets are drawn as float32 values (so the C test
gets exactly the same numbers), then every computation runs in float64; results
are rounded to float32 only when written (%.9g, which round-trips a float32).

Layout conventions (the library is NHWC and stores weights as Keras does):
- Inputs are NHWC (batch, rows, cols, channels); PyTorch convolves NCHW, so the
  NHWC leaf tensor is permuted (0, 3, 1, 2) inside the graph and the input
  gradient comes out NHWC.
- Conv2D kernel (kh, kw, in, filters). PyTorch's weight is (out, in, kh, kw):
  keras = torch.permute(2, 3, 1, 0), torch = keras.permute(3, 2, 0, 1). The
  leaf here is the Keras-layout tensor, so its gradient is in Keras layout.
- Dense kernel (in, units) = PyTorch Linear weight transposed: y = x @ K + b.
- Flatten is Keras's: over (rows, cols, channels) in NHWC order, so the NCHW
  tensor is permuted to NHWC before reshape.
- TensorFlow 'same' padding: total = max((out - 1) * stride + (k - 1) * dilation
  + 1 - in, 0), with out = ceil(in / stride); left/top = total // 2 and the odd
  extra cell goes to the right/bottom. Applied with F.pad and padding=0.
- Max pooling 'same' pads with -inf; average pooling 'same' divides by the
  number of in-bounds cells (sum over the zero-padded window / count map).
- Losses follow Keras: mean over the batch (and over the last axis for MSE and
  binary cross-entropy). Softmax + categorical CE and sigmoid + binary CE are
  computed from logits (what Keras does for a softmax/sigmoid output).

File format (text, one file per case):
    lines starting with '#' are comments
    each tensor: a header line "<name> <rank> <dim0> ... <dimN-1>", then
    product(dims) values, one per line (%.9g).
Names: x, y (target: integer labels for sparse CE), output (after the last
activation), loss (rank 1, dim 1), layer<i>.kernel / layer<i>.bias (weights of
the model's layer i, 0-based over all layers including pooling/flatten),
layer<i>.kernel.grad / layer<i>.bias.grad, input.grad.
Gradients are of the loss exactly as reported (mean over the batch).

Weights are named as Keras names them: kernel, bias (Conv2D, Dense);
depthwise_kernel, pointwise_kernel, bias (DepthwiseConv2D, SeparableConv2D);
gamma, beta, moving_mean, moving_variance (BatchNormalization).
- DepthwiseConv2D kernel (kh, kw, in, multiplier): PyTorch's grouped
  convolution (groups = in) has weight (in * multiplier, 1, kh, kw) with output
  channel c * multiplier + k, the same order as Keras:
  torch = keras.permute(2, 3, 0, 1).reshape(in * multiplier, 1, kh, kw).
- SeparableConv2D pointwise kernel (1, 1, in * multiplier, filters):
  torch = keras.permute(3, 2, 0, 1).
- BatchNormalization follows Keras, not torch.nn.BatchNorm2d: in training the
  batch's mean and *biased* variance normalise (as in PyTorch), and the moving
  statistics are updated with Keras's momentum (PyTorch's momentum is 1 - that)
  and with the biased variance too (PyTorch would use the unbiased one). The
  cases with BatchNormalization also record layer<i>.moving_mean.after and
  layer<i>.moving_variance.after (after the training forward) and
  output.inference (the same x in inference mode, with those statistics).
"""
import os
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
MARGIN = 1e-3  # minimum distance from a ReLU kink / max-pool tie


def f32(t):
    """A float64 tensor holding float32-representable values."""
    return t.to(torch.float32).to(torch.float64)


def uniform(gen, shape, lo, hi):
    return f32(torch.rand(shape, generator=gen) * (hi - lo) + lo)


def glorot(gen, shape, fan_in, fan_out):
    limit = (6.0 / (fan_in + fan_out)) ** 0.5
    return uniform(gen, shape, -limit, limit)


def same_pads(size, k, stride, dilation=1):
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class Kinks:
    """Records how close the graph came to a non-differentiable point."""

    def __init__(self):
        self.closest = float("inf")

    def relu_input(self, z):
        self.closest = min(self.closest, z.abs().min().item())

    def pool_windows(self, windows):
        # windows: (..., cells) of in-bounds values; gap between the top two.
        if windows.shape[-1] < 2:
            return
        top = windows.topk(2, dim=-1).values
        self.closest = min(self.closest, (top[..., 0] - top[..., 1]).min().item())


def activate(z, act, kinks):
    if act == "relu":
        kinks.relu_input(z)
        return torch.relu(z)
    if act == "sigmoid":
        return torch.sigmoid(z)
    if act == "tanh":
        return torch.tanh(z)
    if act == "softmax":
        return torch.softmax(z, dim=-1)
    # Keras 3's definitions (hard_sigmoid = relu6(x + 3) / 6, leaky_relu slope 0.2)
    kinks_at = {"relu6": (0.0, 6.0), "leaky_relu": (0.0,), "hard_sigmoid": (-3.0, 3.0),
                "hard_silu": (-3.0, 3.0)}
    for k in kinks_at.get(act, ()):
        kinks.relu_input(z - k)
    functions = {
        "silu": F.silu,
        "gelu": lambda v: F.gelu(v, approximate="none"),
        "gelu_tanh": lambda v: F.gelu(v, approximate="tanh"),
        "selu": F.selu,
        "elu": F.elu,
        "softplus": F.softplus,
        "softsign": F.softsign,
        "hard_sigmoid": F.hardsigmoid,
        "hard_silu": F.hardswish,
        "exponential": torch.exp,
        "relu6": F.relu6,
        "leaky_relu": lambda v: F.leaky_relu(v, 0.2),
        "mish": F.mish,
    }
    if act in functions:
        return functions[act](z)
    assert act == "linear"
    return z


def conv2d(x, kernel, bias, stride=(1, 1), padding="valid", dilation=(1, 1)):
    """x NCHW, kernel Keras (kh, kw, in, filters)."""
    kh, kw = kernel.shape[0], kernel.shape[1]
    if padding == "same":
        top, bottom = same_pads(x.shape[2], kh, stride[0], dilation[0])
        left, right = same_pads(x.shape[3], kw, stride[1], dilation[1])
        x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, kernel.permute(3, 2, 0, 1), bias, stride=stride, padding=0,
                    dilation=dilation)


def pool_pads(x, pool, stride, padding):
    if padding != "same":
        return (0, 0, 0, 0)
    top, bottom = same_pads(x.shape[2], pool[0], stride[0])
    left, right = same_pads(x.shape[3], pool[1], stride[1])
    return (left, right, top, bottom)


def max_pool(x, pool, stride, padding, kinks):
    pads = pool_pads(x, pool, stride, padding)
    xp = F.pad(x, pads, value=float("-inf"))
    # Tie check over the in-bounds cells of every window.
    win = xp.unfold(2, pool[0], stride[0]).unfold(3, pool[1], stride[1])
    win = win.reshape(*win.shape[:4], -1)
    for w in win.detach().reshape(-1, win.shape[-1]):
        kinks.pool_windows(w[torch.isfinite(w)].unsqueeze(0))
    return F.max_pool2d(xp, pool, stride)


def avg_pool(x, pool, stride, padding):
    pads = pool_pads(x, pool, stride, padding)
    xp = F.pad(x, pads)
    ones = F.pad(torch.ones(1, 1, x.shape[2], x.shape[3]), pads)
    area = pool[0] * pool[1]
    total = F.avg_pool2d(xp, pool, stride) * area
    count = F.avg_pool2d(ones, pool, stride) * area
    return total / count


def flatten(x):
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


def dense(x, kernel, bias):
    return x @ kernel + bias


class Case:
    def __init__(self, name, description):
        self.name = name
        self.description = description
        self.tensors = []  # (name, value)

    def add(self, name, value):
        self.tensors.append((name, value.detach()))

    def write(self):
        path = os.path.join(HERE, self.name + ".txt")
        with open(path, "w") as f:
            f.write("# %s: %s\n" % (self.name, self.description))
            f.write("# generated by tests/reference/gen_reference.py (torch %s, float64 maths)\n"
                    % torch.__version__.split("a")[0])
            for name, value in self.tensors:
                dims = list(value.shape) if value.dim() else [1]
                f.write("%s %d %s\n" % (name, len(dims), " ".join(str(d) for d in dims)))
                for v in value.reshape(-1).tolist():
                    f.write("%.9g\n" % v)
        return path


def finish(case, x, y, params, output, loss):
    """params: list of (layer index, kernel, bias) leaves; computes grads."""
    loss.backward()
    case.add("x", x)
    case.add("y", y)
    for i, k, b in params:
        case.add("layer%d.kernel" % i, k)
        case.add("layer%d.bias" % i, b)
    case.add("output", output)
    case.add("loss", loss.reshape(1))
    for i, k, b in params:
        case.add("layer%d.kernel.grad" % i, k.grad)
        case.add("layer%d.bias.grad" % i, b.grad)
    case.add("input.grad", x.grad)


def draw(build, seed):
    """Re-draws (seed, seed + 1, ...) until no value is within MARGIN of a kink."""
    for attempt in range(1000):
        gen = torch.Generator().manual_seed(seed + attempt)
        kinks = Kinks()
        result = build(gen, kinks)
        if kinks.closest > MARGIN:
            print("  seed %d: closest kink/tie %.3g" % (seed + attempt, kinks.closest))
            return result
    sys.exit("gen_reference: no kink-free draw for seed %d" % seed)


def small_net(categorical):
    """a) / d): conv same relu -> maxpool -> conv s2 tanh -> flatten -> dense softmax."""

    def build(gen, kinks):
        x = uniform(gen, (2, 9, 9, 2), -1, 1).requires_grad_()
        k0 = glorot(gen, (3, 3, 2, 4), 18, 36).requires_grad_()
        b0 = uniform(gen, (4,), -0.1, 0.1).requires_grad_()
        k2 = glorot(gen, (2, 2, 4, 3), 16, 12).requires_grad_()
        b2 = uniform(gen, (3,), -0.1, 0.1).requires_grad_()
        k4 = glorot(gen, (12, 5), 12, 5).requires_grad_()
        b4 = uniform(gen, (5,), -0.1, 0.1).requires_grad_()
        h = x.permute(0, 3, 1, 2)
        z0 = conv2d(h, k0, b0, padding="same")
        # Only for its tie check: ReLU is monotonic, so pool ties are decided
        # by the pre-ReLU values. The pooled result is computed below.
        max_pool(z0, (2, 2), (2, 2), "valid", kinks)
        h = activate(z0, "relu", kinks)
        h = F.max_pool2d(h, 2, 2)
        h = torch.tanh(conv2d(h, k2, b2, stride=(2, 2)))
        logits = dense(flatten(h), k4, b4)
        labels = torch.tensor([1, 3])
        if categorical:
            y = F.one_hot(labels, 5).to(torch.float64)
            loss = -(y * torch.log_softmax(logits, dim=-1)).sum(-1).mean()
        else:
            y = labels.to(torch.float64)
            loss = F.cross_entropy(logits, labels)
        output = torch.softmax(logits, dim=-1)
        return x, y, [(0, k0, b0), (2, k2, b2), (4, k4, b4)], output, loss

    if categorical:
        case = Case("categorical",
                    "input (2,9,9,2); Conv2D(4,3x3,same,relu) MaxPooling2D(2x2) "
                    "Conv2D(3,2x2,strides 2,tanh) Flatten Dense(5) Activation(softmax); "
                    "categorical_crossentropy, one-hot targets of labels [1,3]")
    else:
        case = Case("small_net",
                    "input (2,9,9,2); Conv2D(4,3x3,same,relu) MaxPooling2D(2x2) "
                    "Conv2D(3,2x2,strides 2,tanh) Flatten Dense(5,softmax); "
                    "sparse_categorical_crossentropy, labels [1,3]")
    finish(case, *draw(build, 1000 if categorical else 100))
    return case


def padding_stride_dilation():
    """b): odd 'same' pads, strides, dilation, same average and max pooling."""

    def build(gen, kinks):
        x = uniform(gen, (2, 14, 10, 3), -1, 1).requires_grad_()
        k0 = glorot(gen, (3, 3, 3, 2), 27, 18).requires_grad_()
        b0 = uniform(gen, (2,), -0.1, 0.1).requires_grad_()
        k2 = glorot(gen, (3, 2, 2, 3), 12, 18).requires_grad_()
        b2 = uniform(gen, (3,), -0.1, 0.1).requires_grad_()
        k5 = glorot(gen, (12, 4), 12, 4).requires_grad_()
        b5 = uniform(gen, (4,), -0.1, 0.1).requires_grad_()
        y = uniform(gen, (2, 4), -1, 1)
        h = x.permute(0, 3, 1, 2)
        h = torch.sigmoid(conv2d(h, k0, b0, stride=(2, 2), padding="same"))  # (2,2,7,5)
        h = avg_pool(h, (2, 2), (1, 1), "same")                              # (2,2,7,5)
        h = conv2d(h, k2, b2, dilation=(2, 1))                               # (2,3,3,4)
        h = max_pool(h, (3, 3), (2, 2), "same", kinks)                        # (2,3,2,2)
        output = dense(flatten(h), k5, b5)
        loss = ((output - y) ** 2).mean()
        return x, y, [(0, k0, b0), (2, k2, b2), (5, k5, b5)], output, loss

    case = Case("padding_stride_dilation",
                "input (2,14,10,3); Conv2D(2,3x3,strides 2,same,sigmoid) "
                "AveragePooling2D(2x2,strides 1,same) Conv2D(3,(3,2),dilation (2,1),valid) "
                "MaxPooling2D(3x3,strides 2,same) Flatten Dense(4); mse")
    finish(case, *draw(build, 200))
    return case


def dense_bce():
    """c): Dense(5, relu) -> Dense(2, sigmoid), binary cross-entropy from logits."""

    def build(gen, kinks):
        x = uniform(gen, (3, 6), -1, 1).requires_grad_()
        k0 = glorot(gen, (6, 5), 6, 5).requires_grad_()
        b0 = uniform(gen, (5,), -0.1, 0.1).requires_grad_()
        k1 = glorot(gen, (5, 2), 5, 2).requires_grad_()
        b1 = uniform(gen, (2,), -0.1, 0.1).requires_grad_()
        y = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
        h = activate(dense(x, k0, b0), "relu", kinks)
        logits = dense(h, k1, b1)
        loss = F.binary_cross_entropy_with_logits(logits, y)
        return x, y, [(0, k0, b0), (1, k1, b1)], torch.sigmoid(logits), loss

    case = Case("dense_bce",
                "input (3,6); Dense(5,relu) Dense(2,sigmoid); binary_crossentropy "
                "(mean over the last axis, then the batch)")
    finish(case, *draw(build, 300))
    return case


def batch_norm(h, gamma, beta, moving_mean, moving_var, momentum, eps, training):
    """Keras BatchNormalization over the channel axis of NCHW h (or the
    features of (n, f)). Returns (y, new moving mean, new moving variance)."""
    axes = (0, 2, 3) if h.dim() == 4 else (0,)
    shape = (1, -1, 1, 1) if h.dim() == 4 else (1, -1)
    if training:
        mean = h.mean(axes)
        var = ((h - mean.reshape(shape)) ** 2).mean(axes)  # biased
        new_mean = momentum * moving_mean + (1 - momentum) * mean.detach()
        new_var = momentum * moving_var + (1 - momentum) * var.detach()
    else:
        mean, var, new_mean, new_var = moving_mean, moving_var, moving_mean, moving_var
    y = (h - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
    return gamma.reshape(shape) * y + beta.reshape(shape), new_mean, new_var


def depthwise(x, kernel, bias, stride=(1, 1), padding="valid", dilation=(1, 1)):
    """x NCHW, kernel Keras (kh, kw, in, multiplier)."""
    kh, kw, c, mult = kernel.shape
    if padding == "same":
        top, bottom = same_pads(x.shape[2], kh, stride[0], dilation[0])
        left, right = same_pads(x.shape[3], kw, stride[1], dilation[1])
        x = F.pad(x, (left, right, top, bottom))
    w = kernel.permute(2, 3, 0, 1).reshape(c * mult, 1, kh, kw)
    return F.conv2d(x, w, bias, stride=stride, dilation=dilation, groups=c)


def finish_weights(case, x, y, weights, output, loss, extra=()):
    """weights: (layer, name, leaf, trained) in the model's order; extra:
    (name, tensor) recorded after the gradients."""
    loss.backward()
    case.add("x", x)
    case.add("y", y)
    for i, name, w, _ in weights:
        case.add("layer%d.%s" % (i, name), w)
    case.add("output", output)
    case.add("loss", loss.reshape(1))
    for i, name, w, trained in weights:
        if trained:
            case.add("layer%d.%s.grad" % (i, name), w.grad)
    case.add("input.grad", x.grad)
    for name, t in extra:
        case.add(name, t)


def batchnorm_net():
    """e): Conv2D (no bias) -> BatchNormalization -> ELU -> ZeroPadding2D ->
    DepthwiseConv2D -> Flatten -> BatchNormalization -> Dense softmax."""

    def build(gen, kinks):
        x = uniform(gen, (3, 6, 5, 2), -1, 1).requires_grad_()
        k0 = glorot(gen, (3, 3, 2, 4), 18, 36).requires_grad_()
        g1 = uniform(gen, (4,), 0.5, 1.5).requires_grad_()
        b1 = uniform(gen, (4,), -0.5, 0.5).requires_grad_()
        mm1 = uniform(gen, (4,), -0.1, 0.1)
        mv1 = uniform(gen, (4,), 0.5, 1.5)
        d4 = glorot(gen, (2, 2, 4, 2), 16, 8).requires_grad_()
        db4 = uniform(gen, (8,), -0.1, 0.1).requires_grad_()
        g6 = uniform(gen, (72,), 0.5, 1.5).requires_grad_()
        b6 = uniform(gen, (72,), -0.5, 0.5).requires_grad_()
        mm6 = uniform(gen, (72,), -0.1, 0.1)
        mv6 = uniform(gen, (72,), 0.5, 1.5)
        k7 = glorot(gen, (72, 3), 72, 3).requires_grad_()
        b7 = uniform(gen, (3,), -0.1, 0.1).requires_grad_()
        labels = torch.tensor([2, 0, 1])

        def forward(training, stats):
            h = x.permute(0, 3, 1, 2)
            h = conv2d(h, k0, None, padding="same")                      # (3,4,6,5)
            h, m1, v1 = batch_norm(h, g1, b1, stats[0], stats[1], 0.9, 1e-3, training)
            h = F.elu(h, 1.0)
            h = F.pad(h, (0, 1, 1, 0))                                    # (3,4,7,6)
            h = depthwise(h, d4, db4, stride=(2, 2))                      # (3,8,3,3)
            h = flatten(h)                                                # (3,72)
            h, m6, v6 = batch_norm(h, g6, b6, stats[2], stats[3], 0.99, 1e-3, training)
            return dense(h, k7, b7), (m1, v1, m6, v6)

        logits, after = forward(True, (mm1, mv1, mm6, mv6))
        loss = F.cross_entropy(logits, labels)
        # inference with the statistics the training forward left
        inference = torch.softmax(forward(False, after)[0], dim=-1).detach()
        weights = [(0, "kernel", k0, True),
                   (1, "gamma", g1, True), (1, "beta", b1, True),
                   (1, "moving_mean", mm1, False), (1, "moving_variance", mv1, False),
                   (4, "depthwise_kernel", d4, True), (4, "bias", db4, True),
                   (6, "gamma", g6, True), (6, "beta", b6, True),
                   (6, "moving_mean", mm6, False), (6, "moving_variance", mv6, False),
                   (7, "kernel", k7, True), (7, "bias", b7, True)]
        extra = [("layer1.moving_mean.after", after[0]),
                 ("layer1.moving_variance.after", after[1]),
                 ("layer6.moving_mean.after", after[2]),
                 ("layer6.moving_variance.after", after[3]),
                 ("output.inference", inference)]
        return (x, labels.to(torch.float64), weights, torch.softmax(logits, dim=-1), loss,
                extra)

    case = Case("batchnorm",
                "input (3,6,5,2); Conv2D(4,3x3,same,no bias) BatchNorm(momentum .9) ELU "
                "ZeroPadding2D(((1,0),(0,1))) DepthwiseConv2D(2x2,strides 2,x2) Flatten "
                "BatchNorm Dense(3,softmax); sparse CE")
    finish_weights(case, *draw(build, 500))
    return case


def separable_net():
    """f): SeparableConv2D -> LeakyReLU -> ReLU(max_value, negative_slope,
    threshold) -> GlobalAveragePooling2D -> Dense; mse."""

    def build(gen, kinks):
        x = uniform(gen, (2, 7, 6, 3), -1, 1).requires_grad_()
        d0 = glorot(gen, (3, 3, 3, 2), 27, 18).requires_grad_()
        p0 = glorot(gen, (1, 1, 6, 4), 6, 4).requires_grad_()
        b0 = uniform(gen, (4,), -0.1, 0.1).requires_grad_()
        k4 = glorot(gen, (4, 2), 4, 2).requires_grad_()
        b4 = uniform(gen, (2,), -0.1, 0.1).requires_grad_()
        y = uniform(gen, (2, 2), -1, 1)
        h = x.permute(0, 3, 1, 2)
        h = depthwise(h, d0, None, stride=(2, 1), padding="same")        # (2,6,4,6)
        h = F.conv2d(h, p0.permute(3, 2, 0, 1), b0)                      # (2,4,4,6)
        kinks.relu_input(h)
        h = F.leaky_relu(h, 0.2)
        cap, slope, threshold = 0.4, 0.05, -0.1
        kinks.relu_input(h - cap)
        kinks.relu_input(h - threshold)
        h = torch.where(h >= cap, torch.full_like(h, cap),
                        torch.where(h >= threshold, h, slope * (h - threshold)))
        h = h.mean((2, 3))                                               # (2,4)
        output = dense(h, k4, b4)
        loss = ((output - y) ** 2).mean()
        weights = [(0, "depthwise_kernel", d0, True), (0, "pointwise_kernel", p0, True),
                   (0, "bias", b0, True), (4, "kernel", k4, True), (4, "bias", b4, True)]
        return x, y, weights, output, loss

    case = Case("separable",
                "input (2,7,6,3); SeparableConv2D(4,3x3,strides (2,1),same,x2) "
                "LeakyReLU(0.2) ReLU(max 0.4,slope 0.05,threshold -0.1) "
                "GlobalAveragePooling2D Dense(2); mse")
    finish_weights(case, *draw(build, 600))
    return case


def activations_conv():
    """g): the activations of issue 12 in Conv2D, Activation and Dense layers
    (weights scaled up so hard_sigmoid/relu6 clip somewhere); mse."""

    def build(gen, kinks):
        x = uniform(gen, (2, 5, 5, 2), -1, 1).requires_grad_()
        k0 = f32(3 * glorot(gen, (3, 3, 2, 4), 18, 36)).requires_grad_()
        b0 = uniform(gen, (4,), -0.1, 0.1).requires_grad_()
        k2 = f32(2 * glorot(gen, (2, 2, 4, 3), 16, 12)).requires_grad_()
        b2 = uniform(gen, (3,), -0.1, 0.1).requires_grad_()
        k5 = f32(4 * glorot(gen, (48, 6), 48, 6)).requires_grad_()
        b5 = uniform(gen, (6,), -0.1, 0.1).requires_grad_()
        k6 = f32(2 * glorot(gen, (6, 6), 6, 6)).requires_grad_()
        b6 = uniform(gen, (6,), -0.1, 0.1).requires_grad_()
        k7 = glorot(gen, (6, 4), 6, 4).requires_grad_()
        b7 = uniform(gen, (4,), -0.1, 0.1).requires_grad_()
        y = uniform(gen, (2, 4), -1, 1)
        h = x.permute(0, 3, 1, 2)
        h = activate(conv2d(h, k0, b0, padding="same"), "silu", kinks)    # (2,4,5,5)
        h = activate(h, "hard_silu", kinks)                                # Activation
        h = activate(conv2d(h, k2, b2), "mish", kinks)                     # (2,3,4,4)
        h = activate(h, "gelu", kinks)                                     # Activation
        h = activate(dense(flatten(h), k5, b5), "hard_sigmoid", kinks)     # (2,6)
        h = activate(dense(h, k6, b6), "gelu_tanh", kinks)
        output = activate(dense(h, k7, b7), "selu", kinks)
        loss = ((output - y) ** 2).mean()
        weights = [(0, "kernel", k0, True), (0, "bias", b0, True),
                   (2, "kernel", k2, True), (2, "bias", b2, True),
                   (5, "kernel", k5, True), (5, "bias", b5, True),
                   (6, "kernel", k6, True), (6, "bias", b6, True),
                   (7, "kernel", k7, True), (7, "bias", b7, True)]
        return x, y, weights, output, loss

    case = Case("activations_conv",
                "input (2,5,5,2); Conv2D(4,3x3,same,silu) Activation(hard_silu) "
                "Conv2D(3,2x2,mish) Activation(gelu) Flatten Dense(6,hard_sigmoid) "
                "Dense(6,gelu_tanh) Dense(4,selu); mse")
    finish_weights(case, *draw(build, 700))
    return case


def activations_dense():
    """h): the rest of issue 12's activations in Dense and Activation layers,
    weights scaled up so relu6 caps somewhere; mse."""

    def build(gen, kinks):
        x = uniform(gen, (3, 7), -1, 1).requires_grad_()
        ks, bs, weights = [], [], []
        acts = ["elu", "softsign", "relu6", "leaky_relu", "softplus", "exponential"]
        sizes = [7, 6, 6, 6, 6, 5, 4]
        scale = [2, 4, 8, 1, 1, 0.5]
        for i in range(6):
            k = f32(scale[i] * glorot(gen, (sizes[i], sizes[i + 1]), sizes[i], sizes[i + 1]))
            ks.append(k.requires_grad_())
            bs.append(uniform(gen, (sizes[i + 1],), -0.1, 0.1).requires_grad_())
        y = uniform(gen, (3, 4), 0, 2)
        h = x
        for i in range(5):
            h = activate(dense(h, ks[i], bs[i]), acts[i], kinks)
        h = dense(h, ks[5], bs[5])                 # Dense(4), then Activation(exponential)
        output = activate(h, "exponential", kinks)
        loss = ((output - y) ** 2).mean()
        for i in range(6):
            weights += [(i, "kernel", ks[i], True), (i, "bias", bs[i], True)]
        return x, y, weights, output, loss

    case = Case("activations_dense",
                "input (3,7); Dense(6,elu) Dense(6,softsign) Dense(6,relu6) "
                "Dense(6,leaky_relu) Dense(5,softplus) Dense(4) Activation(exponential); mse")
    finish_weights(case, *draw(build, 800))
    return case


def from_logits(kind):
    """i): Dense(6, tanh) -> Dense(n) (linear), the cross-entropy losses with
    from_logits=True (F.cross_entropy / binary_cross_entropy_with_logits on
    the logits); the output is the logits. Some logits are large (weights
    scaled up) so a naive softmax would lose them."""

    def build(gen, kinks):
        n = 3 if kind == "binary" else 5
        x = uniform(gen, (4, 6), -1, 1).requires_grad_()
        k0 = glorot(gen, (6, 6), 6, 6).requires_grad_()
        b0 = uniform(gen, (6,), -0.1, 0.1).requires_grad_()
        k1 = f32(20 * glorot(gen, (6, n), 6, n)).requires_grad_()
        b1 = uniform(gen, (n,), -0.1, 0.1).requires_grad_()
        h = torch.tanh(dense(x, k0, b0))
        logits = dense(h, k1, b1)
        labels = torch.tensor([1, 4, 0, 2])
        if kind == "sparse":
            y = labels.to(torch.float64)
            loss = F.cross_entropy(logits, labels)
        elif kind == "categorical":
            # soft targets: the gradient p * sum(t) - t with sum(t) = 1
            y = f32(0.8 * F.one_hot(labels, n) + 0.04)
            loss = -(y * torch.log_softmax(logits, dim=-1)).sum(-1).mean()
        else:
            y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0],
                              [0.0, 1.0, 0.0]])
            loss = F.binary_cross_entropy_with_logits(logits, y)
        weights = [(0, "kernel", k0, True), (0, "bias", b0, True),
                   (1, "kernel", k1, True), (1, "bias", b1, True)]
        return x, y, weights, logits, loss

    names = {"sparse": "sparse_categorical_crossentropy",
             "categorical": "categorical_crossentropy (soft targets)",
             "binary": "binary_crossentropy"}
    case = Case("logits_" + kind,
                "input (4,6); Dense(6,tanh) Dense(%d) (logits); %s with from_logits=True"
                % (3 if kind == "binary" else 5, names[kind]))
    finish_weights(case, *draw(build, 900))
    return case


def keras_deconv_length(n, k, stride, padding, output_padding, dilation):
    """Keras's conv_utils.deconv_output_length."""
    span = (k - 1) * dilation + 1
    if output_padding is None:
        return n * stride + max(span - stride, 0) if padding == "valid" else n * stride
    pad = span // 2 if padding == "same" else 0
    return (n - 1) * stride + span - 2 * pad + output_padding


def conv_transpose(x, kernel, bias, stride=(1, 1), padding="valid", output_padding=None,
                   dilation=(1, 1)):
    """x NCHW, kernel Keras (kh, kw, filters, in). PyTorch's full transposed
    convolution (weight (in, out, kh, kw)), then TensorFlow's window of it:
    the output size by Keras's rule, starting at the top/left padding
    TensorFlow's conv2d_backprop_input uses, total = max((in - 1) * stride +
    span - out, 0), top = total // 2; rows past the full result are zeros
    (valid padding with output_padding)."""
    full = F.conv_transpose2d(x, kernel.permute(3, 2, 0, 1), None, stride=stride,
                              dilation=dilation)
    for axis in (0, 1):
        n, k = x.shape[2 + axis], kernel.shape[axis]
        op = None if output_padding is None else output_padding[axis]
        out = keras_deconv_length(n, k, stride[axis], padding, op, dilation[axis])
        span = (k - 1) * dilation[axis] + 1
        top = max((n - 1) * stride[axis] + span - out, 0) // 2 if padding == "same" else 0
        have = full.shape[2 + axis] - top
        if have < out:
            pads = [0, 0, 0, 0]
            pads[3 - 2 * axis] = out - have  # F.pad: (left, right, top, bottom)
            full = F.pad(full, pads)
        full = full.narrow(2 + axis, top, out)
    return full + bias.reshape(1, -1, 1, 1)


def transpose_upsampling():
    """j): UpSampling2D nearest -> Conv2DTranspose same s2 tanh -> Cropping2D ->
    UpSampling2D bilinear -> Conv2DTranspose valid with output_padding ->
    Conv2DTranspose dilated same -> GlobalAveragePooling2D -> Dense; mse."""

    def build(gen, kinks):
        x = uniform(gen, (2, 3, 3, 2), -1, 1).requires_grad_()
        k1 = glorot(gen, (3, 3, 3, 2), 18, 27).requires_grad_()
        b1 = uniform(gen, (3,), -0.1, 0.1).requires_grad_()
        k4 = glorot(gen, (2, 3, 2, 3), 18, 12).requires_grad_()
        b4 = uniform(gen, (2,), -0.1, 0.1).requires_grad_()
        k5 = glorot(gen, (3, 3, 2, 2), 18, 18).requires_grad_()
        b5 = uniform(gen, (2,), -0.1, 0.1).requires_grad_()
        k7 = glorot(gen, (2, 3), 2, 3).requires_grad_()
        b7 = uniform(gen, (3,), -0.1, 0.1).requires_grad_()
        y = uniform(gen, (2, 3), -1, 1)
        h = x.permute(0, 3, 1, 2)
        h = h.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)          # (2,2,6,6)
        h = torch.tanh(conv_transpose(h, k1, b1, stride=(2, 2), padding="same"))  # 12x12
        h = h[:, :, 1:12 - 2, 0:12 - 1]                                         # 9x11
        h = F.interpolate(h, scale_factor=(2, 1), mode="bilinear",
                          align_corners=False)                                  # 18x11
        h = conv_transpose(h, k4, b4, stride=(1, 2), output_padding=(0, 1))     # 19x24
        h = conv_transpose(h, k5, b5, padding="same", dilation=(2, 2))          # 19x24
        h = h.mean((2, 3))
        output = dense(h, k7, b7)
        loss = ((output - y) ** 2).mean()
        weights = [(1, "kernel", k1, True), (1, "bias", b1, True),
                   (4, "kernel", k4, True), (4, "bias", b4, True),
                   (5, "kernel", k5, True), (5, "bias", b5, True),
                   (7, "kernel", k7, True), (7, "bias", b7, True)]
        return x, y, weights, output, loss

    case = Case("transpose_upsampling",
                "input (2,3,3,2); UpSampling2D Conv2DTranspose(3,3,s2,same,tanh) "
                "Cropping2D UpSampling2D(bilinear) Conv2DTranspose(output_padding) "
                "Conv2DTranspose(dilated) GAP Dense(3); mse (see the docstring)")
    finish_weights(case, *draw(build, 1100))
    return case


def normalization_softmax():
    """k): LayerNormalization -> Conv2D 1x1 -> Softmax (channels) -> Flatten ->
    Dense -> LayerNormalization(center=False) -> Dense -> Softmax; categorical
    cross-entropy on the probabilities."""

    def build(gen, kinks):
        x = uniform(gen, (2, 3, 4, 5), -1, 1).requires_grad_()
        g0 = uniform(gen, (5,), 0.5, 1.5).requires_grad_()
        be0 = uniform(gen, (5,), -0.2, 0.2).requires_grad_()
        k1 = glorot(gen, (1, 1, 5, 4), 5, 4).requires_grad_()
        b1 = uniform(gen, (4,), -0.1, 0.1).requires_grad_()
        k4 = glorot(gen, (48, 6), 48, 6).requires_grad_()
        b4 = uniform(gen, (6,), -0.1, 0.1).requires_grad_()
        g5 = uniform(gen, (6,), 0.5, 1.5).requires_grad_()
        k6 = glorot(gen, (6, 3), 6, 3).requires_grad_()
        b6 = uniform(gen, (3,), -0.1, 0.1).requires_grad_()
        labels = torch.randint(0, 3, (2,), generator=gen)
        y = F.one_hot(labels, 3).to(torch.float64)
        h = F.layer_norm(x, (5,), g0, be0, 1e-3)                  # NHWC, last axis
        h = h.permute(0, 3, 1, 2)
        h = conv2d(h, k1, b1)
        h = torch.softmax(h, dim=1)                               # channels
        h = flatten(h)
        h = dense(h, k4, b4)
        h = F.layer_norm(h, (6,), g5, None, 0.01)
        output = torch.softmax(dense(h, k6, b6), dim=-1)
        loss = -(y * torch.log(output)).sum(-1).mean()
        weights = [(0, "gamma", g0, True), (0, "beta", be0, True),
                   (1, "kernel", k1, True), (1, "bias", b1, True),
                   (4, "kernel", k4, True), (4, "bias", b4, True),
                   (5, "gamma", g5, True),
                   (6, "kernel", k6, True), (6, "bias", b6, True)]
        return x, y, weights, output, loss

    case = Case("normalization_softmax",
                "input (2,3,4,5); LayerNormalization Conv2D(4,1x1) Softmax Flatten "
                "Dense(6) LayerNormalization(0.01, no beta) Dense(3) Softmax; categorical CE")
    finish_weights(case, *draw(build, 1200))
    return case


def graph_net():
    """i) issue 15: a graph with every merge kind. The input feeds a and b; a
    is read by Add, Multiply and Minimum, b by Add, Subtract and Concatenate,
    so their gradients are sums; Maximum and Minimum keep their inputs apart
    by MARGIN (a tie is a kink)."""

    def build(gen, kinks):
        x = uniform(gen, (2, 6, 5, 3), -1, 1).requires_grad_()
        ka = glorot(gen, (3, 3, 3, 4), 27, 36).requires_grad_()
        ba = uniform(gen, (4,), -0.1, 0.1).requires_grad_()
        kb = glorot(gen, (1, 1, 3, 4), 3, 4).requires_grad_()
        bb = uniform(gen, (4,), -0.1, 0.1).requires_grad_()
        kc = glorot(gen, (3, 3, 4, 4), 36, 36).requires_grad_()
        bc = uniform(gen, (4,), -0.1, 0.1).requires_grad_()
        kd = glorot(gen, (8, 3), 8, 3).requires_grad_()
        bd = uniform(gen, (3,), -0.1, 0.1).requires_grad_()
        labels = torch.tensor([2, 0])
        h = x.permute(0, 3, 1, 2)
        a = torch.tanh(conv2d(h, ka, ba, padding="same"))                # 0 a
        b = conv2d(h, kb, bb)                                            # 1 b
        add = a + b                                                      # 2 Add
        c = torch.tanh(conv2d(add, kc, bc, padding="same"))              # 3 c
        mul = c * a                                                      # 4 Multiply
        diff = mul - b                                                   # 5 Subtract
        kinks.relu_input(diff - c)
        mx = torch.maximum(diff, c)                                      # 6 Maximum
        kinks.relu_input(mx - a)
        mn = torch.minimum(mx, a)                                        # 7 Minimum
        avg = (mn + add) / 2                                             # 8 Average
        cat = torch.cat([avg, b], dim=1)                                 # 9 Concatenate -1
        rows = torch.cat([cat, cat], dim=2)                              # 10 Concatenate 1
        pooled = rows.mean((2, 3))                                       # 11 GAP
        logits = dense(pooled, kd, bd)                                   # 12 Dense
        loss = F.cross_entropy(logits, labels)
        weights = [(0, "kernel", ka, True), (0, "bias", ba, True),
                   (1, "kernel", kb, True), (1, "bias", bb, True),
                   (3, "kernel", kc, True), (3, "bias", bc, True),
                   (12, "kernel", kd, True), (12, "bias", bd, True)]
        return x, labels.to(torch.float64), weights, torch.softmax(logits, dim=-1), loss

    case = Case("graph",
                "input (2,6,5,3); Conv2D a, b; Add Conv2D Multiply Subtract Maximum "
                "Minimum Average Concatenate(-1) Concatenate(1) GAP Dense(3,softmax)")
    finish_weights(case, *draw(build, 700))
    return case


def broadcast_merge():
    """l) Keras's broadcasting in the merge layers: per-example sizes matched
    from the last axis, equal or 1. r (1,4,4), col (5,1,4) and g (4) broadcast
    against (5,4,4); their gradients are sums over the repeated axes. In NCHW
    here, so g is reshaped to (n,4,1,1), what Keras's (n,1,1,4) is in NHWC."""

    def build(gen, kinks):
        x = uniform(gen, (2, 5, 4, 3), -1, 1).requires_grad_()
        ka = glorot(gen, (3, 3, 3, 4), 27, 36).requires_grad_()
        ba = uniform(gen, (4,), -0.1, 0.1).requires_grad_()
        kr = glorot(gen, (5, 1, 3, 4), 15, 20).requires_grad_()
        br = uniform(gen, (4,), -0.1, 0.1).requires_grad_()
        kc = glorot(gen, (1, 4, 3, 4), 12, 16).requires_grad_()
        bc = uniform(gen, (4,), -0.1, 0.1).requires_grad_()
        kd = glorot(gen, (4, 3), 4, 3).requires_grad_()
        bd = uniform(gen, (3,), -0.1, 0.1).requires_grad_()
        labels = torch.tensor([1, 2])
        h = x.permute(0, 3, 1, 2)
        a = torch.tanh(conv2d(h, ka, ba, padding="same"))   # 0 a (5,4,4)
        r = torch.tanh(conv2d(h, kr, br))                   # 1 r (1,4,4)
        add = a + r                                         # 2 Add
        g = add.mean((2, 3))                                # 3 GAP g (4)
        mul = add * g.reshape(-1, 4, 1, 1)                  # 4 Multiply (5,4,4) x (4)
        col = conv2d(h, kc, bc)                             # 5 col (5,1,4)
        sub = mul - col                                     # 6 Subtract
        kinks.relu_input(sub - r)
        mx = torch.maximum(sub, r)                          # 7 Maximum
        kinks.relu_input(col - mx)
        mn = torch.minimum(col, mx)                         # 8 Minimum (5,1,4) first
        avg = (mn + g.reshape(-1, 4, 1, 1) + a) / 3         # 9 Average of three
        pooled = avg.mean((2, 3))                           # 10 GAP
        logits = dense(pooled, kd, bd)                      # 11 Dense
        loss = F.cross_entropy(logits, labels)
        weights = [(0, "kernel", ka, True), (0, "bias", ba, True),
                   (1, "kernel", kr, True), (1, "bias", br, True),
                   (5, "kernel", kc, True), (5, "bias", bc, True),
                   (11, "kernel", kd, True), (11, "bias", bd, True)]
        return x, labels.to(torch.float64), weights, torch.softmax(logits, dim=-1), loss

    case = Case("broadcast_merge",
                "input (2,5,4,3); Conv2D a (5,4,4), r (1,4,4); Add GAP Multiply; Conv2D col "
                "(5,1,4); Subtract Maximum Minimum Average(3) GAP Dense(3,softmax)")
    finish_weights(case, *draw(build, 1500))
    return case


def winograd_net():
    """m): a 5x5 convolution that inference runs by Winograd's F(2x2, 5x5)
    (16 channels and filters, stride 1): the training step takes the direct
    products, cnn_model_predict the transform, and both are compared with
    the same output (output.inference: the same x, no layer differs)."""

    def build(gen, kinks):
        x = uniform(gen, (2, 6, 5, 16), -1, 1).requires_grad_()
        k0 = glorot(gen, (5, 5, 16, 16), 400, 400).requires_grad_()
        b0 = uniform(gen, (16,), -0.1, 0.1).requires_grad_()
        k2 = glorot(gen, (16, 3), 16, 3).requires_grad_()
        b2 = uniform(gen, (3,), -0.1, 0.1).requires_grad_()
        y = uniform(gen, (2, 3), -1, 1)
        h = x.permute(0, 3, 1, 2)
        h = activate(conv2d(h, k0, b0, padding="same"), "relu", kinks)   # (2,16,6,5)
        output = dense(h.mean(dim=(2, 3)), k2, b2)                        # GAP, Dense
        loss = ((output - y) ** 2).mean()
        weights = [(0, "kernel", k0, True), (0, "bias", b0, True),
                   (2, "kernel", k2, True), (2, "bias", b2, True)]
        return x, y, weights, output, loss, [("output.inference", output)]

    case = Case("winograd",
                "input (2,6,5,16); Conv2D(16,5x5,same,relu) GlobalAveragePooling2D Dense(3); "
                "mse; output.inference: the same x through cnn_model_predict")
    x, y, weights, output, loss, extra = draw(build, 1300)
    finish_weights(case, x, y, weights, output, loss, extra)
    return case


def main():
    total = 0
    for make in (lambda: small_net(False), padding_stride_dilation, dense_bce,
                 lambda: small_net(True), batchnorm_net, separable_net, activations_conv,
                 activations_dense, lambda: from_logits("sparse"),
                 lambda: from_logits("categorical"), lambda: from_logits("binary"),
                 graph_net, transpose_upsampling, normalization_softmax, broadcast_merge,
                 winograd_net):
        case = make()
        path = case.write()
        total += os.path.getsize(path)
        print("%s: %d bytes" % (os.path.relpath(path), os.path.getsize(path)))
    print("total: %d bytes" % total)


if __name__ == "__main__":
    main()
