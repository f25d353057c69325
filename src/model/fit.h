/* fit's pieces, shared by fit.c (prepare and finish), fit_epoch.c (the
 * epoch and step), fit_check.c (no silent NaN) and evaluate.c. Private to
 * src/model/: nothing here is in cnn.h. */
#ifndef CNN_MODEL_FIT_H
#define CNN_MODEL_FIT_H

#include "io/dataset.h"
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
    /* cnn_model_fit_dataset (fit_dataset.c): the batches come from the
     * training data set's stream (train.x and train.y are then NULL) and
     * validation from val_ds; NULL for cnn_model_fit */
    cnn_dataset *train_ds, *val_ds;
    cnn_dataset_stream_config stream; /* queue and decode bounds, per epoch */

    /* where training stands */
    int epoch;              /* 1-based, the one running */
    double lr;              /* the rate of the last update */
    double t0;              /* when the epoch began (progress's elapsed time) */
    double loss_sum, correct; /* over the epoch's steps so far */
    int64_t seen;           /* examples in those sums */
    bool keep_going;        /* the progress callback has not asked to stop */
    cnn_progress p;         /* the last report: the epoch end extends it */
} fit_state;

/* cnn_model_fit_dataset's prepare and finish (fit.c): cnn_model_fit's
 * checks, split sizes, allocations and seeds over the training data set's
 * examples (without validation_split; val may be NULL), then freeing them. */
cnn_status cnn_fit_prepare_dataset(fit_state *f, cnn_model *m, cnn_dataset *train,
                                   cnn_dataset *val, const cnn_fit_config *cfg);
cnn_status cnn_fit_finish(fit_state *f, cnn_status st, cnn_history **history_out);
/* The mean loss and accuracy over a data set, streamed (fit_dataset.c);
 * in_fit: fit's validation, while the training buffers are held (the
 * budget counts them). */
cnn_status cnn_fit_evaluate_dataset(cnn_model *m, cnn_dataset *ds, int batch, bool in_fit,
                                    double *loss, double *accuracy);
/* Applied by the decode threads to each training example (fit_dataset.c):
 * fit's augmentation of row `row` of step `batch`; user is the fit_state. */
void cnn_fit_augment_example(void *user, float *x, int64_t batch, int row, float *scratch);

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
