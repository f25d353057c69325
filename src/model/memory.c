/* Memory planning, estimates and the budget. The planner decides from the
 * layers alone and calls nothing in model.c or run.c (they call it), so
 * the three files form no circle. */
#include "model/memory.h"

#include <stdio.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/activation.h"

static size_t round_floats(size_t bytes) { return bytes / sizeof(float) + (bytes % sizeof(float) != 0); }

/* Every size here is in floats and saturates at CNN_PLAN_MAX_FLOATS, whose
 * bytes still fit in an int64_t: a model of thousands of huge layers times
 * a huge batch must come out as "too much", never wrap around to a small
 * number that passes the budget. */
static size_t sat_add(size_t a, size_t b)
{
    size_t r;
    return __builtin_add_overflow(a, b, &r) || r > CNN_PLAN_MAX_FLOATS ? CNN_PLAN_MAX_FLOATS : r;
}

static size_t sat_mul(int64_t a, int64_t b)
{
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r) || (uint64_t)r > CNN_PLAN_MAX_FLOATS)
        return CNN_PLAN_MAX_FLOATS;
    return (size_t)r;
}

static cnn_shape output_shape(const cnn_model *m)
{
    return m->n_layers ? m->layers[m->n_layers - 1]->out : m->input_shape;
}

bool cnn_model_grad_over_output(const cnn_model *m, int i)
{
    if (i < 0 || i + 1 >= m->n_layers)
        return false;
    /* the one reader, reading nothing else, writes the gradient over it */
    const int r = cnn_model_last_reader(m, i);
    if (r == i || cnn_model_reader_count(m, i) != 1 || m->layers[r]->n_inputs != 1)
        return false;
    const cnn_layer *next = m->layers[r];
    return next->ops->backward_in_place && next->ops->backward_in_place(next)
        && cnn_activation_is_elementwise(m->layers[i]->activation)
        && !cnn_activation_needs_input(m->layers[i]->activation);
}

cnn_status cnn_arena_plan_make(const cnn_model *m, int batch, bool training, cnn_arena_plan *p)
{
    *p = (cnn_arena_plan){0};
    const bool graph = cnn_model_is_graph(m);
    for (int i = 0; i < m->n_layers; i++) {
        const cnn_layer *l = m->layers[i];
        size_t n = sat_mul(cnn_shape_size(l->out), batch);
        /* in training, a gradient written over its output needs no buffer */
        if (n > p->buffer[i % 2] && !(training && cnn_model_grad_over_output(m, i)))
            p->buffer[i % 2] = n;
        if (training) {
            p->outputs = sat_add(p->outputs, n);
            if (l->ops->saved_bytes)
                p->outputs = sat_add(p->outputs, round_floats(l->ops->saved_bytes(l, batch)));
            if (cnn_activation_needs_input(l->activation))
                p->outputs = sat_add(p->outputs, n); /* the pre-activation backward reads */
        }
        size_t w = l->ops->workspace_floats ? l->ops->workspace_floats(l, batch, m->tile_floats) : 0;
        w = w > CNN_PLAN_MAX_FLOATS ? CNN_PLAN_MAX_FLOATS : w;
        p->workspace = w > p->workspace ? w : p->workspace;
    }
    if (!training)
        p->outputs = sat_add(p->buffer[0], p->buffer[1]);
    p->grads = training ? sat_add(p->buffer[0], p->buffer[1]) : 0;
    if (graph) {
        /* outputs kept past their next layer: the general plan */
        size_t region;
        cnn_status st = cnn_graph_plan(m, batch, training, NULL, &region, &p->scratch);
        if (st)
            return st;
        p->buffer[0] = p->buffer[1] = 0;
        if (training)
            p->grads = region;
        else
            p->outputs = region;
    }
    size_t out = sat_mul(cnn_shape_size(output_shape(m)), batch);
    p->logits = out;
    p->input = sat_mul(cnn_shape_size(m->input_shape), batch);
    p->target = out;
    size_t total = sat_add(p->outputs, p->grads);
    total = sat_add(total, p->scratch);
    total = sat_add(total, p->logits);
    total = sat_add(total, p->workspace);
    total = sat_add(total, p->input);
    p->total = sat_add(total, p->target);
    p->overflow = p->total == CNN_PLAN_MAX_FLOATS;
    return CNN_OK;
}

/* a + b bytes, INT64_MAX when it does not fit. */
static int64_t bytes_add(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

static int64_t bytes_of(size_t floats) { return (int64_t)floats * (int64_t)sizeof(float); }

cnn_status cnn_model_estimate_memory(const cnn_model *m, int batch, cnn_memory_estimate *out)
{
    if (!m || !out || batch < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "estimate_memory: need a model and batch >= 1");
    cnn_arena_plan train, infer;
    cnn_status st = cnn_arena_plan_make(m, batch, true, &train);
    if (st || (st = cnn_arena_plan_make(m, batch, false, &infer)))
        return st;
    size_t n_params = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int p = 0; p < m->layers[i]->n_params; p++)
            n_params = sat_add(n_params, sat_mul(m->layers[i]->params[p].count, 1));
    const int64_t params = bytes_of(n_params);
    const int64_t two = bytes_add(params, params), four = bytes_add(two, two);
    *out = (cnn_memory_estimate){
        .parameters = params,
        .gradients = params,
        .optimizer_state = two,
        .activations_training = bytes_of(train.outputs),
        .activation_gradients = bytes_of(sat_add(train.grads, train.scratch)),
        .activations_inference = bytes_of(infer.outputs),
        .workspace = bytes_of(train.workspace),
        .batch_buffers = bytes_add(bytes_of(train.input), bytes_of(train.target)),
    };
    out->training_total = train.overflow ? INT64_MAX : bytes_add(bytes_of(train.total), four);
    out->inference_total = infer.overflow ? INT64_MAX : bytes_add(bytes_of(infer.total), params);
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i]->ops->flops)
            out->flops_per_example = bytes_add(out->flops_per_example,
                                               m->layers[i]->ops->flops(m->layers[i]));
    return CNN_OK;
}

static void human_bytes(int64_t b, char *buf, size_t cap)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.2f %s" : "%.0f %s", v, unit[u]);
}

cnn_status cnn_model_check_budget(const cnn_model *m, int64_t bytes, const char *what)
{
    if (bytes <= m->max_memory)
        return CNN_OK;
    char need[32], allowed[32];
    human_bytes(bytes, need, sizeof need);
    human_bytes(m->max_memory, allowed, sizeof allowed);
    return cnn_fail(CNN_ERR_NO_MEMORY,
                    "model: %s needs %lld bytes (%s), more than the memory budget of %lld bytes"
                    " (%s); raise it with cnn_model_set_max_memory (cnn --max-memory) if the"
                    " machine has the memory",
                    what, (long long)bytes, need, (long long)m->max_memory, allowed);
}

cnn_status cnn_model_set_max_memory(cnn_model *m, int64_t bytes)
{
    if (!m || bytes < 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "set_max_memory: bytes must be >= 0");
    m->max_memory = bytes ? bytes : CNN_DEFAULT_MAX_MEMORY;
    return CNN_OK;
}

int64_t cnn_model_max_memory(const cnn_model *m) { return m ? m->max_memory : 0; }

cnn_status cnn_model_set_workspace_limit(cnn_model *m, int64_t bytes)
{
    if (!m || bytes < 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "set_workspace_limit: bytes must be >= 0");
    int64_t floats = bytes ? bytes / (int64_t)sizeof(float) : ((int64_t)8 << 20) / 4;
    m->tile_floats = floats > 0 ? floats : 1;
    m->arena.batch = 0; /* re-plan at the next call (the old block is replaced then) */
    return CNN_OK;
}
