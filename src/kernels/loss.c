#include "kernels/loss.h"

#include <math.h>

#include "core/error.h"

#define CLIP_EPS 1e-7f

bool cnn_loss_fuses_with(cnn_loss loss, cnn_activation a)
{
    return ((loss == CNN_LOSS_CATEGORICAL_CROSSENTROPY
             || loss == CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)
            && a == CNN_ACTIVATION_SOFTMAX)
        || (loss == CNN_LOSS_BINARY_CROSSENTROPY && a == CNN_ACTIVATION_SIGMOID);
}

bool cnn_loss_is_probabilistic(cnn_loss loss)
{
    return loss == CNN_LOSS_CATEGORICAL_CROSSENTROPY
        || loss == CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY
        || loss == CNN_LOSS_BINARY_CROSSENTROPY;
}

bool cnn_loss_is_elementwise(cnn_loss loss)
{
    return loss == CNN_LOSS_MSE || loss == CNN_LOSS_BINARY_CROSSENTROPY;
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int j = 1; j < n; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

static float clip(float p) { return p < CLIP_EPS ? CLIP_EPS : p > 1 - CLIP_EPS ? 1 - CLIP_EPS : p; }

/* Categorical CE of one row; t is the dense target (one-hot or soft). */
static double categorical_row(const cnn_loss_batch *b, const float *z, const float *p,
                              const float *t, float *g, float scale)
{
    const int n = b->n;
    double loss = 0;
    if (b->fused) {
        /* -sum t log softmax(z) = sum t (logsumexp(z) - z); d/dz = p * sum(t) - t */
        float max = z[argmax(z, n)];
        double se = 0, tsum = 0;
        for (int j = 0; j < n; j++) {
            se += exp((double)z[j] - max);
            tsum += t[j];
        }
        double lse = max + log(se);
        for (int j = 0; j < n; j++) {
            loss += t[j] * (lse - z[j]);
            /* with from_logits there is no softmax output: exp(log_softmax) */
            double pj = b->from_logits ? exp(z[j] - lse) : p[j];
            if (g)
                g[j] = (float)(pj * tsum - t[j]) * scale;
        }
        return loss;
    }
    /* From probabilities, as Keras: q = p / sum(p), clipped. */
    double s = 0, tin = 0;
    for (int j = 0; j < n; j++)
        s += p[j];
    if (!(s > 0))
        s = CLIP_EPS;
    for (int j = 0; j < n; j++) {
        float q = (float)(p[j] / s);
        loss -= t[j] * log(clip(q));
        if (q > CLIP_EPS && q < 1 - CLIP_EPS)
            tin += t[j];
    }
    if (g)
        for (int j = 0; j < n; j++) {
            float q = (float)(p[j] / s);
            double own = (q > CLIP_EPS && q < 1 - CLIP_EPS) ? -t[j] / q : 0;
            g[j] = (float)((own + tin) / s) * scale;
        }
    return loss;
}

cnn_status cnn_loss_compute(const cnn_loss_batch *b, double *loss_sum, double *correct_sum,
                            float *grad)
{
    const int n = b->n;
    double loss = 0, correct = 0;
    for (int r = 0; r < b->batch; r++) {
        const float *p = b->output + (int64_t)r * n;
        const float *z = b->fused ? b->logits + (int64_t)r * n : p;
        float *g = grad ? grad + (int64_t)r * n : NULL;
        switch (b->loss) {
        case CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY: {
            float label = b->target[r];
            if (!(label >= 0 && label < (float)n) || label != floorf(label))
                return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                                "labels: example %d has label %g, expected an integer in [0, %d)",
                                r, (double)label, n);
            int k = (int)label;
            if (b->fused) {
                float max = z[argmax(z, n)];
                double se = 0;
                for (int j = 0; j < n; j++)
                    se += exp((double)z[j] - max);
                double lse = max + log(se);
                loss += lse - z[k];
                if (g)
                    for (int j = 0; j < n; j++)
                        g[j] = b->from_logits ? (float)(exp(z[j] - lse) - (j == k)) * b->grad_scale
                                              : (p[j] - (j == k)) * b->grad_scale;
            } else {
                double s = 0;
                for (int j = 0; j < n; j++)
                    s += p[j];
                if (!(s > 0))
                    s = CLIP_EPS;
                float q = (float)(p[k] / s);
                loss -= log(clip(q));
                if (g) {
                    int in = q > CLIP_EPS && q < 1 - CLIP_EPS;
                    for (int j = 0; j < n; j++)
                        g[j] = (float)(((j == k && in) ? -1.0 / q : 0) + in) / (float)s
                             * b->grad_scale;
                }
            }
            correct += argmax(p, n) == k;
            break;
        }
        case CNN_LOSS_CATEGORICAL_CROSSENTROPY: {
            const float *t = b->target + (int64_t)r * n;
            loss += categorical_row(b, z, p, t, g, b->grad_scale);
            correct += argmax(p, n) == argmax(t, n);
            break;
        }
        case CNN_LOSS_BINARY_CROSSENTROPY: {
            const float *t = b->target + (int64_t)r * n;
            double row = 0, hits = 0;
            for (int j = 0; j < n; j++) {
                if (b->fused) {
                    /* stable: max(z,0) - z t + log(1 + exp(-|z|)) */
                    row += fmax(z[j], 0) - (double)z[j] * t[j] + log1p(exp(-fabs(z[j])));
                    if (g && b->from_logits) {
                        /* sigmoid(z), without overflow for either sign */
                        double e = exp(-fabs(z[j])), s = z[j] >= 0 ? 1 / (1 + e) : e / (1 + e);
                        g[j] = (float)((s - t[j]) * b->grad_scale / n);
                    } else if (g) {
                        g[j] = (p[j] - t[j]) * b->grad_scale / (float)n;
                    }
                } else {
                    float q = clip(p[j]);
                    row -= t[j] * log(q) + (1 - t[j]) * log(1 - q);
                    if (g)
                        g[j] = (p[j] > CLIP_EPS && p[j] < 1 - CLIP_EPS)
                                   ? (p[j] - t[j]) / (p[j] * (1 - p[j])) * b->grad_scale / (float)n
                                   : 0;
                }
                /* sigmoid(z) > 0.5 exactly when z > 0 */
                hits += (b->from_logits ? z[j] > 0 : p[j] > 0.5f) == (t[j] > 0.5f);
            }
            loss += row / n;
            correct += hits / n;
            break;
        }
        case CNN_LOSS_MSE: {
            const float *t = b->target + (int64_t)r * n;
            double row = 0;
            for (int j = 0; j < n; j++) {
                double d = (double)p[j] - t[j];
                row += d * d;
                if (g)
                    g[j] = (float)(2 * d / n) * b->grad_scale;
            }
            loss += row / n;
            if (n == 1)
                correct += (p[0] > 0.5f) == (t[0] > 0.5f);
            else
                correct += argmax(p, n) == argmax(t, n);
            break;
        }
        case CNN_LOSS_NONE:
            return cnn_fail(CNN_ERR_STATE, "loss: the model has no loss (compile it first)");
        }
    }
    *loss_sum = loss;
    *correct_sum = correct;
    return CNN_OK;
}
