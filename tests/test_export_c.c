/* cnn_model_export_c and cnn_model_export_c_int8 through the library call
 * (tests/test_export.sh compiles and runs what they write): statuses and
 * messages, the arena the header states against the memory planner's, the
 * atomic write on a full disk, refusals that write nothing, and the
 * quantizer's op list the int8 exporter reads (unpacked weights through
 * the reference GEMM give cnn_qmodel_predict_int8's bytes). */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/qgemm.h"
#include "model/memory.h"
#include "quant/qmodel.h"
#include "test.h"

static cnn_model *small_chain(void)
{
    cnn_model *m = NULL;
    if (cnn_model_create(&m, cnn_shape_hwc(6, 5, 2)))
        return NULL;
    cnn_model_set_seed(m, 7);
    cnn_model_add_conv2d(m, cnn_conv2d(.filters = 4, .kernel_size = {3, 3},
                                       .activation = CNN_ACTIVATION_RELU));
    cnn_model_add_flatten(m, cnn_flatten());
    cnn_model_add_dense(m, cnn_dense(.units = 3));
    return m;
}

static long header_define(const char *path, const char *macro)
{
    size_t size = 0;
    char *text = (char *)test_read_file(path, &size);
    if (!text)
        return -1;
    char *p = strstr(text, macro);
    long v = p ? strtol(p + strlen(macro), NULL, 10) : -1;
    free(text);
    return v;
}

typedef struct {
    cnn_model *m;
    const char *dir;
} export_args;

static cnn_status export_call(void *ctx)
{
    export_args *a = ctx;
    return cnn_model_export_c(a->m, a->dir, "disk", NULL);
}

int main(void)
{
    char dir[] = "/tmp/cnn_export_c_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    cnn_model *m = small_chain();
    CHECK(m != NULL);

    /* the files, and the arena the header states is the planner's */
    cnn_export_info info;
    CHECK_OK(cnn_model_export_c(m, dir, "small", &info));
    size_t offsets[3], total = 0, scratch = 0;
    CHECK_OK(cnn_graph_plan(m, 1, false, offsets, &total, &scratch));
    CHECK(info.arena_bytes == (int64_t)(total * sizeof(float)));
    CHECK(header_define(test_path(dir, "small.h"), "#define SMALL_ARENA_BYTES ") ==
          (long)info.arena_bytes);
    CHECK(info.weight_bytes == cnn_model_param_count(m) * 4 && info.test_vectors == 3);
    CHECK(access(test_path(dir, "small.c"), F_OK) == 0);
    CHECK(access(test_path(dir, "small_test.c"), F_OK) == 0);

    /* names that are not C identifiers */
    const char *bad[] = {"", "9lives", "a-b", "../x", "_hidden", "static", "a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_FAILS(cnn_model_export_c(m, dir, bad[i], NULL), CNN_ERR_INVALID_ARGUMENT,
                    "expected a C identifier");
    CHECK_FAILS(cnn_model_export_c(NULL, dir, "x", NULL), CNN_ERR_INVALID_ARGUMENT, "no model");
    CHECK_FAILS(cnn_model_export_c(m, NULL, "x", NULL), CNN_ERR_INVALID_ARGUMENT,
                "no output directory");
    /* a target that is a directory: refused before anything is written */
    CHECK(mkdir(test_path(dir, "taken_test.c"), 0700) == 0);
    CHECK_FAILS(cnn_model_export_c(m, dir, "taken", NULL), CNN_ERR_IO, "not a regular file");
    CHECK(access(test_path(dir, "taken.h"), F_OK) != 0);

    /* a full disk: the export fails and the old file stays whole */
    CHECK(test_write_file(test_path(dir, "disk.c"), "old\n", 4));
    export_args args = {m, dir};
    char msg[512];
    cnn_status st = test_full_disk(1000, export_call, &args, msg, sizeof msg);
    CHECK(st == CNN_ERR_IO && strstr(msg, "File too large"));
    size_t size = 0;
    unsigned char *old = test_read_file(test_path(dir, "disk.c"), &size);
    CHECK(old && size == 4 && memcmp(old, "old\n", 4) == 0);
    free(old);

    /* a layer with no exported kernel: named, nothing written */
    cnn_model *sep = NULL;
    CHECK_OK(cnn_model_create(&sep, cnn_shape_hwc(6, 6, 2)));
    CHECK_OK(cnn_model_add_conv2d(sep, cnn_conv2d(.filters = 2, .kernel_size = {1, 1})));
    CHECK_OK(cnn_model_add_separable_conv2d(
        sep, cnn_separable_conv2d(.filters = 2, .kernel_size = {3, 3}, .name = "sep")));
    CHECK_FAILS(cnn_model_export_c(sep, test_path(dir, "never"), "sep", NULL),
                CNN_ERR_INVALID_ARGUMENT, "layer 1 'sep' (SeparableConv2D)");
    CHECK(access(test_path(dir, "never"), F_OK) != 0);
    cnn_model_free(sep);

    /* int8: the op list, unpacked weights through the reference GEMM */
    int64_t dims[4] = {8, 6, 5, 2};
    cnn_tensor *x = NULL;
    CHECK_OK(cnn_tensor_create(&x, 4, dims));
    for (int64_t i = 0; i < cnn_tensor_size(x); i++)
        x->data[i] = (float)((i * 37) % 101) / 100.0f;
    cnn_qmodel *q = NULL;
    CHECK_OK(cnn_qmodel_create(&q, m, x, 0));
    if (q) {
        CHECK(cnn_qmodel_op_count(q) == 2);
        cnn_qop_info op;
        cnn_qmodel_op_info(q, 1, &op);
        CHECK(op.kind == CNN_QOP_DENSE && op.N == 3 && op.in_elems == 48 &&
              op.weight_count == 48 * 3);
        int8_t *w = malloc((size_t)op.weight_count), xq[48], h[8 * 48], y[8 * 3], ref[3];
        int8_t xin[8 * 60];
        cnn_q_quantize(x->data, 8 * 60, cnn_qmodel_input_params(q), xin);
        CHECK_OK(cnn_qmodel_predict_int8(q, xin, 8, y));
        /* op 0 by the reference convolution and op 1 by the reference
         * GEMM, on the unpacked weights: cnn_qmodel_predict_int8's bytes */
        cnn_qop_info op0;
        cnn_qmodel_op_info(q, 0, &op0);
        int8_t *k0 = malloc((size_t)op0.weight_count);
        cnn_qmodel_op_weights(q, 0, k0);
        cnn_qmodel_op_weights(q, 1, w);
        cnn_qoutput o0 = {op0.bias, op0.multiplier, op0.shift, op0.out.zero_point, op0.lo,
                          op0.hi};
        cnn_qoutput o1 = {op.bias, op.multiplier, op.shift, op.out.zero_point, op.lo, op.hi};
        int same = 1;
        for (int e = 0; e < 8; e++) {
            cnn_qconv_ref(&op0.g, xin + e * 60, op0.in.zero_point, k0, op0.N, &o0, 0,
                          (int64_t)op0.g.oh * op0.g.ow, h + e * 48);
            memcpy(xq, h + e * 48, 48);
            cnn_qgemm_ref(1, 3, 48, xq, 48, op.in.zero_point, w, &o1, ref, 3);
            same &= memcmp(ref, y + e * 3, 3) == 0;
        }
        CHECK(same);
        free(w);
        free(k0);
        cnn_qmodel_free(q);
    }
    CHECK_OK(cnn_model_export_c_int8(m, x, 0, dir, "small8", &info));
    CHECK(header_define(test_path(dir, "small8.h"), "#define SMALL8_ARENA_BYTES ") ==
          (long)info.arena_bytes);
    cnn_tensor_free(x);

    /* int8 of a graph: exported, its arena the quantizer's own plan; the
     * same through cnn_qmodel_export_c */
    cnn_model *g = NULL;
    CHECK_OK(cnn_model_create(&g, cnn_shape_flat(4)));
    CHECK_OK(cnn_model_add_dense(g, cnn_dense(.units = 4, .name = "a")));
    CHECK_OK(cnn_model_add_dense(g, cnn_dense(.units = 4, .name = "b")));
    const char *both[] = {"a", "b"};
    CHECK_OK(cnn_model_set_next_inputs(g, 2, both));
    CHECK_OK(cnn_model_add_add(g, cnn_merge()));
    CHECK_OK(cnn_model_export_c_int8(g, NULL, 0, test_path(dir, "g8"), "g", &info));
    cnn_qmodel *gq = NULL;
    int64_t gdims[2] = {64, 4};
    cnn_tensor *gx = NULL;
    CHECK_OK(cnn_tensor_create(&gx, 2, gdims));
    for (int64_t i = 0; i < cnn_tensor_size(gx); i++)
        gx->data[i] = (float)((i * 29) % 97) / 97.0f;
    CHECK_OK(cnn_qmodel_create(&gq, g, gx, 0));
    if (gq) {
        /* Dense, Dense, Add: three tensors live at once besides the input */
        CHECK(info.arena_bytes == cnn_qmodel_arena_bytes(gq));
        CHECK(header_define(test_path(dir, "g8/g.h"), "#define G_ARENA_BYTES ") ==
              (long)cnn_qmodel_arena_bytes(gq));
        CHECK_OK(cnn_qmodel_export_c(gq, test_path(dir, "gq"), "gq", &info));
        CHECK(info.test_vectors == 3 && info.arena_bytes == cnn_qmodel_arena_bytes(gq));
        CHECK(access(test_path(dir, "gq/gq_test.c"), F_OK) == 0);
        CHECK_FAILS(cnn_qmodel_export_c(gq, test_path(dir, "never"), "1x", NULL),
                    CNN_ERR_INVALID_ARGUMENT, "C identifier");
        cnn_qmodel_free(gq);
    }
    CHECK_FAILS(cnn_qmodel_export_c(NULL, test_path(dir, "never"), "n", NULL),
                CNN_ERR_INVALID_ARGUMENT, "no quantized model");
    CHECK(access(test_path(dir, "never"), F_OK) != 0);
    cnn_tensor_free(gx);
    cnn_model_free(g);
    cnn_model_free(m);

    if (!test_remove_tree(dir))
        fprintf(stderr, "could not remove %s\n", dir);
    return test_finish("test_export_c");
}
