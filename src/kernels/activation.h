/* Activations applied in place on rows of n values, and their backward
 * passes. Most derivatives follow from the output y alone, so the
 * pre-activation need not be kept; silu, gelu, gelu_tanh, hard_silu and
 * mish are not monotonic (two inputs share an output), so their backward
 * reads the pre-activation z, which the model keeps for them
 * (cnn_activation_needs_input). */
#ifndef CNN_KERNELS_ACTIVATION_H
#define CNN_KERNELS_ACTIVATION_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cnn.h"

#define CNN_ACTIVATION_COUNT 18 /* one past the last cnn_activation */

/* Keras 3's constants. */
#define CNN_SELU_ALPHA 1.67326324235437728481f
#define CNN_SELU_SCALE 1.05070098735548049342f
#define CNN_LEAKY_RELU_SLOPE 0.2f

/* y = f(y) over rows x n (softmax normalises each row of n). */
void cnn_activation_forward(cnn_activation a, float *y, int64_t rows, int n);
/* dy := dy * f'(.) given the output y, for an activation that does not
 * need its input:
 *   relu: dy * (y > 0); sigmoid: dy * y (1 - y); tanh: dy * (1 - y^2);
 *   softmax: y * (dy - sum_j dy_j y_j) per row; the rest elementwise through
 *   cnn_activation_derivative. */
void cnn_activation_backward(cnn_activation a, const float *y, float *dy, int64_t rows, int n);
/* dy := dy * f'(z) over count values, z the pre-activation, for the
 * activations of cnn_activation_needs_input (vectorised but for gelu's erfc). */
void cnn_activation_backward_input(cnn_activation a, const float *z, float *dy, int64_t count);
/* Whether backward needs the pre-activation (the output does not tell it). */
bool cnn_activation_needs_input(cnn_activation a);

/* f'(z) from the output y = f(z) of an elementwise activation that does not
 * need its input (1 for the others: never asked). */
static inline float cnn_activation_derivative(cnn_activation a, float y)
{
    switch (a) {
    case CNN_ACTIVATION_RELU: return y > 0 ? 1.0f : 0.0f;
    case CNN_ACTIVATION_SIGMOID: return y * (1.0f - y);
    case CNN_ACTIVATION_TANH: return 1.0f - y * y;
    case CNN_ACTIVATION_SELU: return y > 0 ? CNN_SELU_SCALE : y + CNN_SELU_SCALE * CNN_SELU_ALPHA;
    case CNN_ACTIVATION_ELU: return y > 0 ? 1.0f : y + 1.0f;
    /* y = log(1 + e^z): f' = sigmoid(z) = 1 - e^-y */
    case CNN_ACTIVATION_SOFTPLUS: return -expm1f(-y);
    /* y = z / (1 + |z|): f' = 1 / (1 + |z|)^2 = (1 - |y|)^2 */
    case CNN_ACTIVATION_SOFTSIGN: {
        float r = 1.0f - (y < 0 ? -y : y);
        return r * r;
    }
    case CNN_ACTIVATION_HARD_SIGMOID: return y > 0 && y < 1 ? 1.0f / 6.0f : 0.0f;
    case CNN_ACTIVATION_EXPONENTIAL: return y;
    case CNN_ACTIVATION_RELU6: return y > 0 && y < 6 ? 1.0f : 0.0f;
    case CNN_ACTIVATION_LEAKY_RELU: return y > 0 ? 1.0f : CNN_LEAKY_RELU_SLOPE;
    default: return 1.0f;
    }
}

/* Whether each value's activation depends on that value alone (all but
 * softmax), so it can be applied tile by tile. */
bool cnn_activation_is_elementwise(cnn_activation a);
/* The activation of the name s[0..len) (Keras names and aliases, any case),
 * -1 if none. */
int cnn_activation_lookup(const char *s, size_t len);
/* "linear, relu, ..., mish": every canonical name, for messages. */
void cnn_activation_list(char *buf, size_t size);

#endif
