/* Why huge pages: a 3136 x 1024 Dense kernel (12.8 MB) is read once per
 * product from memory in rows 4 KB apart, and every 4 KB page costs a TLB
 * miss; on 2 MB pages the product measured about 7% faster (float32, one
 * thread). Linux gives anonymous memory huge pages only where asked
 * (transparent_hugepage=madvise, Debian's default), so the buffer is
 * mapped on its own, 2 MB aligned, and madvise'd. Below 2 MB, or where
 * mmap or madvise are missing, it is aligned_alloc'd and cleared. Each
 * buffer starts with a header (how it was made), 64 bytes before the
 * pointer returned. */
#define _DEFAULT_SOURCE
#include "core/big_alloc.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

enum { HEADER = 64 };
#define HUGE_PAGE ((size_t)2 << 20)

typedef struct {
    void *base;    /* what mmap or aligned_alloc returned */
    size_t length; /* the mapping's length; 0: aligned_alloc'd */
} big_header;

void *cnn_big_alloc(size_t bytes)
{
    if (bytes > PTRDIFF_MAX - 4 * HUGE_PAGE) /* no object is larger */
        return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    /* the header, then the data from the first 2 MB boundary past it */
    if (bytes >= HUGE_PAGE) {
        size_t length = bytes + 2 * HUGE_PAGE;
        void *base = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base != MAP_FAILED) {
            uintptr_t data = ((uintptr_t)base + HEADER + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
            /* a hint: without huge pages the memory is still good */
            (void)madvise((void *)data, (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
            big_header *h = (big_header *)(data - HEADER);
            h->base = base;
            h->length = length;
            return (void *)data;
        }
    }
#endif
    size_t length = (bytes + 2 * HEADER - 1) / HEADER * HEADER;
    unsigned char *base = aligned_alloc(HEADER, length);
    if (!base)
        return NULL;
    memset(base, 0, length);
    big_header *h = (big_header *)base;
    h->base = base;
    h->length = 0;
    return base + HEADER;
}

void cnn_big_free(void *p)
{
    if (!p)
        return;
    big_header *h = (big_header *)((unsigned char *)p - HEADER);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (h->length) {
        munmap(h->base, h->length);
        return;
    }
#endif
    free(h->base);
}
