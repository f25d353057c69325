/* Our side of the "int8 inference" benchmark section (bench/int8_run.py;
 * PyTorch's side is bench_torch.py's q* modes, same arguments, same JSON).
 *
 * usage: bench_int8 prepare DESCRIPTION STEPS OUT.cnn OUT.h5
 *            trains the description briefly on Fashion-MNIST (seed 1,
 *            Adam, STEPS batches of 64 from the first training images,
 *            2 threads) and saves it twice: .cnn for us, Keras .h5 for
 *            PyTorch (the existing bench's route to the same weights)
 *        bench_int8 qaccuracy MODEL.cnn NCAL
 *            float and int8 test accuracy; calibration: the first NCAL
 *            training images
 *        bench_int8 qinfer MODEL.cnn|FILE.h5 float|int8 BATCH THREADS STEPS NCAL
 *            seconds per predict of BATCH test images, STEPS timed after 3
 *            warm-up calls; a Keras .h5 (the MLPerf Tiny models, no data
 *            here) is calibrated on and fed uniform [0, 1) images
 * The int8 model is src/quant/qmodel.h's (internal; bench/ may use it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cnn.h"
#include "quant/qmodel.h"

#define FASHION "/usr/share/datasets/fashion-mnist"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_int8: %s: %s\n", what, cnn_last_error());
    exit(1);
}

static int argmax(const float *p, int64_t n)
{
    int best = 0;
    for (int j = 1; j < n; j++)
        if (p[j] > p[best])
            best = j;
    return best;
}

static void prepare(const char *desc, int steps, const char *out_cnn, const char *out_h5)
{
    cnn_tensor *x, *y, *sx, *sy;
    if (cnn_dataset_load_mnist(FASHION, &x, &y, NULL, NULL))
        die("loading Fashion-MNIST");
    cnn_model *m = NULL;
    if (cnn_model_from_description(desc, &m) || cnn_model_set_seed(m, 1)
        || cnn_model_set_threads(m, 2))
        die(desc);
    if (cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                         .optimizer = cnn_adam())))
        die("compile");
    int64_t n = (int64_t)steps * 64 < x->dims[0] ? (int64_t)steps * 64 : x->dims[0];
    if (cnn_tensor_slice(x, 0, n, &sx) || cnn_tensor_slice(y, 0, n, &sy))
        die("slice");
    double t0 = now();
    if (cnn_model_fit(m, sx, sy, cnn_fit(.epochs = 1, .batch_size = 64, .seed = 1), NULL))
        die("fit");
    double t = now() - t0;
    if (cnn_model_save(m, out_cnn))
        die(out_cnn);
    if (cnn_model_save_keras_h5(m, out_h5))
        die(out_h5);
    printf("{\"impl\": \"cnn\", \"kind\": \"prepare\", \"steps\": %d, \"train_s\": %.3f}\n", steps,
           t);
    cnn_tensor_free(sx), cnn_tensor_free(sy), cnn_tensor_free(x), cnn_tensor_free(y);
    cnn_model_free(m);
}

/* The model at path, its int8 twin (calibrated on the first ncal training
 * images) and the test set. */
static void load(const char *path, int ncal, cnn_model **m, cnn_qmodel **q, cnn_tensor **tx,
                 cnn_tensor **ty)
{
    cnn_tensor *x, *cal;
    if (cnn_model_load(path, m))
        die(path);
    if (cnn_dataset_load_mnist(FASHION, &x, NULL, tx, ty))
        die("loading Fashion-MNIST");
    if (cnn_tensor_slice(x, 0, ncal, &cal))
        die("calibration slice");
    if (cnn_qmodel_create(q, *m, cal, 0))
        die("quantize");
    cnn_tensor_free(cal);
    cnn_tensor_free(x);
}

/* A Keras file (the MLPerf Tiny models: no data for them here): its int8
 * twin calibrated on ncal images uniform in [0, 1) (seeded), and as "test
 * images" 64 more such images. */
static void load_keras(const char *path, int ncal, cnn_model **m, cnn_qmodel **q,
                       cnn_tensor **tx)
{
    if (cnn_model_load_keras(path, m, NULL))
        die(path);
    cnn_shape in = cnn_model_input_shape(*m);
    int64_t dims[4] = {ncal + 64, 1, 1, 1};
    for (int d = 0; d < in.rank; d++)
        dims[d + 1] = in.dims[d];
    cnn_tensor *all, *cal;
    if (cnn_tensor_create(&all, in.rank + 1, dims))
        die("input tensor");
    srand(0);
    for (int64_t i = 0; i < cnn_tensor_size(all); i++)
        all->data[i] = (float)rand() / (float)RAND_MAX;
    if (cnn_tensor_slice(all, 0, ncal, &cal) || cnn_tensor_slice(all, ncal, 64, tx))
        die("slice");
    if (cnn_qmodel_create(q, *m, cal, 0))
        die("quantize");
    cnn_tensor_free(cal);
    cnn_tensor_free(all);
}

static void qaccuracy(const char *path, int ncal)
{
    cnn_model *m;
    cnn_qmodel *q;
    cnn_tensor *tx, *ty, *fp = NULL;
    load(path, ncal, &m, &q, &tx, &ty);
    int64_t n = tx->dims[0], classes = cnn_model_output_shape(m).dims[0];
    float *p = malloc((size_t)(n * classes) * sizeof(float));
    if (!p || cnn_qmodel_predict(q, tx, p) || cnn_model_predict(m, tx, 64, &fp))
        die("predict");
    int64_t right_f = 0, right_q = 0, agree = 0;
    for (int64_t e = 0; e < n; e++) {
        int a = argmax(fp->data + e * classes, classes), b = argmax(p + e * classes, classes);
        right_f += a == (int)ty->data[e];
        right_q += b == (int)ty->data[e];
        agree += a == b;
    }
    printf("{\"impl\": \"cnn\", \"kind\": \"qaccuracy\", \"test_images\": %lld, \"float\": %.6f, "
           "\"int8\": %.6f, \"agreement\": %.6f}\n",
           (long long)n, (double)right_f / n, (double)right_q / n, (double)agree / n);
    free(p);
    cnn_tensor_free(fp), cnn_tensor_free(tx), cnn_tensor_free(ty);
    cnn_qmodel_free(q);
    cnn_model_free(m);
}

static void qinfer(const char *path, const char *kind, int batch, int threads, int steps, int ncal)
{
    cnn_model *m;
    cnn_qmodel *q;
    cnn_tensor *tx, *ty = NULL, *xb, *out = NULL;
    size_t len = strlen(path);
    if (len > 3 && strcmp(path + len - 3, ".h5") == 0)
        load_keras(path, ncal, &m, &q, &tx);
    else
        load(path, ncal, &m, &q, &tx, &ty);
    bool int8 = strcmp(kind, "int8") == 0;
    if (cnn_model_set_threads(m, threads) || cnn_qmodel_set_threads(q, threads))
        die("threads");
    if (cnn_tensor_slice(tx, 0, batch, &xb))
        die("batch slice");
    cnn_shape os = cnn_model_output_shape(m);
    int64_t outs = 1;
    for (int d = 0; d < os.rank; d++)
        outs *= os.dims[d];
    float *p = malloc((size_t)batch * (size_t)outs * sizeof(float));
    double *t = calloc((size_t)steps, sizeof *t);
    if (!p || !t)
        die("out of memory");
    for (int i = 0; i < steps + 3; i++) { /* 3 warm-up calls */
        double t0 = now();
        if (int8) {
            if (cnn_qmodel_predict(q, xb, p))
                die("int8 predict");
        } else {
            if (cnn_model_predict(m, xb, batch, &out))
                die("predict");
            cnn_tensor_free(out);
        }
        if (i >= 3)
            t[i - 3] = now() - t0;
    }
    printf("{\"impl\": \"cnn\", \"kind\": \"qinfer\", \"dtype\": \"%s\", \"batch\": %d, "
           "\"threads\": %d, \"step_s\": [", kind, batch, threads);
    for (int i = 0; i < steps; i++)
        printf(i ? ", %.7f" : "%.7f", t[i]);
    printf("]}\n");
    free(p), free(t);
    cnn_tensor_free(xb), cnn_tensor_free(tx), cnn_tensor_free(ty);
    cnn_qmodel_free(q);
    cnn_model_free(m);
}

int main(int argc, char **argv)
{
    if (argc >= 6 && strcmp(argv[1], "prepare") == 0)
        prepare(argv[2], atoi(argv[3]), argv[4], argv[5]);
    else if (argc >= 4 && strcmp(argv[1], "qaccuracy") == 0)
        qaccuracy(argv[2], atoi(argv[3]));
    else if (argc >= 8 && strcmp(argv[1], "qinfer") == 0)
        qinfer(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), atoi(argv[7]));
    else {
        fprintf(stderr, "usage: bench_int8 prepare DESCRIPTION STEPS OUT.cnn OUT.h5\n"
                        "       bench_int8 qaccuracy MODEL.cnn NCAL\n"
                        "       bench_int8 qinfer MODEL.cnn|FILE.h5 float|int8 BATCH THREADS STEPS NCAL\n");
        return 2;
    }
    return 0;
}
