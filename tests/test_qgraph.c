/* int8 quantization of graph models through the public cnn_qmodel API: a
 * synthetic graph with every graph op (Add with a fused relu, Concatenate
 * requantizing its inputs, ZeroPadding2D, a BatchNormalization that cannot
 * be folded, a tanh table, global pooling) against its float model; the
 * same bytes from every instruction set, thread count and after a save and
 * load; the MLPerf Tiny ResNet-8 and MobileNetV1 (shipped in models/);
 * refusals naming the layer; evaluation; hostile quantized files. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/rng.h"
#include "model/model.h"
#include "quant/qmodel.h"
#include "test.h"

/* A graph using every graph op: input -> conv a (relu) -> zero padding ->
 * conv b (valid, linear) -> BN folded -> relu; Add(a, b') -> relu fused;
 * conv c (tanh, a table after it) reading the input; Concatenate(add, c);
 * BatchNormalization alone (after the concatenation: a 1x1 depthwise);
 * max pooling; both global poolings concatenated -> dense softmax. */
static cnn_model *graph_model(void)
{
    cnn_model *m = NULL;
    if (cnn_model_create(&m, cnn_shape_hwc(10, 10, 3)))
        return NULL;
    cnn_model_set_seed(m, 5);
    cnn_status st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 8, .kernel_size = {3, 3},
                                                       .padding = CNN_PADDING_SAME,
                                                       .activation = CNN_ACTIVATION_RELU,
                                                       .name = "a"));
    st = st ? st : cnn_model_add_zero_padding2d(m, cnn_zero_padding2d(.name = "pad"));
    st = st ? st : cnn_model_add_conv2d(m, cnn_conv2d(.filters = 8, .kernel_size = {3, 3},
                                                      .name = "b"));
    st = st ? st : cnn_model_add_batch_normalization(m, cnn_batch_normalization(.name = "bn_b"));
    st = st ? st : cnn_model_add_relu(m, cnn_relu(.name = "relu_b"));
    st = st ? st : cnn_model_set_next_inputs(m, 2, (const char *[]){"a", "relu_b"});
    st = st ? st : cnn_model_add_add(m, cnn_merge(.name = "sum"));
    st = st ? st : cnn_model_add_relu(m, cnn_relu(.name = "relu_sum"));
    st = st ? st : cnn_model_set_next_inputs(m, 1, (const char *[]){"input_layer"});
    st = st ? st : cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {1, 1},
                                                      .activation = CNN_ACTIVATION_TANH,
                                                      .name = "c"));
    st = st ? st : cnn_model_set_next_inputs(m, 2, (const char *[]){"relu_sum", "c"});
    st = st ? st : cnn_model_add_concatenate(m, cnn_concatenate(.name = "cat"));
    st = st ? st : cnn_model_add_batch_normalization(m, cnn_batch_normalization(.name = "bn_cat"));
    st = st ? st : cnn_model_add_max_pooling2d(m, cnn_pool2d(.name = "pool"));
    st = st ? st : cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d(.name = "gap"));
    st = st ? st : cnn_model_set_next_inputs(m, 1, (const char *[]){"pool"});
    st = st ? st : cnn_model_add_global_max_pooling2d(m, cnn_global_pool2d(.name = "gmp"));
    st = st ? st : cnn_model_set_next_inputs(m, 2, (const char *[]){"gap", "gmp"});
    st = st ? st : cnn_model_add_concatenate(m, cnn_concatenate(.name = "cat2"));
    st = st ? st : cnn_model_add_dense(m, cnn_dense(.units = 6,
                                                    .activation = CNN_ACTIVATION_SOFTMAX));
    if (!st)
        st = cnn_model_build(m);
    if (st) {
        cnn_model_free(m);
        return NULL;
    }
    /* BatchNormalization statistics away from the identity */
    const char *bns[] = {"bn_b", "bn_cat"};
    for (int b = 0; b < 2; b++) {
        int layer = -1;
        for (int i = 0; i < cnn_model_layer_count(m); i++)
            if (!strcmp(cnn_model_layer_name(m, i), bns[b]))
                layer = i;
        for (int k = 0; k < 4; k++) {
            int64_t n = 0;
            float *w = cnn_model_layer_weights(m, layer, k, &n);
            for (int64_t j = 0; j < n; j++)
                w[j] = k == 0 ? 0.5f + 0.1f * (float)j : k == 1 ? 0.05f * (float)(j % 3)
                       : k == 2 ? 0.02f * (float)j : 0.5f + 0.05f * (float)j;
        }
    }
    return m;
}

static void test_graph(void)
{
    cnn_model *m = graph_model();
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(cnn_model_is_graph(m));
    cnn_tensor *calib = test_random_images(64, 10, 10, 3, 1.0f, 11);
    cnn_tensor *x = test_random_images(100, 10, 10, 3, 1.0f, 12);
    cnn_qmodel *q = NULL;
    CHECK_OK(cnn_qmodel_create(&q, m, calib, 0));
    if (!q)
        goto done;
    /* the ops after fusing: nothing else */
    const char *want[] = {"Conv2D",  "ZeroPadding2D",   "Conv2D",       "Add",
                          "Conv2D",  "Lookup",          "Concatenate",  "DepthwiseConv2D",
                          "MaxPooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
                          "Concatenate", "Dense"};
    CHECK(cnn_qmodel_op_count(q) == (int)(sizeof want / sizeof *want));
    for (int k = 0; k < cnn_qmodel_op_count(q) && k < (int)(sizeof want / sizeof *want); k++)
        if (strcmp(cnn_qmodel_op_type(q, k), want[k])) {
            fprintf(stderr, "op %d: expected %s, got %s\n", k, want[k], cnn_qmodel_op_type(q, k));
            CHECK(0);
        }
    CHECK(!strcmp(cnn_qmodel_op_name(q, 3), "sum"));
    CHECK(cnn_qmodel_op_type(q, 99) == NULL);
    CHECK(cnn_qmodel_weight_bytes(q) > 0);
    CHECK(cnn_qmodel_arena_bytes(q) >= 10 * 10 * 3 + 10 * 10 * 8);
    cnn_shape os = cnn_qmodel_output_shape(q);
    CHECK(os.rank == 1 && os.dims[0] == 6);

    float ref[600], got[600];
    cnn_qmodel_set_isa(q, CNN_QISA_GENERIC);
    CHECK_OK(cnn_qmodel_predict(q, x, ref));
    cnn_tensor *fp = NULL;
    CHECK_OK(cnn_model_predict(m, x, 32, &fp));
    int agree = 0;
    float worst = 0;
    for (int e = 0; e < 100; e++) {
        agree += test_argmax(ref + 6 * e, 6) == test_argmax(fp->data + 6 * e, 6);
        for (int j = 0; j < 6; j++) {
            float d = fabsf(ref[6 * e + j] - fp->data[6 * e + j]);
            worst = d > worst ? d : worst;
        }
    }
    printf("graph: int8 vs float top-1 agreement %d/100, largest probability difference %.4f\n",
           agree, worst);
    CHECK(agree >= 90);
    CHECK(worst < 0.1f);
    cnn_tensor_free(fp);

    /* every instruction set and thread count: the same bytes */
    const cnn_qisa isas[] = {CNN_QISA_AVX2, CNN_QISA_VNNI, CNN_QISA_AUTO};
    for (int i = 0; i < 3; i++) {
        if (!cnn_qisa_supported(isas[i]))
            continue;
        cnn_qmodel_set_isa(q, isas[i]);
        CHECK_OK(cnn_qmodel_predict(q, x, got));
        CHECK(memcmp(ref, got, sizeof ref) == 0);
    }
    CHECK_OK(cnn_qmodel_set_threads(q, 3));
    CHECK_OK(cnn_qmodel_predict(q, x, got));
    CHECK(memcmp(ref, got, sizeof ref) == 0);

    /* save, load: the same outputs; saving the loaded model gives the same bytes */
    char path[] = "/tmp/test_qgraph_XXXXXX", path2[] = "/tmp/test_qgraph2_XXXXXX";
    int fd = mkstemp(path), fd2 = mkstemp(path2);
    CHECK(fd >= 0 && fd2 >= 0);
    close(fd);
    close(fd2);
    CHECK_OK(cnn_qmodel_save(q, path));
    cnn_qmodel *l = NULL;
    CHECK_OK(cnn_qmodel_load(path, &l));
    if (l) {
        CHECK_OK(cnn_qmodel_predict(l, x, got));
        CHECK(memcmp(ref, got, sizeof ref) == 0);
        CHECK(cnn_qmodel_weight_bytes(l) == cnn_qmodel_weight_bytes(q));
        CHECK(cnn_qmodel_arena_bytes(l) == cnn_qmodel_arena_bytes(q));
        CHECK(cnn_qmodel_float_params(l) == cnn_model_param_count(m));
        CHECK_OK(cnn_qmodel_save(l, path2));
        cnn_model_format f;
        CHECK_OK(cnn_model_file_format(path, &f));
        CHECK(f == CNN_MODEL_FORMAT_QUANTIZED);
        cnn_model *fm = (cnn_model *)1;
        CHECK_FAILS(cnn_model_open(path, &fm, NULL, NULL), CNN_ERR_FORMAT,
                    "an int8 quantized model");
    }
    unsigned char *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    FILE *f1 = fopen(path, "rb"), *f2 = fopen(path2, "rb");
    if (f1 && f2) {
        fseek(f1, 0, SEEK_END);
        fseek(f2, 0, SEEK_END);
        n1 = (size_t)ftell(f1);
        n2 = (size_t)ftell(f2);
        rewind(f1);
        rewind(f2);
        b1 = malloc(n1);
        b2 = malloc(n2);
        CHECK(fread(b1, 1, n1, f1) == n1 && fread(b2, 1, n2, f2) == n2);
        CHECK(n1 == n2 && memcmp(b1, b2, n1) == 0);
    }
    if (f1)
        fclose(f1);
    if (f2)
        fclose(f2);
    free(b1);
    free(b2);
    cnn_qmodel_free(l);
    unlink(path);
    unlink(path2);

    /* evaluate: labels = the int8 model's own predictions give accuracy 1
     * and the mean of -log(max probability) */
    int64_t ydims[1] = {100};
    cnn_tensor *y = NULL;
    CHECK_OK(cnn_tensor_create(&y, 1, ydims));
    double want_loss = 0;
    for (int e = 0; e < 100; e++) {
        int k = test_argmax(ref + 6 * e, 6);
        y->data[e] = (float)k;
        want_loss -= log(ref[6 * e + k]);
    }
    double loss = -1, acc = -1;
    CHECK_OK(cnn_qmodel_evaluate(q, x, y, &loss, &acc));
    CHECK(acc == 1.0);
    CHECK(fabs(loss - want_loss / 100) < 1e-6);
    cnn_dataset *ds = NULL;
    CHECK_OK(cnn_dataset_from_tensors(x, y, 6, cnn_dataset_options(.no_shuffle = true), &ds));
    loss = acc = -1;
    CHECK_OK(cnn_qmodel_evaluate_dataset(q, ds, &loss, &acc));
    CHECK(acc == 1.0);
    CHECK(fabs(loss - want_loss / 100) < 1e-6);
    /* the same calibration from a data set gives the same model */
    cnn_dataset *cds = NULL;
    cnn_tensor ycal = *y;
    ycal.dims[0] = 64;
    CHECK_OK(cnn_dataset_from_tensors(calib, &ycal, 6, cnn_dataset_options(.no_shuffle = true), &cds));
    cnn_qmodel *qd = NULL;
    CHECK_OK(cnn_qmodel_create_dataset(&qd, m, cds, 64));
    if (qd) {
        cnn_qmodel_set_isa(qd, CNN_QISA_GENERIC);
        CHECK_OK(cnn_qmodel_predict(qd, x, got));
        CHECK(memcmp(ref, got, sizeof ref) == 0);
    }
    cnn_qmodel_free(qd);
    y->data[3] = 6;
    CHECK_FAILS(cnn_qmodel_evaluate(q, x, y, &loss, &acc), CNN_ERR_INVALID_ARGUMENT,
                "label of example 3 is 6, expected an integer 0..5");
    cnn_dataset_free(ds);
    cnn_dataset_free(cds);
    cnn_tensor_free(y);
done:
    cnn_qmodel_free(q);
    cnn_tensor_free(calib);
    cnn_tensor_free(x);
    cnn_model_free(m);
}

/* Layers and arrangements int8 cannot run are refused by name and kind. */
static void test_refusals(void)
{
    cnn_tensor *calib = test_random_images(4, 6, 6, 2, 1.0f, 9);
    cnn_qmodel *q = (cnn_qmodel *)1;
    cnn_model *m = NULL;

    /* Multiply has no int8 kernel */
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(6, 6, 2)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {1, 1}, .name = "a")));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"input_layer", "a"}));
    CHECK_OK(cnn_model_add_multiply(m, cnn_merge(.name = "gate")));
    CHECK_FAILS(cnn_qmodel_create(&q, m, calib, 0), CNN_ERR_INVALID_ARGUMENT,
                "layer 1 'gate' (Multiply): this layer kind has no int8 kernel");
    CHECK(q == NULL);
    cnn_model_free(m);

    /* Add of three inputs */
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(6, 6, 2)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {1, 1}, .name = "a")));
    CHECK_OK(cnn_model_set_next_inputs(m, 3, (const char *[]){"input_layer", "a", "a"}));
    CHECK_OK(cnn_model_add_add(m, cnn_merge(.name = "sum3")));
    CHECK_FAILS(cnn_qmodel_create(&q, m, calib, 0), CNN_ERR_INVALID_ARGUMENT,
                "'sum3' (Add): int8 Add takes exactly two inputs");
    cnn_model_free(m);

    /* Concatenate along rows */
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(6, 6, 2)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {1, 1}, .name = "a")));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"input_layer", "a"}));
    CHECK_OK(cnn_model_add_concatenate(m, cnn_concatenate(.axis = 1, .name = "rows")));
    CHECK_FAILS(cnn_qmodel_create(&q, m, calib, 0), CNN_ERR_INVALID_ARGUMENT,
                "'rows' (Concatenate): int8 Concatenate joins the last axis only");
    cnn_model_free(m);

    /* a softmax in the middle of a graph */
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(6, 6, 2)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {1, 1},
                                                .activation = CNN_ACTIVATION_SOFTMAX,
                                                .name = "sm")));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_FAILS(cnn_qmodel_create(&q, m, calib, 0), CNN_ERR_INVALID_ARGUMENT,
                "'sm' (Conv2D): softmax is only quantized on the last Dense layer");

    /* calibration data of the wrong shape, from a tensor and a data set */
    cnn_tensor *wrong = test_random_images(4, 6, 5, 2, 1.0f, 3);
    CHECK_FAILS(cnn_qmodel_create(&q, m, wrong, 0), CNN_ERR_SHAPE,
                "calibration data: dimension 2 is 5, the model expects 6");
    int64_t ydims[1] = {4};
    cnn_tensor *y = NULL;
    CHECK_OK(cnn_tensor_create(&y, 1, ydims));
    cnn_dataset *ds = NULL;
    CHECK_OK(cnn_dataset_from_tensors(wrong, y, 2, cnn_dataset_options(.no_shuffle = true), &ds));
    CHECK_FAILS(cnn_qmodel_create_dataset(&q, m, ds, 0), CNN_ERR_SHAPE,
                "calibration data: dimension 2 is 5");
    CHECK(q == NULL);
    cnn_dataset_free(ds);
    cnn_tensor_free(y);
    cnn_tensor_free(wrong);
    cnn_model_free(m);
    cnn_tensor_free(calib);
}

/* The MLPerf Tiny models (Keras 2.4 .h5 graphs, in the repository): every
 * layer quantizes; int8 agrees with float on most random inputs. */
static void mlperf(const char *path, float scale, int min_agree)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_load_keras(path, &m, NULL));
    if (!m)
        return;
    cnn_shape s = cnn_model_input_shape(m);
    cnn_tensor *calib = test_random_images(32, s.dims[0], s.dims[1], s.dims[2], scale, 21);
    cnn_tensor *x = test_random_images(20, s.dims[0], s.dims[1], s.dims[2], scale, 22);
    cnn_qmodel *q = NULL;
    CHECK_OK(cnn_qmodel_create(&q, m, calib, 0));
    if (q) {
        int64_t units = cnn_model_output_shape(m).dims[0];
        float *p = malloc((size_t)(20 * units) * sizeof(float));
        cnn_tensor *fp = NULL;
        CHECK_OK(cnn_qmodel_predict(q, x, p));
        CHECK_OK(cnn_model_predict(m, x, 20, &fp));
        int agree = 0;
        for (int e = 0; fp && e < 20; e++)
            agree += test_argmax(p + e * units, units) == test_argmax(fp->data + e * units, units);
        printf("%s: %d ops, int8 weights %lld bytes, arena %lld bytes, top-1 agreement %d/20\n",
               path, cnn_qmodel_op_count(q), (long long)cnn_qmodel_weight_bytes(q),
               (long long)cnn_qmodel_arena_bytes(q), agree);
        CHECK(agree >= min_agree);
        free(p);
        cnn_tensor_free(fp);
    }
    cnn_qmodel_free(q);
    cnn_tensor_free(calib);
    cnn_tensor_free(x);
    cnn_model_free(m);
}

/* Bytes of a saved quantized model. */
static unsigned char *saved_bytes(size_t *size)
{
    cnn_model *m = graph_model();
    cnn_tensor *calib = test_random_images(8, 10, 10, 3, 1.0f, 1);
    cnn_qmodel *q = NULL;
    unsigned char *b = NULL;
    char path[] = "/tmp/test_qgraph3_XXXXXX";
    int fd = mkstemp(path);
    if (m && calib && fd >= 0 && cnn_qmodel_create(&q, m, calib, 0) == CNN_OK &&
        cnn_qmodel_save(q, path) == CNN_OK) {
        FILE *f = fopen(path, "rb");
        fseek(f, 0, SEEK_END);
        *size = (size_t)ftell(f);
        rewind(f);
        b = malloc(*size);
        if (fread(b, 1, *size, f) != *size) {
            free(b);
            b = NULL;
        }
        fclose(f);
    }
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    cnn_qmodel_free(q);
    cnn_tensor_free(calib);
    cnn_model_free(m);
    return b;
}

static void fix_crc(unsigned char *b, size_t n)
{
    uint32_t c = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)(n - 4));
    for (int i = 0; i < 4; i++)
        b[n - 4 + i] = (unsigned char)(c >> (8 * i));
}

/* Truncated, damaged and inconsistent files are refused with the field. */
static void test_hostile_files(void)
{
    size_t n = 0;
    unsigned char *b = saved_bytes(&n);
    CHECK(b != NULL && n > 100);
    if (!b)
        return;
    cnn_qmodel *q = NULL;
    CHECK_OK(cnn_qmodel_load_memory(b, n, "good", &q));
    cnn_qmodel_free(q);
    /* every truncation fails cleanly */
    int ok = 0;
    for (size_t cut = 0; cut < n; cut++) {
        q = (cnn_qmodel *)1;
        cnn_status st = cnn_qmodel_load_memory(b, cut, "cut", &q);
        ok += st == CNN_ERR_FORMAT && q == NULL;
    }
    CHECK(ok == (int)n);
    CHECK_FAILS(cnn_qmodel_load_memory(b, 20, "cut.q", &q), CNN_ERR_FORMAT, "cut.q: checksum");
    unsigned char *c = malloc(n);
    memcpy(c, b, n);
    c[n / 2] ^= 0x40;
    CHECK_FAILS(cnn_qmodel_load_memory(c, n, "flip.q", &q), CNN_ERR_FORMAT,
                "flip.q: checksum: expected CRC-32");
    memcpy(c, b, n);
    c[8] = 2;
    CHECK_FAILS(cnn_qmodel_load_memory(c, n, "v.q", &q), CNN_ERR_FORMAT,
                "v.q: version: expected 1 to 1, got 2");
    memcpy(c, b, n);
    c[3] = 'M';
    CHECK_FAILS(cnn_qmodel_load_memory(c, n, "m.q", &q), CNN_ERR_FORMAT, "m.q: magic");
    /* fields changed with the checksum fixed: the first value's zero point
     * (magic 8, version 4, flags 4, two shapes of 4 + 3 * 4 and 4 + 4,
     * float parameters 8, value count 4, then size 8 and scale 4) */
    size_t zp_at = 8 + 4 + 4 + 16 + 8 + 8 + 4 + 8 + 4;
    memcpy(c, b, n);
    c[zp_at] = 200;
    c[zp_at + 1] = c[zp_at + 2] = c[zp_at + 3] = 0;
    fix_crc(c, n);
    CHECK_FAILS(cnn_qmodel_load_memory(c, n, "z.q", &q), CNN_ERR_FORMAT,
                "z.q: value 0: zero point: expected -128 to 127, got 200");
    memcpy(c, b, n);
    c[zp_at - 1] = 0x7f; /* scale's top byte: a NaN */
    c[zp_at - 2] = 0xff;
    fix_crc(c, n);
    CHECK_FAILS(cnn_qmodel_load_memory(c, n, "s.q", &q), CNN_ERR_FORMAT,
                "s.q: value 0: scale: expected a finite number above 0");
    /* the first op's kind (after the values and the output value and op count) */
    int nvalues = b[8 + 4 + 4 + 16 + 8 + 8];
    size_t kind_at = 8 + 4 + 4 + 16 + 8 + 8 + 4 + (size_t)nvalues * 16 + 8;
    memcpy(c, b, n);
    c[kind_at] = 99;
    fix_crc(c, n);
    CHECK_FAILS(cnn_qmodel_load_memory(c, n, "k.q", &q), CNN_ERR_FORMAT,
                "k.q: op 0: kind: expected 1 to 12, got 99");
    /* its input channels: the geometry no longer matches the input value */
    size_t c_at = kind_at + 4 + 4 + 1 /* "a" */ + 4 + 4 + 4 + 8;
    memcpy(c, b, n);
    c[c_at] = 4;
    fix_crc(c, n);
    CHECK_FAILS(cnn_qmodel_load_memory(c, n, "g.q", &q), CNN_ERR_FORMAT,
                "g.q: op 0 'a': geometry: expected h * w * c = 300");
    CHECK(q == NULL);
    /* random mutations with the checksum fixed: loaded or refused as a
     * format error, never anything else; a model that loads runs */
    cnn_rng r;
    cnn_rng_seed(&r, 77);
    int clean = 0, loaded = 0;
    const int rounds = 3000;
    for (int t = 0; t < rounds; t++) {
        memcpy(c, b, n);
        int flips = 1 + (int)(cnn_rng_uniform(&r) * 4);
        for (int f = 0; f < flips; f++) {
            size_t at = 12 + (size_t)(cnn_rng_uniform(&r) * (double)(n - 16));
            c[at] = (unsigned char)(cnn_rng_uniform(&r) * 256);
        }
        fix_crc(c, n);
        q = NULL;
        cnn_status st = cnn_qmodel_load_memory(c, n, "mut.q", &q);
        clean += (st == CNN_OK && q) || (st == CNN_ERR_FORMAT && !q);
        if (q) {
            cnn_shape in = cnn_qmodel_input_shape(q);
            cnn_tensor *x = test_random_images(2, in.dims[0], in.dims[1], in.dims[2], 1.0f, 5);
            cnn_shape os = cnn_qmodel_output_shape(q);
            float *out = malloc((size_t)(2 * os.dims[0]) * sizeof(float));
            if (in.rank == 3 && os.rank == 1 && x && out &&
                cnn_qmodel_arena_bytes(q) < (1 << 20))
                loaded += cnn_qmodel_predict(q, x, out) == CNN_OK;
            free(out);
            cnn_tensor_free(x);
            cnn_qmodel_free(q);
        }
    }
    printf("hostile files: %d mutated files, %d loaded and ran\n", rounds, loaded);
    CHECK(clean == rounds);
    free(c);
    free(b);
}

int main(void)
{
    test_graph();
    test_refusals();
    mlperf("models/mlperf-tiny/mlperf-tiny-resnet8-cifar10.h5", 255.0f, 14);
    mlperf("models/mlperf-tiny/mlperf-tiny-mobilenetv1-vww96.h5", 1.0f, 14);
    test_hostile_files();
    return test_finish("test_qgraph");
}
