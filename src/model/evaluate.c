/* evaluate and predict: forward passes over mini-batches, no update; fit
 * validates through cnn_fit_evaluate_view. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "model/fit.h"

/* With par (data-parallel fit), each rank evaluates its share of the
 * examples and the sums are added up over the ranks. */
cnn_status cnn_fit_evaluate_view(cnn_model *m, const data_view *all, int batch,
                                 const cnn_parallel *par, double *loss, double *accuracy)
{
    data_view part = *all;
    const data_view *v = &part;
    if (par) {
        int64_t first;
        cnn_parallel_share(par, all->count, &first, &part.count);
        part.x += first * all->x_row;
        part.y += first * all->y_row;
    }
    double loss_sum = 0, correct = 0;
    for (int64_t start = 0; start < v->count; start += batch) {
        int b = (int)(v->count - start < batch ? v->count - start : batch);
        double l, c;
        cnn_status st = cnn_model_forward_raw(m, v->x + start * v->x_row, b, false, false);
        if (st == CNN_OK)
            st = cnn_model_backward_raw(m, v->y + start * v->y_row, &l, &c, false, NULL);
        if (st)
            return st;
        loss_sum += l;
        correct += c;
    }
    double sums[2] = {loss_sum, correct};
    cnn_status st = par ? cnn_parallel_sum(par, sums, 2) : CNN_OK;
    if (st)
        return st;
    /* as Keras, the loss includes the L2 penalties */
    *loss = sums[0] / (double)all->count + cnn_model_penalty(m);
    *accuracy = sums[1] / (double)all->count;
    return CNN_OK;
}

cnn_status cnn_fit_check_batch_size(int *batch_size, const char *what)
{
    if (*batch_size == 0)
        *batch_size = 32;
    if (*batch_size < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: batch_size must be >= 1, got %d", what,
                        *batch_size);
    return CNN_OK;
}

cnn_status cnn_model_evaluate(cnn_model *m, const cnn_tensor *x, const cnn_tensor *y,
                              int batch_size, double *loss, double *accuracy)
{
    if (!m)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "evaluate: model is NULL");
    if (!m->compiled)
        return cnn_fail(CNN_ERR_STATE, "evaluate: compile the model (choose a loss) first");
    if (!y) /* cnn_model_check_data takes NULL as "no targets" (forward) */
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "evaluate: y is NULL");
    cnn_status st = cnn_fit_check_batch_size(&batch_size, "evaluate");
    if (st || (st = cnn_model_check_data(m, x, y, "evaluate"))
        || (st = cnn_fit_check_data_values(m, x, y, "evaluate")))
        return st;
    data_view v = {x->data, y->data, x->dims[0], cnn_tensor_size(x) / x->dims[0],
                   cnn_model_target_size(m)};
    double l = 0, a = 0;
    st = cnn_fit_evaluate_view(m, &v, batch_size, NULL, &l, &a);
    if (st == CNN_OK) {
        if (loss)
            *loss = l;
        if (accuracy)
            *accuracy = a;
    }
    return st;
}

cnn_status cnn_model_predict(cnn_model *m, const cnn_tensor *x, int batch_size, cnn_tensor **out)
{
    if (!m || !out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "predict: model and out are required");
    *out = NULL;
    cnn_status st = cnn_fit_check_batch_size(&batch_size, "predict");
    if (st || (st = cnn_model_check_data(m, x, NULL, "predict")))
        return st;
    cnn_shape os = cnn_model_output_shape(m);
    int64_t dims[CNN_MAX_RANK] = {x->dims[0]};
    for (int i = 0; i < os.rank; i++)
        dims[i + 1] = os.dims[i];
    cnn_tensor *t;
    if ((st = cnn_tensor_create(&t, os.rank + 1, dims)))
        return st;
    int64_t x_row = cnn_tensor_size(x) / x->dims[0], y_row = cnn_shape_size(os);
    for (int64_t start = 0; start < x->dims[0]; start += batch_size) {
        int b = (int)(x->dims[0] - start < batch_size ? x->dims[0] - start : batch_size);
        if ((st = cnn_model_forward_raw(m, x->data + start * x_row, b, false, false))) {
            cnn_tensor_free(t);
            return st;
        }
        memcpy(t->data + start * y_row, cnn_model_output(m), (size_t)(b * y_row) * sizeof(float));
    }
    *out = t;
    return CNN_OK;
}
