/* Conv2D under the mixed_bfloat16 policy on AVX512_BF16 (conv2d.c's fused,
 * implicit and transposed paths through cnn_gemm_bf16_gather), the layer
 * called directly on random x and dy:
 *  - forward: the bits of im2col + cnn_gemm_bf16_reference + bias;
 *  - backward-data at stride 1 (a convolution of dy with the rotated
 *    kernel): the bits of that convolution's im2col + the reference;
 *    at other strides within tolerance of the reference's im2col path;
 *  - backward-weights: the bits of the reference over the implicit path's
 *    pixel blocks (WEIGHTS_BLOCK_ROWS pixels, cut at every second sample),
 *    each added to the kernel gradient (beta 1);
 *  - all of them the same bits on 1, 2 and 3 threads,
 * over random shapes (odd and even channels, strides, dilation, same and
 * valid padding, rectangular kernels, batches whose samples split panels),
 * large ones whose padded rows are copied in bands, and a workspace limit
 * small enough that the workers fall back to im2col blocks. Skipped on a
 * CPU without AVX512_BF16 (the policy is float32 there). */
#include <stdint.h>
#include <stdlib.h>

#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "model/model.h"
#include "test.h"

enum { WEIGHTS_BLOCK_ROWS = 384 }; /* conv2d.c's */

static cnn_rng rng;

static int below(int n) { return (int)(cnn_rng_next(&rng) % (uint64_t)n); }

static float *floats(int64_t n, bool random)
{
    float *p = calloc((size_t)(n ? n : 1), sizeof(float));
    if (!p) {
        fprintf(stderr, "test_conv_bf16: out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; random && i < n; i++)
        p[i] = 2 * cnn_rng_uniform(&rng) - 1;
    return p;
}

static bool same_bits(const char *what, const char *part, const float *a, const float *b,
                      int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            fprintf(stderr, "test_conv_bf16: %s: %s: element %lld: %.9g vs %.9g\n", what, part,
                    (long long)i, a[i], b[i]);
            return false;
        }
    }
    return true;
}

typedef struct {
    int batch, h, w, c, filters, kh, kw, sh, sw, dh, dw;
    bool same, bias;
    int64_t limit; /* workspace limit in bytes, 0: the default */
} shape;

static cnn_conv_geom geom_of(const shape *s)
{
    cnn_conv_geom g = {.h = s->h, .w = s->w, .c = s->c, .kh = s->kh, .kw = s->kw, .sh = s->sh,
                       .sw = s->sw, .dh = s->dh, .dw = s->dw};
    g.oh = cnn_conv_out_size(s->h, s->kh, s->sh, s->dh, s->same, &g.pad_top);
    g.ow = cnn_conv_out_size(s->w, s->kw, s->sw, s->dw, s->same, &g.pad_left);
    return g;
}

/* What one run of the layer gives. */
typedef struct {
    float *y, *dx, *dk, *db;
} result;

static result run_layer(const shape *s, int threads, const float *x, const float *dy,
                        const float *kernel, const float *bias)
{
    result r = {0};
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(s->h, s->w, s->c)));
    CHECK_OK(cnn_model_set_threads(m, threads));
    if (s->limit)
        CHECK_OK(cnn_model_set_workspace_limit(m, s->limit));
    CHECK_OK(cnn_model_add_conv2d(
        m, cnn_conv2d(.filters = s->filters, .kernel_size = {s->kh, s->kw},
                      .strides = {s->sh, s->sw}, .dilation_rate = {s->dh, s->dw},
                      .padding = s->same ? CNN_PADDING_SAME : CNN_PADDING_VALID,
                      .no_bias = !s->bias)));
    CHECK_OK(cnn_model_set_dtype_policy(m, CNN_DTYPE_POLICY_MIXED_BFLOAT16));
    CHECK_OK(cnn_model_ensure_gradients(m));
    CHECK_OK(cnn_model_reserve(m, s->batch, true));
    cnn_layer *l = m->layers[0];
    const cnn_conv_geom g = geom_of(s);
    const int64_t nx = (int64_t)s->batch * s->h * s->w * s->c;
    const int64_t ny = (int64_t)s->batch * g.oh * g.ow * s->filters;
    memcpy(l->params[0].value, kernel, (size_t)l->params[0].count * sizeof(float));
    if (s->bias)
        memcpy(l->params[1].value, bias, (size_t)s->filters * sizeof(float));
    r.y = floats(ny, false), r.dx = floats(nx, false);
    r.dk = floats(l->params[0].count, false), r.db = floats(s->filters, false);
    float *dyc = floats(ny, false);
    memcpy(dyc, dy, (size_t)ny * sizeof(float));
    cnn_layer_io io = {.batch = s->batch, .training = true, .x = x, .y = m->arena.outputs[0],
                       .dy = dyc, .dx = floats(nx, true), .workspace = m->arena.workspace,
                       .tile_floats = m->tile_floats, .pool = m->pool, .gemm = m->gemm,
                       .bf16 = true};
    for (int p = 0; p < l->n_params; p++)
        memset(l->params[p].grad, 0, (size_t)l->params[p].count * sizeof(float));
    l->ops->forward(l, &io);
    l->ops->backward(l, &io);
    memcpy(r.y, io.y, (size_t)ny * sizeof(float));
    memcpy(r.dx, io.dx, (size_t)nx * sizeof(float));
    memcpy(r.dk, l->params[0].grad, (size_t)l->params[0].count * sizeof(float));
    if (s->bias)
        memcpy(r.db, l->params[1].grad, (size_t)s->filters * sizeof(float));
    free(io.dx), free(dyc);
    cnn_model_free(m);
    return r;
}

static void result_free(result *r) { free(r->y), free(r->dx), free(r->dk), free(r->db); }

/* Whether backward-data runs as the transposed convolution: stride 1, 16
 * or more channels, and its packed kernel within half of what the rotated
 * kernel leaves of the workspace (conv2d.c's transposed_ok; otherwise the
 * im2col path's col2im adds the taps' partial sums in another order). */
static bool transposed(const shape *s)
{
    if (s->sh != 1 || s->sw != 1 || s->c < 16)
        return false;
    int64_t tile = (s->limit ? s->limit : 8 << 20) / 4, KT = (int64_t)s->kh * s->kw * s->filters;
    int64_t rot = (KT * s->c + 15) / 16 * 16, avail = tile - rot;
    int64_t packed = ((int64_t)cnn_gemm_packed_b_floats((int)KT, s->c) + 15) / 16 * 16 + 16;
    return packed <= (avail > KT ? avail : KT) / 2;
}

/* The layer's three products from the reference GEMM. */
static result reference(const shape *s, const float *x, const float *dy, const float *kernel,
                        const float *bias)
{
    const cnn_conv_geom g = geom_of(s);
    const int64_t plane = (int64_t)g.oh * g.ow, M = s->batch * plane;
    const int K = s->kh * s->kw * s->c, F = s->filters;
    const int64_t nx = (int64_t)s->batch * s->h * s->w * s->c;
    result r = {floats(M * F, false), floats(nx, false), floats((int64_t)K * F, false),
                floats(F, false)};
    float *col = floats(M * K, false);
    cnn_im2col_rows(&g, x, 0, M, col);
    cnn_gemm_bf16_reference(false, false, (int)M, F, K, 1.0f, col, K, kernel, F, 0.0f, r.y, F);
    if (s->bias)
        cnn_add_bias_rows(r.y, bias, M, F);
    /* the kernel gradient, block by block as the implicit path cuts the pixels */
    for (int64_t a = 0; a < M;) {
        int64_t n = a / plane, z = a + WEIGHTS_BLOCK_ROWS;
        z = z < (n + 2) * plane ? z : (n + 2) * plane;
        z = z < M ? z : M;
        cnn_gemm_bf16_reference(true, false, K, F, (int)(z - a), 1.0f, col + a * K, K, dy + a * F,
                                F, 1.0f, r.dk, F);
        a = z;
    }
    cnn_bias_grad_rows(dy, M, F, r.db);
    free(col);
    if (transposed(s)) {
        /* dx = dy (padded by span - 1 - pad) convolved with the kernel turned
         * by 180 degrees, its channels swapped */
        cnn_conv_geom t = g;
        t.h = g.oh, t.w = g.ow, t.c = F, t.oh = g.h, t.ow = g.w;
        t.pad_top = (g.kh - 1) * g.dh - g.pad_top;
        t.pad_left = (g.kw - 1) * g.dw - g.pad_left;
        const int taps = s->kh * s->kw, KT = taps * F;
        const int64_t MT = (int64_t)s->batch * s->h * s->w;
        float *rot = floats((int64_t)KT * s->c, false), *tcol = floats(MT * KT, false);
        for (int q = 0; q < taps; q++)
            for (int ci = 0; ci < s->c; ci++)
                for (int f = 0; f < F; f++)
                    rot[((int64_t)q * F + f) * s->c + ci] =
                        kernel[((int64_t)(taps - 1 - q) * s->c + ci) * F + f];
        cnn_im2col_rows(&t, dy, 0, MT, tcol);
        cnn_gemm_bf16_reference(false, false, (int)MT, s->c, KT, 1.0f, tcol, KT, rot, s->c, 0.0f,
                                r.dx, s->c);
        free(rot), free(tcol);
    } else {
        float *dcol = floats(M * K, false);
        cnn_gemm_bf16_reference(false, true, (int)M, K, F, 1.0f, dy, F, kernel, F, 0.0f, dcol, K);
        cnn_col2im_rows_add(&g, dcol, 0, M, r.dx);
        free(dcol);
    }
    return r;
}

static void check_shape(const shape *s)
{
    char what[200];
    snprintf(what, sizeof what,
             "batch %d %dx%dx%d -> %d, kernel %dx%d stride %dx%d dilation %dx%d %s limit %lld",
             s->batch, s->h, s->w, s->c, s->filters, s->kh, s->kw, s->sh, s->sw, s->dh, s->dw,
             s->same ? "same" : "valid", (long long)s->limit);
    const cnn_conv_geom g = geom_of(s);
    const int64_t nx = (int64_t)s->batch * s->h * s->w * s->c;
    const int64_t ny = (int64_t)s->batch * g.oh * g.ow * s->filters;
    const int64_t nk = (int64_t)s->kh * s->kw * s->c * s->filters;
    float *x = floats(nx, true), *dy = floats(ny, true), *kernel = floats(nk, true);
    float *bias = floats(s->filters, true);
    result ref = reference(s, x, dy, kernel, bias);
    result one = run_layer(s, 1, x, dy, kernel, bias);
    CHECK(same_bits(what, "forward", one.y, ref.y, ny));
    if (s->limit) /* maybe the im2col tiles, which cut the pixel sums elsewhere */
        CHECK(test_close(what, one.dk, ref.dk, (long)nk, 1e-5, 1e-4));
    else
        CHECK(same_bits(what, "kernel gradient", one.dk, ref.dk, nk));
    if (transposed(s))
        CHECK(same_bits(what, "dx", one.dx, ref.dx, nx));
    else
        CHECK(test_close(what, one.dx, ref.dx, (long)nx, 1e-5, 1e-4));
    if (s->bias)
        CHECK(test_close(what, one.db, ref.db, s->filters, 1e-5, 1e-5));
    for (int t = 2; t <= 3; t++) {
        result more = run_layer(s, t, x, dy, kernel, bias);
        CHECK(same_bits(what, "forward, threads", more.y, one.y, ny));
        CHECK(same_bits(what, "kernel gradient, threads", more.dk, one.dk, nk));
        CHECK(same_bits(what, "dx, threads", more.dx, one.dx, nx));
        CHECK(same_bits(what, "bias gradient, threads", more.db, one.db, s->filters));
        result_free(&more);
    }
    result_free(&ref);
    result_free(&one);
    free(x), free(dy), free(kernel), free(bias);
}

static shape random_shape(void)
{
    /* more than conv2d.c's DIRECT_MAX_CHANNELS (8), which run in float32 */
    static const int channels[] = {9, 16, 17, 32, 33, 64};
    shape s = {.batch = 1 + below(4), .h = 3 + below(12), .w = 3 + below(12),
               .c = channels[below(6)], .filters = 1 + below(70), .kh = 1 + below(5),
               .kw = 1 + below(5), .sh = 1, .sw = 1, .dh = 1, .dw = 1, .same = below(2),
               .bias = below(2)};
    if (s.kh == 1 && s.kw == 1)
        s.kh = 3; /* 1x1 reads its input as columns: not these paths */
    if (below(3) == 0)
        s.sh = 1 + below(3), s.sw = 1 + below(3);
    else if (below(3) == 0)
        s.dh = 1 + below(2), s.dw = 1 + below(2);
    int pad;
    if (cnn_conv_out_size(s.h, s.kh, s.sh, s.dh, s.same, &pad) < 1
        || cnn_conv_out_size(s.w, s.kw, s.sw, s.dw, s.same, &pad) < 1)
        s.same = true;
    return s;
}

int main(void)
{
    if (!cnn_bfloat16_supported()) {
        test_skip("test_conv_bf16", "this CPU has no AVX512_BF16");
        return test_finish("test_conv_bf16");
    }
    cnn_rng_seed(&rng, 20261205);
    for (int t = 0; t < 40; t++) {
        shape s = random_shape();
        check_shape(&s);
    }
    static const shape fixed[] = {
        /* the tutorial's conv2 at batch 3: 196 rows a sample, panels of 12
         * across sample boundaries, a 25-tap kernel */
        {.batch = 3, .h = 14, .w = 14, .c = 32, .filters = 64, .kh = 5, .kw = 5, .sh = 1,
         .sw = 1, .dh = 1, .dw = 1, .same = true, .bias = true},
        /* bands of padded rows (larger than conv2d.c's PAD_BAND_FLOATS) */
        {.batch = 2, .h = 40, .w = 40, .c = 64, .filters = 64, .kh = 3, .kw = 3, .sh = 1,
         .sw = 1, .dh = 1, .dw = 1, .same = true, .bias = true},
        {.batch = 2, .h = 45, .w = 37, .c = 48, .filters = 33, .kh = 5, .kw = 3, .sh = 2,
         .sw = 2, .dh = 1, .dw = 1, .same = true, .bias = false},
        {.batch = 2, .h = 38, .w = 38, .c = 65, .filters = 20, .kh = 3, .kw = 3, .sh = 1,
         .sw = 1, .dh = 2, .dw = 2, .same = false, .bias = true},
        /* K over 1024 (two K blocks) and more than 512 filters (two column blocks) */
        {.batch = 1, .h = 6, .w = 7, .c = 130, .filters = 530, .kh = 3, .kw = 3, .sh = 1,
         .sw = 1, .dh = 1, .dw = 1, .same = true, .bias = true},
        /* small workspaces: workers whose rows take fewer floats than
         * their bands use im2col blocks (cnn_gemm_bf16_serial_packed_b);
         * a kernel too large to pack keeps the im2col tiles */
        {.batch = 2, .h = 40, .w = 40, .c = 16, .filters = 8, .kh = 3, .kw = 3, .sh = 1,
         .sw = 1, .dh = 1, .dw = 1, .same = true, .bias = true, .limit = 160 * 1024},
        {.batch = 2, .h = 12, .w = 12, .c = 32, .filters = 40, .kh = 5, .kw = 5, .sh = 1,
         .sw = 1, .dh = 1, .dw = 1, .same = true, .bias = true, .limit = 200 * 1024},
        /* shares too small for the implicit grid's usual band (conv2d.c's
         * grid_plan_fit; they took implicit_rows before it was folded
         * into the grid): 200 columns of 16 channels without padding,
         * whose bfloat16 pairs band is 20 rows (32000 floats). On 1
         * thread a share of 245 rows of K = 144 holds it, 106 rows a band
         * of 9 rows (blocks of 7 output rows), 40 rows a band of 3 (blocks
         * of 1: the tiles straddle output rows), 33 rows none (the float32
         * layout, read in place); 2 and 3 threads cut the shares again.
         * A wrong band row or offset changes the forward's bits. */
        {.batch = 1, .h = 30, .w = 200, .c = 16, .filters = 32, .kh = 3, .kw = 3, .sh = 1,
         .sw = 1, .dh = 1, .dw = 1, .same = false, .bias = true, .limit = 160000},
        {.batch = 1, .h = 30, .w = 200, .c = 16, .filters = 32, .kh = 3, .kw = 3, .sh = 1,
         .sw = 1, .dh = 1, .dw = 1, .same = false, .bias = true, .limit = 80000},
        {.batch = 1, .h = 30, .w = 200, .c = 16, .filters = 32, .kh = 3, .kw = 3, .sh = 1,
         .sw = 1, .dh = 1, .dw = 1, .same = false, .bias = true, .limit = 41600},
        {.batch = 1, .h = 30, .w = 200, .c = 16, .filters = 32, .kh = 3, .kw = 3, .sh = 1,
         .sw = 1, .dh = 1, .dw = 1, .same = false, .bias = false, .limit = 38000},
        /* shares that took im2col blocks before: bands cut to the share,
         * of floats (odd channels, padded: 5 rows, blocks of 3) and of
         * pairs (stride 2, padded: 15 rows, blocks of 6; dilation 2,
         * valid: 14 rows, blocks of 10) */
        {.batch = 2, .h = 24, .w = 150, .c = 17, .filters = 24, .kh = 3, .kw = 3, .sh = 1,
         .sw = 1, .dh = 1, .dw = 1, .same = true, .bias = true, .limit = 80000},
        {.batch = 2, .h = 24, .w = 150, .c = 18, .filters = 24, .kh = 5, .kw = 3, .sh = 2,
         .sw = 1, .dh = 1, .dw = 1, .same = true, .bias = true, .limit = 120000},
        {.batch = 2, .h = 24, .w = 150, .c = 18, .filters = 24, .kh = 3, .kw = 3, .sh = 1,
         .sw = 1, .dh = 2, .dw = 2, .same = false, .bias = true, .limit = 100000},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        check_shape(&fixed[i]);
    return test_finish("test_conv_bf16");
}
