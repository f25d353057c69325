/* Fuzz harness: image-folder data sets (cnn_dataset_from_directory and
 * cnn_dataset_from_list, then cnn_dataset_read, cnn_model_evaluate_dataset
 * and cnn_model_fit_dataset over them: listing, labels, shuffle and split,
 * the decoding in the calling thread within the data set's decode budget,
 * the decode threads, the stream and the memory budget).
 *
 * The input describes a small tree, written into a directory of its own
 * under /tmp (one per process, emptied before and after each input):
 *   4 header bytes (the data set's options: see ds_options_from), then
 *   records [kind][name length][name][content length, 2 bytes LE][content]:
 *     kind % 5 == 0  a class folder, name: the folder (odd bytes and UTF-8
 *                    kept; '/' and NUL become '_'); later records go in it
 *     kind % 5 == 1  a file in the current folder: name + an extension
 *                    picked by kind / 5 (.png, .JPG, .txt, ...), content:
 *                    its bytes (images from the seeds' formats)
 *     kind % 5 == 2  a subfolder of the current class; later files go there
 *     kind % 5 == 3  a symbolic link (name + extension) to ".", "..", or a
 *                    path made before (content byte 0 picks): loops, links
 *                    to files and folders, with and without follow_links
 *     kind % 5 == 4  CSV text: appended to list.csv, which the CSV mode
 *                    opens ('/' at a path's start and ".." are defused, so
 *                    a list names nothing outside the tree); a stray file
 *                    in the data directory's root otherwise
 * A failure must be a status a data set documents for bad content, with a
 * message; a data set that opens must have consistent counts, labels and
 * shapes; its first examples read one by one (cnn_dataset_read, decodes
 * within a 1 MiB max_decode_bytes: a header declaring a huge image is
 * refused, not allocated) must give pixels in range and the right targets;
 * and it must stream: evaluated and trained for an epoch (batches of two,
 * a tiny model under a small memory budget, one or two decode threads). */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

enum {
    DS_MAX_ENTRIES = 48,   /* records that make something */
    DS_MAX_NAME = 40,      /* bytes of a name taken from the input */
    DS_MAX_CLASSES = 64,   /* more: the model is not built (its Dense would be big) */
    DS_BUDGET = 8 << 20,   /* the model's memory budget: stream, queue, decodes */
    DS_DECODE = 1 << 20,   /* the data set's decode budget (cnn_dataset_read) */
    DS_READS = 4           /* examples read with cnn_dataset_read */
};

static char ds_root[64];   /* the process's own directory, made once */
static char ds_tree[96];   /* ds_root/t: the tree of one input */

/* Removes path and, if it is a directory (not a link to one), what it
 * holds; best effort: a leftover is removed next time. */
static void ds_remove_tree(const char *path)
{
    struct stat s;
    if (lstat(path, &s) != 0)
        return;
    if (S_ISDIR(s.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[1024];
            if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
                ds_remove_tree(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void ds_remove_root(void)
{
    if (ds_root[0]) {
        ds_remove_tree(ds_root);
        ds_root[0] = '\0';
    }
}

static bool ds_make_root(void)
{
    if (ds_root[0])
        return true;
    snprintf(ds_root, sizeof ds_root, "/tmp/cnn-fuzz-dataset-XXXXXX");
    if (!mkdtemp(ds_root)) {
        ds_root[0] = '\0';
        return false;
    }
    snprintf(ds_tree, sizeof ds_tree, "%s/t", ds_root);
    atexit(ds_remove_root);
    return true;
}

/* A name from the input: at most DS_MAX_NAME bytes, '/' and NUL replaced,
 * never empty, "." or "..". */
static void ds_take_name(const uint8_t *p, size_t n, char *out)
{
    if (n > DS_MAX_NAME)
        n = DS_MAX_NAME;
    for (size_t i = 0; i < n; i++)
        out[i] = p[i] == '/' || p[i] == '\0' ? '_' : (char)p[i];
    out[n] = '\0';
    if (n == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0) {
        memmove(out + 1, out, n + 1);
        out[0] = '_';
    }
}

enum { DS_PATH = 320 };

/* out = dir/name + ext, or false if it does not fit (then not made). */
static bool ds_join(char *out, const char *dir, const char *name, const char *ext)
{
    int k = snprintf(out, DS_PATH, "%s/%s%s", dir, name, ext);
    return k > 0 && k < DS_PATH;
}

static void ds_copy(char *out, const char *src)
{
    if (snprintf(out, DS_PATH, "%s", src) >= DS_PATH)
        out[0] = '\0';
}

static const char *const ds_extensions[] = {".png", ".jpg", ".jpeg", ".bmp", ".gif",
                                         ".PNG", ".JpG", ".txt",  ""};

static void ds_write_file(const char *path, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k <= 0)
            break;
        p += k;
        n -= (size_t)k;
    }
    close(fd);
}

/* CSV text with every path kept inside the tree: a '/' that starts a line's
 * path and every ".." are defused. */
static void ds_defuse_csv(char *s, size_t n)
{
    bool line_start = true;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') {
            line_start = true;
            continue;
        }
        if (line_start && (s[i] == ' ' || s[i] == '\t'))
            continue;
        if (line_start && s[i] == '/')
            s[i] = '_';
        line_start = false;
        if (s[i] == '.' && i + 1 < n && s[i + 1] == '.')
            s[i] = '_';
    }
}

typedef struct {
    bool csv;
    cnn_dataset_config cfg;
} ds_options;

/* Byte 0: bit 0 CSV mode, bits 1-2 label mode (3: int), bits 3-4 colour
 * mode (3: grayscale), bit 5 crop_to_aspect_ratio, bit 6 skip_bad_images,
 * bit 7 no_shuffle. Byte 1: rows 1..8 (bits 0-2), random_crop (bit 3).
 * Byte 2: cols 1..8 (bits 0-2), follow_links (3), a 0.5 split (4), a cache
 * (5), two decode threads (6), scale 1/127 (7). Byte 3: the seed. */
static ds_options ds_options_from(const uint8_t *h)
{
    ds_options o = {.csv = h[0] & 1};
    cnn_dataset_config *c = &o.cfg;
    c->label_mode = (cnn_label_mode)((h[0] >> 1) & 3);
    if (c->label_mode > CNN_LABEL_BINARY)
        c->label_mode = CNN_LABEL_INT;
    c->color_mode = (cnn_color_mode)((h[0] >> 3) & 3);
    if (c->color_mode > CNN_COLOR_RGBA)
        c->color_mode = CNN_COLOR_GRAYSCALE;
    c->crop_to_aspect_ratio = h[0] & 0x20;
    c->skip_bad_images = h[0] & 0x40;
    c->no_shuffle = h[0] & 0x80;
    c->image_size[0] = 1 + (h[1] & 7);
    c->image_size[1] = 1 + (h[2] & 7);
    if (h[1] & 8) {
        c->random_crop[0] = 1 + (c->image_size[0] - 1) / 2;
        c->random_crop[1] = c->image_size[1];
    }
    c->follow_links = h[2] & 8;
    c->cache_bytes = h[2] & 0x20 ? 4096 : 0;
    c->workers = h[2] & 0x40 ? 2 : 1;
    c->scale = h[2] & 0x80 ? 1.0f / 127 : 0;
    c->seed = h[3];
    c->max_decode_bytes = DS_DECODE;
    return o;
}

/* Writes the tree the records describe; returns false if the process's
 * directory cannot be made (nothing to test then). */
static bool ds_build_tree(const uint8_t *data, size_t size, bool csv)
{
    if (!ds_make_root())
        return false;
    ds_remove_tree(ds_tree);
    if (mkdir(ds_tree, 0755) != 0)
        return false;
    char made[DS_MAX_ENTRIES][DS_PATH];
    int n_made = 0;
    char class_dir[DS_PATH] = "", cur[DS_PATH], path[DS_PATH], name[DS_MAX_NAME + 2];
    ds_copy(cur, ds_tree);
    char *list = NULL;
    size_t list_len = 0;
    size_t at = 0;
    while (at + 2 <= size && n_made < DS_MAX_ENTRIES) {
        const uint8_t kind = data[at], name_len = data[at + 1];
        at += 2;
        size_t nl = name_len < size - at ? name_len : size - at;
        ds_take_name(data + at, nl, name);
        at += nl;
        size_t cl = 0;
        if (at + 2 <= size) {
            cl = (size_t)data[at] | (size_t)data[at + 1] << 8;
            at += 2;
        }
        if (cl > size - at)
            cl = size - at;
        const uint8_t *content = data + at;
        at += cl;
        const char *ext = ds_extensions[(kind / 5) % (sizeof ds_extensions / sizeof *ds_extensions)];
        switch (kind % 5) {
        case 0: /* a class folder; later records go in it */
            if (ds_join(class_dir, ds_tree, name, "")) {
                mkdir(class_dir, 0755);
                ds_copy(cur, class_dir);
                ds_copy(made[n_made++], class_dir);
            }
            break;
        case 1: /* a file */
            if (ds_join(path, cur, name, ext)) {
                ds_write_file(path, content, cl);
                ds_copy(made[n_made++], path);
            }
            break;
        case 2: /* a subfolder of the class (of the root before any class) */
            if (ds_join(path, class_dir[0] ? class_dir : ds_tree, name, "")) {
                mkdir(path, 0755);
                ds_copy(cur, path);
                ds_copy(made[n_made++], path);
            }
            break;
        case 3: { /* a link */
            int pick = cl ? content[0] % (n_made + 2) : 0;
            const char *target = pick == 0 ? "." : pick == 1 ? ".." : made[pick - 2];
            if (target[0] && ds_join(path, cur, name, ext) && symlink(target, path) == 0)
                ds_copy(made[n_made++], path);
            break;
        }
        default: /* CSV text, or a stray file in the root */
            if (csv) {
                char *grown = realloc(list, list_len + cl + 1);
                if (!grown)
                    break;
                list = grown;
                memcpy(list + list_len, content, cl);
                list_len += cl;
            } else if (ds_join(path, ds_tree, name, ext)) {
                ds_write_file(path, content, cl);
            }
            break;
        }
    }
    if (list)
        ds_defuse_csv(list, list_len);
    if (csv && ds_join(path, ds_tree, "list.csv", ""))
        ds_write_file(path, (const uint8_t *)(list ? list : ""), list_len);
    free(list);
    return true;
}

/* The statuses reading a data set of bad content may give. */
static const cnn_status ds_allowed[] = {CNN_ERR_FORMAT, CNN_ERR_IO, CNN_ERR_NO_MEMORY,
                                        CNN_ERR_INVALID_ARGUMENT};

static cnn_status ds_open_part(const ds_options *o, cnn_subset subset, cnn_dataset **out)
{
    cnn_dataset_config cfg = o->cfg;
    if (subset != CNN_SUBSET_ALL) {
        cfg.subset = subset;
        cfg.validation_split = 0.5f;
    }
    char list[128];
    snprintf(list, sizeof list, "%s/list.csv", ds_tree);
    cnn_status st = o->csv ? cnn_dataset_from_list(list, cfg, out)
                           : cnn_dataset_from_directory(ds_tree, cfg, out);
    if (st)
        fuzz_check_failure(st, *out, ds_allowed, 4);
    return st;
}

/* Counts, labels, names and shapes agree. */
static void ds_check_dataset(const ds_options *o, const cnn_dataset *ds)
{
    const int64_t n = cnn_dataset_count(ds);
    const int k = cnn_dataset_class_count(ds);
    FUZZ_CHECK(n >= 1 && k >= 1 && k <= CNN_MAX_CLASS_NAMES);
    FUZZ_CHECK(o->cfg.label_mode != CNN_LABEL_BINARY || k == 2);
    int64_t per_class = 0;
    for (int c = 0; c < k; c++) {
        FUZZ_CHECK(cnn_dataset_class_name(ds, c) != NULL);
        int64_t f = cnn_dataset_class_files(ds, c);
        FUZZ_CHECK(f >= 0 && f <= n);
        per_class += f;
    }
    FUZZ_CHECK(per_class == n);
    FUZZ_CHECK(cnn_dataset_class_name(ds, k) == NULL && cnn_dataset_class_name(ds, -1) == NULL);
    for (int64_t i = 0; i < n; i++) {
        const char *f = cnn_dataset_file(ds, i);
        int label = cnn_dataset_label(ds, i);
        FUZZ_CHECK(f != NULL && label >= 0 && label < k);
        /* every file is in the tree (the CSV list is defused) */
        FUZZ_CHECK(strncmp(f, ds_tree, strlen(ds_tree)) == 0);
    }
    cnn_shape s = cnn_dataset_element_shape(ds);
    const int rows = o->cfg.random_crop[0] ? o->cfg.random_crop[0] : o->cfg.image_size[0];
    const int cols = o->cfg.random_crop[1] ? o->cfg.random_crop[1] : o->cfg.image_size[1];
    const int ch = o->cfg.color_mode == CNN_COLOR_GRAYSCALE ? 1
                   : o->cfg.color_mode == CNN_COLOR_RGBA    ? 4
                                                            : 3;
    FUZZ_CHECK(s.rank == 3 && s.dims[0] == rows && s.dims[1] == cols && s.dims[2] == ch);
    const int64_t t = cnn_dataset_target_size(ds);
    FUZZ_CHECK(t == (o->cfg.label_mode == CNN_LABEL_CATEGORICAL ? k : 1));
}

/* The first examples, decoded in this thread: a failure is a documented
 * status with a message; a success gives pixels within 0..255 times the
 * scale and the example's target. A range past the end is refused. */
static void ds_check_read(const ds_options *o, cnn_dataset *ds)
{
    const cnn_shape s = cnn_dataset_element_shape(ds);
    const int64_t n = cnn_dataset_count(ds), t = cnn_dataset_target_size(ds);
    const int64_t row = (int64_t)s.dims[0] * s.dims[1] * s.dims[2];
    const float top = 255.0f * (o->cfg.scale > 0 ? o->cfg.scale : 1.0f / 255) * 1.001f + 1e-4f;
    float x[8 * 8 * 4];
    float *y = malloc((size_t)t * sizeof *y);
    FUZZ_CHECK(row <= (int64_t)(sizeof x / sizeof *x));
    if (!y)
        return;
    for (int64_t i = 0; i < n && i < DS_READS; i++) {
        cnn_status st = cnn_dataset_read(ds, i, 1, x, y);
        if (st) {
            fuzz_check_failure(st, NULL, ds_allowed, 4);
            continue;
        }
        for (int64_t j = 0; j < row; j++)
            FUZZ_CHECK(x[j] >= 0 && x[j] <= top);
        const int label = cnn_dataset_label(ds, i);
        if (o->cfg.label_mode == CNN_LABEL_CATEGORICAL)
            for (int64_t j = 0; j < t; j++)
                FUZZ_CHECK(y[j] == (j == label ? 1.0f : 0.0f));
        else
            FUZZ_CHECK(t == 1 && y[0] == (float)label);
    }
    free(y);
    FUZZ_CHECK(cnn_dataset_read(ds, n, 1, x, NULL) == CNN_ERR_INVALID_ARGUMENT);
}

static void ds_check_skipped(const cnn_dataset *ds)
{
    int64_t s = cnn_dataset_skipped(ds);
    FUZZ_CHECK(s >= 0 && s <= cnn_dataset_count(ds));
    for (int64_t i = 0; i < s; i++)
        FUZZ_CHECK(cnn_dataset_skipped_file(ds, i) != NULL);
}

/* Flatten, Dense to the targets, compiled for the label mode: softmax over
 * at least two units (the library refuses softmax over one), sigmoid for
 * binary, and for one-hot targets of a single class a linear unit and MSE. */
static cnn_model *ds_tiny_model(const ds_options *o, const cnn_dataset *ds)
{
    const int k = cnn_dataset_class_count(ds);
    cnn_model *m = NULL;
    cnn_loss loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    cnn_activation act = CNN_ACTIVATION_SOFTMAX;
    int units = k > 1 ? k : 2;
    if (o->cfg.label_mode == CNN_LABEL_BINARY) {
        loss = CNN_LOSS_BINARY_CROSSENTROPY;
        act = CNN_ACTIVATION_SIGMOID;
        units = 1;
    } else if (o->cfg.label_mode == CNN_LABEL_CATEGORICAL) {
        loss = k > 1 ? CNN_LOSS_CATEGORICAL_CROSSENTROPY : CNN_LOSS_MSE;
        act = k > 1 ? CNN_ACTIVATION_SOFTMAX : CNN_ACTIVATION_LINEAR;
        units = k;
    }
    cnn_status st;
    if ((st = cnn_model_create(&m, cnn_dataset_element_shape(ds))) || (st = cnn_model_set_seed(m, 1))
        || (st = cnn_model_set_threads(m, 1)) || (st = cnn_model_set_max_memory(m, DS_BUDGET))
        || (st = cnn_model_add_flatten(m, cnn_flatten()))
        || (st = cnn_model_add_dense(m, cnn_dense(.units = units, .activation = act)))
        || (st = cnn_model_compile(m, cnn_compile(.loss = loss, .optimizer = cnn_sgd())))) {
        /* the model fits every data set that opens: only memory may fail */
        FUZZ_CHECK(st == CNN_ERR_NO_MEMORY);
        cnn_model_free(m);
        return NULL;
    }
    return m;
}

static void ds_check_result(cnn_status st)
{
    if (st)
        fuzz_check_failure(st, NULL, ds_allowed, 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    const ds_options o = ds_options_from(data);
    if (!ds_build_tree(data + 4, size - 4, o.csv))
        return 0;
    const bool split = data[2] & 0x10;
    cnn_dataset *train = NULL, *val = NULL;
    if (ds_open_part(&o, split ? CNN_SUBSET_TRAINING : CNN_SUBSET_ALL, &train) == CNN_OK) {
        ds_check_dataset(&o, train);
        ds_check_read(&o, train);
        if (split && ds_open_part(&o, CNN_SUBSET_VALIDATION, &val) == CNN_OK) {
            ds_check_dataset(&o, val);
            FUZZ_CHECK(cnn_dataset_class_count(val) == cnn_dataset_class_count(train));
        }
    }
    cnn_model *m = train && cnn_dataset_class_count(train) <= DS_MAX_CLASSES
                       ? ds_tiny_model(&o, train)
                       : NULL;
    if (m) {
        double loss = -1, acc = -1;
        cnn_status st = cnn_model_evaluate_dataset(m, train, 2, &loss, &acc);
        ds_check_result(st);
        if (!st)
            FUZZ_CHECK(loss >= 0 && acc >= 0 && acc <= 1);
        ds_check_skipped(train);
        cnn_history *h = NULL;
        st = cnn_model_fit_dataset(m, train, val, cnn_fit(.epochs = 1, .batch_size = 2, .seed = 3),
                                   &h);
        ds_check_result(st);
        cnn_history_free(h);
        ds_check_skipped(train);
        if (val)
            ds_check_skipped(val);
    }
    cnn_model_free(m);
    cnn_dataset_free(val);
    cnn_dataset_free(train);
    ds_remove_tree(ds_tree);
    return 0;
}
