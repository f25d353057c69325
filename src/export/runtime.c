/* The kernels an exported NAME.c carries (C99, no libc, no libm): one
 * piece of text per kernel, emitted only when a layer uses it, so the
 * generated file has no unused static function (-Wall -Wextra clean).
 *
 * Layouts are the library's: NHWC activations, Conv2D kernels (kh, kw, in,
 * filters), DepthwiseConv2D (kh, kw, in, multiplier), Dense (in, units).
 * Every loop runs in the order of the library's scalar reference (sum over
 * the window, then the bias), so results agree to rounding. */
#include "export/export.h"

/* k_exp: e^x in float by Cody-Waite reduction (x = n ln2 + r, |r| <= ln2/2)
 * and the Taylor polynomial of degree 7 (truncation below 6e-9 relative);
 * scripts/export_accuracy.sh measures 1 ulp from glibc's expf over [-87, 88]
 * (tanh, sigmoid, expm1: 4 ulp). k_expm1 keeps the
 * relative accuracy near 0 (Taylor to x^8 for |x| < 0.35), which tanh, elu
 * and selu need. */
static const char piece_exp[] =
    "typedef union { float f; uint32_t u; } k_bits;\n"
    "\n"
    "/* e^x, within 1 ulp of glibc's expf (sampled); 0 below -87.33 */\n"
    "static float k_exp(float x)\n"
    "{\n"
    "    k_bits b;\n"
    "    float r, p;\n"
    "    int n;\n"
    "    if (x != x)\n"
    "        return x;\n"
    "    if (x > 88.72f)\n"
    "        x = 88.72f;\n"
    "    if (x < -87.33f)\n"
    "        return 0.0f;\n"
    "    n = (int)(x * 1.44269504f + (x >= 0.0f ? 0.5f : -0.5f));\n"
    "    r = x - (float)n * 0.693145751953125f;\n"
    "    r = r - (float)n * 1.42860677e-6f;\n"
    "    p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6.0f + r * (1.0f / 24.0f\n"
    "        + r * (1.0f / 120.0f + r * (1.0f / 720.0f + r * (1.0f / 5040.0f)))))));\n"
    "    if (n > 127) {\n"
    "        p *= 2.0f;\n"
    "        n -= 1;\n"
    "    }\n"
    "    b.u = (uint32_t)(n + 127) << 23;\n"
    "    return p * b.f;\n"
    "}\n"
    "\n"
    "/* e^x - 1, relatively accurate near 0 */\n"
    "static float k_expm1(float x)\n"
    "{\n"
    "    if (x > -0.35f && x < 0.35f)\n"
    "        return x * (1.0f + x / 2.0f * (1.0f + x / 3.0f * (1.0f + x / 4.0f * (1.0f\n"
    "            + x / 5.0f * (1.0f + x / 6.0f * (1.0f + x / 7.0f * (1.0f + x / 8.0f)))))));\n"
    "    return k_exp(x) - 1.0f;\n"
    "}\n"
    "\n";

/* Activation numbers are cnn_activation's; the exporter refuses the ones
 * missing here (gelu, softplus, mish) before it writes anything. */
static const char piece_act[] =
    "/* one value through activation a (cnn_activation's numbers) */\n"
    "static float k_act1(float x, int a)\n"
    "{\n"
    "    float e, h;\n"
    "    switch (a) {\n"
    "    case 1: return x > 0.0f ? x : 0.0f;\n"
    "    case 2: return 1.0f / (1.0f + k_exp(-x));\n"
    "    case 3:\n"
    "        e = k_expm1(-2.0f * (x < 0.0f ? -x : x));\n"
    "        e = -e / (e + 2.0f);\n"
    "        return x < 0.0f ? -e : e;\n"
    "    case 5: return x / (1.0f + k_exp(-x));\n"
    "    case 8: return 1.05070098735548049342f * (x > 0.0f ? x : 1.67326324235437728481f * k_expm1(x));\n"
    "    case 9: return x > 0.0f ? x : k_expm1(x);\n"
    "    case 11: return x / (1.0f + (x < 0.0f ? -x : x));\n"
    "    case 12:\n"
    "    case 13:\n"
    "        h = x + 3.0f;\n"
    "        h = (h < 0.0f ? 0.0f : h > 6.0f ? 6.0f : h) / 6.0f;\n"
    "        return a == 12 ? h : x * h;\n"
    "    case 14: return k_exp(x);\n"
    "    case 15: return x < 0.0f ? 0.0f : x > 6.0f ? 6.0f : x;\n"
    "    case 16: return x < 0.0f ? 0.2f * x : x;\n"
    "    default: return x;\n"
    "    }\n"
    "}\n"
    "\n"
    "/* activation a over n values in place; softmax (4) over each group of\n"
    "   the last axis */\n"
    "static void k_act(float *y, long n, int a, long group)\n"
    "{\n"
    "    long i, g;\n"
    "    if (a != 4) {\n"
    "        for (i = 0; i < n; i++)\n"
    "            y[i] = k_act1(y[i], a);\n"
    "        return;\n"
    "    }\n"
    "    for (g = 0; g < n; g += group) {\n"
    "        float mx = y[g], sum = 0.0f;\n"
    "        for (i = 1; i < group; i++)\n"
    "            mx = y[g + i] > mx ? y[g + i] : mx;\n"
    "        for (i = 0; i < group; i++)\n"
    "            sum += y[g + i] = k_exp(y[g + i] - mx);\n"
    "        for (i = 0; i < group; i++)\n"
    "            y[g + i] /= sum;\n"
    "    }\n"
    "}\n"
    "\n";

static const char piece_conv[] =
    "/* Conv2D: x (h, w, c), kernel (kh, kw, c, f), y (oh, ow, f) */\n"
    "static void k_conv2d(const float *x, int h, int w, int c, const float *k, const float *b,\n"
    "                     int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl,\n"
    "                     int oh, int ow, int f, float *y)\n"
    "{\n"
    "    int oy, ox, ky, kx, ci, j;\n"
    "    for (oy = 0; oy < oh; oy++)\n"
    "        for (ox = 0; ox < ow; ox++) {\n"
    "            float *yp = y + ((long)oy * ow + ox) * f;\n"
    "            for (j = 0; j < f; j++)\n"
    "                yp[j] = 0.0f;\n"
    "            for (ky = 0; ky < kh; ky++) {\n"
    "                int iy = oy * sh - pt + ky * dh;\n"
    "                if (iy < 0 || iy >= h)\n"
    "                    continue;\n"
    "                for (kx = 0; kx < kw; kx++) {\n"
    "                    int ix = ox * sw - pl + kx * dw;\n"
    "                    const float *xp, *kp;\n"
    "                    if (ix < 0 || ix >= w)\n"
    "                        continue;\n"
    "                    xp = x + ((long)iy * w + ix) * c;\n"
    "                    kp = k + ((long)ky * kw + kx) * c * f;\n"
    "                    for (ci = 0; ci < c; ci++, kp += f) {\n"
    "                        float v = xp[ci];\n"
    "                        for (j = 0; j < f; j++)\n"
    "                            yp[j] += v * kp[j];\n"
    "                    }\n"
    "                }\n"
    "            }\n"
    "            if (b)\n"
    "                for (j = 0; j < f; j++)\n"
    "                    yp[j] += b[j];\n"
    "        }\n"
    "}\n"
    "\n";

static const char piece_depthwise[] =
    "/* DepthwiseConv2D: x (h, w, c), kernel (kh, kw, c, m), y (oh, ow, c * m),\n"
    "   output channel ci * m + q reads input channel ci */\n"
    "static void k_depthwise(const float *x, int h, int w, int c, int m, const float *k,\n"
    "                        const float *b, int kh, int kw, int sh, int sw, int dh, int dw,\n"
    "                        int pt, int pl, int oh, int ow, float *y)\n"
    "{\n"
    "    int oy, ox, ky, kx, j, f = c * m;\n"
    "    for (oy = 0; oy < oh; oy++)\n"
    "        for (ox = 0; ox < ow; ox++) {\n"
    "            float *yp = y + ((long)oy * ow + ox) * f;\n"
    "            for (j = 0; j < f; j++)\n"
    "                yp[j] = 0.0f;\n"
    "            for (ky = 0; ky < kh; ky++) {\n"
    "                int iy = oy * sh - pt + ky * dh;\n"
    "                if (iy < 0 || iy >= h)\n"
    "                    continue;\n"
    "                for (kx = 0; kx < kw; kx++) {\n"
    "                    int ix = ox * sw - pl + kx * dw;\n"
    "                    const float *xp, *kp;\n"
    "                    if (ix < 0 || ix >= w)\n"
    "                        continue;\n"
    "                    xp = x + ((long)iy * w + ix) * c;\n"
    "                    kp = k + ((long)ky * kw + kx) * f;\n"
    "                    for (j = 0; j < f; j++)\n"
    "                        yp[j] += xp[j / m] * kp[j];\n"
    "                }\n"
    "            }\n"
    "            if (b)\n"
    "                for (j = 0; j < f; j++)\n"
    "                    yp[j] += b[j];\n"
    "        }\n"
    "}\n"
    "\n";

static const char piece_dense[] =
    "/* Dense over the last axis: x (rows, in), kernel (in, units), y (rows, units) */\n"
    "static void k_dense(const float *x, long rows, int in, const float *k, const float *b,\n"
    "                    int units, float *y)\n"
    "{\n"
    "    long r;\n"
    "    int i, j;\n"
    "    for (r = 0; r < rows; r++, x += in, y += units) {\n"
    "        for (j = 0; j < units; j++)\n"
    "            y[j] = 0.0f;\n"
    "        for (i = 0; i < in; i++) {\n"
    "            const float v = x[i], *kp = k + (long)i * units;\n"
    "            for (j = 0; j < units; j++)\n"
    "                y[j] += v * kp[j];\n"
    "        }\n"
    "        if (b)\n"
    "            for (j = 0; j < units; j++)\n"
    "                y[j] += b[j];\n"
    "    }\n"
    "}\n"
    "\n";

static const char piece_pool[] =
    "/* MaxPooling2D (is_max) or AveragePooling2D over the window's valid\n"
    "   positions (Keras's same padding counts only those) */\n"
    "static void k_pool(const float *x, int h, int w, int c, int ph, int pw, int sh, int sw,\n"
    "                   int pt, int pl, int oh, int ow, int is_max, float *y)\n"
    "{\n"
    "    int oy, ox, iy, ix, j;\n"
    "    for (oy = 0; oy < oh; oy++)\n"
    "        for (ox = 0; ox < ow; ox++) {\n"
    "            float *yp = y + ((long)oy * ow + ox) * c;\n"
    "            int y0 = oy * sh - pt, x0 = ox * sw - pl, y1 = y0 + ph, x1 = x0 + pw;\n"
    "            y0 = y0 < 0 ? 0 : y0;\n"
    "            x0 = x0 < 0 ? 0 : x0;\n"
    "            y1 = y1 > h ? h : y1;\n"
    "            x1 = x1 > w ? w : x1;\n"
    "            for (j = 0; j < c; j++)\n"
    "                yp[j] = is_max ? x[((long)y0 * w + x0) * c + j] : 0.0f;\n"
    "            for (iy = y0; iy < y1; iy++)\n"
    "                for (ix = x0; ix < x1; ix++) {\n"
    "                    const float *xp = x + ((long)iy * w + ix) * c;\n"
    "                    for (j = 0; j < c; j++)\n"
    "                        if (!is_max)\n"
    "                            yp[j] += xp[j];\n"
    "                        else if (xp[j] > yp[j])\n"
    "                            yp[j] = xp[j];\n"
    "                }\n"
    "            if (!is_max) {\n"
    "                float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));\n"
    "                for (j = 0; j < c; j++)\n"
    "                    yp[j] *= inv;\n"
    "            }\n"
    "        }\n"
    "}\n"
    "\n";

static const char piece_global_pool[] =
    "/* GlobalAveragePooling2D / GlobalMaxPooling2D: x (hw, c) -> y (c) */\n"
    "static void k_global_pool(const float *x, long hw, int c, int is_max, float *y)\n"
    "{\n"
    "    long p;\n"
    "    int j;\n"
    "    for (j = 0; j < c; j++)\n"
    "        y[j] = is_max ? x[j] : 0.0f;\n"
    "    for (p = 0; p < hw; p++, x += c)\n"
    "        for (j = 0; j < c; j++)\n"
    "            if (!is_max)\n"
    "                y[j] += x[j];\n"
    "            else if (x[j] > y[j])\n"
    "                y[j] = x[j];\n"
    "    if (!is_max)\n"
    "        for (j = 0; j < c; j++)\n"
    "            y[j] /= (float)hw;\n"
    "}\n"
    "\n";

static const char piece_affine[] =
    "/* BatchNormalization folded to y = x scale + shift per channel (the\n"
    "   last axis); Rescaling with one channel */\n"
    "static void k_affine(const float *x, long n, int c, const float *scale, const float *shift,\n"
    "                     float *y)\n"
    "{\n"
    "    long i;\n"
    "    for (i = 0; i < n; i++)\n"
    "        y[i] = x[i] * scale[i % c] + shift[i % c];\n"
    "}\n"
    "\n";

static const char piece_copy[] =
    "/* Flatten, Reshape, Dropout (identity in inference) */\n"
    "static void k_copy(const float *x, long n, float *y)\n"
    "{\n"
    "    long i;\n"
    "    for (i = 0; i < n; i++)\n"
    "        y[i] = x[i];\n"
    "}\n"
    "\n";

static const char piece_relu[] =
    "/* ReLU / LeakyReLU / ELU layers: x >= cap -> cap (cap < 0: none),\n"
    "   x >= t -> x, else slope (x - t), or alpha (e^x - 1) when elu */\n"
    "static void k_relu(const float *x, long n, float cap, float t, float slope, int elu,\n"
    "                   float *y)\n"
    "{\n"
    "    long i;\n"
    "    for (i = 0; i < n; i++) {\n"
    "        float v = x[i];\n"
    "        if (elu)\n"
    "            y[i] = v > 0.0f ? v : slope * k_expm1(v);\n"
    "        else\n"
    "            y[i] = cap >= 0.0f && v >= cap ? cap : v >= t ? v : slope * (v - t);\n"
    "    }\n"
    "}\n"
    "\n";

static const char piece_merge[] =
    "/* Add (0), Subtract (1), Multiply (2), Average (3), Maximum (4),\n"
    "   Minimum (5) of nx inputs of n values */\n"
    "static void k_merge(const float *const *xs, int nx, long n, int op, float *y)\n"
    "{\n"
    "    long i;\n"
    "    int k;\n"
    "    for (i = 0; i < n; i++) {\n"
    "        float v = xs[0][i];\n"
    "        for (k = 1; k < nx; k++) {\n"
    "            float u = xs[k][i];\n"
    "            v = op == 0 || op == 3 ? v + u : op == 1 ? v - u : op == 2 ? v * u\n"
    "                : op == 4 ? (u > v ? u : v) : (u < v ? u : v);\n"
    "        }\n"
    "        y[i] = op == 3 ? v / (float)nx : v;\n"
    "    }\n"
    "}\n"
    "\n";

static const char piece_merge_b[] =
    "/* the same with broadcasting (Keras's rule): output (od[0], od[1], od[2]),\n"
    "   input k's element at (a, b, c) at a st[k][0] + b st[k][1] + c st[k][2]\n"
    "   (stride 0 along an axis of size 1) */\n"
    "static void k_merge_b(const float *const *xs, const long (*st)[3], int nx, const long *od,\n"
    "                      int op, float *y)\n"
    "{\n"
    "    long a, b, c;\n"
    "    int k;\n"
    "    for (a = 0; a < od[0]; a++)\n"
    "        for (b = 0; b < od[1]; b++)\n"
    "            for (c = 0; c < od[2]; c++) {\n"
    "                float v = xs[0][a * st[0][0] + b * st[0][1] + c * st[0][2]];\n"
    "                for (k = 1; k < nx; k++) {\n"
    "                    float u = xs[k][a * st[k][0] + b * st[k][1] + c * st[k][2]];\n"
    "                    v = op == 0 || op == 3 ? v + u : op == 1 ? v - u : op == 2 ? v * u\n"
    "                        : op == 4 ? (u > v ? u : v) : (u < v ? u : v);\n"
    "                }\n"
    "                *y++ = op == 3 ? v / (float)nx : v;\n"
    "            }\n"
    "}\n"
    "\n";

static const char piece_concat[] =
    "/* Concatenate: each of outer rows joins the inputs' rows of inner[k] */\n"
    "static void k_concat(const float *const *xs, const long *inner, int nx, long outer,\n"
    "                     float *y)\n"
    "{\n"
    "    long o, i;\n"
    "    int k;\n"
    "    for (o = 0; o < outer; o++)\n"
    "        for (k = 0; k < nx; k++)\n"
    "            for (i = 0; i < inner[k]; i++)\n"
    "                *y++ = xs[k][o * inner[k] + i];\n"
    "}\n"
    "\n";

static const char piece_pad[] =
    "/* ZeroPadding2D (keep: rows/cols of x kept, at top/left of y) and\n"
    "   Cropping2D (x read from top/left): a window copy */\n"
    "static void k_window(const float *x, int w, int c, int top, int left, int oh, int ow,\n"
    "                     int keep_h, int keep_w, int pad, float *y)\n"
    "{\n"
    "    int oy, ox, j;\n"
    "    for (oy = 0; oy < oh; oy++)\n"
    "        for (ox = 0; ox < ow; ox++) {\n"
    "            float *yp = y + ((long)oy * ow + ox) * c;\n"
    "            int iy = pad ? oy - top : oy + top, ix = pad ? ox - left : ox + left;\n"
    "            int in = iy >= 0 && iy < keep_h && ix >= 0 && ix < keep_w;\n"
    "            for (j = 0; j < c; j++)\n"
    "                yp[j] = in ? x[((long)iy * w + ix) * c + j] : 0.0f;\n"
    "        }\n"
    "}\n"
    "\n";

static const char piece_upsample[] =
    "/* UpSampling2D, nearest: each value repeated sh x sw times */\n"
    "static void k_upsample(const float *x, int w, int c, int sh, int sw, int oh, int ow,\n"
    "                       float *y)\n"
    "{\n"
    "    int oy, ox, j;\n"
    "    for (oy = 0; oy < oh; oy++)\n"
    "        for (ox = 0; ox < ow; ox++)\n"
    "            for (j = 0; j < c; j++)\n"
    "                *y++ = x[((long)(oy / sh) * w + ox / sw) * c + j];\n"
    "}\n"
    "\n";

static const struct {
    unsigned bit;
    const char *text;
} pieces[] = {
    {EXPORT_NEED_EXP, piece_exp},
    {EXPORT_NEED_ACT, piece_act},
    {EXPORT_NEED_CONV, piece_conv},
    {EXPORT_NEED_DEPTHWISE, piece_depthwise},
    {EXPORT_NEED_DENSE, piece_dense},
    {EXPORT_NEED_POOL, piece_pool},
    {EXPORT_NEED_GLOBAL_POOL, piece_global_pool},
    {EXPORT_NEED_AFFINE, piece_affine},
    {EXPORT_NEED_COPY, piece_copy},
    {EXPORT_NEED_RELU, piece_relu},
    {EXPORT_NEED_MERGE, piece_merge},
    {EXPORT_NEED_MERGE_B, piece_merge_b},
    {EXPORT_NEED_CONCAT, piece_concat},
    {EXPORT_NEED_WINDOW, piece_pad},
    {EXPORT_NEED_UPSAMPLE, piece_upsample},
};

void export_emit_runtime(export_text *t, unsigned need)
{
    if (need & (EXPORT_NEED_ACT | EXPORT_NEED_RELU))
        need |= EXPORT_NEED_EXP; /* k_act1 and the ELU layer call k_exp */
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++)
        if (need & pieces[i].bit)
            export_puts(t, pieces[i].text);
}
