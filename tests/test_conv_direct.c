/* The direct convolution kernels (kernels/conv_direct.h) against a naive
 * loop over the unpadded input and against im2col + the reference GEMM,
 * for every instruction set this CPU runs, over random small shapes: 1, 2,
 * 3 and up to 8 channels, odd sizes, strides, dilation, same and valid
 * padding, filter counts around the vector widths (tails), with and
 * without bias. The fast kernels use fused multiply-adds, so they agree
 * with the references within a tolerance; split in two (by output rows for
 * forward, by taps for backward-weights, as threads would split them) they
 * must give the same bits as in one call. The layer must also give the
 * same bits on 1 and 2 threads, and agree with the reference path that the
 * reference GEMM selects. */
#include <stdint.h>
#include <stdlib.h>

#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/conv.h"
#include "kernels/conv_direct.h"
#include "kernels/gemm.h"
#include "model/model.h"
#include "test.h"

static cnn_rng rng;

static int below(int n) { return (int)(cnn_rng_next(&rng) % (uint64_t)n); }

static float *random_floats(int64_t n) { return test_random_floats(&rng, n, -1, 1); }

static float *copy_of(const float *src, int64_t n)
{
    float *p = random_floats(n);
    memcpy(p, src, (size_t)n * sizeof(float));
    return p;
}

typedef struct {
    int batch, filters;
    bool bias;
    cnn_conv_geom g;
} shape;

static shape random_shape(void)
{
    shape s = {.batch = 1 + below(3), .filters = 1 + below(40), .bias = below(2)};
    static const int channels[] = {1, 1, 3, 3, 2, 5, 8};
    cnn_conv_geom *g = &s.g;
    g->c = channels[below(7)];
    g->h = 1 + below(13);
    g->w = 1 + below(13);
    g->kh = 1 + below(5);
    g->kw = 1 + below(5);
    g->sh = g->sw = g->dh = g->dw = 1;
    if (below(3) == 0) {
        g->sh = 1 + below(3);
        g->sw = 1 + below(3);
    } else if (below(3) == 0) {
        g->dh = 1 + below(3);
        g->dw = 1 + below(3);
    }
    int same = below(2);
    g->oh = cnn_conv_out_size(g->h, g->kh, g->sh, g->dh, same, &g->pad_top);
    g->ow = cnn_conv_out_size(g->w, g->kw, g->sw, g->dw, same, &g->pad_left);
    if (g->oh < 1 || g->ow < 1) /* the kernel does not fit: try 'same' */
        return random_shape();
    return s;
}

/* y[m, f] = sum over in-bounds taps x * kernel (+ bias), in double. */
static void naive_forward(const shape *s, const float *x, const float *k, const float *b,
                          float *y)
{
    const cnn_conv_geom *g = &s->g;
    const int F = s->filters;
    for (int n = 0; n < s->batch; n++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++)
                for (int f = 0; f < F; f++) {
                    double acc = b ? b[f] : 0;
                    for (int ky = 0; ky < g->kh; ky++)
                        for (int kx = 0; kx < g->kw; kx++)
                            for (int c = 0; c < g->c; c++) {
                                int iy = oy * g->sh - g->pad_top + ky * g->dh;
                                int ix = ox * g->sw - g->pad_left + kx * g->dw;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                    continue;
                                acc += (double)x[((n * g->h + iy) * g->w + ix) * g->c + c]
                                     * k[((ky * g->kw + kx) * g->c + c) * F + f];
                            }
                    y[((n * g->oh + oy) * g->ow + ox) * F + f] = (float)acc;
                }
}

/* dk += sum x * dy and db += sum dy over every pixel, in double. */
static void naive_weights(const shape *s, const float *x, const float *dy, float *dk, float *db)
{
    const cnn_conv_geom *g = &s->g;
    const int F = s->filters, K = g->kh * g->kw * g->c;
    for (int t = 0; t < K; t++)
        for (int f = 0; f < F; f++) {
            int ky = t / (g->kw * g->c), kx = t / g->c % g->kw, c = t % g->c;
            double acc = dk[t * F + f];
            for (int n = 0; n < s->batch; n++)
                for (int oy = 0; oy < g->oh; oy++)
                    for (int ox = 0; ox < g->ow; ox++) {
                        int iy = oy * g->sh - g->pad_top + ky * g->dh;
                        int ix = ox * g->sw - g->pad_left + kx * g->dw;
                        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                            continue;
                        acc += (double)x[((n * g->h + iy) * g->w + ix) * g->c + c]
                             * dy[((n * g->oh + oy) * g->ow + ox) * F + f];
                    }
            dk[t * F + f] = (float)acc;
        }
    for (int f = 0; db && f < F; f++) {
        double acc = db[f];
        for (int64_t m = 0; m < (int64_t)s->batch * g->oh * g->ow; m++)
            acc += dy[m * F + f];
        db[f] = (float)acc;
    }
}

static void check_case(cnn_isa isa, const shape *s)
{
    const cnn_conv_geom *g = &s->g;
    const int F = s->filters, K = g->kh * g->kw * g->c;
    const int64_t M = (int64_t)s->batch * g->oh * g->ow, R = (int64_t)s->batch * g->oh;
    const int64_t nx = (int64_t)s->batch * g->h * g->w * g->c;
    char what[200];
    snprintf(what, sizeof what,
             "%s batch=%d %dx%dx%d k=%dx%d s=%dx%d d=%dx%d pad=%d,%d out=%dx%d F=%d bias=%d",
             cnn_isa_name(isa), s->batch, g->h, g->w, g->c, g->kh, g->kw, g->sh, g->sw, g->dh,
             g->dw, g->pad_top, g->pad_left, g->oh, g->ow, F, s->bias);
    float *x = random_floats(nx), *k = random_floats((int64_t)K * F), *b = random_floats(F);
    float *dy = random_floats(M * F);
    const float *bias = s->bias ? b : NULL;
    float *xp = random_floats(s->batch * cnn_conv_direct_sample_floats(g));
    cnn_conv_direct_pad(g, x, 0, s->batch, xp);

    /* forward: naive loop, im2col + reference GEMM, naive twin, fast */
    float *want = random_floats(M * F), *col = random_floats(M * K), *gemm = random_floats(M * F);
    naive_forward(s, x, k, bias, want);
    cnn_im2col_rows(g, x, 0, M, col);
    cnn_gemm_naive(false, false, (int)M, F, K, 1.0f, col, K, k, F, 0.0f, gemm, F);
    if (bias)
        cnn_add_bias_rows(gemm, bias, M, F);
    float *twin = random_floats(M * F), *fast = random_floats(M * F), *split = random_floats(M * F);
    cnn_conv_direct_forward_naive(g, F, xp, k, bias, 0, R, twin);
    cnn_conv_direct_forward(isa, g, F, xp, k, bias, 0, R, fast);
    int64_t r = below((int)R + 1);
    cnn_conv_direct_forward(isa, g, F, xp, k, bias, 0, r, split);
    cnn_conv_direct_forward(isa, g, F, xp, k, bias, r, R, split + r * g->ow * F);
    int ok = test_close(what, gemm, want, (long)(M * F), 1e-5, 1e-5);
    ok &= test_close(what, twin, want, (long)(M * F), 1e-5, 1e-5);
    ok &= test_close(what, fast, want, (long)(M * F), 1e-5, 1e-5);
    CHECK(ok);
    bool same = memcmp(fast, split, (size_t)(M * F) * sizeof(float)) == 0;
    if (!same)
        fprintf(stderr, "%s: forward split at row %lld differs\n", what, (long long)r);
    CHECK(same);

    /* backward-weights, accumulating onto existing gradients */
    float *dk0 = random_floats((int64_t)K * F), *db0 = random_floats(F);
    float *dk_want = copy_of(dk0, (int64_t)K * F), *db_want = copy_of(db0, F);
    naive_weights(s, x, dy, dk_want, db_want);
    float *dk_gemm = copy_of(dk0, (int64_t)K * F);
    cnn_gemm_naive(true, false, K, F, (int)M, 1.0f, col, K, dy, F, 1.0f, dk_gemm, F);
    float *dk_twin = copy_of(dk0, (int64_t)K * F), *db_twin = copy_of(db0, F);
    cnn_conv_direct_weights_naive(g, F, xp, dy, s->batch, 0, K, dk_twin, db_twin);
    float *dk_fast = copy_of(dk0, (int64_t)K * F), *db_fast = copy_of(db0, F);
    cnn_conv_direct_weights(isa, g, F, xp, dy, s->batch, 0, K, dk_fast, s->bias ? db_fast : NULL);
    float *dk_split = copy_of(dk0, (int64_t)K * F), *db_split = copy_of(db0, F);
    int t = below(K + 1);
    cnn_conv_direct_weights(isa, g, F, xp, dy, s->batch, 0, t, dk_split,
                            s->bias ? db_split : NULL);
    cnn_conv_direct_weights(isa, g, F, xp, dy, s->batch, t, K, dk_split, NULL);
    ok = test_close(what, dk_gemm, dk_want, (long)K * F, 1e-4, 1e-5);
    ok &= test_close(what, dk_twin, dk_want, (long)K * F, 1e-4, 1e-5);
    ok &= test_close(what, db_twin, db_want, F, 1e-4, 1e-5);
    ok &= test_close(what, dk_fast, dk_want, (long)K * F, 1e-4, 1e-5);
    ok &= test_close(what, db_fast, s->bias ? db_want : db0, F, 1e-4, 1e-5);
    CHECK(ok);
    same = memcmp(dk_fast, dk_split, (size_t)K * F * sizeof(float)) == 0
        && memcmp(db_fast, db_split, (size_t)F * sizeof(float)) == 0;
    if (!same)
        fprintf(stderr, "%s: weights split at tap %d differ\n", what, t);
    CHECK(same);

    free(x), free(k), free(b), free(dy), free(xp), free(want), free(col), free(gemm);
    free(twin), free(fast), free(split), free(dk0), free(db0), free(dk_want), free(db_want);
    free(dk_gemm), free(dk_twin), free(db_twin), free(dk_fast), free(db_fast);
    free(dk_split), free(db_split);
}

/* Hand-worked: a 2x2 image 1..4, one 3x3 kernel of ones with 'same'
 * padding: each output is the sum of the pixels in its window, here all
 * four; with bias 0.5. Its weight gradient for dy = 1 everywhere: each tap
 * sums the pixels it sees over the four outputs. */
static void test_values(cnn_isa isa)
{
    cnn_conv_geom g = {.h = 2, .w = 2, .c = 1, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .dh = 1,
                       .dw = 1};
    g.oh = cnn_conv_out_size(2, 3, 1, 1, 1, &g.pad_top);
    g.ow = cnn_conv_out_size(2, 3, 1, 1, 1, &g.pad_left);
    const float x[4] = {1, 2, 3, 4}, k[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, b[1] = {0.5f};
    const float dy[4] = {1, 1, 1, 1};
    float xp[16], y[4], dk[9] = {0}, db[1] = {0};
    CHECK(cnn_conv_direct_sample_floats(&g) == 16);
    cnn_conv_direct_pad(&g, x, 0, 1, xp);
    cnn_conv_direct_forward(isa, &g, 1, xp, k, b, 0, 2, y);
    for (int i = 0; i < 4; i++)
        CHECK(y[i] == 10.5f);
    cnn_conv_direct_weights(isa, &g, 1, xp, dy, 1, 0, 9, dk, db);
    /* tap (0, 0) sees pixel 1 only (from output (1, 1)); the centre all four */
    const float want[9] = {1, 3, 2, 4, 10, 6, 3, 7, 4};
    for (int i = 0; i < 9; i++)
        CHECK(dk[i] == want[i]);
    CHECK(db[0] == 4);
}

/* The layer: the direct path on 1 and 2 threads gives the same bits, and
 * agrees with the reference im2col path chosen by the reference GEMM. */
static cnn_model *conv_model(int threads, bool naive, int c, int filters)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(13, 11, c)));
    CHECK_OK(cnn_model_set_threads(m, threads));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = filters, .kernel_size = {5, 3},
                                                .padding = CNN_PADDING_SAME,
                                                .activation = CNN_ACTIVATION_TANH)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                                .strides = {2, 2})));
    return test_classifier_head(m, naive);
}

static void test_layer(int c, int filters)
{
    const int batch = 9;
    cnn_tensor *x = NULL, *y = NULL;
    test_random_batch(&rng, (int64_t[]){batch, 13, 11, c}, 0, 1, 3, &x, &y);
    cnn_model *m[3] = {conv_model(1, false, c, filters), conv_model(2, false, c, filters),
                       conv_model(1, true, c, filters)};
    char what[64];
    snprintf(what, sizeof what, "layer c=%d filters=%d", c, filters);
    test_three_way_step(m, x, y, 2, what); /* kernel and bias of each convolution */
    const int64_t out = cnn_shape_size(m[0]->layers[0]->out) * batch;
    CHECK(memcmp(m[0]->arena.outputs[0], m[1]->arena.outputs[0], (size_t)out * sizeof(float))
          == 0);
    CHECK(test_close("layer output", m[0]->arena.outputs[0], m[2]->arena.outputs[0], (long)out,
                     1e-5, 1e-5));
    for (int i = 0; i < 3; i++)
        cnn_model_free(m[i]);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

int main(void)
{
    cnn_rng_seed(&rng, 20261204);
    static const cnn_isa isas[] = {CNN_ISA_GENERIC, CNN_ISA_AVX2, CNN_ISA_AVX512};
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        if (!cnn_isa_supported(isas[i])) {
            printf("test_conv_direct: %s not supported here, skipped\n", cnn_isa_name(isas[i]));
            continue;
        }
        for (int t = 0; t < 300; t++) {
            shape s = random_shape();
            check_case(isas[i], &s);
        }
        /* the tutorial's conv1 and LeNet-5's C1, at batch 2 */
        shape s = {.batch = 2, .filters = 32, .bias = true,
                   .g = {.h = 28, .w = 28, .c = 1, .kh = 5, .kw = 5, .sh = 1, .sw = 1, .dh = 1,
                         .dw = 1, .pad_top = 2, .pad_left = 2, .oh = 28, .ow = 28}};
        check_case(isas[i], &s);
        s.filters = 6;
        check_case(isas[i], &s);
        test_values(isas[i]);
    }
    test_layer(1, 6);
    test_layer(3, 32);
    test_layer(2, 17);
    return test_finish("test_conv_direct");
}
