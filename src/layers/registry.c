/* Every layer kind, one line each (and its ops declared above): how the
 * model finds a kind's creator, ops and fields, and how Keras class names
 * map to kinds. The order is the order in which descriptions list the
 * kinds in their messages. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"

#include "layers/layer.h"

extern const cnn_layer_ops cnn_conv2d_ops, cnn_dense_ops, cnn_max_pooling2d_ops,
    cnn_average_pooling2d_ops, cnn_activation_ops, cnn_dropout_ops, cnn_flatten_ops,
    cnn_global_average_pooling2d_ops, cnn_global_max_pooling2d_ops,
    cnn_batch_normalization_ops, cnn_leaky_relu_ops, cnn_elu_ops, cnn_relu_ops,
    cnn_zero_padding2d_ops, cnn_reshape_ops, cnn_depthwise_conv2d_ops,
    cnn_separable_conv2d_ops, cnn_rescaling_ops, cnn_conv2d_transpose_ops,
    cnn_up_sampling2d_ops, cnn_cropping2d_ops, cnn_spatial_dropout2d_ops, cnn_softmax_ops,
    cnn_layer_normalization_ops, cnn_add_ops, cnn_subtract_ops,
    cnn_multiply_ops, cnn_average_ops, cnn_maximum_ops, cnn_minimum_ops, cnn_concatenate_ops;

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
    &cnn_conv2d_transpose_ops,
    &cnn_up_sampling2d_ops,
    &cnn_cropping2d_ops,
    &cnn_spatial_dropout2d_ops,
    &cnn_softmax_ops,
    &cnn_layer_normalization_ops,
    &cnn_add_ops,
    &cnn_subtract_ops,
    &cnn_multiply_ops,
    &cnn_average_ops,
    &cnn_maximum_ops,
    &cnn_minimum_ops,
    &cnn_concatenate_ops,
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

cnn_status cnn_layer_kind_from_name(const char *name, cnn_layer_kind *out)
{
    if (!out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "layer_kind_from_name: out is NULL");
    for (size_t i = 0; name && i < REGISTRY_SIZE; i++)
        if (strcmp(registry[i]->type_name, name) == 0
            || (registry[i]->class_alias && strcmp(registry[i]->class_alias, name) == 0)) {
            *out = registry[i]->kind;
            return CNN_OK;
        }
    char list[600] = "";
    for (size_t i = 0, at = 0; i < REGISTRY_SIZE && at < sizeof list; i++)
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "",
                               registry[i]->type_name);
    return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "layer kind: expected one of %s, got '%s'", list,
                    name ? name : "(null)");
}
