/* Telling model formats apart by content alone, never by the file's name;
 * a file is read through the library's one reader (fileio.c), so a FIFO or
 * a device is refused rather than waited on.
 *
 * The signatures: .cnn files start with "CNNMODEL" (model/file.c), int8
 * quantized models with "CNNQUANT" (quant/qmodel_file.c); Keras's
 * legacy .h5 files are HDF5, whose signature \x89HDF\r\n\x1a\n HDF5 looks
 * for at 0, 512, 1024, 2048, ... (a user block may come first); Keras 3's
 * .keras files are zip archives ("PK\3\4", or "PK\5\6" when empty).
 * Anything else is taken for a description, whose reader says what it
 * expected if it is not one. */
#include "core/model_format.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fileio.h"

static const unsigned char CNN_MAGIC[8] = {'C', 'N', 'N', 'M', 'O', 'D', 'E', 'L'};
static const unsigned char QUANT_MAGIC[8] = {'C', 'N', 'N', 'Q', 'U', 'A', 'N', 'T'};
static const unsigned char HDF5_MAGIC[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
/* a file shorter than the magic that starts with this much of it is a cut
 * .cnn file: its loader says so */
#define CNN_MAGIC_PREFIX 4
/* where HDF5's search for its signature stops */
#define HDF5_LAST_OFFSET ((uint64_t)1 << 30)

/* Where the bytes come from: a buffer, or an open file read with pread. */
typedef struct {
    const unsigned char *bytes; /* NULL: read fd */
    int fd;
    uint64_t size;
    const char *path;
    cnn_status error; /* a failed read */
} source;

/* Reads n bytes at off into buf; false if they are not all there. */
static bool read_at(source *s, uint64_t off, unsigned char *buf, size_t n)
{
    if (off > s->size || n > s->size - off)
        return false;
    if (s->bytes) {
        memcpy(buf, s->bytes + off, n);
        return true;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(s->fd, buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            s->error = r < 0 ? cnn_io_error(s->path, "read", errno)
                             : cnn_fail(CNN_ERR_IO, "%s: the file changed size while it was read",
                                        s->path);
            return false;
        }
        got += (size_t)r;
    }
    return true;
}

static cnn_model_format detect(source *s)
{
    unsigned char b[8];
    size_t head = s->size < sizeof b ? (size_t)s->size : sizeof b;
    if (!read_at(s, 0, b, head))
        return CNN_MODEL_FORMAT_DESCRIPTION;
    if (head >= CNN_MAGIC_PREFIX && memcmp(b, CNN_MAGIC, head) == 0)
        return CNN_MODEL_FORMAT_CNN;
    if (head >= CNN_MAGIC_PREFIX && memcmp(b, QUANT_MAGIC, head) == 0)
        return CNN_MODEL_FORMAT_QUANTIZED;
    if (head >= 4 && b[0] == 'P' && b[1] == 'K'
        && ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6)))
        return CNN_MODEL_FORMAT_KERAS_ZIP;
    for (uint64_t at = 0; at <= HDF5_LAST_OFFSET; at = at ? 2 * at : 512) {
        if (at && !read_at(s, at, b, sizeof b))
            break;
        if (!at && head < sizeof b)
            break;
        if (memcmp(b, HDF5_MAGIC, sizeof b) == 0)
            return CNN_MODEL_FORMAT_KERAS_H5;
    }
    return CNN_MODEL_FORMAT_DESCRIPTION;
}

cnn_model_format cnn_model_format_of(const unsigned char *b, size_t size)
{
    source s = {.bytes = size ? b : (const unsigned char *)"", .size = size};
    return detect(&s);
}

cnn_status cnn_model_file_format(const char *path, cnn_model_format *out)
{
    if (!path || !out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "model_file_format: path and out must not be"
                        " NULL");
    int fd;
    size_t size;
    cnn_status st = cnn_file_open_read(path, "model file", UINT64_MAX, &fd, &size);
    if (st)
        return st;
    source s = {.fd = fd, .size = size, .path = path};
    cnn_model_format f = detect(&s);
    close(fd);
    if (s.error)
        return s.error;
    *out = f;
    return CNN_OK;
}

