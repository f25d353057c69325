/* Data-parallel scaling: one epoch of a model on Fashion-MNIST with the
 * ranks mpirun started, the same global batch whatever their number (each
 * rank batch / ranks examples per step), timed from fit's progress
 * callback (data loading excluded). Also the time spent in the hooks
 * (allreduce, broadcast), measured by wrapping them. Rank 0 prints one
 * line: ranks threads seconds images/s comm_seconds.
 *   mpirun -np N mpi_scaling DATA_DIR MODEL [GLOBAL_BATCH [THREADS [IMAGES]]]
 * bench/mpi_scaling.sh runs it for 1 and 2 ranks and prints the speed-up. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cnn_mpi.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The MPI hooks, timed. */
typedef struct {
    const cnn_parallel *inner;
    double seconds;
} timed;

static cnn_status timed_sum(void *ctx, float *v, int64_t n)
{
    timed *t = ctx;
    double t0 = now();
    cnn_status st = t->inner->allreduce_sum(t->inner->ctx, v, n);
    t->seconds += now() - t0;
    return st;
}

static cnn_status timed_sum_double(void *ctx, double *v, int64_t n)
{
    timed *t = ctx;
    double t0 = now();
    cnn_status st = t->inner->allreduce_sum_double(t->inner->ctx, v, n);
    t->seconds += now() - t0;
    return st;
}

static cnn_status timed_broadcast(void *ctx, float *v, int64_t n)
{
    timed *t = ctx;
    double t0 = now();
    cnn_status st = t->inner->broadcast(t->inner->ctx, v, n);
    t->seconds += now() - t0;
    return st;
}

static bool on_progress(const cnn_progress *p, void *user)
{
    if (p->event == CNN_PROGRESS_EPOCH_END)
        *(double *)user = p->elapsed_seconds;
    return true;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (argc < 3) {
        fprintf(stderr, "usage: mpirun -np N mpi_scaling DATA_DIR MODEL [GLOBAL_BATCH [THREADS"
                        " [IMAGES]]]\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int global = argc > 3 ? atoi(argv[3]) : 64, threads = argc > 4 ? atoi(argv[4]) : 1;
    long images = argc > 5 ? atol(argv[5]) : 0;
    cnn_mpi *mpi = NULL;
    cnn_model *m = NULL;
    cnn_tensor *x = NULL, *y = NULL, *part = NULL, *part_y = NULL;
    cnn_status st = cnn_mpi_create(&mpi, MPI_COMM_WORLD);
    int ranks = cnn_mpi_size(mpi), rank = cnn_mpi_rank(mpi);
    if (global < ranks || global % ranks) {
        fprintf(stderr, "mpi_scaling: GLOBAL_BATCH %d is not a multiple of the %d ranks\n",
                global, ranks);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    if (st == CNN_OK)
        st = cnn_dataset_load_mnist(argv[1], &x, &y, NULL, NULL);
    if (st == CNN_OK && images > 0 && images < x->dims[0]) {
        if ((st = cnn_tensor_slice(x, 0, images, &part)) == CNN_OK
            && (st = cnn_tensor_slice(y, 0, images, &part_y)) == CNN_OK) {
            cnn_tensor_free(x);
            cnn_tensor_free(y);
            x = part;
            y = part_y;
        }
    }
    if (st == CNN_OK)
        st = cnn_model_from_description(argv[2], &m);
    if (st == CNN_OK)
        st = cnn_model_set_threads(m, threads);
    if (st == CNN_OK)
        st = cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam()));
    timed t = {.inner = cnn_mpi_parallel(mpi)};
    cnn_parallel hooks = {.rank = rank, .size = ranks, .allreduce_sum = timed_sum,
                          .allreduce_sum_double = timed_sum_double,
                          .broadcast = timed_broadcast, .ctx = &t};
    double seconds = 0;
    if (st == CNN_OK)
        st = cnn_model_fit(m, x, y,
                           cnn_fit(.epochs = 1, .batch_size = global / ranks, .seed = 1,
                                   .parallel = ranks > 1 ? &hooks : NULL,
                                   .progress = on_progress, .progress_user = &seconds),
                           NULL);
    if (st) {
        fprintf(stderr, "mpi_scaling: rank %d: %s\n", rank, cnn_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    /* the slowest rank's epoch and communication */
    double mine[2] = {seconds, t.seconds}, worst[2];
    MPI_Reduce(mine, worst, 2, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0)
        printf("%d %d %.3f %.1f %.3f\n", ranks, threads, worst[0], (double)x->dims[0] / worst[0],
               worst[1]);
    cnn_model_free(m);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_mpi_free(mpi);
    MPI_Finalize();
    return 0;
}
