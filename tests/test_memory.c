/* Large images: convolution in bounded tiles agrees with one big tile; the
 * memory budget rejects a model before allocating; the estimates match the
 * layouts (training keeps every output, inference two buffers). */
#include <stdlib.h>
#include <sys/resource.h>

#include "test.h"

static unsigned long long state = 99;
static float uniform(void)
{
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((state >> 40) / 8388608.0) - 1.0f;
}

/* Output and all gradients of a one-conv model under a workspace limit. */
static void run_conv(int64_t limit, cnn_conv2d_config cfg, int h, int w, int c, const cnn_tensor *x,
                     const cnn_tensor *y, float *out, float *grads, float *input_grad)
{
    cnn_model *m = NULL;
    cnn_model_create(&m, cnn_shape_hwc(h, w, c));
    cnn_model_set_threads(m, 2);
    cnn_model_set_workspace_limit(m, limit);
    cnn_model_add_conv2d(m, cfg);
    cnn_model_add_flatten(m, cnn_flatten());
    cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_MSE, .optimizer = cnn_sgd()));
    const float *o;
    int64_t n_out = cnn_tensor_size(y), nk, nb;
    cnn_model_zero_gradients(m);
    CHECK_OK(cnn_model_forward(m, x, true, &o));
    memcpy(out, o, (size_t)n_out * sizeof(float));
    CHECK_OK(cnn_model_backward(m, y, NULL, input_grad));
    const float *gk = cnn_model_layer_gradients(m, 0, 0, &nk);
    const float *gb = cnn_model_layer_gradients(m, 0, 1, &nb);
    memcpy(grads, gk, (size_t)nk * sizeof(float));
    if (gb)
        memcpy(grads + nk, gb, (size_t)nb * sizeof(float));
    cnn_model_free(m);
}

static void tiled_matches_untiled(const char *name, int h, int w, int c, cnn_conv2d_config cfg)
{
    cnn_model *probe = NULL;
    cnn_model_create(&probe, cnn_shape_hwc(h, w, c));
    CHECK_OK(cnn_model_add_conv2d(probe, cfg));
    cnn_shape os = cnn_model_output_shape(probe);
    int64_t params = cnn_model_param_count(probe);
    cnn_model_free(probe);
    int64_t per = (int64_t)os.dims[0] * os.dims[1] * os.dims[2];
    cnn_tensor *x = NULL, *y = NULL;
    cnn_tensor_create(&x, 4, (int64_t[]){3, h, w, c});
    cnn_tensor_create(&y, 2, (int64_t[]){3, per});
    for (int64_t i = 0; i < cnn_tensor_size(x); i++)
        x->data[i] = uniform();
    for (int64_t i = 0; i < cnn_tensor_size(y); i++)
        y->data[i] = uniform();
    size_t nx = (size_t)cnn_tensor_size(x), ny = (size_t)cnn_tensor_size(y);
    float *o1 = malloc(ny * 4), *o2 = malloc(ny * 4), *g1 = malloc((size_t)params * 4),
          *g2 = malloc((size_t)params * 4), *d1 = malloc(nx * 4), *d2 = malloc(nx * 4);
    /* 1 KiB of scratch: a tile of a row or less; 256 MiB: the whole batch at once */
    run_conv(1024, cfg, h, w, c, x, y, o1, g1, d1);
    run_conv((int64_t)256 << 20, cfg, h, w, c, x, y, o2, g2, d2);
    char what[128];
    snprintf(what, sizeof what, "%s: output", name);
    test_close(what, o1, o2, (long)ny, 1e-5, 1e-5);
    snprintf(what, sizeof what, "%s: parameter gradients", name);
    test_close(what, g1, g2, (long)params, 1e-5, 1e-4);
    snprintf(what, sizeof what, "%s: input gradient", name);
    test_close(what, d1, d2, (long)nx, 1e-6, 1e-5);
    free(o1), free(o2), free(g1), free(g2), free(d1), free(d2);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

static long max_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Issue 18.1: ZeroPadding2D to 32768x32768, 4093 ReLU activations, a
 * batch of 2^20: 2^62 floats, 2^64 bytes, which wrapped to a small total
 * that passed the budget (then a SIGSEGV in zero padding's memset). Every
 * size saturates now: the estimate says "does not fit" and running refuses
 * before allocating. */
static void test_sizes_do_not_wrap(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(2, 2, 1)));
    if (!m)
        return;
    CHECK_OK(cnn_model_add_zero_padding2d(m, cnn_zero_padding2d(.padding = {16383, 16383,
                                                                            16383, 16383})));
    for (int i = 0; i < 4093; i++)
        CHECK(cnn_model_add_activation(m, cnn_activation_layer(.activation = CNN_ACTIVATION_RELU))
              == CNN_OK);
    CHECK_OK(cnn_model_add_global_max_pooling2d(m, cnn_global_pool2d()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 2)));
    cnn_memory_estimate e;
    CHECK_OK(cnn_model_estimate_memory(m, 1 << 20, &e));
    CHECK(e.training_total == INT64_MAX && e.activations_training > 0);
    CHECK(e.inference_total > ((int64_t)1 << 52)); /* two buffers of 2^50 floats */
    CHECK_OK(cnn_model_estimate_memory(m, 1 << 30, &e));
    CHECK(e.training_total == INT64_MAX && e.inference_total == INT64_MAX);
    cnn_tensor *x = NULL, *out = NULL;
    CHECK_OK(cnn_tensor_create(&x, 4, (int64_t[]){1 << 20, 2, 2, 1}));
    if (x) {
        CHECK_FAILS(cnn_model_predict(m, x, 1 << 20, &out), CNN_ERR_NO_MEMORY,
                    "running a batch of 1048576 needs");
        CHECK(out == NULL);
        CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_MSE)));
        cnn_tensor *y = NULL;
        CHECK_OK(cnn_tensor_create(&y, 2, (int64_t[]){1 << 20, 2}));
        if (y)
            CHECK_FAILS(cnn_model_fit(m, x, y, cnn_fit(.epochs = 1, .batch_size = 1 << 20), NULL),
                        CNN_ERR_NO_MEMORY, "training on a batch of 1048576 needs more than 2^63"
                                           " bytes");
        cnn_tensor_free(y);
    }
    cnn_tensor_free(x);
    cnn_model_free(m);
}

/* Issue 15: a skip connection keeps its tensor alive until its last
 * reader. Three 8x8x4 convolutions, the first added to the third: in
 * inference three outputs are alive at the Add (a chain needs two); in
 * training each gradient lives from its last reader's backward to its
 * own, and the first conv's gradient (read by conv b and the Add) needs
 * scratch for the second reader's share. */
static void test_skip_memory(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(8, 8, 4)));
    for (int i = 0; i < 3; i++)
        CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                                    .padding = CNN_PADDING_SAME)));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"conv2d", "conv2d_2"}));
    CHECK_OK(cnn_model_add_add(m, cnn_merge()));
    cnn_memory_estimate e;
    const int64_t one = 8 * 8 * 4 * 4; /* bytes of one output, batch 1 */
    CHECK_OK(cnn_model_estimate_memory(m, 1, &e));
    CHECK(e.activations_inference == 3 * one);
    CHECK(e.activations_training == 4 * one);
    /* gradients: Add's, then conv2d_2's and conv2d's together (Add writes
     * both), conv2d_1's beside conv2d's; plus one output of scratch */
    CHECK(e.activation_gradients == 3 * one + one);
    /* and it runs: the arena the plan sizes is used without overlap */
    cnn_tensor *x = NULL;
    CHECK_OK(cnn_tensor_create(&x, 4, (int64_t[]){2, 8, 8, 4}));
    const float *y1 = NULL, *y2 = NULL;
    CHECK_OK(cnn_model_forward(m, x, false, &y1));
    cnn_tensor *p = NULL;
    CHECK_OK(cnn_model_predict(m, x, 2, &p));
    CHECK_OK(cnn_model_forward(m, x, false, &y2));
    CHECK(p && y2 && memcmp(p->data, y2, sizeof(float) * 2 * 256) == 0);
    cnn_tensor_free(p);
    cnn_tensor_free(x);
    cnn_model_free(m);
}

int main(void)
{
    test_skip_memory();
    tiled_matches_untiled("same s1", 23, 17, 3,
                          cnn_conv2d(.filters = 5, .kernel_size = {5, 5}, .padding = CNN_PADDING_SAME));
    tiled_matches_untiled("valid s2", 21, 19, 4,
                          cnn_conv2d(.filters = 6, .kernel_size = {3, 3}, .strides = {2, 2}));
    tiled_matches_untiled("same s2 odd", 15, 22, 2,
                          cnn_conv2d(.filters = 3, .kernel_size = {4, 3}, .strides = {2, 2},
                                     .padding = CNN_PADDING_SAME));
    tiled_matches_untiled("dilated", 19, 18, 3,
                          cnn_conv2d(.filters = 4, .kernel_size = {3, 3}, .dilation_rate = {2, 2},
                                     .padding = CNN_PADDING_SAME));

    /* The seed's comparison: a Dense layer on a 2000x2000x3 photo. */
    long rss_before = max_rss_kib();
    cnn_model *dense = NULL;
    CHECK_OK(cnn_model_create(&dense, cnn_shape_hwc(2000, 2000, 3)));
    CHECK_OK(cnn_model_add_flatten(dense, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(dense, cnn_dense(.units = 128, .activation = CNN_ACTIVATION_RELU)));
    CHECK(cnn_model_param_count(dense) == 1536000128LL);
    CHECK_FAILS(cnn_model_compile(dense, cnn_compile(.loss = CNN_LOSS_MSE)), CNN_ERR_NO_MEMORY,
                "building the weights (1536000128 parameters) needs 6144000512 bytes (5.72 GiB),"
                " more than the memory budget of 4294967296 bytes (4.00 GiB)");
    CHECK(cnn_model_layer_weights(dense, 1, 0, NULL) == NULL);
    CHECK(max_rss_kib() - rss_before < 64 * 1024); /* nothing was allocated */
    cnn_model_free(dense);

    /* The CNN on the same photo: tens of thousands of parameters, and the
     * estimate follows the layouts. */
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(2000, 2000, 3)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 32, .kernel_size = {5, 5},
                                                .padding = CNN_PADDING_SAME,
                                                .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d()));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 64, .kernel_size = {5, 5},
                                                .padding = CNN_PADDING_SAME,
                                                .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d()));
    CHECK_OK(cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK(cnn_model_param_count(m) == 2432 + 51264 + 650);
    cnn_memory_estimate e;
    CHECK_OK(cnn_model_estimate_memory(m, 1, &e));
    const int64_t conv1 = 2000LL * 2000 * 32 * 4, pool1 = 1000LL * 1000 * 32 * 4,
                  conv2 = 1000LL * 1000 * 64 * 4, pool2 = 500LL * 500 * 64 * 4;
    CHECK(e.activations_training == conv1 + pool1 + conv2 + pool2 + 64 * 4 + 10 * 4);
    /* even layers share one buffer (largest: conv1), odd ones the other (pool1) */
    CHECK(e.activations_inference == conv1 + pool1);
    /* gradients alternate between two buffers (even and odd layers); max
     * pooling writes its input gradient over the conv output it pooled, so
     * the convolutions' output gradients need no buffer */
    CHECK(e.activation_gradients == 64 * 4 + pool1);
    CHECK(e.workspace <= 8 << 20);
    CHECK(e.flops_per_example == 2LL * 2000 * 2000 * 75 * 32 + 2LL * 1000 * 1000 * 800 * 64 + 2 * 64 * 10);
    /* a budget too small for one image fails before allocating */
    CHECK_OK(cnn_model_set_max_memory(m, 256 << 20));
    cnn_tensor *img = NULL;
    CHECK_OK(cnn_tensor_create(&img, 4, (int64_t[]){1, 2000, 2000, 3}));
    cnn_tensor *pred = NULL;
    CHECK_FAILS(cnn_model_predict(m, img, 1, &pred), CNN_ERR_NO_MEMORY,
                "running a batch of 1 needs");
    cnn_tensor_free(img);
    cnn_model_free(m);
    test_sizes_do_not_wrap();
    return test_finish("test_memory");
}
