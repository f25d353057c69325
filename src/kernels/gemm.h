/* The one matrix-multiply interface that Conv2D (through im2col) and Dense
 * run on. Row-major throughout:
 *   C[M x N] = alpha * op(A)[M x K] * op(B)[K x N] + beta * C
 * op(A) = A (M x K, row stride lda) or, with trans_a, A^T where A is K x M.
 * op(B) = B (K x N, row stride ldb) or, with trans_b, B^T where B is N x K.
 * beta == 0 means C is overwritten (its old contents may be NaN). */
#ifndef CNN_KERNELS_GEMM_H
#define CNN_KERNELS_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"

/* The obviously-correct reference: triple loop, double accumulation. */
void cnn_gemm_naive(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta, float *C,
                    int ldc);

/* Packing buffers for every worker of a pool, allocated once. */
typedef struct cnn_gemm_ctx cnn_gemm_ctx;
cnn_status cnn_gemm_ctx_create(cnn_gemm_ctx **out, cnn_pool *pool);
void cnn_gemm_ctx_free(cnn_gemm_ctx *ctx);
/* Route every cnn_gemm call of this context to the naive kernel (tests). */
void cnn_gemm_ctx_use_naive(cnn_gemm_ctx *ctx, bool naive);
/* Name of the kernel in use: "naive", "avx512", "avx2", "generic". */
const char *cnn_gemm_ctx_kernel_name(const cnn_gemm_ctx *ctx);
/* Tests and benchmarks: make cnn_gemm use the micro-kernel called name
 * ("avx512", "avx2" or "generic") instead of the fastest one. Returns false,
 * changing nothing, if the name is unknown or this CPU cannot run it. */
bool cnn_gemm_ctx_force_kernel(cnn_gemm_ctx *ctx, const char *name);

/* The fast path, multi-threaded over ctx's pool. Results do not depend on
 * the number of threads (each element is summed in the same order). */
void cnn_gemm(cnn_gemm_ctx *ctx, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* The same product on the calling thread alone, with worker ith's packing
 * buffer (ith < the pool's thread count): for callers that already run on
 * the pool and give each worker its own rows (Conv2D's fused im2col).
 * Bit-identical to cnn_gemm. */
void cnn_gemm_serial(cnn_gemm_ctx *ctx, int ith, bool trans_a, bool trans_b, int M, int N, int K,
                     float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                     float *C, int ldc);

/* op(B) (K x N) packed once for many cnn_gemm_serial_packed_b calls that
 * share it (Conv2D's fused blocks, each worker's, all read the kernel):
 * dst holds cnn_gemm_packed_b_floats(K, N) floats, 64-byte aligned. The
 * packed B belongs to ctx's current micro-kernel; with the naive kernel
 * nothing is packed and the product reads B itself. Bit-identical to
 * cnn_gemm. */
size_t cnn_gemm_packed_b_floats(int K, int N);
void cnn_gemm_pack_b(const cnn_gemm_ctx *ctx, bool trans_b, int N, int K, const float *B,
                     int ldb, float *dst);
void cnn_gemm_serial_packed_b(cnn_gemm_ctx *ctx, int ith, bool trans_a, bool trans_b, int M,
                              int N, int K, float alpha, const float *A, int lda,
                              const float *B, int ldb, const float *bpacked, float beta,
                              float *C, int ldc);

/* Prefetches (into L2) part `part` of `parts` of the rows of the source of
 * op(B)[pc:+kc, jc:+nc] (B as cnn_gemm takes it): the block a driver will
 * pack next, spread over the current block's row panels so that its memory
 * traffic overlaps the products (gemm.c and gemm_bf16.c's drivers). */
static inline void cnn_gemm_prefetch_b(const float *B, long ldb, bool trans_b, long pc, int kc,
                                       long jc, int nc, long part, long parts)
{
    long lo = trans_b ? jc : pc, len = trans_b ? nc : kc;
    long width = trans_b ? kc : nc, col = trans_b ? pc : jc;
    for (long r = lo + len * part / parts; r < lo + len * (part + 1) / parts; r++) {
        const float *row = B + r * ldb + col;
        for (long q = 0; q < width; q += 16)
            __builtin_prefetch(row + q, 0, 2);
    }
}

/* C[M x N] = A * B + beta * C on the calling thread (worker ith's buffer),
 * with A gathered: A(i, k) = rows[i][koff[k]], so a convolution reads its
 * input in place instead of through im2col columns; B packed by
 * cnn_gemm_pack_b (not transposed). Each element is summed as cnn_gemm
 * sums it, bit for bit. Only beside the AVX-512 micro-kernel:
 * cnn_gemm_gather_supported says whether it can run. */
bool cnn_gemm_gather_supported(const cnn_gemm_ctx *ctx);
/* Rows per gathered panel (near-equal panels of at most this many): with
 * 12, the 12 row pointers, koff and the loop counters exceed the 16
 * general registers and the inner loop reloads some from the stack every
 * k; 8 to 10 rows run at 99% of the FMA peak on Zen 4, 11 and 12 at
 * 93-95% (a loop of conv2-shaped panels over a padded band). */
enum { CNN_GEMM_GATHER_ROWS = 10 };
void cnn_gemm_gather(cnn_gemm_ctx *ctx, int ith, int M, int N, int K, const float *const *rows,
                     const int *koff, const float *bpacked, float beta, float *C, int ldc);
/* The same where every row of A is zero outside the nspans column spans
 * [spans[2s], spans[2s + 1]) (sorted, disjoint): the columns out of them
 * are skipped, so a convolution does not multiply the taps that fall on
 * its zero padding. The skipped products are exact zeros: the same bits as
 * cnn_gemm_gather (whose weights are finite). */
void cnn_gemm_gather_spans(cnn_gemm_ctx *ctx, int ith, int M, int N, int K,
                           const float *const *rows, const int *koff, const int *spans,
                           int nspans, const float *bpacked, float beta, float *C, int ldc);

/* ---- bfloat16 (gemm_bf16.c) ------------------------------------------------
 * The mixed_bfloat16 policy's products: op(A) and op(B) rounded to bfloat16
 * (round to nearest even), exact products, float sums; the exact arithmetic
 * is stated at the top of gemm_bf16.c and by cnn_gemm_bf16_reference, which
 * the AVX-512 BF16 kernel matches bit for bit. Without AVX512_BF16 (or after
 * cnn_gemm_ctx_allow_bf16(ctx, false)) cnn_gemm_bf16 is cnn_gemm; with
 * cnn_gemm_ctx_use_naive it is the reference. Thread count never changes
 * the results. */
void cnn_gemm_bf16(cnn_gemm_ctx *ctx, bool trans_a, bool trans_b, int M, int N, int K,
                   float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc);
void cnn_gemm_bf16_reference(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                             const float *A, int lda, const float *B, int ldb, float beta,
                             float *C, int ldc);
/* This CPU has vdpbf16ps (and the OS saves zmm state). */
bool cnn_gemm_bf16_supported(void);
/* The length of the K blocks (even), a function of K only. */
int cnn_gemm_bf16_kstep(int K);
/* float -> bfloat16 bits as vcvtne2ps2bf16 rounds, and back (exact). */
uint16_t cnn_bf16_from_float(float f);
float cnn_bf16_to_float(uint16_t h);
/* Tests: let cnn_gemm_bf16 use bfloat16 on this CPU (the default when it
 * can) or make it float32; returns whether bfloat16 is now in use. */
bool cnn_gemm_ctx_allow_bf16(cnn_gemm_ctx *ctx, bool allow);

/* Conv2D's implicit GEMM in bfloat16, on the calling thread (worker ith's
 * buffer), as cnn_gemm_pack_b / cnn_gemm_serial_packed_b / cnn_gemm_gather
 * are in float: op(B) (K x N, not transposed) packed once into
 * cnn_gemm_bf16_packed_b_floats(K, N) floats (64-byte aligned); then
 * C[M x N] = A * B + beta * C with A(i, k) = A[i * lda + k] or gathered,
 * rows[i][koff[k]]. Each element is summed as cnn_gemm_bf16 sums it, bit for
 * bit. Only where cnn_gemm_bf16_gather_supported (AVX512_BF16, not naive). */
bool cnn_gemm_bf16_gather_supported(const cnn_gemm_ctx *ctx);
size_t cnn_gemm_bf16_packed_b_floats(int K, int N);
void cnn_gemm_bf16_pack_b(const cnn_gemm_ctx *ctx, int N, int K, const float *B, int ldb,
                          float *dst);
void cnn_gemm_bf16_serial_packed_b(cnn_gemm_ctx *ctx, int ith, int M, int N, int K,
                                   const float *A, int lda, const float *bpacked, float beta,
                                   float *C, int ldc);
void cnn_gemm_bf16_gather(cnn_gemm_ctx *ctx, int ith, int M, int N, int K,
                          const float *const *rows, const int *koff, const float *bpacked,
                          float beta, float *C, int ldc);
/* The same where every row of A is zero outside the nspans column spans
 * [spans[2s], spans[2s + 1]) (sorted, disjoint), as cnn_gemm_gather_spans:
 * the pairs of k with no column in a span are skipped (a span's ends are
 * rounded out to whole pairs). The same bits as cnn_gemm_bf16 on that A,
 * the sign of a zero included (ukernel_bf16_spans), where B is finite. */
void cnn_gemm_bf16_gather_spans(cnn_gemm_ctx *ctx, int ith, int M, int N, int K,
                                const float *const *rows, const int *koff, const int *spans,
                                int nspans, const float *bpacked, float beta, float *C, int ldc);

/* The same with A(i, k) = a[i + koff[k]] in bfloat16 bits (M adjacent rows:
 * Conv2D's backward-weights, one tap's channels over pixels, from a band
 * converted once by cnn_bf16_convert); the same bits as cnn_gemm_bf16 on
 * those values. */
void cnn_gemm_bf16_gather16(cnn_gemm_ctx *ctx, int ith, int M, int N, int K, const uint16_t *a,
                            const int *koff, const float *bpacked, float beta, float *C, int ldc);
/* The same with A zero outside the spans (cnn_gemm_bf16_gather_spans). */
void cnn_gemm_bf16_gather16_spans(cnn_gemm_ctx *ctx, int ith, int M, int N, int K,
                                  const uint16_t *a, const int *koff, const int *spans,
                                  int nspans, const float *bpacked, float beta, float *C, int ldc);
/* dst[i] = cnn_bf16_from_float(src[i]), i < n (vcvtne2ps2bf16 where it can). */
void cnn_bf16_convert(const float *src, uint16_t *dst, long n);
/* dst[i] = x0[i] | x1[i] << 16 (x1 NULL: zero high halves): pairs of
 * bfloat16 values as words. */
void cnn_bf16_interleave(const uint16_t *x0, const uint16_t *x1, uint32_t *dst, long n);
/* cnn_gemm_bf16_gather_spans where A is bfloat16 bits, A(i, k) =
 * rows[i][koff[k]], and every pair (k, k + 1), k even, is adjacent
 * (koff[k + 1] == koff[k] + 1): its words are read in place, nothing is
 * packed. K even. The same bits. */
void cnn_gemm_bf16_gather_pairs_spans(cnn_gemm_ctx *ctx, int M, int N, int K,
                                      const uint16_t *const *rows, const int *koff,
                                      const int *spans, int nspans, const float *bpacked,
                                      float beta, float *C, int ldc);

/* The micro-kernels' dispatch on m, the rows of a tile (1 to 12; gemm.c and
 * gemm_bf16.c): BODY(mode, rows, nv) instantiated once per row count. */
#define GEMM_DISPATCH_ROWS12(BODY, mode, nv)                                      \
    switch (m) {                                                                  \
    case 1: BODY(mode, 1, nv); return;                                            \
    case 2: BODY(mode, 2, nv); return;                                            \
    case 3: BODY(mode, 3, nv); return;                                            \
    case 4: BODY(mode, 4, nv); return;                                            \
    case 5: BODY(mode, 5, nv); return;                                            \
    case 6: BODY(mode, 6, nv); return;                                            \
    case 7: BODY(mode, 7, nv); return;                                            \
    case 8: BODY(mode, 8, nv); return;                                            \
    case 9: BODY(mode, 9, nv); return;                                            \
    case 10: BODY(mode, 10, nv); return;                                          \
    case 11: BODY(mode, 11, nv); return;                                          \
    default: BODY(mode, 12, nv); return;                                          \
    }

/* For gemm_bf16.c, which shares the context's pool and packing buffers. */
bool cnn_gemm_ctx_is_naive(const cnn_gemm_ctx *ctx);
bool cnn_gemm_ctx_has_bf16(const cnn_gemm_ctx *ctx);
cnn_pool *cnn_gemm_ctx_pool(cnn_gemm_ctx *ctx);
float *cnn_gemm_ctx_buffer(cnn_gemm_ctx *ctx, int ith); /* 64-byte aligned */
size_t cnn_gemm_bf16_buffer_floats(void);               /* needed per thread */

#endif
