/* Percentile and MSE calibration (docs/QUANTIZATION.md section 2a). Both
 * work on a 2048-bin histogram over the tensor's min/max range, so one
 * more pass over the calibration data and no stored activations. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/quantize.h"
#include "quant/qcalib.h"

void cnn_qhist_init(cnn_qhist *h, float lo, float hi)
{
    memset(h, 0, sizeof *h);
    h->lo = lo;
    h->hi = hi;
}

static int bin_of(const cnn_qhist *h, double x)
{
    double t = (x - h->lo) / (h->hi - h->lo) * CNN_QCALIB_BINS;
    if (!(t >= 0)) /* also NaN; the caller has refused non-finite ranges */
        return 0;
    return t >= CNN_QCALIB_BINS - 1 ? CNN_QCALIB_BINS - 1 : (int)t;
}

void cnn_qhist_add(cnn_qhist *h, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (x[i] == 0.0f)
            h->zeros++;
        else if (h->hi > h->lo)
            h->bins[bin_of(h, x[i])]++;
    }
}

/* Edge k of the bins, k in [0, BINS]: the ends are the min/max exactly. */
static double edge(const cnn_qhist *h, int k)
{
    if (k <= 0)
        return h->lo;
    if (k >= CNN_QCALIB_BINS)
        return h->hi;
    return h->lo + (h->hi - h->lo) * k / CNN_QCALIB_BINS;
}

static void percentile(double p, int64_t *c, int *s, int *e)
{
    int64_t n = 0; /* c holds the zeros too */
    for (int i = 0; i < CNN_QCALIB_BINS; i++)
        n += c[i];
    double want = p / 100 * (double)n;
    int64_t acc = 0;
    *e = CNN_QCALIB_BINS;
    for (int j = 0; j < CNN_QCALIB_BINS; j++)
        if ((double)(acc += c[j]) >= want) {
            *e = j + 1;
            break;
        }
    acc = 0;
    *s = 0;
    for (int j = CNN_QCALIB_BINS - 1; j >= 0; j--)
        if ((double)(acc += c[j]) >= want) {
            *s = j;
            break;
        }
}

/* The expected squared error of quantizing the histogram with the
 * parameters [edge(s), edge(e)] gets: values beyond what int8 represents
 * are clipped (the distance from a bin's centre to the end, squared),
 * values within it rounded (scale^2 / 12 each); zeros are exact. */
static double mse(const cnn_qhist *h, int s, int e)
{
    cnn_qparams p = cnn_q_choose_params((float)edge(h, s), (float)edge(h, e));
    double sc = p.scale, qlo = (-128.0 - p.zero_point) * sc, qhi = (127.0 - p.zero_point) * sc;
    double err = 0, round_err = sc * sc / 12;
    for (int i = 0; i < CNN_QCALIB_BINS; i++) {
        if (!h->bins[i])
            continue;
        double mid = h->lo + (h->hi - h->lo) * (i + 0.5) / CNN_QCALIB_BINS;
        double d = mid > qhi ? mid - qhi : mid < qlo ? qlo - mid : 0;
        err += (double)h->bins[i] * (d > 0 ? d * d : round_err);
    }
    return err;
}

/* From the whole range inward one bin at a time, from the end whose cut
 * would clip fewer values (the top on a tie), down to one bin; the
 * candidate with the least error wins (the first, so the widest, on a tie). */
static void min_mse(const cnn_qhist *h, int *bs, int *be)
{
    int s = 0, e = CNN_QCALIB_BINS;
    int64_t left = 0, right = 0; /* values below edge(s), above edge(e) */
    double best = mse(h, s, e);
    *bs = s;
    *be = e;
    while (e - s > 1) {
        if (left + h->bins[s] < right + h->bins[e - 1])
            left += h->bins[s++];
        else
            right += h->bins[--e];
        double err = mse(h, s, e);
        if (err < best) {
            best = err;
            *bs = s;
            *be = e;
        }
    }
}

void cnn_qhist_choose(const cnn_qhist *h, const cnn_qcalib_options *o, float *lo, float *hi)
{
    *lo = (float)h->lo;
    *hi = (float)h->hi;
    if (!o || o->method == CNN_QCALIB_MINMAX || !(h->hi > h->lo))
        return;
    int s = 0, e = CNN_QCALIB_BINS;
    if (o->method == CNN_QCALIB_PERCENTILE) {
        int64_t c[CNN_QCALIB_BINS];
        memcpy(c, h->bins, sizeof c);
        c[bin_of(h, 0.0)] += h->zeros; /* zeros count as values here */
        double p = o->percentile > 0 ? o->percentile : CNN_QCALIB_DEFAULT_PERCENTILE;
        percentile(p, c, &s, &e);
    } else {
        min_mse(h, &s, &e);
    }
    /* every range contains 0 (cnn_q_choose_params would widen it anyway) */
    *lo = s > 0 && edge(h, s) > 0 ? 0.0f : (float)edge(h, s);
    *hi = edge(h, e) < 0 ? 0.0f : (float)edge(h, e);
}

cnn_status cnn_qcalib_check(const cnn_qcalib_options *o)
{
    if (!o)
        return CNN_OK;
    if (o->method != CNN_QCALIB_MINMAX && o->method != CNN_QCALIB_PERCENTILE &&
        o->method != CNN_QCALIB_MSE)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantize: calibration method %d: expected "
                        "CNN_QCALIB_MINMAX, _PERCENTILE or _MSE", (int)o->method);
    if (o->method == CNN_QCALIB_PERCENTILE && o->percentile != 0 &&
        !(o->percentile >= 50 && o->percentile <= 100))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantize: calibration percentile %g: expected "
                        "0 (default %g) or 50..100", o->percentile, CNN_QCALIB_DEFAULT_PERCENTILE);
    return CNN_OK;
}

cnn_status cnn_qcalib_range(const cnn_qcalib_options *o, const float *x, int64_t n, float *lo,
                            float *hi)
{
    if (!x || !lo || !hi || n < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantize: calibration range: values, lo and "
                                                  "hi must not be NULL, n at least 1");
    cnn_status st = cnn_qcalib_check(o);
    if (st)
        return st;
    float l = 0, h = 0; /* the quantizer's ranges always contain 0 */
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return cnn_fail(CNN_ERR_NUMERIC, "quantize: calibration range: value %lld is not "
                            "finite", (long long)i);
        l = x[i] < l ? x[i] : l;
        h = x[i] > h ? x[i] : h;
    }
    cnn_qhist *hist = malloc(sizeof *hist); /* 16 KiB: not on the stack */
    if (!hist)
        return cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
    cnn_qhist_init(hist, l, h);
    cnn_qhist_add(hist, x, n);
    cnn_qhist_choose(hist, o, lo, hi);
    free(hist);
    return CNN_OK;
}
