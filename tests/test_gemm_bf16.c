/* The bfloat16 GEMM (kernels/gemm_bf16.c):
 *   - the rounding to bfloat16 (ties to even, NaN, infinities, subnormals);
 *   - the scalar reference within the bfloat16 error bound of the exact
 *     product: |C - exact| <= 2^-7 * sum |a| |b| (each input rounded to 8
 *     significant bits, relative error <= 2^-8 each) + float summation;
 *   - the AVX-512 BF16 kernel bit-identical to the reference over random
 *     shapes (odd K, tails of M and N, several K and N blocks, all four
 *     transposes, alpha/beta, padded leading dimensions), on 1 and 2
 *     threads;
 *   - the implicit-GEMM entry points (B packed once; A in rows with a stride,
 *     or gathered: rows of adjacent floats or bfloat16 bits, runs of koff of
 *     every length, scattered floats) bit-identical to the reference, with odd K, two K
 *     blocks, two column blocks, ragged panels, beta 0 and 1;
 *   - their spans variants (A zero outside column spans, skipped) too: spans
 *     ending at odd k, K blocks with no span, no span at all, and the sign
 *     of a zero where a skipped pair would have turned an accumulator's -0
 *     (a flushed negative subnormal) into +0;
 *   - cnn_bf16_convert rounds as cnn_bf16_from_float;
 *   - without bfloat16 (allow_bf16 false) it is cnn_gemm exactly. */
#include <stdint.h>
#include <stdlib.h>

#include "core/rng.h"
#include "kernels/gemm.h"
#include "test.h"

static float uniform(cnn_rng *r, float lo, float hi) { return lo + (hi - lo) * cnn_rng_uniform(r); }

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void test_rounding(void)
{
    CHECK(cnn_bf16_from_float(1.0f) == 0x3f80);
    CHECK(cnn_bf16_from_float(-2.0f) == 0xc000);
    /* 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (down) */
    CHECK(cnn_bf16_from_float(from_bits(0x3f808000u)) == 0x3f80);
    /* 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even (up) */
    CHECK(cnn_bf16_from_float(from_bits(0x3f818000u)) == 0x3f82);
    CHECK(cnn_bf16_from_float(from_bits(0x3f808001u)) == 0x3f81); /* above half: up */
    CHECK(cnn_bf16_from_float(from_bits(0x3f807fffu)) == 0x3f80); /* below half: down */
    CHECK(cnn_bf16_from_float(INFINITY) == 0x7f80);
    CHECK(cnn_bf16_from_float(-INFINITY) == 0xff80);
    CHECK(cnn_bf16_from_float(from_bits(0x7f7fffffu)) == 0x7f80); /* FLT_MAX rounds to inf */
    CHECK(cnn_bf16_from_float(from_bits(0x7f800001u)) == 0x7fc0); /* signalling NaN: quiet */
    CHECK(cnn_bf16_from_float(from_bits(0x00400000u)) == 0x0000); /* subnormal: zero */
    CHECK(cnn_bf16_from_float(from_bits(0x80400000u)) == 0x8000);
    CHECK(cnn_bf16_to_float(0x3f80) == 1.0f);
    CHECK(cnn_gemm_bf16_kstep(1) == 2 && cnn_gemm_bf16_kstep(1023) == 1024);
    CHECK(cnn_gemm_bf16_kstep(1024) == 1024 && cnn_gemm_bf16_kstep(1025) == 514);
}

typedef struct {
    bool ta, tb;
    int M, N, K, pad;
    float alpha, beta;
} bf16_case;

/* One case: the reference against the exact product (bound above), and the
 * 1- and 2-thread kernels against the reference, bit for bit. */
static void run_case(cnn_gemm_ctx *one, cnn_gemm_ctx *two, bf16_case c, cnn_rng *r)
{
    int lda = (c.ta ? c.M : c.K) + c.pad, ldb = (c.tb ? c.K : c.N) + c.pad, ldc = c.N + c.pad;
    long an = (long)(c.ta ? c.K : c.M) * lda, bn = (long)(c.tb ? c.N : c.K) * ldb;
    long cn = (long)c.M * ldc;
    float *A = malloc((size_t)an * sizeof *A), *B = malloc((size_t)bn * sizeof *B);
    float *C0 = malloc((size_t)cn * sizeof *C0), *ref = malloc((size_t)cn * sizeof *ref);
    float *c1 = malloc((size_t)cn * sizeof *c1), *c2 = malloc((size_t)cn * sizeof *c2);
    float *absa = malloc((size_t)an * sizeof *absa), *absb = malloc((size_t)bn * sizeof *absb);
    float *exact = malloc((size_t)cn * sizeof *exact), *mag = malloc((size_t)cn * sizeof *mag);
    if (!A || !B || !C0 || !ref || !c1 || !c2 || !absa || !absb || !exact || !mag) {
        fprintf(stderr, "test_gemm_bf16: out of memory\n");
        exit(1);
    }
    for (long i = 0; i < an; i++)
        absa[i] = fabsf(A[i] = uniform(r, -2, 2));
    for (long i = 0; i < bn; i++)
        absb[i] = fabsf(B[i] = uniform(r, -2, 2));
    for (long i = 0; i < cn; i++)
        C0[i] = i % ldc >= c.N ? 777.0f : c.beta == 0 ? NAN : uniform(r, -1, 1);
    memcpy(ref, C0, (size_t)cn * sizeof *C0);
    memcpy(c1, C0, (size_t)cn * sizeof *C0);
    memcpy(c2, C0, (size_t)cn * sizeof *C0);
    memcpy(exact, C0, (size_t)cn * sizeof *C0);
    memset(mag, 0, (size_t)cn * sizeof *mag);

    cnn_gemm_bf16_reference(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A, lda, B, ldb, c.beta, ref, ldc);
    cnn_gemm_naive(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A, lda, B, ldb, c.beta, exact, ldc);
    cnn_gemm_naive(c.ta, c.tb, c.M, c.N, c.K, fabsf(c.alpha), absa, lda, absb, ldb, 0, mag, ldc);
    char what[160];
    snprintf(what, sizeof what, "ta=%d tb=%d M=%d N=%d K=%d pad=%d alpha=%g beta=%g", c.ta, c.tb,
             c.M, c.N, c.K, c.pad, (double)c.alpha, (double)c.beta);
    double worst = 0;
    bool bounded = true;
    for (long i = 0; i < cn; i++) {
        if (i % ldc >= c.N) {
            bounded &= ref[i] == 777.0f;
            continue;
        }
        double err = fabs((double)ref[i] - exact[i]);
        double bound = 0x1p-7 * mag[i] * 1.01 + 1e-6 * (c.K + 1) * (mag[i] + 1);
        if (err / bound > worst)
            worst = err / bound;
        bounded &= err <= bound;
    }
    if (!bounded)
        fprintf(stderr, "%s: reference off the bf16 bound (%.3g of it)\n", what, worst);
    CHECK(bounded);

    if (cnn_gemm_ctx_has_bf16(one)) {
        cnn_gemm_bf16(one, c.ta, c.tb, c.M, c.N, c.K, c.alpha, A, lda, B, ldb, c.beta, c1, ldc);
        cnn_gemm_bf16(two, c.ta, c.tb, c.M, c.N, c.K, c.alpha, A, lda, B, ldb, c.beta, c2, ldc);
        long bad = -1;
        for (long i = 0; i < cn && bad < 0; i++)
            if (memcmp(&c1[i], &ref[i], sizeof(float)) != 0)
                bad = i;
        if (bad >= 0)
            fprintf(stderr, "%s: kernel %.9g, reference %.9g at (%ld, %ld)\n", what,
                    (double)c1[bad], (double)ref[bad], bad / ldc, bad % ldc);
        CHECK(bad < 0);
        CHECK(memcmp(c1, c2, (size_t)cn * sizeof *c1) == 0);
    }
    free(A);
    free(B);
    free(C0);
    free(ref);
    free(c1);
    free(c2);
    free(absa);
    free(absb);
    free(exact);
    free(mag);
}

static void test_shapes(cnn_gemm_ctx *one, cnn_gemm_ctx *two, cnn_rng *r)
{
    static const float alphas[] = {1.0f, 0.5f, -1.25f};
    static const float betas[] = {0.0f, 1.0f, 0.75f};
    for (int t = 0; t < 200; t++) {
        bf16_case c = {.ta = t & 1, .tb = (t >> 1) & 1,
                       .M = 1 + (int)(cnn_rng_next(r) % 70), .N = 1 + (int)(cnn_rng_next(r) % 70),
                       .K = 1 + (int)(cnn_rng_next(r) % 70), .pad = (int)(cnn_rng_next(r) % 3) * 3,
                       .alpha = alphas[(t >> 2) % 3], .beta = betas[(t / 12) % 3]};
        run_case(one, two, c, r);
    }
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = t >> 1;
        bf16_case big[] = {
            {ta, tb, 100, 70, 2201, 1, 1.0f, 1.0f},  /* three K blocks, odd */
            {ta, tb, 30, 600, 1100, 0, 1.0f, 0.0f},  /* two K blocks, two column blocks */
            {ta, tb, 37, 1100, 45, 0, 1.0f, 0.0f},   /* short K: all columns in one B block */
            {ta, tb, 20, 1100, 1024, 0, 1.0f, 0.5f}, /* K = KC: three column blocks */
            {ta, tb, 500, 19, 23, 2, -0.5f, 0.75f},  /* split by rows */
            {ta, tb, 64, 64, 800, 0, 1.0f, 0.0f},    /* conv2 forward, 8 x 8 pixels */
        };
        for (size_t i = 0; i < sizeof big / sizeof *big; i++)
            run_case(one, two, big[i], r);
    }
}

/* The spans of k where A may be nonzero (the _spans entry points), and
 * whether A, B and C are the tiny values of negzero_fill. */
typedef struct {
    const int *spans; /* NULL: the plain entry points */
    int nspans;
    bool tiny;
} gather_spans;

/* Values whose sums are a negative subnormal, flushed to -0 by the first
 * pair (k = 0: 1e-20 * -1e-20 in columns j % 4 < 2), then zero pairs whose
 * B is +1 (j even) or -1 (j odd): the reference turns the -0 into +0 only
 * in the columns where some zero pair's B is +1, so a skipped pair shows
 * as a -0 left where the reference has +0 (and C = -0 under beta 1). */
static void negzero_fill(int M, int N, int K, float *A, int lda, float *B, float *C0, float beta)
{
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++)
            A[(long)i * lda + k] = k == 0 ? 1e-20f : 0.0f;
    for (int k = 0; k < K; k++)
        for (int j = 0; j < N; j++)
            B[(long)k * N + j] = k == 0 ? (j % 4 < 2 ? -1e-20f : 1e-20f) : j % 2 ? -1.0f : 1.0f;
    for (long i = 0; i < (long)M * N; i++)
        C0[i] = beta == 0 ? NAN : -0.0f;
}

/* cnn_gemm_bf16_pack_b + cnn_gemm_bf16_serial_packed_b / _gather against
 * the reference: A (M x K) in rows of stride lda, then the same values
 * gathered three ways. `layout` 0: rows[i] = A + i lda, koff[k] = k (one
 * run); 1: each row's k in runs of `run` floats placed `run + 3` apart;
 * 2: the transpose's view, rows adjacent (rows[i] = base + i) and koff[k]
 * = k * stride, as Conv2D's backward-weights reads taps over pixels. With
 * sp.spans, A is zero outside them and the gathers are the _spans ones. */
static void gather_case(cnn_gemm_ctx *ctx, int M, int N, int K, int run, float beta, cnn_rng *r,
                        gather_spans sp)
{
    const int lda = K + 5, gap = run + 3, stride = M + 2;
    const long spread = (long)(K / run + 1) * gap;
    float *A = malloc((size_t)M * lda * sizeof *A), *B = malloc((size_t)K * N * sizeof *B);
    float *G = malloc((size_t)M * spread * sizeof *G), *T = malloc((size_t)K * stride * sizeof *T);
    float *C0 = malloc((size_t)M * N * sizeof *C0), *ref = malloc((size_t)M * N * sizeof *ref);
    float *out = malloc((size_t)M * N * sizeof *out);
    size_t bytes = (cnn_gemm_bf16_packed_b_floats(K, N) * sizeof(float) + 63) / 64 * 64;
    float *bp = aligned_alloc(64, bytes);
    uint16_t *T16 = malloc((size_t)K * stride * sizeof *T16);
    uint16_t *G16 = malloc((size_t)M * spread * sizeof *G16);
    const uint16_t **rows16 = malloc((size_t)M * sizeof *rows16);
    const float **rows = malloc((size_t)M * sizeof *rows);
    int *koff = malloc((size_t)K * sizeof *koff);
    if (!A || !B || !G || !T || !C0 || !ref || !out || !bp || !rows || !koff || !T16 || !G16
        || !rows16) {
        fprintf(stderr, "test_gemm_bf16: out of memory\n");
        exit(1);
    }
    for (long i = 0; i < (long)M * lda; i++)
        A[i] = uniform(r, -2, 2);
    for (long i = 0; i < (long)K * N; i++)
        B[i] = uniform(r, -2, 2);
    for (long i = 0; i < (long)M * N; i++)
        C0[i] = beta == 0 ? NAN : uniform(r, -1, 1);
    if (sp.tiny)
        negzero_fill(M, N, K, A, lda, B, C0, beta);
    for (int k = 0, s = 0; sp.spans && k < K; k++) {
        while (s < sp.nspans && sp.spans[2 * s + 1] <= k)
            s++;
        if (s == sp.nspans || k < sp.spans[2 * s])
            for (int i = 0; i < M; i++)
                A[(long)i * lda + k] = 0.0f; /* out of the spans */
    }
    for (long i = 0; i < (long)M * spread; i++)
        G[i] = NAN; /* never read */
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++) {
            G[i * spread + (long)(k / run) * gap + k % run] = A[(long)i * lda + k];
            T[(long)k * stride + i] = A[(long)i * lda + k];
        }
    for (long i = 0; i < (long)K * stride; i++)
        T[i] = i % stride < M ? T[i] : 0.0f;
    cnn_bf16_convert(T, T16, (long)K * stride);
    cnn_bf16_convert(G, G16, (long)M * spread);
    memcpy(ref, C0, (size_t)M * N * sizeof *ref);
    cnn_gemm_bf16_reference(false, false, M, N, K, 1.0f, A, lda, B, N, beta, ref, N);
    cnn_gemm_bf16_pack_b(ctx, N, K, B, N, bp);
    char what[120];
    for (int layout = -1; layout < 5; layout++) {
        /* 4: layout 1 from bfloat16 bits, pairs read in place
         * (cnn_gemm_bf16_gather_pairs_spans: pairs must not straddle runs) */
        if (layout == 4 && (run % 2 || K % 2))
            continue;
        for (int i = 0; i < M; i++) {
            rows[i] = layout == 0 ? A + (long)i * lda : layout == 1 ? G + i * spread : T + i;
            rows16[i] = G16 + i * spread;
        }
        for (int k = 0; k < K; k++)
            koff[k] = layout == 0            ? k
                    : layout == 1 || layout == 4 ? (k / run) * gap + k % run
                                                 : k * stride;
        /* 3: layout 2 from bfloat16 bits (cnn_gemm_bf16_gather16) */
        memcpy(out, C0, (size_t)M * N * sizeof *out);
        const int all[2] = {0, K};
        if (layout == 4)
            cnn_gemm_bf16_gather_pairs_spans(ctx, M, N, K, rows16, koff,
                                             sp.spans ? sp.spans : all, sp.spans ? sp.nspans : 1,
                                             bp, beta, out, N);
        else if (layout < 0)
            cnn_gemm_bf16_serial_packed_b(ctx, 0, M, N, K, A, lda, bp, beta, out, N);
        else if (sp.spans && layout == 3)
            cnn_gemm_bf16_gather16_spans(ctx, 0, M, N, K, T16, koff, sp.spans, sp.nspans, bp,
                                         beta, out, N);
        else if (sp.spans)
            cnn_gemm_bf16_gather_spans(ctx, 0, M, N, K, rows, koff, sp.spans, sp.nspans, bp,
                                       beta, out, N);
        else if (layout == 3)
            cnn_gemm_bf16_gather16(ctx, 0, M, N, K, T16, koff, bp, beta, out, N);
        else
            cnn_gemm_bf16_gather(ctx, 0, M, N, K, rows, koff, bp, beta, out, N);
        snprintf(what, sizeof what, "layout %d M=%d N=%d K=%d run=%d beta=%g spans %d%s", layout,
                 M, N, K, run, (double)beta, sp.spans ? sp.nspans : -1, sp.tiny ? " tiny" : "");
        long bad = -1;
        for (long i = 0; i < (long)M * N && bad < 0; i++)
            if (memcmp(&out[i], &ref[i], sizeof(float)) != 0)
                bad = i;
        if (bad >= 0)
            fprintf(stderr, "%s: %.9g, reference %.9g at (%ld, %ld)\n", what, (double)out[bad],
                    (double)ref[bad], bad / N, bad % N);
        CHECK(bad < 0);
    }
    free(A), free(B), free(G), free(T), free(C0), free(ref), free(out), free(bp), free(rows);
    free(koff), free(T16), free(G16), free(rows16);
}

/* cnn_bf16_convert rounds as cnn_bf16_from_float, tails and special values
 * included. */
static void test_convert(cnn_rng *r)
{
    float src[77];
    uint16_t got[78];
    static const uint32_t special[] = {0x3f808000u, 0x3f818000u, 0x7f800001u, 0x00400000u,
                                       0x80400000u, 0x7f7fffffu, 0xff800000u, 0x3f807fffu};
    for (int i = 0; i < 77; i++)
        src[i] = i < 8 ? from_bits(special[i]) : uniform(r, -1e3f, 1e3f);
    for (int n = 0; n <= 77; n += 11) {
        memset(got, 0xAB, sizeof got);
        cnn_bf16_convert(src, got, n);
        bool same = got[n] == 0xABAB; /* nothing past n */
        for (int i = 0; i < n; i++)
            same &= got[i] == cnn_bf16_from_float(src[i]);
        CHECK(same);
    }
}

/* cnn_bf16_interleave: word i = x0[i] | x1[i] << 16, zero high halves
 * without x1, nothing written past n. */
static void test_interleave(cnn_rng *r)
{
    uint16_t x0[77], x1[77];
    uint32_t got[78];
    for (int i = 0; i < 77; i++)
        x0[i] = (uint16_t)cnn_rng_next(r), x1[i] = (uint16_t)cnn_rng_next(r);
    for (int n = 0; n <= 77; n += 7)
        for (int half = 0; half < 2; half++) {
            memset(got, 0xAB, sizeof got);
            cnn_bf16_interleave(x0, half ? x1 : NULL, got, n);
            bool same = got[n] == 0xABABABABu;
            for (int i = 0; i < n; i++)
                same &= got[i] == ((uint32_t)x0[i] | (half ? (uint32_t)x1[i] << 16 : 0u));
            CHECK(same);
        }
}

static void test_gather(cnn_gemm_ctx *ctx, cnn_rng *r)
{
    if (!cnn_gemm_bf16_gather_supported(ctx))
        return;
    static const int cases[][4] = {
        /* M, N, K, run */
        {12, 32, 100, 32}, {37, 70, 901, 7}, {96, 64, 800, 32}, {25, 64, 800, 33},
        {13, 5, 385, 1},   {100, 33, 17, 16}, {11, 530, 1100, 64}, {30, 40, 2201, 130},
        {1, 1, 1, 1},      {64, 64, 384, 20},  {11, 1100, 1024, 64},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int b = 0; b < 2; b++)
            gather_case(ctx, cases[i][0], cases[i][1], cases[i][2], cases[i][3], (float)b, r,
                        (gather_spans){NULL, 0, false});
}

/* The _spans entry points: A zero outside the spans, the same bits as the
 * reference on that A. */
static void test_gather_spans(cnn_gemm_ctx *ctx, cnn_rng *r)
{
    if (!cnn_gemm_bf16_gather_supported(ctx))
        return;
    /* ends at odd k, a span of one k, a pair shared by two spans */
    static const int odd[] = {3, 11, 13, 14, 100, 500, 897, 901};
    /* K = 2201 is three blocks [0, 734) [734, 1468) [1468, 2201): the
     * middle one, then the first two, have no span */
    static const int middle[] = {0, 1, 1500, 1601}, last[] = {1500, 2201};
    /* Conv2D's: taps of whole rows, and of part rows */
    static const int taps[] = {64, 160, 224, 320, 384, 480}, none[] = {0, 0};
    static const int ends[] = {0, 5, 1000, 1024}, one[] = {1, 2};
    static const struct {
        int M, N, K, run;
        const int *spans;
        int nspans;
    } cases[] = {
        {37, 70, 901, 7, odd, 4},    {30, 40, 2201, 130, middle, 2}, {30, 40, 2201, 130, last, 1},
        {96, 64, 800, 32, taps, 3},  {25, 64, 800, 33, taps, 3},     {12, 32, 100, 32, none, 0},
        {11, 530, 1024, 64, ends, 2}, {13, 5, 385, 1, odd, 4},        {100, 33, 17, 16, one, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int b = 0; b < 2; b++)
            gather_case(ctx, cases[i].M, cases[i].N, cases[i].K, cases[i].run, (float)b, r,
                        (gather_spans){cases[i].spans, cases[i].nspans, false});
    /* -0 from a flushed subnormal, then skipped pairs: within the block
     * (K = 100: the tile is summed again), and in K blocks with no span
     * (K = 2201: their epilogue C = C + 0 still runs) */
    static const int first[] = {0, 1};
    for (int b = 0; b < 2; b++) {
        gather_case(ctx, 12, 32, 100, 32, (float)b, r, (gather_spans){first, 1, true});
        gather_case(ctx, 24, 64, 2201, 130, (float)b, r, (gather_spans){first, 1, true});
    }
}

/* negzero_fill's case is what it claims: the reference ends at +0 where
 * some skipped pair's B was +1 and at -0 elsewhere (beta 0), so that the
 * comparison of gather_case can tell a skipped pair. */
static void test_negzero_reference(void)
{
    enum { M = 2, N = 4, K = 6 };
    float A[M * K], B[K * N], C[M * N];
    negzero_fill(M, N, K, A, K, B, C, 0.0f);
    cnn_gemm_bf16_reference(false, false, M, N, 2, 1.0f, A, K, B, N, 0.0f, C, N);
    CHECK(signbit(C[0]) && C[0] == 0 && signbit(C[1]) && C[1] == 0); /* the first pair alone */
    cnn_gemm_bf16_reference(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
    CHECK(!signbit(C[0]) && C[0] == 0); /* a zero pair with B = +1 */
    CHECK(signbit(C[1]) && C[1] == 0);  /* zero pairs with B = -1 only */
    CHECK(C[2] == 0 && !signbit(C[2]));
}

/* Without bfloat16 cnn_gemm_bf16 is cnn_gemm, bit for bit; trivial calls
 * follow cnn_gemm's rules either way. */
static void test_fallback(cnn_gemm_ctx *ctx, cnn_rng *r)
{
    bool had = cnn_gemm_ctx_has_bf16(ctx);
    CHECK(!cnn_gemm_ctx_allow_bf16(ctx, false));
    float A[35], B[40], C1[56], C2[56];
    for (int i = 0; i < 35; i++)
        A[i] = uniform(r, -1, 1);
    for (int i = 0; i < 40; i++)
        B[i] = uniform(r, -1, 1);
    for (int i = 0; i < 56; i++)
        C1[i] = C2[i] = uniform(r, -1, 1);
    cnn_gemm_bf16(ctx, false, false, 7, 8, 5, 1.0f, A, 5, B, 8, 0.5f, C1, 8);
    cnn_gemm(ctx, false, false, 7, 8, 5, 1.0f, A, 5, B, 8, 0.5f, C2, 8);
    CHECK(memcmp(C1, C2, sizeof C1) == 0);
    CHECK(cnn_gemm_ctx_allow_bf16(ctx, true) == had);
    CHECK(had == cnn_gemm_bf16_supported());
    float D[4] = {NAN, NAN, 1, 2};
    cnn_gemm_bf16(ctx, false, false, 2, 2, 3, 0.0f, A, 3, B, 2, 0.0f, D, 2);
    CHECK(D[0] == 0 && D[1] == 0 && D[2] == 0 && D[3] == 0);
    /* the naive switch is the bf16 reference */
    cnn_gemm_ctx_use_naive(ctx, true);
    cnn_gemm_bf16(ctx, true, false, 7, 8, 5, 1.0f, A, 7, B, 8, 0.0f, C1, 8);
    cnn_gemm_bf16_reference(true, false, 7, 8, 5, 1.0f, A, 7, B, 8, 0.0f, C2, 8);
    CHECK(memcmp(C1, C2, sizeof C1) == 0);
    cnn_gemm_ctx_use_naive(ctx, false);
}

int main(void)
{
    cnn_pool *pool1 = NULL, *pool2 = NULL;
    cnn_gemm_ctx *one = NULL, *two = NULL;
    CHECK_OK(cnn_pool_create(&pool1, 1));
    CHECK_OK(cnn_pool_create(&pool2, 2));
    CHECK_OK(cnn_gemm_ctx_create(&one, pool1));
    CHECK_OK(cnn_gemm_ctx_create(&two, pool2));
    if (!one || !two)
        return test_finish("test_gemm_bf16");
    cnn_rng r;
    cnn_rng_seed(&r, 20261204);
    test_rounding();
    if (!cnn_gemm_bf16_supported())
        printf("test_gemm_bf16: no AVX512_BF16 on this CPU: reference and fallback only\n");
    test_shapes(one, two, &r);
    test_gather(one, &r);
    test_gather_spans(one, &r);
    test_interleave(&r);
    test_negzero_reference();
    test_convert(&r);
    test_fallback(one, &r);
    cnn_gemm_ctx_free(one);
    cnn_gemm_ctx_free(two);
    cnn_pool_free(pool1);
    cnn_pool_free(pool2);
    return test_finish("test_gemm_bf16");
}
