/* Status codes and the thread-local error message (see cnn_last_error). */
#ifndef CNN_CORE_ERROR_H
#define CNN_CORE_ERROR_H

#include "cnn.h"

/* Records a printf-style message for cnn_last_error() and returns status,
 * so a failing path reads: return cnn_fail(CNN_ERR_SHAPE, "...", ...). */
cnn_status cnn_fail(cnn_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with "prefix: " (adds context on the way up). */
void cnn_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cnn_error_clear(void);

#endif
