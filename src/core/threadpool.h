/* A fixed set of worker threads owned by a model (never global).
 * cnn_pool_run(pool, fn, ctx) calls fn(ctx, ith, nth) for ith = 0..nth-1,
 * ith 0 on the calling thread, and returns when all have finished. */
#ifndef CNN_CORE_THREADPOOL_H
#define CNN_CORE_THREADPOOL_H

#include <stdint.h>

#include "cnn.h"

typedef struct cnn_pool cnn_pool;
typedef void (*cnn_pool_fn)(void *ctx, int ith, int nth);

/* threads >= 1; a pool of 1 runs everything on the caller. */
cnn_status cnn_pool_create(cnn_pool **out, int threads);
void cnn_pool_free(cnn_pool *pool);
int cnn_pool_threads(const cnn_pool *pool);
/* pool may be NULL (runs fn(ctx, 0, 1)). */
void cnn_pool_run(cnn_pool *pool, cnn_pool_fn fn, void *ctx);

/* Elementwise passes over n values (activations, copies, merges): fn(ctx,
 * begin, end) on contiguous ranges, one per thread, each a whole number of
 * cache lines; on the caller alone below CNN_POOL_ELEMENTWISE_MIN values
 * (NULL pool: always). Every value is computed as on one thread. */
typedef void (*cnn_pool_range_fn)(void *ctx, int64_t begin, int64_t end);
void cnn_pool_elementwise(cnn_pool *pool, int64_t n, cnn_pool_range_fn fn, void *ctx);
/* A pass over data in this core's cache: below this many values (1 MiB)
 * handing half to the other core costs more than it saves (measured on
 * BatchNormalization at batch 1, which splits at the same size). */
#define CNN_POOL_ELEMENTWISE_MIN 262144

/* The [begin, end) share of n items for worker ith of nth. */
static inline void cnn_split_range(long n, int ith, int nth, long *begin, long *end)
{
    long per = n / nth, extra = n % nth;
    *begin = ith * per + (ith < extra ? ith : extra);
    *end = *begin + per + (ith < extra ? 1 : 0);
}

#endif
