/* The fast MaxPooling2D bodies (kernels/pool.c), a template included once
 * per vector width CNN_SIMD_W (kernels/isa.h), narrowest first. Each
 * width's *_run does the channel blocks of CNN_SIMD_W of one window and
 * hands what is left to the next narrower width, so the AVX-512 clone
 * works 16, 8, then 4 channels at a time and only the last 0-3 channels
 * go through the scalar tail. Each lane does what the reference does for
 * its channel, in the same tap order: the first tap equal to the maximum
 * wins, NaN taps are never the maximum (v > m is false) nor equal to it.
 * No include guard on purpose. */

#if CNN_SIMD_W > 4
#define POOL_NARROWER(f) CNN_SIMD_CAT(f, CNN_SIMD_HALF)
#endif

CNN_ISA_BODY int CNN_SIMD_NAME(fwd_run)(const pool_win *w, const float *x, float *y, int c)
{
    for (; c + CNN_SIMD_W <= w->c; c += CNN_SIMD_W) {
        CNN_V m = (CNN_V){0} - INFINITY;
        for (int i = 0; i < w->rows; i++)
            for (int j = 0; j < w->cols; j++) {
                CNN_V v = CNN_VLOAD(x + w->at + i * w->rs + (int64_t)j * w->c + c);
                m = CNN_VSELECT(v > m, v, m);
            }
        CNN_VSTORE(y + c, m);
    }
#if CNN_SIMD_W > 4
    return POOL_NARROWER(fwd_run)(w, x, y, c);
#else
    return c;
#endif
}

/* The backward passes, f and over constants where inlined from the
 * bodies below (so that the derivative folds into the loop): dy routed to
 * each lane's first tap equal to the maximum y, there added to dst (a
 * masked add: dst elsewhere keeps its bits, -0 included, as in the scalar
 * tail) or, over (dst is x), dy f'(y) stored there (-0 too) and +0 at the
 * other taps. */
CNN_ISA_BODY int CNN_SIMD_NAME(bwd_run)(const pool_win *w, const float *x, const float *y,
                                        const float *dy, float *dst, cnn_activation f, bool over,
                                        int c)
{
    for (; c + CNN_SIMD_W <= w->c; c += CNN_SIMD_W) {
        const CNN_V ymax = CNN_VLOAD(y + c);
        CNN_V grad = CNN_VLOAD(dy + c);
        if (over)
            grad = grad * CNN_SIMD_NAME(wide_derivative)(f, ymax);
        CNN_VI open = ~(CNN_VI){0};
        for (int i = 0; i < w->rows; i++)
            for (int j = 0; j < w->cols; j++) {
                int64_t k = w->at + i * w->rs + (int64_t)j * w->c + c;
                CNN_VI hit = (CNN_VLOAD(x + k) == ymax) & open;
                if (over) {
                    CNN_VSTORE(dst + k, (CNN_V)((CNN_VI)grad & hit));
                } else {
                    CNN_V d = CNN_VLOAD(dst + k);
                    CNN_VSTORE(dst + k, CNN_VSELECT(hit, d + grad, d));
                }
                open &= ~hit;
            }
    }
#if CNN_SIMD_W > 4
    return POOL_NARROWER(bwd_run)(w, x, y, dy, dst, f, over, c);
#else
    return c;
#endif
}

/* ---- The whole passes, at the widths a clone runs (8 and 16) ---------------------- */
#if CNN_SIMD_W > 4

CNN_ISA_BODY void CNN_SIMD_NAME(forward_body)(const cnn_conv_geom *g, const float *x, float *y,
                                              int64_t r0, int64_t r1)
{
    y += r0 * g->ow * (int64_t)g->c;
    for (int64_t r = r0; r < r1; r++)
        for (int ox = 0; ox < g->ow; ox++, y += g->c) {
            const pool_win w = window_of(g, r, ox);
            for (int c = CNN_SIMD_NAME(fwd_run)(&w, x, y, 0); c < w.c; c++) {
                float m = -INFINITY;
                for (int i = 0; i < w.rows; i++)
                    for (int j = 0; j < w.cols; j++) {
                        float v = x[w.at + i * w.rs + (int64_t)j * w.c + c];
                        m = v > m ? v : m;
                    }
                y[c] = m;
            }
        }
}

CNN_ISA_BODY void CNN_SIMD_NAME(backward_rows)(const cnn_conv_geom *g, const float *x,
                                               const float *y, const float *dy, float *dst,
                                               cnn_activation f, bool over, int64_t r0, int64_t r1)
{
    const int64_t off = r0 * g->ow * (int64_t)g->c;
    y += off;
    dy += off;
    for (int64_t r = r0; r < r1; r++)
        for (int ox = 0; ox < g->ow; ox++, y += g->c, dy += g->c) {
            const pool_win w = window_of(g, r, ox);
            for (int c = CNN_SIMD_NAME(bwd_run)(&w, x, y, dy, dst, f, over, 0); c < w.c; c++) {
                int64_t k = first_max(&w, x, y[c], c);
                if (!over) {
                    if (k >= 0)
                        dst[k] += dy[c];
                    continue;
                }
                float grad = dy[c] * cnn_activation_derivative(f, y[c]);
                for (int i = 0; i < w.rows; i++)
                    for (int j = 0; j < w.cols; j++)
                        dst[w.at + i * w.rs + (int64_t)j * w.c + c] = 0.0f;
                if (k >= 0)
                    dst[k] = grad;
            }
        }
}

CNN_ISA_BODY void CNN_SIMD_NAME(backward_body)(const cnn_conv_geom *g, const float *x,
                                               const float *y, const float *dy, float *dx,
                                               int64_t r0, int64_t r1)
{
    CNN_SIMD_NAME(backward_rows)(g, x, y, dy, dx, CNN_ACTIVATION_LINEAR, false, r0, r1);
}

CNN_ISA_BODY void CNN_SIMD_NAME(over_x_body)(const cnn_conv_geom *g, float *x, const float *y,
                                             const float *dy, cnn_activation f, int64_t r0,
                                             int64_t r1)
{
    if (f == CNN_ACTIVATION_RELU)
        CNN_SIMD_NAME(backward_rows)(g, x, y, dy, x, CNN_ACTIVATION_RELU, true, r0, r1);
    else if (f == CNN_ACTIVATION_LINEAR)
        CNN_SIMD_NAME(backward_rows)(g, x, y, dy, x, CNN_ACTIVATION_LINEAR, true, r0, r1);
    else
        CNN_SIMD_NAME(backward_rows)(g, x, y, dy, x, f, true, r0, r1);
}

#undef POOL_NARROWER
#endif
