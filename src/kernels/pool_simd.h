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

/* dx += dy at each window's first maximum (a masked add: dx elsewhere keeps
 * its bits, -0 included, as in the scalar tail). */
CNN_ISA_BODY int CNN_SIMD_NAME(bwd_run)(const pool_win *w, const float *x, const float *y,
                                        const float *dy, float *dx, int c)
{
    for (; c + CNN_SIMD_W <= w->c; c += CNN_SIMD_W) {
        const CNN_V ymax = CNN_VLOAD(y + c), grad = CNN_VLOAD(dy + c);
        CNN_VI open = ~(CNN_VI){0};
        for (int i = 0; i < w->rows; i++)
            for (int j = 0; j < w->cols; j++) {
                int64_t k = w->at + i * w->rs + (int64_t)j * w->c + c;
                CNN_VI hit = (CNN_VLOAD(x + k) == ymax) & open;
                CNN_V d = CNN_VLOAD(dx + k);
                CNN_VSTORE(dx + k, CNN_VSELECT(hit, d + grad, d));
                open &= ~hit;
            }
    }
#if CNN_SIMD_W > 4
    return POOL_NARROWER(bwd_run)(w, x, y, dy, dx, c);
#else
    return c;
#endif
}

/* x := dy f'(y) at each window's first maximum, 0 at its other taps. */
CNN_ISA_BODY int CNN_SIMD_NAME(over_x_run)(const pool_win *w, float *x, const float *y,
                                           const float *dy, cnn_activation f, int c)
{
    for (; c + CNN_SIMD_W <= w->c; c += CNN_SIMD_W) {
        const CNN_V ymax = CNN_VLOAD(y + c);
        const CNN_VI grad = (CNN_VI)(CNN_VLOAD(dy + c) * CNN_SIMD_NAME(wide_derivative)(f, ymax));
        CNN_VI open = ~(CNN_VI){0};
        for (int i = 0; i < w->rows; i++)
            for (int j = 0; j < w->cols; j++) {
                float *p = x + w->at + i * w->rs + (int64_t)j * w->c + c;
                CNN_VI hit = (CNN_VLOAD(p) == ymax) & open;
                CNN_VSTORE(p, (CNN_V)(grad & hit));
                open &= ~hit;
            }
    }
#if CNN_SIMD_W > 4
    return POOL_NARROWER(over_x_run)(w, x, y, dy, f, c);
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

CNN_ISA_BODY void CNN_SIMD_NAME(backward_body)(const cnn_conv_geom *g, const float *x,
                                               const float *y, const float *dy, float *dx,
                                               int64_t r0, int64_t r1)
{
    const int64_t off = r0 * g->ow * (int64_t)g->c;
    y += off;
    dy += off;
    for (int64_t r = r0; r < r1; r++)
        for (int ox = 0; ox < g->ow; ox++, y += g->c, dy += g->c) {
            const pool_win w = window_of(g, r, ox);
            for (int c = CNN_SIMD_NAME(bwd_run)(&w, x, y, dy, dx, 0); c < w.c; c++) {
                int64_t k = first_max(&w, x, y[c], c);
                if (k >= 0)
                    dx[k] += dy[c];
            }
        }
}

/* f a constant where inlined from over_x_body, so its derivative folds in */
CNN_ISA_BODY void CNN_SIMD_NAME(over_x_rows)(const cnn_conv_geom *g, float *x, const float *y,
                                             const float *dy, cnn_activation f, int64_t r0,
                                             int64_t r1)
{
    const int64_t off = r0 * g->ow * (int64_t)g->c;
    y += off;
    dy += off;
    for (int64_t r = r0; r < r1; r++)
        for (int ox = 0; ox < g->ow; ox++, y += g->c, dy += g->c) {
            const pool_win w = window_of(g, r, ox);
            for (int c = CNN_SIMD_NAME(over_x_run)(&w, x, y, dy, f, 0); c < w.c; c++) {
                int64_t k = first_max(&w, x, y[c], c);
                float grad = dy[c] * cnn_activation_derivative(f, y[c]);
                for (int i = 0; i < w.rows; i++)
                    for (int j = 0; j < w.cols; j++)
                        x[w.at + i * w.rs + (int64_t)j * w.c + c] = 0.0f;
                if (k >= 0)
                    x[k] = grad;
            }
        }
}

CNN_ISA_BODY void CNN_SIMD_NAME(over_x_body)(const cnn_conv_geom *g, float *x, const float *y,
                                             const float *dy, cnn_activation f, int64_t r0,
                                             int64_t r1)
{
    if (f == CNN_ACTIVATION_RELU)
        CNN_SIMD_NAME(over_x_rows)(g, x, y, dy, CNN_ACTIVATION_RELU, r0, r1);
    else if (f == CNN_ACTIVATION_LINEAR)
        CNN_SIMD_NAME(over_x_rows)(g, x, y, dy, CNN_ACTIVATION_LINEAR, r0, r1);
    else
        CNN_SIMD_NAME(over_x_rows)(g, x, y, dy, f, r0, r1);
}

#undef POOL_NARROWER
#endif
