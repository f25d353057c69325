/* Data sets (cnn_dataset): the object (dataset.c), the listing of a
 * directory or CSV list and Keras's shuffle and split (dataset_index.c), the
 * decoding of one example (dataset_load.c) and the stream of ready batches
 * (dataset_stream.c). Private to the library: nothing here is in cnn.h. */
#ifndef CNN_IO_DATASET_H
#define CNN_IO_DATASET_H

#include <pthread.h>

#include "cnn.h"

typedef struct dataset_stream dataset_stream;

struct cnn_dataset {
    cnn_dataset_config cfg;  /* defaults filled in */
    char *name;              /* the directory, list or "tensors", for messages */
    int64_t count;
    char **paths;            /* files: count paths (NULL for tensors) */
    int32_t *labels;         /* count class indices */
    float *x;                /* tensors: count * x_row floats (NULL for files) */
    int rows, cols, channels; /* an example (after random_crop) */
    int load_rows, load_cols; /* image_size: what an image is resized to */
    int64_t x_row, y_row;    /* floats per example and per target */
    int64_t load_row;        /* floats of a resized image (the cache's unit) */
    int n_classes;
    char **class_names;
    int64_t *class_files;    /* per class, after the split */

    /* Filled by the decode threads, under lock. */
    pthread_mutex_t lock;
    bool *bad;               /* per example: skipped as a bad image */
    int64_t n_bad;
    float **cache;           /* per example: the decoded, resized image or NULL */
    int64_t cache_used;      /* bytes */

    dataset_stream *stream;  /* while streaming, else NULL */
};

/* Allocates an empty data set with cfg's defaults filled in. */
cnn_status cnn_dataset_alloc(const cnn_dataset_config *cfg, const char *name, cnn_dataset **out);
/* After paths/labels (or x) and the class names are set: shuffles and
 * splits as Keras does, counts files per class, sets the shapes. */
cnn_status cnn_dataset_finish(cnn_dataset *ds);
/* NumPy's legacy RandomState(seed).shuffle permutation of n items:
 * perm[i] = the index of the item that ends at i. */
cnn_status cnn_numpy_shuffle_permutation(uint32_t seed, int64_t n, int64_t *perm);

/* Decodes example i into x (x_row floats) and its target into y (y_row
 * floats, may be NULL). buf/cap: a reusable read buffer (grown with
 * realloc). max_bytes bounds the decoder's allocations. Uses and fills the
 * cache. With random_crop, crop_key picks the window (0: the centre). */
cnn_status cnn_dataset_load_example(cnn_dataset *ds, int64_t i, float *x, float *y,
                                    unsigned char **buf, size_t *cap, int64_t max_bytes,
                                    uint64_t crop_key);
void cnn_dataset_write_target(const cnn_dataset *ds, int64_t i, float *y);
/* Marks example i as bad (skip_bad_images). */
void cnn_dataset_mark_bad(cnn_dataset *ds, int64_t i);

/* ---- The stream (dataset_stream.c) ---------------------------------------
 * Background threads decode the examples order[0..count) into batches of
 * batch examples (the last one shorter), starting with batch first_batch,
 * into a ring of queue batches; cnn_dataset_stream_next hands them out in
 * order. Each batch's content depends only on order and on transform, so
 * the result is the same however the threads are scheduled. */

/* Applied by the decode thread to each example after decoding: batch b,
 * row r of it (training augmentation). scratch holds one example. */
typedef void (*cnn_dataset_transform_fn)(void *user, float *x, int64_t batch, int row,
                                         float *scratch);

typedef struct cnn_dataset_stream_config {
    const int64_t *order;    /* example indices; stays valid until stop */
    int64_t count;
    int batch;
    int64_t first_batch;
    int queue;               /* batches in the ring; 0 = 2 per worker + 2 */
    int workers;             /* 0 = the data set's */
    int64_t decode_bytes;    /* each decode's allocation bound */
    uint64_t crop_key;       /* random_crop: windows drawn from (crop_key, batch,
                                row); 0 = centre windows */
    cnn_dataset_transform_fn transform;
    void *transform_user;
} cnn_dataset_stream_config;

/* The bytes a stream with this configuration holds (queue and decode
 * buffers), for the memory budget. */
int64_t cnn_dataset_stream_bytes(const cnn_dataset *ds, const cnn_dataset_stream_config *c);
cnn_status cnn_dataset_stream_start(cnn_dataset *ds, const cnn_dataset_stream_config *c);
/* The next batch: *x, *y view the ring (valid until the next call or
 * stop), *rows its examples (fewer than the batch's when bad files were
 * skipped; 0 when all were). CNN_ERR_STATE past the last batch. A file
 * that fails is reported by the batch that holds it. */
cnn_status cnn_dataset_stream_next(cnn_dataset *ds, const float **x, const float **y, int *rows);
/* Stops and joins the threads; safe to call when not streaming. */
void cnn_dataset_stream_stop(cnn_dataset *ds);
/* The workers a data set uses (cfg.workers or the cores, at most 8). */
int cnn_dataset_workers(const cnn_dataset *ds);

#endif
