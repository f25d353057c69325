/* Data-parallel cnn train over MPI: cnn-mpi links this file in place of
 * cli/parallel.c. `mpirun -np N cnn-mpi train ...` starts N ranks; each
 * reads the same model and data, the start-up check makes sure of it, fit
 * splits every step over the ranks (cnn_mpi.h), and only rank 0 prints and
 * writes files. A rank that fails alone ends the job with MPI_Abort: the
 * others would otherwise wait for it in their next allreduce for ever. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "cnn_mpi.h"

struct cli_parallel {
    cnn_mpi *mpi;
    bool failed_alike; /* every rank failed the same check: no abort needed */
    char command[64];  /* "train: rank 1" */
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

int cli_parallel_close(cli_parallel *p, int rc)
{
    if (!p)
        return rc;
    fflush(stdout);
    fflush(stderr);
    if (rc != CLI_OK && !p->failed_alike)
        MPI_Abort(MPI_COMM_WORLD, rc);
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
    if (st == CNN_OK)
        return CLI_OK;
    p->failed_alike = st == CNN_ERR_STATE;
    return cli_fail(cmd);
}
