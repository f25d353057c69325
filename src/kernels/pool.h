/* 2-D max and average pooling over NHWC tensors, using the convolution
 * geometry (kernel = pool window, dilation 1). Taps outside the input
 * (padding 'same') are ignored: max takes the in-bounds maximum and average
 * divides by the number of in-bounds cells, as TensorFlow does.
 * x: (batch, h, w, c), y: (batch, oh, ow, c). */
#ifndef CNN_KERNELS_POOL_H
#define CNN_KERNELS_POOL_H

#include "kernels/conv.h"

void cnn_maxpool_forward(const cnn_conv_geom *g, int batch, const float *x, float *y);
/* dx += dy routed to the first maximal input of each window (recomputed
 * from x, so forward stores nothing). */
void cnn_maxpool_backward(const cnn_conv_geom *g, int batch, const float *x, const float *dy,
                          float *dx);
void cnn_avgpool_forward(const cnn_conv_geom *g, int batch, const float *x, float *y);
/* dx += dy / (in-bounds cells) over each window. */
void cnn_avgpool_backward(const cnn_conv_geom *g, int batch, const float *dy, float *dx);

#endif
