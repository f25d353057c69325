#include "kernels/conv.h"

#include <string.h>

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

void cnn_im2col_rows(const cnn_conv_geom *g, const float *x, int64_t m0, int64_t m1, float *col)
{
    const int K = g->kh * g->kw * g->c;
    const size_t cbytes = (size_t)g->c * sizeof(float);
    for (int64_t m = m0; m < m1; m++) {
        int64_t n = m / ((int64_t)g->oh * g->ow);
        int rest = (int)(m - n * g->oh * g->ow);
        int oy = rest / g->ow, ox = rest % g->ow;
        const float *xn = x + n * (int64_t)g->h * g->w * g->c;
        float *row = col + (m - m0) * K;
        for (int ky = 0; ky < g->kh; ky++) {
            int iy = oy * g->sh - g->pad_top + ky * g->dh;
            for (int kx = 0; kx < g->kw; kx++, row += g->c) {
                int ix = ox * g->sw - g->pad_left + kx * g->dw;
                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                    memset(row, 0, cbytes);
                else
                    memcpy(row, xn + ((int64_t)iy * g->w + ix) * g->c, cbytes);
            }
        }
    }
}

void cnn_col2im_rows_add(const cnn_conv_geom *g, const float *col, int64_t m0, int64_t m1,
                         float *dx)
{
    const int K = g->kh * g->kw * g->c;
    for (int64_t m = m0; m < m1; m++) {
        int64_t n = m / ((int64_t)g->oh * g->ow);
        int rest = (int)(m - n * g->oh * g->ow);
        int oy = rest / g->ow, ox = rest % g->ow;
        float *dxn = dx + n * (int64_t)g->h * g->w * g->c;
        const float *row = col + (m - m0) * K;
        for (int ky = 0; ky < g->kh; ky++) {
            int iy = oy * g->sh - g->pad_top + ky * g->dh;
            for (int kx = 0; kx < g->kw; kx++, row += g->c) {
                int ix = ox * g->sw - g->pad_left + kx * g->dw;
                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                    continue;
                float *dst = dxn + ((int64_t)iy * g->w + ix) * g->c;
                for (int ci = 0; ci < g->c; ci++)
                    dst[ci] += row[ci];
            }
        }
    }
}

void cnn_add_bias_rows(float *y, const float *bias, int64_t rows, int n)
{
    for (int64_t m = 0; m < rows; m++, y += n)
        for (int j = 0; j < n; j++)
            y[j] += bias[j];
}

void cnn_bias_grad_rows(const float *dy, int64_t rows, int n, float *db)
{
    for (int64_t m = 0; m < rows; m++, dy += n)
        for (int j = 0; j < n; j++)
            db[j] += dy[j];
}
