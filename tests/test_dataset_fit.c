/* Training from a folder of images (cnn_model_fit_dataset) gives the same
 * weights, bit for bit, as cnn_model_fit on the same images held in memory
 * in the folder listing's order (class, then file name), whatever the
 * number of decode threads; a resumed run continues with the batch it
 * stopped at; bad files stop training naming the file, or are skipped and
 * listed. Images: synthetic ones written here, and a slice of the real
 * Fashion-MNIST written as PNG files when the data set is installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

/* The demo network (examples/tutorial_convnet.model), for rows x cols
 * grey images and `classes` outputs; dense units smaller for speed. */
static cnn_model *demo_model(int rows, int cols, int classes, int dense)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(rows, cols, 1)));
    if (!m)
        return NULL;
    cnn_model_set_seed(m, 42);
    cnn_model_set_threads(m, 2);
    cnn_model_add_conv2d(m, cnn_conv2d(.filters = 8, .kernel_size = {5, 5},
                                       .padding = CNN_PADDING_SAME,
                                       .activation = CNN_ACTIVATION_RELU));
    cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2}));
    cnn_model_add_conv2d(m, cnn_conv2d(.filters = 16, .kernel_size = {5, 5},
                                       .padding = CNN_PADDING_SAME,
                                       .activation = CNN_ACTIVATION_RELU));
    cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2}));
    cnn_model_add_flatten(m, cnn_flatten());
    cnn_model_add_dense(m, cnn_dense(.units = dense, .activation = CNN_ACTIVATION_RELU));
    cnn_model_add_dropout(m, cnn_dropout(.rate = 0.4f));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = classes,
                                              .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam())));
    return m;
}

static uint32_t checksum(const cnn_model *m)
{
    uint32_t c = 0;
    CHECK_OK(cnn_model_checksum(m, &c));
    return c;
}

/* n images of rows x cols in `classes` class folders "class_K", file
 * names "NNNN.png" (sorted by index within a class); x/y receive them in
 * the listing's order: class, then file name. */
static void make_folder(const char *rel, const uint8_t *pixels, const int *labels, int n,
                        int rows, int cols, int classes, const char *const *names,
                        cnn_tensor **x, cnn_tensor **y)
{
    mkdir(test_tmp(rel), 0755);
    for (int k = 0; k < classes; k++) {
        char d[256];
        snprintf(d, sizeof d, "%s/%s", rel, names[k]);
        mkdir(test_tmp(d), 0755);
    }
    const int64_t dims[4] = {n, rows, cols, 1}, ydims[1] = {n};
    CHECK_OK(cnn_tensor_create(x, 4, dims));
    CHECK_OK(cnn_tensor_create(y, 1, ydims));
    int64_t out = 0;
    const int size = rows * cols;
    for (int k = 0; k < classes; k++)
        for (int i = 0; i < n; i++) {
            if (labels[i] != k)
                continue;
            char f[256];
            snprintf(f, sizeof f, "%s/%s/%05d.png", rel, names[k], i);
            CHECK_OK(cnn_image_save_png(test_tmp(f), pixels + (size_t)i * size, rows, cols, 1));
            for (int p = 0; p < size; p++)
                (*x)->data[out * size + p] = pixels[(size_t)i * size + p] / 255.0f;
            (*y)->data[out++] = (float)k;
        }
}

typedef struct {
    int stop_epoch;
    int64_t stop_step;
} stopper;

static bool stop_at(const cnn_progress *p, void *user)
{
    const stopper *s = user;
    return !(p->event == CNN_PROGRESS_BATCH_END && p->epoch == s->stop_epoch
             && p->step == s->stop_step);
}

/* The same weights from memory and from the folder; workers 1 and 3; a
 * run stopped mid-epoch and resumed. */
static void same_weights(const char *rel, cnn_tensor *x, cnn_tensor *y, int classes, int dense,
                         int epochs)
{
    const int rows = (int)x->dims[1], cols = (int)x->dims[2];
    cnn_fit_config fit = cnn_fit(.epochs = epochs, .batch_size = 16, .seed = 7,
                                 .augmentation = {.horizontal_flip = true, .max_shift = 2});
    cnn_model *a = demo_model(rows, cols, classes, dense);
    CHECK_OK(cnn_model_fit(a, x, y, fit, NULL));
    const uint32_t want = checksum(a);

    for (int workers = 1; workers <= 3; workers += 2) {
        cnn_dataset *ds = NULL;
        CHECK_OK(cnn_dataset_from_directory(
            test_tmp(rel),
            cnn_dataset_options(.no_shuffle = true, .image_size = {rows, cols},
                                .color_mode = CNN_COLOR_GRAYSCALE, .workers = workers),
            &ds));
        cnn_model *b = demo_model(rows, cols, classes, dense);
        cnn_history *h = NULL;
        CHECK_OK(cnn_model_fit_dataset(b, ds, NULL, fit, &h));
        CHECK(checksum(b) == want);
        int64_t n = 0;
        const float *wa = cnn_model_layer_weights(a, 5, 0, &n), *wb = cnn_model_layer_weights(b, 5, 0, &n);
        CHECK(wa && wb && memcmp(wa, wb, (size_t)n * sizeof *wa) == 0);
        CHECK(h && h->epochs == epochs && h->loss[0] > 0);
        cnn_history_free(h);
        cnn_model_free(b);

        /* stopped after step 3 of the last epoch, resumed from there */
        cnn_model *c = demo_model(rows, cols, classes, dense);
        stopper s = {epochs, 3};
        cnn_fit_config part = fit;
        part.progress = stop_at;
        part.progress_user = &s;
        CHECK(cnn_model_fit_dataset(c, ds, NULL, part, NULL) == CNN_ERR_INTERRUPTED);
        int epoch;
        int64_t step;
        cnn_model_training_position(c, &epoch, &step);
        CHECK(epoch == epochs - 1 && step == 3);
        cnn_fit_config rest = fit;
        rest.initial_epoch = epoch;
        rest.initial_step = step;
        CHECK_OK(cnn_model_fit_dataset(c, ds, NULL, rest, NULL));
        CHECK(checksum(c) == want);
        cnn_model_free(c);
        cnn_dataset_free(ds);
    }
    cnn_model_free(a);
}

static void test_synthetic(void)
{
    enum { N = 90, R = 12, C = 12, K = 3 };
    uint8_t *px = malloc((size_t)N * R * C);
    int labels[N];
    uint32_t s = 12345;
    for (int i = 0; i < N; i++) {
        labels[i] = (i * 7) % K;
        for (int p = 0; p < R * C; p++) {
            s = s * 1103515245u + 12345u;
            /* a class-dependent stripe plus noise */
            px[i * R * C + p] = (uint8_t)(((p % C) / 4 == labels[i] ? 160 : 20) + (s >> 27));
        }
    }
    const char *names[K] = {"circle", "square", "triangle"};
    cnn_tensor *x = NULL, *y = NULL;
    make_folder("synth", px, labels, N, R, C, K, names, &x, &y);
    free(px);
    if (x && y)
        same_weights("synth", x, y, K, 32, 2);

    /* validation from a second data set; its loss is the final model's */
    cnn_dataset *tr = NULL, *va = NULL;
    CHECK_OK(cnn_dataset_from_directory(
        test_tmp("synth"),
        cnn_dataset_options(.seed = 3, .validation_split = 0.2f, .subset = CNN_SUBSET_TRAINING,
                            .image_size = {R, C}, .color_mode = CNN_COLOR_GRAYSCALE),
        &tr));
    CHECK_OK(cnn_dataset_from_directory(
        test_tmp("synth"),
        cnn_dataset_options(.seed = 3, .validation_split = 0.2f, .subset = CNN_SUBSET_VALIDATION,
                            .image_size = {R, C}, .color_mode = CNN_COLOR_GRAYSCALE),
        &va));
    CHECK(cnn_dataset_count(tr) == 72 && cnn_dataset_count(va) == 18);
    cnn_model *m = demo_model(R, C, K, 32);
    cnn_history *h = NULL;
    CHECK_OK(cnn_model_fit_dataset(m, tr, va, cnn_fit(.epochs = 2, .batch_size = 16), &h));
    double l = 0, a = 0;
    CHECK_OK(cnn_model_evaluate_dataset(m, va, 16, &l, &a));
    CHECK(h && h->val_loss[1] == l && h->val_accuracy[1] == a);
    cnn_history_free(h);
    CHECK_FAILS(cnn_model_fit_dataset(m, tr, NULL, cnn_fit(.validation_split = 0.1f), NULL),
                CNN_ERR_INVALID_ARGUMENT, "validation is a second data set");
    /* the data set's size and the model's input must agree */
    cnn_model *wide = demo_model(R, C + 4, K, 8);
    CHECK_FAILS(cnn_model_fit_dataset(wide, tr, NULL, cnn_fit(0), NULL), CNN_ERR_SHAPE,
                "12x12x1 examples");
    cnn_model_free(wide);
    /* the queue and the decode buffers count in the budget */
    CHECK_OK(cnn_model_set_max_memory(m, 600 << 10));
    CHECK_FAILS(cnn_model_fit_dataset(m, tr, NULL, cnn_fit(.batch_size = 64), NULL),
                CNN_ERR_NO_MEMORY, "training from a data set needs");
    cnn_model_free(m);
    cnn_dataset_free(tr);
    cnn_dataset_free(va);

    /* RandomCrop on the stream: 12x12 images, 10x10 windows; the same
     * weights with 1 and 3 decode threads, and a resumed run equals them */
    uint32_t crop_sum[2] = {0, 0};
    for (int w = 0; w < 2; w++) {
        cnn_dataset *cds = NULL;
        CHECK_OK(cnn_dataset_from_directory(
            test_tmp("synth"),
            cnn_dataset_options(.no_shuffle = true, .image_size = {R, C}, .random_crop = {10, 10},
                                .color_mode = CNN_COLOR_GRAYSCALE, .workers = 1 + 2 * w),
            &cds));
        cnn_model *cm = demo_model(10, 10, K, 16);
        CHECK_OK(cnn_model_fit_dataset(cm, cds, NULL, cnn_fit(.epochs = 2, .batch_size = 16, .seed = 9),
                                       NULL));
        crop_sum[w] = checksum(cm);
        cnn_model_free(cm);
        cnn_dataset_free(cds);
    }
    CHECK(crop_sum[0] == crop_sum[1]);

    /* a bad file: an error naming it, or skipped and listed */
    FILE *f = fopen(test_tmp("synth/square/00000-bad.png"), "wb");
    if (f) {
        fputs("\x89PNG\r\n\x1a\n this is not an image", f);
        fclose(f);
    }
    cnn_dataset *ds = NULL;
    m = demo_model(R, C, K, 32);
    CHECK_OK(cnn_dataset_from_directory(
        test_tmp("synth"),
        cnn_dataset_options(.image_size = {R, C}, .color_mode = CNN_COLOR_GRAYSCALE), &ds));
    CHECK_FAILS(cnn_model_fit_dataset(m, ds, NULL, cnn_fit(.batch_size = 16), NULL),
                CNN_ERR_FORMAT, "00000-bad.png");
    cnn_dataset_free(ds);
    CHECK_OK(cnn_dataset_from_directory(test_tmp("synth"),
                                        cnn_dataset_options(.image_size = {R, C},
                                                            .color_mode = CNN_COLOR_GRAYSCALE,
                                                            .skip_bad_images = true),
                                        &ds));
    CHECK_OK(cnn_model_fit_dataset(m, ds, NULL, cnn_fit(.epochs = 2, .batch_size = 16), NULL));
    CHECK(cnn_dataset_skipped(ds) == 1);
    const char *bad = cnn_dataset_skipped_file(ds, 0);
    CHECK(bad && strstr(bad, "square/00000-bad.png"));
    cnn_dataset_free(ds);
    cnn_model_free(m);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

/* A slice of Fashion-MNIST as PNG files in folders named after the
 * classes: the same weights as from the IDX images in memory. */
static void test_fashion_slice(void)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    cnn_tensor *images = NULL, *labels = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir);
    if (access(path, R_OK) != 0) {
        test_skip("test_dataset_fit: Fashion-MNIST slice", "no /usr/share/datasets/fashion-mnist");
        return;
    }
    CHECK_OK(cnn_dataset_load_idx(path, &images));
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
    CHECK_OK(cnn_dataset_load_idx(path, &labels));
    if (!images || !labels)
        return;
    enum { N = 320 };
    uint8_t *px = malloc((size_t)N * 784);
    int lab[N];
    for (int i = 0; i < N; i++) {
        lab[i] = (int)labels->data[i];
        for (int p = 0; p < 784; p++)
            px[i * 784 + p] = (uint8_t)images->data[i * 784 + p];
    }
    /* the class names as folder names ("T-shirt/top" has a slash) */
    const char *names[10] = {"T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
                             "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    /* sorted folder names give the label order only if they sort as the
     * labels do: map them */
    cnn_tensor *x = NULL, *y = NULL;
    const char *sorted[10];
    int rank[10];
    for (int k = 0; k < 10; k++) {
        rank[k] = 0;
        for (int j = 0; j < 10; j++)
            rank[k] += strcmp(names[j], names[k]) < 0;
        sorted[rank[k]] = names[k];
    }
    for (int i = 0; i < N; i++)
        lab[i] = rank[lab[i]];
    make_folder("fashion", px, lab, N, 28, 28, 10, sorted, &x, &y);
    free(px);
    if (x && y)
        same_weights("fashion", x, y, 10, 64, 1);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_tensor_free(images);
    cnn_tensor_free(labels);
}

int main(void)
{
    CHECK(test_tmpdir("test_dataset_fit") != NULL);
    test_synthetic();
    test_fashion_slice();
    CHECK(test_tmpdir_remove());
    return test_finish("test_dataset_fit");
}
