/* int8 Conv2D (kernels/qgemm.h): im2col with the input's zero point in the
 * padding, the direct reference, and the chunked im2col + GEMM driver. The
 * geometry (pixel numbering, tap order, padding) is kernels/conv.h's. */
#include <string.h>

#include "kernels/qgemm.h"

/* Copies n bytes; short runs (few channels) inline, where a memcpy call
 * costs more than the copy. */
static inline void copy_bytes(int8_t *dst, const int8_t *src, int n)
{
    if (n > 32) {
        memcpy(dst, src, (size_t)n);
        return;
    }
    for (int i = 0; i < n; i++)
        dst[i] = src[i];
}

void cnn_qim2col_rows(const cnn_conv_geom *g, const int8_t *x, int8_t pad, int64_t m0, int64_t m1,
                      int8_t *col)
{
    const int C = g->c, K = g->kh * g->kw * C;
    const int64_t plane = (int64_t)g->oh * g->ow;
    for (int64_t m = m0; m < m1; m++) {
        int64_t n = m / plane;
        int rest = (int)(m - n * plane), oy = rest / g->ow, ox = rest % g->ow;
        const int8_t *xn = x + n * (int64_t)g->h * g->w * C;
        int8_t *row = col + (m - m0) * K;
        const int ix0 = ox * g->sw - g->pad_left;
        for (int ky = 0; ky < g->kh; ky++, row += g->kw * C) {
            int iy = oy * g->sh - g->pad_top + ky * g->dh;
            if (iy < 0 || iy >= g->h) {
                memset(row, pad, (size_t)g->kw * C);
                continue;
            }
            const int8_t *src = xn + (int64_t)iy * g->w * C;
            if (g->dw == 1 && ix0 >= 0 && ix0 + g->kw <= g->w) {
                copy_bytes(row, src + (int64_t)ix0 * C, g->kw * C);
                continue;
            }
            for (int kx = 0; kx < g->kw; kx++) {
                int ix = ix0 + kx * g->dw;
                if (ix < 0 || ix >= g->w)
                    memset(row + kx * C, pad, (size_t)C);
                else
                    copy_bytes(row + kx * C, src + (int64_t)ix * C, C);
            }
        }
    }
}

void cnn_qconv_ref(const cnn_conv_geom *g, const int8_t *x, int32_t x_zero, const int8_t *kernel,
                   int N, const cnn_qoutput *out, int64_t m0, int64_t m1, int8_t *y)
{
    const int C = g->c;
    const int64_t plane = (int64_t)g->oh * g->ow;
    for (int64_t m = m0; m < m1; m++) {
        int64_t n = m / plane;
        int rest = (int)(m - n * plane), oy = rest / g->ow, ox = rest % g->ow;
        const int8_t *xn = x + n * (int64_t)g->h * g->w * C;
        for (int f = 0; f < N; f++) {
            int32_t acc = 0;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = oy * g->sh - g->pad_top + ky * g->dh;
                if (iy < 0 || iy >= g->h)
                    continue; /* a padding tap is real 0: it adds nothing */
                for (int kx = 0; kx < g->kw; kx++) {
                    int ix = ox * g->sw - g->pad_left + kx * g->dw;
                    if (ix < 0 || ix >= g->w)
                        continue;
                    const int8_t *px = xn + ((int64_t)iy * g->w + ix) * C;
                    const int8_t *kp = kernel + ((int64_t)(ky * g->kw + kx) * C) * N + f;
                    for (int c = 0; c < C; c++)
                        acc += ((int32_t)px[c] - x_zero) * kp[(int64_t)c * N];
                }
            }
            y[(m - m0) * N + f] = cnn_q_requant(out, f, acc);
        }
    }
}

void cnn_qconv(cnn_qisa isa, const cnn_conv_geom *g, const int8_t *x, int32_t x_zero,
               const cnn_qpacked *kernel, const cnn_qoutput *out, int64_t m0, int64_t m1,
               int8_t *col, int64_t chunk, int8_t *y)
{
    const int K = kernel->K, N = kernel->N;
    const bool pointwise = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 &&
                           g->pad_top == 0 && g->pad_left == 0 && g->oh == g->h && g->ow == g->w;
    if (pointwise) { /* the input rows are the GEMM's rows */
        cnn_qgemm(isa, m1 - m0, x + m0 * K, K, x_zero, kernel, out, y, N);
        return;
    }
    if (cnn_qconv_implicit(isa, g, x, x_zero, kernel, out, m0, m1, col, y))
        return;
    for (int64_t m = m0; m < m1; m += chunk) {
        int64_t rows = m1 - m < chunk ? m1 - m : chunk;
        cnn_qim2col_rows(g, x, (int8_t)x_zero, m, m + rows, col);
        cnn_qgemm(isa, rows, col, K, x_zero, kernel, out, y + (m - m0) * N, N);
    }
}
