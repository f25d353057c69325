/* Training curves as a PNG: two panels (loss, accuracy) against the epoch,
 * train and validation in two colours, with axes, ticks, grid lines, a
 * legend and labels in the 5x7 font. */
#include <math.h>
#include <stdio.h>

#include "cli.h"

enum { PANEL_W = 460, PANEL_H = 340, LEFT = 64, RIGHT = 16, TOP = 34, BOTTOM = 44 };

static const cli_rgb white = {255, 255, 255}, black = {0, 0, 0}, grid = {225, 225, 225},
                     grey = {90, 90, 90}, train_colour = {31, 119, 180},
                     val_colour = {255, 127, 14};

/* A step of 1, 2 or 5 times a power of ten near span / 5. */
static double nice_step(double span)
{
    double raw = span / 5, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

typedef struct {
    double x0, x1, y0, y1; /* data range */
    int left, top, w, h;   /* plot area in pixels */
} axes;

static int px(const axes *a, double x) { return a->left + (int)lround((x - a->x0) / (a->x1 - a->x0) * a->w); }
static int py(const axes *a, double y) { return a->top + a->h - (int)lround((y - a->y0) / (a->y1 - a->y0) * a->h); }

static double value(const cli_epoch *e, int metric, bool val)
{
    return metric == 0 ? (val ? e->val_loss : e->loss) : (val ? e->val_accuracy : e->accuracy);
}

static void y_range(const cli_history *h, int metric, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int i = 0; i < h->count; i++)
        for (int v = 0; v < 2; v++) {
            double y = value(&h->rows[i], metric, v);
            if (isfinite(y)) {
                *lo = fmin(*lo, y);
                *hi = fmax(*hi, y);
            }
        }
    if (!isfinite(*lo)) {
        *lo = 0;
        *hi = 1;
    }
    double pad = *hi > *lo ? (*hi - *lo) * 0.08 : fmax(fabs(*lo) * 0.1, 0.05);
    *lo -= pad;
    *hi += pad;
    if (metric == 1) {
        *lo = fmax(*lo, 0);
        *hi = fmin(*hi, 1);
    } else {
        *lo = fmax(*lo, 0);
    }
    if (*hi <= *lo)
        *hi = *lo + 1;
}

static void draw_series(cli_canvas *c, const axes *a, const cli_history *h, int metric, bool val,
                        cli_rgb colour)
{
    int last_x = 0, last_y = 0;
    bool have_last = false;
    for (int i = 0; i < h->count; i++) {
        double y = value(&h->rows[i], metric, val);
        if (!isfinite(y)) {
            have_last = false;
            continue;
        }
        int x = px(a, h->rows[i].epoch), yy = py(a, y);
        if (have_last)
            cli_canvas_line(c, last_x, last_y, x, yy, 2, colour);
        cli_canvas_fill(c, x - 2, yy - 2, 5, 5, colour);
        last_x = x;
        last_y = yy;
        have_last = true;
    }
}

/* The legend sits in the top margin, right-aligned, so it never hides data. */
static void draw_legend(cli_canvas *c, const axes *a, bool has_val)
{
    const char *names[2] = {"train", "validation"};
    const cli_rgb colours[2] = {train_colour, val_colour};
    int x = a->left + a->w;
    for (int i = has_val ? 1 : 0; i >= 0; i--) {
        x -= cli_text_width(names[i], 1);
        cli_canvas_text(c, x, a->top - 12, names[i], 1, black);
        x -= 22;
        cli_canvas_line(c, x, a->top - 9, x + 16, a->top - 9, 2, colours[i]);
        x -= 12;
    }
}

static void draw_panel(cli_canvas *c, int ox, const cli_history *h, int metric)
{
    axes a = {.left = ox + LEFT, .top = TOP, .w = PANEL_W - LEFT - RIGHT, .h = PANEL_H - TOP - BOTTOM};
    int first = h->rows[0].epoch, last = h->rows[h->count - 1].epoch;
    a.x0 = first - 0.5;
    a.x1 = last + 0.5;
    y_range(h, metric, &a.y0, &a.y1);
    char label[32];

    /* grid and y ticks */
    double step = nice_step(a.y1 - a.y0);
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    for (double t = ceil(a.y0 / step) * step; t <= a.y1 + step * 1e-6; t += step) {
        int y = py(&a, t);
        cli_canvas_line(c, a.left, y, a.left + a.w, y, 1, grid);
        cli_canvas_line(c, a.left - 4, y, a.left, y, 1, black);
        snprintf(label, sizeof label, "%.*f", decimals, fabs(t) < step * 1e-6 ? 0.0 : t);
        cli_canvas_text(c, a.left - 7 - cli_text_width(label, 1), y - 3, label, 1, black);
    }
    /* x ticks: whole epochs */
    int xstep = (int)fmax(1, nice_step(last - first + 1));
    for (int e = first; e <= last; e++) {
        if ((e - first) % xstep && e != last)
            continue;
        int x = px(&a, e);
        cli_canvas_line(c, x, a.top, x, a.top + a.h, 1, grid);
        cli_canvas_line(c, x, a.top + a.h, x, a.top + a.h + 4, 1, black);
        snprintf(label, sizeof label, "%d", e);
        cli_canvas_text(c, x - cli_text_width(label, 1) / 2, a.top + a.h + 8, label, 1, black);
    }
    /* frame, labels, title */
    cli_canvas_line(c, a.left, a.top, a.left, a.top + a.h, 1, black);
    cli_canvas_line(c, a.left, a.top + a.h, a.left + a.w, a.top + a.h, 1, black);
    cli_canvas_line(c, a.left, a.top, a.left + a.w, a.top, 1, grey);
    cli_canvas_line(c, a.left + a.w, a.top, a.left + a.w, a.top + a.h, 1, grey);
    const char *name = metric == 0 ? "loss" : "accuracy";
    cli_canvas_text(c, a.left + (a.w - cli_text_width("epoch", 1)) / 2, a.top + a.h + 24, "epoch",
                    1, black);
    cli_canvas_text_up(c, ox + 8, a.top + (a.h + cli_text_width(name, 1)) / 2, name, 1, black);
    cli_canvas_text(c, a.left, 8, name, 2, black);

    bool has_val = false;
    for (int i = 0; i < h->count; i++)
        has_val |= isfinite(value(&h->rows[i], metric, true));
    draw_series(c, &a, h, metric, false, train_colour);
    if (has_val)
        draw_series(c, &a, h, metric, true, val_colour);
    draw_legend(c, &a, has_val);
}

int cli_plot_history(const char *cmd, const char *path, const cli_history *h)
{
    if (h->count == 0)
        return CLI_OK;
    cli_canvas c;
    if (!cli_canvas_create(&c, PANEL_H, 2 * PANEL_W, white))
        return cli_failf(cmd, "out of memory");
    draw_panel(&c, 0, h, 0);
    draw_panel(&c, PANEL_W, h, 1);
    int rc = cli_canvas_save(cmd, &c, path);
    cli_canvas_free(&c);
    return rc;
}
