/* Pictures of what a model computes, for `cnn visualize`: feature-map
 * grids, bar strips for flat outputs, and Conv2D kernels. Every map or
 * kernel is normalised on its own (min -> 0, max -> 255), so its pattern
 * shows whatever its scale; a constant map is black. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

enum {
    TILE_MIN = 48,  /* small maps are upscaled (nearest) to about this size */
    TILE_MAX = 256, /* large maps are sampled down to at most this */
    KERNEL_TILE = 40
};

static const cli_rgb separator = {64, 96, 160}, background = {255, 255, 255};

static void min_max(const float *x, int64_t n, int64_t stride, float *lo, float *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i * stride];
        if (v < *lo)
            *lo = v;
        if (v > *hi)
            *hi = v;
    }
}

static uint8_t level(float v, float lo, float hi)
{
    if (!(hi > lo) || !isfinite(v))
        return 0;
    float t = (v - lo) / (hi - lo) * 255.0f + 0.5f;
    return (uint8_t)(t < 0 ? 0 : t > 255 ? 255 : t);
}

/* The tile size for a rows x cols map: integer upscale when small, sampled
 * down when large. */
static void tile_size(int rows, int cols, int *th, int *tw)
{
    int big = rows > cols ? rows : cols;
    if (big < TILE_MIN) {
        int f = (TILE_MIN + big - 1) / big;
        *th = rows * f;
        *tw = cols * f;
    } else if (big > TILE_MAX) {
        *th = (int)((int64_t)rows * TILE_MAX / big);
        *tw = (int)((int64_t)cols * TILE_MAX / big);
        *th = *th ? *th : 1;
        *tw = *tw ? *tw : 1;
    } else {
        *th = rows;
        *tw = cols;
    }
}

static void grid_shape(int n, int *grid_rows, int *grid_cols)
{
    int gc = (int)ceil(sqrt((double)n));
    *grid_cols = gc ? gc : 1;
    *grid_rows = (n + *grid_cols - 1) / *grid_cols;
}

bool cli_picture_maps(const float *data, int rows, int cols, int channels, cli_canvas *out)
{
    int th, tw, gr, gc;
    tile_size(rows, cols, &th, &tw);
    grid_shape(channels, &gr, &gc);
    if (!cli_canvas_create(out, gr * (th + 1) + 1, gc * (tw + 1) + 1, separator))
        return false;
    for (int ch = 0; ch < channels; ch++) {
        float lo, hi;
        min_max(data + ch, (int64_t)rows * cols, channels, &lo, &hi);
        int x0 = 1 + (ch % gc) * (tw + 1), y0 = 1 + (ch / gc) * (th + 1);
        for (int y = 0; y < th; y++)
            for (int x = 0; x < tw; x++) {
                int64_t r = (int64_t)y * rows / th, c = (int64_t)x * cols / tw;
                uint8_t v = level(data[(r * cols + c) * channels + ch], lo, hi);
                cli_canvas_pixel(out, x0 + x, y0 + y, (cli_rgb){v, v, v});
            }
    }
    return true;
}

bool cli_picture_bars(const float *data, int64_t n, cli_canvas *out)
{
    float lo, hi;
    min_max(data, n, 1, &lo, &hi);
    if (n <= 256) {
        /* One bar per value, from the zero line (or the bottom). */
        int bw = (int)(512 / n), h = 96;
        bw = bw < 2 ? 2 : bw > 24 ? 24 : bw;
        bool labels = bw >= 2 * CLI_FONT_ADVANCE || (bw >= CLI_FONT_ADVANCE && n <= 10);
        if (!cli_canvas_create(out, h + 2 + (labels ? CLI_FONT_HEIGHT + 3 : 0), (int)n * bw + 2,
                               background))
            return false;
        for (int64_t i = 0; labels && i < n; i++) {
            /* the index of each value under its bar (the class, for the last layer) */
            char num[24];
            snprintf(num, sizeof num, "%lld", (long long)i);
            int w = cli_text_width(num, 1);
            if (w <= bw)
                cli_canvas_text(out, 1 + (int)i * bw + (bw - w) / 2, h + 4, num, 1,
                                (cli_rgb){0, 0, 0});
        }
        float base = lo < 0 && hi > 0 ? 0 : lo > 0 ? 0 : lo;
        float top = hi > base ? hi : base + 1, bottom = lo < base ? lo : base;
        int zero_y = 1 + (int)lroundf((top - base) / (top - bottom) * (h - 1));
        for (int64_t i = 0; i < n; i++) {
            int y = 1 + (int)lroundf((top - data[i]) / (top - bottom) * (h - 1));
            int y0 = y < zero_y ? y : zero_y, y1 = y < zero_y ? zero_y : y;
            int x = 1 + (int)i * bw;
            cli_canvas_fill(out, x, y0, bw - (bw > 3), y1 - y0 + 1, separator);
        }
        cli_canvas_line(out, 0, zero_y, out->cols - 1, zero_y, 1, (cli_rgb){0, 0, 0});
        return true;
    }
    /* Many values: a heat strip of 4x4 cells, 128 to a row. */
    int per_row = 128, cell = 4, strip_rows = (int)((n + per_row - 1) / per_row);
    if (!cli_canvas_create(out, strip_rows * cell + 2, per_row * cell + 2, separator))
        return false;
    for (int64_t i = 0; i < n; i++) {
        uint8_t v = level(data[i], lo, hi);
        cli_canvas_fill(out, 1 + (int)(i % per_row) * cell, 1 + (int)(i / per_row) * cell, cell,
                        cell, (cli_rgb){v, v, v});
    }
    return true;
}

/* Kernel k's value at (y, x): RGB from the three input channels when
 * in == 3, else the mean over the input channels (grey in all three). */
static void kernel_pixel(const float *kernel, int kw, int in, int filters, int k, int y, int x,
                         float v[3])
{
    /* kernel[((y * kw + x) * in + c) * filters + k] */
    const float *w = kernel + ((int64_t)(y * kw + x) * in) * filters + k;
    if (in == 3) {
        for (int c = 0; c < 3; c++)
            v[c] = w[(int64_t)c * filters];
        return;
    }
    float sum = 0;
    for (int c = 0; c < in; c++)
        sum += w[(int64_t)c * filters];
    v[0] = v[1] = v[2] = sum / (float)in;
}

bool cli_picture_kernels(const float *kernel, int kh, int kw, int in, int filters,
                         cli_canvas *out)
{
    int big = kh > kw ? kh : kw, f = (KERNEL_TILE + big - 1) / big;
    int th = kh * f, tw = kw * f, gr, gc;
    grid_shape(filters, &gr, &gc);
    if (!cli_canvas_create(out, gr * (th + 1) + 1, gc * (tw + 1) + 1, separator))
        return false;
    for (int k = 0; k < filters; k++) {
        float lo = INFINITY, hi = -INFINITY, v[3];
        for (int y = 0; y < kh; y++)
            for (int x = 0; x < kw; x++) {
                kernel_pixel(kernel, kw, in, filters, k, y, x, v);
                for (int c = 0; c < 3; c++) {
                    lo = v[c] < lo ? v[c] : lo;
                    hi = v[c] > hi ? v[c] : hi;
                }
            }
        int x0 = 1 + (k % gc) * (tw + 1), y0 = 1 + (k / gc) * (th + 1);
        for (int y = 0; y < kh; y++)
            for (int x = 0; x < kw; x++) {
                kernel_pixel(kernel, kw, in, filters, k, y, x, v);
                cli_rgb colour = {level(v[0], lo, hi), level(v[1], lo, hi), level(v[2], lo, hi)};
                cli_canvas_fill(out, x0 + x * f, y0 + y * f, f, f, colour);
            }
    }
    return true;
}
