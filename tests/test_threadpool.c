/* The thread pool (src/core/threadpool.c): every worker index runs exactly
 * once per cnn_pool_run, and cnn_pool_run returns only after all of them
 * finished — in back-to-back runs (the spinning hand-over), after pauses
 * longer than the spin (workers blocked on the condition variable), with a
 * worker slower than the caller's spin (the caller blocked), and across
 * create/free. A lost wake-up would hang this test. */
#include <stdatomic.h>
#include <time.h>

#include "core/threadpool.h"
#include "test.h"

enum { MAX_THREADS = 4 };

typedef struct {
    atomic_int calls[MAX_THREADS];
    atomic_int wrong_nth;
    long sleep_ns; /* worker 1 sleeps this long, to outlast the caller's spin */
} job;

static void sleep_ns(long ns)
{
    struct timespec t = {ns / 1000000000L, ns % 1000000000L};
    nanosleep(&t, NULL);
}

static void count(void *ctx, int ith, int nth)
{
    job *j = ctx;
    if (ith == 1 && j->sleep_ns)
        sleep_ns(j->sleep_ns);
    atomic_fetch_add(&j->calls[ith], 1);
    if (nth < 1 || nth > MAX_THREADS)
        atomic_fetch_add(&j->wrong_nth, 1);
}

/* runs runs, each checked right after it returns; pause_ns between them. */
static void run_many(cnn_pool *pool, int threads, int runs, long pause_ns, long worker_sleep_ns)
{
    job j = {.sleep_ns = worker_sleep_ns};
    for (int t = 0; t < MAX_THREADS; t++)
        atomic_init(&j.calls[t], 0);
    atomic_init(&j.wrong_nth, 0);
    int bad = 0;
    for (int r = 1; r <= runs; r++) {
        cnn_pool_run(pool, count, &j);
        for (int t = 0; t < threads; t++)
            bad += atomic_load(&j.calls[t]) != r;
        if (pause_ns)
            sleep_ns(pause_ns);
    }
    for (int t = threads; t < MAX_THREADS; t++)
        bad += atomic_load(&j.calls[t]) != 0;
    if (bad)
        fprintf(stderr, "test_threadpool: %d threads, %d runs, pause %ld ns: %d wrong counts\n",
                threads, runs, pause_ns, bad);
    CHECK(bad == 0);
    CHECK(atomic_load(&j.wrong_nth) == 0);
}

int main(void)
{
    cnn_pool *pool = NULL;
    CHECK_FAILS(cnn_pool_create(&pool, 0), CNN_ERR_INVALID_ARGUMENT, "threads");
    CHECK(pool == NULL);
    CHECK_FAILS(cnn_pool_create(&pool, 1025), CNN_ERR_INVALID_ARGUMENT, "threads");
    CHECK(cnn_pool_threads(NULL) == 1);
    run_many(NULL, 1, 10, 0, 0); /* a NULL pool runs on the caller */

    for (int threads = 1; threads <= MAX_THREADS; threads++) {
        CHECK_OK(cnn_pool_create(&pool, threads));
        if (!pool)
            continue;
        CHECK(cnn_pool_threads(pool) == threads);
        run_many(pool, threads, 5000, 0, 0);        /* back to back: spinning */
        run_many(pool, threads, 20, 400000, 0);     /* workers fall asleep between runs */
        run_many(pool, threads, 20, 0, 400000);     /* the caller falls asleep waiting */
        run_many(pool, threads, 20, 300000, 300000);
        cnn_pool_free(pool);
        pool = NULL;
    }
    /* Created and freed at once, and freed while its workers sleep. */
    for (int i = 0; i < 50; i++) {
        CHECK_OK(cnn_pool_create(&pool, 2));
        if (i % 2)
            run_many(pool, 2, 3, i % 4 == 1 ? 300000 : 0, 0);
        cnn_pool_free(pool);
        pool = NULL;
    }
    return test_finish("test_threadpool");
}
