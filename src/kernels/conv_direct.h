/* Direct convolution for few input channels (Conv2D's first layer: 1 or 3
 * channels), NHWC, kernel (kh, kw, c, filters) as Keras stores it.
 *
 * With K = kh * kw * c small (25 or 75), im2col + GEMM spends most of its
 * time building and re-reading a column matrix of short rows. These kernels
 * read the input instead, through a zero-padded copy of a few samples
 * (cnn_conv_direct_pad): every tap of every output pixel is then in
 * bounds, so the inner loops have no tests, and taps in the padding
 * multiply zeros exactly as im2col's zero columns do.
 *
 *   forward:          a register tile of R output pixels x up to 2 vectors
 *                     of filters; per tap, one kernel load, R broadcasts of
 *                     the input and R x 2 fused multiply-adds
 *   backward-weights: the other loop order (a GEMM with K = 25 would have
 *                     M = 25, too few rows for its tiles): a register tile
 *                     of T taps x up to 2 vectors of filters, kept over all
 *                     pixels of a sample; per pixel, one load of dy, T
 *                     broadcasts of the input
 *
 * Every output element is summed in a fixed order that depends on neither
 * the register tile nor the split between threads: forward over the taps
 * in (ky, kx, c) order from zero; backward-weights over the pixels of a
 * sample in row-major order from zero, then that sample's sum added to
 * dkernel, sample by sample. Callers split forward by output rows and
 * backward-weights by taps, so results do not depend on the thread count.
 * The fast versions use fused multiply-adds on AVX2 and AVX-512 (isa), so
 * they agree with the naive twins to rounding, not to the bit. */
#ifndef CNN_KERNELS_CONV_DIRECT_H
#define CNN_KERNELS_CONV_DIRECT_H

#include <stdint.h>

#include "kernels/conv.h"
#include "kernels/isa.h"

/* Floats of one padded sample: ph * pw * c, with
 * ph = (oh - 1) * sh + (kh - 1) * dh + 1 and pw likewise (the input rows
 * and columns the output reads, padding included). */
int64_t cnn_conv_direct_sample_floats(const cnn_conv_geom *g);

/* xp[s] = sample n0 + s of x, zero-padded (pad_top/pad_left zeros before,
 * the rest after; input beyond what the output reads is dropped), for
 * s in [0, count). xp: count * cnn_conv_direct_sample_floats(g) floats. */
void cnn_conv_direct_pad(const cnn_conv_geom *g, const float *x, int64_t n0, int64_t count,
                         float *xp);

/* Forward over output rows [r0, r1) of a padded block, r = s * oh + oy:
 *   y[(r * ow + ox) * F + f] = sum_taps xp[...] * kernel[tap * F + f] (+ bias[f])
 * y points at output row r0; bias may be NULL. */
void cnn_conv_direct_forward(cnn_isa isa, const cnn_conv_geom *g, int filters, const float *xp,
                             const float *kernel, const float *bias, int64_t r0, int64_t r1,
                             float *y);
void cnn_conv_direct_forward_naive(const cnn_conv_geom *g, int filters, const float *xp,
                                   const float *kernel, const float *bias, int64_t r0,
                                   int64_t r1, float *y);

/* Backward-weights for taps [t0, t1), t = (ky * kw + kx) * c + ci, over
 * the `count` samples of a padded block (dy: their outputs' gradients):
 *   dkernel[t * F + f] += sum_samples (sum_pixels xp[tap of pixel] * dy[pixel * F + f])
 *   dbias[f] += sum_samples (sum_pixels dy[pixel * F + f])   (dbias may be NULL)
 * The bias sums ride along with the first tap block (dy is loaded anyway),
 * so a caller splitting taps passes dbias to one part only. */
void cnn_conv_direct_weights(cnn_isa isa, const cnn_conv_geom *g, int filters,
                             const float *xp, const float *dy, int64_t count, int t0, int t1,
                             float *dkernel, float *dbias);
void cnn_conv_direct_weights_naive(const cnn_conv_geom *g, int filters, const float *xp,
                                   const float *dy, int64_t count, int t0, int t1,
                                   float *dkernel, float *dbias);

#endif
