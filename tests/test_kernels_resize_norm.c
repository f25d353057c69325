/* The kernels of issue 15's layers: layer normalization against its naive
 * twin (double precision) and hand-worked values; bilinear resizing against
 * values worked out by hand (tf.image.resize's half-pixel centers) and its
 * backward as the exact adjoint of its forward; and the direct scatter of
 * Conv2DTranspose on a case small enough to follow by hand, which shows
 * TensorFlow's same-padding crop (the spare pixel dropped at the end). */
#include <stdlib.h>

#include "core/rng.h"
#include "kernels/conv_transpose.h"
#include "kernels/layer_norm.h"
#include "kernels/resize.h"
#include "test.h"

static cnn_rng rng;

static void test_layer_norm(void)
{
    /* hand values: (1, 2, 3) has mean 2, variance 2/3 */
    const float x[3] = {1, 2, 3}, gamma[3] = {1, 2, 1}, beta[3] = {0, 0, 1};
    float y[3], mean, rstd;
    cnn_layer_norm_forward(1, 3, 0, x, gamma, beta, y, &mean, &rstd);
    const float s = sqrtf(1.5f);
    const float want[3] = {-s, 0, s + 1};
    CHECK(test_close("layer norm by hand", y, want, 3, 1e-6, 0));
    CHECK(fabsf(mean - 2) < 1e-7f && fabsf(rstd - s) < 1e-6f);
    /* against the naive twin: large offsets (the variance of nearly equal
     * values), odd widths, without gamma and beta */
    static const int widths[] = {1, 3, 17, 64};
    for (size_t k = 0; k < sizeof widths / sizeof *widths; k++) {
        const int n = widths[k];
        const int64_t rows = 5;
        float *xs = test_random_floats(&rng, rows * n, -1, 1);
        float *g = test_random_floats(&rng, n, 0.5f, 1.5f);
        float *b = test_random_floats(&rng, n, -0.5f, 0.5f);
        float *y0 = malloc((size_t)rows * n * sizeof(float));
        float *y1 = malloc((size_t)rows * n * sizeof(float));
        float m[5], r[5];
        for (int64_t i = 0; xs && i < n; i++)
            xs[i] += 1000.0f; /* row 0 far from 0 */
        if (xs && g && b && y0 && y1) {
            char what[64];
            snprintf(what, sizeof what, "layer norm width %d", n);
            cnn_layer_norm_forward(rows, n, 1e-3f, xs, g, b, y1, m, r);
            cnn_layer_norm_naive(rows, n, 1e-3f, xs, g, b, y0);
            CHECK(test_close(what, y1, y0, rows * n, 2e-4, 1e-4));
            snprintf(what, sizeof what, "layer norm width %d, no gamma/beta", n);
            cnn_layer_norm_forward(rows, n, 1e-3f, xs, NULL, NULL, y1, m, r);
            cnn_layer_norm_naive(rows, n, 1e-3f, xs, NULL, NULL, y0);
            CHECK(test_close(what, y1, y0, rows * n, 2e-4, 1e-4));
        }
        free(xs);
        free(g);
        free(b);
        free(y0);
        free(y1);
    }
}

static void test_resize(void)
{
    /* 1 x 2 -> 1 x 4, values a, b: sample points (o + 0.5) / 2 - 0.5 = -0.25
     * (clamped to 0), 0.25, 0.75, 1.25 (clamped to the last pixel) */
    const float x[2] = {1, 3};
    float y[4];
    cnn_resize_bilinear_forward(1, 1, 2, 1, 1, 4, x, y);
    const float want[4] = {1, 1.5f, 2.5f, 3};
    CHECK(test_close("bilinear 2 -> 4 by hand", y, want, 4, 1e-7, 0));
    /* 2 x 2 x 2 channels -> 6 x 4: rows scale 3, cols 2; centre values */
    const float x2[8] = {0, 10, 1, 11, 2, 12, 3, 13}; /* (r, c, ch) */
    float y2[48];
    cnn_resize_bilinear_forward(1, 2, 2, 2, 6, 4, x2, y2);
    /* row 2 samples (2.5) / 3 - 0.5 = 1/3, col 1 samples 0.25: channel 0 is
     * (1 - 1/3) (0.75 * 0 + 0.25 * 1) + 1/3 (0.75 * 2 + 0.25 * 3) */
    float want2 = (2.0f / 3.0f) * 0.25f + (1.0f / 3.0f) * 2.25f;
    CHECK(fabsf(y2[(2 * 4 + 1) * 2] - want2) < 1e-6f);
    CHECK(fabsf(y2[(2 * 4 + 1) * 2 + 1] - (want2 + 10)) < 1e-5f);
    /* the backward pass is the adjoint: <R x, d> = <x, R^T d> */
    const int n = 2, h = 3, w = 5, c = 3, oh = 7, ow = 10;
    float *xs = test_random_floats(&rng, (int64_t)n * h * w * c, -1, 1);
    float *d = test_random_floats(&rng, (int64_t)n * oh * ow * c, -1, 1);
    float *rx = malloc((size_t)n * oh * ow * c * sizeof(float));
    float *rd = malloc((size_t)n * h * w * c * sizeof(float));
    if (xs && d && rx && rd) {
        cnn_resize_bilinear_forward(n, h, w, c, oh, ow, xs, rx);
        cnn_resize_bilinear_backward(n, h, w, c, oh, ow, d, rd);
        double a = 0, b = 0;
        for (int64_t i = 0; i < (int64_t)n * oh * ow * c; i++)
            a += (double)rx[i] * d[i];
        for (int64_t i = 0; i < (int64_t)n * h * w * c; i++)
            b += (double)xs[i] * rd[i];
        CHECK(fabs(a - b) < 1e-4 * (1 + fabs(a)));
    }
    free(xs);
    free(d);
    free(rx);
    free(rd);
}

static void test_conv_transpose(void)
{
    /* one input pixel through a 3x3 kernel, stride 2, same: the output is
     * 2 x 2, and TensorFlow keeps the first two rows and columns of the
     * full 3 x 3 result (max(k - s, 0) / 2 = 0 cropped at the start) */
    const cnn_conv_geom g = {.h = 2, .w = 2, .c = 1, .kh = 3, .kw = 3, .sh = 2, .sw = 2,
                             .dh = 1, .dw = 1, .pad_top = 0, .pad_left = 0, .oh = 1, .ow = 1};
    const float x = 2, k[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, bias = 0.5f;
    float y[4];
    cnn_conv_transpose_naive(&g, 1, 1, &x, k, &bias, y);
    const float want[4] = {2.5f, 4.5f, 8.5f, 10.5f};
    CHECK(test_close("conv transpose by hand", y, want, 4, 1e-7, 0));
}

int main(void)
{
    cnn_rng_seed(&rng, 15);
    test_layer_norm();
    test_resize();
    test_conv_transpose();
    return test_finish("test_kernels_resize_norm");
}
