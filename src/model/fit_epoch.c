/* One epoch of fit and its steps:
 *
 *   cnn_fit_epoch  shuffle, epoch_begin, fit_step from the resume position,
 *                  epoch_end
 *   fit_step       gather the batch, augment, forward, backward, allreduce
 *                  (data-parallel), NaN check, optimizer step, progress
 *   epoch_end      weights check, history row, validation, callbacks, the
 *                  epoch-end report
 *
 * With a cnn_parallel every rank runs the same calls in the same order:
 * each collective (allreduce, agree, sync) is reached by all ranks or none,
 * so a rank that fails or is asked to stop takes the others with it. */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "model/fit.h"

/* The progress callback's answer, agreed over the ranks: training goes on
 * only if every rank's callback says so. */
static cnn_status report(const fit_state *f, const cnn_progress *p, bool *go)
{
    *go = f->cfg.progress ? f->cfg.progress(p, f->cfg.progress_user) : true;
    return f->par ? cnn_parallel_agree(f->par, go) : CNN_OK;
}

/* The schedule's rate after m->opt_steps updates. */
static double scheduled_rate(const fit_state *f)
{
    return cnn_lr_schedule_rate(&f->cfg.lr_schedule, f->m->opt.learning_rate, f->m->opt_steps,
                                (int64_t)f->cfg.epochs * f->steps);
}

/* Each epoch's order depends only on (seed, epoch), so a run resumed at
 * any epoch sees the same batches as an uninterrupted one. */
static void shuffle(fit_state *f)
{
    for (int64_t i = 0; i < f->train.count; i++)
        f->order[i] = i;
    cnn_rng rng;
    cnn_rng_seed(&rng, f->shuffle_seed + (uint64_t)f->epoch * 0x9E3779B97F4A7C15ull);
    if (f->cfg.no_shuffle)
        return;
    for (int64_t i = f->train.count - 1; i > 0; i--) {
        int64_t j = (int64_t)cnn_rng_below(&rng, (uint64_t)i + 1), t = f->order[i];
        f->order[i] = f->order[j];
        f->order[j] = t;
    }
}

/* Copies examples order[start .. start + rows) into the arena's batch. */
static void gather(fit_state *f, int64_t start, int rows)
{
    const data_view *t = &f->train;
    for (int i = 0; i < rows; i++) {
        int64_t e = f->order[start + i];
        memcpy(f->bx + i * t->x_row, t->x + e * t->x_row, (size_t)t->x_row * sizeof(float));
        memcpy(f->by + i * t->y_row, t->y + e * t->y_row, (size_t)t->y_row * sizeof(float));
    }
}

/* Step s (0-based) of the epoch: examples [s * per_step, + per_step) of
 * the order, the last step taking what is left. */
static cnn_status fit_step(fit_state *f, int64_t s)
{
    cnn_model *m = f->m;
    const int64_t start = s * f->per_step;
    int64_t count = f->train.count - start < f->per_step ? f->train.count - start : f->per_step;
    int64_t first = 0, rows = count; /* this rank's rows of the step */
    const float *bx = f->bx, *by = f->by;
    if (f->source) {
        /* the source's next batch (a data set's stream: decoded and
         * augmented by its threads, fewer rows when bad files were skipped) */
        int got;
        cnn_status st = f->source->next(f, &bx, &by, &got);
        if (st)
            return st;
        count = rows = got;
    } else {
        if (f->par)
            cnn_parallel_share(f->par, count, &first, &rows);
        gather(f, start + first, (int)rows);
        if (f->augment)
            cnn_augment_batch_from(&f->cfg.augmentation, f->aug_seed, f->epoch, s, first, f->bx,
                                   (int)rows, m->input_shape, f->scratch);
    }
    if (count == 0) { /* every file of the batch was skipped: no update */
        m->train_epoch = f->epoch - 1;
        m->train_step = s + 1;
        return CNN_OK;
    }

    double loss = 0, correct = 0; /* sums over the step's examples */
    cnn_status st;
    cnn_model_zero_gradients(m);
    /* a data-parallel rank may have no rows in the last step; it still
     * joins the allreduce */
    if (rows > 0
        && ((st = cnn_model_forward_raw(m, bx, (int)rows, true, true))
            || (st = cnn_model_backward_raw(m, by, &loss, &correct, true, NULL))))
        return st;
    /* data-parallel: every rank gets the whole step's gradients and sums */
    if (f->par && (st = cnn_parallel_reduce_step(m, f->par, rows, count, &loss, &correct)))
        return st;
    if ((st = cnn_fit_check_step(m, loss, f->epoch, s + 1, f->steps)))
        return st;

    /* Keras's loss includes the L2 penalties (at the weights of this forward) */
    loss += cnn_model_penalty(m) * (int)count;
    f->lr = scheduled_rate(f);
    cnn_optimizer_step(m, (float)f->lr);
    m->train_epoch = f->epoch - 1; /* the resume position: a checkpoint */
    m->train_step = s + 1;         /* saved now continues after this step */

    f->loss_sum += loss;
    f->correct += correct;
    f->seen += (int)count;
    f->p = (cnn_progress){.event = CNN_PROGRESS_BATCH_END, .epoch = f->epoch,
                          .epochs = f->cfg.epochs, .step = s + 1, .steps = f->steps,
                          .elapsed_seconds = cnn_model_seconds() - f->t0,
                          .loss = f->loss_sum / f->seen, .accuracy = f->correct / f->seen,
                          .val_loss = NAN, .val_accuracy = NAN, .learning_rate = f->lr};
    return report(f, &f->p, &f->keep_going);
}

static cnn_status epoch_begin(fit_state *f)
{
    f->t0 = cnn_model_seconds();
    f->loss_sum = f->correct = 0;
    f->seen = 0;
    f->p = (cnn_progress){.event = CNN_PROGRESS_EPOCH_BEGIN, .epoch = f->epoch,
                          .epochs = f->cfg.epochs, .steps = f->steps, .loss = NAN,
                          .accuracy = NAN, .val_loss = NAN, .val_accuracy = NAN,
                          .learning_rate = NAN};
    return report(f, &f->p, &f->keep_going);
}

/* The epoch's history row (h->epochs grows as rows are filled, so a failed
 * fit hands back the epochs completed). */
static void record_history(fit_state *f)
{
    cnn_history *h = f->h;
    const int e = f->epoch - f->cfg.initial_epoch - 1;
    h->first_epoch = f->cfg.initial_epoch + 1;
    h->epochs = e + 1;
    h->loss[e] = f->seen ? f->loss_sum / f->seen : NAN;
    h->accuracy[e] = f->seen ? f->correct / f->seen : NAN;
    h->val_loss[e] = h->val_accuracy[e] = NAN;
    h->learning_rate[e] = f->lr;
}

/* The end of the epoch as the callbacks and the progress callback see it,
 * in Keras's order: validation, then the callbacks (which may lower the
 * rate, stop, save), then the report. */
static cnn_status epoch_end(fit_state *f, bool *stop)
{
    cnn_model *m = f->m;
    cnn_status st;
    if ((f->par && (st = cnn_parallel_sync(m, f->par, f->epoch)))
        || (st = cnn_fit_check_weights(m, f->epoch)))
        return st;
    record_history(f);
    if (!f->keep_going)
        return cnn_fail(CNN_ERR_INTERRUPTED, "fit: stopped by the progress callback in epoch %d",
                        f->epoch);
    cnn_history *h = f->h;
    const int e = h->epochs - 1;
    if (f->source && f->source->validate
        && (st = f->source->validate(f, &h->val_loss[e], &h->val_accuracy[e])))
        return st;
    if (f->val.count
        && (st = cnn_fit_evaluate_view(m, &f->val, f->batch, f->par, &h->val_loss[e],
                                       &h->val_accuracy[e])))
        return st;
    m->train_epoch = f->epoch; /* a checkpoint saved by the callbacks resumes */
    m->train_step = 0;         /* at the next epoch */
    const double logs[4] = {h->val_loss[e], h->val_accuracy[e], h->loss[e], h->accuracy[e]};
    if ((st = cnn_fit_callbacks_epoch_end(&f->cb, m, f->epoch, logs, stop)))
        return st;
    /* the last step's report, extended */
    f->p.event = CNN_PROGRESS_EPOCH_END;
    cnn_fit_callbacks_report(&f->cb, &f->p);
    f->p.elapsed_seconds = cnn_model_seconds() - f->t0;
    f->p.val_loss = h->val_loss[e];
    f->p.val_accuracy = h->val_accuracy[e];
    f->p.learning_rate = scheduled_rate(f);
    bool go;
    if ((st = report(f, &f->p, &go)))
        return st;
    if (!go)
        return cnn_fail(CNN_ERR_INTERRUPTED, "fit: stopped by the progress callback after epoch %d",
                        f->epoch);
    return CNN_OK;
}

cnn_status cnn_fit_epoch(fit_state *f, int epoch, bool *stop)
{
    *stop = false;
    f->epoch = epoch;
    shuffle(f);
    cnn_status st = epoch_begin(f);
    /* a resumed run starts its first epoch after the steps already done */
    const int64_t first = epoch == f->cfg.initial_epoch + 1 ? f->cfg.initial_step : 0;
    /* a source (a data set's stream) starts at the resume position */
    if (f->source && !st)
        st = f->source->begin(f, first);
    for (int64_t s = first; s < f->steps && f->keep_going && !st; s++)
        st = fit_step(f, s);
    if (f->source)
        f->source->end(f);
    return st ? st : epoch_end(f, stop);
}
