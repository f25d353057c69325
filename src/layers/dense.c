/* Dense: y = x kernel + bias on the last axis, kernel (in, units).
 * Like Keras, an input of rank 3 is transformed pixel by pixel. */
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/activation.h"
#include "kernels/conv.h"
#include "layers/layer.h"

typedef struct {
    cnn_layer base;
    int in_features;
    int64_t rows_per_example; /* product of the input dims but the last */
} dense_layer;

static cnn_status dense_infer(cnn_layer *l, cnn_shape in)
{
    dense_layer *d = (dense_layer *)l;
    d->in_features = in.dims[in.rank - 1];
    d->rows_per_example = cnn_shape_size(in) / d->in_features;
    l->out = in;
    l->out.dims[in.rank - 1] = l->spec.u.dense.units;
    if ((int64_t)d->in_features * l->spec.u.dense.units > ((int64_t)1 << 40))
        return cnn_fail(CNN_ERR_SHAPE, "%s (Dense): %d x %d weights is too large", l->name,
                        d->in_features, l->spec.u.dense.units);
    cnn_layer_set_param(l, 0, "kernel", 2, (int64_t[]){d->in_features, l->spec.u.dense.units}, true);
    if (!l->spec.u.dense.no_bias)
        cnn_layer_set_param(l, 1, "bias", 1, (int64_t[]){l->spec.u.dense.units}, true);
    return CNN_OK;
}

static void dense_init(cnn_layer *l, cnn_rng *rng)
{
    dense_layer *d = (dense_layer *)l;
    cnn_glorot_uniform(l->params[0].value, l->params[0].count, d->in_features, l->spec.u.dense.units, rng);
    if (l->n_params > 1)
        memset(l->params[1].value, 0, (size_t)l->params[1].count * sizeof(float));
}

static void dense_forward(cnn_layer *l, const cnn_layer_io *io)
{
    dense_layer *d = (dense_layer *)l;
    int rows = (int)(io->batch * d->rows_per_example), U = l->spec.u.dense.units, In = d->in_features;
    /* y[rows x U] = x[rows x In] * kernel[In x U] */
    cnn_layer_gemm(io, false, false, rows, U, In, io->x, In, l->params[0].value, U, 0.0f, io->y, U);
    if (l->n_params > 1)
        cnn_add_bias_rows(io->y, l->params[1].value, rows, U);
    if (io->fuse_activation)
        cnn_activation_forward(l->activation, io->y, rows, U);
}

static void dense_backward(cnn_layer *l, const cnn_layer_io *io)
{
    dense_layer *d = (dense_layer *)l;
    int rows = (int)(io->batch * d->rows_per_example), U = l->spec.u.dense.units, In = d->in_features;
    if (io->fuse_activation)
        cnn_activation_backward(l->activation, io->y, io->dy, rows, U);
    /* dkernel[In x U] += x^T[In x rows] * dy[rows x U] (= when it holds zeros:
     * not reading the zeros saves a pass over the kernel's size) */
    cnn_layer_gemm(io, true, false, In, U, rows, io->x, In, io->dy, U, io->grads_zero ? 0.0f : 1.0f,
                   l->params[0].grad, U);
    if (l->n_params > 1)
        cnn_bias_grad_rows(io->dy, rows, U, l->params[1].grad);
    /* dx[rows x In] = dy[rows x U] * kernel^T */
    if (io->dx)
        cnn_layer_gemm(io, false, true, rows, In, U, io->dy, U, l->params[0].value, U, 0.0f, io->dx,
                       In);
}

static int64_t dense_flops(const cnn_layer *l)
{
    const dense_layer *d = (const dense_layer *)l;
    return 2 * d->rows_per_example * d->in_features * l->spec.u.dense.units;
}

static cnn_status cnn_layer_dense_create(cnn_layer **out, const cnn_layer_spec *spec,
                                         const char *name);

/* The fields in Keras's positional order, which is the order of the
 * model file's record. */
static const cnn_layer_field dense_fields[] = {
    {"units", CNN_FIELD_COUNT, CNN_SPEC_FIELD(dense.units),
     CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    {"activation", CNN_FIELD_ACTIVATION, CNN_SPEC_FIELD(dense.activation), CNN_FIELD_POSITIONAL, 0},
    {"use_bias", CNN_FIELD_USE_BIAS, CNN_SPEC_FIELD(dense.no_bias), 0, 0},
    {"kernel_regularizer", CNN_FIELD_L2, CNN_SPEC_FIELD(dense.kernel_l2), CNN_FIELD_EXTENSION, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(dense.name), 0, 0},
};

const cnn_layer_ops cnn_dense_ops = {
    .create = cnn_layer_dense_create,
    .kind = CNN_LAYER_DENSE,
    .can_fuse_activation = true,
    .type_name = "Dense",
    .auto_name = "dense",
    .infer = dense_infer,
    .init = dense_init,
    .flops = dense_flops,
    .forward = dense_forward,
    .backward = dense_backward,
    CNN_LAYER_FIELDS(dense_fields),
    .keras_keys = "units activation use_bias kernel_initializer bias_initializer "
                  "kernel_regularizer bias_regularizer kernel_constraint bias_constraint "
                  "quantization_config",
    .keras_build_config = true,
};

static cnn_status cnn_layer_dense_create(cnn_layer **out, const cnn_layer_spec *spec,
                                         const char *name)
{
    *out = NULL;
    const cnn_dense_config *cfg = &spec->u.dense;
    if (cfg->units < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (Dense): units must be >= 1, got %d", name,
                        cfg->units);
    if ((unsigned)cfg->activation >= CNN_ACTIVATION_COUNT)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (Dense): unknown activation %d", name,
                        (int)cfg->activation);
    cnn_layer *l;
    cnn_status st = cnn_layer_alloc(&l, sizeof(dense_layer), &cnn_dense_ops, name);
    if (st)
        return st;
    l->spec = *spec;
    l->activation = cfg->activation;
    *out = l;
    return CNN_OK;
}
