/* Command-line options, error messages and number formatting. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cnn %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'cnn %s --help'.\n", cmd);
    va_end(ap);
    return CLI_USAGE;
}

int cli_fail(const char *cmd)
{
    fprintf(stderr, "cnn %s: %s\n", cmd, cnn_last_error());
    return CLI_FAILURE;
}

int cli_failf(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cnn %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_FAILURE;
}

/* Edit distance for "did you mean" (option names are short). */
static int distance(const char *a, const char *b)
{
    size_t n = strlen(b);
    if (n > 63)
        return 99;
    int row[64];
    for (size_t j = 0; j <= n; j++)
        row[j] = (int)j;
    for (size_t i = 1; a[i - 1]; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= n; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[n];
}

/* True if b is a's words' initials: "learning-rate" -> "lr". */
static bool initials(const char *a, const char *b)
{
    if (strlen(b) < 2)
        return false;
    for (const char *w = a; *w; b++) {
        if (*b != *w)
            return false;
        w += strcspn(w, "-");
        w += *w == '-';
    }
    return *b == '\0';
}

/* True if the shorter of a and b is the longer's first word(s):
 * "batch" and "batch-size", "out" and "output" (3 letters at least). */
static bool word_prefix(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    const char *s = na < nb ? a : b, *l = na < nb ? b : a;
    size_t ns = na < nb ? na : nb;
    return ns >= 3 && ns < strlen(l) && strncmp(s, l, ns) == 0;
}

/* The option a mistyped or misremembered name most likely meant: the same
 * name spelt with _ (Keras's batch_size), a small typo (--epoch), its
 * initials (--learning-rate for --lr) or one being the other's first
 * word(s) (--batch-size for summary's --batch). NULL if none. */
static const char *suggest_option(const char *given, const cli_option *opts)
{
    char norm[64];
    size_t i = 0;
    for (; given[i] && i + 1 < sizeof norm; i++)
        norm[i] = given[i] == '_' ? '-' : (char)(given[i] >= 'A' && given[i] <= 'Z'
                                                     ? given[i] - 'A' + 'a' : given[i]);
    norm[i] = '\0';
    const char *best = NULL;
    int best_d = 3;
    for (const cli_option *o = opts; o->name; o++) {
        if (strcmp(norm, o->name) == 0)
            return o->name;
        /* a typo: at most a third of the name (1 or 2 edits), so that
         * --foo does not become --from */
        int d = distance(norm, o->name), limit = (int)strlen(o->name) / 3;
        limit = limit < 1 ? 1 : limit > 2 ? 2 : limit;
        if (d <= limit && d < best_d) {
            best_d = d;
            best = o->name;
        }
    }
    for (const cli_option *o = opts; !best && o->name; o++)
        if (initials(norm, o->name) || word_prefix(norm, o->name))
            best = o->name;
    return best;
}

static int unknown_option(const char *cmd, const char *name, size_t len, const cli_option *opts)
{
    char given[64];
    snprintf(given, sizeof given, "%.*s", (int)(len < 63 ? len : 63), name);
    const char *best = suggest_option(given, opts);
    if (best)
        return cli_usage_error(cmd, "unknown option '--%s' (did you mean '--%s'?)", given, best);
    return cli_usage_error(cmd, "unknown option '--%s'", given);
}

bool cli_parse_bytes(const char *text, int64_t *out)
{
    errno = 0;
    char *end;
    double v = strtod(text, &end);
    if (end == text || errno || !(v >= 0))
        return false;
    double unit = 1;
    switch (*end) {
    case 'k': case 'K': unit = 1024.0; end++; break;
    case 'm': case 'M': unit = 1024.0 * 1024; end++; break;
    case 'g': case 'G': unit = 1024.0 * 1024 * 1024; end++; break;
    case 't': case 'T': unit = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: break;
    }
    if (unit > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
        end += strlen(end);
    else if (unit == 1 && strcmp(end, "B") == 0)
        end++;
    if (*end || v * unit >= 9.2e18 || (unit == 1 && v != floor(v)))
        return false;
    *out = (int64_t)(v * unit);
    return true;
}

static int set_value(const char *cmd, const cli_option *o, const char *value)
{
    char *end;
    errno = 0;
    switch (o->type) {
    case CLI_OPT_FLAG:
        *(bool *)o->dest = true;
        return CLI_OK;
    case CLI_OPT_STRING:
        *(const char **)o->dest = value;
        return CLI_OK;
    case CLI_OPT_INT: {
        long v = strtol(value, &end, 10);
        if (end == value || *end || errno || v < o->min || v > o->max) {
            if (o->max >= 2147483647.0)
                return cli_usage_error(cmd, "--%s: expected an integer >= %.0f, got '%s'", o->name,
                                       o->min, value);
            return cli_usage_error(cmd, "--%s: expected an integer in [%.0f, %.0f], got '%s'",
                                   o->name, o->min, o->max, value);
        }
        *(int *)o->dest = (int)v;
        return CLI_OK;
    }
    case CLI_OPT_REAL: {
        double v = strtod(value, &end);
        if (end == value || *end || errno || !isfinite(v) || v < o->min || v > o->max)
            return cli_usage_error(cmd, "--%s: expected a number in [%g, %g], got '%s'", o->name,
                                   o->min, o->max, value);
        *(double *)o->dest = v;
        return CLI_OK;
    }
    case CLI_OPT_U64: {
        unsigned long long v = strtoull(value, &end, 10);
        if (end == value || *end || errno || value[0] == '-')
            return cli_usage_error(cmd, "--%s: expected a non-negative integer, got '%s'", o->name,
                                   value);
        *(uint64_t *)o->dest = (uint64_t)v;
        return CLI_OK;
    }
    case CLI_OPT_BYTES:
        if (!cli_parse_bytes(value, (int64_t *)o->dest))
            return cli_usage_error(cmd, "--%s: expected a size in bytes such as 512M or 8G"
                                   " (K, M, G are powers of 1024), got '%s'", o->name, value);
        /* min: a budget below one page rounds to nothing (1e-9K is 0 bytes,
         * which the library would take as "the default") */
        if (*(int64_t *)o->dest < o->min)
            return cli_usage_error(cmd, "--%s: expected at least %.0f bytes, got '%s' (%lld"
                                   " bytes)", o->name, o->min, value,
                                   (long long)*(int64_t *)o->dest);
        return CLI_OK;
    }
    return CLI_USAGE;
}

int cli_parse(const char *cmd, const char *help, int nargs, char **args, const cli_option *opts,
              int min_pos, int max_pos, const char **pos, int *npos)
{
    *npos = 0;
    bool options_done = false;
    for (int i = 0; i < nargs; i++) {
        const char *a = args[i];
        if (options_done || a[0] != '-' || a[1] == '\0') {
            if (*npos >= max_pos)
                return cli_usage_error(cmd, "unexpected argument '%s'; %.*s", a,
                                       (int)strcspn(help, "\n"), help);
            pos[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(help, stdout);
            return CLI_HELP_SHOWN;
        }
        if (a[1] != '-')
            return cli_usage_error(cmd, "unknown option '%s' (options are spelled --name)", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_option *o = opts;
        while (o->name && !(strlen(o->name) == len && strncmp(o->name, name, len) == 0))
            o++;
        if (!o->name)
            return unknown_option(cmd, name, len, opts);
        const char *value = NULL;
        if (o->type == CLI_OPT_FLAG) {
            if (eq)
                return cli_usage_error(cmd, "--%s takes no value", o->name);
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < nargs) {
            value = args[++i];
        } else {
            return cli_usage_error(cmd, "--%s needs a value", o->name);
        }
        int rc = set_value(cmd, o, value);
        if (rc)
            return rc;
        if (o->given)
            *o->given = true;
    }
    if (*npos < min_pos)
        return cli_usage_error(cmd, "missing argument%s; %.*s", min_pos - *npos > 1 ? "s" : "",
                               (int)strcspn(help, "\n"), help);
    return CLI_OK;
}

void cli_format_bytes(int64_t bytes, char *buf, size_t cap)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.2f %s" : "%.0f %s", v, unit[u]);
}

void cli_format_count(int64_t n, char *buf, size_t cap)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%lld", (long long)(n < 0 ? -n : n));
    size_t o = 0;
    if (n < 0 && o + 1 < cap)
        buf[o++] = '-';
    for (int i = 0; i < len && o + 1 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0 && o + 2 < cap)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

void cli_format_flops(int64_t flops, char *buf, size_t cap)
{
    const char *unit[] = {"FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP"};
    double v = (double)flops;
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    snprintf(buf, cap, u ? "%.2f %s" : "%.0f %s", v, unit[u]);
}

void cli_format_shape(cnn_shape s, char *buf, size_t cap)
{
    if (s.rank == 1)
        snprintf(buf, cap, "(%d,)", s.dims[0]);
    else
        snprintf(buf, cap, "(%d, %d, %d)", s.dims[0], s.dims[1], s.dims[2]);
}

void cli_format_size(cnn_shape s, char *buf, size_t cap)
{
    if (s.rank == 1)
        snprintf(buf, cap, "%d", s.dims[0]);
    else
        snprintf(buf, cap, "%dx%dx%d", s.dims[0], s.dims[1], s.dims[2]);
}
