/* cnn evaluate MODEL --data DIR | --test-images F --test-labels F: loss and
 * accuracy (cnn_model_evaluate), a confusion matrix and per-class accuracy
 * (from cnn_model_predict). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
    "Usage: cnn evaluate MODEL (--data DIR | --test-images FILE --test-labels FILE)\n"
    "                    [options]\n"
    "\n"
    "Evaluates a trained model (a .cnn, Keras .h5 or .keras file) on labelled test\n"
    "images: the loss, the\n"
    "accuracy, a confusion matrix (rows: true class, columns: predicted class) and\n"
    "the accuracy of every class. A model whose output is an image (an\n"
    "autoencoder's) is evaluated against target images given as --test-labels\n"
    "(IDX images, scaled as the inputs): the loss (default mse) and the mean\n"
    "squared error.\n"
    "\n"
    "Options:\n"
    "  --data DIR             the MNIST layout (its t10k-images and t10k-labels\n"
    "                         files are used), or a folder of class folders of\n"
    "                         images (every image is evaluated; see below)\n"
    "  --test-images FILE     IDX images, with\n"
    "  --test-labels FILE     IDX labels (integers 0..classes-1)\n"
    "  --class-names LIST     names for the classes, comma-separated (\"cat,dog\"), or\n"
    "                         fashion-mnist for the ten Fashion-MNIST names\n"
    "                         (default: the names saved in the model, if any)\n"
    "  --format F             text (the default) or json: stdout then holds only the\n"
    "                         results; messages go to stderr\n"
    "  --loss NAME            the loss to report for a model saved without one\n"
    "                         (default sparse_categorical_crossentropy); a saved\n"
    "                         loss is used otherwise\n"
    "  --batch-size B         images per forward pass (default 256)\n"
    "  --threads T            worker threads (default 0: all cores)\n"
    "  --max-memory BYTES     the memory budget (default 4G; suffixes K, M, G)\n"
    "  -h, --help             show this help\n"
    "\n"
    "Pixels (this option means the same in every command):\n"
    CLI_HELP_SCALE
    "\n"
    "A folder of class folders (--data DIR; the classes are the sorted folder names,\n"
    "as in cnn train):\n"
    CLI_HELP_FOLDER;

/* The predicted class of each row of probabilities (n, units). */
static int predicted(const float *p, int units)
{
    if (units == 1)
        return p[0] >= 0.5f;
    int best = 0;
    for (int k = 1; k < units; k++)
        if (p[k] > p[best])
            best = k;
    return best;
}

static void label_cell(const cli_class_names *names, int k, int width, char *buf, size_t cap)
{
    const char *name = cli_class_name(names, k);
    snprintf(buf, cap, "%3d %-*.*s", k, width, width, name ? name : "");
}

static void print_report(const int64_t *confusion, int classes, const cli_class_names *names)
{
    int name_w = 0;
    for (int k = 0; k < classes; k++) {
        const char *n = cli_class_name(names, k);
        int len = n ? (int)strlen(n) : 0;
        name_w = len > name_w ? len : name_w;
    }
    name_w = name_w > 16 ? 16 : name_w;
    int64_t most = 0;
    for (int i = 0; i < classes * classes; i++)
        most = confusion[i] > most ? confusion[i] : most;
    char cell[64];
    int col_w = snprintf(cell, sizeof cell, "%lld", (long long)most);
    int idx_w = snprintf(cell, sizeof cell, "%d", classes - 1);
    col_w = (col_w > idx_w ? col_w : idx_w) + 1;

    printf("\nConfusion matrix (rows: true class, columns: predicted class):\n");
    printf("%*s", 4 + name_w, "");
    for (int k = 0; k < classes; k++)
        printf(" %*d", col_w, k);
    putchar('\n');
    for (int t = 0; t < classes; t++) {
        label_cell(names, t, name_w, cell, sizeof cell);
        fputs(cell, stdout);
        for (int p = 0; p < classes; p++)
            printf(" %*lld", col_w, (long long)confusion[t * classes + p]);
        putchar('\n');
    }
    printf("\nPer-class accuracy:\n");
    for (int t = 0; t < classes; t++) {
        int64_t total = 0;
        for (int p = 0; p < classes; p++)
            total += confusion[t * classes + p];
        label_cell(names, t, name_w, cell, sizeof cell);
        if (total)
            printf("%s  %.4f  (%lld/%lld)\n", cell, (double)confusion[t * classes + t] / total,
                   (long long)confusion[t * classes + t], (long long)total);
        else
            printf("%s  -       (no examples)\n", cell);
    }
}

/* The report as one JSON object: the numbers of the text report, the
 * confusion matrix as rows (true class) of counts (predicted class). */
static void print_json(const char *model, int64_t n, const char *loss_name, double loss,
                       double accuracy, int64_t correct, const int64_t *confusion, int classes,
                       const cli_class_names *names)
{
    printf("{\"model\": ");
    cli_json_string(stdout, model);
    printf(",\n \"images\": %lld, \"loss_function\": ", (long long)n);
    cli_json_string(stdout, loss_name);
    printf(",\n \"loss\": ");
    cli_json_number(stdout, loss);
    printf(", \"accuracy\": ");
    cli_json_number(stdout, accuracy);
    printf(", \"correct\": %lld,\n \"class_names\": ", (long long)correct);
    if (names->count) {
        putchar('[');
        for (int k = 0; k < names->count; k++) {
            printf(k ? ", " : "");
            cli_json_string(stdout, names->names[k]);
        }
        putchar(']');
    } else {
        printf("null");
    }
    printf(",\n \"confusion_matrix\": [");
    for (int t = 0; t < classes; t++) {
        printf(t ? ",\n    [" : "\n    [");
        for (int p = 0; p < classes; p++)
            printf(p ? ", %lld" : "%lld", (long long)confusion[t * classes + p]);
        putchar(']');
    }
    printf("],\n \"per_class\": [");
    for (int t = 0; t < classes; t++) {
        int64_t total = 0;
        for (int p = 0; p < classes; p++)
            total += confusion[t * classes + p];
        printf("%s\n    {\"class\": %d, \"name\": ", t ? "," : "", t);
        cli_json_string(stdout, cli_class_name(names, t));
        printf(", \"accuracy\": ");
        cli_json_number(stdout, total ? (double)confusion[t * classes + t] / (double)total : NAN);
        printf(", \"correct\": %lld, \"total\": %lld}", (long long)confusion[t * classes + t],
               (long long)total);
    }
    printf("]}\n");
}

/* Compiles the model for evaluate when it has no loss, or another is asked. */
/* default_only: loss_name is the default for a model saved without one,
 * not the user's choice. */
static int ensure_loss(const char *cmd, cnn_model *m, const char *loss_name, bool default_only)
{
    cnn_compile_config cfg;
    bool compiled = cnn_model_compile_config(m, &cfg) == CNN_OK;
    cnn_loss want = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    if (loss_name && cnn_loss_from_name(loss_name, &want)) /* checked in cli_evaluate */
        return cli_usage_error(cmd, "--loss: %s", cnn_last_error());
    if (compiled && (!loss_name || default_only || cfg.loss == want))
        return CLI_OK;
    cfg = (cnn_compile_config){.loss = want, .optimizer = compiled ? cfg.optimizer
                                                                   : cnn_adam()};
    return cnn_model_compile(m, cfg) ? cli_fail(cmd) : CLI_OK;
}

static int evaluate(const char *cmd, const char *model, cnn_model *m, const cnn_tensor *x,
                    const cnn_tensor *labels, int batch, const cli_class_names *names,
                    double scale, cli_format format)
{
    int classes = cli_model_classes(m), units = cnn_model_output_shape(m).dims[0];
    cnn_compile_config cfg;
    cnn_tensor *y = NULL, *probs = NULL;
    double loss, accuracy;
    int rc;
    if (cnn_model_compile_config(m, &cfg))
        return cli_fail(cmd);
    if ((rc = cli_targets(cmd, m, cfg.loss, labels, &y)))
        return rc;
    if (cnn_model_evaluate(m, x, y, batch, &loss, &accuracy)
        || cnn_model_predict(m, x, batch, &probs)) {
        cnn_tensor_free(y);
        return cli_fail(cmd);
    }
    int64_t n = x->dims[0], correct = 0;
    int64_t *confusion = calloc((size_t)classes * (size_t)classes, sizeof *confusion);
    if (!confusion)
        rc = cli_failf(cmd, "out of memory");
    for (int64_t i = 0; i < n && !rc; i++) {
        float l = labels->data[i];
        if (!(l >= 0 && l < (float)classes) || l != (float)(int)l) {
            rc = cli_failf(cmd, "label %lld is %g, expected an integer in [0, %d)", (long long)i,
                           (double)l, classes);
            break;
        }
        int t = (int)l, p = predicted(probs->data + i * units, units);
        confusion[t * classes + p]++;
        correct += t == p;
    }
    if (!rc && format == CLI_FORMAT_JSON) {
        print_json(model, n, cnn_loss_name(cfg.loss), loss, accuracy, correct, confusion,
                   classes, names);
    } else if (!rc) {
        char sc[32];
        cli_format_scale(scale, sc, sizeof sc);
        printf("Evaluated %lld images (loss %s; pixels 0..255 x %s)\n", (long long)n,
               cnn_loss_name(cfg.loss), sc);
        if (cfg.loss == CNN_LOSS_BINARY_CROSSENTROPY && units > 1)
            /* Keras's binary_accuracy: each output right or wrong on its own,
             * not one class per image (which the k/n below would count) */
            printf("loss: %.4f\naccuracy: %.4f (binary accuracy over the %d outputs; the top"
                   " class is right for %lld/%lld)\n", loss, accuracy, units, (long long)correct,
                   (long long)n);
        else
            printf("loss: %.4f\naccuracy: %.4f (%lld/%lld correct)\n", loss, accuracy,
                   (long long)correct, (long long)n);
        print_report(confusion, classes, names);
    }
    free(confusion);
    cnn_tensor_free(probs);
    cnn_tensor_free(y);
    return rc;
}

/* A model whose output is an image (an autoencoder's), against target
 * images: its loss and the mean squared error over every value. */
static int evaluate_images(const char *cmd, const char *model, cnn_model *m, const cnn_tensor *x,
                           const cnn_tensor *targets, int batch, double scale, cli_format format)
{
    cnn_compile_config cfg;
    cnn_tensor *y = NULL, *out = NULL;
    double loss, accuracy;
    int rc;
    if (cnn_model_compile_config(m, &cfg))
        return cli_fail(cmd);
    if (targets->rank == 1)
        return cli_failf(cmd, "%s: the model's output is an image: --test-labels must be target"
                         " images (IDX of rank 3 or 4), not labels", model);
    if ((rc = cli_targets(cmd, m, cfg.loss, targets, &y)))
        return rc;
    if (cnn_model_evaluate(m, x, y, batch, &loss, &accuracy)
        || cnn_model_predict(m, x, batch, &out)) {
        cnn_tensor_free(y);
        return cli_fail(cmd);
    }
    int64_t count = cnn_tensor_size(out);
    double sq = 0;
    for (int64_t i = 0; i < count; i++) {
        double d = (double)out->data[i] - y->data[i];
        sq += d * d;
    }
    double mse = sq / (double)count;
    int64_t n = x->dims[0];
    if (format == CLI_FORMAT_JSON) {
        printf("{\"model\": ");
        cli_json_string(stdout, model);
        printf(",\n \"images\": %lld, \"loss_function\": ", (long long)n);
        cli_json_string(stdout, cnn_loss_name(cfg.loss));
        printf(",\n \"loss\": ");
        cli_json_number(stdout, loss);
        printf(", \"mse\": ");
        cli_json_number(stdout, mse);
        printf("}\n");
    } else {
        char sc[32];
        cli_format_scale(scale, sc, sizeof sc);
        printf("Evaluated %lld images against target images (loss %s; pixels 0..255 x %s)\n",
               (long long)n, cnn_loss_name(cfg.loss), sc);
        printf("loss: %.4f\nmean squared error: %.6f\n", loss, mse);
    }
    cnn_tensor_free(out);
    cnn_tensor_free(y);
    return CLI_OK;
}

int cli_evaluate(int argc, char **argv)
{
    const char *cmd = "evaluate";
    cli_data data = {0};
    const char *class_names = NULL, *loss = NULL, *scale = NULL, *format = NULL;
    cli_format fmt;
    int batch = 256, threads = 0;
    int64_t max_memory = 0;
    cli_folder_options folder = {0};
    const cli_option opts[] = {
        CLI_FOLDER_OPTIONS(&folder),
        {"data", CLI_OPT_STRING, &data.dir, 0, 0, NULL},
        {"test-images", CLI_OPT_STRING, &data.test_images, 0, 0, NULL},
        {"test-labels", CLI_OPT_STRING, &data.test_labels, 0, 0, NULL},
        {"class-names", CLI_OPT_STRING, &class_names, 0, 0, NULL},
        {"format", CLI_OPT_STRING, &format, 0, 0, NULL},
        {"loss", CLI_OPT_STRING, &loss, 0, 0, NULL},
        CLI_SCALE_OPTION(&scale),
        {"batch-size", CLI_OPT_INT, &batch, 1, 1 << 30, NULL},
        {"threads", CLI_OPT_INT, &threads, 0, 1024, NULL},
        {"max-memory", CLI_OPT_BYTES, &max_memory, 4096, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    const char *pos[1];
    int npos, rc = cli_parse(cmd, help, argc - 2, argv + 2, opts, 1, 1, pos, &npos);
    if (rc)
        return rc == CLI_HELP_SHOWN ? CLI_OK : rc;
    if ((rc = cli_data_check(cmd, &data, false, true))
        || (rc = cli_format_parse(cmd, format, false, &fmt))
        || (rc = cli_input_scale(cmd, scale, &data.scale)))
        return rc;
    if (cli_is_quantized(pos[0]))
        return cli_evaluate_quantized(cmd, pos[0], &data, threads, fmt);
    cnn_loss loss_kind;
    if (loss && cnn_loss_from_name(loss, &loss_kind))
        return cli_usage_error(cmd, "--loss: %s", cnn_last_error());
    cli_class_names names = {0};
    cnn_model *m = NULL;
    cnn_tensor *x = NULL, *labels = NULL;
    if ((rc = cli_model_open(cmd, pos[0], 0, max_memory, threads, &m))
        || (rc = cli_class_names_resolve(cmd, class_names, m, &names)))
        goto done;
    cli_warn_untrained(cmd, pos[0]);
    int classes = cli_model_classes(m);
    if (!classes && cnn_model_output_shape(m).rank == 3) { /* an autoencoder's image output */
        if ((rc = ensure_loss(cmd, m, loss ? loss : "mse", !loss))
            || (rc = cli_data_load(cmd, &data, NULL, NULL, &x, &labels)))
            goto done;
        rc = evaluate_images(cmd, pos[0], m, x, labels, batch, data.scale, fmt);
        goto done;
    }
    if (!classes) {
        char shape[48];
        cli_format_shape(cnn_model_output_shape(m), shape, sizeof shape);
        rc = cli_failf(cmd, "%s: the model's output %s is not a vector of class scores;"
                       " evaluate needs a classifier (end the model with Flatten and Dense)",
                       pos[0], shape);
        goto done;
    }
    if (names.count && names.count != classes) {
        rc = cli_usage_error(cmd, "--class-names gives %d names, the model has %d classes",
                             names.count, classes);
        goto done;
    }
    if ((rc = ensure_loss(cmd, m, loss, false)))
        goto done;
    if (cli_data_is_folder(data.dir)) {
        /* a folder: its classes must be the model's; the images are read
         * into memory (within --max-memory) for the confusion matrix */
        cnn_dataset *ds = NULL;
        cnn_compile_config cc;
        cnn_model_compile_config(m, &cc);
        if ((rc = cli_dataset_open(cmd, data.dir, m, cc.loss, &folder, data.scale, 0,
                                   CNN_SUBSET_ALL, 0,
                                   fmt == CLI_FORMAT_TEXT ? stdout : stderr, &ds))
            || (rc = cli_dataset_classes(cmd, ds, m))
            || (!names.count && (rc = cli_class_names_resolve(cmd, NULL, m, &names)))
            || (rc = cli_dataset_tensors(cmd, ds, folder.skip_bad_images, &x, &labels))) {
            cnn_dataset_free(ds);
            goto done;
        }
        cnn_dataset_free(ds);
    } else if ((rc = cli_data_load(cmd, &data, NULL, NULL, &x, &labels))) {
        goto done;
    }
    rc = evaluate(cmd, pos[0], m, x, labels, batch, &names, data.scale, fmt);
done:
    cnn_tensor_free(x);
    cnn_tensor_free(labels);
    cnn_model_free(m);
    cli_class_names_free(&names);
    return rc;
}
