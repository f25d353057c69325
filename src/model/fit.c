/* fit / evaluate / predict: the training loop over mini-batches. */
#include <math.h>
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
    if (!h->loss || !h->accuracy || !h->val_loss || !h->val_accuracy) {
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

static cnn_status evaluate_view(cnn_model *m, const data_view *v, int batch, double *loss,
                                double *accuracy)
{
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
    *loss = loss_sum / (double)v->count;
    *accuracy = correct / (double)v->count;
    return CNN_OK;
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
    if (st || (st = cnn_model_check_data(m, x, y, "evaluate")))
        return st;
    data_view v = {x->data, y->data, x->dims[0], cnn_tensor_size(x) / x->dims[0],
                   cnn_model_target_size(m)};
    double l = 0, a = 0;
    st = evaluate_view(m, &v, batch_size, &l, &a);
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
    if (st || (st = cnn_model_check_data(m, x, y, "fit")))
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
        if ((st = cnn_model_check_data(m, cfg.validation_x, cfg.validation_y, "fit: validation data")))
            return st;
        val = (data_view){cfg.validation_x->data, cfg.validation_y->data,
                          cfg.validation_x->dims[0], x_row, y_row};
    } else if (cfg.validation_split > 0) {
        /* Keras: the last fraction, before any shuffling */
        int64_t split_at = (int64_t)floor((double)x->dims[0] * (1.0 - cfg.validation_split));
        if (split_at < 1 || split_at >= x->dims[0])
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "fit: validation_split %g of %lld examples leaves an empty set",
                            (double)cfg.validation_split, (long long)x->dims[0]);
        train.count = split_at;
        val = (data_view){x->data + split_at * x_row, y->data + split_at * y_row,
                          x->dims[0] - split_at, x_row, y_row};
    }
    int batch = cfg.batch_size;
    if (batch > train.count)
        batch = (int)train.count;
    if ((st = cnn_model_ensure_gradients(m)) || (st = cnn_model_reserve(m, batch, true)))
        return st;
    int64_t *order = malloc((size_t)train.count * sizeof *order);
    cnn_history *h = history_create(cfg.epochs - cfg.initial_epoch);
    if (!order || !h) {
        free(order);
        cnn_history_free(h);
        return cnn_fail(CNN_ERR_NO_MEMORY, "fit: out of memory");
    }
    const uint64_t shuffle_seed = cfg.seed ? cfg.seed : m->seed ^ 0x5eed5eed5eedull;
    const int64_t steps = (train.count + batch - 1) / batch;
    float *bx = m->arena.input, *by = m->arena.target;

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
                          .val_loss = NAN, .val_accuracy = NAN};
        bool keep_going = report(&cfg, &p);
        int64_t first_step = epoch == cfg.initial_epoch + 1 ? cfg.initial_step : 0;
        for (int64_t s = first_step; s < steps && keep_going; s++) {
            int64_t start = s * batch;
            int b = (int)(train.count - start < batch ? train.count - start : batch);
            for (int i = 0; i < b; i++) {
                int64_t e = order[start + i];
                memcpy(bx + i * x_row, train.x + e * x_row, (size_t)x_row * sizeof(float));
                memcpy(by + i * y_row, train.y + e * y_row, (size_t)y_row * sizeof(float));
            }
            double l, c;
            cnn_model_zero_gradients(m);
            if ((st = cnn_model_forward_raw(m, bx, b, true, true))
                || (st = cnn_model_backward_raw(m, by, &l, &c, true, NULL)))
                break;
            cnn_optimizer_step(m);
            m->train_epoch = epoch - 1;
            m->train_step = s + 1;
            loss_sum += l;
            correct += c;
            seen += b;
            p = (cnn_progress){.event = CNN_PROGRESS_BATCH_END, .epoch = epoch,
                               .epochs = cfg.epochs, .step = s + 1, .steps = steps,
                               .elapsed_seconds = now_seconds() - t0, .loss = loss_sum / seen,
                               .accuracy = correct / seen, .val_loss = NAN,
                               .val_accuracy = NAN};
            keep_going = report(&cfg, &p);
        }
        if (st)
            break;
        const int e = epoch - cfg.initial_epoch - 1; /* history row */
        h->first_epoch = cfg.initial_epoch + 1;
        h->epochs = e + 1;
        h->loss[e] = seen ? loss_sum / seen : NAN;
        h->accuracy[e] = seen ? correct / seen : NAN;
        h->val_loss[e] = h->val_accuracy[e] = NAN;
        if (!keep_going) {
            st = cnn_fail(CNN_ERR_INTERRUPTED, "fit: stopped by the progress callback in epoch %d",
                          epoch);
            break;
        }
        if (val.count
            && (st = evaluate_view(m, &val, batch, &h->val_loss[e], &h->val_accuracy[e])))
            break;
        m->train_epoch = epoch;
        m->train_step = 0;
        p.event = CNN_PROGRESS_EPOCH_END;
        p.elapsed_seconds = now_seconds() - t0;
        p.val_loss = h->val_loss[e];
        p.val_accuracy = h->val_accuracy[e];
        if (!report(&cfg, &p))
            st = cnn_fail(CNN_ERR_INTERRUPTED, "fit: stopped by the progress callback after epoch %d",
                          epoch);
    }
    free(order);
    if (history_out)
        *history_out = h;
    else
        cnn_history_free(h);
    return st;
}
