/* A data set's decode budget (cnn_dataset_config.max_decode_bytes): a tiny
 * PNG or JPEG that declares a huge image, read through cnn_dataset_read,
 * is refused before the decoder allocates, with a message naming the file,
 * the declared size and the budget; the process's peak RSS stays small.
 * Before the budget existed cnn_dataset_read decoded within the default
 * 4 GiB, so these files were given gigabytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

#define BUDGET ((int64_t)1 << 20)

/* 57 bytes: a PNG declaring w x h RGB, 8-bit, valid CRCs, an empty IDAT. */
static void write_png(const char *rel, uint32_t w, uint32_t h)
{
    unsigned char png[TEST_PNG_HEADER_BYTES];
    test_png_header(png, w, h, 2);
    CHECK(test_write_file(test_tmp(rel), png, sizeof png));
}

/* A small baseline JPEG (tests/data/images/gray.jpg, 8x6, one component)
 * whose SOF0 is patched to declare w x h. */
static void write_jpeg(const char *rel, int w, int h)
{
    FILE *f = fopen("tests/data/images/gray.jpg", "rb");
    CHECK(f != NULL);
    if (!f)
        return;
    unsigned char b[4096];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    size_t sof = 0;
    for (size_t i = 2; i + 9 < n && !sof; i++)
        if (b[i] == 0xFF && b[i + 1] == 0xC0)
            sof = i;
    CHECK(sof > 0);
    /* FF C0, length (2), precision (1), height (2), width (2) */
    b[sof + 5] = (unsigned char)(h >> 8), b[sof + 6] = (unsigned char)h;
    b[sof + 7] = (unsigned char)(w >> 8), b[sof + 8] = (unsigned char)w;
    CHECK(test_write_file(test_tmp(rel), b, n));
}

static void put16le(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }
static void put32le(unsigned char *p, uint32_t v)
{
    put16le(p, v);
    put16le(p + 2, v >> 16);
}

/* 54 bytes: a 24-bit BMP header declaring w x h and no pixels. stb reads
 * past the end as zeros, so a decoder given its way fills (touches) the
 * whole w x h x 3 buffer: the case where RSS shows it. */
static void write_bmp(const char *rel, uint32_t w, uint32_t h)
{
    unsigned char b[54] = {'B', 'M'};
    put32le(b + 2, 54 + w * h * 3);
    put32le(b + 10, 54);
    put32le(b + 14, 40);
    put32le(b + 18, w);
    put32le(b + 22, h);
    put16le(b + 26, 1);
    put16le(b + 28, 24);
    CHECK(test_write_file(test_tmp(rel), b, sizeof b));
}

/* Reads the data set's only example (rows x cols grey) and checks the
 * refusal: CNN_ERR_NO_MEMORY naming file, declared size and budget. */
static void check_refused(const char *dir, const char *file, const char *declares, int64_t budget)
{
    cnn_dataset *ds = NULL;
    cnn_dataset_config cfg = cnn_dataset_options(.image_size = {32, 32},
                                                 .color_mode = CNN_COLOR_GRAYSCALE,
                                                 .max_decode_bytes = budget, .workers = 1);
    CHECK_OK(cnn_dataset_from_directory(test_tmp(dir), cfg, &ds));
    if (!ds)
        return;
    CHECK(cnn_dataset_count(ds) == 1);
    float x[32 * 32], y[1];
    cnn_status st = cnn_dataset_read(ds, 0, 1, x, y);
    const char *msg = cnn_last_error();
    char allowed[64];
    snprintf(allowed, sizeof allowed, "the allowed %lld", (long long)(budget ? budget : CNN_DEFAULT_MAX_DECODE_BYTES));
    CHECK(st == CNN_ERR_NO_MEMORY);
    CHECK(strstr(msg, file) != NULL);
    CHECK(strstr(msg, declares) != NULL);
    CHECK(strstr(msg, allowed) != NULL);
    if (st != CNN_ERR_NO_MEMORY || !strstr(msg, declares) || !strstr(msg, allowed))
        fprintf(stderr, "  status %d: %s\n", (int)st, msg);
    cnn_dataset_free(ds);
}

int main(void)
{
    CHECK(test_tmpdir("test_dataset_decode_budget") != NULL);
    mkdir(test_tmp("png"), 0755);
    mkdir(test_tmp("png/a"), 0755);
    mkdir(test_tmp("jpg"), 0755);
    mkdir(test_tmp("jpg/a"), 0755);
    /* 30000 x 30000 RGB: 2.7 GB of pixels, within the old 4 GiB default */
    write_png("png/a/huge.png", 30000, 30000);
    /* 60000 x 60000 grey, decoded at 1/8 scale: ~56 MB, within the old
     * default, beyond a 1 MiB budget */
    write_jpeg("jpg/a/huge.jpg", 60000, 60000);
    /* 8000 x 8000 x 3: 192 MB that stb would zero-fill from 54 bytes */
    mkdir(test_tmp("bmp"), 0755);
    mkdir(test_tmp("bmp/a"), 0755);
    write_bmp("bmp/a/huge.bmp", 8000, 8000);

    check_refused("png", "huge.png", "PNG declares 30000 x 30000", BUDGET);
    check_refused("jpg", "huge.jpg", "JPEG declares 60000 x 60000", BUDGET);
    check_refused("bmp", "huge.bmp", "image declares 8000 x 8000 x 3", BUDGET);
    /* the default budget (96 MiB) refuses the PNG too */
    check_refused("png", "huge.png", "PNG declares 30000 x 30000", 0);

    /* a budget below a page, or negative, is a mistake */
    cnn_dataset *ds = NULL;
    CHECK(cnn_dataset_from_directory(test_tmp("png"), cnn_dataset_options(.max_decode_bytes = 100),
                                     &ds) == CNN_ERR_INVALID_ARGUMENT);
    CHECK(ds == NULL && strstr(cnn_last_error(), "max_decode_bytes") != NULL);
    CHECK(cnn_dataset_from_directory(test_tmp("png"), cnn_dataset_options(.max_decode_bytes = -1),
                                     &ds) == CNN_ERR_INVALID_ARGUMENT);

    /* an image within the budget still decodes */
    mkdir(test_tmp("ok"), 0755);
    mkdir(test_tmp("ok/a"), 0755);
    write_jpeg("ok/a/small.jpg", 8, 6);
    CHECK_OK(cnn_dataset_from_directory(test_tmp("ok"),
                                        cnn_dataset_options(.image_size = {6, 8},
                                                            .color_mode = CNN_COLOR_GRAYSCALE,
                                                            .max_decode_bytes = 4096),
                                        &ds));
    float x[48];
    if (ds)
        CHECK_OK(cnn_dataset_read(ds, 0, 1, x, NULL));
    cnn_dataset_free(ds);

    struct rusage ru;
    CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
    const int64_t peak = (int64_t)ru.ru_maxrss * 1024;
    printf("  peak RSS %lld KiB\n", (long long)(peak >> 10));
#ifdef TEST_RSS_MEANINGLESS
    /* the statuses above are still checked */
    printf("  (AddressSanitizer: the peak RSS is not compared with 64 MiB)\n");
#else
    /* the process itself is a few MB; a decode given its way would be GBs */
    CHECK(peak < ((int64_t)64 << 20));
#endif

    CHECK(test_tmpdir_remove());
    return test_finish("test_dataset_decode_budget");
}
