/* Images in (through cnn_decode_image, src/io/decode.c) and out (stb_image_write). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image_write.h>

#include "core/error.h"
#include "core/fileio.h"
#include "io/decode.h"

/* Checks the declared size against max_bytes (the decoder's 8-bit pixels
 * and the float tensor together), decodes through cnn_decode_image and
 * converts to floats in [0, 1]. */
static cnn_status decode(const unsigned char *bytes, size_t size, const char *name, int channels,
                         int64_t max_bytes, cnn_tensor **out)
{
    *out = NULL;
    if (channels != 0 && channels != 1 && channels != 3)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: channels must be 0 (as stored), 1 or 3, got %d",
                        name, channels);
    int h, w, comp;
    cnn_status st = cnn_decode_info(bytes, size, name, &h, &w, &comp);
    if (st)
        return st;
    /* grey + alpha and RGBA lose their alpha (as Keras' load_img) */
    int c = channels ? channels : comp == 2 ? 1 : comp == 4 ? 3 : comp;
    if (max_bytes <= 0)
        max_bytes = CNN_DEFAULT_MAX_MEMORY;
    int64_t need;
    if (__builtin_mul_overflow((int64_t)w * h, comp + (int64_t)sizeof(float) * c, &need))
        need = INT64_MAX;
    if (need > max_bytes)
        return cnn_fail(CNN_ERR_NO_MEMORY,
                        "%s: image declares %d x %d x %d, which needs %lld bytes to load, more"
                        " than the allowed %lld",
                        name, w, h, c, (long long)need, (long long)max_bytes);
    /* after the check: need bounds it, so this product cannot overflow (fuzz_image found
     * w * h * c * 4 computed first, overflowing for a header declaring 2^31 x 2^31) */
    int64_t floats = (int64_t)w * h * c * (int64_t)sizeof(float);
    cnn_decoded_image img;
    st = cnn_decode_image(bytes, size, name, c, 0, 0, max_bytes - floats, &img);
    if (st)
        return st;
    cnn_tensor *t;
    st = cnn_tensor_create(&t, 4, (int64_t[]){1, img.rows, img.cols, c});
    if (st == CNN_OK) {
        const float scale = 1.0f / 255.0f;
        const int64_t n = (int64_t)img.rows * img.cols * c;
        for (int64_t i = 0; i < n; i++)
            t->data[i] = (float)img.pixels[i] * scale;
        *out = t;
    }
    cnn_decoded_image_free(&img);
    return st;
}

cnn_status cnn_image_load_memory(const void *bytes, size_t size, const char *name, int channels,
                                 int64_t max_bytes, cnn_tensor **out)
{
    if (out)
        *out = NULL;
    if (!out || (!bytes && size))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "image: bytes and out are required");
    return decode(bytes, size, name ? name : "image", channels, max_bytes, out);
}

cnn_status cnn_image_load(const char *path, int channels, int64_t max_bytes, cnn_tensor **out)
{
    if (out)
        *out = NULL;
    if (!path || !out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "image: path and out are required");
    /* stb_image counts in int */
    unsigned char *bytes;
    size_t size;
    cnn_status st = cnn_file_read(path, "image file", INT_MAX, &bytes, &size);
    if (!st)
        st = decode(bytes, size, path, channels, max_bytes, out);
    free(bytes);
    return st;
}

cnn_status cnn_image_resize(const cnn_tensor *in, int rows, int cols, cnn_tensor **out)
{
    *out = NULL;
    if (!in || in->rank != 4 || in->dims[0] != 1 || rows < 1 || cols < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "resize: expected a (1, rows, cols, channels) image and a positive size");
    const int64_t h = in->dims[1], w = in->dims[2], c = in->dims[3];
    cnn_status st = cnn_tensor_create(out, 4, (int64_t[]){1, rows, cols, c});
    if (st)
        return st;
    /* Pixel centres aligned (as PIL/OpenCV's bilinear without antialias). */
    for (int y = 0; y < rows; y++) {
        double sy = ((double)y + 0.5) * (double)h / rows - 0.5;
        sy = sy < 0 ? 0 : sy > (double)(h - 1) ? (double)(h - 1) : sy;
        int64_t y0 = (int64_t)sy, y1 = y0 + 1 < h ? y0 + 1 : y0;
        float fy = (float)(sy - (double)y0);
        for (int x = 0; x < cols; x++) {
            double sx = ((double)x + 0.5) * (double)w / cols - 0.5;
            sx = sx < 0 ? 0 : sx > (double)(w - 1) ? (double)(w - 1) : sx;
            int64_t x0 = (int64_t)sx, x1 = x0 + 1 < w ? x0 + 1 : x0;
            float fx = (float)(sx - (double)x0);
            float *o = (*out)->data + ((int64_t)y * cols + x) * c;
            for (int64_t k = 0; k < c; k++) {
                float a = in->data[(y0 * w + x0) * c + k], b = in->data[(y0 * w + x1) * c + k];
                float d = in->data[(y1 * w + x0) * c + k], e = in->data[(y1 * w + x1) * c + k];
                o[k] = (a + (b - a) * fx) * (1 - fy) + (d + (e - d) * fx) * fy;
            }
        }
    }
    return CNN_OK;
}

/* stb_image_write hands the PNG over in pieces; the first failure is kept. */
typedef struct {
    cnn_atomic_file *out;
    cnn_status st;
} png_sink;

static void write_to_file(void *ctx, void *data, int size)
{
    png_sink *s = ctx;
    if (!s->st)
        s->st = cnn_atomic_write(s->out, data, (size_t)size);
}

cnn_status cnn_image_save_png(const char *path, const uint8_t *pixels, int rows, int cols,
                              int channels)
{
    if (!path || !pixels || rows < 1 || cols < 1 || channels < 1 || channels > 4
        || (int64_t)cols * channels > INT_MAX)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "save_png: need a path, pixels, rows and cols >= 1, channels 1..4");
    cnn_atomic_file out;
    png_sink sink = {&out, cnn_atomic_open(&out, path)};
    if (sink.st)
        return sink.st;
    if (!stbi_write_png_to_func(write_to_file, &sink, cols, rows, channels, pixels,
                                cols * channels)
        && !sink.st)
        sink.st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: cannot encode the PNG (out of memory)", path);
    return cnn_atomic_close(&out, sink.st);
}
