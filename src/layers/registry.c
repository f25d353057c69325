/* Every layer kind, one line each: how the model finds a kind's creator,
 * ops and fields, and how Keras class names map to kinds. The order is the
 * order in which descriptions list the kinds in their messages. */
#include <string.h>

#include "layers/layer.h"

static const cnn_layer_kind_entry registry[] = {
    {&cnn_conv2d_ops, cnn_layer_conv2d_create},
    {&cnn_dense_ops, cnn_layer_dense_create},
    {&cnn_max_pooling2d_ops, cnn_layer_pool2d_create},
    {&cnn_average_pooling2d_ops, cnn_layer_pool2d_create},
    {&cnn_activation_ops, cnn_layer_activation_create},
    {&cnn_dropout_ops, cnn_layer_dropout_create},
    {&cnn_flatten_ops, cnn_layer_flatten_create},
    {&cnn_global_average_pooling2d_ops, cnn_layer_global_pool2d_create},
    {&cnn_global_max_pooling2d_ops, cnn_layer_global_pool2d_create},
    {&cnn_batch_normalization_ops, cnn_layer_batch_normalization_create},
    {&cnn_leaky_relu_ops, cnn_layer_relu_family_create},
    {&cnn_elu_ops, cnn_layer_relu_family_create},
    {&cnn_relu_ops, cnn_layer_relu_family_create},
    {&cnn_zero_padding2d_ops, cnn_layer_zero_padding2d_create},
    {&cnn_reshape_ops, cnn_layer_reshape_create},
    {&cnn_depthwise_conv2d_ops, cnn_layer_depthwise_conv2d_create},
    {&cnn_separable_conv2d_ops, cnn_layer_separable_conv2d_create},
    {&cnn_rescaling_ops, cnn_layer_rescaling_create},
};

#define REGISTRY_SIZE (sizeof registry / sizeof registry[0])

const cnn_layer_kind_entry *cnn_layer_kind_find(cnn_layer_kind kind)
{
    for (size_t i = 0; i < REGISTRY_SIZE; i++)
        if (registry[i].ops->kind == kind)
            return &registry[i];
    return NULL;
}

const cnn_layer_kind_entry *cnn_layer_kind_at(size_t i)
{
    return i < REGISTRY_SIZE ? &registry[i] : NULL;
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
    const cnn_layer_kind_entry *e = cnn_layer_kind_find(kind);
    return e ? e->ops->type_name : NULL;
}

cnn_layer_kind cnn_layer_kind_from_name(const char *name)
{
    for (size_t i = 0; name && i < REGISTRY_SIZE; i++)
        if (strcmp(registry[i].ops->type_name, name) == 0)
            return registry[i].ops->kind;
    return 0;
}
