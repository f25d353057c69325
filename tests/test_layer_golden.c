/* Every layer kind with non-default values, through every serializer, held
 * against golden files made before the serializers became table-driven:
 * the .cnn bytes (tests/golden/layers_*.cnn), the Keras 3 and Keras 2
 * configs, the summary, and the text and Keras JSON description readers
 * (which must rebuild the same model, so save the same bytes). A golden
 * .cnn loads and re-saves byte for byte, so files from older builds keep
 * loading unchanged. Run from the repository root; CNN_GOLDEN_WRITE=1
 * rewrites the golden files (only when a format change is intended). */
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "io/description.h"
#include "io/keras.h"
#include "layers/layer.h"
#include "test.h"

static char dir[64];

/* bytes against the golden file (or written to it). */
static void check_golden(const char *golden, const void *bytes, size_t n)
{
    if (getenv("CNN_GOLDEN_WRITE")) {
        CHECK(test_write_file(golden, bytes, n));
        return;
    }
    size_t g = 0;
    unsigned char *want = test_read_file(golden, &g);
    CHECK(want != NULL);
    int same = want && g == n && memcmp(want, bytes, n) == 0;
    if (!same)
        fprintf(stderr, "%s: differs (%zu bytes, the golden file has %zu)\n", golden, n, g);
    CHECK(same);
    free(want);
}

/* The model's .cnn bytes (malloc'd). */
static unsigned char *saved_bytes(cnn_model *m, size_t *n)
{
    char path[96];
    snprintf(path, sizeof path, "%s/m.cnn", dir);
    *n = 0;
    if (cnn_model_save(m, path) != CNN_OK)
        return NULL;
    return test_read_file(path, n);
}

/* Every layer kind that takes images, then the flat ones. */
static cnn_model *zoo_a(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(12, 10, 3)));
    if (!m)
        return NULL;
    CHECK_OK(cnn_model_set_seed(m, 42));
    CHECK_OK(cnn_model_add_rescaling(m, cnn_rescaling(.scale = 1.0f / 255, .offset = -0.5f,
                                                      .name = "pre")));
    CHECK_OK(cnn_model_add_zero_padding2d(m, cnn_zero_padding2d(.padding = {1, 2, 0, 3})));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 2},
                                                .padding = CNN_PADDING_SAME,
                                                .dilation_rate = {2, 1},
                                                .activation = CNN_ACTIVATION_RELU,
                                                .no_bias = true, .kernel_l2 = 0.01f)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {2, 2},
                                                .strides = {1, 2}, .name = "conv b")));
    CHECK_OK(cnn_model_add_batch_normalization(
        m, cnn_batch_normalization(.momentum = 0.9f, .epsilon = 1e-4f)));
    CHECK_OK(cnn_model_add_leaky_relu(m, cnn_leaky_relu(.negative_slope = 0.1f)));
    CHECK_OK(cnn_model_add_elu(m, cnn_elu(.alpha = 0.5f)));
    CHECK_OK(cnn_model_add_relu(m, cnn_relu(.max_value = 6, .negative_slope = 0.1f,
                                            .threshold = 0.25f)));
    CHECK_OK(cnn_model_add_depthwise_conv2d(
        m, cnn_depthwise_conv2d(.kernel_size = {3, 3}, .depth_multiplier = 2,
                                .activation = CNN_ACTIVATION_TANH, .no_bias = true,
                                .depthwise_l2 = 0.02f)));
    CHECK_OK(cnn_model_add_separable_conv2d(
        m, cnn_separable_conv2d(.filters = 5, .kernel_size = {2, 2}, .padding = CNN_PADDING_SAME,
                                .depth_multiplier = 2, .activation = CNN_ACTIVATION_SIGMOID,
                                .depthwise_l2 = 0.03f, .pointwise_l2 = 0.04f)));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2}, .strides = {1, 2},
                                                       .padding = CNN_PADDING_SAME)));
    CHECK_OK(cnn_model_add_average_pooling2d(m, cnn_pool2d(.pool_size = {2, 1})));
    CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(.activation = CNN_ACTIVATION_TANH)));
    CHECK_OK(cnn_model_add_dropout(m, cnn_dropout(.rate = 0.25f, .seed = 7)));
    CHECK_OK(cnn_model_add_reshape(m, cnn_reshape(.target_shape = cnn_shape_hwc(-1, 5, 1))));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten(.name = "flat")));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 7, .activation = CNN_ACTIVATION_SOFTMAX,
                                              .no_bias = true, .kernel_l2 = 0.05f)));
    return m;
}

/* Both global poolings, a rank-1 reshape and defaults; built and compiled. */
static cnn_model *zoo_b(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(6, 6, 2)));
    if (!m)
        return NULL;
    CHECK_OK(cnn_model_set_seed(m, 7));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {3, 3})));
    CHECK_OK(cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d(.name = "gap")));
    CHECK_OK(cnn_model_add_reshape(m, cnn_reshape(.target_shape = cnn_shape_hwc(1, 1, 3))));
    CHECK_OK(cnn_model_add_global_max_pooling2d(m, cnn_global_pool2d()));
    CHECK_OK(cnn_model_add_reshape(m, cnn_reshape(.target_shape = cnn_shape_flat(-1))));
    CHECK_OK(cnn_model_add_relu(m, cnn_relu()));
    CHECK_OK(cnn_model_add_leaky_relu(m, cnn_leaky_relu()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 2)));
    CHECK_OK(cnn_model_compile(m, (cnn_compile_config){
                                      .loss = CNN_LOSS_MSE,
                                      .optimizer = {.kind = CNN_OPTIMIZER_SGD,
                                                    .learning_rate = 0.05f,
                                                    .momentum = 0.5f, .clipnorm = 2}}));
    return m;
}


/* Issue 15's kinds, with non-default values (new in layers_c; layers_a and
 * layers_b keep their bytes). */
static cnn_model *zoo_c(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(5, 4, 2)));
    if (!m)
        return NULL;
    CHECK_OK(cnn_model_set_seed(m, 15));
    CHECK_OK(cnn_model_add_up_sampling2d(
        m, cnn_up_sampling2d(.size = {2, 3}, .interpolation = CNN_INTERPOLATION_BILINEAR)));
    CHECK_OK(cnn_model_add_conv2d_transpose(
        m, cnn_conv2d_transpose(.filters = 3, .kernel_size = {3, 3}, .strides = {2, 1},
                                .padding = CNN_PADDING_SAME, .output_padding = {{1, 0}, true},
                                .activation = CNN_ACTIVATION_RELU, .kernel_l2 = 0.01f)));
    CHECK_OK(cnn_model_add_cropping2d(m, cnn_cropping2d(.cropping = {1, 2, 0, 3})));
    CHECK_OK(cnn_model_add_conv2d_transpose(
        m, cnn_conv2d_transpose(.filters = 2, .kernel_size = {2, 2}, .dilation_rate = {2, 1},
                                .no_bias = true, .name = "up")));
    CHECK_OK(cnn_model_add_up_sampling2d(m, cnn_up_sampling2d()));
    CHECK_OK(cnn_model_add_spatial_dropout2d(m, cnn_spatial_dropout2d(.rate = 0.25f, .seed = 9)));
    CHECK_OK(cnn_model_add_layer_normalization(
        m, cnn_layer_normalization(.epsilon = 1e-5f, .no_center = true)));
    CHECK_OK(cnn_model_add_softmax(m, cnn_softmax(.name = "channel softmax")));
    CHECK_OK(cnn_model_add_cropping2d(m, cnn_cropping2d()));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_layer_normalization(m, cnn_layer_normalization(.no_scale = true)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3)));
    CHECK_OK(cnn_model_add_softmax(m, cnn_softmax()));
    return m;
}

/* The same layers as zoo_c, as a text description. */
static const char zoo_c_text[] =
    "input shape=5,4,2\n"
    "UpSampling2D (2, 3) interpolation=bilinear\n"
    "Conv2DTranspose 3 3 (2, 1) same (1, 0) activation=relu kernel_regularizer=l2(0.01)\n"
    "Cropping2D ((1, 2), (0, 3))\n"
    "Conv2DTranspose 2 2 dilation_rate=(2,1) use_bias=false name=up\n"
    "UpSampling2D\n"
    "SpatialDropout2D 0.25 seed=9\n"
    "LayerNormalization epsilon=1e-5 center=false\n"
    "Softmax name=\"channel softmax\"\n"
    "Cropping2D 0\n"
    "Flatten\n"
    "LayerNormalization scale=False\n"
    "Dense 3\n"
    "Softmax\n";

/* The same layers as zoo_a, as a text description. */
static const char zoo_a_text[] =
    "input shape=12,10,3\n"
    "Rescaling 0.00392156862745098 -0.5 name=pre\n"
    "ZeroPadding2D ((1, 2), (0, 3))\n"
    "Conv2D 4 (3, 2) padding=same dilation_rate=(2,1) activation=relu use_bias=false"
    " kernel_regularizer=l2(0.01)\n"
    "Conv2D 3 2 1,2 name=\"conv b\"\n"
    "BatchNormalization momentum=0.9 epsilon=1e-4\n"
    "LeakyReLU alpha=0.1\n"
    "ELU 0.5\n"
    "ReLU 6 0.1 0.25\n"
    "DepthwiseConv2D 3 depth_multiplier=2 activation=tanh use_bias=False"
    " depthwise_regularizer=0.02\n"
    "SeparableConvolution2D 5 2 padding=SAME depth_multiplier=2 activation=sigmoid"
    " depthwise_regularizer=L2(0.03) pointwise_regularizer=l2(0.04)\n"
    "MaxPool2D 2 (1, 2) same\n"
    "AvgPool2D (2, 1)\n"
    "Activation tanh\n"
    "Dropout 0.25 seed=7\n"
    "Reshape (-1, 5, 1)\n"
    "Flatten name=flat\n"
    "Dense 7 softmax use_bias=false kernel_regularizer=0.05\n";

/* Every merge kind in one graph (issue 15): two branches of a named
 * input, merged every way, joined along rows and channels. */
static cnn_model *zoo_graph(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(6, 5, 3)));
    if (!m)
        return NULL;
    CHECK_OK(cnn_model_set_seed(m, 7));
    CHECK_OK(cnn_model_set_input_name(m, "img"));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME, .name = "a",
                                                .activation = CNN_ACTIVATION_TANH)));
    CHECK_OK(cnn_model_set_next_inputs(m, 1, (const char *[]){"img"}));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {1, 1}, .name = "b",
                                                .activation = CNN_ACTIVATION_SIGMOID)));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"a", "b"}));
    CHECK_OK(cnn_model_add_add(m, cnn_merge()));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"a", "b"}));
    CHECK_OK(cnn_model_add_subtract(m, cnn_merge(.name = "diff")));
    CHECK_OK(cnn_model_set_next_inputs(m, 3, (const char *[]){"add", "diff", "a"}));
    CHECK_OK(cnn_model_add_multiply(m, cnn_merge()));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"multiply", "b"}));
    CHECK_OK(cnn_model_add_average(m, cnn_merge()));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"average", "a"}));
    CHECK_OK(cnn_model_add_maximum(m, cnn_merge()));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"maximum", "add"}));
    CHECK_OK(cnn_model_add_minimum(m, cnn_merge()));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"minimum", "a"}));
    CHECK_OK(cnn_model_add_concatenate(m, cnn_concatenate(.axis = 1, .name = "rows")));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"rows", "rows"}));
    CHECK_OK(cnn_model_add_concatenate(m, cnn_concatenate()));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3)));
    return m;
}

static const char zoo_graph_text[] =
    "input shape=6,5,3 name=img\n"
    "Conv2D 4 3 padding=same activation=tanh name=a\n"
    "Conv2D 4 1 activation=sigmoid name=b inputs=img\n"
    "Add inputs=a,b\n"
    "Subtract name=diff inputs=(a, b)\n"
    "Multiply inputs=add,diff,a\n"
    "Average inputs=multiply,b\n"
    "Maximum inputs=average,a\n"
    "Minimum inputs=maximum,add\n"
    "Concatenate 1 name=rows inputs=minimum,a\n"
    "Concatenate axis=-1 inputs=rows,rows\n"
    "Flatten\n"
    "Dense 3\n";

static void check_text(char *text, const char *golden)
{
    CHECK(text != NULL);
    if (text)
        check_golden(golden, text, strlen(text));
    free(text);
}

/* The model's configs, summary and bytes against the golden files prefix.*. */
static void check_model(cnn_model *m, const char *prefix)
{
    char golden[128];
    size_t n = 0;
    unsigned char *bytes = saved_bytes(m, &n);
    CHECK(bytes != NULL);
    snprintf(golden, sizeof golden, "tests/golden/%s.cnn", prefix);
    if (bytes)
        check_golden(golden, bytes, n);

    /* the golden file loads and saves as the same bytes */
    size_t g = 0;
    unsigned char *want = test_read_file(golden, &g);
    cnn_model *c = NULL;
    CHECK(want != NULL);
    if (want)
        CHECK_OK(cnn_model_load_memory(want, g, golden, &c));
    if (c) {
        size_t n2 = 0;
        unsigned char *again = saved_bytes(c, &n2);
        CHECK(again && n2 == g && memcmp(again, want, g) == 0);
        free(again);
    }
    cnn_model_free(c);
    free(want);

    char *summary = NULL;
    CHECK_OK(cnn_model_summary(m, &summary));
    snprintf(golden, sizeof golden, "tests/golden/%s.summary.txt", prefix);
    check_text(summary, golden);

    json_t *k3 = cnn_keras3_config(m), *k2 = cnn_keras2_config(m);
    char *k3s = k3 ? cnn_keras_dumps(k3) : NULL, *k2s = k2 ? cnn_keras_dumps(k2) : NULL;
    /* each Keras config, read back as a description, is the same model:
     * it writes the same configs again */
    const char *const texts[] = {k3s, k2s};
    for (int i = 0; i < 2; i++) {
        cnn_model *d = NULL;
        CHECK(texts[i] != NULL);
        if (texts[i])
            CHECK_OK(cnn_model_from_description_memory(texts[i], strlen(texts[i]), prefix, &d));
        if (!d)
            continue;
        json_t *again = i ? cnn_keras2_config(d) : cnn_keras3_config(d);
        char *s = again ? cnn_keras_dumps(again) : NULL;
        if (i == 0) { /* Keras 3 records the compile config; a description has none */
            json_t *orig = json_loads(texts[i], 0, NULL), *re = json_loads(s ? s : "", 0, NULL);
            json_object_del(orig, "compile_config");
            CHECK(orig && re && json_equal(orig, re));
            json_decref(orig);
            json_decref(re);
        } else {
            CHECK(s && strcmp(s, texts[i]) == 0);
        }
        free(s);
        json_decref(again);
        cnn_model_free(d);
    }
    snprintf(golden, sizeof golden, "tests/golden/%s.keras3.json", prefix);
    check_text(k3s, golden);
    snprintf(golden, sizeof golden, "tests/golden/%s.keras2.json", prefix);
    check_text(k2s, golden);
    json_decref(k3);
    json_decref(k2);
    free(bytes);
}

/* Every kind's table is one the generic code can serve: at most as many
 * fields as the description readers keep, a name field, every field
 * written to Keras configs, every penalty on a weight that exists; and
 * every kind is in the zoos above. */
static void check_tables(cnn_model *a, cnn_model *b, cnn_model *c, cnn_model *g)
{
    const cnn_layer_ops *ops;
    for (size_t i = 0; (ops = cnn_layer_kind_at(i)); i++) {
        CHECK(ops->n_fields <= CNN_DESC_MAX_ARGS);
        CHECK(cnn_layer_field_of_type(ops, CNN_FIELD_NAME) != NULL);
        for (int f = 0; f < ops->n_fields; f++) {
            const cnn_layer_field *fl = &ops->fields[f];
            if (fl->type == CNN_FIELD_NAME || (fl->flags & CNN_FIELD_ALIAS))
                continue;
            char word[80];
            snprintf(word, sizeof word, " %s ", fl->key);
            char keys[512];
            snprintf(keys, sizeof keys, " %s ", ops->keras_keys ? ops->keras_keys : "");
            if (!strstr(keys, word))
                fprintf(stderr, "%s: field %s is not among its Keras keys\n", ops->type_name,
                        fl->key);
            CHECK(strstr(keys, word) != NULL);
            CHECK(fl->type != CNN_FIELD_L2
                  || (fl->weight >= 0 && fl->weight < CNN_MAX_LAYER_WEIGHTS));
        }
        int seen = 0;
        for (int m = 0; m < 4; m++) {
            cnn_model *z = m == 0 ? a : m == 1 ? b : m == 2 ? c : g;
            for (int l = 0; z && l < cnn_model_layer_count(z); l++)
                seen |= strcmp(cnn_model_layer_type(z, l), ops->type_name) == 0;
        }
        if (!seen)
            fprintf(stderr, "%s is in no golden model\n", ops->type_name);
        CHECK(seen);
    }
}

/* A damaged field in a layer record is refused with the field named: the
 * generic reader checks what the kind-specific one did (no_bias of
 * layers_a's Conv2D "conv2d", layer 2, at byte 156: 52 bytes of preamble
 * and header, Rescaling "pre" 18, ZeroPadding2D "zero_padding2d" 37, the
 * Conv2D's header 13 and its fields before no_bias 36). */
static void check_damaged_record(void)
{
    size_t n = 0;
    unsigned char *b = test_read_file("tests/golden/layers_a.cnn", &n);
    CHECK(b && n > 160 && b[156] == 1);
    if (!b || n <= 160) {
        free(b);
        return;
    }
    b[156] = 2;
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)(n - 4));
    for (int i = 0; i < 4; i++)
        b[n - 4 + i] = (unsigned char)(crc >> (8 * i));
    cnn_model *m = NULL;
    CHECK_FAILS(cnn_model_load_memory(b, n, "a.cnn", &m), CNN_ERR_FORMAT,
                "a.cnn: layer 2 (conv2d): no_bias must be 0 or 1, got 2");
    CHECK(m == NULL);
    free(b);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/cnn_layer_golden_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    cnn_model *a = zoo_a();
    if (a)
        check_model(a, "layers_a");
    cnn_model *b = zoo_b();
    if (b)
        check_model(b, "layers_b");
    cnn_model *c = zoo_c();
    if (c)
        check_model(c, "layers_c");
    cnn_model *g = zoo_graph();
    if (g)
        check_model(g, "layers_graph");
    check_tables(a, b, c, g);
    check_damaged_record();
    cnn_model_free(b);

    /* the graph's text description: the same bytes */
    cnn_model *tg = NULL;
    CHECK_OK(cnn_model_from_description_memory(zoo_graph_text, sizeof zoo_graph_text - 1,
                                               "zoo_graph", &tg));
    if (tg && g) {
        CHECK_OK(cnn_model_set_seed(tg, 7));
        size_t ng = 0, nt = 0;
        unsigned char *bg = saved_bytes(g, &ng), *bt = saved_bytes(tg, &nt);
        CHECK(bg && bt && ng == nt && memcmp(bg, bt, ng) == 0);
        free(bg);
        free(bt);
    }
    cnn_model_free(tg);
    cnn_model_free(g);

    /* The text description of zoo_a builds the same model: the same bytes
     * once it has the same seed. */
    cnn_model *t = NULL;
    CHECK_OK(cnn_model_from_description_memory(zoo_a_text, sizeof zoo_a_text - 1, "zoo_a", &t));
    if (t && a) {
        CHECK_OK(cnn_model_set_seed(t, 42));
        size_t na = 0, nt = 0;
        unsigned char *ba = saved_bytes(a, &na), *bt = saved_bytes(t, &nt);
        CHECK(ba && bt && na == nt && memcmp(ba, bt, na) == 0);
        free(ba);
        free(bt);
    }
    cnn_model_free(t);
    cnn_model_free(a);
    /* and zoo_c's */
    t = NULL;
    CHECK_OK(cnn_model_from_description_memory(zoo_c_text, sizeof zoo_c_text - 1, "zoo_c", &t));
    if (t && c) {
        CHECK_OK(cnn_model_set_seed(t, 15));
        size_t nc = 0, nt = 0;
        unsigned char *bc = saved_bytes(c, &nc), *bt = saved_bytes(t, &nt);
        CHECK(bc && bt && nc == nt && memcmp(bc, bt, nc) == 0);
        free(bc);
        free(bt);
    }
    cnn_model_free(t);
    cnn_model_free(c);
    char path[96];
    snprintf(path, sizeof path, "%s/m.cnn", dir);
    unlink(path);
    rmdir(dir);
    return test_finish("layer_golden");
}
