/* fit and evaluate from a cnn_dataset: each step takes the next batch the
 * data set's decode threads have ready (src/io/dataset_stream.c). The
 * epoch's order, the augmentation and the step are those of cnn_model_fit,
 * so the same examples give the same weights bit for bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "io/dataset.h"
#include "model/model.h"

/* A decode's allocations are bounded by this, or less when the budget is
 * tight: enough for a 24-megapixel RGBA photo. */
#define DECODE_BYTES_MAX ((int64_t)96 << 20)

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The model must take the data set's examples and targets. */
static cnn_status check_dataset(const cnn_model *m, const cnn_dataset *ds, const char *what)
{
    if (!ds)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: the data set is NULL", what);
    cnn_shape in = m->input_shape, e = cnn_dataset_element_shape(ds);
    if (in.rank != 3 || in.dims[0] != e.dims[0] || in.dims[1] != e.dims[1]
        || in.dims[2] != e.dims[2])
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s: %s gives %dx%dx%d examples (rows x cols x channels), the model's"
                        " input is %dx%dx%d",
                        what, ds->name, e.dims[0], e.dims[1], e.dims[2], in.dims[0], in.dims[1],
                        in.dims[2]);
    if (cnn_dataset_target_size(ds) != cnn_model_target_size(m))
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s: %s gives targets of %lld values, the model's loss wants %lld (label"
                        " mode int for sparse_categorical_crossentropy or one output unit,"
                        " categorical for one-hot)",
                        what, ds->name, (long long)cnn_dataset_target_size(ds),
                        (long long)cnn_model_target_size(m));
    cnn_shape out = cnn_model_output_shape(m);
    if (m->loss == CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY && out.rank == 1
        && ds->n_classes > out.dims[0])
        return cnn_fail(CNN_ERR_SHAPE, "%s: %s has %d classes, the model has %d outputs", what,
                        ds->name, ds->n_classes, out.dims[0]);
    return CNN_OK;
}

/* The stream's settings for batch examples of ds, within the model's
 * budget: what the model itself needs, the cache, the queue (2 batches
 * per decode thread + 2, fewer down to 2 when the budget is tight), and
 * one decode per thread (bounded by what is left, at most
 * DECODE_BYTES_MAX). */
static cnn_status plan_stream(const cnn_model *m, const cnn_dataset *ds, int batch, bool training,
                              cnn_dataset_stream_config *c, const char *what)
{
    cnn_memory_estimate est;
    cnn_status st = cnn_model_estimate_memory(m, batch, &est);
    if (st)
        return st;
    const int w = cnn_dataset_workers(ds);
    const int64_t model = training ? est.training_total : est.inference_total;
    const int64_t least_decode = ds->x ? 0 : (int64_t)w * ds->x_row * 8;
    *c = (cnn_dataset_stream_config){.batch = batch, .queue = 2 * w + 2};
    int64_t fixed;
    for (;;) {
        fixed = model + cnn_dataset_stream_bytes(ds, c) + ds->cfg.cache_bytes;
        if (fixed + least_decode <= m->max_memory || c->queue <= 2)
            break;
        c->queue--;
    }
    if ((st = cnn_model_check_budget(m, fixed + least_decode, what)))
        return st;
    const int64_t room = (m->max_memory - fixed) / w;
    c->decode_bytes = ds->x ? 0 : room < DECODE_BYTES_MAX ? room : DECODE_BYTES_MAX;
    return CNN_OK;
}

/* ---- evaluate ------------------------------------------------------------- */

static cnn_status evaluate_stream(cnn_model *m, cnn_dataset *ds, int batch, double *loss,
                                  double *accuracy)
{
    cnn_dataset_stream_config c;
    cnn_status st = plan_stream(m, ds, batch, false, &c, "evaluating a data set");
    int64_t *order = st ? NULL : malloc((size_t)ds->count * sizeof *order);
    if (!st && !order)
        st = cnn_fail(CNN_ERR_NO_MEMORY, "evaluate: out of memory");
    for (int64_t i = 0; order && i < ds->count; i++)
        order[i] = i;
    c.order = order;
    c.count = ds->count;
    if (!st)
        st = cnn_dataset_stream_start(ds, &c);
    double loss_sum = 0, correct = 0;
    int64_t seen = 0;
    for (int64_t b = 0; !st && b * batch < ds->count; b++) {
        const float *x, *y;
        int rows;
        double l = 0, a = 0;
        if ((st = cnn_dataset_stream_next(ds, &x, &y, &rows)) || rows == 0)
            continue;
        if ((st = cnn_model_forward_raw(m, x, rows, false, false))
            || (st = cnn_model_backward_raw(m, y, &l, &a, false, NULL)))
            break;
        loss_sum += l;
        correct += a;
        seen += rows;
    }
    cnn_dataset_stream_stop(ds);
    free(order);
    if (st)
        return st;
    if (!seen)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "evaluate: %s: every file was skipped as bad",
                        ds->name);
    *loss = loss_sum / (double)seen + cnn_model_penalty(m);
    *accuracy = correct / (double)seen;
    return CNN_OK;
}

cnn_status cnn_model_evaluate_dataset(cnn_model *m, cnn_dataset *ds, int batch_size,
                                      double *loss, double *accuracy)
{
    if (!m)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "evaluate: model is NULL");
    if (!m->compiled)
        return cnn_fail(CNN_ERR_STATE, "evaluate: compile the model (choose a loss) first");
    if (batch_size == 0)
        batch_size = 32;
    if (batch_size < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "evaluate: batch_size must be >= 1, got %d",
                        batch_size);
    cnn_status st = check_dataset(m, ds, "evaluate");
    if (st)
        return st;
    if (batch_size > ds->count)
        batch_size = (int)ds->count;
    double l = 0, a = 0;
    if ((st = cnn_model_reserve(m, batch_size, false))
        || (st = evaluate_stream(m, ds, batch_size, &l, &a)))
        return st;
    if (loss)
        *loss = l;
    if (accuracy)
        *accuracy = a;
    return CNN_OK;
}

/* ---- fit ------------------------------------------------------------------ */

/* What the decode threads need to augment an example as fit does. */
typedef struct {
    const cnn_augmentation *aug;
    uint64_t seed;
    int epoch;
    cnn_shape shape;
} augment_job;

static void augment_one(void *user, float *x, int64_t batch, int row, float *scratch)
{
    const augment_job *j = user;
    cnn_augment_batch_from(j->aug, j->seed, j->epoch, batch, row, x, 1, j->shape, scratch);
}

static bool report(const cnn_fit_config *cfg, cnn_progress *p)
{
    return cfg->progress ? cfg->progress(p, cfg->progress_user) : true;
}

cnn_status cnn_model_fit_dataset(cnn_model *m, cnn_dataset *train, cnn_dataset *validation,
                                 cnn_fit_config cfg, cnn_history **history_out)
{
    if (history_out)
        *history_out = NULL;
    if (!m)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "fit: model is NULL");
    if (!m->compiled)
        return cnn_fail(CNN_ERR_STATE, "fit: compile the model (choose a loss and optimizer) first");
    if (cfg.validation_split != 0 || cfg.validation_x || cfg.validation_y || cfg.parallel)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "fit: with a data set, validation is a second data set (subset"
                        " validation): validation_split, validation_x/y and parallel must be"
                        " unset");
    cnn_status st = check_dataset(m, train, "fit");
    if (st || (validation && (st = check_dataset(m, validation, "fit: validation data"))))
        return st;
    if (validation == train)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "fit: the validation data set must be another object than the training"
                        " one");
    if (cfg.batch_size == 0)
        cfg.batch_size = 32;
    if (cfg.epochs == 0)
        cfg.epochs = 1;
    if (cfg.batch_size < 1 || cfg.epochs < 1 || cfg.initial_epoch < 0
        || cfg.initial_epoch >= cfg.epochs || cfg.initial_step < 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "fit: need batch_size >= 1, epochs >= 1, initial_epoch in [0, epochs) and"
                        " initial_step >= 0; got %d, %d, %d, %lld",
                        cfg.batch_size, cfg.epochs, cfg.initial_epoch,
                        (long long)cfg.initial_step);
    int64_t n_train, n_val, steps;
    if ((st = cnn_fit_split_sizes(train->count, 0, cfg.batch_size, &n_train, &n_val, &steps)))
        return st;
    const int batch = cfg.batch_size < n_train ? cfg.batch_size : (int)n_train;
    if (cfg.initial_step > steps)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "fit: initial_step %lld is past the epoch's %lld steps (a checkpoint of"
                        " other data?)",
                        (long long)cfg.initial_step, (long long)steps);
    const cnn_augmentation *aug = &cfg.augmentation;
    const bool augment = aug->horizontal_flip || aug->max_shift || aug->max_rotation != 0;
    if (augment && (aug->max_shift < 0 || aug->max_shift > 65536
                    || !(aug->max_rotation >= 0 && aug->max_rotation <= 180)))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "fit: augmentation: max_shift must be in [0, 65536] and max_rotation in"
                        " [0, 180] degrees");
    cnn_dataset_stream_config sc;
    cnn_fit_callbacks cb;
    if ((st = plan_stream(m, train, batch, true, &sc, "training from a data set"))
        || (st = cnn_model_ensure_gradients(m)) || (st = cnn_model_reserve(m, batch, true))
        || (st = cnn_fit_callbacks_begin(m, &cfg, validation != NULL, &cb)))
        return st;
    int64_t *order = malloc((size_t)n_train * sizeof *order);
    cnn_history *h = calloc(1, sizeof *h);
    const size_t rows = (size_t)(cfg.epochs - cfg.initial_epoch);
    if (h) {
        h->loss = calloc(rows, sizeof(double));
        h->accuracy = calloc(rows, sizeof(double));
        h->val_loss = calloc(rows, sizeof(double));
        h->val_accuracy = calloc(rows, sizeof(double));
        h->learning_rate = calloc(rows, sizeof(double));
    }
    if (!order || !h || !h->loss || !h->accuracy || !h->val_loss || !h->val_accuracy
        || !h->learning_rate) {
        free(order);
        cnn_history_free(h);
        cnn_fit_callbacks_end(&cb);
        return cnn_fail(CNN_ERR_NO_MEMORY, "fit: out of memory");
    }
    /* the seeds as cnn_model_fit derives them */
    const uint64_t shuffle_seed = cfg.seed ? cfg.seed : m->seed ^ 0x5eed5eed5eedull;
    const uint64_t aug_seed = aug->seed ? aug->seed : shuffle_seed ^ 0xa06e47a71017ull;
    augment_job job = {aug, aug_seed, 0, m->input_shape};
    sc.order = order;
    sc.count = n_train;
    sc.transform = augment ? augment_one : NULL;
    sc.transform_user = &job;
    double lr = m->opt.learning_rate;

    for (int epoch = cfg.initial_epoch + 1; epoch <= cfg.epochs && st == CNN_OK; epoch++) {
        /* cnn_model_fit's order for (seed, epoch) */
        for (int64_t i = 0; i < n_train; i++)
            order[i] = i;
        cnn_rng rng;
        cnn_rng_seed(&rng, shuffle_seed + (uint64_t)epoch * 0x9E3779B97F4A7C15ull);
        if (!cfg.no_shuffle)
            for (int64_t i = n_train - 1; i > 0; i--) {
                int64_t j = (int64_t)cnn_rng_below(&rng, (uint64_t)i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        job.epoch = epoch;
        const int64_t first_step = epoch == cfg.initial_epoch + 1 ? cfg.initial_step : 0;
        sc.first_batch = first_step;
        if ((st = cnn_dataset_stream_start(train, &sc)))
            break;
        double t0 = now_seconds(), loss_sum = 0, correct = 0;
        int64_t seen = 0;
        cnn_progress p = {.event = CNN_PROGRESS_EPOCH_BEGIN, .epoch = epoch,
                          .epochs = cfg.epochs, .steps = steps, .loss = NAN, .accuracy = NAN,
                          .val_loss = NAN, .val_accuracy = NAN, .learning_rate = NAN};
        bool keep_going = report(&cfg, &p);
        for (int64_t s = first_step; s < steps && keep_going; s++) {
            const float *bx, *by;
            int b;
            double l = 0, c = 0;
            if ((st = cnn_dataset_stream_next(train, &bx, &by, &b)))
                break;
            if (b == 0)
                continue; /* every file of the batch was skipped as bad */
            cnn_model_zero_gradients(m);
            if ((st = cnn_model_forward_raw(m, bx, b, true, true))
                || (st = cnn_model_backward_raw(m, by, &l, &c, true, NULL)))
                break;
            if (!isfinite(l)) {
                st = cnn_fail(CNN_ERR_NUMERIC,
                              "fit: epoch %d, step %lld/%lld: the loss is %s; training stopped"
                              " before this step's update (try a lower learning rate, or check"
                              " the data)",
                              epoch, (long long)(s + 1), (long long)steps,
                              isnan(l) ? "NaN" : "infinite");
                break;
            }
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
        }
        cnn_dataset_stream_stop(train);
        if (st)
            break;
        const int e = epoch - cfg.initial_epoch - 1;
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
        if (validation
            && (st = evaluate_stream(m, validation,
                                     batch < validation->count ? batch : (int)validation->count,
                                     &h->val_loss[e], &h->val_accuracy[e])))
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
        if (!report(&cfg, &p))
            st = cnn_fail(CNN_ERR_INTERRUPTED, "fit: stopped by the progress callback after epoch %d",
                          epoch);
        if (stop)
            break;
    }
    h->stopped_epoch = cb.stopped_epoch;
    h->restored_epoch = cb.restored_epoch;
    cnn_fit_callbacks_end(&cb);
    free(order);
    if (history_out)
        *history_out = h;
    else
        cnn_history_free(h);
    return st;
}
