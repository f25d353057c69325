/* The stb_image decoder (Debian's libstb): BMP, GIF (first frame), PGM/PPM
 * and TGA, with the hardening that keeps its known bugs away. PNG and JPEG
 * never reach it (decode.c sends them to libpng and libjpeg by their
 * first bytes); its JPEG decoder had a heap overflow on a crafted Huffman
 * table (stb 2.27, found by fuzz/fuzz_image.c), now out of reach. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>

#include "core/error.h"
#include "io/decode_backend.h"

/* ---- Parts of stb_image 2.27 kept away ------------------------------------ */

/* The formats stb reads beyond the documented ones (PSD, PIC, Radiance
 * HDR) are refused before stb sees them: less decoder code on hostile
 * input (its HDR reader has known bugs). stb recognises them by these. */
static const char *undocumented_format(const unsigned char *b, size_t n)
{
    if (n >= 4 && memcmp(b, "8BPS", 4) == 0)
        return "PSD";
    if (n >= 4 && b[0] == 0x53 && b[1] == 0x80 && b[2] == 0xF6 && b[3] == 0x34)
        return "Softimage PIC";
    if (n >= 2 && b[0] == '#' && b[1] == '?')
        return "Radiance HDR";
    return NULL;
}

/* stb reads a PGM/PPM header number with no bound on its digits (a signed
 * overflow, undefined behaviour); this follows stbi__pnm_info's steps and
 * refuses a number of more than 9 digits first. */
static cnn_status pnm_check_header(const unsigned char *b, size_t n, const char *name)
{
    if (n < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6'))
        return CNN_OK;
    static const char *const field[3] = {"width", "height", "maximum value"};
    size_t pos = 2;
    int c = pos < n ? b[pos++] : 0;
    for (int f = 0; f < 3; f++) {
        for (;;) { /* white space and # comments */
            while (pos < n && (c == ' ' || (c >= '\t' && c <= '\r')))
                c = b[pos++];
            if (pos >= n || c != '#')
                break;
            while (pos < n && c != '\n' && c != '\r')
                c = b[pos++];
        }
        int digits = 0;
        while (pos < n && c >= '0' && c <= '9') {
            digits++;
            c = b[pos++];
        }
        if (digits > 9)
            return cnn_fail(CNN_ERR_FORMAT, "%s: PGM/PPM: the %s has %d digits (at most 9)", name,
                            field[f], digits);
    }
    return CNN_OK;
}

/* stb reads through these callbacks rather than straight from memory: in
 * places (PGM/PPM data, uncompressed TGA rows) it ignores a short read of
 * a truncated file and would hand back uninitialised memory as pixels
 * (found with valgrind on the fuzz corpus); here the missing bytes read as
 * zeros, as stb's byte reader gives at the end of a file. */
typedef struct {
    const unsigned char *p;
    size_t n, pos;
} stb_source;

static int stb_source_read(void *user, char *data, int size)
{
    stb_source *s = user;
    if (size <= 0)
        return 0;
    size_t left = s->n - s->pos, k = (size_t)size < left ? (size_t)size : left;
    memcpy(data, s->p + s->pos, k);
    memset(data + k, 0, (size_t)size - k);
    s->pos += k;
    return (int)k;
}

static void stb_source_skip(void *user, int n)
{
    stb_source *s = user;
    if (n < 0)
        s->pos = (size_t)-(int64_t)n > s->pos ? 0 : s->pos - (size_t)-(int64_t)n;
    else
        s->pos = (size_t)n > s->n - s->pos ? s->n : s->pos + (size_t)n;
}

static int stb_source_eof(void *user)
{
    const stb_source *s = user;
    return s->pos >= s->n;
}

static const stbi_io_callbacks stb_callbacks = {stb_source_read, stb_source_skip, stb_source_eof};

/* The checks above, then stb's header: the declared size and channels. */
cnn_status cnn_decode_stb_info(const decode_request *r, int *rows, int *cols, int *channels)
{
    const unsigned char *bytes = r->bytes;
    size_t size = r->size;
    const char *name = r->name;
    if (size > INT_MAX)
        return cnn_fail(CNN_ERR_FORMAT, "%s: file larger than 2 GiB is not supported", name);
    const char *other = undocumented_format(bytes, size);
    if (other)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: %s images are not read (expected PNG, JPEG, BMP, PGM/PPM, TGA or GIF)",
                        name, other);
    cnn_status known = pnm_check_header(bytes, size, name);
    if (known)
        return known;
    int w, h, comp;
    /* stb reports a failed allocation with a reason that may name another
     * format's test; the allocator's errno is the reliable sign. */
    errno = 0;
    stb_source src = {bytes, size, 0};
    if (!stbi_info_from_callbacks(&stb_callbacks, &src, &w, &h, &comp)) {
        if (errno == ENOMEM)
            return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory reading the image header", name);
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: not a readable image (expected PNG, JPEG, BMP, PGM/PPM, TGA or GIF):"
                        " %s",
                        name, stbi_failure_reason());
    }
    /* a header can declare sizes whose product overflows (found by
     * fuzz/fuzz_image.c) */
    if (w < 1 || h < 1 || comp < 1 || comp > 4)
        return cnn_fail(CNN_ERR_FORMAT, "%s: the image declares %d x %d x %d", name, w, h, comp);
    *rows = h;
    *cols = w;
    *channels = comp;
    return CNN_OK;
}

/* Decodes with the channels as stored: stb 2.27's own channel conversion
 * reads past its buffer for 16-bit PGM/PPM (found by fuzz/fuzz_image.c);
 * decode.c converts. */
cnn_status cnn_decode_stb(const decode_request *r, cnn_decoded_image *out)
{
    int w, h, comp;
    cnn_status st = cnn_decode_stb_info(r, &h, &w, &comp);
    if (st)
        return st;
    const char *name = r->name;
    stb_source src = {r->bytes, r->size, 0};
    int bytes_per_sample = stbi_is_16_bit_from_callbacks(&stb_callbacks, &src) ? 2 : 1;
    /* What stb 2.27 allocates, bounded before it starts (Debian's build
     * takes no allocator): its result, a 16-bit image's 8-bit copy, and the
     * caller's conversion. A GIF also keeps the canvas, the background and
     * a history byte per pixel, and its decoder state (LZW table and
     * palettes, about 34 KiB; stbi__gif_load_next); a TGA its colour map
     * (entries at bytes 5-6 of its header, at most 4 bytes each). BMP and
     * PGM/PPM nothing more. */
    int64_t per_pixel = (int64_t)comp * (1 + bytes_per_sample) + decode_extra_per_pixel(r, comp);
    int64_t fixed = 0;
    const unsigned char *b = r->bytes;
    if (r->size >= 4 && memcmp(b, "GIF8", 4) == 0) {
        per_pixel += 9;
        fixed = 40 << 10;
    } else if (r->size >= 8 && b[0] != 'P' && !(b[0] == 'B' && b[1] == 'M')) {
        fixed = (int64_t)(b[5] | b[6] << 8) * 4; /* TGA: the one format left */
    }
    int64_t need;
    if (__builtin_mul_overflow((int64_t)w * h, per_pixel, &need)
        || __builtin_add_overflow(need, fixed, &need))
        need = INT64_MAX;
    if (need > r->max_bytes)
        return cnn_fail(CNN_ERR_NO_MEMORY,
                        "%s: image declares %d x %d x %d, which needs %lld bytes to decode, more"
                        " than the allowed %lld",
                        name, w, h, comp, (long long)need, (long long)r->max_bytes);
    int got, w2, h2;
    errno = 0;
    src.pos = 0;
    stbi_uc *pixels = stbi_load_from_callbacks(&stb_callbacks, &src, &w2, &h2, &got, 0);
    if (!pixels && errno == ENOMEM)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory decoding the image (%d x %d)", name,
                        w, h);
    if (!pixels)
        return cnn_fail(CNN_ERR_FORMAT, "%s: cannot decode the image: %s", name,
                        stbi_failure_reason());
    if (w2 != w || h2 != h || got != comp) {
        stbi_image_free(pixels);
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: the image's header says %d x %d x %d, its data %d x %d x %d", name, w,
                        h, comp, w2, h2, got);
    }
    *out = (cnn_decoded_image){.rows = h, .cols = w, .channels = comp, .source_rows = h,
                               .source_cols = w, .pixels = pixels};
    return CNN_OK;
}
