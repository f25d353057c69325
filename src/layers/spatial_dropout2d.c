/* SpatialDropout2D: in training each example's channels are kept with
 * probability 1 - rate (whole feature maps, scaled by 1 / (1 - rate)) or
 * zeroed; identity in inference. The per-(example, channel) mask comes from
 * (seed, step) as Dropout's does, so a resumed run repeats it, and is
 * saved for backward. */
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "layers/layer.h"

static cnn_status sd_infer(cnn_layer *l, cnn_shape in)
{
    if (in.rank != 3)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (SpatialDropout2D): expects input of rank 3 (rows, cols, channels),"
                        " got rank %d",
                        l->name, in.rank);
    l->out = in;
    return CNN_OK;
}

static size_t sd_saved(const cnn_layer *l, int batch)
{
    return (size_t)batch * l->in.dims[2];
}

/* y (or dx) = x (or dy) times the example's channel mask and scale. */
static void apply(const cnn_layer *l, int batch, const uint8_t *mask, float scale,
                  const float *x, float *y)
{
    const int c = l->in.dims[2];
    const size_t pixels = (size_t)l->in.dims[0] * l->in.dims[1];
    for (int n = 0; n < batch; n++)
        for (size_t p = 0; p < pixels; p++) {
            size_t i = ((size_t)n * pixels + p) * c;
            for (int k = 0; k < c; k++)
                y[i + k] = mask[(size_t)n * c + k] ? x[i + k] * scale : 0.0f;
        }
}

static void sd_forward(cnn_layer *l, const cnn_layer_io *io)
{
    const float rate = l->spec.u.spatial_dropout2d.rate;
    const size_t masks = sd_saved(l, io->batch);
    uint8_t *mask = io->saved;
    if (!io->training || rate == 0) {
        memcpy(io->y, io->x, (size_t)io->batch * cnn_shape_size(l->in) * sizeof(float));
        if (mask)
            memset(mask, 1, masks);
        return;
    }
    cnn_rng rng;
    cnn_rng_seed(&rng, l->seed ^ ((uint64_t)io->step * 0x9E3779B97F4A7C15ull));
    for (size_t i = 0; i < masks; i++)
        mask[i] = cnn_rng_uniform(&rng) >= rate;
    apply(l, io->batch, mask, 1.0f / (1.0f - rate), io->x, io->y);
}

static void sd_backward(cnn_layer *l, const cnn_layer_io *io)
{
    const float rate = l->spec.u.spatial_dropout2d.rate;
    if (io->dx)
        apply(l, io->batch, io->saved, io->training && rate > 0 ? 1.0f / (1.0f - rate) : 1.0f,
              io->dy, io->dx);
}

/* As Dropout: a seeded layer keeps its own stream, an unseeded one draws
 * from the model's initialisation stream. */
static void sd_init(cnn_layer *l, cnn_rng *rng)
{
    uint64_t seed = l->spec.u.spatial_dropout2d.seed;
    l->seed = seed ? seed : cnn_rng_next(rng);
}

static cnn_status cnn_layer_spatial_dropout2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                                     const char *name);

/* The fields in Keras's positional order, which is the order of the
 * model file's record. */
static const cnn_layer_field spatial_dropout2d_fields[] = {
    {"rate", CNN_FIELD_RATE, CNN_SPEC_FIELD(spatial_dropout2d.rate),
     CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    {"seed", CNN_FIELD_SEED, CNN_SPEC_FIELD(spatial_dropout2d.seed), 0, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(spatial_dropout2d.name), 0, 0},
};

const cnn_layer_ops cnn_spatial_dropout2d_ops = {
    .create = cnn_layer_spatial_dropout2d_create,
    .kind = CNN_LAYER_SPATIAL_DROPOUT2D,
    .type_name = "SpatialDropout2D",
    .auto_name = "spatial_dropout2d",
    .infer = sd_infer,
    .init = sd_init,
    .saved_bytes = sd_saved,
    .forward = sd_forward,
    .backward = sd_backward,
    CNN_LAYER_FIELDS(spatial_dropout2d_fields),
    .keras_keys = "rate seed data_format",
};

static cnn_status cnn_layer_spatial_dropout2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                                     const char *name)
{
    *out = NULL;
    const cnn_spatial_dropout2d_config *k = &spec->u.spatial_dropout2d;
    if (!(k->rate >= 0 && k->rate < 1))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (SpatialDropout2D): rate must be in [0, 1), got %g", name,
                        (double)k->rate);
    cnn_status st = cnn_layer_alloc(out, sizeof(cnn_layer), &cnn_spatial_dropout2d_ops, name);
    if (st == CNN_OK) {
        (*out)->spec.kind = CNN_LAYER_SPATIAL_DROPOUT2D;
        (*out)->spec.u.spatial_dropout2d = *k;
    }
    return st;
}
