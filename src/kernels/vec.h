/* 4-float vectors through GCC/clang vector extensions: SSE in the default
 * baseline x86-64 build, NEON on ARM. Loads and stores go through memcpy so
 * any alignment is fine. For memory-bound loops, where wider vectors would
 * not pay. */
#ifndef CNN_KERNELS_VEC_H
#define CNN_KERNELS_VEC_H

#include <string.h>

typedef float cnn_v4f __attribute__((vector_size(16)));
typedef int cnn_v4i __attribute__((vector_size(16)));

static inline cnn_v4f cnn_v4_load(const float *p)
{
    cnn_v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void cnn_v4_store(float *p, cnn_v4f v) { memcpy(p, &v, sizeof v); }

/* Lanes of v where mask is all ones, zero elsewhere. */
static inline cnn_v4f cnn_v4_keep(cnn_v4f v, cnn_v4i mask) { return (cnn_v4f)((cnn_v4i)v & mask); }

/* mask ? a : b */
static inline cnn_v4f cnn_v4_select(cnn_v4i mask, cnn_v4f a, cnn_v4f b)
{
    return (cnn_v4f)(((cnn_v4i)a & mask) | ((cnn_v4i)b & ~mask));
}

static inline cnn_v4f cnn_v4_max(cnn_v4f a, cnn_v4f b) { return cnn_v4_select(a > b, a, b); }

#endif
