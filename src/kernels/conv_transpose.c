#include "kernels/conv_transpose.h"

#include <string.h>

void cnn_conv_transpose_naive(const cnn_conv_geom *g, int batch, int in_c, const float *x,
                              const float *kernel, const float *bias, float *y)
{
    const int64_t out_pixels = (int64_t)batch * g->h * g->w;
    for (int64_t p = 0; p < out_pixels; p++)
        for (int co = 0; co < g->c; co++)
            y[p * g->c + co] = bias ? bias[co] : 0.0f;
    for (int n = 0; n < batch; n++)
        for (int iy = 0; iy < g->oh; iy++)
            for (int ix = 0; ix < g->ow; ix++) {
                const float *xp = x + (((int64_t)n * g->oh + iy) * g->ow + ix) * in_c;
                for (int ky = 0; ky < g->kh; ky++) {
                    int oy = iy * g->sh - g->pad_top + ky * g->dh;
                    if (oy < 0 || oy >= g->h)
                        continue;
                    for (int kx = 0; kx < g->kw; kx++) {
                        int ox = ix * g->sw - g->pad_left + kx * g->dw;
                        if (ox < 0 || ox >= g->w)
                            continue;
                        float *yp = y + (((int64_t)n * g->h + oy) * g->w + ox) * g->c;
                        const float *wp = kernel + ((int64_t)ky * g->kw + kx) * g->c * in_c;
                        for (int co = 0; co < g->c; co++)
                            for (int ci = 0; ci < in_c; ci++)
                                yp[co] += xp[ci] * wp[(int64_t)co * in_c + ci];
                    }
                }
            }
}
