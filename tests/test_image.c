/* Image loading and saving: round trip through PNG, channel conversion,
 * resize, and hostile files (huge declared size, truncated, not an image,
 * a directory). */
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "test.h"

/* After editing the IHDR of a PNG: its CRC (libpng checks it). */
static void fix_ihdr_crc(unsigned char *png)
{
    uLong crc = crc32(0, png + 12, 17);
    for (int i = 0; i < 4; i++)
        png[29 + i] = (unsigned char)(crc >> (24 - 8 * i));
}

int main(void)
{
    char dir[] = "/tmp/cnn_test_image_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/rgb.png", dir);
    uint8_t px[4 * 5 * 3];
    for (int i = 0; i < 60; i++)
        px[i] = (uint8_t)(i * 4);
    CHECK_OK(cnn_image_save_png(path, px, 4, 5, 3));

    cnn_tensor *t = NULL;
    CHECK_OK(cnn_image_load(path, 0, 0, &t));
    CHECK(t && t->rank == 4 && t->dims[0] == 1 && t->dims[1] == 4 && t->dims[2] == 5 && t->dims[3] == 3);
    float want[60];
    for (int i = 0; i < 60; i++)
        want[i] = (float)(i * 4) / 255.0f;
    if (t)
        test_close("png round trip", t->data, want, 60, 1e-7, 0);
    cnn_tensor_free(t);

    CHECK_OK(cnn_image_load(path, 1, 0, &t)); /* to grayscale */
    CHECK(t && t->dims[3] == 1);
    cnn_tensor *r = NULL;
    CHECK_OK(cnn_image_resize(t, 8, 10, &r)); /* upscale keeps the range */
    CHECK(r && r->dims[1] == 8 && r->dims[2] == 10);
    float lo = 1, hi = 0;
    for (int i = 0; r && i < 80; i++) {
        lo = r->data[i] < lo ? r->data[i] : lo;
        hi = r->data[i] > hi ? r->data[i] : hi;
    }
    CHECK(lo >= 0 && hi <= 1 && hi > lo);
    cnn_tensor_free(r);
    cnn_tensor_free(t);

    /* A PNG whose header declares 100000 x 100000 pixels: refused before
     * decoding, naming the size and the limit. */
    FILE *f = fopen(path, "rb");
    unsigned char bytes[4096];
    size_t n = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    unsigned char huge[4096];
    memcpy(huge, bytes, n);
    const unsigned char dim[4] = {0x00, 0x01, 0x86, 0xA0}; /* 100000 big-endian */
    memcpy(huge + 16, dim, 4);
    memcpy(huge + 20, dim, 4);
    fix_ihdr_crc(huge);
    CHECK_FAILS(cnn_image_load_memory(huge, n, "huge.png", 0, 0, &t), CNN_ERR_NO_MEMORY,
                "huge.png: image declares 100000 x 100000 x 3, which needs 150000000000 bytes");
    /* 18000 x 18000 x 3 decodes within stb's limit but its floats exceed 4 GiB */
    const unsigned char dim2[4] = {0x00, 0x00, 0x46, 0x50};
    memcpy(huge + 16, dim2, 4);
    memcpy(huge + 20, dim2, 4);
    fix_ihdr_crc(huge);
    CHECK_FAILS(cnn_image_load_memory(huge, n, "big.png", 0, 0, &t), CNN_ERR_NO_MEMORY,
                "big.png: image declares 18000 x 18000 x 3, which needs 4860000000 bytes");
    CHECK_FAILS(cnn_image_load_memory(bytes, 30, "short.png", 0, 0, &t), CNN_ERR_FORMAT, "short.png");
    CHECK_FAILS(cnn_image_load_memory("hello world", 11, "text.png", 0, 0, &t), CNN_ERR_FORMAT,
                "text.png: not a readable image");
    CHECK_FAILS(cnn_image_load_memory(bytes, 0, "empty.png", 0, 0, &t), CNN_ERR_FORMAT, "empty");
    CHECK_FAILS(cnn_image_load(dir, 0, 0, &t), CNN_ERR_IO,
                "expected a regular image file, got a directory");
    CHECK_FAILS(cnn_image_load("/nonexistent/x.png", 0, 0, &t), CNN_ERR_IO, "cannot open");
    CHECK_FAILS(cnn_image_load(path, 2, 0, &t), CNN_ERR_INVALID_ARGUMENT, "channels must be");
    CHECK(t == NULL);
    /* the limit is honoured: 4x5x3 floats + bytes need 300 bytes */
    CHECK_FAILS(cnn_image_load(path, 0, 200, &t), CNN_ERR_NO_MEMORY, "more than the allowed 200");
    CHECK_FAILS(cnn_image_save_png("/nonexistent/dir/x.png", px, 4, 5, 3), CNN_ERR_IO, "x.png");
    unlink(path);
    rmdir(dir);
    return test_finish("test_image");
}
