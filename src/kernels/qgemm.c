/* int8 GEMM and Conv2D: the reference, the packing, and the generic, AVX2
 * and AVX-512 VNNI kernels (kernels/qgemm.h says what each computes).
 *
 * Every fast kernel computes the exact int32 accumulator (in a different
 * order, which integer addition modulo 2^32 does not notice) and applies
 * the same output stage, so all of them return the reference's bytes.
 * ISA-specific code is compiled per function with target attributes (the
 * default build has no -march) and chosen at run time. */
#include "kernels/qgemm.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#define QGEMM_X86 1
#include <immintrin.h>

#include "kernels/qrequant_avx512.h"
#endif

enum { QP = 16, QG = 4, QBLOCK = QP * QG }; /* panel width, group depth, bytes per group */

/* ---- Instruction sets -------------------------------------------------- */

bool cnn_qisa_supported(cnn_qisa isa)
{
    switch (isa) {
    case CNN_QISA_AUTO:
    case CNN_QISA_GENERIC: return true;
#ifdef QGEMM_X86
    case CNN_QISA_AVX2: __builtin_cpu_init(); return __builtin_cpu_supports("avx2");
    case CNN_QISA_VNNI:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512vnni");
#else
    case CNN_QISA_AVX2:
    case CNN_QISA_VNNI: return false;
#endif
    }
    return false;
}

cnn_qisa cnn_qisa_resolve(cnn_qisa want)
{
    if (want == CNN_QISA_AUTO) {
        if (cnn_qisa_supported(CNN_QISA_VNNI))
            return CNN_QISA_VNNI;
        return cnn_qisa_supported(CNN_QISA_AVX2) ? CNN_QISA_AVX2 : CNN_QISA_GENERIC;
    }
    return cnn_qisa_supported(want) ? want : CNN_QISA_GENERIC;
}

const char *cnn_qisa_name(cnn_qisa isa)
{
    switch (isa) {
    case CNN_QISA_AUTO: return "auto";
    case CNN_QISA_GENERIC: return "generic";
    case CNN_QISA_AVX2: return "avx2";
    case CNN_QISA_VNNI: return "vnni";
    }
    return "unknown";
}

/* ---- Reference --------------------------------------------------------- */

void cnn_qgemm_ref(int64_t M, int N, int K, const int8_t *A, int64_t lda, int32_t a_zero,
                   const int8_t *B, const cnn_qoutput *out, int8_t *Y, int64_t ldy)
{
    for (int64_t m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            int32_t acc = 0;
            for (int k = 0; k < K; k++)
                acc += ((int32_t)A[m * lda + k] - a_zero) * (int32_t)B[(int64_t)k * N + n];
            Y[m * ldy + n] = cnn_q_requant(out, n, acc);
        }
}

/* ---- Packing ----------------------------------------------------------- */

cnn_status cnn_qpacked_create(cnn_qpacked **out, const int8_t *B, int K, int N)
{
    *out = NULL;
    if (K < 1 || K > CNN_QGEMM_MAX_K || N < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "int8 gemm: expected 1 <= K <= %d and N >= 1, got K = %d, N = %d",
                        CNN_QGEMM_MAX_K, K, N);
    cnn_qpacked *p = calloc(1, sizeof *p);
    if (!p)
        return cnn_fail(CNN_ERR_NO_MEMORY, "int8 gemm: out of memory");
    p->K = K;
    p->N = N;
    p->groups = (K + QG - 1) / QG;
    p->panels = (N + QP - 1) / QP;
    if ((size_t)p->panels > SIZE_MAX / QBLOCK / (size_t)p->groups) {
        cnn_qpacked_free(p);
        return cnn_fail(CNN_ERR_NO_MEMORY, "int8 gemm: %d x %d weights exceed the address space",
                        K, N);
    }
    size_t bytes = (size_t)p->panels * (size_t)p->groups * QBLOCK;
    p->data = aligned_alloc(64, bytes);
    p->colsum = calloc((size_t)p->panels * QP, sizeof(int32_t));
    if (!p->data || !p->colsum) {
        cnn_qpacked_free(p);
        return cnn_fail(CNN_ERR_NO_MEMORY, "int8 gemm: cannot allocate %zu bytes of packed weights",
                        bytes);
    }
    for (int pn = 0; pn < p->panels; pn++)
        for (int g = 0; g < p->groups; g++) {
            int8_t *dst = p->data + ((size_t)pn * p->groups + g) * QBLOCK;
            for (int c = 0; c < QP; c++)
                for (int t = 0; t < QG; t++) {
                    int k = g * QG + t, n = pn * QP + c;
                    dst[c * QG + t] = k < K && n < N ? B[(int64_t)k * N + n] : 0;
                }
        }
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++)
            p->colsum[n] += B[(int64_t)k * N + n];
    *out = p;
    return CNN_OK;
}

cnn_status cnn_qpacked_add_rows(cnn_qpacked *p, const int8_t *B, int kh, int kwc)
{
    if (kh < 1 || kwc < 1 || kwc > 64 || (int64_t)kh * kwc != p->K)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "int8 gemm: kernel rows: expected kh * kw * c = %d with kw * c <= 64, "
                        "got %d x %d", p->K, kh, kwc);
    const int w4 = (kwc + QG - 1) / QG * QG;
    int8_t *wide = calloc((size_t)kh * (size_t)w4 * (size_t)p->N, 1);
    if (!wide)
        return cnn_fail(CNN_ERR_NO_MEMORY, "int8 gemm: out of memory");
    for (int ky = 0; ky < kh; ky++)
        memcpy(wide + (size_t)ky * w4 * p->N, B + (size_t)ky * kwc * p->N, (size_t)kwc * p->N);
    cnn_qpacked *rows = NULL;
    cnn_status st = cnn_qpacked_create(&rows, wide, kh * w4, p->N);
    free(wide);
    if (st)
        return st;
    cnn_qpacked_free(p->rows);
    p->rows = rows;
    p->row_kh = kh;
    p->row_width = kwc;
    return CNN_OK;
}

void cnn_qpacked_free(cnn_qpacked *p)
{
    if (!p)
        return;
    cnn_qpacked_free(p->rows);
    free(p->data);
    free(p->colsum);
    free(p);
}

/* The 4 bytes of A's group g in one word, zeros past K (whose weights are
 * 0 anyway) so the last group never reads past the row. */
static inline uint32_t group_word(const int8_t *row, int g, int K)
{
    uint32_t w = 0;
    if ((g + 1) * QG <= K) {
        memcpy(&w, row + g * QG, 4);
        return w;
    }
    unsigned char b[4] = {0, 0, 0, 0};
    for (int t = 0; g * QG + t < K; t++)
        b[t] = (unsigned char)row[g * QG + t];
    memcpy(&w, b, 4);
    return w;
}

/* acc (sum of A * B, without the zero point) for columns of panel pn ->
 * the output row; wrapping arithmetic for the correction (see the header). */
static void store_row(const cnn_qpacked *B, int pn, const int32_t *acc, int32_t a_zero,
                      const cnn_qoutput *out, int8_t *y)
{
    int n0 = pn * QP, nc = B->N - n0 < QP ? B->N - n0 : QP;
    for (int c = 0; c < nc; c++) {
        uint32_t v = (uint32_t)acc[c] - (uint32_t)a_zero * (uint32_t)B->colsum[n0 + c];
        y[n0 + c] = cnn_q_requant(out, n0 + c, (int32_t)v);
    }
}

/* ---- Generic ----------------------------------------------------------- */

static void qgemm_generic(int64_t M, const int8_t *A, int64_t lda, int32_t a_zero,
                          const cnn_qpacked *B, const cnn_qoutput *out, int8_t *Y, int64_t ldy)
{
    for (int64_t m = 0; m < M; m++) {
        const int8_t *row = A + m * lda;
        for (int pn = 0; pn < B->panels; pn++) {
            int32_t acc[QP] = {0};
            const int8_t *bp = B->data + (size_t)pn * B->groups * QBLOCK;
            for (int g = 0; g < B->groups; g++, bp += QBLOCK) {
                uint32_t w = group_word(row, g, B->K);
                int8_t a[QG];
                memcpy(a, &w, 4);
                for (int c = 0; c < QP; c++)
                    for (int t = 0; t < QG; t++)
                        acc[c] += (int32_t)a[t] * bp[c * QG + t];
            }
            store_row(B, pn, acc, a_zero, out, Y + m * ldy);
        }
    }
}

#ifdef QGEMM_X86
/* ---- AVX2: vpmaddwd on sign-extended bytes ------------------------------ */

/* Rows m0 .. m0 + MR - 1 (MR <= 3: 12 sums + 4 weights + 1 row in the 16
 * registers) against panel pn. Each group's 64 bytes become
 * four vectors of 16 int16 (4 columns x 4 k); vpmaddwd with the row's 4
 * k-values (broadcast) leaves 2 partial sums per column, added pairwise at
 * the end. */
__attribute__((target("avx2"), always_inline)) static inline void
avx2_tile(int MR, const int8_t *A, int64_t lda, const cnn_qpacked *B, int pn, int full,
          int32_t acc[][QP])
{
    __m256i s[3][4];
#pragma GCC unroll 3
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            s[r][i] = _mm256_setzero_si256();
    const int8_t *bp = B->data + (size_t)pn * B->groups * QBLOCK;
    for (int g = 0; g < B->groups; g++, bp += QBLOCK) {
        __m256i b[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            b[i] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(bp + 16 * i)));
#pragma GCC unroll 3
        for (int r = 0; r < MR; r++) {
            uint32_t w;
            if (g < full)
                memcpy(&w, A + r * lda + g * QG, 4);
            else
                w = group_word(A + r * lda, g, B->K);
            __m128i a16 = _mm_cvtepi8_epi16(_mm_cvtsi32_si128((int)w));
            __m256i a = _mm256_broadcastq_epi64(a16);
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
                s[r][i] = _mm256_add_epi32(s[r][i], _mm256_madd_epi16(b[i], a));
        }
    }
    for (int r = 0; r < MR; r++) {
        /* hadd: [c0 c1 c4 c5 | c2 c3 c6 c7]; the permute puts them in order */
        __m256i lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(s[r][0], s[r][1]), 0xD8);
        __m256i hi = _mm256_permute4x64_epi64(_mm256_hadd_epi32(s[r][2], s[r][3]), 0xD8);
        _mm256_storeu_si256((__m256i *)acc[r], lo);
        _mm256_storeu_si256((__m256i *)(acc[r] + 8), hi);
    }
}

/* The output stage for the 16 columns of a whole panel with AVX2, 8 lanes
 * at a time; a half with a left-shifting channel takes the scalar path.
 * The high multiply: (p + 2^30) >> 31 fits 32 bits, so an even lane keeps
 * the low half of the logical shift and an odd lane the high half of
 * (p + 2^30) << 1, as the AVX-512 stage does. */
__attribute__((target("avx2"))) static void
store_row_avx2(const cnn_qpacked *B, int pn, const int32_t *acc, int32_t a_zero,
               const cnn_qoutput *out, int8_t *y)
{
    const int n0 = pn * QP;
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1);
    const __m256i half = _mm256_set1_epi64x(INT64_C(1) << 30);
    for (int h = 0; h < 2; h++) {
        const int c0 = n0 + 8 * h;
        __m256i shift = _mm256_loadu_si256((const __m256i *)(out->shift + c0));
        if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(shift, zero)))) {
            for (int c = c0; c < c0 + 8; c++) {
                uint32_t v = (uint32_t)acc[c - n0] - (uint32_t)a_zero * (uint32_t)B->colsum[c];
                y[c] = cnn_q_requant(out, c, (int32_t)v);
            }
            continue;
        }
        __m256i v = _mm256_loadu_si256((const __m256i *)(acc + 8 * h));
        __m256i cs = _mm256_loadu_si256((const __m256i *)(B->colsum + c0));
        v = _mm256_sub_epi32(v, _mm256_mullo_epi32(_mm256_set1_epi32(a_zero), cs));
        if (out->bias)
            v = _mm256_add_epi32(v, _mm256_loadu_si256((const __m256i *)(out->bias + c0)));
        __m256i mult = _mm256_loadu_si256((const __m256i *)(out->multiplier + c0));
        __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(v, mult), half);
        __m256i po = _mm256_add_epi64(
            _mm256_mul_epi32(_mm256_srli_epi64(v, 32), _mm256_srli_epi64(mult, 32)), half);
        v = _mm256_blend_epi32(_mm256_srli_epi64(pe, 31), _mm256_slli_epi64(po, 1), 0xAA);
        /* rounding divide by 2^right, ties away from zero */
        __m256i right = _mm256_sub_epi32(zero, shift);
        __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
        __m256i rem = _mm256_and_si256(v, mask);
        __m256i thr = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_cmpgt_epi32(zero, v));
        v = _mm256_sub_epi32(_mm256_srav_epi32(v, right), _mm256_cmpgt_epi32(rem, thr));
        v = _mm256_add_epi32(v, _mm256_set1_epi32(out->zero_point));
        v = _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(out->lo)),
                             _mm256_set1_epi32(out->hi));
        __m256i b8 = _mm256_packs_epi16(_mm256_packs_epi32(v, v), zero);
        uint32_t lo4 = (uint32_t)_mm256_extract_epi32(b8, 0);
        uint32_t hi4 = (uint32_t)_mm256_extract_epi32(b8, 4);
        memcpy(y + c0, &lo4, 4);
        memcpy(y + c0 + 4, &hi4, 4);
    }
}

__attribute__((target("avx2"))) static void
qgemm_avx2(int64_t M, const int8_t *A, int64_t lda, int32_t a_zero, const cnn_qpacked *B,
           const cnn_qoutput *out, int8_t *Y, int64_t ldy, int full)
{
    int32_t acc[3][QP];
    for (int pn = 0; pn < B->panels; pn++) {
        for (int64_t m = 0; m < M; m += 3) {
            int mr = M - m < 3 ? (int)(M - m) : 3;
            if (mr == 3)
                avx2_tile(3, A + m * lda, lda, B, pn, full, acc);
            else if (mr == 2)
                avx2_tile(2, A + m * lda, lda, B, pn, full, acc);
            else
                avx2_tile(1, A + m * lda, lda, B, pn, full, acc);
            bool whole = (pn + 1) * QP <= B->N; /* partial panels: the scalar stage */
            for (int r = 0; r < mr; r++) {
                if (whole)
                    store_row_avx2(B, pn, acc[r], a_zero, out, Y + (m + r) * ldy);
                else
                    store_row(B, pn, acc[r], a_zero, out, Y + (m + r) * ldy);
            }
        }
    }
}

/* ---- AVX-512 VNNI: vpdpbusd -------------------------------------------- */

#define VNNI_TARGET CNN_QAVX512_TARGET

/* Four vectors of 16 int32 (requantized, before the zero point) to 64
 * int8 in their order: two saturating packs to int16, the zero point added
 * with saturation, one saturating pack to int8, the clamp on bytes, and
 * one permute to undo the packs' per-128-bit-lane interleave. The same
 * bytes as cnn_qavx512_requant on each vector: saturation only moves a
 * value that is outside [-128, 127] anyway to another value outside it on
 * the same side, and lo, hi lie inside. About 9 instructions for what
 * took 24 (add, max, min, a 2-uop vpmovdb and a store per vector). */
VNNI_TARGET __attribute__((always_inline)) static inline __m512i
vnni_pack4(__m512i v0, __m512i v1, __m512i v2, __m512i v3, __m512i zp16, __m512i lo8,
           __m512i hi8)
{
    /* byte dword L * 4 + d holds vector d's 128-bit lane L */
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512i a = _mm512_adds_epi16(_mm512_packs_epi32(v0, v1), zp16);
    __m512i b = _mm512_adds_epi16(_mm512_packs_epi32(v2, v3), zp16);
    __m512i y = _mm512_min_epi8(_mm512_max_epi8(_mm512_packs_epi16(a, b), lo8), hi8);
    return _mm512_permutexvar_epi32(order, y);
}

/* The output stage of an MR x NP tile: the zero-point correction, bias,
 * requantization, and MR rows of up to NP * 16 bytes (masked past N).
 * With 2 or 4 whole panels the requantized sums are first left in acc,
 * then packed four vectors at a time (vnni_pack4): a row of 4 panels, or
 * two rows of 2. */
VNNI_TARGET __attribute__((always_inline)) static inline void
vnni_store(int MR, int NP, __m512i acc[6][4], int32_t a_zero, const cnn_qpacked *B, int pn,
           const cnn_qoutput *out, int8_t *Y, int64_t ldy)
{
    const __m512i zp = _mm512_set1_epi32(out->zero_point), lo = _mm512_set1_epi32(out->lo),
                  hi = _mm512_set1_epi32(out->hi);
    const bool packed = (NP == 4 || NP == 2) && (pn + NP) * QP <= B->N;
#pragma GCC unroll 4
    for (int j = 0; j < NP; j++) {
        int n0 = (pn + j) * QP, nc = B->N - n0 < QP ? B->N - n0 : QP;
        __mmask16 k = (__mmask16)((1u << nc) - 1);
        /* correction = bias - (128 + a_zero) * colsum, modulo 2^32 */
        __m512i corr = _mm512_mullo_epi32(_mm512_set1_epi32(128 + a_zero),
                                          _mm512_loadu_si512((const void *)(B->colsum + n0)));
        __m512i bias = out->bias ? _mm512_maskz_loadu_epi32(k, out->bias + n0)
                                 : _mm512_setzero_si512();
        corr = _mm512_sub_epi32(bias, corr);
        __m512i mult = _mm512_maskz_loadu_epi32(k, out->multiplier + n0);
        __m512i shift = _mm512_maskz_loadu_epi32(k, out->shift + n0);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m512i v = _mm512_add_epi32(acc[r][j], corr);
            if (packed) {
                acc[r][j] = cnn_qavx512_mul(v, mult, shift);
                continue;
            }
            __m128i y = cnn_qavx512_requant(v, mult, shift, zp, lo, hi);
            if (nc == QP) /* masked stores are slow on Zen 4: only for the last panel */
                _mm_storeu_si128((__m128i *)(Y + r * ldy + n0), y);
            else
                _mm_mask_storeu_epi8(Y + r * ldy + n0, k, y);
        }
    }
    if (!packed)
        return;
    const __m512i zp16 = _mm512_set1_epi16((short)out->zero_point),
                  lo8 = _mm512_set1_epi8((char)out->lo), hi8 = _mm512_set1_epi8((char)out->hi);
    int8_t *y0 = Y + pn * QP;
    if (NP == 4) {
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++)
            _mm512_storeu_si512((void *)(y0 + r * ldy),
                                vnni_pack4(acc[r][0], acc[r][1], acc[r][2], acc[r][3], zp16, lo8,
                                           hi8));
        return;
    }
#pragma GCC unroll 3
    for (int r = 0; r < MR; r += 2) {
        int r1 = r + 1 < MR ? r + 1 : r; /* an odd last row packs with itself */
        __m512i y = vnni_pack4(acc[r][0], acc[r][1], acc[r1][0], acc[r1][1], zp16, lo8, hi8);
        _mm256_storeu_si256((__m256i *)(y0 + r * ldy), _mm512_castsi512_si256(y));
        if (r1 != r)
            _mm256_storeu_si256((__m256i *)(y0 + r1 * ldy), _mm512_extracti64x4_epi64(y, 1));
    }
}


/* Rows m0 .. m0 + MR - 1 against panels pn .. pn + NP - 1: MR x NP
 * accumulators of 16 lanes, one vpdpbusd per row and panel per group. The
 * main loop runs over whole groups only, each row's 4 bytes broadcast
 * straight from memory and flipped to unsigned in the vector unit (the
 * path through a general register costs a shuffle uop per row and, with a
 * tail test inside, made GCC spill accumulators); the last, partial group
 * (K % 4 != 0) comes once after it. */
VNNI_TARGET __attribute__((always_inline)) static inline void
vnni_tile(int MR, int NP, const int8_t *A, int64_t lda, int32_t a_zero, const cnn_qpacked *B,
          int pn, int full, const cnn_qoutput *out, int8_t *Y, int64_t ldy)
{
    __m512i acc[6][4];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++)
            acc[r][j] = _mm512_setzero_si512();
    const size_t pstride = (size_t)B->groups * QBLOCK;
    const int8_t *bp = B->data + pn * pstride;
    const __m512i flip = _mm512_set1_epi32((int)0x80808080u);
    const int8_t *ar = A;
    for (int g = 0; g < full; g++, bp += QBLOCK, ar += QG) {
        __m512i b[4];
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++)
            b[j] = _mm512_load_si512((const void *)(bp + j * pstride));
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            int32_t w;
            memcpy(&w, ar + r * lda, 4);
            __m512i a = _mm512_xor_si512(_mm512_set1_epi32(w), flip); /* A + 128, unsigned */
#pragma GCC unroll 4
            for (int j = 0; j < NP; j++)
                acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], a, b[j]);
        }
    }
    if (full < B->groups) {
        __m512i b[4];
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++)
            b[j] = _mm512_load_si512((const void *)(bp + j * pstride));
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            uint32_t w = group_word(A + r * lda, full, B->K);
            __m512i a = _mm512_set1_epi32((int)(w ^ 0x80808080u));
#pragma GCC unroll 4
            for (int j = 0; j < NP; j++)
                acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], a, b[j]);
        }
    }
    vnni_store(MR, NP, acc, a_zero, B, pn, out, Y, ldy);
}

/* One instantiation per (rows, panels) pair, so the tiles stay in registers. */
#define VNNI_CASE(mr, np) \
    case (mr) * 8 + (np): vnni_tile(mr, np, A, lda, a_zero, B, pn, full, out, Y, ldy); break;
#define VNNI_ROWS(mr) VNNI_CASE(mr, 1) VNNI_CASE(mr, 2) VNNI_CASE(mr, 3) VNNI_CASE(mr, 4)

VNNI_TARGET static void vnni_block(int mr, int np, const int8_t *A, int64_t lda, int32_t a_zero,
                                   const cnn_qpacked *B, int pn, int full,
                                   const cnn_qoutput *out, int8_t *Y, int64_t ldy)
{
    switch (mr * 8 + np) {
        VNNI_ROWS(1) VNNI_ROWS(2) VNNI_ROWS(3) VNNI_ROWS(4) VNNI_ROWS(5) VNNI_ROWS(6)
    default: break;
    }
}

VNNI_TARGET static void qgemm_vnni(int64_t M, const int8_t *A, int64_t lda, int32_t a_zero,
                                   const cnn_qpacked *B, const cnn_qoutput *out, int8_t *Y,
                                   int64_t ldy, int full)
{
    for (int pn = 0; pn < B->panels; pn += 4) {
        int np = B->panels - pn < 4 ? B->panels - pn : 4;
        for (int64_t m = 0; m < M; m += 6) {
            int mr = M - m < 6 ? (int)(M - m) : 6;
            vnni_block(mr, np, A + m * lda, lda, a_zero, B, pn, full, out, Y + m * ldy, ldy);
        }
    }
}

/* ---- AVX-512 VNNI Conv2D without im2col --------------------------------- */

/* When c % 4 == 0 no group of 4 k-values straddles two taps, so the tile
 * can read each tap's c bytes where they lie: ptr[t * 6 + r] is row r's
 * tap t (the input pixel, or padrow - c bytes of the input's zero point -
 * for a tap in the padding). Same sums, same order of groups as the GEMM
 * over im2col's rows, without writing and re-reading those rows. */
VNNI_TARGET __attribute__((always_inline)) static inline void
vnni_conv_tile(int MR, int NP, const int8_t *const *ptr, int taps, int cg, int32_t a_zero,
               const cnn_qpacked *B, int pn, const cnn_qoutput *out, int8_t *Y, int64_t ldy)
{
    __m512i acc[6][4];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++)
            acc[r][j] = _mm512_setzero_si512();
    const size_t pstride = (size_t)B->groups * QBLOCK;
    const int8_t *bp = B->data + pn * pstride;
    const __m512i flip = _mm512_set1_epi32((int)0x80808080u);
    for (int t = 0; t < taps; t++) {
        const int8_t *ar[6];
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++)
            ar[r] = ptr[t * 6 + r];
        for (int g = 0; g < cg; g++, bp += QBLOCK) {
            __m512i b[4];
#pragma GCC unroll 4
            for (int j = 0; j < NP; j++)
                b[j] = _mm512_load_si512((const void *)(bp + j * pstride));
#pragma GCC unroll 6
            for (int r = 0; r < MR; r++) {
                int32_t w;
                memcpy(&w, ar[r] + g * QG, 4);
                __m512i a = _mm512_xor_si512(_mm512_set1_epi32(w), flip);
#pragma GCC unroll 4
                for (int j = 0; j < NP; j++)
                    acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], a, b[j]);
            }
        }
    }
    vnni_store(MR, NP, acc, a_zero, B, pn, out, Y, ldy);
}

#define VNNI_CONV_CASE(mr, np)                                                             \
    case (mr) * 8 + (np):                                                                  \
        vnni_conv_tile(mr, np, ptr, taps, cg, a_zero, B, pn, out, Y, ldy);                 \
        break;
#define VNNI_CONV_ROWS(mr) \
    VNNI_CONV_CASE(mr, 1) VNNI_CONV_CASE(mr, 2) VNNI_CONV_CASE(mr, 3) VNNI_CONV_CASE(mr, 4)

VNNI_TARGET static void vnni_conv_block(int mr, int np, const int8_t *const *ptr, int taps,
                                        int cg, int32_t a_zero, const cnn_qpacked *B, int pn,
                                        const cnn_qoutput *out, int8_t *Y, int64_t ldy)
{
    switch (mr * 8 + np) {
        VNNI_CONV_ROWS(1) VNNI_CONV_ROWS(2) VNNI_CONV_ROWS(3) VNNI_CONV_ROWS(4)
        VNNI_CONV_ROWS(5) VNNI_CONV_ROWS(6)
    default: break;
    }
}

VNNI_TARGET static void qconv_vnni_implicit(const cnn_conv_geom *g, const int8_t *x,
                                            int32_t a_zero, const cnn_qpacked *B,
                                            const cnn_qoutput *out, int64_t m0, int64_t m1,
                                            const int8_t *padrow, int8_t *Y)
{
    const int C = g->c, taps = g->kh * g->kw, N = B->N;
    const int64_t plane = (int64_t)g->oh * g->ow;
    const int8_t *ptr[CNN_QCONV_MAX_TAPS * 6];
    int64_t off[CNN_QCONV_MAX_TAPS]; /* tap t's offset from the window's corner */
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++)
            off[ky * g->kw + kx] = ((int64_t)ky * g->dh * g->w + (int64_t)kx * g->dw) * C;
    if (m0 >= m1)
        return;
    /* pixel m0's (image, row, column), then stepped: no division per pixel */
    int64_t n = m0 / plane;
    int rest = (int)(m0 - n * plane), oy = rest / g->ow, ox = rest % g->ow;
    for (int64_t m = m0; m < m1; m += 6) {
        int mr = m1 - m < 6 ? (int)(m1 - m) : 6;
        for (int r = 0; r < mr; r++) {
            const int8_t *xn = x + n * (int64_t)g->h * g->w * C;
            const int iy0 = oy * g->sh - g->pad_top, ix0 = ox * g->sw - g->pad_left;
            const bool inside = iy0 >= 0 && iy0 + (g->kh - 1) * g->dh < g->h && ix0 >= 0 &&
                                ix0 + (g->kw - 1) * g->dw < g->w;
            const int8_t **pr = ptr + r;
            if (inside) { /* the common case: the corner plus each tap's offset */
                const int8_t *corner = xn + ((int64_t)iy0 * g->w + ix0) * C;
                for (int t = 0; t < taps; t++)
                    pr[t * 6] = corner + off[t];
            } else
                for (int ky = 0; ky < g->kh; ky++) {
                    int iy = iy0 + ky * g->dh;
                    for (int kx = 0; kx < g->kw; kx++, pr += 6) {
                        int ix = ix0 + kx * g->dw;
                        *pr = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w
                                  ? xn + ((int64_t)iy * g->w + ix) * C
                                  : padrow;
                    }
                }
            if (++ox == g->ow) {
                ox = 0;
                if (++oy == g->oh) {
                    oy = 0;
                    n++;
                }
            }
        }
        for (int pn = 0; pn < B->panels; pn += 4) {
            int np = B->panels - pn < 4 ? B->panels - pn : 4;
            vnni_conv_block(mr, np, ptr, taps, C / QG, a_zero, B, pn, out, Y + (m - m0) * N, N);
        }
    }
}

/* Conv2D over few channels with p->rows (cnn_qpacked_add_rows): each of a
 * pixel's kh window rows is one "tap" of w4 bytes (the kw * c bytes it
 * covers, rounded up to whole groups; the extra bytes meet zero weights),
 * read in place when those w4 bytes lie inside the pixel's image and its
 * row has no padding; otherwise composed, padding as the zero point, in a
 * 64-byte slot of stage (6 * kh slots). padrow: 64 bytes of the zero
 * point. */
VNNI_TARGET static void qconv_vnni_rows(const cnn_conv_geom *g, const int8_t *x, int32_t a_zero,
                                        const cnn_qpacked *B, const cnn_qoutput *out,
                                        int64_t m0, int64_t m1, const int8_t *padrow,
                                        int8_t *stage, int8_t *Y)
{
    const int C = g->c, kh = g->kh, rw = g->kw * C, w4 = (rw + QG - 1) / QG * QG, N = B->N;
    const int64_t plane = (int64_t)g->oh * g->ow, rowb = (int64_t)g->w * C;
    const int64_t image = (int64_t)g->h * rowb, step = (int64_t)g->dh * rowb;
    const int span = (kh - 1) * g->dh;
    const __m512i padv = _mm512_set1_epi8((char)a_zero);
    const int8_t *ptr[CNN_QCONV_MAX_TAPS * 6];
    int64_t n = m0 / plane;
    int rest = (int)(m0 - n * plane), oy = rest / g->ow, ox = rest % g->ow;
    for (int64_t m = m0; m < m1; m += 6) {
        int mr = m1 - m < 6 ? (int)(m1 - m) : 6;
        for (int r = 0; r < mr; r++) {
            const int8_t *xn = x + n * image;
            const int iy0 = oy * g->sh - g->pad_top;
            const int64_t start = (int64_t)(ox * g->sw - g->pad_left) * C; /* byte in the row */
            const bool cols_in = start >= 0 && start + rw <= rowb;
            if (cols_in && iy0 >= 0 && iy0 + span < g->h &&
                (int64_t)(iy0 + span) * rowb + start + w4 <= image) {
                const int8_t *p = xn + (int64_t)iy0 * rowb + start; /* the usual case */
                for (int ky = 0; ky < kh; ky++, p += step)
                    ptr[ky * 6 + r] = p;
            } else
                for (int ky = 0; ky < kh; ky++) {
                    int iy = iy0 + ky * g->dh;
                    const int8_t **pr = &ptr[ky * 6 + r];
                    if (iy < 0 || iy >= g->h) {
                        *pr = padrow;
                        continue;
                    }
                    int64_t at = (int64_t)iy * rowb + start;
                    if (cols_in && at + w4 <= image) {
                        *pr = xn + at;
                        continue;
                    }
                    int8_t *dst = stage + (r * kh + ky) * 64;
                    _mm512_storeu_si512((void *)dst, padv);
                    int64_t lo = start < 0 ? 0 : start, hi = start + rw < rowb ? start + rw : rowb;
                    if (lo < hi) {
                        __mmask64 k = hi - lo >= 64 ? ~(__mmask64)0
                                                    : ((__mmask64)1 << (hi - lo)) - 1;
                        _mm512_mask_storeu_epi8(
                            dst + (lo - start), k,
                            _mm512_maskz_loadu_epi8(k, xn + (int64_t)iy * rowb + lo));
                    }
                    *pr = dst;
                }
            if (++ox == g->ow) {
                ox = 0;
                if (++oy == g->oh) {
                    oy = 0;
                    n++;
                }
            }
        }
        for (int pn = 0; pn < B->panels; pn += 4) {
            int np = B->panels - pn < 4 ? B->panels - pn : 4;
            vnni_conv_block(mr, np, ptr, kh, w4 / QG, a_zero, B, pn, out, Y + (m - m0) * N, N);
        }
    }
}
#endif

/* full: the groups of 4 bytes the kernels may load whole from each row of
 * A; the rest (the last, partial group) is gathered byte by byte. */
static void qgemm_run(cnn_qisa isa, int64_t M, const int8_t *A, int64_t lda, int32_t a_zero,
                      const cnn_qpacked *B, const cnn_qoutput *out, int8_t *Y, int64_t ldy,
                      int full)
{
    switch (cnn_qisa_resolve(isa)) {
#ifdef QGEMM_X86
    case CNN_QISA_VNNI: qgemm_vnni(M, A, lda, a_zero, B, out, Y, ldy, full); return;
    case CNN_QISA_AVX2: qgemm_avx2(M, A, lda, a_zero, B, out, Y, ldy, full); return;
#endif
    default: (void)full; qgemm_generic(M, A, lda, a_zero, B, out, Y, ldy); return;
    }
}

void cnn_qgemm(cnn_qisa isa, int64_t M, const int8_t *A, int64_t lda, int32_t a_zero,
               const cnn_qpacked *B, const cnn_qoutput *out, int8_t *Y, int64_t ldy)
{
    qgemm_run(isa, M, A, lda, a_zero, B, out, Y, ldy, B->K / QG);
}

void cnn_qgemm_padded(cnn_qisa isa, int64_t M, const int8_t *A, int64_t lda, int32_t a_zero,
                      const cnn_qpacked *B, const cnn_qoutput *out, int8_t *Y, int64_t ldy)
{
    qgemm_run(isa, M, A, lda, a_zero, B, out, Y, ldy, B->groups);
}

bool cnn_qconv_implicit(cnn_qisa isa, const cnn_conv_geom *g, const int8_t *x, int32_t x_zero,
                        const cnn_qpacked *kernel, const cnn_qoutput *out, int64_t m0,
                        int64_t m1, int8_t *scratch, int64_t scratch_bytes, int8_t *y)
{
#ifdef QGEMM_X86
    if (cnn_qisa_resolve(isa) != CNN_QISA_VNNI || kernel->K != g->kh * g->kw * g->c ||
        m0 >= m1)
        return false;
    if (g->c % QG == 0 && g->kh * g->kw <= CNN_QCONV_MAX_TAPS && scratch_bytes >= g->c) {
        memset(scratch, x_zero, (size_t)g->c);
        qconv_vnni_implicit(g, x, x_zero, kernel, out, m0, m1, scratch, y);
        return true;
    }
    /* the window rows' zero padding can add groups (1 channel by 5: 40
     * bytes a pixel against im2col's 28), yet skipping im2col wins on every
     * network measured (demo, BN recipe, ResNet-8, MobileNet) */
    if (kernel->rows && kernel->row_kh == g->kh && kernel->row_width == g->kw * g->c &&
        g->dw == 1 && g->kh <= CNN_QCONV_MAX_TAPS && scratch_bytes >= 64 * (6 * g->kh + 1)) {
        memset(scratch, x_zero, 64);
        qconv_vnni_rows(g, x, x_zero, kernel->rows, out, m0, m1, scratch, scratch + 64, y);
        return true;
    }
#else
    (void)isa, (void)g, (void)x, (void)x_zero, (void)kernel, (void)out, (void)m0, (void)m1;
    (void)scratch, (void)scratch_bytes, (void)y;
#endif
    return false;
}
