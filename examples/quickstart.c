/* The README's example: a small convnet on Fashion-MNIST in 30 lines. */
#include <cnn.h>
#include <stdio.h>

int main(void)
{
    cnn_tensor *x, *y, *tx, *ty;
    if (cnn_dataset_load_mnist("/usr/share/datasets/fashion-mnist", &x, &y, &tx, &ty)) {
        fprintf(stderr, "%s\n", cnn_last_error());
        return 1;
    }
    cnn_model *m;
    cnn_model_create(&m, cnn_shape_hwc(28, 28, 1));
    cnn_model_add_conv2d(m, cnn_conv2d(.filters = 32, .kernel_size = {3, 3},
                                       .activation = CNN_ACTIVATION_RELU));
    cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2}));
    cnn_model_add_flatten(m, cnn_flatten());
    cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SOFTMAX));
    cnn_model_print_summary(m, stdout);

    cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                     .optimizer = cnn_adam()));
    cnn_model_fit(m, x, y, cnn_fit(.epochs = 1, .batch_size = 64, .validation_split = 0.1f,
                                   .progress = cnn_progress_console), NULL);
    double loss, acc;
    cnn_model_evaluate(m, tx, ty, 256, &loss, &acc);
    printf("test accuracy: %.4f\n", acc);
    cnn_model_free(m);
    return 0;
}
