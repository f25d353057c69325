/* Keras files: the two real Sequential models mnist-keras2.2.4.h5 and
 * mnist-keras3.14.keras loaded, compared with PyTorch's outputs on digits
 * (fixtures from tests/keras/gen_keras.py), summarised as Keras did,
 * round-tripped through our .keras and .h5 export; Rescaling; damaged,
 * truncated and mismatched files, each refused with a message; and the
 * Functional models are test_keras_graph.c's.
 * The two MNIST models have no licence, so they are not in the repository:
 * they are read from $CNN_KERAS_MODELS, else ../shared/keras-models (where
 * CI has them), and the parts that need them are skipped when they are not
 * there (test_skip: a failure with CNN_REQUIRE_TEST_DATA=1). What needs
 * only their architectures (tests/data/) runs on every clone. */
#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "io/keras.h"
#include "test.h"

static const char *models_dir(void)
{
    const char *d = getenv("CNN_KERAS_MODELS");
    return d ? d : "../shared/keras-models";
}

static char tmpdir[64];

static void path_in(char *buf, size_t size, const char *dir, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

/* Puts the path of the third-party model file in models_dir() into buf;
 * false, with WHAT skipped, when the file is not there. */
static bool model_file(char *buf, size_t size, const char *file, const char *what)
{
    path_in(buf, size, models_dir(), file);
    if (access(buf, R_OK) == 0)
        return true;
    char why[700];
    snprintf(why, sizeof why, "%s not found; set CNN_KERAS_MODELS to a directory holding %s",
             buf, file);
    test_skip(what, why);
    return false;
}

/* ---- Fixtures ------------------------------------------------------------------------- */

/* Reads tensor name from tests/keras/outputs.txt into a malloc'd array. */
static float *fixture(const char *name, long *count)
{
    FILE *f = fopen("tests/keras/outputs.txt", "r");
    if (!f)
        return NULL;
    char line[512];
    float *v = NULL;
    while (fgets(line, sizeof line, f)) {
        char tname[64];
        int rank;
        long d[4] = {1, 1, 1, 1};
        if (line[0] == '#' || sscanf(line, "%63s %d %ld %ld", tname, &rank, &d[0], &d[1]) < 3)
            continue;
        long n = d[0] * (rank > 1 ? d[1] : 1);
        if (strcmp(tname, name) != 0) {
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

static cnn_tensor *digits(float scale)
{
    cnn_tensor *x = NULL;
    if (cnn_dataset_load_idx("tests/keras/digits-images-idx3-ubyte", &x))
        return NULL;
    cnn_tensor_scale(x, scale);
    cnn_tensor_expand_dims(x);
    return x;
}

/* ---- The real models -------------------------------------------------------------------- */

typedef struct {
    const char *name, *type;
    int rank, dims[3];
    int64_t params;
} layer_row;

/* Layer names, types, output shapes and parameter counts as Keras's
 * summary shows them (tests/data/README.md has where they come from). */
static const layer_row keras2_rows[] = {
    {"conv2d_1", "Conv2D", 3, {28, 28, 64}, 640},
    {"activation_1", "Activation", 3, {28, 28, 64}, 0},
    {"max_pooling2d_1", "MaxPooling2D", 3, {14, 14, 64}, 0},
    {"conv2d_2", "Conv2D", 3, {14, 14, 32}, 18464},
    {"activation_2", "Activation", 3, {14, 14, 32}, 0},
    {"max_pooling2d_2", "MaxPooling2D", 3, {7, 7, 32}, 0},
    {"flatten_1", "Flatten", 1, {1568}, 0},
    {"dense_1", "Dense", 1, {10}, 15690},
    {"activation_3", "Activation", 1, {10}, 0},
};
static const layer_row keras3_rows[] = {
    {"conv2d", "Conv2D", 3, {26, 26, 32}, 320},
    {"max_pooling2d", "MaxPooling2D", 3, {13, 13, 32}, 0},
    {"conv2d_1", "Conv2D", 3, {11, 11, 64}, 18496},
    {"max_pooling2d_1", "MaxPooling2D", 3, {5, 5, 64}, 0},
    {"flatten", "Flatten", 1, {1600}, 0},
    {"dense", "Dense", 1, {128}, 204928},
    {"dropout", "Dropout", 1, {128}, 0},
    {"dense_1", "Dense", 1, {10}, 1290},
};

static void check_layers(const cnn_model *m, const layer_row *rows, int n)
{
    CHECK(cnn_model_layer_count(m) == n);
    for (int i = 0; i < n && i < cnn_model_layer_count(m); i++) {
        cnn_shape s = cnn_model_layer_output_shape(m, i);
        bool same = s.rank == rows[i].rank;
        for (int d = 0; same && d < s.rank; d++)
            same = s.dims[d] == rows[i].dims[d];
        CHECK(strcmp(cnn_model_layer_name(m, i), rows[i].name) == 0);
        CHECK(strcmp(cnn_model_layer_type(m, i), rows[i].type) == 0);
        CHECK(same);
        CHECK(cnn_model_layer_param_count(m, i) == rows[i].params);
    }
}

static cnn_tensor *predict(cnn_model *m, const cnn_tensor *x)
{
    cnn_tensor *p = NULL;
    CHECK_OK(cnn_model_predict(m, x, 32, &p));
    return p;
}

/* Our outputs against PyTorch's within 1e-4; predictions equal and
 * accuracy as recorded. */
static void check_outputs(const char *what, cnn_model *m, const cnn_tensor *x, const char *key)
{
    long n = 0, nl = 0;
    float *want = fixture(key, &n), *labels = fixture("labels", &nl);
    cnn_tensor *p = predict(m, x);
    CHECK(want && labels && p && n == 1000 && nl == 100);
    if (!want || !labels || !p || n != cnn_tensor_size(p)) {
        free(want);
        free(labels);
        cnn_tensor_free(p);
        return;
    }
    CHECK(test_close(what, p->data, want, n, 1e-4, 0));
    int same = 0, correct = 0;
    for (int i = 0; i < 100; i++) {
        int k = test_argmax(p->data + 10 * i, 10);
        same += k == test_argmax(want + 10 * i, 10);
        correct += k == (int)labels[i];
    }
    CHECK(same == 100);
    /* the digits are blurrier than MNIST's: see tests/keras/gen_keras.py */
    printf("%s: %d/100 digits classified correctly\n", what, correct);
    CHECK(correct >= 85);
    free(want);
    free(labels);
    cnn_tensor_free(p);
}

/* Saving to path and loading back gives the same layers, weights,
 * training config, optimizer state and predictions (bit for bit). */
static void check_round_trip(cnn_model *m, const char *path, bool keras3, const cnn_tensor *x)
{
    cnn_status st = keras3 ? cnn_model_save_keras(m, path) : cnn_model_save_keras_h5(m, path);
    CHECK_OK(st);
    cnn_model *back = NULL;
    cnn_keras_info info;
    CHECK_OK(cnn_model_load_keras(path, &back, &info));
    if (st || !back)
        return;
    CHECK(info.format == (keras3 ? CNN_KERAS_ZIP : CNN_KERAS_H5));
    CHECK(info.compiled);
    int n = cnn_model_layer_count(m);
    CHECK(cnn_model_layer_count(back) == n);
    for (int i = 0; i < n && i < cnn_model_layer_count(back); i++) {
        CHECK(strcmp(cnn_model_layer_name(m, i), cnn_model_layer_name(back, i)) == 0);
        for (int w = 0; w < CNN_MAX_LAYER_WEIGHTS; w++) {
            int64_t ca = 0, cb = 0;
            float *a = cnn_model_layer_weights(m, i, w, &ca), *b = cnn_model_layer_weights(back, i,
                                                                                          w, &cb);
            CHECK(ca == cb && (!a || memcmp(a, b, (size_t)ca * sizeof *a) == 0));
        }
    }
    cnn_compile_config ca, cb;
    CHECK_OK(cnn_model_compile_config(m, &ca));
    CHECK_OK(cnn_model_compile_config(back, &cb));
    CHECK(ca.loss == cb.loss && ca.optimizer.kind == cb.optimizer.kind
          && ca.optimizer.learning_rate == cb.optimizer.learning_rate
          && ca.optimizer.beta_1 == cb.optimizer.beta_1
          && ca.optimizer.epsilon == cb.optimizer.epsilon && ca.optimizer.rho == cb.optimizer.rho
          && ca.optimizer.momentum == cb.optimizer.momentum);
    CHECK(!keras3 || ca.optimizer.kind != CNN_OPTIMIZER_ADAM || info.optimizer_state);
    cnn_tensor *pa = predict(m, x), *pb = predict(back, x);
    CHECK(pa && pb && memcmp(pa->data, pb->data, (size_t)cnn_tensor_size(pa) * 4) == 0);
    cnn_tensor_free(pa);
    cnn_tensor_free(pb);
    cnn_model_free(back);
}

static void test_real_models(void)
{
    char p2[512], p3[512], out[512];
    const char *what = "the real Keras models: layers, outputs vs PyTorch, round trips";
    if (!model_file(p2, sizeof p2, "mnist-keras2.2.4.h5", what)
        || !model_file(p3, sizeof p3, "mnist-keras3.14.keras", what))
        return;
    cnn_model *m2 = NULL, *m3 = NULL;
    cnn_keras_info i2, i3;
    CHECK_OK(cnn_model_load_keras(p2, &m2, &i2));
    CHECK_OK(cnn_model_load_keras(p3, &m3, &i3));
    cnn_tensor *raw = digits(1.0f), *unit = digits(1.0f / 255.0f);
    CHECK(raw && unit);
    if (!m2 || !m3 || !raw || !unit)
        goto done;
    /* what the files say */
    CHECK(i2.format == CNN_KERAS_H5 && strcmp(i2.keras_version, "2.2.4") == 0);
    CHECK(i3.format == CNN_KERAS_ZIP && strcmp(i3.keras_version, "3.14.0") == 0);
    CHECK(i2.compiled && i2.optimizer_state && i3.compiled && i3.optimizer_state);
    cnn_compile_config cc;
    CHECK_OK(cnn_model_compile_config(m2, &cc));
    CHECK(cc.loss == CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY
          && cc.optimizer.kind == CNN_OPTIMIZER_ADAM && cc.optimizer.learning_rate == 0.001f);
    CHECK(cnn_model_param_count(m2) == 34794 && cnn_model_param_count(m3) == 225034);
    check_layers(m2, keras2_rows, 9);
    check_layers(m3, keras3_rows, 8);
    /* against PyTorch: raw pixels for the Keras 2.2.4 model, [0, 1] for the other */
    check_outputs("keras 2.2.4 .h5 vs PyTorch", m2, raw, "keras2");
    check_outputs("keras 3.14 .keras vs PyTorch", m3, unit, "keras3");
    /* round trips through both of our formats */
    path_in(out, sizeof out, tmpdir, "m2.keras");
    check_round_trip(m2, out, true, raw);
    path_in(out, sizeof out, tmpdir, "m2.h5");
    check_round_trip(m2, out, false, raw);
    path_in(out, sizeof out, tmpdir, "m3.keras");
    check_round_trip(m3, out, true, unit);
    path_in(out, sizeof out, tmpdir, "m3.h5");
    check_round_trip(m3, out, false, unit);
    /* fine-tuning continues from Adam's saved state, and round-trips after it */
    cnn_tensor *labels = NULL;
    CHECK_OK(cnn_dataset_load_idx("tests/keras/digits-labels-idx1-ubyte", &labels));
    if (labels) {
        CHECK_OK(cnn_model_set_threads(m3, 1));
        CHECK_OK(cnn_model_fit(m3, unit, labels, cnn_fit(.epochs = 1, .batch_size = 25), NULL));
        path_in(out, sizeof out, tmpdir, "m3-tuned.keras");
        check_round_trip(m3, out, true, unit);
        cnn_tensor_free(labels);
    }
done:
    cnn_tensor_free(raw);
    cnn_tensor_free(unit);
    cnn_model_free(m2);
    cnn_model_free(m3);
}

/* ---- Rescaling ------------------------------------------------------------------------------ */

/* On the architecture of mnist-keras3.14.keras (tests/data/, in every
 * clone) with the weights it is built with. */
static void test_rescaling(void)
{
    char out[512];
    cnn_model *m3 = NULL, *r = NULL;
    CHECK_OK(cnn_model_from_description("tests/data/keras3_mnist.json", &m3));
    CHECK_OK(cnn_model_create(&r, cnn_shape_hwc(28, 28, 1)));
    if (!m3 || !r)
        goto done;
    /* the same network carrying its preprocessing: raw pixels in */
    CHECK_OK(cnn_model_add_rescaling(r, cnn_rescaling(.scale = 1.0f / 255.0f)));
    for (int i = 0; i < cnn_model_layer_count(m3); i++) {
        cnn_layer_spec s;
        CHECK_OK(cnn_model_layer_spec(m3, i, &s));
        CHECK_OK(cnn_model_add(r, &s));
    }
    for (int i = 0; i < cnn_model_layer_count(m3); i++)
        for (int w = 0; w < 2; w++) {
            int64_t n = 0, k = 0;
            float *src = cnn_model_layer_weights(m3, i, w, &n);
            float *dst = cnn_model_layer_weights(r, i + 1, w, &k);
            if (src && dst && n == k)
                memcpy(dst, src, (size_t)n * sizeof *src);
        }
    cnn_tensor *raw = digits(1.0f), *unit = digits(1.0f / 255.0f);
    cnn_tensor *a = raw ? predict(r, raw) : NULL, *b = unit ? predict(m3, unit) : NULL;
    CHECK(a && b);
    if (a && b)
        CHECK(test_close("Rescaling(1/255) on raw pixels vs /255 beforehand", a->data, b->data,
                         (long)cnn_tensor_size(a), 1e-5, 1e-4));
    /* it survives both Keras formats and the .cnn file */
    const char *names[] = {"r.keras", "r.h5", "r.cnn"};
    for (int f = 0; f < 3; f++) {
        path_in(out, sizeof out, tmpdir, names[f]);
        cnn_model *back = NULL;
        CHECK_OK(f == 0   ? cnn_model_save_keras(r, out)
                 : f == 1 ? cnn_model_save_keras_h5(r, out)
                          : cnn_model_save(r, out));
        CHECK_OK(f < 2 ? cnn_model_load_keras(out, &back, NULL) : cnn_model_load(out, &back));
        cnn_layer_spec s;
        CHECK(back && cnn_model_layer_spec(back, 0, &s) == CNN_OK
              && s.kind == CNN_LAYER_RESCALING && s.u.rescaling.scale == 1.0f / 255.0f
              && s.u.rescaling.offset == 0);
        cnn_tensor *c = back && raw ? predict(back, raw) : NULL;
        CHECK(c && a && memcmp(c->data, a->data, (size_t)cnn_tensor_size(a) * 4) == 0);
        cnn_tensor_free(c);
        cnn_model_free(back);
    }
    /* a description too, and bad values */
    cnn_model *d = NULL;
    const char text[] = "input shape=4,4,1\nRescaling 0.5 offset=-1\nFlatten\n";
    CHECK_OK(cnn_model_from_description_memory(text, strlen(text), "r.model", &d));
    cnn_model_free(d);
    cnn_model *bad = NULL;
    CHECK_OK(cnn_model_create(&bad, cnn_shape_flat(3)));
    CHECK_FAILS(cnn_model_add_rescaling(bad, cnn_rescaling(.scale = 0)),
                CNN_ERR_INVALID_ARGUMENT, "scale must be");
    cnn_model_free(bad);
    cnn_tensor_free(a);
    cnn_tensor_free(b);
    cnn_tensor_free(raw);
    cnn_tensor_free(unit);
done:
    cnn_model_free(r);
    cnn_model_free(m3);
}

/* dLoss/dx through Rescaling against central differences. */
static void test_rescaling_gradient(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(3)));
    CHECK_OK(cnn_model_add_rescaling(m, cnn_rescaling(.scale = -0.7f, .offset = 0.3f)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 2, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_sgd())));
    cnn_tensor *x = NULL, *y = NULL;
    CHECK_OK(cnn_tensor_create(&x, 2, (int64_t[]){2, 3}));
    CHECK_OK(cnn_tensor_create(&y, 1, (int64_t[]){2}));
    if (!m || !x || !y)
        goto done;
    const float xs[6] = {0.2f, -0.5f, 0.9f, 1.1f, 0.3f, -0.4f};
    memcpy(x->data, xs, sizeof xs);
    y->data[1] = 1;
    float grad[6], num[6];
    double loss, lp, lm;
    const float *out;
    cnn_model_zero_gradients(m);
    CHECK_OK(cnn_model_forward(m, x, true, &out));
    CHECK_OK(cnn_model_backward(m, y, &loss, grad));
    for (int i = 0; i < 6; i++) {
        const float h = 1e-2f;
        x->data[i] = xs[i] + h;
        cnn_model_forward(m, x, false, &out);
        cnn_model_backward(m, y, &lp, NULL);
        x->data[i] = xs[i] - h;
        cnn_model_forward(m, x, false, &out);
        cnn_model_backward(m, y, &lm, NULL);
        x->data[i] = xs[i];
        num[i] = (float)((lp - lm) / (2 * h));
    }
    cnn_model_zero_gradients(m);
    CHECK(test_close("Rescaling input gradient", grad, num, 6, 1e-3, 1e-2));
done:
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(m);
}

/* Every layer kind through both formats: the configs we write are read
 * back to the same layers, the weights (BatchNormalization's moving
 * statistics too) and predictions are identical. */
static void test_every_layer(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(12, 12, 2)));
    CHECK_OK(cnn_model_set_seed(m, 7));
    CHECK_OK(cnn_model_add_rescaling(m, cnn_rescaling(.scale = 0.5f, .offset = -0.25f)));
    CHECK_OK(cnn_model_add_zero_padding2d(m, cnn_zero_padding2d(.padding = {1, 0, 2, 1})));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                                .kernel_l2 = 0.001f, .name = "first")));
    CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization(.momentum = 0.9f)));
    CHECK_OK(cnn_model_add_leaky_relu(m, cnn_leaky_relu(.negative_slope = 0.1f)));
    CHECK_OK(cnn_model_add_depthwise_conv2d(m, cnn_depthwise_conv2d(
        .kernel_size = {2, 2}, .depth_multiplier = 2, .padding = CNN_PADDING_SAME)));
    CHECK_OK(cnn_model_add_elu(m, cnn_elu(.alpha = 0.8f)));
    CHECK_OK(cnn_model_add_average_pooling2d(m, cnn_pool2d(.pool_size = {2, 2})));
    CHECK_OK(cnn_model_add_separable_conv2d(m, cnn_separable_conv2d(
        .filters = 5, .kernel_size = {3, 3}, .activation = CNN_ACTIVATION_TANH)));
    CHECK_OK(cnn_model_add_relu(m, cnn_relu(.max_value = 6)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {1, 1},
                                                .no_bias = true)));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2})));
    CHECK_OK(cnn_model_add_reshape(m, cnn_reshape(.target_shape = {1, {-1}})));
    CHECK_OK(cnn_model_add_dropout(m, cnn_dropout(.rate = 0.25f)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 6, .activation = CNN_ACTIVATION_SIGMOID)));
    CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(.activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_rmsprop(.momentum = 0.5f))));
    cnn_tensor *x = NULL, *y = NULL;
    CHECK_OK(cnn_tensor_create(&x, 4, (int64_t[]){6, 12, 12, 2}));
    CHECK_OK(cnn_tensor_create(&y, 1, (int64_t[]){6}));
    if (!m || !x || !y)
        goto done;
    for (int64_t i = 0; i < cnn_tensor_size(x); i++)
        x->data[i] = (float)((i * 37) % 17) / 8.0f;
    for (int i = 0; i < 6; i++)
        y->data[i] = (float)(i % 3);
    CHECK_OK(cnn_model_fit(m, x, y, cnn_fit(.epochs = 2, .batch_size = 3), NULL));
    char out[512];
    for (int f = 0; f < 2; f++) {
        path_in(out, sizeof out, tmpdir, f ? "all.h5" : "all.keras");
        check_round_trip(m, out, f == 0, x);
    }
    /* a second Dense and Conv2D get Keras's numbered keys (dense_1, conv2d_1) */
    path_in(out, sizeof out, tmpdir, "all.keras");
    cnn_model *back = NULL;
    CHECK_OK(cnn_model_load_keras(out, &back, NULL));
    cnn_layer_spec s;
    CHECK(back && cnn_model_layer_spec(back, 2, &s) == CNN_OK && s.kind == CNN_LAYER_CONV2D
          && s.u.conv2d.kernel_l2 == 0.001f && strcmp(s.u.conv2d.name, "first") == 0);
    cnn_model_free(back);
done:
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(m);
}

/* Issue 12: the new activations and from_logits, written in Keras's words
 * (Keras 3 "silu", tf.keras 2 "swish"; the loss as an object with
 * from_logits) and read back; gelu_tanh has no Keras name and is refused. */
static void test_activations_and_logits(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(6, 6, 1)));
    CHECK_OK(cnn_model_set_seed(m, 3));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {3, 3},
                                                .activation = CNN_ACTIVATION_SILU)));
    CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(.activation = CNN_ACTIVATION_HARD_SILU)));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 5, .activation = CNN_ACTIVATION_MISH)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 4, .activation = CNN_ACTIVATION_LEAKY_RELU)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam(), .from_logits = true)));
    json_t *k3 = cnn_keras3_config(m), *k2 = cnn_keras2_config(m),
           *tc = cnn_keras2_training_config(m);
    char *t3 = k3 ? cnn_keras_dumps(k3) : NULL, *t2 = k2 ? cnn_keras_dumps(k2) : NULL,
         *tt = tc ? cnn_keras_dumps(tc) : NULL;
    CHECK(t3 && strstr(t3, "\"activation\": \"silu\"") && strstr(t3, "\"hard_silu\"")
          && strstr(t3, "\"mish\"") && strstr(t3, "\"leaky_relu\"")
          && strstr(t3, "\"class_name\": \"SparseCategoricalCrossentropy\"")
          && strstr(t3, "\"from_logits\": true"));
    CHECK(t2 && strstr(t2, "\"activation\": \"swish\"") && !strstr(t2, "\"silu\""));
    CHECK(tt && strstr(tt, "\"loss\": {\"class_name\": \"SparseCategoricalCrossentropy\"")
          && strstr(tt, "\"from_logits\": true") && strstr(tt, "\"reduction\": \"auto\""));
    free(t3);
    free(t2);
    free(tt);
    json_decref(k3);
    json_decref(k2);
    json_decref(tc);
    cnn_tensor *x = NULL;
    CHECK_OK(cnn_tensor_create(&x, 4, (int64_t[]){2, 6, 6, 1}));
    for (int64_t i = 0; x && i < cnn_tensor_size(x); i++)
        x->data[i] = (float)((i * 13) % 7) / 3.0f - 1.0f;
    char out[512];
    for (int f = 0; x && f < 2; f++) {
        path_in(out, sizeof out, tmpdir, f ? "act.h5" : "act.keras");
        check_round_trip(m, out, f == 0, x);
        cnn_model *back = NULL;
        CHECK_OK(cnn_model_load_keras(out, &back, NULL));
        cnn_compile_config cc;
        CHECK(back && cnn_model_compile_config(back, &cc) == CNN_OK && cc.from_logits);
        for (int i = 0; back && i < cnn_model_layer_count(m); i++) {
            cnn_layer_spec a, b;
            CHECK_OK(cnn_model_layer_spec(m, i, &a));
            CHECK_OK(cnn_model_layer_spec(back, i, &b));
            CHECK(a.kind == b.kind
                  && (a.kind != CNN_LAYER_DENSE || a.u.dense.activation == b.u.dense.activation)
                  && (a.kind != CNN_LAYER_CONV2D || a.u.conv2d.activation == b.u.conv2d.activation)
                  && (a.kind != CNN_LAYER_ACTIVATION
                      || a.u.activation.activation == b.u.activation.activation));
        }
        cnn_model_free(back);
    }
    cnn_tensor_free(x);
    cnn_model_free(m);

    m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(4)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_GELU_TANH,
                                              .name = "approx")));
    path_in(out, sizeof out, tmpdir, "approx.keras");
    CHECK_FAILS(cnn_model_save_keras(m, out), CNN_ERR_INVALID_ARGUMENT,
                "layer 0 (approx): activation gelu_tanh (gelu with approximate=True) has no Keras"
                " name");
    path_in(out, sizeof out, tmpdir, "approx.h5");
    CHECK_FAILS(cnn_model_save_keras_h5(m, out), CNN_ERR_INVALID_ARGUMENT, "gelu_tanh");
    CHECK(access(out, F_OK) != 0);
    cnn_model_free(m);
}

/* ---- Bad files ------------------------------------------------------------------------------- */

static void expect_refused(const void *bytes, size_t size, const char *what, const char *text)
{
    cnn_model *m = NULL;
    cnn_status st = cnn_model_load_keras_memory(bytes, size, what, &m, NULL);
    bool ok = (st == CNN_ERR_FORMAT || st == CNN_ERR_NUMERIC) && !m && cnn_last_error()[0]
           && (!text || strstr(cnn_last_error(), text));
    if (!ok)
        fprintf(stderr, "%s: expected a refusal%s%s, got %s: %s\n", what, text ? " with " : "",
                text ? text : "", cnn_status_name(st), cnn_last_error());
    CHECK(ok);
    cnn_model_free(m);
}

/* Every outcome of a damaged file is a model or a clean error. */
static void expect_clean(const void *bytes, size_t size, const char *what)
{
    cnn_model *m = NULL;
    cnn_status st = cnn_model_load_keras_memory(bytes, size, what, &m, NULL);
    CHECK((st == CNN_OK && m) || ((st == CNN_ERR_FORMAT || st == CNN_ERR_NUMERIC) && !m
                                  && cnn_last_error()[0]));
    cnn_model_free(m);
}

static void test_damaged(void)
{
    const char *files[] = {"mnist-keras2.2.4.h5", "mnist-keras3.14.keras"};
    for (int f = 0; f < 2; f++) {
        char path[512], what[64];
        snprintf(what, sizeof what, "%s truncated and bit-flipped", files[f]);
        if (!model_file(path, sizeof path, files[f], what))
            continue;
        size_t size;
        unsigned char *b = test_read_file(path, &size);
        CHECK(b != NULL);
        if (!b)
            continue;
        expect_refused(b, 0, "empty", "not a Keras file");
        /* cut anywhere: refused */
        for (int k = 1; k < 48; k++) {
            size_t cut = (size_t)((double)size * k / 48);
            snprintf(what, sizeof what, "%s cut at %zu", files[f], cut);
            expect_refused(b, cut, what, NULL);
        }
        /* bytes flipped: a model or a clean error, never a crash */
        uint32_t seed = 2024;
        unsigned char *c = malloc(size);
        for (int k = 0; c && k < 120; k++) {
            memcpy(c, b, size);
            for (int j = 0; j < 1 + k % 5; j++) {
                seed = seed * 1664525u + 1013904223u;
                c[(seed >> 3) % size] ^= (unsigned char)(1u << (seed >> 29));
            }
            snprintf(what, sizeof what, "%s flip %d", files[f], k);
            expect_clean(c, size, what);
        }
        free(c);
        free(b);
    }
    expect_refused("CNNMODEL", 8, "a .cnn file", "not a Keras file");
    expect_refused("PK\x05\x06", 4, "junk zip", "zip");
}

/* A zip in memory of (name, text) members. */
static void *make_zip(const char *const *names, const void *const *data, const size_t *sizes,
                      int n, size_t *size)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    zip_source_keep(src);
    for (int i = 0; i < n; i++)
        zip_file_add(za, names[i], zip_source_buffer(za, data[i], sizes[i], 0), 0);
    zip_close(za);
    zip_source_open(src);
    zip_source_seek(src, 0, SEEK_END);
    zip_int64_t len = zip_source_tell(src);
    zip_source_seek(src, 0, SEEK_SET);
    void *buf = malloc((size_t)len);
    zip_source_read(src, buf, (zip_uint64_t)len);
    zip_source_close(src);
    zip_source_free(src);
    zip_error_fini(&ze);
    *size = (size_t)len;
    return buf;
}

/* Damaged archives made from the architecture of mnist-keras3.14.keras
 * (tests/data/, in every clone) with the weights it is built with. */
static void test_bad_archives(void)
{
    cnn_model *m = NULL, *small = NULL;
    CHECK_OK(cnn_model_from_description("tests/data/keras3_mnist.json", &m));
    if (!m)
        return;
    /* the members, read back from our own export */
    char out[512], small_path[512];
    path_in(out, sizeof out, tmpdir, "bad.keras");
    CHECK_OK(cnn_model_save_keras(m, out));
    size_t zsize;
    unsigned char *zbytes = test_read_file(out, &zsize);
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(zbytes, zsize, 0, &ze);
    zip_t *za = zip_open_from_source(src, ZIP_RDONLY, &ze);
    void *member[3] = {NULL, NULL, NULL};
    size_t msize[3] = {0, 0, 0};
    const char *mname[3] = {"metadata.json", "config.json", "model.weights.h5"};
    for (int i = 0; za && i < 3; i++) {
        zip_stat_t st;
        zip_stat(za, mname[i], 0, &st);
        msize[i] = (size_t)st.size;
        member[i] = malloc(msize[i]);
        zip_file_t *zf = zip_fopen(za, mname[i], 0);
        zip_fread(zf, member[i], msize[i]);
        zip_fclose(zf);
    }
    zip_discard(za);
    zip_error_fini(&ze);
    size_t size;
    void *z;
    /* members missing */
    z = make_zip((const char *[]){"metadata.json", "model.weights.h5"},
                 (const void *[]){member[0], member[2]}, (size_t[]){msize[0], msize[2]}, 2,
                 &size);
    expect_refused(z, size, "no config.json", "no config.json");
    free(z);
    z = make_zip((const char *[]){"metadata.json", "config.json"},
                 (const void *[]){member[0], member[1]}, (size_t[]){msize[0], msize[1]}, 2,
                 &size);
    expect_refused(z, size, "no weights", "no model.weights.h5");
    free(z);
    /* custom and unsupported layers, functional models: named, refused */
    const char *configs[][2] = {
        {"{\"module\": \"keras\", \"class_name\": \"Sequential\", \"config\": {\"name\": \"s\","
         " \"layers\": [{\"class_name\": \"InputLayer\", \"config\": {\"batch_shape\": [null,"
         " 28, 28, 1]}}, {\"class_name\": \"Lambda\", \"config\": {\"name\": \"evil\","
         " \"function\": \"os.system\"}}]}}",
         "'evil' (Lambda)"},
        {"{\"module\": \"keras\", \"class_name\": \"Sequential\", \"config\": {\"name\": \"s\","
         " \"layers\": [{\"class_name\": \"InputLayer\", \"config\": {\"batch_shape\": [null,"
         " 28, 28, 1]}}, {\"module\": \"my_package\", \"class_name\": \"Conv2D\","
         " \"registered_name\": \"Custom>Conv2D\", \"config\": {\"name\": \"mine\"}}]}}",
         "'mine' (Conv2D): custom layer"},
        {"{\"module\": \"keras\", \"class_name\": \"Functional\", \"config\": {\"name\": \"f\","
         " \"layers\": []}}",
         "Functional"},
        {"{not json", "JSON syntax error"},
    };
    for (size_t k = 0; k < sizeof configs / sizeof configs[0]; k++) {
        z = make_zip((const char *[]){"metadata.json", "config.json", "model.weights.h5"},
                     (const void *[]){member[0], configs[k][0], member[2]},
                     (size_t[]){msize[0], strlen(configs[k][0]), msize[2]}, 3, &size);
        expect_refused(z, size, configs[k][1], configs[k][1]);
        free(z);
    }
    /* weights whose shapes do not match the architecture: the config of a
     * smaller Dense with the real weights */
    CHECK_OK(cnn_model_create(&small, cnn_shape_hwc(28, 28, 1)));
    for (int i = 0; small && i < cnn_model_layer_count(m); i++) {
        cnn_layer_spec s;
        cnn_model_layer_spec(m, i, &s);
        if (s.kind == CNN_LAYER_DENSE && s.u.dense.units == 128)
            s.u.dense.units = 64;
        CHECK_OK(cnn_model_add(small, &s));
    }
    path_in(small_path, sizeof small_path, tmpdir, "small.keras");
    CHECK_OK(cnn_model_save_keras(small, small_path));
    cnn_model_free(small);
    unsigned char *sbytes = test_read_file(small_path, &size);
    zip_error_init(&ze);
    src = zip_source_buffer_create(sbytes, size, 0, &ze);
    za = zip_open_from_source(src, ZIP_RDONLY, &ze);
    zip_stat_t st;
    zip_stat(za, "config.json", 0, &st);
    char *small_config = calloc(1, (size_t)st.size + 1);
    zip_file_t *zf = zip_fopen(za, "config.json", 0);
    zip_fread(zf, small_config, st.size);
    zip_fclose(zf);
    zip_discard(za);
    zip_error_fini(&ze);
    z = make_zip((const char *[]){"metadata.json", "config.json", "model.weights.h5"},
                 (const void *[]){member[0], small_config, member[2]},
                 (size_t[]){msize[0], strlen(small_config), msize[2]}, 3, &size);
    expect_refused(z, size, "shape mismatch", "layers/dense/vars/0 has shape (1600, 128), the"
                                               " architecture needs (1600, 64)");
    free(z);
    free(small_config);
    free(sbytes);
    for (int i = 0; i < 3; i++)
        free(member[i]);
    free(zbytes);
    cnn_model_free(m);
}

/* A legacy .h5 changed in place with HDF5: attributes replaced. */
static void rewrite_attr(const char *path, const char *group, const char *attr, const char *text)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    H5Adelete(g, attr);
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t a = H5Acreate2(g, attr, t, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &text);
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    H5Gclose(g);
    H5Fclose(f);
}

/* Damaged legacy .h5 files made from the architecture of
 * mnist-keras2.2.4.h5: tests/data/keras2_mnist.json is its model_config
 * attribute, unchanged (in every clone), with the weights it is built with. */
static void test_bad_h5(void)
{
    char out[512];
    path_in(out, sizeof out, tmpdir, "bad.h5");
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_from_description("tests/data/keras2_mnist.json", &m));
    size_t size;
    unsigned char *b = test_read_file("tests/data/keras2_mnist.json", &size);
    CHECK(b != NULL);
    if (!m || !b) {
        cnn_model_free(m);
        free(b);
        return;
    }
    /* a Dense of 11 units where the weights have 10 */
    char *edited = calloc(1, size + 1);
    CHECK(edited != NULL);
    if (edited)
        memcpy(edited, b, size);
    char *units = edited ? strstr(edited, "\"units\": 10") : NULL;
    CHECK(units != NULL);
    if (units)
        units[10] = '1';
    CHECK_OK(cnn_model_save_keras_h5(m, out));
    rewrite_attr(out, "/", "model_config", edited);
    size_t bsize;
    unsigned char *bad = test_read_file(out, &bsize);
    expect_refused(bad, bsize, "units 11", "dense_1/kernel:0 has shape (1568, 10), the"
                                           " architecture needs (1568, 11)");
    free(bad);
    /* weight_names that list one weight for a Conv2D */
    CHECK_OK(cnn_model_save_keras_h5(m, out));
    hid_t f = H5Fopen(out, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t g = H5Gopen2(f, "model_weights/conv2d_1", H5P_DEFAULT);
    H5Adelete(g, "weight_names");
    hsize_t one = 1;
    hid_t s = H5Screate_simple(1, &one, NULL);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 17);
    hid_t a = H5Acreate2(g, "weight_names", t, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, "conv2d_1/kernel:0");
    H5Aclose(a);
    H5Tclose(t);
    H5Sclose(s);
    H5Gclose(g);
    H5Fclose(f);
    bad = test_read_file(out, &bsize);
    expect_refused(bad, bsize, "one weight", "has 1 weight for layer conv2d_1 (Conv2D), which"
                                             " has 2");
    free(bad);
    /* no model_config: a weights-only file */
    CHECK_OK(cnn_model_save_keras_h5(m, out));
    f = H5Fopen(out, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Adelete(f, "model_config");
    H5Fclose(f);
    bad = test_read_file(out, &bsize);
    expect_refused(bad, bsize, "weights only", "weights only");
    free(bad);
    /* an unsupported training config leaves the model uncompiled, with why */
    CHECK_OK(cnn_model_save_keras_h5(m, out));
    rewrite_attr(out, "/", "training_config",
                 "{\"optimizer_config\": {\"class_name\": \"Adagrad\", \"config\": {}},"
                 " \"loss\": \"mae\"}");
    cnn_model *u = NULL;
    cnn_keras_info info;
    CHECK_OK(cnn_model_load_keras(out, &u, &info));
    cnn_compile_config cc;
    CHECK(u && info.has_training_config && !info.compiled && strstr(info.not_compiled, "Adagrad")
          && cnn_model_compile_config(u, &cc) == CNN_ERR_STATE);
    cnn_model_free(u);
    free(edited);
    free(b);
    cnn_model_free(m);
}

/* The models shipped in models/mlperf-tiny/ (Functional graphs) are
 * tested in test_keras_graph.c: PyTorch agreement, fine-tuning, export. */

/* tf.keras <= 2.15's hard_sigmoid is clip(0.2 x + 0.5, 0, 1), Keras 3's
 * (the library's) relu6(x + 3) / 6: a pre-3 file using it is refused, not
 * silently read with the other function, and the legacy .h5 writer, whose
 * files tf.keras 2 reads, refuses it too. */
static void test_hard_sigmoid(void)
{
    cnn_model *m = NULL, *back = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(4)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SIGMOID,
                                              .name = "gate")));
    char h5[512], keras[512];
    path_in(h5, sizeof h5, tmpdir, "hard.h5");
    path_in(keras, sizeof keras, tmpdir, "hard.keras");
    CHECK_OK(cnn_model_save_keras_h5(m, h5));
    /* the model_config of a tf.keras 2 Sequential using hard_sigmoid */
    static const char config[] =
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"sequential\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 4],"
        " \"dtype\": \"float32\", \"name\": \"input_1\"}},"
        " {\"class_name\": \"Dense\", \"config\": {\"name\": \"gate\", \"trainable\": true,"
        " \"units\": 3, \"activation\": \"hard_sigmoid\", \"use_bias\": true}}]},"
        " \"keras_version\": \"2.15.0\", \"backend\": \"tensorflow\"}";
    rewrite_attr(h5, "/", "model_config", config);
    CHECK_FAILS(cnn_model_load_keras(h5, &back, NULL), CNN_ERR_FORMAT,
                "layer 'gate' (Dense): activation hard_sigmoid in a file of Keras 2.15.0:"
                " tf.keras 2 computes it as clip(0.2 x + 0.5, 0, 1)");
    CHECK(back == NULL);
    rewrite_attr(h5, "/", "keras_version", "");
    CHECK_FAILS(cnn_model_load_keras(h5, &back, NULL), CNN_ERR_FORMAT,
                "Keras (version not recorded)");
    /* Keras 3's legacy writer records its own version: its meaning is ours */
    rewrite_attr(h5, "/", "keras_version", "3.3.3");
    cnn_layer_spec s = {0};
    CHECK_OK(cnn_model_load_keras(h5, &back, NULL));
    CHECK(back && cnn_model_layer_spec(back, 0, &s) == CNN_OK && s.kind == CNN_LAYER_DENSE
          && s.u.dense.activation == CNN_ACTIVATION_HARD_SIGMOID);
    if (back) {
        /* .keras keeps it (Keras 3 wrote it, Keras 3 reads it) */
        CHECK_OK(cnn_model_save_keras(back, keras));
        cnn_model *again = NULL;
        CHECK_OK(cnn_model_load_keras(keras, &again, NULL));
        CHECK(again && cnn_model_layer_spec(again, 0, &s) == CNN_OK
              && s.u.dense.activation == CNN_ACTIVATION_HARD_SIGMOID);
        cnn_model_free(again);
        /* a legacy .h5 is not written with it */
        path_in(h5, sizeof h5, tmpdir, "hard_out.h5");
        CHECK_FAILS(cnn_model_save_keras_h5(back, h5), CNN_ERR_INVALID_ARGUMENT,
                    "layer 'gate': activation hard_sigmoid is relu6(x + 3) / 6 here");
        CHECK(access(h5, F_OK) != 0);
    }
    cnn_model_free(back);
    back = NULL;
    /* a .keras of tf.keras 2.13 (it wrote the format too) */
    size_t zsize;
    unsigned char *zbytes = test_read_file(keras, &zsize);
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zbytes ? zip_source_buffer_create(zbytes, zsize, 0, &ze) : NULL;
    zip_t *za = src ? zip_open_from_source(src, ZIP_RDONLY, &ze) : NULL;
    void *member[2] = {NULL, NULL};
    size_t msize[2] = {0, 0};
    const char *mname[2] = {"config.json", "model.weights.h5"};
    for (int i = 0; za && i < 2; i++) {
        zip_stat_t st;
        zip_stat(za, mname[i], 0, &st);
        msize[i] = (size_t)st.size;
        member[i] = malloc(msize[i]);
        zip_file_t *zf = zip_fopen(za, mname[i], 0);
        zip_fread(zf, member[i], msize[i]);
        zip_fclose(zf);
    }
    if (za)
        zip_discard(za);
    zip_error_fini(&ze);
    CHECK(member[0] && member[1]);
    if (member[0] && member[1]) {
        static const char meta[] = "{\"keras_version\": \"2.13.1\", \"date_saved\": \"x\"}";
        size_t size;
        void *z = make_zip((const char *[]){"metadata.json", "config.json", "model.weights.h5"},
                           (const void *[]){meta, member[0], member[1]},
                           (size_t[]){sizeof meta - 1, msize[0], msize[1]}, 3, &size);
        expect_refused(z, size, "tf.keras 2.13 .keras with hard_sigmoid",
                       "'gate' (Dense): activation hard_sigmoid in a file of Keras 2.13.1");
        free(z);
    }
    free(member[0]);
    free(member[1]);
    free(zbytes);
    cnn_model_free(m);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cnn-keras-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the test's own HDF5 calls */
    test_real_models();
    test_rescaling();
    test_rescaling_gradient();
    test_every_layer();
    test_activations_and_logits();
    test_damaged();
    test_bad_archives();
    test_bad_h5();
    test_hard_sigmoid();
    if (!test_remove_tree(tmpdir))
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish("test_keras");
}
