"""Reference for docs/QUANTIZATION.md section 2a (percentile and MSE
calibration), written from the text: the expected ranges in
tests/test_qcalib.c come from here. Usage: python3 scripts/qcalib_ref.py"""
import math
import struct

B = 2048


def f32(x):
    return struct.unpack('f', struct.pack('f', x))[0]


def choose_params(mn, mx):
    lo = mn if mn < 0 else 0.0
    hi = mx if mx > 0 else 0.0
    if lo == hi:
        return 1.0, 0
    scale = (hi - lo) / 255
    zmin, zmax = -128 - lo / scale, 127 - hi / scale
    emin, emax = 128 + abs(lo / scale), 127 + abs(hi / scale)
    zp = zmin if emin < emax else zmax
    zp = -128 if zp < -128 else 127 if zp > 127 else int(math.copysign(math.floor(abs(zp) + 0.5), zp))
    return f32(scale), zp


def hist(x):
    lo = min(0.0, min(x))
    hi = max(0.0, max(x))
    bins = [0] * B
    zeros = 0
    for v in x:
        if v == 0:
            zeros += 1
            continue
        t = (v - lo) / (hi - lo) * B
        bins[0 if not t >= 0 else B - 1 if t >= B - 1 else int(t)] += 1
    return lo, hi, zeros, bins


def edge(lo, hi, k):
    return lo if k <= 0 else hi if k >= B else lo + (hi - lo) * k / B


def percentile(x, p=99.99):
    lo, hi, zeros, bins = hist(x)
    c = list(bins)
    t = (0 - lo) / (hi - lo) * B
    c[0 if not t >= 0 else B - 1 if t >= B - 1 else int(t)] += zeros
    want = p / 100 * len(x)
    acc, e = 0, B
    for j in range(B):
        acc += c[j]
        if acc >= want:
            e = j + 1
            break
    acc, s = 0, 0
    for j in range(B - 1, -1, -1):
        acc += c[j]
        if acc >= want:
            s = j
            break
    return min(0.0, f32(edge(lo, hi, s))), max(0.0, f32(edge(lo, hi, e)))


def mse_err(lo, hi, bins, s, e):
    sc, zp = choose_params(f32(edge(lo, hi, s)), f32(edge(lo, hi, e)))
    qlo, qhi = (-128.0 - zp) * sc, (127.0 - zp) * sc
    r = sc * sc / 12
    err = 0.0
    for i in range(B):
        if bins[i]:
            mid = lo + (hi - lo) * (i + 0.5) / B
            d = mid - qhi if mid > qhi else qlo - mid if mid < qlo else 0
            err += bins[i] * (d * d if d > 0 else r)
    return err


def mse(x):
    lo, hi, zeros, bins = hist(x)
    s, e, left, right = 0, B, 0, 0
    best = mse_err(lo, hi, bins, s, e)
    bs, be = s, e
    while e - s > 1:
        if left + bins[s] < right + bins[e - 1]:
            left += bins[s]
            s += 1
        else:
            e -= 1
            right += bins[e]
        err = mse_err(lo, hi, bins, s, e)
        if err < best:
            best, bs, be = err, s, e
    return min(0.0, f32(edge(lo, hi, bs))), max(0.0, f32(edge(lo, hi, be)))


if __name__ == '__main__':
    # tests/test_qcalib.c: 0.001 .. 9.999 and one 100; and the same shifted by -2
    x = [f32((i + 1) / 1000) for i in range(9999)] + [100.0]
    print('percentile 99.99', percentile(x))
    print('percentile 99', percentile(x, 99))
    print('mse', mse(x))
    y = [f32(f32((i + 1) / 1000) - 2) for i in range(9999)] + [100.0]
    print('shifted: percentile 99.99', percentile(y), 'mse', mse(y))
