/* Model descriptions: the public entry points and reading the file; the
 * text and JSON readers do the rest, with what they share from
 * description_args.c (see description.h). The format is documented in
 * docs/DESCRIPTION_FORMAT.md. */
#include "io/description.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fileio.h"

/* A description is a few hundred bytes by hand and a few hundred KiB from
 * to_json() of a big model; anything far larger is not one. */
#define DESC_MAX_BYTES ((size_t)16 << 20)

/* ---- Entry points ------------------------------------------------------------- */

/* JSON if the first thing after whitespace (and a UTF-8 byte order mark)
 * is '{'. */
static bool looks_like_json(const char *text, size_t size)
{
    size_t i = 0;
    if (size >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < size && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    return i < size && text[i] == '{';
}

/* Parses a NUL-terminated copy of size bytes. */
static cnn_status parse_owned(const char *text, size_t size, const char *name, cnn_model **out)
{
    if (looks_like_json(text, size))
        return cnn_desc_parse_json(text, size, name, out);
    return cnn_desc_parse_text(text, size, name, out);
}

cnn_status cnn_model_from_description_memory(const char *text, size_t size, const char *name,
                                             cnn_model **out)
{
    if (out)
        *out = NULL;
    if (!out || (!text && size))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "cnn_model_from_description_memory: out is NULL or text is NULL");
    if (!name)
        name = "description";
    if (size > DESC_MAX_BYTES)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %zu bytes is too large for a model description"
                        " (at most %zu)", name, size, DESC_MAX_BYTES);
    char *copy = malloc(size + 1);
    if (!copy)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", name);
    if (size)
        memcpy(copy, text, size);
    copy[size] = '\0';
    cnn_status st = parse_owned(copy, size, name, out);
    free(copy);
    return st;
}

cnn_status cnn_model_from_description(const char *path, cnn_model **out)
{
    if (out)
        *out = NULL;
    if (!path || !out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "cnn_model_from_description: path and out are required");
    unsigned char *text;
    size_t size;
    cnn_status st = cnn_file_read(path, "description file", DESC_MAX_BYTES, &text, &size);
    if (st)
        return st;
    st = parse_owned((char *)text, size, path, out);
    free(text);
    return st;
}
