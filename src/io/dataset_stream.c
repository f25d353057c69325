/* The stream of ready batches: decode threads fill a ring of batches while
 * the caller trains on the one before.
 *
 * Determinism: examples are handed out in order, each to a fixed row of a
 * fixed batch (position p is row p % batch of batch p / batch), and a batch
 * is handed to the caller only when all its rows are done; so what the
 * caller sees depends only on the order, never on which thread decoded
 * what or when. A batch's slot in the ring is reused only after the caller
 * has moved past it, which bounds the memory: queue batches, plus one
 * decode per thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/rng.h"
#include "io/dataset.h"

typedef struct {
    int64_t batch;     /* the batch it holds; -1 = none yet */
    int rows;          /* examples in the batch */
    int remaining;     /* of them still being decoded */
    float *x, *y;
    bool *ok;          /* per row: decoded (false: skipped as bad) */
    cnn_status st;     /* the failure of the lowest row that failed */
    int err_row;
    char err[512];
} slot;

struct dataset_stream {
    cnn_dataset *ds;
    cnn_dataset_stream_config c;
    int64_t n_batches;
    int queue;
    slot *slots;
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work, ready;
    int64_t next_pos;   /* the next position of order to hand out */
    int64_t released;   /* batches below this one are free for reuse */
    int64_t next_batch; /* the batch the caller takes next */
    bool stop;
};

int cnn_dataset_workers(const cnn_dataset *ds)
{
    if (ds->x)
        return 1; /* tensors: a copy, no decoding */
    if (ds->cfg.workers > 0)
        return ds->cfg.workers;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores < 1 ? 1 : cores > 8 ? 8 : (int)cores;
}

static int queue_size(const cnn_dataset *ds, const cnn_dataset_stream_config *c)
{
    int w = c->workers ? c->workers : cnn_dataset_workers(ds);
    return c->queue > 0 ? c->queue : 2 * w + 2;
}

int64_t cnn_dataset_stream_bytes(const cnn_dataset *ds, const cnn_dataset_stream_config *c)
{
    const int w = c->workers ? c->workers : cnn_dataset_workers(ds);
    const int64_t per_batch = (int64_t)c->batch * ((ds->x_row + ds->y_row) * 4 + 1);
    return queue_size(ds, c) * per_batch + (int64_t)w * (ds->x ? 0 : c->decode_bytes)
           + (int64_t)w * (ds->x_row + ds->load_row) * 4;
}

static void *worker(void *arg)
{
    dataset_stream *s = arg;
    cnn_dataset *ds = s->ds;
    const int64_t batch = s->c.batch;
    float *scratch = s->c.transform ? malloc((size_t)ds->x_row * sizeof(float)) : NULL;
    unsigned char *buf = NULL;
    size_t cap = 0;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && (s->next_pos >= s->c.count
                            || s->next_pos / batch >= s->released + s->queue))
            pthread_cond_wait(&s->work, &s->mu);
        if (s->stop)
            break;
        const int64_t pos = s->next_pos++, b = pos / batch;
        const int row = (int)(pos % batch);
        slot *sl = &s->slots[b % s->queue];
        if (row == 0) {
            /* the batch's first example: the slot starts over */
            sl->batch = b;
            sl->rows = (int)(s->c.count - b * batch < batch ? s->c.count - b * batch : batch);
            sl->remaining = sl->rows;
            sl->st = CNN_OK;
            sl->err_row = sl->rows;
        }
        pthread_mutex_unlock(&s->mu);

        float *x = sl->x + row * ds->x_row, *y = sl->y + row * ds->y_row;
        /* the crop window depends only on (crop_key, batch, row) */
        uint64_t key = s->c.crop_key;
        if (key)
            key = cnn_splitmix64(&key) ^ ((uint64_t)b * 0xBF58476D1CE4E5B9ull)
                  ^ ((uint64_t)row * 0x94D049BB133111EBull) ^ 1;
        cnn_status st = scratch || !s->c.transform
                            ? cnn_dataset_load_example(ds, s->c.order[pos], x, y, &buf, &cap,
                                                       s->c.decode_bytes, key)
                            : cnn_fail(CNN_ERR_NO_MEMORY, "data set: out of memory");
        bool ok = st == CNN_OK;
        if (!ok && ds->cfg.skip_bad_images)
            cnn_dataset_mark_bad(ds, s->c.order[pos]);
        else if (ok && s->c.transform)
            s->c.transform(s->c.transform_user, x, b, row, scratch);

        pthread_mutex_lock(&s->mu);
        sl->ok[row] = ok;
        if (!ok && !ds->cfg.skip_bad_images && row < sl->err_row) {
            sl->st = st;
            sl->err_row = row;
            snprintf(sl->err, sizeof sl->err, "%s", cnn_last_error());
        }
        if (--sl->remaining == 0)
            pthread_cond_broadcast(&s->ready);
    }
    pthread_mutex_unlock(&s->mu);
    free(scratch);
    free(buf);
    return NULL;
}

static void stream_free(dataset_stream *s)
{
    for (int q = 0; s->slots && q < s->queue; q++) {
        free(s->slots[q].x);
        free(s->slots[q].y);
        free(s->slots[q].ok);
    }
    free(s->slots);
    free(s->threads);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->ready);
    free(s);
}

cnn_status cnn_dataset_stream_start(cnn_dataset *ds, const cnn_dataset_stream_config *c)
{
    cnn_dataset_stream_stop(ds);
    if (!c->order || c->count < 0 || c->batch < 1 || c->first_batch < 0
        || c->first_batch * c->batch > c->count)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s: stream: need an order, batch >= 1 and a first batch within %lld"
                        " examples",
                        ds->name, (long long)c->count);
    for (int64_t i = 0; i < c->count; i++)
        if (c->order[i] < 0 || c->order[i] >= ds->count)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "%s: stream: order[%lld] = %lld is not an example (it has %lld)",
                            ds->name, (long long)i, (long long)c->order[i],
                            (long long)ds->count);
    dataset_stream *s = calloc(1, sizeof *s);
    if (!s)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", ds->name);
    s->ds = ds;
    s->c = *c;
    s->n_batches = (c->count + c->batch - 1) / c->batch;
    s->queue = queue_size(ds, c);
    s->released = s->next_batch = c->first_batch;
    s->next_pos = c->first_batch * c->batch;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->ready, NULL);
    s->slots = calloc((size_t)s->queue, sizeof *s->slots);
    cnn_status st = s->slots ? CNN_OK : cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", ds->name);
    for (int q = 0; st == CNN_OK && q < s->queue; q++) {
        slot *sl = &s->slots[q];
        sl->batch = -1;
        sl->x = malloc((size_t)(c->batch * ds->x_row) * sizeof(float));
        sl->y = malloc((size_t)(c->batch * ds->y_row) * sizeof(float));
        sl->ok = malloc((size_t)c->batch * sizeof(bool));
        if (!sl->x || !sl->y || !sl->ok)
            st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory for the batch queue (%d batches"
                          " of %d)", ds->name, s->queue, c->batch);
    }
    const int w = c->workers ? c->workers : cnn_dataset_workers(ds);
    if (st == CNN_OK && !(s->threads = calloc((size_t)w, sizeof *s->threads)))
        st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", ds->name);
    ds->stream = s;
    for (int t = 0; st == CNN_OK && t < w; t++) {
        if (pthread_create(&s->threads[t], NULL, worker, s) != 0)
            st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: cannot start decode thread %d of %d", ds->name,
                          t + 1, w);
        else
            s->n_threads++;
    }
    if (st)
        cnn_dataset_stream_stop(ds);
    return st;
}

/* Moves the rows that decoded to the front, keeping their order. */
static int compact(const cnn_dataset *ds, slot *sl)
{
    int kept = 0;
    for (int r = 0; r < sl->rows; r++) {
        if (!sl->ok[r])
            continue;
        if (kept != r) {
            memmove(sl->x + kept * ds->x_row, sl->x + r * ds->x_row,
                    (size_t)ds->x_row * sizeof(float));
            memmove(sl->y + kept * ds->y_row, sl->y + r * ds->y_row,
                    (size_t)ds->y_row * sizeof(float));
        }
        kept++;
    }
    return kept;
}

cnn_status cnn_dataset_stream_next(cnn_dataset *ds, const float **x, const float **y, int *rows)
{
    dataset_stream *s = ds->stream;
    if (!s)
        return cnn_fail(CNN_ERR_STATE, "%s: stream: not started", ds->name);
    pthread_mutex_lock(&s->mu);
    s->released = s->next_batch; /* the caller is done with the batch before */
    pthread_cond_broadcast(&s->work);
    if (s->next_batch >= s->n_batches) {
        pthread_mutex_unlock(&s->mu);
        return cnn_fail(CNN_ERR_STATE, "%s: stream: no batch after the last (%lld)", ds->name,
                        (long long)s->n_batches);
    }
    slot *sl = &s->slots[s->next_batch % s->queue];
    while (sl->batch != s->next_batch || sl->remaining > 0)
        pthread_cond_wait(&s->ready, &s->mu);
    cnn_status st = sl->st;
    s->next_batch++;
    pthread_mutex_unlock(&s->mu);
    if (st)
        return cnn_fail(st, "%s", sl->err);
    *x = sl->x;
    *y = sl->y;
    *rows = compact(ds, sl);
    return CNN_OK;
}

void cnn_dataset_stream_stop(cnn_dataset *ds)
{
    dataset_stream *s = ds ? ds->stream : NULL;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    for (int t = 0; t < s->n_threads; t++)
        pthread_join(s->threads[t], NULL);
    ds->stream = NULL;
    stream_free(s);
}
