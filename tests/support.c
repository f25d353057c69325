#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>

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
    static char buf[4][320];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
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
