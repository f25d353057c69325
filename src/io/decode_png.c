/* PNG through libpng 1.6 (Debian libpng16-16): every colour type, bit
 * depth and interlacing. (libspng was measured too, bench/decode.c: libpng
 * was as fast or faster on every PNG but 28x28 ones.) libpng takes an
 * allocator with a context, so every byte it allocates - chunk data,
 * zlib's state, row buffers - counts against the caller's max_bytes; it
 * reads IDAT in pieces from memory, so a chunk cannot make it allocate
 * what the file does not have (a 141-byte PNG whose IDAT claims 2 GiB
 * fails at once: it used to make stb_image allocate and zero-fill 2 GiB).
 *
 * libpng reports errors by longjmp to the setjmp below; what we malloc is
 * held in volatile pointers across it. Its warnings are kept for the
 * error message, never printed. */
#include <png.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/decode_backend.h"

typedef struct png_reader {
    const unsigned char *bytes;
    size_t size, pos;
    int64_t used, limit;
    int64_t allowed; /* the caller's max_bytes, for messages */
    bool refused;    /* an allocation went beyond the limit */
    bool failed;     /* malloc itself failed */
    const char *stage;
    char msg[160];
    char warning[160]; /* the last warning: libpng gives the detail of some errors so */
} png_reader;

/* ---- The budget: each block carries its size in front ------------------- */

typedef union {
    size_t size;
    max_align_t align;
} block_head;

static png_voidp png_budget_malloc(png_structp png, png_alloc_size_t size)
{
    png_reader *r = png_get_mem_ptr(png);
    if ((int64_t)(size > INT64_MAX ? INT64_MAX : size) > r->limit - r->used) {
        r->refused = true;
        return NULL;
    }
    block_head *h = size <= SIZE_MAX - sizeof(block_head) ? malloc(sizeof(block_head) + size)
                                                          : NULL;
    if (!h) {
        r->failed = true;
        return NULL;
    }
    h->size = size;
    r->used += (int64_t)size;
    return h + 1;
}

static void png_budget_free(png_structp png, png_voidp ptr)
{
    if (!ptr)
        return;
    png_reader *r = png_get_mem_ptr(png);
    block_head *h = (block_head *)ptr - 1;
    r->used -= (int64_t)h->size;
    free(h);
}

/* ---- Errors and input --------------------------------------------------- */

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_reader *r = png_get_error_ptr(png);
    snprintf(r->msg, sizeof r->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* Kept, not printed: libpng warns "Image width is zero in IHDR" and then
 * fails with "Invalid IHDR data"; the message gives both. */
static void png_on_warning(png_structp png, png_const_charp msg)
{
    png_reader *r = png_get_error_ptr(png);
    snprintf(r->warning, sizeof r->warning, "%s", msg);
}

static void png_on_read(png_structp png, png_bytep out, size_t len)
{
    png_reader *r = png_get_io_ptr(png);
    if (len > r->size - r->pos)
        png_error(png, "the file ends early (truncated)");
    memcpy(out, r->bytes + r->pos, len);
    r->pos += len;
}

static cnn_status png_failed(const png_reader *r, const char *name)
{
    if (r->refused)
        return cnn_fail(CNN_ERR_NO_MEMORY,
                        "%s: PNG: %s needs more memory than the allowed %lld bytes (%s)", name,
                        r->stage, (long long)r->allowed, r->msg);
    if (r->failed)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: PNG: out of memory %s (%s)", name, r->stage,
                        r->msg);
    if (r->warning[0])
        return cnn_fail(CNN_ERR_FORMAT, "%s: PNG: %s: %s (%s)", name, r->stage, r->msg,
                        r->warning);
    return cnn_fail(CNN_ERR_FORMAT, "%s: PNG: %s: %s", name, r->stage, r->msg);
}

static const char *png_color_name(int type)
{
    switch (type) {
    case PNG_COLOR_TYPE_GRAY: return "grey";
    case PNG_COLOR_TYPE_RGB: return "RGB";
    case PNG_COLOR_TYPE_PALETTE: return "palette";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return "grey + alpha";
    default: return "RGBA";
    }
}

/* The channels decode gives: as stored; a palette is RGB, or RGBA when the
 * file has transparency (tRNS). A tRNS for grey or RGB (one colour marked
 * transparent) is ignored, as Pillow's convert("RGB") does. */
static int png_channels(png_structp png, png_infop info)
{
    switch (png_get_color_type(png, info)) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_PALETTE: return png_get_valid(png, info, PNG_INFO_tRNS) ? 4 : 3;
    default: return 4;
    }
}

/* Decodes (or with info_only, reads the header of) the file. */
static cnn_status png_run(const decode_request *req, bool info_only, int *rows_out,
                          int *cols_out, int *channels_out, cnn_decoded_image *out)
{
    const char *name = req->name;
    png_reader rd = {.bytes = req->bytes, .size = req->size, .limit = req->max_bytes,
                     .allowed = req->max_bytes, .stage = "starting the decoder"};
    png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &rd, png_on_error,
                                               png_on_warning, &rd, png_budget_malloc,
                                               png_budget_free);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: PNG: out of memory starting the decoder", name);
    }
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        return png_failed(&rd, name);
    }
    png_set_read_fn(png, &rd, png_on_read);
    rd.stage = "reading the header";
    png_read_info(png, info);
    const png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    const int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    const int comp = png_channels(png, info);
    if (info_only) {
        *rows_out = (int)h; /* libpng refuses sizes beyond 2^31 - 1 */
        *cols_out = (int)w;
        *channels_out = comp;
        png_destroy_read_struct(&png, &info, NULL);
        return CNN_OK;
    }
    /* 16 bits: the high byte (Pillow's 16-bit RGB; its 16-bit grey clips
     * instead, see docs). A palette: its colours, with tRNS as alpha. Grey
     * of 1, 2, 4 bits: scaled to 8 (1 bit to 0/255, as Pillow). */
    if (depth == 16)
        png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const size_t stride = png_get_rowbytes(png, info);
    if (png_get_channels(png, info) != comp || stride != (size_t)w * (size_t)comp)
        png_error(png, "unexpected layout after transformations");
    /* the pixels, their row pointers and the caller's conversion */
    int64_t need;
    if (__builtin_mul_overflow((int64_t)w * h, comp + decode_extra_per_pixel(req, comp), &need)
        || __builtin_add_overflow(need, (int64_t)h * (int64_t)sizeof(png_bytep), &need))
        need = INT64_MAX;
    if (need >= rd.limit - rd.used) {
        png_destroy_read_struct(&png, &info, NULL);
        return cnn_fail(CNN_ERR_NO_MEMORY,
                        "%s: PNG declares %u x %u %s at %d bits, which needs %lld bytes to decode,"
                        " more than the allowed %lld",
                        name, (unsigned)w, (unsigned)h, png_color_name(color), depth,
                        (long long)need, (long long)req->max_bytes);
    }
    rd.limit -= need;
    pixels = malloc((size_t)w * h * (size_t)comp);
    rows = malloc((size_t)h * sizeof(png_bytep));
    if (!pixels || !rows) {
        rd.failed = true;
        rd.stage = "allocating the pixels";
        png_error(png, "malloc failed");
    }
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = pixels + (size_t)y * stride;
    rd.stage = "decoding";
    rd.warning[0] = '\0'; /* the header's warnings say nothing about what follows */
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    *out = (cnn_decoded_image){.rows = (int)h, .cols = (int)w, .channels = comp,
                               .pixels = pixels, .source_rows = (int)h, .source_cols = (int)w};
    return CNN_OK;
}

cnn_status cnn_decode_png_info(const decode_request *r, int *rows, int *cols, int *channels)
{
    return png_run(r, true, rows, cols, channels, NULL);
}

cnn_status cnn_decode_png(const decode_request *r, cnn_decoded_image *out)
{
    int rows, cols, channels;
    return png_run(r, false, &rows, &cols, &channels, out);
}
