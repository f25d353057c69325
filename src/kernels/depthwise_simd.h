/* The fast depthwise bodies for depth multiplier 1 (kernels/depthwise.c),
 * a template included once per vector width CNN_SIMD_W (kernels/isa.h).
 * No include guard on purpose. */

/* One pixel's CNN_SIMD_W channels from x0, k0 (its first in-bounds tap):
 * the nky x nkx taps summed in a register, in the naive loop's tap order.
 * The 16-wide bodies use the 8-wide copy for a remainder of 8 or more. */
CNN_ISA_BODY void CNN_SIMD_NAME(forward_lanes)(const float *xr, const float *kr, int nky,
                                               int nkx, int64_t row_step, int64_t col_step,
                                               int64_t krow_step, int C, float *dm)
{
    CNN_V acc = {0};
    for (int ky = 0; ky < nky; ky++, xr += row_step, kr += krow_step)
        for (int kx = 0; kx < nkx; kx++)
            acc += CNN_VLOAD(xr + kx * col_step) * CNN_VLOAD(kr + (int64_t)kx * C);
    CNN_VSTORE(dm, acc);
}

/* Forward: each pixel's in-bounds taps summed in a register per
 * CNN_SIMD_W channels, in the naive loop's tap order. */
CNN_ISA_BODY void CNN_SIMD_NAME(forward_body)(const cnn_conv_geom *g, const float *x,
                                              const float *kernel, int64_t m0, int64_t m1, float *d)
{
    const int C = g->c, KW = g->kw;
    const int64_t row_step = (int64_t)g->dh * g->w * C, col_step = (int64_t)g->dw * C;
    if (m0 >= m1)
        return;
    dw_walk p;
    walk_start(g, m0, &p);
    for (int64_t m = m0; m < m1; m++, walk_next(g, &p)) {
        float *dm = d + (m - m0) * C;
        const int nky = p.ky1 - p.ky0, nkx = p.kx1 - p.kx0;
        if (nky <= 0 || nkx <= 0) { /* every tap in the padding */
            memset(dm, 0, (size_t)C * sizeof(float));
            continue;
        }
        const float *x0 = x + walk_tap(g, &p, p.ky0, p.kx0) * C;
        const float *k0 = kernel + (int64_t)(p.ky0 * KW + p.kx0) * C;
        int c = 0;
        for (; c + CNN_SIMD_W <= C; c += CNN_SIMD_W)
            CNN_SIMD_NAME(forward_lanes)(x0 + c, k0 + c, nky, nkx, row_step, col_step,
                                         (int64_t)KW * C, C, dm + c);
#if CNN_SIMD_W == 16 /* 8 channels left (MobileNet's first layers have 8 in all) */
        for (; c + 8 <= C; c += 8)
            forward_lanes_8(x0 + c, k0 + c, nky, nkx, row_step, col_step, (int64_t)KW * C, C,
                            dm + c);
#endif
        for (; c < C; c++) {
            float acc = 0;
            const float *xr = x0 + c, *kr = k0 + c;
            for (int ky = 0; ky < nky; ky++, xr += row_step, kr += (int64_t)KW * C)
                for (int kx = 0; kx < nkx; kx++)
                    acc += xr[kx * col_step] * kr[(int64_t)kx * C];
            dm[c] = acc;
        }
    }
}

/* One tap's CNN_SIMD_W channels along n columns of an output row: the
 * dkernel vector summed in a register, dx (may be NULL) accumulated. */
CNN_ISA_BODY void CNN_SIMD_NAME(backward_lanes)(const float *xt, const float *k, const float *gr,
                                                int n, int64_t t_step, int C, float *dk,
                                                float *dxt)
{
    CNN_V acc = CNN_VLOAD(dk);
    const CNN_V kv = CNN_VLOAD(k);
    for (int i = 0; i < n; i++, xt += t_step, gr += C) {
        const CNN_V gv = CNN_VLOAD(gr);
        acc += CNN_VLOAD(xt) * gv;
        if (dxt) {
            CNN_VSTORE(dxt, CNN_VLOAD(dxt) + kv * gv);
            dxt += t_step;
        }
    }
    CNN_VSTORE(dk, acc);
}

/* Backward over one segment of an output row (sample n, row oy, columns
 * [ox0, ox1)), dd pointing at column ox0: for each tap, the columns whose
 * tap is in bounds, each dkernel vector summed in a register along the
 * row. dkernel still sums pixels in increasing order, and taking kx from
 * the right makes each dx cell, too, receive its terms in the naive
 * loop's (pixel) order, so both match the naive twin to the bit. */
CNN_ISA_BODY void CNN_SIMD_NAME(backward_row)(const cnn_conv_geom *g, const float *x,
                                              const float *kernel, const float *dd, int64_t n,
                                              int oy, int ox0, int ox1, int c0, int c1,
                                              float *dkernel, float *dx)
{
    const int C = g->c, KW = g->kw;
    int ky0, ky1;
    tap_range(oy, g->sh, g->pad_top, g->dh, g->kh, g->h, &ky0, &ky1);
    for (int ky = ky0; ky < ky1; ky++) {
        const int64_t row = (n * g->h + oy * g->sh - g->pad_top + ky * g->dh) * (int64_t)g->w;
        for (int kx = KW - 1; kx >= 0; kx--) {
            /* columns ox with 0 <= ox * sw - pad_left + kx * dw < w */
            const int shift = g->pad_left - kx * g->dw;
            int lo = shift <= 0 ? 0 : (shift + g->sw - 1) / g->sw;
            int hi = g->w - 1 + shift < 0 ? 0 : (g->w - 1 + shift) / g->sw + 1;
            lo = lo > ox0 ? lo : ox0;
            hi = hi < ox1 ? hi : ox1;
            if (lo >= hi)
                continue;
            const int64_t ko = (int64_t)(ky * KW + kx) * C;
            const int64_t t0 = (row + (int64_t)lo * g->sw - shift) * C, t_step = (int64_t)g->sw * C;
            const float *ddr = dd + (int64_t)(lo - ox0) * C;
            int c = c0;
            for (; c + CNN_SIMD_W <= c1; c += CNN_SIMD_W)
                CNN_SIMD_NAME(backward_lanes)(x + t0 + c, kernel + ko + c, ddr + c, hi - lo,
                                              t_step, C, dkernel + ko + c,
                                              dx ? dx + t0 + c : NULL);
#if CNN_SIMD_W == 16
            for (; c + 8 <= c1; c += 8)
                backward_lanes_8(x + t0 + c, kernel + ko + c, ddr + c, hi - lo, t_step, C,
                                 dkernel + ko + c, dx ? dx + t0 + c : NULL);
#endif
            for (; c < c1; c++) {
                float acc = dkernel[ko + c];
                const float kv = kernel[ko + c], *xt = x + t0 + c, *gr = ddr + c;
                float *dxt = dx ? dx + t0 + c : NULL;
                for (int ox = lo; ox < hi; ox++, xt += t_step, gr += C) {
                    acc += *xt * *gr;
                    if (dxt) {
                        *dxt += kv * *gr;
                        dxt += t_step;
                    }
                }
                dkernel[ko + c] = acc;
            }
        }
    }
}

/* Pixels [m0, m1) as segments of output rows. */
CNN_ISA_BODY void CNN_SIMD_NAME(backward_body)(const cnn_conv_geom *g, const float *x,
                                               const float *kernel, const float *dd, int64_t m0,
                                               int64_t m1, int c0, int c1, float *dkernel,
                                               float *dx)
{
    for (int64_t m = m0; m < m1;) {
        int64_t n;
        int oy, ox;
        pixel(g, m, &n, &oy, &ox);
        int ox1 = m1 - m < g->ow - ox ? ox + (int)(m1 - m) : g->ow;
        CNN_SIMD_NAME(backward_row)
        (g, x, kernel, dd + (m - m0) * g->c, n, oy, ox, ox1, c0, c1, dkernel, dx);
        m += ox1 - ox;
    }
}
