/* Finite-difference gradient checks for every layer: each layer under test
 * sits in a small model ending in Flatten (+ Dense where needed) with an mse
 * or cross-entropy loss; analytic gradients of every parameter and of the
 * input are compared with central differences of the loss. Inputs are kept
 * away from ReLU kinks and max-pool ties. So that a check cannot pass by
 * accident (a failing pass gives loss 0 on both sides, which matches an
 * analytic gradient of 0), every forward, backward and evaluate must return
 * CNN_OK and every checked gradient must be non-zero somewhere. */
#include <stdlib.h>

#include "kernels/conv_transpose.h"
#include "test.h"

#define EPS 1e-3f

static unsigned long long rng_state = 12345;
static float uniform(void) /* [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) / 8388608.0) - 1.0f;
}

static cnn_tensor *tensor(int rank, const int64_t *dims)
{
    cnn_tensor *t = NULL;
    CHECK_OK(cnn_tensor_create(&t, rank, dims));
    return t;
}

/* Distinct values at least 1e-2 apart in shuffled order (no max-pool ties,
 * nothing within EPS of zero). */
static void fill_distinct(cnn_tensor *t)
{
    int64_t n = cnn_tensor_size(t);
    for (int64_t i = 0; i < n; i++)
        t->data[i] = (float)(i - n / 2) * 0.01f + (i - n / 2 >= 0 ? 0.005f : -0.005f);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)((uniform() + 1) / 2 * (float)(i + 1)) % (i + 1);
        float v = t->data[i];
        t->data[i] = t->data[j];
        t->data[j] = v;
    }
}

/* Whether the loss is taken in training mode (BatchNormalization's batch
 * statistics) or inference mode (evaluate). */
static bool training_mode;
/* Whether gradcheck compiles with from_logits. */
static bool from_logits_mode;

/* Calls of forward, backward and evaluate that failed since the last
 * check_tensor (each would make a loss of 0 and a vacuous comparison). */
static int failed_calls;

static void call_ok(cnn_status st, const char *call)
{
    if (st == CNN_OK)
        return;
    if (failed_calls++ == 0)
        fprintf(stderr, "%s returned %s: %s\n", call, cnn_status_name(st), cnn_last_error());
}

static double loss_of(cnn_model *m, const cnn_tensor *x, const cnn_tensor *y)
{
    double loss = NAN;
    if (training_mode) {
        call_ok(cnn_model_forward(m, x, true, NULL), "cnn_model_forward");
        call_ok(cnn_model_backward(m, y, &loss, NULL), "cnn_model_backward");
        cnn_model_zero_gradients(m);
    } else {
        call_ok(cnn_model_evaluate(m, x, y, (int)x->dims[0], &loss, NULL), "cnn_model_evaluate");
    }
    return loss;
}

/* Weights whose gradient backward computes: all but BatchNormalization's
 * moving statistics (weights 2 and 3), which are not trained. */
static bool trained_weight(cnn_model *m, int layer, int which)
{
    return !(strcmp(cnn_model_layer_type(m, layer), "BatchNormalization") == 0 && which >= 2);
}

/* A bias just before BatchNormalization in training mode has no effect on
 * the loss (the batch mean takes it away): its gradient is 0 everywhere. */
static bool no_effect(cnn_model *m, int layer, int which)
{
    return training_mode && which == 1 && layer + 1 < cnn_model_layer_count(m)
        && strcmp(cnn_model_layer_type(m, layer + 1), "BatchNormalization") == 0;
}

/* Compares analytic and numeric gradients at up to 24 positions per tensor;
 * the analytic one must be non-zero at one of them, or, with zero, 0 at
 * every element. */
static void check_tensor(const char *what, float *values, const float *analytic, int64_t n,
                         bool zero, cnn_model *m, const cnn_tensor *x, const cnn_tensor *y)
{
    int64_t stride = n > 24 ? n / 24 : 1;
    double worst = 0, largest = 0;
    int64_t worst_i = -1;
    double worst_num = 0, worst_ana = 0;
    failed_calls = 0;
    for (int64_t i = 0; i < n; i += stride) {
        float saved = values[i];
        values[i] = saved + EPS;
        double up = loss_of(m, x, y);
        values[i] = saved - EPS;
        double down = loss_of(m, x, y);
        values[i] = saved;
        double numeric = (up - down) / (2.0 * EPS);
        double err = fabs(numeric - analytic[i]) / (1e-3 + 1e-2 * fmax(fabs(numeric), fabs(analytic[i])));
        largest = fmax(largest, fabs(analytic[i]));
        if (!(err <= worst) && !isnan(worst)) { /* a NaN is kept as the worst */
            worst = err;
            worst_i = i;
            worst_num = numeric;
            worst_ana = analytic[i];
        }
    }
    if (!(worst <= 1.0)) {
        fprintf(stderr, "%s: element %lld: analytic %.6g, numeric %.6g\n", what,
                (long long)worst_i, worst_ana, worst_num);
        test_failed++;
    } else {
        test_passed++;
    }
    if (failed_calls)
        fprintf(stderr, "%s: %d calls of forward, backward or evaluate failed\n", what,
                failed_calls);
    CHECK(failed_calls == 0);
    /* a gradient of 0 at every checked element would compare equal to a
     * loss that does not move (or a pass that did nothing) */
    if (zero) {
        for (int64_t i = 0; i < n; i++)
            largest = fmax(largest, fabs(analytic[i]));
        if (!(largest <= 1e-6))
            fprintf(stderr, "%s: expected a gradient of 0, got up to %.3g\n", what, largest);
        CHECK(largest <= 1e-6);
    } else {
        if (!(largest > 1e-6))
            fprintf(stderr, "%s: the analytic gradient is 0 at every checked element\n", what);
        CHECK(largest > 1e-6);
    }
}

/* Runs the check on a model whose layers are all added; x is filled by the
 * caller, y random targets are made here for the loss. */
static void gradcheck(const char *name, cnn_model *m, cnn_tensor *x, cnn_loss loss)
{
    cnn_shape out = cnn_model_output_shape(m);
    int64_t n = x->dims[0], per = 1;
    for (int i = 0; i < out.rank; i++)
        per *= out.dims[i];
    cnn_tensor *y = loss == CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY
                        ? tensor(1, (int64_t[]){n})
                        : tensor(2, (int64_t[]){n, per});
    for (int64_t i = 0; i < cnn_tensor_size(y); i++) {
        if (loss == CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)
            y->data[i] = (float)((i * 7 + 3) % per);
        else if (loss == CNN_LOSS_MSE)
            y->data[i] = uniform();
        else
            y->data[i] = uniform() > 0 ? 1.0f : 0.0f;
    }
    if (loss == CNN_LOSS_CATEGORICAL_CROSSENTROPY) /* one-hot rows */
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = 0; j < per; j++)
                y->data[r * per + j] = j == (r * 5 + 1) % per;
    CHECK_OK(cnn_model_set_threads(m, 1));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = loss, .optimizer = cnn_sgd(),
                                              .from_logits = from_logits_mode)));
    float *input_grad = calloc((size_t)cnn_tensor_size(x), sizeof(float));
    double l;
    cnn_model_zero_gradients(m);
    CHECK_OK(cnn_model_forward(m, x, training_mode, NULL));
    CHECK_OK(cnn_model_backward(m, y, &l, input_grad));
    char what[160];
    /* copy every gradient first: later passes overwrite the buffers */
    int64_t total = cnn_model_param_count(m), off = 0;
    float *grads = malloc((size_t)total * sizeof(float));
    for (int i = 0; i < cnn_model_layer_count(m); i++)
        for (int which = 0; which < CNN_MAX_LAYER_WEIGHTS; which++) {
            int64_t count;
            const float *g = cnn_model_layer_gradients(m, i, which, &count);
            if (g)
                memcpy(grads + off, g, (size_t)count * sizeof(float));
            off += count;
        }
    off = 0;
    for (int i = 0; i < cnn_model_layer_count(m); i++)
        for (int which = 0; which < CNN_MAX_LAYER_WEIGHTS; which++) {
            int64_t count;
            float *w = cnn_model_layer_weights(m, i, which, &count);
            if (w && trained_weight(m, i, which)) {
                snprintf(what, sizeof what, "%s: %s weight %d", name,
                         cnn_model_layer_name(m, i), which);
                check_tensor(what, w, grads + off, count, no_effect(m, i, which), m, x, y);
            }
            off += count;
        }
    free(grads);
    snprintf(what, sizeof what, "%s: input", name);
    check_tensor(what, x->data, input_grad, cnn_tensor_size(x), false, m, x, y);
    free(input_grad);
    cnn_tensor_free(y);
}

/* Weights in [-0.5, 0.5); BatchNormalization's gamma near 1 and moving
 * variance in [0.5, 1) (it must stay positive). */
static void random_weights(cnn_model *m)
{
    for (int i = 0; i < cnn_model_layer_count(m); i++) {
        bool bn = strcmp(cnn_model_layer_type(m, i), "BatchNormalization") == 0;
        for (int which = 0; which < CNN_MAX_LAYER_WEIGHTS; which++) {
            int64_t count;
            float *w = cnn_model_layer_weights(m, i, which, &count);
            for (int64_t k = 0; w && k < count; k++)
                w[k] = 0.5f * uniform() + (bn && which == 0 ? 1.0f : bn && which == 3 ? 0.75f : 0);
        }
    }
}

static void conv_case(const char *name, int h, int w, int c, cnn_conv2d_config cfg)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(h, w, c)));
    CHECK_OK(cnn_model_add_conv2d(m, cfg));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    random_weights(m);
    cnn_tensor *x = tensor(4, (int64_t[]){2, h, w, c});
    for (int64_t i = 0; i < cnn_tensor_size(x); i++)
        x->data[i] = uniform();
    gradcheck(name, m, x, CNN_LOSS_MSE);
    cnn_tensor_free(x);
    cnn_model_free(m);
}

static void pool_case(const char *name, bool max, int h, int w, int c, cnn_pool2d_config cfg)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(h, w, c)));
    CHECK_OK(max ? cnn_model_add_max_pooling2d(m, cfg) : cnn_model_add_average_pooling2d(m, cfg));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    cnn_tensor *x = tensor(4, (int64_t[]){2, h, w, c});
    fill_distinct(x);
    gradcheck(name, m, x, CNN_LOSS_MSE);
    cnn_tensor_free(x);
    cnn_model_free(m);
}

/* An Activation layer on distinct inputs spread by scale: fill_distinct's
 * values times 7 stay 0.025 or more from 0, +-3 and 6 (the kinks of relu6,
 * leaky_relu, selu, hard_sigmoid, hard_silu); times 12, 0.06 from them. */
static void activation_case_scaled(const char *name, cnn_activation a, float scale)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(3, 4, 5)));
    CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(.activation = a)));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    cnn_tensor *x = tensor(4, (int64_t[]){2, 3, 4, 5});
    fill_distinct(x);
    cnn_tensor_scale(x, scale);
    gradcheck(name, m, x, CNN_LOSS_MSE);
    cnn_tensor_free(x);
    cnn_model_free(m);
}

static void activation_case(const char *name, cnn_activation a)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(3, 4, 5)));
    CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(.activation = a)));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    cnn_tensor *x = tensor(4, (int64_t[]){2, 3, 4, 5});
    fill_distinct(x);
    gradcheck(name, m, x, CNN_LOSS_MSE);
    cnn_tensor_free(x);
    cnn_model_free(m);
}

static void dense_case(const char *name, cnn_activation a, cnn_loss loss, int units, bool rank3)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, rank3 ? cnn_shape_hwc(2, 3, 4) : cnn_shape_flat(7)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = units, .activation = a)));
    if (rank3)
        CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    random_weights(m);
    cnn_tensor *x = rank3 ? tensor(4, (int64_t[]){3, 2, 3, 4}) : tensor(2, (int64_t[]){3, 7});
    for (int64_t i = 0; i < cnn_tensor_size(x); i++)
        x->data[i] = uniform();
    gradcheck(name, m, x, loss);
    cnn_tensor_free(x);
    cnn_model_free(m);
}

/* One layer (added by add) between the input and Flatten, with an mse
 * loss; inputs spread apart (fill_distinct) or random. */
static void layer_case(const char *name, cnn_shape in, cnn_status (*add)(cnn_model *),
                       bool distinct, bool training)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, in));
    CHECK_OK(add(m));
    if (cnn_model_output_shape(m).rank != 1)
        CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    random_weights(m);
    int64_t dims[4] = {2, in.dims[0], in.dims[1], in.dims[2]};
    cnn_tensor *x = tensor(in.rank + 1, dims);
    if (distinct)
        fill_distinct(x);
    else
        for (int64_t i = 0; i < cnn_tensor_size(x); i++)
            x->data[i] = uniform();
    training_mode = training;
    gradcheck(name, m, x, CNN_LOSS_MSE);
    training_mode = false;
    cnn_tensor_free(x);
    cnn_model_free(m);
}

static cnn_status add_bn(cnn_model *m)
{
    return cnn_model_add_batch_normalization(m, cnn_batch_normalization());
}
/* conv -> BN -> tanh: the statistics move with the conv's weights */
static cnn_status add_conv_bn(cnn_model *m)
{
    cnn_status st;
    if ((st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {2, 2},
                                                 .no_bias = true)))
        || (st = cnn_model_add_batch_normalization(m, cnn_batch_normalization(.epsilon = 0.01f))))
        return st;
    return cnn_model_add_activation(m, cnn_activation_layer(.activation = CNN_ACTIVATION_TANH));
}
/* With a batch of 2, each feature's two values normalise to about +-1: a
 * larger epsilon keeps the loss from being nearly flat in the inputs. */
static cnn_status add_dense_bn(cnn_model *m)
{
    cnn_status st = cnn_model_add_dense(m, cnn_dense(.units = 4));
    return st ? st : cnn_model_add_batch_normalization(m, cnn_batch_normalization(.epsilon = 0.05f));
}
static cnn_status add_leaky(cnn_model *m)
{
    return cnn_model_add_leaky_relu(m, cnn_leaky_relu(.negative_slope = 0.2f));
}
static cnn_status add_elu(cnn_model *m) { return cnn_model_add_elu(m, cnn_elu(.alpha = 0.7f)); }
static cnn_status add_relu6(cnn_model *m)
{
    return cnn_model_add_relu(m, cnn_relu(.max_value = 0.3f, .negative_slope = 0.1f,
                                          .threshold = -0.2f));
}
static cnn_status add_zero_padding(cnn_model *m)
{
    cnn_status st = cnn_model_add_zero_padding2d(m, cnn_zero_padding2d(.padding = {1, 2, 0, 3}));
    /* a conv after it, so the padded zeros meet weights */
    return st ? st : cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {3, 3}));
}
static cnn_status add_reshape(cnn_model *m)
{
    cnn_status st = cnn_model_add_reshape(m, cnn_reshape(.target_shape = {3, {2, -1, 3}}));
    return st ? st : cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {2, 2}));
}
static cnn_status add_depthwise(cnn_model *m)
{
    return cnn_model_add_depthwise_conv2d(m, cnn_depthwise_conv2d(.kernel_size = {3, 2},
                                                                   .depth_multiplier = 2,
                                                                   .activation = CNN_ACTIVATION_TANH));
}
static cnn_status add_depthwise_same_s2(cnn_model *m)
{
    return cnn_model_add_depthwise_conv2d(m, cnn_depthwise_conv2d(
        .kernel_size = {3, 3}, .strides = {2, 2}, .padding = CNN_PADDING_SAME, .no_bias = true));
}
static cnn_status add_depthwise_dilated(cnn_model *m)
{
    return cnn_model_add_depthwise_conv2d(m, cnn_depthwise_conv2d(
        .kernel_size = {2, 2}, .dilation_rate = {2, 2}, .depth_multiplier = 3,
        .padding = CNN_PADDING_SAME));
}
static cnn_status add_separable(cnn_model *m)
{
    return cnn_model_add_separable_conv2d(m, cnn_separable_conv2d(
        .filters = 3, .kernel_size = {3, 3}, .depth_multiplier = 2,
        .activation = CNN_ACTIVATION_SIGMOID));
}
static cnn_status add_separable_same_s2(cnn_model *m)
{
    return cnn_model_add_separable_conv2d(m, cnn_separable_conv2d(
        .filters = 4, .kernel_size = {2, 3}, .strides = {2, 2}, .padding = CNN_PADDING_SAME));
}

/* Each new layer followed by MaxPooling2D, which writes its input gradient
 * over the layer's output: the layer's backward must not read its output. */
/* Inputs mostly negative (distinct values shifted down by 1), so that many
 * pooling windows pick a value from the activations' negative side. */
static void pooled_case(const char *name, cnn_status (*add)(cnn_model *), bool training)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(6, 6, 3)));
    CHECK_OK(add(m));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d()));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    random_weights(m);
    cnn_tensor *x = tensor(4, (int64_t[]){2, 6, 6, 3});
    fill_distinct(x);
    for (int64_t i = 0; i < cnn_tensor_size(x); i++)
        x->data[i] -= 1.0f;
    training_mode = training;
    gradcheck(name, m, x, CNN_LOSS_MSE);
    training_mode = false;
    cnn_tensor_free(x);
    cnn_model_free(m);
}

static void test_issue7_layers(void)
{
    pooled_case("batchnorm -> maxpool", add_bn, true);
    pooled_case("leaky relu -> maxpool", add_leaky, false);
    pooled_case("elu -> maxpool", add_elu, false);
    pooled_case("relu6 -> maxpool", add_relu6, false);
    pooled_case("depthwise -> maxpool", add_depthwise_same_s2, false);
    pooled_case("separable -> maxpool", add_separable, false);

    /* BatchNormalization in training mode (batch statistics, whose
     * dependence on every input the backward pass must include) and in
     * inference mode (the moving statistics, constants) */
    layer_case("batchnorm training", cnn_shape_hwc(3, 4, 5), add_bn, false, true);
    layer_case("batchnorm inference", cnn_shape_hwc(3, 4, 5), add_bn, false, false);
    layer_case("conv + batchnorm training", cnn_shape_hwc(5, 4, 2), add_conv_bn, false, true);
    layer_case("dense + batchnorm training", cnn_shape_flat(6), add_dense_bn, false, true);
    layer_case("dense + batchnorm inference", cnn_shape_flat(6), add_dense_bn, false, false);
    /* activations: fill_distinct keeps inputs 0.005 from 0, 0.3 and -0.2 */
    layer_case("leaky relu", cnn_shape_hwc(3, 4, 5), add_leaky, true, false);
    layer_case("elu", cnn_shape_hwc(3, 4, 5), add_elu, true, false);
    layer_case("relu max_value negative_slope threshold", cnn_shape_hwc(3, 4, 5), add_relu6,
               true, false);
    layer_case("zero padding", cnn_shape_hwc(4, 3, 2), add_zero_padding, false, false);
    layer_case("reshape", cnn_shape_hwc(3, 4, 3), add_reshape, false, false);
    layer_case("depthwise valid x2", cnn_shape_hwc(6, 5, 3), add_depthwise, false, false);
    layer_case("depthwise same s2", cnn_shape_hwc(7, 6, 2), add_depthwise_same_s2, false, false);
    layer_case("depthwise dilated x3", cnn_shape_hwc(6, 6, 2), add_depthwise_dilated, false, false);
    layer_case("separable valid x2", cnn_shape_hwc(6, 5, 3), add_separable, false, false);
    layer_case("separable same s2", cnn_shape_hwc(7, 6, 2), add_separable_same_s2, false, false);
}


/* ---- issue 15's single-input layers ---------------------------------------- */

static cnn_conv2d_transpose_config ct_cfg;
static cnn_status add_ct(cnn_model *m)
{
    return cnn_model_add_conv2d_transpose(m, ct_cfg);
}
static cnn_up_sampling2d_config up_cfg;
static cnn_status add_up(cnn_model *m)
{
    cnn_status st = cnn_model_add_up_sampling2d(m, up_cfg);
    /* a conv after it, so neighbouring output pixels meet different weights */
    return st ? st : cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {2, 2}));
}
static cnn_status add_crop(cnn_model *m)
{
    cnn_status st = cnn_model_add_cropping2d(m, cnn_cropping2d(.cropping = {1, 0, 2, 1}));
    return st ? st : cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {2, 2}));
}
static cnn_status add_spatial_dropout(cnn_model *m)
{
    cnn_status st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 6, .kernel_size = {1, 1}));
    return st ? st
              : cnn_model_add_spatial_dropout2d(m, cnn_spatial_dropout2d(.rate = 0.5f, .seed = 3));
}
static cnn_status add_softmax_image(cnn_model *m)
{
    cnn_status st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {1, 1}));
    return st ? st : cnn_model_add_softmax(m, cnn_softmax());
}
static cnn_status add_softmax_flat(cnn_model *m)
{
    cnn_status st = cnn_model_add_dense(m, cnn_dense(.units = 5));
    return st ? st : cnn_model_add_softmax(m, cnn_softmax(.name = "probabilities"));
}
static cnn_layer_normalization_config ln_cfg;
static cnn_status add_ln(cnn_model *m)
{
    cnn_status st = cnn_model_add_layer_normalization(m, ln_cfg);
    return st ? st : cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {1, 1}));
}
static cnn_status add_dense_ln(cnn_model *m)
{
    cnn_status st = cnn_model_add_dense(m, cnn_dense(.units = 6));
    return st ? st : cnn_model_add_layer_normalization(m, ln_cfg);
}

/* The Conv2DTranspose's output against the direct scatter of
 * kernels/conv_transpose.h (its naive twin), with a workspace limit small
 * enough to cut the columns into several tiles. */
static void ct_twin_case(const char *name, cnn_shape in, cnn_conv2d_transpose_config cfg)
{
    cnn_model *m = NULL;
    cfg.activation = CNN_ACTIVATION_LINEAR; /* the twin has none */
    CHECK_OK(cnn_model_create(&m, in));
    CHECK_OK(cnn_model_add_conv2d_transpose(m, cfg));
    CHECK_OK(cnn_model_set_workspace_limit(m, 256));
    random_weights(m);
    cnn_tensor *x = tensor(4, (int64_t[]){2, in.dims[0], in.dims[1], in.dims[2]});
    for (int64_t i = 0; i < cnn_tensor_size(x); i++)
        x->data[i] = uniform();
    cnn_tensor *y = NULL;
    CHECK_OK(cnn_model_predict(m, x, 2, &y));
    cnn_shape o = cnn_model_output_shape(m);
    /* the geometry of the adjoint convolution, from the output size alone */
    const int same = cfg.padding == CNN_PADDING_SAME;
    const int sh = cfg.strides[0] ? cfg.strides[0] : 1, sw = cfg.strides[1] ? cfg.strides[1] : 1;
    const int dh = cfg.dilation_rate[0] ? cfg.dilation_rate[0] : 1;
    const int dw = cfg.dilation_rate[1] ? cfg.dilation_rate[1] : 1;
    cnn_conv_geom g = {.h = o.dims[0], .w = o.dims[1], .c = o.dims[2],
                       .kh = cfg.kernel_size[0], .kw = cfg.kernel_size[1], .sh = sh, .sw = sw,
                       .dh = dh, .dw = dw};
    g.oh = cnn_conv_out_size(g.h, g.kh, sh, dh, same, &g.pad_top);
    g.ow = cnn_conv_out_size(g.w, g.kw, sw, dw, same, &g.pad_left);
    CHECK(g.oh == in.dims[0] && g.ow == in.dims[1]);
    float *want = malloc((size_t)2 * o.dims[0] * o.dims[1] * o.dims[2] * sizeof(float));
    int64_t nk, nb;
    const float *k = cnn_model_layer_weights(m, 0, 0, &nk);
    const float *b = cnn_model_layer_weights(m, 0, 1, &nb);
    cnn_conv_transpose_naive(&g, 2, in.dims[2], x->data, k, b, want);
    double worst = 0;
    for (int64_t i = 0; y && i < cnn_tensor_size(y); i++) {
        double d = fabs((double)y->data[i] - want[i]);
        worst = d > worst ? d : worst;
    }
    if (worst > 1e-5)
        fprintf(stderr, "%s: differs from the naive twin by %g\n", name, worst);
    CHECK(y != NULL && worst <= 1e-5);
    free(want);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(m);
}

static void test_issue15_layers(void)
{
    /* Conv2DTranspose: Keras's output sizes with and without output_padding */
    static const struct {
        const char *name;
        cnn_shape in;
        cnn_conv2d_transpose_config cfg;
        int out_h, out_w;
    } cts[] = {
        {"conv transpose same s2", {3, {3, 4, 2}},
         {.filters = 3, .kernel_size = {3, 3}, .strides = {2, 2}, .padding = CNN_PADDING_SAME,
          .activation = CNN_ACTIVATION_TANH}, 6, 8},
        {"conv transpose valid s2", {3, {3, 2, 2}},
         {.filters = 2, .kernel_size = {3, 2}, .strides = {2, 2}}, 7, 4},
        {"conv transpose valid k1 s2", {3, {3, 3, 2}},
         {.filters = 2, .kernel_size = {1, 1}, .strides = {2, 3}, .no_bias = true}, 6, 9},
        {"conv transpose same k4 s2 output_padding", {3, {3, 3, 2}},
         {.filters = 2, .kernel_size = {4, 4}, .strides = {2, 2}, .padding = CNN_PADDING_SAME,
          .output_padding = {{1, 1}, true}}, 5, 5},
        {"conv transpose valid s2 output_padding", {3, {2, 3, 3}},
         {.filters = 2, .kernel_size = {3, 3}, .strides = {2, 2},
          .output_padding = {{1, 0}, true}}, 6, 7},
        {"conv transpose dilated same", {3, {4, 4, 2}},
         {.filters = 3, .kernel_size = {3, 2}, .dilation_rate = {2, 2},
          .padding = CNN_PADDING_SAME}, 4, 4},
    };
    for (size_t i = 0; i < sizeof cts / sizeof cts[0]; i++) {
        cnn_model *m = NULL;
        CHECK_OK(cnn_model_create(&m, cts[i].in));
        CHECK_OK(cnn_model_add_conv2d_transpose(m, cts[i].cfg));
        cnn_shape o = cnn_model_output_shape(m);
        if (o.dims[0] != cts[i].out_h || o.dims[1] != cts[i].out_w)
            fprintf(stderr, "%s: output %dx%d, want %dx%d\n", cts[i].name, o.dims[0], o.dims[1],
                    cts[i].out_h, cts[i].out_w);
        CHECK(o.dims[0] == cts[i].out_h && o.dims[1] == cts[i].out_w);
        cnn_model_free(m);
        ct_cfg = cts[i].cfg;
        layer_case(cts[i].name, cts[i].in, add_ct, false, false);
        ct_twin_case(cts[i].name, cts[i].in, cts[i].cfg);
    }
    /* same padding with an even kernel and output_padding 0: the adjoint
     * convolution would not map the output back to the input (TensorFlow
     * refuses it too) */
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(3, 3, 1)));
    CHECK_FAILS(cnn_model_add_conv2d_transpose(
                    m, cnn_conv2d_transpose(.filters = 1, .kernel_size = {2, 2},
                                            .strides = {2, 2}, .padding = CNN_PADDING_SAME,
                                            .output_padding = {{0, 0}, true})),
                CNN_ERR_SHAPE, "not to the input 3 x 3");
    CHECK_FAILS(cnn_model_add_conv2d_transpose(
                    m, cnn_conv2d_transpose(.filters = 1, .kernel_size = {3, 3},
                                            .strides = {2, 2}, .output_padding = {{2, 0}, true})),
                CNN_ERR_INVALID_ARGUMENT, "less than the strides");
    /* a 65536 kernel dilated 65536 times: each side about 2^32, whose
     * product wraps around in 64 bits */
    CHECK_FAILS(cnn_model_add_conv2d_transpose(
                    m, cnn_conv2d_transpose(.filters = 1, .kernel_size = {65536, 65536},
                                            .dilation_rate = {65536, 65536})),
                CNN_ERR_SHAPE, "is empty or too large");
    cnn_model_free(m);

    up_cfg = cnn_up_sampling2d(.size = {2, 3});
    layer_case("upsampling nearest 2x3", cnn_shape_hwc(3, 2, 2), add_up, false, false);
    up_cfg = cnn_up_sampling2d(.interpolation = CNN_INTERPOLATION_BILINEAR);
    layer_case("upsampling bilinear 2x2", cnn_shape_hwc(3, 4, 2), add_up, false, false);
    up_cfg = cnn_up_sampling2d(.size = {3, 2}, .interpolation = CNN_INTERPOLATION_BILINEAR);
    layer_case("upsampling bilinear 3x2", cnn_shape_hwc(2, 3, 1), add_up, false, false);
    layer_case("cropping", cnn_shape_hwc(5, 6, 2), add_crop, false, false);
    layer_case("spatial dropout training", cnn_shape_hwc(3, 3, 2), add_spatial_dropout, false,
               true);
    layer_case("spatial dropout inference", cnn_shape_hwc(3, 3, 2), add_spatial_dropout, false,
               false);
    layer_case("softmax over channels", cnn_shape_hwc(3, 2, 3), add_softmax_image, false, false);
    layer_case("softmax flat", cnn_shape_flat(4), add_softmax_flat, false, false);
    ln_cfg = cnn_layer_normalization();
    layer_case("layer norm", cnn_shape_hwc(3, 2, 5), add_ln, false, false);
    layer_case("dense + layer norm", cnn_shape_flat(4), add_dense_ln, false, false);
    ln_cfg = cnn_layer_normalization(.epsilon = 0.01f, .no_center = true);
    layer_case("layer norm no center", cnn_shape_hwc(2, 2, 4), add_ln, false, false);
    ln_cfg = cnn_layer_normalization(.no_scale = true);
    layer_case("layer norm no scale", cnn_shape_hwc(2, 2, 4), add_ln, false, false);
}

/* silu, gelu, gelu_tanh, hard_silu, mish: not monotonic */
static bool not_monotonic(cnn_activation a)
{
    return a == CNN_ACTIVATION_SILU || a == CNN_ACTIVATION_GELU || a == CNN_ACTIVATION_GELU_TANH
        || a == CNN_ACTIVATION_HARD_SILU || a == CNN_ACTIVATION_MISH;
}

/* Issue 12: every added activation as a layer (the model's path: from the
 * output, or from the kept pre-activation), in Dense (fused into the layer
 * where the output suffices), before a max pooling that writes the gradient
 * over its output, and the smooth ones fused into Conv2D; then from_logits. */
static void test_issue12_activations(void)
{
    for (int a = CNN_ACTIVATION_SILU; a <= CNN_ACTIVATION_MISH; a++) {
        cnn_activation act = (cnn_activation)a;
        char name[96];
        snprintf(name, sizeof name, "%s layer", cnn_activation_name(act));
        activation_case_scaled(name, act, act == CNN_ACTIVATION_RELU6 ? 12.0f : 7.0f);
        snprintf(name, sizeof name, "dense %s", cnn_activation_name(act));
        dense_case(name, act, CNN_LOSS_MSE, 5, false);
        bool kink = act == CNN_ACTIVATION_SELU || act == CNN_ACTIVATION_HARD_SIGMOID
                 || act == CNN_ACTIVATION_HARD_SILU || act == CNN_ACTIVATION_RELU6
                 || act == CNN_ACTIVATION_LEAKY_RELU;
        if (!kink) { /* random conv outputs could sit on a kink */
            snprintf(name, sizeof name, "conv %s", cnn_activation_name(act));
            conv_case(name, 6, 5, 2, cnn_conv2d(.filters = 3, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME, .activation = act));
        }
        /* monotonic ones (their output fixes the derivative): in place */
        if (!not_monotonic(act)) {
            cnn_model *m = NULL;
            CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(5, 7, 3)));
            CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(.activation = act)));
            CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d()));
            CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
            cnn_tensor *x = tensor(4, (int64_t[]){2, 5, 7, 3});
            fill_distinct(x);
            /* hard_sigmoid is flat beyond +-3, where most window maxima would be */
            cnn_tensor_scale(x, act == CNN_ACTIVATION_RELU6          ? 12.0f
                                : act == CNN_ACTIVATION_HARD_SIGMOID ? 2.0f
                                                                     : 7.0f);
            snprintf(name, sizeof name, "%s -> maxpool in place", cnn_activation_name(act));
            gradcheck(name, m, x, CNN_LOSS_MSE);
            cnn_tensor_free(x);
            cnn_model_free(m);
        }
    }
    from_logits_mode = true;
    dense_case("logits + sparse ce", CNN_ACTIVATION_LINEAR,
               CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 4, false);
    dense_case("logits + categorical ce", CNN_ACTIVATION_LINEAR,
               CNN_LOSS_CATEGORICAL_CROSSENTROPY, 4, false);
    dense_case("logits + binary ce", CNN_ACTIVATION_LINEAR, CNN_LOSS_BINARY_CROSSENTROPY, 3,
               false);
    /* from_logits after an activation: its derivative must not be skipped */
    dense_case("tanh output as logits + sparse ce", CNN_ACTIVATION_TANH,
               CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 4, false);
    dense_case("softmax output as logits + categorical ce", CNN_ACTIVATION_SOFTMAX,
               CNN_LOSS_CATEGORICAL_CROSSENTROPY, 4, false);
    dense_case("sigmoid output as logits + binary ce", CNN_ACTIVATION_SIGMOID,
               CNN_LOSS_BINARY_CROSSENTROPY, 3, false);
    from_logits_mode = false;
}

/* Issue 15: graphs. The inputs' shapes: (3, 4, 5) into two convolutions,
 * "a" (tanh) and "b" (sigmoid, reading the model's input too, so the input
 * gradient is the sum of two), merged. */
static cnn_model *two_branches(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(3, 4, 5)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME, .name = "a",
                                                .activation = CNN_ACTIVATION_TANH)));
    CHECK_OK(cnn_model_set_next_inputs(m, 1, (const char *[]){"input_layer"}));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {1, 1},
                                                .name = "b",
                                                .activation = CNN_ACTIVATION_SIGMOID)));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"a", "b"}));
    return m;
}

static void graph_check(const char *name, cnn_model *m, cnn_shape in)
{
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    random_weights(m);
    cnn_tensor *x = tensor(4, (int64_t[]){2, in.dims[0], in.dims[1], in.dims[2]});
    for (int64_t i = 0; i < cnn_tensor_size(x); i++)
        x->data[i] = uniform();
    gradcheck(name, m, x, CNN_LOSS_MSE);
    cnn_tensor_free(x);
    cnn_model_free(m);
}

static void test_issue15_graphs(void)
{
    static const struct {
        const char *name;
        cnn_status (*add)(cnn_model *, cnn_merge_config);
    } merges[] = {{"Add", cnn_model_add_add},         {"Subtract", cnn_model_add_subtract},
                  {"Multiply", cnn_model_add_multiply}, {"Average", cnn_model_add_average},
                  {"Maximum", cnn_model_add_maximum}, {"Minimum", cnn_model_add_minimum}};
    for (size_t i = 0; i < sizeof merges / sizeof merges[0]; i++) {
        cnn_model *m = two_branches();
        CHECK_OK(merges[i].add(m, cnn_merge()));
        graph_check(merges[i].name, m, cnn_shape_hwc(3, 4, 5));
    }
    cnn_model *m = two_branches();
    CHECK_OK(cnn_model_add_concatenate(m, cnn_concatenate()));
    graph_check("Concatenate channels", m, cnn_shape_hwc(3, 4, 5));
    m = two_branches();
    CHECK_OK(cnn_model_add_concatenate(m, cnn_concatenate(.axis = 1)));
    graph_check("Concatenate rows", m, cnn_shape_hwc(3, 4, 5));
    /* three inputs, one of them twice: four gradients into two buffers */
    m = two_branches();
    CHECK_OK(cnn_model_set_next_inputs(m, 3, (const char *[]){"a", "b", "a"}));
    CHECK_OK(cnn_model_add_add(m, cnn_merge()));
    graph_check("Add a + b + a", m, cnn_shape_hwc(3, 4, 5));

    /* A residual block: c1 feeds c2 and the Add; max pooling writes its
     * input gradient over the Add's output; batch norm in training. */
    for (int training = 0; training < 2; training++) {
        training_mode = training;
        CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(6, 5, 2)));
        CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                                    .padding = CNN_PADDING_SAME, .name = "c1",
                                                    .activation = CNN_ACTIVATION_TANH)));
        CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                                    .padding = CNN_PADDING_SAME)));
        CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization(.name = "bn")));
        CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"bn", "c1"}));
        CHECK_OK(cnn_model_add_add(m, cnn_merge()));
        CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(.activation = CNN_ACTIVATION_TANH)));
        CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d()));
        CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3)));
        graph_check(training ? "residual block, training" : "residual block", m,
                    cnn_shape_hwc(6, 5, 2));
    }
    training_mode = false;
    /* An Inception-like block: three branches of the input concatenated */
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(5, 5, 3)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {1, 1}, .name = "p",
                                                .activation = CNN_ACTIVATION_TANH)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME, .name = "q")));
    CHECK_OK(cnn_model_set_next_inputs(m, 1, (const char *[]){"input_layer"}));
    CHECK_OK(cnn_model_add_average_pooling2d(m, cnn_pool2d(.pool_size = {3, 3}, .strides = {1, 1},
                                                           .padding = CNN_PADDING_SAME,
                                                           .name = "r")));
    CHECK_OK(cnn_model_set_next_inputs(m, 3, (const char *[]){"p", "q", "r"}));
    CHECK_OK(cnn_model_add_concatenate(m, cnn_concatenate()));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {1, 1},
                                                .activation = CNN_ACTIVATION_SIGMOID)));
    graph_check("concatenating block", m, cnn_shape_hwc(5, 5, 3));
}

/* Broadcasting merges (Keras's rule: sizes matched from the last axis,
 * equal or 1): branches of the input (3, 4, 5), each built only if named:
 * "a" (3, 4, 3), "row" (1, 4, 3), "col" (3, 1, 3), "gap" (3); then the
 * next layer reads the named ones in that order. */
static cnn_model *broadcast_branches(int n, const char *const *names)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(3, 4, 5)));
    for (int k = 0; k < n; k++) {
        CHECK_OK(cnn_model_set_next_inputs(m, 1, (const char *[]){"input_layer"}));
        if (strcmp(names[k], "a") == 0)
            CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {3, 3},
                                                        .padding = CNN_PADDING_SAME, .name = "a",
                                                        .activation = CNN_ACTIVATION_TANH)));
        else if (strcmp(names[k], "row") == 0)
            CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {3, 1},
                                                        .name = "row",
                                                        .activation = CNN_ACTIVATION_SIGMOID)));
        else if (strcmp(names[k], "col") == 0)
            CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {1, 4},
                                                        .name = "col",
                                                        .activation = CNN_ACTIVATION_TANH)));
        else {
            CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {1, 1},
                                                        .activation = CNN_ACTIVATION_TANH)));
            CHECK_OK(cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d(.name = "gap")));
        }
    }
    CHECK_OK(cnn_model_set_next_inputs(m, n, names));
    return m;
}

static void test_broadcasting_merges(void)
{
    static const struct {
        const char *name;
        cnn_status (*add)(cnn_model *, cnn_merge_config);
    } merges[] = {{"Add", cnn_model_add_add},         {"Subtract", cnn_model_add_subtract},
                  {"Multiply", cnn_model_add_multiply}, {"Average", cnn_model_add_average},
                  {"Maximum", cnn_model_add_maximum}, {"Minimum", cnn_model_add_minimum}};
    for (size_t i = 0; i < sizeof merges / sizeof merges[0]; i++) {
        char name[96];
        cnn_model *m = broadcast_branches(2, (const char *[]){"a", "row"});
        CHECK_OK(merges[i].add(m, cnn_merge()));
        snprintf(name, sizeof name, "%s (3,4,3) with (1,4,3)", merges[i].name);
        graph_check(name, m, cnn_shape_hwc(3, 4, 5));
        /* the broadcast input first, and one of rank 1 (a squeeze-excite gate) */
        const bool two = merges[i].add == cnn_model_add_subtract; /* takes exactly 2 */
        m = broadcast_branches(two ? 2 : 3, (const char *[]){"gap", "a", "col"});
        CHECK_OK(merges[i].add(m, cnn_merge()));
        snprintf(name, sizeof name, "%s (3) with (3,4,3)%s", merges[i].name,
                 two ? "" : " and (3,1,3)");
        graph_check(name, m, cnn_shape_hwc(3, 4, 5));
        /* (1,4,3) with (3,1,3): both broadcast, to (3,4,3) */
        m = broadcast_branches(2, (const char *[]){"row", "col"});
        CHECK_OK(merges[i].add(m, cnn_merge()));
        const cnn_shape out = cnn_model_output_shape(m);
        CHECK(out.rank == 3 && out.dims[0] == 3 && out.dims[1] == 4 && out.dims[2] == 3);
        snprintf(name, sizeof name, "%s (1,4,3) with (3,1,3)", merges[i].name);
        graph_check(name, m, cnn_shape_hwc(3, 4, 5));
    }
    /* sizes neither equal nor 1: refused, naming both inputs' shapes */
    cnn_model *m = broadcast_branches(2, (const char *[]){"row", "a"});
    CHECK_OK(cnn_model_set_next_inputs(m, 1, (const char *[]){"input_layer"}));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {1, 1},
                                                .name = "two")));
    CHECK_OK(cnn_model_set_next_inputs(m, 3, (const char *[]){"row", "a", "two"}));
    CHECK(cnn_model_add_add(m, cnn_merge(.name = "bad")) == CNN_ERR_SHAPE);
    CHECK(strstr(cnn_last_error(), "bad (Add): inputs have incompatible shapes: input 0 is"
                                   " (None, 1, 4, 3), input 2 is (None, 3, 4, 2)")
          != NULL);
    cnn_model_free(m);
}

int main(void)
{
    /* Conv2D: both paddings, strides 1 and 2, odd sizes, dilation, no bias, 1x1. */
    conv_case("conv valid s1", 7, 6, 3,
              cnn_conv2d(.filters = 4, .kernel_size = {3, 2}, .activation = CNN_ACTIVATION_TANH));
    conv_case("conv same s1", 7, 5, 2,
              cnn_conv2d(.filters = 3, .kernel_size = {3, 3}, .padding = CNN_PADDING_SAME,
                         .activation = CNN_ACTIVATION_SIGMOID));
    conv_case("conv valid s2", 9, 7, 2,
              cnn_conv2d(.filters = 3, .kernel_size = {3, 3}, .strides = {2, 2}));
    conv_case("conv same s2 even kernel", 8, 7, 3,
              cnn_conv2d(.filters = 2, .kernel_size = {4, 2}, .strides = {2, 2},
                         .padding = CNN_PADDING_SAME));
    conv_case("conv same s2x1", 6, 5, 1,
              cnn_conv2d(.filters = 2, .kernel_size = {5, 3}, .strides = {2, 1},
                         .padding = CNN_PADDING_SAME, .no_bias = true));
    conv_case("conv dilation valid", 9, 8, 2,
              cnn_conv2d(.filters = 3, .kernel_size = {3, 3}, .dilation_rate = {2, 3}));
    conv_case("conv dilation same", 7, 7, 2,
              cnn_conv2d(.filters = 2, .kernel_size = {3, 2}, .dilation_rate = {2, 2},
                         .padding = CNN_PADDING_SAME, .activation = CNN_ACTIVATION_TANH));
    conv_case("conv 1x1", 4, 5, 3, cnn_conv2d(.filters = 4, .kernel_size = {1, 1}));

    /* Pooling: both kinds, both paddings, strides 1 and 2, odd sizes. */
    pool_case("maxpool valid", true, 7, 6, 2, cnn_pool2d(.pool_size = {2, 2}));
    pool_case("maxpool same odd", true, 7, 5, 2, cnn_pool2d(.pool_size = {2, 2}, .padding = CNN_PADDING_SAME));
    pool_case("maxpool 3x3 s1 same", true, 5, 6, 2,
              cnn_pool2d(.pool_size = {3, 3}, .strides = {1, 1}, .padding = CNN_PADDING_SAME));
    pool_case("avgpool valid s1", false, 6, 5, 2, cnn_pool2d(.pool_size = {3, 2}, .strides = {1, 1}));
    pool_case("avgpool same odd", false, 7, 5, 3,
              cnn_pool2d(.pool_size = {3, 3}, .strides = {2, 2}, .padding = CNN_PADDING_SAME));

    /* Max pooling whose windows tile its input writes the input gradient
     * over the previous layer's output, folding in that layer's activation
     * derivative; odd sizes leave a 'valid' remainder to clear. */
    for (int a = 0; a < 3; a++) {
        const cnn_activation acts[3] = {CNN_ACTIVATION_TANH, CNN_ACTIVATION_RELU,
                                        CNN_ACTIVATION_SIGMOID};
        cnn_model *m = NULL;
        CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(5, 7, 3)));
        CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(.activation = acts[a])));
        CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d()));
        CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
        cnn_tensor *x = tensor(4, (int64_t[]){2, 5, 7, 3});
        fill_distinct(x);
        gradcheck(a == 0 ? "tanh -> maxpool in place" : a == 1 ? "relu -> maxpool in place"
                                                               : "sigmoid -> maxpool in place",
                  m, x, CNN_LOSS_MSE);
        cnn_tensor_free(x);
        cnn_model_free(m);
    }

    /* Global pooling. */
    {
        for (int k = 0; k < 2; k++) {
            cnn_model *m = NULL;
            CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(5, 3, 4)));
            CHECK_OK(k ? cnn_model_add_global_max_pooling2d(m, cnn_global_pool2d())
                       : cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d()));
            cnn_tensor *x = tensor(4, (int64_t[]){2, 5, 3, 4});
            fill_distinct(x);
            gradcheck(k ? "global max pool" : "global average pool", m, x, CNN_LOSS_MSE);
            cnn_tensor_free(x);
            cnn_model_free(m);
        }
    }

    /* Activations as layers (inputs away from 0 for relu). */
    activation_case("relu", CNN_ACTIVATION_RELU);
    activation_case("sigmoid", CNN_ACTIVATION_SIGMOID);
    activation_case("tanh", CNN_ACTIVATION_TANH);
    activation_case("softmax", CNN_ACTIVATION_SOFTMAX);
    activation_case("linear", CNN_ACTIVATION_LINEAR);

    /* Dense and every loss, fused and not. */
    dense_case("dense mse", CNN_ACTIVATION_TANH, CNN_LOSS_MSE, 5, false);
    dense_case("dense on rank 3", CNN_ACTIVATION_LINEAR, CNN_LOSS_MSE, 3, true);
    dense_case("softmax + sparse ce", CNN_ACTIVATION_SOFTMAX,
               CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 4, false);
    dense_case("softmax + categorical ce", CNN_ACTIVATION_SOFTMAX,
               CNN_LOSS_CATEGORICAL_CROSSENTROPY, 4, false);
    dense_case("sigmoid + binary ce", CNN_ACTIVATION_SIGMOID, CNN_LOSS_BINARY_CROSSENTROPY, 3,
               false);
    dense_case("sigmoid + categorical ce (unfused)", CNN_ACTIVATION_SIGMOID,
               CNN_LOSS_CATEGORICAL_CROSSENTROPY, 4, false);
    /* softmax + binary ce is refused at compile now (issue 18.11); a case
     * drawing the same random numbers keeps the cases after it as they were
     * (unfused binary ce is checked at the end) */
    dense_case("sigmoid + mse, 3 outputs", CNN_ACTIVATION_SIGMOID, CNN_LOSS_MSE, 3, false);
    dense_case("sigmoid + sparse ce (unfused)", CNN_ACTIVATION_SIGMOID,
               CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 4, false);

    /* The whole seed pipeline at once: conv -> relu -> pool -> dense. */
    {
        cnn_model *m = NULL;
        CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(8, 8, 1)));
        CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {3, 3},
                                                    .padding = CNN_PADDING_SAME,
                                                    .activation = CNN_ACTIVATION_TANH)));
        CHECK_OK(cnn_model_add_average_pooling2d(m, cnn_pool2d()));
        CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
        CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 4, .activation = CNN_ACTIVATION_SOFTMAX)));
        random_weights(m);
        cnn_tensor *x = tensor(4, (int64_t[]){2, 8, 8, 1});
        fill_distinct(x);
        gradcheck("pipeline", m, x, CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY);
        cnn_tensor_free(x);
        cnn_model_free(m);
    }
    test_issue7_layers();
    test_issue12_activations();
    /* binary ce unfused: the sigmoid is not the last layer's */
    dense_case("sigmoid, Flatten + binary ce (unfused)", CNN_ACTIVATION_SIGMOID,
               CNN_LOSS_BINARY_CROSSENTROPY, 3, true);
    test_issue15_layers();
    test_issue15_graphs();
    test_broadcasting_merges();
    return test_finish("test_gradcheck");
}
