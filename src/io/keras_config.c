/* Keras JSON: the architecture of a model as Keras serialises it (Keras 3
 * config.json; Keras 2 model_config for legacy .h5), and training
 * configs both ways.
 *
 * Written configs carry every argument Keras itself writes for the layer,
 * with the values the library computes with, so Keras rebuilds the same
 * network; the weights follow separately. Reading architectures is the
 * description reader's job (description_json.c); reading here is only the
 * optimizer and loss of a training config. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/keras.h"
#include "model/model.h"
#include "model/vocabulary.h"

/* ---- Values ----------------------------------------------------------------- */

/* A float as the shortest decimal that reads back as the same float
 * (0.3f -> 0.3, not 0.30000001192092896), as Python would print it. */
static json_t *jreal(float f)
{
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f)
            break;
    }
    return json_real(strtod(buf, NULL));
}

static json_t *pair(const int v[2]) { return json_pack("[ii]", v[0], v[1]); }

/* [null, dims...] for a per-example shape. */
static json_t *batch_shape(cnn_shape s)
{
    json_t *a = json_pack("[n]");
    for (int i = 0; a && i < s.rank; i++)
        json_array_append_new(a, json_integer(s.dims[i]));
    return a;
}

/* Keras 3's name of an activation, from the library's table. gelu_tanh has
 * none (Keras's string "gelu" is the exact one): cnn_keras_unwritable
 * refuses such models before any writer gets here. */
static const char *activation_name(cnn_activation a)
{
    const char *name = cnn_activation_name(a);
    return name ? name : "linear";
}

/* The activation a layer's config names (its kind's ACTIVATION field), linear
 * if it has none. */
static cnn_activation layer_activation(const cnn_layer *l)
{
    const cnn_layer_field *f = cnn_layer_field_of_type(l->ops, CNN_FIELD_ACTIVATION);
    return f ? *(const cnn_activation *)((const char *)&l->spec + f->offset)
             : CNN_ACTIVATION_LINEAR;
}

int cnn_keras_unwritable(const cnn_model *m)
{
    for (int i = 0; i < m->n_layers; i++)
        if (layer_activation(m->layers[i]) == CNN_ACTIVATION_GELU_TANH)
            return i;
    return -1;
}

static const char *padding_name(cnn_padding p) { return p == CNN_PADDING_SAME ? "same" : "valid"; }

char *cnn_keras_dumps(const json_t *v)
{
    /* 15 digits print the short decimals jreal makes as they are. */
    return json_dumps(v, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
}

void cnn_keras_snake_case(const char *cls, char *buf, size_t size)
{
    /* Keras: re.sub("(.)([A-Z][a-z]+)", r"\1_\2"), then
     * re.sub("([a-z])([A-Z])", r"\1_\2"), then lower(). */
    char tmp[128];
    size_t n = 0, len = strlen(cls);
    for (size_t i = 0; i < len && n + 2 < sizeof tmp; i++) {
        bool upper_word = i > 0 && isupper((unsigned char)cls[i]) && i + 1 < len
                       && islower((unsigned char)cls[i + 1]);
        if (upper_word)
            tmp[n++] = '_';
        tmp[n++] = cls[i];
    }
    tmp[n] = '\0';
    size_t o = 0;
    for (size_t i = 0; tmp[i] && o + 2 < size; i++) {
        if (i > 0 && islower((unsigned char)tmp[i - 1]) && isupper((unsigned char)tmp[i]))
            buf[o++] = '_';
        buf[o++] = (char)tolower((unsigned char)tmp[i]);
    }
    buf[o] = '\0';
}

/* ---- Keras 3 (config.json) ----------------------------------------------------- */

static json_t *k3_object(const char *module, const char *cls, json_t *config)
{
    return json_pack("{s:s, s:s, s:o, s:n}", "module", module, "class_name", cls, "config",
                     config, "registered_name");
}

static json_t *k3_initializer(const char *cls)
{
    return k3_object("keras.initializers", cls,
                     strcmp(cls, "GlorotUniform") == 0 ? json_pack("{s:n}", "seed")
                                                       : json_object());
}

static json_t *k3_l2(float l2)
{
    return l2 > 0 ? k3_object("keras.regularizers", "L2", json_pack("{s:o}", "l2", jreal(l2)))
                  : json_null();
}

/* Keras 3's policy object: float32, or mixed_bfloat16 on every layer and
 * the model, as mixed_precision.set_global_policy gives them. */
static json_t *k3_dtype(const cnn_model *m)
{
    return k3_object("keras", "DTypePolicy",
                     json_pack("{s:s}", "name", cnn_dtype_policy_name(m->dtype_policy)));
}

/* The field of the kind's table named key (not an alias), NULL if none. */
static const cnn_layer_field *field_named(const cnn_layer_ops *ops, const char *key, size_t len)
{
    for (int i = 0; i < ops->n_fields; i++) {
        const cnn_layer_field *f = &ops->fields[i];
        if (!(f->flags & CNN_FIELD_ALIAS) && strlen(f->key) == len
            && memcmp(f->key, key, len) == 0)
            return f;
    }
    return NULL;
}

static bool ends_with(const char *key, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(key + len - n, suffix, n) == 0;
}

static bool starts_as(const char *key, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len > n && memcmp(key, prefix, n) == 0 && key[n] == '_';
}

/* The value Keras writes for an argument the library does not vary:
 * channels_last, one group, the default initializers, no regularizers or
 * constraints beyond the fields, ... */
static json_t *k3_fixed(const char *key, size_t len)
{
    static const struct {
        const char *key;
        int value; /* 'c' channels_last, 't' true, 'f' false, else the integer */
    } fixed[] = {{"data_format", 'c'}, {"groups", 1},        {"axis", -1},
                 {"center", 't'},      {"scale", 't'},       {"keepdims", 'f'},
                 {"synchronized", 'f'}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strlen(fixed[i].key) == len && memcmp(fixed[i].key, key, len) == 0)
            return fixed[i].value == 'c'   ? json_string("channels_last")
                   : fixed[i].value == 't' ? json_true()
                   : fixed[i].value == 'f' ? json_false()
                                           : json_integer(fixed[i].value);
    if (ends_with(key, len, "_initializer")) {
        if (starts_as(key, len, "gamma") || starts_as(key, len, "moving_variance"))
            return k3_initializer("Ones");
        if (starts_as(key, len, "bias") || starts_as(key, len, "beta")
            || starts_as(key, len, "moving_mean"))
            return k3_initializer("Zeros");
        return k3_initializer("GlorotUniform");
    }
    return json_null(); /* regularizers, constraints, noise_shape, quantization_config */
}

/* A field's value in Keras's words. */
static json_t *k3_field(const cnn_layer_spec *s, const cnn_layer_field *f)
{
    const char *p = (const char *)s + f->offset;
    switch (f->type) {
    case CNN_FIELD_COUNT:
    case CNN_FIELD_AXIS: return json_integer(*(const int *)p);
    case CNN_FIELD_PAIR: return pair((const int *)p);
    case CNN_FIELD_PADDING: return json_string(padding_name(*(const cnn_padding *)p));
    case CNN_FIELD_ACTIVATION: return json_string(activation_name(*(const cnn_activation *)p));
    case CNN_FIELD_USE_BIAS: return json_boolean(!*(const bool *)p);
    case CNN_FIELD_SEED: {
        uint64_t seed = *(const uint64_t *)p;
        return seed ? json_integer((json_int_t)seed) : json_null();
    }
    case CNN_FIELD_POSITIVE: /* 0 is None (ReLU's max_value) */
        return *(const float *)p > 0 ? jreal(*(const float *)p) : json_null();
    case CNN_FIELD_RATE:
    case CNN_FIELD_REAL:
    case CNN_FIELD_NONNEGATIVE: return jreal(*(const float *)p);
    case CNN_FIELD_L2: return k3_l2(*(const float *)p);
    case CNN_FIELD_OPT_PAIR: {
        const cnn_opt_pair *o = (const cnn_opt_pair *)p;
        return o->set ? pair(o->value) : json_null();
    }
    case CNN_FIELD_CHOICE: {
        char buf[32];
        const char *name = cnn_layer_choice_name(cnn_layer_kind_find(s->kind), *(const int *)p, buf,
                                                 sizeof buf);
        return name ? json_string(name) : json_null();
    }
    case CNN_FIELD_PADDING4:
    case CNN_FIELD_CROPPING4: {
        const int *v = (const int *)p;
        return json_pack("[[ii][ii]]", v[0], v[1], v[2], v[3]);
    }
    case CNN_FIELD_TARGET_SHAPE: {
        const cnn_shape *t = (const cnn_shape *)p;
        json_t *a = json_array();
        for (int i = 0; i < t->rank; i++)
            json_array_append_new(a, json_integer(t->dims[i]));
        return a;
    }
    case CNN_FIELD_NAME:
    case CNN_FIELD_SHAPE: break;
    }
    return json_null();
}

/* The config of a layer in Keras 3's words: the kind's Keras keys in
 * order, each a field's value or Keras's fixed one. */
static json_t *k3_layer_config(const cnn_model *m, const cnn_layer_ops *ops,
                               const cnn_layer_spec *s, const char *name)
{
    json_t *c = json_pack("{s:s, s:b, s:o}", "name", name, "trainable", 1, "dtype", k3_dtype(m));
    for (const char *k = ops->keras_keys; k && *k;) {
        size_t len = strcspn(k, " ");
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)len, k);
        const cnn_layer_field *f = field_named(ops, k, len);
        json_object_set_new(c, key, f ? k3_field(s, f) : k3_fixed(k, len));
        k += len;
        k += strspn(k, " ");
    }
    return c;
}

/* The loss as Keras writes it: its name, or with from_logits the loss
 * object (Keras 3: module/class_name/config; Keras 2: class_name/config). */
static json_t *loss_json(const cnn_compile_config *cc, bool keras3)
{
    const char *name = cnn_loss_name(cc->loss), *cls = cnn_loss_keras_class(cc->loss);
    if (!cc->from_logits || cc->loss > CNN_LOSS_BINARY_CROSSENTROPY)
        return json_string(name);
    json_t *c = json_pack("{s:s, s:s, s:b}", "name", name, "reduction",
                          keras3 ? "sum_over_batch_size" : "auto", "from_logits", 1);
    if (cc->loss == CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)
        json_object_set_new(c, "ignore_class", json_null());
    else
        json_object_update_new(c, json_pack("{s:f, s:i}", "label_smoothing", 0.0, "axis", -1));
    return keras3 ? k3_object("keras.losses", cls, c)
                  : json_pack("{s:s, s:o}", "class_name", cls, "config", c);
}

static json_t *clip_value(float v) { return v > 0 ? jreal(v) : json_null(); }

/* Adds the algorithm's own arguments to an optimizer config; both Keras
 * layouts share them except RMSprop's "centered", which only Keras 3 writes. */
static void add_algorithm_arguments(json_t *c, const cnn_optimizer *o, bool keras3)
{
    switch (o->kind) {
    case CNN_OPTIMIZER_SGD:
        json_object_update_new(c, json_pack("{s:o, s:b}", "momentum", jreal(o->momentum),
                                            "nesterov", o->nesterov));
        break;
    case CNN_OPTIMIZER_ADAM:
        json_object_update_new(c, json_pack("{s:o, s:o, s:o, s:b}", "beta_1", jreal(o->beta_1),
                                            "beta_2", jreal(o->beta_2), "epsilon",
                                            jreal(o->epsilon), "amsgrad", 0));
        break;
    case CNN_OPTIMIZER_RMSPROP:
        json_object_update_new(c, json_pack("{s:o, s:o, s:o}", "rho", jreal(o->rho),
                                            "momentum", jreal(o->momentum), "epsilon",
                                            jreal(o->epsilon)));
        if (keras3)
            json_object_set_new(c, "centered", json_false());
        break;
    }
}

/* The optimizer's config as Keras 3 writes it (name, then the base
 * optimizer's arguments, then the algorithm's). */
static json_t *k3_optimizer(const cnn_optimizer *o)
{
    json_t *c = json_pack("{s:s, s:o, s:n, s:o, s:o, s:n, s:b, s:f, s:n, s:n, s:n}", "name",
                          cnn_optimizer_keras3_name(o->kind), "learning_rate",
                          jreal(o->learning_rate), "weight_decay",
                          "clipnorm", clip_value(o->clipnorm), "global_clipnorm",
                          clip_value(o->global_clipnorm), "clipvalue", "use_ema", 0,
                          "ema_momentum", 0.99, "ema_overwrite_frequency", "loss_scale_factor",
                          "gradient_accumulation_steps");
    add_algorithm_arguments(c, o, true);
    return k3_object("keras.optimizers", cnn_optimizer_keras_class(o->kind), c);
}

static void add_compile_config(const cnn_model *m, json_t *root);
static json_t *layer_config(const cnn_model *m, const cnn_layer *l, bool keras2);

/* ---- Functional graphs --------------------------------------------------------------- */

static const char *input_name(const cnn_model *m, int i, int k)
{
    int p = m->layers[i]->inputs[k];
    return p < 0 ? cnn_model_input_name(m) : m->layers[p]->name;
}

/* Keras 3's node: {"args": [tensor] or [[tensors]], "kwargs": {}}. */
static json_t *k3_node(const cnn_model *m, int i)
{
    const cnn_layer *l = m->layers[i];
    json_t *tensors = json_array();
    for (int k = 0; k < l->n_inputs; k++)
        json_array_append_new(tensors, json_pack(
            "{s:s, s:{s:o, s:s, s:[sii]}}", "class_name", "__keras_tensor__", "config", "shape",
            batch_shape(l->ins[k]), "dtype", "float32", "keras_history", input_name(m, i, k), 0,
            0));
    json_t *args = l->ops->max_inputs ? json_pack("[o]", tensors) : tensors;
    return json_pack("[{s:o, s:{}}]", "args", args, "kwargs");
}

static json_t *k3_build_shape(const cnn_layer *l)
{
    if (!l->ops->max_inputs)
        return batch_shape(l->in);
    json_t *a = json_array();
    for (int k = 0; k < l->n_inputs; k++)
        json_array_append_new(a, batch_shape(l->ins[k]));
    return a;
}

static json_t *k3_functional(const cnn_model *m, json_t *input)
{
    const char *in = cnn_model_input_name(m);
    json_object_set_new(json_object_get(input, "config"), "name", json_string(in));
    json_object_set_new(input, "name", json_string(in));
    json_object_set_new(input, "inbound_nodes", json_array());
    json_t *layers = json_pack("[o]", input);
    for (int i = 0; i < m->n_layers; i++) {
        const cnn_layer *l = m->layers[i];
        json_t *o = k3_object("keras.layers", l->ops->type_name, layer_config(m, l, false));
        json_object_set_new(o, "build_config",
                            json_pack("{s:o}", "input_shape", k3_build_shape(l)));
        json_object_set_new(o, "name", json_string(l->name));
        json_object_set_new(o, "inbound_nodes", k3_node(m, i));
        json_array_append_new(layers, o);
    }
    return json_pack("{s:s, s:s, s:{s:s, s:b, s:o, s:[sii], s:[sii]}, s:s, s:{s:n}}", "module",
                     "keras.src.models.functional", "class_name", "Functional", "config", "name",
                     "functional", "trainable", 1, "layers", layers, "input_layers", in, 0, 0,
                     "output_layers", m->layers[m->n_layers - 1]->name, 0, 0, "registered_name",
                     "Functional", "build_config", "input_shape");
}

json_t *cnn_keras3_config(const cnn_model *m)
{
    json_t *layers = json_array();
    cnn_shape in = cnn_model_input_shape(m);
    json_array_append_new(layers, json_pack(
        "{s:s, s:s, s:{s:o, s:s, s:b, s:b, s:s, s:b}, s:n}", "module", "keras.layers",
        "class_name", "InputLayer", "config", "batch_shape", batch_shape(in), "dtype", "float32",
        "sparse", 0, "ragged", 0, "name", "input_layer", "optional", 0, "registered_name"));
    if (cnn_model_is_functional(m) && m->n_layers) {
        json_t *input = json_incref(json_array_get(layers, 0));
        json_decref(layers);
        json_t *root = k3_functional(m, input);
        add_compile_config(m, root);
        return root;
    }
    for (int i = 0; i < cnn_model_layer_count(m); i++) {
        const cnn_layer *layer = m->layers[i];
        json_t *l = k3_object("keras.layers", layer->ops->type_name, layer_config(m, layer, false));
        if (layer->ops->keras_build_config)
            json_object_set_new(l, "build_config",
                                json_pack("{s:o}", "input_shape", batch_shape(in)));
        json_array_append_new(layers, l);
        in = cnn_model_layer_output_shape(m, i);
    }
    json_t *root = json_pack(
        "{s:s, s:s, s:{s:s, s:b, s:o, s:o, s:o}, s:n, s:{s:o}}", "module", "keras",
        "class_name", "Sequential", "config", "name", "sequential", "trainable", 1, "dtype",
        k3_dtype(m), "layers", layers, "build_input_shape", batch_shape(cnn_model_input_shape(m)),
        "registered_name", "build_config", "input_shape", batch_shape(cnn_model_input_shape(m)));
    add_compile_config(m, root);
    return root;
}

static void add_compile_config(const cnn_model *m, json_t *root)
{
    cnn_compile_config cc;
    if (root && cnn_model_compile_config(m, &cc) == CNN_OK && cnn_loss_name(cc.loss))
        json_object_set_new(root, "compile_config", json_pack(
            "{s:o, s:o, s:n, s:[s], s:n, s:b, s:i, s:b}", "optimizer",
            k3_optimizer(&cc.optimizer), "loss", loss_json(&cc, true), "loss_weights", "metrics",
            "accuracy", "weighted_metrics", "run_eagerly", 0, "steps_per_execution", 1,
            "jit_compile", 0));
}

/* ---- Keras 2 (legacy .h5 model_config and training_config) ------------------------ */

static json_t *k2_initializer(const char *cls)
{
    json_t *c = strcmp(cls, "VarianceScaling") == 0
                    ? json_pack("{s:f, s:s, s:s, s:n}", "scale", 1.0, "mode", "fan_avg",
                                "distribution", "uniform", "seed")
                    : json_object();
    return json_pack("{s:s, s:o}", "class_name", cls, "config", c);
}

static json_t *k2_l2(float l2)
{
    return l2 > 0 ? json_pack("{s:s, s:{s:f, s:o}}", "class_name", "L1L2", "config", "l1", 0.0,
                              "l2", jreal(l2))
                  : json_null();
}

/* Keras 2's config of a layer: Keras 3's without the dtype policy (but
 * Keras 2's Policy object under mixed_bfloat16), with Keras 2's
 * initializer and regularizer objects and argument names. */
static json_t *k2_layer_config(const cnn_model *m, const cnn_layer_ops *ops,
                               const cnn_layer_spec *s, const char *name)
{
    json_t *c = k3_layer_config(m, ops, s, name);
    if (m->dtype_policy == CNN_DTYPE_POLICY_FLOAT32)
        json_object_del(c, "dtype");
    else
        json_object_set_new(c, "dtype", json_pack("{s:s, s:{s:s}}", "class_name", "Policy",
                                                  "config", "name",
                                                  cnn_dtype_policy_name(m->dtype_policy)));
    json_object_del(c, "groups");
    json_object_del(c, "quantization_config");
    json_object_del(c, "synchronized");
    const char *const inits[] = {"kernel_initializer", "depthwise_initializer",
                                 "pointwise_initializer"};
    for (size_t i = 0; i < sizeof inits / sizeof inits[0]; i++)
        if (json_object_get(c, inits[i]))
            json_object_set_new(c, inits[i], k2_initializer("VarianceScaling"));
    const char *const zeros[] = {"bias_initializer", "beta_initializer",
                                 "moving_mean_initializer"};
    for (size_t i = 0; i < sizeof zeros / sizeof zeros[0]; i++)
        if (json_object_get(c, zeros[i]))
            json_object_set_new(c, zeros[i], k2_initializer("Zeros"));
    const char *const ones[] = {"gamma_initializer", "moving_variance_initializer"};
    for (size_t i = 0; i < sizeof ones / sizeof ones[0]; i++)
        if (json_object_get(c, ones[i]))
            json_object_set_new(c, ones[i], k2_initializer("Ones"));
    for (int i = 0; i < ops->n_fields; i++) {
        const cnn_layer_field *f = &ops->fields[i];
        if (f->type == CNN_FIELD_L2 && !(f->flags & CNN_FIELD_ALIAS))
            json_object_set_new(c, f->key, k2_l2(*(const float *)((const char *)s + f->offset)));
        /* Keras 2's name of a field (LeakyReLU's slope is alpha there) */
        if ((f->flags & CNN_FIELD_ALIAS) && (f->flags & CNN_FIELD_KERAS2))
            for (int j = 0; j < ops->n_fields; j++) {
                const cnn_layer_field *g = &ops->fields[j];
                if (!(g->flags & CNN_FIELD_ALIAS) && g->offset == f->offset) {
                    json_object_set(c, f->key, json_object_get(c, g->key));
                    json_object_del(c, g->key);
                }
            }
    }
    /* tf.keras 2 knows silu as swish (Keras 3 reads both) */
    const json_t *act = json_object_get(c, "activation");
    if (json_is_string(act) && strcmp(json_string_value(act), "silu") == 0)
        json_object_set_new(c, "activation", json_string("swish"));
    return c;
}

/* Keras 2's Functional model_config: an InputLayer, then each layer with
 * its name and inbound_nodes [[[input, 0, 0, {}], ...]]. */
static json_t *k2_functional(const cnn_model *m)
{
    const char *in = cnn_model_input_name(m);
    json_t *layers = json_pack(
        "[{s:s, s:{s:o, s:s, s:b, s:b, s:s}, s:s, s:[]}]", "class_name", "InputLayer", "config",
        "batch_input_shape", batch_shape(cnn_model_input_shape(m)), "dtype", "float32", "sparse",
        0, "ragged", 0, "name", in, "name", in, "inbound_nodes");
    for (int i = 0; i < m->n_layers; i++) {
        const cnn_layer *l = m->layers[i];
        json_t *node = json_array();
        for (int k = 0; k < l->n_inputs; k++)
            json_array_append_new(node, json_pack("[sii{}]", input_name(m, i, k), 0, 0));
        json_array_append_new(layers, json_pack("{s:s, s:o, s:s, s:[o]}", "class_name",
                                                l->ops->type_name, "config",
                                                layer_config(m, l, true),
                                                "name", l->name, "inbound_nodes", node));
    }
    return json_pack("{s:s, s:{s:s, s:o, s:[[sii]], s:[[sii]]}}", "class_name", "Functional",
                     "config", "name", "model", "layers", layers, "input_layers", in, 0, 0,
                     "output_layers", m->layers[m->n_layers - 1]->name, 0, 0);
}

/* A layer's config with its trainable flag (false when frozen). */
static json_t *layer_config(const cnn_model *m, const cnn_layer *l, bool keras2)
{
    json_t *c = keras2 ? k2_layer_config(m, l->ops, &l->spec, l->name)
                       : k3_layer_config(m, l->ops, &l->spec, l->name);
    json_object_set_new(c, "trainable", json_boolean(!l->frozen));
    return c;
}

json_t *cnn_keras2_config(const cnn_model *m)
{
    if (cnn_model_is_functional(m) && m->n_layers)
        return k2_functional(m);
    json_t *layers = json_array();
    for (int i = 0; i < cnn_model_layer_count(m); i++) {
        const cnn_layer *layer = m->layers[i];
        json_t *c = layer_config(m, layer, true);
        if (i == 0) {
            /* batch_input_shape and dtype right after name and trainable */
            json_t *first = json_pack("{s:O, s:O, s:o, s:s}", "name", json_object_get(c, "name"),
                                      "trainable", json_object_get(c, "trainable"),
                                      "batch_input_shape", batch_shape(cnn_model_input_shape(m)),
                                      "dtype", "float32");
            json_object_update(first, c);
            json_decref(c);
            c = first;
        }
        json_array_append_new(layers, json_pack("{s:s, s:o}", "class_name",
                                                cnn_model_layer_type(m, i), "config", c));
    }
    return json_pack("{s:s, s:{s:s, s:o}}", "class_name", "Sequential", "config", "name",
                     "sequential", "layers", layers);
}

json_t *cnn_keras2_training_config(const cnn_model *m)
{
    cnn_compile_config cc;
    if (cnn_model_compile_config(m, &cc) != CNN_OK || !cnn_loss_name(cc.loss))
        return NULL;
    const cnn_optimizer *o = &cc.optimizer;
    json_t *c = json_pack("{s:o}", "learning_rate", jreal(o->learning_rate));
    add_algorithm_arguments(c, o, false);
    if (o->clipnorm > 0)
        json_object_set_new(c, "clipnorm", jreal(o->clipnorm));
    if (o->global_clipnorm > 0)
        json_object_set_new(c, "global_clipnorm", jreal(o->global_clipnorm));
    return json_pack("{s:{s:s, s:o}, s:o, s:[s], s:n, s:n, s:n}", "optimizer_config",
                     "class_name", cnn_optimizer_keras_class(o->kind), "config", c, "loss",
                     loss_json(&cc, false),
                     "metrics", "accuracy", "weighted_metrics", "loss_weights",
                     "sample_weight_mode");
}

/* ---- Reading a training config ------------------------------------------------------ */

static bool unsupported(bool *ok, char *why, size_t size, const char *fmt, const char *what)
{
    *ok = false;
    snprintf(why, size, fmt, what);
    return false;
}

/* A float setting: absent or null keeps *out (the default), a number sets
 * it; anything else is unsupported. */
static bool number_field(const json_t *config, const char *key, float *out, bool *ok, char *why,
                         size_t size)
{
    const json_t *v = json_object_get(config, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return unsupported(ok, why, size, "optimizer %s is not a number (a schedule?): not"
                           " supported", key);
    *out = (float)json_number_value(v);
    return true;
}

/* Settings Keras has that would change the updates: allowed only at their
 * neutral value. */
static bool neutral(const json_t *config, bool *ok, char *why, size_t size)
{
    static const char *const off_keys[] = {"amsgrad", "use_ema", "centered"};
    for (size_t i = 0; i < sizeof off_keys / sizeof off_keys[0]; i++)
        if (json_is_true(json_object_get(config, off_keys[i])))
            return unsupported(ok, why, size, "optimizer setting %s = true is not supported",
                               off_keys[i]);
    static const char *const zero_keys[] = {"decay", "weight_decay", "clipvalue"};
    for (size_t i = 0; i < sizeof zero_keys / sizeof zero_keys[0]; i++) {
        const json_t *v = json_object_get(config, zero_keys[i]);
        if (v && !json_is_null(v) && !(json_is_number(v) && json_number_value(v) == 0))
            return unsupported(ok, why, size, "optimizer setting %s is not supported",
                               zero_keys[i]);
    }
    return true;
}

static bool read_optimizer(const json_t *opt, cnn_optimizer *o, bool *ok, char *why, size_t size)
{
    const char *cls = json_is_string(opt) ? json_string_value(opt)
                                          : json_string_value(json_object_get(opt, "class_name"));
    const json_t *config = json_object_get(opt, "config");
    const char *module = json_string_value(json_object_get(opt, "module"));
    if (!cls)
        return unsupported(ok, why, size, "%s", "the optimizer is not named");
    if (module && strncmp(module, "keras", 5) != 0)
        return unsupported(ok, why, size, "optimizer from module %s is not supported", module);
    /* Keras 2.11 and 2.12 register their new optimizers as Custom>Adam, ... */
    if (strncmp(cls, "Custom>", 7) == 0)
        cls += 7;
    memset(o, 0, sizeof *o);
    if (cnn_optimizer_from_name(cls, &o->kind))
        return unsupported(ok, why, size, "optimizer %s is not supported (only SGD, Adam and"
                           " RMSprop)", cls);
    if (config && !json_is_object(config))
        return unsupported(ok, why, size, "%s", "the optimizer's config is not an object");
    if (!neutral(config, ok, why, size))
        return false;
    float rate = 0;
    bool fine = number_field(config, "lr", &rate, ok, why, size)
             && number_field(config, "learning_rate", &rate, ok, why, size)
             && number_field(config, "momentum", &o->momentum, ok, why, size)
             && number_field(config, "beta_1", &o->beta_1, ok, why, size)
             && number_field(config, "beta_2", &o->beta_2, ok, why, size)
             && number_field(config, "rho", &o->rho, ok, why, size)
             && number_field(config, "epsilon", &o->epsilon, ok, why, size)
             && number_field(config, "clipnorm", &o->clipnorm, ok, why, size)
             && number_field(config, "global_clipnorm", &o->global_clipnorm, ok, why, size);
    o->learning_rate = rate;
    o->nesterov = json_is_true(json_object_get(config, "nesterov"));
    return fine;
}

static bool read_loss(const json_t *loss, cnn_loss *out, bool *from_logits, bool *ok, char *why,
                      size_t size)
{
    const char *name = json_is_string(loss) ? json_string_value(loss)
                                            : json_string_value(json_object_get(loss, "class_name"));
    if (!name)
        return unsupported(ok, why, size, "%s", json_is_null(loss) || !loss
                                                    ? "there is no loss"
                                                    : "the loss is not one loss function");
    const json_t *config = json_object_get(loss, "config");
    *from_logits = json_is_true(json_object_get(config, "from_logits"));
    const json_t *smooth = json_object_get(config, "label_smoothing");
    if (json_is_number(smooth) && json_number_value(smooth) != 0)
        return unsupported(ok, why, size, "loss %s with label smoothing is not supported", name);
    const json_t *ignore = json_object_get(config, "ignore_class");
    if (ignore && !json_is_null(ignore))
        return unsupported(ok, why, size, "loss %s with ignore_class is not supported", name);
    if (cnn_loss_from_name(name, out) == CNN_OK) {
        *from_logits = *from_logits && *out != CNN_LOSS_MSE;
        return true;
    }
    return unsupported(ok, why, size, "loss %s is not supported (sparse_categorical_crossentropy,"
                       " categorical_crossentropy, binary_crossentropy, mean_squared_error)",
                       name);
}

cnn_status cnn_keras_compile_from(const json_t *optimizer, const json_t *loss, const char *where,
                                  cnn_compile_config *out, bool *ok, char *why, size_t why_size)
{
    (void)where;
    memset(out, 0, sizeof *out);
    *ok = true;
    why[0] = '\0';
    if (!optimizer || json_is_null(optimizer)) {
        *ok = false;
        snprintf(why, why_size, "there is no optimizer");
        return CNN_OK;
    }
    if (read_optimizer(optimizer, &out->optimizer, ok, why, why_size))
        read_loss(loss, &out->loss, &out->from_logits, ok, why, why_size);
    return CNN_OK;
}

const json_t *cnn_keras_hard_sigmoid_layer(const json_t *model_config)
{
    const json_t *config = json_object_get(model_config, "config");
    const json_t *layers = json_is_array(config) ? config : json_object_get(config, "layers");
    size_t i;
    const json_t *layer;
    json_array_foreach(layers, i, layer) {
        const json_t *act = json_object_get(json_object_get(layer, "config"), "activation");
        if (json_is_string(act) && strcasecmp(json_string_value(act), "hard_sigmoid") == 0)
            return layer;
    }
    return NULL;
}
