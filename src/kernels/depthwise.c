#include "kernels/depthwise.h"

/* No fused multiply-add anywhere in this file, whatever the compiler's
 * default (clang's is on, GCC's outside ISO C mode): the vector bodies and
 * scalar tails must round alike (kernels/isa.h). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <string.h>

/* ---- Geometry ------------------------------------------------------------------ */

/* Output pixel m as (sample n, row oy, column ox). */
static void pixel(const cnn_conv_geom *g, int64_t m, int64_t *n, int *oy, int *ox)
{
    int64_t plane = (int64_t)g->oh * g->ow;
    *n = m / plane;
    int rest = (int)(m - *n * plane);
    *oy = rest / g->ow;
    *ox = rest % g->ow;
}

/* The input pixel (n, iy, ix) under tap (ky, kx) of output pixel (n, oy, ox),
 * as an index into the input's pixels, or -1 in the padding. */
static int64_t tap(const cnn_conv_geom *g, int64_t n, int oy, int ox, int ky, int kx)
{
    int iy = oy * g->sh - g->pad_top + ky * g->dh, ix = ox * g->sw - g->pad_left + kx * g->dw;
    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
        return -1;
    return (n * g->h + iy) * g->w + ix;
}

/* The kernel positions [*k0, *k1) whose input o * s - pad + k * d lies in
 * [0, in): the in-bounds taps along one axis, so the loops need no test. */
static void tap_range(int o, int s, int pad, int d, int k, int in, int *k0, int *k1)
{
    int base = o * s - pad;
    *k0 = base >= 0 ? 0 : (-base + d - 1) / d;
    *k1 = base > in - 1 ? 0 : (in - 1 - base) / d + 1;
    if (*k1 > k)
        *k1 = k;
    if (*k0 > *k1)
        *k0 = *k1;
}

/* Walks pixels m0, m0+1, ... keeping (n, oy, ox) and the tap ranges. */
typedef struct {
    int64_t n;
    int oy, ox;
    int ky0, ky1, kx0, kx1;
} dw_walk;

static void walk_start(const cnn_conv_geom *g, int64_t m, dw_walk *p)
{
    pixel(g, m, &p->n, &p->oy, &p->ox);
    tap_range(p->oy, g->sh, g->pad_top, g->dh, g->kh, g->h, &p->ky0, &p->ky1);
    tap_range(p->ox, g->sw, g->pad_left, g->dw, g->kw, g->w, &p->kx0, &p->kx1);
}

static void walk_next(const cnn_conv_geom *g, dw_walk *p)
{
    if (++p->ox == g->ow) {
        p->ox = 0;
        if (++p->oy == g->oh) {
            p->oy = 0;
            p->n++;
        }
        tap_range(p->oy, g->sh, g->pad_top, g->dh, g->kh, g->h, &p->ky0, &p->ky1);
    }
    tap_range(p->ox, g->sw, g->pad_left, g->dw, g->kw, g->w, &p->kx0, &p->kx1);
}

/* Input pixel index under tap (ky, kx), which must be in bounds. */
static inline int64_t walk_tap(const cnn_conv_geom *g, const dw_walk *p, int ky, int kx)
{
    int iy = p->oy * g->sh - g->pad_top + ky * g->dh, ix = p->ox * g->sw - g->pad_left + kx * g->dw;
    return (p->n * g->h + iy) * g->w + ix;
}

/* ---- The references ------------------------------------------------------------- */

void cnn_depthwise_forward_naive(const cnn_conv_geom *g, int mult, const float *x,
                                 const float *kernel, int64_t m0, int64_t m1, float *d)
{
    const int C = g->c, M = mult, CM = C * M;
    for (int64_t m = m0; m < m1; m++) {
        float *dm = d + (m - m0) * CM;
        memset(dm, 0, (size_t)CM * sizeof(float));
        int64_t n;
        int oy, ox;
        pixel(g, m, &n, &oy, &ox);
        for (int ky = 0; ky < g->kh; ky++)
            for (int kx = 0; kx < g->kw; kx++) {
                int64_t t = tap(g, n, oy, ox, ky, kx);
                if (t < 0)
                    continue;
                const float *xt = x + t * C, *k = kernel + (ky * g->kw + kx) * CM;
                for (int c = 0; c < C; c++)
                    for (int q = 0; q < M; q++)
                        dm[c * M + q] += xt[c] * k[c * M + q];
            }
    }
}

void cnn_depthwise_backward_naive(const cnn_conv_geom *g, int mult, const float *x,
                                  const float *kernel, const float *dd, int64_t m0, int64_t m1,
                                  int c0, int c1, float *dkernel, float *dx)
{
    const int C = g->c, M = mult, CM = C * M;
    for (int64_t m = m0; m < m1; m++) {
        const float *ddm = dd + (m - m0) * CM;
        int64_t n;
        int oy, ox;
        pixel(g, m, &n, &oy, &ox);
        for (int ky = 0; ky < g->kh; ky++)
            for (int kx = 0; kx < g->kw; kx++) {
                int64_t t = tap(g, n, oy, ox, ky, kx);
                if (t < 0)
                    continue;
                const int64_t ko = (int64_t)(ky * g->kw + kx) * CM;
                const float *xt = x + t * C, *k = kernel + ko;
                float *dk = dkernel + ko;
                for (int c = c0; c < c1; c++) {
                    float acc = 0;
                    for (int q = 0; q < M; q++) {
                        dk[c * M + q] += xt[c] * ddm[c * M + q];
                        acc += k[c * M + q] * ddm[c * M + q];
                    }
                    if (dx)
                        dx[t * C + c] += acc;
                }
            }
    }
}

/* ---- The fast versions ------------------------------------------------------------
 * Depth multiplier 1, the common case, runs the vector bodies; other
 * multipliers run the naive loops. */

#define CNN_SIMD_W 8
#include "kernels/depthwise_simd.h"
#undef CNN_SIMD_W
#define CNN_SIMD_W 16
#include "kernels/depthwise_simd.h"
#undef CNN_SIMD_W

CNN_ISA_CLONES(forward,
               (const cnn_conv_geom *g, const float *x, const float *kernel, int64_t m0,
                int64_t m1, float *d),
               (g, x, kernel, m0, m1, d))

void cnn_depthwise_forward(cnn_isa isa, const cnn_conv_geom *g, int mult, const float *x,
                           const float *kernel, int64_t m0, int64_t m1, float *d)
{
    if (mult != 1) {
        cnn_depthwise_forward_naive(g, mult, x, kernel, m0, m1, d);
        return;
    }
    CNN_ISA_CALL(isa, forward, (g, x, kernel, m0, m1, d));
}

CNN_ISA_CLONES(backward,
               (const cnn_conv_geom *g, const float *x, const float *kernel, const float *dd,
                int64_t m0, int64_t m1, int c0, int c1, float *dkernel, float *dx),
               (g, x, kernel, dd, m0, m1, c0, c1, dkernel, dx))

void cnn_depthwise_backward(cnn_isa isa, const cnn_conv_geom *g, int mult, const float *x,
                            const float *kernel, const float *dd, int64_t m0, int64_t m1, int c0,
                            int c1, float *dkernel, float *dx)
{
    if (mult != 1) {
        cnn_depthwise_backward_naive(g, mult, x, kernel, dd, m0, m1, c0, c1, dkernel, dx);
        return;
    }
    CNN_ISA_CALL(isa, backward, (g, x, kernel, dd, m0, m1, c0, c1, dkernel, dx));
}
