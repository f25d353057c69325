/* Machine-readable output (--format json|csv) and the class names a
 * command shows: JSON and CSV string escaping, and --class-names or else
 * the model's own names. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_format_parse(const char *cmd, const char *text, bool csv_allowed, cli_format *out)
{
    *out = CLI_FORMAT_TEXT;
    if (!text || strcmp(text, "text") == 0)
        return CLI_OK;
    if (strcmp(text, "json") == 0) {
        *out = CLI_FORMAT_JSON;
        return CLI_OK;
    }
    if (csv_allowed && strcmp(text, "csv") == 0) {
        *out = CLI_FORMAT_CSV;
        return CLI_OK;
    }
    return cli_usage_error(cmd, "--format: expected text, json%s, got '%s'",
                           csv_allowed ? " or csv" : "", text);
}

size_t cli_escape_controls(const char *text, char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text), o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = cnn_utf8_length(text + i, n - i);
        bool c1 = k == 2 && s[i] == 0xC2 && s[i + 1] < 0xA0; /* U+0080..U+009F */
        char esc[8];
        const char *piece = (const char *)s + i;
        size_t len = k;
        if (k == 0 || c1 || (k == 1 && (s[i] < 0x20 || s[i] == 0x7F))) {
            unsigned c = s[i];
            if (c == '\t' || c == '\n' || c == '\r')
                snprintf(esc, sizeof esc, "\\%c", c == '\t' ? 't' : c == '\n' ? 'n' : 'r');
            else
                snprintf(esc, sizeof esc, "\\x%02x", c);
            piece = esc;
            len = strlen(esc);
            k = 1;
        }
        if (out && o + len < cap)
            memcpy(out + o, piece, len);
        o += len;
        i += k;
    }
    if (out && cap)
        out[o < cap ? o : cap - 1] = '\0';
    return o;
}

void cli_json_string(FILE *f, const char *text)
{
    if (!text) {
        fputs("null", f);
        return;
    }
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text);
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '\r') {
            fputs("\\r", f);
        } else if (c == '\t') {
            fputs("\\t", f);
        } else if (c < 0x20 || c == 0x7F) {
            fprintf(f, "\\u%04x", c);
        } else {
            /* a file name need not be UTF-8: a byte that is not valid
             * UTF-8 becomes U+FFFD, so the document stays valid JSON */
            size_t k = cnn_utf8_length(text + i, n - i);
            if (!k) {
                fputs("\\ufffd", f);
                i++;
                continue;
            }
            fwrite(s + i, 1, k, f);
            i += k;
            continue;
        }
        i++;
    }
    fputc('"', f);
}

void cli_json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f); /* JSON has no NaN or infinity */
}

void cli_csv_field(FILE *f, const char *text)
{
    if (!text)
        return;
    /* RFC 4180: quote a field holding a comma, quote or line break, and
     * double its quotes */
    if (!strpbrk(text, ",\"\r\n")) {
        fputs(text, f);
        return;
    }
    fputc('"', f);
    for (const char *p = text; *p; p++) {
        if (*p == '"')
            fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

int cli_class_names_resolve(const char *cmd, const char *arg, const cnn_model *m,
                            cli_class_names *out)
{
    if (arg)
        return cli_class_names_parse(cmd, arg, out);
    *out = (cli_class_names){0};
    const char *const *names;
    int count = cnn_model_class_names(m, &names);
    if (!count)
        return CLI_OK;
    /* names from a model file are shown escaped: a crafted name must not
     * drive the terminal (cli_escape_controls) */
    size_t total = 0;
    for (int k = 0; k < count; k++)
        total += cli_escape_controls(names[k], NULL, 0) + 1;
    out->storage = malloc(total);
    out->names = calloc((size_t)count, sizeof *out->names);
    if (!out->storage || !out->names) {
        cli_class_names_free(out);
        return cli_failf(cmd, "out of memory");
    }
    char *p = out->storage;
    for (int k = 0; k < count; k++) {
        size_t n = cli_escape_controls(names[k], NULL, 0) + 1;
        cli_escape_controls(names[k], p, n);
        out->names[k] = p;
        p += n;
    }
    out->count = count;
    return CLI_OK;
}
