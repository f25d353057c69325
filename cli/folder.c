/* Folders of images for train, evaluate and predict: --data DIR holding
 * one folder per class (cnn_dataset_from_directory), its options, the
 * scan's progress line and summary. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

bool cli_data_is_folder(const char *dir)
{
    static const char *const mnist[] = {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
                                        "t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"};
    struct stat s;
    if (!dir || stat(dir, &s) != 0)
        return false;
    size_t n = strlen(dir);
    if (S_ISREG(s.st_mode))
        return n >= 4 && strcasecmp(dir + n - 4, ".csv") == 0; /* a list of files */
    if (!S_ISDIR(s.st_mode))
        return false;
    for (size_t i = 0; i < sizeof mnist / sizeof *mnist; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%.4000s/%s", dir, mnist[i]);
        if (access(path, F_OK) == 0)
            return false;
    }
    return true;
}

static int parse_size(const char *cmd, const char *text, int *rows, int *cols)
{
    char *end;
    long r = strtol(text, &end, 10), c = -1;
    if (*end == ',' || *end == 'x')
        c = strtol(end + 1, &end, 10);
    if (*end || r < 1 || c < 1 || r > 65536 || c > 65536)
        return cli_usage_error(cmd, "--image-size: expected ROWS,COLS (e.g. 96,96), each in"
                               " [1, 65536], got '%s'", text);
    *rows = (int)r;
    *cols = (int)c;
    return CLI_OK;
}

static void on_scan(int64_t files, void *user)
{
    const char *dir = user;
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "\rScanning %s: %lld files", dir, (long long)files);
}

int cli_dataset_open(const char *cmd, const char *dir, const cnn_model *m, cnn_loss loss,
                     const cli_folder_options *f, double scale, float validation_split,
                     cnn_subset subset, uint32_t seed, FILE *info, cnn_dataset **out)
{
    *out = NULL;
    cnn_shape in = cnn_model_input_shape(m);
    if (in.rank != 3)
        return cli_failf(cmd, "--data %s: a folder of images needs a model whose input is an"
                         " image (rows, cols, channels)", dir);
    cnn_dataset_config c = {.image_size = {in.dims[0], in.dims[1]}, .seed = seed,
                            .validation_split = validation_split, .subset = subset,
                            .scale = (float)scale, .skip_bad_images = f->skip_bad_images,
                            .workers = f->workers, .cache_bytes = f->cache,
                            .scan_progress = on_scan, .scan_user = (void *)dir};
    /* --max-memory bounds each decode too (cli_dataset_tensors decodes
     * outside fit and evaluate, where only the data set's budget applies) */
    const int64_t budget = cnn_model_max_memory(m);
    if (budget >= 4096 && budget < CNN_DEFAULT_MAX_DECODE_BYTES)
        c.max_decode_bytes = budget;
    int rc;
    if (f->image_size && (rc = parse_size(cmd, f->image_size, &c.image_size[0], &c.image_size[1])))
        return rc;
    if (f->random_crop) {
        /* Keras's RandomCrop: the model's input size out of --image-size */
        if (c.image_size[0] < in.dims[0] || c.image_size[1] < in.dims[1])
            return cli_usage_error(cmd, "--random-crop: --image-size %dx%d is smaller than the"
                                   " model's input %dx%d, the window it takes",
                                   c.image_size[0], c.image_size[1], in.dims[0], in.dims[1]);
        c.random_crop[0] = in.dims[0];
        c.random_crop[1] = in.dims[1];
    } else if (c.image_size[0] != in.dims[0] || c.image_size[1] != in.dims[1]) {
        return cli_usage_error(cmd, "--image-size %dx%d: the model's input is %dx%d (a model"
                               " takes one size; resize to it, or give --random-crop to take"
                               " windows of it)", c.image_size[0], c.image_size[1], in.dims[0],
                               in.dims[1]);
    }
    int channels = in.dims[2];
    if (f->color_mode) {
        channels = !strcmp(f->color_mode, "grayscale") ? 1 : !strcmp(f->color_mode, "rgb") ? 3
                   : !strcmp(f->color_mode, "rgba")    ? 4 : 0;
        if (!channels)
            return cli_usage_error(cmd, "--color-mode: expected grayscale, rgb or rgba, got"
                                   " '%s'", f->color_mode);
        if (channels != in.dims[2])
            return cli_usage_error(cmd, "--color-mode %s gives %d channel%s, the model's input"
                                   " has %d", f->color_mode, channels, channels == 1 ? "" : "s",
                                   in.dims[2]);
    }
    if (channels != 1 && channels != 3 && channels != 4)
        return cli_failf(cmd, "the model's input has %d channels; images give 1 (grayscale), 3"
                         " (rgb) or 4 (rgba)", channels);
    c.color_mode = channels == 1 ? CNN_COLOR_GRAYSCALE : channels == 4 ? CNN_COLOR_RGBA
                                                                       : CNN_COLOR_RGB;
    /* labels as cli_targets makes them: indices for the sparse loss or a
     * one-unit output, one-hot otherwise */
    cnn_shape os = cnn_model_output_shape(m);
    c.label_mode = loss == CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY
                           || (os.rank == 1 && os.dims[0] == 1)
                       ? CNN_LABEL_INT
                       : CNN_LABEL_CATEGORICAL;
    struct stat s;
    cnn_status st = stat(dir, &s) == 0 && S_ISREG(s.st_mode) ? cnn_dataset_from_list(dir, c, out)
                                                               : cnn_dataset_from_directory(dir, c, out);
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "\r\033[K");
    if (st)
        return cli_fail(cmd);
    int64_t total = 0;
    for (int k = 0; k < cnn_dataset_class_count(*out); k++)
        total += cnn_dataset_class_files(*out, k);
    fprintf(info, "%s: %lld files in %d classes", dir, (long long)total, cnn_dataset_class_count(*out));
    if (subset)
        fprintf(info, ", the %s subset (validation split %g by files)",
               subset == CNN_SUBSET_TRAINING ? "training" : "validation", (double)validation_split);
    fprintf(info, ":");
    for (int k = 0; k < cnn_dataset_class_count(*out); k++)
        fprintf(info, "%s %s %lld", k ? "," : "", cnn_dataset_class_name(*out, k),
               (long long)cnn_dataset_class_files(*out, k));
    fputc('\n', info);
    return CLI_OK;
}

int cli_dataset_classes(const char *cmd, const cnn_dataset *ds, cnn_model *m)
{
    const int n = cnn_dataset_class_count(ds), classes = cli_model_classes(m);
    if (n != classes && !(classes == 2 && n == 2))
        return cli_failf(cmd, "the data have %d classes (class folders), the model's output has"
                         " %d; give the last Dense layer %d units", n, classes, n);
    const char *const *have;
    int n_have = cnn_model_class_names(m, &have);
    if (n_have) {
        for (int k = 0; k < n_have && k < n; k++)
            if (strcmp(have[k], cnn_dataset_class_name(ds, k)) != 0)
                return cli_failf(cmd, "class %d is '%s' in the model but '%s' in the data (the"
                                 " sorted folder names)", k, have[k],
                                 cnn_dataset_class_name(ds, k));
        return CLI_OK;
    }
    const char **names = calloc((size_t)n, sizeof *names);
    if (!names)
        return cli_failf(cmd, "out of memory");
    for (int k = 0; k < n; k++)
        names[k] = cnn_dataset_class_name(ds, k);
    int rc = cnn_model_set_class_names(m, names, n) ? cli_fail(cmd) : CLI_OK;
    free(names);
    return rc;
}

void cli_dataset_report_skipped(const cnn_dataset *ds)
{
    int64_t n = cnn_dataset_skipped(ds);
    if (!n)
        return;
    printf("Skipped %lld bad image%s (--skip-bad-images):\n", (long long)n, n == 1 ? "" : "s");
    for (int64_t i = 0; i < n; i++)
        printf("  %s\n", cnn_dataset_skipped_file(ds, i));
}

int cli_dataset_tensors(const char *cmd, cnn_dataset *ds, bool skip_bad, cnn_tensor **x,
                        cnn_tensor **labels)
{
    *x = *labels = NULL;
    const cnn_shape s = cnn_dataset_element_shape(ds);
    const int64_t n = cnn_dataset_count(ds), row = (int64_t)s.dims[0] * s.dims[1] * s.dims[2];
    const int64_t dims[4] = {n, s.dims[0], s.dims[1], s.dims[2]}, ldims[1] = {n};
    if (cnn_tensor_create(x, 4, dims) || cnn_tensor_create(labels, 1, ldims)) {
        cnn_tensor_free(*x);
        *x = NULL;
        return cli_fail(cmd);
    }
    float *y = malloc((size_t)cnn_dataset_target_size(ds) * sizeof *y);
    int64_t kept = 0, skipped = 0;
    int rc = y ? CLI_OK : cli_failf(cmd, "out of memory");
    for (int64_t i = 0; i < n && !rc; i++) {
        if (cnn_dataset_read(ds, i, 1, (*x)->data + kept * row, y) == CNN_OK) {
            (*labels)->data[kept++] = (float)cnn_dataset_label(ds, i);
        } else if (skip_bad) {
            fprintf(stderr, "cnn %s: skipped: %s\n", cmd, cnn_last_error());
            skipped++;
        } else {
            rc = cli_fail(cmd); /* the error names the file */
        }
    }
    free(y);
    (*x)->dims[0] = (*labels)->dims[0] = kept;
    if (!rc && skipped)
        fprintf(stderr, "cnn %s: skipped %lld bad image%s (--skip-bad-images)\n", cmd,
                (long long)skipped, skipped == 1 ? "" : "s");
    if (!rc && kept == 0)
        rc = cli_failf(cmd, "no image of the data could be read");
    if (rc) {
        cnn_tensor_free(*x);
        cnn_tensor_free(*labels);
        *x = *labels = NULL;
    }
    return rc;
}

/* ---- predict DIR: every image file under a directory ---------------------- */

static bool image_name(const char *name)
{
    static const char *const ext[] = {".bmp", ".gif", ".jpeg", ".jpg", ".png"};
    size_t n = strlen(name);
    for (size_t k = 0; k < sizeof ext / sizeof *ext; k++) {
        size_t e = strlen(ext[k]);
        if (n >= e && strcasecmp(name + n - e, ext[k]) == 0)
            return true;
    }
    return false;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk(const char *cmd, const char *dir, int depth, cli_paths *out)
{
    if (depth > 64)
        return CLI_OK; /* deeper than any real photo collection: a loop */
    DIR *d = opendir(dir);
    if (!d)
        return cli_failf(cmd, "%s: cannot open the directory: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = CLI_OK;
    for (struct dirent *e; !rc && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue; /* ., .., and hidden files such as .DS_Store */
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) {
                rc = cli_failf(cmd, "out of memory");
                break;
            }
            names = grown;
        }
        if (!(names[n++] = strdup(e->d_name)))
            rc = cli_failf(cmd, "out of memory");
    }
    closedir(d);
    if (!rc)
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(len);
        if (!path) {
            rc = cli_failf(cmd, "out of memory");
            break;
        }
        size_t dl = strlen(dir); /* "new-photos/" names files new-photos/x.jpg */
        snprintf(path, len, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", names[i]);
        struct stat s, ls;
        bool is_dir = stat(path, &s) == 0 && S_ISDIR(s.st_mode);
        bool is_link = lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode);
        if (is_dir && !is_link) {
            rc = walk(cmd, path, depth + 1, out);
        } else if (!is_dir && image_name(names[i])) {
            if (out->count == out->cap) {
                size_t c = out->cap ? out->cap * 2 : 64;
                char **grown = realloc(out->paths, c * sizeof *grown);
                if (!grown) {
                    free(path);
                    rc = cli_failf(cmd, "out of memory");
                    break;
                }
                out->paths = grown;
                out->cap = c;
            }
            out->paths[out->count++] = path;
            path = NULL;
        }
        free(path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int cli_image_files(const char *cmd, const char *dir, cli_paths *out)
{
    *out = (cli_paths){0};
    int rc = walk(cmd, dir, 0, out);
    if (rc)
        cli_paths_free(out);
    return rc;
}

void cli_paths_free(cli_paths *p)
{
    for (size_t i = 0; i < p->count; i++)
        free(p->paths[i]);
    free(p->paths);
    *p = (cli_paths){0};
}
