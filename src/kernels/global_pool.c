#include "kernels/global_pool.h"

/* No fused multiply-add anywhere in this file, whatever the compiler's
 * default (clang's is on, GCC's outside ISO C mode): the vector bodies and
 * scalar tails must round alike (kernels/isa.h). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

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

/* ---- The fast versions ------------------------------------------------------------
 * At the clone's register width: comparisons wider than the registers
 * become scalar code, so the max bodies run at 4 floats in the baseline
 * build. */

#define CNN_SIMD_W 4
#include "kernels/global_pool_simd.h"
#undef CNN_SIMD_W
#define CNN_SIMD_W 8
#include "kernels/global_pool_simd.h"
#undef CNN_SIMD_W
#define CNN_SIMD_W 16
#include "kernels/global_pool_simd.h"
#undef CNN_SIMD_W

#define CLONES(name, params, args) \
    CNN_ISA_CLONES_OF(name, name##_body_4, name##_body_8, name##_body_16, params, args)

CLONES(avg_forward, (const float *x, float *y, int64_t batch, int64_t hw, int c),
       (x, y, batch, hw, c))

void cnn_global_avgpool_forward(cnn_isa isa, const float *x, float *y, int64_t batch, int64_t hw,
                                int c)
{
    CNN_ISA_CALL(isa, avg_forward, (x, y, batch, hw, c));
}

CLONES(avg_backward, (const float *dy, float *dx, int64_t batch, int64_t hw, int c),
       (dy, dx, batch, hw, c))

void cnn_global_avgpool_backward(cnn_isa isa, const float *dy, float *dx, int64_t batch,
                                 int64_t hw, int c)
{
    CNN_ISA_CALL(isa, avg_backward, (dy, dx, batch, hw, c));
}

CLONES(max_forward, (const float *x, float *y, int64_t batch, int64_t hw, int c),
       (x, y, batch, hw, c))

void cnn_global_maxpool_forward(cnn_isa isa, const float *x, float *y, int64_t batch, int64_t hw,
                                int c)
{
    CNN_ISA_CALL(isa, max_forward, (x, y, batch, hw, c));
}

CLONES(max_backward,
       (const float *x, const float *dy, float *dx, int64_t batch, int64_t hw, int c),
       (x, dy, dx, batch, hw, c))

void cnn_global_maxpool_backward(cnn_isa isa, const float *x, const float *dy, float *dx,
                                 int64_t batch, int64_t hw, int c)
{
    if (hw > INT32_MAX) { /* pixel numbers would not fit the int lanes */
        cnn_global_maxpool_backward_naive(x, dy, dx, batch, hw, c);
        return;
    }
    CNN_ISA_CALL(isa, max_backward, (x, dy, dx, batch, hw, c));
}
