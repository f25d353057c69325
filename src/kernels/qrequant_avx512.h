/* The int8 output stage (kernels/quantize.h, cnn_q_requant) on 16 int32
 * lanes with AVX-512, for the kernels compiled for AVX-512 VNNI (qgemm.c,
 * qops.c). x86 only; include after <immintrin.h>. */
#ifndef CNN_KERNELS_QREQUANT_AVX512_H
#define CNN_KERNELS_QREQUANT_AVX512_H

#include <immintrin.h>
#include <stdint.h>

/* The instruction sets of CNN_QISA_VNNI. */
#define CNN_QAVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

/* The output stage of kernels/quantize.h on 16 lanes, for accumulators
 * acc (bias and zero-point correction already added). The high multiply
 * runs in 64-bit lanes: x * 2^left saturated to int32, then
 * (x * multiplier + 2^30) >> 31, which equals gemmlowp's nudge-and-
 * truncate rounding for multipliers in [0, 2^31) (docs/QUANTIZATION.md);
 * the rounding right shift then runs on 32-bit lanes. */
CNN_QAVX512_TARGET static inline __m512i cnn_qavx512_mul_half(__m256i x32, __m256i mult32,
                                                              __m256i left32)
{
    __m512i x = _mm512_sllv_epi64(_mm512_cvtepi32_epi64(x32), _mm512_cvtepi32_epi64(left32));
    x = _mm512_min_epi64(x, _mm512_set1_epi64(INT32_MAX));
    x = _mm512_max_epi64(x, _mm512_set1_epi64(INT32_MIN));
    __m512i p = _mm512_mul_epi32(x, _mm512_cvtepi32_epi64(mult32));
    return _mm512_srai_epi64(_mm512_add_epi64(p, _mm512_set1_epi64(INT64_C(1) << 30)), 31);
}

/* cnn_q_mul on 16 lanes: acc * multiplier * 2^(shift - 31), per lane. */
CNN_QAVX512_TARGET static inline __m512i cnn_qavx512_mul(__m512i acc, __m512i mult,
                                                         __m512i shift)
{
    __m512i zero = _mm512_setzero_si512();
    __m512i left = _mm512_max_epi32(shift, zero);
    __m512i right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
    __m512i v;
    if (_mm512_cmpgt_epi32_mask(shift, zero)) { /* some left shift: widen first */
        __m256i h0 = _mm512_cvtepi64_epi32(
            cnn_qavx512_mul_half(_mm512_castsi512_si256(acc), _mm512_castsi512_si256(mult),
                                 _mm512_castsi512_si256(left)));
        __m256i h1 = _mm512_cvtepi64_epi32(cnn_qavx512_mul_half(
            _mm512_extracti64x4_epi64(acc, 1), _mm512_extracti64x4_epi64(mult, 1),
            _mm512_extracti64x4_epi64(left, 1)));
        v = _mm512_inserti64x4(_mm512_castsi256_si512(h0), h1, 1);
    } else {
        /* the usual case: even and odd lanes multiplied in place; the high
         * multiply's result fits 32 bits, so an even lane keeps the low half
         * of (p + 2^30) >> 31 and an odd lane the high half of (p + 2^30) << 1 */
        const __m512i half = _mm512_set1_epi64(INT64_C(1) << 30);
        __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(acc, mult), half);
        __m512i po = _mm512_add_epi64(
            _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), _mm512_srli_epi64(mult, 32)), half);
        v = _mm512_mask_blend_epi32((__mmask16)0xAAAA, _mm512_srai_epi64(pe, 31),
                                    _mm512_slli_epi64(po, 1));
    }
    /* rounding divide by 2^right, ties away from zero */
    __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), right),
                                    _mm512_set1_epi32(1));
    __m512i rem = _mm512_and_si512(v, mask);
    __m512i thr = _mm512_srli_epi32(mask, 1);
    thr = _mm512_mask_add_epi32(thr, _mm512_cmplt_epi32_mask(v, zero), thr, _mm512_set1_epi32(1));
    v = _mm512_srav_epi32(v, right);
    return _mm512_mask_add_epi32(v, _mm512_cmpgt_epi32_mask(rem, thr), v, _mm512_set1_epi32(1));
}

/* The whole output stage: cnn_qavx512_mul, + zero point, clamp, to int8. */
CNN_QAVX512_TARGET static inline __m128i cnn_qavx512_requant(__m512i acc, __m512i mult,
                                                             __m512i shift, __m512i zp,
                                                             __m512i lo, __m512i hi)
{
    __m512i v = _mm512_add_epi32(cnn_qavx512_mul(acc, mult, shift), zp);
    v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
    return _mm512_cvtepi32_epi8(v);
}

#endif
