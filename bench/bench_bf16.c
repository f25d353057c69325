/* bfloat16 against float32 GEMM on the products of Conv2D and Dense (the
 * tutorial convnet's conv2 and dense layers at batch 64, a 64 -> 64 3x3
 * layer, conv1), in the pieces Conv2D issues them: one im2col tile of at
 * most the default 8 MiB workspace (2621 rows of K = 800 floats, 3640 of
 * K = 576), or the whole batch when smaller. cnn_gemm_bf16 and cnn_gemm
 * interleaved, ROUNDS times
 * each, so that a shared machine's load falls on both alike; one thread,
 * timed in thread CPU time (time descheduled does not count). Prints the
 * median and best GFLOP/s of each and their ratios.
 *
 * usage: bench_bf16 [ROUNDS]          (make build/bench/bench_bf16) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/gemm.h"

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    const char *name;
    bool ta, tb;
    int M, N, K;
} shape;

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 11;
    if (rounds < 1 || rounds > 1000)
        rounds = 11;
    cnn_pool *pool = NULL;
    cnn_gemm_ctx *ctx = NULL;
    if (cnn_pool_create(&pool, 1) || cnn_gemm_ctx_create(&ctx, pool)) {
        fprintf(stderr, "bench_bf16: %s\n", cnn_last_error());
        return 1;
    }
    if (!cnn_gemm_ctx_has_bf16(ctx))
        printf("no AVX512_BF16 on this CPU: cnn_gemm_bf16 is cnn_gemm here\n");
    static const shape shapes[] = {
        {"conv2 forward", false, false, 2621, 64, 800},
        {"conv2 backward-weights", true, false, 800, 64, 2621},
        {"conv2 backward-data", false, true, 2621, 800, 64},
        {"3x3 64->64 forward", false, false, 3640, 64, 576},
        {"3x3 64->64 backward-weights", true, false, 576, 64, 3640},
        {"3x3 64->64 backward-data", false, true, 3640, 576, 64},
        {"conv1 forward (K = 25)", false, false, 64 * 28 * 28, 32, 25},
        {"dense 3136->1024 forward", false, false, 64, 1024, 3136},
        {"dense 3136->1024 backward-weights", true, false, 3136, 1024, 64},
        {"dense 3136->1024 backward-data", false, true, 64, 3136, 1024},
    };
    printf("%-34s %22s %22s %12s\n", "product (1 thread)", "float32 med/best", "bf16 med/best",
           "ratio med/best");
    double *g32 = malloc((size_t)rounds * sizeof *g32), *g16 = malloc((size_t)rounds * sizeof *g16);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const shape *p = &shapes[s];
        long an = (long)p->M * p->K, bn = (long)p->K * p->N;
        float *A = malloc((size_t)an * sizeof *A), *B = malloc((size_t)bn * sizeof *B);
        float *C = malloc((size_t)p->M * p->N * sizeof *C);
        if (!A || !B || !C || !g32 || !g16)
            return 1;
        for (long i = 0; i < an; i++)
            A[i] = (float)(i % 17) * 0.01f;
        for (long i = 0; i < bn; i++)
            B[i] = (float)(i % 13) * 0.01f;
        int lda = p->ta ? p->M : p->K, ldb = p->tb ? p->K : p->N;
        double flop = 2.0 * p->M * p->N * p->K;
        int reps = (int)(2e9 / flop) + 1;
        for (int r = 0; r < rounds; r++) {
            for (int v = 0; v < 2; v++) {
                double t0 = cpu_now();
                for (int q = 0; q < reps; q++)
                    (v ? cnn_gemm_bf16 : cnn_gemm)(ctx, p->ta, p->tb, p->M, p->N, p->K, 1.0f, A,
                                                   lda, B, ldb, 0.0f, C, p->N);
                double g = flop * reps / (cpu_now() - t0) / 1e9;
                (v ? g16 : g32)[r] = g;
            }
        }
        qsort(g32, (size_t)rounds, sizeof *g32, by_value);
        qsort(g16, (size_t)rounds, sizeof *g16, by_value);
        double m32 = g32[rounds / 2], m16 = g16[rounds / 2], b32 = g32[rounds - 1],
               b16 = g16[rounds - 1];
        printf("%-34s %10.1f / %-9.1f %10.1f / %-9.1f %5.2f / %.2f\n", p->name, m32, b32, m16, b16,
               m16 / m32, b16 / b32);
        free(A);
        free(B);
        free(C);
    }
    free(g32);
    free(g16);
    cnn_gemm_ctx_free(ctx);
    cnn_pool_free(pool);
    return 0;
}
