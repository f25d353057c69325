/* Winograd's minimal filtering F(2x2, 5x5) for a stride-1, undilated 5x5
 * convolution, NHWC, kernel (5, 5, c, filters) as Keras stores it.
 *
 * Each 2x2 block of output pixels (a tile) is computed from the 6x6 input
 * patch under it with 36 multiplications per (channel, filter) pair where
 * the direct product takes 100:
 *
 *   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        (Lavin & Gray 2016)
 *
 * with the interpolation points 0, 1, -1, 2, -2 and infinity (the matrices
 * in winograd.c, derived by scripts/winograd_matrices.py). Summed over the
 * input channels, the elementwise product is 36 independent GEMMs, one per
 * point of the 6x6 transform: M[p] (tiles x filters) = V[p] (tiles x c) *
 * U[p] (c x filters). The kernels work on blocks of tiles whose V and M
 * stay in the core's L2 cache, and write the output's 2x2 pixels (bias
 * and activation applied) from M while it is there.
 *
 * Accuracy: the transforms scale values by up to 5 and divide by 6 and 24,
 * so the result is not the direct sum's bits; test_winograd measures the
 * error against a double-precision reference and bounds it. Every output
 * is computed the same way whichever block, tile range or thread computes
 * it: results do not depend on the thread count.
 *
 * AVX-512F only (cnn_winograd_fits says false elsewhere; callers keep the
 * direct products). */
#ifndef CNN_KERNELS_WINOGRAD_H
#define CNN_KERNELS_WINOGRAD_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/activation.h"
#include "kernels/conv.h"

/* Transform points of the 6x6 patch. */
#define CNN_WINOGRAD_POINTS 36

/* The geometry runs here: a 5x5 kernel, stride 1, no dilation, channels and
 * filters multiples of 16, the transformed kernel (36 c filters floats)
 * within 1 MiB so each block can re-read it from L2, and AVX-512F. */
bool cnn_winograd_fits(const cnn_conv_geom *g, int filters);

/* Tiles of a batch: batch * ceil(oh / 2) * ceil(ow / 2), numbered
 * t = (n * tiles_y + ty) * tiles_x + tx. */
int64_t cnn_winograd_tiles(const cnn_conv_geom *g, int batch);

/* Floats of the transformed kernel U: 36 * c * filters. */
int64_t cnn_winograd_kernel_floats(const cnn_conv_geom *g, int filters);

/* U[p][ci][f] for the input channels [c0, c1) (callers may split them
 * between threads): G g Gᵀ of kernel[., ., ci, f]. */
void cnn_winograd_kernel(const cnn_conv_geom *g, int filters, const float *kernel, int c0,
                         int c1, float *u);

/* The largest block of tiles (a multiple of 12) whose scratch fits in
 * `floats`, at most the one sized for L2; 0 if not even 12 tiles fit. */
int64_t cnn_winograd_block_tiles(const cnn_conv_geom *g, int filters, int64_t floats);
/* Scratch floats for a block of `tiles` tiles (V and M). */
int64_t cnn_winograd_scratch_floats(const cnn_conv_geom *g, int filters, int64_t tiles);

/* The output pixels of tiles [t0, t1), t1 - t0 <= the block size the scratch
 * was sized for: y = conv(x, kernel) + bias (NULL: none), then the
 * activation, written to y (batch, oh, ow, filters) at their own places.
 * x: (batch, h, w, c); u from cnn_winograd_kernel. */
void cnn_winograd_forward(const cnn_conv_geom *g, int filters, const float *x, const float *u,
                          const float *bias, cnn_activation activation, int64_t t0, int64_t t1,
                          float *scratch, float *y);

/* Backward-weights over tiles [t0, t1) (one block, as for forward) and the
 * filters [f0, f1) (multiples of 16): du[p][ci][f] += the sum over those
 * tiles of V[p][t][ci] dM[p][t][f], V the input's transform and dM = A dY Aᵀ
 * of the tile's output gradient (dy: (batch, oh, ow, filters)). Each sum
 * runs over the tiles in order, onto du (36 c filters floats, as U). */
void cnn_winograd_weights(const cnn_conv_geom *g, int filters, const float *x, const float *dy,
                          int64_t t0, int64_t t1, int f0, int f1, float *scratch, float *du);
/* dkernel[ky][kx][ci][f] += (Gᵀ du G)[ky][kx] for the filters [f0, f1). */
void cnn_winograd_kernel_grad(const cnn_conv_geom *g, int filters, const float *du, int f0,
                              int f1, float *dkernel);

#endif
