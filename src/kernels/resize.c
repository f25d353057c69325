#include "kernels/resize.h"

#include <math.h>
#include <string.h>

/* The two input indices output o reads and the weight of the second. */
static void taps(int o, int in, int out, int *i0, int *i1, float *t)
{
    float src = ((float)o + 0.5f) * (float)in / (float)out - 0.5f;
    if (src < 0)
        src = 0;
    int i = (int)floorf(src);
    if (i > in - 1)
        i = in - 1;
    *i0 = i;
    *i1 = i + 1 < in ? i + 1 : in - 1;
    *t = src - (float)i;
}

void cnn_resize_bilinear_forward(int batch, int h, int w, int c, int oh, int ow, const float *x,
                                 float *y)
{
    for (int n = 0; n < batch; n++)
        for (int oy = 0; oy < oh; oy++) {
            int y0, y1;
            float ty;
            taps(oy, h, oh, &y0, &y1, &ty);
            const float *r0 = x + ((int64_t)n * h + y0) * w * c;
            const float *r1 = x + ((int64_t)n * h + y1) * w * c;
            for (int ox = 0; ox < ow; ox++) {
                int x0, x1;
                float tx;
                taps(ox, w, ow, &x0, &x1, &tx);
                float *out = y + (((int64_t)n * oh + oy) * ow + ox) * c;
                for (int k = 0; k < c; k++) {
                    float top = r0[(int64_t)x0 * c + k] * (1 - tx) + r0[(int64_t)x1 * c + k] * tx;
                    float bot = r1[(int64_t)x0 * c + k] * (1 - tx) + r1[(int64_t)x1 * c + k] * tx;
                    out[k] = top * (1 - ty) + bot * ty;
                }
            }
        }
}

void cnn_resize_bilinear_backward(int batch, int h, int w, int c, int oh, int ow,
                                  const float *dy, float *dx)
{
    memset(dx, 0, (size_t)batch * h * w * c * sizeof(float));
    for (int n = 0; n < batch; n++)
        for (int oy = 0; oy < oh; oy++) {
            int y0, y1;
            float ty;
            taps(oy, h, oh, &y0, &y1, &ty);
            float *r0 = dx + ((int64_t)n * h + y0) * w * c;
            float *r1 = dx + ((int64_t)n * h + y1) * w * c;
            for (int ox = 0; ox < ow; ox++) {
                int x0, x1;
                float tx;
                taps(ox, w, ow, &x0, &x1, &tx);
                const float *g = dy + (((int64_t)n * oh + oy) * ow + ox) * c;
                for (int k = 0; k < c; k++) {
                    r0[(int64_t)x0 * c + k] += g[k] * (1 - ty) * (1 - tx);
                    r0[(int64_t)x1 * c + k] += g[k] * (1 - ty) * tx;
                    r1[(int64_t)x0 * c + k] += g[k] * ty * (1 - tx);
                    r1[(int64_t)x1 * c + k] += g[k] * ty * tx;
                }
            }
        }
}
