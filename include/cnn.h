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
 *   cnn_model_add_batch_normalization(m, cnn_batch_normalization());
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
 *                                  .callbacks = {.early_stopping = cnn_early_stopping(
 *                                      .patience = 2, .restore_best_weights = true)},
 *                                  .lr_schedule = {.kind = CNN_LR_COSINE},
 *                                  .augmentation = {.horizontal_flip = true},
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
 * - Threads: a cnn_model, cnn_dataset or cnn_tensor must not be used by two
 *   threads at once (the model runs its own worker threads inside a call);
 *   different objects may be used from different threads freely, and
 *   cnn_last_error() is per thread.
 * - Only functions marked CNN_API are exported by libcnn.so; the version is
 *   CNN_VERSION_MAJOR/MINOR/PATCH here and cnn_version() at run time.
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

/* ---- Version and visibility ------------------------------------------- */
/* The version of this header; cnn_version() gives the library's, so a
 * program can check that the two agree at run time. */
#define CNN_VERSION_MAJOR 0
#define CNN_VERSION_MINOR 1
#define CNN_VERSION_PATCH 0

/* CNN_API marks the library's public functions: libcnn.so is built with
 * -fvisibility=hidden and exports these and nothing else (internal
 * functions are reachable only through the static library, for tests). */
#if defined(__GNUC__) || defined(__clang__)
#define CNN_API __attribute__((visibility("default")))
#else
#define CNN_API
#endif

/* "MAJOR.MINOR.PATCH" of the library the program runs with. */
CNN_API const char *cnn_version(void);

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
CNN_API const char *cnn_last_error(void);
/* A short fixed name for a status, e.g. "CNN_ERR_SHAPE". */
CNN_API const char *cnn_status_name(cnn_status status);

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
CNN_API cnn_status cnn_tensor_create(cnn_tensor **out, int rank, const int64_t *dims);
CNN_API void cnn_tensor_free(cnn_tensor *t);
/* Number of elements (product of dims). */
CNN_API int64_t cnn_tensor_size(const cnn_tensor *t);
/* NumPy's expand_dims(x, -1): (n, h, w) -> (n, h, w, 1). No data moves. */
CNN_API cnn_status cnn_tensor_expand_dims(cnn_tensor *t);
/* Multiplies every element by factor (e.g. 1/255 to scale pixels to [0,1]). */
CNN_API void cnn_tensor_scale(cnn_tensor *t, float factor);
/* Integer class labels (n) -> one-hot (n, num_classes). Fails on a label
 * that is not an integer in [0, num_classes). */
CNN_API cnn_status cnn_tensor_one_hot(const cnn_tensor *labels, int num_classes, cnn_tensor **out);
/* Rows [start, start+count) of t's first axis, copied into a new tensor. */
CNN_API cnn_status cnn_tensor_slice(const cnn_tensor *t, int64_t start, int64_t count, cnn_tensor **out);

/* ---- Data sets ---------------------------------------------------------- */
/* Reads an IDX file (MNIST / Fashion-MNIST format), plain or gzip-compressed
 * (detected from the content). Values are converted to float unchanged
 * (0..255 for pixels). Magic, rank, dimensions and file size are checked
 * before any allocation; data whose floats would need more than
 * CNN_DEFAULT_MAX_MEMORY is refused (CNN_ERR_NO_MEMORY). Float data must be
 * finite: a NaN, an infinity or a float64 too large for float32 fails with
 * CNN_ERR_NUMERIC, naming its index. */
CNN_API cnn_status cnn_dataset_load_idx(const char *path, cnn_tensor **out);
/* Same, from memory (for fuzzing and embedded use); name is used in errors. */
CNN_API cnn_status cnn_dataset_load_idx_memory(const void *bytes, size_t size, const char *name,
                                       cnn_tensor **out);
/* Loads an MNIST-layout directory (train-images-idx3-ubyte[.gz], ...):
 * images scaled to [0,1] with a channel axis (n, 28, 28, 1), labels (n).
 * Any output pointer may be NULL to skip that file. Image/label count
 * mismatch is an error. */
CNN_API cnn_status cnn_dataset_load_mnist(const char *dir, cnn_tensor **train_x, cnn_tensor **train_y,
                                  cnn_tensor **test_x, cnn_tensor **test_y);

/* ---- Images -------------------------------------------------------------- */
/* Loads a PNG (libpng), JPEG (libjpeg-turbo), BMP, PGM/PPM, TGA or GIF
 * (first frame; stb_image) as a (1, rows, cols, channels) tensor with values
 * in [0, 1], the pixels Pillow (and so Keras' load_img) decodes: channels 0
 * keeps the file's without alpha, 1 converts to grayscale, 3 to RGB; EXIF
 * orientation is ignored (docs/IMAGE_DECODING.md). The declared size is
 * checked before decoding: an image whose decoding and float tensor would
 * exceed max_bytes (0 = CNN_DEFAULT_MAX_MEMORY) is refused, and every
 * allocation of the decoder counts against it. */
CNN_API cnn_status cnn_image_load(const char *path, int channels, int64_t max_bytes, cnn_tensor **out);
CNN_API cnn_status cnn_image_load_memory(const void *bytes, size_t size, const char *name, int channels,
                                 int64_t max_bytes, cnn_tensor **out);
/* Bilinear resize of a (1, rows, cols, c) image tensor. */
CNN_API cnn_status cnn_image_resize(const cnn_tensor *image, int rows, int cols, cnn_tensor **out);
/* Writes 8-bit pixels (rows, cols, channels 1..4, row-major) as a PNG file,
 * atomically, as cnn_file_write_atomic writes. */
CNN_API cnn_status cnn_image_save_png(const char *path, const uint8_t *pixels, int rows, int cols,
                              int channels);
/* Writes size bytes as the file path, atomically, as the library writes
 * every file: a temporary file beside it, fsync, rename, fsync of the
 * directory. A new file gets 0666 & ~umask, a replaced one keeps its mode;
 * only a regular file (or a symlink to one) is replaced - a directory,
 * device or FIFO is refused and left untouched. On failure the old file is
 * intact and no temporary file remains. */
CNN_API cnn_status cnn_file_write_atomic(const char *path, const void *bytes, size_t size);
/* Reads the file path whole, as the library reads every file: a FIFO,
 * directory or device is refused (CNN_ERR_IO) rather than waited on, a
 * file over max_bytes (0 = CNN_DEFAULT_MAX_MEMORY) is refused unread
 * (CNN_ERR_FORMAT), and one that changes size while it is read is an
 * error. *bytes (free() it) holds *size bytes and a NUL after them, so
 * text can be parsed in place. */
CNN_API cnn_status cnn_file_read_all(const char *path, int64_t max_bytes, void **bytes, size_t *size);

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

/* Activations, as Keras 3 defines them (numbers never change; the names are
 * Keras's, see cnn_activation_name). */
typedef enum cnn_activation {
    CNN_ACTIVATION_LINEAR = 0, /* Keras's activation=None */
    CNN_ACTIVATION_RELU = 1,
    CNN_ACTIVATION_SIGMOID = 2,
    CNN_ACTIVATION_TANH = 3,
    CNN_ACTIVATION_SOFTMAX = 4,
    CNN_ACTIVATION_SILU = 5,         /* "silu", alias "swish": x sigmoid(x) */
    CNN_ACTIVATION_GELU = 6,         /* exact: x (1 + erf(x / sqrt 2)) / 2 */
    CNN_ACTIVATION_GELU_TANH = 7,    /* "gelu_tanh": gelu(approximate=True), the
                                        tanh approximation (no Keras name) */
    CNN_ACTIVATION_SELU = 8,
    CNN_ACTIVATION_ELU = 9,          /* alpha 1 */
    CNN_ACTIVATION_SOFTPLUS = 10,    /* log(1 + e^x) */
    CNN_ACTIVATION_SOFTSIGN = 11,    /* x / (1 + |x|) */
    CNN_ACTIVATION_HARD_SIGMOID = 12, /* Keras 3: relu6(x + 3) / 6 (tf.keras 2 had
                                         clip(0.2 x + 0.5, 0, 1)) */
    CNN_ACTIVATION_HARD_SILU = 13,   /* "hard_silu", alias "hard_swish": x hard_sigmoid(x) */
    CNN_ACTIVATION_EXPONENTIAL = 14, /* e^x */
    CNN_ACTIVATION_RELU6 = 15,       /* min(max(x, 0), 6) */
    CNN_ACTIVATION_LEAKY_RELU = 16,  /* negative_slope 0.2, Keras 3's default */
    CNN_ACTIVATION_MISH = 17         /* x tanh(softplus(x)) */
} cnn_activation;
/* Keras's name of an activation ("relu", "silu", ...); NULL if a is not one. */
CNN_API const char *cnn_activation_name(cnn_activation a);
/* The activation of a Keras name or alias ("swish" = silu, "hard_swish" =
 * hard_silu, "None" = linear; case-insensitive). CNN_ERR_INVALID_ARGUMENT
 * naming the expected names if it is none. */
CNN_API cnn_status cnn_activation_from_name(const char *name, cnn_activation *out);

typedef struct cnn_conv2d_config {
    int filters;            /* required, > 0 */
    int kernel_size[2];     /* required (h, w) */
    int strides[2];         /* default (1, 1) */
    cnn_padding padding;    /* default valid */
    int dilation_rate[2];   /* default (1, 1) */
    cnn_activation activation; /* default linear */
    bool no_bias;           /* Keras use_bias=False */
    float kernel_l2;        /* kernel_regularizer=l2(kernel_l2): fit adds kernel_l2 *
                               sum(kernel^2) to the loss; 0 = none */
    const char *name;       /* default: Keras auto-name conv2d, conv2d_1, ... */
} cnn_conv2d_config;
#define cnn_conv2d(...) ((cnn_conv2d_config){__VA_ARGS__})

typedef struct cnn_dense_config {
    int units;              /* required, > 0 */
    cnn_activation activation;
    bool no_bias;           /* Keras use_bias=False */
    float kernel_l2;        /* kernel_regularizer=l2(kernel_l2), as for Conv2D */
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

/* BatchNormalization over the last axis (Keras axis=-1), for rank 3 and
 * rank 1 inputs. Training: y = gamma (x - mean) / sqrt(var + epsilon) + beta
 * with the batch's mean and biased variance per channel (over batch, rows
 * and cols), and moving = momentum * moving + (1 - momentum) * batch for
 * both statistics (Keras's rule: the biased variance, no Bessel correction).
 * Inference uses the moving mean and variance instead. Weights, in Keras's
 * order: 0 gamma (ones), 1 beta (zeros), both trainable; 2 moving_mean
 * (zeros), 3 moving_variance (ones), both non-trainable: 4 * channels
 * parameters, half of them trainable. */
typedef struct cnn_batch_normalization_config {
    float momentum;         /* default 0.99, in (0, 1) */
    float epsilon;          /* default 1e-3, > 0 */
    const char *name;
} cnn_batch_normalization_config;
#define cnn_batch_normalization(...) ((cnn_batch_normalization_config){__VA_ARGS__})

/* LeakyReLU: y = x if x >= 0, else negative_slope * x. The default is
 * 0.3, the default of both Keras 2's LeakyReLU(alpha) and Keras 3's
 * LeakyReLU(negative_slope) layer (0.2 is Keras 3's default only for the
 * leaky_relu activation function). A slope of 0 is ReLU: use that. */
typedef struct cnn_leaky_relu_config {
    float negative_slope;   /* default 0.3, > 0 */
    const char *name;
} cnn_leaky_relu_config;
#define cnn_leaky_relu(...) ((cnn_leaky_relu_config){__VA_ARGS__})

/* ELU: y = x if x > 0, else alpha (exp(x) - 1). */
typedef struct cnn_elu_config {
    float alpha;            /* default 1.0, > 0 */
    const char *name;
} cnn_elu_config;
#define cnn_elu(...) ((cnn_elu_config){__VA_ARGS__})

/* The ReLU layer (Keras ReLU): y = min(x, max_value) for x >= threshold,
 * else negative_slope * (x - threshold). max_value 6 is ReLU6. */
typedef struct cnn_relu_config {
    float max_value;        /* 0 = no cap (Keras None) */
    float negative_slope;   /* default 0, >= 0 */
    float threshold;        /* default 0 */
    const char *name;
} cnn_relu_config;
#define cnn_relu(...) ((cnn_relu_config){__VA_ARGS__})

/* ZeroPadding2D: (rows, cols, c) -> (top + rows + bottom, left + cols +
 * right, c) with zeros around. */
typedef struct cnn_zero_padding2d_config {
    int padding[4];         /* top, bottom, left, right; all 0 = Keras's default 1 each */
    const char *name;
} cnn_zero_padding2d_config;
#define cnn_zero_padding2d(...) ((cnn_zero_padding2d_config){__VA_ARGS__})

/* Reshape to target_shape (rank 3 or 1, the same number of values; one
 * dimension may be -1, inferred as in Keras). Data keep their order. */
typedef struct cnn_reshape_config {
    cnn_shape target_shape; /* required */
    const char *name;
} cnn_reshape_config;
#define cnn_reshape(...) ((cnn_reshape_config){__VA_ARGS__})

/* DepthwiseConv2D: each input channel c convolved with its own
 * depth_multiplier filters; output channel c * depth_multiplier + k.
 * Weights: 0 depthwise_kernel (kh, kw, in, depth_multiplier), 1 bias
 * (in * depth_multiplier). Padding, strides and dilation as Conv2D. */
typedef struct cnn_depthwise_conv2d_config {
    int kernel_size[2];     /* required (h, w) */
    int strides[2];         /* default (1, 1) */
    cnn_padding padding;    /* default valid */
    int depth_multiplier;   /* default 1 */
    int dilation_rate[2];   /* default (1, 1) */
    cnn_activation activation;
    bool no_bias;           /* Keras use_bias=False */
    float depthwise_l2;     /* depthwise_regularizer=l2(depthwise_l2); 0 = none */
    const char *name;
} cnn_depthwise_conv2d_config;
#define cnn_depthwise_conv2d(...) ((cnn_depthwise_conv2d_config){__VA_ARGS__})

/* SeparableConv2D: DepthwiseConv2D (no bias) then a 1x1 convolution to
 * filters channels, + bias, activation. Weights: 0 depthwise_kernel (kh,
 * kw, in, depth_multiplier), 1 pointwise_kernel (1, 1, in *
 * depth_multiplier, filters), 2 bias (filters). */
typedef struct cnn_separable_conv2d_config {
    int filters;            /* required, > 0 */
    int kernel_size[2];     /* required (h, w) */
    int strides[2];         /* default (1, 1) */
    cnn_padding padding;    /* default valid */
    int depth_multiplier;   /* default 1 */
    int dilation_rate[2];   /* default (1, 1) */
    cnn_activation activation;
    bool no_bias;           /* Keras use_bias=False */
    float depthwise_l2, pointwise_l2; /* depthwise_/pointwise_regularizer=l2(...) */
    const char *name;
} cnn_separable_conv2d_config;
#define cnn_separable_conv2d(...) ((cnn_separable_conv2d_config){__VA_ARGS__})

/* Rescaling (Keras Rescaling): y = x * scale + offset, elementwise, so a
 * model can carry its own input preprocessing (scale 1/255 takes raw pixels
 * 0..255 to [0, 1]). No weights. */
typedef struct cnn_rescaling_config {
    float scale;            /* required: finite and not 0 */
    float offset;           /* default 0 */
    const char *name;
} cnn_rescaling_config;
#define cnn_rescaling(...) ((cnn_rescaling_config){__VA_ARGS__})

/* Conv2DTranspose (Keras's "deconvolution"): the adjoint of a Conv2D, so
 * (rows, cols, in) -> (rows', cols', filters) with Keras's output size:
 * without output_padding, valid gives rows * s + max(k - s, 0) and same
 * gives rows * s (k the dilated kernel span); with it, (rows - 1) * s + k
 * - 2 * pad + output_padding, pad k / 2 for same and 0 for valid. Same
 * padding crops TensorFlow's way: max(k - s, 0) / 2 at the top/left, the
 * rest at the bottom/right. Weights: 0 kernel (kh, kw, filters, in) as Keras
 * stores it, 1 bias (filters). */
typedef struct cnn_opt_pair {
    int value[2];           /* (rows, cols) when set */
    bool set;               /* false = Keras None */
} cnn_opt_pair;
typedef struct cnn_conv2d_transpose_config {
    int filters;            /* required, > 0 */
    int kernel_size[2];     /* required (h, w) */
    int strides[2];         /* default (1, 1) */
    cnn_padding padding;    /* default valid */
    cnn_opt_pair output_padding; /* default None; each < its stride */
    int dilation_rate[2];   /* default (1, 1) */
    cnn_activation activation;
    bool no_bias;           /* Keras use_bias=False */
    float kernel_l2;        /* kernel_regularizer=l2(kernel_l2) */
    const char *name;
} cnn_conv2d_transpose_config;
#define cnn_conv2d_transpose(...) ((cnn_conv2d_transpose_config){__VA_ARGS__})

/* UpSampling2D: (rows, cols, c) -> (rows * size_h, cols * size_w, c),
 * nearest (each value repeated) or bilinear (tf.image.resize with half-pixel
 * centers, edges clamped). */
typedef enum cnn_interpolation {
    CNN_INTERPOLATION_NEAREST = 0,
    CNN_INTERPOLATION_BILINEAR = 1
} cnn_interpolation;
typedef struct cnn_up_sampling2d_config {
    int size[2];            /* default (2, 2) */
    cnn_interpolation interpolation; /* default nearest */
    const char *name;
} cnn_up_sampling2d_config;
#define cnn_up_sampling2d(...) ((cnn_up_sampling2d_config){__VA_ARGS__})

/* Cropping2D: removes rows and columns at the edges: (rows, cols, c) ->
 * (rows - top - bottom, cols - left - right, c). */
typedef struct cnn_cropping2d_config {
    int cropping[4];        /* top, bottom, left, right; default 0 */
    const char *name;
} cnn_cropping2d_config;
#define cnn_cropping2d(...) ((cnn_cropping2d_config){__VA_ARGS__})

/* SpatialDropout2D: in training, drops whole channels of each example with
 * probability rate and scales the kept ones by 1 / (1 - rate); identity in
 * inference. Masks follow (seed, step) as Dropout's do. */
typedef struct cnn_spatial_dropout2d_config {
    float rate;             /* [0, 1) */
    uint64_t seed;          /* 0 = derived from the model's seed */
    const char *name;
} cnn_spatial_dropout2d_config;
#define cnn_spatial_dropout2d(...) ((cnn_spatial_dropout2d_config){__VA_ARGS__})

/* Softmax (the layer): softmax over the last axis (Keras axis=-1). */
typedef struct cnn_softmax_config {
    const char *name;
} cnn_softmax_config;
#define cnn_softmax(...) ((cnn_softmax_config){__VA_ARGS__})

/* LayerNormalization over the last axis (Keras axis=-1): each example's
 * values along it normalised by their own mean and biased variance, y =
 * gamma (x - mean) / sqrt(var + epsilon) + beta. Weights, in Keras's order:
 * gamma (ones, unless no_scale), then beta (zeros, unless no_center). */
typedef struct cnn_layer_normalization_config {
    float epsilon;          /* default 1e-3, > 0 */
    bool no_center;         /* Keras center=False: no beta */
    bool no_scale;          /* Keras scale=False: no gamma */
    const char *name;
} cnn_layer_normalization_config;
#define cnn_layer_normalization(...) ((cnn_layer_normalization_config){__VA_ARGS__})
/* Merge layers (Keras Add, Subtract, Multiply, Average, Maximum, Minimum):
 * elementwise over two or more inputs (Subtract: exactly two, the first
 * minus the second) whose shapes broadcast as Keras's do: matched from the
 * last axis, each pair of sizes equal or one of them 1. Name their inputs with
 * cnn_model_set_next_inputs before the add. No weights. */
typedef struct cnn_merge_config {
    const char *name;
} cnn_merge_config;
#define cnn_merge(...) ((cnn_merge_config){__VA_ARGS__})

/* Concatenate (Keras Concatenate): joins two or more inputs along axis,
 * counted as Keras counts it with the batch axis first: -1 (the default,
 * 0 here) is the last, channels for images; 1 is rows. Every other
 * dimension must match. */
typedef struct cnn_concatenate_config {
    int axis;               /* 0 = -1 */
    const char *name;
} cnn_concatenate_config;
#define cnn_concatenate(...) ((cnn_concatenate_config){__VA_ARGS__})

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
    CNN_LAYER_GLOBAL_MAX_POOLING2D = 9,
    CNN_LAYER_BATCH_NORMALIZATION = 10,
    CNN_LAYER_LEAKY_RELU = 11,
    CNN_LAYER_ELU = 12,
    CNN_LAYER_RELU = 13,
    CNN_LAYER_ZERO_PADDING2D = 14,
    CNN_LAYER_RESHAPE = 15,
    CNN_LAYER_DEPTHWISE_CONV2D = 16,
    CNN_LAYER_SEPARABLE_CONV2D = 17,
    CNN_LAYER_RESCALING = 18,
    CNN_LAYER_CONV2D_TRANSPOSE = 40,
    CNN_LAYER_UP_SAMPLING2D = 41,
    CNN_LAYER_CROPPING2D = 42,
    CNN_LAYER_SPATIAL_DROPOUT2D = 43,
    CNN_LAYER_SOFTMAX = 44,
    CNN_LAYER_LAYER_NORMALIZATION = 45,
    /* merge layers (several inputs) */
    CNN_LAYER_ADD = 32,
    CNN_LAYER_SUBTRACT = 33,
    CNN_LAYER_MULTIPLY = 34,
    CNN_LAYER_AVERAGE = 35,
    CNN_LAYER_MAXIMUM = 36,
    CNN_LAYER_MINIMUM = 37,
    CNN_LAYER_CONCATENATE = 38
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
        cnn_batch_normalization_config batch_normalization;
        cnn_leaky_relu_config leaky_relu;
        cnn_elu_config elu;
        cnn_relu_config relu;
        cnn_zero_padding2d_config zero_padding2d;
        cnn_reshape_config reshape;
        cnn_depthwise_conv2d_config depthwise_conv2d;
        cnn_separable_conv2d_config separable_conv2d;
        cnn_rescaling_config rescaling;
        cnn_conv2d_transpose_config conv2d_transpose;
        cnn_up_sampling2d_config up_sampling2d;
        cnn_cropping2d_config cropping2d;
        cnn_spatial_dropout2d_config spatial_dropout2d;
        cnn_softmax_config softmax;
        cnn_layer_normalization_config layer_normalization;
        cnn_merge_config merge;     /* the elementwise merge kinds */
        cnn_concatenate_config concatenate;
    } u;
} cnn_layer_spec;

/* Keras class name of a kind ("Conv2D"), NULL if kind is not one; and
 * back from the class name or Keras's alias ("MaxPool2D"), case-sensitive
 * as Keras's are (CNN_ERR_INVALID_ARGUMENT naming the expected names if it
 * is none). */
CNN_API const char *cnn_layer_kind_name(cnn_layer_kind kind);
CNN_API cnn_status cnn_layer_kind_from_name(const char *keras_class_name, cnn_layer_kind *out);

/* ---- Models: Sequential, and Functional graphs (below) -------------------- */
typedef struct cnn_model cnn_model;

/* Creates an empty model for inputs of the given per-example shape: each
 * layer added reads the one before (Sequential) unless
 * cnn_model_set_next_inputs says otherwise (a Functional graph). Weights
 * are initialised from seed 0 unless cnn_model_set_seed is called before
 * the first add. Free with cnn_model_free. */
CNN_API cnn_status cnn_model_create(cnn_model **out, cnn_shape input_shape);
CNN_API void cnn_model_free(cnn_model *m);
/* Seed for weight initialisation, dropout and shuffling. */
CNN_API cnn_status cnn_model_set_seed(cnn_model *m, uint64_t seed);
/* Worker threads for training and inference (default: online CPUs).
 * The same seed and thread count give bit-identical results. */
CNN_API cnn_status cnn_model_set_threads(cnn_model *m, int threads);
CNN_API int cnn_model_threads(const cnn_model *m);

/* Each add infers the new layer's output shape; a layer that cannot take the
 * current shape fails here with a message naming it. */
CNN_API cnn_status cnn_model_add(cnn_model *m, const cnn_layer_spec *spec);
CNN_API cnn_status cnn_model_add_conv2d(cnn_model *m, cnn_conv2d_config cfg);
CNN_API cnn_status cnn_model_add_dense(cnn_model *m, cnn_dense_config cfg);
CNN_API cnn_status cnn_model_add_max_pooling2d(cnn_model *m, cnn_pool2d_config cfg);
CNN_API cnn_status cnn_model_add_average_pooling2d(cnn_model *m, cnn_pool2d_config cfg);
CNN_API cnn_status cnn_model_add_activation(cnn_model *m, cnn_activation_config cfg);
CNN_API cnn_status cnn_model_add_dropout(cnn_model *m, cnn_dropout_config cfg);
CNN_API cnn_status cnn_model_add_flatten(cnn_model *m, cnn_flatten_config cfg);
CNN_API cnn_status cnn_model_add_global_average_pooling2d(cnn_model *m, cnn_global_pool2d_config cfg);
CNN_API cnn_status cnn_model_add_global_max_pooling2d(cnn_model *m, cnn_global_pool2d_config cfg);
CNN_API cnn_status cnn_model_add_batch_normalization(cnn_model *m, cnn_batch_normalization_config cfg);
CNN_API cnn_status cnn_model_add_leaky_relu(cnn_model *m, cnn_leaky_relu_config cfg);
CNN_API cnn_status cnn_model_add_elu(cnn_model *m, cnn_elu_config cfg);
CNN_API cnn_status cnn_model_add_relu(cnn_model *m, cnn_relu_config cfg);
CNN_API cnn_status cnn_model_add_zero_padding2d(cnn_model *m, cnn_zero_padding2d_config cfg);
CNN_API cnn_status cnn_model_add_reshape(cnn_model *m, cnn_reshape_config cfg);
CNN_API cnn_status cnn_model_add_depthwise_conv2d(cnn_model *m, cnn_depthwise_conv2d_config cfg);
CNN_API cnn_status cnn_model_add_separable_conv2d(cnn_model *m, cnn_separable_conv2d_config cfg);
CNN_API cnn_status cnn_model_add_rescaling(cnn_model *m, cnn_rescaling_config cfg);
CNN_API cnn_status cnn_model_add_conv2d_transpose(cnn_model *m, cnn_conv2d_transpose_config cfg);
CNN_API cnn_status cnn_model_add_up_sampling2d(cnn_model *m, cnn_up_sampling2d_config cfg);
CNN_API cnn_status cnn_model_add_cropping2d(cnn_model *m, cnn_cropping2d_config cfg);
CNN_API cnn_status cnn_model_add_spatial_dropout2d(cnn_model *m, cnn_spatial_dropout2d_config cfg);
CNN_API cnn_status cnn_model_add_softmax(cnn_model *m, cnn_softmax_config cfg);
CNN_API cnn_status cnn_model_add_layer_normalization(cnn_model *m, cnn_layer_normalization_config cfg);
CNN_API cnn_status cnn_model_add_add(cnn_model *m, cnn_merge_config cfg);
CNN_API cnn_status cnn_model_add_subtract(cnn_model *m, cnn_merge_config cfg);
CNN_API cnn_status cnn_model_add_multiply(cnn_model *m, cnn_merge_config cfg);
CNN_API cnn_status cnn_model_add_average(cnn_model *m, cnn_merge_config cfg);
CNN_API cnn_status cnn_model_add_maximum(cnn_model *m, cnn_merge_config cfg);
CNN_API cnn_status cnn_model_add_minimum(cnn_model *m, cnn_merge_config cfg);
CNN_API cnn_status cnn_model_add_concatenate(cnn_model *m, cnn_concatenate_config cfg);
/* The typed adds above as one list, from which libcnn defines them:
 * X(name, kind, member) is cnn_model_add_<name>, CNN_LAYER_<kind>, and the
 * cnn_layer_spec union member (its config type is cnn_<member>_config). */
#define CNN_LAYER_ADD_LIST(X)                                                  \
    X(conv2d, CONV2D, conv2d)                                                  \
    X(dense, DENSE, dense)                                                     \
    X(max_pooling2d, MAX_POOLING2D, pool2d)                                    \
    X(average_pooling2d, AVERAGE_POOLING2D, pool2d)                            \
    X(activation, ACTIVATION, activation)                                      \
    X(dropout, DROPOUT, dropout)                                               \
    X(flatten, FLATTEN, flatten)                                               \
    X(global_average_pooling2d, GLOBAL_AVERAGE_POOLING2D, global_pool2d)       \
    X(global_max_pooling2d, GLOBAL_MAX_POOLING2D, global_pool2d)               \
    X(batch_normalization, BATCH_NORMALIZATION, batch_normalization)           \
    X(leaky_relu, LEAKY_RELU, leaky_relu)                                      \
    X(elu, ELU, elu)                                                           \
    X(relu, RELU, relu)                                                        \
    X(zero_padding2d, ZERO_PADDING2D, zero_padding2d)                          \
    X(reshape, RESHAPE, reshape)                                               \
    X(depthwise_conv2d, DEPTHWISE_CONV2D, depthwise_conv2d)                    \
    X(separable_conv2d, SEPARABLE_CONV2D, separable_conv2d)                    \
    X(rescaling, RESCALING, rescaling)                                         \
    X(conv2d_transpose, CONV2D_TRANSPOSE, conv2d_transpose)                    \
    X(up_sampling2d, UP_SAMPLING2D, up_sampling2d)                             \
    X(cropping2d, CROPPING2D, cropping2d)                                      \
    X(spatial_dropout2d, SPATIAL_DROPOUT2D, spatial_dropout2d)                 \
    X(softmax, SOFTMAX, softmax)                                               \
    X(layer_normalization, LAYER_NORMALIZATION, layer_normalization)           \
    X(add, ADD, merge)                                                         \
    X(subtract, SUBTRACT, merge)                                               \
    X(multiply, MULTIPLY, merge)                                               \
    X(average, AVERAGE, merge)                                                 \
    X(maximum, MAXIMUM, merge)                                                 \
    X(minimum, MINIMUM, merge)                                                 \
    X(concatenate, CONCATENATE, concatenate)

/* Functional graphs (Keras's Functional API). A layer reads the output of
 * the layer added before it - a chain, Sequential - unless
 * cnn_model_set_next_inputs names what the next added layer reads: earlier
 * layers by name, or the model's input by its name (cnn_model_input_name,
 * "input_layer" unless set). Merge layers read two or more. The last
 * layer added is the model's output. For a residual block:
 *
 *   cnn_model_add_conv2d(m, cnn_conv2d(.filters = 16, .kernel_size = {3, 3},
 *                                      .padding = CNN_PADDING_SAME, .name = "a"));
 *   cnn_model_add_conv2d(m, cnn_conv2d(.filters = 16, ... , .name = "b"));
 *   cnn_model_set_next_inputs(m, 2, (const char *[]){"a", "b"});
 *   cnn_model_add_add(m, cnn_merge());                   // a + b
 *
 * The names are looked up at once (an unknown name fails here); they
 * apply to the next add only. */
#define CNN_MAX_LAYER_INPUTS 8
CNN_API cnn_status cnn_model_set_next_inputs(cnn_model *m, int count, const char *const *names);
/* The name of the model's input (Keras's InputLayer): 1..63 bytes, unique
 * among the layer names. Set it before naming it as an input. */
CNN_API cnn_status cnn_model_set_input_name(cnn_model *m, const char *name);
CNN_API const char *cnn_model_input_name(const cnn_model *m);
/* The number of inputs of layer index and the k-th one: a layer index, or
 * -1 for the model's input. */
CNN_API int cnn_model_layer_input_count(const cnn_model *m, int index);
CNN_API int cnn_model_layer_input(const cnn_model *m, int index, int k);
/* Whether some layer reads something other than the layer before it. */
CNN_API bool cnn_model_is_graph(const cnn_model *m);

/* Transfer learning (Keras's layer.trainable). A frozen layer's weights
 * are not trained (they count as non-trainable in the summary); as in
 * Keras 3, a frozen BatchNormalization runs in inference mode even while
 * the model trains (its moving statistics are used and kept). Backward
 * stops below the lowest layer that trains. Saved in .cnn and Keras files. */
CNN_API cnn_status cnn_model_set_trainable(cnn_model *m, int index, bool trainable);
CNN_API bool cnn_model_layer_trainable(const cnn_model *m, int index);
/* Freezes every layer up to and including the one named (cnn train
 * --freeze LAYER). */
CNN_API cnn_status cnn_model_freeze_through(cnn_model *m, const char *name);
/* Replaces the last layer, which must be a Dense, by a new Dense of units
 * outputs with the same activation and name, newly initialised, reading
 * what the old one read (cnn train --replace-head N); the other weights
 * are kept. The model must be compiled again. The new weights are drawn
 * from the model's seed; _seeded draws them from seed (which becomes the
 * model's seed: a loaded model's cannot be set with cnn_model_set_seed). */
CNN_API cnn_status cnn_model_replace_head(cnn_model *m, int units);
CNN_API cnn_status cnn_model_replace_head_seeded(cnn_model *m, int units, uint64_t seed);

/* Introspection. */
/* The layer's full configuration with defaults filled in (the name points
 * into the model and lives as long as it). */
CNN_API cnn_status cnn_model_layer_spec(const cnn_model *m, int index, cnn_layer_spec *out);
CNN_API int cnn_model_layer_count(const cnn_model *m);
CNN_API cnn_shape cnn_model_input_shape(const cnn_model *m);
CNN_API cnn_shape cnn_model_output_shape(const cnn_model *m);
CNN_API const char *cnn_model_layer_name(const cnn_model *m, int index);
CNN_API const char *cnn_model_layer_type(const cnn_model *m, int index); /* "Conv2D", ... */
CNN_API cnn_shape cnn_model_layer_output_shape(const cnn_model *m, int index);
CNN_API int64_t cnn_model_layer_param_count(const cnn_model *m, int index);
CNN_API int64_t cnn_model_param_count(const cnn_model *m);
CNN_API int64_t cnn_model_trainable_param_count(const cnn_model *m);

/* A layer's weights in Keras's get_weights() order: which = 0 kernel, 1 bias
 * for Conv2D and Dense (Keras layouts: Conv2D kernel (kh, kw, in, filters),
 * Dense kernel (in, units)); see each config above for the other kinds
 * (BatchNormalization: gamma, beta, moving_mean, moving_variance). At most
 * CNN_MAX_LAYER_WEIGHTS per layer. Returns a view into the model (do not
 * free) or NULL if the layer has no such weight. */
#define CNN_MAX_LAYER_WEIGHTS 4
CNN_API float *cnn_model_layer_weights(cnn_model *m, int index, int which, int64_t *count);

/* Class names: names[k] labels output class k (a single sigmoid unit has
 * two classes: 0 and 1). They belong to the model: saved in its .cnn file
 * and shown by `cnn predict` and `cnn evaluate`. The model copies them; the
 * caller keeps its strings. Each name is 1..CNN_CLASS_NAME_MAX bytes of
 * UTF-8 without control characters, and names are unique; with layers,
 * count must be the output's class count (CNN_ERR_INVALID_ARGUMENT
 * otherwise, naming the field). count 0 (names may be NULL) removes them,
 * as adding a layer does (the output they label changes). */
#define CNN_CLASS_NAME_MAX 255
#define CNN_MAX_CLASS_NAMES 65536
CNN_API cnn_status cnn_model_set_class_names(cnn_model *m, const char *const *names, int count);
/* The number of class names (0 if none). names (may be NULL) receives the
 * model's array: read-only, owned by the model, valid until the names are
 * set again, a layer is added or the model is freed. */
CNN_API int cnn_model_class_names(const cnn_model *m, const char *const **names);
/* Length in bytes of the valid UTF-8 sequence at s (n >= 1 bytes left), 0
 * if there is none: overlong forms, surrogates and code points above
 * U+10FFFF are refused (RFC 3629), as in class names. */
CNN_API size_t cnn_utf8_length(const char *s, size_t n);

/* The classic Keras summary table. text_out receives a malloc'd string the
 * caller frees with free(). */
CNN_API cnn_status cnn_model_summary(const cnn_model *m, char **text_out);
/* Writes the summary to a caller-supplied stream. */
CNN_API cnn_status cnn_model_print_summary(const cnn_model *m, FILE *stream);

/* ---- Memory ----------------------------------------------------------------- */
/* What a model needs, in bytes, for one batch size. Training keeps every
 * layer's output for backward; inference keeps only two alternating
 * buffers. Nothing is allocated to compute this. */
typedef struct cnn_memory_estimate {
    int64_t parameters;            /* weights */
    int64_t gradients;             /* parameter gradients (training) */
    int64_t optimizer_state;       /* two slots per parameter (training) */
    int64_t activations_training;  /* every layer's output (+ dropout masks, and the
                                      pre-activation of silu, gelu, gelu_tanh,
                                      hard_silu and mish, which backward reads) */
    int64_t activation_gradients;  /* the two gradient buffers backward alternates */
    int64_t activations_inference; /* two alternating output buffers */
    int64_t workspace;             /* convolution scratch (bounded by the workspace limit) */
    int64_t batch_buffers;         /* a gathered batch of inputs and targets */
    int64_t training_total, inference_total;
    int64_t flops_per_example;     /* forward Conv2D and Dense, 2 per multiply-add */
} cnn_memory_estimate;
/* Sizes are computed with checked arithmetic: one that does not fit in 64
 * bits is INT64_MAX (never a wrapped-around value that would fit a budget). */
CNN_API cnn_status cnn_model_estimate_memory(const cnn_model *m, int batch, cnn_memory_estimate *out);

/* The memory budget: building, compiling or running a batch that would need
 * more fails before allocating, with the needed and the allowed bytes.
 * bytes 0 = the default, CNN_DEFAULT_MAX_MEMORY. */
CNN_API cnn_status cnn_model_set_max_memory(cnn_model *m, int64_t bytes);
CNN_API int64_t cnn_model_max_memory(const cnn_model *m);
/* Convolution scratch limit (im2col tiles), default 8 MiB; any image size
 * runs within it. 0 = default. */
CNN_API cnn_status cnn_model_set_workspace_limit(cnn_model *m, int64_t bytes);

/* Keras's dtype policies. MIXED_BFLOAT16 ("mixed_bfloat16"): Conv2D and
 * Dense multiply bfloat16 inputs (rounded to nearest even) with float32
 * sums, in forward and both backward products, on CPUs with AVX512_BF16
 * (vdpbf16ps); weights, activations, gradients, the loss and the optimizer
 * stay float32, and CPUs without the instruction compute in float32.
 * Results still do not depend on the thread count. Kept in .cnn files. */
typedef enum cnn_dtype_policy {
    CNN_DTYPE_POLICY_FLOAT32 = 0,
    CNN_DTYPE_POLICY_MIXED_BFLOAT16 = 1
} cnn_dtype_policy;
CNN_API cnn_status cnn_model_set_dtype_policy(cnn_model *m, cnn_dtype_policy policy);
CNN_API cnn_dtype_policy cnn_model_dtype_policy(const cnn_model *m);
/* "float32" / "mixed_bfloat16" (NULL for an unknown value), and back. */
CNN_API const char *cnn_dtype_policy_name(cnn_dtype_policy policy);
CNN_API cnn_status cnn_dtype_policy_from_name(const char *name, cnn_dtype_policy *out);
/* Whether this CPU runs mixed_bfloat16 in bfloat16 (else float32). */
CNN_API bool cnn_bfloat16_supported(void);

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

/* Names, as cnn_activation_name's: Keras's name of a value
 * ("sparse_categorical_crossentropy", "mean_squared_error"; "sgd", "adam",
 * "rmsprop"), NULL if it is not one; and the value of a name,
 * case-insensitive, with Keras's aliases and class names ("mse",
 * "SparseCategoricalCrossentropy"; "Adam", "RMSprop"), CNN_ERR_INVALID_ARGUMENT naming the expected names if
 * it is none. */
CNN_API const char *cnn_loss_name(cnn_loss loss);
CNN_API cnn_status cnn_loss_from_name(const char *name, cnn_loss *out);
CNN_API const char *cnn_optimizer_name(cnn_optimizer_kind kind);
CNN_API cnn_status cnn_optimizer_from_name(const char *name, cnn_optimizer_kind *out);

/* Zero fields take Keras's defaults: SGD lr 0.01, momentum 0; Adam lr 0.001,
 * beta_1 0.9, beta_2 0.999, epsilon 1e-7; RMSprop lr 0.001, rho 0.9,
 * epsilon 1e-7. Gradient clipping as Keras's optimizer arguments (0 = off;
 * not both): clipnorm rescales each weight tensor's gradient whose L2 norm
 * exceeds it to that norm; global_clipnorm rescales all gradients together
 * when their joint norm exceeds it. The gradients clipped include the L2
 * penalties' (kernel_l2), as the penalty is part of Keras's loss. */
typedef struct cnn_optimizer {
    cnn_optimizer_kind kind;
    float learning_rate;
    float momentum;  /* SGD, RMSprop */
    bool nesterov;   /* SGD */
    float beta_1, beta_2; /* Adam */
    float rho;       /* RMSprop */
    float epsilon;   /* Adam, RMSprop */
    float clipnorm, global_clipnorm;
} cnn_optimizer;
#define cnn_sgd(...) ((cnn_optimizer){.kind = CNN_OPTIMIZER_SGD, __VA_ARGS__})
#define cnn_adam(...) ((cnn_optimizer){.kind = CNN_OPTIMIZER_ADAM, __VA_ARGS__})
#define cnn_rmsprop(...) ((cnn_optimizer){.kind = CNN_OPTIMIZER_RMSPROP, __VA_ARGS__})

typedef struct cnn_compile_config {
    cnn_loss loss;
    cnn_optimizer optimizer; /* default: RMSprop, as Keras */
    bool from_logits;        /* Keras from_logits=True, for the three cross-entropy
                                losses: the model's output is logits (log-softmax /
                                log-sigmoid are applied inside the loss, stably);
                                accuracy is then taken on softmax/sigmoid of them */
} cnn_compile_config;
#define cnn_compile(...) ((cnn_compile_config){__VA_ARGS__})

/* Sets the loss and optimizer and resets the optimizer state. The metric is
 * accuracy (argmax for multi-class outputs, threshold 0.5 for one output).
 * CNN_ERR_SHAPE if the output is not one vector per example (add Flatten). */
CNN_API cnn_status cnn_model_compile(cnn_model *m, cnn_compile_config cfg);
/* The loss and optimizer (Keras defaults filled in) of a compiled model,
 * e.g. one loaded from a .cnn file; CNN_ERR_STATE if it is not compiled. */
CNN_API cnn_status cnn_model_compile_config(const cnn_model *m, cnn_compile_config *out);
/* Whether the compiled loss expects probabilities (a cross-entropy without
 * from_logits) while the last layer's activation is linear - logits, not
 * probabilities: training then stalls (Keras would warn too). Add softmax or
 * sigmoid, or compile with from_logits. False for an uncompiled model. */
CNN_API bool cnn_model_loss_expects_probabilities(const cnn_model *m);

/* ---- fit / evaluate / predict ----------------------------------------------- */
typedef enum cnn_progress_event {
    CNN_PROGRESS_EPOCH_BEGIN = 0,
    CNN_PROGRESS_BATCH_END = 1,
    CNN_PROGRESS_EPOCH_END = 2
} cnn_progress_event;

/* What a progress callback sees. Values not yet known are NaN. */
/* What ModelCheckpoint did at the end of an epoch (cnn_progress.checkpoint). */
typedef enum cnn_checkpoint_event {
    CNN_CHECKPOINT_NONE = 0,        /* no ModelCheckpoint, or not EPOCH_END */
    CNN_CHECKPOINT_SAVED = 1,       /* saved (save_best_only off: every epoch) */
    CNN_CHECKPOINT_IMPROVED = 2,    /* the monitored value improved: saved */
    CNN_CHECKPOINT_NOT_IMPROVED = 3 /* not saved */
} cnn_checkpoint_event;

typedef struct cnn_progress {
    cnn_progress_event event;
    int epoch, epochs;      /* 1-based */
    int64_t step, steps;    /* batches done in this epoch, batches per epoch */
    double elapsed_seconds; /* since the epoch began */
    double loss, accuracy;  /* running means over the epoch so far (the loss
                               includes the L2 penalties, as Keras's does) */
    double val_loss, val_accuracy; /* at EPOCH_END when validation is used */
    double learning_rate;   /* of the last update (after the schedule); at
                               EPOCH_END the rate the callbacks left */
    /* At EPOCH_END with a ModelCheckpoint: what it did, its path and
     * monitor, the monitored value of this epoch and the best before it
     * (NaN before the first). cnn_progress_checkpoint_line says it as Keras. */
    cnn_checkpoint_event checkpoint;
    const char *checkpoint_path;
    int checkpoint_monitor; /* a cnn_monitor (declared below) */
    double checkpoint_value, checkpoint_best;
} cnn_progress;

/* Return false to stop training (fit then returns CNN_ERR_INTERRUPTED after
 * finishing the current step). */
typedef bool (*cnn_progress_fn)(const cnn_progress *p, void *user);

/* ModelCheckpoint's line as Keras's verbose=1 prints it, for an EPOCH_END
 * with p->checkpoint set: "Epoch 3: val_accuracy improved from 0.97000 to
 * 0.98000, saving model to best.cnn", "Epoch 4: val_accuracy did not improve
 * from 0.98000", "Epoch 1: saving model to ckpt.cnn" (the first improvement:
 * "from None"). Writes at most cap bytes to buf (snprintf's rules) and
 * returns the line's length; 0 (and "") when there is nothing to say. */
CNN_API int cnn_progress_checkpoint_line(const cnn_progress *p, char *buf, size_t cap);

/* The ready console printer: user is a FILE* (stdout if NULL). On a terminal
 * it redraws a Keras progress bar in place; otherwise it prints one line per
 * epoch. */
CNN_API bool cnn_progress_console(const cnn_progress *p, void *user);

/* ---- Callbacks, learning-rate schedules and augmentation for fit ------------ */
/* The value a callback watches, as Keras's monitor= names it. val_* need
 * validation data. Losses improve downwards, accuracies upwards. */
typedef enum cnn_monitor {
    CNN_MONITOR_VAL_LOSS = 0, /* Keras's default */
    CNN_MONITOR_VAL_ACCURACY = 1,
    CNN_MONITOR_LOSS = 2,
    CNN_MONITOR_ACCURACY = 3
} cnn_monitor;
/* "val_loss", ... (NULL if monitor is not one); and back, with Keras's
 * short "acc" and "val_acc" accepted (CNN_ERR_INVALID_ARGUMENT naming the
 * expected names if name is none). */
CNN_API const char *cnn_monitor_name(cnn_monitor monitor);
CNN_API cnn_status cnn_monitor_from_name(const char *name, cnn_monitor *out);

/* EarlyStopping: stop when the monitored value has not improved by more
 * than min_delta for patience epochs; with restore_best_weights, the
 * weights (all, moving statistics too) of the best epoch are put back when
 * it stops (as Keras: not when the last epoch ends the run anyway). */
typedef struct cnn_early_stopping_config {
    bool enabled;
    cnn_monitor monitor;
    float min_delta;        /* default 0 */
    int patience;           /* default 0: stop at the first epoch without improvement */
    bool restore_best_weights;
} cnn_early_stopping_config;
#define cnn_early_stopping(...) ((cnn_early_stopping_config){.enabled = true, __VA_ARGS__})

/* ModelCheckpoint: cnn_model_save to path after every epoch, or with
 * save_best_only only after an epoch that improved the monitored value. */
typedef struct cnn_model_checkpoint_config {
    const char *path;       /* NULL = off */
    cnn_monitor monitor;
    bool save_best_only;
} cnn_model_checkpoint_config;
#define cnn_model_checkpoint(...) ((cnn_model_checkpoint_config){__VA_ARGS__})

/* ReduceLROnPlateau: after patience epochs without an improvement of more
 * than min_delta, learning_rate = max(learning_rate * factor, min_lr), then
 * cooldown epochs of rest. The reduced rate is the optimizer's (saved with
 * the model). */
typedef struct cnn_reduce_lr_on_plateau_config {
    bool enabled;
    cnn_monitor monitor;
    float factor;           /* default 0.1, in (0, 1) */
    int patience;           /* default 10 */
    float min_delta;        /* default 1e-4 */
    int cooldown;           /* default 0 */
    float min_lr;           /* default 0 */
} cnn_reduce_lr_on_plateau_config;
#define cnn_reduce_lr_on_plateau(...)                                             \
    ((cnn_reduce_lr_on_plateau_config){.enabled = true, __VA_ARGS__})

/* Keras's callbacks, run at the end of every epoch in this order:
 * ReduceLROnPlateau, EarlyStopping, ModelCheckpoint. Their counters start
 * afresh in every fit call (also when resuming), as in Keras. Keras's
 * TerminateOnNaN is always on here: a NaN or infinite loss or gradient
 * stops fit with CNN_ERR_NUMERIC before that step's update, so the weights
 * stay those of the last good step. */
typedef struct cnn_callbacks {
    cnn_early_stopping_config early_stopping;
    cnn_model_checkpoint_config model_checkpoint;
    cnn_reduce_lr_on_plateau_config reduce_lr_on_plateau;
} cnn_callbacks;

/* Learning-rate schedules over the optimizer's step count t (updates before
 * this one, saved with the model, so resumed runs follow the same rates),
 * lr0 the optimizer's learning_rate:
 *   step:        lr0 * decay_rate^floor(t / decay_steps)
 *                (Keras ExponentialDecay(staircase=True))
 *   exponential: lr0 * decay_rate^(t / decay_steps)  (Keras ExponentialDecay)
 *   cosine:      lr0 * ((1 - alpha) (1 + cos(pi min(t, T) / T)) / 2 + alpha),
 *                T = decay_steps, 0 = every step of this fit (Keras CosineDecay) */
typedef enum cnn_lr_schedule_kind {
    CNN_LR_CONSTANT = 0,
    CNN_LR_STEP = 1,
    CNN_LR_EXPONENTIAL = 2,
    CNN_LR_COSINE = 3
} cnn_lr_schedule_kind;
typedef struct cnn_lr_schedule {
    cnn_lr_schedule_kind kind;
    int64_t decay_steps;    /* step, exponential: required >= 1 */
    float decay_rate;       /* step, exponential: required, > 0 */
    float alpha;            /* cosine: final rate as a fraction of lr0, in [0, 1] */
} cnn_lr_schedule;
/* The rate the schedule gives at step t (total_steps: for cosine with
 * decay_steps 0). */
CNN_API double cnn_lr_schedule_rate(const cnn_lr_schedule *s, double lr0, int64_t t,
                            int64_t total_steps);

/* Data augmentation of images (rank 3 input), applied on the fly to each
 * gathered training batch (the data set is never copied or changed):
 * per image, a horizontal flip with probability 1/2 (Keras
 * RandomFlip("horizontal")), a shift of up to max_shift pixels along each
 * axis (pad with zeros + random crop), and a rotation by up to max_rotation
 * degrees either way about the centre (bilinear, zero fill). Each image's
 * draws depend only on (seed, epoch, step, position in the batch), so
 * resumed runs see the same images. Validation data are not augmented. */
typedef struct cnn_augmentation {
    bool horizontal_flip;
    int max_shift;          /* pixels, 0 = none */
    float max_rotation;     /* degrees, 0 = none, at most 180 */
    uint64_t seed;          /* 0 = derived from fit's seed */
} cnn_augmentation;

/* Data-parallel training: size processes (ranks) run fit on the same model
 * and data, and these hooks let them talk. The library has no network code
 * of its own: cnn_mpi.h fills the hooks from an MPI communicator (or supply
 * any other collective library). Every hook is collective - every rank
 * calls it, in the same order, with the same count - and returns CNN_OK
 * when every value holds the result on every rank, else a failure with
 * cnn_last_error() set. With it, fit:
 * - starts from rank 0's weights and optimizer state (broadcast);
 * - takes steps of batch_size * size examples from the epoch's shuffled
 *   order (the same on every rank: it depends only on (seed, epoch)), rank
 *   r the rows [r * batch_size, (r + 1) * batch_size) of each (the last,
 *   smaller step split as evenly as possible; a rank may get none);
 * - sums the gradients of all ranks (one allreduce over the parameter
 *   gradients per step, each weighted by its share of the step), so every
 *   update equals one process's with batch_size * size, and steps per
 *   epoch are ceil(n / (batch_size * size));
 * - sums the loss and accuracy for progress and history, and validates each
 *   rank on a share of the validation data;
 * - at every epoch's end averages the non-trainable weights (the moving
 *   statistics of BatchNormalization, which each rank updates from its own
 *   rows: as Keras's and PyTorch's data-parallel training without
 *   synchronised batch normalisation) and checks that the weights agree;
 * - lets only rank 0 write ModelCheckpoint files, and stops every rank
 *   when any rank's progress callback returns false.
 * A status that is not CNN_OK because of one rank alone (a file it cannot
 * write, memory) leaves the others waiting in their next hook: the caller
 * should then end the job (MPI_Abort). Dropout draws different masks on
 * each rank. */
typedef struct cnn_parallel {
    int rank, size;                /* this process, of size (>= 1) */
    /* values[i] = the sum over ranks of values[i], in place */
    cnn_status (*allreduce_sum)(void *ctx, float *values, int64_t count);
    cnn_status (*allreduce_sum_double)(void *ctx, double *values, int64_t count);
    /* values = rank 0's values, in place */
    cnn_status (*broadcast)(void *ctx, float *values, int64_t count);
    void *ctx;                     /* passed to each hook */
} cnn_parallel;

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
    cnn_callbacks callbacks;
    cnn_lr_schedule lr_schedule;
    cnn_augmentation augmentation;
    const cnn_parallel *parallel; /* NULL = this process alone; see cnn_parallel */
} cnn_fit_config;
#define cnn_fit(...) ((cnn_fit_config){__VA_ARGS__})

/* Per-epoch metrics of the epochs fit ran; row i is epoch first_epoch + i
 * (1-based). val_* are NaN without validation data. */
typedef struct cnn_history {
    int epochs, first_epoch;
    double *loss, *accuracy, *val_loss, *val_accuracy;
    double *learning_rate;  /* per epoch: the rate the epoch's last update used */
    int stopped_epoch;      /* EarlyStopping stopped after this epoch (0 = it did not) */
    int restored_epoch;     /* the epoch whose weights it restored (0 = none) */
} cnn_history;
CNN_API void cnn_history_free(cnn_history *h);

/* Trains the model. history_out (may be NULL) receives the per-epoch
 * metrics, also when fit stops early; free it with cnn_history_free.
 * Each epoch's shuffling depends only on (seed, epoch), dropout masks on
 * (seed, optimizer step), augmentation on (seed, epoch, step) and the
 * learning-rate schedule on the optimizer step, so a resumed run
 * (initial_epoch/initial_step from cnn_model_training_position of a saved
 * model) gives the same weights as an uninterrupted one. A run that
 * EarlyStopping ends returns CNN_OK (see history->stopped_epoch). */
CNN_API cnn_status cnn_model_fit(cnn_model *m, const cnn_tensor *x, const cnn_tensor *y,
                         cnn_fit_config cfg, cnn_history **history_out);
/* How fit divides n examples, so a caller can say it beforehand: the
 * first *train train, the last *val = n - *train validate, as Keras's
 * floor(n * (1 - validation_split)) in double, the float read as the
 * shortest decimal that gives it (0.1f as 0.1: 8000 -> 7200 + 800); in
 * *steps optimizer steps per epoch of examples_per_step (batch_size, times
 * the ranks when data-parallel; the last step is short). Returns
 * CNN_ERR_INVALID_ARGUMENT if a part would be empty, with *train and *val
 * the sizes it would have had and *steps 0. */
CNN_API cnn_status cnn_fit_split_sizes(int64_t n, float validation_split, int64_t examples_per_step,
                               int64_t *train, int64_t *val, int64_t *steps);
/* Epochs completed and steps done in the next epoch by fit so far (saved in
 * the model file, for resuming). */
CNN_API void cnn_model_training_position(const cnn_model *m, int *epoch, int64_t *step);
/* Mean loss and accuracy over (x, y) in inference mode; the loss includes
 * the L2 penalties (kernel_l2), as Keras's does. batch_size 0 = 32. */
CNN_API cnn_status cnn_model_evaluate(cnn_model *m, const cnn_tensor *x, const cnn_tensor *y,
                              int batch_size, double *loss, double *accuracy);
/* Outputs (probabilities after softmax; logits for a linear last layer, also
 * when compiled with from_logits, as Keras) for every example of x:
 * a new tensor (n, output shape...). batch_size 0 = 32. */
CNN_API cnn_status cnn_model_predict(cnn_model *m, const cnn_tensor *x, int batch_size,
                             cnn_tensor **out);

/* ---- Saving and loading ------------------------------------------------------ */
/* The model file (.cnn): architecture, weights, and when compiled the loss,
 * optimizer settings and state and the training position, so training can
 * resume. Little-endian fixed-width fields, magic and version first, a
 * checksum. Saving is atomic: a temporary file in the same directory,
 * fsync, rename, fsync of the directory; a failed or interrupted save leaves
 * an existing file at path untouched. */
CNN_API cnn_status cnn_model_save(cnn_model *m, const char *path);
/* Every size is checked against the file length and for overflow before
 * any allocation; errors name the file and the field. */
CNN_API cnn_status cnn_model_load(const char *path, cnn_model **out);
/* The CRC-32 cnn_model_save would write as the file's checksum, computed
 * without writing: models with equal checksums (almost surely) have the
 * same layers and settings, weights, and when compiled the same loss,
 * optimizer settings and state and training position. */
CNN_API cnn_status cnn_model_checksum(const cnn_model *m, uint32_t *out);
CNN_API cnn_status cnn_model_load_memory(const void *bytes, size_t size, const char *name,
                                 cnn_model **out);

/* ---- Model descriptions ---------------------------------------------------------- */
/* A model written by hand, one layer per line with Keras names and
 * arguments, or a Keras Sequential architecture from model.to_json()
 * (detected from the content). Errors in a text description, and JSON
 * syntax errors, give file:line:column; other JSON errors name the layer
 * (index, name, class). Each says what was expected. The model is returned
 * uncompiled. The format: docs/DESCRIPTION_FORMAT.md. */
CNN_API cnn_status cnn_model_from_description(const char *path, cnn_model **out);
CNN_API cnn_status cnn_model_from_description_memory(const char *text, size_t size, const char *name,
                                             cnn_model **out);

/* ---- Keras files ------------------------------------------------------------------ */
/* Keras's own model files, read and written without Python:
 * - legacy HDF5 .h5 (model.save("m.h5"), Keras 1/2 and Keras 3's legacy
 *   writer): root attributes model_config, training_config, keras_version;
 *   weights under model_weights/<layer>/ following each group's weight_names;
 * - Keras 3 .keras (model.save("m.keras"), also tf.keras 2.13+): a zip of
 *   config.json, metadata.json and model.weights.h5.
 * Supported: Sequential models of the layers above (an InputLayer first is
 * read as the input shape). Anything else - Lambda and custom layers,
 * functional graphs, settings the library does not compute (channels_first,
 * frozen layers, ...) - is refused with a message naming the layer; nothing
 * in a file is executed. docs/KERAS.md has the details. */
typedef enum cnn_keras_format {
    CNN_KERAS_H5 = 1,   /* legacy HDF5 .h5 */
    CNN_KERAS_ZIP = 2   /* Keras 3 .keras */
} cnn_keras_format;

/* What a load found besides the model. */
typedef struct cnn_keras_info {
    cnn_keras_format format;
    char keras_version[32];    /* as the file records it; "" if it does not */
    bool has_training_config;  /* the file names an optimizer and a loss */
    bool compiled;             /* the model was compiled with them */
    bool optimizer_state;      /* Adam's moments and step count were restored too */
    char not_compiled[256];    /* has_training_config && !compiled: why */
    char not_restored[256];    /* compiled with Adam, state present, !optimizer_state: why */
} cnn_keras_info;

/* Loads a .h5 or .keras file (told apart by content) with its weights.
 * When the file has a training config with an optimizer and loss the
 * library has (SGD, Adam, RMSprop; the four losses), the model comes back
 * compiled with them, and with Adam's state when the file holds it (fit
 * then continues where Keras stopped); otherwise uncompiled. info may be
 * NULL. Errors name the file, the layer or weight and what was expected:
 * a shape that does not match the architecture, a missing member or
 * group, a truncated or corrupted file. */
CNN_API cnn_status cnn_model_load_keras(const char *path, cnn_model **out, cnn_keras_info *info);
/* Same from memory (for fuzzing and embedded use); name is used in errors. */
CNN_API cnn_status cnn_model_load_keras_memory(const void *bytes, size_t size, const char *name,
                                       cnn_model **out, cnn_keras_info *info);
/* cnn_model_load_keras behind a wall, for files from others (the cnn tool
 * reads every Keras file so). libhdf5 crashes and loops forever on some
 * damaged .h5 data (SECURITY.md); cnn_model_load_keras runs it in the
 * calling process, so such a file kills or hangs the caller. This reads
 * the file in a child process (fork; address space, CPU time, no new files)
 * and takes the model back through the checked .cnn loader: a crash is
 * CNN_ERR_IO "reading FILE: the HDF5 library crashed (signal 11)", a hang
 * "... gave no answer in 10 s" after timeout_seconds of wall clock (0 = 10
 * s). The process must be able to fork; costs a fork and a copy of the
 * model (SECURITY.md has the measurements). */
CNN_API cnn_status cnn_model_load_keras_isolated(const char *path, double timeout_seconds,
                                         cnn_model **out, cnn_keras_info *info);
/* Writes the model as Keras 3 writes a .keras file (stored zip: metadata.json,
 * config.json, model.weights.h5 with layers/<class key>/vars/<i> and, when
 * compiled, the compile config and optimizer state), for
 * keras.saving.load_model(). Atomic, as cnn_model_save. */
CNN_API cnn_status cnn_model_save_keras(cnn_model *m, const char *path);
/* Writes the model as a legacy Keras .h5 file (model_config in Keras 2's
 * form, model_weights/<layer>/<layer>/kernel:0 ..., training_config when
 * compiled). Atomic. */
CNN_API cnn_status cnn_model_save_keras_h5(cnn_model *m, const char *path);

/* ---- Opening a model of any format ---------------------------------------------- */
typedef enum cnn_model_format {
    CNN_MODEL_FORMAT_DESCRIPTION = 1, /* text or Keras JSON (cnn_model_from_description) */
    CNN_MODEL_FORMAT_CNN = 2,         /* the library's .cnn (cnn_model_load) */
    CNN_MODEL_FORMAT_KERAS_H5 = 3,    /* legacy Keras HDF5 (cnn_model_load_keras) */
    CNN_MODEL_FORMAT_KERAS_ZIP = 4,   /* Keras 3 .keras (cnn_model_load_keras) */
    CNN_MODEL_FORMAT_QUANTIZED = 5    /* an int8 model, "CNNQUANT" (cnn_qmodel_load) */
} cnn_model_format;
/* The format of the file at path, told by its content alone (the name
 * plays no part): the .cnn magic "CNNMODEL", HDF5's signature (at offset 0,
 * 512, 1024, ...), a zip archive ("PK"); anything else is a description.
 * The file is opened as every reader here opens: a FIFO, directory or
 * device is refused (CNN_ERR_IO), never waited on. */
CNN_API cnn_status cnn_model_file_format(const char *path, cnn_model_format *out);
/* Loads a model of any of these formats with the matching loader: a Keras
 * file through cnn_model_load_keras_isolated (declared below; default
 * timeout), as files from others should be read; a description comes back
 * uncompiled with random weights (seed it with cnn_model_set_seed before
 * training). format and keras may be NULL; keras is filled for a Keras
 * file and zeroed otherwise. */
CNN_API cnn_status cnn_model_open(const char *path, cnn_model **out, cnn_model_format *format,
                          cnn_keras_info *keras);

/* ---- Export to C (docs/DEPLOY.md) ------------------------------------------ */
/* What cnn_model_export_c wrote. */
typedef struct cnn_export_info {
    int64_t arena_bytes;   /* NAME_ARENA_BYTES: activations, from the memory planner */
    int64_t weight_bytes;  /* the model's parameters as float32 */
    int test_vectors;      /* in NAME_test.c */
} cnn_export_info;
/* Writes dir/NAME.h, dir/NAME.c and dir/NAME_test.c (dir is made if
 * missing): the model's inference as C99 that needs nothing but a compiler
 * (no malloc, stdio or libm; weights as const arrays; one static arena or
 * the caller's), with `int NAME_predict(const float *input, float *output)`,
 * and test vectors from cnn_model_predict. name (NULL = "model") must be a C
 * identifier; a target that exists and is not a regular file is refused; a
 * layer kind or activation with no exported kernel is refused naming the
 * layer and its kind (CNN_ERR_INVALID_ARGUMENT), before anything is
 * written. Each file is written atomically. info may be NULL. */
CNN_API cnn_status cnn_model_export_c(cnn_model *m, const char *dir, const char *name,
                                      cnn_export_info *info);
/* The same files for the model quantized to int8 (docs/QUANTIZATION.md),
 * calibrated on the first count examples of calibration (0 = all; NULL =
 * 64 inputs uniform in [0, 1), which sizes the model but does not keep its
 * accuracy); the first three are the test vectors, whose int8 outputs
 * NAME_test.c checks bit for bit against libcnn's. Adds
 * `int NAME_predict_int8(const int8_t *input, int8_t *output)`. A layer
 * the quantizer cannot take is refused by name. Chains and graphs (Add,
 * Concatenate, ZeroPadding2D, global pooling, tables); the arena is the
 * quantizer's memory plan (cnn_qmodel_arena_bytes). */
CNN_API cnn_status cnn_model_export_c_int8(cnn_model *m, const cnn_tensor *calibration,
                                           int64_t count, const char *dir, const char *name,
                                           cnn_export_info *info);

/* ---- Data sets that stream from files ----------------------------------------- */
/* A data set of examples read on demand: a directory of class folders
 * (Keras's image_dataset_from_directory), a CSV list of files, or tensors
 * (an IDX pair). Training from it (cnn_model_fit_dataset) reads and decodes
 * the files in background threads into a bounded queue of ready batches,
 * so the images never have to fit in memory. A data set is used by one fit
 * or evaluate at a time (not shared between threads while streaming). */
typedef struct cnn_dataset cnn_dataset;

typedef enum cnn_label_mode {
    CNN_LABEL_INT = 0,         /* the class index (n): sparse categorical loss */
    CNN_LABEL_CATEGORICAL = 1, /* one-hot (n, classes) */
    CNN_LABEL_BINARY = 2       /* 0 or 1 (n, 1); exactly two classes */
} cnn_label_mode;
typedef enum cnn_color_mode {
    CNN_COLOR_RGB = 0,         /* Keras's default: 3 channels */
    CNN_COLOR_GRAYSCALE = 1,
    CNN_COLOR_RGBA = 2
} cnn_color_mode;
typedef enum cnn_subset {
    CNN_SUBSET_ALL = 0,        /* every file (validation_split must be 0) */
    CNN_SUBSET_TRAINING = 1,   /* the first files after the shuffle */
    CNN_SUBSET_VALIDATION = 2  /* the last int(validation_split * n) files */
} cnn_subset;

/* Called while a directory is scanned: files found so far. */
typedef void (*cnn_dataset_scan_fn)(int64_t files, void *user);

typedef struct cnn_dataset_config {
    cnn_label_mode label_mode;
    cnn_color_mode color_mode;
    int image_size[2];         /* (rows, cols) every image is resized to, bilinear
                                  (half-pixel centres, no antialiasing: Keras's
                                  default); default (256, 256) */
    bool crop_to_aspect_ratio; /* crop the centre to the target's aspect ratio first */
    bool no_shuffle;           /* Keras shuffle=False: keep the listing order */
    uint32_t seed;             /* the file shuffle: NumPy's RandomState(seed).shuffle,
                                  as Keras does it, so the split has the same files */
    float validation_split;    /* with subset: the last int(split * n) files validate */
    cnn_subset subset;
    bool follow_links;         /* descend into symlinked directories (Keras follow_links) */
    float scale;               /* pixels 0..255 are multiplied by it; 0 = divided by 255 */
    bool skip_bad_images;      /* a file that does not decode is skipped and counted
                                  (cnn_dataset_skipped), else it is an error naming it */
    int random_crop[2];        /* (rows, cols), at most image_size: Keras's RandomCrop
                                  after the resize - a random window per example in
                                  cnn_model_fit_dataset (depending only on fit's seed,
                                  the epoch, step and row), the centre one elsewhere
                                  (evaluation, validation, cnn_dataset_read); the
                                  examples then have this size. 0 = none */
    int workers;               /* decode threads; 0 = the number of cores, at most 8 */
    int64_t cache_bytes;       /* keep decoded images up to this many bytes (Keras's
                                  .cache()); 0 = none */
    cnn_dataset_scan_fn scan_progress; /* NULL = silent */
    void *scan_user;
    int64_t max_decode_bytes;  /* what decoding one image may allocate (the decoder's
                                  buffers and pixels): a file declaring more is refused
                                  (CNN_ERR_NO_MEMORY, naming it, its size and this)
                                  before the allocation, in cnn_dataset_read and in
                                  fit/evaluate (there also within what the model's
                                  budget leaves); 0 = CNN_DEFAULT_MAX_DECODE_BYTES */
} cnn_dataset_config;
/* Default max_decode_bytes: 96 MiB, a 24-megapixel RGBA photo (a large
 * JPEG is decoded at 1/2, 1/4 or 1/8 scale when the target is smaller). */
#define CNN_DEFAULT_MAX_DECODE_BYTES ((int64_t)96 << 20)
#define cnn_dataset_options(...) ((cnn_dataset_config){__VA_ARGS__})

/* The file types a directory scan takes (Keras's): .bmp .gif .jpeg .jpg
 * .png, any case; other files are ignored. */
/* A directory of class folders: class_names are the sorted names of the
 * subdirectories (not starting with '.'), labels their indices; each class
 * folder is walked recursively, directories sorted by path and files by
 * name, as Keras's index_directory. Then, unless no_shuffle, the files are
 * shuffled with NumPy's RandomState(seed) and split. Nothing is decoded
 * here. No image files, a binary label_mode without exactly two classes,
 * or a split that leaves a part empty is an error. */
CNN_API cnn_status cnn_dataset_from_directory(const char *dir, cnn_dataset_config cfg, cnn_dataset **out);
/* A CSV list, one "path,label" a line (a first line "path,label" is a
 * header; the label follows the last comma, so a path may hold commas; no
 * quoting); paths relative to the list's directory. Labels are class names
 * (sorted, as folders) or, when every label is an integer >= 0, the class
 * indices themselves. Shuffle and split as above. */
CNN_API cnn_status cnn_dataset_from_list(const char *csv_path, cnn_dataset_config cfg, cnn_dataset **out);
/* In-memory examples: x (n, rows, cols, channels) already scaled, y (n)
 * integer labels in [0, classes) (classes 0 = the largest label + 1). Both
 * are copied. Shuffle and split as above; image_size, color_mode and scale
 * are ignored. */
CNN_API cnn_status cnn_dataset_from_tensors(const cnn_tensor *x, const cnn_tensor *y, int classes,
                                    cnn_dataset_config cfg, cnn_dataset **out);
/* An IDX pair (images, labels), as cnn_dataset_load_idx reads them, pixels
 * scaled as cfg.scale says, rank 3 images given a channel axis. */
CNN_API cnn_status cnn_dataset_from_idx(const char *images, const char *labels, cnn_dataset_config cfg,
                                cnn_dataset **out);
CNN_API void cnn_dataset_free(cnn_dataset *ds);

/* Examples in the data set (after the split). */
CNN_API int64_t cnn_dataset_count(const cnn_dataset *ds);
/* One example's shape (rows, cols, channels) and its target's length. */
CNN_API cnn_shape cnn_dataset_element_shape(const cnn_dataset *ds);
CNN_API int64_t cnn_dataset_target_size(const cnn_dataset *ds);
CNN_API int cnn_dataset_class_count(const cnn_dataset *ds);
/* Class k's name (owned by the data set), NULL out of range. */
CNN_API const char *cnn_dataset_class_name(const cnn_dataset *ds, int k);
/* Files of class k in this data set (after the split). */
CNN_API int64_t cnn_dataset_class_files(const cnn_dataset *ds, int k);
/* Example i's file (NULL for tensors) and class index, in the data set's order. */
CNN_API const char *cnn_dataset_file(const cnn_dataset *ds, int64_t i);
CNN_API int cnn_dataset_label(const cnn_dataset *ds, int64_t i);
/* Files skipped as bad so far (skip_bad_images), and the i-th of them in
 * the data set's order. */
CNN_API int64_t cnn_dataset_skipped(const cnn_dataset *ds);
CNN_API const char *cnn_dataset_skipped_file(const cnn_dataset *ds, int64_t i);
/* Examples [start, start + count) decoded into x (count * element size
 * floats) and y (count * target size), in the calling thread. A bad file
 * is an error even with skip_bad_images. */
CNN_API cnn_status cnn_dataset_read(cnn_dataset *ds, int64_t start, int64_t count, float *x, float *y);

/* cnn_model_fit from a data set: each step takes the next batch the
 * decode threads have ready. The epoch's order depends only on (seed,
 * epoch) as in cnn_model_fit, so the same files in the same order give the
 * same weights, bit for bit, as cnn_model_fit on them held in memory,
 * whatever the number of decode threads; and a resumed run (initial_epoch,
 * initial_step) starts the stream at the batch it stopped at. validation
 * (may be NULL) is evaluated after each epoch; cfg.validation_split and
 * validation_x/y must be unset, and cfg.parallel NULL. The queue, the
 * cache and the decode buffers count in the model's memory budget. */
CNN_API cnn_status cnn_model_fit_dataset(cnn_model *m, cnn_dataset *train, cnn_dataset *validation,
                                 cnn_fit_config cfg, cnn_history **history_out);
/* cnn_model_evaluate over a data set, streamed. */
CNN_API cnn_status cnn_model_evaluate_dataset(cnn_model *m, cnn_dataset *ds, int batch_size,
                                      double *loss, double *accuracy);

/* ---- int8 quantized models (docs/QUANTIZATION.md) --------------------------- */
/* Post-training quantization in TensorFlow Lite's scheme: weights int8 per
 * output channel, symmetric; activations int8 per tensor, asymmetric; int32
 * biases; rescaling by fixed-point multiplier and shift. A quantized model
 * runs inference only, on integer kernels (portable C, AVX2 and AVX-512
 * VNNI give the same integers). It is its own object, independent of the
 * float model it came from; the same thread rules as a cnn_model apply. */
typedef struct cnn_qmodel cnn_qmodel;
#define CNN_QUANTIZE_DEFAULT_EXAMPLES 500
/* Quantizes m (a chain or a graph; unchanged, but its forward buffers are
 * used) with the first count examples of calib, shaped (n, the model's
 * input shape): the float model runs over them and the range of every
 * tensor is recorded. count 0 = CNN_QUANTIZE_DEFAULT_EXAMPLES; fewer
 * examples than count = all of them. Layers: Conv2D, DepthwiseConv2D,
 * Dense, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D,
 * GlobalMaxPooling2D, Add (two inputs), Concatenate (last axis),
 * ZeroPadding2D, BatchNormalization right after a linear Conv2D,
 * DepthwiseConv2D or Dense (folded), ReLU/ReLU6 and other elementwise
 * activations, Flatten, Reshape, Dropout, and a softmax at the end (in
 * float). Anything else is refused with CNN_ERR_INVALID_ARGUMENT naming the
 * layer and its kind; CNN_ERR_SHAPE for calibration data of another shape,
 * CNN_ERR_NUMERIC for non-finite values. Free with cnn_qmodel_free. */
CNN_API cnn_status cnn_qmodel_create(cnn_qmodel **out, cnn_model *m, const cnn_tensor *calib,
                                     int64_t count);
/* The same with the first count examples of a data set (any source: IDX,
 * a folder of class folders, a list), read in the calling thread. */
CNN_API cnn_status cnn_qmodel_create_dataset(cnn_qmodel **out, cnn_model *m, cnn_dataset *calib,
                                             int64_t count);
/* How calibration turns the values a tensor took into its int8 range
 * (docs/QUANTIZATION.md section 2a, the exact rules). MINMAX (the default,
 * TFLite's): the smallest and largest value. PERCENTILE: the tails beyond
 * the percentile-th percentile on each side are clipped (percentile 0 =
 * 99.99). MSE: the range that minimizes the expected squared quantization
 * error (clipping plus rounding), as PyTorch's HistogramObserver. The
 * last two use a 2048-bin histogram over the min/max range (a second pass
 * over the calibration examples); the input and the logits of a final
 * softmax keep min/max. */
typedef enum {
    CNN_QCALIB_MINMAX = 0,
    CNN_QCALIB_PERCENTILE = 1,
    CNN_QCALIB_MSE = 2
} cnn_qcalib_method;
typedef struct {
    cnn_qcalib_method method;
    double percentile; /* PERCENTILE only: 50..100, 0 = 99.99 */
} cnn_qcalib_options;
/* cnn_qmodel_create and _create_dataset with a calibration method (NULL =
 * min/max); CNN_ERR_INVALID_ARGUMENT for an unknown method or percentile. */
CNN_API cnn_status cnn_qmodel_create_calibrated(cnn_qmodel **out, cnn_model *m,
                                                const cnn_tensor *calib, int64_t count,
                                                const cnn_qcalib_options *how);
CNN_API cnn_status cnn_qmodel_create_dataset_calibrated(cnn_qmodel **out, cnn_model *m,
                                                        cnn_dataset *calib, int64_t count,
                                                        const cnn_qcalib_options *how);
/* The range [*lo, *hi] the method picks for n values (widened to contain
 * 0, as every calibrated range is): the rule calibration applies to each
 * tensor, for checking another implementation against. */
CNN_API cnn_status cnn_qcalib_range(const cnn_qcalib_options *how, const float *x, int64_t n,
                                    float *lo, float *hi);
CNN_API void cnn_qmodel_free(cnn_qmodel *q);
/* Worker threads for predict and evaluate (default: the float model's
 * count, 1 after loading); results do not depend on it.
 * CNN_ERR_INVALID_ARGUMENT outside 1..1024. */
CNN_API cnn_status cnn_qmodel_set_threads(cnn_qmodel *q, int threads);
CNN_API cnn_shape cnn_qmodel_input_shape(const cnn_qmodel *q);
CNN_API cnn_shape cnn_qmodel_output_shape(const cnn_qmodel *q);
/* Outputs for every example of x (n, input shape) as float: out receives
 * n * (output size) values, probabilities when the model ends in softmax. */
CNN_API cnn_status cnn_qmodel_predict(cnn_qmodel *q, const cnn_tensor *x, float *out);
/* Mean loss and accuracy over (x, y) as cnn_model_evaluate computes them
 * for a classifier: y holds class indices (n) or (n, 1), or one-hot rows
 * (n, classes); the loss is the cross-entropy of the output probabilities
 * (a softmax output; a single sigmoid unit: binary). */
CNN_API cnn_status cnn_qmodel_evaluate(cnn_qmodel *q, const cnn_tensor *x, const cnn_tensor *y,
                                       double *loss, double *accuracy);
CNN_API cnn_status cnn_qmodel_evaluate_dataset(cnn_qmodel *q, cnn_dataset *ds, double *loss,
                                               double *accuracy);
/* Sizes for a summary: the int8 weights with their int32 biases and
 * multipliers, and the activation arena one example needs (the planner
 * reuses the memory of tensors no longer read). */
CNN_API int64_t cnn_qmodel_weight_bytes(const cnn_qmodel *q);
CNN_API int64_t cnn_qmodel_arena_bytes(const cnn_qmodel *q);
/* The parameter count of the float model it was quantized from (float32:
 * 4 bytes each), kept in the file for comparison. */
CNN_API int64_t cnn_qmodel_float_params(const cnn_qmodel *q);
/* Ops in the int8 model (after fusing) and op k's kind ("Conv2D", "Add", ...)
 * and float layer name; NULL out of range. */
CNN_API int cnn_qmodel_op_count(const cnn_qmodel *q);
CNN_API const char *cnn_qmodel_op_type(const cnn_qmodel *q, int k);
CNN_API const char *cnn_qmodel_op_name(const cnn_qmodel *q, int k);
/* The quantized model file (docs/QUANTIZATION.md, "File format"): magic
 * "CNNQUANT", version, every op with its int8 weights, a CRC-32. Saving is
 * atomic; loading checks every field and names the file, the field and what
 * was expected (CNN_ERR_FORMAT). */
CNN_API cnn_status cnn_qmodel_save(const cnn_qmodel *q, const char *path);
CNN_API cnn_status cnn_qmodel_load(const char *path, cnn_qmodel **out);
/* The same from bytes in memory; name labels messages. */
CNN_API cnn_status cnn_qmodel_load_memory(const void *bytes, size_t size, const char *name,
                                          cnn_qmodel **out);
/* cnn_model_export_c_int8's C files for a model already quantized (a
 * `cnn quantize` file); its three test vectors are inputs uniform in [0, 1). */
CNN_API cnn_status cnn_qmodel_export_c(cnn_qmodel *q, const char *dir, const char *name,
                                       cnn_export_info *info);

/* ---- Lower level: one step at a time (for tests and custom loops) ---------- */
/* Forward pass of a batch; training enables dropout. The returned pointer
 * views the model's output buffer (valid until the next call). */
CNN_API cnn_status cnn_model_forward(cnn_model *m, const cnn_tensor *x, bool training,
                             const float **output);
/* Loss of the last forward pass against y (without L2 penalties), and
 * backward pass accumulating (+=) parameter gradients. input_grad (may be NULL) receives dLoss/dInput
 * for the whole batch (same size as x). */
CNN_API cnn_status cnn_model_backward(cnn_model *m, const cnn_tensor *y, double *loss,
                              float *input_grad);
/* After cnn_model_forward: layer index's output for the batch, (batch,
 * layer output shape), after its activation (the feature maps). A view into
 * the model, valid until the next call; NULL before any forward pass. */
CNN_API const float *cnn_model_layer_output(const cnn_model *m, int index);
/* Parameter gradients in the same layout as cnn_model_layer_weights. */
CNN_API float *cnn_model_layer_gradients(cnn_model *m, int index, int which, int64_t *count);
CNN_API void cnn_model_zero_gradients(cnn_model *m);
/* One optimizer update from the accumulated gradients, at the optimizer's
 * learning rate; first the L2 penalties' gradients (2 * kernel_l2 * w) are
 * added to them and they are clipped (clipnorm), in place. */
CNN_API cnn_status cnn_model_apply_gradients(cnn_model *m);

#ifdef __cplusplus
}
#endif
#endif /* CNN_H */
