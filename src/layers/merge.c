/* The elementwise merges' shared shape rule and loops (see merge.h). */
#include "layers/merge.h"

#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "core/threadpool.h"

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

/* Keras's _compute_elemwise_op_output_shape on two per-example shapes
 * (the batch axis is never broadcast): axes matched from the last, each
 * pair equal or one of them 1, the longer shape's leading axes kept.
 * False if some pair is neither. */
static bool broadcast(cnn_shape a, cnn_shape b, cnn_shape *out)
{
    if (a.rank < b.rank) {
        cnn_shape t = a;
        a = b;
        b = t;
    }
    *out = a;
    for (int i = 1; i <= b.rank; i++) {
        int x = a.dims[a.rank - i], y = b.dims[b.rank - i];
        if (x != y && x != 1 && y != 1)
            return false;
        out->dims[a.rank - i] = x == 1 ? y : x;
    }
    return true;
}

cnn_status cnn_merge_infer(cnn_layer *l, const cnn_shape *in, int n)
{
    cnn_shape out = in[0];
    for (int k = 1; k < n; k++) {
        if (broadcast(out, in[k], &out))
            continue;
        /* the shape so far came from earlier inputs: name one that clashes */
        int j = 0;
        cnn_shape scratch;
        while (j < k - 1 && broadcast(in[j], in[k], &scratch))
            j++;
        char a[64], b[64];
        cnn_shape_format(in[j], a, sizeof a);
        cnn_shape_format(in[k], b, sizeof b);
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (%s): inputs have incompatible shapes: input %d is %s, input %d"
                        " is %s; matched from the last axis, each pair of sizes must be equal"
                        " or one of them 1",
                        l->name, l->ops->type_name, j, a, k, b);
    }
    l->out = out;
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

/* ---- Broadcasting ------------------------------------------------------
 * Shapes padded on the left to rank 3; input k's element for output index
 * (i0, i1, i2) of example b is at b * size_k + i0 s0 + i1 s1 + i2 s2, its
 * stride 0 along an axis it broadcasts. */
typedef struct {
    int64_t dims[3];
    int64_t size[CNN_MAX_LAYER_INPUTS];
    int64_t stride[CNN_MAX_LAYER_INPUTS][3];
} bcast_map;

static bool broadcasts(const cnn_layer *l, int n)
{
    for (int k = 0; k < n; k++)
        if (!same_shape(l->ins[k], l->out))
            return true;
    return false;
}

static void bcast_plan(const cnn_layer *l, int n, bcast_map *b)
{
    const int R = l->out.rank;
    for (int a = 0; a < 3; a++)
        b->dims[a] = a < 3 - R ? 1 : l->out.dims[a - (3 - R)];
    for (int k = 0; k < n; k++) {
        const cnn_shape s = l->ins[k];
        int64_t stride = 1;
        for (int a = 2; a >= 0; a--) {
            const int axis = a - (3 - s.rank); /* the input's axis, < 0 if it has none */
            const int64_t d = axis >= 0 ? s.dims[axis] : 1;
            b->stride[k][a] = d == 1 ? 0 : stride;
            stride *= d;
        }
        b->size[k] = stride;
    }
}

static float combine(cnn_merge_op op, float y, float x)
{
    switch (op) {
    case CNN_MERGE_SUBTRACT: return y - x;
    case CNN_MERGE_MULTIPLY: return y * x;
    case CNN_MERGE_MAXIMUM: return x > y ? x : y; /* ties keep the earlier input */
    case CNN_MERGE_MINIMUM: return x < y ? x : y;
    default: return y + x; /* Add, Average */
    }
}

/* The forward pass when some input broadcasts: the same operations, in the
 * same order, as the loops of equal shapes below. */
static void bcast_forward(cnn_merge_op op, const cnn_layer *l, const cnn_layer_io *io)
{
    const int n = io->n_inputs;
    bcast_map b;
    bcast_plan(l, n, &b);
    const float scale = 1.0f / (float)n;
    float *y = io->y;
    for (int64_t e = 0; e < io->batch; e++)
        for (int64_t i0 = 0; i0 < b.dims[0]; i0++)
            for (int64_t i1 = 0; i1 < b.dims[1]; i1++)
                for (int64_t i2 = 0; i2 < b.dims[2]; i2++) {
                    float v = 0;
                    for (int k = 0; k < n; k++) {
                        const int64_t *s = b.stride[k];
                        const float x =
                            io->xs[k][e * b.size[k] + i0 * s[0] + i1 * s[1] + i2 * s[2]];
                        v = k ? combine(op, v, x) : x;
                    }
                    *y++ = op == CNN_MERGE_AVERAGE ? v * scale : v;
                }
}

/* The backward pass when some input broadcasts: each input's gradient is
 * the sum, over the output elements it fed, of dy times the output's
 * partial derivative by it (so summed over the axes it broadcasts). */
static void bcast_backward(cnn_merge_op op, const cnn_layer *l, const cnn_layer_io *io)
{
    const int n = io->n_inputs;
    bcast_map b;
    bcast_plan(l, n, &b);
    for (int k = 0; k < n; k++)
        if (io->dxs[k])
            memset(io->dxs[k], 0, (size_t)(io->batch * b.size[k]) * sizeof(float));
    const float scale = 1.0f / (float)n;
    const float *dy = io->dy;
    for (int64_t e = 0; e < io->batch; e++)
        for (int64_t i0 = 0; i0 < b.dims[0]; i0++)
            for (int64_t i1 = 0; i1 < b.dims[1]; i1++)
                for (int64_t i2 = 0; i2 < b.dims[2]; i2++, dy++) {
                    int64_t at[CNN_MAX_LAYER_INPUTS];
                    for (int k = 0; k < n; k++) {
                        const int64_t *s = b.stride[k];
                        at[k] = e * b.size[k] + i0 * s[0] + i1 * s[1] + i2 * s[2];
                    }
                    int best = 0;
                    if (op == CNN_MERGE_MAXIMUM || op == CNN_MERGE_MINIMUM)
                        for (int k = 1; k < n; k++) {
                            const float x = io->xs[k][at[k]], m = io->xs[best][at[best]];
                            if (op == CNN_MERGE_MAXIMUM ? x > m : x < m)
                                best = k;
                        }
                    for (int k = 0; k < n; k++) {
                        if (!io->dxs[k])
                            continue;
                        float g = *dy;
                        switch (op) {
                        case CNN_MERGE_SUBTRACT: g = k ? -g : g; break;
                        case CNN_MERGE_AVERAGE: g *= scale; break;
                        case CNN_MERGE_MULTIPLY: /* the product of the other inputs */
                            for (int o = 0; o < n; o++)
                                if (o != k)
                                    g *= io->xs[o][at[o]];
                            break;
                        case CNN_MERGE_MAXIMUM:
                        case CNN_MERGE_MINIMUM:
                            if (k != best)
                                continue;
                            break;
                        default: break;
                        }
                        io->dxs[k][at[k]] += g;
                    }
                }
}

/* ---- Inputs of one shape ------------------------------------------------ */

typedef struct {
    cnn_merge_op op;
    const cnn_layer_io *io;
} merge_job;

/* Values [b, e) of the output: the first input copied, the others
 * combined in input order, all within one range while it is in cache. */
static void forward_range(void *p, int64_t b, int64_t e)
{
    const merge_job *j = p;
    const int n = j->io->n_inputs;
    float *y = j->io->y;
    memcpy(y + b, j->io->xs[0] + b, (size_t)(e - b) * sizeof(float));
    for (int k = 1; k < n; k++) {
        const float *x = j->io->xs[k];
        switch (j->op) {
        case CNN_MERGE_ADD:
        case CNN_MERGE_AVERAGE:
            for (int64_t i = b; i < e; i++)
                y[i] += x[i];
            break;
        case CNN_MERGE_SUBTRACT:
            for (int64_t i = b; i < e; i++)
                y[i] -= x[i];
            break;
        case CNN_MERGE_MULTIPLY:
            for (int64_t i = b; i < e; i++)
                y[i] *= x[i];
            break;
        case CNN_MERGE_MAXIMUM: /* ties keep the earlier input, as Keras's pairwise reduce */
            for (int64_t i = b; i < e; i++)
                y[i] = x[i] > y[i] ? x[i] : y[i];
            break;
        case CNN_MERGE_MINIMUM:
            for (int64_t i = b; i < e; i++)
                y[i] = x[i] < y[i] ? x[i] : y[i];
            break;
        }
    }
    if (j->op == CNN_MERGE_AVERAGE) {
        const float scale = 1.0f / (float)n;
        for (int64_t i = b; i < e; i++)
            y[i] *= scale;
    }
}

void cnn_merge_forward(cnn_merge_op op, const cnn_layer *l, const cnn_layer_io *io)
{
    if (broadcasts(l, io->n_inputs)) {
        bcast_forward(op, l, io);
        return;
    }
    merge_job j = {op, io};
    cnn_pool_elementwise(io->pool, (int64_t)values(l, io), forward_range, &j);
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

/* Values [b, e) of every input's gradient. */
static void backward_range(void *p, int64_t b, int64_t e)
{
    const merge_job *j = p;
    const cnn_layer_io *io = j->io;
    const int n = io->n_inputs;
    const float *dy = io->dy;
    for (int k = 0; k < n; k++) {
        float *dx = io->dxs[k];
        if (!dx)
            continue;
        switch (j->op) {
        case CNN_MERGE_ADD: memcpy(dx + b, dy + b, (size_t)(e - b) * sizeof(float)); break;
        case CNN_MERGE_SUBTRACT:
            for (int64_t i = b; i < e; i++)
                dx[i] = k ? -dy[i] : dy[i];
            break;
        case CNN_MERGE_AVERAGE: {
            const float scale = 1.0f / (float)n;
            for (int64_t i = b; i < e; i++)
                dx[i] = dy[i] * scale;
            break;
        }
        case CNN_MERGE_MULTIPLY: /* the product of the other inputs */
            memcpy(dx + b, dy + b, (size_t)(e - b) * sizeof(float));
            for (int o = 0; o < n; o++)
                for (int64_t i = b; o != k && i < e; i++)
                    dx[i] *= io->xs[o][i];
            break;
        default: break;
        }
    }
}

void cnn_merge_backward(cnn_merge_op op, const cnn_layer *l, const cnn_layer_io *io)
{
    const size_t count = values(l, io);
    const int n = io->n_inputs;
    if (broadcasts(l, n)) {
        bcast_backward(op, l, io);
        return;
    }
    if (op == CNN_MERGE_MAXIMUM || op == CNN_MERGE_MINIMUM) {
        extreme_backward(op == CNN_MERGE_MAXIMUM, io, count);
        return;
    }
    merge_job j = {op, io};
    cnn_pool_elementwise(io->pool, (int64_t)count, backward_range, &j);
}
