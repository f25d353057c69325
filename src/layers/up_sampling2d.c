/* UpSampling2D: (h, w, c) -> (h * sh, w * sw, c). Nearest repeats each
 * pixel (backward sums each block of dy); bilinear resizes as
 * tf.image.resize does (kernels/resize.h). */
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/conv.h"
#include "kernels/resize.h"
#include "layers/layer.h"

static cnn_status up_infer(cnn_layer *l, cnn_shape in)
{
    const int *s = l->spec.u.up_sampling2d.size;
    if (in.rank != 3)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (UpSampling2D): expects input of rank 3 (rows, cols, channels), got"
                        " rank %d",
                        l->name, in.rank);
    int64_t h = (int64_t)in.dims[0] * s[0], w = (int64_t)in.dims[1] * s[1];
    if (h * w * in.dims[2] > INT32_MAX)
        return cnn_fail(CNN_ERR_SHAPE, "%s (UpSampling2D): output %lld x %lld x %d is too large",
                        l->name, (long long)h, (long long)w, in.dims[2]);
    l->out = cnn_shape_hwc((int)h, (int)w, in.dims[2]);
    return CNN_OK;
}

static void up_forward(cnn_layer *l, const cnn_layer_io *io)
{
    const cnn_shape in = l->in, out = l->out;
    const int c = in.dims[2], sh = l->spec.u.up_sampling2d.size[0];
    const int sw = l->spec.u.up_sampling2d.size[1];
    if (l->spec.u.up_sampling2d.interpolation == CNN_INTERPOLATION_BILINEAR) {
        cnn_resize_bilinear_forward(io->batch, in.dims[0], in.dims[1], c, out.dims[0],
                                    out.dims[1], io->x, io->y);
        return;
    }
    const size_t out_row = (size_t)out.dims[1] * c;
    for (int n = 0; n < io->batch; n++)
        for (int r = 0; r < in.dims[0]; r++) {
            const float *x = io->x + ((size_t)n * in.dims[0] + r) * in.dims[1] * c;
            float *y = io->y + ((size_t)n * out.dims[0] + (size_t)r * sh) * out_row;
            for (int q = 0; q < in.dims[1]; q++)
                for (int j = 0; j < sw; j++)
                    memcpy(y + ((size_t)q * sw + j) * c, x + (size_t)q * c, c * sizeof(float));
            for (int i = 1; i < sh; i++)
                memcpy(y + i * out_row, y, out_row * sizeof(float));
        }
}

static void up_backward(cnn_layer *l, const cnn_layer_io *io)
{
    if (!io->dx)
        return;
    const cnn_shape in = l->in, out = l->out;
    const int c = in.dims[2], sh = l->spec.u.up_sampling2d.size[0];
    const int sw = l->spec.u.up_sampling2d.size[1];
    if (l->spec.u.up_sampling2d.interpolation == CNN_INTERPOLATION_BILINEAR) {
        cnn_resize_bilinear_backward(io->batch, in.dims[0], in.dims[1], c, out.dims[0],
                                     out.dims[1], io->dy, io->dx);
        return;
    }
    for (int n = 0; n < io->batch; n++)
        for (int r = 0; r < in.dims[0]; r++)
            for (int q = 0; q < in.dims[1]; q++) {
                float *dx = io->dx + (((size_t)n * in.dims[0] + r) * in.dims[1] + q) * c;
                memset(dx, 0, c * sizeof(float));
                for (int i = 0; i < sh; i++)
                    for (int j = 0; j < sw; j++) {
                        const float *dy = io->dy + (((size_t)n * out.dims[0] + (size_t)r * sh + i)
                                                        * out.dims[1]
                                                    + (size_t)q * sw + j)
                                                       * c;
                        for (int k = 0; k < c; k++)
                            dx[k] += dy[k];
                    }
            }
}

static cnn_status cnn_layer_up_sampling2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                                 const char *name);

/* The fields in Keras's positional order, which is the order of the
 * model file's record. */
static const cnn_layer_field up_sampling2d_fields[] = {
    {"size", CNN_FIELD_PAIR, CNN_SPEC_FIELD(up_sampling2d.size), CNN_FIELD_POSITIONAL, 0},
    {"interpolation", CNN_FIELD_CHOICE, CNN_SPEC_FIELD(up_sampling2d.interpolation), 0, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(up_sampling2d.name), 0, 0},
};

const cnn_layer_ops cnn_up_sampling2d_ops = {
    .create = cnn_layer_up_sampling2d_create,
    .kind = CNN_LAYER_UP_SAMPLING2D,
    .type_name = "UpSampling2D",
    .auto_name = "up_sampling2d",
    .infer = up_infer,
    .forward = up_forward,
    .backward = up_backward,
    CNN_LAYER_FIELDS(up_sampling2d_fields),
    .keras_keys = "size data_format interpolation",
    .choices = "nearest bilinear", /* cnn_interpolation */
};

static cnn_status cnn_layer_up_sampling2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                                 const char *name)
{
    *out = NULL;
    cnn_up_sampling2d_config k = spec->u.up_sampling2d;
    if (!k.size[0] && !k.size[1])
        k.size[0] = k.size[1] = 2;
    if (k.size[0] < 1 || k.size[1] < 1 || k.size[0] > CNN_CONV_MAX_WINDOW
        || k.size[1] > CNN_CONV_MAX_WINDOW)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (UpSampling2D): size must be in [1, %d], got (%d, %d)", name,
                        CNN_CONV_MAX_WINDOW, k.size[0], k.size[1]);
    if (k.interpolation != CNN_INTERPOLATION_NEAREST
        && k.interpolation != CNN_INTERPOLATION_BILINEAR)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (UpSampling2D): interpolation must be nearest (0) or bilinear (1),"
                        " got %d",
                        name, (int)k.interpolation);
    cnn_status st = cnn_layer_alloc(out, sizeof(cnn_layer), &cnn_up_sampling2d_ops, name);
    if (st == CNN_OK) {
        (*out)->spec.kind = CNN_LAYER_UP_SAMPLING2D;
        (*out)->spec.u.up_sampling2d = k;
    }
    return st;
}
