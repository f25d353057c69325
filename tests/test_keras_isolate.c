/* cnn_model_load_keras_isolated: libhdf5 in a child process.
 *
 *   1. what it loads is what cnn_model_load_keras loads (same checksum,
 *      same cnn_keras_info), for .h5 and .keras, compiled with Adam's
 *      state; a refused file gives the same status and message;
 *   2. a file that crashes libhdf5 1.10.8 (a global-heap object longer
 *      than its collection: memcpy past the end in H5HG_read) is
 *      CNN_ERR_IO "crashed (signal N)" (under a sanitizer, which reports
 *      and exits: "crashed (its process exited ...)"), and this process
 *      goes on;
 *   3. a file that makes it loop forever (a free-space object of size 0 in
 *      the global heap: H5HG's deserializer never advances) is CNN_ERR_IO
 *      "gave no answer in 1 s" after about a second;
 *   4. the third-party models (skipped when missing) and the shipped MLPerf
 *      models load or are refused as they are in process; the time of both
 *      ways is printed (what the wall costs).
 * Both damaged files are made here from a model the library saves. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../fuzz/h5_heap.h"
#include "test.h"

static char tmpdir[64];

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Loads path both ways and checks they agree; returns the isolated time. */
static double compare(const char *path, const char *what)
{
    cnn_model *a = NULL, *b = NULL;
    cnn_keras_info ia, ib;
    double t0 = seconds();
    cnn_status sa = cnn_model_load_keras(path, &a, &ia);
    char msg_a[1024];
    snprintf(msg_a, sizeof msg_a, "%s", cnn_last_error());
    double t1 = seconds();
    cnn_status sb = cnn_model_load_keras_isolated(path, 0, &b, &ib);
    double t2 = seconds();
    fprintf(stderr, "test_keras_isolate: %s: in process %.3f s, isolated %.3f s (%s)\n", what,
            t1 - t0, t2 - t1, cnn_status_name(sb));
    CHECK(sa == sb);
    if (sa != CNN_OK) {
        if (strcmp(msg_a, cnn_last_error()) != 0)
            fprintf(stderr, "%s: in process \"%s\", isolated \"%s\"\n", what, msg_a,
                    cnn_last_error());
        CHECK(strcmp(msg_a, cnn_last_error()) == 0);
        CHECK(a == NULL && b == NULL);
        return t2 - t1;
    }
    uint32_t ca = 0, cb = 1;
    CHECK(a && b);
    if (a && b) {
        CHECK_OK(cnn_model_checksum(a, &ca));
        CHECK_OK(cnn_model_checksum(b, &cb));
        CHECK(ca == cb);
        CHECK(cnn_model_param_count(a) == cnn_model_param_count(b));
    }
    CHECK(ia.format == ib.format && ia.compiled == ib.compiled
          && ia.optimizer_state == ib.optimizer_state
          && ia.has_training_config == ib.has_training_config
          && strcmp(ia.keras_version, ib.keras_version) == 0
          && strcmp(ia.not_compiled, ib.not_compiled) == 0
          && strcmp(ia.not_restored, ib.not_restored) == 0);
    cnn_model_free(a);
    cnn_model_free(b);
    return t2 - t1;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)(v >> 8 * k);
}

static cnn_model *small_model(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_from_description("tests/data/keras2_mnist.json", &m));
    if (!m)
        return NULL;
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)));
    cnn_tensor *x = NULL, *y = NULL;
    CHECK_OK(cnn_tensor_create(&x, 4, (int64_t[]){4, 28, 28, 1}));
    CHECK_OK(cnn_tensor_create(&y, 1, (int64_t[]){4}));
    if (x && y) {
        for (int64_t i = 0; i < cnn_tensor_size(x); i++)
            x->data[i] = (float)((i * 37) % 17) / 17.0f;
        for (int i = 0; i < 4; i++)
            y->data[i] = (float)i;
        CHECK_OK(cnn_model_fit(m, x, y, cnn_fit(.epochs = 1, .batch_size = 2), NULL));
    }
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    return m;
}

static void test_same_as_in_process(cnn_model *m)
{
    const char *h5 = test_path(tmpdir, "m.h5"), *keras = test_path(tmpdir, "m.keras");
    CHECK_OK(cnn_model_save_keras_h5(m, h5));
    CHECK_OK(cnn_model_save_keras(m, keras));
    compare(h5, "saved .h5");
    compare(keras, "saved .keras");
    /* a refusal crosses the wall unchanged */
    size_t n;
    unsigned char *b = test_read_file(h5, &n);
    CHECK(b != NULL);
    if (b) {
        const char *cut = test_path(tmpdir, "cut.h5");
        CHECK(test_write_file(cut, b, n / 2));
        compare(cut, "truncated .h5");
    }
    free(b);
    cnn_model *out = (cnn_model *)&out;
    CHECK_FAILS(cnn_model_load_keras_isolated(test_path(tmpdir, "missing.h5"), 0, &out, NULL),
                CNN_ERR_IO, "missing.h5: cannot open: No such file or directory");
    CHECK(out == NULL);
    CHECK_FAILS(cnn_model_load_keras_isolated(h5, -1, &out, NULL), CNN_ERR_INVALID_ARGUMENT,
                "timeout");
}

static void test_crash_and_hang(void)
{
    const char *h5 = test_path(tmpdir, "m.h5");
    size_t n, first = 0;
    unsigned char *b = test_read_file(h5, &n);
    size_t obj = b ? h5_largest_heap_object(b, n, &first) : 0;
    CHECK(obj != 0); /* the saver keeps model_config in the global heap */
    if (!obj) {
        free(b);
        return;
    }
    /* 2. the object claims 256 MiB: H5HG_read copies them from a 4 KiB collection */
    unsigned char *crash = malloc(n);
    CHECK(crash != NULL);
    if (crash) {
        memcpy(crash, b, n);
        put_u64(crash + obj + 8, (uint64_t)1 << 28);
        const char *path = test_path(tmpdir, "crash.h5");
        CHECK(test_write_file(path, crash, n));
        cnn_model *out = (cnn_model *)&out;
        cnn_status st = cnn_model_load_keras_isolated(path, 0, &out, NULL);
        if (st != CNN_ERR_IO || !strstr(cnn_last_error(), "crash.h5: the HDF5 library crashed ("))
            fprintf(stderr, "crash.h5: got %s \"%s\"\n", cnn_status_name(st), cnn_last_error());
        CHECK(st == CNN_ERR_IO && strstr(cnn_last_error(), "reading ")
              && strstr(cnn_last_error(), "crash.h5: the HDF5 library crashed ("));
        CHECK(out == NULL);
        free(crash);
    }
    /* 3. the first object becomes free space of size 0 */
    memset(b + first, 0, 16);
    const char *path = test_path(tmpdir, "hang.h5");
    CHECK(test_write_file(path, b, n));
    cnn_model *out = (cnn_model *)&out;
    double t0 = seconds();
    CHECK_FAILS(cnn_model_load_keras_isolated(path, 1, &out, NULL), CNN_ERR_IO,
                "hang.h5: the HDF5 library gave no answer in 1 s");
    double took = seconds() - t0;
    CHECK(took >= 0.9 && took < 5);
    CHECK(out == NULL);
    free(b);
    /* the process is still whole: the next file loads */
    compare(h5, "after the crash and the hang");
}

static void test_real_models(void)
{
    const char *dir = getenv("CNN_KERAS_MODELS");
    dir = dir ? dir : "../shared/keras-models";
    const char *files[] = {"mnist-keras2.2.4.h5", "mnist-keras3.14.keras",
                           "resnet-mnist-keras3.11.keras", "conv2dtranspose-autoencoder-keras2.12.h5"};
    for (int f = 0; f < 4; f++) {
        const char *path = test_path(dir, files[f]);
        if (access(path, R_OK) != 0) {
            test_skip(files[f], "not found; set CNN_KERAS_MODELS to a directory holding it");
            continue;
        }
        compare(path, files[f]);
    }
    compare("models/mlperf-tiny/mlperf-tiny-resnet8-cifar10.h5", "mlperf-tiny resnet8");
    compare("models/mlperf-tiny/mlperf-tiny-mobilenetv1-vww96.h5", "mlperf-tiny mobilenetv1");
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cnn-isolate-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    cnn_model *m = small_model();
    if (m) {
        test_same_as_in_process(m);
        test_crash_and_hang();
    }
    cnn_model_free(m);
    test_real_models();
    if (!test_remove_tree(tmpdir))
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish("test_keras_isolate");
}
