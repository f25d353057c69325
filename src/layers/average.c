/* Average (Keras Average): the mean of its inputs (ensembles). */
#include "layers/merge.h"

static cnn_status create(cnn_layer **out, const cnn_layer_spec *spec, const char *name);

static void forward(cnn_layer *l, const cnn_layer_io *io)
{
    cnn_merge_forward(CNN_MERGE_AVERAGE, l, io);
}

static void backward(cnn_layer *l, const cnn_layer_io *io)
{
    cnn_merge_backward(CNN_MERGE_AVERAGE, l, io);
}

const cnn_layer_ops cnn_average_ops =
    CNN_MERGE_OPS(CNN_LAYER_AVERAGE, "Average", "average", 2, CNN_MAX_LAYER_INPUTS,
                  forward, backward, create);

static cnn_status create(cnn_layer **out, const cnn_layer_spec *spec, const char *name)
{
    return cnn_merge_create(out, spec, name, &cnn_average_ops);
}
