/* Post-training int8 quantization of a Sequential model and its integer
 * inference path (docs/QUANTIZATION.md has the arithmetic).
 *
 * cnn_qmodel_create runs the float model over calibration images, records
 * the range of every tensor the int8 model will hold, and converts the
 * layers: Conv2D, DepthwiseConv2D and Dense (weights per output channel,
 * int32 biases; a following BatchNormalization folded into the weights, a
 * following ReLU/ReLU6 fused into the output clamp),
 * MaxPooling2D and AveragePooling2D (on their input's parameters), ReLU
 * and ReLU6 on their own, Flatten, Reshape and Dropout (no-ops); a softmax
 * is allowed only at the end and runs in float on the dequantized logits.
 * Any other layer is refused by name.
 *
 * Internal for now (not in cnn.h): it will move onto the graph engine's
 * models; the kernels below it do not depend on the model. */
#ifndef CNN_QUANT_QMODEL_H
#define CNN_QUANT_QMODEL_H

#include <stdint.h>

#include "cnn.h"
#include "kernels/qgemm.h"

typedef struct cnn_qmodel cnn_qmodel;

/* Quantizes m (read only, but its forward buffers are used) with the first
 * count examples of calib (count 0 or beyond calib's size: all of them),
 * shaped like the model's input. CNN_ERR_INVALID_ARGUMENT naming the layer
 * that cannot be quantized, CNN_ERR_SHAPE for calibration data of the
 * wrong shape, CNN_ERR_NUMERIC for a non-finite calibrated range. Free
 * with cnn_qmodel_free. */
cnn_status cnn_qmodel_create(cnn_qmodel **out, cnn_model *m, const cnn_tensor *calib,
                             int64_t count);
void cnn_qmodel_free(cnn_qmodel *q);

/* Which kernels run (tests compare them); default CNN_QISA_AUTO. */
void cnn_qmodel_set_isa(cnn_qmodel *q, cnn_qisa isa);
/* Worker threads for predict (default: the float model's count); each op's
 * output rows are split between them, so results do not depend on it.
 * CNN_ERR_INVALID_ARGUMENT outside 1..1024. */
cnn_status cnn_qmodel_set_threads(cnn_qmodel *q, int threads);

/* Outputs for every example of x (shaped like the model's input) as float:
 * out receives n * (the model's output size) values, probabilities when
 * the model ends in softmax. */
cnn_status cnn_qmodel_predict(cnn_qmodel *q, const cnn_tensor *x, float *out);

/* Bytes of int8 weights, int32 biases and multipliers (what an export
 * would store). */
int64_t cnn_qmodel_weight_bytes(const cnn_qmodel *q);
/* The quantization parameters of the model's input. */
cnn_qparams cnn_qmodel_input_params(const cnn_qmodel *q);

/* ---- The op list as it runs, for the C exporter (src/export/) --------- */
typedef enum cnn_qop_kind {
    CNN_QOP_CONV,
    CNN_QOP_DEPTHWISE,
    CNN_QOP_DENSE,
    CNN_QOP_MAXPOOL,
    CNN_QOP_AVGPOOL,
    CNN_QOP_CLAMP
} cnn_qop_kind;
typedef struct cnn_qop_info {
    cnn_qop_kind kind;
    int layer;                /* the float layer whose output the op yields */
    cnn_conv_geom g;          /* conv, depthwise, pooling */
    int mult;                 /* depthwise multiplier */
    int N;                    /* output channels or units */
    int64_t in_elems, out_elems, weight_count; /* per example; weight bytes */
    const int32_t *bias, *multiplier, *shift;  /* N each (conv, depthwise, dense) */
    cnn_qparams in, out;
    int32_t lo, hi;           /* the output clamp */
} cnn_qop_info;
int cnn_qmodel_op_count(const cnn_qmodel *q);
void cnn_qmodel_op_info(const cnn_qmodel *q, int k, cnn_qop_info *out);
/* Op k's int8 weights in Keras's layout (K x N; depthwise (kh, kw, c *
 * mult)) into w, weight_count bytes. */
void cnn_qmodel_op_weights(const cnn_qmodel *q, int k, int8_t *w);
cnn_qparams cnn_qmodel_output_params(const cnn_qmodel *q);
/* Whether the float output is the softmax of the dequantized last op. */
bool cnn_qmodel_ends_in_softmax(const cnn_qmodel *q);
/* n examples from int8 input (the input's parameters) to the last op's
 * int8 output (before dequantization and softmax). */
cnn_status cnn_qmodel_predict_int8(cnn_qmodel *q, const int8_t *x, int64_t n, int8_t *y);

#endif
