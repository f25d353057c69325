/* The model's class names: the label of each output class, kept with the
 * model (and in its .cnn file) so that predict and evaluate can print them
 * without being told again. Names come from users and from files alike, so
 * one validator serves both: lengths, UTF-8, no control characters, no
 * duplicates, and a count that matches the output. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model.h"

/* The one UTF-8 check of the tree (cnn.h): class names here, and the
 * tool's escaping of what it prints. */
size_t cnn_utf8_length(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    unsigned c = s[0];
    size_t len;
    unsigned cp, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Why name (len bytes) cannot be a class name, or NULL if it can. */
static const char *name_problem(const char *name, size_t len)
{
    if (len == 0)
        return "is empty";
    if (len > CNN_CLASS_NAME_MAX)
        return "is longer than 255 bytes"; /* CNN_CLASS_NAME_MAX */
    const unsigned char *s = (const unsigned char *)name;
    for (size_t i = 0; i < len;) {
        if (s[i] == 0)
            return "contains a NUL byte";
        if (s[i] < 0x20 || s[i] == 0x7F)
            return "contains a control character";
        size_t k = cnn_utf8_length(name + i, len - i);
        if (!k)
            return "is not valid UTF-8";
        i += k;
    }
    return NULL;
}

/* The class count the output gives: its units, 2 for one (sigmoid) unit;
 * 0 if it is not a flat vector; -1 when there are no layers yet. */
static int output_classes(const cnn_model *m)
{
    if (!m->n_layers)
        return -1;
    cnn_shape s = cnn_model_output_shape(m);
    if (s.rank != 1)
        return 0;
    return s.dims[0] == 1 ? 2 : s.dims[0];
}

/* For the duplicate check: names sorted with their indices. */
typedef struct {
    const char *name;
    int index;
} indexed_name;

static int compare_names(const void *a, const void *b)
{
    const indexed_name *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

cnn_status cnn_model_set_class_names_sized(cnn_model *m, const char *const *names,
                                           const size_t *lengths, int count)
{
    if (!m || count < 0 || (count && (!names || !lengths)))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "class names: a model, and names for a count > 0, are required");
    if (count > CNN_MAX_CLASS_NAMES)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "class names: %d names; at most %d", count,
                        CNN_MAX_CLASS_NAMES);
    int classes = output_classes(m);
    if (count && classes == 0) {
        cnn_shape s = cnn_model_output_shape(m);
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "class names: the model's output has rank %d, not a vector of class"
                        " scores",
                        s.rank);
    }
    if (count && classes > 0 && count != classes)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "class names: %d names, the model's output has %d classes%s", count,
                        classes, cnn_model_output_shape(m).dims[0] == 1 ? " (one sigmoid unit)" : "");
    size_t total = 0;
    for (int k = 0; k < count; k++) {
        if (!names[k])
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "class names: name %d is NULL", k);
        const char *why = name_problem(names[k], lengths[k]);
        if (why)
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "class names: name %d %s", k, why);
        total += lengths[k] + 1; /* bounded: count and lengths are */
    }
    /* Duplicates: n^2 compares would let a hostile file with 65536 names
     * cost billions; sort a copy of the indices instead. */
    char *block = NULL;
    const char **view = NULL;
    indexed_name *order = NULL;
    if (count) {
        block = malloc(total);
        view = malloc((size_t)count * sizeof *view);
        order = malloc((size_t)count * sizeof *order);
        if (!block || !view || !order) {
            free(block);
            free(view);
            free(order);
            return cnn_fail(CNN_ERR_NO_MEMORY, "class names: out of memory");
        }
        char *p = block;
        for (int k = 0; k < count; k++) {
            memcpy(p, names[k], lengths[k]);
            p[lengths[k]] = '\0';
            view[k] = p;
            order[k] = (indexed_name){p, k};
            p += lengths[k] + 1;
        }
        qsort(order, (size_t)count, sizeof *order, compare_names);
        for (int k = 1; k < count; k++)
            if (strcmp(order[k - 1].name, order[k].name) == 0) {
                int a = order[k - 1].index, b = order[k].index; /* a < b: ties by index */
                cnn_status st = cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                                         "class names: name %d (\"%s\") repeats name %d; names"
                                         " must be unique",
                                         b, view[b], a);
                free(block);
                free(view);
                free(order);
                return st;
            }
        free(order);
    }
    free(m->class_name_block);
    free(m->class_names);
    m->class_name_block = block;
    m->class_names = view;
    m->n_class_names = count;
    return CNN_OK;
}

cnn_status cnn_model_set_class_names(cnn_model *m, const char *const *names, int count)
{
    if (!m || count < 0 || (count && !names))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "class names: a model, and names for a count > 0, are required");
    if (count > CNN_MAX_CLASS_NAMES)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "class names: %d names; at most %d", count,
                        CNN_MAX_CLASS_NAMES);
    size_t *lengths = malloc((size_t)(count ? count : 1) * sizeof *lengths);
    if (!lengths)
        return cnn_fail(CNN_ERR_NO_MEMORY, "class names: out of memory");
    for (int k = 0; k < count; k++)
        lengths[k] = names[k] ? strlen(names[k]) : 0;
    cnn_status st = cnn_model_set_class_names_sized(m, names, lengths, count);
    free(lengths);
    return st;
}

int cnn_model_class_names(const cnn_model *m, const char *const **names)
{
    if (names)
        *names = m && m->n_class_names ? m->class_names : NULL;
    return m ? m->n_class_names : 0;
}

void cnn_model_clear_class_names(cnn_model *m)
{
    free(m->class_name_block);
    free(m->class_names);
    m->class_name_block = NULL;
    m->class_names = NULL;
    m->n_class_names = 0;
}
