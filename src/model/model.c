/* Sequential: creation, add() with shape inference and Keras auto-names,
 * parameter allocation, introspection. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/tensor.h"
#include "model/model.h"

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

static cnn_status start_threads(cnn_model *m, int threads)
{
    cnn_gemm_ctx_free(m->gemm);
    cnn_pool_free(m->pool);
    m->gemm = NULL;
    m->pool = NULL;
    cnn_status st = cnn_pool_create(&m->pool, threads);
    if (st == CNN_OK)
        st = cnn_gemm_ctx_create(&m->gemm, m->pool);
    if (st == CNN_OK)
        m->threads = threads;
    return st;
}

static cnn_status check_shape(cnn_shape s)
{
    if (s.rank != 1 && s.rank != 3)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "input shape: expected rank 3 (rows, cols, channels) or 1 (features),"
                        " got rank %d",
                        s.rank);
    int64_t total = 1;
    for (int i = 0; i < s.rank; i++) {
        if (s.dims[i] < 1)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "input shape: dimension %d must be >= 1, got %d", i, s.dims[i]);
        if (cnn_mul_overflows(total, s.dims[i], &total) || total > INT32_MAX)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "input shape: more than 2^31 values per example");
    }
    return CNN_OK;
}

cnn_status cnn_model_create(cnn_model **out, cnn_shape input_shape)
{
    if (!out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "cnn_model_create: out is NULL");
    *out = NULL;
    cnn_status st = check_shape(input_shape);
    if (st)
        return st;
    cnn_model *m = calloc(1, sizeof *m);
    if (!m)
        return cnn_fail(CNN_ERR_NO_MEMORY, "model: out of memory");
    m->input_shape = input_shape;
    if ((st = start_threads(m, default_threads()))) {
        cnn_model_free(m);
        return st;
    }
    *out = m;
    return CNN_OK;
}

static void release_arena(cnn_model *m)
{
    free(m->arena.block);
    free(m->arena.outputs);
    free(m->arena.saved);
    memset(&m->arena, 0, sizeof m->arena);
}

void cnn_model_free(cnn_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_layers; i++)
        free(m->layers[i]);
    free(m->layers);
    free(m->params);
    free(m->grads);
    free(m->opt_m);
    free(m->opt_v);
    release_arena(m);
    cnn_gemm_ctx_free(m->gemm);
    cnn_pool_free(m->pool);
    free(m);
}

cnn_status cnn_model_set_seed(cnn_model *m, uint64_t seed)
{
    if (!m)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "set_seed: model is NULL");
    if (m->built)
        return cnn_fail(CNN_ERR_STATE,
                        "set_seed: the weights are already initialised; set the seed before"
                        " using the model");
    m->seed = seed;
    return CNN_OK;
}

cnn_status cnn_model_set_threads(cnn_model *m, int threads)
{
    if (!m)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "set_threads: model is NULL");
    if (threads == 0)
        threads = default_threads();
    if (threads < 1 || threads > 1024)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "threads: expected 1..1024 (0 = all cores), got %d",
                        threads);
    return threads == m->threads ? CNN_OK : start_threads(m, threads);
}

int cnn_model_threads(const cnn_model *m) { return m ? m->threads : 0; }

/* Creates the layer through make, names it, infers its shape, appends it. */

static cnn_status add_layer(cnn_model *m, const cnn_layer_ops *ops, const char *name,
                            cnn_status (*make)(cnn_layer **, const void *, const char *),
                            const void *cfg)
{
    if (!m)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "add: model is NULL");
    if (m->built)
        return cnn_fail(CNN_ERR_STATE,
                        "add: the model is already built (weights exist); add every layer first");
    char auto_name[CNN_LAYER_NAME_MAX];
    bool is_auto = !name || !*name;
    if (is_auto) {
        int same = 0;
        for (int i = 0; i < m->n_layers; i++)
            same += m->layers[i]->ops == ops && m->layers[i]->auto_named;
        if (same)
            snprintf(auto_name, sizeof auto_name, "%s_%d", ops->auto_name, same);
        else
            snprintf(auto_name, sizeof auto_name, "%s", ops->auto_name);
        name = auto_name;
    }
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i]->name, name) == 0)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "%s (%s): a layer of this model already has that name; names must"
                            " be unique",
                            name, ops->type_name);
    if (m->n_layers == m->cap_layers) {
        int cap = m->cap_layers ? 2 * m->cap_layers : 8;
        cnn_layer **grown = realloc(m->layers, (size_t)cap * sizeof *grown);
        if (!grown)
            return cnn_fail(CNN_ERR_NO_MEMORY, "add: out of memory");
        m->layers = grown;
        m->cap_layers = cap;
    }
    cnn_layer *l;
    cnn_status st = make(&l, cfg, name);
    if (st)
        return st;
    l->auto_named = is_auto;
    l->in = cnn_model_output_shape(m);
    if ((st = l->ops->infer(l, l->in))) {
        free(l);
        return st;
    }
    m->layers[m->n_layers++] = l;
    return CNN_OK;
}

static cnn_status make_conv2d(cnn_layer **o, const void *c, const char *n)
{
    return cnn_layer_conv2d_create(o, c, n);
}
static cnn_status make_dense(cnn_layer **o, const void *c, const char *n)
{
    return cnn_layer_dense_create(o, c, n);
}
static cnn_status make_max_pool(cnn_layer **o, const void *c, const char *n)
{
    return cnn_layer_pool2d_create(o, c, true, n);
}
static cnn_status make_avg_pool(cnn_layer **o, const void *c, const char *n)
{
    return cnn_layer_pool2d_create(o, c, false, n);
}
static cnn_status make_activation(cnn_layer **o, const void *c, const char *n)
{
    return cnn_layer_activation_create(o, c, n);
}
static cnn_status make_dropout(cnn_layer **o, const void *c, const char *n)
{
    return cnn_layer_dropout_create(o, c, n);
}
static cnn_status make_flatten(cnn_layer **o, const void *c, const char *n)
{
    return cnn_layer_flatten_create(o, c, n);
}

cnn_status cnn_model_add_conv2d(cnn_model *m, cnn_conv2d_config cfg)
{
    return add_layer(m, &cnn_conv2d_ops, cfg.name, make_conv2d, &cfg);
}
cnn_status cnn_model_add_dense(cnn_model *m, cnn_dense_config cfg)
{
    return add_layer(m, &cnn_dense_ops, cfg.name, make_dense, &cfg);
}
cnn_status cnn_model_add_max_pooling2d(cnn_model *m, cnn_pool2d_config cfg)
{
    return add_layer(m, &cnn_max_pooling2d_ops, cfg.name, make_max_pool, &cfg);
}
cnn_status cnn_model_add_average_pooling2d(cnn_model *m, cnn_pool2d_config cfg)
{
    return add_layer(m, &cnn_average_pooling2d_ops, cfg.name, make_avg_pool, &cfg);
}
cnn_status cnn_model_add_activation(cnn_model *m, cnn_activation_config cfg)
{
    return add_layer(m, &cnn_activation_ops, cfg.name, make_activation, &cfg);
}
cnn_status cnn_model_add_dropout(cnn_model *m, cnn_dropout_config cfg)
{
    return add_layer(m, &cnn_dropout_ops, cfg.name, make_dropout, &cfg);
}
cnn_status cnn_model_add_flatten(cnn_model *m, cnn_flatten_config cfg)
{
    return add_layer(m, &cnn_flatten_ops, cfg.name, make_flatten, &cfg);
}

cnn_status cnn_model_build(cnn_model *m)
{
    if (m->built)
        return CNN_OK;
    if (m->n_layers == 0)
        return cnn_fail(CNN_ERR_STATE, "model: it has no layers; add some first");
    int64_t total = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int p = 0; p < m->layers[i]->n_params; p++)
            total += m->layers[i]->params[p].count;
    size_t bytes = (size_t)(total ? total : 1) * sizeof(float);
    m->params = malloc(bytes);
    m->grads = calloc(1, bytes);
    if (!m->params || !m->grads) {
        free(m->params);
        free(m->grads);
        m->params = m->grads = NULL;
        return cnn_fail(CNN_ERR_NO_MEMORY, "model: cannot allocate %lld parameters (%zu bytes)",
                        (long long)total, bytes);
    }
    cnn_rng rng;
    cnn_rng_seed(&rng, m->seed);
    int64_t off = 0;
    for (int i = 0; i < m->n_layers; i++) {
        cnn_layer *l = m->layers[i];
        for (int p = 0; p < l->n_params; p++) {
            l->params[p].value = m->params + off;
            l->params[p].grad = m->grads + off;
            off += l->params[p].count;
        }
        if (l->ops->init)
            l->ops->init(l, &rng);
    }
    m->n_params = total;
    m->built = true;
    return CNN_OK;
}

int cnn_model_layer_count(const cnn_model *m) { return m ? m->n_layers : 0; }
cnn_shape cnn_model_input_shape(const cnn_model *m) { return m->input_shape; }
cnn_shape cnn_model_output_shape(const cnn_model *m)
{
    return m->n_layers ? m->layers[m->n_layers - 1]->out : m->input_shape;
}

static const cnn_layer *layer_at(const cnn_model *m, int i)
{
    return m && i >= 0 && i < m->n_layers ? m->layers[i] : NULL;
}

const char *cnn_model_layer_name(const cnn_model *m, int i)
{
    const cnn_layer *l = layer_at(m, i);
    return l ? l->name : NULL;
}
const char *cnn_model_layer_type(const cnn_model *m, int i)
{
    const cnn_layer *l = layer_at(m, i);
    return l ? l->ops->type_name : NULL;
}
cnn_shape cnn_model_layer_output_shape(const cnn_model *m, int i)
{
    const cnn_layer *l = layer_at(m, i);
    return l ? l->out : (cnn_shape){0};
}

static int64_t count_params(const cnn_layer *l, int trainable_only)
{
    int64_t n = 0;
    for (int p = 0; l && p < l->n_params; p++)
        if (!trainable_only || l->params[p].trainable)
            n += l->params[p].count;
    return n;
}

int64_t cnn_model_layer_param_count(const cnn_model *m, int i)
{
    return count_params(layer_at(m, i), 0);
}
int64_t cnn_model_param_count(const cnn_model *m)
{
    int64_t n = 0;
    for (int i = 0; m && i < m->n_layers; i++)
        n += count_params(m->layers[i], 0);
    return n;
}
int64_t cnn_model_trainable_param_count(const cnn_model *m)
{
    int64_t n = 0;
    for (int i = 0; m && i < m->n_layers; i++)
        n += count_params(m->layers[i], 1);
    return n;
}

static float *param_view(cnn_model *m, int i, int which, int64_t *count, bool grad)
{
    if (count)
        *count = 0;
    if (!m || i < 0 || i >= m->n_layers || which < 0 || which >= m->layers[i]->n_params)
        return NULL;
    if (cnn_model_build(m))
        return NULL;
    cnn_param *p = &m->layers[i]->params[which];
    if (count)
        *count = p->count;
    return grad ? p->grad : p->value;
}

float *cnn_model_layer_weights(cnn_model *m, int i, int which, int64_t *count)
{
    return param_view(m, i, which, count, false);
}
float *cnn_model_layer_gradients(cnn_model *m, int i, int which, int64_t *count)
{
    return param_view(m, i, which, count, true);
}

void cnn_model_zero_gradients(cnn_model *m)
{
    if (m && m->built)
        memset(m->grads, 0, (size_t)m->n_params * sizeof(float));
}
