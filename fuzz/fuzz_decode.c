/* Fuzz harness: cnn_decode_image (src/io/decode.h), the decoding behind
 * cnn_image_load and the image-folder data sets - libpng for PNG,
 * libjpeg-turbo for JPEG (with DCT scaling), stb_image for the rest. The
 * one harness over an internal interface: the public API cannot ask for
 * RGBA or a scaled decode. Byte 0 picks the channels (0 as stored, 1..4),
 * byte 1 the minimum size a JPEG may be scaled down to (0: full size);
 * the rest is the file. A success must have the channels asked for, fit
 * the budget, and respect the minimum size; every pixel byte is read (so
 * valgrind and MSan see uninitialised output). */
#include "fuzz.h"
#include "io/decode.h"

enum { FUZZ_DECODE_MAX_BYTES = 16 << 20 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const int channels = data[0] % 5, min = data[1];
    cnn_decoded_image img;
    cnn_status st = cnn_decode_image(data + 2, size - 2, "fuzz.img", channels, min, min,
                                     FUZZ_DECODE_MAX_BYTES, &img);
    if (st) {
        static const cnn_status allowed[] = {CNN_ERR_FORMAT, CNN_ERR_NO_MEMORY};
        fuzz_check_failure(st, img.pixels, allowed, 2);
        FUZZ_CHECK(img.rows == 0 && img.cols == 0 && img.channels == 0);
        FUZZ_CHECK(strncmp(cnn_last_error(), "fuzz.img: ", 10) == 0);
        return 0;
    }
    FUZZ_CHECK(img.pixels && img.rows >= 1 && img.cols >= 1);
    FUZZ_CHECK(channels ? img.channels == channels : img.channels >= 1 && img.channels <= 4);
    FUZZ_CHECK(img.source_rows >= img.rows && img.source_cols >= img.cols);
    /* scaled only as far as the minimum allows (or not at all) */
    FUZZ_CHECK(img.rows >= min || img.rows == img.source_rows);
    FUZZ_CHECK(img.cols >= min || img.cols == img.source_cols);
    int64_t n = (int64_t)img.rows * img.cols * img.channels;
    FUZZ_CHECK(n <= FUZZ_DECODE_MAX_BYTES);
    uint64_t sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += img.pixels[i];
    FUZZ_CHECK(sum <= 255u * (uint64_t)n);
    cnn_decoded_image_free(&img);
    FUZZ_CHECK(img.pixels == NULL);
    return 0;
}
