/* GlobalAveragePooling2D and GlobalMaxPooling2D: (h, w, c) -> (c), so a
 * network's head does not depend on the image size (Keras semantics,
 * keepdims=False). */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "layers/layer.h"

static cnn_status global_infer(cnn_layer *l, cnn_shape in)
{
    if (in.rank != 3)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (%s): expects input of rank 3 (rows, cols, channels), got rank %d",
                        l->name, l->ops->type_name, in.rank);
    l->out = cnn_shape_flat(in.dims[2]);
    return CNN_OK;
}

static void avg_forward(cnn_layer *l, const cnn_layer_io *io)
{
    const int64_t hw = (int64_t)l->in.dims[0] * l->in.dims[1];
    const int C = l->in.dims[2];
    for (int n = 0; n < io->batch; n++) {
        const float *x = io->x + n * hw * C;
        float *y = io->y + (int64_t)n * C;
        /* sum in double (a 2000x2000 map has 4e6 terms), channels in blocks
         * so the accumulator stays a small fixed array */
        for (int c0 = 0; c0 < C; c0 += 256) {
            int nc = C - c0 < 256 ? C - c0 : 256;
            double sum[256] = {0};
            for (int64_t p = 0; p < hw; p++)
                for (int c = 0; c < nc; c++)
                    sum[c] += x[p * C + c0 + c];
            for (int c = 0; c < nc; c++)
                y[c0 + c] = (float)(sum[c] / (double)hw);
        }
    }
}

static void avg_backward(cnn_layer *l, const cnn_layer_io *io)
{
    if (!io->dx)
        return;
    const int64_t hw = (int64_t)l->in.dims[0] * l->in.dims[1];
    const int C = l->in.dims[2];
    const float inv = 1.0f / (float)hw;
    for (int n = 0; n < io->batch; n++) {
        float *dx = io->dx + n * hw * C;
        const float *dy = io->dy + (int64_t)n * C;
        for (int64_t p = 0; p < hw; p++)
            for (int c = 0; c < C; c++)
                dx[p * C + c] = dy[c] * inv;
    }
}

static void max_forward(cnn_layer *l, const cnn_layer_io *io)
{
    const int64_t hw = (int64_t)l->in.dims[0] * l->in.dims[1];
    const int C = l->in.dims[2];
    for (int n = 0; n < io->batch; n++) {
        const float *x = io->x + n * hw * C;
        float *y = io->y + (int64_t)n * C;
        for (int c = 0; c < C; c++)
            y[c] = -INFINITY;
        for (int64_t p = 0; p < hw; p++)
            for (int c = 0; c < C; c++)
                y[c] = x[p * C + c] > y[c] ? x[p * C + c] : y[c];
    }
}

/* The gradient goes to the first position holding the maximum. */
static void max_backward(cnn_layer *l, const cnn_layer_io *io)
{
    if (!io->dx)
        return;
    const int64_t hw = (int64_t)l->in.dims[0] * l->in.dims[1];
    const int C = l->in.dims[2];
    memset(io->dx, 0, (size_t)(io->batch * hw * C) * sizeof(float));
    for (int n = 0; n < io->batch; n++) {
        const float *x = io->x + n * hw * C;
        float *dx = io->dx + n * hw * C;
        const float *dy = io->dy + (int64_t)n * C;
        for (int c = 0; c < C; c++) {
            int64_t best = 0;
            for (int64_t p = 1; p < hw; p++)
                if (x[p * C + c] > x[best * C + c])
                    best = p;
            dx[best * C + c] += dy[c];
        }
    }
}

const cnn_layer_ops cnn_global_average_pooling2d_ops = {
    .kind = CNN_LAYER_GLOBAL_AVERAGE_POOLING2D,
    .type_name = "GlobalAveragePooling2D",
    .auto_name = "global_average_pooling2d",
    .infer = global_infer,
    .forward = avg_forward,
    .backward = avg_backward,
};

const cnn_layer_ops cnn_global_max_pooling2d_ops = {
    .kind = CNN_LAYER_GLOBAL_MAX_POOLING2D,
    .type_name = "GlobalMaxPooling2D",
    .auto_name = "global_max_pooling2d",
    .infer = global_infer,
    .forward = max_forward,
    .backward = max_backward,
};

cnn_status cnn_layer_global_pool2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                          const char *name)
{
    const cnn_layer_ops *ops = spec->kind == CNN_LAYER_GLOBAL_MAX_POOLING2D
                                   ? &cnn_global_max_pooling2d_ops
                                   : &cnn_global_average_pooling2d_ops;
    cnn_status st = cnn_layer_alloc(out, sizeof(cnn_layer), ops, name);
    if (st == CNN_OK)
        (*out)->spec = *spec;
    return st;
}
