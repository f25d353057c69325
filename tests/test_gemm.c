/* cnn_gemm against cnn_gemm_naive: all four transpose combinations, odd
 * sizes from 1 to 67 and a few large ones that cross every cache block,
 * alpha/beta variants, beta == 0 over a NaN-filled C, leading dimensions
 * larger than needed (whose padding must stay untouched), pools of 1 and 2
 * threads whose results must be bit-identical, every micro-kernel this
 * CPU can run, and the narrow path (few rows, B in place) against the
 * packed one, bit for bit. */
#include <stdint.h>
#include <stdlib.h>

#include "core/rng.h"
#include "kernels/gemm.h"
#include "test.h"

typedef struct gemm_case {
    bool ta, tb;
    int M, N, K;
    int lda, ldb, ldc;
    float alpha, beta;
} gemm_case;

static const float sentinel = 12345.0f; /* fills C's padding columns */

static float uniform(cnn_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * cnn_rng_uniform(r);
}

static float *alloc_floats(long n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "test_gemm: out of memory\n");
        exit(1);
    }
    return p;
}

/* Runs one case on the 1- and 2-thread contexts and on the reference. */
static void run_case(cnn_gemm_ctx *one, cnn_gemm_ctx *two, const gemm_case *c, cnn_rng *r)
{
    long a_rows = c->ta ? c->K : c->M, b_rows = c->tb ? c->N : c->K;
    long a_n = a_rows * c->lda, b_n = b_rows * c->ldb, c_n = (long)c->M * c->ldc;
    float *A = alloc_floats(a_n), *B = alloc_floats(b_n);
    float *C0 = alloc_floats(c_n), *ref = alloc_floats(c_n);
    float *c1 = alloc_floats(c_n), *c2 = alloc_floats(c_n);
    for (long i = 0; i < a_n; i++)
        A[i] = uniform(r, -1, 1);
    for (long i = 0; i < b_n; i++)
        B[i] = uniform(r, -1, 1);
    for (long i = 0; i < c->M; i++)
        for (long j = 0; j < c->ldc; j++)
            C0[i * c->ldc + j] = j >= c->N ? sentinel : c->beta == 0 ? NAN : uniform(r, -1, 1);
    memcpy(ref, C0, (size_t)c_n * sizeof(float));
    memcpy(c1, C0, (size_t)c_n * sizeof(float));
    memcpy(c2, C0, (size_t)c_n * sizeof(float));

    cnn_gemm_naive(c->ta, c->tb, c->M, c->N, c->K, c->alpha, A, c->lda, B, c->ldb, c->beta, ref,
                   c->ldc);
    cnn_gemm(one, c->ta, c->tb, c->M, c->N, c->K, c->alpha, A, c->lda, B, c->ldb, c->beta, c1,
             c->ldc);
    cnn_gemm(two, c->ta, c->tb, c->M, c->N, c->K, c->alpha, A, c->lda, B, c->ldb, c->beta, c2,
             c->ldc);

    char what[160];
    snprintf(what, sizeof what, "%s ta=%d tb=%d M=%d N=%d K=%d ld=%d,%d,%d alpha=%g beta=%g",
             cnn_gemm_ctx_kernel_name(one), c->ta, c->tb, c->M, c->N, c->K, c->lda, c->ldb,
             c->ldc, (double)c->alpha, (double)c->beta);
    /* Inputs in [-1, 1): float rounding grows about like sqrt(K). The padding
     * compares exactly (sentinel against sentinel). */
    double atol = 1e-4 * sqrt((double)c->K + 1) * (fabs((double)c->alpha) + 1);
    test_close(what, c1, ref, c_n, atol, 1e-4);
    bool same = memcmp(c1, c2, (size_t)c_n * sizeof(float)) == 0;
    if (!same)
        fprintf(stderr, "%s: 1 and 2 threads differ\n", what);
    CHECK(same);
    free(A);
    free(B);
    free(C0);
    free(ref);
    free(c1);
    free(c2);
}

static gemm_case make_case(bool ta, bool tb, int M, int N, int K, int pad, float alpha,
                           float beta)
{
    gemm_case c = {.ta = ta, .tb = tb, .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta};
    c.lda = (ta ? M : K) + pad;
    c.ldb = (tb ? K : N) + pad;
    c.ldc = N + pad;
    return c;
}

/* Random odd sizes, then shapes crossing the KC, MC and NC blocks, and the
 * library's own shapes in small (conv forward / dW / dcol, dense). */
static void test_kernel(cnn_gemm_ctx *one, cnn_gemm_ctx *two, cnn_rng *r)
{
    static const float alphas[] = {1.0f, 0.5f, -1.25f};
    static const float betas[] = {0.0f, 1.0f, 0.75f};
    for (int t = 0; t < 160; t++) {
        int M = 1 + (int)(cnn_rng_next(r) % 67), N = 1 + (int)(cnn_rng_next(r) % 67);
        int K = 1 + (int)(cnn_rng_next(r) % 67), pad = (int)(cnn_rng_next(r) % 3) * 3;
        gemm_case c = make_case(t & 1, (t >> 1) & 1, M, N, K, pad, alphas[(t >> 2) % 3],
                                betas[(t / 12) % 3]);
        run_case(one, two, &c, r);
    }
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = t >> 1;
        gemm_case big[] = {
            make_case(ta, tb, 300, 200, 500, 0, 1.0f, 0.0f),
            make_case(ta, tb, 300, 200, 500, 7, -0.5f, 0.75f),
            make_case(ta, tb, 37, 700, 45, 1, 1.0f, 1.0f),    /* N > NC, split by columns */
            make_case(ta, tb, 1000, 19, 23, 2, 1.0f, 0.0f),   /* split by rows */
            make_case(ta, tb, 13, 33, 1500, 0, 2.0f, 1.0f),   /* several K blocks */
            make_case(ta, tb, 7, 150, 33, 3, 1.0f, 0.75f),    /* first panel short, B copied */
            make_case(ta, tb, 1, 3000, 700, 0, 1.0f, 0.0f),   /* batch-1 Dense: narrow */
            make_case(ta, tb, 3, 2100, 900, 5, -0.5f, 0.75f), /* narrow, column slices */
        };
        for (size_t i = 0; i < sizeof big / sizeof *big; i++)
            run_case(one, two, &big[i], r);
    }
    gemm_case shapes[] = {
        make_case(false, false, 784, 32, 25, 0, 1.0f, 0.0f), /* conv forward */
        make_case(true, false, 25, 32, 784, 0, 1.0f, 1.0f),  /* conv dW += col^T dY */
        make_case(false, true, 784, 25, 32, 0, 1.0f, 0.0f),  /* conv dcol = dY W^T */
        make_case(false, false, 64, 256, 392, 0, 1.0f, 0.0f), /* dense */
        make_case(true, false, 392, 256, 64, 0, 1.0f, 1.0f),
        make_case(false, true, 64, 392, 256, 0, 1.0f, 0.0f),
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        run_case(one, two, &shapes[i], r);
}

/* A C of at most 4 rows with B not transposed reads B in place
 * (gemm_narrow.c) beside the AVX-512 kernel: its rows must be the same bits
 * as the packed path gives the same rows of a 13-row product, for both
 * layouts of A, several K blocks and column slices, and every beta. */
static void test_narrow_matches_packed(cnn_gemm_ctx *ctx, cnn_rng *r)
{
    if (strcmp(cnn_gemm_ctx_kernel_name(ctx), "avx512") != 0)
        return;
    enum { ROWS = 13, N = 2100, K = 1500, LDB = N + 5, LDC = N + 3 };
    float *A = alloc_floats((long)ROWS * K), *B = alloc_floats((long)K * LDB);
    float *C0 = alloc_floats((long)ROWS * LDC), *packed = alloc_floats((long)ROWS * LDC);
    float *narrow = alloc_floats((long)ROWS * LDC);
    for (long i = 0; i < (long)ROWS * K; i++)
        A[i] = uniform(r, -1, 1);
    for (long i = 0; i < (long)K * LDB; i++)
        B[i] = uniform(r, -1, 1);
    for (long i = 0; i < (long)ROWS * LDC; i++)
        C0[i] = uniform(r, -1, 1);
    static const float betas[] = {0.0f, 1.0f, 0.75f};
    for (int ta = 0; ta < 2; ta++) {
        int lda = ta ? ROWS : K;
        for (int b = 0; b < 3; b++) {
            memcpy(packed, C0, (size_t)ROWS * LDC * sizeof(float));
            cnn_gemm(ctx, ta, false, ROWS, N, K, 1.5f, A, lda, B, LDB, betas[b], packed, LDC);
            for (int M = 1; M <= 4; M++) {
                memcpy(narrow, C0, (size_t)ROWS * LDC * sizeof(float));
                cnn_gemm(ctx, ta, false, M, N, K, 1.5f, A, lda, B, LDB, betas[b], narrow, LDC);
                bool same = memcmp(narrow, packed, (size_t)M * LDC * sizeof(float)) == 0 &&
                            memcmp(narrow + (long)M * LDC, C0 + (long)M * LDC,
                                   (size_t)(ROWS - M) * LDC * sizeof(float)) == 0;
                if (!same)
                    fprintf(stderr, "narrow M=%d ta=%d beta=%g: not the packed path's bits\n", M,
                            ta, (double)betas[b]);
                CHECK(same);
            }
        }
    }
    free(A);
    free(B);
    free(C0);
    free(packed);
    free(narrow);
}

/* alpha == 0 and K == 0 only scale C; beta == 0 clears it, NaNs and all. */
static void test_degenerate(cnn_gemm_ctx *ctx)
{
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 1, 1, 1, 1, 1};
    float C[4] = {NAN, NAN, NAN, NAN};
    cnn_gemm(ctx, false, false, 2, 2, 3, 0.0f, A, 3, B, 2, 0.0f, C, 2);
    CHECK(C[0] == 0 && C[1] == 0 && C[2] == 0 && C[3] == 0);
    float D[4] = {1, 2, 3, 4};
    cnn_gemm(ctx, false, false, 2, 2, 0, 1.0f, A, 1, B, 2, 0.5f, D, 2);
    CHECK(D[0] == 0.5f && D[1] == 1.0f && D[2] == 1.5f && D[3] == 2.0f);
    cnn_gemm(ctx, false, false, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, D, 2);
    CHECK(D[0] == 6 && D[1] == 6 && D[2] == 15 && D[3] == 15);
    cnn_gemm(ctx, false, false, 0, 2, 3, 1.0f, A, 3, B, 2, 0.0f, D, 2); /* no rows: no-op */
    CHECK(D[0] == 6);
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
        return test_finish("test_gemm");

    const char *best = cnn_gemm_ctx_kernel_name(one);
    printf("test_gemm: fastest kernel %s\n", best);
    CHECK(strcmp(best, "avx512") == 0 || strcmp(best, "avx2") == 0 ||
          strcmp(best, "generic") == 0);
    CHECK(strcmp(cnn_gemm_ctx_kernel_name(two), best) == 0);
    CHECK(!cnn_gemm_ctx_force_kernel(one, "naive"));
    CHECK(!cnn_gemm_ctx_force_kernel(one, "sse9"));
    CHECK(strcmp(cnn_gemm_ctx_kernel_name(one), best) == 0);

    cnn_rng r;
    cnn_rng_seed(&r, 20240611);
    static const char *const kernels[] = {"avx512", "avx2", "generic"};
    for (size_t i = 0; i < sizeof kernels / sizeof *kernels; i++) {
        bool ok = cnn_gemm_ctx_force_kernel(one, kernels[i]);
        CHECK(cnn_gemm_ctx_force_kernel(two, kernels[i]) == ok);
        if (!ok) {
            printf("test_gemm: kernel %s not supported here, skipped\n", kernels[i]);
            continue;
        }
        CHECK(strcmp(cnn_gemm_ctx_kernel_name(one), kernels[i]) == 0);
        test_kernel(one, two, &r);
        test_narrow_matches_packed(one, &r);
        test_narrow_matches_packed(two, &r);
        test_degenerate(one);
        test_degenerate(two);
    }
    CHECK(cnn_gemm_ctx_force_kernel(one, "generic")); /* always available */

    /* The naive switch reproduces the reference exactly. */
    cnn_gemm_ctx_use_naive(one, true);
    CHECK(strcmp(cnn_gemm_ctx_kernel_name(one), "naive") == 0);
    float A[12], B[20], C1[15], C2[15];
    for (int i = 0; i < 12; i++)
        A[i] = uniform(&r, -1, 1);
    for (int i = 0; i < 20; i++)
        B[i] = uniform(&r, -1, 1);
    for (int i = 0; i < 15; i++)
        C1[i] = C2[i] = uniform(&r, -1, 1);
    cnn_gemm(one, true, true, 3, 5, 4, 0.5f, A, 3, B, 4, 2.0f, C1, 5);
    cnn_gemm_naive(true, true, 3, 5, 4, 0.5f, A, 3, B, 4, 2.0f, C2, 5);
    CHECK(memcmp(C1, C2, sizeof C1) == 0);
    cnn_gemm_ctx_use_naive(one, false);
    CHECK(strcmp(cnn_gemm_ctx_kernel_name(one), "generic") == 0);

    cnn_gemm_ctx_free(one);
    cnn_gemm_ctx_free(two);
    cnn_gemm_ctx_free(NULL);
    cnn_pool_free(pool1);
    cnn_pool_free(pool2);
    return test_finish("test_gemm");
}
