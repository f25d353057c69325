/* Fuzz harness: the model file (cnn_model_load_memory), and the int8
 * quantized model file (cnn_qmodel_load_memory) for inputs that start with
 * its magic "CNNQUANT" (seeds: fuzz/corpus/model/quant_*).
 *
 * Each input is loaded twice: as it is, which exercises the preamble and the
 * checksum, and with its recorded length and CRC-32 set to match, so that
 * mutations reach the decoder and the rebuild behind the checksum (a file
 * crafted with a valid checksum must fail as cleanly as a damaged one). A
 * model that loads is introspected, run and trained for a step. */
#include <zlib.h>

#include "fuzz.h"

static void fuzz_model_load(const uint8_t *data, size_t size)
{
    cnn_model *m = NULL;
    cnn_status st = cnn_model_load_memory(data, size, "fuzz.cnn", &m);
    if (st) {
        static const cnn_status allowed[] = {CNN_ERR_FORMAT, CNN_ERR_NO_MEMORY};
        fuzz_check_failure(st, m, allowed, 2);
        return;
    }
    FUZZ_CHECK(m != NULL);
    int epoch = -1;
    int64_t step = -1;
    cnn_model_training_position(m, &epoch, &step);
    FUZZ_CHECK(epoch >= 0 && step >= 0);
    fuzz_exercise_model(m);
    cnn_model_free(m);
}

/* A quantized model that loads runs on one all-zero and one all-one input
 * (when its arena is small) and reports its sizes. */
static void fuzz_qmodel_load(const uint8_t *data, size_t size)
{
    cnn_qmodel *q = NULL;
    cnn_status st = cnn_qmodel_load_memory(data, size, "fuzz.q", &q);
    if (st) {
        static const cnn_status allowed[] = {CNN_ERR_FORMAT, CNN_ERR_NO_MEMORY};
        fuzz_check_failure(st, q, allowed, 2);
        return;
    }
    FUZZ_CHECK(q != NULL);
    FUZZ_CHECK(cnn_qmodel_weight_bytes(q) >= 0 && cnn_qmodel_arena_bytes(q) > 0);
    for (int k = 0; k < cnn_qmodel_op_count(q); k++)
        FUZZ_CHECK(cnn_qmodel_op_type(q, k) != NULL && cnn_qmodel_op_name(q, k) != NULL);
    cnn_shape in = cnn_qmodel_input_shape(q), out = cnn_qmodel_output_shape(q);
    int64_t in_n = 1, out_n = 1;
    for (int d = 0; d < in.rank; d++)
        in_n *= in.dims[d];
    for (int d = 0; d < out.rank; d++)
        out_n *= out.dims[d];
    if (cnn_qmodel_arena_bytes(q) <= (1 << 18) && in_n <= (1 << 16) && out_n <= (1 << 16)) {
        int64_t dims[CNN_MAX_RANK] = {2};
        for (int d = 0; d < in.rank; d++)
            dims[d + 1] = in.dims[d];
        cnn_tensor *x = NULL;
        float *y = malloc((size_t)(2 * out_n) * sizeof(float));
        if (y && cnn_tensor_create(&x, in.rank + 1, dims) == CNN_OK) {
            for (int64_t i = in_n; i < 2 * in_n; i++)
                x->data[i] = 1.0f;
            st = cnn_qmodel_predict(q, x, y);
            FUZZ_CHECK(st == CNN_OK || st == CNN_ERR_NO_MEMORY);
        }
        cnn_tensor_free(x);
        free(y);
    }
    cnn_qmodel_free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 4 && memcmp(data, "CNNQ", 4) == 0) {
        fuzz_qmodel_load(data, size);
        /* and with its CRC-32 (the last 4 bytes) made to match */
        if (size < 16 || size > ((size_t)1 << 24))
            return 0;
        uint8_t *fixed = malloc(size);
        if (!fixed)
            return 0;
        memcpy(fixed, data, size);
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), fixed, (uInt)(size - 4));
        for (int i = 0; i < 4; i++)
            fixed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
        fuzz_qmodel_load(fixed, size);
        free(fixed);
        return 0;
    }
    fuzz_model_load(data, size);
    /* magic (8), version (4), length (8) ... CRC-32 (4) */
    if (size < 24 || size > ((size_t)1 << 24))
        return 0;
    uint8_t *fixed = malloc(size);
    if (!fixed)
        return 0;
    memcpy(fixed, data, size);
    for (int i = 0; i < 8; i++)
        fixed[12 + i] = (uint8_t)((uint64_t)size >> (8 * i));
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), fixed, (uInt)(size - 4));
    for (int i = 0; i < 4; i++)
        fixed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    fuzz_model_load(fixed, size);
    free(fixed);
    return 0;
}
