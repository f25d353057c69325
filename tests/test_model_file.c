/* The model file (.cnn): round trips of every layer kind, resuming training
 * from epoch-end and mid-epoch checkpoints bit for bit, damaged files
 * (every truncation, every bit flip, crafted fields) failing cleanly, and
 * atomic saving when the disk is full. */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "test.h"

static char dir[64];

static char *path_in_dir(const char *name)
{
    static char buf[4][320];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

/* Entries of dir whose names start with prefix. */
static int count_entries(const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

static cnn_tensor *random_tensor(int rank, const int64_t *dims, uint32_t seed)
{
    cnn_tensor *t = NULL;
    if (cnn_tensor_create(&t, rank, dims))
        return NULL;
    for (int64_t i = 0; i < cnn_tensor_size(t); i++) {
        seed = seed * 1664525u + 1013904223u;
        t->data[i] = (float)(seed >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
    return t;
}

/* Every weight of the model, concatenated (malloc'd). */
static float *all_weights(cnn_model *m, int64_t *n)
{
    int64_t total = cnn_model_param_count(m), off = 0;
    float *w = malloc((size_t)(total ? total : 1) * sizeof *w);
    for (int i = 0; w && i < cnn_model_layer_count(m); i++)
        for (int which = 0; which < CNN_MAX_LAYER_WEIGHTS; which++) {
            int64_t count;
            const float *v = cnn_model_layer_weights(m, i, which, &count);
            if (v) {
                memcpy(w + off, v, (size_t)count * sizeof *w);
                off += count;
            }
        }
    *n = total;
    return w;
}

static int same_weights(cnn_model *a, cnn_model *b)
{
    int64_t na, nb;
    float *wa = all_weights(a, &na), *wb = all_weights(b, &nb);
    int same = wa && wb && na == nb && memcmp(wa, wb, (size_t)na * sizeof *wa) == 0;
    free(wa);
    free(wb);
    return same;
}

static int same_spec(const cnn_layer_spec *a, const cnn_layer_spec *b)
{
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case CNN_LAYER_CONV2D: {
        const cnn_conv2d_config *x = &a->u.conv2d, *y = &b->u.conv2d;
        return x->filters == y->filters && x->kernel_size[0] == y->kernel_size[0]
            && x->kernel_size[1] == y->kernel_size[1] && x->strides[0] == y->strides[0]
            && x->strides[1] == y->strides[1] && x->padding == y->padding
            && x->dilation_rate[0] == y->dilation_rate[0]
            && x->dilation_rate[1] == y->dilation_rate[1] && x->activation == y->activation
            && x->no_bias == y->no_bias && x->kernel_l2 == y->kernel_l2
            && strcmp(x->name, y->name) == 0;
    }
    case CNN_LAYER_DENSE:
        return a->u.dense.units == b->u.dense.units
            && a->u.dense.activation == b->u.dense.activation
            && a->u.dense.no_bias == b->u.dense.no_bias
            && a->u.dense.kernel_l2 == b->u.dense.kernel_l2
            && strcmp(a->u.dense.name, b->u.dense.name) == 0;
    case CNN_LAYER_MAX_POOLING2D:
    case CNN_LAYER_AVERAGE_POOLING2D:
        return memcmp(a->u.pool2d.pool_size, b->u.pool2d.pool_size, sizeof(int[2])) == 0
            && memcmp(a->u.pool2d.strides, b->u.pool2d.strides, sizeof(int[2])) == 0
            && a->u.pool2d.padding == b->u.pool2d.padding
            && strcmp(a->u.pool2d.name, b->u.pool2d.name) == 0;
    case CNN_LAYER_ACTIVATION:
        return a->u.activation.activation == b->u.activation.activation
            && strcmp(a->u.activation.name, b->u.activation.name) == 0;
    case CNN_LAYER_DROPOUT:
        return memcmp(&a->u.dropout.rate, &b->u.dropout.rate, sizeof(float)) == 0
            && a->u.dropout.seed == b->u.dropout.seed
            && strcmp(a->u.dropout.name, b->u.dropout.name) == 0;
    case CNN_LAYER_FLATTEN:
        return strcmp(a->u.flatten.name, b->u.flatten.name) == 0;
    case CNN_LAYER_GLOBAL_AVERAGE_POOLING2D:
    case CNN_LAYER_GLOBAL_MAX_POOLING2D:
        return strcmp(a->u.global_pool2d.name, b->u.global_pool2d.name) == 0;
    case CNN_LAYER_BATCH_NORMALIZATION:
        return a->u.batch_normalization.momentum == b->u.batch_normalization.momentum
            && a->u.batch_normalization.epsilon == b->u.batch_normalization.epsilon
            && strcmp(a->u.batch_normalization.name, b->u.batch_normalization.name) == 0;
    case CNN_LAYER_LEAKY_RELU:
        return a->u.leaky_relu.negative_slope == b->u.leaky_relu.negative_slope
            && strcmp(a->u.leaky_relu.name, b->u.leaky_relu.name) == 0;
    case CNN_LAYER_ELU:
        return a->u.elu.alpha == b->u.elu.alpha && strcmp(a->u.elu.name, b->u.elu.name) == 0;
    case CNN_LAYER_RELU:
        return a->u.relu.max_value == b->u.relu.max_value
            && a->u.relu.negative_slope == b->u.relu.negative_slope
            && a->u.relu.threshold == b->u.relu.threshold
            && strcmp(a->u.relu.name, b->u.relu.name) == 0;
    case CNN_LAYER_ZERO_PADDING2D:
        return memcmp(a->u.zero_padding2d.padding, b->u.zero_padding2d.padding, sizeof(int[4])) == 0
            && strcmp(a->u.zero_padding2d.name, b->u.zero_padding2d.name) == 0;
    case CNN_LAYER_RESHAPE: {
        const cnn_shape *x = &a->u.reshape.target_shape, *y = &b->u.reshape.target_shape;
        return x->rank == y->rank && memcmp(x->dims, y->dims, (size_t)x->rank * sizeof(int)) == 0
            && strcmp(a->u.reshape.name, b->u.reshape.name) == 0;
    }
    case CNN_LAYER_DEPTHWISE_CONV2D: {
        const cnn_depthwise_conv2d_config *x = &a->u.depthwise_conv2d, *y = &b->u.depthwise_conv2d;
        return memcmp(x->kernel_size, y->kernel_size, sizeof(int[2])) == 0
            && memcmp(x->strides, y->strides, sizeof(int[2])) == 0 && x->padding == y->padding
            && x->depth_multiplier == y->depth_multiplier
            && memcmp(x->dilation_rate, y->dilation_rate, sizeof(int[2])) == 0
            && x->activation == y->activation && x->no_bias == y->no_bias
            && x->depthwise_l2 == y->depthwise_l2 && strcmp(x->name, y->name) == 0;
    }
    case CNN_LAYER_SEPARABLE_CONV2D: {
        const cnn_separable_conv2d_config *x = &a->u.separable_conv2d, *y = &b->u.separable_conv2d;
        return x->filters == y->filters && memcmp(x->kernel_size, y->kernel_size, sizeof(int[2])) == 0
            && memcmp(x->strides, y->strides, sizeof(int[2])) == 0 && x->padding == y->padding
            && x->depth_multiplier == y->depth_multiplier
            && memcmp(x->dilation_rate, y->dilation_rate, sizeof(int[2])) == 0
            && x->activation == y->activation && x->no_bias == y->no_bias
            && x->depthwise_l2 == y->depthwise_l2 && x->pointwise_l2 == y->pointwise_l2
            && strcmp(x->name, y->name) == 0;
    }
    case CNN_LAYER_RESCALING:
        return a->u.rescaling.scale == b->u.rescaling.scale
            && a->u.rescaling.offset == b->u.rescaling.offset
            && strcmp(a->u.rescaling.name, b->u.rescaling.name) == 0;
    default: /* the newer kinds round-trip in test_layer_golden (layers_c, layers_graph) */
        return 0;
    }
}

/* Outputs of x in inference and in training mode (dropout active), as one
 * malloc'd array. */
static float *outputs(cnn_model *m, const cnn_tensor *x, size_t *n)
{
    cnn_tensor *p = NULL;
    const float *train = NULL;
    if (cnn_model_predict(m, x, 3, &p) || cnn_model_forward(m, x, true, &train)) {
        cnn_tensor_free(p);
        return NULL;
    }
    size_t k = (size_t)cnn_tensor_size(p);
    float *o = malloc(2 * k * sizeof *o);
    memcpy(o, p->data, k * sizeof *o);
    memcpy(o + k, train, k * sizeof *o);
    cnn_tensor_free(p);
    *n = 2 * k;
    return o;
}

/* Saves m, loads it back and checks the copy is the same model. */
static void check_round_trip(cnn_model *m, const cnn_tensor *x, const char *file)
{
    const char *path = path_in_dir(file);
    CHECK_OK(cnn_model_save(m, path));
    cnn_model *c = NULL;
    CHECK_OK(cnn_model_load(path, &c));
    if (!c)
        return;
    CHECK_OK(cnn_model_set_threads(c, cnn_model_threads(m)));
    /* saving the copy gives the same bytes */
    const char *again = path_in_dir("again.cnn");
    CHECK_OK(cnn_model_save(c, again));
    size_t s1 = 0, s2 = 0;
    unsigned char *b1 = test_read_file(path, &s1), *b2 = test_read_file(again, &s2);
    CHECK(b1 && b2 && s1 == s2 && memcmp(b1, b2, s1) == 0);
    free(b1);
    free(b2);
    CHECK(cnn_model_layer_count(c) == cnn_model_layer_count(m));
    for (int i = 0; i < cnn_model_layer_count(m) && i < cnn_model_layer_count(c); i++) {
        cnn_layer_spec a, b;
        CHECK_OK(cnn_model_layer_spec(m, i, &a));
        CHECK_OK(cnn_model_layer_spec(c, i, &b));
        CHECK(same_spec(&a, &b));
    }
    CHECK(cnn_model_param_count(c) == cnn_model_param_count(m));
    char *sa = NULL, *sb = NULL;
    CHECK_OK(cnn_model_summary(m, &sa));
    CHECK_OK(cnn_model_summary(c, &sb));
    CHECK(sa && sb && strcmp(sa, sb) == 0);
    free(sa);
    free(sb);
    int ea, eb;
    int64_t pa, pb;
    cnn_model_training_position(m, &ea, &pa);
    cnn_model_training_position(c, &eb, &pb);
    CHECK(ea == eb && pa == pb);
    size_t na = 0, nb = 0;
    float *oa = outputs(m, x, &na), *ob = outputs(c, x, &nb);
    CHECK(oa && ob && na == nb && memcmp(oa, ob, na * sizeof *oa) == 0);
    CHECK(same_weights(m, c));
    free(oa);
    free(ob);
    cnn_model_free(c);
}

/* (1) Every layer kind and option, compiled and trained, then unbuilt and
 * empty models. */
static void test_round_trip(void)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(12, 12, 3)));
    CHECK_OK(cnn_model_set_seed(m, 20240611));
    CHECK_OK(cnn_model_set_threads(m, 2));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                                .strides = {2, 1}, .padding = CNN_PADDING_SAME,
                                                .activation = CNN_ACTIVATION_RELU,
                                                .name = "stem")));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 5, .kernel_size = {2, 2},
                                                .dilation_rate = {2, 2}, .no_bias = true,
                                                .activation = CNN_ACTIVATION_TANH)));
    CHECK_OK(cnn_model_add_max_pooling2d(m, cnn_pool2d(.pool_size = {2, 2}, .strides = {1, 1},
                                                       .padding = CNN_PADDING_SAME)));
    CHECK_OK(cnn_model_add_average_pooling2d(m, cnn_pool2d()));
    CHECK_OK(cnn_model_add_activation(m, cnn_activation_layer(.activation = CNN_ACTIVATION_SIGMOID)));
    CHECK_OK(cnn_model_add_dropout(m, cnn_dropout(.rate = 0.3f)));
    CHECK_OK(cnn_model_add_dropout(m, cnn_dropout(.rate = 0.2f, .seed = 1234, .name = "drop")));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 6, .activation = CNN_ACTIVATION_RELU)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX,
                                              .no_bias = true)));
    cnn_tensor *x = random_tensor(4, (int64_t[]){5, 12, 12, 3}, 1);
    cnn_tensor *y = random_tensor(1, (int64_t[]){5}, 2);
    for (int i = 0; i < 5; i++)
        y->data[i] = (float)(i % 3);
    /* built, not compiled */
    cnn_tensor *warm = NULL;
    CHECK_OK(cnn_model_predict(m, x, 0, &warm));
    cnn_tensor_free(warm);
    check_round_trip(m, x, "built.cnn");
    /* compiled and trained: the training section too */
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam(.learning_rate = 0.01f))));
    CHECK_OK(cnn_model_fit(m, x, y, cnn_fit(.epochs = 2, .batch_size = 2), NULL));
    check_round_trip(m, x, "every_kind.cnn");
    cnn_model_free(m);

    /* the kinds of issue 7, L2 penalties and gradient clipping (the
     * extensions section); without them, no extensions section */
    CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(12, 12, 3)));
    CHECK_OK(cnn_model_set_seed(m, 7));
    CHECK_OK(cnn_model_set_threads(m, 2));
    CHECK_OK(cnn_model_add_zero_padding2d(m, cnn_zero_padding2d(.padding = {1, 0, 2, 1})));
    CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                                .no_bias = true, .kernel_l2 = 0.01f)));
    CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization(.momentum = 0.9f)));
    CHECK_OK(cnn_model_add_leaky_relu(m, cnn_leaky_relu(.negative_slope = 0.1f)));
    CHECK_OK(cnn_model_add_depthwise_conv2d(m, cnn_depthwise_conv2d(
        .kernel_size = {3, 3}, .depth_multiplier = 2, .padding = CNN_PADDING_SAME,
        .depthwise_l2 = 0.002f, .name = "dw")));
    CHECK_OK(cnn_model_add_elu(m, cnn_elu(.alpha = 0.5f)));
    CHECK_OK(cnn_model_add_separable_conv2d(m, cnn_separable_conv2d(
        .filters = 5, .kernel_size = {2, 2}, .strides = {2, 2}, .pointwise_l2 = 0.001f)));
    CHECK_OK(cnn_model_add_relu(m, cnn_relu(.max_value = 6, .negative_slope = 0.05f,
                                            .threshold = -0.5f)));
    CHECK_OK(cnn_model_add_reshape(m, cnn_reshape(.target_shape = {3, {-1, 3, 5}})));
    CHECK_OK(cnn_model_add_flatten(m, cnn_flatten()));
    CHECK_OK(cnn_model_add_batch_normalization(m, cnn_batch_normalization(.epsilon = 0.01f)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX,
                                              .kernel_l2 = 0.0001f)));
    check_round_trip(m, x, "new_kinds_built.cnn");
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam(.global_clipnorm = 1.5f))));
    CHECK_OK(cnn_model_fit(m, x, y, cnn_fit(.epochs = 2, .batch_size = 2), NULL));
    check_round_trip(m, x, "new_kinds.cnn");
    cnn_model *c = NULL;
    CHECK_OK(cnn_model_load(path_in_dir("new_kinds.cnn"), &c));
    cnn_compile_config cc;
    CHECK(c && cnn_model_compile_config(c, &cc) == CNN_OK && cc.optimizer.global_clipnorm == 1.5f);
    cnn_model_free(c);
    size_t size = 0;
    unsigned char *bytes = test_read_file(path_in_dir("new_kinds.cnn"), &size);
    CHECK(bytes && size > 24 && bytes[20] == 7); /* weights, training, extensions */
    free(bytes);
    bytes = test_read_file(path_in_dir("every_kind.cnn"), &size);
    CHECK(bytes && size > 24 && bytes[20] == 3); /* no extensions section */
    free(bytes);
    cnn_model_free(m);

    /* the global pooling kinds */
    for (int k = 0; k < 2; k++) {
        CHECK_OK(cnn_model_create(&m, cnn_shape_hwc(12, 12, 3)));
        CHECK_OK(cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {3, 3})));
        CHECK_OK(k ? cnn_model_add_global_max_pooling2d(m, cnn_global_pool2d())
                   : cnn_model_add_global_average_pooling2d(m, cnn_global_pool2d(.name = "gap")));
        CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 2)));
        check_round_trip(m, x, "global.cnn"); /* predict in outputs() builds it after saving */
        check_round_trip(m, x, "global.cnn");
        cnn_model_free(m);
    }

    /* An unbuilt model stays open: layers can still be added after loading,
     * with the automatic names continuing, and its weights come from the
     * seed exactly as the original's would. */
    cnn_model *a = NULL, *b = NULL;
    CHECK_OK(cnn_model_create(&a, cnn_shape_hwc(8, 8, 1)));
    CHECK_OK(cnn_model_set_seed(a, 5));
    CHECK_OK(cnn_model_add_conv2d(a, cnn_conv2d(.filters = 2, .kernel_size = {3, 3})));
    CHECK_OK(cnn_model_add_dropout(a, cnn_dropout(.rate = 0.5f)));
    CHECK_OK(cnn_model_add_max_pooling2d(a, cnn_pool2d()));
    CHECK_OK(cnn_model_save(a, path_in_dir("open.cnn")));
    CHECK_OK(cnn_model_load(path_in_dir("open.cnn"), &b));
    if (b) {
        CHECK_OK(cnn_model_add_conv2d(a, cnn_conv2d(.filters = 2, .kernel_size = {2, 2})));
        CHECK_OK(cnn_model_add_conv2d(b, cnn_conv2d(.filters = 2, .kernel_size = {2, 2})));
        CHECK(strcmp(cnn_model_layer_name(b, 3), "conv2d_1") == 0);
        CHECK_OK(cnn_model_add_flatten(a, cnn_flatten()));
        CHECK_OK(cnn_model_add_flatten(b, cnn_flatten()));
        CHECK_OK(cnn_model_set_threads(a, 1));
        CHECK_OK(cnn_model_set_threads(b, 1));
        cnn_tensor *xs = random_tensor(4, (int64_t[]){3, 8, 8, 1}, 3);
        size_t na = 0, nb = 0;
        float *oa = outputs(a, xs, &na), *ob = outputs(b, xs, &nb);
        CHECK(oa && ob && na == nb && memcmp(oa, ob, na * sizeof *oa) == 0);
        free(oa);
        free(ob);
        cnn_tensor_free(xs);
    }
    cnn_model_free(a);
    cnn_model_free(b);

    /* an architecture too large to ever allocate (2^60 weights) is refused
     * when the layer is added, so it can never reach a file */
    CHECK_OK(cnn_model_create(&a, cnn_shape_hwc(1, 1, 536870911)));
    CHECK_FAILS(cnn_model_add_conv2d(a, cnn_conv2d(.filters = 2147483647, .kernel_size = {1, 1})),
                CNN_ERR_SHAPE, "conv2d (Conv2D): too large");
    cnn_model_free(a);

    /* an empty model */
    CHECK_OK(cnn_model_create(&a, cnn_shape_flat(7)));
    CHECK_OK(cnn_model_save(a, path_in_dir("empty.cnn")));
    CHECK_OK(cnn_model_load(path_in_dir("empty.cnn"), &b));
    CHECK(b && cnn_model_layer_count(b) == 0 && cnn_model_input_shape(b).dims[0] == 7);
    cnn_model_free(a);
    cnn_model_free(b);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

/* ---- (2) resuming ---- */

typedef struct {
    cnn_model *m;
    struct {
        cnn_progress_event event;
        int epoch;
        int64_t step;
        const char *path;
    } at[3];
    int saved;
    cnn_status st;
} checkpointer;

static bool save_checkpoints(const cnn_progress *p, void *user)
{
    checkpointer *c = user;
    for (int i = 0; i < 3; i++)
        if (p->event == c->at[i].event && p->epoch == c->at[i].epoch
            && (p->event == CNN_PROGRESS_EPOCH_END || p->step == c->at[i].step)) {
            cnn_status st = cnn_model_save(c->m, c->at[i].path);
            if (st && !c->st)
                c->st = st;
            c->saved++;
        }
    return true;
}

static cnn_model *train_model(cnn_optimizer opt)
{
    cnn_model *m = NULL;
    if (cnn_model_create(&m, cnn_shape_hwc(6, 6, 2)))
        return NULL;
    cnn_model_set_seed(m, 99);
    cnn_model_set_threads(m, 1);
    cnn_model_add_conv2d(m, cnn_conv2d(.filters = 3, .kernel_size = {3, 3},
                                       .padding = CNN_PADDING_SAME,
                                       .activation = CNN_ACTIVATION_RELU));
    cnn_model_add_dropout(m, cnn_dropout(.rate = 0.25f));
    cnn_model_add_max_pooling2d(m, cnn_pool2d());
    cnn_model_add_flatten(m, cnn_flatten());
    cnn_model_add_dense(m, cnn_dense(.units = 4, .activation = CNN_ACTIVATION_SOFTMAX));
    if (cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                         .optimizer = opt))) {
        cnn_model_free(m);
        return NULL;
    }
    return m;
}

static void test_resume(cnn_optimizer opt, const char *what)
{
    /* 37 examples, batches of 8: 5 steps per epoch, the last one short */
    cnn_tensor *x = random_tensor(4, (int64_t[]){37, 6, 6, 2}, 11);
    cnn_tensor *y = random_tensor(1, (int64_t[]){37}, 12);
    for (int i = 0; i < 37; i++)
        y->data[i] = (float)((i * 7) % 4);
    const cnn_fit_config base = cnn_fit(.epochs = 2, .batch_size = 8);

    cnn_model *ref = train_model(opt);
    CHECK(ref != NULL);
    if (!ref)
        return;
    CHECK_OK(cnn_model_fit(ref, x, y, base, NULL));

    /* the same run, checkpointing from the progress callback */
    cnn_model *run = train_model(opt);
    char *paths[3] = {strdup(path_in_dir("epoch1.cnn")), strdup(path_in_dir("mid_e1.cnn")),
                      strdup(path_in_dir("mid_e2.cnn"))};
    checkpointer c = {.m = run,
                      .at = {{CNN_PROGRESS_EPOCH_END, 1, 0, paths[0]},
                             {CNN_PROGRESS_BATCH_END, 1, 3, paths[1]},
                             {CNN_PROGRESS_BATCH_END, 2, 2, paths[2]}}};
    cnn_fit_config cfg = base;
    cfg.progress = save_checkpoints;
    cfg.progress_user = &c;
    CHECK_OK(cnn_model_fit(run, x, y, cfg, NULL));
    CHECK(c.saved == 3 && c.st == CNN_OK);
    CHECK(same_weights(run, ref));
    cnn_model_free(run);

    const int want_epoch[3] = {1, 0, 1};
    const int64_t want_step[3] = {0, 3, 2};
    for (int i = 0; i < 3; i++) {
        cnn_model *r = NULL;
        CHECK_OK(cnn_model_load(paths[i], &r));
        if (!r)
            continue;
        CHECK_OK(cnn_model_set_threads(r, 1));
        int epoch;
        int64_t step;
        cnn_model_training_position(r, &epoch, &step);
        CHECK(epoch == want_epoch[i] && step == want_step[i]);
        cfg = base;
        cfg.initial_epoch = epoch;
        cfg.initial_step = step;
        CHECK_OK(cnn_model_fit(r, x, y, cfg, NULL));
        if (!same_weights(r, ref)) {
            fprintf(stderr, "%s: resuming from %s does not give the uninterrupted weights\n",
                    what, paths[i]);
            CHECK(0);
        }
        /* optimizer state and position too: the saved files are identical */
        CHECK_OK(cnn_model_save(r, path_in_dir("resumed.cnn")));
        CHECK_OK(cnn_model_save(ref, path_in_dir("reference.cnn")));
        size_t s1 = 0, s2 = 0;
        unsigned char *b1 = test_read_file(path_in_dir("resumed.cnn"), &s1);
        unsigned char *b2 = test_read_file(path_in_dir("reference.cnn"), &s2);
        CHECK(b1 && b2 && s1 == s2 && memcmp(b1, b2, s1) == 0);
        free(b1);
        free(b2);
        cnn_model_free(r);
    }
    for (int i = 0; i < 3; i++)
        free(paths[i]);
    cnn_model_free(ref);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
}

/* ---- (3) damaged files ---- */

static void fix_checksum(unsigned char *b, size_t n)
{
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)(n - 4));
    for (int i = 0; i < 4; i++)
        b[n - 4 + i] = (unsigned char)(crc >> (8 * i));
}

/* The small compiled model whose file is damaged below. */
static unsigned char *small_model_file(size_t *size)
{
    cnn_model *m = NULL;
    cnn_model_create(&m, cnn_shape_hwc(3, 3, 1));
    cnn_model_set_threads(m, 1);
    cnn_model_add_conv2d(m, cnn_conv2d(.filters = 2, .kernel_size = {2, 2}));
    cnn_model_add_flatten(m, cnn_flatten());
    cnn_model_add_dense(m, cnn_dense(.units = 2, .activation = CNN_ACTIVATION_SOFTMAX));
    cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                     .optimizer = cnn_sgd(.momentum = 0.9f)));
    cnn_tensor *x = random_tensor(4, (int64_t[]){4, 3, 3, 1}, 5);
    cnn_tensor *y = random_tensor(1, (int64_t[]){4}, 6);
    for (int i = 0; i < 4; i++)
        y->data[i] = (float)(i % 2);
    CHECK_OK(cnn_model_fit(m, x, y, cnn_fit(.batch_size = 2), NULL));
    CHECK_OK(cnn_model_save(m, path_in_dir("small.cnn")));
    cnn_model_free(m);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    return test_read_file(path_in_dir("small.cnn"), size);
}

/* Loads bytes expecting CNN_ERR_FORMAT whose message starts with the name
 * and contains want; returns 1 if so, else prints why. */
static int fails_cleanly(const unsigned char *b, size_t n, const char *want, const char *what,
                         size_t at)
{
    cnn_model *m = (cnn_model *)&m; /* a non-NULL sentinel the load must reset */
    cnn_status st = cnn_model_load_memory(b, n, "model.cnn", &m);
    const char *msg = cnn_last_error();
    if (st == CNN_ERR_FORMAT && m == NULL && strncmp(msg, "model.cnn: ", 11) == 0
        && strstr(msg, want))
        return 1;
    fprintf(stderr, "%s at %zu: expected a format error with \"%s\", got %s: \"%s\"\n", what, at,
            want, cnn_status_name(st), msg);
    if (st == CNN_OK)
        cnn_model_free(m);
    return 0;
}

static void test_damage(void)
{
    size_t size = 0;
    unsigned char *good = small_model_file(&size);
    CHECK(good && size > 100);
    if (!good)
        return;
    unsigned char *b = malloc(size + 16);
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_load_memory(good, size, "model.cnn", &m));
    cnn_model_free(m);

    /* every truncation, through the exact-size buffer (ASan/valgrind see any
     * read past the end) */
    int bad = 0;
    for (size_t cut = 0; cut < size; cut++) {
        unsigned char *t = malloc(cut ? cut : 1);
        memcpy(t, good, cut);
        bad += !fails_cleanly(t, cut, "truncated", "truncation", cut);
        free(t);
    }
    CHECK(bad == 0);

    /* every single bit flipped: the preamble's fields say what is wrong,
     * the checksum catches everything else */
    bad = 0;
    for (size_t bit = 0; bit < size * 8; bit++) {
        memcpy(b, good, size);
        b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        size_t at = bit / 8;
        const char *want = at < 8 ? "expected magic \"CNNMODEL\""
                         : at < 12 ? "format version"
                         : at < 20 ? "" /* the recorded length: truncated or trailing */
                                   : "checksum mismatch: the file is corrupted";
        if (at >= 12 && at < 20) {
            cnn_model *mm = NULL;
            cnn_status st = cnn_model_load_memory(b, size, "model.cnn", &mm);
            const char *msg = cnn_last_error();
            if (!(st == CNN_ERR_FORMAT && !mm && (strstr(msg, "truncated") || strstr(msg, "trailing")))) {
                fprintf(stderr, "length flip at bit %zu: %s: %s\n", bit, cnn_status_name(st), msg);
                bad++;
            }
            cnn_model_free(mm);
            continue;
        }
        bad += !fails_cleanly(b, size, want, "bit flip", bit);
    }
    CHECK(bad == 0);

    /* named cases */
    memcpy(b, good, size);
    b[8] = 7;
    CHECK_FAILS(cnn_model_load_memory(b, size, "model.cnn", &m), CNN_ERR_FORMAT,
                "model.cnn: header: format version 7 is newer than this library supports (1)");
    fix_checksum(b, size); /* whatever the checksum, the version is read first */
    CHECK_FAILS(cnn_model_load_memory(b, size, "model.cnn", &m), CNN_ERR_FORMAT,
                "model.cnn: header: format version 7 is newer than this library supports (1)");
    memcpy(b, "\x89PNG\r\n\x1a\n", 8);
    CHECK_FAILS(cnn_model_load_memory(b, size, "x.png", &m), CNN_ERR_FORMAT,
                "x.png: header: expected magic \"CNNMODEL\", got 89 50 4e 47 0d 0a 1a 0a");
    memcpy(b, good, size);
    memcpy(b + size, "junk", 4);
    CHECK_FAILS(cnn_model_load_memory(b, size + 4, "model.cnn", &m), CNN_ERR_FORMAT,
                "4 bytes of trailing data");
    b[size - 1] ^= 1;
    CHECK_FAILS(cnn_model_load_memory(b, size, "model.cnn", &m), CNN_ERR_FORMAT,
                "model.cnn: checksum mismatch: the file is corrupted");
    CHECK_FAILS(cnn_model_load_memory(NULL, 0, "model.cnn", &m), CNN_ERR_FORMAT, "truncated");
    CHECK_FAILS(cnn_model_load_memory(good, size, "model.cnn", NULL), CNN_ERR_INVALID_ARGUMENT,
                "out must not be NULL");

    /* files on disk that are not model files */
    const char *p = path_in_dir("small.cnn");
    CHECK_OK(cnn_model_load(p, &m));
    cnn_model_free(m);
    CHECK(test_write_file(p, good, size - 1));
    CHECK_FAILS(cnn_model_load(p, &m), CNN_ERR_FORMAT, "small.cnn: the file is truncated");
    CHECK(m == NULL);
    CHECK_FAILS(cnn_model_load(dir, &m), CNN_ERR_IO, "expected a regular model file, got a directory");
    CHECK_FAILS(cnn_model_load("/dev/zero", &m), CNN_ERR_IO,
                "/dev/zero: expected a regular model file, got a character device");
    CHECK_FAILS(cnn_model_load(path_in_dir("missing.cnn"), &m), CNN_ERR_IO,
                "missing.cnn: cannot open: No such file or directory");
    CHECK(test_write_file(p, "", 0));
    CHECK_FAILS(cnn_model_load(p, &m), CNN_ERR_FORMAT, "truncated");
    free(b);
    free(good);
}

/* ---- (3b) crafted files with a valid checksum, written by a tiny encoder
 * that follows docs/MODEL_FILE.md on its own ---- */

typedef struct {
    unsigned char b[4096];
    size_t n;
} out_buf;

static void put(out_buf *o, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        o->b[o->n++] = (unsigned char)(v >> (8 * i));
}

static void put_f32(out_buf *o, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put(o, u, 4);
}

typedef struct {
    uint32_t version, flags, layers, kind, units;
    const char *name;
    size_t name_len;
    uint32_t kernel_rank;
    uint64_t kernel_dims[2];
    uint32_t loss, optimizer;
    uint64_t slots;
    const char *names;  /* flags bit 3: the class names section, raw bytes */
    size_t names_len;
    uint32_t extra; /* bytes after the last section */
} craft;

static const craft craft_default = {.version = 1, .flags = 1, .layers = 1, .kind = 2,
                                    .units = 3, .name = "d", .name_len = 1, .kernel_rank = 2,
                                    .kernel_dims = {4, 3}, .loss = 2, .optimizer = 1,
                                    .slots = 15};

/* A Dense(3) model over 4 features: kernel (4, 3) of 0.5, bias of 0.25. */
static size_t craft_file(out_buf *o, craft c)
{
    o->n = 0;
    memcpy(o->b, "CNNMODEL", 8);
    o->n = 8;
    put(o, c.version, 4);
    put(o, 0, 8); /* length, filled in below */
    put(o, c.flags, 4);
    put(o, 7, 8);           /* seed */
    put(o, 1, 4);           /* input rank */
    put(o, 4, 4);           /* input dims */
    put(o, 0, 4);
    put(o, 0, 4);
    put(o, c.layers, 4);
    put(o, c.kind, 4);
    put(o, 0, 1);           /* layer flags */
    put(o, c.name_len, 2);
    memcpy(o->b + o->n, c.name, c.name_len);
    o->n += c.name_len;
    put(o, c.units, 4);
    put(o, 0, 4);           /* activation */
    put(o, 0, 1);           /* no_bias */
    if (c.flags & 1) {
        put(o, 2, 4);       /* tensors */
        put(o, c.kernel_rank, 4);
        uint64_t count = 1;
        for (uint32_t d = 0; d < c.kernel_rank; d++) {
            uint64_t v = d < 2 ? c.kernel_dims[d] : 1;
            put(o, v, 8);
            count *= v;
        }
        for (uint64_t i = 0; i < count && i < 64; i++)
            put_f32(o, 0.5f);
        put(o, 1, 4);
        put(o, 3, 8);
        for (int i = 0; i < 3; i++)
            put_f32(o, 0.25f);
    }
    if (c.flags & 2) {
        put(o, c.loss, 4);
        put(o, c.optimizer, 4);
        for (int i = 0; i < 2; i++)
            put_f32(o, i == 0 ? 0.01f : 0.0f); /* learning rate, momentum */
        put(o, 0, 1);                           /* nesterov */
        for (int i = 0; i < 4; i++)
            put_f32(o, 0.0f);                   /* beta_1, beta_2, rho, epsilon */
        put(o, 3, 8);                           /* optimizer steps */
        put(o, 1, 4);                           /* epoch */
        put(o, 0, 8);                           /* step */
        put(o, c.slots, 8);
        for (uint64_t i = 0; i < 2 * c.slots && i < 256; i++)
            put_f32(o, 0.125f);
    }
    if (c.flags & 8) {
        memcpy(o->b + o->n, c.names, c.names_len);
        o->n += c.names_len;
    }
    for (uint32_t i = 0; i < c.extra; i++)
        put(o, 0, 1);
    size_t total = o->n + 4;
    for (int i = 0; i < 8; i++)
        o->b[12 + i] = (unsigned char)((uint64_t)total >> (8 * i));
    put(o, 0, 4);
    fix_checksum(o->b, o->n);
    return o->n;
}

static cnn_status load_crafted(craft c, cnn_model **m)
{
    static out_buf o;
    size_t n = craft_file(&o, c);
    return cnn_model_load_memory(o.b, n, "model.cnn", m);
}

static void test_crafted(void)
{
    cnn_model *m = NULL;
    craft c = craft_default;
    CHECK_OK(load_crafted(c, &m));
    if (m) {
        int64_t n;
        const float *k = cnn_model_layer_weights(m, 0, 0, &n);
        const float *bias = cnn_model_layer_weights(m, 0, 1, NULL);
        CHECK(n == 12 && k[11] == 0.5f && bias[2] == 0.25f);
        CHECK(strcmp(cnn_model_layer_name(m, 0), "d") == 0);
        cnn_model_free(m);
    }
    c.flags = 3;
    CHECK_OK(load_crafted(c, &m));
    if (m) {
        int epoch;
        int64_t step;
        cnn_model_training_position(m, &epoch, &step);
        CHECK(epoch == 1 && step == 0);
        cnn_model_free(m);
    }
    c = craft_default, c.kind = 99;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "model.cnn: layer 0: unknown layer kind 99");
    CHECK(m == NULL);
    c = craft_default, c.name = "0123456789012345678901234567890123456789012345678901234567890123",
    c.name_len = 64;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "layer 0: name length 64 is out of range");
    c = craft_default, c.name = "a\0b", c.name_len = 3;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "layer 0: name contains a NUL byte");
    c = craft_default, c.name = "", c.name_len = 0;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "name length 0 is out of range");
    c = craft_default, c.kernel_dims[0] = 3, c.kernel_dims[1] = 4;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT,
                "model.cnn: parameters: layer 0 (d): kernel: expected shape (4, 3), got (3, 4)");
    c = craft_default, c.kernel_rank = 1, c.kernel_dims[0] = 12;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "kernel: expected shape (4, 3), got (12)");
    c = craft_default, c.kernel_rank = 9;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "tensor 0: rank 9 is out of range");
    c = craft_default, c.kernel_dims[0] = (uint64_t)1 << 40;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "tensor 0: 3298534883328 floats run past the end of the data");
    c = craft_default, c.kernel_dims[0] = UINT64_MAX;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "tensor's size is invalid");
    c = craft_default, c.units = 0;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT,
                "model.cnn: layer 0: d (Dense): units must be >= 1, got 0");
    c = craft_default, c.layers = 0xFFFFFFFFu;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "layer count 4294967295 is more than the limit");
    c = craft_default, c.layers = 9000;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "header: 9000 layers cannot fit");
    c = craft_default, c.flags = 0x81;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "model.cnn: header: unknown flags 0x81");
    c = craft_default, c.flags = 2;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "training section without weights");
    c = craft_default, c.flags = 3, c.slots = 14;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "training: 14 optimizer slot values");
    c = craft_default, c.flags = 3, c.slots = (uint64_t)1 << 61;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "optimizer slots: 2 x 2305843009213693952 floats run past");
    c = craft_default, c.flags = 3, c.loss = 77;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "model.cnn: training: compile: loss must be");
    /* issue 12: from_logits is bit 0x100 of the loss code */
    c = craft_default, c.flags = 3, c.loss = 0x104;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT,
                "model.cnn: training: compile: from_logits applies to the cross-entropy losses");
    c = craft_default, c.flags = 3, c.loss = 0x202;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "model.cnn: training: compile: loss must be");
    c = craft_default, c.flags = 3, c.optimizer = 12;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "unknown optimizer kind 12");
    c = craft_default, c.extra = 3;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "3 bytes at offset");
    c = craft_default, c.version = 0;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "format version 0 is invalid");
    CHECK(m == NULL);
}

/* Class names sections: u32 count, then u16 length + bytes per name. */
#define S(bytes) bytes, sizeof(bytes) - 1
static void test_crafted_class_names(void)
{
    cnn_model *m = NULL;
    const char *const *names = NULL;
    craft c = craft_default;
    c.flags = 9;
    c.names = "\3\0\0\0" "\3\0cat" "\3\0dog" "\5\0caf\xc3\xa9";
    c.names_len = 4 + 5 + 5 + 7;
    CHECK_OK(load_crafted(c, &m));
    CHECK(cnn_model_class_names(m, &names) == 3);
    CHECK(names && strcmp(names[0], "cat") == 0 && strcmp(names[1], "dog") == 0
          && strcmp(names[2], "caf\xc3\xa9") == 0);
    cnn_model_free(m);
    m = NULL;
    struct {
        const char *bytes;
        size_t len;
        const char *want;
    } bad[] = {
        {S("\0\0\0\0"), "model.cnn: class names: count 0 is out of range (1..65536)"},
        {S("\1\0\1\0"), "model.cnn: class names: count 65537 is out of range"},
        {S("\xe8\3\0\0\1\0a"), "model.cnn: class names: 1000 names cannot fit in the 3 bytes"},
        {S("\3\0\0\0\1\0a\0\0\2\0cc"),
         "model.cnn: class names: name 1: length 0 is out of range (1..255 bytes)"},
        {S("\1\0\0\0\0\1aaa"), "model.cnn: class names: name 0: length 256 is out of range"},
        {S("\3\0\0\0\1\0a\1\0b\x09\0c"),
         "model.cnn: class names: name 2: bytes: runs past the end of the data"},
        {S("\3\0\0\0\1\0a\3\0b\0b\1\0c"),
         "model.cnn: class names: name 1 contains a NUL byte"},
        {S("\3\0\0\0\1\0a\2\0\xc0\x80\1\0c"),
         "model.cnn: class names: name 1 is not valid UTF-8"},
        {S("\3\0\0\0\1\0a\1\0\xff\1\0c"), "name 1 is not valid UTF-8"},
        {S("\3\0\0\0\1\0a\3\0\xed\xa0\x80\1\0c"), "name 1 is not valid UTF-8"},
        {S("\3\0\0\0\1\0a\1\0\xc3\1\0c"), "name 1 is not valid UTF-8"},
        {S("\3\0\0\0\1\0a\2\0b\n\1\0c"),
         "model.cnn: class names: name 1 contains a control character"},
        {S("\3\0\0\0\1\0a\1\0b\1\0a"),
         "model.cnn: class names: name 2 (\"a\") repeats name 0; names must be unique"},
        {S("\2\0\0\0\1\0a\1\0b"),
         "model.cnn: class names: 2 names, the model's output has 3 classes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = craft_default;
        c.flags = 9;
        c.names = bad[i].bytes;
        c.names_len = bad[i].len;
        CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, bad[i].want);
        CHECK(m == NULL);
    }
    /* a name of 256 bytes, declared so: the length is refused before the bytes */
    static char long_name[4 + 2 + 256];
    memcpy(long_name, "\1\0\0\0\0\1", 6);
    memset(long_name + 6, 'x', 256);
    c = craft_default, c.flags = 9, c.names = long_name, c.names_len = sizeof long_name;
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "name 0: length 256 is out of range");
    c = craft_default, c.flags = 0x41; /* bit 4 dtype policy, bit 5 graph */
    CHECK_FAILS(load_crafted(c, &m), CNN_ERR_FORMAT, "unknown flags 0x41 (known: 0x3f)");
}

/* cnn_utf8_length, the check class names use and the tool escapes with:
 * sequences of 1 to 4 bytes; overlong forms, surrogates, code points past
 * U+10FFFF, stray continuation bytes and sequences cut short are not UTF-8. */
static void test_utf8_length(void)
{
    CHECK(cnn_utf8_length("a", 1) == 1);
    CHECK(cnn_utf8_length("\xc3\xa9x", 3) == 2);         /* U+00E9 */
    CHECK(cnn_utf8_length("\xe2\x82\xac", 3) == 3);     /* U+20AC */
    CHECK(cnn_utf8_length("\xf0\x9f\x98\x80", 4) == 4); /* U+1F600 */
    CHECK(cnn_utf8_length("\xf4\x8f\xbf\xbf", 4) == 4); /* U+10FFFF */
    CHECK(cnn_utf8_length("\xc0\x80", 2) == 0);         /* overlong NUL */
    CHECK(cnn_utf8_length("\xe0\x9f\xbf", 3) == 0);     /* overlong U+07FF */
    CHECK(cnn_utf8_length("\xed\xa0\x80", 3) == 0);     /* surrogate U+D800 */
    CHECK(cnn_utf8_length("\xf4\x90\x80\x80", 4) == 0); /* U+110000 */
    CHECK(cnn_utf8_length("\x80", 1) == 0);
    CHECK(cnn_utf8_length("\xff", 1) == 0);
    CHECK(cnn_utf8_length("\xe2\x82\xac", 2) == 0);     /* cut short by n */
    CHECK(cnn_utf8_length("\xe2\x82x", 3) == 0);         /* not a continuation */
}

/* The API: copies, validation naming the field, clearing, and the file:
 * names round-trip, and a model without them is saved as before. */
static void test_class_names(void)
{
    cnn_model *m = NULL;
    const char *const *got = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(4)));
    CHECK(cnn_model_class_names(m, &got) == 0 && got == NULL);
    /* no layers yet: any count */
    CHECK_OK(cnn_model_set_class_names(m, (const char *[]){"x", "y"}, 2));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = CNN_ACTIVATION_SOFTMAX)));
    CHECK(cnn_model_class_names(m, NULL) == 0); /* adding a layer drops them */
    char buf[3][16] = {"T-shirt/top", "Ankle boot", "\xe7\x8c\xab"};
    const char *names[3] = {buf[0], buf[1], buf[2]};
    CHECK_OK(cnn_model_set_class_names(m, names, 3));
    strcpy(buf[0], "changed"); /* the model keeps its own copy */
    CHECK(cnn_model_class_names(m, &got) == 3 && strcmp(got[0], "T-shirt/top") == 0
          && strcmp(got[2], "\xe7\x8c\xab") == 0);
    CHECK_FAILS(cnn_model_set_class_names(m, names, 2), CNN_ERR_INVALID_ARGUMENT,
                "class names: 2 names, the model's output has 3 classes");
    CHECK_FAILS(cnn_model_set_class_names(m, (const char *[]){"a", "", "c"}, 3),
                CNN_ERR_INVALID_ARGUMENT, "class names: name 1 is empty");
    CHECK_FAILS(cnn_model_set_class_names(m, (const char *[]){"a", "b", "a"}, 3),
                CNN_ERR_INVALID_ARGUMENT, "class names: name 2 (\"a\") repeats name 0");
    CHECK_FAILS(cnn_model_set_class_names(m, (const char *[]){"a", "b\tc", "d"}, 3),
                CNN_ERR_INVALID_ARGUMENT, "name 1 contains a control character");
    CHECK_FAILS(cnn_model_set_class_names(m, (const char *[]){"a", NULL, "d"}, 3),
                CNN_ERR_INVALID_ARGUMENT, "class names: name 1 is NULL");
    CHECK_FAILS(cnn_model_set_class_names(m, NULL, 3), CNN_ERR_INVALID_ARGUMENT,
                "names for a count > 0");
    CHECK_FAILS(cnn_model_set_class_names(m, names, -1), CNN_ERR_INVALID_ARGUMENT,
                "class names");
    CHECK(cnn_model_class_names(m, &got) == 3 && strcmp(got[1], "Ankle boot") == 0);

    /* round trip through the file */
    const char *p = path_in_dir("named.cnn");
    CHECK_OK(cnn_model_save(m, p));
    cnn_model *c = NULL;
    CHECK_OK(cnn_model_load(p, &c));
    CHECK(c && cnn_model_class_names(c, &got) == 3 && strcmp(got[0], "T-shirt/top") == 0
          && strcmp(got[1], "Ankle boot") == 0 && strcmp(got[2], "\xe7\x8c\xab") == 0);
    uint32_t with = 0, without = 0;
    CHECK_OK(cnn_model_checksum(m, &with));
    /* removing them gives the file of a model that never had them */
    CHECK_OK(cnn_model_set_class_names(c, NULL, 0));
    CHECK(cnn_model_class_names(c, NULL) == 0);
    CHECK_OK(cnn_model_checksum(c, &without));
    CHECK(with != without);
    cnn_model_free(c);
    CHECK_OK(cnn_model_set_class_names(m, NULL, 0));
    uint32_t plain = 0;
    CHECK_OK(cnn_model_checksum(m, &plain));
    CHECK(plain == without);

    /* one sigmoid unit: two classes */
    cnn_model *b = NULL;
    CHECK_OK(cnn_model_create(&b, cnn_shape_flat(4)));
    CHECK_OK(cnn_model_add_dense(b, cnn_dense(.units = 1, .activation = CNN_ACTIVATION_SIGMOID)));
    CHECK_OK(cnn_model_set_class_names(b, (const char *[]){"cat", "dog"}, 2));
    CHECK_FAILS(cnn_model_set_class_names(b, (const char *[]){"cat"}, 1),
                CNN_ERR_INVALID_ARGUMENT, "1 names, the model's output has 2 classes (one sigmoid unit)");
    cnn_model_free(b);
    /* an output that is not a vector */
    CHECK_OK(cnn_model_create(&b, cnn_shape_hwc(4, 4, 1)));
    CHECK_OK(cnn_model_add_conv2d(b, cnn_conv2d(.filters = 2, .kernel_size = {3, 3})));
    CHECK_FAILS(cnn_model_set_class_names(b, (const char *[]){"a", "b"}, 2),
                CNN_ERR_INVALID_ARGUMENT, "not a vector of class scores");
    cnn_model_free(b);
    cnn_model_free(m);
}

/* Files saved before class names existed (the fuzz seeds, written by
 * fuzz/gen_corpus.c) load and save again byte for byte. */
static void test_old_files_unchanged(void)
{
    const char *seeds[] = {"every_kind_adam", "flat_built", "global_pool_rmsprop_untrained",
                           "global_pool_sgd", "no_layers", "unbuilt"};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char src[256];
        snprintf(src, sizeof src, "fuzz/corpus/model/%s", seeds[i]);
        size_t n0 = 0, n1 = 0;
        unsigned char *before = test_read_file(src, &n0);
        CHECK(before != NULL);
        cnn_model *m = NULL;
        CHECK_OK(cnn_model_load(src, &m));
        CHECK(cnn_model_class_names(m, NULL) == 0);
        const char *p = path_in_dir("resaved.cnn");
        CHECK_OK(cnn_model_save(m, p));
        unsigned char *after = test_read_file(p, &n1);
        if (!(before && after && n0 == n1 && memcmp(before, after, n0) == 0)) {
            fprintf(stderr, "%s: re-saved bytes differ (%zu vs %zu bytes)\n", src, n0, n1);
            CHECK(0);
        }
        free(before);
        free(after);
        cnn_model_free(m);
    }
}

/* Issue 12: a compiled file in the layout written before from_logits
 * existed (crafted here byte by byte) loads and re-saves to the same bytes;
 * so does one with from_logits, which comes back compiled with it. */
static void test_from_logits_file(void)
{
    static out_buf o;
    for (uint32_t loss = 0x002; loss <= 0x102; loss += 0x100) {
        craft c = craft_default;
        c.flags = 3, c.loss = loss;
        size_t n = craft_file(&o, c);
        cnn_model *m = NULL;
        CHECK_OK(cnn_model_load_memory(o.b, n, "model.cnn", &m));
        if (!m)
            continue;
        cnn_compile_config cc;
        CHECK_OK(cnn_model_compile_config(m, &cc));
        CHECK(cc.loss == CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY);
        CHECK(cc.from_logits == (loss == 0x102));
        const char *path = path_in_dir("crafted.cnn");
        CHECK_OK(cnn_model_save(m, path));
        size_t size = 0;
        unsigned char *b = test_read_file(path, &size);
        CHECK(b && size == n && memcmp(b, o.b, n) == 0);
        free(b);
        cnn_model_free(m);
    }
    /* every activation of issue 12, a linear end and from_logits, trained */
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_create(&m, cnn_shape_flat(4)));
    CHECK_OK(cnn_model_set_threads(m, 1));
    for (int a = CNN_ACTIVATION_SILU; a <= CNN_ACTIVATION_MISH; a++)
        CHECK_OK(a % 2 ? cnn_model_add_dense(m, cnn_dense(.units = 3, .activation = a))
                       : cnn_model_add_activation(m, cnn_activation_layer(.activation = a)));
    CHECK_OK(cnn_model_add_dense(m, cnn_dense(.units = 3)));
    CHECK_OK(cnn_model_compile(m, cnn_compile(.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                              .optimizer = cnn_adam(), .from_logits = true)));
    cnn_tensor *x = random_tensor(2, (int64_t[]){6, 4}, 5);
    cnn_tensor *y = random_tensor(1, (int64_t[]){6}, 6);
    for (int i = 0; i < 6; i++)
        y->data[i] = (float)(i % 3);
    CHECK_OK(cnn_model_fit(m, x, y, cnn_fit(.epochs = 1, .batch_size = 3), NULL));
    check_round_trip(m, x, "activations.cnn");
    cnn_model *c = NULL;
    CHECK_OK(cnn_model_load(path_in_dir("activations.cnn"), &c));
    cnn_compile_config cc;
    CHECK(c && cnn_model_compile_config(c, &cc) == CNN_OK && cc.from_logits);
    cnn_model_free(c);
    cnn_tensor_free(x);
    cnn_tensor_free(y);
    cnn_model_free(m);
}

/* ---- (4) atomic saving ---- */

static cnn_model *sized_model(int units)
{
    cnn_model *m = NULL;
    cnn_model_create(&m, cnn_shape_flat(64));
    cnn_model_add_dense(m, cnn_dense(.units = units));
    cnn_model_layer_weights(m, 0, 0, NULL); /* build */
    return m;
}

typedef struct {
    cnn_model *m;
    const char *path;
} atomic_save_args;

static cnn_status save_args(void *ctx)
{
    atomic_save_args *a = ctx;
    return cnn_model_save(a->m, a->path);
}

static void test_atomic_save(void)
{
    const char *p = path_in_dir("atomic.cnn");
    cnn_model *old = sized_model(2), *big = sized_model(100);
    CHECK_OK(cnn_model_save(old, p));
    CHECK(chmod(p, 0640) == 0);
    size_t n0 = 0;
    unsigned char *before = test_read_file(p, &n0);

    /* a full disk: writes past 1000 bytes fail with EFBIG (SIGXFSZ ignored) */
    char msg[1024];
    atomic_save_args args = {big, p};
    cnn_status st = test_full_disk(1000, save_args, &args, msg, sizeof msg);
    if (!(st == CNN_ERR_IO && strstr(msg, "atomic.cnn: cannot write the temporary file: File too large"))) {
        fprintf(stderr, "full disk: got %s: %s\n", cnn_status_name(st), msg);
        CHECK(0);
    } else {
        CHECK(1);
    }
    size_t n1 = 0;
    unsigned char *after = test_read_file(p, &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    CHECK(count_entries("atomic.cnn.tmp.") == 0);
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_load(p, &m));
    CHECK(m && cnn_model_param_count(m) == 64 * 2 + 2);
    cnn_model_free(m);
    free(after);

    /* a good save replaces the file whole and keeps its permissions */
    CHECK_OK(cnn_model_save(big, p));
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0640);
    CHECK_OK(cnn_model_load(p, &m));
    CHECK(m && cnn_model_param_count(m) == 64 * 100 + 100);
    cnn_model_free(m);
    CHECK(count_entries("atomic.cnn.tmp.") == 0);

    /* nowhere to write */
    CHECK_FAILS(cnn_model_save(old, path_in_dir("no/such/dir/x.cnn")), CNN_ERR_IO,
                "x.cnn: cannot create a temporary file beside it: No such file or directory");
    CHECK(mkdir(path_in_dir("sub"), 0755) == 0);
    CHECK_FAILS(cnn_model_save(old, path_in_dir("sub")), CNN_ERR_IO,
                "sub: expected a regular file to replace, got a directory; it is left untouched");
    CHECK(count_entries("sub.tmp.") == 0);
    CHECK(rmdir(path_in_dir("sub")) == 0);
    CHECK_FAILS(cnn_model_save(old, ""), CNN_ERR_INVALID_ARGUMENT, "path are required");
    CHECK_FAILS(cnn_model_save(NULL, p), CNN_ERR_INVALID_ARGUMENT, "path are required");
    free(before);
    cnn_model_free(old);
    cnn_model_free(big);
}

/* Issue 18.4: a file with a valid checksum whose optimizer step count is
 * INT64_MAX (the next step overflowed), or whose position lies past the
 * end of an epoch (fit skipped the epoch's rest), is refused: at load for
 * what no real run makes, at fit for a step past the epoch's end. */
static void test_training_position(void)
{
    size_t size = 0;
    unsigned char *good = small_model_file(&size);
    CHECK(good != NULL);
    if (!good)
        return;
    /* optimizer steps 2, epoch 1, step 0, 28 slots: the training block */
    const unsigned char want[28] = {2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                    28, 0, 0, 0, 0, 0, 0, 0};
    unsigned char *at = memmem(good, size, want, sizeof want);
    CHECK(at != NULL);
    if (!at) {
        free(good);
        return;
    }
    size_t off = (size_t)(at - good);
    unsigned char *b = malloc(size);
    memcpy(b, good, size);
    for (int i = 0; i < 8; i++)
        b[off + i] = i == 7 ? 0x7F : 0xFF; /* INT64_MAX */
    fix_checksum(b, size);
    CHECK(fails_cleanly(b, size, "training: position out of range (optimizer steps"
                                 " 9223372036854775807, epoch 1, step 0): steps must be at most"
                                 " 2^53", "steps INT64_MAX", off));
    memcpy(b, good, size);
    b[off + 12 + 7] = 0x40; /* step 2^62 */
    fix_checksum(b, size);
    CHECK(fails_cleanly(b, size, "step 4611686018427387904): steps must be at most 2^53",
                        "step 2^62", off));
    /* step 3 of an epoch of 2 steps: loads, and fit refuses to skip */
    memcpy(b, good, size);
    b[off + 8] = 0;  /* epoch 0 */
    b[off + 12] = 3; /* step 3 */
    fix_checksum(b, size);
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_load_memory(b, size, "model.cnn", &m));
    if (m) {
        int epoch;
        int64_t step;
        cnn_model_training_position(m, &epoch, &step);
        CHECK(epoch == 0 && step == 3);
        cnn_tensor *x = random_tensor(4, (int64_t[]){4, 3, 3, 1}, 5);
        cnn_tensor *y = random_tensor(1, (int64_t[]){4}, 6);
        for (int i = 0; i < 4; i++)
            y->data[i] = (float)(i % 2);
        CHECK_FAILS(cnn_model_fit(m, x, y, cnn_fit(.batch_size = 2, .initial_step = 3), NULL),
                    CNN_ERR_INVALID_ARGUMENT, "fit: initial_step 3 is past the end of epoch 1,"
                                              " which has 2 steps of batch size 2");
        CHECK_OK(cnn_model_fit(m, x, y, cnn_fit(.batch_size = 2, .initial_step = 2), NULL));
        cnn_tensor_free(x);
        cnn_tensor_free(y);
    }
    cnn_model_free(m);
    free(b);
    free(good);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/cnn_test_model_file.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_resume(cnn_adam(), "adam");
    test_resume(cnn_sgd(.learning_rate = 0.05f, .momentum = 0.9f, .nesterov = true), "sgd");
    test_resume(cnn_rmsprop(.momentum = 0.5f), "rmsprop");
    test_damage();
    test_training_position();
    test_crafted();
    test_crafted_class_names();
    test_utf8_length();
    test_class_names();
    test_old_files_unchanged();
    test_from_logits_file();
    test_atomic_save();
    CHECK(test_remove_tree(dir));
    return test_finish("test_model_file");
}
