/* Calibration methods beyond min/max (docs/QUANTIZATION.md section 2a): a
 * fixed-width histogram of one tensor's values over its min/max range, and
 * the rule each method uses to pick a narrower range from it. */
#ifndef CNN_QUANT_QCALIB_H
#define CNN_QUANT_QCALIB_H

#include <stdint.h>

#include "cnn.h"

#define CNN_QCALIB_BINS 2048
#define CNN_QCALIB_DEFAULT_PERCENTILE 99.99

typedef struct {
    double lo, hi;                    /* the min/max range the bins divide */
    int64_t zeros;                    /* values exactly 0 (exact in int8: no error) */
    int64_t bins[CNN_QCALIB_BINS];    /* every other value */
} cnn_qhist;

void cnn_qhist_init(cnn_qhist *h, float lo, float hi);
void cnn_qhist_add(cnn_qhist *h, const float *x, int64_t n);
/* The range the method picks ([h->lo, h->hi] for min/max or an empty
 * histogram). */
void cnn_qhist_choose(const cnn_qhist *h, const cnn_qcalib_options *o, float *lo, float *hi);
/* Checks the options (NULL is min/max). */
cnn_status cnn_qcalib_check(const cnn_qcalib_options *o);

#endif
