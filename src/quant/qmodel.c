/* cnn_qmodel_create: calibration and conversion of a float model - a chain
 * or a graph - into int8 ops (quant/qmodel.h). Uses only the float model's
 * public accessors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/activation.h"
#include "quant/qcalib.h"
#include "quant/qmodel_impl.h"

int64_t cnn_qshape_elems(cnn_shape s)
{
    int64_t n = 1;
    for (int i = 0; i < s.rank; i++)
        n *= s.dims[i];
    return n;
}

static cnn_shape in_shape_of(const cnn_model *m, int layer)
{
    return layer < 0 ? cnn_model_input_shape(m) : cnn_model_layer_output_shape(m, layer);
}

/* ---- Which layers, fused how ----------------------------------------- */

/* The clamp of a relu-like layer spec: 1 relu, 2 relu6, 0 none/other. */
static int relu_kind(const cnn_layer_spec *s)
{
    if (s->kind == CNN_LAYER_ACTIVATION) {
        if (s->u.activation.activation == CNN_ACTIVATION_RELU)
            return 1;
        if (s->u.activation.activation == CNN_ACTIVATION_RELU6)
            return 2;
        return 0;
    }
    if (s->kind == CNN_LAYER_RELU && s->u.relu.negative_slope == 0 && s->u.relu.threshold == 0) {
        if (s->u.relu.max_value == 0)
            return 1;
        if (s->u.relu.max_value == 6)
            return 2;
    }
    return 0;
}

static cnn_status refuse(const cnn_model *m, int i, const char *why)
{
    return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantize: layer %d '%s' (%s): %s", i,
                    cnn_model_layer_name(m, i), cnn_model_layer_type(m, i), why);
}

static cnn_qact act_of(int clamp)
{
    return clamp == 2 ? CNN_QACT_RELU6 : clamp == 1 ? CNN_QACT_RELU : CNN_QACT_NONE;
}

static void conv_geom(cnn_shape in, int kh, int kw, int sh, int sw, int dh, int dw, bool same,
                      cnn_conv_geom *g)
{
    *g = (cnn_conv_geom){.h = in.dims[0], .w = in.dims[1], .c = in.dims[2], .kh = kh, .kw = kw,
                         .sh = sh, .sw = sw, .dh = dh, .dw = dw};
    g->oh = cnn_conv_out_size(g->h, kh, sh, dh, same, &g->pad_top);
    g->ow = cnn_conv_out_size(g->w, kw, sw, dw, same, &g->pad_left);
}

/* The planner's state over the float layers. */
typedef struct {
    cnn_model *m;
    cnn_qmodel *q;
    int L;
    int *val;     /* per layer: the value holding its output, -1 not yet */
    int *readers; /* per layer: how many layers read it (+1 for the model's output) */
    int *reader;  /* per layer: one of them */
    int cap_ops, cap_values;
} planner;

static cnn_status new_value(planner *p, int64_t elems, int *id)
{
    cnn_qmodel *q = p->q;
    if (q->nvalues == p->cap_values) {
        int cap = p->cap_values ? 2 * p->cap_values : 16;
        cnn_qvalue *v = realloc(q->values, (size_t)cap * sizeof *v);
        if (!v)
            return cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
        q->values = v;
        p->cap_values = cap;
    }
    q->values[q->nvalues] = (cnn_qvalue){.elems = elems, .p = {1.0f, 0}};
    *id = q->nvalues++;
    return CNN_OK;
}

static cnn_status new_op(planner *p, cnn_qop_kind kind, int layer, cnn_qop **out)
{
    cnn_qmodel *q = p->q;
    if (q->nops == p->cap_ops) {
        int cap = p->cap_ops ? 2 * p->cap_ops : 16;
        cnn_qop *o = realloc(q->ops, (size_t)cap * sizeof *o);
        if (!o)
            return cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
        q->ops = o;
        p->cap_ops = cap;
    }
    cnn_qop *op = &q->ops[q->nops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->layer = op->wlayer = layer;
    op->bnlayer = -1;
    snprintf(op->name, sizeof op->name, "%s", cnn_model_layer_name(p->m, layer));
    *out = op;
    return CNN_OK;
}

/* The single layer reading layer i, if it reads nothing else, or -1. */
static int sole_reader(const planner *p, int i)
{
    if (i == p->L - 1 || p->readers[i] != 1)
        return -1;
    int r = p->reader[i];
    return cnn_model_layer_input_count(p->m, r) == 1 ? r : -1;
}

/* After a weighted op or an Add whose float output is layer *last: folds
 * a BatchNormalization (weighted ops with a linear activation only) and
 * fuses a relu that are its only readers; returns the layer whose output
 * the op yields in *last. */
static void absorb(planner *p, cnn_qop *op, bool weighted, int *last)
{
    cnn_layer_spec s;
    int r = sole_reader(p, *last);
    if (weighted && r >= 0 && cnn_model_layer_spec(p->m, r, &s) == CNN_OK &&
        s.kind == CNN_LAYER_BATCH_NORMALIZATION) {
        op->bnlayer = r;
        op->bn_eps = s.u.batch_normalization.epsilon;
        *last = r;
        r = sole_reader(p, r);
    }
    if (r >= 0 && cnn_model_layer_spec(p->m, r, &s) == CNN_OK && relu_kind(&s)) {
        op->clamp = relu_kind(&s);
        *last = r;
    }
}

/* Gives the layers absorbed up to last (through the sole-reader chain from
 * first) the op's output value. */
static void assign_chain(planner *p, int first, int last, int value)
{
    for (int i = first;; i = p->reader[i]) {
        p->val[i] = value;
        if (i == last)
            break;
    }
}

static int value_of(const planner *p, int layer) { return layer < 0 ? 0 : p->val[layer]; }

/* A weighted op (conv, depthwise, dense) for layer i with fused activation
 * act. */
static cnn_status plan_weighted(planner *p, int i, cnn_qop *op, cnn_activation act)
{
    int last = i, in = cnn_model_layer_input(p->m, i, 0);
    op->n_inputs = 1;
    op->inputs[0] = value_of(p, in);
    op->calib = true;
    int lut = 0;
    switch (act) {
    case CNN_ACTIVATION_LINEAR: absorb(p, op, true, &last); break;
    case CNN_ACTIVATION_RELU: op->clamp = 1; break;
    case CNN_ACTIVATION_RELU6: op->clamp = 2; break;
    case CNN_ACTIVATION_TANH: op->preact = 1; lut = 1; break;
    case CNN_ACTIVATION_SIGMOID: op->preact = 2; lut = 1; break;
    case CNN_ACTIVATION_SOFTMAX:
        if (i != p->L - 1 || op->kind != CNN_QOP_DENSE)
            return refuse(p->m, i, "softmax is only quantized on the last Dense layer");
        op->preact = 3;
        p->q->softmax = true;
        break;
    default:
        return refuse(p->m, i, "int8 fuses linear, relu, relu6, tanh, sigmoid and a final "
                               "softmax only");
    }
    op->layer = last;
    cnn_status st = new_value(p, cnn_qshape_elems(cnn_model_layer_output_shape(p->m, i)),
                              &op->output);
    if (st)
        return st;
    if (!lut) {
        assign_chain(p, i, last, op->output);
        return CNN_OK;
    }
    /* the table after it maps the pre-activation value onto the layer's output */
    int pre = op->output;
    cnn_qop *t;
    if ((st = new_op(p, CNN_QOP_LUT, i, &t)))
        return st;
    t->n_inputs = 1;
    t->inputs[0] = pre;
    t->lut_fn = 1;
    t->lut_act = act;
    if ((st = new_value(p, p->q->values[pre].elems, &t->output)))
        return st;
    p->val[i] = t->output;
    return CNN_OK;
}

/* TFLite's fixed output parameters of int8 tanh and sigmoid. */
static bool fixed_lut_params(cnn_activation a, cnn_qparams *p)
{
    if (a == CNN_ACTIVATION_TANH) {
        *p = (cnn_qparams){1.0f / 128, 0};
        return true;
    }
    if (a == CNN_ACTIVATION_SIGMOID) {
        *p = (cnn_qparams){1.0f / 256, -128};
        return true;
    }
    return false;
}

/* An elementwise op (clamp or table) for layer i reading its one input. */
static cnn_status plan_elementwise(planner *p, int i, const cnn_layer_spec *s)
{
    cnn_qop *op;
    int clamp = relu_kind(s);
    cnn_status st = new_op(p, clamp ? CNN_QOP_CLAMP : CNN_QOP_LUT, i, &op);
    if (st)
        return st;
    op->n_inputs = 1;
    op->inputs[0] = value_of(p, cnn_model_layer_input(p->m, i, 0));
    op->clamp = clamp;
    if (!clamp) {
        op->calib = true;
        switch (s->kind) {
        case CNN_LAYER_ACTIVATION:
            op->lut_fn = 1;
            op->lut_act = s->u.activation.activation;
            break;
        case CNN_LAYER_LEAKY_RELU:
            op->lut_fn = 2;
            op->lut_a = s->u.leaky_relu.negative_slope;
            break;
        case CNN_LAYER_ELU:
            op->lut_fn = 3;
            op->lut_a = s->u.elu.alpha;
            break;
        default: /* CNN_LAYER_RELU with a slope, threshold or another cap */
            op->lut_fn = 4;
            op->lut_a = s->u.relu.max_value;
            op->lut_b = s->u.relu.negative_slope;
            op->lut_c = s->u.relu.threshold;
            break;
        }
    }
    if ((st = new_value(p, cnn_qshape_elems(cnn_model_layer_output_shape(p->m, i)), &op->output)))
        return st;
    p->val[i] = op->output;
    return CNN_OK;
}

static cnn_status plan_layer(planner *p, int i)
{
    cnn_model *m = p->m;
    cnn_layer_spec s;
    cnn_status st = cnn_model_layer_spec(m, i, &s);
    if (st)
        return st;
    int nin = cnn_model_layer_input_count(m, i), in0 = cnn_model_layer_input(m, i, 0);
    cnn_shape in = in_shape_of(m, in0), outs = cnn_model_layer_output_shape(m, i);
    cnn_qop *op = NULL;
    switch (s.kind) {
    case CNN_LAYER_CONV2D: {
        const cnn_conv2d_config *c = &s.u.conv2d;
        if ((st = new_op(p, CNN_QOP_CONV, i, &op)))
            return st;
        op->N = c->filters;
        conv_geom(in, c->kernel_size[0], c->kernel_size[1], c->strides[0], c->strides[1],
                  c->dilation_rate[0], c->dilation_rate[1], c->padding == CNN_PADDING_SAME, &op->g);
        if ((int64_t)op->g.kh * op->g.kw * op->g.c > CNN_QGEMM_MAX_K)
            return refuse(m, i, "kernel_size x input channels exceeds 65536");
        op->K = op->g.kh * op->g.kw * op->g.c;
        return plan_weighted(p, i, op, c->activation);
    }
    case CNN_LAYER_DEPTHWISE_CONV2D: {
        const cnn_depthwise_conv2d_config *c = &s.u.depthwise_conv2d;
        if ((st = new_op(p, CNN_QOP_DEPTHWISE, i, &op)))
            return st;
        op->mult = c->depth_multiplier;
        conv_geom(in, c->kernel_size[0], c->kernel_size[1], c->strides[0], c->strides[1],
                  c->dilation_rate[0], c->dilation_rate[1], c->padding == CNN_PADDING_SAME, &op->g);
        op->N = op->g.c * op->mult;
        op->K = op->g.kh * op->g.kw;
        return plan_weighted(p, i, op, c->activation);
    }
    case CNN_LAYER_DENSE:
        if (in.rank != 1)
            return refuse(m, i, "int8 Dense takes a flat input (add Flatten)");
        if (in.dims[0] > CNN_QGEMM_MAX_K)
            return refuse(m, i, "more than 65536 inputs");
        if ((st = new_op(p, CNN_QOP_DENSE, i, &op)))
            return st;
        op->N = s.u.dense.units;
        op->K = in.dims[0];
        return plan_weighted(p, i, op, s.u.dense.activation);
    case CNN_LAYER_MAX_POOLING2D:
    case CNN_LAYER_AVERAGE_POOLING2D: {
        const cnn_pool2d_config *c = &s.u.pool2d;
        if ((st = new_op(p, s.kind == CNN_LAYER_MAX_POOLING2D ? CNN_QOP_MAXPOOL : CNN_QOP_AVGPOOL,
                         i, &op)))
            return st;
        conv_geom(in, c->pool_size[0], c->pool_size[1], c->strides[0], c->strides[1], 1, 1,
                  c->padding == CNN_PADDING_SAME, &op->g);
        break;
    }
    case CNN_LAYER_GLOBAL_AVERAGE_POOLING2D:
    case CNN_LAYER_GLOBAL_MAX_POOLING2D:
        if (in.rank != 3)
            return refuse(m, i, "global pooling takes an image");
        if ((st = new_op(p, s.kind == CNN_LAYER_GLOBAL_MAX_POOLING2D ? CNN_QOP_GLOBAL_MAX
                                                                      : CNN_QOP_GLOBAL_AVG,
                         i, &op)))
            return st;
        op->g = (cnn_conv_geom){.h = in.dims[0], .w = in.dims[1], .c = in.dims[2],
                                .kh = in.dims[0], .kw = in.dims[1], .sh = in.dims[0],
                                .sw = in.dims[1], .dh = 1, .dw = 1, .oh = 1, .ow = 1};
        if ((int64_t)in.dims[0] * in.dims[1] > (1 << 22))
            return refuse(m, i, "more than 2^22 pixels to average");
        if (op->kind == CNN_QOP_GLOBAL_AVG) {
            /* its own output parameters: the average's range is far smaller than its input's */
            op->calib = true;
            op->N = in.dims[2];
        }
        break;
    case CNN_LAYER_ZERO_PADDING2D:
        if ((st = new_op(p, CNN_QOP_PAD, i, &op)))
            return st;
        op->g = (cnn_conv_geom){.h = in.dims[0], .w = in.dims[1], .c = in.dims[2],
                                .oh = outs.dims[0], .ow = outs.dims[1]};
        memcpy(op->pad, s.u.zero_padding2d.padding, sizeof op->pad);
        if (!op->pad[0] && !op->pad[1] && !op->pad[2] && !op->pad[3])
            op->pad[0] = op->pad[1] = op->pad[2] = op->pad[3] = 1;
        break;
    case CNN_LAYER_ADD: {
        if (nin != 2)
            return refuse(m, i, "int8 Add takes exactly two inputs");
        if (cnn_qshape_elems(in) != cnn_qshape_elems(in_shape_of(m, cnn_model_layer_input(m, i, 1))))
            return refuse(m, i, "int8 Add does not broadcast");
        if ((st = new_op(p, CNN_QOP_ADD, i, &op)))
            return st;
        op->n_inputs = 2;
        op->inputs[0] = value_of(p, in0);
        op->inputs[1] = value_of(p, cnn_model_layer_input(m, i, 1));
        op->calib = true;
        int last = i;
        absorb(p, op, false, &last);
        op->layer = last;
        if ((st = new_value(p, cnn_qshape_elems(outs), &op->output)))
            return st;
        assign_chain(p, i, last, op->output);
        return CNN_OK;
    }
    case CNN_LAYER_CONCATENATE: {
        int axis = s.u.concatenate.axis;
        if (axis != 0 && axis != -1 && axis != in.rank)
            return refuse(m, i, "int8 Concatenate joins the last axis only");
        if ((st = new_op(p, CNN_QOP_CONCAT, i, &op)))
            return st;
        op->n_inputs = nin;
        op->channels = calloc((size_t)nin, sizeof(int));
        if (!op->channels)
            return cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
        for (int k = 0; k < nin; k++) {
            int src = cnn_model_layer_input(m, i, k);
            cnn_shape sh = in_shape_of(m, src);
            op->inputs[k] = value_of(p, src);
            op->channels[k] = sh.dims[sh.rank - 1];
        }
        op->calib = true;
        break;
    }
    case CNN_LAYER_FLATTEN:
    case CNN_LAYER_RESHAPE:
    case CNN_LAYER_DROPOUT:
    case CNN_LAYER_SPATIAL_DROPOUT2D:
        p->val[i] = value_of(p, in0); /* the same bytes, the same parameters */
        return CNN_OK;
    case CNN_LAYER_SOFTMAX:
    case CNN_LAYER_ACTIVATION:
        if (s.kind == CNN_LAYER_SOFTMAX ||
            s.u.activation.activation == CNN_ACTIVATION_SOFTMAX) {
            if (i != p->L - 1)
                return refuse(m, i, "softmax is only quantized as the last layer");
            if (p->q->nops == 0)
                return refuse(m, i, "nothing to quantize before the softmax");
            if (s.kind == CNN_LAYER_SOFTMAX && outs.rank != 1)
                return refuse(m, i, "int8 softmax takes a flat input");
            p->q->softmax = true;
            p->val[i] = value_of(p, in0);
            return CNN_OK;
        }
        if (s.u.activation.activation == CNN_ACTIVATION_LINEAR) {
            p->val[i] = value_of(p, in0);
            return CNN_OK;
        }
        return plan_elementwise(p, i, &s);
    case CNN_LAYER_RELU:
    case CNN_LAYER_LEAKY_RELU:
    case CNN_LAYER_ELU:
        return plan_elementwise(p, i, &s);
    case CNN_LAYER_BATCH_NORMALIZATION: {
        /* not folded (it follows a relu, or its input has other readers):
         * a per-channel affine map, so a 1x1 depthwise convolution */
        int h = in.rank == 3 ? in.dims[0] : 1, w = in.rank == 3 ? in.dims[1] : 1;
        int c = in.dims[in.rank - 1];
        if ((st = new_op(p, CNN_QOP_DEPTHWISE, i, &op)))
            return st;
        op->g = (cnn_conv_geom){.h = h, .w = w, .c = c, .kh = 1, .kw = 1, .sh = 1, .sw = 1,
                                .dh = 1, .dw = 1, .oh = h, .ow = w};
        op->mult = 1;
        op->N = c;
        op->K = 1;
        op->bn_alone = true;
        op->bn_eps = s.u.batch_normalization.epsilon;
        return plan_weighted(p, i, op, CNN_ACTIVATION_LINEAR);
    }
    default:
        return refuse(m, i, "this layer kind has no int8 kernel");
    }
    /* one input, the output keeps or calibrates parameters as set above */
    if (op->kind != CNN_QOP_CONCAT) {
        op->n_inputs = 1;
        op->inputs[0] = value_of(p, in0);
    }
    if ((st = new_value(p, cnn_qshape_elems(outs), &op->output)))
        return st;
    p->val[i] = op->output;
    return CNN_OK;
}

static cnn_status plan(planner *p)
{
    cnn_model *m = p->m;
    p->L = cnn_model_layer_count(m);
    if (p->L < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantize: the model has no layers");
    size_t n = (size_t)p->L;
    p->val = malloc(n * sizeof(int));
    p->readers = calloc(n, sizeof(int));
    p->reader = calloc(n, sizeof(int));
    if (!p->val || !p->readers || !p->reader)
        return cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
    for (int i = 0; i < p->L; i++) {
        p->val[i] = -1;
        for (int k = 0; k < cnn_model_layer_input_count(m, i); k++) {
            int j = cnn_model_layer_input(m, i, k);
            if (j >= 0) {
                p->readers[j]++;
                p->reader[j] = i;
            }
        }
    }
    p->readers[p->L - 1]++; /* the model's output is read from outside */
    int input;
    cnn_status st = new_value(p, cnn_qshape_elems(cnn_model_input_shape(m)), &input);
    for (int i = 0; i < p->L && !st; i++)
        if (p->val[i] < 0)
            st = plan_layer(p, i);
    if (st)
        return st;
    if (p->q->nops == 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantize: the model has no layer to quantize");
    p->q->output_value = p->val[p->L - 1];
    return CNN_OK;
}

/* ---- Calibration ------------------------------------------------------ */

static void range_of(const float *x, int64_t n, float *lo, float *hi)
{
    for (int64_t i = 0; i < n; i++) {
        if (x[i] < *lo)
            *lo = x[i];
        if (x[i] > *hi)
            *hi = x[i];
    }
}

/* A final Dense's logits for b examples, recomputed from its input (the
 * layer's output is the softmax of them). */
static void dense_logit_range(cnn_model *m, const cnn_qop *op, const float *x, int64_t b,
                              float *lo, float *hi)
{
    int64_t wn, bn;
    const float *w = cnn_model_layer_weights(m, op->wlayer, 0, &wn);
    const float *bias = cnn_model_layer_weights(m, op->wlayer, 1, &bn);
    for (int64_t e = 0; e < b; e++)
        for (int j = 0; j < op->N; j++) {
            double z = bias ? bias[j] : 0;
            for (int64_t i = 0; i < op->K; i++)
                z += (double)x[e * op->K + i] * w[i * op->N + j];
            float zf = (float)z;
            range_of(&zf, 1, lo, hi);
        }
}

/* The calibration examples in batches through the float model: the
 * input's range and every calibrated op's output range. next(user, start,
 * b, &view) supplies examples [start, start + b). */
typedef cnn_status (*batch_fn)(void *user, int64_t start, int64_t b, cnn_tensor *view);

/* With hist (the second pass of a histogram method), each value with a
 * histogram (hist[v] not NULL) is added to it instead. */
static cnn_status calibrate(cnn_model *m, cnn_qmodel *q, int64_t count, batch_fn next, void *user,
                            float *lo, float *hi, cnn_qhist **hist)
{
    cnn_status st = CNN_OK;
    for (int64_t start = 0; start < count && st == CNN_OK; start += QMODEL_BATCH) {
        int64_t b = count - start < QMODEL_BATCH ? count - start : QMODEL_BATCH;
        cnn_tensor view;
        if ((st = next(user, start, b, &view)))
            break;
        if (!hist)
            range_of(view.data, b * q->values[0].elems, &lo[0], &hi[0]);
        else if (hist[0])
            cnn_qhist_add(hist[0], view.data, b * q->values[0].elems);
        if ((st = cnn_model_forward(m, &view, false, NULL)) != CNN_OK)
            break;
        for (int k = 0; k < q->nops; k++) {
            const cnn_qop *op = &q->ops[k];
            int v = op->output;
            if (!op->calib || (hist && !hist[v]))
                continue;
            if (hist) {
                int64_t n = b * cnn_qshape_elems(cnn_model_layer_output_shape(m, op->layer));
                cnn_qhist_add(hist[v], cnn_model_layer_output(m, op->layer), n);
                continue;
            }
            if (op->preact == 3) {
                int src = cnn_model_layer_input(m, op->wlayer, 0);
                const float *x = src < 0 ? view.data : cnn_model_layer_output(m, src);
                dense_logit_range(m, op, x, b, &lo[v], &hi[v]);
                continue;
            }
            int64_t n = b * cnn_qshape_elems(cnn_model_layer_output_shape(m, op->layer));
            range_of(cnn_model_layer_output(m, op->layer), n, &lo[v], &hi[v]);
        }
    }
    return st;
}

/* The second pass of a histogram method: the input and every calibrated
 * op's own output (not a softmax's logits nor a table's inverse range)
 * get the method's narrower range. */
static cnn_status calibrate_hist(cnn_model *m, cnn_qmodel *q, int64_t count, batch_fn next,
                                 void *user, float *lo, float *hi, const cnn_qcalib_options *how)
{
    if (!how || how->method == CNN_QCALIB_MINMAX)
        return CNN_OK;
    cnn_qhist **hist = calloc((size_t)q->nvalues, sizeof *hist);
    cnn_status st = hist ? CNN_OK : cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
    if (!st && !(hist[0] = malloc(sizeof *hist[0])))
        st = cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
    if (!st)
        cnn_qhist_init(hist[0], lo[0], hi[0]);
    for (int k = 0; k < q->nops && !st; k++) {
        const cnn_qop *op = &q->ops[k];
        int v = op->output;
        if (!op->calib || op->preact != 0 || hist[v])
            continue;
        if (!(isfinite(lo[v]) && isfinite(hi[v])))
            continue; /* refused by convert */
        if (!(hist[v] = malloc(sizeof *hist[v])))
            st = cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
        else
            cnn_qhist_init(hist[v], lo[v], hi[v]);
    }
    if (!st)
        st = calibrate(m, q, count, next, user, lo, hi, hist);
    for (int v = 0; hist && v < q->nvalues; v++) {
        if (hist[v] && !st)
            cnn_qhist_choose(hist[v], how, &lo[v], &hi[v]);
        free(hist[v]);
    }
    free(hist);
    return st;
}

/* The pre-activation range behind a tanh's or sigmoid's output range; the
 * saturated ends map to where the table's output no longer changes. */
static void inverse_range(int preact, float *lo, float *hi)
{
    const double edge = 1 - 1e-6;
    double l = *lo, h = *hi;
    if (preact == 1) {
        l = atanh(fmax(-edge, fmin(edge, l)));
        h = atanh(fmax(-edge, fmin(edge, h)));
    } else {
        l = fmax(1e-6, fmin(edge, l));
        h = fmax(1e-6, fmin(edge, h));
        l = log(l / (1 - l));
        h = log(h / (1 - h));
    }
    *lo = (float)l;
    *hi = (float)h;
}

/* ---- Conversion ------------------------------------------------------- */

/* Quantizes the weights and bias with the BatchNormalization folded in:
 * per output channel j, s = gamma / sqrt(variance + epsilon),
 * w'[., j] = w[., j] * s and b' = (b - mean) * s + beta. */
static cnn_status fold_batch_norm(cnn_model *m, cnn_qop *op, const float *w, const float *b,
                                  int64_t rows, float *scales, int8_t *q, cnn_qparams in)
{
    const float *stat[4];
    for (int k = 0; k < 4; k++) {
        int64_t count = 0;
        stat[k] = cnn_model_layer_weights(m, op->bnlayer, k, &count);
        if (!stat[k] || count != op->N)
            return cnn_fail(CNN_ERR_STATE, "quantize: layer %d: unexpected BatchNormalization "
                                           "weights", op->bnlayer);
    }
    float *wf = malloc((size_t)(rows * op->N) * sizeof(float));
    float *bf = malloc((size_t)op->N * sizeof(float));
    if (!wf || !bf) {
        free(wf);
        free(bf);
        return cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
    }
    for (int j = 0; j < op->N; j++) {
        double s = stat[0][j] / sqrt((double)stat[3][j] + op->bn_eps);
        for (int64_t r = 0; r < rows; r++)
            wf[r * op->N + j] = (float)(w[r * op->N + j] * s);
        bf[j] = (float)(((b ? b[j] : 0.0) - stat[2][j]) * s + stat[1][j]);
    }
    cnn_q_weights(wf, rows, op->N, scales, q);
    cnn_q_bias(bf, op->N, in.scale, scales, op->bias);
    free(wf);
    free(bf);
    return CNN_OK;
}

/* A BatchNormalization on its own as weights (1, N) and a bias:
 * w = gamma / sqrt(variance + epsilon), b = beta - mean * w. */
static cnn_status batch_norm_weights(cnn_model *m, const cnn_qop *op, float **w, float **b)
{
    const float *stat[4];
    for (int k = 0; k < 4; k++) {
        int64_t count = 0;
        stat[k] = cnn_model_layer_weights(m, op->wlayer, k, &count);
        if (!stat[k] || count != op->N)
            return cnn_fail(CNN_ERR_STATE, "quantize: layer %d: unexpected BatchNormalization "
                                           "weights", op->wlayer);
    }
    *w = malloc((size_t)op->N * sizeof(float));
    *b = malloc((size_t)op->N * sizeof(float));
    if (!*w || !*b)
        return cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
    for (int j = 0; j < op->N; j++) {
        double s = stat[0][j] / sqrt((double)stat[3][j] + op->bn_eps);
        (*w)[j] = (float)s;
        (*b)[j] = (float)(stat[1][j] - stat[2][j] * s);
    }
    return CNN_OK;
}

static cnn_status convert_weights(cnn_model *m, cnn_qop *op, cnn_qparams in, cnn_qparams out)
{
    int64_t wn = 0, bn = 0;
    float *own_w = NULL, *own_b = NULL;
    const float *w, *b;
    if (op->bn_alone) {
        cnn_status st = batch_norm_weights(m, op, &own_w, &own_b);
        if (st) {
            free(own_w);
            free(own_b);
            return st;
        }
        w = own_w;
        b = own_b;
        wn = bn = op->N;
    } else {
        w = cnn_model_layer_weights(m, op->wlayer, 0, &wn);
        b = cnn_model_layer_weights(m, op->wlayer, 1, &bn);
    }
    if (!w || wn != (int64_t)op->K * op->N)
        return cnn_fail(CNN_ERR_STATE, "quantize: layer %d: unexpected weights", op->wlayer);
    float *scales = malloc((size_t)op->N * sizeof(float));
    op->weights = malloc((size_t)wn);
    op->bias = calloc((size_t)op->N, sizeof(int32_t));
    op->multiplier = malloc((size_t)op->N * sizeof(int32_t));
    op->shift = malloc((size_t)op->N * sizeof(int32_t));
    cnn_status st = CNN_OK;
    if (!scales || !op->weights || !op->bias || !op->multiplier || !op->shift) {
        st = cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
    } else if (op->bnlayer >= 0) {
        st = fold_batch_norm(m, op, w, b && bn == op->N ? b : NULL, op->K, scales, op->weights,
                             in);
    } else {
        cnn_q_weights(w, op->K, op->N, scales, op->weights);
        if (b && bn == op->N)
            cnn_q_bias(b, op->N, in.scale, scales, op->bias);
    }
    if (!st)
        cnn_q_output_multipliers(in.scale, scales, op->N, out.scale, op->multiplier, op->shift);
    free(scales);
    free(own_w);
    free(own_b);
    return st;
}

/* The float function of a table op at x. */
static float lut_function(const cnn_qop *op, float x)
{
    switch (op->lut_fn) {
    case 1: {
        float y = x;
        cnn_activation_forward(op->lut_act, &y, 1, 1);
        return y;
    }
    case 2: return x >= 0 ? x : op->lut_a * x;
    case 3: return x > 0 ? x : op->lut_a * (expf(x) - 1);
    default: {
        float y = x >= op->lut_c ? x : op->lut_b * (x - op->lut_c);
        return op->lut_a > 0 && y > op->lut_a ? op->lut_a : y;
    }
    }
}

/* Parameters for every value and the op's integers, in op order. */
static cnn_status convert(cnn_model *m, cnn_qmodel *q, float *lo, float *hi)
{
    for (int k = 0; k < q->nops; k++) {
        cnn_qop *op = &q->ops[k];
        cnn_qparams in = q->values[op->inputs[0]].p;
        cnn_qvalue *out = &q->values[op->output];
        if (op->kind == CNN_QOP_LUT && fixed_lut_params(op->lut_act, &out->p) && op->lut_fn == 1) {
            /* TFLite's fixed parameters */
        } else if (op->calib) {
            float l = lo[op->output], h = hi[op->output];
            if (op->preact == 1 || op->preact == 2)
                inverse_range(op->preact, &l, &h);
            if (!(isfinite(l) && isfinite(h)))
                return cnn_fail(CNN_ERR_NUMERIC, "quantize: layer %d '%s': calibrated range not "
                                                 "finite", op->layer, op->name);
            out->p = cnn_q_choose_params(l, h);
        } else {
            out->p = in; /* pooling, padding and clamps keep their input's parameters */
        }
        cnn_q_activation_range(act_of(op->clamp), out->p, &op->lo, &op->hi);
        cnn_status st = CNN_OK;
        switch (op->kind) {
        case CNN_QOP_CONV:
        case CNN_QOP_DEPTHWISE:
        case CNN_QOP_DENSE: st = convert_weights(m, op, in, out->p); break;
        case CNN_QOP_ADD:
            cnn_qadd_prepare(in, q->values[op->inputs[1]].p, out->p, act_of(op->clamp), &op->add);
            break;
        case CNN_QOP_CONCAT:
            op->multiplier = calloc((size_t)op->n_inputs, sizeof(int32_t));
            op->shift = calloc((size_t)op->n_inputs, sizeof(int32_t));
            if (!op->multiplier || !op->shift)
                return cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
            for (int i = 0; i < op->n_inputs; i++)
                cnn_q_multiplier((double)q->values[op->inputs[i]].p.scale / (double)out->p.scale,
                                 &op->multiplier[i], &op->shift[i]);
            break;
        case CNN_QOP_GLOBAL_AVG: {
            op->multiplier = calloc((size_t)op->N, sizeof(int32_t));
            op->shift = calloc((size_t)op->N, sizeof(int32_t));
            if (!op->multiplier || !op->shift)
                return cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
            double n = (double)op->g.h * op->g.w;
            for (int c = 0; c < op->N; c++)
                cnn_q_multiplier((double)in.scale / ((double)out->p.scale * n), &op->multiplier[c],
                                 &op->shift[c]);
            break;
        }
        case CNN_QOP_LUT:
            for (int v = -128; v < 128; v++) {
                float x = in.scale * (float)(v - in.zero_point);
                op->lut[v + 128] = cnn_q_quantize_one(lut_function(op, x), out->p);
            }
            break;
        default: break;
        }
        if (st)
            return st;
    }
    return CNN_OK;
}

/* ---- Entry points ----------------------------------------------------- */

typedef struct {
    const cnn_tensor *t;
    int64_t elems;
} tensor_src;

static cnn_status tensor_batch(void *user, int64_t start, int64_t b, cnn_tensor *view)
{
    const tensor_src *s = user;
    *view = *s->t;
    view->dims[0] = b;
    view->data = s->t->data + start * s->elems;
    return CNN_OK;
}

static cnn_status create(cnn_qmodel **out, cnn_model *m, int64_t count, batch_fn next,
                         void *user, const cnn_qcalib_options *how)
{
    *out = NULL;
    cnn_status cst = cnn_qcalib_check(how);
    if (cst)
        return cst;
    cnn_qmodel *q = NULL;
    cnn_status st = cnn_qmodel_alloc(&q, cnn_model_threads(m));
    if (st)
        return st;
    q->input_shape = cnn_model_input_shape(m);
    q->output_shape = cnn_model_output_shape(m);
    q->float_params = cnn_model_param_count(m);
    planner p = {.m = m, .q = q};
    float *lo = NULL, *hi = NULL;
    st = plan(&p);
    if (!st) {
        lo = calloc((size_t)q->nvalues, sizeof *lo);
        hi = calloc((size_t)q->nvalues, sizeof *hi);
        if (!lo || !hi)
            st = cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
    }
    if (!st)
        st = calibrate(m, q, count, next, user, lo, hi, NULL);
    if (!st && !(isfinite(lo[0]) && isfinite(hi[0])))
        st = cnn_fail(CNN_ERR_NUMERIC, "quantize: calibration data: not finite");
    if (!st)
        st = calibrate_hist(m, q, count, next, user, lo, hi, how);
    if (!st) {
        q->values[0].p = cnn_q_choose_params(lo[0], hi[0]);
        st = convert(m, q, lo, hi);
    }
    if (!st)
        st = cnn_qmodel_prepare(q);
    free(lo);
    free(hi);
    free(p.val);
    free(p.readers);
    free(p.reader);
    if (st) {
        cnn_qmodel_free(q);
        return st;
    }
    *out = q;
    return CNN_OK;
}

static cnn_status check_calib_shape(const cnn_model *m, const int64_t *dims, int rank)
{
    cnn_shape in = cnn_model_input_shape(m);
    if (rank != in.rank + 1 || dims[0] < 1)
        return cnn_fail(CNN_ERR_SHAPE, "quantize: calibration data: expected (n, %s), got rank %d",
                        in.rank == 3 ? "rows, cols, channels" : "features", rank);
    for (int d = 0; d < in.rank; d++)
        if (dims[d + 1] != in.dims[d])
            return cnn_fail(CNN_ERR_SHAPE,
                            "quantize: calibration data: dimension %d is %lld, the model "
                            "expects %d",
                            d + 1, (long long)dims[d + 1], in.dims[d]);
    return CNN_OK;
}

cnn_status cnn_qmodel_create(cnn_qmodel **out, cnn_model *m, const cnn_tensor *calib,
                             int64_t count)
{
    return cnn_qmodel_create_calibrated(out, m, calib, count, NULL);
}

cnn_status cnn_qmodel_create_calibrated(cnn_qmodel **out, cnn_model *m, const cnn_tensor *calib,
                                        int64_t count, const cnn_qcalib_options *how)
{
    if (!out || !m)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantize: out and model must not be NULL");
    *out = NULL;
    if (!calib)
        return cnn_fail(CNN_ERR_SHAPE, "quantize: calibration data: none given");
    cnn_status st = check_calib_shape(m, calib->dims, calib->rank);
    if (st)
        return st;
    if (count <= 0)
        count = CNN_QUANTIZE_DEFAULT_EXAMPLES;
    if (count > calib->dims[0])
        count = calib->dims[0];
    tensor_src src = {calib, cnn_qshape_elems(cnn_model_input_shape(m))};
    return create(out, m, count, tensor_batch, &src, how);
}

typedef struct {
    cnn_dataset *ds;
    cnn_shape shape;
    float *x, *y;
} dataset_src;

static cnn_status dataset_batch(void *user, int64_t start, int64_t b, cnn_tensor *view)
{
    dataset_src *s = user;
    cnn_status st = cnn_dataset_read(s->ds, start, b, s->x, s->y);
    if (st)
        return st;
    memset(view, 0, sizeof *view);
    view->rank = s->shape.rank + 1;
    view->dims[0] = b;
    for (int d = 0; d < s->shape.rank; d++)
        view->dims[d + 1] = s->shape.dims[d];
    view->data = s->x;
    return CNN_OK;
}

cnn_status cnn_qmodel_create_dataset(cnn_qmodel **out, cnn_model *m, cnn_dataset *calib,
                                     int64_t count)
{
    return cnn_qmodel_create_dataset_calibrated(out, m, calib, count, NULL);
}

cnn_status cnn_qmodel_create_dataset_calibrated(cnn_qmodel **out, cnn_model *m,
                                                cnn_dataset *calib, int64_t count,
                                                const cnn_qcalib_options *how)
{
    if (!out || !m || !calib)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantize: out, model and data set must not "
                                                  "be NULL");
    *out = NULL;
    cnn_shape shape = cnn_dataset_element_shape(calib);
    int64_t dims[CNN_MAX_RANK + 1] = {cnn_dataset_count(calib)};
    for (int d = 0; d < shape.rank; d++)
        dims[d + 1] = shape.dims[d];
    cnn_status st = check_calib_shape(m, dims, shape.rank + 1);
    if (st)
        return st;
    if (count <= 0)
        count = CNN_QUANTIZE_DEFAULT_EXAMPLES;
    if (count > dims[0])
        count = dims[0];
    int64_t tsize = cnn_dataset_target_size(calib);
    dataset_src src = {calib, shape,
                       malloc((size_t)(QMODEL_BATCH * cnn_qshape_elems(shape)) * sizeof(float)),
                       malloc((size_t)(QMODEL_BATCH * (tsize > 0 ? tsize : 1)) * sizeof(float))};
    if (!src.x || !src.y)
        st = cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
    else
        st = create(out, m, count, dataset_batch, &src, how);
    free(src.x);
    free(src.y);
    return st;
}
