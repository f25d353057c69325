/* Writes the seed corpora of the fuzz harnesses into fuzz/corpus/<harness>/
 * (`make fuzz-corpus`; the output is committed). Small valid inputs of
 * every kind each parser reads, so the fuzzer starts from deep paths:
 *   idx/          every element type, ranks 1..4, gzip, two gzip members
 *   model/        unbuilt, built and compiled models with every layer kind
 *                 and optimizer (no .cnn suffix: .gitignore ignores those)
 *   description/  the example descriptions, the Keras JSON fixtures and
 *                 texts that use every syntax feature
 *   image/        PNG, JPEG, BMP, TGA, GIF, PGM, PPM (first byte: the
 *                 channels the harness asks for)
 *   keras/        a tiny model as .keras and .h5, uncompiled and compiled
 *                 with Adam's state, and truncated copies
 *   dataset/      trees of class folders and CSV lists (fuzz_dataset.c's
 *                 records) holding the image/ seeds, odd names, subfolders,
 *                 links, bad files, and every option
 *   keras_isolated/  the keras/ seeds, and two .h5 files that crash and
 *                 hang libhdf5 1.10.8 (as tests/test_keras_isolate.c makes them)
 *   decode/       every PNG and JPEG kind of tests/images/ (16-bit,
 *                 palette, interlaced, CMYK, progressive, ...) and the
 *                 image/ seeds of the other formats (two leading bytes:
 *                 the channels and the minimum size for DCT scaling)
 * Run from the repository root. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include <stb/stb_image_write.h>

#include "cnn.h"
#include "h5_heap.h"

static int failures;

static void fail(const char *what)
{
    fprintf(stderr, "gen_corpus: %s: %s\n", what, cnn_last_error());
    failures++;
}

static void write_bytes(const char *dir, const char *name, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "fuzz/corpus/%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "gen_corpus: cannot write %s\n", path);
        failures++;
    }
}

static void copy_file(const char *dir, const char *name, const char *src)
{
    FILE *f = fopen(src, "rb");
    if (!f) {
        fprintf(stderr, "gen_corpus: cannot read %s\n", src);
        failures++;
        return;
    }
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_bytes(dir, name, buf, n);
}

/* ---- IDX ---------------------------------------------------------------- */

static size_t idx_make(unsigned char *out, int type, int rank, const unsigned *dims,
                       const void *data, size_t data_len)
{
    out[0] = out[1] = 0;
    out[2] = (unsigned char)type;
    out[3] = (unsigned char)rank;
    for (int i = 0; i < rank; i++)
        for (int b = 0; b < 4; b++)
            out[4 + 4 * i + b] = (unsigned char)(dims[i] >> (24 - 8 * b));
    memcpy(out + 4 + 4 * rank, data, data_len);
    return 4 + 4 * (size_t)rank + data_len;
}

static size_t gzip_bytes(const unsigned char *in, size_t n, unsigned char *out, size_t cap)
{
    z_stream zs = {0};
    deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = (unsigned char *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    deflate(&zs, Z_FINISH);
    size_t got = zs.total_out;
    deflateEnd(&zs);
    return got;
}

static void gen_idx(void)
{
    unsigned char d[256], b[512], gz[1024], gz2[1024];
    for (int i = 0; i < 256; i++)
        d[i] = (unsigned char)(i * 37 + 11);
    size_t n = idx_make(b, 0x08, 3, (unsigned[]){2, 4, 3}, d, 24);
    write_bytes("idx", "ubyte_images", b, n);
    size_t g = gzip_bytes(b, n, gz, sizeof gz);
    write_bytes("idx", "ubyte_images.gz", gz, g);
    /* two gzip members: the header in one, the data in the other */
    size_t g1 = gzip_bytes(b, 16, gz2, sizeof gz2);
    g1 += gzip_bytes(b + 16, n - 16, gz2 + g1, sizeof gz2 - g1);
    write_bytes("idx", "two_members.gz", gz2, g1);
    unsigned char labels[6] = {0, 1, 2, 9, 3, 1};
    n = idx_make(b, 0x08, 1, (unsigned[]){6}, labels, 6);
    write_bytes("idx", "ubyte_labels", b, n);
    n = idx_make(b, 0x09, 2, (unsigned[]){2, 3}, d, 6);
    write_bytes("idx", "sbyte", b, n);
    n = idx_make(b, 0x0B, 2, (unsigned[]){3, 2}, d, 12);
    write_bytes("idx", "int16", b, n);
    n = idx_make(b, 0x0C, 1, (unsigned[]){4}, d, 16);
    write_bytes("idx", "int32", b, n);
    /* float32 1.5, -2.0, 0.25; float64 3.25, -1e10 (big-endian) */
    const unsigned char f32[12] = {0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0, 0x3e, 0x80, 0, 0};
    n = idx_make(b, 0x0D, 1, (unsigned[]){3}, f32, 12);
    write_bytes("idx", "float32", b, n);
    const unsigned char f64[16] = {0x40, 0x0a, 0, 0, 0, 0, 0, 0,
                                   0xc2, 0x02, 0xa0, 0x5f, 0x20, 0, 0, 0};
    n = idx_make(b, 0x0E, 2, (unsigned[]){1, 2}, f64, 16);
    write_bytes("idx", "float64", b, n);
    n = idx_make(b, 0x08, 4, (unsigned[]){1, 2, 2, 3}, d, 12);
    write_bytes("idx", "rank4", b, n);
}

/* ---- Model files ----------------------------------------------------------- */

static void save_model(cnn_model *m, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "fuzz/corpus/model/%s", name);
    if (cnn_model_save(m, path) != CNN_OK)
        fail(name);
}

/* One of every layer kind, on a small image. */
static cnn_model *every_kind(void)
{
    cnn_model *m = NULL;
    if (cnn_model_create(&m, cnn_shape_hwc(6, 5, 2)) || cnn_model_set_seed(m, 3)
        || cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {3, 2},
                                              .padding = CNN_PADDING_SAME,
                                              .activation = CNN_ACTIVATION_RELU))
        || cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {2, 2},
                                              .dilation_rate = {2, 1}, .no_bias = true,
                                              .name = "dilated"))
        || cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2},
                                                     .padding = CNN_PADDING_SAME))
        || cnn_model_add_activation(m, cnn_activation_layer(.activation = CNN_ACTIVATION_TANH))
        || cnn_model_add_average_pooling2d(m, cnn_pool2d(.pool_size = {1, 2}, .strides = {1, 1}))
        || cnn_model_add_flatten(m, cnn_flatten())
        || cnn_model_add_dropout(m, cnn_dropout(.rate = 0.25f, .seed = 9))
        || cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX)))
        fail("every_kind");
    return m;
}

static cnn_model *global_pools(void)
{
    cnn_model *m = NULL;
    if (cnn_model_create(&m, cnn_shape_hwc(4, 4, 1))
        || cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {2, 2},
                                              .strides = {2, 2}))
        || cnn_model_add_global_max_pooling2d(m, cnn_global_pool2d())
        || cnn_model_add_dense(m, cnn_dense(.units = 1, .activation = CNN_ACTIVATION_SIGMOID)))
        fail("global_pools");
    return m;
}

/* Trains one step so the optimizer state and position are non-trivial. */
static void train_step(cnn_model *m, cnn_compile_config cfg, int classes)
{
    if (cnn_model_compile(m, cfg)) {
        fail("compile");
        return;
    }
    cnn_shape in = cnn_model_input_shape(m);
    int64_t dims[4] = {4, in.dims[0], in.dims[1], in.dims[2]};
    cnn_tensor *x = NULL, *y = NULL;
    if (cnn_tensor_create(&x, in.rank + 1, dims) || cnn_tensor_create(&y, 1, (int64_t[]){4})) {
        fail("tensors");
        return;
    }
    for (int64_t i = 0; i < cnn_tensor_size(x); i++)
        x->data[i] = (float)((i * 7) % 10) / 10.0f;
    for (int i = 0; i < 4; i++)
        y->data[i] = (float)(i % classes);
    if (cnn_model_fit(m, x, y, cnn_fit(.epochs = 1, .batch_size = 2, .seed = 5), NULL))
        fail("fit");
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

static void gen_models(void)
{
    cnn_model *m = every_kind();
    save_model(m, "unbuilt");
    cnn_model_free(m);

    m = every_kind();
    train_step(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                              .optimizer = cnn_adam()), 3);
    save_model(m, "every_kind_adam");
    cnn_model_free(m);

    m = global_pools();
    train_step(m, cnn_compile(.loss = CNN_LOSS_BINARY_CROSSENTROPY,
                              .optimizer = cnn_sgd(.momentum = 0.9f, .nesterov = true)), 2);
    save_model(m, "global_pool_sgd");
    cnn_model_free(m);

    m = global_pools();
    if (cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_MSE, .optimizer = cnn_rmsprop())))
        fail("compile rmsprop");
    save_model(m, "global_pool_rmsprop_untrained");
    cnn_model_free(m);

    /* flat input, built but not compiled */
    m = NULL;
    cnn_tensor *out = NULL, *x = NULL;
    if (cnn_model_create(&m, cnn_shape_flat(5))
        || cnn_model_add_dense(m, cnn_dense(.units = 4, .activation = CNN_ACTIVATION_RELU))
        || cnn_model_add_dense(m, cnn_dense(.units = 2, .name = "out"))
        || cnn_tensor_create(&x, 2, (int64_t[]){1, 5}) || cnn_model_predict(m, x, 1, &out))
        fail("flat");
    save_model(m, "flat_built");
    /* the same with class names (the optional section, flags bit 3) */
    if (cnn_model_set_class_names(m, (const char *[]){"cat", "caf\xc3\xa9"}, 2))
        fail("class names");
    save_model(m, "flat_class_names");
    cnn_tensor_free(x);
    cnn_tensor_free(out);
    cnn_model_free(m);

    m = NULL;
    if (cnn_model_create(&m, cnn_shape_hwc(3, 3, 1)))
        fail("empty");
    save_model(m, "no_layers");
    cnn_model_free(m);
}

/* ---- Descriptions ------------------------------------------------------------ */

static void gen_descriptions(void)
{
    copy_file("description", "lenet5.model", "examples/lenet5.model");
    copy_file("description", "seed.model", "examples/seed.model");
    copy_file("description", "tutorial_convnet.model", "examples/tutorial_convnet.model");
    copy_file("description", "keras2_mnist.json", "tests/data/keras2_mnist.json");
    copy_file("description", "keras3_mnist.json", "tests/data/keras3_mnist.json");
    static const char every[] =
        "\xEF\xBB\xBF# every layer kind and syntax feature\r\n"
        "input shape=(12, 10, 3)\r\n"
        "Conv2D 4 (3, 3) 1 same activation=relu name=\"first conv\"\n"
        "Conv2D filters=4 kernel_size=[2,3] dilation_rate = 2 use_bias=False\n"
        "MaxPool2D pool_size=2 strides=(2, 1) padding=SAME\n"
        "Activation 'tanh'   # a comment\n"
        "AvgPool2D 2 1 valid\n"
        "\n"
        "GlobalAvgPool2D name=gap\n"
        "Dropout 0.5 seed=None\n"
        "Dense units=6 activation=None use_bias=true\n"
        "Dropout rate=1e-1 seed=7\n"
        "Dense 2 softmax\n";
    write_bytes("description", "every_kind.model", every, sizeof every - 1);
    static const char flat[] = "Input shape=784\nDense 16 relu\nDense 10 sigmoid\n";
    write_bytes("description", "flat.model", flat, sizeof flat - 1);
    static const char global_max[] =
        "InputLayer shape=8,8,1\nConv2D 2 3 strides=2\nGlobalMaxPooling2D\nFlatten\n"
        "Dense 1\n";
    write_bytes("description", "global_max.model", global_max, sizeof global_max - 1);
    static const char legacy[] =
        "{\"class_name\": \"Sequential\", \"config\": [\n"
        " {\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\", \"filters\": 2,"
        " \"kernel_size\": [3, 3], \"strides\": [1, 1], \"padding\": \"valid\","
        " \"activation\": \"relu\", \"use_bias\": true, \"batch_input_shape\": [null, 6, 6, 1],"
        " \"dilation_rate\": [1, 1], \"data_format\": \"channels_last\"}},\n"
        " {\"class_name\": \"AveragePooling2D\", \"config\": {\"pool_size\": [2, 2],"
        " \"strides\": null, \"padding\": \"same\"}},\n"
        " {\"class_name\": \"GlobalAveragePooling2D\", \"config\": {\"name\": \"g\"}},\n"
        " {\"class_name\": \"Dropout\", \"config\": {\"rate\": 0.3, \"seed\": null}},\n"
        " {\"class_name\": \"Dense\", \"config\": {\"units\": 3, \"activation\":"
        " {\"module\": \"keras.activations\", \"class_name\": \"function\","
        " \"config\": \"softmax\"}}}]}\n";
    write_bytes("description", "legacy.json", legacy, sizeof legacy - 1);
    static const char build_shape[] =
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\","
        " \"build_input_shape\": [null, 10], \"layers\": ["
        "{\"class_name\": \"Dense\", \"config\": {\"units\": 4, \"activation\": \"tanh\","
        " \"kernel_initializer\": {\"class_name\": \"GlorotUniform\"}, \"trainable\": true,"
        " \"dtype\": \"float32\"}},"
        "{\"class_name\": \"Activation\", \"config\": {\"activation\": \"sigmoid\"}}]}}\n";
    write_bytes("description", "build_input_shape.json", build_shape, sizeof build_shape - 1);
}

/* ---- Keras files --------------------------------------------------------------- */

/* Input 6x6x1, Conv2D 2 3x3, Flatten, Dense 3: a few KiB in either format. */
static cnn_model *tiny_keras(void)
{
    cnn_model *m = NULL;
    if (cnn_model_create(&m, cnn_shape_hwc(6, 6, 1)) || cnn_model_set_seed(m, 7)
        || cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {3, 3},
                                              .activation = CNN_ACTIVATION_RELU))
        || cnn_model_add_flatten(m, cnn_flatten())
        || cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX)))
        fail("tiny_keras");
    return m;
}

/* Saves m as name.keras and name.h5, and a copy of each cut in half. */
static void save_keras_pair(cnn_model *m, const char *name)
{
    static const char *const ext[2] = {"keras", "h5"};
    for (int k = 0; k < 2; k++) {
        char path[512], cut[128];
        snprintf(path, sizeof path, "fuzz/corpus/keras/%s.%s", name, ext[k]);
        if ((k == 0 ? cnn_model_save_keras(m, path) : cnn_model_save_keras_h5(m, path))) {
            fail(path);
            continue;
        }
        FILE *f = fopen(path, "rb");
        static unsigned char buf[1 << 16];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f)
            fclose(f);
        snprintf(cut, sizeof cut, "%s_truncated.%s", name, ext[k]);
        write_bytes("keras", cut, buf, n / 2);
    }
}

static void gen_keras(void)
{
    cnn_model *m = tiny_keras();
    cnn_tensor *x = NULL, *out = NULL;
    if (cnn_tensor_create(&x, 4, (int64_t[]){1, 6, 6, 1}) || cnn_model_predict(m, x, 1, &out))
        fail("tiny_keras build");
    cnn_tensor_free(x);
    cnn_tensor_free(out);
    save_keras_pair(m, "tiny");
    cnn_model_free(m);

    m = tiny_keras();
    train_step(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                              .optimizer = cnn_adam()), 3);
    save_keras_pair(m, "tiny_adam");
    cnn_model_free(m);
}

/* ---- Images ------------------------------------------------------------------ */

typedef struct {
    unsigned char buf[1 << 16];
    size_t n;
} mem_sink;

static void to_mem(void *ctx, void *data, int size)
{
    mem_sink *s = ctx;
    if (s->n + (size_t)size <= sizeof s->buf) {
        memcpy(s->buf + s->n, data, (size_t)size);
        s->n += (size_t)size;
    }
}

/* The harness reads the channels from the first byte: 0 as stored, 1, 3. */
static void write_image(const char *name, unsigned char channel_byte, const void *p, size_t n)
{
    unsigned char *b = malloc(n + 1);
    b[0] = channel_byte;
    memcpy(b + 1, p, n);
    write_bytes("image", name, b, n + 1);
    free(b);
}

static void gen_images(void)
{
    enum { W = 5, H = 4 };
    unsigned char px[W * H * 4];
    for (int i = 0; i < W * H * 4; i++)
        px[i] = (unsigned char)(i * 13 + 7);
    static mem_sink s;
    struct {
        const char *name;
        int comp;
        char kind;
        unsigned char channel_byte;
    } outs[] = {
        {"grey.png", 1, 'p', 0},  {"grey_alpha.png", 2, 'p', 1}, {"rgb.png", 3, 'p', 2},
        {"rgba.png", 4, 'p', 0},  {"rgb.jpg", 3, 'j', 0},        {"grey.jpg", 1, 'j', 2},
        {"rgb.bmp", 3, 'b', 1},   {"rgba.bmp", 4, 'b', 0},       {"rgb.tga", 3, 't', 0},
        {"grey.tga", 1, 't', 2},
    };
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        s.n = 0;
        int ok = 0;
        switch (outs[i].kind) {
        case 'p': ok = stbi_write_png_to_func(to_mem, &s, W, H, outs[i].comp, px, W * outs[i].comp); break;
        case 'j': ok = stbi_write_jpg_to_func(to_mem, &s, W, H, outs[i].comp, px, 90); break;
        case 'b': ok = stbi_write_bmp_to_func(to_mem, &s, W, H, outs[i].comp, px); break;
        case 't': ok = stbi_write_tga_to_func(to_mem, &s, W, H, outs[i].comp, px); break;
        }
        if (!ok) {
            fprintf(stderr, "gen_corpus: cannot encode %s\n", outs[i].name);
            failures++;
            continue;
        }
        write_image(outs[i].name, outs[i].channel_byte, s.buf, s.n);
    }
    static const char pgm[] = "P5\n# grey\n3 2\n255\n\x00\x40\x80\xc0\xff\x10";
    write_image("grey.pgm", 0, pgm, sizeof pgm - 1);
    static const char ppm[] = "P6 2 1 255\n\xff\x00\x00\x00\xff\x00";
    write_image("rgb.ppm", 1, ppm, sizeof ppm - 1);
    /* the classic 1x1 GIF89a */
    static const unsigned char gif[] = {
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00,
        0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02,
        0x44, 0x01, 0x00, 0x3b};
    write_image("one.gif", 2, gif, sizeof gif);
}


/* ---- Data sets (fuzz_dataset.c) -------------------------------------------- */

typedef struct {
    unsigned char b[1 << 16];
    size_t n;
} ds_input;

/* The harness's record: [kind][name length][name][content length LE][content]. */
static void ds_record(ds_input *in, int kind, const char *name, const void *content,
                      size_t len)
{
    size_t nl = strlen(name);
    if (in->n + 4 + nl + len > sizeof in->b) {
        fprintf(stderr, "gen_corpus: data set seed too big\n");
        failures++;
        return;
    }
    in->b[in->n++] = (unsigned char)kind;
    in->b[in->n++] = (unsigned char)nl;
    memcpy(in->b + in->n, name, nl);
    in->n += nl;
    in->b[in->n++] = (unsigned char)(len & 0xff);
    in->b[in->n++] = (unsigned char)(len >> 8);
    memcpy(in->b + in->n, content, len);
    in->n += len;
}

/* An image/ seed without its leading channel byte. */
static size_t image_seed(const char *name, unsigned char *out, size_t cap)
{
    char path[256];
    snprintf(path, sizeof path, "fuzz/corpus/image/%s", name);
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(out, 1, cap, f) : 0;
    if (f)
        fclose(f);
    if (n < 2) {
        fprintf(stderr, "gen_corpus: cannot read %s\n", path);
        failures++;
        return 0;
    }
    memmove(out, out + 1, n - 1);
    return n - 1;
}

/* Kinds: 0 class folder, 1 file, 2 subfolder, 3 link, 4 CSV text or a
 * stray file; a file's extension is extensions[kind / 5] (.png, .jpg,
 * .jpeg, .bmp, .gif, .PNG, .JpG, .txt, none). */
enum { K_CLASS = 0, K_PNG = 1, K_JPG = 6, K_JPEG = 11, K_BMP = 16, K_GIF = 21, K_PNG_UPPER = 26,
       K_TXT = 36, K_SUBDIR = 2, K_LINK = 43, K_LINK_PNG = 3, K_CSV = 4 };

static void ds_header(ds_input *in, unsigned char b0, unsigned char b1, unsigned char b2,
                      unsigned char b3)
{
    in->n = 0;
    in->b[in->n++] = b0;
    in->b[in->n++] = b1;
    in->b[in->n++] = b2;
    in->b[in->n++] = b3;
}

static void gen_dataset(void)
{
    static unsigned char png[4096], jpg[4096], bmp[4096], gif[256], grey[4096];
    size_t npng = image_seed("rgb.png", png, sizeof png), njpg = image_seed("rgb.jpg", jpg, sizeof jpg),
           nbmp = image_seed("rgb.bmp", bmp, sizeof bmp), ngif = image_seed("one.gif", gif, sizeof gif),
           ngrey = image_seed("grey.png", grey, sizeof grey);
    static ds_input in;

    /* two classes (one UTF-8 name), every format, int labels, RGB 4x4 */
    ds_header(&in, 0x00, 3, 3, 1);
    ds_record(&in, K_CLASS, "cat", NULL, 0);
    ds_record(&in, K_PNG, "a", png, npng);
    ds_record(&in, K_JPG, "b", jpg, njpg);
    ds_record(&in, K_CLASS, "caf\xc3\xa9", NULL, 0);
    ds_record(&in, K_BMP, "c", bmp, nbmp);
    ds_record(&in, K_GIF, "d", gif, ngif);
    ds_record(&in, K_JPEG, "e", jpg, njpg);
    write_bytes("dataset", "two_classes", in.b, in.n);

    /* binary, grayscale, skip bad images, no shuffle: subfolders, a hidden
     * class, a text file, a stray root file, a bad PNG, odd bytes in names */
    ds_header(&in, 0x04 | 0x18 | 0x40 | 0x80, 1, 2, 7);
    ds_record(&in, K_CLASS, "no", NULL, 0);
    ds_record(&in, K_PNG_UPPER, "x\x01\x7f\xff", grey, ngrey);
    ds_record(&in, K_SUBDIR, "deeper", NULL, 0);
    ds_record(&in, K_PNG, "y", png, npng);
    ds_record(&in, K_TXT, "notes", "not an image", 12);
    ds_record(&in, K_CLASS, "yes", NULL, 0);
    ds_record(&in, K_PNG, "bad", png, npng / 2);
    ds_record(&in, K_JPG, "z", jpg, njpg);
    ds_record(&in, K_CLASS, ".hidden", NULL, 0);
    ds_record(&in, K_PNG, "h", png, npng);
    ds_record(&in, K_CSV, "stray", png, npng);
    write_bytes("dataset", "binary_grey_skip", in.b, in.n);

    /* categorical, RGBA, a 0.5 split, a cache, two decode threads, a
     * random crop, crop to aspect ratio, scale 1/127 */
    ds_header(&in, 0x02 | 0x10 | 0x20, 5 | 8, 2 | 0x10 | 0x20 | 0x40 | 0x80, 42);
    for (int k = 0; k < 3; k++) {
        char name[8];
        snprintf(name, sizeof name, "c%d", k);
        ds_record(&in, K_CLASS, name, NULL, 0);
        ds_record(&in, K_PNG, "p", png, npng);
        ds_record(&in, K_BMP, "q", bmp, nbmp);
    }
    write_bytes("dataset", "categorical_split_cache", in.b, in.n);

    /* links with follow_links: a loop to the class itself, one to its
     * parent, one to a file, one to another class */
    ds_header(&in, 0x00, 2, 2 | 0x08, 0);
    ds_record(&in, K_CLASS, "a", NULL, 0);
    ds_record(&in, K_PNG, "one", png, npng);
    ds_record(&in, K_CLASS, "b", NULL, 0);
    ds_record(&in, K_LINK, "loop", (unsigned char[]){0}, 1);
    ds_record(&in, K_LINK, "up", (unsigned char[]){1}, 1);
    ds_record(&in, K_LINK_PNG, "file", (unsigned char[]){3}, 1); /* made[1]: a/one.png */
    ds_record(&in, K_LINK, "other", (unsigned char[]){2}, 1);    /* made[0]: a */
    write_bytes("dataset", "links_followed", in.b, in.n);

    /* CSV list: header, class names, a comma in a path, spaces */
    static const char csv[] = "path,label\nimgs/a.png,dog\n  imgs/b,1.jpg , cat\nimgs/a.png,dog\n";
    ds_header(&in, 0x01, 3, 3, 5);
    ds_record(&in, K_CLASS, "imgs", NULL, 0);
    ds_record(&in, K_PNG, "a", png, npng);
    ds_record(&in, K_JPG, "b,1", jpg, njpg);
    ds_record(&in, K_CSV, "", csv, sizeof csv - 1);
    write_bytes("dataset", "csv_names", in.b, in.n);

    /* CSV list with integer labels, and a line without a comma */
    static const char csv_int[] = "x/p.bmp,0\nx/q.gif,2\n";
    ds_header(&in, 0x01 | 0x40, 2, 3, 9);
    ds_record(&in, K_SUBDIR, "x", NULL, 0);
    ds_record(&in, K_BMP, "p", bmp, nbmp);
    ds_record(&in, K_GIF, "q", gif, ngif);
    ds_record(&in, K_CSV, "", csv_int, sizeof csv_int - 1);
    write_bytes("dataset", "csv_indices", in.b, in.n);
    static const char csv_bad[] = "x/p.bmp 0\n";
    ds_record(&in, K_CSV, "", csv_bad, sizeof csv_bad - 1);
    write_bytes("dataset", "csv_malformed", in.b, in.n);

    /* a bad image without skip_bad_images: the stream's error */
    ds_header(&in, 0x00, 1, 1, 0);
    ds_record(&in, K_CLASS, "only", NULL, 0);
    ds_record(&in, K_PNG, "good", png, npng);
    ds_record(&in, K_JPG, "cut", jpg, njpg / 3);
    write_bytes("dataset", "bad_image", in.b, in.n);

    /* no class folders: files in the root only */
    ds_header(&in, 0x00, 1, 1, 0);
    ds_record(&in, K_PNG, "lonely", png, npng);
    write_bytes("dataset", "no_classes", in.b, in.n);
}

/* ---- Keras through the wall (fuzz_keras_isolated.c) ----------------------------- */

static size_t read_into(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap, f) : 0;
    if (f)
        fclose(f);
    if (!n) {
        fprintf(stderr, "gen_corpus: cannot read %s\n", path);
        failures++;
    }
    return n;
}

static void gen_keras_isolated(void)
{
    static const char *const seeds[] = {"tiny.h5", "tiny.keras", "tiny_adam.h5",
                                        "tiny_adam.keras", "tiny_truncated.h5"};
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
        char src[256];
        snprintf(src, sizeof src, "fuzz/corpus/keras/%s", seeds[i]);
        copy_file("keras_isolated", seeds[i], src);
    }
    /* libhdf5 1.10.8's known failures, made from tiny.h5's global heap
     * collection (16-byte header, then objects: index 2, refcount 2,
     * reserved 4, size 8, data padded to 8) */
    static unsigned char b[1 << 16];
    size_t n = read_into("fuzz/corpus/keras/tiny.h5", b, sizeof b);
    size_t first = 0, best = n ? h5_largest_heap_object(b, n, &first) : 0;
    if (!best) {
        fprintf(stderr, "gen_corpus: tiny.h5's global heap is empty\n");
        failures++;
        return;
    }
    /* the largest object claims 256 MiB: H5HG_read copies past the end */
    static unsigned char crash[1 << 16];
    memcpy(crash, b, n);
    for (int k = 0; k < 8; k++)
        crash[best + 8 + k] = (unsigned char)(((uint64_t)1 << 28) >> 8 * k);
    write_bytes("keras_isolated", "hdf5_crash_global_heap.h5", crash, n);
    /* the first object becomes free space of size 0: the deserializer
     * never advances */
    memset(b + first, 0, 16);
    write_bytes("keras_isolated", "hdf5_hang_free_space.h5", b, n);
}

/* ---- Decoding (fuzz_decode.c) -------------------------------------------- */

static void write_decode(const char *name, unsigned char channels, unsigned char min,
                         const char *src, size_t skip)
{
    FILE *f = fopen(src, "rb");
    static unsigned char buf[1 << 20];
    size_t n = f ? fread(buf + 2, 1, sizeof buf - 2, f) : 0;
    if (f)
        fclose(f);
    if (n <= skip) {
        fprintf(stderr, "gen_corpus: cannot read %s\n", src);
        failures++;
        return;
    }
    memmove(buf + 2, buf + 2 + skip, n - skip);
    buf[0] = channels;
    buf[1] = min;
    write_bytes("decode", name, buf, n - skip + 2);
}

static void gen_decode(void)
{
    static const struct {
        const char *file;
        unsigned char channels, min;
    } fixtures[] = {
        {"rgb.png", 0, 0},         {"rgba.png", 4, 0},         {"grey.png", 3, 0},
        {"grey_alpha.png", 2, 0},  {"palette.png", 1, 0},      {"palette_trns.png", 0, 0},
        {"grey1.png", 0, 0},       {"grey4.png", 1, 0},        {"grey16.png", 3, 0},
        {"rgb16.png", 4, 0},       {"interlaced.png", 0, 0},   {"rgb.jpg", 1, 0},
        {"grey.jpg", 3, 0},        {"cmyk.jpg", 0, 0},         {"progressive.jpg", 4, 9},
        {"exif_rotated.jpg", 0, 0}, {"big.jpg", 3, 20},       {"grey_trns.png", 4, 0},
        {"rgb_trns.png", 2, 0},    {"separate.jpg", 4, 0},     {"scans398.jpg", 3, 5},
    };
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        char src[256];
        snprintf(src, sizeof src, "tests/images/%s", fixtures[i].file);
        write_decode(fixtures[i].file, fixtures[i].channels, fixtures[i].min, src, 0);
    }
    /* the other formats, from the image harness's seeds (their first byte
     * is that harness's channel choice) */
    static const char *const others[] = {"rgb.bmp", "rgba.bmp", "rgb.tga", "grey.tga",
                                         "grey.pgm", "rgb.ppm", "one.gif"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        char src[256];
        snprintf(src, sizeof src, "fuzz/corpus/image/%s", others[i]);
        write_decode(others[i], (unsigned char)(i % 5), 0, src, 1);
    }
}

/* ---- Quantized model files (read by fuzz_model for their magic) ----------- */

static void save_quantized(cnn_model *m, const char *name)
{
    cnn_shape in = cnn_model_input_shape(m);
    int64_t dims[4] = {8, in.dims[0], in.dims[1], in.dims[2]};
    cnn_tensor *x = NULL;
    cnn_qmodel *q = NULL;
    char path[512];
    snprintf(path, sizeof path, "fuzz/corpus/model/%s", name);
    if (cnn_tensor_create(&x, in.rank + 1, dims)) {
        fail(name);
        return;
    }
    for (int64_t i = 0; i < cnn_tensor_size(x); i++)
        x->data[i] = (float)((i * 13) % 17) / 17.0f;
    if (cnn_qmodel_create(&q, m, x, 0) || cnn_qmodel_save(q, path))
        fail(name);
    cnn_qmodel_free(q);
    cnn_tensor_free(x);
}

/* A graph with every graph op int8 has: padding, Add (relu fused),
 * Concatenate, global average pooling. */
static cnn_model *quant_graph(void)
{
    cnn_model *m = NULL;
    if (cnn_model_create(&m, cnn_shape_hwc(5, 5, 2)) || cnn_model_set_seed(m, 4)
        || cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {3, 3},
                                              .padding = CNN_PADDING_SAME, .name = "a"))
        || cnn_model_add_zero_padding2d(m, cnn_zero_padding2d())
        || cnn_model_add_depthwise_conv2d(m, cnn_depthwise_conv2d(.kernel_size = {3, 3},
                                                                  .name = "b"))
        || cnn_model_set_next_inputs(m, 2, (const char *[]){"a", "b"})
        || cnn_model_add_add(m, cnn_merge(.name = "sum"))
        || cnn_model_add_relu(m, cnn_relu(.name = "r"))
        || cnn_model_set_next_inputs(m, 2, (const char *[]){"input_layer", "r"})
        || cnn_model_add_concatenate(m, cnn_concatenate())
        || cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d())
        || cnn_model_add_dense(m, cnn_dense(.units = 2, .activation = CNN_ACTIVATION_SOFTMAX)))
        fail("quant_graph");
    return m;
}

static void gen_quantized(void)
{
    cnn_model *(*makers[])(void) = {every_kind, global_pools, quant_graph};
    const char *names[] = {"quant_chain", "quant_pools", "quant_graph"};
    for (int i = 0; i < 3; i++) {
        cnn_model *m = makers[i]();
        if (m)
            save_quantized(m, names[i]);
        cnn_model_free(m);
    }
}

int main(void)
{
    const char *dirs[] = {"fuzz/corpus", "fuzz/corpus/idx", "fuzz/corpus/model",
                          "fuzz/corpus/description", "fuzz/corpus/image",
                          "fuzz/corpus/keras", "fuzz/corpus/decode",
                          "fuzz/corpus/dataset", "fuzz/corpus/keras_isolated"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        mkdir(dirs[i], 0755);
    gen_idx();
    gen_models();
    gen_quantized();
    gen_descriptions();
    gen_images();
    gen_keras();
    gen_decode();
    gen_dataset();
    gen_keras_isolated();
    if (failures)
        fprintf(stderr, "gen_corpus: %d failures\n", failures);
    return failures ? 1 : 0;
}
