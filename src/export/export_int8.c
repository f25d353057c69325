/* The int8 model as C: the quantizer's op list (quant/qmodel.h) as calls
 * of integer kernels that are the library's reference kernels written out
 * (kernels/quantize.h, qgemm.c's and qconv.c's _ref, qops.c), so the int8
 * outputs are the library's, bit for bit (docs/QUANTIZATION.md). Only the
 * final softmax is float, on the exporter's own exp. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "export/export.h"

/* gemmlowp's and TFLite's integer helpers, as kernels/quantize.h has them */
static const char piece_qmath[] =
    "/* ---- integer arithmetic: kernels/quantize.h of libcnn, docs/QUANTIZATION.md ---- */\n"
    "static int32_t q_srdhm(int32_t a, int32_t b)\n"
    "{\n"
    "    int64_t ab, nudge;\n"
    "    if (a == INT32_MIN && b == INT32_MIN)\n"
    "        return INT32_MAX;\n"
    "    ab = (int64_t)a * b;\n"
    "    nudge = ab >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30);\n"
    "    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));\n"
    "}\n"
    "\n"
    "static int32_t q_rdbpot(int32_t x, int exponent)\n"
    "{\n"
    "    int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);\n"
    "    int32_t remainder = x & mask;\n"
    "    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);\n"
    "    return (x >> exponent) + (remainder > threshold ? 1 : 0);\n"
    "}\n"
    "\n"
    "static int32_t q_mul(int32_t x, int32_t multiplier, int32_t shift)\n"
    "{\n"
    "    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;\n"
    "    int64_t shifted = (int64_t)x * ((int64_t)1 << left);\n"
    "    if (shifted > INT32_MAX)\n"
    "        shifted = INT32_MAX;\n"
    "    if (shifted < INT32_MIN)\n"
    "        shifted = INT32_MIN;\n"
    "    return q_rdbpot(q_srdhm((int32_t)shifted, multiplier), right);\n"
    "}\n"
    "\n"
    "/* the output stage: bias added modulo 2^32, requantized, clamped */\n"
    "static int8_t q_requant(int32_t acc, int32_t bias, int32_t mult, int32_t shift, int32_t zp,\n"
    "                        int32_t lo, int32_t hi)\n"
    "{\n"
    "    int64_t y;\n"
    "    acc = (int32_t)((uint32_t)acc + (uint32_t)bias);\n"
    "    y = (int64_t)q_mul(acc, mult, shift) + zp;\n"
    "    return (int8_t)(y < lo ? lo : y > hi ? hi : y);\n"
    "}\n"
    "\n";

static const char piece_qconv[] =
    "/* Conv2D (kernel (kh, kw, c, n)) or Dense (h = w = kh = kw = 1) */\n"
    "static void q_conv(const int8_t *x, int h, int w, int c, int32_t xz, const int8_t *k,\n"
    "                   int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl, int oh,\n"
    "                   int ow, int n, const int32_t *bias, const int32_t *mult,\n"
    "                   const int32_t *shift, int32_t zp, int32_t lo, int32_t hi, int8_t *y)\n"
    "{\n"
    "    int oy, ox, f, ky, kx, ci;\n"
    "    for (oy = 0; oy < oh; oy++)\n"
    "        for (ox = 0; ox < ow; ox++)\n"
    "            for (f = 0; f < n; f++) {\n"
    "                int32_t acc = 0;\n"
    "                for (ky = 0; ky < kh; ky++) {\n"
    "                    int iy = oy * sh - pt + ky * dh;\n"
    "                    if (iy < 0 || iy >= h)\n"
    "                        continue;\n"
    "                    for (kx = 0; kx < kw; kx++) {\n"
    "                        int ix = ox * sw - pl + kx * dw;\n"
    "                        const int8_t *px, *kp;\n"
    "                        if (ix < 0 || ix >= w)\n"
    "                            continue;\n"
    "                        px = x + ((long)iy * w + ix) * c;\n"
    "                        kp = k + ((long)(ky * kw + kx) * c) * n + f;\n"
    "                        for (ci = 0; ci < c; ci++)\n"
    "                            acc += ((int32_t)px[ci] - xz) * kp[(long)ci * n];\n"
    "                    }\n"
    "                }\n"
    "                *y++ = q_requant(acc, bias ? bias[f] : 0, mult[f], shift[f], zp, lo, hi);\n"
    "            }\n"
    "}\n"
    "\n";

static const char piece_qdepthwise[] =
    "/* DepthwiseConv2D: output channel o = ci * m + q, kernel (kh, kw, c * m) */\n"
    "static void q_depthwise(const int8_t *x, int h, int w, int c, int m, int32_t xz,\n"
    "                        const int8_t *k, int kh, int kw, int sh, int sw, int dh, int dw,\n"
    "                        int pt, int pl, int oh, int ow, const int32_t *bias,\n"
    "                        const int32_t *mult, const int32_t *shift, int32_t zp, int32_t lo,\n"
    "                        int32_t hi, int8_t *y)\n"
    "{\n"
    "    int oy, ox, o, ky, kx, co = c * m;\n"
    "    for (oy = 0; oy < oh; oy++)\n"
    "        for (ox = 0; ox < ow; ox++)\n"
    "            for (o = 0; o < co; o++) {\n"
    "                int32_t acc = 0;\n"
    "                for (ky = 0; ky < kh; ky++) {\n"
    "                    int iy = oy * sh - pt + ky * dh;\n"
    "                    if (iy < 0 || iy >= h)\n"
    "                        continue;\n"
    "                    for (kx = 0; kx < kw; kx++) {\n"
    "                        int ix = ox * sw - pl + kx * dw;\n"
    "                        if (ix < 0 || ix >= w)\n"
    "                            continue;\n"
    "                        acc += ((int32_t)x[((long)iy * w + ix) * c + o / m] - xz)\n"
    "                               * k[(long)(ky * kw + kx) * co + o];\n"
    "                    }\n"
    "                }\n"
    "                *y++ = q_requant(acc, bias ? bias[o] : 0, mult[o], shift[o], zp, lo, hi);\n"
    "            }\n"
    "}\n"
    "\n";

static const char piece_qpool[] =
    "/* MaxPooling2D / AveragePooling2D on the input's parameters: padding taps\n"
    "   ignored; the average rounded half away from zero */\n"
    "static void q_pool(const int8_t *x, int h, int w, int c, int kh, int kw, int sh, int sw,\n"
    "                   int pt, int pl, int oh, int ow, int is_max, int32_t lo, int32_t hi,\n"
    "                   int8_t *y)\n"
    "{\n"
    "    int oy, ox, ch, ky, kx;\n"
    "    for (oy = 0; oy < oh; oy++)\n"
    "        for (ox = 0; ox < ow; ox++)\n"
    "            for (ch = 0; ch < c; ch++) {\n"
    "                int32_t best = -128, sum = 0, count = 0, v;\n"
    "                for (ky = 0; ky < kh; ky++) {\n"
    "                    int iy = oy * sh - pt + ky;\n"
    "                    if (iy < 0 || iy >= h)\n"
    "                        continue;\n"
    "                    for (kx = 0; kx < kw; kx++) {\n"
    "                        int ix = ox * sw - pl + kx;\n"
    "                        if (ix < 0 || ix >= w)\n"
    "                            continue;\n"
    "                        v = x[((long)iy * w + ix) * c + ch];\n"
    "                        if (v > best)\n"
    "                            best = v;\n"
    "                        sum += v;\n"
    "                        count++;\n"
    "                    }\n"
    "                }\n"
    "                v = is_max ? best : count == 0 ? lo\n"
    "                    : sum >= 0 ? (sum + count / 2) / count : (sum - count / 2) / count;\n"
    "                *y++ = (int8_t)(v < lo ? lo : v > hi ? hi : v);\n"
    "            }\n"
    "}\n"
    "\n";

static const char piece_qclamp[] =
    "/* ReLU / ReLU6 on the input's parameters: a clamp */\n"
    "static void q_clamp(const int8_t *x, long n, int32_t lo, int32_t hi, int8_t *y)\n"
    "{\n"
    "    long i;\n"
    "    for (i = 0; i < n; i++)\n"
    "        y[i] = (int8_t)(x[i] < lo ? lo : x[i] > hi ? hi : x[i]);\n"
    "}\n"
    "\n";

static const char piece_qio[] =
    "/* q = clamp(round(x / scale) + zp), half away from zero, the division in\n"
    "   float (libcnn's cnn_q_quantize); NaN gives the zero point */\n"
    "static void q_quantize(const float *x, long n, float scale, int32_t zp, int8_t *q)\n"
    "{\n"
    "    long i;\n"
    "    for (i = 0; i < n; i++) {\n"
    "        float r = x[i] / scale;\n"
    "        int32_t v;\n"
    "        if (r != r) {\n"
    "            q[i] = (int8_t)zp;\n"
    "            continue;\n"
    "        }\n"
    "        r = r > 1000.0f ? 1000.0f : r < -1000.0f ? -1000.0f : r;\n"
    "        v = (int32_t)(r >= 0.0f ? (double)r + 0.5 : (double)r - 0.5) + zp;\n"
    "        q[i] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);\n"
    "    }\n"
    "}\n"
    "\n"
    "static void q_dequantize(const int8_t *q, long n, float scale, int32_t zp, float *x)\n"
    "{\n"
    "    long i;\n"
    "    for (i = 0; i < n; i++)\n"
    "        x[i] = scale * (float)((int32_t)q[i] - zp);\n"
    "}\n"
    "\n";

static const char piece_qadd[] =
    "/* Add, TFLite's ADD (libcnn's cnn_qadd_ref): both inputs rescaled with 20\n"
    "   bits of headroom, summed, requantized */\n"
    "static void q_add(const int8_t *a, const int8_t *b, long n, int32_t az, int32_t am,\n"
    "                  int32_t as, int32_t bz, int32_t bm, int32_t bs, int32_t yz, int32_t ym,\n"
    "                  int32_t ys, int32_t lo, int32_t hi, int8_t *y)\n"
    "{\n"
    "    long i;\n"
    "    for (i = 0; i < n; i++) {\n"
    "        int32_t sa = ((int32_t)a[i] - az) * ((int32_t)1 << 20);\n"
    "        int32_t sb = ((int32_t)b[i] - bz) * ((int32_t)1 << 20);\n"
    "        y[i] = q_requant(q_mul(sa, am, as) + q_mul(sb, bm, bs), 0, ym, ys, yz, lo, hi);\n"
    "    }\n"
    "}\n"
    "\n";

static const char piece_qconcat[] =
    "/* one input of a Concatenate on channels: its c channels of each of the\n"
    "   pixels to channels [at, at + c) of the output's total, copied when its\n"
    "   parameters are the output's, requantized (REQUANTIZE) otherwise */\n"
    "static void q_concat(const int8_t *x, long pixels, int c, int total, int at, int same,\n"
    "                     int32_t xz, int32_t mult, int32_t shift, int32_t yz, int8_t *y)\n"
    "{\n"
    "    long p;\n"
    "    int i;\n"
    "    for (p = 0; p < pixels; p++)\n"
    "        for (i = 0; i < c; i++)\n"
    "            y[p * total + at + i] = same ? x[p * c + i]\n"
    "                : q_requant((int32_t)x[p * c + i] - xz, 0, mult, shift, yz, -128, 127);\n"
    "}\n"
    "\n";

static const char piece_qpad[] =
    "/* ZeroPadding2D: the zero point around the map */\n"
    "static void q_pad(const int8_t *x, int h, int w, int c, int top, int left, int oh, int ow,\n"
    "                  int8_t zero, int8_t *y)\n"
    "{\n"
    "    long oy, ox, i;\n"
    "    for (oy = 0; oy < oh; oy++)\n"
    "        for (ox = 0; ox < ow; ox++)\n"
    "            for (i = 0; i < c; i++) {\n"
    "                long iy = oy - top, ix = ox - left;\n"
    "                *y++ = iy < 0 || iy >= h || ix < 0 || ix >= w ? zero\n"
    "                       : x[(iy * w + ix) * c + i];\n"
    "            }\n"
    "}\n"
    "\n";

static const char piece_qgavg[] =
    "/* GlobalAveragePooling2D, TFLite's MEAN: the sum over the pixels,\n"
    "   requantized per channel to its own parameters */\n"
    "static void q_global_avg(const int8_t *x, long plane, int c, int32_t xz,\n"
    "                         const int32_t *mult, const int32_t *shift, int32_t zp, int32_t lo,\n"
    "                         int32_t hi, int8_t *y)\n"
    "{\n"
    "    long p;\n"
    "    int i;\n"
    "    for (i = 0; i < c; i++) {\n"
    "        int32_t acc = 0;\n"
    "        for (p = 0; p < plane; p++)\n"
    "            acc += (int32_t)x[p * c + i] - xz;\n"
    "        y[i] = q_requant(acc, 0, mult[i], shift[i], zp, lo, hi);\n"
    "    }\n"
    "}\n"
    "\n";

static const char piece_qlut[] =
    "/* an elementwise activation as a 256-entry table */\n"
    "static void q_lut(const int8_t *x, long n, const int8_t *lut, int8_t *y)\n"
    "{\n"
    "    long i;\n"
    "    for (i = 0; i < n; i++)\n"
    "        y[i] = lut[x[i] + 128];\n"
    "}\n"
    "\n";

static void int32_array(export_text *t, const char *name, const int32_t *v, int64_t n)
{
    export_printf(t, "static const int32_t %s[%lld] = {", name, (long long)n);
    for (int64_t i = 0; i < n; i++)
        /* INT32_MIN has no literal of type int32_t: written as an expression */
        if (v[i] == INT32_MIN)
            export_printf(t, "%s(-2147483647 - 1)", i % 8 ? ", " : i ? ",\n    " : "\n    ");
        else
            export_printf(t, "%s%ld", i % 8 ? ", " : i ? ",\n    " : "\n    ", (long)v[i]);
    export_puts(t, "\n};\n");
}

/* The kinds the generated code has kernels for: every kind the quantizer
 * makes. A kind added there without a kernel here is refused by op, before
 * anything is written, not miscompiled. */
cnn_status export_int8_check(const cnn_qmodel *q)
{
    for (int k = 0; k < cnn_qmodel_op_count(q); k++) {
        const cnn_qop *op = cnn_qmodel_op(q, k);
        switch (op->kind) {
        case CNN_QOP_CONV:
        case CNN_QOP_DENSE:
        case CNN_QOP_DEPTHWISE:
        case CNN_QOP_MAXPOOL:
        case CNN_QOP_AVGPOOL:
        case CNN_QOP_CLAMP:
        case CNN_QOP_ADD:
        case CNN_QOP_CONCAT:
        case CNN_QOP_PAD:
        case CNN_QOP_LUT:
        case CNN_QOP_GLOBAL_AVG:
        case CNN_QOP_GLOBAL_MAX: break;
        default:
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "export: int8: op %d '%s' (%s) has no "
                                                      "exported int8 kernel yet",
                            k, cnn_qmodel_op_name(q, k), cnn_qmodel_op_type(q, k));
        }
    }
    return CNN_OK;
}

/* "arena + OFFSET" of value v: the quantizer's own memory plan (its
 * offsets per example; a value's bytes are reused after its last reader) */
static void at(const cnn_qmodel *q, int v, char *buf, size_t size)
{
    snprintf(buf, size, "arena + %lld", (long long)cnn_qmodel_value(q, v)->offset);
}

static bool emit_weights(cnn_qmodel *q, int k, const cnn_qop_info *op, export_text *weights,
                         int64_t *weight_bytes)
{
    int8_t *w = malloc((size_t)op->weight_count);
    if (!w)
        return false;
    cnn_qmodel_op_weights(q, k, w);
    char name[32];
    snprintf(name, sizeof name, "Q%d_weights", k);
    export_int8_array(weights, name, w, op->weight_count);
    free(w);
    snprintf(name, sizeof name, "Q%d_bias", k);
    int32_array(weights, name, op->bias, op->N);
    snprintf(name, sizeof name, "Q%d_multiplier", k);
    int32_array(weights, name, op->multiplier, op->N);
    snprintf(name, sizeof name, "Q%d_shift", k);
    int32_array(weights, name, op->shift, op->N);
    *weight_bytes += op->weight_count + 12 * (int64_t)op->N;
    return true;
}

cnn_status export_int8_ops(cnn_qmodel *q, export_text *weights, export_text *body,
                           int64_t *weight_bytes)
{
    const int nops = cnn_qmodel_op_count(q);
    *weight_bytes = 0;
    bool conv = false, dw = false, pool = false, clamp = false, add = false, concat = false,
         pad = false, gavg = false, lut = false;
    for (int k = 0; k < nops; k++) {
        cnn_qop_info op;
        cnn_qmodel_op_info(q, k, &op);
        const cnn_qop *full = cnn_qmodel_op(q, k);
        char x[48], y[48];
        at(q, full->inputs[0], x, sizeof x);
        at(q, full->output, y, sizeof y);
        export_printf(body, "    /* op %d: %s '%s' */\n", k, cnn_qmodel_op_type(q, k),
                      cnn_qmodel_op_name(q, k));
        if (op.weight_count > 0 && !emit_weights(q, k, &op, weights, weight_bytes))
            return cnn_fail(CNN_ERR_NO_MEMORY, "export: out of memory");
        const cnn_conv_geom *g = &op.g;
        switch (op.kind) {
        case CNN_QOP_CONV:
        case CNN_QOP_DENSE: {
            bool dense = op.kind == CNN_QOP_DENSE;
            export_printf(body,
                          "    q_conv(%s, %d, %d, %lld, %ld, Q%d_weights, %d, %d, %d, %d, %d, %d, "
                          "%d, %d, %d, %d, %d, Q%d_bias, Q%d_multiplier, Q%d_shift, %ld, %ld, "
                          "%ld, %s);\n",
                          x, dense ? 1 : g->h, dense ? 1 : g->w,
                          dense ? (long long)op.in_elems : (long long)g->c, (long)op.in.zero_point,
                          k, dense ? 1 : g->kh, dense ? 1 : g->kw, dense ? 1 : g->sh,
                          dense ? 1 : g->sw, dense ? 1 : g->dh, dense ? 1 : g->dw,
                          dense ? 0 : g->pad_top, dense ? 0 : g->pad_left, dense ? 1 : g->oh,
                          dense ? 1 : g->ow, op.N, k, k, k, (long)op.out.zero_point, (long)op.lo,
                          (long)op.hi, y);
            conv = true;
            break;
        }
        case CNN_QOP_DEPTHWISE:
            export_printf(body,
                          "    q_depthwise(%s, %d, %d, %d, %d, %ld, Q%d_weights, %d, %d, %d, %d, "
                          "%d, %d, %d, %d, %d, %d, Q%d_bias, Q%d_multiplier, Q%d_shift, %ld, "
                          "%ld, %ld, %s);\n",
                          x, g->h, g->w, g->c, op.mult, (long)op.in.zero_point, k, g->kh, g->kw,
                          g->sh, g->sw, g->dh, g->dw, g->pad_top, g->pad_left, g->oh, g->ow, k,
                          k, k, (long)op.out.zero_point, (long)op.lo, (long)op.hi, y);
            dw = true;
            break;
        case CNN_QOP_MAXPOOL:
        case CNN_QOP_AVGPOOL:
        case CNN_QOP_GLOBAL_MAX: /* a window over the whole map */
            export_printf(body,
                          "    q_pool(%s, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %ld, "
                          "%ld, %s);\n",
                          x, g->h, g->w, g->c, g->kh, g->kw, g->sh, g->sw, g->pad_top,
                          g->pad_left, g->oh, g->ow, op.kind != CNN_QOP_AVGPOOL, (long)op.lo,
                          (long)op.hi, y);
            pool = true;
            break;
        case CNN_QOP_CLAMP:
            export_printf(body, "    q_clamp(%s, %lldL, %ld, %ld, %s);\n", x,
                          (long long)op.out_elems, (long)op.lo, (long)op.hi, y);
            clamp = true;
            break;
        case CNN_QOP_LUT: {
            char name[32];
            snprintf(name, sizeof name, "Q%d_table", k);
            export_int8_array(weights, name, full->lut, 256);
            *weight_bytes += 256;
            export_printf(body, "    q_lut(%s, %lldL, %s, %s);\n", x, (long long)op.out_elems,
                          name, y);
            lut = true;
            break;
        }
        case CNN_QOP_GLOBAL_AVG: {
            char name[32];
            snprintf(name, sizeof name, "Q%d_multiplier", k);
            int32_array(weights, name, full->multiplier, full->N);
            snprintf(name, sizeof name, "Q%d_shift", k);
            int32_array(weights, name, full->shift, full->N);
            *weight_bytes += 8 * (int64_t)full->N;
            export_printf(body,
                          "    q_global_avg(%s, %lldL, %d, %ld, Q%d_multiplier, Q%d_shift, %ld, "
                          "%ld, %ld, %s);\n",
                          x, (long long)g->h * g->w, g->c, (long)op.in.zero_point, k, k,
                          (long)op.out.zero_point, (long)op.lo, (long)op.hi, y);
            gavg = true;
            break;
        }
        case CNN_QOP_ADD: {
            char b[48];
            at(q, full->inputs[1], b, sizeof b);
            const cnn_qadd_spec *s = &full->add;
            export_printf(body,
                          "    q_add(%s, %s, %lldL, %ld, %ld, %ld, %ld, %ld, %ld, %ld, %ld, %ld, "
                          "%ld, %ld, %s);\n",
                          x, b, (long long)op.out_elems, (long)s->a_zero, (long)s->a_mult,
                          (long)s->a_shift, (long)s->b_zero, (long)s->b_mult, (long)s->b_shift,
                          (long)s->y_zero, (long)s->y_mult, (long)s->y_shift, (long)s->lo,
                          (long)s->hi, y);
            add = true;
            break;
        }
        case CNN_QOP_CONCAT: {
            int total = 0, start = 0;
            for (int i = 0; i < full->n_inputs; i++)
                total += full->channels[i];
            const cnn_qparams out = op.out;
            for (int i = 0; i < full->n_inputs; i++) {
                cnn_qparams p = cnn_qmodel_value(q, full->inputs[i])->p;
                char xi[48];
                at(q, full->inputs[i], xi, sizeof xi);
                export_printf(body,
                              "    q_concat(%s, %lldL, %d, %d, %d, %d, %ld, %ld, %ld, %ld, %s);\n",
                              xi, (long long)(op.out_elems / total), full->channels[i], total,
                              start, p.scale == out.scale && p.zero_point == out.zero_point,
                              (long)p.zero_point, (long)full->multiplier[i],
                              (long)full->shift[i], (long)out.zero_point, y);
                start += full->channels[i];
            }
            concat = true;
            break;
        }
        case CNN_QOP_PAD:
            export_printf(body, "    q_pad(%s, %d, %d, %d, %d, %d, %d, %d, %ld, %s);\n", x, g->h,
                          g->w, g->c, full->pad[0], full->pad[2], g->oh, g->ow,
                          (long)op.out.zero_point, y);
            pad = true;
            break;
        default: break; /* refused by export_int8_check */
        }
    }
    /* the pieces, before the weights: emitted into the caller's runtime */
    export_text pieces = {0};
    export_puts(&pieces, piece_qmath);
    if (conv)
        export_puts(&pieces, piece_qconv);
    if (dw)
        export_puts(&pieces, piece_qdepthwise);
    if (pool)
        export_puts(&pieces, piece_qpool);
    if (clamp)
        export_puts(&pieces, piece_qclamp);
    if (add)
        export_puts(&pieces, piece_qadd);
    if (concat)
        export_puts(&pieces, piece_qconcat);
    if (pad)
        export_puts(&pieces, piece_qpad);
    if (gavg)
        export_puts(&pieces, piece_qgavg);
    if (lut)
        export_puts(&pieces, piece_qlut);
    export_puts(&pieces, piece_qio);
    /* prepend: pieces then weights */
    if (weights->len)
        export_puts(&pieces, weights->data);
    if (pieces.failed) {
        export_text_free(&pieces);
        return cnn_fail(CNN_ERR_NO_MEMORY, "export: out of memory");
    }
    export_text_free(weights);
    *weights = pieces;
    return CNN_OK;
}
