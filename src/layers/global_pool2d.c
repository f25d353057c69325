/* GlobalAveragePooling2D and GlobalMaxPooling2D: (h, w, c) -> (c), so a
 * network's head does not depend on the image size (Keras semantics,
 * keepdims=False). */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "kernels/global_pool.h"
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
    cnn_global_avgpool_forward(CNN_ISA_AUTO, io->x, io->y, io->batch,
                               (int64_t)l->in.dims[0] * l->in.dims[1], l->in.dims[2]);
}

static void avg_backward(cnn_layer *l, const cnn_layer_io *io)
{
    if (io->dx)
        cnn_global_avgpool_backward(CNN_ISA_AUTO, io->dy, io->dx, io->batch,
                                    (int64_t)l->in.dims[0] * l->in.dims[1], l->in.dims[2]);
}

static void max_forward(cnn_layer *l, const cnn_layer_io *io)
{
    cnn_global_maxpool_forward(CNN_ISA_AUTO, io->x, io->y, io->batch,
                               (int64_t)l->in.dims[0] * l->in.dims[1], l->in.dims[2]);
}

/* The gradient goes to the first position holding the maximum. */
static void max_backward(cnn_layer *l, const cnn_layer_io *io)
{
    if (io->dx)
        cnn_global_maxpool_backward(CNN_ISA_AUTO, io->x, io->dy, io->dx, io->batch,
                                    (int64_t)l->in.dims[0] * l->in.dims[1], l->in.dims[2]);
}

static cnn_status cnn_layer_global_pool2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                                 const char *name);

/* The fields in Keras's positional order, which is the order of the
 * model file's record. */
static const cnn_layer_field global_pool2d_fields[] = {
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(global_pool2d.name), 0, 0},
};

const cnn_layer_ops cnn_global_average_pooling2d_ops = {
    .create = cnn_layer_global_pool2d_create,
    .kind = CNN_LAYER_GLOBAL_AVERAGE_POOLING2D,
    .type_name = "GlobalAveragePooling2D",
    .auto_name = "global_average_pooling2d",
    .infer = global_infer,
    .forward = avg_forward,
    .backward = avg_backward,
    CNN_LAYER_FIELDS(global_pool2d_fields),
    .class_alias = "GlobalAvgPool2D",
    .keras_keys = "data_format keepdims",
};

const cnn_layer_ops cnn_global_max_pooling2d_ops = {
    .create = cnn_layer_global_pool2d_create,
    .kind = CNN_LAYER_GLOBAL_MAX_POOLING2D,
    .type_name = "GlobalMaxPooling2D",
    .auto_name = "global_max_pooling2d",
    .infer = global_infer,
    .forward = max_forward,
    .backward = max_backward,
    CNN_LAYER_FIELDS(global_pool2d_fields),
    .class_alias = "GlobalMaxPool2D",
    .keras_keys = "data_format keepdims",
};

static cnn_status cnn_layer_global_pool2d_create(cnn_layer **out, const cnn_layer_spec *spec,
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
