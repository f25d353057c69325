#include "core/threadpool.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/error.h"

struct cnn_pool {
    int threads;
    pthread_t *workers;
    pthread_mutex_t lock;
    pthread_cond_t work_ready, work_done;
    /* Each run bumps generation; workers run the job once per generation. */
    unsigned long generation;
    int pending;
    bool quit;
    cnn_pool_fn fn;
    void *ctx;
};

typedef struct {
    cnn_pool *pool;
    int ith;
} worker_arg;

static void *worker_main(void *p)
{
    worker_arg arg = *(worker_arg *)p;
    free(p);
    cnn_pool *pool = arg.pool;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->quit && pool->generation == seen)
            pthread_cond_wait(&pool->work_ready, &pool->lock);
        if (pool->quit)
            break;
        seen = pool->generation;
        cnn_pool_fn fn = pool->fn;
        void *ctx = pool->ctx;
        pthread_mutex_unlock(&pool->lock);
        fn(ctx, arg.ith, pool->threads);
        pthread_mutex_lock(&pool->lock);
        if (--pool->pending == 0)
            pthread_cond_signal(&pool->work_done);
    }
    pthread_mutex_unlock(&pool->lock);
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
    pthread_mutex_lock(&pool->lock);
    pool->quit = true;
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

void cnn_pool_run(cnn_pool *pool, cnn_pool_fn fn, void *ctx)
{
    if (!pool || pool->threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->pending = pool->threads - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->work_ready);
    pthread_mutex_unlock(&pool->lock);
    fn(ctx, 0, pool->threads);
    pthread_mutex_lock(&pool->lock);
    while (pool->pending > 0)
        pthread_cond_wait(&pool->work_done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}
