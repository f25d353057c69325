/* Every layer kind, one line each (and its ops declared above): how the
 * model finds a kind's creator, ops and fields, and how Keras class names
 * map to kinds. The order is the order in which descriptions list the
 * kinds in their messages. */
#include <string.h>

#include "layers/layer.h"

extern const cnn_layer_ops cnn_conv2d_ops, cnn_dense_ops, cnn_max_pooling2d_ops,
    cnn_average_pooling2d_ops, cnn_activation_ops, cnn_dropout_ops, cnn_flatten_ops,
    cnn_global_average_pooling2d_ops, cnn_global_max_pooling2d_ops,
    cnn_batch_normalization_ops, cnn_leaky_relu_ops, cnn_elu_ops, cnn_relu_ops,
    cnn_zero_padding2d_ops, cnn_reshape_ops, cnn_depthwise_conv2d_ops,
    cnn_separable_conv2d_ops, cnn_rescaling_ops;

static const cnn_layer_ops *const registry[] = {
    &cnn_conv2d_ops,
    &cnn_dense_ops,
    &cnn_max_pooling2d_ops,
    &cnn_average_pooling2d_ops,
    &cnn_activation_ops,
    &cnn_dropout_ops,
    &cnn_flatten_ops,
    &cnn_global_average_pooling2d_ops,
    &cnn_global_max_pooling2d_ops,
    &cnn_batch_normalization_ops,
    &cnn_leaky_relu_ops,
    &cnn_elu_ops,
    &cnn_relu_ops,
    &cnn_zero_padding2d_ops,
    &cnn_reshape_ops,
    &cnn_depthwise_conv2d_ops,
    &cnn_separable_conv2d_ops,
    &cnn_rescaling_ops,
};

#define REGISTRY_SIZE (sizeof registry / sizeof registry[0])

const cnn_layer_ops *cnn_layer_kind_find(cnn_layer_kind kind)
{
    for (size_t i = 0; i < REGISTRY_SIZE; i++)
        if (registry[i]->kind == kind)
            return registry[i];
    return NULL;
}

const cnn_layer_ops *cnn_layer_kind_at(size_t i)
{
    return i < REGISTRY_SIZE ? registry[i] : NULL;
}

const cnn_layer_field *cnn_layer_field_of_type(const cnn_layer_ops *ops, cnn_field_type type)
{
    for (int i = 0; ops && i < ops->n_fields; i++)
        if (ops->fields[i].type == type && !(ops->fields[i].flags & CNN_FIELD_ALIAS))
            return &ops->fields[i];
    return NULL;
}

const char *cnn_layer_kind_name(cnn_layer_kind kind)
{
    const cnn_layer_ops *ops = cnn_layer_kind_find(kind);
    return ops ? ops->type_name : NULL;
}

cnn_layer_kind cnn_layer_kind_from_name(const char *name)
{
    for (size_t i = 0; name && i < REGISTRY_SIZE; i++)
        if (strcmp(registry[i]->type_name, name) == 0)
            return registry[i]->kind;
    return 0;
}
