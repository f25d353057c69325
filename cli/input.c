/* Model input for predict and visualize: an image file through
 * cnn_image_load, or images from an IDX file; checked against the model's
 * input shape, or fitted to it on request (--resize). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* IDX files start with two zero bytes and a type code; gzip with 1f 8b. */
static bool looks_like_idx(const unsigned char *b, size_t size)
{
    return size >= 4
        && ((b[0] == 0x1f && b[1] == 0x8b)
            || (b[0] == 0 && b[1] == 0 && (b[2] == 0x08 || b[2] == 0x09 || b[2] >= 0x0b)
                && b[2] <= 0x0e && b[3] >= 1 && b[3] <= 4));
}

/* Pixels in [0, 1] (as cnn_image_load gives them) to the model's scale:
 * 0..255 times scale (0 = 1/255: unchanged), inverted first if asked. */
static void to_scale(cnn_tensor *x, bool inverted, double scale)
{
    const float factor = scale == 0 ? 1.0f : (float)(scale * 255.0);
    int64_t n = cnn_tensor_size(x);
    for (int64_t i = 0; i < n; i++)
        x->data[i] = (inverted ? 1.0f - x->data[i] : x->data[i]) * factor;
}

static int mismatch(const char *cmd, cnn_shape want, const char *path, const cnn_tensor *x,
                    bool resize_helps)
{
    char w[48];
    cli_format_size(want, w, sizeof w);
    return cli_failf(cmd, "the model expects %s images (rows x cols x channels), %s is"
                     " %lldx%lldx%lld%s", w, path, (long long)x->dims[1], (long long)x->dims[2],
                     (long long)x->dims[3],
                     resize_helps ? "; use --resize to fit it" : "");
}

/* Resizes every image of x (n, rows, cols, c) to the model's rows x cols. */
static int resize_all(const char *cmd, cnn_shape want, cnn_tensor **x)
{
    cnn_tensor *in = *x, *out = NULL;
    int64_t dims[4] = {in->dims[0], want.dims[0], want.dims[1], in->dims[3]};
    if (cnn_tensor_create(&out, 4, dims))
        return cli_fail(cmd);
    int64_t per = (int64_t)want.dims[0] * want.dims[1] * in->dims[3];
    for (int64_t i = 0; i < in->dims[0]; i++) {
        cnn_tensor *one = NULL, *sized = NULL;
        if (cnn_tensor_slice(in, i, 1, &one) || cnn_image_resize(one, want.dims[0], want.dims[1],
                                                                 &sized)) {
            cnn_tensor_free(one);
            cnn_tensor_free(out);
            return cli_fail(cmd);
        }
        memcpy(out->data + i * per, sized->data, (size_t)per * sizeof(float));
        cnn_tensor_free(one);
        cnn_tensor_free(sized);
    }
    cnn_tensor_free(in);
    *x = out;
    return CLI_OK;
}

static int load_idx(const char *cmd, cnn_shape want, const char *path, const void *bytes,
                    size_t size, const cli_input_options *o, cnn_tensor **out, int64_t *first)
{
    cnn_tensor *all = NULL, *raw = NULL;
    if (cnn_dataset_load_idx_memory(bytes, size, path, &raw))
        return cli_fail(cmd);
    int rc = cli_idx_images(cmd, path, o->scale, raw, &all);
    if (rc)
        return rc;
    *first = 0;
    if (o->index >= 0) {
        if (o->index >= all->dims[0]) {
            rc = cli_failf(cmd, "--index %lld: %s holds %lld images (indices 0..%lld)",
                           (long long)o->index, path, (long long)all->dims[0],
                           (long long)all->dims[0] - 1);
            cnn_tensor_free(all);
            return rc;
        }
        cnn_tensor *one = NULL;
        cnn_status st = cnn_tensor_slice(all, o->index, 1, &one);
        cnn_tensor_free(all);
        if (st)
            return cli_fail(cmd);
        all = one;
        *first = o->index;
    }
    bool same_size = all->dims[1] == want.dims[0] && all->dims[2] == want.dims[1];
    if (all->dims[3] != want.dims[2] || (!same_size && !o->resize))
        rc = mismatch(cmd, want, path, all, all->dims[3] == want.dims[2]);
    else if (!same_size)
        rc = resize_all(cmd, want, &all);
    if (rc) {
        cnn_tensor_free(all);
        return rc;
    }
    *out = all;
    return CLI_OK;
}

/* max_bytes: the command's --max-memory, as the model's budget holds it. */
static int load_image(const char *cmd, cnn_shape want, const char *path, const void *bytes,
                      size_t size, const cli_input_options *o, int64_t max_bytes,
                      cnn_tensor **out)
{
    int channels = 0;
    if (o->resize) {
        if (want.dims[2] != 1 && want.dims[2] != 3)
            return cli_failf(cmd, "--resize converts images to 1 or 3 channels; the model"
                             " expects %d", want.dims[2]);
        channels = want.dims[2];
    }
    cnn_tensor *x = NULL;
    if (cnn_image_load_memory(bytes, size, path, channels, max_bytes, &x))
        return cli_fail(cmd);
    bool fits = x->dims[1] == want.dims[0] && x->dims[2] == want.dims[1]
             && x->dims[3] == want.dims[2];
    int rc = CLI_OK;
    if (!fits && !o->resize) {
        rc = mismatch(cmd, want, path, x, true);
    } else if (!fits) {
        cnn_tensor *sized = NULL;
        if (cnn_image_resize(x, want.dims[0], want.dims[1], &sized))
            rc = cli_fail(cmd);
        cnn_tensor_free(x);
        x = sized;
    }
    if (rc) {
        cnn_tensor_free(x);
        return rc;
    }
    *out = x;
    return CLI_OK;
}

int cli_input_load(const char *cmd, const cnn_model *m, const char *path,
                   const cli_input_options *o, cnn_tensor **out, int64_t *first)
{
    *out = NULL;
    *first = 0;
    cnn_shape want = cnn_model_input_shape(m);
    if (want.rank != 3)
        return cli_failf(cmd, "the model takes flat vectors of %d features, not images",
                         want.dims[0]);
    /* read once, through the library's reader (a FIFO is refused, not
     * waited on), then decoded from memory */
    void *bytes;
    size_t size;
    if (cnn_file_read_all(path, cnn_model_max_memory(m), &bytes, &size))
        return cli_fail(cmd);
    bool idx = looks_like_idx(bytes, size);
    int rc = idx ? load_idx(cmd, want, path, bytes, size, o, out, first)
                 : load_image(cmd, want, path, bytes, size, o, cnn_model_max_memory(m), out);
    free(bytes);
    if (rc == CLI_OK && idx && o->invert) {
        /* already scaled: the brightest value is 255 times the scale */
        const float top = o->scale == 0 ? 1.0f : (float)(255.0 * o->scale);
        int64_t n = cnn_tensor_size(*out);
        for (int64_t i = 0; i < n; i++)
            (*out)->data[i] = top - (*out)->data[i];
    } else if (rc == CLI_OK && !idx && (o->invert || o->scale != 0)) {
        to_scale(*out, o->invert, o->scale);
    }
    return rc;
}

int cli_input_scale(const char *cmd, const char *scale_text, double *scale)
{
    *scale = 0;
    return scale_text ? cli_parse_scale(cmd, scale_text, scale) : CLI_OK;
}

void cli_input_describe(const cli_input_options *o, FILE *out)
{
    char sc[32];
    cli_format_scale(o->scale, sc, sizeof sc);
    fprintf(out, "Pixels 0..255 x %s%s\n", sc, o->invert ? ", inverted (255 - pixel)" : "");
}
