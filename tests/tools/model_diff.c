/* model_diff A.cnn B.cnn [RTOL [ATOL]]: compares two saved models' weights
 * (the same architecture), element by element: |a - b| <= ATOL + RTOL *
 * max(|a|, |b|) (defaults 1e-5 and 1e-7). Prints the largest difference
 * and where; exit status 0 if every weight is within, 1 if not, 2 on a
 * usage or file error. Used by tests/test_mpi.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cnn.h"

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: model_diff A.cnn B.cnn [RTOL [ATOL]]\n");
        return 2;
    }
    double rtol = argc > 3 ? atof(argv[3]) : 1e-5, atol = argc > 4 ? atof(argv[4]) : 1e-7;
    cnn_model *a = NULL, *b = NULL;
    if (cnn_model_load(argv[1], &a) || cnn_model_load(argv[2], &b)) {
        fprintf(stderr, "model_diff: %s\n", cnn_last_error());
        cnn_model_free(a);
        return 2;
    }
    int rc = 0;
    if (cnn_model_layer_count(a) != cnn_model_layer_count(b)
        || cnn_model_param_count(a) != cnn_model_param_count(b)) {
        fprintf(stderr, "model_diff: the models have different layers\n");
        rc = 2;
    }
    double worst = 0, worst_abs = 0;
    int worst_layer = -1, worst_weight = 0;
    int64_t worst_at = 0, compared = 0, outside = 0;
    for (int i = 0; rc == 0 && i < cnn_model_layer_count(a); i++)
        for (int w = 0; w < CNN_MAX_LAYER_WEIGHTS; w++) {
            int64_t na = 0, nb = 0;
            const float *va = cnn_model_layer_weights(a, i, w, &na);
            const float *vb = cnn_model_layer_weights(b, i, w, &nb);
            if (!va || !vb || na != nb) {
                if (va || vb)
                    rc = 2;
                continue;
            }
            for (int64_t k = 0; k < na; k++) {
                double x = va[k], y = vb[k], d = fabs(x - y);
                double scale = fmax(fabs(x), fabs(y)), rel = scale > 0 ? d / scale : 0;
                compared++;
                if (!(d <= atol + rtol * scale))
                    outside++;
                if (rel > worst || d != d) {
                    worst = d != d ? INFINITY : rel;
                    worst_abs = d;
                    worst_layer = i;
                    worst_weight = w;
                    worst_at = k;
                }
            }
        }
    if (rc == 0) {
        printf("model_diff: %lld weights, largest relative difference %.3g", (long long)compared,
               worst);
        if (worst_layer >= 0)
            printf(" (absolute %.3g) at layer %d (%s) weight %d element %lld", worst_abs,
                   worst_layer, cnn_model_layer_name(a, worst_layer), worst_weight,
                   (long long)worst_at);
        printf("; %lld outside rtol %g, atol %g\n", (long long)outside, rtol, atol);
        rc = outside ? 1 : 0;
    } else {
        fprintf(stderr, "model_diff: the models' weights do not correspond\n");
    }
    cnn_model_free(a);
    cnn_model_free(b);
    return rc;
}
