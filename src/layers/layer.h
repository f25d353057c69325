/* The one small interface every layer kind implements.
 *
 * A layer kind is a file in src/layers/ that defines a cnn_layer_ops table
 * (ops, Keras class name, its config fields and Keras keys) and a create
 * function, plus one line in src/layers/registry.c and its declarations in
 * cnn.h (config struct and macro, enum value, union member, add prototype
 * and its line in CNN_LAYER_ADD_LIST, from which model.c defines it);
 * docs/ARCHITECTURE.md has the checklist, tests and docs included.
 * Everything else - the model file, the description readers, the Keras
 * writers, layer names and L2 penalties - loops over the field tables, so
 * nothing outside src/layers/ switches on the kind. A layer keeps its
 * configuration as a cnn_layer_spec (defaults filled in); derived state
 * lives in the kind's own struct whose first member is cnn_layer.
 *
 * Memory: the model owns every buffer. Parameters and their gradients are
 * views into the model's two parameter blocks; outputs, gradients and
 * scratch are views into its activation arena, sized once per batch size. */
#ifndef CNN_LAYERS_LAYER_H
#define CNN_LAYERS_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "cnn.h"
#include "core/rng.h"
#include "core/threadpool.h"
#include "kernels/gemm.h"

#define CNN_LAYER_MAX_PARAMS CNN_MAX_LAYER_WEIGHTS
#define CNN_LAYER_NAME_MAX 64

typedef struct cnn_param {
    const char *name;            /* "kernel", "bias" */
    int rank;
    int64_t dims[CNN_MAX_RANK];  /* Keras layout */
    int64_t count;
    bool trainable;
    float l2;                    /* L2 penalty l2 * sum(value^2) (kernel_regularizer) */
    float *value, *grad;         /* views set by the model */
} cnn_param;

/* What a forward or backward call works on. Shapes: x (batch, in_shape),
 * y and dy (batch, out_shape). */
typedef struct cnn_layer_io {
    int batch;
    bool training;
    int64_t step;      /* optimizer steps taken so far: random layers draw from
                          (seed, step), so a resumed run repeats the same masks */
    const float *x;
    float *y;
    float *dy;         /* backward: gradient w.r.t. the output; the model has
                          applied the activation's derivative unless
                          fuse_activation (then the layer does, in place) */
    bool dx_over_x;    /* backward: dx is x's own buffer (see backward_in_place) */
    cnn_activation x_activation; /* the activation that produced x */
    bool fuse_activation; /* the layer applies l->activation (elementwise) to y
                             in forward and its derivative to dy in backward,
                             tile by tile while the data is in cache */
    float *dx;         /* backward: overwritten with dLoss/dx; NULL = not needed */
    bool grads_zero;   /* backward: the weight gradients hold zeros (nothing has been
                          added since they were cleared), so a layer may overwrite
                          them instead of adding to them: Dense's 3136 x 1024 kernel
                          gradient is then written without being read */
    /* Merge kinds (ops->max_inputs > 1): their n_inputs inputs and the
     * gradients to overwrite (an entry NULL = not needed); x and dx are
     * entry 0. */
    int n_inputs;
    const float *const *xs;
    float *const *dxs;
    float *workspace;  /* scratch of ops->workspace_floats(layer, batch, tile_floats) */
    int64_t tile_floats; /* the model's workspace limit, in floats */
    void *saved;       /* ops->saved_bytes(layer, batch) kept from forward to backward */
    cnn_pool *pool;
    cnn_gemm_ctx *gemm;
    bool bf16;         /* mixed_bfloat16: Conv2D and Dense products in bfloat16 */
} cnn_layer_io;

/* The products of a layer that follows the dtype policy (Conv2D, Dense). */
static inline void cnn_layer_gemm(const cnn_layer_io *io, bool trans_a, bool trans_b, int M,
                                  int N, int K, const float *A, int lda, const float *B, int ldb,
                                  float beta, float *C, int ldc)
{
    if (io->bf16)
        cnn_gemm_bf16(io->gemm, trans_a, trans_b, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
    else
        cnn_gemm(io->gemm, trans_a, trans_b, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

typedef struct cnn_layer cnn_layer;

/* ---- A kind's configuration fields ------------------------------------------
 *
 * Every kind lists its config fields in one table, in Keras's positional
 * order, which is also the order of the kind's record in the model file
 * (docs/MODEL_FILE.md). The type says how each serializer spells a value:
 *
 *   type          description / Keras JSON           .cnn record
 *   COUNT         integer >= 1                       i32
 *   PAIR          n or (h, w), each >= 1             2 x i32
 *   PADDING       valid | same                       u32 (cnn_padding)
 *   ACTIVATION    a name (cnn_activation_name)       u32 (cnn_activation)
 *   USE_BIAS      true | false (stored as no_bias)   u8 no_bias, 0 or 1
 *   RATE          real in [0, 1)                     f32
 *   SEED          integer >= 0; 0 = None/null        u64
 *   REAL          finite real                        f32
 *   POSITIVE      real > 0; 0 = None/null (no value) f32
 *   NONNEGATIVE   real >= 0                          f32
 *   L2            l2(x), x >= 0; 0 = no regularizer  f32 (or in the extensions)
 *   PADDING4      n, (rows, cols), ((t, b), (l, r))  4 x i32 top, bottom, left, right
 *   TARGET_SHAPE  (rows, cols, channels) or (n)      u32 rank + 3 x i32 (unused 0)
 *   CROPPING4     as PADDING4, all 0 allowed           4 x i32 top, bottom, left, right
 *   OPT_PAIR      None, n or (h, w), each >= 0         u8 set + 2 x i32 (cnn_opt_pair)
 *   CHOICE        one of the field's choices (words)   u32 (index in choices)
 *   AXIS          an axis, Keras's count (-1 = last) i32
 *   NAME          the layer's name                   (the record's header)
 *   SHAPE         the input shape (descriptions' input line only)
 *
 * Generic code (model file, description readers, Keras writers, the
 * model's name and penalty handling) loops over these tables; nothing
 * outside src/layers/ switches on the kind. */
typedef enum cnn_field_type {
    CNN_FIELD_COUNT,
    CNN_FIELD_PAIR,
    CNN_FIELD_PADDING,
    CNN_FIELD_ACTIVATION,
    CNN_FIELD_USE_BIAS,
    CNN_FIELD_RATE,
    CNN_FIELD_SEED,
    CNN_FIELD_NAME,
    CNN_FIELD_SHAPE,
    CNN_FIELD_REAL,
    CNN_FIELD_POSITIVE,
    CNN_FIELD_NONNEGATIVE,
    CNN_FIELD_L2,
    CNN_FIELD_PADDING4,
    CNN_FIELD_TARGET_SHAPE,
    CNN_FIELD_CROPPING4,
    CNN_FIELD_OPT_PAIR,
    CNN_FIELD_CHOICE,
    CNN_FIELD_AXIS
} cnn_field_type;

enum {
    CNN_FIELD_REQUIRED = 1u,   /* a description must give it */
    CNN_FIELD_POSITIONAL = 2u, /* a description may give it without key= */
    CNN_FIELD_ALIAS = 4u,      /* another Keras name for the field at the same
                                  offset: read, never written */
    CNN_FIELD_KERAS2 = 8u,     /* with ALIAS: the name Keras 2 writes */
    CNN_FIELD_EXTENSION = 16u  /* .cnn: kept in the extensions section, not in
                                  the layer record (added after the record's
                                  layout was fixed) */
};

typedef struct cnn_layer_field {
    const char *key;     /* the Keras argument name */
    cnn_field_type type;
    size_t offset;       /* of the field in cnn_layer_spec (CNN_SPEC_FIELD) */
    unsigned flags;      /* CNN_FIELD_REQUIRED | ... */
    int weight;          /* L2: the weight the penalty is on */
} cnn_layer_field;

#define CNN_SPEC_FIELD(member) offsetof(cnn_layer_spec, u.member)
/* .fields and .n_fields of an ops table from a static array. */
#define CNN_LAYER_FIELDS(array) \
    .fields = (array), .n_fields = (int)(sizeof(array) / sizeof((array)[0]))

/* A kind's creator: validates the spec's values (naming the layer in
 * errors), fills defaults, allocates. Shapes are checked later by infer. */
typedef cnn_status (*cnn_layer_create_fn)(cnn_layer **out, const cnn_layer_spec *spec,
                                          const char *name);

typedef struct cnn_layer_ops {
    cnn_layer_kind kind;
    cnn_layer_create_fn create;
    const char *type_name;  /* Keras class name: "Conv2D" */
    const char *auto_name;  /* Keras auto-name stem: "conv2d" */
    /* Sets l->out and the parameter shapes for input shape in, or fails with
     * a message naming the layer. */
    cnn_status (*infer)(cnn_layer *l, cnn_shape in);
    /* Merge kinds: how many inputs they take (0 = exactly 1, the others),
     * and infer over every input's shape, with errors naming them. */
    int min_inputs, max_inputs;
    cnn_status (*infer_inputs)(cnn_layer *l, const cnn_shape *in, int n);
    /* Fills parameters (glorot_uniform kernels, zero biases). NULL = none. */
    void (*init)(cnn_layer *l, cnn_rng *rng);
    /* Scratch floats needed for a batch (shared by all layers), aiming to
     * stay within tile_floats. NULL = 0. */
    size_t (*workspace_floats)(const cnn_layer *l, int batch, int64_t tile_floats);
    /* Forward floating-point operations per example (2 per multiply-add). NULL = 0. */
    int64_t (*flops)(const cnn_layer *l);
    /* Bytes kept from forward to backward (e.g. a dropout mask). NULL = 0. */
    size_t (*saved_bytes)(const cnn_layer *l, int batch);
    /* Whether backward can write dx over x (the previous layer's output,
     * which nothing needs afterwards), folding in the derivative of
     * io->x_activation, an elementwise activation, so the previous layer's
     * output gradient needs no buffer of its own. NULL = never. */
    bool (*backward_in_place)(const cnn_layer *l);
    /* Whether forward/backward honour io->fuse_activation. */
    bool can_fuse_activation;
    /* Keras 3: frozen (trainable=False), the layer runs in inference mode
     * also while the model trains (BatchNormalization: the moving
     * statistics, left unchanged). */
    bool frozen_infers;
    /* y = layer(x), with the activation only if io->fuse_activation. */
    void (*forward)(cnn_layer *l, const cnn_layer_io *io);
    /* Accumulates (+=) parameter gradients and writes dx if non-NULL. */
    void (*backward)(cnn_layer *l, const cnn_layer_io *io);

    /* The config fields (see cnn_layer_field), set with CNN_LAYER_FIELDS. */
    const cnn_layer_field *fields;
    int n_fields;
    const char *class_alias; /* another Keras class name (MaxPool2D), or NULL */
    /* The keys of the Keras 3 config after name, trainable and dtype, in
     * Keras's order, separated by spaces: a field's key gives its value,
     * any other key Keras's fixed value for it (data_format channels_last,
     * initializers, null regularizers and constraints, ...). */
    const char *keras_keys;
    bool keras_build_config; /* Keras 3 records the input shape (the layer builds) */
    /* The kind's CHOICE field (at most one): the names of its values 0, 1,
     * ... separated by spaces ("nearest bilinear"). */
    const char *choices;
} cnn_layer_ops;

/* CHOICE: the index of the word s[0..len) among ops->choices (exact case),
 * -1 if none; and the name of index i (into buf), NULL if out of range. */
int cnn_layer_choice_index(const cnn_layer_ops *ops, const char *s, size_t len);
const char *cnn_layer_choice_name(const cnn_layer_ops *ops, int i, char *buf, size_t size);

/* The field of a kind's table with this type (the first that is not an
 * alias), NULL if none. */
const cnn_layer_field *cnn_layer_field_of_type(const cnn_layer_ops *ops, cnn_field_type type);

struct cnn_layer {
    const cnn_layer_ops *ops;
    char name[CNN_LAYER_NAME_MAX];
    cnn_layer_spec spec;        /* configuration, defaults filled in */
    cnn_shape in, out;          /* in: the first input's shape */
    /* What the layer reads: n_inputs layer indices of the model, -1 for
     * the model's input (set by the model; a chain reads index - 1). */
    int n_inputs;
    int inputs[CNN_MAX_LAYER_INPUTS];
    cnn_shape ins[CNN_MAX_LAYER_INPUTS];
    cnn_activation activation;  /* applied by the model after forward */
    int n_params;
    cnn_param params[CNN_LAYER_MAX_PARAMS];
    uint64_t seed;              /* per-layer random stream (dropout), set by init */
    bool auto_named;            /* named by the model (counts for Keras suffixes) */
    bool frozen;                /* trainable=False: its weights are not trained */
};

/* Allocates a layer of the given struct size (first member cnn_layer),
 * zeroed, with ops and name set. */
cnn_status cnn_layer_alloc(cnn_layer **out, size_t size, const cnn_layer_ops *ops,
                           const char *name);
/* Sets parameter i's shape; count is computed. */
void cnn_layer_set_param(cnn_layer *l, int i, const char *name, int rank, const int64_t *dims,
                         bool trainable);
/* Uniform(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)). */
void cnn_glorot_uniform(float *w, int64_t count, int64_t fan_in, int64_t fan_out, cnn_rng *rng);

/* The registry (registry.c): the ops of a kind, NULL for an unknown kind. */
const cnn_layer_ops *cnn_layer_kind_find(cnn_layer_kind kind);
/* The i-th registry row, in registry order; NULL past the end. */
const cnn_layer_ops *cnn_layer_kind_at(size_t i);

/* Checks an L2 factor from a spec (finite, >= 0), naming the layer and field. */
cnn_status cnn_layer_check_l2(const char *layer, const char *type, const char *field, float l2);

#endif
