#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "core/error.h"

/* Waking a thread blocked on a condition variable costs a futex call and,
 * on a virtual machine whose other CPU is idle, an inter-processor
 * interrupt: tens of microseconds. A batch-1 forward pass hands the pool
 * dozens of jobs of a few microseconds each, so with blocking waits alone
 * 2 threads ran slower than 1. Both sides therefore spin for a short while
 * first (workers waiting for a job, the caller waiting for the workers) and
 * only then block. SPIN_NS bounds the CPU time a waiting thread burns after
 * the last job of a burst. */
#define SPIN_NS 100000L
#define YIELD_NS 10000L

struct cnn_pool {
    int threads;
    pthread_t *workers;
    pthread_mutex_t lock;
    pthread_cond_t work_ready, work_done;
    /* Each run bumps generation (after writing fn, ctx and pending);
     * workers run the job once per generation. */
    atomic_ulong generation;
    atomic_int pending;
    /* Who is blocked (or about to block) on a condition variable: the
     * other side signals only then. Each side stores its flag and then
     * reads the other's state (sequentially consistent), so at least one
     * of them sees the other and no wake-up is lost. */
    atomic_int sleepers;
    atomic_bool caller_sleeping;
    atomic_bool quit;
    cnn_pool_fn fn;
    void *ctx;
};

typedef struct {
    cnn_pool *pool;
    int ith;
} worker_arg;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

static long elapsed_ns(const struct timespec *since)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - since->tv_sec) * 1000000000L + (t.tv_nsec - since->tv_nsec);
}

/* Whether a spin that began at start should end. Past YIELD_NS it yields
 * the CPU on each check: with more threads than free cores (a busy machine,
 * or threads > cores) the thread it waits for may need this very core. */
static bool spin_expired(const struct timespec *start)
{
    long ns = elapsed_ns(start);
    if (ns > YIELD_NS)
        sched_yield();
    return ns > SPIN_NS;
}

/* Spins until generation differs from seen or quit is set, for at most
 * SPIN_NS; returns whether it did. */
static bool spin_for_job(cnn_pool *pool, unsigned long seen)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&pool->generation, memory_order_acquire) != seen
            || atomic_load_explicit(&pool->quit, memory_order_relaxed))
            return true;
        cpu_relax();
        if (i % 64 == 0 && spin_expired(&start))
            return false;
    }
}

static void *worker_main(void *p)
{
    worker_arg arg = *(worker_arg *)p;
    free(p);
    cnn_pool *pool = arg.pool;
    unsigned long seen = 0;
    for (;;) {
        if (!spin_for_job(pool, seen)) {
            pthread_mutex_lock(&pool->lock);
            atomic_fetch_add(&pool->sleepers, 1);
            while (!atomic_load(&pool->quit) && atomic_load(&pool->generation) == seen)
                pthread_cond_wait(&pool->work_ready, &pool->lock);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->lock);
        }
        if (atomic_load(&pool->quit))
            break;
        seen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        pool->fn(pool->ctx, arg.ith, pool->threads);
        if (atomic_fetch_sub(&pool->pending, 1) == 1 && atomic_load(&pool->caller_sleeping)) {
            pthread_mutex_lock(&pool->lock);
            pthread_cond_signal(&pool->work_done);
            pthread_mutex_unlock(&pool->lock);
        }
    }
    return NULL;
}

cnn_status cnn_pool_create(cnn_pool **out, int threads)
{
    *out = NULL;
    if (threads < 1 || threads > 1024)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "threads: expected 1..1024, got %d", threads);
    cnn_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return cnn_fail(CNN_ERR_NO_MEMORY, "thread pool: out of memory");
    pool->threads = threads;
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->caller_sleeping, false);
    atomic_init(&pool->quit, false);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work_ready, NULL);
    pthread_cond_init(&pool->work_done, NULL);
    if (threads > 1) {
        pool->workers = calloc((size_t)threads - 1, sizeof *pool->workers);
        if (!pool->workers) {
            pool->threads = 1; /* no worker to join */
            cnn_pool_free(pool);
            return cnn_fail(CNN_ERR_NO_MEMORY, "thread pool: out of memory");
        }
        for (int i = 1; i < threads; i++) {
            worker_arg *arg = malloc(sizeof *arg);
            if (arg)
                *arg = (worker_arg){pool, i};
            if (!arg || pthread_create(&pool->workers[i - 1], NULL, worker_main, arg) != 0) {
                free(arg);
                pool->threads = i; /* only the started ones are joined */
                cnn_pool_free(pool);
                return cnn_fail(CNN_ERR_NO_MEMORY, "thread pool: cannot start thread %d", i);
            }
        }
    }
    *out = pool;
    return CNN_OK;
}

void cnn_pool_free(cnn_pool *pool)
{
    if (!pool)
        return;
    atomic_store(&pool->quit, true);
    pthread_mutex_lock(&pool->lock);
    pthread_cond_broadcast(&pool->work_ready);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 1; i < pool->threads; i++)
        pthread_join(pool->workers[i - 1], NULL);
    free(pool->workers);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->work_ready);
    pthread_cond_destroy(&pool->work_done);
    free(pool);
}

int cnn_pool_threads(const cnn_pool *pool) { return pool ? pool->threads : 1; }

/* Spins until every worker has finished, for at most SPIN_NS; returns
 * whether they have. */
static bool spin_for_workers(cnn_pool *pool)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&pool->pending, memory_order_acquire) == 0)
            return true;
        cpu_relax();
        if (i % 64 == 0 && spin_expired(&start))
            return false;
    }
}

void cnn_pool_run(cnn_pool *pool, cnn_pool_fn fn, void *ctx)
{
    if (!pool || pool->threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store(&pool->pending, pool->threads - 1);
    atomic_fetch_add(&pool->generation, 1);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->lock);
        pthread_cond_broadcast(&pool->work_ready);
        pthread_mutex_unlock(&pool->lock);
    }
    fn(ctx, 0, pool->threads);
    if (spin_for_workers(pool))
        return;
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->caller_sleeping, true);
    while (atomic_load(&pool->pending) > 0)
        pthread_cond_wait(&pool->work_done, &pool->lock);
    atomic_store(&pool->caller_sleeping, false);
    pthread_mutex_unlock(&pool->lock);
}

typedef struct {
    int64_t n;
    cnn_pool_range_fn fn;
    void *ctx;
} elementwise_job;

static void elementwise_worker(void *p, int ith, int nth)
{
    const elementwise_job *j = p;
    /* in 16-value (64-byte) units: no two threads write one cache line */
    long b, e;
    cnn_split_range((long)((j->n + 15) / 16), ith, nth, &b, &e);
    int64_t begin = (int64_t)b * 16, end = (int64_t)e * 16 < j->n ? (int64_t)e * 16 : j->n;
    if (begin < end)
        j->fn(j->ctx, begin, end);
}

void cnn_pool_elementwise(cnn_pool *pool, int64_t n, cnn_pool_range_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (!pool || pool->threads == 1 || n < CNN_POOL_ELEMENTWISE_MIN) {
        fn(ctx, 0, n);
        return;
    }
    elementwise_job job = {n, fn, ctx};
    cnn_pool_run(pool, elementwise_worker, &job);
}
