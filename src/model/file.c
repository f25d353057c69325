/* The model file (.cnn): save and load a model (a chain or a graph) with its weights
 * and, when compiled, its optimizer state and training position.
 * docs/MODEL_FILE.md is the layout; in short:
 *
 *   "CNNMODEL" | u32 version | u64 file length | u32 flags | header | layers
 *   | [parameters] | [training] | [extensions] | [class names] | [dtype policy]
 *   | u32 CRC-32 of every byte before it
 *
 * Every field is fixed-width little-endian, written and read byte by byte
 * (no struct dumps), so files move between hosts unchanged.
 *
 * Loading works on one buffer in four steps, so nothing is read from bytes
 * the checksum has not vouched for and each failure gets the message that
 * explains it:
 *   1. preamble: magic, version, and the recorded file length against the
 *      real one (truncated / trailing data);
 *   2. checksum (any other damage: "the file is corrupted");
 *   3. decode: walk the layout with a bounded reader, checking every count
 *      against the bytes left before allocating anything sized by it (this
 *      still guards against files crafted with a valid checksum); weights
 *      stay in the buffer, only pointed at;
 *   4. rebuild through the public API (create, set_seed, add, compile), which
 *      re-validates every value with the library's own messages, compare the
 *      tensor shapes with the inferred ones, then copy weights and state in.
 *
 * Saving streams the same layout through a buffered writer into the
 * library's one atomic writer (core/fileio.c: a temporary file next to the
 * target, fsync, rename over it, fsync of the directory), so an existing
 * file is replaced whole or not at all; loading reads through its one
 * reader. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/model_format.h"
#include "core/tensor.h"
#include "model/file.h"
#include "model/model.h"

#define FILE_MAGIC "CNNMODEL"
enum {
    MAGIC_BYTES = 8,
    PREAMBLE_BYTES = 8 + 4 + 8, /* magic, version, file length */
    FILE_VERSION = 1,
    FLAG_WEIGHTS = 1u,  /* the parameters section is present (the model is built) */
    FLAG_TRAINING = 2u, /* the training section is present (the model is compiled) */
    FLAG_EXTENSIONS = 4u, /* the extensions section is present (L2 penalties of Conv2D
                             and Dense kernels, gradient clipping) */
    FLAG_CLASS_NAMES = 8u, /* the class names section is present */
    FLAG_DTYPE_POLICY = 16u, /* the dtype policy section is present (not float32) */
    FLAG_GRAPH = 32u,      /* the graph section is present (a Functional model) */
    FLAGS_KNOWN = FLAG_WEIGHTS | FLAG_TRAINING | FLAG_EXTENSIONS | FLAG_CLASS_NAMES
                  | FLAG_DTYPE_POLICY | FLAG_GRAPH,
    LAYER_AUTO_NAMED = 1u, /* the name was given by the model (Keras auto-name) */
    LAYER_FROZEN = 2u,     /* trainable=False (transfer learning) */
    MAX_LAYERS = 10000,    /* add() checks names pairwise: keep a hostile file cheap */
    /* The smallest layer record: kind, flags, name length, one name byte. */
    MIN_LAYER_BYTES = 4 + 1 + 2 + 1,
    CHECKSUM_BYTES = 4,
    /* In the training section's loss code: the loss takes logits (Keras
     * from_logits=True). Files without it keep their bytes. */
    LOSS_FROM_LOGITS = 0x100u,
    WRITE_BUFFER = 1 << 16
};
/* A file larger than this is refused before it is read into memory. */
#define MAX_FILE_BYTES ((uint64_t)1 << 40)

/* ---- Little-endian fields ------------------------------------------------- */

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Two's complement i32 without implementation-defined conversions. */
static int to_i32(uint32_t v)
{
    return v <= INT32_MAX ? (int)v : -(int)(~v) - 1;
}

/* ---- Saving ---------------------------------------------------------------- */

/* Writes through a buffer, or only counts bytes (to learn the file's
 * length, which the preamble records, by the same code that writes it). */
typedef struct {
    bool counting;
    bool hashing;       /* counting: also the CRC of the bytes (cnn_model_checksum) */
    uint64_t total;     /* counting: bytes so far */
    cnn_atomic_file *out;
    unsigned char *mem; /* instead of out: the whole file in memory (mem_cap bytes) */
    size_t mem_len, mem_cap;
    uLong crc;          /* over every byte handed to the file so far */
    unsigned char *buf; /* WRITE_BUFFER bytes */
    size_t len;
    cnn_status st;      /* the first failure; later writes are skipped */
} writer;

static void write_all(writer *w, const unsigned char *p, size_t n)
{
    if (w->st)
        return;
    if (!w->mem) {
        w->st = cnn_atomic_write(w->out, p, n);
    } else if (n > w->mem_cap - w->mem_len) { /* file_length and write_model disagree */
        w->st = cnn_fail(CNN_ERR_STATE, "save: the model is longer than its counted length");
    } else {
        memcpy(w->mem + w->mem_len, p, n);
        w->mem_len += n;
    }
}

static void w_flush(writer *w)
{
    if (w->st || !w->len)
        return;
    w->crc = crc32(w->crc, w->buf, (uInt)w->len);
    write_all(w, w->buf, w->len);
    w->len = 0;
}

static void w_bytes(writer *w, const void *p, size_t n)
{
    const unsigned char *s = p;
    if (w->counting) {
        w->total += n;
        if (w->hashing)
            w->crc = crc32(w->crc, s, (uInt)n);
        return;
    }
    while (n && !w->st) {
        if (w->len == WRITE_BUFFER)
            w_flush(w);
        size_t k = WRITE_BUFFER - w->len;
        if (k > n)
            k = n;
        memcpy(w->buf + w->len, s, k);
        w->len += k;
        s += k;
        n -= k;
    }
}

static void w_le(writer *w, uint64_t v, int bytes)
{
    unsigned char b[8];
    put_le(b, v, bytes);
    w_bytes(w, b, (size_t)bytes);
}

static void w_u8(writer *w, unsigned v) { w_le(w, v, 1); }
static void w_u32(writer *w, uint32_t v) { w_le(w, v, 4); }
static void w_u64(writer *w, uint64_t v) { w_le(w, v, 8); }
static void w_i32(writer *w, int v) { w_le(w, (uint32_t)v, 4); }
static void w_f32(writer *w, float v) { w_le(w, float_bits(v), 4); }

static void w_floats(writer *w, const float *x, int64_t n)
{
    unsigned char chunk[4096];
    if (w->counting && !w->hashing) {
        w->total += (uint64_t)n * 4;
        return;
    }
    while (n > 0 && !w->st) {
        int64_t k = n < (int64_t)(sizeof chunk / 4) ? n : (int64_t)(sizeof chunk / 4);
        for (int64_t i = 0; i < k; i++)
            put_le(chunk + 4 * i, float_bits(x[i]), 4);
        w_bytes(w, chunk, (size_t)k * 4);
        x += k;
        n -= k;
    }
}

/* A field as the model file stores it (the table in layers/layer.h). */
static void write_field(writer *w, const cnn_layer_spec *s, const cnn_layer_field *f)
{
    const char *p = (const char *)s + f->offset;
    switch (f->type) {
    case CNN_FIELD_COUNT:
    case CNN_FIELD_AXIS: w_i32(w, *(const int *)p); break;
    case CNN_FIELD_PAIR:
        w_i32(w, ((const int *)p)[0]);
        w_i32(w, ((const int *)p)[1]);
        break;
    case CNN_FIELD_PADDING4:
    case CNN_FIELD_CROPPING4:
        for (int i = 0; i < 4; i++)
            w_i32(w, ((const int *)p)[i]);
        break;
    case CNN_FIELD_OPT_PAIR: {
        const cnn_opt_pair *o = (const cnn_opt_pair *)p;
        w_u8(w, o->set);
        w_i32(w, o->set ? o->value[0] : 0);
        w_i32(w, o->set ? o->value[1] : 0);
        break;
    }
    case CNN_FIELD_CHOICE: w_u32(w, (uint32_t)*(const int *)p); break;
    case CNN_FIELD_PADDING: w_u32(w, (uint32_t)*(const cnn_padding *)p); break;
    case CNN_FIELD_ACTIVATION: w_u32(w, (uint32_t)*(const cnn_activation *)p); break;
    case CNN_FIELD_USE_BIAS: w_u8(w, *(const bool *)p); break; /* no_bias */
    case CNN_FIELD_RATE:
    case CNN_FIELD_REAL:
    case CNN_FIELD_POSITIVE:
    case CNN_FIELD_NONNEGATIVE:
    case CNN_FIELD_L2: w_f32(w, *(const float *)p); break;
    case CNN_FIELD_SEED: w_u64(w, *(const uint64_t *)p); break;
    case CNN_FIELD_TARGET_SHAPE: {
        const cnn_shape *t = (const cnn_shape *)p;
        w_u32(w, (uint32_t)t->rank);
        for (int i = 0; i < 3; i++)
            w_i32(w, i < t->rank ? t->dims[i] : 0);
        break;
    }
    case CNN_FIELD_NAME: /* in the record's header */
    case CNN_FIELD_SHAPE: break;
    }
}

/* Whether a field is part of the layer record (else nowhere, or in the
 * extensions section). */
static bool in_record(const cnn_layer_field *f)
{
    return !(f->flags & (CNN_FIELD_ALIAS | CNN_FIELD_EXTENSION));
}

static bool in_extensions(const cnn_layer_field *f)
{
    return (f->flags & CNN_FIELD_EXTENSION) && !(f->flags & CNN_FIELD_ALIAS);
}

static void write_layer(writer *w, const cnn_layer *l)
{
    size_t name_len = strlen(l->name); /* < CNN_LAYER_NAME_MAX, by cnn_layer_alloc */
    w_u32(w, (uint32_t)l->spec.kind);
    w_u8(w, (l->auto_named ? LAYER_AUTO_NAMED : 0) | (l->frozen ? LAYER_FROZEN : 0));
    w_le(w, name_len, 2);
    w_bytes(w, l->name, name_len);
    for (int i = 0; i < l->ops->n_fields; i++)
        if (in_record(&l->ops->fields[i]))
            write_field(w, &l->spec, &l->ops->fields[i]);
}

/* The extensions section is written only when it holds something, so a
 * model without these settings is saved exactly as before they existed. */
static bool needs_extensions(const cnn_model *m)
{
    for (int i = 0; i < m->n_layers; i++) {
        const cnn_layer *l = m->layers[i];
        for (int k = 0; k < l->ops->n_fields; k++)
            if (in_extensions(&l->ops->fields[k])
                && *(const float *)((const char *)&l->spec + l->ops->fields[k].offset) != 0)
                return true;
    }
    return m->compiled && (m->opt.clipnorm != 0 || m->opt.global_clipnorm != 0);
}

/* The class names section (written only when the model has names, so a
 * model without them is saved byte for byte as before the section existed):
 * u32 count, then per name u16 length and its UTF-8 bytes. */
static void write_class_names(writer *w, const cnn_model *m)
{
    w_u32(w, (uint32_t)m->n_class_names);
    for (int k = 0; k < m->n_class_names; k++) {
        size_t len = strlen(m->class_names[k]); /* <= CNN_CLASS_NAME_MAX, by set_class_names */
        w_le(w, len, 2);
        w_bytes(w, m->class_names[k], len);
    }
}

/* The graph section (written only for a graph, so a chain is saved byte
 * for byte as before the section existed): u16 input name length and its
 * bytes, then per layer u8 input count and an i32 per input (a layer
 * index, -1 the model's input). */
static void write_graph(writer *w, const cnn_model *m)
{
    const char *in = cnn_model_input_name(m);
    w_le(w, strlen(in), 2);
    w_bytes(w, in, strlen(in));
    for (int i = 0; i < m->n_layers; i++) {
        w_u8(w, (uint8_t)m->layers[i]->n_inputs);
        for (int k = 0; k < m->layers[i]->n_inputs; k++)
            w_i32(w, m->layers[i]->inputs[k]);
    }
}

/* The whole file but the checksum, in order. */
static void write_model(writer *w, const cnn_model *m, uint64_t length)
{
    w_bytes(w, FILE_MAGIC, MAGIC_BYTES);
    w_u32(w, FILE_VERSION);
    w_u64(w, length);
    const bool extensions = needs_extensions(m);
    w_u32(w, (m->built ? FLAG_WEIGHTS : 0) | (m->compiled ? FLAG_TRAINING : 0)
                 | (extensions ? FLAG_EXTENSIONS : 0)
                 | (m->n_class_names ? FLAG_CLASS_NAMES : 0)
                 | (m->dtype_policy ? FLAG_DTYPE_POLICY : 0)
                 | (cnn_model_is_functional(m) ? FLAG_GRAPH : 0));

    w_u64(w, m->seed);
    w_u32(w, (uint32_t)m->input_shape.rank);
    for (int i = 0; i < 3; i++)
        w_i32(w, i < m->input_shape.rank ? m->input_shape.dims[i] : 0);
    w_u32(w, (uint32_t)m->n_layers);

    for (int i = 0; i < m->n_layers; i++)
        write_layer(w, m->layers[i]);

    if (m->built)
        for (int i = 0; i < m->n_layers; i++) {
            const cnn_layer *l = m->layers[i];
            w_u32(w, (uint32_t)l->n_params);
            for (int p = 0; p < l->n_params; p++) {
                const cnn_param *prm = &l->params[p];
                w_u32(w, (uint32_t)prm->rank);
                for (int d = 0; d < prm->rank; d++)
                    w_u64(w, (uint64_t)prm->dims[d]);
                w_floats(w, prm->value, prm->count);
            }
        }

    if (m->compiled) {
        const cnn_optimizer *o = &m->opt;
        w_u32(w, (uint32_t)m->loss | (m->from_logits ? LOSS_FROM_LOGITS : 0));
        w_u32(w, (uint32_t)o->kind);
        w_f32(w, o->learning_rate);
        w_f32(w, o->momentum);
        w_u8(w, o->nesterov);
        w_f32(w, o->beta_1);
        w_f32(w, o->beta_2);
        w_f32(w, o->rho);
        w_f32(w, o->epsilon);
        w_u64(w, (uint64_t)m->opt_steps);
        w_i32(w, m->train_epoch);
        w_u64(w, (uint64_t)m->train_step);
        w_u64(w, (uint64_t)m->n_params);
        w_floats(w, m->opt_m, m->n_params);
        w_floats(w, m->opt_v, m->n_params);
    }

    if (extensions) {
        for (int i = 0; i < m->n_layers; i++) {
            const cnn_layer *l = m->layers[i];
            for (int k = 0; k < l->ops->n_fields; k++)
                if (in_extensions(&l->ops->fields[k]))
                    write_field(w, &l->spec, &l->ops->fields[k]);
        }
        if (m->compiled) {
            w_f32(w, m->opt.clipnorm);
            w_f32(w, m->opt.global_clipnorm);
        }
    }

    if (m->n_class_names)
        write_class_names(w, m);
    if (m->dtype_policy)
        w_u32(w, (uint32_t)m->dtype_policy);
    if (cnn_model_is_functional(m))
        write_graph(w, m);
}

static uint64_t file_length(const cnn_model *m)
{
    writer counter = {.counting = true};
    write_model(&counter, m, 0);
    return counter.total + CHECKSUM_BYTES;
}

cnn_status cnn_model_checksum(const cnn_model *m, uint32_t *out)
{
    if (!m || !out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "checksum: a model and out are required");
    writer w = {.counting = true, .hashing = true, .crc = crc32(0L, Z_NULL, 0)};
    write_model(&w, m, file_length(m));
    *out = (uint32_t)w.crc;
    return CNN_OK;
}

cnn_status cnn_model_save(cnn_model *m, const char *path)
{
    if (!m || !path || !*path)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "save: a model and a path are required");
    unsigned char *buf = malloc(WRITE_BUFFER);
    if (!buf)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: save: out of memory", path);
    cnn_atomic_file out;
    cnn_status st = cnn_atomic_open(&out, path);
    if (st) {
        free(buf);
        return st;
    }
    writer w = {.out = &out, .crc = crc32(0L, Z_NULL, 0), .buf = buf};
    write_model(&w, m, file_length(m));
    w_flush(&w);
    unsigned char trailer[CHECKSUM_BYTES];
    put_le(trailer, (uint32_t)w.crc, CHECKSUM_BYTES);
    write_all(&w, trailer, sizeof trailer);
    free(buf);
    return cnn_atomic_close(&out, w.st);
}

cnn_status cnn_model_encode(const cnn_model *m, unsigned char **out, size_t *size)
{
    *out = NULL;
    *size = 0;
    uint64_t length = file_length(m);
    unsigned char *buf = malloc(WRITE_BUFFER);
    unsigned char *mem = length <= SIZE_MAX ? malloc((size_t)length) : NULL;
    if (!buf || !mem) {
        free(buf);
        free(mem);
        return cnn_fail(CNN_ERR_NO_MEMORY, "save: cannot allocate %llu bytes for the model",
                        (unsigned long long)length);
    }
    writer w = {.mem = mem, .mem_cap = (size_t)length, .crc = crc32(0L, Z_NULL, 0), .buf = buf};
    write_model(&w, m, length);
    w_flush(&w);
    unsigned char trailer[CHECKSUM_BYTES];
    put_le(trailer, (uint32_t)w.crc, CHECKSUM_BYTES);
    write_all(&w, trailer, sizeof trailer);
    free(buf);
    if (!w.st && w.mem_len != w.mem_cap)
        w.st = cnn_fail(CNN_ERR_STATE, "save: the model is shorter than its counted length");
    if (w.st) {
        free(mem);
        return w.st;
    }
    *out = mem;
    *size = w.mem_len;
    return CNN_OK;
}

/* ---- Loading: step 1, the preamble -------------------------------------------- */

/* Magic, version and recorded length: checked first, on the raw buffer.
 * The version decides how everything after it (the checksum too) is read;
 * the length tells a cut or extended file from a corrupted one. */
static cnn_status check_preamble(const unsigned char *b, size_t size, const char *name)
{
    size_t have = size < MAGIC_BYTES ? size : MAGIC_BYTES;
    if (memcmp(b, FILE_MAGIC, have) != 0) {
        char got[3 * MAGIC_BYTES + 1] = "";
        for (size_t i = 0; i < have; i++)
            snprintf(got + 3 * i, sizeof got - 3 * i, "%02x ", b[i]);
        got[have ? 3 * have - 1 : 0] = '\0';
        /* b may be the file's head only: have bytes of it are known */
        const cnn_model_format format = cnn_model_format_of(b, have);
        const bool keras = format == CNN_MODEL_FORMAT_KERAS_H5
                        || format == CNN_MODEL_FORMAT_KERAS_ZIP;
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: header: expected magic \"%s\", got %s (not a cnn model file%s)",
                        name, FILE_MAGIC, got,
                        keras ? ": it is a Keras file (.h5 or .keras); load it with"
                                " cnn_model_load_keras"
                              : "");
    }
    if (size < MAGIC_BYTES + 4)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: header: the file is truncated (%zu bytes; the magic and version"
                        " alone take %d)",
                        name, size, MAGIC_BYTES + 4);
    uint32_t version = (uint32_t)get_le(b + MAGIC_BYTES, 4);
    if (version > FILE_VERSION)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: header: format version %u is newer than this library supports (%d)",
                        name, version, FILE_VERSION);
    if (version == 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: header: format version 0 is invalid", name);
    if (size < PREAMBLE_BYTES)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: header: the file is truncated (%zu bytes; its preamble alone takes"
                        " %d)",
                        name, size, PREAMBLE_BYTES);
    uint64_t length = get_le(b + MAGIC_BYTES + 4, 8);
    if ((uint64_t)size < length)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: the file is truncated: it has %zu bytes, its header records %llu",
                        name, size, (unsigned long long)length);
    if ((uint64_t)size > length)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: %llu bytes of trailing data after the model's %llu bytes", name,
                        (unsigned long long)(size - length), (unsigned long long)length);
    if (size < PREAMBLE_BYTES + CHECKSUM_BYTES)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: header: recorded length %zu leaves no room for the checksum", name,
                        size);
    return CNN_OK;
}

/* ---- Loading: step 2, the checksum --------------------------------------------- */

static cnn_status verify_checksum(const unsigned char *b, size_t size, const char *name)
{
    size_t n = size - CHECKSUM_BYTES;
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t done = 0; done < n;) {
        size_t k = n - done < (size_t)1 << 30 ? n - done : (size_t)1 << 30; /* zlib: uInt */
        crc = crc32(crc, b + done, (uInt)k);
        done += k;
    }
    uint32_t stored = (uint32_t)get_le(b + n, CHECKSUM_BYTES);
    if ((uint32_t)crc != stored)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: checksum mismatch: the file is corrupted (stored 0x%08x, computed"
                        " 0x%08x)",
                        name, stored, (unsigned)(uint32_t)crc);
    return CNN_OK;
}

/* ---- Loading: step 3, decode ------------------------------------------------- */

typedef struct {
    uint32_t rank;
    int64_t dims[CNN_MAX_RANK];
    int64_t count;
    const unsigned char *data; /* count little-endian float32, in the buffer */
} file_tensor;

typedef struct {
    cnn_layer_spec spec;  /* as read; the name is set when the layer is added */
    const cnn_layer_ops *ops;
    uint8_t flags;
    char name[CNN_LAYER_NAME_MAX];
    uint32_t n_params;
    file_tensor params[CNN_LAYER_MAX_PARAMS];
    uint8_t n_inputs;     /* graph section: 0 = the chain's input */
    int inputs[CNN_MAX_LAYER_INPUTS];
} file_layer;

typedef struct {
    uint32_t flags;
    uint64_t seed;
    uint32_t rank;
    uint32_t dims[3];
    uint32_t n_layers;
    file_layer *layers;
    /* training section */
    uint32_t loss, opt_kind;
    float lr, momentum, beta_1, beta_2, rho, epsilon;
    uint8_t nesterov;
    uint64_t opt_steps, train_step, n_slots;
    uint32_t train_epoch;
    const unsigned char *opt_m, *opt_v;
    /* extensions section (the fields kept there go into the layers' specs) */
    float clipnorm, global_clipnorm;
    /* class names section: views into the buffer (not NUL-terminated) */
    uint32_t n_class_names;
    const char **class_names;
    size_t *class_name_lengths;
    uint32_t dtype_policy; /* dtype policy section */
    /* graph section: the input's name (not NUL-terminated) */
    const unsigned char *input_name;
    size_t input_name_len;
} file_model;

/* A bounded reader over the bytes before the checksum. */
typedef struct {
    const unsigned char *base, *p;
    size_t left;
    const char *name;
    char where[128]; /* the section being read: "header", "layer 2 (conv2d_1)" */
} reader;

static cnn_status rd_take(reader *r, size_t n, const char *field, const unsigned char **out)
{
    *out = r->p; /* set on failure too (callers check the status first) */
    if (n > r->left)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: %s: %s: runs past the end of the data (%zu bytes needed at offset"
                        " %zu, %zu left before the checksum)",
                        r->name, r->where, field, n, (size_t)(r->p - r->base), r->left);
    r->p += n;
    r->left -= n;
    return CNN_OK;
}

static cnn_status rd_le(reader *r, int bytes, const char *field, uint64_t *out)
{
    const unsigned char *p;
    cnn_status st = rd_take(r, (size_t)bytes, field, &p);
    *out = st ? 0 : get_le(p, bytes);
    return st;
}

static cnn_status rd_u8(reader *r, const char *field, uint8_t *out)
{
    uint64_t v = 0;
    cnn_status st = rd_le(r, 1, field, &v);
    *out = (uint8_t)v;
    return st;
}

static cnn_status rd_u32(reader *r, const char *field, uint32_t *out)
{
    uint64_t v = 0;
    cnn_status st = rd_le(r, 4, field, &v);
    *out = (uint32_t)v;
    return st;
}

static cnn_status rd_u64(reader *r, const char *field, uint64_t *out) { return rd_le(r, 8, field, out); }

static cnn_status rd_i32(reader *r, const char *field, int *out)
{
    uint32_t v = 0;
    cnn_status st = rd_u32(r, field, &v);
    *out = to_i32(v);
    return st;
}

static cnn_status rd_f32(reader *r, const char *field, float *out)
{
    uint32_t v = 0;
    cnn_status st = rd_u32(r, field, &v);
    *out = bits_float(v);
    return st;
}

static cnn_status rd_pair(reader *r, const char *field, int v[2])
{
    cnn_status st = rd_i32(r, field, &v[0]);
    return st ? st : rd_i32(r, field, &v[1]);
}

/* A field as write_field stores it. Enum fields keep any 32-bit value (as
 * the int it encodes) for the layer's own validation to judge in step 4. */
static cnn_status read_field(reader *r, cnn_layer_spec *s, const cnn_layer_field *f)
{
    char *p = (char *)s + f->offset;
    cnn_status st = CNN_OK;
    int v = 0;
    switch (f->type) {
    case CNN_FIELD_COUNT:
    case CNN_FIELD_AXIS: return rd_i32(r, f->key, (int *)p);
    case CNN_FIELD_PAIR: return rd_pair(r, f->key, (int *)p);
    case CNN_FIELD_PADDING4:
    case CNN_FIELD_CROPPING4:
        if ((st = rd_pair(r, f->key, (int *)p)))
            return st;
        return rd_pair(r, f->key, (int *)p + 2);
    case CNN_FIELD_OPT_PAIR: {
        cnn_opt_pair *o = (cnn_opt_pair *)p;
        uint8_t set = 0;
        if ((st = rd_u8(r, f->key, &set)) || (st = rd_pair(r, f->key, o->value)))
            return st;
        if (set > 1 || (!set && (o->value[0] || o->value[1])))
            return cnn_fail(CNN_ERR_FORMAT, "%s: %s: %s: expected set 0 with (0, 0) or set 1,"
                            " got set %u with (%d, %d)", r->name, r->where, f->key, set,
                            o->value[0], o->value[1]);
        o->set = set;
        return CNN_OK;
    }
    case CNN_FIELD_CHOICE: /* the layer's own validation judges the value */
        return rd_i32(r, f->key, (int *)p);
    case CNN_FIELD_PADDING:
        st = rd_i32(r, f->key, &v);
        *(cnn_padding *)p = (cnn_padding)v;
        return st;
    case CNN_FIELD_ACTIVATION:
        st = rd_i32(r, f->key, &v);
        *(cnn_activation *)p = (cnn_activation)v;
        return st;
    case CNN_FIELD_USE_BIAS: {
        uint8_t no_bias = 0;
        if ((st = rd_u8(r, "no_bias", &no_bias)))
            return st;
        if (no_bias > 1)
            return cnn_fail(CNN_ERR_FORMAT, "%s: %s: no_bias must be 0 or 1, got %u", r->name,
                            r->where, no_bias);
        *(bool *)p = no_bias;
        return CNN_OK;
    }
    case CNN_FIELD_RATE:
    case CNN_FIELD_REAL:
    case CNN_FIELD_POSITIVE:
    case CNN_FIELD_NONNEGATIVE:
    case CNN_FIELD_L2: return rd_f32(r, f->key, (float *)p);
    case CNN_FIELD_SEED: return rd_u64(r, f->key, (uint64_t *)p);
    case CNN_FIELD_TARGET_SHAPE: {
        cnn_shape *t = (cnn_shape *)p;
        if ((st = rd_i32(r, "target rank", &t->rank)))
            return st;
        for (int i = 0; i < 3; i++)
            if ((st = rd_i32(r, "target shape", &t->dims[i])))
                return st;
        /* unused dimensions must be 0, as for the input shape */
        for (int i = t->rank >= 0 && t->rank < 3 ? t->rank : 3; i < 3; i++)
            if (t->dims[i] != 0)
                return cnn_fail(CNN_ERR_FORMAT, "%s: %s: target shape of rank %d with unused"
                                " dimension %d = %d (expected 0)", r->name, r->where, t->rank,
                                i, t->dims[i]);
        return CNN_OK;
    }
    case CNN_FIELD_NAME:
    case CNN_FIELD_SHAPE: break;
    }
    return CNN_OK;
}

static cnn_status read_layer(reader *r, uint32_t index, file_layer *fl)
{
    cnn_status st;
    uint32_t kind;
    snprintf(r->where, sizeof r->where, "layer %u", index);
    if ((st = rd_u32(r, "kind", &kind)))
        return st;
    const cnn_layer_ops *ops = cnn_layer_kind_find((cnn_layer_kind)kind);
    if (!ops)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s: unknown layer kind %u", r->name, r->where,
                        kind);
    fl->spec.kind = (cnn_layer_kind)kind;
    fl->ops = ops;
    uint64_t name_len;
    const unsigned char *name;
    if ((st = rd_u8(r, "flags", &fl->flags)) || (st = rd_le(r, 2, "name length", &name_len)))
        return st;
    if (name_len == 0 || name_len >= CNN_LAYER_NAME_MAX)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s: name length %u is out of range (1..%d bytes)",
                        r->name, r->where, (unsigned)name_len, CNN_LAYER_NAME_MAX - 1);
    if ((st = rd_take(r, (size_t)name_len, "name", &name)))
        return st;
    if (memchr(name, '\0', (size_t)name_len))
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s: name contains a NUL byte", r->name, r->where);
    memcpy(fl->name, name, (size_t)name_len);
    fl->name[name_len] = '\0';
    snprintf(r->where, sizeof r->where, "layer %u (%s)", index, fl->name);

    for (int i = 0; i < fl->ops->n_fields; i++)
        if (in_record(&fl->ops->fields[i]) && (st = read_field(r, &fl->spec, &fl->ops->fields[i])))
            return st;
    return CNN_OK;
}

static cnn_status read_tensor(reader *r, const char *field, file_tensor *t)
{
    cnn_status st;
    if ((st = rd_u32(r, field, &t->rank)))
        return st;
    if (t->rank < 1 || t->rank > CNN_MAX_RANK)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s: %s: rank %u is out of range (1..%d)", r->name,
                        r->where, field, t->rank, CNN_MAX_RANK);
    t->count = 1;
    for (uint32_t d = 0; d < t->rank; d++) {
        uint64_t v;
        if ((st = rd_u64(r, field, &v)))
            return st;
        if (v < 1 || v > (uint64_t)INT64_MAX || cnn_mul_overflows(t->count, (int64_t)v, &t->count))
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: %s: %s: dimension %u is %llu; the tensor's size is invalid",
                            r->name, r->where, field, d, (unsigned long long)v);
        t->dims[d] = (int64_t)v;
    }
    if ((uint64_t)t->count > r->left / 4)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: %s: %s: %lld floats run past the end of the data (%llu bytes needed"
                        " at offset %zu, %zu left before the checksum)",
                        r->name, r->where, field, (long long)t->count,
                        (unsigned long long)t->count * 4, (size_t)(r->p - r->base), r->left);
    return rd_take(r, (size_t)t->count * 4, field, &t->data);
}

static cnn_status read_params(reader *r, file_model *f)
{
    cnn_status st;
    for (uint32_t i = 0; i < f->n_layers; i++) {
        file_layer *fl = &f->layers[i];
        snprintf(r->where, sizeof r->where, "parameters: layer %u (%s)", i, fl->name);
        if ((st = rd_u32(r, "tensor count", &fl->n_params)))
            return st;
        if (fl->n_params > CNN_LAYER_MAX_PARAMS)
            return cnn_fail(CNN_ERR_FORMAT, "%s: %s: %u tensors; a layer has at most %d",
                            r->name, r->where, fl->n_params, CNN_LAYER_MAX_PARAMS);
        for (uint32_t p = 0; p < fl->n_params; p++) {
            char field[32];
            snprintf(field, sizeof field, "tensor %u", p);
            if ((st = read_tensor(r, field, &fl->params[p])))
                return st;
        }
    }
    return CNN_OK;
}

static cnn_status read_training(reader *r, file_model *f)
{
    cnn_status st;
    snprintf(r->where, sizeof r->where, "training");
    if ((st = rd_u32(r, "loss", &f->loss)) || (st = rd_u32(r, "optimizer", &f->opt_kind))
        || (st = rd_f32(r, "learning_rate", &f->lr)) || (st = rd_f32(r, "momentum", &f->momentum))
        || (st = rd_u8(r, "nesterov", &f->nesterov)) || (st = rd_f32(r, "beta_1", &f->beta_1))
        || (st = rd_f32(r, "beta_2", &f->beta_2)) || (st = rd_f32(r, "rho", &f->rho))
        || (st = rd_f32(r, "epsilon", &f->epsilon))
        || (st = rd_u64(r, "optimizer steps", &f->opt_steps))
        || (st = rd_u32(r, "epoch", &f->train_epoch)) || (st = rd_u64(r, "step", &f->train_step))
        || (st = rd_u64(r, "slot count", &f->n_slots)))
        return st;
    if (f->n_slots > r->left / 8)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: training: optimizer slots: 2 x %llu floats run past the end of the"
                        " data (offset %zu, %zu bytes left before the checksum)",
                        r->name, (unsigned long long)f->n_slots, (size_t)(r->p - r->base),
                        r->left);
    size_t bytes = (size_t)f->n_slots * 4;
    if ((st = rd_take(r, bytes, "opt_m", &f->opt_m)))
        return st;
    return rd_take(r, bytes, "opt_v", &f->opt_v);
}

static cnn_status read_extensions(reader *r, file_model *f)
{
    cnn_status st;
    snprintf(r->where, sizeof r->where, "extensions");
    for (uint32_t i = 0; i < f->n_layers; i++) {
        file_layer *fl = &f->layers[i];
        for (int k = 0; k < fl->ops->n_fields; k++)
            if (in_extensions(&fl->ops->fields[k])
                && (st = read_field(r, &fl->spec, &fl->ops->fields[k])))
                return st;
    }
    if (!(f->flags & FLAG_TRAINING))
        return CNN_OK;
    if ((st = rd_f32(r, "clipnorm", &f->clipnorm)))
        return st;
    return rd_f32(r, "global_clipnorm", &f->global_clipnorm);
}

/* The class names section: counts and lengths are checked against the bytes
 * left before anything is allocated; the names themselves (UTF-8, control
 * characters, duplicates, the count against the output) are judged in step
 * 4 by cnn_model_set_class_names. */
static cnn_status read_class_names(reader *r, file_model *f)
{
    cnn_status st;
    snprintf(r->where, sizeof r->where, "class names");
    if ((st = rd_u32(r, "count", &f->n_class_names)))
        return st;
    if (f->n_class_names < 1 || f->n_class_names > CNN_MAX_CLASS_NAMES)
        return cnn_fail(CNN_ERR_FORMAT, "%s: class names: count %u is out of range (1..%d)",
                        r->name, f->n_class_names, CNN_MAX_CLASS_NAMES);
    /* each name takes at least 3 bytes: its length and one byte */
    if (f->n_class_names > r->left / 3)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: class names: %u names cannot fit in the %zu bytes left before the"
                        " checksum (each takes at least 3)",
                        r->name, f->n_class_names, r->left);
    f->class_names = calloc(f->n_class_names, sizeof *f->class_names);
    f->class_name_lengths = calloc(f->n_class_names, sizeof *f->class_name_lengths);
    if (!f->class_names || !f->class_name_lengths)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", r->name);
    for (uint32_t k = 0; k < f->n_class_names; k++) {
        snprintf(r->where, sizeof r->where, "class names: name %u", k);
        uint64_t len;
        const unsigned char *bytes;
        if ((st = rd_le(r, 2, "length", &len)))
            return st;
        if (len < 1 || len > CNN_CLASS_NAME_MAX)
            return cnn_fail(CNN_ERR_FORMAT, "%s: %s: length %u is out of range (1..%d bytes)",
                            r->name, r->where, (unsigned)len, CNN_CLASS_NAME_MAX);
        if ((st = rd_take(r, (size_t)len, "bytes", &bytes)))
            return st;
        f->class_names[k] = (const char *)bytes;
        f->class_name_lengths[k] = (size_t)len;
    }
    return CNN_OK;
}

/* The graph section; the indices are judged when the layers are added. */
static cnn_status read_graph(reader *r, file_model *f)
{
    cnn_status st;
    uint64_t len;
    snprintf(r->where, sizeof r->where, "graph");
    if ((st = rd_le(r, 2, "input name length", &len)))
        return st;
    if (len == 0 || len >= CNN_LAYER_NAME_MAX)
        return cnn_fail(CNN_ERR_FORMAT, "%s: graph: input name length %u is out of range (1..%d)",
                        r->name, (unsigned)len, CNN_LAYER_NAME_MAX - 1);
    if ((st = rd_take(r, (size_t)len, "input name", &f->input_name)))
        return st;
    f->input_name_len = (size_t)len;
    for (uint32_t i = 0; i < f->n_layers; i++) {
        file_layer *fl = &f->layers[i];
        snprintf(r->where, sizeof r->where, "graph: layer %u (%s)", i, fl->name);
        if ((st = rd_u8(r, "input count", &fl->n_inputs)))
            return st;
        if (fl->n_inputs < 1 || fl->n_inputs > CNN_MAX_LAYER_INPUTS)
            return cnn_fail(CNN_ERR_FORMAT, "%s: %s: input count %u is out of range (1..%d)",
                            r->name, r->where, fl->n_inputs, CNN_MAX_LAYER_INPUTS);
        for (int k = 0; k < fl->n_inputs; k++)
            if ((st = rd_i32(r, "input", &fl->inputs[k])))
                return st;
    }
    return CNN_OK;
}

/* Walks the layout after the preamble; the checksum has been verified. */
static cnn_status decode(const unsigned char *b, size_t size, const char *name, file_model *f)
{
    cnn_status st;
    reader r = {.base = b, .p = b + PREAMBLE_BYTES,
                .left = size - PREAMBLE_BYTES - CHECKSUM_BYTES, .name = name,
                .where = "header"};
    if ((st = rd_u32(&r, "flags", &f->flags)))
        return st;
    if (f->flags & ~(uint32_t)FLAGS_KNOWN)
        return cnn_fail(CNN_ERR_FORMAT, "%s: header: unknown flags 0x%x (known: 0x%x)", name,
                        f->flags, (unsigned)FLAGS_KNOWN);
    if ((f->flags & FLAG_TRAINING) && !(f->flags & FLAG_WEIGHTS))
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: header: flags 0x%x announce a training section without weights",
                        name, f->flags);
    if ((st = rd_u64(&r, "seed", &f->seed)) || (st = rd_u32(&r, "input rank", &f->rank)))
        return st;
    for (int i = 0; i < 3; i++)
        if ((st = rd_u32(&r, "input shape", &f->dims[i])))
            return st;
    if ((st = rd_u32(&r, "layer count", &f->n_layers)))
        return st;
    if (f->n_layers > MAX_LAYERS)
        return cnn_fail(CNN_ERR_FORMAT, "%s: header: layer count %u is more than the limit %d",
                        name, f->n_layers, MAX_LAYERS);
    if (f->n_layers > r.left / MIN_LAYER_BYTES)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: header: %u layers cannot fit in the %zu bytes left before the"
                        " checksum (each takes at least %d)",
                        name, f->n_layers, r.left, MIN_LAYER_BYTES);
    f->layers = calloc(f->n_layers ? f->n_layers : 1, sizeof *f->layers);
    if (!f->layers)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", name);
    for (uint32_t i = 0; i < f->n_layers; i++)
        if ((st = read_layer(&r, i, &f->layers[i])))
            return st;
    if ((f->flags & FLAG_WEIGHTS) && (st = read_params(&r, f)))
        return st;
    if ((f->flags & FLAG_TRAINING) && (st = read_training(&r, f)))
        return st;
    if ((f->flags & FLAG_EXTENSIONS) && (st = read_extensions(&r, f)))
        return st;
    if ((f->flags & FLAG_CLASS_NAMES) && (st = read_class_names(&r, f)))
        return st;
    if (f->flags & FLAG_DTYPE_POLICY) {
        snprintf(r.where, sizeof r.where, "dtype policy");
        if ((st = rd_u32(&r, "policy", &f->dtype_policy)))
            return st;
        if (f->dtype_policy != CNN_DTYPE_POLICY_MIXED_BFLOAT16)
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: dtype policy: policy %u is not known (expected %d,"
                            " mixed_bfloat16)",
                            name, f->dtype_policy, (int)CNN_DTYPE_POLICY_MIXED_BFLOAT16);
    }
    if ((f->flags & FLAG_GRAPH) && (st = read_graph(&r, f)))
        return st;
    if (r.left)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: %zu bytes at offset %zu belong to no section (the recorded length"
                        " is larger than the sections)",
                        name, r.left, (size_t)(r.p - r.base));
    return CNN_OK;
}

/* ---- Loading: step 4, rebuild ------------------------------------------------- */

/* Whatever the library rejects while rebuilding came from the file, so the
 * file is malformed; only running out of memory is not the file's fault. */
static cnn_status from_file(cnn_status st)
{
    return st == CNN_ERR_NO_MEMORY ? st : CNN_ERR_FORMAT;
}

static void format_dims(char *buf, size_t cap, int rank, const int64_t *dims)
{
    size_t used = (size_t)snprintf(buf, cap, "(");
    for (int d = 0; d < rank && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, d ? ", %lld" : "%lld",
                                 (long long)dims[d]);
    if (used < cap)
        snprintf(buf + used, cap - used, ")");
}

static void read_floats(float *dst, const unsigned char *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = bits_float((uint32_t)get_le(src + 4 * i, 4));
}

static cnn_status add_layers(cnn_model *m, const file_model *f, const char *name)
{
    for (uint32_t i = 0; i < f->n_layers; i++) {
        const file_layer *fl = &f->layers[i];
        if (fl->flags & ~(LAYER_AUTO_NAMED | LAYER_FROZEN))
            return cnn_fail(CNN_ERR_FORMAT, "%s: layer %u (%s): unknown flags 0x%x", name, i,
                            fl->name, fl->flags);
        cnn_layer_spec spec = fl->spec;
        const cnn_layer_field *name_field = cnn_layer_field_of_type(fl->ops, CNN_FIELD_NAME);
        if (name_field)
            *(const char **)((char *)&spec + name_field->offset) =
                fl->flags & LAYER_AUTO_NAMED ? NULL : fl->name;
        cnn_status st = cnn_model_add_reading(m, &spec, fl->n_inputs, fl->inputs);
        if (st) {
            cnn_error_prefix("%s: layer %u", name, i);
            return from_file(st);
        }
        if (strcmp(m->layers[i]->name, fl->name) != 0)
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: layer %u: the saved name \"%s\" is marked automatic, but the"
                            " model names it \"%s\"",
                            name, i, fl->name, m->layers[i]->name);
        if ((fl->flags & LAYER_FROZEN) && (st = cnn_model_set_trainable(m, (int)i, false)))
            return from_file(st);
    }
    return CNN_OK;
}

/* The layers' parameter count must stay far from overflowing: the model
 * sums it unchecked when it builds, and needs four floats per parameter
 * (values, gradients, two optimizer slots). A model this large could never
 * be allocated, so the file is refused rather than left to fail later. */
static cnn_status check_param_total(const cnn_model *m, const char *name, int64_t *out)
{
    const int64_t limit = INT64_MAX / 16;
    int64_t total = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int p = 0; p < m->layers[i]->n_params; p++)
            if (__builtin_add_overflow(total, m->layers[i]->params[p].count, &total)
                || total > limit)
                return cnn_fail(CNN_ERR_FORMAT,
                                "%s: layer %d (%s): the layers up to here have more than %lld"
                                " parameters; such a model cannot be allocated",
                                name, i, m->layers[i]->name, (long long)limit);
    *out = total;
    return CNN_OK;
}

/* Every tensor's shape against the architecture, before allocating. */
static cnn_status check_params(const cnn_model *m, const file_model *f, const char *name)
{
    for (uint32_t i = 0; i < f->n_layers; i++) {
        const cnn_layer *l = m->layers[i];
        const file_layer *fl = &f->layers[i];
        if ((int)fl->n_params != l->n_params)
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: parameters: layer %u (%s): expected %d weight tensors, the file"
                            " has %u",
                            name, i, l->name, l->n_params, fl->n_params);
        for (int p = 0; p < l->n_params; p++) {
            const cnn_param *want = &l->params[p];
            const file_tensor *got = &fl->params[p];
            bool same = (int)got->rank == want->rank;
            for (int d = 0; same && d < want->rank; d++)
                same = got->dims[d] == want->dims[d];
            if (!same) {
                char a[96], b[96];
                format_dims(a, sizeof a, want->rank, want->dims);
                format_dims(b, sizeof b, (int)got->rank, got->dims);
                return cnn_fail(CNN_ERR_FORMAT,
                                "%s: parameters: layer %u (%s): %s: expected shape %s, got %s",
                                name, i, l->name, want->name, a, b);
            }
        }
    }
    return CNN_OK;
}

static cnn_status restore_training(cnn_model *m, const file_model *f, const char *name)
{
    if (f->n_slots != (uint64_t)m->n_params)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: training: %llu optimizer slot values, the model has %lld parameters",
                        name, (unsigned long long)f->n_slots, (long long)m->n_params);
    if (f->nesterov > 1)
        return cnn_fail(CNN_ERR_FORMAT, "%s: training: nesterov must be 0 or 1, got %u", name,
                        f->nesterov);
    if (f->opt_steps > (uint64_t)CNN_MAX_STEPS || f->train_step > (uint64_t)CNN_MAX_STEPS
        || f->train_epoch > (uint32_t)INT_MAX)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: training: position out of range (optimizer steps %llu, epoch %u,"
                        " step %llu): steps must be at most 2^53, more than any real training"
                        " makes",
                        name, (unsigned long long)f->opt_steps, f->train_epoch,
                        (unsigned long long)f->train_step);
    cnn_compile_config cfg = {
        .loss = (cnn_loss)to_i32(f->loss & ~(uint32_t)LOSS_FROM_LOGITS),
        .from_logits = (f->loss & LOSS_FROM_LOGITS) != 0,
        .optimizer = {.kind = (cnn_optimizer_kind)to_i32(f->opt_kind), .learning_rate = f->lr,
                      .momentum = f->momentum, .nesterov = f->nesterov, .beta_1 = f->beta_1,
                      .beta_2 = f->beta_2, .rho = f->rho, .epsilon = f->epsilon,
                      .clipnorm = f->clipnorm, .global_clipnorm = f->global_clipnorm}};
    cnn_status st = cnn_model_compile(m, cfg);
    if (st) {
        cnn_error_prefix("%s: training", name);
        return from_file(st);
    }
    read_floats(m->opt_m, f->opt_m, m->n_params);
    read_floats(m->opt_v, f->opt_v, m->n_params);
    m->opt_steps = (int64_t)f->opt_steps;
    m->train_epoch = (int)f->train_epoch;
    m->train_step = (int64_t)f->train_step;
    return CNN_OK;
}

static cnn_status restore_class_names(cnn_model *m, const file_model *f, const char *name)
{
    cnn_status st = cnn_model_set_class_names_sized(m, f->class_names, f->class_name_lengths,
                                                    (int)f->n_class_names);
    if (!st)
        return CNN_OK;
    cnn_error_prefix("%s", name); /* the message starts "class names: name 3 ..." */
    return from_file(st);
}

static cnn_status rebuild(const file_model *f, const char *name, cnn_model **out)
{
    cnn_shape shape = {.rank = to_i32(f->rank)};
    for (int i = 0; i < 3; i++)
        shape.dims[i] = to_i32(f->dims[i]);
    if (shape.rank == 1 && (shape.dims[1] || shape.dims[2]))
        return cnn_fail(CNN_ERR_FORMAT, "%s: header: input shape of rank 1 with unused"
                        " dimensions %d, %d (expected 0)", name, shape.dims[1], shape.dims[2]);
    cnn_model *m = NULL;
    cnn_status st = cnn_model_create(&m, shape);
    if (st) {
        cnn_error_prefix("%s: header", name);
        return from_file(st);
    }
    int64_t n_params = 0;
    if (f->input_name) {
        char in[CNN_LAYER_NAME_MAX];
        snprintf(in, sizeof in, "%.*s", (int)f->input_name_len, (const char *)f->input_name);
        if (memchr(f->input_name, '\0', f->input_name_len)
            || (st = cnn_model_set_input_name(m, in))) {
            st = cnn_fail(CNN_ERR_FORMAT, "%s: graph: the input name is not a valid name", name);
            goto fail;
        }
    }
    if ((st = cnn_model_set_seed(m, f->seed)) || (st = add_layers(m, f, name))
        || (st = check_param_total(m, name, &n_params)))
        goto fail;
    /* The memory budget guards what a caller asks of a model, but nobody can
     * set it on a model that is still being loaded: allow what the file
     * itself holds (weights; with training, also the gradients and optimizer
     * slots that compile reserves), then give the caller the default back. */
    const int64_t budget = m->max_memory, held = n_params * (int64_t)sizeof(float)
                                                 * (f->flags & FLAG_TRAINING ? 4 : 1);
    if (held > budget)
        m->max_memory = held;
    if (f->flags & FLAG_WEIGHTS) {
        if ((st = check_params(m, f, name)))
            goto fail;
        if ((st = cnn_model_build(m))) {
            cnn_error_prefix("%s", name);
            st = from_file(st);
            goto fail;
        }
        for (uint32_t i = 0; i < f->n_layers; i++) {
            cnn_layer *l = m->layers[i];
            for (int p = 0; p < l->n_params; p++)
                read_floats(l->params[p].value, f->layers[i].params[p].data, l->params[p].count);
        }
    }
    if ((f->flags & FLAG_TRAINING) && (st = restore_training(m, f, name)))
        goto fail;
    if ((f->flags & FLAG_CLASS_NAMES) && (st = restore_class_names(m, f, name)))
        goto fail;
    m->dtype_policy = (cnn_dtype_policy)f->dtype_policy;
    m->max_memory = budget;
    *out = m;
    return CNN_OK;
fail:
    cnn_model_free(m);
    return st;
}

/* ---- Public API ------------------------------------------------------------ */

cnn_status cnn_model_load_memory(const void *bytes, size_t size, const char *name,
                                 cnn_model **out)
{
    if (out)
        *out = NULL;
    if (!name)
        name = "<memory>";
    if (!out || (!bytes && size))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s: load_memory: out must not be NULL, nor bytes when size > 0", name);
    const unsigned char *b = size ? bytes : (const unsigned char *)"";
    file_model f = {0};
    cnn_status st = check_preamble(b, size, name);
    if (!st)
        st = verify_checksum(b, size, name);
    if (!st)
        st = decode(b, size, name, &f);
    if (!st)
        st = rebuild(&f, name, out);
    free(f.layers);
    free(f.class_names);
    free(f.class_name_lengths);
    return st;
}

cnn_status cnn_model_load(const char *path, cnn_model **out)
{
    if (out)
        *out = NULL;
    if (!path || !out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "load: path and out must not be NULL");
    int fd;
    size_t size;
    uint64_t most = MAX_FILE_BYTES < SIZE_MAX / 2 ? MAX_FILE_BYTES : SIZE_MAX / 2;
    cnn_status st = cnn_file_open_read(path, "model file", most, &fd, &size);
    if (st)
        return st;
    /* The preamble first: a file that is not a model, or whose recorded
     * length is not its size, is refused before its size is allocated. */
    unsigned char head[PREAMBLE_BYTES];
    ssize_t n_head;
    do
        n_head = pread(fd, head, size < sizeof head ? size : sizeof head, 0);
    while (n_head < 0 && errno == EINTR);
    if (n_head < 0)
        st = cnn_io_error(path, "read", errno);
    else if ((size_t)n_head != (size < sizeof head ? size : sizeof head))
        st = cnn_fail(CNN_ERR_IO, "%s: the file changed size while it was read", path);
    else
        st = check_preamble(head, size, path);
    /* Reading a file takes its size in memory: the default budget bounds it
     * (its weights need as much again once loaded). */
    if (!st && size > (uint64_t)CNN_DEFAULT_MAX_MEMORY)
        st = cnn_fail(CNN_ERR_NO_MEMORY,
                      "%s: the file is %zu bytes; reading it needs more than the memory budget"
                      " of %lld bytes",
                      path, size, (long long)CNN_DEFAULT_MAX_MEMORY);
    if (st) {
        close(fd);
        return st;
    }
    unsigned char *buf;
    st = cnn_file_read_fd(fd, size, path, &buf);
    close(fd);
    if (!st)
        st = cnn_model_load_memory(buf, size, path, out);
    free(buf);
    return st;
}
