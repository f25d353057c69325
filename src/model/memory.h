/* How the activation arena is laid out for a batch size: the one place
 * that sizes it, used both to allocate and to estimate. All sizes in floats. */
#ifndef CNN_MODEL_MEMORY_H
#define CNN_MODEL_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

typedef struct cnn_arena_plan {
    size_t outputs;    /* training: every output (+ saved state); inference: A + B */
    size_t buffer[2];  /* the largest output of the even and of the odd layers:
                          inference's two output buffers, and training's two
                          gradient buffers (layer i's output gradient lives in
                          buffer i % 2 while it writes its input's in the other) */
    size_t grads;      /* training: buffer[0] + buffer[1] */
    size_t scratch;    /* graphs in training: gradients to add to another reader's */
    size_t logits, workspace, input, target;
    size_t total;
    bool overflow;     /* total does not fit: at least CNN_PLAN_MAX_FLOATS */
} cnn_arena_plan;

/* Where plan sizes saturate (in floats): their bytes fit in an int64_t
 * and in a size_t. */
#define CNN_PLAN_MAX_FLOATS                                                                    \
    ((size_t)((uint64_t)INT64_MAX < (uint64_t)SIZE_MAX ? (uint64_t)INT64_MAX : (uint64_t)SIZE_MAX) \
     / sizeof(float))

/* Fails only if a graph's plan cannot get its bit of memory. */
cnn_status cnn_arena_plan_make(const cnn_model *m, int batch, bool training, cnn_arena_plan *p);
/* Whether layer i's output gradient is written over its output by layer
 * i + 1's backward (so it needs no gradient buffer; see backward_in_place). */
bool cnn_model_grad_over_output(const cnn_model *m, int i);

/* Graphs (graph_plan.c). The last layer reading layer p's output (p if
 * none), and how many readings there are. */
int cnn_model_last_reader(const cnn_model *m, int p);
int cnn_model_reader_count(const cnn_model *m, int p);
/* The last layer reading the model's input, -1 if none. */
int cnn_model_last_reader_of_input(const cnn_model *m);
/* Whether input k of layer i is the first gradient backward writes for
 * what it reads (so it overwrites; later ones add). */
bool cnn_model_first_gradient(const cnn_model *m, int i, int k);
/* Offsets (floats) of each layer's output (inference) or output gradient
 * (training; SIZE_MAX when written over the output) in a region of *total
 * floats, and the scratch backward needs. offsets may be NULL. */
cnn_status cnn_graph_plan(const cnn_model *m, int batch, bool training, size_t *offsets,
                          size_t *total, size_t *scratch);

#endif
