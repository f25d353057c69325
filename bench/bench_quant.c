/* Post-training int8 quantization of a trained model, measured: float and
 * int8 test accuracy on an MNIST-layout data set, top-1 agreement, and
 * inference time at batch 64 and batch 1 on one thread and at batch 64
 * on two (float and int8 runs interleaved so a shared machine's load hits
 * both; best of REPS).
 *
 * usage: bench_quant MODEL.cnn DATA_DIR [CALIBRATION_IMAGES [REPS]]
 *        (make build/bench/bench_quant; CALIBRATION_IMAGES default 500,
 *        the first training images) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "quant/qmodel.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int argmax(const float *p, int64_t n)
{
    int best = 0;
    for (int j = 1; j < n; j++)
        if (p[j] > p[best])
            best = j;
    return best;
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_quant: %s: %s\n", what, cnn_last_error());
    return 1;
}

/* Seconds per example of predicting the first n examples of x, batch b. */
static double time_float(cnn_model *m, const cnn_tensor *x, int64_t n, int b)
{
    cnn_tensor view = *x;
    view.dims[0] = n;
    cnn_tensor *out = NULL;
    double t0 = now();
    if (b == 1) {
        for (int64_t i = 0; i < n; i++) {
            cnn_tensor one = *x;
            one.dims[0] = 1;
            one.data = x->data + i * (cnn_tensor_size(x) / x->dims[0]);
            cnn_model_predict(m, &one, 1, &out);
            cnn_tensor_free(out);
        }
    } else {
        cnn_model_predict(m, &view, b, &out);
        cnn_tensor_free(out);
    }
    return (now() - t0) / (double)n;
}

static double time_int8(cnn_qmodel *q, const cnn_tensor *x, int64_t n, int b, float *out)
{
    int64_t per = cnn_tensor_size(x) / x->dims[0];
    double t0 = now();
    for (int64_t i = 0; i < n; i += b) {
        cnn_tensor view = *x;
        view.dims[0] = n - i < b ? n - i : b;
        view.data = x->data + i * per;
        cnn_qmodel_predict(q, &view, out);
    }
    return (now() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_quant MODEL.cnn DATA_DIR [CALIBRATION_IMAGES [REPS]]\n");
        return 2;
    }
    int64_t ncal = argc > 3 ? atoll(argv[3]) : 500;
    int reps = argc > 4 ? atoi(argv[4]) : 3;
    cnn_model *m = NULL;
    cnn_tensor *x = NULL, *tx = NULL, *ty = NULL, *cal = NULL;
    if (cnn_model_load(argv[1], &m) != CNN_OK)
        return fail(argv[1]);
    if (cnn_dataset_load_mnist(argv[2], &x, NULL, &tx, &ty) != CNN_OK)
        return fail(argv[2]);
    if (cnn_tensor_slice(x, 0, ncal, &cal) != CNN_OK)
        return fail("calibration slice");
    cnn_model_set_threads(m, 1);
    double t0 = now();
    cnn_qmodel *q = NULL;
    if (cnn_qmodel_create(&q, m, cal, 0) != CNN_OK || cnn_qmodel_set_threads(q, 1) != CNN_OK)
        return fail("quantize");
    double tq = now() - t0;
    int64_t n = tx->dims[0], classes = cnn_model_output_shape(m).dims[0];
    float *p = malloc((size_t)(n * classes) * sizeof(float));
    cnn_tensor *fp = NULL;
    if (!p || cnn_qmodel_predict(q, tx, p) != CNN_OK || cnn_model_predict(m, tx, 64, &fp) != CNN_OK)
        return fail("predict");
    int64_t right_f = 0, right_q = 0, agree = 0;
    for (int64_t e = 0; e < n; e++) {
        int a = argmax(fp->data + e * classes, classes), b = argmax(p + e * classes, classes);
        right_f += a == (int)ty->data[e];
        right_q += b == (int)ty->data[e];
        agree += a == b;
    }
    printf("model %s, %lld test images, %lld calibration images (quantized in %.2f s)\n", argv[1],
           (long long)n, (long long)ncal, tq);
    printf("accuracy: float %.4f, int8 %.4f, drop %.2f points; top-1 agreement %.4f\n",
           (double)right_f / n, (double)right_q / n, 100.0 * (right_f - right_q) / n,
           (double)agree / n);
    printf("int8 weights %lld bytes, float weights %lld bytes\n",
           (long long)cnn_qmodel_weight_bytes(q), (long long)cnn_model_param_count(m) * 4);
    static const int batches[] = {64, 1, 64}, threads[] = {1, 1, 2};
    for (int bi = 0; bi < 3; bi++) {
        int b = batches[bi];
        if (cnn_model_set_threads(m, threads[bi]) != CNN_OK ||
            cnn_qmodel_set_threads(q, threads[bi]) != CNN_OK)
            return fail("threads");
        int64_t nt = b == 1 ? 200 : 1024;
        double bf = 1e30, bq = 1e30;
        for (int r = 0; r < reps; r++) {
            double f = time_float(m, tx, nt, b), i8 = time_int8(q, tx, nt, b, p);
            bf = f < bf ? f : bf;
            bq = i8 < bq ? i8 : bq;
        }
        printf("batch %2d, %d thread%s: float %.1f images/s, int8 %.1f images/s, "
               "int8/float %.2fx\n",
               b, threads[bi], threads[bi] > 1 ? "s" : "", 1.0 / bf, 1.0 / bq, bf / bq);
    }
    cnn_tensor_free(fp);
    free(p);
    cnn_qmodel_free(q);
    cnn_model_free(m);
    cnn_tensor_free(x);
    cnn_tensor_free(tx);
    cnn_tensor_free(ty);
    cnn_tensor_free(cal);
    return 0;
}
