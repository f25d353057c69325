/* cnn visualize MODEL IMAGE --out DIR: runs one image through the model and
 * writes, for every layer, a picture of its output (a grid of feature maps,
 * or a bar strip for flat outputs), the first Conv2D layer's kernels, and an
 * index.html that shows them in order - the "smaller and thicker" flow. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char help[] =
    "Usage: cnn visualize MODEL IMAGE --out DIR [options]\n"
    "\n"
    "Runs IMAGE through MODEL and writes into DIR (created if missing):\n"
    "  input.png               the image as the model sees it\n"
    "  layer_NN_NAME.png       every layer's output: a near-square grid of its\n"
    "                          feature maps (each map scaled min..max to\n"
    "                          black..white, small maps enlarged), or a bar strip\n"
    "                          for Flatten/Dense outputs\n"
    "  kernels_NAME.png        the first Conv2D layer's kernels, each normalised\n"
    "  index.html              all of them in order with each layer's name, type and\n"
    "                          output shape\n"
    "IMAGE is a PNG, JPEG, BMP, PGM/PPM file or an IDX file of images (--index picks\n"
    "one; default the first). MODEL may also be a description: its weights are then\n"
    "random, and a warning on stderr says so.\n"
    "\n"
    "Options:\n"
    "  --out DIR            the output directory (required)\n"
    "  --index I            for IDX files: image I (0-based, default 0)\n"
    "  --threads T          worker threads (default 0: all cores)\n"
    "  --max-memory BYTES   the memory budget (default 4G; suffixes K, M, G)\n"
    "  -h, --help           show this help\n"
    "\n"
    "Pixels (these options mean the same in every command):\n"
    CLI_HELP_INPUT;

/* The image as the model sees it: grey or RGB, enlarged like the maps;
 * white is the brightest input value, 255 x scale (0 = 1/255: 1). */
static int save_input(const char *cmd, const cnn_tensor *x, double scale, const char *path)
{
    const float white = scale == 0 ? 1.0f : (float)(255.0 * scale);
    int rows = (int)x->dims[1], cols = (int)x->dims[2], ch = (int)x->dims[3];
    if (ch != 1 && ch != 3) {
        cli_canvas c;
        if (!cli_picture_maps(x->data, rows, cols, ch, &c))
            return cli_failf(cmd, "out of memory");
        int rc = cli_canvas_save(cmd, &c, path);
        cli_canvas_free(&c);
        return rc;
    }
    int big = rows > cols ? rows : cols, f = big < 112 ? (112 + big - 1) / big : 1;
    int step = big > 512 ? (big + 511) / 512 : 1;
    cli_canvas c;
    if (!cli_canvas_create(&c, rows / step * f, cols / step * f, (cli_rgb){0, 0, 0}))
        return cli_failf(cmd, "out of memory");
    for (int y = 0; y < c.rows; y++)
        for (int xx = 0; xx < c.cols; xx++) {
            const float *p = x->data + ((int64_t)(y / f * step) * cols + xx / f * step) * ch;
            uint8_t v[3];
            for (int k = 0; k < 3; k++) {
                float t = p[ch == 3 ? k : 0] / white;
                t = t < 0 ? 0 : t > 1 ? 1 : t;
                v[k] = (uint8_t)(t * 255.0f + 0.5f);
            }
            cli_canvas_pixel(&c, xx, y, (cli_rgb){v[0], v[1], v[2]});
        }
    int rc = cli_canvas_save(cmd, &c, path);
    cli_canvas_free(&c);
    return rc;
}

/* A file-name-safe copy of a layer name. */
static void safe_name(const char *name, char *buf, size_t cap)
{
    size_t i = 0;
    for (; name[i] && i + 1 < cap && i < 64; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
               || c == '_' || c == '-';
        buf[i] = ok ? c : '_';
    }
    buf[i] = '\0';
}

static void html_text(FILE *f, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
}

static char *join(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, file);
    return p;
}

static int save_picture(const char *cmd, cli_canvas *c, bool made, const char *dir,
                        const char *file)
{
    if (!made)
        return cli_failf(cmd, "out of memory drawing %s", file);
    char *path = join(dir, file);
    int rc = path ? cli_canvas_save(cmd, c, path) : cli_failf(cmd, "out of memory");
    free(path);
    cli_canvas_free(c);
    return rc;
}

/* The first Conv2D layer's kernels as a picture; *file stays empty if the
 * model has none. */
static int save_kernels(const char *cmd, cnn_model *m, const char *dir, int *layer, char *file,
                        size_t cap)
{
    *layer = -1;
    file[0] = '\0';
    for (int i = 0; i < cnn_model_layer_count(m); i++) {
        cnn_layer_spec spec;
        if (cnn_model_layer_spec(m, i, &spec) || spec.kind != CNN_LAYER_CONV2D)
            continue;
        /* what the layer reads (in a graph, not always the layer before) */
        int from = cnn_model_layer_input(m, i, 0);
        cnn_shape in = from >= 0 ? cnn_model_layer_output_shape(m, from) : cnn_model_input_shape(m);
        int kh = spec.u.conv2d.kernel_size[0], kw = spec.u.conv2d.kernel_size[1];
        int filters = spec.u.conv2d.filters;
        int64_t count = 0;
        const float *w = cnn_model_layer_weights(m, i, 0, &count);
        if (!w || count != (int64_t)kh * kw * in.dims[2] * filters)
            return cli_failf(cmd, "layer %s: unexpected kernel of %lld values",
                             cnn_model_layer_name(m, i), (long long)count);
        char name[80];
        safe_name(cnn_model_layer_name(m, i), name, sizeof name);
        snprintf(file, cap, "kernels_%s.png", name);
        *layer = i;
        cli_canvas c;
        bool made = cli_picture_kernels(w, kh, kw, in.dims[2], filters, &c);
        return save_picture(cmd, &c, made, dir, file);
    }
    return CLI_OK;
}

/* One <div> of index.html. */
static void html_layer(FILE *f, int i, const cnn_model *m, const char *file, const char *kernels)
{
    cnn_shape s = cnn_model_layer_output_shape(m, i);
    fprintf(f, "<div class=\"layer\"><h2>%d. ", i);
    html_text(f, cnn_model_layer_name(m, i));
    fprintf(f, " <small>(%s)</small></h2>\n<p class=\"shape\">", cnn_model_layer_type(m, i));
    if (s.rank == 3)
        fprintf(f, "output (None, %d, %d, %d): %d maps of %dx%d", s.dims[0], s.dims[1],
                s.dims[2], s.dims[2], s.dims[0], s.dims[1]);
    else
        fprintf(f, "output (None, %d): %d values", s.dims[0], s.dims[0]);
    fprintf(f, "</p>\n<img src=\"%s\" alt=\"output of layer %d\">\n", file, i);
    if (kernels)
        fprintf(f, "<h3>Kernels</h3>\n<p>each of the %d filters, normalised on its own"
                   " (RGB when the input has three channels)</p>\n<img src=\"%s\""
                   " alt=\"kernels\">\n", cnn_model_layer_output_shape(m, i).dims[2], kernels);
    fprintf(f, "</div>\n");
}

static void html_head(FILE *f, const cnn_model *m, const char *model, const char *image)
{
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n<title>cnn visualize</title>\n"
          "<style>body{font-family:sans-serif;margin:2em;background:#f6f6f6;color:#222}"
          ".layer{margin:1em 0;padding:0.8em 1em;background:#fff;border:1px solid #ddd}"
          "img{image-rendering:pixelated;max-width:100%;border:1px solid #ccc}"
          ".shape{font-family:monospace;color:#444}h2{margin:0.2em 0}small{color:#666}"
          "</style></head><body>\n<h1>", f);
    html_text(f, model);
    fputs(" on ", f);
    html_text(f, image);
    fputs("</h1>\n<p>Shape flow (smaller and thicker): <span class=\"shape\">", f);
    char shape[48];
    cli_format_shape(cnn_model_input_shape(m), shape, sizeof shape);
    fputs(shape, f);
    for (int i = 0; i < cnn_model_layer_count(m); i++) {
        cli_format_shape(cnn_model_layer_output_shape(m, i), shape, sizeof shape);
        fprintf(f, " &rarr; %s", shape);
    }
    fputs("</span></p>\n<p>Each feature map is scaled from its own minimum (black) to its"
          " maximum (white); a constant map is black.</p>\n", f);
    cli_format_shape(cnn_model_input_shape(m), shape, sizeof shape);
    fprintf(f, "<div class=\"layer\"><h2>input</h2>\n<p class=\"shape\">%s</p>\n"
               "<img src=\"input.png\" alt=\"input\"></div>\n", shape);
}

static int write_all(const char *cmd, cnn_model *m, const cnn_tensor *x, double scale,
                     const char *dir, const char *model, const char *image)
{
    char *input = join(dir, "input.png"), *index = join(dir, "index.html");
    int rc = input && index ? save_input(cmd, x, scale, input) : cli_failf(cmd, "out of memory");
    char kernels[128];
    int kernel_layer = -1;
    if (!rc)
        rc = save_kernels(cmd, m, dir, &kernel_layer, kernels, sizeof kernels);
    cli_text html = {0};
    if (!rc)
        rc = cli_text_open(cmd, &html);
    FILE *f = html.f;
    if (f)
        html_head(f, m, model, image);
    for (int i = 0; !rc && i < cnn_model_layer_count(m); i++) {
        cnn_shape s = cnn_model_layer_output_shape(m, i);
        const float *out = cnn_model_layer_output(m, i);
        char name[80], file[128];
        safe_name(cnn_model_layer_name(m, i), name, sizeof name);
        snprintf(file, sizeof file, "layer_%02d_%s.png", i, name);
        cli_canvas c;
        bool made = s.rank == 3 ? cli_picture_maps(out, s.dims[0], s.dims[1], s.dims[2], &c)
                                : cli_picture_bars(out, s.dims[0], &c);
        rc = save_picture(cmd, &c, made, dir, file);
        html_layer(f, i, m, file, i == kernel_layer ? kernels : NULL);
    }
    if (f)
        fputs("</body></html>\n", f);
    rc = cli_text_save(cmd, &html, index, rc);
    if (!rc)
        printf("Wrote %d layer pictures%s and %s\n", cnn_model_layer_count(m),
               kernel_layer >= 0 ? ", the first Conv2D kernels" : "", index);
    free(input);
    free(index);
    return rc;
}

int cli_visualize(int argc, char **argv)
{
    const char *cmd = "visualize", *dir = NULL, *scale = NULL;
    cli_input_options in = {.index = 0};
    int threads = 0, index = 0;
    int64_t max_memory = 0;
    const cli_option opts[] = {
        {"out", CLI_OPT_STRING, &dir, 0, 0, NULL},
        {"index", CLI_OPT_INT, &index, 0, 2147483647.0, NULL},
        CLI_INPUT_OPTIONS(&in, &scale),
        {"threads", CLI_OPT_INT, &threads, 0, 1024, NULL},
        {"max-memory", CLI_OPT_BYTES, &max_memory, 4096, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    const char *pos[2];
    int npos, rc = cli_parse(cmd, help, argc - 2, argv + 2, opts, 2, 2, pos, &npos);
    if (rc)
        return rc == CLI_HELP_SHOWN ? CLI_OK : rc;
    if (!dir)
        return cli_usage_error(cmd, "--out DIR is required");
    if ((rc = cli_input_scale(cmd, scale, &in.scale)))
        return rc;
    in.index = index;
    cnn_model *m = NULL;
    cnn_tensor *x = NULL;
    int64_t first;
    const float *output;
    if ((rc = cli_model_open(cmd, pos[0], 0, max_memory, threads, &m))
        || (rc = cli_input_load(cmd, m, pos[1], &in, &x, &first)))
        goto done;
    cli_warn_untrained(cmd, pos[0]);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        rc = cli_failf(cmd, "%s: cannot create the directory: %s", dir, strerror(errno));
        goto done;
    }
    if (cnn_model_forward(m, x, false, &output)) {
        rc = cli_fail(cmd);
        goto done;
    }
    cli_input_describe(&in, stdout);
    rc = write_all(cmd, m, x, in.scale, dir, pos[0], pos[1]);
done:
    cnn_tensor_free(x);
    cnn_model_free(m);
    return rc;
}
