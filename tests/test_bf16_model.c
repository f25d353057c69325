/* The mixed_bfloat16 dtype policy on whole models:
 *   - setting, naming and rejecting policies;
 *   - a Conv2D + Dense model's predictions within bfloat16 tolerance of
 *     float32 and, where the CPU has AVX512_BF16, not identical to them
 *     (the layers do follow the policy);
 *   - training on a small synthetic task converges, and gives the same
 *     weights on 1 and 2 threads;
 *   - the model file keeps the policy (flag bit 4), a float32 model's file
 *     has no such section, and an unknown stored policy is refused;
 *   - Keras files keep it too. */
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "test.h"

static uint32_t lcg = 7;
static float uniform(void) /* [-1, 1) */
{
    lcg = lcg * 1664525u + 1013904223u;
    return (float)(lcg >> 8) / 8388608.0f - 1.0f;
}

static cnn_tensor *tensor(int rank, const int64_t *dims)
{
    cnn_tensor *t = NULL;
    CHECK_OK(cnn_tensor_create(&t, rank, dims));
    return t;
}

/* 8x8x2 images of four classes: which quadrant is brighter. */
static void make_data(int n, cnn_tensor **x, cnn_tensor **y)
{
    *x = tensor(4, (int64_t[]){n, 8, 8, 2});
    *y = tensor(1, (int64_t[]){n});
    for (int i = 0; i < n; i++) {
        int label = i % 4;
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < 8; c++)
                for (int ch = 0; ch < 2; ch++) {
                    int q = (r >= 4) * 2 + (c >= 4);
                    (*x)->data[((i * 8 + r) * 8 + c) * 2 + ch] =
                        (q == label ? 0.5f : -0.2f) + 0.4f * uniform();
                }
        (*y)->data[i] = (float)label;
    }
}

static cnn_model *make_model(int threads, cnn_dtype_policy policy)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(8, 8, 2)));
    if (!m)
        return NULL;
    CHECK_OK(cnn_model_set_seed(m, 3));
    CHECK_OK(cnn_model_set_threads(m, threads));
    CHECK_OK(cnn_model_set_dtype_policy(m, policy));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 24, .kernel_size = {3, 3},
                                                .padding = CNN_PADDING_SAME,
                                                .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 40, .kernel_size = {3, 3},
                                                .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 33, .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 4, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam(.learning_rate = 0.003f))));
    return m;
}

static void test_names(void)
{
    cnn_dtype_policy p = CNN_DTYPE_POLICY_FLOAT32;
    CHECK_OK(cnn_dtype_policy_from_name("mixed_bfloat16", &p));
    CHECK(p == CNN_DTYPE_POLICY_MIXED_BFLOAT16);
    CHECK_OK(cnn_dtype_policy_from_name("float32", &p));
    CHECK(p == CNN_DTYPE_POLICY_FLOAT32);
    CHECK_FAILS(cnn_dtype_policy_from_name("mixed_float16", &p), CNN_ERR_INVALID_ARGUMENT,
                "expected float32 or mixed_bfloat16, got \"mixed_float16\"");
    CHECK(strcmp(cnn_dtype_policy_name(CNN_DTYPE_POLICY_MIXED_BFLOAT16), "mixed_bfloat16") == 0);
    CHECK(cnn_dtype_policy_name((cnn_dtype_policy)7) == NULL);
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(4, 4, 1)));
    CHECK(cnn_model_dtype_policy(m) == CNN_DTYPE_POLICY_FLOAT32);
    CHECK_FAILS(cnn_model_set_dtype_policy(m, (cnn_dtype_policy)2), CNN_ERR_INVALID_ARGUMENT,
                "unknown policy 2");
    CHECK(cnn_model_dtype_policy(m) == CNN_DTYPE_POLICY_FLOAT32);
    cnn_model_free(m);
}

/* Predictions of the same weights under both policies. */
static void test_forward(void)
{
    cnn_tensor *x, *y, *p32 = NULL, *p16 = NULL;
    make_data(64, &x, &y);
    cnn_model *m = make_model(1, CNN_DTYPE_POLICY_FLOAT32);
    CHECK_OK(cnn_model_predict(m, x, 32, &p32));
    CHECK_OK(cnn_model_set_dtype_policy(m, CNN_DTYPE_POLICY_MIXED_BFLOAT16));
    CHECK_OK(cnn_model_predict(m, x, 32, &p16));
    if (p32 && p16) {
        long n = (long)(64 * 4);
        /* probabilities after four bf16 products (8 significant bits each) */
        CHECK(test_close("bf16 forward", p16->data, p32->data, n, 2e-2, 5e-2));
        bool same = memcmp(p16->data, p32->data, (size_t)n * sizeof(float)) == 0;
        CHECK(same == !cnn_bfloat16_supported());
    }
    cnn_tensor_free(p32);
    cnn_tensor_free(p16);
    cnn_model_free(m);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

static cnn_model *train(int threads, const cnn_tensor *x, const cnn_tensor *y, double *acc)
{
    cnn_model *m = make_model(threads, CNN_DTYPE_POLICY_MIXED_BFLOAT16);
    CHECK_OK(cnn_model_fit(m, x, y, cnn_fit(.epochs = 4, .batch_size = 16), NULL));
    double loss = 0;
    CHECK_OK(cnn_model_evaluate(m, x, y, 32, &loss, acc));
    return m;
}

static void test_training(void)
{
    cnn_tensor *x, *y;
    make_data(256, &x, &y);
    double acc1 = 0, acc2 = 0;
    cnn_model *one = train(1, x, y, &acc1), *two = train(2, x, y, &acc2);
    printf("test_bf16_model: synthetic task accuracy %.3f (1 thread), %.3f (2 threads)\n", acc1,
           acc2);
    CHECK(acc1 > 0.95);
    uint32_t c1 = 0, c2 = 1;
    CHECK_OK(cnn_model_checksum(one, &c1));
    CHECK_OK(cnn_model_checksum(two, &c2));
    CHECK(c1 == c2); /* weights and optimizer state bit-identical */
    cnn_model_free(one);
    cnn_model_free(two);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

static unsigned char *saved(cnn_model *m, const char *path, size_t *n)
{
    CHECK_OK(cnn_model_save(m, path));
    unsigned char *b = test_read_file(path, n);
    CHECK(b != NULL);
    return b;
}

static void test_file(void)
{
    char dir[] = "/tmp/cnn_test_bf16.XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    const char *path = test_path(dir, "m.cnn");
    cnn_model *m = make_model(1, CNN_DTYPE_POLICY_FLOAT32);
    size_t n32 = 0, n16 = 0, again_n = 0;
    unsigned char *f32 = saved(m, path, &n32);
    CHECK_OK(cnn_model_set_dtype_policy(m, CNN_DTYPE_POLICY_MIXED_BFLOAT16));
    unsigned char *f16 = saved(m, path, &n16);
    if (f32 && f16) {
        /* flags at offset 20: bit 4 only with the policy, which adds one u32 */
        CHECK((f32[20] & 16) == 0 && (f16[20] & 16) == 16);
        CHECK(n16 == n32 + 4);
    }
    cnn_model *back = NULL;
    CHECK_OK(cnn_model_load(path, &back));
    CHECK(cnn_model_dtype_policy(back) == CNN_DTYPE_POLICY_MIXED_BFLOAT16);
    unsigned char *again = saved(back, path, &again_n);
    CHECK(again && f16 && again_n == n16 && memcmp(again, f16, n16) == 0);
    /* back to float32: the file is the float32 one, byte for byte */
    CHECK_OK(cnn_model_set_dtype_policy(back, CNN_DTYPE_POLICY_FLOAT32));
    free(again);
    again = saved(back, path, &again_n);
    CHECK(again && f32 && again_n == n32 && memcmp(again, f32, n32) == 0);
    /* an unknown stored policy is refused, by name */
    if (f16) {
        f16[n16 - 8] = 9;
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), f16, (uInt)(n16 - 4));
        for (int i = 0; i < 4; i++)
            f16[n16 - 4 + i] = (unsigned char)(crc >> (8 * i));
        cnn_model *bad = NULL;
        CHECK_FAILS(cnn_model_load_memory(f16, n16, "bad.cnn", &bad), CNN_ERR_FORMAT,
                    "bad.cnn: dtype policy: policy 9 is not known");
        CHECK(bad == NULL);
    }
    free(f32);
    free(f16);
    free(again);
    cnn_model_free(m);
    cnn_model_free(back);
    unlink(path);
    rmdir(dir);
}

/* Keras files: .keras (Keras 3's DTypePolicy on every layer) and .h5
 * (Keras 2's Policy) keep mixed_bfloat16; a JSON description mixing
 * policies is refused. */
static void test_keras(void)
{
    char dir[] = "/tmp/cnn_test_bf16k.XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    cnn_model *m = make_model(1, CNN_DTYPE_POLICY_MIXED_BFLOAT16);
    const char *paths[] = {test_path(dir, "m.keras"), test_path(dir, "m.h5")};
    for (int i = 0; i < 2; i++) {
        CHECK_OK(i ? cnn_model_save_keras_h5(m, paths[i]) : cnn_model_save_keras(m, paths[i]));
        cnn_model *back = NULL;
        CHECK_OK(cnn_model_load_keras(paths[i], &back, NULL));
        CHECK(back && cnn_model_dtype_policy(back) == CNN_DTYPE_POLICY_MIXED_BFLOAT16);
        cnn_model_free(back);
        unlink(paths[i]);
    }
    CHECK_OK(cnn_model_set_dtype_policy(m, CNN_DTYPE_POLICY_FLOAT32));
    CHECK_OK(cnn_model_save_keras(m, paths[0]));
    cnn_model *back = NULL;
    CHECK_OK(cnn_model_load_keras(paths[0], &back, NULL));
    CHECK(back && cnn_model_dtype_policy(back) == CNN_DTYPE_POLICY_FLOAT32);
    cnn_model_free(back);
    unlink(paths[0]);
    rmdir(dir);
    cnn_model_free(m);

    static const char mixed[] =
        "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
        "{\"class_name\": \"Dense\", \"config\": {\"units\": 4, \"batch_input_shape\": "
        "[null, 3], \"dtype\": {\"class_name\": \"Policy\", \"config\": {\"name\": "
        "\"mixed_bfloat16\"}}}},"
        "{\"class_name\": \"Dense\", \"config\": {\"units\": 2, \"dtype\": \"float32\"}}]}}";
    cnn_model *d = NULL;
    CHECK_FAILS(cnn_model_from_description_memory(mixed, sizeof mixed - 1, "mixed.json", &d),
                CNN_ERR_FORMAT, "only one policy for the whole model");
    CHECK(d == NULL);
}

int main(void)
{
    printf("test_bf16_model: AVX512_BF16 %s\n",
           cnn_bfloat16_supported() ? "present" : "absent (mixed_bfloat16 runs in float32)");
    test_names();
    test_forward();
    test_training();
    test_file();
    test_keras();
    return test_finish("test_bf16_model");
}
