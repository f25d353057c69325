/* im2col / col2im over a range of output pixels, for NHWC tensors.
 *
 * The output pixels of a whole batch are numbered m = (n * oh + oy) * ow + ox,
 * which is also their row in the NHWC output (batch*oh*ow, filters). A column
 * row holds the receptive field of one output pixel in kernel order
 * (ky, kx, c), so col[M x K] * kernel[K x filters] is the convolution with
 * K = kh * kw * c and the kernel stored (kh, kw, c, filters) as Keras does.
 * Working on [m0, m1) ranges lets callers bound the scratch memory. */
#ifndef CNN_KERNELS_CONV_H
#define CNN_KERNELS_CONV_H

#include <stdint.h>

/* Largest kernel, pool, stride or dilation a layer accepts. */
#define CNN_CONV_MAX_WINDOW 65536

typedef struct cnn_conv_geom {
    int h, w, c;          /* input rows, cols, channels */
    int kh, kw;           /* kernel size */
    int sh, sw;           /* strides */
    int dh, dw;           /* dilation */
    int pad_top, pad_left;
    int oh, ow;           /* output rows, cols */
} cnn_conv_geom;

/* TensorFlow's rules. valid: out = floor((in - span) / stride) + 1 (0 if the
 * span exceeds the input); same: out = ceil(in / stride), the total padding
 * split with the odd extra at the bottom/right. span = (k - 1) * d + 1.
 * Returns 0 when no output fits. Layers keep k, stride and dilation within
 * CNN_CONV_MAX_WINDOW so every index below fits an int. */
int cnn_conv_out_size(int in, int k, int stride, int dilation, int same, int *pad_before);

/* col[(m - m0) * K + (ky * kw + kx) * c + ci] = x at that tap, 0 in padding.
 * x: (batch, h, w, c). */
void cnn_im2col_rows(const cnn_conv_geom *g, const float *x, int64_t m0, int64_t m1, float *col);

/* The adjoint: dx at each tap += col entry. dx: (batch, h, w, c). */
void cnn_col2im_rows_add(const cnn_conv_geom *g, const float *col, int64_t m0, int64_t m1,
                         float *dx);

/* y[m * n + j] += bias[j] for rows [0, rows). */
void cnn_add_bias_rows(float *y, const float *bias, int64_t rows, int n);
/* db[j] += sum over rows of dy[m * n + j]. */
void cnn_bias_grad_rows(const float *dy, int64_t rows, int n, float *db);

#endif
