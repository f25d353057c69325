/* Fuzz harness: IDX data files, plain and gzip (cnn_dataset_load_idx_memory).
 * A success is a tensor of rank 1..4 with positive dimensions, no larger
 * than the input allows, and finite values. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cnn_tensor *t = NULL;
    cnn_status st = cnn_dataset_load_idx_memory(data, size, "fuzz.idx", &t);
    if (st) {
        static const cnn_status allowed[] = {CNN_ERR_FORMAT, CNN_ERR_NUMERIC, CNN_ERR_NO_MEMORY};
        fuzz_check_failure(st, t, allowed, 3);
        return 0;
    }
    FUZZ_CHECK(t && t->data && t->rank >= 1 && t->rank <= CNN_MAX_RANK);
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        FUZZ_CHECK(t->dims[i] >= 1);
        n *= t->dims[i];
    }
    FUZZ_CHECK(n == cnn_tensor_size(t));
    /* A plain file holds at least one byte per value; deflate expands at
     * most 1032 times. */
    bool gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    FUZZ_CHECK((uint64_t)n <= (uint64_t)size * (gzip ? 1032 : 1));
    for (int64_t i = 0; i < n; i++)
        FUZZ_CHECK(t->data[i] - t->data[i] == 0.0f); /* finite */
    cnn_tensor_free(t);
    return 0;
}
