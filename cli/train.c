/* cnn train MODEL ...: fit a description or a saved model on IDX data, with
 * a checkpoint after every epoch, Ctrl-C that checkpoints and says how to
 * resume, --resume, a CSV history and a plot of the curves. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char help[] =
    "Usage: cnn train MODEL (--data DIR | --train-images FILE --train-labels FILE)\n"
    "                 [options]\n"
    "\n"
    "Trains MODEL, a description (fresh weights) or a saved .cnn model (continues\n"
    "training it), with the Keras progress bar, and saves it with --save.\n"
    "\n"
    "Data (IDX files, plain or .gz; pixels are scaled to [0, 1] and given a channel\n"
    "axis, as for MNIST):\n"
    "  --data DIR               the MNIST layout: train-images-idx3-ubyte[.gz],\n"
    "                           train-labels-idx1-ubyte[.gz], t10k-images-...,\n"
    "                           t10k-labels-...\n"
    "  --train-images FILE      training images, with --train-labels FILE\n"
    "  --test-images FILE       test images, with --test-labels FILE: after\n"
    "                           training the test loss and accuracy are printed\n"
    "  --validation-split F     validate on the last fraction F of the training data\n"
    "                           (taken before shuffling, as Keras does; default 0)\n"
    "  --validate-on-test       validate on the test data after every epoch instead\n"
    "\n"
    "Training:\n"
    "  --epochs N               the number of epochs (default 1); with --resume\n"
    "                           the total, as Keras's initial_epoch counts\n"
    "  --batch-size B           examples per step (default 32)\n"
    "  --optimizer NAME         sgd, adam or rmsprop (default adam)\n"
    "  --lr X                   learning rate (default: the optimizer's Keras\n"
    "                           default: sgd 0.01, adam 0.001, rmsprop 0.001)\n"
    "  --momentum M             momentum for sgd and rmsprop (default 0)\n"
    "  --loss NAME              sparse_categorical_crossentropy (the default:\n"
    "                           integer labels), categorical_crossentropy\n"
    "                           (labels made one-hot),\n"
    "                           binary_crossentropy or mse\n"
    "  --seed S                 seeds the weights of a description, dropout and\n"
    "                           the shuffling (default 0); the same seed and\n"
    "                           --threads give the same weights\n"
    "  --threads T              worker threads (default 0: all cores)\n"
    "  --max-memory BYTES       the memory budget (default 4G; suffixes K, M, G)\n"
    "\n"
    "A saved model that was compiled keeps its loss, optimizer and optimizer state;\n"
    "giving --optimizer, --lr, --momentum or --loss compiles it anew (fresh state).\n"
    "\n"
    "Output:\n"
    "  --save FILE              save the trained model (a .cnn file)\n"
    "  --checkpoint FILE        where to save a checkpoint after every epoch and\n"
    "                           on Ctrl-C (default: NAME.ckpt.cnn for --save\n"
    "                           NAME.cnn, else cnn-train.ckpt.cnn); it is kept\n"
    "                           after training\n"
    "  --resume FILE            continue from a checkpoint's training position (also\n"
    "                           mid-epoch): run the same command with --resume added;\n"
    "                           the result equals an uninterrupted run\n"
    "  --history FILE           write epoch,loss,accuracy,val_loss,val_accuracy\n"
    "                           as CSV after every epoch (a resumed run keeps\n"
    "                           the earlier rows)\n"
    "  --plot FILE              draw the loss and accuracy curves as a PNG\n"
    "  -h, --help               show this help\n"
    "\n"
    "Ctrl-C finishes the current step, saves the checkpoint and exits with status\n"
    "130, printing the command that resumes; a second Ctrl-C quits without saving.\n";

typedef struct train_opts {
    cli_data data;
    int epochs, batch_size, threads;
    const char *optimizer, *loss, *save, *checkpoint, *resume, *history, *plot;
    double lr, momentum, validation_split;
    bool lr_given, momentum_given, validate_on_test;
    uint64_t seed;
    int64_t max_memory;
} train_opts;

/* What the progress callback needs; it runs inside cnn_model_fit. */
typedef struct train_run {
    const char *cmd;
    const train_opts *o;
    cnn_model *m;
    cli_history history;
    int64_t steps_done;   /* optimizer steps in this run */
    int64_t steps;        /* steps per epoch */
    int failed;           /* an exit code when a checkpoint or file could not be written */
    int checkpoint_epoch; /* the epoch of the last checkpoint written, 0 if none */
} train_run;

static void default_checkpoint(const char *save, char *buf, size_t cap)
{
    size_t n = save ? strlen(save) : 0;
    if (!save)
        snprintf(buf, cap, "cnn-train.ckpt.cnn");
    else if (n >= 4 && strcmp(save + n - 4, ".cnn") == 0)
        snprintf(buf, cap, "%.*s.ckpt.cnn", (int)(n - 4), save);
    else
        snprintf(buf, cap, "%s.ckpt.cnn", save);
}

static bool on_progress(const cnn_progress *p, void *user)
{
    train_run *r = user;
    cnn_progress_console(p, stdout);
    r->steps = p->steps;
    if (p->event == CNN_PROGRESS_BATCH_END)
        r->steps_done++;
    if (p->event == CNN_PROGRESS_EPOCH_END) {
        if (cnn_model_save(r->m, r->o->checkpoint)) {
            r->failed = cli_fail(r->cmd);
            return false;
        }
        r->checkpoint_epoch = p->epoch;
        cli_epoch e = {p->epoch, p->loss, p->accuracy, p->val_loss, p->val_accuracy};
        if ((r->o->history || r->o->plot) && (r->failed = cli_history_set(r->cmd, &r->history, e)))
            return false;
        if (r->o->history
            && (r->failed = cli_history_write(r->cmd, r->o->history, &r->history)))
            return false;
        if (r->o->plot && (r->failed = cli_plot_history(r->cmd, r->o->plot, &r->history)))
            return false;
    }
    return !cli_interrupted();
}

static int check_options(const char *cmd, const train_opts *o)
{
    int rc = cli_data_check(cmd, &o->data, true, o->validate_on_test);
    if (rc)
        return rc;
    if (o->optimizer && !cli_optimizer_from_name(o->optimizer))
        return cli_usage_error(cmd, "--optimizer: expected sgd, adam or rmsprop, got '%s'",
                               o->optimizer);
    if (o->loss && !cli_loss_from_name(o->loss))
        return cli_usage_error(cmd, "--loss: expected sparse_categorical_crossentropy,"
                               " categorical_crossentropy, binary_crossentropy or mse, got '%s'",
                               o->loss);
    if (o->momentum_given && o->optimizer && cli_optimizer_from_name(o->optimizer)
                                                 == CNN_OPTIMIZER_ADAM)
        return cli_usage_error(cmd, "--momentum applies to sgd and rmsprop, not adam");
    if (o->validate_on_test && o->validation_split > 0)
        return cli_usage_error(cmd, "give --validation-split or --validate-on-test, not both");
    return CLI_OK;
}

/* Loads the model to train: the checkpoint for --resume, else MODEL. */
static int open_model(const char *cmd, const train_opts *o, const char *model_path,
                      cnn_model **m, int *initial_epoch, int64_t *initial_step)
{
    *initial_epoch = 0;
    *initial_step = 0;
    if (!o->resume)
        return cli_model_open(cmd, model_path, o->seed, o->max_memory, o->threads, m);
    int rc = cli_model_open(cmd, o->resume, o->seed, o->max_memory, o->threads, m);
    cnn_model *described = NULL;
    if (rc == CLI_OK)
        rc = cli_model_open(cmd, model_path, o->seed, o->max_memory, 1, &described);
    if (rc == CLI_OK)
        rc = cli_model_same(cmd, *m, o->resume, described, model_path);
    cnn_model_free(described);
    cnn_compile_config cfg;
    if (rc == CLI_OK && cnn_model_compile_config(*m, &cfg))
        rc = cli_failf(cmd, "--resume %s: the file holds no training state (it was saved"
                       " uncompiled), so there is nothing to resume", o->resume);
    if (rc == CLI_OK) {
        cnn_model_training_position(*m, initial_epoch, initial_step);
        if (*initial_epoch >= o->epochs)
            rc = cli_usage_error(cmd, "--resume %s: the checkpoint has already completed %d"
                                 " epoch%s; --epochs is the total (as Keras's initial_epoch"
                                 " counts), so give more than %d", o->resume, *initial_epoch,
                                 *initial_epoch == 1 ? "" : "s", *initial_epoch);
    }
    if (rc) {
        cnn_model_free(*m);
        *m = NULL;
    }
    return rc;
}

/* After Ctrl-C: save the checkpoint and say how to resume. */
static int interrupted(train_run *r, int argc, char **argv)
{
    const train_opts *o = r->o;
    int epoch = 0;
    int64_t step = 0;
    cnn_model_training_position(r->m, &epoch, &step);
    if (r->steps_done == 0 && !o->resume) {
        fprintf(stderr, "cnn train: interrupted before the first training step; nothing was"
                        " saved\n");
        return CLI_INTERRUPTED;
    }
    if (epoch >= o->epochs) {
        if (o->save && cnn_model_save(r->m, o->save))
            return cli_fail(r->cmd);
        fprintf(stderr, "cnn train: interrupted after the last epoch%s%s\n",
                o->save ? "; the model is saved to " : "", o->save ? o->save : "");
        return CLI_INTERRUPTED;
    }
    /* Without a step in this run the checkpoint resumed from is still current. */
    const char *resume_from = r->steps_done ? o->checkpoint : o->resume;
    if (r->steps_done && cnn_model_save(r->m, o->checkpoint))
        return cli_fail(r->cmd);
    if (step == 0)
        fprintf(stderr, "cnn train: interrupted after epoch %d/%d", epoch, o->epochs);
    else
        fprintf(stderr, "cnn train: interrupted in epoch %d/%d after step %lld/%lld", epoch + 1,
                o->epochs, (long long)step, (long long)r->steps);
    char *again = cli_resume_command(argc, argv, resume_from);
    fprintf(stderr, "; checkpoint %s %s\nTo resume, run:\n  %s\n",
            r->steps_done ? "saved to" : "unchanged:", resume_from,
            again ? again : "(out of memory)");
    free(again);
    return CLI_INTERRUPTED;
}

/* The images must have the model's input shape. */
static int check_images(const char *cmd, const cnn_model *m, const cnn_tensor *x)
{
    cnn_shape in = cnn_model_input_shape(m);
    bool ok = x->rank == 4 && in.rank == 3 && x->dims[1] == in.dims[0]
           && x->dims[2] == in.dims[1] && x->dims[3] == in.dims[2];
    if (ok)
        return CLI_OK;
    char want[48];
    cli_format_size(in, want, sizeof want);
    return cli_failf(cmd, "the data are %lldx%lldx%lld images (rows x cols x channels), the"
                     " model's input is %s", (long long)x->dims[1], (long long)x->dims[2],
                     (long long)x->dims[3], want);
}

/* Prints what is about to happen. */
static void print_plan(const train_opts *o, const cnn_model *m, const cnn_tensor *x,
                       const cnn_tensor *val_x, int initial_epoch, int64_t initial_step)
{
    int64_t n = x->dims[0], nval = val_x ? val_x->dims[0] : 0;
    if (o->validation_split > 0) {
        int64_t split_at = (int64_t)floor((double)n * (1.0 - o->validation_split));
        nval = n - split_at;
        n = split_at;
    }
    int64_t batch = o->batch_size < n ? o->batch_size : n;
    printf("Training on %lld images", (long long)n);
    if (nval)
        printf(", validating on %lld", (long long)nval);
    printf("; batch size %lld, %lld steps per epoch; %d thread%s\n", (long long)batch,
           (long long)((n + batch - 1) / batch), cnn_model_threads(m),
           cnn_model_threads(m) == 1 ? "" : "s");
    if (o->resume)
        printf("Resuming from %s at epoch %d, step %lld\n", o->resume, initial_epoch + 1,
               (long long)initial_step);
    printf("Checkpoints: %s (after every epoch and on Ctrl-C)\n", o->checkpoint);
}

static int run(const char *cmd, train_opts *o, const char *model_path, int argc, char **argv)
{
    cnn_model *m = NULL;
    cnn_tensor *x = NULL, *labels = NULL, *tx = NULL, *tlabels = NULL, *y = NULL, *ty = NULL;
    train_run r = {.cmd = cmd, .o = o};
    int initial_epoch, rc;
    int64_t initial_step;
    cnn_loss loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    if ((rc = open_model(cmd, o, model_path, &m, &initial_epoch, &initial_step)))
        return rc;
    r.m = m;
    if ((rc = cli_data_load(cmd, &o->data, &x, &labels, &tx, &tlabels))
        || (rc = check_images(cmd, m, x)) || (tx && (rc = check_images(cmd, m, tx))))
        goto done;
    if (o->resume) {
        cnn_compile_config cfg;
        cnn_model_compile_config(m, &cfg);
        loss = cfg.loss;
    } else if ((rc = cli_compile(cmd, m, &(cli_compile_options){o->optimizer, o->loss, o->lr,
                                                               o->momentum, o->lr_given,
                                                               o->momentum_given},
                                 &loss))) {
        goto done;
    }
    if ((rc = cli_targets(cmd, m, loss, labels, &y))
        || (tlabels && (rc = cli_targets(cmd, m, loss, tlabels, &ty))))
        goto done;
    if (o->resume && o->history
        && (rc = cli_history_read(cmd, o->history, initial_epoch, &r.history)))
        goto done;
    print_plan(o, m, x, o->validate_on_test ? tx : NULL, initial_epoch, initial_step);

    if ((rc = cli_interrupt_install(cmd)))
        goto done;
    cnn_fit_config fit = cnn_fit(.epochs = o->epochs, .batch_size = o->batch_size,
                                 .validation_split = (float)o->validation_split,
                                 .validation_x = o->validate_on_test ? tx : NULL,
                                 .validation_y = o->validate_on_test ? ty : NULL,
                                 .seed = o->seed ^ 0x5eed5eed5eedull,
                                 .initial_epoch = initial_epoch, .initial_step = initial_step,
                                 .progress = on_progress, .progress_user = &r);
    if (!fit.seed)
        fit.seed = 1;
    cnn_status st = cnn_model_fit(m, x, y, fit, NULL);
    cli_interrupt_restore();
    if (isatty(STDOUT_FILENO) && st)
        putchar('\n'); /* end a progress bar drawn in place */
    fflush(stdout);
    if (r.failed) {
        rc = r.failed;
    } else if (st == CNN_ERR_INTERRUPTED && cli_interrupted()) {
        rc = interrupted(&r, argc, argv);
    } else if (st) {
        rc = cli_fail(cmd);
        if (r.checkpoint_epoch)
            fprintf(stderr, "cnn train: the checkpoint after epoch %d is in %s\n",
                    r.checkpoint_epoch, o->checkpoint);
    } else if (o->save && cnn_model_save(m, o->save)) {
        rc = cli_fail(cmd);
    } else {
        if (o->save)
            printf("Saved the model to %s\n", o->save);
        double tloss, tacc;
        if (tx && cnn_model_evaluate(m, tx, ty, 256, &tloss, &tacc))
            rc = cli_fail(cmd);
        else if (tx)
            printf("Test loss: %.4f - test accuracy: %.4f (%lld images)\n", tloss, tacc,
                   (long long)tx->dims[0]);
    }
done:
    cli_history_free(&r.history);
    cnn_tensor_free(x);
    cnn_tensor_free(labels);
    cnn_tensor_free(y);
    cnn_tensor_free(tx);
    cnn_tensor_free(tlabels);
    cnn_tensor_free(ty);
    cnn_model_free(m);
    return rc;
}

int cli_train(int argc, char **argv)
{
    const char *cmd = "train";
    train_opts o = {.epochs = 1, .batch_size = 32};
    const cli_option opts[] = {
        {"data", CLI_OPT_STRING, &o.data.dir, 0, 0, NULL},
        {"train-images", CLI_OPT_STRING, &o.data.train_images, 0, 0, NULL},
        {"train-labels", CLI_OPT_STRING, &o.data.train_labels, 0, 0, NULL},
        {"test-images", CLI_OPT_STRING, &o.data.test_images, 0, 0, NULL},
        {"test-labels", CLI_OPT_STRING, &o.data.test_labels, 0, 0, NULL},
        {"validation-split", CLI_OPT_REAL, &o.validation_split, 0, 0.99, NULL},
        {"validate-on-test", CLI_OPT_FLAG, &o.validate_on_test, 0, 0, NULL},
        {"epochs", CLI_OPT_INT, &o.epochs, 1, 1e9, NULL},
        {"batch-size", CLI_OPT_INT, &o.batch_size, 1, 1 << 30, NULL},
        {"optimizer", CLI_OPT_STRING, &o.optimizer, 0, 0, NULL},
        {"lr", CLI_OPT_REAL, &o.lr, 1e-12, 1e6, &o.lr_given},
        {"momentum", CLI_OPT_REAL, &o.momentum, 0, 0.9999, &o.momentum_given},
        {"loss", CLI_OPT_STRING, &o.loss, 0, 0, NULL},
        {"seed", CLI_OPT_U64, &o.seed, 0, 0, NULL},
        {"threads", CLI_OPT_INT, &o.threads, 0, 1024, NULL},
        {"max-memory", CLI_OPT_BYTES, &o.max_memory, 0, 0, NULL},
        {"save", CLI_OPT_STRING, &o.save, 0, 0, NULL},
        {"checkpoint", CLI_OPT_STRING, &o.checkpoint, 0, 0, NULL},
        {"resume", CLI_OPT_STRING, &o.resume, 0, 0, NULL},
        {"history", CLI_OPT_STRING, &o.history, 0, 0, NULL},
        {"plot", CLI_OPT_STRING, &o.plot, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    const char *pos[1];
    int npos, rc = cli_parse(cmd, help, argc - 2, argv + 2, opts, 1, 1, pos, &npos);
    if (rc)
        return rc == CLI_HELP_SHOWN ? CLI_OK : rc;
    if ((rc = check_options(cmd, &o)))
        return rc;
    char checkpoint[4096];
    if (!o.checkpoint) {
        default_checkpoint(o.save, checkpoint, sizeof checkpoint);
        o.checkpoint = checkpoint;
    }
    return run(cmd, &o, pos[0], argc, argv);
}
