/* Loading Keras models: legacy HDF5 .h5 files (Keras 1/2, and Keras 3's
 * legacy writer) and Keras 3 .keras archives (also tf.keras 2.13+), into a
 * Sequential model with its weights, compiled with the file's optimizer
 * and loss when the library has them, and with Adam's state when the file
 * holds it in a layout this reader knows.
 *
 * The architecture (model_config / config.json) goes through the
 * description reader, which refuses every layer, argument and model class
 * the library cannot compute exactly (naming the layer); nothing in a file
 * is ever executed. Weights are then matched to the layers:
 *   .h5:    model_weights/<layer>/ has attribute weight_names; the datasets
 *           are at model_weights/<layer>/<weight name> ("conv2d_1/kernel:0"
 *           in Keras 2, "conv2d/kernel" in Keras 3). As Keras does, the
 *           groups with weights are matched in order to the layers with
 *           weights, layer_names giving the order.
 *   .keras: model.weights.h5 has layers/<key>/vars/0, 1, ... where Keras
 *           names the key after the layer's class, numbered per class in
 *           order ("conv2d", "conv2d_1"); newer Keras also records the
 *           layer's name as the group's attribute "name".
 * Every weight's shape is checked against the architecture before it is
 * read; every value must be finite. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/model_format.h"
#include "io/description.h"
#include "io/keras.h"
#include "model/file.h"
#include "model/model.h"

static void set_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* ---- Weights into the model -------------------------------------------------------- */

static int64_t param_offset(const cnn_model *m, const cnn_param *p)
{
    return (int64_t)(p->value - m->params);
}

/* The layers that have weights, in order. */
static int weighted_layers(const cnn_model *m, int *idx)
{
    int n = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i]->n_params > 0)
            idx[n++] = i;
    return n;
}

static void weight_label(const cnn_layer *l, int p, char *buf, size_t size)
{
    snprintf(buf, size, "layer %s (%s): %s", l->name, l->ops->type_name, l->params[p].name);
}

/* Builds the model within the memory budget its weights need. */
static cnn_status build(cnn_model *m, const char *name)
{
    int64_t bytes = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int p = 0; p < m->layers[i]->n_params; p++)
            bytes += m->layers[i]->params[p].count * (int64_t)sizeof(float);
    cnn_status st = cnn_model_build(m);
    if (st)
        cnn_error_prefix("%s: %lld bytes of weights", name, (long long)bytes);
    return st;
}

/* ---- Adam's state -------------------------------------------------------------------- */

/* Where each trainable tensor's first and second moments are among an
 * optimizer's variables, in the three layouts Keras has written. */
typedef enum {
    SLOTS_KERAS2 = 1, /* iterations, m..., v..., vhat... (Keras <= 2.3) */
    SLOTS_TF2 = 2,    /* iterations, m..., v...         (tf.keras 2.x) */
    SLOTS_KERAS3 = 3, /* iterations, learning_rate, m0, v0, m1, v1, ... */
    SLOTS_KERAS211 = 4 /* iteration, m0, v0, m1, v1, ... (Keras 2.11 and 2.12's
                          new optimizers: Adam/m/<weight>, Adam/v/<weight>) */
} slot_layout;

/* Whether path names a moment of Keras 2.11's new optimizers: "Adam/m/..." */
static bool new_optimizer_slot(const char *path, char moment)
{
    const char *p = strchr(path, '/');
    return p && p[1] == moment && p[2] == '/';
}

static int trainable_tensors(const cnn_model *m, const cnn_param **out)
{
    int n = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int p = 0; p < m->layers[i]->n_params; p++)
            if (m->layers[i]->params[p].trainable) {
                if (out)
                    out[n] = &m->layers[i]->params[p];
                n++;
            }
    return n;
}

static cnn_status read_i64_scalar(hid_t loc, const char *path, int64_t *out)
{
    hid_t dapl = cnn_h5_dapl();
    hid_t d = dapl >= 0 && cnn_h5_exists(loc, path) ? H5Dopen2(loc, path, dapl) : -1;
    if (dapl >= 0)
        H5Pclose(dapl);
    if (d < 0)
        return CNN_ERR_FORMAT;
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    bool ok = t >= 0 && s >= 0 && H5Tget_class(t) == H5T_INTEGER
           && H5Sget_simple_extent_npoints(s) == 1
           && H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0;
    if (t >= 0)
        H5Tclose(t);
    if (s >= 0)
        H5Sclose(s);
    H5Dclose(d);
    H5Eclear2(H5E_DEFAULT);
    return ok && *out >= 0 ? CNN_OK : CNN_ERR_FORMAT;
}

/* Restores Adam's moments and step count from the n variables at paths
 * (relative to loc), if they have one of the layouts with the model's
 * shapes; otherwise leaves the fresh state and says why. A damaged file
 * is still an error. */
static cnn_status restore_adam(cnn_model *m, hid_t loc, char **paths, int n, const char *file,
                               cnn_keras_info *info)
{
    const cnn_param **t = calloc((size_t)m->n_layers * CNN_LAYER_MAX_PARAMS + 1, sizeof *t);
    if (!t)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", file);
    int T = trainable_tensors(m, t);
    slot_layout layout = n == 2 + 2 * T ? SLOTS_KERAS3
                       : n == 1 + 3 * T ? SLOTS_KERAS2
                       : n == 1 + 2 * T && T > 0 && new_optimizer_slot(paths[1], 'm')
                               && new_optimizer_slot(paths[2], 'v')
                           ? SLOTS_KERAS211
                       : n == 1 + 2 * T ? SLOTS_TF2 : 0;
    int64_t steps = 0;
    cnn_status st = CNN_OK;
    if (!layout || T == 0 || read_i64_scalar(loc, paths[0], &steps)) {
        snprintf(info->not_restored, sizeof info->not_restored,
                 "the optimizer's %d variables are not Adam's for this model's %d weight"
                 " tensors", n, T);
        free(t);
        return CNN_OK;
    }
    for (int j = 0; j < T && !st; j++) {
        int im = layout == SLOTS_KERAS3 ? 2 + 2 * j : layout == SLOTS_KERAS211 ? 1 + 2 * j : 1 + j;
        int iv = layout == SLOTS_KERAS3 ? 3 + 2 * j
               : layout == SLOTS_KERAS211 ? 2 + 2 * j : 1 + T + j;
        int64_t off = param_offset(m, t[j]);
        char what[160];
        snprintf(what, sizeof what, "Adam's state of weight tensor %d", j);
        st = cnn_h5_read_floats(loc, paths[im], file, what, t[j]->rank, t[j]->dims,
                                m->opt_m + off);
        if (!st)
            st = cnn_h5_read_floats(loc, paths[iv], file, what, t[j]->rank, t[j]->dims,
                                    m->opt_v + off);
    }
    free(t);
    if (st) {
        /* back to a fresh state: a half-restored one would be wrong */
        memset(m->opt_m, 0, (size_t)m->n_params * sizeof(float));
        memset(m->opt_v, 0, (size_t)m->n_params * sizeof(float));
        return st;
    }
    if (steps > CNN_MAX_STEPS)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s: Adam's step count is %lld, more than 2^53"
                        " (no real training makes that many)", file, paths[0], (long long)steps);
    m->opt_steps = steps;
    info->optimizer_state = true;
    return CNN_OK;
}

/* Compiles the model from a training config's optimizer and loss. */
static cnn_status compile_from(cnn_model *m, const json_t *optimizer, const json_t *loss,
                               const char *where, cnn_keras_info *info)
{
    cnn_compile_config cc;
    bool ok;
    info->has_training_config = true;
    cnn_status st = cnn_keras_compile_from(optimizer, loss, where, &cc, &ok, info->not_compiled,
                                           sizeof info->not_compiled);
    if (st || !ok)
        return st;
    st = cnn_model_compile(m, cc);
    if (st) {
        /* settings out of the library's range: the model stays uncompiled */
        set_text(info->not_compiled, sizeof info->not_compiled, cnn_last_error());
        return CNN_OK;
    }
    info->compiled = true;
    return CNN_OK;
}

static cnn_status parse_json_text(const char *text, size_t size, const char *where,
                                  json_t **out)
{
    json_error_t e;
    *out = json_loadb(text, size, JSON_REJECT_DUPLICATES, &e);
    if (!*out)
        return cnn_fail(CNN_ERR_FORMAT, "%s:%d:%d: JSON syntax error: %s", where, e.line,
                        e.column, e.text);
    return CNN_OK;
}

/* ---- Legacy .h5 ---------------------------------------------------------------------- */

typedef struct {
    char *name;   /* layer name in layer_names */
    char **weights;
    int n;
} h5_layer;

static void free_h5_layers(h5_layer *l, int n)
{
    for (int i = 0; l && i < n; i++) {
        free(l[i].name);
        cnn_h5_free_strings(l[i].weights, l[i].n);
    }
    free(l);
}

/* The groups of model_weights that hold weights, in layer_names order. */
static cnn_status h5_weight_groups(hid_t mw, const char *file, h5_layer **out, int *count)
{
    char **names;
    int n;
    *out = NULL;
    *count = 0;
    cnn_status st = cnn_h5_read_string_list(mw, "layer_names", file, "model_weights", &names, &n);
    if (st)
        return st;
    /* no attribute at all is an error (an empty list is fine) */
    if (!n && H5Aexists(mw, "layer_names") <= 0 && H5Aexists(mw, "layer_names0") <= 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: model_weights: no layer_names attribute", file);
    h5_layer *layers = calloc((size_t)(n ? n : 1), sizeof *layers);
    if (!layers) {
        cnn_h5_free_strings(names, n);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", file);
    }
    int kept = 0;
    for (int i = 0; i < n && !st; i++) {
        char where[256];
        snprintf(where, sizeof where, "model_weights/%.200s", names[i]);
        hid_t g;
        if ((st = cnn_h5_open_group(mw, names[i], file, "model_weights (listed in layer_names)",
                                    &g)))
            break;
        char **w;
        int nw;
        st = cnn_h5_read_string_list(g, "weight_names", file, where, &w, &nw);
        H5Gclose(g);
        if (!st && nw > 0) {
            layers[kept].name = names[i];
            names[i] = NULL;
            layers[kept].weights = w;
            layers[kept].n = nw;
            kept++;
        } else {
            cnn_h5_free_strings(w, nw);
        }
    }
    cnn_h5_free_strings(names, n);
    if (st) {
        free_h5_layers(layers, kept);
        return st;
    }
    *out = layers;
    *count = kept;
    return CNN_OK;
}

static cnn_status h5_weights(cnn_model *m, hid_t f, const char *file)
{
    hid_t mw;
    cnn_status st = cnn_h5_open_group(f, "model_weights", file, "weights", &mw);
    if (st)
        return st;
    h5_layer *groups = NULL;
    int ngroups = 0;
    int *idx = calloc((size_t)m->n_layers + 1, sizeof *idx);
    if (!idx)
        st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", file);
    if (!st)
        st = h5_weight_groups(mw, file, &groups, &ngroups);
    int nw = st ? 0 : weighted_layers(m, idx);
    /* Each group holds one layer's weights, except a nested model's (a
     * Sequential inside a Functional model: its group, named after it,
     * holds its layers' weights in order), which the next layers share. */
    int *grp = calloc((size_t)nw + 1, sizeof *grp), *first = calloc((size_t)nw + 1, sizeof *first);
    int g = 0, at = 0, mapped = 0;
    if (!st && (!grp || !first))
        st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", file);
    for (int k = 0; k < nw && !st && g < ngroups; k++) {
        const cnn_layer *l = m->layers[idx[k]];
        bool nested = at > 0 || (strcmp(groups[g].name, l->name) != 0 && groups[g].n > l->n_params);
        grp[k] = g;
        first[k] = at;
        mapped++;
        if (!nested) {
            g++;
            continue;
        }
        if (at + l->n_params > groups[g].n) {
            st = cnn_fail(CNN_ERR_FORMAT, "%s: model_weights/%s (a nested model) has %d weights,"
                          " too few for its layers up to %s (%s)", file, groups[g].name,
                          groups[g].n, l->name, l->ops->type_name);
            break;
        }
        at += l->n_params;
        if (at == groups[g].n) {
            g++;
            at = 0;
        }
    }
    if (!st && (g != ngroups || at || mapped != nw)) {
        char list[512] = "";
        size_t used = 0;
        for (int g = 0; g < ngroups && used < sizeof list; g++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", g ? ", " : "",
                                     groups[g].name);
        st = cnn_fail(CNN_ERR_FORMAT, "%s: model_weights holds weights for %d layer%s (%s), the"
                      " architecture has %d layer%s with weights", file, ngroups,
                      ngroups == 1 ? "" : "s", ngroups ? list : "none", nw, nw == 1 ? "" : "s");
    }
    if (!st)
        st = build(m, file);
    for (int k = 0; k < nw && !st; k++) {
        cnn_layer *l = m->layers[idx[k]];
        h5_layer *g = &groups[grp[k]];
        const bool shared = (k > 0 && grp[k - 1] == grp[k]) || (k + 1 < nw && grp[k + 1] == grp[k]);
        if (!shared && g->n != l->n_params) {
            st = cnn_fail(CNN_ERR_FORMAT, "%s: model_weights/%s has %d weight%s for layer %s"
                          " (%s), which has %d", file, g->name, g->n, g->n == 1 ? "" : "s",
                          l->name, l->ops->type_name, l->n_params);
            break;
        }
        hid_t lg;
        if ((st = cnn_h5_open_group(mw, g->name, file, "model_weights", &lg)))
            break;
        for (int p = 0; p < l->n_params && !st; p++) {
            char what[160];
            weight_label(l, p, what, sizeof what);
            st = cnn_h5_read_floats(lg, g->weights[first[k] + p], file, what, l->params[p].rank,
                                    l->params[p].dims, l->params[p].value);
        }
        H5Gclose(lg);
    }
    free(grp);
    free(first);
    free_h5_layers(groups, ngroups);
    free(idx);
    H5Gclose(mw);
    return st;
}

/* optimizer_weights (Adam only). */
static cnn_status h5_optimizer_state(cnn_model *m, hid_t f, const char *file,
                                     cnn_keras_info *info)
{
    if (!cnn_h5_exists(f, "optimizer_weights"))
        return CNN_OK;
    hid_t g;
    cnn_status st = cnn_h5_open_group(f, "optimizer_weights", file, "optimizer state", &g);
    char **names = NULL;
    int n = 0;
    if (!st)
        st = cnn_h5_read_string_list(g, "weight_names", file, "optimizer_weights", &names, &n);
    if (!st && n > 0)
        st = restore_adam(m, g, names, n, file, info);
    cnn_h5_free_strings(names, n);
    if (g >= 0)
        H5Gclose(g);
    return st;
}

static cnn_status h5_training(cnn_model *m, hid_t f, const char *file, cnn_keras_info *info)
{
    char *text = NULL;
    cnn_status st = cnn_h5_read_string_attr(f, "training_config", file, "/", CNN_KERAS_MAX_JSON,
                                            &text);
    if (st || !text)
        return st;
    char where[320];
    snprintf(where, sizeof where, "%s: training_config", file);
    json_t *tc = NULL;
    st = parse_json_text(text, strlen(text), where, &tc);
    free(text);
    if (!st && !json_is_object(tc))
        st = cnn_fail(CNN_ERR_FORMAT, "%s: expected a JSON object", where);
    if (!st)
        st = compile_from(m, json_object_get(tc, "optimizer_config"),
                          json_object_get(tc, "loss"), where, info);
    json_decref(tc);
    if (!st && info->compiled && m->opt.kind == CNN_OPTIMIZER_ADAM)
        st = h5_optimizer_state(m, f, file, info);
    return st;
}

/* A file of a Keras before 3 using hard_sigmoid: refused (keras.h says why). */
static cnn_status check_hard_sigmoid(const json_t *config, const char *version, const char *where)
{
    if (version && strncmp(version, "3.", 2) == 0)
        return CNN_OK;
    const json_t *layer = cnn_keras_hard_sigmoid_layer(config);
    if (!layer)
        return CNN_OK;
    const char *name = json_string_value(json_object_get(json_object_get(layer, "config"),
                                                         "name"));
    const char *cls = json_string_value(json_object_get(layer, "class_name"));
    return cnn_fail(CNN_ERR_FORMAT, "%s: layer '%s' (%s): activation hard_sigmoid in a file of"
                    " Keras %s: tf.keras 2 computes it as clip(0.2 x + 0.5, 0, 1), this library"
                    " as Keras 3 does, relu6(x + 3) / 6, so the model would silently compute"
                    " something else: not supported (the library has only Keras 3's"
                    " hard_sigmoid)", where, name ? name : "?",
                    cls ? cls : "?", version && *version ? version : "(version not recorded)");
}

static cnn_status load_h5(const void *bytes, size_t size, const char *name, cnn_model **out,
                          cnn_keras_info *info)
{
    info->format = CNN_KERAS_H5;
    hid_t f;
    cnn_status st = cnn_h5_open_image(bytes, size, name, &f);
    if (st)
        return st;
    char *config = NULL, *version = NULL, *backend = NULL;
    st = cnn_h5_read_string_attr(f, "model_config", name, "/", CNN_KERAS_MAX_JSON, &config);
    if (!st)
        st = cnn_h5_read_string_attr(f, "keras_version", name, "/", 64, &version);
    if (!st)
        st = cnn_h5_read_string_attr(f, "backend", name, "/", 64, &backend);
    if (!st && !config)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: no model_config attribute: %s", name,
                      cnn_h5_exists(f, "model_weights") || H5Aexists(f, "layer_names") > 0
                          ? "the file holds weights only (model.save_weights()); load its"
                            " architecture from a description and the weights into it"
                          : "not a Keras model file (model.save())");
    /* Theano stored convolution kernels flipped; Keras converts them on load. */
    if (!st && backend && strcmp(backend, "theano") == 0)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: saved with the Theano backend, whose Conv2D kernels"
                      " are stored flipped: not supported", name);
    set_text(info->keras_version, sizeof info->keras_version, version);
    cnn_model *m = NULL;
    if (!st) {
        char where[320];
        snprintf(where, sizeof where, "%s: model_config", name);
        st = cnn_desc_parse_json(config, strlen(config), where, &m);
        json_t *root = NULL;
        if (!st)
            st = parse_json_text(config, strlen(config), where, &root);
        if (!st)
            st = check_hard_sigmoid(root, version, where);
        json_decref(root);
    }
    if (!st)
        st = h5_weights(m, f, name);
    if (!st)
        st = h5_training(m, f, name, info);
    free(config);
    free(version);
    free(backend);
    H5Fclose(f);
    if (st) {
        cnn_model_free(m);
        return st;
    }
    *out = m;
    return CNN_OK;
}

/* ---- Keras 3 .keras -------------------------------------------------------------------- */

/* The group holding layer i's variables: the class-numbered key, or the
 * layer's own name; a group whose "name" attribute is the layer's wins. */
static cnn_status find_vars(hid_t w, const cnn_model *m, int i, const int *class_index,
                            const char *file, char *path, size_t size, bool *found)
{
    char snake[96], candidates[3][160];
    cnn_keras_snake_case(cnn_model_layer_type(m, i), snake, sizeof snake);
    const char *lname = cnn_model_layer_name(m, i);
    if (class_index[i])
        snprintf(candidates[0], sizeof candidates[0], "layers/%s_%d/vars", snake,
                 class_index[i]);
    else
        snprintf(candidates[0], sizeof candidates[0], "layers/%s/vars", snake);
    snprintf(candidates[1], sizeof candidates[1], "layers/%s/vars", lname);
    snprintf(candidates[2], sizeof candidates[2], "_layer_checkpoint_dependencies/%s/vars",
             lname);
    *found = false;
    for (int pass = 0; pass < 2 && !*found; pass++)
        for (int c = 0; c < 3 && !*found; c++) {
            if (!cnn_h5_exists(w, candidates[c]))
                continue;
            if (pass == 0) { /* first: a group that names this layer */
                hid_t g;
                char *recorded = NULL;
                cnn_status st = cnn_h5_open_group(w, candidates[c], file, "weights", &g);
                if (!st) {
                    st = cnn_h5_read_string_attr(g, "name", file, candidates[c], 256,
                                                 &recorded);
                    H5Gclose(g);
                }
                if (st)
                    return st;
                bool named = recorded && strcmp(recorded, lname) == 0;
                free(recorded);
                if (!named)
                    continue;
            }
            snprintf(path, size, "%.159s", candidates[c]);
            *found = true;
        }
    return CNN_OK;
}

/* A Sequential nested in a Functional model keeps its layers' variables
 * under its own key, numbered per class among its own layers:
 *   layers/sequential/layers/conv2d/vars, layers/sequential/layers/dense/vars
 * while the outer model's layers are numbered among the outer list (the
 * Sequential counting as one "sequential"). The description reader
 * flattened the nested layers into the graph under their names; this
 * records, for each layer of a model with a nested Sequential, where Keras
 * put its variables (other models keep find_vars's search). */
#define NESTED_PATH_MAX 300

static void nested_paths(const json_t *root, const cnn_model *m, char (*paths)[NESTED_PATH_MAX])
{
    const json_t *outer = json_object_get(json_object_get(root, "config"), "layers");
    json_t *seen = json_object(), *inner_seen = NULL;
    size_t i, j;
    const json_t *layer, *inner;
    bool any = false;
    json_array_foreach(outer, i, layer) {
        const char *cls = json_string_value(json_object_get(layer, "class_name"));
        any = any || (cls && strcmp(cls, "Sequential") == 0);
    }
    json_array_foreach(outer, i, layer) {
        const char *cls = json_string_value(json_object_get(layer, "class_name"));
        char snake[96], key[128];
        if (!cls || !seen)
            continue;
        cnn_keras_snake_case(cls, snake, sizeof snake);
        json_int_t n = json_integer_value(json_object_get(seen, snake));
        json_object_set_new(seen, snake, json_integer(n + 1));
        if (!any)
            break;
        if (n)
            snprintf(key, sizeof key, "%s_%lld", snake, (long long)n);
        else
            snprintf(key, sizeof key, "%s", snake);
        if (strcmp(cls, "Sequential") != 0) {
            const char *name =
                json_string_value(json_object_get(json_object_get(layer, "config"), "name"));
            for (int l = 0; name && l < m->n_layers; l++)
                if (strcmp(cnn_model_layer_name(m, l), name) == 0)
                    snprintf(paths[l], NESTED_PATH_MAX, "layers/%s/vars", key);
            continue;
        }
        inner_seen = json_object();
        const json_t *layers = json_object_get(json_object_get(layer, "config"), "layers");
        json_array_foreach(layers, j, inner) {
            const char *icls = json_string_value(json_object_get(inner, "class_name"));
            const char *name =
                json_string_value(json_object_get(json_object_get(inner, "config"), "name"));
            /* Sequential.layers, which Keras walks, leaves out its InputLayer */
            if (!icls || !name || !inner_seen || strcmp(icls, "InputLayer") == 0)
                continue;
            char isnake[96], ikey[128];
            cnn_keras_snake_case(icls, isnake, sizeof isnake);
            json_int_t k = json_integer_value(json_object_get(inner_seen, isnake));
            json_object_set_new(inner_seen, isnake, json_integer(k + 1));
            if (k)
                snprintf(ikey, sizeof ikey, "%s_%lld", isnake, (long long)k);
            else
                snprintf(ikey, sizeof ikey, "%s", isnake);
            for (int l = 0; l < m->n_layers; l++)
                if (strcmp(cnn_model_layer_name(m, l), name) == 0)
                    snprintf(paths[l], NESTED_PATH_MAX, "layers/%s/layers/%s/vars", key, ikey);
        }
        json_decref(inner_seen);
    }
    json_decref(seen);
}

static cnn_status zip_weights(cnn_model *m, hid_t w, const json_t *root, const char *file)
{
    int *class_index = calloc((size_t)m->n_layers + 1, sizeof *class_index);
    char(*nested)[NESTED_PATH_MAX] = calloc((size_t)m->n_layers + 1, sizeof *nested);
    if (!class_index || !nested) {
        free(class_index);
        free(nested);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", file);
    }
    nested_paths(root, m, nested);
    /* Keras numbers the keys per class: conv2d, conv2d_1, ... */
    for (int i = 0; i < m->n_layers; i++)
        for (int j = 0; j < i; j++)
            class_index[i] += strcmp(cnn_model_layer_type(m, i), cnn_model_layer_type(m, j)) == 0;
    cnn_status st = build(m, file);
    for (int i = 0; i < m->n_layers && !st; i++) {
        cnn_layer *l = m->layers[i];
        char path[NESTED_PATH_MAX];
        bool found = nested[i][0] != '\0';
        if (found)
            snprintf(path, sizeof path, "%s", nested[i]);
        else if ((st = find_vars(w, m, i, class_index, file, path, sizeof path, &found)))
            break;
        if (found && nested[i][0] && !cnn_h5_exists(w, path)) {
            if (l->n_params)
                st = cnn_fail(CNN_ERR_FORMAT, "%s: no weights for layer %s (%s) of a model with"
                              " a nested Sequential: expected the group %s", file, l->name,
                              l->ops->type_name, path);
            continue;
        }
        if (!found) {
            if (l->n_params)
                st = cnn_fail(CNN_ERR_FORMAT, "%s: no weights for layer %s (%s): expected a"
                              " group layers/<key>/vars", file, l->name, l->ops->type_name);
            continue;
        }
        hid_t g;
        int64_t count = 0;
        if ((st = cnn_h5_open_group(w, path, file, "weights", &g)))
            break;
        st = cnn_h5_group_size(g, file, path, &count);
        if (!st && count != l->n_params)
            st = cnn_fail(CNN_ERR_FORMAT, "%s: %s holds %lld variable%s for layer %s (%s), which"
                          " has %d weight%s", file, path, (long long)count,
                          count == 1 ? "" : "s", l->name, l->ops->type_name, l->n_params,
                          l->n_params == 1 ? "" : "s");
        for (int p = 0; p < l->n_params && !st; p++) {
            char what[160], var[320];
            weight_label(l, p, what, sizeof what);
            snprintf(var, sizeof var, "%.300s/%d", path, p);
            st = cnn_h5_read_floats(w, var, file, what, l->params[p].rank, l->params[p].dims,
                                    l->params[p].value);
        }
        H5Gclose(g);
    }
    free(class_index);
    free(nested);
    return st;
}

static cnn_status zip_optimizer_state(cnn_model *m, hid_t w, const char *file,
                                      cnn_keras_info *info)
{
    if (!cnn_h5_exists(w, "optimizer/vars"))
        return CNN_OK;
    hid_t g;
    int64_t n = 0;
    cnn_status st = cnn_h5_open_group(w, "optimizer/vars", file, "optimizer state", &g);
    if (st)
        return st;
    st = cnn_h5_group_size(g, file, "optimizer/vars", &n);
    H5Gclose(g);
    if (st || n == 0 || n > 100000)
        return st;
    char **paths = calloc((size_t)n, sizeof *paths);
    for (int64_t i = 0; paths && i < n; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "optimizer/vars/%lld", (long long)i);
        if (!(paths[i] = strdup(buf))) {
            cnn_h5_free_strings(paths, (int)i);
            paths = NULL;
        }
    }
    if (!paths)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", file);
    st = restore_adam(m, w, paths, (int)n, file, info);
    cnn_h5_free_strings(paths, (int)n);
    return st;
}

static cnn_status load_zip(const void *bytes, size_t size, const char *name, cnn_model **out,
                           cnn_keras_info *info)
{
    info->format = CNN_KERAS_ZIP;
    cnn_zip *z;
    cnn_status st = cnn_zip_open(bytes, size, name, &z);
    if (st)
        return st;
    char *config = NULL, *meta = NULL;
    void *weights = NULL;
    size_t config_size = 0, meta_size = 0, weights_size = 0;
    json_t *root = NULL, *metadata = NULL;
    cnn_model *m = NULL;
    char where[320];
    snprintf(where, sizeof where, "%s: config.json", name);
    if (!cnn_zip_has(z, "config.json"))
        st = cnn_fail(CNN_ERR_FORMAT, "%s: the archive has no config.json: not a Keras .keras"
                      " file", name);
    else if (!cnn_zip_has(z, "model.weights.h5"))
        st = cnn_fail(CNN_ERR_FORMAT, "%s: the archive has no model.weights.h5%s", name,
                      cnn_zip_has(z, "model.weights.npz")
                          ? " (its weights are in .npz form, which is not supported)" : "");
    if (!st)
        st = cnn_zip_read(z, "config.json", CNN_KERAS_MAX_JSON, (void **)&config, &config_size);
    if (!st && cnn_zip_has(z, "metadata.json")
        && !(st = cnn_zip_read(z, "metadata.json", CNN_KERAS_MAX_JSON, (void **)&meta,
                               &meta_size))) {
        char mwhere[320];
        snprintf(mwhere, sizeof mwhere, "%s: metadata.json", name);
        st = parse_json_text(meta, meta_size, mwhere, &metadata);
        if (!st)
            set_text(info->keras_version, sizeof info->keras_version,
                     json_string_value(json_object_get(metadata, "keras_version")));
    }
    if (!st)
        st = parse_json_text(config, config_size, where, &root);
    if (!st)
        st = cnn_desc_parse_json(config, config_size, where, &m);
    if (!st)
        st = check_hard_sigmoid(root, info->keras_version, where);
    if (!st)
        st = cnn_zip_read(z, "model.weights.h5", (size_t)CNN_KERAS_MAX_FILE, &weights,
                          &weights_size);
    hid_t w = H5I_INVALID_HID;
    char wname[320];
    snprintf(wname, sizeof wname, "%s: model.weights.h5", name);
    if (!st)
        st = cnn_h5_open_image(weights, weights_size, wname, &w);
    free(weights);
    if (!st)
        st = zip_weights(m, w, root, wname);
    const json_t *cc = json_object_get(root, "compile_config");
    if (!st && json_is_object(cc))
        st = compile_from(m, json_object_get(cc, "optimizer"), json_object_get(cc, "loss"),
                          where, info);
    if (!st && info->compiled && m->opt.kind == CNN_OPTIMIZER_ADAM)
        st = zip_optimizer_state(m, w, wname, info);
    if (w >= 0)
        H5Fclose(w);
    json_decref(root);
    json_decref(metadata);
    free(config);
    free(meta);
    cnn_zip_close(z);
    if (st) {
        cnn_model_free(m);
        return st;
    }
    *out = m;
    return CNN_OK;
}

/* ---- Public API ------------------------------------------------------------------------- */

cnn_status cnn_model_load_keras_memory(const void *bytes, size_t size, const char *name,
                                       cnn_model **out, cnn_keras_info *info)
{
    cnn_keras_info scratch;
    if (!info)
        info = &scratch;
    memset(info, 0, sizeof *info);
    if (out)
        *out = NULL;
    if (!name)
        name = "<memory>";
    if (!out || (!bytes && size))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s: load_keras_memory: out must not be NULL, nor bytes when size > 0",
                        name);
    const unsigned char *b = size ? bytes : (const unsigned char *)"";
    if ((uint64_t)size > (uint64_t)CNN_KERAS_MAX_FILE)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %zu bytes is more than a Keras file may be (%lld)",
                        name, size, (long long)CNN_KERAS_MAX_FILE);
    cnn_h5_quiet q;
    cnn_h5_quiet_begin(&q);
    cnn_status st;
    cnn_model_format format = cnn_model_format_of(b, size);
    if (format == CNN_MODEL_FORMAT_KERAS_ZIP)
        st = load_zip(b, size, name, out, info);
    else if (format == CNN_MODEL_FORMAT_KERAS_H5)
        st = load_h5(b, size, name, out, info);
    else
        st = cnn_fail(CNN_ERR_FORMAT, "%s: not a Keras file: expected an HDF5 file (.h5, starting"
                      " \\x89HDF) or a zip archive (.keras, starting PK)", name);
    cnn_h5_quiet_end(&q);
    if (st) {
        info->compiled = info->optimizer_state = false;
        return st;
    }
    return CNN_OK;
}

cnn_status cnn_model_load_keras(const char *path, cnn_model **out, cnn_keras_info *info)
{
    if (out)
        *out = NULL;
    if (info)
        memset(info, 0, sizeof *info);
    if (!path || !out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "load_keras: path and out must not be NULL");
    unsigned char *buf;
    size_t size;
    cnn_status st = cnn_file_read(path, "Keras file", (uint64_t)CNN_KERAS_MAX_FILE, &buf, &size);
    if (!st)
        st = cnn_model_load_keras_memory(buf, size, path, out, info);
    free(buf);
    return st;
}
