/* summary() must print Keras's classic table exactly: the golden texts in
 * tests/golden/ are the canonical Keras MNIST convnet and the seed note's
 * "smaller and thicker" flow; a graph prints Keras's Functional table with
 * its Connected to column (tests/golden/functional_block.txt). */
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

/* A residual block and a concatenation, named as Keras 2 names them:
 * TensorFlow 2.x's print_summary of the same graph, column for column
 * (line length 98, columns ending at 32, 53, 65, 98; the InputLayer's
 * shape listed; each further input on a row of its own). */
static void test_functional(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(32, 32, 3)));
    CHECK_OK(cnn_model_set_input_name(m, "input_1"));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 16, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME)));
    CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization()));
    CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(.activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 16, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME)));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"activation", "conv2d_1"}));
    CHECK_OK(cnn_model_add_add(m, cnn_merge()));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"add", "input_1"}));
    CHECK_OK(cnn_model_add_concatenate(m, cnn_concatenate()));
    CHECK_OK(cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK(cnn_model_is_graph(m));
    check_golden(m, "tests/golden/functional_block.txt");
    cnn_model_free(m);
}

int main(void)
{
    test_functional();
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

    /* Parameter counts as Keras gives them, BatchNormalization's moving
     * statistics non-trainable. */
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(28, 28, 1)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 32, .kernel_size = {3, 3},
                                                .no_bias = true)));
    CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization()));
    CHECK_OK(cnn_model_add_relu(m, cnn_relu(.max_value = 6)));
    CHECK_OK(cnn_model_add_depthwise_conv2d(m, cnn_depthwise_conv2d(.kernel_size = {3, 3},
                                                                     .depth_multiplier = 2)));
    CHECK_OK(cnn_model_add_separable_conv2d(m, cnn_separable_conv2d(.filters = 16,
                                                                     .kernel_size = {3, 3})));
    CHECK_OK(cnn_model_add_zero_padding2d(m, cnn_zero_padding2d()));
    CHECK_OK(cnn_model_add_reshape(m, cnn_reshape(.target_shape = {1, {-1}})));
    CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization()));
    CHECK_OK(cnn_model_add_leaky_relu(m, cnn_leaky_relu()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 10)));
    CHECK_OK(cnn_model_add_elu(m, cnn_elu()));
    CHECK(cnn_model_layer_param_count(m, 0) == 288);
    CHECK(cnn_model_layer_param_count(m, 1) == 128);
    CHECK(cnn_model_layer_param_count(m, 3) == 3 * 3 * 32 * 2 + 64);
    CHECK(cnn_model_layer_param_count(m, 4) == 3 * 3 * 64 + 64 * 16 + 16);
    s = cnn_model_layer_output_shape(m, 5); /* (22, 22, 16) padded by 1 */
    CHECK(s.rank == 3 && s.dims[0] == 24 && s.dims[1] == 24 && s.dims[2] == 16);
    CHECK(cnn_model_layer_output_shape(m, 6).dims[0] == 24 * 24 * 16);
    CHECK(cnn_model_layer_param_count(m, 7) == 4 * 24 * 24 * 16);
    CHECK(strcmp(cnn_model_layer_name(m, 7), "batch_normalization_1") == 0);
    CHECK(strcmp(cnn_model_layer_name(m, 8), "leaky_re_lu") == 0);
    CHECK(strcmp(cnn_model_layer_name(m, 2), "re_lu") == 0);
    int64_t frozen = 2 * 32 + 2 * 24 * 24 * 16;
    CHECK(cnn_model_param_count(m) - cnn_model_trainable_param_count(m) == frozen);
    char *text = NULL;
    CHECK_OK(cnn_model_summary(m, &text));
    CHECK(text && strstr(text, "Non-trainable params: 18,496\n"));
    CHECK(text && strstr(text, "batch_normalization (BatchNo (None, 26, 26, 32)        128"));
    free(text);
    cnn_model_free(m);
    return test_finish("test_summary");
}
