/* 2-D max and average pooling over NHWC tensors, using the convolution
 * geometry (kernel = pool window, dilation 1). Taps outside the input
 * (padding 'same') are ignored: max takes the in-bounds maximum and average
 * divides by the number of in-bounds cells, as TensorFlow does.
 * x: (batch, h, w, c), y: (batch, oh, ow, c).
 *
 * Each function works on output rows [r0, r1) of the batch, numbered
 * r = n * oh + oy, so callers can split the work across threads. Backward
 * accumulates into dx; two row ranges touch the same dx cells only when
 * windows overlap (stride < pool size). */
#ifndef CNN_KERNELS_POOL_H
#define CNN_KERNELS_POOL_H

#include "cnn.h"
#include "kernels/conv.h"
#include "kernels/isa.h"

/* The max-pooling kernels run on the instruction set isa (kernels/isa.h):
 * CNN_ISA_GENERIC is the 4-wide reference, AVX2 and AVX-512 work 8 and 16
 * channels at a time and give the same bits. */
void cnn_maxpool_forward(cnn_isa isa, const cnn_conv_geom *g, const float *x, float *y, int64_t r0,
                         int64_t r1);
/* dx += dy routed to the first input of each window equal to its maximum
 * y (the forward output, so nothing else is stored). */
void cnn_maxpool_backward(cnn_isa isa, const cnn_conv_geom *g, const float *x, const float *y,
                          const float *dy, float *dx, int64_t r0, int64_t r1);
/* The same with dx written over x, for windows that tile the input
 * (stride == pool size): each input cell becomes dy * f'(y) at its window's
 * first maximum and 0 elsewhere, f being the activation that produced x
 * (its derivative taken from the maximum y, which equals x there). Cells no
 * window covers (the bottom/right remainder of 'valid') are left for the
 * caller to clear. */
void cnn_maxpool_backward_over_x(cnn_isa isa, const cnn_conv_geom *g, float *x, const float *y,
                                 const float *dy, cnn_activation f, int64_t r0, int64_t r1);
void cnn_avgpool_forward(const cnn_conv_geom *g, const float *x, float *y, int64_t r0, int64_t r1);
/* dx += dy / (in-bounds cells) over each window. */
void cnn_avgpool_backward(const cnn_conv_geom *g, const float *dy, float *dx, int64_t r0,
                          int64_t r1);

#endif
