#include "kernels/conv_direct.h"

#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

/* The geometry as the bodies use it, in floats of the padded block. */
typedef struct {
    int kh, kw, c, f;   /* kernel rows, columns, input channels, filters */
    int oh, ow, sh;     /* output rows, columns, row stride */
    int pw;             /* padded columns */
    int64_t xs;         /* from one output column's taps to the next: sw * c */
    int64_t row_step;   /* from kernel row ky to ky + 1: dh * pw * c */
    int64_t col_step;   /* from kernel column kx to kx + 1: dw * c */
    int64_t sample;     /* one padded sample */
} direct_shape;

static void padded_size(const cnn_conv_geom *g, int64_t *ph, int64_t *pw)
{
    *ph = (int64_t)(g->oh - 1) * g->sh + (int64_t)(g->kh - 1) * g->dh + 1;
    *pw = (int64_t)(g->ow - 1) * g->sw + (int64_t)(g->kw - 1) * g->dw + 1;
}

int64_t cnn_conv_direct_sample_floats(const cnn_conv_geom *g)
{
    int64_t ph, pw;
    padded_size(g, &ph, &pw);
    return ph * pw * g->c;
}

static direct_shape shape_of(const cnn_conv_geom *g, int filters)
{
    int64_t ph, pw;
    padded_size(g, &ph, &pw);
    return (direct_shape){.kh = g->kh, .kw = g->kw, .c = g->c, .f = filters, .oh = g->oh,
                          .ow = g->ow, .sh = g->sh, .pw = (int)pw,
                          .xs = (int64_t)g->sw * g->c,
                          .row_step = (int64_t)g->dh * pw * g->c,
                          .col_step = (int64_t)g->dw * g->c, .sample = ph * pw * g->c};
}

/* Where tap t = (ky * kw + kx) * c + ci reads, from its pixel's corner. */
static inline int64_t direct_tap_offset(const direct_shape *d, int t)
{
    int ky = t / (d->kw * d->c), kx = t / d->c % d->kw, ci = t % d->c;
    return ky * d->row_step + kx * d->col_step + ci;
}

void cnn_conv_direct_pad(const cnn_conv_geom *g, const float *x, int64_t n0, int64_t count,
                         float *xp)
{
    int64_t ph, pw;
    padded_size(g, &ph, &pw);
    const int C = g->c;
    /* input rows and columns that land inside the padded block */
    const int64_t rows = g->h < ph - g->pad_top ? g->h : ph - g->pad_top;
    const int64_t cols = g->w < pw - g->pad_left ? g->w : pw - g->pad_left;
    for (int64_t s = 0; s < count; s++, xp += ph * pw * C) {
        memset(xp, 0, (size_t)(ph * pw * C) * sizeof(float));
        const float *xs = x + (n0 + s) * g->h * g->w * C;
        for (int64_t iy = 0; iy < rows; iy++)
            memcpy(xp + ((iy + g->pad_top) * pw + g->pad_left) * C, xs + iy * g->w * C,
                   (size_t)(cols * C) * sizeof(float));
    }
}

/* ---- The references ------------------------------------------------------------- */

void cnn_conv_direct_forward_naive(const cnn_conv_geom *g, int filters, const float *xp,
                                   const float *kernel, const float *bias, int64_t r0,
                                   int64_t r1, float *y)
{
    const direct_shape d = shape_of(g, filters);
    const int K = d.kh * d.kw * d.c, F = filters;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t s = r / d.oh;
        const int oy = (int)(r - s * d.oh);
        for (int ox = 0; ox < d.ow; ox++) {
            const float *x0 = xp + s * d.sample + (int64_t)oy * d.sh * d.pw * d.c + ox * d.xs;
            float *yp = y + ((r - r0) * d.ow + ox) * F;
            for (int f = 0; f < F; f++) {
                float acc = 0;
                for (int t = 0; t < K; t++)
                    acc += x0[direct_tap_offset(&d, t)] * kernel[(int64_t)t * F + f];
                yp[f] = bias ? acc + bias[f] : acc;
            }
        }
    }
}

void cnn_conv_direct_weights_naive(const cnn_conv_geom *g, int filters, const float *xp,
                                   const float *dy, int64_t count, int t0, int t1,
                                   float *dkernel, float *dbias)
{
    const direct_shape d = shape_of(g, filters);
    const int F = filters;
    const int64_t out = (int64_t)d.oh * d.ow * F;
    for (int64_t s = 0; s < count; s++) {
        for (int f = 0; dbias && f < F; f++) {
            float acc = 0;
            for (int64_t i = f; i < out; i += F)
                acc += dy[s * out + i];
            dbias[f] += acc;
        }
        for (int t = t0; t < t1; t++) {
            const int64_t off = direct_tap_offset(&d, t);
            for (int f = 0; f < F; f++) {
                float acc = 0;
                const float *dyp = dy + s * d.oh * d.ow * F + f;
                for (int oy = 0; oy < d.oh; oy++) {
                    const float *xrow = xp + s * d.sample + (int64_t)oy * d.sh * d.pw * d.c + off;
                    for (int ox = 0; ox < d.ow; ox++, dyp += F)
                        acc += xrow[ox * d.xs] * *dyp;
                }
                dkernel[(int64_t)t * F + f] += acc;
            }
        }
    }
}

/* ---- The fast versions ------------------------------------------------------------ */

/* Baseline (SSE2 / NEON), 4 floats: no fused multiply-add, partial
 * vectors through lane copies. */
#define CNN_VLOAD_4(p) (*(const cnn_vfu_4 *)(const void *)(p))
typedef int dmask_t_4;
static inline dmask_t_4 dmask_4(int n) { return n; }
static inline cnn_vf_4 dload_4(const float *p, int n)
{
    cnn_vf_4 v = {0};
    if (n >= 4)
        return CNN_VLOAD_4(p);
    for (int i = 0; i < n; i++)
        v[i] = p[i];
    return v;
}
static inline void dstore_4(float *p, cnn_vf_4 v, int n)
{
    if (n >= 4) {
        *(cnn_vfu_4 *)(void *)p = v;
        return;
    }
    for (int i = 0; i < n; i++)
        p[i] = v[i];
}
static inline cnn_vf_4 dset1_4(float s) { return (cnn_vf_4){s, s, s, s}; }
static inline cnn_vf_4 dfma_4(cnn_vf_4 a, cnn_vf_4 b, cnn_vf_4 c) { return a * b + c; }

#ifdef CNN_ISA_X86
#define AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline
typedef __m256i dmask_t_8;
AVX2 dmask_t_8 dmask_8(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
AVX2 cnn_vf_8 dload_8(const float *p, dmask_t_8 m) { return (cnn_vf_8)_mm256_maskload_ps(p, m); }
AVX2 void dstore_8(float *p, cnn_vf_8 v, dmask_t_8 m) { _mm256_maskstore_ps(p, m, (__m256)v); }
AVX2 cnn_vf_8 dset1_8(float s) { return (cnn_vf_8)_mm256_set1_ps(s); }
AVX2 cnn_vf_8 dfma_8(cnn_vf_8 a, cnn_vf_8 b, cnn_vf_8 c)
{
    return (cnn_vf_8)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
}
#undef AVX2

#define AVX512 __attribute__((target("avx512f"), always_inline)) static inline
typedef __mmask16 dmask_t_16;
AVX512 dmask_t_16 dmask_16(int n)
{
    return (__mmask16)(n >= 16 ? 0xFFFFu : n <= 0 ? 0u : (1u << n) - 1);
}
AVX512 cnn_vf_16 dload_16(const float *p, dmask_t_16 m)
{
    return (cnn_vf_16)_mm512_maskz_loadu_ps(m, p);
}
AVX512 void dstore_16(float *p, cnn_vf_16 v, dmask_t_16 m)
{
    _mm512_mask_storeu_ps(p, m, (__m512)v);
}
AVX512 cnn_vf_16 dset1_16(float s) { return (cnn_vf_16)_mm512_set1_ps(s); }
AVX512 cnn_vf_16 dfma_16(cnn_vf_16 a, cnn_vf_16 b, cnn_vf_16 c)
{
    return (cnn_vf_16)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
}
#undef AVX512
#endif

/* Register tiles: accumulators + kernel (or dy) vectors + a broadcast
 * within 16 registers (SSE, AVX2) or 32 (AVX-512). */
#define CNN_SIMD_W 4
#define DIRECT_BODY CNN_ISA_BODY
#define DIRECT_TILE1 12
#define DIRECT_TILE2 6
#include "kernels/conv_direct_simd.h"
#undef DIRECT_TILE1
#undef DIRECT_TILE2
#undef CNN_SIMD_W
#ifdef CNN_ISA_X86
#undef DIRECT_BODY
#define CNN_SIMD_W 8
#define DIRECT_BODY static inline __attribute__((always_inline, target("avx2,fma")))
#define DIRECT_TILE1 12
#define DIRECT_TILE2 6
#include "kernels/conv_direct_simd.h"
#undef DIRECT_TILE1
#undef DIRECT_TILE2
#undef CNN_SIMD_W
#undef DIRECT_BODY
#define CNN_SIMD_W 16
#define DIRECT_BODY static inline __attribute__((always_inline, target("avx512f")))
#define DIRECT_TILE1 12
#define DIRECT_TILE2 12
#include "kernels/conv_direct_simd.h"
#undef DIRECT_TILE1
#undef DIRECT_TILE2
#undef CNN_SIMD_W
#endif
#undef DIRECT_BODY

#define DIRECT_CLONES(name, params, args)                                                \
    static void name##_generic params { name##_body_4 args; }                           \
    __attribute__((target("avx2,fma"))) static void name##_avx2 params { name##_body_8 args; } \
    __attribute__((target("avx512f"))) static void name##_avx512 params { name##_body_16 args; }

/* The clone to run: AVX2 also needs FMA. */
static cnn_isa direct_isa(cnn_isa want)
{
    cnn_isa isa = cnn_isa_resolve(want);
#ifdef CNN_ISA_X86
    if (isa == CNN_ISA_AVX2 && !__builtin_cpu_supports("fma"))
        isa = CNN_ISA_GENERIC;
#endif
    return isa;
}

#ifdef CNN_ISA_X86
DIRECT_CLONES(forward,
              (const direct_shape *d, const float *xp, const float *kernel, const float *bias,
               int64_t r0, int64_t r1, float *y),
              (d, xp, kernel, bias, r0, r1, y))
DIRECT_CLONES(weights,
              (const direct_shape *d, const float *xp, const float *dy, int64_t count, int t0,
               int t1, float *dkernel, float *dbias),
              (d, xp, dy, count, t0, t1, dkernel, dbias))
#define DIRECT_CALL(isa, name, args)                                                     \
    do {                                                                                 \
        switch (direct_isa(isa)) {                                                       \
        case CNN_ISA_AVX512: name##_avx512 args; break;                                  \
        case CNN_ISA_AVX2: name##_avx2 args; break;                                      \
        default: name##_generic args; break;                                             \
        }                                                                                \
    } while (0)
#else
#define DIRECT_CALL(isa, name, args)                                                     \
    do {                                                                                 \
        (void)direct_isa(isa);                                                           \
        name##_body_4 args;                                                              \
    } while (0)
#endif

void cnn_conv_direct_forward(cnn_isa isa, const cnn_conv_geom *g, int filters, const float *xp,
                             const float *kernel, const float *bias, int64_t r0, int64_t r1,
                             float *y)
{
    const direct_shape d = shape_of(g, filters);
    DIRECT_CALL(isa, forward, (&d, xp, kernel, bias, r0, r1, y));
}

void cnn_conv_direct_weights(cnn_isa isa, const cnn_conv_geom *g, int filters,
                             const float *xp, const float *dy, int64_t count, int t0, int t1,
                             float *dkernel, float *dbias)
{
    const direct_shape d = shape_of(g, filters);
    if (t0 >= t1) {
        /* no tap to ride along with: the bias alone, the same sums */
        cnn_conv_direct_weights_naive(g, filters, xp, dy, count, 0, 0, dkernel, dbias);
        return;
    }
    DIRECT_CALL(isa, weights, (&d, xp, dy, count, t0, t1, dkernel, dbias));
}
