/* Opening MODEL: a description (text or Keras JSON), a saved .cnn file or a
 * Keras .h5/.keras file; saving by extension. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define MODEL_MAGIC "CNNMODEL"

bool cli_is_model_file(const char *path)
{
    size_t n = strlen(path);
    if (n >= 4 && strcmp(path + n - 4, ".cnn") == 0)
        return true;
    char magic[8];
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    bool yes = fread(magic, 1, sizeof magic, f) == sizeof magic
            && memcmp(magic, MODEL_MAGIC, sizeof magic) == 0;
    fclose(f);
    return yes;
}

int cli_model_open(const char *cmd, const char *path, uint64_t seed, int64_t max_memory,
                   int threads, cnn_model **out)
{
    *out = NULL;
    cnn_model *m = NULL;
    cnn_status st;
    if (cli_is_model_file(path)) {
        st = cnn_model_load(path, &m);
    } else if (cli_is_keras_file(path)) {
        st = cnn_model_load_keras_isolated(path, 0, &m, NULL);
    } else {
        st = cnn_model_from_description(path, &m);
        if (st == CNN_OK)
            st = cnn_model_set_seed(m, seed);
    }
    if (st == CNN_OK)
        st = cnn_model_set_max_memory(m, max_memory);
    if (st == CNN_OK)
        st = cnn_model_set_threads(m, threads);
    if (st) {
        cnn_model_free(m);
        return cli_fail(cmd);
    }
    *out = m;
    return CLI_OK;
}

int cli_model_classes(const cnn_model *m)
{
    cnn_shape s = cnn_model_output_shape(m);
    if (s.rank != 1)
        return 0;
    return s.dims[0] == 1 ? 2 : s.dims[0];
}

int cli_model_same(const char *cmd, const cnn_model *a, const char *a_name, const cnn_model *b,
                   const char *b_name)
{
    char sa[48], sb[48];
    cli_format_shape(cnn_model_input_shape(a), sa, sizeof sa);
    cli_format_shape(cnn_model_input_shape(b), sb, sizeof sb);
    if (strcmp(sa, sb) != 0)
        return cli_failf(cmd, "%s takes input %s, %s takes %s: not the same model", a_name, sa,
                         b_name, sb);
    int n = cnn_model_layer_count(a);
    if (n != cnn_model_layer_count(b))
        return cli_failf(cmd, "%s has %d layers, %s has %d: not the same model", a_name, n,
                         b_name, cnn_model_layer_count(b));
    for (int i = 0; i < n; i++) {
        cli_format_shape(cnn_model_layer_output_shape(a, i), sa, sizeof sa);
        cli_format_shape(cnn_model_layer_output_shape(b, i), sb, sizeof sb);
        if (strcmp(cnn_model_layer_type(a, i), cnn_model_layer_type(b, i)) != 0
            || strcmp(sa, sb) != 0
            || cnn_model_layer_param_count(a, i) != cnn_model_layer_param_count(b, i))
            return cli_failf(cmd, "layer %d differs: %s (%s) %s in %s, %s (%s) %s in %s", i,
                             cnn_model_layer_name(a, i), cnn_model_layer_type(a, i), sa, a_name,
                             cnn_model_layer_name(b, i), cnn_model_layer_type(b, i), sb, b_name);
    }
    return CLI_OK;
}

bool cli_is_keras_file(const char *path)
{
    static const unsigned char hdf5[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char b[8];
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    bool yes = fread(b, 1, sizeof b, f) == sizeof b
            && (memcmp(b, hdf5, sizeof b) == 0
                || (b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4));
    fclose(f);
    return yes;
}

int cli_model_open_keras(const char *cmd, const char *path, uint64_t seed, int64_t max_memory,
                         int threads, cnn_model **out, cnn_keras_info *keras)
{
    if (keras)
        *keras = (cnn_keras_info){0};
    if (!cli_is_keras_file(path))
        return cli_model_open(cmd, path, seed, max_memory, threads, out);
    *out = NULL;
    cnn_model *m = NULL;
    cnn_status st = cnn_model_load_keras_isolated(path, 0, &m, keras);
    if (st == CNN_OK)
        st = cnn_model_set_max_memory(m, max_memory);
    if (st == CNN_OK)
        st = cnn_model_set_threads(m, threads);
    if (st) {
        cnn_model_free(m);
        return cli_fail(cmd);
    }
    *out = m;
    return CLI_OK;
}

void cli_keras_describe(const char *path, const cnn_keras_info *k)
{
    if (!k || !k->format)
        return;
    printf("Keras model %s (%s file%s%s)", path, k->format == CNN_KERAS_ZIP ? ".keras" : ".h5",
           k->keras_version[0] ? " written by Keras " : "", k->keras_version);
    if (k->compiled)
        printf(": compiled with its training config%s\n",
               k->optimizer_state ? " and Adam's saved state" : "");
    else if (k->has_training_config)
        printf(": its training config is not used: %s\n", k->not_compiled);
    else
        printf(": no training config\n");
    if (k->compiled && !k->optimizer_state && k->not_restored[0])
        printf("Fresh optimizer state: %s\n", k->not_restored);
}

void cli_warn_untrained(const char *cmd, const char *path)
{
    if (cli_is_model_file(path) || cli_is_keras_file(path))
        return;
    /* NAME.model -> NAME.cnn etc.: what `cnn train NAME.model --save` is
     * usually given; the extension is what follows the last dot of the
     * file name */
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - path) : strlen(path);
    static const char *const saved[] = {".cnn", ".keras", ".h5"};
    char near[4200] = "";
    for (size_t i = 0; i < sizeof saved / sizeof saved[0] && !near[0] && stem < 4096; i++) {
        snprintf(near, sizeof near, "%.*s%s", (int)stem, path, saved[i]);
        if (!(cli_is_model_file(near) || cli_is_keras_file(near)) || strcmp(near, path) == 0)
            near[0] = '\0';
        else {
            FILE *f = fopen(near, "rb"); /* .cnn is recognised by its name alone */
            if (!f)
                near[0] = '\0';
            else
                fclose(f);
        }
    }
    fprintf(stderr, "cnn %s: warning: %s is a model description, so its weights are random"
                    " (untrained) and the results below mean nothing", cmd, path);
    if (near[0])
        fprintf(stderr, "; did you mean the saved model %s?\n", near);
    else
        fprintf(stderr, "; train it first (cnn train %s ... --save NAME.cnn) and use the saved"
                        " file\n", path);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

cnn_status cli_model_save(cnn_model *m, const char *path)
{
    if (ends_with(path, ".keras"))
        return cnn_model_save_keras(m, path);
    if (ends_with(path, ".h5") || ends_with(path, ".hdf5"))
        return cnn_model_save_keras_h5(m, path);
    return cnn_model_save(m, path);
}
