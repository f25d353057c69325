/* The names of losses and optimizers: one table each, read by the public
 * name <-> enum functions, the Keras readers and writers and the CLI.
 * Unknown names and values follow cnn_activation_name's convention: a name
 * function returns NULL, a from_name function CNN_ERR_INVALID_ARGUMENT with
 * the expected names. Matching is case-insensitive, as Keras's own lookup
 * of optimizer names is, so a class name ("Adam") is its own alias. */
#include "model/vocabulary.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

/* The first row of a value gives its name; Keras writes the class name in
 * a config when the loss is an object (from_logits). */
static const struct {
    const char *name;
    cnn_loss loss;
    const char *keras_class;
} losses[] = {
    {"sparse_categorical_crossentropy", CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
     "SparseCategoricalCrossentropy"},
    {"categorical_crossentropy", CNN_LOSS_CATEGORICAL_CROSSENTROPY, "CategoricalCrossentropy"},
    {"binary_crossentropy", CNN_LOSS_BINARY_CROSSENTROPY, "BinaryCrossentropy"},
    {"mean_squared_error", CNN_LOSS_MSE, "MeanSquaredError"},
    {"mse", CNN_LOSS_MSE, "MeanSquaredError"},
};
#define N_LOSSES (sizeof losses / sizeof losses[0])

static const struct {
    const char *name;
    cnn_optimizer_kind kind;
    const char *keras_class, *keras3_name;
} optimizers[] = {
    {"sgd", CNN_OPTIMIZER_SGD, "SGD", "SGD"},
    {"adam", CNN_OPTIMIZER_ADAM, "Adam", "adam"},
    {"rmsprop", CNN_OPTIMIZER_RMSPROP, "RMSprop", "rmsprop"},
};
#define N_OPTIMIZERS (sizeof optimizers / sizeof optimizers[0])

static int loss_row(cnn_loss loss)
{
    for (size_t i = 0; i < N_LOSSES; i++)
        if (losses[i].loss == loss)
            return (int)i;
    return -1;
}

const char *cnn_loss_name(cnn_loss loss)
{
    int i = loss_row(loss);
    return i < 0 ? NULL : losses[i].name;
}

const char *cnn_loss_keras_class(cnn_loss loss)
{
    int i = loss_row(loss);
    return i < 0 ? NULL : losses[i].keras_class;
}

cnn_status cnn_loss_from_name(const char *name, cnn_loss *out)
{
    if (!out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "loss_from_name: out is NULL");
    for (size_t i = 0; name && i < N_LOSSES; i++)
        if (strcasecmp(name, losses[i].name) == 0 || strcasecmp(name, losses[i].keras_class) == 0) {
            *out = losses[i].loss;
            return CNN_OK;
        }
    return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "loss: expected sparse_categorical_crossentropy,"
                    " categorical_crossentropy, binary_crossentropy, mean_squared_error or mse"
                    " (or a Keras class name such as SparseCategoricalCrossentropy), got '%s'",
                    name ? name : "(null)");
}

static int optimizer_row(cnn_optimizer_kind kind)
{
    for (size_t i = 0; i < N_OPTIMIZERS; i++)
        if (optimizers[i].kind == kind)
            return (int)i;
    return -1;
}

const char *cnn_optimizer_name(cnn_optimizer_kind kind)
{
    int i = optimizer_row(kind);
    return i < 0 ? NULL : optimizers[i].name;
}

const char *cnn_optimizer_keras_class(cnn_optimizer_kind kind)
{
    int i = optimizer_row(kind);
    return i < 0 ? NULL : optimizers[i].keras_class;
}

const char *cnn_optimizer_keras3_name(cnn_optimizer_kind kind)
{
    int i = optimizer_row(kind);
    return i < 0 ? NULL : optimizers[i].keras3_name;
}

cnn_status cnn_optimizer_from_name(const char *name, cnn_optimizer_kind *out)
{
    if (!out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "optimizer_from_name: out is NULL");
    for (size_t i = 0; name && i < N_OPTIMIZERS; i++)
        if (strcasecmp(name, optimizers[i].name) == 0) {
            *out = optimizers[i].kind;
            return CNN_OK;
        }
    return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "optimizer: expected sgd, adam or rmsprop (any"
                    " case, as Keras's SGD, Adam, RMSprop), got '%s'", name ? name : "(null)");
}
