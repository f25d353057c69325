/* int8 quantization arithmetic in TFLite's scheme (docs/QUANTIZATION.md is
 * the specification; every formula below is written out there):
 *
 *   real = scale * (q - zero_point)
 *
 * activations int8 per tensor, asymmetric (zero point anywhere in
 * [-128, 127], chosen so that real 0 is exact); weights int8 per output
 * channel, symmetric (zero point 0, range [-127, 127]); biases int32 with
 * scale input_scale * weight_scale[channel]. A real multiplier m > 0 is
 * carried as a Q0.31 mantissa and a power-of-two shift,
 *   m ~= multiplier * 2^(shift - 31),  multiplier in [2^30, 2^31),
 * and applied with gemmlowp's two roundings (cnn_q_mul). The helpers used
 * in inner loops are static inline here so every kernel computes exactly
 * the same integers. */
#ifndef CNN_KERNELS_QUANTIZE_H
#define CNN_KERNELS_QUANTIZE_H

#include <stdint.h>

/* One tensor's parameters. */
typedef struct cnn_qparams {
    float scale;
    int32_t zero_point;
} cnn_qparams;

/* The output stage shared by every int8 kernel with an int32 accumulator:
 *   y[n] = clamp(zero_point + cnn_q_mul(acc + bias[n], multiplier[n], shift[n]), lo, hi)
 * bias may be NULL (0). multiplier/shift per output channel. */
typedef struct cnn_qoutput {
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t zero_point;
    int32_t lo, hi; /* the fused activation's range, within [-128, 127] */
} cnn_qoutput;

/* Fused activations that become a clamp of the output. */
typedef enum cnn_qact {
    CNN_QACT_NONE = 0,
    CNN_QACT_RELU,
    CNN_QACT_RELU6,
} cnn_qact;

/* gemmlowp's SaturatingRoundingDoublingHighMul: the high 32 bits of 2ab,
 * rounded to nearest with ties toward +infinity (the nudge 2^30 for a
 * non-negative product, 1 - 2^30 for a negative one, then division by 2^31
 * truncating toward zero); the one overflowing case a = b = INT32_MIN gives
 * INT32_MAX. */
static inline int32_t cnn_q_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN)
        return INT32_MAX;
    int64_t ab = (int64_t)a * b;
    int64_t nudge = ab >= 0 ? (INT64_C(1) << 30) : 1 - (INT64_C(1) << 30);
    return (int32_t)((ab + nudge) / (INT64_C(1) << 31)); /* C division truncates */
}

/* gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties
 * away from zero; exponent in [0, 31]. */
static inline int32_t cnn_q_rdbpot(int32_t x, int exponent)
{
    int32_t mask = (int32_t)((INT64_C(1) << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* >> of a negative int is arithmetic on every compiler we build with */
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite's MultiplyByQuantizedMultiplier: x * multiplier * 2^(shift - 31)
 * with shift in [-31, 30]. A positive shift multiplies x by 2^shift first,
 * saturating to int32 (TFLite leaves that overflow undefined); a negative
 * one divides by 2^-shift after the high multiply, rounding as above. */
static inline int32_t cnn_q_mul(int32_t x, int32_t multiplier, int32_t shift)
{
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int64_t shifted = (int64_t)x * (INT64_C(1) << left);
    if (shifted > INT32_MAX)
        shifted = INT32_MAX;
    if (shifted < INT32_MIN)
        shifted = INT32_MIN;
    return cnn_q_rdbpot(cnn_q_srdhm((int32_t)shifted, multiplier), right);
}

static inline int32_t cnn_q_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* The output stage for one accumulator of channel n (see cnn_qoutput).
 * The bias is added modulo 2^32, like the accumulation itself. */
static inline int8_t cnn_q_requant(const cnn_qoutput *o, int n, int32_t acc)
{
    if (o->bias)
        acc = (int32_t)((uint32_t)acc + (uint32_t)o->bias[n]);
    int32_t v = cnn_q_mul(acc, o->multiplier[n], o->shift[n]);
    /* in 64 bits: a tiny scale can make v anything */
    int64_t y = (int64_t)v + o->zero_point;
    return (int8_t)(y < o->lo ? o->lo : y > o->hi ? o->hi : y);
}

/* TFLite's QuantizeMultiplier: m = mantissa * 2^exponent by frexp, the
 * mantissa in [0.5, 1) rounded to Q0.31 (half away from zero); a mantissa
 * that rounds up to 2^31 is halved and the exponent raised. m <= 0, or so
 * small that the shift would fall below -31, gives multiplier 0 (every
 * output is the zero point); m >= 2^30 is saturated to the largest
 * representable value. */
void cnn_q_multiplier(double m, int32_t *multiplier, int32_t *shift);

/* Asymmetric int8 parameters for a calibrated range [min, max], TFLite's
 * nudging: the range is widened to contain 0, scale = (max - min) / 255,
 * and the zero point (from whichever end gives the smaller rounding error)
 * is rounded to an integer in [-128, 127], so real 0 is exactly
 * representable. An empty range (min == max == 0) gives scale 1, zero
 * point 0. Non-finite bounds are the caller's to refuse. */
cnn_qparams cnn_q_choose_params(float min, float max);

/* q = clamp(round(x / scale) + zero_point, -128, 127), round half away
 * from zero, the division in float as TFLite's Quantize does; NaN gives
 * the zero point. */
int8_t cnn_q_quantize_one(float x, cnn_qparams p);
/* cnn_q_quantize_one over n floats: with AVX-512 when the CPU has it (the
 * same bytes), else the _ref loop. */
void cnn_q_quantize(const float *x, int64_t n, cnn_qparams p, int8_t *q);
void cnn_q_quantize_ref(const float *x, int64_t n, cnn_qparams p, int8_t *q);
/* x = scale * (q - zero_point), in float. */
void cnn_q_dequantize(const int8_t *q, int64_t n, cnn_qparams p, float *x);

/* Symmetric per-channel weights for a kernel stored with the output
 * channel last, as Keras stores Conv2D (kh, kw, in, out), Dense (in, out)
 * and DepthwiseConv2D (kh, kw, c, mult) kernels: w is rows x channels.
 *   scale[j] = max_i |w[i, j]| / 127 in float (1 for an all-zero channel)
 *   q[i, j] = clamp(round(w[i, j] * inv[j]), -127, 127), inv[j] = 1 / scale[j]
 * in float, as TFLite's converter does (a multiply, not a division). */
void cnn_q_weights(const float *w, int64_t rows, int channels, float *scale, int8_t *q);

/* int32 biases: s = input_scale * weight_scale[j] and inv = 1 / s in float,
 * q[j] = round((double)b[j] * inv) saturated to [-(2^31 - 1), 2^31 - 1]
 * (0 where s is 0). */
void cnn_q_bias(const float *b, int channels, float input_scale, const float *weight_scale,
                int32_t *q);

/* The per-channel output multipliers of a convolution or dense layer:
 *   m[j] = (double)input_scale * (double)weight_scale[j] / (double)output_scale */
void cnn_q_output_multipliers(float input_scale, const float *weight_scale, int channels,
                              float output_scale, int32_t *multiplier, int32_t *shift);

/* The clamp range of a fused activation on an output with parameters p:
 * none [-128, 127]; relu [max(-128, zp), 127]; relu6 additionally
 * hi = min(127, zp + round(6 / scale)). */
void cnn_q_activation_range(cnn_qact act, cnn_qparams p, int32_t *lo, int32_t *hi);

#endif
