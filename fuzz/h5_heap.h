/* Finds the largest object of an HDF5 file's first global heap collection,
 * the spot where libhdf5 1.10.8's known crash and hang are planted (a size
 * that overruns the collection; an object turned into a free block of size
 * 0). Shared by gen_corpus.c, which writes those seeds, and
 * tests/test_keras_isolate.c, which makes the same files for its checks.
 *
 * Layout read: "GCOL", a 16-byte header, then objects of index (2 bytes),
 * reference count (2), reserved (4), size (8, little-endian) and data padded
 * to 8 bytes; index 0 is the free space that ends the list. Returns the
 * offset of the largest object's header, 0 when there is none; *first gets
 * the offset of the first object. */
#ifndef CNN_FUZZ_H5_HEAP_H
#define CNN_FUZZ_H5_HEAP_H

/* memmem: the includer defines _GNU_SOURCE before any system header */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline size_t h5_largest_heap_object(const unsigned char *b, size_t n, size_t *first)
{
    const unsigned char *g = memmem(b, n, "GCOL", 4);
    if (!g)
        return 0;
    size_t p = (size_t)(g - b) + 16, best = 0;
    uint64_t best_size = 0;
    *first = p;
    while (p + 16 <= n) {
        unsigned idx = b[p] | b[p + 1] << 8;
        uint64_t size = 0;
        for (int k = 7; k >= 0; k--)
            size = size << 8 | b[p + 8 + k];
        if (idx == 0 || size > n)
            break;
        if (size > best_size)
            best_size = size, best = p;
        p += 16 + (size + 7) / 8 * 8;
    }
    return best;
}

#endif
