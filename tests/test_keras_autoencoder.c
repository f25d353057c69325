/* The real Keras 2.12 denoising autoencoder with Conv2DTranspose
 * (../shared/keras-models/conv2dtranspose-autoencoder-keras2.12.h5, no
 * licence, so not in the repository; skipped with test_skip when absent):
 * it loads with its Adam (Keras 2.12's Custom>Adam) and Adam's saved state,
 * agrees within 1e-4 with PyTorch's forward from the same weights
 * (tests/keras/gen_autoencoder.py), reconstructs digits with Keras's MSE,
 * round-trips through our .keras and .h5 export with identical
 * predictions, and fine-tunes one epoch. What needs no file (image outputs
 * with elementwise losses) runs on every clone. */
#include <stdlib.h>
#include <unistd.h>

#include "test.h"

#define FILE_NAME "conv2dtranspose-autoencoder-keras2.12.h5"

static char tmpdir[64];

/* The tensor "output" of tests/keras/autoencoder_outputs.txt (malloc'd). */
static float *fixture(long *count)
{
    FILE *f = fopen("tests/keras/autoencoder_outputs.txt", "r");
    if (!f)
        return NULL;
    char line[512];
    long d[4] = {0, 0, 0, 0}, n = 0;
    float *v = NULL;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        if (sscanf(line, "output 4 %ld %ld %ld %ld", &d[0], &d[1], &d[2], &d[3]) == 4)
            n = d[0] * d[1] * d[2] * d[3];
        break;
    }
    if (n > 0 && n <= 1000000)
        v = malloc((size_t)n * sizeof *v);
    for (long i = 0; v && i < n; i++)
        if (!fgets(line, sizeof line, f) || sscanf(line, "%f", &v[i]) != 1) {
            free(v);
            v = NULL;
        }
    fclose(f);
    *count = v ? n : 0;
    return v;
}

/* n digits 0, every, 2 every, ... of tests/keras/digits-*, scaled to
 * [0, 1], with a channel axis. */
static cnn_tensor *digits(int n, int every)
{
    cnn_tensor *all = NULL, *x = NULL;
    if (cnn_dataset_load_idx("tests/keras/digits-images-idx3-ubyte", &all))
        return NULL;
    cnn_tensor_scale(all, 1.0f / 255.0f);
    cnn_tensor_expand_dims(all);
    if (n > all->dims[0] / every)
        n = (int)(all->dims[0] / every);
    if (cnn_tensor_create(&x, 4, (int64_t[]){n, 28, 28, 1}) == CNN_OK)
        for (int i = 0; i < n; i++)
            memcpy(x->data + (int64_t)i * 784, all->data + (int64_t)i * every * 784,
                   784 * sizeof(float));
    cnn_tensor_free(all);
    return x;
}

static cnn_tensor *predict(cnn_model *m, const cnn_tensor *x)
{
    cnn_tensor *p = NULL;
    CHECK_OK(cnn_model_predict(m, x, 16, &p));
    return p;
}

static double mse(const cnn_tensor *a, const cnn_tensor *b)
{
    double s = 0;
    int64_t n = cnn_tensor_size(a);
    for (int64_t i = 0; i < n; i++)
        s += ((double)a->data[i] - b->data[i]) * ((double)a->data[i] - b->data[i]);
    return s / (double)n;
}

/* Saving and loading back: the same weights and bit-identical predictions. */
static void check_round_trip(cnn_model *m, const char *name, bool keras3, const cnn_tensor *x)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    CHECK_OK(keras3 ? cnn_model_save_keras(m, path) : cnn_model_save_keras_h5(m, path));
    cnn_model *back = NULL;
    cnn_keras_info info;
    CHECK_OK(cnn_model_load_keras(path, &back, &info));
    if (!back)
        return;
    /* Adam's state goes into .keras files (our .h5 export writes none) */
    CHECK(info.compiled && (!keras3 || info.optimizer_state));
    CHECK(cnn_model_layer_count(back) == cnn_model_layer_count(m));
    for (int i = 0; i < cnn_model_layer_count(m) && i < cnn_model_layer_count(back); i++) {
        CHECK(strcmp(cnn_model_layer_type(back, i), cnn_model_layer_type(m, i)) == 0);
        for (int w = 0; w < 2; w++) {
            int64_t ca = 0, cb = 0;
            float *a = cnn_model_layer_weights(m, i, w, &ca);
            float *b = cnn_model_layer_weights(back, i, w, &cb);
            CHECK(ca == cb && !a == !b && (!a || memcmp(a, b, (size_t)ca * sizeof *a) == 0));
        }
    }
    cnn_tensor *pa = predict(m, x), *pb = predict(back, x);
    CHECK(pa && pb && memcmp(pa->data, pb->data, (size_t)cnn_tensor_size(pa) * 4) == 0);
    cnn_tensor_free(pa);
    cnn_tensor_free(pb);
    cnn_model_free(back);
    unlink(path);
}

static void test_real_autoencoder(void)
{
    const char *dir = getenv("CNN_KERAS_MODELS");
    char path[512];
    snprintf(path, sizeof path, "%s/" FILE_NAME, dir ? dir : "../shared/keras-models");
    if (access(path, R_OK) != 0) {
        test_skip("the Conv2DTranspose autoencoder: outputs vs PyTorch, round trips, fine-tuning",
                  "its file is not there; set CNN_KERAS_MODELS to a directory holding "
                  FILE_NAME);
        return;
    }
    cnn_model *m = NULL;
    cnn_keras_info info;
    CHECK_OK(cnn_model_load_keras(path, &m, &info));
    cnn_tensor *x8 = digits(8, 10), *x100 = digits(100, 1);
    CHECK(x8 && x100);
    if (!m || !x8 || !x100)
        goto done;
    /* Keras 2.12: its optimizer is Custom>Adam, its moments interleaved */
    CHECK(strcmp(info.keras_version, "2.12.0") == 0);
    CHECK(info.compiled && info.optimizer_state);
    cnn_compile_config cc;
    CHECK_OK(cnn_model_compile_config(m, &cc));
    CHECK(cc.loss == CNN_LOSS_BINARY_CROSSENTROPY && cc.optimizer.kind == CNN_OPTIMIZER_ADAM);
    static const char *const types[] = {"Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D",
                                        "Conv2DTranspose", "Conv2DTranspose", "Conv2D"};
    static const int rows[] = {28, 14, 14, 7, 14, 28, 28};
    CHECK(cnn_model_layer_count(m) == 7 && cnn_model_param_count(m) == 28353);
    for (int i = 0; i < 7 && i < cnn_model_layer_count(m); i++) {
        CHECK(strcmp(cnn_model_layer_type(m, i), types[i]) == 0);
        CHECK(cnn_model_layer_output_shape(m, i).dims[0] == rows[i]);
    }

    /* against PyTorch */
    long n = 0;
    float *want = fixture(&n);
    cnn_tensor *p = predict(m, x8);
    CHECK(want && p && n == cnn_tensor_size(x8));
    if (want && p && n == cnn_tensor_size(p))
        CHECK(test_close("autoencoder vs PyTorch", p->data, want, n, 1e-4, 0));
    free(want);
    cnn_tensor_free(p);
    /* its reconstructions: the README's MSE of about 0.004 on digits */
    p = predict(m, x100);
    double e = p ? mse(p, x100) : 1;
    printf("autoencoder: reconstruction MSE on the 100 digits %.6f\n", e);
    CHECK(e < 0.005);
    cnn_tensor_free(p);

    check_round_trip(m, "ae.keras", true, x8);
    check_round_trip(m, "ae.h5", false, x8);

    /* one epoch of fine-tuning on the digits (targets: the images) keeps the
     * reconstructions as good, and round-trips */
    CHECK_OK(cnn_model_set_threads(m, 1));
    cnn_history *h = NULL;
    CHECK_OK(cnn_model_fit(m, x100, x100, cnn_fit(.epochs = 1, .batch_size = 20), &h));
    cnn_history_free(h);
    p = predict(m, x100);
    double tuned = p ? mse(p, x100) : 1;
    printf("autoencoder: after one epoch on them %.6f\n", tuned);
    CHECK(tuned < 0.005);
    cnn_tensor_free(p);
    check_round_trip(m, "ae-tuned.keras", true, x8);
    check_round_trip(m, "ae-tuned.h5", false, x8);
done:
    cnn_tensor_free(x8);
    cnn_tensor_free(x100);
    cnn_model_free(m);
}

/* Image outputs take mse and binary cross-entropy (the mean over every
 * value, Keras's mean over channels then pixels); the cross-entropies over
 * classes still need a vector. */
static void test_image_outputs(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(4, 4, 1)));
    if (!m)
        return;
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {2, 2},
                                                .strides = {2, 2})));
    CHECK_OK(cnn_model_add_conv2d_transpose(
        m, cnn_conv2d_transpose(.filters = 1, .kernel_size = {2, 2}, .strides = {2, 2},
                                .activation = CNN_ACTIVATION_SIGMOID)));
    CHECK_FAILS(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                                 .optimizer = cnn_adam())),
                CNN_ERR_SHAPE, "needs one vector per example");
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_BINARY_CROSSENTROPY,
                                              .optimizer = cnn_adam(.learning_rate = 0.05f))));
    cnn_tensor *x = NULL;
    CHECK_OK(cnn_tensor_create(&x, 4, (int64_t[]){8, 4, 4, 1}));
    for (int64_t i = 0; x && i < cnn_tensor_size(x); i++)
        x->data[i] = (float)((i * 7) % 5) / 4.0f;
    double before = 0, after = 0, acc;
    CHECK_OK(cnn_model_evaluate(m, x, x, 8, &before, &acc));
    cnn_history *h = NULL;
    CHECK_OK(cnn_model_fit(m, x, x, cnn_fit(.epochs = 20, .batch_size = 8), &h));
    cnn_history_free(h);
    CHECK_OK(cnn_model_evaluate(m, x, x, 8, &after, &acc));
    CHECK(after < before);
    /* and mse gives the plain mean of the squared differences */
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_MSE, .optimizer = cnn_sgd())));
    cnn_tensor *p = NULL;
    CHECK_OK(cnn_model_predict(m, x, 8, &p));
    double l = 0;
    CHECK_OK(cnn_model_evaluate(m, x, x, 8, &l, &acc));
    CHECK(p && fabs(l - mse(p, x)) < 1e-6);
    cnn_tensor_free(p);
    cnn_tensor_free(x);
    cnn_model_free(m);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cnn_autoencoder_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_image_outputs();
    test_real_autoencoder();
    rmdir(tmpdir);
    return test_finish("keras_autoencoder");
}
