/* The elementwise merges' shared shape rule and loops (see merge.h). */
#include "layers/merge.h"

#include <string.h>

#include "core/error.h"
#include "core/tensor.h"

const cnn_layer_field cnn_merge_fields[1] = {
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(merge.name), 0, 0},
};

static bool same_shape(cnn_shape a, cnn_shape b)
{
    if (a.rank != b.rank)
        return false;
    for (int i = 0; i < a.rank; i++)
        if (a.dims[i] != b.dims[i])
            return false;
    return true;
}

cnn_status cnn_merge_infer(cnn_layer *l, const cnn_shape *in, int n)
{
    for (int k = 1; k < n; k++)
        if (!same_shape(in[0], in[k])) {
            char a[64], b[64];
            cnn_shape_format(in[0], a, sizeof a);
            cnn_shape_format(in[k], b, sizeof b);
            return cnn_fail(CNN_ERR_SHAPE,
                            "%s (%s): inputs have incompatible shapes: input 0 is %s, input %d"
                            " is %s; they must be equal",
                            l->name, l->ops->type_name, a, k, b);
        }
    l->out = in[0];
    return CNN_OK;
}

cnn_status cnn_merge_create(cnn_layer **out, const cnn_layer_spec *spec, const char *name,
                            const cnn_layer_ops *ops)
{
    cnn_status st = cnn_layer_alloc(out, sizeof(cnn_layer), ops, name);
    if (st == CNN_OK)
        (*out)->spec = *spec;
    return st;
}

static size_t values(const cnn_layer *l, const cnn_layer_io *io)
{
    return (size_t)io->batch * (size_t)cnn_shape_size(l->out);
}

void cnn_merge_forward(cnn_merge_op op, const cnn_layer *l, const cnn_layer_io *io)
{
    const size_t count = values(l, io);
    const int n = io->n_inputs;
    float *y = io->y;
    memcpy(y, io->xs[0], count * sizeof(float));
    for (int k = 1; k < n; k++) {
        const float *x = io->xs[k];
        switch (op) {
        case CNN_MERGE_ADD:
        case CNN_MERGE_AVERAGE:
            for (size_t j = 0; j < count; j++)
                y[j] += x[j];
            break;
        case CNN_MERGE_SUBTRACT:
            for (size_t j = 0; j < count; j++)
                y[j] -= x[j];
            break;
        case CNN_MERGE_MULTIPLY:
            for (size_t j = 0; j < count; j++)
                y[j] *= x[j];
            break;
        case CNN_MERGE_MAXIMUM: /* ties keep the earlier input, as Keras's pairwise reduce */
            for (size_t j = 0; j < count; j++)
                y[j] = x[j] > y[j] ? x[j] : y[j];
            break;
        case CNN_MERGE_MINIMUM:
            for (size_t j = 0; j < count; j++)
                y[j] = x[j] < y[j] ? x[j] : y[j];
            break;
        }
    }
    if (op == CNN_MERGE_AVERAGE) {
        const float scale = 1.0f / (float)n;
        for (size_t j = 0; j < count; j++)
            y[j] *= scale;
    }
}

/* Maximum and Minimum: the gradient goes to the first input holding the
 * extreme value (TensorFlow's maximum gives ties to its first argument). */
static void extreme_backward(bool max, const cnn_layer_io *io, size_t count)
{
    const int n = io->n_inputs;
    for (int k = 0; k < n; k++)
        if (io->dxs[k])
            memset(io->dxs[k], 0, count * sizeof(float));
    for (size_t j = 0; j < count; j++) {
        int best = 0;
        for (int k = 1; k < n; k++)
            if (max ? io->xs[k][j] > io->xs[best][j] : io->xs[k][j] < io->xs[best][j])
                best = k;
        if (io->dxs[best])
            io->dxs[best][j] = io->dy[j];
    }
}

void cnn_merge_backward(cnn_merge_op op, const cnn_layer *l, const cnn_layer_io *io)
{
    const size_t count = values(l, io);
    const int n = io->n_inputs;
    if (op == CNN_MERGE_MAXIMUM || op == CNN_MERGE_MINIMUM) {
        extreme_backward(op == CNN_MERGE_MAXIMUM, io, count);
        return;
    }
    for (int k = 0; k < n; k++) {
        float *dx = io->dxs[k];
        if (!dx)
            continue;
        switch (op) {
        case CNN_MERGE_ADD: memcpy(dx, io->dy, count * sizeof(float)); break;
        case CNN_MERGE_SUBTRACT:
            for (size_t j = 0; j < count; j++)
                dx[j] = k ? -io->dy[j] : io->dy[j];
            break;
        case CNN_MERGE_AVERAGE: {
            const float scale = 1.0f / (float)n;
            for (size_t j = 0; j < count; j++)
                dx[j] = io->dy[j] * scale;
            break;
        }
        case CNN_MERGE_MULTIPLY: /* the product of the other inputs */
            memcpy(dx, io->dy, count * sizeof(float));
            for (int o = 0; o < n; o++)
                for (size_t j = 0; o != k && j < count; j++)
                    dx[j] *= io->xs[o][j];
            break;
        default: break;
        }
    }
}
