/* Keras's training callbacks (EarlyStopping, ModelCheckpoint,
 * ReduceLROnPlateau), run by fit at the end of every epoch, and the
 * learning-rate schedules it applies at every step. Their rules follow
 * Keras's callbacks.py: a loss improves when it falls below best -
 * min_delta, an accuracy when it rises above best + min_delta. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model.h"

#define PI 3.14159265358979323846

static const char *const monitor_names[] = {"val_loss", "val_accuracy", "loss", "accuracy"};
#define N_MONITORS (int)(sizeof monitor_names / sizeof monitor_names[0])

const char *cnn_monitor_name(cnn_monitor monitor)
{
    return (unsigned)monitor < N_MONITORS ? monitor_names[monitor] : NULL;
}

cnn_status cnn_monitor_from_name(const char *name, cnn_monitor *out)
{
    if (!out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "monitor_from_name: out is NULL");
    for (int i = 0; name && i < N_MONITORS; i++)
        if (strcmp(name, monitor_names[i]) == 0) {
            *out = (cnn_monitor)i;
            return CNN_OK;
        }
    /* Keras also accepts the short names of accuracy */
    if (name && (strcmp(name, "acc") == 0 || strcmp(name, "val_acc") == 0)) {
        *out = name[0] == 'v' ? CNN_MONITOR_VAL_ACCURACY : CNN_MONITOR_ACCURACY;
        return CNN_OK;
    }
    return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "monitor: expected val_loss, val_accuracy, loss or"
                    " accuracy, got '%s'", name ? name : "(null)");
}

double cnn_lr_schedule_rate(const cnn_lr_schedule *s, double lr0, int64_t t, int64_t total_steps)
{
    if (!s)
        return lr0;
    switch (s->kind) {
    case CNN_LR_STEP:
        return lr0 * pow(s->decay_rate, floor((double)t / (double)s->decay_steps));
    case CNN_LR_EXPONENTIAL:
        return lr0 * pow(s->decay_rate, (double)t / (double)s->decay_steps);
    case CNN_LR_COSINE: {
        double T = (double)(s->decay_steps ? s->decay_steps : total_steps);
        double done = T > 0 ? fmin((double)t, T) / T : 1.0;
        return lr0 * ((1 - s->alpha) * 0.5 * (1 + cos(PI * done)) + s->alpha);
    }
    case CNN_LR_CONSTANT:
        break;
    }
    return lr0;
}

static bool monitor_needs_validation(cnn_monitor m)
{
    return m == CNN_MONITOR_VAL_LOSS || m == CNN_MONITOR_VAL_ACCURACY;
}

static cnn_status check_monitor(const char *who, cnn_monitor m, bool has_validation)
{
    if ((unsigned)m >= N_MONITORS)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "fit: %s: unknown monitor %d", who, (int)m);
    if (monitor_needs_validation(m) && !has_validation)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "fit: %s monitors %s, but fit has no validation data; give"
                        " validation_split or validation data, or monitor %s",
                        who, monitor_names[m], monitor_names[m + 2]);
    return CNN_OK;
}

cnn_status cnn_fit_callbacks_begin(cnn_model *m, const cnn_fit_config *cfg, bool has_validation,
                                   cnn_fit_callbacks *cb)
{
    memset(cb, 0, sizeof *cb);
    cnn_callbacks c = cfg->callbacks;
    cnn_status st;
    if (c.early_stopping.enabled) {
        cnn_early_stopping_config *e = &c.early_stopping;
        if ((st = check_monitor("EarlyStopping", e->monitor, has_validation)))
            return st;
        if (e->patience < 0 || !(e->min_delta >= 0 && isfinite(e->min_delta)))
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "fit: EarlyStopping: patience must be >= 0 and min_delta a finite"
                            " number >= 0, got %d and %g",
                            e->patience, (double)e->min_delta);
    }
    if (c.model_checkpoint.path) {
        if (!*c.model_checkpoint.path)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "fit: ModelCheckpoint: the path is empty");
        if ((st = check_monitor("ModelCheckpoint", c.model_checkpoint.monitor, has_validation)))
            return st;
    }
    if (c.reduce_lr_on_plateau.enabled) {
        cnn_reduce_lr_on_plateau_config *r = &c.reduce_lr_on_plateau;
        if (r->factor == 0)
            r->factor = 0.1f;
        if (r->patience == 0)
            r->patience = 10;
        if (r->min_delta == 0)
            r->min_delta = 1e-4f;
        if ((st = check_monitor("ReduceLROnPlateau", r->monitor, has_validation)))
            return st;
        if (!(r->factor > 0 && r->factor < 1) || r->patience < 0 || r->cooldown < 0
            || !(r->min_delta >= 0 && isfinite(r->min_delta)) || !(r->min_lr >= 0))
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "fit: ReduceLROnPlateau: factor must be in (0, 1), patience and"
                            " cooldown >= 0, min_delta and min_lr >= 0 (got factor %g, patience"
                            " %d, cooldown %d, min_delta %g, min_lr %g)",
                            (double)r->factor, r->patience, r->cooldown, (double)r->min_delta,
                            (double)r->min_lr);
    }
    const cnn_lr_schedule *s = &cfg->lr_schedule;
    switch (s->kind) {
    case CNN_LR_CONSTANT:
        break;
    case CNN_LR_STEP:
    case CNN_LR_EXPONENTIAL:
        if (s->decay_steps < 1 || !(s->decay_rate > 0 && isfinite(s->decay_rate)))
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "fit: learning-rate schedule: decay_steps must be >= 1 and"
                            " decay_rate a finite number > 0, got %lld and %g",
                            (long long)s->decay_steps, (double)s->decay_rate);
        break;
    case CNN_LR_COSINE:
        if (s->decay_steps < 0 || !(s->alpha >= 0 && s->alpha <= 1))
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "fit: cosine schedule: decay_steps must be >= 0 (0 = the whole fit)"
                            " and alpha in [0, 1], got %lld and %g",
                            (long long)s->decay_steps, (double)s->alpha);
        break;
    default:
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "fit: unknown learning-rate schedule %d",
                        (int)s->kind);
    }
    if (c.early_stopping.enabled && c.early_stopping.restore_best_weights) {
        int64_t bytes = m->n_params * (int64_t)sizeof(float);
        if ((st = cnn_model_check_budget(m, bytes, "keeping the best weights (EarlyStopping)")))
            return st;
        cb->best_weights = malloc((size_t)(bytes ? bytes : 1));
        if (!cb->best_weights)
            return cnn_fail(CNN_ERR_NO_MEMORY, "fit: EarlyStopping: out of memory for the best"
                            " weights (%lld bytes)", (long long)bytes);
    }
    cb->c = c;
    cb->es_best = cb->ckpt_best = cb->lr_best = INFINITY;
    return CNN_OK;
}

void cnn_fit_callbacks_report(const cnn_fit_callbacks *cb, cnn_progress *p)
{
    p->checkpoint = cb->ckpt_event;
    p->checkpoint_path = cb->ckpt_event ? cb->c.model_checkpoint.path : NULL;
    p->checkpoint_monitor = cb->c.model_checkpoint.monitor;
    p->checkpoint_value = cb->ckpt_value;
    p->checkpoint_best = cb->ckpt_event == CNN_CHECKPOINT_SAVED ? NAN : cb->ckpt_previous;
}

/* Keras's words (keras/src/callbacks/model_checkpoint.py, verbose=1):
 * values with 5 decimals, "None" before the first best. */
int cnn_progress_checkpoint_line(const cnn_progress *p, char *buf, size_t cap)
{
    const char *monitor = p ? cnn_monitor_name((cnn_monitor)p->checkpoint_monitor) : NULL;
    const char *path = p && p->checkpoint_path ? p->checkpoint_path : "";
    char best[64] = "None";
    if (p && !isnan(p->checkpoint_best))
        snprintf(best, sizeof best, "%.5f", p->checkpoint_best);
    int n = 0;
    if (!p || p->event != CNN_PROGRESS_EPOCH_END || !monitor)
        n = snprintf(buf, cap, "%s", "");
    else if (p->checkpoint == CNN_CHECKPOINT_SAVED)
        n = snprintf(buf, cap, "Epoch %d: saving model to %s", p->epoch, path);
    else if (p->checkpoint == CNN_CHECKPOINT_IMPROVED)
        n = snprintf(buf, cap, "Epoch %d: %s improved from %s to %.5f, saving model to %s",
                     p->epoch, monitor, best, p->checkpoint_value, path);
    else if (p->checkpoint == CNN_CHECKPOINT_NOT_IMPROVED)
        n = snprintf(buf, cap, "Epoch %d: %s did not improve from %s", p->epoch, monitor, best);
    else
        n = snprintf(buf, cap, "%s", "");
    return n < 0 ? 0 : n;
}

void cnn_fit_callbacks_end(cnn_fit_callbacks *cb)
{
    free(cb->best_weights);
    cb->best_weights = NULL;
}

/* The monitored value, signed so that lower is better. */
static double lower_is_better(cnn_monitor m, const double logs[4])
{
    double v = logs[m];
    return m == CNN_MONITOR_VAL_ACCURACY || m == CNN_MONITOR_ACCURACY ? -v : v;
}

cnn_status cnn_fit_callbacks_epoch_end(cnn_fit_callbacks *cb, cnn_model *m, int epoch,
                                       const double logs[4], bool *stop)
{
    *stop = false;
    cnn_status st;

    /* ReduceLROnPlateau */
    const cnn_reduce_lr_on_plateau_config *r = &cb->c.reduce_lr_on_plateau;
    if (r->enabled) {
        double v = lower_is_better(r->monitor, logs);
        if (cb->lr_cooldown > 0) {
            cb->lr_cooldown--;
            cb->lr_wait = 0;
        }
        if (v < cb->lr_best - r->min_delta) {
            cb->lr_best = v;
            cb->lr_wait = 0;
        } else if (cb->lr_cooldown == 0 && ++cb->lr_wait >= r->patience) {
            float old = m->opt.learning_rate;
            if (old > r->min_lr) {
                float lr = old * r->factor;
                m->opt.learning_rate = lr > r->min_lr ? lr : r->min_lr;
                cb->lr_cooldown = r->cooldown;
                cb->lr_wait = 0;
            }
        }
    }

    /* EarlyStopping */
    const cnn_early_stopping_config *e = &cb->c.early_stopping;
    if (e->enabled) {
        double v = lower_is_better(e->monitor, logs);
        cb->es_wait++;
        if (v < cb->es_best - e->min_delta) {
            cb->es_best = v;
            cb->es_best_epoch = epoch;
            cb->es_wait = 0;
            if (cb->best_weights)
                memcpy(cb->best_weights, m->params, (size_t)m->n_params * sizeof(float));
        } else if (cb->es_wait >= e->patience && cb->epochs_seen > 0) {
            *stop = true;
            cb->stopped_epoch = epoch;
            if (cb->best_weights && cb->es_best_epoch) {
                memcpy(m->params, cb->best_weights, (size_t)m->n_params * sizeof(float));
                cb->restored_epoch = cb->es_best_epoch;
            }
        }
    }
    cb->epochs_seen++;

    /* ModelCheckpoint (after the others, so a restored model is what it saves) */
    const cnn_model_checkpoint_config *k = &cb->c.model_checkpoint;
    cb->ckpt_event = CNN_CHECKPOINT_NONE;
    if (k->path) {
        bool save = true;
        cb->ckpt_event = CNN_CHECKPOINT_SAVED;
        cb->ckpt_value = logs[k->monitor];
        if (k->save_best_only) {
            double v = lower_is_better(k->monitor, logs);
            /* the best so far, unsigned again (accuracies are kept negated) */
            cb->ckpt_previous = isinf(cb->ckpt_best) ? NAN
                                : k->monitor == CNN_MONITOR_VAL_ACCURACY
                                        || k->monitor == CNN_MONITOR_ACCURACY
                                    ? -cb->ckpt_best
                                    : cb->ckpt_best;
            save = v < cb->ckpt_best;
            if (save)
                cb->ckpt_best = v;
            cb->ckpt_event = save ? CNN_CHECKPOINT_IMPROVED : CNN_CHECKPOINT_NOT_IMPROVED;
        }
        if (save && (st = cnn_model_save(m, k->path))) {
            cnn_error_prefix("fit: ModelCheckpoint after epoch %d", epoch);
            return st;
        }
    }
    return CNN_OK;
}
