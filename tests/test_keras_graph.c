/* The real Functional Keras models (issue 15): ResNet-8 and MobileNetV1
 * (MLPerf Tiny, Keras 2.4 .h5, shipped in models/mlperf-tiny/, so always
 * run) and a Keras 3 ResNet on MNIST (no licence: read from
 * $CNN_KERAS_MODELS, else ../shared/keras-models, skipped when absent).
 * Each loads, agrees within 1e-4 with PyTorch's float64 forward pass of
 * the same weights (tests/keras/gen_graph_reference.py writes
 * tests/keras/graph_outputs.txt), fine-tunes one epoch, and round-trips
 * through our .keras and .h5 export and the .cnn file with identical
 * predictions. Run from the repository root. */
#include <hdf5.h>
#include <stdlib.h>
#include <unistd.h>

#include "io/keras.h"
#include "model/model.h"
#include "test.h"

#define N 2

static char tmpdir[64];

/* Tensor "<model> <what>" of tests/keras/graph_outputs.txt, malloc'd. */
static float *fixture(const char *model, const char *what, long *count)
{
    FILE *f = fopen("tests/keras/graph_outputs.txt", "r");
    if (!f)
        return NULL;
    char line[256];
    float *v = NULL;
    while (fgets(line, sizeof line, f)) {
        char m[64], w[64];
        int rank;
        long d0, d1;
        if (line[0] == '#' || sscanf(line, "%63s %63s %d %ld %ld", m, w, &rank, &d0, &d1) != 5)
            continue;
        long n = d0 * d1;
        if (strcmp(m, model) != 0 || strcmp(w, what) != 0) {
            for (long i = 0; i < n && fgets(line, sizeof line, f); i++)
                ;
            continue;
        }
        v = malloc((size_t)n * sizeof *v);
        for (long i = 0; v && i < n; i++)
            if (!fgets(line, sizeof line, f) || sscanf(line, "%f", &v[i]) != 1) {
                free(v);
                v = NULL;
            }
        *count = n;
        break;
    }
    fclose(f);
    return v;
}

/* The generator's inputs: ((n*37 + i*i*3 + j*7 + c*101 + i*j) % 256) * scale. */
static cnn_tensor *inputs(cnn_shape s, int n, float scale)
{
    cnn_tensor *x = NULL;
    CHECK_OK(cnn_tensor_create(&x, 4, (int64_t[]){n, s.dims[0], s.dims[1], s.dims[2]}));
    if (!x)
        return NULL;
    float *p = x->data;
    for (int e = 0; e < n; e++)
        for (int i = 0; i < s.dims[0]; i++)
            for (int j = 0; j < s.dims[1]; j++)
                for (int c = 0; c < s.dims[2]; c++)
                    *p++ = (float)((e * 37 + i * i * 3 + j * 7 + c * 101 + i * j) % 256) * scale;
    return x;
}

static void compare(const char *key, const char *what, const float *got, long n)
{
    long count = 0;
    float *want = fixture(key, what, &count);
    CHECK(want != NULL && count == n);
    char label[96];
    snprintf(label, sizeof label, "%s %s", key, what);
    if (want && count == n)
        CHECK(test_close(label, got, want, n, 1e-4, 1e-5));
    free(want);
}

/* Predictions of m on x (batch N), malloc'd. */
static float *predictions(cnn_model *m, const cnn_tensor *x, long *n)
{
    cnn_tensor *y = NULL;
    CHECK_OK(cnn_model_predict(m, x, N, &y));
    if (!y)
        return NULL;
    *n = (long)cnn_tensor_size(y);
    float *v = malloc((size_t)*n * sizeof *v);
    memcpy(v, y->data, (size_t)*n * sizeof *v);
    cnn_tensor_free(y);
    return v;
}

typedef cnn_status (*saver)(cnn_model *, const char *);
static cnn_status load_cnn(const char *path, cnn_model **m, cnn_keras_info *info)
{
    (void)info;
    return cnn_model_load(path, m);
}

/* Saved and loaded again: the same graph and the same predictions, bit for bit. */
static void round_trip(const char *key, cnn_model *m, const cnn_tensor *x, const float *before,
                       long n)
{
    static const struct {
        const char *ext;
        saver save;
        cnn_status (*load)(const char *, cnn_model **, cnn_keras_info *);
    } forms[] = {{"keras", cnn_model_save_keras, cnn_model_load_keras},
                 {"h5", cnn_model_save_keras_h5, cnn_model_load_keras},
                 {"cnn", cnn_model_save, load_cnn}};
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s.%s", tmpdir, key, forms[f].ext);
        CHECK_OK(forms[f].save(m, path));
        cnn_model *back = NULL;
        CHECK_OK(forms[f].load(path, &back, NULL));
        if (!back)
            continue;
        CHECK(cnn_model_layer_count(back) == cnn_model_layer_count(m));
        CHECK(cnn_model_is_graph(back) == cnn_model_is_graph(m));
        for (int i = 0; i < cnn_model_layer_count(m) && i < cnn_model_layer_count(back); i++)
            for (int k = 0; k < cnn_model_layer_input_count(m, i); k++)
                CHECK(cnn_model_layer_input(back, i, k) == cnn_model_layer_input(m, i, k));
        CHECK_OK(cnn_model_set_threads(back, 1));
        long n2 = 0;
        float *after = predictions(back, x, &n2);
        bool same = after && n2 == n && memcmp(after, before, (size_t)n * sizeof *after) == 0;
        if (!same)
            fprintf(stderr, "%s through .%s: the predictions differ\n", key, forms[f].ext);
        CHECK(same);
        free(after);
        cnn_model_free(back);
    }
}

static void real_model(const char *key, const char *path, float scale, bool graph)
{
    cnn_model *m = NULL;
    cnn_keras_info info;
    CHECK_OK(cnn_model_load_keras(path, &m, &info));
    if (!m)
        return;
    CHECK(cnn_model_is_graph(m) == graph);
    CHECK_OK(cnn_model_set_threads(m, 1));
    cnn_tensor *x = inputs(cnn_model_input_shape(m), N, scale);
    const float *out = NULL;
    CHECK_OK(cnn_model_forward(m, x, false, &out));
    const int L = cnn_model_layer_count(m);
    cnn_shape os = cnn_model_output_shape(m), fs = cnn_model_layer_output_shape(m, L - 2);
    long on = N * (long)os.dims[0], fn = N * (long)fs.dims[0];
    if (out) {
        compare(key, "output", out, on);
        compare(key, "features", cnn_model_layer_output(m, L - 2), fn);
    }
    /* the memory planner's inference arena gives the same numbers */
    long n = 0;
    float *before = predictions(m, x, &n);
    if (before && out)
        compare(key, "output", before, n);

    /* one epoch of fine-tuning on the inputs: the loss falls */
    cnn_tensor *y = NULL;
    CHECK_OK(cnn_tensor_create(&y, 1, (int64_t[]){N}));
    for (int i = 0; y && i < N; i++)
        y->data[i] = (float)(i % os.dims[0]);
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_sgd(.learning_rate = 0.01f))));
    double loss0 = NAN, loss1 = NAN;
    CHECK_OK(cnn_model_evaluate(m, x, y, N, &loss0, NULL));
    cnn_history *h = NULL;
    CHECK_OK(cnn_model_fit(m, x, y, cnn_fit(.epochs = 1, .batch_size = N), &h));
    cnn_history_free(h);
    CHECK_OK(cnn_model_evaluate(m, x, y, N, &loss1, NULL));
    if (!(loss1 < loss0))
        fprintf(stderr, "%s: fine-tuning: loss %g -> %g\n", key, loss0, loss1);
    CHECK(loss1 < loss0);
    free(before);
    before = predictions(m, x, &n);
    if (before)
        round_trip(key, m, x, before, n);
    free(before);
    cnn_tensor_free(y);
    cnn_tensor_free(x);
    cnn_model_free(m);
}

/* Same seed, same threads, same bits: ResNet-8 fine-tuned twice on two
 * threads (dropout-free, but shuffling and the summed skip gradients) ends
 * with identical weights. */
static void test_determinism(void)
{
    float *w[2] = {NULL, NULL};
    int64_t n[2] = {0, 0};
    for (int run = 0; run < 2; run++) {
        cnn_model *m = NULL;
        CHECK_OK(cnn_model_load_keras("models/mlperf-tiny/mlperf-tiny-resnet8-cifar10.h5", &m,
                                      NULL));
        if (!m)
            return;
        CHECK_OK(cnn_model_set_threads(m, 2));
        cnn_tensor *x = inputs(cnn_model_input_shape(m), 4, 1.0f), *y = NULL;
        CHECK_OK(cnn_tensor_create(&y, 1, (int64_t[]){4}));
        for (int i = 0; y && i < 4; i++)
            y->data[i] = (float)(i * 3 % 10);
        CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                                  .optimizer = cnn_adam())));
        CHECK_OK(cnn_model_fit(m, x, y, cnn_fit(.epochs = 2, .batch_size = 2, .seed = 5), NULL));
        int64_t total = cnn_model_param_count(m), off = 0;
        w[run] = malloc((size_t)total * sizeof(float));
        for (int i = 0; i < cnn_model_layer_count(m); i++)
            for (int k = 0; k < CNN_MAX_LAYER_WEIGHTS; k++) {
                int64_t count;
                const float *v = cnn_model_layer_weights(m, i, k, &count);
                if (v)
                    memcpy(w[run] + off, v, (size_t)count * sizeof(float));
                off += v ? count : 0;
            }
        n[run] = off;
        cnn_tensor_free(x);
        cnn_tensor_free(y);
        cnn_model_free(m);
    }
    CHECK(n[0] == n[1] && n[0] > 0 && w[0] && w[1]
          && memcmp(w[0], w[1], (size_t)n[0] * sizeof(float)) == 0);
    free(w[0]);
    free(w[1]);
}

/* Transfer learning on ResNet-8: a new 3-class head, the base frozen
 * through activation_6 (Keras 3 semantics: the frozen BatchNormalizations
 * run in inference mode). One epoch changes the head only: every base
 * weight, moving statistics included, keeps its bits. The frozen flags
 * survive .cnn and .keras. */
static void test_transfer(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_load_keras("models/mlperf-tiny/mlperf-tiny-resnet8-cifar10.h5", &m, NULL));
    if (!m)
        return;
    CHECK_FAILS(cnn_model_freeze_through(m, "nope"), CNN_ERR_INVALID_ARGUMENT,
                "freeze: no layer named \"nope\"");
    CHECK_FAILS(cnn_model_replace_head(m, 0), CNN_ERR_INVALID_ARGUMENT, "units must be >= 1");
    CHECK_OK(cnn_model_set_threads(m, 1));
    const int L = cnn_model_layer_count(m);
    int64_t base = 0;
    for (int i = 0; i < L - 1; i++)
        base += cnn_model_layer_param_count(m, i);
    float *before = malloc((size_t)base * sizeof(float));
    CHECK_OK(cnn_model_replace_head(m, 3));
    CHECK(cnn_model_output_shape(m).dims[0] == 3);
    CHECK(strcmp(cnn_model_layer_name(m, L - 1), "dense") == 0);
    CHECK_OK(cnn_model_freeze_through(m, "activation_6"));
    CHECK(cnn_model_trainable_param_count(m) == 64 * 3 + 3);
    CHECK(!cnn_model_layer_trainable(m, 0) && cnn_model_layer_trainable(m, L - 1));
    int64_t off = 0;
    for (int i = 0; i < L - 1; i++)
        for (int k = 0; k < CNN_MAX_LAYER_WEIGHTS; k++) {
            int64_t count;
            const float *v = cnn_model_layer_weights(m, i, k, &count);
            if (v)
                memcpy(before + off, v, (size_t)count * sizeof(float));
            off += v ? count : 0;
        }
    int64_t hc;
    float head0 = cnn_model_layer_weights(m, L - 1, 0, &hc)[0];
    cnn_tensor *x = inputs(cnn_model_input_shape(m), 4, 1.0f), *y = NULL;
    CHECK_OK(cnn_tensor_create(&y, 1, (int64_t[]){4}));
    for (int i = 0; y && i < 4; i++)
        y->data[i] = (float)(i % 3);
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam())));
    CHECK_OK(cnn_model_fit(m, x, y, cnn_fit(.epochs = 1, .batch_size = 2), NULL));
    bool same = true;
    off = 0;
    for (int i = 0; i < L - 1; i++)
        for (int k = 0; k < CNN_MAX_LAYER_WEIGHTS; k++) {
            int64_t count;
            const float *v = cnn_model_layer_weights(m, i, k, &count);
            if (v && memcmp(before + off, v, (size_t)count * sizeof(float)) != 0) {
                fprintf(stderr, "transfer: %s weight %d changed\n", cnn_model_layer_name(m, i), k);
                same = false;
            }
            off += v ? count : 0;
        }
    CHECK(same);
    CHECK(cnn_model_layer_weights(m, L - 1, 0, &hc)[0] != head0);
    static const char *const ext[] = {"cnn", "keras", "h5"};
    for (int f = 0; f < 3; f++) {
        char path[128];
        snprintf(path, sizeof path, "%s/transfer.%s", tmpdir, ext[f]);
        CHECK_OK(f == 0 ? cnn_model_save(m, path) : f == 1 ? cnn_model_save_keras(m, path)
                                                           : cnn_model_save_keras_h5(m, path));
        cnn_model *back = NULL;
        CHECK_OK(f == 0 ? cnn_model_load(path, &back) : cnn_model_load_keras(path, &back, NULL));
        CHECK(back && cnn_model_trainable_param_count(back) == 64 * 3 + 3);
        CHECK(back && !cnn_model_layer_trainable(back, 1) && cnn_model_layer_trainable(back, L - 1));
        cnn_model_free(back);
    }
    /* replace_head needs a Dense last */
    cnn_model *g = NULL;
    CHECK_OK(cnn_model_create(&g, cnn_shape_flat(4)));
    CHECK_OK(cnn_model_add_dropout(g, cnn_dropout(.rate = 0.5f)));
    CHECK_FAILS(cnn_model_replace_head(g, 2), CNN_ERR_INVALID_ARGUMENT,
                "the last layer, dropout, is a Dropout; expected a Dense classifier");
    cnn_model_free(g);
    free(before);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(m);
}

/* Keras 3's weight names in a legacy .h5 are the variables' paths,
 * "conv2d/kernel" (Keras 2: "conv2d/kernel:0"): each of the file's
 * weights renamed so, its weight_names rewritten. */
static void keras3_weight_names(hid_t f)
{
    hid_t mw = H5Gopen2(f, "model_weights", H5P_DEFAULT);
    char **layers = NULL;
    int n = 0;
    CHECK_OK(cnn_h5_read_string_list(mw, "layer_names", "t.h5", "model_weights", &layers, &n));
    for (int i = 0; i < n; i++) {
        hid_t g = H5Gopen2(mw, layers[i], H5P_DEFAULT);
        char **w = NULL;
        int nw = 0;
        CHECK_OK(cnn_h5_read_string_list(g, "weight_names", "t.h5", layers[i], &w, &nw));
        for (int k = 0; k < nw; k++) {
            char renamed[256];
            snprintf(renamed, sizeof renamed, "%s", w[k]);
            char *colon = strrchr(renamed, ':');
            if (colon)
                *colon = '\0';
            CHECK(H5Lmove(g, w[k], g, renamed, H5P_DEFAULT, H5P_DEFAULT) >= 0);
            free(w[k]);
            w[k] = strdup(renamed);
        }
        if (nw) {
            H5Adelete(g, "weight_names");
            CHECK_OK(cnn_h5_write_string_list(g, "weight_names", (const char *const *)w, nw,
                                              "t.h5"));
        }
        cnn_h5_free_strings(w, nw);
        H5Gclose(g);
    }
    cnn_h5_free_strings(layers, n);
    H5Gclose(mw);
}

/* Keras 3's legacy writer (model.save("x.h5") in Keras 3) puts the Keras 3
 * Functional config (keras_history nodes) into model_config and names the
 * weights by their paths: our .h5 of ResNet-8 so rewritten, with
 * keras_version 3.3.3, loads as the same graph with the same predictions. */
static void test_keras3_legacy_h5(void)
{
    cnn_model *m = NULL, *back = NULL;
    CHECK_OK(cnn_model_load_keras("models/mlperf-tiny/mlperf-tiny-resnet8-cifar10.h5", &m, NULL));
    if (!m)
        return;
    char path[128];
    snprintf(path, sizeof path, "%s/keras3-legacy.h5", tmpdir);
    CHECK_OK(cnn_model_save_keras_h5(m, path));
    json_t *config = cnn_keras3_config(m);
    char *text = config ? cnn_keras_dumps(config) : NULL;
    json_decref(config);
    const char *attrs[2][2] = {{"model_config", text}, {"keras_version", "3.3.3"}};
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    for (int i = 0; i < 2 && f >= 0 && text; i++) {
        H5Adelete(f, attrs[i][0]);
        hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR);
        H5Tset_size(t, H5T_VARIABLE);
        hid_t a = H5Acreate2(f, attrs[i][0], t, s, H5P_DEFAULT, H5P_DEFAULT);
        CHECK(H5Awrite(a, t, &attrs[i][1]) >= 0);
        H5Aclose(a);
        H5Sclose(s);
        H5Tclose(t);
    }
    if (f >= 0) {
        keras3_weight_names(f);
        H5Fclose(f);
    }
    CHECK(text != NULL);
    free(text);
    CHECK_OK(cnn_model_load_keras(path, &back, NULL));
    if (back) {
        CHECK(cnn_model_is_graph(back) && cnn_model_layer_count(back) == cnn_model_layer_count(m));
        CHECK_OK(cnn_model_set_threads(m, 1));
        CHECK_OK(cnn_model_set_threads(back, 1));
        cnn_tensor *x = inputs(cnn_model_input_shape(m), N, 1.0f);
        long n1 = 0, n2 = 0;
        float *a = predictions(m, x, &n1), *b = predictions(back, x, &n2);
        CHECK(a && b && n1 == n2 && memcmp(a, b, (size_t)n1 * sizeof *a) == 0);
        free(a);
        free(b);
        cnn_tensor_free(x);
    }
    cnn_model_free(back);
    cnn_model_free(m);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cnn-graph-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_determinism();
    test_transfer();
    test_keras3_legacy_h5();
    real_model("resnet8", "models/mlperf-tiny/mlperf-tiny-resnet8-cifar10.h5", 1.0f, true);
    real_model("mobilenet", "models/mlperf-tiny/mlperf-tiny-mobilenetv1-vww96.h5", 1.0f / 255,
               false);
    const char *dir = getenv("CNN_KERAS_MODELS");
    char path[512];
    snprintf(path, sizeof path, "%s/resnet-mnist-keras3.11.keras",
             dir ? dir : "../shared/keras-models");
    if (access(path, R_OK) == 0)
        real_model("resnet_mnist", path, 1.0f / 255, true);
    else
        test_skip("resnet-mnist-keras3.11.keras", "not found; set CNN_KERAS_MODELS");
    if (!test_remove_tree(tmpdir))
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish("test_keras_graph");
}
