/* The exact numbers of small training runs, pinned. Other tests compare
 * one run with another (resumed = uninterrupted, 1 thread = n threads,
 * MPI = one process); these compare with the bytes fit gave when the
 * hashes were recorded, so a refactoring of the training loop that moves a
 * random draw, a callback or a report shows here.
 *
 * Each run hashes (FNV-1a, 64 bits) the final weights, the history and
 * every progress report in order (all fields but the elapsed time). The
 * runs cover: validation split, augmentation, dropout, batch
 * normalisation, L2, momentum, ReduceLROnPlateau and EarlyStopping with
 * restore_best_weights; a cosine schedule with clipping and a short last
 * step, also interrupted mid-epoch and resumed; validation data given,
 * no shuffling, RMSprop.
 *
 * The hashes are of this build's float arithmetic: they hold on x86-64
 * with the naive GEMM (the SIMD kernel picked at run time differs between
 * CPUs, and so do its sums); elsewhere only repeatability is checked. A
 * change meant to keep the numbers must keep them; one meant to change
 * them (a new kernel order, a fixed bug) updates them and says so. */
#include <stdlib.h>

#include "kernels/gemm.h"
#include "model/model.h"
#include "test.h"

#if defined(__x86_64__)
#define PINNED 1
#else
#define PINNED 0
#endif

typedef struct {
    uint64_t h;
} fnv;

static void hash_bytes(fnv *f, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        f->h ^= b[i];
        f->h *= 0x100000001b3ull;
    }
}

static void hash_double(fnv *f, double v) { hash_bytes(f, &v, sizeof v); }
static void hash_int(fnv *f, int64_t v) { hash_bytes(f, &v, sizeof v); }

/* Every report but its time, so the order of events is pinned too. */
static bool hash_report(const cnn_progress *p, void *user)
{
    fnv *f = user;
    hash_int(f, p->event);
    hash_int(f, p->epoch);
    hash_int(f, p->epochs);
    hash_int(f, p->step);
    hash_int(f, p->steps);
    hash_double(f, p->loss);
    hash_double(f, p->accuracy);
    hash_double(f, p->val_loss);
    hash_double(f, p->val_accuracy);
    hash_double(f, p->learning_rate);
    hash_int(f, p->checkpoint);
    return true;
}

static void hash_history(fnv *f, const cnn_history *h)
{
    hash_int(f, h->epochs);
    hash_int(f, h->first_epoch);
    hash_int(f, h->stopped_epoch);
    hash_int(f, h->restored_epoch);
    for (int e = 0; e < h->epochs; e++) {
        hash_double(f, h->loss[e]);
        hash_double(f, h->accuracy[e]);
        hash_double(f, h->val_loss[e]);
        hash_double(f, h->val_accuracy[e]);
        hash_double(f, h->learning_rate[e]);
    }
}

static uint32_t lcg = 12345;
static float uniform(void) /* [-1, 1) */
{
    lcg = lcg * 1664525u + 1013904223u;
    return (float)(lcg >> 8) / 8388608.0f - 1.0f;
}

/* n 8x8 images of 3 classes: a class's bright diagonal stripes plus
 * noise, so the loss falls but not to zero. */
static void make_data(int n, cnn_tensor **x, cnn_tensor **y)
{
    CHECK_OK(cnn_tensor_create(x, 4, (int64_t[]){n, 8, 8, 1}));
    CHECK_OK(cnn_tensor_create(y, 1, (int64_t[]){n}));
    for (int i = 0; i < n; i++) {
        int k = (i * 7) % 3;
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < 8; c++)
                (*x)->data[(i * 8 + r) * 8 + c] =
                    ((r + c * (k + 1)) % 3 == 0 ? 0.8f : 0.1f) + 0.4f * uniform();
        (*y)->data[i] = (float)k;
    }
}

static cnn_model *make_model(uint64_t seed, cnn_optimizer opt)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(8, 8, 1)));
    if (!m)
        return NULL;
    CHECK_OK(cnn_model_set_seed(m, seed));
    CHECK_OK(cnn_model_set_threads(m, 1));
    cnn_gemm_ctx_use_naive(m->gemm, true); /* the same sums on every x86-64 CPU */
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                                .activation = CNN_ACTIVATION_RELU,
                                                .kernel_l2 = 0.001f)));
    CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization()));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2})));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_dropout(m, cnn_dropout(.rate = 0.25f)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = opt)));
    return m;
}

/* Trains and returns the hash of reports, history and weights; *weights
 * (if given) receives a copy of the final weights. */
static uint64_t train(cnn_model *m, const cnn_tensor *x, const cnn_tensor *y, cnn_fit_config cfg,
                      cnn_status want, float **weights)
{
    fnv f = {0xcbf29ce484222325ull};
    cnn_history *h = NULL;
    if (!cfg.progress) {
        cfg.progress = hash_report;
        cfg.progress_user = &f;
    }
    cnn_status st = cnn_model_fit(m, x, y, cfg, &h);
    CHECK(st == want);
    if (st != want)
        fprintf(stderr, "fit: %s\n", cnn_last_error());
    if (h)
        hash_history(&f, h);
    cnn_history_free(h);
    hash_bytes(&f, m->params, (size_t)m->n_params * sizeof(float));
    if (weights) {
        *weights = malloc((size_t)m->n_params * sizeof(float));
        if (*weights)
            memcpy(*weights, m->params, (size_t)m->n_params * sizeof(float));
    }
    return f.h;
}

static void check_hash(const char *run, uint64_t got, uint64_t pinned)
{
    if (!PINNED)
        return;
    CHECK(got == pinned);
    if (got != pinned)
        fprintf(stderr, "test_fit_pinned: %s: hash 0x%016llx, pinned 0x%016llx\n", run,
                (unsigned long long)got, (unsigned long long)pinned);
}

/* Validation split, augmentation, ReduceLROnPlateau, EarlyStopping. */
static uint64_t run_callbacks(const cnn_tensor *x, const cnn_tensor *y)
{
    cnn_model *m = make_model(3, cnn_sgd(.learning_rate = 0.02f, .momentum = 0.9f));
    if (!m)
        return 0;
    cnn_fit_config cfg = cnn_fit(
        .epochs = 8, .batch_size = 4, .validation_split = 0.25f, .seed = 9,
        .augmentation = {.horizontal_flip = true, .max_shift = 1, .max_rotation = 15},
        .callbacks = {.early_stopping = cnn_early_stopping(.patience = 3,
                                                           .restore_best_weights = true),
                      .reduce_lr_on_plateau = cnn_reduce_lr_on_plateau(.patience = 1,
                                                                       .factor = 0.5f)});
    uint64_t h = train(m, x, y, cfg, CNN_OK, NULL);
    cnn_model_free(m);
    return h;
}

/* Stops the run in epoch 2 after its fourth step. */
static bool stop_in_epoch_2(const cnn_progress *p, void *user)
{
    (void)user;
    return !(p->event == CNN_PROGRESS_BATCH_END && p->epoch == 2 && p->step == 4);
}

/* A cosine schedule, clipping, a short last step (62 = 8 * 7 + 6); the
 * same run interrupted and resumed gives the same weights. */
static uint64_t run_schedule(const cnn_tensor *x, const cnn_tensor *y)
{
    const cnn_optimizer adam = cnn_adam(.learning_rate = 0.01f, .clipnorm = 0.5f);
    const cnn_fit_config cfg = cnn_fit(.epochs = 3, .batch_size = 8, .seed = 5,
                                       .lr_schedule = {.kind = CNN_LR_COSINE, .alpha = 0.1f});
    cnn_model *m = make_model(4, adam), *r = make_model(4, adam);
    if (!m || !r) {
        cnn_model_free(m);
        cnn_model_free(r);
        return 0;
    }
    float *full = NULL, *resumed = NULL;
    uint64_t h = train(m, x, y, cfg, CNN_OK, &full);
    cnn_fit_config first = cfg;
    first.progress = stop_in_epoch_2;
    train(r, x, y, first, CNN_ERR_INTERRUPTED, NULL);
    cnn_fit_config rest = cfg;
    cnn_model_training_position(r, &rest.initial_epoch, &rest.initial_step);
    CHECK(rest.initial_epoch == 1 && rest.initial_step == 4);
    train(r, x, y, rest, CNN_OK, &resumed);
    CHECK(full && resumed
          && memcmp(full, resumed, (size_t)m->n_params * sizeof(float)) == 0);
    free(full);
    free(resumed);
    cnn_model_free(m);
    cnn_model_free(r);
    return h;
}

/* Validation data given, no shuffling, RMSprop. */
static uint64_t run_validation_data(const cnn_tensor *x, const cnn_tensor *y,
                                    const cnn_tensor *vx, const cnn_tensor *vy)
{
    cnn_model *m = make_model(5, cnn_rmsprop(.learning_rate = 0.003f, .momentum = 0.5f));
    if (!m)
        return 0;
    uint64_t h = train(m, x, y,
                       cnn_fit(.epochs = 2, .batch_size = 16, .no_shuffle = true,
                               .validation_x = vx, .validation_y = vy),
                       CNN_OK, NULL);
    cnn_model_free(m);
    return h;
}

int main(void)
{
    cnn_tensor *x = NULL, *y = NULL, *vx = NULL, *vy = NULL;
    make_data(62, &x, &y);
    make_data(20, &vx, &vy);
    if (!x || !y || !vx || !vy)
        return 1;
    const uint64_t a = run_callbacks(x, y), b = run_schedule(x, y),
                   c = run_validation_data(x, y, vx, vy);
    /* repeatable within one build, pinned or not */
    CHECK(run_callbacks(x, y) == a);
    CHECK(run_validation_data(x, y, vx, vy) == c);
    check_hash("callbacks", a, 0x91ac08efacffcaf6ull);
    check_hash("schedule", b, 0x7b33f144fd99ceb5ull);
    check_hash("validation data", c, 0xde2aa7a9087382cfull);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_tensor_free(vx);
    cnn_tensor_free(vy);
    return test_finish("test_fit_pinned");
}
