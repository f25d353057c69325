#include "layers/layer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

cnn_status cnn_layer_alloc(cnn_layer **out, size_t size, const cnn_layer_ops *ops,
                           const char *name)
{
    *out = NULL;
    if (strlen(name) >= CNN_LAYER_NAME_MAX)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "layer name \"%.40s...\": longer than %d bytes",
                        name, CNN_LAYER_NAME_MAX - 1);
    cnn_layer *l = calloc(1, size);
    if (!l)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", name);
    l->ops = ops;
    snprintf(l->name, sizeof l->name, "%s", name);
    *out = l;
    return CNN_OK;
}

void cnn_layer_set_param(cnn_layer *l, int i, const char *name, int rank, const int64_t *dims,
                         bool trainable)
{
    cnn_param *p = &l->params[i];
    p->name = name;
    p->rank = rank;
    p->count = 1;
    for (int d = 0; d < rank; d++) {
        p->dims[d] = dims[d];
        p->count *= dims[d];
    }
    p->trainable = trainable;
    if (l->n_params < i + 1)
        l->n_params = i + 1;
}

void cnn_glorot_uniform(float *w, int64_t count, int64_t fan_in, int64_t fan_out, cnn_rng *rng)
{
    float limit = sqrtf(6.0f / (float)(fan_in + fan_out));
    for (int64_t i = 0; i < count; i++)
        w[i] = (2.0f * cnn_rng_uniform(rng) - 1.0f) * limit;
}

cnn_status cnn_layer_check_l2(const char *layer, const char *type, const char *field, float l2)
{
    if (!(l2 >= 0 && isfinite(l2)))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (%s): %s must be a finite number >= 0,"
                        " got %g", layer, type, field, (double)l2);
    return CNN_OK;
}

int cnn_layer_choice_index(const cnn_layer_ops *f, const char *s, size_t len)
{
    int i = 0;
    for (const char *c = f->choices; c && *c; i++) {
        size_t n = strcspn(c, " ");
        if (n == len && memcmp(c, s, len) == 0)
            return i;
        c += n;
        c += strspn(c, " ");
    }
    return -1;
}

const char *cnn_layer_choice_name(const cnn_layer_ops *f, int i, char *buf, size_t size)
{
    int k = 0;
    for (const char *c = f->choices; c && *c; k++) {
        size_t n = strcspn(c, " ");
        if (k == i) {
            snprintf(buf, size, "%.*s", (int)n, c);
            return buf;
        }
        c += n;
        c += strspn(c, " ");
    }
    return NULL;
}
