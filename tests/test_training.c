/* Keras's training tools: EarlyStopping (stops, restores the best weights),
 * ModelCheckpoint (keeps the best), ReduceLROnPlateau (reduces), the
 * always-on TerminateOnNaN, learning-rate schedules, L2 penalties, gradient
 * clipping, and data augmentation (correct, deterministic, resumable). */
#include <stdlib.h>
#include <unistd.h>

#include "model/model.h"
#include "test.h"

static cnn_tensor *tensor(int rank, const int64_t *dims)
{
    cnn_tensor *t = NULL;
    cnn_tensor_create(&t, rank, dims);
    return t;
}

static uint32_t lcg = 1;
static float uniform(void) /* [-1, 1) */
{
    lcg = lcg * 1664525u + 1013904223u;
    return (float)(lcg >> 8) / 8388608.0f - 1.0f;
}

/* Two classes of 4x4 images told apart by their mean brightness; the
 * validation set has every label flipped, so the better the model learns
 * the training set, the worse its val_loss: the best epoch is the first. */
typedef struct {
    cnn_tensor *x, *y, *vx, *vy;
} data;

static data make_data(int n)
{
    data d = {tensor(4, (int64_t[]){n, 4, 4, 1}), tensor(1, (int64_t[]){n}),
              tensor(4, (int64_t[]){n, 4, 4, 1}), tensor(1, (int64_t[]){n})};
    for (int i = 0; i < n; i++) {
        int label = i % 2;
        for (int k = 0; k < 16; k++) {
            d.x->data[i * 16 + k] = (label ? 0.6f : -0.6f) + 0.3f * uniform();
            d.vx->data[i * 16 + k] = (label ? 0.6f : -0.6f) + 0.3f * uniform();
        }
        d.y->data[i] = (float)label;
        d.vy->data[i] = (float)(1 - label);
    }
    return d;
}

static void free_data(data *d)
{
    cnn_tensor_free(d->x);
    cnn_tensor_free(d->y);
    cnn_tensor_free(d->vx);
    cnn_tensor_free(d->vy);
}

static cnn_model *small_model(float lr)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(4, 4, 1)));
    CHECK_OK(cnn_model_set_threads(m, 1));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 2, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_sgd(.learning_rate = lr))));
    return m;
}

static float *copy_weights(cnn_model *m)
{
    int64_t n = cnn_model_param_count(m), off = 0;
    float *w = malloc((size_t)n * sizeof *w);
    for (int i = 0; i < cnn_model_layer_count(m); i++)
        for (int k = 0; k < CNN_MAX_LAYER_WEIGHTS; k++) {
            int64_t count;
            const float *v = cnn_model_layer_weights(m, i, k, &count);
            if (v)
                memcpy(w + off, v, (size_t)count * sizeof *w);
            off += count;
        }
    return w;
}

static bool same_weights(cnn_model *m, const float *w)
{
    float *now = copy_weights(m);
    bool same = memcmp(now, w, (size_t)cnn_model_param_count(m) * sizeof *w) == 0;
    free(now);
    return same;
}

/* Keeps the weights at the end of every epoch (the progress callback runs
 * after the callbacks, so these are what the epoch's callbacks left). */
typedef struct {
    cnn_model *m;
    float *after[16];
    double lr[16];
    char line[16][320]; /* ModelCheckpoint's Keras line */
} recorder;

static bool record(const cnn_progress *p, void *user)
{
    recorder *r = user;
    if (p->event == CNN_PROGRESS_EPOCH_END && p->epoch <= 16) {
        r->after[p->epoch - 1] = copy_weights(r->m);
        r->lr[p->epoch - 1] = p->learning_rate;
        cnn_progress_checkpoint_line(p, r->line[p->epoch - 1], sizeof r->line[0]);
    }
    return true;
}

static void free_recorder(recorder *r)
{
    for (int i = 0; i < 16; i++)
        free(r->after[i]);
}

static void test_early_stopping(void)
{
    data d = make_data(32);
    /* val_loss rises every epoch: patience 2 stops after epoch 3 and puts
     * the weights of epoch 1 back */
    cnn_model *m = small_model(0.5f);
    recorder r = {.m = m};
    cnn_history *h = NULL;
    CHECK_OK(cnn_model_fit(m, d.x, d.y,
                           cnn_fit(.epochs = 10, .batch_size = 8, .validation_x = d.vx,
                                   .validation_y = d.vy, .progress = record, .progress_user = &r,
                                   .callbacks = {.early_stopping = cnn_early_stopping(
                                                     .patience = 2,
                                                     .restore_best_weights = true)}),
                           &h));
    CHECK(h && h->epochs == 3 && h->stopped_epoch == 3 && h->restored_epoch == 1);
    CHECK(h && h->val_loss[1] > h->val_loss[0] && h->val_loss[2] > h->val_loss[1]);
    CHECK(r.after[0] && same_weights(m, r.after[0]));
    double vl = 0;
    CHECK_OK(cnn_model_evaluate(m, d.vx, d.vy, 0, &vl, NULL));
    CHECK(h && fabs(vl - h->val_loss[0]) < 1e-6);
    cnn_history_free(h);
    free_recorder(&r);
    cnn_model_free(m);

    /* without restore_best_weights the last weights stay; monitoring the
     * training loss (which keeps falling) it never stops */
    m = small_model(0.5f);
    r = (recorder){.m = m};
    CHECK_OK(cnn_model_fit(m, d.x, d.y,
                           cnn_fit(.epochs = 4, .batch_size = 8, .validation_x = d.vx,
                                   .validation_y = d.vy, .progress = record, .progress_user = &r,
                                   .callbacks = {.early_stopping = cnn_early_stopping()}),
                           &h));
    CHECK(h && h->epochs == 2 && h->stopped_epoch == 2 && h->restored_epoch == 0);
    CHECK(r.after[1] && same_weights(m, r.after[1]));
    cnn_history_free(h);
    CHECK_OK(cnn_model_fit(m, d.x, d.y,
                           cnn_fit(.epochs = 4, .batch_size = 8,
                                   .callbacks = {.early_stopping = cnn_early_stopping(
                                                     .monitor = CNN_MONITOR_LOSS)}),
                           &h));
    CHECK(h && h->epochs == 4 && h->stopped_epoch == 0);
    cnn_history_free(h);
    /* monitoring val_loss needs validation data */
    CHECK_FAILS(cnn_model_fit(m, d.x, d.y,
                              cnn_fit(.callbacks = {.early_stopping = cnn_early_stopping()}),
                              NULL),
                CNN_ERR_INVALID_ARGUMENT,
                "EarlyStopping monitors val_loss, but fit has no validation data");
    free_recorder(&r);
    cnn_model_free(m);
    free_data(&d);
}

static void test_model_checkpoint(void)
{
    data d = make_data(32);
    char path[] = "/tmp/cnn_test_ckpt_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    /* save_best_only on val_loss: only epoch 1 improves, so the file holds
     * the model after epoch 1 */
    cnn_model *m = small_model(0.5f);
    recorder r = {.m = m};
    CHECK_OK(cnn_model_fit(m, d.x, d.y,
                           cnn_fit(.epochs = 4, .batch_size = 8, .validation_x = d.vx,
                                   .validation_y = d.vy, .progress = record, .progress_user = &r,
                                   .callbacks = {.model_checkpoint = cnn_model_checkpoint(
                                                     .path = path, .save_best_only = true)}),
                           NULL));
    cnn_model *best = NULL;
    CHECK_OK(cnn_model_load(path, &best));
    int epoch = -1;
    cnn_model_training_position(best, &epoch, NULL);
    CHECK(epoch == 1);
    CHECK(best && r.after[0] && same_weights(best, r.after[0]));
    CHECK(!same_weights(m, r.after[0]));
    cnn_model_free(best);
    /* Keras's verbose lines: the first improvement is "from None" */
    char want[400], first[32] = "";
    snprintf(want, sizeof want, ", saving model to %s", path);
    const char *tail = strstr(r.line[0], want);
    CHECK(strncmp(r.line[0], "Epoch 1: val_loss improved from None to ", 40) == 0 && tail
          && tail[strlen(want)] == '\0');
    if (tail && strlen(r.line[0]) > 40)
        snprintf(first, sizeof first, "%.*s", (int)(tail - r.line[0] - 40), r.line[0] + 40);
    for (int e = 2; e <= 4; e++) {
        snprintf(want, sizeof want, "Epoch %d: val_loss did not improve from %s", e, first);
        if (strcmp(r.line[e - 1], want) != 0) {
            fprintf(stderr, "checkpoint line: got \"%s\", expected \"%s\"\n", r.line[e - 1], want);
            CHECK(0);
        }
    }
    free_recorder(&r);
    /* monitoring val_accuracy (which falls as well): still epoch 1 */
    CHECK_OK(cnn_model_fit(m, d.x, d.y,
                           cnn_fit(.epochs = 6, .initial_epoch = 4, .batch_size = 8,
                                   .validation_x = d.vx, .validation_y = d.vy,
                                   .callbacks = {.model_checkpoint = cnn_model_checkpoint(
                                                     .path = path, .save_best_only = true,
                                                     .monitor = CNN_MONITOR_LOSS)}),
                           NULL));
    /* the training loss improves every epoch: the last one is saved */
    CHECK_OK(cnn_model_load(path, &best));
    cnn_model_training_position(best, &epoch, NULL);
    CHECK(epoch == 6);
    cnn_model_free(best);
    /* every epoch without save_best_only */
    r = (recorder){.m = m};
    CHECK_OK(cnn_model_fit(m, d.x, d.y,
                           cnn_fit(.epochs = 8, .initial_epoch = 6, .batch_size = 8,
                                   .validation_x = d.vx, .validation_y = d.vy,
                                   .progress = record, .progress_user = &r,
                                   .callbacks = {.model_checkpoint = cnn_model_checkpoint(
                                                     .path = path)}),
                           NULL));
    snprintf(want, sizeof want, "Epoch 8: saving model to %s", path);
    CHECK(strcmp(r.line[7], want) == 0);
    free_recorder(&r);
    /* an accuracy, with a best before: the numbers as Keras prints them */
    char line[200];
    cnn_progress p = {.event = CNN_PROGRESS_EPOCH_END, .epoch = 3,
                      .checkpoint = CNN_CHECKPOINT_IMPROVED, .checkpoint_path = "best.cnn",
                      .checkpoint_monitor = CNN_MONITOR_VAL_ACCURACY, .checkpoint_value = 0.98,
                      .checkpoint_best = 0.97};
    CHECK(cnn_progress_checkpoint_line(&p, line, sizeof line) > 0
          && strcmp(line, "Epoch 3: val_accuracy improved from 0.97000 to 0.98000, saving model"
                          " to best.cnn") == 0);
    p.checkpoint = CNN_CHECKPOINT_NOT_IMPROVED, p.checkpoint_value = 0.5;
    cnn_progress_checkpoint_line(&p, line, sizeof line);
    CHECK(strcmp(line, "Epoch 3: val_accuracy did not improve from 0.97000") == 0);
    p.checkpoint = CNN_CHECKPOINT_NONE;
    CHECK(cnn_progress_checkpoint_line(&p, line, sizeof line) == 0 && line[0] == '\0');
    CHECK_OK(cnn_model_load(path, &best));
    cnn_model_training_position(best, &epoch, NULL);
    CHECK(epoch == 8);
    cnn_model_free(best);
    unlink(path);
    cnn_model_free(m);
    free_data(&d);
}

static void test_reduce_lr_on_plateau(void)
{
    data d = make_data(32);
    cnn_model *m = small_model(0.4f);
    cnn_history *h = NULL;
    /* val_loss worsens from epoch 2 on: with patience 1 the rate halves
     * after epochs 2, 3 and 4, down to min_lr */
    CHECK_OK(cnn_model_fit(m, d.x, d.y,
                           cnn_fit(.epochs = 5, .batch_size = 8, .validation_x = d.vx,
                                   .validation_y = d.vy,
                                   .callbacks = {.reduce_lr_on_plateau = cnn_reduce_lr_on_plateau(
                                                     .factor = 0.5f, .patience = 1,
                                                     .min_lr = 0.06f)}),
                           &h));
    cnn_compile_config cfg;
    CHECK_OK(cnn_model_compile_config(m, &cfg));
    CHECK(fabsf(cfg.optimizer.learning_rate - 0.06f) < 1e-7f);
    /* the rate each epoch's updates used */
    CHECK(h && h->epochs == 5 && fabs(h->learning_rate[0] - 0.4) < 1e-7
          && fabs(h->learning_rate[1] - 0.4) < 1e-7 && fabs(h->learning_rate[2] - 0.2) < 1e-7
          && fabs(h->learning_rate[3] - 0.1) < 1e-7 && fabs(h->learning_rate[4] - 0.06) < 1e-7);
    cnn_history_free(h);
    /* cooldown 2 (Keras counts the cooldown down before it checks, so 2 is
     * one epoch of rest): reductions after epochs 2 and 4 */
    cnn_model_free(m);
    m = small_model(0.4f);
    CHECK_OK(cnn_model_fit(m, d.x, d.y,
                           cnn_fit(.epochs = 5, .batch_size = 8, .validation_x = d.vx,
                                   .validation_y = d.vy,
                                   .callbacks = {.reduce_lr_on_plateau = cnn_reduce_lr_on_plateau(
                                                     .factor = 0.5f, .patience = 1,
                                                     .cooldown = 2)}),
                           &h));
    CHECK(h && fabs(h->learning_rate[2] - 0.2) < 1e-7 && fabs(h->learning_rate[3] - 0.2) < 1e-7
          && fabs(h->learning_rate[4] - 0.1) < 1e-7);
    cnn_history_free(h);
    cnn_model_free(m);
    free_data(&d);
}

/* TerminateOnNaN is always on: a diverging run stops before the update
 * that would have put NaN or infinity into the weights. */
static void test_terminate_on_nan(void)
{
    data d = make_data(32);
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(4, 4, 1)));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 8, .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 1)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_MSE,
                                              .optimizer = cnn_sgd(.learning_rate = 1e6f))));
    CHECK(cnn_model_fit(m, d.x, d.y, cnn_fit(.epochs = 50, .batch_size = 4), NULL)
          == CNN_ERR_NUMERIC);
    float *w = copy_weights(m);
    bool finite = true;
    for (int64_t i = 0; i < cnn_model_param_count(m); i++)
        finite = finite && isfinite(w[i]);
    CHECK(finite);
    free(w);
    cnn_model_free(m);
    free_data(&d);
}

static void test_schedules(void)
{
    cnn_lr_schedule step = {.kind = CNN_LR_STEP, .decay_steps = 10, .decay_rate = 0.5f};
    cnn_lr_schedule expo = {.kind = CNN_LR_EXPONENTIAL, .decay_steps = 10, .decay_rate = 0.5f};
    cnn_lr_schedule cosine = {.kind = CNN_LR_COSINE, .alpha = 0.1f};
    CHECK(cnn_lr_schedule_rate(&step, 1.0, 9, 0) == 1.0);
    CHECK(cnn_lr_schedule_rate(&step, 1.0, 10, 0) == 0.5);
    CHECK(fabs(cnn_lr_schedule_rate(&step, 1.0, 25, 0) - 0.25) < 1e-12);
    CHECK(fabs(cnn_lr_schedule_rate(&expo, 1.0, 5, 0) - sqrt(0.5)) < 1e-12);
    CHECK(fabs(cnn_lr_schedule_rate(&cosine, 1.0, 0, 100) - 1.0) < 1e-7);
    CHECK(fabs(cnn_lr_schedule_rate(&cosine, 1.0, 50, 100) - 0.55) < 1e-7);
    CHECK(fabs(cnn_lr_schedule_rate(&cosine, 1.0, 100, 100) - 0.1) < 1e-7);
    CHECK(fabs(cnn_lr_schedule_rate(&cosine, 1.0, 300, 100) - 0.1) < 1e-7);

    /* in fit: 4 steps per epoch, the rate halves every 4 steps */
    data d = make_data(32);
    cnn_model *m = small_model(0.4f);
    cnn_history *h = NULL;
    CHECK_OK(cnn_model_fit(m, d.x, d.y,
                           cnn_fit(.epochs = 3, .batch_size = 8,
                                   .lr_schedule = {.kind = CNN_LR_STEP, .decay_steps = 4,
                                                   .decay_rate = 0.5f}),
                           &h));
    /* the last update of epoch e is step 4e - 1 (0-based) */
    CHECK(h && fabs(h->learning_rate[0] - 0.4) < 1e-7 && fabs(h->learning_rate[1] - 0.2) < 1e-7
          && fabs(h->learning_rate[2] - 0.1) < 1e-7);
    cnn_history_free(h);
    CHECK_FAILS(cnn_model_fit(m, d.x, d.y,
                              cnn_fit(.lr_schedule = {.kind = CNN_LR_EXPONENTIAL}), NULL),
                CNN_ERR_INVALID_ARGUMENT, "decay_steps must be >= 1");
    cnn_model_free(m);
    free_data(&d);
}

/* One SGD step: w1 = w0 - lr (g + 2 l2 w0), and evaluate's loss includes
 * l2 sum(w^2). */
static void test_l2(void)
{
    data d = make_data(8);
    const float lr = 0.1f, l2 = 0.05f;
    cnn_model *a = NULL, *b = NULL;
    for (int k = 0; k < 2; k++) {
        cnn_model **m = k ? &b : &a;
        CHECK_OK(cnn_model_create(m, cnn_shape_hwc(4, 4, 1)));
        CHECK_OK(cnn_model_set_threads(*m, 1));
        CHECK_OK(cnn_model_add_flatten(*m, cnn_flatten()));
        CHECK_OK(cnn_model_add_dense(*m, cnn_dense(.units = 2, .kernel_l2 = k ? l2 : 0,
                                                   .activation = CNN_ACTIVATION_SOFTMAX)));
        CHECK_OK(cnn_model_compile(*m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                                   .optimizer = cnn_sgd(.learning_rate = lr))));
    }
    int64_t n;
    float *wa = cnn_model_layer_weights(a, 1, 0, &n), *wb = cnn_model_layer_weights(b, 1, 0, NULL);
    CHECK(wa && wb && memcmp(wa, wb, (size_t)n * sizeof(float)) == 0);
    double la, lb, sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)wa[i] * wa[i];
    CHECK_OK(cnn_model_evaluate(a, d.x, d.y, 0, &la, NULL));
    CHECK_OK(cnn_model_evaluate(b, d.x, d.y, 0, &lb, NULL));
    CHECK(fabs(lb - la - l2 * sum) < 1e-6);
    float *w0 = malloc((size_t)n * sizeof(float)), *g = malloc((size_t)n * sizeof(float));
    memcpy(w0, wb, (size_t)n * sizeof(float));
    double loss;
    cnn_model_zero_gradients(b);
    CHECK_OK(cnn_model_forward(b, d.x, true, NULL));
    CHECK_OK(cnn_model_backward(b, d.y, &loss, NULL));
    memcpy(g, cnn_model_layer_gradients(b, 1, 0, NULL), (size_t)n * sizeof(float));
    CHECK_OK(cnn_model_apply_gradients(b));
    float *want = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        want[i] = w0[i] - lr * (g[i] + 2 * l2 * w0[i]);
    test_close("l2 sgd step", wb, want, (long)n, 1e-7, 1e-6);
    free(w0);
    free(g);
    free(want);
    cnn_model_free(a);
    cnn_model_free(b);
    free_data(&d);
}

/* Backward adds to the gradients it finds (cnn.h), whether the previous
 * backward or the caller put them there; only after cnn_model_zero_gradients
 * (or a step) may a layer overwrite them (Dense does, not reading zeros). */
static void test_gradients_accumulate(void)
{
    data d = make_data(8);
    cnn_model *m = small_model(0.1f);
    int64_t n;
    double loss;
    cnn_model_zero_gradients(m);
    CHECK_OK(cnn_model_forward(m, d.x, true, NULL));
    CHECK_OK(cnn_model_backward(m, d.y, &loss, NULL));
    float *g = cnn_model_layer_gradients(m, 1, 0, &n);
    float *once = malloc((size_t)n * sizeof(float));
    memcpy(once, g, (size_t)n * sizeof(float));
    bool nonzero = false;
    for (int64_t i = 0; i < n; i++)
        nonzero |= once[i] != 0;
    CHECK(nonzero);
    /* a second backward without clearing: twice the first, exactly */
    CHECK_OK(cnn_model_forward(m, d.x, true, NULL));
    CHECK_OK(cnn_model_backward(m, d.y, &loss, NULL));
    int twice = 0;
    for (int64_t i = 0; i < n; i++)
        twice += g[i] == 2 * once[i];
    CHECK(twice == n);
    /* cleared, then written by the caller: backward adds to what it wrote */
    cnn_model_zero_gradients(m);
    g = cnn_model_layer_gradients(m, 1, 0, NULL);
    for (int64_t i = 0; i < n; i++)
        g[i] = 1.0f;
    CHECK_OK(cnn_model_forward(m, d.x, true, NULL));
    CHECK_OK(cnn_model_backward(m, d.y, &loss, NULL));
    int added = 0;
    for (int64_t i = 0; i < n; i++)
        added += g[i] == 1.0f + once[i];
    CHECK(added == n);
    free(once);
    cnn_model_free(m);
    free_data(&d);
}

/* clipnorm bounds each tensor's step, global_clipnorm all of them. */
static void test_clipping(void)
{
    data d = make_data(8);
    for (int global = 0; global < 2; global++) {
        const float lr = 1.0f, clip = 1e-3f;
        cnn_model *m = NULL;
        CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(4, 4, 1)));
        CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
        CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 2, .activation = CNN_ACTIVATION_SOFTMAX)));
        cnn_optimizer opt = cnn_sgd(.learning_rate = lr);
        if (global)
            opt.global_clipnorm = clip;
        else
            opt.clipnorm = clip;
        CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                                  .optimizer = opt)));
        float *before = copy_weights(m);
        CHECK_OK(cnn_model_fit(m, d.x, d.y, cnn_fit(.batch_size = 8, .no_shuffle = true), NULL));
        float *after = copy_weights(m);
        /* kernel (16 x 2 = 32 values) then bias (2) */
        double kernel = 0, bias = 0;
        for (int i = 0; i < 34; i++)
            *(i < 32 ? &kernel : &bias) += ((double)after[i] - before[i]) * (after[i] - before[i]);
        if (global)
            CHECK(fabs(sqrt(kernel + bias) - lr * clip) < 1e-6);
        else
            CHECK(fabs(sqrt(kernel) - lr * clip) < 1e-6 && fabs(sqrt(bias) - lr * clip) < 1e-6);
        free(before);
        free(after);
        cnn_model_free(m);
    }
    cnn_model *m = small_model(0.1f);
    CHECK_FAILS(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_MSE,
                                                 .optimizer = cnn_sgd(.clipnorm = 1,
                                                                      .global_clipnorm = 1))),
                CNN_ERR_INVALID_ARGUMENT, "give clipnorm or global_clipnorm, not both");
    cnn_model_free(m);
    free_data(&d);
}

/* The augmentation itself: a flip mirrors, a shift moves with zero fill,
 * every image's draw depends only on (seed, epoch, step, index). */
static void test_augment_images(void)
{
    enum { N = 64, H = 5, W = 6, C = 2, SIZE = H * W * C };
    static float src[N * SIZE], img[N * SIZE], again[N * SIZE], scratch[SIZE];
    for (int i = 0; i < N * SIZE; i++)
        src[i] = (float)(i % 97) + 1;
    const cnn_shape s = cnn_shape_hwc(H, W, C);

    memcpy(img, src, sizeof img);
    cnn_augment_batch(&(cnn_augmentation){.horizontal_flip = true}, 9, 1, 3, img, N, s, scratch);
    int flipped = 0, wrong = 0;
    for (int n = 0; n < N; n++) {
        const float *a = src + n * SIZE, *b = img + n * SIZE;
        bool same = memcmp(a, b, SIZE * sizeof(float)) == 0, mirror = true;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < C; c++)
                    mirror = mirror && b[(y * W + x) * C + c] == a[(y * W + W - 1 - x) * C + c];
        flipped += mirror && !same;
        wrong += !same && !mirror;
    }
    CHECK(wrong == 0 && flipped > N / 4 && flipped < 3 * N / 4);

    memcpy(img, src, sizeof img);
    cnn_augment_batch(&(cnn_augmentation){.max_shift = 2}, 9, 1, 3, img, N, s, scratch);
    wrong = 0;
    int moved = 0;
    for (int n = 0; n < N; n++) {
        const float *a = src + n * SIZE, *b = img + n * SIZE;
        bool found = false;
        for (int dy = -2; dy <= 2 && !found; dy++)
            for (int dx = -2; dx <= 2 && !found; dx++) {
                bool match = true;
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++)
                        for (int c = 0; c < C; c++) {
                            int sy = y - dy, sx = x - dx;
                            float v = sy < 0 || sy >= H || sx < 0 || sx >= W
                                          ? 0.0f : a[(sy * W + sx) * C + c];
                            match = match && b[(y * W + x) * C + c] == v;
                        }
                if (match) {
                    found = true;
                    moved += dy || dx;
                }
            }
        wrong += !found;
    }
    CHECK(wrong == 0 && moved > N / 2);

    /* rotation: values stay within the input's range, the centre pixel of
     * an odd image is a fixed point of a constant image */
    cnn_augmentation all = {.horizontal_flip = true, .max_shift = 1, .max_rotation = 15};
    memcpy(img, src, sizeof img);
    cnn_augment_batch(&all, 9, 2, 5, img, N, s, scratch);
    memcpy(again, src, sizeof again);
    cnn_augment_batch(&all, 9, 2, 5, again, N, s, scratch);
    CHECK(memcmp(img, again, sizeof img) == 0);
    bool in_range = true;
    for (int i = 0; i < N * SIZE; i++)
        in_range = in_range && img[i] >= 0 && img[i] <= 97;
    CHECK(in_range);
    /* another step, epoch or seed draws differently */
    memcpy(again, src, sizeof again);
    cnn_augment_batch(&all, 9, 2, 6, again, N, s, scratch);
    CHECK(memcmp(img, again, sizeof img) != 0);
    memcpy(again, src, sizeof again);
    cnn_augment_batch(&all, 9, 3, 5, again, N, s, scratch);
    CHECK(memcmp(img, again, sizeof img) != 0);
    memcpy(again, src, sizeof again);
    cnn_augment_batch(&all, 10, 2, 5, again, N, s, scratch);
    CHECK(memcmp(img, again, sizeof img) != 0);
}

static bool stop_after_5(const cnn_progress *p, void *user)
{
    (void)user;
    return !(p->event == CNN_PROGRESS_BATCH_END && p->epoch == 2 && p->step == 5);
}

/* fit with augmentation: the same seed gives the same weights, the data set
 * is not changed, and a run interrupted mid-epoch and resumed from its saved
 * file ends with the same weights as an uninterrupted one. */
static void test_augmented_fit(void)
{
    enum { N = 48 };
    cnn_tensor *x = tensor(4, (int64_t[]){N, 6, 6, 1}), *y = tensor(1, (int64_t[]){N});
    for (int i = 0; i < N * 36; i++)
        x->data[i] = uniform();
    for (int i = 0; i < N; i++)
        y->data[i] = (float)(i % 3);
    cnn_tensor *x0 = NULL;
    CHECK_OK(cnn_tensor_slice(x, 0, N, &x0));
    cnn_augmentation aug = {.horizontal_flip = true, .max_shift = 1, .max_rotation = 10};
    float *w[3] = {0};
    for (int run = 0; run < 3; run++) {
        cnn_model *m = NULL;
        CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(6, 6, 1)));
        CHECK_OK(cnn_model_set_seed(m, 3));
        CHECK_OK(cnn_model_set_threads(m, 2));
        CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {3, 3},
                                                    .activation = CNN_ACTIVATION_RELU)));
        CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization()));
        CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
        CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX)));
        CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                                  .optimizer = cnn_adam())));
        cnn_fit_config fit = cnn_fit(.epochs = 3, .batch_size = 4, .augmentation = aug,
                                     .seed = 11,
                                     .lr_schedule = {.kind = CNN_LR_COSINE});
        if (run < 2) {
            CHECK_OK(cnn_model_fit(m, x, y, fit, NULL));
        } else {
            /* interrupted in epoch 2, saved, loaded, resumed */
            fit.progress = stop_after_5;
            CHECK(cnn_model_fit(m, x, y, fit, NULL) == CNN_ERR_INTERRUPTED);
            char path[] = "/tmp/cnn_test_resume_XXXXXX";
            int fd = mkstemp(path);
            if (fd >= 0)
                close(fd);
            CHECK_OK(cnn_model_save(m, path));
            cnn_model_free(m);
            m = NULL;
            CHECK_OK(cnn_model_load(path, &m));
            unlink(path);
            if (!m)
                break;
            CHECK_OK(cnn_model_set_threads(m, 2));
            fit.progress = NULL;
            cnn_model_training_position(m, &fit.initial_epoch, &fit.initial_step);
            CHECK(fit.initial_epoch == 1 && fit.initial_step == 5);
            CHECK_OK(cnn_model_fit(m, x, y, fit, NULL));
        }
        w[run] = copy_weights(m);
        if (run == 0) /* the data set is untouched */
            CHECK(memcmp(x->data, x0->data, (size_t)cnn_tensor_size(x) * sizeof(float)) == 0);
        cnn_model_free(m);
    }
    int64_t n = 3 * 3 * 3 + 3 + 4 * 3 + 16 * 3 * 3 + 3; /* conv, bn, dense */
    CHECK(w[0] && w[1] && memcmp(w[0], w[1], (size_t)n * sizeof(float)) == 0);
    CHECK(w[0] && w[2] && memcmp(w[0], w[2], (size_t)n * sizeof(float)) == 0);
    for (int i = 0; i < 3; i++)
        free(w[i]);
    /* images only */
    cnn_model *flat = NULL;
    CHECK_OK(cnn_model_create(&flat, cnn_shape_flat(36)));
    CHECK_OK(cnn_model_add_dense(flat, cnn_dense(.units = 3)));
    CHECK_OK(cnn_model_compile(flat, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)));
    cnn_tensor *xf = tensor(2, (int64_t[]){N, 36});
    CHECK_FAILS(cnn_model_fit(flat, xf, y, cnn_fit(.augmentation = aug), NULL),
                CNN_ERR_INVALID_ARGUMENT, "augmentation needs image input");
    cnn_tensor_free(xf);
    cnn_model_free(flat);
    cnn_tensor_free(x0);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

int main(void)
{
    test_early_stopping();
    test_model_checkpoint();
    test_reduce_lr_on_plateau();
    test_terminate_on_nan();
    test_schedules();
    test_l2();
    test_gradients_accumulate();
    test_clipping();
    test_augment_images();
    test_augmented_fit();
    return test_finish("test_training");
}
