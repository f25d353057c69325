#!/usr/bin/env python3
"""int8 inference, cnn against PyTorch (a section of `make bench`; also on its
own: /usr/bin/python3 bench/int8_run.py [--quick] [--out FILE]).

For the demo network (examples/tutorial_convnet.model) and the BN recipe
(examples/fashion_bn.model): each is trained briefly here (seed 1, Adam,
a fixed number of batches of 64 from the first Fashion-MNIST training
images; bench_int8 prepare) and saved as .cnn and as Keras .h5, which
PyTorch reads as the same weights. Both sides quantize with the first 500
training images: ours with src/quant/qmodel.h (TFLite's scheme), PyTorch's
with eager post-training static quantization (QuantStub/DeQuantStub, fused
conv+bn+relu and linear+relu, the engine's default activation observer, a
per-channel symmetric weight observer). Of PyTorch's quantized engines
(onednn, qnnpack) a short check picks the faster on this machine.

Then the test accuracy of all four, and inference time at batch 64
(images/s) and batch 1 (latency) at 1 and 2 threads, alternating cnn float,
cnn int8, PyTorch float and PyTorch int8 within each round. Targets (issue
16): int8 at least 0.5 points within float, at least 2x our float speed,
faster than PyTorch int8. Then the MLPerf Tiny ResNet-8 and MobileNetV1
graphs, our float against our int8 (mlperf_rows).

--tiny (not for numbers): one round of a few steps, to check the section
runs end to end."""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "build", "bench", "bench_int8")
TORCH = ["/usr/bin/python3", os.path.join(ROOT, "bench", "bench_torch.py")]
# PyTorch's settings as in run.py (its best on this machine); ours: none
TORCH_ENV = dict(os.environ, OPENBLAS_CORETYPE="SKYLAKEX", OPENBLAS_NUM_THREADS="1",
                 OMP_NUM_THREADS="1",
                 GLIBC_TUNABLES="glibc.malloc.mmap_threshold=4294967295:"
                                "glibc.malloc.trim_threshold=4294967295")
OUR_ENV = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENBLAS", "GLIBC_TUNABLES", "OMP_"))}
NETWORKS = [("demo convnet (tutorial_convnet.model)", "tutorial_convnet"),
            ("BN recipe (fashion_bn.model)", "fashion_bn")]
NCAL = 500
ENGINES = ("onednn", "qnnpack")


def run(cmd, env):
    out = subprocess.run([str(c) for c in cmd], env=env, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def median_step(cmd, env):
    return statistics.median(run(cmd, env)["step_s"])


def pick_engine(h5, steps):
    """The faster quantized engine on the demo network: the product of the
    batch-64 and batch-1 times at one thread (a short check, not a row)."""
    times = {}
    for e in ENGINES:
        b64 = median_step(TORCH + ["qinfer", h5, "int8", 64, 1, steps, NCAL, e], TORCH_ENV)
        b1 = median_step(TORCH + ["qinfer", h5, "int8", 1, 1, steps * 4, NCAL, e], TORCH_ENV)
        times[e] = (b64, b1)
    return min(ENGINES, key=lambda e: times[e][0] * times[e][1]), times


def stats(values):
    return statistics.median(values), min(values), max(values)


def fmt(m, lo, hi, digits=0):
    return f"{m:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


MLPERF = [("ResNet-8 (CIFAR-10, 32x32x3)", "mlperf-tiny-resnet8-cifar10.h5"),
          ("MobileNetV1 0.25 (VWW, 96x96x3)", "mlperf-tiny-mobilenetv1-vww96.h5")]
MLPERF_NCAL = 100


def mlperf_rows(say, rounds, steps, threads_list):
    """Our float and int8 on the MLPerf Tiny Keras graphs (no data for them
    here: calibration and inputs uniform in [0, 1)). PyTorch's eager int8
    would need each graph rewritten as modules (its Add as FloatFunctional),
    so it has no column; its float figures are in the real-models section."""
    say(f"MLPerf Tiny graphs, cnn only: float against int8 (calibrated on {MLPERF_NCAL} "
        "images uniform in [0, 1), fed the same; no data for them here). PyTorch's eager "
        "int8 needs the graph rewritten by hand into modules (Add as FloatFunctional), so it "
        "has no column; its float figures for these models are in the real-models section.")
    say()
    say("| network | measurement | threads | cnn float | cnn int8 | cnn int8 / cnn float |")
    say("|---|---|---|---|---|---|")
    for label, file in MLPERF:
        path = os.path.join(ROOT, "models", "mlperf-tiny", file)
        for batch in (1, 64):
            n = steps if batch == 64 else steps * 4
            for t in threads_list:
                res = {"float": [], "int8": []}
                for r in range(rounds):
                    for d in (("float", "int8") if r % 2 == 0 else ("int8", "float")):
                        res[d].append(median_step([OURS, "qinfer", path, d, batch, t, n,
                                                   MLPERF_NCAL], OUR_ENV))
                if batch == 64:
                    v = {k: stats([batch / s for s in x]) for k, x in res.items()}
                    what, dg, up = "batch 64, images/s", 0, v["int8"][0] / v["float"][0]
                else:
                    v = {k: stats([s * 1e3 for s in x]) for k, x in res.items()}
                    what, dg, up = "batch 1 latency, ms", 3, v["float"][0] / v["int8"][0]
                say(f"| {label} | {what} | {t} | {fmt(*v['float'], dg)} | "
                    f"{fmt(*v['int8'], dg)} | {up:.2f} |")
    say()


def section(say, quick=False, tiny=False):
    rounds = 1 if tiny else 3 if quick else 5
    steps = 2 if tiny else 8 if quick else 15
    # 300 steps in --quick too: after 100, the BN recipe's moving statistics
    # (momentum 0.99) still carry 37% of their initial values and both float
    # models scored 0.1000 in the 2026-12-05 quick run.
    train_steps = 10 if tiny else 300
    threads_list = [1, 2] if (os.cpu_count() or 1) >= 2 else [1]
    work = tempfile.mkdtemp(prefix="cnn-bench-int8-")
    try:
        files = {}
        for _, net in NETWORKS:
            cnn, h5 = os.path.join(work, net + ".cnn"), os.path.join(work, net + ".h5")
            run([OURS, "prepare", os.path.join(ROOT, "examples", net + ".model"), train_steps,
                 cnn, h5], OUR_ENV)
            files[net] = (cnn, h5)
        engine, engine_times = pick_engine(files[NETWORKS[0][1]][1], max(2, steps // 3))

        say("## int8 inference: cnn and PyTorch post-training quantization (`bench/int8_run.py`)")
        say()
        say(f"Each network trained here for {train_steps} batches of 64 (seed 1, Adam; the first "
            f"Fashion-MNIST training images; a brief training, not the recipes' full runs), "
            f"saved as .cnn and as Keras .h5 (PyTorch loads the same weights). Both quantize "
            f"with the first {NCAL} training images: cnn with its int8 path (TFLite's scheme, "
            "docs/QUANTIZATION.md), PyTorch with eager post-training static quantization "
            "(QuantStub/DeQuantStub, fused conv+bn+relu and linear+relu, the engine's default "
            "activation observer, per-channel symmetric weights). PyTorch's engine: "
            f"**{engine}**, the faster here in a short check on the demo network at 1 thread "
            "(batch 64 / batch 1, ms: " +
            ", ".join(f"{e} {t[0] * 1e3:.2f} / {t[1] * 1e3:.3f}"
                      for e, t in engine_times.items()) + ").")
        say()
        say("| network | cnn float | cnn int8 | cnn drop, points (target <= 0.5) | "
            "PyTorch float | PyTorch int8 | PyTorch drop, points | top-1 agreement int8/float "
            "(cnn / PyTorch) |")
        say("|---|---|---|---|---|---|---|---|")
        for label, net in NETWORKS:
            cnn, h5 = files[net]
            a = run([OURS, "qaccuracy", cnn, NCAL], OUR_ENV)
            b = run(TORCH + ["qaccuracy", h5, NCAL, engine], TORCH_ENV)
            say(f"| {label} | {a['float']:.4f} | {a['int8']:.4f} | "
                f"{100 * (a['float'] - a['int8']):.2f} | {b['float']:.4f} | {b['int8']:.4f} | "
                f"{100 * (b['float'] - b['int8']):.2f} | {a['agreement']:.4f} / "
                f"{b['agreement']:.4f} |")
        say()

        say(f"Speed: {rounds} rounds alternating the four, {steps} timed calls at batch 64 "
            f"({steps * 4} at batch 1) after 3 warm-up calls, on the first test images; "
            "medians with min-max over rounds. Both ratios are speed-ups (higher is better "
            "for cnn int8): at batch 1, the other's latency over cnn int8's.")
        say()
        say("| network | measurement | threads | cnn float | cnn int8 | PyTorch float | "
            f"PyTorch int8 ({engine}) | cnn int8 / cnn float (target >= 2) | "
            "cnn int8 / PyTorch int8 (target > 1) |")
        say("|---|---|---|---|---|---|---|---|---|")
        for label, net in NETWORKS:
            cnn, h5 = files[net]
            for batch in (64, 1):
                n = steps if batch == 64 else steps * 4
                for t in threads_list:
                    cases = [("cnn float", [OURS, "qinfer", cnn, "float", batch, t, n, NCAL],
                              OUR_ENV),
                             ("cnn int8", [OURS, "qinfer", cnn, "int8", batch, t, n, NCAL],
                              OUR_ENV),
                             ("torch float", TORCH + ["qinfer", h5, "float", batch, t, n, NCAL,
                                                      engine], TORCH_ENV),
                             ("torch int8", TORCH + ["qinfer", h5, "int8", batch, t, n, NCAL,
                                                     engine], TORCH_ENV)]
                    res = {c[0]: [] for c in cases}
                    for r in range(rounds):
                        for name, cmd, env in (cases if r % 2 == 0 else cases[::-1]):
                            res[name].append(median_step(cmd, env))
                    if batch == 64:
                        v = {k: stats([batch / s for s in x]) for k, x in res.items()}
                        what, d = "batch 64, images/s", 0
                        up = lambda a, b: v[a][0] / v[b][0]
                    else:
                        v = {k: stats([s * 1e3 for s in x]) for k, x in res.items()}
                        what, d = "batch 1 latency, ms", 3
                        up = lambda a, b: v[b][0] / v[a][0]
                    say(f"| {label} | {what} | {t} | {fmt(*v['cnn float'], d)} | "
                        f"{fmt(*v['cnn int8'], d)} | {fmt(*v['torch float'], d)} | "
                        f"{fmt(*v['torch int8'], d)} | {up('cnn int8', 'cnn float'):.2f} | "
                        f"{up('cnn int8', 'torch int8'):.2f} |")
        say()
        mlperf_rows(say, rounds, steps, threads_list)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    out_path = None
    if "--out" in sys.argv:
        out_path = sys.argv[sys.argv.index("--out") + 1]
    lines = []
    say = lambda s="": (print(s, flush=True), lines.append(s))
    section(say, "--quick" in sys.argv, "--tiny" in sys.argv)
    if out_path:
        with open(out_path, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
