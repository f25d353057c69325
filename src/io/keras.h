/* Keras model files (internal): what the files of src/io/keras_*.c share.
 *
 *   keras_h5.c      HDF5 through Debian's libhdf5: files as memory images,
 *                   string-list attributes, float datasets checked against
 *                   the shape they must have, and their writers
 *   keras_zip.c     the .keras zip archive through libzip, in memory
 *   keras_config.c  Keras JSON: architectures written from a model (Keras 3
 *                   config.json, Keras 2 model_config), training configs
 *                   read into and written from a compile config
 *   keras_load.c    cnn_model_load_keras*: both formats to a model
 *   keras_save.c    cnn_model_save_keras / _h5: a model to both formats
 *
 * Every reader takes bytes in memory (a file is read whole first, within a
 * size limit), so the fuzz harnesses reach all of it. Nothing from a file
 * is executed: architectures go through the description reader's table
 * (io/description.h), which knows only the library's layers. */
#ifndef CNN_IO_KERAS_H
#define CNN_IO_KERAS_H

#include <hdf5.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cnn.h"

/* Larger files are refused before they are read. */
#define CNN_KERAS_MAX_FILE ((int64_t)4 << 30)
/* config.json, model_config, training_config and the like. */
#define CNN_KERAS_MAX_JSON ((size_t)16 << 20)

/* ---- keras_h5.c ----------------------------------------------------------- */

/* HDF5 prints its error stack to stderr by default; the library never
 * prints. Every entry point silences it for the calling thread (HDF5's
 * error state is per thread here: Debian builds it thread-safe) and puts
 * the caller's handler back at the end. */
typedef struct cnn_h5_quiet {
    H5E_auto2_t func;
    void *data;
} cnn_h5_quiet;
void cnn_h5_quiet_begin(cnn_h5_quiet *q);
void cnn_h5_quiet_end(const cnn_h5_quiet *q);

/* Opens an HDF5 file image read-only (copied; bytes may be freed after).
 * name is used in messages. */
cnn_status cnn_h5_open_image(const void *bytes, size_t size, const char *name, hid_t *file);
/* A new, empty HDF5 file in memory, and its bytes once written (malloc'd;
 * the file stays open: the caller closes it). */
cnn_status cnn_h5_create_image(const char *name, hid_t *file);
cnn_status cnn_h5_image_bytes(hid_t file, const char *name, void **bytes, size_t *size);

/* Property lists that refuse to follow external links out of the file
 * (a hostile file must not make the library open other files). */
hid_t cnn_h5_gapl(void);
hid_t cnn_h5_dapl(void);

/* Whether loc has an object (group or dataset) at the relative path,
 * following no external link. */
bool cnn_h5_exists(hid_t loc, const char *path);
/* Opens a group; CNN_ERR_FORMAT naming file and path if there is none. */
cnn_status cnn_h5_open_group(hid_t loc, const char *path, const char *file, const char *where,
                             hid_t *out);

/* A scalar string attribute (variable or fixed length, ASCII or UTF-8) as
 * a malloc'd NUL-terminated string; *out = NULL if the attribute does not
 * exist (not an error), an error if it is not a string. */
cnn_status cnn_h5_read_string_attr(hid_t obj, const char *attr, const char *file,
                                   const char *where, size_t max, char **out);

/* A list of strings attribute as Keras writes layer_names and
 * weight_names: a 1-D array of fixed- or variable-length strings, an empty
 * float array for no names, or split into attr0, attr1, ... when too large
 * for one attribute. *n = 0 and *out = NULL when absent. Free with
 * cnn_h5_free_strings. */
cnn_status cnn_h5_read_string_list(hid_t obj, const char *attr, const char *file,
                                   const char *where, char ***out, int *n);
void cnn_h5_free_strings(char **s, int n);

/* Reads the float dataset at path (relative to loc) into dst, which holds
 * the product of dims floats, after checking it is a real-number dataset
 * of exactly that shape (rank 0 = scalar) stored in the file itself, with
 * standard filters only, and that every value is finite. what names the
 * weight in messages ("conv2d's kernel"). */
cnn_status cnn_h5_read_floats(hid_t loc, const char *path, const char *file, const char *what,
                              int rank, const int64_t *dims, float *dst);
/* The rank and dimensions of the dataset at path (at most CNN_MAX_RANK);
 * fails if it is not a dataset. */
cnn_status cnn_h5_dataset_shape(hid_t loc, const char *path, const char *file, int *rank,
                                int64_t *dims);
/* The number of links (members) of a group. */
cnn_status cnn_h5_group_size(hid_t group, const char *file, const char *where, int64_t *n);

/* Writers (into a file from cnn_h5_create_image). Paths may contain '/':
 * missing groups on the way are created. */
cnn_status cnn_h5_create_group(hid_t loc, const char *path, const char *file, hid_t *out);
/* A scalar variable-length string (utf8: UTF-8, else ASCII), as h5py
 * writes a Python str (UTF-8) or Keras 2 wrote its JSON (ASCII). */
cnn_status cnn_h5_write_string_attr(hid_t obj, const char *attr, const char *text, bool utf8,
                                    const char *file);
/* A 1-D array of fixed-length, NUL-padded ASCII strings as wide as the
 * longest (what h5py makes of a list of bytes); n = 0 writes an empty
 * float64 array, as h5py does for an empty list. */
cnn_status cnn_h5_write_string_list(hid_t obj, const char *attr, const char *const *s, int n,
                                    const char *file);
/* float32 little-endian dataset of the given shape (rank 0 = scalar). */
cnn_status cnn_h5_write_floats(hid_t loc, const char *path, int rank, const int64_t *dims,
                               const float *data, const char *file);
cnn_status cnn_h5_write_i64(hid_t loc, const char *path, int64_t value, const char *file);

/* ---- keras_zip.c ----------------------------------------------------------- */

typedef struct cnn_zip cnn_zip;
/* Opens a zip archive held in memory (not copied: bytes must outlive it). */
cnn_status cnn_zip_open(const void *bytes, size_t size, const char *name, cnn_zip **out);
void cnn_zip_close(cnn_zip *z);
bool cnn_zip_has(cnn_zip *z, const char *member);
/* Reads a member whole (its CRC checked) into a malloc'd buffer with a NUL
 * after it; members larger than max are refused before allocating. */
cnn_status cnn_zip_read(cnn_zip *z, const char *member, size_t max, void **out, size_t *size);

typedef struct cnn_zip_member {
    const char *name;
    const void *data;
    size_t size;
    bool dos_epoch; /* dated 1980-01-01 00:00 (as Python's zipfile dates what
                       it streams), else now */
} cnn_zip_member;
/* A zip archive of the members, stored uncompressed (as Keras writes
 * .keras files), into a malloc'd buffer. */
cnn_status cnn_zip_write(const cnn_zip_member *members, int n, const char *name, void **out,
                         size_t *size);

/* ---- keras_config.c -------------------------------------------------------- */

/* The Keras 3 serialisation of a model (config.json): Sequential with an
 * InputLayer, every layer's full config, build_config and, when compiled,
 * compile_config. */
/* The index of the first layer whose activation Keras cannot name
 * (gelu_tanh), -1 if none: the writers refuse such models. */
int cnn_keras_unwritable(const cnn_model *m);
json_t *cnn_keras3_config(const cnn_model *m);
/* The Keras 2 model_config of a legacy .h5 file (batch_input_shape in the
 * first layer) and its training_config (NULL if not compiled). */
json_t *cnn_keras2_config(const cnn_model *m);
json_t *cnn_keras2_training_config(const cnn_model *m);
/* Keras's snake_case of a class name, as Keras 3 names a layer's group
 * in model.weights.h5 ("MaxPooling2D" -> "max_pooling2d", "ReLU" ->
 * "re_lu"). */
void cnn_keras_snake_case(const char *class_name, char *buf, size_t size);

/* A compile config from Keras's training_config (.h5) or compile_config
 * (.keras): CNN_OK and *ok = true if the optimizer and loss are ones the
 * library has with settings it supports; otherwise *ok = false and why
 * says what is not supported (the model then stays uncompiled). A value
 * that is malformed (not what Keras writes) is CNN_ERR_FORMAT. */
cnn_status cnn_keras_compile_from(const json_t *optimizer, const json_t *loss, const char *where,
                                  cnn_compile_config *out, bool *ok, char *why, size_t why_size);

/* hard_sigmoid is clip(0.2 x + 0.5, 0, 1) in tf.keras up to 2.15 and
 * relu6(x + 3) / 6 in Keras 3, which the library computes: a file of an
 * older Keras that uses it is refused (what it computes would silently
 * differ), and so is writing it into a legacy .h5, which tf.keras 2 reads
 * with its own definition. This finds the first layer of a Sequential
 * config (Keras 1's list of layers, or {"layers": [...]}) whose activation
 * is hard_sigmoid, NULL if none. */
const json_t *cnn_keras_hard_sigmoid_layer(const json_t *model_config);

/* The JSON text of a value, Python's json.dumps style (", " and ": "),
 * keys in insertion order; malloc'd, NULL if out of memory. */
char *cnn_keras_dumps(const json_t *v);

#endif
