/* Data for train and evaluate: IDX files (MNIST layout or given one by
 * one), targets for the loss, class names. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_data_check(const char *cmd, const cli_data *d, bool need_train, bool need_test)
{
    bool any_file = d->train_images || d->train_labels || d->test_images || d->test_labels;
    if (d->dir && any_file)
        return cli_usage_error(cmd, "give either --data DIR or the --*-images/--*-labels files,"
                               " not both");
    if (!d->dir && !d->train_images != !d->train_labels)
        return cli_usage_error(cmd, "--train-images and --train-labels go together");
    if (!d->dir && !d->test_images != !d->test_labels)
        return cli_usage_error(cmd, "--test-images and --test-labels go together");
    if (need_train && !d->dir && !d->train_images)
        return cli_usage_error(cmd, "no training data: give --data DIR (MNIST layout) or"
                               " --train-images FILE --train-labels FILE");
    if (need_test && !d->dir && !d->test_images)
        return cli_usage_error(cmd, "no test data: give --data DIR (MNIST layout) or"
                               " --test-images FILE --test-labels FILE");
    return CLI_OK;
}

int cli_parse_scale(const char *cmd, const char *text, double *out)
{
    char *end;
    errno = 0;
    double a = strtod(text, &end), b = 1;
    if (end != text && *end == '/' && !errno) {
        const char *den = end + 1;
        b = strtod(den, &end);
        if (end == den)
            b = NAN;
    }
    if (end == text || *end || errno || !isfinite(a / b) || !(a / b > 0))
        return cli_usage_error(cmd, "--scale: expected a number > 0 or a fraction such as 1/255"
                               " (pixel values 0..255 are multiplied by it), got '%s'", text);
    *out = a / b;
    return CLI_OK;
}

void cli_format_scale(double scale, char *buf, size_t cap)
{
    if (scale == 0 || fabs(scale * 255.0 - 1.0) < 1e-9)
        snprintf(buf, cap, "1/255");
    else
        snprintf(buf, cap, "%g", scale);
}

int cli_load_idx_images(const char *cmd, const char *path, double scale, cnn_tensor **out)
{
    cnn_tensor *x = NULL;
    if (cnn_dataset_load_idx(path, &x))
        return cli_fail(cmd);
    return cli_idx_images(cmd, path, scale, x, out);
}

int cli_idx_images(const char *cmd, const char *path, double scale, cnn_tensor *x,
                   cnn_tensor **out)
{
    if (x->rank != 3 && x->rank != 4) {
        int rank = x->rank; /* read before the tensor is freed */
        cnn_tensor_free(x);
        return cli_failf(cmd, "%s: expected images, an IDX file of rank 3 (count, rows, cols) or"
                         " 4 (count, rows, cols, channels), got rank %d%s", path, rank,
                         rank == 1 ? " (labels? check the order of the image and label files)"
                                   : "");
    }
    /* Pixels 0..255 -> [0, 1], divided as cnn_dataset_load_mnist does, by
     * default; --scale multiplies instead (1 keeps raw values). */
    int64_t n = cnn_tensor_size(x);
    if (scale == 0)
        for (int64_t i = 0; i < n; i++)
            x->data[i] /= 255.0f;
    else if (scale != 1)
        for (int64_t i = 0; i < n; i++)
            x->data[i] *= (float)scale;
    if (x->rank == 3 && cnn_tensor_expand_dims(x)) {
        cnn_tensor_free(x);
        return cli_fail(cmd);
    }
    *out = x;
    return CLI_OK;
}

/* Labels (rank 1), or images as targets (rank 3 or 4: an autoencoder's),
 * scaled as the input images are. */
static int load_labels(const char *cmd, const char *path, double scale, cnn_tensor **out)
{
    if (cnn_dataset_load_idx(path, out))
        return cli_fail(cmd);
    int rank = (*out)->rank;
    if (rank == 3 || rank == 4) {
        cnn_tensor_free(*out);
        *out = NULL;
        return cli_load_idx_images(cmd, path, scale, out);
    }
    if (rank != 1) {
        cnn_tensor_free(*out);
        *out = NULL;
        return cli_failf(cmd, "%s: expected labels, an IDX file of rank 1 (count), or target"
                         " images of rank 3 or 4, got rank %d", path, rank);
    }
    return CLI_OK;
}

static int load_pair(const char *cmd, const char *images, const char *labels, double scale,
                     cnn_tensor **x, cnn_tensor **y)
{
    int rc = cli_load_idx_images(cmd, images, scale, x);
    if (rc == CLI_OK)
        rc = load_labels(cmd, labels, scale, y);
    if (rc == CLI_OK && (*x)->dims[0] != (*y)->dims[0])
        rc = cli_failf(cmd, "expected as many labels as images: %s has %lld images, %s has %lld"
                       " labels", images, (long long)(*x)->dims[0], labels,
                       (long long)(*y)->dims[0]);
    if (rc) {
        cnn_tensor_free(*x);
        cnn_tensor_free(*y);
        *x = *y = NULL;
    }
    return rc;
}

int cli_data_load(const char *cmd, const cli_data *d, cnn_tensor **train_x,
                  cnn_tensor **train_y, cnn_tensor **test_x, cnn_tensor **test_y)
{
    cnn_tensor **outs[] = {train_x, train_y, test_x, test_y};
    for (int i = 0; i < 4; i++)
        if (outs[i])
            *outs[i] = NULL;
    if (d->dir) {
        if (cnn_dataset_load_mnist(d->dir, train_x, train_y, test_x, test_y))
            return cli_fail(cmd);
        /* those come in [0, 1]: rescale for --scale */
        for (int i = 0; d->scale != 0 && i < 4; i += 2)
            if (outs[i] && *outs[i])
                cnn_tensor_scale(*outs[i], (float)(d->scale * 255.0));
        return CLI_OK;
    }
    int rc = CLI_OK;
    if (train_x && d->train_images)
        rc = load_pair(cmd, d->train_images, d->train_labels, d->scale, train_x, train_y);
    if (rc == CLI_OK && test_x && d->test_images)
        rc = load_pair(cmd, d->test_images, d->test_labels, d->scale, test_x, test_y);
    if (rc && train_x) {
        cnn_tensor_free(*train_x);
        cnn_tensor_free(*train_y);
        *train_x = *train_y = NULL;
    }
    return rc;
}

int cli_targets(const char *cmd, const cnn_model *m, cnn_loss loss, const cnn_tensor *labels,
                cnn_tensor **out)
{
    cnn_shape s = cnn_model_output_shape(m);
    cnn_status st;
    if (labels->rank > 1) { /* target images: the model's output must be their shape */
        int64_t per = cnn_tensor_size(labels) / labels->dims[0];
        int64_t want = (int64_t)s.dims[0] * (s.rank == 3 ? (int64_t)s.dims[1] * s.dims[2] : 1);
        if (loss != CNN_LOSS_MSE && loss != CNN_LOSS_BINARY_CROSSENTROPY)
            return cli_failf(cmd, "target images need the loss mse or binary_crossentropy");
        if (per != want)
            return cli_failf(cmd, "the target images have %lld values each, the model's output"
                             " %lld", (long long)per, (long long)want);
        st = cnn_tensor_slice(labels, 0, labels->dims[0], out);
        return st ? cli_fail(cmd) : CLI_OK;
    }
    if (loss == CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY || (s.rank == 1 && s.dims[0] == 1))
        st = cnn_tensor_slice(labels, 0, labels->dims[0], out);
    else if (s.rank != 1)
        return cli_failf(cmd, "the model's output has shape (%d, %d, %d); integer labels need a"
                         " flat output (end the model with Flatten/Dense)", s.dims[0], s.dims[1],
                         s.dims[2]);
    else
        st = cnn_tensor_one_hot(labels, s.dims[0], out);
    return st ? cli_fail(cmd) : CLI_OK;
}

static const char fashion_mnist[] = "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,"
                                    "Sneaker,Bag,Ankle boot";

int cli_class_names_parse(const char *cmd, const char *arg, cli_class_names *out)
{
    *out = (cli_class_names){0};
    if (!arg)
        return CLI_OK;
    if (strcmp(arg, "fashion-mnist") == 0 || strcmp(arg, "fashion_mnist") == 0)
        arg = fashion_mnist;
    out->storage = strdup(arg);
    int count = 1;
    for (const char *p = arg; *p; p++)
        count += *p == ',';
    out->names = calloc((size_t)count, sizeof *out->names);
    if (!out->storage || !out->names) {
        cli_class_names_free(out);
        return cli_failf(cmd, "out of memory");
    }
    char *p = out->storage;
    for (int i = 0; i < count; i++) {
        out->names[i] = p;
        p += strcspn(p, ",");
        if (*p)
            *p++ = '\0';
    }
    out->count = count;
    return CLI_OK;
}

const char *cli_class_name(const cli_class_names *n, int k)
{
    return n && k >= 0 && k < n->count ? n->names[k] : NULL;
}

void cli_class_names_free(cli_class_names *n)
{
    free(n->storage);
    free(n->names);
    *n = (cli_class_names){0};
}
