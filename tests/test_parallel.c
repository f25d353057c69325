/* Data-parallel fit (cnn_parallel) without MPI: the ranks are threads of
 * this process and the hooks a loopback over shared memory, so the core's
 * side - sharding, gradient sums, metrics, the start-up broadcast, the
 * settings check, BatchNormalization's moving statistics, agreed stops - is
 * tested wherever the library builds. tests/test_mpi.sh runs the real
 * thing (mpirun, cnn-mpi). */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"

#define MAX_RANKS 4

/* ---- The loopback: every hook is a rendezvous of all ranks ---------------- */

typedef struct {
    int size;
    pthread_barrier_t barrier;
    void *slot[MAX_RANKS];
    int64_t count[MAX_RANKS];
} loopback;

typedef struct {
    loopback *lb;
    int rank;
} loop_rank;

/* Sums in rank order, so every rank gets the same bits (as MPI does). */
#define LOOP_SUM(T, name)                                                          \
    static cnn_status name(void *ctx, T *values, int64_t n)                        \
    {                                                                              \
        loop_rank *c = ctx;                                                        \
        loopback *lb = c->lb;                                                      \
        lb->slot[c->rank] = values;                                                \
        lb->count[c->rank] = n;                                                    \
        pthread_barrier_wait(&lb->barrier);                                        \
        bool same = true;                                                          \
        for (int r = 0; r < lb->size; r++)                                         \
            same = same && lb->count[r] == n;                                      \
        T *sum = same ? malloc((size_t)(n ? n : 1) * sizeof *sum) : NULL;          \
        for (int64_t i = 0; sum && i < n; i++) {                                   \
            T s = 0;                                                               \
            for (int r = 0; r < lb->size; r++)                                     \
                s += ((T *)lb->slot[r])[i];                                        \
            sum[i] = s;                                                            \
        }                                                                          \
        pthread_barrier_wait(&lb->barrier);                                        \
        if (sum)                                                                   \
            memcpy(values, sum, (size_t)n * sizeof *sum);                          \
        free(sum);                                                                 \
        return sum || !same ? (same ? CNN_OK : CNN_ERR_STATE) : CNN_ERR_NO_MEMORY; \
    }
LOOP_SUM(float, loop_sum)
LOOP_SUM(double, loop_sum_double)

static cnn_status loop_broadcast(void *ctx, float *values, int64_t n)
{
    loop_rank *c = ctx;
    loopback *lb = c->lb;
    lb->slot[c->rank] = values;
    lb->count[c->rank] = n;
    pthread_barrier_wait(&lb->barrier);
    bool same = lb->count[0] == n;
    if (c->rank != 0 && same)
        memcpy(values, lb->slot[0], (size_t)n * sizeof *values);
    pthread_barrier_wait(&lb->barrier);
    return same ? CNN_OK : CNN_ERR_STATE;
}

/* ---- Models and data ----------------------------------------------------- */

static uint32_t lcg = 1;
static float uniform(void) /* [-1, 1) */
{
    lcg = lcg * 1664525u + 1013904223u;
    return (float)(lcg >> 8) / 8388608.0f - 1.0f;
}

/* Three classes of 6x6 images: a bright row, column or diagonal. */
static void make_data(int n, cnn_tensor **x, cnn_tensor **y)
{
    cnn_tensor_create(x, 4, (int64_t[]){n, 6, 6, 1});
    cnn_tensor_create(y, 1, (int64_t[]){n});
    for (int i = 0; i < n; i++) {
        int k = i % 3, at = (i / 3) % 6;
        for (int r = 0; r < 6; r++)
            for (int c = 0; c < 6; c++) {
                bool on = k == 0 ? r == at : k == 1 ? c == at : r == c;
                (*x)->data[(i * 6 + r) * 6 + c] = (on ? 0.8f : 0.1f) + 0.1f * uniform();
            }
        (*y)->data[i] = (float)k;
    }
}

enum { PLAIN, BATCH_NORM };

static cnn_model *make_model(int kind, uint64_t seed, cnn_optimizer opt)
{
    cnn_model *m = NULL;
    cnn_model_create(&m, cnn_shape_hwc(6, 6, 1));
    cnn_model_set_seed(m, seed);
    cnn_model_set_threads(m, 1);
    cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                       .activation = kind == PLAIN ? CNN_ACTIVATION_TANH
                                                                   : CNN_ACTIVATION_LINEAR));
    if (kind == BATCH_NORM) {
        cnn_model_add_batch_normalization(m, cnn_batch_normalization());
        cnn_model_add_activation(m, cnn_activation_layer(.activation = CNN_ACTIVATION_RELU));
    }
    cnn_model_add_flatten(m, cnn_flatten());
    cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX,
                                     .kernel_l2 = 0.001f));
    cnn_status st = cnn_model_compile(
        m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, .optimizer = opt));
    if (st) {
        fprintf(stderr, "make_model: %s\n", cnn_last_error());
        cnn_model_free(m);
        return NULL;
    }
    return m;
}

/* Every weight of a model, in order. */
static float *weights(cnn_model *m, int64_t *n)
{
    *n = cnn_model_param_count(m);
    float *w = malloc((size_t)*n * sizeof *w);
    int64_t off = 0;
    for (int i = 0; i < cnn_model_layer_count(m); i++)
        for (int k = 0; k < CNN_MAX_LAYER_WEIGHTS; k++) {
            int64_t count = 0;
            const float *v = cnn_model_layer_weights(m, i, k, &count);
            if (v) {
                memcpy(w + off, v, (size_t)count * sizeof *w);
                off += count;
            }
        }
    return w;
}

/* ---- One rank: a thread running fit -------------------------------------- */

typedef struct {
    loop_rank hooks_ctx;
    cnn_parallel hooks;
    cnn_model *m;
    const cnn_tensor *x, *y, *vx, *vy;
    cnn_fit_config cfg;
    int stop_at_step;      /* the progress callback returns false there (0: never) */
    cnn_status st;
    char error[512];
    cnn_history *h;
    int reports;           /* progress calls seen */
} rank_run;

static bool on_progress(const cnn_progress *p, void *user)
{
    rank_run *r = user;
    r->reports++;
    return !(r->stop_at_step && p->event == CNN_PROGRESS_BATCH_END && p->step == r->stop_at_step);
}

static void *rank_main(void *arg)
{
    rank_run *r = arg;
    r->cfg.parallel = &r->hooks;
    r->cfg.validation_x = r->vx;
    r->cfg.validation_y = r->vy;
    r->cfg.progress = on_progress;
    r->cfg.progress_user = r;
    r->st = cnn_model_fit(r->m, r->x, r->y, r->cfg, &r->h);
    snprintf(r->error, sizeof r->error, "%s", r->st ? cnn_last_error() : "");
    return NULL;
}

/* Runs fit on size ranks (threads); models[r], cfgs[r], stops[r] per rank. */
static void run_ranks(int size, rank_run *runs)
{
    loopback lb = {.size = size};
    pthread_barrier_init(&lb.barrier, NULL, (unsigned)size);
    pthread_t t[MAX_RANKS];
    for (int r = 0; r < size; r++) {
        runs[r].hooks_ctx = (loop_rank){&lb, r};
        runs[r].hooks = (cnn_parallel){.rank = r, .size = size, .allreduce_sum = loop_sum,
                                       .allreduce_sum_double = loop_sum_double,
                                       .broadcast = loop_broadcast, .ctx = &runs[r].hooks_ctx};
        pthread_create(&t[r], NULL, rank_main, &runs[r]);
    }
    for (int r = 0; r < size; r++)
        pthread_join(t[r], NULL);
    pthread_barrier_destroy(&lb.barrier);
}

static void free_runs(int size, rank_run *runs)
{
    for (int r = 0; r < size; r++) {
        cnn_model_free(runs[r].m);
        cnn_history_free(runs[r].h);
    }
}

/* size ranks with batch b against one process with batch size * b: the
 * same weights (within float rounding: the sums are ordered differently)
 * and the same history. Ranks start from different seeds: rank 0's
 * weights are everyone's. */
static void check_equivalent(int size, int b, int n, cnn_optimizer opt, bool augment,
                             const char *what)
{
    cnn_tensor *x, *y, *vx, *vy;
    make_data(n, &x, &y);
    make_data(n / 2 + 1, &vx, &vy);
    cnn_fit_config cfg = cnn_fit(.epochs = 3, .batch_size = b, .seed = 11);
    if (augment) /* each image transformed as in one process's batch */
        cfg.augmentation = (cnn_augmentation){.horizontal_flip = true, .max_shift = 1,
                                              .max_rotation = 10};

    cnn_model *one = make_model(PLAIN, 5, opt);
    cnn_fit_config c1 = cfg;
    c1.batch_size = size * b;
    c1.validation_x = vx;
    c1.validation_y = vy;
    cnn_history *h1 = NULL;
    CHECK_OK(cnn_model_fit(one, x, y, c1, &h1));

    rank_run runs[MAX_RANKS] = {0};
    for (int r = 0; r < size; r++)
        runs[r] = (rank_run){.m = make_model(PLAIN, 5 + (uint64_t)r, opt), .x = x, .y = y,
                             .vx = vx, .vy = vy, .cfg = cfg};
    run_ranks(size, runs);
    int64_t n1, nr;
    float *w1 = weights(one, &n1);
    for (int r = 0; r < size; r++) {
        if (runs[r].st)
            fprintf(stderr, "%s: rank %d: %s\n", what, r, runs[r].error);
        CHECK(runs[r].st == CNN_OK);
        float *wr = weights(runs[r].m, &nr);
        CHECK(nr == n1);
        if (nr == n1) {
            char name[160];
            snprintf(name, sizeof name, "%s: rank %d of %d (batch %d) vs one (batch %d)", what,
                     r, size, b, size * b);
            CHECK(test_close(name, wr, w1, (long)n1, 1e-7, 1e-5));
        }
        free(wr);
        cnn_history *h = runs[r].h;
        CHECK(h && h1 && h->epochs == h1->epochs);
        for (int e = 0; h && h1 && e < h->epochs && e < h1->epochs; e++) {
            CHECK(fabs(h->loss[e] - h1->loss[e]) <= 1e-5 * fabs(h1->loss[e]));
            CHECK(h->accuracy[e] == h1->accuracy[e]);
            CHECK(fabs(h->val_loss[e] - h1->val_loss[e]) <= 1e-5 * fabs(h1->val_loss[e]));
            CHECK(h->val_accuracy[e] == h1->val_accuracy[e]);
        }
    }
    free(w1);
    free_runs(size, runs);
    cnn_history_free(h1);
    cnn_model_free(one);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_tensor_free(vx);
    cnn_tensor_free(vy);
}

/* Every rank must call fit alike: one rank's other batch size stops all. */
static void test_settings_differ(void)
{
    cnn_tensor *x, *y;
    make_data(30, &x, &y);
    rank_run runs[2] = {0};
    for (int r = 0; r < 2; r++)
        runs[r] = (rank_run){.m = make_model(PLAIN, 5, cnn_sgd()), .x = x, .y = y,
                             .cfg = cnn_fit(.epochs = 1, .batch_size = 4 + r)};
    run_ranks(2, runs);
    for (int r = 0; r < 2; r++) {
        CHECK(runs[r].st == CNN_ERR_INVALID_ARGUMENT);
        CHECK(strstr(runs[r].error, "fit settings of 1 rank differ") != NULL);
    }
    free_runs(2, runs);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

/* BatchNormalization: each rank normalises with its own rows' statistics,
 * and the moving statistics are averaged at every epoch's end, so every
 * rank ends with the same weights (fit checks it) - those of rank 0. */
static void test_batch_norm(void)
{
    cnn_tensor *x, *y;
    make_data(40, &x, &y);
    rank_run runs[2] = {0};
    for (int r = 0; r < 2; r++)
        runs[r] = (rank_run){.m = make_model(BATCH_NORM, 5, cnn_adam()), .x = x, .y = y,
                             .cfg = cnn_fit(.epochs = 2, .batch_size = 5)};
    run_ranks(2, runs);
    int64_t n0, n1;
    for (int r = 0; r < 2; r++) {
        if (runs[r].st)
            fprintf(stderr, "batch norm: rank %d: %s\n", r, runs[r].error);
        CHECK(runs[r].st == CNN_OK);
    }
    float *w0 = weights(runs[0].m, &n0), *w1 = weights(runs[1].m, &n1);
    CHECK(n0 == n1 && memcmp(w0, w1, (size_t)n0 * sizeof *w0) == 0);
    /* the moving mean moved away from its initial zeros */
    int64_t count;
    const float *moving = cnn_model_layer_weights(runs[0].m, 1, 2, &count);
    CHECK(moving && moving[0] != 0);
    free(w0);
    free(w1);
    free_runs(2, runs);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

/* One rank's progress callback asks to stop: every rank stops after the
 * same step, at the same training position. */
static void test_agreed_stop(void)
{
    cnn_tensor *x, *y;
    make_data(64, &x, &y);
    rank_run runs[3] = {0};
    for (int r = 0; r < 3; r++)
        runs[r] = (rank_run){.m = make_model(PLAIN, 5, cnn_sgd()), .x = x, .y = y,
                             .cfg = cnn_fit(.epochs = 2, .batch_size = 4),
                             .stop_at_step = r == 2 ? 3 : 0};
    run_ranks(3, runs);
    for (int r = 0; r < 3; r++) {
        int epoch;
        int64_t step;
        cnn_model_training_position(runs[r].m, &epoch, &step);
        CHECK(runs[r].st == CNN_ERR_INTERRUPTED);
        CHECK(epoch == 0 && step == 3);
    }
    free_runs(3, runs);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

/* cnn_model_checksum is the CRC-32 cnn_model_save writes last, and
 * changes with a layer setting the summary does not show. */
static void test_checksum(void)
{
    cnn_model *m = make_model(PLAIN, 5, cnn_sgd()), *other = make_model(PLAIN, 5, cnn_sgd());
    cnn_model *relu = NULL;
    cnn_model_create(&relu, cnn_shape_hwc(6, 6, 1));
    cnn_model_set_seed(relu, 5);
    cnn_model_add_conv2d(relu, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                          .activation = CNN_ACTIVATION_RELU));
    cnn_model_add_flatten(relu, cnn_flatten());
    cnn_model_add_dense(relu, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX,
                                        .kernel_l2 = 0.001f));
    cnn_model_compile(relu, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                        .optimizer = cnn_sgd()));
    uint32_t a = 0, b = 1, c = 0;
    CHECK_OK(cnn_model_checksum(m, &a));
    CHECK_OK(cnn_model_checksum(other, &b));
    CHECK_OK(cnn_model_checksum(relu, &c));
    CHECK(a == b);
    CHECK(a != c);
    char path[] = "/tmp/cnn_test_parallel_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        close(fd);
        CHECK_OK(cnn_model_save(m, path));
        unsigned char tail[4] = {0};
        FILE *f = fopen(path, "rb");
        CHECK(f && fseek(f, -4, SEEK_END) == 0 && fread(tail, 1, 4, f) == 4);
        if (f)
            fclose(f);
        CHECK(((uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16
               | (uint32_t)tail[3] << 24) == a);
        unlink(path);
    }
    CHECK_FAILS(cnn_model_checksum(NULL, &a), CNN_ERR_INVALID_ARGUMENT, "checksum");
    cnn_model_free(m);
    cnn_model_free(other);
    cnn_model_free(relu);
}

int main(void)
{
    test_checksum();
    check_equivalent(2, 4, 37, cnn_sgd(.learning_rate = 0.1f), false, "sgd");
    check_equivalent(2, 4, 37, cnn_sgd(.learning_rate = 0.05f, .momentum = 0.9f,
                                       .global_clipnorm = 1), false, "sgd momentum clipped");
    check_equivalent(2, 5, 37, cnn_adam(), false, "adam");
    check_equivalent(2, 4, 37, cnn_adam(), true, "adam, augmented");
    /* 37 = 4 * 9 + 1: the last step has one example, ranks 1 and 2 none */
    check_equivalent(3, 3, 37, cnn_rmsprop(), false, "rmsprop, 3 ranks");
    check_equivalent(1, 8, 37, cnn_sgd(), false, "one rank");
    test_settings_differ();
    test_batch_norm();
    test_agreed_stop();
    return test_finish("test_parallel");
}
