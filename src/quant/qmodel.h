/* Post-training int8 quantization of a model - a chain or a graph - and
 * its integer inference path (docs/QUANTIZATION.md has the arithmetic; the
 * public entry points are cnn_qmodel_* in cnn.h).
 *
 * cnn_qmodel_create runs the float model over calibration images, records
 * the range of every tensor the int8 model will hold, and converts the
 * layers into a list of ops over numbered int8 tensors ("values"; value 0
 * is the model's input): Conv2D, DepthwiseConv2D and Dense (weights per
 * output channel, int32 biases; a BatchNormalization reading only them
 * folded into the weights, a ReLU/ReLU6 reading only them fused into the
 * output clamp; a fused tanh or sigmoid becomes a table lookup after them),
 * MaxPooling2D, AveragePooling2D and GlobalMaxPooling2D (on their input's
 * parameters), GlobalAveragePooling2D (its own: TFLite's MEAN), Add (TFLite's ADD, a following ReLU fused), Concatenate on
 * the channel axis (inputs requantized to the output's parameters),
 * ZeroPadding2D (the zero point), ReLU/ReLU6 alone (a clamp), other
 * elementwise activations (a 256-entry table), Flatten, Reshape and Dropout
 * (no-ops); a softmax is allowed only at the end and runs in float on the
 * dequantized logits. Any other layer is refused by name and kind.
 *
 * What follows the public functions is for the C exporter and the file
 * format: the op list, read only. */
#ifndef CNN_QUANT_QMODEL_H
#define CNN_QUANT_QMODEL_H

#include <stdint.h>

#include "cnn.h"
#include "kernels/qgemm.h"
#include "kernels/qops.h"

/* Quantizes m (read only, but its forward buffers are used) with the first
 * count examples of calib (cnn_qmodel_create in cnn.h). */

/* Which kernels run (tests compare them); default CNN_QISA_AUTO. */
void cnn_qmodel_set_isa(cnn_qmodel *q, cnn_qisa isa);
/* The quantization parameters of the model's input. */
cnn_qparams cnn_qmodel_input_params(const cnn_qmodel *q);

/* ---- The op list (exporter, file format) ------------------------------- */

typedef enum cnn_qop_kind {
    CNN_QOP_CONV = 1,    /* cnn_qconv: weights K x N, K = kh * kw * c */
    CNN_QOP_DEPTHWISE,   /* cnn_qdepthwise: weights (kh, kw, c * mult) */
    CNN_QOP_DENSE,       /* cnn_qgemm: weights K x N, K = the input's size */
    CNN_QOP_MAXPOOL,     /* cnn_qmaxpool, input's parameters */
    CNN_QOP_AVGPOOL,     /* cnn_qavgpool, input's parameters */
    CNN_QOP_CLAMP,       /* y = clamp(x, lo, hi), input's parameters */
    CNN_QOP_ADD,         /* cnn_qadd with spec add */
    CNN_QOP_CONCAT,      /* cnn_qconcat along channels */
    CNN_QOP_PAD,         /* cnn_qzeropad with pad[4] */
    CNN_QOP_LUT,         /* y = lut[x + 128] */
    CNN_QOP_GLOBAL_AVG,  /* cnn_qglobal_avg: N = c multipliers and shifts */
    CNN_QOP_GLOBAL_MAX,  /* cnn_qmaxpool over the whole map */
    CNN_QOP_KIND_END
} cnn_qop_kind;

#define CNN_QOP_MAX_INPUTS CNN_MAX_LAYER_INPUTS
#define CNN_QOP_NAME_MAX 64 /* layer names are at most 63 bytes */

typedef struct cnn_qop {
    cnn_qop_kind kind;
    char name[CNN_QOP_NAME_MAX]; /* the float layer it came from (messages, export) */
    int layer;                     /* that layer's index at quantization, -1 after load */
    int n_inputs;
    int inputs[CNN_QOP_MAX_INPUTS]; /* value ids */
    int output;                     /* value id, greater than every input's */
    cnn_conv_geom g;                /* conv, depthwise, pooling, global pooling, pad (h, w, c, oh, ow) */
    int mult;                       /* depthwise multiplier */
    int N, K;                       /* weighted ops: output channels / units, rows */
    int8_t *weights;                /* weighted ops, unpacked (K x N, or kh * kw * N) */
    int32_t *bias, *multiplier, *shift; /* weighted ops: N each; concat: n_inputs (bias unused) */
    int *channels;                  /* concat: each input's channels */
    int32_t lo, hi;                 /* the output clamp */
    cnn_qadd_spec add;
    int pad[4];                     /* top, bottom, left, right */
    int8_t lut[256];
    /* derived, not stored */
    cnn_qpacked *packed;
    cnn_qoutput stage;
    /* at quantization only */
    int preact;   /* the output's range: 0 the layer's output, 1 (2) the inverse
                     tanh (sigmoid) of it, 3 a Dense's logits recomputed */
    bool calib;   /* the output's parameters come from its calibrated range */
    int wlayer, bnlayer; /* the layer with the weights; a folded BatchNormalization or -1 */
    float bn_eps;
    bool bn_alone; /* a BatchNormalization on its own, as a 1x1 depthwise convolution */
    int clamp;    /* the fused clamp: 0 none, 1 relu, 2 relu6 */
    int lut_fn;   /* the table's function: 1 an activation, 2 LeakyReLU, 3 ELU, 4 ReLU */
    cnn_activation lut_act;
    float lut_a, lut_b, lut_c;
} cnn_qop;

typedef struct cnn_qvalue {
    int64_t elems;  /* per example */
    cnn_qparams p;
    int64_t offset; /* in the activation arena, per example (the planner's) */
} cnn_qvalue;

int cnn_qmodel_op_count(const cnn_qmodel *q);
const cnn_qop *cnn_qmodel_op(const cnn_qmodel *q, int k);
int cnn_qmodel_value_count(const cnn_qmodel *q);
const cnn_qvalue *cnn_qmodel_value(const cnn_qmodel *q, int v);
/* The value holding the output (its logits when softmax_output). */
int cnn_qmodel_output_value(const cnn_qmodel *q);
bool cnn_qmodel_softmax_output(const cnn_qmodel *q);


/* ---- The exporter's view (src/export/): one op's fields ------------------- */
typedef struct cnn_qop_info {
    cnn_qop_kind kind;
    int layer;                /* the float layer whose output the op yields */
    cnn_conv_geom g;          /* conv, depthwise, pooling */
    int mult;                 /* depthwise multiplier */
    int N;                    /* output channels or units */
    int64_t in_elems, out_elems, weight_count; /* per example; weight bytes */
    const int32_t *bias, *multiplier, *shift;  /* N each (conv, depthwise, dense) */
    cnn_qparams in, out;      /* its first input's and its output's parameters */
    int32_t lo, hi;           /* the output clamp */
} cnn_qop_info;
void cnn_qmodel_op_info(const cnn_qmodel *q, int k, cnn_qop_info *out);
/* Op k's int8 weights in Keras's layout (K x N; depthwise (kh, kw, c *
 * mult)) into w, weight_count bytes. */
void cnn_qmodel_op_weights(const cnn_qmodel *q, int k, int8_t *w);
cnn_qparams cnn_qmodel_output_params(const cnn_qmodel *q);
/* Whether the float output is the softmax of the dequantized output value. */
bool cnn_qmodel_ends_in_softmax(const cnn_qmodel *q);
/* True when every op reads the op before it (the first reads the input)
 * and the last op's output is the model's: what a chain exporter can run. */
bool cnn_qmodel_is_chain(const cnn_qmodel *q);
/* n examples from int8 input (the input's parameters) to the output
 * value's int8 (before dequantization and softmax). */
cnn_status cnn_qmodel_predict_int8(cnn_qmodel *q, const int8_t *x, int64_t n, int8_t *y);

#endif
