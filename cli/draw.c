/* An RGB canvas: pixels, rectangles, thick lines and 5x7 bitmap text,
 * saved through cnn_image_save_png. Drawing outside the canvas is clipped. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

bool cli_canvas_create(cli_canvas *c, int rows, int cols, cli_rgb background)
{
    *c = (cli_canvas){0};
    if (rows < 1 || cols < 1 || (size_t)rows * (size_t)cols > ((size_t)1 << 28))
        return false;
    c->pixels = malloc((size_t)rows * (size_t)cols * 3);
    if (!c->pixels)
        return false;
    c->rows = rows;
    c->cols = cols;
    cli_canvas_fill(c, 0, 0, cols, rows, background);
    return true;
}

void cli_canvas_free(cli_canvas *c)
{
    free(c->pixels);
    *c = (cli_canvas){0};
}

void cli_canvas_pixel(cli_canvas *c, int x, int y, cli_rgb color)
{
    if (x < 0 || y < 0 || x >= c->cols || y >= c->rows)
        return;
    uint8_t *p = c->pixels + ((size_t)y * (size_t)c->cols + (size_t)x) * 3;
    p[0] = color.r;
    p[1] = color.g;
    p[2] = color.b;
}

void cli_canvas_fill(cli_canvas *c, int x, int y, int w, int h, cli_rgb color)
{
    int x1 = x + w < c->cols ? x + w : c->cols, y1 = y + h < c->rows ? y + h : c->rows;
    for (int j = y < 0 ? 0 : y; j < y1; j++)
        for (int i = x < 0 ? 0 : x; i < x1; i++)
            cli_canvas_pixel(c, i, j, color);
}

/* Bresenham, stamping a thickness x thickness square at each point. */
void cli_canvas_line(cli_canvas *c, int x0, int y0, int x1, int y1, int thickness, cli_rgb color)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy, half = (thickness - 1) / 2;
    for (;;) {
        cli_canvas_fill(c, x0 - half, y0 - half, thickness, thickness, color);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

int cli_text_width(const char *text, int scale)
{
    int n = (int)strlen(text);
    return n ? (n * CLI_FONT_ADVANCE - 1) * scale : 0;
}

/* Draws text with glyph pixel (gx, gy) mapped by up: false -> (x + gx, y + gy),
 * true -> (x + gy, y - gx) (rotated to read upwards). */
static void draw_text(cli_canvas *c, int x, int y, const char *text, int scale, cli_rgb color,
                      bool up)
{
    for (int k = 0; text[k]; k++) {
        const uint8_t *g = cli_font_glyph(text[k]);
        int base = k * CLI_FONT_ADVANCE * scale;
        for (int row = 0; row < CLI_FONT_HEIGHT; row++)
            for (int col = 0; col < CLI_FONT_WIDTH; col++) {
                if (!(g[row] >> (CLI_FONT_WIDTH - 1 - col) & 1))
                    continue;
                int gx = base + col * scale, gy = row * scale;
                if (up)
                    cli_canvas_fill(c, x + gy, y - gx - scale + 1, scale, scale, color);
                else
                    cli_canvas_fill(c, x + gx, y + gy, scale, scale, color);
            }
    }
}

void cli_canvas_text(cli_canvas *c, int x, int y, const char *text, int scale, cli_rgb color)
{
    draw_text(c, x, y, text, scale, color, false);
}

void cli_canvas_text_up(cli_canvas *c, int x, int y, const char *text, int scale, cli_rgb color)
{
    draw_text(c, x, y, text, scale, color, true);
}

int cli_canvas_save(const char *cmd, const cli_canvas *c, const char *path)
{
    return cnn_image_save_png(path, c->pixels, c->rows, c->cols, 3) ? cli_fail(cmd) : CLI_OK;
}
