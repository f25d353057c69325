/* Keras Sequential architectures from model.to_json() (also the
 * model_config of a legacy .h5 file and config.json of a .keras file):
 *
 *   Keras 2: {"class_name": "Sequential", "config": {"name": ..., "layers": [
 *               {"class_name": "Conv2D", "config": {"batch_input_shape":
 *                [null, 28, 28, 1], "filters": 32, ...}}, ...]}}
 *            (Keras <= 2.1: "config" is the list of layers itself)
 *   Keras 3: layers also carry "module", "registered_name", "build_config";
 *            the input is an InputLayer with "batch_shape"; dtype may be a
 *            DTypePolicy object.
 *
 * Arguments go through the same table as the text format. Settings that
 * only matter when weights are initialised or regularised in training
 * (initializers, regularizers, constraints) are accepted and ignored;
 * anything that would change what the layer computes and that the library
 * cannot do (channels_first, groups, another dtype, a custom class) is
 * refused with a message naming the layer. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "io/description.h"
#include "kernels/activation.h"

typedef struct {
    const char *name;  /* file name */
    char where[192];   /* "layers[2] 'conv2d' (Conv2D): " or "" */
    const cnn_layer_ops *kind; /* of the layer being read (its CHOICE names) */
    unsigned policies; /* dtype policies the layers named: bit 1 << cnn_dtype_policy */
} json_reader;

static cnn_status jfail(const json_reader *r, cnn_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static cnn_status jfail(const json_reader *r, cnn_status status, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cnn_fail(status, "%s: %s%s", r->name, r->where, msg);
}

/* A JSON value as compact text for messages, cut to fit buf. */
static const char *show(const json_t *v, char *buf, size_t size)
{
    if (!v) {
        snprintf(buf, size, "nothing");
        return buf;
    }
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(buf, size, "%s", text ? text : "?");
    if (text && strlen(text) >= size && size > 4)
        memcpy(buf + size - 4, "...", 4);
    free(text);
    return buf;
}

static const char *string_of(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* ---- Values --------------------------------------------------------------- */

static bool get_int(const json_t *v, int min, int *out)
{
    if (!json_is_integer(v))
        return false;
    json_int_t x = json_integer_value(v);
    if (x < min || x > INT_MAX)
        return false;
    *out = (int)x;
    return true;
}

/* A Keras regularizer: {"class_name": "L2", "config": {"l2": x}}, "L1L2"
 * with l1 0, or the name "l2" alone (Keras's default factor 0.01). Only L2
 * penalties are applied by this library. */
static cnn_status convert_l2(const json_reader *r, const cnn_layer_field *a, const json_t *v,
                             cnn_desc_value *out)
{
    char got[160];
    const char *name = json_is_string(v) ? json_string_value(v) : string_of(v, "class_name");
    const bool l1l2 = name && !strcasecmp(name, "l1l2");
    if (name && (l1l2 || !strcasecmp(name, "l2"))) {
        const json_t *config = json_object_get(v, "config");
        const json_t *l1 = json_object_get(config, "l1"), *l2 = json_object_get(config, "l2");
        if (l1 && !json_is_null(l1) && !(json_is_number(l1) && json_number_value(l1) == 0))
            return jfail(r, CNN_ERR_FORMAT,
                         "%s: L1 penalties are not supported (only L2), got %s", a->key,
                         show(v, got, sizeof got));
        /* Keras's defaults: L2 0.01 (also for the bare name "l2"), L1L2 0 */
        out->real = !l2 || json_is_null(l2) ? (l1l2 ? 0 : 0.01)
                    : json_is_number(l2)    ? json_number_value(l2)
                                            : NAN;
        if (!cnn_desc_real_problem(a->type, out->real))
            return CNN_OK;
    }
    return jfail(r, CNN_ERR_FORMAT,
                 "%s: expected an L2 regularizer ({\"class_name\": \"L2\", \"config\": {\"l2\":"
                 " x}} with x >= 0), got %s",
                 a->key, show(v, got, sizeof got));
}

static cnn_status convert(const json_reader *r, const cnn_layer_field *a, const json_t *v,
                          cnn_desc_value *out)
{
    char got[96];
    memset(out, 0, sizeof *out);
    switch (a->type) {
    case CNN_FIELD_COUNT:
        if (!get_int(v, 1, &out->ints[0]))
            return jfail(r, CNN_ERR_FORMAT, "%s: expected an integer >= 1, got %s", a->key,
                         show(v, got, sizeof got));
        return CNN_OK;
    case CNN_FIELD_AXIS:
        if (!json_is_integer(v) || json_integer_value(v) < -CNN_MAX_RANK
            || json_integer_value(v) > CNN_MAX_RANK)
            return jfail(r, CNN_ERR_FORMAT, "%s: expected an axis -%d..%d, got %s", a->key,
                         CNN_MAX_RANK, CNN_MAX_RANK, show(v, got, sizeof got));
        out->ints[0] = (int)json_integer_value(v);
        return CNN_OK;
    case CNN_FIELD_PAIR:
        if (get_int(v, 1, &out->ints[0])) {
            out->ints[1] = out->ints[0];
            return CNN_OK;
        }
        if (json_is_array(v) && json_array_size(v) == 2 && get_int(json_array_get(v, 0), 1, &out->ints[0])
            && get_int(json_array_get(v, 1), 1, &out->ints[1]))
            return CNN_OK;
        return jfail(r, CNN_ERR_FORMAT,
                     "%s: expected an integer or a list of 2 integers, each >= 1, got %s", a->key,
                     show(v, got, sizeof got));
    case CNN_FIELD_PADDING: {
        const char *s = json_string_value(v);
        if (!s || (out->choice = cnn_desc_padding_from_name(s, strlen(s))) < 0)
            return jfail(r, CNN_ERR_FORMAT, "%s: expected \"valid\" or \"same\", got %s", a->key,
                         show(v, got, sizeof got));
        return CNN_OK;
    }
    case CNN_FIELD_ACTIVATION: {
        /* A name, null (linear), or a serialised function whose config is
         * the name (Keras 3). */
        const char *s = json_is_null(v) ? "linear" : json_string_value(v);
        if (!s && json_is_object(v))
            s = string_of(v, "config");
        if (!s || (out->choice = cnn_activation_lookup(s, strlen(s))) < 0) {
            const char *near = s ? cnn_desc_suggest_activation(s, strlen(s)) : NULL;
            char list[400];
            cnn_activation_list(list, sizeof list);
            return jfail(r, CNN_ERR_FORMAT, "%s: expected an activation (%s), got %s%s%s%s",
                         a->key, list, show(v, got, sizeof got), near ? " (did you mean \"" : "",
                         near ? near : "", near ? "\"?)" : "");
        }
        return CNN_OK;
    }
    case CNN_FIELD_USE_BIAS:
        if (!json_is_boolean(v))
            return jfail(r, CNN_ERR_FORMAT, "%s: expected true or false, got %s", a->key,
                         show(v, got, sizeof got));
        out->flag = json_is_true(v);
        return CNN_OK;
    case CNN_FIELD_RATE: {
        double x = json_number_value(v);
        if (!json_is_number(v) || !isfinite(x) || !(x >= 0 && x < 1))
            return jfail(r, CNN_ERR_FORMAT, "%s: expected a number in [0, 1), got %s", a->key,
                         show(v, got, sizeof got));
        out->real = x;
        return CNN_OK;
    }
    case CNN_FIELD_SEED:
        if (json_is_null(v))
            return CNN_OK;
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return jfail(r, CNN_ERR_FORMAT, "%s: expected an integer >= 0 or null, got %s",
                         a->key, show(v, got, sizeof got));
        out->seed = (uint64_t)json_integer_value(v);
        return CNN_OK;
    case CNN_FIELD_NAME:
        out->text = json_string_value(v);
        if (!out->text || !*out->text)
            return jfail(r, CNN_ERR_FORMAT, "%s: expected a non-empty string, got %s", a->key,
                         show(v, got, sizeof got));
        return CNN_OK;
    case CNN_FIELD_REAL:
    case CNN_FIELD_POSITIVE:
    case CNN_FIELD_NONNEGATIVE: {
        const char *problem;
        if (!json_is_number(v))
            return jfail(r, CNN_ERR_FORMAT, "%s: expected a number, got %s", a->key,
                         show(v, got, sizeof got));
        out->real = json_number_value(v);
        if ((problem = cnn_desc_real_problem(a->type, out->real)))
            return jfail(r, CNN_ERR_FORMAT, "%s: %s, got %s", a->key, problem,
                         show(v, got, sizeof got));
        return CNN_OK;
    }
    case CNN_FIELD_L2:
        return convert_l2(r, a, v, out);
    case CNN_FIELD_OPT_PAIR: /* null (Keras None) never gets here */
        if (get_int(v, 0, &out->ints[0]))
            out->ints[1] = out->ints[0];
        else if (!(json_is_array(v) && json_array_size(v) == 2
                   && get_int(json_array_get(v, 0), 0, &out->ints[0])
                   && get_int(json_array_get(v, 1), 0, &out->ints[1])))
            return jfail(r, CNN_ERR_FORMAT,
                         "%s: expected null, an integer or a list of 2 integers, each >= 0,"
                         " got %s",
                         a->key, show(v, got, sizeof got));
        out->flag = true;
        return CNN_OK;
    case CNN_FIELD_CHOICE: {
        const char *s = json_string_value(v);
        if (!s || (out->choice = cnn_layer_choice_index(r->kind, s, strlen(s))) < 0)
            return jfail(r, CNN_ERR_FORMAT, "%s: expected one of: %s; got %s", a->key,
                         r->kind->choices, show(v, got, sizeof got));
        return CNN_OK;
    }
    case CNN_FIELD_PADDING4:
    case CNN_FIELD_CROPPING4: {
        /* n, [rows, cols] or [[top, bottom], [left, right]] */
        int ints[4], n = 0;
        const char *problem = NULL;
        bool ok = true;
        if (json_is_integer(v)) {
            ok = get_int(v, 0, &ints[n++]);
        } else if (json_is_array(v) && json_array_size(v) == 2) {
            for (size_t i = 0; ok && i < 2; i++) {
                const json_t *e = json_array_get(v, i);
                if (json_is_array(e) && json_array_size(e) == 2)
                    ok = get_int(json_array_get(e, 0), 0, &ints[2 * i])
                      && get_int(json_array_get(e, 1), 0, &ints[2 * i + 1]);
                else if (get_int(e, 0, &ints[2 * i]))
                    ints[2 * i + 1] = ints[2 * i];
                else
                    ok = false;
            }
            n = 4;
        } else {
            ok = false;
        }
        if (!ok || (problem = cnn_desc_padding4(out, ints, n, a->type == CNN_FIELD_CROPPING4)))
            return jfail(r, CNN_ERR_FORMAT,
                         "%s: expected an integer, [rows, cols] or [[top, bottom], [left,"
                         " right]], each >= 0%s, got %s",
                         a->key, a->type == CNN_FIELD_CROPPING4 ? "" : " and not all 0",
                         show(v, got, sizeof got));
        return CNN_OK;
    }
    case CNN_FIELD_TARGET_SHAPE: {
        int ints[3], n = (int)json_array_size(v);
        bool ok = json_is_array(v) && n >= 1 && n <= 3;
        for (int i = 0; ok && i < n; i++)
            ok = get_int(json_array_get(v, (size_t)i), -1, &ints[i]);
        if (!ok || cnn_desc_target_shape(out, ints, n))
            return jfail(r, CNN_ERR_FORMAT,
                         "%s: expected [rows, cols, channels] or [features], each >= 1 or one"
                         " of them -1, got %s",
                         a->key, show(v, got, sizeof got));
        return CNN_OK;
    }
    case CNN_FIELD_SHAPE:
        break;
    }
    return jfail(r, CNN_ERR_FORMAT, "%s: not a layer argument", a->key);
}

/* A Keras shape with its batch axis first: [null, 28, 28, 1] or [null, 784]. */
static cnn_status shape_from(const json_reader *r, const char *what, const json_t *v,
                             cnn_shape *out)
{
    char got[96];
    size_t n = json_array_size(v);
    if (!json_is_array(v) || (n != 2 && n != 4))
        return jfail(r, CNN_ERR_FORMAT,
                     "%s: expected [batch, rows, cols, channels] or [batch, features], got %s",
                     what, show(v, got, sizeof got));
    int dims[3];
    for (size_t i = 1; i < n; i++) {
        const json_t *d = json_array_get(v, i);
        if (json_is_null(d))
            return jfail(r, CNN_ERR_FORMAT,
                         "%s %s: dimension %zu is variable (null); only fixed-size inputs are"
                         " supported",
                         what, show(v, got, sizeof got), i);
        if (!get_int(d, 1, &dims[i - 1]))
            return jfail(r, CNN_ERR_FORMAT, "%s %s: dimension %zu must be an integer >= 1", what,
                         show(v, got, sizeof got), i);
    }
    *out = n == 4 ? cnn_shape_hwc(dims[0], dims[1], dims[2]) : cnn_shape_flat(dims[0]);
    return CNN_OK;
}

/* The input shape: from a leading InputLayer (then *first = 1), the first
 * layer's batch_input_shape / batch_shape, the Sequential's
 * build_input_shape, or a build_config. */
static cnn_status input_shape(json_reader *r, const json_t *root, const json_t *config,
                              const json_t *layers, cnn_shape *out, size_t *first)
{
    const json_t *l0 = json_array_get(layers, 0);
    const json_t *c0 = json_object_get(l0, "config");
    const json_t *s;
    *first = 0;
    const char *cls0 = string_of(l0, "class_name");
    if (cls0 && strcmp(cls0, "InputLayer") == 0) {
        *first = 1;
        if ((s = json_object_get(c0, "batch_shape")) || (s = json_object_get(c0, "batch_input_shape")))
            return shape_from(r, "layers[0] (InputLayer) batch_shape", s, out);
        return jfail(r, CNN_ERR_FORMAT,
                     "layers[0] (InputLayer): expected batch_shape or batch_input_shape");
    }
    if ((s = json_object_get(c0, "batch_input_shape")) || (s = json_object_get(c0, "batch_shape")))
        return shape_from(r, "layers[0] batch_input_shape", s, out);
    if ((s = json_object_get(config, "build_input_shape")) && !json_is_null(s))
        return shape_from(r, "build_input_shape", s, out);
    if ((s = json_object_get(json_object_get(root, "build_config"), "input_shape")) && !json_is_null(s))
        return shape_from(r, "build_config input_shape", s, out);
    if ((s = json_object_get(json_object_get(l0, "build_config"), "input_shape")) && !json_is_null(s))
        return shape_from(r, "layers[0] build_config input_shape", s, out);
    return jfail(r, CNN_ERR_FORMAT,
                 "no input shape: expected an InputLayer first, batch_input_shape in the first"
                 " layer's config, or build_input_shape (build the model before to_json())");
}

/* A dtype: "float32" or "mixed_bfloat16" (Keras 3 reads a policy's name),
 * or a DTypePolicy (Keras 3) or Policy (Keras 2) object of that name
 * (null = float32). */
static bool dtype_policy_of(const json_t *v, cnn_dtype_policy *out)
{
    const char *s = json_is_object(v) ? string_of(json_object_get(v, "config"), "name")
                                      : json_string_value(v);
    *out = CNN_DTYPE_POLICY_FLOAT32;
    if (json_is_null(v))
        return true;
    if (!s)
        return false;
    if (strcmp(s, "mixed_bfloat16") == 0) {
        *out = CNN_DTYPE_POLICY_MIXED_BFLOAT16;
        return true;
    }
    return strcmp(s, "float32") == 0;
}

/* Keras settings that do not change what a trained layer computes: weight
 * initialisation and training-time penalties and constraints. */
static bool ignorable(const char *key)
{
    static const char *const keys[] = {
        "kernel_initializer", "bias_initializer", "bias_regularizer",
        "activity_regularizer", "kernel_constraint", "bias_constraint",
        "depthwise_initializer", "pointwise_initializer", "depthwise_constraint",
        "pointwise_constraint",
        /* BatchNormalization */
        "beta_initializer", "gamma_initializer", "moving_mean_initializer",
        "moving_variance_initializer", "beta_regularizer", "gamma_regularizer",
        "beta_constraint", "gamma_constraint",
        "fused",           /* an implementation choice (TensorFlow's fused kernel) */
        "synchronized",    /* statistics across devices: one device here */
        "renorm_momentum", /* used only with renorm, refused below */
        "batch_input_shape", "batch_shape", /* read by input_shape() */
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(key, keys[i]) == 0)
            return true;
    return false;
}

/* BatchNormalization's axis: the last one, -1 or its index counted with
 * the batch axis (Keras 2 writes [3] for images). */
static bool is_last_axis(const json_t *v, const cnn_model *m)
{
    if (json_is_array(v) && json_array_size(v) == 1)
        v = json_array_get(v, 0);
    if (!json_is_integer(v))
        return false;
    json_int_t axis = json_integer_value(v);
    return axis == -1 || axis == cnn_model_output_shape(m).rank;
}

/* A config key the table does not have: accepted only if it does not
 * change the computation. m is the model so far (the layer's input). */
static cnn_status check_other(json_reader *r, const char *key, const json_t *v,
                              const cnn_model *m)
{
    char got[96];
    if (ignorable(key) || json_is_null(v))
        return CNN_OK;
    if (m && strcmp(key, "axis") == 0) {
        if (is_last_axis(v, m))
            return CNN_OK;
        return jfail(r, CNN_ERR_FORMAT,
                     "axis %s is not supported: only the last axis (-1, the channels) is",
                     show(v, got, sizeof got));
    }
    if (strcmp(key, "center") == 0 || strcmp(key, "scale") == 0) {
        if (json_is_true(v))
            return CNN_OK;
        return jfail(r, CNN_ERR_FORMAT, "%s %s is not supported: gamma and beta are always used",
                     key, show(v, got, sizeof got));
    }
    if (strcmp(key, "rms_scaling") == 0) { /* Keras 3 LayerNormalization */
        if (json_is_false(v))
            return CNN_OK;
        return jfail(r, CNN_ERR_FORMAT, "rms_scaling %s is not supported",
                     show(v, got, sizeof got));
    }
    if (strcmp(key, "renorm") == 0) {
        if (json_is_false(v))
            return CNN_OK;
        return jfail(r, CNN_ERR_FORMAT, "renorm %s (batch renormalization) is not supported",
                     show(v, got, sizeof got));
    }
    if (strcmp(key, "trainable") == 0) {
        if (json_is_true(v))
            return CNN_OK;
        return jfail(r, CNN_ERR_FORMAT,
                     "trainable %s: frozen layers are not supported (every layer is trained)",
                     show(v, got, sizeof got));
    }
    if (strcmp(key, "dtype") == 0) {
        cnn_dtype_policy policy;
        if (dtype_policy_of(v, &policy)) {
            r->policies |= 1u << policy;
            return CNN_OK;
        }
        return jfail(r, CNN_ERR_FORMAT,
                     "dtype %s is not supported; only float32 and the policy mixed_bfloat16",
                     show(v, got, sizeof got));
    }
    if (strcmp(key, "data_format") == 0) {
        const char *s = json_string_value(v);
        if (s && strcmp(s, "channels_last") == 0)
            return CNN_OK;
        return jfail(r, CNN_ERR_FORMAT,
                     "data_format %s is not supported: only channels_last (NHWC) is",
                     show(v, got, sizeof got));
    }
    if (strcmp(key, "keepdims") == 0) { /* global pooling */
        if (json_is_false(v))
            return CNN_OK;
        return jfail(r, CNN_ERR_FORMAT, "keepdims %s is not supported; only false",
                     show(v, got, sizeof got));
    }
    if (strcmp(key, "groups") == 0) {
        if (json_is_integer(v) && json_integer_value(v) == 1)
            return CNN_OK;
        return jfail(r, CNN_ERR_FORMAT, "groups %s (grouped convolution) is not supported",
                     show(v, got, sizeof got));
    }
    return jfail(r, CNN_ERR_FORMAT, "argument %s = %s is not supported", key,
                 show(v, got, sizeof got));
}

static cnn_status add_layer(json_reader *r, size_t i, const json_t *layer, cnn_model *m)
{
    r->where[0] = '\0';
    const char *cls = string_of(layer, "class_name");
    const json_t *config = json_object_get(layer, "config");
    if (!json_is_object(layer) || !cls || (config && !json_is_object(config)))
        return jfail(r, CNN_ERR_FORMAT,
                     "layers[%zu]: expected an object with a class_name and a config object", i);
    const char *lname = string_of(config, "name");
    snprintf(r->where, sizeof r->where, "layers[%zu] '%.64s' (%.64s): ", i, lname ? lname : "?",
             cls);
    const char *registered = string_of(layer, "registered_name");
    const char *module = string_of(layer, "module");
    if (registered && strcmp(registered, cls) != 0)
        return jfail(r, CNN_ERR_FORMAT, "custom layer (registered as '%s') is not supported",
                     registered);
    if (module && strncmp(module, "keras", 5) != 0)
        return jfail(r, CNN_ERR_FORMAT, "custom layer from module '%s' is not supported",
                     module);
    if (strcmp(cls, "InputLayer") == 0)
        return jfail(r, CNN_ERR_FORMAT, "an InputLayer can only come first");
    cnn_layer_kind kind = cnn_desc_kind_from_name(cls, strlen(cls));
    const cnn_layer_ops *k = kind ? cnn_desc_kind_find(kind) : NULL;
    char names[768];
    if (!k)
        return jfail(r, CNN_ERR_FORMAT, "layer class %s is not supported; supported: %s", cls,
                     cnn_desc_layer_names(names, sizeof names));
    cnn_layer_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.kind = kind;
    r->kind = k;
    bool given[CNN_DESC_MAX_ARGS] = {0};
    const char *key;
    json_t *v;
    cnn_status st;
    /* trainable: false freezes the layer (transfer learning) */
    bool frozen = json_is_false(json_object_get(config, "trainable"));
    json_object_foreach((json_t *)config, key, v) {
        int a = cnn_desc_arg_find(k, key, strlen(key));
        if (a < 0 && frozen && strcmp(key, "trainable") == 0)
            continue;
        if (a < 0) {
            if ((st = check_other(r, key, v, m)))
                return st;
            continue;
        }
        if (json_is_null(v) && !(k->fields[a].flags & CNN_FIELD_REQUIRED)
            && k->fields[a].type != CNN_FIELD_ACTIVATION)
            continue; /* null = Keras's default */
        cnn_desc_value value;
        if ((st = convert(r, &k->fields[a], v, &value)))
            return st;
        cnn_desc_store(&spec, &k->fields[a], &value);
        given[a] = true;
    }
    for (int a = 0; a < k->n_fields; a++)
        if ((k->fields[a].flags & CNN_FIELD_REQUIRED) && !given[a])
            return jfail(r, CNN_ERR_FORMAT, "missing required argument %s", k->fields[a].key);
    if ((st = cnn_desc_add(m, &spec)))
        cnn_error_prefix("%s: layers[%zu]", r->name, i);
    else if (frozen)
        st = cnn_model_set_trainable(m, cnn_model_layer_count(m) - 1, false);
    return st;
}

/* ---- Functional models --------------------------------------------------- */

/* The layer names a node's tensors come from, in order: Keras 2 writes a
 * node as [[name, node_index, tensor_index, kwargs], ...], Keras 3 as
 * {"args": [tensor or [tensors]], "kwargs": {...}} with each tensor's
 * config.keras_history = [name, node_index, tensor_index]. */
static cnn_status history(json_reader *r, const json_t *h, const char **names, int *n)
{
    const char *name = json_string_value(json_array_get(h, 0));
    const json_t *node = json_array_get(h, 1), *tensor = json_array_get(h, 2);
    char got[96];
    if (!name || !json_is_integer(node) || !json_is_integer(tensor))
        return jfail(r, CNN_ERR_FORMAT, "inbound_nodes: expected [layer name, node index,"
                     " tensor index], got %s", show(h, got, sizeof got));
    if (json_integer_value(node) != 0 || json_integer_value(tensor) != 0)
        return jfail(r, CNN_ERR_FORMAT, "inbound_nodes: %s: a layer called more than once"
                     " (shared) or with several outputs is not supported", show(h, got, sizeof got));
    if (*n == CNN_MAX_LAYER_INPUTS)
        return jfail(r, CNN_ERR_FORMAT, "inbound_nodes: more than %d inputs",
                     CNN_MAX_LAYER_INPUTS);
    names[(*n)++] = name;
    return CNN_OK;
}

static cnn_status keras3_tensors(json_reader *r, const json_t *v, const char **names, int *n)
{
    cnn_status st;
    if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
            if ((st = keras3_tensors(r, e, names, n)))
                return st;
        return CNN_OK;
    }
    const char *cls = string_of(v, "class_name");
    if (cls && strcmp(cls, "__keras_tensor__") == 0)
        return history(r, json_object_get(json_object_get(v, "config"), "keras_history"), names, n);
    return CNN_OK; /* a constant argument */
}

static cnn_status inbound(json_reader *r, const json_t *layer, const char **names, int *n)
{
    const json_t *nodes = json_object_get(layer, "inbound_nodes");
    char got[96];
    *n = 0;
    if (!json_is_array(nodes) || json_array_size(nodes) != 1)
        return jfail(r, CNN_ERR_FORMAT, "inbound_nodes: expected one node (a layer used once),"
                     " got %s", show(nodes, got, sizeof got));
    const json_t *node = json_array_get(nodes, 0);
    if (json_is_object(node))
        return keras3_tensors(r, json_object_get(node, "args"), names, n);
    size_t i;
    const json_t *e;
    cnn_status st;
    json_array_foreach(node, i, e)
        if ((st = history(r, e, names, n)))
            return st;
    if (!json_is_array(node) || *n == 0)
        return jfail(r, CNN_ERR_FORMAT, "inbound_nodes: expected a list of inputs, got %s",
                     show(node, got, sizeof got));
    return CNN_OK;
}

/* input_layers / output_layers: [name, 0, 0] or [[name, 0, 0], ...] with
 * exactly one entry; its layer name. */
static cnn_status endpoint(json_reader *r, const json_t *config, const char *key,
                           const char **name)
{
    const json_t *v = json_object_get(config, key);
    if (json_is_array(v) && json_is_array(json_array_get(v, 0))) {
        if (json_array_size(v) != 1)
            return jfail(r, CNN_ERR_FORMAT, "%s: %zu entries; models with several inputs or"
                         " outputs are not supported", key, json_array_size(v));
        v = json_array_get(v, 0);
    }
    *name = json_string_value(json_array_get(v, 0));
    char got[96];
    if (!*name)
        return jfail(r, CNN_ERR_FORMAT, "%s: expected [layer name, 0, 0], got %s", key,
                     show(v, got, sizeof got));
    return CNN_OK;
}

static cnn_status add_layer(json_reader *r, size_t i, const json_t *layer, cnn_model *m);

/* A Sequential used as a layer of a Functional model: its layers (after
 * its own InputLayer, if any) join the graph as a chain reading what the
 * Sequential reads; its name then stands for its last layer. */
static cnn_status add_nested(json_reader *r, size_t i, const json_t *config, cnn_model *m,
                             const char **last)
{
    const json_t *layers = json_is_array(config) ? config : json_object_get(config, "layers");
    size_t n = json_array_size(layers), j;
    const json_t *inner;
    cnn_status st;
    int added = 0;
    json_array_foreach(layers, j, inner) {
        const char *cls = string_of(inner, "class_name");
        if (cls && strcmp(cls, "InputLayer") == 0 && j == 0)
            continue;
        if (cls && (strcmp(cls, "Sequential") == 0 || strcmp(cls, "Functional") == 0))
            return jfail(r, CNN_ERR_FORMAT, "a model nested two deep is not supported");
        if ((st = add_layer(r, i, inner, m)))
            return st;
        added++;
    }
    if (!n || !added)
        return jfail(r, CNN_ERR_FORMAT, "the nested Sequential has no layers");
    *last = cnn_model_layer_name(m, cnn_model_layer_count(m) - 1);
    return CNN_OK;
}

#define MAX_NESTED 64

static cnn_status read_functional(json_reader *r, const json_t *config, cnn_model **out)
{
    const json_t *layers = json_object_get(config, "layers");
    const char *input, *output;
    cnn_status st;
    if (!json_is_array(layers) || json_array_size(layers) < 2)
        return jfail(r, CNN_ERR_FORMAT, "Functional config: expected a \"layers\" list with an"
                     " InputLayer and a layer");
    if ((st = endpoint(r, config, "input_layers", &input))
        || (st = endpoint(r, config, "output_layers", &output)))
        return st;
    cnn_model *m = NULL;
    size_t i;
    const json_t *layer;
    /* nested Sequentials' names and their last layers' */
    const char *alias[MAX_NESTED], *target[MAX_NESTED];
    int n_alias = 0;
    json_array_foreach(layers, i, layer) {
        const char *cls = string_of(layer, "class_name");
        const json_t *c = json_object_get(layer, "config");
        const char *name = string_of(c, "name");
        snprintf(r->where, sizeof r->where, "layers[%zu] '%.64s' (%.64s): ", i,
                 name ? name : "?", cls ? cls : "?");
        if (cls && strcmp(cls, "InputLayer") == 0) {
            const json_t *s = json_object_get(c, "batch_shape");
            cnn_shape shape;
            if (m || !name || strcmp(name, input) != 0)
                st = jfail(r, CNN_ERR_FORMAT, "a second input, or not the model's input (%s):"
                           " models with several inputs are not supported", input);
            else if (!(st = shape_from(r, "batch_shape",
                                       s ? s : json_object_get(c, "batch_input_shape"), &shape))
                     && (st = cnn_desc_create(&m, shape)) == CNN_OK)
                st = cnn_model_set_input_name(m, name);
        } else if (!m) {
            st = jfail(r, CNN_ERR_FORMAT, "expected the InputLayer %s first", input);
        } else {
            const char *names[CNN_MAX_LAYER_INPUTS];
            int n;
            if (!(st = inbound(r, layer, names, &n))) {
                for (int k = 0; k < n; k++)
                    for (int a = 0; a < n_alias; a++)
                        if (strcmp(names[k], alias[a]) == 0)
                            names[k] = target[a];
                if (cnn_model_set_next_inputs(m, n, names))
                    st = jfail(r, CNN_ERR_FORMAT, "inbound_nodes: %s", cnn_last_error());
            }
            bool nested = cls && strcmp(cls, "Sequential") == 0;
            if (!st && cls && (strcmp(cls, "Functional") == 0 || strcmp(cls, "Model") == 0))
                st = jfail(r, CNN_ERR_FORMAT, "a Functional model used as a layer of another is"
                           " not supported (a nested Sequential is)");
            if (!st && nested && (n_alias == MAX_NESTED || !name))
                st = jfail(r, CNN_ERR_FORMAT, "more than %d nested models, or one without a name",
                           MAX_NESTED);
            if (!st && nested && (st = add_nested(r, i, c, m, &target[n_alias])) == CNN_OK)
                alias[n_alias++] = name;
            else if (!st && !nested)
                st = add_layer(r, i, layer, m);
        }
        if (st)
            break;
    }
    r->where[0] = '\0';
    for (int a = 0; a < n_alias; a++)
        if (strcmp(output, alias[a]) == 0)
            output = target[a];
    int last = m ? cnn_model_layer_count(m) - 1 : -1;
    if (!st && (last < 0 || strcmp(cnn_model_layer_name(m, last), output) != 0))
        st = jfail(r, CNN_ERR_FORMAT, "output_layers: %s must be the last layer listed", output);
    if (st) {
        cnn_model_free(m);
        return st;
    }
    *out = m;
    return CNN_OK;
}

static cnn_status read_model(json_reader *r, const json_t *root, cnn_model **out)
{
    const char *cls = string_of(root, "class_name");
    if (!cls)
        return jfail(r, CNN_ERR_FORMAT,
                     "expected a Keras model from model.to_json(): an object with"
                     " \"class_name\": \"Sequential\" or \"Functional\"");
    /* tf.keras 1.x names a Functional model's class Model */
    if (strcmp(cls, "Functional") == 0 || strcmp(cls, "Model") == 0)
        return read_functional(r, json_object_get(root, "config"), out);
    if (strcmp(cls, "Sequential") != 0)
        return jfail(r, CNN_ERR_FORMAT,
                     "model class %s is not supported: only Sequential and Functional models"
                     " can be read (not subclassed ones)",
                     cls);
    const json_t *config = json_object_get(root, "config");
    const json_t *layers = json_is_array(config) ? config : json_object_get(config, "layers");
    if (!json_is_array(layers))
        return jfail(r, CNN_ERR_FORMAT, "config: expected a \"layers\" list");
    cnn_status st;
    const json_t *trainable = json_object_get(config, "trainable");
    if (trainable && (st = check_other(r, "trainable", trainable, NULL)))
        return st;
    cnn_shape shape;
    size_t first;
    if ((st = input_shape(r, root, config, layers, &shape, &first)))
        return st;
    if ((st = cnn_desc_create(out, shape))) {
        cnn_error_prefix("%s: input shape", r->name);
        return st;
    }
    size_t n = json_array_size(layers);
    if (n <= first) {
        cnn_model_free(*out);
        *out = NULL;
        return jfail(r, CNN_ERR_FORMAT, "config: the model has no layers");
    }
    for (size_t i = first; i < n; i++) {
        if ((st = add_layer(r, i, json_array_get(layers, i), *out))) {
            cnn_model_free(*out);
            *out = NULL;
            return st;
        }
    }
    /* One policy per model: Keras's global policy (mixed_precision.set_global_policy)
     * gives every layer the same one. */
    r->where[0] = '\0';
    const unsigned mixed = 1u << CNN_DTYPE_POLICY_MIXED_BFLOAT16;
    if (r->policies & mixed) {
        if (r->policies != mixed) {
            cnn_model_free(*out);
            *out = NULL;
            return jfail(r, CNN_ERR_FORMAT,
                         "some layers have the dtype policy mixed_bfloat16 and others float32;"
                         " only one policy for the whole model is supported");
        }
        cnn_model_set_dtype_policy(*out, CNN_DTYPE_POLICY_MIXED_BFLOAT16);
    }
    return CNN_OK;
}

cnn_status cnn_desc_parse_json(const char *text, size_t size, const char *name, cnn_model **out)
{
    json_reader r = {.name = name};
    json_error_t e;
    /* jansson reports a failed allocation as a syntax error at times, and
     * (2.14) can even return a document that silently lacks a member; the
     * allocator's errno is the reliable sign. */
    errno = 0;
    json_t *root = json_loadb(text, size, JSON_REJECT_DUPLICATES, &e);
    if (errno == ENOMEM || (!root && json_error_code(&e) == json_error_out_of_memory)) {
        json_decref(root);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory while parsing the JSON", name);
    }
    if (!root)
        return cnn_fail(CNN_ERR_FORMAT, "%s:%d:%d: JSON syntax error: %s", name, e.line,
                        e.column, e.text);
    cnn_status st = read_model(&r, root, out);
    json_decref(root);
    return st;
}
