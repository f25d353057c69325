/* Short training on a slice of the real Fashion-MNIST (Debian package
 * dataset-fashion-mnist, installed by scripts/deps.sh; $FASHION_MNIST names
 * another directory): 6000 training images, 2 epochs of a small convnet
 * must beat 0.80 test accuracy on 2000 test images (a linear model gets
 * about 0.80 only after many epochs). Then the demo network (the tutorial
 * convnet of examples/fashion_mnist.c) trains one epoch on the same 6000
 * images under float32 and under mixed_bfloat16: their accuracies on the
 * whole test set must agree within 1 point (measured: 0.7927 and 0.7964).
 * Without the data set the test is
 * skipped and counted (test_skip); a data set that is there but does not
 * load is a failure. */
#include <stdlib.h>
#include <sys/stat.h>

#include "test.h"

/* The tutorial convnet (examples/fashion_mnist.c) after one epoch. */
static double demo_accuracy(cnn_dtype_policy policy, const cnn_tensor *x, const cnn_tensor *y,
                            const cnn_tensor *tx, const cnn_tensor *ty)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(28, 28, 1)));
    CHECK_OK(cnn_model_set_seed(m, 42));
    CHECK_OK(cnn_model_set_dtype_policy(m, policy));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 32, .kernel_size = {5, 5},
                                                .padding = CNN_PADDING_SAME,
                                                .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2})));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 64, .kernel_size = {5, 5},
                                                .padding = CNN_PADDING_SAME,
                                                .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2})));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 1024, .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_dropout(m, cnn_dropout(.rate = 0.4f)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam())));
    CHECK_OK(cnn_model_fit(m, x, y, cnn_fit(.epochs = 1, .batch_size = 64), NULL));
    double loss = 0, acc = 0;
    CHECK_OK(cnn_model_evaluate(m, tx, ty, 256, &loss, &acc));
    cnn_model_free(m);
    return acc;
}

int main(void)
{
    const char *dir = getenv("FASHION_MNIST");
    if (!dir || !*dir)
        dir = "/usr/share/datasets/fashion-mnist";
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        char why[600];
        snprintf(why, sizeof why,
                 "%s not found; install the Debian package dataset-fashion-mnist or set"
                 " FASHION_MNIST",
                 dir);
        test_skip("a short training on the real Fashion-MNIST", why);
        return test_finish("test_fashion");
    }
    cnn_tensor *x = NULL, *y = NULL, *tx = NULL, *ty = NULL;
    cnn_status st = cnn_dataset_load_mnist(dir, &x, &y, &tx, &ty);
    if (st) {
        fprintf(stderr, "test_fashion: %s\n", cnn_last_error());
        CHECK(0);
        return test_finish("test_fashion");
    }
    cnn_tensor *sx, *sy, *stx, *sty;
    CHECK_OK(cnn_tensor_slice(x, 0, 6000, &sx));
    CHECK_OK(cnn_tensor_slice(y, 0, 6000, &sy));
    CHECK_OK(cnn_tensor_slice(tx, 0, 2000, &stx));
    CHECK_OK(cnn_tensor_slice(ty, 0, 2000, &sty));

    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(28, 28, 1)));
    cnn_model_set_seed(m, 1);
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 16, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME,
                                                .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2})));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam())));
    cnn_history *h = NULL;
    CHECK_OK(cnn_model_fit(m, sx, sy, cnn_fit(.epochs = 2, .batch_size = 32), &h));
    double loss = 0, acc = 0;
    CHECK_OK(cnn_model_evaluate(m, stx, sty, 500, &loss, &acc));
    printf("fashion slice: train accuracy %.4f, test loss %.4f, test accuracy %.4f\n",
           h ? h->accuracy[h->epochs - 1] : 0.0, loss, acc);
    CHECK(acc > 0.80);
    cnn_history_free(h);
    cnn_model_free(m);

    double acc32 = demo_accuracy(CNN_DTYPE_POLICY_FLOAT32, sx, sy, tx, ty);
    double acc16 = demo_accuracy(CNN_DTYPE_POLICY_MIXED_BFLOAT16, sx, sy, tx, ty);
    printf("demo network, 6000 images, 1 epoch: test accuracy %.4f float32, %.4f "
           "mixed_bfloat16 (%s)\n", acc32, acc16,
           cnn_bfloat16_supported() ? "bfloat16 products" : "no AVX512_BF16: float32 too");
    CHECK(acc32 > 0.75 && acc16 > 0.75);
    CHECK(fabs(acc16 - acc32) <= 0.01);
    cnn_tensor_free(sx);
    cnn_tensor_free(sy);
    cnn_tensor_free(stx);
    cnn_tensor_free(sty);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_tensor_free(tx);
    cnn_tensor_free(ty);
    return test_finish("test_fashion");
}
