/* Keras's parametrised activation layers, elementwise on any shape:
 *
 *   LeakyReLU:  y = x (x >= 0), s x (x < 0)              dy/dx = 1 or s
 *   ELU:        y = x (x > 0),  a (e^x - 1) (x <= 0)     dy/dx = 1 or a e^x
 *   ReLU:       y = min(x, max) (x >= t), s (x - t) (x < t)
 *                                                        dy/dx = 1 (t <= x < max), 0 (x >= max), s
 *
 * (max = +inf when max_value is 0.) Backward reads x, which the model keeps,
 * never y, which a following layer may overwrite with the gradient. */
#include <math.h>

#include "core/error.h"
#include "core/tensor.h"
#include "layers/layer.h"

static int64_t values(const cnn_layer *l, int batch) { return (int64_t)batch * cnn_shape_size(l->in); }

static cnn_status same_shape(cnn_layer *l, cnn_shape in)
{
    l->out = in;
    return CNN_OK;
}

/* ---- LeakyReLU ---- */
static void leaky_forward(cnn_layer *l, const cnn_layer_io *io)
{
    const float s = l->spec.u.leaky_relu.negative_slope;
    for (int64_t i = 0, n = values(l, io->batch); i < n; i++)
        io->y[i] = io->x[i] >= 0 ? io->x[i] : s * io->x[i];
}

static void leaky_backward(cnn_layer *l, const cnn_layer_io *io)
{
    const float s = l->spec.u.leaky_relu.negative_slope;
    for (int64_t i = 0, n = io->dx ? values(l, io->batch) : 0; i < n; i++)
        io->dx[i] = io->x[i] >= 0 ? io->dy[i] : s * io->dy[i];
}

static cnn_status cnn_layer_relu_family_create(cnn_layer **out, const cnn_layer_spec *spec,
                                               const char *name);

/* The fields in Keras's positional order, which is the order of the
 * model file's record. */
static const cnn_layer_field leaky_relu_fields[] = {
    {"negative_slope", CNN_FIELD_POSITIVE, CNN_SPEC_FIELD(leaky_relu.negative_slope),
     CNN_FIELD_POSITIONAL, 0},
    {"alpha", CNN_FIELD_POSITIVE, CNN_SPEC_FIELD(leaky_relu.negative_slope),
     CNN_FIELD_ALIAS | CNN_FIELD_KERAS2, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(leaky_relu.name), 0, 0},
};

const cnn_layer_ops cnn_leaky_relu_ops = {
    .create = cnn_layer_relu_family_create,
    .kind = CNN_LAYER_LEAKY_RELU,
    .type_name = "LeakyReLU",
    .auto_name = "leaky_re_lu",
    .infer = same_shape,
    .forward = leaky_forward,
    .backward = leaky_backward,
    CNN_LAYER_FIELDS(leaky_relu_fields),
    .keras_keys = "negative_slope",
};

/* ---- ELU ---- */
static void elu_forward(cnn_layer *l, const cnn_layer_io *io)
{
    const float a = l->spec.u.elu.alpha;
    for (int64_t i = 0, n = values(l, io->batch); i < n; i++)
        io->y[i] = io->x[i] > 0 ? io->x[i] : a * expm1f(io->x[i]);
}

/* From x, not y: a following MaxPooling2D may write the output gradient
 * over this layer's output (see backward_in_place in layer.h). */
static void elu_backward(cnn_layer *l, const cnn_layer_io *io)
{
    const float a = l->spec.u.elu.alpha;
    for (int64_t i = 0, n = io->dx ? values(l, io->batch) : 0; i < n; i++)
        io->dx[i] = io->x[i] > 0 ? io->dy[i] : io->dy[i] * a * expf(io->x[i]);
}

static const cnn_layer_field elu_fields[] = {
    {"alpha", CNN_FIELD_POSITIVE, CNN_SPEC_FIELD(elu.alpha), CNN_FIELD_POSITIONAL, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(elu.name), 0, 0},
};

const cnn_layer_ops cnn_elu_ops = {
    .create = cnn_layer_relu_family_create,
    .kind = CNN_LAYER_ELU,
    .type_name = "ELU",
    .auto_name = "elu",
    .infer = same_shape,
    .forward = elu_forward,
    .backward = elu_backward,
    CNN_LAYER_FIELDS(elu_fields),
    .keras_keys = "alpha",
};

/* ---- ReLU ---- */
static float relu_cap(const cnn_relu_config *r)
{
    return r->max_value > 0 ? r->max_value : INFINITY;
}

static void relu_forward(cnn_layer *l, const cnn_layer_io *io)
{
    const cnn_relu_config *r = &l->spec.u.relu;
    const float cap = relu_cap(r), t = r->threshold, s = r->negative_slope;
    for (int64_t i = 0, n = values(l, io->batch); i < n; i++) {
        float x = io->x[i];
        io->y[i] = x >= cap ? cap : x >= t ? x : s * (x - t);
    }
}

static void relu_backward(cnn_layer *l, const cnn_layer_io *io)
{
    const cnn_relu_config *r = &l->spec.u.relu;
    const float cap = relu_cap(r), t = r->threshold, s = r->negative_slope;
    for (int64_t i = 0, n = io->dx ? values(l, io->batch) : 0; i < n; i++) {
        float x = io->x[i];
        io->dx[i] = x >= cap ? 0.0f : x >= t ? io->dy[i] : s * io->dy[i];
    }
}

static const cnn_layer_field relu_fields[] = {
    {"max_value", CNN_FIELD_POSITIVE, CNN_SPEC_FIELD(relu.max_value), CNN_FIELD_POSITIONAL, 0},
    {"negative_slope", CNN_FIELD_NONNEGATIVE, CNN_SPEC_FIELD(relu.negative_slope),
     CNN_FIELD_POSITIONAL, 0},
    {"threshold", CNN_FIELD_REAL, CNN_SPEC_FIELD(relu.threshold), CNN_FIELD_POSITIONAL, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(relu.name), 0, 0},
};

const cnn_layer_ops cnn_relu_ops = {
    .create = cnn_layer_relu_family_create,
    .kind = CNN_LAYER_RELU,
    .type_name = "ReLU",
    .auto_name = "re_lu",
    .infer = same_shape,
    .forward = relu_forward,
    .backward = relu_backward,
    CNN_LAYER_FIELDS(relu_fields),
    .keras_keys = "max_value negative_slope threshold",
};

/* ---- creation: defaults and checks ---- */
static cnn_status positive(const char *name, const char *type, const char *field, float v)
{
    if (v > 0 && isfinite(v))
        return CNN_OK;
    return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (%s): %s must be a finite number > 0, got %g",
                    name, type, field, (double)v);
}

static cnn_status cnn_layer_relu_family_create(cnn_layer **out, const cnn_layer_spec *spec,
                                               const char *name)
{
    *out = NULL;
    cnn_layer_spec s = *spec;
    const cnn_layer_ops *ops;
    cnn_status st = CNN_OK;
    switch (s.kind) {
    case CNN_LAYER_LEAKY_RELU:
        ops = &cnn_leaky_relu_ops;
        if (s.u.leaky_relu.negative_slope == 0)
            s.u.leaky_relu.negative_slope = 0.3f;
        st = positive(name, ops->type_name, "negative_slope", s.u.leaky_relu.negative_slope);
        break;
    case CNN_LAYER_ELU:
        ops = &cnn_elu_ops;
        if (s.u.elu.alpha == 0)
            s.u.elu.alpha = 1.0f;
        st = positive(name, ops->type_name, "alpha", s.u.elu.alpha);
        break;
    case CNN_LAYER_RELU: {
        const cnn_relu_config *r = &s.u.relu;
        ops = &cnn_relu_ops;
        if (!(r->max_value >= 0 && isfinite(r->max_value)))
            st = cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                          "%s (ReLU): max_value must be a finite number >= 0 (0 = none), got %g",
                          name, (double)r->max_value);
        else if (!(r->negative_slope >= 0 && isfinite(r->negative_slope)))
            st = cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                          "%s (ReLU): negative_slope must be a finite number >= 0, got %g", name,
                          (double)r->negative_slope);
        else if (!isfinite(r->threshold))
            st = cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (ReLU): threshold must be finite, got %g",
                          name, (double)r->threshold);
        else if (r->max_value > 0 && r->max_value <= r->threshold)
            st = cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                          "%s (ReLU): max_value %g must be above threshold %g", name,
                          (double)r->max_value, (double)r->threshold);
        break;
    }
    default:
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: not a ReLU-family layer kind %d", name,
                        (int)s.kind);
    }
    if (st)
        return st;
    if ((st = cnn_layer_alloc(out, sizeof(cnn_layer), ops, name)) == CNN_OK)
        (*out)->spec = s;
    return st;
}
