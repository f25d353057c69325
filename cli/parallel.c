/* Data-parallel training in the plain cnn tool: there is none, every
 * process trains alone. cnn-mpi links cli/mpi/parallel.c in this file's
 * place (see the Makefile). */
#include "cli.h"

int cli_parallel_open(const char *cmd, cli_parallel **out)
{
    (void)cmd;
    *out = NULL;
    return CLI_OK;
}

int cli_parallel_close(cli_parallel *p, int rc)
{
    (void)p;
    return rc;
}

int cli_parallel_rank(const cli_parallel *p)
{
    (void)p;
    return 0;
}

int cli_parallel_size(const cli_parallel *p)
{
    (void)p;
    return 1;
}

const char *cli_parallel_command(const cli_parallel *p, const char *cmd)
{
    (void)p;
    return cmd;
}

const cnn_parallel *cli_parallel_hooks(const cli_parallel *p)
{
    (void)p;
    return NULL;
}

int cli_parallel_threads(const cli_parallel *p)
{
    (void)p;
    return 0;
}

int cli_parallel_check(const char *cmd, cli_parallel *p, cnn_model *m,
                       const cnn_tensor *const *data, const char *const *names, int n)
{
    (void)cmd, (void)p, (void)m, (void)data, (void)names, (void)n;
    return CLI_OK;
}
