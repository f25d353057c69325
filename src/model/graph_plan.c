/* Memory planning for graphs: where each layer's output (inference) and
 * each output's gradient (training) live in the arena, so that a buffer
 * is reused once its last reader is done. A chain keeps the two
 * alternating buffers of memory.c; this is the general case.
 *
 * Every buffer is an interval of steps (forward steps for outputs,
 * backward steps for gradients) and a size; buffers whose intervals meet
 * must not overlap in memory. Placement is first fit in layer order, at
 * the lowest offset clear of every placed buffer alive at the same time:
 * deterministic, and for the skip connections of ResNets and U-Nets
 * within a few buffers of the peak of live data. O(L^2 log L) in the
 * layers, and done once per batch size. */
#include <stdint.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/tensor.h"
#include "model/memory.h"

int cnn_model_last_reader(const cnn_model *m, int p)
{
    for (int i = m->n_layers - 1; i > p; i--)
        for (int k = 0; k < m->layers[i]->n_inputs; k++)
            if (m->layers[i]->inputs[k] == p)
                return i;
    return p;
}

int cnn_model_reader_count(const cnn_model *m, int p)
{
    int n = 0;
    for (int i = p + 1; i < m->n_layers; i++)
        for (int k = 0; k < m->layers[i]->n_inputs; k++)
            n += m->layers[i]->inputs[k] == p;
    return n;
}

bool cnn_model_first_gradient(const cnn_model *m, int i, int k)
{
    const int p = m->layers[i]->inputs[k];
    for (int j = k + 1; j < m->layers[i]->n_inputs; j++)
        if (m->layers[i]->inputs[j] == p)
            return false;
    return cnn_model_last_reader(m, p) == i;
}

int cnn_model_last_reader_of_input(const cnn_model *m)
{
    for (int i = m->n_layers - 1; i >= 0; i--)
        for (int k = 0; k < m->layers[i]->n_inputs; k++)
            if (m->layers[i]->inputs[k] < 0)
                return i;
    return -1;
}

/* Sizes saturate at CNN_PLAN_MAX_FLOATS, as memory.c's (the budget then
 * refuses the plan). */
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

typedef struct span {
    size_t size, offset;
    int start, end; /* steps, inclusive; size 0 = no buffer */
} span;

typedef struct block {
    size_t offset, end;
} block;

static int by_offset(const void *a, const void *b)
{
    const block *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* First fit of spans[0..n) in order, at the lowest offset clear of the
 * placed spans alive at the same time (gathered and sorted into live, n
 * entries): O(n^2 log n). Returns the peak end offset. */
static size_t place(span *s, int n, block *live)
{
    size_t peak = 0;
    for (int i = 0; i < n; i++) {
        if (!s[i].size)
            continue;
        int k = 0;
        for (int j = 0; j < i; j++)
            if (s[j].size && s[j].start <= s[i].end && s[i].start <= s[j].end)
                live[k++] = (block){s[j].offset, sat_add(s[j].offset, s[j].size)};
        qsort(live, (size_t)k, sizeof *live, by_offset);
        size_t at = 0;
        for (int j = 0; j < k && live[j].offset < sat_add(at, s[i].size); j++)
            at = live[j].end > at ? live[j].end : at;
        s[i].offset = at;
        if (sat_add(at, s[i].size) > peak)
            peak = sat_add(at, s[i].size);
    }
    return peak;
}

cnn_status cnn_graph_plan(const cnn_model *m, int batch, bool training, size_t *offsets,
                          size_t *total, size_t *scratch)
{
    const int L = m->n_layers;
    span *s = calloc((size_t)(L ? L : 1), sizeof *s);
    block *live = malloc((size_t)(L ? L : 1) * sizeof *live);
    if (!s || !live) {
        free(s);
        free(live);
        return cnn_fail(CNN_ERR_NO_MEMORY, "model: out of memory planning the activations");
    }
    *scratch = 0;
    for (int i = 0; i < L; i++) {
        const cnn_layer *l = m->layers[i];
        size_t n = sat_mul(cnn_shape_size(l->out), batch);
        int last = cnn_model_last_reader(m, i);
        if (!training)
            s[i] = (span){.size = n, .start = i, .end = last};
        else if (!cnn_model_grad_over_output(m, i))
            /* backward step t runs layer L - 1 - t */
            s[i] = (span){.size = n, .start = L - 1 - last, .end = L - 1 - i};
        if (training) {
            /* the gradients a layer adds to a buffer another reader wrote */
            size_t sum = 0;
            for (int k = 0; k < l->n_inputs; k++)
                if (!cnn_model_first_gradient(m, i, k))
                    sum = sat_add(sum, sat_mul(cnn_shape_size(l->ins[k]), batch));
            if (sum > *scratch)
                *scratch = sum;
        }
    }
    *total = place(s, L, live);
    free(live);
    for (int i = 0; offsets && i < L; i++)
        offsets[i] = s[i].size ? s[i].offset : SIZE_MAX;
    free(s);
    return CNN_OK;
}
