/* Conv2D's fused path (conv2d.c): per-worker im2col blocks, the implicit
 * GEMM (cnn_gemm_gather) and backward-data as a convolution of dy with the
 * rotated kernel.
 *  - cnn_gemm_gather and cnn_gemm_serial_packed_b give cnn_gemm's bits;
 *  - the layer's forward output gives the bits of im2col + cnn_gemm + bias
 *    (the unfused path it replaces), on 1 and 2 threads (the 5x5 shapes
 *    that run Winograd's F(2x2, 5x5) instead: within tolerance of them);
 *  - every gradient, dx included, is the same on 1 and 2 threads and agrees
 *    with the reference GEMM's path within the usual tolerance,
 * over random shapes with 16 or more channels (strides, dilation, same and
 * valid padding, rectangular kernels, batches whose samples split 12-row
 * panels), large ones whose padded rows are copied in bands, and small
 * workspace limits whose worker shares cut those bands. */
#include <stdint.h>
#include <stdlib.h>

#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "kernels/winograd.h"
#include "model/model.h"
#include "test.h"

static cnn_rng rng;

static int below(int n) { return (int)(cnn_rng_next(&rng) % (uint64_t)n); }

static float *random_floats(int64_t n) { return test_random_floats(&rng, n, -1, 1); }

/* The serial entry points against cnn_gemm, A (M x K) stored with a
 * row stride, beta 0 and 1. */
static void test_gemm_entry_points(int M, int N, int K)
{
    cnn_gemm_ctx *ctx = NULL;
    CHECK_OK(cnn_gemm_ctx_create(&ctx, NULL));
    const int lda = K + 3;
    float *A = random_floats((int64_t)M * lda), *B = random_floats((int64_t)K * N);
    float *C0 = random_floats((int64_t)M * N), *C1 = malloc((size_t)M * N * sizeof(float));
    float *C2 = malloc((size_t)M * N * sizeof(float));
    float *bp = aligned_alloc(64, (cnn_gemm_packed_b_floats(K, N) * sizeof(float) + 63) / 64 * 64);
    const float **rows = malloc((size_t)M * sizeof *rows);
    int *koff = malloc((size_t)K * sizeof *koff);
    for (int i = 0; i < M; i++)
        rows[i] = A + (int64_t)i * lda;
    for (int k = 0; k < K; k++)
        koff[k] = k;
    cnn_gemm_pack_b(ctx, false, N, K, B, N, bp);
    char what[80];
    for (int b = 0; b < 2; b++) {
        float beta = (float)b;
        memcpy(C1, C0, (size_t)M * N * sizeof(float));
        memcpy(C2, C0, (size_t)M * N * sizeof(float));
        cnn_gemm(ctx, false, false, M, N, K, 1.0f, A, lda, B, N, beta, C1, N);
        cnn_gemm_serial_packed_b(ctx, 0, false, false, M, N, K, 1.0f, A, lda, B, N, bp, beta, C2,
                                 N);
        snprintf(what, sizeof what, "packed B %dx%dx%d beta %d", M, N, K, b);
        CHECK(test_same_bits(what, C1, C2, (int64_t)M * N));
        if (cnn_gemm_gather_supported(ctx)) {
            memcpy(C2, C0, (size_t)M * N * sizeof(float));
            cnn_gemm_gather(ctx, 0, M, N, K, rows, koff, bp, beta, C2, N);
            snprintf(what, sizeof what, "gather %dx%dx%d beta %d", M, N, K, b);
            CHECK(test_same_bits(what, C1, C2, (int64_t)M * N));
        }
    }
    free(A), free(B), free(C0), free(C1), free(C2), free(bp), free(rows), free(koff);
    cnn_gemm_ctx_free(ctx);
}

/* cnn_gemm_gather_spans against cnn_gemm on an A that is zero outside the
 * spans: the same bits (the skipped products are exact zeros), beta 0 and
 * 1, spans that leave whole K blocks (384 wide) empty, and none at all. */
static void test_gather_spans(int M, int N, int K, const int *spans, int nspans)
{
    cnn_gemm_ctx *ctx = NULL;
    CHECK_OK(cnn_gemm_ctx_create(&ctx, NULL));
    if (!cnn_gemm_gather_supported(ctx)) {
        cnn_gemm_ctx_free(ctx);
        return;
    }
    float *A = random_floats((int64_t)M * K), *B = random_floats((int64_t)K * N);
    float *C0 = random_floats((int64_t)M * N), *C1 = malloc((size_t)M * N * sizeof(float));
    float *C2 = malloc((size_t)M * N * sizeof(float));
    float *bp = aligned_alloc(64, (cnn_gemm_packed_b_floats(K, N) * sizeof(float) + 63) / 64 * 64);
    const float **rows = malloc((size_t)M * sizeof *rows);
    int *koff = malloc((size_t)K * sizeof *koff);
    for (int k = 0; k < K; k++) {
        bool inside = false;
        for (int s = 0; s < nspans; s++)
            inside = inside || (spans[2 * s] <= k && k < spans[2 * s + 1]);
        koff[k] = k;
        for (int i = 0; !inside && i < M; i++)
            A[(int64_t)i * K + k] = 0.0f;
    }
    for (int i = 0; i < M; i++)
        rows[i] = A + (int64_t)i * K;
    cnn_gemm_pack_b(ctx, false, N, K, B, N, bp);
    char what[96];
    for (int b = 0; b < 2; b++) {
        memcpy(C1, C0, (size_t)M * N * sizeof(float));
        memcpy(C2, C0, (size_t)M * N * sizeof(float));
        cnn_gemm(ctx, false, false, M, N, K, 1.0f, A, K, B, N, (float)b, C1, N);
        cnn_gemm_gather_spans(ctx, 0, M, N, K, rows, koff, spans, nspans, bp, (float)b, C2, N);
        snprintf(what, sizeof what, "gather spans %dx%dx%d (%d spans) beta %d", M, N, K, nspans,
                 b);
        CHECK(test_same_bits(what, C1, C2, (int64_t)M * N));
    }
    /* a product inside a span that was skipped would change C: a nonzero
     * A there must show */
    if (nspans > 0) {
        A[spans[0]] = 1000.0f;
        memcpy(C1, C0, (size_t)M * N * sizeof(float));
        memcpy(C2, C0, (size_t)M * N * sizeof(float));
        cnn_gemm(ctx, false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C1, N);
        cnn_gemm_gather_spans(ctx, 0, M, N, K, rows, koff, spans, nspans, bp, 0.0f, C2, N);
        CHECK(test_same_bits("gather spans, a large first value", C1, C2, (int64_t)M * N));
    }
    free(A), free(B), free(C0), free(C1), free(C2), free(bp), free(rows), free(koff);
    cnn_gemm_ctx_free(ctx);
}

static void test_gather_spans_cases(void)
{
    static const int none[] = {0, 0}, first[] = {0, 5}, middle[] = {300, 420, 500, 520},
                     last[] = {790, 800}, odd[] = {1, 2, 3, 17, 40, 41, 383, 385};
    test_gather_spans(24, 64, 800, none, 0);
    test_gather_spans(24, 64, 800, first, 1);
    test_gather_spans(36, 40, 800, middle, 2);
    test_gather_spans(12, 70, 800, last, 1);
    test_gather_spans(29, 33, 800, odd, 4); /* 29: a partial last panel */
    test_gather_spans(12, 16, 100, odd, 3);
}

typedef struct {
    int batch, h, w, c, filters, kh, kw, sh, sw, dh, dw;
    bool same, bias;
    int64_t limit; /* workspace limit in bytes, 0: the default */
} shape;

static shape random_shape(void)
{
    static const int channels[] = {16, 17, 32, 33};
    shape s = {.batch = 1 + below(4), .h = 3 + below(12), .w = 3 + below(12),
               .c = channels[below(4)], .filters = 1 + below(70), .kh = 1 + below(5),
               .kw = 1 + below(5), .sh = 1, .sw = 1, .dh = 1, .dw = 1, .same = below(2),
               .bias = below(2)};
    if (s.kh == 1 && s.kw == 1)
        s.kh = 3; /* 1x1 reads its input as columns: not this path */
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

/* A 3x3 convolution from 2 channels to s.c feeds the layer under test, so
 * that its dx is computed; then Flatten and a softmax Dense. */
static cnn_model *model_for(const shape *s, int threads, bool naive)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(s->h, s->w, 2)));
    CHECK_OK(cnn_model_set_threads(m, threads));
    if (s->limit)
        CHECK_OK(cnn_model_set_workspace_limit(m, s->limit));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = s->c, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME)));
    CHECK_OK(cnn_model_add_conv2d(
        m, cnn_conv2d(.filters = s->filters, .kernel_size = {s->kh, s->kw},
                      .strides = {s->sh, s->sw}, .dilation_rate = {s->dh, s->dw},
                      .padding = s->same ? CNN_PADDING_SAME : CNN_PADDING_VALID,
                      .no_bias = !s->bias)));
    return test_classifier_head(m, naive);
}

/* The tested layer's geometry. */
static cnn_conv_geom geom_of(const shape *s)
{
    cnn_conv_geom g = {.h = s->h, .w = s->w, .c = s->c, .kh = s->kh, .kw = s->kw, .sh = s->sh,
                       .sw = s->sw, .dh = s->dh, .dw = s->dw};
    g.oh = cnn_conv_out_size(s->h, s->kh, s->sh, s->dh, s->same, &g.pad_top);
    g.ow = cnn_conv_out_size(s->w, s->kw, s->sw, s->dw, s->same, &g.pad_left);
    return g;
}

/* The unfused forward: im2col of the whole batch, cnn_gemm, bias. */
static float *unfused_forward(cnn_model *m, const shape *s)
{
    const cnn_layer *l = m->layers[1];
    const cnn_conv_geom g = geom_of(s);
    const int64_t M = (int64_t)s->batch * g.oh * g.ow, K = (int64_t)s->kh * s->kw * s->c;
    float *col = random_floats(M * K), *y = random_floats(M * s->filters);
    cnn_im2col_rows(&g, m->arena.outputs[0], 0, M, col);
    cnn_gemm(m->gemm, false, false, (int)M, s->filters, (int)K, 1.0f, col, (int)K,
             l->params[0].value, s->filters, 0.0f, y, s->filters);
    if (s->bias)
        cnn_add_bias_rows(y, l->params[1].value, M, s->filters);
    free(col);
    return y;
}

/* The layer runs Winograd's F(2x2, 5x5) instead of the fused path. */
static bool winograd(const shape *s)
{
    cnn_conv_geom g = geom_of(s);
    return cnn_winograd_fits(&g, s->filters);
}

static void check_shape(const shape *s)
{
    char what[160];
    snprintf(what, sizeof what,
             "batch %d %dx%dx%d -> %d, kernel %dx%d stride %dx%d dilation %dx%d %s limit %lld",
             s->batch, s->h, s->w, s->c, s->filters, s->kh, s->kw, s->sh, s->sw, s->dh, s->dw,
             s->same ? "same" : "valid", (long long)s->limit);
    cnn_tensor *x = NULL, *y = NULL;
    test_random_batch(&rng, (int64_t[]){s->batch, s->h, s->w, 2}, -1, 1, 3, &x, &y);
    cnn_model *m[3] = {model_for(s, 1, false), model_for(s, 2, false), model_for(s, 1, true)};
    /* both layers' kernel and bias gradients: the first one's come from
     * the tested layer's dx */
    test_three_way_step(m, x, y, 2, what);
    const int64_t out = cnn_shape_size(m[0]->layers[1]->out) * s->batch;
    float *ref = unfused_forward(m[0], s);
    if (winograd(s)) { /* not this path: kernels/winograd.c, test_winograd */
        CHECK(test_close(what, m[0]->arena.outputs[1], ref, (long)out, 1e-4, 1e-4));
        CHECK(test_same_bits(what, m[0]->arena.outputs[1], m[1]->arena.outputs[1], out));
    } else {
        CHECK(test_same_bits(what, ref, m[0]->arena.outputs[1], out));
        CHECK(test_same_bits(what, ref, m[1]->arena.outputs[1], out));
    }
    CHECK(test_close(what, m[0]->arena.outputs[1], m[2]->arena.outputs[1], (long)out, 1e-5, 1e-4));
    free(ref);
    for (int i = 0; i < 3; i++)
        cnn_model_free(m[i]);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

int main(void)
{
    cnn_rng_seed(&rng, 20261205);
    static const int sizes[][3] = {{1, 1, 1},    {12, 32, 100}, {37, 70, 900},
                                   {25, 64, 800}, {13, 5, 385},  {100, 33, 17}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        test_gemm_entry_points(sizes[i][0], sizes[i][1], sizes[i][2]);
    test_gather_spans_cases();
    for (int t = 0; t < 60; t++) {
        shape s = random_shape();
        check_shape(&s);
    }
    /* conv2 of the tutorial at batch 2: 196 rows a sample, panels of 12
     * across sample boundaries; with 30 channels, as 32 would take the
     * Winograd path, and then with them */
    shape conv2 = {.batch = 2, .h = 14, .w = 14, .c = 30, .filters = 64, .kh = 5, .kw = 5,
                   .sh = 1, .sw = 1, .dh = 1, .dw = 1, .same = true, .bias = true};
    CHECK(!winograd(&conv2));
    check_shape(&conv2);
    conv2.c = 32;
    check_shape(&conv2);
    /* Samples whose padded copy is larger than a band (conv2d.c's
     * PAD_BAND_FLOATS): the workers pad bands of rows that slide down the
     * sample and blocks that cross into the next sample, in the forward,
     * the backward-weights and (64 filters: a wide dy) the transposed
     * backward-data; strided, dilated and rectangular kernels too. */
    static const shape banded[] = {
        {.batch = 2, .h = 40, .w = 40, .c = 64, .filters = 64, .kh = 3, .kw = 3, .sh = 1,
         .sw = 1, .dh = 1, .dw = 1, .same = true, .bias = true},
        {.batch = 3, .h = 45, .w = 37, .c = 48, .filters = 33, .kh = 5, .kw = 3, .sh = 2,
         .sw = 2, .dh = 1, .dw = 1, .same = true, .bias = false},
        {.batch = 2, .h = 38, .w = 38, .c = 64, .filters = 20, .kh = 3, .kw = 3, .sh = 1,
         .sw = 1, .dh = 2, .dw = 2, .same = true, .bias = true},
    };
    for (size_t i = 0; i < sizeof banded / sizeof *banded; i++)
        check_shape(&banded[i]);
    /* Workspaces whose shares are too small for the usual band of 13
     * padded rows of 152 x 32 (63232 floats): the implicit grid copies
     * bands cut to the share (conv2d.c's grid_plan_fit; im2col blocks
     * before), on 1 thread 5 rows with blocks of 3 output rows, and 3
     * rows with blocks of 1; on 2 threads (a limit of 8 MB: the conv
     * runs in one tile) and 3, whatever the shares hold. A band row or
     * offset off by one changes the bits. */
    static const shape tight[] = {
        {.batch = 2, .h = 20, .w = 150, .c = 32, .filters = 16, .kh = 3, .kw = 3, .sh = 1,
         .sw = 1, .dh = 1, .dw = 1, .same = true, .bias = true, .limit = 140000},
        {.batch = 2, .h = 20, .w = 150, .c = 32, .filters = 16, .kh = 3, .kw = 3, .sh = 1,
         .sw = 1, .dh = 1, .dw = 1, .same = true, .bias = false, .limit = 100000},
        {.batch = 1, .h = 17, .w = 150, .c = 32, .filters = 16, .kh = 5, .kw = 3, .sh = 2,
         .sw = 1, .dh = 1, .dw = 1, .same = true, .bias = true, .limit = 150000},
    };
    for (size_t i = 0; i < sizeof tight / sizeof *tight; i++)
        check_shape(&tight[i]);
    return test_finish("test_conv_fused");
}
