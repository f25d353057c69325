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
 * The sums are taken in float over blocks of 64 rows and the blocks'
 * sums joined in double, in block order (kernels/batch_norm.h). With many
 * channels, work is split by channels, each worker reducing its channels
 * over all N rows. With few (up to ROW_SPLIT_CHANNELS), a channel split
 * would make every worker touch every cache line of the tensor and fill
 * a fraction of a vector, so the workers split the rows instead: each
 * writes its blocks' float sums to the workspace, the caller joins them in
 * block order, and a second pass writes y (or dx) by rows. Both ways give
 * the same bits, so the result does not depend on the thread count. The
 * batch's mean and 1/sqrt(var + eps) are kept from forward to backward;
 * xhat is recomputed from x, which the model keeps. */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "kernels/batch_norm.h"
#include "layers/layer.h"

enum { GAMMA, BETA, MOVING_MEAN, MOVING_VARIANCE };
/* Channels a worker reduces at once (its accumulators live on the stack). */
#define CHANNEL_BLOCK 64
/* Up to this many channels the workers split rows. From 32 up a channel
 * split gives each of 2 workers whole cache lines and vectors, and
 * measured as fast or faster (BN alone at batch 32, 12x12x64: 0.085 ms
 * forward by channels on 2 threads, 0.132 ms by rows). */
#define ROW_SPLIT_CHANNELS 31

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

static int64_t rows_of(const bn_layer *b, int batch)
{
    return (int64_t)batch * cnn_shape_size(b->base.in) / b->channels;
}

static int64_t blocks_of(int64_t rows)
{
    return (rows + CNN_BN_ROW_BLOCK - 1) / CNN_BN_ROW_BLOCK;
}

/* The row split's block sums: 2 floats per channel per block of rows,
 * 1/32 of the tensor. */
static size_t bn_workspace(const cnn_layer *l, int batch, int64_t tile_floats)
{
    (void)tile_floats;
    const bn_layer *b = (const bn_layer *)l;
    if (b->channels > ROW_SPLIT_CHANNELS)
        return 0;
    return 2 * (size_t)blocks_of(rows_of(b, batch)) * (size_t)b->channels;
}

typedef struct {
    const bn_layer *b;
    const cnn_layer_io *io;
    int64_t rows; /* N */
    float *mean, *inv_std; /* the statistics normalised with */
    /* the row split: */
    float *sums;           /* the blocks' sums (workspace) */
    float scale[ROW_SPLIT_CHANNELS], shift[ROW_SPLIT_CHANNELS]; /* forward: y = x scale + shift */
    float a[ROW_SPLIT_CHANNELS], mg[ROW_SPLIT_CHANNELS], mgx[ROW_SPLIT_CHANNELS]; /* backward */
} bn_job;

static void saved_stats(const bn_layer *b, const cnn_layer_io *io, float **mean, float **inv_std)
{
    *mean = io->saved;
    *inv_std = *mean + b->channels;
}

/* ---- Per-channel coefficients, for channels [c0, c0 + n) ------------------- */

/* Training: the batch's statistics (mean, var) kept for backward, the
 * moving statistics updated, and y = x scale + shift. */
static void train_coefficients(const bn_job *j, long c0, int n, const double *mean,
                               const double *var, float *scale, float *shift)
{
    const cnn_layer *l = &j->b->base;
    const float momentum = l->spec.u.batch_normalization.momentum;
    const float eps = l->spec.u.batch_normalization.epsilon;
    const float *gamma = l->params[GAMMA].value, *beta = l->params[BETA].value;
    float *mm = l->params[MOVING_MEAN].value, *mv = l->params[MOVING_VARIANCE].value;
    for (int k = 0; k < n; k++) {
        const long c = c0 + k;
        j->mean[c] = (float)mean[k];
        j->inv_std[c] = (float)(1.0 / sqrt(var[k] + eps));
        mm[c] = momentum * mm[c] + (1 - momentum) * (float)mean[k];
        mv[c] = momentum * mv[c] + (1 - momentum) * (float)var[k];
        scale[k] = gamma[c] * j->inv_std[c];
        shift[k] = beta[c] - j->mean[c] * scale[k];
    }
}

/* Inference: from the moving statistics (kept for backward if saved). */
static void infer_coefficients(const bn_job *j, long c0, int n, float *scale, float *shift)
{
    const cnn_layer *l = &j->b->base;
    const float eps = l->spec.u.batch_normalization.epsilon;
    const float *gamma = l->params[GAMMA].value, *beta = l->params[BETA].value;
    const float *mm = l->params[MOVING_MEAN].value, *mv = l->params[MOVING_VARIANCE].value;
    for (int k = 0; k < n; k++) {
        const long c = c0 + k;
        float inv_std = (float)(1.0 / sqrt((double)mv[c] + eps));
        if (j->mean) {
            j->mean[c] = mm[c];
            j->inv_std[c] = inv_std;
        }
        scale[k] = gamma[c] * inv_std;
        shift[k] = beta[c] - mm[c] * scale[k];
    }
}

/* Backward: dbeta and dgamma accumulated from the sums, and dx's
 * coefficients a, mg, mgx (cnn_bn_grad_input). */
static void grad_coefficients(const bn_job *j, long c0, int n, const double *sum_g,
                              const double *sum_gx, float *a, float *mg, float *mgx)
{
    const cnn_layer *l = &j->b->base;
    const bool training = j->io->training;
    const float *gamma = l->params[GAMMA].value;
    float *dgamma = l->params[GAMMA].grad, *dbeta = l->params[BETA].grad;
    for (int k = 0; k < n; k++) {
        const long c = c0 + k;
        dbeta[c] += (float)sum_g[k];
        dgamma[c] += (float)sum_gx[k];
        a[k] = gamma[c] * j->inv_std[c];
        /* inference: the statistics are constants, dx = a g */
        mg[k] = training ? (float)(sum_g[k] / (double)j->rows) : 0.0f;
        mgx[k] = training ? (float)(sum_gx[k] / (double)j->rows) : 0.0f;
    }
}

/* ---- The channel split (many channels) --------------------------------------- */

/* Training forward: batch statistics, moving statistics, y. */
static void forward_train_worker(void *p, int ith, int nth)
{
    const bn_job *j = p;
    const int C = j->b->channels;
    long c0, c1;
    cnn_split_range(C, ith, nth, &c0, &c1);
    for (long cb = c0; cb < c1; cb += CHANNEL_BLOCK) {
        const int n = (int)(c1 - cb < CHANNEL_BLOCK ? c1 - cb : CHANNEL_BLOCK);
        double mean[CHANNEL_BLOCK], var[CHANNEL_BLOCK];
        cnn_bn_stats(CNN_ISA_AUTO, j->io->x + cb, j->rows, n, C, mean, var);
        float scale[CHANNEL_BLOCK], shift[CHANNEL_BLOCK];
        train_coefficients(j, cb, n, mean, var, scale, shift);
        cnn_bn_affine(CNN_ISA_AUTO, j->io->x + cb, j->io->y + cb, j->rows, n, C, scale, shift);
    }
}

/* Inference forward: y = x * scale + shift per channel. */
static void forward_infer_worker(void *p, int ith, int nth)
{
    const bn_job *j = p;
    const int C = j->b->channels;
    long c0, c1;
    cnn_split_range(C, ith, nth, &c0, &c1);
    for (long cb = c0; cb < c1; cb += CHANNEL_BLOCK) {
        const int n = (int)(c1 - cb < CHANNEL_BLOCK ? c1 - cb : CHANNEL_BLOCK);
        float scale[CHANNEL_BLOCK], shift[CHANNEL_BLOCK];
        infer_coefficients(j, cb, n, scale, shift);
        cnn_bn_affine(CNN_ISA_AUTO, j->io->x + cb, j->io->y + cb, j->rows, n, C, scale, shift);
    }
}

static void backward_worker(void *p, int ith, int nth)
{
    const bn_job *j = p;
    const cnn_layer_io *io = j->io;
    const int C = j->b->channels;
    long c0, c1;
    cnn_split_range(C, ith, nth, &c0, &c1);
    for (long cb = c0; cb < c1; cb += CHANNEL_BLOCK) {
        const int n = (int)(c1 - cb < CHANNEL_BLOCK ? c1 - cb : CHANNEL_BLOCK);
        const float *mean = j->mean + cb, *inv_std = j->inv_std + cb;
        double sum_g[CHANNEL_BLOCK], sum_gx[CHANNEL_BLOCK];
        cnn_bn_grad_sums(CNN_ISA_AUTO, io->x + cb, io->dy + cb, j->rows, n, C, mean, inv_std,
                         sum_g, sum_gx);
        float a[CHANNEL_BLOCK], mg[CHANNEL_BLOCK], mgx[CHANNEL_BLOCK];
        grad_coefficients(j, cb, n, sum_g, sum_gx, a, mg, mgx);
        if (io->dx)
            cnn_bn_grad_input(CNN_ISA_AUTO, io->x + cb, io->dy + cb, io->dx + cb, j->rows, n, C,
                              a, mean, inv_std, mg, mgx);
    }
}

/* ---- The row split (few channels) ------------------------------------------ */

/* Rows, given the workspace (a caller without one gets the channel split:
 * the same bits). */
static bool splits_rows(const bn_layer *b, const cnn_layer_io *io)
{
    return b->channels <= ROW_SPLIT_CHANNELS && io->workspace;
}

static void rows_share(const bn_job *j, int ith, int nth, int64_t *r0, int64_t *r1)
{
    long b0, b1;
    cnn_split_range((long)blocks_of(j->rows), ith, nth, &b0, &b1);
    *r0 = (int64_t)b0 * CNN_BN_ROW_BLOCK;
    *r1 = (int64_t)b1 * CNN_BN_ROW_BLOCK < j->rows ? (int64_t)b1 * CNN_BN_ROW_BLOCK : j->rows;
}

static void stats_rows_worker(void *p, int ith, int nth)
{
    const bn_job *j = p;
    const int C = j->b->channels;
    long b0, b1;
    cnn_split_range((long)blocks_of(j->rows), ith, nth, &b0, &b1);
    /* shift: row 0 of the whole tensor, whoever sums which blocks */
    cnn_bn_stats_blocks(CNN_ISA_AUTO, j->io->x, j->rows, C, C, j->io->x, b0, b1,
                        j->sums + (int64_t)b0 * 2 * C);
}

static void affine_rows_worker(void *p, int ith, int nth)
{
    const bn_job *j = p;
    const int64_t C = j->b->channels;
    int64_t r0, r1;
    rows_share(j, ith, nth, &r0, &r1);
    cnn_bn_affine(CNN_ISA_AUTO, j->io->x + r0 * C, j->io->y + r0 * C, r1 - r0, (int)C, C,
                  j->scale, j->shift);
}

static void grad_sums_rows_worker(void *p, int ith, int nth)
{
    const bn_job *j = p;
    const int C = j->b->channels;
    long b0, b1;
    cnn_split_range((long)blocks_of(j->rows), ith, nth, &b0, &b1);
    cnn_bn_grad_sums_blocks(CNN_ISA_AUTO, j->io->x, j->io->dy, j->rows, C, C, j->mean,
                            j->inv_std, b0, b1, j->sums + (int64_t)b0 * 2 * C);
}

static void grad_input_rows_worker(void *p, int ith, int nth)
{
    const bn_job *j = p;
    const cnn_layer_io *io = j->io;
    const int64_t C = j->b->channels;
    int64_t r0, r1;
    rows_share(j, ith, nth, &r0, &r1);
    cnn_bn_grad_input(CNN_ISA_AUTO, io->x + r0 * C, io->dy + r0 * C, io->dx + r0 * C, r1 - r0,
                      (int)C, C, j->a, j->mean, j->inv_std, j->mg, j->mgx);
}

/* Forward with the rows split: the statistics' block sums (training),
 * joined here, then y. */
static void forward_rows(bn_job *j, cnn_pool *pool)
{
    const int C = j->b->channels;
    if (j->io->training && j->io->saved) {
        double mean[ROW_SPLIT_CHANNELS], var[ROW_SPLIT_CHANNELS];
        cnn_pool_run(pool, stats_rows_worker, j);
        cnn_bn_stats_join(j->sums, j->rows, C, j->io->x, mean, var);
        train_coefficients(j, 0, C, mean, var, j->scale, j->shift);
    } else {
        infer_coefficients(j, 0, C, j->scale, j->shift);
    }
    cnn_pool_run(pool, affine_rows_worker, j);
}

static void backward_rows(bn_job *j, cnn_pool *pool)
{
    const int C = j->b->channels;
    double sum_g[ROW_SPLIT_CHANNELS], sum_gx[ROW_SPLIT_CHANNELS];
    cnn_pool_run(pool, grad_sums_rows_worker, j);
    cnn_bn_join_blocks(j->sums, j->rows, C, C, sum_g, sum_gx);
    grad_coefficients(j, 0, C, sum_g, sum_gx, j->a, j->mg, j->mgx);
    if (j->io->dx)
        cnn_pool_run(pool, grad_input_rows_worker, j);
}

/* A pass over memory that is already in this core's cache: splitting it
 * sends half to the other core, so below ~256K values (1 MiB) it is
 * slower on two threads than on one (batch-1 MobileNetV1: 0.44 ms with
 * 2 threads at the old 16K threshold, 0.36 ms at 256K, as on 1 thread).
 * The elementwise passes elsewhere split at the same size. */
static cnn_pool *pool_for(const cnn_layer_io *io, int64_t values)
{
    return values >= CNN_POOL_ELEMENTWISE_MIN ? io->pool : NULL;
}

static void bn_forward(cnn_layer *l, const cnn_layer_io *io)
{
    bn_layer *b = (bn_layer *)l;
    bn_job job = {.b = b, .io = io, .rows = rows_of(b, io->batch), .sums = io->workspace};
    if (io->saved)
        saved_stats(b, io, &job.mean, &job.inv_std);
    cnn_pool *pool = pool_for(io, job.rows * b->channels);
    if (splits_rows(b, io)) {
        forward_rows(&job, pool);
        return;
    }
    /* Training needs somewhere to keep the statistics; the model always
     * gives training forwards their saved state. */
    if (io->training && io->saved)
        cnn_pool_run(pool, forward_train_worker, &job);
    else
        cnn_pool_run(pool, forward_infer_worker, &job);
}

static void bn_backward(cnn_layer *l, const cnn_layer_io *io)
{
    bn_layer *b = (bn_layer *)l;
    bn_job job = {.b = b, .io = io, .rows = rows_of(b, io->batch), .sums = io->workspace};
    saved_stats(b, io, &job.mean, &job.inv_std);
    cnn_pool *pool = pool_for(io, job.rows * b->channels);
    if (splits_rows(b, io))
        backward_rows(&job, pool);
    else
        cnn_pool_run(pool, backward_worker, &job);
}

static cnn_status cnn_layer_batch_normalization_create(cnn_layer **out, const cnn_layer_spec *spec,
                                                       const char *name);

/* The fields in Keras's positional order, which is the order of the
 * model file's record. */
static const cnn_layer_field batch_normalization_fields[] = {
    {"momentum", CNN_FIELD_POSITIVE, CNN_SPEC_FIELD(batch_normalization.momentum), 0, 0},
    {"epsilon", CNN_FIELD_POSITIVE, CNN_SPEC_FIELD(batch_normalization.epsilon), 0, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(batch_normalization.name), 0, 0},
};

const cnn_layer_ops cnn_batch_normalization_ops = {
    .create = cnn_layer_batch_normalization_create,
    .kind = CNN_LAYER_BATCH_NORMALIZATION,
    .type_name = "BatchNormalization",
    .auto_name = "batch_normalization",
    .infer = bn_infer,
    .init = bn_init,
    .saved_bytes = bn_saved,
    .workspace_floats = bn_workspace,
    .forward = bn_forward,
    .backward = bn_backward,
    .frozen_infers = true,
    CNN_LAYER_FIELDS(batch_normalization_fields),
    .keras_keys = "axis momentum epsilon center scale beta_initializer gamma_initializer "
                  "moving_mean_initializer moving_variance_initializer beta_regularizer "
                  "gamma_regularizer beta_constraint gamma_constraint synchronized",
    .keras_build_config = true,
};

static cnn_status cnn_layer_batch_normalization_create(cnn_layer **out, const cnn_layer_spec *spec,
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
