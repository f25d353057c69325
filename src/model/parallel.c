/* Data-parallel fit: what fit does through a cnn_parallel's hooks (see
 * cnn.h). The library holds no network code: the hooks are the caller's
 * (cnn_mpi.h gives them over MPI). Why the update equals one process's
 * with the whole step's batch: each rank's gradient is the mean over its
 * rows; weighted by rows / count and summed over ranks it is the mean over
 * the step's count examples, the gradient one process computes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model.h"

/* Rank 0's optimizer step count and learning rate travel as floats: the
 * count in 21-bit pieces, each exact in a float. */
enum { SCALARS = 4 };

cnn_status cnn_parallel_batch(const cnn_parallel *par, int batch_size, int64_t count,
                              int *batch, int64_t *per_step)
{
    if (par->size < 1 || par->rank < 0 || par->rank >= par->size || !par->allreduce_sum
        || !par->allreduce_sum_double || !par->broadcast)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "fit: parallel: need 0 <= rank < size and all three hooks (got rank %d"
                        " of %d)",
                        par->rank, par->size);
    int64_t all = (int64_t)batch_size * par->size;
    *per_step = all < count ? all : count;
    *batch = (int)((*per_step + par->size - 1) / par->size);
    return CNN_OK;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h = (h ^ v) * 0x9E3779B97F4A7C15ull;
    return h ^ h >> 29;
}

static uint64_t mix_float(uint64_t h, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return mix(h, u);
}

/* What every rank's fit must agree on: how the data are cut into steps,
 * and every setting that decides something for all (the schedule, the
 * callbacks). 24 bits, exact in a float. */
static float settings_hash(const cnn_fit_config *c, const uint64_t *more, int n_more)
{
    uint64_t h = 0;
    const int64_t ints[] = {c->epochs, c->batch_size, c->no_shuffle, c->initial_epoch,
                            c->initial_step, c->lr_schedule.kind, c->lr_schedule.decay_steps,
                            c->augmentation.horizontal_flip, c->augmentation.max_shift,
                            c->callbacks.early_stopping.enabled,
                            c->callbacks.early_stopping.monitor,
                            c->callbacks.early_stopping.patience,
                            c->callbacks.early_stopping.restore_best_weights,
                            c->callbacks.reduce_lr_on_plateau.enabled,
                            c->callbacks.reduce_lr_on_plateau.monitor,
                            c->callbacks.reduce_lr_on_plateau.patience,
                            c->callbacks.reduce_lr_on_plateau.cooldown};
    const float reals[] = {c->validation_split, c->lr_schedule.decay_rate, c->lr_schedule.alpha,
                           c->augmentation.max_rotation, c->callbacks.early_stopping.min_delta,
                           c->callbacks.reduce_lr_on_plateau.factor,
                           c->callbacks.reduce_lr_on_plateau.min_delta,
                           c->callbacks.reduce_lr_on_plateau.min_lr};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        h = mix(h, (uint64_t)ints[i]);
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++)
        h = mix_float(h, reals[i]);
    for (int i = 0; i < n_more; i++)
        h = mix(h, more[i]);
    return (float)((h ^ h >> 24 ^ h >> 48) & 0xFFFFFF);
}

/* How many ranks' value differs from rank 0's (the same on every rank). */
static cnn_status count_differing(const cnn_parallel *par, float mine, double *differ)
{
    float first = mine;
    *differ = 0;
    cnn_status st = par->broadcast(par->ctx, &first, 1);
    if (st == CNN_OK) {
        *differ = mine != first;
        st = par->allreduce_sum_double(par->ctx, differ, 1);
    }
    return st;
}

cnn_status cnn_parallel_begin(cnn_model *m, const cnn_parallel *par, const cnn_fit_config *cfg,
                              const uint64_t *settings, int n_settings)
{
    double differ;
    cnn_status st = count_differing(par, settings_hash(cfg, settings, n_settings), &differ);
    if (st) {
        cnn_error_prefix("fit: parallel: comparing the ranks' settings");
        return st;
    }
    if (differ > 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "fit: parallel: the fit settings of %.0f rank%s differ from rank 0's"
                        " (epochs, batch_size, seed, validation, data size, schedule,"
                        " augmentation or callbacks): every rank must call fit alike",
                        differ, differ == 1 ? "" : "s");
    st = par->broadcast(par->ctx, m->params, m->n_params);
    if (st == CNN_OK && m->opt_m)
        st = par->broadcast(par->ctx, m->opt_m, m->n_params);
    if (st == CNN_OK && m->opt_v)
        st = par->broadcast(par->ctx, m->opt_v, m->n_params);
    uint64_t t = (uint64_t)m->opt_steps;
    float scalars[SCALARS] = {m->opt.learning_rate, (float)(t & 0x1FFFFF),
                              (float)((t >> 21) & 0x1FFFFF), (float)(t >> 42)};
    if (st == CNN_OK)
        st = par->broadcast(par->ctx, scalars, SCALARS);
    if (st) {
        cnn_error_prefix("fit: parallel: sharing rank 0's weights");
        return st;
    }
    m->opt.learning_rate = scalars[0];
    m->opt_steps = (int64_t)((uint64_t)scalars[1] | (uint64_t)scalars[2] << 21
                             | (uint64_t)scalars[3] << 42);
    m->stream = par->rank;
    return CNN_OK;
}

void cnn_parallel_end(cnn_model *m) { m->stream = 0; }

void cnn_parallel_share(const cnn_parallel *par, int64_t count, int64_t *first, int64_t *rows)
{
    int64_t each = count / par->size, extra = count % par->size, r = par->rank;
    *rows = each + (r < extra);
    *first = r * each + (r < extra ? r : extra);
}

cnn_status cnn_parallel_reduce_step(cnn_model *m, const cnn_parallel *par, int64_t rows,
                                    int64_t count, double *loss, double *correct)
{
    if (rows != count) {
        const float w = (float)((double)rows / (double)count);
        for (int64_t i = 0; i < m->n_params; i++)
            m->grads[i] *= w;
    }
    /* One buffer, the whole gradient block (non-trainable weights' parts are
     * zero on every rank). */
    cnn_status st = par->allreduce_sum(par->ctx, m->grads, m->n_params);
    m->grads_zero = false;
    if (st) {
        cnn_error_prefix("fit: parallel: summing the gradients");
        return st;
    }
    double sums[2] = {*loss, *correct};
    if ((st = cnn_parallel_sum(par, sums, 2)))
        return st;
    *loss = sums[0];
    *correct = sums[1];
    return CNN_OK;
}

cnn_status cnn_parallel_sum(const cnn_parallel *par, double *values, int n)
{
    cnn_status st = par->allreduce_sum_double(par->ctx, values, n);
    if (st)
        cnn_error_prefix("fit: parallel: summing the metrics");
    return st;
}

cnn_status cnn_parallel_agree(const cnn_parallel *par, bool *go)
{
    double stop = *go ? 0 : 1;
    cnn_status st = par->allreduce_sum_double(par->ctx, &stop, 1);
    if (st)
        cnn_error_prefix("fit: parallel: agreeing whether to go on");
    *go = st == CNN_OK && stop == 0;
    return st;
}

/* FNV-1a over the weights' bits, folded to 24 bits (exact in a float). */
static float weights_hash(const cnn_model *m)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const unsigned char *b = (const unsigned char *)m->params;
    for (size_t i = 0, n = (size_t)m->n_params * sizeof(float); i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return (float)((h ^ h >> 24 ^ h >> 48) & 0xFFFFFF);
}

cnn_status cnn_parallel_sync(cnn_model *m, const cnn_parallel *par, int epoch)
{
    cnn_status st = CNN_OK;
    int64_t n = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int p = 0; p < m->layers[i]->n_params; p++)
            if (!m->layers[i]->params[p].trainable)
                n += m->layers[i]->params[p].count;
    if (n > 0 && par->size > 1) {
        float *buf = malloc((size_t)n * sizeof *buf);
        if (!buf)
            return cnn_fail(CNN_ERR_NO_MEMORY, "fit: parallel: out of memory");
        int64_t at = 0;
        for (int i = 0; i < m->n_layers; i++)
            for (int p = 0; p < m->layers[i]->n_params; p++) {
                const cnn_param *prm = &m->layers[i]->params[p];
                if (!prm->trainable) {
                    memcpy(buf + at, prm->value, (size_t)prm->count * sizeof(float));
                    at += prm->count;
                }
            }
        st = par->allreduce_sum(par->ctx, buf, n);
        at = 0;
        for (int i = 0; st == CNN_OK && i < m->n_layers; i++)
            for (int p = 0; p < m->layers[i]->n_params; p++) {
                cnn_param *prm = &m->layers[i]->params[p];
                if (prm->trainable)
                    continue;
                for (int64_t k = 0; k < prm->count; k++)
                    prm->value[k] = buf[at + k] / (float)par->size;
                at += prm->count;
            }
        free(buf);
        if (st) {
            cnn_error_prefix("fit: parallel: averaging the moving statistics");
            return st;
        }
    }
    /* Every rank compares its weights' hash with rank 0's. */
    double differ;
    if ((st = count_differing(par, weights_hash(m), &differ))) {
        cnn_error_prefix("fit: parallel: comparing the weights");
        return st;
    }
    if (differ > 0)
        return cnn_fail(CNN_ERR_STATE,
                        "fit: parallel: after epoch %d the weights of %.0f rank%s differ from"
                        " rank 0's, though every update was to be the same on every rank (do the"
                        " ranks run the same build, and does the allreduce give every rank the"
                        " same sums?)",
                        epoch, differ, differ == 1 ? "" : "s");
    return CNN_OK;
}
