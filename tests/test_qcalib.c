/* Calibration methods (docs/QUANTIZATION.md section 2a): the exact ranges
 * percentile and MSE pick on a hand-made distribution (the numbers come
 * from scripts/qcalib_ref.py, written from the documented rule), that they
 * cut the quantization error of values with an outlier, and that a model
 * calibrated on data with one outlier image is more accurate with them. */
#include <math.h>
#include <stdlib.h>

#include "core/rng.h"
#include "test.h"

/* 0.001, 0.002, ..., 9.999 and one outlier at 100, shifted by off. */
static float *ramp(int64_t n, float off)
{
    float *x = malloc((size_t)n * sizeof *x);
    if (!x)
        return NULL;
    for (int64_t i = 0; i < n - 1; i++)
        x[i] = (float)(i + 1) / 1000 + off;
    x[n - 1] = 100;
    return x;
}

static void test_exact_ranges(void)
{
    float *x = ramp(10000, 0);
    if (!x)
        return;
    float lo = -1, hi = -1;
    CHECK_OK(cnn_qcalib_range(NULL, x, 10000, &lo, &hi));
    CHECK(lo == 0 && hi == 100);
    cnn_qcalib_options o = {CNN_QCALIB_PERCENTILE, 0}; /* 99.99 */
    CHECK_OK(cnn_qcalib_range(&o, x, 10000, &lo, &hi));
    printf("percentile 99.99: [%.9g, %.9g]\n", lo, hi);
    CHECK(lo == 0 && hi == 10.009765625f); /* 205 of 2048 bins over [0, 100] */
    o.percentile = 99;
    CHECK_OK(cnn_qcalib_range(&o, x, 10000, &lo, &hi));
    printf("percentile 99: [%.9g, %.9g]\n", lo, hi);
    CHECK(lo == 0 && hi == 9.912109375f); /* the low cut at 0.0977 widened to 0 */
    o = (cnn_qcalib_options){CNN_QCALIB_MSE, 0};
    CHECK_OK(cnn_qcalib_range(&o, x, 10000, &lo, &hi));
    printf("mse: [%.9g, %.9g]\n", lo, hi);
    /* one value 90 beyond the rest costs more clipped than all of them rounded */
    CHECK(lo == 0 && hi == 98.73046875f);
    free(x);
    x = ramp(10000, -2);
    o = (cnn_qcalib_options){CNN_QCALIB_PERCENTILE, 0};
    CHECK_OK(cnn_qcalib_range(&o, x, 10000, &lo, &hi));
    printf("shifted, percentile 99.99: [%.9g, %.9g]\n", lo, hi);
    CHECK(lo == -1.99899995f && fabsf(hi - 8.01164436f) < 1e-6f);
    free(x);
    /* bad options and input */
    o.percentile = 40;
    CHECK_FAILS(cnn_qcalib_range(&o, &lo, 1, &lo, &hi), CNN_ERR_INVALID_ARGUMENT,
                "percentile 40");
    o = (cnn_qcalib_options){(cnn_qcalib_method)7, 0};
    CHECK_FAILS(cnn_qcalib_range(&o, &lo, 1, &lo, &hi), CNN_ERR_INVALID_ARGUMENT, "method 7");
    float bad[2] = {1, NAN};
    CHECK_FAILS(cnn_qcalib_range(NULL, bad, 2, &lo, &hi), CNN_ERR_NUMERIC, "value 1");
}

/* Root-mean-square error of quantizing x with the range [lo, hi]
 * (TFLite's parameters, as the quantizer chooses them). */
static double rms_error(const float *x, int64_t n, float lo, float hi)
{
    double a = fmin(lo, 0), b = fmax(hi, 0), scale = (b - a) / 255;
    double zp = round(-128 - a / scale), s = 0;
    for (int64_t i = 0; i < n; i++) {
        double q = fmin(127, fmax(-128, round(x[i] / scale) + zp));
        double d = (q - zp) * scale - x[i];
        s += d * d;
    }
    return sqrt(s / (double)n);
}

/* Normal-ish values (sum of 4 uniforms) and one at 40 on each side. */
static void test_outlier_values(void)
{
    enum { N = 10000 };
    float *x = malloc(N * sizeof *x);
    if (!x)
        return;
    cnn_rng r;
    cnn_rng_seed(&r, 11);
    for (int i = 0; i < N; i++)
        x[i] = (float)(cnn_rng_uniform(&r) + cnn_rng_uniform(&r) + cnn_rng_uniform(&r) +
                       cnn_rng_uniform(&r) - 2);
    x[0] = -40;
    x[N / 2] = 40;
    /* all values (MSE's objective), and the inliers x[1 .. N/2) */
    float lo, hi;
    CHECK_OK(cnn_qcalib_range(NULL, x, N, &lo, &hi));
    double e_minmax = rms_error(x, N, lo, hi), in_minmax = rms_error(x + 1, N / 2 - 1, lo, hi);
    cnn_qcalib_options o = {CNN_QCALIB_PERCENTILE, 0};
    CHECK_OK(cnn_qcalib_range(&o, x, N, &lo, &hi));
    double in_pct = rms_error(x + 1, N / 2 - 1, lo, hi);
    o.method = CNN_QCALIB_MSE;
    CHECK_OK(cnn_qcalib_range(&o, x, N, &lo, &hi));
    double e_mse = rms_error(x, N, lo, hi);
    printf("outliers: RMS error of all values: min/max %.5f, mse %.5f; of the inliers: "
           "min/max %.5f, percentile %.5f\n", e_minmax, e_mse, in_minmax, in_pct);
    CHECK(e_mse < e_minmax);
    CHECK(in_pct < in_minmax / 5);
    free(x);
}

/* Dense-ReLU-Dense calibrated on 200 inputs in [0, 1) and one at 30 (0.5 %
 * of the values): the int8 outputs on ordinary inputs are closer to float
 * with the 99th percentile. */
static void test_outlier_model(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(16)));
    cnn_model_set_seed(m, 4);
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 32, .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 4)));
    int64_t dims[2] = {201, 16};
    cnn_tensor *calib = NULL, *x = NULL;
    CHECK_OK(cnn_tensor_create(&calib, 2, dims));
    dims[0] = 100;
    CHECK_OK(cnn_tensor_create(&x, 2, dims));
    if (!m || !calib || !x)
        return;
    cnn_rng r;
    cnn_rng_seed(&r, 9);
    for (int64_t i = 0; i < 201 * 16; i++)
        calib->data[i] = (float)cnn_rng_uniform(&r);
    for (int j = 0; j < 16; j++)
        calib->data[100 * 16 + j] = 30;
    for (int64_t i = 0; i < 100 * 16; i++)
        x->data[i] = (float)cnn_rng_uniform(&r);
    float fl[400], got[400];
    const float *o = NULL;
    CHECK_OK(cnn_model_forward(m, x, false, &o));
    for (int i = 0; i < 400; i++)
        fl[i] = o[i];
    double err[3];
    for (int k = 0; k < 3; k++) {
        cnn_qcalib_options how = {(cnn_qcalib_method)k, k == 1 ? 99 : 0};
        cnn_qmodel *q = NULL;
        CHECK_OK(cnn_qmodel_create_calibrated(&q, m, calib, 0, &how));
        err[k] = 1e9;
        if (q && cnn_qmodel_predict(q, x, got) == CNN_OK) {
            err[k] = 0;
            for (int i = 0; i < 400; i++)
                err[k] += fabs(got[i] - fl[i]) / 400;
        }
        cnn_qmodel_free(q);
    }
    printf("outlier image: mean |int8 - float| min/max %.5f, percentile %.5f, mse %.5f\n",
           err[0], err[1], err[2]);
    /* MSE keeps the outlier: 16 values clipped from 30 to 1 cost more than
     * all of them rounded on a coarse grid */
    CHECK(err[1] < err[0] / 2);
    cnn_qcalib_options bad = {CNN_QCALIB_PERCENTILE, 101};
    cnn_qmodel *q = NULL;
    CHECK_FAILS(cnn_qmodel_create_calibrated(&q, m, calib, 0, &bad), CNN_ERR_INVALID_ARGUMENT,
                "percentile 101");
    CHECK(q == NULL);
    cnn_tensor_free(calib);
    cnn_tensor_free(x);
    cnn_model_free(m);
}

int main(void)
{
    test_exact_ranges();
    test_outlier_values();
    test_outlier_model();
    return test_finish("test_qcalib");
}
