/* Conv2DTranspose: the adjoint of a Conv2D. Its forward is a convolution's
 * backward-data pass and its input gradient a convolution's forward, so it
 * reuses the conv kernels: with the geometry of the convolution that maps
 * this layer's output (rows', cols', filters) back to its input (rows,
 * cols, in), the kernel (kh, kw, filters, in) is that convolution's
 * (K = kh * kw * filters) x in matrix, and
 *   forward:  col = x * kernel^T, y = col2im(col) + bias
 *   backward: dcol = im2col(dy), dx = dcol * kernel, dkernel += dcol^T x.
 * Tiles of at most the model's workspace limit bound the scratch. The
 * direct scatter (kernels/conv_transpose.h) is the naive twin tests hold it
 * against. */
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/activation.h"
#include "kernels/conv.h"
#include "kernels/conv_transpose.h"
#include "layers/layer.h"

typedef struct {
    cnn_layer base;
    cnn_conv_geom geom; /* the adjoint convolution: output -> input */
} conv2d_transpose_layer;

static int64_t columns_k(const cnn_conv_geom *g) { return (int64_t)g->kh * g->kw * g->c; }

static int64_t tile_rows(const cnn_conv_geom *g, int batch, int64_t tile_floats)
{
    int64_t M = (int64_t)batch * g->oh * g->ow, rows = tile_floats / columns_k(g);
    if (rows < 1)
        rows = 1;
    return rows < M ? rows : M;
}

static cnn_status ct_infer(cnn_layer *l, cnn_shape in)
{
    conv2d_transpose_layer *c = (conv2d_transpose_layer *)l;
    const cnn_conv2d_transpose_config *k = &l->spec.u.conv2d_transpose;
    if (in.rank != 3)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (Conv2DTranspose): expects input of rank 3 (rows, cols, channels),"
                        " got rank %d",
                        l->name, in.rank);
    const int same = k->padding == CNN_PADDING_SAME;
    int64_t out[2];
    for (int a = 0; a < 2; a++) {
        int64_t span = (int64_t)(k->kernel_size[a] - 1) * k->dilation_rate[a] + 1;
        int64_t s = k->strides[a], n = in.dims[a];
        if (!k->output_padding.set)
            out[a] = same ? n * s : n * s + (span > s ? span - s : 0);
        else
            out[a] = (n - 1) * s + span - 2 * (same ? span / 2 : 0) + k->output_padding.value[a];
    }
    /* each side first: both can reach 2^32 (a dilated 65536 kernel), whose
     * product would wrap */
    if (out[0] < 1 || out[1] < 1 || out[0] > INT32_MAX || out[1] > INT32_MAX
        || out[0] * out[1] > INT32_MAX / k->filters)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (Conv2DTranspose): output %lld x %lld x %d from input %d x %d is"
                        " empty or too large",
                        l->name, (long long)out[0], (long long)out[1], k->filters, in.dims[0],
                        in.dims[1]);
    cnn_conv_geom *g = &c->geom;
    *g = (cnn_conv_geom){.h = (int)out[0], .w = (int)out[1], .c = k->filters,
                         .kh = k->kernel_size[0], .kw = k->kernel_size[1],
                         .sh = k->strides[0], .sw = k->strides[1],
                         .dh = k->dilation_rate[0], .dw = k->dilation_rate[1]};
    /* The adjoint convolution must map the output back to exactly the
     * input (TensorFlow refuses the layer otherwise, as we do). */
    int rows = cnn_conv_out_size(g->h, g->kh, g->sh, g->dh, same, &g->pad_top);
    int cols = cnn_conv_out_size(g->w, g->kw, g->sw, g->dw, same, &g->pad_left);
    if (rows != in.dims[0] || cols != in.dims[1])
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (Conv2DTranspose): output_padding (%d, %d) gives an output %d x %d"
                        " that a %dx%d convolution with strides (%d, %d) and padding '%s' maps"
                        " to %d x %d, not to the input %d x %d (TensorFlow refuses it too)",
                        l->name, k->output_padding.value[0], k->output_padding.value[1], g->h,
                        g->w, g->kh, g->kw, g->sh, g->sw, same ? "same" : "valid", rows, cols,
                        in.dims[0], in.dims[1]);
    g->oh = rows;
    g->ow = cols;
    int64_t K = columns_k(g);
    if (K > INT32_MAX / 4 || K * in.dims[2] > ((int64_t)1 << 40))
        return cnn_fail(CNN_ERR_SHAPE, "%s (Conv2DTranspose): kernel %lld x %d is too large",
                        l->name, (long long)K, in.dims[2]);
    l->out = cnn_shape_hwc(g->h, g->w, k->filters);
    cnn_layer_set_param(l, 0, "kernel", 4,
                        (int64_t[]){g->kh, g->kw, k->filters, in.dims[2]}, true);
    if (!k->no_bias)
        cnn_layer_set_param(l, 1, "bias", 1, (int64_t[]){k->filters}, true);
    return CNN_OK;
}

static void ct_init(cnn_layer *l, cnn_rng *rng)
{
    const conv2d_transpose_layer *c = (const conv2d_transpose_layer *)l;
    int64_t field = (int64_t)c->geom.kh * c->geom.kw;
    /* Keras's fans of a (kh, kw, filters, in) kernel */
    cnn_glorot_uniform(l->params[0].value, l->params[0].count, field * c->geom.c,
                       field * l->in.dims[2], rng);
    if (l->n_params > 1)
        memset(l->params[1].value, 0, (size_t)l->params[1].count * sizeof(float));
}

static size_t ct_workspace(const cnn_layer *l, int batch, int64_t tile_floats)
{
    const cnn_conv_geom *g = &((const conv2d_transpose_layer *)l)->geom;
    return (size_t)(tile_rows(g, batch, tile_floats) * columns_k(g));
}

static int64_t ct_flops(const cnn_layer *l)
{
    const cnn_conv_geom *g = &((const conv2d_transpose_layer *)l)->geom;
    return 2 * (int64_t)g->oh * g->ow * columns_k(g) * l->in.dims[2];
}

static void ct_forward(cnn_layer *l, const cnn_layer_io *io)
{
    const cnn_conv_geom *g = &((conv2d_transpose_layer *)l)->geom;
    const int K = (int)columns_k(g), C = l->in.dims[2], F = g->c;
    const int64_t M = (int64_t)io->batch * g->oh * g->ow;
    const int64_t tile = tile_rows(g, io->batch, io->tile_floats);
    const int64_t out_rows = (int64_t)io->batch * g->h * g->w;
    memset(io->y, 0, (size_t)out_rows * F * sizeof(float));
    for (int64_t m0 = 0; m0 < M; m0 += tile) {
        int64_t m1 = m0 + tile < M ? m0 + tile : M;
        /* col[rows x K] = x[rows x C] * kernel^T, kernel [K x C] */
        cnn_gemm(io->gemm, false, true, (int)(m1 - m0), K, C, 1.0f, io->x + m0 * C, C,
                 l->params[0].value, C, 0.0f, io->workspace, K);
        cnn_col2im_rows_add(g, io->workspace, m0, m1, io->y);
    }
    if (l->n_params > 1)
        cnn_add_bias_rows(io->y, l->params[1].value, out_rows, F);
}

static void ct_backward(cnn_layer *l, const cnn_layer_io *io)
{
    const cnn_conv_geom *g = &((conv2d_transpose_layer *)l)->geom;
    const int K = (int)columns_k(g), C = l->in.dims[2], F = g->c;
    const int64_t M = (int64_t)io->batch * g->oh * g->ow;
    const int64_t tile = tile_rows(g, io->batch, io->tile_floats);
    if (l->n_params > 1)
        cnn_bias_grad_rows(io->dy, (int64_t)io->batch * g->h * g->w, F, l->params[1].grad);
    for (int64_t m0 = 0; m0 < M; m0 += tile) {
        int64_t m1 = m0 + tile < M ? m0 + tile : M;
        int rows = (int)(m1 - m0);
        cnn_im2col_rows(g, io->dy, m0, m1, io->workspace);
        /* dkernel[K x C] += dcol^T[K x rows] * x[rows x C] */
        cnn_gemm(io->gemm, true, false, K, C, rows, 1.0f, io->workspace, K, io->x + m0 * C, C,
                 1.0f, l->params[0].grad, C);
        /* dx[rows x C] = dcol[rows x K] * kernel[K x C] */
        if (io->dx)
            cnn_gemm(io->gemm, false, false, rows, C, K, 1.0f, io->workspace, K,
                     l->params[0].value, C, 0.0f, io->dx + m0 * C, C);
    }
}

static cnn_status cnn_layer_conv2d_transpose_create(cnn_layer **out, const cnn_layer_spec *spec,
                                                    const char *name);

/* The fields in Keras's positional order, which is the order of the
 * model file's record. */
static const cnn_layer_field conv2d_transpose_fields[] = {
    {"filters", CNN_FIELD_COUNT, CNN_SPEC_FIELD(conv2d_transpose.filters),
     CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    {"kernel_size", CNN_FIELD_PAIR, CNN_SPEC_FIELD(conv2d_transpose.kernel_size),
     CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    {"strides", CNN_FIELD_PAIR, CNN_SPEC_FIELD(conv2d_transpose.strides), CNN_FIELD_POSITIONAL,
     0},
    {"padding", CNN_FIELD_PADDING, CNN_SPEC_FIELD(conv2d_transpose.padding),
     CNN_FIELD_POSITIONAL, 0},
    {"output_padding", CNN_FIELD_OPT_PAIR, CNN_SPEC_FIELD(conv2d_transpose.output_padding),
     CNN_FIELD_POSITIONAL, 0},
    {"dilation_rate", CNN_FIELD_PAIR, CNN_SPEC_FIELD(conv2d_transpose.dilation_rate), 0, 0},
    {"activation", CNN_FIELD_ACTIVATION, CNN_SPEC_FIELD(conv2d_transpose.activation), 0, 0},
    {"use_bias", CNN_FIELD_USE_BIAS, CNN_SPEC_FIELD(conv2d_transpose.no_bias), 0, 0},
    {"kernel_regularizer", CNN_FIELD_L2, CNN_SPEC_FIELD(conv2d_transpose.kernel_l2), 0, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(conv2d_transpose.name), 0, 0},
};

const cnn_layer_ops cnn_conv2d_transpose_ops = {
    .create = cnn_layer_conv2d_transpose_create,
    .kind = CNN_LAYER_CONV2D_TRANSPOSE,
    .type_name = "Conv2DTranspose",
    .auto_name = "conv2d_transpose",
    .infer = ct_infer,
    .init = ct_init,
    .workspace_floats = ct_workspace,
    .flops = ct_flops,
    .forward = ct_forward,
    .backward = ct_backward,
    CNN_LAYER_FIELDS(conv2d_transpose_fields),
    .class_alias = "Convolution2DTranspose",
    /* Keras 2.12's order: Conv's keys, then output_padding (Keras 3 has no
     * groups here, and takes output_padding though it does not write it) */
    .keras_keys = "filters kernel_size strides padding data_format dilation_rate "
                  "activation use_bias kernel_initializer bias_initializer "
                  "kernel_regularizer bias_regularizer activity_regularizer "
                  "kernel_constraint bias_constraint output_padding",
    .keras_build_config = true,
};

static cnn_status check_pair(const char *layer, const char *field, const int v[2], int min)
{
    if (v[0] < min || v[1] < min || v[0] > CNN_CONV_MAX_WINDOW || v[1] > CNN_CONV_MAX_WINDOW)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (Conv2DTranspose): %s must be in [%d, %d], got (%d, %d)", layer,
                        field, min, CNN_CONV_MAX_WINDOW, v[0], v[1]);
    return CNN_OK;
}

static cnn_status cnn_layer_conv2d_transpose_create(cnn_layer **out, const cnn_layer_spec *spec,
                                                    const char *name)
{
    *out = NULL;
    cnn_conv2d_transpose_config k = spec->u.conv2d_transpose;
    if (!k.strides[0] && !k.strides[1])
        k.strides[0] = k.strides[1] = 1;
    if (!k.dilation_rate[0] && !k.dilation_rate[1])
        k.dilation_rate[0] = k.dilation_rate[1] = 1;
    if (k.filters < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (Conv2DTranspose): filters must be >= 1, got %d", name, k.filters);
    cnn_status st;
    if ((st = check_pair(name, "kernel_size", k.kernel_size, 1))
        || (st = check_pair(name, "strides", k.strides, 1))
        || (st = check_pair(name, "dilation_rate", k.dilation_rate, 1)))
        return st;
    if ((k.strides[0] > 1 || k.strides[1] > 1)
        && (k.dilation_rate[0] > 1 || k.dilation_rate[1] > 1))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (Conv2DTranspose): strides > 1 cannot be combined with"
                        " dilation_rate > 1 (as in Keras)",
                        name);
    if (k.output_padding.set) {
        const int *p = k.output_padding.value;
        if (p[0] < 0 || p[1] < 0 || p[0] >= k.strides[0] || p[1] >= k.strides[1])
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "%s (Conv2DTranspose): output_padding must be >= 0 and less than"
                            " the strides (%d, %d) (as in Keras), got (%d, %d)",
                            name, k.strides[0], k.strides[1], p[0], p[1]);
    } else {
        k.output_padding.value[0] = k.output_padding.value[1] = 0;
    }
    if (k.padding != CNN_PADDING_VALID && k.padding != CNN_PADDING_SAME)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (Conv2DTranspose): padding must be valid or same", name);
    if ((unsigned)k.activation >= CNN_ACTIVATION_COUNT)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (Conv2DTranspose): unknown activation %d",
                        name, (int)k.activation);
    if ((st = cnn_layer_check_l2(name, "Conv2DTranspose", "kernel_regularizer", k.kernel_l2)))
        return st;
    cnn_layer *l;
    if ((st = cnn_layer_alloc(&l, sizeof(conv2d_transpose_layer), &cnn_conv2d_transpose_ops,
                              name)))
        return st;
    l->spec.kind = CNN_LAYER_CONV2D_TRANSPOSE;
    l->spec.u.conv2d_transpose = k;
    l->activation = k.activation;
    *out = l;
    return CNN_OK;
}
