#include "kernels/pool.h"

/* No fused multiply-add anywhere in this file, whatever the compiler's
 * default: the wide activation derivatives must round as the scalar ones
 * (kernels/isa.h). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <stdbool.h>

#include "kernels/activation.h"
#include "kernels/isa.h"
#include "kernels/vec.h"

/* The in-bounds window of output (oy, ox): rows [y0, y1), cols [x0, x1). */
static void window(const cnn_conv_geom *g, int oy, int ox, int *y0, int *y1, int *x0, int *x1)
{
    int ys = oy * g->sh - g->pad_top, xs = ox * g->sw - g->pad_left;
    *y0 = ys < 0 ? 0 : ys;
    *x0 = xs < 0 ? 0 : xs;
    *y1 = ys + g->kh > g->h ? g->h : ys + g->kh;
    *x1 = xs + g->kw > g->w ? g->w : xs + g->kw;
}

/* Start of input row iy of sample n. */
static const float *in_row(const cnn_conv_geom *g, const float *x, int64_t n, int iy)
{
    return x + ((n * g->h + iy) * (int64_t)g->w) * g->c;
}

/* ---- MaxPooling2D: the reference (the baseline build's path) ------------------------ */

static void maxpool_forward_ref(const cnn_conv_geom *g, const float *x, float *y, int64_t r0,
                                int64_t r1)
{
    const int C = g->c, C4 = C & ~3;
    y += r0 * g->ow * (int64_t)C;
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / g->oh;
        int oy = (int)(r % g->oh);
        for (int ox = 0; ox < g->ow; ox++, y += C) {
            int y0, y1, x0, x1;
            window(g, oy, ox, &y0, &y1, &x0, &x1);
            for (int c = 0; c < C; c++)
                y[c] = -INFINITY;
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++) {
                    const float *p = in_row(g, x, n, iy) + (int64_t)ix * C;
                    int c = 0;
                    for (; c < C4; c += 4)
                        cnn_v4_store(y + c, cnn_v4_max(cnn_v4_load(p + c), cnn_v4_load(y + c)));
                    for (; c < C; c++)
                        y[c] = p[c] > y[c] ? p[c] : y[c];
                }
        }
    }
}

static void maxpool_backward_ref(const cnn_conv_geom *g, const float *x, const float *y,
                                 const float *dy, float *dx, int64_t r0, int64_t r1)
{
    const int C = g->c, C4 = C & ~3;
    const int64_t off = r0 * g->ow * (int64_t)C;
    y += off;
    dy += off;
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / g->oh;
        int oy = (int)(r % g->oh);
        for (int ox = 0; ox < g->ow; ox++, y += C, dy += C) {
            int y0, y1, x0, x1;
            window(g, oy, ox, &y0, &y1, &x0, &x1);
            /* four channels at a time: the first tap equal to the max wins */
            for (int c = 0; c < C4; c += 4) {
                cnn_v4f ymax = cnn_v4_load(y + c), g4 = cnn_v4_load(dy + c);
                cnn_v4i open = {-1, -1, -1, -1};
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        int64_t i = (in_row(g, x, n, iy) - x) + (int64_t)ix * C + c;
                        cnn_v4i hit = (cnn_v4_load(x + i) == ymax) & open;
                        /* a masked add: the other cells keep their bits (-0
                         * too), as in the scalar tail */
                        cnn_v4f d = cnn_v4_load(dx + i);
                        cnn_v4_store(dx + i, cnn_v4_select(hit, d + g4, d));
                        open &= ~hit;
                    }
            }
            for (int c = C4; c < C; c++) {
                bool open = true;
                for (int iy = y0; iy < y1 && open; iy++)
                    for (int ix = x0; ix < x1 && open; ix++) {
                        int64_t i = (in_row(g, x, n, iy) - x) + (int64_t)ix * C + c;
                        if (x[i] == y[c]) {
                            dx[i] += dy[c];
                            open = false;
                        }
                    }
            }
        }
    }
}

static void maxpool_over_x_ref(const cnn_conv_geom *g, float *x, const float *y, const float *dy,
                               cnn_activation f, int64_t r0, int64_t r1)
{
    const int C = g->c, C4 = C & ~3;
    const int64_t off = r0 * g->ow * (int64_t)C;
    y += off;
    dy += off;
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / g->oh;
        int oy = (int)(r % g->oh);
        for (int ox = 0; ox < g->ow; ox++, y += C, dy += C) {
            int y0, y1, x0, x1;
            window(g, oy, ox, &y0, &y1, &x0, &x1);
            /* Each tap is read, then overwritten: the windows do not overlap,
             * so no later read needs it. */
            for (int c = 0; c < C4; c += 4) {
                cnn_v4f ymax = cnn_v4_load(y + c);
                cnn_v4f g4 = {dy[c] * cnn_activation_derivative(f, y[c]),
                              dy[c + 1] * cnn_activation_derivative(f, y[c + 1]),
                              dy[c + 2] * cnn_activation_derivative(f, y[c + 2]),
                              dy[c + 3] * cnn_activation_derivative(f, y[c + 3])};
                cnn_v4i open = {-1, -1, -1, -1};
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        float *p = x + (in_row(g, x, n, iy) - x) + (int64_t)ix * C + c;
                        cnn_v4i hit = (cnn_v4_load(p) == ymax) & open;
                        cnn_v4_store(p, cnn_v4_keep(g4, hit));
                        open &= ~hit;
                    }
            }
            for (int c = C4; c < C; c++) {
                float grad = dy[c] * cnn_activation_derivative(f, y[c]);
                bool open = true;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        float *p = x + (in_row(g, x, n, iy) - x) + (int64_t)ix * C + c;
                        bool hit = open && *p == y[c];
                        *p = hit ? grad : 0.0f;
                        open = open && !hit;
                    }
            }
        }
    }
}

/* ---- MaxPooling2D: AVX2 and AVX-512 ------------------------------------------------ */

/* Output cell (r, ox)'s in-bounds window: rows x cols taps, the first at
 * x[at], the next row rs floats further, the next column c floats. */
typedef struct {
    int64_t at, rs;
    int rows, cols, c;
} pool_win;

CNN_ISA_BODY pool_win window_of(const cnn_conv_geom *g, int64_t r, int ox)
{
    int y0, y1, x0, x1;
    window(g, (int)(r % g->oh), ox, &y0, &y1, &x0, &x1);
    int64_t n = r / g->oh;
    return (pool_win){.at = ((n * g->h + y0) * g->w + x0) * (int64_t)g->c,
                      .rs = (int64_t)g->w * g->c,
                      .rows = y1 - y0,
                      .cols = x1 - x0,
                      .c = g->c};
}

/* Where channel c's first tap equal to ymax is in x, -1 if none (NaN). */
CNN_ISA_BODY int64_t first_max(const pool_win *w, const float *x, float ymax, int c)
{
    for (int i = 0; i < w->rows; i++)
        for (int j = 0; j < w->cols; j++) {
            int64_t k = w->at + i * w->rs + (int64_t)j * w->c + c;
            if (x[k] == ymax)
                return k;
        }
    return -1;
}

#define CNN_SIMD_W 4
#include "kernels/activation_simd.h"
#include "kernels/pool_simd.h"
#undef CNN_SIMD_W
#define CNN_SIMD_W 8
#define CNN_SIMD_HALF 4
#include "kernels/activation_simd.h"
#include "kernels/pool_simd.h"
#undef CNN_SIMD_W
#undef CNN_SIMD_HALF
#define CNN_SIMD_W 16
#define CNN_SIMD_HALF 8
#include "kernels/activation_simd.h"
#include "kernels/pool_simd.h"
#undef CNN_SIMD_W
#undef CNN_SIMD_HALF

CNN_ISA_CLONES_OF(maxpool_forward, maxpool_forward_ref, forward_body_8, forward_body_16,
                  (const cnn_conv_geom *g, const float *x, float *y, int64_t r0, int64_t r1),
                  (g, x, y, r0, r1))

void cnn_maxpool_forward(cnn_isa isa, const cnn_conv_geom *g, const float *x, float *y, int64_t r0,
                         int64_t r1)
{
    CNN_ISA_CALL(isa, maxpool_forward, (g, x, y, r0, r1));
}

CNN_ISA_CLONES_OF(maxpool_backward, maxpool_backward_ref, backward_body_8, backward_body_16,
                  (const cnn_conv_geom *g, const float *x, const float *y, const float *dy,
                   float *dx, int64_t r0, int64_t r1),
                  (g, x, y, dy, dx, r0, r1))

void cnn_maxpool_backward(cnn_isa isa, const cnn_conv_geom *g, const float *x, const float *y,
                          const float *dy, float *dx, int64_t r0, int64_t r1)
{
    CNN_ISA_CALL(isa, maxpool_backward, (g, x, y, dy, dx, r0, r1));
}

CNN_ISA_CLONES_OF(maxpool_over_x, maxpool_over_x_ref, over_x_body_8, over_x_body_16,
                  (const cnn_conv_geom *g, float *x, const float *y, const float *dy,
                   cnn_activation f, int64_t r0, int64_t r1),
                  (g, x, y, dy, f, r0, r1))

void cnn_maxpool_backward_over_x(cnn_isa isa, const cnn_conv_geom *g, float *x, const float *y,
                                 const float *dy, cnn_activation f, int64_t r0, int64_t r1)
{
    CNN_ISA_CALL(isa, maxpool_over_x, (g, x, y, dy, f, r0, r1));
}

/* ---- AveragePooling2D ------------------------------------------------------------------ */

void cnn_avgpool_forward(const cnn_conv_geom *g, const float *x, float *y, int64_t r0, int64_t r1)
{
    const int C = g->c, C4 = C & ~3;
    y += r0 * g->ow * (int64_t)C;
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / g->oh;
        int oy = (int)(r % g->oh);
        for (int ox = 0; ox < g->ow; ox++, y += C) {
            int y0, y1, x0, x1;
            window(g, oy, ox, &y0, &y1, &x0, &x1);
            for (int c = 0; c < C; c++)
                y[c] = 0;
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++) {
                    const float *p = in_row(g, x, n, iy) + (int64_t)ix * C;
                    int c = 0;
                    for (; c < C4; c += 4)
                        cnn_v4_store(y + c, cnn_v4_load(y + c) + cnn_v4_load(p + c));
                    for (; c < C; c++)
                        y[c] += p[c];
                }
            float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
            for (int c = 0; c < C; c++)
                y[c] *= inv;
        }
    }
}

void cnn_avgpool_backward(const cnn_conv_geom *g, const float *dy, float *dx, int64_t r0,
                          int64_t r1)
{
    const int C = g->c, C4 = C & ~3;
    dy += r0 * g->ow * (int64_t)C;
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / g->oh;
        int oy = (int)(r % g->oh);
        for (int ox = 0; ox < g->ow; ox++, dy += C) {
            int y0, y1, x0, x1;
            window(g, oy, ox, &y0, &y1, &x0, &x1);
            float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
            cnn_v4f inv4 = {inv, inv, inv, inv};
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++) {
                    float *p = dx + (in_row(g, dx, n, iy) - dx) + (int64_t)ix * C;
                    int c = 0;
                    for (; c < C4; c += 4)
                        cnn_v4_store(p + c, cnn_v4_load(p + c) + cnn_v4_load(dy + c) * inv4);
                    for (; c < C; c++)
                        p[c] += dy[c] * inv;
                }
        }
    }
}
