/* The quantized model at run time (quant/qmodel.h): the memory plan, int8
 * inference over the op list, evaluation, sizes and accessors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "quant/qmodel_impl.h"

cnn_status cnn_qmodel_alloc(cnn_qmodel **out, int threads)
{
    *out = NULL;
    cnn_qmodel *q = calloc(1, sizeof *q);
    if (!q)
        return cnn_fail(CNN_ERR_NO_MEMORY, "quantized model: out of memory");
    q->isa = CNN_QISA_AUTO;
    atomic_init(&q->scratch_busy, false);
    if (cnn_pool_create(&q->pool, threads > 0 ? threads : 1) != CNN_OK) {
        free(q);
        return cnn_fail(CNN_ERR_NO_MEMORY, "quantized model: cannot start %d threads", threads);
    }
    *out = q;
    return CNN_OK;
}

void cnn_qop_clear(cnn_qop *op)
{
    cnn_qpacked_free(op->packed);
    free(op->weights);
    free(op->bias);
    free(op->multiplier);
    free(op->shift);
    free(op->channels);
    op->packed = NULL;
    op->weights = NULL;
    op->bias = op->multiplier = op->shift = NULL;
    op->channels = NULL;
}

void cnn_qmodel_free(cnn_qmodel *q)
{
    if (!q)
        return;
    for (int k = 0; k < q->nops; k++)
        cnn_qop_clear(&q->ops[k]);
    free(q->ops);
    free(q->values);
    free(q->scratch);
    cnn_pool_free(q->pool);
    free(q);
}

static bool weighted(const cnn_qop *op)
{
    return op->kind == CNN_QOP_CONV || op->kind == CNN_QOP_DEPTHWISE || op->kind == CNN_QOP_DENSE;
}

/* Offsets in the arena, per example: values in op order, each at the
 * lowest offset free of every value still to be read (first fit); a
 * value's memory is free after the last op that reads it. The model's
 * input and output are never freed. */
static cnn_status plan_arena(cnn_qmodel *q)
{
    int n = q->nvalues;
    int *last = malloc((size_t)n * sizeof(int));
    int *live = malloc((size_t)n * sizeof(int));
    if (!last || !live) {
        free(last);
        free(live);
        return cnn_fail(CNN_ERR_NO_MEMORY, "quantized model: out of memory");
    }
    for (int v = 0; v < n; v++)
        last[v] = -1;
    for (int k = 0; k < q->nops; k++)
        for (int i = 0; i < q->ops[k].n_inputs; i++)
            last[q->ops[k].inputs[i]] = k;
    last[0] = last[q->output_value] = q->nops;
    int nlive = 0;
    int64_t end = 0;
    for (int k = -1; k < q->nops; k++) {
        int v = k < 0 ? 0 : q->ops[k].output;
        cnn_qvalue *val = &q->values[v];
        /* the lowest offset where val fits between the live values */
        int64_t off = 0;
        for (bool moved = true; moved;) {
            moved = false;
            for (int i = 0; i < nlive; i++) {
                const cnn_qvalue *o = &q->values[live[i]];
                if (off < o->offset + o->elems && o->offset < off + val->elems) {
                    off = o->offset + o->elems;
                    moved = true;
                }
            }
        }
        val->offset = off;
        if (off + val->elems > end)
            end = off + val->elems;
        live[nlive++] = v;
        for (int i = 0; i < nlive; i++)
            if (last[live[i]] <= k)
                live[i--] = live[--nlive];
    }
    q->arena_elems = end;
    free(last);
    free(live);
    return CNN_OK;
}

cnn_status cnn_qmodel_prepare(cnn_qmodel *q)
{
    q->max_col = q->max_channels = 1;
    for (int k = 0; k < q->nops; k++) {
        cnn_qop *op = &q->ops[k];
        const cnn_qvalue *out = &q->values[op->output];
        if (weighted(op)) {
            op->stage = (cnn_qoutput){op->bias, op->multiplier, op->shift, out->p.zero_point,
                                      op->lo, op->hi};
            if (op->kind != CNN_QOP_DEPTHWISE && !op->packed) {
                cnn_status st = cnn_qpacked_create(&op->packed, op->weights, op->K, op->N);
                /* few channels: the layout that reads window rows in place */
                if (!st && op->kind == CNN_QOP_CONV && op->g.c % 4 != 0 && op->g.dw == 1 &&
                    op->g.kw * op->g.c <= 64)
                    st = cnn_qpacked_add_rows(op->packed, op->weights, op->g.kh,
                                              op->g.kw * op->g.c);
                if (st) {
                    cnn_error_prefix("quantized model: op '%s'", op->name);
                    return st;
                }
            }
            if (op->N > q->max_channels)
                q->max_channels = op->N;
        }
        if (op->kind == CNN_QOP_GLOBAL_AVG)
            op->stage = (cnn_qoutput){NULL, op->multiplier, op->shift, out->p.zero_point, op->lo,
                                      op->hi};
        if (op->kind == CNN_QOP_CONV && cnn_qconv_col_stride(op->K) * QMODEL_COL_ROWS > q->max_col)
            q->max_col = cnn_qconv_col_stride(op->K) * QMODEL_COL_ROWS;
    }
    return plan_arena(q);
}

void cnn_qmodel_set_isa(cnn_qmodel *q, cnn_qisa isa) { q->isa = isa; }

cnn_status cnn_qmodel_set_threads(cnn_qmodel *q, int threads)
{
    if (!q)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantized model: NULL");
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

/* ---- Sizes and accessors ----------------------------------------------- */

int64_t cnn_qmodel_weight_bytes(const cnn_qmodel *q)
{
    int64_t bytes = 0;
    for (int k = 0; q && k < q->nops; k++) {
        const cnn_qop *op = &q->ops[k];
        if (weighted(op))
            bytes += (int64_t)op->K * op->N + 3 * (int64_t)sizeof(int32_t) * op->N;
        if (op->kind == CNN_QOP_LUT)
            bytes += 256;
        if (op->kind == CNN_QOP_GLOBAL_AVG)
            bytes += 2 * (int64_t)sizeof(int32_t) * op->N;
    }
    return bytes;
}

int64_t cnn_qmodel_float_params(const cnn_qmodel *q) { return q ? q->float_params : 0; }
int64_t cnn_qmodel_arena_bytes(const cnn_qmodel *q) { return q ? q->arena_elems : 0; }
cnn_qparams cnn_qmodel_input_params(const cnn_qmodel *q) { return q->values[0].p; }
cnn_shape cnn_qmodel_input_shape(const cnn_qmodel *q) { return q->input_shape; }
cnn_shape cnn_qmodel_output_shape(const cnn_qmodel *q) { return q->output_shape; }
int cnn_qmodel_op_count(const cnn_qmodel *q) { return q ? q->nops : 0; }
const cnn_qop *cnn_qmodel_op(const cnn_qmodel *q, int k)
{
    return q && k >= 0 && k < q->nops ? &q->ops[k] : NULL;
}
int cnn_qmodel_value_count(const cnn_qmodel *q) { return q ? q->nvalues : 0; }
const cnn_qvalue *cnn_qmodel_value(const cnn_qmodel *q, int v)
{
    return q && v >= 0 && v < q->nvalues ? &q->values[v] : NULL;
}
int cnn_qmodel_output_value(const cnn_qmodel *q) { return q->output_value; }
bool cnn_qmodel_softmax_output(const cnn_qmodel *q) { return q->softmax; }

const char *cnn_qmodel_op_type(const cnn_qmodel *q, int k)
{
    static const char *const names[CNN_QOP_KIND_END] = {
        [CNN_QOP_CONV] = "Conv2D",         [CNN_QOP_DEPTHWISE] = "DepthwiseConv2D",
        [CNN_QOP_DENSE] = "Dense",         [CNN_QOP_MAXPOOL] = "MaxPooling2D",
        [CNN_QOP_AVGPOOL] = "AveragePooling2D", [CNN_QOP_CLAMP] = "ReLU",
        [CNN_QOP_ADD] = "Add",             [CNN_QOP_CONCAT] = "Concatenate",
        [CNN_QOP_PAD] = "ZeroPadding2D",   [CNN_QOP_LUT] = "Lookup",
        [CNN_QOP_GLOBAL_AVG] = "GlobalAveragePooling2D",
        [CNN_QOP_GLOBAL_MAX] = "GlobalMaxPooling2D",
    };
    const cnn_qop *op = cnn_qmodel_op(q, k);
    return op ? names[op->kind] : NULL;
}

const char *cnn_qmodel_op_name(const cnn_qmodel *q, int k)
{
    const cnn_qop *op = cnn_qmodel_op(q, k);
    return op ? op->name : NULL;
}

/* ---- Inference -------------------------------------------------------- */

/* One op over a batch of b examples, its output rows (pixels, examples,
 * elements) split between the pool's workers; each has its own scratch. */
typedef struct op_job {
    const cnn_qmodel *q;
    const cnn_qop *op;
    int64_t b;
    const int8_t *x[CNN_QOP_MAX_INPUTS];
    int8_t *y, *col;
    int32_t *acc;
} op_job;

static int64_t op_rows(const cnn_qmodel *q, const cnn_qop *op, int64_t b)
{
    switch (op->kind) {
    case CNN_QOP_DENSE: return b;
    case CNN_QOP_CLAMP:
    case CNN_QOP_LUT:
    case CNN_QOP_ADD: return b * q->values[op->output].elems;
    case CNN_QOP_PAD: return b * op->g.oh;
    case CNN_QOP_CONCAT: {
        int total = 0;
        for (int k = 0; k < op->n_inputs; k++)
            total += op->channels[k];
        return b * (q->values[op->output].elems / total);
    }
    default: return b * op->g.oh * op->g.ow;
    }
}

/* Work of one op over b examples, in multiply-adds of the VNNI kernels;
 * the byte-wise ops (pooling, Add, ...) run some 30 times slower per
 * element, so each element counts 32. */
static int64_t op_work(const cnn_qmodel *q, const cnn_qop *op, int64_t b)
{
    int64_t rows = op_rows(q, op, b);
    switch (op->kind) {
    case CNN_QOP_CONV:
    case CNN_QOP_DENSE: return rows * op->K * op->N;
    case CNN_QOP_DEPTHWISE: return rows * op->g.kh * op->g.kw * op->N * 32;
    default: return b * q->values[op->output].elems * 32;
    }
}

/* Below this much work an op runs on the calling thread alone. With the
 * pool's spinning hand-over (a microsecond or two) 1M is where a split
 * starts to pay: batch-1 latency on 2 threads, 4M -> 1M: ResNet-8 0.142 ->
 * 0.101 ms, the BN recipe 0.045 -> 0.030, MobileNetV1 0.167 -> 0.160; one
 * thread unchanged (bench_int8 qinfer ... int8 1 T 200 100). */
#define QMODEL_SPLIT_WORK (INT64_C(1) << 20)

/* Op j's output rows [r0, r1) on worker ith (its scratch). */
static void op_run_rows(const op_job *j, int ith, long r0, long r1)
{
    const cnn_qop *op = j->op;
    const cnn_qmodel *q = j->q;
    if (r0 >= r1)
        return;
    int8_t *col = j->col + (int64_t)ith * q->max_col;
    int32_t *acc = j->acc + (int64_t)ith * q->max_channels;
    int32_t in_zero = q->values[op->inputs[0]].p.zero_point;
    switch (op->kind) {
    case CNN_QOP_CONV:
        cnn_qconv(q->isa, &op->g, j->x[0], in_zero, op->packed, &op->stage, r0, r1, col,
                  QMODEL_COL_ROWS, j->y + r0 * op->N);
        break;
    case CNN_QOP_DEPTHWISE:
        cnn_qdepthwise(q->isa, &op->g, op->mult, j->x[0], in_zero, op->weights, &op->stage, r0,
                       r1, acc, j->y + r0 * op->N);
        break;
    case CNN_QOP_DENSE:
        cnn_qgemm(q->isa, r1 - r0, j->x[0] + r0 * op->K, op->K, in_zero, op->packed, &op->stage,
                  j->y + r0 * op->N, op->N);
        break;
    case CNN_QOP_MAXPOOL:
    case CNN_QOP_GLOBAL_MAX:
        cnn_qmaxpool(q->isa, &op->g, j->x[0], op->lo, op->hi, r0, r1, j->y + r0 * op->g.c);
        break;
    case CNN_QOP_GLOBAL_AVG:
        cnn_qglobal_avg(&op->g, j->x[0], in_zero, &op->stage, r0, r1, j->y + r0 * op->g.c);
        break;
    case CNN_QOP_AVGPOOL:
        cnn_qavgpool(&op->g, j->x[0], op->lo, op->hi, r0, r1, j->y + r0 * op->g.c);
        break;
    case CNN_QOP_CLAMP:
        for (long i = r0; i < r1; i++)
            j->y[i] = (int8_t)cnn_q_clamp(j->x[0][i], op->lo, op->hi);
        break;
    case CNN_QOP_LUT:
        for (long i = r0; i < r1; i++)
            j->y[i] = op->lut[j->x[0][i] + 128];
        break;
    case CNN_QOP_ADD:
        cnn_qadd(q->isa, &op->add, j->x[0] + r0, j->x[1] + r0, r1 - r0, j->y + r0);
        break;
    case CNN_QOP_PAD:
        cnn_qzeropad(&op->g, op->pad, j->x[0], (int8_t)q->values[op->output].p.zero_point, r0,
                     r1, j->y + r0 * (int64_t)op->g.ow * op->g.c);
        break;
    case CNN_QOP_CONCAT: {
        int32_t zero[CNN_QOP_MAX_INPUTS];
        bool same[CNN_QOP_MAX_INPUTS];
        const cnn_qparams out = q->values[op->output].p;
        int total = 0;
        for (int k = 0; k < op->n_inputs; k++) {
            cnn_qparams p = q->values[op->inputs[k]].p;
            zero[k] = p.zero_point;
            same[k] = p.scale == out.scale && p.zero_point == out.zero_point;
            total += op->channels[k];
        }
        cnn_qconcat(op->n_inputs, j->x, op->channels, zero, op->multiplier, op->shift, same,
                    out.zero_point, r0, r1, j->y + r0 * total);
        break;
    }
    default: break;
    }
}

static void op_worker(void *arg, int ith, int nth)
{
    const op_job *j = arg;
    long r0, r1;
    cnn_split_range((long)op_rows(j->q, j->op, j->b), ith, nth, &r0, &r1);
    op_run_rows(j, ith, r0, r1);
}

/* Op k over the b examples in arena a, whose plan offsets are scaled by
 * scale (>= b) so the values alive together stay disjoint. */
static op_job job_for(const cnn_qmodel *q, int k, int8_t *a, int64_t b, int64_t scale,
                      int8_t *col, int32_t *acc)
{
    const cnn_qop *op = &q->ops[k];
    op_job job = {.q = q, .op = op, .b = b, .col = col, .acc = acc,
                  .y = a + q->values[op->output].offset * scale};
    for (int i = 0; i < op->n_inputs; i++)
        job.x[i] = a + q->values[op->inputs[i]].offset * scale;
    return job;
}

/* One batch of b <= QMODEL_BATCH examples: the input (float xf, quantized
 * here, or int8 xi), the output (float of, or int8 oi). */
typedef struct batch_job {
    const cnn_qmodel *q;
    int8_t *a, *col;
    int32_t *acc;
    int64_t b;
    const float *xf;
    const int8_t *xi;
    float *of;
    int8_t *oi;
} batch_job;

/* Examples [e0, e1) in their own arena of e1 - e0 examples. */
static void batch_range(const batch_job *bj, int8_t *a, int64_t scale, int64_t e0, int64_t e1,
                        int ith, bool split_ops)
{
    const cnn_qmodel *q = bj->q;
    const int64_t n = e1 - e0, in = q->values[0].elems;
    const cnn_qvalue *ov = &q->values[q->output_value];
    int8_t *xa = a + q->values[0].offset * scale, *oa = a + ov->offset * scale;
    if (bj->xf)
        cnn_q_quantize(bj->xf + e0 * in, n * in, q->values[0].p, xa);
    else
        memcpy(xa, bj->xi + e0 * in, (size_t)(n * in));
    for (int k = 0; k < q->nops; k++) {
        op_job j = job_for(q, k, a, n, scale, bj->col, bj->acc);
        if (!split_ops)
            op_run_rows(&j, ith, 0, (long)op_rows(q, j.op, n));
        else
            cnn_pool_run(op_work(q, j.op, n) < QMODEL_SPLIT_WORK ? NULL : q->pool, op_worker,
                         &j);
    }
    if (bj->of)
        cnn_q_dequantize(oa, n * ov->elems, ov->p, bj->of + e0 * ov->elems);
    else
        memcpy(bj->oi + e0 * ov->elems, oa, (size_t)(n * ov->elems));
}

/* Worker ith's share of the examples through the whole network, in its
 * own slice of the arena (examples e0.. start at e0 * arena_elems): no op
 * waits for the other workers. */
static void batch_worker(void *arg, int ith, int nth)
{
    const batch_job *bj = arg;
    long e0, e1;
    cnn_split_range((long)bj->b, ith, nth, &e0, &e1);
    if (e0 < e1)
        batch_range(bj, bj->a + e0 * bj->q->arena_elems, e1 - e0, e0, e1, ith, false);
}

/* With at least two examples per thread each thread runs the whole network
 * on its share, one pool wake-up per batch instead of one per op;
 * otherwise each op is split by rows (small ops on the calling thread). */
static void run_batch(const batch_job *bj)
{
    int nth = cnn_pool_threads(bj->q->pool);
    if (nth > 1 && bj->b >= 2 * (int64_t)nth)
        cnn_pool_run(bj->q->pool, batch_worker, (void *)bj);
    else
        batch_range(bj, bj->a, QMODEL_BATCH, 0, bj->b, 0, true);
}

/* The arena, im2col rows and accumulators of one predict call, in one
 * block kept by the model: a fresh malloc of a few megabytes per call came
 * back as new pages from the kernel each time, their faults a measurable
 * part of a batch. A call that finds the block in use (predict running
 * concurrently on one model) gets a block of its own, freed by
 * scratch_put. */
static cnn_status scratch_get(cnn_qmodel *q, int8_t **a, int8_t **col, int32_t **acc,
                              void **owned)
{
    size_t nth = (size_t)cnn_pool_threads(q->pool);
    size_t arena = ((size_t)(QMODEL_BATCH * q->arena_elems) + 63) / 64 * 64;
    size_t cols = (nth * (size_t)q->max_col + 64) / 64 * 64;
    size_t need = arena + cols + (nth * (size_t)q->max_channels + 1) * sizeof(int32_t);
    void *block = NULL;
    *owned = NULL;
    if (!atomic_exchange(&q->scratch_busy, true)) {
        if (q->scratch_bytes < need) {
            free(q->scratch);
            q->scratch = malloc(need);
            q->scratch_bytes = q->scratch ? need : 0;
        }
        block = q->scratch;
        if (!block)
            atomic_store(&q->scratch_busy, false);
    } else
        block = *owned = malloc(need);
    if (!block)
        return cnn_fail(CNN_ERR_NO_MEMORY, "quantized predict: cannot allocate %zu bytes", need);
    *a = block;
    *col = *a + arena;
    *acc = (int32_t *)(void *)(*col + cols);
    return CNN_OK;
}

static void scratch_put(cnn_qmodel *q, void *owned)
{
    if (owned)
        free(owned);
    else
        atomic_store(&q->scratch_busy, false);
}

static void softmax_rows(float *o, int64_t n, int64_t width)
{
    for (int64_t e = 0; e < n; e++, o += width) {
        float mx = o[0], sum = 0;
        for (int64_t j = 1; j < width; j++)
            mx = o[j] > mx ? o[j] : mx;
        for (int64_t j = 0; j < width; j++)
            sum += o[j] = expf(o[j] - mx);
        for (int64_t j = 0; j < width; j++)
            o[j] /= sum;
    }
}

/* n examples, QMODEL_BATCH at a time: float xf in, float of out (softmax
 * applied when the model ends in one), or int8 xi in, int8 oi out. Value v
 * lives at offset * QMODEL_BATCH: the plan's offsets scaled by the batch
 * stay disjoint. */
static cnn_status run_batches(cnn_qmodel *q, int64_t n, const float *xf, const int8_t *xi,
                              float *of, int8_t *oi)
{
    int8_t *a = NULL, *col = NULL;
    int32_t *acc = NULL;
    void *owned = NULL;
    cnn_status st = scratch_get(q, &a, &col, &acc, &owned);
    if (st)
        return st;
    const int64_t in_elems = q->values[0].elems;
    const cnn_qvalue *ov = &q->values[q->output_value];
    for (int64_t start = 0; start < n; start += QMODEL_BATCH) {
        int64_t b = n - start < QMODEL_BATCH ? n - start : QMODEL_BATCH;
        batch_job bj = {.q = q, .a = a, .col = col, .acc = acc, .b = b};
        if (xf) {
            bj.xf = xf + start * in_elems;
            bj.of = of + start * ov->elems;
        } else {
            bj.xi = xi + start * in_elems;
            bj.oi = oi + start * ov->elems;
        }
        run_batch(&bj);
        if (xf && q->softmax)
            softmax_rows(bj.of, b, ov->elems);
    }
    scratch_put(q, owned);
    return CNN_OK;
}

cnn_status cnn_qmodel_predict(cnn_qmodel *q, const cnn_tensor *x, float *out)
{
    if (!q || !out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantized predict: model and out must not be "
                                                  "NULL");
    if (!x || x->rank != q->input_shape.rank + 1)
        return cnn_fail(CNN_ERR_SHAPE, "quantized predict: expected input of rank %d, got %d",
                        q->input_shape.rank + 1, x ? x->rank : 0);
    for (int d = 0; d < q->input_shape.rank; d++)
        if (x->dims[d + 1] != q->input_shape.dims[d])
            return cnn_fail(CNN_ERR_SHAPE,
                            "quantized predict: input dimension %d is %lld, expected %d", d + 1,
                            (long long)x->dims[d + 1], q->input_shape.dims[d]);
    return run_batches(q, x->dims[0], x->data, NULL, out, NULL);
}

/* ---- Evaluation ------------------------------------------------------- */

/* Adds the cross-entropy and correctness of n rows of outputs p (width
 * units) against targets y (tsize per example: a class index, or a
 * one-hot row). */
static cnn_status score(const float *p, const float *y, int64_t n, int64_t units, int64_t tsize,
                        double *loss, double *correct)
{
    const double eps = 1e-7;
    for (int64_t e = 0; e < n; e++, p += units, y += tsize) {
        int64_t label, best = 0;
        if (tsize == 1) {
            if (!(y[0] >= 0) || y[0] >= (units == 1 ? 2 : (double)units) || y[0] != floorf(y[0]))
                return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                                "quantized evaluate: label of example %lld is %g, expected an "
                                "integer 0..%lld",
                                (long long)e, y[0], (long long)(units == 1 ? 1 : units - 1));
            label = (int64_t)y[0];
        } else {
            label = 0;
            for (int64_t j = 1; j < tsize; j++)
                if (y[j] > y[label])
                    label = j;
        }
        if (units == 1) {
            double pr = fmin(fmax(p[0], eps), 1 - eps);
            *loss -= label ? log(pr) : log(1 - pr);
            *correct += (p[0] >= 0.5f) == (label == 1);
            continue;
        }
        for (int64_t j = 1; j < units; j++)
            if (p[j] > p[best])
                best = j;
        *loss -= log(fmin(fmax(p[label], eps), 1 - eps));
        *correct += best == label;
    }
    return CNN_OK;
}

static cnn_status check_targets(const cnn_qmodel *q, int64_t tsize)
{
    int64_t units = cnn_qshape_elems(q->output_shape);
    if (tsize != 1 && tsize != units)
        return cnn_fail(CNN_ERR_SHAPE, "quantized evaluate: targets: expected a class index or "
                                       "%lld values per example, got %lld",
                        (long long)units, (long long)tsize);
    return CNN_OK;
}

cnn_status cnn_qmodel_evaluate(cnn_qmodel *q, const cnn_tensor *x, const cnn_tensor *y,
                               double *loss, double *accuracy)
{
    if (!q || !x || !y)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantized evaluate: model, x and y are "
                                                  "required");
    int64_t n = x->dims[0];
    if (n < 1 || y->dims[0] != n)
        return cnn_fail(CNN_ERR_SHAPE, "quantized evaluate: %lld inputs but %lld targets",
                        (long long)n, (long long)y->dims[0]);
    int64_t tsize = cnn_tensor_size(y) / n, units = cnn_qshape_elems(q->output_shape);
    cnn_status st = check_targets(q, tsize);
    if (st)
        return st;
    float *p = malloc((size_t)(n * units) * sizeof(float));
    if (!p)
        return cnn_fail(CNN_ERR_NO_MEMORY, "quantized evaluate: out of memory");
    double l = 0, c = 0;
    st = cnn_qmodel_predict(q, x, p);
    if (!st)
        st = score(p, y->data, n, units, tsize, &l, &c);
    free(p);
    if (st)
        return st;
    if (loss)
        *loss = l / (double)n;
    if (accuracy)
        *accuracy = c / (double)n;
    return CNN_OK;
}

cnn_status cnn_qmodel_evaluate_dataset(cnn_qmodel *q, cnn_dataset *ds, double *loss,
                                       double *accuracy)
{
    if (!q || !ds)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantized evaluate: model and data set are "
                                                  "required");
    int64_t n = cnn_dataset_count(ds), tsize = cnn_dataset_target_size(ds);
    int64_t units = cnn_qshape_elems(q->output_shape), in = q->values[0].elems;
    cnn_shape es = cnn_dataset_element_shape(ds);
    if (cnn_qshape_elems(es) != in || es.rank != q->input_shape.rank)
        return cnn_fail(CNN_ERR_SHAPE, "quantized evaluate: the data set's examples do not have "
                                       "the model's input shape");
    cnn_status st = check_targets(q, tsize);
    if (st)
        return st;
    if (n < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantized evaluate: the data set is empty");
    float *x = malloc((size_t)(QMODEL_BATCH * in) * sizeof(float));
    float *y = malloc((size_t)(QMODEL_BATCH * tsize) * sizeof(float));
    float *p = malloc((size_t)(QMODEL_BATCH * units) * sizeof(float));
    double l = 0, c = 0;
    if (!x || !y || !p)
        st = cnn_fail(CNN_ERR_NO_MEMORY, "quantized evaluate: out of memory");
    for (int64_t start = 0; start < n && !st; start += QMODEL_BATCH) {
        int64_t b = n - start < QMODEL_BATCH ? n - start : QMODEL_BATCH;
        cnn_tensor view = {.rank = q->input_shape.rank + 1, .dims = {b}, .data = x};
        for (int d = 0; d < q->input_shape.rank; d++)
            view.dims[d + 1] = q->input_shape.dims[d];
        if (!(st = cnn_dataset_read(ds, start, b, x, y)) &&
            !(st = cnn_qmodel_predict(q, &view, p)))
            st = score(p, y, b, units, tsize, &l, &c);
    }
    free(x);
    free(y);
    free(p);
    if (st)
        return st;
    if (loss)
        *loss = l / (double)n;
    if (accuracy)
        *accuracy = c / (double)n;
    return CNN_OK;
}

/* ---- The exporter's view ------------------------------------------------ */

void cnn_qmodel_op_info(const cnn_qmodel *q, int k, cnn_qop_info *out)
{
    const cnn_qop *op = &q->ops[k];
    const cnn_qvalue *in = &q->values[op->inputs[0]], *o = &q->values[op->output];
    *out = (cnn_qop_info){.kind = op->kind, .layer = op->layer, .g = op->g, .mult = op->mult,
                          .N = op->N, .in_elems = in->elems, .out_elems = o->elems,
                          .bias = op->bias, .multiplier = op->multiplier, .shift = op->shift,
                          .in = in->p, .out = o->p, .lo = op->lo, .hi = op->hi};
    if (weighted(op))
        out->weight_count = (int64_t)op->K * op->N;
}

void cnn_qmodel_op_weights(const cnn_qmodel *q, int k, int8_t *w)
{
    const cnn_qop *op = &q->ops[k];
    if (weighted(op))
        memcpy(w, op->weights, (size_t)op->K * (size_t)op->N);
}

cnn_qparams cnn_qmodel_output_params(const cnn_qmodel *q) { return q->values[q->output_value].p; }
bool cnn_qmodel_ends_in_softmax(const cnn_qmodel *q) { return q->softmax; }

bool cnn_qmodel_is_chain(const cnn_qmodel *q)
{
    for (int k = 0; k < q->nops; k++)
        if (q->ops[k].n_inputs != 1 || q->ops[k].inputs[0] != k)
            return false;
    return q->output_value == q->nops;
}

cnn_status cnn_qmodel_predict_int8(cnn_qmodel *q, const int8_t *x, int64_t n, int8_t *y)
{
    return run_batches(q, n, NULL, x, NULL, y);
}
