/* Activations applied in place on rows of n values, and their backward
 * passes written in terms of the output y (all five have derivatives that
 * y alone determines, so the pre-activation need not be kept). */
#ifndef CNN_KERNELS_ACTIVATION_H
#define CNN_KERNELS_ACTIVATION_H

#include <stdbool.h>
#include <stdint.h>

#include "cnn.h"

/* y = f(y) over rows x n (softmax normalises each row of n). */
void cnn_activation_forward(cnn_activation a, float *y, int64_t rows, int n);
/* dy := dy * f'(.) given the output y:
 *   relu: dy * (y > 0); sigmoid: dy * y (1 - y); tanh: dy * (1 - y^2);
 *   softmax: y * (dy - sum_j dy_j y_j) per row. */
void cnn_activation_backward(cnn_activation a, const float *y, float *dy, int64_t rows, int n);
/* f'(z) from the output y = f(z) of an elementwise activation. */
static inline float cnn_activation_derivative(cnn_activation a, float y)
{
    switch (a) {
    case CNN_ACTIVATION_RELU: return y > 0 ? 1.0f : 0.0f;
    case CNN_ACTIVATION_SIGMOID: return y * (1.0f - y);
    case CNN_ACTIVATION_TANH: return 1.0f - y * y;
    default: return 1.0f;
    }
}

/* Whether each value's activation depends on that value alone (all but
 * softmax), so it can be applied tile by tile. */
bool cnn_activation_is_elementwise(cnn_activation a);
/* "relu", "sigmoid", ... */
const char *cnn_activation_name(cnn_activation a);

#endif
