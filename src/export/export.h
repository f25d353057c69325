/* Export to dependency-free C (cnn_model_export_c): what the files of
 * src/export/ share. export.c checks the name and paths, plans and writes;
 * export_float.c turns the layers into calls of the kernels whose text
 * runtime.c holds; text.c is the growing buffer they print into. */
#ifndef CNN_EXPORT_EXPORT_H
#define CNN_EXPORT_EXPORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cnn.h"
#include "model/model.h"
#include "quant/qmodel.h"

/* A growing text; an allocation failure sets failed and later prints do
 * nothing, so callers check once at the end. */
typedef struct export_text {
    char *data;
    size_t len, cap;
    bool failed;
} export_text;

void export_printf(export_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void export_puts(export_text *t, const char *s);
void export_text_free(export_text *t);
/* A float as a C literal that reads back to the same bits ("1.0f",
 * "-2.5e-07f"); the value must be finite. */
void export_float(export_text *t, float v);
/* static const float NAME[n] = {...}; eight values a line */
void export_float_array(export_text *t, const char *name, const float *v, int64_t n);
/* static const int8_t NAME[n] = {...}; sixteen values a line */
void export_int8_array(export_text *t, const char *name, const int8_t *v, int64_t n);
/* A shape as Python writes a tuple: "(28, 28, 1)", "(10,)". */
void export_shape_text(cnn_shape s, char *buf, size_t size);

/* Runtime pieces (runtime.c) a model needs. */
enum {
    EXPORT_NEED_EXP = 1u << 0,
    EXPORT_NEED_ACT = 1u << 1,
    EXPORT_NEED_CONV = 1u << 2,
    EXPORT_NEED_DEPTHWISE = 1u << 3,
    EXPORT_NEED_DENSE = 1u << 4,
    EXPORT_NEED_POOL = 1u << 5,
    EXPORT_NEED_GLOBAL_POOL = 1u << 6,
    EXPORT_NEED_AFFINE = 1u << 7,
    EXPORT_NEED_COPY = 1u << 8,
    EXPORT_NEED_RELU = 1u << 9,
    EXPORT_NEED_MERGE = 1u << 10,
    EXPORT_NEED_CONCAT = 1u << 11,
    EXPORT_NEED_WINDOW = 1u << 12,
    EXPORT_NEED_UPSAMPLE = 1u << 13,
    EXPORT_NEED_MERGE_B = 1u << 14
};
void export_emit_runtime(export_text *t, unsigned need);

/* The float model as C (export_float.c): the layers are checked first
 * (CNN_ERR_INVALID_ARGUMENT naming the first layer that cannot be exported and
 * its kind), then weights go to *weights, the body of
 * NAME_predict_with_arena to *body, and *need says which kernels they
 * call. offsets: each layer's output in the arena (floats, from the
 * memory planner). */
cnn_status export_float_check(const cnn_model *m);
cnn_status export_float_layers(const cnn_model *m, const size_t *offsets, export_text *weights,
                               export_text *body, unsigned *need);

/* The int8 model's ops (export_int8.c), a chain or a graph: the integer
 * kernels they call and their weights (and tables) go to *weights, the
 * body of the static run(arena) to *body, each op reading and writing
 * "arena + offset" at the quantizer's own plan (cnn_qmodel_value(q,
 * v)->offset; the arena is cnn_qmodel_arena_bytes). */
/* CNN_ERR_INVALID_ARGUMENT naming the first op the int8 exporter cannot run. */
cnn_status export_int8_check(const cnn_qmodel *q);
cnn_status export_int8_ops(cnn_qmodel *q, export_text *weights, export_text *body,
                           int64_t *weight_bytes);

#endif
