/* Conv2D: y = conv(x, kernel) + bias, kernel (kh, kw, in, filters).
 * Runs as GEMM on im2col tiles of at most TILE_FLOATS scratch floats, so
 * the scratch is bounded whatever the image size. */
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/activation.h"
#include "kernels/conv.h"
#include "kernels/conv_direct.h"
#include "kernels/winograd.h"
#include "layers/layer.h"

typedef struct {
    cnn_layer base;
    cnn_conv_geom geom;
} conv2d_layer;

/* Output rows per im2col tile: as many as fit in the model's workspace
 * limit (default 8 MiB: big enough for efficient GEMM tiles, small enough
 * that a 2000x2000 image never needs the whole im2col matrix). */
static int64_t tile_rows(const conv2d_layer *c, int batch, int64_t tile_floats)
{
    int64_t K = (int64_t)c->geom.kh * c->geom.kw * c->geom.c;
    int64_t M = (int64_t)batch * c->geom.oh * c->geom.ow;
    int64_t rows = tile_floats / K;
    if (rows < 1)
        rows = 1;
    return rows < M ? rows : M;
}

/* A 1x1, stride-1, unpadded convolution's columns are the input itself. */
static bool columns_are_input(const cnn_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pad_top == 0
        && g->pad_left == 0;
}

/* The mixed_bfloat16 policy's products on AVX512_BF16 (not the naive GEMM):
 * they take the fused and implicit paths as float32 does, through the
 * bfloat16 twins of its GEMM entry points. */
static bool bf16_fast(const cnn_layer_io *io)
{
    return io->bf16 && cnn_gemm_bf16_gather_supported(io->gemm);
}

static cnn_status conv2d_infer(cnn_layer *l, cnn_shape in)
{
    conv2d_layer *c = (conv2d_layer *)l;
    const cnn_conv2d_config *k = &l->spec.u.conv2d;
    if (in.rank != 3)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (Conv2D): expects input of rank 3 (rows, cols, channels), got rank %d"
                        " (add a channel axis with cnn_tensor_expand_dims for grayscale data,"
                        " or no Flatten/Dense before Conv2D)",
                        l->name, in.rank);
    cnn_conv_geom *g = &c->geom;
    g->h = in.dims[0];
    g->w = in.dims[1];
    g->c = in.dims[2];
    g->kh = k->kernel_size[0];
    g->kw = k->kernel_size[1];
    g->sh = k->strides[0];
    g->sw = k->strides[1];
    g->dh = k->dilation_rate[0];
    g->dw = k->dilation_rate[1];
    int same = k->padding == CNN_PADDING_SAME;
    g->oh = cnn_conv_out_size(g->h, g->kh, g->sh, g->dh, same, &g->pad_top);
    g->ow = cnn_conv_out_size(g->w, g->kw, g->sw, g->dw, same, &g->pad_left);
    if (g->oh < 1 || g->ow < 1)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (Conv2D): kernel %dx%d (dilation %dx%d) is larger than its input"
                        " %dx%d with padding 'valid'",
                        l->name, g->kh, g->kw, g->dh, g->dw, g->h, g->w);
    int64_t K = (int64_t)g->kh * g->kw * g->c;
    if (K > INT32_MAX / 4 || K * k->filters > ((int64_t)1 << 40)
        || (int64_t)g->oh * g->ow * k->filters > INT32_MAX)
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s (Conv2D): too large (kernel %lld x %d weights, output %d x %d x %d)",
                        l->name, (long long)K, k->filters, g->oh, g->ow, k->filters);
    l->out = cnn_shape_hwc(g->oh, g->ow, k->filters);
    cnn_layer_set_param(l, 0, "kernel", 4, (int64_t[]){g->kh, g->kw, g->c, k->filters}, true);
    if (!k->no_bias)
        cnn_layer_set_param(l, 1, "bias", 1, (int64_t[]){k->filters}, true);
    return CNN_OK;
}

static void conv2d_init(cnn_layer *l, cnn_rng *rng)
{
    conv2d_layer *c = (conv2d_layer *)l;
    int64_t field = (int64_t)c->geom.kh * c->geom.kw;
    cnn_glorot_uniform(l->params[0].value, l->params[0].count, field * c->geom.c,
                       field * l->spec.u.conv2d.filters, rng);
    if (l->n_params > 1)
        memset(l->params[1].value, 0, (size_t)l->params[1].count * sizeof(float));
}

/* ---- The direct path (kernels/conv_direct.h) ------------------------------
 * For few input channels the direct kernels replace im2col + GEMM in the
 * forward and backward-weights passes (backward-data stays on the GEMM).
 * Measured with bench_cnn's conv mode (AVX-512, 1 thread, batch 64, 5x5,
 * best of 3 interleaved runs): at 1 channel and 32 filters on 28x28
 * forward 2.7x and backward-weights 3.6x the GEMM path; on 14x14 with 16
 * filters, 3, 6 and 8 channels 1.6-2.8x forward and 1.8x or more
 * backward-weights; at 32 channels and 32 filters the GEMM wins (0.6-0.8x),
 * its K being long enough. 8 is the cut on the safe side. */
enum { DIRECT_MAX_CHANNELS = 8 };

/* Floats per sample of the direct path's scratch: the padded sample, then
 * (backward) that sample's kernel and bias gradients. */
static int64_t direct_sample_floats(const conv2d_layer *c)
{
    const cnn_conv_geom *g = &c->geom;
    return cnn_conv_direct_sample_floats(g)
         + ((int64_t)g->kh * g->kw * g->c + 1) * c->base.spec.u.conv2d.filters;
}

/* Samples per direct block within the workspace limit; 0 when the shape
 * does not suit the direct kernels. */
static int64_t direct_block(const conv2d_layer *c, int batch, int64_t tile_floats)
{
    if (c->geom.c > DIRECT_MAX_CHANNELS || columns_are_input(&c->geom))
        return 0;
    int64_t per = direct_sample_floats(c), nb = tile_floats / per;
    if (nb < 1)
        return 0;
    return nb < batch ? nb : batch;
}

/* The direct kernels' instruction set follows the GEMM's micro-kernel (so
 * cnn_gemm_ctx_force_kernel selects both); the reference GEMM keeps the
 * reference im2col path, whose sums the pinned tests record. */
static bool direct_isa(const cnn_layer_io *io, cnn_isa *isa)
{
    const char *k = cnn_gemm_ctx_kernel_name(io->gemm);
    if (strcmp(k, "naive") == 0)
        return false;
    *isa = strcmp(k, "avx512") == 0 ? CNN_ISA_AVX512
         : strcmp(k, "avx2") == 0   ? CNN_ISA_AVX2
                                    : CNN_ISA_GENERIC;
    return true;
}

static int64_t conv2d_flops(const cnn_layer *l)
{
    const conv2d_layer *c = (const conv2d_layer *)l;
    const cnn_conv_geom *g = &c->geom;
    return 2 * (int64_t)g->oh * g->ow * g->kh * g->kw * g->c * l->spec.u.conv2d.filters;
}

/* im2col of one tile, split across the pool by rows. */
typedef struct {
    const cnn_conv_geom *g;
    const float *x;
    int64_t m0, m1;
    float *col;
} im2col_job;

static void im2col_worker(void *p, int ith, int nth)
{
    im2col_job *j = p;
    long b, e;
    cnn_split_range((long)(j->m1 - j->m0), ith, nth, &b, &e);
    int64_t K = (int64_t)j->g->kh * j->g->kw * j->g->c;
    cnn_im2col_rows(j->g, j->x, j->m0 + b, j->m0 + e, j->col + b * K);
}

/* col2im of one tile across the pool. Output rows that are far enough
 * apart touch disjoint input rows, so the tile's output rows are cut into
 * chunks of `chunk` rows (chunk * stride >= kernel span): even chunks run in
 * parallel, then odd ones. Rows of different samples never collide. */
typedef struct {
    const cnn_conv_geom *g;
    const float *col;
    int64_t m0, m1;  /* pixel range of the tile */
    int64_t chunk;   /* output rows per chunk */
    int parity;
    float *dx;
} col2im_job;

static void col2im_worker(void *p, int ith, int nth)
{
    const col2im_job *j = p;
    const int64_t ow = j->g->ow, K = (int64_t)j->g->kh * j->g->kw * j->g->c;
    const int64_t first_row = j->m0 / ow, last_row = (j->m1 + ow - 1) / ow;
    int64_t chunks = (last_row - first_row + j->chunk - 1) / j->chunk;
    int k = 0;
    for (int64_t c = j->parity; c < chunks; c += 2, k++) {
        if (k % nth != ith)
            continue;
        int64_t a = (first_row + c * j->chunk) * ow, b = a + j->chunk * ow;
        a = a < j->m0 ? j->m0 : a;
        b = b > j->m1 ? j->m1 : b;
        cnn_col2im_rows_add(j->g, j->col + (a - j->m0) * K, a, b, j->dx);
    }
}

static void col2im(const cnn_conv_geom *g, const cnn_layer_io *io, int64_t m0, int64_t m1)
{
    int64_t span = (int64_t)(g->kh - 1) * g->dh + 1;
    col2im_job job = {g, io->workspace, m0, m1, (span + g->sh - 1) / g->sh, 0, io->dx};
    if (job.chunk < 1)
        job.chunk = 1;
    bool parallel = (m1 - m0) >= 4 * job.chunk * g->ow;
    for (job.parity = 0; job.parity < 2; job.parity++)
        cnn_pool_run(parallel ? io->pool : NULL, col2im_worker, &job);
}

static const float *columns(const conv2d_layer *c, const cnn_layer_io *io, int64_t m0, int64_t m1)
{
    const cnn_conv_geom *g = &c->geom;
    if (columns_are_input(g))
        return io->x + m0 * g->c;
    im2col_job job = {g, io->x, m0, m1, io->workspace};
    cnn_pool_run((m1 - m0) > 64 ? io->pool : NULL, im2col_worker, &job);
    return io->workspace;
}

/* ---- The fused path --------------------------------------------------------
 * im2col and GEMM per worker and per block of rows small enough to stay in
 * L2: each worker takes its own rows of the tile, writes their columns
 * FUSED_BLOCK_FLOATS at a time into its part of the tile's workspace and
 * multiplies them there (cnn_gemm_serial) while they are still in its
 * cache, then adds the bias and applies the activation to the rows it just
 * wrote. One tile-sized im2col followed by one GEMM made every column
 * travel to memory and back (the tile is megabytes): conv2 forward went
 * from 89% to ~93% of the FMA peak (see docs/ARCHITECTURE.md). Every output
 * element is the same micro-kernel sum over the same K blocks as with the
 * unfused path, so the results are bit-identical to it for any thread
 * count. */
enum { FUSED_BLOCK_FLOATS = 48 * 1024 };

static int64_t fused_block_rows(int64_t K)
{
    int64_t r = FUSED_BLOCK_FLOATS / K / 12 * 12;
    return r < 12 ? 12 : r;
}

/* The kernel (K x F) is packed once per pass for all the blocks
 * (cnn_gemm_pack_b) at the start of the workspace, unless it would take
 * more than half of the workspace limit. Returns its floats, 0 for none. */
static int64_t fused_packed_floats(int64_t K, int F, int64_t tile_floats)
{
    /* + 16: the workspace need not be 64-byte aligned, the packed panels must */
    int64_t n = ((int64_t)cnn_gemm_packed_b_floats((int)K, F) + 15) / 16 * 16 + 16;
    return n <= tile_floats / 2 ? n : 0;
}

/* Output rows per tile of the fused path: the columns of a tile share the
 * workspace limit with the packed kernel. */
static int64_t fused_tile_rows(int64_t M, int64_t K, int F, int64_t tile_floats)
{
    int64_t rows = (tile_floats - fused_packed_floats(K, F, tile_floats)) / K;
    if (rows < 1)
        rows = 1;
    return rows < M ? rows : M;
}

typedef struct {
    const cnn_conv_geom *g; /* the product's geometry (backward-data: the transposed one) */
    const float *x;         /* its input */
    const float *w;         /* K x F */
    const float *wpacked;   /* w packed by cnn_gemm_pack_b (bf16: cnn_gemm_bf16_pack_b) or NULL */
    bool implicit;          /* cnn_gemm_gather can run (and wpacked is set) */
    bool bf16;              /* the products in bfloat16 (cnn_gemm_bf16_*) */
    const float *bias;      /* F, or NULL */
    int F;
    bool activate;
    cnn_activation activation;
    int64_t m0, m1;         /* the tile's output rows */
    float *y;               /* output row m at y + m * F */
    float *scratch;         /* the tile's columns, row m at scratch + (m - m0) * K */
    cnn_gemm_ctx *gemm;
} fused_job;

/* ---- Implicit GEMM: no columns at all ----
 * With the AVX-512 micro-kernel the fused path skips im2col: the GEMM
 * gathers each row of A straight from the input (cnn_gemm_gather: row i of
 * a 12-row tile at its pixel's receptive-field corner, column k at a fixed
 * offset koff[k] from there). Padding needs zeros at those offsets, so a
 * worker first copies the rows it reads into a zero-bordered band (below;
 * unless the layer has no padding); the copy reads each input float about
 * once where im2col wrote kh * kw of them. Same sums, same bits. */

/* The padded sample: pitch floats a row. */
typedef struct {
    int64_t hp, wp;
    bool copy; /* false: the input itself serves (no padding) */
} implicit_layout;

static implicit_layout implicit_layout_of(const cnn_conv_geom *g);

/* The padded layout, copied even without padding (the bfloat16
 * backward-weights reads a converted copy). */
static implicit_layout implicit_layout_copied(const cnn_conv_geom *g)
{
    implicit_layout L = implicit_layout_of(g);
    if (!L.copy) {
        L.wp = (int64_t)(g->ow - 1) * g->sw + (int64_t)(g->kw - 1) * g->dw + 1;
        L.copy = true;
    }
    return L;
}

static implicit_layout implicit_layout_of(const cnn_conv_geom *g)
{
    implicit_layout L;
    L.hp = (int64_t)(g->oh - 1) * g->sh + (int64_t)(g->kh - 1) * g->dh + 1;
    L.wp = (int64_t)(g->ow - 1) * g->sw + (int64_t)(g->kw - 1) * g->dw + 1;
    L.copy = !(g->pad_top == 0 && g->pad_left == 0 && L.hp <= g->h && L.wp <= g->w);
    if (!L.copy)
        L.wp = g->w;
    return L;
}

/* ---- Bands of padded rows ----
 * A worker does not copy its whole sample with its padding but a band of
 * padded rows, at least those one block of `block` output pixels reads and
 * up to PAD_BAND_FLOATS: the large layer's padded 56x56x64 sample is 860 KB,
 * and two of them held overflowed Zen 4's 1 MiB L2 next to the packed
 * kernel (forward ~88%, backward-data ~90% of the FMA peak). Small samples
 * (conv2's 18x18x32, 41 KB) still fit whole in one band, copied once. The
 * band slides down the sample as the blocks do: when a block needs rows
 * past its end it is copied again from the block's first row. The values
 * gathered are the same as from a whole copy: same sums, same bits. */
enum { PAD_BAND_FLOATS = 64 * 1024 };

/* Padded rows in a band: all the sample's, or as many as fit
 * PAD_BAND_FLOATS but never fewer than one block of `block` output pixels
 * needs. */
static int64_t band_rows(const cnn_conv_geom *g, const implicit_layout *L, int64_t block)
{
    int64_t out_rows = (block + g->ow - 2) / g->ow + 1; /* a block touches at most */
    if (out_rows > g->oh)
        out_rows = g->oh;
    int64_t need = (out_rows - 1) * g->sh + (int64_t)(g->kh - 1) * g->dh + 1;
    int64_t rows = PAD_BAND_FLOATS / (L->wp * g->c);
    rows = rows > need ? rows : need;
    return rows < L->hp ? rows : L->hp;
}

/* Floats of one band slot, 64-byte aligned. */
static int64_t band_floats(const cnn_conv_geom *g, const implicit_layout *L, int64_t block)
{
    return (band_rows(g, L, block) * L->wp * g->c + 15) / 16 * 16;
}

/* Padded rows [p0, p1) of sample xn into dst: floats, or with bf16
 * bfloat16 bits (cnn_bf16_convert; a zero is all zero bits either way). */
static void implicit_pad(const cnn_conv_geom *g, const implicit_layout *L, const float *xn,
                         int64_t p0, int64_t p1, void *dst, bool bf16)
{
    const int64_t C = g->c, row = L->wp * C;
    const size_t size = bf16 ? sizeof(uint16_t) : sizeof(float);
    char *d = dst;
    for (int64_t py = p0; py < p1; py++, d += row * size) {
        int64_t iy = py - g->pad_top;
        if (iy < 0 || iy >= g->h) {
            memset(d, 0, (size_t)row * size);
            continue;
        }
        int64_t x0 = g->pad_left, x1 = g->pad_left + g->w; /* padded columns holding x */
        if (x1 > L->wp)
            x1 = L->wp;
        memset(d, 0, (size_t)(x0 * C) * size);
        if (bf16)
            cnn_bf16_convert(xn + iy * g->w * C, (uint16_t *)d + x0 * C, (long)((x1 - x0) * C));
        else
            memcpy((float *)d + x0 * C, xn + iy * g->w * C, (size_t)((x1 - x0) * C) * size);
        memset(d + x1 * C * size, 0, (size_t)((L->wp - x1) * C) * size);
    }
}

/* What a band slot holds: padded rows [r0, r1) of sample `sample`. */
typedef struct {
    int64_t sample, r0, r1;
} band_held;

/* Makes the slot hold sample s's padded rows [p0, p1), copying from p0
 * on when it does not yet; returns the padded row at the slot's start. */
static int64_t band_hold(const cnn_conv_geom *g, const implicit_layout *L, int64_t rows,
                         const float *x, int64_t s, int64_t p0, int64_t p1, void *slot,
                         bool bf16, band_held *h)
{
    if (h->sample == s && h->r0 <= p0 && p1 <= h->r1)
        return h->r0;
    int64_t r1 = p0 + rows < L->hp ? p0 + rows : L->hp;
    implicit_pad(g, L, x + s * (int64_t)g->h * g->w * g->c, p0, r1, slot, bf16);
    h->sample = s, h->r0 = p0, h->r1 = r1;
    return p0;
}

/* The padded rows the output pixels [m0, m1) of sample s read. */
static void band_need(const cnn_conv_geom *g, int64_t s, int64_t m0, int64_t m1, int64_t *p0,
                      int64_t *p1)
{
    const int64_t plane = (int64_t)g->oh * g->ow;
    int64_t first = m0 > s * plane ? m0 : s * plane;
    int64_t last = (m1 < (s + 1) * plane ? m1 : (s + 1) * plane) - 1;
    *p0 = (first - s * plane) / g->ow * g->sh;
    *p1 = (last - s * plane) / g->ow * g->sh + (int64_t)(g->kh - 1) * g->dh + 1;
}

/* ---- Taps on the padding ----
 * A tap that falls on the zero padding for every pixel of a panel adds
 * only zero products: cnn_gemm_gather_spans skips it (conv2's 5x5 'same'
 * taps over 14x14: 16% of them are on the padding). */

/* The taps [*lo, *hi) of a kernel axis (k taps, dilation d) that read
 * inside the input (n wide) for output position o (stride s, padding pad
 * before); *lo >= *hi when none does. */
static void taps_inside(int64_t o, int s, int pad, int d, int n, int k, int *lo, int *hi)
{
    *lo = k, *hi = 0;
    for (int t = 0; t < k; t++) {
        int64_t i = o * s - pad + (int64_t)t * d;
        if (i >= 0 && i < n) {
            *lo = t < *lo ? t : *lo;
            *hi = t + 1;
        }
    }
}

/* The taps of an output pixel that read inside the input: ky in [y0, y1),
 * kx in [x0, x1) (empty when y0 >= y1 or x0 >= x1). */
typedef struct {
    int y0, y1, x0, x1;
} tap_box;

/* The K spans (im2col column order: ky, kx, channel) of the taps in box,
 * into spans (at most kh pairs); returns how many. */
static int box_spans(const cnn_conv_geom *g, tap_box t, int *spans)
{
    if (t.y0 >= t.y1 || t.x0 >= t.x1)
        return 0;
    const int row = g->kw * g->c;
    if (t.x0 == 0 && t.x1 == g->kw) {
        spans[0] = t.y0 * row, spans[1] = t.y1 * row;
        return 1;
    }
    for (int ky = t.y0; ky < t.y1; ky++) {
        spans[2 * (ky - t.y0)] = ky * row + t.x0 * g->c;
        spans[2 * (ky - t.y0) + 1] = ky * row + t.x1 * g->c;
    }
    return t.y1 - t.y0;
}

/* The K spans that some output pixel of [m0, m1) reads inside the input
 * (the hull of their taps), into spans (at most kh pairs); returns how
 * many. */
static int pixel_spans(const cnn_conv_geom *g, int64_t m0, int64_t m1, int *spans)
{
    const int64_t plane = (int64_t)g->oh * g->ow;
    tap_box hull = {g->kh, 0, g->kw, 0};
    for (int64_t m = m0; m < m1; m++) {
        tap_box t;
        taps_inside(m % plane / g->ow, g->sh, g->pad_top, g->dh, g->h, g->kh, &t.y0, &t.y1);
        taps_inside(m % plane % g->ow, g->sw, g->pad_left, g->dw, g->w, g->kw, &t.x0, &t.x1);
        if (t.y0 >= t.y1 || t.x0 >= t.x1)
            continue;
        hull.y0 = t.y0 < hull.y0 ? t.y0 : hull.y0, hull.y1 = t.y1 > hull.y1 ? t.y1 : hull.y1;
        hull.x0 = t.x0 < hull.x0 ? t.x0 : hull.x0, hull.x1 = t.x1 > hull.x1 ? t.x1 : hull.x1;
    }
    return box_spans(g, hull, spans);
}

/* ---- The implicit GEMM in panels of pixels that read the same taps ----
 * A 12-pixel panel of consecutive pixels straddles the image's edge
 * columns, so the hull of its taps is nearly all of them (5% of conv2's
 * products skipped of the 16% on the padding). Here each block of up to
 * GRID_ROWS output rows of one sample is cut where the taps change: in the
 * rows that read every kernel row, the columns that read every kernel
 * column go in row panels (m <= 12, one span: all of K) and each edge
 * column in column panels down the rows (C's rows ow * F apart, the taps
 * of that column only); the other rows (the image's top and bottom) in row
 * panels with the hull of their taps. Without padding the columns the
 * rows are one run of consecutive pixels, as before. Every product skipped
 * is an exact zero, so each output element has cnn_gemm's bits whatever
 * the panels (and the thread count). conv2 (14x14, 5x5 'same'): 15% of the
 * products skipped. The forward's only implicit path, float32 and bfloat16
 * (and the transposed backward-data's): where a worker's share of the
 * scratch is too small for it (grid_plan_fit), im2col blocks. */
enum { GRID_ROWS = 12, GRID_MIN_PANEL = 4 };

/* The grid's blocks: as many output rows (up to GRID_ROWS) as the band
 * holds within PAD_BAND_FLOATS, at least one. */
static int64_t grid_rows(const cnn_conv_geom *g, const implicit_layout *L)
{
    int64_t fit = PAD_BAND_FLOATS / (L->wp * g->c), r = GRID_ROWS < g->oh ? GRID_ROWS : g->oh;
    while (r > 1 && r * g->sh + (int64_t)(g->kh - 1) * g->dh + 1 > fit)
        r--;
    return r;
}

/* Whether the grid reads bfloat16 pairs in place from a converted band
 * (cnn_gemm_bf16_gather_pairs_spans): a tap's channels must pair up. */
static bool grid_pairs(const fused_job *j) { return j->bf16 && j->g->c % 2 == 0; }

/* Whether the grid's ints hold: K and the spans, koff up to the last tap
 * in the widest layout it may read (grid_plan_fit), C's row stride down a
 * column panel (ow * F). */
static bool grid_ints_fit(const cnn_conv_geom *g, int F)
{
    const int64_t wp_of = implicit_layout_of(g).wp, wp_copied = implicit_layout_copied(g).wp;
    const int64_t pitch = (wp_of > wp_copied ? wp_of : wp_copied) * g->c;
    const int64_t last = (int64_t)(g->kh - 1) * g->dh * pitch + (int64_t)(g->kw - 1) * g->dw * g->c
                       + g->c;
    return (int64_t)g->kh * g->kw * g->c < INT32_MAX && last < INT32_MAX
        && (int64_t)g->ow * F < INT32_MAX;
}

/* How a worker runs the grid in its share of the scratch (koff, the
 * spans, one band slot): the usual plan (grid_pairs' layout, grid_rows
 * blocks, band_rows bands) where it fits; in a smaller share a band of
 * the rows the share holds, with blocks of as many output rows as such a
 * band serves, at least one (a band of the kernel's span); where not even
 * that fits the pairs' converted band, the float32 layout, which needs no
 * band at all without padding. So it runs wherever the share holds koff,
 * the spans and (with padding) the span's rows: the old implicit_rows
 * needed more (two bands of two or more output rows' reach, row
 * pointers). Bands and blocks only change which rows are copied when and
 * where the panels are cut: same bits. */
typedef struct {
    bool pairs;         /* bfloat16 pairs from a converted band (grid_pairs) */
    implicit_layout L;  /* the band's layout (L.copy false: the input itself) */
    int64_t R;          /* output rows a block */
    int64_t band;       /* padded rows a band slot holds (L.copy) */
} grid_plan;

/* Floats of the scratch for plan p: koff and the spans (+ 16: the slot is
 * 64-byte aligned), the band slot of floats or of bfloat16 (+ 16: so is
 * the scratch). */
static int64_t grid_plan_floats(const cnn_conv_geom *g, const grid_plan *p)
{
    const int64_t K = (int64_t)g->kh * g->kw * g->c;
    int64_t n = (K + 15) / 16 * 16 + 2 * (int64_t)g->kh + 16;
    if (p->L.copy) {
        int64_t elems = p->band * p->L.wp * g->c;
        n += ((p->pairs ? (elems + 1) / 2 : elems) + 15) / 16 * 16;
    }
    return n + 16;
}

/* The plan for a share of `share` floats; false: none fits (im2col). */
static bool grid_plan_fit(const fused_job *j, int64_t share, grid_plan *p)
{
    const cnn_conv_geom *g = j->g;
    const int64_t span = (int64_t)(g->kh - 1) * g->dh + 1; /* padded rows an output row reads */
    for (int paired = grid_pairs(j); paired >= 0; paired--) {
        p->pairs = paired;
        p->L = paired ? implicit_layout_copied(g) : implicit_layout_of(g);
        p->R = grid_rows(g, &p->L);
        p->band = p->L.copy ? band_rows(g, &p->L, p->R * g->ow) : 0;
        if (grid_plan_floats(g, p) <= share)
            return true;
        if (!p->L.copy)
            continue;
        grid_plan bare = *p;
        bare.L.copy = false;
        /* the slot's floats a multiple of 16 within what the share leaves */
        int64_t room = (share - grid_plan_floats(g, &bare)) / 16 * 16;
        int64_t rows = room > 0 ? room * (paired ? 2 : 1) / (p->L.wp * g->c) : 0;
        if (rows < span)
            continue;
        p->band = rows < p->band ? rows : p->band;
        /* R rows of blocks read (R - 1) * sh + span padded rows (band_need) */
        int64_t R = (p->band - span) / g->sh + 1;
        p->R = R < p->R ? R : p->R;
        return true;
    }
    return false;
}

typedef struct {
    const fused_job *j;
    int ith, K;
    const int *koff;
    int *spans;
    bool pairs;           /* bfloat16 pairs from src16 (grid_pairs) */
    const float *src;     /* the sample's padded row `top` */
    const uint16_t *src16;
    int64_t top, pitch; /* the padded row at src, floats a padded row */
    int64_t sample;     /* the sample's first pixel */
} grid_ctx;

/* n pixels from pixel p, stride apart (1: along a row; ow: down a
 * column), all reading (at most) the taps of `spans`, in near-equal
 * panels of at most CNN_GEMM_GATHER_ROWS. */
static void grid_run(const grid_ctx *c, int64_t p, int64_t n, int64_t stride, int ns)
{
    const cnn_conv_geom *g = c->j->g;
    const int F = c->j->F;
    const float *rows[CNN_GEMM_GATHER_ROWS];
    const uint16_t *rows16[CNN_GEMM_GATHER_ROWS];
    int64_t pieces = (n + CNN_GEMM_GATHER_ROWS - 1) / CNN_GEMM_GATHER_ROWS;
    for (int64_t i = 0; i < pieces; i++) {
        int64_t m = n / pieces + (i < n % pieces);
        for (int64_t r = 0; r < m; r++) {
            int64_t q = p + r * stride - c->sample, oy = q / g->ow, ox = q % g->ow;
            int64_t at = (oy * g->sh - c->top) * c->pitch + ox * g->sw * g->c;
            if (c->pairs)
                rows16[r] = c->src16 + at;
            else
                rows[r] = c->src + at;
        }
        if (c->pairs)
            cnn_gemm_bf16_gather_pairs_spans(c->j->gemm, (int)m, F, c->K, rows16, c->koff,
                                             c->spans, ns, c->j->wpacked, 0.0f, c->j->y + p * F,
                                             (int)(stride * F));
        else if (c->j->bf16)
            cnn_gemm_bf16_gather_spans(c->j->gemm, c->ith, (int)m, F, c->K, rows, c->koff,
                                       c->spans, ns, c->j->wpacked, 0.0f, c->j->y + p * F,
                                       (int)(stride * F));
        else
            cnn_gemm_gather_spans(c->j->gemm, c->ith, (int)m, F, c->K, rows, c->koff, c->spans,
                                  ns, c->j->wpacked, 0.0f, c->j->y + p * F, (int)(stride * F));
        p += m * stride;
    }
}

static void implicit_grid(const fused_job *j, const grid_plan *plan, int ith, int64_t r0,
                          int64_t r1, float *scratch)
{
    const cnn_conv_geom *g = j->g;
    const int64_t K = (int64_t)g->kh * g->kw * g->c, C = g->c, plane = (int64_t)g->oh * g->ow;
    const bool pairs = plan->pairs;
    const implicit_layout L = plan->L;
    const int64_t pitch = L.wp * C, R = plan->R;
    float *base = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    int *koff = (int *)base;
    int *spans = koff + (K + 15) / 16 * 16;
    float *slot = (float *)(((uintptr_t)(spans + 2 * g->kh) + 63) & ~(uintptr_t)63);
    for (int ky = 0, k = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++)
            for (int ci = 0; ci < C; ci++, k++)
                koff[k] = (int)((int64_t)ky * g->dh * pitch + (int64_t)kx * g->dw * C + ci);
    /* the columns [xi0, xi1) read every kernel column */
    int64_t xi0 = g->ow, xi1 = 0;
    for (int64_t ox = 0; ox < g->ow; ox++) {
        int lo, hi;
        taps_inside(ox, g->sw, g->pad_left, g->dw, g->w, g->kw, &lo, &hi);
        if (lo == 0 && hi == g->kw)
            xi0 = ox < xi0 ? ox : xi0, xi1 = ox + 1;
    }
    /* the rows that read every kernel row */
    int64_t rows_full = 0;
    for (int64_t oy = 0; oy < g->oh; oy++) {
        int lo, hi;
        taps_inside(oy, g->sh, g->pad_top, g->dh, g->h, g->kh, &lo, &hi);
        rows_full += lo == 0 && hi == g->kh;
    }
    /* some columns miss kernel columns; the edge ones go in column panels
     * unless the panels would be too short to pay (a 3x3 image) */
    const bool hpad = xi0 > 0 || xi1 < g->ow;
    const bool columns = hpad && xi1 - xi0 >= GRID_MIN_PANEL && rows_full >= GRID_MIN_PANEL;
    const int64_t band = plan->band;
    band_held held = {-1, 0, 0};
    grid_ctx c = {.j = j, .ith = ith, .K = (int)K, .koff = koff, .spans = spans, .pitch = pitch,
                  .pairs = pairs, .src16 = (const uint16_t *)slot};
    for (int64_t a = r0; a < r1;) {
        const int64_t s = a / plane, y0 = a % plane / g->ow;
        const int64_t y1 = y0 + R < g->oh ? y0 + R : g->oh;
        const int64_t e = s * plane + y1 * g->ow < r1 ? s * plane + y1 * g->ow : r1;
        c.sample = s * plane;
        c.src = j->x + s * (int64_t)g->h * g->w * C, c.top = 0;
        if (L.copy) {
            int64_t p0, p1;
            band_need(g, s, a, e, &p0, &p1);
            c.top = band_hold(g, &L, band, j->x, s, p0, p1, slot, pairs, &held);
            c.src = slot;
        }
        /* rows: a run of consecutive pixels while the spans stay the same */
        int64_t run = a, run_ns = -1;
        for (int64_t oy = y0; oy < y1; oy++) {
            int64_t xa = s * plane + oy * g->ow, xb = xa + g->ow;
            xa = xa > a ? xa : a, xb = xb < e ? xb : e;
            int lo, hi;
            taps_inside(oy, g->sh, g->pad_top, g->dh, g->h, g->kh, &lo, &hi);
            const bool full = lo == 0 && hi == g->kh && xi0 < xi1;
            if (full && !hpad) { /* every pixel of the row reads all of K */
                if (run_ns != 1) {
                    if (run_ns >= 0)
                        grid_run(&c, run, xa - run, 1, (int)run_ns);
                    run = xa, run_ns = 1;
                    spans[0] = 0, spans[1] = (int)K;
                }
                continue;
            }
            if (run_ns >= 0)
                grid_run(&c, run, xa - run, 1, (int)run_ns);
            run_ns = -1;
            if (full && columns) { /* the interior columns here, the edge ones below */
                int64_t p = xa - (s * plane + oy * g->ow) > xi0 ? xa : s * plane + oy * g->ow + xi0;
                int64_t q = s * plane + oy * g->ow + xi1 < xb ? s * plane + oy * g->ow + xi1 : xb;
                spans[0] = 0, spans[1] = (int)K;
                if (p < q)
                    grid_run(&c, p, q - p, 1, 1);
                continue;
            }
            /* the top and bottom rows (or all, without column panels):
             * near-equal panels, each with the hull of its taps */
            int64_t pieces = (xb - xa + CNN_GEMM_GATHER_ROWS - 1) / CNN_GEMM_GATHER_ROWS;
            for (int64_t i = 0, p = xa; i < pieces; i++) {
                int64_t q = p + (xb - xa) / pieces + (i < (xb - xa) % pieces);
                grid_run(&c, p, q - p, 1, pixel_spans(g, p, q, spans));
                p = q;
            }
        }
        if (run_ns >= 0)
            grid_run(&c, run, e - run, 1, (int)run_ns);
        /* the edge columns, down the rows that read every kernel row */
        for (int64_t ox = 0; columns && ox < g->ow; ox++) {
            if (ox == xi0)
                ox = xi1;
            if (ox >= g->ow)
                break;
            tap_box box = {0, g->kh, 0, 0};
            taps_inside(ox, g->sw, g->pad_left, g->dw, g->w, g->kw, &box.x0, &box.x1);
            int ns = box_spans(g, box, spans);
            int64_t first = -1;
            for (int64_t oy = y0; oy <= y1; oy++) {
                int lo = 0, hi = 0;
                int64_t p = s * plane + oy * g->ow + ox;
                if (oy < y1)
                    taps_inside(oy, g->sh, g->pad_top, g->dh, g->h, g->kh, &lo, &hi);
                bool in = oy < y1 && lo == 0 && hi == g->kh && p >= a && p < e;
                if (in && first < 0)
                    first = p;
                if (!in && first >= 0) {
                    grid_run(&c, first, (p - first) / g->ow, g->ow, ns);
                    first = -1;
                }
            }
        }
        float *y = j->y + a * j->F;
        if (j->bias)
            cnn_add_bias_rows(y, j->bias, e - a, j->F);
        if (j->activate)
            cnn_activation_forward(j->activation, y, e - a, j->F);
        a = e;
    }
}

static void fused_worker(void *p, int ith, int nth)
{
    const fused_job *j = p;
    const int64_t K = (int64_t)j->g->kh * j->g->kw * j->g->c, R = fused_block_rows(K);
    long b, e;
    cnn_split_range((long)(j->m1 - j->m0), ith, nth, &b, &e);
    float *col = j->scratch + b * K;
    if (b >= e)
        return;
    grid_plan plan;
    if (j->implicit && grid_plan_fit(j, (e - b) * K, &plan)) {
        implicit_grid(j, &plan, ith, j->m0 + b, j->m0 + e, col);
        return;
    }
    for (int64_t r0 = j->m0 + b; r0 < j->m0 + e; r0 += R) {
        int64_t r1 = r0 + R < j->m0 + e ? r0 + R : j->m0 + e;
        float *y = j->y + r0 * j->F;
        cnn_im2col_rows(j->g, j->x, r0, r1, col);
        /* y[rows x F] = col[rows x K] * w[K x F] */
        if (j->bf16)
            cnn_gemm_bf16_serial_packed_b(j->gemm, ith, (int)(r1 - r0), j->F, (int)K, col,
                                          (int)K, j->wpacked, 0.0f, y, j->F);
        else
            cnn_gemm_serial_packed_b(j->gemm, ith, false, false, (int)(r1 - r0), j->F, (int)K,
                                     1.0f, col, (int)K, j->w, j->F, j->wpacked, 0.0f, y, j->F);
        if (j->bias)
            cnn_add_bias_rows(y, j->bias, r1 - r0, j->F);
        if (j->activate)
            cnn_activation_forward(j->activation, y, r1 - r0, j->F);
    }
}

/* y = conv(x, w) (+ bias, activation) over the geometry g, M output rows,
 * in tiles of `tile` rows whose columns fit the workspace. */
static void fused_run(fused_job *job, const cnn_layer_io *io, int64_t M, float *ws,
                      int64_t ws_floats)
{
    const int64_t K = (int64_t)job->g->kh * job->g->kw * job->g->c;
    const int64_t packed = fused_packed_floats(K, job->F, ws_floats);
    const int64_t tile = fused_tile_rows(M, K, job->F, ws_floats);
    job->scratch = ws + packed;
    job->wpacked = NULL;
    job->bf16 = bf16_fast(io);
    if (packed) {
        /* (the bfloat16 panels take half the floats of the float32 ones) */
        float *at = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
        if (job->bf16)
            cnn_gemm_bf16_pack_b(io->gemm, job->F, (int)K, job->w, job->F, at);
        else
            cnn_gemm_pack_b(io->gemm, false, job->F, (int)K, job->w, job->F, at);
        job->wpacked = at;
    }
    job->implicit = job->wpacked && (job->bf16 || cnn_gemm_gather_supported(io->gemm))
                 && grid_ints_fit(job->g, job->F);
    for (int64_t m0 = 0; m0 < M; m0 += tile) {
        job->m0 = m0;
        job->m1 = m0 + tile < M ? m0 + tile : M;
        bool parallel = (double)(job->m1 - m0) * K * job->F >= 1048576.0;
        cnn_pool_run(parallel ? io->pool : NULL, fused_worker, job);
    }
}

/* The fused path serves every float32 product that needs columns, and the
 * bfloat16 ones where AVX512_BF16 runs them (cnn_gemm_bf16_gather; the
 * kernel must then be packed once, within half the workspace); otherwise
 * bfloat16 keeps cnn_gemm_bf16 on whole tiles (its float32 fallback, or
 * the reference under the naive GEMM). */
static bool fused_ok(const cnn_conv_geom *g, int F, const cnn_layer_io *io, int64_t ws_floats)
{
    if (columns_are_input(g))
        return false;
    if (!io->bf16)
        return true;
    return bf16_fast(io)
        && fused_packed_floats((int64_t)g->kh * g->kw * g->c, F, ws_floats) > 0;
}

/* ---- Backward-data as a convolution -----------------------------------------
 * For stride 1, dx is the convolution of dy with the kernel turned by 180
 * degrees and its in/out channels swapped, over dy padded by span - 1 -
 * pad: dx[iy, ix, c] = sum over (ky', kx', f) of dy[iy - pad' + ky' dh,
 * ix - pad' + kx' dw, f] * rot[ky', kx', f, c]. It runs on the fused path
 * (a GEMM of N = channels, K = kh kw filters) and writes dx once, where
 * the GEMM + col2im path wrote a column tile to memory, read it back and
 * scattered it into dx with adds. Each dx element is then one dot
 * product in (ky', kx', f) order instead of kh kw partial dot products
 * added in tap order: not the same bits as the col2im path, but the same
 * sum (tests compare both with the reference within the usual tolerance).
 * Few channels (the direct path's layers) keep col2im: an N of 1 or 3
 * would waste the micro-kernel's 32 columns. */
enum { TRANSPOSED_MIN_CHANNELS = 16 };

static int64_t rotated_floats(const conv2d_layer *c);

static bool transposed_ok(const conv2d_layer *c, const cnn_layer_io *io)
{
    const cnn_conv_geom *g = &c->geom;
    if (!(g->sh == 1 && g->sw == 1 && g->c >= TRANSPOSED_MIN_CHANNELS && !columns_are_input(g)))
        return false;
    if (!io->bf16)
        return true;
    /* transposed_backward's product, on the fused path (fused_ok) */
    const int F = c->base.spec.u.conv2d.filters;
    const int64_t K = (int64_t)g->kh * g->kw * F, avail = io->tile_floats - rotated_floats(c);
    return bf16_fast(io) && fused_packed_floats(K, g->c, avail > K ? avail : K) > 0;
}

static cnn_conv_geom transposed_geom(const cnn_conv_geom *g, int F)
{
    cnn_conv_geom t = *g;
    t.h = g->oh, t.w = g->ow, t.c = F;
    t.oh = g->h, t.ow = g->w;
    t.pad_top = (g->kh - 1) * g->dh - g->pad_top;
    t.pad_left = (g->kw - 1) * g->dw - g->pad_left;
    return t;
}

/* The rotated kernel's floats, rounded to whole cache lines. */
static int64_t rotated_floats(const conv2d_layer *c)
{
    const cnn_conv_geom *g = &c->geom;
    return ((int64_t)g->kh * g->kw * g->c * c->base.spec.u.conv2d.filters + 15) / 16 * 16;
}

/* rot[((ky' kw + kx') F + f) C + c] = kernel[((kh-1-ky') kw + kw-1-kx') C + c][f] */
static void rotate_kernel(const cnn_conv_geom *g, int F, const float *w, float *rot)
{
    const int C = g->c, taps = g->kh * g->kw;
    for (int t = 0; t < taps; t++) {
        const float *src = w + (int64_t)(taps - 1 - t) * C * F;
        float *dst = rot + (int64_t)t * F * C;
        for (int ci = 0; ci < C; ci++)
            for (int f = 0; f < F; f++)
                dst[(int64_t)f * C + ci] = src[(int64_t)ci * F + f];
    }
}

static size_t transposed_workspace(const conv2d_layer *c, int batch, int64_t tile_floats)
{
    const cnn_conv_geom *g = &c->geom;
    const int F = c->base.spec.u.conv2d.filters;
    const int64_t K = (int64_t)g->kh * g->kw * F, M = (int64_t)batch * g->h * g->w;
    const int64_t avail = tile_floats - rotated_floats(c);
    if (avail < K)
        return (size_t)(rotated_floats(c) + K); /* one row: the limit is tiny */
    return (size_t)(rotated_floats(c) + fused_packed_floats(K, g->c, avail)
                    + fused_tile_rows(M, K, g->c, avail) * K);
}

static void transposed_backward(conv2d_layer *c, const cnn_layer_io *io)
{
    const cnn_conv_geom *g = &c->geom;
    const int F = c->base.spec.u.conv2d.filters;
    const cnn_conv_geom t = transposed_geom(g, F);
    float *rot = io->workspace;
    int64_t avail = io->tile_floats - rotated_floats(c), K = (int64_t)g->kh * g->kw * F;
    if (avail < K)
        avail = K;
    rotate_kernel(g, F, c->base.params[0].value, rot);
    fused_job job = {.g = &t, .x = io->dy, .w = rot, .F = g->c, .y = io->dx, .gemm = io->gemm};
    fused_run(&job, io, (int64_t)io->batch * g->h * g->w, rot + rotated_floats(c), avail);
}

/* ---- Backward-weights, implicit ------------------------------------------
 * dkernel[K x F] += colsᵀ · dy as a gathered GEMM too: its rows are the
 * taps (row k at tap k's offset in the padded sample), its K axis the
 * pixels (pixel p at its receptive-field corner, koff[p]), its B the dy
 * rows packed WEIGHTS_BLOCK_ROWS at a time. Each worker takes its own
 * 12-aligned range of taps over all pixels, so no sum is split between
 * threads, and the pixel blocks are the same for any thread count: the
 * results do not depend on it. They differ from the tile-wise GEMM's only
 * in where the pixel sums are cut into blocks. */
enum { WEIGHTS_BLOCK_ROWS = 384 };

/* The output positions [*lo, *hi) (of on) whose tap t (stride s, padding
 * pad before, dilation d) reads inside the input (n wide): 0 <= o s - pad
 * + t d < n, solved for o (a scan over o cost the 2000x2000 image's
 * backward-weights a fifth of its time). */
static void outputs_inside(int64_t t, int s, int pad, int d, int n, int on, int64_t *lo,
                           int64_t *hi)
{
    int64_t first = pad - t * d, last = n - 1 + pad - t * d; /* o s in [first, last] */
    *lo = first <= 0 ? 0 : (first + s - 1) / s;
    *hi = last < 0 ? 0 : last / s + 1;
    *hi = *hi < on ? *hi : on;
    *lo = *lo < *hi ? *lo : *hi;
}

/* The pixel spans of the block [a, z) (offsets from a) that some tap of
 * [t0, t1] reads inside the input, over the hull of their output rows and
 * columns, into spans (at most one pair per output row the block
 * touches); returns how many. */
static int tap_spans(const cnn_conv_geom *g, int64_t t0, int64_t t1, int64_t a, int64_t z,
                     int *spans)
{
    int64_t y0 = g->oh, y1 = 0, x0 = g->ow, x1 = 0;
    for (int64_t t = t0; t <= t1; t++) {
        int64_t lo, hi;
        outputs_inside(t / g->kw, g->sh, g->pad_top, g->dh, g->h, g->oh, &lo, &hi);
        if (lo < hi)
            y0 = lo < y0 ? lo : y0, y1 = hi > y1 ? hi : y1;
        outputs_inside(t % g->kw, g->sw, g->pad_left, g->dw, g->w, g->ow, &lo, &hi);
        if (lo < hi)
            x0 = lo < x0 ? lo : x0, x1 = hi > x1 ? hi : x1;
    }
    if (y0 >= y1 || x0 >= x1)
        return 0;
    const int64_t plane = (int64_t)g->oh * g->ow;
    int n = 0;
    for (int64_t r = a / g->ow; r * g->ow < z; r++) { /* r: sample * oh + oy */
        int64_t oy = r % g->oh;
        if (oy < y0 || oy >= y1)
            continue;
        int64_t p0 = r / g->oh * plane + oy * g->ow + x0 - a;
        int64_t p1 = p0 + (x1 - x0);
        p0 = p0 > 0 ? p0 : 0;
        p1 = p1 < z - a ? p1 : z - a;
        if (p0 >= p1)
            continue;
        if (n > 0 && spans[2 * n - 1] == p0)
            spans[2 * n - 1] = (int)p1; /* joins the last */
        else
            spans[2 * n] = (int)p0, spans[2 * n + 1] = (int)p1, n++;
    }
    return n;
}

/* ---- bfloat16 backward-weights from pixel pairs in place ----
 * Its K axis is the pixels, taken in pairs (k, k + 1): at stride 1 with an
 * even output width, the two pixels of a pair sit side by side in one
 * output row, so for every tap they read two adjacent columns of the
 * padded band. The band is interleaved once per load into words of those
 * column pairs (`pair_band`: parity q pairs columns q + 2j and q + 2j + 1,
 * channel c a word), and cnn_gemm_bf16_gather_pairs_spans reads each
 * channel row's pair in place, where cnn_gemm_bf16_gather16 packed the
 * panels of every block (a fifth of the pass). The same words, the same
 * bits. */
static bool weights_pairs_ok(const cnn_conv_geom *g) { return g->sw == 1 && g->ow % 2 == 0; }

/* Words of one (parity, slot) of the interleaved band: as many padded
 * rows as a band slot, ceil(wp / 2) column pairs of C channels each. */
static int64_t pair_band_words(const cnn_conv_geom *g, const implicit_layout *L)
{
    return (band_rows(g, L, WEIGHTS_BLOCK_ROWS) * ((L->wp + 1) / 2) * g->c + 15) / 16 * 16;
}

/* The interleaved rows [0, rows) of both parities of a slot from its
 * bfloat16 band (pitch elements a padded row): pairs at words
 * w[q * 2 * words + row * pitch2 + j * C + c], pitch2 = ceil(wp / 2) C. */
static void pair_band(const cnn_conv_geom *g, const implicit_layout *L, const uint16_t *band,
                      int64_t rows, uint32_t *w, int64_t words)
{
    const int64_t C = g->c, pitch = L->wp * C, pairs = (L->wp + 1) / 2, pitch2 = pairs * C;
    for (int q = 0; q < 2; q++)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t jj = 0; jj < pairs; jj++) {
                int64_t col = q + 2 * jj;
                uint32_t *d = w + q * 2 * words + r * pitch2 + jj * C;
                if (col >= L->wp) {
                    memset(d, 0, (size_t)C * sizeof *d);
                    continue;
                }
                const uint16_t *x0 = band + r * pitch + col * C;
                cnn_bf16_interleave(x0, col + 1 < L->wp ? x0 + C : NULL, d, (long)C);
            }
}

static int64_t weights_worker_floats(const conv2d_layer *c)
{
    const cnn_conv_geom *g = &c->geom;
    const int F = c->base.spec.u.conv2d.filters;
    const int64_t K = (int64_t)g->kh * g->kw * g->c;
    implicit_layout L = implicit_layout_of(g), L16 = implicit_layout_copied(g);
    /* two band slots of floats, or (bfloat16) two of half the bytes */
    int64_t bands = L.copy ? 2 * band_floats(g, &L, WEIGHTS_BLOCK_ROWS) : 0;
    /* (bfloat16: two slots of half the bytes, then the interleaved pairs
     * of both parities for both slots) */
    int64_t b16 = band_floats(g, &L16, WEIGHTS_BLOCK_ROWS) + 16
                + (weights_pairs_ok(g) ? 4 * pair_band_words(g, &L16) : 0);
    if (bands < b16)
        bands = b16;
    return 2 * K + WEIGHTS_BLOCK_ROWS + 16                  /* pointers, koff */
         + 2 * WEIGHTS_BLOCK_ROWS + 16                      /* tap_spans */
         + (int64_t)cnn_gemm_packed_b_floats(WEIGHTS_BLOCK_ROWS, F) + 16 + bands + 16;
}

typedef struct {
    const conv2d_layer *c;
    const cnn_layer_io *io;
    int64_t per_worker; /* floats of workspace each worker has */
} weights_job;

/* Rows [k0, k1) of dkernel += the product of the block of pixels
 * [a, a + pixels) in bfloat16, one tap at a time from the band converted
 * once (origin), over the pixels the tap reads inside the input only
 * (tap_spans, into spans): the rows of a panel are
 * then adjacent channels, which cnn_gemm_bf16_gather16 packs for all the
 * tap's panels at once, 32 channels of a pair of pixels by two loads and
 * two interleaves. Gathering from the float band (cnn_gemm_bf16_gather:
 * each 12-row panel's floats converted and interleaved apart) gave 1.66x
 * float32 on conv2, 1.63x on the large 3x3 layer; this 1.72x and 1.70x. */
static void weights_bf16_rows(const weights_job *j, int ith, int64_t k0, int64_t k1, int64_t a,
                              int pixels, const uint16_t *origin, int64_t pitch, const int *koff,
                              int *spans, const float *bp)
{
    const cnn_conv_geom *g = &j->c->geom;
    const int64_t C = g->c;
    const int F = j->c->base.spec.u.conv2d.filters;
    for (int64_t k = k0; k < k1;) {
        int64_t end = (k / C + 1) * C < k1 ? (k / C + 1) * C : k1;
        int64_t t = k / C, ky = t / g->kw, kx = t % g->kw;
        int ns = tap_spans(g, t, t, a, a + pixels, spans);
        cnn_gemm_bf16_gather16_spans(j->io->gemm, ith, (int)(end - k), F, pixels,
                                     origin + ky * g->dh * pitch + kx * g->dw * C + k % C, koff,
                                     spans, ns, bp, 1.0f, j->c->base.params[0].grad + k * F, F);
        k = end;
    }
}

static void weights_worker(void *p, int ith, int nth)
{
    const weights_job *j = p;
    const cnn_conv_geom *g = &j->c->geom;
    const int F = j->c->base.spec.u.conv2d.filters;
    const int64_t C = g->c, plane = (int64_t)g->oh * g->ow;
    const int64_t M = (int64_t)j->io->batch * plane, sample = (int64_t)g->h * g->w * C;
    const bool bf16 = bf16_fast(j->io);
    /* whole panels of one tap's channels (weights_bf16_rows; float32: each
     * panel then skips exactly its tap's pixels on the padding) */
    const int64_t per_tap = (C + 11) / 12, taps = (int64_t)g->kh * g->kw;
    long b, e;
    cnn_split_range((long)(taps * per_tap), ith, nth, &b, &e);
    const int64_t k0 = b / per_tap * C + C * (b % per_tap) / per_tap;
    const int64_t k1 = e / per_tap * C + C * (e % per_tap) / per_tap;
    if (k0 >= k1)
        return;
    const implicit_layout L = bf16 ? implicit_layout_copied(g) : implicit_layout_of(g);
    const int64_t pitch = L.wp * C, slot = band_floats(g, &L, WEIGHTS_BLOCK_ROWS);
    const int64_t band = band_rows(g, &L, WEIGHTS_BLOCK_ROWS);
    float *base = (float *)(((uintptr_t)(j->io->workspace + ith * j->per_worker) + 63)
                            & ~(uintptr_t)63);
    float *bp = base;
    const float **rows = (const float **)(bp + (cnn_gemm_packed_b_floats(WEIGHTS_BLOCK_ROWS, F) + 15) / 16 * 16);
    int *koff = (int *)(rows + (k1 - k0));
    int *spans = koff + WEIGHTS_BLOCK_ROWS;
    float *xp = (float *)(((uintptr_t)(spans + 2 * WEIGHTS_BLOCK_ROWS + 4) + 63) & ~(uintptr_t)63);
    band_held held[2] = {{-1, 0, 0}, {-1, 0, 0}};
    /* bfloat16 pairs in place: the interleaved bands after the two slots */
    const bool pairs = bf16 && weights_pairs_ok(g);
    const int64_t pwords = pairs ? pair_band_words(g, &L) : 0, pitch2 = (L.wp + 1) / 2 * C;
    uint32_t *pw = (uint32_t *)(((uintptr_t)(xp + slot) + 63) & ~(uintptr_t)63);
    int64_t pwhere[2] = {0, 0};
    for (int64_t a = 0; a < M;) {
        int64_t n = a / plane, z = a + WEIGHTS_BLOCK_ROWS;
        z = z < (n + 2) * plane ? z : (n + 2) * plane;
        z = z < M ? z : M;
        /* the block's samples: bands of padded rows in slot s % 2 (where[]
         * places padded row 0 of the sample, so that its pixels' offsets
         * from the slot's start come out >= 0), or x itself */
        const float *origin = L.copy ? xp : j->io->x + n * sample;
        int64_t where[2];
        for (int64_t s = n; s <= (z - 1) / plane; s++) {
            if (L.copy) {
                int64_t p0, p1;
                band_need(g, s, a, z, &p0, &p1);
                /* slot: floats, or bfloat16 elements (half the bytes) */
                void *d = bf16 ? (void *)((uint16_t *)xp + (s % 2) * slot)
                               : (void *)(xp + (s % 2) * slot);
                band_held before = held[s % 2];
                int64_t top = band_hold(g, &L, band, j->io->x, s, p0, p1, d, bf16, &held[s % 2]);
                where[s - n] = (s % 2) * slot - top * pitch;
                band_held *h = &held[s % 2];
                if (pairs && (before.sample != h->sample || before.r0 != h->r0
                              || before.r1 != h->r1))
                    pair_band(g, &L, d, h->r1 - h->r0, pw + (s % 2) * pwords, pwords);
                pwhere[s - n] = (s % 2) * pwords - top * pitch2;
            } else {
                where[s - n] = (s - n) * sample;
            }
        }
        /* the block's dy rows, B of every tap's product */
        if (bf16)
            cnn_gemm_bf16_pack_b(j->io->gemm, F, (int)(z - a), j->io->dy + a * F, F, bp);
        else
            cnn_gemm_pack_b(j->io->gemm, false, F, (int)(z - a), j->io->dy + a * F, F, bp);
        if (pairs) {
            /* koff[2 i]: pixel pair i's first word, in bfloat16 elements */
            for (int64_t m = a; m < z; m += 2) {
                int64_t q = m / plane - n, rest = m % plane, oy = rest / g->ow, ox = rest % g->ow;
                koff[m - a] = (int)(2 * (pwhere[q] + oy * g->sh * pitch2 + ox / 2 * C));
                koff[m - a + 1] = koff[m - a] + 1;
            }
            const uint16_t **rows16 = (const uint16_t **)rows;
            for (int64_t k = k0; k < k1;) { /* a tap's channels in [k0, k1) */
                int64_t t = k / C, e = (t + 1) * C < k1 ? (t + 1) * C : k1;
                int64_t ky = t / g->kw, kx = t % g->kw, q = kx * g->dw % 2;
                const uint32_t *tap = pw + q * 2 * pwords + ky * g->dh * pitch2
                                    + (kx * g->dw - q) / 2 * C;
                for (int64_t i = k; i < e; i++)
                    rows16[i - k] = (const uint16_t *)(tap + i % C);
                int ns = tap_spans(g, t, t, a, z, spans);
                cnn_gemm_bf16_gather_pairs_spans(j->io->gemm, (int)(e - k), F, (int)(z - a),
                                                 rows16, koff, spans, ns, bp, 1.0f,
                                                 j->c->base.params[0].grad + k * F, F);
                k = e;
            }
            a = z;
            continue;
        }
        /* the pixels' offsets (the pairs above have their own) */
        for (int64_t m = a; m < z; m++) {
            int64_t q = m / plane - n, rest = m % plane, oy = rest / g->ow, ox = rest % g->ow;
            koff[m - a] = (int)(where[q] + oy * g->sh * pitch + ox * g->sw * C);
        }
        if (bf16) {
            weights_bf16_rows(j, ith, k0, k1, a, (int)(z - a), (const uint16_t *)xp, pitch, koff,
                              spans, bp);
            a = z;
            continue;
        }
        for (int64_t k = k0; k < k1; k++) {
            int64_t ci = k % C, t = k / C, ky = t / g->kw, kx = t % g->kw;
            rows[k - k0] = origin + ky * g->dh * pitch + kx * g->dw * C + ci;
        }
        for (int64_t k = k0; k < k1;) { /* a tap's channels in [k0, k1) */
            int64_t t = k / C, e = (t + 1) * C < k1 ? (t + 1) * C : k1;
            int ns = tap_spans(g, t, t, a, z, spans);
            cnn_gemm_gather_spans(j->io->gemm, ith, (int)(e - k), F, (int)(z - a),
                                  rows + (k - k0), koff, spans, ns, bp, 1.0f,
                                  j->c->base.params[0].grad + k * F, F);
            k = e;
        }
        a = z;
    }
}

/* Whether the implicit backward-weights can run, and each worker's share:
 * whether it runs depends on the workspace only, never on the thread
 * count (that would change the sums); when the workspace cannot give
 * every worker its share, one worker does it all. */
static bool weights_implicit_ok(const conv2d_layer *c, const cnn_layer_io *io, int64_t ws_floats,
                                int64_t *per_worker, bool *parallel)
{
    const cnn_conv_geom *g = &c->geom;
    if (columns_are_input(g)
        || !(io->bf16 ? bf16_fast(io) : cnn_gemm_gather_supported(io->gemm)))
        return false;
    implicit_layout L = implicit_layout_of(g);
    int64_t two = L.copy ? 2 * (L.hp * L.wp * g->c + 16) : 2 * (int64_t)g->h * g->w * g->c;
    if (two >= INT32_MAX)
        return false;
    const int64_t need = weights_worker_floats(c);
    *per_worker = ws_floats / cnn_pool_threads(io->pool) / 16 * 16;
    *parallel = *per_worker >= need;
    if (!*parallel)
        *per_worker = ws_floats;
    return ws_floats >= need;
}

/* ---- Winograd's F(2x2, 5x5): all three passes -----------------------------------
 * A 5x5 stride-1 layer with channels and filters in multiples of 16 (the
 * tutorial's conv2) takes 36 multiplications per 2x2 output pixels and
 * (channel, filter) where the direct products take 100 (kernels/winograd.h):
 * its forward; its backward-data, which for stride 1 is the forward
 * convolution of dy with the rotated kernel (transposed_geom); and its
 * backward-weights (winograd_weights, below). float32 on the AVX-512
 * micro-kernel's context only: forcing another kernel (or the reference)
 * forces the direct products too, as direct_isa does, and mixed_bfloat16
 * keeps its bfloat16 products (as fast here: a bfloat16 Winograd would
 * halve the products but not the transforms). The kernel's transform U (36
 * c filters floats) comes first in the job's workspace, then one block of
 * tiles' scratch per worker.
 * Even at batch 1 (the tutorial's conv2: 49 tiles) transforming the kernel
 * first costs no more than it saves (0.15-0.16 ms either way in
 * bench_cnn profile infer tutorial 1 1), so every batch takes it. */

static bool winograd_context(const cnn_layer_io *io)
{
    cnn_isa isa;
    return !io->bf16 && direct_isa(io, &isa) && isa == CNN_ISA_AVX512;
}

/* U's (or dU's) floats at the start of the workspace, whole cache lines. */
static int64_t winograd_kernel_slot(const cnn_conv_geom *g, int F)
{
    return (cnn_winograd_kernel_floats(g, F) + 15) / 16 * 16;
}

/* U and two workers' blocks of the size that stays in L2. */
static int64_t winograd_floats(const cnn_conv_geom *g, int F)
{
    const int64_t block = cnn_winograd_block_tiles(g, F, INT64_MAX / 4);
    return winograd_kernel_slot(g, F) + 2 * cnn_winograd_scratch_floats(g, F, block);
}

/* y = conv(x, kernel) (+ bias, activation) over g, F filters. */
typedef struct {
    const cnn_conv_geom *g;
    int F, batch;
    const float *x, *kernel, *bias;
    cnn_activation activation;
    float *y, *u, *scratch;
    int64_t share, block; /* scratch floats and tiles of one worker's block */
} winograd_job;

static void winograd_kernel_worker(void *p, int ith, int nth)
{
    const winograd_job *j = p;
    long b, e;
    cnn_split_range(j->g->c, ith, nth, &b, &e);
    cnn_winograd_kernel(j->g, j->F, j->kernel, (int)b, (int)e, j->u);
}

static void winograd_worker(void *p, int ith, int nth)
{
    const winograd_job *j = p;
    long b, e;
    cnn_split_range((long)cnn_winograd_tiles(j->g, j->batch), ith, nth, &b, &e);
    for (int64_t t = b; t < e; t += j->block)
        cnn_winograd_forward(j->g, j->F, j->x, j->u, j->bias, j->activation, t,
                             t + j->block < e ? t + j->block : e, j->scratch + ith * j->share,
                             j->y);
}

/* Runs the job in ws (ws_floats); false if the workspace is too small. */
static bool winograd_run(winograd_job *j, const cnn_layer_io *io, float *ws, int64_t ws_floats)
{
    const int64_t kernel = winograd_kernel_slot(j->g, j->F);
    j->batch = io->batch;
    j->u = ws;
    j->scratch = ws + kernel;
    j->share = ws_floats > kernel ? (ws_floats - kernel) / cnn_pool_threads(io->pool) / 16 * 16 : 0;
    j->block = cnn_winograd_block_tiles(j->g, j->F, j->share);
    if (j->block == 0)
        return false;
    cnn_pool_run(io->pool, winograd_kernel_worker, j);
    cnn_pool_run(io->pool, winograd_worker, j);
    return true;
}

static size_t conv2d_workspace(const cnn_layer *l, int batch, int64_t tile_floats);

static bool winograd_forward(conv2d_layer *c, const cnn_layer_io *io)
{
    const cnn_layer *l = &c->base;
    const int F = l->spec.u.conv2d.filters;
    if (!winograd_context(io) || !cnn_winograd_fits(&c->geom, F))
        return false;
    winograd_job j = {.g = &c->geom, .F = F, .x = io->x, .kernel = l->params[0].value,
                      .bias = l->n_params > 1 ? l->params[1].value : NULL,
                      .activation = io->fuse_activation ? l->activation : CNN_ACTIVATION_LINEAR,
                      .y = io->y};
    return winograd_run(&j, io, io->workspace,
                        (int64_t)conv2d_workspace(l, io->batch, io->tile_floats));
}

/* The transposed geometry fits (stride 1, so transposed_geom holds). */
static bool winograd_backward_fits(const conv2d_layer *c, cnn_conv_geom *t)
{
    const cnn_conv_geom *g = &c->geom;
    if (g->sh != 1 || g->sw != 1)
        return false;
    *t = transposed_geom(g, c->base.spec.u.conv2d.filters);
    return cnn_winograd_fits(t, g->c);
}

/* dx = conv(dy, rotated kernel): writes every dx. */
static bool winograd_backward_data(conv2d_layer *c, const cnn_layer_io *io)
{
    cnn_conv_geom t;
    if (!winograd_context(io) || !winograd_backward_fits(c, &t))
        return false;
    const int F = c->base.spec.u.conv2d.filters;
    const int64_t ws = (int64_t)conv2d_workspace(&c->base, io->batch, io->tile_floats);
    float *rot = io->workspace;
    rotate_kernel(&c->geom, F, c->base.params[0].value, rot);
    winograd_job j = {.g = &t, .F = c->geom.c, .x = io->dy, .kernel = rot,
                      .activation = CNN_ACTIVATION_LINEAR, .y = io->dx};
    return winograd_run(&j, io, rot + rotated_floats(c), ws - rotated_floats(c));
}

/* Backward-weights: dU (36 c filters) at the start of the workspace, then
 * each worker's block. Workers split the filters (16 at a time) and every
 * one runs over all tiles, in blocks of the size that stays in L2 whatever
 * the thread count: each dU sum then runs over the tiles in the same order
 * on any number of threads. */
typedef struct {
    const conv2d_layer *c;
    const cnn_layer_io *io;
    float *du, *scratch;
    int64_t share, block;
} winograd_weights_job;

static void winograd_weights_worker(void *p, int ith, int nth)
{
    const winograd_weights_job *j = p;
    const cnn_conv_geom *g = &j->c->geom;
    const int F = j->c->base.spec.u.conv2d.filters;
    long b, e;
    cnn_split_range(F / 16, ith, nth, &b, &e);
    const int f0 = (int)b * 16, f1 = (int)e * 16;
    if (f0 == f1)
        return;
    for (int64_t r = 0; r < (int64_t)CNN_WINOGRAD_POINTS * g->c; r++)
        memset(j->du + r * F + f0, 0, (size_t)(f1 - f0) * sizeof(float));
    const int64_t tiles = cnn_winograd_tiles(g, j->io->batch);
    for (int64_t t = 0; t < tiles; t += j->block)
        cnn_winograd_weights(g, F, j->io->x, j->io->dy, t,
                             t + j->block < tiles ? t + j->block : tiles, f0, f1,
                             j->scratch + ith * j->share, j->du);
    cnn_winograd_kernel_grad(g, F, j->du, f0, f1, j->c->base.params[0].grad);
}

/* The kernel's gradient (the bias's is the caller's); false: not here. */
static bool winograd_weights(conv2d_layer *c, const cnn_layer_io *io)
{
    const int F = c->base.spec.u.conv2d.filters;
    if (!winograd_context(io) || !cnn_winograd_fits(&c->geom, F))
        return false;
    const int64_t ws = (int64_t)conv2d_workspace(&c->base, io->batch, io->tile_floats);
    const int64_t du = winograd_kernel_slot(&c->geom, F);
    winograd_weights_job j = {.c = c, .io = io, .du = io->workspace,
                              .scratch = io->workspace + du};
    j.block = cnn_winograd_block_tiles(&c->geom, F, INT64_MAX / 4);
    j.share = cnn_winograd_scratch_floats(&c->geom, F, j.block);
    if (du + cnn_pool_threads(io->pool) * j.share > ws)
        return false;
    cnn_pool_run(io->pool, winograd_weights_worker, &j);
    return true;
}

/* The most the Winograd passes ask of the workspace (backward-weights as
 * the forward: a kernel's floats and two blocks). */
static int64_t winograd_workspace(const conv2d_layer *c)
{
    int64_t need = 0;
    cnn_conv_geom t;
    if (cnn_winograd_fits(&c->geom, c->base.spec.u.conv2d.filters))
        need = winograd_floats(&c->geom, c->base.spec.u.conv2d.filters);
    if (winograd_backward_fits(c, &t) && rotated_floats(c) + winograd_floats(&t, c->geom.c) > need)
        need = rotated_floats(c) + winograd_floats(&t, c->geom.c);
    return need;
}

static size_t conv2d_workspace(const cnn_layer *l, int batch, int64_t tile_floats)
{
    const conv2d_layer *c = (const conv2d_layer *)l;
    size_t direct = (size_t)(direct_block(c, batch, tile_floats) * direct_sample_floats(c));
    if (columns_are_input(&c->geom))
        return 0;
    const cnn_conv_geom *g = &c->geom;
    const int64_t K = (int64_t)g->kh * g->kw * g->c, F = l->spec.u.conv2d.filters;
    size_t gemm = (size_t)(tile_rows(c, batch, tile_floats) * K);
    int64_t M = (int64_t)batch * g->oh * g->ow;
    size_t fused = (size_t)(fused_packed_floats(K, (int)F, tile_floats)
                            + fused_tile_rows(M, K, (int)F, tile_floats) * K);
    if (fused > gemm)
        gemm = fused;
    /* one worker's implicit backward-weights, within the limit */
    if (!columns_are_input(g) && (int64_t)gemm < weights_worker_floats(c)
        && weights_worker_floats(c) <= tile_floats)
        gemm = (size_t)weights_worker_floats(c);
    /* backward-data when it may run transposed (bf16 is a per-pass choice) */
    if (g->sh == 1 && g->sw == 1 && g->c >= TRANSPOSED_MIN_CHANNELS) {
        size_t t = transposed_workspace(c, batch, tile_floats);
        if (t > gemm)
            gemm = t;
    }
    /* Winograd's passes, within the limit (else they fall back when the
     * workspace is too small: winograd_run, winograd_weights) */
    const int64_t winograd = winograd_workspace(c);
    if ((int64_t)gemm < winograd && winograd <= tile_floats)
        gemm = (size_t)winograd;
    return direct > gemm ? direct : gemm;
}

/* One block of samples [n0, n0 + nb) on the direct path. Forward splits
 * the block's samples between the workers (each pads its own) or, for
 * fewer samples than that balances, its output rows (the caller pads);
 * backward-weights splits the samples, each worker writing its samples'
 * kernel and bias gradients to their own scratch, which
 * direct_reduce_worker then sums in a fixed pairwise order into the
 * layer's gradients. Either way each sum runs in the same order for any
 * number of threads. */
typedef struct {
    const conv2d_layer *c;
    const cnn_layer_io *io;
    cnn_isa isa;
    int64_t n0, nb;
    bool by_samples;
    float *xp;    /* nb padded samples */
    float *grads; /* backward: nb kernel gradients, after xp */
} direct_job;

/* Below this many multiply-adds per block one thread does it all, so a
 * batch of 1 never waits for a second thread to wake up: about 15 us of
 * work at 1 thread's speed here, several times a pool round trip
 * (batch-1 inference: the tutorial's conv1, 0.63 M, and LeNet-5's C1,
 * 0.12 M, stay on one thread; at batch 64 both split). */
#define DIRECT_PARALLEL_MACS 1000000.0

static void direct_forward_worker(void *p, int ith, int nth)
{
    const direct_job *j = p;
    const cnn_conv_geom *g = &j->c->geom;
    const cnn_layer *l = &j->c->base;
    const int F = l->spec.u.conv2d.filters;
    long b, e;
    int64_t r0, r1;
    if (j->by_samples) {
        cnn_split_range((long)j->nb, ith, nth, &b, &e);
        cnn_conv_direct_pad(g, j->io->x, j->n0 + b, e - b,
                            j->xp + b * cnn_conv_direct_sample_floats(g));
        r0 = (int64_t)b * g->oh;
        r1 = (int64_t)e * g->oh;
    } else {
        cnn_split_range((long)(j->nb * g->oh), ith, nth, &b, &e);
        r0 = b;
        r1 = e;
    }
    if (r0 >= r1)
        return;
    float *y = j->io->y + (j->n0 * g->oh + r0) * g->ow * F;
    cnn_conv_direct_forward(j->isa, g, F, j->xp, l->params[0].value,
                            l->n_params > 1 ? l->params[1].value : NULL, r0, r1, y);
    /* the activation on this worker's rows while they are in cache */
    if (j->io->fuse_activation)
        cnn_activation_forward(l->activation, y, (r1 - r0) * g->ow, F);
}

static double direct_macs(const conv2d_layer *c, int64_t samples)
{
    const cnn_conv_geom *g = &c->geom;
    return (double)samples * g->oh * g->ow * g->kh * g->kw * g->c * c->base.spec.u.conv2d.filters;
}

static void direct_forward(conv2d_layer *c, const cnn_layer_io *io, cnn_isa isa, int64_t nb)
{
    const int threads = cnn_pool_threads(io->pool);
    for (int64_t n0 = 0; n0 < io->batch; n0 += nb) {
        direct_job j = {.c = c, .io = io, .isa = isa, .n0 = n0,
                        .nb = io->batch - n0 < nb ? io->batch - n0 : nb, .xp = io->workspace};
        j.by_samples = j.nb % threads == 0 || j.nb >= 4 * threads;
        if (!j.by_samples)
            cnn_conv_direct_pad(&c->geom, io->x, n0, j.nb, j.xp);
        bool parallel = direct_macs(c, j.nb) >= DIRECT_PARALLEL_MACS;
        cnn_pool_run(parallel ? io->pool : NULL, direct_forward_worker, &j);
    }
}

static void direct_weights_worker(void *p, int ith, int nth)
{
    const direct_job *j = p;
    const cnn_conv_geom *g = &j->c->geom;
    const int F = j->c->base.spec.u.conv2d.filters, K = g->kh * g->kw * g->c;
    const int64_t sample = cnn_conv_direct_sample_floats(g), out = (int64_t)g->oh * g->ow * F;
    const bool bias = j->c->base.n_params > 1;
    long b, e;
    cnn_split_range((long)j->nb, ith, nth, &b, &e);
    for (int64_t s = b; s < e; s++) {
        /* this sample's kernel gradient, then its bias gradient */
        float *xp = j->xp + s * sample, *gs = j->grads + s * (K + 1) * F;
        cnn_conv_direct_pad(g, j->io->x, j->n0 + s, 1, xp);
        memset(gs, 0, (size_t)(K + 1) * F * sizeof(float));
        cnn_conv_direct_weights(j->isa, g, F, xp, j->io->dy + (j->n0 + s) * out, 1, 0, K, gs,
                                bias ? gs + (int64_t)K * F : NULL);
    }
}

static void direct_reduce_worker(void *p, int ith, int nth)
{
    const direct_job *j = p;
    const cnn_conv_geom *g = &j->c->geom;
    const int F = j->c->base.spec.u.conv2d.filters;
    const int64_t KF = ((int64_t)g->kh * g->kw * g->c + 1) * F, biases = KF - F;
    float *dk = j->c->base.params[0].grad;
    float *db = j->c->base.n_params > 1 ? j->c->base.params[1].grad : NULL;
    long b, e;
    cnn_split_range((long)KF, ith, nth, &b, &e);
    /* A pairwise tree over the samples, in place: more accurate than a
     * running sum, and for a power-of-two batch it adds the two halves
     * last, as data-parallel ranks of half the batch do (test_mpi.sh). */
    for (int64_t width = 1; width < j->nb; width *= 2)
        for (int64_t s = 0; s + width < j->nb; s += 2 * width) {
            float *a = j->grads + s * KF, *c = a + width * KF;
            for (int64_t i = b; i < e; i++)
                a[i] += c[i];
        }
    for (int64_t i = b; i < e; i++) {
        if (i < biases)
            dk[i] += j->grads[i];
        else if (db)
            db[i - biases] += j->grads[i];
    }
}

static void direct_weights(conv2d_layer *c, const cnn_layer_io *io, cnn_isa isa, int64_t nb)
{
    const int64_t sample = cnn_conv_direct_sample_floats(&c->geom);
    for (int64_t n0 = 0; n0 < io->batch; n0 += nb) {
        direct_job j = {.c = c, .io = io, .isa = isa, .n0 = n0,
                        .nb = io->batch - n0 < nb ? io->batch - n0 : nb, .xp = io->workspace};
        j.grads = j.xp + j.nb * sample;
        bool parallel = j.nb > 1 && direct_macs(c, j.nb) >= DIRECT_PARALLEL_MACS;
        cnn_pool_run(parallel ? io->pool : NULL, direct_weights_worker, &j);
        cnn_pool_run(parallel ? io->pool : NULL, direct_reduce_worker, &j);
    }
}

static void conv2d_forward(cnn_layer *l, const cnn_layer_io *io)
{
    conv2d_layer *c = (conv2d_layer *)l;
    const cnn_conv_geom *g = &c->geom;
    const int K = g->kh * g->kw * g->c, F = l->spec.u.conv2d.filters;
    const int64_t M = (int64_t)io->batch * g->oh * g->ow, tile = tile_rows(c, io->batch, io->tile_floats);
    cnn_isa isa;
    int64_t nb = direct_block(c, io->batch, io->tile_floats);
    if (winograd_forward(c, io))
        return;
    if (nb > 0 && direct_isa(io, &isa)) {
        direct_forward(c, io, isa, nb);
        return;
    }
    if (fused_ok(g, F, io, io->tile_floats)) {
        fused_job job = {.g = g, .x = io->x, .w = l->params[0].value,
                         .bias = l->n_params > 1 ? l->params[1].value : NULL, .F = F,
                         .activate = io->fuse_activation, .activation = l->activation,
                         .y = io->y, .gemm = io->gemm};
        fused_run(&job, io, M, io->workspace, io->tile_floats);
        return;
    }
    for (int64_t m0 = 0; m0 < M; m0 += tile) {
        int64_t m1 = m0 + tile < M ? m0 + tile : M;
        const float *col = columns(c, io, m0, m1);
        float *y = io->y + m0 * F;
        /* y[rows x F] = col[rows x K] * kernel[K x F] */
        cnn_layer_gemm(io, false, false, (int)(m1 - m0), F, K, col, K, l->params[0].value, F, 0.0f,
                       y, F);
        if (l->n_params > 1)
            cnn_add_bias_rows(y, l->params[1].value, m1 - m0, F);
        if (io->fuse_activation)
            cnn_activation_forward(l->activation, y, m1 - m0, F);
    }
}

static void conv2d_backward(cnn_layer *l, const cnn_layer_io *io)
{
    conv2d_layer *c = (conv2d_layer *)l;
    const cnn_conv_geom *g = &c->geom;
    const int K = g->kh * g->kw * g->c, F = l->spec.u.conv2d.filters;
    const int64_t M = (int64_t)io->batch * g->oh * g->ow, tile = tile_rows(c, io->batch, io->tile_floats);
    const bool direct = columns_are_input(g);
    cnn_isa isa;
    int64_t nb = direct_block(c, io->batch, io->tile_floats);
    const bool weights_direct = nb > 0 && direct_isa(io, &isa);
    /* Through the activation first: both gradients below read dy. */
    if (io->fuse_activation)
        cnn_activation_backward(l->activation, io->y, io->dy, M, F);
    int64_t per_worker;
    bool parallel;
    if (weights_direct) {
        direct_weights(c, io, isa, nb); /* and the bias's */
    } else if (winograd_weights(c, io)) {
        if (l->n_params > 1)
            cnn_bias_grad_rows(io->dy, M, F, l->params[1].grad);
    } else if (weights_implicit_ok(c, io, (int64_t)conv2d_workspace(l, io->batch, io->tile_floats),
                                   &per_worker, &parallel)) {
        weights_job job = {c, io, per_worker};
        parallel = parallel && (double)M * K * F >= 1048576.0;
        cnn_pool_run(parallel ? io->pool : NULL, weights_worker, &job);
        if (l->n_params > 1)
            cnn_bias_grad_rows(io->dy, M, F, l->params[1].grad);
    } else {
        for (int64_t m0 = 0; m0 < M; m0 += tile) {
            int64_t m1 = m0 + tile < M ? m0 + tile : M;
            int rows = (int)(m1 - m0);
            float *dy = io->dy + m0 * F;
            const float *col = columns(c, io, m0, m1);
            /* dkernel[K x F] += col^T[K x rows] * dy[rows x F] */
            cnn_layer_gemm(io, true, false, K, F, rows, col, K, dy, F, 1.0f, l->params[0].grad, F);
            if (l->n_params > 1)
                cnn_bias_grad_rows(dy, rows, F, l->params[1].grad);
        }
    }
    if (!io->dx)
        return;
    if (winograd_backward_data(c, io))
        return; /* wrote every dx */
    if (transposed_ok(c, io)) {
        transposed_backward(c, io); /* writes every dx */
        return;
    }
    memset(io->dx, 0, (size_t)io->batch * g->h * g->w * g->c * sizeof(float));
    for (int64_t m0 = 0; m0 < M; m0 += tile) {
        int64_t m1 = m0 + tile < M ? m0 + tile : M;
        int rows = (int)(m1 - m0);
        float *dy = io->dy + m0 * F;
        if (direct) {
            /* dx rows = dy * kernel^T directly */
            cnn_layer_gemm(io, false, true, rows, K, F, dy, F, l->params[0].value, F, 0.0f,
                           io->dx + m0 * g->c, K);
            continue;
        }
        /* dcol[rows x K] = dy[rows x F] * kernel^T, reusing the column scratch */
        cnn_layer_gemm(io, false, true, rows, K, F, dy, F, l->params[0].value, F, 0.0f,
                       io->workspace, K);
        col2im(g, io, m0, m1);
    }
}

static cnn_status cnn_layer_conv2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                          const char *name);

/* The fields in Keras's positional order, which is the order of the
 * model file's record. */
static const cnn_layer_field conv2d_fields[] = {
    {"filters", CNN_FIELD_COUNT, CNN_SPEC_FIELD(conv2d.filters),
     CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    {"kernel_size", CNN_FIELD_PAIR, CNN_SPEC_FIELD(conv2d.kernel_size),
     CNN_FIELD_REQUIRED | CNN_FIELD_POSITIONAL, 0},
    {"strides", CNN_FIELD_PAIR, CNN_SPEC_FIELD(conv2d.strides), CNN_FIELD_POSITIONAL, 0},
    {"padding", CNN_FIELD_PADDING, CNN_SPEC_FIELD(conv2d.padding), CNN_FIELD_POSITIONAL, 0},
    {"dilation_rate", CNN_FIELD_PAIR, CNN_SPEC_FIELD(conv2d.dilation_rate), 0, 0},
    {"activation", CNN_FIELD_ACTIVATION, CNN_SPEC_FIELD(conv2d.activation), 0, 0},
    {"use_bias", CNN_FIELD_USE_BIAS, CNN_SPEC_FIELD(conv2d.no_bias), 0, 0},
    {"kernel_regularizer", CNN_FIELD_L2, CNN_SPEC_FIELD(conv2d.kernel_l2), CNN_FIELD_EXTENSION, 0},
    {"name", CNN_FIELD_NAME, CNN_SPEC_FIELD(conv2d.name), 0, 0},
};

const cnn_layer_ops cnn_conv2d_ops = {
    .create = cnn_layer_conv2d_create,
    .kind = CNN_LAYER_CONV2D,
    .can_fuse_activation = true,
    .type_name = "Conv2D",
    .auto_name = "conv2d",
    .infer = conv2d_infer,
    .init = conv2d_init,
    .workspace_floats = conv2d_workspace,
    .flops = conv2d_flops,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    CNN_LAYER_FIELDS(conv2d_fields),
    .keras_keys = "filters kernel_size strides padding data_format dilation_rate groups "
                  "activation use_bias kernel_initializer bias_initializer "
                  "kernel_regularizer bias_regularizer activity_regularizer "
                  "kernel_constraint bias_constraint",
    .keras_build_config = true,
};

static cnn_status check_pair(const char *layer, const char *field, const int v[2], int min)
{
    if (v[0] < min || v[1] < min || v[0] > CNN_CONV_MAX_WINDOW || v[1] > CNN_CONV_MAX_WINDOW)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (Conv2D): %s must be in [%d, %d], got (%d, %d)", layer, field, min,
                        CNN_CONV_MAX_WINDOW, v[0], v[1]);
    return CNN_OK;
}

static cnn_status cnn_layer_conv2d_create(cnn_layer **out, const cnn_layer_spec *spec,
                                          const char *name)
{
    *out = NULL;
    cnn_conv2d_config k = spec->u.conv2d;
    if (!k.strides[0] && !k.strides[1])
        k.strides[0] = k.strides[1] = 1;
    if (!k.dilation_rate[0] && !k.dilation_rate[1])
        k.dilation_rate[0] = k.dilation_rate[1] = 1;
    if (k.filters < 1)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (Conv2D): filters must be >= 1, got %d",
                        name, k.filters);
    cnn_status st;
    if ((st = check_pair(name, "kernel_size", k.kernel_size, 1))
        || (st = check_pair(name, "strides", k.strides, 1))
        || (st = check_pair(name, "dilation_rate", k.dilation_rate, 1)))
        return st;
    if ((k.strides[0] > 1 || k.strides[1] > 1)
        && (k.dilation_rate[0] > 1 || k.dilation_rate[1] > 1))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "%s (Conv2D): strides > 1 cannot be combined with dilation_rate > 1"
                        " (as in Keras)",
                        name);
    if (k.padding != CNN_PADDING_VALID && k.padding != CNN_PADDING_SAME)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (Conv2D): padding must be valid or same",
                        name);
    if ((unsigned)k.activation >= CNN_ACTIVATION_COUNT)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "%s (Conv2D): unknown activation %d", name,
                        (int)k.activation);
    cnn_layer *l;
    if ((st = cnn_layer_alloc(&l, sizeof(conv2d_layer), &cnn_conv2d_ops, name)))
        return st;
    l->spec.kind = CNN_LAYER_CONV2D;
    l->spec.u.conv2d = k;
    l->activation = k.activation;
    *out = l;
    return CNN_OK;
}
