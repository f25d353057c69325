#include "kernels/batch_norm.h"

/* No fused multiply-add anywhere in this file, whatever the compiler's
 * default (clang's is on, GCC's outside ISO C mode): the vector bodies and
 * scalar tails must round alike (kernels/isa.h). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <string.h>

/* Channels whose double totals live on the stack at once. */
#define CH_BLOCK 64

/* mean and var from the double sums of x - shift and of its square. */
static void stats_finish(const double *sum, const double *sq, int64_t rows, int n,
                         const float *shift, double *mean, double *var)
{
    for (int k = 0; k < n; k++) {
        if (rows <= 0) {
            mean[k] = var[k] = 0;
            continue;
        }
        double d = sum[k] / (double)rows, v = sq[k] / (double)rows - d * d;
        mean[k] = shift[k] + d;
        var[k] = v > 0 ? v : 0;
    }
}

/* ---- The references --------------------------------------------------------- */

void cnn_bn_stats_naive(const float *x, int64_t rows, int n, int64_t ld, double *mean,
                        double *var)
{
    for (int k = 0; k < n; k++) {
        double sum = 0, sq = 0;
        for (int64_t r = 0; r < rows; r++)
            sum += x[r * ld + k];
        double m = rows > 0 ? sum / (double)rows : 0;
        for (int64_t r = 0; r < rows; r++) {
            double d = x[r * ld + k] - m;
            sq += d * d;
        }
        mean[k] = m;
        var[k] = rows > 0 ? sq / (double)rows : 0;
    }
}

void cnn_bn_affine_naive(const float *x, float *y, int64_t rows, int n, int64_t ld,
                         const float *scale, const float *shift)
{
    for (int64_t r = 0; r < rows; r++)
        for (int k = 0; k < n; k++)
            y[r * ld + k] = x[r * ld + k] * scale[k] + shift[k];
}

void cnn_bn_grad_sums_naive(const float *x, const float *g, int64_t rows, int n, int64_t ld,
                            const float *mean, const float *inv_std, double *sum_g,
                            double *sum_gx)
{
    for (int k = 0; k < n; k++) {
        double s1 = 0, s2 = 0;
        for (int64_t r = 0; r < rows; r++) {
            double gv = g[r * ld + k];
            s1 += gv;
            s2 += gv * (((double)x[r * ld + k] - mean[k]) * inv_std[k]);
        }
        sum_g[k] = s1;
        sum_gx[k] = s2;
    }
}

void cnn_bn_grad_input_naive(const float *x, const float *g, float *dx, int64_t rows, int n,
                             int64_t ld, const float *a, const float *mean, const float *inv_std,
                             const float *mg, const float *mgx)
{
    for (int64_t r = 0; r < rows; r++)
        for (int k = 0; k < n; k++) {
            int64_t i = r * ld + k;
            dx[i] = a[k] * (g[i] - mg[k] - (x[i] - mean[k]) * inv_std[k] * mgx[k]);
        }
}

/* ---- The fast versions ---------------------------------------------------------
 * Each vector loop has a scalar tail with the same arithmetic, lane by lane. */

#define CNN_SIMD_W 8
#include "kernels/batch_norm_simd.h"
#undef CNN_SIMD_W
#define CNN_SIMD_W 16
#include "kernels/batch_norm_simd.h"
#undef CNN_SIMD_W

CNN_ISA_CLONES(stats,
               (const float *x, int64_t rows, int n, int64_t ld, double *mean, double *var),
               (x, rows, n, ld, mean, var))

void cnn_bn_stats(cnn_isa isa, const float *x, int64_t rows, int n, int64_t ld, double *mean,
                  double *var)
{
    CNN_ISA_CALL(isa, stats, (x, rows, n, ld, mean, var));
}

CNN_ISA_CLONES(blocks,
               (const float *x, const float *g, int64_t rows, int n, int64_t ld, const float *a,
                const float *is, int64_t b0, int64_t b1, float *sums),
               (x, g, rows, n, ld, a, is, b0, b1, sums))

void cnn_bn_stats_blocks(cnn_isa isa, const float *x, int64_t rows, int n, int64_t ld,
                         const float *shift, int64_t b0, int64_t b1, float *sums)
{
    CNN_ISA_CALL(isa, blocks, (x, NULL, rows, n, ld, shift, NULL, b0, b1, sums));
}

void cnn_bn_stats_join(const float *sums, int64_t rows, int n, const float *shift, double *mean,
                       double *var)
{
    for (int cb = 0; cb < n; cb += CH_BLOCK) {
        const int nb = n - cb < CH_BLOCK ? n - cb : CH_BLOCK;
        double sum[CH_BLOCK], sq[CH_BLOCK];
        cnn_bn_join_blocks(sums + cb, rows, n, nb, sum, sq);
        stats_finish(sum, sq, rows, nb, shift + cb, mean + cb, var + cb);
    }
}

void cnn_bn_join_blocks(const float *sums, int64_t rows, int n, int nb, double *s1, double *s2)
{
    const int64_t blocks = (rows + CNN_BN_ROW_BLOCK - 1) / CNN_BN_ROW_BLOCK;
    for (int k = 0; k < nb; k++)
        s1[k] = s2[k] = 0;
    /* block outer, channel inner: the channels' chains interleave */
    for (int64_t b = 0; b < blocks; b++) {
        const float *a = sums + b * 2 * (int64_t)n, *q = a + n;
        for (int k = 0; k < nb; k++) {
            s1[k] += a[k];
            s2[k] += q[k];
        }
    }
}

CNN_ISA_CLONES(affine,
               (const float *x, float *y, int64_t rows, int n, int64_t ld, const float *scale,
                const float *shift),
               (x, y, rows, n, ld, scale, shift))

void cnn_bn_affine(cnn_isa isa, const float *x, float *y, int64_t rows, int n, int64_t ld,
                   const float *scale, const float *shift)
{
    CNN_ISA_CALL(isa, affine, (x, y, rows, n, ld, scale, shift));
}

CNN_ISA_CLONES(grad_sums,
               (const float *x, const float *g, int64_t rows, int n, int64_t ld,
                const float *mean, const float *inv_std, double *sum_g, double *sum_gx),
               (x, g, rows, n, ld, mean, inv_std, sum_g, sum_gx))

void cnn_bn_grad_sums(cnn_isa isa, const float *x, const float *g, int64_t rows, int n,
                      int64_t ld, const float *mean, const float *inv_std, double *sum_g,
                      double *sum_gx)
{
    CNN_ISA_CALL(isa, grad_sums, (x, g, rows, n, ld, mean, inv_std, sum_g, sum_gx));
}

void cnn_bn_grad_sums_blocks(cnn_isa isa, const float *x, const float *g, int64_t rows, int n,
                             int64_t ld, const float *mean, const float *inv_std, int64_t b0,
                             int64_t b1, float *sums)
{
    CNN_ISA_CALL(isa, blocks, (x, g, rows, n, ld, mean, inv_std, b0, b1, sums));
}

CNN_ISA_CLONES(grad_input,
               (const float *x, const float *g, float *dx, int64_t rows, int n, int64_t ld,
                const float *a, const float *mean, const float *inv_std, const float *mg,
                const float *mgx),
               (x, g, dx, rows, n, ld, a, mean, inv_std, mg, mgx))

void cnn_bn_grad_input(cnn_isa isa, const float *x, const float *g, float *dx, int64_t rows,
                       int n, int64_t ld, const float *a, const float *mean,
                       const float *inv_std, const float *mg, const float *mgx)
{
    CNN_ISA_CALL(isa, grad_input, (x, g, dx, rows, n, ld, a, mean, inv_std, mg, mgx));
}
