/* cnn_gemm for a C of a few rows (a Dense layer at batch 1, a batch-1
 * forward's last layers): B is read in place, once, row after row.
 *
 * The packed path copies every block of B into a buffer before a
 * micro-kernel uses it; with M = 1 each packed element serves one
 * multiply-add, so packing doubled the memory traffic of the tutorial
 * network's Dense 3136 -> 1024 (12.8 MB of weights) and half of a batch-1
 * forward pass went to it. Here the accumulators for a slice of C's
 * columns live in the caller's buffer (L1), each row of B is streamed once
 * per K block, and the epilogue is the micro-kernel's: every element of C
 * is summed over the same K blocks, in the same order, with the same FMA
 * and the same alpha/beta arithmetic as in the AVX-512 and AVX2 kernels, so
 * the result is bit-identical to the packed path's and independent of how
 * columns are split between threads. */
#include "kernels/gemm_narrow.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static void
narrow_block(int M, int nc, int kc, long pc, bool trans_a, float alpha, const float *A,
             long lda, const float *B, long ldb, float beta, float *C, long ldc, float *acc)
{
    /* No software prefetch: the hardware prefetcher follows 4 KiB slices
     * of rows (measured on the tutorial network's Dense 3136 -> 1024 at
     * batch 1, one thread: 0.51 ms without, 0.55 ms with one prefetch per
     * line two rows ahead). */
    memset(acc, 0, (size_t)M * GEMM_NARROW_COLUMNS * sizeof(float));
    const int full = nc / 16 * 16;
    const __mmask16 tail = (__mmask16)((1u << (nc - full)) - 1);
    for (long k = pc; k < pc + kc; k++) {
        const float *b = B + k * ldb;
        __m512 a[GEMM_NARROW_MAX_M];
        for (int r = 0; r < M; r++)
            a[r] = _mm512_set1_ps(trans_a ? A[k * lda + r] : A[r * lda + k]);
        int j = 0;
        for (; j < full; j += 16) {
            __m512 bv = _mm512_loadu_ps(b + j);
            for (int r = 0; r < M; r++) {
                float *s = acc + r * GEMM_NARROW_COLUMNS + j;
                _mm512_storeu_ps(s, _mm512_fmadd_ps(a[r], bv, _mm512_loadu_ps(s)));
            }
        }
        if (tail) {
            __m512 bv = _mm512_maskz_loadu_ps(tail, b + j);
            for (int r = 0; r < M; r++) {
                float *s = acc + r * GEMM_NARROW_COLUMNS + j;
                _mm512_storeu_ps(s, _mm512_fmadd_ps(a[r], bv, _mm512_loadu_ps(s)));
            }
        }
    }
    /* The micro-kernel's epilogue: alpha * acc, plus beta * C unless beta
     * is 0 (C may hold NaN then). */
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int r = 0; r < M; r++) {
        for (int j = 0; j < nc; j += 16) {
            __mmask16 m = (__mmask16)(nc - j >= 16 ? 0xFFFF : (1u << (nc - j)) - 1);
            float *c = C + r * ldc + j;
            __m512 t = _mm512_mul_ps(va, _mm512_loadu_ps(acc + r * GEMM_NARROW_COLUMNS + j));
            if (beta != 0)
                t = _mm512_add_ps(_mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m, c)), t);
            _mm512_mask_storeu_ps(c, m, t);
        }
    }
}

bool cnn_gemm_narrow_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

void cnn_gemm_narrow(int M, long n0, long n1, int K, long kstep, bool trans_a, float alpha,
                     const float *A, long lda, const float *B, long ldb, float beta, float *C,
                     long ldc, float *acc)
{
    for (long jc = n0; jc < n1; jc += GEMM_NARROW_COLUMNS) {
        int nc = (int)(n1 - jc < GEMM_NARROW_COLUMNS ? n1 - jc : GEMM_NARROW_COLUMNS);
        for (long pc = 0; pc < K; pc += kstep) {
            int kc = (int)(K - pc < kstep ? K - pc : kstep);
            /* beta applies once; later K blocks accumulate. */
            narrow_block(M, nc, kc, pc, trans_a, alpha, A, lda, B + jc, ldb,
                         pc == 0 ? beta : 1.0f, C + jc, ldc, acc);
        }
    }
}

#else

bool cnn_gemm_narrow_supported(void) { return false; }

void cnn_gemm_narrow(int M, long n0, long n1, int K, long kstep, bool trans_a, float alpha,
                     const float *A, long lda, const float *B, long ldb, float beta, float *C,
                     long ldc, float *acc)
{
    (void)M, (void)n0, (void)n1, (void)K, (void)kstep, (void)trans_a, (void)alpha, (void)A;
    (void)lda, (void)B, (void)ldb, (void)beta, (void)C, (void)ldc, (void)acc;
}

#endif
