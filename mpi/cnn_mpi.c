/* cnn_parallel over an MPI communicator, and the start-up checks that
 * every rank holds the same model and data (cnn_mpi.h). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cnn_mpi.h"
#include "core/error.h"

struct cnn_mpi {
    MPI_Comm comm;      /* ours: a duplicate of the caller's */
    int rank, size, local_size;
    cnn_parallel parallel;
};

/* MPI counts are ints: larger arrays go in pieces. */
#define PIECE (1 << 28)

static cnn_status mpi_error(const char *what, int code)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "error %d", code);
    return cnn_fail(CNN_ERR_IO, "%s failed: %s", what, text);
}

static cnn_status allreduce(cnn_mpi *p, void *values, int64_t count, MPI_Datatype type,
                            size_t size)
{
    for (int64_t at = 0; at < count; at += PIECE) {
        int n = (int)(count - at < PIECE ? count - at : PIECE);
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)values + (size_t)at * size, n, type, MPI_SUM,
                               p->comm);
        if (rc != MPI_SUCCESS)
            return mpi_error("MPI_Allreduce", rc);
    }
    return CNN_OK;
}

static cnn_status hook_allreduce_sum(void *ctx, float *values, int64_t count)
{
    return allreduce(ctx, values, count, MPI_FLOAT, sizeof(float));
}

static cnn_status hook_allreduce_sum_double(void *ctx, double *values, int64_t count)
{
    return allreduce(ctx, values, count, MPI_DOUBLE, sizeof(double));
}

static cnn_status hook_broadcast(void *ctx, float *values, int64_t count)
{
    cnn_mpi *p = ctx;
    for (int64_t at = 0; at < count; at += PIECE) {
        int n = (int)(count - at < PIECE ? count - at : PIECE);
        int rc = MPI_Bcast(values + at, n, MPI_FLOAT, 0, p->comm);
        if (rc != MPI_SUCCESS)
            return mpi_error("MPI_Bcast", rc);
    }
    return CNN_OK;
}

cnn_status cnn_mpi_create(cnn_mpi **out, MPI_Comm comm)
{
    if (!out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "cnn_mpi_create: out is NULL");
    *out = NULL;
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized)
        return cnn_fail(CNN_ERR_STATE, "cnn_mpi_create: call MPI_Init first");
    cnn_mpi *p = calloc(1, sizeof *p);
    if (!p)
        return cnn_fail(CNN_ERR_NO_MEMORY, "cnn_mpi_create: out of memory");
    int rc = MPI_Comm_dup(comm, &p->comm);
    if (rc != MPI_SUCCESS) {
        free(p);
        return mpi_error("MPI_Comm_dup", rc);
    }
    /* failures come back as statuses instead of ending the process at once */
    MPI_Comm_set_errhandler(p->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(p->comm, &p->rank);
    MPI_Comm_size(p->comm, &p->size);
    MPI_Comm local;
    p->local_size = 1;
    if (MPI_Comm_split_type(p->comm, MPI_COMM_TYPE_SHARED, p->rank, MPI_INFO_NULL, &local)
        == MPI_SUCCESS) {
        MPI_Comm_size(local, &p->local_size);
        MPI_Comm_free(&local);
    }
    p->parallel = (cnn_parallel){.rank = p->rank, .size = p->size,
                                 .allreduce_sum = hook_allreduce_sum,
                                 .allreduce_sum_double = hook_allreduce_sum_double,
                                 .broadcast = hook_broadcast, .ctx = p};
    *out = p;
    return CNN_OK;
}

void cnn_mpi_free(cnn_mpi *p)
{
    if (!p)
        return;
    MPI_Comm_free(&p->comm);
    free(p);
}

int cnn_mpi_rank(const cnn_mpi *p) { return p ? p->rank : 0; }
int cnn_mpi_size(const cnn_mpi *p) { return p ? p->size : 1; }
int cnn_mpi_local_size(const cnn_mpi *p) { return p ? p->local_size : 1; }
const cnn_parallel *cnn_mpi_parallel(const cnn_mpi *p) { return p ? &p->parallel : NULL; }

/* ---- Start-up checks --------------------------------------------------------- */

/* FNV-1a, 64 bits: for the short things (the summary). */
static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_START 0xcbf29ce484222325ull

/* A multiply-xorshift over 8-byte words, for data sets (hundreds of MB:
 * several times faster than FNV). */
static uint64_t hash_words(uint64_t h, const void *data, size_t n)
{
    const unsigned char *b = data;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
    }
    return fnv(h, b + i, n - i);
}

/* Everyone's record; every rank gets the same verdict: the first rank
 * whose record differs from rank 0's (0 if none) and in which field. */
static cnn_status gather(cnn_mpi *p, const uint64_t *mine, int fields, uint64_t **all,
                         int *differs, int *field)
{
    *all = malloc((size_t)p->size * (size_t)fields * sizeof **all);
    if (!*all)
        return cnn_fail(CNN_ERR_NO_MEMORY, "parallel check: out of memory");
    int rc = MPI_Allgather(mine, fields, MPI_UINT64_T, *all, fields, MPI_UINT64_T, p->comm);
    if (rc != MPI_SUCCESS) {
        free(*all);
        *all = NULL;
        return mpi_error("MPI_Allgather", rc);
    }
    *differs = 0;
    *field = -1;
    for (int r = 1; r < p->size && !*differs; r++)
        for (int f = 0; f < fields; f++)
            if ((*all)[(size_t)r * fields + f] != (*all)[f]) {
                *differs = r;
                *field = f;
                break;
            }
    return CNN_OK;
}

enum { M_LAYERS, M_WEIGHTS, M_FILE, M_FIELDS };

cnn_status cnn_mpi_check_model(cnn_mpi *p, cnn_model *m)
{
    if (!p || !m)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "cnn_mpi_check_model: mpi and model are required");
    /* A rank that cannot compute its record still joins the gather (with
     * zeros), so no rank is left waiting. */
    uint64_t mine[M_FIELDS] = {0, 0, 0};
    char *summary = NULL;
    cnn_status own = cnn_model_summary(m, &summary);
    if (own == CNN_OK) {
        mine[M_LAYERS] = fnv(FNV_START, summary, strlen(summary));
        uint64_t h = FNV_START;
        for (int i = 0; i < cnn_model_layer_count(m); i++)
            for (int w = 0; w < CNN_MAX_LAYER_WEIGHTS; w++) {
                int64_t count = 0;
                const float *v = cnn_model_layer_weights(m, i, w, &count);
                if (v)
                    h = hash_words(h, v, (size_t)count * sizeof *v);
            }
        mine[M_WEIGHTS] = h;
        uint32_t crc = 0;
        own = cnn_model_checksum(m, &crc);
        mine[M_FILE] = crc;
    }
    free(summary);
    uint64_t *all;
    int r, f;
    cnn_status st = gather(p, mine, M_FIELDS, &all, &r, &f);
    if (st)
        return st;
    if (own) {
        free(all);
        return own;
    }
    if (r) {
        const uint64_t *a = all, *b = all + (size_t)r * M_FIELDS;
        st = f == M_LAYERS
                 ? cnn_fail(CNN_ERR_STATE,
                            "parallel check: rank %d's model has other layers than rank 0's"
                            " (its summary differs): every rank must read the same model",
                            r)
             : f == M_WEIGHTS
                 ? cnn_fail(CNN_ERR_STATE,
                            "parallel check: rank %d's weights differ from rank 0's (checksum"
                            " %016llx, rank 0 %016llx): every rank must load the same model file,"
                            " or build the description with the same seed",
                            r, (unsigned long long)b[f], (unsigned long long)a[f])
                 : cnn_fail(CNN_ERR_STATE,
                            "parallel check: rank %d's model differs from rank 0's in a layer"
                            " setting, the loss, the optimizer or its state, or the training"
                            " position (model file checksum %08llx, rank 0 %08llx)",
                            r, (unsigned long long)b[f], (unsigned long long)a[f]);
    }
    free(all);
    return st;
}

enum { T_RANK, T_DIMS, T_HASH = T_DIMS + CNN_MAX_RANK, T_FIELDS };

static void format_shape(const uint64_t *rec, char *buf, size_t cap)
{
    if (rec[T_RANK] == 0) {
        snprintf(buf, cap, "none");
        return;
    }
    size_t at = 0;
    for (uint64_t i = 0; i < rec[T_RANK] && i < CNN_MAX_RANK && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%llu", i ? "x" : "",
                               (unsigned long long)rec[T_DIMS + i]);
}

cnn_status cnn_mpi_check_tensor(cnn_mpi *p, const cnn_tensor *t, const char *what)
{
    if (!p)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "cnn_mpi_check_tensor: mpi is required");
    if (!what)
        what = "the tensor";
    uint64_t mine[T_FIELDS] = {0};
    if (t && t->data && t->rank >= 1 && t->rank <= CNN_MAX_RANK) {
        mine[T_RANK] = (uint64_t)t->rank;
        for (int i = 0; i < t->rank; i++)
            mine[T_DIMS + i] = (uint64_t)t->dims[i];
        mine[T_HASH] = hash_words(FNV_START, t->data, (size_t)cnn_tensor_size(t) * sizeof(float));
    }
    uint64_t *all;
    int r, f;
    cnn_status st = gather(p, mine, T_FIELDS, &all, &r, &f);
    if (st)
        return st;
    if (r) {
        char a[96], b[96];
        format_shape(all, a, sizeof a);
        format_shape(all + (size_t)r * T_FIELDS, b, sizeof b);
        st = f == T_HASH ? cnn_fail(CNN_ERR_STATE,
                                    "parallel check: rank %d's %s differ from rank 0's (same"
                                    " shape %s, other values): every rank must read the same"
                                    " files",
                                    r, what, a)
                         : cnn_fail(CNN_ERR_STATE,
                                    "parallel check: rank %d's %s differ from rank 0's (shape %s,"
                                    " rank 0 %s): every rank must read the same files",
                                    r, what, b, a);
    }
    free(all);
    return st;
}
