/* Losses and the accuracy metric over a batch of rows of n outputs.
 * Keras semantics: per-example loss averaged over the last axis where Keras
 * does (binary cross-entropy, mse), the batch loss is the mean over examples,
 * probabilities are clipped to [1e-7, 1 - 1e-7] when the loss must work
 * from probabilities. */
#ifndef CNN_KERNELS_LOSS_H
#define CNN_KERNELS_LOSS_H

#include <stdbool.h>
#include <stdint.h>

#include "cnn.h"

/* Whether the loss can be computed in log space from the final layer's
 * pre-activation (softmax + categorical CE, sigmoid + binary CE). */
bool cnn_loss_fuses_with(cnn_loss loss, cnn_activation final_activation);
/* Whether the loss reads probabilities (the cross-entropies) and can take
 * logits instead (from_logits). */
bool cnn_loss_is_probabilistic(cnn_loss loss);
/* Whether the loss averages a value per output element (mse, binary CE), so
 * any output shape is one flat vector per example to it. */
bool cnn_loss_is_elementwise(cnn_loss loss);

typedef struct cnn_loss_batch {
    cnn_loss loss;
    bool fused;            /* use logits, the gradient is w.r.t. them */
    bool from_logits;      /* fused, and output is the logits themselves (Keras
                              from_logits=True): probabilities and accuracy
                              come from softmax / sigmoid of them */
    int batch, n;          /* rows, outputs per row */
    const float *logits;   /* (batch, n) pre-activation, when fused */
    const float *output;   /* (batch, n) the model's output */
    const float *target;   /* (batch) class ids for sparse CE, else (batch, n) */
    float grad_scale;      /* gradient multiplier, normally 1 / batch */
} cnn_loss_batch;

/* Sum over the batch of per-example losses and accuracies; grad (may be
 * NULL) receives d(mean loss)/d(logits or output) times grad_scale * batch.
 * Fails (CNN_ERR_INVALID_ARGUMENT) on a sparse label outside [0, n). */
cnn_status cnn_loss_compute(const cnn_loss_batch *b, double *loss_sum, double *correct_sum,
                            float *grad);

#endif
