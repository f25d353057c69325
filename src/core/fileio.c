/* realpath() is XSI: glibc declares it only with _XOPEN_SOURCE. */
#define _XOPEN_SOURCE 700
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

cnn_status cnn_io_error(const char *name, const char *what, int err)
{
    char msg[128];
    if (strerror_r(err, msg, sizeof msg) != 0)
        snprintf(msg, sizeof msg, "error %d", err);
    return cnn_fail(err == ENOMEM ? CNN_ERR_NO_MEMORY : CNN_ERR_IO, "%s: %s: %s", name, what, msg);
}

/* "a FIFO": what a file that is not a regular one is, for messages. */
static const char *file_type(mode_t mode)
{
    return S_ISDIR(mode)    ? "a directory"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISSOCK(mode) ? "a socket"
           : S_ISLNK(mode)  ? "a symbolic link"
                            : "a special file";
}

/* ---- Reading --------------------------------------------------------------------------- */

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

cnn_status cnn_file_open_read(const char *path, const char *kind, uint64_t max_bytes, int *fd,
                              size_t *size)
{
    *fd = -1;
    *size = 0;
    /* O_NONBLOCK so that a FIFO does not hang open(); no effect on regular files. */
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (f < 0)
        return cnn_io_error(path, "cannot open", errno);
    struct stat sb;
    cnn_status st = CNN_OK;
    if (fstat(f, &sb) != 0)
        st = cnn_io_error(path, "cannot stat", errno);
    else if (!S_ISREG(sb.st_mode))
        st = cnn_fail(CNN_ERR_IO, "%s: expected a regular %s, got %s", path, kind,
                      file_type(sb.st_mode));
    /* SIZE_MAX - 1: cnn_file_read_fd adds a NUL */
    else if (sb.st_size < 0 || (uint64_t)sb.st_size > max_bytes
             || (uint64_t)sb.st_size > (uint64_t)SIZE_MAX - 1)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: the %s is %lld bytes, more than the %llu allowed", path,
                      kind, (long long)sb.st_size, (unsigned long long)max_bytes);
    if (st) {
        close(f);
        return st;
    }
    *fd = f;
    *size = (size_t)sb.st_size;
    return CNN_OK;
}

cnn_status cnn_file_read_fd(int fd, size_t size, const char *path, unsigned char **out)
{
    *out = NULL;
    unsigned char *buf = malloc(size + 1);
    if (!buf)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: cannot allocate %zu bytes to read it", path, size);
    cnn_status st = cnn_read_exact(fd, buf, size, path);
    if (st) {
        free(buf);
        return st;
    }
    buf[size] = '\0';
    *out = buf;
    return CNN_OK;
}

cnn_status cnn_file_read(const char *path, const char *kind, uint64_t max_bytes,
                         unsigned char **out, size_t *size)
{
    *out = NULL;
    int fd;
    cnn_status st = cnn_file_open_read(path, kind, max_bytes, &fd, size);
    if (st)
        return st;
    st = cnn_file_read_fd(fd, *size, path, out);
    close(fd);
    return st;
}

/* ---- The mode of a new file ------------------------------------------------------------ */

/* The umask cannot be read without setting it (umask() does both), and it
 * is process-wide: a umask(x); umask(old) pair races with every other
 * thread creating a file in between. So it is read where Linux reports it
 * without changing it, the "Umask:" line of /proc/self/status (since
 * Linux 4.7): exact at every call, so a program that changes its umask is
 * followed. Only where /proc is missing (some chroots and sandboxes) the
 * pair is used, once per process (pthread_once), with x = 077: a file
 * another thread creates in that instant is at worst too private, never
 * too open. fallback_umask is written only inside that once-routine. */
static mode_t fallback_umask;

static void read_umask_by_setting(void)
{
    fallback_umask = umask(077);
    umask(fallback_umask);
}

static mode_t process_umask(void)
{
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[1024]; /* "Umask:" is the second line, after the short "Name:" */
        ssize_t n;
        do
            n = read(fd, buf, sizeof buf - 1);
        while (n < 0 && errno == EINTR);
        close(fd);
        const char *line = NULL;
        if (n > 0) {
            buf[n] = '\0';
            line = strstr(buf, "\nUmask:");
        }
        char *end;
        unsigned long v = line ? strtoul(line + 7, &end, 8) : 0;
        if (line && end != line + 7 && v <= 0777)
            return (mode_t)v;
    }
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, read_umask_by_setting);
    return fallback_umask;
}

/* ---- Writing atomically ---------------------------------------------------------------- */

static cnn_status refuse(const char *path, const char *through, mode_t mode)
{
    return cnn_fail(CNN_ERR_IO, "%s: expected a regular file to replace, got %s%s; it is left"
                    " untouched", path, through, file_type(mode));
}

/* Decides what the rename will replace and the mode the new file gets.
 * Only a regular file is ever replaced: a directory, a device node, a FIFO
 * or a socket is refused, and left untouched. A symbolic link to a regular
 * file is followed, so the link stays and its file is replaced (a link to
 * anything else, or to nothing, is refused). An existing file keeps its
 * permission bits, as editors and sed -i keep them (not its set-id bits,
 * nor its owner); a new file gets 0666 & ~umask. */
static cnn_status choose_target(cnn_atomic_file *a)
{
    struct stat sb;
    if (lstat(a->path, &sb) != 0) {
        if (errno != ENOENT)
            return cnn_io_error(a->path, "cannot inspect it before replacing it", errno);
        a->mode = 0666 & ~process_umask();
        a->target = strdup(a->path);
    } else if (S_ISLNK(sb.st_mode)) {
        struct stat to;
        if (stat(a->path, &to) != 0)
            return cnn_io_error(a->path, "refusing to replace a symbolic link that cannot be"
                                " followed", errno);
        if (!S_ISREG(to.st_mode))
            return refuse(a->path, "a symbolic link to ", to.st_mode);
        a->mode = to.st_mode & 0777;
        a->target = realpath(a->path, NULL);
        if (!a->target && errno != ENOMEM)
            return cnn_io_error(a->path, "cannot follow the symbolic link", errno);
    } else if (!S_ISREG(sb.st_mode)) {
        return refuse(a->path, "", sb.st_mode);
    } else {
        a->mode = sb.st_mode & 0777;
        a->target = strdup(a->path);
    }
    if (!a->target)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", a->path);
    return CNN_OK;
}

cnn_status cnn_atomic_open(cnn_atomic_file *a, const char *path)
{
    *a = (cnn_atomic_file){.path = path, .fd = -1};
    cnn_status st = choose_target(a);
    static const char suffix[] = ".tmp.XXXXXX";
    size_t n = a->target ? strlen(a->target) : 0;
    if (!st && !(a->tmp = malloc(n + sizeof suffix)))
        st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", path);
    if (!st) {
        memcpy(a->tmp, a->target, n);
        memcpy(a->tmp + n, suffix, sizeof suffix);
        a->fd = mkstemp(a->tmp);
        if (a->fd < 0)
            st = cnn_io_error(path, "cannot create a temporary file beside it", errno);
    }
    if (st) {
        free(a->target);
        free(a->tmp);
        *a = (cnn_atomic_file){.path = path, .fd = -1};
        return st;
    }
    (void)fcntl(a->fd, F_SETFD, FD_CLOEXEC);
    return CNN_OK;
}

cnn_status cnn_atomic_write(cnn_atomic_file *a, const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    while (n) {
        ssize_t k = write(a->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) /* k == 0 on a non-empty write: treat as a full device */
            return cnn_io_error(a->path, "cannot write the temporary file", k < 0 ? errno : ENOSPC);
        p += k;
        n -= (size_t)k;
    }
    return CNN_OK;
}

/* The directory holding path ("." for a bare name), malloc'd. */
static char *parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (dir) {
        memcpy(dir, !slash ? "." : path, n);
        dir[n] = '\0';
    }
    return dir;
}

/* Makes the rename durable. A file system that cannot sync directories
 * (EINVAL) is accepted: the data itself was synced. */
static cnn_status sync_dir(const char *target, const char *path)
{
    char *dir = parent_dir(target);
    if (!dir)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", path);
    cnn_status st = CNN_OK;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st = cnn_io_error(path, "saved, but cannot open its directory to sync it", errno);
    } else {
        if (fsync(fd) != 0 && errno != EINVAL)
            st = cnn_io_error(path, "saved, but cannot sync its directory", errno);
        close(fd);
    }
    free(dir);
    return st;
}

cnn_status cnn_atomic_close(cnn_atomic_file *a, cnn_status st)
{
    if (a->fd < 0) /* never opened, or already closed */
        return st;
    /* The final mode before the rename, so the file never appears with
     * another. Best effort: a file system without modes (vfat) refuses
     * chmod, and the file keeps mkstemp's 0600 - too private, never too
     * open. */
    if (!st)
        (void)fchmod(a->fd, a->mode);
    if (!st && fsync(a->fd) != 0)
        st = cnn_io_error(a->path, "cannot sync the temporary file", errno);
    if (close(a->fd) != 0 && !st)
        st = cnn_io_error(a->path, "cannot close the temporary file", errno);
    a->fd = -1;
    /* Again just before the rename: something may have taken the target's
     * place since cnn_atomic_open looked. */
    struct stat sb;
    if (!st && lstat(a->target, &sb) == 0 && !S_ISREG(sb.st_mode))
        st = refuse(a->path, "", sb.st_mode);
    if (!st && rename(a->tmp, a->target) != 0)
        st = cnn_io_error(a->path, "cannot rename the temporary file over it", errno);
    if (st)
        unlink(a->tmp);
    else
        st = sync_dir(a->target, a->path);
    free(a->tmp);
    free(a->target);
    a->tmp = a->target = NULL;
    return st;
}

cnn_status cnn_file_write_atomic(const char *path, const void *bytes, size_t size)
{
    if (!path || !*path || (!bytes && size))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "write_atomic: a path is required, and bytes when size > 0");
    cnn_atomic_file a;
    cnn_status st = cnn_atomic_open(&a, path);
    if (st)
        return st;
    return cnn_atomic_close(&a, cnn_atomic_write(&a, bytes, size));
}

cnn_status cnn_file_read_all(const char *path, int64_t max_bytes, void **bytes, size_t *size)
{
    if (bytes)
        *bytes = NULL;
    if (size)
        *size = 0;
    if (!path || !*path || !bytes || !size || max_bytes < 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "file_read_all: path, bytes and size are"
                        " required, and max_bytes >= 0");
    unsigned char *buf;
    cnn_status st = cnn_file_read(path, "file",
                                  (uint64_t)(max_bytes ? max_bytes : CNN_DEFAULT_MAX_MEMORY),
                                  &buf, size);
    if (!st)
        *bytes = buf;
    return st;
}
