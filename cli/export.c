/* cnn export MODEL --c DIR [--name NAME]: the model as dependency-free C
 * (cnn_model_export_c), and what it takes on a device. */
#include <stdio.h>

#include "cli.h"

static const char help[] =
    "Usage: cnn export MODEL --c DIR [--name NAME] [--int8 [--calibrate IDX] [--count N]]\n"
    "       cnn export QUANTIZED --c DIR [--name NAME]\n"
    "\n"
    "Writes MODEL (a description, a saved .cnn model or a Keras .h5/.keras file)\n"
    "as C99 that needs nothing but a C compiler: DIR/NAME.h, DIR/NAME.c and\n"
    "DIR/NAME_test.c. No malloc, no stdio, no libm; the weights are const arrays\n"
    "and the activations live in one static arena sized by libcnn's memory\n"
    "planner (NAME_ARENA_BYTES in NAME.h), or in the caller's:\n"
    "\n"
    "  int NAME_predict(const float *input, float *output);\n"
    "  int NAME_predict_with_arena(const float *input, float *output, float *arena);\n"
    "\n"
    "NAME_test.c holds test vectors made by libcnn (inputs and the outputs of\n"
    "cnn predict) and exits non-zero when the exported code does not reproduce\n"
    "them within 1e-5 relative:\n"
    "\n"
    "  cc -std=c99 -O2 DIR/NAME.c DIR/NAME_test.c -o NAME_test && ./NAME_test\n"
    "\n"
    "A layer kind or activation the exporter has no kernel for is refused, naming\n"
    "the layer; nothing is written then. docs/DEPLOY.md has the details and the\n"
    "sizes on a Cortex-M4.\n"
    "\n"
    "Options:\n"
    "  --c DIR       the directory to write to (made if missing)\n"
    "  --name NAME   prefix of the files and functions, a C identifier (default\n"
    "                model)\n"
    "  --int8        quantize to int8 first (docs/QUANTIZATION.md): int8 weights,\n"
    "                integer kernels bit-identical to libcnn's, and also\n"
    "                int NAME_predict_int8(const int8_t *input, int8_t *output);\n"
    "                chains and graphs (Add, Concatenate, ZeroPadding2D, global\n"
    "                pooling); the arena is the quantizer's memory plan. A\n"
    "                QUANTIZED file (from cnn quantize) is exported the same\n"
    "                way, its test vectors inputs uniform in [0, 1)\n"
    "  --calibrate IDX  images to calibrate the int8 ranges on (IDX, pixels scaled\n"
    "                to [0, 1]); without it, 64 inputs uniform in [0, 1), which\n"
    "                size the model but do not keep its accuracy\n"
    "  --count N     calibrate on the first N images (default 500)\n"
    "  -h, --help    show this help\n";

/* What was written and what it takes. */
static int report(const char *dir, const char *name, const cnn_export_info *info, bool int8)
{
    char arena[32], weights[32];
    cli_format_bytes(info->arena_bytes, arena, sizeof arena);
    cli_format_bytes(info->weight_bytes, weights, sizeof weights);
    printf("Wrote %s/%s.h, %s/%s.c and %s/%s_test.c (%d test vectors).\n", dir, name, dir, name,
           dir, name, info->test_vectors);
    char upper[64];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof upper; i++)
        upper[i] = name[i] >= 'a' && name[i] <= 'z' ? (char)(name[i] - 'a' + 'A') : name[i];
    upper[i] = '\0';
    printf("Arena: %lld bytes (%s; %s_ARENA_BYTES), weights: %s as %s const data.\n",
           (long long)info->arena_bytes, arena, upper, weights,
           int8 ? "int8 (+ int32 bias and requantization)" : "float32");
    printf("Test: cc -std=c99 -O2 %s/%s.c %s/%s_test.c -o %s_test && ./%s_test\n", dir, name, dir,
           name, name, name);
    return CLI_OK;
}

int cli_export(int argc, char **argv)
{
    const char *cmd = "export";
    const char *dir = NULL, *name = "model", *calibrate = NULL;
    bool int8 = false;
    int count = 500;
    const cli_option opts[] = {
        {"int8", CLI_OPT_FLAG, &int8, 0, 0, NULL},
        {"calibrate", CLI_OPT_STRING, &calibrate, 0, 0, NULL},
        {"count", CLI_OPT_INT, &count, 1, 1 << 30, NULL},
        {"c", CLI_OPT_STRING, &dir, 0, 0, NULL},
        {"name", CLI_OPT_STRING, &name, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    const char *pos[1];
    int npos, rc = cli_parse(cmd, help, argc - 2, argv + 2, opts, 1, 1, pos, &npos);
    if (rc)
        return rc == CLI_HELP_SHOWN ? CLI_OK : rc;
    if (!dir)
        return cli_usage_error(cmd, "--c DIR is required (the directory to write the C files to)");
    if (calibrate && !int8)
        return cli_usage_error(cmd, "--calibrate is for --int8");
    cnn_export_info info;
    if (cli_is_quantized(pos[0])) {
        /* already int8: its calibration is in the file */
        if (int8 || calibrate)
            return cli_usage_error(cmd, "%s is already quantized: --int8 and --calibrate are for "
                                        "float models", pos[0]);
        cnn_qmodel *q = NULL;
        if ((rc = cli_qmodel_open(cmd, pos[0], 0, &q)))
            return rc;
        cnn_status st = cnn_qmodel_export_c(q, dir, name, &info);
        cnn_qmodel_free(q);
        return st ? cli_fail(cmd) : report(dir, name, &info, true);
    }
    cli_warn_untrained(cmd, pos[0]);
    cnn_model *m = NULL;
    if ((rc = cli_model_open(cmd, pos[0], 0, 0, 1, &m)))
        return rc;
    cnn_tensor *calib = NULL;
    if (calibrate && (rc = cli_load_idx_images(cmd, calibrate, 0, &calib))) {
        cnn_model_free(m);
        return rc;
    }
    if (int8 && !calibrate)
        fprintf(stderr, "cnn export: warning: no --calibrate data: the int8 ranges come from "
                        "inputs uniform in [0, 1)\n");
    cnn_status st = int8 ? cnn_model_export_c_int8(m, calib, count, dir, name, &info)
                         : cnn_model_export_c(m, dir, name, &info);
    cnn_tensor_free(calib);
    if (st) {
        cnn_model_free(m);
        return cli_fail(cmd);
    }
    cnn_model_free(m);
    return report(dir, name, &info, int8);
}
