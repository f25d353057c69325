#include "core/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

bool cnn_dims_product(int rank, const int64_t *dims, int64_t *out)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0 || cnn_mul_overflows(n, dims[i], &n))
            return false;
    }
    *out = n;
    return true;
}

int64_t cnn_shape_size(cnn_shape s)
{
    int64_t n = 1;
    for (int i = 0; i < s.rank; i++)
        n *= s.dims[i];
    return n;
}

/* Whether block[0..n) has a NaN or infinity: those have all exponent bits
 * set, so adding one to the exponent carries into the sign bit, which
 * nothing else can. Plain integer and/add/or over a fixed count, so the
 * compiler vectorises it. */
enum { NONFINITE_BLOCK = 1024 };
static bool block_has_nonfinite(const float *block)
{
    uint32_t acc = 0;
    for (int i = 0; i < NONFINITE_BLOCK; i++) {
        uint32_t u;
        memcpy(&u, block + i, sizeof u);
        acc |= (u & 0x7f800000u) + 0x00800000u;
    }
    return acc & 0x80000000u;
}

int64_t cnn_first_nonfinite(const float *x, int64_t n)
{
    int64_t start = 0;
    for (; start + NONFINITE_BLOCK <= n; start += NONFINITE_BLOCK)
        if (block_has_nonfinite(x + start))
            break;
    for (int64_t i = start; i < n; i++) /* the block that has one, or the tail */
        if (!isfinite(x[i]))
            return i;
    return -1;
}

void cnn_shape_format(cnn_shape s, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "(None");
    for (int i = 0; i < s.rank && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, ", %d", s.dims[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, ")");
}

void cnn_tensor_format_shape(const cnn_tensor *t, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < t->rank && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, i ? ", %lld" : "%lld",
                                 (long long)t->dims[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, t->rank == 1 ? ",)" : ")");
}

cnn_status cnn_tensor_create(cnn_tensor **out, int rank, const int64_t *dims)
{
    *out = NULL;
    if (rank < 1 || rank > CNN_MAX_RANK)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "tensor: rank must be 1..%d, got %d",
                        CNN_MAX_RANK, rank);
    int64_t n, bytes;
    if (!cnn_dims_product(rank, dims, &n) || cnn_mul_overflows(n, (int64_t)sizeof(float), &bytes)
        || (uint64_t)bytes > SIZE_MAX)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "tensor: dimensions are negative or their product overflows");
    cnn_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return cnn_fail(CNN_ERR_NO_MEMORY, "tensor: out of memory");
    t->rank = rank;
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->data = calloc((size_t)(n ? n : 1), sizeof(float));
    if (!t->data) {
        free(t);
        return cnn_fail(CNN_ERR_NO_MEMORY, "tensor: cannot allocate %lld bytes", (long long)bytes);
    }
    *out = t;
    return CNN_OK;
}

void cnn_tensor_free(cnn_tensor *t)
{
    if (!t)
        return;
    free(t->data);
    free(t);
}

int64_t cnn_tensor_size(const cnn_tensor *t)
{
    int64_t n = 0;
    if (t)
        cnn_dims_product(t->rank, t->dims, &n);
    return n;
}

cnn_status cnn_tensor_expand_dims(cnn_tensor *t)
{
    if (!t)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "expand_dims: tensor is NULL");
    if (t->rank >= CNN_MAX_RANK) {
        char shape[96];
        cnn_tensor_format_shape(t, shape, sizeof shape);
        return cnn_fail(CNN_ERR_SHAPE, "expand_dims: tensor %s already has rank %d (the maximum)",
                        shape, t->rank);
    }
    t->dims[t->rank++] = 1;
    return CNN_OK;
}

void cnn_tensor_scale(cnn_tensor *t, float factor)
{
    int64_t n = cnn_tensor_size(t);
    for (int64_t i = 0; i < n; i++)
        t->data[i] *= factor;
}

cnn_status cnn_tensor_one_hot(const cnn_tensor *labels, int num_classes, cnn_tensor **out)
{
    *out = NULL;
    if (!labels || num_classes < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "one_hot: need labels and num_classes >= 1");
    int64_t n = cnn_tensor_size(labels);
    if (labels->rank != 1 && !(labels->rank == 2 && labels->dims[1] == 1))
        return cnn_fail(CNN_ERR_SHAPE, "one_hot: labels must have shape (n,) or (n, 1)");
    cnn_tensor *t;
    cnn_status st = cnn_tensor_create(&t, 2, (int64_t[]){n, num_classes});
    if (st)
        return st;
    for (int64_t i = 0; i < n; i++) {
        float v = labels->data[i];
        if (!(v >= 0 && v < (float)num_classes) || v != floorf(v)) {
            cnn_tensor_free(t);
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                            "one_hot: label %lld is %g, expected an integer in [0, %d)",
                            (long long)i, (double)v, num_classes);
        }
        t->data[i * num_classes + (int64_t)v] = 1.0f;
    }
    *out = t;
    return CNN_OK;
}

cnn_status cnn_tensor_slice(const cnn_tensor *t, int64_t start, int64_t count, cnn_tensor **out)
{
    *out = NULL;
    if (!t || start < 0 || count < 0 || start > t->dims[0] || count > t->dims[0] - start)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "slice: rows [%lld, %lld) outside the tensor",
                        (long long)start, (long long)(start + count));
    int64_t dims[CNN_MAX_RANK];
    memcpy(dims, t->dims, sizeof dims);
    dims[0] = count;
    cnn_status st = cnn_tensor_create(out, t->rank, dims);
    if (st)
        return st;
    int64_t row = cnn_tensor_size(t) / (t->dims[0] ? t->dims[0] : 1);
    if (count)
        memcpy((*out)->data, t->data + start * row, (size_t)(count * row) * sizeof(float));
    return CNN_OK;
}
