/* tanh at the vector width CNN_SIMD_W (kernels/isa.h) for
 * kernels/activation.c: the same operations as v4_exp and v4_tanh there,
 * lane by lane and in the same order (no fused multiply-add: the file
 * turns contraction off), so every lane gets the bits the 4-wide code
 * gives. And cnn_activation_derivative at that width, for kernels that
 * fold it into their own pass (kernels/pool.c). A template included once
 * per width; no include guard on purpose. */

#define WSPLAT(v) ((CNN_V){0} + (v))
#define WSIGN ((CNN_VI){0} + INT32_MIN)

CNN_ISA_BODY CNN_V CNN_SIMD_NAME(wide_exp)(CNN_V x)
{
    x = CNN_VSELECT(x > WSPLAT(88.0f), WSPLAT(88.0f), x);
    x = CNN_VSELECT(x < WSPLAT(-87.0f), WSPLAT(-87.0f), x);
    CNN_V fn = x * WSPLAT(1.44269504088896341f);
    fn = (fn + WSPLAT(12582912.0f)) - WSPLAT(12582912.0f);
    CNN_V r = x - fn * WSPLAT(0.693359375f) - fn * WSPLAT(-2.12194440e-4f);
    CNN_V p = WSPLAT(1.9875691500e-4f);
    p = p * r + WSPLAT(1.3981999507e-3f);
    p = p * r + WSPLAT(8.3334519073e-3f);
    p = p * r + WSPLAT(4.1665795894e-2f);
    p = p * r + WSPLAT(1.6666665459e-1f);
    p = p * r + WSPLAT(5.0000001201e-1f);
    p = p * r * r + r + WSPLAT(1.0f);
    CNN_VI n = __builtin_convertvector(fn, CNN_VI);
    CNN_VI scale = (n + 127) << 23;
    return p * (CNN_V)scale;
}

CNN_ISA_BODY CNN_V CNN_SIMD_NAME(wide_tanh)(CNN_V x)
{
    CNN_VI sign = (CNN_VI)x & WSIGN;
    CNN_V a = (CNN_V)((CNN_VI)x & ~WSIGN);
    CNN_V z = a * a;
    CNN_V p = WSPLAT(-5.70498872745e-3f);
    p = p * z + WSPLAT(2.06390887954e-2f);
    p = p * z + WSPLAT(-5.37397155531e-2f);
    p = p * z + WSPLAT(1.33314422036e-1f);
    p = p * z + WSPLAT(-3.33332819422e-1f);
    CNN_V small = p * z * a + a;
    CNN_V big = WSPLAT(1.0f) - WSPLAT(2.0f) / (CNN_SIMD_NAME(wide_exp)(a + a) + WSPLAT(1.0f));
    CNN_V t = CNN_VSELECT(a < WSPLAT(0.625f), small, big);
    return (CNN_V)((CNN_VI)t | sign);
}

/* tanh over the whole vectors of y[0, n); *done = how many floats. */
CNN_ISA_BODY void CNN_SIMD_NAME(tanh_body)(float *y, int64_t n, int64_t *done)
{
    int64_t i = 0;
    for (; i + CNN_SIMD_W <= n; i += CNN_SIMD_W)
        CNN_VSTORE(y + i, CNN_SIMD_NAME(wide_tanh)(CNN_VLOAD(y + i)));
    *done = i;
}

/* cnn_activation_derivative(a, y) lane by lane, with the same operations
 * (so the same bits, NaN included, where the includer turns contraction
 * off); softplus (libm's expm1f) and the ones it is never asked for (1)
 * lane by lane through it. Inlined with a constant a, the switch folds. */
CNN_ISA_BODY CNN_V CNN_SIMD_NAME(wide_derivative)(cnn_activation a, CNN_V y)
{
    const CNN_V zero = WSPLAT(0.0f), one = WSPLAT(1.0f);
    switch (a) {
    case CNN_ACTIVATION_LINEAR: return one;
    case CNN_ACTIVATION_RELU: return CNN_VSELECT(y > zero, one, zero);
    case CNN_ACTIVATION_SIGMOID: return y * (one - y);
    case CNN_ACTIVATION_TANH: return one - y * y;
    case CNN_ACTIVATION_SELU:
        return CNN_VSELECT(y > zero, WSPLAT(CNN_SELU_SCALE),
                           y + WSPLAT(CNN_SELU_SCALE * CNN_SELU_ALPHA));
    case CNN_ACTIVATION_ELU: return CNN_VSELECT(y > zero, one, y + one);
    case CNN_ACTIVATION_SOFTSIGN: {
        CNN_V r = one - CNN_VSELECT(y < zero, -y, y); /* not a sign mask: NaN keeps its sign */
        return r * r;
    }
    case CNN_ACTIVATION_HARD_SIGMOID:
        return CNN_VSELECT((y > zero) & (y < one), WSPLAT(1.0f / 6.0f), zero);
    case CNN_ACTIVATION_EXPONENTIAL: return y;
    case CNN_ACTIVATION_RELU6: return CNN_VSELECT((y > zero) & (y < WSPLAT(6.0f)), one, zero);
    case CNN_ACTIVATION_LEAKY_RELU: return CNN_VSELECT(y > zero, one, WSPLAT(CNN_LEAKY_RELU_SLOPE));
    default: {
        CNN_V d;
        for (int i = 0; i < CNN_SIMD_W; i++)
            d[i] = cnn_activation_derivative(a, y[i]);
        return d;
    }
    }
}

#undef WSPLAT
#undef WSIGN
