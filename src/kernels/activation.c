#include "kernels/activation.h"

#include <math.h>
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
        for (int64_t i = 0; i < total; i++)
            y[i] = 1.0f / (1.0f + expf(-y[i]));
        break;
    case CNN_ACTIVATION_TANH:
        for (int64_t i = 0; i < total; i++)
            y[i] = tanhf(y[i]);
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
