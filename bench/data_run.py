#!/usr/bin/env python3
"""The data-pipeline side-by-side (a section of `make bench`; also on its
own: /usr/bin/python3 bench/data_run.py [--quick] [--out FILE]).

Images/s delivered by cnn's streaming data set (bench_data stream) and by
torchvision's ImageFolder + DataLoader(num_workers=cores) with the same
resize, one pass over each folder, alternating the two:
  (a) Fashion-MNIST as 28x28 grey PNG files (scripts/fashion_to_folders.py),
  (b) JPEG photos of about 500x375 resized to 96x96 RGB (the ants-bees photos
      in ../shared/photos when present, else drawn here with Pillow),
  (c) 2000x2000 JPEGs resized to 250x250 (drawn here).
Then training the demo network from the PNG folder against from the IDX
files at 2 threads. Targets (issue 14): at least 2x torchvision on each
folder; the folder at least 0.95x the IDX speed.

The folders are written once under $CNN_BENCH_DATA (default
/tmp/cnn-bench-data). Run it on an otherwise idle machine."""
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "build", "bench", "bench_data")
TORCH = ["/usr/bin/python3", os.path.join(ROOT, "bench", "data_torch.py")]
FASHION = os.environ.get("FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
PHOTOS = os.path.join(ROOT, "..", "shared", "photos", "ants-bees", "train")
DATA = os.environ.get("CNN_BENCH_DATA", "/tmp/cnn-bench-data")


def run(cmd):
    out = subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def draw_jpegs(out, count, width, height, seed):
    """count JPEG photos-like images (smooth colour fields with edges) in
    two class folders."""
    from PIL import Image, ImageDraw, ImageFilter
    import random
    rng = random.Random(seed)
    for k in ("a", "b"):
        os.makedirs(os.path.join(out, k), exist_ok=True)
    for i in range(count):
        img = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
        d = ImageDraw.Draw(img)
        for _ in range(12):
            x0, y0 = rng.randrange(width), rng.randrange(height)
            d.ellipse([x0, y0, x0 + rng.randrange(width // 2 + 1), y0 + rng.randrange(height // 2 + 1)],
                      fill=tuple(rng.randrange(256) for _ in range(3)))
        img = img.filter(ImageFilter.GaussianBlur(2))
        img.save(os.path.join(out, "ab"[i % 2], "%05d.jpg" % i), quality=90)


def prepare(quick):
    os.makedirs(DATA, exist_ok=True)
    sets = []
    png = os.path.join(DATA, "fashion")
    if not os.path.isdir(os.path.join(png, "train")):
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "fashion_to_folders.py"),
                        png, FASHION], check=True)
    sets.append(("(a) Fashion-MNIST PNG 28x28 grey", os.path.join(png, "test" if quick else "train"),
                 28, 28, 1))
    photos = PHOTOS if os.path.isdir(PHOTOS) else os.path.join(DATA, "photos")
    if photos != PHOTOS and not os.path.isdir(photos):
        draw_jpegs(photos, 400, 500, 375, 1)
    sets.append(("(b) JPEG photos ~500x375 -> 96x96 RGB", photos, 96, 96, 3))
    big = os.path.join(DATA, "big")
    if not os.path.isdir(big):
        draw_jpegs(big, 40 if quick else 100, 2000, 2000, 2)
    sets.append(("(c) JPEG 2000x2000 -> 250x250 RGB", big, 250, 250, 3))
    return png, sets


def section(say, quick=False):
    cores = os.cpu_count() or 1
    rounds = 1 if quick else 3
    png, sets = prepare(quick)
    say("## Data pipeline: images/s delivered from a folder (`bench/data_run.py`)")
    say()
    say(f"cnn: `cnn_dataset_from_directory` streamed by {cores} decode threads; PyTorch: "
        f"torchvision `ImageFolder` + `DataLoader(num_workers={cores})`, the same resize "
        "(bilinear, no antialiasing) and colour mode; one pass, batch 64, medians of "
        f"{rounds} alternating rounds (min-max).")
    say()
    say("| folder | images | cnn images/s | PyTorch images/s | ratio (target >= 2) |")
    say("|---|---|---|---|---|")
    for name, path, rows, cols, ch in sets:
        args = [path, rows, cols, ch, cores, 64]
        ours, theirs = [], []
        for r in range(rounds):
            pair = [("cnn", [OURS, "stream"] + args), ("torch", TORCH + args)]
            for impl, cmd in (pair if r % 2 == 0 else pair[::-1]):
                (ours if impl == "cnn" else theirs).append(run(cmd))
        a = [o["images_per_s"] for o in ours]
        b = [t["images_per_s"] for t in theirs]
        say(f"| {name} | {ours[0]['images']} | {statistics.median(a):.0f} ({min(a):.0f}-{max(a):.0f}) | "
            f"{statistics.median(b):.0f} ({min(b):.0f}-{max(b):.0f}) | "
            f"{statistics.median(a) / statistics.median(b):.2f} |")
    say()
    steps = 20 if quick else 200
    say(f"Training the demo network (tutorial convnet, batch 64, {steps} steps after one "
        "warm-up step, 2 threads) from the PNG folder against from the IDX files:")
    say()
    say("| source | images/s | ratio folder/IDX (target >= 0.95) |")
    say("|---|---|---|")
    idx, folder = [], []
    for r in range(rounds):
        idx.append(run([OURS, "train-idx", FASHION, 2, steps])["images_per_s"])
        folder.append(run([OURS, "train-folder", os.path.join(png, "train"), 2, cores, steps])
                      ["images_per_s"])
    say(f"| IDX files in memory | {statistics.median(idx):.0f} | |")
    say(f"| PNG folder, streamed | {statistics.median(folder):.0f} | "
        f"{statistics.median(folder) / statistics.median(idx):.2f} |")
    say()


def main():
    quick = "--quick" in sys.argv
    out = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else None
    lines = []
    say = lambda s="": (print(s, flush=True), lines.append(s))
    section(say, quick)
    if out:
        with open(out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
