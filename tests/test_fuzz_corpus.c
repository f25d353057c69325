/* Replays the fuzz corpora through the fuzz harnesses, with any compiler
 * and no libFuzzer: every file in fuzz/corpus/<harness>/ (the seeds) and
 * fuzz/regressions/<harness>/ (inputs that once crashed or broke an
 * invariant) goes through the same LLVMFuzzerTestOneInput the fuzzer
 * runs. The harnesses' invariants count as checks; under the sanitizer
 * build this is the fuzzers' regression test. Run from the repository
 * root (as tests/run.sh does). */
#include <dirent.h>
#include <setjmp.h>
#include <stdlib.h>

#include "test.h"

static jmp_buf fuzz_escape;
static const char *fuzz_current;
static int fuzz_invariants_failed;

/* An invariant failure skips the rest of that input (the harness may go on
 * to use what failed) and is counted. */
#define FUZZ_FAIL(what)                                                          \
    do {                                                                         \
        fprintf(stderr, "%s: fuzz invariant failed: %s (last error: %s)\n",      \
                fuzz_current, (what), cnn_last_error());                         \
        fuzz_invariants_failed++;                                                \
        longjmp(fuzz_escape, 1);                                                 \
    } while (0)

#define LLVMFuzzerTestOneInput fuzz_idx_one
#include "../fuzz/fuzz_idx.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_model_one
#include "../fuzz/fuzz_model.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_description_one
#include "../fuzz/fuzz_description.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_image_one
#include "../fuzz/fuzz_image.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_keras_one
#include "../fuzz/fuzz_keras.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_decode_one
#include "../fuzz/fuzz_decode.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_dataset_one
#include "../fuzz/fuzz_dataset.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_keras_isolated_one
#include "../fuzz/fuzz_keras_isolated.c"
#undef LLVMFuzzerTestOneInput

typedef int (*harness_fn)(const uint8_t *data, size_t size);

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        unsigned char *grown = realloc(buf, cap * 2);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    fclose(f);
    *size = n;
    return buf;
}

/* Runs every regular file of dir through fn, in name order; returns how
 * many there were (-1 if dir cannot be read). */
static int replay_dir(const char *dir, harness_fn fn)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown)
                break;
            names = grown;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    /* An empty folder (make fuzz-hours creates fuzz/regressions/HARNESS/
     * before anything is in it) leaves names NULL: qsort must not see it. */
    if (n > 1)
        qsort(names, n, sizeof *names, compare_names);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        free(names[i]);
        size_t size = 0;
        unsigned char *bytes = read_all(path, &size);
        if (!bytes) {
            fprintf(stderr, "%s: cannot read\n", path);
            test_failed++;
            continue;
        }
        /* A copy of exactly size bytes, so ASan sees any read past the end. */
        unsigned char *exact = malloc(size ? size : 1);
        if (exact && size)
            memcpy(exact, bytes, size);
        free(bytes);
        fuzz_current = path;
        volatile int before = fuzz_invariants_failed; /* read after a longjmp */
        if (exact && setjmp(fuzz_escape) == 0)
            fn(exact, size);
        free(exact);
        if (exact && fuzz_invariants_failed == before)
            test_passed++;
        else
            test_failed++;
        count++;
    }
    free(names);
    return count;
}

int main(void)
{
    static const struct {
        const char *name;
        harness_fn fn;
    } harnesses[] = {
        {"idx", fuzz_idx_one},
        {"model", fuzz_model_one},
        {"description", fuzz_description_one},
        {"image", fuzz_image_one},
        {"keras", fuzz_keras_one},
        {"decode", fuzz_decode_one},
        {"dataset", fuzz_dataset_one},
        {"keras_isolated", fuzz_keras_isolated_one},
    };
    for (size_t i = 0; i < sizeof harnesses / sizeof harnesses[0]; i++) {
        char dir[256];
        snprintf(dir, sizeof dir, "fuzz/corpus/%s", harnesses[i].name);
        int seeds = replay_dir(dir, harnesses[i].fn);
        /* every harness has a seed corpus; a missing one is a failure */
        CHECK(seeds > 0);
        snprintf(dir, sizeof dir, "fuzz/regressions/%s", harnesses[i].name);
        int regressions = replay_dir(dir, harnesses[i].fn);
        printf("test_fuzz_corpus: %s: %d seeds, %d regression inputs\n", harnesses[i].name,
               seeds, regressions < 0 ? 0 : regressions);
    }
    return test_finish("test_fuzz_corpus");
}
