/* Forward and backward passes against PyTorch: the fixtures in tests/reference/
 * come from tests/reference/gen_reference.py (float64 maths, float32 storage;
 * see its header for the layout conventions and the file format). Each case
 * builds the same network through the public API, copies the fixture weights
 * in, runs one forward + backward and compares the output, the loss, every
 * parameter gradient and dLoss/dInput - with 1 and with 2 threads. A negative
 * control perturbs one fixture weight and requires the output to differ, so a
 * comparison that cannot fail would be noticed. */
#include <stdlib.h>

#include "test.h"

#define ATOL 1e-5
#define RTOL 1e-4

/* ---- Fixture reader (no library code involved) ------------------------------ */
#define REF_MAX_TENSORS 32
#define REF_NAME_MAX 64

typedef struct ref_tensor {
    char name[REF_NAME_MAX];
    int rank;
    int64_t dims[CNN_MAX_RANK];
    long count;
    float *data;
} ref_tensor;

typedef struct fixture {
    const char *file;
    int n;
    ref_tensor t[REF_MAX_TENSORS];
} fixture;

static const char *exe_dir = ".";

static FILE *open_fixture(const char *file)
{
    char path[1024];
    snprintf(path, sizeof path, "tests/reference/%s", file);
    FILE *f = fopen(path, "r");
    if (!f) { /* run from elsewhere: build/tests/test_reference -> ../../tests/reference */
        snprintf(path, sizeof path, "%s/../../tests/reference/%s", exe_dir, file);
        f = fopen(path, "r");
    }
    if (!f)
        fprintf(stderr, "%s: cannot open (tried tests/reference/ and %s/../../tests/reference/)\n",
                file, exe_dir);
    return f;
}

static void fixture_free(fixture *fx)
{
    for (int i = 0; i < fx->n; i++)
        free(fx->t[i].data);
    fx->n = 0;
}

/* Reads "<name> <rank> <dims...>" headers, each followed by product(dims)
 * values, one per line; '#' lines are comments. Returns 0 on any error. */
static int fixture_load(fixture *fx, const char *file)
{
    memset(fx, 0, sizeof *fx);
    fx->file = file;
    FILE *f = open_fixture(file);
    if (!f)
        return 0;
    char line[256];
    int ok = 1;
    while (ok && fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (fx->n == REF_MAX_TENSORS) {
            fprintf(stderr, "%s: more than %d tensors\n", file, REF_MAX_TENSORS);
            ok = 0;
            break;
        }
        ref_tensor *t = &fx->t[fx->n];
        char *p = line, *end;
        int len = 0;
        if (sscanf(p, "%63s %d%n", t->name, &t->rank, &len) != 2 || t->rank < 1
            || t->rank > CNN_MAX_RANK) {
            fprintf(stderr, "%s: bad tensor header: %s", file, line);
            ok = 0;
            break;
        }
        p += len;
        t->count = 1;
        for (int d = 0; d < t->rank; d++) {
            long v = strtol(p, &end, 10);
            if (end == p || v < 1 || v > 1000000 || t->count > 1000000 / v) {
                fprintf(stderr, "%s: %s: bad dimension %d\n", file, t->name, d);
                ok = 0;
                break;
            }
            t->dims[d] = v;
            t->count *= v;
            p = end;
        }
        if (!ok)
            break;
        fx->n++;
        t->data = malloc((size_t)t->count * sizeof(float));
        if (!t->data) {
            ok = 0;
            break;
        }
        for (long i = 0; i < t->count; i++) {
            if (!fgets(line, sizeof line, f)) {
                fprintf(stderr, "%s: %s: ends after %ld of %ld values\n", file, t->name, i,
                        t->count);
                ok = 0;
                break;
            }
            t->data[i] = strtof(line, &end);
            if (end == line) {
                fprintf(stderr, "%s: %s: value %ld is not a number: %s", file, t->name, i, line);
                ok = 0;
                break;
            }
        }
    }
    fclose(f);
    if (!ok)
        fixture_free(fx);
    return ok;
}

static ref_tensor *fixture_get(fixture *fx, const char *name)
{
    for (int i = 0; i < fx->n; i++)
        if (strcmp(fx->t[i].name, name) == 0)
            return &fx->t[i];
    return NULL;
}

static cnn_tensor *tensor_from(const ref_tensor *r)
{
    cnn_tensor *t = NULL;
    if (cnn_tensor_create(&t, r->rank, r->dims) != CNN_OK)
        return NULL;
    memcpy(t->data, r->data, (size_t)r->count * sizeof(float));
    return t;
}

/* test_close without recording anything: for the negative control. */
static int all_close(const float *a, const float *b, long n)
{
    for (long i = 0; i < n; i++)
        if (!(fabs((double)a[i] - (double)b[i]) <= ATOL + RTOL * fabs((double)b[i])))
            return 0;
    return 1;
}

/* ---- The networks (must match gen_reference.py) ------------------------------ */
static cnn_status build_small_net(cnn_model *m, bool separate_softmax)
{
    cnn_status st;
    if ((st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                                 .padding = CNN_PADDING_SAME,
                                                 .activation = CNN_ACTIVATION_RELU)))
        || (st = cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2})))
        || (st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {2, 2},
                                                    .strides = {2, 2},
                                                    .activation = CNN_ACTIVATION_TANH)))
        || (st = cnn_model_add_flatten(m, cnn_flatten())))
        return st;
    if (!separate_softmax)
        return cnn_model_add_dense(m, cnn_dense(.units = 5, .activation = CNN_ACTIVATION_SOFTMAX));
    if ((st = cnn_model_add_dense(m, cnn_dense(.units = 5))))
        return st;
    return cnn_model_add_activation(m, cnn_activation_layer(.activation = CNN_ACTIVATION_SOFTMAX));
}

static cnn_status build_a(cnn_model *m) { return build_small_net(m, false); }
static cnn_status build_d(cnn_model *m) { return build_small_net(m, true); }

static cnn_status build_b(cnn_model *m)
{
    cnn_status st;
    if ((st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {3, 3},
                                                 .strides = {2, 2}, .padding = CNN_PADDING_SAME,
                                                 .activation = CNN_ACTIVATION_SIGMOID)))
        || (st = cnn_model_add_average_pooling2d(m, cnn_pool2d(.pool_size = {2, 2},
                                                               .strides = {1, 1},
                                                               .padding = CNN_PADDING_SAME)))
        || (st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {3, 2},
                                                    .dilation_rate = {2, 1})))
        || (st = cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {3, 3},
                                                           .strides = {2, 2},
                                                           .padding = CNN_PADDING_SAME)))
        || (st = cnn_model_add_flatten(m, cnn_flatten())))
        return st;
    return cnn_model_add_dense(m, cnn_dense(.units = 4));
}

static cnn_status build_c(cnn_model *m)
{
    cnn_status st = cnn_model_add_dense(m, cnn_dense(.units = 5, .activation = CNN_ACTIVATION_RELU));
    if (st)
        return st;
    return cnn_model_add_dense(m, cnn_dense(.units = 2, .activation = CNN_ACTIVATION_SIGMOID));
}

/* e) BatchNormalization in training (and then inference) mode, ELU,
 * ZeroPadding2D, DepthwiseConv2D */
static cnn_status build_e(cnn_model *m)
{
    cnn_status st;
    if ((st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                                 .padding = CNN_PADDING_SAME, .no_bias = true)))
        || (st = cnn_model_add_batch_normalization(m, cnn_batch_normalization(.momentum = 0.9f)))
        || (st = cnn_model_add_elu(m, cnn_elu()))
        || (st = cnn_model_add_zero_padding2d(m, cnn_zero_padding2d(.padding = {1, 0, 0, 1})))
        || (st = cnn_model_add_depthwise_conv2d(m, cnn_depthwise_conv2d(
                .kernel_size = {2, 2}, .strides = {2, 2}, .depth_multiplier = 2)))
        || (st = cnn_model_add_flatten(m, cnn_flatten()))
        || (st = cnn_model_add_batch_normalization(m, cnn_batch_normalization())))
        return st;
    return cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX));
}

/* f) SeparableConv2D, LeakyReLU, ReLU with max_value/negative_slope/threshold */
static cnn_status build_f(cnn_model *m)
{
    cnn_status st;
    if ((st = cnn_model_add_separable_conv2d(m, cnn_separable_conv2d(
             .filters = 4, .kernel_size = {3, 3}, .strides = {2, 1}, .padding = CNN_PADDING_SAME,
             .depth_multiplier = 2)))
        || (st = cnn_model_add_leaky_relu(m, cnn_leaky_relu(.negative_slope = 0.2f)))
        || (st = cnn_model_add_relu(m, cnn_relu(.max_value = 0.4f, .negative_slope = 0.05f,
                                                .threshold = -0.1f)))
        || (st = cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d())))
        return st;
    return cnn_model_add_dense(m, cnn_dense(.units = 2));
}

/* g) issue 12's activations in Conv2D (fused, and kept pre-activations),
 * Activation and Dense layers */
static cnn_status build_g(cnn_model *m)
{
    cnn_status st;
    if ((st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                                 .padding = CNN_PADDING_SAME,
                                                 .activation = CNN_ACTIVATION_SILU)))
        || (st = cnn_model_add_activation(m, cnn_activation_layer(
                .activation = CNN_ACTIVATION_HARD_SILU)))
        || (st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {2, 2},
                                                    .activation = CNN_ACTIVATION_MISH)))
        || (st = cnn_model_add_activation(m, cnn_activation_layer(
                .activation = CNN_ACTIVATION_GELU)))
        || (st = cnn_model_add_flatten(m, cnn_flatten()))
        || (st = cnn_model_add_dense(m, cnn_dense(.units = 6,
                                                  .activation = CNN_ACTIVATION_HARD_SIGMOID)))
        || (st = cnn_model_add_dense(m, cnn_dense(.units = 6,
                                                  .activation = CNN_ACTIVATION_GELU_TANH))))
        return st;
    return cnn_model_add_dense(m, cnn_dense(.units = 4, .activation = CNN_ACTIVATION_SELU));
}

/* i) issue 15: a graph with every merge kind (tests/reference/graph.txt) */
static cnn_status build_i(cnn_model *m)
{
    cnn_status st;
#define FROM(...) cnn_model_set_next_inputs(m, sizeof((const char *[]){__VA_ARGS__}) \
                                                / sizeof(const char *),             \
                                            (const char *[]){__VA_ARGS__})
    if ((st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                                 .padding = CNN_PADDING_SAME, .name = "a",
                                                 .activation = CNN_ACTIVATION_TANH)))
        || (st = FROM("input_layer"))
        || (st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {1, 1},
                                                    .name = "b")))
        || (st = FROM("a", "b")) || (st = cnn_model_add_add(m, cnn_merge()))
        || (st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                                    .padding = CNN_PADDING_SAME, .name = "c",
                                                    .activation = CNN_ACTIVATION_TANH)))
        || (st = FROM("c", "a")) || (st = cnn_model_add_multiply(m, cnn_merge()))
        || (st = FROM("multiply", "b")) || (st = cnn_model_add_subtract(m, cnn_merge()))
        || (st = FROM("subtract", "c")) || (st = cnn_model_add_maximum(m, cnn_merge()))
        || (st = FROM("maximum", "a")) || (st = cnn_model_add_minimum(m, cnn_merge()))
        || (st = FROM("minimum", "add")) || (st = cnn_model_add_average(m, cnn_merge()))
        || (st = FROM("average", "b")) || (st = cnn_model_add_concatenate(m, cnn_concatenate()))
        || (st = FROM("concatenate", "concatenate"))
        || (st = cnn_model_add_concatenate(m, cnn_concatenate(.axis = 1)))
        || (st = cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d())))
        return st;
#undef FROM
    return cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX));
}

/* l) broadcasting merges (tests/reference/broadcast_merge.txt) */
static cnn_status build_l(cnn_model *m)
{
    cnn_status st;
#define FROM(...) cnn_model_set_next_inputs(m, sizeof((const char *[]){__VA_ARGS__}) \
                                                / sizeof(const char *),             \
                                            (const char *[]){__VA_ARGS__})
    if ((st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                                 .padding = CNN_PADDING_SAME, .name = "a",
                                                 .activation = CNN_ACTIVATION_TANH)))
        || (st = FROM("input_layer"))
        || (st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {5, 1},
                                                    .name = "r",
                                                    .activation = CNN_ACTIVATION_TANH)))
        || (st = FROM("a", "r")) || (st = cnn_model_add_add(m, cnn_merge()))
        || (st = cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d(.name = "g")))
        || (st = FROM("add", "g")) || (st = cnn_model_add_multiply(m, cnn_merge()))
        || (st = FROM("input_layer"))
        || (st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {1, 4},
                                                    .name = "col")))
        || (st = FROM("multiply", "col")) || (st = cnn_model_add_subtract(m, cnn_merge()))
        || (st = FROM("subtract", "r")) || (st = cnn_model_add_maximum(m, cnn_merge()))
        || (st = FROM("col", "maximum")) || (st = cnn_model_add_minimum(m, cnn_merge()))
        || (st = FROM("minimum", "g", "a")) || (st = cnn_model_add_average(m, cnn_merge()))
        || (st = cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d())))
        return st;
#undef FROM
    return cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX));
}

/* h) the rest of them */
static cnn_status build_h(cnn_model *m)
{
    const cnn_activation acts[5] = {CNN_ACTIVATION_ELU, CNN_ACTIVATION_SOFTSIGN,
                                    CNN_ACTIVATION_RELU6, CNN_ACTIVATION_LEAKY_RELU,
                                    CNN_ACTIVATION_SOFTPLUS};
    const int units[5] = {6, 6, 6, 6, 5};
    cnn_status st;
    for (int i = 0; i < 5; i++)
        if ((st = cnn_model_add_dense(m, cnn_dense(.units = units[i], .activation = acts[i]))))
            return st;
    if ((st = cnn_model_add_dense(m, cnn_dense(.units = 4))))
        return st;
    return cnn_model_add_activation(m, cnn_activation_layer(
        .activation = CNN_ACTIVATION_EXPONENTIAL));
}

/* i) logits: the last Dense is linear, the loss has from_logits */
static cnn_status build_logits(cnn_model *m, int n)
{
    cnn_status st = cnn_model_add_dense(m, cnn_dense(.units = 6, .activation = CNN_ACTIVATION_TANH));
    return st ? st : cnn_model_add_dense(m, cnn_dense(.units = n));
}
static cnn_status build_logits5(cnn_model *m) { return build_logits(m, 5); }
static cnn_status build_logits3(cnn_model *m) { return build_logits(m, 3); }


/* j) issue 15: UpSampling2D (nearest, bilinear), Conv2DTranspose (same s2,
 * valid with output_padding, dilated), Cropping2D */
static cnn_status build_j(cnn_model *m)
{
    cnn_status st;
    if ((st = cnn_model_add_up_sampling2d(m, cnn_up_sampling2d()))
        || (st = cnn_model_add_conv2d_transpose(m, cnn_conv2d_transpose(
                .filters = 3, .kernel_size = {3, 3}, .strides = {2, 2},
                .padding = CNN_PADDING_SAME, .activation = CNN_ACTIVATION_TANH)))
        || (st = cnn_model_add_cropping2d(m, cnn_cropping2d(.cropping = {1, 2, 0, 1})))
        || (st = cnn_model_add_up_sampling2d(m, cnn_up_sampling2d(
                .size = {2, 1}, .interpolation = CNN_INTERPOLATION_BILINEAR)))
        || (st = cnn_model_add_conv2d_transpose(m, cnn_conv2d_transpose(
                .filters = 2, .kernel_size = {2, 3}, .strides = {1, 2},
                .output_padding = {{0, 1}, true})))
        || (st = cnn_model_add_conv2d_transpose(m, cnn_conv2d_transpose(
                .filters = 2, .kernel_size = {3, 3}, .dilation_rate = {2, 2},
                .padding = CNN_PADDING_SAME)))
        || (st = cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d())))
        return st;
    return cnn_model_add_dense(m, cnn_dense(.units = 3));
}

/* k) issue 15: LayerNormalization (images and flat, without beta), the
 * Softmax layer over channels and as the output */
static cnn_status build_k(cnn_model *m)
{
    cnn_status st;
    if ((st = cnn_model_add_layer_normalization(m, cnn_layer_normalization()))
        || (st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {1, 1})))
        || (st = cnn_model_add_softmax(m, cnn_softmax()))
        || (st = cnn_model_add_flatten(m, cnn_flatten()))
        || (st = cnn_model_add_dense(m, cnn_dense(.units = 6)))
        || (st = cnn_model_add_layer_normalization(
                m, cnn_layer_normalization(.epsilon = 0.01f, .no_center = true)))
        || (st = cnn_model_add_dense(m, cnn_dense(.units = 3))))
        return st;
    return cnn_model_add_softmax(m, cnn_softmax());
}

/* m) a 5x5 convolution of 16 channels: the training step's direct
 * products and cnn_model_predict's Winograd F(2x2, 5x5) (on AVX-512),
 * both against PyTorch (output.inference) */
static cnn_status build_m(cnn_model *m)
{
    cnn_status st;
    if ((st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 16, .kernel_size = {5, 5},
                                                 .padding = CNN_PADDING_SAME,
                                                 .activation = CNN_ACTIVATION_RELU)))
        || (st = cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d())))
        return st;
    return cnn_model_add_dense(m, cnn_dense(.units = 3));
}

typedef struct ref_case {
    const char *file;
    cnn_shape input;
    cnn_loss loss;
    cnn_status (*build)(cnn_model *m);
    bool from_logits;
} ref_case;

static const ref_case cases[] = {
    {"small_net.txt", cnn_shape_hwc(9, 9, 2), CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, build_a, false},
    {"padding_stride_dilation.txt", cnn_shape_hwc(14, 10, 3), CNN_LOSS_MSE, build_b, false},
    {"dense_bce.txt", cnn_shape_flat(6), CNN_LOSS_BINARY_CROSSENTROPY, build_c, false},
    {"categorical.txt", cnn_shape_hwc(9, 9, 2), CNN_LOSS_CATEGORICAL_CROSSENTROPY, build_d, false},
    {"batchnorm.txt", cnn_shape_hwc(6, 5, 2), CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, build_e, false},
    {"separable.txt", cnn_shape_hwc(7, 6, 3), CNN_LOSS_MSE, build_f, false},
    {"activations_conv.txt", cnn_shape_hwc(5, 5, 2), CNN_LOSS_MSE, build_g, false},
    {"activations_dense.txt", cnn_shape_flat(7), CNN_LOSS_MSE, build_h, false},
    {"logits_sparse.txt", cnn_shape_flat(6), CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
     build_logits5, true},
    {"logits_categorical.txt", cnn_shape_flat(6), CNN_LOSS_CATEGORICAL_CROSSENTROPY,
     build_logits5, true},
    {"logits_binary.txt", cnn_shape_flat(6), CNN_LOSS_BINARY_CROSSENTROPY, build_logits3, true},
    {"graph.txt", cnn_shape_hwc(6, 5, 3), CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, build_i, false},
    {"broadcast_merge.txt", cnn_shape_hwc(5, 4, 3), CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
     build_l, false},
    {"transpose_upsampling.txt", cnn_shape_hwc(3, 3, 2), CNN_LOSS_MSE, build_j, false},
    {"normalization_softmax.txt", cnn_shape_hwc(3, 4, 5), CNN_LOSS_CATEGORICAL_CROSSENTROPY,
     build_k, false},
    {"winograd.txt", cnn_shape_hwc(6, 5, 16), CNN_LOSS_MSE, build_m, false},
};

/* ---- Running a case ----------------------------------------------------------- */
/* Keras's name of layer i's weight which (as the fixtures name them). */
static const char *weight_name(const cnn_model *m, int i, int which)
{
    static const char *const conv[] = {"kernel", "bias"},
                             *bn[] = {"gamma", "beta", "moving_mean", "moving_variance"},
                             *depthwise[] = {"depthwise_kernel", "bias"},
                             *separable[] = {"depthwise_kernel", "pointwise_kernel", "bias"};
    const char *type = cnn_model_layer_type(m, i);
    if (strcmp(type, "BatchNormalization") == 0)
        return bn[which];
    if (strcmp(type, "LayerNormalization") == 0) { /* gamma unless scale=False, then beta */
        cnn_layer_spec spec;
        if (cnn_model_layer_spec(m, i, &spec) == CNN_OK && spec.u.layer_normalization.no_scale)
            which++;
        return which < 2 ? bn[which] : "?";
    }
    if (strcmp(type, "DepthwiseConv2D") == 0)
        return which < 2 ? depthwise[which] : "?";
    if (strcmp(type, "SeparableConv2D") == 0)
        return which < 3 ? separable[which] : "?";
    return which < 2 ? conv[which] : "?";
}

/* The moving statistics are not trained: they have no gradient. */
static bool trained(const cnn_model *m, int i, int which)
{
    return !(strcmp(cnn_model_layer_type(m, i), "BatchNormalization") == 0 && which >= 2);
}

/* Builds the model and copies in every weight the fixture has for it; a model
 * weight without a fixture entry, or a size mismatch, is a failure. */
static cnn_model *make_model(const ref_case *c, fixture *fx, int threads)
{
    cnn_model *m = NULL;
    int ok = 1;
    CHECK_OK(cnn_model_create(&m, c->input));
    if (!m)
        return NULL;
    CHECK_OK(cnn_model_set_threads(m, threads));
    cnn_status st = c->build(m);
    CHECK_OK(st);
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = c->loss, .optimizer = cnn_sgd(),
                                              .from_logits = c->from_logits)));
    for (int i = 0; ok && i < cnn_model_layer_count(m); i++)
        for (int w = 0; w < CNN_MAX_LAYER_WEIGHTS; w++) {
            int64_t count = 0;
            float *dst = cnn_model_layer_weights(m, i, w, &count);
            char name[REF_NAME_MAX];
            snprintf(name, sizeof name, "layer%d.%s", i, weight_name(m, i, w));
            ref_tensor *r = fixture_get(fx, name);
            if (!dst && !r)
                continue;
            if (!dst || !r || r->count != count) {
                fprintf(stderr, "%s: %s: model has %lld weights, fixture %ld\n", c->file, name,
                        dst ? (long long)count : 0LL, r ? r->count : 0L);
                ok = 0;
                break;
            }
            memcpy(dst, r->data, (size_t)count * sizeof(float));
        }
    CHECK(ok && st == CNN_OK);
    if (!ok || st != CNN_OK) {
        cnn_model_free(m);
        return NULL;
    }
    return m;
}

/* One zero-gradients + forward + backward. The output pointer views the model. */
static int step(cnn_model *m, fixture *fx, const float **out, double *loss, float *input_grad)
{
    ref_tensor *rx = fixture_get(fx, "x"), *ry = fixture_get(fx, "y");
    cnn_tensor *x = rx ? tensor_from(rx) : NULL, *y = ry ? tensor_from(ry) : NULL;
    int ok = x && y;
    CHECK(ok);
    if (ok) {
        cnn_model_zero_gradients(m);
        cnn_status st = cnn_model_forward(m, x, true, out);
        CHECK_OK(st);
        if (st == CNN_OK) {
            st = cnn_model_backward(m, y, loss, input_grad);
            CHECK_OK(st);
        }
        ok = st == CNN_OK;
    }
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    return ok;
}

static void compare(const char *label, const float *got, long got_n, fixture *fx, const char *name)
{
    char what[160];
    snprintf(what, sizeof what, "%s: %s", label, name);
    ref_tensor *r = fixture_get(fx, name);
    if (!r || r->count != got_n) {
        fprintf(stderr, "%s: fixture has %ld values, model %ld\n", what, r ? r->count : 0L, got_n);
        CHECK(0);
        return;
    }
    test_close(what, got, r->data, got_n, ATOL, RTOL);
}

/* BatchNormalization: the moving statistics after the training forward,
 * then the output in inference mode, which uses them. */
static void check_moving_statistics(const char *label, cnn_model *m, fixture *fx)
{
    ref_tensor *rinf = fixture_get(fx, "output.inference"), *rx = fixture_get(fx, "x");
    if (!rinf)
        return;
    for (int i = 0; i < cnn_model_layer_count(m); i++)
        for (int w = 2; w < 4 && !trained(m, i, w); w++) {
            int64_t count = 0;
            const float *v = cnn_model_layer_weights(m, i, w, &count);
            char name[REF_NAME_MAX];
            snprintf(name, sizeof name, "layer%d.%s.after", i, weight_name(m, i, w));
            compare(label, v, (long)count, fx, name);
        }
    cnn_tensor *x = tensor_from(rx), *out = NULL;
    CHECK_OK(cnn_model_predict(m, x, 0, &out));
    if (out) {
        char what[160];
        snprintf(what, sizeof what, "%s (inference)", label);
        compare(what, out->data, (long)cnn_tensor_size(out), fx, "output.inference");
    }
    cnn_tensor_free(out);
    cnn_tensor_free(x);
}

static void check_case(const ref_case *c, fixture *fx, int threads)
{
    char label[128];
    snprintf(label, sizeof label, "%s (%d thread%s)", c->file, threads, threads > 1 ? "s" : "");
    ref_tensor *rx = fixture_get(fx, "x"), *rout = fixture_get(fx, "output");
    CHECK(rx && rout);
    if (!rx || !rout)
        return;
    cnn_model *m = make_model(c, fx, threads);
    if (!m)
        return;
    cnn_shape os = cnn_model_output_shape(m);
    CHECK(os.rank == 1 && rout->rank == 2 && os.dims[0] == rout->dims[1]);

    const float *out = NULL;
    double loss = NAN;
    float *input_grad = calloc((size_t)rx->count, sizeof(float));
    CHECK(input_grad != NULL);
    if (input_grad && step(m, fx, &out, &loss, input_grad)) {
        compare(label, out, rout->count, fx, "output");
        float loss_f = (float)loss;
        compare(label, &loss_f, 1, fx, "loss");
        for (int i = 0; i < cnn_model_layer_count(m); i++)
            for (int w = 0; w < CNN_MAX_LAYER_WEIGHTS; w++) {
                int64_t count = 0;
                const float *g = cnn_model_layer_gradients(m, i, w, &count);
                if (!g || !trained(m, i, w))
                    continue;
                char name[REF_NAME_MAX];
                snprintf(name, sizeof name, "layer%d.%s.grad", i, weight_name(m, i, w));
                compare(label, g, (long)count, fx, name);
            }
        compare(label, input_grad, rx->count, fx, "input.grad");
        check_moving_statistics(label, m, fx);
    }
    free(input_grad);
    cnn_model_free(m);
}

/* Negative control: the first kernel weight of the first layer moved by 0.1
 * must change the output beyond the tolerance. */
static void check_negative_control(const ref_case *c, fixture *fx)
{
    ref_tensor *w = fixture_get(fx, "layer0.kernel"), *rout = fixture_get(fx, "output");
    if (!w)
        w = fixture_get(fx, "layer0.depthwise_kernel");
    if (!w)
        w = fixture_get(fx, "layer1.kernel"); /* after a layer without weights */
    if (!w)
        w = fixture_get(fx, "layer0.gamma");
    CHECK(w && rout);
    if (!w || !rout)
        return;
    float saved = w->data[0];
    w->data[0] += 0.1f;
    cnn_model *m = make_model(c, fx, 1);
    w->data[0] = saved;
    if (!m)
        return;
    const float *out = NULL;
    double loss = NAN;
    if (step(m, fx, &out, &loss, NULL)) {
        int close = all_close(out, rout->data, rout->count);
        if (close)
            fprintf(stderr, "%s: negative control: a perturbed weight still matches\n", c->file);
        CHECK(!close);
    }
    cnn_model_free(m);
}

int main(int argc, char **argv)
{
    static char dir[1024];
    if (argc > 0 && argv[0] && strrchr(argv[0], '/')) {
        snprintf(dir, sizeof dir, "%s", argv[0]);
        *strrchr(dir, '/') = '\0';
        exe_dir = dir;
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture fx;
        int loaded = fixture_load(&fx, cases[i].file);
        CHECK(loaded);
        if (!loaded)
            continue;
        check_case(&cases[i], &fx, 1);
        check_case(&cases[i], &fx, 2);
        check_negative_control(&cases[i], &fx);
        fixture_free(&fx);
    }
    return test_finish("test_reference");
}
