/* Decoding image files to 8-bit pixels: the one entry point shared by
 * cnn_image_load (src/io/image.c) and the image-folder data sets. Each
 * format goes to one decoder behind it (src/io/decode_*.c); this interface
 * does not change when a decoder does. */
#ifndef CNN_IO_DECODE_H
#define CNN_IO_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "cnn.h"

/* 8-bit pixels, row-major (rows, cols, channels); pixels is malloc'd, owned
 * by the caller, freed with cnn_decoded_image_free (which accepts a zeroed struct). */
typedef struct cnn_decoded_image {
    int rows, cols, channels;
    uint8_t *pixels;
    int source_rows, source_cols; /* the size the file declares (before any DCT scaling) */
} cnn_decoded_image;

/* Decodes a PNG, JPEG, BMP, GIF (first frame), PGM/PPM or TGA from memory.
 * channels: 1 grayscale, 3 RGB, 4 RGBA (also 2: grayscale + alpha), 0 = the
 * file's own (1..4).
 * min_rows/min_cols > 0 allow a JPEG to be decoded at a DCT scale (1/2, 1/4,
 * 1/8, ...) as long as the result is at least min_rows x min_cols; 0 = full size.
 * Every allocation the decoder makes is bounded by max_bytes (0 = CNN_DEFAULT_MAX_MEMORY):
 * an image whose declared size needs more is refused before decoding.
 * Errors name `name` (the file) and what was expected; never a crash on hostile bytes.
 * Each call has its own decoder state: threads may decode at the same time.
 *
 * Conversions are Pillow's (as Keras' load_img gets them): grey from RGB is
 * (19595 r + 38470 g + 7471 b + 32768) >> 16, alpha is dropped (never
 * composited), grey is repeated into RGB, a missing alpha is 255. */
cnn_status cnn_decode_image(const void *bytes, size_t size, const char *name, int channels,
                            int min_rows, int min_cols, int64_t max_bytes,
                            cnn_decoded_image *out);
void cnn_decoded_image_free(cnn_decoded_image *img);

/* The header only: the size the file declares and its own channels (1..4),
 * without decoding or allocating the pixels. Errors as cnn_decode_image. */
cnn_status cnn_decode_info(const void *bytes, size_t size, const char *name, int *rows,
                           int *cols, int *channels);

#endif
