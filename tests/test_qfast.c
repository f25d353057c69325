/* The int8 fast paths added for speed, each against its reference for
 * exact equality: the vector float -> int8 quantization (special values,
 * ties, every tail length), Conv2D without im2col (c % 4 == 0, windows up
 * to and past its tap limit, N with partial panels, pixel sub-ranges), the
 * im2col path with padded rows (one to three channels, the first layer of
 * most networks), cnn_qgemm_padded, and the depthwise kernel's interior
 * (zero point folded into the bias) and border pixels over pixel ranges,
 * max pooling over pixel ranges. On a CPU without AVX-512 VNNI the
 * same calls run the other kernels and must still agree. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/qgemm.h"
#include "kernels/qops.h"
#include "kernels/quantize.h"
#include "test.h"

/* ---- Quantization --------------------------------------------------------- */

static void test_quantize(cnn_rng *r)
{
    enum { N = 1000 };
    float *x = test_xmalloc(N * sizeof(float));
    int8_t *ref = test_xmalloc(N), *q = test_xmalloc(N + 16);
    const float special[] = {0.0f, -0.0f, 0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 126.5f,
                             -127.5f, 1e30f, -1e30f, INFINITY, -INFINITY, NAN, 8388609.0f,
                             0.49999997f, -0.49999997f, 1000.5f, -1000.5f};
    const int ns = (int)(sizeof special / sizeof *special);
    const cnn_qparams params[] = {{1.0f, 0}, {1.0f, -128}, {0.5f, 127}, {0.1f, -3},
                                  {0.0392157f, -128}, {3.0f, 17}};
    int all_same = 1;
    for (size_t pi = 0; pi < sizeof params / sizeof *params; pi++) {
        cnn_qparams p = params[pi];
        for (int i = 0; i < N; i++) {
            if (i < ns)
                x[i] = special[i] * p.scale; /* ties stay ties after the division */
            else if (i % 3 == 0) /* exact halves around the grid */
                x[i] = ((float)test_rnd(r, -300, 300) + 0.5f) * p.scale;
            else
                x[i] = (float)(cnn_rng_uniform(r) * 400.0 - 200.0) * p.scale;
        }
        x[7] = NAN;
        cnn_q_quantize_ref(x, N, p, ref);
        for (int n = 0; n <= 40; n++) { /* every tail length, and the whole */
            int len = n == 40 ? N : n;
            memset(q, 0x5A, N + 16);
            cnn_q_quantize(x, len, p, q);
            int same = memcmp(q, ref, (size_t)len) == 0 && q[len] == 0x5A;
            if (!same)
                fprintf(stderr, "quantize: scale %g zero %d, n = %d differs\n", p.scale,
                        p.zero_point, len);
            all_same &= same;
        }
    }
    CHECK(all_same);
    /* by hand: ties away from zero, NaN to the zero point, clamps */
    float h[6] = {0.5f, -0.5f, 2.5f, NAN, 1e9f, -1e9f};
    int8_t o[6];
    cnn_q_quantize(h, 6, (cnn_qparams){1.0f, 3}, o);
    CHECK(o[0] == 4 && o[1] == 2 && o[2] == 6 && o[3] == 3 && o[4] == 127 && o[5] == -128);
    free(x);
    free(ref);
    free(q);
}

/* ---- Output stages ------------------------------------------------------- */

typedef struct stage {
    int32_t *bias, *mult, *shift;
    cnn_qoutput o;
} stage;

/* Per-channel multipliers aimed at the accumulators' range, some with left
 * shifts (the vector stage's second path), some exact 2^-k (ties). */
static void stage_make(stage *s, cnn_rng *r, int n, int K)
{
    s->bias = test_xmalloc((size_t)n * sizeof(int32_t));
    s->mult = test_xmalloc((size_t)n * sizeof(int32_t));
    s->shift = test_xmalloc((size_t)n * sizeof(int32_t));
    bool left = test_rnd(r, 0, 1);
    for (int j = 0; j < n; j++) {
        double m = ldexp(1.0 + cnn_rng_uniform(r), -test_rnd(r, 2, 16)) / sqrt((double)K);
        if (left && j % 7 == 3)
            m = ldexp(1.0 + cnn_rng_uniform(r), test_rnd(r, -2, 1));
        cnn_q_multiplier(m, &s->mult[j], &s->shift[j]);
        if (j % 5 == 1) {
            s->mult[j] = 1 << 30;
            s->shift[j] = -test_rnd(r, 0, 3);
        }
        s->bias[j] = test_rnd(r, -(1 << 16), 1 << 16);
    }
    s->o = (cnn_qoutput){.bias = test_rnd(r, 0, 3) ? s->bias : NULL,
                         .multiplier = s->mult,
                         .shift = s->shift,
                         .zero_point = test_rnd(r, -128, 127),
                         .lo = -128,
                         .hi = 127};
    if (test_rnd(r, 0, 2) == 0) { /* a fused relu-like clamp */
        s->o.lo = test_rnd(r, -128, 0);
        s->o.hi = test_rnd(r, s->o.lo, 127);
    }
}

static void stage_free(stage *s)
{
    free(s->bias);
    free(s->mult);
    free(s->shift);
}

static const cnn_qisa all_isas[] = {CNN_QISA_GENERIC, CNN_QISA_AVX2, CNN_QISA_VNNI};

/* ---- Convolution ----------------------------------------------------------- */

/* One Conv2D against the direct reference on every supported instruction
 * set, through cnn_qconv (which picks im2col or the in-place path). */
static int conv_case(cnn_rng *r, cnn_conv_geom g, int batch, int N)
{
    int K = g.kh * g.kw * g.c;
    int64_t pixels = (int64_t)batch * g.oh * g.ow, xn = (int64_t)batch * g.h * g.w * g.c;
    int8_t *x = test_xmalloc((size_t)xn), *kern = test_xmalloc((size_t)K * N);
    int8_t *ref = test_xmalloc((size_t)(pixels * N)), *y = test_xmalloc((size_t)(pixels * N));
    /* short chunks leave the in-place paths too little scratch for their
     * padding; the model's (256 rows) leaves enough */
    int64_t chunk = test_rnd(r, 0, 1) ? test_rnd(r, 1, 40) : 256;
    int8_t *col = test_xmalloc((size_t)(chunk * cnn_qconv_col_stride(K)));
    test_fill_i8(r, x, xn, -128, 127);
    test_fill_i8(r, kern, (int64_t)K * N, -127, 127);
    int32_t zx = test_rnd(r, -128, 127);
    stage s;
    stage_make(&s, r, N, K);
    int64_t m0 = test_rnd(r, 0, (int)(pixels - 1)), m1 = test_rnd(r, (int)m0 + 1, (int)pixels);
    if (test_rnd(r, 0, 1))
        m0 = 0, m1 = pixels;
    cnn_qconv_ref(&g, x, zx, kern, N, &s.o, m0, m1, ref);
    cnn_qpacked *P = NULL;
    CHECK_OK(cnn_qpacked_create(&P, kern, K, N));
    /* half the few-channel cases with the window-row layout too (used when
     * it adds no group over im2col's rows) */
    if (P && g.c % 4 != 0 && g.kw * g.c <= 64 && test_rnd(r, 0, 1))
        CHECK_OK(cnn_qpacked_add_rows(P, kern, g.kh, g.kw * g.c));
    int ok = P != NULL;
    for (size_t i = 0; P && i < sizeof all_isas / sizeof *all_isas; i++) {
        if (!cnn_qisa_supported(all_isas[i]))
            continue;
        memset(y, 0x5A, (size_t)(pixels * N));
        cnn_qconv(all_isas[i], &g, x, zx, P, &s.o, m0, m1, col, chunk, y);
        int same = memcmp(y, ref, (size_t)((m1 - m0) * N)) == 0;
        if (!same)
            fprintf(stderr, "qconv %s: %dx%dx%d k%dx%d s%d,%d d%d,%d pad %d,%d N=%d differs\n",
                    cnn_qisa_name(all_isas[i]), g.h, g.w, g.c, g.kh, g.kw, g.sh, g.sw, g.dh,
                    g.dw, g.pad_top, g.pad_left, N);
        ok &= same;
    }
    cnn_qpacked_free(P);
    stage_free(&s);
    free(x);
    free(kern);
    free(ref);
    free(y);
    free(col);
    return ok;
}

static cnn_conv_geom geom(cnn_rng *r, int c, int kmax)
{
    cnn_conv_geom g = {0};
    do {
        g.h = test_rnd(r, 1, 20);
        g.w = test_rnd(r, 1, 20);
        g.c = c;
        g.kh = test_rnd(r, 1, kmax);
        g.kw = test_rnd(r, 1, kmax);
        g.sh = test_rnd(r, 1, 2);
        g.sw = test_rnd(r, 1, 2);
        g.dh = test_rnd(r, 0, 3) ? 1 : 2;
        g.dw = test_rnd(r, 0, 3) ? 1 : 2;
        int same = test_rnd(r, 0, 1);
        g.oh = cnn_conv_out_size(g.h, g.kh, g.sh, g.dh, same, &g.pad_top);
        g.ow = cnn_conv_out_size(g.w, g.kw, g.sw, g.dw, same, &g.pad_left);
    } while (g.oh < 1 || g.ow < 1);
    return g;
}

static void test_conv_in_place(cnn_rng *r)
{
    int ok = 1;
    for (int t = 0; t < 80; t++) { /* c % 4 == 0: no im2col on VNNI */
        cnn_conv_geom g = geom(r, 4 * test_rnd(r, 1, 12), t % 8 == 0 ? 9 : 5);
        ok &= conv_case(r, g, test_rnd(r, 1, 3), test_rnd(r, 1, 90));
    }
    CHECK(ok);
    /* the tap limit: 8x8 = 64 taps in place, 9x9 = 81 through im2col */
    for (int k = 8; k <= 9; k++) {
        cnn_conv_geom g = {.h = 10, .w = 11, .c = 4, .kh = k, .kw = k, .sh = 1, .sw = 1,
                           .dh = 1, .dw = 1};
        g.oh = cnn_conv_out_size(g.h, k, 1, 1, 1, &g.pad_top);
        g.ow = cnn_conv_out_size(g.w, k, 1, 1, 1, &g.pad_left);
        CHECK(conv_case(r, g, 2, 33));
    }
    /* cnn_qconv_implicit itself: taken on VNNI for c % 4 == 0 only */
    cnn_conv_geom g = {.h = 3, .w = 3, .c = 4, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                       .dh = 1, .dw = 1, .oh = 1, .ow = 1};
    int8_t x[36] = {0}, kern[36 * 2] = {0}, y[2], pad[4];
    int32_t mult[2] = {1 << 30, 1 << 30}, shift[2] = {0, 0};
    cnn_qoutput o = {NULL, mult, shift, 0, -128, 127};
    cnn_qpacked *P = NULL;
    CHECK_OK(cnn_qpacked_create(&P, kern, 36, 2));
    if (P) {
        bool vnni = cnn_qisa_supported(CNN_QISA_VNNI);
        CHECK(cnn_qconv_implicit(CNN_QISA_AUTO, &g, x, 0, P, &o, 0, 1, pad, 4, y) == vnni);
        CHECK(!cnn_qconv_implicit(CNN_QISA_GENERIC, &g, x, 0, P, &o, 0, 1, pad, 4, y));
        cnn_conv_geom g3 = g;
        g3.c = 3; /* groups of 4 would straddle taps */
        CHECK(!cnn_qconv_implicit(CNN_QISA_AUTO, &g3, x, 0, P, &o, 0, 1, pad, 4, y));
        /* the window-row layout: kh * kw * c must be K, kw * c at most 64 */
        CHECK(cnn_qpacked_add_rows(P, kern, 5, 7) == CNN_ERR_INVALID_ARGUMENT);
        CHECK(cnn_qpacked_add_rows(P, kern, 2, 20) == CNN_ERR_INVALID_ARGUMENT);
        CHECK_OK(cnn_qpacked_add_rows(P, kern, 3, 12));
        CHECK(P->rows && P->rows->K == 36 && P->row_kh == 3 && P->row_width == 12);
    }
    cnn_qpacked_free(P);
}

static void test_conv_few_channels(cnn_rng *r)
{
    int ok = 1;
    for (int t = 0; t < 120; t++) { /* 1-3 channels: im2col rows padded to 4 bytes */
        cnn_conv_geom g = geom(r, test_rnd(r, 1, 3), t % 10 == 0 ? 11 : 7);
        ok &= conv_case(r, g, test_rnd(r, 1, 3), test_rnd(r, 1, 40));
    }
    for (int t = 0; t < 60; t++) { /* window rows of whole groups: read in place */
        static const int cw[][2] = {{1, 4}, {2, 2}, {1, 3}, {3, 1}, {1, 8}, {2, 6}, {3, 4}};
        int pick = test_rnd(r, 0, 6);
        cnn_conv_geom g = geom(r, cw[pick][0], 5);
        g.kw = cw[pick][1];
        g.dw = 1;
        g.ow = cnn_conv_out_size(g.w, g.kw, g.sw, 1, test_rnd(r, 0, 1), &g.pad_left);
        if (g.ow < 1)
            continue;
        ok &= conv_case(r, g, test_rnd(r, 1, 3), test_rnd(r, 1, 40));
    }
    for (int t = 0; t < 20; t++) { /* window rows near the 64-byte vector */
        cnn_conv_geom g = geom(r, test_rnd(r, 5, 13), 5);
        ok &= conv_case(r, g, test_rnd(r, 1, 2), test_rnd(r, 1, 20));
    }
    CHECK(ok);
}

/* ---- cnn_qgemm_padded ------------------------------------------------------ */

static void test_gemm_padded(cnn_rng *r)
{
    int ok = 1;
    for (int t = 0; t < 60; t++) {
        int M = test_rnd(r, 1, 40), N = test_rnd(r, 1, 80), K = test_rnd(r, 1, 70);
        int64_t lda = cnn_qconv_col_stride(K) + 4 * test_rnd(r, 0, 2), ldy = N + test_rnd(r, 0, 3);
        int8_t *A = test_xmalloc((size_t)(M * lda)), *B = test_xmalloc((size_t)K * N);
        int8_t *ref = test_xmalloc((size_t)(M * ldy)), *y = test_xmalloc((size_t)(M * ldy));
        test_fill_i8(r, A, M * lda, -128, 127); /* the bytes past K too: they must not count */
        test_fill_i8(r, B, (int64_t)K * N, -127, 127);
        int32_t a_zero = test_rnd(r, -128, 127);
        stage s;
        stage_make(&s, r, N, K);
        memset(ref, 0x5A, (size_t)(M * ldy));
        cnn_qgemm_ref(M, N, K, A, lda, a_zero, B, &s.o, ref, ldy);
        cnn_qpacked *P = NULL;
        CHECK_OK(cnn_qpacked_create(&P, B, K, N));
        for (size_t i = 0; P && i < sizeof all_isas / sizeof *all_isas; i++) {
            if (!cnn_qisa_supported(all_isas[i]))
                continue;
            memset(y, 0x5A, (size_t)(M * ldy));
            cnn_qgemm_padded(all_isas[i], M, A, lda, a_zero, P, &s.o, y, ldy);
            int same = memcmp(y, ref, (size_t)(M * ldy)) == 0;
            if (!same)
                fprintf(stderr, "qgemm_padded %s: M=%d N=%d K=%d differs\n",
                        cnn_qisa_name(all_isas[i]), M, N, K);
            ok &= same;
        }
        cnn_qpacked_free(P);
        stage_free(&s);
        free(A);
        free(B);
        free(ref);
        free(y);
    }
    CHECK(ok);
}

/* The VNNI output stage packs 2 or 4 whole panels (32 or 64 columns) per
 * store through int16 and int8 with saturation: sums placed at the edges of
 * those ranges (+-32768, +-128 around every zero point and clamp) must give
 * the reference's bytes, for odd and even row counts and a row stride
 * wider than N. */
static void test_gemm_packed_edges(cnn_rng *r)
{
    static const int32_t edge[] = {32767, 32768, -32768, -32769, 127, 128, -128, -129,
                                   255, -256, 32767 + 128, -32768 - 128, INT32_MAX / 2,
                                   INT32_MIN / 2, 0, 1};
    enum { NE = sizeof edge / sizeof *edge };
    int ok = 1;
    for (int t = 0; t < 24; t++) {
        int N = t % 3 == 0 ? 32 : t % 3 == 1 ? 64 : 128, K = 4, M = test_rnd(r, 1, 13);
        int64_t ldy = N + 16 * (t % 2);
        int8_t A[13 * 4], B[4 * 128], *ref = test_xmalloc((size_t)(M * ldy)),
                                      *y = test_xmalloc((size_t)(M * ldy));
        int32_t bias[128], mult[128], shift[128];
        test_fill_i8(r, A, M * K, -3, 3);
        test_fill_i8(r, B, K * N, -3, 3);
        for (int j = 0; j < N; j++) { /* v = round(acc / 2): bias 2 * edge, acc within +-36 */
            int64_t e = (int64_t)edge[(j + t) % NE] * 2;
            bias[j] = (int32_t)(e > INT32_MAX ? INT32_MAX : e < INT32_MIN ? INT32_MIN : e);
            mult[j] = 1 << 30;
            shift[j] = 0;
        }
        int32_t zp = t % 4 == 0 ? -128 : t % 4 == 1 ? 127 : test_rnd(r, -128, 127);
        cnn_qoutput o = {bias, mult, shift, zp, -128, 127};
        if (t % 5 == 2) {
            o.lo = test_rnd(r, -128, 0);
            o.hi = test_rnd(r, o.lo, 127);
        }
        cnn_qgemm_ref(M, N, K, A, K, 0, B, &o, ref, ldy);
        cnn_qpacked *P = NULL;
        CHECK_OK(cnn_qpacked_create(&P, B, K, N));
        for (size_t i = 0; P && i < sizeof all_isas / sizeof *all_isas; i++) {
            if (!cnn_qisa_supported(all_isas[i]))
                continue;
            memset(y, 0x5A, (size_t)(M * ldy));
            cnn_qgemm(all_isas[i], M, A, K, 0, P, &o, y, ldy);
            int same = 1;
            for (int m = 0; m < M; m++)
                same &= memcmp(y + m * ldy, ref + m * ldy, (size_t)N) == 0 &&
                        (ldy == N || y[m * ldy + N] == 0x5A);
            if (!same)
                fprintf(stderr, "qgemm edges %s: M=%d N=%d zp=%d differs\n",
                        cnn_qisa_name(all_isas[i]), M, N, (int)zp);
            ok &= same;
        }
        cnn_qpacked_free(P);
        free(ref);
        free(y);
    }
    CHECK(ok);
}

/* ---- Depthwise ------------------------------------------------------------- */

static void test_depthwise(cnn_rng *r)
{
    int ok = 1;
    for (int t = 0; t < 80; t++) {
        /* larger images than the kernel tests': most windows inside, some
         * borders; 6x6 windows (36 taps) take the other path */
        /* a third with 8 channels: two pixels per vector */
        cnn_conv_geom g = geom(r, t % 3 == 0 ? 8 : test_rnd(r, 1, 70), t % 10 == 0 ? 6 : 5);
        int batch = test_rnd(r, 1, 3);
        int64_t pixels = (int64_t)batch * g.oh * g.ow, xn = (int64_t)batch * g.h * g.w * g.c;
        int taps = g.kh * g.kw;
        int8_t *x = test_xmalloc((size_t)xn), *kern = test_xmalloc((size_t)taps * g.c);
        int8_t *ref = test_xmalloc((size_t)(pixels * g.c)),
               *y = test_xmalloc((size_t)(pixels * g.c));
        int32_t *acc = test_xmalloc((size_t)g.c * sizeof(int32_t));
        test_fill_i8(r, x, xn, -128, 127);
        test_fill_i8(r, kern, (int64_t)taps * g.c, -127, 127);
        int32_t zx = test_rnd(r, -128, 127);
        stage s;
        stage_make(&s, r, g.c, taps);
        int64_t m0 = test_rnd(r, 0, (int)(pixels - 1)), m1 = test_rnd(r, (int)m0 + 1, (int)pixels);
        cnn_qdepthwise_ref(&g, 1, x, zx, kern, &s.o, m0, m1, ref);
        for (size_t i = 0; i < sizeof all_isas / sizeof *all_isas; i++) {
            if (!cnn_qisa_supported(all_isas[i]))
                continue;
            memset(y, 0x5A, (size_t)(pixels * g.c));
            cnn_qdepthwise(all_isas[i], &g, 1, x, zx, kern, &s.o, m0, m1, acc, y);
            int same = memcmp(y, ref, (size_t)((m1 - m0) * g.c)) == 0 &&
                       (m1 - m0 == pixels || y[(m1 - m0) * g.c] == 0x5A);
            if (!same)
                fprintf(stderr, "qdepthwise %s: %dx%dx%d k%dx%d s%d,%d d%d,%d pixels %lld-%lld "
                                "differs\n",
                        cnn_qisa_name(all_isas[i]), g.h, g.w, g.c, g.kh, g.kw, g.sh, g.sw, g.dh,
                        g.dw, (long long)m0, (long long)m1);
            ok &= same;
        }
        stage_free(&s);
        free(x);
        free(kern);
        free(ref);
        free(y);
        free(acc);
    }
    CHECK(ok);
}

/* ---- Max pooling ------------------------------------------------------------ */

static void test_maxpool(cnn_rng *r)
{
    int ok = 1;
    for (int t = 0; t < 60; t++) {
        cnn_conv_geom g = geom(r, test_rnd(r, 1, 150), 3); /* 64- and 32-byte blocks, tails */
        g.dh = g.dw = 1;
        int same = test_rnd(r, 0, 1);
        g.oh = cnn_conv_out_size(g.h, g.kh, g.sh, 1, same, &g.pad_top);
        g.ow = cnn_conv_out_size(g.w, g.kw, g.sw, 1, same, &g.pad_left);
        if (g.oh < 1 || g.ow < 1)
            continue;
        int batch = test_rnd(r, 1, 3);
        int64_t pixels = (int64_t)batch * g.oh * g.ow, xn = (int64_t)batch * g.h * g.w * g.c;
        int8_t *x = test_xmalloc((size_t)xn), *ref = test_xmalloc((size_t)(pixels * g.c) + 1);
        int8_t *y = test_xmalloc((size_t)(pixels * g.c) + 1);
        test_fill_i8(r, x, xn, -128, 127);
        int32_t lo = test_rnd(r, -128, 20), hi = test_rnd(r, lo, 127);
        int64_t m0 = test_rnd(r, 0, (int)(pixels - 1)), m1 = test_rnd(r, (int)m0 + 1, (int)pixels);
        cnn_qmaxpool_ref(&g, x, lo, hi, m0, m1, ref);
        for (size_t i = 0; i < sizeof all_isas / sizeof *all_isas; i++) {
            if (!cnn_qisa_supported(all_isas[i]))
                continue;
            memset(y, 0x5A, (size_t)(pixels * g.c) + 1);
            cnn_qmaxpool(all_isas[i], &g, x, lo, hi, m0, m1, y);
            int same_bytes = memcmp(y, ref, (size_t)((m1 - m0) * g.c)) == 0 &&
                             y[(m1 - m0) * g.c] == 0x5A;
            if (!same_bytes)
                fprintf(stderr, "qmaxpool %s: %dx%dx%d k%dx%d pixels %lld-%lld differs\n",
                        cnn_qisa_name(all_isas[i]), g.h, g.w, g.c, g.kh, g.kw, (long long)m0,
                        (long long)m1);
            ok &= same_bytes;
        }
        free(x);
        free(ref);
        free(y);
    }
    CHECK(ok);
}

int main(void)
{
    cnn_rng r;
    cnn_rng_seed(&r, 1616);
    test_quantize(&r);
    test_conv_in_place(&r);
    test_conv_few_channels(&r);
    test_gemm_padded(&r);
    test_gemm_packed_edges(&r);
    test_depthwise(&r);
    test_maxpool(&r);
    return test_finish("test_qfast");
}
