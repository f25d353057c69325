/* Images in and out through stb_image / stb_image_write (Debian libstb). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "core/error.h"

/* Checks the declared size and decodes; pixels are converted straight into
 * the float tensor (the only copy besides stb's 8-bit buffer). */
static cnn_status decode(const stbi_uc *bytes, size_t size, const char *name, int channels,
                         int64_t max_bytes, cnn_tensor **out)
{
    *out = NULL;
    if (channels != 0 && channels != 1 && channels != 3)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: channels must be 0 (as stored), 1 or 3, got %d",
                        name, channels);
    if (size == 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: the file is empty", name);
    if (size > INT_MAX)
        return cnn_fail(CNN_ERR_FORMAT, "%s: file larger than 2 GiB is not supported", name);
    int w, h, comp;
    if (!stbi_info_from_memory(bytes, (int)size, &w, &h, &comp)) {
        /* stb refuses images over 1 GiB decoded before saying their size;
         * for a PNG read the header ourselves so the message gives it. */
        static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        if (size >= 24 && memcmp(bytes, png_magic, 8) == 0 && memcmp(bytes + 12, "IHDR", 4) == 0) {
            const stbi_uc *d = bytes + 16;
            uint32_t pw = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
            uint32_t ph = (uint32_t)d[4] << 24 | (uint32_t)d[5] << 16 | (uint32_t)d[6] << 8 | d[7];
            if ((uint64_t)pw * ph > (1u << 28))
                return cnn_fail(CNN_ERR_NO_MEMORY,
                                "%s: image declares %u x %u pixels, more than the decoder's"
                                " limit of 1 GiB",
                                name, pw, ph);
        }
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: not a readable image (expected PNG, JPEG, BMP, PGM/PPM, TGA or GIF):"
                        " %s",
                        name, stbi_failure_reason());
    }
    int c = channels ? channels : comp;
    if (c == 2)
        c = 1; /* grey + alpha: the alpha is dropped */
    if (c == 4)
        c = 3;
    if (max_bytes <= 0)
        max_bytes = CNN_DEFAULT_MAX_MEMORY;
    int64_t need = (int64_t)w * h * (c + (int64_t)sizeof(float) * c);
    if (w < 1 || h < 1 || need > max_bytes)
        return cnn_fail(CNN_ERR_NO_MEMORY,
                        "%s: image declares %d x %d x %d, which needs %lld bytes to load, more"
                        " than the allowed %lld",
                        name, w, h, c, (long long)need, (long long)max_bytes);
    int got;
    stbi_uc *pixels = stbi_load_from_memory(bytes, (int)size, &w, &h, &got, c);
    if (!pixels)
        return cnn_fail(CNN_ERR_FORMAT, "%s: cannot decode the image: %s", name,
                        stbi_failure_reason());
    cnn_tensor *t;
    cnn_status st = cnn_tensor_create(&t, 4, (int64_t[]){1, h, w, c});
    if (st == CNN_OK) {
        int64_t n = (int64_t)w * h * c;
        for (int64_t i = 0; i < n; i++)
            t->data[i] = (float)pixels[i] * (1.0f / 255.0f);
        *out = t;
    }
    stbi_image_free(pixels);
    return st;
}

cnn_status cnn_image_load_memory(const void *bytes, size_t size, const char *name, int channels,
                                 int64_t max_bytes, cnn_tensor **out)
{
    if (!out || (!bytes && size))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "image: bytes and out are required");
    return decode(bytes, size, name ? name : "image", channels, max_bytes, out);
}

cnn_status cnn_image_load(const char *path, int channels, int64_t max_bytes, cnn_tensor **out)
{
    if (!path || !out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "image: path and out are required");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cnn_fail(CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return cnn_fail(CNN_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size > INT_MAX) {
        fclose(f);
        return cnn_fail(CNN_ERR_FORMAT, "%s: file larger than 2 GiB is not supported", path);
    }
    size_t size = (size_t)sb.st_size;
    unsigned char *bytes = malloc(size ? size : 1);
    if (!bytes) {
        fclose(f);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    size_t got = fread(bytes, 1, size, f);
    fclose(f);
    cnn_status st = got == size ? decode(bytes, size, path, channels, max_bytes, out)
                                : cnn_fail(CNN_ERR_IO, "%s: read failed", path);
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

typedef struct {
    FILE *f;
    bool failed;
} png_sink;

static void write_to_file(void *ctx, void *data, int size)
{
    png_sink *s = ctx;
    if (!s->failed && fwrite(data, 1, (size_t)size, s->f) != (size_t)size)
        s->failed = true;
}

cnn_status cnn_image_save_png(const char *path, const uint8_t *pixels, int rows, int cols,
                              int channels)
{
    if (!path || !pixels || rows < 1 || cols < 1 || channels < 1 || channels > 4
        || (int64_t)cols * channels > INT_MAX)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "save_png: need a path, pixels, rows and cols >= 1, channels 1..4");
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", path);
    snprintf(tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        cnn_status st = cnn_fail(CNN_ERR_IO, "%s: cannot create a temporary file: %s", path,
                                 strerror(errno));
        free(tmp);
        return st;
    }
    png_sink sink = {fdopen(fd, "wb"), false};
    if (!sink.f) {
        close(fd);
        sink.failed = true;
    } else if (!stbi_write_png_to_func(write_to_file, &sink, cols, rows, channels, pixels,
                                       cols * channels)) {
        sink.failed = true;
    }
    if (sink.f && (fflush(sink.f) != 0 || fsync(fileno(sink.f)) != 0))
        sink.failed = true;
    if (sink.f && fclose(sink.f) != 0)
        sink.failed = true;
    if (sink.failed || rename(tmp, path) != 0) {
        cnn_status st = cnn_fail(CNN_ERR_IO, "%s: cannot write the PNG: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return CNN_OK;
}
