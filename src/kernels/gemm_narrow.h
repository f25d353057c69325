/* cnn_gemm's path for a C of at most GEMM_NARROW_MAX_M rows with B not
 * transposed (gemm_narrow.c): B read in place instead of packed. Internal
 * to cnn_gemm, which chooses it. */
#ifndef CNN_KERNELS_GEMM_NARROW_H
#define CNN_KERNELS_GEMM_NARROW_H

#include <stdbool.h>

enum {
    GEMM_NARROW_MAX_M = 4,
    /* Columns of C per slice: the accumulators (M x this many floats,
     * 16 KiB at most) stay in L1. */
    GEMM_NARROW_COLUMNS = 1024,
};

/* Whether this CPU runs the narrow kernel (AVX-512). */
bool cnn_gemm_narrow_supported(void);

/* Columns [n0, n1) of C[M x N] = alpha * op(A) * B + beta * C, M <= GEMM_NARROW_MAX_M,
 * summed over K blocks of kstep rows (the packed path's blocks, so that the
 * results are the same bits); acc: M * GEMM_NARROW_COLUMNS floats. */
void cnn_gemm_narrow(int M, long n0, long n1, int K, long kstep, bool trans_a, float alpha,
                     const float *A, long lda, const float *B, long ldb, float beta, float *C,
                     long ldc, float *acc);

#endif
