/* The elementwise passes split between threads (cnn_pool_elementwise): a
 * graph whose tensors hold 256K values or more at batch 64 (the split's
 * threshold) - Activation layers, activations the model applies itself,
 * Add / Subtract / Average / Multiply / Maximum merges, a Reshape copy and
 * gradients summed from two readers - must train to the same bits on 1
 * and 2 threads, and predict the same bits; the pool's ranges must cover
 * every value exactly once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"
#include "core/threadpool.h"
#include "test.h"

/* ---- cnn_pool_elementwise's ranges ---- */

static void count_range(void *p, int64_t b, int64_t e)
{
    unsigned char *hits = p;
    for (int64_t i = b; i < e; i++)
        hits[i]++;
}

static void test_ranges(void)
{
    cnn_pool *pool = NULL;
    CHECK_OK(cnn_pool_create(&pool, 3));
    static const int64_t sizes[] = {0, 1, 17, CNN_POOL_ELEMENTWISE_MIN - 1,
                                    CNN_POOL_ELEMENTWISE_MIN, CNN_POOL_ELEMENTWISE_MIN + 5,
                                    3 * CNN_POOL_ELEMENTWISE_MIN + 33};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int64_t n = sizes[s];
        unsigned char *hits = calloc((size_t)n + 1, 1);
        CHECK(hits != NULL);
        if (!hits)
            continue;
        cnn_pool_elementwise(pool, n, count_range, hits);
        int64_t wrong = 0;
        for (int64_t i = 0; i < n; i++)
            wrong += hits[i] != 1;
        CHECK(wrong == 0);
        CHECK(hits[n] == 0);
        free(hits);
    }
    cnn_pool_free(pool);
}

/* ---- A model on 1 and 2 threads ---- */

enum { BATCH = 64, SIDE = 16, CH = 16, EXAMPLES = 2 * BATCH }; /* 16x16x16 x 64 = 256K */

static cnn_model *build(int threads)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(SIDE, SIDE, CH)));
    CHECK_OK(cnn_model_set_seed(m, 11));
    CHECK_OK(cnn_model_set_threads(m, threads));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = CH, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME, .name = "a")));
    CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(.activation = CNN_ACTIVATION_TANH,
                                                              .name = "t")));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = CH, .kernel_size = {1, 1},
                                                .activation = CNN_ACTIVATION_SIGMOID,
                                                .name = "b")));
    /* "a" feeds "t" and the merges: its gradient is a sum of readers' */
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"a", "b"}));
    CHECK_OK(cnn_model_add_add(m, cnn_merge(.name = "add")));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"add", "t"}));
    CHECK_OK(cnn_model_add_multiply(m, cnn_merge(.name = "mul")));
    CHECK_OK(cnn_model_set_next_inputs(m, 3, (const char *[]){"mul", "a", "b"}));
    CHECK_OK(cnn_model_add_average(m, cnn_merge(.name = "avg")));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"avg", "a"}));
    CHECK_OK(cnn_model_add_subtract(m, cnn_merge(.name = "sub")));
    CHECK_OK(cnn_model_set_next_inputs(m, 2, (const char *[]){"sub", "t"}));
    CHECK_OK(cnn_model_add_maximum(m, cnn_merge(.name = "max")));
    CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(.activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_reshape(m, cnn_reshape(.target_shape = cnn_shape_flat(SIDE * SIDE * CH))));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 4, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_sgd(.learning_rate = 0.05f))));
    return m;
}

static void test_model(void)
{
    cnn_tensor *x = NULL, *y = NULL;
    CHECK_OK(cnn_tensor_create(&x, 4, (int64_t[]){EXAMPLES, SIDE, SIDE, CH}));
    CHECK_OK(cnn_tensor_create(&y, 1, (int64_t[]){EXAMPLES}));
    if (!x || !y)
        return;
    uint32_t r = 12345;
    for (int64_t i = 0; i < (int64_t)EXAMPLES * SIDE * SIDE * CH; i++) {
        r = r * 1664525u + 1013904223u;
        x->data[i] = (float)(r >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
    for (int i = 0; i < EXAMPLES; i++)
        y->data[i] = (float)(i % 4);
    cnn_model *one = build(1), *two = build(2);
    CHECK(cnn_model_threads(two) == 2);
    cnn_fit_config fc = cnn_fit(.epochs = 2, .batch_size = BATCH, .no_shuffle = true);
    CHECK_OK(cnn_model_fit(one, x, y, fc, NULL));
    CHECK_OK(cnn_model_fit(two, x, y, fc, NULL));
    for (int l = 0; l < cnn_model_layer_count(one); l++)
        for (int w = 0; w < CNN_MAX_LAYER_WEIGHTS; w++) {
            int64_t n1 = 0, n2 = 0;
            float *a = cnn_model_layer_weights(one, l, w, &n1);
            float *b = cnn_model_layer_weights(two, l, w, &n2);
            CHECK((a == NULL) == (b == NULL) && n1 == n2);
            if (a && b && n1 == n2)
                CHECK(memcmp(a, b, (size_t)n1 * sizeof(float)) == 0);
        }
    cnn_tensor *p1 = NULL, *p2 = NULL;
    CHECK_OK(cnn_model_predict(one, x, BATCH, &p1));
    CHECK_OK(cnn_model_predict(two, x, BATCH, &p2));
    CHECK(p1 && p2 && memcmp(p1->data, p2->data, (size_t)EXAMPLES * 4 * sizeof(float)) == 0);
    cnn_tensor_free(p1), cnn_tensor_free(p2);
    cnn_model_free(one), cnn_model_free(two);
    cnn_tensor_free(x), cnn_tensor_free(y);
}

int main(void)
{
    test_ranges();
    test_model();
    return test_finish("test_elementwise_threads");
}
