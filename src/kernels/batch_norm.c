#include "kernels/batch_norm.h"

#include <string.h>

/* Rows summed in float before joining the double totals. */
#define ROW_BLOCK 64
/* Channels whose double totals live on the stack at once. */
#define CH_BLOCK 64

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

CNN_ISA_BODY void stats_body(const float *x, int64_t rows, int n, int64_t ld, double *mean,
                             double *var)
{
    if (rows <= 0) {
        for (int k = 0; k < n; k++)
            mean[k] = var[k] = 0;
        return;
    }
    for (int cb = 0; cb < n; cb += CH_BLOCK) {
        const int nb = n - cb < CH_BLOCK ? n - cb : CH_BLOCK;
        const float *xb = x + cb;
        double sum[CH_BLOCK] = {0}, sq[CH_BLOCK] = {0};
        float shift[CH_BLOCK];
        memcpy(shift, xb, (size_t)nb * sizeof(float));
        for (int64_t r0 = 0; r0 < rows; r0 += ROW_BLOCK) {
            const int64_t r1 = r0 + ROW_BLOCK < rows ? r0 + ROW_BLOCK : rows;
            int k = 0;
            for (; k + 16 <= nb; k += 16) {
                const cnn_v16f s = CNN_V16_LOAD(shift + k);
                cnn_v16f s1 = {0}, s2 = {0};
                for (int64_t r = r0; r < r1; r++) {
                    cnn_v16f d = CNN_V16_LOAD(xb + r * ld + k) - s;
                    s1 += d;
                    s2 += d * d;
                }
                for (int i = 0; i < 16; i++) {
                    sum[k + i] += s1[i];
                    sq[k + i] += s2[i];
                }
            }
            for (; k < nb; k++) {
                float s1 = 0, s2 = 0;
                for (int64_t r = r0; r < r1; r++) {
                    float d = xb[r * ld + k] - shift[k];
                    s1 += d;
                    s2 += d * d;
                }
                sum[k] += s1;
                sq[k] += s2;
            }
        }
        for (int k = 0; k < nb; k++) {
            double d = sum[k] / (double)rows, v = sq[k] / (double)rows - d * d;
            mean[cb + k] = shift[k] + d;
            var[cb + k] = v > 0 ? v : 0;
        }
    }
}
CNN_ISA_CLONES(stats,
               (const float *x, int64_t rows, int n, int64_t ld, double *mean, double *var),
               (x, rows, n, ld, mean, var))

void cnn_bn_stats(cnn_isa isa, const float *x, int64_t rows, int n, int64_t ld, double *mean,
                  double *var)
{
    CNN_ISA_CALL(isa, stats, (x, rows, n, ld, mean, var));
}

CNN_ISA_BODY void affine_body(const float *x, float *y, int64_t rows, int n, int64_t ld,
                              const float *scale, const float *shift)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        float *yr = y + r * ld;
        int k = 0;
        for (; k + 16 <= n; k += 16)
            CNN_V16_STORE(yr + k, CNN_V16_LOAD(xr + k) * CNN_V16_LOAD(scale + k)
                                      + CNN_V16_LOAD(shift + k));
        for (; k < n; k++)
            yr[k] = xr[k] * scale[k] + shift[k];
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

CNN_ISA_BODY void grad_sums_body(const float *x, const float *g, int64_t rows, int n, int64_t ld,
                                 const float *mean, const float *inv_std, double *sum_g,
                                 double *sum_gx)
{
    for (int k = 0; k < n; k++)
        sum_g[k] = sum_gx[k] = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += ROW_BLOCK) {
        const int64_t r1 = r0 + ROW_BLOCK < rows ? r0 + ROW_BLOCK : rows;
        int k = 0;
        for (; k + 16 <= n; k += 16) {
            const cnn_v16f m = CNN_V16_LOAD(mean + k), is = CNN_V16_LOAD(inv_std + k);
            cnn_v16f s1 = {0}, s2 = {0};
            for (int64_t r = r0; r < r1; r++) {
                cnn_v16f gv = CNN_V16_LOAD(g + r * ld + k);
                s1 += gv;
                s2 += gv * ((CNN_V16_LOAD(x + r * ld + k) - m) * is);
            }
            for (int i = 0; i < 16; i++) {
                sum_g[k + i] += s1[i];
                sum_gx[k + i] += s2[i];
            }
        }
        for (; k < n; k++) {
            float s1 = 0, s2 = 0;
            for (int64_t r = r0; r < r1; r++) {
                float gv = g[r * ld + k];
                s1 += gv;
                s2 += gv * ((x[r * ld + k] - mean[k]) * inv_std[k]);
            }
            sum_g[k] += s1;
            sum_gx[k] += s2;
        }
    }
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

CNN_ISA_BODY void grad_input_body(const float *x, const float *g, float *dx, int64_t rows, int n,
                                  int64_t ld, const float *a, const float *mean,
                                  const float *inv_std, const float *mg, const float *mgx)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld, *gr = g + r * ld;
        float *dr = dx + r * ld;
        int k = 0;
        for (; k + 16 <= n; k += 16) {
            cnn_v16f xh = (CNN_V16_LOAD(xr + k) - CNN_V16_LOAD(mean + k)) * CNN_V16_LOAD(inv_std + k);
            CNN_V16_STORE(dr + k, CNN_V16_LOAD(a + k) * (CNN_V16_LOAD(gr + k) - CNN_V16_LOAD(mg + k)
                                                         - xh * CNN_V16_LOAD(mgx + k)));
        }
        for (; k < n; k++)
            dr[k] = a[k] * (gr[k] - mg[k] - (xr[k] - mean[k]) * inv_std[k] * mgx[k]);
    }
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
