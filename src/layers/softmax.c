/* Softmax (the layer, Keras Softmax(axis=-1)): softmax over the last axis,
 * for each pixel of an image or each example of a flat input. Backward:
 * dx = y (dy - sum_j dy_j y_j) per row, from the kept output. */
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/activation.h"
#include "layers/layer.h"

static cnn_status softmax_infer(cnn_layer *l, cnn_shape in)
{
    l->out = in;
    return CNN_OK;
}

/* Rows of the last axis in a batch, and their length. */
static int64_t rows_of(const cnn_layer *l, int batch, int *n)
{
    *n = l->in.dims[l->in.rank - 1];
    return (int64_t)batch * (cnn_shape_size(l->in) / *n);
}

static void softmax_forward(cnn_layer *l, const cnn_layer_io *io)
{
    int n;
    int64_t rows = rows_of(l, io->batch, &n);
    memcpy(io->y, io->x, (size_t)rows * n * sizeof(float));
    cnn_activation_forward(CNN_ACTIVATION_SOFTMAX, io->y, rows, n);
}

static void softmax_backward(cnn_layer *l, const cnn_layer_io *io)
{
    if (!io->dx)
        return;
    int n;
    int64_t rows = rows_of(l, io->batch, &n);
    memcpy(io->dx, io->dy, (size_t)rows * n * sizeof(float));
    cnn_activation_backward(CNN_ACTIVATION_SOFTMAX, io->y, io->dx, rows, n);
}

static cnn_status cnn_layer_softmax_create(cnn_layer **out, const cnn_layer_spec *spec,
                                           const char *name);

static const cnn_layer_field softmax_fields[] = {
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(softmax.name), 0, 0},
};

const cnn_layer_ops cnn_softmax_ops = {
    .create = cnn_layer_softmax_create,
    .kind = CNN_LAYER_SOFTMAX,
    .type_name = "Softmax",
    .auto_name = "softmax",
    .infer = softmax_infer,
    .forward = softmax_forward,
    .backward = softmax_backward,
    CNN_LAYER_FIELDS(softmax_fields),
    .keras_keys = "axis", /* always -1 (Keras's default); readers refuse others */
};

static cnn_status cnn_layer_softmax_create(cnn_layer **out, const cnn_layer_spec *spec,
                                           const char *name)
{
    *out = NULL;
    cnn_status st = cnn_layer_alloc(out, sizeof(cnn_layer), &cnn_softmax_ops, name);
    if (st == CNN_OK) {
        (*out)->spec.kind = CNN_LAYER_SOFTMAX;
        (*out)->spec.u.softmax = spec->u.softmax;
    }
    return st;
}
