#include "kernels/activation.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/vec.h"

static void relu_forward(float *y, int64_t n)
{
    const cnn_v4f zero = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        cnn_v4f a = cnn_v4_load(y + i), b = cnn_v4_load(y + i + 4);
        cnn_v4_store(y + i, cnn_v4_keep(a, a > zero));
        cnn_v4_store(y + i + 4, cnn_v4_keep(b, b > zero));
    }
    for (; i < n; i++)
        y[i] = y[i] > 0 ? y[i] : 0;
}

static void relu_backward(const float *y, float *dy, int64_t n)
{
    const cnn_v4f zero = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        cnn_v4_store(dy + i, cnn_v4_keep(cnn_v4_load(dy + i), cnn_v4_load(y + i) > zero));
        cnn_v4_store(dy + i + 4, cnn_v4_keep(cnn_v4_load(dy + i + 4), cnn_v4_load(y + i + 4) > zero));
    }
    for (; i < n; i++)
        dy[i] = y[i] > 0 ? dy[i] : 0;
}

/* exp, tanh and the logistic function four lanes at a time, since libm's
 * scalar tanhf/expf dominated networks such as LeNet-5. exp: x = n ln2 + r,
 * |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n through the exponent bits
 * (about 1 ulp). tanh: an odd polynomial near 0 (where 1 - 2/(e^2x + 1)
 * would cancel), that formula elsewhere; a few ulp over all floats. Inputs
 * are clamped where float exp over- or underflows, which also keeps NaN
 * propagating (comparisons with NaN are false, so it passes through). */
static inline cnn_v4f v4_splat(float v) { return (cnn_v4f){v, v, v, v}; }

static inline cnn_v4f v4_exp(cnn_v4f x)
{
    x = cnn_v4_select(x > v4_splat(88.0f), v4_splat(88.0f), x);
    x = cnn_v4_select(x < v4_splat(-87.0f), v4_splat(-87.0f), x);
    cnn_v4f fn = x * v4_splat(1.44269504088896341f);
    /* round to nearest through the 1.5 * 2^23 trick */
    fn = (fn + v4_splat(12582912.0f)) - v4_splat(12582912.0f);
    cnn_v4f r = x - fn * v4_splat(0.693359375f) - fn * v4_splat(-2.12194440e-4f);
    cnn_v4f p = v4_splat(1.9875691500e-4f);
    p = p * r + v4_splat(1.3981999507e-3f);
    p = p * r + v4_splat(8.3334519073e-3f);
    p = p * r + v4_splat(4.1665795894e-2f);
    p = p * r + v4_splat(1.6666665459e-1f);
    p = p * r + v4_splat(5.0000001201e-1f);
    p = p * r * r + r + v4_splat(1.0f);
    cnn_v4i n = __builtin_convertvector(fn, cnn_v4i);
    cnn_v4i scale = (n + 127) << 23;
    return p * (cnn_v4f)scale;
}

static inline cnn_v4f v4_tanh(cnn_v4f x)
{
    cnn_v4i sign = (cnn_v4i)x & (cnn_v4i){INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN};
    cnn_v4f a = (cnn_v4f)((cnn_v4i)x & ~(cnn_v4i){INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN});
    /* |x| < 0.625: x + x^3 P(x^2) */
    cnn_v4f z = a * a;
    cnn_v4f p = v4_splat(-5.70498872745e-3f);
    p = p * z + v4_splat(2.06390887954e-2f);
    p = p * z + v4_splat(-5.37397155531e-2f);
    p = p * z + v4_splat(1.33314422036e-1f);
    p = p * z + v4_splat(-3.33332819422e-1f);
    cnn_v4f small = p * z * a + a;
    /* otherwise 1 - 2 / (e^(2|x|) + 1) */
    cnn_v4f big = v4_splat(1.0f) - v4_splat(2.0f) / (v4_exp(a + a) + v4_splat(1.0f));
    cnn_v4f t = cnn_v4_select(a < v4_splat(0.625f), small, big);
    return (cnn_v4f)((cnn_v4i)t | sign);
}

static inline cnn_v4f v4_sigmoid(cnn_v4f x)
{
    return v4_splat(1.0f) / (v4_splat(1.0f) + v4_exp(-x));
}

/* Applies f to n floats: vectors, then the tail through a padded vector
 * (the same arithmetic, so results do not depend on the position). */
static void map4(float *y, int64_t n, cnn_v4f (*f)(cnn_v4f))
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        cnn_v4_store(y + i, f(cnn_v4_load(y + i)));
    if (i < n) {
        float tail[4] = {0};
        memcpy(tail, y + i, (size_t)(n - i) * sizeof(float));
        cnn_v4_store(tail, f(cnn_v4_load(tail)));
        memcpy(y + i, tail, (size_t)(n - i) * sizeof(float));
    }
}

static cnn_v4f v4_tanh_fn(cnn_v4f x) { return v4_tanh(x); }
static cnn_v4f v4_sigmoid_fn(cnn_v4f x) { return v4_sigmoid(x); }

static void softmax_row(float *y, int n)
{
    float max = y[0];
    for (int j = 1; j < n; j++)
        max = y[j] > max ? y[j] : max;
    double sum = 0;
    for (int j = 0; j < n; j++) {
        y[j] = expf(y[j] - max);
        sum += y[j];
    }
    float inv = (float)(1.0 / sum);
    for (int j = 0; j < n; j++)
        y[j] *= inv;
}

void cnn_activation_forward(cnn_activation a, float *y, int64_t rows, int n)
{
    int64_t total = rows * n;
    switch (a) {
    case CNN_ACTIVATION_LINEAR:
        break;
    case CNN_ACTIVATION_RELU:
        relu_forward(y, total);
        break;
    case CNN_ACTIVATION_SIGMOID:
        map4(y, total, v4_sigmoid_fn);
        break;
    case CNN_ACTIVATION_TANH:
        map4(y, total, v4_tanh_fn);
        break;
    case CNN_ACTIVATION_SOFTMAX:
        for (int64_t r = 0; r < rows; r++)
            softmax_row(y + r * n, n);
        break;
    }
}

void cnn_activation_backward(cnn_activation a, const float *y, float *dy, int64_t rows, int n)
{
    int64_t total = rows * n;
    switch (a) {
    case CNN_ACTIVATION_LINEAR:
        break;
    case CNN_ACTIVATION_RELU:
        relu_backward(y, dy, total);
        break;
    case CNN_ACTIVATION_SIGMOID:
        for (int64_t i = 0; i < total; i++)
            dy[i] *= y[i] * (1.0f - y[i]);
        break;
    case CNN_ACTIVATION_TANH:
        for (int64_t i = 0; i < total; i++)
            dy[i] *= 1.0f - y[i] * y[i];
        break;
    case CNN_ACTIVATION_SOFTMAX:
        for (int64_t r = 0; r < rows; r++) {
            const float *yr = y + r * n;
            float *dr = dy + r * n;
            double dot = 0;
            for (int j = 0; j < n; j++)
                dot += (double)dr[j] * yr[j];
            for (int j = 0; j < n; j++)
                dr[j] = yr[j] * (dr[j] - (float)dot);
        }
        break;
    }
}

bool cnn_activation_is_elementwise(cnn_activation a) { return a != CNN_ACTIVATION_SOFTMAX; }

const char *cnn_activation_name(cnn_activation a)
{
    switch (a) {
    case CNN_ACTIVATION_LINEAR: return "linear";
    case CNN_ACTIVATION_RELU: return "relu";
    case CNN_ACTIVATION_SIGMOID: return "sigmoid";
    case CNN_ACTIVATION_TANH: return "tanh";
    case CNN_ACTIVATION_SOFTMAX: return "softmax";
    }
    return "unknown";
}
