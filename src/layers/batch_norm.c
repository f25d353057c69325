/* BatchNormalization over the last axis, Keras semantics (cnn.h). With C
 * channels and N = batch x rows x cols values per channel:
 *
 *   training:  mean, var = the batch's (biased) per channel;
 *              xhat = (x - mean) / sqrt(var + eps);  y = gamma xhat + beta;
 *              moving = momentum moving + (1 - momentum) batch (mean, var)
 *   inference: the same with the moving mean and variance
 *
 *   backward (training), g = dy:  dbeta += sum g;  dgamma += sum g xhat;
 *     dx = gamma / sqrt(var + eps) (g - mean(g) - xhat mean(g xhat))
 *   backward (inference): dx = gamma / sqrt(moving_var + eps) g
 *
 * Work is split by channels, each worker reducing its channels over all N
 * rows (in float over blocks of rows, the blocks' sums in double), so the
 * result does not depend on the thread count. The
 * batch's mean and 1/sqrt(var + eps) are kept from forward to backward;
 * xhat is recomputed from x, which the model keeps. */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "layers/layer.h"

enum { GAMMA, BETA, MOVING_MEAN, MOVING_VARIANCE };
/* Channels a worker reduces at once (its accumulators live on the stack). */
#define CHANNEL_BLOCK 64
/* Rows summed in float (vectorised) before joining the double totals. */
#define ROW_BLOCK 64

typedef struct {
    cnn_layer base;
    int channels;
} bn_layer;

static cnn_status bn_infer(cnn_layer *l, cnn_shape in)
{
    bn_layer *b = (bn_layer *)l;
    b->channels = in.dims[in.rank - 1];
    l->out = in;
    const int64_t dims[1] = {b->channels};
    cnn_layer_set_param(l, GAMMA, "gamma", 1, dims, true);
    cnn_layer_set_param(l, BETA, "beta", 1, dims, true);
    cnn_layer_set_param(l, MOVING_MEAN, "moving_mean", 1, dims, false);
    cnn_layer_set_param(l, MOVING_VARIANCE, "moving_variance", 1, dims, false);
    return CNN_OK;
}

static void fill(float *p, int64_t n, float v)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = v;
}

static void bn_init(cnn_layer *l, cnn_rng *rng)
{
    (void)rng;
    int64_t c = ((bn_layer *)l)->channels;
    fill(l->params[GAMMA].value, c, 1.0f);
    fill(l->params[BETA].value, c, 0.0f);
    fill(l->params[MOVING_MEAN].value, c, 0.0f);
    fill(l->params[MOVING_VARIANCE].value, c, 1.0f);
}

/* mean and inv_std of the batch, (channels) each. */
static size_t bn_saved(const cnn_layer *l, int batch)
{
    (void)batch;
    return 2 * (size_t)((const bn_layer *)l)->channels * sizeof(float);
}

typedef struct {
    const bn_layer *b;
    const cnn_layer_io *io;
    int64_t rows; /* N */
    float *mean, *inv_std; /* the statistics normalised with */
} bn_job;

static void saved_stats(const bn_layer *b, const cnn_layer_io *io, float **mean, float **inv_std)
{
    *mean = io->saved;
    *inv_std = *mean + b->channels;
}

/* Training forward: batch statistics, moving statistics, y. */
static void forward_train_worker(void *p, int ith, int nth)
{
    const bn_job *j = p;
    const cnn_layer *l = &j->b->base;
    const int C = j->b->channels;
    const float momentum = l->spec.u.batch_normalization.momentum;
    const float eps = l->spec.u.batch_normalization.epsilon;
    const float *gamma = l->params[GAMMA].value, *beta = l->params[BETA].value;
    float *mm = l->params[MOVING_MEAN].value, *mv = l->params[MOVING_VARIANCE].value;
    long c0, c1;
    cnn_split_range(C, ith, nth, &c0, &c1);
    for (long cb = c0; cb < c1; cb += CHANNEL_BLOCK) {
        const int n = (int)(c1 - cb < CHANNEL_BLOCK ? c1 - cb : CHANNEL_BLOCK);
        /* sums of x - shift, shift = the first row: var = E[d^2] - E[d]^2
         * then cancels little even when the mean is large */
        double sum[CHANNEL_BLOCK] = {0}, sq[CHANNEL_BLOCK] = {0};
        float shift[CHANNEL_BLOCK];
        memcpy(shift, j->io->x + cb, (size_t)n * sizeof(float));
        for (int64_t r0 = 0; r0 < j->rows; r0 += ROW_BLOCK) {
            const int64_t r1 = r0 + ROW_BLOCK < j->rows ? r0 + ROW_BLOCK : j->rows;
            float s1[CHANNEL_BLOCK] = {0}, s2[CHANNEL_BLOCK] = {0};
            for (int64_t r = r0; r < r1; r++) {
                const float *x = j->io->x + r * C + cb;
                for (int k = 0; k < n; k++) {
                    float d = x[k] - shift[k];
                    s1[k] += d;
                    s2[k] += d * d;
                }
            }
            for (int k = 0; k < n; k++) {
                sum[k] += s1[k];
                sq[k] += s2[k];
            }
        }
        float scale[CHANNEL_BLOCK], offset[CHANNEL_BLOCK];
        for (int k = 0; k < n; k++) {
            const long c = cb + k;
            double d = sum[k] / (double)j->rows, mean = shift[k] + d;
            double var = sq[k] / (double)j->rows - d * d;
            if (var < 0)
                var = 0;
            j->mean[c] = (float)mean;
            j->inv_std[c] = (float)(1.0 / sqrt(var + eps));
            mm[c] = momentum * mm[c] + (1 - momentum) * (float)mean;
            mv[c] = momentum * mv[c] + (1 - momentum) * (float)var;
            scale[k] = gamma[c] * j->inv_std[c];
            offset[k] = beta[c] - j->mean[c] * scale[k];
        }
        for (int64_t r = 0; r < j->rows; r++) {
            const float *x = j->io->x + r * C + cb;
            float *y = j->io->y + r * C + cb;
            for (int k = 0; k < n; k++)
                y[k] = x[k] * scale[k] + offset[k];
        }
    }
}

/* Inference forward: y = x * scale + shift per channel. */
static void forward_infer_worker(void *p, int ith, int nth)
{
    const bn_job *j = p;
    const cnn_layer *l = &j->b->base;
    const int C = j->b->channels;
    const float eps = l->spec.u.batch_normalization.epsilon;
    const float *gamma = l->params[GAMMA].value, *beta = l->params[BETA].value;
    const float *mm = l->params[MOVING_MEAN].value, *mv = l->params[MOVING_VARIANCE].value;
    long c0, c1;
    cnn_split_range(C, ith, nth, &c0, &c1);
    for (long cb = c0; cb < c1; cb += CHANNEL_BLOCK) {
        const int n = (int)(c1 - cb < CHANNEL_BLOCK ? c1 - cb : CHANNEL_BLOCK);
        float scale[CHANNEL_BLOCK], shift[CHANNEL_BLOCK];
        for (int k = 0; k < n; k++) {
            const long c = cb + k;
            float inv_std = (float)(1.0 / sqrt((double)mv[c] + eps));
            if (j->mean) {
                j->mean[c] = mm[c];
                j->inv_std[c] = inv_std;
            }
            scale[k] = gamma[c] * inv_std;
            shift[k] = beta[c] - mm[c] * scale[k];
        }
        for (int64_t r = 0; r < j->rows; r++) {
            const float *x = j->io->x + r * C + cb;
            float *y = j->io->y + r * C + cb;
            for (int k = 0; k < n; k++)
                y[k] = x[k] * scale[k] + shift[k];
        }
    }
}

/* Worth the pool only for a few thousand values or more. */
static cnn_pool *pool_for(const cnn_layer_io *io, int64_t values)
{
    return values >= 16384 ? io->pool : NULL;
}

static void bn_forward(cnn_layer *l, const cnn_layer_io *io)
{
    bn_layer *b = (bn_layer *)l;
    bn_job job = {.b = b, .io = io, .rows = (int64_t)io->batch * cnn_shape_size(l->in) / b->channels};
    if (io->saved)
        saved_stats(b, io, &job.mean, &job.inv_std);
    cnn_pool *pool = pool_for(io, job.rows * b->channels);
    /* Training needs somewhere to keep the statistics; the model always
     * gives training forwards their saved state. */
    if (io->training && io->saved)
        cnn_pool_run(pool, forward_train_worker, &job);
    else
        cnn_pool_run(pool, forward_infer_worker, &job);
}

static void backward_worker(void *p, int ith, int nth)
{
    const bn_job *j = p;
    const cnn_layer *l = &j->b->base;
    const cnn_layer_io *io = j->io;
    const int C = j->b->channels;
    const float *gamma = l->params[GAMMA].value;
    float *dgamma = l->params[GAMMA].grad, *dbeta = l->params[BETA].grad;
    long c0, c1;
    cnn_split_range(C, ith, nth, &c0, &c1);
    for (long cb = c0; cb < c1; cb += CHANNEL_BLOCK) {
        const int n = (int)(c1 - cb < CHANNEL_BLOCK ? c1 - cb : CHANNEL_BLOCK);
        const float *mean = j->mean + cb, *inv_std = j->inv_std + cb;
        double sum_g[CHANNEL_BLOCK] = {0}, sum_gx[CHANNEL_BLOCK] = {0};
        for (int64_t r0 = 0; r0 < j->rows; r0 += ROW_BLOCK) {
            const int64_t r1 = r0 + ROW_BLOCK < j->rows ? r0 + ROW_BLOCK : j->rows;
            float s1[CHANNEL_BLOCK] = {0}, s2[CHANNEL_BLOCK] = {0};
            for (int64_t r = r0; r < r1; r++) {
                const float *x = io->x + r * C + cb, *g = io->dy + r * C + cb;
                for (int k = 0; k < n; k++) {
                    s1[k] += g[k];
                    s2[k] += g[k] * ((x[k] - mean[k]) * inv_std[k]);
                }
            }
            for (int k = 0; k < n; k++) {
                sum_g[k] += s1[k];
                sum_gx[k] += s2[k];
            }
        }
        float a[CHANNEL_BLOCK], mg[CHANNEL_BLOCK], mgx[CHANNEL_BLOCK];
        for (int k = 0; k < n; k++) {
            dbeta[cb + k] += (float)sum_g[k];
            dgamma[cb + k] += (float)sum_gx[k];
            a[k] = gamma[cb + k] * inv_std[k];
            /* inference: the statistics are constants, dx = a g */
            mg[k] = io->training ? (float)(sum_g[k] / (double)j->rows) : 0.0f;
            mgx[k] = io->training ? (float)(sum_gx[k] / (double)j->rows) : 0.0f;
        }
        if (!io->dx)
            continue;
        for (int64_t r = 0; r < j->rows; r++) {
            const float *x = io->x + r * C + cb, *g = io->dy + r * C + cb;
            float *dx = io->dx + r * C + cb;
            for (int k = 0; k < n; k++)
                dx[k] = a[k] * (g[k] - mg[k] - (x[k] - mean[k]) * inv_std[k] * mgx[k]);
        }
    }
}

static void bn_backward(cnn_layer *l, const cnn_layer_io *io)
{
    bn_layer *b = (bn_layer *)l;
    bn_job job = {.b = b, .io = io, .rows = (int64_t)io->batch * cnn_shape_size(l->in) / b->channels};
    saved_stats(b, io, &job.mean, &job.inv_std);
    cnn_pool_run(pool_for(io, job.rows * b->channels), backward_worker, &job);
}

const cnn_layer_ops cnn_batch_normalization_ops = {
    .kind = CNN_LAYER_BATCH_NORMALIZATION,
    .type_name = "BatchNormalization",
    .auto_name = "batch_normalization",
    .infer = bn_infer,
    .init = bn_init,
    .saved_bytes = bn_saved,
    .forward = bn_forward,
    .backward = bn_backward,
};

cnn_status cnn_layer_batch_normalization_create(cnn_layer **out, const cnn_layer_spec *spec,
                                                const char *name)
{
    *out = NULL;
    cnn_batch_normalization_config k = spec->u.batch_normalization;
    if (k.momentum == 0)
        k.momentum = 0.99f;
    if (k.epsilon == 0)
        k.epsilon = 1e-3f;
    if (!(k.momentum > 0 && k.momentum < 1))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (BatchNormalization): momentum must be in (0, 1), got %g", name,
                        (double)k.momentum);
    if (!(k.epsilon > 0 && isfinite(k.epsilon)))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (BatchNormalization): epsilon must be a finite number > 0, got %g",
                        name, (double)k.epsilon);
    cnn_status st = cnn_layer_alloc(out, sizeof(bn_layer), &cnn_batch_normalization_ops, name);
    if (st == CNN_OK) {
        (*out)->spec.kind = CNN_LAYER_BATCH_NORMALIZATION;
        (*out)->spec.u.batch_normalization = k;
    }
    return st;
}
