/* Concatenate (Keras Concatenate): joins its inputs along one axis
 * (Inception's branches, U-Net's skips, DenseNet's blocks). Axis counts as
 * Keras counts it, the batch axis being 0; -1 is the last. */
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "layers/layer.h"

typedef struct concatenate {
    cnn_layer base;
    int axis;                          /* in the example's shape, 0-based */
    int64_t outer;                     /* product of the dims before axis */
    int64_t inner[CNN_MAX_LAYER_INPUTS]; /* each input's values per outer index */
    int64_t inner_out;
} concatenate;

static cnn_status create(cnn_layer **out, const cnn_layer_spec *spec, const char *name);

static cnn_status infer_inputs(cnn_layer *l, const cnn_shape *in, int n)
{
    concatenate *c = (concatenate *)l;
    const int rank = in[0].rank;
    int axis = l->spec.u.concatenate.axis ? l->spec.u.concatenate.axis : -1;
    axis = axis < 0 ? rank + axis : axis - 1; /* without the batch axis */
    if (axis < 0 || axis >= rank)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (Concatenate): axis %d does not exist for inputs of rank %d (plus"
                        " the batch axis); expected -1..-%d or 1..%d",
                        l->name, l->spec.u.concatenate.axis ? l->spec.u.concatenate.axis : -1,
                        rank, rank, rank);
    cnn_shape out = in[0];
    for (int k = 1; k < n; k++) {
        bool ok = in[k].rank == rank;
        for (int d = 0; ok && d < rank; d++)
            ok = d == axis || in[k].dims[d] == in[0].dims[d];
        if (!ok) {
            char a[64], b[64];
            cnn_shape_format(in[0], a, sizeof a);
            cnn_shape_format(in[k], b, sizeof b);
            return cnn_fail(CNN_ERR_SHAPE,
                            "%s (Concatenate): requires inputs with matching shapes except for"
                            " the concatenation axis %d: input 0 is %s, input %d is %s",
                            l->name, axis + 1, a, k, b);
        }
        if (__builtin_add_overflow(out.dims[axis], in[k].dims[axis], &out.dims[axis]))
            return cnn_fail(CNN_ERR_SHAPE, "%s (Concatenate): the joined axis is too long",
                            l->name);
    }
    int64_t total = cnn_shape_size(out);
    if (total > INT32_MAX)
        return cnn_fail(CNN_ERR_SHAPE, "%s (Concatenate): more than 2^31 values per example",
                        l->name);
    c->axis = axis;
    c->outer = 1;
    for (int d = 0; d < axis; d++)
        c->outer *= in[0].dims[d];
    c->inner_out = total / c->outer;
    for (int k = 0; k < n; k++)
        c->inner[k] = cnn_shape_size(in[k]) / c->outer;
    l->out = out;
    return CNN_OK;
}

static void forward(cnn_layer *l, const cnn_layer_io *io)
{
    const concatenate *c = (const concatenate *)l;
    const int64_t rows = c->outer * io->batch;
    for (int64_t r = 0; r < rows; r++) {
        float *y = io->y + r * c->inner_out;
        for (int k = 0; k < io->n_inputs; k++) {
            memcpy(y, io->xs[k] + r * c->inner[k], (size_t)c->inner[k] * sizeof(float));
            y += c->inner[k];
        }
    }
}

static void backward(cnn_layer *l, const cnn_layer_io *io)
{
    const concatenate *c = (const concatenate *)l;
    const int64_t rows = c->outer * io->batch;
    for (int64_t r = 0; r < rows; r++) {
        const float *dy = io->dy + r * c->inner_out;
        for (int k = 0; k < io->n_inputs; k++) {
            if (io->dxs[k])
                memcpy(io->dxs[k] + r * c->inner[k], dy, (size_t)c->inner[k] * sizeof(float));
            dy += c->inner[k];
        }
    }
}

static const cnn_layer_field fields[] = {
    {"axis", CNN_FIELD_AXIS, CNN_SPEC_FIELD(concatenate.axis), CNN_FIELD_POSITIONAL, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(concatenate.name), 0, 0},
};

const cnn_layer_ops cnn_concatenate_ops = {
    .create = create,
    .kind = CNN_LAYER_CONCATENATE,
    .type_name = "Concatenate",
    .auto_name = "concatenate",
    .min_inputs = 2,
    .max_inputs = CNN_MAX_LAYER_INPUTS,
    .infer_inputs = infer_inputs,
    .forward = forward,
    .backward = backward,
    CNN_LAYER_FIELDS(fields),
    .keras_keys = "axis",
};

static cnn_status create(cnn_layer **out, const cnn_layer_spec *spec, const char *name)
{
    int axis = spec->u.concatenate.axis;
    if (axis < -CNN_MAX_RANK || axis > CNN_MAX_RANK)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (Concatenate): axis must be -%d..%d (not 0, the batch), got %d", name,
                        CNN_MAX_RANK, CNN_MAX_RANK, axis);
    cnn_status st = cnn_layer_alloc(out, sizeof(concatenate), &cnn_concatenate_ops, name);
    if (st == CNN_OK) {
        (*out)->spec = *spec;
        if (!(*out)->spec.u.concatenate.axis)
            (*out)->spec.u.concatenate.axis = -1;
    }
    return st;
}
