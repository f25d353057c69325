/* The one way the library reads and writes files.
 *
 * Reading: a loader opens its file with cnn_file_open_read (never blocks on
 * a FIFO, refuses anything but a regular file and files over its size cap)
 * and reads it whole with cnn_file_read_fd, or both at once with
 * cnn_file_read. Errors name the file and what failed, and a file that
 * changes size while it is read is an error rather than a silently cut
 * input.
 *
 * Writing: every file is written atomically (cnn_atomic_open, _write,
 * _close): a temporary file beside the target, fsync, the final mode,
 * rename, fsync of the directory. The target is replaced whole or not at
 * all, and only if it is a regular file (or missing). A new file gets
 * 0666 & ~umask, as every Unix tool's do; a replaced one keeps its mode. */
#ifndef CNN_CORE_FILEIO_H
#define CNN_CORE_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cnn.h"

/* CNN_ERR_IO with "name: what: strerror(err)"; CNN_ERR_NO_MEMORY when err
 * is ENOMEM (opendir, fopen and the like allocate: that failure is memory,
 * not the file). */
cnn_status cnn_io_error(const char *name, const char *what, int err);
/* Reads exactly size bytes of fd into buf, then checks that nothing follows. */
cnn_status cnn_read_exact(int fd, unsigned char *buf, size_t size, const char *path);

/* Opens path for reading. kind names the file in messages ("model file":
 * "x: expected a regular model file, got a FIFO"); a file larger than
 * max_bytes is refused unread (CNN_ERR_FORMAT). On success *fd is open
 * (close it) and *size is the file's size. */
cnn_status cnn_file_open_read(const char *path, const char *kind, uint64_t max_bytes, int *fd,
                              size_t *size);
/* Reads the size bytes of fd (from its start) into a malloc'd buffer with
 * a NUL after them (text parsers want one). */
cnn_status cnn_file_read_fd(int fd, size_t size, const char *path, unsigned char **out);
/* cnn_file_open_read + cnn_file_read_fd + close. */
cnn_status cnn_file_read(const char *path, const char *kind, uint64_t max_bytes,
                         unsigned char **out, size_t *size);

/* A file being written atomically. */
typedef struct {
    const char *path; /* the target as given: messages name it */
    char *target;     /* what the rename replaces: path, or the file a symlink names */
    char *tmp;        /* the temporary file beside target */
    int fd;           /* open on tmp */
    mode_t mode;      /* the mode it gets before the rename */
} cnn_atomic_file;

/* Checks the target (missing, a regular file, or a symlink to one) and
 * creates the temporary file. On failure nothing was created. */
cnn_status cnn_atomic_open(cnn_atomic_file *a, const char *path);
/* Writes n bytes to the temporary file. */
cnn_status cnn_atomic_write(cnn_atomic_file *a, const void *bytes, size_t n);
/* Finishes: with st == CNN_OK commits (fsync, mode, rename, directory
 * fsync); otherwise, or when committing fails, removes the temporary file
 * and leaves the target as it was. Returns the final status; a is done. */
cnn_status cnn_atomic_close(cnn_atomic_file *a, cnn_status st);

#endif
