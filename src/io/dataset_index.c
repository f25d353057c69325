/* Listing the files of a data set: a directory of class folders, walked
 * as Keras's index_directory walks it, or a CSV list. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/fileio.h"
#include "io/dataset.h"

/* A growing array of strings. */
typedef struct {
    char **items;
    int64_t count, cap;
} strings;

static cnn_status strings_push(strings *s, char *item, const char *name)
{
    if (!item)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", name);
    if (s->count == s->cap) {
        int64_t cap = s->cap ? s->cap * 2 : 64;
        char **items = realloc(s->items, (size_t)cap * sizeof *items);
        if (!items) {
            free(item);
            return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", name);
        }
        s->items = items;
        s->cap = cap;
    }
    s->items[s->count++] = item;
    return CNN_OK;
}

static void strings_free(strings *s)
{
    for (int64_t i = 0; i < s->count; i++)
        free(s->items[i]);
    free(s->items);
    *s = (strings){0};
}

/* Python sorts str by code point: for UTF-8 that is byte order. */
static int by_bytes(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

/* The entries of dir (without . and ..), sorted. */
static cnn_status list_dir(const char *dir, strings *out)
{
    *out = (strings){0};
    DIR *d = opendir(dir);
    if (!d)
        return cnn_io_error(dir, "cannot open the directory", errno);
    cnn_status st = CNN_OK;
    struct dirent *e;
    errno = 0;
    while (st == CNN_OK && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        st = strings_push(out, strdup(e->d_name), dir);
        errno = 0;
    }
    if (st == CNN_OK && errno)
        st = cnn_io_error(dir, "cannot read the directory", errno);
    closedir(d);
    if (st)
        strings_free(out);
    else if (out->count > 1)
        qsort(out->items, (size_t)out->count, sizeof *out->items, by_bytes);
    return st;
}

/* Keras's ALLOWLIST_FORMATS, compared with the lower-cased name. */
static bool is_image_name(const char *name)
{
    static const char *const ext[] = {".bmp", ".gif", ".jpeg", ".jpg", ".png"};
    size_t n = strlen(name);
    for (size_t k = 0; k < sizeof ext / sizeof *ext; k++) {
        size_t e = strlen(ext[k]);
        if (n < e)
            continue;
        bool same = true;
        for (size_t i = 0; i < e && same; i++)
            same = tolower((unsigned char)name[n - e + i]) == ext[k][i];
        if (same)
            return true;
    }
    return false;
}

/* The directories visited, by device and inode, so that following links
 * never enters one twice (a symlink loop ends there). */
typedef struct {
    dev_t *dev;
    ino_t *ino;
    int64_t count, cap;
} visited;

static bool visit(visited *v, const struct stat *s, bool *ok)
{
    for (int64_t i = 0; i < v->count; i++)
        if (v->dev[i] == s->st_dev && v->ino[i] == s->st_ino)
            return false;
    if (v->count == v->cap) {
        int64_t cap = v->cap ? v->cap * 2 : 16;
        dev_t *dev = realloc(v->dev, (size_t)cap * sizeof *dev);
        if (dev)
            v->dev = dev;
        ino_t *ino = realloc(v->ino, (size_t)cap * sizeof *ino);
        if (ino)
            v->ino = ino;
        if (!dev || !ino) {
            *ok = false;
            return false;
        }
        v->cap = cap;
    }
    v->dev[v->count] = s->st_dev;
    v->ino[v->count++] = s->st_ino;
    return true;
}

typedef struct {
    cnn_dataset *ds;
    strings files;         /* full paths of every class, in order */
    int32_t *labels;
    int64_t labels_cap;
    visited seen;
} scan;

/* Every directory under root (root first) that os.walk would visit:
 * subdirectories, and symlinks to directories only with follow_links. */
static cnn_status walk_dirs(scan *sc, const char *root, strings *dirs)
{
    cnn_status st = strings_push(dirs, strdup(root), root);
    for (int64_t k = 0; st == CNN_OK && k < dirs->count; k++) {
        strings entries;
        if ((st = list_dir(dirs->items[k], &entries)))
            break;
        for (int64_t i = 0; st == CNN_OK && i < entries.count; i++) {
            char *path = join(dirs->items[k], entries.items[i]);
            struct stat s, ls;
            if (!path) {
                st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", root);
                break;
            }
            /* os.walk: a directory is what stat says (links followed); a
             * link to one is entered only with followlinks */
            bool is_dir = stat(path, &s) == 0 && S_ISDIR(s.st_mode);
            bool is_link = lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode);
            bool ok = true;
            if (is_dir && (!is_link || sc->ds->cfg.follow_links) && visit(&sc->seen, &s, &ok))
                st = strings_push(dirs, path, root);
            else
                free(path);
            if (!ok)
                st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", root);
        }
        strings_free(&entries);
    }
    return st;
}

static cnn_status add_file(scan *sc, char *path, int label)
{
    cnn_status st = strings_push(&sc->files, path, sc->ds->name);
    if (st)
        return st;
    if (sc->files.count > sc->labels_cap) {
        int64_t cap = sc->labels_cap ? sc->labels_cap * 2 : 64;
        int32_t *l = realloc(sc->labels, (size_t)cap * sizeof *l);
        if (!l)
            return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", sc->ds->name);
        sc->labels = l;
        sc->labels_cap = cap;
    }
    sc->labels[sc->files.count - 1] = label;
    if (sc->ds->cfg.scan_progress && sc->files.count % 1000 == 0)
        sc->ds->cfg.scan_progress(sc->files.count, sc->ds->cfg.scan_user);
    return CNN_OK;
}

/* Keras's index_subdirectory: the walk's directories sorted by path, each
 * one's image files sorted by name. */
static cnn_status index_class(scan *sc, const char *class_dir, int label)
{
    strings dirs = {0};
    cnn_status st = walk_dirs(sc, class_dir, &dirs);
    if (st == CNN_OK && dirs.count > 1)
        qsort(dirs.items, (size_t)dirs.count, sizeof *dirs.items, by_bytes);
    for (int64_t k = 0; st == CNN_OK && k < dirs.count; k++) {
        strings entries;
        if ((st = list_dir(dirs.items[k], &entries)))
            break;
        for (int64_t i = 0; st == CNN_OK && i < entries.count; i++) {
            if (!is_image_name(entries.items[i]))
                continue;
            char *path = join(dirs.items[k], entries.items[i]);
            struct stat s;
            /* os.walk lists as files whatever is not a directory */
            if (path && stat(path, &s) == 0 && S_ISDIR(s.st_mode)) {
                free(path);
                continue;
            }
            st = add_file(sc, path, label);
        }
        strings_free(&entries);
    }
    strings_free(&dirs);
    return st;
}

static cnn_status take_files(cnn_dataset *ds, scan *sc, strings *classes)
{
    ds->count = sc->files.count;
    ds->paths = sc->files.items;
    ds->labels = sc->labels;
    sc->files = (strings){0};
    sc->labels = NULL;
    ds->n_classes = (int)classes->count;
    ds->class_names = classes->items;
    *classes = (strings){0};
    if (!ds->labels && !(ds->labels = malloc(sizeof *ds->labels)))
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", ds->name);
    return cnn_dataset_finish(ds);
}

cnn_status cnn_dataset_from_directory(const char *dir, cnn_dataset_config cfg, cnn_dataset **out)
{
    if (!out || !dir)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "data set: dir and out are required");
    *out = NULL;
    cnn_dataset *ds;
    cnn_status st = cnn_dataset_alloc(&cfg, dir, &ds);
    if (st)
        return st;
    struct stat s;
    if (stat(dir, &s) != 0)
        st = cnn_io_error(dir, "cannot open the data directory", errno);
    else if (!S_ISDIR(s.st_mode))
        st = cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                      "%s: expected a directory of class folders, got a file", dir);
    /* the classes: sorted subdirectories not starting with '.' (links
     * followed, as os.path.isdir) */
    strings entries = {0}, classes = {0};
    if (st == CNN_OK)
        st = list_dir(dir, &entries);
    for (int64_t i = 0; st == CNN_OK && i < entries.count; i++) {
        char *path = join(dir, entries.items[i]);
        if (!path) {
            st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", dir);
            break;
        }
        if (entries.items[i][0] != '.' && stat(path, &s) == 0 && S_ISDIR(s.st_mode))
            st = strings_push(&classes, strdup(entries.items[i]), dir);
        free(path);
    }
    strings_free(&entries);
    if (st == CNN_OK && classes.count == 0)
        st = cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                      "%s: no class folders: expected one subdirectory per class, holding its"
                      " images",
                      dir);
    if (st == CNN_OK && classes.count > CNN_MAX_CLASS_NAMES)
        st = cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: %lld class folders, at most %d are supported",
                      dir, (long long)classes.count, CNN_MAX_CLASS_NAMES);
    scan sc = {.ds = ds};
    for (int64_t k = 0; st == CNN_OK && k < classes.count; k++) {
        char *class_dir = join(dir, classes.items[k]);
        st = class_dir ? index_class(&sc, class_dir, (int)k)
                       : cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", dir);
        free(class_dir);
    }
    if (st == CNN_OK && cfg.scan_progress)
        cfg.scan_progress(sc.files.count, cfg.scan_user);
    if (st == CNN_OK)
        st = take_files(ds, &sc, &classes);
    strings_free(&sc.files);
    strings_free(&classes);
    free(sc.labels);
    free(sc.seen.dev);
    free(sc.seen.ino);
    if (st) {
        cnn_dataset_free(ds);
        return st;
    }
    *out = ds;
    return CNN_OK;
}

/* ---- CSV lists ---------------------------------------------------------- */

static bool is_index(const char *s)
{
    if (!*s || strlen(s) > 9)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static int find_name(char **names, int64_t n, const char *name)
{
    for (int64_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

cnn_status cnn_dataset_from_list(const char *csv_path, cnn_dataset_config cfg, cnn_dataset **out)
{
    if (!out || !csv_path)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "data set: csv_path and out are required");
    *out = NULL;
    cnn_dataset *ds;
    cnn_status st = cnn_dataset_alloc(&cfg, csv_path, &ds);
    if (st)
        return st;
    unsigned char *text = NULL;
    size_t size = 0;
    if ((st = cnn_file_read(csv_path, "CSV list", (uint64_t)1 << 32, &text, &size))) {
        cnn_dataset_free(ds);
        return st;
    }
    /* paths are relative to the list's directory */
    char *base = strdup(csv_path);
    if (!base) {
        free(text);
        cnn_dataset_free(ds);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory", csv_path);
    }
    char *slash = strrchr(base, '/');
    if (slash)
        *slash = '\0';
    strings paths = {0}, label_text = {0};
    int64_t line_no = 0;
    char *save = NULL;
    for (char *line = strtok_r((char *)text, "\n", &save); st == CNN_OK && line;
         line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        char *l = trim(line);
        if (!*l)
            continue;
        char *comma = strrchr(l, ',');
        if (!comma) {
            st = cnn_fail(CNN_ERR_FORMAT, "%s:%lld: expected \"path,label\", got \"%.60s\"",
                          csv_path, (long long)line_no, l);
            break;
        }
        *comma = '\0';
        char *path = trim(l), *label = trim(comma + 1);
        if (paths.count == 0 && line_no == 1 && strcmp(path, "path") == 0
            && strcmp(label, "label") == 0)
            continue; /* the header */
        if (!*path || !*label) {
            st = cnn_fail(CNN_ERR_FORMAT, "%s:%lld: expected \"path,label\", an empty %s",
                          csv_path, (long long)line_no, *path ? "label" : "path");
            break;
        }
        char *full = path[0] == '/' || !slash ? strdup(path) : join(base, path);
        if ((st = strings_push(&paths, full, csv_path)))
            break;
        st = strings_push(&label_text, strdup(label), csv_path);
    }
    free(text);
    free(base);
    /* class names: integer labels are indices, else the sorted names */
    bool numeric = true;
    for (int64_t i = 0; i < label_text.count; i++)
        numeric = numeric && is_index(label_text.items[i]);
    strings classes = {0};
    if (st == CNN_OK && label_text.count) {
        if (numeric) {
            long top = 0;
            for (int64_t i = 0; i < label_text.count; i++)
                if (atol(label_text.items[i]) + 1 > top)
                    top = atol(label_text.items[i]) + 1;
            if (top > CNN_MAX_CLASS_NAMES)
                st = cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                              "%s: label %ld is too large: at most %d classes are supported",
                              csv_path, top - 1, CNN_MAX_CLASS_NAMES);
            for (long k = 0; st == CNN_OK && k < top; k++) {
                char num[24];
                snprintf(num, sizeof num, "%ld", k);
                st = strings_push(&classes, strdup(num), csv_path);
            }
        } else {
            for (int64_t i = 0; st == CNN_OK && i < label_text.count; i++)
                if (find_name(classes.items, classes.count, label_text.items[i]) < 0)
                    st = strings_push(&classes, strdup(label_text.items[i]), csv_path);
            if (st == CNN_OK && classes.count > 1)
                qsort(classes.items, (size_t)classes.count, sizeof *classes.items, by_bytes);
        }
    }
    if (st == CNN_OK && classes.count > CNN_MAX_CLASS_NAMES)
        st = cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s: %lld classes, at most %d are supported",
                      csv_path, (long long)classes.count, CNN_MAX_CLASS_NAMES);
    scan sc = {.ds = ds};
    for (int64_t i = 0; st == CNN_OK && i < paths.count; i++) {
        int label = numeric ? atoi(label_text.items[i])
                            : find_name(classes.items, classes.count, label_text.items[i]);
        st = add_file(&sc, paths.items[i], label);
        paths.items[i] = NULL;
    }
    if (st == CNN_OK && paths.count == 0)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: no files listed (expected lines \"path,label\")",
                      csv_path);
    if (st == CNN_OK)
        st = take_files(ds, &sc, &classes);
    strings_free(&paths);
    strings_free(&label_text);
    strings_free(&classes);
    strings_free(&sc.files);
    free(sc.labels);
    if (st) {
        cnn_dataset_free(ds);
        return st;
    }
    *out = ds;
    return CNN_OK;
}
