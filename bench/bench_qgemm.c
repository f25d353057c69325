/* Micro-benchmark: int8 GEMM (cnn_qgemm, with its requantizing output
 * stage) against the float GEMM (cnn_gemm, C = A B) on one thread, on the
 * GEMM shapes of the demo network's layers at batch 64 and batch 1. Runs
 * are interleaved (float, int8 on each ISA, float, ...) so a neighbour's
 * load on a shared machine hits both alike; prints the best of REPS in
 * milliseconds and GMAC/s.
 *
 * usage: bench_qgemm [REPS]          (make build/bench/bench_qgemm) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/gemm.h"
#include "kernels/qgemm.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "bench_qgemm: out of memory\n");
        exit(1);
    }
    return p;
}

typedef struct {
    const char *what;
    int M, N, K;
} shape;

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1)
        reps = 1;
    static const shape shapes[] = {
        {"conv1 5x5x1->32, 28x28, batch 64", 64 * 784, 32, 25},
        {"conv2 3x3x32->64, 14x14, batch 64", 64 * 196, 64, 288},
        {"conv 3x3x64->64, 7x7, batch 64", 64 * 49, 64, 576},
        {"dense 3136->128, batch 64", 64, 128, 3136},
        {"conv2 3x3x32->64, 14x14, batch 1", 196, 64, 288},
        {"dense 3136->128, batch 1", 1, 128, 3136},
    };
    static const cnn_qisa isas[] = {CNN_QISA_GENERIC, CNN_QISA_AVX2, CNN_QISA_VNNI};
    enum { NISA = sizeof isas / sizeof *isas };
    cnn_pool *pool = NULL;
    cnn_gemm_ctx *ctx = NULL;
    if (cnn_pool_create(&pool, 1) != CNN_OK || cnn_gemm_ctx_create(&ctx, pool) != CNN_OK) {
        fprintf(stderr, "bench_qgemm: %s\n", cnn_last_error());
        return 1;
    }
    printf("float kernel: %s, 1 thread, best of %d (ms, GMAC/s)\n", cnn_gemm_ctx_kernel_name(ctx),
           reps);
    printf("%-36s %16s", "shape (M x N x K)", "float");
    for (int i = 0; i < NISA; i++)
        printf(" %16s", cnn_qisa_name(isas[i]));
    printf(" %8s\n", "int8/fl");
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const shape *sh = &shapes[s];
        size_t a_n = (size_t)sh->M * sh->K, b_n = (size_t)sh->K * sh->N;
        size_t c_n = (size_t)sh->M * sh->N;
        float *A = xmalloc(a_n * sizeof(float)), *B = xmalloc(b_n * sizeof(float));
        float *C = xmalloc(c_n * sizeof(float));
        int8_t *Aq = xmalloc(a_n), *Bq = xmalloc(b_n), *Cq = xmalloc(c_n);
        for (size_t i = 0; i < a_n; i++) {
            Aq[i] = (int8_t)(rand() % 256 - 128);
            A[i] = (float)Aq[i] / 128.0f;
        }
        for (size_t i = 0; i < b_n; i++) {
            Bq[i] = (int8_t)(rand() % 255 - 127);
            B[i] = (float)Bq[i] / 127.0f;
        }
        int32_t *mult = xmalloc((size_t)sh->N * sizeof(int32_t));
        int32_t *shift = xmalloc((size_t)sh->N * sizeof(int32_t));
        int32_t *bias = xmalloc((size_t)sh->N * sizeof(int32_t));
        for (int j = 0; j < sh->N; j++) {
            cnn_q_multiplier(0.001 * (1 + j % 7), &mult[j], &shift[j]);
            bias[j] = j * 17 - 300;
        }
        cnn_qoutput out = {bias, mult, shift, -3, -128, 127};
        cnn_qpacked *P = NULL;
        if (cnn_qpacked_create(&P, Bq, sh->K, sh->N) != CNN_OK) {
            fprintf(stderr, "bench_qgemm: %s\n", cnn_last_error());
            return 1;
        }
        /* at least ~20 ms per timed run, so short shapes repeat */
        double macs = (double)sh->M * sh->N * sh->K;
        int inner = (int)(2e8 / macs) + 1;
        double best[1 + NISA];
        for (int i = 0; i <= NISA; i++)
            best[i] = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            for (int k = 0; k < inner; k++)
                cnn_gemm(ctx, false, false, sh->M, sh->N, sh->K, 1.0f, A, sh->K, B, sh->N, 0.0f, C,
                         sh->N);
            double t = (now() - t0) / inner;
            best[0] = t < best[0] ? t : best[0];
            for (int i = 0; i < NISA; i++) {
                if (!cnn_qisa_supported(isas[i]))
                    continue;
                t0 = now();
                for (int k = 0; k < inner; k++)
                    cnn_qgemm(isas[i], sh->M, Aq, sh->K, -1, P, &out, Cq, sh->N);
                t = (now() - t0) / inner;
                best[1 + i] = t < best[1 + i] ? t : best[1 + i];
            }
        }
        char dims[64];
        snprintf(dims, sizeof dims, "%d x %d x %d", sh->M, sh->N, sh->K);
        printf("%-36s\n  %-34s", sh->what, dims);
        for (int i = 0; i <= NISA; i++) {
            if (best[i] >= 1e30)
                printf(" %16s", "-");
            else
                printf(" %7.3f %8.1f", best[i] * 1e3, macs / best[i] * 1e-9);
        }
        printf(" %7.2fx\n", best[0] / best[NISA] < 1e29 ? best[0] / best[NISA] : 0.0);
        cnn_qpacked_free(P);
        free(A);
        free(B);
        free(C);
        free(Aq);
        free(Bq);
        free(Cq);
        free(mult);
        free(shift);
        free(bias);
    }
    cnn_gemm_ctx_free(ctx);
    cnn_pool_free(pool);
    return 0;
}
