/* Fuzz harness: image loading through stb_image (cnn_image_load_memory).
 * The first byte picks the channels asked for (as stored, grey or RGB);
 * the rest is the file. A success is a (1, rows, cols, channels) tensor of
 * values in [0, 1] within the size limit given, which then resizes. */
#include "fuzz.h"

enum { FUZZ_IMAGE_MAX_BYTES = 16 << 20 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const int channel_choices[3] = {0, 1, 3};
    int channels = channel_choices[data[0] % 3];
    cnn_tensor *t = NULL;
    cnn_status st = cnn_image_load_memory(data + 1, size - 1, "fuzz.img", channels,
                                          FUZZ_IMAGE_MAX_BYTES, &t);
    if (st) {
        static const cnn_status allowed[] = {CNN_ERR_FORMAT, CNN_ERR_NO_MEMORY};
        fuzz_check_failure(st, t, allowed, 2);
        return 0;
    }
    FUZZ_CHECK(t && t->rank == 4 && t->dims[0] == 1 && t->dims[1] >= 1 && t->dims[2] >= 1);
    FUZZ_CHECK(channels ? t->dims[3] == channels : (t->dims[3] == 1 || t->dims[3] == 3));
    int64_t n = cnn_tensor_size(t);
    FUZZ_CHECK(n * (int64_t)(1 + sizeof(float)) <= FUZZ_IMAGE_MAX_BYTES);
    for (int64_t i = 0; i < n; i++)
        FUZZ_CHECK(t->data[i] >= 0.0f && t->data[i] <= 1.0f);
    cnn_tensor *r = NULL;
    FUZZ_CHECK(cnn_image_resize(t, 5, 7, &r) == CNN_OK);
    FUZZ_CHECK(r && r->dims[1] == 5 && r->dims[2] == 7 && r->dims[3] == t->dims[3]);
    cnn_tensor_free(r);
    cnn_tensor_free(t);
    return 0;
}
