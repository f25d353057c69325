/* The quantization parameters and conversions of kernels/quantize.h, each
 * the formula docs/QUANTIZATION.md states. */
#include "kernels/quantize.h"

#include <math.h>
#include <stdbool.h>

void cnn_q_multiplier(double m, int32_t *multiplier, int32_t *shift)
{
    *multiplier = 0;
    *shift = 0;
    if (!(m > 0) || !isfinite(m))
        return;
    int e;
    double mant = frexp(m, &e);                       /* m = mant * 2^e, mant in [0.5, 1) */
    int64_t q = (int64_t)round(mant * 2147483648.0); /* round: half away from zero */
    if (q == INT64_C(1) << 31) {
        q /= 2;
        e++;
    }
    if (e < -31) /* every bit would be shifted out: the multiplier is 0 */
        return;
    if (e > 30) { /* beyond the left shift cnn_q_mul allows */
        q = INT32_MAX;
        e = 30;
    }
    *multiplier = (int32_t)q;
    *shift = e;
}

cnn_qparams cnn_q_choose_params(float min, float max)
{
    double lo = min < 0 ? (double)min : 0, hi = max > 0 ? (double)max : 0;
    if (lo == hi)
        return (cnn_qparams){1.0f, 0};
    const double qmin = -128, qmax = 127;
    double scale = (hi - lo) / (qmax - qmin);
    /* the zero point from either end; keep the one with less rounding error */
    double zp_from_min = qmin - lo / scale, zp_from_max = qmax - hi / scale;
    double err_min = fabs(qmin) + fabs(lo / scale), err_max = fabs(qmax) + fabs(hi / scale);
    double zp = err_min < err_max ? zp_from_min : zp_from_max;
    int32_t nudged = zp < qmin ? (int32_t)qmin : zp > qmax ? (int32_t)qmax : (int32_t)round(zp);
    return (cnn_qparams){(float)scale, nudged};
}

int8_t cnn_q_quantize_one(float x, cnn_qparams p)
{
    float r = roundf(x / p.scale); /* float division, half away from zero */
    if (r != r)
        return (int8_t)p.zero_point;
    /* clamp before converting: a float beyond int32 has no defined conversion */
    if (r > 1000.0f)
        r = 1000.0f;
    if (r < -1000.0f)
        r = -1000.0f;
    return (int8_t)cnn_q_clamp((int32_t)r + p.zero_point, -128, 127);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* cnn_q_quantize_one on 16 floats at a time (AVX-512F): the same float
 * division; round-half-away-from-zero as truncation plus one step away
 * from zero when the dropped fraction (exact: v - trunc(v)) is at least
 * 1/2; NaN to the zero point; the same clamps. Same bytes as the scalar
 * loop for every float, infinities and -0.5 included. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void
quantize_avx512(const float *x, int64_t n, cnn_qparams p, int8_t *q)
{
    const __m512 scale = _mm512_set1_ps(p.scale), half = _mm512_set1_ps(0.5f);
    const __m512 lim = _mm512_set1_ps(1000.0f), nlim = _mm512_set1_ps(-1000.0f);
    const __m512i sign = _mm512_set1_epi32(INT32_MIN), one = _mm512_set1_epi32(0x3F800000);
    const __m512i zp = _mm512_set1_epi32(p.zero_point);
    const __m512i lo = _mm512_set1_epi32(-128), hi = _mm512_set1_epi32(127);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), scale);
        __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
        __mmask16 up = _mm512_cmp_ps_mask(frac, half, _CMP_GE_OQ);
        __m512 step = _mm512_castsi512_ps( /* +-1.0f, v's sign */
            _mm512_or_si512(one, _mm512_and_si512(sign, _mm512_castps_si512(v))));
        t = _mm512_mask_add_ps(t, up, t, step);
        t = _mm512_min_ps(_mm512_max_ps(t, nlim), lim);
        __m512i r = _mm512_add_epi32(_mm512_cvttps_epi32(t), zp);
        r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), zp);
        r = _mm512_min_epi32(_mm512_max_epi32(r, lo), hi);
        _mm_mask_storeu_epi8(q + i, k, _mm512_cvtepi32_epi8(r));
    }
}

static bool have_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}
#endif

void cnn_q_quantize_ref(const float *x, int64_t n, cnn_qparams p, int8_t *q)
{
    for (int64_t i = 0; i < n; i++)
        q[i] = cnn_q_quantize_one(x[i], p);
}

void cnn_q_quantize(const float *x, int64_t n, cnn_qparams p, int8_t *q)
{
#if defined(__x86_64__) || defined(__i386__)
    if (have_avx512()) {
        quantize_avx512(x, n, p, q);
        return;
    }
#endif
    cnn_q_quantize_ref(x, n, p, q);
}

void cnn_q_dequantize(const int8_t *q, int64_t n, cnn_qparams p, float *x)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = p.scale * (float)((int32_t)q[i] - p.zero_point);
}

void cnn_q_weights(const float *w, int64_t rows, int channels, float *scale, int8_t *q)
{
    for (int j = 0; j < channels; j++) {
        float amax = 0;
        for (int64_t i = 0; i < rows; i++) {
            float a = fabsf(w[i * channels + j]);
            if (a > amax)
                amax = a;
        }
        scale[j] = amax > 0 ? amax / 127.0f : 1.0f;
        float inv = 1.0f / scale[j];
        for (int64_t i = 0; i < rows; i++) {
            float r = roundf(w[i * channels + j] * inv);
            q[i * channels + j] = (int8_t)(r > 127.0f ? 127 : r < -127.0f ? -127 : (int)r);
        }
    }
}

void cnn_q_bias(const float *b, int channels, float input_scale, const float *weight_scale,
                int32_t *q)
{
    for (int j = 0; j < channels; j++) {
        float s = input_scale * weight_scale[j];
        float inv = s == 0 ? 0.0f : 1.0f / s;
        double r = round((double)b[j] * (double)inv);
        if (r != r)
            r = 0;
        q[j] = r > INT32_MAX ? INT32_MAX : r < -INT32_MAX ? -INT32_MAX : (int32_t)r;
    }
}

void cnn_q_output_multipliers(float input_scale, const float *weight_scale, int channels,
                              float output_scale, int32_t *multiplier, int32_t *shift)
{
    for (int j = 0; j < channels; j++)
        cnn_q_multiplier((double)input_scale * (double)weight_scale[j] / (double)output_scale,
                         &multiplier[j], &shift[j]);
}

void cnn_q_activation_range(cnn_qact act, cnn_qparams p, int32_t *lo, int32_t *hi)
{
    *lo = -128;
    *hi = 127;
    if (act == CNN_QACT_RELU || act == CNN_QACT_RELU6)
        *lo = cnn_q_clamp(p.zero_point, -128, 127);
    if (act == CNN_QACT_RELU6) {
        float six = roundf(6.0f / p.scale);
        int32_t top = six > 1000.0f ? 1000 : (int32_t)six;
        *hi = cnn_q_clamp(p.zero_point + top, -128, 127);
    }
}
