/* The quantized model's fields, shared by the files of src/quant/:
 * qmodel.c (quantization), qmodel_run.c (memory plan, inference,
 * evaluation), qmodel_file.c (the file format). */
#ifndef CNN_QUANT_QMODEL_IMPL_H
#define CNN_QUANT_QMODEL_IMPL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "core/threadpool.h"
#include "quant/qmodel.h"

struct cnn_qmodel {
    cnn_qop *ops;
    int nops;
    cnn_qvalue *values;
    int nvalues;
    int output_value;
    cnn_shape input_shape, output_shape;
    bool softmax;
    int64_t float_params; /* the float model's parameter count (for a summary) */
    int64_t arena_elems;  /* per example, from cnn_qmodel_prepare */
    int64_t max_col, max_channels;
    cnn_qisa isa;
    cnn_pool *pool;
    /* predict's working memory, kept between calls (qmodel_run.c) */
    void *scratch;
    size_t scratch_bytes;
    atomic_bool scratch_busy;
};

/* The examples one predict pass holds. */
enum { QMODEL_BATCH = 64, QMODEL_COL_ROWS = 256 };

/* After the ops and values are complete (quantized or loaded): packs the
 * weights, sets the output stages, plans the arena and sizes the scratch. */
cnn_status cnn_qmodel_prepare(cnn_qmodel *q);
/* Frees one op's arrays. */
void cnn_qop_clear(cnn_qop *op);
/* An empty model with a thread pool of threads. */
cnn_status cnn_qmodel_alloc(cnn_qmodel **out, int threads);
int64_t cnn_qshape_elems(cnn_shape s);

#endif
