/* BatchNormalization and DepthwiseConv2D on layers with few channels
 * (issue #17): they split rows (BN) and sample chunks (depthwise backward)
 * between threads, and the result must not depend on the thread count.
 *
 * - the kernels: BN's block sums split anywhere and joined give the bits
 *   of the whole reduction, on every instruction set (8-wide remainder of
 *   the 16-wide bodies included);
 * - each layer alone, on 1 and 2 threads: forward outputs, input gradients,
 *   weight gradients and moving statistics bit-identical, training and
 *   inference, 1 to 40 channels, odd sizes, strides 1 and 2, shapes large
 *   enough that the 2-thread model really uses its pool; and close to the
 *   naive kernels;
 * - a small MobileNet-like model trained a few steps on 1 and 2 threads
 *   ends with the same weights. */
#include <stdlib.h>

#include "core/tensor.h"
#include "kernels/batch_norm.h"
#include "kernels/depthwise.h"
#include "layers/layer.h"
#include "model/model.h"
#include "test.h"

static cnn_rng rng;

/* ---- The kernels: block sums joined = the whole reduction ------------------ */

static int same_doubles(const double *a, const double *b, int n)
{
    return memcmp(a, b, (size_t)n * sizeof(double)) == 0;
}

static void check_bn_blocks(int64_t rows, int n)
{
    char what[96];
    snprintf(what, sizeof what, "bn blocks %lld rows x %d", (long long)rows, n);
    const int64_t ld = n + 3; /* a channel range of a wider tensor */
    float *x = test_random_floats(&rng, rows * ld, 3.0f, 5.0f);
    float *g = test_random_floats(&rng, rows * ld, -1.0f, 1.0f);
    float *mean_f = test_random_floats(&rng, n, 3.5f, 4.5f);
    float *inv_std = test_random_floats(&rng, n, 0.5f, 2.0f);
    const int64_t blocks = (rows + CNN_BN_ROW_BLOCK - 1) / CNN_BN_ROW_BLOCK;
    float *sums = test_xmalloc((size_t)(blocks * 2 * n + 1) * sizeof(float));
    float *ref_sums = test_xmalloc((size_t)(blocks * 2 * n + 1) * sizeof(float));
    double *mean = test_xmalloc((size_t)n * sizeof(double) * 8), *var = mean + n,
           *jm = mean + 2 * n, *jv = mean + 3 * n, *sg = mean + 4 * n, *sgx = mean + 5 * n,
           *js = mean + 6 * n, *jsx = mean + 7 * n;
    static const cnn_isa isas[] = {CNN_ISA_GENERIC, CNN_ISA_AVX2, CNN_ISA_AVX512};
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        cnn_isa isa = isas[i];
        /* stats: blocks in three uneven ranges, then joined */
        cnn_bn_stats(isa, x, rows, n, ld, mean, var);
        const int64_t cut1 = blocks / 3, cut2 = blocks - blocks / 4;
        cnn_bn_stats_blocks(isa, x, rows, n, ld, x, 0, cut1, sums);
        cnn_bn_stats_blocks(isa, x, rows, n, ld, x, cut1, cut2, sums + cut1 * 2 * n);
        cnn_bn_stats_blocks(isa, x, rows, n, ld, x, cut2, blocks, sums + cut2 * 2 * n);
        cnn_bn_stats_join(sums, rows, n, x, jm, jv);
        CHECK(same_doubles(mean, jm, n) && same_doubles(var, jv, n));
        /* every instruction set gives the same block sums */
        if (i == 0)
            memcpy(ref_sums, sums, (size_t)(blocks * 2 * n) * sizeof(float));
        else if (!test_same_bits(what, ref_sums, sums, blocks * 2 * n))
            CHECK(!"stats block sums differ between instruction sets");
        /* backward sums */
        cnn_bn_grad_sums(isa, x, g, rows, n, ld, mean_f, inv_std, sg, sgx);
        cnn_bn_grad_sums_blocks(isa, x, g, rows, n, ld, mean_f, inv_std, 0, cut2, sums);
        cnn_bn_grad_sums_blocks(isa, x, g, rows, n, ld, mean_f, inv_std, cut2, blocks,
                                sums + cut2 * 2 * n);
        cnn_bn_join_blocks(sums, rows, n, n, js, jsx);
        CHECK(same_doubles(sg, js, n) && same_doubles(sgx, jsx, n));
    }
    /* and the whole stays near the naive double loops */
    double nm[80], nv[80];
    cnn_bn_stats_naive(x, rows, n, ld, nm, nv);
    for (int k = 0; k < n; k++) {
        CHECK(fabs(nm[k] - mean[k]) <= 1e-6 * fabs(nm[k]));
        CHECK(fabs(nv[k] - var[k]) <= 1e-4 * nv[k] + 1e-9);
    }
    free(x), free(g), free(mean_f), free(inv_std), free(sums), free(ref_sums), free(mean);
}

/* ---- One layer on 1 and 2 threads -------------------------------------------- */

enum { BN, DW };

typedef struct {
    int kind, batch, h, w, c, stride, mult;
    bool same;
} spec;

static const char *describe(const spec *s, bool training)
{
    static char buf[160];
    snprintf(buf, sizeof buf, "%s batch %d %dx%dx%d stride %d mult %d %s %s",
             s->kind == BN ? "BatchNormalization" : "DepthwiseConv2D", s->batch, s->h, s->w,
             s->c, s->stride, s->mult, s->same ? "same" : "valid",
             training ? "training" : "inference");
    return buf;
}

/* The layer alone, built, with gradients and an arena for s->batch; its
 * parameters from params (all of them, in order). */
static cnn_model *one_layer(const spec *s, int threads, const float *params)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(s->h, s->w, s->c)));
    CHECK_OK(cnn_model_set_threads(m, threads));
    if (s->kind == BN)
        CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization(.momentum = 0.9f)));
    else
        CHECK_OK(cnn_model_add_depthwise_conv2d(
            m, cnn_depthwise_conv2d(.kernel_size = {3, 3}, .strides = {s->stride, s->stride},
                                    .depth_multiplier = s->mult,
                                    .padding = s->same ? CNN_PADDING_SAME : CNN_PADDING_VALID)));
    CHECK_OK(cnn_model_build(m));
    CHECK_OK(cnn_model_ensure_gradients(m));
    CHECK_OK(cnn_model_reserve(m, s->batch, true));
    cnn_layer *l = m->layers[0];
    for (int p = 0, off = 0; p < l->n_params; off += (int)l->params[p].count, p++)
        memcpy(l->params[p].value, params + off, (size_t)l->params[p].count * sizeof(float));
    return m;
}

static int64_t param_count(const cnn_model *m)
{
    int64_t n = 0;
    for (int p = 0; p < m->layers[0]->n_params; p++)
        n += m->layers[0]->params[p].count;
    return n;
}

/* Forward and backward of the layer (dx written), gradients zeroed first.
 * saved: whether the layer gets its forward-to-backward state (a training
 * forward needs it; without, BN runs its inference forward only). */
static void run_layer(cnn_model *m, const spec *s, bool training, bool backward, const float *x,
                      const float *dy, float *dx)
{
    cnn_layer *l = m->layers[0];
    cnn_model_zero_gradients(m);
    size_t ny = (size_t)s->batch * (size_t)cnn_shape_size(l->out);
    float *dyc = test_xmalloc(ny * sizeof(float));
    memcpy(dyc, dy, ny * sizeof(float));
    cnn_layer_io io = {.batch = s->batch, .training = training, .x = x,
                       .y = m->arena.outputs[0], .dy = dyc, .dx = dx,
                       .workspace = m->arena.workspace, .tile_floats = m->tile_floats,
                       .saved = backward || training ? m->arena.saved[0] : NULL,
                       .pool = m->pool, .gemm = m->gemm};
    l->ops->forward(l, &io);
    if (backward)
        l->ops->backward(l, &io);
    free(dyc);
}

/* The naive kernels' answer for BN, compared within tolerance. */
static void check_bn_reference(const spec *s, bool training, const float *params, const float *x,
                               const float *dy, const cnn_model *m, const float *dx)
{
    const char *what = describe(s, training);
    const int C = s->c;
    const int64_t rows = (int64_t)s->batch * s->h * s->w, n = rows * C;
    const float *gamma = params, *beta = params + C, *mm = params + 2 * C, *mv = params + 3 * C;
    double mean[40], var[40];
    float meanf[40], inv_std[40], scale[40], shift[40], a[40], mg[40], mgx[40], zero[40] = {0};
    if (training) {
        cnn_bn_stats_naive(x, rows, C, C, mean, var);
    } else {
        for (int k = 0; k < C; k++)
            mean[k] = mm[k], var[k] = mv[k];
    }
    for (int k = 0; k < C; k++) {
        meanf[k] = (float)mean[k];
        inv_std[k] = (float)(1.0 / sqrt(var[k] + 1e-3));
        scale[k] = gamma[k] * inv_std[k];
        shift[k] = beta[k] - meanf[k] * scale[k];
    }
    float *ref = test_xmalloc((size_t)n * sizeof(float));
    cnn_bn_affine_naive(x, ref, rows, C, C, scale, shift);
    CHECK(test_close(what, m->arena.outputs[0], ref, (long)n, 1e-4, 1e-4));
    double sg[40], sgx[40];
    cnn_bn_grad_sums_naive(x, dy, rows, C, C, meanf, inv_std, sg, sgx);
    float dgamma[40], dbeta[40];
    for (int k = 0; k < C; k++) {
        dbeta[k] = (float)sg[k], dgamma[k] = (float)sgx[k];
        a[k] = gamma[k] * inv_std[k];
        mg[k] = training ? (float)(sg[k] / (double)rows) : 0.0f;
        mgx[k] = training ? (float)(sgx[k] / (double)rows) : 0.0f;
    }
    CHECK(test_close(what, m->layers[0]->params[0].grad, dgamma, C, 1e-2, 1e-3));
    CHECK(test_close(what, m->layers[0]->params[1].grad, dbeta, C, 1e-2, 1e-3));
    cnn_bn_grad_input_naive(x, dy, ref, rows, C, C, a, training ? meanf : zero,
                            training ? inv_std : zero, mg, mgx);
    if (!training) /* dx = a g: the naive formula with xhat's factor 0 */
        CHECK(test_close(what, dx, ref, (long)n, 1e-6, 1e-6));
    else
        CHECK(test_close(what, dx, ref, (long)n, 1e-4, 1e-3));
    free(ref);
}

/* The naive depthwise kernels: forward and dx the same bits, the kernel
 * gradient (summed by chunks of samples) within tolerance. */
static void check_dw_reference(const spec *s, const float *params, const float *x,
                               const float *dy, const cnn_model *m, const float *dx)
{
    const char *what = describe(s, true);
    const cnn_layer *l = m->layers[0];
    cnn_conv_geom g = {.h = s->h, .w = s->w, .c = s->c, .kh = 3, .kw = 3, .sh = s->stride,
                       .sw = s->stride, .dh = 1, .dw = 1};
    g.oh = cnn_conv_out_size(s->h, 3, s->stride, 1, s->same, &g.pad_top);
    g.ow = cnn_conv_out_size(s->w, 3, s->stride, 1, s->same, &g.pad_left);
    const int64_t M = (int64_t)s->batch * g.oh * g.ow, CM = (int64_t)s->c * s->mult;
    const int64_t nx = (int64_t)s->batch * s->h * s->w * s->c, K = l->params[0].count;
    float *y = test_xmalloc((size_t)(M * CM) * sizeof(float));
    float *rdx = calloc((size_t)nx, sizeof(float)), *dk = calloc((size_t)K, sizeof(float));
    cnn_depthwise_forward_naive(&g, s->mult, x, params, 0, M, y);
    cnn_add_bias_rows(y, params + K, M, (int)CM);
    CHECK(test_same_bits(what, m->arena.outputs[0], y, M * CM));
    cnn_depthwise_backward_naive(&g, s->mult, x, params, dy, 0, M, 0, s->c, dk, rdx);
    CHECK(test_same_bits(what, dx, rdx, nx));
    /* float sums of up to 10^4 terms, by chunks against one run */
    CHECK(test_close(what, l->params[0].grad, dk, (long)K, 1e-3, 1e-3));
    free(y), free(rdx), free(dk);
}

static void check_layer(const spec *s)
{
    const bool modes[] = {true, false};
    for (int t = 0; t < 2; t++) {
        const bool training = modes[t];
        if (s->kind == DW && !training)
            continue; /* depthwise has no training mode of its own */
        const char *what = describe(s, training);
        static const float zeros[4096];
        cnn_model *probe = one_layer(s, 1, zeros);
        const int64_t np = param_count(probe);
        const int64_t nx = (int64_t)s->batch * s->h * s->w * s->c;
        const int64_t ny = (int64_t)s->batch * cnn_shape_size(probe->layers[0]->out);
        cnn_model_free(probe);
        float *params = test_random_floats(&rng, np, -1.0f, 1.0f);
        if (s->kind == BN)
            for (int k = 0; k < s->c; k++) {
                params[k] = 0.5f + cnn_rng_uniform(&rng);         /* gamma */
                params[2 * s->c + k] = 2.0f * params[2 * s->c + k]; /* moving mean */
                params[3 * s->c + k] = 0.2f + cnn_rng_uniform(&rng); /* moving var */
            }
        float *x = test_random_floats(&rng, nx, -2.0f, 3.0f);
        float *dy = test_random_floats(&rng, ny, -1.0f, 1.0f);
        float *dx[2];
        cnn_model *m[2];
        for (int i = 0; i < 2; i++) {
            m[i] = one_layer(s, i + 1, params);
            dx[i] = test_xmalloc((size_t)nx * sizeof(float));
            run_layer(m[i], s, training, true, x, dy, dx[i]);
        }
        CHECK(m[1]->pool != NULL && cnn_pool_threads(m[1]->pool) == 2);
        char buf[224];
        snprintf(buf, sizeof buf, "%s: y", what);
        CHECK(test_same_bits(buf, m[0]->arena.outputs[0], m[1]->arena.outputs[0], ny));
        snprintf(buf, sizeof buf, "%s: dx", what);
        CHECK(test_same_bits(buf, dx[0], dx[1], nx));
        for (int p = 0; p < m[0]->layers[0]->n_params; p++) {
            const cnn_param *a = &m[0]->layers[0]->params[p], *b = &m[1]->layers[0]->params[p];
            snprintf(buf, sizeof buf, "%s: %s", what, a->name);
            CHECK(test_same_bits(buf, a->value, b->value, a->count)); /* moving statistics */
            if (a->trainable)
                CHECK(test_same_bits(buf, a->grad, b->grad, a->count));
        }
        if (s->kind == BN) {
            check_bn_reference(s, training, params, x, dy, m[0], dx[0]);
            /* the prediction path: no saved state, inference forward only */
            for (int i = 0; i < 2; i++)
                run_layer(m[i], s, false, false, x, dy, NULL);
            snprintf(buf, sizeof buf, "%s: predict y", what);
            CHECK(test_same_bits(buf, m[0]->arena.outputs[0], m[1]->arena.outputs[0], ny));
        } else {
            check_dw_reference(s, params, x, dy, m[0], dx[0]);
        }
        for (int i = 0; i < 2; i++) {
            cnn_model_free(m[i]);
            free(dx[i]);
        }
        free(params), free(x), free(dy);
    }
}

/* An odd side making the layer's work at least `work` values (so the
 * 2-thread model runs its pool: BN from 256K values, depthwise from 64K
 * output values), or a small one. */
static int side_for(int64_t work, int batch, int c, int stride)
{
    int side = 5;
    while ((int64_t)batch * c * ((side + stride - 1) / stride) * ((side + stride - 1) / stride)
           < work)
        side += 2;
    return side;
}

static void check_layers(void)
{
    static const int channels[] = {1, 3, 8, 16, 17, 40};
    for (size_t i = 0; i < sizeof channels / sizeof *channels; i++) {
        const int c = channels[i];
        /* BN: large (rows split between 2 threads) and small (one thread) */
        int side = side_for(270000, 16, c, 1);
        check_layer(&(spec){.kind = BN, .batch = 16, .h = side, .w = side - 2, .c = c});
        check_layer(&(spec){.kind = BN, .batch = 3, .h = 7, .w = 5, .c = c});
        for (int stride = 1; stride <= 2; stride++) {
            side = side_for(70000, 16, c, stride);
            check_layer(&(spec){.kind = DW, .batch = 16, .h = side, .w = side + 2, .c = c,
                                .stride = stride, .mult = 1, .same = stride == 1});
            /* 37 samples: chunks of 3, the last of 1 */
            side = side_for(70000, 37, c, stride);
            check_layer(&(spec){.kind = DW, .batch = 37, .h = side, .w = side, .c = c,
                                .stride = stride, .mult = 1, .same = stride == 2});
        }
        check_layer(&(spec){.kind = DW, .batch = 1, .h = 9, .w = 7, .c = c, .stride = 1,
                            .mult = 1, .same = true});
    }
    /* depth multiplier 2: the naive loops, by sample chunks as well */
    check_layer(&(spec){.kind = DW, .batch = 16, .h = 47, .w = 45, .c = 3, .stride = 2, .mult = 2,
                        .same = true});
}

/* A model reserved for 20 samples runs batches of 16 (a last, partial
 * batch): 16 has more depthwise chunks (16 of 1) than 20 (10 of 2), and
 * the workspace must hold them. The arena's input buffer follows the
 * workspace: a canary there must survive, and the results equal those
 * of a model reserved for 16. */
static void check_smaller_batch(void)
{
    const spec s = {.kind = DW, .batch = 16, .h = 33, .w = 31, .c = 8, .stride = 1, .mult = 1,
                    .same = true};
    cnn_model *probe = one_layer(&s, 1, (float[96]){0});
    const int64_t np = param_count(probe), nx = 16 * 33 * 31 * 8;
    cnn_model_free(probe);
    float *params = test_random_floats(&rng, np, -1.0f, 1.0f);
    float *x = test_random_floats(&rng, nx, -1.0f, 1.0f);
    float *dy = test_random_floats(&rng, nx, -1.0f, 1.0f);
    float *dx[2] = {test_xmalloc((size_t)nx * sizeof(float)),
                    test_xmalloc((size_t)nx * sizeof(float))};
    cnn_model *big = one_layer(&(spec){.kind = DW, .batch = 20, .h = 33, .w = 31, .c = 8,
                                       .stride = 1, .mult = 1, .same = true},
                               2, params);
    cnn_model *exact = one_layer(&s, 2, params);
    const int64_t canary_n = 20 * 33 * 31 * 8;
    for (int64_t i = 0; i < canary_n; i++)
        big->arena.input[i] = (float)i;
    run_layer(big, &s, true, true, x, dy, dx[0]);
    run_layer(exact, &s, true, true, x, dy, dx[1]);
    int intact = 1;
    for (int64_t i = 0; i < canary_n; i++)
        intact &= big->arena.input[i] == (float)i;
    CHECK(intact);
    CHECK(test_same_bits("batch 16 in an arena for 20: dx", dx[0], dx[1], nx));
    CHECK(test_same_bits("batch 16 in an arena for 20: dkernel", big->layers[0]->params[0].grad,
                         exact->layers[0]->params[0].grad, big->layers[0]->params[0].count));
    cnn_model_free(big);
    cnn_model_free(exact);
    free(params), free(x), free(dy), free(dx[0]), free(dx[1]);
}

/* ---- A small MobileNet-like model trained on 1 and 2 threads --------------- */

static cnn_model *mobile(int threads)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(41, 39, 3)));
    CHECK_OK(cnn_model_set_threads(m, threads));
    CHECK_OK(cnn_model_set_seed(m, 17));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 8, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME)));
    CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization()));
    CHECK_OK(cnn_model_add_relu(m, cnn_relu()));
    CHECK_OK(cnn_model_add_depthwise_conv2d(
        m, cnn_depthwise_conv2d(.kernel_size = {3, 3}, .padding = CNN_PADDING_SAME)));
    CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization()));
    CHECK_OK(cnn_model_add_relu(m, cnn_relu()));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 16, .kernel_size = {1, 1})));
    CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization()));
    CHECK_OK(cnn_model_add_relu(m, cnn_relu()));
    CHECK_OK(cnn_model_add_depthwise_conv2d(
        m, cnn_depthwise_conv2d(.kernel_size = {3, 3}, .strides = {2, 2},
                                .padding = CNN_PADDING_SAME)));
    CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization()));
    CHECK_OK(cnn_model_add_relu(m, cnn_relu()));
    CHECK_OK(cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam(.learning_rate = 0.01f))));
    CHECK_OK(cnn_model_build(m));
    return m;
}

static void check_training(void)
{
    cnn_tensor *x = NULL, *y = NULL;
    test_random_batch(&rng, (int64_t[]){32, 41, 39, 3}, -1, 1, 3, &x, &y);
    cnn_model *m[2] = {mobile(1), mobile(2)};
    float *dx[2];
    const int64_t nx = cnn_tensor_size(x);
    double loss[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        dx[i] = test_xmalloc((size_t)nx * sizeof(float));
        for (int step = 0; step < 4; step++) {
            cnn_model_zero_gradients(m[i]);
            CHECK_OK(cnn_model_forward(m[i], x, true, NULL));
            CHECK_OK(cnn_model_backward(m[i], y, &loss[i], dx[i]));
            CHECK_OK(cnn_model_apply_gradients(m[i]));
        }
    }
    CHECK(loss[0] == loss[1] && isfinite(loss[0]));
    CHECK(test_same_bits("mobile: input gradient", dx[0], dx[1], nx));
    int same = 1;
    for (int l = 0; l < m[0]->n_layers; l++)
        for (int p = 0; p < m[0]->layers[l]->n_params; p++) {
            const cnn_param *a = &m[0]->layers[l]->params[p], *b = &m[1]->layers[l]->params[p];
            char buf[96];
            snprintf(buf, sizeof buf, "mobile: layer %d %s", l, a->name);
            same &= test_same_bits(buf, a->value, b->value, a->count);
        }
    CHECK(same);
    /* and the trained models predict alike */
    const float *out[2];
    for (int i = 0; i < 2; i++)
        CHECK_OK(cnn_model_forward(m[i], x, false, &out[i]));
    CHECK(test_same_bits("mobile: predict", out[0], out[1], 32 * 3));
    for (int i = 0; i < 2; i++) {
        cnn_model_free(m[i]);
        free(dx[i]);
    }
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

int main(void)
{
    cnn_rng_seed(&rng, 1717);
    static const int bn_shapes[][2] = {{1, 1},    {63, 8},   {64, 8},  {65, 24},
                                       {1000, 1}, {4099, 3}, {777, 17}, {300, 40}};
    for (size_t i = 0; i < sizeof bn_shapes / sizeof *bn_shapes; i++)
        check_bn_blocks(bn_shapes[i][0], bn_shapes[i][1]);
    check_layers();
    check_smaller_batch();
    check_training();
    return test_finish("test_threads_few_channels");
}
