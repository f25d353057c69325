/* Global average and max pooling over NHWC tensors (GlobalAveragePooling2D,
 * GlobalMaxPooling2D): x and dx (batch, hw, c) with hw = rows * cols, y and
 * dy (batch, c).
 *
 * Each has a naive twin (the plain loop, the reference the tests compare
 * with) and a fast version for the instruction set isa (kernels/isa.h),
 * which walks each image once, a vector of channels at a time, where the
 * naive ones walk it once per channel. Both give the same bits: the average
 * sums in double in pixel order (a 2000x2000 map has 4e6 terms), the max
 * keeps the first maximum (NaNs are never taken, unless at pixel 0). */
#ifndef CNN_KERNELS_GLOBAL_POOL_H
#define CNN_KERNELS_GLOBAL_POOL_H

#include <stdint.h>

#include "kernels/isa.h"

/* y[n, c] = sum_p x[n, p, c] / hw */
void cnn_global_avgpool_forward_naive(const float *x, float *y, int64_t batch, int64_t hw, int c);
void cnn_global_avgpool_forward(cnn_isa isa, const float *x, float *y, int64_t batch, int64_t hw,
                                int c);
/* dx[n, p, c] = dy[n, c] / hw, written */
void cnn_global_avgpool_backward_naive(const float *dy, float *dx, int64_t batch, int64_t hw,
                                       int c);
void cnn_global_avgpool_backward(cnn_isa isa, const float *dy, float *dx, int64_t batch,
                                 int64_t hw, int c);

/* y[n, c] = max_p x[n, p, c] (-inf for hw == 0) */
void cnn_global_maxpool_forward_naive(const float *x, float *y, int64_t batch, int64_t hw, int c);
void cnn_global_maxpool_forward(cnn_isa isa, const float *x, float *y, int64_t batch, int64_t hw,
                                int c);
/* dx[n, p, c] = dy[n, c] at the first p holding the maximum of x[n, :, c],
 * 0 elsewhere (written) */
void cnn_global_maxpool_backward_naive(const float *x, const float *dy, float *dx, int64_t batch,
                                       int64_t hw, int c);
void cnn_global_maxpool_backward(cnn_isa isa, const float *x, const float *dy, float *dx,
                                 int64_t batch, int64_t hw, int c);

#endif
