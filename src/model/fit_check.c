/* No silent NaN (Keras's TerminateOnNaN, and more): fit checks the data
 * once, every step's loss and gradients before the update, and the weights
 * before an epoch end is reported, naming where the first non-finite value
 * is. */
#include <math.h>

#include "core/error.h"
#include "core/tensor.h"
#include "model/fit.h"

static const char *nonfinite_name(float v)
{
    return v != v ? "NaN" : v > 0 ? "+infinity" : "-infinity";
}

/* Which layer and weight ("kernel", "bias") element i of the parameter
 * block (and of the gradient block, laid out alike) belongs to. */
static void param_at(const cnn_model *m, int64_t i, int *layer, const char **weight)
{
    *layer = 0;
    *weight = "?";
    for (int l = 0; l < m->n_layers; l++)
        for (int p = 0; p < m->layers[l]->n_params; p++) {
            const cnn_param *prm = &m->layers[l]->params[p];
            int64_t off = prm->value - m->params;
            if (i >= off && i < off + prm->count) {
                *layer = l;
                *weight = prm->name;
            }
        }
}

/* x and y must be finite, and sparse labels integers in [0, classes):
 * checked once, before any step, so a bad example is named by its index
 * instead of surfacing as a NaN loss many steps later. */
cnn_status cnn_fit_check_data_values(const cnn_model *m, const cnn_tensor *x, const cnn_tensor *y,
                                     const char *what)
{
    const cnn_tensor *t[2] = {x, y};
    for (int k = 0; k < 2 && t[k]; k++) {
        int64_t n = cnn_tensor_size(t[k]), row = n / t[k]->dims[0];
        int64_t at = cnn_first_nonfinite(t[k]->data, n);
        if (at >= 0)
            return cnn_fail(CNN_ERR_NUMERIC,
                            "%s: %s is not finite: example %lld has %s at element %lld; the data"
                            " must be finite numbers",
                            what, k ? "y" : "x", (long long)(at / row),
                            nonfinite_name(t[k]->data[at]), (long long)(at % row));
    }
    cnn_shape out = cnn_model_output_shape(m);
    /* the crossentropies take probabilities: a label 7 given to
     * binary_crossentropy makes a negative loss and a meaningless accuracy */
    if (y && (m->loss == CNN_LOSS_BINARY_CROSSENTROPY
              || m->loss == CNN_LOSS_CATEGORICAL_CROSSENTROPY)) {
        int64_t n = cnn_tensor_size(y), row = n / y->dims[0];
        for (int64_t i = 0; i < n; i++)
            if (!(y->data[i] >= 0 && y->data[i] <= 1))
                return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                                "%s: targets: example %lld has %g at output %lld; %s needs targets"
                                " in [0, 1]%s",
                                what, (long long)(i / row), (double)y->data[i],
                                (long long)(i % row),
                                m->loss == CNN_LOSS_BINARY_CROSSENTROPY ? "binary_crossentropy"
                                                                        : "categorical_crossentropy",
                                row == 1 ? " (integer class labels need one output per class and"
                                           " sparse_categorical_crossentropy)"
                                         : "");
    }
    if (!y || m->loss != CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY || out.rank != 1)
        return CNN_OK;
    for (int64_t i = 0; i < y->dims[0]; i++) {
        float v = y->data[i];
        if (!(v >= 0 && v < (float)out.dims[0]) || v != floorf(v))
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "%s: labels: example %lld has label %g, expected an integer in [0, %d)"
                            " (the model has %d outputs)",
                            what, (long long)i, (double)v, out.dims[0], out.dims[0]);
    }
    return CNN_OK;
}

/* After backward, before the update: a non-finite loss or gradient stops
 * training while the weights are still those of the previous step. */
cnn_status cnn_fit_check_step(const cnn_model *m, double loss, int epoch, int64_t step,
                              int64_t steps)
{
    if (!isfinite(loss))
        return cnn_fail(CNN_ERR_NUMERIC,
                        "fit: epoch %d, step %lld/%lld: the loss is %s; training stopped before"
                        " this step's update, so the weights are those after the step before"
                        " (try a lower learning rate, or check the data)",
                        epoch, (long long)step, (long long)steps, isnan(loss) ? "NaN" : "infinite");
    int64_t at = cnn_first_nonfinite(m->grads, m->n_params);
    if (at < 0)
        return CNN_OK;
    int layer;
    const char *weight;
    param_at(m, at, &layer, &weight);
    return cnn_fail(CNN_ERR_NUMERIC,
                    "fit: epoch %d, step %lld/%lld: the gradient of layer %d (%s) %s is %s (the"
                    " loss is %g); training stopped before this step's update, so the weights are"
                    " those after the step before (try a lower learning rate)",
                    epoch, (long long)step, (long long)steps, layer, m->layers[layer]->name, weight,
                    nonfinite_name(m->grads[at]), loss);
}

/* Before the end of an epoch is reported (where checkpoints are saved):
 * an update that overflowed must not reach a saved file. */
cnn_status cnn_fit_check_weights(const cnn_model *m, int epoch)
{
    int64_t at = cnn_first_nonfinite(m->params, m->n_params);
    if (at < 0)
        return CNN_OK;
    int layer;
    const char *weight;
    param_at(m, at, &layer, &weight);
    return cnn_fail(CNN_ERR_NUMERIC,
                    "fit: epoch %d: the weights of layer %d (%s) %s became %s (an update"
                    " overflowed); training stopped before the end of the epoch was reported"
                    " (try a lower learning rate)",
                    epoch, layer, m->layers[layer]->name, weight, nonfinite_name(m->params[at]));
}
