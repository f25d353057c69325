/* The Sequential model's internals, shared by the files of src/model/. */
#ifndef CNN_MODEL_MODEL_H
#define CNN_MODEL_MODEL_H

#include "cnn.h"
#include "core/rng.h"
#include "core/threadpool.h"
#include "kernels/gemm.h"
#include "layers/layer.h"

/* Buffers for one batch size, allocated once and reused every step. */
typedef struct cnn_arena {
    int batch;          /* capacity in examples; 0 = not allocated */
    bool training;      /* every output kept (else two alternating buffers) */
    float *block;       /* the one allocation behind every view below */
    size_t floats;
    float **outputs;    /* per layer: (batch, out_shape) */
    void **saved;       /* per layer: forward-to-backward state or NULL */
    float *grad[2];     /* ping-pong gradients w.r.t. outputs, largest layer size */
    float *logits;      /* final layer's pre-activation when the loss fuses */
    float *workspace;   /* scratch shared by the layers */
    float *input;       /* a gathered input batch (fit/evaluate shuffling) */
    float *target;      /* a gathered target batch */
} cnn_arena;

struct cnn_model {
    cnn_shape input_shape;
    cnn_layer **layers;
    int n_layers, cap_layers;
    uint64_t seed;
    int threads;
    int64_t max_memory;   /* budget in bytes */
    int64_t tile_floats;  /* convolution workspace limit */
    cnn_pool *pool;
    cnn_gemm_ctx *gemm;

    /* Parameters: all values in one block, all gradients in another. */
    bool built;
    float *params, *grads;
    bool grads_zero;  /* the gradients are all zero (the optimizer step clears
                         them as it reads them, sparing a pass over memory) */
    int64_t n_params;

    /* compile */
    bool compiled;
    cnn_loss loss;
    cnn_optimizer opt;
    float *opt_m, *opt_v; /* optimizer slots (momentum/velocity, m/v) */
    int64_t opt_steps;
    /* Where training stands: epochs completed, steps done in the next one. */
    int train_epoch;
    int64_t train_step;

    cnn_arena arena;
    /* The last forward pass, for backward. */
    int last_batch;
    bool last_training;
    bool last_fused;
    bool last_kept; /* the last forward kept every output (backward possible) */
    const float *last_input;
};

/* Allocates and initialises the parameters (idempotent). */
cnn_status cnn_model_build(cnn_model *m);
/* Allocates the parameter gradients (training only; idempotent). */
cnn_status cnn_model_ensure_gradients(cnn_model *m);
/* Makes the arena hold at least batch examples, keeping every output for
 * backward if training. */
cnn_status cnn_model_reserve(cnn_model *m, int batch, bool training);
/* Fails with CNN_ERR_NO_MEMORY if a total of bytes exceeds the budget;
 * what names the allocation. */
cnn_status cnn_model_check_budget(const cnn_model *m, int64_t bytes, const char *what);
/* Forward over raw data of batch examples laid out as the input shape;
 * keep (for backward) keeps every layer's output. */
cnn_status cnn_model_forward_raw(cnn_model *m, const float *x, int batch, bool training,
                                 bool keep);
/* Loss of the last forward against targets; backward if grads wanted. */
cnn_status cnn_model_backward_raw(cnn_model *m, const float *target, double *loss_sum,
                                  double *correct_sum, bool backward, float *input_grad);
/* Whether layer i's output gradient is written over its output by layer
 * i + 1's backward (so it needs no gradient buffer; see backward_in_place). */
bool cnn_model_grad_over_output(const cnn_model *m, int i);
/* Output of the last forward: (batch, output shape). */
const float *cnn_model_output(const cnn_model *m);
/* Number of target floats per example for the compiled loss. */
int64_t cnn_model_target_size(const cnn_model *m);
/* Checks x (and y if given) against the model, naming expected and got. */
cnn_status cnn_model_check_data(const cnn_model *m, const cnn_tensor *x, const cnn_tensor *y,
                                const char *what);
/* The optimizer step over all trainable parameters (optimizer.c). */
cnn_status cnn_optimizer_init(cnn_model *m);
void cnn_optimizer_step(cnn_model *m);

#endif
