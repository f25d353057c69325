/* The fast batch-norm bodies (kernels/batch_norm.c), a template included
 * once per vector width CNN_SIMD_W (kernels/isa.h). No include guard on
 * purpose. The 16-wide bodies use the 8-wide copies for a remainder of 8
 * or more channels (MobileNet's first layers have 8 in all). */

/* One block's shifted sums of CNN_SIMD_W channels: rows [r0, r1) of
 * x - shift and of its square, in float, in row order. */
CNN_ISA_BODY void CNN_SIMD_NAME(stats_lanes)(const float *x, int64_t r0, int64_t r1, int64_t ld,
                                             const float *shift, float *s1out, float *s2out)
{
    const CNN_V s = CNN_VLOAD(shift);
    CNN_V s1 = {0}, s2 = {0};
    for (int64_t r = r0; r < r1; r++) {
        CNN_V d = CNN_VLOAD(x + r * ld) - s;
        s1 += d;
        s2 += d * d;
    }
    CNN_VSTORE(s1out, s1);
    CNN_VSTORE(s2out, s2);
}

/* One block's backward sums of CNN_SIMD_W channels over rows [r0, r1). */
CNN_ISA_BODY void CNN_SIMD_NAME(grad_lanes)(const float *x, const float *g, int64_t r0, int64_t r1,
                                            int64_t ld, const float *mean, const float *inv_std,
                                            float *s1out, float *s2out)
{
    const CNN_V m = CNN_VLOAD(mean), is = CNN_VLOAD(inv_std);
    CNN_V s1 = {0}, s2 = {0};
    for (int64_t r = r0; r < r1; r++) {
        CNN_V gv = CNN_VLOAD(g + r * ld);
        s1 += gv;
        s2 += gv * ((CNN_VLOAD(x + r * ld) - m) * is);
    }
    CNN_VSTORE(s1out, s1);
    CNN_VSTORE(s2out, s2);
}

/* Blocks [b0, b1) of CNN_BN_ROW_BLOCK rows, block b's 2n float sums at
 * sums + (b - b0) * 2n: with g NULL (statistics) the sums of x - a and of
 * its square (a: the shift), else those of g and of g xhat (a: the mean,
 * is: inv_std). */
CNN_ISA_BODY void CNN_SIMD_NAME(blocks_body)(const float *x, const float *g, int64_t rows, int n,
                                             int64_t ld, const float *a, const float *is,
                                             int64_t b0, int64_t b1, float *sums)
{
    for (int64_t b = b0; b < b1; b++) {
        const int64_t r0 = b * CNN_BN_ROW_BLOCK;
        const int64_t r1 = r0 + CNN_BN_ROW_BLOCK < rows ? r0 + CNN_BN_ROW_BLOCK : rows;
        float *s1 = sums + (b - b0) * 2 * n, *s2 = s1 + n;
        int k = 0;
        for (; k + CNN_SIMD_W <= n; k += CNN_SIMD_W) {
            if (g)
                CNN_SIMD_NAME(grad_lanes)(x + k, g + k, r0, r1, ld, a + k, is + k, s1 + k, s2 + k);
            else
                CNN_SIMD_NAME(stats_lanes)(x + k, r0, r1, ld, a + k, s1 + k, s2 + k);
        }
#if CNN_SIMD_W == 16
        for (; k + 8 <= n; k += 8) {
            if (g)
                grad_lanes_8(x + k, g + k, r0, r1, ld, a + k, is + k, s1 + k, s2 + k);
            else
                stats_lanes_8(x + k, r0, r1, ld, a + k, s1 + k, s2 + k);
        }
#endif
        for (; k < n; k++) {
            float t1 = 0, t2 = 0;
            for (int64_t r = r0; r < r1; r++) {
                if (g) {
                    float gv = g[r * ld + k];
                    t1 += gv;
                    t2 += gv * ((x[r * ld + k] - a[k]) * is[k]);
                } else {
                    float d = x[r * ld + k] - a[k];
                    t1 += d;
                    t2 += d * d;
                }
            }
            s1[k] = t1;
            s2[k] = t2;
        }
    }
}

/* The whole reduction (blocks_body's sums, a and is as there): each
 * block's float sums joined in double in block order into t1, t2 (n
 * each), as cnn_bn_join_blocks does, so a caller splitting the blocks
 * between threads gets these bits. */
CNN_ISA_BODY void CNN_SIMD_NAME(sums_body)(const float *x, const float *g, int64_t rows, int n,
                                           int64_t ld, const float *a, const float *is,
                                           double *t1, double *t2)
{
    const int64_t blocks = (rows + CNN_BN_ROW_BLOCK - 1) / CNN_BN_ROW_BLOCK;
    for (int cb = 0; cb < n; cb += CH_BLOCK) {
        const int nb = n - cb < CH_BLOCK ? n - cb : CH_BLOCK;
        double s1[CH_BLOCK] = {0}, s2[CH_BLOCK] = {0};
        float block[2 * CH_BLOCK];
        for (int64_t b = 0; b < blocks; b++) {
            CNN_SIMD_NAME(blocks_body)(x + cb, g ? g + cb : NULL, rows, nb, ld, a + cb,
                                       is ? is + cb : NULL, b, b + 1, block);
            for (int k = 0; k < nb; k++) {
                s1[k] += block[k];
                s2[k] += block[nb + k];
            }
        }
        memcpy(t1 + cb, s1, (size_t)nb * sizeof(double));
        memcpy(t2 + cb, s2, (size_t)nb * sizeof(double));
    }
}

/* The statistics, shifted by x's row 0. */
CNN_ISA_BODY void CNN_SIMD_NAME(stats_body)(const float *x, int64_t rows, int n, int64_t ld,
                                            double *mean, double *var)
{
    CNN_SIMD_NAME(sums_body)(x, NULL, rows, n, ld, x, NULL, mean, var);
    stats_finish(mean, var, rows, n, x, mean, var); /* in place, channel by channel */
}

CNN_ISA_BODY void CNN_SIMD_NAME(affine_lanes)(const float *xr, float *yr, const float *scale,
                                              const float *shift)
{
    CNN_VSTORE(yr, CNN_VLOAD(xr) * CNN_VLOAD(scale) + CNN_VLOAD(shift));
}

CNN_ISA_BODY void CNN_SIMD_NAME(affine_body)(const float *x, float *y, int64_t rows, int n,
                                             int64_t ld, const float *scale, const float *shift)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        float *yr = y + r * ld;
        int k = 0;
        for (; k + CNN_SIMD_W <= n; k += CNN_SIMD_W)
            CNN_SIMD_NAME(affine_lanes)(xr + k, yr + k, scale + k, shift + k);
#if CNN_SIMD_W == 16
        for (; k + 8 <= n; k += 8)
            affine_lanes_8(xr + k, yr + k, scale + k, shift + k);
#endif
        for (; k < n; k++)
            yr[k] = xr[k] * scale[k] + shift[k];
    }
}

CNN_ISA_BODY void CNN_SIMD_NAME(grad_sums_body)(const float *x, const float *g, int64_t rows, int n,
                                                int64_t ld, const float *mean, const float *inv_std,
                                                double *sum_g, double *sum_gx)
{
    CNN_SIMD_NAME(sums_body)(x, g, rows, n, ld, mean, inv_std, sum_g, sum_gx);
}

CNN_ISA_BODY void CNN_SIMD_NAME(grad_input_lanes)(const float *xr, const float *gr, float *dr,
                                                  const float *a, const float *mean,
                                                  const float *inv_std, const float *mg,
                                                  const float *mgx)
{
    CNN_V xh = (CNN_VLOAD(xr) - CNN_VLOAD(mean)) * CNN_VLOAD(inv_std);
    CNN_VSTORE(dr, CNN_VLOAD(a) * (CNN_VLOAD(gr) - CNN_VLOAD(mg) - xh * CNN_VLOAD(mgx)));
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
        for (; k + CNN_SIMD_W <= n; k += CNN_SIMD_W)
            CNN_SIMD_NAME(grad_input_lanes)(xr + k, gr + k, dr + k, a + k, mean + k, inv_std + k,
                                            mg + k, mgx + k);
#if CNN_SIMD_W == 16
        for (; k + 8 <= n; k += 8)
            grad_input_lanes_8(xr + k, gr + k, dr + k, a + k, mean + k, inv_std + k, mg + k,
                               mgx + k);
#endif
        for (; k < n; k++)
            dr[k] = a[k] * (gr[k] - mg[k] - (xr[k] - mean[k]) * inv_std[k] * mgx[k]);
    }
}
