/* Decoding speed, to choose the decoders behind cnn_decode_image: JPEG
 * through libjpeg-turbo against stb_image (what it used before), PNG
 * through stb_image, libspng and libpng (its simplified API), and
 * cnn_decode_image itself (libjpeg-turbo, libpng). JPEG: three ant/bee
 * photos (the smallest, a typical 500x375, the largest) at full size and
 * at 1/8 (DCT scaling). PNG: a 28x28 grey and a 500x375 RGB image made
 * from a photo and encoded by stb_image_write, and python3-skimage's
 * sample PNGs when installed. Each figure is the best of 3 batches of
 * ~0.2 s, in milliseconds of this thread's CPU time per decode (CPU time:
 * on a shared machine wall time varied 2x between runs).
 *
 *   make build/bench/decode && build/bench/decode [photo-dir]
 *   (needs libspng-dev and libpng-dev: sh bench/deps.sh)
 *
 * The default directory is ../shared/photos/ants-bees (from the repository root). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <png.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "io/decode.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    const unsigned char *b;
    size_t n;
    int channels, min_rows, min_cols;
} input;

typedef int (*decode_fn)(const input *in);

static int with_cnn(const input *in)
{
    cnn_decoded_image img;
    if (cnn_decode_image(in->b, in->n, "bench", in->channels, in->min_rows, in->min_cols, 0,
                         &img))
        return 0;
    cnn_decoded_image_free(&img);
    return 1;
}

static int with_stb(const input *in)
{
    int w, h, c;
    stbi_uc *p = stbi_load_from_memory(in->b, (int)in->n, &w, &h, &c, in->channels);
    stbi_image_free(p);
    return p != NULL;
}

static int with_spng(const input *in)
{
    spng_ctx *ctx = spng_ctx_new(0);
    size_t len;
    int fmt = in->channels == 1 ? SPNG_FMT_G8 : SPNG_FMT_RGB8, ok = 0;
    if (ctx && !spng_set_png_buffer(ctx, in->b, in->n)
        && !spng_decoded_image_size(ctx, fmt, &len)) {
        void *px = malloc(len);
        ok = px && !spng_decode_image(ctx, px, len, fmt, 0);
        free(px);
    }
    spng_ctx_free(ctx);
    return ok;
}

static int with_libpng(const input *in)
{
    png_image img = {.version = PNG_IMAGE_VERSION};
    if (!png_image_begin_read_from_memory(&img, in->b, in->n))
        return 0;
    img.format = in->channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    void *px = malloc(PNG_IMAGE_SIZE(img));
    int ok = px && png_image_finish_read(&img, NULL, px, 0, NULL);
    free(px);
    png_image_free(&img);
    return ok;
}

/* Milliseconds per decode: best of 3 batches of ~0.2 s. */
static double time_ms(decode_fn fn, const input *in)
{
    if (!fn(in))
        return -1;
    double t0 = now();
    int reps = 0;
    while (now() - t0 < 0.05) {
        fn(in);
        reps++;
    }
    reps = reps * 4 + 1;
    double best = 1e30;
    for (int round = 0; round < 3; round++) {
        t0 = now();
        for (int i = 0; i < reps; i++)
            fn(in);
        double ms = (now() - t0) * 1e3 / reps;
        best = ms < best ? ms : best;
    }
    return best;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    unsigned char *b = fstat(fileno(f), &st) == 0 && st.st_size > 0 ? malloc((size_t)st.st_size)
                                                                   : NULL;
    *n = b ? fread(b, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    return b;
}

/* The JPEGs of dir and its subdirectories with their pixel counts. */
typedef struct {
    char path[1024];
    long pixels;
} photo;

static int find(const char *dir, photo *out, int n, int cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) && n < cap) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            n = find(path, out, n, cap);
            continue;
        }
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".jpg") != 0)
            continue;
        int w, h, c;
        if (!stbi_info(path, &w, &h, &c))
            continue;
        snprintf(out[n].path, sizeof out[n].path, "%s", path);
        out[n++].pixels = (long)w * h;
    }
    if (d)
        closedir(d);
    return n;
}

static int by_pixels(const void *a, const void *b)
{
    long x = ((const photo *)a)->pixels, y = ((const photo *)b)->pixels;
    return (x > y) - (x < y);
}

static void to_mem(void *ctx, void *data, int size)
{
    input *in = ctx;
    unsigned char *grown = realloc((void *)in->b, in->n + (size_t)size);
    if (!grown)
        return;
    memcpy(grown + in->n, data, (size_t)size);
    in->b = grown;
    in->n += (size_t)size;
}

/* A rows x cols PNG of the photo's top-left corner (grey: its green). */
static input make_png(const cnn_decoded_image *src, int rows, int cols, int channels)
{
    unsigned char *px = malloc((size_t)rows * cols * channels);
    for (int y = 0; y < rows; y++)
        for (int x = 0; x < cols; x++)
            for (int c = 0; c < channels; c++)
                px[((size_t)y * cols + x) * channels + c] =
                    src->pixels[((size_t)(y % src->rows) * src->cols + x % src->cols) * 3
                                + (channels == 1 ? 1 : c)];
    input in = {NULL, 0, channels, 0, 0};
    stbi_write_png_to_func(to_mem, &in, cols, rows, channels, px, cols * channels);
    free(px);
    return in;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../shared/photos/ants-bees";
    static photo photos[4096];
    int n = find(dir, photos, 0, 4096);
    if (n == 0) {
        fprintf(stderr, "decode: no .jpg files under %s\n", dir);
        return 1;
    }
    qsort(photos, (size_t)n, sizeof *photos, by_pixels);
    int pick[3] = {0, n / 2, n - 1};
    printf("%-44s %11s %11s %11s\n", "JPEG (ms per decode, RGB)", "stb", "libjpeg",
           "libjpeg 1/8");
    cnn_decoded_image typical = {0};
    for (int i = 0; i < 3; i++) {
        size_t size;
        unsigned char *b = slurp(photos[pick[i]].path, &size);
        int rows, cols, ch;
        if (!b || cnn_decode_info(b, size, "bench", &rows, &cols, &ch))
            continue;
        input full = {b, size, 3, 0, 0}, small = {b, size, 3, (rows + 7) / 8, (cols + 7) / 8};
        const char *base = strrchr(photos[pick[i]].path, '/');
        char label[64];
        snprintf(label, sizeof label, "%dx%d %.28s", cols, rows, base ? base + 1 : "");
        printf("%-44s %11.3f %11.3f %11.3f\n", label, time_ms(with_stb, &full),
               time_ms(with_cnn, &full), time_ms(with_cnn, &small));
        if (i == 1)
            cnn_decode_image(b, size, "bench", 3, 0, 0, 0, &typical);
        free(b);
    }
    printf("(stb has no DCT scaling: a 1/8 input costs it the full decode, then a resize)\n\n");
    if (!typical.pixels)
        return 1;
    printf("%-44s %11s %11s %11s %11s\n", "PNG (ms per decode)", "stb", "libspng", "libpng",
           "cnn");
    const struct {
        int rows, cols, channels;
    } pngs[] = {{28, 28, 1}, {375, 500, 3}};
    for (int i = 0; i < 2; i++) {
        input in = make_png(&typical, pngs[i].rows, pngs[i].cols, pngs[i].channels);
        char label[64];
        snprintf(label, sizeof label, "%dx%d %s (%zu bytes)", pngs[i].cols, pngs[i].rows,
                 pngs[i].channels == 1 ? "grey" : "RGB", in.n);
        printf("%-44s %11.4f %11.4f %11.4f %11.4f\n", label, time_ms(with_stb, &in),
               time_ms(with_spng, &in), time_ms(with_libpng, &in), time_ms(with_cnn, &in));
        free((void *)in.b);
    }
    cnn_decoded_image_free(&typical);
    /* PNGs as other encoders write them (zlib, adaptive filters), when
     * python3-skimage is installed */
    static const char *const samples[] = {"astronaut.png", "camera.png", "coffee.png"};
    for (int i = 0; i < 3; i++) {
        char path[256];
        snprintf(path, sizeof path, "/usr/lib/python3/dist-packages/skimage/data/%s",
                 samples[i]);
        size_t size;
        unsigned char *b = slurp(path, &size);
        int rows, cols, ch;
        if (!b || cnn_decode_info(b, size, "bench", &rows, &cols, &ch)) {
            free(b);
            continue;
        }
        input in = {b, size, ch == 1 ? 1 : 3, 0, 0}; /* alpha dropped */
        char label[64];
        snprintf(label, sizeof label, "%dx%dx%d skimage %s", cols, rows, ch, samples[i]);
        printf("%-44s %11.4f %11.4f %11.4f %11.4f\n", label, time_ms(with_stb, &in),
               time_ms(with_spng, &in), time_ms(with_libpng, &in), time_ms(with_cnn, &in));
        free(b);
    }
    return 0;
}
