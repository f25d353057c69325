/* The ready-made console printer for fit's progress, in Keras's format:
 *   Epoch 1/5
 *   422/422 [==============================] - 10s 23ms/step - loss: 0.3689 - accuracy: 0.8887
 * On a terminal the bar redraws in place; elsewhere (a log file, CI) only the
 * final line of each epoch is written. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cnn.h"

#define BAR_WIDTH 30

static void format_duration(double s, char *out, size_t cap)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else if (t >= 60)
        snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
    else
        snprintf(out, cap, "%lds", t);
}

static void format_per_step(double s, char *out, size_t cap)
{
    if (s >= 1)
        snprintf(out, cap, "%.0fs/step", s);
    else if (s >= 1e-3)
        snprintf(out, cap, "%.0fms/step", s * 1e3);
    else
        snprintf(out, cap, "%.0fus/step", s * 1e6);
}

static size_t append_metrics(char *line, size_t used, size_t cap, const cnn_progress *p)
{
    const struct {
        const char *name;
        double v;
    } m[] = {{"loss", p->loss}, {"accuracy", p->accuracy}, {"val_loss", p->val_loss},
             {"val_accuracy", p->val_accuracy}};
    for (size_t i = 0; i < sizeof m / sizeof m[0] && used < cap; i++)
        if (!isnan(m[i].v) || (i < 2 && p->step > 0))
            used += (size_t)snprintf(line + used, cap - used, " - %s: %.4f", m[i].name, m[i].v);
    return used < cap ? used : cap - 1;
}

bool cnn_progress_console(const cnn_progress *p, void *user)
{
    FILE *out = user ? (FILE *)user : stdout;
    bool tty = isatty(fileno(out));
    if (p->event == CNN_PROGRESS_EPOCH_BEGIN) {
        fprintf(out, "Epoch %d/%d\n", p->epoch, p->epochs);
        fflush(out);
        return true;
    }
    if (p->event == CNN_PROGRESS_BATCH_END && !tty)
        return true;
    if (p->event == CNN_PROGRESS_BATCH_END && p->step == p->steps)
        return true; /* the epoch-end line (with validation) replaces it */
    char line[512], t[32], per[32];
    int digits = (int)log10((double)(p->steps > 0 ? p->steps : 1)) + 1;
    size_t used = (size_t)snprintf(line, sizeof line, "%*lld/%lld [", digits, (long long)p->step,
                                   (long long)p->steps);
    int filled = p->steps ? (int)(BAR_WIDTH * (double)p->step / (double)p->steps) : BAR_WIDTH;
    for (int i = 0; i < BAR_WIDTH; i++)
        line[used++] = i < filled - 1 ? '=' : i == filled - 1 ? (p->step < p->steps ? '>' : '=') : '.';
    line[used++] = ']';
    line[used] = '\0';
    if (p->event == CNN_PROGRESS_EPOCH_END) {
        snprintf(t, sizeof t, "%.0fs", p->elapsed_seconds);
        format_per_step(p->steps ? p->elapsed_seconds / (double)p->steps : 0, per, sizeof per);
        used += (size_t)snprintf(line + used, sizeof line - used, " - %s %s", t, per);
    } else {
        double eta = p->step ? p->elapsed_seconds / (double)p->step * (double)(p->steps - p->step) : 0;
        format_duration(eta, t, sizeof t);
        used += (size_t)snprintf(line + used, sizeof line - used, " - ETA: %s", t);
    }
    append_metrics(line, used, sizeof line, p);
    if (tty)
        fprintf(out, "\r%s\033[K%s", line, p->event == CNN_PROGRESS_EPOCH_END ? "\n" : "");
    else
        fprintf(out, "%s\n", line);
    fflush(out);
    return true;
}
