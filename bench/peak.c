/* This machine's peak FP32 throughput: independent FMA chains in registers
 * (AVX-512 and AVX2), on 1 and on all cores, and the bfloat16 dot-product
 * peak (vdpbf16ps, isa "avx512bf16": 64 flops an instruction) where the CPU
 * has it. Every kernel figure in docs/BENCHMARKS.md is read as a fraction
 * of the peak of its own instruction. Also the memory read bandwidth
 * ("kind": "bandwidth"), the limit of products whose operands come from
 * memory once (a Dense layer's kernel at batch 1). Prints JSON lines. */
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ITER 20000000L

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* 12 independent accumulators hide the FMA latency (4 cycles x 2 ports). */
/* Named variables (not an array) so the compiler keeps them in registers. */
#define FMA_CHAINS(T, SET, FMA, ADD)                                                   \
    T x = SET(0.999999f), y = SET(1e-7f);                                             \
    T a0 = SET(0), a1 = SET(1), a2 = SET(2), a3 = SET(3), a4 = SET(4), a5 = SET(5);     \
    T a6 = SET(6), a7 = SET(7), a8 = SET(8), a9 = SET(9), a10 = SET(10), a11 = SET(11); \
    for (long k = 0; k < n; k++) {                                                     \
        a0 = FMA(a0, x, y), a1 = FMA(a1, x, y), a2 = FMA(a2, x, y);                    \
        a3 = FMA(a3, x, y), a4 = FMA(a4, x, y), a5 = FMA(a5, x, y);                    \
        a6 = FMA(a6, x, y), a7 = FMA(a7, x, y), a8 = FMA(a8, x, y);                    \
        a9 = FMA(a9, x, y), a10 = FMA(a10, x, y), a11 = FMA(a11, x, y);                \
    }                                                                                  \
    T s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));           \
    s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)))

__attribute__((target("avx512f"))) static float fma512(long n)
{
    FMA_CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma256(long n)
{
    FMA_CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

/* Pairs of bfloat16 per lane: x and y as 32-bit words holding two bf16s. */
#define BF16_SET(v) _mm512_set1_ps(v)
#define BF16_DP(acc, x, y) _mm512_dpbf16_ps(acc, (__m512bh)_mm512_castps_si512(x), \
                                            (__m512bh)_mm512_castps_si512(y))
__attribute__((target("avx512bf16,avx512f,avx512vl,avx512bw"))) static float dp512(long n)
{
    FMA_CHAINS(__m512, BF16_SET, BF16_DP, _mm512_add_ps);
    return _mm512_reduce_add_ps(s);
}

/* gcc 12 has no __builtin_cpu_supports("avx512bf16"): CPUID.(7,1):EAX bit 5. */
static int has_bf16(void)
{
    unsigned a, b, c, d;
    return __builtin_cpu_supports("avx512f") && __get_cpuid_count(7, 1, &a, &b, &c, &d)
           && ((a >> 5) & 1);
}

typedef struct {
    int wide;
    volatile float sink;
} job;

static void *run(void *p)
{
    job *j = p;
    j->sink = j->wide == 2 ? dp512(ITER) : j->wide ? fma512(ITER) : fma256(ITER);
    return NULL;
}

static void measure(const char *isa, int wide, int threads)
{
    pthread_t t[64];
    job jobs[64];
    double t0 = now();
    for (int i = 0; i < threads; i++) {
        jobs[i].wide = wide;
        pthread_create(&t[i], NULL, run, &jobs[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    double s = now() - t0;
    double flops = (double)ITER * 12 * (wide == 2 ? 32 : wide ? 16 : 8) * 2 * threads;
    printf("{\"kind\": \"peak\", \"isa\": \"%s\", \"threads\": %d, \"gflops\": %.1f}\n", isa,
           threads, flops / s / 1e9);
}

/* Memory read bandwidth: each thread sums its share of a buffer 16 times
 * the size of any cache here (touched first, so no page faults count). */
enum { BW_BYTES = 512 << 20, BW_PASSES = 3 };

typedef struct {
    const uint64_t *p;
    long n;
    volatile uint64_t sink;
} bw_job;

static void *bw_run(void *arg)
{
    bw_job *j = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (long i = 0; i < j->n; i += 8) {
        s0 ^= j->p[i], s1 ^= j->p[i + 1], s2 ^= j->p[i + 2], s3 ^= j->p[i + 3];
        s4 ^= j->p[i + 4], s5 ^= j->p[i + 5], s6 ^= j->p[i + 6], s7 ^= j->p[i + 7];
    }
    j->sink = s0 ^ s1 ^ s2 ^ s3 ^ s4 ^ s5 ^ s6 ^ s7;
    return NULL;
}

static void bandwidth(const uint64_t *buf, int threads)
{
    long words = BW_BYTES / 8, share = words / threads / 8 * 8;
    double best = 1e30;
    for (int pass = 0; pass < BW_PASSES; pass++) {
        pthread_t t[64];
        bw_job jobs[64];
        double t0 = now();
        for (int i = 0; i < threads; i++) {
            jobs[i].p = buf + (long)i * share;
            jobs[i].n = share;
            pthread_create(&t[i], NULL, bw_run, &jobs[i]);
        }
        for (int i = 0; i < threads; i++)
            pthread_join(t[i], NULL);
        double s = now() - t0;
        best = s < best ? s : best;
    }
    printf("{\"kind\": \"bandwidth\", \"threads\": %d, \"gbytes_s\": %.1f}\n", threads,
           (double)share * threads * 8 / best / 1e9);
}

int main(void)
{
    __builtin_cpu_init();
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 64)
        cores = 64;
    for (int threads = 1; threads <= cores; threads *= 2) {
        if (__builtin_cpu_supports("avx512f"))
            measure("avx512", 1, threads);
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            measure("avx2", 0, threads);
        if (has_bf16())
            measure("avx512bf16", 2, threads);
        if (threads * 2 > cores && threads != cores)
            threads = cores / 2;
    }
    uint64_t *buf = malloc(BW_BYTES);
    if (buf) {
        memset(buf, 1, BW_BYTES);
        for (int threads = 1; threads <= cores; threads *= 2) {
            bandwidth(buf, threads);
            if (threads * 2 > cores && threads != cores)
                threads = cores / 2;
        }
        free(buf);
    }
    return 0;
}
