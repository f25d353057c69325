/* The naive twin of Conv2DTranspose (src/layers/conv2d_transpose.c, which
 * runs as GEMM + col2im): a direct scatter of every input value through the
 * kernel, for tests to hold the fast path against. */
#ifndef CNN_KERNELS_CONV_TRANSPOSE_H
#define CNN_KERNELS_CONV_TRANSPOSE_H

#include <stdint.h>

#include "kernels/conv.h"

/* g is the adjoint convolution's geometry: g->h, g->w, g->c the transpose's
 * output (rows, cols, filters), g->oh, g->ow its input rows and cols.
 * x: (batch, oh, ow, in_c); kernel: (kh, kw, c, in_c); bias: (c) or NULL;
 * y: (batch, h, w, c), overwritten. Input pixel (iy, ix) through kernel tap
 * (ky, kx) lands on output (iy * sh - pad_top + ky * dh, ix * sw - pad_left
 * + kx * dw) when that is inside the output. */
void cnn_conv_transpose_naive(const cnn_conv_geom *g, int batch, int in_c, const float *x,
                              const float *kernel, const float *bias, float *y);

#endif
