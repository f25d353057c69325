#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Thread-local so concurrent callers never read each other's messages. */
static _Thread_local char error_text[1024];

const char *cnn_last_error(void) { return error_text; }

void cnn_error_clear(void) { error_text[0] = '\0'; }

cnn_status cnn_fail(cnn_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_text, sizeof error_text, fmt, ap);
    va_end(ap);
    return status;
}

void cnn_error_prefix(const char *fmt, ...)
{
    char prefix[512], old[sizeof error_text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, error_text, sizeof old);
    /* The prefix comes first; the end of a very long old message is cut. */
    size_t n = strlen(prefix);
    if (n > sizeof error_text - 3)
        n = sizeof error_text - 3;
    memcpy(error_text, prefix, n);
    memcpy(error_text + n, ": ", 2);
    size_t rest = sizeof error_text - n - 3;
    size_t m = strlen(old);
    if (m > rest)
        m = rest;
    memcpy(error_text + n + 2, old, m);
    error_text[n + 2 + m] = '\0';
}

const char *cnn_status_name(cnn_status status)
{
    switch (status) {
    case CNN_OK: return "CNN_OK";
    case CNN_ERR_INVALID_ARGUMENT: return "CNN_ERR_INVALID_ARGUMENT";
    case CNN_ERR_SHAPE: return "CNN_ERR_SHAPE";
    case CNN_ERR_NO_MEMORY: return "CNN_ERR_NO_MEMORY";
    case CNN_ERR_IO: return "CNN_ERR_IO";
    case CNN_ERR_FORMAT: return "CNN_ERR_FORMAT";
    case CNN_ERR_STATE: return "CNN_ERR_STATE";
    case CNN_ERR_INTERRUPTED: return "CNN_ERR_INTERRUPTED";
    case CNN_ERR_NUMERIC: return "CNN_ERR_NUMERIC";
    }
    return "CNN_ERR_UNKNOWN";
}
