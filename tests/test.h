/* A tiny test harness: CHECK records a failure and goes on; each test
 * program exits non-zero if anything failed, and prints one
 * "name: N passed, N failed" line (", K skipped" appended when K > 0)
 * that tests/run.sh adds up. */
#ifndef CNN_TEST_H
#define CNN_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cnn.h"
#include "core/rng.h"

extern int test_passed, test_failed, test_skipped;

/* Under AddressSanitizer freed memory stays in its quarantine and every
 * allocation has shadow memory: the process's RSS says nothing about the
 * library then, and tests that bound it only report it. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_RSS_MEANINGLESS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_RSS_MEANINGLESS 1
#endif
#endif

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (cond) {                                                                \
            test_passed++;                                                         \
        } else {                                                                   \
            test_failed++;                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                          \
    } while (0)

/* Checks a call returned CNN_OK, printing cnn_last_error() otherwise. */
#define CHECK_OK(call)                                                             \
    do {                                                                           \
        cnn_status st_ = (call);                                                   \
        if (st_ == CNN_OK) {                                                       \
            test_passed++;                                                         \
        } else {                                                                   \
            test_failed++;                                                         \
            fprintf(stderr, "%s:%d: %s returned %s: %s\n", __FILE__, __LINE__, #call, \
                    cnn_status_name(st_), cnn_last_error());                       \
        }                                                                          \
    } while (0)

/* Checks a call fails with the given status and its message contains text. */
#define CHECK_FAILS(call, status, text)                                            \
    do {                                                                           \
        cnn_status st_ = (call);                                                   \
        if (st_ == (status) && strstr(cnn_last_error(), (text))) {                 \
            test_passed++;                                                         \
        } else {                                                                   \
            test_failed++;                                                         \
            fprintf(stderr, "%s:%d: %s: expected %s with \"%s\", got %s: \"%s\"\n", \
                    __FILE__, __LINE__, #call, cnn_status_name(status), (text),     \
                    cnn_status_name(st_), cnn_last_error());                       \
        }                                                                          \
    } while (0)

/* |a - b| <= atol + rtol * |b| elementwise; prints the worst element. */
int test_close(const char *what, const float *a, const float *b, long n, double atol,
               double rtol);

/* dir/name in one of eight rotating buffers (so a call may take several). */
const char *test_path(const char *dir, const char *name);

/* The test program's own temporary directory, /tmp/cnn_<name>_XXXXXX, made
 * by the first call (NULL if it cannot be made); test_tmp(rel) is rel in it
 * (test_path's buffers); test_tmpdir_remove removes it and everything in it
 * (1 on success). */
const char *test_tmpdir(const char *name);
const char *test_tmp(const char *rel);
int test_tmpdir_remove(void);

/* A whole file, malloc'd (NULL if it cannot be read), its length in *size;
 * and n bytes written as a whole file (1 on success). */
unsigned char *test_read_file(const char *path, size_t *size);
int test_write_file(const char *path, const void *bytes, size_t n);

/* Runs fn(ctx) on a full disk: writes past limit bytes fail with EFBIG
 * (RLIMIT_FSIZE, SIGXFSZ ignored). Returns its status (CNN_OK when the
 * limit cannot be set) with cnn_last_error() copied into msg. */
cnn_status test_full_disk(long limit, cnn_status (*fn)(void *ctx), void *ctx, char *msg,
                          size_t cap);

/* Random test data: an int in [lo, hi]; n int8 values in [lo, hi]; an
 * n x h x w x c tensor of scale * uniform [0, 1) from seed (NULL if it
 * cannot be made). */
int test_rnd(cnn_rng *r, int lo, int hi);
void test_fill_i8(cnn_rng *r, int8_t *p, int64_t n, int lo, int hi);
cnn_tensor *test_random_images(int64_t n, int h, int w, int c, float scale, uint64_t seed);

/* malloc(n) (n == 0 allowed); out of memory ends the test program. */
void *test_xmalloc(size_t n);

/* The index of the largest of p[0..n) (the first of equals). */
int test_argmax(const float *p, int64_t n);

/* v big-endian into p[0..4) (PNG fields). */
void test_put_be32(unsigned char *p, uint32_t v);

/* A PNG that declares width x height, 8-bit, of color_type (0 grey, 2
 * RGB), with valid CRCs and an empty IDAT: the size is what such tests
 * are about. */
enum { TEST_PNG_HEADER_BYTES = 8 + 25 + 12 + 12 };
void test_png_header(unsigned char png[TEST_PNG_HEADER_BYTES], uint32_t width, uint32_t height,
                     int color_type);

/* Removes dir and everything below it, links not followed (1 on success). */
int test_remove_tree(const char *dir);

/* Layer tests that run a model three ways (tests/support_model.c):
 * n floats uniform in [lo, hi) (malloc'd; out of memory ends the program);
 * x (dims) uniform in [lo, hi) and y (dims[0] labels below classes);
 * Flatten, a 3-unit softmax Dense, compile (SGD) and build appended to m,
 * the reference GEMM chosen when naive; whether n floats have the same bits
 * (printing what otherwise); and one step on m = {1 thread, 2 threads,
 * reference GEMM}: forward and backward of x, y in each, then the
 * gradients of the first `layers` layers checked: the same bits on 1 and 2
 * threads, within 1e-5 + 1e-4 relative of the reference's. */
float *test_random_floats(cnn_rng *r, int64_t n, float lo, float hi);
void test_random_batch(cnn_rng *r, const int64_t dims[4], float lo, float hi, int classes,
                       cnn_tensor **x, cnn_tensor **y);
cnn_model *test_classifier_head(cnn_model *m, bool naive);
int test_same_bits(const char *what, const float *a, const float *b, int64_t n);
void test_three_way_step(cnn_model *const m[3], const cnn_tensor *x, const cnn_tensor *y,
                         int layers, const char *what);

/* Records that part of a test cannot run because something from outside
 * the repository is missing (a data set, a third-party model file): prints
 * "skipped: WHAT (WHY)", which tests/run.sh lists, and counts a skip. With
 * CNN_REQUIRE_TEST_DATA=1 in the environment (CI, which has every file) it
 * counts a failure instead, so nothing is skipped there unnoticed. */
void test_skip(const char *what, const char *why);

/* Prints the summary line and returns the exit status. */
int test_finish(const char *name);

#endif
