/* Minimum (Keras Minimum): the smallest of its inputs, elementwise. */
#include "layers/merge.h"

static cnn_status create(cnn_layer **out, const cnn_layer_spec *spec, const char *name);

static void forward(cnn_layer *l, const cnn_layer_io *io)
{
    cnn_merge_forward(CNN_MERGE_MINIMUM, l, io);
}

static void backward(cnn_layer *l, const cnn_layer_io *io)
{
    cnn_merge_backward(CNN_MERGE_MINIMUM, l, io);
}

const cnn_layer_ops cnn_minimum_ops =
    CNN_MERGE_OPS(CNN_LAYER_MINIMUM, "Minimum", "minimum", 2, CNN_MAX_LAYER_INPUTS,
                  forward, backward, create);

static cnn_status create(cnn_layer **out, const cnn_layer_spec *spec, const char *name)
{
    return cnn_merge_create(out, spec, name, &cnn_minimum_ops);
}
