/* The fast direct-convolution bodies (kernels/conv_direct.c), a template
 * included once per vector width CNN_SIMD_W (kernels/isa.h), after
 * conv_direct.c has defined, for that width: dmask_W(n) (the first n
 * lanes), dload_W(p, mask), dstore_W(p, v, mask), dfma_W(a, b, c) =
 * a * b + c, dset1_W(s) (s in every lane), DIRECT_TILE1 / DIRECT_TILE2
 * (register tile rows for one and for two vectors of filters) and
 * DIRECT_BODY (always-inline, with the width's target). No include guard
 * on purpose. */

#define DLOAD CNN_SIMD_NAME(dload)
#define DSTORE CNN_SIMD_NAME(dstore)
#define DFMA CNN_SIMD_NAME(dfma)
#define DMASK CNN_SIMD_CAT(dmask_t, CNN_SIMD_W)
#define DSET1 CNN_SIMD_NAME(dset1)

/* R output pixels of one row (pixel r's taps at x0 + r * xs + tap offset)
 * for the NV filter vectors at k (masks m[]), into y (row stride F). */
DIRECT_BODY void CNN_SIMD_NAME(fwd_tile)(const int R, const int NV, const direct_shape *d,
                                          const float *x0, const float *k, const float *bias,
                                          const DMASK *m, float *y)
{
    CNN_V acc[12][2];
#pragma GCC unroll 12
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            acc[r][v] = (CNN_V){0};
    for (int ky = 0; ky < d->kh; ky++) {
        const float *xr = x0 + ky * d->row_step;
        for (int kx = 0; kx < d->kw; kx++, xr += d->col_step) {
            for (int c = 0; c < d->c; c++, k += d->f) {
                CNN_V w[2];
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++)
                    w[v] = DLOAD(k + v * CNN_SIMD_W, m[v]);
#pragma GCC unroll 12
                for (int r = 0; r < R; r++) {
                    CNN_V xv = DSET1(xr[r * d->xs + c]);
#pragma GCC unroll 2
                    for (int v = 0; v < NV; v++)
                        acc[r][v] = DFMA(xv, w[v], acc[r][v]);
                }
            }
        }
    }
    CNN_V b[2] = {{0}, {0}};
    if (bias)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            b[v] = DLOAD(bias + v * CNN_SIMD_W, m[v]);
#pragma GCC unroll 12
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            DSTORE(y + r * d->f + v * CNN_SIMD_W, bias ? acc[r][v] + b[v] : acc[r][v], m[v]);
}

/* Output rows [r0, r1): each row in tiles of the largest register tile,
 * the last one smaller; filters in groups of up to two vectors. */
DIRECT_BODY void CNN_SIMD_NAME(forward_body)(const direct_shape *d, const float *xp,
                                              const float *kernel, const float *bias,
                                              int64_t r0, int64_t r1, float *y)
{
    const int F = d->f;
    for (int f0 = 0; f0 < F; f0 += 2 * CNN_SIMD_W) {
        const int nf = F - f0 < 2 * CNN_SIMD_W ? F - f0 : 2 * CNN_SIMD_W;
        const int nv = nf > CNN_SIMD_W ? 2 : 1, tile = nv == 2 ? DIRECT_TILE2 : DIRECT_TILE1;
        DMASK m[2] = {CNN_SIMD_NAME(dmask)(nf), CNN_SIMD_NAME(dmask)(nf - CNN_SIMD_W)};
        const float *b = bias ? bias + f0 : NULL;
        for (int64_t r = r0; r < r1; r++) {
            const int64_t s = r / d->oh;
            const int oy = (int)(r - s * d->oh);
            const float *xrow = xp + s * d->sample + (int64_t)oy * d->sh * d->pw * d->c;
            float *yrow = y + (r - r0) * d->ow * F + f0;
            for (int ox = 0; ox < d->ow; ox += tile) {
                const int n = d->ow - ox < tile ? d->ow - ox : tile;
                const float *x0 = xrow + (int64_t)ox * d->xs;
                float *y0 = yrow + (int64_t)ox * F;
#define TILE(R)                                                                    \
    case R:                                                                        \
        if (nv == 2)                                                               \
            CNN_SIMD_NAME(fwd_tile)(R, 2, d, x0, kernel + f0, b, m, y0);           \
        else                                                                       \
            CNN_SIMD_NAME(fwd_tile)(R, 1, d, x0, kernel + f0, b, m, y0);           \
        break;
                switch (n) {
                    TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)
                    TILE(7) TILE(8) TILE(9) TILE(10) TILE(11) default: TILE(12)
                }
#undef TILE
            }
        }
    }
}

/* T taps (offsets off[]) x NV filter vectors, summed over the pixels of
 * one sample (padded input xs0, gradients dy0), then added to dk; with
 * BIAS, the sums of dy too, added to db. */
DIRECT_BODY void CNN_SIMD_NAME(wgt_tile)(const int T, const int NV, const bool BIAS,
                                          const direct_shape *d, const float *xs0,
                                          const int64_t *off, const float *dy0, const DMASK *m,
                                          float *dk, float *db)
{
    CNN_V acc[12][2], accb[2] = {{0}, {0}};
#pragma GCC unroll 12
    for (int t = 0; t < T; t++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            acc[t][v] = (CNN_V){0};
    const float *dyp = dy0;
    for (int oy = 0; oy < d->oh; oy++) {
        const float *xrow = xs0 + (int64_t)oy * d->sh * d->pw * d->c;
        const float *p[12];
#pragma GCC unroll 12
        for (int t = 0; t < T; t++)
            p[t] = xrow + off[t];
        for (int64_t i = 0; i < (int64_t)d->ow * d->xs; i += d->xs, dyp += d->f) {
            CNN_V g[2];
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++)
                g[v] = DLOAD(dyp + v * CNN_SIMD_W, m[v]);
            if (BIAS)
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++)
                    accb[v] += g[v];
#pragma GCC unroll 12
            for (int t = 0; t < T; t++) {
                CNN_V xv = DSET1(p[t][i]);
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++)
                    acc[t][v] = DFMA(xv, g[v], acc[t][v]);
            }
        }
    }
#pragma GCC unroll 12
    for (int t = 0; t < T; t++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) {
            float *q = dk + t * d->f + v * CNN_SIMD_W;
            DSTORE(q, DLOAD(q, m[v]) + acc[t][v], m[v]);
        }
    if (BIAS)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            DSTORE(db + v * CNN_SIMD_W, DLOAD(db + v * CNN_SIMD_W, m[v]) + accb[v], m[v]);
}

/* Taps [t0, t1) in blocks of (nearly) equal size, filters in groups of up
 * to two vectors, sample by sample; the bias with the first block. */
DIRECT_BODY void CNN_SIMD_NAME(weights_body)(const direct_shape *d, const float *xp,
                                              const float *dy, int64_t count, int t0, int t1,
                                              float *dkernel, float *dbias)
{
    const int F = d->f;
    const int64_t out_floats = (int64_t)d->oh * d->ow * F;
    for (int f0 = 0; f0 < F; f0 += 2 * CNN_SIMD_W) {
        const int nf = F - f0 < 2 * CNN_SIMD_W ? F - f0 : 2 * CNN_SIMD_W;
        const int nv = nf > CNN_SIMD_W ? 2 : 1, tile = nv == 2 ? DIRECT_TILE2 : DIRECT_TILE1;
        DMASK m[2] = {CNN_SIMD_NAME(dmask)(nf), CNN_SIMD_NAME(dmask)(nf - CNN_SIMD_W)};
        const int blocks = (t1 - t0 + tile - 1) / tile;
        if (blocks < 1)
            return;
        const int step = (t1 - t0 + blocks - 1) / blocks;
        for (int64_t s = 0; s < count; s++) {
            const float *xs0 = xp + s * d->sample, *dy0 = dy + s * out_floats + f0;
            for (int tb = t0; tb < t1; tb += step) {
                const int n = t1 - tb < step ? t1 - tb : step;
                int64_t off[12];
                for (int q = 0; q < n; q++)
                    off[q] = direct_tap_offset(d, tb + q);
                float *dk = dkernel + (int64_t)tb * F + f0, *db = dbias ? dbias + f0 : NULL;
                const bool bias = db && tb == t0;
#define TILE(T)                                                                    \
    case T:                                                                        \
        if (nv == 2 && bias)                                                       \
            CNN_SIMD_NAME(wgt_tile)(T, 2, true, d, xs0, off, dy0, m, dk, db);      \
        else if (nv == 2)                                                          \
            CNN_SIMD_NAME(wgt_tile)(T, 2, false, d, xs0, off, dy0, m, dk, db);     \
        else if (bias)                                                             \
            CNN_SIMD_NAME(wgt_tile)(T, 1, true, d, xs0, off, dy0, m, dk, db);      \
        else                                                                       \
            CNN_SIMD_NAME(wgt_tile)(T, 1, false, d, xs0, off, dy0, m, dk, db);     \
        break;
                switch (n) {
                    TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)
                    TILE(7) TILE(8) TILE(9) TILE(10) TILE(11) default: TILE(12)
                }
#undef TILE
            }
        }
    }
}

#undef DLOAD
#undef DSTORE
#undef DFMA
#undef DMASK
#undef DSET1
