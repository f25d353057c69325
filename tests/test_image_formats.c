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
#include <zlib.h>

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
    char header[64] = "";
    if (nl)
        memcpy(header, ref->bytes, used - 1); /* NUL-terminated for sscanf */
    if (!nl
        || sscanf(header, "cnn-pixels %d %d %d", &ref->rows, &ref->cols, &ref->channels) != 3
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
    {"grey_trns.png", "l", 1, 1, 1, 0}, /* a tRNS colour is ignored */
    {"rgb_trns.png", "rgb", 3, 3, 1, 0},
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
    {"scans398.jpg", "l", 1, 1, 1, 2}, /* 398 progressive scans: within the limit */
    {"separate.jpg", "rgb", 3, 3, 1, 2}, /* baseline, each component in its own scan */
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

/* Sets a PNG chunk's CRC after editing its data (chunk starts at its length). */
static void png_fix_crc(unsigned char *chunk)
{
    uint32_t len = (uint32_t)chunk[0] << 24 | chunk[1] << 16 | chunk[2] << 8 | chunk[3];
    uLong crc = crc32(0, chunk + 4, 4 + len);
    for (int i = 0; i < 4; i++)
        chunk[8 + len + i] = (unsigned char)(crc >> (24 - 8 * i));
}

static void put_be(unsigned char *p, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
}

/* The offset of a JPEG's first SOFn marker segment (0 if none). */
static size_t jpeg_sof(const unsigned char *b, size_t n)
{
    for (size_t i = 2; i + 9 < n; i++)
        if (b[i] == 0xFF && (b[i + 1] == 0xC0 || b[i + 1] == 0xC2))
            return i;
    return 0;
}

static void test_damaged(void)
{
    static const char *const files[] = {"rgb.png", "interlaced.png", "palette.png", "rgb16.png",
                                        "rgb.jpg", "progressive.jpg", "cmyk.jpg", "grey.jpg"};
    cnn_decoded_image img;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t size;
        unsigned char *b = read_fixture(files[i], &size);
        CHECK(b != NULL);
        if (!b)
            continue;
        /* truncated at several points: an error naming the file, never a
         * picture with a grey or garbage end */
        char want[64];
        snprintf(want, sizeof want, "%s: ", files[i]);
        for (int cut = 1; cut < 8; cut++)
            CHECK_FAILS(cnn_decode_image(b, size * (size_t)cut / 8, files[i], 3, 0, 0, 0, &img),
                        CNN_ERR_FORMAT, want);
        CHECK(img.pixels == NULL);
        free(b);
    }

    size_t size;
    unsigned char *png = read_fixture("rgb.png", &size);
    unsigned char *jpg = NULL;
    size_t jsize = 0;
    if (png) {
        /* a flipped bit in the compressed data: the CRC says so */
        png[size - 20] ^= 1;
        CHECK_FAILS(cnn_decode_image(png, size, "flip.png", 3, 0, 0, 0, &img), CNN_ERR_FORMAT,
                    "flip.png: PNG: ");
        png[size - 20] ^= 1;
        /* 0 x 29 pixels (valid CRC): refused by the header check */
        unsigned char hdr[33];
        memcpy(hdr, png, 33);
        put_be(hdr + 16, 0, 4);
        png_fix_crc(hdr + 8);
        unsigned char *zero = malloc(size);
        memcpy(zero, png, size);
        memcpy(zero, hdr, 33);
        CHECK_FAILS(cnn_decode_image(zero, size, "zero.png", 0, 0, 0, 0, &img), CNN_ERR_FORMAT,
                    "zero.png: PNG: reading the header: Invalid IHDR data (Image width is zero");
        /* 100000 x 100000: refused before decoding, naming the size */
        put_be(zero + 16, 100000, 4);
        put_be(zero + 20, 100000, 4);
        png_fix_crc(zero + 8);
        CHECK_FAILS(cnn_decode_image(zero, size, "huge.png", 0, 0, 0, 0, &img),
                    CNN_ERR_NO_MEMORY, "huge.png: PNG declares 100000 x 100000 RGB at 8 bits");
        cnn_tensor *t = NULL;
        CHECK_FAILS(cnn_image_load_memory(zero, size, "huge.png", 0, 0, &t), CNN_ERR_NO_MEMORY,
                    "huge.png: image declares 100000 x 100000 x 3");
        free(zero);
        free(png);
    }
    jpg = read_fixture("progressive.jpg", &jsize);
    size_t sof = jpg ? jpeg_sof(jpg, jsize) : 0;
    CHECK(sof > 0);
    if (sof) {
        /* a progressive JPEG keeps every coefficient: 37 x 29 needs more
         * than 2000 bytes, and says so */
        CHECK_FAILS(cnn_decode_image(jpg, jsize, "prog.jpg", 3, 0, 0, 2000, &img),
                    CNN_ERR_NO_MEMORY, "prog.jpg: JPEG declares 37 x 29 x 3 (progressive)");
        /* SOF: FF Cn, length (2), precision (1), height (2), width (2) */
        put_be(jpg + sof + 5, 0, 2);
        CHECK_FAILS(cnn_decode_image(jpg, jsize, "zero.jpg", 3, 0, 0, 0, &img), CNN_ERR_FORMAT,
                    "zero.jpg: JPEG: ");
        put_be(jpg + sof + 5, 60000, 2);
        put_be(jpg + sof + 7, 60000, 2);
        CHECK_FAILS(cnn_decode_image(jpg, jsize, "huge.jpg", 3, 0, 0, 0, &img),
                    CNN_ERR_NO_MEMORY, "huge.jpg: JPEG declares 60000 x 60000 x 3");
        /* scaled to 1/8 the output is small, the coefficients are not */
        CHECK_FAILS(cnn_decode_image(jpg, jsize, "huge.jpg", 3, 100, 100, 0, &img),
                    CNN_ERR_NO_MEMORY, "huge.jpg: JPEG declares 60000 x 60000 x 3");
    }
    free(jpg);
    /* a baseline JPEG whose components are in separate scans keeps every
     * coefficient too: 15000 bytes are enough for the same picture in one
     * scan, not for it */
    jpg = read_fixture("rgb.jpg", &jsize);
    CHECK(jpg != NULL);
    if (jpg) {
        CHECK_OK(cnn_decode_image(jpg, jsize, "one.jpg", 3, 0, 0, 15000, &img));
        cnn_decoded_image_free(&img);
    }
    free(jpg);
    jpg = read_fixture("separate.jpg", &jsize);
    CHECK(jpg != NULL);
    if (jpg)
        CHECK_FAILS(cnn_decode_image(jpg, jsize, "sep.jpg", 3, 0, 0, 15000, &img),
                    CNN_ERR_NO_MEMORY, "sep.jpg: JPEG declares 37 x 29 x 3 (several scans)");
    free(jpg);
    /* 694 valid progressive scans: each is a pass over the image, a crafted
     * file can have thousands; refused past 500 */
    jpg = read_fixture("scans694.jpg", &jsize);
    CHECK(jpg != NULL);
    if (jpg)
        CHECK_FAILS(cnn_decode_image(jpg, jsize, "scans.jpg", 1, 0, 0, 0, &img), CNN_ERR_FORMAT,
                    "scans.jpg: JPEG: more than 500 progressive scans");
    free(jpg);
    CHECK_FAILS(cnn_decode_image("\xff\xd8\xff\xe0 not really", 16, "fake.jpg", 0, 0, 0, 0, &img),
                CNN_ERR_FORMAT, "fake.jpg: JPEG: ");
    CHECK_FAILS(cnn_decode_image("\x89PNG\r\n\x1a\n", 8, "sig.png", 0, 0, 0, 0, &img),
                CNN_ERR_FORMAT, "sig.png: PNG: ");
    CHECK(img.pixels == NULL);
}

/* Issue 18: a 141-byte PNG whose IDAT chunk claims 0x7fffffff bytes made
 * stb_image allocate (and our reader zero-fill) 2 GiB under a 1 MB budget.
 * Run in a child so its peak RSS is its own: it must stay near where it
 * started, and fail at once. */
static void test_idat_claim(void)
{
    unsigned char png[141] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    put_be(png + 8, 13, 4);
    memcpy(png + 12, "IHDR", 4);
    put_be(png + 16, 64, 4);
    put_be(png + 20, 64, 4);
    png[24] = 8; /* bit depth */
    png[25] = 2; /* RGB */
    png_fix_crc(png + 8);
    put_be(png + 33, 0x7fffffff, 4);
    memcpy(png + 37, "IDAT", 4);
    for (int i = 41; i < 141; i++)
        png[i] = (unsigned char)(i * 37);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct rusage before, after;
        getrusage(RUSAGE_SELF, &before);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cnn_tensor *t = NULL;
        cnn_status st = cnn_image_load_memory(png, sizeof png, "claim.png", 0, 1 << 20, &t);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        getrusage(RUSAGE_SELF, &after);
        long grown_kb = after.ru_maxrss - before.ru_maxrss;
        double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        bool ok = st == CNN_ERR_FORMAT && strstr(cnn_last_error(), "claim.png: PNG: ")
                  && grown_kb < 16 * 1024 && s < 2.0; /* was 2 GiB and 1.4 s */
        if (!ok)
            fprintf(stderr, "claim.png: %s \"%s\", peak RSS grew %ld kB in %.2f s\n",
                    cnn_status_name(st), cnn_last_error(), grown_kb, s);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    test_against_pillow();
    test_damaged();
    test_idat_claim();
    return test_finish("test_image_formats");
}
