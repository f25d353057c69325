/* Bilinear resizing of NHWC images as tf.image.resize does it (Keras's
 * UpSampling2D(interpolation="bilinear")): half-pixel centers, so output
 * pixel o samples the input at (o + 0.5) * in / out - 0.5, clamped at 0
 * below and to the last pixel above (PyTorch's align_corners=False). */
#ifndef CNN_KERNELS_RESIZE_H
#define CNN_KERNELS_RESIZE_H

#include <stdint.h>

/* y: (batch, oh, ow, c) from x: (batch, h, w, c), overwritten. */
void cnn_resize_bilinear_forward(int batch, int h, int w, int c, int oh, int ow, const float *x,
                                 float *y);
/* The adjoint: dx (batch, h, w, c) overwritten with the gradient of y's
 * dy (batch, oh, ow, c). */
void cnn_resize_bilinear_backward(int batch, int h, int w, int c, int oh, int ow,
                                  const float *dy, float *dx);

#endif
