/*
 * cnn.h - Keras-style convolutional neural networks in plain C11.
 *
 * A tour (the whole of a training program):
 *
 *   #include <cnn.h>
 *
 *   cnn_tensor *x = NULL, *y = NULL;
 *   cnn_dataset_load_idx("train-images-idx3-ubyte.gz", &x);   // (60000, 28, 28)
 *   cnn_dataset_load_idx("train-labels-idx1-ubyte.gz", &y);   // (60000)
 *   cnn_tensor_scale(x, 1.0f / 255.0f);                       // pixels to [0, 1]
 *   cnn_tensor_expand_dims(x);                                // (60000, 28, 28, 1)
 *
 *   cnn_model *m = NULL;
 *   cnn_model_create(&m, cnn_shape_hwc(28, 28, 1));
 *   cnn_model_add_conv2d(m, cnn_conv2d(.filters = 32, .kernel_size = {5, 5},
 *                                      .padding = CNN_PADDING_SAME,
 *                                      .activation = CNN_ACTIVATION_RELU));
 *   cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2}));
 *   cnn_model_add_flatten(m, cnn_flatten());
 *   cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SOFTMAX));
 *   cnn_model_print_summary(m, stdout);
 *
 *   cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
 *                                    .optimizer = cnn_adam()));
 *   cnn_history *h = NULL;
 *   cnn_model_fit(m, x, y, cnn_fit(.epochs = 5, .batch_size = 64,
 *                                  .validation_split = 0.1f,
 *                                  .progress = cnn_progress_console,
 *                                  .progress_user = stdout), &h);
 *   cnn_history_free(h);
 *   cnn_model_free(m);
 *
 * Conventions:
 * - Every function that can fail returns a cnn_status; CNN_OK is 0. On failure
 *   cnn_last_error() gives a sentence naming the file, field or layer and what
 *   was expected. The library never prints on its own and never exits.
 * - Objects come in create/free pairs; every *_free accepts NULL. Output
 *   parameters (T **out) receive objects the caller owns and must free.
 * - Tensors are float32, row-major, NHWC for images: (batch, rows, cols, channels).
 * - Config structs are filled with designated initialisers through the
 *   macros below; a field left at zero takes Keras's default.
 */
#ifndef CNN_H
#define CNN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status codes and errors (numbers never change) ------------------- */
typedef enum cnn_status {
    CNN_OK = 0,
    CNN_ERR_INVALID_ARGUMENT = 1, /* a bad value passed by the caller */
    CNN_ERR_SHAPE = 2,            /* shapes do not fit together */
    CNN_ERR_NO_MEMORY = 3,        /* an allocation failed or exceeds the budget */
    CNN_ERR_IO = 4,               /* open/read/write failed */
    CNN_ERR_FORMAT = 5,           /* a file's content is malformed */
    CNN_ERR_STATE = 6,            /* call order (e.g. fit before compile) */
    CNN_ERR_INTERRUPTED = 7,      /* a callback asked to stop */
    CNN_ERR_NUMERIC = 8           /* NaN or infinity appeared */
} cnn_status;

/* The message of the last failure on this thread ("" if none). */
const char *cnn_last_error(void);
/* A short fixed name for a status, e.g. "CNN_ERR_SHAPE". */
const char *cnn_status_name(cnn_status status);

/* ---- Tensors ----------------------------------------------------------- */
#define CNN_MAX_RANK 4
/* Default memory budget (see cnn_model_set_max_memory): 4 GiB. */
#define CNN_DEFAULT_MAX_MEMORY ((int64_t)4 << 30)

/* A dense float32 tensor. The struct is public so data can be read and
 * written directly; create it with cnn_tensor_create (or a loader) and free
 * it with cnn_tensor_free. */
typedef struct cnn_tensor {
    int rank;                    /* 1..4 */
    int64_t dims[CNN_MAX_RANK];  /* dims[0] is the batch axis */
    float *data;                 /* product(dims) floats, owned by the tensor */
} cnn_tensor;

/* Allocates a zero-filled tensor of the given rank and dimensions. */
cnn_status cnn_tensor_create(cnn_tensor **out, int rank, const int64_t *dims);
void cnn_tensor_free(cnn_tensor *t);
/* Number of elements (product of dims). */
int64_t cnn_tensor_size(const cnn_tensor *t);
/* NumPy's expand_dims(x, -1): (n, h, w) -> (n, h, w, 1). No data moves. */
cnn_status cnn_tensor_expand_dims(cnn_tensor *t);
/* Multiplies every element by factor (e.g. 1/255 to scale pixels to [0,1]). */
void cnn_tensor_scale(cnn_tensor *t, float factor);
/* Integer class labels (n) -> one-hot (n, num_classes). Fails on a label
 * that is not an integer in [0, num_classes). */
cnn_status cnn_tensor_one_hot(const cnn_tensor *labels, int num_classes, cnn_tensor **out);
/* Rows [start, start+count) of t's first axis, copied into a new tensor. */
cnn_status cnn_tensor_slice(const cnn_tensor *t, int64_t start, int64_t count, cnn_tensor **out);

/* ---- Data sets ---------------------------------------------------------- */
/* Reads an IDX file (MNIST / Fashion-MNIST format), plain or gzip-compressed
 * (detected from the content). Values are converted to float unchanged
 * (0..255 for pixels). Magic, rank, dimensions and file size are checked
 * before any allocation. */
cnn_status cnn_dataset_load_idx(const char *path, cnn_tensor **out);
/* Same, from memory (for fuzzing and embedded use); name is used in errors. */
cnn_status cnn_dataset_load_idx_memory(const void *bytes, size_t size, const char *name,
                                       cnn_tensor **out);
/* Loads an MNIST-layout directory (train-images-idx3-ubyte[.gz], ...):
 * images scaled to [0,1] with a channel axis (n, 28, 28, 1), labels (n).
 * Any output pointer may be NULL to skip that file. Image/label count
 * mismatch is an error. */
cnn_status cnn_dataset_load_mnist(const char *dir, cnn_tensor **train_x, cnn_tensor **train_y,
                                  cnn_tensor **test_x, cnn_tensor **test_y);

/* ---- Images -------------------------------------------------------------- */
/* Loads a PNG, JPEG, BMP, PGM/PPM, TGA or GIF (first frame) through
 * stb_image as a (1, rows, cols, channels) tensor with values in [0, 1].
 * channels 0 keeps the file's, 1 converts to grayscale, 3 to RGB. The
 * declared size is checked before decoding: an image whose float tensor
 * would exceed max_bytes (0 = CNN_DEFAULT_MAX_MEMORY) is refused. */
cnn_status cnn_image_load(const char *path, int channels, int64_t max_bytes, cnn_tensor **out);
cnn_status cnn_image_load_memory(const void *bytes, size_t size, const char *name, int channels,
                                 int64_t max_bytes, cnn_tensor **out);
/* Bilinear resize of a (1, rows, cols, c) image tensor. */
cnn_status cnn_image_resize(const cnn_tensor *image, int rows, int cols, cnn_tensor **out);
/* Writes 8-bit pixels (rows, cols, channels 1..4, row-major) as a PNG file,
 * atomically (temporary file, then rename). */
cnn_status cnn_image_save_png(const char *path, const uint8_t *pixels, int rows, int cols,
                              int channels);

/* ---- Shapes --------------------------------------------------------------- */
/* The shape of one example (without the batch axis): rank 3 (rows, cols,
 * channels) for images, rank 1 (features) after Flatten/Dense. */
typedef struct cnn_shape {
    int rank;
    int dims[3];
} cnn_shape;
#define cnn_shape_hwc(h, w, c) ((cnn_shape){.rank = 3, .dims = {(h), (w), (c)}})
#define cnn_shape_flat(n) ((cnn_shape){.rank = 1, .dims = {(n), 0, 0}})

/* ---- Layer configurations (zero = Keras default) -------------------------- */
typedef enum cnn_padding { CNN_PADDING_VALID = 0, CNN_PADDING_SAME = 1 } cnn_padding;

typedef enum cnn_activation {
    CNN_ACTIVATION_LINEAR = 0, /* Keras's activation=None */
    CNN_ACTIVATION_RELU = 1,
    CNN_ACTIVATION_SIGMOID = 2,
    CNN_ACTIVATION_TANH = 3,
    CNN_ACTIVATION_SOFTMAX = 4
} cnn_activation;

typedef struct cnn_conv2d_config {
    int filters;            /* required, > 0 */
    int kernel_size[2];     /* required (h, w) */
    int strides[2];         /* default (1, 1) */
    cnn_padding padding;    /* default valid */
    int dilation_rate[2];   /* default (1, 1) */
    cnn_activation activation; /* default linear */
    bool no_bias;           /* Keras use_bias=False */
    const char *name;       /* default: Keras auto-name conv2d, conv2d_1, ... */
} cnn_conv2d_config;
#define cnn_conv2d(...) ((cnn_conv2d_config){__VA_ARGS__})

typedef struct cnn_dense_config {
    int units;              /* required, > 0 */
    cnn_activation activation;
    bool no_bias;           /* Keras use_bias=False */
    const char *name;
} cnn_dense_config;
#define cnn_dense(...) ((cnn_dense_config){__VA_ARGS__})

typedef struct cnn_pool2d_config {
    int pool_size[2];       /* default (2, 2) */
    int strides[2];         /* default = pool_size */
    cnn_padding padding;    /* default valid */
    const char *name;
} cnn_pool2d_config;
#define cnn_pool2d(...) ((cnn_pool2d_config){__VA_ARGS__})

typedef struct cnn_activation_config {
    cnn_activation activation;
    const char *name;
} cnn_activation_config;
#define cnn_activation_layer(...) ((cnn_activation_config){__VA_ARGS__})

typedef struct cnn_dropout_config {
    float rate;             /* fraction dropped in training, [0, 1) */
    uint64_t seed;          /* 0 = derived from the model's seed */
    const char *name;
} cnn_dropout_config;
#define cnn_dropout(...) ((cnn_dropout_config){__VA_ARGS__})

typedef struct cnn_flatten_config {
    const char *name;
} cnn_flatten_config;
#define cnn_flatten(...) ((cnn_flatten_config){__VA_ARGS__})

/* GlobalAveragePooling2D / GlobalMaxPooling2D: (rows, cols, channels) -> (channels). */
typedef struct cnn_global_pool2d_config {
    const char *name;
} cnn_global_pool2d_config;
#define cnn_global_pool2d(...) ((cnn_global_pool2d_config){__VA_ARGS__})

/* Any layer's configuration, tagged by kind: what cnn_model_add takes and
 * cnn_model_layer_spec gives back (for saving, describing, copying models). */
typedef enum cnn_layer_kind {
    CNN_LAYER_CONV2D = 1,
    CNN_LAYER_DENSE = 2,
    CNN_LAYER_MAX_POOLING2D = 3,
    CNN_LAYER_AVERAGE_POOLING2D = 4,
    CNN_LAYER_ACTIVATION = 5,
    CNN_LAYER_DROPOUT = 6,
    CNN_LAYER_FLATTEN = 7,
    CNN_LAYER_GLOBAL_AVERAGE_POOLING2D = 8,
    CNN_LAYER_GLOBAL_MAX_POOLING2D = 9
} cnn_layer_kind;

typedef struct cnn_layer_spec {
    cnn_layer_kind kind;
    union {
        cnn_conv2d_config conv2d;
        cnn_dense_config dense;
        cnn_pool2d_config pool2d;   /* both pooling kinds */
        cnn_activation_config activation;
        cnn_dropout_config dropout;
        cnn_flatten_config flatten;
        cnn_global_pool2d_config global_pool2d; /* both global pooling kinds */
    } u;
} cnn_layer_spec;

/* Keras class name of a kind ("Conv2D") and back (0 if unknown). */
const char *cnn_layer_kind_name(cnn_layer_kind kind);
cnn_layer_kind cnn_layer_kind_from_name(const char *keras_class_name);

/* ---- Sequential model ---------------------------------------------------- */
typedef struct cnn_model cnn_model;

/* Creates an empty Sequential model for inputs of the given per-example
 * shape. Weights are initialised from seed 0 unless cnn_model_set_seed is
 * called before the first add. Free with cnn_model_free. */
cnn_status cnn_model_create(cnn_model **out, cnn_shape input_shape);
void cnn_model_free(cnn_model *m);
/* Seed for weight initialisation, dropout and shuffling. */
cnn_status cnn_model_set_seed(cnn_model *m, uint64_t seed);
/* Worker threads for training and inference (default: online CPUs).
 * The same seed and thread count give bit-identical results. */
cnn_status cnn_model_set_threads(cnn_model *m, int threads);
int cnn_model_threads(const cnn_model *m);

/* Each add infers the new layer's output shape; a layer that cannot take the
 * current shape fails here with a message naming it. */
cnn_status cnn_model_add(cnn_model *m, const cnn_layer_spec *spec);
cnn_status cnn_model_add_conv2d(cnn_model *m, cnn_conv2d_config cfg);
cnn_status cnn_model_add_dense(cnn_model *m, cnn_dense_config cfg);
cnn_status cnn_model_add_max_pooling2d(cnn_model *m, cnn_pool2d_config cfg);
cnn_status cnn_model_add_average_pooling2d(cnn_model *m, cnn_pool2d_config cfg);
cnn_status cnn_model_add_activation(cnn_model *m, cnn_activation_config cfg);
cnn_status cnn_model_add_dropout(cnn_model *m, cnn_dropout_config cfg);
cnn_status cnn_model_add_flatten(cnn_model *m, cnn_flatten_config cfg);
cnn_status cnn_model_add_global_average_pooling2d(cnn_model *m, cnn_global_pool2d_config cfg);
cnn_status cnn_model_add_global_max_pooling2d(cnn_model *m, cnn_global_pool2d_config cfg);

/* Introspection. */
/* The layer's full configuration with defaults filled in (the name points
 * into the model and lives as long as it). */
cnn_status cnn_model_layer_spec(const cnn_model *m, int index, cnn_layer_spec *out);
int cnn_model_layer_count(const cnn_model *m);
cnn_shape cnn_model_input_shape(const cnn_model *m);
cnn_shape cnn_model_output_shape(const cnn_model *m);
const char *cnn_model_layer_name(const cnn_model *m, int index);
const char *cnn_model_layer_type(const cnn_model *m, int index); /* "Conv2D", ... */
cnn_shape cnn_model_layer_output_shape(const cnn_model *m, int index);
int64_t cnn_model_layer_param_count(const cnn_model *m, int index);
int64_t cnn_model_param_count(const cnn_model *m);
int64_t cnn_model_trainable_param_count(const cnn_model *m);

/* A layer's weights: which = 0 kernel, 1 bias. Keras layouts: Conv2D kernel
 * (kh, kw, in, filters), Dense kernel (in, units). Returns a view into the
 * model (do not free) or NULL if the layer has no such weight. */
float *cnn_model_layer_weights(cnn_model *m, int index, int which, int64_t *count);

/* The classic Keras summary table. text_out receives a malloc'd string the
 * caller frees with free(). */
cnn_status cnn_model_summary(const cnn_model *m, char **text_out);
/* Writes the summary to a caller-supplied stream. */
cnn_status cnn_model_print_summary(const cnn_model *m, FILE *stream);

/* ---- Memory ----------------------------------------------------------------- */
/* What a model needs, in bytes, for one batch size. Training keeps every
 * layer's output for backward; inference keeps only two alternating
 * buffers. Nothing is allocated to compute this. */
typedef struct cnn_memory_estimate {
    int64_t parameters;            /* weights */
    int64_t gradients;             /* parameter gradients (training) */
    int64_t optimizer_state;       /* two slots per parameter (training) */
    int64_t activations_training;  /* every layer's output (+ dropout masks) */
    int64_t activation_gradients;  /* the two gradient buffers backward alternates */
    int64_t activations_inference; /* two alternating output buffers */
    int64_t workspace;             /* convolution scratch (bounded by the workspace limit) */
    int64_t batch_buffers;         /* a gathered batch of inputs and targets */
    int64_t training_total, inference_total;
    int64_t flops_per_example;     /* forward Conv2D and Dense, 2 per multiply-add */
} cnn_memory_estimate;
cnn_status cnn_model_estimate_memory(const cnn_model *m, int batch, cnn_memory_estimate *out);

/* The memory budget: building, compiling or running a batch that would need
 * more fails before allocating, with the needed and the allowed bytes.
 * bytes 0 = the default, CNN_DEFAULT_MAX_MEMORY. */
cnn_status cnn_model_set_max_memory(cnn_model *m, int64_t bytes);
int64_t cnn_model_max_memory(const cnn_model *m);
/* Convolution scratch limit (im2col tiles), default 8 MiB; any image size
 * runs within it. 0 = default. */
cnn_status cnn_model_set_workspace_limit(cnn_model *m, int64_t bytes);

/* ---- compile ------------------------------------------------------------- */
typedef enum cnn_loss {
    CNN_LOSS_NONE = 0,
    CNN_LOSS_CATEGORICAL_CROSSENTROPY = 1,        /* one-hot targets (n, classes) */
    CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY = 2, /* integer targets (n) */
    CNN_LOSS_BINARY_CROSSENTROPY = 3,             /* targets in [0,1], same shape as output */
    CNN_LOSS_MSE = 4
} cnn_loss;

typedef enum cnn_optimizer_kind {
    CNN_OPTIMIZER_SGD = 1,
    CNN_OPTIMIZER_ADAM = 2,
    CNN_OPTIMIZER_RMSPROP = 3
} cnn_optimizer_kind;

/* Zero fields take Keras's defaults: SGD lr 0.01, momentum 0; Adam lr 0.001,
 * beta_1 0.9, beta_2 0.999, epsilon 1e-7; RMSprop lr 0.001, rho 0.9,
 * epsilon 1e-7. */
typedef struct cnn_optimizer {
    cnn_optimizer_kind kind;
    float learning_rate;
    float momentum;  /* SGD, RMSprop */
    bool nesterov;   /* SGD */
    float beta_1, beta_2; /* Adam */
    float rho;       /* RMSprop */
    float epsilon;   /* Adam, RMSprop */
} cnn_optimizer;
#define cnn_sgd(...) ((cnn_optimizer){.kind = CNN_OPTIMIZER_SGD, __VA_ARGS__})
#define cnn_adam(...) ((cnn_optimizer){.kind = CNN_OPTIMIZER_ADAM, __VA_ARGS__})
#define cnn_rmsprop(...) ((cnn_optimizer){.kind = CNN_OPTIMIZER_RMSPROP, __VA_ARGS__})

typedef struct cnn_compile_config {
    cnn_loss loss;
    cnn_optimizer optimizer; /* default: RMSprop, as Keras */
} cnn_compile_config;
#define cnn_compile(...) ((cnn_compile_config){__VA_ARGS__})

/* Sets the loss and optimizer and resets the optimizer state. The metric is
 * accuracy (argmax for multi-class outputs, threshold 0.5 for one output). */
cnn_status cnn_model_compile(cnn_model *m, cnn_compile_config cfg);
/* The loss and optimizer (Keras defaults filled in) of a compiled model,
 * e.g. one loaded from a .cnn file; CNN_ERR_STATE if it is not compiled. */
cnn_status cnn_model_compile_config(const cnn_model *m, cnn_compile_config *out);

/* ---- fit / evaluate / predict ----------------------------------------------- */
typedef enum cnn_progress_event {
    CNN_PROGRESS_EPOCH_BEGIN = 0,
    CNN_PROGRESS_BATCH_END = 1,
    CNN_PROGRESS_EPOCH_END = 2
} cnn_progress_event;

/* What a progress callback sees. Values not yet known are NaN. */
typedef struct cnn_progress {
    cnn_progress_event event;
    int epoch, epochs;      /* 1-based */
    int64_t step, steps;    /* batches done in this epoch, batches per epoch */
    double elapsed_seconds; /* since the epoch began */
    double loss, accuracy;  /* running means over the epoch so far */
    double val_loss, val_accuracy; /* at EPOCH_END when validation is used */
} cnn_progress;

/* Return false to stop training (fit then returns CNN_ERR_INTERRUPTED after
 * finishing the current step). */
typedef bool (*cnn_progress_fn)(const cnn_progress *p, void *user);

/* The ready console printer: user is a FILE* (stdout if NULL). On a terminal
 * it redraws a Keras progress bar in place; otherwise it prints one line per
 * epoch. */
bool cnn_progress_console(const cnn_progress *p, void *user);

typedef struct cnn_fit_config {
    int epochs;                  /* default 1 */
    int batch_size;              /* default 32 */
    float validation_split;      /* last fraction of x/y, taken before shuffling */
    const cnn_tensor *validation_x, *validation_y; /* overrides validation_split */
    bool no_shuffle;             /* Keras shuffle=False */
    uint64_t seed;               /* shuffling seed; 0 = the model's seed */
    int initial_epoch;           /* Keras initial_epoch: epochs already done */
    int64_t initial_step;        /* steps of epoch initial_epoch + 1 already done
                                    (resuming from a mid-epoch checkpoint) */
    cnn_progress_fn progress;    /* NULL = silent */
    void *progress_user;
} cnn_fit_config;
#define cnn_fit(...) ((cnn_fit_config){__VA_ARGS__})

/* Per-epoch metrics of the epochs fit ran; row i is epoch first_epoch + i
 * (1-based). val_* are NaN without validation data. */
typedef struct cnn_history {
    int epochs, first_epoch;
    double *loss, *accuracy, *val_loss, *val_accuracy;
} cnn_history;
void cnn_history_free(cnn_history *h);

/* Trains the model. history_out (may be NULL) receives the per-epoch
 * metrics, also when fit stops early; free it with cnn_history_free.
 * Each epoch's shuffling depends only on (seed, epoch) and dropout masks on
 * (seed, optimizer step), so a resumed run (initial_epoch/initial_step from
 * cnn_model_training_position of a saved model) gives the same weights as
 * an uninterrupted one. */
cnn_status cnn_model_fit(cnn_model *m, const cnn_tensor *x, const cnn_tensor *y,
                         cnn_fit_config cfg, cnn_history **history_out);
/* Epochs completed and steps done in the next epoch by fit so far (saved in
 * the model file, for resuming). */
void cnn_model_training_position(const cnn_model *m, int *epoch, int64_t *step);
/* Mean loss and accuracy over (x, y) in inference mode. batch_size 0 = 32. */
cnn_status cnn_model_evaluate(cnn_model *m, const cnn_tensor *x, const cnn_tensor *y,
                              int batch_size, double *loss, double *accuracy);
/* Outputs (probabilities after softmax) for every example of x:
 * a new tensor (n, output shape...). batch_size 0 = 32. */
cnn_status cnn_model_predict(cnn_model *m, const cnn_tensor *x, int batch_size,
                             cnn_tensor **out);

/* ---- Saving and loading ------------------------------------------------------ */
/* The model file (.cnn): architecture, weights, and when compiled the loss,
 * optimizer settings and state and the training position, so training can
 * resume. Little-endian fixed-width fields, magic and version first, a
 * checksum. Saving is atomic: a temporary file in the same directory,
 * fsync, rename, fsync of the directory; a failed or interrupted save leaves
 * an existing file at path untouched. */
cnn_status cnn_model_save(cnn_model *m, const char *path);
/* Every size is checked against the file length and for overflow before
 * any allocation; errors name the file and the field. */
cnn_status cnn_model_load(const char *path, cnn_model **out);
cnn_status cnn_model_load_memory(const void *bytes, size_t size, const char *name,
                                 cnn_model **out);

/* ---- Model descriptions ---------------------------------------------------------- */
/* A model written by hand, one layer per line with Keras names and
 * arguments, or a Keras Sequential architecture from model.to_json()
 * (detected from the content). Errors in a text description, and JSON
 * syntax errors, give file:line:column; other JSON errors name the layer
 * (index, name, class). Each says what was expected. The model is returned
 * uncompiled. The format: docs/DESCRIPTION_FORMAT.md. */
cnn_status cnn_model_from_description(const char *path, cnn_model **out);
cnn_status cnn_model_from_description_memory(const char *text, size_t size, const char *name,
                                             cnn_model **out);

/* ---- Lower level: one step at a time (for tests and custom loops) ---------- */
/* Forward pass of a batch; training enables dropout. The returned pointer
 * views the model's output buffer (valid until the next call). */
cnn_status cnn_model_forward(cnn_model *m, const cnn_tensor *x, bool training,
                             const float **output);
/* Loss of the last forward pass against y, and backward pass accumulating
 * (+=) parameter gradients. input_grad (may be NULL) receives dLoss/dInput
 * for the whole batch (same size as x). */
cnn_status cnn_model_backward(cnn_model *m, const cnn_tensor *y, double *loss,
                              float *input_grad);
/* After cnn_model_forward: layer index's output for the batch, (batch,
 * layer output shape), after its activation (the feature maps). A view into
 * the model, valid until the next call; NULL before any forward pass. */
const float *cnn_model_layer_output(const cnn_model *m, int index);
/* Parameter gradients in the same layout as cnn_model_layer_weights. */
float *cnn_model_layer_gradients(cnn_model *m, int index, int which, int64_t *count);
void cnn_model_zero_gradients(cnn_model *m);
/* One optimizer update from the accumulated gradients. */
cnn_status cnn_model_apply_gradients(cnn_model *m);

#ifdef __cplusplus
}
#endif
#endif /* CNN_H */
