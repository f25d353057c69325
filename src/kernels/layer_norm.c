#include "kernels/layer_norm.h"

#include <math.h>

void cnn_layer_norm_forward(int64_t rows, int n, float eps, const float *x, const float *gamma,
                            const float *beta, float *y, float *mean, float *rstd)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        /* double sums and two passes: a row of large, nearly equal values
         * (mean 1000, spread 1) keeps its variance to float precision */
        double sum = 0, var = 0;
        for (int i = 0; i < n; i++)
            sum += xr[i];
        const double mu_d = sum / n;
        for (int i = 0; i < n; i++)
            var += (xr[i] - mu_d) * (xr[i] - mu_d);
        const float mu = (float)mu_d;
        const float rs = (float)(1.0 / sqrt(var / n + eps));
        for (int i = 0; i < n; i++) {
            float v = (float)((xr[i] - mu_d) * rs);
            yr[i] = (gamma ? v * gamma[i] : v) + (beta ? beta[i] : 0.0f);
        }
        mean[r] = mu;
        rstd[r] = rs;
    }
}

void cnn_layer_norm_backward(int64_t rows, int n, const float *x, const float *dy,
                             const float *gamma, const float *mean, const float *rstd, float *dx,
                             float *dgamma, float *dbeta)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n, *gr = dy + r * n;
        const float mu = mean[r], rs = rstd[r];
        double sum_g = 0, sum_gx = 0;
        for (int i = 0; i < n; i++) {
            float xhat = (xr[i] - mu) * rs, g = gamma ? gr[i] * gamma[i] : gr[i];
            sum_g += g;
            sum_gx += g * xhat;
            if (dgamma)
                dgamma[i] += gr[i] * xhat;
            if (dbeta)
                dbeta[i] += gr[i];
        }
        if (!dx)
            continue;
        const float mg = (float)(sum_g / n), mgx = (float)(sum_gx / n);
        float *dr = dx + r * n;
        for (int i = 0; i < n; i++) {
            float xhat = (xr[i] - mu) * rs, g = gamma ? gr[i] * gamma[i] : gr[i];
            dr[i] = rs * (g - mg - xhat * mgx);
        }
    }
}

void cnn_layer_norm_naive(int64_t rows, int n, float eps, const float *x, const float *gamma,
                          const float *beta, float *y)
{
    for (int64_t r = 0; r < rows; r++) {
        double mu = 0, var = 0;
        for (int i = 0; i < n; i++)
            mu += x[r * n + i];
        mu /= n;
        for (int i = 0; i < n; i++)
            var += (x[r * n + i] - mu) * (x[r * n + i] - mu);
        var /= n;
        for (int i = 0; i < n; i++) {
            double v = (x[r * n + i] - mu) / sqrt(var + eps);
            y[r * n + i] = (float)((gamma ? v * gamma[i] : v) + (beta ? beta[i] : 0.0));
        }
    }
}
