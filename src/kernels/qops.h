/* int8 kernels besides the GEMM: depthwise convolution, max and average
 * pooling, elementwise Add - each TFLite's integer arithmetic as
 * docs/QUANTIZATION.md writes it down. NHWC tensors and kernels/conv.h's
 * geometry throughout; every function works on a range of output pixels
 * m = (n * oh + oy) * ow + ox, [m0, m1), its output rows starting at
 * pixel m0, so callers can split the work between threads. */
#ifndef CNN_KERNELS_QOPS_H
#define CNN_KERNELS_QOPS_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/conv.h"
#include "kernels/qgemm.h"
#include "kernels/quantize.h"

/* Depthwise convolution, channel multiplier mult: output channel
 * o = c * mult + q sums (x[tap, c] - x_zero) * kernel[ky, kx, c, q] over
 * the in-bounds taps, then the output stage of channel o.
 * kernel: (kh, kw, c, mult); y: (m1 - m0, c * mult). The reference loops
 * over every channel and tap; the fast version, for the instruction set
 * isa (AVX2 and AVX-512 for mult == 1, portable C otherwise), sums 8 or 16
 * channels per vector over the taps - the same integers, exactly. */
void cnn_qdepthwise_ref(const cnn_conv_geom *g, int mult, const int8_t *x, int32_t x_zero,
                        const int8_t *kernel, const cnn_qoutput *out, int64_t m0, int64_t m1,
                        int8_t *y);
/* acc: c * mult int32 of scratch. */
void cnn_qdepthwise(cnn_qisa isa, const cnn_conv_geom *g, int mult, const int8_t *x, int32_t x_zero,
                    const int8_t *kernel, const cnn_qoutput *out, int64_t m0, int64_t m1,
                    int32_t *acc, int8_t *y);

/* Pooling keeps the input's parameters; lo/hi is a fused activation's
 * clamp ([-128, 127] without one). Padding taps are ignored. Max: the
 * largest in-bounds input. Average: s = the sum of the in-bounds inputs
 * (count of them), rounded half away from zero:
 *   s >= 0: (s + count / 2) / count,  s < 0: (s - count / 2) / count
 * with C's truncating division. (TensorFlow's padding rules leave every
 * window at least one in-bounds cell; one without would give lo.) */
void cnn_qmaxpool_ref(const cnn_conv_geom *g, const int8_t *x, int32_t lo, int32_t hi,
                      int64_t m0, int64_t m1, int8_t *y);
/* The same bytes, 32 (AVX2) or 64 (AVX-512) channels per vector. */
void cnn_qmaxpool(cnn_qisa isa, const cnn_conv_geom *g, const int8_t *x, int32_t lo, int32_t hi,
                  int64_t m0, int64_t m1, int8_t *y);
void cnn_qavgpool(const cnn_conv_geom *g, const int8_t *x, int32_t lo, int32_t hi, int64_t m0,
                  int64_t m1, int8_t *y);

/* Add, TFLite's scheme: both inputs are rescaled to a common scale
 * 2 * max(sa, sb) with 20 bits of headroom, summed, and requantized:
 *   a' = cnn_q_mul((a - za) * 2^20, a_mult, a_shift)   (likewise b')
 *   y  = clamp(zy + cnn_q_mul(a' + b', y_mult, y_shift), lo, hi) */
typedef struct cnn_qadd_spec {
    int32_t a_zero, b_zero, y_zero;
    int32_t a_mult, a_shift, b_mult, b_shift, y_mult, y_shift;
    int32_t lo, hi;
} cnn_qadd_spec;
enum { CNN_QADD_LEFT_SHIFT = 20 };
/* The multipliers from the three tensors' parameters:
 *   t = 2 * max(sa, sb) (float), a_mult ~ sa / t, b_mult ~ sb / t,
 *   y_mult ~ t / (2^20 * sy), each ratio in double. */
void cnn_qadd_prepare(cnn_qparams a, cnn_qparams b, cnn_qparams y, cnn_qact act, cnn_qadd_spec *p);
void cnn_qadd_ref(const cnn_qadd_spec *p, const int8_t *a, const int8_t *b, int64_t n,
                  int8_t *y);
/* The same bytes, 16 elements per vector with AVX-512 (the reference
 * otherwise). */
void cnn_qadd(cnn_qisa isa, const cnn_qadd_spec *p, const int8_t *a, const int8_t *b, int64_t n,
              int8_t *y);


/* Requantization of one tensor to another's parameters, TFLite's
 * REQUANTIZE for int8: with m = quantize_multiplier(s_in / s_out),
 *   y = clamp(z_out + cnn_q_mul(x - z_in, m), -128, 127)
 * (|x - z_in| <= 255, so no left shift saturates before m >= 2^23). */
static inline int8_t cnn_q_requant_one(int8_t x, int32_t in_zero, int32_t mult, int32_t shift,
                                       int32_t out_zero)
{
    int64_t v = (int64_t)cnn_q_mul((int32_t)x - in_zero, mult, shift) + out_zero;
    return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
}

/* Concatenation along the last axis of n inputs of pixels [p0, p1): pixel
 * p of input k holds channels[k] values at x[k] + p * channels[k]; the
 * output pixel is their channels in order (sum of channels[k] values, row 0
 * being pixel p0). An input whose parameters equal the output's
 * (same[k]) is copied; the others go through cnn_q_requant_one with
 * mult[k], shift[k] and their zero points. */
void cnn_qconcat(int n, const int8_t *const *x, const int *channels, const int32_t *in_zero,
                 const int32_t *mult, const int32_t *shift, const bool *same, int32_t out_zero,
                 int64_t p0, int64_t p1, int8_t *y);

/* GlobalAveragePooling2D with its own output parameters (TFLite's MEAN
 * over rows and columns): for examples [m0, m1) and channel c,
 *   acc = sum over the h * w pixels of (x - x_zero)            (int32)
 *   y   = cnn_q_requant(out, c, acc)
 * with out's multiplier ~ s_in / (h * w * s_out) and no bias. y: (m1 - m0, c). */
void cnn_qglobal_avg(const cnn_conv_geom *g, const int8_t *x, int32_t x_zero,
                     const cnn_qoutput *out, int64_t m0, int64_t m1, int8_t *y);

/* ZeroPadding2D: x (n, h, w, c) -> y (n, top + h + bottom, left + w + right, c)
 * with the zero point around (real 0). Works on output rows
 * r = n * oh + oy in [r0, r1), y starting at row r0. */
void cnn_qzeropad(const cnn_conv_geom *g, const int pad[4], const int8_t *x, int8_t zero,
                  int64_t r0, int64_t r1, int8_t *y);

#endif
