/* fit's pieces, shared by fit.c (prepare and finish), fit_epoch.c (the
 * epoch and step), fit_check.c (no silent NaN) and evaluate.c. Private to
 * src/model/: nothing here is in cnn.h. */
#ifndef CNN_MODEL_FIT_H
#define CNN_MODEL_FIT_H

#include "model/model.h"

/* A view of examples [start, start + count) of x and y. */
typedef struct {
    const float *x, *y;
    int64_t count;
    int64_t x_row, y_row; /* floats per example */
} data_view;

/* Everything one cnn_model_fit call knows, set once by fit_prepare except
 * the fields under "where training stands", which the loop updates. Every
 * buffer is allocated in fit_prepare: a step allocates nothing. */
typedef struct fit_state {
    cnn_model *m;
    cnn_fit_config cfg;     /* the caller's, with the defaults filled in */
    const cnn_parallel *par; /* cfg.parallel: data-parallel fit, else NULL */
    data_view train, val;   /* val.count == 0: no validation */
    int64_t steps;          /* optimizer steps per epoch */
    int batch;              /* the most examples one rank takes in a step */
    int64_t per_step;       /* examples per step over every rank */
    bool augment;
    uint64_t shuffle_seed, aug_seed;
    int64_t *order;         /* the epoch's shuffled example indices */
    float *scratch;         /* one image, for augmentation (else NULL) */
    float *bx, *by;         /* the gathered batch: the arena's input and target */
    cnn_fit_callbacks cb;
    cnn_history *h;
    /* the batches from elsewhere than x and y in memory (train.x and
     * train.y are then NULL): cnn_model_fit_dataset's stream; NULL for
     * cnn_model_fit */
    const struct fit_source *source;

    /* where training stands */
    int epoch;              /* 1-based, the one running */
    double lr;              /* the rate of the last update */
    double t0;              /* when the epoch began (progress's elapsed time) */
    double loss_sum, correct; /* over the epoch's steps so far */
    int64_t seen;           /* examples in those sums */
    bool keep_going;        /* the progress callback has not asked to stop */
    cnn_progress p;         /* the last report: the epoch end extends it */
} fit_state;

/* Batches from a source other than tensors in memory: the streaming data
 * sets of src/io/dataset_fit.c (cnn_model_fit_dataset), which the model
 * reaches only through these hooks (io feeds model). Per epoch, begin
 * (f->order holds the epoch's order) with the step it starts at, next for
 * each step (fewer rows than the step's when the source skipped bad
 * examples, maybe 0), end; validate after the epoch (NULL: none). */
typedef struct fit_source {
    void *ctx;
    cnn_status (*begin)(fit_state *f, int64_t first_step);
    cnn_status (*next)(fit_state *f, const float **x, const float **y, int *rows);
    void (*end)(fit_state *f);
    cnn_status (*validate)(fit_state *f, double *loss, double *accuracy);
} fit_source;

/* Prepare and finish for a source (fit.c): cnn_model_fit's checks, split
 * sizes (no validation_split), allocations and seeds over count examples
 * of x_row floats, then freeing them. */
cnn_status cnn_fit_prepare_source(fit_state *f, cnn_model *m, int64_t count, int64_t x_row,
                                  const fit_source *source, const cnn_fit_config *cfg);
cnn_status cnn_fit_finish(fit_state *f, cnn_status st, cnn_history **history_out);

/* One epoch (fit_epoch.c): shuffle, the steps from the resume position,
 * then validation, callbacks and the epoch-end report. *stop is set when a
 * callback (EarlyStopping) ends training. */
cnn_status cnn_fit_epoch(fit_state *f, int epoch, bool *stop);

/* The loss over a view (evaluate.c); with par, each rank evaluates its
 * share of the examples and the sums are added up over the ranks. */
cnn_status cnn_fit_evaluate_view(cnn_model *m, const data_view *all, int batch,
                                 const cnn_parallel *par, double *loss, double *accuracy);
/* batch_size 0 means 32; below 1 is an error naming what. */
cnn_status cnn_fit_check_batch_size(int *batch_size, const char *what);

/* No silent NaN (fit_check.c). x and y (y may be NULL) finite and sparse
 * labels integers in [0, classes), checked once before any step. */
cnn_status cnn_fit_check_data_values(const cnn_model *m, const cnn_tensor *x, const cnn_tensor *y,
                                     const char *what);
/* After backward, before the update: the loss and the gradients finite. */
cnn_status cnn_fit_check_step(const cnn_model *m, double loss, int epoch, int64_t step,
                              int64_t steps);
/* Before an epoch's end is reported (and checkpoints saved): the weights
 * finite. */
cnn_status cnn_fit_check_weights(const cnn_model *m, int epoch);

#endif
