/* The layers that keep the data's size: Activation, Dropout, Flatten and
 * Reshape. Flatten and Reshape keep NHWC order, so (h, w, c) -> (h*w*c)
 * matches Keras. */
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "kernels/activation.h"
#include "layers/layer.h"

static size_t example_size(const cnn_layer *l) { return (size_t)cnn_shape_size(l->in); }

typedef struct {
    float *dst;
    const float *src;
} copy_job;

static void copy_range(void *p, int64_t b, int64_t e)
{
    const copy_job *j = p;
    memcpy(j->dst + b, j->src + b, (size_t)(e - b) * sizeof(float));
}

/* Large copies are split between the threads: a tensor that fits the
 * caches moves at the speed of two cores' caches. */
static void copy_floats(cnn_pool *pool, float *dst, const float *src, int64_t n)
{
    copy_job j = {dst, src};
    cnn_pool_elementwise(pool, n, copy_range, &j);
}

static void copy_forward(cnn_layer *l, const cnn_layer_io *io)
{
    copy_floats(io->pool, io->y, io->x, (int64_t)io->batch * (int64_t)example_size(l));
}

static void copy_backward(cnn_layer *l, const cnn_layer_io *io)
{
    if (io->dx)
        copy_floats(io->pool, io->dx, io->dy, (int64_t)io->batch * (int64_t)example_size(l));
}

static cnn_status same_shape_infer(cnn_layer *l, cnn_shape in)
{
    l->out = in;
    return CNN_OK;
}

/* The creators, named by the ops tables below. */
static cnn_status cnn_layer_activation_create(cnn_layer **out, const cnn_layer_spec *spec,
                                              const char *name);
static cnn_status cnn_layer_dropout_create(cnn_layer **out, const cnn_layer_spec *spec,
                                           const char *name);
static cnn_status cnn_layer_flatten_create(cnn_layer **out, const cnn_layer_spec *spec,
                                           const char *name);
static cnn_status cnn_layer_reshape_create(cnn_layer **out, const cnn_layer_spec *spec,
                                           const char *name);

/* ---- Activation: the model applies l->activation after the copy. ---- */
/* The fields in Keras's positional order, which is the order of the
 * model file's record. */
static const cnn_layer_field activation_fields[] = {
    {"activation", CNN_FIELD_ACTIVATION, CNN_SPEC_FIELD(activation.activation),
     CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(activation.name), 0, 0},
};

const cnn_layer_ops cnn_activation_ops = {
    .create = cnn_layer_activation_create,
    .kind = CNN_LAYER_ACTIVATION,
    .type_name = "Activation",
    .auto_name = "activation",
    .infer = same_shape_infer,
    .forward = copy_forward,
    .backward = copy_backward,
    CNN_LAYER_FIELDS(activation_fields),
    .keras_keys = "activation",
};

static cnn_status cnn_layer_activation_create(cnn_layer **out, const cnn_layer_spec *spec,
                                              const char *name)
{
    *out = NULL;
    const cnn_activation_config *cfg = &spec->u.activation;
    if ((unsigned)cfg->activation >= CNN_ACTIVATION_COUNT)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (Activation): unknown activation %d", name,
                        (int)cfg->activation);
    cnn_status st = cnn_layer_alloc(out, sizeof(cnn_layer), &cnn_activation_ops, name);
    if (st == CNN_OK) {
        (*out)->spec = *spec;
        (*out)->activation = cfg->activation;
    }
    return st;
}

/* ---- Flatten ---- */
static cnn_status flatten_infer(cnn_layer *l, cnn_shape in)
{
    int64_t n = cnn_shape_size(in);
    if (n > INT32_MAX)
        return cnn_fail(CNN_ERR_SHAPE, "%s (Flatten): %lld features is too many", l->name,
                        (long long)n);
    l->out = cnn_shape_flat((int)n);
    return CNN_OK;
}

static const cnn_layer_field flatten_fields[] = {
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(flatten.name), 0, 0},
};

const cnn_layer_ops cnn_flatten_ops = {
    .create = cnn_layer_flatten_create,
    .kind = CNN_LAYER_FLATTEN,
    .type_name = "Flatten",
    .auto_name = "flatten",
    .infer = flatten_infer,
    .forward = copy_forward,
    .backward = copy_backward,
    CNN_LAYER_FIELDS(flatten_fields),
    .keras_keys = "data_format",
    .keras_build_config = true,
};

static cnn_status cnn_layer_flatten_create(cnn_layer **out, const cnn_layer_spec *spec,
                                           const char *name)
{
    cnn_status st = cnn_layer_alloc(out, sizeof(cnn_layer), &cnn_flatten_ops, name);
    if (st == CNN_OK)
        (*out)->spec = *spec;
    return st;
}

/* ---- Reshape: the same values under another shape ---- */
static cnn_status reshape_infer(cnn_layer *l, cnn_shape in)
{
    cnn_shape t = l->spec.u.reshape.target_shape;
    int64_t n = cnn_shape_size(in), known = 1;
    int unknown = -1;
    for (int i = 0; i < t.rank; i++) {
        if (t.dims[i] == -1)
            unknown = i;
        else if (cnn_mul_overflows(known, t.dims[i], &known) || known > INT32_MAX)
            return cnn_fail(CNN_ERR_SHAPE, "%s (Reshape): the target shape has more than 2^31"
                            " values", l->name);
    }
    if (unknown >= 0) {
        if (n % known)
            return cnn_fail(CNN_ERR_SHAPE,
                            "%s (Reshape): %lld values do not divide into the target shape's"
                            " known dimensions (%lld values each)",
                            l->name, (long long)n, (long long)known);
        t.dims[unknown] = (int)(n / known);
        known = n;
    }
    if (known != n) {
        char want[64], got[64];
        cnn_shape_format(in, got, sizeof got);
        cnn_shape_format(t, want, sizeof want);
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (Reshape): the input %s has %lld values, the target shape %s has %lld",
                        l->name, got, (long long)n, want, (long long)known);
    }
    l->out = t;
    return CNN_OK;
}

static const cnn_layer_field reshape_fields[] = {
    {"target_shape", CNN_FIELD_TARGET_SHAPE, CNN_SPEC_FIELD(reshape.target_shape),
     CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(reshape.name), 0, 0},
};

const cnn_layer_ops cnn_reshape_ops = {
    .create = cnn_layer_reshape_create,
    .kind = CNN_LAYER_RESHAPE,
    .type_name = "Reshape",
    .auto_name = "reshape",
    .infer = reshape_infer,
    .forward = copy_forward,
    .backward = copy_backward,
    CNN_LAYER_FIELDS(reshape_fields),
    .keras_keys = "target_shape",
    .keras_build_config = true,
};

static cnn_status cnn_layer_reshape_create(cnn_layer **out, const cnn_layer_spec *spec,
                                           const char *name)
{
    *out = NULL;
    cnn_shape t = spec->u.reshape.target_shape;
    int unknown = 0;
    bool ok = t.rank == 1 || t.rank == 3;
    for (int i = 0; ok && i < t.rank; i++) {
        unknown += t.dims[i] == -1;
        ok = t.dims[i] >= 1 || t.dims[i] == -1;
    }
    if (!ok || unknown > 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (Reshape): target_shape must be (rows, cols, channels) or (features),"
                        " each >= 1 or one of them -1 (rank %d given)",
                        name, t.rank);
    cnn_status st = cnn_layer_alloc(out, sizeof(cnn_layer), &cnn_reshape_ops, name);
    if (st == CNN_OK)
        (*out)->spec = *spec;
    return st;
}

/* ---- Dropout: inverted (kept values scaled by 1 / (1 - rate) in training,
 * identity in inference); the kept/dropped mask is saved for backward. ---- */
static size_t dropout_saved(const cnn_layer *l, int batch)
{
    return (size_t)batch * example_size(l);
}

static void dropout_forward(cnn_layer *l, const cnn_layer_io *io)
{
    const cnn_dropout_config *d = &l->spec.u.dropout;
    size_t n = (size_t)io->batch * example_size(l);
    if (!io->training || d->rate == 0) {
        copy_forward(l, io);
        if (io->saved)
            memset(io->saved, 1, n);
        return;
    }
    uint8_t *mask = io->saved;
    float scale = 1.0f / (1.0f - d->rate);
    cnn_rng rng;
    cnn_rng_seed(&rng, l->seed ^ ((uint64_t)io->step * 0x9E3779B97F4A7C15ull));
    for (size_t i = 0; i < n; i++) {
        mask[i] = cnn_rng_uniform(&rng) >= d->rate;
        io->y[i] = mask[i] ? io->x[i] * scale : 0.0f;
    }
}

static void dropout_backward(cnn_layer *l, const cnn_layer_io *io)
{
    const cnn_dropout_config *d = &l->spec.u.dropout;
    if (!io->dx)
        return;
    const uint8_t *mask = io->saved;
    size_t n = (size_t)io->batch * example_size(l);
    float scale = io->training && d->rate > 0 ? 1.0f / (1.0f - d->rate) : 1.0f;
    for (size_t i = 0; i < n; i++)
        io->dx[i] = mask[i] ? io->dy[i] * scale : 0.0f;
}

/* A seeded layer keeps its own stream; an unseeded one draws from the
 * model's initialisation stream, so the model's seed decides it. */
static void dropout_init(cnn_layer *l, cnn_rng *rng)
{
    const cnn_dropout_config *d = &l->spec.u.dropout;
    l->seed = d->seed ? d->seed : cnn_rng_next(rng);
}

static const cnn_layer_field dropout_fields[] = {
    {"rate", CNN_FIELD_RATE, CNN_SPEC_FIELD(dropout.rate),
     CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    {"seed", CNN_FIELD_SEED, CNN_SPEC_FIELD(dropout.seed), 0, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(dropout.name), 0, 0},
};

const cnn_layer_ops cnn_dropout_ops = {
    .create = cnn_layer_dropout_create,
    .kind = CNN_LAYER_DROPOUT,
    .type_name = "Dropout",
    .auto_name = "dropout",
    .infer = same_shape_infer,
    .init = dropout_init,
    .saved_bytes = dropout_saved,
    .forward = dropout_forward,
    .backward = dropout_backward,
    CNN_LAYER_FIELDS(dropout_fields),
    .keras_keys = "rate seed noise_shape",
};

static cnn_status cnn_layer_dropout_create(cnn_layer **out, const cnn_layer_spec *spec,
                                           const char *name)
{
    *out = NULL;
    const cnn_dropout_config *cfg = &spec->u.dropout;
    if (!(cfg->rate >= 0 && cfg->rate < 1))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (Dropout): rate must be in [0, 1), got %g",
                        name, (double)cfg->rate);
    cnn_status st = cnn_layer_alloc(out, sizeof(cnn_layer), &cnn_dropout_ops, name);
    if (st == CNN_OK)
        (*out)->spec = *spec;
    return st;
}
