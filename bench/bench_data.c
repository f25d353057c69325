/* Our side of the data-pipeline benchmark (bench/data_run.py): images per
 * second a cnn_dataset's stream delivers from a folder of class folders,
 * and training the demo network from a folder against from the IDX files.
 * One JSON line per run, as bench_cnn.c prints.
 *
 * usage: bench_data stream DIR ROWS COLS CHANNELS WORKERS BATCH
 *        bench_data train-folder DIR THREADS WORKERS STEPS
 *        bench_data train-idx IDX_DIR THREADS STEPS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cnn.h"
#include "io/dataset.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_data: %s: %s\n", what, cnn_last_error());
    return 1;
}

/* Every image of DIR once, in the listing's order, as a training epoch
 * would take them: decoded, resized and batched by WORKERS threads. */
static int stream(const char *dir, int rows, int cols, int channels, int workers, int batch)
{
    cnn_color_mode mode = channels == 1 ? CNN_COLOR_GRAYSCALE : channels == 4 ? CNN_COLOR_RGBA
                                                                              : CNN_COLOR_RGB;
    double t0 = now();
    cnn_dataset *ds;
    if (cnn_dataset_from_directory(dir, cnn_dataset_options(.image_size = {rows, cols},
                                                            .color_mode = mode, .workers = workers,
                                                            .no_shuffle = true),
                                   &ds))
        return fail(dir);
    const double scan = now() - t0;
    const int64_t n = cnn_dataset_count(ds);
    int64_t *order = malloc((size_t)n * sizeof *order);
    for (int64_t i = 0; order && i < n; i++)
        order[i] = i;
    cnn_dataset_stream_config c = {.order = order, .count = n, .batch = batch,
                                   .decode_bytes = (int64_t)256 << 20};
    t0 = now();
    if (!order || cnn_dataset_stream_start(ds, &c))
        return fail("stream");
    double checksum = 0;
    for (int64_t b = 0; b * batch < n; b++) {
        const float *x, *y;
        int got;
        if (cnn_dataset_stream_next(ds, &x, &y, &got))
            return fail("stream");
        checksum += x[0]; /* the consumer touches each batch */
    }
    const double t = now() - t0;
    cnn_dataset_stream_stop(ds);
    printf("{\"impl\": \"cnn\", \"kind\": \"stream\", \"images\": %lld, \"workers\": %d, "
           "\"scan_s\": %.4f, \"seconds\": %.4f, \"images_per_s\": %.1f, \"checksum\": %g}\n",
           (long long)n, workers, scan, t, (double)n / t, checksum);
    free(order);
    cnn_dataset_free(ds);
    return 0;
}

/* The demo network (examples/tutorial_convnet.model). */
static cnn_model *demo(int threads)
{
    cnn_model *m;
    if (cnn_model_create(&m, cnn_shape_hwc(28, 28, 1)))
        return NULL;
    cnn_model_set_threads(m, threads);
    cnn_model_add_conv2d(m, cnn_conv2d(.filters = 32, .kernel_size = {5, 5},
                                       .padding = CNN_PADDING_SAME,
                                       .activation = CNN_ACTIVATION_RELU));
    cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2}));
    cnn_model_add_conv2d(m, cnn_conv2d(.filters = 64, .kernel_size = {5, 5},
                                       .padding = CNN_PADDING_SAME,
                                       .activation = CNN_ACTIVATION_RELU));
    cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2}));
    cnn_model_add_flatten(m, cnn_flatten());
    cnn_model_add_dense(m, cnn_dense(.units = 1024, .activation = CNN_ACTIVATION_RELU));
    cnn_model_add_dropout(m, cnn_dropout(.rate = 0.4f));
    cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SOFTMAX));
    if (cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                         .optimizer = cnn_adam()))) {
        cnn_model_free(m);
        return NULL;
    }
    return m;
}

typedef struct {
    int64_t steps, done;
    double t_first; /* after the first step: the warm-up is not timed */
} step_limit;

static bool limit(const cnn_progress *p, void *user)
{
    step_limit *l = user;
    if (p->event != CNN_PROGRESS_BATCH_END)
        return true;
    if (++l->done == 1)
        l->t_first = now();
    return l->done < l->steps + 1;
}

static int train(const char *what, cnn_model *m, cnn_dataset *ds, const cnn_tensor *x,
                 const cnn_tensor *y, int threads, int workers, int64_t steps)
{
    step_limit l = {steps, 0, 0};
    cnn_fit_config fit = cnn_fit(.epochs = 1, .batch_size = 64, .seed = 1, .progress = limit,
                                 .progress_user = &l);
    cnn_status st = ds ? cnn_model_fit_dataset(m, ds, NULL, fit, NULL)
                       : cnn_model_fit(m, x, y, fit, NULL);
    if (st != CNN_OK && st != CNN_ERR_INTERRUPTED)
        return fail(what);
    const double t = now() - l.t_first;
    const int64_t timed = l.done - 1;
    printf("{\"impl\": \"cnn\", \"kind\": \"%s\", \"threads\": %d, \"workers\": %d, "
           "\"steps\": %lld, \"seconds\": %.4f, \"images_per_s\": %.1f}\n",
           what, threads, workers, (long long)timed, t, (double)timed * 64 / t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 8 && strcmp(argv[1], "stream") == 0)
        return stream(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]),
                      atoi(argv[7]));
    if (argc == 6 && strcmp(argv[1], "train-folder") == 0) {
        cnn_dataset *ds;
        if (cnn_dataset_from_directory(argv[2], cnn_dataset_options(.image_size = {28, 28},
                                                                    .color_mode = CNN_COLOR_GRAYSCALE,
                                                                    .workers = atoi(argv[4]),
                                                                    .seed = 1),
                                       &ds))
            return fail(argv[2]);
        cnn_model *m = demo(atoi(argv[3]));
        int rc = m ? train("train-folder", m, ds, NULL, NULL, atoi(argv[3]), atoi(argv[4]),
                           atoll(argv[5]))
                   : fail("model");
        cnn_model_free(m);
        cnn_dataset_free(ds);
        return rc;
    }
    if (argc == 5 && strcmp(argv[1], "train-idx") == 0) {
        cnn_tensor *x, *y;
        if (cnn_dataset_load_mnist(argv[2], &x, &y, NULL, NULL))
            return fail(argv[2]);
        cnn_model *m = demo(atoi(argv[3]));
        int rc = m ? train("train-idx", m, NULL, x, y, atoi(argv[3]), 0, atoll(argv[4]))
                   : fail("model");
        cnn_model_free(m);
        cnn_tensor_free(x);
        cnn_tensor_free(y);
        return rc;
    }
    fprintf(stderr, "usage: bench_data stream DIR ROWS COLS CHANNELS WORKERS BATCH\n"
                    "       bench_data train-folder DIR THREADS WORKERS STEPS\n"
                    "       bench_data train-idx IDX_DIR THREADS STEPS\n");
    return 2;
}
