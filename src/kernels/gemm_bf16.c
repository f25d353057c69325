/* bfloat16 products for the mixed_bfloat16 dtype policy:
 *   C[M x N] = alpha * bf16(op(A)) * bf16(op(B)) + beta * C
 * with cnn_gemm's conventions (kernels/gemm.h). op(A) and op(B) are rounded
 * to bfloat16 while they are packed; the products of two bfloat16 numbers
 * are exact in float and are summed in float.
 *
 * The arithmetic, which cnn_gemm_bf16_reference states in scalar C and the
 * AVX-512 BF16 kernel matches bit for bit:
 *   - rounding: round to nearest even, NaNs kept quiet, subnormal inputs to
 *     zero (vcvtne2ps2bf16);
 *   - K is cut into blocks of cnn_gemm_bf16_kstep(K) (even, a function of K
 *     only); within a block, for each pair (k, k + 1) in order,
 *       acc = fma(a[k + 1], b[k + 1], acc); acc = fma(a[k], b[k], acc)
 *     with a subnormal acc flushed to zero after each (vdpbf16ps; a missing
 *     k + 1 at the end of an odd block counts as 0 * 0);
 *   - after each block, C = beta' * C + alpha * acc (separate multiply and
 *     add), beta' = beta for the first block and 1 after; beta == 0 does
 *     not read C.
 * Threads take disjoint MR/NR-aligned ranges of C, so results do not
 * depend on the thread count. The gathers' _spans variants skip the pairs
 * where A is zero and keep these bits, a zero's sign included
 * (ukernel_bf16_spans).
 *
 * Packed layouts, in 32-bit words that each hold a bfloat16 pair (k even
 * in the low half, k + 1 in the high half), kc2 = ceil(kc / 2) pairs:
 *   B block:  ceil(nc / NR) micro-panels [kc2][NR], zero-padded columns;
 *   A panel:  [kc2][MR] when op(A)'s rows of k are contiguous (trans_a),
 *             else [MR][kc2] (each row of A converted in place order) -
 *             the micro-kernel broadcasts one word per row and k, so
 *             either layout serves without a transpose.
 * On a CPU without AVX512_BF16 cnn_gemm_bf16 is cnn_gemm (float32). */
#include "kernels/gemm.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define BF16_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

enum {
    BF16_MR = 12,
    BF16_NR = 32,
    BF16_KC = 1024,           /* k values per block (512 pairs) */
    BF16_KC2 = BF16_KC / 2,
    BF16_NC = 512, /* columns per B block at KC (a multiple of NR; bf16_nstep) */
};

/* ---- Scalar conversion and the reference ------------------------------- */

uint16_t cnn_bf16_from_float(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu))
        return (uint16_t)((u >> 16) | 0x40); /* NaN: quiet, payload's top kept */
    if ((u & 0x7f800000u) == 0)
        return (uint16_t)((u >> 16) & 0x8000); /* zero or subnormal: signed zero */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float cnn_bf16_to_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

int cnn_gemm_bf16_kstep(int K)
{
    int blocks = (K + BF16_KC - 1) / BF16_KC;
    if (blocks < 1)
        return 2;
    int step = (K + blocks - 1) / blocks;
    return step + (step & 1);
}

static float bf16_round(float f) { return cnn_bf16_to_float(cnn_bf16_from_float(f)); }

static float flush(float x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }

/* C = beta * C for the calls that multiply nothing (cnn_gemm's rule). */
static bool bf16_trivial(int M, int N, int K, float alpha, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return true;
    if (K > 0 && alpha != 0)
        return false;
    for (long i = 0; i < M; i++)
        for (long q = 0; q < N; q++)
            C[i * ldc + q] = beta == 0 ? 0.0f : beta * C[i * ldc + q];
    return true;
}

void cnn_gemm_bf16_reference(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                             const float *A, int lda, const float *B, int ldb, float beta,
                             float *C, int ldc)
{
    if (bf16_trivial(M, N, K, alpha, beta, C, ldc))
        return;
    const int kstep = cnn_gemm_bf16_kstep(K);
#define OPA(i, k) bf16_round(trans_a ? A[(long)(k) * lda + (i)] : A[(long)(i) * lda + (k)])
#define OPB(k, j) bf16_round(trans_b ? B[(long)(j) * ldb + (k)] : B[(long)(k) * ldb + (j)])
    for (long i = 0; i < M; i++) {
        for (long j = 0; j < N; j++) {
            float *c = &C[i * ldc + j];
            for (int pc = 0; pc < K; pc += kstep) {
                int end = K - pc < kstep ? K : pc + kstep;
                float acc = 0;
                for (int k = pc; k < end; k += 2) {
                    float a1 = k + 1 < end ? OPA(i, k + 1) : 0, b1 = k + 1 < end ? OPB(k + 1, j) : 0;
                    acc = flush(fmaf(a1, b1, acc));
                    acc = flush(fmaf(OPA(i, k), OPB(k, j), acc));
                }
                float t = alpha * acc, b = pc == 0 ? beta : 1.0f;
                if (b != 0) {
                    float old = b * *c;
                    t = old + t;
                }
                *c = t;
            }
        }
    }
#undef OPA
#undef OPB
}

/* ---- Detection ----------------------------------------------------------- */

bool cnn_gemm_bf16_supported(void)
{
#ifdef BF16_X86
    /* gcc 12 has no __builtin_cpu_supports("avx512bf16"): CPUID leaf 7
     * subleaf 1, EAX bit 5. avx512f also tells that the OS saves zmm state. */
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")
        || !__builtin_cpu_supports("avx512vl"))
        return false;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d))
        return false;
    return (a >> 5) & 1;
#else
    return false;
#endif
}

size_t cnn_gemm_bf16_buffer_floats(void)
{
    /* A panel, B block: 32-bit words, as floats */
    return (size_t)BF16_MR * BF16_KC2 + (size_t)BF16_KC2 * BF16_NC;
}

#ifdef BF16_X86
#define BF16_TARGET __attribute__((target("avx512bf16,avx512f,avx512vl,avx512bw")))

/* ---- Packing --------------------------------------------------------------- */

/* The address bytes past p, without pointer arithmetic beyond the array
 * (prefetches never fault). The packers prefetch what they will be asked
 * for next, `ahead` bytes past what they read (0: nothing): the hardware
 * prefetchers lose track of the short pieces of rows a panel reads, and
 * im2col tiles are larger than L2. */
static inline const void *ahead_of(const float *p, uintptr_t bytes)
{
    return (const void *)((uintptr_t)p + bytes);
}

/* 16 columns of rows k (lo) and k + 1 (hi) as bfloat16 pairs, the words
 * vdpbf16ps multiplies: word j = (lo[j], hi[j]), i.e. halves j and 16 + j
 * of vcvtne2ps2bf16(hi, lo) interleaved. */
BF16_TARGET static inline __m512i bf16_pairs(__m512 lo, __m512 hi)
{
    static const uint16_t order[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    return _mm512_permutexvar_epi16(_mm512_loadu_si512(order), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

/* Where op(X)[k, p] = src[k * ld + p]: rows k and k + 1 interleaved into
 * dst[kc2][P] words; columns w..P-1 and a missing row k + 1 are zero. */
BF16_TARGET static void pack_pairs_rows(int kc, int w, int P, const float *src, long ld,
                                        uint32_t *dst, uintptr_t ahead)
{
    for (int k = 0; k < kc; k += 2, dst += P) {
        const float *r0 = src + (long)k * ld, *r1 = r0 + ld;
        bool two = k + 1 < kc;
        for (int q = 0; q < P; q += 16) {
            int left = w - q, room = P - q;
            __mmask16 lm = (__mmask16)(left >= 16 ? 0xFFFFu : left > 0 ? (1u << left) - 1 : 0);
            __m512 v0 = _mm512_setzero_ps(), v1 = _mm512_setzero_ps();
            if (lm) {
                if (ahead) {
                    __builtin_prefetch(ahead_of(r0 + q, ahead));
                    __builtin_prefetch(ahead_of(r1 + q, ahead));
                }
                v0 = _mm512_maskz_loadu_ps(lm, r0 + q);
                if (two)
                    v1 = _mm512_maskz_loadu_ps(lm, r1 + q);
            }
            __m512i pairs = bf16_pairs(v0, v1);
            _mm512_mask_storeu_epi32(dst + q, (__mmask16)(room >= 16 ? 0xFFFFu : (1u << room) - 1),
                                     pairs);
        }
    }
}

/* A whole B block where op(B)[k, n] = src[k * ld + n]: like
 * pack_pairs_rows into each NR-wide panel, but walking each pair of rows
 * across all the panels, so that every row streams contiguously (the
 * panel-by-panel order would jump a row stride every 128 bytes). */
BF16_TARGET static void pack_pairs_block(int kc, int nc, const float *src, long ld, uint32_t *bp)
{
    const int kc2 = (kc + 1) / 2;
    const uintptr_t ahead = 8 * (uintptr_t)ld * sizeof(float);
    for (int k = 0; k < kc; k += 2) {
        const float *r0 = src + (long)k * ld, *r1 = r0 + ld;
        bool two = k + 1 < kc;
        uint32_t *dst = bp + (long)(k / 2) * BF16_NR;
        for (int q = 0; q < nc; q += 16) {
            int left = nc - q;
            __mmask16 lm = (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1);
            __builtin_prefetch(ahead_of(r0 + q, ahead));
            __builtin_prefetch(ahead_of(r1 + q, ahead));
            __m512 v0 = _mm512_maskz_loadu_ps(lm, r0 + q);
            __m512 v1 = two ? _mm512_maskz_loadu_ps(lm, r1 + q) : _mm512_setzero_ps();
            __m512i pairs = bf16_pairs(v0, v1);
            /* column q is in panel q / NR, at q % NR; padding columns get zeros */
            _mm512_storeu_si512(dst + (long)(q / BF16_NR) * kc2 * BF16_NR + q % BF16_NR, pairs);
        }
        /* the rest of a partial last panel */
        int end = (nc + 15) / 16 * 16;
        if (end % BF16_NR)
            _mm512_storeu_si512(dst + (long)(end / BF16_NR) * kc2 * BF16_NR + end % BF16_NR,
                                _mm512_setzero_si512());
    }
}

/* r[i] word c -> r[c] word i: a 16 x 16 transpose of 32-bit words. After
 * the 32- and 64-bit unpacks, 128-bit lane L of u[j + 4 g] holds word
 * 4 L + j of rows 4 g .. 4 g + 3; the lane shuffles gather the four. */
BF16_TARGET static inline void transpose16(__m512i r[16])
{
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int j = 0; j < 4; j++) {
        __m512i v01 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x44);
        __m512i v23 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xEE);
        __m512i w01 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x44);
        __m512i w23 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xEE);
        r[j] = _mm512_shuffle_i32x4(v01, w01, 0x88);
        r[4 + j] = _mm512_shuffle_i32x4(v01, w01, 0xDD);
        r[8 + j] = _mm512_shuffle_i32x4(v23, w23, 0x88);
        r[12 + j] = _mm512_shuffle_i32x4(v23, w23, 0xDD);
    }
}

/* Where op(B)[k, n] = src[n * ld + k] (trans_b): columns 0..w-1 of op(B)
 * (w <= NR) as one panel [kc2][NR], 16 columns by 16 pairs at a time:
 * each column's pairs are adjacent in its row of src, so rows are
 * converted whole and the words transposed in registers. */
BF16_TARGET static void pack_b_cols(int kc, int w, const float *src, long ld, uint32_t *dst)
{
    const int kc2 = (kc + 1) / 2;
    for (int q = 0; q < BF16_NR; q += 16) {
        for (int k2 = 0; k2 < kc2; k2 += 16) {
            int left = kc - 2 * k2; /* floats left in each row, >= 1 */
            __mmask16 m0 = (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1);
            __mmask16 m1 = (__mmask16)(left >= 32 ? 0xFFFFu : left > 16 ? (1u << (left - 16)) - 1 : 0);
            __m512i r[16];
            for (int i = 0; i < 16; i++) {
                r[i] = _mm512_setzero_si512();
                if (q + i < w) {
                    const float *s = src + (long)(q + i) * ld + 2 * k2;
                    __m512 lo = _mm512_maskz_loadu_ps(m0, s);
                    __m512 hi = m1 ? _mm512_maskz_loadu_ps(m1, s + 16) : _mm512_setzero_ps();
                    r[i] = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
                }
            }
            transpose16(r);
            int n = kc2 - k2 < 16 ? kc2 - k2 : 16;
            for (int c = 0; c < n; c++)
                _mm512_storeu_si512(dst + (long)(k2 + c) * BF16_NR + q, r[c]);
        }
    }
}

/* One row s[0..kc) as kc2 words in order (its pairs are adjacent). */
BF16_TARGET static void convert_row(int kc, const float *s, uint32_t *d)
{
    int k = 0;
    for (; k + 32 <= kc; k += 32, d += 16) {
        _mm512_storeu_si512(d, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + k + 16),
                                                            _mm512_loadu_ps(s + k)));
    }
    if (k < kc) {
        int left = kc - k, words = (left + 1) / 2;
        __mmask16 m0 = (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1);
        __mmask16 m1 = (__mmask16)(left > 16 ? (1u << (left - 16)) - 1 : 0);
        __m512 lo = _mm512_maskz_loadu_ps(m0, s + k);
        __m512 hi = m1 ? _mm512_maskz_loadu_ps(m1, s + k + 16) : _mm512_setzero_ps();
        _mm512_mask_storeu_epi32(d, (__mmask16)((1u << words) - 1),
                                 (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
}

/* ---- Micro-kernel ------------------------------------------------------------ */

/* A panel [kc2][MR], [MR][kc2], or [kc2][16] (pack_group16: each pair's
 * words one aligned 64-byte store) */
enum { BF16_A_KMAJOR, BF16_A_IMAJOR, BF16_A_KMAJOR16, BF16_A_PAIRS };

#define BF16_ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* The micro-kernels' epilogue (avx512_body's in gemm.c): t = alpha * acc,
 * then C = beta * C + t with separate multiplies and adds, masked to n
 * columns; beta == 0 does not read C. */
#define BF16_ROW(p, acc, mask)                                                     \
    {                                                                              \
        __m512 t = _mm512_mul_ps(va, acc);                                         \
        if (beta != 0)                                                             \
            t = _mm512_add_ps(_mm512_mul_ps(vb, _mm512_maskz_loadu_ps(mask, p)), t); \
        _mm512_mask_storeu_ps(p, mask, t);                                         \
    }
#define BF16_STORE(i)                                                              \
    if ((i) < ROWS) {                                                              \
        BF16_ROW(c + (i) * ldc, c##i##0, k0)                                       \
        if (NV == 2)                                                               \
            BF16_ROW(c + (i) * ldc + 16, c##i##1, k1)                              \
    }
#define BF16_EPILOGUE(alpha)                                                       \
    do {                                                                           \
        __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);             \
        __mmask16 k0 = (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1);             \
        __mmask16 k1 =                                                             \
            (__mmask16)(n >= 32 ? 0xFFFFu : n > 16 ? (1u << (n - 16)) - 1 : 0);    \
        BF16_ROWS12(BF16_STORE)                                                    \
    } while (0)

/* The micro-kernels' prologue: A's strides (si between rows, sk between
 * pairs) for the layout MODE, C's rows prefetched (read by the epilogue:
 * a short K, Dense's backward-weights with K = the batch, leaves the dot
 * products too little time to hide them), the 24 accumulators zeroed. */
#define BF16_PROLOGUE                                                              \
    const long si = MODE == BF16_A_IMAJOR ? kc2 : 1;                               \
    const long sk = MODE == BF16_A_IMAJOR ? 1 : MODE == BF16_A_KMAJOR ? BF16_MR : 16; \
    (void)si, (void)sk;                                                            \
    for (int i = 0; i < ROWS; i++) {                                               \
        __builtin_prefetch(c + i * ldc, 1);                                        \
        if (NV == 2)                                                               \
            __builtin_prefetch(c + i * ldc + 16, 1);                               \
    }                                                                              \
    BF16_ROWS12(BF16_DECL)
#define BF16_DECL(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
/* One pair step of row i: A's word (at a[i * si]) times the pairs b0, b1. */
#define BF16_STEP(i)                                                               \
    if ((i) < ROWS) {                                                              \
        __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[(i) * si]);               \
        c##i##0 = _mm512_dpbf16_ps(c##i##0, ai, b0);                               \
        if (NV == 2)                                                               \
            c##i##1 = _mm512_dpbf16_ps(c##i##1, ai, b1);                           \
    }

/* 12 x 32: 24 zmm accumulators; each pair step is 2 loads of b, 12
 * broadcasts of a word of A and 24 vdpbf16ps. The epilogue is avx512_body's
 * in gemm.c: t = alpha * acc, then C = beta * C + t. */
BF16_TARGET __attribute__((always_inline)) static inline void
bf16_body(const int MODE, const int ROWS, const int NV, int kc2, const uint32_t *a,
          const uint32_t *b, float *c, long ldc, float alpha, float beta, int n,
          const float *pf, long pf_ld)
{
    BF16_PROLOGUE;
    for (int k = 0; k < kc2; k++, a += sk, b += BF16_NR) {
        /* one cache line of each row of the next A panel every 8 pairs */
        if (pf && (k & 7) == 0)
            for (int i = 0; i < BF16_MR; i++)
                __builtin_prefetch(pf + i * pf_ld + 2 * k);
        __m512bh b0 = (__m512bh)_mm512_load_si512(b);
        __m512bh b1 = NV == 2 ? (__m512bh)_mm512_load_si512(b + 16) : b0;
        BF16_ROWS12(BF16_STEP)
    }
    BF16_EPILOGUE(alpha);
}

/* BODY(mode, rows, nv) for the packed layout amode, n columns and m rows */
#define BF16_DISPATCH_PACKED                                                       \
    if (amode == BF16_A_KMAJOR) {                                                  \
        if (n > 16)                                                                \
            GEMM_DISPATCH_ROWS12(BODY, BF16_A_KMAJOR, 2)                           \
        else                                                                       \
            GEMM_DISPATCH_ROWS12(BODY, BF16_A_KMAJOR, 1)                           \
    } else if (amode == BF16_A_KMAJOR16) {                                         \
        if (n > 16)                                                                \
            GEMM_DISPATCH_ROWS12(BODY, BF16_A_KMAJOR16, 2)                         \
        else                                                                       \
            GEMM_DISPATCH_ROWS12(BODY, BF16_A_KMAJOR16, 1)                         \
    } else {                                                                       \
        if (n > 16)                                                                \
            GEMM_DISPATCH_ROWS12(BODY, BF16_A_IMAJOR, 2)                           \
        else                                                                       \
            GEMM_DISPATCH_ROWS12(BODY, BF16_A_IMAJOR, 1)                           \
    }

/* pf, when not NULL, is the next panel's source (MR rows of row stride
 * pf_ld, 2 kc2 floats each), prefetched while this tile computes so that
 * streaming op(A) from memory overlaps the dot products. */
BF16_TARGET static void ukernel_bf16_12x32(int kc2, const uint32_t *a, int amode,
                                           const uint32_t *b, float *c, long ldc, float alpha,
                                           float beta, int m, int n, const float *pf, long pf_ld)
{
#define BODY(mode, rows, nv) \
    bf16_body(mode, rows, nv, kc2, a, b, c, ldc, alpha, beta, n, pf, pf_ld)
    BF16_DISPATCH_PACKED
#undef BODY
}

/* bf16_body on the first row panel of a B block where op(B) = B (a Dense
 * forward: the kernel, float32, in memory): each pair step reads its two
 * rows of B (kc rows from src, row stride ldb), converts and pairs them
 * as pack_pairs_block does, stores the words into the panel b for the
 * block's other row panels and multiplies. The same words, so the same
 * bits; but the conversion's loads now run under this panel's dot
 * products, where packing the block first left them waiting on memory.
 * Each step prefetches (into L2) the same rows of the next tile's 32
 * columns: the rows, 4 KB apart, are not followed by the hardware, and
 * prefetching 16 or 64 pairs down the tile's own columns was slower than
 * packing first. Dense 3136 -> 1024's forward, `bench_cnn dense 64 3136
 * 1024 T 20 mixed_bfloat16`, three or four alternations: 1 thread 165 ->
 * 196 GFLOP/s, 2 threads 310 -> 329. Rows kc..kc+1 of an odd kc and
 * columns n..31 are zero. */
BF16_TARGET __attribute__((always_inline)) static inline void
bf16_body_convert(const int MODE, const int ROWS, const int NV, int kc, const uint32_t *a,
                  const float *src, long ldb, uint32_t *b, float *c, long ldc, float alpha,
                  float beta, int n, const float *pf, long pf_ld)
{
    const int kc2 = (kc + 1) / 2;
    BF16_PROLOGUE;
    const __mmask16 m0 = (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1);
    const __mmask16 m1 = (__mmask16)(n >= 32 ? 0xFFFFu : n > 16 ? (1u << (n - 16)) - 1 : 0);
    for (int k = 0; k < kc2; k++, a += sk, b += BF16_NR) {
        if (pf && (k & 7) == 0)
            for (int i = 0; i < BF16_MR; i++)
                __builtin_prefetch(pf + i * pf_ld + 2 * k);
        const float *r0 = src + 2 * (long)k * ldb, *r1 = r0 + ldb;
        const __mmask16 two = 2 * k + 1 < kc ? 0xFFFFu : 0; /* row k + 1 exists */
        _mm_prefetch((const char *)(r0 + 32), _MM_HINT_T1);
        _mm_prefetch((const char *)(r1 + 32), _MM_HINT_T1);
        _mm_prefetch((const char *)(r0 + 48), _MM_HINT_T1);
        _mm_prefetch((const char *)(r1 + 48), _MM_HINT_T1);
        __m512i w0 = bf16_pairs(_mm512_maskz_loadu_ps(m0, r0), _mm512_maskz_loadu_ps(m0 & two, r1));
        __m512i w1 = NV == 2 ? bf16_pairs(_mm512_maskz_loadu_ps(m1, r0 + 16),
                                          _mm512_maskz_loadu_ps(m1 & two, r1 + 16))
                             : _mm512_setzero_si512();
        _mm512_store_si512(b, w0);
        _mm512_store_si512(b + 16, w1);
        __m512bh b0 = (__m512bh)w0, b1 = (__m512bh)w1;
        (void)b1;
        BF16_ROWS12(BF16_STEP)
    }
    BF16_EPILOGUE(alpha);
}

/* ukernel_bf16_12x32 converting B as it goes (bf16_body_convert); A as
 * pack_a leaves it (BF16_A_KMAJOR or BF16_A_IMAJOR). */
BF16_TARGET static void ukernel_bf16_convert(int kc, const uint32_t *a, int amode,
                                             const float *src, long ldb, uint32_t *b, float *c,
                                             long ldc, float alpha, float beta, int m, int n,
                                             const float *pf, long pf_ld)
{
#define BODY(mode, rows, nv) \
    bf16_body_convert(mode, rows, nv, kc, a, src, ldb, b, c, ldc, alpha, beta, n, pf, pf_ld)
    if (amode == BF16_A_KMAJOR) {
        if (n > 16)
            GEMM_DISPATCH_ROWS12(BODY, BF16_A_KMAJOR, 2)
        else
            GEMM_DISPATCH_ROWS12(BODY, BF16_A_KMAJOR, 1)
    } else if (n > 16) {
        GEMM_DISPATCH_ROWS12(BODY, BF16_A_IMAJOR, 2)
    } else {
        GEMM_DISPATCH_ROWS12(BODY, BF16_A_IMAJOR, 1)
    }
#undef BODY
}

/* ---- Spans of pairs (the gathers' _spans entry points) -------------------- */

/* bf16_body where A is zero outside the nps spans of pairs [ps[2s],
 * ps[2s + 1]) of the block (a convolution's taps on its zero padding): the
 * other pairs are skipped, their words of A never read (nor packed). A
 * twin, not a branch in bf16_body: the span loop there cost the full
 * blocks 2% (register allocation) on the 56x56 3x3 layer.
 *
 * Skipping a pair (0, 0) x (b, b') changes no bits but a zero's sign: acc
 * is never subnormal between steps (each one flushes it), so acc + 0 * b
 * is acc, except that an acc of -0 (a flushed negative subnormal sum)
 * becomes +0 where b or b' >= +0. Where a pair was skipped and an
 * accumulator ends at -0, the tile is summed again over every pair, the
 * skipped ones by vdpbf16ps with a zero word of A: the reference's bits
 * always, for one compare per accumulator (a -0 needs partial sums below
 * 2^-126, never seen in training). A -0 that a later nonzero product
 * replaces leaves no trace, the sums being otherwise equal. B must be
 * finite (0 * inf is NaN in the reference), as for cnn_gemm_gather_spans. */
/* Two adjacent bfloat16 values as one word (unaligned is fine on x86). */
static inline int bf16_word(const uint16_t *p)
{
    uint32_t w;
    memcpy(&w, p, sizeof w);
    return (int)w;
}

BF16_TARGET __attribute__((always_inline)) static inline void
bf16_body_spans(const int MODE, const int ROWS, const int NV, int kc2, const uint32_t *a,
                const uint32_t *b, float *c, long ldc, float beta, int n, const int *ps,
                int nps, const uint16_t *const *pa, const int *kop)
{
    /* BF16_A_PAIRS: pair k of row i is the word at pa[i] + kop[2 k] (two
     * adjacent bfloat16 values, k even in the low half) */
    BF16_PROLOGUE;
    const bool gaps = !(nps == 1 && ps[0] == 0 && ps[1] == kc2);
#define A_WORD(i)                                                                  \
    (MODE == BF16_A_PAIRS ? bf16_word(pa[i] + kop[2 * k]) : (int)ak[(i) * si])
#define STEP(i)                                                                    \
    if ((i) < ROWS) {                                                              \
        __m512bh ai = (__m512bh)_mm512_set1_epi32(A_WORD(i));                      \
        c##i##0 = _mm512_dpbf16_ps(c##i##0, ai, b0);                               \
        if (NV == 2)                                                               \
            c##i##1 = _mm512_dpbf16_ps(c##i##1, ai, b1);                           \
    }
    for (int s = 0; s < nps; s++) {
        const uint32_t *ak = a + ps[2 * s] * sk, *bk = b + (long)ps[2 * s] * BF16_NR;
        for (int k = ps[2 * s]; k < ps[2 * s + 1]; k++, ak += sk, bk += BF16_NR) {
            __m512bh b0 = (__m512bh)_mm512_load_si512(bk);
            __m512bh b1 = NV == 2 ? (__m512bh)_mm512_load_si512(bk + 16) : b0;
            BF16_ROWS12(STEP)
        }
    }
    __mmask16 nz = 0;
    if (gaps) {
        const __m512i negzero = _mm512_set1_epi32((int)0x80000000u);
#define NEGZERO(i)                                                                 \
    if ((i) < ROWS) {                                                              \
        nz |= _mm512_cmpeq_epi32_mask((__m512i)c##i##0, negzero);                  \
        if (NV == 2)                                                               \
            nz |= _mm512_cmpeq_epi32_mask((__m512i)c##i##1, negzero);              \
    }
        BF16_ROWS12(NEGZERO)
#undef NEGZERO
    }
    if (nz) {
        /* the reference's steps: every pair, zero words out of the spans */
#define ZERO(i) c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
        BF16_ROWS12(ZERO)
#undef ZERO
        const __m512bh az = (__m512bh)_mm512_setzero_si512();
        for (int k = 0, s = 0; k < kc2; k++) {
            while (s < nps && ps[2 * s + 1] <= k)
                s++;
            const uint32_t *ak = a + k * sk, *bk = b + (long)k * BF16_NR;
            __m512bh b0 = (__m512bh)_mm512_load_si512(bk);
            __m512bh b1 = NV == 2 ? (__m512bh)_mm512_load_si512(bk + 16) : b0;
            if (s < nps && ps[2 * s] <= k) {
                BF16_ROWS12(STEP)
            } else {
#define ZSTEP(i)                                                                   \
    if ((i) < ROWS) {                                                              \
        c##i##0 = _mm512_dpbf16_ps(c##i##0, az, b0);                               \
        if (NV == 2)                                                               \
            c##i##1 = _mm512_dpbf16_ps(c##i##1, az, b1);                           \
    }
                BF16_ROWS12(ZSTEP)
#undef ZSTEP
            }
        }
    }
#undef STEP
#undef A_WORD
    BF16_EPILOGUE(1.0f); /* 1 * acc is acc, bit for bit */
}

BF16_TARGET static void ukernel_bf16_spans(int kc2, const uint32_t *a, int amode,
                                           const uint32_t *b, float *c, long ldc, float beta,
                                           int m, int n, const int *ps, int nps)
{
#define BODY(mode, rows, nv)                                                       \
    bf16_body_spans(mode, rows, nv, kc2, a, b, c, ldc, beta, n, ps, nps, NULL, NULL)
    BF16_DISPATCH_PACKED
#undef BODY
}

/* ---- Driver ---------------------------------------------------------------- */

typedef struct {
    cnn_gemm_ctx *ctx;
    bool trans_a, trans_b, split_n;
    int M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    long lda, ldb, ldc;
} bf16_job;

/* Bp <- bf16(op(B)[pc:+kc, jc:+nc]) as micro-panels [kc2][NR], op(B)
 * transposed (B not transposed is converted by the first row panel's
 * micro-kernel, ukernel_bf16_convert). */
BF16_TARGET static void pack_b(const bf16_job *j, long pc, int kc, long jc, int nc, uint32_t *bp)
{
    int kc2 = (kc + 1) / 2;
    for (int jr = 0; jr < nc; jr += BF16_NR, bp += (long)kc2 * BF16_NR) {
        int w = nc - jr < BF16_NR ? nc - jr : BF16_NR;
        /* op(B)'s columns are B's rows: converted whole, transposed in registers */
        pack_b_cols(kc, w, j->B + (jc + jr) * j->ldb + pc, j->ldb, bp);
    }
}

/* Ap <- bf16(op(A)[i0:+m, pc:+kc]); returns its layout. Rows m..MR-1 are
 * never read (the micro-kernel runs m rows). */
BF16_TARGET static int pack_a(const bf16_job *j, long i0, int m, long pc, int kc, uint32_t *ap)
{
    if (j->trans_a) {
        pack_pairs_rows(kc, m, BF16_MR, j->A + pc * j->lda + i0, j->lda, ap,
                        2 * BF16_MR * sizeof(float));
        return BF16_A_KMAJOR;
    }
    int kc2 = (kc + 1) / 2;
    for (int i = 0; i < m; i++)
        convert_row(kc, j->A + (i0 + i) * j->lda + pc, ap + (long)i * kc2);
    return BF16_A_IMAJOR;
}

/* Columns per B block for N columns and K blocks of kstep: as many as fit
 * the B buffer (KC2 x NC words), so that a short K takes all of N at once
 * and C is walked in whole rows: Dense 3136 -> 1024's backward-weights (K =
 * the batch, 64; C, 12.8 MB, read and written once) went from 60% to 66%
 * of the bf16 peak, where 512 columns at a time jumped between its rows. */
static long bf16_nstep(long N, long kstep)
{
    long most = (long)BF16_KC2 * BF16_NC / ((kstep + 1) / 2) / BF16_NR * BF16_NR;
    long nblocks = (N + most - 1) / most;
    return ((N + nblocks - 1) / nblocks + BF16_NR - 1) / BF16_NR * BF16_NR;
}

/* A C of at most BF16_FEW_ROWS rows with op(B) transposed (Dense's
 * backward-data, dx = dy kernel^T, M the batch): each B block is converted
 * and transposed from memory (pack_b_cols) for few row panels, so the next
 * block's rows are prefetched while this one's panels compute, in column
 * blocks of BF16_FEW_ROWS_NC so that it fits L2 beside them. Dense 3136 ->
 * 1024 at batch 64 (bench_cnn dense ... mixed_bfloat16, four rounds
 * alternating): 143 -> 147 GFLOP/s on 1 thread, 277 -> 288 on 2; then
 * converting op(A) once per K block (bf16_block_few), 141 -> 145 on 1
 * thread (`bench_cnn dense 64 3136 1024 1 40 mixed_bfloat16`, medians of
 * five alternations). The forward (B not
 * transposed: whole rows read in order) gained nothing (161 -> 163 on 1
 * thread, 312 -> 306 on 2) and keeps its blocks. Column blocks do not
 * change the sums. */
enum { BF16_FEW_ROWS = 96, BF16_FEW_ROWS_NC = 128 };
/* (bf16_block_few keeps its B block and all of op(A)'s panels in the B
 * buffer, KC2 x NC words) */
_Static_assert(BF16_FEW_ROWS_NC + BF16_FEW_ROWS <= BF16_NC, "the few-rows blocks fit the B buffer");

/* bf16_block for BF16_FEW_ROWS: K blocks outermost, so that each converts
 * all of op(A)'s panels once (into the B buffer, after the block) for every
 * column block; each column block prefetches the next one's source. The
 * same K blocks in the same order for every element: the same bits. */
BF16_TARGET static void bf16_block_few(const bf16_job *j, long m0, long m1, long n0, long n1,
                                       uint32_t *bp)
{
    const long kstep = cnn_gemm_bf16_kstep(j->K), nstep = BF16_FEW_ROWS_NC;
    const long panels = (m1 - m0 + BF16_MR - 1) / BF16_MR;
    uint32_t *ap = bp + (long)BF16_KC2 * BF16_FEW_ROWS_NC;
    for (long pc = 0; pc < j->K; pc += kstep) {
        int kc = (int)(j->K - pc < kstep ? j->K - pc : kstep), kc2 = (kc + 1) / 2;
        float beta = pc == 0 ? j->beta : 1.0f; /* later K blocks accumulate */
        int amode = 0;
        for (long ir = m0; ir < m1; ir += BF16_MR)
            amode = pack_a(j, ir, (int)(m1 - ir < BF16_MR ? m1 - ir : BF16_MR), pc, kc,
                           ap + (ir - m0) / BF16_MR * (long)BF16_MR * kc2);
        for (long jc = n0; jc < n1; jc += nstep) {
            int nc = (int)(n1 - jc < nstep ? n1 - jc : nstep);
            pack_b(j, pc, kc, jc, nc, bp);
            /* the next block: the next columns, else the next K block's first */
            long next_jc = jc + nstep, next_pc = pc;
            if (next_jc >= n1) {
                next_jc = n0;
                next_pc = pc + kstep;
            }
            int next_kc = (int)(j->K - next_pc < kstep ? j->K - next_pc : kstep);
            int next_nc = (int)(n1 - next_jc < nstep ? n1 - next_jc : nstep);
            for (long ir = m0; ir < m1; ir += BF16_MR) {
                if (next_pc < j->K)
                    cnn_gemm_prefetch_b(j->B, j->ldb, j->trans_b, next_pc, next_kc, next_jc,
                                        next_nc, (ir - m0) / BF16_MR, panels);
                int m = (int)(m1 - ir < BF16_MR ? m1 - ir : BF16_MR);
                const uint32_t *a = ap + (ir - m0) / BF16_MR * (long)BF16_MR * kc2;
                for (int jr = 0; jr < nc; jr += BF16_NR) {
                    int n = nc - jr < BF16_NR ? nc - jr : BF16_NR;
                    ukernel_bf16_12x32(kc2, a, amode, bp + (long)jr * kc2,
                                       j->C + ir * j->ldc + jc + jr, j->ldc, j->alpha, beta, m, n,
                                       NULL, j->lda);
                }
            }
        }
    }
}

BF16_TARGET static void bf16_block(const bf16_job *j, long m0, long m1, long n0, long n1,
                                   uint32_t *ap, uint32_t *bp)
{
    if (j->trans_b && m1 - m0 <= BF16_FEW_ROWS) {
        bf16_block_few(j, m0, m1, n0, n1, bp);
        return;
    }
    const long kstep = cnn_gemm_bf16_kstep(j->K);
    long nstep = bf16_nstep(n1 - n0, kstep);
    for (long jc = n0; jc < n1; jc += nstep) {
        int nc = (int)(n1 - jc < nstep ? n1 - jc : nstep);
        for (long pc = 0; pc < j->K; pc += kstep) {
            int kc = (int)(j->K - pc < kstep ? j->K - pc : kstep), kc2 = (kc + 1) / 2;
            float beta = pc == 0 ? j->beta : 1.0f; /* later K blocks accumulate */
            /* B not transposed: the first row panel converts it (ukernel_bf16_convert) */
            if (j->trans_b)
                pack_b(j, pc, kc, jc, nc, bp);
            for (long ir = m0; ir < m1; ir += BF16_MR) {
                int m = (int)(m1 - ir < BF16_MR ? m1 - ir : BF16_MR);
                int amode = pack_a(j, ir, m, pc, kc, ap);
                /* op(A)'s rows are A's rows: the first tile prefetches the next panel */
                const float *pf = NULL;
                if (!j->trans_a && ir + 2 * BF16_MR <= m1)
                    pf = j->A + (ir + BF16_MR) * j->lda + pc;
                for (int jr = 0; jr < nc; jr += BF16_NR, pf = NULL) {
                    int n = nc - jr < BF16_NR ? nc - jr : BF16_NR;
                    float *c = j->C + ir * j->ldc + jc + jr;
                    if (!j->trans_b && ir == m0)
                        ukernel_bf16_convert(kc, ap, amode, j->B + pc * j->ldb + jc + jr, j->ldb,
                                             bp + (long)jr * kc2, c, j->ldc, j->alpha, beta, m,
                                             n, pf, j->lda);
                    else
                        ukernel_bf16_12x32(kc2, ap, amode, bp + (long)jr * kc2, c, j->ldc,
                                           j->alpha, beta, m, n, pf, j->lda);
                }
            }
        }
    }
}

/* ---- Pre-packed B and gathered A (Conv2D's implicit GEMM) ------------------
 * op(B) is packed once for many products (cnn_gemm_bf16_pack_b): block
 * (jc, pc) of bf16_block's column and K blocks at word jc * K2 + pc / 2 *
 * (its width rounded up to NR), K2 = ceil(K / 2) (kstep is even, so every
 * block but the last has kstep / 2 pairs). A is read as A(i, k) =
 * rows[i][koff[k]] (koff NULL: k) and packed per panel and K block:
 *   - where the panel's rows are adjacent floats (rows[i] = rows[0] + i:
 *     Conv2D's backward-weights, rows = input channels of one tap), as
 *     [kc2][MR], each word two k of one row from two loads of m floats;
 *   - else as [MR][kc2], each row's runs of consecutive koff (a tap's
 *     channels) converted 32 floats at a time.
 * The same words as pack_a on op(A) written out, the same K blocks, the
 * same micro-kernel: the same bits as cnn_gemm_bf16. */


/* A run of consecutive koff within a K block: k values [k, k + len) at
 * offset off (in floats) from each row's start. */
typedef struct {
    int k, len;
    long off;
} bf16_run;

/* n floats, from s, as bfloat16 at d[0..n) (d need not be word aligned). */
BF16_TARGET static inline void convert_bf16(const float *s, uint16_t *d, long n)
{
    for (long k = 0; k < n; k += 32) {
        long left = n - k;
        __mmask16 m0 = (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1);
        __mmask16 m1 =
            (__mmask16)(left >= 32 ? 0xFFFFu : left > 16 ? (1u << (left - 16)) - 1 : 0);
        __mmask32 st = left >= 32 ? 0xFFFFFFFFu : (1u << left) - 1;
        __m512 lo = _mm512_maskz_loadu_ps(m0, s + k);
        __m512 hi = m1 ? _mm512_maskz_loadu_ps(m1, s + k + 16) : _mm512_setzero_ps();
        _mm512_mask_storeu_epi16(d + k, st, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
}

/* The K spans [spans[2s], spans[2s + 1]) (sorted, disjoint) within the
 * block [pc, pc + kc), as the block's spans of pairs [ps[2s], ps[2s + 1]):
 * ends rounded outward to whole pairs (a pair with one zero term is still
 * summed), spans that then meet merged. Returns how many: at most
 * (kc2 + 1) / 2, as two of them are a skipped pair apart. */
static int pair_spans(const int *spans, int nspans, int pc, int kc, int *ps)
{
    int n = 0;
    for (int s = 0; s < nspans; s++) {
        int a = spans[2 * s] > pc ? spans[2 * s] : pc;
        int b = spans[2 * s + 1] < pc + kc ? spans[2 * s + 1] : pc + kc;
        if (a >= b)
            continue;
        int p0 = (a - pc) / 2, p1 = (b - pc + 1) / 2;
        if (n > 0 && p0 <= ps[2 * n - 1])
            ps[2 * n - 1] = p1 > ps[2 * n - 1] ? p1 : ps[2 * n - 1];
        else
            ps[2 * n] = p0, ps[2 * n + 1] = p1, n++;
    }
    return n;
}

/* The runs of koff[pc .. pc + kc) into runs; returns their count. A run
 * ends where koff[k] != koff[k - 1] + 1, found 16 k at a time: Conv2D's
 * forward asks once per 12-pixel panel (pixel_spans), where the scalar
 * walk over K took a tenth of the time of the panel's products. */
BF16_TARGET static int find_runs(const int *koff, int pc, int kc, bf16_run *runs)
{
    const int *ko = koff + pc;
    const __m512i one = _mm512_set1_epi32(1);
    int nruns = 0, start = 0;
    for (int k = 1; k < kc; k += 16) {
        int left = kc - k;
        __mmask16 m = (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1);
        __m512i cur = _mm512_maskz_loadu_epi32(m, ko + k);
        __m512i prev = _mm512_add_epi32(_mm512_maskz_loadu_epi32(m, ko + k - 1), one);
        for (unsigned ends = _mm512_mask_cmpneq_epi32_mask(m, cur, prev); ends;
             ends &= ends - 1) {
            int e = k + __builtin_ctz(ends);
            runs[nruns++] = (bf16_run){start, e - start, ko[start]};
            start = e;
        }
    }
    runs[nruns++] = (bf16_run){start, kc - start, ko[start]};
    return nruns;
}

/* The panel of rows r[0..m) over k = pc .. pc + kc - 1 into ap, the
 * pairs in the nps spans ps only (pair_spans); returns its layout. The
 * runs of the K block (koff not NULL) are found on the first panel that
 * needs them (*nruns < 0 until then). */
BF16_TARGET static int pack_a_gather(const float *const *r, int m, const int *koff, int pc,
                                     int kc, const int *ps, int nps, bf16_run *runs, int *nruns,
                                     uint32_t *ap)
{
    const int kc2 = (kc + 1) / 2;
    bool adjacent = koff != NULL;
    for (int i = 1; i < m && adjacent; i++)
        adjacent = r[i] == r[0] + i;
    if (adjacent) {
        const __mmask16 lm = (__mmask16)((1u << m) - 1);
        const int *ko = koff + pc;
        for (int s = 0; s < nps; s++)
            for (int k = 2 * ps[2 * s]; k < 2 * ps[2 * s + 1]; k += 2) {
                __m512 v0 = _mm512_maskz_loadu_ps(lm, r[0] + ko[k]);
                __m512 v1 = k + 1 < kc ? _mm512_maskz_loadu_ps(lm, r[0] + ko[k + 1])
                                       : _mm512_setzero_ps();
                __m512i pairs = bf16_pairs(v0, v1);
                _mm512_mask_storeu_epi32(ap + (long)(k / 2) * BF16_MR, lm, pairs);
            }
        return BF16_A_KMAJOR;
    }
    if (koff && *nruns < 0)
        *nruns = find_runs(koff, pc, kc, runs);
    for (int i = 0; i < m; i++) {
        uint16_t *d = (uint16_t *)(ap + (long)i * kc2);
        if (!koff) {
            convert_row(kc, r[i] + pc, ap + (long)i * kc2);
            continue;
        }
        /* each run's part within each span (both sorted by k) */
        for (int q = 0, s = 0; q < *nruns && s < nps;) {
            int k0 = runs[q].k, k1 = k0 + runs[q].len;
            int s0 = 2 * ps[2 * s], s1 = 2 * ps[2 * s + 1] < kc ? 2 * ps[2 * s + 1] : kc;
            int lo = k0 > s0 ? k0 : s0, hi = k1 < s1 ? k1 : s1;
            if (lo < hi)
                convert_bf16(r[i] + runs[q].off + (lo - k0), d + lo, hi - lo);
            if (k1 <= s1)
                q++;
            else
                s++;
        }
        if (kc & 1)
            d[kc] = 0; /* the missing k + 1 of the last pair */
    }
    return BF16_A_IMAJOR;
}

/* One packed A panel (m rows, K block at pc of kc2 pairs, layout amode)
 * times every column of op(B) packed whole by cnn_gemm_bf16_pack_b (block
 * (jc, pc) at word jc * K2 + pc / 2 * its padded width), into C's m rows,
 * over the nps spans of pairs ps of A only (ukernel_bf16_spans). A block
 * with no span still runs the epilogue, C = beta * C + 0: the reference's
 * bits (-0 + +0 is +0), and beta applied where it applies. */
BF16_TARGET static void panel_by_packed_b(int kc2, const uint32_t *pa, int amode, int m,
                                          const uint32_t *bpacked, long K2, int pc, int N,
                                          long nstep, float *C, int ldc, float beta,
                                          const int *ps, int nps)
{
    if (nps == 1 && ps[0] == 0 && ps[1] == kc2)
        ps = NULL; /* every pair: the plain kernel */
    for (long jc = 0; jc < N; jc += nstep) {
        int nc = (int)(N - jc < nstep ? N - jc : nstep);
        long ncpad = (nc + BF16_NR - 1) / BF16_NR * BF16_NR;
        const uint32_t *bp = bpacked + jc * K2 + (long)(pc / 2) * ncpad;
        for (int jr = 0; jr < nc; jr += BF16_NR) {
            int n = nc - jr < BF16_NR ? nc - jr : BF16_NR;
            if (ps)
                ukernel_bf16_spans(kc2, pa, amode, bp + (long)jr * kc2, C + jc + jr, ldc, beta,
                                   m, n, ps, nps);
            else
                ukernel_bf16_12x32(kc2, pa, amode, bp + (long)jr * kc2, C + jc + jr, ldc, 1.0f,
                                   beta, m, n, NULL, 0);
        }
    }
}

BF16_TARGET static void bf16_gather_run(cnn_gemm_ctx *ctx, int ith, int M, int N, int K,
                                        const float *const *rows, const float *A, long lda,
                                        const int *koff, const int *spans, int nspans,
                                        const uint32_t *bpacked, float beta, float *C, int ldc)
{
    const int kstep = cnn_gemm_bf16_kstep(K);
    const long nstep = bf16_nstep(N, kstep), K2 = (K + 1) / 2;
    const int panels = (M + BF16_MR - 1) / BF16_MR;
    uint32_t *ap = (uint32_t *)cnn_gemm_ctx_buffer(ctx, ith);
    bf16_run runs[BF16_KC];
    int ps[BF16_KC2 + 2];
    const float *r[BF16_MR];
    for (int pc = 0; pc < K; pc += kstep) {
        int kc = K - pc < kstep ? K - pc : kstep, kc2 = (kc + 1) / 2, nruns = -1;
        int nps = pair_spans(spans, nspans, pc, kc, ps);
        /* later K blocks accumulate; a block with no span still runs the
         * epilogue (C = b * C + 0), whose bits the reference has */
        float b = pc == 0 ? beta : 1.0f;
        /* panels of (nearly) equal rows: a caller giving one tap's
         * channels at a time (backward-weights) gets no row-starved one */
        for (int p = 0; p < panels; p++) {
            int i0 = (int)((long)M * p / panels), m = (int)((long)M * (p + 1) / panels) - i0;
            for (int i = 0; i < m; i++)
                r[i] = rows ? rows[i0 + i] : A + (long)(i0 + i) * lda;
            int amode = pack_a_gather(r, m, koff, pc, kc, ps, nps, runs, &nruns, ap);
            panel_by_packed_b(kc2, ap, amode, m, bpacked, K2, pc, N, nstep,
                              C + (long)i0 * ldc, ldc, b, ps, nps);
        }
    }
}

/* ---- Adjacent rows from bfloat16 (Conv2D's backward-weights) ---------------
 * A(i, k) = a[i + koff[k]], bfloat16 bits (the input band converted once),
 * M adjacent rows (one tap's channels): a pair of k is two loads of 32
 * rows and two word interleaves, stored into every panel they cover; the
 * float gather converted and interleaved each 12-row panel's floats. */
enum { BF16_GROUP_PANELS = 32 }; /* panels packed at once, within the buffer (gemm_bf16_buffer) */

/* Panel p of the group (rows i0[p] .. i0[p + 1]) at ap + p * stride words,
 * [kc2][16] (BF16_A_KMAJOR16): each pair's words one aligned store, where
 * [kc2][MR]'s 48-byte rows split three stores in four across cache lines
 * (the packing took a fifth of the large layer's backward-weights). */
static long group_stride(int kc2) { return (long)kc2 * 16; }

/* vpermt2w indices interleaving the 16-bit words of two vectors x0, x1:
 * word j of lo = (x0[j], x1[j]), of hi = (x0[16 + j], x1[16 + j]) */
static const uint16_t lo_idx[32] = {0,  32, 1,  33, 2,  34, 3,  35, 4,  36, 5,
                                    37, 6,  38, 7,  39, 8,  40, 9,  41, 10, 42,
                                    11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
static const uint16_t hi_idx[32] = {16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21,
                                    53, 22, 54, 23, 55, 24, 56, 25, 57, 26, 58,
                                    27, 59, 28, 60, 29, 61, 30, 62, 31, 63};

/* The group's panels over the pairs in the nps spans ps (pair_spans) of
 * the K block at pc; the other pairs' words are left as they were. */
BF16_TARGET static void pack_group16(const uint16_t *a, const int *koff, int pc, int kc,
                                     const int *ps, int nps, const int *i0, int np, uint32_t *ap)
{
    const __m512i il = _mm512_loadu_si512(lo_idx), ih = _mm512_loadu_si512(hi_idx);
    const int r0 = i0[0], rows = i0[np] - r0, vecs = (rows + 15) / 16;
    const long stride = group_stride((kc + 1) / 2);
    /* panel p's 16 words from vectors first[p] and first[p] + 1, shifted */
    int first[BF16_GROUP_PANELS];
    __m512i sel[BF16_GROUP_PANELS];
    for (int p = 0; p < np; p++) {
        int off = i0[p] - r0, sh = off % 16;
        uint32_t idx[16];
        for (int q = 0; q < 16; q++)
            idx[q] = (uint32_t)(sh + q); /* 16.. : the next vector's */
        first[p] = off / 16;
        sel[p] = _mm512_loadu_si512(idx);
    }
    __m512i v[2 * BF16_GROUP_PANELS * BF16_MR / 16 + 2];
    const int *ko = koff + pc;
    for (int s = 0; s < nps; s++) {
        for (int k2 = ps[2 * s], k = 2 * k2; k2 < ps[2 * s + 1]; k += 2, k2++) {
            const uint16_t *s0 = a + ko[k] + r0, *s1 = k + 1 < kc ? a + ko[k + 1] + r0 : NULL;
            for (int c = 0; c < vecs; c += 2) {
                int left = rows - 16 * c;
                __mmask32 lm = left >= 32 ? 0xFFFFFFFFu : (1u << left) - 1;
                __m512i x0 = _mm512_maskz_loadu_epi16(lm, s0 + 16 * c);
                __m512i x1 =
                    s1 ? _mm512_maskz_loadu_epi16(lm, s1 + 16 * c) : _mm512_setzero_si512();
                v[c] = _mm512_permutex2var_epi16(x0, il, x1);
                v[c + 1] = _mm512_permutex2var_epi16(x0, ih, x1);
            }
            v[vecs + (vecs & 1)] = _mm512_setzero_si512();
            for (int p = 0; p < np; p++)
                _mm512_store_si512(
                    ap + p * stride + (long)k2 * 16,
                    _mm512_permutex2var_epi32(v[first[p]], sel[p], v[first[p] + 1]));
        }
    }
}

BF16_TARGET static void bf16_gather16_run(cnn_gemm_ctx *ctx, int ith, int M, int N, int K,
                                          const uint16_t *a, const int *koff, const int *spans,
                                          int nspans, const uint32_t *bpacked, float beta,
                                          float *C, int ldc)
{
    const int kstep = cnn_gemm_bf16_kstep(K);
    const long nstep = bf16_nstep(N, kstep), K2 = (K + 1) / 2;
    const int panels = (M + BF16_MR - 1) / BF16_MR;
    uint32_t *ap = (uint32_t *)cnn_gemm_ctx_buffer(ctx, ith);
    int i0[BF16_GROUP_PANELS + 1], ps[BF16_KC2 + 2];
    for (int pc = 0; pc < K; pc += kstep) {
        int kc = K - pc < kstep ? K - pc : kstep, kc2 = (kc + 1) / 2;
        int nps = pair_spans(spans, nspans, pc, kc, ps);
        float b = pc == 0 ? beta : 1.0f;
        for (int g0 = 0; g0 < panels; g0 += BF16_GROUP_PANELS) {
            int np = panels - g0 < BF16_GROUP_PANELS ? panels - g0 : BF16_GROUP_PANELS;
            for (int p = 0; p <= np; p++)
                i0[p] = (int)((long)M * (g0 + p) / panels);
            pack_group16(a, koff, pc, kc, ps, nps, i0, np, ap);
            for (int p = 0; p < np; p++) {
                int m = i0[p + 1] - i0[p];
                panel_by_packed_b(kc2, ap + p * group_stride(kc2), BF16_A_KMAJOR16, m, bpacked,
                                  K2, pc, N, nstep, C + (long)i0[p] * ldc, ldc, b, ps, nps);
            }
        }
    }
}

/* dst[i] = x0[i] | x1[i] << 16 (x1 NULL: zeros), 32 at a time. */
BF16_TARGET static void interleave_avx512(const uint16_t *x0, const uint16_t *x1, uint32_t *dst,
                                          long n)
{
    const __m512i il = _mm512_loadu_si512(lo_idx), ih = _mm512_loadu_si512(hi_idx);
    for (long i = 0; i < n; i += 32) {
        long left = n - i;
        __mmask32 lm = left >= 32 ? 0xFFFFFFFFu : (1u << left) - 1;
        __mmask16 m0 = (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1);
        __mmask16 m1 = (__mmask16)(left >= 32 ? 0xFFFFu : left > 16 ? (1u << (left - 16)) - 1 : 0);
        __m512i a = _mm512_maskz_loadu_epi16(lm, x0 + i);
        __m512i b = x1 ? _mm512_maskz_loadu_epi16(lm, x1 + i) : _mm512_setzero_si512();
        _mm512_mask_storeu_epi32(dst + i, m0, _mm512_permutex2var_epi16(a, il, b));
        if (m1)
            _mm512_mask_storeu_epi32(dst + i + 16, m1, _mm512_permutex2var_epi16(a, ih, b));
    }
}

/* ---- Pairs gathered from bfloat16 (Conv2D's implicit GEMM) ------------------
 * A(i, k) = rows[i][koff[k]], bfloat16 bits (the padded input band
 * converted once), where every pair (k, k + 1), k even, is adjacent
 * (koff[k + 1] = koff[k] + 1: a tap's channels, C even): the micro-kernel
 * broadcasts each pair's word straight from the band, nothing is packed.
 * The same words as pack_a_gather converts, the same K blocks and
 * vdpbf16ps steps: the same bits as cnn_gemm_bf16_gather_spans. */
BF16_TARGET static void ukernel_bf16_pairs(int kc2, const uint16_t *const *pa, const int *kop,
                                           const uint32_t *b, float *c, long ldc, float beta,
                                           int m, int n, const int *ps, int nps)
{
#define BODY(mode, rows, nv)                                                       \
    bf16_body_spans(mode, rows, nv, kc2, NULL, b, c, ldc, beta, n, ps, nps, pa, kop)
    if (n > 16)
        GEMM_DISPATCH_ROWS12(BODY, BF16_A_PAIRS, 2)
    else
        GEMM_DISPATCH_ROWS12(BODY, BF16_A_PAIRS, 1)
#undef BODY
}

BF16_TARGET static void bf16_pairs_run(int M, int N, int K, const uint16_t *const *rows,
                                       const int *koff, const int *spans, int nspans,
                                       const uint32_t *bpacked, float beta, float *C, int ldc)
{
    const int kstep = cnn_gemm_bf16_kstep(K);
    const long nstep = bf16_nstep(N, kstep), K2 = (K + 1) / 2;
    const int panels = (M + CNN_GEMM_GATHER_ROWS - 1) / CNN_GEMM_GATHER_ROWS;
    int ps[BF16_KC2 + 2];
    for (int pc = 0; pc < K; pc += kstep) {
        int kc = K - pc < kstep ? K - pc : kstep, kc2 = (kc + 1) / 2;
        int nps = pair_spans(spans, nspans, pc, kc, ps);
        float b = pc == 0 ? beta : 1.0f;
        for (int p = 0; p < panels; p++) {
            int i0 = (int)((long)M * p / panels), m = (int)((long)M * (p + 1) / panels) - i0;
            for (long jc = 0; jc < N; jc += nstep) {
                int nc = (int)(N - jc < nstep ? N - jc : nstep);
                long ncpad = (nc + BF16_NR - 1) / BF16_NR * BF16_NR;
                const uint32_t *bp = bpacked + jc * K2 + (long)(pc / 2) * ncpad;
                for (int jr = 0; jr < nc; jr += BF16_NR) {
                    int n = nc - jr < BF16_NR ? nc - jr : BF16_NR;
                    ukernel_bf16_pairs(kc2, rows + i0, koff + pc, bp + (long)jr * kc2,
                                       C + (long)i0 * ldc + jc + jr, ldc, b, m, n, ps, nps);
                }
            }
        }
    }
}

static void bf16_worker(void *arg, int ith, int nth)
{
    const bf16_job *j = arg;
    long m0 = 0, m1 = j->M, n0 = 0, n1 = j->N, b, e;
    if (j->split_n) {
        cnn_split_range((j->N + BF16_NR - 1) / BF16_NR, ith, nth, &b, &e);
        n0 = b * BF16_NR;
        n1 = e * BF16_NR < j->N ? e * BF16_NR : j->N;
    } else {
        cnn_split_range((j->M + BF16_MR - 1) / BF16_MR, ith, nth, &b, &e);
        m0 = b * BF16_MR;
        m1 = e * BF16_MR < j->M ? e * BF16_MR : j->M;
    }
    if (m0 >= m1 || n0 >= n1)
        return;
    uint32_t *ap = (uint32_t *)cnn_gemm_ctx_buffer(j->ctx, ith);
    uint32_t *bp = ap + (size_t)BF16_MR * BF16_KC2;
    bf16_block(j, m0, m1, n0, n1, ap, bp);
}

/* Rows or columns, whichever leaves the busiest thread the least work
 * (multiply-adds plus packing, as gemm.c weighs them). */
static bool bf16_split_by_columns(long M, long N, long K, int nth)
{
    const double pack_cost = 16;
    long tiles_m = (M + BF16_MR - 1) / BF16_MR, tiles_n = (N + BF16_NR - 1) / BF16_NR;
    long rows = (tiles_m + nth - 1) / nth * BF16_MR, cols = (tiles_n + nth - 1) / nth * BF16_NR;
    double r = (double)(rows < M ? rows : M), c = (double)(cols < N ? cols : N);
    double m = (double)M, n = (double)N, k = (double)K;
    return m * c * k + pack_cost * k * (m + c) < r * n * k + pack_cost * k * (n + r);
}
#endif /* BF16_X86 */

void cnn_gemm_bf16(cnn_gemm_ctx *ctx, bool trans_a, bool trans_b, int M, int N, int K,
                   float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc)
{
    if (cnn_gemm_ctx_is_naive(ctx)) {
        cnn_gemm_bf16_reference(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#ifdef BF16_X86
    if (cnn_gemm_ctx_has_bf16(ctx)) {
        if (bf16_trivial(M, N, K, alpha, beta, C, ldc))
            return;
        bf16_job job = {.ctx = ctx, .trans_a = trans_a, .trans_b = trans_b, .M = M, .N = N,
                        .K = K, .alpha = alpha, .beta = beta, .A = A, .B = B, .C = C,
                        .lda = lda, .ldb = ldb, .ldc = ldc};
        cnn_pool *pool = cnn_gemm_ctx_pool(ctx);
        int threads = cnn_pool_threads(pool);
        if (threads == 1 || (double)M * N * K < 32768) {
            bf16_worker(&job, 0, 1);
            return;
        }
        job.split_n = bf16_split_by_columns(M, N, K, threads);
        cnn_pool_run(pool, bf16_worker, &job);
        return;
    }
#endif
    cnn_gemm(ctx, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

size_t cnn_gemm_bf16_packed_b_floats(int K, int N)
{
    return (size_t)((K + 1) / 2) * (size_t)((N + BF16_NR - 1) / BF16_NR * BF16_NR);
}

void cnn_gemm_bf16_pack_b(const cnn_gemm_ctx *ctx, int N, int K, const float *B, int ldb,
                          float *dst)
{
#ifdef BF16_X86
    if (!cnn_gemm_ctx_has_bf16(ctx) || cnn_gemm_ctx_is_naive(ctx) || N <= 0 || K <= 0)
        return;
    const long kstep = cnn_gemm_bf16_kstep(K), nstep = bf16_nstep(N, kstep), K2 = (K + 1) / 2;
    for (long jc = 0; jc < N; jc += nstep) {
        int nc = (int)(N - jc < nstep ? N - jc : nstep);
        long ncpad = (nc + BF16_NR - 1) / BF16_NR * BF16_NR;
        for (long pc = 0; pc < K; pc += kstep) {
            int kc = (int)(K - pc < kstep ? K - pc : kstep);
            pack_pairs_block(kc, nc, B + pc * ldb + jc, ldb,
                             (uint32_t *)dst + jc * K2 + pc / 2 * ncpad);
        }
    }
#else
    (void)ctx, (void)N, (void)K, (void)B, (void)ldb, (void)dst;
#endif
}

bool cnn_gemm_bf16_gather_supported(const cnn_gemm_ctx *ctx)
{
    return cnn_gemm_ctx_has_bf16(ctx) && !cnn_gemm_ctx_is_naive(ctx);
}

void cnn_gemm_bf16_gather(cnn_gemm_ctx *ctx, int ith, int M, int N, int K,
                          const float *const *rows, const int *koff, const float *bpacked,
                          float beta, float *C, int ldc)
{
    const int all[2] = {0, K};
    cnn_gemm_bf16_gather_spans(ctx, ith, M, N, K, rows, koff, all, 1, bpacked, beta, C, ldc);
}

void cnn_gemm_bf16_gather_spans(cnn_gemm_ctx *ctx, int ith, int M, int N, int K,
                                const float *const *rows, const int *koff, const int *spans,
                                int nspans, const float *bpacked, float beta, float *C, int ldc)
{
#ifdef BF16_X86
    if (M > 0 && N > 0 && K > 0)
        bf16_gather_run(ctx, ith, M, N, K, rows, NULL, 0, koff, spans, nspans,
                        (const uint32_t *)bpacked, beta, C, ldc);
#else
    (void)ctx, (void)ith, (void)M, (void)N, (void)K, (void)rows, (void)koff, (void)bpacked;
    (void)beta, (void)C, (void)ldc, (void)spans, (void)nspans;
#endif
}

void cnn_gemm_bf16_serial_packed_b(cnn_gemm_ctx *ctx, int ith, int M, int N, int K,
                                   const float *A, int lda, const float *bpacked, float beta,
                                   float *C, int ldc)
{
#ifdef BF16_X86
    const int all[2] = {0, K};
    if (M > 0 && N > 0 && K > 0)
        bf16_gather_run(ctx, ith, M, N, K, NULL, A, lda, NULL, all, 1, (const uint32_t *)bpacked,
                        beta, C, ldc);
#else
    (void)ctx, (void)ith, (void)M, (void)N, (void)K, (void)A, (void)lda, (void)bpacked;
    (void)beta, (void)C, (void)ldc;
#endif
}

void cnn_bf16_convert(const float *src, uint16_t *dst, long n)
{
#ifdef BF16_X86
    /* CPUID, cached: it traps to the hypervisor in a VM (microseconds) */
    static int has = -1;
    int h = __atomic_load_n(&has, __ATOMIC_RELAXED);
    if (h < 0)
        __atomic_store_n(&has, h = cnn_gemm_bf16_supported(), __ATOMIC_RELAXED);
    if (h) {
        convert_bf16(src, dst, n);
        return;
    }
#endif
    for (long i = 0; i < n; i++)
        dst[i] = cnn_bf16_from_float(src[i]);
}

void cnn_gemm_bf16_gather16(cnn_gemm_ctx *ctx, int ith, int M, int N, int K, const uint16_t *a,
                            const int *koff, const float *bpacked, float beta, float *C, int ldc)
{
    const int all[2] = {0, K};
    cnn_gemm_bf16_gather16_spans(ctx, ith, M, N, K, a, koff, all, 1, bpacked, beta, C, ldc);
}

void cnn_gemm_bf16_gather16_spans(cnn_gemm_ctx *ctx, int ith, int M, int N, int K,
                                  const uint16_t *a, const int *koff, const int *spans,
                                  int nspans, const float *bpacked, float beta, float *C, int ldc)
{
#ifdef BF16_X86
    if (M > 0 && N > 0 && K > 0)
        bf16_gather16_run(ctx, ith, M, N, K, a, koff, spans, nspans, (const uint32_t *)bpacked,
                          beta, C, ldc);
#else
    (void)ctx, (void)ith, (void)M, (void)N, (void)K, (void)a, (void)koff, (void)bpacked;
    (void)beta, (void)C, (void)ldc, (void)spans, (void)nspans;
#endif
}

void cnn_gemm_bf16_gather_pairs_spans(cnn_gemm_ctx *ctx, int M, int N, int K,
                                      const uint16_t *const *rows, const int *koff,
                                      const int *spans, int nspans, const float *bpacked,
                                      float beta, float *C, int ldc)
{
#ifdef BF16_X86
    (void)ctx;
    if (M > 0 && N > 0 && K > 0)
        bf16_pairs_run(M, N, K, rows, koff, spans, nspans, (const uint32_t *)bpacked, beta, C,
                       ldc);
#else
    (void)ctx, (void)M, (void)N, (void)K, (void)rows, (void)koff, (void)bpacked;
    (void)beta, (void)C, (void)ldc, (void)spans, (void)nspans;
#endif
}

void cnn_bf16_interleave(const uint16_t *x0, const uint16_t *x1, uint32_t *dst, long n)
{
#ifdef BF16_X86
    static int has = -1;
    int h = __atomic_load_n(&has, __ATOMIC_RELAXED);
    if (h < 0)
        __atomic_store_n(&has, h = cnn_gemm_bf16_supported(), __ATOMIC_RELAXED);
    if (h) {
        interleave_avx512(x0, x1, dst, n);
        return;
    }
#endif
    for (long i = 0; i < n; i++)
        dst[i] = (uint32_t)x0[i] | (x1 ? (uint32_t)x1[i] << 16 : 0u);
}
