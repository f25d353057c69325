/* summary() must print Keras's classic table exactly: the golden texts in
 * tests/golden/ are the canonical Keras MNIST convnet and the seed note's
 * "smaller and thicker" flow. */
#include <stdlib.h>

#include "test.h"

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void check_golden(cnn_model *m, const char *path)
{
    char *text = NULL;
    CHECK_OK(cnn_model_summary(m, &text));
    const char *want = read_text(path);
    CHECK(want != NULL);
    if (text && want && strcmp(text, want) != 0) {
        fprintf(stderr, "%s: summary differs.\n--- got ---\n%s--- expected ---\n%s", path, text,
                want);
        CHECK(0);
    } else {
        CHECK(text && want);
    }
    free(text);
}

int main(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(28, 28, 1)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 32, .kernel_size = {3, 3},
                                                .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2})));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 64, .kernel_size = {3, 3},
                                                .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2})));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_dropout(m, cnn_dropout(.rate = 0.5f)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK(cnn_model_param_count(m) == 34826);
    CHECK(cnn_model_layer_param_count(m, 0) == 320);
    CHECK(cnn_model_layer_param_count(m, 2) == 18496);
    CHECK(cnn_model_layer_param_count(m, 6) == 16010);
    CHECK(strcmp(cnn_model_layer_name(m, 3), "max_pooling2d_1") == 0);
    check_golden(m, "tests/golden/mnist_convnet.txt");
    cnn_model_free(m);

    /* The seed note: 64x64 input -> (64,64,32) -> (32,32,32) -> (32,32,64). */
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(64, 64, 3)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 32, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME,
                                                .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2})));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 64, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME,
                                                .activation = CNN_ACTIVATION_RELU)));
    cnn_shape s = cnn_model_output_shape(m);
    CHECK(s.rank == 3 && s.dims[0] == 32 && s.dims[1] == 32 && s.dims[2] == 64);
    check_golden(m, "tests/golden/seed_flow.txt");
    cnn_model_free(m);
    return test_finish("test_summary");
}
