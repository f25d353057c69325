/* Large, long-lived buffers (weights, gradients, optimizer state, the
 * activation arena) on transparent huge pages where the system offers
 * them. */
#ifndef CNN_CORE_BIG_ALLOC_H
#define CNN_CORE_BIG_ALLOC_H
#include <stddef.h>

/* bytes of zeros, aligned to 64 bytes (a cache line, an AVX-512 vector);
 * NULL if out of memory. Free with cnn_big_free only. From 2 MB up the
 * pages are touched on first use, as calloc's are. */
void *cnn_big_alloc(size_t bytes);
void cnn_big_free(void *p);

#endif
