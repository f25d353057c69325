#!/usr/bin/env python3
"""Test accuracy of the Fashion-MNIST demo under float32 and mixed_bfloat16,
over several seeds: one training run per (seed, policy) pair.

make bench trains the demo once per policy (seed 42). Two runs that differ
in rounding follow different trajectories, so a single pair shows the
run-to-run spread as much as the effect of bfloat16; this script measures
that spread (the same policy over seeds) beside the difference of the two
policies' means. It takes a while: 5 epochs at 1 thread are about 5 minutes
(float32) and 3 (mixed_bfloat16) per seed on the machines of
docs/BENCHMARKS.md.

usage: bench/bf16_accuracy.py [--seeds 42,1,2] [--epochs 5] [--threads 1]
                              [--out docs/BF16_ACCURACY.md]
"""
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "build", "examples", "fashion_mnist")
FASHION = "/usr/share/datasets/fashion-mnist"
POLICIES = ("float32", "mixed_bfloat16")


def option(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def train(epochs, threads, policy, seed):
    """(test accuracy, test loss, training seconds) of one demo run."""
    out = subprocess.run([DEMO, FASHION, str(epochs), str(threads), policy, str(seed)],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"test loss: ([0-9.]+) - test accuracy: ([0-9.]+)", out)
    t = re.search(r"training time: ([0-9.]+) s", out)
    if not m or not t:
        raise RuntimeError(f"fashion_mnist {policy} seed {seed}: no result in its output:\n{out}")
    return float(m.group(2)), float(m.group(1)), float(t.group(1))


def seed_tables(say, seeds, epochs, threads):
    """Trains the demo once per (seed, policy) and writes the runs, each
    policy's mean and spread, and the difference of the means; returns that
    difference in points. make bench's bfloat16 section calls it too."""
    say("| seed | dtype policy | epochs | threads | test accuracy | test loss | training time, s |")
    say("|---|---|---|---|---|---|---|")
    acc = {p: [] for p in POLICIES}
    for seed in seeds:
        for policy in POLICIES:
            a, loss, secs = train(epochs, threads, policy, seed)
            acc[policy].append(a)
            say(f"| {seed} | {policy} | {epochs} | {threads} | {a:.4f} | {loss:.4f} | {secs:.1f} |")
    say()
    say("| dtype policy | runs | mean test accuracy | standard deviation, points | min - max |")
    say("|---|---|---|---|---|")
    for policy in POLICIES:
        a = acc[policy]
        sd = statistics.stdev(a) * 100 if len(a) > 1 else 0.0
        say(f"| {policy} | {len(a)} | {statistics.mean(a):.4f} | {sd:.2f} | "
            f"{min(a):.4f} - {max(a):.4f} |")
    say()
    diff = (statistics.mean(acc["mixed_bfloat16"]) - statistics.mean(acc["float32"])) * 100
    paired = [(b - f) * 100 for b, f in zip(acc["mixed_bfloat16"], acc["float32"])]
    say(f"Mean mixed_bfloat16 - mean float32: {diff:+.2f} points (issue #17's target: within "
        f"0.3); per seed: {', '.join(f'{d:+.2f}' for d in paired)}.")
    return diff


def main():
    seeds = [int(s) for s in option("--seeds", "42,1,2").split(",")]
    epochs = int(option("--epochs", "5"))
    threads = int(option("--threads", "1"))
    out_path = option("--out", os.path.join(ROOT, "docs", "BF16_ACCURACY.md"))
    if not os.path.exists(os.path.join(FASHION, "train-images-idx3-ubyte.gz")):
        sys.exit(f"bf16_accuracy.py: no Fashion-MNIST in {FASHION} (Debian dataset-fashion-mnist)")
    lines = []
    say = lambda s="": (print(s, flush=True), lines.append(s))
    say("# mixed_bfloat16 against float32: the demo's test accuracy over seeds")
    say()
    say(f"Command: `python3 bench/bf16_accuracy.py --seeds {','.join(map(str, seeds))} "
        f"--epochs {epochs} --threads {threads}` (generated "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). Each row is one training run "
        "of `build/examples/fashion_mnist` (the tutorial network, Adam, batch 64, "
        "the seed setting the initial weights, the shuffling and the dropout masks), "
        "evaluated on the 10,000 test images. The training times are for orientation only "
        "(other work may have shared the machine): make bench compares the speeds.")
    say()
    seed_tables(say, seeds, epochs, threads)
    with open(out_path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
