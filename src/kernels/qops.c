/* int8 depthwise convolution, pooling and Add (kernels/qops.h). */
#include "kernels/qops.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define QOPS_X86 1
#include <immintrin.h>

#include "kernels/qrequant_avx512.h"
#endif

typedef struct {
    int64_t n;
    int oy, ox;
} qpixel;

static qpixel qpixel_of(const cnn_conv_geom *g, int64_t m)
{
    int64_t plane = (int64_t)g->oh * g->ow, n = m / plane;
    int rest = (int)(m - n * plane);
    return (qpixel){n, rest / g->ow, rest % g->ow};
}

void cnn_qdepthwise_ref(const cnn_conv_geom *g, int mult, const int8_t *x, int32_t x_zero,
                        const int8_t *kernel, const cnn_qoutput *out, int64_t m0, int64_t m1,
                        int8_t *y)
{
    const int C = g->c, CO = C * mult;
    for (int64_t m = m0; m < m1; m++) {
        qpixel p = qpixel_of(g, m);
        const int8_t *xn = x + p.n * (int64_t)g->h * g->w * C;
        for (int o = 0; o < CO; o++) {
            int c = o / mult;
            int32_t acc = 0;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = p.oy * g->sh - g->pad_top + ky * g->dh;
                if (iy < 0 || iy >= g->h)
                    continue;
                for (int kx = 0; kx < g->kw; kx++) {
                    int ix = p.ox * g->sw - g->pad_left + kx * g->dw;
                    if (ix < 0 || ix >= g->w)
                        continue;
                    int32_t xv = xn[((int64_t)iy * g->w + ix) * C + c];
                    acc += (xv - x_zero) * kernel[(int64_t)(ky * g->kw + kx) * CO + o];
                }
            }
            y[(m - m0) * CO + o] = cnn_q_requant(out, o, acc);
        }
    }
}

/* The portable fast version: int32 sums for all channels, tap by tap. */
static void qdepthwise_generic(const cnn_conv_geom *g, int mult, const int8_t *x, int32_t x_zero,
                               const int8_t *kernel, const cnn_qoutput *out, int64_t m0,
                               int64_t m1, int32_t *acc, int8_t *y)
{
    const int C = g->c, CO = C * mult;
    for (int64_t m = m0; m < m1; m++) {
        qpixel p = qpixel_of(g, m);
        const int8_t *xn = x + p.n * (int64_t)g->h * g->w * C;
        memset(acc, 0, (size_t)CO * sizeof *acc);
        for (int ky = 0; ky < g->kh; ky++) {
            int iy = p.oy * g->sh - g->pad_top + ky * g->dh;
            if (iy < 0 || iy >= g->h)
                continue;
            for (int kx = 0; kx < g->kw; kx++) {
                int ix = p.ox * g->sw - g->pad_left + kx * g->dw;
                if (ix < 0 || ix >= g->w)
                    continue;
                const int8_t *px = xn + ((int64_t)iy * g->w + ix) * C;
                const int8_t *kp = kernel + (int64_t)(ky * g->kw + kx) * CO;
                for (int o = 0; o < CO; o++)
                    acc[o] += ((int32_t)px[o / mult] - x_zero) * kp[o];
            }
        }
        int8_t *yr = y + (m - m0) * CO;
        for (int o = 0; o < CO; o++)
            yr[o] = cnn_q_requant(out, o, acc[o]);
    }
}

#ifdef QOPS_X86
/* Multiplier 1, 16 channels per vector, channel blocks outermost so each
 * block's kernel taps (widened to int32) stay in registers over all the
 * pixels. A pixel whose window lies inside the image sums x * k over the
 * taps and takes the zero point off once, as x_zero * sum(k), folded into
 * the bias (modulo 2^32, like every sum here, so the same integers); a
 * border pixel sums (x - x_zero) * k over its in-bounds taps, as the
 * reference does. Pixel indices are stepped, not divided. */
enum { QDW_MAX_TAPS = 25 };

/* 8 channels: the 16 lanes hold pixels m and m + 1 (their outputs are
 * adjacent in y), the kernel and output stage repeated in both halves. A
 * pair whose two windows lie inside the image is summed as x * w with the
 * zero point folded into the bias, as below; other pixels go one at a
 * time on the low half, the reference's way. */
CNN_QAVX512_TARGET static void qdepthwise_avx512_c8(const cnn_conv_geom *g, const int8_t *x,
                                                    int32_t x_zero, const int8_t *kernel,
                                                    const cnn_qoutput *out, int64_t m0,
                                                    int64_t m1, const int64_t *off, int8_t *y)
{
    const int C = 8, taps = g->kh * g->kw;
    const int64_t plane = (int64_t)g->oh * g->ow, image = (int64_t)g->h * g->w * C;
    const __mmask16 low = 0x00FF;
    const __m512i zx = _mm512_set1_epi32(x_zero), zp = _mm512_set1_epi32(out->zero_point),
                  lo = _mm512_set1_epi32(out->lo), hi = _mm512_set1_epi32(out->hi);
    const int span_h = (g->kh - 1) * g->dh, span_w = (g->kw - 1) * g->dw;
    __m512i kv[QDW_MAX_TAPS], ksum = _mm512_setzero_si512();
    for (int t = 0; t < taps; t++) {
        __m128i k8 = _mm_loadl_epi64((const __m128i *)(kernel + (int64_t)t * C));
        kv[t] = _mm512_cvtepi8_epi32(_mm_unpacklo_epi64(k8, k8));
        ksum = _mm512_add_epi32(ksum, kv[t]);
    }
    __m256i b8 = out->bias ? _mm256_loadu_si256((const __m256i *)out->bias) : _mm256_setzero_si256();
    __m256i m8 = _mm256_loadu_si256((const __m256i *)out->multiplier);
    __m256i s8 = _mm256_loadu_si256((const __m256i *)out->shift);
    const __m512i bias = _mm512_inserti64x4(_mm512_castsi256_si512(b8), b8, 1);
    const __m512i mul = _mm512_inserti64x4(_mm512_castsi256_si512(m8), m8, 1);
    const __m512i sh = _mm512_inserti64x4(_mm512_castsi256_si512(s8), s8, 1);
    const __m512i inner = _mm512_sub_epi32(bias, _mm512_mullo_epi32(zx, ksum));
    int64_t n = m0 / plane;
    int rest = (int)(m0 - n * plane), oy = rest / g->ow, ox = rest % g->ow;
    for (int64_t m = m0; m < m1;) {
        const int iy0 = oy * g->sh - g->pad_top, ix0 = ox * g->sw - g->pad_left;
        const int8_t *xn = x + n * image;
        /* the pair (m, m + 1) on one image row, both windows inside */
        if (m + 1 < m1 && ox + 1 < g->ow && iy0 >= 0 && iy0 + span_h < g->h && ix0 >= 0 &&
            ix0 + g->sw + span_w < g->w) {
            const int8_t *p0 = xn + ((int64_t)iy0 * g->w + ix0) * C, *p1 = p0 + g->sw * C;
            __m512i acc = inner;
            for (int t = 0; t < taps; t++) {
                __m128i v = _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(p0 + off[t])),
                                               _mm_loadl_epi64((const __m128i *)(p1 + off[t])));
                acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(_mm512_cvtepi8_epi32(v), kv[t]));
            }
            _mm_storeu_si128((__m128i *)(y + (m - m0) * C),
                             cnn_qavx512_requant(acc, mul, sh, zp, lo, hi));
            m += 2;
            ox += 2;
        } else {
            __m512i acc = bias;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = iy0 + ky * g->dh;
                if (iy < 0 || iy >= g->h)
                    continue;
                for (int kx = 0; kx < g->kw; kx++) {
                    int ix = ix0 + kx * g->dw;
                    if (ix < 0 || ix >= g->w)
                        continue;
                    const int8_t *px = xn + ((int64_t)iy * g->w + ix) * C;
                    __m512i xv = _mm512_sub_epi32(
                        _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(low, px)), zx);
                    acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(xv, kv[ky * g->kw + kx]));
                }
            }
            __m128i q = cnn_qavx512_requant(acc, mul, sh, zp, lo, hi);
            _mm_storel_epi64((__m128i *)(y + (m - m0) * C), q);
            m += 1;
            ox += 1;
        }
        if (ox == g->ow) {
            ox = 0;
            if (++oy == g->oh) {
                oy = 0;
                n++;
            }
        }
    }
}

CNN_QAVX512_TARGET static void qdepthwise_avx512(const cnn_conv_geom *g, const int8_t *x,
                                                 int32_t x_zero, const int8_t *kernel,
                                                 const cnn_qoutput *out, int64_t m0, int64_t m1,
                                                 int8_t *y)
{
    const int C = g->c, taps = g->kh * g->kw;
    const int64_t plane = (int64_t)g->oh * g->ow, image = (int64_t)g->h * g->w * C;
    const __m512i zx = _mm512_set1_epi32(x_zero), zp = _mm512_set1_epi32(out->zero_point),
                  lo = _mm512_set1_epi32(out->lo), hi = _mm512_set1_epi32(out->hi);
    int64_t off[QDW_MAX_TAPS]; /* tap t's offset from the window's corner */
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++)
            off[ky * g->kw + kx] = ((int64_t)ky * g->dh * g->w + (int64_t)kx * g->dw) * C;
    const int span_h = (g->kh - 1) * g->dh, span_w = (g->kw - 1) * g->dw;
    if (C == 8) { /* two pixels per vector (MobileNet's first depthwise layer) */
        qdepthwise_avx512_c8(g, x, x_zero, kernel, out, m0, m1, off, y);
        return;
    }
    for (int c0 = 0; c0 < C; c0 += 16) {
        const bool whole = C - c0 >= 16;
        const __mmask16 k = (__mmask16)(whole ? 0xFFFFu : (1u << (C - c0)) - 1);
        __m512i kv[QDW_MAX_TAPS], ksum = _mm512_setzero_si512();
        for (int t = 0; t < taps; t++) {
            kv[t] = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, kernel + (int64_t)t * C + c0));
            ksum = _mm512_add_epi32(ksum, kv[t]);
        }
        const __m512i bias = out->bias ? _mm512_maskz_loadu_epi32(k, out->bias + c0)
                                       : _mm512_setzero_si512();
        const __m512i inner = _mm512_sub_epi32(bias, _mm512_mullo_epi32(zx, ksum));
        const __m512i mul = _mm512_maskz_loadu_epi32(k, out->multiplier + c0);
        const __m512i sh = _mm512_maskz_loadu_epi32(k, out->shift + c0);
        int64_t n = m0 / plane;
        int rest = (int)(m0 - n * plane), oy = rest / g->ow, ox = rest % g->ow;
        for (int64_t m = m0; m < m1; m++) {
            const int8_t *xn = x + n * image + c0;
            const int iy0 = oy * g->sh - g->pad_top, ix0 = ox * g->sw - g->pad_left;
            __m512i acc;
            if (iy0 >= 0 && iy0 + span_h < g->h && ix0 >= 0 && ix0 + span_w < g->w) {
                const int8_t *px = xn + ((int64_t)iy0 * g->w + ix0) * C;
                acc = inner;
                if (whole)
                    for (int t = 0; t < taps; t++)
                        acc = _mm512_add_epi32(
                            acc, _mm512_mullo_epi32(
                                     _mm512_cvtepi8_epi32(
                                         _mm_loadu_si128((const __m128i *)(px + off[t]))),
                                     kv[t]));
                else
                    for (int t = 0; t < taps; t++)
                        acc = _mm512_add_epi32(
                            acc, _mm512_mullo_epi32(
                                     _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, px + off[t])),
                                     kv[t]));
            } else {
                acc = bias;
                for (int ky = 0; ky < g->kh; ky++) {
                    int iy = iy0 + ky * g->dh;
                    if (iy < 0 || iy >= g->h)
                        continue;
                    for (int kx = 0; kx < g->kw; kx++) {
                        int ix = ix0 + kx * g->dw;
                        if (ix < 0 || ix >= g->w)
                            continue;
                        const int8_t *px = xn + ((int64_t)iy * g->w + ix) * C;
                        __m512i xv =
                            _mm512_sub_epi32(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, px)), zx);
                        acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(xv, kv[ky * g->kw + kx]));
                    }
                }
            }
            __m128i q = cnn_qavx512_requant(acc, mul, sh, zp, lo, hi);
            if (whole)
                _mm_storeu_si128((__m128i *)(y + (m - m0) * C + c0), q);
            else
                _mm_mask_storeu_epi8(y + (m - m0) * C + c0, k, q);
            if (++ox == g->ow) {
                ox = 0;
                if (++oy == g->oh) {
                    oy = 0;
                    n++;
                }
            }
        }
    }
}

/* Multiplier 1, 8 channels per vector, the scalar output stage. */
__attribute__((target("avx2"))) static void
qdepthwise_avx2(const cnn_conv_geom *g, const int8_t *x, int32_t x_zero, const int8_t *kernel,
                const cnn_qoutput *out, int64_t m0, int64_t m1, int32_t *acc, int8_t *y)
{
    const int C = g->c, C8 = C / 8 * 8;
    const __m256i zx = _mm256_set1_epi32(x_zero);
    for (int64_t m = m0; m < m1; m++) {
        qpixel p = qpixel_of(g, m);
        const int8_t *xn = x + p.n * (int64_t)g->h * g->w * C;
        for (int c0 = 0; c0 < C8; c0 += 8) {
            __m256i s = _mm256_setzero_si256();
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = p.oy * g->sh - g->pad_top + ky * g->dh;
                if (iy < 0 || iy >= g->h)
                    continue;
                for (int kx = 0; kx < g->kw; kx++) {
                    int ix = p.ox * g->sw - g->pad_left + kx * g->dw;
                    if (ix < 0 || ix >= g->w)
                        continue;
                    const int8_t *px = xn + ((int64_t)iy * g->w + ix) * C + c0;
                    const int8_t *kp = kernel + (int64_t)(ky * g->kw + kx) * C + c0;
                    __m256i xv = _mm256_sub_epi32(
                        _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)px)), zx);
                    __m256i kv = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)kp));
                    s = _mm256_add_epi32(s, _mm256_mullo_epi32(xv, kv));
                }
            }
            _mm256_storeu_si256((__m256i *)(acc + c0), s);
        }
        for (int c = C8; c < C; c++) { /* the tail channels, scalar */
            int32_t t = 0;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = p.oy * g->sh - g->pad_top + ky * g->dh;
                if (iy < 0 || iy >= g->h)
                    continue;
                for (int kx = 0; kx < g->kw; kx++) {
                    int ix = p.ox * g->sw - g->pad_left + kx * g->dw;
                    if (ix >= 0 && ix < g->w)
                        t += ((int32_t)xn[((int64_t)iy * g->w + ix) * C + c] - x_zero) *
                             kernel[(int64_t)(ky * g->kw + kx) * C + c];
                }
            }
            acc[c] = t;
        }
        int8_t *yr = y + (m - m0) * C;
        for (int c = 0; c < C; c++)
            yr[c] = cnn_q_requant(out, c, acc[c]);
    }
}
#endif

void cnn_qdepthwise(cnn_qisa isa, const cnn_conv_geom *g, int mult, const int8_t *x,
                    int32_t x_zero, const int8_t *kernel, const cnn_qoutput *out, int64_t m0,
                    int64_t m1, int32_t *acc, int8_t *y)
{
    cnn_qisa use = mult == 1 ? cnn_qisa_resolve(isa) : CNN_QISA_GENERIC;
#ifdef QOPS_X86
    if (use == CNN_QISA_VNNI && g->kh * g->kw <= QDW_MAX_TAPS) {
        qdepthwise_avx512(g, x, x_zero, kernel, out, m0, m1, y);
        return;
    }
    if (use == CNN_QISA_AVX2) {
        qdepthwise_avx2(g, x, x_zero, kernel, out, m0, m1, acc, y);
        return;
    }
#endif
    (void)use;
    qdepthwise_generic(g, mult, x, x_zero, kernel, out, m0, m1, acc, y);
}

/* Pooling windows: the in-bounds taps of output pixel p, channel c. */
#define QPOOL_TAPS(g, p, body)                                               \
    for (int ky = 0; ky < (g)->kh; ky++) {                                   \
        int iy = (p).oy * (g)->sh - (g)->pad_top + ky;                       \
        if (iy < 0 || iy >= (g)->h)                                          \
            continue;                                                        \
        for (int kx = 0; kx < (g)->kw; kx++) {                               \
            int ix = (p).ox * (g)->sw - (g)->pad_left + kx;                  \
            if (ix < 0 || ix >= (g)->w)                                      \
                continue;                                                    \
            int32_t v = xn[((int64_t)iy * (g)->w + ix) * (g)->c + c];         \
            body;                                                            \
        }                                                                    \
    }

void cnn_qmaxpool_ref(const cnn_conv_geom *g, const int8_t *x, int32_t lo, int32_t hi,
                      int64_t m0, int64_t m1, int8_t *y)
{
    for (int64_t m = m0; m < m1; m++) {
        qpixel p = qpixel_of(g, m);
        const int8_t *xn = x + p.n * (int64_t)g->h * g->w * g->c;
        for (int c = 0; c < g->c; c++) {
            int32_t best = -128;
            QPOOL_TAPS(g, p, if (v > best) best = v)
            y[(m - m0) * g->c + c] = (int8_t)cnn_q_clamp(best, lo, hi);
        }
    }
}

/* The fast max pooling: the output row is the running maximum over the
 * window's in-bounds input rows, W channels per vector (W = 1: plain C). */
#define QMAXPOOL_BODY(W, VT, LOAD, STORE, MAX, SET1)                                     \
    for (int64_t m = m0; m < m1; m++) {                                                  \
        qpixel p = qpixel_of(g, m);                                                      \
        const int8_t *xn = x + p.n * (int64_t)g->h * g->w * g->c;                         \
        int8_t *yr = y + (m - m0) * g->c;                                                \
        int c = 0;                                                                       \
        for (; c + (W) <= g->c; c += (W)) {                                              \
            VT best = SET1(lo);                                                          \
            for (int ky = 0; ky < g->kh; ky++) {                                         \
                int iy = p.oy * g->sh - g->pad_top + ky;                                 \
                if (iy < 0 || iy >= g->h)                                                \
                    continue;                                                            \
                for (int kx = 0; kx < g->kw; kx++) {                                     \
                    int ix = p.ox * g->sw - g->pad_left + kx;                            \
                    if (ix >= 0 && ix < g->w)                                            \
                        best = MAX(best, LOAD(xn + ((int64_t)iy * g->w + ix) * g->c + c)); \
                }                                                                        \
            }                                                                            \
            STORE(yr + c, best); /* from lo up, min with hi: the clamp */             \
        }                                                                                \
        if (c < g->c) /* the tail channels */                                            \
            cnn_qmaxpool_ref_row(g, x, lo, hi, m, c, yr);                                \
    }

/* The reference for channels [c0, c) of output pixel m, into its row yr. */
static void cnn_qmaxpool_ref_row(const cnn_conv_geom *g, const int8_t *x, int32_t lo, int32_t hi,
                                 int64_t m, int c0, int8_t *yr)
{
    qpixel p = qpixel_of(g, m);
    const int8_t *xn = x + p.n * (int64_t)g->h * g->w * g->c;
    for (int c = c0; c < g->c; c++) {
        int32_t best = -128;
        QPOOL_TAPS(g, p, if (v > best) best = v)
        yr[c] = (int8_t)cnn_q_clamp(best, lo, hi);
    }
}

#ifdef QOPS_X86
#define QMP_LOAD32(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define QMP_STORE32(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), _mm256_min_epi8(v, vhi))
#define QMP_SET32(v) _mm256_set1_epi8((char)(v))
__attribute__((target("avx2"))) static void qmaxpool_avx2(const cnn_conv_geom *g, const int8_t *x,
                                                          int32_t lo, int32_t hi, int64_t m0,
                                                          int64_t m1, int8_t *y)
{
    const __m256i vhi = _mm256_set1_epi8((char)hi);
    QMAXPOOL_BODY(32, __m256i, QMP_LOAD32, QMP_STORE32, _mm256_max_epi8, QMP_SET32)
}

/* 64 channels per vector, then 32, the last block masked (masked stores
 * are slow on Zen 4: whole blocks take plain ones); pixel indices stepped,
 * not divided. */
#define QMP512_WINDOW(LOAD, VT, MAXOP, best)                                               \
    for (int ky = 0; ky < g->kh; ky++) {                                                   \
        int iy = iy0 + ky;                                                                 \
        if (iy < 0 || iy >= g->h)                                                          \
            continue;                                                                      \
        for (int kx = 0; kx < g->kw; kx++) {                                               \
            int ix = ix0 + kx;                                                             \
            if (ix >= 0 && ix < g->w)                                                      \
                best = MAXOP(best, LOAD(xn + ((int64_t)iy * g->w + ix) * g->c + c));       \
        }                                                                                  \
    }

CNN_QAVX512_TARGET static void qmaxpool_avx512(const cnn_conv_geom *g, const int8_t *x, int32_t lo,
                                               int32_t hi, int64_t m0, int64_t m1, int8_t *y)
{
    const __m512i vlo = _mm512_set1_epi8((char)lo), vhi = _mm512_set1_epi8((char)hi);
    const __m256i vlo32 = _mm256_set1_epi8((char)lo), vhi32 = _mm256_set1_epi8((char)hi);
    if (m0 >= m1)
        return;
    const int64_t plane = (int64_t)g->oh * g->ow;
    int64_t n = m0 / plane;
    int rest = (int)(m0 - n * plane), oy = rest / g->ow, ox = rest % g->ow;
    for (int64_t m = m0; m < m1; m++) {
        const int8_t *xn = x + n * (int64_t)g->h * g->w * g->c;
        const int iy0 = oy * g->sh - g->pad_top, ix0 = ox * g->sw - g->pad_left;
        int8_t *yr = y + (m - m0) * g->c;
        int c = 0;
        for (; c + 64 <= g->c; c += 64) {
            __m512i best = vlo; /* from lo up, min with hi: the clamp */
#define QMP512_LOAD(p) _mm512_loadu_si512((const void *)(p))
            QMP512_WINDOW(QMP512_LOAD, __m512i, _mm512_max_epi8, best)
            _mm512_storeu_si512((void *)(yr + c), _mm512_min_epi8(best, vhi));
        }
        for (; c + 32 <= g->c; c += 32) {
            __m256i best = vlo32;
#define QMP256_LOAD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
            QMP512_WINDOW(QMP256_LOAD, __m256i, _mm256_max_epi8, best)
            _mm256_storeu_si256((__m256i *)(void *)(yr + c), _mm256_min_epi8(best, vhi32));
        }
        if (c < g->c) {
            __mmask64 k = ((__mmask64)1 << (g->c - c)) - 1;
            __m512i best = vlo;
#define QMP512_MLOAD(p) _mm512_maskz_loadu_epi8(k, p)
            QMP512_WINDOW(QMP512_MLOAD, __m512i, _mm512_max_epi8, best)
            _mm512_mask_storeu_epi8(yr + c, k, _mm512_min_epi8(best, vhi));
        }
        if (++ox == g->ow) {
            ox = 0;
            if (++oy == g->oh) {
                oy = 0;
                n++;
            }
        }
    }
}
#undef QMP512_LOAD
#undef QMP256_LOAD
#undef QMP512_MLOAD
#undef QMP512_WINDOW
#endif

void cnn_qmaxpool(cnn_qisa isa, const cnn_conv_geom *g, const int8_t *x, int32_t lo, int32_t hi,
                  int64_t m0, int64_t m1, int8_t *y)
{
    switch (cnn_qisa_resolve(isa)) {
#ifdef QOPS_X86
    case CNN_QISA_VNNI: qmaxpool_avx512(g, x, lo, hi, m0, m1, y); return;
    case CNN_QISA_AVX2: qmaxpool_avx2(g, x, lo, hi, m0, m1, y); return;
#endif
    default: cnn_qmaxpool_ref(g, x, lo, hi, m0, m1, y); return;
    }
}

void cnn_qavgpool(const cnn_conv_geom *g, const int8_t *x, int32_t lo, int32_t hi, int64_t m0,
                  int64_t m1, int8_t *y)
{
    for (int64_t m = m0; m < m1; m++) {
        qpixel p = qpixel_of(g, m);
        const int8_t *xn = x + p.n * (int64_t)g->h * g->w * g->c;
        for (int c = 0; c < g->c; c++) {
            int32_t sum = 0, count = 0;
            QPOOL_TAPS(g, p, sum += v; count++)
            int32_t avg = count == 0 ? lo
                          : sum >= 0 ? (sum + count / 2) / count
                                     : (sum - count / 2) / count;
            y[(m - m0) * g->c + c] = (int8_t)cnn_q_clamp(avg, lo, hi);
        }
    }
}

void cnn_qadd_prepare(cnn_qparams a, cnn_qparams b, cnn_qparams y, cnn_qact act, cnn_qadd_spec *p)
{
    float twice_max = 2.0f * (a.scale > b.scale ? a.scale : b.scale);
    p->a_zero = a.zero_point;
    p->b_zero = b.zero_point;
    p->y_zero = y.zero_point;
    cnn_q_multiplier((double)a.scale / (double)twice_max, &p->a_mult, &p->a_shift);
    cnn_q_multiplier((double)b.scale / (double)twice_max, &p->b_mult, &p->b_shift);
    cnn_q_multiplier((double)twice_max / ((double)(1 << CNN_QADD_LEFT_SHIFT) * (double)y.scale),
                     &p->y_mult, &p->y_shift);
    cnn_q_activation_range(act, y, &p->lo, &p->hi);
}

void cnn_qadd_ref(const cnn_qadd_spec *p, const int8_t *a, const int8_t *b, int64_t n,
                  int8_t *y)
{
    for (int64_t i = 0; i < n; i++) {
        /* |q - zero| <= 255, so the shifted values stay below 2^28 */
        int32_t sa = ((int32_t)a[i] - p->a_zero) * (1 << CNN_QADD_LEFT_SHIFT);
        int32_t sb = ((int32_t)b[i] - p->b_zero) * (1 << CNN_QADD_LEFT_SHIFT);
        int32_t sum = cnn_q_mul(sa, p->a_mult, p->a_shift) + cnn_q_mul(sb, p->b_mult, p->b_shift);
        int64_t v = (int64_t)cnn_q_mul(sum, p->y_mult, p->y_shift) + p->y_zero;
        y[i] = (int8_t)(v < p->lo ? p->lo : v > p->hi ? p->hi : v);
    }
}

#ifdef QOPS_X86
/* 16 elements per vector, the same three multiplies. */
CNN_QAVX512_TARGET static void qadd_avx512(const cnn_qadd_spec *p, const int8_t *a,
                                           const int8_t *b, int64_t n, int8_t *y)
{
    const __m512i za = _mm512_set1_epi32(p->a_zero), zb = _mm512_set1_epi32(p->b_zero);
    const __m512i am = _mm512_set1_epi32(p->a_mult), as = _mm512_set1_epi32(p->a_shift);
    const __m512i bm = _mm512_set1_epi32(p->b_mult), bs = _mm512_set1_epi32(p->b_shift);
    const __m512i ym = _mm512_set1_epi32(p->y_mult), ys = _mm512_set1_epi32(p->y_shift);
    const __m512i zy = _mm512_set1_epi32(p->y_zero), lo = _mm512_set1_epi32(p->lo),
                  hi = _mm512_set1_epi32(p->hi);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = (__mmask16)(n - i >= 16 ? 0xFFFFu : (1u << (n - i)) - 1);
        __m512i va = _mm512_sub_epi32(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, a + i)), za);
        __m512i vb = _mm512_sub_epi32(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, b + i)), zb);
        va = cnn_qavx512_mul(_mm512_slli_epi32(va, CNN_QADD_LEFT_SHIFT), am, as);
        vb = cnn_qavx512_mul(_mm512_slli_epi32(vb, CNN_QADD_LEFT_SHIFT), bm, bs);
        __m128i q = cnn_qavx512_requant(_mm512_add_epi32(va, vb), ym, ys, zy, lo, hi);
        _mm_mask_storeu_epi8(y + i, k, q);
    }
}
#endif

void cnn_qadd(cnn_qisa isa, const cnn_qadd_spec *p, const int8_t *a, const int8_t *b, int64_t n,
              int8_t *y)
{
#ifdef QOPS_X86
    if (cnn_qisa_resolve(isa) == CNN_QISA_VNNI) {
        qadd_avx512(p, a, b, n, y);
        return;
    }
#endif
    (void)isa;
    cnn_qadd_ref(p, a, b, n, y);
}

void cnn_qconcat(int n, const int8_t *const *x, const int *channels, const int32_t *in_zero,
                 const int32_t *mult, const int32_t *shift, const bool *same, int32_t out_zero,
                 int64_t p0, int64_t p1, int8_t *y)
{
    for (int64_t p = p0; p < p1; p++) {
        for (int k = 0; k < n; k++) {
            const int8_t *src = x[k] + p * channels[k];
            if (same[k]) {
                memcpy(y, src, (size_t)channels[k]);
            } else {
                for (int c = 0; c < channels[k]; c++)
                    y[c] = cnn_q_requant_one(src[c], in_zero[k], mult[k], shift[k], out_zero);
            }
            y += channels[k];
        }
    }
}

void cnn_qzeropad(const cnn_conv_geom *g, const int pad[4], const int8_t *x, int8_t zero,
                  int64_t r0, int64_t r1, int8_t *y)
{
    const int64_t row = (int64_t)g->ow * g->c, in_row = (int64_t)g->w * g->c;
    for (int64_t r = r0; r < r1; r++, y += row) {
        int64_t n = r / g->oh;
        int oy = (int)(r - n * g->oh), iy = oy - pad[0];
        if (iy < 0 || iy >= g->h) {
            memset(y, zero, (size_t)row);
            continue;
        }
        memset(y, zero, (size_t)pad[2] * (size_t)g->c);
        memcpy(y + (int64_t)pad[2] * g->c, x + (n * g->h + iy) * in_row, (size_t)in_row);
        memset(y + (int64_t)pad[2] * g->c + in_row, zero, (size_t)pad[3] * (size_t)g->c);
    }
}

void cnn_qglobal_avg(const cnn_conv_geom *g, const int8_t *x, int32_t x_zero,
                     const cnn_qoutput *out, int64_t m0, int64_t m1, int8_t *y)
{
    const int64_t plane = (int64_t)g->h * g->w;
    for (int64_t m = m0; m < m1; m++) {
        const int8_t *xm = x + m * plane * g->c;
        for (int c = 0; c < g->c; c++) {
            /* at most 65536 * 65536 pixels of |x - zero| <= 255 would overflow;
             * the loader and the planner keep h * w <= 2^22 */
            int32_t acc = 0;
            for (int64_t p = 0; p < plane; p++)
                acc += (int32_t)xm[p * g->c + c] - x_zero;
            *y++ = cnn_q_requant(out, c, acc);
        }
    }
}
