/* fit / evaluate / predict: the training loop over mini-batches. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/tensor.h"
#include "model/model.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

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

/* A view of examples [start, start + count) of x and y. */
typedef struct {
    const float *x, *y;
    int64_t count;
    int64_t x_row, y_row; /* floats per example */
} data_view;

/* With par (data-parallel fit), each rank evaluates its share of the
 * examples and the sums are added up over the ranks. */
static cnn_status evaluate_view(cnn_model *m, const data_view *all, int batch,
                                const cnn_parallel *par, double *loss, double *accuracy)
{
    data_view part = *all;
    const data_view *v = &part;
    if (par) {
        int64_t first;
        cnn_parallel_share(par, all->count, &first, &part.count);
        part.x += first * all->x_row;
        part.y += first * all->y_row;
    }
    double loss_sum = 0, correct = 0;
    for (int64_t start = 0; start < v->count; start += batch) {
        int b = (int)(v->count - start < batch ? v->count - start : batch);
        double l, c;
        cnn_status st = cnn_model_forward_raw(m, v->x + start * v->x_row, b, false, false);
        if (st == CNN_OK)
            st = cnn_model_backward_raw(m, v->y + start * v->y_row, &l, &c, false, NULL);
        if (st)
            return st;
        loss_sum += l;
        correct += c;
    }
    double sums[2] = {loss_sum, correct};
    cnn_status st = par ? cnn_parallel_sum(par, sums, 2) : CNN_OK;
    if (st)
        return st;
    /* as Keras, the loss includes the L2 penalties */
    *loss = sums[0] / (double)all->count + cnn_model_penalty(m);
    *accuracy = sums[1] / (double)all->count;
    return CNN_OK;
}

/* ---- No silent NaN (Keras's TerminateOnNaN, and more) --------------------- */

static const char *nonfinite_name(float v)
{
    return v != v ? "NaN" : v > 0 ? "+infinity" : "-infinity";
}

/* Which layer and weight ("kernel", "bias") element i of the parameter
 * block (and of the gradient block, laid out alike) belongs to. */
static void param_at(const cnn_model *m, int64_t i, int *layer, const char **weight)
{
    *layer = 0;
    *weight = "?";
    for (int l = 0; l < m->n_layers; l++)
        for (int p = 0; p < m->layers[l]->n_params; p++) {
            const cnn_param *prm = &m->layers[l]->params[p];
            int64_t off = prm->value - m->params;
            if (i >= off && i < off + prm->count) {
                *layer = l;
                *weight = prm->name;
            }
        }
}

/* x and y must be finite, and sparse labels integers in [0, classes):
 * checked once, before any step, so a bad example is named by its index
 * instead of surfacing as a NaN loss many steps later. */
static cnn_status check_data_values(const cnn_model *m, const cnn_tensor *x, const cnn_tensor *y,
                                    const char *what)
{
    const cnn_tensor *t[2] = {x, y};
    for (int k = 0; k < 2 && t[k]; k++) {
        int64_t n = cnn_tensor_size(t[k]), row = n / t[k]->dims[0];
        int64_t at = cnn_first_nonfinite(t[k]->data, n);
        if (at >= 0)
            return cnn_fail(CNN_ERR_NUMERIC,
                            "%s: %s is not finite: example %lld has %s at element %lld; the data"
                            " must be finite numbers",
                            what, k ? "y" : "x", (long long)(at / row),
                            nonfinite_name(t[k]->data[at]), (long long)(at % row));
    }
    cnn_shape out = cnn_model_output_shape(m);
    if (!y || m->loss != CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY || out.rank != 1)
        return CNN_OK;
    for (int64_t i = 0; i < y->dims[0]; i++) {
        float v = y->data[i];
        if (!(v >= 0 && v < (float)out.dims[0]) || v != floorf(v))
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "%s: labels: example %lld has label %g, expected an integer in [0, %d)"
                            " (the model has %d outputs)",
                            what, (long long)i, (double)v, out.dims[0], out.dims[0]);
    }
    return CNN_OK;
}

/* After backward, before the update: a non-finite loss or gradient stops
 * training while the weights are still those of the previous step. */
static cnn_status check_step(const cnn_model *m, double loss, int epoch, int64_t step,
                             int64_t steps)
{
    if (!isfinite(loss))
        return cnn_fail(CNN_ERR_NUMERIC,
                        "fit: epoch %d, step %lld/%lld: the loss is %s; training stopped before"
                        " this step's update, so the weights are those after the step before"
                        " (try a lower learning rate, or check the data)",
                        epoch, (long long)step, (long long)steps, isnan(loss) ? "NaN" : "infinite");
    int64_t at = cnn_first_nonfinite(m->grads, m->n_params);
    if (at < 0)
        return CNN_OK;
    int layer;
    const char *weight;
    param_at(m, at, &layer, &weight);
    return cnn_fail(CNN_ERR_NUMERIC,
                    "fit: epoch %d, step %lld/%lld: the gradient of layer %d (%s) %s is %s (the"
                    " loss is %g); training stopped before this step's update, so the weights are"
                    " those after the step before (try a lower learning rate)",
                    epoch, (long long)step, (long long)steps, layer, m->layers[layer]->name, weight,
                    nonfinite_name(m->grads[at]), loss);
}

/* Before the end of an epoch is reported (where checkpoints are saved):
 * an update that overflowed must not reach a saved file. */
static cnn_status check_weights(const cnn_model *m, int epoch)
{
    int64_t at = cnn_first_nonfinite(m->params, m->n_params);
    if (at < 0)
        return CNN_OK;
    int layer;
    const char *weight;
    param_at(m, at, &layer, &weight);
    return cnn_fail(CNN_ERR_NUMERIC,
                    "fit: epoch %d: the weights of layer %d (%s) %s became %s (an update"
                    " overflowed); training stopped before the end of the epoch was reported"
                    " (try a lower learning rate)",
                    epoch, layer, m->layers[layer]->name, weight, nonfinite_name(m->params[at]));
}

static cnn_status check_batch_size(int *batch_size, const char *what)
{
    if (*batch_size == 0)
        *batch_size = 32;
    if (*batch_size < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: batch_size must be >= 1, got %d", what,
                        *batch_size);
    return CNN_OK;
}

cnn_status cnn_model_evaluate(cnn_model *m, const cnn_tensor *x, const cnn_tensor *y,
                              int batch_size, double *loss, double *accuracy)
{
    if (!m)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "evaluate: model is NULL");
    if (!m->compiled)
        return cnn_fail(CNN_ERR_STATE, "evaluate: compile the model (choose a loss) first");
    cnn_status st = check_batch_size(&batch_size, "evaluate");
    if (st || (st = cnn_model_check_data(m, x, y, "evaluate"))
        || (st = check_data_values(m, x, y, "evaluate")))
        return st;
    data_view v = {x->data, y->data, x->dims[0], cnn_tensor_size(x) / x->dims[0],
                   cnn_model_target_size(m)};
    double l = 0, a = 0;
    st = evaluate_view(m, &v, batch_size, NULL, &l, &a);
    if (st == CNN_OK) {
        if (loss)
            *loss = l;
        if (accuracy)
            *accuracy = a;
    }
    return st;
}

cnn_status cnn_model_predict(cnn_model *m, const cnn_tensor *x, int batch_size, cnn_tensor **out)
{
    if (!m || !out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "predict: model and out are required");
    *out = NULL;
    cnn_status st = check_batch_size(&batch_size, "predict");
    if (st || (st = cnn_model_check_data(m, x, NULL, "predict")))
        return st;
    cnn_shape os = cnn_model_output_shape(m);
    int64_t dims[CNN_MAX_RANK] = {x->dims[0]};
    for (int i = 0; i < os.rank; i++)
        dims[i + 1] = os.dims[i];
    cnn_tensor *t;
    if ((st = cnn_tensor_create(&t, os.rank + 1, dims)))
        return st;
    int64_t x_row = cnn_tensor_size(x) / x->dims[0], y_row = cnn_shape_size(os);
    for (int64_t start = 0; start < x->dims[0]; start += batch_size) {
        int b = (int)(x->dims[0] - start < batch_size ? x->dims[0] - start : batch_size);
        if ((st = cnn_model_forward_raw(m, x->data + start * x_row, b, false, false))) {
            cnn_tensor_free(t);
            return st;
        }
        memcpy(t->data + start * y_row, cnn_model_output(m), (size_t)(b * y_row) * sizeof(float));
    }
    *out = t;
    return CNN_OK;
}

static bool report(const cnn_fit_config *cfg, cnn_progress *p)
{
    return cfg->progress ? cfg->progress(p, cfg->progress_user) : true;
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

cnn_status cnn_model_fit(cnn_model *m, const cnn_tensor *x, const cnn_tensor *y,
                         cnn_fit_config cfg, cnn_history **history_out)
{
    if (history_out)
        *history_out = NULL;
    if (!m)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "fit: model is NULL");
    if (!m->compiled)
        return cnn_fail(CNN_ERR_STATE, "fit: compile the model (choose a loss and optimizer) first");
    cnn_status st = check_batch_size(&cfg.batch_size, "fit");
    if (st || (st = cnn_model_check_data(m, x, y, "fit"))
        || (st = check_data_values(m, x, y, "fit")))
        return st;
    if (cfg.epochs == 0)
        cfg.epochs = 1;
    if (cfg.epochs < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "fit: epochs must be >= 1, got %d", cfg.epochs);
    if (cfg.initial_epoch < 0 || cfg.initial_epoch >= cfg.epochs || cfg.initial_step < 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "fit: initial_epoch must be in [0, epochs) and initial_step >= 0, got %d"
                        " and %lld",
                        cfg.initial_epoch, (long long)cfg.initial_step);
    if (!(cfg.validation_split >= 0 && cfg.validation_split < 1))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "fit: validation_split must be in [0, 1), got %g",
                        (double)cfg.validation_split);

    const int64_t x_row = cnn_tensor_size(x) / x->dims[0], y_row = cnn_model_target_size(m);
    data_view train = {x->data, y->data, x->dims[0], x_row, y_row}, val = {0};
    if (cfg.validation_x || cfg.validation_y) {
        if (!cfg.validation_x || !cfg.validation_y)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "fit: validation_x and validation_y must be given together");
        if ((st = cnn_model_check_data(m, cfg.validation_x, cfg.validation_y, "fit: validation data"))
            || (st = check_data_values(m, cfg.validation_x, cfg.validation_y,
                                       "fit: validation data")))
            return st;
        val = (data_view){cfg.validation_x->data, cfg.validation_y->data,
                          cfg.validation_x->dims[0], x_row, y_row};
    }
    /* Keras: the last fraction validates, taken before any shuffling; the
     * same sizes and steps as cnn_fit_split_sizes tells the caller */
    const float split = val.count ? 0 : cfg.validation_split;
    const int64_t ranks = cfg.parallel && cfg.parallel->size > 1 ? cfg.parallel->size : 1;
    int64_t steps, n_val;
    if ((st = cnn_fit_split_sizes(x->dims[0], split, (int64_t)cfg.batch_size * ranks,
                                  &train.count, &n_val, &steps)))
        return st;
    if (n_val)
        val = (data_view){x->data + train.count * x_row, y->data + train.count * y_row, n_val,
                          x_row, y_row};
    int batch = cfg.batch_size;
    if (batch > train.count)
        batch = (int)train.count;
    /* examples per step, over every rank (data-parallel: batch is the most
     * one rank takes) */
    int64_t per_step = batch;
    if (cfg.parallel
        && (st = cnn_parallel_batch(cfg.parallel, cfg.batch_size, train.count, &batch, &per_step)))
        return st;
    const cnn_augmentation *aug = &cfg.augmentation;
    const bool augment = aug->horizontal_flip || aug->max_shift || aug->max_rotation != 0;
    if (augment && (m->input_shape.rank != 3 || aug->max_shift < 0 || aug->max_shift > 65536
                    || !(aug->max_rotation >= 0 && aug->max_rotation <= 180)))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        m->input_shape.rank != 3
                            ? "fit: augmentation needs image input (rows, cols, channels)"
                            : "fit: augmentation: max_shift must be in [0, 65536] and"
                              " max_rotation in [0, 180] degrees");
    cnn_fit_callbacks cb;
    if ((st = cnn_model_ensure_gradients(m)) || (st = cnn_model_reserve(m, batch, true))
        || (st = cnn_fit_callbacks_begin(m, &cfg, val.count > 0, &cb)))
        return st;
    int64_t *order = malloc((size_t)train.count * sizeof *order);
    float *scratch = augment ? malloc((size_t)x_row * sizeof(float)) : NULL;
    cnn_history *h = history_create(cfg.epochs - cfg.initial_epoch);
    if (!order || !h || (augment && !scratch)) {
        free(order);
        free(scratch);
        cnn_history_free(h);
        cnn_fit_callbacks_end(&cb);
        return cnn_fail(CNN_ERR_NO_MEMORY, "fit: out of memory");
    }
    if (cfg.parallel && cfg.parallel->rank != 0)
        cb.c.model_checkpoint.path = NULL; /* rank 0 writes the files */
    const uint64_t shuffle_seed = cfg.seed ? cfg.seed : m->seed ^ 0x5eed5eed5eedull;
    const uint64_t aug_seed = aug->seed ? aug->seed : shuffle_seed ^ 0xa06e47a71017ull;
    float *bx = m->arena.input, *by = m->arena.target;
    double lr = m->opt.learning_rate;
    if (cfg.parallel) {
        const uint64_t agree[] = {(uint64_t)train.count, (uint64_t)val.count, shuffle_seed,
                                  augment ? aug_seed : 0, (uint64_t)m->n_params};
        st = cnn_parallel_begin(m, cfg.parallel, &cfg, agree, 5);
    }

    for (int epoch = cfg.initial_epoch + 1; epoch <= cfg.epochs && st == CNN_OK; epoch++) {
        /* Each epoch's order depends only on (seed, epoch), so a run resumed
         * at any epoch sees the same batches as an uninterrupted one. */
        for (int64_t i = 0; i < train.count; i++)
            order[i] = i;
        cnn_rng rng;
        cnn_rng_seed(&rng, shuffle_seed + (uint64_t)epoch * 0x9E3779B97F4A7C15ull);
        if (!cfg.no_shuffle)
            for (int64_t i = train.count - 1; i > 0; i--) {
                int64_t j = (int64_t)cnn_rng_below(&rng, (uint64_t)i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        double t0 = now_seconds(), loss_sum = 0, correct = 0;
        int64_t seen = 0;
        cnn_progress p = {.event = CNN_PROGRESS_EPOCH_BEGIN, .epoch = epoch,
                          .epochs = cfg.epochs, .steps = steps, .loss = NAN, .accuracy = NAN,
                          .val_loss = NAN, .val_accuracy = NAN, .learning_rate = NAN};
        bool keep_going = report(&cfg, &p);
        if (cfg.parallel && (st = cnn_parallel_agree(cfg.parallel, &keep_going)))
            break;
        int64_t first_step = epoch == cfg.initial_epoch + 1 ? cfg.initial_step : 0;
        for (int64_t s = first_step; s < steps && keep_going; s++) {
            int64_t start = s * per_step;
            const int64_t count = train.count - start < per_step ? train.count - start : per_step;
            int64_t first = 0, rows = count; /* this rank's rows of the step */
            if (cfg.parallel)
                cnn_parallel_share(cfg.parallel, count, &first, &rows);
            start += first;
            int b = (int)rows;
            for (int i = 0; i < b; i++) {
                int64_t e = order[start + i];
                memcpy(bx + i * x_row, train.x + e * x_row, (size_t)x_row * sizeof(float));
                memcpy(by + i * y_row, train.y + e * y_row, (size_t)y_row * sizeof(float));
            }
            if (augment)
                cnn_augment_batch_from(aug, aug_seed, epoch, s, first, bx, b, m->input_shape,
                                       scratch);
            double l = 0, c = 0;
            cnn_model_zero_gradients(m);
            if (b > 0
                && ((st = cnn_model_forward_raw(m, bx, b, true, true))
                    || (st = cnn_model_backward_raw(m, by, &l, &c, true, NULL))))
                break;
            /* data-parallel: every rank gets the whole step's gradients and sums */
            if (cfg.parallel && (st = cnn_parallel_reduce_step(m, cfg.parallel, b, count, &l, &c)))
                break;
            b = (int)count;
            if ((st = check_step(m, l, epoch, s + 1, steps)))
                break;
            /* Keras's loss includes the L2 penalties (at the weights of this forward) */
            l += cnn_model_penalty(m) * b;
            lr = cnn_lr_schedule_rate(&cfg.lr_schedule, m->opt.learning_rate, m->opt_steps,
                                      (int64_t)cfg.epochs * steps);
            cnn_optimizer_step(m, (float)lr);
            m->train_epoch = epoch - 1;
            m->train_step = s + 1;
            loss_sum += l;
            correct += c;
            seen += b;
            p = (cnn_progress){.event = CNN_PROGRESS_BATCH_END, .epoch = epoch,
                               .epochs = cfg.epochs, .step = s + 1, .steps = steps,
                               .elapsed_seconds = now_seconds() - t0, .loss = loss_sum / seen,
                               .accuracy = correct / seen, .val_loss = NAN,
                               .val_accuracy = NAN, .learning_rate = lr};
            keep_going = report(&cfg, &p);
            if (cfg.parallel && (st = cnn_parallel_agree(cfg.parallel, &keep_going)))
                break;
        }
        if (!st && cfg.parallel)
            st = cnn_parallel_sync(m, cfg.parallel, epoch);
        if (st || (st = check_weights(m, epoch)))
            break;
        const int e = epoch - cfg.initial_epoch - 1; /* history row */
        h->first_epoch = cfg.initial_epoch + 1;
        h->epochs = e + 1;
        h->loss[e] = seen ? loss_sum / seen : NAN;
        h->accuracy[e] = seen ? correct / seen : NAN;
        h->val_loss[e] = h->val_accuracy[e] = NAN;
        h->learning_rate[e] = lr;
        if (!keep_going) {
            st = cnn_fail(CNN_ERR_INTERRUPTED, "fit: stopped by the progress callback in epoch %d",
                          epoch);
            break;
        }
        if (val.count
            && (st = evaluate_view(m, &val, batch, cfg.parallel, &h->val_loss[e],
                                   &h->val_accuracy[e])))
            break;
        m->train_epoch = epoch;
        m->train_step = 0;
        const double logs[4] = {h->val_loss[e], h->val_accuracy[e], h->loss[e], h->accuracy[e]};
        bool stop;
        if ((st = cnn_fit_callbacks_epoch_end(&cb, m, epoch, logs, &stop)))
            break;
        p.event = CNN_PROGRESS_EPOCH_END;
        cnn_fit_callbacks_report(&cb, &p);
        p.elapsed_seconds = now_seconds() - t0;
        p.val_loss = h->val_loss[e];
        p.val_accuracy = h->val_accuracy[e];
        p.learning_rate = cnn_lr_schedule_rate(&cfg.lr_schedule, m->opt.learning_rate,
                                               m->opt_steps, (int64_t)cfg.epochs * steps);
        bool go = report(&cfg, &p);
        if (cfg.parallel && (st = cnn_parallel_agree(cfg.parallel, &go)))
            break;
        if (!go)
            st = cnn_fail(CNN_ERR_INTERRUPTED, "fit: stopped by the progress callback after epoch %d",
                          epoch);
        if (stop)
            break;
    }
    h->stopped_epoch = cb.stopped_epoch;
    h->restored_epoch = cb.restored_epoch;
    cnn_fit_callbacks_end(&cb);
    if (cfg.parallel)
        cnn_parallel_end(m);
    free(scratch);
    free(order);
    if (history_out)
        *history_out = h;
    else
        cnn_history_free(h);
    return st;
}
