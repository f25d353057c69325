/* The .keras zip archive through libzip, in memory both ways. Reading runs
 * libzip's consistency checks on the central directory, refuses a member
 * larger than the caller's limit before allocating it (so a small archive
 * cannot inflate into gigabytes) and lets libzip check each member's
 * CRC-32 as it is read to the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zip.h>

#include "core/error.h"
#include "io/keras.h"

struct cnn_zip {
    zip_t *za;
    const char *name;
};

cnn_status cnn_zip_open(const void *bytes, size_t size, const char *name, cnn_zip **out)
{
    *out = NULL;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(bytes, size, 0, &ze);
    zip_t *za = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
    if (!za) {
        cnn_status st = cnn_fail(CNN_ERR_FORMAT, "%s: not a readable zip archive: %s", name,
                                 zip_error_strerror(&ze));
        zip_source_free(src);
        zip_error_fini(&ze);
        return st;
    }
    zip_error_fini(&ze);
    cnn_zip *z = malloc(sizeof *z);
    if (!z) {
        zip_discard(za);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", name);
    }
    z->za = za;
    z->name = name;
    *out = z;
    return CNN_OK;
}

void cnn_zip_close(cnn_zip *z)
{
    if (!z)
        return;
    zip_discard(z->za);
    free(z);
}

bool cnn_zip_has(cnn_zip *z, const char *member)
{
    return zip_name_locate(z->za, member, 0) >= 0;
}

cnn_status cnn_zip_read(cnn_zip *z, const char *member, size_t max, void **out, size_t *size)
{
    *out = NULL;
    *size = 0;
    zip_int64_t idx = zip_name_locate(z->za, member, 0);
    if (idx < 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: the archive has no %s", z->name, member);
    zip_stat_t s;
    zip_stat_init(&s);
    if (zip_stat_index(z->za, (zip_uint64_t)idx, 0, &s) != 0 || !(s.valid & ZIP_STAT_SIZE))
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s: cannot read its size: %s", z->name, member,
                        zip_strerror(z->za));
    if (s.size > max)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s is %llu bytes, more than the %zu a Keras file's"
                        " %s may have", z->name, member, (unsigned long long)s.size, max,
                        member);
    zip_file_t *f = zip_fopen_index(z->za, (zip_uint64_t)idx, 0);
    if (!f)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s cannot be opened: %s", z->name, member,
                        zip_strerror(z->za));
    char *buf = malloc((size_t)s.size + 1);
    if (!buf) {
        zip_fclose(f);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: %s: cannot allocate %llu bytes", z->name, member,
                        (unsigned long long)s.size);
    }
    /* Read to the end (one byte past the recorded size), so that libzip
     * compares the CRC-32 and a member longer than recorded is noticed. */
    zip_uint64_t got = 0;
    cnn_status st = CNN_OK;
    for (;;) {
        char probe;
        bool done = got == s.size;
        zip_int64_t n = done ? zip_fread(f, &probe, 1) : zip_fread(f, buf + got, s.size - got);
        if (n < 0) {
            st = cnn_fail(CNN_ERR_FORMAT, "%s: %s is damaged: %s", z->name, member,
                          zip_file_strerror(f));
            break;
        }
        if (n == 0 && done)
            break;
        if (n == 0 || done) {
            st = cnn_fail(CNN_ERR_FORMAT, "%s: %s: its size does not match the archive's"
                          " directory (%llu bytes recorded)", z->name, member,
                          (unsigned long long)s.size);
            break;
        }
        got += (zip_uint64_t)n;
    }
    zip_fclose(f);
    if (st) {
        free(buf);
        return st;
    }
    buf[s.size] = '\0';
    *out = buf;
    *size = (size_t)s.size;
    return CNN_OK;
}

/* 1980-01-01 00:00, the first time a zip entry can carry (local time). */
static time_t dos_epoch(void)
{
    struct tm t = {.tm_year = 80, .tm_mon = 0, .tm_mday = 1, .tm_isdst = -1};
    return mktime(&t);
}

cnn_status cnn_zip_write(const cnn_zip_member *members, int n, const char *name, void **out,
                         size_t *size)
{
    *out = NULL;
    *size = 0;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    zip_t *za = src ? zip_open_from_source(src, ZIP_TRUNCATE, &ze) : NULL;
    if (!za) {
        cnn_status st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: cannot start a zip archive: %s", name,
                                 zip_error_strerror(&ze));
        zip_source_free(src);
        zip_error_fini(&ze);
        return st;
    }
    zip_error_fini(&ze);
    zip_source_keep(src);
    const time_t now = time(NULL), epoch = dos_epoch();
    for (int i = 0; i < n; i++) {
        zip_source_t *data = zip_source_buffer(za, members[i].data, members[i].size, 0);
        zip_int64_t idx = data ? zip_file_add(za, members[i].name, data, ZIP_FL_ENC_UTF_8) : -1;
        if (idx < 0)
            zip_source_free(data);
        if (idx < 0 || zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0) != 0
            || zip_file_set_mtime(za, (zip_uint64_t)idx, members[i].dos_epoch ? epoch : now, 0)
                   != 0) {
            cnn_status st = cnn_fail(CNN_ERR_IO, "%s: cannot add %s to the archive: %s", name,
                                     members[i].name, zip_strerror(za));
            zip_discard(za);
            zip_source_free(src);
            return st;
        }
    }
    if (zip_close(za) != 0) {
        cnn_status st = cnn_fail(CNN_ERR_IO, "%s: cannot write the archive: %s", name,
                                 zip_strerror(za));
        zip_discard(za);
        zip_source_free(src);
        return st;
    }
    cnn_status st = CNN_OK;
    zip_int64_t len = -1;
    char *buf = NULL;
    if (zip_source_open(src) == 0) {
        if (zip_source_seek(src, 0, SEEK_END) == 0 && (len = zip_source_tell(src)) > 0
            && zip_source_seek(src, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len))
            && zip_source_read(src, buf, (zip_uint64_t)len) != len) {
            free(buf);
            buf = NULL;
        }
        zip_source_close(src);
    }
    zip_source_free(src);
    if (!buf)
        st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: cannot collect the archive's bytes", name);
    *out = buf;
    *size = buf ? (size_t)len : 0;
    return st;
}
