/* The fast global-pooling bodies (kernels/global_pool.c), a template
 * included once per vector width CNN_SIMD_W (kernels/isa.h). No include
 * guard on purpose. */

/* Sums in double, CNN_SIMD_W / 2 channels per double vector (of the
 * clone's register width), accumulators for a block of channels on the
 * stack. */
CNN_ISA_BODY void CNN_SIMD_NAME(avg_forward_body)(const float *x, float *y, int64_t batch,
                                                  int64_t hw, int c)
{
    typedef float half __attribute__((vector_size(2 * CNN_SIMD_W)));
    typedef double wide __attribute__((vector_size(4 * CNN_SIMD_W)));
    enum { H = CNN_SIMD_W / 2 };
    for (int64_t n = 0; n < batch; n++) {
        const float *xn = x + n * hw * c;
        for (int c0 = 0; c0 < c; c0 += CH_BLOCK) {
            const int nc = c - c0 < CH_BLOCK ? c - c0 : CH_BLOCK;
            double sum[CH_BLOCK] = {0};
            for (int64_t p = 0; p < hw; p++) {
                const float *xp = xn + p * c + c0;
                int k = 0;
                for (; k + H <= nc; k += H) {
                    half v;
                    wide s;
                    memcpy(&v, xp + k, sizeof v);
                    memcpy(&s, sum + k, sizeof s);
                    s += __builtin_convertvector(v, wide);
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

CNN_ISA_BODY void CNN_SIMD_NAME(avg_backward_body)(const float *dy, float *dx, int64_t batch,
                                                   int64_t hw, int c)
{
    const float inv = 1.0f / (float)hw;
    for (int64_t n = 0; n < batch; n++) {
        const float *dyn = dy + n * c;
        for (int64_t p = 0; p < hw; p++) {
            float *dxp = dx + (n * hw + p) * c;
            int k = 0;
            for (; k + CNN_SIMD_W <= c; k += CNN_SIMD_W)
                CNN_VSTORE(dxp + k, CNN_VLOAD(dyn + k) * inv);
            for (; k < c; k++)
                dxp[k] = dyn[k] * inv;
        }
    }
}

/* Running maxima in y itself (one row of c floats, in L1). */
CNN_ISA_BODY void CNN_SIMD_NAME(max_forward_body)(const float *x, float *y, int64_t batch,
                                                  int64_t hw, int c)
{
    for (int64_t n = 0; n < batch; n++) {
        const float *xn = x + n * hw * c;
        float *yn = y + n * c;
        for (int k = 0; k < c; k++)
            yn[k] = -INFINITY;
        for (int64_t p = 0; p < hw; p++) {
            const float *xp = xn + p * c;
            int k = 0;
            for (; k + CNN_SIMD_W <= c; k += CNN_SIMD_W) {
                CNN_V v = CNN_VLOAD(xp + k), b = CNN_VLOAD(yn + k);
                CNN_VSTORE(yn + k, CNN_VSELECT(v > b, v, b));
            }
            for (; k < c; k++)
                yn[k] = xp[k] > yn[k] ? xp[k] : yn[k];
        }
    }
}

/* One pass per image keeping each channel's best value and its pixel (as
 * int lanes: hw <= INT32_MAX, see cnn_global_maxpool_backward); strict >
 * keeps the first maximum as the naive loop does. */
CNN_ISA_BODY void CNN_SIMD_NAME(max_backward_body)(const float *x, const float *dy, float *dx,
                                                   int64_t batch, int64_t hw, int c)
{
    memset(dx, 0, (size_t)(batch * hw * c) * sizeof(float));
    if (hw == 0)
        return;
    for (int64_t n = 0; n < batch; n++) {
        const float *xn = x + n * hw * c;
        float *dxn = dx + n * hw * c;
        int k = 0;
        for (; k + CNN_SIMD_W <= c; k += CNN_SIMD_W) {
            CNN_V best = CNN_VLOAD(xn + k);
            CNN_VI at = {0};
            for (int64_t p = 1; p < hw; p++) {
                CNN_V v = CNN_VLOAD(xn + p * c + k);
                CNN_VI more = v > best;
                best = CNN_VSELECT(more, v, best);
                at = (at & ~more) | ((at * 0 + (int)p) & more);
            }
            for (int i = 0; i < CNN_SIMD_W; i++)
                dxn[(int64_t)at[i] * c + k + i] = dy[n * c + k + i];
        }
        for (; k < c; k++) {
            int64_t at = 0;
            for (int64_t p = 1; p < hw; p++)
                if (xn[p * c + k] > xn[at * c + k])
                    at = p;
            dxn[at * c + k] = dy[n * c + k];
        }
    }
}
