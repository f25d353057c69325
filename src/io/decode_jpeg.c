/* JPEG through libjpeg-turbo's libjpeg API (Debian libjpeg62-turbo):
 * baseline and progressive, grey, YCbCr/RGB and CMYK/YCCK, decoded at a
 * DCT scale of 1/2, 1/4 or 1/8 when the caller's minimum size allows
 * (the IDCT itself shrinks the image: a 2000 x 2000 photo for a 250 x 250
 * input costs an eighth of the work and memory).
 *
 * libjpeg reports errors by calling error_exit, which must not return:
 * it longjmps back here. Nothing allocated with malloc lives across a
 * setjmp except the output buffer, held in a volatile pointer. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h> /* before jerror.h: its messages depend on the version */
#include <jerror.h>

#include "core/error.h"
#include "io/decode_backend.h"

/* A progressive JPEG is decoded once per scan over the whole image: a
 * crafted file with thousands of tiny scans costs minutes. Real encoders
 * write about ten; libjpeg-turbo's own tools suggest a limit like this. */
enum { JPEG_MAX_SCANS = 500 };

typedef struct jpeg_guard {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    int code; /* libjpeg's message code of the failure */
} jpeg_guard;

static void jpeg_on_error(j_common_ptr c)
{
    jpeg_guard *g = (jpeg_guard *)c->err;
    g->code = c->err->msg_code;
    c->err->format_message(c, g->msg);
    longjmp(g->jump, 1);
}

/* Warnings that mean the pixels are damaged (a truncated file, a broken
 * entropy-coded segment) stop the decode: libjpeg would go on and fill the
 * rest with grey or garbage. Metadata warnings (extraneous bytes between
 * markers, an unknown JFIF revision, a bad ICC marker) are ignored. */
static void jpeg_on_message(j_common_ptr c, int level)
{
    if (level != -1)
        return; /* trace messages */
    switch (c->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
#if JPEG_LIB_VERSION >= 70 || defined(D_ARITH_CODING_SUPPORTED)
    case JWRN_ARITH_BAD_CODE:
#endif
    case JWRN_MUST_RESYNC:
    case JWRN_BOGUS_PROGRESSION:
    case JWRN_NOT_SEQUENTIAL:
        jpeg_on_error(c);
        break;
    default:
        break;
    }
}

static void jpeg_on_progress(j_common_ptr c)
{
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_guard *g = (jpeg_guard *)c->err;
        snprintf(g->msg, sizeof g->msg, "more than %d progressive scans", JPEG_MAX_SCANS);
        g->code = -1;
        longjmp(g->jump, 1);
    }
}

/* The channels decode gives: grey, or RGB (from YCbCr, RGB, CMYK, YCCK). */
static int jpeg_channels(const struct jpeg_decompress_struct *d)
{
    return d->jpeg_color_space == JCS_GRAYSCALE ? 1 : 3;
}

typedef struct jpeg_reader {
    struct jpeg_decompress_struct d;
    jpeg_guard guard;
    struct jpeg_progress_mgr progress;
} jpeg_reader;

/* Sets up d over the file and reads its header. Returns after a longjmp
 * too: call it as `if (setjmp(j->guard.jump)) ...; jpeg_open(...)`. */
static void jpeg_open(jpeg_reader *j, const decode_request *r)
{
    j->d.err = jpeg_std_error(&j->guard.mgr);
    j->guard.mgr.error_exit = jpeg_on_error;
    j->guard.mgr.emit_message = jpeg_on_message;
    jpeg_create_decompress(&j->d);
    j->progress.progress_monitor = jpeg_on_progress;
    j->d.progress = &j->progress;
    jpeg_mem_src(&j->d, r->bytes, (unsigned long)r->size);
    jpeg_read_header(&j->d, TRUE);
}

static cnn_status jpeg_failed(const jpeg_reader *j, const char *name)
{
    if (j->guard.code == JERR_OUT_OF_MEMORY || j->guard.code == JERR_NO_BACKING_STORE)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: JPEG: out of memory (%s)", name, j->guard.msg);
    return cnn_fail(CNN_ERR_FORMAT, "%s: JPEG: %s", name, j->guard.msg);
}

cnn_status cnn_decode_jpeg_info(const decode_request *r, int *rows, int *cols, int *channels)
{
    jpeg_reader j = {0};
    if (setjmp(j.guard.jump)) {
        jpeg_destroy_decompress(&j.d);
        return jpeg_failed(&j, r->name);
    }
    jpeg_open(&j, r);
    *rows = (int)j.d.image_height;
    *cols = (int)j.d.image_width;
    *channels = jpeg_channels(&j.d);
    jpeg_destroy_decompress(&j.d);
    return CNN_OK;
}

/* The largest DCT scale 1/denom (denom 1, 2, 4, 8) whose output is still at
 * least min_rows x min_cols; libjpeg's scaled size is ceil(size / denom). */
static unsigned jpeg_scale(const decode_request *r, unsigned w, unsigned h)
{
    if (r->min_rows <= 0 && r->min_cols <= 0)
        return 1;
    unsigned denom = 1;
    while (denom < 8) {
        unsigned next = denom * 2;
        if ((w + next - 1) / next < (unsigned)r->min_cols
            || (h + next - 1) / next < (unsigned)r->min_rows)
            break;
        denom = next;
    }
    return denom;
}

/* Pillow's CMYK to RGB, on the inverted values Adobe's encoders write (and
 * Pillow assumes for every CMYK JPEG): with c, m, y, k the inverted samples,
 * r = (255 - k) - (255 - k) c / 255, rounded as Pillow's MULDIV255. */
static uint8_t cmyk_part(unsigned inverted, unsigned inv_k)
{
    unsigned v = 255 - inverted, nk = inv_k, t = v * nk + 128;
    int out = (int)nk - (int)(((t >> 8) + t) >> 8);
    return (uint8_t)(out < 0 ? 0 : out);
}

cnn_status cnn_decode_jpeg(const decode_request *r, cnn_decoded_image *out)
{
    const char *name = r->name;
    jpeg_reader j = {0};
    uint8_t *volatile pixels = NULL;
    if (setjmp(j.guard.jump)) {
        jpeg_destroy_decompress(&j.d);
        free(pixels);
        return jpeg_failed(&j, name);
    }
    jpeg_open(&j, r);
    const unsigned w = j.d.image_width, h = j.d.image_height;
    const int comp = jpeg_channels(&j.d);
    const bool cmyk = j.d.jpeg_color_space == JCS_CMYK || j.d.jpeg_color_space == JCS_YCCK;
    j.d.out_color_space = comp == 1 ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
    j.d.scale_num = 1;
    j.d.scale_denom = jpeg_scale(r, w, h);
    jpeg_calc_output_dimensions(&j.d);
    const int64_t ow = j.d.output_width, oh = j.d.output_height;
    const int out_comp = j.d.out_color_components;
    /* What decoding allocates, bounded before it starts: our output (and
     * the caller's conversion of it); the whole image's DCT coefficients
     * when the file has several scans (progressive, or components in
     * separate scans: 2 bytes a sample at full size, whatever the scale);
     * row buffers of a few MCU rows. */
    const bool buffered = jpeg_has_multiple_scans(&j.d);
    int64_t blocks = ((int64_t)w / 8 + 2) * ((int64_t)h / 8 + 2) * j.d.num_components;
    const int64_t ours = ow * oh * (out_comp + decode_extra_per_pixel(r, comp));
    int64_t need = ours + (buffered ? blocks * 128 : 0)
                   + ((int64_t)w + 16) * 64 * j.d.num_components;
    if (need > r->max_bytes) {
        jpeg_destroy_decompress(&j.d);
        return cnn_fail(CNN_ERR_NO_MEMORY,
                        "%s: JPEG declares %u x %u x %d%s, which needs %lld bytes to decode, more"
                        " than the allowed %lld",
                        name, w, h, j.d.num_components,
                        j.d.progressive_mode ? " (progressive)" : buffered ? " (several scans)" : "",
                        (long long)need, (long long)r->max_bytes);
    }
    /* libjpeg's own large buffers (the coefficients) are refused beyond this */
    j.d.mem->max_memory_to_use = (long)(r->max_bytes - ours);
    pixels = malloc((size_t)(ow * oh * out_comp));
    if (!pixels) {
        jpeg_destroy_decompress(&j.d);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory decoding the JPEG (%lld x %lld)",
                        name, (long long)ow, (long long)oh);
    }
    jpeg_start_decompress(&j.d);
    const size_t stride = (size_t)(ow * out_comp);
    while (j.d.output_scanline < j.d.output_height) {
        JSAMPROW rows[4];
        int n = 0;
        for (; n < 4 && j.d.output_scanline + (unsigned)n < j.d.output_height; n++)
            rows[n] = pixels + (j.d.output_scanline + (size_t)n) * stride;
        jpeg_read_scanlines(&j.d, rows, (JDIMENSION)n);
    }
    jpeg_finish_decompress(&j.d);
    jpeg_destroy_decompress(&j.d);
    uint8_t *px = pixels;
    if (cmyk) {
        for (int64_t i = 0; i < ow * oh; i++) {
            const uint8_t *p = px + 4 * i;
            uint8_t rgb[3] = {cmyk_part(p[0], p[3]), cmyk_part(p[1], p[3]),
                              cmyk_part(p[2], p[3])};
            memcpy(px + 3 * i, rgb, 3);
        }
        uint8_t *fit = realloc(px, (size_t)(ow * oh * 3));
        px = fit ? fit : px;
    }
    *out = (cnn_decoded_image){.rows = (int)oh, .cols = (int)ow, .channels = comp,
                               .pixels = px, .source_rows = (int)h, .source_cols = (int)w};
    return CNN_OK;
}
