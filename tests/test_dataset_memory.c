/* Training on a folder whose decoded images take more than the memory
 * budget: the stream holds a few batches, never the data set, so the
 * process's peak resident memory stays under the budget. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

enum { N = 400, R = 128, C = 128, CH = 3 };
#define BUDGET ((int64_t)32 << 20)

int main(void)
{
    char root[] = "/tmp/cnn_test_dataset_memory_XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    char path[512];
    uint8_t *px = malloc((size_t)R * C * CH);
    uint32_t s = 1;
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/class%d", root, k);
        mkdir(path, 0755);
    }
    for (int i = 0; px && i < N; i++) {
        for (int p = 0; p < R * C * CH; p++) {
            s = s * 1664525u + 1013904223u;
            px[p] = (uint8_t)(s >> 24);
        }
        snprintf(path, sizeof path, "%s/class%d/%04d.png", root, i % 2, i);
        if (cnn_image_save_png(path, px, R, C, CH) != CNN_OK) {
            CHECK_OK(cnn_image_save_png(path, px, R, C, CH));
            break;
        }
    }
    free(px);
    const int64_t decoded = (int64_t)N * R * C * CH * (int64_t)sizeof(float);
    CHECK(decoded > 2 * BUDGET); /* the premise: ~75 MB of floats, 32 MB allowed */

    cnn_dataset *ds = NULL;
    CHECK_OK(cnn_dataset_from_directory(root, cnn_dataset_options(.image_size = {R, C}, .workers = 2),
                                        &ds));
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(R, C, CH)));
    if (m && ds) {
        cnn_model_set_threads(m, 2);
        CHECK_OK(cnn_model_set_max_memory(m, BUDGET));
        cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3}, .strides = {2, 2},
                                           .activation = CNN_ACTIVATION_RELU));
        cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {4, 4}));
        cnn_model_add_flatten(m, cnn_flatten());
        cnn_model_add_dense(m, cnn_dense(.units = 2, .activation = CNN_ACTIVATION_SOFTMAX));
        CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                                  .optimizer = cnn_adam())));
        CHECK_OK(cnn_model_fit_dataset(m, ds, NULL, cnn_fit(.epochs = 1, .batch_size = 32), NULL));
    }
    struct rusage ru;
    CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
    const int64_t peak = (int64_t)ru.ru_maxrss * 1024;
    printf("decoded images %lld MiB, budget %lld MiB, peak RSS %.1f MiB\n",
           (long long)(decoded >> 20), (long long)(BUDGET >> 20), (double)peak / (1 << 20));
#ifdef TEST_RSS_MEANINGLESS
    printf("(AddressSanitizer: the peak RSS is not compared with the budget)\n");
#else
    CHECK(peak < BUDGET);
#endif
    cnn_model_free(m);
    cnn_dataset_free(ds);
    CHECK(test_remove_tree(root));
    return test_finish("test_dataset_memory");
}
