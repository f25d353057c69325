/* Hostile input that the format tests (test_idx, test_model_file,
 * test_description, test_image) do not already cover:
 *
 * 1. Limits before allocation: an input that declares more memory than the
 *    budget - in its header, or by its size - is refused before anything
 *    that size is allocated: within a fraction of a second and without the
 *    process growing (peak RSS measured around each case). Large files are
 *    sparse, so the test itself stays small.
 * 2. Special files given as input to every loader - a directory,
 *    /dev/zero, a FIFO (which must not block), a missing file - are
 *    CNN_ERR_IO, naming the path.
 * 3. A description with more layers than a model may have.
 *
 * Each case asserts the exact status and the message; the sanitizer build
 * checks that nothing leaks. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "test.h"

static char dir[] = "/tmp/cnn_test_bad_input_XXXXXX";

static const char *path_in_dir(const char *name) { return test_path(dir, name); }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long peak_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* The limits every hostile case must stay within. */
#define MAX_SECONDS 0.5
#define MAX_RSS_GROWTH_KIB (32 * 1024)

typedef struct {
    double t0;
    long rss0;
} probe;

static probe probe_start(void) { return (probe){now(), peak_rss_kib()}; }

static void probe_check(probe p, const char *what)
{
    double seconds = now() - p.t0;
    long grown = peak_rss_kib() - p.rss0;
    if (seconds < MAX_SECONDS && grown < MAX_RSS_GROWTH_KIB) {
        test_passed++;
    } else {
        test_failed++;
        fprintf(stderr, "%s: took %.3f s (limit %.1f), peak RSS grew by %ld KiB (limit %d)\n",
                what, seconds, MAX_SECONDS, grown, MAX_RSS_GROWTH_KIB);
    }
}

/* A file of the given size whose first bytes are head; the rest is a hole. */
static bool sparse_file(const char *path, const void *head, size_t head_len, off_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return false;
    bool ok = write(fd, head, head_len) == (ssize_t)head_len && ftruncate(fd, size) == 0;
    return close(fd) == 0 && ok;
}

/* ---- 1. Limits before allocation -------------------------------------------------- */

static void test_idx_limits(void)
{
    cnn_tensor *t = NULL;
    unsigned char h[16] = {0, 0, 0x0C, 2};
    test_put_be32(h + 4, 1000000);
    test_put_be32(h + 8, 1000);
    probe p = probe_start();
    CHECK_FAILS(cnn_dataset_load_idx_memory(h, 12, "big.idx", &t), CNN_ERR_FORMAT,
                "big.idx: data: expected 4000000000 bytes of data for int32 (1000000, 1000),"
                " file has 0");
    probe_check(p, "IDX header declaring 4 GB over no data");

    /* A gzip of the header alone, declaring 2 GB of ubyte. */
    unsigned char gz[64];
    uLongf gz_len = sizeof gz;
    h[2] = 0x08;
    test_put_be32(h + 4, 2000000);
    z_stream zs = {0};
    CHECK(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    zs.next_in = h;
    zs.avail_in = 12;
    zs.next_out = gz;
    zs.avail_out = (uInt)gz_len;
    CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    gz_len = zs.total_out;
    deflateEnd(&zs);
    p = probe_start();
    CHECK_FAILS(cnn_dataset_load_idx_memory(gz, gz_len, "bomb.gz", &t), CNN_ERR_FORMAT,
                "bomb.gz: data: expected 2000000000 bytes of data for ubyte (2000000, 1000), but"
                " a");
    probe_check(p, "gzip IDX declaring 2 GB");

    /* A file whose size matches its header but whose floats exceed the
     * budget: 1.2e9 bytes (a hole) become 4.8 GB of float32. */
    unsigned char h1[8] = {0, 0, 0x08, 1};
    test_put_be32(h1 + 4, 1200000000u);
    const char *path = path_in_dir("huge.idx");
    CHECK(sparse_file(path, h1, sizeof h1, (off_t)8 + 1200000000));
    p = probe_start();
    CHECK_FAILS(cnn_dataset_load_idx(path, &t), CNN_ERR_NO_MEMORY,
                "huge.idx: data: ubyte (1200000000) needs 4800000000 bytes as float32, more than"
                " the memory budget of 4294967296 bytes");
    probe_check(p, "IDX file of 1.2 GB whose floats exceed the budget");
    CHECK(t == NULL);
    unlink(path);
}

static void test_model_limits(void)
{
    cnn_model *m = NULL;
    /* 5 GB of zeros named like a model: refused from its first bytes. */
    const char *path = path_in_dir("zeros.cnn");
    CHECK(sparse_file(path, "", 0, (off_t)5 << 30));
    probe p = probe_start();
    CHECK_FAILS(cnn_model_load(path, &m), CNN_ERR_FORMAT,
                "zeros.cnn: header: expected magic \"CNNMODEL\", got 00 00 00 00 00 00 00 00 (not"
                " a cnn model file)");
    probe_check(p, "5 GB file of zeros as a model");

    /* A real preamble recording the file's 5 GB length: more than the
     * budget, refused before it is read. */
    unsigned char pre[20] = "CNNMODEL\x01\0\0\0";
    uint64_t len = (uint64_t)5 << 30;
    for (int i = 0; i < 8; i++)
        pre[12 + i] = (unsigned char)(len >> (8 * i));
    CHECK(sparse_file(path, pre, sizeof pre, (off_t)len));
    p = probe_start();
    CHECK_FAILS(cnn_model_load(path, &m), CNN_ERR_NO_MEMORY,
                "zeros.cnn: the file is 5368709120 bytes; reading it needs more than the memory"
                " budget of 4294967296 bytes");
    probe_check(p, "5 GB model file");
    /* ... and one whose recorded length is not its size */
    len = 1000;
    for (int i = 0; i < 8; i++)
        pre[12 + i] = (unsigned char)(len >> (8 * i));
    CHECK(sparse_file(path, pre, sizeof pre, (off_t)3 << 30));
    p = probe_start();
    CHECK_FAILS(cnn_model_load(path, &m), CNN_ERR_FORMAT,
                "zeros.cnn: 3221224472 bytes of trailing data after the model's 1000 bytes");
    probe_check(p, "3 GB model file recording 1000 bytes");
    CHECK(m == NULL);
    unlink(path);

    /* A saved model whose kernel is patched to declare 2^40 x 3 floats,
     * with the checksum fixed: refused from the sizes, not allocated. */
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(4)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3)));
    CHECK(cnn_model_layer_weights(m, 0, 0, NULL) != NULL); /* builds */
    path = path_in_dir("dense.cnn");
    CHECK_OK(cnn_model_save(m, path));
    cnn_model_free(m);
    m = NULL;
    unsigned char b[512];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(b, 1, sizeof b, f) : 0;
    if (f)
        fclose(f);
    /* the kernel's dims: u32 rank 2, u64 4, u64 3 */
    static const unsigned char dims[20] = {2, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 3};
    unsigned char *at = NULL;
    for (size_t i = 0; n > 20 && i + 20 <= n; i++)
        if (memcmp(b + i, dims, 20) == 0)
            at = b + i;
    CHECK(at != NULL);
    if (at) {
        at[4] = 0;
        at[9] = 1; /* dims[0] = 2^40 */
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)(n - 4));
        for (int i = 0; i < 4; i++)
            b[n - 4 + i] = (unsigned char)(crc >> (8 * i));
        p = probe_start();
        CHECK_FAILS(cnn_model_load_memory(b, n, "crafted.cnn", &m), CNN_ERR_FORMAT,
                    "crafted.cnn: parameters: layer 0 (dense): tensor 0: 3298534883328 floats run"
                    " past the end of the data");
        probe_check(p, "model file declaring a 2^40 x 3 kernel");
    }
    unlink(path);
}

static void test_description_limits(void)
{
    cnn_model *m = NULL;
    /* Describing a huge model allocates nothing; building it is refused
     * by the budget, before allocating. */
    static const char big[] = "input shape=50000\nDense 50000\nDense 10\n"; /* 9.3 GiB */
    probe p = probe_start();
    CHECK_OK(cnn_model_from_description_memory(big, sizeof big - 1, "big.model", &m));
    CHECK_FAILS(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_MSE)), CNN_ERR_NO_MEMORY,
                "model: building the weights (2500550010 parameters) needs 10002200040 bytes"
                " (9.32 GiB), more than the memory budget of 4294967296 bytes (4.00 GiB)");
    CHECK(cnn_model_layer_weights(m, 0, 0, NULL) == NULL); /* nor is it built on its own */
    probe_check(p, "description of a model beyond the budget");
    cnn_model_free(m);
    m = NULL;

    static const char json[] =
        "{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\":"
        " \"InputLayer\", \"config\": {\"batch_shape\": [null, 2147483647, 2147483647, 3]}},"
        " {\"class_name\": \"Flatten\", \"config\": {}}]}}";
    p = probe_start();
    CHECK_FAILS(cnn_model_from_description_memory(json, sizeof json - 1, "big.json", &m),
                CNN_ERR_FORMAT, "more than 2^31 values per example");
    probe_check(p, "Keras JSON declaring a 2^31 x 2^31 x 3 input");

    /* A 17 MiB description file (a hole): refused by its size, unread. */
    const char *path = path_in_dir("huge.model");
    CHECK(sparse_file(path, "input shape=4\n", 14, (off_t)17 << 20));
    p = probe_start();
    CHECK_FAILS(cnn_model_from_description(path, &m), CNN_ERR_FORMAT,
                "huge.model: the description file is 17825792 bytes, more than the 16777216"
                " allowed");
    probe_check(p, "17 MiB description file");
    unlink(path);

    /* 10001 layers: the 10001st is refused (adding checks names pairwise,
     * so the count is bounded as in model files). */
    size_t cap = 16 + 10001 * 16, used = 0;
    char *text = malloc(cap);
    used += (size_t)snprintf(text, cap, "input shape=4\n");
    for (int i = 0; i < 10001; i++)
        used += (size_t)snprintf(text + used, cap - used, "Activation relu\n");
    p = probe_start();
    CHECK_FAILS(cnn_model_from_description_memory(text, used, "many.model", &m), CNN_ERR_FORMAT,
                "many.model:10002:1: more than 10000 layers: a description may have at most 10000");
    double seconds = now() - p.t0;
    CHECK(seconds < 2.0); /* 10000 pairwise name checks; far below hours */
    CHECK(m == NULL);
    free(text);
}

static void test_image_limits(void)
{
    cnn_tensor *t = NULL;
    /* PGM and BMP headers declaring 60000 x 60000 pixels */
    static const char pgm[] = "P5\n60000 60000\n255\n\0\0\0\0";
    probe p = probe_start();
    CHECK_FAILS(cnn_image_load_memory(pgm, sizeof pgm - 1, "huge.pgm", 0, 0, &t),
                CNN_ERR_NO_MEMORY, "huge.pgm: image declares 60000 x 60000 x 1, which needs"
                " 18000000000 bytes to load, more than the allowed 4294967296");
    probe_check(p, "PGM declaring 60000 x 60000");
    unsigned char bmp[58] = {'B', 'M'};
    bmp[10] = 54;                                 /* pixel data offset */
    bmp[14] = 40;                                 /* BITMAPINFOHEADER */
    const uint32_t side = 30000;
    for (int i = 0; i < 4; i++) {
        bmp[18 + i] = (unsigned char)(side >> (8 * i)); /* width */
        bmp[22 + i] = (unsigned char)(side >> (8 * i)); /* height */
    }
    bmp[26] = 1;                                  /* planes */
    bmp[28] = 24;                                 /* bits per pixel */
    p = probe_start();
    cnn_status st = cnn_image_load_memory(bmp, sizeof bmp, "huge.bmp", 0, 0, &t);
    /* stb may refuse the header itself (FORMAT) or report its size */
    CHECK(st == CNN_ERR_NO_MEMORY || st == CNN_ERR_FORMAT);
    CHECK(strncmp(cnn_last_error(), "huge.bmp: ", 10) == 0);
    probe_check(p, "BMP declaring 30000 x 30000");
    /* within stb's limit, beyond the caller's max_bytes */
    static const char small_limit[] = "P5\n100 100\n255\n";
    p = probe_start();
    CHECK_FAILS(cnn_image_load_memory(small_limit, sizeof small_limit - 1, "limit.pgm", 0, 1000,
                                      &t),
                CNN_ERR_NO_MEMORY, "limit.pgm: image declares 100 x 100 x 1, which needs 50000"
                " bytes to load, more than the allowed 1000");
    probe_check(p, "PGM beyond max_bytes");
    CHECK(t == NULL);
}

/* ---- 2. Special files ---------------------------------------------------------------- */

static void test_special_files(void)
{
    cnn_tensor *t = NULL;
    cnn_model *m = NULL;
    const char *fifo = path_in_dir("fifo");
    CHECK(mkfifo(fifo, 0600) == 0);
    /* a loader that blocked on the FIFO would hang the test: fail it instead */
    alarm(20);

    CHECK_FAILS(cnn_dataset_load_idx(fifo, &t), CNN_ERR_IO,
                "fifo: expected a regular IDX file, got a FIFO");
    CHECK_FAILS(cnn_model_load(fifo, &m), CNN_ERR_IO,
                "fifo: expected a regular model file, got a FIFO");
    CHECK_FAILS(cnn_model_from_description(fifo, &m), CNN_ERR_IO,
                "fifo: expected a regular description file, got a FIFO");
    CHECK_FAILS(cnn_image_load(fifo, 0, 0, &t), CNN_ERR_IO,
                "fifo: expected a regular image file, got a FIFO");

    CHECK_FAILS(cnn_model_from_description("/dev/zero", &m), CNN_ERR_IO,
                "/dev/zero: expected a regular description file, got a character device");
    CHECK_FAILS(cnn_image_load("/dev/zero", 0, 0, &t), CNN_ERR_IO,
                "/dev/zero: expected a regular image file, got a character device");
    CHECK_FAILS(cnn_image_load(dir, 0, 0, &t), CNN_ERR_IO,
                "expected a regular image file, got a directory");

    const char *missing = path_in_dir("missing");
    CHECK_FAILS(cnn_dataset_load_idx(missing, &t), CNN_ERR_IO,
                "missing: cannot open: No such file or directory");
    CHECK_FAILS(cnn_model_load(missing, &m), CNN_ERR_IO,
                "missing: cannot open: No such file or directory");
    CHECK_FAILS(cnn_model_from_description(missing, &m), CNN_ERR_IO,
                "missing: cannot open: No such file or directory");
    CHECK_FAILS(cnn_image_load(missing, 0, 0, &t), CNN_ERR_IO,
                "missing: cannot open: No such file or directory");

    /* an empty description file */
    const char *empty = path_in_dir("empty.model");
    CHECK(test_write_file(empty, "", 0));
    CHECK_FAILS(cnn_model_from_description(empty, &m), CNN_ERR_FORMAT,
                "empty.model:1:1: empty description: expected 'input shape=H,W,C'");
    alarm(0);
    CHECK(t == NULL && m == NULL);
    unlink(fifo);
    unlink(empty);
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    test_idx_limits();
    test_model_limits();
    test_description_limits();
    test_image_limits();
    test_special_files();
    CHECK(rmdir(dir) == 0);
    return test_finish("test_bad_input");
}
