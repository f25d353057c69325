/* ZeroPadding2D: (h, w, c) -> (top + h + bottom, left + w + right, c), the
 * input copied into the middle of zeros; backward takes the middle of dy. */
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "layers/layer.h"

static cnn_status zp_infer(cnn_layer *l, cnn_shape in)
{
    const int *p = l->spec.u.zero_padding2d.padding;
    if (in.rank != 3)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (ZeroPadding2D): expects input of rank 3 (rows, cols, channels), got"
                        " rank %d",
                        l->name, in.rank);
    int64_t h = (int64_t)in.dims[0] + p[0] + p[1], w = (int64_t)in.dims[1] + p[2] + p[3];
    if (h * w * in.dims[2] > INT32_MAX)
        return cnn_fail(CNN_ERR_SHAPE, "%s (ZeroPadding2D): output %lld x %lld x %d is too large",
                        l->name, (long long)h, (long long)w, in.dims[2]);
    l->out = cnn_shape_hwc((int)h, (int)w, in.dims[2]);
    return CNN_OK;
}

/* Row r of image n of the input, as it sits inside the padded output. */
static size_t inner_offset(const cnn_layer *l, int n, int r)
{
    const int *p = l->spec.u.zero_padding2d.padding;
    const cnn_shape o = l->out;
    return (((size_t)n * o.dims[0] + (size_t)(r + p[0])) * o.dims[1] + (size_t)p[2]) * o.dims[2];
}

static void zp_forward(cnn_layer *l, const cnn_layer_io *io)
{
    const cnn_shape in = l->in;
    const size_t row = (size_t)in.dims[1] * in.dims[2];
    memset(io->y, 0, (size_t)io->batch * cnn_shape_size(l->out) * sizeof(float));
    for (int n = 0; n < io->batch; n++)
        for (int r = 0; r < in.dims[0]; r++)
            memcpy(io->y + inner_offset(l, n, r), io->x + ((size_t)n * in.dims[0] + r) * row,
                   row * sizeof(float));
}

static void zp_backward(cnn_layer *l, const cnn_layer_io *io)
{
    const cnn_shape in = l->in;
    const size_t row = (size_t)in.dims[1] * in.dims[2];
    for (int n = 0; io->dx && n < io->batch; n++)
        for (int r = 0; r < in.dims[0]; r++)
            memcpy(io->dx + ((size_t)n * in.dims[0] + r) * row, io->dy + inner_offset(l, n, r),
                   row * sizeof(float));
}

static cnn_status cnn_layer_zero_padding2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                                  const char *name);

/* The fields in Keras's positional order, which is the order of the
 * model file's record. */
static const cnn_layer_field zero_padding2d_fields[] = {
    {"padding", CNN_FIELD_PADDING4, CNN_SPEC_FIELD(zero_padding2d.padding),
     CNN_FIELD_POSITIONAL, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(zero_padding2d.name), 0, 0},
};

const cnn_layer_ops cnn_zero_padding2d_ops = {
    .create = cnn_layer_zero_padding2d_create,
    .kind = CNN_LAYER_ZERO_PADDING2D,
    .type_name = "ZeroPadding2D",
    .auto_name = "zero_padding2d",
    .infer = zp_infer,
    .forward = zp_forward,
    .backward = zp_backward,
    CNN_LAYER_FIELDS(zero_padding2d_fields),
    .keras_keys = "padding data_format",
};

static cnn_status cnn_layer_zero_padding2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                                  const char *name)
{
    *out = NULL;
    cnn_zero_padding2d_config k = spec->u.zero_padding2d;
    int *p = k.padding;
    if (!p[0] && !p[1] && !p[2] && !p[3])
        p[0] = p[1] = p[2] = p[3] = 1;
    for (int i = 0; i < 4; i++)
        if (p[i] < 0 || p[i] > 65536)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "%s (ZeroPadding2D): padding must be in [0, 65536], got (%d, %d, %d,"
                            " %d) (top, bottom, left, right)",
                            name, p[0], p[1], p[2], p[3]);
    cnn_status st = cnn_layer_alloc(out, sizeof(cnn_layer), &cnn_zero_padding2d_ops, name);
    if (st == CNN_OK) {
        (*out)->spec.kind = CNN_LAYER_ZERO_PADDING2D;
        (*out)->spec.u.zero_padding2d = k;
    }
    return st;
}
