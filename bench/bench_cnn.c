/* Our side of the benchmark: the same networks and measurements as
 * bench_torch.py, printed as the same JSON lines (run by bench/run.py).
 *
 * usage: bench_cnn train|infer NET BATCH THREADS STEPS [POLICY]
 *        bench_cnn profile train|infer NET BATCH THREADS STEPS (per layer)
 *        bench_cnn keras train|infer FILE BATCH THREADS STEPS
 *        bench_cnn conv BATCH H W CIN COUT K THREADS REPS [POLICY]
 *        bench_cnn dense BATCH IN UNITS THREADS REPS [POLICY]
 *        bench_cnn large forward|train SIZE THREADS
 *        bench_cnn fashion STEPS THREADS   (peak RSS of real training)
 * NET: tutorial (Conv 32@5x5 same -> pool -> Conv 64@5x5 same -> pool ->
 * Dense 1024 -> Dense 10) or lenet5; FILE: a Keras model (the MLPerf Tiny
 * ones in models/mlperf-tiny/), which bench_torch.py runs as the same graph
 * with the same weights. POLICY: float32 (the default) or mixed_bfloat16
 * (bench/bf16_run.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cnn.h"
#include "core/big_alloc.h"
#include "core/tensor.h"
#include "model/model.h" /* per-layer timing calls the layer directly */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_cnn: %s: %s\n", what, cnn_last_error());
    exit(1);
}

static long max_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void print_times(const char *key, const double *t, int n)
{
    printf("\"%s\": [", key);
    for (int i = 0; i < n; i++)
        printf(i ? ", %.6f" : "%.6f", t[i]);
    printf("]");
}

static cnn_model *network(const char *name, int threads)
{
    cnn_model *m = NULL;
    if (cnn_model_create(&m, cnn_shape_hwc(28, 28, 1)))
        die("create");
    cnn_model_set_threads(m, threads);
    if (strcmp(name, "tutorial") == 0) {
        cnn_model_add_conv2d(m, cnn_conv2d(.filters = 32, .kernel_size = {5, 5},
                                           .padding = CNN_PADDING_SAME,
                                           .activation = CNN_ACTIVATION_RELU));
        cnn_model_add_max_pooling2d(m, cnn_pool2d());
        cnn_model_add_conv2d(m, cnn_conv2d(.filters = 64, .kernel_size = {5, 5},
                                           .padding = CNN_PADDING_SAME,
                                           .activation = CNN_ACTIVATION_RELU));
        cnn_model_add_max_pooling2d(m, cnn_pool2d());
        cnn_model_add_flatten(m, cnn_flatten());
        cnn_model_add_dense(m, cnn_dense(.units = 1024, .activation = CNN_ACTIVATION_RELU));
        cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SOFTMAX));
    } else if (strcmp(name, "lenet5") == 0) {
        cnn_model_add_conv2d(m, cnn_conv2d(.filters = 6, .kernel_size = {5, 5},
                                           .padding = CNN_PADDING_SAME,
                                           .activation = CNN_ACTIVATION_TANH));
        cnn_model_add_average_pooling2d(m, cnn_pool2d());
        cnn_model_add_conv2d(m, cnn_conv2d(.filters = 16, .kernel_size = {5, 5},
                                           .activation = CNN_ACTIVATION_TANH));
        cnn_model_add_average_pooling2d(m, cnn_pool2d());
        cnn_model_add_flatten(m, cnn_flatten());
        cnn_model_add_dense(m, cnn_dense(.units = 120, .activation = CNN_ACTIVATION_TANH));
        cnn_model_add_dense(m, cnn_dense(.units = 84, .activation = CNN_ACTIVATION_TANH));
        cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SOFTMAX));
    } else {
        fprintf(stderr, "bench_cnn: unknown network %s\n", name);
        exit(2);
    }
    if (cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                         .optimizer = cnn_sgd(.learning_rate = 0.01f,
                                                              .momentum = 0.9f))))
        die("compile");
    return m;
}

/* A batch of random inputs of m's input shape, uniform in [0, 1], and
 * random labels below its output size (the same every run: srand(0)). */
static void random_batch(const cnn_model *m, int batch, cnn_tensor **x, cnn_tensor **y)
{
    cnn_shape in = cnn_model_input_shape(m), classes = cnn_model_output_shape(m);
    int64_t dims[4] = {batch, 1, 1, 1};
    for (int d = 0; d < in.rank; d++)
        dims[d + 1] = in.dims[d];
    cnn_tensor_create(x, in.rank + 1, dims);
    cnn_tensor_create(y, 1, (int64_t[]){batch});
    srand(0);
    for (int64_t i = 0; i < cnn_tensor_size(*x); i++)
        (*x)->data[i] = (float)rand() / (float)RAND_MAX;
    for (int i = 0; i < batch; i++)
        (*y)->data[i] = (float)(rand() % classes.dims[classes.rank - 1]);
}

/* Timed steps of m (compiled; it is freed) on random inputs of its input
 * shape and random labels below its output size. */
static void bench_steps(cnn_model *m, const char *net, int batch, int threads, int steps,
                        bool infer)
{
    cnn_tensor *x, *y;
    random_batch(m, batch, &x, &y);
    double *t = calloc((size_t)steps, sizeof *t);
    cnn_tensor *out = NULL;
    for (int i = 0; i < steps + 3; i++) { /* 3 warm-up steps */
        double t0 = now();
        if (infer) {
            if (cnn_model_predict(m, x, batch, &out))
                die("predict");
            cnn_tensor_free(out);
        } else {
            cnn_model_zero_gradients(m);
            if (cnn_model_forward(m, x, true, NULL) || cnn_model_backward(m, y, NULL, NULL)
                || cnn_model_apply_gradients(m))
                die("train step");
        }
        if (i >= 3)
            t[i - 3] = now() - t0;
    }
    printf("{\"impl\": \"cnn\", \"kind\": \"%s\", \"net\": \"%s\", \"batch\": %d, \"threads\": %d, ",
           infer ? "infer" : "train", net, batch, threads);
    print_times("step_s", t, steps);
    printf(", \"max_rss_kib\": %ld}\n", max_rss_kib());
    free(t);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(m);
}

static void bench_train(const char *net, int batch, int threads, int steps, bool infer,
                        cnn_dtype_policy policy)
{
    cnn_model *m = network(net, threads);
    if (cnn_model_set_dtype_policy(m, policy))
        die("dtype policy");
    bench_steps(m, net, batch, threads, steps, infer);
}

/* Where a training step's (or a batch's inference's) time goes: each
 * layer's forward and backward (the model's own timers, m->layer_seconds),
 * the optimizer update (update_s: cnn_model_apply_gradients) and the whole
 * step, per step. FLOPs are each layer's forward multiply-adds per batch,
 * nominal (cnn_layer's flops: zero padding included). */
static void bench_profile(const char *mode, const char *net, int batch, int threads, int steps)
{
    const bool infer = strcmp(mode, "infer") == 0;
    cnn_model *m = network(net, threads);
    cnn_tensor *x, *y;
    random_batch(m, batch, &x, &y);
    const int L = m->n_layers;
    double *per = calloc((size_t)2 * L, sizeof *per);
    /* per step: the layers', then the update's and the step's seconds */
    const int W = 2 * L + 2;
    double *t = calloc((size_t)steps * W, sizeof *t);
    m->layer_seconds = per;
    for (int i = 0; i < steps + 3; i++) { /* 3 warm-up steps */
        memset(per, 0, (size_t)2 * L * sizeof *per);
        double t0 = now(), t1 = t0;
        if (infer) { /* as bench_steps: cnn_model_predict */
            cnn_tensor *out = NULL;
            if (cnn_model_predict(m, x, batch, &out))
                die("predict");
            cnn_tensor_free(out);
            t1 = now();
        } else {
            cnn_model_zero_gradients(m);
            if (cnn_model_forward(m, x, true, NULL) || cnn_model_backward(m, y, NULL, NULL))
                die("train step");
            t1 = now();
            if (cnn_model_apply_gradients(m))
                die("train step");
        }
        double t2 = now();
        if (i >= 3) {
            memcpy(t + (size_t)(i - 3) * W, per, (size_t)2 * L * sizeof *per);
            t[(size_t)(i - 3) * W + 2 * L] = t2 - t1;
            t[(size_t)(i - 3) * W + 2 * L + 1] = t2 - t0;
        }
    }
    m->layer_seconds = NULL;
    printf("{\"impl\": \"cnn\", \"kind\": \"profile\", \"mode\": \"%s\", \"net\": \"%s\", "
           "\"batch\": %d, \"threads\": %d, \"layers\": [", mode, net, batch, threads);
    double *col = calloc((size_t)steps, sizeof *col);
    for (int l = 0; l < L; l++) {
        const cnn_layer *layer = m->layers[l];
        printf("%s{\"name\": \"%s\", \"type\": \"%s\", \"flops\": %.0f, ", l ? ", " : "",
               layer->name, layer->ops->type_name,
               layer->ops->flops ? (double)layer->ops->flops(layer) * batch : 0.0);
        for (int k = 0; k < 2; k++) {
            for (int s = 0; s < steps; s++)
                col[s] = t[(size_t)s * W + 2 * l + k];
            print_times(k ? "backward_s" : "forward_s", col, steps);
            printf(k ? "}" : ", ");
        }
    }
    printf("], ");
    for (int k = 0; k < 2; k++) {
        for (int s = 0; s < steps; s++)
            col[s] = t[(size_t)s * W + 2 * L + k];
        print_times(k ? "step_s" : "update_s", col, steps);
        printf(k ? "}\n" : ", ");
    }
    free(col), free(t), free(per);
    cnn_tensor_free(x), cnn_tensor_free(y);
    cnn_model_free(m);
}

/* A Keras file: its graph and weights, trained as the networks above are
 * (SGD with momentum, sparse cross-entropy; BatchNormalization on batch
 * statistics). */
static void bench_keras(const char *mode, const char *path, int batch, int threads, int steps)
{
    cnn_model *m = NULL;
    if (cnn_model_load_keras(path, &m, NULL))
        die(path);
    cnn_model_set_threads(m, threads);
    if (cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                         .optimizer = cnn_sgd(.learning_rate = 0.01f,
                                                              .momentum = 0.9f))))
        die("compile");
    const char *base = strrchr(path, '/');
    bench_steps(m, base ? base + 1 : path, batch, threads, steps, strcmp(mode, "infer") == 0);
}

/* The dtype policy named on the command line (float32 when absent). */
static cnn_dtype_policy policy_arg(int argc, char **argv, int i)
{
    cnn_dtype_policy p = CNN_DTYPE_POLICY_FLOAT32;
    if (argc > i && cnn_dtype_policy_from_name(argv[i], &p))
        die("dtype policy");
    return p;
}

/* One layer, the model's only one (built on m's input shape), timed by
 * calling it: forward, backward without dx (the weight gradients only) and
 * backward with dx; the data part is the difference of the two backwards.
 * Prints the JSON line bench/run.py reads ("kind": the layer). */
static void bench_one_layer(cnn_model *m, const char *kind, const char *shape_json, int batch,
                            int threads, int reps, double flops, cnn_dtype_policy policy)
{
    if (cnn_model_set_dtype_policy(m, policy) || cnn_model_ensure_gradients(m)
        || cnn_model_reserve(m, batch, true))
        die(kind);
    cnn_layer *l = m->layers[0];
    size_t nx = (size_t)batch * cnn_shape_size(cnn_model_input_shape(m));
    size_t ny = (size_t)batch * cnn_shape_size(cnn_model_output_shape(m));
    /* allocated as the model's activations are (in a network these are
     * its neighbours' outputs and gradients) */
    float *x = cnn_big_alloc(nx * sizeof(float)), *dx = cnn_big_alloc(nx * sizeof(float));
    float *dy = cnn_big_alloc(ny * sizeof(float));
    if (!x || !dx || !dy)
        die(kind);
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)rand() / (float)RAND_MAX;
    for (size_t i = 0; i < ny; i++)
        dy[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    /* grads_zero: as in a training step, whose gradients start cleared (the
     * layer may overwrite them: Dense does; Conv2D adds to them either way,
     * as it does in training) */
    cnn_layer_io io = {.batch = batch, .training = true, .x = x, .y = m->arena.outputs[0],
                       .dy = dy, .workspace = m->arena.workspace,
                       .tile_floats = m->tile_floats, .pool = m->pool, .gemm = m->gemm,
                       .bf16 = policy == CNN_DTYPE_POLICY_MIXED_BFLOAT16, .grads_zero = true};
    double *tf = calloc((size_t)reps, sizeof(double)), *tw = calloc((size_t)reps, sizeof(double)),
           *td = calloc((size_t)reps, sizeof(double));
    for (int r = 0; r < reps + 2; r++) { /* 2 warm-up rounds */
        double t0 = now();
        l->ops->forward(l, &io);
        double t1 = now();
        io.dx = NULL;
        l->ops->backward(l, &io);
        double t2 = now();
        io.dx = dx;
        l->ops->backward(l, &io);
        double t3 = now();
        if (r >= 2) {
            tf[r - 2] = t1 - t0;
            tw[r - 2] = t2 - t1;
            td[r - 2] = (t3 - t2) - (t2 - t1);
        }
    }
    printf("{\"impl\": \"cnn\", \"kind\": \"%s\", \"batch\": %d, %s, \"threads\": %d,"
           " \"dtype_policy\": \"%s\", \"flops\": %.1f, \"step_s\": {",
           kind, batch, shape_json, threads, cnn_dtype_policy_name(policy), flops);
    print_times("forward", tf, reps);
    printf(", ");
    print_times("backward_data", td, reps);
    printf(", ");
    print_times("backward_weights", tw, reps);
    printf("}, \"max_rss_kib\": %ld, \"gemm\": \"%s\"}\n", max_rss_kib(),
           cnn_gemm_ctx_kernel_name(m->gemm));
    cnn_big_free(x), cnn_big_free(dx), cnn_big_free(dy);
    free(tf), free(tw), free(td);
    cnn_model_free(m);
}

/* Conv2D, same padding, with its bias: the layer as users add it. */
static void bench_conv(int batch, int h, int w, int cin, int cout, int k, int threads, int reps,
                       cnn_dtype_policy policy)
{
    cnn_model *m = NULL;
    cnn_model_create(&m, cnn_shape_hwc(h, w, cin));
    cnn_model_set_threads(m, threads);
    if (cnn_model_add_conv2d(m, cnn_conv2d(.filters = cout, .kernel_size = {k, k},
                                           .padding = CNN_PADDING_SAME)))
        die("conv layer");
    char shape[128];
    snprintf(shape, sizeof shape, "\"h\": %d, \"w\": %d, \"cin\": %d, \"cout\": %d, \"k\": %d",
             h, w, cin, cout, k);
    bench_one_layer(m, "conv", shape, batch, threads, reps,
                    2.0 * batch * h * w * cin * cout * k * k, policy);
}

/* Dense on a flat input of `in` features. */
static void bench_dense(int batch, int in, int units, int threads, int reps,
                        cnn_dtype_policy policy)
{
    cnn_model *m = NULL;
    cnn_model_create(&m, cnn_shape_flat(in));
    cnn_model_set_threads(m, threads);
    if (cnn_model_add_dense(m, cnn_dense(.units = units)))
        die("dense layer");
    char shape[64];
    snprintf(shape, sizeof shape, "\"in\": %d, \"units\": %d", in, units);
    bench_one_layer(m, "dense", shape, batch, threads, reps, 2.0 * batch * in * units, policy);
}

/* The seed network on one size x size x 3 image (see bench_torch.py). */
static void bench_large(const char *mode, int size, int threads)
{
    cnn_model *m = NULL;
    cnn_model_create(&m, cnn_shape_hwc(size, size, 3));
    cnn_model_set_threads(m, threads);
    cnn_model_add_conv2d(m, cnn_conv2d(.filters = 32, .kernel_size = {5, 5},
                                       .padding = CNN_PADDING_SAME,
                                       .activation = CNN_ACTIVATION_RELU));
    cnn_model_add_max_pooling2d(m, cnn_pool2d());
    cnn_model_add_conv2d(m, cnn_conv2d(.filters = 64, .kernel_size = {5, 5},
                                       .padding = CNN_PADDING_SAME,
                                       .activation = CNN_ACTIVATION_RELU));
    cnn_model_add_max_pooling2d(m, cnn_pool2d());
    cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d());
    cnn_model_add_dense(m, cnn_dense(.units = 10, .activation = CNN_ACTIVATION_SOFTMAX));
    bool train = strcmp(mode, "train") == 0;
    if (train && cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                                  .optimizer = cnn_sgd(.momentum = 0.9f))))
        die("compile");
    cnn_tensor *x, *y;
    cnn_tensor_create(&x, 4, (int64_t[]){1, size, size, 3});
    cnn_tensor_create(&y, 1, (int64_t[]){1});
    for (int64_t i = 0; i < cnn_tensor_size(x); i++)
        x->data[i] = (float)rand() / (float)RAND_MAX;
    y->data[0] = 3;
    double t[3];
    cnn_tensor *out = NULL;
    for (int i = 0; i < 3; i++) {
        double t0 = now();
        if (!train) {
            if (cnn_model_predict(m, x, 1, &out))
                die("predict");
            cnn_tensor_free(out);
        } else {
            cnn_model_zero_gradients(m);
            if (cnn_model_forward(m, x, true, NULL) || cnn_model_backward(m, y, NULL, NULL)
                || cnn_model_apply_gradients(m))
                die("train step");
        }
        t[i] = now() - t0;
    }
    cnn_memory_estimate e;
    cnn_model_estimate_memory(m, 1, &e);
    /* The unavoidable, as the issue defines it: training keeps the input,
     * every activation, a gradient for each and the weights; inference the
     * input and the largest pair of adjacent activations. */
    const int64_t input = cnn_tensor_size(x) * 4;
    int64_t pair = 0;
    for (int i = 0; i + 1 < cnn_model_layer_count(m); i++) {
        cnn_shape a = cnn_model_layer_output_shape(m, i), b = cnn_model_layer_output_shape(m, i + 1);
        int64_t sa = 1, sb = 1;
        for (int d = 0; d < a.rank; d++)
            sa *= a.dims[d];
        for (int d = 0; d < b.rank; d++)
            sb *= b.dims[d];
        pair = 4 * (sa + sb) > pair ? 4 * (sa + sb) : pair;
    }
    int64_t minimum = train ? input + 2 * e.activations_training + e.parameters : input + pair;
    printf("{\"impl\": \"cnn\", \"kind\": \"large\", \"mode\": \"%s\", \"size\": %d, \"threads\": %d, ",
           mode, size, threads);
    print_times("step_s", t + 1, 2);
    printf(", \"max_rss_kib\": %ld, \"computed_bytes\": %lld, \"minimum_bytes\": %lld,"
           " \"input_bytes\": %lld}\n",
           max_rss_kib(), (long long)(train ? e.training_total : e.inference_total),
           (long long)minimum, (long long)input);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(m);
}

/* Trains the tutorial convnet on the real Fashion-MNIST for a number of
 * batches of 64 (through fit, as a user would) and reports the peak RSS. */
static void bench_fashion(int steps, int threads)
{
    cnn_tensor *x, *y;
    if (cnn_dataset_load_mnist("/usr/share/datasets/fashion-mnist", &x, &y, NULL, NULL))
        die("loading Fashion-MNIST");
    cnn_model *m = network("tutorial", threads);
    int64_t n = (int64_t)steps * 64 < x->dims[0] ? (int64_t)steps * 64 : x->dims[0];
    cnn_tensor *sx, *sy;
    cnn_tensor_slice(x, 0, n, &sx);
    cnn_tensor_slice(y, 0, n, &sy);
    double t0 = now();
    if (cnn_model_fit(m, sx, sy, cnn_fit(.epochs = 1, .batch_size = 64), NULL))
        die("fit");
    double t = now() - t0;
    printf("{\"impl\": \"cnn\", \"kind\": \"fashion\", \"steps\": %d, \"threads\": %d, "
           "\"step_s\": [%.6f], \"max_rss_kib\": %ld}\n",
           steps, threads, t / steps, max_rss_kib());
    cnn_tensor_free(sx), cnn_tensor_free(sy), cnn_tensor_free(x), cnn_tensor_free(y);
    cnn_model_free(m);
}

int main(int argc, char **argv)
{
    if (argc >= 6 && (strcmp(argv[1], "train") == 0 || strcmp(argv[1], "infer") == 0))
        bench_train(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]),
                    strcmp(argv[1], "infer") == 0, policy_arg(argc, argv, 6));
    else if (argc >= 7 && strcmp(argv[1], "profile") == 0)
        bench_profile(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
    else if (argc >= 7 && strcmp(argv[1], "keras") == 0)
        bench_keras(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
    else if (argc >= 10 && strcmp(argv[1], "conv") == 0)
        bench_conv(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]),
                   atoi(argv[7]), atoi(argv[8]), atoi(argv[9]), policy_arg(argc, argv, 10));
    else if (argc >= 7 && strcmp(argv[1], "dense") == 0)
        bench_dense(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]),
                    policy_arg(argc, argv, 7));
    else if (argc >= 4 && strcmp(argv[1], "fashion") == 0)
        bench_fashion(atoi(argv[2]), atoi(argv[3]));
    else if (argc >= 5 && strcmp(argv[1], "large") == 0)
        bench_large(argv[2], atoi(argv[3]), atoi(argv[4]));
    else {
        fprintf(stderr, "usage: bench_cnn train|infer NET BATCH THREADS STEPS [POLICY]\n"
                        "       bench_cnn profile train|infer NET BATCH THREADS STEPS\n"
                        "       bench_cnn keras train|infer FILE BATCH THREADS STEPS\n"
                        "       bench_cnn conv BATCH H W CIN COUT K THREADS REPS [POLICY]\n"
                        "       bench_cnn dense BATCH IN UNITS THREADS REPS [POLICY]\n"
                        "       bench_cnn large forward|train SIZE THREADS\n"
                        "       bench_cnn fashion STEPS THREADS\n");
        return 2;
    }
    return 0;
}
