/* Keras files read behind a wall: libhdf5 parses the file in a child
 * process, so a crash or a hang in it costs the child, not the caller.
 *
 * Debian's libhdf5 1.10.8 crashes (SIGSEGV in H5HG_read) and loops forever
 * (H5C_protect) on some damaged files (SECURITY.md), as browsers' image
 * decoders once did; the cure is the same. The parent reads the file (the
 * child opens nothing), forks, and the child runs cnn_model_load_keras_memory
 * under resource limits: address space, CPU time, no new file descriptors,
 * no file writes, no core dump. It answers through a pipe with the status,
 * the error text, the cnn_keras_info and the model as a .cnn file, which the
 * parent reads with cnn_model_load_memory - the same checked loader as any
 * model file from outside. The parent waits at most timeout seconds (wall
 * clock) and kills the child then. */
#define _GNU_SOURCE /* RLIMIT_* on every libc, _exit */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fileio.h"
#include "io/keras.h"
#include "model/file.h"

#define DEFAULT_TIMEOUT 10.0
/* What the child may map beyond what it inherits: a model within the
 * default budget, its file and the HDF5 image of it, with room to spare. */
#define CHILD_EXTRA_MEMORY ((uint64_t)CNN_DEFAULT_MAX_MEMORY * 2)
#define MAX_MESSAGE 4096

/* AddressSanitizer reserves terabytes of shadow memory: an address-space
 * limit would only break the sanitized build. */
#if defined(__SANITIZE_ADDRESS__)
#define LIMIT_ADDRESS_SPACE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LIMIT_ADDRESS_SPACE 0
#endif
#endif
#ifndef LIMIT_ADDRESS_SPACE
#define LIMIT_ADDRESS_SPACE 1
#endif

/* The answer's fixed part. Both ends are the same binary, so the layout
 * agrees; every field is still checked by the parent. */
typedef struct {
    char magic[8];   /* "cnnkeras" */
    int32_t status;
    uint32_t message_length;
    uint64_t model_length;
    uint8_t format, has_training_config, compiled, optimizer_state;
    char keras_version[32];
    char not_compiled[256];
    char not_restored[256];
} answer;

/* ---- The child ------------------------------------------------------------------------- */

static bool write_full(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        b += k;
        n -= (size_t)k;
    }
    return true;
}

/* The current address-space size, from /proc/self/statm (in pages); 0 if
 * unknown. Read before fork: the child may open nothing. */
static uint64_t address_space_now(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long long pages = 0;
    if (f) {
        if (fscanf(f, "%llu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? pages * (uint64_t)page : 0;
}

static void set_limit(int resource, uint64_t soft, uint64_t hard)
{
    struct rlimit r = {(rlim_t)soft, (rlim_t)hard};
    (void)setrlimit(resource, &r);
}

static void limit_child(double timeout, uint64_t address_space)
{
    set_limit(RLIMIT_CORE, 0, 0);
    set_limit(RLIMIT_FSIZE, 0, 0);
    set_limit(RLIMIT_NOFILE, 0, 0); /* the fds it has stay; open() fails */
    /* CPU seconds (SIGXCPU, then SIGKILL): a hang ends even if the parent
     * stops watching. */
    uint64_t cpu = (uint64_t)ceil(timeout) + 1;
    set_limit(RLIMIT_CPU, cpu, cpu + 1);
    if (LIMIT_ADDRESS_SPACE && address_space)
        set_limit(RLIMIT_AS, address_space + CHILD_EXTRA_MEMORY,
                  address_space + CHILD_EXTRA_MEMORY);
}

static void copy_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

_Noreturn static void child(int fd, const unsigned char *bytes, size_t size, const char *path,
                  double timeout, uint64_t address_space)
{
    signal(SIGPIPE, SIG_IGN); /* a parent that gave up: write fails, the child ends */
    limit_child(timeout, address_space);
    cnn_model *m = NULL;
    cnn_keras_info info;
    cnn_status st = cnn_model_load_keras_memory(bytes, size, path, &m, &info);
    unsigned char *model = NULL;
    size_t model_size = 0;
    if (!st)
        st = cnn_model_encode(m, &model, &model_size);
    const char *msg = st ? cnn_last_error() : "";
    size_t msg_len = strlen(msg) < MAX_MESSAGE ? strlen(msg) : MAX_MESSAGE;
    answer a = {.magic = "cnnkeras", .status = (int32_t)st, .message_length = (uint32_t)msg_len,
                .model_length = st ? 0 : model_size, .format = (uint8_t)info.format,
                .has_training_config = info.has_training_config, .compiled = info.compiled,
                .optimizer_state = info.optimizer_state};
    copy_text(a.keras_version, sizeof a.keras_version, info.keras_version);
    copy_text(a.not_compiled, sizeof a.not_compiled, info.not_compiled);
    copy_text(a.not_restored, sizeof a.not_restored, info.not_restored);
    bool ok = write_full(fd, &a, sizeof a) && write_full(fd, msg, msg_len)
              && (st || write_full(fd, model, model_size));
    /* _exit: no atexit handlers (libhdf5 registers one), nothing flushed twice */
    _exit(ok ? 0 : 1);
}

/* ---- The parent ------------------------------------------------------------------------ */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct {
    int fd;
    double deadline;
    bool timed_out, eof;
} channel;

/* Reads n bytes, or fewer when the child closes its end or the deadline
 * passes; returns how many. */
static size_t read_some(channel *c, void *dst, size_t n)
{
    unsigned char *p = dst;
    size_t got = 0;
    while (got < n && !c->timed_out && !c->eof) {
        double left = c->deadline - now();
        if (left <= 0) {
            c->timed_out = true;
            break;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)ceil(left * 1000));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            c->eof = true;
            break;
        }
        if (r == 0)
            continue; /* the loop sees the deadline */
        ssize_t k = read(c->fd, p + got, n - got);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0)
            c->eof = true;
        else
            got += (size_t)k;
    }
    return got;
}

/* Whether the child ended, and how. */
typedef enum { ENDED_OK, ENDED_SIGNAL, ENDED_STATUS, ENDED_UNKNOWN } ending;

static ending reap(pid_t pid, bool kill_it, int *code)
{
    if (kill_it)
        kill(pid, SIGKILL);
    int ws;
    pid_t r;
    do
        r = waitpid(pid, &ws, 0);
    while (r < 0 && errno == EINTR);
    if (r != pid)
        return ENDED_UNKNOWN; /* SIGCHLD ignored by the caller: already reaped */
    if (WIFSIGNALED(ws)) {
        *code = WTERMSIG(ws);
        return ENDED_SIGNAL;
    }
    *code = WEXITSTATUS(ws);
    return *code ? ENDED_STATUS : ENDED_OK;
}

static bool valid_text(const char *s, size_t cap) { return memchr(s, '\0', cap) != NULL; }

static cnn_status take_answer(const answer *a, const char *message, const unsigned char *model,
                              const char *path, cnn_model **out, cnn_keras_info *info)
{
    if (a->status != CNN_OK) {
        if (a->status < 0 || a->status > CNN_ERR_NUMERIC || a->message_length == 0)
            return cnn_fail(CNN_ERR_FORMAT, "reading %s: the HDF5 reader gave a malformed answer",
                            path);
        return cnn_fail((cnn_status)a->status, "%s", message);
    }
    if (a->format > CNN_KERAS_ZIP || a->has_training_config > 1 || a->compiled > 1
        || a->optimizer_state > 1 || !valid_text(a->keras_version, sizeof a->keras_version)
        || !valid_text(a->not_compiled, sizeof a->not_compiled)
        || !valid_text(a->not_restored, sizeof a->not_restored))
        return cnn_fail(CNN_ERR_FORMAT, "reading %s: the HDF5 reader gave a malformed answer",
                        path);
    cnn_status st = cnn_model_load_memory(model, (size_t)a->model_length, path, out);
    if (st)
        return st;
    if (info) {
        info->format = (cnn_keras_format)a->format;
        info->has_training_config = a->has_training_config;
        info->compiled = a->compiled;
        info->optimizer_state = a->optimizer_state;
        copy_text(info->keras_version, sizeof info->keras_version, a->keras_version);
        copy_text(info->not_compiled, sizeof info->not_compiled, a->not_compiled);
        copy_text(info->not_restored, sizeof info->not_restored, a->not_restored);
    }
    return CNN_OK;
}

static cnn_status run_isolated(const unsigned char *bytes, size_t size, const char *path,
                               double timeout, cnn_model **out, cnn_keras_info *info)
{
    uint64_t address_space = address_space_now();
    int p[2];
    if (pipe(p) != 0)
        return cnn_io_error(path, "cannot make a pipe to the HDF5 reader", errno);
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(p[0]);
        close(p[1]);
        return cnn_io_error(path, "cannot start the HDF5 reader process", err);
    }
    if (pid == 0) {
        close(p[0]);
        child(p[1], bytes, size, path, timeout, address_space);
    }
    close(p[1]);
    channel c = {.fd = p[0], .deadline = now() + timeout};
    answer a;
    char message[MAX_MESSAGE + 1] = "";
    unsigned char *model = NULL;
    bool whole = read_some(&c, &a, sizeof a) == sizeof a && memcmp(a.magic, "cnnkeras", 8) == 0
                 && a.message_length <= MAX_MESSAGE
                 && a.model_length <= (uint64_t)CNN_DEFAULT_MAX_MEMORY * 4
                 && (a.status == CNN_OK) == (a.model_length > 0);
    if (whole) {
        whole = read_some(&c, message, a.message_length) == a.message_length;
        message[a.message_length] = '\0';
    }
    if (whole && a.model_length) {
        model = malloc((size_t)a.model_length);
        whole = model && read_some(&c, model, (size_t)a.model_length) == a.model_length;
    }
    bool timed_out = c.timed_out;
    close(p[0]);
    int code = 0;
    ending e = reap(pid, timed_out || !whole, &code);
    cnn_status st;
    if (timed_out)
        st = cnn_fail(CNN_ERR_IO, "reading %s: the HDF5 library gave no answer in %g s", path,
                      timeout);
    else if (e == ENDED_SIGNAL && code == SIGXCPU)
        st = cnn_fail(CNN_ERR_IO, "reading %s: the HDF5 library used more than %g s of CPU time",
                      path, ceil(timeout) + 1);
    else if (e == ENDED_SIGNAL && !whole)
        st = cnn_fail(CNN_ERR_IO, "reading %s: the HDF5 library crashed (signal %d)", path, code);
    else if (!whole && a.model_length && !model)
        st = cnn_fail(CNN_ERR_NO_MEMORY, "reading %s: cannot allocate %llu bytes for the model",
                      path, (unsigned long long)a.model_length);
    else if (!whole && e == ENDED_STATUS) /* a sanitizer reports a crash and exits so */
        st = cnn_fail(CNN_ERR_IO, "reading %s: the HDF5 library crashed (its process exited"
                      " with status %d without an answer)", path, code);
    else if (!whole)
        st = cnn_fail(CNN_ERR_IO, "reading %s: the HDF5 reader process ended without an answer",
                      path);
    else
        st = take_answer(&a, message, model, path, out, info);
    free(model);
    return st;
}

cnn_status cnn_model_load_keras_isolated(const char *path, double timeout_seconds,
                                         cnn_model **out, cnn_keras_info *info)
{
    if (out)
        *out = NULL;
    if (info)
        memset(info, 0, sizeof *info);
    if (!path || !out || !(timeout_seconds >= 0) || timeout_seconds > 86400)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "load_keras_isolated: path and out must not"
                        " be NULL, and the timeout must be 0 (the default, 10 s) to 86400 s");
    double timeout = timeout_seconds > 0 ? timeout_seconds : DEFAULT_TIMEOUT;
    unsigned char *buf;
    size_t size;
    cnn_status st = cnn_file_read(path, "Keras file", (uint64_t)CNN_KERAS_MAX_FILE, &buf, &size);
    if (!st)
        st = run_isolated(buf, size, path, timeout, out, info);
    free(buf);
    return st;
}
