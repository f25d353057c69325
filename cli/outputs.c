/* The files a command will write, checked before it starts working: each
 * must be a regular file or missing (a device or FIFO is refused, not
 * replaced), must not be one of the command's inputs (same device and
 * inode), its directory must take new files, and no other cnn may be
 * writing it. The last two are one step: an advisory lock (flock) on
 * NAME.lock beside the output, created with O_NOFOLLOW and held until the
 * command ends. The writer itself (cnn's atomic save) checks the target
 * again when it replaces it. */
#define _GNU_SOURCE /* O_NOFOLLOW, O_CLOEXEC with older libcs */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char *kind_of(mode_t mode)
{
    return S_ISDIR(mode)    ? "a directory"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISSOCK(mode) ? "a socket"
                            : "not a regular file";
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Takes the lock on path.lock: open (creating it; O_NOFOLLOW, so a planted
 * symlink is refused), flock without waiting, and make sure the file locked
 * is still the one at that name (a finishing run unlinks it). */
static int take_lock(const char *cmd, const char *option, const char *path, cli_output_lock *l)
{
    size_t n = strlen(path);
    char *lock = malloc(n + sizeof ".lock");
    if (!lock)
        return cli_failf(cmd, "out of memory");
    memcpy(lock, path, n);
    memcpy(lock + n, ".lock", sizeof ".lock");
    for (int attempt = 0; attempt < 5; attempt++) {
        int fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0666);
        if (fd < 0) {
            int err = errno;
            int rc = cli_failf(cmd, "--%s %s: cannot create %s in its directory (%s): nothing"
                               " could be saved there", option, path, lock, strerror(err));
            free(lock);
            return rc;
        }
        struct stat held, now;
        if (fstat(fd, &held) != 0 || !S_ISREG(held.st_mode)) {
            close(fd);
            int rc = cli_failf(cmd, "--%s %s: %s is not a regular file; remove it", option, path,
                               lock);
            free(lock);
            return rc;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int err = errno;
            close(fd);
            int rc = err == EWOULDBLOCK
                         ? cli_failf(cmd, "--%s %s: another cnn is writing it (it holds %s);"
                                     " wait for it to finish or choose another path", option,
                                     path, lock)
                         : cli_failf(cmd, "--%s %s: cannot lock %s: %s", option, path, lock,
                                     strerror(err));
            free(lock);
            return rc;
        }
        if (stat(lock, &now) == 0 && same_file(&held, &now)) {
            l->fd = fd;
            l->lock_path = lock;
            return CLI_OK;
        }
        close(fd); /* unlinked by the run that held it: take the new one */
    }
    int rc = cli_failf(cmd, "--%s %s: cannot lock %s: it keeps being replaced", option, path,
                       lock);
    free(lock);
    return rc;
}

int cli_outputs_claim(const char *cmd, const cli_output *outs, int n_out, const cli_input *ins,
                      int n_in, cli_outputs *held)
{
    *held = (cli_outputs){0};
    for (int i = 0; i < n_out; i++) {
        const cli_output *o = &outs[i];
        if (!o->path)
            continue;
        struct stat sb;
        if (stat(o->path, &sb) == 0) {
            if (!S_ISREG(sb.st_mode)) {
                cli_outputs_release(held);
                return cli_failf(cmd, "--%s %s: expected a regular file to replace, got %s;"
                                 " refusing to write there", o->option, o->path,
                                 kind_of(sb.st_mode));
            }
            for (int k = 0; k < n_in; k++) {
                struct stat in;
                if (!ins[k].path || stat(ins[k].path, &in) != 0 || !same_file(&sb, &in)
                    || (o->model && ins[k].model))
                    continue;
                cli_outputs_release(held);
                return cli_failf(cmd, "--%s %s is the same file as %s %s: refusing to"
                                 " overwrite an input", o->option, o->path, ins[k].what,
                                 ins[k].path);
            }
        }
        if (held->count == CLI_MAX_OUTPUTS) {
            cli_outputs_release(held);
            return cli_failf(cmd, "too many outputs");
        }
        /* the same path given twice (--save and --checkpoint): one lock */
        bool again = false;
        for (int k = 0; k < i; k++)
            again = again || (outs[k].path && strcmp(outs[k].path, o->path) == 0);
        if (again)
            continue;
        int rc = take_lock(cmd, o->option, o->path, &held->locks[held->count]);
        if (rc) {
            cli_outputs_release(held);
            return rc;
        }
        held->count++;
    }
    return CLI_OK;
}

void cli_outputs_release(cli_outputs *held)
{
    for (int i = 0; i < held->count; i++) {
        /* unlink first, while locked: a run waiting on this file then sees
         * that the name no longer leads to it, and makes a new one */
        unlink(held->locks[i].lock_path);
        close(held->locks[i].fd);
        free(held->locks[i].lock_path);
    }
    *held = (cli_outputs){0};
}
