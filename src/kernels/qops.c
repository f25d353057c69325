/* int8 depthwise convolution, pooling and Add (kernels/qops.h). */
#include "kernels/qops.h"

#include <string.h>

typedef struct {
    int64_t n;
    int oy, ox;
} qpixel;

static qpixel qpixel_of(const cnn_conv_geom *g, int64_t m)
{
    int64_t plane = (int64_t)g->oh * g->ow, n = m / plane;
    int rest = (int)(m - n * plane);
    return (qpixel){n, rest / g->ow, rest % g->ow};
}

void cnn_qdepthwise_ref(const cnn_conv_geom *g, int mult, const int8_t *x, int32_t x_zero,
                        const int8_t *kernel, const cnn_qoutput *out, int64_t m0, int64_t m1,
                        int8_t *y)
{
    const int C = g->c, CO = C * mult;
    for (int64_t m = m0; m < m1; m++) {
        qpixel p = qpixel_of(g, m);
        const int8_t *xn = x + p.n * (int64_t)g->h * g->w * C;
        for (int o = 0; o < CO; o++) {
            int c = o / mult;
            int32_t acc = 0;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = p.oy * g->sh - g->pad_top + ky * g->dh;
                if (iy < 0 || iy >= g->h)
                    continue;
                for (int kx = 0; kx < g->kw; kx++) {
                    int ix = p.ox * g->sw - g->pad_left + kx * g->dw;
                    if (ix < 0 || ix >= g->w)
                        continue;
                    int32_t xv = xn[((int64_t)iy * g->w + ix) * C + c];
                    acc += (xv - x_zero) * kernel[(int64_t)(ky * g->kw + kx) * CO + o];
                }
            }
            y[(m - m0) * CO + o] = cnn_q_requant(out, o, acc);
        }
    }
}

void cnn_qdepthwise(const cnn_conv_geom *g, int mult, const int8_t *x, int32_t x_zero,
                    const int8_t *kernel, const cnn_qoutput *out, int64_t m0, int64_t m1,
                    int32_t *acc, int8_t *y)
{
    const int C = g->c, CO = C * mult;
    for (int64_t m = m0; m < m1; m++) {
        qpixel p = qpixel_of(g, m);
        const int8_t *xn = x + p.n * (int64_t)g->h * g->w * C;
        memset(acc, 0, (size_t)CO * sizeof *acc);
        for (int ky = 0; ky < g->kh; ky++) {
            int iy = p.oy * g->sh - g->pad_top + ky * g->dh;
            if (iy < 0 || iy >= g->h)
                continue;
            for (int kx = 0; kx < g->kw; kx++) {
                int ix = p.ox * g->sw - g->pad_left + kx * g->dw;
                if (ix < 0 || ix >= g->w)
                    continue;
                const int8_t *px = xn + ((int64_t)iy * g->w + ix) * C;
                const int8_t *kp = kernel + (int64_t)(ky * g->kw + kx) * CO;
                if (mult == 1) { /* the common case: a loop the compiler vectorises */
                    for (int c = 0; c < C; c++)
                        acc[c] += ((int32_t)px[c] - x_zero) * kp[c];
                } else {
                    for (int o = 0; o < CO; o++)
                        acc[o] += ((int32_t)px[o / mult] - x_zero) * kp[o];
                }
            }
        }
        int8_t *yr = y + (m - m0) * CO;
        for (int o = 0; o < CO; o++)
            yr[o] = cnn_q_requant(out, o, acc[o]);
    }
}

/* Pooling windows: the in-bounds taps of output pixel p, channel c. */
#define QPOOL_TAPS(g, p, body)                                               \
    for (int ky = 0; ky < (g)->kh; ky++) {                                   \
        int iy = (p).oy * (g)->sh - (g)->pad_top + ky;                       \
        if (iy < 0 || iy >= (g)->h)                                          \
            continue;                                                        \
        for (int kx = 0; kx < (g)->kw; kx++) {                               \
            int ix = (p).ox * (g)->sw - (g)->pad_left + kx;                  \
            if (ix < 0 || ix >= (g)->w)                                      \
                continue;                                                    \
            int32_t v = xn[((int64_t)iy * (g)->w + ix) * (g)->c + c];         \
            body;                                                            \
        }                                                                    \
    }

void cnn_qmaxpool(const cnn_conv_geom *g, const int8_t *x, int32_t lo, int32_t hi, int64_t m0,
                  int64_t m1, int8_t *y)
{
    for (int64_t m = m0; m < m1; m++) {
        qpixel p = qpixel_of(g, m);
        const int8_t *xn = x + p.n * (int64_t)g->h * g->w * g->c;
        for (int c = 0; c < g->c; c++) {
            int32_t best = -128;
            QPOOL_TAPS(g, p, if (v > best) best = v)
            y[(m - m0) * g->c + c] = (int8_t)cnn_q_clamp(best, lo, hi);
        }
    }
}

void cnn_qavgpool(const cnn_conv_geom *g, const int8_t *x, int32_t lo, int32_t hi, int64_t m0,
                  int64_t m1, int8_t *y)
{
    for (int64_t m = m0; m < m1; m++) {
        qpixel p = qpixel_of(g, m);
        const int8_t *xn = x + p.n * (int64_t)g->h * g->w * g->c;
        for (int c = 0; c < g->c; c++) {
            int32_t sum = 0, count = 0;
            QPOOL_TAPS(g, p, sum += v; count++)
            int32_t avg = count == 0 ? lo
                          : sum >= 0 ? (sum + count / 2) / count
                                     : (sum - count / 2) / count;
            y[(m - m0) * g->c + c] = (int8_t)cnn_q_clamp(avg, lo, hi);
        }
    }
}

void cnn_qadd_prepare(cnn_qparams a, cnn_qparams b, cnn_qparams y, cnn_qact act, cnn_qadd_spec *p)
{
    float twice_max = 2.0f * (a.scale > b.scale ? a.scale : b.scale);
    p->a_zero = a.zero_point;
    p->b_zero = b.zero_point;
    p->y_zero = y.zero_point;
    cnn_q_multiplier((double)a.scale / (double)twice_max, &p->a_mult, &p->a_shift);
    cnn_q_multiplier((double)b.scale / (double)twice_max, &p->b_mult, &p->b_shift);
    cnn_q_multiplier((double)twice_max / ((double)(1 << CNN_QADD_LEFT_SHIFT) * (double)y.scale),
                     &p->y_mult, &p->y_shift);
    cnn_q_activation_range(act, y, &p->lo, &p->hi);
}

void cnn_qadd(const cnn_qadd_spec *p, const int8_t *a, const int8_t *b, int64_t n, int8_t *y)
{
    for (int64_t i = 0; i < n; i++) {
        /* |q - zero| <= 255, so the shifted values stay below 2^28 */
        int32_t sa = ((int32_t)a[i] - p->a_zero) * (1 << CNN_QADD_LEFT_SHIFT);
        int32_t sb = ((int32_t)b[i] - p->b_zero) * (1 << CNN_QADD_LEFT_SHIFT);
        int32_t sum = cnn_q_mul(sa, p->a_mult, p->a_shift) + cnn_q_mul(sb, p->b_mult, p->b_shift);
        int64_t v = (int64_t)cnn_q_mul(sum, p->y_mult, p->y_shift) + p->y_zero;
        y[i] = (int8_t)(v < p->lo ? p->lo : v > p->hi ? p->hi : v);
    }
}
