/* Batch normalisation's per-channel maths (the layer, src/layers/batch_norm.c,
 * owns the parameters, moving averages and threads). Every function works
 * on x viewed as rows x n values with row stride ld: a range of n channels
 * of an NHWC tensor whose rows are its batch x height x width pixels, so
 * callers split channels between threads by offsetting the pointers.
 * Per-channel arrays (mean, scale, ...) hold n values.
 *
 * Each has a naive twin (the plain loop, double sums: the reference the
 * tests compare with) and a fast version, a vector of channels at a time,
 * for the instruction set isa (kernels/isa.h; CNN_ISA_AUTO in the layers).
 * The fast sums add rows in float over blocks of CNN_BN_ROW_BLOCK rows and
 * join the blocks in double, in block order, so 4e6 rows lose little and
 * vectorise. The _blocks versions compute the float sums of a range of
 * blocks only, so callers can split rows between threads and join the
 * blocks afterwards (cnn_bn_join_blocks): the same bits as the whole
 * reduction, whatever the split. */
#ifndef CNN_KERNELS_BATCH_NORM_H
#define CNN_KERNELS_BATCH_NORM_H

#include <stdint.h>

#include "kernels/isa.h"

/* Rows summed in float before the double totals. */
#define CNN_BN_ROW_BLOCK 64

/* mean[k] = sum_r x[r, k] / rows;  var[k] = sum_r (x[r, k] - mean[k])^2 / rows
 * (biased, as Keras normalises with). rows == 0 gives 0 and 0. The fast
 * version sums x - x[0, k] (the first row as a shift, so that
 * var = E[d^2] - E[d]^2 cancels little even when the mean is large). */
void cnn_bn_stats_naive(const float *x, int64_t rows, int n, int64_t ld, double *mean,
                        double *var);
void cnn_bn_stats(cnn_isa isa, const float *x, int64_t rows, int n, int64_t ld, double *mean,
                  double *var);

/* Blocks are rows [b * CNN_BN_ROW_BLOCK, (b + 1) * CNN_BN_ROW_BLOCK) (the
 * last one shorter); block b's 2n float sums go to sums + (b - b0) * 2n:
 * n sums of x - shift, then n of (x - shift)^2, with shift = x's row 0 for
 * the bits of cnn_bn_stats. cnn_bn_stats_join turns the sums of all
 * ceil(rows / CNN_BN_ROW_BLOCK) blocks into mean and var. */
void cnn_bn_stats_blocks(cnn_isa isa, const float *x, int64_t rows, int n, int64_t ld,
                         const float *shift, int64_t b0, int64_t b1, float *sums);
void cnn_bn_stats_join(const float *sums, int64_t rows, int n, const float *shift, double *mean,
                       double *var);
/* The double totals s1, s2 of channels [0, nb) of the block sums of rows
 * rows and n channels (the layout above; sums may point at channel cb of
 * it), joined in block order. */
void cnn_bn_join_blocks(const float *sums, int64_t rows, int n, int nb, double *s1, double *s2);

/* y[r, k] = x[r, k] * scale[k] + shift[k] (y has x's layout; y == x is fine).
 * Both versions give the same bits. */
void cnn_bn_affine_naive(const float *x, float *y, int64_t rows, int n, int64_t ld,
                         const float *scale, const float *shift);
void cnn_bn_affine(cnn_isa isa, const float *x, float *y, int64_t rows, int n, int64_t ld,
                   const float *scale, const float *shift);

/* Backward sums, g = dLoss/dy, xhat = (x - mean) * inv_std:
 *   sum_g[k] = sum_r g[r, k];  sum_gx[k] = sum_r g[r, k] xhat[r, k] */
void cnn_bn_grad_sums_naive(const float *x, const float *g, int64_t rows, int n, int64_t ld,
                            const float *mean, const float *inv_std, double *sum_g,
                            double *sum_gx);
void cnn_bn_grad_sums(cnn_isa isa, const float *x, const float *g, int64_t rows, int n,
                      int64_t ld, const float *mean, const float *inv_std, double *sum_g,
                      double *sum_gx);
/* Blocks [b0, b1) of those sums (layout as cnn_bn_stats_blocks: n sums of
 * g, then n of g xhat); cnn_bn_join_blocks gives sum_g and sum_gx. */
void cnn_bn_grad_sums_blocks(cnn_isa isa, const float *x, const float *g, int64_t rows, int n,
                             int64_t ld, const float *mean, const float *inv_std, int64_t b0,
                             int64_t b1, float *sums);

/* dx[r, k] = a[k] (g[r, k] - mg[k] - xhat[r, k] mgx[k]), written; with
 * a = gamma inv_std, mg = mean(g), mgx = mean(g xhat) in training, and
 * mg = mgx = 0 in inference (the statistics are constants there). dx has
 * x's layout. Both versions give the same bits. */
void cnn_bn_grad_input_naive(const float *x, const float *g, float *dx, int64_t rows, int n,
                             int64_t ld, const float *a, const float *mean, const float *inv_std,
                             const float *mg, const float *mgx);
void cnn_bn_grad_input(cnn_isa isa, const float *x, const float *g, float *dx, int64_t rows,
                       int n, int64_t ld, const float *a, const float *mean,
                       const float *inv_std, const float *mg, const float *mgx);

#endif
