/* Data-parallel cnn train over MPI: cnn-mpi links this file in place of
 * cli/parallel.c. `mpirun -np N cnn-mpi train ...` starts N ranks; each
 * reads the same model and data, the start-up check makes sure of it, fit
 * splits every step over the ranks (cnn_mpi.h), and only rank 0 prints and
 * writes files. A rank that fails alone ends the job with MPI_Abort: the
 * others would otherwise wait for it in their next allreduce for ever. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cnn_mpi.h"

struct cli_parallel {
    cnn_mpi *mpi;
    char command[64]; /* "train: rank 1" */
};

static int mpi_fail(const char *cmd, const char *what, int code)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "error %d", code);
    return cli_failf(cmd, "%s: %s", what, text);
}

int cli_parallel_open(const char *cmd, cli_parallel **out)
{
    *out = NULL;
    int provided, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS)
        return mpi_fail(cmd, "MPI_Init_thread", rc);
    cli_parallel *p = calloc(1, sizeof *p);
    if (!p) {
        cli_failf(cmd, "out of memory");
        MPI_Abort(MPI_COMM_WORLD, CLI_FAILURE);
        return CLI_FAILURE;
    }
    if (cnn_mpi_create(&p->mpi, MPI_COMM_WORLD)) {
        cli_fail(cmd);
        MPI_Abort(MPI_COMM_WORLD, CLI_FAILURE);
        return CLI_FAILURE;
    }
    int rank = cnn_mpi_rank(p->mpi);
    snprintf(p->command, sizeof p->command, "%s: rank %d", cmd, rank);
    /* rank 0 speaks for all; the others' stdout is the same text */
    if (rank != 0 && !freopen("/dev/null", "w", stdout)) {
        cli_failf(p->command, "cannot silence stdout");
        MPI_Abort(MPI_COMM_WORLD, CLI_FAILURE);
        return CLI_FAILURE;
    }
    *out = p;
    return CLI_OK;
}

/* How long a failed rank waits for the others to finish too before it
 * ends the job. */
#define FAILURE_GRACE_SECONDS 3

int cli_parallel_close(cli_parallel *p, int rc)
{
    if (!p)
        return rc;
    fflush(stdout);
    fflush(stderr);
    /* Every rank meets here when it is done. A failed rank waits a little:
     * if every rank got there (they all failed alike, or finished), each
     * ends normally with its own status; if not, the others are waiting
     * for this one in a collective that will never come: end them all. */
    MPI_Request done;
    int met = 0;
    if (MPI_Ibarrier(MPI_COMM_WORLD, &done) != MPI_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, rc ? rc : CLI_FAILURE);
    if (rc == CLI_OK) {
        MPI_Wait(&done, MPI_STATUS_IGNORE);
    } else {
        for (int i = 0; i < FAILURE_GRACE_SECONDS * 100 && !met; i++) {
            MPI_Test(&done, &met, MPI_STATUS_IGNORE);
            if (!met)
                nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
        }
        if (!met)
            MPI_Abort(MPI_COMM_WORLD, rc);
    }
    cnn_mpi_free(p->mpi);
    free(p);
    MPI_Finalize();
    return rc;
}

int cli_parallel_rank(const cli_parallel *p) { return p ? cnn_mpi_rank(p->mpi) : 0; }
int cli_parallel_size(const cli_parallel *p) { return p ? cnn_mpi_size(p->mpi) : 1; }

const char *cli_parallel_command(const cli_parallel *p, const char *cmd)
{
    return p && cnn_mpi_rank(p->mpi) != 0 ? p->command : cmd;
}

const cnn_parallel *cli_parallel_hooks(const cli_parallel *p)
{
    return p && cnn_mpi_size(p->mpi) > 1 ? cnn_mpi_parallel(p->mpi) : NULL;
}

int cli_parallel_threads(const cli_parallel *p)
{
    if (!p || cnn_mpi_size(p->mpi) == 1)
        return 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long each = cores / cnn_mpi_local_size(p->mpi);
    return each > 1 ? (int)each : 1;
}

int cli_parallel_check(const char *cmd, cli_parallel *p, cnn_model *m,
                       const cnn_tensor *const *data, const char *const *names, int n)
{
    if (!p || cnn_mpi_size(p->mpi) == 1)
        return CLI_OK;
    /* Each check gives every rank the same verdict. */
    cnn_status st = cnn_mpi_check_model(p->mpi, m);
    for (int i = 0; i < n && st == CNN_OK; i++)
        st = cnn_mpi_check_tensor(p->mpi, data[i], names[i]);
    return st == CNN_OK ? CLI_OK : cli_fail(cmd);
}
