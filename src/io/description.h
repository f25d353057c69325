/* Model descriptions (internal): what the text reader
 * (description_text.c) and the Keras JSON reader (description_json.c)
 * share. The public entry points are in description.c.
 *
 * A description names layers by their Keras class names and sets their
 * config fields by their Keras argument names: both come from the kind's
 * own file (its cnn_layer_ops: type_name, class_alias and the field table,
 * see layers/layer.h), in Keras's positional order. Both readers turn their
 * own syntax into a cnn_desc_value, and cnn_desc_store writes it into the
 * spec, so a new layer kind needs nothing here. */
#ifndef CNN_IO_DESCRIPTION_H
#define CNN_IO_DESCRIPTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cnn.h"
#include "layers/layer.h"

/* The most fields a kind may have (the readers keep one slot per field;
 * tests/test_layer_golden.c checks every kind against it). */
#define CNN_DESC_MAX_ARGS 12

/* One parsed argument value; which members are set depends on the type. */
typedef struct cnn_desc_value {
    int ints[4];         /* COUNT: ints[0]; PAIR: (h, w); SHAPE, TARGET_SHAPE: n_ints
                            dims; PADDING4: top, bottom, left, right */
    int n_ints;
    double real;         /* RATE, REAL, POSITIVE, NONNEGATIVE, L2 */
    uint64_t seed;       /* SEED */
    bool flag;           /* USE_BIAS; OPT_PAIR: set (then ints[0..1]) */
    int choice;          /* PADDING, ACTIVATION, CHOICE: the enum value */
    const char *text;    /* NAME: NUL-terminated, must outlive cnn_model_add */
} cnn_desc_value;

/* The input pseudo-layer: "input shape=H,W,C" (kind 0, one SHAPE field). */
extern const cnn_layer_ops cnn_desc_input;

/* A Keras class name (or alias such as MaxPool2D) to its kind; 0 if the
 * library has no such layer. */
cnn_layer_kind cnn_desc_kind_from_name(const char *name, size_t len);
/* The ops (name and fields) of a kind, NULL if descriptions cannot express it. */
const cnn_layer_ops *cnn_desc_kind_find(cnn_layer_kind kind);
/* "Conv2D, Dense, MaxPooling2D (MaxPool2D), ..." - every class name
 * descriptions accept, written into buf (which is returned). */
const char *cnn_desc_layer_names(char *buf, size_t size);
/* The closest layer class name to a misspelt one, NULL if none is close. */
const char *cnn_desc_suggest_layer(const char *word, size_t len);

/* Index of an argument of a kind, -1 if it has none of that name. */
int cnn_desc_arg_find(const cnn_layer_ops *k, const char *key, size_t len);
/* The closest argument name of a kind, NULL if none is close. */
const char *cnn_desc_suggest_key(const cnn_layer_ops *k, const char *key, size_t len);
/* "filters, kernel_size, ..." into buf. */
void cnn_desc_keys(const cnn_layer_ops *k, char *buf, size_t size);

/* Checks a real for a REAL, POSITIVE, NONNEGATIVE, L2 or RATE argument:
 * NULL if it fits, else what is wrong ("must be > 0"). */
const char *cnn_desc_real_problem(cnn_field_type type, double v);
/* PADDING4 from n ints (1, 2 or 4), each >= 0 and not all 0 unless
 * zero_ok (CROPPING4) (checked): fills v->ints; NULL if fine, else what
 * was expected. */
const char *cnn_desc_padding4(cnn_desc_value *v, const int *ints, int n, bool zero_ok);
/* TARGET_SHAPE from n ints (1 or 3), each >= 1 or one -1: NULL if fine. */
const char *cnn_desc_target_shape(cnn_desc_value *v, const int *ints, int n);

/* Enum value of a padding name (case-insensitive), -1 if unknown.
 * Activation names come from the library's one table
 * (cnn_activation_lookup in kernels/activation.h). */
int cnn_desc_padding_from_name(const char *s, size_t len);
/* The closest activation name to a misspelt one ("rleu"), NULL if none. */
const char *cnn_desc_suggest_activation(const char *word, size_t len);

/* Writes a value into the spec field the argument names. */
void cnn_desc_store(cnn_layer_spec *spec, const cnn_layer_field *arg, const cnn_desc_value *v);
/* The shape of a parsed SHAPE value. */
cnn_shape cnn_desc_shape(const cnn_desc_value *v);

/* cnn_model_add / cnn_model_create, with a caller's bad value reported as a
 * malformed description (CNN_ERR_FORMAT); shape errors stay CNN_ERR_SHAPE.
 * The caller adds the location with cnn_error_prefix. */
cnn_status cnn_desc_add(cnn_model *m, const cnn_layer_spec *spec);
cnn_status cnn_desc_create(cnn_model **out, cnn_shape shape);

/* The two readers. text is NUL-terminated at text[size] (it may contain no
 * other NUL); name is used in messages. */
cnn_status cnn_desc_parse_text(const char *text, size_t size, const char *name, cnn_model **out);
cnn_status cnn_desc_parse_json(const char *text, size_t size, const char *name, cnn_model **out);

#endif
