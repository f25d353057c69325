/* nftw() is XSI. */
#define _XOPEN_SOURCE 700

#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <zlib.h>

#include "test.h"

int test_passed, test_failed, test_skipped;

int test_close(const char *what, const float *a, const float *b, long n, double atol,
               double rtol)
{
    long worst = -1;
    double worst_excess = 0, worst_diff = 0;
    for (long i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - (double)b[i]);
        double excess = diff - (atol + rtol * fabs((double)b[i]));
        if (!(excess <= 0) && (worst < 0 || !(excess <= worst_excess))) {
            worst = i;
            worst_excess = excess;
            worst_diff = diff;
        }
    }
    if (worst < 0) {
        test_passed++;
        return 1;
    }
    test_failed++;
    fprintf(stderr, "%s: element %ld differs: got %.9g, expected %.9g (|diff| %.3g)\n", what,
            worst, (double)a[worst], (double)b[worst], worst_diff);
    return 0;
}

void test_skip(const char *what, const char *why)
{
    const char *require = getenv("CNN_REQUIRE_TEST_DATA");
    if (require && strcmp(require, "1") == 0) {
        test_failed++;
        fprintf(stderr, "failed: %s: %s (CNN_REQUIRE_TEST_DATA=1: nothing may be skipped)\n",
                what, why);
        return;
    }
    test_skipped++;
    printf("skipped: %s (%s)\n", what, why);
}

int test_finish(const char *name)
{
    if (test_skipped)
        printf("%s: %d passed, %d failed, %d skipped\n", name, test_passed, test_failed,
               test_skipped);
    else
        printf("%s: %d passed, %d failed\n", name, test_passed, test_failed);
    return test_failed ? 1 : 0;
}

const char *test_path(const char *dir, const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static char tmpdir[256];

const char *test_tmpdir(const char *name)
{
    if (!tmpdir[0]) {
        char t[sizeof tmpdir];
        snprintf(t, sizeof t, "/tmp/cnn_%s_XXXXXX", name);
        if (!mkdtemp(t))
            return NULL;
        memcpy(tmpdir, t, sizeof t);
    }
    return tmpdir;
}

const char *test_tmp(const char *rel)
{
    return test_path(tmpdir, rel);
}

int test_tmpdir_remove(void)
{
    int ok = tmpdir[0] && test_remove_tree(tmpdir);
    tmpdir[0] = '\0';
    return ok;
}

unsigned char *test_read_file(const char *path, size_t *size)
{
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            unsigned char *g = realloc(b, cap);
            if (!g) {
                free(b);
                fclose(f);
                return NULL;
            }
            b = g;
        }
        size_t k = fread(b + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(b);
        return NULL;
    }
    *size = n;
    return b;
}

int test_write_file(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    int ok = fwrite(bytes, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

cnn_status test_full_disk(long limit, cnn_status (*fn)(void *ctx), void *ctx, char *msg,
                          size_t cap)
{
    struct rlimit saved, small;
    if (getrlimit(RLIMIT_FSIZE, &saved) != 0)
        return CNN_OK;
    small = saved;
    small.rlim_cur = (rlim_t)limit;
    void (*handler)(int) = signal(SIGXFSZ, SIG_IGN);
    cnn_status st = CNN_OK;
    snprintf(msg, cap, "setrlimit failed");
    if (setrlimit(RLIMIT_FSIZE, &small) == 0) {
        st = fn(ctx);
        snprintf(msg, cap, "%s", cnn_last_error());
        setrlimit(RLIMIT_FSIZE, &saved);
    }
    signal(SIGXFSZ, handler);
    return st;
}

int test_rnd(cnn_rng *r, int lo, int hi)
{
    return lo + (int)(cnn_rng_next(r) % (uint64_t)(hi - lo + 1));
}

void *test_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

void test_fill_i8(cnn_rng *r, int8_t *p, int64_t n, int lo, int hi)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (int8_t)test_rnd(r, lo, hi);
}

cnn_tensor *test_random_images(int64_t n, int h, int w, int c, float scale, uint64_t seed)
{
    int64_t dims[4] = {n, h, w, c};
    cnn_tensor *t = NULL;
    if (cnn_tensor_create(&t, 4, dims) != CNN_OK)
        return NULL;
    cnn_rng r;
    cnn_rng_seed(&r, seed);
    for (int64_t i = 0; i < cnn_tensor_size(t); i++)
        t->data[i] = scale * (float)cnn_rng_uniform(&r);
    return t;
}

int test_argmax(const float *p, int64_t n)
{
    int best = 0;
    for (int j = 1; j < n; j++)
        if (p[j] > p[best])
            best = j;
    return best;
}

void test_put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

void test_png_header(unsigned char png[TEST_PNG_HEADER_BYTES], uint32_t width, uint32_t height,
                     int color_type)
{
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    unsigned char *c = png + 8;
    test_put_be32(c, 13);
    memcpy(c + 4, "IHDR", 4);
    test_put_be32(c + 8, width);
    test_put_be32(c + 12, height);
    c[16] = 8, c[17] = (unsigned char)color_type, c[18] = 0, c[19] = 0, c[20] = 0;
    test_put_be32(c + 21, (uint32_t)crc32(0, c + 4, 17));
    c += 25;
    test_put_be32(c, 0);
    memcpy(c + 4, "IDAT", 4);
    test_put_be32(c + 8, (uint32_t)crc32(0, c + 4, 4));
    c += 12;
    test_put_be32(c, 0);
    memcpy(c + 4, "IEND", 4);
    test_put_be32(c + 8, (uint32_t)crc32(0, c + 4, 4));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int test_remove_tree(const char *dir)
{
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0;
}
