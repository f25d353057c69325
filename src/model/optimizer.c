/* Optimizers with Keras's defaults and update rules (per element, g the
 * gradient of the mean batch loss, t the 1-based step):
 *   SGD:      v = momentum v - lr g;  w += v  (nesterov: w += momentum v - lr g)
 *             and w -= lr g without momentum
 *   Adam:     m += (1 - b1)(g - m);  v += (1 - b2)(g^2 - v);
 *             w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
 *   RMSprop:  v = rho v + (1 - rho) g^2;  step = lr g / sqrt(v + eps);
 *             with momentum: s = momentum s + step, w -= s; else w -= step
 *
 * Before the update, as Keras computes it: g += 2 l2 w for weights with an
 * L2 penalty (the gradient of the l2 sum(w^2) term Keras adds to the loss),
 * then clipnorm (each tensor's g scaled to norm <= clipnorm) or
 * global_clipnorm (all g scaled together to joint norm <= global_clipnorm). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/big_alloc.h"
#include "core/error.h"
#include "kernels/loss.h"
#include "kernels/vec.h"
#include "model/model.h"

cnn_status cnn_optimizer_init(cnn_model *m)
{
    cnn_optimizer *o = &m->opt;
    if (o->kind == 0)
        o->kind = CNN_OPTIMIZER_RMSPROP; /* Keras's compile() default */
    switch (o->kind) {
    case CNN_OPTIMIZER_SGD:
        if (o->learning_rate == 0)
            o->learning_rate = 0.01f;
        break;
    case CNN_OPTIMIZER_ADAM:
        if (o->learning_rate == 0)
            o->learning_rate = 0.001f;
        if (o->beta_1 == 0)
            o->beta_1 = 0.9f;
        if (o->beta_2 == 0)
            o->beta_2 = 0.999f;
        if (o->epsilon == 0)
            o->epsilon = 1e-7f;
        break;
    case CNN_OPTIMIZER_RMSPROP:
        if (o->learning_rate == 0)
            o->learning_rate = 0.001f;
        if (o->rho == 0)
            o->rho = 0.9f;
        if (o->epsilon == 0)
            o->epsilon = 1e-7f;
        break;
    default:
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "compile: unknown optimizer kind %d",
                        (int)o->kind);
    }
    if (!(o->learning_rate > 0) || !(o->momentum >= 0 && o->momentum < 1)
        || !(o->beta_1 >= 0 && o->beta_1 < 1) || !(o->beta_2 >= 0 && o->beta_2 < 1)
        || !(o->rho >= 0 && o->rho < 1) || !(o->epsilon >= 0))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "compile: optimizer settings out of range (learning_rate > 0; momentum,"
                        " beta_1, beta_2, rho in [0, 1); epsilon >= 0)");
    if (!(o->clipnorm >= 0 && isfinite(o->clipnorm))
        || !(o->global_clipnorm >= 0 && isfinite(o->global_clipnorm)))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "compile: clipnorm and global_clipnorm must be finite numbers >= 0"
                        " (0 = no clipping), got %g and %g",
                        (double)o->clipnorm, (double)o->global_clipnorm);
    if (o->clipnorm > 0 && o->global_clipnorm > 0)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "compile: give clipnorm or global_clipnorm, not both (as Keras)");
    size_t bytes = (size_t)(m->n_params ? m->n_params : 1) * sizeof(float);
    cnn_status st = cnn_model_check_budget(m, 4 * (int64_t)bytes, "the optimizer state");
    if (st)
        return st;
    cnn_big_free(m->opt_m);
    cnn_big_free(m->opt_v);
    m->opt_m = cnn_big_alloc(bytes);
    m->opt_v = cnn_big_alloc(bytes);
    if (!m->opt_m || !m->opt_v) {
        cnn_big_free(m->opt_m);
        cnn_big_free(m->opt_v);
        m->opt_m = m->opt_v = NULL;
        return cnn_fail(CNN_ERR_NO_MEMORY, "compile: cannot allocate optimizer state (%zu bytes)",
                        2 * bytes);
    }
    m->opt_steps = 0;
    return CNN_OK;
}

static double squared_norm(const float *v, int64_t n)
{
    double sum = 0;
    for (int64_t k = 0; k < n; k++)
        sum += (double)v[k] * v[k];
    return sum;
}

typedef struct {
    const cnn_optimizer *o;
    float *w, *g, *s1, *s2;
    long n;
    float lr;      /* this step's learning rate */
    float adam_lr; /* Adam's bias-corrected step size */
} update_job;

static void update_worker(void *p, int ith, int nth)
{
    const update_job *j = p;
    const cnn_optimizer *o = j->o;
    long b, e;
    cnn_split_range(j->n, ith, nth, &b, &e);
    float *w = j->w, *g = j->g, *s1 = j->s1, *s2 = j->s2;
    const float lr = j->lr;
    switch (o->kind) {
    case CNN_OPTIMIZER_SGD:
        if (o->momentum == 0) {
            for (long i = b; i < e; i++)
                w[i] -= lr * g[i];
        } else if (!o->nesterov) {
            /* four at a time: the update is memory-bound */
            const cnn_v4f mom = {o->momentum, o->momentum, o->momentum, o->momentum},
                          rate = {lr, lr, lr, lr};
            long i = b;
            for (; i + 4 <= e; i += 4) {
                cnn_v4f v = mom * cnn_v4_load(s1 + i) - rate * cnn_v4_load(g + i);
                cnn_v4_store(s1 + i, v);
                cnn_v4_store(w + i, cnn_v4_load(w + i) + v);
            }
            for (; i < e; i++) {
                s1[i] = o->momentum * s1[i] - lr * g[i];
                w[i] += s1[i];
            }
        } else {
            for (long i = b; i < e; i++) {
                s1[i] = o->momentum * s1[i] - lr * g[i];
                w[i] += o->momentum * s1[i] - lr * g[i];
            }
        }
        break;
    case CNN_OPTIMIZER_ADAM:
        for (long i = b; i < e; i++) {
            s1[i] += (1 - o->beta_1) * (g[i] - s1[i]);
            s2[i] += (1 - o->beta_2) * (g[i] * g[i] - s2[i]);
            w[i] -= j->adam_lr * s1[i] / (sqrtf(s2[i]) + o->epsilon);
        }
        break;
    case CNN_OPTIMIZER_RMSPROP:
        for (long i = b; i < e; i++) {
            s2[i] = o->rho * s2[i] + (1 - o->rho) * g[i] * g[i];
            float step = lr * g[i] / sqrtf(s2[i] + o->epsilon);
            if (o->momentum > 0) {
                s1[i] = o->momentum * s1[i] + step;
                w[i] -= s1[i];
            } else {
                w[i] -= step;
            }
        }
        break;
    }
    /* the gradients are consumed: clear them now, while they are in cache */
    memset(g + b, 0, (size_t)(e - b) * sizeof(float));
}

double cnn_model_penalty(const cnn_model *m)
{
    double total = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int p = 0; p < m->layers[i]->n_params; p++) {
            const cnn_param *prm = &m->layers[i]->params[p];
            if (prm->l2 != 0)
                total += prm->l2 * squared_norm(prm->value, prm->count);
        }
    return total;
}

static void scale(float *g, int64_t n, float factor)
{
    for (int64_t k = 0; k < n; k++)
        g[k] *= factor;
}

/* The gradients the update uses: the L2 penalties' added, then clipped. */
static void final_gradients(cnn_model *m)
{
    const cnn_optimizer *o = &m->opt;
    double global = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int p = 0; p < m->layers[i]->n_params; p++) {
            cnn_param *prm = &m->layers[i]->params[p];
            if (!prm->trainable)
                continue;
            if (prm->l2 != 0)
                for (int64_t k = 0; k < prm->count; k++)
                    prm->grad[k] += 2 * prm->l2 * prm->value[k];
            if (o->clipnorm > 0) {
                double norm = sqrt(squared_norm(prm->grad, prm->count));
                if (norm > o->clipnorm)
                    scale(prm->grad, prm->count, (float)(o->clipnorm / norm));
            } else if (o->global_clipnorm > 0) {
                global += squared_norm(prm->grad, prm->count);
            }
        }
    global = sqrt(global);
    if (!(o->global_clipnorm > 0 && global > o->global_clipnorm))
        return;
    for (int i = 0; i < m->n_layers; i++)
        for (int p = 0; p < m->layers[i]->n_params; p++) {
            cnn_param *prm = &m->layers[i]->params[p];
            if (prm->trainable)
                scale(prm->grad, prm->count, (float)(o->global_clipnorm / global));
        }
}

void cnn_optimizer_step(cnn_model *m, float lr)
{
    const cnn_optimizer *o = &m->opt;
    if (!(lr > 0))
        lr = o->learning_rate;
    final_gradients(m);
    /* loaded counts are at most CNN_MAX_STEPS (2^53); never past INT64_MAX */
    if (m->opt_steps < INT64_MAX)
        m->opt_steps++;
    double t = (double)m->opt_steps;
    float adam_lr = (float)(lr * sqrt(1 - pow(o->beta_2, t)) / (1 - pow(o->beta_1, t)));
    for (int i = 0; i < m->n_layers; i++) {
        cnn_layer *l = m->layers[i];
        for (int p = 0; p < l->n_params; p++) {
            cnn_param *prm = &l->params[p];
            if (!prm->trainable)
                continue;
            size_t off = (size_t)(prm->value - m->params);
            update_job job = {o, prm->value, prm->grad, m->opt_m + off, m->opt_v + off,
                              (long)prm->count, lr, adam_lr};
            cnn_pool_run(prm->count >= 65536 ? m->pool : NULL, update_worker, &job);
        }
    }
    /* non-trainable parameters' gradients are never written (nothing to clear) */
    m->grads_zero = true;
}

static const char *loss_name(cnn_loss loss)
{
    return loss == CNN_LOSS_CATEGORICAL_CROSSENTROPY          ? "categorical_crossentropy"
           : loss == CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY ? "sparse_categorical_crossentropy"
           : loss == CNN_LOSS_BINARY_CROSSENTROPY             ? "binary_crossentropy"
                                                              : "mse";
}

/* Outputs that cannot mean what the loss scores, refused at compile rather
 * than trained into a number that looks like a result (a 10-way softmax
 * under binary_crossentropy scores 0.9 "accuracy" by predicting "no"
 * everywhere). units: the output's length. */
static cnn_status check_loss_fits(const cnn_model *m, cnn_loss loss, int units)
{
    const cnn_layer *last = m->n_layers ? m->layers[m->n_layers - 1] : NULL;
    const bool softmax = last && last->activation == CNN_ACTIVATION_SOFTMAX;
    if (softmax && units == 1)
        return cnn_fail(CNN_ERR_SHAPE,
                        "compile: the last layer %s (%s) has softmax over 1 output, which is"
                        " always 1: use sigmoid for a yes/no output, or one unit per class",
                        last->name, last->ops->type_name);
    if (softmax && loss == CNN_LOSS_BINARY_CROSSENTROPY)
        return cnn_fail(CNN_ERR_SHAPE,
                        "compile: binary_crossentropy scores each of the %d outputs as its own"
                        " yes/no, but the last layer %s (%s) has softmax, which makes them"
                        " compete: use categorical_crossentropy (one-hot targets) or"
                        " sparse_categorical_crossentropy (integer labels), or sigmoid for"
                        " independent labels",
                        units, last->name, last->ops->type_name);
    if (units == 1 && (loss == CNN_LOSS_CATEGORICAL_CROSSENTROPY
                       || loss == CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY))
        return cnn_fail(CNN_ERR_SHAPE,
                        "compile: %s needs one output per class (at least 2), the model has 1;"
                        " for a yes/no output use binary_crossentropy",
                        loss_name(loss));
    return CNN_OK;
}

cnn_status cnn_model_compile(cnn_model *m, cnn_compile_config cfg)
{
    if (!m)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "compile: model is NULL");
    if (cfg.loss < CNN_LOSS_CATEGORICAL_CROSSENTROPY || cfg.loss > CNN_LOSS_MSE)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "compile: loss must be categorical_crossentropy,"
                        " sparse_categorical_crossentropy, binary_crossentropy or mse (got %d)",
                        (int)cfg.loss);
    /* Every loss compares one vector per example: a rank-3 output (Dense
     * after Conv2D works pixel by pixel, as in Keras) would otherwise fail
     * only in the first training step. */
    const cnn_shape out = cnn_model_output_shape(m);
    if (out.rank != 1 && !cnn_loss_is_elementwise(cfg.loss)) {
        const char *last = m->n_layers ? m->layers[m->n_layers - 1]->name : "input";
        const char *type = m->n_layers ? m->layers[m->n_layers - 1]->ops->type_name : "Input";
        return cnn_fail(CNN_ERR_SHAPE,
                        "compile: the model's output, from layer %s (%s), has shape (%d, %d, %d);"
                        " a cross-entropy over classes needs one vector per example: add Flatten"
                        " (or GlobalAveragePooling2D) before the last Dense (mse and"
                        " binary_crossentropy take image outputs)",
                        last, type, out.dims[0], out.dims[1], out.dims[2]);
    }
    if (cfg.from_logits && !cnn_loss_is_probabilistic(cfg.loss))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "compile: from_logits applies to the cross-entropy losses only, not mse");
    cnn_status st = check_loss_fits(m, cfg.loss, out.dims[0]);
    if (st || (st = cnn_model_ensure_gradients(m)))
        return st;
    m->opt = cfg.optimizer;
    if ((st = cnn_optimizer_init(m)))
        return st;
    m->loss = cfg.loss;
    m->from_logits = cfg.from_logits;
    m->compiled = true;
    return CNN_OK;
}

cnn_status cnn_model_compile_config(const cnn_model *m, cnn_compile_config *out)
{
    if (!m || !out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "compile_config: model and out are required");
    if (!m->compiled)
        return cnn_fail(CNN_ERR_STATE, "compile_config: the model is not compiled");
    *out = (cnn_compile_config){.loss = m->loss, .optimizer = m->opt,
                                .from_logits = m->from_logits};
    return CNN_OK;
}

bool cnn_model_loss_expects_probabilities(const cnn_model *m)
{
    if (!m || !m->compiled || m->from_logits || !cnn_loss_is_probabilistic(m->loss))
        return false;
    /* the last layer that computes: Dropout, Flatten, Reshape pass values on */
    int i = m->n_layers - 1;
    while (i > 0 && (m->layers[i]->ops->kind == CNN_LAYER_DROPOUT
                     || m->layers[i]->ops->kind == CNN_LAYER_FLATTEN
                     || m->layers[i]->ops->kind == CNN_LAYER_RESHAPE))
        i--;
    return i >= 0 && m->layers[i]->activation == CNN_ACTIVATION_LINEAR
        && m->layers[i]->ops->kind != CNN_LAYER_DROPOUT
        && m->layers[i]->ops->kind != CNN_LAYER_FLATTEN
        && m->layers[i]->ops->kind != CNN_LAYER_RESHAPE;
}

cnn_status cnn_model_apply_gradients(cnn_model *m)
{
    if (!m || !m->compiled)
        return cnn_fail(CNN_ERR_STATE, "apply_gradients: compile the model first");
    cnn_optimizer_step(m, 0);
    return CNN_OK;
}
