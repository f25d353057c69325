/* cnn_dataset: creation from tensors and IDX files, Keras's shuffle and
 * split, the accessors. Listing files: dataset_index.c; decoding:
 * dataset_load.c; streaming: dataset_stream.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/dataset.h"

cnn_status cnn_dataset_alloc(const cnn_dataset_config *cfg, const char *name, cnn_dataset **out)
{
    *out = NULL;
    if ((unsigned)cfg->label_mode > CNN_LABEL_BINARY || (unsigned)cfg->color_mode > CNN_COLOR_RGBA
        || (unsigned)cfg->subset > CNN_SUBSET_VALIDATION)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s: label_mode, color_mode or subset out of range (got %d, %d, %d)", name,
                        (int)cfg->label_mode, (int)cfg->color_mode, (int)cfg->subset);
    if (cfg->image_size[0] < 0 || cfg->image_size[1] < 0 || cfg->image_size[0] > 65536
        || cfg->image_size[1] > 65536)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s: image_size must be in [1, 65536] (0 = 256), got %dx%d", name,
                        cfg->image_size[0], cfg->image_size[1]);
    if (!(cfg->validation_split >= 0 && cfg->validation_split < 1))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s: validation_split must be in [0, 1), got %g", name,
                        (double)cfg->validation_split);
    /* Keras: "If subset is set, validation_split must be set, and inversely." */
    if ((cfg->validation_split > 0) != (cfg->subset != CNN_SUBSET_ALL))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s: validation_split and subset (training or validation) go together, got"
                        " validation_split %g and subset %s",
                        name, (double)cfg->validation_split,
                        cfg->subset == CNN_SUBSET_ALL ? "all" : "training/validation");
    if (!(isfinite(cfg->scale) && cfg->scale >= 0) || cfg->workers < 0 || cfg->workers > 256
        || cfg->cache_bytes < 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s: scale must be finite and >= 0, workers in [0, 256], cache_bytes >= 0;"
                        " got %g, %d, %lld",
                        name, (double)cfg->scale, cfg->workers, (long long)cfg->cache_bytes);
    /* below a page nothing decodes: a mistake (a unit lost), not a budget */
    if (cfg->max_decode_bytes < 0 || (cfg->max_decode_bytes > 0 && cfg->max_decode_bytes < 4096))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s: max_decode_bytes must be 0 (the default, %lld) or at least 4096,"
                        " got %lld",
                        name, (long long)CNN_DEFAULT_MAX_DECODE_BYTES,
                        (long long)cfg->max_decode_bytes);
    cnn_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->name = strdup(name))) {
        free(ds);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", name);
    }
    ds->cfg = *cfg;
    pthread_mutex_init(&ds->lock, NULL);
    if (!ds->cfg.max_decode_bytes)
        ds->cfg.max_decode_bytes = CNN_DEFAULT_MAX_DECODE_BYTES;
    if (!ds->cfg.image_size[0])
        ds->cfg.image_size[0] = 256;
    if (!ds->cfg.image_size[1])
        ds->cfg.image_size[1] = 256;
    ds->rows = ds->load_rows = ds->cfg.image_size[0];
    ds->cols = ds->load_cols = ds->cfg.image_size[1];
    if (cfg->random_crop[0] || cfg->random_crop[1]) {
        if (cfg->random_crop[0] < 1 || cfg->random_crop[1] < 1
            || cfg->random_crop[0] > ds->load_rows || cfg->random_crop[1] > ds->load_cols) {
            cnn_status st = cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                                     "%s: random_crop %dx%d must be at least 1x1 and at most"
                                     " image_size %dx%d",
                                     name, cfg->random_crop[0], cfg->random_crop[1],
                                     ds->load_rows, ds->load_cols);
            cnn_dataset_free(ds);
            return st;
        }
        ds->rows = cfg->random_crop[0];
        ds->cols = cfg->random_crop[1];
    }
    ds->channels = cfg->color_mode == CNN_COLOR_GRAYSCALE ? 1 : cfg->color_mode == CNN_COLOR_RGBA ? 4 : 3;
    *out = ds;
    return CNN_OK;
}

void cnn_dataset_free(cnn_dataset *ds)
{
    if (!ds)
        return;
    cnn_dataset_stream_stop(ds);
    for (int64_t i = 0; ds->paths && i < ds->count; i++)
        free(ds->paths[i]);
    for (int64_t i = 0; ds->cache && i < ds->count; i++)
        free(ds->cache[i]);
    for (int k = 0; ds->class_names && k < ds->n_classes; k++)
        free(ds->class_names[k]);
    free(ds->paths);
    free(ds->labels);
    free(ds->x);
    free(ds->class_names);
    free(ds->class_files);
    free(ds->bad);
    free(ds->cache);
    free(ds->name);
    pthread_mutex_destroy(&ds->lock);
    free(ds);
}

/* ---- NumPy's legacy shuffle ------------------------------------------------
 * Keras shuffles the file list with np.random.RandomState(seed).shuffle:
 * MT19937 seeded by init_genrand(seed), then for i = n-1 .. 1 a swap with
 * j = random_interval(i): the smallest all-ones mask >= i, draws (32-bit
 * while i fits in 32 bits, else 64-bit) masked until <= i. */
typedef struct {
    uint32_t mt[624];
    int next;
} mt19937;

static void mt_seed(mt19937 *s, uint32_t seed)
{
    s->mt[0] = seed;
    for (int i = 1; i < 624; i++)
        s->mt[i] = 1812433253u * (s->mt[i - 1] ^ (s->mt[i - 1] >> 30)) + (uint32_t)i;
    s->next = 624;
}

static uint32_t mt_next32(mt19937 *s)
{
    if (s->next >= 624) {
        for (int i = 0; i < 624; i++) {
            uint32_t y = (s->mt[i] & 0x80000000u) | (s->mt[(i + 1) % 624] & 0x7fffffffu);
            s->mt[i] = s->mt[(i + 397) % 624] ^ (y >> 1) ^ (y & 1 ? 0x9908b0dfu : 0);
        }
        s->next = 0;
    }
    uint32_t y = s->mt[s->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

static uint64_t mt_interval(mt19937 *s, uint64_t max)
{
    if (max == 0)
        return 0;
    uint64_t mask = max, v;
    for (int shift = 1; shift <= 32; shift *= 2)
        mask |= mask >> shift;
    if (max <= 0xffffffffu) {
        while ((v = mt_next32(s) & mask) > max)
            ;
    } else {
        do {
            uint64_t hi = mt_next32(s);
            v = (hi << 32 | mt_next32(s)) & mask;
        } while (v > max);
    }
    return v;
}

cnn_status cnn_numpy_shuffle_permutation(uint32_t seed, int64_t n, int64_t *perm)
{
    mt19937 *s = malloc(sizeof *s);
    if (!s)
        return cnn_fail(CNN_ERR_NO_MEMORY, "data set: out of memory");
    mt_seed(s, seed);
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)mt_interval(s, (uint64_t)i), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    free(s);
    return CNN_OK;
}

/* The double a float was written as (0.2f -> 0.2), as fit.c reads
 * validation_split, so int(0.2 * 10) is 2 as in Python. */
static double as_written(float f)
{
    for (int digits = 1; digits < 9; digits++) {
        char text[32];
        snprintf(text, sizeof text, "%.*g", digits, (double)f);
        double d = strtod(text, NULL);
        if ((float)d == f)
            return d;
    }
    return (double)f;
}

/* Reorders the examples: new i = old perm[i]. */
static cnn_status permute(cnn_dataset *ds, const int64_t *perm)
{
    const int64_t n = ds->count;
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    char **paths = ds->paths ? malloc((size_t)n * sizeof *paths) : NULL;
    float *x = ds->x ? malloc((size_t)(n * ds->x_row) * sizeof *x) : NULL;
    if (!labels || (ds->paths && !paths) || (ds->x && !x)) {
        free(labels);
        free(paths);
        free(x);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", ds->name);
    }
    for (int64_t i = 0; i < n; i++) {
        labels[i] = ds->labels[perm[i]];
        if (paths)
            paths[i] = ds->paths[perm[i]];
        if (x)
            memcpy(x + i * ds->x_row, ds->x + perm[i] * ds->x_row,
                   (size_t)ds->x_row * sizeof *x);
    }
    free(ds->labels);
    free(ds->paths);
    free(ds->x);
    ds->labels = labels;
    ds->paths = paths;
    ds->x = x;
    return CNN_OK;
}

/* Keeps examples [first, first + keep). */
static void keep_range(cnn_dataset *ds, int64_t first, int64_t keep)
{
    for (int64_t i = 0; ds->paths && i < ds->count; i++)
        if (i < first || i >= first + keep)
            free(ds->paths[i]);
    if (ds->paths)
        memmove(ds->paths, ds->paths + first, (size_t)keep * sizeof *ds->paths);
    memmove(ds->labels, ds->labels + first, (size_t)keep * sizeof *ds->labels);
    if (ds->x)
        memmove(ds->x, ds->x + first * ds->x_row, (size_t)(keep * ds->x_row) * sizeof *ds->x);
    ds->count = keep;
}

cnn_status cnn_dataset_finish(cnn_dataset *ds)
{
    const cnn_dataset_config *c = &ds->cfg;
    if (ds->count == 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        ds->paths || !ds->x
                            ? "%s: no image files found (expected files ending in .bmp, .gif,"
                              " .jpeg, .jpg or .png in its class folders)"
                            : "%s: no examples",
                        ds->name);
    if (c->label_mode == CNN_LABEL_BINARY && ds->n_classes != 2)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s: label_mode binary needs exactly 2 classes, found %d", ds->name,
                        ds->n_classes);
    if (ds->n_classes > CNN_MAX_CLASS_NAMES)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: %d classes, at most %d are supported",
                        ds->name, ds->n_classes, CNN_MAX_CLASS_NAMES);
    ds->x_row = (int64_t)ds->rows * ds->cols * ds->channels;
    ds->load_row = (int64_t)ds->load_rows * ds->load_cols * ds->channels;
    ds->y_row = c->label_mode == CNN_LABEL_CATEGORICAL ? ds->n_classes : 1;
    cnn_status st;
    if (!c->no_shuffle) {
        int64_t *perm = malloc((size_t)ds->count * sizeof *perm);
        if (!perm)
            return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", ds->name);
        st = cnn_numpy_shuffle_permutation(c->seed, ds->count, perm);
        if (st == CNN_OK)
            st = permute(ds, perm);
        free(perm);
        if (st)
            return st;
    }
    if (c->validation_split > 0) {
        /* Keras: num_val_samples = int(validation_split * len(samples));
         * training samples[:-num_val], validation samples[-num_val:] */
        const int64_t n = ds->count;
        const int64_t n_val = (int64_t)(as_written(c->validation_split) * (double)n);
        if (n_val < 1 || n_val >= n)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "%s: validation_split %g of %lld files leaves %lld for training and"
                            " %lld for validation; each part needs at least one",
                            ds->name, as_written(c->validation_split), (long long)n,
                            (long long)(n - n_val), (long long)n_val);
        if (c->subset == CNN_SUBSET_TRAINING)
            keep_range(ds, 0, n - n_val);
        else
            keep_range(ds, n - n_val, n_val);
    }
    ds->class_files = calloc((size_t)ds->n_classes, sizeof *ds->class_files);
    ds->bad = calloc((size_t)ds->count, sizeof *ds->bad);
    ds->cache = calloc((size_t)ds->count, sizeof *ds->cache);
    if (!ds->class_files || !ds->bad || !ds->cache)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", ds->name);
    for (int64_t i = 0; i < ds->count; i++)
        ds->class_files[ds->labels[i]]++;
    return CNN_OK;
}

/* ---- In-memory sources --------------------------------------------------- */

static cnn_status set_numbered_classes(cnn_dataset *ds, int classes)
{
    ds->class_names = calloc((size_t)classes, sizeof *ds->class_names);
    if (!ds->class_names)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", ds->name);
    ds->n_classes = classes;
    for (int k = 0; k < classes; k++) {
        char text[16];
        snprintf(text, sizeof text, "%d", k);
        if (!(ds->class_names[k] = strdup(text)))
            return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", ds->name);
    }
    return CNN_OK;
}

cnn_status cnn_dataset_from_tensors(const cnn_tensor *x, const cnn_tensor *y, int classes,
                                    cnn_dataset_config cfg, cnn_dataset **out)
{
    if (!out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "data set: out is NULL");
    *out = NULL;
    if (!x || !y || x->rank != 4 || y->rank != 1 || x->dims[0] != y->dims[0])
        return cnn_fail(CNN_ERR_SHAPE,
                        "data set: expected x (n, rows, cols, channels) and y (n) with the same n");
    if (x->dims[1] > 65536 || x->dims[2] > 65536 || x->dims[3] > 4 || x->dims[0] > INT32_MAX)
        return cnn_fail(CNN_ERR_SHAPE, "data set: x: images of at most 65536x65536x4 expected");
    if (classes < 0 || classes > CNN_MAX_CLASS_NAMES)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "data set: classes must be in [0, %d], got %d",
                        CNN_MAX_CLASS_NAMES, classes);
    int top = 0;
    for (int64_t i = 0; i < y->dims[0]; i++) {
        float v = y->data[i];
        if (!(v >= 0 && v < (float)CNN_MAX_CLASS_NAMES) || v != floorf(v)
            || (classes && v >= (float)classes))
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "data set: y: example %lld has label %g, expected an integer in [0,"
                            " %d)",
                            (long long)i, (double)v, classes ? classes : CNN_MAX_CLASS_NAMES);
        if ((int)v + 1 > top)
            top = (int)v + 1;
    }
    cnn_dataset *ds;
    cfg.image_size[0] = (int)x->dims[1];
    cfg.image_size[1] = (int)x->dims[2];
    cfg.color_mode = CNN_COLOR_RGB;
    cfg.random_crop[0] = cfg.random_crop[1] = 0;
    cnn_status st = cnn_dataset_alloc(&cfg, "tensors", &ds);
    if (st)
        return st;
    ds->channels = (int)x->dims[3];
    ds->count = x->dims[0];
    ds->x_row = cnn_tensor_size(x) / (x->dims[0] ? x->dims[0] : 1);
    ds->labels = malloc((size_t)(ds->count ? ds->count : 1) * sizeof *ds->labels);
    ds->x = malloc((size_t)(cnn_tensor_size(x) ? cnn_tensor_size(x) : 1) * sizeof(float));
    if (!ds->labels || !ds->x)
        st = cnn_fail(CNN_ERR_NO_MEMORY, "data set: out of memory for %lld examples",
                      (long long)ds->count);
    if (st == CNN_OK) {
        memcpy(ds->x, x->data, (size_t)cnn_tensor_size(x) * sizeof(float));
        for (int64_t i = 0; i < ds->count; i++)
            ds->labels[i] = (int32_t)y->data[i];
        st = set_numbered_classes(ds, classes ? classes : top);
    }
    if (st == CNN_OK)
        st = cnn_dataset_finish(ds);
    if (st) {
        cnn_dataset_free(ds);
        return st;
    }
    *out = ds;
    return CNN_OK;
}

cnn_status cnn_dataset_from_idx(const char *images, const char *labels, cnn_dataset_config cfg,
                                cnn_dataset **out)
{
    if (!out || !images || !labels)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "data set: images, labels and out are required");
    *out = NULL;
    cnn_tensor *x = NULL, *y = NULL;
    cnn_status st = cnn_dataset_load_idx(images, &x);
    if (st == CNN_OK)
        st = cnn_dataset_load_idx(labels, &y);
    if (st == CNN_OK && x->rank == 3)
        st = cnn_tensor_expand_dims(x);
    if (st == CNN_OK && (x->rank != 4 || y->rank != 1 || x->dims[0] != y->dims[0]))
        st = cnn_fail(CNN_ERR_SHAPE,
                      "%s, %s: expected images (n, rows, cols[, channels]) and labels (n), got"
                      " rank %d with %lld and rank %d with %lld",
                      images, labels, x->rank, (long long)x->dims[0], y->rank,
                      (long long)y->dims[0]);
    if (st == CNN_OK) {
        /* as cnn_dataset_load_mnist: divided by 255 unless a scale is given */
        int64_t n = cnn_tensor_size(x);
        for (int64_t i = 0; i < n; i++)
            x->data[i] = cfg.scale == 0 ? x->data[i] / 255.0f : x->data[i] * cfg.scale;
        st = cnn_dataset_from_tensors(x, y, 0, cfg, out);
    }
    if (st == CNN_OK) {
        free((*out)->name);
        if (!((*out)->name = strdup(images))) {
            cnn_dataset_free(*out);
            *out = NULL;
            st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", images);
        }
    }
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    return st;
}

/* ---- Accessors --------------------------------------------------------------- */

int64_t cnn_dataset_count(const cnn_dataset *ds) { return ds ? ds->count : 0; }

cnn_shape cnn_dataset_element_shape(const cnn_dataset *ds)
{
    return ds ? cnn_shape_hwc(ds->rows, ds->cols, ds->channels) : (cnn_shape){0};
}

int64_t cnn_dataset_target_size(const cnn_dataset *ds) { return ds ? ds->y_row : 0; }

int cnn_dataset_class_count(const cnn_dataset *ds) { return ds ? ds->n_classes : 0; }

const char *cnn_dataset_class_name(const cnn_dataset *ds, int k)
{
    return ds && k >= 0 && k < ds->n_classes ? ds->class_names[k] : NULL;
}

int64_t cnn_dataset_class_files(const cnn_dataset *ds, int k)
{
    return ds && k >= 0 && k < ds->n_classes ? ds->class_files[k] : 0;
}

const char *cnn_dataset_file(const cnn_dataset *ds, int64_t i)
{
    return ds && ds->paths && i >= 0 && i < ds->count ? ds->paths[i] : NULL;
}

int cnn_dataset_label(const cnn_dataset *ds, int64_t i)
{
    return ds && i >= 0 && i < ds->count ? ds->labels[i] : -1;
}

int64_t cnn_dataset_skipped(const cnn_dataset *ds)
{
    if (!ds)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&ds->lock);
    int64_t n = ds->n_bad;
    pthread_mutex_unlock((pthread_mutex_t *)&ds->lock);
    return n;
}

const char *cnn_dataset_skipped_file(const cnn_dataset *ds, int64_t k)
{
    if (!ds || k < 0)
        return NULL;
    const char *found = NULL;
    pthread_mutex_lock((pthread_mutex_t *)&ds->lock);
    for (int64_t i = 0; i < ds->count && !found; i++)
        if (ds->bad[i] && k-- == 0)
            found = ds->paths ? ds->paths[i] : ds->name;
    pthread_mutex_unlock((pthread_mutex_t *)&ds->lock);
    return found;
}

void cnn_dataset_mark_bad(cnn_dataset *ds, int64_t i)
{
    pthread_mutex_lock(&ds->lock);
    if (!ds->bad[i]) {
        ds->bad[i] = true;
        ds->n_bad++;
    }
    pthread_mutex_unlock(&ds->lock);
}

void cnn_dataset_write_target(const cnn_dataset *ds, int64_t i, float *y)
{
    const int label = ds->labels[i];
    if (ds->cfg.label_mode == CNN_LABEL_CATEGORICAL) {
        memset(y, 0, (size_t)ds->y_row * sizeof *y);
        y[label] = 1.0f;
    } else {
        y[0] = (float)label;
    }
}

cnn_status cnn_dataset_read(cnn_dataset *ds, int64_t start, int64_t count, float *x, float *y)
{
    if (!ds || !x || start < 0 || count < 0 || start > ds->count - count)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "data set: read: examples [%lld, %lld) out of range (it has %lld)",
                        (long long)start, (long long)(start + count),
                        (long long)(ds ? ds->count : 0));
    unsigned char *buf = NULL;
    size_t cap = 0;
    cnn_status st = CNN_OK;
    for (int64_t i = 0; i < count && st == CNN_OK; i++)
        st = cnn_dataset_load_example(ds, start + i, x + i * ds->x_row, y ? y + i * ds->y_row : NULL,
                                      &buf, &cap, ds->cfg.max_decode_bytes, 0);
    free(buf);
    return st;
}
