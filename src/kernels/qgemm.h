/* int8 matrix multiply with TFLite's output stage, the core of quantized
 * Conv2D (through im2col) and Dense:
 *
 *   acc[m, n] = sum_k (A[m, k] - a_zero) * B[k, n]          (int32)
 *   Y[m, n]   = cnn_q_requant(out, n, acc[m, n])            (int8)
 *
 * A (M x K, row stride lda) holds activations, int8 with zero point
 * a_zero; B (K x N) holds weights, int8 with zero point 0, stored as Keras
 * stores Dense (in, out) and Conv2D (kh, kw, in, out) kernels. K is at
 * most CNN_QGEMM_MAX_K, so |acc| < 2^31 and no kernel ever overflows
 * before the bias (which is added modulo 2^32, as docs/QUANTIZATION.md
 * specifies; integer sums modulo 2^32 do not depend on their order, which
 * is why every kernel below gives the reference's integers exactly).
 *
 * The fast kernels read B packed once (cnn_qpacked): ceil(N / 16) panels
 * of 16 columns, each ceil(K / 4) groups of 64 bytes, byte (c, t) of a
 * group being B[4g + t, 16p + c] (0 beyond K or N) - the operand layout
 * of AVX-512 VNNI's vpdpbusd, which sums four u8 x s8 products into each
 * int32 lane. vpdpbusd wants the activations unsigned, so they enter as
 * A + 128 (a flip of the sign bit) and the extra 128 * sum_k B[k, n] is
 * taken back with the zero-point correction:
 *   acc = sum (A + 128) B - (128 + a_zero) * colsum[n]
 * AVX2 has no such instruction (vpmaddubsw saturates its 16-bit pair
 * sums: 2 * 255 * 127 > 32767), so its kernel sign-extends both operands
 * to 16 bits and uses vpmaddwd, whose 32-bit pair sums cannot saturate. */
#ifndef CNN_KERNELS_QGEMM_H
#define CNN_KERNELS_QGEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "cnn.h"
#include "kernels/conv.h"
#include "kernels/quantize.h"

/* K * 255 * 127 < 2^31 */
#define CNN_QGEMM_MAX_K 65536

/* Instruction sets of the int8 kernels, chosen at run time. */
typedef enum cnn_qisa {
    CNN_QISA_AUTO = 0, /* the fastest this CPU runs */
    CNN_QISA_GENERIC,  /* portable C */
    CNN_QISA_AVX2,     /* vpmaddwd */
    CNN_QISA_VNNI,     /* AVX-512 VNNI vpdpbusd (with AVX-512 BW and VL) */
} cnn_qisa;
bool cnn_qisa_supported(cnn_qisa isa);
/* AUTO -> the fastest supported; an unsupported one -> GENERIC. */
cnn_qisa cnn_qisa_resolve(cnn_qisa want);
/* "auto", "generic", "avx2", "vnni". */
const char *cnn_qisa_name(cnn_qisa isa);

/* The reference: the formula above as plain loops over unpacked B. */
void cnn_qgemm_ref(int64_t M, int N, int K, const int8_t *A, int64_t lda, int32_t a_zero,
                   const int8_t *B, const cnn_qoutput *out, int8_t *Y, int64_t ldy);

/* B packed for the fast kernels, with its column sums. */
typedef struct cnn_qpacked {
    int K, N;
    int groups, panels; /* ceil(K / 4), ceil(N / 16) */
    int8_t *data;       /* panels x groups x 64 bytes, 64-byte aligned */
    int32_t *colsum;    /* panels * 16 entries, 0 beyond N */
    /* Optional (cnn_qpacked_add_rows): the same Conv2D kernel with each of
     * its row_kh window rows (row_width = kw * c taps) padded with zero
     * weights to a multiple of 4, for cnn_qconv over few channels. */
    struct cnn_qpacked *rows;
    int row_kh, row_width;
} cnn_qpacked;

/* Packs B (K x N). CNN_ERR_INVALID_ARGUMENT for K outside
 * [1, CNN_QGEMM_MAX_K] or N < 1, CNN_ERR_NO_MEMORY. Free with
 * cnn_qpacked_free. */
cnn_status cnn_qpacked_create(cnn_qpacked **out, const int8_t *B, int K, int N);
void cnn_qpacked_free(cnn_qpacked *p);

/* Adds p->rows for a Conv2D kernel B (kh x kwc x N, kwc = kw * c, the
 * layout p packs): with it, cnn_qconv on AVX-512 VNNI reads a window row
 * of a convolution whose c is not a multiple of 4 (the first layer's 1 or
 * 3 channels) straight from the input, with no im2col, when kwc <= 64 and
 * there is no column dilation. CNN_ERR_INVALID_ARGUMENT when kh * kwc is
 * not p->K or kwc > 64, CNN_ERR_NO_MEMORY. Freed with p. */
cnn_status cnn_qpacked_add_rows(cnn_qpacked *p, const int8_t *B, int kh, int kwc);

/* The fast path on one thread (callers split M between threads). */
void cnn_qgemm(cnn_qisa isa, int64_t M, const int8_t *A, int64_t lda, int32_t a_zero,
               const cnn_qpacked *B, const cnn_qoutput *out, int8_t *Y, int64_t ldy);

/* cnn_qgemm for A whose rows may be read up to the next multiple of 4
 * bytes past K (lda >= that; those bytes meet zero weights, so any values
 * do): the im2col rows. Spares the kernels the partial last group's byte-
 * wise gather. */
void cnn_qgemm_padded(cnn_qisa isa, int64_t M, const int8_t *A, int64_t lda, int32_t a_zero,
                      const cnn_qpacked *B, const cnn_qoutput *out, int8_t *Y, int64_t ldy);

/* K rounded up to a multiple of 4: the row stride of cnn_qconv's im2col. */
static inline int64_t cnn_qconv_col_stride(int K) { return ((int64_t)K + 3) / 4 * 4; }

/* ---- Convolution ------------------------------------------------------- */

/* cnn_im2col_rows for int8: taps in the padding get pad (the input's zero
 * point, so they stand for real 0, as TFLite skips them). */
void cnn_qim2col_rows(const cnn_conv_geom *g, const int8_t *x, int8_t pad, int64_t m0, int64_t m1,
                      int8_t *col);

/* Reference Conv2D: each output pixel m in [m0, m1) sums its in-bounds
 * taps directly (no im2col), kernel (kh, kw, c, N) int8.
 * y: (m1 - m0, N), row 0 being pixel m0. */
void cnn_qconv_ref(const cnn_conv_geom *g, const int8_t *x, int32_t x_zero, const int8_t *kernel,
                   int N, const cnn_qoutput *out, int64_t m0, int64_t m1, int8_t *y);

/* Taps of the largest window cnn_qconv_implicit takes (its pointer table
 * lives on the stack). */
#define CNN_QCONV_MAX_TAPS 64

/* Conv2D without im2col on AVX-512 VNNI, in two cases: c % 4 == 0 and at
 * most CNN_QCONV_MAX_TAPS taps (each tap's channels read in place), or a
 * kernel with rows (cnn_qpacked_add_rows), no column dilation and at
 * most CNN_QCONV_MAX_TAPS window rows: each window row read in place.
 * scratch (scratch_bytes of it) stands for the padding: c bytes, or
 * 64 * (6 * kh + 1) for the window rows.
 * Returns false, doing nothing, when the CPU (or isa), the geometry or the
 * scratch does not allow it. Same bytes as cnn_qconv_ref. y: (m1 - m0, N). */
bool cnn_qconv_implicit(cnn_qisa isa, const cnn_conv_geom *g, const int8_t *x, int32_t x_zero,
                        const cnn_qpacked *kernel, const cnn_qoutput *out, int64_t m0,
                        int64_t m1, int8_t *scratch, int64_t scratch_bytes, int8_t *y);

/* The fast Conv2D: im2col of chunk pixels at a time into col (chunk *
 * cnn_qconv_col_stride(K) bytes, K = kh * kw * c), then cnn_qgemm_padded; a 1x1, stride-1, unpadded
 * convolution reads x in place, and cnn_qconv_implicit's cases skip
 * im2col. */
void cnn_qconv(cnn_qisa isa, const cnn_conv_geom *g, const int8_t *x, int32_t x_zero,
               const cnn_qpacked *kernel, const cnn_qoutput *out, int64_t m0, int64_t m1,
               int8_t *col, int64_t chunk, int8_t *y);

#endif
