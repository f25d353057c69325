/* Winograd's F(2x2, 5x5) (kernels/winograd.c) and Conv2D's inference path
 * through it:
 *  - against a double-precision reference over random shapes (same and
 *    valid padding, odd output sizes whose last tiles are cut, batches,
 *    every filter width the products take: 64, 32 and 16 at a time), with
 *    and without bias and a fused relu; the error, relative to the sum of
 *    |x * kernel| of each output, stays within WINOGRAD_TOLERANCE, and the
 *    largest seen is printed;
 *  - the same bits whichever blocks the tiles are cut into;
 *  - backward-weights (Aᵀ-spread dy against the input's transform, then
 *    Gᵀ dU G) onto an existing gradient, in two filter ranges, against a
 *    double-precision reference, within the same bound;
 *  - the layer: forward (training and inference alike), backward-data (dy
 *    convolved with the rotated kernel) and the kernel's gradient give the
 *    same bits on 1 and 2 threads, and agree within tolerance with the
 *    direct products that a context forced to another micro-kernel keeps;
 *    a workspace limit below the transforms' needs falls back to them. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/winograd.h"
#include "model/model.h"
#include "test.h"

/* The bound on |winograd - exact| / sum |x * kernel|: the transforms'
 * constants (up to 5, and 1/6, 1/24) cost about 4 bits of float32's 24
 * (the largest seen here is printed, about 1e-6). */
#define WINOGRAD_TOLERANCE 1e-5
/* The kernel gradient's bound, relative to the largest tap's sum of
 * |x * dy| for its (channel, filter): its sums run over every tile of the
 * batch, through 36 points that cancel (the largest seen over six seeds:
 * 8.3e-6; the test prints this seed's). */
#define WEIGHTS_TOLERANCE 3e-5

static cnn_rng rng;

static int below(int n) { return (int)(cnn_rng_next(&rng) % (uint64_t)n); }

static float *random_floats(int64_t n) { return test_random_floats(&rng, n, -1, 1); }

typedef struct {
    cnn_conv_geom g;
    int batch, filters;
    bool bias, relu;
} shape;

static shape random_shape(void)
{
    shape s = {.batch = 1 + below(3), .bias = below(2) == 1, .relu = below(2) == 1};
    static const int filters[] = {16, 32, 48, 64, 80, 112, 128};
    s.filters = filters[below(7)];
    cnn_conv_geom *g = &s.g;
    g->c = 16 * (1 + below(3));
    g->kh = g->kw = 5;
    g->sh = g->sw = g->dh = g->dw = 1;
    const int same = below(2);
    do {
        g->h = 1 + below(17);
        g->w = 1 + below(17);
        g->oh = cnn_conv_out_size(g->h, 5, 1, 1, same, &g->pad_top);
        g->ow = cnn_conv_out_size(g->w, 5, 1, 1, same, &g->pad_left);
    } while (g->oh == 0 || g->ow == 0);
    return s;
}

/* y in double, and each output's sum of |x * kernel| (the scale of its
 * rounding errors). */
static void reference(const shape *s, const float *x, const float *k, const float *bias,
                      double *y, double *scale)
{
    const cnn_conv_geom *g = &s->g;
    const int C = g->c, F = s->filters;
    for (int n = 0; n < s->batch; n++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++)
                for (int f = 0; f < F; f++) {
                    double sum = bias ? bias[f] : 0.0, mag = bias ? fabs(bias[f]) : 0.0;
                    for (int ky = 0; ky < 5; ky++)
                        for (int kx = 0; kx < 5; kx++) {
                            int iy = oy - g->pad_top + ky, ix = ox - g->pad_left + kx;
                            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                continue;
                            for (int c = 0; c < C; c++) {
                                double p = (double)x[(((int64_t)n * g->h + iy) * g->w + ix) * C + c]
                                         * k[((ky * 5 + kx) * C + c) * F + f];
                                sum += p;
                                mag += fabs(p);
                            }
                        }
                    int64_t i = (((int64_t)n * g->oh + oy) * g->ow + ox) * F + f;
                    y[i] = s->relu && sum < 0 ? 0.0 : sum;
                    scale[i] = mag > 0 ? mag : 1.0;
                }
}

/* dkernel = dk0 + sum x * dy in double, and the scale of its rounding
 * errors: |dk0| plus the largest sum of |x * dy| over the 25 taps of that
 * (channel, filter). Per tap would not do: a tap that reads only padding
 * in a small image has an exact zero sum, which the transforms reach only
 * to within their rounding of the other taps' terms. */
static void weights_reference(const shape *s, const float *x, const float *dy, const float *dk0,
                              double *dk, double *scale)
{
    const cnn_conv_geom *g = &s->g;
    const int C = g->c, F = s->filters;
    for (int64_t i = 0; i < (int64_t)25 * C * F; i++) {
        dk[i] = dk0[i];
        scale[i] = fabs(dk0[i]);
    }
    for (int n = 0; n < s->batch; n++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++)
                for (int ky = 0; ky < 5; ky++)
                    for (int kx = 0; kx < 5; kx++) {
                        int iy = oy - g->pad_top + ky, ix = ox - g->pad_left + kx;
                        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                            continue;
                        const float *xp = x + (((int64_t)n * g->h + iy) * g->w + ix) * C;
                        const float *dp = dy + (((int64_t)n * g->oh + oy) * g->ow + ox) * F;
                        for (int c = 0; c < C; c++)
                            for (int f = 0; f < F; f++) {
                                int64_t i = ((int64_t)(ky * 5 + kx) * C + c) * F + f;
                                double p = (double)xp[c] * dp[f];
                                dk[i] += p;
                                scale[i] += fabs(p);
                            }
                    }
    for (int64_t cf = 0; cf < (int64_t)C * F; cf++) {
        double most = 0;
        for (int t = 0; t < 25; t++) {
            double m = scale[t * (int64_t)C * F + cf] - fabs(dk0[t * (int64_t)C * F + cf]);
            most = m > most ? m : most;
        }
        for (int t = 0; t < 25; t++)
            scale[t * (int64_t)C * F + cf] = fabs(dk0[t * (int64_t)C * F + cf]) + most;
    }
}

/* Tiles [0, tiles) in blocks of `block` (the last one shorter). */
static void run_blocks(const shape *s, const float *x, const float *u, const float *bias,
                       int64_t block, float *scratch, float *y)
{
    const int64_t tiles = cnn_winograd_tiles(&s->g, s->batch);
    for (int64_t t = 0; t < tiles; t += block)
        cnn_winograd_forward(&s->g, s->filters, x, u, bias,
                             s->relu ? CNN_ACTIVATION_RELU : CNN_ACTIVATION_LINEAR, t,
                             t + block < tiles ? t + block : tiles, scratch, y);
}

static double worst_error, worst_weights;

static void check_case(const shape *s)
{
    const cnn_conv_geom *g = &s->g;
    const int F = s->filters;
    const int64_t nx = (int64_t)s->batch * g->h * g->w * g->c;
    const int64_t ny = (int64_t)s->batch * g->oh * g->ow * F;
    char what[160];
    snprintf(what, sizeof what, "batch=%d %dx%dx%d pad=%d,%d out=%dx%d F=%d bias=%d relu=%d",
             s->batch, g->h, g->w, g->c, g->pad_top, g->pad_left, g->oh, g->ow, F, s->bias,
             s->relu);
    CHECK(cnn_winograd_fits(g, F));
    float *x = random_floats(nx), *k = random_floats((int64_t)25 * g->c * F);
    float *b = random_floats(F), *u = random_floats(cnn_winograd_kernel_floats(g, F));
    const float *bias = s->bias ? b : NULL;
    /* the kernel's transform in two channel ranges, as two workers do */
    int split = below(g->c + 1);
    cnn_winograd_kernel(g, F, k, 0, split, u);
    cnn_winograd_kernel(g, F, k, split, g->c, u);

    const int64_t block = cnn_winograd_block_tiles(g, F, INT64_MAX / 4);
    CHECK(block >= 12 && block % 12 == 0);
    float *scratch = random_floats(cnn_winograd_scratch_floats(g, F, block));
    float *y = random_floats(ny), *y2 = random_floats(ny);
    double *want = malloc((size_t)ny * sizeof(double)), *scale = malloc((size_t)ny * sizeof(double));
    reference(s, x, k, bias, want, scale);
    run_blocks(s, x, u, bias, block, scratch, y);
    double worst = 0;
    for (int64_t i = 0; i < ny; i++) {
        double e = fabs(y[i] - want[i]) / scale[i];
        worst = e > worst ? e : worst;
    }
    if (!(worst <= WINOGRAD_TOLERANCE))
        fprintf(stderr, "%s: error %.3g of the sum of |x * kernel|, above %.0e\n", what, worst,
                WINOGRAD_TOLERANCE);
    CHECK(worst <= WINOGRAD_TOLERANCE);
    worst_error = worst > worst_error ? worst : worst_error;

    /* other blocks (1 to 12 tiles, in 12-tile scratch): the same bits */
    run_blocks(s, x, u, bias, 1 + below(12), scratch, y2);
    CHECK(test_same_bits(what, y, y2, ny));

    /* backward-weights: onto a random gradient, in two filter ranges */
    float *dy = random_floats(ny), *dk0 = random_floats((int64_t)25 * g->c * F);
    float *dk = malloc((size_t)25 * g->c * F * sizeof(float));
    memcpy(dk, dk0, (size_t)25 * g->c * F * sizeof(float));
    float *du = calloc((size_t)cnn_winograd_kernel_floats(g, F), sizeof(float));
    const int64_t tiles = cnn_winograd_tiles(g, s->batch);
    const int fsplit = 16 * below(F / 16 + 1);
    for (int part = 0; part < 2; part++) {
        const int f0 = part ? fsplit : 0, f1 = part ? F : fsplit;
        if (f0 == f1)
            continue;
        for (int64_t t = 0; t < tiles; t += block)
            cnn_winograd_weights(g, F, x, dy, t, t + block < tiles ? t + block : tiles, f0, f1,
                                 scratch, du);
        cnn_winograd_kernel_grad(g, F, du, f0, f1, dk);
    }
    double worst_w = 0;
    const int64_t nk = (int64_t)25 * g->c * F;
    double *dk_want = malloc((size_t)nk * sizeof(double)), *dk_scale = malloc((size_t)nk * sizeof(double));
    weights_reference(s, x, dy, dk0, dk_want, dk_scale);
    for (int64_t i = 0; i < nk; i++) {
        double e = fabs(dk[i] - dk_want[i]) / dk_scale[i];
        worst_w = e > worst_w ? e : worst_w;
    }
    if (!(worst_w <= WEIGHTS_TOLERANCE))
        fprintf(stderr, "%s: kernel gradient error %.3g of the largest tap sum of |x * dy|, above %.0e\n",
                what, worst_w, WEIGHTS_TOLERANCE);
    CHECK(worst_w <= WEIGHTS_TOLERANCE);
    worst_weights = worst_w > worst_weights ? worst_w : worst_weights;
    free(dy), free(dk0), free(dk), free(du), free(dk_want), free(dk_scale);
    free(x), free(k), free(b), free(u), free(scratch), free(y), free(y2), free(want), free(scale);
}

/* The tutorial's conv2 (32 -> 64 on 14x14, same) in a model, batch 8;
 * limit: a workspace limit in bytes (0: the default). */
static cnn_model *tutorial_model(int threads, const char *kernel, size_t limit)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(14, 14, 32)));
    CHECK_OK(cnn_model_set_threads(m, threads));
    if (limit)
        CHECK_OK(cnn_model_set_workspace_limit(m, limit));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 64, .kernel_size = {5, 5},
                                                .padding = CNN_PADDING_SAME,
                                                .activation = CNN_ACTIVATION_RELU)));
    test_classifier_head(m, false);
    if (kernel)
        CHECK(cnn_gemm_ctx_force_kernel(m->gemm, kernel));
    return m;
}

/* One training forward and backward: the model's conv output and dx. */
static void step(cnn_model *m, const cnn_tensor *x, const cnn_tensor *y, float *out, float *dx)
{
    const int64_t n = cnn_shape_size(m->layers[0]->out) * x->dims[0];
    cnn_model_zero_gradients(m);
    CHECK_OK(cnn_model_forward(m, x, true, NULL));
    memcpy(out, m->arena.outputs[0], (size_t)n * sizeof(float));
    CHECK_OK(cnn_model_backward(m, y, NULL, dx));
}

static void test_layer(void)
{
    const int batch = 8;
    cnn_tensor *x = NULL, *y = NULL;
    test_random_batch(&rng, (int64_t[]){batch, 14, 14, 32}, -1, 1, 3, &x, &y);
    const bool avx2 = cnn_isa_supported(CNN_ISA_AVX2);
    /* m[3]: a workspace limit (256 KiB) below the transforms' needs, so
     * every pass falls back to the fused path */
    cnn_model *m[4] = {tutorial_model(1, NULL, 0), tutorial_model(2, NULL, 0),
                       tutorial_model(1, avx2 ? "avx2" : "naive", 0),
                       tutorial_model(1, NULL, 256 * 1024)};
    const int64_t n = (int64_t)batch * 14 * 14 * 64, nx = (int64_t)batch * 14 * 14 * 32;
    float *out[4], *dx[4], *infer = malloc((size_t)n * sizeof(float));
    for (int i = 0; i < 4; i++) {
        out[i] = malloc((size_t)n * sizeof(float));
        dx[i] = malloc((size_t)nx * sizeof(float));
        step(m[i], x, y, out[i], dx[i]);
    }
    CHECK_OK(cnn_model_forward(m[0], x, false, NULL));
    memcpy(infer, m[0]->arena.outputs[0], (size_t)n * sizeof(float));
    /* training and inference take the same path; 2 threads give its bits */
    CHECK(test_same_bits("training and inference forward", out[0], infer, n));
    CHECK(test_same_bits("forward, 2 threads", out[0], out[1], n));
    CHECK(test_same_bits("backward-data, 2 threads", dx[0], dx[1], nx));
    /* the direct products (another micro-kernel forced): other bits, the
     * same values within tolerance, forward and dx */
    CHECK(memcmp(out[0], out[2], (size_t)n * sizeof(float)) != 0);
    CHECK(memcmp(dx[0], dx[2], (size_t)nx * sizeof(float)) != 0);
    CHECK(test_close("forward against the direct products", out[0], out[2], (long)n, 1e-4, 1e-4));
    CHECK(test_close("dx against the direct products", dx[0], dx[2], (long)nx, 1e-5, 1e-4));
    /* the kernel's and bias's gradients: the same on 2 threads, close to
     * the direct products' */
    for (int w = 0; w < 2; w++) {
        int64_t count = 0, count1 = 0, count2 = 0;
        const float *g0 = cnn_model_layer_gradients(m[0], 0, w, &count);
        const float *g1 = cnn_model_layer_gradients(m[1], 0, w, &count1);
        const float *g2 = cnn_model_layer_gradients(m[2], 0, w, &count2);
        CHECK(g0 && g1 && g2 && count == count1 && count == count2);
        if (!(g0 && g1 && g2))
            continue;
        CHECK(test_same_bits("conv gradient, 2 threads", g0, g1, count));
        CHECK(test_close("conv gradient against the direct products", g0, g2, (long)count, 1e-5,
                         1e-4));
    }
    /* the small limit: not the Winograd bits, the direct products' values */
    CHECK(memcmp(out[0], out[3], (size_t)n * sizeof(float)) != 0);
    CHECK(memcmp(dx[0], dx[3], (size_t)nx * sizeof(float)) != 0);
    CHECK(test_close("small workspace: forward", out[3], out[2], (long)n, 1e-5, 1e-4));
    CHECK(test_close("small workspace: dx", dx[3], dx[2], (long)nx, 1e-5, 1e-4));
    for (int i = 0; i < 4; i++)
        free(out[i]), free(dx[i]), cnn_model_free(m[i]);
    free(infer);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

int main(void)
{
    cnn_rng_seed(&rng, 20261205);
    cnn_conv_geom probe = {.h = 14, .w = 14, .c = 32, .kh = 5, .kw = 5, .sh = 1, .sw = 1,
                           .dh = 1, .dw = 1, .pad_top = 2, .pad_left = 2, .oh = 14, .ow = 14};
    if (!cnn_winograd_fits(&probe, 64)) {
        printf("test_winograd: no AVX-512F here: the layers keep the direct products\n");
        CHECK(!cnn_isa_supported(CNN_ISA_AVX512));
        return test_finish("test_winograd");
    }
    for (int t = 0; t < 120; t++) {
        shape s = random_shape();
        check_case(&s);
    }
    printf("test_winograd: largest error %.3g of the sum of |x * kernel| (bound %.0e)\n",
           worst_error, WINOGRAD_TOLERANCE);
    printf("test_winograd: kernel gradient, largest error %.3g of the largest tap sum of |x * dy|"
           " (bound %.0e)\n",
           worst_weights, WEIGHTS_TOLERANCE);
    test_layer();
    return test_finish("test_winograd");
}
