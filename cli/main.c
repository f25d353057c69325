/* cnn - the command-line tool: dispatches to one file per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *what;
} commands[] = {
    {"summary", cli_summary, "the layer table, parameters, memory and FLOPs of a model"},
    {"train", cli_train, "train a model on IDX data (MNIST / Fashion-MNIST layout)"},
    {"evaluate", cli_evaluate, "loss, accuracy, confusion matrix and per-class accuracy"},
    {"predict", cli_predict, "the top classes of images (PNG, JPEG, BMP, PGM) or IDX files"},
    {"quantize", cli_quantize, "post-training int8 quantization (evaluate/predict/summary run it)"},
    {"visualize", cli_visualize, "every layer's feature maps for an image, as PNGs + index.html"},
    {"export", cli_export, "the model as dependency-free C (NAME.h, NAME.c, test vectors)"},
};

static void usage(FILE *out)
{
    fputs("Usage: cnn COMMAND [OPTIONS] [ARGUMENTS]\n"
          "\n"
          "Keras-style convolutional neural networks from the command line (libcnn).\n"
          "\n"
          "Commands:\n", out);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].what);
    fputs("\n"
          "MODEL is a description (one layer per line, or Keras model.to_json();\n"
          "see docs/DESCRIPTION_FORMAT.md), a model saved by 'cnn train --save' (.cnn),\n"
          "or a Keras model file, .h5 or .keras (see docs/KERAS.md).\n"
          "Run 'cnn COMMAND --help' for a command's options; docs/CLI.md has examples.\n"
          "\n"
          "Exit status:\n"
          "  0    success\n"
          "  1    failure: a file that cannot be read or is malformed, data that does\n"
          "       not fit the model, the memory budget exceeded, ...\n"
          "  2    usage error: unknown option, missing or invalid argument\n"
          "  130  interrupted by Ctrl-C; 'cnn train' first saves a checkpoint and prints\n"
          "       the command that resumes it\n"
          "Errors go to stderr as 'cnn COMMAND: message'.\n", out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(name, "--version") == 0) {
        puts("cnn 0.1.0");
        return CLI_OK;
    }
    if (strcmp(name, "help") == 0 && argc >= 3) {
        /* cnn help COMMAND = cnn COMMAND --help */
        char *args[] = {argv[0], argv[2], "--help", NULL};
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (strcmp(argv[2], commands[i].name) == 0)
                return commands[i].run(3, args);
    } else if (strcmp(name, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc, argv);
    fprintf(stderr, "cnn: unknown command '%s'\nCommands: summary, train, evaluate, predict,"
                    " visualize, export. Try 'cnn --help'.\n", argc >= 3 && strcmp(name, "help") == 0
                                                           ? argv[2] : name);
    return CLI_USAGE;
}
