/* Fuzz harness: the model file (cnn_model_load_memory).
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
