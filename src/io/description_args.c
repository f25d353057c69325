/* Model descriptions: what both readers share (description.h): the kinds
 * and their arguments, found in the layers' own tables through the
 * registry, the value checks, and adding a layer. The entry points
 * (description.c) call the readers, the readers call this file, and this
 * file calls neither. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "io/description.h"
#include "kernels/activation.h"

/* ---- Kinds and their arguments (from the layers' own tables) ------------------ */

static const cnn_layer_field input_fields[] = {
    {"shape", CNN_FIELD_SHAPE, 0, CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    /* the input's name, for inputs= (Keras's InputLayer name); the spec
     * offset only carries the value to the parser */
    {"name", CNN_FIELD_NAME, 0, 0, 0},
};

const cnn_layer_ops cnn_desc_input = {.kind = 0, .type_name = "input",
                                      CNN_LAYER_FIELDS(input_fields)};

static bool word_is(const char *word, size_t len, const char *s)
{
    return strlen(s) == len && memcmp(word, s, len) == 0;
}

static char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

static bool word_is_nocase(const char *word, size_t len, const char *s)
{
    if (strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (ascii_lower(word[i]) != ascii_lower(s[i]))
            return false;
    return true;
}

cnn_layer_kind cnn_desc_kind_from_name(const char *name, size_t len)
{
    char buf[64];
    cnn_layer_kind kind;
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, name, len);
    buf[len] = '\0';
    /* the caller's message lists what a description accepts */
    return cnn_layer_kind_from_name(buf, &kind) == CNN_OK ? kind : 0;
}

const cnn_layer_ops *cnn_desc_kind_find(cnn_layer_kind kind)
{
    const cnn_layer_ops *e = cnn_layer_kind_find(kind);
    return e && e->n_fields ? e : NULL;
}

const char *cnn_desc_layer_names(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    const cnn_layer_ops *e;
    for (size_t i = 0; (e = cnn_layer_kind_at(i)) && used < size; i++) {
        const cnn_layer_ops *k = e;
        int n = k->class_alias ? snprintf(buf + used, size - used, "%s%s (%s)", i ? ", " : "",
                                          k->type_name, k->class_alias)
                               : snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                                          k->type_name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

/* Levenshtein distance, ignoring ASCII case, of short words (longer ones
 * count as far apart). */
static size_t edit_distance(const char *a, size_t na, const char *b)
{
    size_t nb = strlen(b);
    if (na > 40 || nb > 40)
        return (size_t)-1;
    size_t row[41];
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (ascii_lower(a[i - 1]) != ascii_lower(b[j - 1]));
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

/* Close enough to suggest: at most a third of the word differs (and at
 * most 3 edits), so "Conv2d" and "Desne" find their layer but "Lambda"
 * finds nothing. */
static void consider(const char *word, size_t len, const char *candidate, const char **best,
                     size_t *best_d)
{
    size_t d = edit_distance(word, len, candidate);
    size_t limit = strlen(candidate) / 3;
    if (limit > 3)
        limit = 3;
    if (limit < 1)
        limit = 1;
    if (d <= limit && d < *best_d) {
        *best = candidate;
        *best_d = d;
    }
}

const char *cnn_desc_suggest_layer(const char *word, size_t len)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    const cnn_layer_ops *e;
    for (size_t i = 0; (e = cnn_layer_kind_at(i)); i++)
        consider(word, len, e->type_name, &best, &best_d);
    for (size_t i = 0; (e = cnn_layer_kind_at(i)); i++)
        if (e->class_alias)
            consider(word, len, e->class_alias, &best, &best_d);
    consider(word, len, "input", &best, &best_d);
    return best;
}

int cnn_desc_arg_find(const cnn_layer_ops *k, const char *key, size_t len)
{
    for (int i = 0; i < k->n_fields; i++)
        if (word_is(key, len, k->fields[i].key))
            return i;
    return -1;
}

const char *cnn_desc_suggest_key(const cnn_layer_ops *k, const char *key, size_t len)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (int i = 0; i < k->n_fields; i++)
        consider(key, len, k->fields[i].key, &best, &best_d);
    return best;
}

void cnn_desc_keys(const cnn_layer_ops *k, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < k->n_fields && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", k->fields[i].key);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

const char *cnn_desc_suggest_activation(const char *word, size_t len)
{
    /* another Keras activation is not a misspelling: "celu" is no "elu" */
    static const char *const keras_only[] = {"celu", "crelu", "glu", "hard_tanh", "log_softmax",
                                             "sparse_plus", "sparsemax", "squareplus",
                                             "soft_shrink", "hard_shrink", "tanh_shrink",
                                             "log_sigmoid", "threshold"};
    for (size_t i = 0; i < sizeof keras_only / sizeof keras_only[0]; i++)
        if (word_is_nocase(word, len, keras_only[i]))
            return NULL;
    /* names are short: two edits (a swapped pair, "rleu") are allowed
     * where half the name stays; the library's one table of names */
    const char *best = NULL;
    size_t best_d = 3;
    for (int a = 0; a < CNN_ACTIVATION_COUNT; a++) {
        const char *name = cnn_activation_name((cnn_activation)a);
        size_t d = edit_distance(word, len, name);
        if (d < best_d && 2 * d <= strlen(name)) {
            best = name;
            best_d = d;
        }
    }
    return best;
}

int cnn_desc_padding_from_name(const char *s, size_t len)
{
    /* Keras lower-cases padding, so "SAME" is accepted as well. */
    if (word_is_nocase(s, len, "valid"))
        return CNN_PADDING_VALID;
    if (word_is_nocase(s, len, "same"))
        return CNN_PADDING_SAME;
    return -1;
}

void cnn_desc_store(cnn_layer_spec *spec, const cnn_layer_field *arg, const cnn_desc_value *v)
{
    char *field = (char *)spec + arg->offset;
    switch (arg->type) {
    case CNN_FIELD_COUNT:
    case CNN_FIELD_AXIS: *(int *)field = v->ints[0]; break;
    case CNN_FIELD_PAIR: memcpy(field, v->ints, 2 * sizeof(int)); break;
    case CNN_FIELD_PADDING: *(cnn_padding *)field = (cnn_padding)v->choice; break;
    case CNN_FIELD_ACTIVATION: *(cnn_activation *)field = (cnn_activation)v->choice; break;
    case CNN_FIELD_USE_BIAS: *(bool *)field = !v->flag; break;
    case CNN_FIELD_RATE: *(float *)field = (float)v->real; break;
    case CNN_FIELD_SEED: *(uint64_t *)field = v->seed; break;
    case CNN_FIELD_NAME: *(const char **)field = v->text; break;
    case CNN_FIELD_SHAPE: break; /* the input shape is not a layer field */
    case CNN_FIELD_REAL:
    case CNN_FIELD_POSITIVE:
    case CNN_FIELD_NONNEGATIVE:
    case CNN_FIELD_L2: *(float *)field = (float)v->real; break;
    case CNN_FIELD_PADDING4:
    case CNN_FIELD_CROPPING4: memcpy(field, v->ints, 4 * sizeof(int)); break;
    case CNN_FIELD_OPT_PAIR: {
        cnn_opt_pair o = {.set = v->flag};
        if (v->flag)
            memcpy(o.value, v->ints, 2 * sizeof(int));
        memcpy(field, &o, sizeof o);
        break;
    }
    case CNN_FIELD_CHOICE: *(int *)field = v->choice; break;
    case CNN_FIELD_TARGET_SHAPE: {
        cnn_shape t = {.rank = v->n_ints};
        memcpy(t.dims, v->ints, (size_t)v->n_ints * sizeof(int));
        memcpy(field, &t, sizeof t);
        break;
    }
    }
}

const char *cnn_desc_real_problem(cnn_field_type type, double v)
{
    /* as floats: a double beyond float range would become infinite */
    if (!isfinite(v) || fabs(v) > 3.0e38)
        return "must be a finite number";
    switch (type) {
    case CNN_FIELD_RATE: return v >= 0 && v < 1 ? NULL : "must be in [0, 1)";
    case CNN_FIELD_POSITIVE: return v > 0 ? NULL : "must be > 0";
    case CNN_FIELD_NONNEGATIVE:
    case CNN_FIELD_L2: return v >= 0 ? NULL : "must be >= 0";
    default: return NULL;
    }
}

const char *cnn_desc_padding4(cnn_desc_value *v, const int *ints, int n, bool zero_ok)
{
    static const char expected[] = "1, 2 or 4 integers >= 0 (n, (rows, cols) or ((top,"
                                   " bottom), (left, right))), not all 0";
    static const char expected0[] = "1, 2 or 4 integers >= 0 (n, (rows, cols) or ((top,"
                                    " bottom), (left, right)))";
    if (zero_ok) {
        for (int i = 0; i < n; i++)
            if (ints[i] < 0)
                return expected0;
        if (n != 1 && n != 2 && n != 4)
            return expected0;
        for (int i = 0; i < 4; i++)
            v->ints[i] = n == 1 ? ints[0] : n == 2 ? ints[i / 2] : ints[i];
        v->n_ints = 4;
        return NULL;
    }
    if (n != 1 && n != 2 && n != 4)
        return expected;
    for (int i = 0; i < 4; i++)
        v->ints[i] = n == 1 ? ints[0] : n == 2 ? ints[i / 2] : ints[i];
    v->n_ints = 4;
    bool any = false;
    for (int i = 0; i < 4; i++) {
        if (v->ints[i] < 0)
            return expected;
        any |= v->ints[i] > 0;
    }
    return any ? NULL : expected;
}

const char *cnn_desc_target_shape(cnn_desc_value *v, const int *ints, int n)
{
    static const char expected[] = "(rows, cols, channels) or (features), each >= 1 or one"
                                   " of them -1";
    if (n != 1 && n != 3)
        return expected;
    int unknown = 0;
    for (int i = 0; i < n; i++) {
        if (ints[i] < 1 && ints[i] != -1)
            return expected;
        unknown += ints[i] == -1;
        v->ints[i] = ints[i];
    }
    v->n_ints = n;
    return unknown > 1 ? expected : NULL;
}

cnn_shape cnn_desc_shape(const cnn_desc_value *v)
{
    return v->n_ints == 1 ? cnn_shape_flat(v->ints[0])
                          : cnn_shape_hwc(v->ints[0], v->ints[1], v->ints[2]);
}

/* A value the library refuses is the description's fault, not the caller's. */
static cnn_status as_format_error(cnn_status st)
{
    return st == CNN_ERR_INVALID_ARGUMENT ? CNN_ERR_FORMAT : st;
}

/* As many layers as a model file may hold. Adding a layer checks its name
 * against every earlier one, so without a limit a 16 MiB description of
 * "Flatten" lines would keep the reader busy for hours. */
#define DESC_MAX_LAYERS 10000

cnn_status cnn_desc_add(cnn_model *m, const cnn_layer_spec *spec)
{
    if (cnn_model_layer_count(m) >= DESC_MAX_LAYERS)
        return cnn_fail(CNN_ERR_FORMAT, "more than %d layers: a description may have at most %d",
                        DESC_MAX_LAYERS, DESC_MAX_LAYERS);
    return as_format_error(cnn_model_add(m, spec));
}

cnn_status cnn_desc_create(cnn_model **out, cnn_shape shape)
{
    return as_format_error(cnn_model_create(out, shape));
}
