/* The large-buffer allocator (src/core/big_alloc.c): every size comes back
 * zeroed, 64-byte aligned and writable to its last byte, and is freed by
 * cnn_big_free (valgrind and ASan see a leak or a bad free); from 2 MB up,
 * on Linux, the data starts on a 2 MB boundary and its mapping carries the
 * huge-page advice ("hg" in /proc/self/smaps' VmFlags), which is what
 * makes the kernel back it with 2 MB pages. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/big_alloc.h"
#include "test.h"

#define MB ((size_t)1 << 20)

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Whether the mapping holding address a has the huge-page advice; -1 if
 * /proc/self/smaps cannot tell. */
static int advised_huge(const void *a)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512];
    int found = -1;
    bool inside = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = (uintptr_t)a >= lo && (uintptr_t)a < hi;
            continue;
        }
        if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            found = strstr(line, " hg") != NULL;
            break;
        }
    }
    fclose(f);
    return found;
}

int main(void)
{
    const size_t sizes[] = {0, 1, 63, 64, 4096, 2 * MB - 1, 2 * MB, 2 * MB + 1, 13 * MB + 12345};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *p = cnn_big_alloc(n);
        CHECK(p != NULL);
        if (!p)
            continue;
        CHECK((uintptr_t)p % 64 == 0);
        CHECK(all_zero(p, n));
        memset(p, 0xA5, n); /* writable to the last byte (ASan checks the bounds) */
        CHECK(n == 0 || (p[0] == 0xA5 && p[n - 1] == 0xA5));
#if defined(__linux__)
        if (n >= 2 * MB) {
            CHECK((uintptr_t)p % (2 * MB) == 0);
            int hg = advised_huge(p);
            if (hg < 0)
                test_skip("huge-page advice", "/proc/self/smaps has no VmFlags");
            else
                CHECK(hg == 1);
        }
#endif
        cnn_big_free(p);
    }
    cnn_big_free(NULL);
    /* Impossible sizes fail cleanly. */
    CHECK(cnn_big_alloc(SIZE_MAX) == NULL);
    CHECK(cnn_big_alloc((size_t)PTRDIFF_MAX + 1) == NULL);
    return test_finish("test_big_alloc");
}
