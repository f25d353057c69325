/* The int8 kernels: hand-worked cases of the fixed-point arithmetic of
 * docs/QUANTIZATION.md (rounding ties, negative values, saturation,
 * multiplier derivation, parameter nudging), and every fast kernel against
 * its reference - random shapes with tails, per-channel multipliers,
 * extreme values, every instruction set this CPU has - compared for exact
 * integer equality. */
#include <stdint.h>
#include <stdlib.h>

#include "core/rng.h"
#include "kernels/qgemm.h"
#include "kernels/qops.h"
#include "kernels/quantize.h"
#include "test.h"

/* ---- The fixed-point helpers, by hand ------------------------------------ */

static void test_srdhm(void)
{
    CHECK(cnn_q_srdhm(1 << 30, 1 << 30) == 1 << 29);       /* 0.5 * 0.5 in Q0.31 */
    CHECK(cnn_q_srdhm(INT32_MIN, INT32_MIN) == INT32_MAX); /* the one overflow */
    CHECK(cnn_q_srdhm(INT32_MIN, INT32_MAX) == -INT32_MAX);
    /* ties (x * 0.5 with x odd) go toward +infinity */
    CHECK(cnn_q_srdhm(1, 1 << 30) == 1);   /* 0.5 -> 1 */
    CHECK(cnn_q_srdhm(3, 1 << 30) == 2);   /* 1.5 -> 2 */
    CHECK(cnn_q_srdhm(-1, 1 << 30) == 0);  /* -0.5 -> 0 */
    CHECK(cnn_q_srdhm(-3, 1 << 30) == -1); /* -1.5 -> -1 */
    CHECK(cnn_q_srdhm(-5, 1 << 30) == -2); /* -2.5 -> -2 */
    /* not ties: nearest */
    CHECK(cnn_q_srdhm(-7, 3 << 28) == -3);  /* -2.625 */
    CHECK(cnn_q_srdhm(7, 3 << 28) == 3);    /* 2.625 */
    CHECK(cnn_q_srdhm(100, 0) == 0);
    /* (a * b + 2^30) >> 31, the form the VNNI kernel uses, agrees for b >= 0 */
    cnn_rng r;
    cnn_rng_seed(&r, 7);
    int agree = 1;
    for (int i = 0; i < 200000; i++) {
        int32_t a = (int32_t)(uint32_t)cnn_rng_next(&r), b = (int32_t)(cnn_rng_next(&r) >> 33);
        if (i % 4 == 0)
            a >>= test_rnd(&r, 0, 30);
        int64_t alt = ((int64_t)a * b + (INT64_C(1) << 30)) >> 31;
        agree &= alt == cnn_q_srdhm(a, b);
    }
    CHECK(agree);
}

static void test_rdbpot(void)
{
    CHECK(cnn_q_rdbpot(5, 1) == 3);   /* 2.5 -> 3: ties away from zero */
    CHECK(cnn_q_rdbpot(-5, 1) == -3); /* -2.5 -> -3 */
    CHECK(cnn_q_rdbpot(4, 1) == 2);
    CHECK(cnn_q_rdbpot(-4, 1) == -2);
    CHECK(cnn_q_rdbpot(3, 2) == 1);   /* 0.75 */
    CHECK(cnn_q_rdbpot(-3, 2) == -1);
    CHECK(cnn_q_rdbpot(2, 2) == 1);   /* 0.5 -> 1 */
    CHECK(cnn_q_rdbpot(-2, 2) == -1); /* -0.5 -> -1 */
    CHECK(cnn_q_rdbpot(1, 2) == 0);   /* 0.25 */
    CHECK(cnn_q_rdbpot(-1, 2) == 0);
    CHECK(cnn_q_rdbpot(7, 0) == 7);
    CHECK(cnn_q_rdbpot(-7, 0) == -7);
    CHECK(cnn_q_rdbpot(INT32_MIN, 31) == -1);
    CHECK(cnn_q_rdbpot(INT32_MAX, 31) == 1);
    CHECK(cnn_q_rdbpot(1 << 29, 31) == 0);      /* 0.25 */
    CHECK(cnn_q_rdbpot(-(1 << 30), 31) == -1);  /* -0.5 -> -1 */
}

static void test_multiplier(void)
{
    int32_t m, s;
    cnn_q_multiplier(0.5, &m, &s);
    CHECK(m == 1 << 30 && s == 0);
    cnn_q_multiplier(1.0, &m, &s);
    CHECK(m == 1 << 30 && s == 1);
    cnn_q_multiplier(0.25, &m, &s);
    CHECK(m == 1 << 30 && s == -1);
    cnn_q_multiplier(0.75, &m, &s);
    CHECK(m == 3 << 29 && s == 0);
    cnn_q_multiplier(1.0 - ldexp(1.0, -40), &m, &s); /* mantissa rounds up to 2^31 */
    CHECK(m == 1 << 30 && s == 1);
    cnn_q_multiplier(0.1, &m, &s); /* 0.8 * 2^-3: round(0.8 * 2^31) */
    CHECK(m == 1717986918 && s == -3);
    cnn_q_multiplier(ldexp(1.0, -40), &m, &s); /* below 2^-32: flushed to 0 */
    CHECK(m == 0 && s == 0);
    cnn_q_multiplier(ldexp(0.75, -31), &m, &s); /* shift exactly -31 is kept */
    CHECK(m == 3 << 29 && s == -31);
    cnn_q_multiplier(ldexp(1.0, 40), &m, &s); /* beyond 2^30: saturated */
    CHECK(m == INT32_MAX && s == 30);
    cnn_q_multiplier(0.0, &m, &s);
    CHECK(m == 0 && s == 0);
    cnn_q_multiplier(-0.5, &m, &s);
    CHECK(m == 0 && s == 0);
    cnn_q_multiplier(NAN, &m, &s);
    CHECK(m == 0 && s == 0);
}

static void test_mul_and_requant(void)
{
    const int32_t half = 1 << 30; /* with shift 0: 0.5 */
    CHECK(cnn_q_mul(100, half, 0) == 50);
    CHECK(cnn_q_mul(3, half, 0) == 2);   /* 1.5 -> 2 */
    CHECK(cnn_q_mul(-3, half, 0) == -1); /* -1.5 -> -1: the high multiply's tie goes up */
    /* 0.25 = 0.5 * 2^-1: exact high multiply, then the shift's tie goes away from 0 */
    CHECK(cnn_q_mul(6, half, -1) == 2);   /* 1.5 */
    CHECK(cnn_q_mul(-6, half, -1) == -2); /* -1.5 */
    CHECK(cnn_q_mul(-2, half, -1) == -1); /* -0.5 */
    CHECK(cnn_q_mul(2, half, -1) == 1);
    CHECK(cnn_q_mul(10, half, 2) == 20); /* 2.0 = 0.5 * 2^2: left shift first */
    CHECK(cnn_q_mul(1 << 30, half, 3) == 1 << 30); /* 2^33 saturates to INT32_MAX first */
    CHECK(cnn_q_mul(-(1 << 30), half, 3) == -(1 << 30));
    CHECK(cnn_q_mul(123456, 0, 0) == 0);

    /* the whole output stage: scale 0.125, zero point -5 */
    int32_t mult = half, shift = -2, bias = 24;
    cnn_qoutput o = {.bias = NULL, .multiplier = &mult, .shift = &shift, .zero_point = -5,
                     .lo = -128, .hi = 127};
    CHECK(cnn_q_requant(&o, 0, 1000) == 120);  /* 125 - 5 */
    CHECK(cnn_q_requant(&o, 0, 1100) == 127);  /* 137.5 -> 138 - 5 = 133: saturated */
    CHECK(cnn_q_requant(&o, 0, -2000) == -128); /* -250 - 5 */
    CHECK(cnn_q_requant(&o, 0, -12) == -7);     /* -1.5 -> -2 - 5 */
    CHECK(cnn_q_requant(&o, 0, 12) == -3);      /* 1.5 -> 2 - 5 */
    o.bias = &bias;
    CHECK(cnn_q_requant(&o, 0, -12) == -3); /* (-12 + 24) / 8 = 1.5 -> 2, - 5 */
    o.lo = -5;                              /* a fused relu */
    CHECK(cnn_q_requant(&o, 0, -500) == -5);
    bias = INT32_MAX; /* the bias wraps modulo 2^32, as the accumulation does */
    CHECK(cnn_q_requant(&o, 0, 1) == cnn_q_clamp(cnn_q_mul(INT32_MIN, mult, shift) - 5, -5, 127));
}

static void test_params(void)
{
    cnn_qparams p = cnn_q_choose_params(-1.0f, 1.0f);
    CHECK(fabsf(p.scale - 2.0f / 255.0f) < 1e-9f);
    CHECK(p.zero_point == -1); /* -0.5, rounded away from zero */
    p = cnn_q_choose_params(0.0f, 6.0f);
    CHECK(p.zero_point == -128 && fabsf(p.scale - 6.0f / 255.0f) < 1e-9f);
    p = cnn_q_choose_params(-3.0f, 0.0f);
    CHECK(p.zero_point == 127);
    p = cnn_q_choose_params(2.0f, 5.0f); /* widened to contain 0 */
    CHECK(p.zero_point == -128 && fabsf(p.scale - 5.0f / 255.0f) < 1e-9f);
    p = cnn_q_choose_params(0.0f, 0.0f);
    CHECK(p.scale == 1.0f && p.zero_point == 0);
    /* 0 is exact for any range */
    cnn_rng r;
    cnn_rng_seed(&r, 11);
    int exact = 1;
    for (int i = 0; i < 1000; i++) {
        float lo = -10.0f * (float)cnn_rng_uniform(&r), hi = 10.0f * (float)cnn_rng_uniform(&r);
        cnn_qparams q = cnn_q_choose_params(lo, hi);
        int8_t z = cnn_q_quantize_one(0.0f, q);
        float back;
        cnn_q_dequantize(&z, 1, q, &back);
        exact &= back == 0.0f && q.zero_point >= -128 && q.zero_point <= 127;
    }
    CHECK(exact);

    cnn_qparams h = {0.5f, 3};
    CHECK(cnn_q_quantize_one(0.25f, h) == 4);  /* 0.5 -> 1, + 3 */
    CHECK(cnn_q_quantize_one(-0.25f, h) == 2); /* -0.5 -> -1 */
    CHECK(cnn_q_quantize_one(1000.0f, h) == 127);
    CHECK(cnn_q_quantize_one(-1e30f, h) == -128);
    CHECK(cnn_q_quantize_one(NAN, h) == 3);
    CHECK(cnn_q_quantize_one(INFINITY, h) == 127);

    float w[6] = {1.0f, 0.0f, -0.3f, 0.0f, 0.5f, 0.0f}; /* 3 rows x 2 channels */
    float ws[2];
    int8_t wq[6];
    cnn_q_weights(w, 3, 2, ws, wq);
    CHECK(fabsf(ws[0] - 1.0f / 127.0f) < 1e-9f && ws[1] == 1.0f);
    CHECK(wq[0] == 127 && wq[2] == -38 && wq[4] == 64 && wq[1] == 0 && wq[3] == 0);

    float b[3] = {1.0f, -1.0f, 1e30f}, bs[3] = {0.25f, 0.5f, 1.0f};
    int32_t bq[3];
    cnn_q_bias(b, 3, 0.5f, bs, bq);
    CHECK(bq[0] == 8 && bq[1] == -4 && bq[2] == INT32_MAX);

    int32_t lo, hi;
    cnn_qparams a = {0.05f, -100};
    cnn_q_activation_range(CNN_QACT_NONE, a, &lo, &hi);
    CHECK(lo == -128 && hi == 127);
    cnn_q_activation_range(CNN_QACT_RELU, a, &lo, &hi);
    CHECK(lo == -100 && hi == 127);
    cnn_q_activation_range(CNN_QACT_RELU6, a, &lo, &hi);
    CHECK(lo == -100 && hi == 20); /* 6 / 0.05 = 120 */
    a.scale = 0.01f;
    cnn_q_activation_range(CNN_QACT_RELU6, a, &lo, &hi);
    CHECK(hi == 127); /* 600 steps do not fit */
}

/* ---- GEMM ------------------------------------------------------------------ */

/* A random output stage for n channels: per-channel multipliers from 2^-20
 * to 4 (left shifts too), biases up to 2^20, a random zero point and clamp. */
typedef struct {
    int32_t *bias, *mult, *shift;
    cnn_qoutput o;
} stage;

static void stage_make(stage *s, cnn_rng *r, int n, int K)
{
    s->bias = test_xmalloc((size_t)n * sizeof(int32_t));
    s->mult = test_xmalloc((size_t)n * sizeof(int32_t));
    s->shift = test_xmalloc((size_t)n * sizeof(int32_t));
    /* half the stages have no left shift: the VNNI output stage has a
     * separate path for those */
    bool left = test_rnd(r, 0, 1);
    for (int j = 0; j < n; j++) {
        /* an accumulator spans about sqrt(K) * 127 * 73: aim most outputs into range */
        double m = ldexp(1.0 + cnn_rng_uniform(r), -test_rnd(r, 2, 20)) / sqrt((double)K);
        if (left && j % 7 == 3)
            m = ldexp(1.0 + cnn_rng_uniform(r),
                      test_rnd(r, -2, 1)); /* some saturate, left shifts */
        cnn_q_multiplier(m, &s->mult[j], &s->shift[j]);
        if (j % 5 == 1) { /* 2^-k exactly: ties in both roundings, often */
            s->mult[j] = 1 << 30;
            s->shift[j] = -test_rnd(r, 0, 3);
            s->bias[j] = test_rnd(r, -300, 300);
            continue;
        }
        s->bias[j] = test_rnd(r, -(1 << 20), 1 << 20);
    }
    int zp = test_rnd(r, -128, 127);
    s->o = (cnn_qoutput){.bias = test_rnd(r, 0, 3) ? s->bias : NULL,
                         .multiplier = s->mult,
                         .shift = s->shift,
                         .zero_point = zp,
                         .lo = -128,
                         .hi = 127};
    if (test_rnd(r, 0, 2) == 0) { /* a fused relu6-like clamp */
        s->o.lo = zp;
        s->o.hi = cnn_q_clamp(zp + test_rnd(r, 0, 200), -128, 127);
    }
}

static void stage_free(stage *s)
{
    free(s->bias);
    free(s->mult);
    free(s->shift);
}

static const cnn_qisa all_isas[] = {CNN_QISA_GENERIC, CNN_QISA_AVX2, CNN_QISA_VNNI};

/* One case on the reference and every supported ISA; lda/ldy padding must
 * stay untouched. a_lo/a_hi and b_lo/b_hi bound the random values. */
static void gemm_case(cnn_rng *r, int M, int N, int K, int pad, int a_lo, int a_hi, int b_lo,
                      int b_hi, int32_t a_zero)
{
    int64_t lda = K + pad, ldy = N + pad;
    int8_t *A = test_xmalloc((size_t)(M * lda)), *B = test_xmalloc((size_t)K * N);
    int8_t *ref = test_xmalloc((size_t)(M * ldy)), *y = test_xmalloc((size_t)(M * ldy));
    test_fill_i8(r, A, M * lda, a_lo, a_hi);
    test_fill_i8(r, B, (int64_t)K * N, b_lo, b_hi);
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
        cnn_qgemm(all_isas[i], M, A, lda, a_zero, P, &s.o, y, ldy);
        int same = memcmp(y, ref, (size_t)(M * ldy)) == 0;
        if (!same) {
            int64_t at = 0;
            while (y[at] == ref[at])
                at++;
            fprintf(stderr, "qgemm %s M=%d N=%d K=%d pad=%d a_zero=%d: first difference at "
                            "(%lld, %lld): %d, reference %d\n",
                    cnn_qisa_name(all_isas[i]), M, N, K, pad, a_zero, (long long)(at / ldy),
                    (long long)(at % ldy), y[at], ref[at]);
        }
        CHECK(same);
    }
    cnn_qpacked_free(P);
    stage_free(&s);
    free(A);
    free(B);
    free(ref);
    free(y);
}

static void test_qgemm(cnn_rng *r)
{
    for (int t = 0; t < 300; t++) /* tails of every kind: rows, panels, groups */
        gemm_case(r, test_rnd(r, 1, 20), test_rnd(r, 1, 70), test_rnd(r, 1, 100),
                  test_rnd(r, 0, 2) * 3, -128, 127, -127, 127, test_rnd(r, -128, 127));
    /* the library's own shapes: conv 5x5x1 -> 32, 3x3x32 -> 64, dense 3136 -> 128, 128 -> 10 */
    gemm_case(r, 784, 32, 25, 0, -128, 127, -127, 127, -128);
    gemm_case(r, 196, 64, 288, 0, -128, 127, -127, 127, 17);
    gemm_case(r, 64, 128, 3136, 0, -128, 127, -127, 127, -3);
    gemm_case(r, 64, 10, 128, 0, -128, 127, -127, 127, 100);
    /* the largest accumulators: K at its limit, every product -255 * 127 */
    gemm_case(r, 3, 17, CNN_QGEMM_MAX_K, 1, -128, -128, 127, 127, 127);
    gemm_case(r, 3, 17, CNN_QGEMM_MAX_K, 0, 127, 127, -127, -127, -128);
    gemm_case(r, 7, 33, 1001, 0, -128, -127, 126, 127, 127);

    cnn_qpacked *P = (cnn_qpacked *)1;
    int8_t b = 1;
    CHECK_FAILS(cnn_qpacked_create(&P, &b, 0, 1), CNN_ERR_INVALID_ARGUMENT, "K = 0");
    CHECK(P == NULL);
    CHECK_FAILS(cnn_qpacked_create(&P, &b, CNN_QGEMM_MAX_K + 1, 1), CNN_ERR_INVALID_ARGUMENT,
                "1 <= K <= 65536");
    CHECK_FAILS(cnn_qpacked_create(&P, &b, 1, 0), CNN_ERR_INVALID_ARGUMENT, "N = 0");
    cnn_qpacked_free(NULL);
    CHECK(cnn_qisa_resolve(CNN_QISA_AUTO) != CNN_QISA_AUTO);
    CHECK(cnn_qisa_supported(CNN_QISA_GENERIC));
}

/* The scheme end to end: a quantized dense layer against the float one.
 * Each output's error is at most about one output step plus the inputs'
 * and weights' rounding carried through the sum. */
static void test_dense_vs_float(cnn_rng *r)
{
    enum { M = 16, K = 200, N = 24 };
    static float x[M * K], w[K * N], b[N], yf[M * N], ws[N];
    static int8_t xq[M * K], wq[K * N], yq[M * N];
    int32_t bq[N], mult[N], shift[N];
    for (int i = 0; i < M * K; i++)
        x[i] = (float)(cnn_rng_uniform(r) * 3.0 - 1.0);
    for (int i = 0; i < K * N; i++)
        w[i] = (float)((cnn_rng_uniform(r) - 0.5) * 0.2 * (1 + i % N)); /* per-channel ranges */
    for (int j = 0; j < N; j++)
        b[j] = (float)(cnn_rng_uniform(r) - 0.5);
    float lo = 0, hi = 0;
    for (int m = 0; m < M; m++)
        for (int j = 0; j < N; j++) {
            double s = b[j];
            for (int k = 0; k < K; k++)
                s += (double)x[m * K + k] * w[k * N + j];
            yf[m * N + j] = (float)s;
            lo = fminf(lo, (float)s);
            hi = fmaxf(hi, (float)s);
        }
    cnn_qparams px = cnn_q_choose_params(-1.0f, 2.0f), py = cnn_q_choose_params(lo, hi);
    cnn_q_quantize(x, M * K, px, xq);
    cnn_q_weights(w, K, N, ws, wq);
    cnn_q_bias(b, N, px.scale, ws, bq);
    cnn_q_output_multipliers(px.scale, ws, N, py.scale, mult, shift);
    cnn_qoutput o = {bq, mult, shift, py.zero_point, -128, 127};
    cnn_qpacked *P = NULL;
    CHECK_OK(cnn_qpacked_create(&P, wq, K, N));
    if (!P)
        return;
    cnn_qgemm(CNN_QISA_AUTO, M, xq, K, px.zero_point, P, &o, yq, N);
    cnn_qpacked_free(P);
    double worst = 0;
    for (int i = 0; i < M * N; i++) {
        float back;
        cnn_q_dequantize(&yq[i], 1, py, &back);
        double err = fabs((double)back - yf[i]) / py.scale;
        worst = err > worst ? err : worst;
    }
    if (worst > 3.0)
        fprintf(stderr, "dense vs float: worst error %.2f output steps\n", worst);
    CHECK(worst <= 3.0);
}

/* ---- Convolution, depthwise, pooling ------------------------------------------ */

static cnn_conv_geom random_geom(cnn_rng *r, int *batch)
{
    cnn_conv_geom g = {0};
    for (;;) {
        *batch = test_rnd(r, 1, 3);
        g.h = test_rnd(r, 1, 12);
        g.w = test_rnd(r, 1, 12);
        g.c = test_rnd(r, 1, 40);
        g.kh = test_rnd(r, 1, 5);
        g.kw = test_rnd(r, 1, 5);
        g.sh = test_rnd(r, 1, 3);
        g.sw = test_rnd(r, 1, 3);
        g.dh = test_rnd(r, 0, 3) ? 1 : 2;
        g.dw = test_rnd(r, 0, 3) ? 1 : 2;
        int same = test_rnd(r, 0, 1);
        g.oh = cnn_conv_out_size(g.h, g.kh, g.sh, g.dh, same, &g.pad_top);
        g.ow = cnn_conv_out_size(g.w, g.kw, g.sw, g.dw, same, &g.pad_left);
        if (g.oh > 0 && g.ow > 0)
            return g;
    }
}

static void test_qconv(cnn_rng *r)
{
    for (int t = 0; t < 120; t++) {
        int batch;
        cnn_conv_geom g = random_geom(r, &batch);
        if (t % 10 == 0) { /* pointwise: read in place */
            g.kh = g.kw = g.sh = g.sw = g.dh = g.dw = 1;
            g.pad_top = g.pad_left = 0;
            g.oh = g.h;
            g.ow = g.w;
        }
        int N = test_rnd(r, 1, 70), K = g.kh * g.kw * g.c;
        int64_t pixels = (int64_t)batch * g.oh * g.ow, xn = (int64_t)batch * g.h * g.w * g.c;
        int8_t *x = test_xmalloc((size_t)xn), *kern = test_xmalloc((size_t)K * N);
        int8_t *ref = test_xmalloc((size_t)(pixels * N)), *y = test_xmalloc((size_t)(pixels * N));
        int64_t chunk = test_rnd(r, 1, 50);
        int8_t *col = test_xmalloc((size_t)(chunk * cnn_qconv_col_stride(K)));
        test_fill_i8(r, x, xn, -128, 127);
        test_fill_i8(r, kern, (int64_t)K * N, -127, 127);
        int32_t zx = test_rnd(r, -128, 127);
        stage s;
        stage_make(&s, r, N, K);
        /* a sub-range of pixels, as a thread would get */
        int64_t m0 = test_rnd(r, 0, (int)(pixels - 1)), m1 = test_rnd(r, (int)m0 + 1, (int)pixels);
        cnn_qconv_ref(&g, x, zx, kern, N, &s.o, m0, m1, ref);
        cnn_qpacked *P = NULL;
        CHECK_OK(cnn_qpacked_create(&P, kern, K, N));
        for (size_t i = 0; P && i < sizeof all_isas / sizeof *all_isas; i++) {
            if (!cnn_qisa_supported(all_isas[i]))
                continue;
            memset(y, 0x5A, (size_t)(pixels * N));
            cnn_qconv(all_isas[i], &g, x, zx, P, &s.o, m0, m1, col, chunk, y);
            int same = memcmp(y, ref, (size_t)((m1 - m0) * N)) == 0;
            if (!same)
                fprintf(stderr,
                        "qconv %s: %dx%dx%d k%dx%d s%d,%d d%d,%d pad %d,%d N=%d differs\n",
                        cnn_qisa_name(all_isas[i]), g.h, g.w, g.c, g.kh, g.kw, g.sh, g.sw, g.dh,
                        g.dw, g.pad_top, g.pad_left, N);
            CHECK(same);
        }
        cnn_qpacked_free(P);
        stage_free(&s);
        free(x);
        free(kern);
        free(ref);
        free(y);
        free(col);
    }
    /* padding stands for real 0: a 3x3 'same' conv of an image that is all
     * zero point gives bias-only outputs everywhere, borders included */
    cnn_conv_geom g = {.h = 4, .w = 4, .c = 2, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                       .dh = 1, .dw = 1};
    g.oh = cnn_conv_out_size(4, 3, 1, 1, 1, &g.pad_top);
    g.ow = cnn_conv_out_size(4, 3, 1, 1, 1, &g.pad_left);
    int8_t x[32], kern[18], y[16], col[16 * 20];
    memset(x, -20, sizeof x);
    memset(kern, 100, sizeof kern);
    int32_t bias = 80, mult = 1 << 30, shift = -2; /* 80 * 0.125 = 10 */
    cnn_qoutput o = {&bias, &mult, &shift, 1, -128, 127};
    cnn_qpacked *P = NULL;
    CHECK_OK(cnn_qpacked_create(&P, kern, 18, 1));
    if (P) {
        cnn_qconv(CNN_QISA_AUTO, &g, x, -20, P, &o, 0, 16, col, 16, y);
        int all = 1;
        for (int i = 0; i < 16; i++)
            all &= y[i] == 11;
        CHECK(all);
    }
    cnn_qpacked_free(P);
}

static void test_qdepthwise(cnn_rng *r)
{
    for (int t = 0; t < 80; t++) {
        int batch, mult = t % 4 == 0 ? 2 : 1;
        cnn_conv_geom g = random_geom(r, &batch);
        int CO = g.c * mult;
        int64_t pixels = (int64_t)batch * g.oh * g.ow, xn = (int64_t)batch * g.h * g.w * g.c;
        int8_t *x = test_xmalloc((size_t)xn), *kern = test_xmalloc((size_t)g.kh * g.kw * CO);
        int8_t *ref = test_xmalloc((size_t)(pixels * CO)), *y = test_xmalloc((size_t)(pixels * CO));
        int32_t *acc = test_xmalloc((size_t)CO * sizeof(int32_t));
        test_fill_i8(r, x, xn, -128, 127);
        test_fill_i8(r, kern, (int64_t)g.kh * g.kw * CO, -127, 127);
        int32_t zx = test_rnd(r, -128, 127);
        stage s;
        stage_make(&s, r, CO, g.kh * g.kw);
        cnn_qdepthwise_ref(&g, mult, x, zx, kern, &s.o, 0, pixels, ref);
        for (size_t i = 0; i < sizeof all_isas / sizeof *all_isas; i++) {
            if (!cnn_qisa_supported(all_isas[i]))
                continue;
            memset(y, 0x5A, (size_t)(pixels * CO));
            cnn_qdepthwise(all_isas[i], &g, mult, x, zx, kern, &s.o, 0, pixels, acc, y);
            int same = memcmp(y, ref, (size_t)(pixels * CO)) == 0;
            if (!same)
                fprintf(stderr, "qdepthwise %s: c=%d mult=%d differs\n",
                        cnn_qisa_name(all_isas[i]), g.c, mult);
            CHECK(same);
        }
        stage_free(&s);
        free(x);
        free(kern);
        free(ref);
        free(y);
        free(acc);
    }
}

/* Pooling against the formulas computed in double. */
static void test_qpool(cnn_rng *r)
{
    /* hand-worked averages: 1 x 1 x 4 windows over one row */
    cnn_conv_geom g = {.h = 1, .w = 2, .c = 4, .kh = 1, .kw = 2, .sh = 1, .sw = 2,
                       .dh = 1, .dw = 1, .oh = 1, .ow = 1};
    int8_t x[8] = {1, -1, 1, 10, 2, -2, 2, 11}, y[4];
    cnn_qavgpool(&g, x, -128, 127, 0, 1, y);
    CHECK(y[0] == 2 && y[1] == -2 && y[2] == 2 && y[3] == 11); /* 1.5, -1.5, 10.5 away from 0 */
    cnn_qavgpool(&g, x, -128, 0, 0, 1, y);
    CHECK(y[3] == 0); /* the clamp of a fused relu on zero point 0 */
    cnn_qmaxpool_ref(&g, x, -1, 127, 0, 1, y);
    CHECK(y[0] == 2 && y[1] == -1 && y[3] == 11);

    for (int t = 0; t < 60; t++) {
        int batch;
        cnn_conv_geom q = random_geom(r, &batch);
        q.dh = q.dw = 1;
        q.c = test_rnd(r, 1, 150); /* whole vectors of 32 and 64 channels, and tails */
        int same = test_rnd(r, 0, 1);
        q.oh = cnn_conv_out_size(q.h, q.kh, q.sh, 1, same, &q.pad_top);
        q.ow = cnn_conv_out_size(q.w, q.kw, q.sw, 1, same, &q.pad_left);
        if (q.oh == 0 || q.ow == 0)
            continue;
        int64_t pixels = (int64_t)batch * q.oh * q.ow, xn = (int64_t)batch * q.h * q.w * q.c;
        int8_t *xs = test_xmalloc((size_t)xn), *ya = test_xmalloc((size_t)(pixels * q.c));
        int8_t *ym = test_xmalloc((size_t)(pixels * q.c));
        test_fill_i8(r, xs, xn, -128, 127);
        cnn_qavgpool(&q, xs, -128, 127, 0, pixels, ya);
        cnn_qmaxpool_ref(&q, xs, -128, 127, 0, pixels, ym);
        /* every ISA against the reference, with a random clamp */
        int32_t lo = test_rnd(r, -128, 20), hi = test_rnd(r, lo, 127);
        int8_t *want = test_xmalloc((size_t)(pixels * q.c)),
               *got = test_xmalloc((size_t)(pixels * q.c));
        cnn_qmaxpool_ref(&q, xs, lo, hi, 0, pixels, want);
        for (size_t i = 0; i < sizeof all_isas / sizeof *all_isas; i++) {
            if (!cnn_qisa_supported(all_isas[i]))
                continue;
            memset(got, 0x5A, (size_t)(pixels * q.c));
            cnn_qmaxpool(all_isas[i], &q, xs, lo, hi, 0, pixels, got);
            int same = memcmp(got, want, (size_t)(pixels * q.c)) == 0;
            if (!same)
                fprintf(stderr, "qmaxpool %s: c=%d differs\n", cnn_qisa_name(all_isas[i]), q.c);
            CHECK(same);
        }
        free(want);
        free(got);
        int ok = 1;
        for (int64_t m = 0; m < pixels && ok; m++) {
            int64_t n = m / ((int64_t)q.oh * q.ow);
            int oy = (int)(m % ((int64_t)q.oh * q.ow)) / q.ow, ox = (int)(m % q.ow);
            for (int c = 0; c < q.c; c++) {
                double sum = 0;
                int count = 0, best = -129;
                for (int ky = 0; ky < q.kh; ky++)
                    for (int kx = 0; kx < q.kw; kx++) {
                        int iy = oy * q.sh - q.pad_top + ky, ix = ox * q.sw - q.pad_left + kx;
                        if (iy < 0 || iy >= q.h || ix < 0 || ix >= q.w)
                            continue;
                        int v = xs[((n * q.h + iy) * q.w + ix) * q.c + c];
                        sum += v;
                        count++;
                        best = v > best ? v : best;
                    }
                double want = round(sum / count); /* half away from zero */
                ok &= ya[m * q.c + c] == (int8_t)want && ym[m * q.c + c] == best;
            }
        }
        CHECK(ok);
        free(xs);
        free(ya);
        free(ym);
    }
}

static void test_qadd(cnn_rng *r)
{
    /* by hand: scales 0.5, 0.5 -> 1, zero points 0: 3 + 4 halves = 3.5 -> 4 */
    cnn_qparams h = {0.5f, 0}, one = {1.0f, 0};
    cnn_qadd_spec p;
    cnn_qadd_prepare(h, h, one, CNN_QACT_NONE, &p);
    CHECK(p.a_mult == 1 << 30 && p.a_shift == 0 && p.y_mult == 1 << 30 && p.y_shift == -19);
    int8_t a[4] = {3, -3, 127, -128}, b[4] = {4, -4, 127, -128}, y[4];
    cnn_qadd_ref(&p, a, b, 4, y);
    CHECK(y[0] == 4 && y[1] == -4 && y[2] == 127 && y[3] == -128);
    cnn_qadd_prepare(h, h, one, CNN_QACT_RELU, &p);
    cnn_qadd_ref(&p, a, b, 4, y);
    CHECK(y[0] == 4 && y[1] == 0 && y[3] == 0);

    /* random parameters: within one step of the float sum */
    int ok = 1, same = 1;
    for (int t = 0; t < 200; t++) {
        cnn_qparams pa = {(float)ldexp(1 + cnn_rng_uniform(r), -test_rnd(r, 1, 8)),
                          test_rnd(r, -128, 127)};
        cnn_qparams pb = {(float)ldexp(1 + cnn_rng_uniform(r), -test_rnd(r, 1, 8)),
                          test_rnd(r, -128, 127)};
        cnn_qparams py = {(float)ldexp(1 + cnn_rng_uniform(r), -test_rnd(r, 0, 7)),
                          test_rnd(r, -128, 127)};
        cnn_qadd_prepare(pa, pb, py, t % 3 == 0 ? CNN_QACT_RELU6 : CNN_QACT_NONE, &p);
        int8_t qa[64], qb[64], qy[64];
        test_fill_i8(r, qa, 64, -128, 127);
        test_fill_i8(r, qb, 64, -128, 127);
        cnn_qadd_ref(&p, qa, qb, 64, qy);
        /* every ISA against the reference, on a length with a tail */
        int n = test_rnd(r, 1, 64);
        for (size_t i = 0; i < sizeof all_isas / sizeof *all_isas; i++) {
            if (!cnn_qisa_supported(all_isas[i]))
                continue;
            int8_t got[64];
            memset(got, 0x5A, sizeof got);
            cnn_qadd(all_isas[i], &p, qa, qb, n, got);
            same &= memcmp(got, qy, (size_t)n) == 0 && (n == 64 || got[n] == 0x5A);
        }
        for (int i = 0; i < 64; i++) {
            double real = pa.scale * (qa[i] - pa.zero_point) + pb.scale * (qb[i] - pb.zero_point);
            double want = real / py.scale + py.zero_point;
            want = want < p.lo ? p.lo : want > p.hi ? p.hi : want;
            if (fabs(qy[i] - want) > 1.0) {
                fprintf(stderr, "qadd: %d + %d -> %d, float %.3f\n", qa[i], qb[i], qy[i], want);
                ok = 0;
            }
        }
    }
    CHECK(ok);
    CHECK(same);
}

/* Requantization, Concatenate, ZeroPadding2D and global average pooling,
 * by hand (docs/QUANTIZATION.md sections 7a-7c). */
static void test_graph_ops(void)
{
    /* requantize: scale 0.5 -> 0.25 is m = 2 = (2^30, shift 2); 3 steps
     * above zero point 10 are 6 steps above -5 */
    int32_t mult, shift;
    cnn_q_multiplier((double)0.5f / (double)0.25f, &mult, &shift);
    CHECK(mult == 1 << 30 && shift == 2);
    CHECK(cnn_q_requant_one(13, 10, mult, shift, -5) == 1);
    CHECK(cnn_q_requant_one(127, 10, mult, shift, -5) == 127); /* 229: saturates */
    /* scale 0.25 -> 0.5 is m = 0.5: ties go up in the high multiply
     * (1.5 -> 2, -1.5 -> -1) */
    cnn_q_multiplier((double)0.25f / (double)0.5f, &mult, &shift);
    CHECK(mult == 1 << 30 && shift == 0);
    CHECK(cnn_q_requant_one(3, 0, mult, shift, -1) == 1);
    CHECK(cnn_q_requant_one(-3, 0, mult, shift, -1) == -2);
    CHECK(cnn_q_requant_one(5, 0, mult, shift, 0) == 3); /* 2.5 -> 3 */

    /* concatenation of two pixels: input 0 (1 channel, the output's
     * parameters: copied), input 1 (2 channels, zero point 4, m = 0.5) */
    int8_t x0[2] = {-7, 9}, x1[4] = {4, 10, -2, 127};
    const int8_t *xs[2] = {x0, x1};
    int channels[2] = {1, 2};
    int32_t zeros[2] = {0, 4}, mults[2] = {0, mult}, shifts[2] = {0, shift};
    bool same[2] = {true, false};
    int8_t y[6];
    cnn_qconcat(2, xs, channels, zeros, mults, shifts, same, 0, 0, 2, y);
    /* (4 - 4) / 2 = 0, (10 - 4) / 2 = 3, (-2 - 4) / 2 = -3, (127 - 4) / 2 = 61.5 -> 62 */
    const int8_t want[6] = {-7, 0, 3, 9, -3, 62};
    CHECK(memcmp(y, want, 6) == 0);
    /* pixel 1 alone lands at the start of its own output rows */
    memset(y, 0, sizeof y);
    cnn_qconcat(2, xs, channels, zeros, mults, shifts, same, 0, 1, 2, y);
    CHECK(memcmp(y, want + 3, 3) == 0);

    /* zero padding: (1, 2, 1) {1, 2}, top 1, right 1 -> (2, 3, 1) with the
     * zero point 7 around */
    cnn_conv_geom g = {.h = 1, .w = 2, .c = 1, .oh = 2, .ow = 3};
    int pad[4] = {1, 0, 0, 1};
    int8_t px[2] = {1, 2}, py[6];
    cnn_qzeropad(&g, pad, px, 7, 0, 2, py);
    const int8_t pwant[6] = {7, 7, 7, 1, 2, 7};
    CHECK(memcmp(py, pwant, 6) == 0);
    memset(py, 0, sizeof py);
    cnn_qzeropad(&g, pad, px, 7, 1, 2, py); /* row 1 only */
    CHECK(memcmp(py, pwant + 3, 3) == 0);

    /* global average pooling: the average over the whole map, rounded half
     * away from zero: 11 / 4 = 2.75 -> 3, -11 / 4 -> -3, 10 / 4 = 2.5 -> 3 */
    cnn_conv_geom ga = {.h = 2, .w = 2, .c = 3, .kh = 2, .kw = 2, .sh = 2, .sw = 2, .dh = 1,
                        .dw = 1, .oh = 1, .ow = 1};
    int8_t gx[12] = {1, -1, 1, 2, -2, 2, 3, -3, 3, 5, -5, 4}, gy[3];
    cnn_qavgpool(&ga, gx, -128, 127, 0, 1, gy);
    CHECK(gy[0] == 3 && gy[1] == -3 && gy[2] == 3);

    /* with its own output parameters: input scale 0.5, zero point 1; output
     * scale 0.25, zero point -10: m = 0.5 / (4 * 0.25) = 0.5 = (2^30, 0).
     * Channel 0: sum (x - 1) = 7, 3.5 -> 4 (ties up), y = -6; channel 1:
     * -15 -> -7.5 -> -7, y = -17; channel 2: 6 -> 3, y = -7 */
    int32_t gm[3], gs[3];
    for (int c = 0; c < 3; c++)
        cnn_q_multiplier((double)0.5f / ((double)0.25f * 4), &gm[c], &gs[c]);
    CHECK(gm[0] == 1 << 30 && gs[0] == 0);
    cnn_qoutput go = {NULL, gm, gs, -10, -128, 127};
    cnn_qglobal_avg(&ga, gx, 1, &go, 0, 1, gy);
    CHECK(gy[0] == -6 && gy[1] == -17 && gy[2] == -7);
    go.lo = -10; /* a fused relu: [zero point, 127] */
    cnn_qglobal_avg(&ga, gx, 1, &go, 0, 1, gy);
    CHECK(gy[0] == -6 && gy[1] == -10 && gy[2] == -7);
}

int main(void)
{
    cnn_rng r;
    cnn_rng_seed(&r, 2026);
    test_srdhm();
    test_rdbpot();
    test_multiplier();
    test_mul_and_requant();
    test_params();
    test_qgemm(&r);
    test_dense_vs_float(&r);
    test_qconv(&r);
    test_qdepthwise(&r);
    test_qpool(&r);
    test_qadd(&r);
    test_graph_ops();
    for (size_t i = 0; i < sizeof all_isas / sizeof *all_isas; i++)
        fprintf(stderr, "%s: %s\n", cnn_qisa_name(all_isas[i]),
                cnn_qisa_supported(all_isas[i]) ? "tested" : "not on this CPU");
    return test_finish("test_qkernels");
}
