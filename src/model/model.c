/* Sequential: creation, add() with shape inference and Keras auto-names,
 * parameter allocation, introspection. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/big_alloc.h"
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
    m->max_memory = CNN_DEFAULT_MAX_MEMORY;
    cnn_model_set_workspace_limit(m, 0);
    if ((st = start_threads(m, default_threads()))) {
        cnn_model_free(m);
        return st;
    }
    *out = m;
    return CNN_OK;
}

void cnn_model_release_arena(cnn_model *m)
{
    cnn_big_free(m->arena.block);
    free(m->arena.outputs);
    free(m->arena.saved);
    free(m->arena.pre);
    free(m->arena.grad_of);
    memset(&m->arena, 0, sizeof m->arena);
}

void cnn_model_free(cnn_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_layers; i++)
        free(m->layers[i]);
    free(m->layers);
    cnn_big_free(m->params);
    cnn_big_free(m->grads);
    cnn_big_free(m->opt_m);
    cnn_big_free(m->opt_v);
    cnn_model_release_arena(m);
    cnn_model_clear_class_names(m);
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

/* The name a layer gets: its own, or Keras's auto-name (conv2d, conv2d_1,
 * ...), counting only the auto-named layers of the same kind. */
static const char *layer_name(const cnn_model *m, const cnn_layer_ops *ops, const char *name,
                              char buf[CNN_LAYER_NAME_MAX])
{
    if (name && *name)
        return name;
    int same = 0;
    for (int i = 0; i < m->n_layers; i++)
        same += m->layers[i]->ops == ops && m->layers[i]->auto_named;
    if (same)
        snprintf(buf, CNN_LAYER_NAME_MAX, "%s_%d", ops->auto_name, same);
    else
        snprintf(buf, CNN_LAYER_NAME_MAX, "%s", ops->auto_name);
    return buf;
}

/* The config's name field, found through the kind's field table. */
static const char **spec_name_field(const cnn_layer_ops *ops, cnn_layer_spec *s)
{
    const cnn_layer_field *f = cnn_layer_field_of_type(ops, CNN_FIELD_NAME);
    return f ? (const char **)((char *)s + f->offset) : NULL;
}

static const char *spec_name(const cnn_layer_ops *ops, const cnn_layer_spec *s)
{
    const char **name = spec_name_field(ops, (cnn_layer_spec *)s);
    return name ? *name : NULL;
}

/* The L2 penalty factor (kernel_regularizer=l2(...)) of an L2 field. */
static float spec_l2(const cnn_layer_spec *s, const cnn_layer_field *f)
{
    float l2;
    memcpy(&l2, (const char *)s + f->offset, sizeof l2);
    return l2;
}

static bool is_penalty(const cnn_layer_field *f)
{
    return f->type == CNN_FIELD_L2 && !(f->flags & CNN_FIELD_ALIAS);
}

const char *cnn_model_input_name(const cnn_model *m)
{
    return !m ? NULL : m->input_name[0] ? m->input_name : "input_layer";
}

int cnn_model_find_layer(const cnn_model *m, const char *name)
{
    if (!name)
        return -2;
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i]->name, name) == 0)
            return i;
    return strcmp(cnn_model_input_name(m), name) == 0 ? -1 : -2;
}

cnn_status cnn_model_set_input_name(cnn_model *m, const char *name)
{
    if (!m || !name || !*name || strlen(name) >= CNN_LAYER_NAME_MAX)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "set_input_name: expected a name of 1..%d bytes", CNN_LAYER_NAME_MAX - 1);
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i]->name, name) == 0)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "input name \"%s\": a layer of this model already has that name", name);
    snprintf(m->input_name, sizeof m->input_name, "%s", name);
    m->functional = true;
    return CNN_OK;
}

cnn_status cnn_model_set_next_inputs(cnn_model *m, int count, const char *const *names)
{
    if (!m || count < 1 || count > CNN_MAX_LAYER_INPUTS || !names)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "set_next_inputs: expected 1..%d input names", CNN_MAX_LAYER_INPUTS);
    int idx[CNN_MAX_LAYER_INPUTS];
    for (int k = 0; k < count; k++) {
        idx[k] = cnn_model_find_layer(m, names[k]);
        if (idx[k] == -2)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "set_next_inputs: input %d, \"%s\": no layer of that name, and the"
                            " model's input is \"%s\"",
                            k, names[k] ? names[k] : "(null)", cnn_model_input_name(m));
    }
    memcpy(m->next_inputs, idx, (size_t)count * sizeof *idx);
    m->n_next_inputs = count;
    m->functional = true;
    return CNN_OK;
}

bool cnn_model_is_graph(const cnn_model *m)
{
    for (int i = 0; m && i < m->n_layers; i++)
        if (m->layers[i]->n_inputs != 1 || m->layers[i]->inputs[0] != i - 1)
            return true;
    return false;
}

bool cnn_model_is_functional(const cnn_model *m)
{
    return m && (m->functional || cnn_model_is_graph(m));
}

int cnn_model_layer_input_count(const cnn_model *m, int i)
{
    return m && i >= 0 && i < m->n_layers ? m->layers[i]->n_inputs : 0;
}

int cnn_model_layer_input(const cnn_model *m, int i, int k)
{
    if (!m || i < 0 || i >= m->n_layers || k < 0 || k >= m->layers[i]->n_inputs)
        return -2;
    return m->layers[i]->inputs[k];
}

/* Shapes the layer for its inputs: a merge kind checks the count and
 * every shape, any other kind takes exactly one. */
static cnn_status infer_inputs(cnn_model *m, cnn_layer *l, int n, const int *inputs)
{
    const cnn_layer_ops *ops = l->ops;
    int lo = ops->max_inputs ? ops->min_inputs : 1, hi = ops->max_inputs ? ops->max_inputs : 1;
    if (n < lo || n > hi) {
        if (lo == hi)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "%s (%s): takes %d input%s, got %d%s", l->name, ops->type_name, lo,
                            lo == 1 ? "" : "s", n,
                            lo > 1 ? "; name them with cnn_model_set_next_inputs (inputs= in a"
                                     " description)" : "");
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (%s): takes %d to %d inputs, got %d; name them with"
                        " cnn_model_set_next_inputs (inputs= in a description)",
                        l->name, ops->type_name, lo, hi, n);
    }
    l->n_inputs = n;
    for (int k = 0; k < n; k++) {
        l->inputs[k] = inputs[k];
        l->ins[k] = inputs[k] < 0 ? m->input_shape : m->layers[inputs[k]]->out;
    }
    l->in = l->ins[0];
    return ops->infer_inputs ? ops->infer_inputs(l, l->ins, n) : ops->infer(l, l->in);
}

cnn_status cnn_model_add(cnn_model *m, const cnn_layer_spec *spec)
{
    if (!m)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "add: model and spec are required");
    int n = m->n_next_inputs, inputs[CNN_MAX_LAYER_INPUTS];
    memcpy(inputs, m->next_inputs, sizeof inputs);
    m->n_next_inputs = 0;
    return cnn_model_add_reading(m, spec, n, inputs);
}

cnn_status cnn_model_add_reading(cnn_model *m, const cnn_layer_spec *spec, int n_inputs,
                                 const int *inputs)
{
    if (!m || !spec)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "add: model and spec are required");
    const cnn_layer_ops *ops = cnn_layer_kind_find(spec->kind);
    if (!ops)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "add: unknown layer kind %d", (int)spec->kind);
    if (m->built)
        return cnn_fail(CNN_ERR_STATE,
                        "add: the model is already built (weights exist); add every layer first");
    int chain = m->n_layers - 1;
    if (n_inputs == 0) {
        n_inputs = 1;
        inputs = &chain;
    }
    if (n_inputs < 0 || n_inputs > CNN_MAX_LAYER_INPUTS)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "add: expected 1..%d inputs, got %d",
                        CNN_MAX_LAYER_INPUTS, n_inputs);
    for (int k = 0; k < n_inputs; k++)
        if (inputs[k] < -1 || inputs[k] >= m->n_layers)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "add: input %d is layer %d; expected an earlier layer (0..%d) or -1"
                            " (the model's input)",
                            k, inputs[k], m->n_layers - 1);
    char buf[CNN_LAYER_NAME_MAX];
    const char *given = spec_name(ops, spec);
    const char *name = layer_name(m, ops, given, buf);
    for (int i = -1; i < m->n_layers; i++)
        if (strcmp(i < 0 ? cnn_model_input_name(m) : m->layers[i]->name, name) == 0)
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
    cnn_status st;
    for (int i = 0; i < ops->n_fields; i++) {
        const cnn_layer_field *f = &ops->fields[i];
        char field[64];
        snprintf(field, sizeof field, "%s l2", f->key);
        if (is_penalty(f)
            && (st = cnn_layer_check_l2(name, ops->type_name, field, spec_l2(spec, f))))
            return st;
    }
    cnn_layer *l;
    if ((st = ops->create(&l, spec, name)))
        return st;
    l->auto_named = !given || !*given;
    const char **own = spec_name_field(ops, &l->spec);
    if (own)
        *own = l->name;
    if ((st = infer_inputs(m, l, n_inputs, inputs))) {
        free(l);
        return st;
    }
    for (int i = 0; i < ops->n_fields; i++)
        if (is_penalty(&ops->fields[i]))
            l->params[ops->fields[i].weight].l2 = spec_l2(spec, &ops->fields[i]);
    m->layers[m->n_layers++] = l;
    /* class names label the output, which this layer replaces */
    cnn_model_clear_class_names(m);
    return CNN_OK;
}

/* The typed cnn_model_add_<kind>(m, cfg): each tags its config with its
 * kind and hands it to cnn_model_add. */
#define DEFINE_ADD(name, kind_name, member)                                              \
    cnn_status cnn_model_add_##name(cnn_model *m, cnn_##member##_config cfg)              \
    {                                                                                     \
        cnn_layer_spec spec = {.kind = CNN_LAYER_##kind_name, .u.member = cfg};           \
        return cnn_model_add(m, &spec);                                                   \
    }
CNN_LAYER_ADD_LIST(DEFINE_ADD)
#undef DEFINE_ADD

cnn_status cnn_model_layer_spec(const cnn_model *m, int i, cnn_layer_spec *out)
{
    if (!m || !out || i < 0 || i >= m->n_layers)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "layer_spec: no layer %d", i);
    *out = m->layers[i]->spec;
    return CNN_OK;
}

cnn_status cnn_model_build(cnn_model *m)
{
    if (m->built)
        return CNN_OK;
    if (m->n_layers == 0)
        return cnn_fail(CNN_ERR_STATE, "model: it has no layers; add some first");
    /* a graph's every layer leads to the output (the last), as in Keras,
     * so that backward reaches every layer it runs */
    for (int i = 0; i + 1 < m->n_layers; i++) {
        bool read = false;
        for (int j = i + 1; j < m->n_layers && !read; j++)
            for (int k = 0; k < m->layers[j]->n_inputs; k++)
                read |= m->layers[j]->inputs[k] == i;
        if (!read)
            return cnn_fail(CNN_ERR_STATE,
                            "model: layer %s (%s): no layer reads its output, and it is not the"
                            " model's output (the last layer added)",
                            m->layers[i]->name, m->layers[i]->ops->type_name);
    }
    int64_t total = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int p = 0; p < m->layers[i]->n_params; p++)
            if (__builtin_add_overflow(total, m->layers[i]->params[p].count, &total))
                return cnn_fail(CNN_ERR_NO_MEMORY, "model: the parameter count overflows");
    char what[96];
    snprintf(what, sizeof what, "building the weights (%lld parameters)", (long long)total);
    int64_t bytes64;
    if (__builtin_mul_overflow(total, (int64_t)sizeof(float), &bytes64))
        return cnn_fail(CNN_ERR_NO_MEMORY, "model: %s needs more than 2^63 bytes, more than the"
                        " memory budget", what);
    cnn_status st = cnn_model_check_budget(m, bytes64, what);
    if (st)
        return st;
    size_t bytes = (size_t)(total ? total : 1) * sizeof(float);
    m->params = cnn_big_alloc(bytes);
    if (!m->params)
        return cnn_fail(CNN_ERR_NO_MEMORY, "model: cannot allocate %lld parameters (%zu bytes)",
                        (long long)total, bytes);
    cnn_rng rng;
    cnn_rng_seed(&rng, m->seed);
    int64_t off = 0;
    for (int i = 0; i < m->n_layers; i++) {
        cnn_layer *l = m->layers[i];
        for (int p = 0; p < l->n_params; p++) {
            l->params[p].value = m->params + off;
            off += l->params[p].count;
        }
        if (l->ops->init)
            l->ops->init(l, &rng);
    }
    m->n_params = total;
    m->built = true;
    return CNN_OK;
}

cnn_status cnn_model_ensure_gradients(cnn_model *m)
{
    cnn_status st = cnn_model_build(m);
    if (st || m->grads)
        return st;
    const int64_t bytes = m->n_params * (int64_t)sizeof(float);
    if ((st = cnn_model_check_budget(m, 2 * bytes, "keeping parameter gradients")))
        return st;
    m->grads = cnn_big_alloc((size_t)(m->n_params ? m->n_params : 1) * sizeof(float));
    if (!m->grads)
        return cnn_fail(CNN_ERR_NO_MEMORY, "model: cannot allocate gradients (%lld bytes)",
                        (long long)bytes);
    int64_t off = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int p = 0; p < m->layers[i]->n_params; p++) {
            m->layers[i]->params[p].grad = m->grads + off;
            off += m->layers[i]->params[p].count;
        }
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
    if (grad ? cnn_model_ensure_gradients(m) : cnn_model_build(m))
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
    float *view = param_view(m, i, which, count, true);
    /* the caller may write through the view: the next backward must add to
     * what it finds there, and cnn_model_zero_gradients must clear it */
    if (view)
        m->grads_zero = false;
    return view;
}

void cnn_model_training_position(const cnn_model *m, int *epoch, int64_t *step)
{
    if (epoch)
        *epoch = m ? m->train_epoch : 0;
    if (step)
        *step = m ? m->train_step : 0;
}

void cnn_model_zero_gradients(cnn_model *m)
{
    if (m && m->grads && !m->grads_zero)
        memset(m->grads, 0, (size_t)m->n_params * sizeof(float));
    if (m && m->grads)
        m->grads_zero = true;
}

/* ---- Transfer learning --------------------------------------------------------- */

/* A frozen layer's weights are all non-trainable; unfrozen, the kind's
 * infer sets them as it made them (BatchNormalization's moving
 * statistics stay non-trainable). */
static cnn_status apply_frozen(cnn_layer *l, bool frozen)
{
    l->frozen = frozen;
    if (frozen) {
        for (int p = 0; p < l->n_params; p++)
            l->params[p].trainable = false;
        return CNN_OK;
    }
    return l->ops->infer_inputs ? l->ops->infer_inputs(l, l->ins, l->n_inputs)
                                : l->ops->infer(l, l->in);
}

cnn_status cnn_model_set_trainable(cnn_model *m, int index, bool trainable)
{
    if (!m || index < 0 || index >= m->n_layers)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "set_trainable: no layer %d", index);
    return apply_frozen(m->layers[index], !trainable);
}

bool cnn_model_layer_trainable(const cnn_model *m, int index)
{
    return m && index >= 0 && index < m->n_layers && !m->layers[index]->frozen;
}

cnn_status cnn_model_freeze_through(cnn_model *m, const char *name)
{
    int last = m ? cnn_model_find_layer(m, name) : -2;
    if (last < 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "freeze: no layer named \"%s\" (cnn summary lists the names)",
                        name ? name : "(null)");
    cnn_status st = CNN_OK;
    for (int i = 0; i <= last && !st; i++)
        st = apply_frozen(m->layers[i], true);
    return st;
}

cnn_status cnn_model_replace_head(cnn_model *m, int units)
{
    return cnn_model_replace_head_seeded(m, units, m ? m->seed : 0);
}

cnn_status cnn_model_replace_head_seeded(cnn_model *m, int units, uint64_t seed)
{
    if (!m || m->n_layers == 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "replace_head: the model has no layers");
    cnn_layer *old = m->layers[m->n_layers - 1];
    if (old->ops->kind != CNN_LAYER_DENSE)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "replace_head: the last layer, %s, is a %s; expected a Dense classifier",
                        old->name, old->ops->type_name);
    if (units < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "replace_head: units must be >= 1, got %d",
                        units);
    cnn_status st = cnn_model_build(m);
    if (st)
        return st;
    cnn_layer_spec spec = old->spec;
    spec.u.dense.units = units;
    spec.u.dense.name = NULL;
    cnn_layer *l;
    if ((st = old->ops->create(&l, &spec, old->name)))
        return st;
    l->auto_named = old->auto_named;
    l->spec.u.dense.name = l->name;
    int inputs[CNN_MAX_LAYER_INPUTS];
    memcpy(inputs, old->inputs, sizeof inputs);
    if ((st = infer_inputs(m, l, old->n_inputs, inputs))) {
        free(l);
        return st;
    }
    for (int p = 0; p < l->n_params; p++)
        l->params[p].l2 = old->params[p].l2;
    /* every other layer's weights lie before the head's in the block */
    const int64_t kept = old->n_params ? old->params[0].value - m->params : m->n_params;
    float *weights = malloc((size_t)(kept ? kept : 1) * sizeof *weights);
    if (!weights) {
        free(l);
        return cnn_fail(CNN_ERR_NO_MEMORY, "replace_head: out of memory");
    }
    memcpy(weights, m->params, (size_t)kept * sizeof *weights);
    free(old);
    m->layers[m->n_layers - 1] = l;
    cnn_big_free(m->params);
    cnn_big_free(m->grads);
    cnn_big_free(m->opt_m);
    cnn_big_free(m->opt_v);
    m->params = m->grads = m->opt_m = m->opt_v = NULL;
    m->built = m->compiled = false;
    m->opt_steps = m->train_step = 0;
    m->train_epoch = 0;
    m->last_input = NULL;
    m->last_kept = false;
    cnn_model_release_arena(m);
    cnn_model_clear_class_names(m);
    /* the new head draws its initial weights from seed, which becomes the
     * model's: a loaded model's weights exist already, so its seed could
     * not be set before (cnn_model_set_seed), and cnn train --seed must
     * still choose the head */
    m->seed = seed;
    if ((st = cnn_model_build(m)) == CNN_OK)
        memcpy(m->params, weights, (size_t)kept * sizeof *weights);
    free(weights);
    return st;
}
