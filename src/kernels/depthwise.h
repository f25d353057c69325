/* Depthwise convolution over NHWC tensors (DepthwiseConv2D, and the first
 * half of SeparableConv2D). With M = mult, input channel c feeds output
 * channels c*M .. c*M + M-1:
 *
 *   d[m, c*M + q] = sum_{ky,kx} x[tap(m, ky, kx), c] * kernel[ky, kx, c, q]
 *
 * over output pixels m = (n * oh + oy) * ow + ox, with Conv2D's padding,
 * strides and dilation (cnn_conv_geom; taps in the padding add nothing).
 * x: (batch, h, w, c), kernel: (kh, kw, c, M), d and dd: (m1 - m0, c*M),
 * row 0 being pixel m0. Callers split the pixels (forward) or the channels
 * (backward) between threads.
 *
 * Each has a naive twin (the plain loop over every pixel and tap, the
 * reference the tests compare with) and a fast version for the
 * instruction set isa (kernels/isa.h), vectorised across channels, for
 * M == 1 (other multipliers, rare, run the naive loops). Forward sums each
 * pixel's in-bounds taps in a register; backward walks output rows tap by
 * tap, keeping each dkernel vector in a register along the row. Both add
 * every sum's terms in the naive loops' order with the same float
 * operations, so fast and naive agree to the bit. */
#ifndef CNN_KERNELS_DEPTHWISE_H
#define CNN_KERNELS_DEPTHWISE_H

#include <stdint.h>

#include "kernels/conv.h"
#include "kernels/isa.h"

/* d = the depthwise convolution for pixels [m0, m1), written. */
void cnn_depthwise_forward_naive(const cnn_conv_geom *g, int mult, const float *x,
                                 const float *kernel, int64_t m0, int64_t m1, float *d);
void cnn_depthwise_forward(cnn_isa isa, const cnn_conv_geom *g, int mult, const float *x,
                           const float *kernel, int64_t m0, int64_t m1, float *d);

/* Given dd = dLoss/dd for pixels [m0, m1), for input channels [c0, c1) only:
 *   dkernel[ky, kx, c, q] += sum_m x[tap, c] dd[m, c*M + q]
 *   dx[tap, c] += sum_q kernel[ky, kx, c, q] dd[m, c*M + q]   (dx may be NULL)
 * summed over pixels in increasing m. */
void cnn_depthwise_backward_naive(const cnn_conv_geom *g, int mult, const float *x,
                                  const float *kernel, const float *dd, int64_t m0, int64_t m1,
                                  int c0, int c1, float *dkernel, float *dx);
void cnn_depthwise_backward(cnn_isa isa, const cnn_conv_geom *g, int mult, const float *x,
                            const float *kernel, const float *dd, int64_t m0, int64_t m1, int c0,
                            int c1, float *dkernel, float *dx);

#endif
