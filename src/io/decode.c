/* cnn_decode_image: picks the decoder by the file's first bytes, bounds
 * what it may allocate, and converts its channels to the ones asked for
 * the way Pillow does (so images match what Keras' load_img gives). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/decode_backend.h"

typedef struct decoder {
    decode_info_fn info;
    decode_fn decode;
} decoder;

/* By content, never by file name: PNG's signature, and for JPEG a first
 * byte 0xFF (libjpeg wants 0xFF 0xD8 there; stb would also take a JPEG
 * after fill bytes, which must not reach its decoder); everything else is
 * stb's to recognise or refuse. */
static decoder pick_decoder(const unsigned char *b, size_t n)
{
    static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 8 && memcmp(b, png_magic, 8) == 0)
        return (decoder){cnn_decode_png_info, cnn_decode_png};
    if (n >= 1 && b[0] == 0xFF)
        return (decoder){cnn_decode_jpeg_info, cnn_decode_jpeg};
    return (decoder){cnn_decode_stb_info, cnn_decode_stb};
}

void cnn_decoded_image_free(cnn_decoded_image *img)
{
    if (!img)
        return;
    free(img->pixels);
    *img = (cnn_decoded_image){0};
}

static cnn_status check_args(const void *bytes, size_t size, const char *name)
{
    if (!bytes && size)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: bytes are required", name);
    if (size == 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: the file is empty", name);
    return CNN_OK;
}

cnn_status cnn_decode_info(const void *bytes, size_t size, const char *name, int *rows,
                           int *cols, int *channels)
{
    name = name ? name : "image";
    cnn_status st = check_args(bytes, size, name);
    if (st)
        return st;
    decode_request r = {.bytes = bytes, .size = size, .name = name,
                        .max_bytes = CNN_DEFAULT_MAX_MEMORY};
    return pick_decoder(r.bytes, r.size).info(&r, rows, cols, channels);
}

/* Pillow's grey ("L") from RGB: ITU-R 601-2 luma in 16-bit fixed point. */
static inline uint8_t luma(const uint8_t *p)
{
    return (uint8_t)((19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 0x8000u) >> 16);
}

/* n pixels of `from` channels at in to `to` channels at out; out may be in
 * when to <= from (each pixel is read before it is overwritten). */
static void convert(const uint8_t *in, int from, uint8_t *out, int to, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *p = in + i * from;
        uint8_t px[4];
        if (from >= 3) {
            px[0] = p[0];
            px[1] = p[1];
            px[2] = p[2];
        } else {
            px[0] = px[1] = px[2] = p[0];
        }
        px[3] = from == 2 ? p[1] : from == 4 ? p[3] : 255;
        uint8_t *o = out + i * to;
        switch (to) {
        case 1:
            o[0] = from >= 3 ? luma(px) : px[0];
            break;
        case 2:
            o[0] = from >= 3 ? luma(px) : px[0];
            o[1] = px[3];
            break;
        default:
            memcpy(o, px, (size_t)to); /* 3 or 4 */
        }
    }
}

cnn_status cnn_decode_image(const void *bytes, size_t size, const char *name, int channels,
                            int min_rows, int min_cols, int64_t max_bytes,
                            cnn_decoded_image *out)
{
    name = name ? name : "image";
    if (!out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: out is required", name);
    *out = (cnn_decoded_image){0};
    cnn_status st = check_args(bytes, size, name);
    if (st)
        return st;
    if (channels < 0 || channels > 4)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s: channels must be 0 (as stored), 1, 2, 3 or 4, got %d", name, channels);
    if (min_rows < 0 || min_cols < 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: min_rows and min_cols must be >= 0", name);
    if (max_bytes <= 0)
        max_bytes = CNN_DEFAULT_MAX_MEMORY;
    decode_request r = {.bytes = bytes, .size = size, .name = name, .min_rows = min_rows,
                        .min_cols = min_cols, .channels = channels, .max_bytes = max_bytes};
    decoder d = pick_decoder(r.bytes, r.size);
    cnn_decoded_image img;
    st = d.decode(&r, &img);
    if (st)
        return st;
    if (channels && channels != img.channels) {
        int64_t n = (int64_t)img.rows * img.cols;
        uint8_t *to = img.pixels;
        if (channels > img.channels && !(to = malloc((size_t)(n * channels)))) {
            cnn_decoded_image_free(&img);
            return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory converting the image", name);
        }
        convert(img.pixels, img.channels, to, channels, n);
        if (to != img.pixels) {
            free(img.pixels);
            img.pixels = to;
        } else {
            uint8_t *fit = realloc(img.pixels, (size_t)(n * channels));
            img.pixels = fit ? fit : img.pixels;
        }
        img.channels = channels;
    }
    *out = img;
    return CNN_OK;
}
