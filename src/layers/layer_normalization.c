/* LayerNormalization over the last axis (Keras axis=-1): each row of the
 * last axis normalised by its own statistics, then gamma and beta per
 * channel (kernels/layer_norm.h). Forward keeps each row's mean and
 * 1 / sqrt(var + epsilon) for backward; training and inference compute the
 * same thing. */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/layer_norm.h"
#include "layers/layer.h"

typedef struct {
    cnn_layer base;
    int gamma, beta; /* parameter index, -1 if absent */
} layer_norm_layer;

static int channels(const cnn_layer *l) { return l->in.dims[l->in.rank - 1]; }

static int64_t rows_of(const cnn_layer *l, int batch)
{
    return (int64_t)batch * (cnn_shape_size(l->in) / channels(l));
}

static cnn_status ln_infer(cnn_layer *l, cnn_shape in)
{
    layer_norm_layer *ln = (layer_norm_layer *)l;
    const cnn_layer_normalization_config *k = &l->spec.u.layer_normalization;
    const int64_t c = in.dims[in.rank - 1];
    int i = 0;
    ln->gamma = ln->beta = -1;
    if (!k->no_scale) {
        ln->gamma = i;
        cnn_layer_set_param(l, i++, "gamma", 1, &c, true);
    }
    if (!k->no_center) {
        ln->beta = i;
        cnn_layer_set_param(l, i++, "beta", 1, &c, true);
    }
    l->out = in;
    return CNN_OK;
}

static void ln_init(cnn_layer *l, cnn_rng *rng)
{
    (void)rng;
    const layer_norm_layer *ln = (const layer_norm_layer *)l;
    if (ln->gamma >= 0)
        for (int64_t i = 0; i < l->params[ln->gamma].count; i++)
            l->params[ln->gamma].value[i] = 1.0f;
    if (ln->beta >= 0)
        memset(l->params[ln->beta].value, 0, (size_t)l->params[ln->beta].count * sizeof(float));
}

static size_t ln_saved(const cnn_layer *l, int batch)
{
    return 2 * (size_t)rows_of(l, batch) * sizeof(float);
}

static int64_t ln_flops(const cnn_layer *l) { return 8 * cnn_shape_size(l->in); }

static void ln_forward(cnn_layer *l, const cnn_layer_io *io)
{
    const layer_norm_layer *ln = (const layer_norm_layer *)l;
    const int64_t rows = rows_of(l, io->batch);
    float *mean = io->saved, *rstd = mean + rows;
    cnn_layer_norm_forward(rows, channels(l), l->spec.u.layer_normalization.epsilon, io->x,
                           ln->gamma >= 0 ? l->params[ln->gamma].value : NULL,
                           ln->beta >= 0 ? l->params[ln->beta].value : NULL, io->y, mean, rstd);
}

static void ln_backward(cnn_layer *l, const cnn_layer_io *io)
{
    const layer_norm_layer *ln = (const layer_norm_layer *)l;
    const int64_t rows = rows_of(l, io->batch);
    const float *mean = io->saved, *rstd = mean + rows;
    cnn_layer_norm_backward(rows, channels(l), io->x, io->dy,
                            ln->gamma >= 0 ? l->params[ln->gamma].value : NULL, mean, rstd,
                            io->dx, ln->gamma >= 0 ? l->params[ln->gamma].grad : NULL,
                            ln->beta >= 0 ? l->params[ln->beta].grad : NULL);
}

static cnn_status cnn_layer_layer_normalization_create(cnn_layer **out,
                                                       const cnn_layer_spec *spec,
                                                       const char *name);

/* The fields in Keras's positional order (axis, always -1, is not one),
 * which is the order of the model file's record. */
static const cnn_layer_field layer_normalization_fields[] = {
    {"epsilon", CNN_FIELD_POSITIVE, CNN_SPEC_FIELD(layer_normalization.epsilon), 0, 0},
    {"center", CNN_FIELD_USE_BIAS, CNN_SPEC_FIELD(layer_normalization.no_center), 0, 0},
    {"scale", CNN_FIELD_USE_BIAS, CNN_SPEC_FIELD(layer_normalization.no_scale), 0, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(layer_normalization.name), 0, 0},
};

const cnn_layer_ops cnn_layer_normalization_ops = {
    .create = cnn_layer_layer_normalization_create,
    .kind = CNN_LAYER_LAYER_NORMALIZATION,
    .type_name = "LayerNormalization",
    .auto_name = "layer_normalization",
    .infer = ln_infer,
    .init = ln_init,
    .saved_bytes = ln_saved,
    .flops = ln_flops,
    .forward = ln_forward,
    .backward = ln_backward,
    CNN_LAYER_FIELDS(layer_normalization_fields),
    .keras_keys = "axis epsilon center scale beta_initializer gamma_initializer "
                  "beta_regularizer gamma_regularizer beta_constraint gamma_constraint",
    .keras_build_config = true,
};

static cnn_status cnn_layer_layer_normalization_create(cnn_layer **out,
                                                       const cnn_layer_spec *spec,
                                                       const char *name)
{
    *out = NULL;
    cnn_layer_normalization_config k = spec->u.layer_normalization;
    if (k.epsilon == 0)
        k.epsilon = 1e-3f;
    if (!(k.epsilon > 0) || !isfinite(k.epsilon))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (LayerNormalization): epsilon must be a finite number > 0, got %g",
                        name, (double)k.epsilon);
    cnn_status st =
        cnn_layer_alloc(out, sizeof(layer_norm_layer), &cnn_layer_normalization_ops, name);
    if (st == CNN_OK) {
        (*out)->spec.kind = CNN_LAYER_LAYER_NORMALIZATION;
        (*out)->spec.u.layer_normalization = k;
    }
    return st;
}
