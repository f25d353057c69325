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
/* Whether each value's activation depends on that value alone (all but
 * softmax), so it can be applied tile by tile. */
bool cnn_activation_is_elementwise(cnn_activation a);
/* "relu", "sigmoid", ... */
const char *cnn_activation_name(cnn_activation a);

#endif
