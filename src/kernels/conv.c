#include "kernels/conv.h"

#include <stdbool.h>
#include <string.h>

#include "kernels/vec.h"

int cnn_conv_out_size(int in, int k, int stride, int dilation, int same, int *pad_before)
{
    /* 64-bit: callers bound each argument to 2^31, not their products */
    int64_t span = (int64_t)(k - 1) * dilation + 1;
    if (same) {
        int64_t out = ((int64_t)in + stride - 1) / stride;
        int64_t total = (out - 1) * stride + span - in;
        if (total < 0)
            total = 0;
        if (total / 2 > INT32_MAX / 2)
            return *pad_before = 0, 0; /* padding no index can hold */
        *pad_before = (int)(total / 2); /* the odd extra goes after (bottom/right) */
        return (int)out;
    }
    *pad_before = 0;
    return in >= span ? (int)((in - span) / stride + 1) : 0;
}

/* For output pixel m, the input row segment of kernel row ky: columns
 * ix0 + kx * dw for kx in [0, kw). */
typedef struct {
    int64_t n;
    int oy, ox;
} out_pixel;

static out_pixel pixel_of(const cnn_conv_geom *g, int64_t m)
{
    int64_t plane = (int64_t)g->oh * g->ow, n = m / plane;
    int rest = (int)(m - n * plane);
    return (out_pixel){n, rest / g->ow, rest % g->ow};
}

/* Copies n floats; short runs (few channels) inline, where a memcpy call
 * would cost more than the copy. */
static inline void copy_floats(float *dst, const float *src, int n)
{
    if (n > 16) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    for (int i = 0; i < n; i++)
        dst[i] = src[i];
}

void cnn_im2col_rows(const cnn_conv_geom *g, const float *x, int64_t m0, int64_t m1, float *col)
{
    const int C = g->c, K = g->kh * g->kw * C;
    const size_t cbytes = (size_t)C * sizeof(float);
    for (int64_t m = m0; m < m1; m++) {
        out_pixel p = pixel_of(g, m);
        const float *xn = x + p.n * (int64_t)g->h * g->w * C;
        float *row = col + (m - m0) * K;
        const int ix0 = p.ox * g->sw - g->pad_left;
        /* all kernel columns inside the image and adjacent: one copy per
         * kernel row (kw * C contiguous floats) */
        const bool whole = g->dw == 1 && ix0 >= 0 && ix0 + g->kw <= g->w;
        for (int ky = 0; ky < g->kh; ky++, row += g->kw * C) {
            int iy = p.oy * g->sh - g->pad_top + ky * g->dh;
            if (iy < 0 || iy >= g->h) {
                memset(row, 0, (size_t)g->kw * cbytes);
                continue;
            }
            const float *src = xn + ((int64_t)iy * g->w) * C;
            if (whole) {
                copy_floats(row, src + (int64_t)ix0 * C, g->kw * C);
                continue;
            }
            for (int kx = 0; kx < g->kw; kx++) {
                int ix = ix0 + kx * g->dw;
                if (ix < 0 || ix >= g->w)
                    memset(row + kx * C, 0, cbytes);
                else
                    copy_floats(row + kx * C, src + (int64_t)ix * C, C);
            }
        }
    }
}

static void add_floats(float *dst, const float *src, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4)
        cnn_v4_store(dst + i, cnn_v4_load(dst + i) + cnn_v4_load(src + i));
    for (; i < n; i++)
        dst[i] += src[i];
}

void cnn_col2im_rows_add(const cnn_conv_geom *g, const float *col, int64_t m0, int64_t m1,
                         float *dx)
{
    const int C = g->c, K = g->kh * g->kw * C;
    for (int64_t m = m0; m < m1; m++) {
        out_pixel p = pixel_of(g, m);
        float *dxn = dx + p.n * (int64_t)g->h * g->w * C;
        const float *row = col + (m - m0) * K;
        const int ix0 = p.ox * g->sw - g->pad_left;
        const bool whole = g->dw == 1 && ix0 >= 0 && ix0 + g->kw <= g->w;
        for (int ky = 0; ky < g->kh; ky++, row += g->kw * C) {
            int iy = p.oy * g->sh - g->pad_top + ky * g->dh;
            if (iy < 0 || iy >= g->h)
                continue;
            float *dst = dxn + ((int64_t)iy * g->w) * C;
            if (whole) {
                add_floats(dst + (int64_t)ix0 * C, row, g->kw * C);
                continue;
            }
            for (int kx = 0; kx < g->kw; kx++) {
                int ix = ix0 + kx * g->dw;
                if (ix >= 0 && ix < g->w)
                    add_floats(dst + (int64_t)ix * C, row + kx * C, C);
            }
        }
    }
}

void cnn_add_bias_rows(float *y, const float *bias, int64_t rows, int n)
{
    for (int64_t m = 0; m < rows; m++, y += n)
        add_floats(y, bias, n);
}

void cnn_bias_grad_rows(const float *dy, int64_t rows, int n, float *db)
{
    for (int64_t m = 0; m < rows; m++, dy += n)
        add_floats(db, dy, n);
}
