/* IDX data sets (MNIST / Fashion-MNIST), plain or gzip, from a file or memory.
 *
 * Layout (all big-endian):  00 00 TT RR | RR x uint32 dims | product(dims) values
 * TT: 08 ubyte, 09 sbyte, 0B int16, 0C int32, 0D float32, 0E float64.
 *
 * Everything is streamed through one small reader: the header is read and
 * checked first, then the tensor is allocated from the checked dimensions and
 * the data is converted chunk by chunk straight into it. A plain input's size
 * is compared with the header before allocating; for gzip, whose size is only
 * known once inflated, the header is checked against the most a deflate
 * stream of that many bytes can expand to, and inflation never goes past the
 * expected size plus one byte (to detect trailing data). */
#define ZLIB_CONST
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/tensor.h"

enum {
    IDX_CHUNK = 1 << 16,      /* staging and read size; a multiple of every element size */
    IDX_MAX_HEADER = 4 + 4 * CNN_MAX_RANK,
    IDX_DEFLATE_MAX_RATIO = 1032 /* deflate's limit: 258 bytes per 2-bit match */
};

/* ---- Element types ------------------------------------------------------ */

static int idx_type_size(int type)
{
    switch (type) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
    }
}

static const char *idx_type_name(int type)
{
    switch (type) {
    case 0x08: return "ubyte";
    case 0x09: return "sbyte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown";
    }
}

static uint32_t idx_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* n big-endian values of the given type at src -> floats at dst. */
static void idx_convert(int type, const unsigned char *src, size_t n, float *dst)
{
    switch (type) {
    case 0x08:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)src[i];
        break;
    case 0x09:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)((int)src[i] - (src[i] & 0x80 ? 256 : 0));
        break;
    case 0x0B:
        for (size_t i = 0; i < n; i++) {
            int u = src[2 * i] << 8 | src[2 * i + 1];
            dst[i] = (float)(u - (u & 0x8000 ? 0x10000 : 0));
        }
        break;
    case 0x0C:
        for (size_t i = 0; i < n; i++) {
            uint32_t u = idx_be32(src + 4 * i);
            dst[i] = (float)((int64_t)u - (u & 0x80000000u ? INT64_C(0x100000000) : 0));
        }
        break;
    case 0x0D:
        for (size_t i = 0; i < n; i++) {
            uint32_t u = idx_be32(src + 4 * i);
            memcpy(&dst[i], &u, sizeof u);
        }
        break;
    case 0x0E:
        for (size_t i = 0; i < n; i++) {
            uint64_t u = (uint64_t)idx_be32(src + 8 * i) << 32 | idx_be32(src + 8 * i + 4);
            double d;
            memcpy(&d, &u, sizeof d);
            dst[i] = (float)d;
        }
        break;
    }
}

/* Index i (row-major) of a tensor with these dims as "(a, b, c)". */
static void idx_format_index(int64_t i, int rank, const int64_t *dims, char *buf, size_t cap)
{
    int64_t at[CNN_MAX_RANK];
    for (int d = rank - 1; d >= 0; d--) {
        at[d] = i % dims[d];
        i /= dims[d];
    }
    size_t used = (size_t)snprintf(buf, cap, "(");
    for (int d = 0; d < rank && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, d ? ", %lld" : "%lld", (long long)at[d]);
    if (used < cap)
        snprintf(buf + used, cap - used, ")");
}

/* Float data must be finite: a NaN or infinity in a data set would only
 * surface as a NaN loss many steps into training. src holds the n raw
 * values that became dst[0..n), the first of them element first. */
static cnn_status idx_check_finite(const char *name, int type, const unsigned char *src,
                                   const float *dst, size_t n, int64_t first, int rank,
                                   const int64_t *dims, const char *shape)
{
    if (type != 0x0D && type != 0x0E)
        return CNN_OK; /* integers always convert to finite floats */
    for (size_t i = 0; i < n; i++) {
        if (dst[i] - dst[i] == 0.0f)
            continue;
        char at[96];
        idx_format_index(first + (int64_t)i, rank, dims, at, sizeof at);
        if (type == 0x0E) {
            uint64_t u = (uint64_t)idx_be32(src + 8 * i) << 32 | idx_be32(src + 8 * i + 4);
            double d;
            memcpy(&d, &u, sizeof d);
            if (d - d == 0.0)
                return cnn_fail(CNN_ERR_NUMERIC,
                                "%s: data: the float64 value at index %s of %s is %g, too large"
                                " for float32; the data must be finite float32 numbers",
                                name, at, shape, d);
        }
        return cnn_fail(CNN_ERR_NUMERIC,
                        "%s: data: the %s value at index %s of %s is %s; the data must be"
                        " finite numbers",
                        name, idx_type_name(type), at, shape,
                        dst[i] != dst[i] ? "NaN" : dst[i] > 0 ? "+infinity" : "-infinity");
    }
    return CNN_OK;
}

/* ---- The reader: raw bytes from memory or a file, optionally inflated --- */

typedef struct idx_reader {
    const char *name;
    const unsigned char *mem; /* memory input; NULL when reading fd */
    size_t mem_size, mem_pos;
    int fd;
    uint64_t raw_size;        /* size of the whole (possibly compressed) input */
    const unsigned char *in;  /* raw bytes available and not yet consumed */
    size_t in_len;
    bool in_eof;
    bool gzip, zinit, member_end, done;
    int members;              /* gzip members finished so far */
    z_stream zs;
    unsigned char inbuf[IDX_CHUNK];
    unsigned char stage[IDX_CHUNK];
} idx_reader;

/* Makes the next raw bytes available in r->in (none at the end of input). */
static cnn_status idx_raw_fill(idx_reader *r)
{
    if (r->in_len || r->in_eof)
        return CNN_OK;
    if (r->mem) {
        size_t left = r->mem_size - r->mem_pos;
        r->in = r->mem + r->mem_pos;
        r->in_len = left < UINT_MAX ? left : UINT_MAX; /* zlib counts in uInt */
        r->mem_pos += r->in_len;
    } else {
        ssize_t n;
        do
            n = read(r->fd, r->inbuf, sizeof r->inbuf);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return cnn_io_error(r->name, "read", errno);
        r->in = r->inbuf;
        r->in_len = (size_t)n;
    }
    r->in_eof = r->in_len == 0;
    return CNN_OK;
}

static cnn_status idx_read_plain(idx_reader *r, unsigned char *out, size_t n, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        cnn_status st = idx_raw_fill(r);
        if (st)
            return st;
        if (!r->in_len)
            break;
        size_t k = n - done < r->in_len ? n - done : r->in_len;
        memcpy(out + done, r->in, k);
        r->in += k;
        r->in_len -= k;
        done += k;
    }
    *got = done;
    return CNN_OK;
}

/* Inflates up to n (<= IDX_CHUNK) bytes. Concatenated gzip members are one
 * stream, as gzip -d treats them. Fails on a truncated stream, a bad CRC or
 * length, and anything after the last member that is not another member. */
static cnn_status idx_read_gzip(idx_reader *r, unsigned char *out, size_t n, size_t *got)
{
    z_stream *zs = &r->zs;
    zs->next_out = out;
    zs->avail_out = (uInt)n;
    while (zs->avail_out && !r->done) {
        cnn_status st = idx_raw_fill(r);
        if (st)
            return st;
        if (r->member_end) {
            if (!r->in_len) {
                r->done = true;
                break;
            }
            inflateReset(zs);
            r->member_end = false;
        }
        if (!r->in_len)
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: gzip: stream is truncated: the input ends before the end of "
                            "the compressed data and its CRC",
                            r->name);
        zs->next_in = r->in;
        zs->avail_in = (uInt)r->in_len;
        int ret = inflate(zs, Z_NO_FLUSH);
        r->in = zs->next_in;
        r->in_len = zs->avail_in;
        if (ret == Z_STREAM_END) {
            r->member_end = true;
            r->members++;
        } else if (ret == Z_MEM_ERROR) {
            return cnn_fail(CNN_ERR_NO_MEMORY, "%s: gzip: out of memory", r->name);
        } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
            const char *why = zs->msg ? zs->msg : "unknown error";
            if (r->members && zs->total_out == 0)
                return cnn_fail(CNN_ERR_FORMAT,
                                "%s: gzip: expected the end of the file or another gzip member "
                                "after the compressed data, got other bytes (%s)",
                                r->name, why);
            return cnn_fail(CNN_ERR_FORMAT, "%s: gzip: corrupt compressed data (%s)", r->name,
                            why);
        }
    }
    *got = n - zs->avail_out;
    return CNN_OK;
}

/* Reads up to n (<= IDX_CHUNK) decoded bytes; *got < n only at the end. */
static cnn_status idx_read(idx_reader *r, unsigned char *out, size_t n, size_t *got)
{
    return r->gzip ? idx_read_gzip(r, out, n, got) : idx_read_plain(r, out, n, got);
}

/* Sets up r (already zeroed, mem/fd/raw_size filled) given its first bytes. */
static cnn_status idx_reader_start(idx_reader *r, const unsigned char *head, size_t head_len)
{
    r->gzip = head_len >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    if (!r->gzip)
        return CNN_OK;
    int ret = inflateInit2(&r->zs, 15 + 16); /* 32K window, gzip wrapper only */
    if (ret != Z_OK)
        return cnn_fail(ret == Z_MEM_ERROR ? CNN_ERR_NO_MEMORY : CNN_ERR_IO,
                        "%s: gzip: cannot start inflating (zlib error %d)", r->name, ret);
    r->zinit = true;
    return CNN_OK;
}

static void idx_reader_free(idx_reader *r)
{
    if (!r)
        return;
    if (r->zinit)
        inflateEnd(&r->zs);
    if (!r->mem && r->fd >= 0)
        close(r->fd);
    free(r);
}

/* ---- Parsing -------------------------------------------------------------- */

static void idx_format_dims(int rank, const int64_t *dims, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < rank && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, i ? ", %lld" : "%lld",
                                 (long long)dims[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, ")");
}

/* What the caller requires of the file (0 = anything), for the MNIST loader. */
typedef struct idx_expect {
    int type, rank;
    const char *what; /* "images", "labels" */
} idx_expect;

static cnn_status idx_decode(idx_reader *r, idx_expect want, cnn_tensor **out)
{
    const char *has = r->gzip ? "decompressed data has" : "file has";
    unsigned char head[IDX_MAX_HEADER];
    size_t got;
    cnn_status st = idx_read(r, head, 4, &got);
    if (st)
        return st;
    if (got == 0)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: %s: expected an IDX header (magic 0x0000TTRR and RR dimensions), "
                        "got an empty %s",
                        r->name, r->gzip ? "gzip" : "file", r->gzip ? "stream" : "file");
    if (got < 4)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: header: expected at least 8 bytes (magic and one dimension), %s %zu",
                        r->name, has, got);
    uint32_t magic = idx_be32(head);
    int type = head[2], rank = head[3], esize = idx_type_size(type);
    if (head[0] || head[1] || !esize)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: header: expected magic 0x0000TTRR with a known type byte TT "
                        "(08 ubyte, 09 sbyte, 0B int16, 0C int32, 0D float32, 0E float64), "
                        "got 0x%08X",
                        r->name, (unsigned)magic);
    if (rank < 1 || rank > CNN_MAX_RANK)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: header: expected rank 1..%d in the magic's last byte, got rank %d "
                        "(magic 0x%08X)",
                        r->name, CNN_MAX_RANK, rank, (unsigned)magic);
    size_t header_bytes = 4 + 4 * (size_t)rank;
    st = idx_read(r, head + 4, header_bytes - 4, &got);
    if (st)
        return st;
    if (got < header_bytes - 4)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: header: expected %zu bytes (magic and %d dimension%s), %s %zu",
                        r->name, header_bytes, rank, rank == 1 ? "" : "s", has, 4 + got);
    int64_t dims[CNN_MAX_RANK];
    for (int i = 0; i < rank; i++)
        dims[i] = idx_be32(head + 4 + 4 * i);
    char shape[96];
    idx_format_dims(rank, dims, shape, sizeof shape);
    for (int i = 0; i < rank; i++)
        if (dims[i] == 0)
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: header: expected dimensions >= 1, got 0 for dimension %d of %s",
                            r->name, i, shape);
    if ((want.type && type != want.type) || (want.rank && rank != want.rank))
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: header: expected %s%s%s of rank %d (magic 0x0000%02X%02X), "
                        "got %s of rank %d (magic 0x%08X)",
                        r->name, want.type ? idx_type_name(want.type) : "", want.type ? " " : "",
                        want.what, want.rank, want.type ? want.type : type, want.rank,
                        idx_type_name(type), rank, (unsigned)magic);

    /* Every size below is checked before the tensor is allocated. */
    int64_t count, data_bytes, float_bytes, total;
    if (!cnn_dims_product(rank, dims, &count) || cnn_mul_overflows(count, esize, &data_bytes)
        || cnn_mul_overflows(count, (int64_t)sizeof(float), &float_bytes)
        || (uint64_t)float_bytes > SIZE_MAX
        || __builtin_add_overflow(data_bytes, (int64_t)header_bytes, &total))
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: header: dimensions %s overflow: their product times %d bytes does "
                        "not fit in 64 bits",
                        r->name, shape, (int)sizeof(float));
    if (!r->gzip && r->raw_size != (uint64_t)total && r->raw_size >= header_bytes)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: data: expected %lld bytes of data for %s %s, file has %llu%s",
                        r->name, (long long)data_bytes, idx_type_name(type), shape,
                        (unsigned long long)(r->raw_size - header_bytes),
                        r->raw_size > (uint64_t)total ? " (trailing bytes)" : "");
    int64_t most;
    if (r->gzip && !cnn_mul_overflows((int64_t)r->raw_size, IDX_DEFLATE_MAX_RATIO, &most)
        && total > most)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: data: expected %lld bytes of data for %s %s, but a %llu-byte gzip "
                        "file inflates to at most %lld bytes",
                        r->name, (long long)data_bytes, idx_type_name(type), shape,
                        (unsigned long long)r->raw_size, (long long)most);

    /* Within the size checks a file can still be big: its floats must fit
     * the default memory budget, as everything the library allocates does. */
    if (float_bytes > CNN_DEFAULT_MAX_MEMORY)
        return cnn_fail(CNN_ERR_NO_MEMORY,
                        "%s: data: %s %s needs %lld bytes as float32, more than the memory"
                        " budget of %lld bytes",
                        r->name, idx_type_name(type), shape, (long long)float_bytes,
                        (long long)CNN_DEFAULT_MAX_MEMORY);
    cnn_tensor *t;
    st = cnn_tensor_create(&t, rank, dims);
    if (st) {
        cnn_error_prefix("%s", r->name);
        return st;
    }
    float *dst = t->data;
    int64_t left = data_bytes;
    while (left > 0) {
        size_t want_now = left < IDX_CHUNK ? (size_t)left : IDX_CHUNK;
        st = idx_read(r, r->stage, want_now, &got);
        if (st)
            goto fail;
        idx_convert(type, r->stage, got / (size_t)esize, dst);
        st = idx_check_finite(r->name, type, r->stage, dst, got / (size_t)esize, dst - t->data,
                              rank, dims, shape);
        if (st)
            goto fail;
        dst += got / (size_t)esize;
        left -= (int64_t)got;
        if (got < want_now) {
            st = cnn_fail(CNN_ERR_FORMAT,
                          "%s: data: expected %lld bytes of data for %s %s, %s %lld",
                          r->name, (long long)data_bytes, idx_type_name(type), shape, has,
                          (long long)(data_bytes - left));
            goto fail;
        }
    }
    /* One more byte: must be the end (for gzip this also checks the CRC). */
    st = idx_read(r, r->stage, 1, &got);
    if (st)
        goto fail;
    if (got) {
        st = cnn_fail(CNN_ERR_FORMAT,
                      "%s: data: expected %lld bytes of data for %s %s, %s more (trailing bytes)",
                      r->name, (long long)data_bytes, idx_type_name(type), shape, has);
        goto fail;
    }
    *out = t;
    return CNN_OK;
fail:
    cnn_tensor_free(t);
    return st;
}

static cnn_status idx_load_memory(const void *bytes, size_t size, const char *name,
                                  idx_expect want, cnn_tensor **out)
{
    idx_reader *r = calloc(1, sizeof *r);
    if (!r)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", name);
    r->name = name;
    r->mem = size ? bytes : (const unsigned char *)"";
    r->mem_size = size;
    r->fd = -1;
    r->raw_size = size;
    cnn_status st = idx_reader_start(r, r->mem, size);
    if (!st)
        st = idx_decode(r, want, out);
    idx_reader_free(r);
    return st;
}

static cnn_status idx_load_file(const char *path, idx_expect want, cnn_tensor **out)
{
    /* Streamed, not read whole: a file is decoded chunk by chunk (through
     * zlib when gzipped) straight into its float tensor, so the raw bytes
     * never take memory beside it; their size is checked against the
     * header's dimensions instead of a cap of its own (idx_decode). */
    int fd;
    size_t size;
    cnn_status st = cnn_file_open_read(path, "IDX file", UINT64_MAX, &fd, &size);
    if (st)
        return st;
    idx_reader *r = calloc(1, sizeof *r);
    if (!r) {
        close(fd);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    r->name = path;
    r->fd = fd;
    r->raw_size = (uint64_t)size;
    unsigned char head[2];
    ssize_t n;
    do
        n = pread(fd, head, sizeof head, 0);
    while (n < 0 && errno == EINTR);
    st = n < 0 ? cnn_io_error(path, "read", errno) : idx_reader_start(r, head, (size_t)n);
    if (!st)
        st = idx_decode(r, want, out);
    idx_reader_free(r);
    return st;
}

/* ---- Public API ----------------------------------------------------------- */

cnn_status cnn_dataset_load_idx(const char *path, cnn_tensor **out)
{
    if (out)
        *out = NULL;
    if (!path || !out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "load_idx: path and out must not be NULL");
    return idx_load_file(path, (idx_expect){0}, out);
}

cnn_status cnn_dataset_load_idx_memory(const void *bytes, size_t size, const char *name,
                                       cnn_tensor **out)
{
    if (out)
        *out = NULL;
    if (!name)
        name = "<memory>";
    if (!out || (!bytes && size))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s: load_idx_memory: out must not be NULL, nor bytes when size > 0",
                        name);
    return idx_load_memory(bytes, size, name, (idx_expect){0}, out);
}

/* dir/base.gz if it exists, else dir/base; *path is malloc'd. */
static cnn_status mnist_find(const char *dir, const char *base, char **path)
{
    size_t cap = strlen(dir) + strlen(base) + 8;
    char *gz = malloc(cap), *plain = malloc(cap);
    if (!gz || !plain) {
        free(gz);
        free(plain);
        return cnn_fail(CNN_ERR_NO_MEMORY, "mnist: out of memory");
    }
    snprintf(gz, cap, "%s/%s.gz", dir, base);
    snprintf(plain, cap, "%s/%s", dir, base);
    struct stat sb;
    cnn_status st = CNN_OK;
    *path = NULL;
    if (stat(gz, &sb) == 0)
        *path = gz;
    else if (errno != ENOENT)
        st = cnn_io_error(gz, "cannot access", errno);
    else if (stat(plain, &sb) == 0)
        *path = plain;
    else if (errno != ENOENT)
        st = cnn_io_error(plain, "cannot access", errno);
    else
        st = cnn_fail(CNN_ERR_IO, "mnist: expected %s or %s, found neither", gz, plain);
    if (*path != gz)
        free(gz);
    if (*path != plain)
        free(plain);
    return st;
}

static cnn_status mnist_load(const char *dir, const char *base, bool images, cnn_tensor **out,
                             char **path)
{
    cnn_status st = mnist_find(dir, base, path);
    if (st)
        return st;
    idx_expect want = images ? (idx_expect){.type = 0x08, .rank = 3, .what = "images"}
                             : (idx_expect){.rank = 1, .what = "labels"};
    st = idx_load_file(*path, want, out);
    if (st || !images)
        return st;
    /* Pixels 0..255 -> [0, 1]; dividing keeps 255 exactly 1. */
    int64_t n = cnn_tensor_size(*out);
    for (int64_t i = 0; i < n; i++)
        (*out)->data[i] /= 255.0f;
    return cnn_tensor_expand_dims(*out);
}

/* Loads one (images, labels) pair; either output may be NULL. */
static cnn_status mnist_pair(const char *dir, const char *images_base, const char *labels_base,
                             cnn_tensor **x, cnn_tensor **y)
{
    char *xpath = NULL, *ypath = NULL;
    cnn_status st = CNN_OK;
    if (x)
        st = mnist_load(dir, images_base, true, x, &xpath);
    if (!st && y)
        st = mnist_load(dir, labels_base, false, y, &ypath);
    if (!st && x && y && (*x)->dims[0] != (*y)->dims[0])
        st = cnn_fail(CNN_ERR_SHAPE, "mnist: expected as many labels as images: %s has %lld "
                      "images, %s has %lld labels",
                      xpath, (long long)(*x)->dims[0], ypath, (long long)(*y)->dims[0]);
    free(xpath);
    free(ypath);
    return st;
}

cnn_status cnn_dataset_load_mnist(const char *dir, cnn_tensor **train_x, cnn_tensor **train_y,
                                  cnn_tensor **test_x, cnn_tensor **test_y)
{
    cnn_tensor **outs[] = {train_x, train_y, test_x, test_y};
    for (int i = 0; i < 4; i++)
        if (outs[i])
            *outs[i] = NULL;
    if (!dir)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "load_mnist: dir must not be NULL");
    cnn_status st = mnist_pair(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                               train_x, train_y);
    if (!st)
        st = mnist_pair(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", test_x,
                        test_y);
    if (st)
        for (int i = 0; i < 4; i++)
            if (outs[i]) {
                cnn_tensor_free(*outs[i]);
                *outs[i] = NULL;
            }
    return st;
}
