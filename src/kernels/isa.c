#include "kernels/isa.h"

bool cnn_isa_supported(cnn_isa isa)
{
    switch (isa) {
    case CNN_ISA_AUTO:
    case CNN_ISA_GENERIC: return true;
#ifdef CNN_ISA_X86
    case CNN_ISA_AVX2: return __builtin_cpu_supports("avx2");
    case CNN_ISA_AVX512: return __builtin_cpu_supports("avx512f");
#else
    case CNN_ISA_AVX2:
    case CNN_ISA_AVX512: return false;
#endif
    }
    return false;
}

cnn_isa cnn_isa_resolve(cnn_isa want)
{
    if (want == CNN_ISA_AUTO) {
        if (cnn_isa_supported(CNN_ISA_AVX512))
            return CNN_ISA_AVX512;
        return cnn_isa_supported(CNN_ISA_AVX2) ? CNN_ISA_AVX2 : CNN_ISA_GENERIC;
    }
    return cnn_isa_supported(want) ? want : CNN_ISA_GENERIC;
}

const char *cnn_isa_name(cnn_isa isa)
{
    switch (isa) {
    case CNN_ISA_AUTO: return "auto";
    case CNN_ISA_GENERIC: return "generic";
    case CNN_ISA_AVX2: return "avx2";
    case CNN_ISA_AVX512: return "avx512";
    }
    return "unknown";
}
