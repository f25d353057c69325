/* Fuzz harness: Keras files (cnn_model_load_keras_memory).
 *
 * Legacy HDF5 .h5 and Keras 3 .keras (a zip holding config.json,
 * metadata.json and model.weights.h5) are told apart by content, so one
 * harness reaches both readers, libhdf5 and libzip behind them, and the
 * Keras JSON reader for the architecture. A failure must be one of the
 * statuses a damaged file gives (a non-finite weight is CNN_ERR_NUMERIC),
 * leave the model NULL and the info consistent; a model that loads is
 * introspected, run and, when compiled from the file, trained for a step. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cnn_model *m = NULL;
    cnn_keras_info info;
    cnn_status st = cnn_model_load_keras_memory(data, size, "fuzz.keras", &m, &info);
    if (st) {
        static const cnn_status allowed[] = {CNN_ERR_FORMAT, CNN_ERR_SHAPE, CNN_ERR_NO_MEMORY,
                                             CNN_ERR_NUMERIC};
        fuzz_check_failure(st, m, allowed, 4);
        FUZZ_CHECK(!info.compiled && !info.optimizer_state);
        return 0;
    }
    fuzz_check_keras_model(m, &info);
    return 0;
}
