/* What a folder of real images holds besides 8-bit RGB, and what happens
 * to each: the PNG and JPEG kinds of tests/data/images/ (written by
 * scripts/make_image_fixtures.py) decode; a corrupt, truncated, empty,
 * zero-pixel or absurdly large image, a file that is not an image and one
 * that cannot be opened stop the stream with an error naming the file, or
 * with skip_bad_images are skipped, counted and listed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dataset.h"
#include "test.h"

/* A PNG whose header declares width x height (grey, 8-bit) with a valid
 * CRC, followed by a tiny IDAT: the size is what the test is about. */
static void write_png_header(const char *rel, uint32_t width, uint32_t height)
{
    unsigned char png[TEST_PNG_HEADER_BYTES];
    test_png_header(png, width, height, 0);
    CHECK(test_write_file(test_tmp(rel), png, sizeof png));
}

static void copy_fixture(const char *name, const char *rel)
{
    char src[256];
    snprintf(src, sizeof src, "tests/data/images/%s", name);
    FILE *f = fopen(src, "rb");
    CHECK(f != NULL);
    if (!f)
        return;
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CHECK(test_write_file(test_tmp(rel), buf, n));
}

/* Every kind decodes to the asked channels; a 16-bit PNG's samples are
 * scaled to 8 bits, a palette's looked up, CMYK converted to RGB. */
static void test_kinds(void)
{
    static const char *const kinds[] = {"palette.png", "gray.jpg",  "cmyk.jpg",
                                        "progressive.jpg", "rgba.png", "rgb.bmp",
                                        "anim.gif",    "gray16.png", "rgb16.png"};
    mkdir(test_tmp("kinds"), 0755);
    mkdir(test_tmp("kinds/all"), 0755);
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "kinds/all/%s", kinds[i]);
        copy_fixture(kinds[i], rel);
    }
    cnn_dataset *ds = NULL;
    CHECK_OK(cnn_dataset_from_directory(
        test_tmp("kinds"),
        cnn_dataset_options(.no_shuffle = true, .image_size = {6, 8}, .scale = 1), &ds));
    CHECK(cnn_dataset_count(ds) == 9);
    float x[6 * 8 * 3];
    for (int64_t i = 0; ds && i < cnn_dataset_count(ds); i++) {
        cnn_status st = cnn_dataset_read(ds, i, 1, x, NULL);
        if (st)
            fprintf(stderr, "  %s: %s\n", cnn_dataset_file(ds, i), cnn_last_error());
        CHECK(st == CNN_OK);
        /* the gradient's last column is bright red (210) in every kind
         * but the 16-bit ones, whose samples are their own */
        const char *f = cnn_dataset_file(ds, i);
        if (st == CNN_OK && !strstr(f, "16.png") && !strstr(f, "gray"))
            CHECK(x[7 * 3] > 150.0f && x[7 * 3] < 255.0f);
    }
    /* the 16-bit grey PNG: sample x * 8000 + y * 1000 to 8 bits (>> 8) */
    for (int64_t i = 0; ds && i < cnn_dataset_count(ds); i++)
        if (strstr(cnn_dataset_file(ds, i), "gray16.png")
            && cnn_dataset_read(ds, i, 1, x, NULL) == CNN_OK) {
            const float got = x[(1 * 8 + 3) * 3]; /* row 1, column 3 */
            CHECK(got >= (float)((3 * 8000 + 1000) >> 8) - 1 && got <= (float)((3 * 8000 + 1000) >> 8) + 1);
        }
    cnn_dataset_free(ds);
}

/* The bad files, one per class so each can be named. */
static void make_bad(void)
{
    const char *classes[] = {"bad", "bad/a", "bad/b"};
    for (int i = 0; i < 3; i++)
        mkdir(test_tmp(classes[i]), 0755);
    uint8_t px[16] = {0};
    CHECK_OK(cnn_image_save_png(test_tmp("bad/a/good1.png"), px, 4, 4, 1));
    CHECK_OK(cnn_image_save_png(test_tmp("bad/b/good2.png"), px, 4, 4, 1));
}

static int64_t count_read_errors(cnn_dataset *ds, const char *name, cnn_status want_status)
{
    float x[16];
    for (int64_t i = 0; i < cnn_dataset_count(ds); i++)
        if (strstr(cnn_dataset_file(ds, i), name)) {
            cnn_status st = cnn_dataset_read(ds, i, 1, x, NULL);
            const bool named = strstr(cnn_last_error(), name) != NULL;
            if (st != want_status || !named)
                fprintf(stderr, "  %s: got %s: %s\n", name, cnn_status_name(st), cnn_last_error());
            CHECK(st == want_status && named);
            return 1;
        }
    CHECK(!"file not listed");
    return 0;
}

/* Streams every batch; returns the first failure. */
static cnn_status stream_all(cnn_dataset *ds, int *rows_total)
{
    const int64_t n = cnn_dataset_count(ds);
    int64_t *order = malloc((size_t)n * sizeof *order);
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    cnn_dataset_stream_config c = {.order = order, .count = n, .batch = 3, .workers = 2,
                                   .decode_bytes = 1 << 20};
    cnn_status st = cnn_dataset_stream_start(ds, &c);
    *rows_total = 0;
    for (int64_t b = 0; st == CNN_OK && b * 3 < n; b++) {
        const float *x, *y;
        int rows;
        st = cnn_dataset_stream_next(ds, &x, &y, &rows);
        if (st == CNN_OK)
            *rows_total += rows;
    }
    cnn_dataset_stream_stop(ds);
    free(order);
    return st;
}

static void test_bad_files(void)
{
    make_bad();
    uint8_t px[16 * 3] = {0};
    CHECK_OK(cnn_image_save_png(test_tmp("bad/a/truncated.png"), px, 4, 4, 3));
    FILE *f = fopen(test_tmp("bad/a/truncated.png"), "r+b");
    if (f) {
        CHECK(ftruncate(fileno(f), 40) == 0);
        fclose(f);
    }
    CHECK(test_write_file(test_tmp("bad/a/corrupt.jpg"), "\xff\xd8\xff\xe0 garbage garbage garbage",
                          28));
    CHECK(test_write_file(test_tmp("bad/a/text.png"), "just some text\n", 15));
    CHECK(test_write_file(test_tmp("bad/a/empty.gif"), "", 0));
    write_png_header("bad/b/huge.png", 100000, 100000);
    write_png_header("bad/b/zero.png", 0, 7);
    CHECK(symlink("does-not-exist.png", test_tmp("bad/b/dangling.png")) == 0);
    mkdir(test_tmp("bad/b/dir.png"), 0755); /* a directory named like an image: not a file */

    cnn_dataset *ds = NULL;
    CHECK_OK(
        cnn_dataset_from_directory(test_tmp("bad"),
                                   cnn_dataset_options(.no_shuffle = true, .image_size = {4, 4},
                                                       .color_mode = CNN_COLOR_GRAYSCALE),
                                   &ds));
    if (!ds)
        return;
    CHECK(cnn_dataset_count(ds) == 9);
    count_read_errors(ds, "truncated.png", CNN_ERR_FORMAT);
    count_read_errors(ds, "corrupt.jpg", CNN_ERR_FORMAT);
    count_read_errors(ds, "text.png", CNN_ERR_FORMAT);
    count_read_errors(ds, "empty.gif", CNN_ERR_FORMAT);
    count_read_errors(ds, "zero.png", CNN_ERR_FORMAT);
    count_read_errors(ds, "dangling.png", CNN_ERR_IO);
    /* 100000 x 100000: refused from its header, within the decode bound */
    float x[16];
    for (int64_t i = 0; i < cnn_dataset_count(ds); i++)
        if (strstr(cnn_dataset_file(ds, i), "huge.png")) {
            cnn_status st = cnn_dataset_read(ds, i, 1, x, NULL);
            CHECK(st != CNN_OK && strstr(cnn_last_error(), "huge.png"));
        }
    /* the stream stops at the first bad file in the order, naming it */
    int rows = 0;
    cnn_status st = stream_all(ds, &rows);
    CHECK(st != CNN_OK && strstr(cnn_last_error(), "corrupt.jpg"));
    cnn_dataset_free(ds);

    /* skipped: 2 good images arrive, 7 files are listed */
    CHECK_OK(cnn_dataset_from_directory(
        test_tmp("bad"),
        cnn_dataset_options(.no_shuffle = true, .image_size = {4, 4},
                            .color_mode = CNN_COLOR_GRAYSCALE, .skip_bad_images = true),
        &ds));
    CHECK_OK(stream_all(ds, &rows));
    CHECK(rows == 2);
    CHECK(cnn_dataset_skipped(ds) == 7);
    const char *first = cnn_dataset_skipped_file(ds, 0), *last = cnn_dataset_skipped_file(ds, 6);
    CHECK(first && strstr(first, "bad/a/corrupt.jpg"));
    CHECK(last && strstr(last, "bad/b/zero.png"));
    CHECK(cnn_dataset_skipped_file(ds, 7) == NULL);
    /* a second pass skips them again, and counts each file once */
    CHECK_OK(stream_all(ds, &rows));
    CHECK(rows == 2 && cnn_dataset_skipped(ds) == 7);
    cnn_dataset_free(ds);
}

int main(void)
{
    CHECK(test_tmpdir("test_dataset_bad") != NULL);
    test_kinds();
    test_bad_files();
    CHECK(test_tmpdir_remove());
    return test_finish("test_dataset_bad");
}
