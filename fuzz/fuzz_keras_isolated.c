/* Fuzz harness: Keras files through the wall (cnn_model_load_keras_isolated,
 * the way the cnn tool reads every Keras file): libhdf5 runs in a child
 * process, and its known crashes and hangs on damaged .h5 data (SECURITY.md)
 * must come back as clean errors while this process goes on.
 *
 * The input is written to a file of this process's own under /tmp (the
 * isolated reader takes a path, as the tool gives it) and read with a
 * timeout of FUZZ_ISOLATED_TIMEOUT seconds (the tool's is 10: a hang costs
 * the fuzzer this much, well under libFuzzer's -timeout=20). A failure must
 * be a status a damaged file gives - CNN_ERR_IO for a crash, a hang or
 * the CPU limit - with the message naming the file; a model that comes
 * back is checked and exercised as fuzz_keras does.
 *
 * libFuzzer sees coverage only in this process (the parent's side: the
 * answer's checks and the .cnn decoder); the child's, where libhdf5 runs,
 * is lost with it. So mutation here is mostly blind: fuzz_keras (in
 * process) is the harness that explores the readers, and its grown corpus
 * - crashes and hangs of libhdf5 included - is what to run through this
 * one (fuzz/README.md). Contained crashes and hangs are counted, and the
 * counts printed at exit; FUZZ_ISOLATED_KEEP=DIR also saves those inputs. */
#include <fcntl.h>
#include <unistd.h>

#include "fuzz.h"

#define FUZZ_ISOLATED_TIMEOUT 2.0

static char ki_path[64];
static int ki_fd = -1;
static long ki_runs, ki_crashes, ki_hangs;

static void ki_report(void)
{
    if (ki_runs)
        fprintf(stderr,
                "fuzz_keras_isolated: %ld inputs; the wall contained %ld crashes and %ld"
                " hangs of the reader\n",
                ki_runs, ki_crashes, ki_hangs);
    if (ki_fd >= 0) {
        close(ki_fd);
        unlink(ki_path);
        ki_fd = -1;
    }
}

static bool ki_write(const uint8_t *data, size_t size)
{
    if (ki_fd < 0) {
        snprintf(ki_path, sizeof ki_path, "/tmp/cnn-fuzz-keras-XXXXXX");
        ki_fd = mkstemp(ki_path); /* the reader tells .h5 from .keras by content */
        if (ki_fd < 0)
            return false;
        atexit(ki_report);
    }
    if (ftruncate(ki_fd, 0) != 0)
        return false;
    size_t at = 0;
    while (at < size) {
        ssize_t k = pwrite(ki_fd, data + at, size - at, (off_t)at);
        if (k <= 0)
            return false;
        at += (size_t)k;
    }
    return true;
}

/* FUZZ_ISOLATED_KEEP=DIR: the inputs the wall contained, for triage. */
static void ki_keep(const char *why, const uint8_t *data, size_t size)
{
    const char *dir = getenv("FUZZ_ISOLATED_KEEP");
    if (!dir)
        return;
    char path[512];
    snprintf(path, sizeof path, "%s/%s-%d-%ld", dir, why, (int)getpid(), ki_runs);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, size, f);
        fclose(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ki_write(data, size))
        return 0;
    ki_runs++;
    cnn_model *m = NULL;
    cnn_keras_info info;
    cnn_status st = cnn_model_load_keras_isolated(ki_path, FUZZ_ISOLATED_TIMEOUT, &m, &info);
    if (st) {
        static const cnn_status allowed[] = {CNN_ERR_FORMAT, CNN_ERR_SHAPE, CNN_ERR_NO_MEMORY,
                                             CNN_ERR_NUMERIC, CNN_ERR_IO};
        fuzz_check_failure(st, m, allowed, 5);
        FUZZ_CHECK(!info.compiled && !info.optimizer_state);
        /* every message names the file */
        FUZZ_CHECK(strstr(cnn_last_error(), ki_path) != NULL);
        if (st == CNN_ERR_IO && strstr(cnn_last_error(), "crashed")) {
            ki_crashes++;
            ki_keep("crash", data, size);
        } else if (st == CNN_ERR_IO && (strstr(cnn_last_error(), "no answer")
                                        || strstr(cnn_last_error(), "CPU time"))) {
            ki_hangs++;
            ki_keep("hang", data, size);
        }
        return 0;
    }
    fuzz_check_keras_model(m, &info);
    return 0;
}
