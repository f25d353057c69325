/* Shared by the fuzz harnesses (fuzz/fuzz_*.c).
 *
 * Each harness is a plain libFuzzer entry point, LLVMFuzzerTestOneInput,
 * over bytes in memory, using only the public API. Besides "no crash, no
 * leak, no undefined behaviour" (the sanitizers' job) each checks the
 * library's own promises, through FUZZ_CHECK:
 *   - a failure returns a status the function documents for bad content
 *     (never CNN_ERR_INVALID_ARGUMENT: the arguments are fine), leaves the
 *     output NULL and says why in cnn_last_error();
 *   - a success returns an object whose fields are consistent, and which
 *     works: a loaded or described model is summarised and, when small,
 *     run (and trained for one step when it is compiled).
 *
 * Built by `make fuzz` with clang -fsanitize=fuzzer; tests/test_fuzz_corpus.c
 * includes the same files, renaming the entry point, to replay the seed
 * corpora (fuzz/corpus/<harness>/) in every test run, with any compiler. */
#ifndef CNN_FUZZ_H
#define CNN_FUZZ_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"

/* What an invariant failure does: abort under libFuzzer (it saves the input);
 * the corpus replay test defines its own that counts and goes on. */
#ifndef FUZZ_FAIL
#define FUZZ_FAIL(what)                                                          \
    do {                                                                         \
        fprintf(stderr, "fuzz invariant failed: %s (last error: %s)\n", (what),  \
                cnn_last_error());                                               \
        abort();                                                                 \
    } while (0)
#endif
#define FUZZ_CHECK(cond)                                                         \
    do {                                                                         \
        if (!(cond))                                                             \
            FUZZ_FAIL(#cond);                                                    \
    } while (0)

/* Memory and work a harness lets one input use when it runs a model, so
 * the fuzzer stays fast and within its RSS limit. */
enum {
    FUZZ_MAX_MEMORY = 64 << 20,
    FUZZ_MAX_FLOPS = 4 << 20 /* forward FLOPs per example */
};

/* A failing call: the status is one of the allowed ones, the output was
 * left NULL, and there is a message. */
static inline void fuzz_check_failure(cnn_status st, const void *out, const cnn_status *allowed,
                                      int n_allowed)
{
    bool ok = false;
    for (int i = 0; i < n_allowed; i++)
        ok |= st == allowed[i];
    if (!ok) {
        fprintf(stderr, "fuzz: unexpected status %s\n", cnn_status_name(st));
        FUZZ_FAIL("the status is one the function documents for bad content");
    }
    FUZZ_CHECK(out == NULL);
    FUZZ_CHECK(cnn_last_error()[0] != '\0');
}

static inline bool fuzz_shape_ok(cnn_shape s)
{
    if (s.rank != 1 && s.rank != 3)
        return false;
    for (int i = 0; i < s.rank; i++)
        if (s.dims[i] < 1)
            return false;
    return true;
}

/* Introspects every layer, summarises, and if the model is small runs a
 * batch of two examples through it (and one training step if compiled). */
static inline void fuzz_exercise_model(cnn_model *m)
{
    int n = cnn_model_layer_count(m);
    FUZZ_CHECK(n >= 0);
    FUZZ_CHECK(fuzz_shape_ok(cnn_model_input_shape(m)));
    for (int i = 0; i < n; i++) {
        cnn_layer_spec spec;
        FUZZ_CHECK(cnn_model_layer_spec(m, i, &spec) == CNN_OK);
        const char *name = cnn_model_layer_name(m, i), *type = cnn_model_layer_type(m, i);
        FUZZ_CHECK(name && name[0] && type && type[0]);
        FUZZ_CHECK(cnn_model_layer_param_count(m, i) >= 0);
        cnn_shape s = cnn_model_layer_output_shape(m, i);
        FUZZ_CHECK(s.rank == 1 || s.rank == 3);
    }
    char *text = NULL;
    if (cnn_model_summary(m, &text) == CNN_OK) {
        FUZZ_CHECK(text != NULL);
        free(text);
    }
    if (n == 0)
        return;
    cnn_memory_estimate e;
    if (cnn_model_estimate_memory(m, 2, &e) != CNN_OK || e.training_total > FUZZ_MAX_MEMORY
        || e.flops_per_example > FUZZ_MAX_FLOPS || e.flops_per_example < 0)
        return;
    if (cnn_model_set_max_memory(m, FUZZ_MAX_MEMORY) != CNN_OK
        || cnn_model_set_threads(m, 1) != CNN_OK)
        return;
    cnn_shape in = cnn_model_input_shape(m);
    int64_t dims[CNN_MAX_RANK] = {2};
    for (int i = 0; i < in.rank; i++)
        dims[i + 1] = in.dims[i];
    cnn_tensor *x = NULL, *out = NULL;
    if (cnn_tensor_create(&x, in.rank + 1, dims) != CNN_OK)
        return;
    int64_t nx = cnn_tensor_size(x);
    for (int64_t i = 0; i < nx; i++)
        x->data[i] = (float)(i % 7) / 7.0f;
    cnn_status st = cnn_model_predict(m, x, 2, &out);
    if (st == CNN_OK) {
        FUZZ_CHECK(out && out->dims[0] == 2);
        cnn_tensor_free(out);
    } else {
        FUZZ_CHECK(out == NULL && cnn_last_error()[0]);
    }
    cnn_compile_config cfg;
    if (cnn_model_compile_config(m, &cfg) == CNN_OK) {
        cnn_tensor *y = NULL;
        cnn_shape os = cnn_model_output_shape(m);
        int64_t ydims[CNN_MAX_RANK] = {2};
        int yrank = 1;
        if (cfg.loss != CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY) {
            for (int i = 0; i < os.rank; i++)
                ydims[i + 1] = os.dims[i];
            yrank = os.rank + 1;
        }
        if (cnn_tensor_create(&y, yrank, ydims) == CNN_OK) {
            st = cnn_model_fit(m, x, y, cnn_fit(.epochs = 1, .batch_size = 2), NULL);
            FUZZ_CHECK(st == CNN_OK || cnn_last_error()[0]);
            double loss, acc;
            st = cnn_model_evaluate(m, x, y, 2, &loss, &acc);
            FUZZ_CHECK(st == CNN_OK || cnn_last_error()[0]);
            cnn_tensor_free(y);
        }
    }
    cnn_tensor_free(x);
}

/* A model a Keras reader returned: what its info says agrees with the model
 * (format, a terminated version string, compiled only with a training
 * config, optimizer state only when compiled), then it is exercised. Frees
 * it. Used by fuzz_keras.c and fuzz_keras_isolated.c. */
static inline void fuzz_check_keras_model(cnn_model *m, const cnn_keras_info *info)
{
    FUZZ_CHECK(m != NULL);
    FUZZ_CHECK(info->format == CNN_KERAS_H5 || info->format == CNN_KERAS_ZIP);
    FUZZ_CHECK(memchr(info->keras_version, '\0', sizeof info->keras_version) != NULL);
    FUZZ_CHECK(!info->compiled || info->has_training_config);
    FUZZ_CHECK(!info->optimizer_state || info->compiled);
    cnn_compile_config cfg;
    FUZZ_CHECK((cnn_model_compile_config(m, &cfg) == CNN_OK) == info->compiled);
    fuzz_exercise_model(m);
    cnn_model_free(m);
}

#endif
