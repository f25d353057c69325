/* Cropping2D: (h, w, c) -> (h - top - bottom, w - left - right, c), the
 * middle of the input; backward puts dy back in the middle of zeros. */
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "layers/layer.h"

static cnn_status crop_infer(cnn_layer *l, cnn_shape in)
{
    const int *p = l->spec.u.cropping2d.cropping;
    if (in.rank != 3)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (Cropping2D): expects input of rank 3 (rows, cols, channels), got"
                        " rank %d",
                        l->name, in.rank);
    int64_t h = (int64_t)in.dims[0] - p[0] - p[1], w = (int64_t)in.dims[1] - p[2] - p[3];
    if (h < 1 || w < 1)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (Cropping2D): cropping ((%d, %d), (%d, %d)) leaves nothing of the"
                        " input %d x %d",
                        l->name, p[0], p[1], p[2], p[3], in.dims[0], in.dims[1]);
    l->out = cnn_shape_hwc((int)h, (int)w, in.dims[2]);
    return CNN_OK;
}

/* Row r of image n of the output, as it sits inside the input. */
static size_t inner_offset(const cnn_layer *l, int n, int r)
{
    const int *p = l->spec.u.cropping2d.cropping;
    const cnn_shape i = l->in;
    return (((size_t)n * i.dims[0] + (size_t)(r + p[0])) * i.dims[1] + (size_t)p[2]) * i.dims[2];
}

static void crop_forward(cnn_layer *l, const cnn_layer_io *io)
{
    const cnn_shape o = l->out;
    const size_t row = (size_t)o.dims[1] * o.dims[2];
    for (int n = 0; n < io->batch; n++)
        for (int r = 0; r < o.dims[0]; r++)
            memcpy(io->y + ((size_t)n * o.dims[0] + r) * row, io->x + inner_offset(l, n, r),
                   row * sizeof(float));
}

static void crop_backward(cnn_layer *l, const cnn_layer_io *io)
{
    if (!io->dx)
        return;
    const cnn_shape o = l->out;
    const size_t row = (size_t)o.dims[1] * o.dims[2];
    memset(io->dx, 0, (size_t)io->batch * cnn_shape_size(l->in) * sizeof(float));
    for (int n = 0; n < io->batch; n++)
        for (int r = 0; r < o.dims[0]; r++)
            memcpy(io->dx + inner_offset(l, n, r), io->dy + ((size_t)n * o.dims[0] + r) * row,
                   row * sizeof(float));
}

static cnn_status cnn_layer_cropping2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                              const char *name);

/* The fields in Keras's positional order, which is the order of the
 * model file's record. */
static const cnn_layer_field cropping2d_fields[] = {
    {"cropping", CNN_FIELD_CROPPING4, CNN_SPEC_FIELD(cropping2d.cropping), CNN_FIELD_POSITIONAL,
     0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(cropping2d.name), 0, 0},
};

const cnn_layer_ops cnn_cropping2d_ops = {
    .create = cnn_layer_cropping2d_create,
    .kind = CNN_LAYER_CROPPING2D,
    .type_name = "Cropping2D",
    .auto_name = "cropping2d",
    .infer = crop_infer,
    .forward = crop_forward,
    .backward = crop_backward,
    CNN_LAYER_FIELDS(cropping2d_fields),
    .keras_keys = "cropping data_format",
};

static cnn_status cnn_layer_cropping2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                              const char *name)
{
    *out = NULL;
    cnn_cropping2d_config k = spec->u.cropping2d;
    const int *p = k.cropping;
    for (int i = 0; i < 4; i++)
        if (p[i] < 0 || p[i] > INT32_MAX / 4)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "%s (Cropping2D): cropping must be in [0, %d], got (%d, %d, %d, %d)"
                            " (top, bottom, left, right)",
                            name, INT32_MAX / 4, p[0], p[1], p[2], p[3]);
    cnn_status st = cnn_layer_alloc(out, sizeof(cnn_layer), &cnn_cropping2d_ops, name);
    if (st == CNN_OK) {
        (*out)->spec.kind = CNN_LAYER_CROPPING2D;
        (*out)->spec.u.cropping2d = k;
    }
    return st;
}
