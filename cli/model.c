/* Opening MODEL: a description (text or Keras JSON), a saved .cnn file or a
 * Keras .h5/.keras file, told apart by the library (cnn_model_open);
 * saving by extension. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_model_open_keras(const char *cmd, const char *path, uint64_t seed, int64_t max_memory,
                         int threads, cnn_model **out, cnn_keras_info *keras)
{
    *out = NULL;
    cnn_model *m = NULL;
    cnn_model_format format;
    cnn_status st = cnn_model_open(path, &m, &format, keras);
    if (st == CNN_OK && format == CNN_MODEL_FORMAT_DESCRIPTION)
        st = cnn_model_set_seed(m, seed);
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

int cli_model_open(const char *cmd, const char *path, uint64_t seed, int64_t max_memory,
                   int threads, cnn_model **out)
{
    return cli_model_open_keras(cmd, path, seed, max_memory, threads, out, NULL);
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
            || cnn_model_layer_param_count(a, i) != cnn_model_layer_param_count(b, i)
            || cnn_model_layer_input_count(a, i) != cnn_model_layer_input_count(b, i))
            return cli_failf(cmd, "layer %d differs: %s (%s) %s in %s, %s (%s) %s in %s", i,
                             cnn_model_layer_name(a, i), cnn_model_layer_type(a, i), sa, a_name,
                             cnn_model_layer_name(b, i), cnn_model_layer_type(b, i), sb, b_name);
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < cnn_model_layer_input_count(a, i); k++)
            if (cnn_model_layer_input(a, i, k) != cnn_model_layer_input(b, i, k))
                return cli_failf(cmd, "layer %d (%s) reads other layers in %s than in %s: not the"
                                 " same graph", i, cnn_model_layer_name(a, i), a_name, b_name);
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

bool cli_model_is_saved(const char *path)
{
    cnn_model_format f;
    return cnn_model_file_format(path, &f) == CNN_OK && f != CNN_MODEL_FORMAT_DESCRIPTION;
}

void cli_warn_untrained(const char *cmd, const char *path)
{
    cnn_model_format format;
    if (cnn_model_file_format(path, &format) != CNN_OK || format != CNN_MODEL_FORMAT_DESCRIPTION)
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
        if (strcmp(near, path) == 0 || !cli_model_is_saved(near))
            near[0] = '\0';
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
