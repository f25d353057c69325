/* cnn train --replace-head N --freeze LAYER on MLPerf Tiny's MobileNetV1
 * (models/mlperf-tiny/, 96x96x3, shipped: always run) with a folder of a
 * few synthetic images of other sizes and channel counts (the loader
 * resizes them and makes them RGB), as the README's transfer-learning
 * walk-through does on Fashion-MNIST. Checks, on the saved models:
 * - frozen through activation_26: every base weight keeps its bits (the
 *   BatchNormalization moving statistics too: a frozen BN runs in
 *   inference mode), the new head trains (its loss falls), the frozen
 *   flags are saved;
 * - frozen through activation_12: the layers above it train (weights and
 *   moving statistics change), the ones below keep their bits;
 * - the new head's initial weights come from --seed (they came from seed
 *   0 whatever --seed said, for a Keras file).
 * Runs the tool beside this program (build/cnn for build/tests/test_x),
 * or $CNN. Run from the repository root. */
#include <stdlib.h>
#include <unistd.h>

#include "test.h"

#define MOBILENET "models/mlperf-tiny/mlperf-tiny-mobilenetv1-vww96.h5"

static char tmp[64];
static char tool[512];

/* Three classes of four images: grey stripes 28x28, RGB bars 30x40,
 * a grey checkerboard 20x20; each image shifted a little. */
static void write_images(void)
{
    static const char *const cls[] = {"bars", "checks", "stripes"};
    char path[256];
    uint8_t px[30 * 40 * 3];
    for (int c = 0; c < 3; c++) {
        snprintf(path, sizeof path, "%s/data/%s", tmp, cls[c]);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
        CHECK(system(cmd) == 0);
        for (int j = 0; j < 4; j++) {
            int rows = c == 0 ? 30 : c == 1 ? 20 : 28, cols = c == 0 ? 40 : rows;
            int ch = c == 0 ? 3 : 1;
            for (int y = 0; y < rows; y++)
                for (int x = 0; x < cols; x++)
                    for (int k = 0; k < ch; k++) {
                        int on = c == 0   ? ((x + j) / 5) % 2
                                 : c == 1 ? ((x + j) / 4 + y / 4) % 2
                                          : ((y + j) / 3) % 2;
                        px[(y * cols + x) * ch + k] = (uint8_t)(on ? 230 - 40 * k : 20 + 10 * j);
                    }
            snprintf(path, sizeof path, "%s/data/%s/%d.png", tmp, cls[c], j);
            CHECK_OK(cnn_image_save_png(path, px, rows, cols, ch));
        }
    }
}

/* Runs `cnn train MOBILENET --data tmp/data ARGS`; 1 if it exited 0. */
static int train(const char *args)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             "'%s' train " MOBILENET " --data '%s/data' --threads 1 --no-checkpoint %s"
             " >'%s/log' 2>&1",
             tool, tmp, args, tmp);
    int rc = system(cmd);
    if (rc != 0) {
        fprintf(stderr, "failed (%d): %s\n", rc, cmd);
        snprintf(cmd, sizeof cmd, "tail -n 5 '%s/log' >&2", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
    }
    return rc == 0;
}

static cnn_model *load(const char *name)
{
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_load(test_path(tmp, name), &m));
    return m;
}

static int find(const cnn_model *m, const char *name)
{
    for (int i = 0; i < cnn_model_layer_count(m); i++)
        if (strcmp(cnn_model_layer_name(m, i), name) == 0)
            return i;
    return -1;
}

/* Whether layer i holds the same weights, bit for bit, in a and b. */
static bool same_layer(cnn_model *a, cnn_model *b, int i)
{
    for (int k = 0; k < CNN_MAX_LAYER_WEIGHTS; k++) {
        int64_t na = 0, nb = 0;
        const float *va = cnn_model_layer_weights(a, i, k, &na);
        const float *vb = cnn_model_layer_weights(b, i, k, &nb);
        if (!va != !vb || na != nb || (va && memcmp(va, vb, (size_t)na * sizeof *va) != 0))
            return false;
    }
    return true;
}

/* Layers 0..through keep their bits; if changed_from >= 0, each layer
 * with weights from changed_from to the one before the head changed. */
static void check_frozen(cnn_model *orig, cnn_model *tuned, int through, int changed_from)
{
    const int L = cnn_model_layer_count(orig);
    CHECK(cnn_model_layer_count(tuned) == L);
    int kept = 0, changed = 0, with_weights = 0;
    for (int i = 0; i <= through; i++) {
        bool same = same_layer(orig, tuned, i);
        kept += same;
        if (!same)
            fprintf(stderr, "transfer: frozen layer %s changed\n", cnn_model_layer_name(orig, i));
        CHECK(!cnn_model_layer_trainable(tuned, i));
    }
    CHECK(kept == through + 1);
    for (int i = changed_from; changed_from >= 0 && i < L - 1; i++) {
        if (!cnn_model_layer_param_count(orig, i))
            continue;
        with_weights++;
        changed += !same_layer(orig, tuned, i);
        CHECK(cnn_model_layer_trainable(tuned, i));
    }
    if (changed_from >= 0)
        CHECK(with_weights > 0 && changed == with_weights);
    CHECK(cnn_model_layer_trainable(tuned, L - 1));
}

/* The loss of the history CSV's first and last epochs. */
static void history_losses(const char *name, double *first, double *last)
{
    *first = *last = NAN;
    FILE *f = fopen(test_path(tmp, name), "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char line[512];
    int epoch;
    double loss;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%d,%lf", &epoch, &loss) == 2) {
            if (epoch == 1)
                *first = loss;
            *last = loss;
        }
    fclose(f);
}

/* The base frozen through activation_26: only the new head trains. */
static void test_head_only(cnn_model *orig)
{
    char args[600];
    snprintf(args, sizeof args,
             "--replace-head 3 --freeze activation_26 --epochs 10 --batch-size 4 --lr 0.05"
             " --seed 1 --history '%s/head.csv' --save '%s/head.cnn'", tmp, tmp);
    CHECK(train(args));
    cnn_model *tuned = load("head.cnn");
    if (!tuned)
        return;
    const int through = find(orig, "activation_26");
    CHECK(through > 0 && cnn_model_output_shape(tuned).dims[0] == 3);
    CHECK(cnn_model_trainable_param_count(tuned) == 256 * 3 + 3);
    check_frozen(orig, tuned, through, -1);
    /* the head trains: the loss falls */
    double first, last;
    history_losses("head.csv", &first, &last);
    fprintf(stderr, "transfer: head-only loss %.4f -> %.4f\n", first, last);
    CHECK(last < 0.8 * first);
    cnn_model_free(tuned);
}

/* Frozen through activation_12: the blocks above it train too, their
 * BatchNormalization in training mode (moving statistics updated). */
static void test_upper_blocks(cnn_model *orig)
{
    char args[600];
    snprintf(args, sizeof args,
             "--replace-head 3 --freeze activation_12 --epochs 1 --batch-size 4 --seed 1"
             " --save '%s/upper.cnn'", tmp);
    CHECK(train(args));
    cnn_model *tuned = load("upper.cnn");
    if (!tuned)
        return;
    const int through = find(orig, "activation_12");
    CHECK(through > 0);
    check_frozen(orig, tuned, through, through + 1);
    cnn_model_free(tuned);
}

/* cnn evaluate NAME.cnn on the training folder: its loss, NAN if none. */
static double evaluate_loss(const char *name)
{
    char cmd[800];
    snprintf(cmd, sizeof cmd, "'%s' evaluate '%s/%s.cnn' --data '%s/data' >'%s/eval' 2>&1", tool,
             tmp, name, tmp, tmp);
    CHECK(system(cmd) == 0);
    FILE *f = fopen(test_path(tmp, "eval"), "r");
    double loss = NAN;
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "loss: %lf", &loss) == 1)
            break;
    if (f)
        fclose(f);
    return loss;
}

/* A frozen BatchNormalization runs in inference mode while the model
 * trains: with one step over every image and a rate too small to move
 * the head, the training loss is the loss cnn evaluate computes with the
 * moving statistics. Unfrozen, the BNs normalise with the batch's own
 * statistics and the two differ (so the comparison can tell). */
static void test_frozen_bn_inference(void)
{
    for (int frozen = 1; frozen >= 0; frozen--) {
        char args[600];
        snprintf(args, sizeof args,
                 "--replace-head 3 %s --epochs 1 --batch-size 12 --lr 1e-9 --seed 3"
                 " --history '%s/bn.csv' --save '%s/bn.cnn'",
                 frozen ? "--freeze activation_26" : "", tmp, tmp);
        CHECK(train(args));
        double first, last;
        history_losses("bn.csv", &first, &last);
        double eval = evaluate_loss("bn");
        fprintf(stderr, "transfer: %s: training loss %.5f, evaluate %.5f\n",
                frozen ? "frozen" : "unfrozen", first, eval);
        if (frozen)
            CHECK(fabs(first - eval) <= 2e-4 + 1e-4 * fabs(eval));
        else
            CHECK(fabs(first - eval) > 1e-2);
    }
}

/* The new head is drawn from --seed: with a learning rate too small to
 * move it, the saved head is the one cnn_model_replace_head_seeded draws
 * from that seed, not seed 0's. */
static void test_head_seed(void)
{
    char args[600];
    snprintf(args, sizeof args,
             "--replace-head 3 --freeze activation_26 --epochs 1 --batch-size 12 --lr 1e-9"
             " --seed 7 --save '%s/seed.cnn'", tmp);
    CHECK(train(args));
    cnn_model *tuned = load("seed.cnn"), *s7 = NULL, *s0 = NULL;
    CHECK_OK(cnn_model_load_keras(MOBILENET, &s7, NULL));
    CHECK_OK(cnn_model_load_keras(MOBILENET, &s0, NULL));
    if (tuned && s7 && s0) {
        CHECK_OK(cnn_model_replace_head_seeded(s7, 3, 7));
        CHECK_OK(cnn_model_replace_head(s0, 3)); /* the loaded model's seed: 0 */
        const int head = cnn_model_layer_count(tuned) - 1;
        int64_t n = 0, n7 = 0, n0 = 0;
        const float *w = cnn_model_layer_weights(tuned, head, 0, &n);
        const float *w7 = cnn_model_layer_weights(s7, head, 0, &n7);
        const float *w0 = cnn_model_layer_weights(s0, head, 0, &n0);
        CHECK(w && w7 && w0 && n == 256 * 3 && n7 == n && n0 == n);
        if (w && w7 && w0 && n7 == n && n0 == n) {
            test_close("head from --seed 7", w, w7, (long)n, 1e-6, 0);
            double far = 0;
            for (int64_t i = 0; i < n; i++)
                far = fmax(far, fabs((double)w[i] - w0[i]));
            CHECK(far > 1e-2);
        }
    }
    cnn_model_free(tuned);
    cnn_model_free(s7);
    cnn_model_free(s0);
}

int main(int argc, char **argv)
{
    (void)argc;
    const char *env = getenv("CNN");
    if (env && *env)
        snprintf(tool, sizeof tool, "%s", env);
    else {
        const char *slash = strrchr(argv[0], '/');
        snprintf(tool, sizeof tool, "%.*s../cnn", slash ? (int)(slash - argv[0] + 1) : 0,
                 argv[0]);
    }
    snprintf(tmp, sizeof tmp, "/tmp/cnn-transfer-XXXXXX");
    if (!mkdtemp(tmp) || access(tool, X_OK) != 0) {
        fprintf(stderr, "test_transfer_cli: no %s or no temporary folder\n", tool);
        return 1;
    }
    write_images();
    cnn_model *orig = NULL;
    CHECK_OK(cnn_model_load_keras(MOBILENET, &orig, NULL));
    if (orig) {
        test_head_only(orig);
        test_upper_blocks(orig);
    }
    test_head_seed();
    test_frozen_bn_inference();
    cnn_model_free(orig);
    if (!test_remove_tree(tmp))
        fprintf(stderr, "could not remove %s\n", tmp);
    return test_finish("test_transfer_cli");
}
