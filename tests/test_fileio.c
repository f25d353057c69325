/* Files the library writes and reads, through the one writer and the one
 * reader of core/fileio.c:
 * 1. Modes: every writer (.cnn, .keras, .h5, PNG, cnn_file_write_atomic)
 *    creates 0644 under umask 022 and 0600 under umask 077, and a replaced
 *    file keeps its mode (it used to be 0600 always).
 * 2. Only a regular file is ever replaced: a device node made here with
 *    mknod, a FIFO, a directory, a symlink to the device or to nothing are
 *    refused by every writer and left as they were, with no temporary file
 *    left behind; a symlink to a regular file is followed and stays.
 * 3. A failed write (a full disk, by RLIMIT_FSIZE) leaves the old file.
 * 4. The reader: a FIFO is refused without hanging, a directory and a
 *    device are refused, the size cap holds to the byte. */
#define _GNU_SOURCE /* mknod, makedev */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/fileio.h"
#include "test.h"

static char dir[] = "/tmp/cnn_test_fileio_XXXXXX";
static cnn_model *model;

static const char *in_dir(const char *name) { return test_path(dir, name); }

/* Entries of dir whose name contains ".tmp." (temporary files left over). */
static int leftovers(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

static mode_t mode_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_mode & 07777 : (mode_t)-1;
}

static cnn_status save_cnn(const char *p) { return cnn_model_save(model, p); }
static cnn_status save_keras(const char *p) { return cnn_model_save_keras(model, p); }
static cnn_status save_h5(const char *p) { return cnn_model_save_keras_h5(model, p); }
static cnn_status save_bytes(const char *p) { return cnn_file_write_atomic(p, "new\n", 4); }
static cnn_status save_png(const char *p)
{
    static const uint8_t px[2 * 2 * 3] = {0, 50, 100, 150, 200, 250};
    return cnn_image_save_png(p, px, 2, 2, 3);
}

static const struct {
    const char *name;
    cnn_status (*save)(const char *path);
} writers[] = {
    {"m.cnn", save_cnn},  {"m.keras", save_keras}, {"m.h5", save_h5},
    {"p.png", save_png},  {"b.txt", save_bytes},
};
enum { N_WRITERS = sizeof writers / sizeof writers[0] };

/* ---- 1. modes ---- */

static void test_modes(void)
{
    const mode_t masks[] = {022, 077, 027};
    for (int w = 0; w < N_WRITERS; w++) {
        const char *p = in_dir(writers[w].name);
        for (int k = 0; k < 3; k++) {
            unlink(p);
            umask(masks[k]);
            CHECK_OK(writers[w].save(p));
            mode_t got = mode_of(p), want = 0666 & ~masks[k];
            if (got != want)
                fprintf(stderr, "%s under umask %03o: mode %03o, expected %03o\n",
                        writers[w].name, (unsigned)masks[k], (unsigned)got, (unsigned)want);
            CHECK(got == want);
        }
        /* replacing keeps the file's own mode, whatever the umask */
        CHECK(chmod(p, 0640) == 0);
        umask(022);
        CHECK_OK(writers[w].save(p));
        CHECK(mode_of(p) == 0640);
        CHECK(unlink(p) == 0);
    }
    umask(022);
    CHECK(leftovers() == 0);
}

/* ---- 2. only regular files are replaced ---- */

typedef struct {
    const char *name;
    mode_t type; /* what lstat must still say afterwards */
    const char *message;
} special;

static void test_never_replace_special(void)
{
    /* Our own device node, the numbers of /dev/null: never a real device
     * path as a target. Making one needs root (or CAP_MKNOD). */
    bool have_dev = mknod(in_dir("dev"), S_IFCHR | 0600, makedev(1, 3)) == 0;
    if (!have_dev)
        fprintf(stderr, "test_fileio: mknod: %s; the device node cases are skipped\n",
                strerror(errno));
    CHECK(mkfifo(in_dir("fifo"), 0600) == 0);
    CHECK(mkdir(in_dir("sub"), 0755) == 0);
    CHECK(symlink("dev", in_dir("link_dev")) == 0);
    CHECK(symlink("nothing", in_dir("dangling")) == 0);
    const special cases[] = {
        {"dev", S_IFCHR, "dev: expected a regular file to replace, got a character device;"
                         " it is left untouched"},
        {"link_dev", S_IFLNK, "link_dev: expected a regular file to replace, got a symbolic link"
                              " to a character device"},
        {"fifo", S_IFIFO, "fifo: expected a regular file to replace, got a FIFO"},
        {"sub", S_IFDIR, "sub: expected a regular file to replace, got a directory"},
        {"dangling", S_IFLNK, "dangling: refusing to replace a symbolic link that cannot be"
                              " followed: No such file or directory"},
    };
    /* a writer that opened the FIFO would hang: fail instead */
    alarm(60);
    for (int w = 0; w < N_WRITERS; w++)
        for (int c = have_dev ? 0 : 2; c < 5; c++) {
            const char *p = in_dir(cases[c].name);
            CHECK_FAILS(writers[w].save(p), CNN_ERR_IO, cases[c].message);
            struct stat sb;
            CHECK(lstat(p, &sb) == 0 && (sb.st_mode & S_IFMT) == cases[c].type);
            if (cases[c].type == S_IFCHR)
                CHECK(sb.st_rdev == makedev(1, 3));
        }
    alarm(0);
    CHECK(leftovers() == 0);
    CHECK(access(in_dir("nothing"), F_OK) != 0); /* the dangling link made nothing */

    /* A symlink to a regular file: the file is replaced, the link stays. */
    const char *real = in_dir("real.txt"), *link = in_dir("link.txt");
    CHECK(cnn_file_write_atomic(real, "old\n", 4) == CNN_OK && chmod(real, 0640) == 0);
    CHECK(symlink("real.txt", link) == 0);
    CHECK_OK(cnn_file_write_atomic(link, "new!\n", 5));
    struct stat sb;
    CHECK(lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode));
    CHECK(lstat(real, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 5);
    CHECK(mode_of(real) == 0640);
    CHECK(leftovers() == 0);
}

/* ---- 3. a failed write leaves the old file ---- */

static cnn_status write_big(void *path)
{
    static char big[8192];
    memset(big, 'x', sizeof big);
    return cnn_file_write_atomic(path, big, sizeof big);
}

static void test_failure_keeps_old(void)
{
    const char *p = in_dir("keep.txt");
    CHECK_OK(cnn_file_write_atomic(p, "old\n", 4));
    char msg[512];
    cnn_status st = test_full_disk(1000, write_big, (void *)p, msg, sizeof msg);
    CHECK(st == CNN_ERR_IO && strstr(msg, "keep.txt: cannot write the temporary file: File too"
                                          " large"));
    unsigned char *text = NULL;
    size_t size = 0;
    CHECK_OK(cnn_file_read(p, "text file", 100, &text, &size));
    CHECK(size == 4 && text && memcmp(text, "old\n", 4) == 0);
    free(text);
    CHECK(leftovers() == 0);

    CHECK_FAILS(cnn_file_write_atomic(in_dir("no/such/dir/x"), "a", 1), CNN_ERR_IO,
                "x: cannot create a temporary file beside it: No such file or directory");
    CHECK_FAILS(cnn_file_write_atomic(NULL, "a", 1), CNN_ERR_INVALID_ARGUMENT, "a path is required");
    CHECK_FAILS(cnn_file_write_atomic(p, NULL, 1), CNN_ERR_INVALID_ARGUMENT, "a path is required");
    CHECK_OK(cnn_file_write_atomic(p, NULL, 0)); /* empty is a file too */
    CHECK(mode_of(p) != (mode_t)-1);
}

/* ---- 4. the reader ---- */

static void test_reader(void)
{
    unsigned char *buf = NULL;
    size_t size = 0;
    alarm(20); /* a reader that blocked on the FIFO would hang: fail instead */
    CHECK_FAILS(cnn_file_read(in_dir("fifo"), "test file", 100, &buf, &size), CNN_ERR_IO,
                "fifo: expected a regular test file, got a FIFO");
    cnn_model *m = NULL;
    CHECK_FAILS(cnn_model_load_keras(in_dir("fifo"), &m, NULL), CNN_ERR_IO,
                "fifo: expected a regular Keras file, got a FIFO");
    alarm(0);
    CHECK(buf == NULL && m == NULL);
    CHECK_FAILS(cnn_file_read(in_dir("sub"), "test file", 100, &buf, &size), CNN_ERR_IO,
                "sub: expected a regular test file, got a directory");
    if (access(in_dir("dev"), F_OK) == 0)
        CHECK_FAILS(cnn_file_read(in_dir("dev"), "test file", 100, &buf, &size), CNN_ERR_IO,
                    "dev: expected a regular test file, got a character device");
    CHECK_FAILS(cnn_file_read(in_dir("missing"), "test file", 100, &buf, &size), CNN_ERR_IO,
                "missing: cannot open: No such file or directory");

    /* the cap holds to the byte; the buffer ends in a NUL */
    char text[101];
    memset(text, 'a', sizeof text);
    const char *p = in_dir("cap.txt");
    CHECK_OK(cnn_file_write_atomic(p, text, 100));
    CHECK_OK(cnn_file_read(p, "test file", 100, &buf, &size));
    CHECK(size == 100 && buf && buf[99] == 'a' && buf[100] == '\0');
    free(buf);
    CHECK_OK(cnn_file_write_atomic(p, text, 101));
    CHECK_FAILS(cnn_file_read(p, "test file", 100, &buf, &size), CNN_ERR_FORMAT,
                "cap.txt: the test file is 101 bytes, more than the 100 allowed");
    CHECK(buf == NULL);
    CHECK_OK(cnn_file_write_atomic(p, "", 0));
    CHECK_OK(cnn_file_read(p, "test file", 100, &buf, &size));
    CHECK(size == 0 && buf && buf[0] == '\0');
    free(buf);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    CHECK_OK(cnn_model_create(&model, cnn_shape_hwc(4, 4, 1)));
    CHECK_OK(cnn_model_add_flatten(model, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(model, cnn_dense(.units = 2)));
    CHECK(cnn_model_layer_weights(model, 1, 0, NULL) != NULL); /* builds it */
    test_modes();
    test_never_replace_special();
    test_failure_keeps_old();
    test_reader();
    cnn_model_free(model);
    CHECK(test_remove_tree(dir));
    return test_finish("test_fileio");
}
