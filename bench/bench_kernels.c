/* Micro-benchmark of the batch-norm, depthwise and global-pooling kernels:
 * each naive twin against the fast version on every instruction set this
 * CPU runs, single-threaded, on one realistic shape each; and MaxPooling2D
 * (no naive twin: its generic build is the reference). Prints the best
 * of REPS runs in milliseconds.
 *
 * usage: bench_kernels [REPS]        (make build/bench/bench_kernels) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/batch_norm.h"
#include "kernels/depthwise.h"
#include "kernels/global_pool.h"
#include "kernels/pool.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static float *floats(int64_t n, float lo, float hi)
{
    float *p = malloc((size_t)n * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * (float)rand() / (float)RAND_MAX;
    return p;
}

/* The operations timed; isa < 0 runs the naive twin. */
enum {
    BN_FORWARD,
    BN_BACKWARD,
    DW_FORWARD,
    DW_BACKWARD,
    GAP_FORWARD,
    GAP_BACKWARD,
    GMP_FORWARD,
    GMP_BACKWARD,
    MP_FORWARD,
    MP_BACKWARD,
    MP_OVER_X,
    N_OPS
};
static const char *const op_names[N_OPS] = {
    "batch_norm forward (64,28,28,32)",     "batch_norm backward (64,28,28,32)",
    "depthwise 3x3 forward (64,48,48,32)",  "depthwise 3x3 backward (64,48,48,32)",
    "global avg pool forward (64,7,7,256)", "global avg pool backward (64,7,7,256)",
    "global max pool forward (64,7,7,256)", "global max pool backward (64,7,7,256)",
    "maxpool 2x2 forward (64,28,28,32)",    "maxpool 2x2 backward (64,28,28,32)",
    "maxpool 2x2 backward over x, relu"};

typedef struct {
    /* batch norm: rows x C */
    int64_t bn_rows;
    int bn_c;
    float *bn_x, *bn_y, *bn_g, *bn_dx, *scale, *shift, *mean, *inv_std, *mg, *mgx;
    double *sum1, *sum2;
    /* depthwise */
    cnn_conv_geom g;
    int64_t dw_m;
    float *dw_x, *dw_k, *dw_d, *dw_dd, *dw_dk, *dw_dx;
    /* global pooling: batch x hw x c */
    int64_t gp_batch, gp_hw;
    int gp_c;
    float *gp_x, *gp_y, *gp_dy, *gp_dx;
    /* max pooling 2x2 */
    cnn_conv_geom mp;
    float *mp_x, *mp_y, *mp_dy, *mp_dx;
} bench_data;

static void run(bench_data *b, int op, int isa)
{
    const bool naive = isa < 0;
    const cnn_isa s = (cnn_isa)isa;
    switch (op) {
    case BN_FORWARD:
        if (naive) {
            cnn_bn_stats_naive(b->bn_x, b->bn_rows, b->bn_c, b->bn_c, b->sum1, b->sum2);
            cnn_bn_affine_naive(b->bn_x, b->bn_y, b->bn_rows, b->bn_c, b->bn_c, b->scale, b->shift);
        } else {
            cnn_bn_stats(s, b->bn_x, b->bn_rows, b->bn_c, b->bn_c, b->sum1, b->sum2);
            cnn_bn_affine(s, b->bn_x, b->bn_y, b->bn_rows, b->bn_c, b->bn_c, b->scale, b->shift);
        }
        break;
    case BN_BACKWARD:
        if (naive) {
            cnn_bn_grad_sums_naive(b->bn_x, b->bn_g, b->bn_rows, b->bn_c, b->bn_c, b->mean,
                                   b->inv_std, b->sum1, b->sum2);
            cnn_bn_grad_input_naive(b->bn_x, b->bn_g, b->bn_dx, b->bn_rows, b->bn_c, b->bn_c,
                                    b->scale, b->mean, b->inv_std, b->mg, b->mgx);
        } else {
            cnn_bn_grad_sums(s, b->bn_x, b->bn_g, b->bn_rows, b->bn_c, b->bn_c, b->mean, b->inv_std,
                             b->sum1, b->sum2);
            cnn_bn_grad_input(s, b->bn_x, b->bn_g, b->bn_dx, b->bn_rows, b->bn_c, b->bn_c, b->scale,
                              b->mean, b->inv_std, b->mg, b->mgx);
        }
        break;
    case DW_FORWARD:
        if (naive)
            cnn_depthwise_forward_naive(&b->g, 1, b->dw_x, b->dw_k, 0, b->dw_m, b->dw_d);
        else
            cnn_depthwise_forward(s, &b->g, 1, b->dw_x, b->dw_k, 0, b->dw_m, b->dw_d);
        break;
    case DW_BACKWARD:
        if (naive)
            cnn_depthwise_backward_naive(&b->g, 1, b->dw_x, b->dw_k, b->dw_dd, 0, b->dw_m, 0,
                                         b->g.c, b->dw_dk, b->dw_dx);
        else
            cnn_depthwise_backward(s, &b->g, 1, b->dw_x, b->dw_k, b->dw_dd, 0, b->dw_m, 0, b->g.c,
                                   b->dw_dk, b->dw_dx);
        break;
    case GAP_FORWARD:
        if (naive)
            cnn_global_avgpool_forward_naive(b->gp_x, b->gp_y, b->gp_batch, b->gp_hw, b->gp_c);
        else
            cnn_global_avgpool_forward(s, b->gp_x, b->gp_y, b->gp_batch, b->gp_hw, b->gp_c);
        break;
    case GAP_BACKWARD:
        if (naive)
            cnn_global_avgpool_backward_naive(b->gp_dy, b->gp_dx, b->gp_batch, b->gp_hw, b->gp_c);
        else
            cnn_global_avgpool_backward(s, b->gp_dy, b->gp_dx, b->gp_batch, b->gp_hw, b->gp_c);
        break;
    case GMP_FORWARD:
        if (naive)
            cnn_global_maxpool_forward_naive(b->gp_x, b->gp_y, b->gp_batch, b->gp_hw, b->gp_c);
        else
            cnn_global_maxpool_forward(s, b->gp_x, b->gp_y, b->gp_batch, b->gp_hw, b->gp_c);
        break;
    case GMP_BACKWARD:
        if (naive)
            cnn_global_maxpool_backward_naive(b->gp_x, b->gp_dy, b->gp_dx, b->gp_batch, b->gp_hw,
                                              b->gp_c);
        else
            cnn_global_maxpool_backward(s, b->gp_x, b->gp_dy, b->gp_dx, b->gp_batch, b->gp_hw,
                                        b->gp_c);
        break;
    case MP_FORWARD:
        cnn_maxpool_forward(s, &b->mp, b->mp_x, b->mp_y, 0, 64 * b->mp.oh);
        break;
    case MP_BACKWARD:
        memset(b->mp_dx, 0, (size_t)64 * 28 * 28 * 32 * sizeof(float)); /* as the layer does */
        cnn_maxpool_backward(s, &b->mp, b->mp_x, b->mp_y, b->mp_dy, b->mp_dx, 0, 64 * b->mp.oh);
        break;
    case MP_OVER_X: /* mp_dx holds a copy of x (made untimed) */
        cnn_maxpool_backward_over_x(s, &b->mp, b->mp_dx, b->mp_y, b->mp_dy, CNN_ACTIVATION_RELU,
                                    0, 64 * b->mp.oh);
        break;
    }
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 10;
    if (reps < 1)
        reps = 1;
    bench_data b = {.bn_rows = 64 * 28 * 28, .bn_c = 32, .gp_batch = 64, .gp_hw = 49, .gp_c = 256};
    int64_t bn_n = b.bn_rows * b.bn_c;
    b.bn_x = floats(bn_n, -1, 1), b.bn_y = floats(bn_n, 0, 1), b.bn_g = floats(bn_n, -1, 1);
    b.bn_dx = floats(bn_n, 0, 1);
    b.scale = floats(b.bn_c, 0.5f, 2), b.shift = floats(b.bn_c, -1, 1);
    b.mean = floats(b.bn_c, -0.1f, 0.1f), b.inv_std = floats(b.bn_c, 0.5f, 2);
    b.mg = floats(b.bn_c, -0.1f, 0.1f), b.mgx = floats(b.bn_c, -0.1f, 0.1f);
    b.sum1 = calloc((size_t)b.bn_c, sizeof(double)),
    b.sum2 = calloc((size_t)b.bn_c, sizeof(double));

    b.g = (cnn_conv_geom){
        .h = 48, .w = 48, .c = 32, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .dh = 1, .dw = 1};
    b.g.oh = cnn_conv_out_size(48, 3, 1, 1, 1, &b.g.pad_top);
    b.g.ow = cnn_conv_out_size(48, 3, 1, 1, 1, &b.g.pad_left);
    b.dw_m = (int64_t)64 * b.g.oh * b.g.ow;
    int64_t dw_n = (int64_t)64 * 48 * 48 * 32;
    b.dw_x = floats(dw_n, -1, 1), b.dw_k = floats(9 * 32, -1, 1),
    b.dw_d = floats(b.dw_m * 32, 0, 1);
    b.dw_dd = floats(b.dw_m * 32, -1, 1), b.dw_dk = floats(9 * 32, 0, 0);
    b.dw_dx = floats(dw_n, 0, 0);

    int64_t gp_n = b.gp_batch * b.gp_hw * b.gp_c;
    b.gp_x = floats(gp_n, -1, 1), b.gp_dx = floats(gp_n, 0, 1);
    b.gp_y = floats(b.gp_batch * b.gp_c, 0, 1), b.gp_dy = floats(b.gp_batch * b.gp_c, -1, 1);

    b.mp = (cnn_conv_geom){
        .h = 28, .w = 28, .c = 32, .kh = 2, .kw = 2, .sh = 2, .sw = 2, .dh = 1, .dw = 1};
    b.mp.oh = cnn_conv_out_size(28, 2, 2, 1, 0, &b.mp.pad_top);
    b.mp.ow = cnn_conv_out_size(28, 2, 2, 1, 0, &b.mp.pad_left);
    int64_t mp_n = (int64_t)64 * 28 * 28 * 32, mp_out = (int64_t)64 * 14 * 14 * 32;
    b.mp_x = floats(mp_n, 0, 1), b.mp_dx = floats(mp_n, 0, 0);
    b.mp_y = floats(mp_out, 0, 0), b.mp_dy = floats(mp_out, -1, 1);
    cnn_maxpool_forward(CNN_ISA_GENERIC, &b.mp, b.mp_x, b.mp_y, 0, 64 * b.mp.oh);

    static const cnn_isa isas[] = {CNN_ISA_GENERIC, CNN_ISA_AVX2, CNN_ISA_AVX512};
    printf("%-40s %10s %10s %10s %10s  (ms, best of %d, 1 thread)\n", "kernel", "naive", "generic",
           "avx2", "avx512", reps);
    for (int op = 0; op < N_OPS; op++) {
        printf("%-40s", op_names[op]);
        for (int v = -1; v < 3; v++) {
            if ((v >= 0 && !cnn_isa_supported(isas[v])) || (v < 0 && op >= MP_FORWARD)) {
                printf(" %10s", "-");
                continue;
            }
            double best = 1e30;
            for (int r = 0; r < reps + 1; r++) { /* one warm-up run */
                if (op == MP_OVER_X)
                    memcpy(b.mp_dx, b.mp_x, (size_t)mp_n * sizeof(float));
                double t0 = now();
                run(&b, op, v < 0 ? -1 : (int)isas[v]);
                double t = now() - t0;
                if (r > 0 && t < best)
                    best = t;
            }
            printf(" %10.3f", best * 1e3);
        }
        printf("\n");
    }
    return 0;
}
