/* cnn summary MODEL [--batch B]: the Keras table, the memory training and
 * inference need and the FLOPs per image, and whether the model can be
 * built under the memory budget at all. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static const char help[] =
    "Usage: cnn summary MODEL [--batch B] [--max-memory BYTES]\n"
    "\n"
    "Prints the Keras summary table of MODEL (a description, a saved .cnn model or\n"
    "a Keras model file, .h5 or .keras) and whether its weights fit the memory\n"
    "budget. A description's weights are not allocated to do so, so the table of\n"
    "a model too big to build still prints.\n"
    "\n"
    "Options:\n"
    "  --batch B            also show the memory training and inference need for a\n"
    "                       batch of B images (parameters, gradients, optimizer\n"
    "                       state, activations, workspace; totals) and the FLOPs\n"
    "                       per image\n"
    "  --max-memory BYTES   the memory budget (default 4G; suffixes K, M, G)\n"
    "  -h, --help           show this help\n"
    "\n"
    "A model that exceeds the budget is reported, not an error: the exit status\n"
    "is 0 whenever the table was printed.\n";

static void row(const char *name, int64_t training, int64_t inference)
{
    char t[32] = "-", i[32] = "-";
    if (training == INT64_MAX) /* saturated: more than 64 bits hold */
        snprintf(t, sizeof t, "> 2^63 B");
    else if (training >= 0)
        cli_format_bytes(training, t, sizeof t);
    if (inference == INT64_MAX)
        snprintf(i, sizeof i, "> 2^63 B");
    else if (inference >= 0)
        cli_format_bytes(inference, i, sizeof i);
    printf("  %-28s %14s %14s\n", name, t, i);
}

static void print_memory(const cnn_model *m, int batch, const cnn_memory_estimate *e)
{
    /* what is left of a total (a saturated one leaves nothing to show) */
    int64_t train_buffers = e->training_total == INT64_MAX ? -1 : e->training_total - e->parameters - e->gradients - e->optimizer_state
                          - e->activations_training - e->activation_gradients - e->workspace;
    int64_t infer_buffers = e->inference_total == INT64_MAX ? -1 : e->inference_total - e->parameters - e->activations_inference
                          - e->workspace;
    printf("\nMemory for a batch of %d (float32):\n  %-28s %14s %14s\n", batch, "", "training",
           "inference");
    row("parameters", e->parameters, e->parameters);
    row("parameter gradients", e->gradients, -1);
    row("optimizer state", e->optimizer_state, -1);
    row("activations", e->activations_training, e->activations_inference);
    row("activation gradients", e->activation_gradients, -1);
    row("convolution workspace", e->workspace, e->workspace);
    row("batch and output buffers", train_buffers, infer_buffers);
    row("total", e->training_total, e->inference_total);
    char f[32], b[32];
    cli_format_flops(e->flops_per_example, f, sizeof f);
    cli_format_count(e->flops_per_example, b, sizeof b);
    printf("\nFLOPs per image: %s forward (%s; Conv2D and Dense, 2 per\n"
           "multiply-add); training takes about 3x that.\n", f, b);

    int64_t budget = cnn_model_max_memory(m);
    char need[32], allowed[32];
    cli_format_bytes(budget, allowed, sizeof allowed);
    const struct {
        const char *what;
        int64_t bytes;
    } uses[] = {{"Training", e->training_total}, {"Inference", e->inference_total}};
    for (int k = 0; k < 2; k++) {
        cli_format_bytes(uses[k].bytes, need, sizeof need);
        if (uses[k].bytes == INT64_MAX) /* the library's "more than 64 bits hold" */
            printf("%s with a batch of %d needs more than 2^63 bytes, more than the memory"
                   " budget of %s:\nit would fail (lower the batch size).\n", uses[k].what, batch,
                   allowed);
        else if (uses[k].bytes <= budget)
            printf("%s with a batch of %d needs %s: it fits the memory budget of %s.\n",
                   uses[k].what, batch, need, allowed);
        else
            printf("%s with a batch of %d needs %s, more than the memory budget of %s:\n"
                   "it would fail (lower the batch size, or raise --max-memory if the machine"
                   " has the memory).\n", uses[k].what, batch, need, allowed);
    }
}

int cli_summary(int argc, char **argv)
{
    const char *cmd = "summary";
    int batch = 0;
    int64_t max_memory = 0;
    const cli_option opts[] = {
        {"batch", CLI_OPT_INT, &batch, 1, 1 << 30, NULL},
        {"max-memory", CLI_OPT_BYTES, &max_memory, 4096, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    const char *pos[1];
    int npos, rc = cli_parse(cmd, help, argc - 2, argv + 2, opts, 1, 1, pos, &npos);
    if (rc)
        return rc == CLI_HELP_SHOWN ? CLI_OK : rc;
    if (cli_is_quantized(pos[0]))
        return cli_summary_quantized(cmd, pos[0]);

    cnn_model *m = NULL;
    if ((rc = cli_model_open(cmd, pos[0], 0, max_memory, 1, &m)))
        return rc;
    char *table = NULL;
    if (cnn_model_summary(m, &table)) {
        cnn_model_free(m);
        return cli_fail(cmd);
    }
    fputs(table, stdout);
    free(table);

    cnn_memory_estimate e;
    if (cnn_model_estimate_memory(m, batch ? batch : 1, &e)) {
        cnn_model_free(m);
        return cli_fail(cmd);
    }
    char need[32], allowed[32], count[32];
    cli_format_bytes(e.parameters, need, sizeof need);
    cli_format_bytes(cnn_model_max_memory(m), allowed, sizeof allowed);
    cli_format_count(cnn_model_param_count(m), count, sizeof count);
    if (e.parameters > cnn_model_max_memory(m))
        printf("\nThis model cannot be built under the memory budget: its weights alone\n"
               "(%s parameters) would need %s, more than the budget of %s.\n"
               "Raise the budget with --max-memory if the machine has the memory.\n", count,
               need, allowed);
    else
        printf("\nWeights: %s (float32); the memory budget is %s.\n", need, allowed);
    if (batch)
        print_memory(m, batch, &e);
    cnn_model_free(m);
    return CLI_OK;
}
