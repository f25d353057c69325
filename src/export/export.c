/* cnn_model_export_c: a model as NAME.h, NAME.c and NAME_test.c in a
 * directory. The checks come first (the name, every target path, every
 * layer), then the three texts are built in memory, then each file is
 * written atomically: a refused export writes nothing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "export/export.h"
#include "kernels/quantize.h"
#include "model/memory.h"

enum { NAME_MAX_LEN = 48, TEST_VECTORS = 3 };

static const char *const c_keywords[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch",
    "typedef", "union", "unsigned", "void", "volatile", "while", "main"};

static cnn_status check_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    bool ok = n > 0 && n <= NAME_MAX_LEN && !(name[0] >= '0' && name[0] <= '9') &&
              name[0] != '_';
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_';
    }
    for (size_t k = 0; ok && k < sizeof c_keywords / sizeof c_keywords[0]; k++)
        ok = strcmp(name, c_keywords[k]) != 0;
    if (!ok)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "export: name '%s': expected a C identifier of 1 to %d letters, digits "
                        "and underscores, starting with a letter, not a C keyword",
                        name ? name : "(null)", NAME_MAX_LEN);
    return CNN_OK;
}

/* The directory exists (or is made) and each target is missing or a
 * regular file: checked before anything is written. */
static cnn_status check_paths(const char *dir, char paths[3][4096], const char *name)
{
    struct stat st;
    if (!dir || !*dir)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "export: no output directory given");
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir(dir, 0777) != 0)
            return cnn_io_error(dir, "output directory", errno);
    } else if (!S_ISDIR(st.st_mode)) {
        return cnn_fail(CNN_ERR_IO, "%s: expected a directory for the exported files", dir);
    }
    static const char *const suffix[3] = {".h", ".c", "_test.c"};
    for (int k = 0; k < 3; k++) {
        int len = snprintf(paths[k], 4096, "%s/%s%s", dir, name, suffix[k]);
        if (len < 0 || len >= 4096)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "export: %s: path too long", dir);
        if (stat(paths[k], &st) == 0) {
            if (!S_ISREG(st.st_mode))
                return cnn_fail(CNN_ERR_IO, "%s: exists and is not a regular file; not "
                                            "replaced", paths[k]);
        } else if (errno != ENOENT) {
            return cnn_io_error(paths[k], "output file", errno);
        }
    }
    return CNN_OK;
}

static void upper(const char *name, char *out)
{
    size_t i = 0;
    for (; name[i]; i++)
        out[i] = name[i] >= 'a' && name[i] <= 'z' ? (char)(name[i] - 'a' + 'A') : name[i];
    out[i] = '\0';
}

static void header(export_text *t, const cnn_model *m, const char *name, const char *N,
                   size_t arena)
{
    cnn_shape in = m->input_shape, out = m->layers[m->n_layers - 1]->out;
    export_printf(t,
                  "/* %s: a neural network exported by cnn %s (cnn export --c).\n"
                  " *\n"
                  " * C99 with no dependency: no malloc, no stdio, no libm. Input and output\n"
                  " * are float arrays in Keras's layout (rows, cols, channels; NHWC).\n"
                  " * %s_predict uses one static arena of %s_ARENA_BYTES (not reentrant);\n"
                  " * %s_predict_with_arena works in the caller's %s_ARENA_FLOATS floats.\n"
                  " * Both return 0, or -1 for a NULL pointer. */\n"
                  "#ifndef %s_H\n#define %s_H\n\n",
                  name, cnn_version(), name, N, name, N, N, N);
    char in_s[64], out_s[64];
    export_shape_text(in, in_s, sizeof in_s);
    export_shape_text(out, out_s, sizeof out_s);
    export_printf(t, "/* input %s, output %s */\n", in_s, out_s);
    export_printf(t, "#define %s_INPUT_SIZE %lld\n#define %s_OUTPUT_SIZE %lld\n", N,
                  (long long)cnn_shape_size(in), N, (long long)cnn_shape_size(out));
    export_printf(t, "/* the activation arena, from libcnn's memory planner */\n"
                     "#define %s_ARENA_FLOATS %zu\n#define %s_ARENA_BYTES %zu\n\n",
                  N, arena ? arena : 1, N, (arena ? arena : 1) * sizeof(float));
    export_printf(t,
                  "int %s_predict(const float *input, float *output);\n"
                  "int %s_predict_with_arena(const float *input, float *output, float *arena);\n"
                  "\n#endif\n",
                  name, name);
}

static void source(export_text *t, const char *name, const char *N, unsigned need,
                   const export_text *weights, const export_text *body)
{
    export_printf(t,
                  "/* %s: generated by cnn %s (cnn export --c); see %s.h. */\n"
                  "#include <stdint.h>\n\n#include \"%s.h\"\n\n",
                  name, cnn_version(), name, name);
    export_emit_runtime(t, need);
    export_puts(t, "/* ---- weights ---- */\n");
    if (weights->len)
        export_puts(t, weights->data);
    export_printf(t,
                  "\n/* ---- the network ---- */\n"
                  "int %s_predict_with_arena(const float *input, float *output, float *arena)\n"
                  "{\n"
                  "    if (!input || !output || !arena)\n"
                  "        return -1;\n",
                  name);
    if (body->len)
        export_puts(t, body->data);
    export_printf(t,
                  "    return 0;\n}\n\n"
                  "static float %s_arena[%s_ARENA_FLOATS];\n\n"
                  "int %s_predict(const float *input, float *output)\n"
                  "{\n"
                  "    return %s_predict_with_arena(input, output, %s_arena);\n"
                  "}\n",
                  name, N, name, name, name);
}

/* n inputs uniform in [0, 1) from splitmix64: the test (and stand-in
 * calibration) inputs, the same on every machine */
static void uniform_inputs(float *x, int64_t n)
{
    uint64_t seed = 20261204;
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(cnn_splitmix64(&seed) >> 40) / 16777216.0f;
}

/* The test program's includes, after its opening comment. */
static void test_includes(export_text *t, const char *name)
{
    export_printf(t,
                  "#include <stdio.h>\n#include <string.h>\n\n#include \"%s.h\"\n\n"
                  "#define TEST_VECTORS %d\n\n",
                  name, TEST_VECTORS);
}

/* The test program's main up to its vector loop, after its static arrays. */
static void test_main_start(export_text *t)
{
    export_puts(t, "static double magnitude(double v) { return v < 0 ? -v : v; }\n\n"
                   "int main(int argc, char **argv)\n"
                   "{\n"
                   "    int dump = argc > 1 && strcmp(argv[1], \"--dump\") == 0;\n");
}

/* The float outputs of vector t against want, within 1e-5 of the largest
 * magnitude (peak), up to the bytes of the output the dump prints. */
static void test_compare_floats(export_text *t, const char *N)
{
    export_printf(t,
                  "        for (j = 0; j < %s_OUTPUT_SIZE; j++) {\n"
                  "            double rel = peak > 0 ? magnitude((double)got[j] - want[j]) / peak\n"
                  "                                  : magnitude((double)got[j] - want[j]);\n"
                  "            if (!(rel <= 1e-5)) {\n"
                  "                if (failed < 10)\n"
                  "                    printf(\"vector %%d output %%d: got %%.9g, expected %%.9g\\n\", t, j, got[j], want[j]);\n"
                  "                failed++;\n"
                  "            }\n"
                  "            if (rel > worst)\n"
                  "                worst = rel;\n"
                  "            if (dump) {\n"
                  "                unsigned char b[sizeof(float)];\n"
                  "                memcpy(b, &got[j], sizeof b);\n",
                  N);
}

static cnn_status test_source(export_text *t, cnn_model *m, const char *name, const char *N)
{
    int64_t in = cnn_shape_size(m->input_shape);
    int64_t dims[CNN_MAX_RANK] = {TEST_VECTORS};
    for (int d = 0; d < m->input_shape.rank; d++)
        dims[d + 1] = m->input_shape.dims[d];
    cnn_tensor *x = NULL, *y = NULL;
    cnn_status st = cnn_tensor_create(&x, m->input_shape.rank + 1, dims);
    if (st)
        return st;
    uniform_inputs(x->data, TEST_VECTORS * in);
    if ((st = cnn_model_predict(m, x, TEST_VECTORS, &y))) {
        cnn_error_prefix("export: test vectors");
        cnn_tensor_free(x);
        return st;
    }
    int64_t out = cnn_tensor_size(y) / TEST_VECTORS;
    export_printf(t,
                  "/* Test vectors for %s, made by libcnn %s: inputs uniform in [0, 1) and\n"
                  " * the outputs of cnn_model_predict for them. Passes when every output is\n"
                  " * within 1e-5 of the expected value relative to the largest magnitude in\n"
                  " * its vector (rounding in the sums is relative to the values summed, not\n"
                  " * to an output that happens to be near 0). --dump prints the outputs'\n"
                  " * bits (compare machines with diff). */\n",
                  name, cnn_version());
    test_includes(t, name);
    export_float_array(t, "test_input", x->data, TEST_VECTORS * in);
    export_float_array(t, "test_expected", y->data, TEST_VECTORS * out);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    export_printf(t,
                  "\nstatic float arena[%s_ARENA_FLOATS];\n"
                  "static float got[%s_OUTPUT_SIZE];\n\n",
                  N, N);
    test_main_start(t);
    export_printf(t,
                  "    int t, j, failed = 0;\n"
                  "    double worst = 0;\n"
                  "    for (t = 0; t < TEST_VECTORS; t++) {\n"
                  "        const float *want = test_expected + (long)t * %s_OUTPUT_SIZE;\n"
                  "        double peak = 0;\n"
                  "        /* odd vectors through the caller's arena, even ones the static one */\n"
                  "        int rc = t %% 2 ? %s_predict_with_arena(test_input + (long)t * %s_INPUT_SIZE, got, arena)\n"
                  "                       : %s_predict(test_input + (long)t * %s_INPUT_SIZE, got);\n"
                  "        if (rc != 0) {\n"
                  "            printf(\"vector %%d: predict returned %%d\\n\", t, rc);\n"
                  "            failed++;\n"
                  "            continue;\n"
                  "        }\n"
                  "        for (j = 0; j < %s_OUTPUT_SIZE; j++)\n"
                  "            if (magnitude(want[j]) > peak)\n"
                  "                peak = magnitude(want[j]);\n",
                  N, name, N, name, N, N);
    test_compare_floats(t, N);
    export_printf(t,
                  "                printf(\"%%d %%d %%02x%%02x%%02x%%02x %%.9g\\n\", t, j, b[3], b[2], b[1], b[0], got[j]);\n"
                  "            }\n"
                  "        }\n"
                  "    }\n"
                  "    printf(\"%s_test: %%d vectors of %%d outputs, largest relative difference %%.3g "
                  "(tolerance 1e-5): %%s\\n\",\n"
                  "           TEST_VECTORS, %s_OUTPUT_SIZE, worst, failed ? \"FAILED\" : \"ok\");\n"
                  "    return failed ? 1 : 0;\n"
                  "}\n",
                  name, N);
    return CNN_OK;
}

/* What every entry point checks first: info zeroed, a model given
 * (missing says what is not), the name (NULL = "model") a C identifier. */
static cnn_status begin(const void *model, const char *missing, const char **name,
                        cnn_export_info *info)
{
    if (info)
        *info = (cnn_export_info){0};
    if (!model)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "export: %s", missing);
    if (!*name)
        *name = "model";
    return check_name(*name);
}

/* The texts of one export: the weights and the body go into c. */
typedef struct files {
    export_text w, body, h, c, test;
} files;

/* h, c and test written atomically to paths (NAME.h, NAME.c, NAME_test.c)
 * once every text is known to be whole. */
static cnn_status files_write(const files *f, char paths[3][4096])
{
    if (f->w.failed || f->body.failed || f->h.failed || f->c.failed || f->test.failed)
        return cnn_fail(CNN_ERR_NO_MEMORY, "export: out of memory building the C files");
    const export_text *t[3] = {&f->h, &f->c, &f->test};
    for (int k = 0; k < 3; k++) {
        cnn_status st = cnn_file_write_atomic(paths[k], t[k]->data, t[k]->len);
        if (st)
            return st;
    }
    return CNN_OK;
}

static void files_free(files *f)
{
    export_text_free(&f->w);
    export_text_free(&f->body);
    export_text_free(&f->h);
    export_text_free(&f->c);
    export_text_free(&f->test);
}

cnn_status cnn_model_export_c(cnn_model *m, const char *dir, const char *name,
                              cnn_export_info *info)
{
    cnn_status st = begin(m, "no model", &name, info);
    if (st)
        return st;
    if (m->n_layers == 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "export: the model has no layers");
    if ((st = cnn_model_build(m)) || (st = export_float_check(m)))
        return st;
    char paths[3][4096];
    if ((st = check_paths(dir, paths, name)))
        return st;

    size_t *offsets = malloc((size_t)m->n_layers * sizeof *offsets);
    if (!offsets)
        return cnn_fail(CNN_ERR_NO_MEMORY, "export: out of memory");
    size_t arena = 0, scratch = 0;
    files f = {0};
    char N[NAME_MAX_LEN + 1];
    upper(name, N);
    unsigned need = 0;
    if ((st = cnn_graph_plan(m, 1, false, offsets, &arena, &scratch)))
        goto done;
    if ((st = export_float_layers(m, offsets, &f.w, &f.body, &need)))
        goto done;
    header(&f.h, m, name, N, arena);
    source(&f.c, name, N, need, &f.w, &f.body);
    if ((st = test_source(&f.test, m, name, N)) || (st = files_write(&f, paths)))
        goto done;
    if (info) {
        info->arena_bytes = (int64_t)((arena ? arena : 1) * sizeof(float));
        for (int i = 0; i < m->n_layers; i++)
            info->weight_bytes += cnn_model_layer_param_count(m, i) * (int64_t)sizeof(float);
        info->test_vectors = TEST_VECTORS;
    }
done:
    free(offsets);
    files_free(&f);
    return st;
}

/* ---- int8 ------------------------------------------------------------- */

static void int8_header(export_text *t, cnn_qmodel *q, const char *name, const char *N,
                        int64_t arena, int64_t in, int64_t out)
{
    cnn_qparams qi = cnn_qmodel_input_params(q), qo = cnn_qmodel_output_params(q);
    export_printf(t,
                  "/* %s: a neural network quantized to int8 and exported by cnn %s\n"
                  " * (cnn export --c --int8; docs/QUANTIZATION.md has the arithmetic).\n"
                  " *\n"
                  " * C99 with no dependency: no malloc, no stdio, no libm. %s_predict takes\n"
                  " * float input in Keras's layout (NHWC), quantizes it with the input's\n"
                  " * parameters below, runs the integer network and gives float output%s.\n"
                  " * %s_predict_int8 takes input already quantized and gives the last int8\n"
                  " * tensor (real = scale * (q - zero_point)), bit for bit libcnn's.\n"
                  " * The _with_arena variants work in the caller's %s_ARENA_BYTES bytes;\n"
                  " * the others use one static arena (not reentrant). All return 0, or -1\n"
                  " * for a NULL pointer. */\n"
                  "#ifndef %s_H\n#define %s_H\n\n#include <stdint.h>\n\n",
                  name, cnn_version(), name,
                  cnn_qmodel_ends_in_softmax(q) ? " (the softmax of the dequantized logits)" : "",
                  name, N, N, N);
    export_printf(t, "#define %s_INPUT_SIZE %lld\n#define %s_OUTPUT_SIZE %lld\n", N,
                  (long long)in, N, (long long)out);
    export_printf(t, "#define %s_INPUT_SCALE ", N);
    export_float(t, qi.scale);
    export_printf(t, "\n#define %s_INPUT_ZERO_POINT %ld\n#define %s_OUTPUT_SCALE ", N,
                  (long)qi.zero_point, N);
    export_float(t, qo.scale);
    export_printf(t, "\n#define %s_OUTPUT_ZERO_POINT %ld\n", N, (long)qo.zero_point);
    export_printf(t, "/* int8 activations, one example: libcnn's memory plan (a tensor's bytes\n"
                     "   are reused once its last reader has run) */\n"
                     "#define %s_ARENA_BYTES %lld\n\n",
                  N, (long long)arena);
    export_printf(t,
                  "int %s_predict(const float *input, float *output);\n"
                  "int %s_predict_with_arena(const float *input, float *output, int8_t *arena);\n"
                  "int %s_predict_int8(const int8_t *input, int8_t *output);\n"
                  "int %s_predict_int8_with_arena(const int8_t *input, int8_t *output,\n"
                  "                             int8_t *arena);\n"
                  "\n#endif\n",
                  name, name, name, name);
}

/* The ops read and write the arena at the plan's offsets: the input is
 * quantized (or copied) to its value's place, the output read from its own. */
static void int8_source(export_text *t, cnn_qmodel *q, const char *name, const char *N,
                        const export_text *weights, const export_text *body)
{
    bool softmax = cnn_qmodel_ends_in_softmax(q);
    long long in_at = (long long)cnn_qmodel_value(q, 0)->offset;
    long long out_at = (long long)cnn_qmodel_value(q, cnn_qmodel_output_value(q))->offset;
    export_printf(t,
                  "/* %s: generated by cnn %s (cnn export --c --int8); see %s.h. */\n"
                  "#include <stdint.h>\n\n#include \"%s.h\"\n\n",
                  name, cnn_version(), name, name);
    if (softmax)
        export_emit_runtime(t, EXPORT_NEED_ACT);
    if (weights->len)
        export_puts(t, weights->data);
    export_printf(t,
                  "\n/* ---- the network: the input at arena + %lld, the output at arena + %lld ---- */\n"
                  "static void run(int8_t *arena)\n"
                  "{\n",
                  in_at, out_at);
    if (body->len)
        export_puts(t, body->data);
    export_printf(t,
                  "}\n\n"
                  "int %s_predict_int8_with_arena(const int8_t *input, int8_t *output, int8_t *arena)\n"
                  "{\n"
                  "    long i;\n"
                  "    if (!input || !output || !arena)\n"
                  "        return -1;\n"
                  "    for (i = 0; i < %s_INPUT_SIZE; i++)\n"
                  "        arena[%lld + i] = input[i];\n"
                  "    run(arena);\n"
                  "    for (i = 0; i < %s_OUTPUT_SIZE; i++)\n"
                  "        output[i] = arena[%lld + i];\n"
                  "    return 0;\n}\n\n"
                  "int %s_predict_with_arena(const float *input, float *output, int8_t *arena)\n"
                  "{\n"
                  "    if (!input || !output || !arena)\n"
                  "        return -1;\n"
                  "    q_quantize(input, %s_INPUT_SIZE, %s_INPUT_SCALE, %s_INPUT_ZERO_POINT, arena + %lld);\n"
                  "    run(arena);\n"
                  "    q_dequantize(arena + %lld, %s_OUTPUT_SIZE, %s_OUTPUT_SCALE, %s_OUTPUT_ZERO_POINT, output);\n",
                  name, N, in_at, N, out_at, name, N, N, N, in_at, out_at, N, N, N);
    if (softmax)
        export_printf(t, "    k_act(output, %s_OUTPUT_SIZE, 4, %s_OUTPUT_SIZE);\n", N, N);
    export_printf(t,
                  "    return 0;\n}\n\n"
                  "static int8_t %s_arena[%s_ARENA_BYTES];\n\n"
                  "int %s_predict(const float *input, float *output)\n"
                  "{\n"
                  "    return %s_predict_with_arena(input, output, %s_arena);\n"
                  "}\n\n"
                  "int %s_predict_int8(const int8_t *input, int8_t *output)\n"
                  "{\n"
                  "    return %s_predict_int8_with_arena(input, output, %s_arena);\n"
                  "}\n",
                  name, N, name, name, name, name, name, name);
}

static cnn_status int8_test_source(export_text *t, cnn_qmodel *q, const cnn_tensor *x,
                                   int64_t in, int64_t out, const char *name, const char *N)
{
    int8_t *xq = malloc((size_t)(TEST_VECTORS * in)), *yq = malloc((size_t)(TEST_VECTORS * out));
    float *y = malloc((size_t)(TEST_VECTORS * out) * sizeof *y);
    cnn_status st = CNN_OK;
    if (!xq || !yq || !y) {
        st = cnn_fail(CNN_ERR_NO_MEMORY, "export: out of memory");
        goto done;
    }
    cnn_q_quantize(x->data, TEST_VECTORS * in, cnn_qmodel_input_params(q), xq);
    if ((st = cnn_qmodel_predict_int8(q, xq, TEST_VECTORS, yq)) ||
        (st = cnn_qmodel_predict(q, x, y)))
        goto done;
    export_printf(t,
                  "/* Test vectors for %s, made by libcnn %s: float inputs, the same\n"
                  " * quantized by libcnn, and libcnn's int8 outputs for them and float\n"
                  " * outputs. Passes when %s_predict_int8 gives the int8 outputs exactly\n"
                  " * and %s_predict the float ones within 1e-5 relative to the largest in\n"
                  " * each vector (the float softmax uses the exported exp, not libm's).\n"
                  " * --dump prints the outputs' bits (compare machines with diff). */\n",
                  name, cnn_version(), name, name);
    test_includes(t, name);
    export_float_array(t, "test_input", x->data, TEST_VECTORS * in);
    export_int8_array(t, "test_input_q", xq, TEST_VECTORS * in);
    export_int8_array(t, "test_expected_q", yq, TEST_VECTORS * out);
    export_float_array(t, "test_expected", y, TEST_VECTORS * out);
    export_printf(t,
                  "\nstatic int8_t arena[%s_ARENA_BYTES];\n"
                  "static int8_t got_q[%s_OUTPUT_SIZE];\n"
                  "static float got[%s_OUTPUT_SIZE];\n\n",
                  N, N, N);
    test_main_start(t);
    export_printf(t,
                  "    int t, j, failed = 0, int8_wrong = 0;\n"
                  "    double worst = 0;\n"
                  "    for (t = 0; t < TEST_VECTORS; t++) {\n"
                  "        const int8_t *want_q = test_expected_q + (long)t * %s_OUTPUT_SIZE;\n"
                  "        const float *want = test_expected + (long)t * %s_OUTPUT_SIZE;\n"
                  "        double peak = 0;\n"
                  "        int rc = t %% 2 ? %s_predict_int8_with_arena(test_input_q + (long)t * %s_INPUT_SIZE, got_q, arena)\n"
                  "                       : %s_predict_int8(test_input_q + (long)t * %s_INPUT_SIZE, got_q);\n"
                  "        rc |= t %% 2 ? %s_predict(test_input + (long)t * %s_INPUT_SIZE, got)\n"
                  "                    : %s_predict_with_arena(test_input + (long)t * %s_INPUT_SIZE, got, arena);\n"
                  "        if (rc != 0) {\n"
                  "            printf(\"vector %%d: predict failed\\n\", t);\n"
                  "            failed++;\n"
                  "            continue;\n"
                  "        }\n"
                  "        for (j = 0; j < %s_OUTPUT_SIZE; j++) {\n"
                  "            if (got_q[j] != want_q[j]) {\n"
                  "                if (int8_wrong < 10)\n"
                  "                    printf(\"vector %%d int8 output %%d: got %%d, expected %%d\\n\", t, j, got_q[j], want_q[j]);\n"
                  "                int8_wrong++;\n"
                  "            }\n"
                  "            if (magnitude(want[j]) > peak)\n"
                  "                peak = magnitude(want[j]);\n"
                  "        }\n",
                  N, N, name, N, name, N, name, N, name, N, N);
    test_compare_floats(t, N);
    export_printf(t,
                  "                printf(\"%%d %%d %%d %%02x%%02x%%02x%%02x %%.9g\\n\", t, j, got_q[j], b[3], b[2], b[1], b[0], got[j]);\n"
                  "            }\n"
                  "        }\n"
                  "    }\n"
                  "    printf(\"%s_test: %%d vectors of %%d outputs, int8 outputs %%s, largest relative difference \"\n"
                  "           \"%%.3g (tolerance 1e-5): %%s\\n\", TEST_VECTORS, %s_OUTPUT_SIZE,\n"
                  "           int8_wrong ? \"DIFFERENT\" : \"identical\", worst, failed || int8_wrong ? \"FAILED\" : \"ok\");\n"
                  "    return failed || int8_wrong ? 1 : 0;\n"
                  "}\n",
                  name, N);
done:
    free(xq);
    free(yq);
    free(y);
    return st;
}

/* Calibration data: the caller's, or TEST_VECTORS + 61 inputs uniform in
 * [0, 1) (a stand-in that sizes the model, not one that keeps accuracy) */
static cnn_status calibration_inputs(cnn_shape shape, const cnn_tensor *calib,
                                     cnn_tensor **out)
{
    int64_t dims[CNN_MAX_RANK] = {calib ? calib->dims[0] : 64};
    for (int d = 0; d < shape.rank; d++)
        dims[d + 1] = shape.dims[d];
    if (calib && calib->rank != shape.rank + 1)
        return cnn_fail(CNN_ERR_SHAPE, "export: calibration data: expected rank %d, got %d",
                        shape.rank + 1, calib->rank);
    cnn_status st = cnn_tensor_create(out, shape.rank + 1, dims);
    if (st)
        return st;
    int64_t n = cnn_tensor_size(*out);
    if (calib) {
        if (cnn_tensor_size(calib) != n) {
            cnn_tensor_free(*out);
            *out = NULL;
            return cnn_fail(CNN_ERR_SHAPE, "export: calibration data: examples of the wrong "
                                           "shape for the model's input");
        }
        memcpy((*out)->data, calib->data, (size_t)n * sizeof(float));
    } else {
        uniform_inputs((*out)->data, n);
    }
    return CNN_OK;
}

/* Writes q as C; x: at least TEST_VECTORS inputs, the first ones the test
 * vectors. */
static cnn_status export_qmodel(cnn_qmodel *q, const cnn_tensor *x, const char *dir,
                                const char *name, cnn_export_info *info)
{
    cnn_status st = export_int8_check(q);
    if (st)
        return st;
    cnn_qmodel_set_isa(q, CNN_QISA_GENERIC);
    files f = {0};
    /* the paths once the model is known to export: a refusal makes no directory */
    char paths[3][4096];
    if ((st = check_paths(dir, paths, name)))
        goto done;
    char N[NAME_MAX_LEN + 1];
    upper(name, N);
    int64_t weight_bytes = 0;
    int64_t in = cnn_shape_size(cnn_qmodel_input_shape(q));
    int64_t out = cnn_shape_size(cnn_qmodel_output_shape(q));
    if ((st = export_int8_ops(q, &f.w, &f.body, &weight_bytes)))
        goto done;
    int64_t arena = cnn_qmodel_arena_bytes(q);
    int8_header(&f.h, q, name, N, arena, in, out);
    int8_source(&f.c, q, name, N, &f.w, &f.body);
    cnn_tensor view = *x;
    view.dims[0] = TEST_VECTORS;
    if ((st = int8_test_source(&f.test, q, &view, in, out, name, N)) ||
        (st = files_write(&f, paths)))
        goto done;
    if (info) {
        info->arena_bytes = arena;
        info->weight_bytes = weight_bytes;
        info->test_vectors = TEST_VECTORS;
    }
done:
    files_free(&f);
    return st;
}

cnn_status cnn_model_export_c_int8(cnn_model *m, const cnn_tensor *calib, int64_t count,
                                   const char *dir, const char *name, cnn_export_info *info)
{
    cnn_status st = begin(m, "no model", &name, info);
    if (st)
        return st;
    if ((st = cnn_model_build(m)))
        return st;
    cnn_tensor *x = NULL;
    if ((st = calibration_inputs(m->input_shape, calib, &x)))
        return st;
    if (x->dims[0] < TEST_VECTORS) {
        cnn_tensor_free(x);
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "export: calibration data: expected at least "
                                                  "%d examples", TEST_VECTORS);
    }
    cnn_qmodel *q = NULL;
    if ((st = cnn_qmodel_create(&q, m, x, count))) {
        cnn_error_prefix("export: int8");
        cnn_tensor_free(x);
        return st;
    }
    /* the first calibration examples are the test inputs: real-looking ones */
    st = export_qmodel(q, x, dir, name, info);
    cnn_qmodel_free(q);
    cnn_tensor_free(x);
    return st;
}

cnn_status cnn_qmodel_export_c(cnn_qmodel *q, const char *dir, const char *name,
                               cnn_export_info *info)
{
    cnn_status st = begin(q, "no quantized model", &name, info);
    if (st)
        return st;
    /* no calibration data in the file: test inputs uniform in [0, 1) */
    cnn_tensor *x = NULL;
    if ((st = calibration_inputs(cnn_qmodel_input_shape(q), NULL, &x)))
        return st;
    st = export_qmodel(q, x, dir, name, info);
    cnn_tensor_free(x);
    return st;
}
