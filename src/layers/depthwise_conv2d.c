/* DepthwiseConv2D and SeparableConv2D (cnn.h). With M = depth_multiplier,
 * input channel c feeds output channels c*M .. c*M + M-1:
 *
 *   depthwise: d[p, c*M + k] = sum_{ky,kx} x[tap(p, ky, kx), c] * K[ky, kx, c, k]
 *   separable: y = d * P + bias, P the pointwise kernel (1, 1, C*M, filters)
 *
 * over output pixels p = (n * oh + oy) * ow + ox, with Conv2D's padding,
 * strides and dilation (cnn_conv_geom). Forward splits pixels between the
 * workers. Backward splits channels (each worker owns its kernel and dx
 * channels) when there are many; with few (DepthwiseConv2D below
 * DW_FEW_CHANNELS) it splits the batch into chunks of samples fixed by the
 * shape alone: each worker writes its chunks' dx (no two samples share a
 * dx cell) and each chunk's kernel gradient to its own slice of the
 * workspace, which the caller adds in chunk order. Either way results do
 * not depend on the thread count (a caller without a workspace gets the
 * channel split, whose kernel gradient rounds differently). SeparableConv2D
 * works on tiles of pixels within the workspace limit, recomputing d in
 * backward rather than keeping it. */
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/activation.h"
#include "kernels/conv.h"
#include "kernels/depthwise.h"
#include "layers/layer.h"

typedef struct {
    cnn_layer base;
    cnn_conv_geom geom; /* kh, kw, c: the input; the depthwise kernel's window */
    int mult;           /* depth_multiplier */
} dw_layer;

/* ---- The depthwise maths over a range of output pixels ------------------- */

typedef struct {
    const cnn_conv_geom *g;
    int mult;
    const float *x, *kernel;
    int64_t m0, m1;
    float *d;        /* forward: (m1 - m0) rows of C*M, written */
    const float *dd; /* backward: dLoss/dd, (m1 - m0) rows of C*M */
    float *dkernel;  /* backward: += */
    float *dx;       /* backward: +=, or NULL */
    /* the sample split: */
    int64_t chunk_pixels; /* output pixels per chunk */
    int chunks;
    float *partials;      /* chunks x the kernel's size (workspace) */
} dw_job;

static void dw_forward_worker(void *p, int ith, int nth)
{
    const dw_job *j = p;
    const int CM = j->g->c * j->mult;
    long b, e;
    cnn_split_range((long)(j->m1 - j->m0), ith, nth, &b, &e);
    cnn_depthwise_forward(CNN_ISA_AUTO, j->g, j->mult, j->x, j->kernel, j->m0 + b, j->m0 + e,
                          j->d + (int64_t)b * CM);
}

/* Backward splits the channels between threads in whole blocks of 8, the
 * narrowest vector body of the kernels: an uneven share (4 of MobileNet's 8
 * channels each) would run entirely in the scalar tail, 7 times the
 * instructions of one thread doing all 8 in vectors. Each channel's result
 * is the same bits whoever computes it (kernels/isa.h). */
#define DW_CHANNEL_BLOCK 8

static void dw_backward_worker(void *p, int ith, int nth)
{
    const dw_job *j = p;
    long b0, b1;
    cnn_split_range((j->g->c + DW_CHANNEL_BLOCK - 1) / DW_CHANNEL_BLOCK, ith, nth, &b0, &b1);
    long c0 = b0 * DW_CHANNEL_BLOCK, c1 = b1 * DW_CHANNEL_BLOCK;
    if (c1 > j->g->c)
        c1 = j->g->c;
    if (c0 >= c1)
        return;
    cnn_depthwise_backward(CNN_ISA_AUTO, j->g, j->mult, j->x, j->kernel, j->dd, j->m0, j->m1,
                           (int)c0, (int)c1, j->dkernel, j->dx);
}

/* Backward over fewer output channels than this (fewer than 4 blocks: 8
 * and 16 in MobileNet's first layers) splits the samples; a sample chunk
 * holds ceil(batch / DW_MAX_CHUNKS) samples (32: 16 chunks of 2). */
#define DW_FEW_CHANNELS (4 * DW_CHANNEL_BLOCK)
#define DW_MAX_CHUNKS 16

static bool splits_samples(const dw_layer *dl)
{
    return dl->base.spec.kind == CNN_LAYER_DEPTHWISE_CONV2D
        && (int64_t)dl->geom.c * dl->mult < DW_FEW_CHANNELS;
}

static int chunk_samples(int batch)
{
    return (batch + DW_MAX_CHUNKS - 1) / DW_MAX_CHUNKS;
}

static void dw_backward_samples_worker(void *p, int ith, int nth)
{
    const dw_job *j = p;
    const int64_t CM = (int64_t)j->g->c * j->mult, K = (int64_t)j->g->kh * j->g->kw * CM;
    long q0, q1;
    cnn_split_range(j->chunks, ith, nth, &q0, &q1);
    for (long q = q0; q < q1; q++) {
        const int64_t m0 = q * j->chunk_pixels;
        const int64_t m1 = m0 + j->chunk_pixels < j->m1 ? m0 + j->chunk_pixels : j->m1;
        float *dk = j->partials + q * K;
        memset(dk, 0, (size_t)K * sizeof(float));
        cnn_depthwise_backward(CNN_ISA_AUTO, j->g, j->mult, j->x, j->kernel, j->dd + m0 * CM,
                               m0, m1, 0, j->g->c, dk, j->dx);
    }
}

/* The chunks' kernel gradients: chunks x kh x kw x C x M floats, for any
 * batch up to `batch` (which may have more chunks than `batch` itself:
 * 20 has 10 of 2, 16 has 16 of 1), so min(batch, DW_MAX_CHUNKS) of them. */
static size_t dw_workspace(const cnn_layer *l, int batch, int64_t tile_floats)
{
    (void)tile_floats;
    const dw_layer *dl = (const dw_layer *)l;
    if (!splits_samples(dl))
        return 0;
    return (size_t)(batch < DW_MAX_CHUNKS ? batch : DW_MAX_CHUNKS) * (size_t)l->params[0].count;
}

/* work = output values x depth multiplier. Below 64K a split costs more
 * than it saves: the other core reads the input through its own cache
 * (batch-1 MobileNetV1 on 2 threads: 0.44 ms at 4K, 0.36 ms at 64K). */
static cnn_pool *pool_for(const cnn_layer_io *io, int64_t work)
{
    return work >= 65536 ? io->pool : NULL;
}

static void depthwise_forward(const dw_layer *dl, const cnn_layer_io *io, int64_t m0, int64_t m1,
                              float *d)
{
    dw_job job = {.g = &dl->geom, .mult = dl->mult, .x = io->x,
                  .kernel = dl->base.params[0].value, .m0 = m0, .m1 = m1, .d = d};
    cnn_pool_run(pool_for(io, (m1 - m0) * dl->geom.c * dl->mult), dw_forward_worker, &job);
}

static void depthwise_backward(const dw_layer *dl, const cnn_layer_io *io, int64_t m0, int64_t m1,
                               const float *dd)
{
    dw_job job = {.g = &dl->geom, .mult = dl->mult, .x = io->x,
                  .kernel = dl->base.params[0].value, .m0 = m0, .m1 = m1, .dd = dd,
                  .dkernel = dl->base.params[0].grad, .dx = io->dx};
    cnn_pool_run(dl->geom.c > DW_CHANNEL_BLOCK ? pool_for(io, (m1 - m0) * dl->geom.c * dl->mult)
                                               : NULL,
                 dw_backward_worker, &job);
}

/* DepthwiseConv2D's backward over the whole batch by sample chunks (see
 * the top of the file): the same bits whatever the thread count. */
static void depthwise_backward_samples(const dw_layer *dl, const cnn_layer_io *io)
{
    const cnn_param *k = &dl->base.params[0];
    const int S = chunk_samples(io->batch);
    const int64_t plane = (int64_t)dl->geom.oh * dl->geom.ow;
    dw_job job = {.g = &dl->geom, .mult = dl->mult, .x = io->x, .kernel = k->value, .m0 = 0,
                  .m1 = io->batch * plane, .dd = io->dy, .dx = io->dx, .chunk_pixels = S * plane,
                  .chunks = (io->batch + S - 1) / S, .partials = io->workspace};
    cnn_pool_run(pool_for(io, job.m1 * dl->geom.c * dl->mult), dw_backward_samples_worker, &job);
    for (int q = 0; q < job.chunks; q++) {
        const float *part = job.partials + (int64_t)q * k->count;
        for (int64_t i = 0; i < k->count; i++)
            k->grad[i] += part[i];
    }
}

/* ---- Shapes, shared by both kinds ------------------------------------------ */

typedef struct {
    const int *kernel_size, *strides, *dilation_rate;
    cnn_padding padding;
    int mult, filters; /* filters 0: depthwise only */
} dw_shape;

static dw_shape shape_of(const cnn_layer *l)
{
    if (l->spec.kind == CNN_LAYER_SEPARABLE_CONV2D) {
        const cnn_separable_conv2d_config *k = &l->spec.u.separable_conv2d;
        return (dw_shape){k->kernel_size, k->strides, k->dilation_rate, k->padding,
                          k->depth_multiplier, k->filters};
    }
    const cnn_depthwise_conv2d_config *k = &l->spec.u.depthwise_conv2d;
    return (dw_shape){k->kernel_size, k->strides, k->dilation_rate, k->padding,
                      k->depth_multiplier, 0};
}

static cnn_status dw_infer(cnn_layer *l, cnn_shape in)
{
    dw_layer *dl = (dw_layer *)l;
    const char *type = l->ops->type_name;
    dw_shape s = shape_of(l);
    if (in.rank != 3)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (%s): expects input of rank 3 (rows, cols, channels), got rank %d",
                        l->name, type, in.rank);
    cnn_conv_geom *g = &dl->geom;
    *g = (cnn_conv_geom){.h = in.dims[0], .w = in.dims[1], .c = in.dims[2],
                         .kh = s.kernel_size[0], .kw = s.kernel_size[1], .sh = s.strides[0],
                         .sw = s.strides[1], .dh = s.dilation_rate[0], .dw = s.dilation_rate[1]};
    int same = s.padding == CNN_PADDING_SAME;
    g->oh = cnn_conv_out_size(g->h, g->kh, g->sh, g->dh, same, &g->pad_top);
    g->ow = cnn_conv_out_size(g->w, g->kw, g->sw, g->dw, same, &g->pad_left);
    dl->mult = s.mult;
    if (g->oh < 1 || g->ow < 1)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (%s): kernel %dx%d (dilation %dx%d) is larger than its input %dx%d"
                        " with padding 'valid'",
                        l->name, type, g->kh, g->kw, g->dh, g->dw, g->h, g->w);
    int64_t cm = (int64_t)g->c * s.mult, window = (int64_t)g->kh * g->kw;
    int64_t out_c = s.filters ? s.filters : cm;
    if (cm > INT32_MAX / 4 || window * cm > ((int64_t)1 << 40) || cm * s.filters > ((int64_t)1 << 40)
        || (int64_t)g->oh * g->ow * (cm > out_c ? cm : out_c) > INT32_MAX)
        return cnn_fail(CNN_ERR_SHAPE, "%s (%s): too large (%d channels x depth_multiplier %d,"
                        " output %d x %d)", l->name, type, g->c, s.mult, g->oh, g->ow);
    l->out = cnn_shape_hwc(g->oh, g->ow, (int)out_c);
    cnn_layer_set_param(l, 0, "depthwise_kernel", 4,
                        (int64_t[]){g->kh, g->kw, g->c, s.mult}, true);
    if (s.filters)
        cnn_layer_set_param(l, 1, "pointwise_kernel", 4, (int64_t[]){1, 1, cm, s.filters}, true);
    bool bias = !(l->spec.kind == CNN_LAYER_SEPARABLE_CONV2D ? l->spec.u.separable_conv2d.no_bias
                                                              : l->spec.u.depthwise_conv2d.no_bias);
    if (bias)
        cnn_layer_set_param(l, s.filters ? 2 : 1, "bias", 1, (int64_t[]){out_c}, true);
    return CNN_OK;
}

/* Keras's glorot_uniform for both kernels: a (kh, kw, in, out) kernel has
 * fan_in = kh kw in, fan_out = kh kw out. */
static void dw_init(cnn_layer *l, cnn_rng *rng)
{
    for (int p = 0; p < l->n_params; p++) {
        cnn_param *w = &l->params[p];
        if (w->rank == 4) {
            int64_t field = w->dims[0] * w->dims[1];
            cnn_glorot_uniform(w->value, w->count, field * w->dims[2], field * w->dims[3], rng);
        } else {
            memset(w->value, 0, (size_t)w->count * sizeof(float));
        }
    }
}

static int64_t dw_flops(const cnn_layer *l)
{
    const dw_layer *dl = (const dw_layer *)l;
    const cnn_conv_geom *g = &dl->geom;
    int64_t pixels = (int64_t)g->oh * g->ow, cm = (int64_t)g->c * dl->mult;
    int64_t f = 2 * pixels * g->kh * g->kw * cm;
    if (l->spec.kind == CNN_LAYER_SEPARABLE_CONV2D)
        f += 2 * pixels * cm * l->spec.u.separable_conv2d.filters;
    return f;
}

/* ---- DepthwiseConv2D ---------------------------------------------------------- */

static int64_t out_pixels(const dw_layer *dl, int batch)
{
    return (int64_t)batch * dl->geom.oh * dl->geom.ow;
}

static void depthwise_layer_forward(cnn_layer *l, const cnn_layer_io *io)
{
    dw_layer *dl = (dw_layer *)l;
    int64_t M = out_pixels(dl, io->batch);
    depthwise_forward(dl, io, 0, M, io->y);
    if (l->n_params > 1)
        cnn_add_bias_rows(io->y, l->params[1].value, M, dl->geom.c * dl->mult);
}

static void depthwise_layer_backward(cnn_layer *l, const cnn_layer_io *io)
{
    dw_layer *dl = (dw_layer *)l;
    const cnn_conv_geom *g = &dl->geom;
    int64_t M = out_pixels(dl, io->batch);
    if (l->n_params > 1)
        cnn_bias_grad_rows(io->dy, M, g->c * dl->mult, l->params[1].grad);
    if (io->dx)
        memset(io->dx, 0, (size_t)io->batch * g->h * g->w * g->c * sizeof(float));
    if (splits_samples(dl) && io->workspace)
        depthwise_backward_samples(dl, io);
    else
        depthwise_backward(dl, io, 0, M, io->dy);
}

static cnn_status cnn_layer_depthwise_conv2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                                    const char *name);
static cnn_status cnn_layer_separable_conv2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                                    const char *name);

/* The fields in Keras's positional order, which is the order of the
 * model file's record. */
static const cnn_layer_field depthwise_conv2d_fields[] = {
    {"kernel_size", CNN_FIELD_PAIR, CNN_SPEC_FIELD(depthwise_conv2d.kernel_size),
     CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    {"strides", CNN_FIELD_PAIR, CNN_SPEC_FIELD(depthwise_conv2d.strides), CNN_FIELD_POSITIONAL, 0},
    {"padding", CNN_FIELD_PADDING, CNN_SPEC_FIELD(depthwise_conv2d.padding),
     CNN_FIELD_POSITIONAL, 0},
    {"depth_multiplier", CNN_FIELD_COUNT, CNN_SPEC_FIELD(depthwise_conv2d.depth_multiplier),
     CNN_FIELD_POSITIONAL, 0},
    {"dilation_rate", CNN_FIELD_PAIR, CNN_SPEC_FIELD(depthwise_conv2d.dilation_rate), 0, 0},
    {"activation", CNN_FIELD_ACTIVATION, CNN_SPEC_FIELD(depthwise_conv2d.activation), 0, 0},
    {"use_bias", CNN_FIELD_USE_BIAS, CNN_SPEC_FIELD(depthwise_conv2d.no_bias), 0, 0},
    {"depthwise_regularizer", CNN_FIELD_L2, CNN_SPEC_FIELD(depthwise_conv2d.depthwise_l2), 0, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(depthwise_conv2d.name), 0, 0},
};

const cnn_layer_ops cnn_depthwise_conv2d_ops = {
    .create = cnn_layer_depthwise_conv2d_create,
    .kind = CNN_LAYER_DEPTHWISE_CONV2D,
    .type_name = "DepthwiseConv2D",
    .auto_name = "depthwise_conv2d",
    .infer = dw_infer,
    .init = dw_init,
    .flops = dw_flops,
    .workspace_floats = dw_workspace,
    .forward = depthwise_layer_forward,
    .backward = depthwise_layer_backward,
    CNN_LAYER_FIELDS(depthwise_conv2d_fields),
    .keras_keys = "kernel_size strides padding data_format dilation_rate activation "
                  "use_bias bias_initializer bias_regularizer activity_regularizer "
                  "bias_constraint depth_multiplier depthwise_initializer "
                  "depthwise_regularizer depthwise_constraint",
    .keras_build_config = true,
};

/* ---- SeparableConv2D: tiles of pixels ------------------------------------------ */

/* Pixels per tile: d and dd (C*M floats each per pixel) within the
 * workspace limit. */
static int64_t sep_tile(const dw_layer *dl, int batch, int64_t tile_floats)
{
    int64_t per = 2 * (int64_t)dl->geom.c * dl->mult, rows = tile_floats / per;
    int64_t M = out_pixels(dl, batch);
    if (rows < 1)
        rows = 1;
    return rows < M ? rows : M;
}

static size_t sep_workspace(const cnn_layer *l, int batch, int64_t tile_floats)
{
    const dw_layer *dl = (const dw_layer *)l;
    return (size_t)(sep_tile(dl, batch, tile_floats) * 2 * dl->geom.c * dl->mult);
}

static void sep_forward(cnn_layer *l, const cnn_layer_io *io)
{
    dw_layer *dl = (dw_layer *)l;
    const int CM = dl->geom.c * dl->mult, F = l->spec.u.separable_conv2d.filters;
    const int64_t M = out_pixels(dl, io->batch), tile = sep_tile(dl, io->batch, io->tile_floats);
    for (int64_t m0 = 0; m0 < M; m0 += tile) {
        int64_t m1 = m0 + tile < M ? m0 + tile : M;
        float *y = io->y + m0 * F;
        depthwise_forward(dl, io, m0, m1, io->workspace);
        /* y[rows x F] = d[rows x CM] * P[CM x F] */
        cnn_gemm(io->gemm, false, false, (int)(m1 - m0), F, CM, 1.0f, io->workspace, CM,
                 l->params[1].value, F, 0.0f, y, F);
        if (l->n_params > 2)
            cnn_add_bias_rows(y, l->params[2].value, m1 - m0, F);
    }
}

static void sep_backward(cnn_layer *l, const cnn_layer_io *io)
{
    dw_layer *dl = (dw_layer *)l;
    const cnn_conv_geom *g = &dl->geom;
    const int CM = g->c * dl->mult, F = l->spec.u.separable_conv2d.filters;
    const int64_t M = out_pixels(dl, io->batch), tile = sep_tile(dl, io->batch, io->tile_floats);
    if (io->dx)
        memset(io->dx, 0, (size_t)io->batch * g->h * g->w * g->c * sizeof(float));
    for (int64_t m0 = 0; m0 < M; m0 += tile) {
        int64_t m1 = m0 + tile < M ? m0 + tile : M;
        int rows = (int)(m1 - m0);
        const float *dy = io->dy + m0 * F;
        float *d = io->workspace, *dd = io->workspace + tile * CM;
        if (l->n_params > 2)
            cnn_bias_grad_rows(dy, rows, F, l->params[2].grad);
        depthwise_forward(dl, io, m0, m1, d);
        /* dP[CM x F] += d^T[CM x rows] * dy[rows x F] */
        cnn_gemm(io->gemm, true, false, CM, F, rows, 1.0f, d, CM, dy, F, 1.0f,
                 l->params[1].grad, F);
        /* dd[rows x CM] = dy[rows x F] * P^T */
        cnn_gemm(io->gemm, false, true, rows, CM, F, 1.0f, dy, F, l->params[1].value, F, 0.0f,
                 dd, CM);
        depthwise_backward(dl, io, m0, m1, dd);
    }
}

static const cnn_layer_field separable_conv2d_fields[] = {
    {"filters", CNN_FIELD_COUNT, CNN_SPEC_FIELD(separable_conv2d.filters),
     CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    {"kernel_size", CNN_FIELD_PAIR, CNN_SPEC_FIELD(separable_conv2d.kernel_size),
     CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    {"strides", CNN_FIELD_PAIR, CNN_SPEC_FIELD(separable_conv2d.strides), CNN_FIELD_POSITIONAL, 0},
    {"padding", CNN_FIELD_PADDING, CNN_SPEC_FIELD(separable_conv2d.padding),
     CNN_FIELD_POSITIONAL, 0},
    {"depth_multiplier", CNN_FIELD_COUNT, CNN_SPEC_FIELD(separable_conv2d.depth_multiplier), 0, 0},
    {"dilation_rate", CNN_FIELD_PAIR, CNN_SPEC_FIELD(separable_conv2d.dilation_rate), 0, 0},
    {"activation", CNN_FIELD_ACTIVATION, CNN_SPEC_FIELD(separable_conv2d.activation), 0, 0},
    {"use_bias", CNN_FIELD_USE_BIAS, CNN_SPEC_FIELD(separable_conv2d.no_bias), 0, 0},
    {"depthwise_regularizer", CNN_FIELD_L2, CNN_SPEC_FIELD(separable_conv2d.depthwise_l2), 0, 0},
    {"pointwise_regularizer", CNN_FIELD_L2, CNN_SPEC_FIELD(separable_conv2d.pointwise_l2), 0, 1},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(separable_conv2d.name), 0, 0},
};

const cnn_layer_ops cnn_separable_conv2d_ops = {
    .create = cnn_layer_separable_conv2d_create,
    .kind = CNN_LAYER_SEPARABLE_CONV2D,
    .type_name = "SeparableConv2D",
    .auto_name = "separable_conv2d",
    .infer = dw_infer,
    .init = dw_init,
    .workspace_floats = sep_workspace,
    .flops = dw_flops,
    .forward = sep_forward,
    .backward = sep_backward,
    CNN_LAYER_FIELDS(separable_conv2d_fields),
    .class_alias = "SeparableConvolution2D",
    .keras_keys = "filters kernel_size strides padding data_format dilation_rate "
                  "depth_multiplier activation use_bias depthwise_initializer "
                  "pointwise_initializer bias_initializer depthwise_regularizer "
                  "pointwise_regularizer bias_regularizer activity_regularizer "
                  "depthwise_constraint pointwise_constraint bias_constraint",
    .keras_build_config = true,
};

/* ---- Creation --------------------------------------------------------------- */

static cnn_status check_pair(const char *layer, const char *type, const char *field,
                             const int v[2])
{
    if (v[0] < 1 || v[1] < 1 || v[0] > CNN_CONV_MAX_WINDOW || v[1] > CNN_CONV_MAX_WINDOW)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (%s): %s must be in [1, %d], got (%d, %d)",
                        layer, type, field, CNN_CONV_MAX_WINDOW, v[0], v[1]);
    return CNN_OK;
}

/* Defaults and checks shared by both kinds; the fields are the kind's own. */
static cnn_status check_common(const char *name, const char *type, int *kernel_size, int *strides,
                               int *dilation_rate, cnn_padding padding, int *mult,
                               cnn_activation activation)
{
    if (!strides[0] && !strides[1])
        strides[0] = strides[1] = 1;
    if (!dilation_rate[0] && !dilation_rate[1])
        dilation_rate[0] = dilation_rate[1] = 1;
    if (*mult == 0)
        *mult = 1;
    cnn_status st;
    if ((st = check_pair(name, type, "kernel_size", kernel_size))
        || (st = check_pair(name, type, "strides", strides))
        || (st = check_pair(name, type, "dilation_rate", dilation_rate)))
        return st;
    if (*mult < 1 || *mult > 65536)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (%s): depth_multiplier must be in [1, 65536], got %d", name, type,
                        *mult);
    if ((strides[0] > 1 || strides[1] > 1) && (dilation_rate[0] > 1 || dilation_rate[1] > 1))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (%s): strides > 1 cannot be combined with dilation_rate > 1 (as in"
                        " Keras)",
                        name, type);
    if (padding != CNN_PADDING_VALID && padding != CNN_PADDING_SAME)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (%s): padding must be valid or same", name,
                        type);
    if ((unsigned)activation >= CNN_ACTIVATION_COUNT)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (%s): unknown activation %d", name, type,
                        (int)activation);
    return CNN_OK;
}

static cnn_status cnn_layer_depthwise_conv2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                                    const char *name)
{
    *out = NULL;
    cnn_depthwise_conv2d_config k = spec->u.depthwise_conv2d;
    cnn_status st = check_common(name, "DepthwiseConv2D", k.kernel_size, k.strides,
                                 k.dilation_rate, k.padding, &k.depth_multiplier, k.activation);
    if (st || (st = cnn_layer_alloc(out, sizeof(dw_layer), &cnn_depthwise_conv2d_ops, name)))
        return st;
    (*out)->spec.kind = CNN_LAYER_DEPTHWISE_CONV2D;
    (*out)->spec.u.depthwise_conv2d = k;
    (*out)->activation = k.activation;
    return CNN_OK;
}

static cnn_status cnn_layer_separable_conv2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                                    const char *name)
{
    *out = NULL;
    cnn_separable_conv2d_config k = spec->u.separable_conv2d;
    if (k.filters < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (SeparableConv2D): filters must be >= 1, got %d", name, k.filters);
    cnn_status st = check_common(name, "SeparableConv2D", k.kernel_size, k.strides,
                                 k.dilation_rate, k.padding, &k.depth_multiplier, k.activation);
    if (st || (st = cnn_layer_alloc(out, sizeof(dw_layer), &cnn_separable_conv2d_ops, name)))
        return st;
    (*out)->spec.kind = CNN_LAYER_SEPARABLE_CONV2D;
    (*out)->spec.u.separable_conv2d = k;
    (*out)->activation = k.activation;
    return CNN_OK;
}
