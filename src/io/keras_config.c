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

static cnn_activation layer_activation(const cnn_layer_spec *s)
{
    switch (s->kind) {
    case CNN_LAYER_CONV2D: return s->u.conv2d.activation;
    case CNN_LAYER_DENSE: return s->u.dense.activation;
    case CNN_LAYER_ACTIVATION: return s->u.activation.activation;
    case CNN_LAYER_DEPTHWISE_CONV2D: return s->u.depthwise_conv2d.activation;
    case CNN_LAYER_SEPARABLE_CONV2D: return s->u.separable_conv2d.activation;
    default: return CNN_ACTIVATION_LINEAR;
    }
}

int cnn_keras_unwritable(const cnn_model *m)
{
    for (int i = 0; i < cnn_model_layer_count(m); i++) {
        cnn_layer_spec s;
        if (cnn_model_layer_spec(m, i, &s) == CNN_OK
            && layer_activation(&s) == CNN_ACTIVATION_GELU_TANH)
            return i;
    }
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

static json_t *k3_dtype(void)
{
    return k3_object("keras", "DTypePolicy", json_pack("{s:s}", "name", "float32"));
}

/* The config of layer i in Keras 3's words. */
static json_t *k3_layer_config(const cnn_layer_spec *s, const char *name)
{
    json_t *c = json_pack("{s:s, s:b, s:o}", "name", name, "trainable", 1, "dtype", k3_dtype());
    switch (s->kind) {
    case CNN_LAYER_CONV2D: {
        const cnn_conv2d_config *k = &s->u.conv2d;
        json_object_update_new(c, json_pack(
            "{s:i, s:o, s:o, s:s, s:s, s:o, s:i, s:s, s:b, s:o, s:o, s:o, s:n, s:n, s:n, s:n}",
            "filters", k->filters, "kernel_size", pair(k->kernel_size), "strides",
            pair(k->strides), "padding", padding_name(k->padding), "data_format", "channels_last",
            "dilation_rate", pair(k->dilation_rate), "groups", 1, "activation",
            activation_name(k->activation), "use_bias", !k->no_bias, "kernel_initializer",
            k3_initializer("GlorotUniform"), "bias_initializer", k3_initializer("Zeros"),
            "kernel_regularizer", k3_l2(k->kernel_l2), "bias_regularizer",
            "activity_regularizer", "kernel_constraint", "bias_constraint"));
        break;
    }
    case CNN_LAYER_DENSE: {
        const cnn_dense_config *k = &s->u.dense;
        json_object_update_new(c, json_pack(
            "{s:i, s:s, s:b, s:o, s:o, s:o, s:n, s:n, s:n, s:n}", "units", k->units,
            "activation", activation_name(k->activation), "use_bias", !k->no_bias,
            "kernel_initializer", k3_initializer("GlorotUniform"), "bias_initializer",
            k3_initializer("Zeros"), "kernel_regularizer", k3_l2(k->kernel_l2),
            "bias_regularizer", "kernel_constraint", "bias_constraint", "quantization_config"));
        break;
    }
    case CNN_LAYER_MAX_POOLING2D:
    case CNN_LAYER_AVERAGE_POOLING2D:
        json_object_update_new(c, json_pack("{s:o, s:s, s:o, s:s}", "pool_size",
                                            pair(s->u.pool2d.pool_size), "padding",
                                            padding_name(s->u.pool2d.padding), "strides",
                                            pair(s->u.pool2d.strides), "data_format",
                                            "channels_last"));
        break;
    case CNN_LAYER_ACTIVATION:
        json_object_set_new(c, "activation",
                            json_string(activation_name(s->u.activation.activation)));
        break;
    case CNN_LAYER_DROPOUT:
        json_object_update_new(c, json_pack("{s:o, s:o, s:n}", "rate", jreal(s->u.dropout.rate),
                                            "seed", s->u.dropout.seed
                                                        ? json_integer((json_int_t)s->u.dropout.seed)
                                                        : json_null(),
                                            "noise_shape"));
        break;
    case CNN_LAYER_FLATTEN:
        json_object_set_new(c, "data_format", json_string("channels_last"));
        break;
    case CNN_LAYER_GLOBAL_AVERAGE_POOLING2D:
    case CNN_LAYER_GLOBAL_MAX_POOLING2D:
        json_object_update_new(c, json_pack("{s:s, s:b}", "data_format", "channels_last",
                                            "keepdims", 0));
        break;
    case CNN_LAYER_BATCH_NORMALIZATION: {
        const cnn_batch_normalization_config *k = &s->u.batch_normalization;
        json_object_update_new(c, json_pack(
            "{s:i, s:o, s:o, s:b, s:b, s:o, s:o, s:o, s:o, s:n, s:n, s:n, s:n, s:b}", "axis", -1,
            "momentum", jreal(k->momentum), "epsilon", jreal(k->epsilon), "center", 1, "scale",
            1, "beta_initializer", k3_initializer("Zeros"), "gamma_initializer",
            k3_initializer("Ones"), "moving_mean_initializer", k3_initializer("Zeros"),
            "moving_variance_initializer", k3_initializer("Ones"), "beta_regularizer",
            "gamma_regularizer", "beta_constraint", "gamma_constraint", "synchronized", 0));
        break;
    }
    case CNN_LAYER_LEAKY_RELU:
        json_object_set_new(c, "negative_slope", jreal(s->u.leaky_relu.negative_slope));
        break;
    case CNN_LAYER_ELU:
        json_object_set_new(c, "alpha", jreal(s->u.elu.alpha));
        break;
    case CNN_LAYER_RELU:
        json_object_update_new(c, json_pack("{s:o, s:o, s:o}", "max_value",
                                            s->u.relu.max_value > 0 ? jreal(s->u.relu.max_value)
                                                                    : json_null(),
                                            "negative_slope", jreal(s->u.relu.negative_slope),
                                            "threshold", jreal(s->u.relu.threshold)));
        break;
    case CNN_LAYER_ZERO_PADDING2D: {
        const int *p = s->u.zero_padding2d.padding;
        json_object_update_new(c, json_pack("{s:[[ii][ii]], s:s}", "padding", p[0], p[1], p[2],
                                            p[3], "data_format", "channels_last"));
        break;
    }
    case CNN_LAYER_RESHAPE: {
        const cnn_shape *t = &s->u.reshape.target_shape;
        json_t *a = json_array();
        for (int i = 0; i < t->rank; i++)
            json_array_append_new(a, json_integer(t->dims[i]));
        json_object_set_new(c, "target_shape", a);
        break;
    }
    case CNN_LAYER_DEPTHWISE_CONV2D: {
        const cnn_depthwise_conv2d_config *k = &s->u.depthwise_conv2d;
        json_object_update_new(c, json_pack(
            "{s:o, s:o, s:s, s:s, s:o, s:s, s:b, s:o, s:n, s:n, s:n, s:i, s:o, s:o, s:n}",
            "kernel_size", pair(k->kernel_size), "strides", pair(k->strides), "padding",
            padding_name(k->padding), "data_format", "channels_last", "dilation_rate",
            pair(k->dilation_rate), "activation", activation_name(k->activation), "use_bias",
            !k->no_bias, "bias_initializer", k3_initializer("Zeros"), "bias_regularizer",
            "activity_regularizer", "bias_constraint", "depth_multiplier", k->depth_multiplier,
            "depthwise_initializer", k3_initializer("GlorotUniform"), "depthwise_regularizer",
            k3_l2(k->depthwise_l2), "depthwise_constraint"));
        break;
    }
    case CNN_LAYER_SEPARABLE_CONV2D: {
        const cnn_separable_conv2d_config *k = &s->u.separable_conv2d;
        json_object_update_new(c, json_pack(
            "{s:i, s:o, s:o, s:s, s:s, s:o, s:i, s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:n, s:n,"
            " s:n, s:n, s:n}",
            "filters", k->filters, "kernel_size", pair(k->kernel_size), "strides",
            pair(k->strides), "padding", padding_name(k->padding), "data_format", "channels_last",
            "dilation_rate", pair(k->dilation_rate), "depth_multiplier", k->depth_multiplier,
            "activation", activation_name(k->activation), "use_bias", !k->no_bias,
            "depthwise_initializer", k3_initializer("GlorotUniform"), "pointwise_initializer",
            k3_initializer("GlorotUniform"), "bias_initializer", k3_initializer("Zeros"),
            "depthwise_regularizer", k3_l2(k->depthwise_l2), "pointwise_regularizer",
            k3_l2(k->pointwise_l2), "bias_regularizer", "activity_regularizer",
            "depthwise_constraint", "pointwise_constraint", "bias_constraint"));
        break;
    }
    case CNN_LAYER_RESCALING:
        json_object_update_new(c, json_pack("{s:o, s:o}", "scale", jreal(s->u.rescaling.scale),
                                            "offset", jreal(s->u.rescaling.offset)));
        break;
    }
    return c;
}

/* Keras 3 records the input shape of layers that build weights (and of
 * Flatten and Reshape, which build too). */
static bool k3_has_build_config(cnn_layer_kind kind)
{
    switch (kind) {
    case CNN_LAYER_CONV2D:
    case CNN_LAYER_DENSE:
    case CNN_LAYER_FLATTEN:
    case CNN_LAYER_BATCH_NORMALIZATION:
    case CNN_LAYER_RESHAPE:
    case CNN_LAYER_DEPTHWISE_CONV2D:
    case CNN_LAYER_SEPARABLE_CONV2D: return true;
    default: return false;
    }
}

static const char *loss_name(cnn_loss loss)
{
    switch (loss) {
    case CNN_LOSS_CATEGORICAL_CROSSENTROPY: return "categorical_crossentropy";
    case CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY: return "sparse_categorical_crossentropy";
    case CNN_LOSS_BINARY_CROSSENTROPY: return "binary_crossentropy";
    case CNN_LOSS_MSE: return "mean_squared_error";
    default: return NULL;
    }
}

/* The loss as Keras writes it: its name, or with from_logits the loss
 * object (Keras 3: module/class_name/config; Keras 2: class_name/config). */
static json_t *loss_json(const cnn_compile_config *cc, bool keras3)
{
    static const char *const cls[] = {NULL, "CategoricalCrossentropy",
                                      "SparseCategoricalCrossentropy", "BinaryCrossentropy"};
    const char *name = loss_name(cc->loss);
    if (!cc->from_logits || cc->loss > CNN_LOSS_BINARY_CROSSENTROPY)
        return json_string(name);
    json_t *c = json_pack("{s:s, s:s, s:b}", "name", name, "reduction",
                          keras3 ? "sum_over_batch_size" : "auto", "from_logits", 1);
    if (cc->loss == CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)
        json_object_set_new(c, "ignore_class", json_null());
    else
        json_object_update_new(c, json_pack("{s:f, s:i}", "label_smoothing", 0.0, "axis", -1));
    return keras3 ? k3_object("keras.losses", cls[cc->loss], c)
                  : json_pack("{s:s, s:o}", "class_name", cls[cc->loss], "config", c);
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
    static const char *const cls[] = {NULL, "SGD", "Adam", "RMSprop"};
    static const char *const name[] = {NULL, "SGD", "adam", "rmsprop"};
    json_t *c = json_pack("{s:s, s:o, s:n, s:o, s:o, s:n, s:b, s:f, s:n, s:n, s:n}", "name",
                          name[o->kind], "learning_rate", jreal(o->learning_rate), "weight_decay",
                          "clipnorm", clip_value(o->clipnorm), "global_clipnorm",
                          clip_value(o->global_clipnorm), "clipvalue", "use_ema", 0,
                          "ema_momentum", 0.99, "ema_overwrite_frequency", "loss_scale_factor",
                          "gradient_accumulation_steps");
    add_algorithm_arguments(c, o, true);
    return k3_object("keras.optimizers", cls[o->kind], c);
}

json_t *cnn_keras3_config(const cnn_model *m)
{
    json_t *layers = json_array();
    cnn_shape in = cnn_model_input_shape(m);
    json_array_append_new(layers, json_pack(
        "{s:s, s:s, s:{s:o, s:s, s:b, s:b, s:s, s:b}, s:n}", "module", "keras.layers",
        "class_name", "InputLayer", "config", "batch_shape", batch_shape(in), "dtype", "float32",
        "sparse", 0, "ragged", 0, "name", "input_layer", "optional", 0, "registered_name"));
    for (int i = 0; i < cnn_model_layer_count(m); i++) {
        cnn_layer_spec s;
        cnn_model_layer_spec(m, i, &s);
        json_t *l = k3_object("keras.layers", cnn_model_layer_type(m, i),
                              k3_layer_config(&s, cnn_model_layer_name(m, i)));
        if (k3_has_build_config(s.kind))
            json_object_set_new(l, "build_config",
                                json_pack("{s:o}", "input_shape", batch_shape(in)));
        json_array_append_new(layers, l);
        in = cnn_model_layer_output_shape(m, i);
    }
    json_t *root = json_pack(
        "{s:s, s:s, s:{s:s, s:b, s:o, s:o, s:o}, s:n, s:{s:o}}", "module", "keras",
        "class_name", "Sequential", "config", "name", "sequential", "trainable", 1, "dtype",
        k3_dtype(), "layers", layers, "build_input_shape", batch_shape(cnn_model_input_shape(m)),
        "registered_name", "build_config", "input_shape", batch_shape(cnn_model_input_shape(m)));
    cnn_compile_config cc;
    if (root && cnn_model_compile_config(m, &cc) == CNN_OK && loss_name(cc.loss))
        json_object_set_new(root, "compile_config", json_pack(
            "{s:o, s:o, s:n, s:[s], s:n, s:b, s:i, s:b}", "optimizer",
            k3_optimizer(&cc.optimizer), "loss", loss_json(&cc, true), "loss_weights", "metrics",
            "accuracy", "weighted_metrics", "run_eagerly", 0, "steps_per_execution", 1,
            "jit_compile", 0));
    return root;
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

/* Keras 2's config of a layer: Keras 3's without the dtype policy, with
 * Keras 2's initializer and regularizer objects and argument names. */
static json_t *k2_layer_config(const cnn_layer_spec *s, const char *name)
{
    json_t *c = k3_layer_config(s, name);
    json_object_del(c, "dtype");
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
    const struct {
        const char *key;
        float l2;
    } regs[] = {
        {"kernel_regularizer", s->kind == CNN_LAYER_CONV2D ? s->u.conv2d.kernel_l2
                                                           : s->u.dense.kernel_l2},
        {"depthwise_regularizer", s->kind == CNN_LAYER_SEPARABLE_CONV2D
                                      ? s->u.separable_conv2d.depthwise_l2
                                      : s->u.depthwise_conv2d.depthwise_l2},
        {"pointwise_regularizer", s->u.separable_conv2d.pointwise_l2},
    };
    for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++)
        if (json_object_get(c, regs[i].key))
            json_object_set_new(c, regs[i].key, k2_l2(regs[i].l2));
    /* tf.keras 2 knows silu as swish (Keras 3 reads both) */
    const json_t *act = json_object_get(c, "activation");
    if (json_is_string(act) && strcmp(json_string_value(act), "silu") == 0)
        json_object_set_new(c, "activation", json_string("swish"));
    if (s->kind == CNN_LAYER_LEAKY_RELU) { /* Keras 2 calls the slope alpha */
        json_object_set(c, "alpha", json_object_get(c, "negative_slope"));
        json_object_del(c, "negative_slope");
    }
    return c;
}

json_t *cnn_keras2_config(const cnn_model *m)
{
    json_t *layers = json_array();
    for (int i = 0; i < cnn_model_layer_count(m); i++) {
        cnn_layer_spec s;
        cnn_model_layer_spec(m, i, &s);
        json_t *c = k2_layer_config(&s, cnn_model_layer_name(m, i));
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
    if (cnn_model_compile_config(m, &cc) != CNN_OK || !loss_name(cc.loss))
        return NULL;
    const cnn_optimizer *o = &cc.optimizer;
    static const char *const cls[] = {NULL, "SGD", "Adam", "RMSprop"};
    json_t *c = json_pack("{s:o}", "learning_rate", jreal(o->learning_rate));
    add_algorithm_arguments(c, o, false);
    if (o->clipnorm > 0)
        json_object_set_new(c, "clipnorm", jreal(o->clipnorm));
    if (o->global_clipnorm > 0)
        json_object_set_new(c, "global_clipnorm", jreal(o->global_clipnorm));
    return json_pack("{s:{s:s, s:o}, s:o, s:[s], s:n, s:n, s:n}", "optimizer_config",
                     "class_name", cls[o->kind], "config", c, "loss", loss_json(&cc, false),
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
    memset(o, 0, sizeof *o);
    if (!strcasecmp(cls, "adam"))
        o->kind = CNN_OPTIMIZER_ADAM;
    else if (!strcasecmp(cls, "sgd"))
        o->kind = CNN_OPTIMIZER_SGD;
    else if (!strcasecmp(cls, "rmsprop"))
        o->kind = CNN_OPTIMIZER_RMSPROP;
    else
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
    static const struct {
        const char *name;
        cnn_loss loss;
    } names[] = {
        {"sparse_categorical_crossentropy", CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY},
        {"SparseCategoricalCrossentropy", CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY},
        {"categorical_crossentropy", CNN_LOSS_CATEGORICAL_CROSSENTROPY},
        {"CategoricalCrossentropy", CNN_LOSS_CATEGORICAL_CROSSENTROPY},
        {"binary_crossentropy", CNN_LOSS_BINARY_CROSSENTROPY},
        {"BinaryCrossentropy", CNN_LOSS_BINARY_CROSSENTROPY},
        {"mean_squared_error", CNN_LOSS_MSE},
        {"mse", CNN_LOSS_MSE},
        {"MeanSquaredError", CNN_LOSS_MSE},
    };
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
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].loss;
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
