/* Rescaling (Keras Rescaling): y = x * scale + offset elementwise; backward
 * dx = scale * dy. No weights: a model carries its own input scaling. */
#include <math.h>

#include "core/error.h"
#include "core/tensor.h"
#include "layers/layer.h"

static cnn_status rescaling_infer(cnn_layer *l, cnn_shape in)
{
    l->out = in;
    return CNN_OK;
}

static void rescaling_forward(cnn_layer *l, const cnn_layer_io *io)
{
    const float scale = l->spec.u.rescaling.scale, offset = l->spec.u.rescaling.offset;
    const size_t n = (size_t)io->batch * cnn_shape_size(l->in);
    for (size_t i = 0; i < n; i++)
        io->y[i] = io->x[i] * scale + offset;
}

static void rescaling_backward(cnn_layer *l, const cnn_layer_io *io)
{
    const float scale = l->spec.u.rescaling.scale;
    const size_t n = (size_t)io->batch * cnn_shape_size(l->in);
    for (size_t i = 0; io->dx && i < n; i++)
        io->dx[i] = io->dy[i] * scale;
}

static cnn_status cnn_layer_rescaling_create(cnn_layer **out, const cnn_layer_spec *spec,
                                             const char *name);

/* The fields in Keras's positional order, which is the order of the
 * model file's record. */
static const cnn_layer_field rescaling_fields[] = {
    {"scale", CNN_FIELD_REAL, CNN_SPEC_FIELD(rescaling.scale),
     CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    {"offset", CNN_FIELD_REAL, CNN_SPEC_FIELD(rescaling.offset), CNN_FIELD_POSITIONAL, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(rescaling.name), 0, 0},
};

const cnn_layer_ops cnn_rescaling_ops = {
    .create = cnn_layer_rescaling_create,
    .kind = CNN_LAYER_RESCALING,
    .type_name = "Rescaling",
    .auto_name = "rescaling",
    .infer = rescaling_infer,
    .forward = rescaling_forward,
    .backward = rescaling_backward,
    CNN_LAYER_FIELDS(rescaling_fields),
    .keras_keys = "scale offset",
};

static cnn_status cnn_layer_rescaling_create(cnn_layer **out, const cnn_layer_spec *spec,
                                             const char *name)
{
    *out = NULL;
    cnn_rescaling_config k = spec->u.rescaling;
    if (!isfinite(k.scale) || k.scale == 0 || !isfinite(k.offset))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (Rescaling): scale must be a finite number other than 0 and offset a"
                        " finite number, got scale %g, offset %g",
                        name, (double)k.scale, (double)k.offset);
    cnn_status st = cnn_layer_alloc(out, sizeof(cnn_layer), &cnn_rescaling_ops, name);
    if (st == CNN_OK) {
        (*out)->spec.kind = CNN_LAYER_RESCALING;
        (*out)->spec.u.rescaling = k;
    }
    return st;
}
