/* Trains the TensorFlow tutorial convnet on Fashion-MNIST:
 *   Conv2D(32, 5x5, same, relu) -> MaxPool 2x2 -> Conv2D(64, 5x5, same, relu)
 *   -> MaxPool 2x2 -> Flatten -> Dense(1024, relu) -> Dropout(0.4) -> Dense(10, softmax)
 * usage: fashion_mnist [DATA_DIR] [EPOCHS] [THREADS] [DTYPE_POLICY] [SEED]
 * DATA_DIR defaults to /usr/share/datasets/fashion-mnist (Debian package
 * dataset-fashion-mnist); DTYPE_POLICY is float32 (the default) or
 * mixed_bfloat16; SEED (default 42) sets the initial weights, the shuffling
 * and the dropout masks (bench/bf16_accuracy.py trains with several). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cnn.h"

static int fail(const char *what)
{
    fprintf(stderr, "fashion_mnist: %s: %s\n", what, cnn_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    int epochs = argc > 2 ? atoi(argv[2]) : 3;
    int threads = argc > 3 ? atoi(argv[3]) : 0;
    cnn_dtype_policy policy = CNN_DTYPE_POLICY_FLOAT32;
    if (argc > 4 && cnn_dtype_policy_from_name(argv[4], &policy))
        return fail("the dtype policy");
    unsigned long long seed = argc > 5 ? strtoull(argv[5], NULL, 10) : 42;
    cnn_tensor *x = NULL, *y = NULL, *tx = NULL, *ty = NULL;
    if (cnn_dataset_load_mnist(dir, &x, &y, &tx, &ty))
        return fail("loading the data");
    printf("train images %lldx%lldx%lldx%lld, test images %lld\n", (long long)x->dims[0],
           (long long)x->dims[1], (long long)x->dims[2], (long long)x->dims[3],
           (long long)tx->dims[0]);

    cnn_model *m = NULL;
    cnn_model_create(&m, cnn_shape_hwc(28, 28, 1));
    cnn_model_set_seed(m, seed);
    cnn_model_set_threads(m, threads);
    cnn_model_set_dtype_policy(m, policy);
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
    if (cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SOFTMAX)))
        return fail("building the model");
    cnn_model_print_summary(m, stdout);

    if (cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                         .optimizer = cnn_adam())))
        return fail("compile");
    printf("training on %d thread(s), dtype policy %s\n", cnn_model_threads(m),
           cnn_dtype_policy_name(policy));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cnn_status st = cnn_model_fit(m, x, y,
                                  cnn_fit(.epochs = epochs, .batch_size = 64,
                                          .validation_split = 1.0f / 12,
                                          .progress = cnn_progress_console,
                                          .progress_user = stdout),
                                  NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (st)
        return fail("fit");
    double loss, accuracy;
    if (cnn_model_evaluate(m, tx, ty, 256, &loss, &accuracy))
        return fail("evaluate");
    printf("training time: %.1f s for %d epoch(s)\n",
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9, epochs);
    printf("test loss: %.4f - test accuracy: %.4f\n", loss, accuracy);
    cnn_model_free(m);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_tensor_free(tx);
    cnn_tensor_free(ty);
    return 0;
}
