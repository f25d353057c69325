/* Layer normalization over the last axis: rows of n values, each row
 * normalised by its own mean and biased variance (Keras
 * LayerNormalization(axis=-1)). */
#ifndef CNN_KERNELS_LAYER_NORM_H
#define CNN_KERNELS_LAYER_NORM_H

#include <stdint.h>

/* y = gamma (x - mean) / sqrt(var + eps) + beta per row; gamma, beta (n)
 * may be NULL (1 and 0). Keeps each row's mean and 1 / sqrt(var + eps) in
 * mean[rows], rstd[rows] for backward. */
void cnn_layer_norm_forward(int64_t rows, int n, float eps, const float *x, const float *gamma,
                            const float *beta, float *y, float *mean, float *rstd);
/* dx (rows x n) overwritten; dgamma, dbeta (n) accumulated (+=) when not
 * NULL. With xhat = (x - mean) rstd and g = dy gamma:
 * dx = rstd (g - mean(g) - xhat mean(g xhat)). */
void cnn_layer_norm_backward(int64_t rows, int n, const float *x, const float *dy,
                             const float *gamma, const float *mean, const float *rstd, float *dx,
                             float *dgamma, float *dbeta);
/* The naive twin of forward: two passes in double precision, no saved
 * statistics (tests hold the float kernel against it). */
void cnn_layer_norm_naive(int64_t rows, int n, float eps, const float *x, const float *gamma,
                          const float *beta, float *y);

#endif
