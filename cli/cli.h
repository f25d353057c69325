/* The cnn command-line tool: what its files share. The tool uses only the
 * public API (cnn.h); it is the one part of the project that prints for the
 * user and decides exit codes. Helpers that can fail print their own
 * message ("cnn <command>: ...") on stderr and return an exit code. */
#ifndef CNN_CLI_H
#define CNN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cnn.h"

/* Exit codes (documented in `cnn --help` and docs/CLI.md). */
enum {
    CLI_OK = 0,
    CLI_FAILURE = 1,     /* a bad file, data that does not fit, out of memory, ... */
    CLI_USAGE = 2,       /* unknown option, missing or invalid argument */
    CLI_INTERRUPTED = 130 /* Ctrl-C (128 + SIGINT), after train saved a checkpoint */
};
/* cli_parse's result when --help was printed: the command exits 0. */
#define CLI_HELP_SHOWN (-1)

/* ---- Subcommands: argv[0] is the program, argv[1] the command name ------- */
int cli_summary(int argc, char **argv);
int cli_train(int argc, char **argv);
int cli_evaluate(int argc, char **argv);
int cli_predict(int argc, char **argv);
int cli_visualize(int argc, char **argv);
int cli_export(int argc, char **argv);
int cli_quantize(int argc, char **argv);

/* ---- args.c: options and messages -------------------------------------------- */
typedef enum cli_opt_type {
    CLI_OPT_FLAG,   /* bool */
    CLI_OPT_STRING, /* const char * */
    CLI_OPT_INT,    /* int, within [min, max] */
    CLI_OPT_REAL,   /* double, within [min, max] */
    CLI_OPT_U64,    /* uint64_t */
    CLI_OPT_BYTES   /* int64_t, with an optional K, M or G suffix (powers of 1024) */
} cli_opt_type;

typedef struct cli_option {
    const char *name; /* "epochs" for --epochs; NULL ends a table */
    cli_opt_type type;
    void *dest;
    double min, max;  /* numeric range, inclusive (INT, REAL); BYTES: min only */
    bool *given;      /* optional: set to true when the option appears */
} cli_option;

/* Parses args (what follows the command name) into the option table and
 * the positional list pos (capacity nargs). Accepts --name value,
 * --name=value, -h/--help and "--" before positionals. Checks the number of
 * positionals against [min_pos, max_pos]. Returns CLI_OK, CLI_USAGE (after
 * printing why) or CLI_HELP_SHOWN (after printing help to stdout). */
int cli_parse(const char *cmd, const char *help, int nargs, char **args, const cli_option *opts,
              int min_pos, int max_pos, const char **pos, int *npos);
/* "cnn CMD: <message>" + a hint to run --help; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "cnn CMD: " + cnn_last_error(); returns CLI_FAILURE. */
int cli_fail(const char *cmd);
/* "cnn CMD: <message>"; returns CLI_FAILURE. */
int cli_failf(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "12345" or "1.5M" (K, M, G: powers of 1024, also KB/KiB ...). */
bool cli_parse_bytes(const char *text, int64_t *out);
/* 1536 -> "1.50 KiB". */
void cli_format_bytes(int64_t bytes, char *buf, size_t cap);
/* 1234567 -> "1,234,567". */
void cli_format_count(int64_t n, char *buf, size_t cap);
/* 2.4e9 -> "2.40 GFLOP". */
void cli_format_flops(int64_t flops, char *buf, size_t cap);
/* "(28, 28, 1)" or "(10,)". */
void cli_format_shape(cnn_shape s, char *buf, size_t cap);
/* "28x28x1" (rows x cols x channels) or "10". */
void cli_format_size(cnn_shape s, char *buf, size_t cap);

/* ---- model.c: opening a model -------------------------------------------------- */
/* Opens a description (text or Keras JSON), a saved .cnn model or a Keras
 * .h5/.keras file, whichever the content is (cnn_model_open). seed is
 * applied to a description before its weights exist; max_memory (0 =
 * default) and threads (0 = all cores) to all. */
int cli_model_open(const char *cmd, const char *path, uint64_t seed, int64_t max_memory,
                   int threads, cnn_model **out);
/* True if path is a saved model (.cnn, Keras .h5 or .keras) by its content,
 * as the library tells (a FIFO or an unreadable file is not). */
bool cli_model_is_saved(const char *path);
/* cli_model_open that also says what a Keras file held (keras may be NULL;
 * it is zeroed for other files). */
int cli_model_open_keras(const char *cmd, const char *path, uint64_t seed, int64_t max_memory,
                         int threads, cnn_model **out, cnn_keras_info *keras);
/* Prints what a loaded Keras file brought besides the weights: its Keras
 * version and whether its training config (optimizer, loss, Adam's state)
 * is used. Nothing for other files. */
void cli_keras_describe(const char *path, const cnn_keras_info *keras);
/* For commands whose results need trained weights (predict, evaluate,
 * visualize): when path is a description, says on stderr that its weights
 * are random and names a saved model beside it (NAME.cnn, NAME.keras,
 * NAME.h5 for NAME.model) if there is one. */
void cli_warn_untrained(const char *cmd, const char *path);
/* Saves by the name's extension: .keras (Keras 3), .h5 or .hdf5 (legacy
 * Keras), anything else the library's .cnn format. */
cnn_status cli_model_save(cnn_model *m, const char *path);
/* Compares two models' architectures (input, layer kinds, output shapes,
 * parameter counts); prints the first difference and returns CLI_FAILURE. */
int cli_model_same(const char *cmd, const cnn_model *a, const char *a_name, const cnn_model *b,
                   const char *b_name);
/* The number of classes a model's output gives (2 for a single sigmoid
 * unit), or 0 if its output is not a flat vector. */
int cli_model_classes(const cnn_model *m);

/* ---- compile.c: the loss and optimizer for cnn train ----------------------------- */
typedef struct cli_compile_options {
    const char *optimizer, *loss; /* names, NULL if not given */
    double lr, momentum, clipnorm, global_clipnorm;
    bool lr_given, momentum_given, clipnorm_given, global_clipnorm_given;
    bool from_logits; /* --from-logits */
} cli_compile_options;
/* Compiles a description (defaults: adam, sparse_categorical_crossentropy)
 * or a saved model when options are given; a compiled saved model keeps
 * its optimizer state otherwise. Prints which; *loss receives the loss. */
int cli_compile(const char *cmd, cnn_model *m, const cli_compile_options *o, cnn_loss *loss);

/* ---- data.c: IDX data sets and labels ------------------------------------------- */
typedef struct cli_data {
    const char *dir; /* --data: the MNIST layout */
    const char *train_images, *train_labels, *test_images, *test_labels;
    double scale;    /* --scale: pixel values 0..255 are multiplied by it; 0 = 1/255 */
} cli_data;
/* Checks the combination of data options (--data or explicit files, in
 * pairs); need_train requires training data. Prints and returns CLI_USAGE. */
int cli_data_check(const char *cmd, const cli_data *d, bool need_train, bool need_test);
/* Loads what the outputs ask for (NULL skips); test outputs stay NULL when
 * no test data is given. */
int cli_data_load(const char *cmd, const cli_data *d, cnn_tensor **train_x,
                  cnn_tensor **train_y, cnn_tensor **test_x, cnn_tensor **test_y);
/* An IDX file of images, pixels multiplied by scale (0 = 1/255, to [0, 1]
 * as cnn_dataset_load_mnist gives them), with a channel axis: (n, rows,
 * cols, channels). */
int cli_load_idx_images(const char *cmd, const char *path, double scale, cnn_tensor **out);
/* The same for an IDX tensor x already read from path (x is consumed). */
int cli_idx_images(const char *cmd, const char *path, double scale, cnn_tensor *x,
                   cnn_tensor **out);
/* --scale: "1/255" (the default), "1" (raw 0..255), any number > 0 or a
 * fraction a/b. Prints and returns CLI_USAGE if malformed. */
int cli_parse_scale(const char *cmd, const char *text, double *out);
/* "1/255" for the default, else %g; 0 means the default. */
void cli_format_scale(double scale, char *buf, size_t cap);
/* Targets for the loss from integer labels: the labels for
 * sparse_categorical_crossentropy or a one-unit output, one-hot otherwise. */
int cli_targets(const char *cmd, const cnn_model *m, cnn_loss loss, const cnn_tensor *labels,
                cnn_tensor **out);

/* ---- data.c: folders of images (cnn_dataset) ---------------------------------------- */
/* True if --data DIR is a folder of class folders rather than the MNIST
 * layout (no train-/t10k-images-idx3-ubyte[.gz] in it), or a CSV list of
 * files (a name ending in .csv: lines "path,label"). */
bool cli_data_is_folder(const char *dir);
typedef struct cli_folder_options {
    const char *image_size;  /* --image-size H,W (NULL: the model's input size) */
    const char *color_mode;  /* --color-mode (NULL: from the model's channels) */
    int64_t cache;           /* --cache BYTES */
    int workers;             /* --workers N (0: the cores) */
    bool skip_bad_images;    /* --skip-bad-images */
    bool random_crop;        /* --random-crop: the model's input size out of --image-size */
} cli_folder_options;
#define CLI_FOLDER_OPTIONS(f)                                                                \
    {"image-size", CLI_OPT_STRING, &(f)->image_size, 0, 0, NULL},                            \
    {"color-mode", CLI_OPT_STRING, &(f)->color_mode, 0, 0, NULL},                            \
    {"cache", CLI_OPT_BYTES, &(f)->cache, 0, 0, NULL},                                       \
    {"workers", CLI_OPT_INT, &(f)->workers, 0, 256, NULL},                                   \
    {"skip-bad-images", CLI_OPT_FLAG, &(f)->skip_bad_images, 0, 0, NULL},                    \
    {"random-crop", CLI_OPT_FLAG, &(f)->random_crop, 0, 0, NULL}
#define CLI_HELP_FOLDER                                                                      \
    "  --image-size H,W     resize every image to H x W, bilinear (default: the\n"           \
    "                       model's input size)\n"                                          \
    "  --random-crop        then take a window of the model's input size out of it\n"       \
    "                       (Keras RandomCrop): a random one in training, the\n"            \
    "                       centre one in validation, test and evaluate\n"                  \
    "  --color-mode M       grayscale, rgb or rgba (default: the model's channels)\n"        \
    "  --cache BYTES        keep decoded images in memory up to BYTES (K, M, G)\n"           \
    "  --workers N          decode threads (default: the cores, at most 8)\n"               \
    "  --skip-bad-images    skip files that do not decode (counted and listed at\n"         \
    "                       the end) instead of stopping with an error\n"
/* Opens DIR as a data set for model m (labels as its loss wants them),
 * printing a progress line while scanning and how many files each class
 * has (on info). subset/validation_split/seed as cnn_dataset_config. */
int cli_dataset_open(const char *cmd, const char *dir, const cnn_model *m, cnn_loss loss,
                     const cli_folder_options *f, double scale, float validation_split,
                     cnn_subset subset, uint32_t seed, FILE *info, cnn_dataset **out);
/* The data set's classes must be the model's; sets them as its class
 * names when it has none (or checks they agree). */
int cli_dataset_classes(const char *cmd, const cnn_dataset *ds, cnn_model *m);
/* "Skipped N bad images:" and their names, if any. */
void cli_dataset_report_skipped(const cnn_dataset *ds);
/* Every image and label of ds in memory (for evaluate): x (n, rows, cols,
 * channels), labels (n) class indices. Bad files: skipped with
 * skip_bad_images, else an error. */
int cli_dataset_tensors(const char *cmd, cnn_dataset *ds, bool skip_bad, cnn_tensor **x,
                        cnn_tensor **labels);
/* The image files (.bmp .gif .jpeg .jpg .png) under dir, walked
 * recursively in sorted order; hidden files and symlinked directories are
 * left out. */
typedef struct cli_paths {
    char **paths;
    size_t count, cap;
} cli_paths;
int cli_image_files(const char *cmd, const char *dir, cli_paths *out);
void cli_paths_free(cli_paths *p);

/* Class names from --class-names ("a,b,c" or "fashion-mnist"). */
typedef struct cli_class_names {
    char *storage;
    const char **names;
    int count;
} cli_class_names;
int cli_class_names_parse(const char *cmd, const char *arg, cli_class_names *out);
/* The name of class k, or NULL if none was given. */
const char *cli_class_name(const cli_class_names *n, int k);
void cli_class_names_free(cli_class_names *n);

/* ---- output.c: --format json|csv and the class names shown ------------------------ */
typedef enum cli_format { CLI_FORMAT_TEXT, CLI_FORMAT_JSON, CLI_FORMAT_CSV } cli_format;
/* --format: text (the default, NULL), json or (if csv_allowed) csv. Prints
 * and returns CLI_USAGE otherwise. */
int cli_format_parse(const char *cmd, const char *text, bool csv_allowed, cli_format *out);
/* text as a JSON string (quotes, escapes; bytes that are not UTF-8 become
 * U+FFFD), or null for NULL. */
void cli_json_string(FILE *f, const char *text);
/* text as a terminal may show it: control characters (C0, DEL, C1) and
 * bytes that are not UTF-8 become \t, \n, \r or \xHH. Writes at most cap
 * bytes with the NUL (out may be NULL) and returns the full length. */
size_t cli_escape_controls(const char *text, char *out, size_t cap);
/* %.9g, or null for NaN and infinities (JSON has neither). */
void cli_json_number(FILE *f, double v);
/* One CSV field (RFC 4180: quoted when it holds a comma, quote or line
 * break); nothing for NULL. */
void cli_csv_field(FILE *f, const char *text);
/* The names to show: --class-names when given (arg), else the model's own
 * (copied). out is empty when neither has names. */
int cli_class_names_resolve(const char *cmd, const char *arg, const cnn_model *m,
                            cli_class_names *out);

/* ---- input.c: images for predict and visualize ----------------------------------- */
typedef struct cli_input_options {
    bool resize;   /* resize and convert channels to fit the model */
    bool invert;   /* pixel -> 255 - pixel (white-on-black vs black-on-white) */
    double scale;  /* pixel values 0..255 are multiplied by it; 0 = 1/255 */
    int64_t index; /* for IDX files: one image, or -1 for all */
} cli_input_options;
/* The input-preparation options, one implementation for every command
 * that reads pixels: the same names, the same meaning and the same help
 * words. The rows go into a command's option table; scale_text receives
 * --scale as written, for cli_input_scale. --scale alone (train,
 * evaluate: IDX data) is CLI_SCALE_OPTION. */
#define CLI_SCALE_OPTION(scale_text) {"scale", CLI_OPT_STRING, (scale_text), 0, 0, NULL}
#define CLI_INPUT_OPTIONS(in, scale_text)                                                    \
    {"resize", CLI_OPT_FLAG, &(in)->resize, 0, 0, NULL},                                     \
    {"invert", CLI_OPT_FLAG, &(in)->invert, 0, 0, NULL}, CLI_SCALE_OPTION(scale_text)
/* Their help, a section of its own so that it reads the same everywhere. */
#define CLI_HELP_SCALE                                                                       \
    "  --scale S            multiply pixel values 0..255 by S: 1/255 (the default)\n"        \
    "                       gives [0, 1], 1 keeps raw values; it must be what the\n"          \
    "                       model was trained on (see docs/KERAS.md)\n"
#define CLI_HELP_INPUT                                                                       \
    "  --resize             fit images to the model: bilinear resize and conversion\n"       \
    "                       to its channels (grey or RGB)\n"                                  \
    "  --invert             use 255 - pixel, before --scale (dark drawings on white\n"        \
    "                       paper for a model trained on MNIST's light on dark)\n"            \
    CLI_HELP_SCALE
/* Parses scale_text (NULL: the default, 0) into *scale; CLI_USAGE if
 * malformed. */
int cli_input_scale(const char *cmd, const char *scale_text, double *scale);
/* "Pixels 0..255 x 1/255, inverted" for a command's first output line. */
void cli_input_describe(const cli_input_options *o, FILE *out);

/* Loads path (PNG, JPEG, BMP, PGM/PPM, ... or an IDX file of images) as
 * model input (n, rows, cols, channels). *first receives the index of the
 * first image (for IDX files). */
int cli_input_load(const char *cmd, const cnn_model *m, const char *path,
                   const cli_input_options *o, cnn_tensor **out, int64_t *first);

/* ---- interrupt.c: Ctrl-C during training ------------------------------------------ */
/* Installs the SIGINT handler: the first Ctrl-C asks training to stop after
 * the current step; a second one ends the process at once. */
int cli_interrupt_install(const char *cmd);
void cli_interrupt_restore(void);
bool cli_interrupted(void);
/* The command line that resumes this run: argv with any --resume removed
 * and "--resume checkpoint" appended, quoted for a POSIX shell. malloc'd. */
char *cli_resume_command(int argc, char **argv, const char *checkpoint);

/* ---- parallel.c: data-parallel cnn train -------------------------------------------- */
/* The plain cnn links cli/parallel.c (one process, no MPI); cnn-mpi links
 * cli/mpi/parallel.c instead, which joins the job mpirun started. */
typedef struct cli_parallel cli_parallel;
/* Joins the job; *out stays NULL when this process trains alone. Ranks
 * other than 0 stop printing to stdout (errors still go to stderr). */
int cli_parallel_open(const char *cmd, cli_parallel **out);
/* Leaves the job with exit code rc and returns it: MPI_Finalize once every
 * rank is done (failed alike, or finished); a rank that failed while others
 * still wait for it in a collective ends the job with MPI_Abort after a few
 * seconds (they would wait for ever). */
int cli_parallel_close(cli_parallel *p, int rc);
/* The rank (0 alone), the number of ranks (1 alone). */
int cli_parallel_rank(const cli_parallel *p);
int cli_parallel_size(const cli_parallel *p);
/* cmd for messages: "train: rank 1" on ranks other than 0. */
const char *cli_parallel_command(const cli_parallel *p, const char *cmd);
/* The hooks for fit: NULL alone. */
const cnn_parallel *cli_parallel_hooks(const cli_parallel *p);
/* Threads per rank without --threads: the online cores shared by the ranks
 * on this machine (0 alone: all cores). */
int cli_parallel_threads(const cli_parallel *p);
/* Collective: every rank holds the same model and the same n data
 * tensors (names for messages; a tensor may be NULL on every rank).
 * Prints and returns CLI_FAILURE on every rank if not. */
int cli_parallel_check(const char *cmd, cli_parallel *p, cnn_model *m,
                       const cnn_tensor *const *data, const char *const *names, int n);

/* ---- history.c: per-epoch metrics as CSV ------------------------------------------- */
typedef struct cli_epoch {
    int epoch; /* 1-based */
    double loss, accuracy, val_loss, val_accuracy; /* NaN if unknown */
} cli_epoch;
typedef struct cli_history {
    cli_epoch *rows; /* sorted by epoch */
    int count, cap;
} cli_history;
/* Reads the rows of epochs 1..up_to_epoch from a CSV written by
 * cli_history_write; a missing file is an empty history. */
int cli_history_read(const char *cmd, const char *path, int up_to_epoch, cli_history *h);
/* Sets the row of e.epoch (replacing or inserting in order). */
int cli_history_set(const char *cmd, cli_history *h, cli_epoch e);
/* epoch,loss,accuracy,val_loss,val_accuracy; atomically replaced. */
int cli_history_write(const char *cmd, const char *path, const cli_history *h);
void cli_history_free(cli_history *h);

/* ---- plot.c: training curves as a PNG ------------------------------------------------ */
int cli_plot_history(const char *cmd, const char *path, const cli_history *h);

/* ---- draw.c and font.c: an RGB canvas with lines and 5x7 text ------------------------ */
#define CLI_FONT_WIDTH 5
#define CLI_FONT_HEIGHT 7
#define CLI_FONT_ADVANCE 6 /* glyph width plus one column of space */
const uint8_t *cli_font_glyph(char c);

typedef struct cli_rgb {
    uint8_t r, g, b;
} cli_rgb;
typedef struct cli_canvas {
    uint8_t *pixels; /* rows x cols x 3 */
    int rows, cols;
} cli_canvas;
/* Allocates a canvas filled with background; false if out of memory. */
bool cli_canvas_create(cli_canvas *c, int rows, int cols, cli_rgb background);
void cli_canvas_free(cli_canvas *c);
void cli_canvas_pixel(cli_canvas *c, int x, int y, cli_rgb color);
void cli_canvas_fill(cli_canvas *c, int x, int y, int w, int h, cli_rgb color);
/* A line of the given thickness (1 or more pixels). */
void cli_canvas_line(cli_canvas *c, int x0, int y0, int x1, int y1, int thickness, cli_rgb color);
/* Text with its top-left corner at (x, y); scale 1 is 5x7 pixels a glyph. */
void cli_canvas_text(cli_canvas *c, int x, int y, const char *text, int scale, cli_rgb color);
/* The same turned 90 degrees counter-clockwise (reading upwards), with the
 * bottom-left corner of the first glyph at (x, y). */
void cli_canvas_text_up(cli_canvas *c, int x, int y, const char *text, int scale, cli_rgb color);
int cli_text_width(const char *text, int scale);
/* Saves as PNG; prints the error and returns CLI_FAILURE on failure. */
int cli_canvas_save(const char *cmd, const cli_canvas *c, const char *path);

/* ---- visualize.c's pictures (picture.c) ---------------------------------------------- */
/* A near-square grid of per-channel maps, each normalised min..max to
 * 0..255 and scaled (nearest) to tile x tile at most, 1-px separators.
 * data is (rows, cols, channels). */
bool cli_picture_maps(const float *data, int rows, int cols, int channels, cli_canvas *out);
/* A bar strip of n values (or a wrapped heat strip when n is large). */
bool cli_picture_bars(const float *data, int64_t n, cli_canvas *out);
/* Conv2D kernels (kh, kw, in, filters): each filter normalised and
 * upscaled, RGB when in == 3, else the mean over input channels. */
bool cli_picture_kernels(const float *kernel, int kh, int kw, int in, int filters,
                         cli_canvas *out);

/* ---- textfile.c: text files the tool writes ---------------------------------------- */
/* A text file (the history CSV, visualize's index.html) is printed into
 * memory, then saved by the library's atomic writer (cnn_file_write_atomic),
 * as every other file the tool writes: never seen half-written, mode from
 * the umask, and only ever replacing a regular file. */
typedef struct cli_text {
    FILE *f; /* print into this */
    char *buf;
    size_t len;
} cli_text;
int cli_text_open(const char *cmd, cli_text *t);
/* Writes the text as path unless rc says an earlier step failed; frees
 * the text either way. Returns rc, or the failure to write. */
int cli_text_save(const char *cmd, cli_text *t, const char *path, int rc);

/* ---- outputs.c: the files a command writes, claimed before it works ---------- */
typedef struct cli_output {
    const char *option; /* "save" for --save */
    const char *path;   /* NULL: not given */
    bool model;         /* a model file: may be the model it reads (training in place) */
} cli_output;
typedef struct cli_input {
    const char *what;   /* "--train-images", "MODEL" */
    const char *path;
    bool model;         /* a saved model (.cnn, .h5, .keras) */
} cli_input;
enum { CLI_MAX_OUTPUTS = 8 };
typedef struct cli_output_lock {
    int fd;
    char *lock_path;
} cli_output_lock;
typedef struct cli_outputs {
    int count;
    cli_output_lock locks[CLI_MAX_OUTPUTS];
} cli_outputs;
/* Before a command starts: refuses an output that exists and is not a
 * regular file, or is one of the inputs (same device and inode; a model
 * output may be a saved model input), and takes an advisory lock on each
 * (PATH.lock beside it, which also proves the directory writable). Prints
 * and returns CLI_FAILURE; release what it took with cli_outputs_release. */
int cli_outputs_claim(const char *cmd, const cli_output *outs, int n_out, const cli_input *ins,
                      int n_in, cli_outputs *held);
void cli_outputs_release(cli_outputs *held);

/* ---- quantize.c: int8 quantized model files ------------------------------------- */
/* True if path is a quantized model file (by its content). */
bool cli_is_quantized(const char *path);
/* cnn_qmodel_load with threads (0: the default). */
int cli_qmodel_open(const char *cmd, const char *path, int threads, cnn_qmodel **out);
/* cnn evaluate, cnn summary of a quantized file; predict's outputs for x. */
int cli_evaluate_quantized(const char *cmd, const char *path, const cli_data *data,
                           int threads, cli_format format);
int cli_summary_quantized(const char *cmd, const char *path);
int cli_predict_quantized(const char *cmd, cnn_qmodel *q, const cnn_tensor *x, cnn_tensor **out);

#endif
