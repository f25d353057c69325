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
    float **pre;        /* per layer in training: the pre-activation, for an
                           activation whose backward needs it, else NULL */
    float *grad[2];     /* ping-pong gradients w.r.t. outputs, largest layer size */
    float **grad_of;    /* per layer in training: its output's gradient (a
                           chain's ping-pong buffer, a graph's own place, or
                           the output itself when written over it) */
    float *scratch;     /* graphs: gradients added to another reader's */
    float *logits;      /* final layer's pre-activation when the loss fuses */
    float *workspace;   /* scratch shared by the layers */
    float *input;       /* a gathered input batch (fit/evaluate shuffling) */
    float *target;      /* a gathered target batch */
} cnn_arena;

struct cnn_model {
    cnn_shape input_shape;
    char input_name[CNN_LAYER_NAME_MAX]; /* Keras's InputLayer; "" = input_layer */
    bool functional;      /* built through the Functional API (inputs or the
                             input named), so written as Functional even
                             when a chain (MobileNet) */
    cnn_layer **layers;     /* in an order where every layer follows its inputs */
    int n_layers, cap_layers;
    /* cnn_model_set_next_inputs: what the next add reads (0 = the last layer) */
    int n_next_inputs;
    int next_inputs[CNN_MAX_LAYER_INPUTS];
    uint64_t seed;
    int threads;
    int64_t max_memory;   /* budget in bytes */
    int64_t tile_floats;  /* convolution workspace limit */
    cnn_pool *pool;
    cnn_gemm_ctx *gemm;
    cnn_dtype_policy dtype_policy; /* dtype_policy.c; products of Conv2D and Dense */

    /* Parameters: all values in one block, all gradients in another. */
    bool built;
    float *params, *grads;
    bool grads_zero;  /* the gradients are all zero (the optimizer step clears
                         them as it reads them, sparing a pass over memory) */
    int64_t n_params;

    /* compile */
    bool compiled;
    cnn_loss loss;
    bool from_logits;     /* the output is logits for the cross-entropy loss */
    cnn_optimizer opt;
    float *opt_m, *opt_v; /* optimizer slots (momentum/velocity, m/v) */
    int64_t opt_steps;
    /* Where training stands: epochs completed, steps done in the next one. */
    int train_epoch;
    int64_t train_step;
    /* Data-parallel fit: this process's rank (0 otherwise), mixed into the
     * step random layers draw from, so each rank draws its own masks. */
    int64_t stream;

    /* Class names (class_names.c): n_class_names views into one block. */
    char *class_name_block;
    const char **class_names;
    int n_class_names;

    cnn_arena arena;
    /* bench_cnn profile: when not NULL, each layer's forward (element 2 i)
     * and backward (2 i + 1) add their seconds here (cnn_model_seconds),
     * activation included */
    double *layer_seconds;
    /* The last forward pass, for backward. */
    int last_batch;
    bool last_training;
    bool last_fused;
    bool last_kept; /* the last forward kept every output (backward possible) */
    const float *last_input;
};

/* cnn_model_set_class_names for names of the given lengths (not
 * NUL-terminated: the model file's), validated alike. */
cnn_status cnn_model_set_class_names_sized(cnn_model *m, const char *const *names,
                                           const size_t *lengths, int count);
void cnn_model_clear_class_names(cnn_model *m);
/* Adds a layer reading n_inputs outputs (layer indices, -1 = the model's
 * input) instead of the last layer's; n_inputs 0 = the chain's. */
cnn_status cnn_model_add_reading(cnn_model *m, const cnn_layer_spec *spec, int n_inputs,
                                 const int *inputs);
/* A graph, or a chain built as a Functional model: summary, the Keras
 * writers and the model file show it as Functional. */
bool cnn_model_is_functional(const cnn_model *m);
/* The layer index of a name, -1 for the model's input, -2 if none. */
int cnn_model_find_layer(const cnn_model *m, const char *name);
/* Frees the activation arena (it is planned again at the next pass). */
void cnn_model_release_arena(cnn_model *m);
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
/* Output of the last forward: (batch, output shape). */
const float *cnn_model_output(const cnn_model *m);
/* Number of target floats per example for the compiled loss. */
int64_t cnn_model_target_size(const cnn_model *m);
/* Checks x (and y if given) against the model, naming expected and got. */
cnn_status cnn_model_check_data(const cnn_model *m, const cnn_tensor *x, const cnn_tensor *y,
                                const char *what);
/* The optimizer step over all trainable parameters (optimizer.c). */
cnn_status cnn_optimizer_init(cnn_model *m);
/* At learning rate lr (0 = the optimizer's own, fit passes its schedule's):
 * adds the L2 penalties' gradients and clips (in place), then updates. */
void cnn_optimizer_step(cnn_model *m, float lr);
/* The L2 penalties at the current weights: sum of l2 * sum(w^2). */
double cnn_model_penalty(const cnn_model *m);

/* fit's callbacks (callbacks.c): their state over one fit call. */
typedef struct cnn_fit_callbacks {
    cnn_callbacks c;        /* defaults filled in */
    int epochs_seen;
    double es_best, ckpt_best, lr_best; /* monitored values, lower is better */
    int es_wait, es_best_epoch, lr_wait, lr_cooldown;
    float *best_weights;    /* EarlyStopping restore_best_weights: a copy of params */
    int stopped_epoch, restored_epoch;
    /* ModelCheckpoint at the last epoch end: what it did, the monitored
     * value and the best before it (for cnn_progress) */
    cnn_checkpoint_event ckpt_event;
    double ckpt_value, ckpt_previous;
} cnn_fit_callbacks;
/* Checks the callbacks and schedule of cfg and sets up their state. */
cnn_status cnn_fit_callbacks_begin(cnn_model *m, const cnn_fit_config *cfg, bool has_validation,
                                   cnn_fit_callbacks *cb);
/* After epoch (1-based) with logs indexed by cnn_monitor: may lower the
 * learning rate, ask to stop (restoring the best weights) and save. */
cnn_status cnn_fit_callbacks_epoch_end(cnn_fit_callbacks *cb, cnn_model *m, int epoch,
                                       const double logs[4], bool *stop);
void cnn_fit_callbacks_end(cnn_fit_callbacks *cb);
/* Fills p's checkpoint fields from the last epoch end. */
void cnn_fit_callbacks_report(const cnn_fit_callbacks *cb, cnn_progress *p);

/* Augments a gathered batch of count images (augment.c): image i's
 * transformation depends only on (seed, epoch, step, i). scratch holds
 * one image. */
void cnn_augment_batch(const cnn_augmentation *a, uint64_t seed, int epoch, int64_t step,
                       float *images, int count, cnn_shape shape, float *scratch);
/* The same for images first, first + 1, ... of the step's batch (a
 * data-parallel rank's share): they are transformed as there. */
void cnn_augment_batch_from(const cnn_augmentation *a, uint64_t seed, int epoch, int64_t step,
                            int64_t first, float *images, int count, cnn_shape shape,
                            float *scratch);

/* Data-parallel fit (parallel.c; see cnn_parallel in cnn.h). Every
 * function but share is collective: every rank calls it in turn. */
/* Checks the hooks; the examples per step over every rank (batch_size
 * each, at most count) and the most one rank takes (*batch). */
cnn_status cnn_parallel_batch(const cnn_parallel *par, int batch_size, int64_t count,
                              int *batch, int64_t *per_step);
/* Checks that every rank's cfg and settings (data sizes, seeds) are rank
 * 0's; every rank takes rank 0's weights and optimizer state. */
cnn_status cnn_parallel_begin(cnn_model *m, const cnn_parallel *par, const cnn_fit_config *cfg,
                              const uint64_t *settings, int n_settings);
void cnn_parallel_end(cnn_model *m);
/* This rank's rows [*first, *first + *rows) of count examples split over
 * the ranks: the first count % size ranks take one more. */
void cnn_parallel_share(const cnn_parallel *par, int64_t count, int64_t *first, int64_t *rows);
/* After backward over rows of a step's count examples: the gradients
 * (means over rows) become the means over all count examples, and the sums
 * *loss and *correct are summed over the ranks. */
cnn_status cnn_parallel_reduce_step(cnn_model *m, const cnn_parallel *par, int64_t rows,
                                    int64_t count, double *loss, double *correct);
/* values[0..n) summed over the ranks. */
cnn_status cnn_parallel_sum(const cnn_parallel *par, double *values, int n);
/* *go stays true only if it is true on every rank. */
cnn_status cnn_parallel_agree(const cnn_parallel *par, bool *go);
/* At the end of an epoch: the non-trainable weights averaged over the
 * ranks, then every rank's weights checked equal (CNN_ERR_STATE if not). */
cnn_status cnn_parallel_sync(cnn_model *m, const cnn_parallel *par, int epoch);

/* The monotonic clock in seconds (run.c): fit's elapsed time, the
 * per-layer timers. */
double cnn_model_seconds(void);

#endif
