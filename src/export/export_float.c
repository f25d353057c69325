/* The float model as C: each layer becomes one call of a runtime kernel
 * (runtime.c) on arena offsets from the memory planner, its weights const
 * arrays. A layer kind or activation without a kernel here is refused by
 * name before anything is written: nothing is ever approximated. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "export/export.h"
#include "kernels/conv.h"

static cnn_status refuse(const cnn_model *m, int i, const char *why)
{
    const cnn_layer *l = m->layers[i];
    return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "export: layer %d '%s' (%s): %s", i, l->name,
                    l->ops->type_name, why);
}

static bool activation_supported(cnn_activation a)
{
    switch (a) {
    case CNN_ACTIVATION_GELU:
    case CNN_ACTIVATION_GELU_TANH:
    case CNN_ACTIVATION_SOFTPLUS:
    case CNN_ACTIVATION_MISH:
        return false;
    default:
        return (unsigned)a <= CNN_ACTIVATION_MISH;
    }
}

cnn_status export_float_check(const cnn_model *m)
{
    for (int i = 0; i < m->n_layers; i++) {
        const cnn_layer *l = m->layers[i];
        switch (l->ops->kind) {
        case CNN_LAYER_CONV2D:
        case CNN_LAYER_DEPTHWISE_CONV2D:
        case CNN_LAYER_DENSE:
        case CNN_LAYER_MAX_POOLING2D:
        case CNN_LAYER_AVERAGE_POOLING2D:
        case CNN_LAYER_GLOBAL_AVERAGE_POOLING2D:
        case CNN_LAYER_GLOBAL_MAX_POOLING2D:
        case CNN_LAYER_BATCH_NORMALIZATION:
        case CNN_LAYER_ACTIVATION:
        case CNN_LAYER_SOFTMAX:
        case CNN_LAYER_RELU:
        case CNN_LAYER_LEAKY_RELU:
        case CNN_LAYER_ELU:
        case CNN_LAYER_RESCALING:
        case CNN_LAYER_DROPOUT:
        case CNN_LAYER_SPATIAL_DROPOUT2D:
        case CNN_LAYER_FLATTEN:
        case CNN_LAYER_RESHAPE:
        case CNN_LAYER_ZERO_PADDING2D:
        case CNN_LAYER_CROPPING2D:
        case CNN_LAYER_CONCATENATE:
            break;
        case CNN_LAYER_ADD:
        case CNN_LAYER_SUBTRACT:
        case CNN_LAYER_MULTIPLY:
        case CNN_LAYER_AVERAGE:
        case CNN_LAYER_MAXIMUM:
        case CNN_LAYER_MINIMUM:
            break;
        case CNN_LAYER_UP_SAMPLING2D:
            if (l->spec.u.up_sampling2d.interpolation != CNN_INTERPOLATION_NEAREST)
                return refuse(m, i, "only nearest interpolation is exported");
            break;
        default:
            return refuse(m, i, "this layer kind has no exported kernel");
        }
        if (!activation_supported(l->activation)) {
            char why[96];
            snprintf(why, sizeof why, "activation '%s' has no exported kernel",
                     cnn_activation_name(l->activation) ? cnn_activation_name(l->activation)
                                                        : "?");
            return refuse(m, i, why);
        }
        for (int p = 0; p < l->n_params; p++)
            for (int64_t k = 0; k < l->params[p].count; k++)
                if (!isfinite(l->params[p].value[k]))
                    return cnn_fail(CNN_ERR_NUMERIC, "export: layer %d '%s': weight %s[%lld] is "
                                    "not finite", i, l->name, l->params[p].name, (long long)k);
    }
    return CNN_OK;
}

/* What layer i reads as its k-th input, as a C expression. */
static void input_expr(const cnn_model *m, const size_t *offsets, int i, int k, char *buf,
                       size_t size)
{
    int p = m->layers[i]->inputs[k];
    if (p < 0)
        snprintf(buf, size, "input");
    else
        snprintf(buf, size, "arena + %zu", offsets[p]);
}

static void weights_of(export_text *w, int i, const cnn_param *p)
{
    char name[64];
    snprintf(name, sizeof name, "L%d_%s", i, p->name);
    export_float_array(w, name, p->value, p->count);
}

static void geometry(const cnn_layer *l, int kh, int kw, int sh, int sw, int dh, int dw,
                     bool same, int *pt, int *pl)
{
    cnn_conv_out_size(l->in.dims[0], kh, sh, dh, same, pt);
    cnn_conv_out_size(l->in.dims[1], kw, sw, dw, same, pl);
}

cnn_status export_float_layers(const cnn_model *m, const size_t *offsets, export_text *weights,
                               export_text *body, unsigned *need)
{
    *need = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const cnn_layer *l = m->layers[i];
        const cnn_layer_spec *s = &l->spec;
        char x[48], y[48], out_s[64], in_s[64];
        input_expr(m, offsets, i, 0, x, sizeof x);
        /* the last layer writes the caller's output (nothing reads it) */
        if (i == m->n_layers - 1)
            snprintf(y, sizeof y, "output");
        else
            snprintf(y, sizeof y, "arena + %zu", offsets[i]);
        const long n = (long)cnn_shape_size(l->out);
        const int H = l->in.dims[0], W = l->in.dims[1], C = l->in.dims[l->in.rank - 1];
        const int OH = l->out.dims[0], OW = l->out.dims[1];
        const int last = l->out.dims[l->out.rank - 1];
        char bias[32] = "0";
        if (l->n_params > 1 && l->params[l->n_params - 1].count > 0 &&
            strcmp(l->params[l->n_params - 1].name, "bias") == 0)
            snprintf(bias, sizeof bias, "L%d_bias", i);
        export_shape_text(l->in, in_s, sizeof in_s);
        export_shape_text(l->out, out_s, sizeof out_s);
        export_printf(body, "    /* %d %s (%s): %s -> %s */\n", i, l->name, l->ops->type_name,
                      in_s, out_s);
        switch (l->ops->kind) {
        case CNN_LAYER_CONV2D: {
            const cnn_conv2d_config *c = &s->u.conv2d;
            int pt, pl;
            geometry(l, c->kernel_size[0], c->kernel_size[1], c->strides[0], c->strides[1],
                     c->dilation_rate[0], c->dilation_rate[1], c->padding == CNN_PADDING_SAME,
                     &pt, &pl);
            for (int p = 0; p < l->n_params; p++)
                weights_of(weights, i, &l->params[p]);
            export_printf(body,
                          "    k_conv2d(%s, %d, %d, %d, L%d_kernel, %s, %d, %d, %d, %d, %d, %d, "
                          "%d, %d, %d, %d, %d, %s);\n",
                          x, H, W, C, i, bias, c->kernel_size[0],
                          c->kernel_size[1], c->strides[0], c->strides[1], c->dilation_rate[0],
                          c->dilation_rate[1], pt, pl, OH, OW, c->filters, y);
            *need |= EXPORT_NEED_CONV;
            break;
        }
        case CNN_LAYER_DEPTHWISE_CONV2D: {
            const cnn_depthwise_conv2d_config *c = &s->u.depthwise_conv2d;
            int pt, pl;
            geometry(l, c->kernel_size[0], c->kernel_size[1], c->strides[0], c->strides[1],
                     c->dilation_rate[0], c->dilation_rate[1], c->padding == CNN_PADDING_SAME,
                     &pt, &pl);
            for (int p = 0; p < l->n_params; p++)
                weights_of(weights, i, &l->params[p]);
            export_printf(body,
                          "    k_depthwise(%s, %d, %d, %d, %d, L%d_depthwise_kernel, %s, %d, %d, "
                          "%d, %d, %d, %d, %d, %d, %d, %d, %s);\n",
                          x, H, W, C, c->depth_multiplier, i, bias,
                          c->kernel_size[0], c->kernel_size[1], c->strides[0], c->strides[1],
                          c->dilation_rate[0], c->dilation_rate[1], pt, pl, OH, OW, y);
            *need |= EXPORT_NEED_DEPTHWISE;
            break;
        }
        case CNN_LAYER_DENSE:
            for (int p = 0; p < l->n_params; p++)
                weights_of(weights, i, &l->params[p]);
            export_printf(body, "    k_dense(%s, %ldL, %d, L%d_kernel, %s, %d, %s);\n", x,
                          (long)(cnn_shape_size(l->in) / C), C, i, bias,
                          s->u.dense.units, y);
            *need |= EXPORT_NEED_DENSE;
            break;
        case CNN_LAYER_MAX_POOLING2D:
        case CNN_LAYER_AVERAGE_POOLING2D: {
            const cnn_pool2d_config *c = &s->u.pool2d;
            int pt, pl;
            geometry(l, c->pool_size[0], c->pool_size[1], c->strides[0], c->strides[1], 1, 1,
                     c->padding == CNN_PADDING_SAME, &pt, &pl);
            export_printf(body, "    k_pool(%s, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, "
                          "%s);\n", x, H, W, C, c->pool_size[0], c->pool_size[1], c->strides[0],
                          c->strides[1], pt, pl, OH, OW,
                          l->ops->kind == CNN_LAYER_MAX_POOLING2D, y);
            *need |= EXPORT_NEED_POOL;
            break;
        }
        case CNN_LAYER_GLOBAL_AVERAGE_POOLING2D:
        case CNN_LAYER_GLOBAL_MAX_POOLING2D:
            export_printf(body, "    k_global_pool(%s, %ldL, %d, %d, %s);\n", x,
                          (long)H * W, C, l->ops->kind == CNN_LAYER_GLOBAL_MAX_POOLING2D, y);
            *need |= EXPORT_NEED_GLOBAL_POOL;
            break;
        case CNN_LAYER_BATCH_NORMALIZATION: {
            /* folded: scale = gamma / sqrt(var + eps), shift = beta - mean scale */
            float *scale = malloc((size_t)C * 2 * sizeof(float));
            if (!scale)
                return cnn_fail(CNN_ERR_NO_MEMORY, "export: out of memory");
            float *shift = scale + C;
            const float eps = s->u.batch_normalization.epsilon;
            for (int c = 0; c < C; c++) {
                double sc = l->params[0].value[c] / sqrt((double)l->params[3].value[c] + eps);
                scale[c] = (float)sc;
                shift[c] = (float)(l->params[1].value[c] - l->params[2].value[c] * sc);
            }
            char name[64];
            snprintf(name, sizeof name, "L%d_scale", i);
            export_float_array(weights, name, scale, C);
            snprintf(name, sizeof name, "L%d_shift", i);
            export_float_array(weights, name, shift, C);
            free(scale);
            export_printf(body, "    k_affine(%s, %ldL, %d, L%d_scale, L%d_shift, %s);\n", x, n, C,
                          i, i, y);
            *need |= EXPORT_NEED_AFFINE;
            break;
        }
        case CNN_LAYER_RESCALING: {
            char name[64];
            snprintf(name, sizeof name, "L%d_scale", i);
            export_float_array(weights, name, &s->u.rescaling.scale, 1);
            snprintf(name, sizeof name, "L%d_offset", i);
            export_float_array(weights, name, &s->u.rescaling.offset, 1);
            export_printf(body, "    k_affine(%s, %ldL, 1, L%d_scale, L%d_offset, %s);\n", x, n,
                          i, i, y);
            *need |= EXPORT_NEED_AFFINE;
            break;
        }
        case CNN_LAYER_RELU: {
            const cnn_relu_config *r = &s->u.relu;
            export_puts(body, "    k_relu(");
            export_printf(body, "%s, %ldL, ", x, n);
            export_float(body, r->max_value > 0 ? r->max_value : -1.0f);
            export_puts(body, ", ");
            export_float(body, r->threshold);
            export_puts(body, ", ");
            export_float(body, r->negative_slope);
            export_printf(body, ", 0, %s);\n", y);
            *need |= EXPORT_NEED_RELU;
            break;
        }
        case CNN_LAYER_LEAKY_RELU:
        case CNN_LAYER_ELU: {
            bool elu = l->ops->kind == CNN_LAYER_ELU;
            export_printf(body, "    k_relu(%s, %ldL, -1.0f, 0.0f, ", x, n);
            export_float(body, elu ? s->u.elu.alpha : s->u.leaky_relu.negative_slope);
            export_printf(body, ", %d, %s);\n", elu, y);
            *need |= EXPORT_NEED_RELU;
            break;
        }
        case CNN_LAYER_SOFTMAX:
            export_printf(body, "    k_copy(%s, %ldL, %s);\n    k_act(%s, %ldL, 4, %dL);\n", x,
                          n, y, y, n, last);
            *need |= EXPORT_NEED_COPY | EXPORT_NEED_ACT;
            break;
        case CNN_LAYER_ACTIVATION:
        case CNN_LAYER_DROPOUT:
        case CNN_LAYER_SPATIAL_DROPOUT2D:
        case CNN_LAYER_FLATTEN:
        case CNN_LAYER_RESHAPE:
            export_printf(body, "    k_copy(%s, %ldL, %s);\n", x, n, y);
            *need |= EXPORT_NEED_COPY;
            break;
        case CNN_LAYER_ZERO_PADDING2D:
        case CNN_LAYER_CROPPING2D: {
            bool pad = l->ops->kind == CNN_LAYER_ZERO_PADDING2D;
            const int *e = pad ? s->u.zero_padding2d.padding : s->u.cropping2d.cropping;
            int top = e[0], left = e[2];
            if (pad && !e[0] && !e[1] && !e[2] && !e[3])
                top = left = 1; /* Keras's default */
            export_printf(body, "    k_window(%s, %d, %d, %d, %d, %d, %d, %d, %d, %d, %s);\n", x, W,
                          C, top, left, OH, OW, H, W, pad, y);
            *need |= EXPORT_NEED_WINDOW;
            break;
        }
        case CNN_LAYER_UP_SAMPLING2D:
            export_printf(body, "    k_upsample(%s, %d, %d, %d, %d, %d, %d, %s);\n", x, W, C,
                          s->u.up_sampling2d.size[0], s->u.up_sampling2d.size[1], OH, OW, y);
            *need |= EXPORT_NEED_UPSAMPLE;
            break;
        case CNN_LAYER_CONCATENATE: {
            int rank = l->out.rank, axis = s->u.concatenate.axis ? s->u.concatenate.axis : -1;
            axis = axis < 0 ? rank + axis : axis - 1;
            long outer = 1;
            for (int d = 0; d < axis; d++)
                outer *= l->out.dims[d];
            export_printf(body, "    {\n        static const long inner[%d] = {", l->n_inputs);
            for (int k = 0; k < l->n_inputs; k++) {
                long inner = 1;
                for (int d = axis; d < rank; d++)
                    inner *= l->ins[k].dims[d];
                export_printf(body, k ? ", %ldL" : "%ldL", inner);
            }
            export_printf(body, "};\n        const float *xs[%d];\n", l->n_inputs);
            for (int k = 0; k < l->n_inputs; k++) {
                input_expr(m, offsets, i, k, x, sizeof x);
                export_printf(body, "        xs[%d] = %s;\n", k, x);
            }
            export_printf(body, "        k_concat(xs, inner, %d, %ldL, %s);\n    }\n",
                          l->n_inputs, outer, y);
            *need |= EXPORT_NEED_CONCAT;
            break;
        }
        default: { /* the merge kinds */
            static const cnn_layer_kind ops[] = {CNN_LAYER_ADD,     CNN_LAYER_SUBTRACT,
                                                 CNN_LAYER_MULTIPLY, CNN_LAYER_AVERAGE,
                                                 CNN_LAYER_MAXIMUM, CNN_LAYER_MINIMUM};
            int op = -1;
            for (int k = 0; k < 6; k++)
                if (ops[k] == l->ops->kind)
                    op = k;
            if (op < 0)
                return refuse(m, i, "this layer kind has no exported kernel");
            bool broadcast = false;
            for (int k = 0; k < l->n_inputs; k++)
                broadcast |= cnn_shape_size(l->ins[k]) != n;
            export_printf(body, "    {\n        const float *xs[%d];\n", l->n_inputs);
            if (broadcast) {
                /* Keras's rule: shapes aligned at the last axis, a size 1 repeated */
                long od[3] = {1, 1, 1};
                for (int d = 0; d < l->out.rank; d++)
                    od[3 - l->out.rank + d] = l->out.dims[d];
                export_printf(body, "        static const long od[3] = {%ldL, %ldL, %ldL};\n"
                              "        static const long st[%d][3] = {", od[0], od[1], od[2],
                              l->n_inputs);
                for (int k = 0; k < l->n_inputs; k++) {
                    long e[3] = {1, 1, 1};
                    for (int d = 0; d < l->ins[k].rank; d++)
                        e[3 - l->ins[k].rank + d] = l->ins[k].dims[d];
                    export_printf(body, "%s{%ldL, %ldL, %ldL}", k ? ", " : "",
                                  e[0] == 1 ? 0 : e[1] * e[2], e[1] == 1 ? 0 : e[2],
                                  e[2] == 1 ? 0L : 1L);
                }
                export_puts(body, "};\n");
            }
            for (int k = 0; k < l->n_inputs; k++) {
                input_expr(m, offsets, i, k, x, sizeof x);
                export_printf(body, "        xs[%d] = %s;\n", k, x);
            }
            if (broadcast) {
                export_printf(body, "        k_merge_b(xs, st, %d, od, %d, %s);\n    }\n",
                              l->n_inputs, op, y);
                *need |= EXPORT_NEED_MERGE_B;
            } else {
                export_printf(body, "        k_merge(xs, %d, %ldL, %d, %s);\n    }\n",
                              l->n_inputs, n, op, y);
                *need |= EXPORT_NEED_MERGE;
            }
            break;
        }
        }
        if (l->activation != CNN_ACTIVATION_LINEAR) {
            export_printf(body, "    k_act(%s, %ldL, %d, %dL); /* %s */\n", y, n,
                          (int)l->activation, last, cnn_activation_name(l->activation));
            *need |= EXPORT_NEED_ACT;
        }
    }
    return CNN_OK;
}
