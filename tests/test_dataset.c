/* Data sets from folders and lists: Keras's listing order, shuffle and
 * split; decoding and resizing; the stream's determinism. Images are made
 * here with cnn_image_save_png. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dataset.h"
#include "test.h"

static void mkdirs(const char *rel)
{
    char part[512];
    snprintf(part, sizeof part, "%s", rel);
    for (char *p = part; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(test_tmp(part), 0755);
            *p = '/';
        }
    mkdir(test_tmp(part), 0755);
}

static void write_text(const char *rel, const char *text)
{
    FILE *f = fopen(test_tmp(rel), "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A rows x cols x channels PNG whose pixels start at value v. */
static void write_png(const char *rel, int rows, int cols, int channels, int v)
{
    uint8_t *px = malloc((size_t)rows * cols * channels);
    for (int i = 0; px && i < rows * cols * channels; i++)
        px[i] = (uint8_t)(v + i);
    CHECK(px && cnn_image_save_png(test_tmp(rel), px, rows, cols, channels) == CNN_OK);
    free(px);
}

/* NumPy 1.24: x = list(range(n)); np.random.RandomState(seed).shuffle(x) */
static void test_numpy_shuffle(void)
{
    int64_t p[20];
    const int64_t want10[] = {6, 3, 0, 4, 5, 2, 1, 9, 8, 7};
    CHECK_OK(cnn_numpy_shuffle_permutation(1337, 10, p));
    CHECK(memcmp(p, want10, sizeof want10) == 0);
    const int64_t want20[] = {0, 17, 15, 1, 8, 5, 11, 3, 18, 16, 13, 2, 9, 19, 4, 12, 7, 10, 14, 6};
    CHECK_OK(cnn_numpy_shuffle_permutation(42, 20, p));
    CHECK(memcmp(p, want20, sizeof want20) == 0);
    const int64_t want7[] = {6, 2, 1, 3, 0, 5, 4};
    CHECK_OK(cnn_numpy_shuffle_permutation(0, 7, p));
    CHECK(memcmp(p, want7, sizeof want7) == 0);
    int64_t *big = malloc(70000 * sizeof *big);
    CHECK(big && cnn_numpy_shuffle_permutation(7, 70000, big) == CNN_OK);
    CHECK(big && big[0] == 7653 && big[1] == 66274 && big[4] == 43166 && big[69995] == 53459
          && big[69999] == 61615);
    free(big);
}

/* The folder "tree": classes cat, dog, empty (no images), .hidden (not a
 * class), a stray top-level file; cat has nested folders whose sort order
 * is byte order of the whole path ("sub-x" before "sub/deeper"). */
static void make_tree(void)
{
    mkdirs("tree/dog");
    mkdirs("tree/cat/sub/deeper");
    mkdirs("tree/cat/sub-x");
    mkdirs("tree/empty");
    mkdirs("tree/.hidden");
    write_text("tree/README.txt", "not a class\n");
    write_png("tree/.hidden/h.png", 2, 2, 1, 0);
    write_png("tree/cat/b.png", 4, 4, 1, 10);
    write_png("tree/cat/A.PNG", 4, 4, 1, 20);
    write_png("tree/cat/sub/deeper/d.png", 4, 4, 3, 30);
    write_png("tree/cat/sub-x/x.png", 2, 6, 1, 40);
    write_png("tree/cat/sub/s.png", 8, 8, 4, 50);
    write_text("tree/cat/.DS_Store", "junk");
    write_text("tree/cat/notes.txt", "junk");
    write_png("tree/dog/z.png", 4, 4, 1, 60);
    write_png("tree/dog/y.png", 4, 4, 1, 70);
}

static bool ends_with(const char *s, const char *tail)
{
    size_t a = s ? strlen(s) : 0, b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

static void test_listing(void)
{
    cnn_dataset *ds = NULL;
    CHECK_OK(
        cnn_dataset_from_directory(test_tmp("tree"), cnn_dataset_options(.no_shuffle = true), &ds));
    if (!ds)
        return;
    CHECK(cnn_dataset_class_count(ds) == 3);
    CHECK(strcmp(cnn_dataset_class_name(ds, 0), "cat") == 0);
    CHECK(strcmp(cnn_dataset_class_name(ds, 1), "dog") == 0);
    CHECK(strcmp(cnn_dataset_class_name(ds, 2), "empty") == 0);
    CHECK(cnn_dataset_class_files(ds, 0) == 5 && cnn_dataset_class_files(ds, 1) == 2
          && cnn_dataset_class_files(ds, 2) == 0);
    CHECK(cnn_dataset_count(ds) == 7);
    /* os.walk roots sorted as strings, then names: 'A' < 'b'; "sub" <
     * "sub-x" < "sub/deeper" */
    const char *want[] = {"cat/A.PNG", "cat/b.png", "cat/sub/s.png", "cat/sub-x/x.png",
                          "cat/sub/deeper/d.png", "dog/y.png", "dog/z.png"};
    for (int i = 0; i < 7; i++) {
        CHECK(ends_with(cnn_dataset_file(ds, i), want[i]));
        CHECK(cnn_dataset_label(ds, i) == (i < 5 ? 0 : 1));
    }
    cnn_shape s = cnn_dataset_element_shape(ds);
    CHECK(s.dims[0] == 256 && s.dims[1] == 256 && s.dims[2] == 3); /* Keras's defaults */
    CHECK(cnn_dataset_target_size(ds) == 1);
    cnn_dataset_free(ds);

    /* shuffled with NumPy's RandomState(1337) and split 0.3: int(0.3 * 7)
     * = 2 validate; perm of 7 with seed 1337 from NumPy */
    int64_t perm[7];
    CHECK_OK(cnn_numpy_shuffle_permutation(1337, 7, perm));
    cnn_dataset *tr = NULL, *va = NULL;
    CHECK_OK(cnn_dataset_from_directory(test_tmp("tree"),
                                        cnn_dataset_options(.seed = 1337, .validation_split = 0.3f,
                                                            .subset = CNN_SUBSET_TRAINING,
                                                            .label_mode = CNN_LABEL_CATEGORICAL),
                                        &tr));
    CHECK_OK(cnn_dataset_from_directory(test_tmp("tree"),
                                        cnn_dataset_options(.seed = 1337, .validation_split = 0.3f,
                                                            .subset = CNN_SUBSET_VALIDATION),
                                        &va));
    CHECK(cnn_dataset_count(tr) == 5 && cnn_dataset_count(va) == 2);
    for (int i = 0; tr && va && i < 7; i++) {
        const char *f = i < 5 ? cnn_dataset_file(tr, i) : cnn_dataset_file(va, i - 5);
        CHECK(ends_with(f, want[perm[i]]));
    }
    CHECK(cnn_dataset_target_size(tr) == 3); /* one-hot over 3 classes */
    cnn_dataset_free(tr);
    cnn_dataset_free(va);

    /* errors */
    CHECK_FAILS(cnn_dataset_from_directory(
                    test_tmp("tree"),
                    cnn_dataset_options(.validation_split = 0.1f, .subset = CNN_SUBSET_TRAINING),
                    &ds),
                CNN_ERR_INVALID_ARGUMENT, "leaves 7 for training and 0 for validation");
    CHECK(ds == NULL);
    CHECK_FAILS(cnn_dataset_from_directory(test_tmp("tree"),
                                           cnn_dataset_options(.validation_split = 0.5f), &ds),
                CNN_ERR_INVALID_ARGUMENT, "validation_split and subset");
    CHECK_FAILS(cnn_dataset_from_directory(
                    test_tmp("tree"), cnn_dataset_options(.label_mode = CNN_LABEL_BINARY), &ds),
                CNN_ERR_INVALID_ARGUMENT, "exactly 2 classes, found 3");
    CHECK_FAILS(cnn_dataset_from_directory(test_tmp("tree/empty"), cnn_dataset_options(0), &ds),
                CNN_ERR_INVALID_ARGUMENT, "no class folders");
    CHECK_FAILS(
        cnn_dataset_from_directory(test_tmp("tree/README.txt"), cnn_dataset_options(0), &ds),
        CNN_ERR_INVALID_ARGUMENT, "expected a directory");
    CHECK_FAILS(cnn_dataset_from_directory(test_tmp("missing"), cnn_dataset_options(0), &ds),
                CNN_ERR_IO, "missing");
    mkdirs("noimages/a");
    write_text("noimages/a/x.txt", "x");
    CHECK_FAILS(cnn_dataset_from_directory(test_tmp("noimages"), cnn_dataset_options(0), &ds),
                CNN_ERR_INVALID_ARGUMENT, "no image files found");
}

/* A single class is a data set (Keras allows it); binary needs two. */
static void test_single_class(void)
{
    mkdirs("one/only");
    write_png("one/only/a.png", 3, 3, 1, 0);
    cnn_dataset *ds = NULL;
    CHECK_OK(cnn_dataset_from_directory(test_tmp("one"), cnn_dataset_options(0), &ds));
    CHECK(cnn_dataset_class_count(ds) == 1 && cnn_dataset_count(ds) == 1);
    cnn_dataset_free(ds);
    CHECK_FAILS(cnn_dataset_from_directory(
                    test_tmp("one"), cnn_dataset_options(.label_mode = CNN_LABEL_BINARY), &ds),
                CNN_ERR_INVALID_ARGUMENT, "found 1");
}

/* Symlinks: a link to a directory is entered only with follow_links, and
 * a loop of links ends at the first directory seen twice. */
static void test_links(void)
{
    mkdirs("links/a/real");
    mkdirs("links/b");
    write_png("links/a/real/r.png", 2, 2, 1, 0);
    write_png("links/b/q.png", 2, 2, 1, 0);
    CHECK(symlink("../b", test_tmp("links/a/to_b")) == 0);
    CHECK(symlink("..", test_tmp("links/a/real/loop")) == 0);
    cnn_dataset *ds = NULL;
    CHECK_OK(cnn_dataset_from_directory(test_tmp("links"), cnn_dataset_options(.no_shuffle = true),
                                        &ds));
    CHECK(cnn_dataset_class_files(ds, 0) == 1);
    cnn_dataset_free(ds);
    CHECK_OK(cnn_dataset_from_directory(
        test_tmp("links"), cnn_dataset_options(.no_shuffle = true, .follow_links = true), &ds));
    /* a/real/r.png and a/to_b/q.png; the loop back to a is not re-entered */
    CHECK(cnn_dataset_class_files(ds, 0) == 2);
    CHECK(ends_with(cnn_dataset_file(ds, 1), "a/to_b/q.png"));
    cnn_dataset_free(ds);
}

static void test_list(void)
{
    mkdirs("list/img");
    write_png("list/img/p.png", 2, 2, 1, 0);
    write_png("list/img/q.png", 2, 2, 1, 9);
    write_text("list/names.csv", "path,label\nimg/p.png,zebra\r\n\nimg/q.png,ant\n");
    cnn_dataset *ds = NULL;
    CHECK_OK(cnn_dataset_from_list(test_tmp("list/names.csv"),
                                   cnn_dataset_options(.no_shuffle = true, .image_size = {2, 2}),
                                   &ds));
    CHECK(cnn_dataset_count(ds) == 2 && cnn_dataset_class_count(ds) == 2);
    CHECK(ds && strcmp(cnn_dataset_class_name(ds, 0), "ant") == 0);
    CHECK(cnn_dataset_label(ds, 0) == 1 && cnn_dataset_label(ds, 1) == 0);
    CHECK(ends_with(cnn_dataset_file(ds, 0), "list/img/p.png"));
    float x[2 * 12], y[2];
    CHECK_OK(cnn_dataset_read(ds, 0, 2, x, y));
    CHECK(x[0] == 0.0f && x[3] == 1.0f / 255.0f && x[12] == 9.0f / 255.0f && y[0] == 1 && y[1] == 0);
    cnn_dataset_free(ds);

    write_text("list/ints.csv", "img/p.png,3\nimg/q.png,0\n");
    CHECK_OK(cnn_dataset_from_list(test_tmp("list/ints.csv"),
                                   cnn_dataset_options(.no_shuffle = true), &ds));
    CHECK(cnn_dataset_class_count(ds) == 4 && cnn_dataset_label(ds, 0) == 3);
    cnn_dataset_free(ds);

    /* the label follows the last comma: a path may hold commas */
    write_png("list/img/a,b.png", 2, 2, 1, 0);
    write_text("list/comma.csv", "img/a,b.png,cat\n");
    CHECK_OK(cnn_dataset_from_list(test_tmp("list/comma.csv"),
                                   cnn_dataset_options(.image_size = {2, 2}), &ds));
    CHECK(ends_with(cnn_dataset_file(ds, 0), "img/a,b.png") && cnn_dataset_class_count(ds) == 1);
    CHECK_OK(cnn_dataset_read(ds, 0, 1, x, y));
    cnn_dataset_free(ds);

    write_text("list/bad.csv", "img/p.png,3\nno comma here\n");
    CHECK_FAILS(cnn_dataset_from_list(test_tmp("list/bad.csv"), cnn_dataset_options(0), &ds),
                CNN_ERR_FORMAT, "bad.csv:2: expected \"path,label\"");
    write_text("list/empty.csv", "path,label\n");
    CHECK_FAILS(cnn_dataset_from_list(test_tmp("list/empty.csv"), cnn_dataset_options(0), &ds),
                CNN_ERR_FORMAT, "no files listed");
}

/* Pixels: exact when no resize is needed; the half-pixel bilinear resize
 * (TensorFlow's) otherwise; grey repeated into RGB; the centre crop. */
static void test_decode_resize(void)
{
    mkdirs("px/k");
    uint8_t g[16];
    for (int i = 0; i < 16; i++)
        g[i] = (uint8_t)(i * 10);
    CHECK_OK(cnn_image_save_png(test_tmp("px/k/g.png"), g, 4, 4, 1));
    cnn_dataset *ds = NULL;
    CHECK_OK(cnn_dataset_from_directory(
        test_tmp("px"),
        cnn_dataset_options(.image_size = {2, 2}, .color_mode = CNN_COLOR_GRAYSCALE, .scale = 1),
        &ds));
    float x[12], y[1];
    CHECK_OK(cnn_dataset_read(ds, 0, 1, x, y));
    /* output (0, 0) reads input (0.5, 0.5): the mean of 0, 10, 40, 50 */
    CHECK(x[0] == 25.0f && x[1] == 45.0f && x[2] == 105.0f && x[3] == 125.0f);
    cnn_dataset_free(ds);
    CHECK_OK(
        cnn_dataset_from_directory(test_tmp("px"), cnn_dataset_options(.image_size = {4, 4}), &ds));
    float rgb[48];
    CHECK_OK(cnn_dataset_read(ds, 0, 1, rgb, y));
    CHECK(rgb[15] == 50.0f / 255.0f && rgb[16] == 50.0f / 255.0f && rgb[17] == 50.0f / 255.0f);
    cnn_dataset_free(ds);
    /* crop_to_aspect_ratio: 4x4 to 1x2 crops rows 1..2 (int((4-2)/2) = 1) */
    CHECK_OK(cnn_dataset_from_directory(
        test_tmp("px"),
        cnn_dataset_options(.image_size = {1, 2}, .color_mode = CNN_COLOR_GRAYSCALE,
                            .crop_to_aspect_ratio = true, .scale = 1),
        &ds));
    CHECK_OK(cnn_dataset_read(ds, 0, 1, x, y));
    /* the 2x4 window rows 1, 2 resized to 1x2: (40+50+80+90)/4 = 65, 85 */
    CHECK(x[0] == 65.0f && x[1] == 85.0f);
    cnn_dataset_free(ds);
}

/* Records every batch of a stream. */
static float *run_stream(cnn_dataset *ds, const int64_t *order, int64_t n, int batch, int workers,
                         int64_t first, cnn_dataset_transform_fn fn, int *rows_total)
{
    const int64_t row = ds->x_row;
    float *all = calloc((size_t)(n * row), sizeof(float));
    cnn_dataset_stream_config c = {.order = order, .count = n, .batch = batch, .first_batch = first,
                                   .workers = workers, .queue = 2, .transform = fn};
    CHECK_OK(cnn_dataset_stream_start(ds, &c));
    int64_t at_row = first * batch;
    *rows_total = 0;
    for (int64_t b = first; b < (n + batch - 1) / batch; b++) {
        const float *x, *y;
        int rows;
        CHECK_OK(cnn_dataset_stream_next(ds, &x, &y, &rows));
        memcpy(all + at_row * row, x, (size_t)(rows * row) * sizeof(float));
        at_row += rows;
        *rows_total += rows;
    }
    const float *x, *y;
    int rows;
    CHECK_FAILS(cnn_dataset_stream_next(ds, &x, &y, &rows), CNN_ERR_STATE, "no batch after");
    cnn_dataset_stream_stop(ds);
    return all;
}

static void mark(void *user, float *x, int64_t batch, int row, float *scratch)
{
    (void)user;
    (void)scratch;
    x[0] += (float)(batch * 1000 + row);
}

static void test_stream(void)
{
    mkdirs("many/a");
    mkdirs("many/b");
    for (int i = 0; i < 23; i++) {
        char name[64];
        snprintf(name, sizeof name, "many/%c/%02d.png", i % 2 ? 'b' : 'a', i);
        write_png(name, 5 + i % 3, 6, i % 2 ? 3 : 1, i);
    }
    cnn_dataset *ds = NULL;
    CHECK_OK(cnn_dataset_from_directory(test_tmp("many"),
                                        cnn_dataset_options(.image_size = {4, 4}, .seed = 5), &ds));
    if (!ds)
        return;
    int64_t order[23];
    CHECK_OK(cnn_numpy_shuffle_permutation(99, 23, order));
    int r1, r4, rr;
    float *one = run_stream(ds, order, 23, 4, 1, 0, mark, &r1);
    float *four = run_stream(ds, order, 23, 4, 4, 0, mark, &r4);
    CHECK(r1 == 23 && r4 == 23);
    CHECK(one && four && memcmp(one, four, 23 * 48 * sizeof(float)) == 0);
    /* the same as reading each example in the calling thread */
    float x[48];
    CHECK_OK(cnn_dataset_read(ds, order[9], 1, x, NULL));
    x[0] += 2001; /* batch 2, row 1 */
    CHECK(one && memcmp(one + 9 * 48, x, sizeof x) == 0);
    /* resuming at batch 3 gives the same batches from there */
    float *resumed = run_stream(ds, order, 23, 4, 3, 3, mark, &rr);
    CHECK(rr == 23 - 12);
    CHECK(resumed && one && memcmp(resumed + 12 * 48, one + 12 * 48, 11 * 48 * sizeof(float)) == 0);
    free(one);
    free(four);
    free(resumed);
    /* the cache gives the same values */
    cnn_dataset_free(ds);
    CHECK_OK(cnn_dataset_from_directory(
        test_tmp("many"),
        cnn_dataset_options(.image_size = {4, 4}, .seed = 5, .cache_bytes = 10 * 48 * 4), &ds));
    one = run_stream(ds, order, 23, 4, 2, 0, NULL, &r1);
    four = run_stream(ds, order, 23, 4, 2, 0, NULL, &r4);
    CHECK(ds && ds->cache_used == 10 * 48 * 4);
    CHECK(one && four && memcmp(one, four, 23 * 48 * sizeof(float)) == 0);
    free(one);
    free(four);
    cnn_dataset_free(ds);
}

/* Keras's RandomCrop on the stream: the centre window outside training,
 * random windows in the stream drawn from its key, the same whatever the
 * number of threads. */
static void test_random_crop(void)
{
    mkdirs("crop/k");
    uint8_t g[64];
    for (int i = 0; i < 64; i++)
        g[i] = (uint8_t)i;
    for (int f = 0; f < 6; f++) {
        char name[64];
        snprintf(name, sizeof name, "crop/k/%d.png", f);
        CHECK_OK(cnn_image_save_png(test_tmp(name), g, 8, 8, 1));
    }
    cnn_dataset *ds = NULL;
    CHECK_FAILS(cnn_dataset_from_directory(
                    test_tmp("crop"),
                    cnn_dataset_options(.image_size = {8, 8}, .random_crop = {9, 2}), &ds),
                CNN_ERR_INVALID_ARGUMENT, "random_crop 9x2 must be");
    CHECK_OK(cnn_dataset_from_directory(
        test_tmp("crop"),
        cnn_dataset_options(.image_size = {8, 8}, .random_crop = {3, 2},
                            .color_mode = CNN_COLOR_GRAYSCALE, .scale = 1, .no_shuffle = true),
        &ds));
    if (!ds)
        return;
    cnn_shape s = cnn_dataset_element_shape(ds);
    CHECK(s.dims[0] == 3 && s.dims[1] == 2 && s.dims[2] == 1);
    float x[6];
    CHECK_OK(cnn_dataset_read(ds, 0, 1, x, NULL));
    /* centre: rows 2..4, cols 3..4 */
    CHECK(x[0] == 19 && x[1] == 20 && x[2] == 27 && x[5] == 36);
    int64_t order[6] = {0, 1, 2, 3, 4, 5};
    float runs[2][36];
    for (int w = 0; w < 2; w++) {
        cnn_dataset_stream_config c = {.order = order, .count = 6, .batch = 4, .workers = 1 + 2 * w,
                                       .crop_key = 77};
        CHECK_OK(cnn_dataset_stream_start(ds, &c));
        const float *bx, *by;
        int rows;
        CHECK_OK(cnn_dataset_stream_next(ds, &bx, &by, &rows));
        memcpy(runs[w], bx, 24 * sizeof(float));
        CHECK_OK(cnn_dataset_stream_next(ds, &bx, &by, &rows));
        memcpy(runs[w] + 24, bx, 12 * sizeof(float));
        cnn_dataset_stream_stop(ds);
    }
    CHECK(memcmp(runs[0], runs[1], sizeof runs[0]) == 0);
    /* every window is a 3x2 block of the image, not all at one place */
    int distinct = 0;
    for (int e = 0; e < 6; e++) {
        const float *w = runs[0] + e * 6;
        int r0 = (int)w[0] / 8, c0 = (int)w[0] % 8;
        CHECK(r0 <= 5 && c0 <= 6 && w[1] == w[0] + 1 && w[2] == w[0] + 8 && w[5] == w[0] + 17);
        distinct += e > 0 && w[0] != runs[0][0];
    }
    CHECK(distinct > 0);
    cnn_dataset_free(ds);
}

int main(void)
{
    CHECK(test_tmpdir("test_dataset") != NULL);
    test_numpy_shuffle();
    make_tree();
    test_listing();
    test_single_class();
    test_links();
    test_list();
    test_decode_resize();
    test_stream();
    test_random_crop();
    CHECK(test_tmpdir_remove());
    return test_finish("test_dataset");
}
