#!/usr/bin/env python3
"""bfloat16 mixed precision against float32 (a section of `make bench`; also on
its own: python3 bench/bf16_run.py [--quick] [--tiny] [--out FILE]).

Keras's mixed_bfloat16 policy (cnn_model_set_dtype_policy): Conv2D and Dense
multiply bfloat16-rounded inputs into float32 sums with vdpbf16ps; weights,
loss and optimizer stay float32. Three measurements, our float32 against our
mixed_bfloat16 in the same run (issue 17's targets):
- each pass of the tutorial network's conv2 and dense layers, the large 3x3
  layer and conv1 (bench_cnn conv/dense ... POLICY), the two policies
  alternating within each round: GFLOP/s, the ratio (target >= 1.7) and the
  fraction of the bf16 dot-product peak (bench/peak.c, avx512bf16);
- training the tutorial network (batch 64), images/s;
- the Fashion-MNIST demo (examples/fashion_mnist: the tutorial network, 5
  epochs, 2 threads) trained with each policy from seeds 42, 1 and 2: test
  accuracy, the means' difference (target: within 0.3 points) and time.
On a CPU without AVX512_BF16 the policy runs in float32 and the section says
so.

--tiny (not for numbers): one round, one epoch, to check the section runs."""
import json
import os
import statistics
import subprocess
import sys

import bf16_accuracy  # the demo over seeds, one table for both scripts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "build", "bench", "bench_cnn")
PEAK = os.path.join(ROOT, "build", "bench", "peak")
FASHION = bf16_accuracy.FASHION
POLICIES = ("float32", "mixed_bfloat16")
LAYERS = [("tutorial conv2 (64, 14x14, 32->64, 5x5)", ["conv", 64, 14, 14, 32, 64, 5]),
          ("large (32, 56x56, 64->64, 3x3)", ["conv", 32, 56, 56, 64, 64, 3]),
          ("tutorial conv1 (64, 28x28, 1->32, 5x5)", ["conv", 64, 28, 28, 1, 32, 5]),
          ("tutorial dense (64, 3136->1024)", ["dense", 64, 3136, 1024])]
PASSES = ("forward", "backward_data", "backward_weights")


def run(args):
    out = subprocess.run([str(a) for a in args], check=True, capture_output=True,
                         text=True).stdout
    return out


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def stats(values):
    return statistics.median(values), min(values), max(values)


def fmt(m, lo, hi, digits=1):
    return f"{m:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def bf16_peak():
    """bench/peak.c's avx512bf16 lines (GFLOP/s by threads); empty without
    the instruction."""
    peaks = {}
    for line in run([PEAK]).splitlines():
        p = json.loads(line)
        if p["kind"] == "peak" and p["isa"] == "avx512bf16":
            peaks[p["threads"]] = p["gflops"]
    return peaks


def layer_rows(say, threads_list, rounds, reps, peaks):
    say("| layer | pass | threads | float32 GFLOP/s | mixed_bfloat16 GFLOP/s | ratio (target >= 1.7) "
        "| bf16 % of bf16 peak |")
    say("|---|---|---|---|---|---|---|")
    for name, spec in LAYERS:
        for t in threads_list:
            got = {p: [] for p in POLICIES}
            for _ in range(rounds):
                for policy in POLICIES:  # alternating: load falls on both alike
                    got[policy].append(last_json(run([OURS] + spec + [t, reps, policy])))
            for ps in PASSES:
                g = {p: stats([r["flops"] / statistics.median(r["step_s"][ps]) / 1e9
                               for r in got[p]]) for p in POLICIES}
                f32, b16 = g["float32"], g["mixed_bfloat16"]
                pk = f"{b16[0] / peaks[t] * 100:.0f}%" if t in peaks else "n/a"
                say(f"| {name} | {ps.replace('_', '-')} | {t} | {fmt(*f32)} | {fmt(*b16)} | "
                    f"{b16[0] / f32[0]:.2f} | {pk} |")


def training_rows(say, threads_list, rounds, steps):
    say("| network | batch | threads | float32 images/s | mixed_bfloat16 images/s | ratio |")
    say("|---|---|---|---|---|---|")
    for t in threads_list:
        got = {p: [] for p in POLICIES}
        for _ in range(rounds):
            for policy in POLICIES:
                r = last_json(run([OURS, "train", "tutorial", 64, t, steps, policy]))
                got[policy].append(64 / statistics.median(r["step_s"]))
        f32, b16 = stats(got["float32"]), stats(got["mixed_bfloat16"])
        say(f"| tutorial | 64 | {t} | {fmt(*f32, 0)} | {fmt(*b16, 0)} | {b16[0] / f32[0]:.2f} |")


def section(say, quick=False, tiny=False):
    rounds = 1 if tiny else 3 if quick else 5
    threads_list = [1, 2] if os.cpu_count() >= 2 else [1]
    say("## bfloat16 mixed precision (Keras's mixed_bfloat16) against float32")
    say()
    peaks = bf16_peak()
    if not peaks:
        say("This CPU has no AVX512_BF16: mixed_bfloat16 runs its products in float32 here, "
            "so there is nothing to compare.")
        say()
        return
    say("Our float32 and our mixed_bfloat16 (bfloat16 inputs to the Conv2D and Dense products "
        "with vdpbf16ps, float32 sums, weights and optimizer) in the same run, alternating "
        f"within each of {rounds} rounds; medians with min-max over rounds. The bf16 peak is "
        "bench/peak.c's vdpbf16ps figure above. Command: `make bench` (`bench/bf16_run.py`).")
    say()
    layer_rows(say, threads_list, rounds, 2 if tiny else 6, peaks)
    say()
    training_rows(say, threads_list, rounds, 3 if tiny else 8 if quick else 15)
    say()
    if not os.path.exists(os.path.join(FASHION, "train-images-idx3-ubyte.gz")):
        say(f"No Fashion-MNIST in {FASHION}: the accuracy comparison did not run.")
        say()
        return
    seeds = (42,) if tiny else (42, 1, 2)
    say("The Fashion-MNIST demo (`build/examples/fashion_mnist DIR EPOCHS THREADS POLICY SEED`: "
        "the tutorial network, Adam, batch 64) trained with each policy from the same seeds "
        "(the seed sets the initial weights, the shuffling and the dropout masks). Two runs "
        "that round differently follow different trajectories, so one pair differs by the "
        "run-to-run spread as much as by the policy: the target is read on the means. "
        "The results do not depend on the thread count (`bench/bf16_accuracy.py` writes the "
        "same tables at 1 thread to docs/BF16_ACCURACY.md).")
    say()
    bf16_accuracy.seed_tables(say, seeds, 1 if tiny else 5, 2 if len(threads_list) > 1 else 1)
    say()


def main():
    lines = []
    say = lambda s="": (print(s, flush=True), lines.append(s))
    section(say, "--quick" in sys.argv, "--tiny" in sys.argv)
    if "--out" in sys.argv:
        with open(sys.argv[sys.argv.index("--out") + 1], "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
