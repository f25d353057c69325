#include "kernels/global_pool.h"

#include <math.h>
#include <string.h>

/* Channels whose double sums live on the stack at once. */
#define CH_BLOCK 256

/* ---- The references ------------------------------------------------------------- */

void cnn_global_avgpool_forward_naive(const float *x, float *y, int64_t batch, int64_t hw, int c)
{
    for (int64_t n = 0; n < batch; n++)
        for (int k = 0; k < c; k++) {
            double sum = 0;
            for (int64_t p = 0; p < hw; p++)
                sum += x[(n * hw + p) * c + k];
            y[n * c + k] = (float)(sum / (double)hw);
        }
}

void cnn_global_avgpool_backward_naive(const float *dy, float *dx, int64_t batch, int64_t hw,
                                       int c)
{
    const float inv = 1.0f / (float)hw;
    for (int64_t n = 0; n < batch; n++)
        for (int64_t p = 0; p < hw; p++)
            for (int k = 0; k < c; k++)
                dx[(n * hw + p) * c + k] = dy[n * c + k] * inv;
}

void cnn_global_maxpool_forward_naive(const float *x, float *y, int64_t batch, int64_t hw, int c)
{
    for (int64_t n = 0; n < batch; n++)
        for (int k = 0; k < c; k++) {
            float best = -INFINITY;
            for (int64_t p = 0; p < hw; p++) {
                float v = x[(n * hw + p) * c + k];
                best = v > best ? v : best;
            }
            y[n * c + k] = best;
        }
}

void cnn_global_maxpool_backward_naive(const float *x, const float *dy, float *dx, int64_t batch,
                                       int64_t hw, int c)
{
    memset(dx, 0, (size_t)(batch * hw * c) * sizeof(float));
    for (int64_t n = 0; n < batch; n++) {
        const float *xn = x + n * hw * c;
        if (hw == 0)
            continue;
        for (int k = 0; k < c; k++) {
            int64_t best = 0;
            for (int64_t p = 1; p < hw; p++)
                if (xn[p * c + k] > xn[best * c + k])
                    best = p;
            dx[(n * hw + best) * c + k] = dy[n * c + k];
        }
    }
}

/* ---- The fast versions ------------------------------------------------------------ */

CNN_ISA_BODY void avg_forward_body(const float *x, float *y, int64_t batch, int64_t hw, int c)
{
    typedef double v8d __attribute__((vector_size(64)));
    typedef float v8f __attribute__((vector_size(32)));
    for (int64_t n = 0; n < batch; n++) {
        const float *xn = x + n * hw * c;
        for (int c0 = 0; c0 < c; c0 += CH_BLOCK) {
            const int nc = c - c0 < CH_BLOCK ? c - c0 : CH_BLOCK;
            double sum[CH_BLOCK] = {0};
            for (int64_t p = 0; p < hw; p++) {
                const float *xp = xn + p * c + c0;
                int k = 0;
                for (; k + 8 <= nc; k += 8) {
                    v8f v;
                    v8d s;
                    memcpy(&v, xp + k, sizeof v);
                    memcpy(&s, sum + k, sizeof s);
                    s += __builtin_convertvector(v, v8d);
                    memcpy(sum + k, &s, sizeof s);
                }
                for (; k < nc; k++)
                    sum[k] += xp[k];
            }
            for (int k = 0; k < nc; k++)
                y[n * c + c0 + k] = (float)(sum[k] / (double)hw);
        }
    }
}
CNN_ISA_CLONES(avg_forward, (const float *x, float *y, int64_t batch, int64_t hw, int c),
               (x, y, batch, hw, c))

void cnn_global_avgpool_forward(cnn_isa isa, const float *x, float *y, int64_t batch, int64_t hw,
                                int c)
{
    CNN_ISA_CALL(isa, avg_forward, (x, y, batch, hw, c));
}

CNN_ISA_BODY void avg_backward_body(const float *dy, float *dx, int64_t batch, int64_t hw, int c)
{
    const float inv = 1.0f / (float)hw;
    for (int64_t n = 0; n < batch; n++) {
        const float *dyn = dy + n * c;
        for (int64_t p = 0; p < hw; p++) {
            float *dxp = dx + (n * hw + p) * c;
            int k = 0;
            for (; k + 16 <= c; k += 16)
                CNN_V16_STORE(dxp + k, CNN_V16_LOAD(dyn + k) * inv);
            for (; k < c; k++)
                dxp[k] = dyn[k] * inv;
        }
    }
}
CNN_ISA_CLONES(avg_backward, (const float *dy, float *dx, int64_t batch, int64_t hw, int c),
               (dy, dx, batch, hw, c))

void cnn_global_avgpool_backward(cnn_isa isa, const float *dy, float *dx, int64_t batch,
                                 int64_t hw, int c)
{
    CNN_ISA_CALL(isa, avg_backward, (dy, dx, batch, hw, c));
}

/* The max kernels compare vectors, and GCC turns a comparison wider than
 * the hardware's vectors into scalar code, so they are written once per
 * width W (4 floats for the baseline, 8 for AVX2 and AVX-512) by
 * MAX_BODIES. Forward keeps the running maxima in y itself (one row of c
 * floats, in L1). Backward walks each image once keeping each channel's
 * best value and its pixel (as int lanes: hw <= INT32_MAX, see
 * cnn_global_maxpool_backward); strict > keeps the first maximum as the
 * naive loop does. */
#define MAX_BODIES(W)                                                                        \
    typedef float max_vf##W __attribute__((vector_size(4 * (W))));                        \
    typedef int max_vi##W __attribute__((vector_size(4 * (W))));                          \
    typedef max_vf##W max_vfu##W __attribute__((aligned(4), may_alias));                  \
    CNN_ISA_BODY void max_forward_body##W(const float *x, float *y, int64_t batch,           \
                                          int64_t hw, int c)                                 \
    {                                                                                        \
        for (int64_t n = 0; n < batch; n++) {                                                \
            const float *xn = x + n * hw * c;                                                \
            float *yn = y + n * c;                                                           \
            for (int k = 0; k < c; k++)                                                      \
                yn[k] = -INFINITY;                                                           \
            for (int64_t p = 0; p < hw; p++) {                                               \
                const float *xp = xn + p * c;                                                \
                int k = 0;                                                                   \
                for (; k + (W) <= c; k += (W)) {                                             \
                    max_vf##W v = *(const max_vfu##W *)(xp + k), b = *(max_vfu##W *)(yn + k); \
                    max_vi##W more = v > b;                                                  \
                    *(max_vfu##W *)(yn + k) =                                                \
                        (max_vf##W)(((max_vi##W)v & more) | ((max_vi##W)b & ~more));         \
                }                                                                            \
                for (; k < c; k++)                                                           \
                    yn[k] = xp[k] > yn[k] ? xp[k] : yn[k];                                   \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
    CNN_ISA_BODY void max_backward_body##W(const float *x, const float *dy, float *dx,       \
                                           int64_t batch, int64_t hw, int c)                 \
    {                                                                                        \
        memset(dx, 0, (size_t)(batch * hw * c) * sizeof(float));                             \
        if (hw == 0)                                                                         \
            return;                                                                          \
        for (int64_t n = 0; n < batch; n++) {                                                \
            const float *xn = x + n * hw * c;                                                \
            float *dxn = dx + n * hw * c;                                                    \
            int k = 0;                                                                       \
            for (; k + (W) <= c; k += (W)) {                                                 \
                max_vf##W best = *(const max_vfu##W *)(xn + k);                              \
                max_vi##W at = {0};                                                          \
                for (int64_t p = 1; p < hw; p++) {                                           \
                    max_vf##W v = *(const max_vfu##W *)(xn + p * c + k);                     \
                    max_vi##W more = v > best;                                               \
                    best = (max_vf##W)(((max_vi##W)v & more) | ((max_vi##W)best & ~more));   \
                    at = (at & ~more) | ((at * 0 + (int)p) & more);                          \
                }                                                                            \
                for (int i = 0; i < (W); i++)                                                \
                    dxn[(int64_t)at[i] * c + k + i] = dy[n * c + k + i];                     \
            }                                                                                \
            for (; k < c; k++) {                                                             \
                int64_t at = 0;                                                              \
                for (int64_t p = 1; p < hw; p++)                                             \
                    if (xn[p * c + k] > xn[at * c + k])                                      \
                        at = p;                                                              \
                dxn[at * c + k] = dy[n * c + k];                                             \
            }                                                                                \
        }                                                                                    \
    }

MAX_BODIES(4)
MAX_BODIES(8)
CNN_ISA_CLONES_OF(max_forward, max_forward_body4, max_forward_body8, max_forward_body8,
                  (const float *x, float *y, int64_t batch, int64_t hw, int c),
                  (x, y, batch, hw, c))
CNN_ISA_CLONES_OF(max_backward, max_backward_body4, max_backward_body8, max_backward_body8,
                  (const float *x, const float *dy, float *dx, int64_t batch, int64_t hw, int c),
                  (x, dy, dx, batch, hw, c))

void cnn_global_maxpool_forward(cnn_isa isa, const float *x, float *y, int64_t batch, int64_t hw,
                                int c)
{
    CNN_ISA_CALL(isa, max_forward, (x, y, batch, hw, c));
}

void cnn_global_maxpool_backward(cnn_isa isa, const float *x, const float *dy, float *dx,
                                 int64_t batch, int64_t hw, int c)
{
    if (hw > INT32_MAX) { /* pixel numbers would not fit the int lanes */
        cnn_global_maxpool_backward_naive(x, dy, dx, batch, hw, c);
        return;
    }
    CNN_ISA_CALL(isa, max_backward, (x, dy, dx, batch, hw, c));
}
