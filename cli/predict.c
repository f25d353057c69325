/* cnn predict MODEL IMAGE...: the top-k classes of each image with their
 * probabilities, as text, JSON or CSV. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char help[] =
    "Usage: cnn predict MODEL (IMAGE | DIR)... [options]\n"
    "\n"
    "Prints the most probable classes of each IMAGE with their probabilities.\n"
    "MODEL is a .cnn, Keras .h5 or .keras file (or a description). An IMAGE is a\n"
    "PNG, JPEG, BMP, PGM/PPM, TGA or GIF file or an IDX file of images (all of\n"
    "them, or one with --index); pixel values 0..255 are multiplied by --scale.\n"
    "An image must have the model's size and channels, unless --resize is given.\n"
    "A DIR is walked (sub-folders too, in sorted order) for .bmp .gif .jpeg .jpg\n"
    "and .png files, each resized to the model as with --resize.\n"
    "\n"
    "Options:\n"
    "  --top K              how many classes to show (default 3; all of them if K\n"
    "                       is larger than the number of classes)\n"
    "  --index I            for IDX files: only image I (0-based)\n"
    "  --class-names LIST   names for the classes, comma-separated, or fashion-mnist\n"
    "                       (default: the names saved in the model, if any)\n"
    "  --format F           text (the default), json or csv: stdout then holds only\n"
    "                       the results (every class's probability); messages go to\n"
    "                       stderr\n"
    "  --batch-size B       images per forward pass for IDX files (default 256)\n"
    "  --threads T          worker threads (default 0: all cores)\n"
    "  --max-memory BYTES   the memory budget (default 4G; suffixes K, M, G)\n"
    "  -h, --help           show this help\n"
    "\n"
    "Pixels (these options mean the same in every command):\n"
    CLI_HELP_INPUT
    "\n"
    "An image that cannot be read or does not fit is reported on stderr; the others\n"
    "are still predicted, and the exit status is 1.\n";

static int name_width(const cli_class_names *names)
{
    int w = 0;
    for (int k = 0; k < names->count; k++) {
        int n = (int)strlen(names->names[k]);
        w = n > w ? n : w;
    }
    return w;
}

/* How the results are written, and whether one was written yet. */
typedef struct predict_out {
    cli_format format;
    int top;
    const cli_class_names *names;
    bool first;
    cnn_qmodel *q; /* a quantized model runs instead of m (a stand-in with its input shape) */
} predict_out;

/* order[0..shown) = the classes of out (units values) best first. */
static void rank_top(const float *out, int units, int shown, int *order)
{
    for (int k = 0; k < units; k++)
        order[k] = k;
    for (int r = 0; r < shown; r++)
        /* selection: the best of the rest moves to position r */
        for (int k = r + 1; k < units; k++)
            if (out[order[k]] > out[order[r]]) {
                int t = order[k];
                order[k] = order[r];
                order[r] = t;
            }
}

/* One result as a JSON object: the image, its index in an IDX file (or
 * null), the best class, the top classes and every probability. */
static void json_result(predict_out *o, const char *path, int64_t index, const float *out,
                        int units, const int *order, int shown)
{
    printf("%s\n    {\"image\": ", o->first ? "" : ",");
    o->first = false;
    cli_json_string(stdout, path);
    if (index >= 0)
        printf(", \"index\": %lld", (long long)index);
    else
        printf(", \"index\": null");
    printf(", \"class\": %d, \"name\": ", order[0]);
    cli_json_string(stdout, cli_class_name(o->names, order[0]));
    printf(", \"probability\": ");
    cli_json_number(stdout, out[order[0]]);
    printf(",\n     \"top\": [");
    for (int r = 0; r < shown; r++) {
        printf("%s{\"class\": %d, \"name\": ", r ? ", " : "", order[r]);
        cli_json_string(stdout, cli_class_name(o->names, order[r]));
        printf(", \"probability\": ");
        cli_json_number(stdout, out[order[r]]);
        putchar('}');
    }
    printf("],\n     \"probabilities\": [");
    for (int k = 0; k < units; k++) {
        printf(k ? ", " : "");
        cli_json_number(stdout, out[k]);
    }
    printf("]}");
}

/* One CSV row: image,index,class,name,probability, then every class's. */
static void csv_result(const predict_out *o, const char *path, int64_t index, const float *out,
                       int units, const int *order)
{
    cli_csv_field(stdout, path);
    if (index >= 0)
        printf(",%lld", (long long)index);
    else
        putchar(',');
    printf(",%d,", order[0]);
    cli_csv_field(stdout, cli_class_name(o->names, order[0]));
    printf(",%.9g", (double)out[order[0]]);
    for (int k = 0; k < units; k++)
        printf(",%.9g", (double)out[k]);
    putchar('\n');
}

/* Writes one output row (units values) as o->format asks: as text, the top
 * classes best first under label. */
static bool print_top(predict_out *o, const char *label, const char *path, int64_t index,
                      const float *out, int units)
{
    float two[2];
    if (units == 1) { /* one sigmoid unit: P(class 1) */
        two[0] = 1.0f - out[0];
        two[1] = out[0];
        out = two;
        units = 2;
    }
    int *order = malloc((size_t)units * sizeof *order);
    if (!order)
        return false;
    const cli_class_names *names = o->names;
    int shown = o->top < units ? o->top : units;
    rank_top(out, units, shown, order);
    if (o->format == CLI_FORMAT_JSON) {
        json_result(o, path, index, out, units, order, shown);
        free(order);
        return true;
    }
    if (o->format == CLI_FORMAT_CSV) {
        csv_result(o, path, index, out, units, order);
        free(order);
        return true;
    }
    /* --top larger than the classes shows them all; rank and class numbers
     * get the width of the largest, so "10." lines up under " 9." */
    char digits[16];
    int rank_w = snprintf(digits, sizeof digits, "%d", shown);
    int class_w = snprintf(digits, sizeof digits, "%d", units - 1);
    class_w = class_w < 3 ? 3 : class_w;
    printf("%s\n", label);
    for (int r = 0; r < shown; r++) {
        const char *name = cli_class_name(names, order[r]);
        if (name)
            printf("  %*d. %-*d %-*s %.4f\n", rank_w, r + 1, class_w, order[r],
                   name_width(names), name, (double)out[order[r]]);
        else
            printf("  %*d. %-*d %.4f\n", rank_w, r + 1, class_w, order[r],
                   (double)out[order[r]]);
    }
    free(order);
    return true;
}

static int predict_file(const char *cmd, cnn_model *m, const char *path,
                        const cli_input_options *in, int batch, predict_out *o)
{
    cnn_tensor *x = NULL, *probs = NULL;
    int64_t first;
    int rc = cli_input_load(cmd, m, path, in, &x, &first);
    if (rc)
        return rc;
    if (o->q ? cli_predict_quantized(cmd, o->q, x, &probs) != CLI_OK
             : cnn_model_predict(m, x, batch, &probs) != CNN_OK) {
        cnn_tensor_free(x);
        return o->q ? CLI_FAILURE : cli_fail(cmd);
    }
    int units = o->q ? cnn_qmodel_output_shape(o->q).dims[0] : cnn_model_output_shape(m).dims[0];
    bool many = x->dims[0] > 1 || in->index >= 0;
    for (int64_t i = 0; i < x->dims[0]; i++) {
        char label[4200];
        if (many)
            snprintf(label, sizeof label, "%.4000s[%lld]:", path, (long long)(first + i));
        else
            snprintf(label, sizeof label, "%.4000s:", path);
        if (!print_top(o, label, path, many ? first + i : -1, probs->data + i * units, units)) {
            rc = cli_failf(cmd, "out of memory");
            break;
        }
    }
    cnn_tensor_free(probs);
    cnn_tensor_free(x);
    return rc;
}

int cli_predict(int argc, char **argv)
{
    const char *cmd = "predict";
    cli_input_options in = {.index = -1};
    const char *class_names = NULL, *scale = NULL, *format = NULL;
    int top = 3, batch = 256, threads = 0, index = -1;
    int64_t max_memory = 0;
    const cli_option opts[] = {
        {"top", CLI_OPT_INT, &top, 1, 1 << 30, NULL},
        {"index", CLI_OPT_INT, &index, 0, 2147483647.0, NULL},
        CLI_INPUT_OPTIONS(&in, &scale),
        {"class-names", CLI_OPT_STRING, &class_names, 0, 0, NULL},
        {"format", CLI_OPT_STRING, &format, 0, 0, NULL},
        {"batch-size", CLI_OPT_INT, &batch, 1, 1 << 30, NULL},
        {"threads", CLI_OPT_INT, &threads, 0, 1024, NULL},
        {"max-memory", CLI_OPT_BYTES, &max_memory, 4096, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    const char **pos = calloc((size_t)argc, sizeof *pos);
    if (!pos)
        return cli_failf(cmd, "out of memory");
    int npos, rc = cli_parse(cmd, help, argc - 2, argv + 2, opts, 2, argc, pos, &npos);
    if (rc) {
        free(pos);
        return rc == CLI_HELP_SHOWN ? CLI_OK : rc;
    }
    in.index = index;
    predict_out out = {.top = top, .first = true};
    if ((rc = cli_format_parse(cmd, format, true, &out.format))
        || (rc = cli_input_scale(cmd, scale, &in.scale))) {
        free(pos);
        return rc;
    }
    cli_class_names names = {0};
    cnn_model *m = NULL;
    if (cli_is_quantized(pos[0])) {
        /* the quantized model runs; a layerless float model with its input
         * shape stands in for reading the images */
        if ((rc = cli_qmodel_open(cmd, pos[0], threads, &out.q)))
            goto done;
        if (cnn_model_create(&m, cnn_qmodel_input_shape(out.q))) {
            rc = cli_fail(cmd);
            goto done;
        }
        if ((rc = cli_class_names_resolve(cmd, class_names, m, &names)))
            goto done;
    } else if ((rc = cli_model_open(cmd, pos[0], 0, max_memory, threads, &m))
               || (rc = cli_class_names_resolve(cmd, class_names, m, &names))) {
        goto done;
    }
    out.names = &names;
    if (!out.q)
        cli_warn_untrained(cmd, pos[0]);
    cnn_shape qout = out.q ? cnn_qmodel_output_shape(out.q) : (cnn_shape){0};
    int classes = out.q ? (qout.rank == 1 ? qout.dims[0] : 0) : cli_model_classes(m);
    if (!classes) {
        rc = cli_failf(cmd, "%s: the model's output is not a vector of class scores", pos[0]);
        goto done;
    }
    if (names.count && names.count != classes) {
        rc = cli_usage_error(cmd, "--class-names gives %d names, the model has %d classes",
                             names.count, classes);
        goto done;
    }
    /* with --format json|csv, stdout holds only the results */
    cli_input_describe(&in, out.format == CLI_FORMAT_TEXT ? stdout : stderr);
    if (out.format == CLI_FORMAT_JSON) {
        printf("{\"model\": ");
        cli_json_string(stdout, pos[0]);
        printf(",\n \"class_names\": ");
        if (names.count) {
            putchar('[');
            for (int k = 0; k < names.count; k++) {
                printf(k ? ", " : "");
                cli_json_string(stdout, names.names[k]);
            }
            putchar(']');
        } else {
            printf("null");
        }
        printf(",\n \"predictions\": [");
    } else if (out.format == CLI_FORMAT_CSV) {
        printf("image,index,class,name,probability");
        for (int k = 0; k < classes; k++) {
            const char *name = cli_class_name(&names, k);
            putchar(',');
            if (name) {
                cli_csv_field(stdout, name);
            } else {
                printf("class_%d", k);
            }
        }
        putchar('\n');
    }
    for (int i = 1; i < npos; i++) {
        struct stat st;
        if (stat(pos[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            if (predict_file(cmd, m, pos[i], &in, batch, &out))
                rc = CLI_FAILURE;
            continue;
        }
        /* a directory: every image under it, resized to the model */
        cli_paths files;
        if (cli_image_files(cmd, pos[i], &files)) {
            rc = CLI_FAILURE;
            continue;
        }
        cli_input_options fit = in;
        fit.resize = true;
        for (size_t k = 0; k < files.count; k++)
            if (predict_file(cmd, m, files.paths[k], &fit, batch, &out))
                rc = CLI_FAILURE;
        cli_paths_free(&files);
    }
    if (out.format == CLI_FORMAT_JSON)
        printf("\n ]}\n");
done:
    cnn_model_free(m);
    cnn_qmodel_free(out.q);
    cli_class_names_free(&names);
    free(pos);
    return rc;
}
