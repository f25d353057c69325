/* The batch-norm, depthwise and global-pooling kernels against their naive
 * twins, and the MaxPooling2D ones against their generic (4-wide) build,
 * for every instruction set this CPU runs: random shapes with odd
 * channel counts (vector tails), row strides wider than the channels,
 * forward and every backward pass. Where the fast kernel promises the same
 * bits as the naive one it must match exactly; where it sums differently
 * (the batch-norm reductions) it must come within a tolerance. Every fast
 * result must also be identical across instruction sets and whether the
 * work is done whole or split in two (as threads split it), which is what
 * makes training results independent of the thread count; two small
 * models using every such layer train to identical weights on 1 and 2
 * threads. A few cases are checked against values worked out by hand. */
#include <stdint.h>
#include <stdlib.h>

#include "core/rng.h"
#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/depthwise.h"
#include "kernels/global_pool.h"
#include "kernels/pool.h"
#include "test.h"

static cnn_rng rng;

static int below(int n)
{
    return (int)(cnn_rng_next(&rng) % (uint64_t)n);
}

static float uniform(float lo, float hi)
{
    return lo + (hi - lo) * cnn_rng_uniform(&rng);
}

static void *alloc_bytes(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "test_kernels: out of memory\n");
        exit(1);
    }
    return p;
}

static float *random_floats(int64_t n, float lo, float hi)
{
    float *p = alloc_bytes((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        p[i] = uniform(lo, hi);
    return p;
}

static float *copy_floats(const float *src, int64_t n)
{
    float *p = alloc_bytes((size_t)n * sizeof(float));
    memcpy(p, src, (size_t)n * sizeof(float));
    return p;
}

/* Exact agreement of values (so -0 == 0), printing the first difference. */
static void same_values(const char *what, const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!(a[i] == b[i]) && !(a[i] != a[i] && b[i] != b[i])) {
            fprintf(stderr, "%s: element %lld: %.9g != %.9g\n", what, (long long)i, (double)a[i],
                    (double)b[i]);
            CHECK(0);
            return;
        }
    CHECK(1);
}

static void same_bits(const char *what, const void *a, const void *b, size_t bytes)
{
    bool same = memcmp(a, b, bytes) == 0;
    if (!same)
        fprintf(stderr, "%s: results differ\n", what);
    CHECK(same);
}

static void close_doubles(const char *what, const double *a, const double *b, int n, double atol,
                          double rtol)
{
    float *fa = alloc_bytes((size_t)n * sizeof(float)),
          *fb = alloc_bytes((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) {
        fa[i] = (float)a[i];
        fb[i] = (float)b[i];
    }
    test_close(what, fa, fb, n, atol, rtol);
    free(fa);
    free(fb);
}

/* ---- Batch normalisation ------------------------------------------------------ */

/* One shape: rows x n channels, row stride ld >= n, values offset by
 * `offset` (a large mean tests the shifted sums). */
static void bn_case(cnn_isa isa, int64_t rows, int n, int64_t ld, float offset)
{
    char what[160];
    snprintf(what, sizeof what, "bn %s rows=%lld n=%d ld=%lld offset=%g", cnn_isa_name(isa),
             (long long)rows, n, (long long)ld, (double)offset);
    const int64_t size = rows * ld;
    float *x = random_floats(size, offset - 1, offset + 1), *g = random_floats(size, -1, 1);
    float *scale = random_floats(n, 0.5f, 2), *shift = random_floats(n, -1, 1);
    double *mean = alloc_bytes((size_t)n * sizeof(double)),
           *var = alloc_bytes((size_t)n * sizeof(double));
    double *mean0 = alloc_bytes((size_t)n * sizeof(double)),
           *var0 = alloc_bytes((size_t)n * sizeof(double));
    double *mean1 = alloc_bytes((size_t)n * sizeof(double)),
           *var1 = alloc_bytes((size_t)n * sizeof(double));

    /* statistics: close to the reference; whole == split == generic ISA */
    cnn_bn_stats_naive(x, rows, n, ld, mean0, var0);
    cnn_bn_stats(isa, x, rows, n, ld, mean, var);
    close_doubles(what, mean, mean0, n, 1e-5 * (1 + fabs(offset)), 1e-5);
    close_doubles(what, var, var0, n, 1e-5 * (1 + offset * offset * 1e-3), 1e-4);
    int s = below(n + 1);
    cnn_bn_stats(isa, x, rows, s, ld, mean1, var1);
    cnn_bn_stats(isa, x + s, rows, n - s, ld, mean1 + s, var1 + s);
    same_bits(what, mean, mean1, (size_t)n * sizeof(double));
    same_bits(what, var, var1, (size_t)n * sizeof(double));
    cnn_bn_stats(CNN_ISA_GENERIC, x, rows, n, ld, mean1, var1);
    same_bits(what, mean, mean1, (size_t)n * sizeof(double));
    same_bits(what, var, var1, (size_t)n * sizeof(double));

    /* y = x * scale + shift, exactly; the padding columns stay untouched */
    float *y0 = random_floats(size, -1, 1), *y = copy_floats(y0, size);
    cnn_bn_affine_naive(x, y0, rows, n, ld, scale, shift);
    cnn_bn_affine(isa, x, y, rows, n, ld, scale, shift);
    same_values(what, y, y0, size);

    /* backward sums and dx */
    float *m = alloc_bytes((size_t)n * sizeof(float)),
          *inv = alloc_bytes((size_t)n * sizeof(float));
    for (int k = 0; k < n; k++) {
        m[k] = (float)mean0[k];
        inv[k] = (float)(1 / sqrt(var0[k] + 1e-3));
    }
    double *sg = alloc_bytes((size_t)n * sizeof(double)),
           *sgx = alloc_bytes((size_t)n * sizeof(double));
    double *sg0 = alloc_bytes((size_t)n * sizeof(double)),
           *sgx0 = alloc_bytes((size_t)n * sizeof(double));
    cnn_bn_grad_sums_naive(x, g, rows, n, ld, m, inv, sg0, sgx0);
    cnn_bn_grad_sums(isa, x, g, rows, n, ld, m, inv, sg, sgx);
    double atol = 2e-5 * sqrt((double)rows + 1);
    close_doubles(what, sg, sg0, n, atol, 1e-4);
    close_doubles(what, sgx, sgx0, n, atol, 1e-4);
    cnn_bn_grad_sums(isa, x, g, rows, s, ld, m, inv, sg0, sgx0);
    cnn_bn_grad_sums(isa, x + s, g + s, rows, n - s, ld, m + s, inv + s, sg0 + s, sgx0 + s);
    same_bits(what, sg, sg0, (size_t)n * sizeof(double));
    same_bits(what, sgx, sgx0, (size_t)n * sizeof(double));

    float *a = random_floats(n, 0.5f, 2), *mg = random_floats(n, -0.1f, 0.1f);
    float *mgx = random_floats(n, -0.1f, 0.1f);
    float *dx0 = random_floats(size, -1, 1), *dx = copy_floats(dx0, size);
    cnn_bn_grad_input_naive(x, g, dx0, rows, n, ld, a, m, inv, mg, mgx);
    cnn_bn_grad_input(isa, x, g, dx, rows, n, ld, a, m, inv, mg, mgx);
    same_values(what, dx, dx0, size);

    free(x), free(g), free(scale), free(shift), free(mean), free(var), free(mean0), free(var0);
    free(mean1), free(var1), free(y0), free(y), free(m), free(inv), free(sg), free(sgx);
    free(sg0), free(sgx0), free(a), free(mg), free(mgx), free(dx0), free(dx);
}

static void test_bn(cnn_isa isa)
{
    static const int64_t rows[] = {1, 2, 63, 64, 65, 129, 1000};
    static const int widths[] = {1, 3, 15, 16, 17, 32, 33, 63, 64, 65, 100};
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        for (size_t j = 0; j < sizeof widths / sizeof *widths; j++)
            bn_case(isa, rows[i], widths[j], widths[j] + below(3) * 5, 0);
    for (int t = 0; t < 20; t++) {
        int n = 1 + below(90);
        bn_case(isa, 1 + below(300), n, n + below(4), t % 4 == 0 ? 1000.0f : 0.0f);
    }
    /* a realistic layer: (8, 14, 14, 48) */
    bn_case(isa, 8 * 14 * 14, 48, 48, 0.5f);
}

/* Hand-worked: channel values (1, 2, 3, 6): mean 3, biased variance 3.5. */
static void test_bn_values(void)
{
    const float x[8] = {1, 10, 2, 10, 3, 10, 6, 10};
    double mean[2], var[2];
    cnn_bn_stats(CNN_ISA_AUTO, x, 4, 2, 2, mean, var);
    CHECK(mean[0] == 3 && var[0] == 3.5 && mean[1] == 10 && var[1] == 0);
    cnn_bn_stats_naive(x, 4, 2, 2, mean, var);
    CHECK(mean[0] == 3 && var[0] == 3.5 && mean[1] == 10 && var[1] == 0);
    cnn_bn_stats(CNN_ISA_AUTO, x, 0, 2, 2, mean, var);
    CHECK(mean[0] == 0 && var[0] == 0);
}

/* ---- Depthwise convolution -------------------------------------------------------- */

typedef struct {
    cnn_conv_geom g;
    int mult, batch;
} dw_shape;

static dw_shape random_dw_shape(void)
{
    dw_shape s = {.batch = 1 + below(3), .mult = below(4) == 0 ? 2 + below(2) : 1};
    cnn_conv_geom *g = &s.g;
    static const int channels[] = {1, 3, 8, 15, 16, 17, 31, 32, 33, 40};
    g->c = channels[below(10)];
    g->h = 1 + below(11);
    g->w = 1 + below(11);
    g->kh = 1 + below(5);
    g->kw = 1 + below(5);
    g->sh = g->sw = g->dh = g->dw = 1;
    if (below(2)) {
        g->sh = 1 + below(3);
        g->sw = 1 + below(3);
    } else {
        g->dh = 1 + below(3);
        g->dw = 1 + below(3);
    }
    int same = below(2);
    g->oh = cnn_conv_out_size(g->h, g->kh, g->sh, g->dh, same, &g->pad_top);
    g->ow = cnn_conv_out_size(g->w, g->kw, g->sw, g->dw, same, &g->pad_left);
    return s;
}

static void dw_case(cnn_isa isa, const dw_shape *s)
{
    const cnn_conv_geom *g = &s->g;
    if (g->oh < 1 || g->ow < 1)
        return;
    char what[200];
    snprintf(what, sizeof what,
             "depthwise %s batch=%d %dx%dx%d k=%dx%d s=%dx%d d=%dx%d pad=%d,%d out=%dx%d mult=%d",
             cnn_isa_name(isa), s->batch, g->h, g->w, g->c, g->kh, g->kw, g->sh, g->sw, g->dh,
             g->dw, g->pad_top, g->pad_left, g->oh, g->ow, s->mult);
    const int CM = g->c * s->mult;
    const int64_t M = (int64_t)s->batch * g->oh * g->ow,
                  xn = (int64_t)s->batch * g->h * g->w * g->c;
    const int64_t kn = (int64_t)g->kh * g->kw * CM;
    float *x = random_floats(xn, -1, 1), *kernel = random_floats(kn, -1, 1);
    float *d0 = random_floats(M * CM, -1, 1), *d = random_floats(M * CM, -1, 1);

    /* forward: whole, and in two pixel ranges */
    cnn_depthwise_forward_naive(g, s->mult, x, kernel, 0, M, d0);
    cnn_depthwise_forward(isa, g, s->mult, x, kernel, 0, M, d);
    same_values(what, d, d0, M * CM);
    int64_t split = M > 1 ? 1 + below((int)M - 1) : 0;
    float *d1 = random_floats(M * CM, -1, 1);
    cnn_depthwise_forward(isa, g, s->mult, x, kernel, 0, split, d1);
    cnn_depthwise_forward(isa, g, s->mult, x, kernel, split, M, d1 + split * CM);
    same_bits(what, d, d1, (size_t)(M * CM) * sizeof(float));

    /* backward accumulates into random dkernel and dx: whole, channels split
     * in two, without dx, and over a pixel sub-range */
    float *dd = random_floats(M * CM, -1, 1);
    float *dk0 = random_floats(kn, -1, 1), *dk = copy_floats(dk0, kn), *dk1 = copy_floats(dk0, kn);
    float *dx0 = random_floats(xn, -1, 1), *dx = copy_floats(dx0, xn), *dx1 = copy_floats(dx0, xn);
    cnn_depthwise_backward_naive(g, s->mult, x, kernel, dd, 0, M, 0, g->c, dk0, dx0);
    cnn_depthwise_backward(isa, g, s->mult, x, kernel, dd, 0, M, 0, g->c, dk, dx);
    same_values(what, dk, dk0, kn);
    same_values(what, dx, dx0, xn);
    int cs = below(g->c + 1);
    cnn_depthwise_backward(isa, g, s->mult, x, kernel, dd, 0, M, 0, cs, dk1, dx1);
    cnn_depthwise_backward(isa, g, s->mult, x, kernel, dd, 0, M, cs, g->c, dk1, dx1);
    same_bits(what, dk, dk1, (size_t)kn * sizeof(float));
    same_bits(what, dx, dx1, (size_t)xn * sizeof(float));

    float *dk2 = random_floats(kn, -1, 1), *dk3 = copy_floats(dk2, kn);
    float *dx2 = random_floats(xn, -1, 1), *dx3 = copy_floats(dx2, xn);
    cnn_depthwise_backward_naive(g, s->mult, x, kernel, dd + split * CM, split, M, 0, g->c, dk2,
                                 NULL);
    cnn_depthwise_backward(isa, g, s->mult, x, kernel, dd + split * CM, split, M, 0, g->c, dk3,
                           NULL);
    same_values(what, dk3, dk2, kn);
    same_bits(what, dx2, dx3, (size_t)xn * sizeof(float)); /* untouched */

    free(x), free(kernel), free(d0), free(d), free(d1), free(dd), free(dk0), free(dk), free(dk1);
    free(dx0), free(dx), free(dx1), free(dk2), free(dk3), free(dx2), free(dx3);
}

static void test_depthwise(cnn_isa isa)
{
    for (int t = 0; t < 300; t++) {
        dw_shape s = random_dw_shape();
        dw_case(isa, &s);
    }
    /* a realistic layer: 3x3 same over (2, 24, 24, 32), and its strided twin */
    dw_shape s = {
        .batch = 2,
        .mult = 1,
        .g = {.h = 24, .w = 24, .c = 32, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .dh = 1, .dw = 1}};
    for (int stride = 1; stride <= 2; stride++) {
        s.g.sh = s.g.sw = stride;
        s.g.oh = cnn_conv_out_size(24, 3, stride, 1, 1, &s.g.pad_top);
        s.g.ow = cnn_conv_out_size(24, 3, stride, 1, 1, &s.g.pad_left);
        dw_case(isa, &s);
    }
    /* MobileNetV1's: 3x3, stride 1 and 2, same and valid, 8 to 256 channels
     * (8 and 24 leave the 16-wide clones an 8-channel remainder) */
    static const int mobilenet_channels[] = {8, 16, 24, 64, 256};
    for (int ci = 0; ci < 5; ci++)
        for (int stride = 1; stride <= 2; stride++)
            for (int same = 0; same <= 1; same++) {
                int hw = mobilenet_channels[ci] > 64 ? 6 : 11;
                dw_shape m = {.batch = 1, .mult = 1,
                              .g = {.h = hw, .w = hw, .c = mobilenet_channels[ci], .kh = 3,
                                    .kw = 3, .sh = stride, .sw = stride, .dh = 1, .dw = 1}};
                m.g.oh = cnn_conv_out_size(hw, 3, stride, 1, same, &m.g.pad_top);
                m.g.ow = cnn_conv_out_size(hw, 3, stride, 1, same, &m.g.pad_left);
                dw_case(isa, &m);
            }
}

/* Hand-worked: a 3x3 single-channel image 1..9, a 2x2 kernel of ones,
 * padding 'same' with stride 2: TensorFlow pads only at the bottom/right
 * (total padding 1), so the outputs are the sums of windows starting at
 * (0,0), (0,2), (2,0), (2,2): 1+2+4+5, 3+6, 7+8, 9. */
static void test_depthwise_values(void)
{
    cnn_conv_geom g = {
        .h = 3, .w = 3, .c = 1, .kh = 2, .kw = 2, .sh = 2, .sw = 2, .dh = 1, .dw = 1};
    g.oh = cnn_conv_out_size(3, 2, 2, 1, 1, &g.pad_top);
    g.ow = cnn_conv_out_size(3, 2, 2, 1, 1, &g.pad_left);
    CHECK(g.oh == 2 && g.ow == 2 && g.pad_top == 0 && g.pad_left == 0);
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, k[4] = {1, 1, 1, 1};
    float d[4], d0[4];
    cnn_depthwise_forward(CNN_ISA_AUTO, &g, 1, x, k, 0, 4, d);
    cnn_depthwise_forward_naive(&g, 1, x, k, 0, 4, d0);
    CHECK(d[0] == 12 && d[1] == 9 && d[2] == 15 && d[3] == 9);
    CHECK(memcmp(d, d0, sizeof d) == 0);
    /* dilation 2, 'valid': one output, the four corners 1+3+7+9 */
    cnn_conv_geom v = {
        .h = 3, .w = 3, .c = 1, .kh = 2, .kw = 2, .sh = 1, .sw = 1, .dh = 2, .dw = 2};
    v.oh = cnn_conv_out_size(3, 2, 1, 2, 0, &v.pad_top);
    v.ow = cnn_conv_out_size(3, 2, 1, 2, 0, &v.pad_left);
    CHECK(v.oh == 1 && v.ow == 1);
    cnn_depthwise_forward(CNN_ISA_AUTO, &v, 1, x, k, 0, 1, d);
    CHECK(d[0] == 20);
}

/* ---- Global pooling ------------------------------------------------------------------- */

static void pool_case(cnn_isa isa, int64_t batch, int64_t hw, int c, bool ties)
{
    char what[160];
    snprintf(what, sizeof what, "global pool %s batch=%lld hw=%lld c=%d ties=%d", cnn_isa_name(isa),
             (long long)batch, (long long)hw, c, ties);
    const int64_t xn = batch * hw * c, yn = batch * c;
    float *x = random_floats(xn, -1, 1), *dy = random_floats(yn, -1, 1);
    if (ties) /* few distinct values, so maxima repeat: the first must win */
        for (int64_t i = 0; i < xn; i++)
            x[i] = (float)below(3);
    float *y0 = random_floats(yn, -1, 1), *y = random_floats(yn, -1, 1);
    float *dx0 = random_floats(xn, -1, 1), *dx = random_floats(xn, -1, 1);

    cnn_global_avgpool_forward_naive(x, y0, batch, hw, c);
    cnn_global_avgpool_forward(isa, x, y, batch, hw, c);
    same_values(what, y, y0, yn);
    cnn_global_avgpool_backward_naive(dy, dx0, batch, hw, c);
    cnn_global_avgpool_backward(isa, dy, dx, batch, hw, c);
    same_values(what, dx, dx0, xn);
    cnn_global_maxpool_forward_naive(x, y0, batch, hw, c);
    cnn_global_maxpool_forward(isa, x, y, batch, hw, c);
    same_values(what, y, y0, yn);
    cnn_global_maxpool_backward_naive(x, dy, dx0, batch, hw, c);
    cnn_global_maxpool_backward(isa, x, dy, dx, batch, hw, c);
    same_values(what, dx, dx0, xn);
    free(x), free(dy), free(y0), free(y), free(dx0), free(dx);
}

static void test_global_pool(cnn_isa isa)
{
    static const int64_t hws[] = {1, 2, 7, 49, 100};
    static const int channels[] = {1, 3, 4, 7, 8, 9, 15, 16, 17, 33, 255, 256, 257, 300};
    for (size_t i = 0; i < sizeof hws / sizeof *hws; i++)
        for (size_t j = 0; j < sizeof channels / sizeof *channels; j++)
            pool_case(isa, 1 + below(3), hws[i], channels[j], below(2));
    pool_case(isa, 4, 7 * 7, 256, false); /* a realistic head */
}

/* Hand-worked: two pixels x two channels; a tie in channel 1 goes to pixel 0;
 * a NaN is never the maximum. */
static void test_global_pool_values(void)
{
    const float x[4] = {1, 5, 3, 5}, dy[2] = {10, 20};
    float y[2], dx[4];
    cnn_global_avgpool_forward(CNN_ISA_AUTO, x, y, 1, 2, 2);
    CHECK(y[0] == 2 && y[1] == 5);
    cnn_global_maxpool_forward(CNN_ISA_AUTO, x, y, 1, 2, 2);
    CHECK(y[0] == 3 && y[1] == 5);
    cnn_global_maxpool_backward(CNN_ISA_AUTO, x, dy, dx, 1, 2, 2);
    CHECK(dx[0] == 0 && dx[1] == 20 && dx[2] == 10 && dx[3] == 0);
    float xn[32];
    for (int i = 0; i < 32; i++)
        xn[i] = (float)i;
    xn[16 + 3] = NAN; /* pixel 1, channel 3 */
    float yn[16], dyn[16], dxn[32];
    for (int i = 0; i < 16; i++)
        dyn[i] = 1;
    cnn_global_maxpool_forward(CNN_ISA_AUTO, xn, yn, 1, 2, 16);
    CHECK(yn[3] == 3 && yn[4] == 20);
    cnn_global_maxpool_backward(CNN_ISA_AUTO, xn, dyn, dxn, 1, 2, 16);
    CHECK(dxn[3] == 1 && dxn[16 + 3] == 0 && dxn[4] == 0 && dxn[16 + 4] == 1);
    cnn_global_avgpool_backward(CNN_ISA_AUTO, dy, dx, 1, 2, 2);
    CHECK(dx[0] == 5 && dx[1] == 10 && dx[2] == 5 && dx[3] == 10);
}

/* ---- MaxPooling2D -------------------------------------------------------------------- */

/* Equal bits (so -0 != 0), any NaN matching any NaN: the fast paths must
 * put NaN where the reference does, not its payload. */
static void same_floats(const char *what, const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0 && !(isnan(a[i]) && isnan(b[i]))) {
            fprintf(stderr, "%s: element %lld: %.9g != %.9g\n", what, (long long)i, (double)a[i],
                    (double)b[i]);
            CHECK(0);
            return;
        }
    CHECK(1);
}

/* Values with many ties (so the first maximum must win), both zeros, and
 * now and then NaN and infinities when special. */
static float tie_value(bool special)
{
    static const float plain[] = {-1.5f, -0.5f, -0.0f, 0.0f, 0.5f, 2.0f};
    int k = below(special ? 40 : 6);
    if (k < 6)
        return plain[k];
    if (k == 6)
        return NAN;
    if (k == 7)
        return INFINITY;
    if (k == 8)
        return -INFINITY;
    return uniform(-3, 3);
}

static float *tie_floats(int64_t n, bool special)
{
    float *p = alloc_bytes((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        p[i] = tie_value(special);
    return p;
}

static cnn_conv_geom pool_geom(int h, int w, int c, int kh, int kw, int sh, int sw, bool same)
{
    cnn_conv_geom g = {.h = h, .w = w, .c = c, .kh = kh, .kw = kw, .sh = sh, .sw = sw, .dh = 1,
                       .dw = 1};
    g.oh = cnn_conv_out_size(h, kh, sh, 1, same, &g.pad_top);
    g.ow = cnn_conv_out_size(w, kw, sw, 1, same, &g.pad_left);
    return g;
}

/* Every activation a layer before MaxPooling2D may fold into its backward
 * (those whose derivative follows from the output). */
static const cnn_activation folded[] = {
    CNN_ACTIVATION_LINEAR,   CNN_ACTIVATION_RELU,         CNN_ACTIVATION_SIGMOID,
    CNN_ACTIVATION_TANH,     CNN_ACTIVATION_SELU,         CNN_ACTIVATION_ELU,
    CNN_ACTIVATION_SOFTPLUS, CNN_ACTIVATION_SOFTSIGN,     CNN_ACTIVATION_HARD_SIGMOID,
    CNN_ACTIVATION_EXPONENTIAL, CNN_ACTIVATION_RELU6,     CNN_ACTIVATION_LEAKY_RELU};

/* isa against the generic build on one geometry: forward, backward (into
 * a dx holding values, -0 among them) and, where the windows tile the
 * input, backward over x for every folded activation; each whole and
 * split in two row ranges as threads split it. */
static void maxpool_case(cnn_isa isa, int batch, const cnn_conv_geom *g, bool special)
{
    char what[200];
    snprintf(what, sizeof what,
             "maxpool %s batch=%d %dx%dx%d pool %dx%d strides %dx%d pad %d,%d special=%d",
             cnn_isa_name(isa), batch, g->h, g->w, g->c, g->kh, g->kw, g->sh, g->sw, g->pad_top,
             g->pad_left, special);
    const int64_t rows = (int64_t)batch * g->oh, xn = (int64_t)batch * g->h * g->w * g->c,
                  yn = rows * g->ow * g->c, split = rows / 2;
    float *x = tie_floats(xn, special), *dy = tie_floats(yn, special);
    float *y0 = random_floats(yn, -1, 1), *y = random_floats(yn, -1, 1);
    cnn_maxpool_forward(CNN_ISA_GENERIC, g, x, y0, 0, rows);
    cnn_maxpool_forward(isa, g, x, y, 0, split);
    cnn_maxpool_forward(isa, g, x, y, split, rows);
    same_floats(what, y, y0, yn);

    float *dx0 = tie_floats(xn, false), *dx = copy_floats(dx0, xn);
    cnn_maxpool_backward(CNN_ISA_GENERIC, g, x, y0, dy, dx0, 0, rows);
    cnn_maxpool_backward(isa, g, x, y0, dy, dx, 0, split);
    cnn_maxpool_backward(isa, g, x, y0, dy, dx, split, rows);
    same_floats(what, dx, dx0, xn);

    if (g->sh == g->kh && g->sw == g->kw)
        for (size_t a = 0; a < sizeof folded / sizeof *folded; a++) {
            char act[240];
            snprintf(act, sizeof act, "%s over x, %s", what, cnn_activation_name(folded[a]));
            memcpy(dx0, x, (size_t)xn * sizeof(float));
            memcpy(dx, x, (size_t)xn * sizeof(float));
            cnn_maxpool_backward_over_x(CNN_ISA_GENERIC, g, dx0, y0, dy, folded[a], 0, rows);
            cnn_maxpool_backward_over_x(isa, g, dx, y0, dy, folded[a], 0, split);
            cnn_maxpool_backward_over_x(isa, g, dx, y0, dy, folded[a], split, rows);
            same_floats(act, dx, dx0, xn);
        }
    free(x), free(dy), free(y0), free(y), free(dx0), free(dx);
}

static void test_maxpool(cnn_isa isa)
{
    /* 1, 3: all tail; 4, 7: the 4-wide run; 17, 29: 16 + (8) + (4) + tail */
    static const int channels[] = {1, 3, 4, 7, 17, 29, 32, 64};
    static const struct {
        int kh, kw, sh, sw;
    } pools[] = {
        {2, 2, 2, 2}, {3, 3, 3, 3}, {1, 2, 1, 2}, /* tiling: backward over x too */
        {3, 3, 2, 2}, {3, 2, 1, 1},               /* overlapping windows */
        {2, 2, 3, 3}, {2, 1, 3, 2},               /* gaps between windows */
    };
    for (size_t i = 0; i < sizeof channels / sizeof *channels; i++)
        for (size_t p = 0; p < sizeof pools / sizeof *pools; p++)
            for (int same = 0; same < 2; same++) {
                int h = pools[p].kh + below(7), w = pools[p].kw + below(7);
                cnn_conv_geom g = pool_geom(h, w, channels[i], pools[p].kh, pools[p].kw,
                                            pools[p].sh, pools[p].sw, same);
                maxpool_case(isa, 1 + below(3), &g, below(2));
            }
    /* the tutorial convnet's two layers, with NaN and infinities */
    cnn_conv_geom g1 = pool_geom(28, 28, 32, 2, 2, 2, 2, false);
    cnn_conv_geom g2 = pool_geom(14, 14, 64, 2, 2, 2, 2, false);
    maxpool_case(isa, 3, &g1, true);
    maxpool_case(isa, 3, &g2, true);
}

/* Hand-worked: a tie goes to the first tap, NaN is never the maximum, and
 * backward adds to the cell it hits only: a vector lane (channels 0-3)
 * keeps -0 where it does not hit, as the scalar tail (channel 4) does. */
static void test_maxpool_values(void)
{
    /* 1x2 input, 5 channels, one 1x2 window */
    cnn_conv_geom g = pool_geom(1, 2, 5, 1, 2, 1, 2, false);
    const float x[10] = {1, 4, NAN, -1, 7, 3, 4, 2, -1, 7};
    const float dy[5] = {10, 20, 30, 40, 50};
    static const cnn_isa isas[] = {CNN_ISA_GENERIC, CNN_ISA_AVX2, CNN_ISA_AVX512};
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        if (!cnn_isa_supported(isas[i]))
            continue;
        float y[5], dx[10];
        cnn_maxpool_forward(isas[i], &g, x, y, 0, 1);
        CHECK(y[0] == 3 && y[1] == 4 && y[2] == 2 && y[3] == -1 && y[4] == 7);
        for (int k = 0; k < 10; k++)
            dx[k] = -0.0f;
        cnn_maxpool_backward(isas[i], &g, x, y, dy, dx, 0, 1);
        CHECK(dx[5] == 10 && dx[1] == 20 && dx[7] == 30 && dx[3] == 40 && dx[4] == 50);
        CHECK(signbit(dx[0]) && signbit(dx[6]) && signbit(dx[2]) && signbit(dx[8])
              && signbit(dx[9]));
        float over[10];
        memcpy(over, x, sizeof over);
        cnn_maxpool_backward_over_x(isas[i], &g, over, y, dy, CNN_ACTIVATION_RELU, 0, 1);
        /* relu: f'(y) = 0 at y = -1 (channel 3) */
        CHECK(over[5] == 10 && over[1] == 20 && over[7] == 30 && over[4] == 50);
        CHECK(over[0] == 0 && over[6] == 0 && over[2] == 0 && over[3] == 0 && over[8] == 0
              && over[9] == 0);
    }
}

/* ---- Through the layers: 1 and 2 threads --------------------------------------------- */

/* DepthwiseConv2D -> BatchNormalization -> SeparableConv2D (stride 2,
 * depth multiplier 2) -> global pooling -> Dense, big enough for the
 * layers to split their work (BN by channels, depthwise by pixels then
 * channels). */
static cnn_model *layers_model(int threads, bool max_pool, int channels)
{
    cnn_model *m = NULL;
    if (cnn_model_create(&m, cnn_shape_hwc(16, 16, channels)))
        return NULL;
    cnn_model_set_seed(m, 7);
    cnn_model_set_threads(m, threads);
    cnn_status st = cnn_model_add_depthwise_conv2d(
        m, cnn_depthwise_conv2d(.kernel_size = {3, 3}, .padding = CNN_PADDING_SAME));
    if (!st)
        st = cnn_model_add_batch_normalization(m, cnn_batch_normalization());
    if (!st)
        st = cnn_model_add_separable_conv2d(
            m, cnn_separable_conv2d(.filters = 20, .kernel_size = {3, 3}, .strides = {2, 2},
                                    .depth_multiplier = 2, .padding = CNN_PADDING_SAME,
                                    .activation = CNN_ACTIVATION_RELU));
    if (!st)
        st = max_pool ? cnn_model_add_global_max_pooling2d(m, cnn_global_pool2d())
                      : cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d());
    if (!st)
        st = cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX));
    if (!st)
        st = cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam()));
    CHECK_OK(st);
    if (st) {
        cnn_model_free(m);
        return NULL;
    }
    return m;
}

/* channels: 24, or 20 (the depthwise backward's blocks of 8 channels per
 * thread then end in a partial one) */
static void test_layers_threads(bool max_pool, int channels)
{
    cnn_tensor *x = NULL, *y = NULL;
    CHECK_OK(cnn_tensor_create(&x, 4, (int64_t[]){48, 16, 16, channels}));
    CHECK_OK(cnn_tensor_create(&y, 1, (int64_t[]){48}));
    cnn_model *one = layers_model(1, max_pool, channels),
              *two = layers_model(2, max_pool, channels);
    if (!x || !y || !one || !two)
        goto done;
    for (int64_t i = 0; i < 48 * 16 * 16 * channels; i++)
        x->data[i] = uniform(-1, 1) + (float)(i % channels) * 0.1f;
    for (int i = 0; i < 48; i++)
        y->data[i] = (float)below(3);
    CHECK_OK(cnn_model_fit(one, x, y, cnn_fit(.epochs = 2, .batch_size = 16), NULL));
    CHECK_OK(cnn_model_fit(two, x, y, cnn_fit(.epochs = 2, .batch_size = 16), NULL));
    /* every weight, moving statistics included, bit for bit */
    for (int l = 0; l < cnn_model_layer_count(one); l++)
        for (int w = 0; w < CNN_MAX_LAYER_WEIGHTS; w++) {
            int64_t n1 = 0, n2 = 0;
            const float *a = cnn_model_layer_weights(one, l, w, &n1);
            const float *b = cnn_model_layer_weights(two, l, w, &n2);
            if (!a || !b) {
                CHECK(!a && !b);
                continue;
            }
            char what[80];
            snprintf(what, sizeof what, "layer %d weight %d, 1 vs 2 threads (max=%d, %d channels)",
                     l, w, max_pool, channels);
            CHECK(n1 == n2);
            same_bits(what, a, b, (size_t)n1 * sizeof(float));
        }
done:
    cnn_model_free(one);
    cnn_model_free(two);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

/* tanh runs 16 or 8 lanes at a time where the CPU can, 4 at a time
 * otherwise and in the tail: every element must get the same bits
 * wherever it falls (a lone element runs through the 4-wide tail), and
 * be within a few ulp of libm's. */
static void test_tanh_widths(void)
{
    enum { N = 203 };
    float x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = i % 7 == 0 ? uniform(-0.7f, 0.7f) : uniform(-12.0f, 12.0f);
    x[0] = 0.625f, x[1] = -0.625f, x[2] = -0.0f, x[3] = 9.5f, x[4] = 1e-7f;
    int bad = 0;
    for (int off = 0; off < 3; off++) {
        memcpy(y, x, sizeof y);
        cnn_activation_forward(CNN_ACTIVATION_TANH, y + off, 1, N - off);
        for (int i = off; i < N; i++) {
            float one = x[i];
            cnn_activation_forward(CNN_ACTIVATION_TANH, &one, 1, 1);
            if (memcmp(&one, &y[i], sizeof one) != 0 && bad++ < 3)
                fprintf(stderr, "tanh(%.9g): %.9g in a run, %.9g alone\n", (double)x[i],
                        (double)y[i], (double)one);
            if (fabs((double)y[i] - tanh((double)x[i])) > 1e-6 + 1e-6 * fabs(tanh((double)x[i]))
                && bad++ < 3)
                fprintf(stderr, "tanh(%.9g) = %.9g, libm %.9g\n", (double)x[i], (double)y[i],
                        tanh((double)x[i]));
        }
    }
    CHECK(bad == 0);
}

int main(void)
{
    cnn_rng_seed(&rng, 20261204);
    CHECK(cnn_isa_supported(CNN_ISA_GENERIC) && cnn_isa_resolve(CNN_ISA_AUTO) != CNN_ISA_AUTO);
    printf("test_kernels: fastest instruction set %s\n",
           cnn_isa_name(cnn_isa_resolve(CNN_ISA_AUTO)));
    static const cnn_isa isas[] = {CNN_ISA_GENERIC, CNN_ISA_AVX2, CNN_ISA_AVX512};
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        if (!cnn_isa_supported(isas[i])) {
            printf("test_kernels: %s not supported here, skipped\n", cnn_isa_name(isas[i]));
            CHECK(cnn_isa_resolve(isas[i]) == CNN_ISA_GENERIC);
            continue;
        }
        CHECK(cnn_isa_resolve(isas[i]) == isas[i]);
        test_bn(isas[i]);
        test_depthwise(isas[i]);
        test_global_pool(isas[i]);
        test_maxpool(isas[i]);
    }
    test_tanh_widths();
    test_bn_values();
    test_depthwise_values();
    test_global_pool_values();
    test_maxpool_values();
    test_layers_threads(false, 24);
    test_layers_threads(true, 24);
    test_layers_threads(false, 20);
    return test_finish("test_kernels");
}
