/* IDX loading: every element type, plain and gzip, memory and files, every
 * malformed-input case, the MNIST directory loader, and Fashion-MNIST when
 * it is installed. Fixtures are built here in memory. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "test.h"

typedef struct buf {
    unsigned char *p;
    size_t n;
} buf;

/* An IDX file: 00 00 type rank, dims (big-endian), then data as given. */
static buf idx_make(int type, int rank, const uint32_t *dims, const void *data, size_t data_len)
{
    buf b = {malloc(4 + 4 * (size_t)rank + data_len + 1), 4 + 4 * (size_t)rank + data_len};
    b.p[0] = 0;
    b.p[1] = 0;
    b.p[2] = (unsigned char)type;
    b.p[3] = (unsigned char)rank;
    for (int i = 0; i < rank; i++)
        for (int k = 0; k < 4; k++)
            b.p[4 + 4 * i + k] = (unsigned char)(dims[i] >> (24 - 8 * k));
    if (data_len)
        memcpy(b.p + 4 + 4 * rank, data, data_len);
    return b;
}

/* gzip-wrapped deflate of b (windowBits 15 + 16). */
static buf gz_make(buf b)
{
    z_stream zs = {0};
    deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    buf out = {malloc(deflateBound(&zs, b.n) + 32), 0};
    zs.next_in = b.p;
    zs.avail_in = (uInt)b.n;
    zs.next_out = out.p;
    zs.avail_out = (uInt)deflateBound(&zs, b.n) + 32;
    int ret = deflate(&zs, Z_FINISH);
    CHECK(ret == Z_STREAM_END);
    out.n = zs.total_out;
    deflateEnd(&zs);
    return out;
}

static buf cat(buf a, buf b)
{
    buf c = {malloc(a.n + b.n), a.n + b.n};
    memcpy(c.p, a.p, a.n);
    memcpy(c.p + a.n, b.p, b.n);
    return c;
}

static buf buf_copy(buf a)
{
    buf c = {malloc(a.n), a.n};
    memcpy(c.p, a.p, a.n);
    return c;
}

static void put_be(unsigned char *p, uint64_t v, int bytes)
{
    for (int k = 0; k < bytes; k++)
        p[k] = (unsigned char)(v >> (8 * (bytes - 1 - k)));
}

static cnn_status load_mem(buf b, cnn_tensor **t) { return cnn_dataset_load_idx_memory(b.p, b.n, "m.idx", t); }

static void check_shape(const cnn_tensor *t, int rank, int64_t d0, int64_t d1, int64_t d2,
                        int64_t d3)
{
    int64_t d[4] = {d0, d1, d2, d3};
    CHECK(t != NULL);
    if (!t)
        return;
    CHECK(t->rank == rank);
    for (int i = 0; i < rank && i < 4; i++)
        CHECK(t->dims[i] == d[i]);
}

static void test_types(void)
{
    cnn_tensor *t = NULL;

    unsigned char u8[] = {0, 1, 127, 128, 255, 42};
    buf b = idx_make(0x08, 2, (uint32_t[]){2, 3}, u8, sizeof u8);
    CHECK_OK(load_mem(b, &t));
    check_shape(t, 2, 2, 3, 0, 0);
    test_close("ubyte", t->data, (float[]){0, 1, 127, 128, 255, 42}, 6, 0, 0);
    cnn_tensor_free(t);
    free(b.p);

    unsigned char s8[] = {0x80, 0xff, 0, 0x7f};
    b = idx_make(0x09, 1, (uint32_t[]){4}, s8, sizeof s8);
    CHECK_OK(load_mem(b, &t));
    check_shape(t, 1, 4, 0, 0, 0);
    test_close("sbyte", t->data, (float[]){-128, -1, 0, 127}, 4, 0, 0);
    cnn_tensor_free(t);
    free(b.p);

    unsigned char i16[8];
    put_be(i16, 0x8000, 2);
    put_be(i16 + 2, 0xffff, 2);
    put_be(i16 + 4, 258, 2);
    put_be(i16 + 6, 0x7fff, 2);
    b = idx_make(0x0B, 1, (uint32_t[]){4}, i16, sizeof i16);
    CHECK_OK(load_mem(b, &t));
    test_close("int16", t->data, (float[]){-32768, -1, 258, 32767}, 4, 0, 0);
    cnn_tensor_free(t);
    free(b.p);

    unsigned char i32[12];
    put_be(i32, 0x80000000u, 4);
    put_be(i32 + 4, 123456, 4);
    put_be(i32 + 8, 0xffffffffu, 4);
    b = idx_make(0x0C, 1, (uint32_t[]){3}, i32, sizeof i32);
    CHECK_OK(load_mem(b, &t));
    test_close("int32", t->data, (float[]){-2147483648.0f, 123456, -1}, 3, 0, 0);
    cnn_tensor_free(t);
    free(b.p);

    float f32v[3] = {1.5f, -0.25f, 3e38f};
    unsigned char f32[12];
    for (int i = 0; i < 3; i++) {
        uint32_t u;
        memcpy(&u, &f32v[i], 4);
        put_be(f32 + 4 * i, u, 4);
    }
    b = idx_make(0x0D, 3, (uint32_t[]){1, 3, 1}, f32, sizeof f32);
    CHECK_OK(load_mem(b, &t));
    check_shape(t, 3, 1, 3, 1, 0);
    test_close("float32", t->data, f32v, 3, 0, 0);
    cnn_tensor_free(t);
    free(b.p);

    double f64v[4] = {3.25, -1e10, 0.1, -0.0};
    unsigned char f64[32];
    for (int i = 0; i < 4; i++) {
        uint64_t u;
        memcpy(&u, &f64v[i], 8);
        put_be(f64 + 8 * i, u, 8);
    }
    b = idx_make(0x0E, 4, (uint32_t[]){2, 1, 1, 2}, f64, sizeof f64);
    CHECK_OK(load_mem(b, &t));
    check_shape(t, 4, 2, 1, 1, 2);
    test_close("float64", t->data, (float[]){3.25f, -1e10f, 0.1f, 0.0f}, 4, 0, 0);
    cnn_tensor_free(t);
    free(b.p);
}

static void test_malformed(void)
{
    cnn_tensor *t = (cnn_tensor *)&t; /* must come back NULL */
    unsigned char d6[6] = {1, 2, 3, 4, 5, 6};

    CHECK_FAILS(cnn_dataset_load_idx_memory(NULL, 0, "e.idx", &t), CNN_ERR_FORMAT,
                "e.idx: file: expected an IDX header");
    CHECK(t == NULL);
    CHECK_FAILS(cnn_dataset_load_idx_memory("\0\0\x08", 3, "s.idx", &t), CNN_ERR_FORMAT,
                "s.idx: header: expected at least 8 bytes (magic and one dimension), file has 3");
    CHECK_FAILS(cnn_dataset_load_idx_memory("\0\0\x08\x02\0\0\0\2\0\0", 10, "s.idx", &t),
                CNN_ERR_FORMAT,
                "s.idx: header: expected 12 bytes (magic and 2 dimensions), file has 10");
    CHECK_FAILS(cnn_dataset_load_idx_memory("\x12\x34\x56\x78\0\0\0\1", 8, "train.gz", &t),
                CNN_ERR_FORMAT, "train.gz: header: expected magic 0x0000TTRR with a known type "
                "byte TT (08 ubyte, 09 sbyte, 0B int16, 0C int32, 0D float32, 0E float64), got "
                "0x12345678");

    buf b = idx_make(0x0A, 1, (uint32_t[]){1}, d6, 1);
    CHECK_FAILS(load_mem(b, &t), CNN_ERR_FORMAT, "got 0x00000A01");
    free(b.p);
    b = idx_make(0x08, 0, NULL, d6, 1);
    CHECK_FAILS(load_mem(b, &t), CNN_ERR_FORMAT,
                "m.idx: header: expected rank 1..4 in the magic's last byte, got rank 0");
    free(b.p);
    b = idx_make(0x08, 5, (uint32_t[]){1, 1, 1, 1, 1}, d6, 1);
    CHECK_FAILS(load_mem(b, &t), CNN_ERR_FORMAT, "got rank 5 (magic 0x00000805)");
    free(b.p);
    b = idx_make(0x08, 3, (uint32_t[]){2, 0, 3}, d6, 0);
    CHECK_FAILS(load_mem(b, &t), CNN_ERR_FORMAT,
                "expected dimensions >= 1, got 0 for dimension 1 of (2, 0, 3)");
    free(b.p);
    b = idx_make(0x08, 3, (uint32_t[]){0xffffffffu, 0xffffffffu, 0xffffffffu}, d6, 6);
    CHECK_FAILS(load_mem(b, &t), CNN_ERR_FORMAT,
                "dimensions (4294967295, 4294967295, 4294967295) overflow");
    free(b.p);
    /* (2^31, 2^31) ubyte: 2^62 elements fit int64, but not as 4-byte floats. */
    b = idx_make(0x08, 2, (uint32_t[]){0x80000000u, 0x80000000u}, d6, 6);
    CHECK_FAILS(load_mem(b, &t), CNN_ERR_FORMAT, "overflow");
    free(b.p);
    /* A header promising 4 GB over six bytes fails before allocating. */
    b = idx_make(0x0C, 2, (uint32_t[]){1000000, 1000}, d6, 6);
    CHECK_FAILS(load_mem(b, &t), CNN_ERR_FORMAT,
                "m.idx: data: expected 4000000000 bytes of data for int32 (1000000, 1000), "
                "file has 6");
    free(b.p);
    b = idx_make(0x08, 2, (uint32_t[]){2, 3}, d6, 5);
    CHECK_FAILS(load_mem(b, &t), CNN_ERR_FORMAT,
                "expected 6 bytes of data for ubyte (2, 3), file has 5");
    free(b.p);
    unsigned char d7[7] = {1, 2, 3, 4, 5, 6, 7};
    b = idx_make(0x08, 2, (uint32_t[]){2, 3}, d7, 7);
    CHECK_FAILS(load_mem(b, &t), CNN_ERR_FORMAT,
                "expected 6 bytes of data for ubyte (2, 3), file has 7 (trailing bytes)");
    free(b.p);
    b = idx_make(0x0B, 1, (uint32_t[]){3}, d7, 5);
    CHECK_FAILS(load_mem(b, &t), CNN_ERR_FORMAT,
                "expected 6 bytes of data for int16 (3), file has 5");
    free(b.p);

    CHECK_FAILS(cnn_dataset_load_idx_memory(NULL, 4, "x", &t), CNN_ERR_INVALID_ARGUMENT, "x");
    CHECK_FAILS(cnn_dataset_load_idx_memory(d6, 6, NULL, NULL), CNN_ERR_INVALID_ARGUMENT,
                "<memory>");
    CHECK_FAILS(cnn_dataset_load_idx(NULL, &t), CNN_ERR_INVALID_ARGUMENT, "load_idx");
    CHECK(t == NULL);
}

static void test_gzip_memory(void)
{
    cnn_tensor *t = NULL;
    unsigned char d6[6] = {9, 8, 7, 6, 5, 4};
    buf plain = idx_make(0x08, 2, (uint32_t[]){3, 2}, d6, 6);
    buf gz = gz_make(plain);
    CHECK(gz.p[0] == 0x1f && gz.p[1] == 0x8b);
    CHECK_OK(cnn_dataset_load_idx_memory(gz.p, gz.n, "g.gz", &t));
    check_shape(t, 2, 3, 2, 0, 0);
    if (t)
        test_close("gzip ubyte", t->data, (float[]){9, 8, 7, 6, 5, 4}, 6, 0, 0);
    cnn_tensor_free(t);

    /* Truncated: without the 8-byte CRC/length trailer, and cut mid-stream. */
    for (size_t cut = 1; cut < gz.n; cut += (cut < 12 ? 1 : 5))
        CHECK_FAILS(cnn_dataset_load_idx_memory(gz.p, gz.n - cut, "g.gz", &t), CNN_ERR_FORMAT,
                    "g.gz: ");
    CHECK_FAILS(cnn_dataset_load_idx_memory(gz.p, gz.n - 4, "g.gz", &t), CNN_ERR_FORMAT,
                "g.gz: gzip: stream is truncated");
    CHECK(t == NULL);

    /* Bad CRC, bad length. */
    buf bad = buf_copy(gz);
    bad.p[bad.n - 8] ^= 0x01;
    CHECK_FAILS(cnn_dataset_load_idx_memory(bad.p, bad.n, "g.gz", &t), CNN_ERR_FORMAT,
                "g.gz: gzip: corrupt compressed data (incorrect data check)");
    bad.p[bad.n - 8] ^= 0x01;
    bad.p[bad.n - 1] ^= 0x40;
    CHECK_FAILS(cnn_dataset_load_idx_memory(bad.p, bad.n, "g.gz", &t), CNN_ERR_FORMAT,
                "incorrect length check");
    free(bad.p);

    /* Garbage after the stream; a second member is fine. */
    bad = cat(gz, (buf){(unsigned char *)"xyz", 3});
    CHECK_FAILS(cnn_dataset_load_idx_memory(bad.p, bad.n, "g.gz", &t), CNN_ERR_FORMAT,
                "after the compressed data, got other bytes");
    free(bad.p);
    buf head = {plain.p, 8}, tail = {plain.p + 8, plain.n - 8};
    buf gz1 = gz_make(head), gz2 = gz_make(tail);
    buf two = cat(gz1, gz2);
    CHECK_OK(cnn_dataset_load_idx_memory(two.p, two.n, "two.gz", &t));
    check_shape(t, 2, 3, 2, 0, 0);
    cnn_tensor_free(t);
    free(gz1.p);
    free(gz2.p);
    free(two.p);

    /* Decompressed content too short, too long, empty. */
    buf shortp = {plain.p, plain.n - 1}, longp = cat(plain, (buf){(unsigned char *)"!", 1});
    buf gs = gz_make(shortp), gl = gz_make(longp), ge = gz_make((buf){(unsigned char *)"", 0});
    CHECK_FAILS(cnn_dataset_load_idx_memory(gs.p, gs.n, "g.gz", &t), CNN_ERR_FORMAT,
                "g.gz: data: expected 6 bytes of data for ubyte (3, 2), decompressed data has 5");
    CHECK_FAILS(cnn_dataset_load_idx_memory(gl.p, gl.n, "g.gz", &t), CNN_ERR_FORMAT,
                "expected 6 bytes of data for ubyte (3, 2), decompressed data has more "
                "(trailing bytes)");
    CHECK_FAILS(cnn_dataset_load_idx_memory(ge.p, ge.n, "g.gz", &t), CNN_ERR_FORMAT,
                "g.gz: gzip: expected an IDX header");
    free(gs.p);
    free(gl.p);
    free(longp.p);
    free(ge.p);
    buf hs = gz_make((buf){plain.p, 6});
    CHECK_FAILS(cnn_dataset_load_idx_memory(hs.p, hs.n, "g.gz", &t), CNN_ERR_FORMAT,
                "header: expected 12 bytes (magic and 2 dimensions), decompressed data has 6");
    free(hs.p);

    /* Corrupt deflate data. */
    bad = buf_copy(gz);
    bad.p[10] = 0xff; /* BTYPE 11: reserved block type */
    CHECK_FAILS(cnn_dataset_load_idx_memory(bad.p, bad.n, "g.gz", &t), CNN_ERR_FORMAT,
                "g.gz: gzip: corrupt compressed data");
    free(bad.p);

    /* A bomb: a tiny gzip whose header promises 1 GB fails before allocating. */
    buf bh = idx_make(0x08, 3, (uint32_t[]){1000, 1000, 1000}, NULL, 0);
    buf bg = gz_make(bh);
    CHECK_FAILS(cnn_dataset_load_idx_memory(bg.p, bg.n, "bomb.gz", &t), CNN_ERR_FORMAT,
                "bomb.gz: data: expected 1000000000 bytes of data for ubyte (1000, 1000, 1000), "
                "but a");
    free(bh.p);
    free(bg.p);
    CHECK(t == NULL);

    free(gz.p);
    free(plain.p);
}

static char tmpdir[64];

static char *tmp_path(const char *name)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static void write_file(const char *name, buf b)
{
    FILE *f = fopen(tmp_path(name), "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(fwrite(b.p, 1, b.n, f) == b.n);
    CHECK(fclose(f) == 0);
}

static void write_gzfile(const char *name, buf b)
{
    gzFile f = gzopen(tmp_path(name), "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(gzwrite(f, b.p, (unsigned)b.n) == (int)b.n);
    CHECK(gzclose(f) == Z_OK);
}

static void test_files(void)
{
    cnn_tensor *t = NULL;
    /* Larger than the 64 KiB read chunk, int16 so elements straddle reads. */
    enum { ROWS = 300, COLS = 257 };
    unsigned char *d = malloc(2 * ROWS * COLS);
    float *want = malloc(sizeof(float) * ROWS * COLS);
    for (int i = 0; i < ROWS * COLS; i++) {
        int v = (i * 37) % 65536 - 32768;
        put_be(d + 2 * i, (uint16_t)v, 2);
        want[i] = (float)v;
    }
    buf b = idx_make(0x0B, 2, (uint32_t[]){ROWS, COLS}, d, 2 * ROWS * COLS);
    write_file("big.idx", b);
    write_gzfile("big.idx.gz", b);
    CHECK_OK(cnn_dataset_load_idx(tmp_path("big.idx"), &t));
    check_shape(t, 2, ROWS, COLS, 0, 0);
    if (t)
        test_close("file int16", t->data, want, ROWS * COLS, 0, 0);
    cnn_tensor_free(t);
    CHECK_OK(cnn_dataset_load_idx(tmp_path("big.idx.gz"), &t));
    check_shape(t, 2, ROWS, COLS, 0, 0);
    if (t)
        test_close("gzip file int16", t->data, want, ROWS * COLS, 0, 0);
    cnn_tensor_free(t);

    /* Truncated and corrupted files on disk. */
    buf gz = gz_make(b);
    write_file("cut.gz", (buf){gz.p, gz.n / 2});
    CHECK_FAILS(cnn_dataset_load_idx(tmp_path("cut.gz"), &t), CNN_ERR_FORMAT,
                "cut.gz: gzip: stream is truncated");
    gz.p[gz.n - 6] ^= 0x10;
    write_file("crc.gz", gz);
    CHECK_FAILS(cnn_dataset_load_idx(tmp_path("crc.gz"), &t), CNN_ERR_FORMAT,
                "crc.gz: gzip: corrupt compressed data (incorrect data check)");
    write_file("short.idx", (buf){b.p, b.n - 3});
    CHECK_FAILS(cnn_dataset_load_idx(tmp_path("short.idx"), &t), CNN_ERR_FORMAT,
                "short.idx: data: expected 154200 bytes of data for int16 (300, 257), file has "
                "154197");
    write_file("empty.idx", (buf){b.p, 0});
    CHECK_FAILS(cnn_dataset_load_idx(tmp_path("empty.idx"), &t), CNN_ERR_FORMAT,
                "empty.idx: file: expected an IDX header");
    free(gz.p);
    free(b.p);
    free(d);
    free(want);

    CHECK_FAILS(cnn_dataset_load_idx(tmpdir, &t), CNN_ERR_IO,
                "expected a regular IDX file, got a directory");
    CHECK_FAILS(cnn_dataset_load_idx("/dev/zero", &t), CNN_ERR_IO,
                "/dev/zero: expected a regular IDX file, got a character device");
    CHECK_FAILS(cnn_dataset_load_idx(tmp_path("missing.idx"), &t), CNN_ERR_IO,
                "missing.idx: cannot open: ");
    CHECK(t == NULL);
}

/* An MNIST-layout directory with n images of h x w and n labels. */
static void write_mnist_pair(const char *images, const char *labels, int n, int h, int w,
                             bool gz)
{
    unsigned char *px = malloc((size_t)(n * h * w)), *lb = malloc((size_t)n);
    for (int i = 0; i < n * h * w; i++)
        px[i] = (unsigned char)(i % 256);
    for (int i = 0; i < n; i++)
        lb[i] = (unsigned char)(i % 10);
    buf x = idx_make(0x08, 3, (uint32_t[]){(uint32_t)n, (uint32_t)h, (uint32_t)w}, px,
                     (size_t)(n * h * w));
    buf y = idx_make(0x08, 1, (uint32_t[]){(uint32_t)n}, lb, (size_t)n);
    char xn[64], yn[64];
    snprintf(xn, sizeof xn, "%s%s", images, gz ? ".gz" : "");
    snprintf(yn, sizeof yn, "%s%s", labels, gz ? ".gz" : "");
    (gz ? write_gzfile : write_file)(xn, x);
    (gz ? write_gzfile : write_file)(yn, y);
    free(x.p);
    free(y.p);
    free(px);
    free(lb);
}

static void test_mnist(void)
{
    cnn_tensor *tx = NULL, *ty = NULL, *vx = NULL, *vy = NULL;
    static const char *const names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

    /* Only the test labels: the other outputs are NULL, so they are not read. */
    write_mnist_pair("unused-images", names[3], 4, 2, 2, false);
    CHECK_OK(cnn_dataset_load_mnist(tmpdir, NULL, NULL, NULL, &vy));
    check_shape(vy, 1, 4, 0, 0, 0);
    cnn_tensor_free(vy);
    CHECK_FAILS(cnn_dataset_load_mnist(tmpdir, &tx, &ty, &vx, &vy), CNN_ERR_IO,
                "train-images-idx3-ubyte, found neither");
    CHECK(!tx && !ty && !vx && !vy);

    /* train as gzip (with a stale plain copy that must be ignored), test plain. */
    write_mnist_pair(names[0], names[1], 3, 8, 8, false);
    write_mnist_pair(names[0], names[1], 6, 8, 8, true);
    write_mnist_pair(names[2], names[3], 2, 8, 8, false);
    CHECK_OK(cnn_dataset_load_mnist(tmpdir, &tx, &ty, &vx, &vy));
    check_shape(tx, 4, 6, 8, 8, 1);
    check_shape(ty, 1, 6, 0, 0, 0);
    check_shape(vx, 4, 2, 8, 8, 1);
    check_shape(vy, 1, 2, 0, 0, 0);
    if (tx && ty) {
        CHECK(tx->data[0] == 0.0f && tx->data[1] == 1.0f / 255.0f);
        CHECK(tx->data[255] == 1.0f);
        CHECK(ty->data[5] == 5.0f);
    }
    cnn_tensor_free(tx);
    cnn_tensor_free(ty);
    cnn_tensor_free(vx);
    cnn_tensor_free(vy);

    /* Count mismatch names both files and both counts; everything is freed. */
    write_mnist_pair("unused-images", names[3], 3, 1, 1, false);
    CHECK_FAILS(cnn_dataset_load_mnist(tmpdir, &tx, &ty, &vx, &vy), CNN_ERR_SHAPE,
                "t10k-images-idx3-ubyte has 2 images");
    char msg[512];
    snprintf(msg, sizeof msg, "%s/t10k-labels-idx1-ubyte has 3 labels", tmpdir);
    CHECK(strstr(cnn_last_error(), msg) != NULL);
    CHECK(!tx && !ty && !vx && !vy);

    /* Images must be rank-3 ubyte. */
    unsigned char px[4] = {0};
    buf x = idx_make(0x08, 2, (uint32_t[]){2, 2}, px, 4);
    write_file(names[2], x);
    free(x.p);
    CHECK_FAILS(cnn_dataset_load_mnist(tmpdir, &tx, &ty, &vx, NULL), CNN_ERR_FORMAT,
                "t10k-images-idx3-ubyte: header: expected ubyte images of rank 3 (magic "
                "0x00000803), got ubyte of rank 2 (magic 0x00000802)");
    CHECK(!tx && !ty && !vx);
    CHECK_FAILS(cnn_dataset_load_mnist(NULL, &tx, NULL, NULL, NULL), CNN_ERR_INVALID_ARGUMENT,
                "dir");
    CHECK_FAILS(cnn_dataset_load_mnist(tmp_path("nope"), &tx, NULL, NULL, NULL), CNN_ERR_IO,
                "found neither");

    for (int i = 0; i < 4; i++) {
        unlink(tmp_path(names[i]));
        char gzname[64];
        snprintf(gzname, sizeof gzname, "%s.gz", names[i]);
        unlink(tmp_path(gzname));
    }
    unlink(tmp_path("unused-images"));
}

static void test_fashion_mnist(void)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        test_skip("reading the real Fashion-MNIST files",
                  "/usr/share/datasets/fashion-mnist not found; Debian: dataset-fashion-mnist");
        return;
    }
    cnn_tensor *tx = NULL, *ty = NULL, *vx = NULL, *vy = NULL;
    CHECK_OK(cnn_dataset_load_mnist(dir, &tx, &ty, &vx, &vy));
    if (!tx || !ty || !vx || !vy)
        return;
    check_shape(tx, 4, 60000, 28, 28, 1);
    check_shape(ty, 1, 60000, 0, 0, 0);
    check_shape(vx, 4, 10000, 28, 28, 1);
    check_shape(vy, 1, 10000, 0, 0, 0);
    cnn_tensor *xs[2] = {tx, vx}, *ys[2] = {ty, vy};
    for (int k = 0; k < 2; k++) {
        float lo = 1, hi = 0;
        for (int64_t i = 0; i < cnn_tensor_size(xs[k]); i++) {
            lo = fminf(lo, xs[k]->data[i]);
            hi = fmaxf(hi, xs[k]->data[i]);
        }
        CHECK(lo == 0.0f && hi == 1.0f);
        bool labels_ok = true;
        int seen[10] = {0};
        for (int64_t i = 0; i < ys[k]->dims[0]; i++) {
            float v = ys[k]->data[i];
            if (!(v >= 0 && v <= 9 && v == floorf(v)))
                labels_ok = false;
            else
                seen[(int)v]++;
        }
        CHECK(labels_ok);
        for (int c = 0; c < 10; c++)
            CHECK(seen[c] > 0);
    }
    cnn_tensor_free(tx);
    cnn_tensor_free(ty);
    cnn_tensor_free(vx);
    cnn_tensor_free(vy);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_idx.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_types();
    test_malformed();
    test_gzip_memory();
    test_files();
    test_mnist();
    static const char *const files[] = {"big.idx", "big.idx.gz", "cut.gz", "crc.gz",
                                        "short.idx", "empty.idx"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        unlink(tmp_path(files[i]));
    CHECK(rmdir(tmpdir) == 0);
    test_fashion_mnist();
    return test_finish("test_idx");
}
