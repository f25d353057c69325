/* The model file in memory (internal): what cnn_model_save writes, as a
 * buffer. The Keras reader's child process hands its model back this way
 * (io/keras_isolate.c), so the parent reads it with the checked loader. */
#ifndef CNN_MODEL_FILE_H
#define CNN_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "cnn.h"

/* The most optimizer steps (and steps into an epoch) a loaded file may
 * record: Adam's bias correction takes the count as a double, exact to
 * 2^53, and counting on from INT64_MAX would overflow. A step a microsecond
 * takes 285 years to get there. */
#define CNN_MAX_STEPS ((int64_t)1 << 53)

/* The bytes of the model file (malloc'd; free them), byte for byte what
 * cnn_model_save writes; cnn_model_load_memory reads them back. */
cnn_status cnn_model_encode(const cnn_model *m, unsigned char **out, size_t *size);

#endif
