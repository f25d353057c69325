/* Conv2D: y = conv(x, kernel) + bias, kernel (kh, kw, in, filters).
 * Runs as GEMM on im2col tiles of at most TILE_FLOATS scratch floats, so
 * the scratch is bounded whatever the image size. */
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/activation.h"
#include "kernels/conv.h"
#include "kernels/conv_direct.h"
#include "layers/layer.h"

typedef struct {
    cnn_layer base;
    cnn_conv_geom geom;
} conv2d_layer;

/* Output rows per im2col tile: as many as fit in the model's workspace
 * limit (default 8 MiB: big enough for efficient GEMM tiles, small enough
 * that a 2000x2000 image never needs the whole im2col matrix). */
static int64_t tile_rows(const conv2d_layer *c, int batch, int64_t tile_floats)
{
    int64_t K = (int64_t)c->geom.kh * c->geom.kw * c->geom.c;
    int64_t M = (int64_t)batch * c->geom.oh * c->geom.ow;
    int64_t rows = tile_floats / K;
    if (rows < 1)
        rows = 1;
    return rows < M ? rows : M;
}

/* A 1x1, stride-1, unpadded convolution's columns are the input itself. */
static bool columns_are_input(const cnn_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pad_top == 0
        && g->pad_left == 0;
}

static cnn_status conv2d_infer(cnn_layer *l, cnn_shape in)
{
    conv2d_layer *c = (conv2d_layer *)l;
    const cnn_conv2d_config *k = &l->spec.u.conv2d;
    if (in.rank != 3)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (Conv2D): expects input of rank 3 (rows, cols, channels), got rank %d"
                        " (add a channel axis with cnn_tensor_expand_dims for grayscale data,"
                        " or no Flatten/Dense before Conv2D)",
                        l->name, in.rank);
    cnn_conv_geom *g = &c->geom;
    g->h = in.dims[0];
    g->w = in.dims[1];
    g->c = in.dims[2];
    g->kh = k->kernel_size[0];
    g->kw = k->kernel_size[1];
    g->sh = k->strides[0];
    g->sw = k->strides[1];
    g->dh = k->dilation_rate[0];
    g->dw = k->dilation_rate[1];
    int same = k->padding == CNN_PADDING_SAME;
    g->oh = cnn_conv_out_size(g->h, g->kh, g->sh, g->dh, same, &g->pad_top);
    g->ow = cnn_conv_out_size(g->w, g->kw, g->sw, g->dw, same, &g->pad_left);
    if (g->oh < 1 || g->ow < 1)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (Conv2D): kernel %dx%d (dilation %dx%d) is larger than its input"
                        " %dx%d with padding 'valid'",
                        l->name, g->kh, g->kw, g->dh, g->dw, g->h, g->w);
    int64_t K = (int64_t)g->kh * g->kw * g->c;
    if (K > INT32_MAX / 4 || K * k->filters > ((int64_t)1 << 40)
        || (int64_t)g->oh * g->ow * k->filters > INT32_MAX)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (Conv2D): too large (kernel %lld x %d weights, output %d x %d x %d)",
                        l->name, (long long)K, k->filters, g->oh, g->ow, k->filters);
    l->out = cnn_shape_hwc(g->oh, g->ow, k->filters);
    cnn_layer_set_param(l, 0, "kernel", 4, (int64_t[]){g->kh, g->kw, g->c, k->filters}, true);
    if (!k->no_bias)
        cnn_layer_set_param(l, 1, "bias", 1, (int64_t[]){k->filters}, true);
    return CNN_OK;
}

static void conv2d_init(cnn_layer *l, cnn_rng *rng)
{
    conv2d_layer *c = (conv2d_layer *)l;
    int64_t field = (int64_t)c->geom.kh * c->geom.kw;
    cnn_glorot_uniform(l->params[0].value, l->params[0].count, field * c->geom.c,
                       field * l->spec.u.conv2d.filters, rng);
    if (l->n_params > 1)
        memset(l->params[1].value, 0, (size_t)l->params[1].count * sizeof(float));
}

/* ---- The direct path (kernels/conv_direct.h) ------------------------------
 * For few input channels the direct kernels replace im2col + GEMM in the
 * forward and backward-weights passes (backward-data stays on the GEMM).
 * Measured with bench_cnn's conv mode (AVX-512, 1 thread, batch 64, 5x5,
 * best of 3 interleaved runs): at 1 channel and 32 filters on 28x28
 * forward 2.7x and backward-weights 3.6x the GEMM path; on 14x14 with 16
 * filters, 3, 6 and 8 channels 1.6-2.8x forward and 1.8x or more
 * backward-weights; at 32 channels and 32 filters the GEMM wins (0.6-0.8x),
 * its K being long enough. 8 is the cut on the safe side. */
enum { DIRECT_MAX_CHANNELS = 8 };

/* Floats per sample of the direct path's scratch: the padded sample, then
 * (backward) that sample's kernel and bias gradients. */
static int64_t direct_sample_floats(const conv2d_layer *c)
{
    const cnn_conv_geom *g = &c->geom;
    return cnn_conv_direct_sample_floats(g)
         + ((int64_t)g->kh * g->kw * g->c + 1) * c->base.spec.u.conv2d.filters;
}

/* Samples per direct block within the workspace limit; 0 when the shape
 * does not suit the direct kernels. */
static int64_t direct_block(const conv2d_layer *c, int batch, int64_t tile_floats)
{
    if (c->geom.c > DIRECT_MAX_CHANNELS || columns_are_input(&c->geom))
        return 0;
    int64_t per = direct_sample_floats(c), nb = tile_floats / per;
    if (nb < 1)
        return 0;
    return nb < batch ? nb : batch;
}

/* The direct kernels' instruction set follows the GEMM's micro-kernel (so
 * cnn_gemm_ctx_force_kernel selects both); the reference GEMM keeps the
 * reference im2col path, whose sums the pinned tests record. */
static bool direct_isa(const cnn_layer_io *io, cnn_isa *isa)
{
    const char *k = cnn_gemm_ctx_kernel_name(io->gemm);
    if (strcmp(k, "naive") == 0)
        return false;
    *isa = strcmp(k, "avx512") == 0 ? CNN_ISA_AVX512
         : strcmp(k, "avx2") == 0   ? CNN_ISA_AVX2
                                    : CNN_ISA_GENERIC;
    return true;
}

static size_t conv2d_workspace(const cnn_layer *l, int batch, int64_t tile_floats)
{
    const conv2d_layer *c = (const conv2d_layer *)l;
    size_t direct = (size_t)(direct_block(c, batch, tile_floats) * direct_sample_floats(c));
    if (columns_are_input(&c->geom))
        return 0;
    size_t gemm = (size_t)(tile_rows(c, batch, tile_floats) * c->geom.kh * c->geom.kw * c->geom.c);
    return direct > gemm ? direct : gemm;
}

static int64_t conv2d_flops(const cnn_layer *l)
{
    const conv2d_layer *c = (const conv2d_layer *)l;
    const cnn_conv_geom *g = &c->geom;
    return 2 * (int64_t)g->oh * g->ow * g->kh * g->kw * g->c * l->spec.u.conv2d.filters;
}

/* im2col of one tile, split across the pool by rows. */
typedef struct {
    const cnn_conv_geom *g;
    const float *x;
    int64_t m0, m1;
    float *col;
} im2col_job;

static void im2col_worker(void *p, int ith, int nth)
{
    im2col_job *j = p;
    long b, e;
    cnn_split_range((long)(j->m1 - j->m0), ith, nth, &b, &e);
    int64_t K = (int64_t)j->g->kh * j->g->kw * j->g->c;
    cnn_im2col_rows(j->g, j->x, j->m0 + b, j->m0 + e, j->col + b * K);
}

/* col2im of one tile across the pool. Output rows that are far enough
 * apart touch disjoint input rows, so the tile's output rows are cut into
 * chunks of `chunk` rows (chunk * stride >= kernel span): even chunks run in
 * parallel, then odd ones. Rows of different samples never collide. */
typedef struct {
    const cnn_conv_geom *g;
    const float *col;
    int64_t m0, m1;  /* pixel range of the tile */
    int64_t chunk;   /* output rows per chunk */
    int parity;
    float *dx;
} col2im_job;

static void col2im_worker(void *p, int ith, int nth)
{
    const col2im_job *j = p;
    const int64_t ow = j->g->ow, K = (int64_t)j->g->kh * j->g->kw * j->g->c;
    const int64_t first_row = j->m0 / ow, last_row = (j->m1 + ow - 1) / ow;
    int64_t chunks = (last_row - first_row + j->chunk - 1) / j->chunk;
    int k = 0;
    for (int64_t c = j->parity; c < chunks; c += 2, k++) {
        if (k % nth != ith)
            continue;
        int64_t a = (first_row + c * j->chunk) * ow, b = a + j->chunk * ow;
        a = a < j->m0 ? j->m0 : a;
        b = b > j->m1 ? j->m1 : b;
        cnn_col2im_rows_add(j->g, j->col + (a - j->m0) * K, a, b, j->dx);
    }
}

static void col2im(const cnn_conv_geom *g, const cnn_layer_io *io, int64_t m0, int64_t m1)
{
    int64_t span = (int64_t)(g->kh - 1) * g->dh + 1;
    col2im_job job = {g, io->workspace, m0, m1, (span + g->sh - 1) / g->sh, 0, io->dx};
    if (job.chunk < 1)
        job.chunk = 1;
    bool parallel = (m1 - m0) >= 4 * job.chunk * g->ow;
    for (job.parity = 0; job.parity < 2; job.parity++)
        cnn_pool_run(parallel ? io->pool : NULL, col2im_worker, &job);
}

static const float *columns(const conv2d_layer *c, const cnn_layer_io *io, int64_t m0, int64_t m1)
{
    const cnn_conv_geom *g = &c->geom;
    if (columns_are_input(g))
        return io->x + m0 * g->c;
    im2col_job job = {g, io->x, m0, m1, io->workspace};
    cnn_pool_run((m1 - m0) > 64 ? io->pool : NULL, im2col_worker, &job);
    return io->workspace;
}

/* One block of samples [n0, n0 + nb) on the direct path. Forward splits
 * the block's samples between the workers (each pads its own) or, for
 * fewer samples than that balances, its output rows (the caller pads);
 * backward-weights splits the samples, each worker writing its samples'
 * kernel and bias gradients to their own scratch, which
 * direct_reduce_worker then sums in a fixed pairwise order into the
 * layer's gradients. Either way each sum runs in the same order for any
 * number of threads. */
typedef struct {
    const conv2d_layer *c;
    const cnn_layer_io *io;
    cnn_isa isa;
    int64_t n0, nb;
    bool by_samples;
    float *xp;    /* nb padded samples */
    float *grads; /* backward: nb kernel gradients, after xp */
} direct_job;

/* Below this many multiply-adds per block one thread does it all, so a
 * batch of 1 never waits for a second thread to wake up: about 15 us of
 * work at 1 thread's speed here, several times a pool round trip
 * (batch-1 inference: the tutorial's conv1, 0.63 M, and LeNet-5's C1,
 * 0.12 M, stay on one thread; at batch 64 both split). */
#define DIRECT_PARALLEL_MACS 1000000.0

static void direct_forward_worker(void *p, int ith, int nth)
{
    const direct_job *j = p;
    const cnn_conv_geom *g = &j->c->geom;
    const cnn_layer *l = &j->c->base;
    const int F = l->spec.u.conv2d.filters;
    long b, e;
    int64_t r0, r1;
    if (j->by_samples) {
        cnn_split_range((long)j->nb, ith, nth, &b, &e);
        cnn_conv_direct_pad(g, j->io->x, j->n0 + b, e - b,
                            j->xp + b * cnn_conv_direct_sample_floats(g));
        r0 = (int64_t)b * g->oh;
        r1 = (int64_t)e * g->oh;
    } else {
        cnn_split_range((long)(j->nb * g->oh), ith, nth, &b, &e);
        r0 = b;
        r1 = e;
    }
    if (r0 >= r1)
        return;
    float *y = j->io->y + (j->n0 * g->oh + r0) * g->ow * F;
    cnn_conv_direct_forward(j->isa, g, F, j->xp, l->params[0].value,
                            l->n_params > 1 ? l->params[1].value : NULL, r0, r1, y);
    /* the activation on this worker's rows while they are in cache */
    if (j->io->fuse_activation)
        cnn_activation_forward(l->activation, y, (r1 - r0) * g->ow, F);
}

static double direct_macs(const conv2d_layer *c, int64_t samples)
{
    const cnn_conv_geom *g = &c->geom;
    return (double)samples * g->oh * g->ow * g->kh * g->kw * g->c * c->base.spec.u.conv2d.filters;
}

static void direct_forward(conv2d_layer *c, const cnn_layer_io *io, cnn_isa isa, int64_t nb)
{
    const int threads = cnn_pool_threads(io->pool);
    for (int64_t n0 = 0; n0 < io->batch; n0 += nb) {
        direct_job j = {.c = c, .io = io, .isa = isa, .n0 = n0,
                        .nb = io->batch - n0 < nb ? io->batch - n0 : nb, .xp = io->workspace};
        j.by_samples = j.nb % threads == 0 || j.nb >= 4 * threads;
        if (!j.by_samples)
            cnn_conv_direct_pad(&c->geom, io->x, n0, j.nb, j.xp);
        bool parallel = direct_macs(c, j.nb) >= DIRECT_PARALLEL_MACS;
        cnn_pool_run(parallel ? io->pool : NULL, direct_forward_worker, &j);
    }
}

static void direct_weights_worker(void *p, int ith, int nth)
{
    const direct_job *j = p;
    const cnn_conv_geom *g = &j->c->geom;
    const int F = j->c->base.spec.u.conv2d.filters, K = g->kh * g->kw * g->c;
    const int64_t sample = cnn_conv_direct_sample_floats(g), out = (int64_t)g->oh * g->ow * F;
    const bool bias = j->c->base.n_params > 1;
    long b, e;
    cnn_split_range((long)j->nb, ith, nth, &b, &e);
    for (int64_t s = b; s < e; s++) {
        /* this sample's kernel gradient, then its bias gradient */
        float *xp = j->xp + s * sample, *gs = j->grads + s * (K + 1) * F;
        cnn_conv_direct_pad(g, j->io->x, j->n0 + s, 1, xp);
        memset(gs, 0, (size_t)(K + 1) * F * sizeof(float));
        cnn_conv_direct_weights(j->isa, g, F, xp, j->io->dy + (j->n0 + s) * out, 1, 0, K, gs,
                                bias ? gs + (int64_t)K * F : NULL);
    }
}

static void direct_reduce_worker(void *p, int ith, int nth)
{
    const direct_job *j = p;
    const cnn_conv_geom *g = &j->c->geom;
    const int F = j->c->base.spec.u.conv2d.filters;
    const int64_t KF = ((int64_t)g->kh * g->kw * g->c + 1) * F, biases = KF - F;
    float *dk = j->c->base.params[0].grad;
    float *db = j->c->base.n_params > 1 ? j->c->base.params[1].grad : NULL;
    long b, e;
    cnn_split_range((long)KF, ith, nth, &b, &e);
    /* A pairwise tree over the samples, in place: more accurate than a
     * running sum, and for a power-of-two batch it adds the two halves
     * last, as data-parallel ranks of half the batch do (test_mpi.sh). */
    for (int64_t width = 1; width < j->nb; width *= 2)
        for (int64_t s = 0; s + width < j->nb; s += 2 * width) {
            float *a = j->grads + s * KF, *c = a + width * KF;
            for (int64_t i = b; i < e; i++)
                a[i] += c[i];
        }
    for (int64_t i = b; i < e; i++) {
        if (i < biases)
            dk[i] += j->grads[i];
        else if (db)
            db[i - biases] += j->grads[i];
    }
}

static void direct_weights(conv2d_layer *c, const cnn_layer_io *io, cnn_isa isa, int64_t nb)
{
    const int64_t sample = cnn_conv_direct_sample_floats(&c->geom);
    for (int64_t n0 = 0; n0 < io->batch; n0 += nb) {
        direct_job j = {.c = c, .io = io, .isa = isa, .n0 = n0,
                        .nb = io->batch - n0 < nb ? io->batch - n0 : nb, .xp = io->workspace};
        j.grads = j.xp + j.nb * sample;
        bool parallel = j.nb > 1 && direct_macs(c, j.nb) >= DIRECT_PARALLEL_MACS;
        cnn_pool_run(parallel ? io->pool : NULL, direct_weights_worker, &j);
        cnn_pool_run(parallel ? io->pool : NULL, direct_reduce_worker, &j);
    }
}

static void conv2d_forward(cnn_layer *l, const cnn_layer_io *io)
{
    conv2d_layer *c = (conv2d_layer *)l;
    const cnn_conv_geom *g = &c->geom;
    const int K = g->kh * g->kw * g->c, F = l->spec.u.conv2d.filters;
    const int64_t M = (int64_t)io->batch * g->oh * g->ow, tile = tile_rows(c, io->batch, io->tile_floats);
    cnn_isa isa;
    int64_t nb = direct_block(c, io->batch, io->tile_floats);
    if (nb > 0 && direct_isa(io, &isa)) {
        direct_forward(c, io, isa, nb);
        return;
    }
    for (int64_t m0 = 0; m0 < M; m0 += tile) {
        int64_t m1 = m0 + tile < M ? m0 + tile : M;
        const float *col = columns(c, io, m0, m1);
        float *y = io->y + m0 * F;
        /* y[rows x F] = col[rows x K] * kernel[K x F] */
        cnn_layer_gemm(io, false, false, (int)(m1 - m0), F, K, col, K, l->params[0].value, F, 0.0f,
                       y, F);
        if (l->n_params > 1)
            cnn_add_bias_rows(y, l->params[1].value, m1 - m0, F);
        if (io->fuse_activation)
            cnn_activation_forward(l->activation, y, m1 - m0, F);
    }
}

static void conv2d_backward(cnn_layer *l, const cnn_layer_io *io)
{
    conv2d_layer *c = (conv2d_layer *)l;
    const cnn_conv_geom *g = &c->geom;
    const int K = g->kh * g->kw * g->c, F = l->spec.u.conv2d.filters;
    const int64_t M = (int64_t)io->batch * g->oh * g->ow, tile = tile_rows(c, io->batch, io->tile_floats);
    const bool direct = columns_are_input(g);
    cnn_isa isa;
    int64_t nb = direct_block(c, io->batch, io->tile_floats);
    const bool weights_direct = nb > 0 && direct_isa(io, &isa);
    if (io->dx)
        memset(io->dx, 0, (size_t)io->batch * g->h * g->w * g->c * sizeof(float));
    if (weights_direct) {
        if (io->fuse_activation)
            cnn_activation_backward(l->activation, io->y, io->dy, M, F);
        direct_weights(c, io, isa, nb); /* and the bias's */
        if (!io->dx)
            return;
    }
    for (int64_t m0 = 0; m0 < M; m0 += tile) {
        int64_t m1 = m0 + tile < M ? m0 + tile : M;
        int rows = (int)(m1 - m0);
        float *dy = io->dy + m0 * F;
        if (!weights_direct) {
            if (io->fuse_activation)
                cnn_activation_backward(l->activation, io->y + m0 * F, dy, rows, F);
            const float *col = columns(c, io, m0, m1);
            /* dkernel[K x F] += col^T[K x rows] * dy[rows x F] */
            cnn_layer_gemm(io, true, false, K, F, rows, col, K, dy, F, 1.0f, l->params[0].grad, F);
            if (l->n_params > 1)
                cnn_bias_grad_rows(dy, rows, F, l->params[1].grad);
        }
        if (!io->dx)
            continue;
        if (direct) {
            /* dx rows = dy * kernel^T directly */
            cnn_layer_gemm(io, false, true, rows, K, F, dy, F, l->params[0].value, F, 0.0f,
                           io->dx + m0 * g->c, K);
            continue;
        }
        /* dcol[rows x K] = dy[rows x F] * kernel^T, reusing the column scratch */
        cnn_layer_gemm(io, false, true, rows, K, F, dy, F, l->params[0].value, F, 0.0f,
                       io->workspace, K);
        col2im(g, io, m0, m1);
    }
}

static cnn_status cnn_layer_conv2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                          const char *name);

/* The fields in Keras's positional order, which is the order of the
 * model file's record. */
static const cnn_layer_field conv2d_fields[] = {
    {"filters", CNN_FIELD_COUNT, CNN_SPEC_FIELD(conv2d.filters),
     CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    {"kernel_size", CNN_FIELD_PAIR, CNN_SPEC_FIELD(conv2d.kernel_size),
     CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    {"strides", CNN_FIELD_PAIR, CNN_SPEC_FIELD(conv2d.strides), CNN_FIELD_POSITIONAL, 0},
    {"padding", CNN_FIELD_PADDING, CNN_SPEC_FIELD(conv2d.padding), CNN_FIELD_POSITIONAL, 0},
    {"dilation_rate", CNN_FIELD_PAIR, CNN_SPEC_FIELD(conv2d.dilation_rate), 0, 0},
    {"activation", CNN_FIELD_ACTIVATION, CNN_SPEC_FIELD(conv2d.activation), 0, 0},
    {"use_bias", CNN_FIELD_USE_BIAS, CNN_SPEC_FIELD(conv2d.no_bias), 0, 0},
    {"kernel_regularizer", CNN_FIELD_L2, CNN_SPEC_FIELD(conv2d.kernel_l2), CNN_FIELD_EXTENSION, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(conv2d.name), 0, 0},
};

const cnn_layer_ops cnn_conv2d_ops = {
    .create = cnn_layer_conv2d_create,
    .kind = CNN_LAYER_CONV2D,
    .can_fuse_activation = true,
    .type_name = "Conv2D",
    .auto_name = "conv2d",
    .infer = conv2d_infer,
    .init = conv2d_init,
    .workspace_floats = conv2d_workspace,
    .flops = conv2d_flops,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    CNN_LAYER_FIELDS(conv2d_fields),
    .keras_keys = "filters kernel_size strides padding data_format dilation_rate groups "
                  "activation use_bias kernel_initializer bias_initializer "
                  "kernel_regularizer bias_regularizer activity_regularizer "
                  "kernel_constraint bias_constraint",
    .keras_build_config = true,
};

static cnn_status check_pair(const char *layer, const char *field, const int v[2], int min)
{
    if (v[0] < min || v[1] < min || v[0] > CNN_CONV_MAX_WINDOW || v[1] > CNN_CONV_MAX_WINDOW)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (Conv2D): %s must be in [%d, %d], got (%d, %d)", layer, field, min,
                        CNN_CONV_MAX_WINDOW, v[0], v[1]);
    return CNN_OK;
}

static cnn_status cnn_layer_conv2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                          const char *name)
{
    *out = NULL;
    cnn_conv2d_config k = spec->u.conv2d;
    if (!k.strides[0] && !k.strides[1])
        k.strides[0] = k.strides[1] = 1;
    if (!k.dilation_rate[0] && !k.dilation_rate[1])
        k.dilation_rate[0] = k.dilation_rate[1] = 1;
    if (k.filters < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (Conv2D): filters must be >= 1, got %d",
                        name, k.filters);
    cnn_status st;
    if ((st = check_pair(name, "kernel_size", k.kernel_size, 1))
        || (st = check_pair(name, "strides", k.strides, 1))
        || (st = check_pair(name, "dilation_rate", k.dilation_rate, 1)))
        return st;
    if ((k.strides[0] > 1 || k.strides[1] > 1)
        && (k.dilation_rate[0] > 1 || k.dilation_rate[1] > 1))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (Conv2D): strides > 1 cannot be combined with dilation_rate > 1"
                        " (as in Keras)",
                        name);
    if (k.padding != CNN_PADDING_VALID && k.padding != CNN_PADDING_SAME)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (Conv2D): padding must be valid or same",
                        name);
    if ((unsigned)k.activation >= CNN_ACTIVATION_COUNT)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (Conv2D): unknown activation %d", name,
                        (int)k.activation);
    cnn_layer *l;
    if ((st = cnn_layer_alloc(&l, sizeof(conv2d_layer), &cnn_conv2d_ops, name)))
        return st;
    l->spec.kind = CNN_LAYER_CONV2D;
    l->spec.u.conv2d = k;
    l->activation = k.activation;
    *out = l;
    return CNN_OK;
}
