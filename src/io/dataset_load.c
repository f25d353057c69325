/* One example of a data set: read the file, decode it (src/io/decode.h),
 * crop and resize it as Keras's load_image does, scale the pixels. Called
 * by the decode threads at once: everything it shares with them (the cache,
 * the bad-file marks) is under the data set's lock. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/rng.h"
#include "io/dataset.h"
#include "io/decode.h"

/* Image files larger than this are refused unread. */
#define MAX_IMAGE_FILE ((uint64_t)1 << 30)

/* Keras's crop_to_aspect_ratio (keras.ops.image.resize): the largest
 * centred window of the target's aspect ratio. */
static void crop_box(int h, int w, int th, int tw, int *y0, int *x0, int *ch, int *cw)
{
    int64_t crop_h = (int64_t)((double)w * th / tw), crop_w = (int64_t)((double)h * tw / th);
    crop_h = crop_h < h ? crop_h : h;
    crop_w = crop_w < w ? crop_w : w;
    *ch = crop_h > 1 ? (int)crop_h : 1;
    *cw = crop_w > 1 ? (int)crop_w : 1;
    *y0 = (int)((double)(h - *ch) / 2);
    *x0 = (int)((double)(w - *cw) / 2);
}

/* One axis of a half-pixel-centre bilinear resize (TensorFlow's
 * resize_bilinear with half_pixel_centers, Keras's default): output i
 * reads inputs lo[i], hi[i] weighted by frac[i]. */
static void axis_weights(int in, int out, int *lo, int *hi, float *frac)
{
    const float scale = (float)in / (float)out;
    for (int i = 0; i < out; i++) {
        float src = ((float)i + 0.5f) * scale - 0.5f, f = floorf(src);
        int a = (int)f, b = (int)ceilf(src);
        lo[i] = a < 0 ? 0 : a;
        hi[i] = b > in - 1 ? in - 1 : b;
        frac[i] = src - f;
    }
}

/* img's window (y0, x0, h, w) resized to rows x cols into x, pixels
 * scaled (scale 0: divided by 255, as the IDX loaders do). */
static cnn_status resize_into(const cnn_decoded_image *img, int y0, int x0, int h, int w,
                              int rows, int cols, float scale, float *x, const char *name)
{
    const int c = img->channels;
    const uint8_t *p = img->pixels;
    const size_t stride = (size_t)img->cols * c;
    if (h == rows && w == cols) { /* no resampling: exact values */
        for (int r = 0; r < rows; r++) {
            const uint8_t *row = p + (size_t)(y0 + r) * stride + (size_t)x0 * c;
            float *out = x + (size_t)r * cols * c;
            for (int k = 0; k < cols * c; k++)
                out[k] = scale == 0 ? (float)row[k] / 255.0f : (float)row[k] * scale;
        }
        return CNN_OK;
    }
    int *lo = malloc(sizeof(int) * (size_t)(rows + cols) * 2);
    float *frac = malloc(sizeof(float) * (size_t)(rows + cols));
    if (!lo || !frac) {
        free(lo);
        free(frac);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory resizing", name);
    }
    int *ylo = lo, *yhi = lo + rows, *xlo = lo + 2 * rows, *xhi = lo + 2 * rows + cols;
    float *yf = frac, *xf = frac + rows;
    axis_weights(h, rows, ylo, yhi, yf);
    axis_weights(w, cols, xlo, xhi, xf);
    for (int r = 0; r < rows; r++) {
        const uint8_t *top = p + (size_t)(y0 + ylo[r]) * stride + (size_t)x0 * c;
        const uint8_t *bot = p + (size_t)(y0 + yhi[r]) * stride + (size_t)x0 * c;
        float *out = x + (size_t)r * cols * c;
        for (int q = 0; q < cols; q++) {
            const size_t a = (size_t)xlo[q] * c, b = (size_t)xhi[q] * c;
            for (int k = 0; k < c; k++) {
                float t = top[a + k] + (top[b + k] - top[a + k]) * xf[q];
                float u = bot[a + k] + (bot[b + k] - bot[a + k]) * xf[q];
                float v = t + (u - t) * yf[r];
                out[(size_t)q * c + k] = scale == 0 ? v / 255.0f : v * scale;
            }
        }
    }
    free(lo);
    free(frac);
    return CNN_OK;
}

static cnn_status read_file(const char *path, unsigned char **buf, size_t *cap, size_t *size)
{
    int fd;
    cnn_status st = cnn_file_open_read(path, "image file", MAX_IMAGE_FILE, &fd, size);
    if (st)
        return st;
    if (*size + 1 > *cap) {
        unsigned char *b = realloc(*buf, *size + 1);
        if (!b) {
            close(fd);
            return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory for %zu bytes", path, *size);
        }
        *buf = b;
        *cap = *size + 1;
    }
    st = cnn_read_exact(fd, *buf, *size, path);
    close(fd);
    return st;
}

static void cache_put(cnn_dataset *ds, int64_t i, const float *x)
{
    const int64_t bytes = ds->load_row * (int64_t)sizeof(float);
    pthread_mutex_lock(&ds->lock);
    bool room = !ds->cache[i] && ds->cache_used + bytes <= ds->cfg.cache_bytes;
    if (room)
        ds->cache_used += bytes; /* reserved: the copy is made outside the lock */
    pthread_mutex_unlock(&ds->lock);
    if (!room)
        return;
    float *copy = malloc((size_t)bytes);
    if (copy)
        memcpy(copy, x, (size_t)bytes);
    pthread_mutex_lock(&ds->lock);
    if (copy && !ds->cache[i])
        ds->cache[i] = copy;
    else {
        free(copy);
        ds->cache_used -= bytes;
    }
    pthread_mutex_unlock(&ds->lock);
}

/* Keras's RandomCrop: the (rows, cols) window of the resized image img at
 * a random offset drawn from key, or the centre one for key 0. */
static void crop_into(const cnn_dataset *ds, const float *img, uint64_t key, float *x)
{
    int dy = (ds->load_rows - ds->rows) / 2, dx = (ds->load_cols - ds->cols) / 2;
    if (key) {
        cnn_rng rng;
        cnn_rng_seed(&rng, key);
        dy = (int)cnn_rng_below(&rng, (uint64_t)(ds->load_rows - ds->rows) + 1);
        dx = (int)cnn_rng_below(&rng, (uint64_t)(ds->load_cols - ds->cols) + 1);
    }
    const size_t row = (size_t)ds->cols * ds->channels;
    for (int r = 0; r < ds->rows; r++)
        memcpy(x + r * row, img + ((size_t)(dy + r) * ds->load_cols + dx) * ds->channels,
               row * sizeof(float));
}

static cnn_status load_resized(cnn_dataset *ds, int64_t i, float *x, unsigned char **buf,
                               size_t *cap, int64_t max_bytes);

cnn_status cnn_dataset_load_example(cnn_dataset *ds, int64_t i, float *x, float *y,
                                    unsigned char **buf, size_t *cap, int64_t max_bytes,
                                    uint64_t crop_key)
{
    if (y)
        cnn_dataset_write_target(ds, i, y);
    if (ds->x) {
        memcpy(x, ds->x + i * ds->x_row, (size_t)ds->x_row * sizeof(float));
        return CNN_OK;
    }
    if (ds->load_row == ds->x_row)
        return load_resized(ds, i, x, buf, cap, max_bytes);
    float *img = malloc((size_t)ds->load_row * sizeof(float));
    if (!img)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", ds->paths[i]);
    cnn_status st = load_resized(ds, i, img, buf, cap, max_bytes);
    if (st == CNN_OK)
        crop_into(ds, img, crop_key, x);
    free(img);
    return st;
}

/* Example i decoded and resized to image_size (load_row floats) into x. */
static cnn_status load_resized(cnn_dataset *ds, int64_t i, float *x, unsigned char **buf,
                               size_t *cap, int64_t max_bytes)
{
    const size_t row_bytes = (size_t)ds->load_row * sizeof(float);
    /* a cached image never changes or goes away while the data set lives */
    pthread_mutex_lock(&ds->lock);
    const float *cached = ds->cache[i];
    pthread_mutex_unlock(&ds->lock);
    if (cached) {
        memcpy(x, cached, row_bytes);
        return CNN_OK;
    }
    const char *path = ds->paths[i];
    size_t size = 0;
    cnn_status st = read_file(path, buf, cap, &size);
    if (st)
        return st;
    cnn_decoded_image img = {0};
    /* a large JPEG may be decoded at 1/2, 1/4, 1/8 scale, never below the target */
    if ((st = cnn_decode_image(*buf, size, path, ds->channels, ds->load_rows, ds->load_cols,
                               max_bytes, &img)))
        return st;
    if (img.rows < 1 || img.cols < 1 || img.channels != ds->channels) {
        cnn_decoded_image_free(&img);
        return cnn_fail(CNN_ERR_FORMAT, "%s: decoded to %dx%dx%d, expected at least 1x1x%d", path,
                        img.rows, img.cols, img.channels, ds->channels);
    }
    int y0 = 0, x0 = 0, h = img.rows, w = img.cols;
    if (ds->cfg.crop_to_aspect_ratio)
        crop_box(img.rows, img.cols, ds->load_rows, ds->load_cols, &y0, &x0, &h, &w);
    st = resize_into(&img, y0, x0, h, w, ds->load_rows, ds->load_cols, ds->cfg.scale, x, path);
    cnn_decoded_image_free(&img);
    if (st == CNN_OK && ds->cfg.cache_bytes)
        cache_put(ds, i, x);
    return st;
}
