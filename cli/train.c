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
    "Usage: cnn train (MODEL | --from FILE) (--data DIR | --train-images FILE\n"
    "                 --train-labels FILE) [options]\n"
    "\n"
    "Trains MODEL, a description (fresh weights), a saved .cnn model or a Keras\n"
    "model file, .h5 or .keras (continues training it; --from FILE says the same),\n"
    "with the Keras progress bar, and saves it with --save.\n"
    "\n"
    "Data (IDX files, plain or .gz; pixels are scaled to [0, 1] and given a channel\n"
    "axis, as for MNIST, unless --scale says otherwise):\n"
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
    "A folder of images (--data DIR holding one folder per class, named after it;\n"
    "the class names, sorted, go into the model; .bmp .gif .jpeg .jpg .png files),\n"
    "or --data LIST.csv, lines \"path,label\" (paths relative to the list):\n"
    "  --test-data DIR      test images in class folders (the same classes)\n"
    "  --validation-split F validate on a fraction F of the files, chosen by\n"
    "                       shuffling the file list with --seed as Keras's\n"
    "                       image_dataset_from_directory does\n"
    CLI_HELP_FOLDER
    "  The images are decoded by --workers threads while the model trains; only a\n"
    "  few batches (and --cache) are held in memory, within --max-memory.\n"
    "\n"
    "Pixels (this option means the same in every command):\n"
    CLI_HELP_SCALE
    "\n"
    "Training:\n"
    "  --epochs N               the number of epochs (default 1); with --resume\n"
    "                           the total, as Keras's initial_epoch counts\n"
    "  --batch-size B           examples per step (default 32)\n"
    "  --optimizer NAME         sgd, adam or rmsprop (default adam)\n"
    "  --lr X                   learning rate (default: the optimizer's Keras\n"
    "                           default: sgd 0.01, adam 0.001, rmsprop 0.001)\n"
    "  --momentum M             momentum for sgd and rmsprop, not adam (default 0)\n"
    "  --loss NAME              sparse_categorical_crossentropy (the default:\n"
    "                           integer labels), categorical_crossentropy\n"
    "                           (labels made one-hot),\n"
    "                           binary_crossentropy or mse\n"
    "  --from-logits            the cross-entropy loss takes the model's output as\n"
    "                           logits (Keras from_logits=True): for a last layer\n"
    "                           without softmax/sigmoid\n"
    "  --seed S                 seeds the weights of a description (or of\n"
    "                           --replace-head's new head), dropout and the\n"
    "                           shuffling (default 0); the same seed and\n"
    "                           --threads give the same weights\n"
    "  --threads T              worker threads (default 0: all cores)\n"
    "  --max-memory BYTES       the memory budget (default 4G; suffixes K, M, G)\n"
    "  --clipnorm X             clip each weight's gradient to L2 norm X (Keras clipnorm)\n"
    "  --dtype-policy NAME      float32 or mixed_bfloat16 (Keras's policy: Conv2D and\n"
    "                           Dense multiply in bfloat16 with float32 sums, on CPUs\n"
    "                           with AVX512_BF16; float32 elsewhere); kept in the\n"
    "                           saved model (default: the model's, else float32)\n"
    "  --global-clipnorm X      clip all gradients together to joint norm X\n"
    "\n"
    "Transfer learning (with a trained MODEL; not with --resume):\n"
    "  --replace-head N         replace the last Dense by a new one with N outputs\n"
    "                           (same activation, fresh weights from --seed): the\n"
    "                           model is compiled anew\n"
    "  --freeze LAYER           do not train LAYER and every layer before it (Keras\n"
    "                           trainable=False; a frozen BatchNormalization uses its\n"
    "                           moving statistics); cnn summary lists the names\n"
    "\n"
    "A saved model that was compiled keeps its loss, optimizer and optimizer state;\n"
    "giving --optimizer, --lr, --momentum, --loss, --from-logits or a clipping option\n"
    "compiles it anew (fresh state). L2 weight decay is a layer argument in the\n"
    "description: kernel_regularizer=l2(0.0005).\n"
    "\n"
    "Learning-rate schedule (over optimizer steps, so resumed runs continue it):\n"
    "  --lr-schedule NAME       step (times --lr-decay-rate every --lr-decay-epochs),\n"
    "                           exponential (the same, smoothly), or cosine (down to\n"
    "                           --lr-alpha times the rate at the end of --epochs)\n"
    "  --lr-decay-rate F        step, exponential: the factor per period\n"
    "  --lr-decay-epochs E      step, exponential: the period in epochs (default 1)\n"
    "  --lr-alpha A             cosine: the final fraction of the rate (default 0)\n"
    "\n"
    "Callbacks (Keras's, at the end of every epoch):\n"
    "  --monitor NAME           val_loss, val_accuracy, loss or accuracy (default\n"
    "                           val_loss with validation data, else loss)\n"
    "  --early-stopping P       EarlyStopping: stop after P epochs without improvement\n"
    "  --min-delta X            EarlyStopping: the smallest change that counts\n"
    "  --restore-best-weights   EarlyStopping: put back the best epoch's weights\n"
    "  --save-best FILE         ModelCheckpoint(save_best_only): save the model to FILE\n"
    "                           after every epoch that improves the monitored value\n"
    "                           (with Keras's line: \"Epoch 3: val_loss improved from\n"
    "                           0.31000 to 0.29000, saving model to FILE\")\n"
    "  --reduce-lr-on-plateau P ReduceLROnPlateau: multiply the rate by\n"
    "                           --reduce-lr-factor (default 0.1) after P epochs\n"
    "                           without improvement, down to --min-lr (default 0)\n"
    "  (TerminateOnNaN is always on: a NaN loss stops training before its update.)\n"
    "\n"
    "Augmentation of the training images, per batch, seeded by --seed:\n"
    "  --augment-flip           mirror half of the images left-right\n"
    "  --augment-shift N        shift each image by up to N pixels (zero fill)\n"
    "  --augment-rotation DEG   rotate each image by up to DEG degrees\n"
    "\n"
    "Output:\n"
    "  --save FILE              save the trained model: FILE.keras as Keras 3 saves\n"
    "                           it, FILE.h5 as legacy Keras, else a .cnn file\n"
    "  --class-names LIST       the classes' names, comma-separated (\"cat,dog\"), or\n"
    "                           fashion-mnist: kept in the model (.cnn files), so\n"
    "                           predict and evaluate show them without the option\n"
    "  --checkpoint FILE        where to save a checkpoint after every epoch and\n"
    "                           on Ctrl-C (default: NAME.ckpt.cnn for --save\n"
    "                           NAME.cnn, else cnn-train.ckpt.cnn); it is kept\n"
    "                           after training\n"
    "  --no-checkpoint          write no checkpoint file (Ctrl-C then stops without\n"
    "                           saving anything to resume from)\n"
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
    "130, printing the command that resumes; a second Ctrl-C quits without saving.\n"
    "\n"
    "Data parallel: `mpirun -np N cnn-mpi train ...` (cnn-mpi is built when MPI is\n"
    "found) trains on N ranks, each taking --batch-size examples of every step, so\n"
    "the weights are those of one process with --batch-size N*B. Every rank reads\n"
    "the same MODEL and data (checked at start: an error on every rank otherwise);\n"
    "rank 0 prints and writes the files; --threads defaults to the cores shared by\n"
    "the ranks on each machine. A checkpoint resumes with any number of ranks.\n";

typedef struct train_opts {
    cli_data data;
    int epochs, batch_size, threads;
    const char *optimizer, *loss, *save, *checkpoint, *resume, *history, *plot;
    const char *from, *scale; /* --from FILE (= MODEL), --scale as given */
    const char *class_names;  /* --class-names as given */
    const char *test_data;    /* --test-data DIR: a folder of class folders */
    cli_folder_options folder; /* --data DIR as a folder of images */
    const char *dtype_policy; /* --dtype-policy as given */
    const char *freeze;       /* --freeze LAYER */
    int replace_head;         /* --replace-head N, 0 = not given */
    bool no_checkpoint;       /* o->checkpoint is then NULL */
    double lr, momentum, validation_split, clipnorm, global_clipnorm;
    bool lr_given, momentum_given, validate_on_test, clipnorm_given, global_clipnorm_given;
    bool from_logits;
    uint64_t seed;
    int64_t max_memory;
    /* schedule */
    const char *lr_schedule;
    double lr_decay_rate, lr_decay_epochs, lr_alpha;
    bool lr_decay_rate_given;
    /* callbacks */
    const char *monitor, *save_best;
    int early_stopping, reduce_lr;
    bool early_stopping_given, reduce_lr_given, restore_best_weights;
    double min_delta, reduce_lr_factor, min_lr;
    bool reduce_lr_factor_given;
    /* augmentation */
    bool augment_flip;
    int augment_shift;
    double augment_rotation;
    cli_parallel *parallel; /* the MPI job (cnn-mpi); NULL when training alone */
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
    float base_lr;        /* the optimizer's rate after the last epoch (ReduceLROnPlateau) */
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
    char line[4400];
    if (cnn_progress_checkpoint_line(p, line, sizeof line) > 0)
        printf("%s\n", line); /* rank 0 only: others print nothing to stdout */
    r->steps = p->steps;
    if (p->event == CNN_PROGRESS_BATCH_END)
        r->steps_done++;
    /* rank 0 (of a data-parallel job) writes the files */
    if (p->event == CNN_PROGRESS_EPOCH_END && cli_parallel_rank(r->o->parallel) == 0) {
        cnn_compile_config cfg;
        if (cnn_model_compile_config(r->m, &cfg) == CNN_OK) {
            if (r->base_lr > 0 && cfg.optimizer.learning_rate < r->base_lr)
                printf("Epoch %d: ReduceLROnPlateau reducing learning rate to %g.\n", p->epoch,
                       (double)cfg.optimizer.learning_rate);
            r->base_lr = cfg.optimizer.learning_rate;
        }
        if (r->o->checkpoint) {
            if (cnn_model_save(r->m, r->o->checkpoint)) {
                r->failed = cli_fail(r->cmd);
                return false;
            }
            r->checkpoint_epoch = p->epoch;
        }
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
    int rc = cli_data_check(cmd, &o->data, true, false);
    if (rc)
        return rc;
    const bool folder = o->data.dir && cli_data_is_folder(o->data.dir);
    if (o->test_data && !folder)
        return cli_usage_error(cmd, "--test-data DIR goes with --data DIR of class folders (IDX"
                               " files: --test-images and --test-labels)");
    if (!folder && o->validate_on_test && (rc = cli_data_check(cmd, &o->data, true, true)))
        return rc;
    if (folder && o->validate_on_test && !o->test_data)
        return cli_usage_error(cmd, "--validate-on-test needs --test-data DIR");

    if (o->resume && (o->freeze || o->replace_head))
        return cli_usage_error(cmd, "--freeze and --replace-head start a new training, not"
                               " with --resume (a checkpoint keeps its frozen layers)");
    cnn_optimizer_kind kind = 0;
    if (o->optimizer && cnn_optimizer_from_name(o->optimizer, &kind))
        return cli_usage_error(cmd, "--optimizer: %s", cnn_last_error());
    cnn_loss loss;
    if (o->loss && cnn_loss_from_name(o->loss, &loss))
        return cli_usage_error(cmd, "--loss: %s", cnn_last_error());
    /* checked early when adam is written; cli_compile checks the default
     * and a saved model's optimizer */
    if (o->momentum_given && kind == CNN_OPTIMIZER_ADAM)
        return cli_usage_error(cmd, "--momentum applies to sgd and rmsprop, not adam; give"
                               " --optimizer sgd or --optimizer rmsprop with it");
    if (o->validate_on_test && o->validation_split > 0)
        return cli_usage_error(cmd, "give --validation-split or --validate-on-test, not both");
    if (o->clipnorm_given && o->global_clipnorm_given)
        return cli_usage_error(cmd, "give --clipnorm or --global-clipnorm, not both");
    cnn_monitor monitor;
    if (o->monitor && cnn_monitor_from_name(o->monitor, &monitor))
        return cli_usage_error(cmd, "--monitor: %s", cnn_last_error());
    bool validation = o->validate_on_test || o->validation_split > 0;
    if (o->monitor && !validation && strncmp(o->monitor, "val_", 4) == 0)
        return cli_usage_error(cmd, "--monitor %s needs validation data: give"
                               " --validation-split or --validate-on-test", o->monitor);
    if (o->monitor && !o->early_stopping_given && !o->reduce_lr_given && !o->save_best)
        return cli_usage_error(cmd, "--monitor applies to --early-stopping,"
                               " --reduce-lr-on-plateau and --save-best; give one of them");
    if ((o->restore_best_weights || o->min_delta > 0) && !o->early_stopping_given)
        return cli_usage_error(cmd, "--restore-best-weights and --min-delta apply to"
                               " --early-stopping");
    if (o->no_checkpoint && o->checkpoint)
        return cli_usage_error(cmd, "give --checkpoint FILE or --no-checkpoint, not both");
    if ((o->reduce_lr_factor_given || o->min_lr > 0) && !o->reduce_lr_given)
        return cli_usage_error(cmd, "--reduce-lr-factor and --min-lr apply to"
                               " --reduce-lr-on-plateau");
    if (o->lr_schedule && strcmp(o->lr_schedule, "step") != 0
        && strcmp(o->lr_schedule, "exponential") != 0 && strcmp(o->lr_schedule, "cosine") != 0)
        return cli_usage_error(cmd, "--lr-schedule: expected step, exponential or cosine, got"
                               " '%s'", o->lr_schedule);
    bool decays = o->lr_schedule && strcmp(o->lr_schedule, "cosine") != 0;
    if (decays && !o->lr_decay_rate_given)
        return cli_usage_error(cmd, "--lr-schedule %s needs --lr-decay-rate (the factor per"
                               " --lr-decay-epochs)", o->lr_schedule);
    if (!decays && (o->lr_decay_rate_given || o->lr_decay_epochs > 0))
        return cli_usage_error(cmd, "--lr-decay-rate and --lr-decay-epochs apply to"
                               " --lr-schedule step or exponential");
    if (o->lr_alpha > 0 && !(o->lr_schedule && strcmp(o->lr_schedule, "cosine") == 0))
        return cli_usage_error(cmd, "--lr-alpha applies to --lr-schedule cosine");
    return CLI_OK;
}

/* The fit settings the callback, schedule and augmentation options ask for. */
static void training_tools(const train_opts *o, bool validation, int64_t steps_per_epoch,
                           cnn_fit_config *fit)
{
    cnn_monitor monitor = validation ? CNN_MONITOR_VAL_LOSS : CNN_MONITOR_LOSS;
    if (o->monitor) /* checked in check_options */
        cnn_monitor_from_name(o->monitor, &monitor);
    if (o->early_stopping_given)
        fit->callbacks.early_stopping = cnn_early_stopping(
            .monitor = monitor, .patience = o->early_stopping, .min_delta = (float)o->min_delta,
            .restore_best_weights = o->restore_best_weights);
    if (o->save_best)
        fit->callbacks.model_checkpoint = cnn_model_checkpoint(
            .path = o->save_best, .monitor = monitor, .save_best_only = true);
    if (o->reduce_lr_given)
        fit->callbacks.reduce_lr_on_plateau = cnn_reduce_lr_on_plateau(
            .monitor = monitor, .patience = o->reduce_lr,
            .factor = (float)(o->reduce_lr_factor_given ? o->reduce_lr_factor : 0.1),
            .min_lr = (float)o->min_lr);
    if (o->lr_schedule) {
        double epochs = o->lr_decay_epochs > 0 ? o->lr_decay_epochs : 1;
        int64_t period = (int64_t)llround(epochs * (double)steps_per_epoch);
        fit->lr_schedule = (cnn_lr_schedule){
            .kind = !strcmp(o->lr_schedule, "step")          ? CNN_LR_STEP
                    : !strcmp(o->lr_schedule, "exponential") ? CNN_LR_EXPONENTIAL
                                                             : CNN_LR_COSINE,
            .decay_steps = fit->lr_schedule.kind == CNN_LR_COSINE ? 0 : period,
            .decay_rate = (float)o->lr_decay_rate, .alpha = (float)o->lr_alpha};
        if (fit->lr_schedule.kind == CNN_LR_COSINE)
            fit->lr_schedule.decay_steps = 0;
        else if (fit->lr_schedule.decay_steps < 1)
            fit->lr_schedule.decay_steps = 1;
    }
    fit->augmentation = (cnn_augmentation){.horizontal_flip = o->augment_flip,
                                           .max_shift = o->augment_shift,
                                           .max_rotation = (float)o->augment_rotation};
}

/* One line per training tool in use. */
static void print_tools(const cnn_fit_config *f)
{
    const cnn_callbacks *c = &f->callbacks;
    if (c->early_stopping.enabled)
        printf("EarlyStopping: monitor %s, patience %d%s\n",
               cnn_monitor_name(c->early_stopping.monitor), c->early_stopping.patience,
               c->early_stopping.restore_best_weights ? ", restore_best_weights" : "");
    if (c->model_checkpoint.path)
        printf("ModelCheckpoint: %s when %s improves\n", c->model_checkpoint.path,
               cnn_monitor_name(c->model_checkpoint.monitor));
    if (c->reduce_lr_on_plateau.enabled)
        printf("ReduceLROnPlateau: monitor %s, patience %d, factor %g, min_lr %g\n",
               cnn_monitor_name(c->reduce_lr_on_plateau.monitor),
               c->reduce_lr_on_plateau.patience, (double)c->reduce_lr_on_plateau.factor,
               (double)c->reduce_lr_on_plateau.min_lr);
    const cnn_lr_schedule *s = &f->lr_schedule;
    if (s->kind == CNN_LR_COSINE)
        printf("Learning rate: cosine decay to %g of the initial rate\n", (double)s->alpha);
    else if (s->kind != CNN_LR_CONSTANT)
        printf("Learning rate: %s decay by %g every %lld steps\n",
               s->kind == CNN_LR_STEP ? "step" : "exponential", (double)s->decay_rate,
               (long long)s->decay_steps);
    const cnn_augmentation *a = &f->augmentation;
    if (!a->horizontal_flip && !a->max_shift && !(a->max_rotation > 0))
        return;
    printf("Augmentation:");
    const char *sep = " ";
    if (a->horizontal_flip)
        printf("%shorizontal flips", sep), sep = ", ";
    if (a->max_shift)
        printf("%sshifts of up to %d pixels", sep, a->max_shift), sep = ", ";
    if (a->max_rotation > 0)
        printf("%srotations of up to %g degrees", sep, (double)a->max_rotation);
    putchar('\n');
}

/* Loads the model to train: the checkpoint for --resume, else MODEL. */
static int open_model(const char *cmd, const train_opts *o, const char *model_path,
                      cnn_model **m, int *initial_epoch, int64_t *initial_step)
{
    *initial_epoch = 0;
    *initial_step = 0;
    if (!o->resume) {
        cnn_keras_info keras;
        int rc = cli_model_open_keras(cmd, model_path, o->seed, o->max_memory, o->threads, m,
                                      &keras);
        if (rc == CLI_OK)
            cli_keras_describe(model_path, &keras);
        return rc;
    }
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

/* --dtype-policy: stored in the model, as the class names are. */
static int set_dtype_policy(const char *cmd, const train_opts *o, cnn_model *m)
{
    cnn_dtype_policy policy;
    if (o->dtype_policy) {
        if (cnn_dtype_policy_from_name(o->dtype_policy, &policy)
            || cnn_model_set_dtype_policy(m, policy))
            return cli_usage_error(cmd, "--dtype-policy: %s", cnn_last_error());
    }
    policy = cnn_model_dtype_policy(m);
    if (policy != CNN_DTYPE_POLICY_FLOAT32 && cli_parallel_rank(o->parallel) == 0)
        printf("Dtype policy: %s (%s)\n", cnn_dtype_policy_name(policy),
               cnn_bfloat16_supported() ? "bfloat16 products, float32 sums and weights"
                                        : "this CPU lacks AVX512_BF16: computed in float32");
    return CLI_OK;
}

/* --class-names: stored in the model, so every file saved from it (the
 * checkpoints, --save-best, --save) carries them. */
static int set_class_names(const char *cmd, const train_opts *o, cnn_model *m)
{
    if (!o->class_names)
        return CLI_OK;
    cli_class_names names;
    int rc = cli_class_names_parse(cmd, o->class_names, &names);
    if (rc)
        return rc;
    if (cnn_model_set_class_names(m, names.names, names.count))
        rc = cli_usage_error(cmd, "--class-names: %s", cnn_last_error());
    cli_class_names_free(&names);
    /* Keras files have no place for them (docs/KERAS.md) */
    size_t n = o->save ? strlen(o->save) : 0;
    bool keras = (n >= 6 && strcmp(o->save + n - 6, ".keras") == 0)
                 || (n >= 3 && strcmp(o->save + n - 3, ".h5") == 0)
                 || (n >= 5 && strcmp(o->save + n - 5, ".hdf5") == 0);
    if (!rc && keras)
        fprintf(stderr, "cnn train: note: %s is a Keras file, which has no place for class"
                        " names; they are kept in the .cnn checkpoints only\n", o->save);
    return rc;
}

/* After Ctrl-C: save the checkpoint and say how to resume. */
static int interrupted(train_run *r, int argc, char **argv)
{
    const train_opts *o = r->o;
    if (cli_parallel_rank(o->parallel) != 0)
        return CLI_INTERRUPTED; /* rank 0 saves and tells */
    int epoch = 0;
    int64_t step = 0;
    cnn_model_training_position(r->m, &epoch, &step);
    if (r->steps_done == 0 && !o->resume) {
        fprintf(stderr, "cnn train: interrupted before the first training step; nothing was"
                        " saved\n");
        return CLI_INTERRUPTED;
    }
    if (epoch >= o->epochs) {
        if (o->save && cli_model_save(r->m, o->save))
            return cli_fail(r->cmd);
        fprintf(stderr, "cnn train: interrupted after the last epoch%s%s\n",
                o->save ? "; the model is saved to " : "", o->save ? o->save : "");
        return CLI_INTERRUPTED;
    }
    if (!o->checkpoint) {
        fprintf(stderr, "cnn train: interrupted in epoch %d/%d; nothing was saved"
                        " (--no-checkpoint)\n", step ? epoch + 1 : epoch, o->epochs);
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

/* Prints what is about to happen: n_train and n_val as cnn_fit_split_sizes
 * gave them. */
static void print_plan(const train_opts *o, const cnn_model *m, int64_t n_train, int64_t n_val,
                       int64_t steps, int initial_epoch, int64_t initial_step)
{
    const int ranks = cli_parallel_size(o->parallel);
    int64_t batch = (int64_t)o->batch_size * ranks;
    batch = batch < n_train ? batch : n_train;
    printf("Training on %lld images", (long long)n_train);
    if (n_val)
        printf(", validating on %lld", (long long)n_val);
    printf("; batch size %lld, %lld steps per epoch; %d thread%s", (long long)batch,
           (long long)steps, cnn_model_threads(m), cnn_model_threads(m) == 1 ? "" : "s");
    if (ranks > 1)
        printf(" per rank; data parallel over %d ranks (MPI), %d examples each per step",
               ranks, o->batch_size);
    putchar('\n');
    if (o->resume)
        printf("Resuming from %s at epoch %d, step %lld\n", o->resume, initial_epoch + 1,
               (long long)initial_step);
    char scale[32];
    cli_format_scale(o->data.scale, scale, sizeof scale);
    printf("Pixels 0..255 x %s\n", scale);
    if (o->checkpoint)
        printf("Checkpoints: %s (after every epoch and on Ctrl-C)\n", o->checkpoint);
    else
        printf("Checkpoints: none (--no-checkpoint)\n");
    const char *const *names;
    int n_names = cnn_model_class_names(m, &names);
    if (n_names) {
        printf("Class names (kept in the model): ");
        for (int k = 0; k < n_names; k++) {
            char shown[1024]; /* escaped: a name from a file must not drive the terminal */
            cli_escape_controls(names[k], shown, sizeof shown);
            printf(k ? ", %s" : "%s", shown);
        }
        putchar('\n');
    }
}

/* The training and validation sizes and steps per epoch fit will use, from
 * the library (fit computes them the same way); an empty part is an error
 * that says what each would get. */
static int split_sizes(const char *cmd, const train_opts *o, const cnn_tensor *x,
                       const cnn_tensor *val_x, int64_t *n_train, int64_t *n_val, int64_t *steps)
{
    const float split = val_x ? 0.0f : (float)o->validation_split;
    int64_t per_step = (int64_t)o->batch_size * cli_parallel_size(o->parallel);
    if (cnn_fit_split_sizes(x->dims[0], split, per_step, n_train, n_val, steps) == CNN_OK) {
        if (val_x)
            *n_val = val_x->dims[0];
        return CLI_OK;
    }
    if (split > 0 && (*n_train || *n_val))
        return cli_failf(cmd, "--validation-split %g of %lld images would train on %lld and"
                         " validate on %lld; each part needs at least one image (give a"
                         " smaller --validation-split or more data)", o->validation_split,
                         (long long)x->dims[0], (long long)*n_train, (long long)*n_val);
    return cli_fail(cmd);
}

/* Every file train writes, checked and locked before anything is read or
 * trained (rank 0 of a data-parallel job writes them). */
static int claim_outputs(const char *cmd, const train_opts *o, const char *model_path,
                         cli_outputs *held)
{
    const cli_output outs[] = {{"save", o->save, true},
                               {"checkpoint", o->checkpoint, true},
                               {"save-best", o->save_best, true},
                               {"history", o->history, false},
                               {"plot", o->plot, false}};
    static const char *const mnist[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    char dir_files[8][4096];
    cli_input ins[6 + 8] = {
        {"MODEL", model_path, cli_model_is_saved(model_path)},
        {"--resume", o->resume, true},
        {"--train-images", o->data.train_images, false},
        {"--train-labels", o->data.train_labels, false},
        {"--test-images", o->data.test_images, false},
        {"--test-labels", o->data.test_labels, false}};
    int n_in = 6;
    for (int i = 0; o->data.dir && i < 8; i++) {
        snprintf(dir_files[i], sizeof dir_files[i], "%s/%s%s", o->data.dir, mnist[i / 2],
                 i % 2 ? ".gz" : "");
        ins[n_in++] = (cli_input){"--data", dir_files[i], false};
    }
    return cli_outputs_claim(cmd, outs, (int)(sizeof outs / sizeof outs[0]), ins, n_in, held);
}

/* --data DIR as a folder of class folders: the training files (and with
 * --validation-split the validation files, split as Keras splits them),
 * --test-data DIR; the class names go into the model. */
typedef struct folders {
    cnn_dataset *train, *val, *test;
} folders;

static int open_folders(const char *cmd, const train_opts *o, cnn_model *m, cnn_loss loss,
                        folders *ds, int64_t *n_train, int64_t *n_val, int64_t *steps)
{
    const float split = (float)o->validation_split;
    const uint32_t seed = (uint32_t)o->seed;
    int rc = cli_dataset_open(cmd, o->data.dir, m, loss, &o->folder, o->data.scale, split,
                              split > 0 ? CNN_SUBSET_TRAINING : CNN_SUBSET_ALL, seed, stdout,
                              &ds->train);
    if (!rc && split > 0)
        rc = cli_dataset_open(cmd, o->data.dir, m, loss, &o->folder, o->data.scale, split,
                              CNN_SUBSET_VALIDATION, seed, stdout, &ds->val);
    if (!rc && o->test_data)
        rc = cli_dataset_open(cmd, o->test_data, m, loss, &o->folder, o->data.scale, 0,
                              CNN_SUBSET_ALL, seed, stdout, &ds->test);
    if (!rc && ds->test && o->validate_on_test)
        ds->val = ds->test; /* freed once, as the test set */
    if (!rc && !o->class_names && !o->resume && cnn_model_class_names(m, NULL) == 0)
        printf("Class names (from the folders) go into the model\n");
    if (!rc)
        rc = cli_dataset_classes(cmd, ds->train, m);
    if (!rc && ds->test)
        rc = cli_dataset_classes(cmd, ds->test, m);
    if (rc)
        return rc;
    *n_train = cnn_dataset_count(ds->train);
    *n_val = ds->val ? cnn_dataset_count(ds->val) : 0;
    int64_t t, v;
    return cnn_fit_split_sizes(*n_train, 0, o->batch_size, &t, &v, steps) ? cli_fail(cmd)
                                                                          : CLI_OK;
}

static int run(const char *cmd, train_opts *o, const char *model_path, int argc, char **argv)
{
    cnn_model *m = NULL;
    cnn_tensor *x = NULL, *labels = NULL, *tx = NULL, *tlabels = NULL, *y = NULL, *ty = NULL;
    train_run r = {.cmd = cmd, .o = o};
    folders ds = {0};
    const bool folder = cli_data_is_folder(o->data.dir);
    int initial_epoch, rc;
    int64_t initial_step;
    cnn_loss loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    if (!o->threads)
        o->threads = cli_parallel_threads(o->parallel); /* the cores shared by the ranks */
    cli_outputs held = {0};
    if (cli_parallel_rank(o->parallel) == 0 && (rc = claim_outputs(cmd, o, model_path, &held)))
        return rc;
    if ((rc = open_model(cmd, o, model_path, &m, &initial_epoch, &initial_step)))
        goto done;
    r.m = m;
    /* transfer learning: a new head first, then the base frozen */
    if ((o->replace_head && cnn_model_replace_head_seeded(m, o->replace_head, o->seed))
        || (o->freeze && cnn_model_freeze_through(m, o->freeze))) {
        rc = cli_fail(cmd);
        goto done;
    }
    int64_t n_train, n_val, steps;
    if ((rc = set_class_names(cmd, o, m)) || (rc = set_dtype_policy(cmd, o, m)))
        goto done;
    if (folder && cli_parallel_size(o->parallel) > 1) {
        rc = cli_failf(cmd, "training from a folder of images is not data-parallel yet: give"
                       " IDX files to cnn-mpi");
        goto done;
    }
    if (!folder
        && ((rc = cli_data_load(cmd, &o->data, &x, &labels, &tx, &tlabels))
            || (rc = check_images(cmd, m, x)) || (tx && (rc = check_images(cmd, m, tx)))
            || (rc = split_sizes(cmd, o, x, o->validate_on_test ? tx : NULL, &n_train, &n_val,
                                 &steps))))
        goto done;
    if (o->resume) {
        cnn_compile_config cfg;
        cnn_model_compile_config(m, &cfg);
        loss = cfg.loss;
    } else if ((rc = cli_compile(cmd, m,
                                 &(cli_compile_options){
                                     .optimizer = o->optimizer, .loss = o->loss, .lr = o->lr,
                                     .momentum = o->momentum, .clipnorm = o->clipnorm,
                                     .global_clipnorm = o->global_clipnorm,
                                     .lr_given = o->lr_given,
                                     .momentum_given = o->momentum_given,
                                     .clipnorm_given = o->clipnorm_given,
                                     .global_clipnorm_given = o->global_clipnorm_given,
                                     .from_logits = o->from_logits},
                                 &loss))) {
        goto done;
    }
    if (cnn_model_loss_expects_probabilities(m))
        fprintf(stderr, "%s: warning: the loss %s expects probabilities but the last layer's"
                        " output is linear (logits); add activation=softmax (or sigmoid) to it,"
                        " or give --from-logits\n",
                cmd, cnn_loss_name(loss));
    if (folder && (rc = open_folders(cmd, o, m, loss, &ds, &n_train, &n_val, &steps)))
        goto done;
    if (!folder && ((rc = cli_targets(cmd, m, loss, labels, &y))
                    || (tlabels && (rc = cli_targets(cmd, m, loss, tlabels, &ty)))))
        goto done;
    if (o->resume && o->history
        && (rc = cli_history_read(cmd, o->history, initial_epoch, &r.history)))
        goto done;
    /* data parallel: every rank must hold the same model and data */
    const cnn_tensor *data[] = {x, y, tx, ty};
    const char *const names[] = {"training images", "training targets", "test images",
                                 "test targets"};
    if (!folder && (rc = cli_parallel_check(cmd, o->parallel, m, data, names, 4)))
        goto done;
    if (initial_step > steps) { /* else fit would skip the rest of the epoch */
        rc = cli_failf(cmd, "%s is at step %lld of epoch %d, but an epoch has %lld steps with"
                       " --batch-size %d: resume with the batch size and data it was saved with",
                       o->resume, (long long)initial_step, initial_epoch + 1, (long long)steps,
                       o->batch_size);
        goto done;
    }
    print_plan(o, m, n_train, n_val, steps, initial_epoch, initial_step);

    if ((rc = cli_interrupt_install(cmd)))
        goto done;
    cnn_fit_config fit = cnn_fit(.epochs = o->epochs, .batch_size = o->batch_size,
                                 .validation_split = folder ? 0 : (float)o->validation_split,
                                 .validation_x = o->validate_on_test ? tx : NULL,
                                 .validation_y = o->validate_on_test ? ty : NULL,
                                 .seed = o->seed ^ 0x5eed5eed5eedull,
                                 .initial_epoch = initial_epoch, .initial_step = initial_step,
                                 .progress = on_progress, .progress_user = &r,
                                 .parallel = cli_parallel_hooks(o->parallel));
    if (!fit.seed)
        fit.seed = 1;
    training_tools(o, n_val > 0, steps, &fit);
    print_tools(&fit);
    cnn_history *h = NULL;
    cnn_status st = folder ? cnn_model_fit_dataset(m, ds.train, ds.val, fit, &h)
                           : cnn_model_fit(m, x, y, fit, &h);
    if (st == CNN_OK && h && h->stopped_epoch) {
        printf("Epoch %d: early stopping\n", h->stopped_epoch);
        if (h->restored_epoch)
            printf("Restored the weights of the best epoch: %d.\n", h->restored_epoch);
    }
    cnn_history_free(h);
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
        if (r.checkpoint_epoch && o->checkpoint)
            fprintf(stderr, "cnn train: the checkpoint after epoch %d is in %s\n",
                    r.checkpoint_epoch, o->checkpoint);
    } else if (o->save && cli_parallel_rank(o->parallel) == 0 && cli_model_save(m, o->save)) {
        rc = cli_fail(cmd);
    } else {
        if (o->save)
            printf("Saved the model to %s\n", o->save);
        double tloss, tacc;
        const bool test = (tx || ds.test) && cli_parallel_rank(o->parallel) == 0;
        if (test && (ds.test ? cnn_model_evaluate_dataset(m, ds.test, 256, &tloss, &tacc)
                             : cnn_model_evaluate(m, tx, ty, 256, &tloss, &tacc)))
            rc = cli_fail(cmd);
        else if (test)
            printf("Test loss: %.4f - test accuracy: %.4f (%lld images)\n", tloss, tacc,
                   (long long)(ds.test ? cnn_dataset_count(ds.test) : tx->dims[0]));
    }
done:
    cli_outputs_release(&held);
    if (folder) {
        cli_dataset_report_skipped(ds.train);
        if (ds.val != ds.test)
            cli_dataset_report_skipped(ds.val);
        cli_dataset_report_skipped(ds.test);
    }
    cnn_dataset_free(ds.train);
    if (ds.val != ds.test)
        cnn_dataset_free(ds.val);
    cnn_dataset_free(ds.test);
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
        {"test-data", CLI_OPT_STRING, &o.test_data, 0, 0, NULL},
        CLI_FOLDER_OPTIONS(&o.folder),
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
        {"from-logits", CLI_OPT_FLAG, &o.from_logits, 0, 0, NULL},
        {"seed", CLI_OPT_U64, &o.seed, 0, 0, NULL},
        {"threads", CLI_OPT_INT, &o.threads, 0, 1024, NULL},
        {"max-memory", CLI_OPT_BYTES, &o.max_memory, 4096, 0, NULL},
        {"save", CLI_OPT_STRING, &o.save, 0, 0, NULL},
        {"checkpoint", CLI_OPT_STRING, &o.checkpoint, 0, 0, NULL},
        {"no-checkpoint", CLI_OPT_FLAG, &o.no_checkpoint, 0, 0, NULL},
        {"class-names", CLI_OPT_STRING, &o.class_names, 0, 0, NULL},
        {"dtype-policy", CLI_OPT_STRING, &o.dtype_policy, 0, 0, NULL},
        {"resume", CLI_OPT_STRING, &o.resume, 0, 0, NULL},
        {"history", CLI_OPT_STRING, &o.history, 0, 0, NULL},
        {"plot", CLI_OPT_STRING, &o.plot, 0, 0, NULL},
        {"clipnorm", CLI_OPT_REAL, &o.clipnorm, 1e-12, 1e12, &o.clipnorm_given},
        {"global-clipnorm", CLI_OPT_REAL, &o.global_clipnorm, 1e-12, 1e12, &o.global_clipnorm_given},
        {"lr-schedule", CLI_OPT_STRING, &o.lr_schedule, 0, 0, NULL},
        {"lr-decay-rate", CLI_OPT_REAL, &o.lr_decay_rate, 1e-12, 1e6, &o.lr_decay_rate_given},
        {"lr-decay-epochs", CLI_OPT_REAL, &o.lr_decay_epochs, 1e-6, 1e9, NULL},
        {"lr-alpha", CLI_OPT_REAL, &o.lr_alpha, 0, 1, NULL},
        {"monitor", CLI_OPT_STRING, &o.monitor, 0, 0, NULL},
        {"early-stopping", CLI_OPT_INT, &o.early_stopping, 0, 1e9, &o.early_stopping_given},
        {"min-delta", CLI_OPT_REAL, &o.min_delta, 0, 1e12, NULL},
        {"restore-best-weights", CLI_OPT_FLAG, &o.restore_best_weights, 0, 0, NULL},
        {"save-best", CLI_OPT_STRING, &o.save_best, 0, 0, NULL},
        {"reduce-lr-on-plateau", CLI_OPT_INT, &o.reduce_lr, 1, 1e9, &o.reduce_lr_given},
        {"reduce-lr-factor", CLI_OPT_REAL, &o.reduce_lr_factor, 1e-6, 0.999999,
         &o.reduce_lr_factor_given},
        {"min-lr", CLI_OPT_REAL, &o.min_lr, 0, 1e6, NULL},
        {"augment-flip", CLI_OPT_FLAG, &o.augment_flip, 0, 0, NULL},
        {"augment-shift", CLI_OPT_INT, &o.augment_shift, 0, 1024, NULL},
        {"augment-rotation", CLI_OPT_REAL, &o.augment_rotation, 0, 180, NULL},
        {"from", CLI_OPT_STRING, &o.from, 0, 0, NULL},
        {"freeze", CLI_OPT_STRING, &o.freeze, 0, 0, NULL},
        {"replace-head", CLI_OPT_INT, &o.replace_head, 1, 1 << 20, NULL},
        CLI_SCALE_OPTION(&o.scale),
        {NULL, 0, NULL, 0, 0, NULL},
    };
    const char *pos[1];
    int npos, rc = cli_parse(cmd, help, argc - 2, argv + 2, opts, 0, 1, pos, &npos);
    if (rc)
        return rc == CLI_HELP_SHOWN ? CLI_OK : rc;
    if (o.from && npos)
        return cli_usage_error(cmd, "give MODEL or --from FILE, not both");
    if (!npos && !o.from)
        return cli_usage_error(cmd, "missing MODEL (or --from FILE)");
    if (o.from)
        pos[0] = o.from;
    if ((rc = cli_input_scale(cmd, o.scale, &o.data.scale)))
        return rc;
    if ((rc = check_options(cmd, &o)))
        return rc;
    char checkpoint[4096];
    if (!o.checkpoint && !o.no_checkpoint) {
        default_checkpoint(o.save, checkpoint, sizeof checkpoint);
        o.checkpoint = checkpoint;
    }
    if ((rc = cli_parallel_open(cmd, &o.parallel)))
        return rc;
    rc = run(cli_parallel_command(o.parallel, cmd), &o, pos[0], argc, argv);
    return cli_parallel_close(o.parallel, rc);
}
