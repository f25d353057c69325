/* No silent NaN: non-finite values in data files are reported when they are
 * loaded, fit/evaluate refuse non-finite data (and bad labels) before the
 * first step, and a non-finite loss or gradient stops training with an
 * error naming the epoch and step, before that step's update and before a
 * checkpoint could be written. */
#include <stdlib.h>
#include <unistd.h>

#include "test.h"

static size_t idx_float(unsigned char *out, int type, const void *values, int n)
{
    int esize = type == 0x0D ? 4 : 8;
    unsigned char head[8] = {0, 0, (unsigned char)type, 1, 0, 0, 0, (unsigned char)n};
    memcpy(out, head, 8);
    const unsigned char *v = values;
    for (int i = 0; i < n; i++) /* host (little-endian) to big-endian */
        for (int b = 0; b < esize; b++)
            out[8 + i * esize + b] = v[i * esize + esize - 1 - b];
    return 8 + (size_t)(n * esize);
}

static void test_idx_values(void)
{
    unsigned char b[256];
    cnn_tensor *t = NULL;
    float f[4] = {1.0f, -2.5f, 0.0f, 3.0f};
    size_t n = idx_float(b, 0x0D, f, 4);
    CHECK_OK(cnn_dataset_load_idx_memory(b, n, "ok.idx", &t));
    cnn_tensor_free(t);

    f[2] = NAN;
    n = idx_float(b, 0x0D, f, 4);
    CHECK_FAILS(cnn_dataset_load_idx_memory(b, n, "nan.idx", &t), CNN_ERR_NUMERIC,
                "nan.idx: data: the float32 value at index (2) of (4) is NaN; the data must be"
                " finite numbers");
    CHECK(t == NULL);
    f[2] = -INFINITY;
    n = idx_float(b, 0x0D, f, 4);
    CHECK_FAILS(cnn_dataset_load_idx_memory(b, n, "inf.idx", &t), CNN_ERR_NUMERIC,
                "inf.idx: data: the float32 value at index (2) of (4) is -infinity");

    double d[3] = {1.0, 1e300, 2.0};
    n = idx_float(b, 0x0E, d, 3);
    CHECK_FAILS(cnn_dataset_load_idx_memory(b, n, "big.idx", &t), CNN_ERR_NUMERIC,
                "big.idx: data: the float64 value at index (1) of (3) is 1e+300, too large for"
                " float32");
    d[1] = INFINITY;
    n = idx_float(b, 0x0E, d, 3);
    CHECK_FAILS(cnn_dataset_load_idx_memory(b, n, "inf64.idx", &t), CNN_ERR_NUMERIC,
                "the float64 value at index (1) of (3) is +infinity");

    /* the index is given in every dimension: element 7 of (2, 2, 3) */
    float g[12] = {0};
    g[7] = NAN;
    unsigned char head[16] = {0, 0, 0x0D, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3};
    memcpy(b, head, 16);
    for (int i = 0; i < 12; i++) {
        uint32_t u;
        memcpy(&u, &g[i], 4);
        for (int k = 0; k < 4; k++)
            b[16 + 4 * i + k] = (unsigned char)(u >> (24 - 8 * k));
    }
    CHECK_FAILS(cnn_dataset_load_idx_memory(b, 16 + 48, "grid.idx", &t), CNN_ERR_NUMERIC,
                "value at index (1, 0, 1) of (2, 2, 3) is NaN");
    CHECK(t == NULL);
}

/* A Dense model on 3 features with mse or sparse labels. */
static cnn_model *small_model(int units, cnn_activation act, cnn_loss loss, cnn_optimizer opt)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(3)));
    CHECK_OK(cnn_model_set_threads(m, 1));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = units, .activation = act)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = loss, .optimizer = opt)));
    return m;
}

static cnn_tensor *tensor(int rank, int64_t d0, int64_t d1, float fill)
{
    cnn_tensor *t = NULL;
    CHECK_OK(cnn_tensor_create(&t, rank, (int64_t[]){d0, d1}));
    for (int64_t i = 0; i < cnn_tensor_size(t); i++)
        t->data[i] = fill;
    return t;
}

static void test_fit_data(void)
{
    cnn_model *m = small_model(4, CNN_ACTIVATION_SOFTMAX,
                               CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, cnn_sgd());
    cnn_tensor *x = tensor(2, 8, 3, 0.5f), *y = tensor(1, 8, 0, 1.0f);
    x->data[5 * 3 + 2] = NAN;
    CHECK_FAILS(cnn_model_fit(m, x, y, cnn_fit(.epochs = 1), NULL), CNN_ERR_NUMERIC,
                "fit: x is not finite: example 5 has NaN at element 2; the data must be finite"
                " numbers");
    CHECK_FAILS(cnn_model_evaluate(m, x, y, 4, NULL, NULL), CNN_ERR_NUMERIC,
                "evaluate: x is not finite: example 5 has NaN at element 2");
    x->data[5 * 3 + 2] = 0.5f;
    CHECK_OK(cnn_model_evaluate(m, x, y, 4, NULL, NULL));

    /* sparse labels: checked for the whole set before the first step */
    y->data[6] = 4.0f;
    CHECK_FAILS(cnn_model_fit(m, x, y, cnn_fit(.epochs = 1), NULL), CNN_ERR_INVALID_ARGUMENT,
                "fit: labels: example 6 has label 4, expected an integer in [0, 4) (the model has"
                " 4 outputs)");
    y->data[6] = 1.5f;
    CHECK_FAILS(cnn_model_evaluate(m, x, y, 4, NULL, NULL), CNN_ERR_INVALID_ARGUMENT,
                "evaluate: labels: example 6 has label 1.5");
    y->data[6] = INFINITY;
    CHECK_FAILS(cnn_model_fit(m, x, y, cnn_fit(.epochs = 1), NULL), CNN_ERR_NUMERIC,
                "fit: y is not finite: example 6 has +infinity at element 0");
    y->data[6] = 1.0f;

    /* validation data too */
    cnn_tensor *vx = tensor(2, 2, 3, 0.25f), *vy = tensor(1, 2, 0, 0.0f);
    vx->data[4] = -INFINITY;
    CHECK_FAILS(cnn_model_fit(m, x, y, cnn_fit(.validation_x = vx, .validation_y = vy), NULL),
                CNN_ERR_NUMERIC,
                "fit: validation data: x is not finite: example 1 has -infinity at element 1");
    vx->data[4] = 0.0f;
    int64_t steps_before;
    int epoch;
    cnn_model_training_position(m, &epoch, &steps_before);
    CHECK(epoch == 0 && steps_before == 0); /* nothing above trained */
    CHECK_OK(cnn_model_fit(m, x, y, cnn_fit(.validation_x = vx, .validation_y = vy), NULL));
    cnn_tensor_free(vx);
    cnn_tensor_free(vy);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(m);
}

static bool all_finite(cnn_model *m)
{
    for (int i = 0; i < cnn_model_layer_count(m); i++)
        for (int w = 0; w < 2; w++) {
            int64_t n = 0;
            const float *v = cnn_model_layer_weights(m, i, w, &n);
            for (int64_t k = 0; v && k < n; k++)
                if (!isfinite(v[k]))
                    return false;
        }
    return true;
}

/* Copies the weights of layer 0 (kernel then bias). */
static void weights_of(cnn_model *m, float *out)
{
    int64_t n0 = 0, n1 = 0;
    const float *k = cnn_model_layer_weights(m, 0, 0, &n0);
    const float *b = cnn_model_layer_weights(m, 0, 1, &n1);
    memcpy(out, k, (size_t)n0 * sizeof(float));
    memcpy(out + n0, b, (size_t)n1 * sizeof(float));
}

static void test_terminate_on_nan(void)
{
    /* Finite data whose loss overflows at the first step: training stops
     * there, naming epoch 1 step 1, and the weights are untouched. */
    cnn_model *m = small_model(2, CNN_ACTIVATION_LINEAR, CNN_LOSS_MSE, cnn_sgd());
    cnn_tensor *x = tensor(2, 4, 3, 3e30f), *y = tensor(2, 4, 2, 0.0f);
    float before[8], after[8];
    const float *out;
    CHECK_OK(cnn_model_forward(m, x, false, &out)); /* builds the weights */
    weights_of(m, before);
    cnn_history *h = NULL;
    CHECK_FAILS(cnn_model_fit(m, x, y, cnn_fit(.epochs = 3, .batch_size = 2), &h),
                CNN_ERR_NUMERIC, "fit: epoch 1, step 1/2: the ");
    CHECK(strstr(cnn_last_error(), "training stopped before this step's update") != NULL);
    weights_of(m, after);
    CHECK(memcmp(before, after, sizeof before) == 0);
    int epoch;
    int64_t step;
    cnn_model_training_position(m, &epoch, &step);
    CHECK(epoch == 0 && step == 0);
    CHECK(h != NULL && h->epochs == 0);
    cnn_history_free(h);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(m);

    /* A finite loss with an infinite gradient: x = 1e20 makes the kernel's
     * gradient 2 (w.x - y) x / batch overflow float while the loss (summed
     * in double) stays finite. Training stops at step 1 without an update,
     * naming the layer and weight. */
    m = small_model(1, CNN_ACTIVATION_LINEAR, CNN_LOSS_MSE, cnn_sgd(.learning_rate = 1e-30f));
    x = tensor(2, 2, 3, 1e20f);
    y = tensor(2, 2, 1, 0.0f);
    CHECK_OK(cnn_model_forward(m, x, false, &out));
    float b2[4], a2[4];
    weights_of(m, b2);
    CHECK_FAILS(cnn_model_fit(m, x, y, cnn_fit(.epochs = 1, .batch_size = 2), NULL),
                CNN_ERR_NUMERIC, "fit: epoch 1, step 1/1: the gradient of layer 0 (dense) kernel is ");
    weights_of(m, a2);
    CHECK(memcmp(b2, a2, sizeof b2) == 0);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(m);
}

/* Saves a checkpoint at every epoch end, as `cnn train` does. */
typedef struct {
    cnn_model *m;
    const char *path;
    int saved_epoch;
} saver;

static bool save_each_epoch(const cnn_progress *p, void *user)
{
    saver *s = user;
    if (p->event == CNN_PROGRESS_EPOCH_END) {
        CHECK_OK(cnn_model_save(s->m, s->path));
        s->saved_epoch = p->epoch;
    }
    return true;
}

static void test_divergence_keeps_checkpoint(void)
{
    /* SGD with a learning rate far too high: the weights grow geometrically
     * until the loss overflows, some epochs in. The last checkpoint is the
     * one before, and it loads with finite weights. */
    char dir[] = "/tmp/cnn_test_nan_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/ckpt.cnn", dir);
    cnn_model *m = small_model(2, CNN_ACTIVATION_LINEAR, CNN_LOSS_MSE, cnn_sgd(.learning_rate = 3));
    cnn_tensor *x = tensor(2, 8, 3, 1.0f), *y = tensor(2, 8, 2, 1.0f);
    for (int i = 0; i < 24; i++)
        x->data[i] = (float)(i % 5) - 2.0f;
    saver s = {m, path, 0};
    cnn_status st = cnn_model_fit(m, x, y, cnn_fit(.epochs = 200, .batch_size = 4,
                                                   .progress = save_each_epoch,
                                                   .progress_user = &s), NULL);
    CHECK(st == CNN_ERR_NUMERIC);
    char want[64];
    snprintf(want, sizeof want, "fit: epoch %d, step ", s.saved_epoch + 1);
    if (!strstr(cnn_last_error(), want) && !strstr(cnn_last_error(), "fit: epoch ")) {
        test_failed++;
        fprintf(stderr, "divergence: unexpected message: %s\n", cnn_last_error());
    } else {
        test_passed++;
    }
    CHECK(s.saved_epoch >= 1);
    cnn_model *back = NULL;
    CHECK_OK(cnn_model_load(path, &back));
    if (back) {
        int epoch;
        int64_t step;
        cnn_model_training_position(back, &epoch, &step);
        CHECK(epoch == s.saved_epoch && step == 0);
        CHECK(all_finite(back));
    }
    cnn_model_free(back);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(m);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_idx_values();
    test_fit_data();
    test_terminate_on_nan();
    test_divergence_keeps_checkpoint();
    return test_finish("test_nan");
}
