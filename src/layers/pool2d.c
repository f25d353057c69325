/* MaxPooling2D and AveragePooling2D: pool_size, strides (default =
 * pool_size), padding with TensorFlow's rule. No parameters. The work is
 * split across the model's threads by output rows. */
#include <string.h>

#include "core/error.h"
#include "kernels/pool.h"
#include "layers/layer.h"

typedef struct {
    cnn_layer base;
    cnn_conv_geom geom;
} pool2d_layer;

static cnn_status pool2d_infer(cnn_layer *l, cnn_shape in)
{
    pool2d_layer *p = (pool2d_layer *)l;
    if (in.rank != 3)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (%s): expects input of rank 3 (rows, cols, channels), got rank %d",
                        l->name, l->ops->type_name, in.rank);
    cnn_conv_geom *g = &p->geom;
    const cnn_pool2d_config *k = &l->spec.u.pool2d;
    *g = (cnn_conv_geom){.h = in.dims[0], .w = in.dims[1], .c = in.dims[2],
                         .kh = k->pool_size[0], .kw = k->pool_size[1],
                         .sh = k->strides[0], .sw = k->strides[1], .dh = 1, .dw = 1};
    int same = k->padding == CNN_PADDING_SAME;
    g->oh = cnn_conv_out_size(g->h, g->kh, g->sh, 1, same, &g->pad_top);
    g->ow = cnn_conv_out_size(g->w, g->kw, g->sw, 1, same, &g->pad_left);
    if (g->oh < 1 || g->ow < 1)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (%s): pool_size %dx%d is larger than its input %dx%d with padding"
                        " 'valid'",
                        l->name, l->ops->type_name, g->kh, g->kw, g->h, g->w);
    l->out = cnn_shape_hwc(g->oh, g->ow, g->c);
    return CNN_OK;
}

typedef struct {
    const cnn_layer *l;
    const cnn_layer_io *io;
    bool backward;
} pool_job;

static void pool_worker(void *p, int ith, int nth)
{
    const pool_job *j = p;
    const cnn_conv_geom *g = &((const pool2d_layer *)j->l)->geom;
    const cnn_layer_io *io = j->io;
    long r0, r1;
    cnn_split_range((long)io->batch * g->oh, ith, nth, &r0, &r1);
    bool max = j->l->ops->kind == CNN_LAYER_MAX_POOLING2D;
    if (j->backward && io->dx_over_x)
        cnn_maxpool_backward_over_x(CNN_ISA_AUTO, g, io->dx, io->y, io->dy, io->x_activation, r0,
                                    r1);
    else if (!j->backward && max)
        cnn_maxpool_forward(CNN_ISA_AUTO, g, io->x, io->y, r0, r1);
    else if (!j->backward)
        cnn_avgpool_forward(g, io->x, io->y, r0, r1);
    else if (max)
        cnn_maxpool_backward(CNN_ISA_AUTO, g, io->x, io->y, io->dy, io->dx, r0, r1);
    else
        cnn_avgpool_backward(g, io->dy, io->dx, r0, r1);
}

/* The thread pool when the pass reads enough to pay for waking it (a
 * round trip costs 10-20 us, about what reading 128K floats takes), else
 * NULL: a batch-1 pass stays on the caller. The split is by output rows,
 * each computed alike on any thread, so this changes no result. */
static cnn_pool *pool_for_pass(const cnn_layer *l, const cnn_layer_io *io)
{
    const cnn_conv_geom *g = &((const pool2d_layer *)l)->geom;
    double reads = (double)io->batch * g->oh * g->ow * g->c * g->kh * g->kw;
    return reads >= 131072 ? io->pool : NULL;
}

static void pool2d_forward(cnn_layer *l, const cnn_layer_io *io)
{
    pool_job job = {l, io, false};
    cnn_pool_run(pool_for_pass(l, io), pool_worker, &job);
}

/* Windows that tile the input exactly (stride == pool size). */
static bool windows_tile(const cnn_layer *l)
{
    const cnn_conv_geom *g = &((const pool2d_layer *)l)->geom;
    return g->sh == g->kh && g->sw == g->kw;
}

/* The cells below and right of the last window ('valid' remainder). */
static void clear_uncovered(const cnn_conv_geom *g, int batch, float *dx)
{
    const int64_t row = (int64_t)g->w * g->c;
    const int covered_rows = g->oh * g->sh - g->pad_top, covered_cols = g->ow * g->sw - g->pad_left;
    for (int64_t n = 0; n < batch; n++)
        for (int iy = 0; iy < g->h; iy++) {
            float *p = dx + (n * g->h + iy) * row;
            if (iy >= covered_rows)
                memset(p, 0, (size_t)row * sizeof(float));
            else if (covered_cols < g->w)
                memset(p + (int64_t)covered_cols * g->c, 0,
                       (size_t)(g->w - covered_cols) * g->c * sizeof(float));
        }
}

static void pool2d_backward(cnn_layer *l, const cnn_layer_io *io)
{
    const cnn_conv_geom *g = &((pool2d_layer *)l)->geom;
    if (!io->dx)
        return;
    if (io->dx_over_x) {
        pool_job job = {l, io, true};
        cnn_pool_run(pool_for_pass(l, io), pool_worker, &job);
        clear_uncovered(g, io->batch, io->dx);
        return;
    }
    memset(io->dx, 0, (size_t)io->batch * g->h * g->w * g->c * sizeof(float));
    pool_job job = {l, io, true};
    /* Overlapping windows would make threads add into the same cells. */
    bool overlap = g->sh < g->kh || g->sw < g->kw;
    cnn_pool_run(overlap ? NULL : pool_for_pass(l, io), pool_worker, &job);
}

static cnn_status cnn_layer_pool2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                          const char *name);

/* The fields in Keras's positional order, which is the order of the
 * model file's record. */
static const cnn_layer_field pool2d_fields[] = {
    {"pool_size", CNN_FIELD_PAIR, CNN_SPEC_FIELD(pool2d.pool_size), CNN_FIELD_POSITIONAL, 0},
    {"strides", CNN_FIELD_PAIR, CNN_SPEC_FIELD(pool2d.strides), CNN_FIELD_POSITIONAL, 0},
    {"padding", CNN_FIELD_PADDING, CNN_SPEC_FIELD(pool2d.padding), CNN_FIELD_POSITIONAL, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(pool2d.name), 0, 0},
};

const cnn_layer_ops cnn_max_pooling2d_ops = {
    .create = cnn_layer_pool2d_create,
    .kind = CNN_LAYER_MAX_POOLING2D,
    .type_name = "MaxPooling2D",
    .auto_name = "max_pooling2d",
    .infer = pool2d_infer,
    .backward_in_place = windows_tile,
    .forward = pool2d_forward,
    .backward = pool2d_backward,
    CNN_LAYER_FIELDS(pool2d_fields),
    .class_alias = "MaxPool2D",
    .keras_keys = "pool_size padding strides data_format",
};

const cnn_layer_ops cnn_average_pooling2d_ops = {
    .create = cnn_layer_pool2d_create,
    .kind = CNN_LAYER_AVERAGE_POOLING2D,
    .type_name = "AveragePooling2D",
    .auto_name = "average_pooling2d",
    .infer = pool2d_infer,
    .forward = pool2d_forward,
    .backward = pool2d_backward,
    CNN_LAYER_FIELDS(pool2d_fields),
    .class_alias = "AvgPool2D",
    .keras_keys = "pool_size padding strides data_format",
};

static cnn_status cnn_layer_pool2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                          const char *name)
{
    *out = NULL;
    const cnn_layer_ops *ops = spec->kind == CNN_LAYER_MAX_POOLING2D ? &cnn_max_pooling2d_ops
                                                                     : &cnn_average_pooling2d_ops;
    cnn_pool2d_config k = spec->u.pool2d;
    if (!k.pool_size[0] && !k.pool_size[1])
        k.pool_size[0] = k.pool_size[1] = 2;
    if (!k.strides[0] && !k.strides[1]) {
        k.strides[0] = k.pool_size[0];
        k.strides[1] = k.pool_size[1];
    }
    for (int i = 0; i < 2; i++)
        if (k.pool_size[i] < 1 || k.strides[i] < 1 || k.pool_size[i] > CNN_CONV_MAX_WINDOW
            || k.strides[i] > CNN_CONV_MAX_WINDOW)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "%s (%s): pool_size and strides must be in [1, %d], got pool_size"
                            " (%d, %d), strides (%d, %d)",
                            name, ops->type_name, CNN_CONV_MAX_WINDOW, k.pool_size[0],
                            k.pool_size[1], k.strides[0], k.strides[1]);
    if (k.padding != CNN_PADDING_VALID && k.padding != CNN_PADDING_SAME)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (%s): padding must be valid or same", name,
                        ops->type_name);
    cnn_layer *l;
    cnn_status st = cnn_layer_alloc(&l, sizeof(pool2d_layer), ops, name);
    if (st)
        return st;
    l->spec.kind = ops->kind;
    l->spec.u.pool2d = k;
    *out = l;
    return CNN_OK;
}
