/* The seed note's claim made real: a CNN trains on 2000x2000 colour photos,
 * which a dense network could not even hold (Flatten -> Dense(128) on such a
 * photo has 1.5 billion weights).
 *
 * It draws a small data set of 2000x2000x3 images of striped textures --
 * bright stripes on a dark ground in random tints, orientations
 * and phases, with noise; class 0 has fine stripes (period 6-12 pixels),
 * class 1 coarse ones (48-96) -- and trains
 *   Conv2D(32, 5x5, same, relu) -> MaxPool 2x2 -> Conv2D(64, 5x5, same, relu)
 *   -> MaxPool 2x2 -> GlobalAveragePooling2D -> Dense(2, softmax)
 * on them, printing the time per image and the peak memory.
 * usage: large_images [TRAIN_IMAGES] [EPOCHS] [THREADS] [SIZE] [LEARNING_RATE] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "cnn.h"

#define CLASSES 2

static uint64_t rng_state = 2024;
static double uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* One texture image of the given class into pixels (size x size x 3). */
static void draw(float *pixels, int size, int label)
{
    /* class 0: fine stripes; class 1: coarse stripes; any orientation */
    double period = label == 0 ? 6 + 6 * uniform() : 48 + 48 * uniform();
    double phase = uniform() * period;
    int orientation = (int)(uniform() * 3);
    double bright = 0.8 + 0.2 * uniform(), dark = 0.2 * uniform();
    float fg[3], bg[3];
    for (int c = 0; c < 3; c++) {
        double tint = 0.7 + 0.3 * uniform();
        fg[c] = (float)(bright * tint);
        bg[c] = (float)(dark * tint);
    }
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            double t = orientation == 0 ? y : orientation == 1 ? x : (x + y) * 0.70710678118654752;
            int on = fmod(t + phase, period) < period / 2;
            float noise = (float)(uniform() - 0.5) * 0.2f;
            for (int c = 0; c < 3; c++) /* centred on 0, as inputs are best fed */
                pixels[((int64_t)y * size + x) * 3 + c] = (on ? fg[c] : bg[c]) + noise - 0.5f;
        }
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int fail(const char *what)
{
    fprintf(stderr, "large_images: %s: %s\n", what, cnn_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    int n_train = argc > 1 ? atoi(argv[1]) : 12;
    int epochs = argc > 2 ? atoi(argv[2]) : 8;
    int threads = argc > 3 ? atoi(argv[3]) : 0;
    int size = argc > 4 ? atoi(argv[4]) : 2000;
    float lr = argc > 5 ? (float)atof(argv[5]) : 0.001f;
    int n_test = CLASSES * 3;
    if (n_train < 1 || epochs < 1 || size < 8) {
        fprintf(stderr, "usage: large_images [TRAIN_IMAGES] [EPOCHS] [THREADS] [SIZE]\n");
        return 2;
    }
    cnn_tensor *x = NULL, *y = NULL, *tx = NULL, *ty = NULL;
    if (cnn_tensor_create(&x, 4, (int64_t[]){n_train, size, size, 3})
        || cnn_tensor_create(&y, 1, (int64_t[]){n_train})
        || cnn_tensor_create(&tx, 4, (int64_t[]){n_test, size, size, 3})
        || cnn_tensor_create(&ty, 1, (int64_t[]){n_test}))
        return fail("allocating the images");
    int64_t pixels = (int64_t)size * size * 3;
    for (int i = 0; i < n_train; i++) {
        y->data[i] = (float)(i % CLASSES);
        draw(x->data + i * pixels, size, i % CLASSES);
    }
    for (int i = 0; i < n_test; i++) {
        ty->data[i] = (float)(i % CLASSES);
        draw(tx->data + i * pixels, size, i % CLASSES);
    }
    printf("%d training and %d test images of %dx%dx3 (%.0f MiB each as float32)\n", n_train,
           n_test, size, size, (double)pixels * 4 / (1 << 20));

    /* What a dense network would need for the same photo. */
    cnn_model *dense = NULL;
    cnn_model_create(&dense, cnn_shape_hwc(size, size, 3));
    cnn_model_add_flatten(dense, cnn_flatten());
    cnn_model_add_dense(dense, cnn_dense(.units = 128, .activation = CNN_ACTIVATION_RELU));
    printf("Flatten -> Dense(128) on this photo: %lld parameters (%.1f GB of weights)\n",
           (long long)cnn_model_param_count(dense), (double)cnn_model_param_count(dense) * 4 / 1e9);
    cnn_model_free(dense);

    cnn_model *m = NULL;
    cnn_model_create(&m, cnn_shape_hwc(size, size, 3));
    cnn_model_set_seed(m, 7);
    cnn_model_set_threads(m, threads);
    cnn_model_add_conv2d(m, cnn_conv2d(.filters = 32, .kernel_size = {5, 5},
                                       .padding = CNN_PADDING_SAME,
                                       .activation = CNN_ACTIVATION_RELU));
    cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2}));
    cnn_model_add_conv2d(m, cnn_conv2d(.filters = 64, .kernel_size = {5, 5},
                                       .padding = CNN_PADDING_SAME,
                                       .activation = CNN_ACTIVATION_RELU));
    cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2}));
    cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d());
    if (cnn_model_add_dense(m, cnn_dense(.units = CLASSES, .activation = CNN_ACTIVATION_SOFTMAX)))
        return fail("building the model");
    cnn_model_print_summary(m, stdout);
    cnn_memory_estimate e;
    cnn_model_estimate_memory(m, 1, &e);
    printf("computed need at batch 1: training %.0f MiB, inference %.0f MiB (plus the data set)\n",
           (double)e.training_total / (1 << 20), (double)e.inference_total / (1 << 20));

    if (cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                         .optimizer = cnn_adam(.learning_rate = lr))))
        return fail("compile");
    double t0 = now();
    if (cnn_model_fit(m, x, y, cnn_fit(.epochs = epochs, .batch_size = 1,
                                       .progress = cnn_progress_console, .progress_user = stdout),
                      NULL))
        return fail("fit");
    double train_s = now() - t0;
    double loss, acc;
    t0 = now();
    if (cnn_model_evaluate(m, tx, ty, 1, &loss, &acc))
        return fail("evaluate");
    double infer_s = now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("training: %.2f s per image (forward + backward + Adam step, %d thread(s))\n",
           train_s / ((double)n_train * epochs), cnn_model_threads(m));
    printf("inference: %.2f s per image\n", infer_s / n_test);
    printf("test accuracy on %d new images: %.4f (loss %.4f)\n", n_test, acc, loss);
    printf("peak RSS: %.0f MiB (the data set itself is %.0f MiB)\n", ru.ru_maxrss / 1024.0,
           (double)(n_train + n_test) * pixels * 4 / (1 << 20));
    cnn_model_free(m);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_tensor_free(tx);
    cnn_tensor_free(ty);
    return 0;
}
