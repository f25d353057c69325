#include "kernels/pool.h"

#include <math.h>

/* The in-bounds window of output (oy, ox): rows [y0, y1), cols [x0, x1). */
static void window(const cnn_conv_geom *g, int oy, int ox, int *y0, int *y1, int *x0, int *x1)
{
    int ys = oy * g->sh - g->pad_top, xs = ox * g->sw - g->pad_left;
    *y0 = ys < 0 ? 0 : ys;
    *x0 = xs < 0 ? 0 : xs;
    *y1 = ys + g->kh > g->h ? g->h : ys + g->kh;
    *x1 = xs + g->kw > g->w ? g->w : xs + g->kw;
}

void cnn_maxpool_forward(const cnn_conv_geom *g, int batch, const float *x, float *y)
{
    const int C = g->c;
    for (int n = 0; n < batch; n++) {
        const float *xn = x + (int64_t)n * g->h * g->w * C;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, y += C) {
                int y0, y1, x0, x1;
                window(g, oy, ox, &y0, &y1, &x0, &x1);
                for (int c = 0; c < C; c++)
                    y[c] = -INFINITY;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        const float *p = xn + ((int64_t)iy * g->w + ix) * C;
                        for (int c = 0; c < C; c++)
                            y[c] = p[c] > y[c] ? p[c] : y[c];
                    }
            }
    }
}

void cnn_maxpool_backward(const cnn_conv_geom *g, int batch, const float *x, const float *dy,
                          float *dx)
{
    const int C = g->c;
    for (int n = 0; n < batch; n++) {
        const int64_t off = (int64_t)n * g->h * g->w * C;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, dy += C) {
                int y0, y1, x0, x1;
                window(g, oy, ox, &y0, &y1, &x0, &x1);
                for (int c = 0; c < C; c++) {
                    int64_t best = -1;
                    float best_v = -INFINITY;
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++) {
                            int64_t i = off + ((int64_t)iy * g->w + ix) * C + c;
                            if (best < 0 || x[i] > best_v) {
                                best = i;
                                best_v = x[i];
                            }
                        }
                    if (best >= 0)
                        dx[best] += dy[c];
                }
            }
    }
}

void cnn_avgpool_forward(const cnn_conv_geom *g, int batch, const float *x, float *y)
{
    const int C = g->c;
    for (int n = 0; n < batch; n++) {
        const float *xn = x + (int64_t)n * g->h * g->w * C;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, y += C) {
                int y0, y1, x0, x1;
                window(g, oy, ox, &y0, &y1, &x0, &x1);
                for (int c = 0; c < C; c++)
                    y[c] = 0;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        const float *p = xn + ((int64_t)iy * g->w + ix) * C;
                        for (int c = 0; c < C; c++)
                            y[c] += p[c];
                    }
                float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
                for (int c = 0; c < C; c++)
                    y[c] *= inv;
            }
    }
}

void cnn_avgpool_backward(const cnn_conv_geom *g, int batch, const float *dy, float *dx)
{
    const int C = g->c;
    for (int n = 0; n < batch; n++) {
        float *dxn = dx + (int64_t)n * g->h * g->w * C;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, dy += C) {
                int y0, y1, x0, x1;
                window(g, oy, ox, &y0, &y1, &x0, &x1);
                float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        float *p = dxn + ((int64_t)iy * g->w + ix) * C;
                        for (int c = 0; c < C; c++)
                            p[c] += dy[c] * inv;
                    }
            }
    }
}
