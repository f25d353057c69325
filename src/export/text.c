/* The growing text the exporter prints its files into (export.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"

static bool reserve(export_text *t, size_t more)
{
    if (t->failed)
        return false;
    if (more < t->cap - t->len)
        return true;
    size_t cap = t->cap ? t->cap : 4096;
    while (more >= cap - t->len) {
        if (cap > SIZE_MAX / 2) {
            t->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(t->data, cap);
    if (!p) {
        t->failed = true;
        return false;
    }
    t->data = p;
    t->cap = cap;
    return true;
}

void export_printf(export_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(t, (size_t)n + 1)) {
        t->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(t->data + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

void export_puts(export_text *t, const char *s)
{
    size_t n = strlen(s);
    if (!reserve(t, n + 1))
        return;
    memcpy(t->data + t->len, s, n + 1);
    t->len += n;
}

void export_text_free(export_text *t)
{
    free(t->data);
    *t = (export_text){0};
}

void export_float(export_text *t, float v)
{
    char buf[48];
    /* 9 significant digits read back to the same float */
    snprintf(buf, sizeof buf, "%.9g", (double)v);
    if (!strpbrk(buf, ".e"))
        strcat(buf, ".0");
    strcat(buf, "f");
    export_puts(t, buf);
}

void export_float_array(export_text *t, const char *name, const float *v, int64_t n)
{
    export_printf(t, "static const float %s[%lld] = {", name, (long long)n);
    for (int64_t i = 0; i < n; i++) {
        export_puts(t, i % 8 ? ", " : i ? ",\n    " : "\n    ");
        export_float(t, v[i]);
    }
    export_puts(t, "\n};\n");
}

void export_int8_array(export_text *t, const char *name, const int8_t *v, int64_t n)
{
    export_printf(t, "static const int8_t %s[%lld] = {", name, (long long)n);
    for (int64_t i = 0; i < n; i++)
        export_printf(t, "%s%d", i % 16 ? ", " : i ? ",\n    " : "\n    ", v[i]);
    export_puts(t, "\n};\n");
}

void export_shape_text(cnn_shape s, char *buf, size_t size)
{
    int off = 0;
    for (int d = 0; d < s.rank && off >= 0 && (size_t)off < size; d++)
        off += snprintf(buf + off, size - (size_t)off, d ? ", %d" : "(%d", s.dims[d]);
    if (off >= 0 && (size_t)off < size)
        snprintf(buf + off, size - (size_t)off, s.rank == 1 ? ",)" : ")");
}
