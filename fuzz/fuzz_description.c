/* Fuzz harness: model descriptions, the text format and Keras JSON
 * (cnn_model_from_description_memory; the content decides which reader).
 * A model that is described is introspected and, when small, run. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cnn_model *m = NULL;
    cnn_status st = cnn_model_from_description_memory((const char *)data, size, "fuzz.model", &m);
    if (st) {
        static const cnn_status allowed[] = {CNN_ERR_FORMAT, CNN_ERR_SHAPE, CNN_ERR_NO_MEMORY};
        fuzz_check_failure(st, m, allowed, 3);
        return 0;
    }
    FUZZ_CHECK(m != NULL);
    fuzz_exercise_model(m);
    cnn_model_free(m);
    return 0;
}
