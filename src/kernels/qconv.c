/* int8 Conv2D (kernels/qgemm.h): im2col with the input's zero point in the
 * padding, the direct reference, and the chunked im2col + GEMM driver. The
 * geometry (pixel numbering, tap order, padding) is kernels/conv.h's. */
#include <string.h>

#include "kernels/qgemm.h"

#if defined(__x86_64__) || defined(__i386__)
#define QCONV_X86 1
#include <immintrin.h>

#include "kernels/qrequant_avx512.h"
#endif

/* Copies n bytes: short runs (few channels, narrow windows: 5 bytes for a
 * 5x5 window over one channel) as two overlapping fixed-size moves, which
 * beat both a byte loop and a memcpy call there. */
static inline void copy_bytes(int8_t *dst, const int8_t *src, int n)
{
    if (n >= 16) {
        if (n > 32) {
            memcpy(dst, src, (size_t)n);
            return;
        }
        int8_t head[16], tail[16];
        memcpy(head, src, 16);
        memcpy(tail, src + n - 16, 16);
        memcpy(dst, head, 16);
        memcpy(dst + n - 16, tail, 16);
    } else if (n >= 8) {
        uint64_t head, tail;
        memcpy(&head, src, 8);
        memcpy(&tail, src + n - 8, 8);
        memcpy(dst, &head, 8);
        memcpy(dst + n - 8, &tail, 8);
    } else if (n >= 4) {
        uint32_t head, tail;
        memcpy(&head, src, 4);
        memcpy(&tail, src + n - 4, 4);
        memcpy(dst, &head, 4);
        memcpy(dst + n - 4, &tail, 4);
    } else {
        for (int i = 0; i < n; i++)
            dst[i] = src[i];
    }
}

/* Rows ldc bytes apart; the bytes from K to ldc are set to 0 (they meet
 * zero weights in cnn_qgemm_padded: any initialized value would do). */
static void qim2col_generic(const cnn_conv_geom *g, const int8_t *x, int8_t pad, int64_t m0,
                            int64_t m1, int8_t *col, int64_t ldc)
{
    const int C = g->c, K = g->kh * g->kw * C;
    const int64_t plane = (int64_t)g->oh * g->ow;
    if (m0 >= m1)
        return;
    /* pixel m0's (image, row, column), then stepped: no division per row */
    int64_t n = m0 / plane;
    int rest = (int)(m0 - n * plane), oy = rest / g->ow, ox = rest % g->ow;
    for (int64_t m = m0; m < m1; m++) {
        const int8_t *xn = x + n * (int64_t)g->h * g->w * C;
        int8_t *row = col + (m - m0) * ldc;
        for (int i = K; i < ldc; i++)
            row[i] = 0;
        const int ix0 = ox * g->sw - g->pad_left;
        for (int ky = 0; ky < g->kh; ky++, row += g->kw * C) {
            int iy = oy * g->sh - g->pad_top + ky * g->dh;
            if (iy < 0 || iy >= g->h) {
                memset(row, pad, (size_t)g->kw * C);
                continue;
            }
            const int8_t *src = xn + (int64_t)iy * g->w * C;
            if (g->dw == 1 && ix0 >= 0 && ix0 + g->kw <= g->w) {
                copy_bytes(row, src + (int64_t)ix0 * C, g->kw * C);
                continue;
            }
            for (int kx = 0; kx < g->kw; kx++) {
                int ix = ix0 + kx * g->dw;
                if (ix < 0 || ix >= g->w)
                    memset(row + kx * C, pad, (size_t)C);
                else
                    copy_bytes(row + kx * C, src + (int64_t)ix * C, C);
            }
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

void cnn_qim2col_rows(const cnn_conv_geom *g, const int8_t *x, int8_t pad, int64_t m0, int64_t m1,
                      int8_t *col)
{
    qim2col_generic(g, x, pad, m0, m1, col, (int64_t)g->kh * g->kw * g->c);
}

#ifdef QCONV_X86
/* qim2col_generic for windows whose rows are at most 64 bytes (kw * c <=
 * 64, no column dilation: the first convolution of most networks, one to
 * three channels) with AVX-512 byte masks: each window row is one masked
 * load and store, where the generic copy of 3 or 5 bytes ran byte by byte;
 * at the borders the row is first filled with pad, then its in-bounds
 * part copied over it. Masked-off bytes are neither read nor written. */
CNN_QAVX512_TARGET static void qim2col_avx512(const cnn_conv_geom *g, const int8_t *x, int8_t pad,
                                              int64_t m0, int64_t m1, int8_t *col, int64_t ldc)
{
    const int C = g->c, K = g->kh * g->kw * C, RW = g->kw * C;
    const int64_t plane = (int64_t)g->oh * g->ow;
    const __mmask64 full = RW == 64 ? ~(__mmask64)0 : (((__mmask64)1 << RW) - 1);
    const __m512i padv = _mm512_set1_epi8(pad);
    const int8_t *const end = col + (m1 - m0) * ldc;
    int64_t n = m0 / plane;
    int rest = (int)(m0 - n * plane), oy = rest / g->ow, ox = rest % g->ow;
    for (int64_t m = m0; m < m1; m++) {
        const int8_t *xn = x + n * (int64_t)g->h * g->w * C;
        int8_t *row = col + (m - m0) * ldc;
        if (ldc > K) { /* the bytes past K meet zero weights; they only need to be
                        * initialized: a zero word first, which the window's bytes (and the
                        * plain stores' spill) may overwrite */
            const uint32_t zero = 0;
            memcpy(row + ldc - 4, &zero, 4);
        }
        const int ix0 = ox * g->sw - g->pad_left;
        const int lo = ix0 < 0 ? -ix0 : 0, hi = ix0 + g->kw > g->w ? g->w - ix0 : g->kw;
        for (int ky = 0; ky < g->kh; ky++, row += RW) {
            int iy = oy * g->sh - g->pad_top + ky * g->dh;
            if (iy < 0 || iy >= g->h || lo >= hi) {
                _mm512_mask_storeu_epi8(row, full, padv);
                continue;
            }
            const int8_t *src = xn + ((int64_t)iy * g->w + ix0 + lo) * C;
            if (lo == 0 && hi == g->kw) {
                __m512i v = _mm512_maskz_loadu_epi8(full, src);
                if (RW <= 16 && row + 16 <= end) /* plain: later bytes overwrite the rest */
                    _mm_storeu_si128((__m128i *)row, _mm512_castsi512_si128(v));
                else
                    _mm512_mask_storeu_epi8(row, full, v);
                continue;
            }
            int nb = (hi - lo) * C;
            __mmask64 part = nb == 64 ? ~(__mmask64)0 : (((__mmask64)1 << nb) - 1);
            _mm512_mask_storeu_epi8(row, full, padv);
            _mm512_mask_storeu_epi8(row + lo * C, part, _mm512_maskz_loadu_epi8(part, src));
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
#endif

/* The im2col the fast Conv2D uses: the AVX-512 one where it applies. */
static void qim2col_fast(cnn_qisa isa, const cnn_conv_geom *g, const int8_t *x, int8_t pad,
                         int64_t m0, int64_t m1, int8_t *col, int64_t ldc)
{
#ifdef QCONV_X86
    if (m0 < m1 && isa == CNN_QISA_VNNI && g->dw == 1 && g->kw * g->c <= 64) {
        qim2col_avx512(g, x, pad, m0, m1, col, ldc);
        return;
    }
#else
    (void)isa;
#endif
    qim2col_generic(g, x, pad, m0, m1, col, ldc);
}

void cnn_qconv_ref(const cnn_conv_geom *g, const int8_t *x, int32_t x_zero, const int8_t *kernel,
                   int N, const cnn_qoutput *out, int64_t m0, int64_t m1, int8_t *y)
{
    const int C = g->c;
    const int64_t plane = (int64_t)g->oh * g->ow;
    for (int64_t m = m0; m < m1; m++) {
        int64_t n = m / plane;
        int rest = (int)(m - n * plane), oy = rest / g->ow, ox = rest % g->ow;
        const int8_t *xn = x + n * (int64_t)g->h * g->w * C;
        for (int f = 0; f < N; f++) {
            int32_t acc = 0;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = oy * g->sh - g->pad_top + ky * g->dh;
                if (iy < 0 || iy >= g->h)
                    continue; /* a padding tap is real 0: it adds nothing */
                for (int kx = 0; kx < g->kw; kx++) {
                    int ix = ox * g->sw - g->pad_left + kx * g->dw;
                    if (ix < 0 || ix >= g->w)
                        continue;
                    const int8_t *px = xn + ((int64_t)iy * g->w + ix) * C;
                    const int8_t *kp = kernel + ((int64_t)(ky * g->kw + kx) * C) * N + f;
                    for (int c = 0; c < C; c++)
                        acc += ((int32_t)px[c] - x_zero) * kp[(int64_t)c * N];
                }
            }
            y[(m - m0) * N + f] = cnn_q_requant(out, f, acc);
        }
    }
}

void cnn_qconv(cnn_qisa isa, const cnn_conv_geom *g, const int8_t *x, int32_t x_zero,
               const cnn_qpacked *kernel, const cnn_qoutput *out, int64_t m0, int64_t m1,
               int8_t *col, int64_t chunk, int8_t *y)
{
    const int K = kernel->K, N = kernel->N;
    const cnn_qisa use = cnn_qisa_resolve(isa);
    const int64_t ldc = cnn_qconv_col_stride(K);
    const bool pointwise = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 &&
                           g->pad_top == 0 && g->pad_left == 0 && g->oh == g->h && g->ow == g->w;
    if (pointwise) { /* the input rows are the GEMM's rows */
        cnn_qgemm(isa, m1 - m0, x + m0 * K, K, x_zero, kernel, out, y, N);
        return;
    }
    if (cnn_qconv_implicit(isa, g, x, x_zero, kernel, out, m0, m1, col, chunk * ldc, y))
        return;
    for (int64_t m = m0; m < m1; m += chunk) {
        int64_t rows = m1 - m < chunk ? m1 - m : chunk;
        qim2col_fast(use, g, x, (int8_t)x_zero, m, m + rows, col, ldc);
        cnn_qgemm_padded(use, rows, col, ldc, x_zero, kernel, out, y + (m - m0) * N, N);
    }
}
