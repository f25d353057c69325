/* Ctrl-C during training: the first SIGINT asks fit to stop after the
 * current step (train then saves a checkpoint and exits 130); the handler
 * resets itself, so a second Ctrl-C ends the process at once. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static volatile sig_atomic_t interrupted;
static struct sigaction previous;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
    static const char msg[] = "\ncnn train: stopping after this step to save a checkpoint"
                              " (press Ctrl-C again to quit without saving)\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
}

int cli_interrupt_install(const char *cmd)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    interrupted = 0;
    if (sigaction(SIGINT, &sa, &previous) != 0)
        return cli_failf(cmd, "cannot install the Ctrl-C handler");
    return CLI_OK;
}

void cli_interrupt_restore(void) { sigaction(SIGINT, &previous, NULL); }

bool cli_interrupted(void) { return interrupted != 0; }

/* Appends s to buf (capacity grown as needed); false when out of memory. */
static bool append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = (*len + n + 1) * 2;
        char *g = realloc(*buf, c);
        if (!g)
            return false;
        *buf = g;
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return true;
}

/* One word for a POSIX shell: as is when it is safe, else in single quotes
 * with each ' written as '\''. */
static bool append_word(char **buf, size_t *len, size_t *cap, const char *w)
{
    bool safe = *w != '\0';
    for (const char *p = w; *p && safe; p++)
        safe = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+./=:,@%",
                      *p) != NULL;
    if (*len && !append(buf, len, cap, " ", 1))
        return false;
    if (safe)
        return append(buf, len, cap, w, strlen(w));
    if (!append(buf, len, cap, "'", 1))
        return false;
    for (const char *p = w; *p; p++)
        if (!(*p == '\'' ? append(buf, len, cap, "'\\''", 4) : append(buf, len, cap, p, 1)))
            return false;
    return append(buf, len, cap, "'", 1);
}

char *cli_resume_command(int argc, char **argv, const char *checkpoint)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    bool ok = append(&buf, &len, &cap, "", 0);
    bool options_done = false;
    for (int i = 0; i < argc && ok; i++) {
        if (i >= 2 && !options_done && strcmp(argv[i], "--resume") == 0) {
            i++; /* and its value */
            continue;
        }
        if (i >= 2 && !options_done && strncmp(argv[i], "--resume=", 9) == 0)
            continue;
        if (i >= 2 && strcmp(argv[i], "--") == 0) {
            /* Put --resume before "--" so it is still read as an option. */
            ok = append_word(&buf, &len, &cap, "--resume")
              && append_word(&buf, &len, &cap, checkpoint);
            checkpoint = NULL;
            options_done = true;
        }
        ok = ok && append_word(&buf, &len, &cap, argv[i]);
    }
    if (ok && checkpoint)
        ok = append_word(&buf, &len, &cap, "--resume") && append_word(&buf, &len, &cap, checkpoint);
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}
