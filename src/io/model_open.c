/* Opening a model whatever its format: core/model_format.c tells which,
 * the format's own loader reads it. A Keras file is read behind the wall
 * (cnn_model_load_keras_isolated): whoever opens "any model" opens files
 * from others, and libhdf5 can crash or hang on damaged ones. */
#include <string.h>

#include "core/error.h"
#include "core/model_format.h"

cnn_status cnn_model_open(const char *path, cnn_model **out, cnn_model_format *format,
                          cnn_keras_info *keras)
{
    if (out)
        *out = NULL;
    if (keras)
        memset(keras, 0, sizeof *keras);
    if (!path || !out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "model_open: path and out must not be NULL");
    cnn_model_format f;
    cnn_status st = cnn_model_file_format(path, &f);
    if (st)
        return st;
    if (format)
        *format = f;
    switch (f) {
    case CNN_MODEL_FORMAT_CNN: return cnn_model_load(path, out);
    case CNN_MODEL_FORMAT_KERAS_H5:
    case CNN_MODEL_FORMAT_KERAS_ZIP: return cnn_model_load_keras_isolated(path, 0, out, keras);
    case CNN_MODEL_FORMAT_QUANTIZED:
        return cnn_fail(CNN_ERR_FORMAT, "%s: an int8 quantized model (load it with "
                        "cnn_qmodel_load), not a float model", path);
    default: return cnn_model_from_description(path, out);
    }
}
