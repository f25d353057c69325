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

static void int8_array(export_text *t, const char *name, const int8_t *v, int64_t n)
{
    export_printf(t, "static const int8_t %s[%lld] = {", name, (long long)n);
    for (int64_t i = 0; i < n; i++)
        export_printf(t, "%s%d", i % 16 ? ", " : i ? ",\n    " : "\n    ", v[i]);
    export_puts(t, "\n};\n");
}

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

/* The generated code runs a chain of these kinds; the quantizer makes more
 * (graphs, tables, global pooling): refused by op, before anything is
 * written, not miscompiled. */
cnn_status export_int8_check(const cnn_qmodel *q)
{
    if (!cnn_qmodel_is_chain(q))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "export: int8: the quantized model is not a "
                                                  "chain of ops");
    for (int k = 0; k < cnn_qmodel_op_count(q); k++) {
        cnn_qop_info op;
        cnn_qmodel_op_info(q, k, &op);
        switch (op.kind) {
        case CNN_QOP_CONV:
        case CNN_QOP_DENSE:
        case CNN_QOP_DEPTHWISE:
        case CNN_QOP_MAXPOOL:
        case CNN_QOP_AVGPOOL:
        case CNN_QOP_CLAMP: break;
        default:
            return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "export: int8: op %d '%s' (%s) has no "
                                                      "exported int8 kernel yet",
                            k, cnn_qmodel_op_name(q, k), cnn_qmodel_op_type(q, k));
        }
    }
    return CNN_OK;
}

cnn_status export_int8_ops(cnn_qmodel *q, const char *N, export_text *weights, export_text *body,
                           int64_t *arena_bytes, int64_t *weight_bytes)
{
    const int nops = cnn_qmodel_op_count(q);
    int64_t largest = 0;
    *weight_bytes = 0;
    bool conv = false, dw = false, pool = false, clamp = false;
    /* two alternating buffers of the largest tensor before the last op */
    for (int k = 0; k < nops; k++) {
        cnn_qop_info op;
        cnn_qmodel_op_info(q, k, &op);
        if (op.in_elems > largest)
            largest = op.in_elems;
        if (k < nops - 1 && op.out_elems > largest)
            largest = op.out_elems;
    }
    *arena_bytes = 2 * largest;
    for (int k = 0; k < nops; k++) {
        cnn_qop_info op;
        cnn_qmodel_op_info(q, k, &op);
        char x[48], y[48];
        snprintf(x, sizeof x, k == 0 ? "input" : "arena + %lld",
                 (long long)((k - 1) % 2 ? largest : 0));
        if (k == nops - 1)
            snprintf(y, sizeof y, "output");
        else
            snprintf(y, sizeof y, "arena + %lld", (long long)(k % 2 ? largest : 0));
        static const char *const names[] = {"Conv2D", "DepthwiseConv2D", "Dense",
                                            "MaxPooling2D", "AveragePooling2D", "clamp"};
        export_printf(body, "    /* op %d: %s, to the output of layer %d */\n", k,
                      names[op.kind], op.layer);
        if (op.weight_count > 0) {
            int8_t *w = malloc((size_t)op.weight_count);
            if (!w)
                return cnn_fail(CNN_ERR_NO_MEMORY, "export: out of memory");
            cnn_qmodel_op_weights(q, k, w);
            char name[32];
            snprintf(name, sizeof name, "Q%d_weights", k);
            int8_array(weights, name, w, op.weight_count);
            free(w);
            snprintf(name, sizeof name, "Q%d_bias", k);
            int32_array(weights, name, op.bias, op.N);
            snprintf(name, sizeof name, "Q%d_multiplier", k);
            int32_array(weights, name, op.multiplier, op.N);
            snprintf(name, sizeof name, "Q%d_shift", k);
            int32_array(weights, name, op.shift, op.N);
            *weight_bytes += op.weight_count + 12 * (int64_t)op.N;
        }
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
            export_printf(body,
                          "    q_pool(%s, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %ld, "
                          "%ld, %s);\n",
                          x, g->h, g->w, g->c, g->kh, g->kw, g->sh, g->sw, g->pad_top,
                          g->pad_left, g->oh, g->ow, op.kind == CNN_QOP_MAXPOOL, (long)op.lo,
                          (long)op.hi, y);
            pool = true;
            break;
        case CNN_QOP_CLAMP:
            export_printf(body, "    q_clamp(%s, %lldL, %ld, %ld, %s);\n", x,
                          (long long)op.out_elems, (long)op.lo, (long)op.hi, y);
            clamp = true;
            break;
        default: break; /* refused above */
        }
    }
    (void)N;
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
