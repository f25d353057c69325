#!/usr/bin/env python3
"""The benchmark: our library against PyTorch CPU on identical networks,
batch sizes and thread counts, alternating between the two in one run, and
writes the table to docs/BENCHMARKS.md.  Run it with `make bench` on an
otherwise idle machine.  Options: --quick (fewer rounds), --out FILE.

PyTorch runs as a knowledgeable user would run it here: Debian 12's OpenBLAS
does not recognise this CPU and falls back to SSE3 kernels, so it gets
OPENBLAS_CORETYPE=SKYLAKEX and OPENBLAS_NUM_THREADS=1 (torch owns the
threads: torch.set_num_threads(t)); glibc's malloc keeps freed tensors mapped
(GLIBC_TUNABLES ...mmap_threshold / trim_threshold) because first-touch page
faults are expensive on this machine.  Our library gets no variable at all.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "build", "bench", "bench_cnn")
PEAK = os.path.join(ROOT, "build", "bench", "peak")
TORCH = [sys.executable if "torch" in sys.modules else "/usr/bin/python3",
         os.path.join(ROOT, "bench", "bench_torch.py")]
TORCH_ENV = dict(os.environ, OPENBLAS_CORETYPE="SKYLAKEX", OPENBLAS_NUM_THREADS="1",
                 OMP_NUM_THREADS="1",
                 GLIBC_TUNABLES="glibc.malloc.mmap_threshold=4294967295:"
                                "glibc.malloc.trim_threshold=4294967295")
OUR_ENV = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENBLAS", "GLIBC_TUNABLES", "OMP_"))}


def run(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def both(args, rounds):
    """Alternates ours and PyTorch; returns {impl: [result per round]}."""
    res = {"cnn": [], "pytorch": []}
    for r in range(rounds):
        order = [("cnn", [OURS] + args, OUR_ENV), ("pytorch", TORCH + args, TORCH_ENV)]
        if r % 2:
            order.reverse()
        for impl, cmd, env in order:
            res[impl].append(run([str(a) for a in cmd], env))
    return res


def stats(values):
    return statistics.median(values), min(values), max(values)


def throughput(results, batch, key="step_s"):
    """Images/s per round (from each round's median step), as median, min, max."""
    return stats([batch / statistics.median(r[key]) for r in results])


def fmt(m, lo, hi, digits=0):
    return f"{m:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    torch_version = subprocess.run(TORCH[:1] + ["-c", "import torch; print(torch.__version__)"],
                                   capture_output=True, text=True).stdout.strip()
    gcc = subprocess.run(["cc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return model, os.cpu_count(), torch_version, gcc


REAL_MODELS = [("ResNet-8 (CIFAR-10, 32x32x3)", "mlperf-tiny-resnet8-cifar10.h5"),
               ("MobileNetV1 0.25 (VWW, 96x96x3)", "mlperf-tiny-mobilenetv1-vww96.h5")]


def real_models_section(say, threads_list, rounds, steps):
    """The MLPerf Tiny Keras files against PyTorch running the same graph with
    the same weights (tests/keras/keras_torch.py): inference at batch 1 and
    64, training at batch 32."""
    say("## Real models: MLPerf Tiny ResNet-8 and MobileNetV1 (Keras files)")
    say()
    say("Both sides load `models/mlperf-tiny/*.h5`: cnn with `cnn_model_load_keras`, PyTorch "
        "as the same graph with the same weights (`tests/keras/keras_torch.py`, float32, "
        "the tests' reference translation; BatchNormalization by `F.batch_norm`). Inputs "
        "uniform in [0, 1), random labels; training is forward + backward + SGD-momentum "
        "step with the cross-entropy from the logits and BatchNormalization on batch "
        f"statistics, as Keras trains. {rounds} rounds of {steps} timed steps ({steps * 4} at "
        "batch 1) after 3 warm-up steps. Ratio: cnn / PyTorch (images/s: higher is better "
        "for cnn; latency: lower is).")
    say()
    say("| network | measurement | threads | cnn | PyTorch | ratio cnn/PyTorch |")
    say("|---|---|---|---|---|---|")
    for name, file in REAL_MODELS:
        path = os.path.join(ROOT, "models", "mlperf-tiny", file)
        for t in threads_list:
            res = both(["keras", "infer", path, 1, t, steps * 4], rounds)
            ours = stats([statistics.median(r["step_s"]) * 1e3 for r in res["cnn"]])
            theirs = stats([statistics.median(r["step_s"]) * 1e3 for r in res["pytorch"]])
            say(f"| {name} | inference, batch 1 latency, ms | {t} | {fmt(*ours, 3)} | "
                f"{fmt(*theirs, 3)} | {ours[0] / theirs[0]:.2f} |")
        for kind, batch, label in (("infer", 64, "inference, batch 64, images/s"),
                                   ("train", 32, "training, batch 32, images/s")):
            for t in threads_list:
                res = both(["keras", kind, path, batch, t, steps], rounds)
                ours, theirs = throughput(res["cnn"], batch), throughput(res["pytorch"], batch)
                say(f"| {name} | {label} | {t} | {fmt(*ours)} | {fmt(*theirs)} | "
                    f"{ours[0] / theirs[0]:.2f} |")
    say()


CONV_LAYERS = [("tutorial conv1 (64, 28x28, 1->32, 5x5)", [64, 28, 28, 1, 32, 5]),
               ("tutorial conv2 (64, 14x14, 32->64, 5x5)", [64, 14, 14, 32, 64, 5]),
               ("large (32, 56x56, 64->64, 3x3)", [32, 56, 56, 64, 64, 3])]


def real_fraction(size, k):
    """The fraction of a square 'same' convolution's taps (stride 1) that
    land inside the input: the work left when the zero padding is skipped."""
    lo = (k - 1) // 2
    inside = sum(min(size, o - lo + k) - max(0, o - lo) for o in range(size))
    return (inside / (size * k)) ** 2


def winograd_layers():
    """The tutorial's layers that run Winograd's F(2x2, 5x5) here: conv2d_1
    (5x5, 32 -> 64, stride 1) wherever the CPU has AVX-512F, the library's
    rule (src/kernels/winograd.h) for this network."""
    with open("/proc/cpuinfo") as f:
        flags = next((line.split() for line in f if line.startswith("flags")), [])
    return {"conv2d_1"} if "avx512f" in flags else set()


WINOGRAD_NOTE = ("The tutorial's second convolution (5x5, 32 -> 64) runs Winograd's F(2x2, 5x5) "
                 "in every pass on AVX-512 (36 multiplications where the direct products take "
                 "100), so figures that count the direct products' work can pass the peak.")


def profile_section(say, mode, threads_list, rounds, steps, best_peak, torch_ips):
    """Where the tutorial's training step or inference (batch 64) goes,
    layer by layer (`bench_cnn profile`): the products at their fraction of
    the FMA peak, the rest, and the ratio to PyTorch it would reach with
    every product at the peak and the rest as measured. torch_ips: PyTorch's
    images/s per thread count, from the table above."""
    train = mode == "train"
    say(f"### Where the {'training step' if train else 'inference'}'s time goes "
        "(tutorial, batch 64)")
    say()
    say(f"`bench_cnn profile {mode} tutorial 64 THREADS STEPS`: each layer's "
        + ("forward and backward" if train else "forward")
        + f" (activation included) timed inside the step, medians over {rounds} rounds of "
        f"{steps} steps. GFLOP/s count the real work (no padding taps) of every pass"
        + (": forward, and backward-data plus backward-weights (the first layer has no "
           "backward-data). The optimizer update (SGD with momentum) reads and writes every "
           "weight, gradient and momentum: memory-bound. Rest: the loss and the step's "
           "bookkeeping."
           if train else ". Rest: the output's copy into the result tensor."))
    wino = winograd_layers()
    if wino:
        say()
        say(f"{', '.join(sorted(wino))} runs Winograd's F(2x2, 5x5): its GFLOP/s count the direct "
            "products' real work over its time (it multiplies 36 times per 2x2 outputs and "
            "channel pair where they do 100, padding included), and the bound below keeps its "
            "measured time.")
    say()
    # the real (padding-free) fraction of each 'same' convolution of the tutorial
    real = {"conv2d": real_fraction(28, 5), "conv2d_1": real_fraction(14, 5)}
    for t in threads_list:
        runs = [run([OURS, "profile", mode, "tutorial", "64", str(t), str(steps)], OUR_ENV)
                for _ in range(rounds)]
        step_ms = statistics.median(statistics.median(r["step_s"]) for r in runs) * 1e3
        theirs_ms = 64 / torch_ips[t] * 1e3
        say(f"{t} thread{'s' if t > 1 else ''}: {step_ms:.1f} ms a batch "
            f"(PyTorch's, from the table above: {theirs_ms:.1f} ms).")
        say()
        cols = "forward, ms | backward, ms" if train else "forward, ms"
        say(f"| layer | {cols} | share | GFLOP/s | % of peak |")
        say("|---|---|" + ("---|" if train else "") + "---|---|---|")
        matmul_ms = matmul_ideal_ms = layers_ms = wino_ms = 0.0
        for i, layer in enumerate(runs[0]["layers"]):
            f = statistics.median(statistics.median(r["layers"][i]["forward_s"]) for r in runs) * 1e3
            b = statistics.median(statistics.median(r["layers"][i]["backward_s"]) for r in runs) * 1e3
            layers_ms += f + b
            rate = pct = ""
            if layer["flops"] > 1e6:  # Conv2D and Dense: the products
                passes = (2 if i == 0 else 3) if train else 1
                work = layer["flops"] * real.get(layer["name"], 1.0) * passes
                rate = f"{work / (f + b) / 1e6:.1f}"
                pct = f"{work / (f + b) / 1e6 / best_peak[t] * 100:.0f}%"
                if layer["name"] in wino:
                    wino_ms += f + b
                else:
                    matmul_ms += f + b
                    matmul_ideal_ms += work / (best_peak[t] * 1e6)
            times = f"{f:.2f} | {b:.2f}" if train else f"{f:.2f}"
            kind = layer["type"] + (", Winograd" if layer["name"] in wino else "")
            say(f"| {layer['name']} ({kind}) | {times} | "
                f"{(f + b) / step_ms * 100:.0f}% | {rate} | {pct} |")
        rest = step_ms - layers_ms
        if train:
            update = statistics.median(statistics.median(r["update_s"]) for r in runs) * 1e3
            say(f"| optimizer update | {update:.2f} | | {update / step_ms * 100:.0f}% | | |")
            rest -= update
        say(f"| rest | {rest:.2f} |{' |' if train else ''} {rest / step_ms * 100:.0f}% | | |")
        say()
        ideal = step_ms - matmul_ms + matmul_ideal_ms
        direct = "direct products" if wino else "products"
        say(f"The {direct} (Conv2D, Dense) take {matmul_ms:.1f} ms, at "
            f"{matmul_ideal_ms / matmul_ms * 100:.0f}% of the FMA peak on their real work"
            + (f"; the Winograd layer {wino_ms:.1f} ms" if wino else "")
            + f"; the rest {step_ms - matmul_ms - wino_ms:.1f} ms. With every {direct[:-1]} at "
            f"the peak and the rest{' (the Winograd layer included)' if wino else ''} as it "
            f"is, a batch would take {ideal:.1f} ms: cnn/PyTorch {theirs_ms / ideal:.2f} "
            f"(now {theirs_ms / step_ms:.2f}).")
        say()


def main():
    quick = "--quick" in sys.argv
    out_path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    if "--out" in sys.argv:
        out_path = sys.argv[sys.argv.index("--out") + 1]
    rounds = 3 if quick else 5
    steps = 8 if quick else 15
    threads_list = [1, 2] if os.cpu_count() >= 2 else [1]
    lines = []
    say = lambda s="": (print(s, flush=True), lines.append(s))

    peak, bandwidth = {}, {}
    for line in subprocess.run([PEAK], capture_output=True, text=True, check=True).stdout.splitlines():
        p = json.loads(line)
        if p["kind"] == "bandwidth":
            bandwidth[p["threads"]] = p["gbytes_s"]
        else:
            peak[(p["isa"], p["threads"])] = p["gflops"]
    # float32 figures read against the FMA peak; the bf16 dot-product peak
    # (isa avx512bf16, bench/peak.c) is listed but is the peak of bf16 work only
    best_peak = {t: max(v for (isa, th), v in peak.items() if th == t and isa != "avx512bf16")
                 for t in threads_list}

    model, cores, torch_version, gcc = machine()
    say("# Benchmarks: cnn against PyTorch on the same machine")
    say()
    say(f"Machine: {model}, {cores} cores; {platform.platform()}. Compiler: {gcc}. "
        f"PyTorch {torch_version} (Debian python3-torch) with OpenBLAS (SKYLAKEX kernels).")
    say(f"Command: `make bench` ({'quick, ' if quick else ''}{rounds} rounds alternating the two "
        f"implementations, {steps} timed steps each after 3 warm-up steps; medians with "
        f"min-max over rounds). Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
    say()
    say("PyTorch runs with OPENBLAS_CORETYPE=SKYLAKEX OPENBLAS_NUM_THREADS=1, "
        "torch.set_num_threads(t) and GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:"
        "glibc.malloc.trim_threshold=4294967295 (its best settings here); cnn runs with none.")
    say()
    say("## Peak FP32 throughput (FMA microbenchmark, `bench/peak.c`; avx512bf16: the bfloat16 "
        "dot product, vdpbf16ps)")
    say()
    say("| ISA | threads | GFLOP/s |")
    say("|---|---|---|")
    for (isa, t), v in sorted(peak.items()):
        say(f"| {isa} | {t} | {v:.1f} |")
    say()
    say("Memory read bandwidth (`bench/peak.c`: each thread sums its share of 512 MiB): "
        + ", ".join(f"{bandwidth[t]:.1f} GB/s on {t} thread{'s' if t > 1 else ''}"
                    for t in sorted(bandwidth)) + ".")
    say()

    say("## Training throughput (images/s; forward + backward + SGD-momentum step)")
    say()
    say("cnn % of peak counts every nominal multiply-add (zero padding included). Bound: the "
        "ratio cnn/PyTorch that cnn would reach running every multiply-add that does not fall "
        "on the zero padding (both sides skip those now) at the FMA peak measured above — a "
        "target above it cannot be met in float32 on this CPU with direct products. "
        + (WINOGRAD_NOTE if winograd_layers() else ""))
    say()
    say("| network | batch | threads | cnn | PyTorch | ratio cnn/PyTorch | cnn % of peak | bound |")
    say("|---|---|---|---|---|---|---|---|")
    flops_per_image = {"tutorial": 3 * 2 * (784 * 25 * 32 + 196 * 800 * 64 + 3136 * 1024 + 1024 * 10),
                       "lenet5": 3 * 2 * (784 * 25 * 6 + 100 * 150 * 16 + 400 * 120 + 120 * 84 + 840)}
    # the same without the taps on the zero padding of the 'same' layers
    real_per_image = {"tutorial": 3 * 2 * (784 * 25 * 32 * real_fraction(28, 5)
                                           + 196 * 800 * 64 * real_fraction(14, 5)
                                           + 3136 * 1024 + 1024 * 10),
                      "lenet5": 3 * 2 * (784 * 25 * 6 * real_fraction(28, 5) + 100 * 150 * 16
                                         + 400 * 120 + 120 * 84 + 840)}
    train_cases = [("tutorial", b) for b in (32, 64, 128)] + [("lenet5", 64)]
    torch_train = {}  # (net, batch, threads) -> PyTorch's images/s, for the profile below
    for net, batch in train_cases:
        for t in threads_list:
            res = both(["train", net, batch, t, steps], rounds)
            ours, theirs = throughput(res["cnn"], batch), throughput(res["pytorch"], batch)
            torch_train[(net, batch, t)] = theirs[0]
            pct = ours[0] * flops_per_image[net] / 1e9 / best_peak[t] * 100
            bound = best_peak[t] * 1e9 / real_per_image[net] / theirs[0]
            say(f"| {net} | {batch} | {t} | {fmt(*ours)} | {fmt(*theirs)} | "
                f"{ours[0] / theirs[0]:.2f} | {pct:.0f}% | {bound:.2f} |")
    say()

    profile_section(say, "train", threads_list, rounds, steps, best_peak,
                    {t: torch_train[("tutorial", 64, t)] for t in threads_list})

    say("## Inference (tutorial convnet)")
    say()
    say("| measurement | threads | cnn | PyTorch | ratio | cnn % of peak | bound |")
    say("|---|---|---|---|---|---|---|")
    infer_flops = flops_per_image["tutorial"] / 3  # the forward pass only
    infer_real = real_per_image["tutorial"] / 3
    torch_infer = {}  # threads -> PyTorch's images/s, for the profile below
    for t in threads_list:
        res = both(["infer", "tutorial", 64, t, steps], rounds)
        ours, theirs = throughput(res["cnn"], 64), throughput(res["pytorch"], 64)
        torch_infer[t] = theirs[0]
        pct = ours[0] * infer_flops / 1e9 / best_peak[t] * 100
        bound = best_peak[t] * 1e9 / infer_real / theirs[0]
        say(f"| batch 64, images/s | {t} | {fmt(*ours)} | {fmt(*theirs)} | "
            f"{ours[0] / theirs[0]:.2f} | {pct:.0f}% | {bound:.2f} |")
    # batch 1 reads every weight once per image: the time of that read at
    # the measured bandwidth is a floor besides the FMA one
    weight_bytes = 4 * (25 * 32 + 32 + 800 * 64 + 64 + 3136 * 1024 + 1024 + 1024 * 10 + 10)
    for t in threads_list:
        res = both(["infer", "tutorial", 1, t, steps * 4], rounds)
        ours = stats([statistics.median(r["step_s"]) * 1e3 for r in res["cnn"]])
        theirs = stats([statistics.median(r["step_s"]) * 1e3 for r in res["pytorch"]])
        floor_ms = max(infer_real / (best_peak[t] * 1e9),
                       weight_bytes / (bandwidth.get(t, bandwidth.get(1, 1e9)) * 1e9)) * 1e3
        say(f"| batch 1 latency, ms (lower is better) | {t} | {fmt(*ours, 3)} | "
            f"{fmt(*theirs, 3)} | {ours[0] / theirs[0]:.2f} | | {floor_ms / theirs[0]:.2f} |")
    say()
    say(f"Batch 1 reads every weight once per image ({weight_bytes / 1e6:.1f} MB, the Dense "
        "3136 -> 1024 kernel nearly all of it): its bound (the lowest ratio possible) is that "
        "read at the memory bandwidth above, over PyTorch's latency.")
    say()
    profile_section(say, "infer", threads_list, rounds, steps, best_peak, torch_infer)

    # --quick: two rounds of 4 steps (each run loads a model and starts Python)
    real_models_section(say, threads_list, 2 if quick else rounds, 4 if quick else steps)

    say("## Conv2D layers (GFLOP/s, fraction of the measured peak)")
    say()
    say("GFLOP/s count every nominal multiply-add, 2 x batch x H x W x Cin x Cout x K x K, "
        "including the taps that fall on the zero padding of 'same'. Both sides skip those "
        "(cnn's implicit GEMM in panels of pixels that read the same taps, oneDNN's direct "
        "convolution), which leaves real work of: "
        + ", ".join(f"{n.split(' (')[0]} {real_fraction(sh[1], sh[5]):.0%}"
                    for n, sh in CONV_LAYERS)
        + " of nominal, so a figure above the peak is possible. "
        + (WINOGRAD_NOTE.replace("The tutorial's second convolution", "conv2") if winograd_layers()
           else ""))
    say()
    say("| layer | pass | threads | cnn GFLOP/s | % peak | PyTorch GFLOP/s | ratio |")
    say("|---|---|---|---|---|---|---|")
    for name, shape in CONV_LAYERS:
        for t in threads_list:
            # as many calls as training steps: the median of 3 (as before)
            # let one disturbed round pull a row 8% below the layer's speed
            res = both(["conv"] + shape + [t, steps], rounds)
            for p in ("forward", "backward_data", "backward_weights"):
                g = lambda rs: stats([r["flops"] / statistics.median(r["step_s"][p]) / 1e9
                                      for r in rs])
                ours, theirs = g(res["cnn"]), g(res["pytorch"])
                say(f"| {name} | {p.replace('_', '-')} | {t} | {fmt(*ours, 1)} | "
                    f"{ours[0] / best_peak[t] * 100:.0f}% | {fmt(*theirs, 1)} | "
                    f"{ours[0] / theirs[0]:.2f} |")
    say()

    say("## Memory: peak RSS")
    say()
    say("| run | threads | cnn | PyTorch |")
    say("|---|---|---|---|")
    res = both(["fashion", 100, 1], 1)
    say(f"| Fashion-MNIST training, tutorial convnet, 100 batches of 64 (data set loaded) | 1 | "
        f"{res['cnn'][0]['max_rss_kib'] / 1024:.0f} MiB | "
        f"{res['pytorch'][0]['max_rss_kib'] / 1024:.0f} MiB |")
    say()
    say("### One 2000x2000x3 image through the seed network "
        "(Conv 32@5x5 same, pool, Conv 64@5x5 same, pool, global average pool, Dense 10)")
    say()
    say("Minimum: training = input + every activation + a gradient for each + weights; "
        "inference = input + the largest pair of adjacent activations. PyTorch runs twice: "
        "with the settings above (fastest) and with glibc's default malloc (leanest).")
    say()
    say("| pass | threads | cnn time, s | cnn peak RSS | minimum | cnn RSS / minimum | "
        "PyTorch time, s (fast / lean) | PyTorch peak RSS (fast / lean) | cnn RSS / PyTorch lean |")
    say("|---|---|---|---|---|---|---|---|---|")
    lean_env = {k: v for k, v in TORCH_ENV.items() if k != "GLIBC_TUNABLES"}
    for mode in ("forward", "train"):
        for t in threads_list:
            args = ["large", mode, 2000, t]
            ours = run([OURS] + [str(a) for a in args], OUR_ENV)
            fast = run(TORCH + [str(a) for a in args], TORCH_ENV)
            lean = run(TORCH + [str(a) for a in args], lean_env)
            gib = lambda kib: kib / 1048576
            say(f"| {mode} | {t} | {statistics.median(ours['step_s']):.2f} | "
                f"{gib(ours['max_rss_kib']):.2f} GiB | {ours['minimum_bytes'] / 2**30:.2f} GiB | "
                f"{ours['max_rss_kib'] * 1024 / ours['minimum_bytes']:.2f} | "
                f"{statistics.median(fast['step_s']):.2f} / {statistics.median(lean['step_s']):.2f} | "
                f"{gib(fast['max_rss_kib']):.2f} / {gib(lean['max_rss_kib']):.2f} GiB | "
                f"{ours['max_rss_kib'] / lean['max_rss_kib']:.2f} |")
    say()
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import data_run  # the data-pipeline side-by-side (issue 14)
    data_run.section(say, quick)
    import int8_run  # int8 inference against PyTorch's quantization (issue 16)
    int8_run.section(say, quick)
    import bf16_run  # bfloat16 mixed precision against float32 (issue 17)
    bf16_run.section(say, quick)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"written to {out_path}")


if __name__ == "__main__":
    main()
