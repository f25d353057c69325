/* C[M x N] = alpha * op(A)[M x K] * op(B)[K x N] + beta * C, row-major.
 *
 * cnn_gemm is a Goto/BLIS-style packed GEMM. Each thread runs, over its own
 * rows [m0, m1) or columns [n0, n1) of C:
 *
 *   for jc in N by NC
 *     for pc in K by KC                  K blocks depend on K only, never on threads
 *       pack op(B)[pc:+kc, jc:+nc] -> Bp micro-panels [kc][NR], zero-padded (L2)
 *       for ir in M by MR
 *         op(A)[ir:+MR, pc:+kc] -> Ap    one micro-panel [kc][MR] (L1), or read
 *                                        in place when few jr tiles would use it
 *         for jr in nc by NR
 *           C[ir:+MR, jr:+NR] = alpha * Ap * Bp_jr + (pc == 0 ? beta : 1) * C
 *
 * while software prefetches pull in the next A panel and the next B block so
 * that memory traffic overlaps the FMAs. Ap and Bp are per-thread buffers
 * allocated once by cnn_gemm_ctx_create.
 *
 * Threads take disjoint MR- (or NR-) aligned ranges of C, so every element
 * lies in the same micro-tile and is summed by the same micro-kernel over the
 * same K blocks in the same order whatever the thread count: results are
 * bit-identical for 1 or n threads.
 *
 * ISA-specific code is compiled per function with target attributes (the
 * default build has no -march) and chosen at run time with
 * __builtin_cpu_supports. No fast-math: the only fused operations are the
 * explicit FMA intrinsics of the AVX2/AVX-512 micro-kernels. */
#include "kernels/gemm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/gemm_narrow.h"

#if defined(__x86_64__) || defined(__i386__)
#define GEMM_X86 1
#include <immintrin.h>
#endif

/* ---- The reference ---------------------------------------------------- */

void cnn_gemm_naive(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta, float *C,
                    int ldc)
{
    for (long i = 0; i < M; i++) {
        for (long j = 0; j < N; j++) {
            double sum = 0;
            /* alpha == 0 does not read A or B (BLAS convention; cnn_gemm agrees). */
            if (alpha != 0) {
                for (long k = 0; k < K; k++) {
                    float a = trans_a ? A[k * lda + i] : A[i * lda + k];
                    float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
                    sum += (double)a * (double)b;
                }
            }
            double v = (double)alpha * sum;
            if (beta != 0)
                v += (double)beta * (double)C[i * ldc + j];
            C[i * ldc + j] = (float)v;
        }
    }
}

/* ---- Packing ----------------------------------------------------------- */

/* A packer writes one micro-panel dst[kc][P] whose element (k, p) is
 * op(X)[k, p] for p < w and 0 for w <= p < P:
 *   contiguous: op(X)[k, p] = src[k * ld + p]  (A with trans_a, B without trans_b)
 *   strided:    op(X)[k, p] = src[p * ld + k]  (A without trans_a, B with trans_b)
 * The strided one is a transpose; it also prefetches the same columns of the
 * next P rows of src, the next panel it will be asked for, because each
 * panel reads only a short (kc-long) piece of each row and the hardware
 * prefetchers would otherwise start cold on every one. */
typedef void (*gemm_pack)(int kc, int w, int P, const float *src, long ld, float *dst);

/* The address bytes past p, without pointer arithmetic beyond the array
 * (prefetches never fault). */
static inline const void *gemm_ahead(const float *p, uintptr_t bytes)
{
    return (const void *)((uintptr_t)p + bytes);
}

static inline __attribute__((always_inline)) void
pack_contig_p(int kc, int w, int P, const float *src, long ld, float *dst)
{
    if (w == P) {
        for (int k = 0; k < kc; k++, src += ld, dst += P) {
            __builtin_prefetch(gemm_ahead(src, 2 * (uintptr_t)P * sizeof(float)));
            memcpy(dst, src, (size_t)P * sizeof(float));
        }
        return;
    }
    for (int k = 0; k < kc; k++, src += ld, dst += P) {
        for (int p = 0; p < w; p++)
            dst[p] = src[p];
        for (int p = w; p < P; p++)
            dst[p] = 0;
    }
}

static void pack_contig(int kc, int w, int P, const float *src, long ld, float *dst)
{
    /* Constant widths turn each row into a few vector moves. */
    switch (P) {
    case 32: pack_contig_p(kc, w, 32, src, ld, dst); break;
    case 16: pack_contig_p(kc, w, 16, src, ld, dst); break;
    case 12: pack_contig_p(kc, w, 12, src, ld, dst); break;
    case 8: pack_contig_p(kc, w, 8, src, ld, dst); break;
    case 6: pack_contig_p(kc, w, 6, src, ld, dst); break;
    default: pack_contig_p(kc, w, P, src, ld, dst); break;
    }
}

/* A whole block of contiguous-case panels, dst = ceil(nc / P) panels
 * [kc][P], read row by row of src (each row feeds every panel), which
 * streams far better than panel by panel when the rows are long. */
static inline __attribute__((always_inline)) void
pack_rows_p(int kc, int nc, int P, const float *src, long ld, float *dst)
{
    int full = nc / P * P;
    uintptr_t ahead = 4 * (uintptr_t)ld * sizeof(float);
    for (int k = 0; k < kc; k++, src += ld) {
        float *d = dst + (long)k * P;
        for (int jr = 0; jr < full; jr += P, d += (long)kc * P) {
            for (int q = 0; q < P; q += 16)
                __builtin_prefetch(gemm_ahead(src + jr + q, ahead));
            memcpy(d, src + jr, (size_t)P * sizeof(float));
        }
        if (full < nc) {
            for (int q = 0; q < nc - full; q++)
                d[q] = src[full + q];
            for (int q = nc - full; q < P; q++)
                d[q] = 0;
        }
    }
}

/* Strided rows p..w-1 one at a time, then the zero columns w..P-1. */
static void pack_strided_tail(int p, int kc, int w, int P, const float *src, long ld,
                              float *dst)
{
    for (; p < w; p++) {
        const float *s = src + p * ld;
        for (int k = 0; k < kc; k++)
            dst[(long)k * P + p] = s[k];
    }
    if (w < P) {
        for (int k = 0; k < kc; k++)
            for (int q = w; q < P; q++)
                dst[(long)k * P + q] = 0;
    }
}

#ifdef GEMM_X86
/* Strided rows from p on, four at a time through 4 x 4 SSE transposes (SSE
 * is part of x86-64); returns the first row left over. */
static int pack_strided_sse(int p, int kc, int w, int P, const float *src, long ld, float *dst)
{
    uintptr_t ahead = (uintptr_t)P * (uintptr_t)ld * sizeof(float);
    for (; p + 4 <= w; p += 4) {
        const float *s0 = src + p * ld, *s1 = s0 + ld, *s2 = s1 + ld, *s3 = s2 + ld;
        float *d = dst + p;
        int k = 0;
        for (; k + 4 <= kc; k += 4, d += 4 * P) {
            if ((k & 15) == 0) {
                __builtin_prefetch(gemm_ahead(s0 + k, ahead));
                __builtin_prefetch(gemm_ahead(s1 + k, ahead));
                __builtin_prefetch(gemm_ahead(s2 + k, ahead));
                __builtin_prefetch(gemm_ahead(s3 + k, ahead));
            }
            __m128 r0 = _mm_loadu_ps(s0 + k), r1 = _mm_loadu_ps(s1 + k);
            __m128 r2 = _mm_loadu_ps(s2 + k), r3 = _mm_loadu_ps(s3 + k);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(d, r0);
            _mm_storeu_ps(d + P, r1);
            _mm_storeu_ps(d + 2 * P, r2);
            _mm_storeu_ps(d + 3 * P, r3);
        }
        for (; k < kc; k++, d += P) {
            d[0] = s0[k];
            d[1] = s1[k];
            d[2] = s2[k];
            d[3] = s3[k];
        }
    }
    return p;
}

/* Eight rows at a time through 8 x 8 AVX transposes, then as above. */
__attribute__((target("avx"))) static void
pack_strided_avx(int kc, int w, int P, const float *src, long ld, float *dst)
{
    uintptr_t ahead = (uintptr_t)P * (uintptr_t)ld * sizeof(float);
    int p = 0;
    for (; p + 8 <= w; p += 8) {
        const float *s = src + p * ld;
        float *d = dst + p;
        int k = 0;
        for (; k + 8 <= kc; k += 8, d += 8 * P) {
            if ((k & 15) == 0) {
                for (int i = 0; i < 8; i++)
                    __builtin_prefetch(gemm_ahead(s + i * ld + k, ahead));
            }
            __m256 r0 = _mm256_loadu_ps(s + k), r1 = _mm256_loadu_ps(s + ld + k);
            __m256 r2 = _mm256_loadu_ps(s + 2 * ld + k), r3 = _mm256_loadu_ps(s + 3 * ld + k);
            __m256 r4 = _mm256_loadu_ps(s + 4 * ld + k), r5 = _mm256_loadu_ps(s + 5 * ld + k);
            __m256 r6 = _mm256_loadu_ps(s + 6 * ld + k), r7 = _mm256_loadu_ps(s + 7 * ld + k);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d + P, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d + 2 * P, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d + 3 * P, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d + 4 * P, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d + 5 * P, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d + 6 * P, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d + 7 * P, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (; k < kc; k++, d += P)
            for (int i = 0; i < 8; i++)
                d[i] = s[i * ld + k];
    }
    p = pack_strided_sse(p, kc, w, P, src, ld, dst);
    pack_strided_tail(p, kc, w, P, src, ld, dst);
}
#endif /* GEMM_X86 */

static void pack_strided(int kc, int w, int P, const float *src, long ld, float *dst)
{
    int p = 0;
#ifdef GEMM_X86
    p = pack_strided_sse(p, kc, w, P, src, ld, dst);
#endif
    pack_strided_tail(p, kc, w, P, src, ld, dst);
}

/* ---- Micro-kernels ----------------------------------------------------- */

/* Where a micro-kernel reads its MR x kc slice of op(A):
 *   GEMM_A_PACKED  a packed micro-panel: (i, k) at a[k * MR + i]
 *   GEMM_A_ROWS    A in place, no trans_a: (i, k) at a[i * lda + k]
 *   GEMM_A_COLS    A in place, trans_a:    (i, k) at a[k * lda + i]
 *   GEMM_A_GATHER, GEMM_A_PACKED_COPY: see avx512_body
 * Reading A in place saves the packing when a panel would serve only a few
 * micro-tiles (small N), and it overlaps the reads of A with the FMAs.
 * The values read, hence the results, are the same either way. */
enum { GEMM_A_PACKED, GEMM_A_ROWS, GEMM_A_COLS, GEMM_A_GATHER, GEMM_A_PACKED_COPY };

/* C[m x n] (row stride ldc) = alpha * op(A) * b + beta * C for m <= MR,
 * n <= NR, where b is a packed micro-panel [kc][NR] of op(B) (64-byte
 * aligned) and op(A) is read as amode says. Packed panels are zero-padded
 * to MR rows; in place, m must be MR. beta == 0 does not read C. The
 * epilogue is t = alpha * acc, then C = beta * C + t, with separate
 * multiplies and adds. */
typedef void (*gemm_ukernel)(int kc, const float *a, long lda, int amode, const float *b,
                             float *c, long ldc, float alpha, float beta, int m, int n);
/* The same on packed A, taking B's rows from src (row stride ldb) and
 * storing them into the panel b as it goes (GEMM_A_PACKED_COPY). */
typedef void (*gemm_ukernel_copy)(int kc, const float *a, const float *src, long ldb, float *b,
                                  float *c, long ldc, float alpha, float beta, int m, int n);

/* The m x n corner of a scratch tile t = alpha * acc (row stride nr) into C. */
static void tile_store(const float *t, int nr, float *c, long ldc, float beta, int m, int n)
{
    for (int i = 0; i < m; i++) {
        for (int q = 0; q < n; q++) {
            float v = t[i * nr + q];
            if (beta != 0) {
                float old = beta * c[i * ldc + q];
                v = old + v;
            }
            c[i * ldc + q] = v;
        }
    }
}

/* Portable: GCC/clang vector extensions, 6 x 8 with 12 four-float
 * accumulators (fits the 16 registers of SSE2/NEON). Packed A only. */
typedef float gemm_v4 __attribute__((vector_size(16)));

static gemm_v4 v4_load(const float *p)
{
    gemm_v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void v4_store(float *p, gemm_v4 v) { memcpy(p, &v, sizeof v); }

#define GEMM_ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define GEMM_ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)

static void ukernel_generic_6x8(int kc, const float *a, long lda, int amode, const float *b,
                                float *c, long ldc, float alpha, float beta, int m, int n)
{
    (void)lda;
    (void)amode;
    /* Named accumulators, not an array, so that they live in registers. */
#define DECL(i) gemm_v4 c##i##0 = {0, 0, 0, 0}, c##i##1 = {0, 0, 0, 0};
    GEMM_ROWS6(DECL)
#undef DECL
    for (int k = 0; k < kc; k++, a += 6, b += 8) {
        gemm_v4 b0 = v4_load(b), b1 = v4_load(b + 4);
#define STEP(i)                                                                    \
    {                                                                              \
        gemm_v4 ai = {a[i], a[i], a[i], a[i]};                                     \
        c##i##0 += ai * b0;                                                        \
        c##i##1 += ai * b1;                                                        \
    }
        GEMM_ROWS6(STEP)
#undef STEP
    }
    gemm_v4 va = {alpha, alpha, alpha, alpha}, vb = {beta, beta, beta, beta};
    if (m < 6 || n < 8) {
        float t[6 * 8];
#define STORE(i)                                                                   \
    v4_store(t + 8 * (i), va * c##i##0);                                           \
    v4_store(t + 8 * (i) + 4, va * c##i##1);
        GEMM_ROWS6(STORE)
#undef STORE
        tile_store(t, 8, c, ldc, beta, m, n);
        return;
    }
#define ROW(p, acc)                                                                \
    {                                                                              \
        gemm_v4 t = va * (acc);                                                    \
        if (beta != 0) {                                                           \
            gemm_v4 old = vb * v4_load(p);                                         \
            t = old + t;                                                           \
        }                                                                          \
        v4_store(p, t);                                                            \
    }
#define STORE(i) ROW(c + (i) * ldc, c##i##0) ROW(c + (i) * ldc + 4, c##i##1)
    GEMM_ROWS6(STORE)
#undef STORE
#undef ROW
}

#ifdef GEMM_X86

/* The x86 micro-kernels are written once as an always-inline body over
 * constant MODE (an amode), ROWS (<= MR) and NV (vectors per row, <= 2); the
 * dispatchers instantiate one body per combination in use, so edge tiles do
 * only the work of their valid rows and vectors. Every element's arithmetic
 * (one FMA per k, in order, then the epilogue) is the same in every one. */

/* op(A)[i, k] for the current k (a has been advanced to it). */
#define GEMM_A_AT(i) (MODE == GEMM_A_ROWS ? a[(i) * lda] : a[i])

/* Advances a to the next k and prefetches the A that in-place modes will
 * read soon: in rows mode the same columns of the next panel's rows (the
 * hardware follows each row, but not the jump to the next panel), in
 * columns mode 8 rows further down. */
#define GEMM_A_NEXT(MR)                                                            \
    do {                                                                           \
        if (MODE == GEMM_A_ROWS && (k & 15) == 0)                                  \
            for (int i_ = 0; i_ < ROWS; i_++)                                      \
                __builtin_prefetch(                                                \
                    gemm_ahead(a + i_ * lda, (MR) * (uintptr_t)lda * sizeof(float))); \
        if (MODE == GEMM_A_COLS) {                                                 \
            __builtin_prefetch(gemm_ahead(a, 8 * (uintptr_t)lda * sizeof(float))); \
            __builtin_prefetch(gemm_ahead(a + (MR) - 1, 8 * (uintptr_t)lda * sizeof(float))); \
        }                                                                          \
        a += MODE == GEMM_A_PACKED || MODE == GEMM_A_PACKED_COPY ? (MR)             \
             : MODE == GEMM_A_ROWS                           ? 1                \
                                                             : lda;             \
    } while (0)

/* AVX-512F, 12 x 32: 24 zmm accumulators + 2 for b + 1 broadcast. Each k
 * step is 2 aligned loads, 12 broadcasts and 24 FMAs. Partial columns use
 * masked loads and stores. */
__attribute__((target("avx512f"), always_inline)) static inline void
avx512_body(const int MODE, const int ROWS, const int NV, int kc, const float *a, long lda,
            const float *b, float *c, long ldc, float alpha, float beta, int n,
            const float *const *pa, const int *koff, const int *spans, int nspans,
            const float *src, long ldb)
{
    /* GEMM_A_GATHER: (i, k) at pa[i][koff[k]] (cnn_gemm_gather), k only
     * within the spans [spans[2s], spans[2s + 1]) of the block.
     * GEMM_A_PACKED_COPY: A packed; B's rows are read from src (row stride
     * ldb) and stored into the panel at b as they are used: the first row
     * panel of a block where op(B) = B (a Dense forward, the kernel in
     * memory) packs it for the others as it multiplies, the same values
     * and FMAs, so the same bits, but its loads now run under the FMAs,
     * where packing the block first left them waiting on memory. Each step
     * prefetches (into L2) the same row of the next tile's columns: rows
     * 4 KB apart are not followed by the hardware. Columns n..31 get zeros. */
#define GEMM_A_AT_G(i) (MODE == GEMM_A_GATHER ? pa[i][ko] : GEMM_A_AT(i))
    for (int i = 0; i < ROWS; i++) {
        __builtin_prefetch(c + i * ldc, 1);
        if (NV == 2)
            __builtin_prefetch(c + i * ldc + 16, 1);
    }
#define DECL(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
    GEMM_ROWS12(DECL)
#undef DECL
    const float *b_block = b;
    /* the tile's columns: the masked epilogue's, and GEMM_A_PACKED_COPY
     * reads B's columns n..31 as zeros */
    const __mmask16 m0 = (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1);
    const __mmask16 m1 = (__mmask16)(n >= 32 ? 0xFFFFu : n > 16 ? (1u << (n - 16)) - 1 : 0);
    for (int s = 0; s < (MODE == GEMM_A_GATHER ? nspans : 1); s++) {
        int k_end = MODE == GEMM_A_GATHER ? spans[2 * s + 1] : kc;
        int k = MODE == GEMM_A_GATHER ? spans[2 * s] : 0;
        for (b = b_block + (long)k * 32; k < k_end; k++, b += 32) {
            __m512 b0, b1;
            if (MODE == GEMM_A_PACKED_COPY) {
                _mm_prefetch((const char *)(src + 32), _MM_HINT_T1);
                _mm_prefetch((const char *)(src + 48), _MM_HINT_T1);
                b0 = _mm512_maskz_loadu_ps(m0, src);
                b1 = NV == 2 ? _mm512_maskz_loadu_ps(m1, src + 16) : _mm512_setzero_ps();
                _mm512_store_ps((float *)b, b0); /* the caller's panel */
                _mm512_store_ps((float *)b + 16, b1);
                src += ldb;
            } else {
                b0 = _mm512_load_ps(b);
                b1 = NV == 2 ? _mm512_load_ps(b + 16) : b0;
            }
            long ko = MODE == GEMM_A_GATHER ? koff[k] : 0;
            (void)ko;
#define STEP(i)                                                                    \
    if ((i) < ROWS) {                                                              \
        __m512 ai = _mm512_set1_ps(GEMM_A_AT_G(i));                                \
        c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);                                \
        if (NV == 2)                                                               \
            c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);                            \
    }
            GEMM_ROWS12(STEP)
#undef STEP
            if (MODE != GEMM_A_GATHER)
                GEMM_A_NEXT(12);
        }
    }
#undef GEMM_A_AT_G
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    if (n == 16 * NV) {
#define ROW(p, acc)                                                                \
    {                                                                              \
        __m512 t = _mm512_mul_ps(va, acc);                                         \
        if (beta != 0)                                                             \
            t = _mm512_add_ps(_mm512_mul_ps(vb, _mm512_loadu_ps(p)), t);           \
        _mm512_storeu_ps(p, t);                                                    \
    }
#define STORE(i)                                                                   \
    if ((i) < ROWS) {                                                              \
        ROW(c + (i) * ldc, c##i##0)                                                \
        if (NV == 2)                                                               \
            ROW(c + (i) * ldc + 16, c##i##1)                                       \
    }
        GEMM_ROWS12(STORE)
#undef STORE
#undef ROW
        return;
    }
#define ROW(p, acc, mask)                                                          \
    {                                                                              \
        __m512 t = _mm512_mul_ps(va, acc);                                         \
        if (beta != 0)                                                             \
            t = _mm512_add_ps(_mm512_mul_ps(vb, _mm512_maskz_loadu_ps(mask, p)), t); \
        _mm512_mask_storeu_ps(p, mask, t);                                         \
    }
#define STORE(i)                                                                   \
    if ((i) < ROWS) {                                                              \
        ROW(c + (i) * ldc, c##i##0, m0)                                            \
        if (NV == 2)                                                               \
            ROW(c + (i) * ldc + 16, c##i##1, m1)                                   \
    }
    GEMM_ROWS12(STORE)
#undef STORE
#undef ROW
}

__attribute__((target("avx512f"))) static void
ukernel_avx512_12x32(int kc, const float *a, long lda, int amode, const float *b, float *c,
                     long ldc, float alpha, float beta, int m, int n)
{
#define BODY(mode, rows, nv)                                                       \
    avx512_body(mode, rows, nv, kc, a, lda, b, c, ldc, alpha, beta, n, NULL, NULL, NULL, 0, NULL, 0)
    int nv = n > 16 ? 2 : 1;
    if (amode == GEMM_A_ROWS) {
        if (nv == 2)
            BODY(GEMM_A_ROWS, 12, 2);
        else
            BODY(GEMM_A_ROWS, 12, 1);
    } else if (amode == GEMM_A_COLS) {
        if (nv == 2)
            BODY(GEMM_A_COLS, 12, 2);
        else
            BODY(GEMM_A_COLS, 12, 1);
    } else if (nv == 2) {
        GEMM_DISPATCH_ROWS12(BODY, GEMM_A_PACKED, 2)
    } else {
        GEMM_DISPATCH_ROWS12(BODY, GEMM_A_PACKED, 1)
    }
#undef BODY
}

__attribute__((target("avx512f"))) static void
ukernel_avx512_copy(int kc, const float *a, const float *src, long ldb, float *b, float *c,
                    long ldc, float alpha, float beta, int m, int n)
{
#define BODY(mode, rows, nv)                                                       \
    avx512_body(mode, rows, nv, kc, a, 0, b, c, ldc, alpha, beta, n, NULL, NULL, NULL, 0, src, ldb)
    if (n > 16) {
        GEMM_DISPATCH_ROWS12(BODY, GEMM_A_PACKED_COPY, 2)
    } else {
        GEMM_DISPATCH_ROWS12(BODY, GEMM_A_PACKED_COPY, 1)
    }
#undef BODY
}

/* The m x 32 kernel (m <= 12) on gathered A: row i of the tile at pa[i],
 * column k at offset koff[k], over the block's columns in the nspans spans
 * [spans[2s], spans[2s + 1]) only (none: C = beta * C). */
__attribute__((target("avx512f"))) static void
ukernel_avx512_gather(int m, const float *const *pa, const int *koff, const int *spans,
                      int nspans, const float *b, float *c, long ldc, float beta, int n)
{
#define BODY(mode, rows, nv)                                                       \
    avx512_body(mode, rows, nv, 0, NULL, 0, b, c, ldc, 1.0f, beta, n, pa, koff, spans, nspans, NULL, 0)
    if (n > 16) {
        GEMM_DISPATCH_ROWS12(BODY, GEMM_A_GATHER, 2)
    } else {
        GEMM_DISPATCH_ROWS12(BODY, GEMM_A_GATHER, 1)
    }
#undef BODY
}

/* AVX2 + FMA, 6 x 16: 12 ymm accumulators + 2 for b + 1 broadcast. Partial
 * columns go through a scratch tile. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
avx2_body(const int MODE, const int ROWS, const int NV, int kc, const float *a, long lda,
          const float *b, float *c, long ldc, float alpha, float beta, int n)
{
#define DECL(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
    GEMM_ROWS6(DECL)
#undef DECL
    for (int k = 0; k < kc; k++, b += 16) {
        __m256 b0 = _mm256_load_ps(b), b1 = NV == 2 ? _mm256_load_ps(b + 8) : b0;
#define STEP(i)                                                                    \
    if ((i) < ROWS) {                                                              \
        __m256 ai = _mm256_set1_ps(GEMM_A_AT(i));                                  \
        c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                                \
        if (NV == 2)                                                               \
            c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);                            \
    }
        GEMM_ROWS6(STEP)
#undef STEP
        GEMM_A_NEXT(6);
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (n < 8 * NV) {
        _Alignas(32) float t[6 * 16];
#define STORE(i)                                                                   \
    if ((i) < ROWS) {                                                              \
        _mm256_store_ps(t + 16 * (i), _mm256_mul_ps(va, c##i##0));                  \
        if (NV == 2)                                                               \
            _mm256_store_ps(t + 16 * (i) + 8, _mm256_mul_ps(va, c##i##1));          \
    }
        GEMM_ROWS6(STORE)
#undef STORE
        tile_store(t, 16, c, ldc, beta, ROWS, n);
        return;
    }
#define ROW(p, acc)                                                                \
    {                                                                              \
        __m256 t = _mm256_mul_ps(va, acc);                                         \
        if (beta != 0)                                                             \
            t = _mm256_add_ps(_mm256_mul_ps(vb, _mm256_loadu_ps(p)), t);           \
        _mm256_storeu_ps(p, t);                                                    \
    }
#define STORE(i)                                                                   \
    if ((i) < ROWS) {                                                              \
        ROW(c + (i) * ldc, c##i##0)                                                \
        if (NV == 2)                                                               \
            ROW(c + (i) * ldc + 8, c##i##1)                                        \
    }
    GEMM_ROWS6(STORE)
#undef STORE
#undef ROW
}

__attribute__((target("avx2,fma"))) static void
ukernel_avx2_6x16(int kc, const float *a, long lda, int amode, const float *b, float *c,
                  long ldc, float alpha, float beta, int m, int n)
{
#define BODY(mode, rows, nv) avx2_body(mode, rows, nv, kc, a, lda, b, c, ldc, alpha, beta, n)
#define DISPATCH6(nv)                                                              \
    switch (m) {                                                                   \
    case 1: BODY(GEMM_A_PACKED, 1, nv); return;                                    \
    case 2: BODY(GEMM_A_PACKED, 2, nv); return;                                    \
    case 3: BODY(GEMM_A_PACKED, 3, nv); return;                                    \
    case 4: BODY(GEMM_A_PACKED, 4, nv); return;                                    \
    case 5: BODY(GEMM_A_PACKED, 5, nv); return;                                    \
    default: BODY(GEMM_A_PACKED, 6, nv); return;                                   \
    }
    int nv = n > 8 ? 2 : 1;
    if (amode == GEMM_A_ROWS) {
        if (nv == 2)
            BODY(GEMM_A_ROWS, 6, 2);
        else
            BODY(GEMM_A_ROWS, 6, 1);
    } else if (amode == GEMM_A_COLS) {
        if (nv == 2)
            BODY(GEMM_A_COLS, 6, 2);
        else
            BODY(GEMM_A_COLS, 6, 1);
    } else if (nv == 2) {
        DISPATCH6(2)
    } else {
        DISPATCH6(1)
    }
#undef DISPATCH6
#undef BODY
}

#endif /* GEMM_X86 */

typedef struct {
    const char *name;
    int mr, nr;     /* register tile */
    int kc, nc;     /* cache blocks; nc % nr == 0 */
    gemm_ukernel kernel;
    bool in_place;  /* the kernel can read A in place (GEMM_A_ROWS/COLS) */
    gemm_pack pack_strided;
    gemm_ukernel_copy kernel_copy; /* NULL: B blocks are packed before use */
} gemm_kernel;

/* Fastest first. Block sizes for Zen 4 (32 KiB L1d, 1 MiB L2): the A
 * micro-panel (MR x KC, 18 KiB) stays in L1 across the jr loop; measured,
 * KC from 256 to 512 were all within a few percent. The AVX-512 B block
 * spans 1024 columns (KC x NC, 1.5 MiB, more than L2): packing op(B) then
 * reads whole 4 KiB rows of a 1024-wide B, where 512 columns read half a
 * page and jumped to the next, which no hardware prefetcher follows. Dense
 * 3136 -> 1024 at batch 64 (M = 64: the B block serves 6 row panels, B
 * comes from memory) went from 83 to 93 GFLOP/s on one core (the same
 * product on B packed beforehand: 104) with B out of cache; a square 1024
 * product, Dense's backward passes and 2048-wide products were the same
 * or faster. Conv2D's N is its filter count (16 to 64 in the tutorial and
 * MLPerf Tiny models), below one block either way. */
static const gemm_kernel gemm_kernels[] = {
#ifdef GEMM_X86
    {"avx512", 12, 32, 384, 1024, ukernel_avx512_12x32, true, pack_strided_avx,
     ukernel_avx512_copy},
    {"avx2", 6, 16, 384, 512, ukernel_avx2_6x16, true, pack_strided_avx, NULL},
#endif
    {"generic", 6, 8, 256, 256, ukernel_generic_6x8, false, pack_strided, NULL},
};
enum { GEMM_NKERNELS = sizeof gemm_kernels / sizeof gemm_kernels[0] };

/* A is read in place, not packed, when a panel serves at most this many
 * micro-tiles (nc <= 4 NR): Conv2D's N is its 32 or 64 filters. */
enum { GEMM_IN_PLACE_TILES = 4 };

static bool gemm_kernel_supported(const gemm_kernel *k)
{
#ifdef GEMM_X86
    __builtin_cpu_init();
    if (strcmp(k->name, "avx512") == 0)
        return __builtin_cpu_supports("avx512f");
    if (strcmp(k->name, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return strcmp(k->name, "generic") == 0;
}

/* ---- Driver ------------------------------------------------------------ */

struct cnn_gemm_ctx {
    cnn_pool *pool;            /* not owned */
    int threads;
    const gemm_kernel *kernel; /* the fast path's micro-kernel */
    bool naive;
    bool bf16;                 /* cnn_gemm_bf16 uses bfloat16 (gemm_bf16.c) */
    bool narrow;               /* few-row products read B in place (gemm_narrow.c) */
    float *buffers;            /* threads x per_thread floats, 64-byte aligned */
    size_t per_thread;         /* Ap (MR x KC) then Bp (KC x NC), in floats */
};

/* Floats of one packing buffer, rounded up to whole cache lines. */
static size_t gemm_round16(size_t n) { return (n + 15) / 16 * 16; }

cnn_status cnn_gemm_ctx_create(cnn_gemm_ctx **out, cnn_pool *pool)
{
    *out = NULL;
    cnn_gemm_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return cnn_fail(CNN_ERR_NO_MEMORY, "gemm: out of memory");
    ctx->pool = pool;
    ctx->threads = cnn_pool_threads(pool);
    /* The first supported kernel in the table is the fastest. */
    for (int i = 0; i < GEMM_NKERNELS && !ctx->kernel; i++)
        if (gemm_kernel_supported(&gemm_kernels[i]))
            ctx->kernel = &gemm_kernels[i];
    /* Sized for every kernel so cnn_gemm_ctx_force_kernel never reallocates. */
    for (int i = 0; i < GEMM_NKERNELS; i++) {
        const gemm_kernel *k = &gemm_kernels[i];
        size_t need = gemm_round16((size_t)k->mr * k->kc) + gemm_round16((size_t)k->kc * k->nc);
        if (need > ctx->per_thread)
            ctx->per_thread = need;
    }
    ctx->bf16 = cnn_gemm_bf16_supported();
    ctx->narrow = cnn_gemm_narrow_supported();
    if (gemm_round16((size_t)GEMM_NARROW_MAX_M * GEMM_NARROW_COLUMNS) > ctx->per_thread)
        ctx->per_thread = gemm_round16((size_t)GEMM_NARROW_MAX_M * GEMM_NARROW_COLUMNS);
    if (gemm_round16(cnn_gemm_bf16_buffer_floats()) > ctx->per_thread)
        ctx->per_thread = gemm_round16(cnn_gemm_bf16_buffer_floats());
    size_t bytes = (size_t)ctx->threads * ctx->per_thread * sizeof(float);
    ctx->buffers = aligned_alloc(64, bytes);
    if (!ctx->buffers) {
        free(ctx);
        return cnn_fail(CNN_ERR_NO_MEMORY, "gemm: cannot allocate %zu bytes of packing buffers",
                        bytes);
    }
    *out = ctx;
    return CNN_OK;
}

void cnn_gemm_ctx_free(cnn_gemm_ctx *ctx)
{
    if (!ctx)
        return;
    free(ctx->buffers);
    free(ctx);
}

void cnn_gemm_ctx_use_naive(cnn_gemm_ctx *ctx, bool naive) { ctx->naive = naive; }

bool cnn_gemm_ctx_is_naive(const cnn_gemm_ctx *ctx) { return ctx->naive; }

bool cnn_gemm_ctx_has_bf16(const cnn_gemm_ctx *ctx) { return ctx->bf16; }

bool cnn_gemm_ctx_allow_bf16(cnn_gemm_ctx *ctx, bool allow)
{
    ctx->bf16 = allow && cnn_gemm_bf16_supported();
    return ctx->bf16;
}

cnn_pool *cnn_gemm_ctx_pool(cnn_gemm_ctx *ctx) { return ctx->pool; }

float *cnn_gemm_ctx_buffer(cnn_gemm_ctx *ctx, int ith)
{
    return ctx->buffers + (size_t)ith * ctx->per_thread;
}

const char *cnn_gemm_ctx_kernel_name(const cnn_gemm_ctx *ctx)
{
    return ctx->naive ? "naive" : ctx->kernel->name;
}

bool cnn_gemm_ctx_force_kernel(cnn_gemm_ctx *ctx, const char *name)
{
    for (int i = 0; i < GEMM_NKERNELS; i++) {
        if (strcmp(gemm_kernels[i].name, name) == 0 && gemm_kernel_supported(&gemm_kernels[i])) {
            ctx->kernel = &gemm_kernels[i];
            return true;
        }
    }
    return false;
}

typedef struct {
    const gemm_kernel *kern;
    float *buffers;
    size_t per_thread;
    bool trans_a, trans_b, split_n;
    int M, N, K;
    float alpha, beta;
    const float *A, *B;
    const float *bpacked; /* op(B) packed whole by cnn_gemm_pack_b, or NULL */
    float *C;
    long lda, ldb, ldc;
} gemm_job;

/* Bp <- op(B)[pc:+kc, jc:+nc] as ceil(nc / NR) micro-panels [kc][NR]. */
static void pack_b(const gemm_job *j, long pc, int kc, long jc, int nc, float *bp)
{
    const gemm_kernel *kern = j->kern;
    int nr = kern->nr;
    if (j->trans_b) {
        for (int jr = 0; jr < nc; jr += nr, bp += (long)kc * nr) {
            int w = nc - jr < nr ? nc - jr : nr;
            kern->pack_strided(kc, w, nr, j->B + (jc + jr) * j->ldb + pc, j->ldb, bp);
        }
        return;
    }
    switch (nr) {
    case 32: pack_rows_p(kc, nc, 32, j->B + pc * j->ldb + jc, j->ldb, bp); break;
    case 16: pack_rows_p(kc, nc, 16, j->B + pc * j->ldb + jc, j->ldb, bp); break;
    default: pack_rows_p(kc, nc, nr, j->B + pc * j->ldb + jc, j->ldb, bp); break;
    }
}

/* Prefetches (into L2) part `part` of `parts` of the source of
 * op(B)[pc:+kc, jc:+nc], the block pack_b will be asked for next: spread
 * over the micro-tiles of the current block, its memory traffic overlaps
 * the FMAs instead of stalling pack_b (which matters when M is small, as in
 * Dense layers, and the B block is used by few micro-tiles). */
/* Ap <- op(A)[i0:+m, pc:+kc] as one micro-panel [kc][MR] (m <= MR). */
static void pack_a(const gemm_job *j, long i0, int m, long pc, int kc, float *ap)
{
    int mr = j->kern->mr;
    if (j->trans_a)
        pack_contig(kc, m, mr, j->A + pc * j->lda + i0, j->lda, ap);
    else
        j->kern->pack_strided(kc, m, mr, j->A + i0 * j->lda + pc, j->lda, ap);
}

/* This thread's rows [m0, m1) and columns [n0, n1) of C. The micro-panel of
 * A is packed right before its use (it is used for one Bp block only), so
 * it is still in L1 for the micro-kernel, and its packing prefetches the
 * next one while this one computes. */
static void gemm_block(const gemm_job *j, long m0, long m1, long n0, long n1, float *ap,
                       float *bp)
{
    const gemm_kernel *kern = j->kern;
    int mr = kern->mr, nr = kern->nr;
    /* K blocks of (nearly) equal length, no ragged last one: a function of K
     * only, so the summation order does not depend on the threads. */
    long kblocks = (j->K + kern->kc - 1) / kern->kc, kstep = (j->K + kblocks - 1) / kblocks;
    long nblocks = (n1 - n0 + kern->nc - 1) / kern->nc;
    long nstep = ((n1 - n0 + nblocks - 1) / nblocks + nr - 1) / nr * nr;
    for (long jc = n0; jc < n1; jc += nstep) {
        int nc = (int)(n1 - jc < nstep ? n1 - jc : nstep);
        for (long pc = 0; pc < j->K; pc += kstep) {
            int kc = (int)(j->K - pc < kstep ? j->K - pc : kstep);
            /* beta applies once; later K blocks accumulate. */
            float beta = pc == 0 ? j->beta : 1.0f;
            bool in_place = kern->in_place && nc <= GEMM_IN_PLACE_TILES * nr;
            /* B not transposed, A packed: the first row panel copies B's
             * block as it multiplies (kernel_copy, GEMM_A_PACKED_COPY) */
            bool copy_b = kern->kernel_copy && !j->bpacked && !j->trans_b && !in_place;
            if (j->bpacked)
                bp = (float *)j->bpacked + jc * j->K + pc * (long)((nc + nr - 1) / nr * nr);
            else if (!copy_b)
                pack_b(j, pc, kc, jc, nc, bp);
            /* The next block: the next K block, else the first of the next
             * column block, else none. */
            long next_pc = pc + kstep, next_jc = jc;
            if (next_pc >= j->K) {
                next_pc = 0;
                next_jc = jc + nstep;
            }
            int next_kc = (int)(j->K - next_pc < kstep ? j->K - next_pc : kstep);
            int next_nc = (int)(n1 - next_jc < nstep ? n1 - next_jc : nstep);
            long panels = (m1 - m0 + mr - 1) / mr;
            for (long ir = m0; ir < m1; ir += mr) {
                if (next_jc < n1 && !j->bpacked)
                    cnn_gemm_prefetch_b(j->B, j->ldb, j->trans_b, next_pc, next_kc, next_jc,
                                        next_nc, (ir - m0) / mr, panels);
                int m = (int)(m1 - ir < mr ? m1 - ir : mr);
                const float *a = ap;
                int amode = GEMM_A_PACKED;
                /* A partial panel is packed (zero-padded): in place, the
                 * micro-kernel would read rows past M. */
                if (in_place && m == mr) {
                    amode = j->trans_a ? GEMM_A_COLS : GEMM_A_ROWS;
                    a = j->trans_a ? j->A + pc * j->lda + ir : j->A + ir * j->lda + pc;
                } else {
                    pack_a(j, ir, m, pc, kc, ap);
                }
                for (int jr = 0; jr < nc; jr += nr) {
                    int n = nc - jr < nr ? nc - jr : nr;
                    float *c = j->C + ir * j->ldc + jc + jr;
                    if (copy_b && ir == m0)
                        kern->kernel_copy(kc, a, j->B + pc * j->ldb + jc + jr, j->ldb,
                                          bp + (long)jr * kc, c, j->ldc, j->alpha, beta, m, n);
                    else
                        kern->kernel(kc, a, j->lda, amode, bp + (long)jr * kc, c, j->ldc,
                                     j->alpha, beta, m, n);
                }
            }
        }
    }
}

static void gemm_worker(void *arg, int ith, int nth)
{
    const gemm_job *j = arg;
    const gemm_kernel *kern = j->kern;
    long m0 = 0, m1 = j->M, n0 = 0, n1 = j->N, b, e;
    if (j->split_n) {
        cnn_split_range((j->N + kern->nr - 1) / kern->nr, ith, nth, &b, &e);
        n0 = b * kern->nr;
        n1 = e * kern->nr < j->N ? e * kern->nr : j->N;
    } else {
        cnn_split_range((j->M + kern->mr - 1) / kern->mr, ith, nth, &b, &e);
        m0 = b * kern->mr;
        m1 = e * kern->mr < j->M ? e * kern->mr : j->M;
    }
    if (m0 >= m1 || n0 >= n1)
        return;
    float *ap = j->buffers + (size_t)ith * j->per_thread;
    gemm_block(j, m0, m1, n0, n1, ap, ap + gemm_round16((size_t)kern->mr * kern->kc));
}

/* Split C by rows or by columns, whichever leaves the busiest thread the
 * least work. Work counts multiply-adds plus packing, a packed element
 * costing about as much as a 16-wide FMA; splitting by rows makes every
 * thread pack all of op(B), splitting by columns all of op(A). */
static bool gemm_split_by_columns(const gemm_kernel *kern, long M, long N, long K, int nth)
{
    const double pack_cost = 16;
    long tiles_m = (M + kern->mr - 1) / kern->mr, tiles_n = (N + kern->nr - 1) / kern->nr;
    long rows = (tiles_m + nth - 1) / nth * kern->mr, cols = (tiles_n + nth - 1) / nth * kern->nr;
    double r = (double)(rows < M ? rows : M), c = (double)(cols < N ? cols : N);
    double m = (double)M, n = (double)N, k = (double)K;
    double by_rows = r * n * k + pack_cost * k * (n + r);
    double by_cols = m * c * k + pack_cost * k * (m + c);
    return by_cols < by_rows;
}

/* A C of a few rows, B not transposed: gemm_narrow.c reads B in place.
 * Only beside the AVX-512 micro-kernel, whose bits it reproduces (a test
 * forcing another kernel gets that kernel everywhere). */
static bool gemm_use_narrow(const cnn_gemm_ctx *ctx, bool trans_b, int M)
{
    return ctx->narrow && !trans_b && M <= GEMM_NARROW_MAX_M
           && strcmp(ctx->kernel->name, "avx512") == 0;
}

typedef struct {
    const cnn_gemm_ctx *ctx;
    bool trans_a;
    int M, N, K;
    long kstep;
    float alpha, beta;
    const float *A, *B;
    float *C;
    long lda, ldb, ldc;
} narrow_job;

/* Threads take 16-aligned column ranges; each element's sum is the same
 * whatever the split. */
static void narrow_worker(void *arg, int ith, int nth)
{
    const narrow_job *j = arg;
    long b, e;
    cnn_split_range((j->N + 15) / 16, ith, nth, &b, &e);
    long n0 = b * 16, n1 = e * 16 < j->N ? e * 16 : j->N;
    if (n0 < n1)
        cnn_gemm_narrow(j->M, n0, n1, j->K, j->kstep, j->trans_a, j->alpha, j->A, j->lda, j->B,
                        j->ldb, j->beta, j->C, j->ldc, cnn_gemm_ctx_buffer((cnn_gemm_ctx *)j->ctx, ith));
}

static void gemm_narrow(cnn_gemm_ctx *ctx, bool trans_a, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C,
                        int ldc)
{
    /* gemm_block's K blocks. */
    long kblocks = (K + ctx->kernel->kc - 1) / ctx->kernel->kc;
    narrow_job job = {.ctx = ctx, .trans_a = trans_a, .M = M, .N = N, .K = K,
                      .kstep = (K + kblocks - 1) / kblocks, .alpha = alpha, .beta = beta,
                      .A = A, .B = B, .C = C, .lda = lda, .ldb = ldb, .ldc = ldc};
    /* Memory-bound: the second core brings its own share of bandwidth, but
     * only above the packed path's threshold is it worth a round trip. */
    bool parallel = ctx->threads > 1 && (double)M * N * K >= 1048576 && N >= 32;
    cnn_pool_run(parallel ? ctx->pool : NULL, narrow_worker, &job);
}

/* The cases every entry point handles alike: the reference, an empty
 * product. Returns true when it has done the whole product. */
static bool gemm_trivial(cnn_gemm_ctx *ctx, bool trans_a, bool trans_b, int M, int N, int K,
                         float alpha, const float *A, int lda, const float *B, int ldb,
                         float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return true;
    if (ctx->naive) {
        cnn_gemm_naive(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return true;
    }
    if (K <= 0 || alpha == 0) {
        /* Nothing to multiply: C = beta * C (beta == 0 clears NaNs too). */
        for (long i = 0; i < M; i++)
            for (long q = 0; q < N; q++)
                C[i * ldc + q] = beta == 0 ? 0.0f : beta * C[i * ldc + q];
        return true;
    }
    return false;
}

void cnn_gemm_serial(cnn_gemm_ctx *ctx, int ith, bool trans_a, bool trans_b, int M, int N, int K,
                     float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                     float *C, int ldc)
{
    if (gemm_trivial(ctx, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
        return;
    float *buffer = cnn_gemm_ctx_buffer(ctx, ith);
    if (gemm_use_narrow(ctx, trans_b, M)) {
        long kblocks = (K + ctx->kernel->kc - 1) / ctx->kernel->kc;
        cnn_gemm_narrow(M, 0, N, K, (K + kblocks - 1) / kblocks, trans_a, alpha, A, lda, B, ldb,
                        beta, C, ldc, buffer);
        return;
    }
    gemm_job job = {
        .kern = ctx->kernel, .trans_a = trans_a, .trans_b = trans_b, .M = M, .N = N, .K = K,
        .alpha = alpha, .beta = beta, .A = A, .B = B, .C = C,
        .lda = lda, .ldb = ldb, .ldc = ldc,
    };
    gemm_block(&job, 0, M, 0, N, buffer,
               buffer + gemm_round16((size_t)job.kern->mr * job.kern->kc));
}

/* gemm_block's column blocks for C columns [0, N): nstep columns each. */
static long gemm_nstep(const gemm_kernel *kern, long N)
{
    long nblocks = (N + kern->nc - 1) / kern->nc, nr = kern->nr;
    return ((N + nblocks - 1) / nblocks + nr - 1) / nr * nr;
}

size_t cnn_gemm_packed_b_floats(int K, int N)
{
    return (size_t)K * (size_t)((N + 31) / 32 * 32);
}

/* The blocks gemm_block packs for columns [0, N), in its order (column
 * block jc, then K block pc), back to back: block (jc, pc) starts at
 * jc * K + pc * (its width rounded up to NR), which is where gemm_block
 * looks for it. */
void cnn_gemm_pack_b(const cnn_gemm_ctx *ctx, bool trans_b, int N, int K, const float *B,
                     int ldb, float *dst)
{
    if (ctx->naive || N <= 0 || K <= 0)
        return;
    gemm_job job = {.kern = ctx->kernel, .trans_b = trans_b, .N = N, .K = K, .B = B, .ldb = ldb};
    const gemm_kernel *kern = ctx->kernel;
    long kblocks = (K + kern->kc - 1) / kern->kc, kstep = (K + kblocks - 1) / kblocks;
    long nstep = gemm_nstep(kern, N);
    for (long jc = 0; jc < N; jc += nstep) {
        int nc = (int)(N - jc < nstep ? N - jc : nstep);
        for (long pc = 0; pc < K; pc += kstep) {
            int kc = (int)(K - pc < kstep ? K - pc : kstep);
            pack_b(&job, pc, kc, jc, nc,
                   dst + jc * K + pc * (long)((nc + kern->nr - 1) / kern->nr * kern->nr));
        }
    }
}

void cnn_gemm_serial_packed_b(cnn_gemm_ctx *ctx, int ith, bool trans_a, bool trans_b, int M,
                              int N, int K, float alpha, const float *A, int lda,
                              const float *B, int ldb, const float *bpacked, float beta,
                              float *C, int ldc)
{
    if (gemm_trivial(ctx, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
        return;
    if (gemm_use_narrow(ctx, trans_b, M)) {
        cnn_gemm_serial(ctx, ith, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    float *buffer = cnn_gemm_ctx_buffer(ctx, ith);
    gemm_job job = {
        .kern = ctx->kernel, .trans_a = trans_a, .trans_b = trans_b, .M = M, .N = N, .K = K,
        .alpha = alpha, .beta = beta, .A = A, .B = B, .bpacked = bpacked, .C = C,
        .lda = lda, .ldb = ldb, .ldc = ldc,
    };
    gemm_block(&job, 0, M, 0, N, buffer,
               buffer + gemm_round16((size_t)job.kern->mr * job.kern->kc));
}

void cnn_gemm(cnn_gemm_ctx *ctx, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (gemm_trivial(ctx, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
        return;
    if (gemm_use_narrow(ctx, trans_b, M)) {
        gemm_narrow(ctx, trans_a, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    gemm_job job = {
        .kern = ctx->kernel, .buffers = ctx->buffers, .per_thread = ctx->per_thread,
        .trans_a = trans_a, .trans_b = trans_b, .M = M, .N = N, .K = K,
        .alpha = alpha, .beta = beta, .A = A, .B = B, .C = C,
        .lda = lda, .ldb = ldb, .ldc = ldc,
    };
    /* Below ~1M multiply-adds (about 15 us on one core) a split costs
     * more than it saves: the pool's round trip is now a microsecond or
     * two (threadpool.c spins before it blocks), but the other core then
     * reads A and writes C through its own cache. Small networks (LeNet-5's
     * Dense 84 and 10, batch-1 layers) stay on one thread, so a second
     * thread never makes them slower (measured: 256K, 512K and 1M gave the
     * same batch-1 MobileNetV1 and ResNet-8 latency within 3%). */
    if (ctx->threads == 1 || (double)M * N * K < 1048576) {
        gemm_worker(&job, 0, 1);
        return;
    }
    job.split_n = gemm_split_by_columns(job.kern, M, N, K, ctx->threads);
    cnn_pool_run(ctx->pool, gemm_worker, &job);
}

bool cnn_gemm_gather_supported(const cnn_gemm_ctx *ctx)
{
#ifdef GEMM_X86
    return !ctx->naive && strcmp(ctx->kernel->name, "avx512") == 0;
#else
    (void)ctx;
    return false;
#endif
}

/* The spans of [k0, k1) among `spans` (sorted, disjoint), shifted to start
 * at k0, into out; returns how many. */
static int spans_in_block(const int *spans, int nspans, int k0, int k1, int *out)
{
    int n = 0;
    for (int s = 0; s < nspans; s++) {
        int a = spans[2 * s] > k0 ? spans[2 * s] : k0;
        int b = spans[2 * s + 1] < k1 ? spans[2 * s + 1] : k1;
        if (a < b)
            out[2 * n] = a - k0, out[2 * n + 1] = b - k0, n++;
    }
    return n;
}

void cnn_gemm_gather(cnn_gemm_ctx *ctx, int ith, int M, int N, int K, const float *const *rows,
                     const int *koff, const float *bpacked, float beta, float *C, int ldc)
{
    int all[2] = {0, K};
    cnn_gemm_gather_spans(ctx, ith, M, N, K, rows, koff, all, 1, bpacked, beta, C, ldc);
}

void cnn_gemm_gather_spans(cnn_gemm_ctx *ctx, int ith, int M, int N, int K,
                           const float *const *rows, const int *koff, const int *spans,
                           int nspans, const float *bpacked, float beta, float *C, int ldc)
{
#ifdef GEMM_X86
    const gemm_kernel *kern = ctx->kernel;
    const int nr = kern->nr;
    /* gemm_block's K and column blocks, so every element is summed as there
     * (a partial panel too: the micro-kernel's rows are independent) */
    long kblocks = (K + kern->kc - 1) / kern->kc, kstep = (K + kblocks - 1) / kblocks;
    long nstep = gemm_nstep(kern, N);
    int *block_spans = (int *)cnn_gemm_ctx_buffer(ctx, ith); /* at most kc pairs */
    /* near-equal panels of at most CNN_GEMM_GATHER_ROWS rows (the rows are
     * independent: any cut gives the same bits) */
    const long panels = (M + CNN_GEMM_GATHER_ROWS - 1) / CNN_GEMM_GATHER_ROWS;
    for (long ir = 0, p = 0; ir < M; p++) {
        int m = (int)(M / panels + (p < M % panels));
        for (long jc = 0; jc < N; jc += nstep) {
            int nc = (int)(N - jc < nstep ? N - jc : nstep);
            bool summed = false; /* a block has been stored (beta applied) */
            for (long pc = 0; pc < K; pc += kstep) {
                int kc = (int)(K - pc < kstep ? K - pc : kstep);
                const float *bp = bpacked + jc * K + pc * (long)((nc + nr - 1) / nr * nr);
                /* A block with no span adds only zero products: skipped,
                 * unless it is the last and none before it stored C. The
                 * products skipped are exact zeros (A is zero there), so
                 * the sums keep their bits. */
                int ns = spans_in_block(spans, nspans, (int)pc, (int)(pc + kc), block_spans);
                if (ns == 0 && (summed || pc + kc < K))
                    continue;
                float b = summed ? 1.0f : beta;
                summed = true;
                for (int jr = 0; jr < nc; jr += nr) {
                    int n = nc - jr < nr ? nc - jr : nr;
                    ukernel_avx512_gather(m, rows + ir, koff + pc, block_spans, ns,
                                          bp + (long)jr * kc, C + ir * ldc + jc + jr, ldc, b, n);
                }
            }
        }
        ir += m;
    }
#else
    (void)ctx, (void)ith, (void)M, (void)N, (void)K, (void)rows, (void)koff, (void)bpacked;
    (void)beta, (void)C, (void)ldc, (void)spans, (void)nspans, (void)spans_in_block;
#endif
}
