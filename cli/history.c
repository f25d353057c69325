/* The per-epoch history as CSV: epoch,loss,accuracy,val_loss,val_accuracy,
 * one row per epoch, an empty field where a value is unknown (no
 * validation data). Rewritten whole after every epoch, so it is current
 * even when training stops; a resumed run keeps the earlier rows. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char header[] = "epoch,loss,accuracy,val_loss,val_accuracy";

void cli_history_free(cli_history *h)
{
    free(h->rows);
    *h = (cli_history){0};
}

int cli_history_set(const char *cmd, cli_history *h, cli_epoch e)
{
    int i = 0;
    while (i < h->count && h->rows[i].epoch < e.epoch)
        i++;
    if (i < h->count && h->rows[i].epoch == e.epoch) {
        h->rows[i] = e;
        return CLI_OK;
    }
    if (h->count == h->cap) {
        int cap = h->cap ? 2 * h->cap : 16;
        cli_epoch *g = realloc(h->rows, (size_t)cap * sizeof *g);
        if (!g)
            return cli_failf(cmd, "out of memory");
        h->rows = g;
        h->cap = cap;
    }
    memmove(h->rows + i + 1, h->rows + i, (size_t)(h->count - i) * sizeof *h->rows);
    h->rows[i] = e;
    h->count++;
    return CLI_OK;
}

/* The next comma-separated field as a number; empty is NaN. */
static bool field(char **p, double *v)
{
    char *end;
    if (**p == ',' || **p == '\0' || **p == '\n' || **p == '\r') {
        *v = NAN;
        end = *p;
    } else {
        *v = strtod(*p, &end);
        if (end == *p)
            return false;
    }
    *p = end + (*end == ',');
    return true;
}

/* One row of the file (without its newline) into h, up to up_to_epoch. */
static int read_row(const char *cmd, const char *path, int lineno, char *line, int up_to_epoch,
                    cli_history *h)
{
    char *p = line;
    double v[5];
    bool ok = true;
    for (int i = 0; i < 5 && ok; i++)
        ok = field(&p, &v[i]);
    if (!ok || !(v[0] >= 1 && v[0] <= 1e9 && v[0] == floor(v[0])))
        return cli_failf(cmd, "%s:%d: expected %s values, got '%.*s'", path, lineno, header,
                         (int)strcspn(line, "\r"), line);
    if ((int)v[0] <= up_to_epoch)
        return cli_history_set(cmd, h, (cli_epoch){(int)v[0], v[1], v[2], v[3], v[4]});
    return CLI_OK;
}

/* A history of a million epochs is some 60 MB: anything far larger is not one. */
#define HISTORY_MAX_BYTES ((int64_t)1 << 28)

int cli_history_read(const char *cmd, const char *path, int up_to_epoch, cli_history *h)
{
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT)
        return CLI_OK; /* no history yet */
    void *bytes;
    size_t size;
    /* the library's reader: a FIFO or a directory is refused, not waited on */
    if (cnn_file_read_all(path, HISTORY_MAX_BYTES, &bytes, &size))
        return cli_fail(cmd);
    char *text = bytes; /* with a NUL after its size bytes */
    int rc = strlen(text) == size ? CLI_OK
                                  : cli_failf(cmd, "%s: expected a CSV text file, found a NUL"
                                              " byte at offset %zu", path, strlen(text));
    int lineno = 0;
    for (char *line = text; rc == CLI_OK && *line;) {
        size_t len = strcspn(line, "\n");
        char *next = line + len + (line[len] == '\n');
        line[len] = '\0';
        lineno++;
        if (lineno > 1 || strncmp(line, header, strlen(header)) != 0)
            rc = read_row(cmd, path, lineno, line, up_to_epoch, h);
        line = next;
    }
    free(bytes);
    return rc;
}

static void put(FILE *f, double v)
{
    if (isnan(v))
        fputs(",", f);
    else
        fprintf(f, ",%.6f", v);
}

int cli_history_write(const char *cmd, const char *path, const cli_history *h)
{
    cli_text t;
    int rc = cli_text_open(cmd, &t);
    if (rc)
        return rc;
    fprintf(t.f, "%s\n", header);
    for (int i = 0; i < h->count; i++) {
        const cli_epoch *e = &h->rows[i];
        fprintf(t.f, "%d", e->epoch);
        put(t.f, e->loss);
        put(t.f, e->accuracy);
        put(t.f, e->val_loss);
        put(t.f, e->val_accuracy);
        fputc('\n', t.f);
    }
    return cli_text_save(cmd, &t, path, CLI_OK);
}
