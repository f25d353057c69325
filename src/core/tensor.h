/* Internal tensor helpers shared by io and model code. */
#ifndef CNN_CORE_TENSOR_H
#define CNN_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "cnn.h"

/* a * b into *out unless it overflows int64 (then false). */
static inline bool cnn_mul_overflows(int64_t a, int64_t b, int64_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}

/* Product of dims[0..rank), false on overflow or negative dims. */
bool cnn_dims_product(int rank, const int64_t *dims, int64_t *out);

/* Formats a per-example shape like Keras: "(None, 28, 28, 1)". */
void cnn_shape_format(cnn_shape s, char *buf, size_t cap);
/* Formats a tensor's full shape: "(60000, 28, 28)". */
void cnn_tensor_format_shape(const cnn_tensor *t, char *buf, size_t cap);
int64_t cnn_shape_size(cnn_shape s);
/* Index of the first NaN or infinity among x[0..n), -1 if all are finite. */
int64_t cnn_first_nonfinite(const float *x, int64_t n);

#endif
