/* fit: the training loop, read top down (as llm.c's train_gpt2.c main
 * loop: a loop whose body is a few named calls).
 *
 *   fit_prepare         check the arguments, split off the validation data,
 *                       allocate every buffer once, derive the seeds
 *   fit_parallel_begin  data-parallel: the ranks agree and share weights
 *   cnn_fit_epoch       per epoch from the resume position (fit_epoch.c):
 *                       shuffle, the steps, validation, callbacks, report
 *   fit_finish          free what prepare took, hand over the history
 *
 * The state of one call is a fit_state (fit.h) instead of locals, so each
 * piece takes it and the loop reads as what it does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/tensor.h"
#include "model/fit.h"

void cnn_history_free(cnn_history *h)
{
    if (!h)
        return;
    free(h->loss);
    free(h->accuracy);
    free(h->val_loss);
    free(h->val_accuracy);
    free(h->learning_rate);
    free(h);
}

static cnn_history *history_create(int epochs)
{
    cnn_history *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    size_t n = (size_t)epochs;
    h->loss = calloc(n, sizeof(double));
    h->accuracy = calloc(n, sizeof(double));
    h->val_loss = calloc(n, sizeof(double));
    h->val_accuracy = calloc(n, sizeof(double));
    h->learning_rate = calloc(n, sizeof(double));
    if (!h->loss || !h->accuracy || !h->val_loss || !h->val_accuracy || !h->learning_rate) {
        cnn_history_free(h);
        return NULL;
    }
    return h;
}

/* The double a float field was written as: the shortest decimal that gives
 * the float back (0.1f -> 0.1, not 0.100000001490116), so that
 * validation_split = 0.1f splits 8000 examples 7200/800 as Keras's 0.1 does. */
static double as_written(float f)
{
    for (int digits = 1; digits < 9; digits++) {
        char text[32];
        snprintf(text, sizeof text, "%.*g", digits, (double)f);
        double d = strtod(text, NULL);
        if ((float)d == f)
            return d;
    }
    return (double)f;
}

cnn_status cnn_fit_split_sizes(int64_t n, float split, int64_t examples_per_step,
                               int64_t *train, int64_t *val, int64_t *steps)
{
    const double validation_split = as_written(split);
    *train = *val = *steps = 0;
    if (n < 1 || examples_per_step < 1 || !(validation_split >= 0 && validation_split < 1))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "fit: need n >= 1, examples_per_step >= 1 and validation_split in [0, 1),"
                        " got %lld, %lld and %g",
                        (long long)n, (long long)examples_per_step, validation_split);
    /* Keras: split_at = floor(n * (1 - validation_split)) in double; the
     * last n - split_at examples validate. */
    *train = validation_split > 0 ? (int64_t)floor((double)n * (1.0 - validation_split)) : n;
    *val = n - *train;
    if (*train < 1 || (validation_split > 0 && *val < 1))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "fit: validation_split %g of %lld examples leaves %lld for training and"
                        " %lld for validation; each part needs at least one",
                        validation_split, (long long)n, (long long)*train, (long long)*val);
    /* the last step takes what is left */
    *steps = (*train + examples_per_step - 1) / examples_per_step;
    return CNN_OK;
}

/* epochs, the resume position and the split: fills in the default epochs. */
static cnn_status check_epochs(cnn_fit_config *cfg)
{
    if (cfg->epochs == 0)
        cfg->epochs = 1;
    if (cfg->epochs < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "fit: epochs must be >= 1, got %d", cfg->epochs);
    if (cfg->initial_epoch < 0 || cfg->initial_epoch >= cfg->epochs || cfg->initial_step < 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "fit: initial_epoch must be in [0, epochs) and initial_step >= 0, got %d"
                        " and %lld",
                        cfg->initial_epoch, (long long)cfg->initial_step);
    if (!(cfg->validation_split >= 0 && cfg->validation_split < 1))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "fit: validation_split must be in [0, 1), got %g",
                        (double)cfg->validation_split);
    return CNN_OK;
}

/* The training and validation views, the steps per epoch and the batch
 * sizes: the same as cnn_fit_split_sizes tells the caller. */
static cnn_status split_data(fit_state *f, const cnn_tensor *x, const cnn_tensor *y)
{
    const cnn_model *m = f->m;
    const cnn_fit_config *cfg = &f->cfg;
    const int64_t x_row = cnn_tensor_size(x) / x->dims[0], y_row = cnn_model_target_size(m);
    cnn_status st;
    f->train = (data_view){x->data, y->data, x->dims[0], x_row, y_row};
    if (cfg->validation_x || cfg->validation_y) {
        if (!cfg->validation_x || !cfg->validation_y)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "fit: validation_x and validation_y must be given together");
        if ((st = cnn_model_check_data(m, cfg->validation_x, cfg->validation_y,
                                       "fit: validation data"))
            || (st = cnn_fit_check_data_values(m, cfg->validation_x, cfg->validation_y,
                                               "fit: validation data")))
            return st;
        f->val = (data_view){cfg->validation_x->data, cfg->validation_y->data,
                             cfg->validation_x->dims[0], x_row, y_row};
    }
    /* Keras: the last fraction validates, taken before any shuffling */
    const float split = f->val.count ? 0 : cfg->validation_split;
    const int64_t ranks = f->par && f->par->size > 1 ? f->par->size : 1;
    int64_t n_val;
    if ((st = cnn_fit_split_sizes(x->dims[0], split, (int64_t)cfg->batch_size * ranks,
                                  &f->train.count, &n_val, &f->steps)))
        return st;
    if (n_val)
        f->val = (data_view){x->data + f->train.count * x_row, y->data + f->train.count * y_row,
                             n_val, x_row, y_row};
    if (cfg->initial_step > f->steps)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "fit: initial_step %lld is past the end of epoch %d, which has %lld steps"
                        " of batch size %d (a position saved with another batch size or other"
                        " data cannot resume mid-epoch)",
                        (long long)cfg->initial_step, cfg->initial_epoch + 1,
                        (long long)f->steps, cfg->batch_size);
    f->batch = cfg->batch_size;
    if (f->batch > f->train.count)
        f->batch = (int)f->train.count;
    /* examples per step, over every rank (data-parallel: batch is the most
     * one rank takes) */
    f->per_step = f->batch;
    if (f->par)
        return cnn_parallel_batch(f->par, cfg->batch_size, f->train.count, &f->batch,
                                  &f->per_step);
    return CNN_OK;
}

static cnn_status check_augmentation(fit_state *f)
{
    const cnn_augmentation *aug = &f->cfg.augmentation;
    const cnn_shape in = f->m->input_shape;
    f->augment = aug->horizontal_flip || aug->max_shift || aug->max_rotation != 0;
    if (f->augment && (in.rank != 3 || aug->max_shift < 0 || aug->max_shift > 65536
                       || !(aug->max_rotation >= 0 && aug->max_rotation <= 180)))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        in.rank != 3 ? "fit: augmentation needs image input (rows, cols, channels)"
                                     : "fit: augmentation: max_shift must be in [0, 65536] and"
                                       " max_rotation in [0, 180] degrees");
    return CNN_OK;
}

/* Everything a step needs, allocated here once: gradients, the arena for
 * the batch (the gathered batch lives in it), the callbacks' state, the
 * example order, the augmentation scratch and the history. */
static cnn_status allocate(fit_state *f)
{
    cnn_model *m = f->m;
    cnn_status st;
    if ((st = cnn_model_ensure_gradients(m)) || (st = cnn_model_reserve(m, f->batch, true))
        || (st = cnn_fit_callbacks_begin(m, &f->cfg,
                                         f->val.count > 0 || (f->source && f->source->validate),
                                         &f->cb)))
        return st;
    f->order = malloc((size_t)f->train.count * sizeof *f->order);
    f->scratch = f->augment ? malloc((size_t)f->train.x_row * sizeof(float)) : NULL;
    f->h = history_create(f->cfg.epochs - f->cfg.initial_epoch);
    if (!f->order || !f->h || (f->augment && !f->scratch)) {
        free(f->order);
        free(f->scratch);
        cnn_history_free(f->h);
        cnn_fit_callbacks_end(&f->cb);
        return cnn_fail(CNN_ERR_NO_MEMORY, "fit: out of memory");
    }
    f->bx = m->arena.input;
    f->by = m->arena.target;
    return CNN_OK;
}

/* Checks everything (in this order: the first error is the one the caller
 * sees), splits the data, allocates once and seeds. On failure nothing is
 * held and fit_finish is not called. */
static cnn_status fit_prepare(fit_state *f, cnn_model *m, const cnn_tensor *x, const cnn_tensor *y,
                              const cnn_fit_config *cfg)
{
    *f = (fit_state){.m = m, .cfg = *cfg, .par = cfg->parallel};
    if (!m)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "fit: model is NULL");
    if (!m->compiled)
        return cnn_fail(CNN_ERR_STATE, "fit: compile the model (choose a loss and optimizer) first");
    if (!y) /* cnn_model_check_data takes NULL as "no targets" (forward) */
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "fit: y is NULL");
    cnn_status st;
    if ((st = cnn_fit_check_batch_size(&f->cfg.batch_size, "fit"))
        || (st = cnn_model_check_data(m, x, y, "fit"))
        || (st = cnn_fit_check_data_values(m, x, y, "fit")) || (st = check_epochs(&f->cfg))
        || (st = split_data(f, x, y)) || (st = check_augmentation(f)) || (st = allocate(f)))
        return st;
    if (f->par && f->par->rank != 0)
        f->cb.c.model_checkpoint.path = NULL; /* rank 0 writes the files */
    f->shuffle_seed = f->cfg.seed ? f->cfg.seed : m->seed ^ 0x5eed5eed5eedull;
    f->aug_seed = f->cfg.augmentation.seed ? f->cfg.augmentation.seed
                                           : f->shuffle_seed ^ 0xa06e47a71017ull;
    f->lr = m->opt.learning_rate;
    return CNN_OK;
}

/* Data-parallel: every rank checks that it was called alike (data sizes,
 * seeds, settings) and takes rank 0's weights and optimizer state. */
static cnn_status fit_parallel_begin(fit_state *f)
{
    const uint64_t agree[] = {(uint64_t)f->train.count, (uint64_t)f->val.count, f->shuffle_seed,
                              f->augment ? f->aug_seed : 0, (uint64_t)f->m->n_params};
    return cnn_parallel_begin(f->m, f->par, &f->cfg, agree, 5);
}

/* Frees what fit_prepare took and hands over the history (also after a
 * failure: the epochs completed before it). Returns st. */
static cnn_status fit_finish(fit_state *f, cnn_status st, cnn_history **history_out)
{
    f->h->stopped_epoch = f->cb.stopped_epoch;
    f->h->restored_epoch = f->cb.restored_epoch;
    cnn_fit_callbacks_end(&f->cb);
    if (f->par)
        cnn_parallel_end(f->m);
    free(f->scratch);
    free(f->order);
    if (history_out)
        *history_out = f->h;
    else
        cnn_history_free(f->h);
    return st;
}

cnn_status cnn_fit_prepare_source(fit_state *f, cnn_model *m, int64_t count, int64_t x_row,
                                  const fit_source *source, const cnn_fit_config *cfg)
{
    *f = (fit_state){.m = m, .cfg = *cfg, .source = source};
    cnn_status st;
    if ((st = cnn_fit_check_batch_size(&f->cfg.batch_size, "fit")) || (st = check_epochs(&f->cfg)))
        return st;
    f->train = (data_view){NULL, NULL, count, x_row, cnn_model_target_size(m)};
    int64_t n_val;
    if ((st = cnn_fit_split_sizes(count, 0, f->cfg.batch_size, &f->train.count, &n_val,
                                  &f->steps)))
        return st;
    f->batch = f->cfg.batch_size < f->train.count ? f->cfg.batch_size : (int)f->train.count;
    f->per_step = f->batch;
    if ((st = check_augmentation(f)) || (st = allocate(f)))
        return st;
    f->shuffle_seed = f->cfg.seed ? f->cfg.seed : m->seed ^ 0x5eed5eed5eedull;
    f->aug_seed = f->cfg.augmentation.seed ? f->cfg.augmentation.seed
                                           : f->shuffle_seed ^ 0xa06e47a71017ull;
    f->lr = m->opt.learning_rate;
    return CNN_OK;
}

cnn_status cnn_fit_finish(fit_state *f, cnn_status st, cnn_history **history_out)
{
    return fit_finish(f, st, history_out);
}

cnn_status cnn_model_fit(cnn_model *m, const cnn_tensor *x, const cnn_tensor *y,
                         cnn_fit_config cfg, cnn_history **history_out)
{
    if (history_out)
        *history_out = NULL;
    fit_state f;
    cnn_status st = fit_prepare(&f, m, x, y, &cfg);
    if (st)
        return st;
    if (f.par)
        st = fit_parallel_begin(&f);
    bool stop = false; /* a callback (EarlyStopping) ended training */
    for (int epoch = f.cfg.initial_epoch + 1; epoch <= f.cfg.epochs && !st && !stop; epoch++)
        st = cnn_fit_epoch(&f, epoch, &stop);
    return fit_finish(&f, st, history_out);
}
