#include "kernels/activation.h"

/* No fused multiply-add (clang's default is on): the wide tanh must give
 * the 4-wide code's bits (kernels/isa.h). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "kernels/isa.h"
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
/* always inline: each call site gets f inlined, not called per vector */
static inline __attribute__((always_inline)) void map4(float *y, int64_t n, cnn_v4f (*f)(cnn_v4f))
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

/* tanh (LeNet-5's activation) 8 or 16 lanes at a time where the CPU has
 * AVX2 or AVX-512, with the same bits as v4_tanh; the baseline leaves it
 * all to map4. */
#define CNN_SIMD_W 8
#include "kernels/activation_simd.h"
#undef CNN_SIMD_W
#define CNN_SIMD_W 16
#include "kernels/activation_simd.h"
#undef CNN_SIMD_W
CNN_ISA_BODY void tanh_body_none(float *y, int64_t n, int64_t *done)
{
    (void)y, (void)n;
    *done = 0;
}
CNN_ISA_CLONES_OF(tanh_wide, tanh_body_none, tanh_body_8, tanh_body_16,
                  (float *y, int64_t n, int64_t *done), (y, n, done))

static void tanh_forward(float *y, int64_t n)
{
    int64_t done = 0;
    CNN_ISA_CALL(CNN_ISA_AUTO, tanh_wide, (y, n, &done));
    map4(y + done, n - done, v4_tanh_fn);
}
static cnn_v4f v4_sigmoid_fn(cnn_v4f x) { return v4_sigmoid(x); }
static cnn_v4f v4_silu(cnn_v4f x) { return x * v4_sigmoid(x); }
static cnn_v4f v4_exp_fn(cnn_v4f x) { return v4_exp(x); }

static cnn_v4f v4_softsign(cnn_v4f x)
{
    cnn_v4f a = (cnn_v4f)((cnn_v4i)x & ~(cnn_v4i){INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN});
    return x / (v4_splat(1.0f) + a);
}

/* Keras 3: relu6(x + 3) / 6 */
static inline cnn_v4f v4_hard_sigmoid(cnn_v4f x)
{
    cnn_v4f t = x + v4_splat(3.0f);
    t = cnn_v4_select(t > v4_splat(0.0f), t, v4_splat(0.0f));
    t = cnn_v4_select(t < v4_splat(6.0f), t, v4_splat(6.0f));
    return t / v4_splat(6.0f);
}

static cnn_v4f v4_hard_sigmoid_fn(cnn_v4f x) { return v4_hard_sigmoid(x); }
static cnn_v4f v4_hard_silu(cnn_v4f x) { return x * v4_hard_sigmoid(x); }

static cnn_v4f v4_relu6(cnn_v4f x)
{
    x = cnn_v4_select(x > v4_splat(0.0f), x, v4_splat(0.0f));
    return cnn_v4_select(x < v4_splat(6.0f), x, v4_splat(6.0f));
}

static cnn_v4f v4_leaky_relu(cnn_v4f x)
{
    return cnn_v4_select(x < v4_splat(0.0f), x * v4_splat(CNN_LEAKY_RELU_SLOPE), x);
}

#define GELU_C 0.79788456080286535588f /* sqrt(2 / pi) */
#define GELU_K 0.044715f

/* x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2 */
static cnn_v4f v4_gelu_tanh(cnn_v4f x)
{
    cnn_v4f u = v4_splat(GELU_C) * (x + v4_splat(GELU_K) * x * x * x);
    return v4_splat(0.5f) * x * (v4_splat(1.0f) + v4_tanh(u));
}

/* x tanh(log(1 + e^x)) = x n / (n + 2) with n = e^x (e^x + 2); x itself
 * beyond 20, where tanh(softplus(x)) is 1 in float and n would overflow. */
static cnn_v4f v4_mish(cnn_v4f x)
{
    cnn_v4f e = v4_exp(x);
    cnn_v4f n = e * (e + v4_splat(2.0f));
    return cnn_v4_select(x > v4_splat(20.0f), x, x * n / (n + v4_splat(2.0f)));
}

/* The ones libm does better than a polynomial here (erfc, log1p, expm1 near 0). */
static void scalar_forward(cnn_activation a, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float x = y[i];
        switch (a) {
        case CNN_ACTIVATION_GELU: y[i] = 0.5f * x * erfcf(-x * 0.70710678118654752f); break;
        case CNN_ACTIVATION_ELU: y[i] = x > 0 ? x : expm1f(x); break;
        case CNN_ACTIVATION_SELU:
            y[i] = CNN_SELU_SCALE * (x > 0 ? x : CNN_SELU_ALPHA * expm1f(x));
            break;
        case CNN_ACTIVATION_SOFTPLUS:
            y[i] = (x > 0 ? x : 0) + log1pf(expf(-fabsf(x)));
            break;
        default: break;
        }
    }
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
    case CNN_ACTIVATION_LINEAR: break;
    case CNN_ACTIVATION_RELU: relu_forward(y, total); break;
    case CNN_ACTIVATION_SIGMOID: map4(y, total, v4_sigmoid_fn); break;
    case CNN_ACTIVATION_TANH: tanh_forward(y, total); break;
    case CNN_ACTIVATION_SOFTMAX:
        for (int64_t r = 0; r < rows; r++)
            softmax_row(y + r * n, n);
        break;
    case CNN_ACTIVATION_SILU: map4(y, total, v4_silu); break;
    case CNN_ACTIVATION_GELU_TANH: map4(y, total, v4_gelu_tanh); break;
    case CNN_ACTIVATION_SOFTSIGN: map4(y, total, v4_softsign); break;
    case CNN_ACTIVATION_HARD_SIGMOID: map4(y, total, v4_hard_sigmoid_fn); break;
    case CNN_ACTIVATION_HARD_SILU: map4(y, total, v4_hard_silu); break;
    case CNN_ACTIVATION_EXPONENTIAL: map4(y, total, v4_exp_fn); break;
    case CNN_ACTIVATION_RELU6: map4(y, total, v4_relu6); break;
    case CNN_ACTIVATION_LEAKY_RELU: map4(y, total, v4_leaky_relu); break;
    case CNN_ACTIVATION_MISH: map4(y, total, v4_mish); break;
    case CNN_ACTIVATION_GELU:
    case CNN_ACTIVATION_ELU:
    case CNN_ACTIVATION_SELU:
    case CNN_ACTIVATION_SOFTPLUS: scalar_forward(a, y, total); break;
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
    default:
        for (int64_t i = 0; i < total; i++)
            dy[i] *= cnn_activation_derivative(a, y[i]);
        break;
    }
}

bool cnn_activation_needs_input(cnn_activation a)
{
    return a == CNN_ACTIVATION_SILU || a == CNN_ACTIVATION_GELU || a == CNN_ACTIVATION_GELU_TANH
        || a == CNN_ACTIVATION_HARD_SILU || a == CNN_ACTIVATION_MISH;
}

/* gelu: Phi(z) + z phi(z), through libm's erfc (no vector form here) */
static float gelu_derivative(float z)
{
    return 0.5f * erfcf(-z * 0.70710678118654752f)
         + z * 0.39894228040143267794f * expf(-0.5f * z * z);
}

/* f'(z) of the others, four lanes at a time. */
static cnn_v4f v4_silu_d(cnn_v4f z)
{
    cnn_v4f s = v4_sigmoid(z);
    return s * (v4_splat(1.0f) + z * (v4_splat(1.0f) - s));
}

static cnn_v4f v4_gelu_tanh_d(cnn_v4f z)
{
    cnn_v4f z2 = z * z;
    cnn_v4f t = v4_tanh(v4_splat(GELU_C) * (z + v4_splat(GELU_K) * z2 * z));
    return v4_splat(0.5f) * (v4_splat(1.0f) + t)
         + v4_splat(0.5f * GELU_C) * z * (v4_splat(1.0f) - t * t)
               * (v4_splat(1.0f) + v4_splat(3.0f * GELU_K) * z2);
}

static cnn_v4f v4_hard_silu_d(cnn_v4f z)
{
    cnn_v4f d = z / v4_splat(3.0f) + v4_splat(0.5f);
    d = cnn_v4_select(z <= v4_splat(-3.0f), v4_splat(0.0f), d);
    return cnn_v4_select(z >= v4_splat(3.0f), v4_splat(1.0f), d);
}

/* t = tanh(softplus(z)) = n / (n + 2), n = e^z (e^z + 2); sigmoid(z) = e^z / (1 + e^z) */
static cnn_v4f v4_mish_d(cnn_v4f z)
{
    cnn_v4f e = v4_exp(z);
    cnn_v4f n = e * (e + v4_splat(2.0f));
    cnn_v4f t = n / (n + v4_splat(2.0f));
    cnn_v4f d = t + z * (v4_splat(1.0f) - t * t) * (e / (v4_splat(1.0f) + e));
    return cnn_v4_select(z > v4_splat(20.0f), v4_splat(1.0f), d);
}

void cnn_activation_backward_input(cnn_activation a, const float *z, float *dy, int64_t count)
{
    cnn_v4f (*d)(cnn_v4f) = a == CNN_ACTIVATION_SILU        ? v4_silu_d
                          : a == CNN_ACTIVATION_GELU_TANH   ? v4_gelu_tanh_d
                          : a == CNN_ACTIVATION_HARD_SILU   ? v4_hard_silu_d
                          : a == CNN_ACTIVATION_MISH        ? v4_mish_d
                                                            : NULL;
    if (!d) {
        for (int64_t i = 0; i < count; i++)
            dy[i] *= a == CNN_ACTIVATION_GELU ? gelu_derivative(z[i]) : 1.0f;
        return;
    }
    int64_t i = 0;
    for (; i + 4 <= count; i += 4)
        cnn_v4_store(dy + i, cnn_v4_load(dy + i) * d(cnn_v4_load(z + i)));
    if (i < count) { /* a padded vector, as map4: results do not depend on the position */
        float zt[4] = {0}, dt[4] = {0};
        memcpy(zt, z + i, (size_t)(count - i) * sizeof(float));
        memcpy(dt, dy + i, (size_t)(count - i) * sizeof(float));
        cnn_v4_store(dt, cnn_v4_load(dt) * d(cnn_v4_load(zt)));
        memcpy(dy + i, dt, (size_t)(count - i) * sizeof(float));
    }
}

bool cnn_activation_is_elementwise(cnn_activation a) { return a != CNN_ACTIVATION_SOFTMAX; }

/* The one table of activation names: each activation's Keras 3 name first
 * (in enum order: cnn_activation_name), then the aliases readers accept. */
static const struct {
    const char *name;
    cnn_activation value;
} names[] = {
    {"linear", CNN_ACTIVATION_LINEAR},
    {"relu", CNN_ACTIVATION_RELU},
    {"sigmoid", CNN_ACTIVATION_SIGMOID},
    {"tanh", CNN_ACTIVATION_TANH},
    {"softmax", CNN_ACTIVATION_SOFTMAX},
    {"silu", CNN_ACTIVATION_SILU},
    {"gelu", CNN_ACTIVATION_GELU},
    {"gelu_tanh", CNN_ACTIVATION_GELU_TANH},
    {"selu", CNN_ACTIVATION_SELU},
    {"elu", CNN_ACTIVATION_ELU},
    {"softplus", CNN_ACTIVATION_SOFTPLUS},
    {"softsign", CNN_ACTIVATION_SOFTSIGN},
    {"hard_sigmoid", CNN_ACTIVATION_HARD_SIGMOID},
    {"hard_silu", CNN_ACTIVATION_HARD_SILU},
    {"exponential", CNN_ACTIVATION_EXPONENTIAL},
    {"relu6", CNN_ACTIVATION_RELU6},
    {"leaky_relu", CNN_ACTIVATION_LEAKY_RELU},
    {"mish", CNN_ACTIVATION_MISH},
    /* aliases */
    {"None", CNN_ACTIVATION_LINEAR},      /* Keras's activation=None */
    {"swish", CNN_ACTIVATION_SILU},       /* tf.keras 2's name, a Keras 3 alias */
    {"hard_swish", CNN_ACTIVATION_HARD_SILU},
    {"gelu_approximate", CNN_ACTIVATION_GELU_TANH},
};
#define NAMES (sizeof names / sizeof names[0])
_Static_assert(CNN_ACTIVATION_MISH + 1 == CNN_ACTIVATION_COUNT,
               "a new activation needs CNN_ACTIVATION_COUNT, a name above and its maths");

const char *cnn_activation_name(cnn_activation a)
{
    for (size_t i = 0; i < NAMES; i++)
        if (names[i].value == a)
            return names[i].name;
    return NULL;
}

int cnn_activation_lookup(const char *s, size_t len)
{
    for (size_t i = 0; s && i < NAMES; i++)
        if (strlen(names[i].name) == len && strncasecmp(s, names[i].name, len) == 0)
            return (int)names[i].value;
    return -1;
}

void cnn_activation_list(char *buf, size_t size)
{
    size_t used = 0;
    if (size)
        buf[0] = '\0';
    for (int a = 0; a < CNN_ACTIVATION_COUNT && used < size; a++) {
        int k = snprintf(buf + used, size - used, "%s%s", a ? ", " : "",
                         cnn_activation_name((cnn_activation)a));
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

cnn_status cnn_activation_from_name(const char *name, cnn_activation *out)
{
    if (!out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "activation_from_name: out is NULL");
    int a = name ? cnn_activation_lookup(name, strlen(name)) : -1;
    if (a < 0) {
        char list[400];
        cnn_activation_list(list, sizeof list);
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "activation: expected one of %s, got '%s'",
                        list, name ? name : "(null)");
    }
    *out = (cnn_activation)a;
    return CNN_OK;
}
