/* Model descriptions: the hand-written text format and Keras to_json()
 * (Keras 2 and 3), every error with its file:line:column, the example
 * files in examples/, and real Keras configs in tests/data/ (model_config
 * of mnist-keras2.2.4.h5 and config.json of mnist-keras3.14.keras, the
 * models docs/KERAS.md lists; the architectures alone, so these tests run
 * on every clone). */
#include <stdlib.h>

#include "test.h"

static cnn_status parse(const char *text, cnn_model **m)
{
    return cnn_model_from_description_memory(text, strlen(text), "t.model", m);
}

/* Parses text, which must fail with status and a message containing want;
 * the output model must stay NULL. */
#define PARSE_FAILS(text, status, want)                                            \
    do {                                                                           \
        cnn_model *bad_ = (cnn_model *)&bad_; /* must be reset to NULL */          \
        CHECK_FAILS(parse((text), &bad_), (status), (want));                       \
        CHECK(bad_ == NULL);                                                       \
        if (bad_ != (cnn_model *)&bad_)                                            \
            cnn_model_free(bad_);                                                  \
    } while (0)

static char *summary_of(const cnn_model *m)
{
    char *text = NULL;
    CHECK_OK(cnn_model_summary(m, &text));
    return text;
}

static void check_summaries_equal(const cnn_model *a, const cnn_model *b, const char *what)
{
    char *sa = summary_of(a), *sb = summary_of(b);
    if (sa && sb && strcmp(sa, sb) != 0) {
        fprintf(stderr, "%s: summaries differ\n--- parsed ---\n%s--- built in C ---\n%s", what,
                sa, sb);
        CHECK(0);
    } else {
        CHECK(sa && sb);
    }
    free(sa);
    free(sb);
}

static void check_example(const char *path, int64_t params, int layers)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_from_description(path, &m));
    if (!m)
        return;
    CHECK(cnn_model_param_count(m) == params);
    CHECK(cnn_model_layer_count(m) == layers);
    if (cnn_model_param_count(m) != params)
        fprintf(stderr, "%s: %lld params, expected %lld\n", path,
                (long long)cnn_model_param_count(m), (long long)params);
    cnn_model_free(m);
}

static void test_examples(void)
{
    /* The tutorial convnet, parsed and built in C, must print the same summary. */
    cnn_model *parsed = NULL, *built = NULL;
    CHECK_OK(cnn_model_from_description("examples/tutorial_convnet.model", &parsed));
    CHECK_OK(cnn_model_create(&built, cnn_shape_hwc(28, 28, 1)));
    CHECK_OK(cnn_model_add_conv2d(built, cnn_conv2d(.filters = 32, .kernel_size = {5, 5},
                                                    .padding = CNN_PADDING_SAME,
                                                    .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_max_pooling2d(built, cnn_pool2d(.pool_size = {2, 2})));
    CHECK_OK(cnn_model_add_conv2d(built, cnn_conv2d(.filters = 64, .kernel_size = {5, 5},
                                                    .padding = CNN_PADDING_SAME,
                                                    .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_max_pooling2d(built, cnn_pool2d(.pool_size = {2, 2})));
    CHECK_OK(cnn_model_add_flatten(built, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(built, cnn_dense(.units = 1024,
                                                  .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_dropout(built, cnn_dropout(.rate = 0.4f)));
    CHECK_OK(cnn_model_add_dense(built, cnn_dense(.units = 10,
                                                  .activation = CNN_ACTIVATION_SOFTMAX)));
    if (parsed && built) {
        check_summaries_equal(parsed, built, "tutorial_convnet.model");
        /* Beyond the summary: every layer's full configuration. */
        for (int i = 0; i < cnn_model_layer_count(built); i++) {
            cnn_layer_spec a, b;
            CHECK_OK(cnn_model_layer_spec(parsed, i, &a));
            CHECK_OK(cnn_model_layer_spec(built, i, &b));
            CHECK(a.kind == b.kind);
            if (a.kind == CNN_LAYER_CONV2D)
                CHECK(a.u.conv2d.filters == b.u.conv2d.filters
                      && a.u.conv2d.padding == b.u.conv2d.padding
                      && a.u.conv2d.activation == b.u.conv2d.activation
                      && a.u.conv2d.kernel_size[1] == b.u.conv2d.kernel_size[1]);
            if (a.kind == CNN_LAYER_DROPOUT)
                CHECK(a.u.dropout.rate == b.u.dropout.rate);
        }
    }
    cnn_model_free(parsed);
    cnn_model_free(built);

    /* 832 + 51264 + 3136*1024+1024 + 1024*10+10 */
    check_example("examples/tutorial_convnet.model", 3274634, 8);
    /* 896 + 18496 + 16*16*64*10+10 */
    check_example("examples/seed.model", 183242, 6);
    /* 156 + 2416 + 48120 + 10164 + 850 */
    check_example("examples/lenet5.model", 61706, 8);
    /* the Fashion-MNIST recipes: 288 + 4*32 + 18432 + 4*64 + 3136*128 + 4*128 + 1290 */
    check_example("examples/fashion_bn.model", 422314, 15);
    /* 288 + 128 + 18432 + 256 + 36864 + 256 + 3136*256 + 1024 + 2570 */
    check_example("examples/fashion_bn_stretch.model", 862634, 18);
    /* the ResNet: 288 + 128 + 2 * (9216 + 128) + 18432 + 256 + 36864 + 256 + 2048 + 256 + 650 */
    check_example("examples/resnet_fashion.model", 77866, 24);

    /* The seed note's flow stops where its golden summary does. */
    cnn_model *m = NULL;
    CHECK_OK(parse("input shape=64,64,3\n"
                   "Conv2D filters=32 kernel_size=3 padding=same activation=relu\n"
                   "MaxPooling2D pool_size=2\n"
                   "Conv2D filters=64 kernel_size=3 padding=same activation=relu\n",
                   &m));
    if (m) {
        char *text = summary_of(m);
        FILE *f = fopen("tests/golden/seed_flow.txt", "rb");
        char want[4096] = "";
        if (f) {
            want[fread(want, 1, sizeof want - 1, f)] = '\0';
            fclose(f);
        }
        CHECK(text && strcmp(text, want) == 0);
        free(text);
    }
    cnn_model_free(m);
}

static void test_text_syntax(void)
{
    cnn_model *m = NULL;
    cnn_layer_spec s;
    /* Positional values in Keras order, tuples, quotes, case, tabs, CRLF, a
     * byte order mark, comments everywhere. */
    const char *text = "\xEF\xBB\xBF# a comment line\r\n"
                       "\r\n"
                       "   input   shape=(32, 32, 3)   # trailing comment\r\n"
                       "Conv2D 16 (5, 3) 2,1 SAME\tdilation_rate=1 name='first conv'\r\n"
                       "Conv2D filters = 8 kernel_size=[3,3] dilation_rate=2 use_bias=false\n"
                       "Activation relu\n"
                       "Activation activation=\"tanh\" # quoted\n"
                       "MaxPool2D 2 strides=1 padding=same\n"
                       "AvgPool2D pool_size=3, 2\n"
                       "Flatten name=flat\n"
                       "Dropout 0.25 seed=7\n"
                       "Dense 10 softmax use_bias=True\n"
                       "# the end, without a newline";
    CHECK_OK(parse(text, &m));
    if (m) {
        CHECK(cnn_model_layer_count(m) == 9);
        CHECK_OK(cnn_model_layer_spec(m, 0, &s));
        CHECK(s.kind == CNN_LAYER_CONV2D && s.u.conv2d.filters == 16);
        CHECK(s.u.conv2d.kernel_size[0] == 5 && s.u.conv2d.kernel_size[1] == 3);
        CHECK(s.u.conv2d.strides[0] == 2 && s.u.conv2d.strides[1] == 1);
        CHECK(s.u.conv2d.padding == CNN_PADDING_SAME);
        CHECK(strcmp(cnn_model_layer_name(m, 0), "first conv") == 0);
        cnn_shape o = cnn_model_layer_output_shape(m, 0);
        CHECK(o.dims[0] == 16 && o.dims[1] == 32 && o.dims[2] == 16);
        CHECK_OK(cnn_model_layer_spec(m, 1, &s));
        CHECK(s.u.conv2d.dilation_rate[0] == 2 && s.u.conv2d.dilation_rate[1] == 2);
        CHECK(s.u.conv2d.no_bias);
        CHECK(cnn_model_layer_param_count(m, 1) == 3 * 3 * 16 * 8); /* no bias */
        CHECK_OK(cnn_model_layer_spec(m, 2, &s));
        CHECK(s.kind == CNN_LAYER_ACTIVATION && s.u.activation.activation == CNN_ACTIVATION_RELU);
        CHECK_OK(cnn_model_layer_spec(m, 3, &s));
        CHECK(s.u.activation.activation == CNN_ACTIVATION_TANH);
        CHECK_OK(cnn_model_layer_spec(m, 4, &s));
        CHECK(s.kind == CNN_LAYER_MAX_POOLING2D && s.u.pool2d.strides[0] == 1
              && s.u.pool2d.padding == CNN_PADDING_SAME);
        CHECK_OK(cnn_model_layer_spec(m, 5, &s));
        CHECK(s.kind == CNN_LAYER_AVERAGE_POOLING2D && s.u.pool2d.pool_size[0] == 3
              && s.u.pool2d.pool_size[1] == 2);
        CHECK(strcmp(cnn_model_layer_name(m, 6), "flat") == 0);
        CHECK_OK(cnn_model_layer_spec(m, 7, &s));
        CHECK(s.kind == CNN_LAYER_DROPOUT && s.u.dropout.rate == 0.25f && s.u.dropout.seed == 7);
        CHECK_OK(cnn_model_layer_spec(m, 8, &s));
        CHECK(s.u.dense.units == 10 && s.u.dense.activation == CNN_ACTIVATION_SOFTMAX
              && !s.u.dense.no_bias);
    }
    cnn_model_free(m);

    /* Flat input, Input spelt as in Keras, activation None. */
    m = NULL;
    CHECK_OK(parse("Input shape=784\nDense units=64 activation=None\nDense 10", &m));
    if (m) {
        CHECK(cnn_model_input_shape(m).rank == 1 && cnn_model_input_shape(m).dims[0] == 784);
        CHECK(cnn_model_param_count(m) == 784 * 64 + 64 + 64 * 10 + 10);
    }
    cnn_model_free(m);

    /* Global pooling heads. */
    m = NULL;
    CHECK_OK(parse("input shape=8,8,3\nConv2D 4 3\nGlobalAveragePooling2D\n"
                   "Dense 2 softmax\n", &m));
    if (m)
        CHECK(cnn_model_layer_output_shape(m, 1).rank == 1
              && cnn_model_layer_output_shape(m, 1).dims[0] == 4);
    cnn_model_free(m);
}

static void test_text_errors(void)
{
    /* Unknown layers, with a suggestion when one is close. */
    PARSE_FAILS("input shape=28,28,1\nConv2d filters=32 kernel_size=3\n", CNN_ERR_FORMAT,
                "t.model:2:1: unknown layer 'Conv2d' (did you mean 'Conv2D'?); known layers:"
                " Conv2D, Dense");
    PARSE_FAILS("input shape=28,28,1\n  Lambda\n", CNN_ERR_FORMAT,
                "t.model:2:3: unknown layer 'Lambda'; known layers: Conv2D, Dense, MaxPooling2D"
                " (MaxPool2D)");
    PARSE_FAILS("input shape=28,28,1\nConv2D(32, 3)\n", CNN_ERR_FORMAT,
                "t.model:2:7: expected a blank after 'Conv2D', got '('");
    PARSE_FAILS("input shape=28,28,1\n=3\n", CNN_ERR_FORMAT,
                "t.model:2:1: expected a layer name");

    /* Unknown, repeated, missing and misplaced arguments. */
    PARSE_FAILS("input shape=28,28,1\nConv2D filters=32 kernal_size=3\n", CNN_ERR_FORMAT,
                "t.model:2:19: Conv2D has no argument 'kernal_size' (did you mean"
                " 'kernel_size'?); its arguments are filters, kernel_size, strides, padding,"
                " dilation_rate, activation, use_bias, kernel_regularizer, name");
    PARSE_FAILS("input shape=28,28,1\nFlatten\nDense units=10 activation=relu units=20\n",
                CNN_ERR_FORMAT, "t.model:3:32: Dense units: given twice (first at column 7)");
    PARSE_FAILS("input shape=28,28,1\nConv2D 32 3 filters=8\n", CNN_ERR_FORMAT,
                "t.model:2:13: Conv2D filters: given twice (first at column 8)");
    PARSE_FAILS("input shape=28,28,1\nConv2D filters=32\n", CNN_ERR_FORMAT,
                "t.model:2:1: Conv2D: missing required argument kernel_size (e.g. kernel_size=3)");
    PARSE_FAILS("input shape=28,28,1\nConv2D kernel_size=3\n", CNN_ERR_FORMAT,
                "t.model:2:1: Conv2D: missing required argument filters");
    PARSE_FAILS("input shape=28,28,1\nFlatten\nDense activation=relu\n", CNN_ERR_FORMAT,
                "t.model:3:1: Dense: missing required argument units (e.g. units=32)");
    PARSE_FAILS("input shape=28,28,1\nDropout\n", CNN_ERR_FORMAT,
                "t.model:2:1: Dropout: missing required argument rate");
    PARSE_FAILS("input shape=28,28,1\nActivation\n", CNN_ERR_FORMAT,
                "t.model:2:1: Activation: missing required argument activation");
    PARSE_FAILS("input\n", CNN_ERR_FORMAT, "t.model:1:1: input: missing required argument shape");
    PARSE_FAILS("input shape=28,28,1\nFlatten\nDense 10 relu 3\n", CNN_ERR_FORMAT,
                "t.model:3:15: Dense takes at most 2 positional values (units, activation), got"
                " '3' too");
    PARSE_FAILS("input shape=28,28,1\nFlatten everything\n", CNN_ERR_FORMAT,
                "t.model:2:9: Flatten takes no positional values, got 'everything'");
    PARSE_FAILS("input shape=28,28,1\nFlatten\nDense units=10 relu\n", CNN_ERR_FORMAT,
                "t.model:3:16: Dense: positional value 'relu' after key=value arguments");
    PARSE_FAILS("input shape=28,28,1\nFlatten\nDense units=\n", CNN_ERR_FORMAT,
                "t.model:3:13: Dense units: expected a value after '='");
    PARSE_FAILS("input shape=28,28,1\nFlatten\nDense =10\n", CNN_ERR_FORMAT,
                "t.model:3:7: expected an argument name before '='");
    PARSE_FAILS("input shape=28,28,1\nConv2D 8 kernel_size=(5,3\n", CNN_ERR_FORMAT,
                "t.model:2:22: unclosed '(': expected ')'");
    PARSE_FAILS("input shape=28,28,1\nConv2D 8 kernel_size=(5,3)x\n", CNN_ERR_FORMAT,
                "t.model:2:27: expected a blank after '(5,3)', got 'x'");
    PARSE_FAILS("input shape=28,28,1\nConv2D 8 3 name=\"unfinished\n", CNN_ERR_FORMAT,
                "t.model:2:17: unclosed '\"'");

    /* Values: not numbers, out of range, NaN and infinity. */
    PARSE_FAILS("input shape=28,28,1\nFlatten\nDense units=ten\n", CNN_ERR_FORMAT,
                "t.model:3:13: Dense units: expected an integer, got 'ten'");
    PARSE_FAILS("input shape=28,28,1\nFlatten\nDense units=1.5\n", CNN_ERR_FORMAT,
                "t.model:3:13: Dense units: expected an integer, got '1.5'");
    PARSE_FAILS("input shape=28,28,1\nConv2D filters=0 kernel_size=3\n", CNN_ERR_FORMAT,
                "t.model:2:16: Conv2D filters: must be >= 1, got 0");
    PARSE_FAILS("input shape=28,28,1\nConv2D filters=99999999999 kernel_size=3\n",
                CNN_ERR_FORMAT,
                "t.model:2:16: Conv2D filters: 99999999999 is out of range (at most 2147483647)");
    PARSE_FAILS("input shape=28,28,1\nConv2D 8 kernel_size=3,-1\n", CNN_ERR_FORMAT,
                "t.model:2:24: Conv2D kernel_size: must be >= 1, got -1");
    PARSE_FAILS("input shape=28,28,1\nConv2D 8 kernel_size=3,3,3\n", CNN_ERR_FORMAT,
                "t.model:2:26: Conv2D kernel_size: expected at most 2 integers, got more");
    PARSE_FAILS("input shape=28,28,1\nConv2D 8 3 strides=(2,)\n", CNN_ERR_FORMAT,
                "t.model:2:23: Conv2D strides: expected an integer, got ''");
    PARSE_FAILS("input shape=28,28,1\nMaxPooling2D pool_size=0\n", CNN_ERR_FORMAT,
                "t.model:2:24: MaxPooling2D pool_size: must be >= 1, got 0");
    PARSE_FAILS("input shape=28,28,1\nDropout rate=1\n", CNN_ERR_FORMAT,
                "t.model:2:14: Dropout rate: must be in [0, 1), got 1");
    PARSE_FAILS("input shape=28,28,1\nDropout rate=-0.1\n", CNN_ERR_FORMAT,
                "t.model:2:14: Dropout rate: must be in [0, 1), got -0.1");
    PARSE_FAILS("input shape=28,28,1\nDropout rate=nan\n", CNN_ERR_FORMAT,
                "t.model:2:14: Dropout rate: expected a finite number, got 'nan'");
    PARSE_FAILS("input shape=28,28,1\nDropout rate=inf\n", CNN_ERR_FORMAT,
                "t.model:2:14: Dropout rate: expected a finite number, got 'inf'");
    PARSE_FAILS("input shape=28,28,1\nDropout rate=half\n", CNN_ERR_FORMAT,
                "t.model:2:14: Dropout rate: expected a number, got 'half'");
    PARSE_FAILS("input shape=28,28,1\nDropout 0.5 seed=-1\n", CNN_ERR_FORMAT,
                "t.model:2:18: Dropout seed: expected an integer >= 0, got '-1'");
    PARSE_FAILS("input shape=28,28,1\nConv2D 8 3 padding=full\n", CNN_ERR_FORMAT,
                "t.model:2:20: Conv2D padding: expected valid or same, got 'full'");
    PARSE_FAILS("input shape=28,28,1\nConv2D 8 3 activation=crelu\n", CNN_ERR_FORMAT,
                "t.model:2:23: Conv2D activation: expected an activation (linear, relu,"
                " sigmoid, tanh, softmax, silu, gelu, gelu_tanh, selu, elu, softplus, softsign,"
                " hard_sigmoid, hard_silu, exponential, relu6, leaky_relu, mish), got 'crelu'");
    PARSE_FAILS("input shape=28,28,1\nConv2D 8 3 use_bias=no\n", CNN_ERR_FORMAT,
                "t.model:2:21: Conv2D use_bias: expected true or false, got 'no'");
    PARSE_FAILS("input shape=28,28,1\nFlatten name=''\n", CNN_ERR_FORMAT,
                "t.model:2:15: Flatten name: expected 1 to 255 bytes, got 0");

    /* The input line: missing, twice, malformed. */
    PARSE_FAILS("# no input\nConv2D filters=32 kernel_size=3\n", CNN_ERR_FORMAT,
                "t.model:2:1: expected 'input shape=H,W,C' (or 'input shape=N' for flat input)"
                " before the first layer, got 'Conv2D'");
    PARSE_FAILS("", CNN_ERR_FORMAT, "t.model:1:1: empty description: expected 'input shape=H,W,C'");
    PARSE_FAILS("# only\n\n  # comments\n", CNN_ERR_FORMAT, "t.model:1:1: empty description");
    PARSE_FAILS("# nothing but\ninput shape=28,28,1\n", CNN_ERR_FORMAT,
                "t.model:2: no layers after the input");
    PARSE_FAILS("input shape=28,28,1\nFlatten\ninput shape=784\n", CNN_ERR_FORMAT,
                "t.model:3:1: input given twice (first on line 1)");
    PARSE_FAILS("input shape=28,28\nFlatten\n", CNN_ERR_FORMAT,
                "t.model:1:13: input shape: expected rows,cols,channels (e.g. 28,28,1) or a"
                " number of features, got 2 values '28,28'");
    PARSE_FAILS("input shape=28,0,1\nFlatten\n", CNN_ERR_FORMAT,
                "t.model:1:16: input shape: must be >= 1, got 0");
    PARSE_FAILS("input shape=65536,65536,3\nFlatten\n", CNN_ERR_FORMAT,
                "t.model:1:7: input shape: more than 2^31 values per example");
    PARSE_FAILS("input shape=28,28,1 batch=32\n", CNN_ERR_FORMAT,
                "t.model:1:21: input has no argument 'batch'; its arguments are shape");

    /* What cnn_model_add refuses, located at the layer's line. */
    PARSE_FAILS("input shape=4,4,1\n\nConv2D filters=8 kernel_size=5\n", CNN_ERR_SHAPE,
                "t.model:3:1: conv2d (Conv2D): kernel 5x5 (dilation 1x1) is larger than its"
                " input 4x4");
    PARSE_FAILS("input shape=28,28,1\nFlatten\n  Conv2D 8 3\n", CNN_ERR_SHAPE,
                "t.model:3:3: conv2d (Conv2D): expects input of rank 3");
    PARSE_FAILS("input shape=28,28,1\nConv2D 8 3 strides=2 dilation_rate=2\n", CNN_ERR_FORMAT,
                "t.model:2:1: conv2d (Conv2D): strides > 1 cannot be combined with"
                " dilation_rate > 1");
    PARSE_FAILS("input shape=28,28,1\nFlatten name=x\nDense 10 name=x\n", CNN_ERR_FORMAT,
                "t.model:3:1: x (Dense): a layer of this model already has that name");

    /* Binary input. */
    {
        cnn_model *m = NULL;
        const char bin[] = "input shape=28,28,1\nFla\0tten\n";
        CHECK_FAILS(cnn_model_from_description_memory(bin, sizeof bin - 1, "bin", &m),
                    CNN_ERR_FORMAT, "bin:2:4: unexpected NUL byte");
        CHECK(m == NULL);
    }
}

/* ---- Keras JSON --------------------------------------------------------- */

/* Keras 2.x (tf.keras 2.4) model.to_json() of a small convnet, as written. */
static const char keras2_json[] =
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"sequential\", \"layers\": ["
    "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 28, 28, 1],"
    " \"dtype\": \"float32\", \"sparse\": false, \"ragged\": false, \"name\": \"conv2d_input\"}},"
    "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"conv2d\", \"trainable\": true,"
    " \"batch_input_shape\": [null, 28, 28, 1], \"dtype\": \"float32\", \"filters\": 32,"
    " \"kernel_size\": [3, 3], \"strides\": [1, 1], \"padding\": \"valid\","
    " \"data_format\": \"channels_last\", \"dilation_rate\": [1, 1], \"groups\": 1,"
    " \"activation\": \"relu\", \"use_bias\": true, \"kernel_initializer\": {\"class_name\":"
    " \"GlorotUniform\", \"config\": {\"seed\": null}}, \"bias_initializer\": {\"class_name\":"
    " \"Zeros\", \"config\": {}}, \"kernel_regularizer\": null, \"bias_regularizer\": null,"
    " \"activity_regularizer\": null, \"kernel_constraint\": null, \"bias_constraint\": null}},"
    "{\"class_name\": \"MaxPooling2D\", \"config\": {\"name\": \"max_pooling2d\", \"trainable\":"
    " true, \"dtype\": \"float32\", \"pool_size\": [2, 2], \"padding\": \"valid\", \"strides\":"
    " [2, 2], \"data_format\": \"channels_last\"}},"
    "{\"class_name\": \"Flatten\", \"config\": {\"name\": \"flatten\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"data_format\": \"channels_last\"}},"
    "{\"class_name\": \"Dropout\", \"config\": {\"name\": \"dropout\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"rate\": 0.5, \"noise_shape\": null, \"seed\": null}},"
    "{\"class_name\": \"Dense\", \"config\": {\"name\": \"dense\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"units\": 10, \"activation\": \"softmax\", \"use_bias\": true,"
    " \"kernel_initializer\": {\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}},"
    " \"bias_initializer\": {\"class_name\": \"Zeros\", \"config\": {}}, \"kernel_regularizer\":"
    " {\"class_name\": \"L2\", \"config\": {\"l2\": 0.01}}, \"bias_regularizer\": null,"
    " \"activity_regularizer\": null, \"kernel_constraint\": null, \"bias_constraint\": null}}"
    "]}, \"keras_version\": \"2.4.0\", \"backend\": \"tensorflow\"}";

/* Keras 3 model.to_json() of a small MLP-ish convnet built without an
 * InputLayer in the config (build_input_shape instead), with dtype
 * policies, a serialised activation and null pooling strides. */
static const char keras3_json[] =
    "{\"module\": \"keras\", \"class_name\": \"Sequential\", \"config\": {\"name\": \"seq\","
    " \"trainable\": true, \"dtype\": {\"module\": \"keras\", \"class_name\": \"DTypePolicy\","
    " \"config\": {\"name\": \"float32\"}, \"registered_name\": null}, \"layers\": ["
    "{\"module\": \"keras.layers\", \"class_name\": \"Conv2D\", \"config\": {\"name\":"
    " \"conv2d\", \"trainable\": true, \"dtype\": {\"module\": \"keras\", \"class_name\":"
    " \"DTypePolicy\", \"config\": {\"name\": \"float32\"}, \"registered_name\": null},"
    " \"filters\": 8, \"kernel_size\": [3, 3], \"strides\": [1, 1], \"padding\": \"same\","
    " \"data_format\": \"channels_last\", \"dilation_rate\": [1, 1], \"groups\": 1,"
    " \"activation\": {\"module\": \"keras.activations\", \"class_name\": \"function\","
    " \"config\": \"relu\", \"registered_name\": \"function\"}, \"use_bias\": false,"
    " \"kernel_initializer\": {\"module\": \"keras.initializers\", \"class_name\":"
    " \"HeNormal\", \"config\": {\"seed\": 3}, \"registered_name\": null},"
    " \"bias_initializer\": {\"module\": \"keras.initializers\", \"class_name\": \"Zeros\","
    " \"config\": {}, \"registered_name\": null}, \"kernel_regularizer\": null,"
    " \"bias_regularizer\": null, \"activity_regularizer\": null, \"kernel_constraint\": null,"
    " \"bias_constraint\": null}, \"registered_name\": null, \"build_config\":"
    " {\"input_shape\": [null, 16, 16, 3]}},"
    "{\"module\": \"keras.layers\", \"class_name\": \"AveragePooling2D\", \"config\": {\"name\":"
    " \"average_pooling2d\", \"trainable\": true, \"dtype\": \"float32\", \"pool_size\": [2, 2],"
    " \"padding\": \"valid\", \"strides\": null, \"data_format\": null}, \"registered_name\": null},"
    "{\"module\": \"keras.layers\", \"class_name\": \"GlobalMaxPooling2D\", \"config\": {\"name\":"
    " \"gmp\", \"trainable\": true, \"dtype\": \"float32\", \"data_format\": \"channels_last\","
    " \"keepdims\": false}, \"registered_name\": null},"
    "{\"module\": \"keras.layers\", \"class_name\": \"Dense\", \"config\": {\"name\": \"dense\","
    " \"trainable\": true, \"dtype\": \"float32\", \"units\": 4, \"activation\": \"sigmoid\","
    " \"use_bias\": true, \"kernel_initializer\": null, \"bias_initializer\": null,"
    " \"kernel_regularizer\": null, \"bias_regularizer\": null, \"kernel_constraint\": null,"
    " \"bias_constraint\": null, \"quantization_config\": null}, \"registered_name\": null,"
    " \"build_config\": {\"input_shape\": [null, 8]}}"
    "], \"build_input_shape\": [null, 16, 16, 3]}, \"registered_name\": null,"
    " \"build_config\": {\"input_shape\": [null, 16, 16, 3]}}";

static void test_json(void)
{
    cnn_model *m = NULL;
    cnn_layer_spec s;
    CHECK_OK(cnn_model_from_description_memory(keras2_json, strlen(keras2_json), "k2.json", &m));
    if (m) {
        CHECK(cnn_model_layer_count(m) == 5);
        CHECK(cnn_model_param_count(m) == 320 + 13 * 13 * 32 * 10 + 10);
        CHECK(strcmp(cnn_model_layer_name(m, 0), "conv2d") == 0);
        CHECK_OK(cnn_model_layer_spec(m, 3, &s));
        CHECK(s.kind == CNN_LAYER_DROPOUT && s.u.dropout.rate == 0.5f && s.u.dropout.seed == 0);
    }
    cnn_model_free(m);

    m = NULL;
    CHECK_OK(cnn_model_from_description_memory(keras3_json, strlen(keras3_json), "k3.json", &m));
    if (m) {
        CHECK(cnn_model_layer_count(m) == 4);
        CHECK(cnn_model_input_shape(m).dims[0] == 16 && cnn_model_input_shape(m).dims[2] == 3);
        CHECK_OK(cnn_model_layer_spec(m, 0, &s));
        CHECK(s.u.conv2d.activation == CNN_ACTIVATION_RELU && s.u.conv2d.no_bias);
        CHECK_OK(cnn_model_layer_spec(m, 1, &s));
        CHECK(s.u.pool2d.strides[0] == 2); /* null strides = pool_size */
        CHECK(strcmp(cnn_model_layer_name(m, 2), "gmp") == 0);
        CHECK(cnn_model_param_count(m) == 3 * 3 * 3 * 8 + 8 * 4 + 4);
    }
    cnn_model_free(m);

    /* Keras <= 2.1: "config" is the list of layers. */
    m = NULL;
    CHECK_OK(parse("  {\"class_name\": \"Sequential\", \"config\": [{\"class_name\": \"Dense\","
                   " \"config\": {\"name\": \"dense_1\", \"units\": 3, \"activation\":"
                   " \"linear\", \"batch_input_shape\": [null, 5]}}]}",
                   &m));
    if (m)
        CHECK(cnn_model_param_count(m) == 18);
    cnn_model_free(m);

    /* The architectures of the two real MNIST models (docs/KERAS.md, Tests). */
    m = NULL;
    CHECK_OK(cnn_model_from_description("tests/data/keras2_mnist.json", &m));
    if (m) {
        /* 640 + 18464 + 7*7*32*10+10 */
        CHECK(cnn_model_param_count(m) == 34794);
        CHECK(cnn_model_layer_count(m) == 9);
        CHECK(strcmp(cnn_model_layer_name(m, 0), "conv2d_1") == 0);
        CHECK(strcmp(cnn_model_layer_type(m, 1), "Activation") == 0);
        CHECK(cnn_model_layer_param_count(m, 3) == 18464);
    }
    cnn_model_free(m);
    m = NULL;
    CHECK_OK(cnn_model_from_description("tests/data/keras3_mnist.json", &m));
    if (m) {
        /* 320 + 18496 + 1600*128+128 + 1290 */
        CHECK(cnn_model_param_count(m) == 225034);
        CHECK(cnn_model_layer_count(m) == 8);
        CHECK(strcmp(cnn_model_layer_name(m, 7), "dense_1") == 0);
        CHECK_OK(cnn_model_layer_spec(m, 6, &s));
        CHECK(s.kind == CNN_LAYER_DROPOUT && fabsf(s.u.dropout.rate - 0.3f) < 1e-7f);
        cnn_shape o = cnn_model_layer_output_shape(m, 3);
        CHECK(o.dims[0] == 5 && o.dims[1] == 5 && o.dims[2] == 64);
    }
    cnn_model_free(m);
}

/* A one-layer Keras 3 Sequential whose only layer is the given JSON. */
static cnn_status json_layer(const char *layer, cnn_model **m)
{
    char text[8192];
    snprintf(text, sizeof text,
             "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", \"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_shape\": [null, 8, 8, 2],"
             " \"name\": \"in\"}}, %s]}}",
             layer);
    return cnn_model_from_description_memory(text, strlen(text), "m.json", m);
}

#define JSON_LAYER_FAILS(layer, status, want)                                      \
    do {                                                                           \
        cnn_model *bad_ = NULL;                                                    \
        CHECK_FAILS(json_layer((layer), &bad_), (status), (want));                 \
        CHECK(bad_ == NULL);                                                       \
        cnn_model_free(bad_);                                                      \
    } while (0)

static void test_json_errors(void)
{
    /* Syntax errors give jansson's line and column. */
    PARSE_FAILS("{\"class_name\": \"Sequential\",\n \"config\": {\"layers\": [}}\n",
                CNN_ERR_FORMAT, "t.model:2:24: JSON syntax error: unexpected token near '}'");
    PARSE_FAILS("{\"class_name\": \"Sequential\", \"class_name\": \"Sequential\"}",
                CNN_ERR_FORMAT, "JSON syntax error: duplicate object key");
    PARSE_FAILS("{\"class_name\": \"Sequential\"", CNN_ERR_FORMAT, "t.model:1:27: JSON syntax error");

    /* Models that are neither Sequential nor Functional; Functional ones
     * that say nothing. */
    PARSE_FAILS("{\"class_name\": \"Functional\", \"config\": {\"layers\": []}}", CNN_ERR_FORMAT,
                "t.model: Functional config: expected a \"layers\" list with an InputLayer");
    PARSE_FAILS("{\"class_name\": \"MyModel\", \"config\": {\"layers\": []}}", CNN_ERR_FORMAT,
                "t.model: model class MyModel is not supported: only Sequential and Functional");
    PARSE_FAILS("{\"layers\": []}", CNN_ERR_FORMAT,
                "t.model: expected a Keras model from model.to_json()");
    PARSE_FAILS("{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\"}}", CNN_ERR_FORMAT,
                "t.model: config: expected a \"layers\" list");
    PARSE_FAILS("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\":"
                " \"Dense\", \"config\": {\"units\": 2}}]}}",
                CNN_ERR_FORMAT, "t.model: no input shape: expected an InputLayer first");
    PARSE_FAILS("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\":"
                " \"InputLayer\", \"config\": {\"batch_shape\": [null, 8, 8, 2]}}]}}",
                CNN_ERR_FORMAT, "t.model: config: the model has no layers");
    PARSE_FAILS("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\":"
                " \"InputLayer\", \"config\": {\"batch_shape\": [null, null, null, 3]}}]}}",
                CNN_ERR_FORMAT, "dimension 1 is variable (null); only fixed-size inputs");
    PARSE_FAILS("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\":"
                " \"InputLayer\", \"config\": {\"batch_shape\": [null, 8, 8]}}]}}",
                CNN_ERR_FORMAT, "expected [batch, rows, cols, channels] or [batch, features],"
                                " got [null,8,8]");
    PARSE_FAILS("{\"class_name\": \"Sequential\", \"config\": {\"trainable\": false,"
                " \"layers\": []}}",
                CNN_ERR_FORMAT, "trainable false: frozen layers are not supported");

    /* Layers the library does not have, named with their class. */
    JSON_LAYER_FAILS("{\"class_name\": \"Lambda\", \"config\": {\"name\": \"lambda\","
                     " \"function\": \"...\"}}",
                     CNN_ERR_FORMAT,
                     "m.json: layers[1] 'lambda' (Lambda): layer class Lambda is not supported;"
                     " supported: Conv2D");
    JSON_LAYER_FAILS("{\"module\": \"keras.layers\", \"class_name\": \"GroupNormalization\","
                     " \"config\": {\"name\": \"gn\", \"axis\": -1}, \"registered_name\": null}",
                     CNN_ERR_FORMAT, "layers[1] 'gn' (GroupNormalization): layer class"
                                     " GroupNormalization is not supported");
    JSON_LAYER_FAILS("{\"module\": \"my_layers\", \"class_name\": \"Dense\", \"config\":"
                     " {\"name\": \"mine\", \"units\": 3}, \"registered_name\": \"Custom>Dense\"}",
                     CNN_ERR_FORMAT,
                     "layers[1] 'mine' (Dense): custom layer (registered as 'Custom>Dense') is not"
                     " supported");
    JSON_LAYER_FAILS("{\"class_name\": \"Functional\", \"config\": {\"name\": \"base\"}}",
                     CNN_ERR_FORMAT, "layers[1] 'base' (Functional): layer class Functional");
    JSON_LAYER_FAILS("{\"class_name\": \"InputLayer\", \"config\": {\"name\": \"again\"}}",
                     CNN_ERR_FORMAT, "layers[1] 'again' (InputLayer): an InputLayer can only come"
                                     " first");
    JSON_LAYER_FAILS("[1, 2]", CNN_ERR_FORMAT,
                     "m.json: layers[1]: expected an object with a class_name and a config");

    /* Arguments: unsupported settings, bad values, missing ones. */
    JSON_LAYER_FAILS("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\", \"filters\": 4,"
                     " \"kernel_size\": 3, \"data_format\": \"channels_first\"}}",
                     CNN_ERR_FORMAT,
                     "layers[1] 'c' (Conv2D): data_format \"channels_first\" is not supported:"
                     " only channels_last (NHWC) is");
    JSON_LAYER_FAILS("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\", \"filters\": 4,"
                     " \"kernel_size\": 3, \"groups\": 2}}",
                     CNN_ERR_FORMAT, "layers[1] 'c' (Conv2D): groups 2 (grouped convolution) is"
                                     " not supported");
    JSON_LAYER_FAILS("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\", \"filters\": 4,"
                     " \"kernel_size\": 3, \"dtype\": {\"module\": \"keras\", \"class_name\":"
                     " \"DTypePolicy\", \"config\": {\"name\": \"mixed_float16\"}}}}",
                     CNN_ERR_FORMAT, "layers[1] 'c' (Conv2D): dtype {\"module\"");
    /* trainable false: a frozen layer (issue 15), not trained */
    {
        cnn_model *fz = NULL;
        CHECK_OK(json_layer("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\","
                            " \"filters\": 4, \"kernel_size\": 3, \"trainable\": false}}",
                            &fz));
        CHECK(fz && !cnn_model_layer_trainable(fz, 0) && cnn_model_trainable_param_count(fz) == 0);
        cnn_model_free(fz);
    }
    JSON_LAYER_FAILS("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\", \"filters\": 4,"
                     " \"kernel_size\": 3, \"lora_rank\": 4}}",
                     CNN_ERR_FORMAT, "layers[1] 'c' (Conv2D): argument lora_rank = 4 is not"
                                     " supported");
    JSON_LAYER_FAILS("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\","
                     " \"kernel_size\": 3}}",
                     CNN_ERR_FORMAT, "layers[1] 'c' (Conv2D): missing required argument filters");
    JSON_LAYER_FAILS("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\", \"filters\": 4,"
                     " \"kernel_size\": [0, 3]}}",
                     CNN_ERR_FORMAT, "layers[1] 'c' (Conv2D): kernel_size: expected an integer or"
                                     " a list of 2 integers, each >= 1, got [0,3]");
    JSON_LAYER_FAILS("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\", \"filters\":"
                     " 4.5, \"kernel_size\": 3}}",
                     CNN_ERR_FORMAT, "filters: expected an integer >= 1, got 4.5");
    JSON_LAYER_FAILS("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\", \"filters\": 4,"
                     " \"kernel_size\": 3, \"activation\": \"crelu\"}}",
                     CNN_ERR_FORMAT, "activation: expected an activation (linear, relu, sigmoid,"
                                     " tanh, softmax, silu, gelu, ");
    JSON_LAYER_FAILS("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\", \"filters\": 4,"
                     " \"kernel_size\": 3, \"activation\": \"crelu\"}}",
                     CNN_ERR_FORMAT, "leaky_relu, mish), got \"crelu\"");
    JSON_LAYER_FAILS("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\", \"filters\": 4,"
                     " \"kernel_size\": 3, \"padding\": \"causal\"}}",
                     CNN_ERR_FORMAT, "padding: expected \"valid\" or \"same\", got \"causal\"");
    JSON_LAYER_FAILS("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\", \"filters\": 4,"
                     " \"kernel_size\": 3, \"use_bias\": 1}}",
                     CNN_ERR_FORMAT, "use_bias: expected true or false, got 1");
    JSON_LAYER_FAILS("{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": \"10\"}}",
                     CNN_ERR_FORMAT, "layers[1] 'd' (Dense): units: expected an integer >= 1, got"
                                     " \"10\"");
    JSON_LAYER_FAILS("{\"class_name\": \"Dropout\", \"config\": {\"name\": \"d\", \"rate\": 1.5}}",
                     CNN_ERR_FORMAT, "layers[1] 'd' (Dropout): rate: expected a number in [0, 1),"
                                     " got 1.5");
    JSON_LAYER_FAILS("{\"class_name\": \"Dropout\", \"config\": {\"name\": \"d\", \"rate\": 0.5,"
                     " \"noise_shape\": [null, 1, 1, 2]}}",
                     CNN_ERR_FORMAT, "argument noise_shape = [null,1,1,2] is not supported");
    JSON_LAYER_FAILS("{\"class_name\": \"GlobalAveragePooling2D\", \"config\": {\"name\": \"g\","
                     " \"keepdims\": true}}",
                     CNN_ERR_FORMAT, "keepdims true is not supported");

    /* The library's own refusals, located at the layer. */
    JSON_LAYER_FAILS("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"big\", \"filters\":"
                     " 4, \"kernel_size\": [9, 9]}}",
                     CNN_ERR_SHAPE, "m.json: layers[1]: big (Conv2D): kernel 9x9 (dilation 1x1) is"
                                    " larger than its input 8x8");
    JSON_LAYER_FAILS("{\"class_name\": \"Dense\", \"config\": {\"name\": \"a_very_long_layer_name_"
                     "that_goes_on_and_on_past_sixty_four_bytes_x\", \"units\": 2}}",
                     CNN_ERR_FORMAT, "m.json: layers[1]: layer name");
}

static void test_api(void)
{
    cnn_model *m = (cnn_model *)&m;
    CHECK_FAILS(cnn_model_from_description("tests/data/no_such_file.model", &m), CNN_ERR_IO,
                "tests/data/no_such_file.model: cannot open: ");
    CHECK(m == NULL);
    CHECK_FAILS(cnn_model_from_description("tests/data", &m), CNN_ERR_IO,
                "tests/data: expected a regular description file, got a directory");
    CHECK_FAILS(cnn_model_from_description(NULL, &m), CNN_ERR_INVALID_ARGUMENT, "path and out");
    CHECK_FAILS(cnn_model_from_description_memory("x", 1, "n", NULL), CNN_ERR_INVALID_ARGUMENT,
                "out is NULL");
    CHECK_FAILS(cnn_model_from_description_memory(NULL, 0, NULL, &m), CNN_ERR_FORMAT,
                "description:1:1: empty description");
    /* Only size bytes are read: the rest of the buffer is not part of it. */
    const char text[] = "input shape=3\nDense 2\nthis is not read";
    m = NULL;
    CHECK_OK(cnn_model_from_description_memory(text, strlen("input shape=3\nDense 2\n"), "n", &m));
    CHECK(m && cnn_model_param_count(m) == 8);
    cnn_model_free(m);
}

/* The kinds of issue 7, in text and in Keras JSON: the same specs as the C
 * calls give, and their errors. */
static void test_new_kinds(void)
{
    cnn_model *m = NULL;
    CHECK_OK(parse("input shape=12,12,3\n"
                   "ZeroPadding2D ((1, 2), (0, 3))\n"
                   "Conv2D 8 3 use_bias=false kernel_regularizer=l2(0.0005)\n"
                   "BatchNormalization momentum=0.9 epsilon=0.01\n"
                   "LeakyReLU 0.1\n"
                   "DepthwiseConv2D 3 2 same 2 depthwise_regularizer=1e-4\n"
                   "ELU alpha=0.5\n"
                   "SeparableConv2D 4 (3, 3) depth_multiplier=2 pointwise_regularizer=L2(0.01)\n"
                   "ReLU max_value=6 negative_slope=0.1 threshold=-1\n"
                   "Reshape target_shape=(-1, 10, 2)\n"
                   "Flatten\n"
                   "LeakyReLU alpha=0.2\n"
                   "ReLU None\n"
                   "Dense 10 softmax kernel_regularizer=0.001\n",
                   &m));
    cnn_layer_spec sp;
    if (m) {
        CHECK(cnn_model_layer_count(m) == 13);
        CHECK_OK(cnn_model_layer_spec(m, 0, &sp));
        CHECK(sp.u.zero_padding2d.padding[0] == 1 && sp.u.zero_padding2d.padding[1] == 2
              && sp.u.zero_padding2d.padding[2] == 0 && sp.u.zero_padding2d.padding[3] == 3);
        CHECK_OK(cnn_model_layer_spec(m, 1, &sp));
        CHECK(sp.u.conv2d.kernel_l2 == 0.0005f && sp.u.conv2d.no_bias);
        CHECK_OK(cnn_model_layer_spec(m, 2, &sp));
        CHECK(sp.u.batch_normalization.momentum == 0.9f
              && sp.u.batch_normalization.epsilon == 0.01f);
        CHECK_OK(cnn_model_layer_spec(m, 3, &sp));
        CHECK(sp.u.leaky_relu.negative_slope == 0.1f);
        CHECK_OK(cnn_model_layer_spec(m, 4, &sp));
        CHECK(sp.u.depthwise_conv2d.kernel_size[0] == 3 && sp.u.depthwise_conv2d.strides[0] == 2
              && sp.u.depthwise_conv2d.padding == CNN_PADDING_SAME
              && sp.u.depthwise_conv2d.depth_multiplier == 2
              && sp.u.depthwise_conv2d.depthwise_l2 == 1e-4f);
        CHECK_OK(cnn_model_layer_spec(m, 6, &sp));
        CHECK(sp.u.separable_conv2d.filters == 4 && sp.u.separable_conv2d.pointwise_l2 == 0.01f);
        CHECK_OK(cnn_model_layer_spec(m, 7, &sp));
        CHECK(sp.u.relu.max_value == 6 && sp.u.relu.negative_slope == 0.1f
              && sp.u.relu.threshold == -1);
        CHECK_OK(cnn_model_layer_spec(m, 8, &sp));
        CHECK(sp.u.reshape.target_shape.rank == 3 && sp.u.reshape.target_shape.dims[0] == -1);
        CHECK_OK(cnn_model_layer_spec(m, 10, &sp));
        CHECK(sp.u.leaky_relu.negative_slope == 0.2f);
        CHECK_OK(cnn_model_layer_spec(m, 11, &sp));
        CHECK(sp.u.relu.max_value == 0);
        CHECK_OK(cnn_model_layer_spec(m, 12, &sp));
        CHECK(sp.u.dense.kernel_l2 == 0.001f);
        /* 15x15x3 -> conv 13x13x8 -> dw s2 7x7x16 -> sep 5x5x4 -> (-1,10,2) */
        cnn_shape o = cnn_model_layer_output_shape(m, 8);
        CHECK(o.rank == 3 && o.dims[0] == 5 && o.dims[1] == 10 && o.dims[2] == 2);
    }
    cnn_model_free(m);

    PARSE_FAILS("input shape=8,8,1\nLeakyReLU negative_slope=0\n", CNN_ERR_FORMAT,
                "t.model:2:26: LeakyReLU negative_slope: must be > 0, got 0");
    PARSE_FAILS("input shape=8,8,1\nBatchNormalization momentum=1\n", CNN_ERR_FORMAT,
                "batch_normalization (BatchNormalization): momentum must be in (0, 1), got 1");
    PARSE_FAILS("input shape=8,8,1\nZeroPadding2D 0\n", CNN_ERR_FORMAT,
                "ZeroPadding2D padding: expected 1, 2 or 4 integers >= 0");
    PARSE_FAILS("input shape=8,8,1\nZeroPadding2D ((1, 2), (3)\n", CNN_ERR_FORMAT,
                "unclosed '('");
    PARSE_FAILS("input shape=8,8,1\nReshape (-1, -1, 4)\n", CNN_ERR_FORMAT,
                "Reshape target_shape: expected (rows, cols, channels) or (features), each >= 1"
                " or one of them -1");
    PARSE_FAILS("input shape=8,8,1\nReshape (3, 3, 3)\n", CNN_ERR_SHAPE,
                "reshape (Reshape): the input (None, 8, 8, 1) has 64 values, the target shape"
                " (None, 3, 3, 3) has 27");
    PARSE_FAILS("input shape=8,8,1\nConv2D 2 3 kernel_regularizer=l1(0.1)\n", CNN_ERR_FORMAT,
                "Conv2D kernel_regularizer: expected a number, got 'l1(0.1)'");
    PARSE_FAILS("input shape=8,8,1\nDense 2 kernel_regularizer=-1\n", CNN_ERR_FORMAT,
                "Dense kernel_regularizer: must be >= 0, got -1");
    PARSE_FAILS("input shape=8\nDepthwiseConv2D 3\n", CNN_ERR_SHAPE,
                "depthwise_conv2d (DepthwiseConv2D): expects input of rank 3");

    /* Keras 3 and Keras 2 JSON of the same layers */
    CHECK_OK(json_layer("{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn\","
                        " \"axis\": -1, \"momentum\": 0.9, \"epsilon\": 0.001, \"center\": true,"
                        " \"scale\": true, \"beta_initializer\": {\"class_name\": \"Zeros\"},"
                        " \"gamma_initializer\": {\"class_name\": \"Ones\"},"
                        " \"moving_mean_initializer\": {\"class_name\": \"Zeros\"},"
                        " \"moving_variance_initializer\": {\"class_name\": \"Ones\"},"
                        " \"beta_regularizer\": null, \"gamma_regularizer\": null,"
                        " \"beta_constraint\": null, \"gamma_constraint\": null,"
                        " \"synchronized\": false, \"trainable\": true, \"dtype\": \"float32\"}},"
                        " {\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn2\","
                        " \"axis\": [3], \"fused\": null, \"renorm\": false}},"
                        " {\"class_name\": \"LeakyReLU\", \"config\": {\"name\": \"k3\","
                        " \"negative_slope\": 0.2}},"
                        " {\"class_name\": \"LeakyReLU\", \"config\": {\"name\": \"k2\","
                        " \"alpha\": 0.1}},"
                        " {\"class_name\": \"ReLU\", \"config\": {\"name\": \"r\","
                        " \"max_value\": 6.0, \"negative_slope\": 0.0, \"threshold\": 0.0}},"
                        " {\"class_name\": \"ELU\", \"config\": {\"name\": \"e\", \"alpha\": 1.0}},"
                        " {\"class_name\": \"ZeroPadding2D\", \"config\": {\"name\": \"z\","
                        " \"padding\": [[1, 1], [2, 0]], \"data_format\": \"channels_last\"}},"
                        " {\"class_name\": \"DepthwiseConv2D\", \"config\": {\"name\": \"d\","
                        " \"kernel_size\": [3, 3], \"strides\": [1, 1], \"padding\": \"valid\","
                        " \"depth_multiplier\": 2, \"data_format\": \"channels_last\","
                        " \"dilation_rate\": [1, 1], \"activation\": \"linear\", \"use_bias\": true,"
                        " \"depthwise_initializer\": {\"class_name\": \"GlorotUniform\"},"
                        " \"depthwise_regularizer\": {\"module\": \"keras.regularizers\","
                        " \"class_name\": \"L2\", \"config\": {\"l2\": 0.0005},"
                        " \"registered_name\": null}, \"depthwise_constraint\": null}},"
                        " {\"class_name\": \"SeparableConv2D\", \"config\": {\"name\": \"s\","
                        " \"filters\": 5, \"kernel_size\": [2, 2], \"depth_multiplier\": 1,"
                        " \"pointwise_regularizer\": {\"class_name\": \"L1L2\","
                        " \"config\": {\"l1\": 0.0, \"l2\": 0.001}},"
                        " \"pointwise_initializer\": {\"class_name\": \"GlorotUniform\"}}},"
                        " {\"class_name\": \"Reshape\", \"config\": {\"name\": \"re\","
                        " \"target_shape\": [-1]}},"
                        " {\"class_name\": \"Dense\", \"config\": {\"name\": \"out\", \"units\": 3,"
                        " \"kernel_regularizer\": \"l2\"}}",
                        &m));
    if (m) {
        CHECK(cnn_model_layer_count(m) == 11);
        CHECK_OK(cnn_model_layer_spec(m, 0, &sp));
        CHECK(sp.u.batch_normalization.momentum == 0.9f);
        CHECK_OK(cnn_model_layer_spec(m, 2, &sp));
        CHECK(sp.u.leaky_relu.negative_slope == 0.2f);
        CHECK_OK(cnn_model_layer_spec(m, 3, &sp));
        CHECK(sp.u.leaky_relu.negative_slope == 0.1f);
        CHECK_OK(cnn_model_layer_spec(m, 4, &sp));
        CHECK(sp.u.relu.max_value == 6);
        CHECK_OK(cnn_model_layer_spec(m, 7, &sp));
        CHECK(sp.u.depthwise_conv2d.depthwise_l2 == 0.0005f
              && sp.u.depthwise_conv2d.depth_multiplier == 2);
        CHECK_OK(cnn_model_layer_spec(m, 8, &sp));
        CHECK(sp.u.separable_conv2d.pointwise_l2 == 0.001f);
        CHECK_OK(cnn_model_layer_spec(m, 10, &sp));
        CHECK(sp.u.dense.kernel_l2 == 0.01f);
        cnn_shape o = cnn_model_layer_output_shape(m, 6); /* 8x8x2 padded */
        CHECK(o.dims[0] == 10 && o.dims[1] == 10 && o.dims[2] == 2);
        CHECK(cnn_model_layer_param_count(m, 0) == 8);
    }
    cnn_model_free(m);
    JSON_LAYER_FAILS("{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn\","
                     " \"axis\": 1}}",
                     CNN_ERR_FORMAT, "layers[1] 'bn' (BatchNormalization): axis 1 is not supported:"
                                     " only the last axis");
    JSON_LAYER_FAILS("{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn\","
                     " \"scale\": false}}",
                     CNN_ERR_FORMAT, "scale false is not supported");
    JSON_LAYER_FAILS("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\", \"filters\": 2,"
                     " \"kernel_size\": 3, \"kernel_regularizer\": {\"class_name\": \"L1L2\","
                     " \"config\": {\"l1\": 0.01, \"l2\": 0.01}}}}",
                     CNN_ERR_FORMAT, "kernel_regularizer: L1 penalties are not supported");
    JSON_LAYER_FAILS("{\"class_name\": \"ZeroPadding2D\", \"config\": {\"name\": \"z\","
                     " \"padding\": [[1, -1], [0, 0]]}}",
                     CNN_ERR_FORMAT, "padding: expected an integer, [rows, cols] or [[top, bottom],"
                                     " [left, right]]");
}

/* A misspelt activation gets a suggestion, another Keras name does not. */
static void test_activation_suggestions(void)
{
    PARSE_FAILS("input shape=28,28,1\nConv2D 4 3 activation=rleu\n", CNN_ERR_FORMAT,
                "t.model:2:23: Conv2D activation: expected an activation (linear, relu, sigmoid,"
                " tanh, softmax, silu, gelu, gelu_tanh, selu, elu, softplus, softsign,"
                " hard_sigmoid, hard_silu, exponential, relu6, leaky_relu, mish), got 'rleu' (did"
                " you mean 'relu'?)");
    PARSE_FAILS("input shape=4\nDense 3 activation=softmx\n", CNN_ERR_FORMAT,
                "got 'softmx' (did you mean 'softmax'?)");
    PARSE_FAILS("input shape=4\nDense 3 activation=celu\n", CNN_ERR_FORMAT, "got 'celu'");
    CHECK(strstr(cnn_last_error(), "did you mean") == NULL);
    PARSE_FAILS("input shape=4\nDense 3 activation=swishy\n", CNN_ERR_FORMAT, "got 'swishy'");
    CHECK(strstr(cnn_last_error(), "did you mean") == NULL);
    JSON_LAYER_FAILS("{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 3,"
                     " \"activation\": \"sigmod\"}}",
                     CNN_ERR_FORMAT, "got \"sigmod\" (did you mean \"sigmoid\"?)");
}

/* Issue 12: every activation name and alias, in text and in Keras JSON
 * (a string, or Keras 3's serialised function object). */
static void test_activation_names(void)
{
    const struct {
        const char *name;
        cnn_activation a;
    } names[] = {{"silu", CNN_ACTIVATION_SILU},       {"swish", CNN_ACTIVATION_SILU},
                 {"gelu", CNN_ACTIVATION_GELU},       {"gelu_tanh", CNN_ACTIVATION_GELU_TANH},
                 {"selu", CNN_ACTIVATION_SELU},       {"elu", CNN_ACTIVATION_ELU},
                 {"softplus", CNN_ACTIVATION_SOFTPLUS}, {"softsign", CNN_ACTIVATION_SOFTSIGN},
                 {"hard_sigmoid", CNN_ACTIVATION_HARD_SIGMOID},
                 {"hard_silu", CNN_ACTIVATION_HARD_SILU},
                 {"hard_swish", CNN_ACTIVATION_HARD_SILU},
                 {"exponential", CNN_ACTIVATION_EXPONENTIAL}, {"relu6", CNN_ACTIVATION_RELU6},
                 {"leaky_relu", CNN_ACTIVATION_LEAKY_RELU}, {"mish", CNN_ACTIVATION_MISH}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "input shape=6,6,1\nConv2D 2 3 activation=%s\nActivation %s\nFlatten\n"
                 "Dense 3 activation='%s'\n",
                 names[i].name, names[i].name, names[i].name);
        cnn_model *m = NULL;
        cnn_layer_spec s[4];
        CHECK_OK(parse(text, &m));
        for (int l = 0; m && l < 4; l++)
            CHECK_OK(cnn_model_layer_spec(m, l, &s[l]));
        CHECK(m && s[0].u.conv2d.activation == names[i].a
              && s[1].u.activation.activation == names[i].a
              && s[3].u.dense.activation == names[i].a);
        cnn_model_free(m);
        snprintf(text, sizeof text,
                 "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                 "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 3,"
                 " \"activation\": \"%s\", \"batch_input_shape\": [null, 5]}},"
                 "{\"class_name\": \"Activation\", \"config\": {\"name\": \"a\", \"activation\":"
                 " {\"module\": \"keras.activations\", \"class_name\": \"function\","
                 " \"config\": \"%s\", \"registered_name\": \"function\"}}}]}}",
                 names[i].name, names[i].name);
        m = NULL;
        CHECK_OK(parse(text, &m));
        for (int l = 0; m && l < 2; l++)
            CHECK_OK(cnn_model_layer_spec(m, l, &s[l]));
        CHECK(m && s[0].u.dense.activation == names[i].a
              && s[1].u.activation.activation == names[i].a);
        cnn_model_free(m);
    }
}

/* Issue 15: graphs in text (inputs=, the input's name=) and Keras's
 * Functional JSON, and their errors. */
static void test_graphs(void)
{
    cnn_model *m = NULL;
    CHECK_OK(parse("input shape=4,4,2 name=x\n"
                   "Conv2D 2 3 padding=same name=c\n"
                   "Add inputs=x, c\n"
                   "Concatenate inputs=(add, x) name=cat\n",
                   &m));
    CHECK(m && cnn_model_is_graph(m) && cnn_model_layer_count(m) == 3);
    CHECK(m && cnn_model_layer_input(m, 1, 0) == -1 && cnn_model_layer_input(m, 1, 1) == 0);
    CHECK(m && cnn_model_layer_output_shape(m, 2).dims[2] == 4);
    CHECK(m && strcmp(cnn_model_input_name(m), "x") == 0);
    cnn_model_free(m);
    PARSE_FAILS("input shape=4,4,2\nConv2D 2 3 name=c\nAdd inputs=c\n", CNN_ERR_FORMAT,
                "t.model:3:1: add (Add): takes 2 to 8 inputs, got 1");
    PARSE_FAILS("input shape=4,4,2\nConv2D 2 3\nAdd\n", CNN_ERR_FORMAT,
                "add (Add): takes 2 to 8 inputs, got 1; name them with");
    PARSE_FAILS("input shape=4,4,2\nConv2D 2 3 inputs=nope\n", CNN_ERR_FORMAT,
                "t.model:2:12: Conv2D inputs: set_next_inputs: input 0, \"nope\": no layer of"
                " that name, and the model's input is \"input_layer\"");
    PARSE_FAILS("input shape=4,4,2\nConv2D 2 3 inputs=input_layer inputs=input_layer\n",
                CNN_ERR_FORMAT, "t.model:2:31: Conv2D inputs: given twice (first at column 12)");
    PARSE_FAILS("input shape=4,4,2\nConv2D 3 3 name=c\nSubtract inputs=c,input_layer\n",
                CNN_ERR_SHAPE,
                "subtract (Subtract): inputs have incompatible shapes: input 0 is (None, 2, 2, 3),"
                " input 1 is (None, 4, 4, 2)");
    PARSE_FAILS("input shape=4,4,2\nConv2D 3 3 padding=same name=c\n"
                "Concatenate 1 inputs=c,input_layer\n",
                CNN_ERR_SHAPE,
                "concatenate (Concatenate): requires inputs with matching shapes except for the"
                " concatenation axis 1: input 0 is (None, 4, 4, 3), input 1 is (None, 4, 4, 2)");
    PARSE_FAILS("input shape=4,4,2\nSubtract inputs=input_layer,input_layer,input_layer\n",
                CNN_ERR_FORMAT, "subtract (Subtract): takes 2 inputs, got 3");

    /* Keras Functional JSON: a layer used twice, several inputs, the
     * output not last, an input that comes later */
    const char *head = "{\"class_name\": \"Functional\", \"config\": {\"input_layers\":"
                       " [[\"in\", 0, 0]], \"output_layers\": [[\"d\", 0, 0]], \"layers\": ["
                       "{\"class_name\": \"InputLayer\", \"name\": \"in\", \"config\":"
                       " {\"name\": \"in\", \"batch_input_shape\": [null, 3]},"
                       " \"inbound_nodes\": []}, ";
    static const char *const tails[][2] = {
        {"{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 2},"
         " \"inbound_nodes\": [[[\"in\", 0, 0, {}]], [[\"in\", 0, 0, {}]]]}]}}",
         "layers[1] 'd' (Dense): inbound_nodes: expected one node (a layer used once)"},
        {"{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 2},"
         " \"inbound_nodes\": [[[\"in\", 1, 0, {}]]]}]}}",
         "layers[1] 'd' (Dense): inbound_nodes: [\"in\",1,0,{}]: a layer called more than"
         " once (shared) or with several outputs is not supported"},
        {"{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 2},"
         " \"inbound_nodes\": [[[\"e\", 0, 0, {}]]]}, {\"class_name\": \"Dense\","
         " \"config\": {\"name\": \"e\", \"units\": 2}, \"inbound_nodes\":"
         " [[[\"in\", 0, 0, {}]]]}]}}",
         "layers[1] 'd' (Dense): inbound_nodes: set_next_inputs: input 0, \"e\": no layer of"
         " that name"},
        {"{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 2},"
         " \"inbound_nodes\": [[[\"in\", 0, 0, {}]]]}, {\"class_name\": \"Dense\","
         " \"config\": {\"name\": \"e\", \"units\": 2}, \"inbound_nodes\":"
         " [[[\"d\", 0, 0, {}]]]}]}}",
         "output_layers: d must be the last layer listed"},
        {"{\"class_name\": \"InputLayer\", \"name\": \"in2\", \"config\":"
         " {\"name\": \"in2\", \"batch_input_shape\": [null, 3]}, \"inbound_nodes\": []}]}}",
         "a second input, or not the model's input (in): models with several inputs are not"
         " supported"},
    };
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        char text[2048];
        snprintf(text, sizeof text, "%s%s", head, tails[i][0]);
        PARSE_FAILS(text, CNN_ERR_FORMAT, tails[i][1]);
    }
    /* tf.keras 1.x's class name Model, and Keras 3's single input_layers */
    char text[2048];
    snprintf(text, sizeof text, "%s%s", head,
             "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 2},"
             " \"inbound_nodes\": [{\"args\": [{\"class_name\": \"__keras_tensor__\","
             " \"config\": {\"keras_history\": [\"in\", 0, 0]}}], \"kwargs\": {}}]}]}}");
    char *cls = strstr(text, "\"Functional\"");
    memmove(cls + 6, cls + 11, strlen(cls + 11) + 1);
    memcpy(cls, "\"Model", 6);
    m = NULL;
    CHECK_OK(parse(text, &m));
    CHECK(m && cnn_model_layer_count(m) == 1 && cnn_model_param_count(m) == 8);
    cnn_model_free(m);
}

int main(void)
{
    test_graphs();
    test_new_kinds();
    test_examples();
    test_text_syntax();
    test_text_errors();
    test_json();
    test_json_errors();
    test_api();
    test_activation_suggestions();
    test_activation_names();
    return test_finish("test_description");
}
