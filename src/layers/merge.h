/* What the elementwise merge kinds (add.c, subtract.c, multiply.c,
 * average.c, maximum.c, minimum.c) share: Keras's shape rule, the
 * creator, and the loops over their inputs. Each kind's file holds its
 * ops table and names its operation. */
#ifndef CNN_LAYERS_MERGE_H
#define CNN_LAYERS_MERGE_H

#include "layers/layer.h"

typedef enum cnn_merge_op {
    CNN_MERGE_ADD,
    CNN_MERGE_SUBTRACT,
    CNN_MERGE_MULTIPLY,
    CNN_MERGE_AVERAGE,
    CNN_MERGE_MAXIMUM,
    CNN_MERGE_MINIMUM
} cnn_merge_op;

/* The one config field of every elementwise merge: its name. */
extern const cnn_layer_field cnn_merge_fields[1];

/* Keras's shape rule: the inputs' shapes (the batch axis aside) matched
 * from the last axis, each pair of sizes equal or one of them 1, which
 * then broadcasts (forward repeats it, backward sums its gradient over
 * the repeats); else an error naming the layer and both clashing shapes. */
cnn_status cnn_merge_infer(cnn_layer *l, const cnn_shape *in, int n);
cnn_status cnn_merge_create(cnn_layer **out, const cnn_layer_spec *spec, const char *name,
                            const cnn_layer_ops *ops);
void cnn_merge_forward(cnn_merge_op op, const cnn_layer *l, const cnn_layer_io *io);
void cnn_merge_backward(cnn_merge_op op, const cnn_layer *l, const cnn_layer_io *io);

/* An elementwise merge kind's ops table. */
#define CNN_MERGE_OPS(kind_, type_, auto_, min_, max_, forward_, backward_, create_)        \
    {                                                                                     \
        .create = create_, .kind = kind_, .type_name = type_, .auto_name = auto_,         \
        .min_inputs = min_, .max_inputs = max_, .infer_inputs = cnn_merge_infer,          \
        .forward = forward_, .backward = backward_, CNN_LAYER_FIELDS(cnn_merge_fields),   \
        .keras_keys = "",                                                                 \
    }

#endif
