#include "kernels/winograd.h"

#include <string.h>

#include "kernels/isa.h"

#ifdef CNN_ISA_X86
#include <immintrin.h>
#endif

/* The transforms are written out below rather than multiplied by their
 * matrices: a product with a 0 or a 1 in a matrix is still a rounding
 * step (and no compiler may drop x * 0.0f), and the matrices are sparse.
 * With the points 0, 1, -1, 2, -2 and infinity (scripts/winograd_matrices.py
 * solves for them and checks the identity):
 *
 *   Bᵀ = [ 4  0 -5  0  1  0 ]   G = [  1/4    0     0     0     0   ]   Aᵀ = [ 1 1  1 1  1 0 ]
 *        [ 0 -4 -4  1  1  0 ]       [ -1/6  -1/6  -1/6  -1/6  -1/6  ]        [ 0 1 -1 2 -2 1 ]
 *        [ 0  4 -4 -1  1  0 ]       [ -1/6   1/6  -1/6   1/6  -1/6  ]
 *        [ 0 -2 -1  2  1  0 ]       [  1/24  1/12  1/6   1/3   2/3  ]
 *        [ 0  2 -1 -2  1  0 ]       [  1/24 -1/12  1/6  -1/3   2/3  ]
 *        [ 0  4  0 -5  0  1 ]       [   0     0     0     0     1   ]
 *
 * for the correlation y[j] = sum_k g[k] d[j + k], j = 0, 1, that a
 * convolution layer computes. */

#define CNN_SIMD_W 16
typedef CNN_V vec;

#ifdef CNN_ISA_X86
#define WINO_TARGET __attribute__((target("avx512f")))
#else
#define WINO_TARGET
#endif
#define WINO_BODY static inline __attribute__((always_inline)) WINO_TARGET

/* Kernels with more transformed floats than this would stream them from
 * memory once per block (1 MiB: the L2 of the cores measured here). */
#define KERNEL_FLOATS_MAX (1 << 18)
/* A block's V and M within half of that L2, leaving room for U. */
#define BLOCK_FLOATS_L2 (1 << 17)
/* Register tiles of the per-point products are 6 or 12 tiles tall. */
#define TILE_ALIGN 12

WINO_BODY vec vset1(float s) { return (vec){s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}; }

WINO_BODY vec vload(const float *p) { return CNN_VLOAD(p); }

WINO_BODY vec vfma(vec a, vec b, vec c)
{
#ifdef CNN_ISA_X86
    return (vec)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#else
    return a * b + c;
#endif
}

static int64_t tiles_y(const cnn_conv_geom *g) { return ((int64_t)g->oh + 1) / 2; }
static int64_t tiles_x(const cnn_conv_geom *g) { return ((int64_t)g->ow + 1) / 2; }

/* Tile q as its sample and the output pixel at its top-left corner. */
typedef struct {
    int64_t n;
    int oy, ox;
} tile_corner;

static tile_corner tile_of(const cnn_conv_geom *g, int64_t q)
{
    const int64_t tx_n = tiles_x(g), ty_n = tiles_y(g);
    return (tile_corner){q / (ty_n * tx_n), 2 * (int)(q / tx_n % ty_n), 2 * (int)(q % tx_n)};
}

/* A block's tiles rounded up to whole register tiles. */
static int64_t padded_tiles(int64_t tiles)
{
    return (tiles + TILE_ALIGN - 1) / TILE_ALIGN * TILE_ALIGN;
}

bool cnn_winograd_fits(const cnn_conv_geom *g, int filters)
{
#ifdef CNN_ISA_X86
    return g->kh == 5 && g->kw == 5 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1
        && g->c % 16 == 0 && filters % 16 == 0 && g->oh > 0 && g->ow > 0
        && cnn_winograd_kernel_floats(g, filters) <= KERNEL_FLOATS_MAX
        && cnn_isa_supported(CNN_ISA_AVX512);
#else
    (void)g, (void)filters;
    return false; /* no fused multiply-add to make it pay: the direct paths run */
#endif
}

int64_t cnn_winograd_tiles(const cnn_conv_geom *g, int batch)
{
    return (int64_t)batch * tiles_y(g) * tiles_x(g);
}

int64_t cnn_winograd_kernel_floats(const cnn_conv_geom *g, int filters)
{
    return (int64_t)CNN_WINOGRAD_POINTS * g->c * filters;
}

int64_t cnn_winograd_scratch_floats(const cnn_conv_geom *g, int filters, int64_t tiles)
{
    return (int64_t)CNN_WINOGRAD_POINTS * padded_tiles(tiles) * (g->c + filters);
}

int64_t cnn_winograd_block_tiles(const cnn_conv_geom *g, int filters, int64_t floats)
{
    const int64_t per_tile = (int64_t)CNN_WINOGRAD_POINTS * (g->c + filters);
    int64_t cached = BLOCK_FLOATS_L2 / per_tile / TILE_ALIGN * TILE_ALIGN;
    int64_t fit = floats / per_tile / TILE_ALIGN * TILE_ALIGN;
    if (cached < TILE_ALIGN)
        cached = TILE_ALIGN;
    return fit < cached ? fit : cached;
}

/* ---- The three transforms, on 16 channels or filters at once ------------------
 * Their loops are unrolled (GCC unroll pragmas) so that the 6x6 patch stays
 * in registers: rolled, GCC kept it on the stack and the input and output
 * transforms took 1.0 and 0.8 ms of conv2's 6.1 at batch 64 (now 0.5 and
 * 0.5 of 5.2; bench_cnn profile infer tutorial 64 1 30). */

/* u = G g: a kernel column of 5 taps to 6 points. */
WINO_BODY void kernel_points(const vec g[5], vec u[6])
{
    const vec even = g[0] + g[2] + g[4], odd = g[1] + g[3];
    const vec even4 = g[0] + vset1(4.0f) * g[2] + vset1(16.0f) * g[4];
    const vec odd4 = vset1(2.0f) * g[1] + vset1(8.0f) * g[3];
    u[0] = g[0] * vset1(0.25f);
    u[1] = -(even + odd) / vset1(6.0f);
    u[2] = -(even - odd) / vset1(6.0f);
    u[3] = (even4 + odd4) / vset1(24.0f);
    u[4] = (even4 - odd4) / vset1(24.0f);
    u[5] = g[4];
}

/* v = Bᵀ d: 6 input values to 6 points. */
WINO_BODY void input_points(const vec d[6], vec v[6])
{
    const vec four = vset1(4.0f), five = vset1(5.0f), two = vset1(2.0f);
    const vec a = d[4] - four * d[2], b = d[3] - four * d[1];
    const vec c = d[4] - d[2], e = two * (d[3] - d[1]);
    v[0] = four * d[0] - five * d[2] + d[4];
    v[1] = a + b;
    v[2] = a - b;
    v[3] = c + e;
    v[4] = c - e;
    v[5] = four * d[1] - five * d[3] + d[5];
}

/* y = Aᵀ m: 6 points to 2 outputs. */
WINO_BODY void output_points(const vec m[6], vec y[2])
{
    y[0] = m[0] + (m[1] + m[2]) + (m[3] + m[4]);
    y[1] = (m[1] - m[2]) + vset1(2.0f) * (m[3] - m[4]) + m[5];
}

WINO_TARGET void cnn_winograd_kernel(const cnn_conv_geom *g, int filters, const float *kernel,
                                     int c0, int c1, float *u)
{
    const int C = g->c, F = filters;
    const int64_t point = (int64_t)C * F; /* from one point's U to the next */
    for (int ci = c0; ci < c1; ci++)
        for (int f = 0; f < F; f += 16) {
            /* rows first: p[i][kx] = (G g)[i][kx], then U = p Gᵀ */
            vec p[6][5];
#pragma GCC unroll 6
            for (int kx = 0; kx < 5; kx++) {
                vec col[5], out[6];
#pragma GCC unroll 6
                for (int ky = 0; ky < 5; ky++)
                    col[ky] = vload(kernel + ((int64_t)(ky * 5 + kx) * C + ci) * F + f);
                kernel_points(col, out);
#pragma GCC unroll 6
                for (int i = 0; i < 6; i++)
                    p[i][kx] = out[i];
            }
#pragma GCC unroll 6
            for (int i = 0; i < 6; i++) {
                vec out[6];
                kernel_points(p[i], out);
#pragma GCC unroll 6
                for (int j = 0; j < 6; j++)
                    CNN_VSTORE(u + (i * 6 + j) * point + (int64_t)ci * F + f, out[j]);
            }
        }
}

/* V[p][t][c] for the block's tiles (t from 0), and zero rows up to `padded`:
 * their products are computed and dropped, and stale scratch there could
 * hold NaNs or subnormals that slow the FMAs down. */
static WINO_TARGET void input_block(const cnn_conv_geom *g, const float *x, int64_t t0,
                                    int64_t tiles, int64_t padded, float *V)
{
    const int C = g->c;
    const int64_t point = padded * C;
    for (int64_t t = 0; t < tiles; t++) {
        const tile_corner tc = tile_of(g, t0 + t);
        const int y0 = tc.oy - g->pad_top, x0 = tc.ox - g->pad_left;
        const float *xn = x + tc.n * g->h * g->w * C;
        const bool inside = y0 >= 0 && y0 + 6 <= g->h && x0 >= 0 && x0 + 6 <= g->w;
        for (int cv = 0; cv < C; cv += 16) {
            vec rows[6][6];
#pragma GCC unroll 6
            for (int j = 0; j < 6; j++) {
                const int ix = x0 + j;
                vec d[6];
#pragma GCC unroll 6
                for (int i = 0; i < 6; i++) {
                    const int iy = y0 + i;
                    d[i] = inside || (iy >= 0 && iy < g->h && ix >= 0 && ix < g->w)
                             ? vload(xn + ((int64_t)iy * g->w + ix) * C + cv)
                             : vset1(0.0f);
                }
                vec v[6];
                input_points(d, v);
#pragma GCC unroll 6
                for (int i = 0; i < 6; i++)
                    rows[i][j] = v[i];
            }
#pragma GCC unroll 6
            for (int i = 0; i < 6; i++) {
                vec v[6];
                input_points(rows[i], v);
#pragma GCC unroll 6
                for (int j = 0; j < 6; j++)
                    CNN_VSTORE(V + (i * 6 + j) * point + t * C + cv, v[j]);
            }
        }
    }
    for (int p = 0; p < CNN_WINOGRAD_POINTS; p++)
        memset(V + p * point + tiles * C, 0, (size_t)((padded - tiles) * C) * sizeof(float));
}

/* m[R x 16 NV] = v[R x C] u[C x 16 NV]: R tiles by NV vectors of filters,
 * each sum over the channels in order from zero. */
WINO_BODY void product_tile(const int R, const int NV, int C, int F, const float *v,
                            const float *u, float *m)
{
    vec acc[12][4];
#pragma GCC unroll 12
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int k = 0; k < NV; k++)
            acc[r][k] = vset1(0.0f);
    for (int c = 0; c < C; c++) {
        vec w[4];
#pragma GCC unroll 4
        for (int k = 0; k < NV; k++)
            w[k] = vload(u + (int64_t)c * F + 16 * k);
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) {
            const vec a = vset1(v[(int64_t)r * C + c]);
#pragma GCC unroll 4
            for (int k = 0; k < NV; k++)
                acc[r][k] = vfma(a, w[k], acc[r][k]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int k = 0; k < NV; k++)
            CNN_VSTORE(m + (int64_t)r * F + 16 * k, acc[r][k]);
}

/* One point's product M = V U over the block's padded rows. */
static WINO_TARGET void point_product(int C, int F, int64_t padded, const float *v,
                                      const float *u, float *m)
{
    int f = 0;
    for (; f + 64 <= F; f += 64)
        for (int64_t r = 0; r < padded; r += 6)
            product_tile(6, 4, C, F, v + r * C, u + f, m + r * F + f);
    for (; f + 32 <= F; f += 32)
        for (int64_t r = 0; r < padded; r += 12)
            product_tile(12, 2, C, F, v + r * C, u + f, m + r * F + f);
    for (; f < F; f += 16)
        for (int64_t r = 0; r < padded; r += 12)
            product_tile(12, 1, C, F, v + r * C, u + f, m + r * F + f);
}

/* y's 2x2 pixels of each tile from M[p][t][f], bias added, then the
 * activation on each pixel while it is in cache. */
static WINO_TARGET void output_block(const cnn_conv_geom *g, int F, const float *bias,
                                     cnn_activation activation, int64_t t0, int64_t tiles,
                                     int64_t padded, const float *M, float *y)
{
    const int64_t point = padded * F;
    for (int64_t t = 0; t < tiles; t++) {
        const tile_corner tc = tile_of(g, t0 + t);
        const int rows = tc.oy + 1 < g->oh ? 2 : 1, cols = tc.ox + 1 < g->ow ? 2 : 1;
        float *yt = y + ((tc.n * g->oh + tc.oy) * g->ow + tc.ox) * F;
        for (int f = 0; f < F; f += 16) {
            vec half[2][6]; /* Aᵀ m down each column of points */
#pragma GCC unroll 6
            for (int j = 0; j < 6; j++) {
                vec m[6], out[2];
#pragma GCC unroll 6
                for (int i = 0; i < 6; i++)
                    m[i] = vload(M + (i * 6 + j) * point + t * F + f);
                output_points(m, out);
                half[0][j] = out[0];
                half[1][j] = out[1];
            }
            const vec b = bias ? vload(bias + f) : vset1(0.0f);
#pragma GCC unroll 2
            for (int a = 0; a < rows; a++) {
                vec out[2];
                output_points(half[a], out);
#pragma GCC unroll 2
                for (int c = 0; c < cols; c++)
                    CNN_VSTORE(yt + ((int64_t)a * g->ow + c) * F + f,
                               bias ? out[c] + b : out[c]);
            }
        }
#pragma GCC unroll 2
        for (int a = 0; a < rows; a++)
            cnn_activation_forward(activation, yt + (int64_t)a * g->ow * F, cols, F);
    }
}

void cnn_winograd_forward(const cnn_conv_geom *g, int filters, const float *x, const float *u,
                          const float *bias, cnn_activation activation, int64_t t0, int64_t t1,
                          float *scratch, float *y)
{
    const int C = g->c, F = filters;
    const int64_t tiles = t1 - t0;
    const int64_t padded = padded_tiles(tiles);
    float *V = scratch, *M = scratch + CNN_WINOGRAD_POINTS * padded * C;
    input_block(g, x, t0, tiles, padded, V);
    for (int p = 0; p < CNN_WINOGRAD_POINTS; p++)
        point_product(C, F, padded, V + p * padded * C, u + (int64_t)p * C * F,
                      M + p * padded * F);
    output_block(g, F, bias, activation, t0, tiles, padded, M, y);
}

/* ---- Backward-weights ------------------------------------------------------------
 * The gradient of Y = Aᵀ [U ⊙ V] A with U = G g Gᵀ, summed over the tiles:
 *
 *   dU[p] += V[p]ᵀ dM[p]  (c x filters, over the tiles),  dM = A dY Aᵀ
 *   dkernel += Gᵀ dU G
 *
 * V is the forward's input transform; dM spreads a tile's 2x2 dy over the 36
 * points (zeros past the output's last row or column). */

/* m = A d: 2 values of dy to 6 points (the adjoint of output_points). */
WINO_BODY void grad_points(const vec d[2], vec m[6])
{
    const vec two = vset1(2.0f);
    m[0] = d[0];
    m[1] = d[0] + d[1];
    m[2] = d[0] - d[1];
    m[3] = d[0] + two * d[1];
    m[4] = d[0] - two * d[1];
    m[5] = d[1];
}

/* g = Gᵀ u: 6 points to 5 taps (the adjoint of kernel_points). */
WINO_BODY void kernel_grad_points(const vec u[6], vec g[5])
{
    const vec s12 = u[1] + u[2], d12 = u[2] - u[1], s34 = u[3] + u[4], d34 = u[3] - u[4];
    const vec six = vset1(6.0f);
    g[0] = u[0] * vset1(0.25f) - s12 / six + s34 / vset1(24.0f);
    g[1] = d12 / six + d34 / vset1(12.0f);
    g[2] = (s34 - s12) / six;
    g[3] = d12 / six + d34 / vset1(3.0f);
    g[4] = vset1(2.0f) * s34 / vset1(3.0f) - s12 / six + u[5];
}

/* dM[p][t][f - f0] for the block's tiles and filters [f0, f1), zero rows up
 * to `padded` (as input_block's). */
static WINO_TARGET void grad_block(const cnn_conv_geom *g, int F, const float *dy, int64_t t0,
                                   int64_t tiles, int64_t padded, int f0, int f1, float *dM)
{
    const int Fs = f1 - f0;
    const int64_t point = padded * Fs;
    for (int64_t t = 0; t < tiles; t++) {
        const tile_corner tc = tile_of(g, t0 + t);
        const int rows = tc.oy + 1 < g->oh ? 2 : 1, cols = tc.ox + 1 < g->ow ? 2 : 1;
        const float *dt = dy + ((tc.n * g->oh + tc.oy) * g->ow + tc.ox) * F;
        for (int f = f0; f < f1; f += 16) {
            vec half[6][2]; /* A d down each column of the tile */
#pragma GCC unroll 2
            for (int b = 0; b < 2; b++) {
                vec d[2], m[6];
#pragma GCC unroll 2
                for (int a = 0; a < 2; a++)
                    d[a] = a < rows && b < cols ? vload(dt + ((int64_t)a * g->ow + b) * F + f)
                                                : vset1(0.0f);
                grad_points(d, m);
#pragma GCC unroll 6
                for (int i = 0; i < 6; i++)
                    half[i][b] = m[i];
            }
#pragma GCC unroll 6
            for (int i = 0; i < 6; i++) {
                vec m[6];
                grad_points(half[i], m);
#pragma GCC unroll 6
                for (int j = 0; j < 6; j++)
                    CNN_VSTORE(dM + (i * 6 + j) * point + t * Fs + (f - f0), m[j]);
            }
        }
    }
    for (int p = 0; p < CNN_WINOGRAD_POINTS; p++)
        memset(dM + p * point + tiles * Fs, 0, (size_t)((padded - tiles) * Fs) * sizeof(float));
}

/* du[R x 16 NV] += v[T x R]ᵀ m[T x 16 NV]: R channels by NV vectors of
 * filters, each sum over the block's tiles in order, onto du. */
WINO_BODY void weights_tile(const int R, const int NV, int64_t T, int C, int Fs, int F,
                            const float *v, const float *m, float *du)
{
    vec acc[16][2];
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int k = 0; k < NV; k++)
            acc[r][k] = vload(du + (int64_t)r * F + 16 * k);
    for (int64_t t = 0; t < T; t++) {
        vec w[2];
#pragma GCC unroll 2
        for (int k = 0; k < NV; k++)
            w[k] = vload(m + t * Fs + 16 * k);
#pragma GCC unroll 16
        for (int r = 0; r < R; r++) {
            const vec a = vset1(v[t * C + r]);
#pragma GCC unroll 2
            for (int k = 0; k < NV; k++)
                acc[r][k] = vfma(a, w[k], acc[r][k]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int k = 0; k < NV; k++)
            CNN_VSTORE(du + (int64_t)r * F + 16 * k, acc[r][k]);
}

WINO_TARGET void cnn_winograd_weights(const cnn_conv_geom *g, int filters, const float *x,
                                      const float *dy, int64_t t0, int64_t t1, int f0, int f1,
                                      float *scratch, float *du)
{
    const int C = g->c, F = filters, Fs = f1 - f0;
    const int64_t tiles = t1 - t0;
    const int64_t padded = padded_tiles(tiles);
    float *V = scratch, *dM = scratch + CNN_WINOGRAD_POINTS * padded * C;
    input_block(g, x, t0, tiles, padded, V);
    grad_block(g, F, dy, t0, tiles, padded, f0, f1, dM);
    for (int p = 0; p < CNN_WINOGRAD_POINTS; p++) {
        const float *vp = V + p * padded * C, *mp = dM + p * padded * Fs;
        float *up = du + (int64_t)p * C * F + f0;
        int f = 0;
        for (; f + 32 <= Fs; f += 32)
            for (int c = 0; c < C; c += 8)
                weights_tile(8, 2, padded, C, Fs, F, vp + c, mp + f, up + (int64_t)c * F + f);
        for (; f < Fs; f += 16)
            for (int c = 0; c < C; c += 16)
                weights_tile(16, 1, padded, C, Fs, F, vp + c, mp + f, up + (int64_t)c * F + f);
    }
}

WINO_TARGET void cnn_winograd_kernel_grad(const cnn_conv_geom *g, int filters, const float *du,
                                          int f0, int f1, float *dkernel)
{
    const int C = g->c, F = filters;
    const int64_t point = (int64_t)C * F;
    for (int ci = 0; ci < C; ci++)
        for (int f = f0; f < f1; f += 16) {
            /* columns of points first: q[ky][j] = (Gᵀ dU)[ky][j], then q G */
            vec q[5][6];
#pragma GCC unroll 6
            for (int j = 0; j < 6; j++) {
                vec u[6], out[5];
#pragma GCC unroll 6
                for (int i = 0; i < 6; i++)
                    u[i] = vload(du + (i * 6 + j) * point + (int64_t)ci * F + f);
                kernel_grad_points(u, out);
#pragma GCC unroll 5
                for (int ky = 0; ky < 5; ky++)
                    q[ky][j] = out[ky];
            }
#pragma GCC unroll 5
            for (int ky = 0; ky < 5; ky++) {
                vec out[5];
                kernel_grad_points(q[ky], out);
#pragma GCC unroll 5
                for (int kx = 0; kx < 5; kx++) {
                    float *dk = dkernel + ((int64_t)(ky * 5 + kx) * C + ci) * F + f;
                    CNN_VSTORE(dk, vload(dk) + out[kx]);
                }
            }
        }
}
