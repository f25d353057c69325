/* The library's vocabularies and formats (issue 13 item 4): one name <->
 * enum pair per vocabulary (losses, optimizers, monitors, layer kinds)
 * with one convention for an unknown value (NULL) or name
 * (CNN_ERR_INVALID_ARGUMENT listing the valid names), and model formats
 * told apart by content alone (cnn_model_file_format, cnn_model_open),
 * refusing a FIFO instead of waiting on it. */
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

static char dir[] = "/tmp/cnn_test_vocabulary_XXXXXX";

static const char *in_dir(const char *name) { return test_path(dir, name); }

static void test_losses(void)
{
    for (int l = CNN_LOSS_CATEGORICAL_CROSSENTROPY; l <= CNN_LOSS_MSE; l++) {
        const char *name = cnn_loss_name((cnn_loss)l);
        cnn_loss back = CNN_LOSS_NONE;
        CHECK(name != NULL);
        CHECK_OK(cnn_loss_from_name(name, &back));
        CHECK(back == (cnn_loss)l);
    }
    CHECK(cnn_loss_name(CNN_LOSS_NONE) == NULL);
    CHECK(cnn_loss_name((cnn_loss)99) == NULL);
    CHECK(strcmp(cnn_loss_name(CNN_LOSS_MSE), "mean_squared_error") == 0);
    /* Keras's class names, as its configs write them, and other spellings */
    static const struct {
        const char *name;
        cnn_loss loss;
    } aliases[] = {
        {"SparseCategoricalCrossentropy", CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY},
        {"CategoricalCrossentropy", CNN_LOSS_CATEGORICAL_CROSSENTROPY},
        {"BinaryCrossentropy", CNN_LOSS_BINARY_CROSSENTROPY},
        {"mse", CNN_LOSS_MSE},
        {"MeanSquaredError", CNN_LOSS_MSE},
        {"MSE", CNN_LOSS_MSE},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        cnn_loss l = CNN_LOSS_NONE;
        CHECK_OK(cnn_loss_from_name(aliases[i].name, &l));
        CHECK(l == aliases[i].loss);
    }
    cnn_loss l = CNN_LOSS_MSE;
    CHECK_FAILS(cnn_loss_from_name("hinge", &l), CNN_ERR_INVALID_ARGUMENT, "got 'hinge'");
    CHECK(strstr(cnn_last_error(), "sparse_categorical_crossentropy") != NULL);
    CHECK(l == CNN_LOSS_MSE); /* untouched */
    CHECK_FAILS(cnn_loss_from_name(NULL, &l), CNN_ERR_INVALID_ARGUMENT, "expected");
    CHECK_FAILS(cnn_loss_from_name("mse", NULL), CNN_ERR_INVALID_ARGUMENT, "out is NULL");
}

static void test_optimizers(void)
{
    static const char *const names[] = {NULL, "sgd", "adam", "rmsprop"};
    for (int k = CNN_OPTIMIZER_SGD; k <= CNN_OPTIMIZER_RMSPROP; k++) {
        cnn_optimizer_kind back = 0;
        CHECK(cnn_optimizer_name((cnn_optimizer_kind)k)
              && strcmp(cnn_optimizer_name((cnn_optimizer_kind)k), names[k]) == 0);
        CHECK_OK(cnn_optimizer_from_name(names[k], &back));
        CHECK(back == (cnn_optimizer_kind)k);
    }
    CHECK(cnn_optimizer_name((cnn_optimizer_kind)0) == NULL);
    CHECK(cnn_optimizer_name((cnn_optimizer_kind)4) == NULL);
    static const char *const keras[] = {NULL, "SGD", "Adam", "RMSprop"};
    for (int k = CNN_OPTIMIZER_SGD; k <= CNN_OPTIMIZER_RMSPROP; k++) {
        cnn_optimizer_kind back = 0;
        CHECK_OK(cnn_optimizer_from_name(keras[k], &back));
        CHECK(back == (cnn_optimizer_kind)k);
    }
    cnn_optimizer_kind k = CNN_OPTIMIZER_SGD;
    CHECK_FAILS(cnn_optimizer_from_name("adamw", &k), CNN_ERR_INVALID_ARGUMENT,
                "expected sgd, adam or rmsprop");
    CHECK(strstr(cnn_last_error(), "'adamw'") != NULL);
    CHECK(k == CNN_OPTIMIZER_SGD);
    CHECK_FAILS(cnn_optimizer_from_name("adam", NULL), CNN_ERR_INVALID_ARGUMENT, "NULL");
}

static void test_monitors(void)
{
    for (int i = CNN_MONITOR_VAL_LOSS; i <= CNN_MONITOR_ACCURACY; i++) {
        cnn_monitor back = (cnn_monitor)-1;
        CHECK(cnn_monitor_name((cnn_monitor)i) != NULL);
        CHECK_OK(cnn_monitor_from_name(cnn_monitor_name((cnn_monitor)i), &back));
        CHECK(back == (cnn_monitor)i);
    }
    CHECK(cnn_monitor_name((cnn_monitor)4) == NULL);
    cnn_monitor m = CNN_MONITOR_LOSS;
    CHECK_OK(cnn_monitor_from_name("acc", &m));
    CHECK(m == CNN_MONITOR_ACCURACY);
    CHECK_OK(cnn_monitor_from_name("val_acc", &m));
    CHECK(m == CNN_MONITOR_VAL_ACCURACY);
    m = CNN_MONITOR_LOSS;
    CHECK_FAILS(cnn_monitor_from_name("val_los", &m), CNN_ERR_INVALID_ARGUMENT,
                "expected val_loss, val_accuracy, loss or accuracy, got 'val_los'");
    CHECK(m == CNN_MONITOR_LOSS);
}

static void test_layer_kinds(void)
{
    int named = 0;
    for (int k = 1; k <= 64; k++) {
        const char *name = cnn_layer_kind_name((cnn_layer_kind)k);
        if (!name)
            continue;
        named++;
        cnn_layer_kind back = 0;
        CHECK_OK(cnn_layer_kind_from_name(name, &back));
        CHECK(back == (cnn_layer_kind)k);
    }
    CHECK(named >= 18);
    cnn_layer_kind alias = 0; /* Keras's other class name for a kind */
    CHECK_OK(cnn_layer_kind_from_name("MaxPool2D", &alias));
    CHECK(alias == CNN_LAYER_MAX_POOLING2D);
    CHECK(cnn_layer_kind_name((cnn_layer_kind)0) == NULL);
    cnn_layer_kind k = CNN_LAYER_DENSE;
    CHECK_FAILS(cnn_layer_kind_from_name("Conv3D", &k), CNN_ERR_INVALID_ARGUMENT,
                "got 'Conv3D'");
    CHECK(strstr(cnn_last_error(), "Conv2D") && strstr(cnn_last_error(), "Rescaling"));
    CHECK(k == CNN_LAYER_DENSE);
}

static void write_file(const char *path, const void *bytes, size_t n)
{
    CHECK_OK(cnn_file_write_atomic(path, bytes, n));
}

/* Checks path is told to be format and opens as it; keras says whether a
 * cnn_keras_info comes back filled. */
static void check_open(const char *path, cnn_model_format format)
{
    cnn_model_format got = 0;
    CHECK_OK(cnn_model_file_format(path, &got));
    CHECK(got == format);
    cnn_model *m = NULL;
    cnn_keras_info info;
    memset(&info, 0xff, sizeof info);
    got = 0;
    CHECK_OK(cnn_model_open(path, &m, &got, &info));
    CHECK(got == format);
    CHECK(m && cnn_model_layer_count(m) == 2);
    bool keras = format == CNN_MODEL_FORMAT_KERAS_H5 || format == CNN_MODEL_FORMAT_KERAS_ZIP;
    CHECK(info.format == (keras ? (format == CNN_MODEL_FORMAT_KERAS_H5 ? CNN_KERAS_H5
                                                                         : CNN_KERAS_ZIP)
                                : 0));
    cnn_model_free(m);
}

static void test_formats(void)
{
    static const char text[] = "input shape=4,4,1\nFlatten\nDense 2 activation=softmax\n";
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_from_description_memory(text, sizeof text - 1, "t.model", &m));
    if (!m)
        return;
    /* every name is misleading: only the content counts */
    write_file(in_dir("description.cnn"), text, sizeof text - 1);
    CHECK_OK(cnn_model_save(m, in_dir("saved.txt")));
    CHECK_OK(cnn_model_save_keras(m, in_dir("keras3.h5")));
    CHECK_OK(cnn_model_save_keras_h5(m, in_dir("legacy.keras")));
    check_open(in_dir("description.cnn"), CNN_MODEL_FORMAT_DESCRIPTION);
    check_open(in_dir("saved.txt"), CNN_MODEL_FORMAT_CNN);
    check_open(in_dir("keras3.h5"), CNN_MODEL_FORMAT_KERAS_ZIP);
    check_open(in_dir("legacy.keras"), CNN_MODEL_FORMAT_KERAS_H5);
    cnn_model_free(m);

    /* HDF5 finds its signature after a user block (512 bytes here) */
    unsigned char block[600] = {0};
    memcpy(block + 512, "\x89HDF\r\n\x1a\n", 8);
    write_file(in_dir("userblock"), block, sizeof block);
    cnn_model_format f = 0;
    CHECK_OK(cnn_model_file_format(in_dir("userblock"), &f));
    CHECK(f == CNN_MODEL_FORMAT_KERAS_H5);
    /* a .cnn file cut inside its magic is still a .cnn file: its loader
     * says it is truncated, not the description reader that it is no text */
    write_file(in_dir("cut"), "CNNMOD", 6);
    CHECK_OK(cnn_model_file_format(in_dir("cut"), &f));
    CHECK(f == CNN_MODEL_FORMAT_CNN);
    CHECK_FAILS(cnn_model_open(in_dir("cut"), &m, NULL, NULL), CNN_ERR_FORMAT, "truncated");
    write_file(in_dir("empty"), "", 0);
    CHECK_OK(cnn_model_file_format(in_dir("empty"), &f));
    CHECK(f == CNN_MODEL_FORMAT_DESCRIPTION);

    /* refused, never waited on: alarm turns a hang into a failure */
    CHECK(mkfifo(in_dir("fifo"), 0600) == 0);
    alarm(20);
    CHECK_FAILS(cnn_model_file_format(in_dir("fifo"), &f), CNN_ERR_IO, "got a FIFO");
    CHECK_FAILS(cnn_model_open(in_dir("fifo"), &m, &f, NULL), CNN_ERR_IO, "got a FIFO");
    CHECK(m == NULL);
    void *bytes = NULL;
    size_t size = 1;
    CHECK_FAILS(cnn_file_read_all(in_dir("fifo"), 0, &bytes, &size), CNN_ERR_IO, "got a FIFO");
    CHECK(bytes == NULL && size == 0);
    alarm(0);
    CHECK_FAILS(cnn_model_open(in_dir("missing"), &m, NULL, NULL), CNN_ERR_IO, "missing");
    CHECK_FAILS(cnn_model_open(NULL, &m, NULL, NULL), CNN_ERR_INVALID_ARGUMENT, "NULL");
}

static void test_read_all(void)
{
    write_file(in_dir("five"), "hello", 5);
    void *bytes = NULL;
    size_t size = 0;
    CHECK_OK(cnn_file_read_all(in_dir("five"), 0, &bytes, &size));
    CHECK(size == 5 && bytes && memcmp(bytes, "hello", 6) == 0); /* with its NUL */
    free(bytes);
    CHECK_FAILS(cnn_file_read_all(in_dir("five"), 4, &bytes, &size), CNN_ERR_FORMAT,
                "more than the 4 allowed");
    CHECK(bytes == NULL);
    CHECK_FAILS(cnn_file_read_all(dir, 0, &bytes, &size), CNN_ERR_IO, "got a directory");
    CHECK_FAILS(cnn_file_read_all(in_dir("five"), -1, &bytes, &size), CNN_ERR_INVALID_ARGUMENT,
                "max_bytes");
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_losses();
    test_optimizers();
    test_monitors();
    test_layer_kinds();
    test_formats();
    test_read_all();
    CHECK(test_remove_tree(dir));
    return test_finish("test_vocabulary");
}
