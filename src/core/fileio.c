#include "core/fileio.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

cnn_status cnn_io_error(const char *name, const char *what, int err)
{
    char msg[128];
    if (strerror_r(err, msg, sizeof msg) != 0)
        snprintf(msg, sizeof msg, "error %d", err);
    return cnn_fail(CNN_ERR_IO, "%s: %s: %s", name, what, msg);
}

cnn_status cnn_read_exact(int fd, unsigned char *buf, size_t size, const char *path)
{
    size_t got = 0;
    for (;;) {
        unsigned char probe;
        bool done = got == size;
        ssize_t n = done ? read(fd, &probe, 1) : read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cnn_io_error(path, "read", errno);
        if (n == 0 && done)
            return CNN_OK;
        if (n == 0 || done)
            return cnn_fail(CNN_ERR_IO, "%s: the file changed size while it was read", path);
        got += (size_t)n;
    }
}
