/* How `cnn train` compiles: a description with the options given (or the
 * defaults), a saved model with its own loss and optimizer state unless
 * options ask for another. */
#include <stdio.h>

#include "cli.h"

/* Compiles a fresh model, or a saved one when asked to; keeps a saved
 * model's optimizer state otherwise. */
int cli_compile(const char *cmd, cnn_model *m, const cli_compile_options *o, cnn_loss *loss)
{
    cnn_compile_config saved;
    bool compiled = cnn_model_compile_config(m, &saved) == CNN_OK;
    if (compiled && !o->optimizer && !o->loss && !o->lr_given && !o->momentum_given
        && !o->clipnorm_given && !o->global_clipnorm_given && !o->from_logits) {
        *loss = saved.loss;
        printf("Continuing with the saved optimizer state: %s (learning rate %g), loss %s%s\n",
               cnn_optimizer_name(saved.optimizer.kind), (double)saved.optimizer.learning_rate,
               cnn_loss_name(saved.loss), saved.from_logits ? " from logits" : "");
        return CLI_OK;
    }
    cnn_compile_config cfg = {.loss = CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                              .optimizer = {.kind = CNN_OPTIMIZER_ADAM}};
    if (compiled) {
        cfg.loss = saved.loss;
        cfg.optimizer = saved.optimizer;
        cfg.from_logits = saved.from_logits;
    }
    if (o->loss) {
        if (cnn_loss_from_name(o->loss, &cfg.loss)) /* checked by the caller */
            return cli_usage_error(cmd, "--loss: %s", cnn_last_error());
        cfg.from_logits = false; /* a new loss takes probabilities unless told */
    }
    if (o->from_logits)
        cfg.from_logits = true;
    cnn_optimizer_kind kind = cfg.optimizer.kind;
    if (o->optimizer && cnn_optimizer_from_name(o->optimizer, &kind))
        return cli_usage_error(cmd, "--optimizer: %s", cnn_last_error());
    if (kind != cfg.optimizer.kind)
        cfg.optimizer = (cnn_optimizer){.kind = kind};
    /* Here the optimizer is known (adam by default, or the saved one), so
     * --momentum without --optimizer is caught as well. */
    if (o->momentum_given && cfg.optimizer.kind == CNN_OPTIMIZER_ADAM)
        return cli_usage_error(cmd, "--momentum applies to sgd and rmsprop, not adam%s; give"
                               " --optimizer sgd or --optimizer rmsprop with it",
                               o->optimizer ? ""
                               : compiled ? " (the saved model's optimizer)"
                                          : " (the default optimizer)");
    if (o->lr_given)
        cfg.optimizer.learning_rate = (float)o->lr;
    if (o->momentum_given)
        cfg.optimizer.momentum = (float)o->momentum;
    if (o->clipnorm_given)
        cfg.optimizer.clipnorm = (float)o->clipnorm;
    if (o->global_clipnorm_given)
        cfg.optimizer.global_clipnorm = (float)o->global_clipnorm;
    if (cnn_model_compile(m, cfg) || cnn_model_compile_config(m, &cfg))
        return cli_fail(cmd);
    *loss = cfg.loss;
    printf("%s: %s (learning rate %g", compiled ? "Compiled anew (fresh optimizer state)"
                                                : "Optimizer",
           cnn_optimizer_name(cfg.optimizer.kind), (double)cfg.optimizer.learning_rate);
    if (cfg.optimizer.momentum > 0)
        printf(", momentum %g", (double)cfg.optimizer.momentum);
    if (cfg.optimizer.clipnorm > 0)
        printf(", clipnorm %g", (double)cfg.optimizer.clipnorm);
    if (cfg.optimizer.global_clipnorm > 0)
        printf(", global_clipnorm %g", (double)cfg.optimizer.global_clipnorm);
    printf("), loss %s%s\n", cnn_loss_name(cfg.loss), cfg.from_logits ? " from logits" : "");
    return CLI_OK;
}
