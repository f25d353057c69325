/* Saving a model as Keras saves one, so keras.saving.load_model() opens it:
 *
 *   .keras  a zip, stored uncompressed as Keras writes it: metadata.json,
 *           config.json (Keras 3 serialisation), model.weights.h5 with
 *             layers/<key>/vars/0, 1, ...  (key: the class in snake_case,
 *                                           numbered per class: conv2d_1)
 *             vars/                        (the Sequential's own: none)
 *             optimizer/vars/0, 1, ...     (when compiled: iterations,
 *                                           learning_rate, the slots)
 *           each vars group with attribute name = the object's name.
 *   .h5     the legacy layout: root attributes backend, keras_version,
 *           model_config (Keras 2 form), training_config (when compiled);
 *           model_weights with attributes layer_names, backend,
 *           keras_version and one group per layer with attribute
 *           weight_names and the datasets <layer>/<weight>:0.
 *
 * Both are built in memory (HDF5 through its core driver), then written
 * by the one atomic writer (core/fileio.c: a temporary file beside the
 * target, fsync, rename, fsync of the directory). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "io/keras.h"
#include "model/vocabulary.h"
#include "model/model.h"

/* The Keras releases whose layouts these writers follow. */
#define KERAS3_VERSION "3.14.0"
#define KERAS2_VERSION "2.15.0"

/* ---- Shared -------------------------------------------------------------------------------- */

static cnn_status prepare(cnn_model *m, const char *path, const char *what)
{
    if (!m || !path || !*path)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: a model and a path are required", what);
    if (m->n_layers == 0)
        return cnn_fail(CNN_ERR_STATE, "%s: %s: the model has no layers", path, what);
    int bad = cnn_keras_unwritable(m);
    if (bad >= 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s: %s: layer %d (%s): activation gelu_tanh (gelu with approximate=True)"
                        " has no Keras name; Keras's \"gelu\" is the exact one",
                        path, what, bad, cnn_model_layer_name(m, bad));
    cnn_status st = cnn_model_build(m);
    if (st)
        cnn_error_prefix("%s", path);
    return st;
}

static cnn_status json_text(const json_t *v, const char *path, char **out)
{
    *out = v ? cnn_keras_dumps(v) : NULL;
    return *out ? CNN_OK : cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory writing JSON", path);
}

static cnn_status write_vars(hid_t f, const char *group, const char *name, const char *path,
                             hid_t *out)
{
    cnn_status st = cnn_h5_create_group(f, group, path, out);
    if (!st)
        st = cnn_h5_write_string_attr(*out, "name", name, true, path);
    return st;
}

/* ---- .keras ------------------------------------------------------------------------------- */

/* Keras 3's optimizer variables: iterations, learning_rate, then the slots
 * of every trainable tensor (Adam: momentum, velocity per tensor; SGD with
 * momentum: one per tensor; RMSprop: all velocities, then all momentums). */
static cnn_status write_optimizer(const cnn_model *m, hid_t w, const char *path)
{
    const cnn_optimizer *o = &m->opt;
    hid_t g;
    cnn_status st = write_vars(w, "optimizer/vars", cnn_optimizer_keras3_name(o->kind), path, &g);
    int k = 0;
    char key[32];
    if (!st) {
        snprintf(key, sizeof key, "%d", k++);
        st = cnn_h5_write_i64(g, key, m->opt_steps, path);
    }
    if (!st) {
        snprintf(key, sizeof key, "%d", k++);
        st = cnn_h5_write_floats(g, key, 0, NULL, &o->learning_rate, path);
    }
    /* passes over the trainable tensors: which slot array each writes */
    const float *passes[2] = {NULL, NULL};
    bool interleave = false;
    if (o->kind == CNN_OPTIMIZER_ADAM) {
        passes[0] = m->opt_m;
        passes[1] = m->opt_v;
        interleave = true;
    } else if (o->kind == CNN_OPTIMIZER_SGD && o->momentum > 0) {
        passes[0] = m->opt_m;
    } else if (o->kind == CNN_OPTIMIZER_RMSPROP) {
        passes[0] = m->opt_v;
        passes[1] = o->momentum > 0 ? m->opt_m : NULL;
    }
    for (int pass = 0; pass < (interleave ? 1 : 2) && !st; pass++) {
        if (!passes[pass])
            continue;
        for (int i = 0; i < m->n_layers && !st; i++)
            for (int p = 0; p < m->layers[i]->n_params && !st; p++) {
                const cnn_param *prm = &m->layers[i]->params[p];
                if (!prm->trainable)
                    continue;
                int64_t off = (int64_t)(prm->value - m->params);
                for (int s = 0; s < (interleave ? 2 : 1) && !st; s++) {
                    snprintf(key, sizeof key, "%d", k++);
                    st = cnn_h5_write_floats(g, key, prm->rank, prm->dims,
                                             passes[interleave ? s : pass] + off, path);
                }
            }
    }
    if (g >= 0)
        H5Gclose(g);
    return st;
}

static cnn_status keras3_weights(const cnn_model *m, const char *path, void **bytes, size_t *size)
{
    hid_t w;
    cnn_status st = cnn_h5_create_image(path, &w);
    if (st)
        return st;
    for (int i = 0; i < m->n_layers && !st; i++) {
        const cnn_layer *l = m->layers[i];
        int same = 0;
        for (int j = 0; j < i; j++)
            same += strcmp(l->ops->type_name, m->layers[j]->ops->type_name) == 0;
        char snake[96], group[160];
        cnn_keras_snake_case(l->ops->type_name, snake, sizeof snake);
        if (same)
            snprintf(group, sizeof group, "layers/%s_%d/vars", snake, same);
        else
            snprintf(group, sizeof group, "layers/%s/vars", snake);
        hid_t g;
        st = write_vars(w, group, l->name, path, &g);
        for (int p = 0; p < l->n_params && !st; p++) {
            char key[16];
            snprintf(key, sizeof key, "%d", p);
            st = cnn_h5_write_floats(g, key, l->params[p].rank, l->params[p].dims,
                                     l->params[p].value, path);
        }
        if (g >= 0)
            H5Gclose(g);
    }
    hid_t top = H5I_INVALID_HID;
    if (!st)
        st = write_vars(w, "vars", "sequential", path, &top);
    if (top >= 0)
        H5Gclose(top);
    if (!st && m->compiled)
        st = write_optimizer(m, w, path);
    if (!st)
        st = cnn_h5_image_bytes(w, path, bytes, size);
    H5Fclose(w);
    return st;
}

cnn_status cnn_model_save_keras(cnn_model *m, const char *path)
{
    cnn_status st = prepare(m, path, "save_keras");
    if (st)
        return st;
    cnn_h5_quiet q;
    cnn_h5_quiet_begin(&q);
    char *config = NULL, *meta = NULL, date[32];
    void *weights = NULL, *zip = NULL;
    size_t weights_size = 0, zip_size = 0;
    time_t now = time(NULL);
    struct tm tm;
    strftime(date, sizeof date, "%Y-%m-%d@%H:%M:%S", localtime_r(&now, &tm));
    json_t *cfg = cnn_keras3_config(m);
    json_t *md = json_pack("{s:s, s:s}", "keras_version", KERAS3_VERSION, "date_saved", date);
    st = json_text(md, path, &meta);
    if (!st)
        st = json_text(cfg, path, &config);
    if (!st)
        st = keras3_weights(m, path, &weights, &weights_size);
    if (!st) {
        const cnn_zip_member members[] = {
            {"metadata.json", meta, strlen(meta), true},
            {"config.json", config, strlen(config), true},
            {"model.weights.h5", weights, weights_size, false},
        };
        st = cnn_zip_write(members, 3, path, &zip, &zip_size);
    }
    if (!st)
        st = cnn_file_write_atomic(path, zip, zip_size);
    json_decref(cfg);
    json_decref(md);
    free(config);
    free(meta);
    free(weights);
    free(zip);
    cnn_h5_quiet_end(&q);
    return st;
}

/* ---- legacy .h5 ------------------------------------------------------------------------------ */

/* Keras splits a list attribute whose array would pass 64512 bytes (an
 * HDF5 object header's room) into name0, name1, ..., as numpy's
 * array_split does: the first len % chunks parts one longer. */
#define HDF5_OBJECT_HEADER_LIMIT 64512

static cnn_status write_names(hid_t obj, const char *attr, const char *const *s, int n,
                              const char *path)
{
    size_t width = 1;
    for (int i = 0; i < n; i++)
        width = strlen(s[i]) > width ? strlen(s[i]) : width;
    int chunks = 1;
    while ((size_t)((n + chunks - 1) / chunks) * width > HDF5_OBJECT_HEADER_LIMIT)
        chunks++;
    if (chunks == 1)
        return cnn_h5_write_string_list(obj, attr, s, n, path);
    cnn_status st = CNN_OK;
    for (int c = 0, at = 0; c < chunks && !st; c++) {
        int len = n / chunks + (c < n % chunks);
        char name[96];
        snprintf(name, sizeof name, "%s%d", attr, c);
        st = cnn_h5_write_string_list(obj, name, s + at, len, path);
        at += len;
    }
    return st;
}

static cnn_status keras2_weights(const cnn_model *m, hid_t f, const char *path)
{
    hid_t mw;
    cnn_status st = cnn_h5_create_group(f, "model_weights", path, &mw);
    if (st)
        return st;
    const char **names = calloc((size_t)m->n_layers, sizeof *names);
    if (!names)
        st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", path);
    for (int i = 0; !st && i < m->n_layers; i++)
        names[i] = m->layers[i]->name;
    if (!st)
        st = write_names(mw, "layer_names", names, m->n_layers, path);
    if (!st)
        st = cnn_h5_write_string_attr(mw, "backend", "tensorflow", false, path);
    if (!st)
        st = cnn_h5_write_string_attr(mw, "keras_version", KERAS2_VERSION, false, path);
    for (int i = 0; i < m->n_layers && !st; i++) {
        const cnn_layer *l = m->layers[i];
        char weight[CNN_MAX_LAYER_WEIGHTS][CNN_LAYER_NAME_MAX + 40];
        const char *list[CNN_MAX_LAYER_WEIGHTS];
        for (int p = 0; p < l->n_params; p++) {
            snprintf(weight[p], sizeof weight[p], "%s/%s:0", l->name, l->params[p].name);
            list[p] = weight[p];
        }
        hid_t g;
        st = cnn_h5_create_group(mw, l->name, path, &g);
        if (!st)
            st = write_names(g, "weight_names", list, l->n_params, path);
        for (int p = 0; p < l->n_params && !st; p++)
            st = cnn_h5_write_floats(g, weight[p], l->params[p].rank, l->params[p].dims,
                                     l->params[p].value, path);
        if (g >= 0)
            H5Gclose(g);
    }
    free(names);
    H5Gclose(mw);
    return st;
}

cnn_status cnn_model_save_keras_h5(cnn_model *m, const char *path)
{
    cnn_status st = prepare(m, path, "save_keras_h5");
    if (st)
        return st;
    cnn_h5_quiet q;
    cnn_h5_quiet_begin(&q);
    json_t *cfg = cnn_keras2_config(m), *tc = cnn_keras2_training_config(m);
    if (cfg) {
        json_object_set_new(cfg, "keras_version", json_string(KERAS2_VERSION));
        json_object_set_new(cfg, "backend", json_string("tensorflow"));
    }
    char *config = NULL, *training = NULL;
    void *bytes = NULL;
    size_t size = 0;
    hid_t f = H5I_INVALID_HID;
    const json_t *hard = cnn_keras_hard_sigmoid_layer(cfg);
    if (hard) /* keras.h: tf.keras 2 would read it as its own hard_sigmoid */
        st = cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: save_keras_h5: layer '%s': activation"
                      " hard_sigmoid is relu6(x + 3) / 6 here (Keras 3) but clip(0.2 x + 0.5, 0,"
                      " 1) in tf.keras 2, which reads legacy .h5 files: save the model as"
                      " .keras instead", path,
                      json_string_value(json_object_get(json_object_get(hard, "config"),
                                                        "name")));
    else
        st = json_text(cfg, path, &config);
    if (!st && tc)
        st = json_text(tc, path, &training);
    if (!st)
        st = cnn_h5_create_image(path, &f);
    if (!st)
        st = cnn_h5_write_string_attr(f, "backend", "tensorflow", false, path);
    if (!st)
        st = cnn_h5_write_string_attr(f, "keras_version", KERAS2_VERSION, false, path);
    if (!st)
        st = cnn_h5_write_string_attr(f, "model_config", config, false, path);
    if (!st && training)
        st = cnn_h5_write_string_attr(f, "training_config", training, false, path);
    if (!st)
        st = keras2_weights(m, f, path);
    if (!st)
        st = cnn_h5_image_bytes(f, path, &bytes, &size);
    if (f >= 0)
        H5Fclose(f);
    if (!st)
        st = cnn_file_write_atomic(path, bytes, size);
    json_decref(cfg);
    json_decref(tc);
    free(config);
    free(training);
    free(bytes);
    cnn_h5_quiet_end(&q);
    return st;
}
