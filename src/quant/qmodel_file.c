/* The quantized model file (docs/QUANTIZATION.md, "File format"): magic
 * "CNNQUANT", a version, the shapes, the values' parameters, the ops with
 * their integers, and a CRC-32 of everything before it; little-endian
 * fixed-width fields. The loader checks every field against what the
 * kernels need before anything runs on it, so a hostile file is refused,
 * never run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "core/fileio.h"
#include "quant/qmodel_impl.h"

static const unsigned char MAGIC[8] = {'C', 'N', 'N', 'Q', 'U', 'A', 'N', 'T'};
enum {
    QFILE_VERSION = 1,
    QFILE_MAX_OPS = 100000,
    QFILE_MAX_DIM = 1 << 16,
    QFILE_GEOM_FIELDS = 13,
};
#define QFILE_MAX_ELEMS ((int64_t)1 << 26) /* per example, one tensor */
#define QFILE_MAX_BYTES ((uint64_t)1 << 31)

/* ---- Writing ------------------------------------------------------------ */

typedef struct {
    unsigned char *buf;
    size_t len, cap;
    bool failed;
} wbuf;

static void put(wbuf *w, const void *p, size_t n)
{
    if (w->failed)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        unsigned char *b = realloc(w->buf, cap);
        if (!b) {
            w->failed = true;
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_u32(wbuf *w, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(w, b, 4);
}

static void put_i32(wbuf *w, int32_t v) { put_u32(w, (uint32_t)v); }
static void put_i64(wbuf *w, int64_t v)
{
    put_u32(w, (uint32_t)((uint64_t)v & 0xffffffffu));
    put_u32(w, (uint32_t)((uint64_t)v >> 32));
}
static void put_f32(wbuf *w, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(w, u);
}
static void put_i32s(wbuf *w, const int32_t *v, int n)
{
    for (int i = 0; i < n; i++)
        put_i32(w, v[i]);
}

static void put_shape(wbuf *w, cnn_shape s)
{
    put_u32(w, (uint32_t)s.rank);
    for (int d = 0; d < s.rank; d++)
        put_i32(w, s.dims[d]);
}

static void geom_fields(const cnn_conv_geom *g, int32_t f[QFILE_GEOM_FIELDS])
{
    int32_t v[QFILE_GEOM_FIELDS] = {g->h,  g->w,  g->c,       g->kh,       g->kw, g->sh, g->sw,
                                    g->dh, g->dw, g->pad_top, g->pad_left, g->oh, g->ow};
    memcpy(f, v, sizeof v);
}

static void put_op(wbuf *w, const cnn_qop *op)
{
    put_u32(w, (uint32_t)op->kind);
    size_t len = strlen(op->name);
    put_u32(w, (uint32_t)len);
    put(w, op->name, len);
    put_u32(w, (uint32_t)op->n_inputs);
    for (int i = 0; i < op->n_inputs; i++)
        put_u32(w, (uint32_t)op->inputs[i]);
    put_u32(w, (uint32_t)op->output);
    int32_t g[QFILE_GEOM_FIELDS];
    geom_fields(&op->g, g);
    put_i32s(w, g, QFILE_GEOM_FIELDS);
    int32_t head[5] = {op->mult, op->N, op->K, op->lo, op->hi};
    put_i32s(w, head, 5);
    switch (op->kind) {
    case CNN_QOP_CONV:
    case CNN_QOP_DEPTHWISE:
    case CNN_QOP_DENSE:
        put(w, op->weights, (size_t)op->K * (size_t)op->N);
        put_i32s(w, op->bias, op->N);
        put_i32s(w, op->multiplier, op->N);
        put_i32s(w, op->shift, op->N);
        break;
    case CNN_QOP_ADD: {
        const cnn_qadd_spec *a = &op->add;
        int32_t v[11] = {a->a_zero, a->b_zero,  a->y_zero, a->a_mult, a->a_shift, a->b_mult,
                         a->b_shift, a->y_mult, a->y_shift, a->lo,    a->hi};
        put_i32s(w, v, 11);
        break;
    }
    case CNN_QOP_CONCAT:
        for (int i = 0; i < op->n_inputs; i++) {
            put_i32(w, op->channels[i]);
            put_i32(w, op->multiplier[i]);
            put_i32(w, op->shift[i]);
        }
        break;
    case CNN_QOP_GLOBAL_AVG:
        put_i32s(w, op->multiplier, op->N);
        put_i32s(w, op->shift, op->N);
        break;
    case CNN_QOP_PAD: put_i32s(w, op->pad, 4); break;
    case CNN_QOP_LUT: put(w, op->lut, 256); break;
    default: break;
    }
}

/* The file's bytes in a malloc'd buffer. */
static cnn_status serialize(const cnn_qmodel *q, unsigned char **out, size_t *size)
{
    wbuf w = {0};
    put(&w, MAGIC, sizeof MAGIC);
    put_u32(&w, QFILE_VERSION);
    put_u32(&w, q->softmax ? 1 : 0);
    put_shape(&w, q->input_shape);
    put_shape(&w, q->output_shape);
    put_i64(&w, q->float_params);
    put_u32(&w, (uint32_t)q->nvalues);
    for (int v = 0; v < q->nvalues; v++) {
        put_i64(&w, q->values[v].elems);
        put_f32(&w, q->values[v].p.scale);
        put_i32(&w, q->values[v].p.zero_point);
    }
    put_u32(&w, (uint32_t)q->output_value);
    put_u32(&w, (uint32_t)q->nops);
    for (int k = 0; k < q->nops; k++)
        put_op(&w, &q->ops[k]);
    if (!w.failed)
        put_u32(&w, (uint32_t)crc32(crc32(0L, Z_NULL, 0), w.buf, (uInt)w.len));
    if (w.failed) {
        free(w.buf);
        return cnn_fail(CNN_ERR_NO_MEMORY, "quantized model: out of memory");
    }
    *out = w.buf;
    *size = w.len;
    return CNN_OK;
}

cnn_status cnn_qmodel_save(const cnn_qmodel *q, const char *path)
{
    if (!q || !path)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantized save: model and path must not be "
                                                  "NULL");
    unsigned char *bytes = NULL;
    size_t size = 0;
    cnn_status st = serialize(q, &bytes, &size);
    if (st)
        return st;
    cnn_atomic_file f;
    st = cnn_atomic_open(&f, path);
    if (!st)
        st = cnn_atomic_close(&f, cnn_atomic_write(&f, bytes, size));
    free(bytes);
    return st;
}

/* ---- Reading ------------------------------------------------------------ */

typedef struct {
    const unsigned char *p;
    size_t size, at;
    const char *name;
    char where[128]; /* the part being read, for messages */
} rbuf;

static cnn_status bad(const rbuf *r, const char *field, const char *expected, long long got)
{
    return cnn_fail(CNN_ERR_FORMAT, "%s: %s%s: expected %s, got %lld", r->name, r->where, field,
                    expected, got);
}

static cnn_status take(rbuf *r, size_t n, const char *field, const unsigned char **out)
{
    if (n > r->size - r->at)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s%s: the file ends at byte %zu, %zu more bytes "
                                        "expected",
                        r->name, r->where, field, r->size, n - (r->size - r->at));
    *out = r->p + r->at;
    r->at += n;
    return CNN_OK;
}

static cnn_status get_u32(rbuf *r, const char *field, uint32_t *v)
{
    const unsigned char *b = NULL;
    cnn_status st = take(r, 4, field, &b);
    if (!st)
        *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return st;
}

static cnn_status get_i32(rbuf *r, const char *field, int32_t *v)
{
    uint32_t u;
    cnn_status st = get_u32(r, field, &u);
    if (!st)
        memcpy(v, &u, 4); /* two's complement */
    return st;
}

/* An int32 within [lo, hi]. */
static cnn_status get_int(rbuf *r, const char *field, int64_t lo, int64_t hi, int32_t *v)
{
    cnn_status st = get_i32(r, field, v);
    if (st)
        return st;
    if (*v < lo || *v > hi) {
        char e[64];
        snprintf(e, sizeof e, "%lld to %lld", (long long)lo, (long long)hi);
        return bad(r, field, e, *v);
    }
    return CNN_OK;
}

static cnn_status get_shape(rbuf *r, const char *field, cnn_shape *s)
{
    int32_t rank;
    cnn_status st = get_int(r, field, 1, 3, &rank);
    memset(s, 0, sizeof *s);
    s->rank = rank;
    for (int d = 0; d < rank && !st; d++)
        st = get_int(r, field, 1, QFILE_MAX_DIM, &s->dims[d]);
    return st;
}

static cnn_status get_i32_array(rbuf *r, const char *field, int n, int32_t **out)
{
    *out = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    if (!*out)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", r->name);
    cnn_status st = CNN_OK;
    for (int i = 0; i < n && !st; i++)
        st = get_i32(r, field, &(*out)[i]);
    return st;
}

/* Multipliers and shifts as cnn_q_multiplier makes them. */
static cnn_status check_multipliers(const rbuf *r, const int32_t *mult, const int32_t *shift,
                                    int n, int max_shift)
{
    for (int i = 0; i < n; i++) {
        if (mult[i] < 0)
            return bad(r, "multiplier", "0 to 2147483647", mult[i]);
        if (shift[i] < -31 || shift[i] > max_shift)
            return bad(r, "shift", max_shift ? "-31 to 30" : "-31 to 0", shift[i]);
    }
    return CNN_OK;
}

static int64_t elems_of(int64_t a, int64_t b, int64_t c) { return a * b * c; }

/* The op's fields against each other and against its values. */
static cnn_status check_op(const rbuf *r, const cnn_qmodel *q, const cnn_qop *op)
{
    const cnn_conv_geom *g = &op->g;
    int64_t in = q->values[op->inputs[0]].elems, out = q->values[op->output].elems;
    char e[96];
    switch (op->kind) {
    case CNN_QOP_CONV:
    case CNN_QOP_DEPTHWISE:
    case CNN_QOP_MAXPOOL:
    case CNN_QOP_AVGPOOL:
    case CNN_QOP_GLOBAL_AVG:
    case CNN_QOP_GLOBAL_MAX:
        if (in != elems_of(g->h, g->w, g->c))
            return snprintf(e, sizeof e, "h * w * c = %lld (the input's size)", (long long)in),
                   bad(r, "geometry", e, elems_of(g->h, g->w, g->c));
        break;
    default: break;
    }
    switch (op->kind) {
    case CNN_QOP_CONV:
        if (op->K != g->kh * g->kw * g->c)
            return bad(r, "K", "kh * kw * c", op->K);
        if (op->N < 1 || out != elems_of(g->oh, g->ow, op->N))
            return bad(r, "N", "the output's size over oh * ow", op->N);
        break;
    case CNN_QOP_DEPTHWISE:
        if (op->mult < 1 || op->N != g->c * op->mult)
            return bad(r, "N", "c * multiplier", op->N);
        if (op->K != g->kh * g->kw)
            return bad(r, "K", "kh * kw", op->K);
        if (out != elems_of(g->oh, g->ow, op->N))
            return bad(r, "N", "the output's size over oh * ow", op->N);
        break;
    case CNN_QOP_DENSE:
        if (op->K != in)
            return bad(r, "K", "the input's size", op->K);
        if (op->N != out)
            return bad(r, "N", "the output's size", op->N);
        break;
    case CNN_QOP_MAXPOOL:
    case CNN_QOP_AVGPOOL:
    case CNN_QOP_GLOBAL_AVG:
    case CNN_QOP_GLOBAL_MAX:
        if (out != elems_of(g->oh, g->ow, g->c))
            return bad(r, "geometry", "oh * ow * c = the output's size", elems_of(g->oh, g->ow, g->c));
        break;
    case CNN_QOP_CLAMP:
    case CNN_QOP_LUT:
        if (in != out)
            return bad(r, "output", "as many values as the input", out);
        break;
    case CNN_QOP_ADD:
        if (q->values[op->inputs[1]].elems != out || in != out)
            return bad(r, "inputs", "as many values as the output", in);
        if (op->add.a_zero != q->values[op->inputs[0]].p.zero_point ||
            op->add.b_zero != q->values[op->inputs[1]].p.zero_point ||
            op->add.y_zero != q->values[op->output].p.zero_point)
            return bad(r, "zero points", "those of the values", op->add.a_zero);
        break;
    case CNN_QOP_CONCAT: {
        int64_t total = 0;
        for (int k = 0; k < op->n_inputs; k++)
            total += op->channels[k];
        if (out % total)
            return bad(r, "channels", "a sum dividing the output's size", total);
        for (int k = 0; k < op->n_inputs; k++)
            if (q->values[op->inputs[k]].elems != out / total * op->channels[k])
                return bad(r, "channels", "each input's size over the pixels", op->channels[k]);
        break;
    }
    case CNN_QOP_PAD:
        if (in != elems_of(g->h, g->w, g->c))
            return bad(r, "geometry", "h * w * c = the input's size", elems_of(g->h, g->w, g->c));
        if (g->oh != g->h + op->pad[0] + op->pad[1] || g->ow != g->w + op->pad[2] + op->pad[3])
            return bad(r, "oh", "h + top + bottom (and ow likewise)", g->oh);
        if (out != elems_of(g->oh, g->ow, g->c))
            return bad(r, "geometry", "oh * ow * c = the output's size", elems_of(g->oh, g->ow, g->c));
        break;
    default: break;
    }
    return CNN_OK;
}

static cnn_status read_op(rbuf *r, cnn_qmodel *q, int k)
{
    cnn_qop *op = &q->ops[k];
    memset(op, 0, sizeof *op);
    op->layer = op->bnlayer = op->wlayer = -1;
    int32_t v;
    snprintf(r->where, sizeof r->where, "op %d: ", k);
    cnn_status st = get_int(r, "kind", 1, CNN_QOP_KIND_END - 1, &v);
    if (st)
        return st;
    op->kind = (cnn_qop_kind)v;
    const unsigned char *b = NULL;
    if ((st = get_int(r, "name length", 1, CNN_QOP_NAME_MAX - 1, &v)) ||
        (st = take(r, (size_t)v, "name", &b)))
        return st;
    memcpy(op->name, b, (size_t)v);
    op->name[v] = 0;
    if (strlen(op->name) != (size_t)v)
        return bad(r, "name", "no NUL bytes", (long long)strlen(op->name));
    snprintf(r->where, sizeof r->where, "op %d '%s': ", k, op->name);
    int max_in = op->kind == CNN_QOP_CONCAT ? CNN_QOP_MAX_INPUTS : op->kind == CNN_QOP_ADD ? 2 : 1;
    int min_in = op->kind == CNN_QOP_ADD ? 2 : 1;
    if ((st = get_int(r, "inputs", min_in, max_in, &v)))
        return st;
    op->n_inputs = v;
    for (int i = 0; i < op->n_inputs && !st; i++) {
        st = get_int(r, "input", 0, k, &v); /* a value made before this op */
        op->inputs[i] = v;
    }
    if (st || (st = get_int(r, "output", k + 1, k + 1, &v)))
        return st;
    op->output = v;
    int32_t g[QFILE_GEOM_FIELDS];
    static const char *const gname[QFILE_GEOM_FIELDS] = {
        "h", "w", "c", "kh", "kw", "sh", "sw", "dh", "dw", "pad_top", "pad_left", "oh", "ow"};
    for (int i = 0; i < QFILE_GEOM_FIELDS && !st; i++) {
        bool pad = i == 9 || i == 10;
        /* a pad, or a field the op does not use, may be 0 */
        st = get_int(r, gname[i], 0, pad ? QFILE_MAX_DIM : QFILE_MAX_DIM, &g[i]);
    }
    if (st)
        return st;
    op->g = (cnn_conv_geom){g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10],
                            g[11], g[12]};
    bool windowed = op->kind == CNN_QOP_CONV || op->kind == CNN_QOP_DEPTHWISE ||
                    op->kind == CNN_QOP_MAXPOOL || op->kind == CNN_QOP_AVGPOOL ||
                    op->kind == CNN_QOP_GLOBAL_AVG || op->kind == CNN_QOP_GLOBAL_MAX;
    if (windowed || op->kind == CNN_QOP_PAD)
        for (int i = 0; i < QFILE_GEOM_FIELDS; i++) {
            bool used = windowed || i < 3 || i > 10;
            if (used && i != 9 && i != 10 && g[i] < 1)
                return bad(r, gname[i], "1 to 65536", g[i]);
        }
    int32_t mult, N, K, lo, hi;
    if ((st = get_int(r, "multiplier count", 0, QFILE_MAX_DIM, &mult)) ||
        (st = get_int(r, "N", 0, QFILE_MAX_ELEMS, &N)) ||
        (st = get_int(r, "K", 0, CNN_QGEMM_MAX_K, &K)) || (st = get_int(r, "lo", -128, 127, &lo)) ||
        (st = get_int(r, "hi", lo, 127, &hi)))
        return st;
    op->mult = mult;
    op->N = N;
    op->K = K;
    op->lo = lo;
    op->hi = hi;
    switch (op->kind) {
    case CNN_QOP_CONV:
    case CNN_QOP_DEPTHWISE:
    case CNN_QOP_DENSE: {
        if (N < 1 || K < 1)
            return bad(r, N < 1 ? "N" : "K", "at least 1", N < 1 ? N : K);
        size_t wn = (size_t)K * (size_t)N;
        if ((st = take(r, wn, "weights", &b)))
            return st;
        if (!(op->weights = malloc(wn)))
            return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", r->name);
        memcpy(op->weights, b, wn);
        if ((st = get_i32_array(r, "bias", N, &op->bias)) ||
            (st = get_i32_array(r, "multiplier", N, &op->multiplier)) ||
            (st = get_i32_array(r, "shift", N, &op->shift)) ||
            (st = check_multipliers(r, op->multiplier, op->shift, N, 30)))
            return st;
        break;
    }
    case CNN_QOP_ADD: {
        int32_t a[11];
        static const char *const an[11] = {"a_zero", "b_zero", "y_zero", "a_mult", "a_shift",
                                            "b_mult", "b_shift", "y_mult", "y_shift", "add lo",
                                            "add hi"};
        for (int i = 0; i < 11 && !st; i++)
            st = get_i32(r, an[i], &a[i]);
        if (st)
            return st;
        op->add = (cnn_qadd_spec){a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10]};
        /* the inputs' factors are at most 1/2 (shift <= 0): their sum cannot overflow */
        if ((st = check_multipliers(r, &op->add.a_mult, &op->add.a_shift, 1, 0)) ||
            (st = check_multipliers(r, &op->add.b_mult, &op->add.b_shift, 1, 0)) ||
            (st = check_multipliers(r, &op->add.y_mult, &op->add.y_shift, 1, 30)))
            return st;
        if (op->add.lo < -128 || op->add.hi > 127 || op->add.lo > op->add.hi)
            return bad(r, "add lo", "-128 <= lo <= hi <= 127", op->add.lo);
        break;
    }
    case CNN_QOP_CONCAT:
        op->channels = calloc((size_t)op->n_inputs, sizeof(int));
        op->multiplier = calloc((size_t)op->n_inputs, sizeof(int32_t));
        op->shift = calloc((size_t)op->n_inputs, sizeof(int32_t));
        if (!op->channels || !op->multiplier || !op->shift)
            return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", r->name);
        for (int i = 0; i < op->n_inputs && !st; i++) {
            if (!(st = get_int(r, "channels", 1, QFILE_MAX_DIM, &op->channels[i])) &&
                !(st = get_i32(r, "multiplier", &op->multiplier[i])))
                st = get_i32(r, "shift", &op->shift[i]);
        }
        if (st || (st = check_multipliers(r, op->multiplier, op->shift, op->n_inputs, 30)))
            return st;
        break;
    case CNN_QOP_GLOBAL_AVG:
        if (N != g[2])
            return bad(r, "N", "c (one multiplier per channel)", N);
        if ((int64_t)g[0] * g[1] > (1 << 22))
            return bad(r, "h", "h * w at most 2^22", (long long)g[0] * g[1]);
        if ((st = get_i32_array(r, "multiplier", N, &op->multiplier)) ||
            (st = get_i32_array(r, "shift", N, &op->shift)) ||
            (st = check_multipliers(r, op->multiplier, op->shift, N, 30)))
            return st;
        break;
    case CNN_QOP_PAD:
        for (int i = 0; i < 4 && !st; i++)
            st = get_int(r, "padding", 0, QFILE_MAX_DIM, &op->pad[i]);
        if (st)
            return st;
        break;
    case CNN_QOP_LUT:
        if ((st = take(r, 256, "table", &b)))
            return st;
        memcpy(op->lut, b, 256);
        break;
    default: break;
    }
    return check_op(r, q, op);
}

static cnn_status parse(rbuf *r, cnn_qmodel *q)
{
    const unsigned char *b = NULL;
    cnn_status st = take(r, sizeof MAGIC, "magic", &b);
    if (st)
        return st;
    if (memcmp(b, MAGIC, sizeof MAGIC))
        return cnn_fail(CNN_ERR_FORMAT, "%s: magic: expected \"CNNQUANT\" (an int8 quantized "
                                        "model), got other bytes", r->name);
    int32_t v;
    if ((st = get_int(r, "version", QFILE_VERSION, QFILE_VERSION, &v)))
        return st;
    if (r->size - r->at < 4)
        return take(r, 4, "checksum", &b);
    uint32_t want = (uint32_t)r->p[r->size - 4] | (uint32_t)r->p[r->size - 3] << 8 |
                    (uint32_t)r->p[r->size - 2] << 16 | (uint32_t)r->p[r->size - 1] << 24;
    uint32_t got = (uint32_t)crc32(crc32(0L, Z_NULL, 0), r->p, (uInt)(r->size - 4));
    if (want != got)
        return cnn_fail(CNN_ERR_FORMAT, "%s: checksum: expected CRC-32 0x%08x (stored), got "
                                        "0x%08x: the file is damaged",
                        r->name, want, got);
    r->size -= 4;
    if ((st = get_int(r, "flags", 0, 1, &v)))
        return st;
    q->softmax = v == 1;
    if ((st = get_shape(r, "input shape", &q->input_shape)) ||
        (st = get_shape(r, "output shape", &q->output_shape)))
        return st;
    uint32_t plo, phi;
    if ((st = get_u32(r, "float parameters", &plo)) || (st = get_u32(r, "float parameters", &phi)))
        return st;
    if (phi >> 31)
        return bad(r, "float parameters", "a count of 0 or more", (long long)phi);
    q->float_params = (int64_t)((uint64_t)phi << 32 | plo);
    if ((st = get_int(r, "value count", 2, QFILE_MAX_OPS + 1, &v)))
        return st;
    q->values = calloc((size_t)v, sizeof *q->values);
    if (!q->values)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", r->name);
    q->nvalues = v;
    for (int i = 0; i < q->nvalues; i++) {
        cnn_qvalue *val = &q->values[i];
        uint32_t lo32, hi32, sbits;
        snprintf(r->where, sizeof r->where, "value %d: ", i);
        if ((st = get_u32(r, "size", &lo32)) || (st = get_u32(r, "size", &hi32)) ||
            (st = get_u32(r, "scale", &sbits)) ||
            (st = get_int(r, "zero point", -128, 127, &val->p.zero_point)))
            return st;
        uint64_t elems = (uint64_t)hi32 << 32 | lo32;
        if (elems < 1 || elems > (uint64_t)QFILE_MAX_ELEMS)
            return bad(r, "size", "1 to 67108864", (long long)elems);
        val->elems = (int64_t)elems;
        memcpy(&val->p.scale, &sbits, 4);
        if (!(isfinite(val->p.scale) && val->p.scale > 0))
            return cnn_fail(CNN_ERR_FORMAT, "%s: %sscale: expected a finite number above 0, got %g",
                            r->name, r->where, (double)val->p.scale);
    }
    r->where[0] = 0;
    if (q->values[0].elems != cnn_qshape_elems(q->input_shape))
        return bad(r, "value 0 size", "the input shape's size", q->values[0].elems);
    if ((st = get_int(r, "output value", 1, q->nvalues - 1, &q->output_value)))
        return st;
    if (q->values[q->output_value].elems != cnn_qshape_elems(q->output_shape))
        return bad(r, "output value size", "the output shape's size",
                   q->values[q->output_value].elems);
    if ((st = get_int(r, "op count", q->nvalues - 1, q->nvalues - 1, &v)))
        return st;
    q->ops = calloc((size_t)v, sizeof *q->ops);
    if (!q->ops)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", r->name);
    for (int k = 0; k < v; k++) {
        q->nops = k + 1; /* so the free below sees it */
        if ((st = read_op(r, q, k)))
            return st;
    }
    r->where[0] = 0;
    if (r->at != r->size)
        return bad(r, "end", "the checksum after the last op; extra bytes",
                   (long long)(r->size - r->at));
    return cnn_qmodel_prepare(q);
}

cnn_status cnn_qmodel_load_memory(const void *bytes, size_t size, const char *name,
                                  cnn_qmodel **out)
{
    if (!out || (!bytes && size))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantized load: out must not be NULL");
    *out = NULL;
    cnn_qmodel *q = NULL;
    cnn_status st = cnn_qmodel_alloc(&q, 1);
    if (st)
        return st;
    rbuf r = {.p = bytes ? bytes : (const unsigned char *)"", .size = size,
              .name = name ? name : "quantized model"};
    st = parse(&r, q);
    if (st) {
        cnn_qmodel_free(q);
        return st;
    }
    *out = q;
    return CNN_OK;
}

cnn_status cnn_qmodel_load(const char *path, cnn_qmodel **out)
{
    if (!path || !out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "quantized load: path and out must not be NULL");
    *out = NULL;
    unsigned char *bytes = NULL;
    size_t size = 0;
    cnn_status st = cnn_file_read(path, "quantized model file", QFILE_MAX_BYTES, &bytes, &size);
    if (st)
        return st;
    st = cnn_qmodel_load_memory(bytes, size, path, out);
    free(bytes);
    return st;
}
