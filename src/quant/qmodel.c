/* cnn_qmodel: calibration, conversion and int8 inference for Sequential
 * models (quant/qmodel.h). Uses only the float model's public accessors. */
#include "quant/qmodel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/threadpool.h"
#include "kernels/qops.h"

typedef enum {
    QOP_CONV,
    QOP_DEPTHWISE,
    QOP_DENSE,
    QOP_MAXPOOL,
    QOP_AVGPOOL,
    QOP_CLAMP, /* a ReLU or ReLU6 on its input's parameters */
} qop_kind;

typedef struct qop {
    qop_kind kind;
    int layer;        /* the float model's layer whose output this op yields */
    int wlayer;       /* the layer holding its weights (layer, or before a fused relu) */
    int bnlayer;      /* a BatchNormalization folded into the weights, or 0 */
    float bn_eps;
    cnn_conv_geom g;  /* conv, depthwise, pooling */
    int mult;         /* depthwise multiplier */
    int64_t in_elems, out_elems; /* per example */
    int N;            /* output channels or units */
    cnn_qpacked *packed;         /* conv, dense */
    int8_t *dw_kernel;           /* depthwise (kh, kw, c * mult) */
    int32_t *bias, *multiplier, *shift;
    cnn_qparams in, out;
    cnn_qoutput stage;
    int32_t lo, hi;
} qop;

struct cnn_qmodel {
    qop *ops;
    int nops;
    cnn_shape input_shape;
    int64_t in_elems, out_elems, max_elems, max_col, max_channels;
    cnn_qparams input, output;
    bool softmax;
    cnn_qisa isa;
    cnn_pool *pool; /* the float model's thread count, by default */
};

enum { QMODEL_BATCH = 64, QMODEL_COL_ROWS = 256 };

static int64_t shape_elems(cnn_shape s)
{
    int64_t n = 1;
    for (int i = 0; i < s.rank; i++)
        n *= s.dims[i];
    return n;
}

static cnn_shape layer_in_shape(const cnn_model *m, int i)
{
    return i == 0 ? cnn_model_input_shape(m) : cnn_model_layer_output_shape(m, i - 1);
}

/* ---- Which layers, fused how ----------------------------------------- */

/* The fused clamp of a relu-like layer spec: 1 relu, 2 relu6, 0 none/other. */
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

static cnn_qact act_of(int relu)
{
    return relu == 2 ? CNN_QACT_RELU6 : relu == 1 ? CNN_QACT_RELU : CNN_QACT_NONE;
}

/* An activation fused into a conv or dense: 0 linear, 1 relu, 2 relu6,
 * 3 softmax; -1 for one int8 cannot do. */
static int fused_activation(cnn_activation a)
{
    switch (a) {
    case CNN_ACTIVATION_LINEAR: return 0;
    case CNN_ACTIVATION_RELU: return 1;
    case CNN_ACTIVATION_RELU6: return 2;
    case CNN_ACTIVATION_SOFTMAX: return 3;
    default: return -1;
    }
}

static void conv_geom(cnn_shape in, int kh, int kw, int sh, int sw, int dh, int dw, bool same,
                      cnn_conv_geom *g)
{
    *g = (cnn_conv_geom){.h = in.dims[0], .w = in.dims[1], .c = in.dims[2], .kh = kh, .kw = kw,
                         .sh = sh, .sw = sw, .dh = dh, .dw = dw};
    g->oh = cnn_conv_out_size(g->h, kh, sh, dh, same, &g->pad_top);
    g->ow = cnn_conv_out_size(g->w, kw, sw, dw, same, &g->pad_left);
}

/* Plans the ops (kinds, geometry, the layer whose output range each needs)
 * without weights; op->lo holds the fused clamp (0 none, 1 relu, 2 relu6)
 * until the parameters are known. *softmax: the model's output is the
 * softmax of the last op's output. */
static cnn_status plan(cnn_model *m, qop *ops, int *nops, bool *softmax)
{
    int n = cnn_model_layer_count(m), k = 0;
    *softmax = false;
    for (int i = 0; i < n; i++) {
        cnn_layer_spec s;
        cnn_status st = cnn_model_layer_spec(m, i, &s);
        if (st)
            return st;
        cnn_shape in = layer_in_shape(m, i), outs = cnn_model_layer_output_shape(m, i);
        qop *op = &ops[k];
        memset(op, 0, sizeof *op);
        op->layer = op->wlayer = i;
        op->in_elems = shape_elems(in);
        op->out_elems = shape_elems(outs);
        int act = 0;
        switch (s.kind) {
        case CNN_LAYER_CONV2D: {
            const cnn_conv2d_config *c = &s.u.conv2d;
            op->kind = QOP_CONV;
            op->N = c->filters;
            conv_geom(in, c->kernel_size[0], c->kernel_size[1], c->strides[0], c->strides[1],
                      c->dilation_rate[0], c->dilation_rate[1], c->padding == CNN_PADDING_SAME,
                      &op->g);
            if ((int64_t)op->g.kh * op->g.kw * op->g.c > CNN_QGEMM_MAX_K)
                return refuse(m, i, "kernel_size x input channels exceeds 65536");
            act = fused_activation(c->activation);
            break;
        }
        case CNN_LAYER_DEPTHWISE_CONV2D: {
            const cnn_depthwise_conv2d_config *c = &s.u.depthwise_conv2d;
            op->kind = QOP_DEPTHWISE;
            op->mult = c->depth_multiplier;
            conv_geom(in, c->kernel_size[0], c->kernel_size[1], c->strides[0], c->strides[1],
                      c->dilation_rate[0], c->dilation_rate[1], c->padding == CNN_PADDING_SAME,
                      &op->g);
            op->N = op->g.c * op->mult;
            act = fused_activation(c->activation);
            break;
        }
        case CNN_LAYER_DENSE:
            if (in.rank != 1)
                return refuse(m, i, "int8 Dense takes a flat input (add Flatten)");
            if (op->in_elems > CNN_QGEMM_MAX_K)
                return refuse(m, i, "more than 65536 inputs");
            op->kind = QOP_DENSE;
            op->N = s.u.dense.units;
            act = fused_activation(s.u.dense.activation);
            break;
        case CNN_LAYER_MAX_POOLING2D:
        case CNN_LAYER_AVERAGE_POOLING2D: {
            const cnn_pool2d_config *c = &s.u.pool2d;
            op->kind = s.kind == CNN_LAYER_MAX_POOLING2D ? QOP_MAXPOOL : QOP_AVGPOOL;
            conv_geom(in, c->pool_size[0], c->pool_size[1], c->strides[0], c->strides[1], 1, 1,
                      c->padding == CNN_PADDING_SAME, &op->g);
            break;
        }
        case CNN_LAYER_FLATTEN:
        case CNN_LAYER_RESHAPE:
        case CNN_LAYER_DROPOUT:
            continue; /* the same bytes, the same parameters */
        case CNN_LAYER_ACTIVATION:
        case CNN_LAYER_RELU:
            if (s.kind == CNN_LAYER_ACTIVATION &&
                s.u.activation.activation == CNN_ACTIVATION_SOFTMAX) {
                if (i != n - 1)
                    return refuse(m, i, "softmax is only quantized as the last layer");
                if (k == 0)
                    return refuse(m, i, "nothing to quantize before the softmax");
                *softmax = true;
                continue;
            }
            if (s.kind == CNN_LAYER_ACTIVATION &&
                s.u.activation.activation == CNN_ACTIVATION_LINEAR)
                continue;
            if (!relu_kind(&s))
                return refuse(m, i, "int8 supports relu and relu6 only (max_value 0 or 6, "
                                    "no negative_slope or threshold)");
            op->kind = QOP_CLAMP;
            op->lo = relu_kind(&s); /* remembered until the parameters are known */
            break;
        default:
            return refuse(m, i, "this layer kind has no int8 kernel");
        }
        if (act < 0)
            return refuse(m, i, "int8 fuses linear, relu, relu6 and a final softmax only");
        if (act == 3) {
            if (i != n - 1 || op->kind != QOP_DENSE)
                return refuse(m, i, "softmax is only quantized on the last Dense layer");
            *softmax = true;
            act = 0;
        }
        op->lo = op->kind == QOP_CLAMP ? op->lo : act; /* the clamp to apply (see build) */
        bool weighted = op->kind == QOP_CONV || op->kind == QOP_DEPTHWISE || op->kind == QOP_DENSE;
        /* a linear conv/dense followed by BatchNormalization: folded into
         * its weights and bias (inference uses the moving statistics) */
        cnn_layer_spec next;
        if (weighted && act == 0 && i + 1 < n && cnn_model_layer_spec(m, i + 1, &next) == CNN_OK &&
            next.kind == CNN_LAYER_BATCH_NORMALIZATION) {
            op->bnlayer = i + 1;
            op->bn_eps = next.u.batch_normalization.epsilon;
            op->layer = ++i;
        }
        /* then a relu layer: fused into the output clamp */
        if (weighted && act == 0 && i + 1 < n) {
            if (cnn_model_layer_spec(m, i + 1, &next) == CNN_OK && relu_kind(&next)) {
                op->lo = relu_kind(&next);
                op->layer = ++i;
            }
        }
        k++;
    }
    *nops = k;
    if (k == 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantize: the model has no layer to quantize");
    return CNN_OK;
}

/* ---- Calibration ------------------------------------------------------ */

static void range_of(const float *p, int64_t n, float *lo, float *hi)
{
    for (int64_t i = 0; i < n; i++) {
        if (p[i] < *lo)
            *lo = p[i];
        if (p[i] > *hi)
            *hi = p[i];
    }
}

/* Every op's output range over the calibration examples; a final Dense
 * with softmax is measured on its logits, recomputed from its input. */
static cnn_status calibrate(cnn_model *m, const qop *ops, int nops, bool dense_softmax,
                            const cnn_tensor *calib, int64_t count, float *lo, float *hi,
                            float *in_lo, float *in_hi)
{
    const int64_t in_elems = shape_elems(cnn_model_input_shape(m));
    cnn_status st = CNN_OK;
    for (int64_t start = 0; start < count && st == CNN_OK; start += QMODEL_BATCH) {
        int64_t b = count - start < QMODEL_BATCH ? count - start : QMODEL_BATCH;
        cnn_tensor view = *calib;
        view.dims[0] = b;
        view.data = calib->data + start * in_elems;
        range_of(view.data, b * in_elems, in_lo, in_hi);
        const float *outp;
        if ((st = cnn_model_forward(m, &view, false, &outp)) != CNN_OK)
            break;
        for (int k = 0; k < nops; k++) {
            const qop *op = &ops[k];
            if (k == nops - 1 && dense_softmax) {
                const float *x =
                    op->wlayer == 0 ? view.data : cnn_model_layer_output(m, op->wlayer - 1);
                int64_t wn, bn;
                const float *w = cnn_model_layer_weights(m, op->wlayer, 0, &wn);
                const float *bias = cnn_model_layer_weights(m, op->wlayer, 1, &bn);
                for (int64_t e = 0; e < b; e++)
                    for (int j = 0; j < op->N; j++) {
                        double z = bias ? bias[j] : 0;
                        for (int64_t i = 0; i < op->in_elems; i++)
                            z += (double)x[e * op->in_elems + i] * w[i * op->N + j];
                        float zf = (float)z;
                        range_of(&zf, 1, &lo[k], &hi[k]);
                    }
                continue;
            }
            range_of(cnn_model_layer_output(m, op->layer), b * op->out_elems, &lo[k], &hi[k]);
        }
    }
    return st;
}

/* ---- Conversion ------------------------------------------------------- */

/* Quantizes the weights and bias with the following BatchNormalization
 * folded in: per output channel j, s = gamma / sqrt(variance + epsilon),
 * w'[., j] = w[., j] * s and b' = (b - mean) * s + beta. */
static cnn_status fold_batch_norm(cnn_model *m, qop *op, const float *w, const float *b,
                                  int64_t rows, float *scales, int8_t *q)
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
    cnn_q_bias(bf, op->N, op->in.scale, scales, op->bias);
    free(wf);
    free(bf);
    return CNN_OK;
}

static cnn_status convert_weights(cnn_model *m, qop *op)
{
    int w_layer = op->wlayer;
    int64_t wn = 0, bn = 0;
    const float *w = cnn_model_layer_weights(m, w_layer, 0, &wn);
    const float *b = cnn_model_layer_weights(m, w_layer, 1, &bn);
    if (!w || wn % op->N != 0)
        return cnn_fail(CNN_ERR_STATE, "quantize: layer %d: unexpected weights", w_layer);
    int64_t rows = wn / op->N;
    float *scales = malloc((size_t)op->N * sizeof(float));
    int8_t *q = malloc((size_t)wn);
    op->bias = calloc((size_t)op->N, sizeof(int32_t));
    op->multiplier = malloc((size_t)op->N * sizeof(int32_t));
    op->shift = malloc((size_t)op->N * sizeof(int32_t));
    cnn_status st = CNN_OK;
    if (!scales || !q || !op->bias || !op->multiplier || !op->shift) {
        st = cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
        goto done;
    }
    if (op->bnlayer) {
        st = fold_batch_norm(m, op, w, b && bn == op->N ? b : NULL, rows, scales, q);
        if (st)
            goto done;
    } else {
        cnn_q_weights(w, rows, op->N, scales, q);
        if (b && bn == op->N)
            cnn_q_bias(b, op->N, op->in.scale, scales, op->bias);
    }
    cnn_q_output_multipliers(op->in.scale, scales, op->N, op->out.scale, op->multiplier,
                             op->shift);
    if (op->kind == QOP_DEPTHWISE) {
        op->dw_kernel = q;
        q = NULL;
    } else {
        st = cnn_qpacked_create(&op->packed, q, (int)rows, op->N);
        if (st)
            cnn_error_prefix("quantize: layer %d", w_layer);
    }
done:
    free(scales);
    free(q);
    return st;
}

void cnn_qmodel_free(cnn_qmodel *q)
{
    if (!q)
        return;
    for (int k = 0; k < q->nops; k++) {
        cnn_qpacked_free(q->ops[k].packed);
        free(q->ops[k].dw_kernel);
        free(q->ops[k].bias);
        free(q->ops[k].multiplier);
        free(q->ops[k].shift);
    }
    free(q->ops);
    cnn_pool_free(q->pool);
    free(q);
}

cnn_status cnn_qmodel_create(cnn_qmodel **out, cnn_model *m, const cnn_tensor *calib,
                             int64_t count)
{
    *out = NULL;
    cnn_shape in = cnn_model_input_shape(m);
    int64_t in_elems = shape_elems(in);
    if (!calib || calib->rank != in.rank + 1 || calib->dims[0] < 1)
        return cnn_fail(CNN_ERR_SHAPE, "quantize: calibration data: expected (n, %s), got rank %d",
                        in.rank == 3 ? "rows, cols, channels" : "features",
                        calib ? calib->rank : 0);
    for (int d = 0; d < in.rank; d++)
        if (calib->dims[d + 1] != in.dims[d])
            return cnn_fail(CNN_ERR_SHAPE,
                            "quantize: calibration data: dimension %d is %lld, the model "
                            "expects %d",
                            d + 1, (long long)calib->dims[d + 1], in.dims[d]);
    if (count <= 0 || count > calib->dims[0])
        count = calib->dims[0];
    int n = cnn_model_layer_count(m);
    cnn_qmodel *q = calloc(1, sizeof *q);
    float *lo = NULL, *hi = NULL;
    if (!q || !(q->ops = calloc((size_t)(n > 0 ? n : 1), sizeof *q->ops)) ||
        !(lo = calloc((size_t)(n > 0 ? n : 1), sizeof *lo)) ||
        !(hi = calloc((size_t)(n > 0 ? n : 1), sizeof *hi))) {
        free(lo);
        cnn_qmodel_free(q);
        return cnn_fail(CNN_ERR_NO_MEMORY, "quantize: out of memory");
    }
    q->isa = CNN_QISA_AUTO;
    if (cnn_pool_create(&q->pool, cnn_model_threads(m)) != CNN_OK) {
        free(lo);
        free(hi);
        cnn_qmodel_free(q);
        return cnn_fail(CNN_ERR_NO_MEMORY, "quantize: cannot start %d threads",
                        cnn_model_threads(m));
    }
    q->input_shape = in;
    q->in_elems = in_elems;
    cnn_status st = plan(m, q->ops, &q->nops, &q->softmax);
    float in_lo = 0, in_hi = 0;
    bool dense_softmax = false;
    if (!st) {
        cnn_layer_spec last;
        cnn_model_layer_spec(m, q->ops[q->nops - 1].layer, &last);
        dense_softmax = last.kind == CNN_LAYER_DENSE &&
                        last.u.dense.activation == CNN_ACTIVATION_SOFTMAX;
        st = calibrate(m, q->ops, q->nops, dense_softmax, calib, count, lo, hi, &in_lo, &in_hi);
    }
    if (!st && !(isfinite(in_lo) && isfinite(in_hi)))
        st = cnn_fail(CNN_ERR_NUMERIC, "quantize: calibration data: not finite");
    if (!st) {
        q->input = cnn_q_choose_params(in_lo, in_hi);
        cnn_qparams cur = q->input;
        q->max_elems = in_elems;
        for (int k = 0; k < q->nops && !st; k++) {
            qop *op = &q->ops[k];
            op->in = cur;
            if (op->kind == QOP_MAXPOOL || op->kind == QOP_AVGPOOL || op->kind == QOP_CLAMP) {
                op->out = cur; /* pooling and relu keep their input's parameters */
            } else {
                if (!(isfinite(lo[k]) && isfinite(hi[k]))) {
                    st = cnn_fail(CNN_ERR_NUMERIC, "quantize: layer %d '%s': calibrated range "
                                                   "not finite",
                                  op->layer, cnn_model_layer_name(m, op->layer));
                    break;
                }
                op->out = cnn_q_choose_params(lo[k], hi[k]);
            }
            int relu = op->lo; /* plan left the clamp kind here */
            cnn_q_activation_range(act_of(relu), op->out, &op->lo, &op->hi);
            if (op->kind == QOP_CONV || op->kind == QOP_DEPTHWISE || op->kind == QOP_DENSE) {
                st = convert_weights(m, op);
                op->stage = (cnn_qoutput){op->bias, op->multiplier, op->shift,
                                          op->out.zero_point, op->lo, op->hi};
            }
            if (op->out_elems > q->max_elems)
                q->max_elems = op->out_elems;
            if (op->kind == QOP_CONV) {
                int64_t kdim = (int64_t)op->g.kh * op->g.kw * op->g.c;
                if (kdim * QMODEL_COL_ROWS > q->max_col)
                    q->max_col = kdim * QMODEL_COL_ROWS;
            }
            if (op->N > q->max_channels)
                q->max_channels = op->N;
            cur = op->out;
        }
        q->output = cur;
        q->out_elems = shape_elems(cnn_model_output_shape(m));
    }
    free(lo);
    free(hi);
    if (st) {
        cnn_qmodel_free(q);
        return st;
    }
    *out = q;
    return CNN_OK;
}

void cnn_qmodel_set_isa(cnn_qmodel *q, cnn_qisa isa) { q->isa = isa; }

cnn_status cnn_qmodel_set_threads(cnn_qmodel *q, int threads)
{
    if (threads < 1 || threads > 1024)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "quantized model: threads: expected 1 to 1024, got %d", threads);
    cnn_pool *pool = NULL;
    cnn_status st = cnn_pool_create(&pool, threads);
    if (st)
        return st;
    cnn_pool_free(q->pool);
    q->pool = pool;
    return CNN_OK;
}

int64_t cnn_qmodel_weight_bytes(const cnn_qmodel *q)
{
    int64_t bytes = 0;
    for (int k = 0; k < q->nops; k++) {
        const qop *op = &q->ops[k];
        if (op->packed)
            bytes += (int64_t)op->packed->K * op->packed->N;
        if (op->dw_kernel)
            bytes += (int64_t)op->g.kh * op->g.kw * op->N;
        if (op->bias)
            bytes += 3 * (int64_t)sizeof(int32_t) * op->N;
    }
    return bytes;
}

cnn_qparams cnn_qmodel_input_params(const cnn_qmodel *q) { return q->input; }

/* ---- Inference -------------------------------------------------------- */

/* One op over a batch, its output rows (pixels, examples or elements)
 * split between the pool's workers; each has its own scratch. */
typedef struct op_job {
    const cnn_qmodel *q;
    const qop *op;
    int64_t b;
    const int8_t *x;
    int8_t *y, *col;
    int32_t *acc;
} op_job;

static void op_worker(void *arg, int ith, int nth)
{
    const op_job *j = arg;
    const qop *op = j->op;
    const cnn_qmodel *q = j->q;
    int64_t rows = op->kind == QOP_DENSE   ? j->b
                   : op->kind == QOP_CLAMP ? j->b * op->out_elems
                                           : j->b * op->g.oh * op->g.ow;
    long r0, r1;
    cnn_split_range((long)rows, ith, nth, &r0, &r1);
    if (r0 >= r1)
        return;
    int8_t *col = j->col + (int64_t)ith * q->max_col;
    int32_t *acc = j->acc + (int64_t)ith * q->max_channels;
    switch (op->kind) {
    case QOP_CONV:
        cnn_qconv(q->isa, &op->g, j->x, op->in.zero_point, op->packed, &op->stage, r0, r1, col,
                  QMODEL_COL_ROWS, j->y + r0 * op->N);
        break;
    case QOP_DEPTHWISE:
        cnn_qdepthwise(q->isa, &op->g, op->mult, j->x, op->in.zero_point, op->dw_kernel,
                       &op->stage, r0, r1, acc, j->y + r0 * op->N);
        break;
    case QOP_DENSE:
        cnn_qgemm(q->isa, r1 - r0, j->x + r0 * op->in_elems, op->in_elems, op->in.zero_point,
                  op->packed, &op->stage, j->y + r0 * op->N, op->N);
        break;
    case QOP_MAXPOOL:
        cnn_qmaxpool(q->isa, &op->g, j->x, op->lo, op->hi, r0, r1, j->y + r0 * op->g.c);
        break;
    case QOP_AVGPOOL:
        cnn_qavgpool(&op->g, j->x, op->lo, op->hi, r0, r1, j->y + r0 * op->g.c);
        break;
    case QOP_CLAMP:
        for (int64_t i = r0; i < r1; i++)
            j->y[i] = (int8_t)cnn_q_clamp(j->x[i], op->lo, op->hi);
        break;
    }
}

cnn_status cnn_qmodel_predict(cnn_qmodel *q, const cnn_tensor *x, float *out)
{
    if (!x || x->rank != q->input_shape.rank + 1)
        return cnn_fail(CNN_ERR_SHAPE, "quantized predict: expected input of rank %d, got %d",
                        q->input_shape.rank + 1, x ? x->rank : 0);
    for (int d = 0; d < q->input_shape.rank; d++)
        if (x->dims[d + 1] != q->input_shape.dims[d])
            return cnn_fail(CNN_ERR_SHAPE,
                            "quantized predict: input dimension %d is %lld, expected %d", d + 1,
                            (long long)x->dims[d + 1], q->input_shape.dims[d]);
    size_t act = (size_t)(QMODEL_BATCH * q->max_elems);
    size_t nth = (size_t)cnn_pool_threads(q->pool);
    int8_t *a = malloc(act), *b = malloc(act), *col = malloc(nth * (size_t)q->max_col + 1);
    int32_t *acc = malloc((nth * (size_t)q->max_channels + 1) * sizeof(int32_t));
    if (!a || !b || !col || !acc) {
        free(a);
        free(b);
        free(col);
        free(acc);
        return cnn_fail(CNN_ERR_NO_MEMORY, "quantized predict: cannot allocate %zu bytes", 2 * act);
    }
    for (int64_t start = 0; start < x->dims[0]; start += QMODEL_BATCH) {
        int64_t n = x->dims[0] - start < QMODEL_BATCH ? x->dims[0] - start : QMODEL_BATCH;
        cnn_q_quantize(x->data + start * q->in_elems, n * q->in_elems, q->input, a);
        int8_t *cur = a, *next = b;
        for (int k = 0; k < q->nops; k++) {
            op_job job = {q, &q->ops[k], n, cur, next, col, acc};
            cnn_pool_run(q->pool, op_worker, &job);
            int8_t *t = cur;
            cur = next;
            next = t;
        }
        float *o = out + start * q->out_elems;
        cnn_q_dequantize(cur, n * q->out_elems, q->output, o);
        if (!q->softmax)
            continue;
        for (int64_t e = 0; e < n; e++, o += q->out_elems) {
            float mx = o[0], sum = 0;
            for (int64_t j = 1; j < q->out_elems; j++)
                mx = o[j] > mx ? o[j] : mx;
            for (int64_t j = 0; j < q->out_elems; j++)
                sum += o[j] = expf(o[j] - mx);
            for (int64_t j = 0; j < q->out_elems; j++)
                o[j] /= sum;
        }
    }
    free(a);
    free(b);
    free(col);
    free(acc);
    return CNN_OK;
}

/* ---- The op list, for the C exporter ---------------------------------- */

int cnn_qmodel_op_count(const cnn_qmodel *q) { return q->nops; }

void cnn_qmodel_op_info(const cnn_qmodel *q, int k, cnn_qop_info *out)
{
    const qop *op = &q->ops[k];
    static const cnn_qop_kind kinds[] = {
        [QOP_CONV] = CNN_QOP_CONV,       [QOP_DEPTHWISE] = CNN_QOP_DEPTHWISE,
        [QOP_DENSE] = CNN_QOP_DENSE,     [QOP_MAXPOOL] = CNN_QOP_MAXPOOL,
        [QOP_AVGPOOL] = CNN_QOP_AVGPOOL, [QOP_CLAMP] = CNN_QOP_CLAMP};
    *out = (cnn_qop_info){.kind = kinds[op->kind], .layer = op->layer, .g = op->g,
                          .mult = op->mult, .N = op->N, .in_elems = op->in_elems,
                          .out_elems = op->out_elems, .bias = op->bias,
                          .multiplier = op->multiplier, .shift = op->shift, .in = op->in,
                          .out = op->out, .lo = op->lo, .hi = op->hi};
    if (op->packed)
        out->weight_count = (int64_t)op->packed->K * op->packed->N;
    else if (op->dw_kernel)
        out->weight_count = (int64_t)op->g.kh * op->g.kw * op->N;
}

void cnn_qmodel_op_weights(const cnn_qmodel *q, int k, int8_t *w)
{
    const qop *op = &q->ops[k];
    if (op->dw_kernel) {
        memcpy(w, op->dw_kernel, (size_t)op->g.kh * op->g.kw * (size_t)op->N);
        return;
    }
    if (!op->packed)
        return;
    /* undo cnn_qpacked_create: byte (c, t) of group g in panel p is
     * B[4g + t, 16p + c] */
    const cnn_qpacked *p = op->packed;
    for (int pn = 0; pn < p->panels; pn++)
        for (int g = 0; g < p->groups; g++) {
            const int8_t *src = p->data + ((size_t)pn * p->groups + g) * 64;
            for (int c = 0; c < 16; c++)
                for (int t = 0; t < 4; t++) {
                    int kk = g * 4 + t, n = pn * 16 + c;
                    if (kk < p->K && n < p->N)
                        w[(int64_t)kk * p->N + n] = src[c * 4 + t];
                }
        }
}

cnn_qparams cnn_qmodel_output_params(const cnn_qmodel *q) { return q->output; }

bool cnn_qmodel_ends_in_softmax(const cnn_qmodel *q) { return q->softmax; }

cnn_status cnn_qmodel_predict_int8(cnn_qmodel *q, const int8_t *x, int64_t n, int8_t *y)
{
    size_t act = (size_t)(QMODEL_BATCH * q->max_elems);
    size_t nth = (size_t)cnn_pool_threads(q->pool);
    int8_t *a = malloc(act), *b = malloc(act), *col = malloc(nth * (size_t)q->max_col + 1);
    int32_t *acc = malloc((nth * (size_t)q->max_channels + 1) * sizeof(int32_t));
    if (!a || !b || !col || !acc) {
        free(a);
        free(b);
        free(col);
        free(acc);
        return cnn_fail(CNN_ERR_NO_MEMORY, "quantized predict: cannot allocate %zu bytes", 2 * act);
    }
    for (int64_t start = 0; start < n; start += QMODEL_BATCH) {
        int64_t cnt = n - start < QMODEL_BATCH ? n - start : QMODEL_BATCH;
        memcpy(a, x + start * q->in_elems, (size_t)(cnt * q->in_elems));
        int8_t *cur = a, *next = b;
        for (int k = 0; k < q->nops; k++) {
            op_job job = {q, &q->ops[k], cnt, cur, next, col, acc};
            cnn_pool_run(q->pool, op_worker, &job);
            int8_t *t = cur;
            cur = next;
            next = t;
        }
        memcpy(y + start * q->out_elems, cur, (size_t)(cnt * q->out_elems));
    }
    free(a);
    free(b);
    free(col);
    free(acc);
    return CNN_OK;
}
