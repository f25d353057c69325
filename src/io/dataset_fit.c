/* fit and evaluate from a cnn_dataset: each step takes the next batch the
 * data set's decode threads have ready (dataset_stream.c), handed to
 * cnn_model_fit's own pieces (src/model/fit.c, fit_epoch.c: the same
 * prepare, epoch order, augmentation, step and epoch end) as a fit_source,
 * so the same examples give the same weights bit for bit. */
#include <stdlib.h>

#include "core/error.h"
#include "core/rng.h"
#include "io/dataset.h"
#include "model/fit.h"

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
 * one decode per thread (bounded by what is left, at most the data
 * set's max_decode_bytes). */
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
    /* the data set's own decode budget, or less when the model's is tight */
    const int64_t room = (m->max_memory - fixed) / w, own = ds->cfg.max_decode_bytes;
    c->decode_bytes = ds->x ? 0 : room < own ? room : own;
    return CNN_OK;
}

/* ---- evaluate ------------------------------------------------------------- */

/* The mean loss and accuracy over ds, streamed; in_fit: fit's validation,
 * while the training buffers are held (the budget counts them). */
static cnn_status evaluate_stream(cnn_model *m, cnn_dataset *ds, int batch, bool in_fit,
                                  double *loss, double *accuracy)
{
    if (batch > ds->count)
        batch = (int)ds->count;
    cnn_dataset_stream_config c;
    cnn_status st = plan_stream(m, ds, batch, in_fit, &c, "evaluating a data set");
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
    double l = 0, a = 0;
    if ((st = cnn_model_reserve(m, batch_size < ds->count ? batch_size : (int)ds->count, false))
        || (st = evaluate_stream(m, ds, batch_size, false, &l, &a)))
        return st;
    if (loss)
        *loss = l;
    if (accuracy)
        *accuracy = a;
    return CNN_OK;
}

/* ---- fit: the data sets as fit's source -------------------------------------- */

typedef struct {
    cnn_dataset *train, *val;
    cnn_dataset_stream_config plan; /* queue and decode bounds; per epoch the rest */
} dataset_source;

/* Applied by the decode threads to each training example: fit's
 * augmentation of row `row` of step `batch`, as cnn_model_fit does it. */
static void augment_example(void *user, float *x, int64_t batch, int row, float *scratch)
{
    const fit_state *f = user;
    cnn_augment_batch_from(&f->cfg.augmentation, f->aug_seed, f->epoch, batch, row, x, 1,
                           f->m->input_shape, scratch);
}

static cnn_status source_begin(fit_state *f, int64_t first_step)
{
    dataset_source *d = f->source->ctx;
    cnn_dataset_stream_config c = d->plan;
    c.order = f->order;
    c.count = f->train.count;
    c.batch = (int)f->per_step;
    c.first_batch = first_step;
    c.transform = f->augment ? augment_example : NULL;
    c.transform_user = f;
    /* random_crop's windows: drawn from (seed, epoch) as augmentation's */
    uint64_t key = f->aug_seed ^ ((uint64_t)f->epoch * 0x9E3779B97F4A7C15ull);
    c.crop_key = cnn_splitmix64(&key) | 1;
    return cnn_dataset_stream_start(d->train, &c);
}

static cnn_status source_next(fit_state *f, const float **x, const float **y, int *rows)
{
    dataset_source *d = f->source->ctx;
    return cnn_dataset_stream_next(d->train, x, y, rows);
}

static void source_end(fit_state *f)
{
    dataset_source *d = f->source->ctx;
    cnn_dataset_stream_stop(d->train);
}

static cnn_status source_validate(fit_state *f, double *loss, double *accuracy)
{
    dataset_source *d = f->source->ctx;
    return evaluate_stream(f->m, d->val, f->batch, true, loss, accuracy);
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
                        " one (cnn_dataset_from_directory with subset validation)");
    if (cfg.batch_size == 0)
        cfg.batch_size = 32;
    cnn_dataset_stream_config plan;
    if (cfg.batch_size > 0
        && (st = plan_stream(m, train,
                             cfg.batch_size < train->count ? cfg.batch_size : (int)train->count,
                             true, &plan, "training from a data set")))
        return st;
    dataset_source d = {train, validation, plan};
    const fit_source source = {&d, source_begin, source_next, source_end,
                               validation ? source_validate : NULL};
    fit_state f;
    if ((st = cnn_fit_prepare_source(&f, m, train->count, train->x_row, &source, &cfg)))
        return st;
    if (f.cfg.initial_step > f.steps) {
        st = cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                      "fit: initial_step %lld is past the epoch's %lld steps (a checkpoint of"
                      " other data?)",
                      (long long)f.cfg.initial_step, (long long)f.steps);
        return cnn_fit_finish(&f, st, history_out);
    }
    bool stop = false; /* a callback (EarlyStopping) ended training */
    for (int epoch = f.cfg.initial_epoch + 1; epoch <= f.cfg.epochs && !st && !stop; epoch++)
        st = cnn_fit_epoch(&f, epoch, &stop);
    return cnn_fit_finish(&f, st, history_out);
}
