/* Shared steps of the tests that run one layer three ways (1 thread, 2
 * threads, the reference GEMM) and compare: test_conv_direct.c,
 * test_conv_fused.c. */
#include <stdlib.h>

#include "kernels/gemm.h"
#include "model/model.h"
#include "test.h"

float *test_random_floats(cnn_rng *r, int64_t n, float lo, float hi)
{
    float *p = test_xmalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * cnn_rng_uniform(r);
    return p;
}

void test_random_batch(cnn_rng *r, const int64_t dims[4], float lo, float hi, int classes,
                       cnn_tensor **x, cnn_tensor **y)
{
    CHECK_OK(cnn_tensor_create(x, 4, dims));
    CHECK_OK(cnn_tensor_create(y, 1, dims));
    for (int64_t i = 0; *x && i < cnn_tensor_size(*x); i++)
        (*x)->data[i] = lo + (hi - lo) * cnn_rng_uniform(r);
    for (int64_t i = 0; *y && i < dims[0]; i++)
        (*y)->data[i] = (float)test_rnd(r, 0, classes - 1);
}

cnn_model *test_classifier_head(cnn_model *m, bool naive)
{
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_sgd(.learning_rate = 0.1f))));
    CHECK_OK(cnn_model_build(m));
    cnn_gemm_ctx_use_naive(m->gemm, naive);
    return m;
}

int test_same_bits(const char *what, const float *a, const float *b, int64_t n)
{
    int same = memcmp(a, b, (size_t)n * sizeof(float)) == 0;
    if (!same)
        fprintf(stderr, "%s: not the same bits\n", what);
    return same;
}

void test_three_way_step(cnn_model *const m[3], const cnn_tensor *x, const cnn_tensor *y,
                         int layers, const char *what)
{
    for (int i = 0; i < 3; i++) {
        cnn_model_zero_gradients(m[i]);
        CHECK_OK(cnn_model_forward(m[i], x, true, NULL));
        CHECK_OK(cnn_model_backward(m[i], y, NULL, NULL));
    }
    char buf[256];
    for (int l = 0; l < layers; l++) {
        for (int p = 0; p < m[0]->layers[l]->n_params; p++) {
            const cnn_param *a = &m[0]->layers[l]->params[p], *b = &m[1]->layers[l]->params[p],
                            *r = &m[2]->layers[l]->params[p];
            snprintf(buf, sizeof buf, "%s: layer %d param %d gradient", what, l, p);
            CHECK(test_same_bits(buf, a->grad, b->grad, a->count));
            CHECK(test_close(buf, a->grad, r->grad, (long)a->count, 1e-5, 1e-4));
        }
    }
}
