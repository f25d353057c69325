/* The Keras spellings of losses and optimizers that only the Keras
 * readers and writers need, kept in the same table as the public names
 * (vocabulary.c). */
#ifndef CNN_MODEL_VOCABULARY_H
#define CNN_MODEL_VOCABULARY_H

#include "cnn.h"

/* Keras's class name of a loss ("SparseCategoricalCrossentropy"); NULL if
 * loss is not one. */
const char *cnn_loss_keras_class(cnn_loss loss);
/* Keras's class name of an optimizer ("SGD", "Adam", "RMSprop") and the
 * name Keras 3 gives its instances ("SGD", "adam", "rmsprop"); NULL if kind
 * is not one. */
const char *cnn_optimizer_keras_class(cnn_optimizer_kind kind);
const char *cnn_optimizer_keras3_name(cnn_optimizer_kind kind);

#endif
