/* The internal decoding interface (src/io/decode.h) that cnn_image_load and
 * the image-folder data sets share: channels as asked (Pillow's
 * conversions), the size bound, errors naming the file. */
#include <stdlib.h>
#include <unistd.h>

#include "io/decode.h"
#include "test.h"

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = malloc(1 << 16);
    *size = buf ? fread(buf, 1, 1 << 16, f) : 0;
    fclose(f);
    return buf;
}

/* A 4 x 5 RGB PNG through every channel count. */
static void test_channels(const char *dir)
{
    const char *path = test_path(dir, "rgb.png");
    uint8_t px[4 * 5 * 3];
    for (int i = 0; i < 60; i++)
        px[i] = (uint8_t)(i * 4 + 3);
    CHECK_OK(cnn_image_save_png(path, px, 4, 5, 3));
    size_t size;
    unsigned char *bytes = read_file(path, &size);
    CHECK(bytes != NULL);
    if (!bytes)
        return;
    cnn_decoded_image img;
    CHECK_OK(cnn_decode_image(bytes, size, "rgb.png", 0, 0, 0, 0, &img));
    CHECK(img.rows == 4 && img.cols == 5 && img.channels == 3 && img.source_rows == 4
          && img.source_cols == 5);
    CHECK(img.pixels && memcmp(img.pixels, px, sizeof px) == 0);
    cnn_decoded_image_free(&img);
    CHECK(img.pixels == NULL);

    CHECK_OK(cnn_decode_image(bytes, size, "rgb.png", 1, 0, 0, 0, &img));
    CHECK(img.channels == 1);
    int bad = 0;
    for (int i = 0; img.pixels && i < 20; i++) {
        const uint8_t *p = px + 3 * i; /* Pillow's convert("L") */
        unsigned want = (19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 0x8000u) >> 16;
        bad += img.pixels[i] != want;
    }
    CHECK(img.pixels && bad == 0);
    cnn_decoded_image_free(&img);

    CHECK_OK(cnn_decode_image(bytes, size, "rgb.png", 4, 0, 0, 0, &img));
    CHECK(img.channels == 4);
    bad = 0;
    for (int i = 0; img.pixels && i < 20; i++)
        bad += memcmp(img.pixels + 4 * i, px + 3 * i, 3) != 0 || img.pixels[4 * i + 3] != 255;
    CHECK(img.pixels && bad == 0);
    cnn_decoded_image_free(&img);

    int rows, cols, channels;
    CHECK_OK(cnn_decode_info(bytes, size, "rgb.png", &rows, &cols, &channels));
    CHECK(rows == 4 && cols == 5 && channels == 3);

    /* the bound: 60 bytes of pixels do not fit in 50 */
    CHECK_FAILS(cnn_decode_image(bytes, size, "rgb.png", 0, 0, 0, 50, &img), CNN_ERR_NO_MEMORY,
                "rgb.png: ");
    CHECK(img.pixels == NULL);
    CHECK_FAILS(cnn_decode_image(bytes, size / 2, "cut.png", 3, 0, 0, 0, &img), CNN_ERR_FORMAT,
                "cut.png: ");
    CHECK(img.pixels == NULL);
    CHECK_FAILS(cnn_decode_image(bytes, size, "rgb.png", 5, 0, 0, 0, &img),
                CNN_ERR_INVALID_ARGUMENT, "rgb.png: channels must be");
    free(bytes);
    unlink(path);
}

static void test_errors(void)
{
    cnn_decoded_image img;
    CHECK_FAILS(cnn_decode_image("hello world", 11, "notes.txt", 0, 0, 0, 0, &img),
                CNN_ERR_FORMAT, "notes.txt: not a readable image");
    CHECK(img.pixels == NULL && img.rows == 0);
    CHECK_FAILS(cnn_decode_image("", 0, "empty.jpg", 0, 0, 0, 0, &img), CNN_ERR_FORMAT,
                "empty.jpg: the file is empty");
    cnn_decoded_image zero = {0};
    cnn_decoded_image_free(&zero); /* a zeroed struct is fine */
    cnn_decoded_image_free(NULL);
}

/* stb_image (BMP, GIF, PGM/PPM, TGA) takes no allocator: what it will
 * allocate is counted from the header before it starts (issue 18). */
static void test_stb_budget(void)
{
    static const unsigned char gif[] = { /* the classic 1x1 GIF89a */
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00,
        0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02,
        0x44, 0x01, 0x00, 0x3b};
    cnn_decoded_image img;
    CHECK_OK(cnn_decode_image(gif, sizeof gif, "one.gif", 3, 0, 0, 0, &img));
    CHECK(img.rows == 1 && img.cols == 1 && img.channels == 3);
    cnn_decoded_image_free(&img);
    /* its decoder state alone is about 34 KiB */
    CHECK_FAILS(cnn_decode_image(gif, sizeof gif, "one.gif", 3, 0, 0, 20000, &img),
                CNN_ERR_NO_MEMORY, "one.gif: image declares 1 x 1 x 4, which needs 40977 bytes");
    /* a 1x1 colour-mapped TGA whose map claims 65535 entries of 3 bytes */
    unsigned char tga[18 + 1] = {0, 1, 1, 0, 0, 0xff, 0xff, 24, 0, 0, 0, 0, 1, 0, 1, 0, 8, 0};
    CHECK_FAILS(cnn_decode_image(tga, sizeof tga, "map.tga", 3, 0, 0, 100000, &img),
                CNN_ERR_NO_MEMORY, "map.tga: image declares 1 x 1 x 3, which needs 2621");
    CHECK(img.pixels == NULL);
}

int main(void)
{
    char dir[] = "/tmp/cnn_test_image_decode_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    test_channels(dir);
    test_errors();
    test_stb_budget();
    rmdir(dir);
    return test_finish("test_image_decode");
}
