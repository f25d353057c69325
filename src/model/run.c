/* The forward and backward passes over the activation arena. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/big_alloc.h"
#include "core/error.h"
#include "core/tensor.h"
#include "kernels/activation.h"
#include "kernels/loss.h"
#include "model/memory.h"
#include "model/model.h"

int64_t cnn_model_target_size(const cnn_model *m)
{
    if (m->loss == CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)
        return 1;
    return cnn_shape_size(cnn_model_output_shape(m));
}

cnn_status cnn_model_reserve(cnn_model *m, int batch, bool training)
{
    cnn_status st = cnn_model_build(m);
    if (st)
        return st;
    if (batch <= m->arena.batch && (m->arena.training || !training))
        return CNN_OK;
    cnn_arena_plan plan;
    if ((st = cnn_arena_plan_make(m, batch, training, &plan)))
        return st;
    /* The weights are within the budget (built), so these products fit;
     * the plan saturates rather than wraps. */
    const int64_t params = m->n_params * (int64_t)sizeof(float);
    int64_t kept = params * (m->grads ? 2 : 1) + (m->opt_m ? 2 * params : 0), need;
    char what[96];
    snprintf(what, sizeof what, "%s a batch of %d", training ? "training on" : "running", batch);
    if (plan.overflow
        || __builtin_add_overflow(kept, (int64_t)plan.total * (int64_t)sizeof(float), &need))
        return cnn_fail(CNN_ERR_NO_MEMORY, "model: %s needs more than 2^63 bytes, more than the"
                        " memory budget of %lld bytes; lower the batch size or shrink the layers",
                        what, (long long)m->max_memory);
    if ((st = cnn_model_check_budget(m, need, what)))
        return st;
    const int L = m->n_layers;
    const bool graph = cnn_model_is_graph(m);
    cnn_model_release_arena(m);
    float *block = cnn_big_alloc(plan.total * sizeof(float));
    float **outputs = calloc((size_t)L, sizeof *outputs);
    void **saved = calloc((size_t)L, sizeof *saved);
    float **pre = calloc((size_t)L, sizeof *pre);
    float **grad_of = calloc((size_t)L, sizeof *grad_of);
    size_t *offsets = graph ? calloc((size_t)L, sizeof *offsets) : NULL;
    size_t region = 0, scratch = 0;
    if (!block || !outputs || !saved || !pre || !grad_of || (graph && !offsets)
        || (graph && cnn_graph_plan(m, batch, training, offsets, &region, &scratch))) {
        cnn_big_free(block);
        free(outputs);
        free(saved);
        free(pre);
        free(grad_of);
        free(offsets);
        return cnn_fail(CNN_ERR_NO_MEMORY,
                        "model: cannot allocate %zu bytes of activations for a batch of %d",
                        plan.total * sizeof(float), batch);
    }
    float *p = block;
    if (training) {
        for (int i = 0; i < L; i++) {
            const cnn_layer *l = m->layers[i];
            outputs[i] = p;
            p += (size_t)cnn_shape_size(l->out) * batch;
            if (l->ops->saved_bytes) {
                saved[i] = p;
                p += (l->ops->saved_bytes(l, batch) + sizeof(float) - 1) / sizeof(float);
            }
            if (cnn_activation_needs_input(l->activation)) {
                pre[i] = p;
                p += (size_t)cnn_shape_size(l->out) * batch;
            }
        }
    } else if (graph) {
        /* each output in its planned place, reused after its last reader */
        for (int i = 0; i < L; i++)
            outputs[i] = block + offsets[i];
        p += plan.outputs;
    } else {
        /* Inference keeps only what the next layer reads: layer i writes
         * buffer i % 2 while reading the other. */
        for (int i = 0; i < L; i++)
            outputs[i] = i % 2 ? block + plan.buffer[0] : block;
        p += plan.outputs;
    }
    m->arena = (cnn_arena){.batch = batch, .training = training, .block = block,
                           .floats = plan.total, .outputs = outputs, .saved = saved,
                           .pre = pre, .grad_of = grad_of};
    if (training) {
        m->arena.grad[0] = p, p += plan.buffer[0];
        m->arena.grad[1] = p, p += plan.buffer[1];
        float *region_at = p;
        p += plan.grads - plan.buffer[0] - plan.buffer[1];
        for (int i = 0; i < L; i++)
            grad_of[i] = cnn_model_grad_over_output(m, i) ? outputs[i]
                       : graph                            ? region_at + offsets[i]
                                                          : m->arena.grad[i % 2];
        m->arena.scratch = p, p += plan.scratch;
    }
    free(offsets);
    m->arena.logits = p, p += plan.logits;
    m->arena.workspace = p, p += plan.workspace;
    m->arena.input = p, p += plan.input;
    m->arena.target = p;
    return CNN_OK;
}

/* Layers that can apply their own elementwise activation do, except the
 * last one when the loss needs its pre-activation (logits). */
static bool fuses_activation(const cnn_model *m, int i)
{
    const cnn_layer *l = m->layers[i];
    return l->ops->can_fuse_activation && l->activation != CNN_ACTIVATION_LINEAR
        && cnn_activation_is_elementwise(l->activation)
        && !cnn_activation_needs_input(l->activation)
        && !(i == m->n_layers - 1 && m->compiled
             && cnn_loss_fuses_with(m->loss, l->activation));
}

/* The output a layer reads for input k: a layer's or the model's input. */
static const float *input_of(const cnn_model *m, const cnn_layer *l, int k)
{
    return l->inputs[k] < 0 ? m->last_input : m->arena.outputs[l->inputs[k]];
}

double cnn_model_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* xs holds a merge layer's inputs (CNN_MAX_LAYER_INPUTS entries). */
static cnn_layer_io layer_io(cnn_model *m, int i, int batch, bool training, const float **xs)
{
    const cnn_layer *l = m->layers[i];
    for (int k = 0; k < l->n_inputs; k++)
        xs[k] = input_of(m, l, k);
    return (cnn_layer_io){.batch = batch,
                          .fuse_activation = fuses_activation(m, i),
                          .training = training && !(l->frozen && l->ops->frozen_infers),
                          /* a data-parallel rank's own stream (0 alone) */
                          .step = (int64_t)((uint64_t)m->opt_steps ^ (uint64_t)m->stream << 48),
                          .x = xs[0],
                          .n_inputs = l->n_inputs,
                          .xs = xs,
                          .y = m->arena.outputs[i],
                          .workspace = m->arena.workspace,
                          .saved = m->arena.saved[i],
                          .tile_floats = m->tile_floats,
                          .pool = m->pool,
                          .gemm = m->gemm,
                          .bf16 = m->dtype_policy == CNN_DTYPE_POLICY_MIXED_BFLOAT16};
}

static void activation_rows(const cnn_layer *l, int batch, int64_t *rows, int *n)
{
    *n = l->out.dims[l->out.rank - 1];
    *rows = cnn_shape_size(l->out) / *n * batch;
}

/* The elementwise passes the model runs itself - activations, their
 * derivatives, gradient sums - split between the threads
 * (cnn_pool_elementwise); softmax normalises whole rows and stays on the
 * caller. */
typedef struct {
    cnn_activation a;
    float *y, *dy, *sum;
    const float *z, *ys, *add;
} pass_job;

static void forward_range(void *p, int64_t b, int64_t e)
{
    const pass_job *j = p;
    cnn_activation_forward(j->a, j->y + b, 1, (int)(e - b));
}

static void backward_range(void *p, int64_t b, int64_t e)
{
    const pass_job *j = p;
    if (j->z)
        cnn_activation_backward_input(j->a, j->z + b, j->dy + b, e - b);
    else
        cnn_activation_backward(j->a, j->ys + b, j->dy + b, 1, (int)(e - b));
}

static void sum_range(void *p, int64_t b, int64_t e)
{
    const pass_job *j = p;
    for (int64_t i = b; i < e; i++)
        j->sum[i] += j->add[i];
}

/* Ranges of at most this many values: each is one call (an int count). */
enum { RANGE_MAX = 1 << 30 };

static bool splits(cnn_activation a, int64_t count)
{
    return cnn_activation_is_elementwise(a) && count < RANGE_MAX;
}

static void apply_activation(cnn_model *m, cnn_activation a, float *y, int64_t rows, int n)
{
    pass_job j = {.a = a, .y = y};
    if (splits(a, rows * n))
        cnn_pool_elementwise(m->pool, rows * n, forward_range, &j);
    else
        cnn_activation_forward(a, y, rows, n);
}

/* dy := dy f'(.), from the pre-activation z where the activation needs it,
 * else from the output y. */
static void apply_derivative(cnn_model *m, cnn_activation a, const float *z, const float *y,
                             float *dy, int64_t rows, int n)
{
    pass_job j = {.a = a, .dy = dy, .ys = y, .z = z};
    if (splits(a, rows * n))
        cnn_pool_elementwise(m->pool, rows * n, backward_range, &j);
    else if (z)
        cnn_activation_backward_input(a, z, dy, rows * n);
    else
        cnn_activation_backward(a, y, dy, rows, n);
}

cnn_status cnn_model_forward_raw(cnn_model *m, const float *x, int batch, bool training,
                                 bool keep)
{
    cnn_status st = cnn_model_reserve(m, batch, keep);
    if (st)
        return st;
    const cnn_layer *last = m->layers[m->n_layers - 1];
    m->last_input = x;
    m->last_batch = batch;
    m->last_training = training;
    m->last_kept = m->arena.training;
    m->last_fused = m->compiled && !m->from_logits
                 && cnn_loss_fuses_with(m->loss, last->activation);
    for (int i = 0; i < m->n_layers; i++) {
        cnn_layer *l = m->layers[i];
        const float *xs[CNN_MAX_LAYER_INPUTS];
        cnn_layer_io io = layer_io(m, i, batch, training, xs);
        const double t0 = m->layer_seconds ? cnn_model_seconds() : 0;
        l->ops->forward(l, &io);
        if (!io.fuse_activation) {
            int64_t rows;
            int n;
            activation_rows(l, batch, &rows, &n);
            if (i == m->n_layers - 1 && m->last_fused)
                memcpy(m->arena.logits, io.y, (size_t)(rows * n) * sizeof(float));
            if (m->arena.pre[i])
                memcpy(m->arena.pre[i], io.y, (size_t)(rows * n) * sizeof(float));
            apply_activation(m, l->activation, io.y, rows, n);
        }
        if (m->layer_seconds)
            m->layer_seconds[2 * i] += cnn_model_seconds() - t0;
    }
    return CNN_OK;
}

const float *cnn_model_output(const cnn_model *m) { return m->arena.outputs[m->n_layers - 1]; }

const float *cnn_model_layer_output(const cnn_model *m, int i)
{
    if (!m || i < 0 || i >= m->n_layers || !m->last_input || !m->last_kept)
        return NULL;
    return m->arena.outputs[i];
}

cnn_status cnn_model_backward_raw(cnn_model *m, const float *target, double *loss_sum,
                                  double *correct_sum, bool backward, float *input_grad)
{
    cnn_status st_grads;
    if (!m->compiled)
        return cnn_fail(CNN_ERR_STATE, "model: compile it (choose a loss) before training");
    if (!m->last_input)
        return cnn_fail(CNN_ERR_STATE, "model: backward needs a forward pass first");
    if (backward && !m->last_kept)
        return cnn_fail(CNN_ERR_STATE, "model: the last forward pass kept no outputs for backward");
    if (backward && (st_grads = cnn_model_ensure_gradients(m)))
        return st_grads;
    const int L = m->n_layers, batch = m->last_batch;
    const cnn_layer *last = m->layers[L - 1];
    int64_t rows;
    int n;
    activation_rows(last, batch, &rows, &n);
    /* mse and binary cross-entropy average over every value, so an image
     * output (an autoencoder's) is one flat vector per example to them:
     * Keras's mean over the last axis and then the pixels is the same mean */
    if (rows != batch && cnn_loss_is_elementwise(m->loss)) {
        rows = batch;
        n = (int)cnn_shape_size(last->out);
    }
    if (rows != batch)
        return cnn_fail(CNN_ERR_SHAPE,
                        "loss: the model's output must be one vector per example (add Flatten"
                        " or GlobalPooling before the last Dense)");
    cnn_loss_batch lb = {.loss = m->loss,
                         .fused = m->last_fused || m->from_logits,
                         .from_logits = m->from_logits,
                         .batch = batch,
                         .n = n,
                         .logits = m->from_logits ? cnn_model_output(m) : m->arena.logits,
                         .output = cnn_model_output(m),
                         .target = target,
                         .grad_scale = 1.0f / (float)batch};
    float *grad = backward ? m->arena.grad_of[L - 1] : NULL;
    cnn_status st = cnn_loss_compute(&lb, loss_sum, correct_sum, grad);
    if (st || !backward)
        return st;
    const bool grads_zero = m->grads_zero;
    m->grads_zero = false;
    /* Below the lowest layer that trains, backward has nothing to do
     * (transfer learning's frozen base) unless the input's gradient is
     * wanted. */
    int lowest = L;
    for (int i = L - 1; i >= 0; i--)
        for (int p = 0; p < m->layers[i]->n_params; p++)
            lowest = m->layers[i]->params[p].trainable ? i : lowest;
    for (int i = L - 1; i >= 0 && (i >= lowest || input_grad); i--) {
        cnn_layer *l = m->layers[i];
        const float *xs[CNN_MAX_LAYER_INPUTS];
        cnn_layer_io io = layer_io(m, i, batch, m->last_training, xs);
        const double t0 = m->layer_seconds ? cnn_model_seconds() : 0;
        /* A gradient written over this layer's output already carries the
         * activation's derivative. */
        bool over = cnn_model_grad_over_output(m, i);
        float *dy = m->arena.grad_of[i];
        if (over)
            io.fuse_activation = false;
        else if (!(i == L - 1 && m->last_fused) && !io.fuse_activation) {
            activation_rows(l, batch, &rows, &n);
            apply_derivative(m, l->activation,
                             cnn_activation_needs_input(l->activation) ? m->arena.pre[i] : NULL,
                             io.y, dy, rows, n);
        }
        io.dy = dy;
        /* Each input's gradient: the first written (by its last reader)
         * overwrites, the others go through scratch and are added. */
        float *dxs[CNN_MAX_LAYER_INPUTS], *sums[CNN_MAX_LAYER_INPUTS];
        size_t sizes[CNN_MAX_LAYER_INPUTS];
        float *free_scratch = m->arena.scratch;
        for (int k = 0; k < l->n_inputs; k++) {
            const int p = l->inputs[k];
            sums[k] = p < 0 ? input_grad : m->arena.grad_of[p];
            sizes[k] = (size_t)cnn_shape_size(l->ins[k]) * (size_t)batch;
            dxs[k] = sums[k];
            if (sums[k] && !cnn_model_first_gradient(m, i, k)) {
                dxs[k] = free_scratch;
                free_scratch += sizes[k];
            } else
                sums[k] = NULL; /* written in place */
        }
        const int p0 = l->inputs[0];
        io.dx_over_x = p0 >= 0 && l->n_inputs == 1 && cnn_model_grad_over_output(m, p0);
        io.x_activation = p0 >= 0 ? m->layers[p0]->activation : CNN_ACTIVATION_LINEAR;
        io.dx = dxs[0];
        io.dxs = dxs;
        io.grads_zero = grads_zero;
        l->ops->backward(l, &io);
        /* a frozen layer's weight gradients stay zero, as the optimizer's
         * step leaves the gradients it skips */
        for (int p = 0; l->frozen && p < l->n_params; p++)
            memset(l->params[p].grad, 0, (size_t)l->params[p].count * sizeof(float));
        for (int k = 0; k < l->n_inputs; k++) {
            pass_job j = {.sum = sums[k], .add = dxs[k]};
            if (sums[k])
                cnn_pool_elementwise(m->pool, (int64_t)sizes[k], sum_range, &j);
        }
        if (m->layer_seconds)
            m->layer_seconds[2 * i + 1] += cnn_model_seconds() - t0;
    }
    return CNN_OK;
}

static void format_dims(const int64_t *dims, int rank, char *buf, size_t cap)
{
    cnn_tensor t = {.rank = rank};
    memcpy(t.dims, dims, (size_t)rank * sizeof *dims);
    cnn_tensor_format_shape(&t, buf, cap);
}

cnn_status cnn_model_check_data(const cnn_model *m, const cnn_tensor *x, const cnn_tensor *y,
                                const char *what)
{
    if (!x || !x->data)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: x is NULL", what);
    cnn_shape in = m->input_shape;
    char got[96], want[96];
    cnn_tensor_format_shape(x, got, sizeof got);
    cnn_shape_format(in, want, sizeof want);
    bool ok = x->rank == in.rank + 1;
    for (int i = 0; ok && i < in.rank; i++)
        ok = x->dims[i + 1] == in.dims[i];
    if (!ok) {
        bool missing_channel = x->rank == in.rank && in.rank == 3 && in.dims[2] == 1
                            && x->dims[1] == in.dims[0] && x->dims[2] == in.dims[1];
        return cnn_fail(CNN_ERR_SHAPE, "%s: x has shape %s, the model expects %s%s", what, got,
                        want,
                        missing_channel
                            ? "; grayscale images need a channel axis: call"
                              " cnn_tensor_expand_dims(x) (NumPy's np.expand_dims(x, -1))"
                            : "");
    }
    if (x->dims[0] < 1)
        return cnn_fail(CNN_ERR_SHAPE, "%s: x has no examples", what);
    if (!y)
        return CNN_OK;
    if (!y->data)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: y has no data", what);
    if (y->dims[0] != x->dims[0])
        return cnn_fail(CNN_ERR_SHAPE, "%s: x has %lld examples but y has %lld", what,
                        (long long)x->dims[0], (long long)y->dims[0]);
    int64_t per = cnn_tensor_size(y) / y->dims[0], want_per = cnn_model_target_size(m);
    if (per != want_per) {
        format_dims(y->dims, y->rank, got, sizeof got);
        if (m->loss == CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)
            return cnn_fail(CNN_ERR_SHAPE,
                            "%s: y has shape %s; sparse_categorical_crossentropy expects one"
                            " integer label per example, shape (%lld,)",
                            what, got, (long long)y->dims[0]);
        cnn_shape_format(cnn_model_output_shape(m), want, sizeof want);
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s: y has shape %s, the model's output is %s%s", what, got, want,
                        m->loss == CNN_LOSS_CATEGORICAL_CROSSENTROPY && per == 1
                            ? "; categorical_crossentropy needs one-hot targets"
                              " (cnn_tensor_one_hot) or use sparse_categorical_crossentropy"
                            : "");
    }
    return CNN_OK;
}

cnn_status cnn_model_forward(cnn_model *m, const cnn_tensor *x, bool training,
                             const float **output)
{
    if (!m)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "forward: model is NULL");
    cnn_status st = cnn_model_check_data(m, x, NULL, "forward");
    if (st)
        return st;
    if (x->dims[0] > INT32_MAX)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "forward: batch too large");
    st = cnn_model_forward_raw(m, x->data, (int)x->dims[0], training, true);
    if (st == CNN_OK && output)
        *output = cnn_model_output(m);
    return st;
}

cnn_status cnn_model_backward(cnn_model *m, const cnn_tensor *y, double *loss, float *input_grad)
{
    if (!m || !y)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "backward: model and y are required");
    if (!m->compiled)
        return cnn_fail(CNN_ERR_STATE, "backward: compile the model (choose a loss) first");
    if (!m->last_input)
        return cnn_fail(CNN_ERR_STATE, "backward: call cnn_model_forward first");
    if (y->dims[0] != m->last_batch
        || cnn_tensor_size(y) != (int64_t)m->last_batch * cnn_model_target_size(m))
        return cnn_fail(CNN_ERR_SHAPE, "backward: y does not match the last forward batch of %d",
                        m->last_batch);
    double sum, correct;
    cnn_status st = cnn_model_backward_raw(m, y->data, &sum, &correct, true, input_grad);
    if (st == CNN_OK && loss)
        *loss = sum / m->last_batch;
    return st;
}
