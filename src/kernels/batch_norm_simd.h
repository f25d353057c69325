/* The fast batch-norm bodies (kernels/batch_norm.c), a template included
 * once per vector width CNN_SIMD_W (kernels/isa.h). No include guard on
 * purpose. */
CNN_ISA_BODY void CNN_SIMD_NAME(stats_body)(const float *x, int64_t rows, int n, int64_t ld,
                                            double *mean, double *var)
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
            for (; k + CNN_SIMD_W <= nb; k += CNN_SIMD_W) {
                const CNN_V s = CNN_VLOAD(shift + k);
                CNN_V s1 = {0}, s2 = {0};
                for (int64_t r = r0; r < r1; r++) {
                    CNN_V d = CNN_VLOAD(xb + r * ld + k) - s;
                    s1 += d;
                    s2 += d * d;
                }
                for (int i = 0; i < CNN_SIMD_W; i++) {
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

CNN_ISA_BODY void CNN_SIMD_NAME(affine_body)(const float *x, float *y, int64_t rows, int n,
                                             int64_t ld, const float *scale, const float *shift)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        float *yr = y + r * ld;
        int k = 0;
        for (; k + CNN_SIMD_W <= n; k += CNN_SIMD_W)
            CNN_VSTORE(yr + k, CNN_VLOAD(xr + k) * CNN_VLOAD(scale + k) + CNN_VLOAD(shift + k));
        for (; k < n; k++)
            yr[k] = xr[k] * scale[k] + shift[k];
    }
}

CNN_ISA_BODY void CNN_SIMD_NAME(grad_sums_body)(const float *x, const float *g, int64_t rows, int n,
                                                int64_t ld, const float *mean, const float *inv_std,
                                                double *sum_g, double *sum_gx)
{
    for (int k = 0; k < n; k++)
        sum_g[k] = sum_gx[k] = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += ROW_BLOCK) {
        const int64_t r1 = r0 + ROW_BLOCK < rows ? r0 + ROW_BLOCK : rows;
        int k = 0;
        for (; k + CNN_SIMD_W <= n; k += CNN_SIMD_W) {
            const CNN_V m = CNN_VLOAD(mean + k), is = CNN_VLOAD(inv_std + k);
            CNN_V s1 = {0}, s2 = {0};
            for (int64_t r = r0; r < r1; r++) {
                CNN_V gv = CNN_VLOAD(g + r * ld + k);
                s1 += gv;
                s2 += gv * ((CNN_VLOAD(x + r * ld + k) - m) * is);
            }
            for (int i = 0; i < CNN_SIMD_W; i++) {
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

CNN_ISA_BODY void CNN_SIMD_NAME(grad_input_body)(const float *x, const float *g, float *dx,
                                                 int64_t rows, int n, int64_t ld, const float *a,
                                                 const float *mean, const float *inv_std,
                                                 const float *mg, const float *mgx)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld, *gr = g + r * ld;
        float *dr = dx + r * ld;
        int k = 0;
        for (; k + CNN_SIMD_W <= n; k += CNN_SIMD_W) {
            CNN_V xh = (CNN_VLOAD(xr + k) - CNN_VLOAD(mean + k)) * CNN_VLOAD(inv_std + k);
            CNN_VSTORE(dr + k,
                       CNN_VLOAD(a + k)
                           * (CNN_VLOAD(gr + k) - CNN_VLOAD(mg + k) - xh * CNN_VLOAD(mgx + k)));
        }
        for (; k < n; k++)
            dr[k] = a[k] * (gr[k] - mg[k] - (xr[k] - mean[k]) * inv_std[k] * mgx[k]);
    }
}
