/* Reading files the way every loader must: errors name the file and what
 * failed, and a file that changes size while it is read is an error rather
 * than a silently cut input. */
#ifndef CNN_CORE_FILEIO_H
#define CNN_CORE_FILEIO_H

#include <stddef.h>

#include "cnn.h"

/* CNN_ERR_IO with "name: what: strerror(err)". */
cnn_status cnn_io_error(const char *name, const char *what, int err);
/* Reads exactly size bytes of fd into buf, then checks that nothing follows. */
cnn_status cnn_read_exact(int fd, unsigned char *buf, size_t size, const char *path);

#endif
