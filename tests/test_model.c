/* The Sequential model's behaviour as a Keras user expects it: names,
 * shape errors at add(), data checks with helpful messages, dropout,
 * optimizer update rules, validation_split, determinism, training. */
#include <stdlib.h>

#include "test.h"

static cnn_tensor *tensor(int rank, const int64_t *dims)
{
    cnn_tensor *t = NULL;
    cnn_tensor_create(&t, rank, dims);
    return t;
}

static void test_names_and_shape_errors(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(10, 10, 1)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {3, 3})));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {3, 3}, .name = "mine")));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {3, 3})));
    CHECK(strcmp(cnn_model_layer_name(m, 0), "conv2d") == 0);
    CHECK(strcmp(cnn_model_layer_name(m, 1), "mine") == 0);
    CHECK(strcmp(cnn_model_layer_name(m, 2), "conv2d_1") == 0);
    CHECK(strcmp(cnn_model_layer_type(m, 2), "Conv2D") == 0);
    CHECK_FAILS(cnn_model_add_dense(m, cnn_dense(.units = 3, .name = "mine")),
                CNN_ERR_INVALID_ARGUMENT, "already has that name");
    /* 4x4 left; a 5x5 valid kernel does not fit and the error names it */
    CHECK_FAILS(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {5, 5})),
                CNN_ERR_SHAPE, "conv2d_2 (Conv2D): kernel 5x5");
    CHECK_FAILS(cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {5, 5})), CNN_ERR_SHAPE,
                "max_pooling2d (MaxPooling2D): pool_size 5x5 is larger");
    CHECK_FAILS(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 0, .kernel_size = {3, 3})),
                CNN_ERR_INVALID_ARGUMENT, "filters must be >= 1, got 0");
    CHECK_FAILS(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 1, .kernel_size = {3, 3},
                                                   .strides = {2, 2}, .dilation_rate = {2, 2})),
                CNN_ERR_INVALID_ARGUMENT, "cannot be combined");
    CHECK_FAILS(cnn_model_add_dropout(m, cnn_dropout(.rate = 1.0f)), CNN_ERR_INVALID_ARGUMENT,
                "rate must be in [0, 1)");
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_FAILS(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 1, .kernel_size = {1, 1})),
                CNN_ERR_SHAPE, "expects input of rank 3");
    CHECK(cnn_model_layer_count(m) == 4);
    cnn_model_free(m);
    cnn_model_free(NULL);
    cnn_tensor_free(NULL);
    cnn_history_free(NULL);
    CHECK_FAILS(cnn_model_create(&m, cnn_shape_hwc(0, 5, 1)), CNN_ERR_INVALID_ARGUMENT,
                "dimension 0 must be >= 1");
}

/* Grayscale data without the channel axis: a clear error, then it works. */
static void test_missing_channel_axis(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(6, 6, 1)));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 2, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)));
    cnn_tensor *x = tensor(3, (int64_t[]){4, 6, 6}), *y = tensor(1, (int64_t[]){4});
    CHECK_FAILS(cnn_model_fit(m, x, y, cnn_fit(), NULL), CNN_ERR_SHAPE,
                "x has shape (4, 6, 6), the model expects (None, 6, 6, 1); grayscale images need"
                " a channel axis: call cnn_tensor_expand_dims(x)");
    CHECK_OK(cnn_tensor_expand_dims(x));
    CHECK(x->rank == 4 && x->dims[3] == 1);
    CHECK_OK(cnn_model_fit(m, x, y, cnn_fit(), NULL));
    cnn_tensor *wrong = tensor(4, (int64_t[]){4, 5, 6, 1});
    CHECK_FAILS(cnn_model_predict(m, wrong, 0, &(cnn_tensor *){NULL}), CNN_ERR_SHAPE,
                "x has shape (4, 5, 6, 1), the model expects (None, 6, 6, 1)");
    cnn_tensor *short_y = tensor(1, (int64_t[]){3});
    CHECK_FAILS(cnn_model_evaluate(m, x, short_y, 0, NULL, NULL), CNN_ERR_SHAPE,
                "x has 4 examples but y has 3");
    /* no targets: an error, not a NULL dereference */
    CHECK_FAILS(cnn_model_evaluate(m, x, NULL, 0, &(double){0}, NULL), CNN_ERR_INVALID_ARGUMENT,
                "evaluate: y is NULL");
    CHECK_FAILS(cnn_model_fit(m, x, NULL, cnn_fit(), NULL), CNN_ERR_INVALID_ARGUMENT,
                "fit: y is NULL");
    y->data[2] = 7;
    CHECK_FAILS(cnn_model_fit(m, x, y, cnn_fit(), NULL), CNN_ERR_INVALID_ARGUMENT,
                "has label 7, expected an integer in [0, 2)");
    cnn_tensor_free(wrong);
    cnn_tensor_free(short_y);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(m);
}

static void test_call_order(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(3)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 2)));
    cnn_tensor *x = tensor(2, (int64_t[]){2, 3}), *y = tensor(2, (int64_t[]){2, 2});
    CHECK_FAILS(cnn_model_fit(m, x, y, cnn_fit(), NULL), CNN_ERR_STATE, "compile");
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_MSE)));
    CHECK_FAILS(cnn_model_add_dense(m, cnn_dense(.units = 2)), CNN_ERR_STATE, "already built");
    CHECK_FAILS(cnn_model_compile(m, cnn_compile()), CNN_ERR_INVALID_ARGUMENT, "loss must be");
    cnn_tensor *onehot = NULL, *labels = tensor(1, (int64_t[]){2});
    labels->data[1] = 2.5f;
    CHECK_FAILS(cnn_tensor_one_hot(labels, 3, &onehot), CNN_ERR_INVALID_ARGUMENT,
                "label 1 is 2.5, expected an integer in [0, 3)");
    labels->data[1] = 2;
    CHECK_OK(cnn_tensor_one_hot(labels, 3, &onehot));
    CHECK(onehot && onehot->data[0] == 1 && onehot->data[5] == 1 && onehot->data[4] == 0);
    cnn_tensor_free(onehot);
    cnn_tensor_free(labels);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(m);
}

static void test_dropout(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(1000)));
    CHECK_OK(cnn_model_add_dropout(m, cnn_dropout(.rate = 0.25f, .seed = 7)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_MSE)));
    cnn_tensor *x = tensor(2, (int64_t[]){2, 1000});
    for (int i = 0; i < 2000; i++)
        x->data[i] = 1.0f;
    const float *out;
    CHECK_OK(cnn_model_forward(m, x, false, &out));
    int same = 0;
    for (int i = 0; i < 2000; i++)
        same += out[i] == 1.0f;
    CHECK(same == 2000); /* identity in inference */
    CHECK_OK(cnn_model_forward(m, x, true, &out));
    int dropped = 0, scaled = 0;
    for (int i = 0; i < 2000; i++) {
        dropped += out[i] == 0.0f;
        scaled += fabsf(out[i] - 1.0f / 0.75f) < 1e-6f;
    }
    CHECK(dropped + scaled == 2000);
    CHECK(dropped > 400 && dropped < 600); /* about 25% */
    cnn_tensor_free(x);
    cnn_model_free(m);
}

/* One step of each optimizer on w (scalar Dense, no bias) with loss
 * mse(x w, t): for x = 1, t = 0, the gradient is 2 w. */
static float one_step(cnn_optimizer opt, float w0, int steps)
{
    cnn_model *m = NULL;
    cnn_model_create(&m, cnn_shape_flat(1));
    cnn_model_add_dense(m, cnn_dense(.units = 1, .no_bias = true));
    cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_MSE, .optimizer = opt));
    float *w = cnn_model_layer_weights(m, 0, 0, NULL);
    *w = w0;
    cnn_tensor *x = tensor(2, (int64_t[]){1, 1}), *t = tensor(2, (int64_t[]){1, 1});
    x->data[0] = 1;
    for (int s = 0; s < steps; s++) {
        cnn_model_zero_gradients(m);
        cnn_model_forward(m, x, true, NULL);
        cnn_model_backward(m, t, NULL, NULL);
        cnn_model_apply_gradients(m);
    }
    float result = *w;
    cnn_tensor_free(x);
    cnn_tensor_free(t);
    cnn_model_free(m);
    return result;
}

static void test_optimizers(void)
{
    /* SGD: w -= 0.01 * 2w */
    CHECK(fabsf(one_step(cnn_sgd(), 1.0f, 1) - 0.98f) < 1e-6f);
    /* momentum 0.9: v1 = -0.1*2 = -0.2, w1 = 0.8; v2 = 0.9*-0.2 - 0.1*1.6 = -0.34, w2 = 0.46 */
    CHECK(fabsf(one_step(cnn_sgd(.learning_rate = 0.1f, .momentum = 0.9f), 1.0f, 2) - 0.46f) < 1e-6f);
    /* nesterov: v1 = -0.2, w1 = 1 + 0.9*-0.2 - 0.2 = 0.62 */
    CHECK(fabsf(one_step(cnn_sgd(.learning_rate = 0.1f, .momentum = 0.9f, .nesterov = true), 1.0f, 1)
                - 0.62f) < 1e-6f);
    /* Adam's first step moves by lr * g / (|g| + eps) ~ lr */
    CHECK(fabsf(one_step(cnn_adam(), 1.0f, 1) - 0.999f) < 1e-6f);
    /* RMSprop: v = 0.1 * 4 = 0.4, step = 0.001 * 2 / sqrt(0.4 + 1e-7) */
    CHECK(fabsf(one_step(cnn_rmsprop(), 1.0f, 1) - (1.0f - 0.002f / sqrtf(0.4f))) < 1e-6f);
}

/* Two bright-side classes: left half bright or right half bright. */
static void make_sides(int n, cnn_tensor **x, cnn_tensor **y)
{
    *x = tensor(4, (int64_t[]){n, 8, 8, 1});
    *y = tensor(1, (int64_t[]){n});
    unsigned s = 1;
    for (int i = 0; i < n; i++) {
        int label = i % 2;
        (*y)->data[i] = (float)label;
        for (int p = 0; p < 64; p++) {
            s = s * 1103515245u + 12345u;
            float noise = (float)((s >> 16) & 1023) / 1023.0f * 0.6f;
            int right = p % 8 >= 4;
            (*x)->data[i * 64 + p] = noise + (right == label ? 0.5f : 0.0f);
        }
    }
}

static cnn_model *small_cnn(uint64_t seed, int threads)
{
    cnn_model *m = NULL;
    cnn_model_create(&m, cnn_shape_hwc(8, 8, 1));
    cnn_model_set_seed(m, seed);
    cnn_model_set_threads(m, threads);
    cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                       .padding = CNN_PADDING_SAME,
                                       .activation = CNN_ACTIVATION_RELU));
    cnn_model_add_max_pooling2d(m, cnn_pool2d());
    cnn_model_add_flatten(m, cnn_flatten());
    cnn_model_add_dropout(m, cnn_dropout(.rate = 0.2f));
    cnn_model_add_dense(m, cnn_dense(.units = 2, .activation = CNN_ACTIVATION_SOFTMAX));
    cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                     .optimizer = cnn_adam(.learning_rate = 0.01f)));
    return m;
}

static bool stop_after_3_steps(const cnn_progress *p, void *user)
{
    (void)user;
    return !(p->event == CNN_PROGRESS_BATCH_END && p->step == 3);
}

static void test_training_and_determinism(void)
{
    cnn_tensor *x, *y;
    make_sides(400, &x, &y);
    cnn_model *a = small_cnn(3, 2), *b = small_cnn(3, 2);
    cnn_history *h = NULL;
    CHECK_OK(cnn_model_fit(a, x, y, cnn_fit(.epochs = 4, .batch_size = 16, .validation_split = 0.25f),
                           &h));
    CHECK(h && h->epochs == 4);
    CHECK(h && h->accuracy[3] > 0.9 && h->val_accuracy[3] > 0.9);
    CHECK(h && h->loss[3] < h->loss[0]);
    /* validation is the last 25%, evaluated after the epoch */
    cnn_tensor *vx, *vy;
    cnn_tensor_slice(x, 300, 100, &vx);
    cnn_tensor_slice(y, 300, 100, &vy);
    double vl = 0, va = 0;
    CHECK_OK(cnn_model_evaluate(a, vx, vy, 16, &vl, &va));
    CHECK(h && fabs(vl - h->val_loss[3]) < 1e-9 && fabs(va - h->val_accuracy[3]) < 1e-12);
    /* same seed, same threads: bit-identical weights */
    CHECK_OK(cnn_model_fit(b, x, y, cnn_fit(.epochs = 4, .batch_size = 16, .validation_split = 0.25f),
                           NULL));
    int64_t n;
    const float *wa = cnn_model_layer_weights(a, 4, 0, &n), *wb = cnn_model_layer_weights(b, 4, 0, NULL);
    CHECK(memcmp(wa, wb, (size_t)n * sizeof(float)) == 0);
    /* predict gives probabilities */
    cnn_tensor *p = NULL;
    CHECK_OK(cnn_model_predict(a, vx, 7, &p));
    CHECK(p && p->rank == 2 && p->dims[0] == 100 && p->dims[1] == 2);
    CHECK(p && fabsf(p->data[0] + p->data[1] - 1.0f) < 1e-6f);
    /* a callback can stop training */
    cnn_model *c = small_cnn(3, 1);
    CHECK_FAILS(cnn_model_fit(c, x, y, cnn_fit(.progress = stop_after_3_steps), NULL),
                CNN_ERR_INTERRUPTED, "stopped by the progress callback");
    cnn_model_free(c);
    cnn_tensor_free(p);
    cnn_tensor_free(vx);
    cnn_tensor_free(vy);
    cnn_history_free(h);
    cnn_model_free(a);
    cnn_model_free(b);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

/* Keras splits 8000 examples with validation_split 0.1 into 7200 + 800;
 * fit once computed 1 - 0.1f in float terms and validated on 801. */
static bool record_steps(const cnn_progress *p, void *user)
{
    *(int64_t *)user = p->steps;
    return false; /* stop after the first step */
}

static void test_validation_split_sizes(void)
{
    int64_t train = -1, val = -1, steps = -1;
    CHECK_OK(cnn_fit_split_sizes(8000, 0.1f, 32, &train, &val, &steps));
    CHECK(train == 7200 && val == 800 && steps == 225);
    CHECK_OK(cnn_fit_split_sizes(512, 0.1f, 32, &train, &val, &steps));
    CHECK(train == 460 && val == 52 && steps == 15);
    CHECK_OK(cnn_fit_split_sizes(100, 0.0f, 1000, &train, &val, &steps));
    CHECK(train == 100 && val == 0 && steps == 1);
    CHECK_OK(cnn_fit_split_sizes(10, 0.3f, 3, &train, &val, &steps));
    CHECK(train == 7 && val == 3 && steps == 3);
    /* an empty part fails and still says what each part would get */
    CHECK_FAILS(cnn_fit_split_sizes(20, 0.96f, 32, &train, &val, &steps),
                CNN_ERR_INVALID_ARGUMENT, "leaves 0 for training and 20 for validation");
    CHECK(train == 0 && val == 20 && steps == 0);
    CHECK_OK(cnn_fit_split_sizes(5, 0.1f, 32, &train, &val, &steps));
    CHECK(train == 4 && val == 1 && steps == 1);
    CHECK_FAILS(cnn_fit_split_sizes(5, 1e-20f, 32, &train, &val, &steps),
                CNN_ERR_INVALID_ARGUMENT, "leaves 5 for training and 0 for validation");
    CHECK(train == 5 && val == 0);
    CHECK_FAILS(cnn_fit_split_sizes(10, 1.0f, 32, &train, &val, &steps),
                CNN_ERR_INVALID_ARGUMENT, "validation_split in [0, 1)");
    CHECK_FAILS(cnn_fit_split_sizes(10, 0.5f, 0, &train, &val, &steps),
                CNN_ERR_INVALID_ARGUMENT, "examples_per_step >= 1");

    /* fit itself trains on the 7200: with batch_size 1, steps = examples */
    int64_t dims_x[2] = {8000, 1}, dims_y[1] = {8000};
    cnn_tensor *x = NULL, *y = NULL;
    cnn_model *m = NULL;
    CHECK_OK(cnn_tensor_create(&x, 2, dims_x));
    CHECK_OK(cnn_tensor_create(&y, 1, dims_y));
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(1)));
    if (!x || !y || !m)
        goto done;
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 2, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_sgd())));
    int64_t seen = 0;
    CHECK_FAILS(cnn_model_fit(m, x, y, cnn_fit(.batch_size = 1, .validation_split = 0.1f,
                                               .progress = record_steps, .progress_user = &seen),
                              NULL),
                CNN_ERR_INTERRUPTED, "stopped by the progress callback");
    CHECK(seen == 7200);
    seen = 0;
    CHECK_FAILS(cnn_model_fit(m, x, y, cnn_fit(.batch_size = 1, .validation_split = 0.9999f),
                              NULL),
                CNN_ERR_INVALID_ARGUMENT, "leaves 0 for training and 8000 for validation");
done:
    cnn_model_free(m);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

/* A rank-3 output (Dense after Conv2D, no Flatten) fails at compile, before
 * training, naming the layer; it once failed in fit's first step. */
static void test_output_needs_flatten(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(6, 6, 1)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {3, 3})));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_FAILS(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                                 .optimizer = cnn_adam())),
                CNN_ERR_SHAPE, "from layer dense (Dense), has shape (4, 4, 3)");
    CHECK(strstr(cnn_last_error(), "add Flatten") != NULL);
    cnn_model_free(m);
    /* Dense on rank 3 is still a layer like any other before Flatten (Keras) */
    m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(6, 6, 1)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3)));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_MSE, .optimizer = cnn_sgd())));
    cnn_model_free(m);
}

/* cnn_model_load on a Keras file says which loader reads it. */
static void test_load_keras_file_hint(void)
{
    static const unsigned char h5[16] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    static const unsigned char zip[16] = {'P', 'K', 3, 4};
    cnn_model *m = NULL;
    CHECK_FAILS(cnn_model_load_memory(h5, sizeof h5, "model.h5", &m), CNN_ERR_FORMAT,
                "it is a Keras file (.h5 or .keras); load it with cnn_model_load_keras");
    CHECK_FAILS(cnn_model_load_memory(zip, sizeof zip, "model.keras", &m), CNN_ERR_FORMAT,
                "load it with cnn_model_load_keras");
    static const unsigned char other[16] = "NOTAMODELATALL!";
    CHECK_FAILS(cnn_model_load_memory(other, sizeof other, "x.cnn", &m), CNN_ERR_FORMAT,
                "(not a cnn model file)");
    CHECK(m == NULL);
}

/* Issue 12: the one table of activation names. */
static void test_activation_names(void)
{
    for (int a = 0; a <= CNN_ACTIVATION_MISH; a++) {
        const char *name = cnn_activation_name((cnn_activation)a);
        cnn_activation back = (cnn_activation)-1;
        CHECK(name != NULL);
        CHECK_OK(cnn_activation_from_name(name, &back));
        CHECK(back == (cnn_activation)a);
    }
    CHECK(cnn_activation_name((cnn_activation)(CNN_ACTIVATION_MISH + 1)) == NULL);
    CHECK(cnn_activation_name((cnn_activation)-1) == NULL);
    CHECK(strcmp(cnn_activation_name(CNN_ACTIVATION_SILU), "silu") == 0);
    CHECK(strcmp(cnn_activation_name(CNN_ACTIVATION_HARD_SILU), "hard_silu") == 0);
    const struct {
        const char *name;
        cnn_activation a;
    } aliases[] = {{"swish", CNN_ACTIVATION_SILU},     {"hard_swish", CNN_ACTIVATION_HARD_SILU},
                   {"None", CNN_ACTIVATION_LINEAR},     {"ReLU6", CNN_ACTIVATION_RELU6},
                   {"gelu_approximate", CNN_ACTIVATION_GELU_TANH},
                   {"GELU", CNN_ACTIVATION_GELU},       {"leaky_relu", CNN_ACTIVATION_LEAKY_RELU}};
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        cnn_activation a = (cnn_activation)-1;
        CHECK_OK(cnn_activation_from_name(aliases[i].name, &a));
        CHECK(a == aliases[i].a);
    }
    cnn_activation a = CNN_ACTIVATION_TANH;
    CHECK_FAILS(cnn_activation_from_name("crelu", &a), CNN_ERR_INVALID_ARGUMENT,
                "activation: expected one of linear, relu, sigmoid, tanh, softmax, silu");
    CHECK(strstr(cnn_last_error(), "mish, got 'crelu'") != NULL);
    CHECK(a == CNN_ACTIVATION_TANH);
    CHECK_FAILS(cnn_activation_from_name("relu ", &a), CNN_ERR_INVALID_ARGUMENT, "got 'relu '");
    CHECK_FAILS(cnn_activation_from_name(NULL, &a), CNN_ERR_INVALID_ARGUMENT, "activation");
    /* a value outside the enum is refused where a layer takes it */
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(4)));
    CHECK_FAILS(cnn_model_add_dense(m, cnn_dense(.units = 2, .activation = 18)),
                CNN_ERR_INVALID_ARGUMENT, "(Dense): unknown activation 18");
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 2, .activation = CNN_ACTIVATION_MISH)));
    cnn_model_free(m);
}

/* Issue 12: each activation's forward values, through an Activation layer,
 * against the definitions in double precision, from -90 to 90 (the vector
 * exp clamps near 88) and around the kinks. */
static double reference(cnn_activation a, double x)
{
    const double sp = x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    const double hs = fmin(fmax(x + 3, 0), 6) / 6;
    switch (a) {
    case CNN_ACTIVATION_SILU: return x / (1 + exp(-x));
    case CNN_ACTIVATION_GELU: return 0.5 * x * erfc(-x / sqrt(2.0));
    case CNN_ACTIVATION_GELU_TANH:
        return 0.5 * x * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
    case CNN_ACTIVATION_SELU:
        return 1.0507009873554804934 * (x > 0 ? x : 1.6732632423543772848 * expm1(x));
    case CNN_ACTIVATION_ELU: return x > 0 ? x : expm1(x);
    case CNN_ACTIVATION_SOFTPLUS: return sp;
    case CNN_ACTIVATION_SOFTSIGN: return x / (1 + fabs(x));
    case CNN_ACTIVATION_HARD_SIGMOID: return hs;
    case CNN_ACTIVATION_HARD_SILU: return x * hs;
    case CNN_ACTIVATION_EXPONENTIAL: return exp(x);
    case CNN_ACTIVATION_RELU6: return fmin(fmax(x, 0), 6);
    case CNN_ACTIVATION_LEAKY_RELU: return x >= 0 ? x : 0.2 * x;
    case CNN_ACTIVATION_MISH: return x * tanh(sp);
    default: return NAN;
    }
}

static void test_activation_values(void)
{
    enum { N = 1003 };
    cnn_tensor *x = tensor(2, (int64_t[]){1, N});
    for (int i = 0; i < N - 11; i++) /* -90 .. 90 */
        x->data[i] = -90.0f + 180.0f * (float)i / (float)(N - 12);
    const float special[11] = {-3.0f, 3.0f, 6.0f, 0.0f, -0.0f, 1e-6f, -1e-6f, 2.999f, -2.999f,
                               5.999f, -1.2785f};
    memcpy(x->data + N - 11, special, sizeof special);
    for (int a = CNN_ACTIVATION_SILU; a <= CNN_ACTIVATION_MISH; a++) {
        cnn_model *m = NULL;
        CHECK_OK(cnn_model_create(&m, cnn_shape_flat(N)));
        CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(.activation = a)));
        cnn_tensor *y = NULL;
        CHECK_OK(cnn_model_predict(m, x, 0, &y));
        float want[N];
        for (int i = 0; i < N; i++) {
            double r = reference((cnn_activation)a, x->data[i]);
            /* exp(90) is no float: the vector exp clamps, libm gives inf */
            want[i] = a == CNN_ACTIVATION_EXPONENTIAL && x->data[i] > 88 ? (y ? y->data[i] : 0)
                                                                         : (float)r;
        }
        char what[64];
        snprintf(what, sizeof what, "%s values", cnn_activation_name((cnn_activation)a));
        if (y)
            test_close(what, y->data, want, N, 1e-6, 1e-5);
        cnn_tensor_free(y);
        cnn_model_free(m);
    }
    cnn_tensor_free(x);
}

/* Three separable clusters of 4 features, labels 0..2. */
static void clusters(int n, cnn_tensor **x, cnn_tensor **y)
{
    *x = tensor(2, (int64_t[]){n, 4});
    *y = tensor(1, (int64_t[]){n});
    uint64_t r = 99;
    for (int i = 0; i < n; i++) {
        int k = i % 3;
        (*y)->data[i] = (float)k;
        for (int j = 0; j < 4; j++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            float noise = (float)((r >> 40) / 16777216.0) - 0.5f;
            (*x)->data[i * 4 + j] = (j == k ? 2.0f : 0.0f) + noise;
        }
    }
}

/* Issue 12: from_logits. A final Dense without softmax trained with a
 * cross-entropy loss used to end at loss 14.45, accuracy 0.10. */
static void test_from_logits(void)
{
    cnn_tensor *x, *y;
    clusters(60, &x, &y);
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(4)));
    CHECK_OK(cnn_model_set_threads(m, 1));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3)));
    CHECK(!cnn_model_loss_expects_probabilities(m)); /* not compiled */
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)));
    CHECK(cnn_model_loss_expects_probabilities(m));
    cnn_model_free(m);
    m = NULL;
    /* Dropout and Flatten pass the logits on; an Activation layer decides */
    for (int k = 0; k < 3; k++) {
        CHECK_OK(cnn_model_create(&m, cnn_shape_flat(4)));
        CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3)));
        CHECK_OK(cnn_model_add_dropout(m, cnn_dropout(.rate = 0.1f)));
        if (k)
            CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(
                .activation = k == 1 ? CNN_ACTIVATION_SOFTMAX : CNN_ACTIVATION_LINEAR)));
        CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
        CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_CATEGORICAL_CROSSENTROPY)));
        CHECK(cnn_model_loss_expects_probabilities(m) == (k != 1));
        cnn_model_free(m);
        m = NULL;
    }
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(4)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_MSE)));
    CHECK(!cnn_model_loss_expects_probabilities(m)); /* mse takes any value */
    cnn_model_free(m);
    m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(4)));
    CHECK_OK(cnn_model_set_threads(m, 1));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3)));
    CHECK_FAILS(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_MSE, .from_logits = true)),
                CNN_ERR_INVALID_ARGUMENT, "from_logits applies to the cross-entropy losses only");
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam(.learning_rate = 0.05f),
                                              .from_logits = true)));
    CHECK(!cnn_model_loss_expects_probabilities(m));
    cnn_compile_config cc;
    CHECK_OK(cnn_model_compile_config(m, &cc));
    CHECK(cc.from_logits);
    double loss = 0, acc = 0;
    CHECK_OK(cnn_model_fit(m, x, y, cnn_fit(.epochs = 30, .batch_size = 10), NULL));
    CHECK_OK(cnn_model_evaluate(m, x, y, 0, &loss, &acc));
    if (!(loss < 0.2 && acc > 0.95))
        fprintf(stderr, "from_logits: loss %g, accuracy %g after training\n", loss, acc);
    CHECK(loss < 0.2 && acc > 0.95);
    /* predict gives the logits, as Keras does */
    cnn_tensor *p = NULL;
    CHECK_OK(cnn_model_predict(m, x, 0, &p));
    CHECK(p && (p->data[0] > 1.0f || p->data[0] < 0.0f || p->data[1] > 1.0f));
    cnn_tensor_free(p);
    cnn_model_free(m);

    /* The same weights give the same loss and gradients as softmax/sigmoid
     * + the loss (which the library computes from the logits too). */
    const cnn_loss losses[3] = {CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                CNN_LOSS_CATEGORICAL_CROSSENTROPY, CNN_LOSS_BINARY_CROSSENTROPY};
    cnn_tensor *onehot = NULL;
    CHECK_OK(cnn_tensor_one_hot(y, 3, &onehot));
    for (int l = 0; l < 3; l++) {
        cnn_model *a = NULL, *b = NULL;
        double la = 0, lb = 0;
        cnn_activation act = l == 2 ? CNN_ACTIVATION_SIGMOID : CNN_ACTIVATION_SOFTMAX;
        CHECK_OK(cnn_model_create(&a, cnn_shape_flat(4)));
        CHECK_OK(cnn_model_create(&b, cnn_shape_flat(4)));
        CHECK_OK(cnn_model_add_dense(a, cnn_dense(.units = 3, .activation = act)));
        CHECK_OK(cnn_model_add_dense(b, cnn_dense(.units = 3)));
        CHECK_OK(cnn_model_compile(a, cnn_compile(.loss = losses[l])));
        CHECK_OK(cnn_model_compile(b, cnn_compile(.loss = losses[l], .from_logits = true)));
        const cnn_tensor *t = l == 0 ? y : onehot;
        CHECK_OK(cnn_model_forward(a, x, true, NULL));
        CHECK_OK(cnn_model_backward(a, t, &la, NULL));
        CHECK_OK(cnn_model_forward(b, x, true, NULL));
        CHECK_OK(cnn_model_backward(b, t, &lb, NULL));
        CHECK(fabs(la - lb) < 1e-6 && la > 0.1);
        int64_t n = 0;
        const float *ga = cnn_model_layer_gradients(a, 0, 0, &n);
        const float *gb = cnn_model_layer_gradients(b, 0, 0, NULL);
        test_close("from_logits gradient", gb, ga, n, 1e-6, 1e-5);
        double ea = 0, eb = 0, aa = 0, ab = 0;
        CHECK_OK(cnn_model_evaluate(a, x, t, 0, &ea, &aa));
        CHECK_OK(cnn_model_evaluate(b, x, t, 0, &eb, &ab));
        CHECK(fabs(ea - eb) < 1e-6 && aa == ab); /* accuracy from the logits */
        cnn_model_free(a);
        cnn_model_free(b);
    }
    cnn_tensor_free(onehot);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

/* Issue 18.11: outputs and targets that do not fit the loss are errors,
 * and accuracy is Keras's for each loss (binary_accuracy for
 * binary_crossentropy: every output right or wrong on its own). */
static void test_loss_fits_outputs(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(3)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_FAILS(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_BINARY_CROSSENTROPY)),
                CNN_ERR_SHAPE, "compile: binary_crossentropy scores each of the 10 outputs as its"
                               " own yes/no, but the last layer dense (Dense) has softmax");
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_CATEGORICAL_CROSSENTROPY)));
    cnn_model_free(m);

    m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(3)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 1, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_FAILS(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_MSE)), CNN_ERR_SHAPE,
                "has softmax over 1 output, which is always 1");
    cnn_model_free(m);

    m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(3)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 1, .activation = CNN_ACTIVATION_SIGMOID)));
    CHECK_FAILS(cnn_model_compile(m, cnn_compile(
                    .loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)), CNN_ERR_SHAPE,
                "sparse_categorical_crossentropy needs one output per class (at least 2), the"
                " model has 1");
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_BINARY_CROSSENTROPY)));
    /* labels 0..9 for a yes/no output */
    cnn_tensor *x = tensor(2, (int64_t[]){20, 3}), *y = tensor(1, (int64_t[]){20});
    for (int i = 0; i < 20; i++)
        y->data[i] = (float)(i % 10);
    CHECK_FAILS(cnn_model_fit(m, x, y, cnn_fit(), NULL), CNN_ERR_INVALID_ARGUMENT,
                "fit: targets: example 2 has 2 at output 0; binary_crossentropy needs targets in"
                " [0, 1] (integer class labels need one output per class");
    CHECK_FAILS(cnn_model_evaluate(m, x, y, 0, NULL, NULL), CNN_ERR_INVALID_ARGUMENT,
                "evaluate: targets: example 2 has 2");
    cnn_tensor_free(y);
    cnn_model_free(m);

    /* ten independent sigmoid outputs and one-hot targets: binary accuracy.
     * Zero weights give 0.5 everywhere, "no" for all ten: 9 of 10 right. */
    m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(3)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SIGMOID)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_BINARY_CROSSENTROPY)));
    int64_t count = 0;
    float *w = cnn_model_layer_weights(m, 0, 0, &count);
    CHECK(w != NULL && count == 30);
    if (w)
        memset(w, 0, (size_t)count * sizeof *w);
    cnn_tensor *onehot = tensor(2, (int64_t[]){20, 10});
    for (int i = 0; i < 20; i++)
        onehot->data[i * 10 + i % 10] = 1;
    double loss = 0, accuracy = 0;
    CHECK_OK(cnn_model_evaluate(m, x, onehot, 0, &loss, &accuracy));
    CHECK(fabs(accuracy - 0.9) < 1e-9);
    CHECK(fabs(loss - log(2.0)) < 1e-4);
    cnn_tensor_free(onehot);
    cnn_tensor_free(x);
    cnn_model_free(m);
}

int main(void)
{
    test_names_and_shape_errors();
    test_missing_channel_axis();
    test_call_order();
    test_dropout();
    test_optimizers();
    test_training_and_determinism();
    test_validation_split_sizes();
    test_output_needs_flatten();
    test_load_keras_file_hint();
    test_activation_names();
    test_activation_values();
    test_from_logits();
    test_loss_fits_outputs();
    return test_finish("test_model");
}
