/* The decoders behind cnn_decode_image (src/io/decode.c), one per library.
 * Private to src/io/decode*.c. Each reads a whole file from memory and
 * gives the file's own channels as 8-bit pixels: 1 grey, 2 grey + alpha,
 * 3 RGB, 4 RGBA (a CMYK JPEG comes out as RGB); decode.c converts to what
 * the caller asked for. */
#ifndef CNN_IO_DECODE_BACKEND_H
#define CNN_IO_DECODE_BACKEND_H

#include "io/decode.h"

/* One decoding request: the file, and the caller's bound on allocations. */
typedef struct decode_request {
    const unsigned char *bytes;
    size_t size;
    const char *name;
    int min_rows, min_cols; /* > 0: a JPEG may be decoded at a DCT scale down to these */
    int channels;           /* what the caller converts to afterwards (0: as decoded) */
    int64_t max_bytes;      /* every allocation the decoder makes, together */
} decode_request;

/* Bytes a pixel of the decoder's output will cost after it, for the
 * caller's conversion to more channels (a second buffer): each decoder
 * counts them in the need it checks before decoding. */
static inline int64_t decode_extra_per_pixel(const decode_request *r, int decoded_channels)
{
    return r->channels > decoded_channels ? r->channels : 0;
}

/* The size the header declares and the channels decode will give. */
typedef cnn_status (*decode_info_fn)(const decode_request *r, int *rows, int *cols, int *channels);
/* Decodes; on failure out is left zeroed. */
typedef cnn_status (*decode_fn)(const decode_request *r, cnn_decoded_image *out);

/* JPEG: libjpeg-turbo (decode_jpeg.c); PNG: libpng (decode_png.c); BMP,
 * GIF, PGM/PPM, TGA: stb_image (decode_stb.c). */
cnn_status cnn_decode_jpeg_info(const decode_request *r, int *rows, int *cols, int *channels);
cnn_status cnn_decode_jpeg(const decode_request *r, cnn_decoded_image *out);
cnn_status cnn_decode_png_info(const decode_request *r, int *rows, int *cols, int *channels);
cnn_status cnn_decode_png(const decode_request *r, cnn_decoded_image *out);
cnn_status cnn_decode_stb_info(const decode_request *r, int *rows, int *cols, int *channels);
cnn_status cnn_decode_stb(const decode_request *r, cnn_decoded_image *out);

#endif
