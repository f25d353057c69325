/* cnn quantize MODEL --calibrate DATA --out FILE: post-training int8
 * quantization (cnn_qmodel_create); and what evaluate, predict and summary
 * do with the quantized file it writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char help[] =
    "Usage: cnn quantize MODEL --calibrate DATA --out FILE [options]\n"
    "\n"
    "Quantizes a trained model (a .cnn, Keras .h5 or .keras file) to int8, TensorFlow\n"
    "Lite's scheme (docs/QUANTIZATION.md): weights per output channel, activations per\n"
    "tensor, ranges calibrated by running the float model over images from DATA.\n"
    "The quantized file runs with cnn evaluate, cnn predict and cnn summary.\n"
    "A layer int8 cannot run is refused by name.\n"
    "\n"
    "DATA is one of:\n"
    "  a directory in the MNIST layout (its train-images file is used),\n"
    "  a folder of class folders of images (resized to the model, shuffled),\n"
    "  an IDX file of images.\n"
    "\n"
    "Options:\n"
    "  --calibrate DATA             the calibration images (required)\n"
    "  --out FILE                   the quantized model to write (required; atomic)\n"
    "  --calibration-images N       how many images (default 500; fewer if DATA has\n"
    "                               fewer)\n"
    "  --calibration-method M       how each tensor's range is taken from the values\n"
    "                               it took (docs/QUANTIZATION.md 2a): minmax (default,\n"
    "                               TFLite's), percentile[:P] (clip the tails beyond\n"
    "                               the P-th percentile, default 99.99) or mse (least\n"
    "                               squared error, as PyTorch's HistogramObserver)\n"
    "  --threads T                  worker threads (default 0: all cores)\n"
    "  -h, --help                   show this help\n"
    "\n"
    "Pixels (this option means the same in every command):\n"
    CLI_HELP_SCALE;

bool cli_is_quantized(const char *path)
{
    cnn_model_format f;
    return cnn_model_file_format(path, &f) == CNN_OK && f == CNN_MODEL_FORMAT_QUANTIZED;
}

int cli_qmodel_open(const char *cmd, const char *path, int threads, cnn_qmodel **out)
{
    if (cnn_qmodel_load(path, out))
        return cli_fail(cmd);
    if (threads > 0 && cnn_qmodel_set_threads(*out, threads)) {
        cnn_qmodel_free(*out);
        *out = NULL;
        return cli_fail(cmd);
    }
    return CLI_OK;
}

/* A folder of class folders as a data set shaped like the model's input. */
static int open_folder(const char *cmd, const char *dir, cnn_shape in, double scale,
                       cnn_dataset **out)
{
    if (in.rank != 3 || (in.dims[2] != 1 && in.dims[2] != 3 && in.dims[2] != 4))
        return cli_failf(cmd, "%s: a folder of images needs a model whose input is an image "
                         "of 1, 3 or 4 channels", dir);
    cnn_dataset_config cfg = {
        .image_size = {in.dims[0], in.dims[1]},
        .color_mode = in.dims[2] == 1 ? CNN_COLOR_GRAYSCALE
                      : in.dims[2] == 4 ? CNN_COLOR_RGBA : CNN_COLOR_RGB,
        .scale = (float)scale,
        .seed = 1,
    };
    return cnn_dataset_from_directory(dir, cfg, out) ? cli_fail(cmd) : CLI_OK;
}

/* "minmax", "mse", "percentile" or "percentile:P". */
static int parse_method(const char *cmd, const char *text, cnn_qcalib_options *how)
{
    *how = (cnn_qcalib_options){CNN_QCALIB_MINMAX, 0};
    if (!text || !strcmp(text, "minmax"))
        return CLI_OK;
    if (!strcmp(text, "mse")) {
        how->method = CNN_QCALIB_MSE;
        return CLI_OK;
    }
    if (!strncmp(text, "percentile", 10) && (text[10] == 0 || text[10] == ':')) {
        how->method = CNN_QCALIB_PERCENTILE;
        if (!text[10])
            return CLI_OK;
        char *end;
        how->percentile = strtod(text + 11, &end);
        if (end != text + 11 && !*end && how->percentile >= 50 && how->percentile <= 100)
            return CLI_OK;
    }
    return cli_usage_error(cmd, "--calibration-method: expected minmax, percentile, "
                           "percentile:P (P in 50..100) or mse");
}

static int quantize(const char *cmd, cnn_model *m, const char *data, int64_t count, double scale,
                    const cnn_qcalib_options *how, cnn_qmodel **q)
{
    struct stat st;
    if (stat(data, &st) != 0)
        return cli_failf(cmd, "--calibrate %s: no such file or directory", data);
    if (S_ISDIR(st.st_mode) && cli_data_is_folder(data)) {
        cnn_dataset *ds = NULL;
        int rc = open_folder(cmd, data, cnn_model_input_shape(m), scale, &ds);
        if (rc)
            return rc;
        rc = cnn_qmodel_create_dataset_calibrated(q, m, ds, count, how) ? cli_fail(cmd) : CLI_OK;
        cnn_dataset_free(ds);
        return rc;
    }
    cnn_tensor *x = NULL;
    int rc;
    if (S_ISDIR(st.st_mode)) {
        cli_data d = {.dir = data, .scale = scale};
        cnn_tensor *y = NULL;
        rc = cli_data_load(cmd, &d, &x, &y, NULL, NULL);
        cnn_tensor_free(y);
    } else {
        rc = cli_load_idx_images(cmd, data, scale, &x);
    }
    if (rc)
        return rc;
    rc = cnn_qmodel_create_calibrated(q, m, x, count, how) ? cli_fail(cmd) : CLI_OK;
    cnn_tensor_free(x);
    return rc;
}

int cli_quantize(int argc, char **argv)
{
    const char *cmd = "quantize";
    const char *data = NULL, *out = NULL, *scale_text = NULL, *method = NULL;
    int threads = 0, count = CNN_QUANTIZE_DEFAULT_EXAMPLES;
    const cli_option opts[] = {
        {"calibrate", CLI_OPT_STRING, &data, 0, 0, NULL},
        {"out", CLI_OPT_STRING, &out, 0, 0, NULL},
        {"calibration-images", CLI_OPT_INT, &count, 1, 1 << 30, NULL},
        {"calibration-method", CLI_OPT_STRING, &method, 0, 0, NULL},
        {"threads", CLI_OPT_INT, &threads, 0, 1024, NULL},
        CLI_SCALE_OPTION(&scale_text),
        {NULL, 0, NULL, 0, 0, NULL},
    };
    const char *pos[1];
    int npos, rc = cli_parse(cmd, help, argc - 2, argv + 2, opts, 1, 1, pos, &npos);
    if (rc)
        return rc == CLI_HELP_SHOWN ? CLI_OK : rc;
    if (!data)
        return cli_usage_error(cmd, "--calibrate DATA is required");
    if (!out)
        return cli_usage_error(cmd, "--out FILE is required");
    double scale;
    if ((rc = cli_input_scale(cmd, scale_text, &scale)))
        return rc;
    cnn_qcalib_options how;
    if ((rc = parse_method(cmd, method, &how)))
        return rc;
    if (cli_is_quantized(pos[0]))
        return cli_failf(cmd, "%s: already an int8 quantized model", pos[0]);
    cnn_model *m = NULL;
    cnn_qmodel *q = NULL;
    if ((rc = cli_model_open(cmd, pos[0], 0, 0, threads, &m)))
        return rc;
    cli_warn_untrained(cmd, pos[0]);
    if (!(rc = quantize(cmd, m, data, count, scale, &how, &q))) {
        if (cnn_qmodel_save(q, out)) {
            rc = cli_fail(cmd);
        } else {
            char fb[32], qb[32], ab[32];
            cli_format_bytes(cnn_model_param_count(m) * 4, fb, sizeof fb);
            cli_format_bytes(cnn_qmodel_weight_bytes(q), qb, sizeof qb);
            cli_format_bytes(cnn_qmodel_arena_bytes(q), ab, sizeof ab);
            printf("Quantized %s to int8 (%d ops), calibrated (%s) on up to %d images of %s\n",
                   pos[0], cnn_qmodel_op_count(q), method ? method : "minmax", count, data);
            printf("Weights: %s int8 (float32: %s); activations: %s per image\n", qb, fb, ab);
            printf("Saved %s\n", out);
        }
    }
    cnn_qmodel_free(q);
    cnn_model_free(m);
    return rc;
}

/* ---- evaluate, predict and summary of a quantized file ------------------ */

int cli_evaluate_quantized(const char *cmd, const char *path, const cli_data *data,
                           int threads, cli_format format)
{
    cnn_qmodel *q = NULL;
    int rc = cli_qmodel_open(cmd, path, threads, &q);
    if (rc)
        return rc;
    double loss = 0, accuracy = 0;
    int64_t n = 0;
    if (data->dir && cli_data_is_folder(data->dir)) {
        cnn_dataset *ds = NULL;
        if (!(rc = open_folder(cmd, data->dir, cnn_qmodel_input_shape(q), data->scale, &ds))) {
            n = cnn_dataset_count(ds);
            if (cnn_qmodel_evaluate_dataset(q, ds, &loss, &accuracy))
                rc = cli_fail(cmd);
        }
        cnn_dataset_free(ds);
    } else {
        cnn_tensor *x = NULL, *y = NULL;
        if (!(rc = cli_data_load(cmd, data, NULL, NULL, &x, &y))) {
            n = x->dims[0];
            if (cnn_qmodel_evaluate(q, x, y, &loss, &accuracy))
                rc = cli_fail(cmd);
        }
        cnn_tensor_free(x);
        cnn_tensor_free(y);
    }
    if (!rc && format == CLI_FORMAT_JSON) {
        printf("{\"model\": ");
        cli_json_string(stdout, path);
        printf(",\n \"quantized\": true, \"images\": %lld, \"loss_function\": "
               "\"categorical_crossentropy\",\n \"loss\": ",
               (long long)n);
        cli_json_number(stdout, loss);
        printf(", \"accuracy\": ");
        cli_json_number(stdout, accuracy);
        printf("}\n");
    } else if (!rc) {
        char sc[32];
        cli_format_scale(data->scale, sc, sizeof sc);
        printf("Evaluated %lld images with the int8 model (pixels 0..255 x %s)\n", (long long)n,
               sc);
        printf("loss: %.4f\naccuracy: %.4f (%lld/%lld correct)\n", loss, accuracy,
               (long long)(accuracy * (double)n + 0.5), (long long)n);
    }
    cnn_qmodel_free(q);
    return rc;
}

int cli_summary_quantized(const char *cmd, const char *path)
{
    cnn_qmodel *q = NULL;
    int rc = cli_qmodel_open(cmd, path, 1, &q);
    if (rc)
        return rc;
    char in[64], out[64];
    cli_format_shape(cnn_qmodel_input_shape(q), in, sizeof in);
    cli_format_shape(cnn_qmodel_output_shape(q), out, sizeof out);
    printf("Quantized model (int8): %s\n", path);
    printf("Input %s -> output %s\n", in, out);
    printf("%-4s %-32s %s\n", "Op", "Layer", "Kind");
    for (int k = 0; k < cnn_qmodel_op_count(q); k++)
        printf("%-4d %-32s %s\n", k, cnn_qmodel_op_name(q, k), cnn_qmodel_op_type(q, k));
    char wb[32], fb[32], ab[32];
    cli_format_bytes(cnn_qmodel_weight_bytes(q), wb, sizeof wb);
    cli_format_bytes(cnn_qmodel_float_params(q) * 4, fb, sizeof fb);
    cli_format_bytes(cnn_qmodel_arena_bytes(q), ab, sizeof ab);
    printf("Weights: %s (int8 weights, int32 biases and multipliers); the float32 model's: "
           "%s\n", wb, fb);
    printf("Activations: %s per image (int8, the planned arena)\n", ab);
    cnn_qmodel_free(q);
    return CLI_OK;
}

int cli_predict_quantized(const char *cmd, cnn_qmodel *q, const cnn_tensor *x, cnn_tensor **out)
{
    cnn_shape os = cnn_qmodel_output_shape(q);
    int64_t dims[CNN_MAX_RANK] = {x->dims[0]};
    for (int d = 0; d < os.rank; d++)
        dims[d + 1] = os.dims[d];
    if (cnn_tensor_create(out, os.rank + 1, dims))
        return cli_fail(cmd);
    if (cnn_qmodel_predict(q, x, (*out)->data)) {
        cnn_tensor_free(*out);
        *out = NULL;
        return cli_fail(cmd);
    }
    return CLI_OK;
}
