/* The one place that tells model formats apart by content (model_format.c):
 * cnn_model_file_format (there) and cnn_model_open use it on a file, the Keras
 * loader and the .cnn loader's error message on bytes in memory. */
#ifndef CNN_CORE_MODEL_FORMAT_H
#define CNN_CORE_MODEL_FORMAT_H

#include <stddef.h>

#include "cnn.h"

/* The format of the size bytes at b (the whole file). */
cnn_model_format cnn_model_format_of(const unsigned char *b, size_t size);

#endif
