/* PNG through libspng (Debian libspng0): every colour type, bit depth and
 * interlacing. libspng takes an allocator, so every byte it allocates -
 * chunk data, zlib's state, row buffers - counts against the caller's
 * max_bytes; reading from memory, a chunk cannot claim more bytes than the
 * file has (a 141-byte PNG whose IDAT claims 2 GiB fails at once: it used
 * to make stb_image allocate and zero-fill the 2 GiB). */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <spng.h>

#include "core/error.h"
#include "io/decode_backend.h"

/* ---- The budget: libspng's allocator has no context argument, so the
 * budget of the decode running on this thread is thread-local. Each block
 * carries its size in front. */
typedef struct png_budget {
    int64_t used, limit;
    int64_t allowed; /* the caller's max_bytes, for messages */
    bool refused;    /* a request went beyond the limit */
    bool failed;     /* malloc itself failed (libspng may report it as a zlib error) */
} png_budget;

static _Thread_local png_budget budget;

typedef union {
    size_t size;
    max_align_t align;
} block_head;

static void *budget_realloc(void *ptr, size_t size)
{
    block_head *h = ptr ? (block_head *)ptr - 1 : NULL;
    size_t old = h ? h->size : 0;
    if (size > old && (int64_t)(size - old) > budget.limit - budget.used) {
        budget.refused = true;
        return NULL;
    }
    block_head *grown = size <= SIZE_MAX - sizeof(block_head)
                            ? realloc(h, sizeof(block_head) + size) : NULL;
    if (!grown) {
        budget.failed = true;
        return NULL;
    }
    grown->size = size;
    budget.used += (int64_t)size - (int64_t)old;
    return grown + 1;
}

static void *budget_malloc(size_t size) { return budget_realloc(NULL, size); }

static void *budget_calloc(size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        budget.failed = true;
        return NULL;
    }
    void *p = budget_realloc(NULL, total);
    if (p)
        memset(p, 0, total);
    return p;
}

static void budget_free(void *ptr)
{
    if (!ptr)
        return;
    block_head *h = (block_head *)ptr - 1;
    budget.used -= (int64_t)h->size;
    free(h);
}

static struct spng_alloc budget_alloc = {budget_malloc, budget_realloc, budget_calloc,
                                         budget_free};

/* ---- Decoding ---------------------------------------------------------- */

static const char *png_color_name(int type)
{
    switch (type) {
    case SPNG_COLOR_TYPE_GRAYSCALE: return "grey";
    case SPNG_COLOR_TYPE_TRUECOLOR: return "RGB";
    case SPNG_COLOR_TYPE_INDEXED: return "palette";
    case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA: return "grey + alpha";
    default: return "RGBA";
    }
}

static cnn_status png_failed(int err, const char *name, const char *what)
{
    if (budget.refused)
        return cnn_fail(CNN_ERR_NO_MEMORY,
                        "%s: PNG: %s needs more memory than the allowed %lld bytes (%s)", name,
                        what, (long long)budget.allowed, spng_strerror(err));
    if (err == SPNG_EMEM || budget.failed)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: PNG: out of memory %s (%s)", name, what,
                        spng_strerror(err));
    return cnn_fail(CNN_ERR_FORMAT, "%s: PNG: %s: %s", name, what, spng_strerror(err));
}

/* A context over the file with the header read; NULL after a failure. */
static spng_ctx *png_open(const decode_request *r, int64_t limit, struct spng_ihdr *ihdr,
                          cnn_status *st)
{
    budget = (png_budget){.limit = limit, .allowed = limit};
    spng_ctx *ctx = spng_ctx_new2(&budget_alloc, 0);
    if (!ctx) {
        *st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: PNG: out of memory starting the decoder", r->name);
        return NULL;
    }
    int err = spng_set_png_buffer(ctx, r->bytes, r->size);
    if (!err)
        err = spng_get_ihdr(ctx, ihdr);
    if (err) {
        *st = png_failed(err, r->name, "reading the header");
        spng_ctx_free(ctx);
        return NULL;
    }
    *st = CNN_OK;
    return ctx;
}

/* The channels decode gives: as stored; a palette is RGB, or RGBA when the
 * file has transparency (tRNS). A tRNS for grey or RGB (one colour marked
 * transparent) is ignored, as Pillow's convert("RGB") does. */
static int png_channels(spng_ctx *ctx, const struct spng_ihdr *ihdr)
{
    switch (ihdr->color_type) {
    case SPNG_COLOR_TYPE_GRAYSCALE: return 1;
    case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA: return 2;
    case SPNG_COLOR_TYPE_TRUECOLOR: return 3;
    case SPNG_COLOR_TYPE_INDEXED: {
        struct spng_trns trns;
        return spng_get_trns(ctx, &trns) == 0 ? 4 : 3;
    }
    default: return 4;
    }
}

cnn_status cnn_decode_png_info(const decode_request *r, int *rows, int *cols, int *channels)
{
    struct spng_ihdr ihdr;
    cnn_status st;
    spng_ctx *ctx = png_open(r, r->max_bytes, &ihdr, &st);
    if (!ctx)
        return st;
    *rows = (int)ihdr.height; /* libspng refuses sizes beyond 2^31 - 1 */
    *cols = (int)ihdr.width;
    *channels = png_channels(ctx, &ihdr);
    spng_ctx_free(ctx);
    return CNN_OK;
}

cnn_status cnn_decode_png(const decode_request *r, cnn_decoded_image *out)
{
    const char *name = r->name;
    struct spng_ihdr ihdr;
    cnn_status st;
    spng_ctx *ctx = png_open(r, r->max_bytes, &ihdr, &st);
    if (!ctx)
        return st;
    const int comp = png_channels(ctx, &ihdr);
    /* Grey of 1, 2, 4 bits: scaled to 8 by libspng (0..1 to 0/255, as
     * Pillow). A palette: its colours. Everything else as stored, 16 bits
     * reduced to their high byte below. */
    const bool low_grey = ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE && ihdr.bit_depth < 8;
    const int fmt = low_grey ? SPNG_FMT_G8
                    : ihdr.color_type == SPNG_COLOR_TYPE_INDEXED
                        ? (comp == 4 ? SPNG_FMT_RGBA8 : SPNG_FMT_RGB8)
                        : SPNG_FMT_PNG;
    size_t len;
    int err = spng_decoded_image_size(ctx, fmt, &len);
    if (err) {
        spng_ctx_free(ctx);
        return png_failed(err, name, "the image size");
    }
    /* the pixels, then at most what libspng keeps besides */
    if ((int64_t)(len > INT64_MAX ? INT64_MAX : len) >= r->max_bytes) {
        spng_ctx_free(ctx);
        return cnn_fail(CNN_ERR_NO_MEMORY,
                        "%s: PNG declares %u x %u %s at %d bits, which needs %zu bytes to decode,"
                        " more than the allowed %lld",
                        name, ihdr.width, ihdr.height, png_color_name(ihdr.color_type),
                        ihdr.bit_depth, len, (long long)r->max_bytes);
    }
    budget.limit -= (int64_t)len;
    uint8_t *px = malloc(len);
    if (!px) {
        spng_ctx_free(ctx);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory decoding the PNG (%u x %u)", name,
                        ihdr.width, ihdr.height);
    }
    err = spng_decode_image(ctx, px, len, fmt, fmt == SPNG_FMT_RGBA8 ? SPNG_DECODE_TRNS : 0);
    st = err ? png_failed(err, name, "decoding") : CNN_OK;
    spng_ctx_free(ctx);
    if (st) {
        free(px);
        return st;
    }
    const int64_t n = (int64_t)ihdr.width * ihdr.height * comp;
    if (fmt == SPNG_FMT_PNG && ihdr.bit_depth == 16) {
        const uint16_t *wide = (const uint16_t *)px; /* host-endian */
        for (int64_t i = 0; i < n; i++)
            px[i] = (uint8_t)(wide[i] >> 8);
        uint8_t *fit = realloc(px, (size_t)n);
        px = fit ? fit : px;
    }
    *out = (cnn_decoded_image){.rows = (int)ihdr.height, .cols = (int)ihdr.width,
                               .channels = comp, .pixels = px,
                               .source_rows = (int)ihdr.height, .source_cols = (int)ihdr.width};
    return CNN_OK;
}
