/* Post-training quantization of Sequential models (quant/qmodel.h): a
 * random-weight network using every supported layer against its float
 * model, the same outputs from every instruction set, refusals that name
 * the layer, and - when the data set is installed - a convnet trained
 * briefly on Fashion-MNIST, whose int8 test accuracy must stay within one
 * point of the float model's. */
#include <stdlib.h>
#include <sys/stat.h>

#include "core/rng.h"
#include "quant/qmodel.h"
#include "test.h"

/* Every supported layer, random weights: int8 against float. */
static void test_all_layers(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(12, 12, 3)));
    cnn_model_set_seed(m, 3);
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 8, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME,
                                                .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_depthwise_conv2d(
        m, cnn_depthwise_conv2d(.kernel_size = {3, 3}, .depth_multiplier = 2,
                                .strides = {2, 2}, .padding = CNN_PADDING_SAME,
                                .activation = CNN_ACTIVATION_RELU6)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 12, .kernel_size = {1, 1})));
    CHECK_OK(cnn_model_add_relu(m, cnn_relu()));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2})));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 16, .kernel_size = {2, 2},
                                                .padding = CNN_PADDING_SAME)));
    CHECK_OK(cnn_model_add_average_pooling2d(m, cnn_pool2d(.pool_size = {3, 3}, .strides = {1, 1},
                                                           .padding = CNN_PADDING_SAME)));
    CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(.activation = CNN_ACTIVATION_RELU6)));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 32, .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_dropout(m, cnn_dropout(.rate = 0.3f)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SOFTMAX)));
    cnn_tensor *calib = test_random_images(200, 12, 12, 3, 1.0f, 5);
    cnn_tensor *x = test_random_images(100, 12, 12, 3, 1.0f, 6);
    cnn_qmodel *q = NULL;
    CHECK_OK(cnn_qmodel_create(&q, m, calib, 0));
    if (!q || !x) {
        cnn_model_free(m);
        return;
    }
    CHECK(cnn_qmodel_weight_bytes(q) > 0);
    float *fl = malloc(100 * 10 * sizeof(float)), *ref = malloc(100 * 10 * sizeof(float));
    float *got = malloc(100 * 10 * sizeof(float));
    const float *o = NULL;
    CHECK_OK(cnn_model_forward(m, x, false, &o));
    memcpy(fl, o, 100 * 10 * sizeof(float));
    cnn_qmodel_set_isa(q, CNN_QISA_GENERIC);
    CHECK_OK(cnn_qmodel_predict(q, x, ref));
    double worst = 0;
    int agree = 0;
    for (int e = 0; e < 100; e++) {
        /* random weights give nearly flat outputs: a near-tie may flip */
        int top = test_argmax(fl + e * 10, 10);
        float second = -1;
        for (int j = 0; j < 10; j++)
            if (j != top && fl[e * 10 + j] > second)
                second = fl[e * 10 + j];
        agree += top == test_argmax(ref + e * 10, 10) || fl[e * 10 + top] - second < 1e-3f;
        for (int j = 0; j < 10; j++)
            worst = fmax(worst, fabs(fl[e * 10 + j] - ref[e * 10 + j]));
    }
    printf("all layers: int8 vs float: top-1 agreement (or a float near-tie) %d/100, largest "
           "probability difference %.4f\n",
           agree, worst);
    CHECK(worst < 0.05);
    CHECK(agree >= 98);
    /* the same bytes from every instruction set */
    static const cnn_qisa isas[] = {CNN_QISA_AVX2, CNN_QISA_VNNI, CNN_QISA_AUTO};
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        if (!cnn_qisa_supported(isas[i]))
            continue;
        cnn_qmodel_set_isa(q, isas[i]);
        CHECK_OK(cnn_qmodel_predict(q, x, got));
        CHECK(memcmp(got, ref, 100 * 10 * sizeof(float)) == 0);
    }
    /* and from 1, 2 and 3 threads */
    for (int t = 1; t <= 3; t++) {
        CHECK_OK(cnn_qmodel_set_threads(q, t));
        CHECK_OK(cnn_qmodel_predict(q, x, got));
        CHECK(memcmp(got, ref, 100 * 10 * sizeof(float)) == 0);
    }
    CHECK_FAILS(cnn_qmodel_set_threads(q, 0), CNN_ERR_INVALID_ARGUMENT,
                "threads: expected 1 to 1024, got 0");
    /* wrong shapes */
    cnn_tensor *bad = test_random_images(2, 12, 11, 3, 1.0f, 1);
    CHECK_FAILS(cnn_qmodel_predict(q, bad, got), CNN_ERR_SHAPE, "dimension 2 is 11, expected 12");
    cnn_qmodel *q2 = (cnn_qmodel *)1;
    CHECK_FAILS(cnn_qmodel_create(&q2, m, bad, 0), CNN_ERR_SHAPE, "dimension 2 is 11");
    CHECK(q2 == NULL);
    cnn_tensor_free(bad);
    free(fl);
    free(ref);
    free(got);
    cnn_qmodel_free(q);
    cnn_tensor_free(calib);
    cnn_tensor_free(x);
    cnn_model_free(m);
}

/* BatchNormalization after a linear Conv2D, DepthwiseConv2D or Dense is
 * folded into its weights: the fashion_bn recipe's shape, with moving
 * statistics far from the identity. */
static void test_batch_norm_folding(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(10, 10, 2)));
    cnn_model_set_seed(m, 4);
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 8, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME, .no_bias = true)));
    CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization()));
    CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(.activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_depthwise_conv2d(m, cnn_depthwise_conv2d(.kernel_size = {3, 3})));
    CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization()));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d()));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 24)));
    CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization()));
    CHECK_OK(cnn_model_add_relu(m, cnn_relu()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 5)));
    cnn_rng r;
    cnn_rng_seed(&r, 12);
    for (int i = 0; i < cnn_model_layer_count(m); i++) {
        cnn_layer_spec s;
        CHECK_OK(cnn_model_layer_spec(m, i, &s));
        if (s.kind != CNN_LAYER_BATCH_NORMALIZATION)
            continue;
        static const float lo[4] = {0.5f, -0.3f, -0.5f, 0.3f}, span[4] = {1.5f, 0.6f, 1.0f, 2.0f};
        for (int k = 0; k < 4; k++) { /* gamma, beta, moving mean, moving variance */
            int64_t count = 0;
            float *w = cnn_model_layer_weights(m, i, k, &count);
            for (int64_t j = 0; w && j < count; j++)
                w[j] = lo[k] + span[k] * (float)cnn_rng_uniform(&r);
        }
    }
    cnn_tensor *calib = test_random_images(300, 10, 10, 2, 1.0f, 21);
    cnn_tensor *x = test_random_images(50, 10, 10, 2, 1.0f, 22);
    cnn_qmodel *q = NULL;
    CHECK_OK(cnn_qmodel_create(&q, m, calib, 0));
    float got[50 * 5];
    const float *fl = NULL;
    if (q && x) {
        CHECK_OK(cnn_qmodel_predict(q, x, got));
        CHECK_OK(cnn_model_forward(m, x, false, &fl));
    }
    if (fl) { /* logits out (no softmax): compare against their range */
        float lo = 0, hi = 0;
        double worst = 0;
        for (int i = 0; i < 50 * 5; i++) {
            lo = fminf(lo, fl[i]);
            hi = fmaxf(hi, fl[i]);
            worst = fmax(worst, fabs(fl[i] - got[i]));
        }
        printf("batch norm folded: largest logit difference %.4f over a range of %.3f\n", worst,
               (double)(hi - lo));
        CHECK(worst < 0.08 * (hi - lo)); /* unfolded: 0.4 to 0.7 of the range */
    }
    cnn_qmodel_free(q);
    cnn_tensor_free(calib);
    cnn_tensor_free(x);
    cnn_model_free(m);
}

/* Layers without an int8 kernel are refused, naming the layer. */
static void test_refusals(void)
{
    cnn_tensor *calib = test_random_images(4, 6, 6, 1, 1.0f, 9);
    struct {
        cnn_layer_spec first;
        const char *expect;
    } cases[] = {
        {{.kind = CNN_LAYER_CONV2D,
          .u.conv2d = {.filters = 2, .kernel_size = {3, 3}, .activation = CNN_ACTIVATION_ELU}},
         "int8 fuses linear, relu, relu6, tanh, sigmoid"},
        {{.kind = CNN_LAYER_ACTIVATION, .u.activation = {.activation = CNN_ACTIVATION_SOFTMAX}},
         "softmax is only quantized as the last layer"},
        {{.kind = CNN_LAYER_UP_SAMPLING2D},
         "layer 0 'up_sampling2d' (UpSampling2D): this layer kind has no int8 kernel"},
        {{.kind = CNN_LAYER_LAYER_NORMALIZATION},
         "(LayerNormalization): this layer kind has no int8 kernel"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cnn_model *m = NULL;
        CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(6, 6, 1)));
        CHECK_OK(cnn_model_add(m, &cases[i].first));
        CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
        CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3)));
        cnn_qmodel *q = NULL;
        CHECK_FAILS(cnn_qmodel_create(&q, m, calib, 0), CNN_ERR_INVALID_ARGUMENT, cases[i].expect);
        CHECK(q == NULL);
        cnn_model_free(m);
    }
    cnn_tensor_free(calib);
}

/* A short training on Fashion-MNIST, then 500 calibration images. */
static void test_fashion(void)
{
    const char *dir = getenv("FASHION_MNIST");
    if (!dir || !*dir)
        dir = "/usr/share/datasets/fashion-mnist";
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        test_skip("int8 accuracy on the real Fashion-MNIST", "data set not installed");
        return;
    }
    cnn_tensor *x = NULL, *y = NULL, *tx = NULL, *ty = NULL, *sx = NULL, *sy = NULL;
    cnn_tensor *stx = NULL, *sty = NULL, *cal = NULL;
    CHECK_OK(cnn_dataset_load_mnist(dir, &x, &y, &tx, &ty));
    if (!x || !tx)
        return;
    CHECK_OK(cnn_tensor_slice(x, 0, 6000, &sx));
    CHECK_OK(cnn_tensor_slice(y, 0, 6000, &sy));
    CHECK_OK(cnn_tensor_slice(x, 6000, 500, &cal));
    CHECK_OK(cnn_tensor_slice(tx, 0, 2000, &stx));
    CHECK_OK(cnn_tensor_slice(ty, 0, 2000, &sty));
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(28, 28, 1)));
    cnn_model_set_seed(m, 1);
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 16, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME,
                                                .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2})));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 32, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME,
                                                .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2})));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 64, .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam())));
    cnn_history *h = NULL;
    CHECK_OK(cnn_model_fit(m, sx, sy, cnn_fit(.epochs = 2, .batch_size = 32), &h));
    cnn_history_free(h);
    double loss = 0, acc = 0;
    CHECK_OK(cnn_model_evaluate(m, stx, sty, 500, &loss, &acc));
    cnn_qmodel *q = NULL;
    CHECK_OK(cnn_qmodel_create(&q, m, cal, 0));
    float *p = malloc(2000 * 10 * sizeof(float));
    if (q && p) {
        CHECK_OK(cnn_qmodel_predict(q, stx, p));
        int right = 0;
        for (int e = 0; e < 2000; e++)
            right += test_argmax(p + e * 10, 10) == (int)sty->data[e];
        double qacc = right / 2000.0;
        printf("fashion slice: float test accuracy %.4f, int8 %.4f (drop %.2f points); "
               "weights %lld bytes\n",
               acc, qacc, 100 * (acc - qacc), (long long)cnn_qmodel_weight_bytes(q));
        CHECK(acc - qacc <= 0.01);
        CHECK(acc > 0.8);
    }
    free(p);
    cnn_qmodel_free(q);
    cnn_model_free(m);
    cnn_tensor *ts[] = {x, y, tx, ty, sx, sy, stx, sty, cal};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        cnn_tensor_free(ts[i]);
}

int main(void)
{
    test_all_layers();
    test_batch_norm_folding();
    test_refusals();
    test_fashion();
    return test_finish("test_qmodel");
}
