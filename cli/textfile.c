/* Text files the tool writes: printed into memory, saved atomically. */
#include <stdlib.h>

#include "cli.h"

int cli_text_open(const char *cmd, cli_text *t)
{
    *t = (cli_text){0};
    t->f = open_memstream(&t->buf, &t->len);
    return t->f ? CLI_OK : cli_failf(cmd, "out of memory");
}

int cli_text_save(const char *cmd, cli_text *t, const char *path, int rc)
{
    if (!t->f)
        return rc;
    bool ok = !ferror(t->f);
    ok = fclose(t->f) == 0 && ok;
    t->f = NULL;
    if (!rc && !ok)
        rc = cli_failf(cmd, "%s: out of memory while writing it", path);
    if (!rc && cnn_file_write_atomic(path, t->buf, t->len))
        rc = cli_fail(cmd);
    free(t->buf);
    t->buf = NULL;
    return rc;
}
