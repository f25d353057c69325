/* Allocation failure: every allocation of a scenario is made to fail in
 * turn (the 1st, then the 2nd, ... up to the last one it makes), and each
 * time the scenario must fail with CNN_ERR_NO_MEMORY, leave its output
 * NULL, and leak nothing: the allocations outstanding afterwards are those
 * outstanding before. Scenarios: building, compiling, running, training
 * and saving a small model; loading it back from a file and from memory;
 * reading descriptions (text and Keras JSON), IDX files (plain and gzip)
 * and a PNG; the summary text; a folder data set and a CSV list opened,
 * a batch read (resized, cropped, cached) and freed; a folder data set
 * evaluated through the decode threads' stream.
 *
 * How: this program defines malloc, calloc, realloc, free, aligned_alloc,
 * posix_memalign and memalign itself. Linked statically against libcnn.a,
 * every call - from the library, from libc (stdio, threads), zlib,
 * jansson and stb - comes here; these count and forward to glibc's
 * __libc_malloc & co. (glibc's __malloc_hook is gone since 2.34.) Under
 * AddressSanitizer, which owns malloc itself, the test is skipped. */
#define _GNU_SOURCE /* dladdr */
#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define ALLOC_FAIL_SKIP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define ALLOC_FAIL_SKIP 1
#endif
#endif

#ifdef ALLOC_FAIL_SKIP

int main(void)
{
    printf("test_alloc_fail: skipped (the sanitizer owns malloc)\n");
    return test_finish("test_alloc_fail");
}

#else

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <zlib.h>

/* ---- The counting, failing allocator ---------------------------------------- */

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

static atomic_long countdown;  /* > 0: the allocation that brings it to 0 fails */
static atomic_long calls;      /* allocation calls since the last reset */
static atomic_long live;       /* blocks handed out and not freed */
static atomic_bool injected;   /* the armed failure happened */
static void *injected_caller;  /* the code that called the allocator then */

static bool fail_now(void *caller)
{
    atomic_fetch_add(&calls, 1);
    if (atomic_load(&countdown) <= 0)
        return false;
    if (atomic_fetch_sub(&countdown, 1) == 1) {
        atomic_store(&injected, true);
        injected_caller = caller;
        errno = ENOMEM;
        return true;
    }
    return false;
}

/* Whether the failed allocation was made by code in a shared object whose
 * file name contains lib (e.g. "libjansson"). */
static bool injected_in(const char *lib)
{
    Dl_info info;
    return injected_caller && dladdr(injected_caller, &info) && info.dli_fname
        && strstr(info.dli_fname, lib);
}

void *malloc(size_t size)
{
    if (fail_now(__builtin_return_address(0)))
        return NULL;
    void *p = __libc_malloc(size);
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

void *calloc(size_t n, size_t size)
{
    if (fail_now(__builtin_return_address(0)))
        return NULL;
    void *p = __libc_calloc(n, size);
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

void *realloc(void *p, size_t size)
{
    if (!p)
        return malloc(size);
    if (size == 0) {
        free(p);
        return NULL;
    }
    if (fail_now(__builtin_return_address(0)))
        return NULL; /* p stays valid, as realloc promises */
    return __libc_realloc(p, size);
}

void free(void *p)
{
    if (p)
        atomic_fetch_sub(&live, 1);
    __libc_free(p);
}

void *memalign(size_t align, size_t size)
{
    if (fail_now(__builtin_return_address(0)))
        return NULL;
    void *p = __libc_memalign(align, size);
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

void *aligned_alloc(size_t align, size_t size) { return memalign(align, size); }

int posix_memalign(void **out, size_t align, size_t size)
{
    void *p = memalign(align, size);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *valloc(size_t size) { return memalign((size_t)sysconf(_SC_PAGESIZE), size); }

/* ---- Scenarios ---------------------------------------------------------------- */

static char dir[] = "/tmp/cnn_test_alloc_XXXXXX";
static char model_path[128], idx_path[128], gz_path[128], png_path[128];
static char ds_dir[128], csv_path[128];
static unsigned char *model_bytes;
static size_t model_size;

static cnn_status small_model(cnn_model **out)
{
    cnn_model *m = NULL;
    cnn_status st;
    if ((st = cnn_model_create(&m, cnn_shape_hwc(6, 6, 1))) || (st = cnn_model_set_seed(m, 3))
        || (st = cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {3, 3},
                                                    .activation = CNN_ACTIVATION_RELU)))
        || (st = cnn_model_add_max_pooling2d(m, cnn_pool2d()))
        || (st = cnn_model_add_flatten(m, cnn_flatten()))
        || (st = cnn_model_add_dropout(m, cnn_dropout(.rate = 0.25f)))
        || (st = cnn_model_add_dense(m, cnn_dense(.units = 3,
                                                  .activation = CNN_ACTIVATION_SOFTMAX)))) {
        cnn_model_free(m);
        return st;
    }
    *out = m;
    return CNN_OK;
}

static cnn_status data(cnn_tensor **x, cnn_tensor **y)
{
    *x = *y = NULL;
    cnn_status st = cnn_tensor_create(x, 4, (int64_t[]){4, 6, 6, 1});
    if (!st)
        st = cnn_tensor_create(y, 1, (int64_t[]){4});
    if (st) {
        cnn_tensor_free(*x);
        *x = NULL;
        return st;
    }
    for (int i = 0; i < 144; i++)
        (*x)->data[i] = (float)(i % 9) / 9.0f;
    for (int i = 0; i < 4; i++)
        (*y)->data[i] = (float)(i % 3);
    return CNN_OK;
}

/* Build, compile, predict, train a step, summarise and save. */
static cnn_status scenario_train_save(void)
{
    cnn_model *m = NULL;
    cnn_tensor *x = NULL, *y = NULL, *p = NULL;
    char *text = NULL;
    cnn_status st = small_model(&m);
    if (!st)
        st = data(&x, &y);
    if (!st)
        st = cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam()));
    if (!st)
        st = cnn_model_predict(m, x, 2, &p);
    if (!st)
        st = cnn_model_fit(m, x, y, cnn_fit(.epochs = 1, .batch_size = 2), NULL);
    if (!st)
        st = cnn_model_summary(m, &text);
    if (!st)
        st = cnn_model_save(m, model_path);
    free(text);
    cnn_tensor_free(p);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(m);
    return st;
}

/* Issue 15: a graph from a description (a skip connection and a merge),
 * compiled, predicted, trained, summarised, saved and loaded again. */
static cnn_status scenario_graph(void)
{
    static const char text[] = "input shape=6,6,1 name=x\n"
                               "Conv2D 2 3 padding=same activation=relu name=a\n"
                               "Conv2D 2 1 inputs=x name=b\n"
                               "Add inputs=a,b\nConcatenate inputs=add,a\n"
                               "MaxPooling2D 2\nFlatten\nDense 3 softmax\n";
    cnn_model *m = NULL, *back = NULL;
    cnn_tensor *x = NULL, *y = NULL, *p = NULL;
    char *summary = NULL, path[160];
    snprintf(path, sizeof path, "%s/graph.cnn", dir);
    cnn_status st = cnn_model_from_description_memory(text, sizeof text - 1, "g.model", &m);
    if (!st)
        st = data(&x, &y);
    if (!st)
        st = cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam()));
    if (!st)
        st = cnn_model_predict(m, x, 2, &p);
    if (!st)
        st = cnn_model_fit(m, x, y, cnn_fit(.epochs = 1, .batch_size = 2), NULL);
    if (!st)
        st = cnn_model_summary(m, &summary);
    if (!st)
        st = cnn_model_save(m, path);
    if (!st)
        st = cnn_model_load(path, &back);
    free(summary);
    cnn_tensor_free(p);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(back);
    cnn_model_free(m);
    unlink(path);
    return st;
}

/* Load (file or memory), then predict. */
static cnn_status loaded(cnn_status st, cnn_model *m)
{
    cnn_tensor *x = NULL, *y = NULL, *p = NULL;
    if (!st)
        st = data(&x, &y);
    if (!st)
        st = cnn_model_predict(m, x, 4, &p);
    cnn_tensor_free(p);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(m);
    return st;
}

static cnn_status scenario_load_file(void)
{
    cnn_model *m = NULL;
    cnn_status st = cnn_model_load(model_path, &m);
    if (st && m)
        return CNN_ERR_STATE; /* the output must stay NULL */
    return loaded(st, m);
}

static cnn_status scenario_load_memory(void)
{
    cnn_model *m = NULL;
    cnn_status st = cnn_model_load_memory(model_bytes, model_size, "small.cnn", &m);
    if (st && m)
        return CNN_ERR_STATE;
    return loaded(st, m);
}

static cnn_status described(cnn_status st, cnn_model *m)
{
    if (st && m)
        return CNN_ERR_STATE;
    char *text = NULL;
    if (!st)
        st = cnn_model_summary(m, &text);
    free(text);
    cnn_model_free(m);
    return st;
}

static cnn_status scenario_description_text(void)
{
    static const char text[] = "input shape=28,28,1\n"
                               "Conv2D 8 3 padding=same activation=relu name='c1'\n"
                               "MaxPooling2D 2\nFlatten\nDropout 0.5\nDense 10 softmax\n";
    cnn_model *m = NULL;
    cnn_status st = cnn_model_from_description_memory(text, sizeof text - 1, "t.model", &m);
    return described(st, m);
}

static cnn_status scenario_description_json(void)
{
    cnn_model *m = NULL;
    cnn_status st = cnn_model_from_description("tests/data/keras2_mnist.json", &m);
    return described(st, m);
}

static cnn_status tensor_result(cnn_status st, cnn_tensor *t)
{
    if (st && t)
        return CNN_ERR_STATE;
    cnn_tensor_free(t);
    return st;
}

static cnn_status scenario_idx_plain(void)
{
    cnn_tensor *t = NULL;
    cnn_status st = cnn_dataset_load_idx(idx_path, &t);
    return tensor_result(st, t);
}

static cnn_status scenario_idx_gzip(void)
{
    cnn_tensor *t = NULL;
    cnn_status st = cnn_dataset_load_idx(gz_path, &t);
    return tensor_result(st, t);
}

static cnn_status scenario_png(void)
{
    cnn_tensor *t = NULL, *r = NULL;
    cnn_status st = cnn_image_load(png_path, 1, 0, &t);
    if (st && t)
        return CNN_ERR_STATE;
    if (!st)
        st = cnn_image_resize(t, 3, 3, &r);
    cnn_tensor_free(r);
    cnn_tensor_free(t);
    return st;
}

/* libjpeg-turbo's allocations (a progressive JPEG keeps its coefficients);
 * the fixture is read from the repository (tests run from its root). */
static cnn_status scenario_jpeg(void)
{
    cnn_tensor *t = NULL;
    cnn_status st = cnn_image_load("tests/images/progressive.jpg", 3, 0, &t);
    return tensor_result(st, t);
}

/* A data set of the folder ds_dir (two classes, three PNGs) or of its CSV
 * list: opened, a batch of two read (resized to 3x3, cropped to 2x3,
 * cached), freed. */
static cnn_status dataset_read(bool list)
{
    cnn_dataset *ds = (cnn_dataset *)&ds;
    cnn_dataset_config cfg = cnn_dataset_options(.image_size = {3, 3}, .random_crop = {2, 3},
                                                 .seed = 4, .workers = 1, .cache_bytes = 1 << 16);
    cnn_status st = list ? cnn_dataset_from_list(csv_path, cfg, &ds)
                         : cnn_dataset_from_directory(ds_dir, cfg, &ds);
    if (st)
        return ds ? CNN_ERR_STATE : st; /* the output must be NULL */
    float x[2 * 2 * 3 * 3], y[2];
    st = cnn_dataset_read(ds, 0, 2, x, y);
    cnn_dataset_free(ds);
    return st;
}

static cnn_status scenario_dataset_folder(void) { return dataset_read(false); }
static cnn_status scenario_dataset_list(void) { return dataset_read(true); }

/* The folder evaluated by a small model through the stream: a decode
 * thread's failed allocation comes back from the call. */
static cnn_status scenario_dataset_stream(void)
{
    cnn_dataset *ds = NULL;
    cnn_status st = cnn_dataset_from_directory(
        ds_dir, cnn_dataset_options(.image_size = {3, 3}, .seed = 4, .workers = 1), &ds);
    cnn_model *m = NULL;
    double loss, acc;
    if (!st && !(st = cnn_model_create(&m, cnn_shape_hwc(3, 3, 3))))
        st = cnn_model_set_threads(m, 1);
    if (!st)
        st = cnn_model_add_flatten(m, cnn_flatten());
    if (!st)
        st = cnn_model_add_dense(m, cnn_dense(.units = 2, .activation = CNN_ACTIVATION_SOFTMAX));
    if (!st)
        st = cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY));
    if (!st)
        st = cnn_model_evaluate_dataset(m, ds, 2, &loss, &acc);
    cnn_model_free(m);
    cnn_dataset_free(ds);
    return st;
}

/* ---- The driver ------------------------------------------------------------------ */

/* Fails allocation k = 1, 2, ... of scenario until a run makes fewer than k
 * allocations (then it must succeed). Returns the allocations of a full run. */
static long run_every_failure(const char *name, cnn_status (*scenario)(void))
{
    /* A first run, not counted: libc keeps what some functions allocate
     * on first use (a thread's stack and TLS, ...) for the whole process. */
    scenario();
    atomic_store(&calls, 0);
    long base = atomic_load(&live);
    cnn_status st = scenario();
    long total = atomic_load(&calls);
    if (st != CNN_OK || atomic_load(&live) != base) {
        test_failed++;
        fprintf(stderr, "%s: the run without failures: %s (%s), %ld blocks left\n", name,
                cnn_status_name(st), cnn_last_error(), atomic_load(&live) - base);
        return total;
    }
    int bad = 0;
    long absorbed = 0;
    for (long k = 1; k <= total + 1 && bad < 5; k++) {
        atomic_store(&injected, false);
        atomic_store(&calls, 0);
        base = atomic_load(&live);
        atomic_store(&countdown, k);
        st = scenario();
        atomic_store(&countdown, 0);
        long left = atomic_load(&live) - base;
        bool hit = atomic_load(&injected);
        /* A failure a decoder absorbs (stb tries another format, libjpeg
         * retries a smaller pool), or the data set's cache (an image it
         * could not keep is decoded again when needed) may end
         * in success. jansson 2.14 turns some failed allocations into a
         * syntax error, or drops a character from a token (lex_save
         * ignores strbuffer's failure), which the reader then refuses as
         * malformed; the library cannot tell those from a bad file.
         * Anything else must be CNN_ERR_NO_MEMORY. */
        bool tolerated = hit && (st == CNN_OK || (st == CNN_ERR_FORMAT
                                                  && injected_in("libjansson")));
        absorbed += tolerated;
        if (hit ? (st != CNN_ERR_NO_MEMORY && !tolerated) || left != 0
                : st != CNN_OK || left != 0) {
            bad++;
            fprintf(stderr, "%s: allocation %ld %s: got %s (%s), %ld blocks left\n", name, k,
                    hit ? "failed" : "(none failed)", cnn_status_name(st), cnn_last_error(),
                    left);
        }
        if (!hit)
            break;
    }
    if (bad)
        test_failed++;
    else
        test_passed++;
    if (absorbed)
        printf("test_alloc_fail: %s: %ld failed allocations absorbed (by a decoder or a cache)"
               " or reported as malformed input by a third-party decoder\n", name, absorbed);
    return total;
}

static void setup(void)
{
    CHECK(mkdtemp(dir) != NULL);
    snprintf(model_path, sizeof model_path, "%s/small.cnn", dir);
    snprintf(idx_path, sizeof idx_path, "%s/x.idx", dir);
    snprintf(gz_path, sizeof gz_path, "%s/x.idx.gz", dir);
    snprintf(png_path, sizeof png_path, "%s/x.png", dir);
    unsigned char idx[16 + 5 * 7 * 3];
    const unsigned char head[16] = {0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 7, 0, 0, 0, 3};
    memcpy(idx, head, 16);
    for (size_t i = 16; i < sizeof idx; i++)
        idx[i] = (unsigned char)(i * 7);
    CHECK(test_write_file(idx_path, idx, sizeof idx));
    gzFile g = gzopen(gz_path, "wb");
    CHECK(g && gzwrite(g, idx, sizeof idx) == (int)sizeof idx && gzclose(g) == Z_OK);
    uint8_t px[5 * 4 * 3];
    for (int i = 0; i < 60; i++)
        px[i] = (uint8_t)(i * 4);
    CHECK_OK(cnn_image_save_png(png_path, px, 5, 4, 3));
    /* the data set: ds/a/0.png, ds/a/1.png, ds/b/2.png and ds/list.csv */
    snprintf(ds_dir, sizeof ds_dir, "%s/ds", dir);
    CHECK(snprintf(csv_path, sizeof csv_path, "%s/list.csv", ds_dir) < (int)sizeof csv_path);
    CHECK(mkdir(ds_dir, 0755) == 0);
    for (int k = 0; k < 2; k++) {
        char path[192];
        snprintf(path, sizeof path, "%s/%c", ds_dir, 'a' + k);
        CHECK(mkdir(path, 0755) == 0);
    }
    for (int i = 0; i < 3; i++) {
        char path[192];
        snprintf(path, sizeof path, "%s/%c/%d.png", ds_dir, i < 2 ? 'a' : 'b', i);
        px[i] = (uint8_t)(200 + i);
        CHECK_OK(cnn_image_save_png(path, px, 5, 4, 3));
    }
    static const char csv[] = "path,label\na/0.png,cat\nb/2.png,dog\na/1.png,cat\n";
    CHECK(test_write_file(csv_path, csv, sizeof csv - 1));
}

static void teardown(void)
{
    const char *files[] = {model_path, idx_path, gz_path, png_path};
    for (int i = 0; i < 4; i++)
        unlink(files[i]);
    char path[192];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%c/%d.png", ds_dir, i < 2 ? 'a' : 'b', i);
        unlink(path);
    }
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%c", ds_dir, 'a' + k);
        CHECK(rmdir(path) == 0);
    }
    unlink(csv_path);
    CHECK(rmdir(ds_dir) == 0);
    CHECK(rmdir(dir) == 0);
}

int main(void)
{
    setup();
    /* stdout's buffer is allocated by the first printf: do that now, not
     * inside a scenario */
    printf("test_alloc_fail: failing every allocation of each scenario in turn\n");
    fflush(stdout);
    static const struct {
        const char *name;
        cnn_status (*fn)(void);
    } scenarios[] = {
        {"build, compile, predict, fit, summary, save", scenario_train_save},
        {"load from a file, predict", scenario_load_file},
        {"load from memory, predict", scenario_load_memory},
        {"text description, summary", scenario_description_text},
        {"Keras JSON description, summary", scenario_description_json},
        {"IDX file", scenario_idx_plain},
        {"gzip IDX file", scenario_idx_gzip},
        {"PNG, resize", scenario_png},
        {"progressive JPEG", scenario_jpeg},
        {"graph: description, compile, predict, fit, summary, save, load", scenario_graph},
        {"folder data set: open, read a batch, free", scenario_dataset_folder},
        {"CSV list data set: open, read a batch, free", scenario_dataset_list},
        {"folder data set: evaluate through the stream", scenario_dataset_stream},
    };
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        if (scenarios[i].fn == scenario_load_memory) {
            /* the saved file, read once outside the counted runs */
            FILE *f = fopen(model_path, "rb");
            static unsigned char buf[1 << 16];
            model_size = f ? fread(buf, 1, sizeof buf, f) : 0;
            if (f)
                fclose(f);
            model_bytes = buf;
            CHECK(model_size > 0);
        }
        long n = run_every_failure(scenarios[i].name, scenarios[i].fn);
        printf("test_alloc_fail: %s: %ld allocations, each failed in turn\n", scenarios[i].name,
               n);
        fflush(stdout);
    }
    teardown();
    return test_finish("test_alloc_fail");
}

#endif
