/* Instruction sets for the hand-vectorised kernels (batch_norm, depthwise,
 * global_pool), chosen at run time like cnn_gemm's micro-kernels: the
 * default build has no -march, so each kernel body is compiled once per
 * instruction set (target attributes) and the caller picks one.
 *
 * The bodies are written with 16-float GCC/clang vector types: one zmm
 * register under AVX-512, two ymm under AVX2, four xmm otherwise. They use
 * no fused multiply-add (the build is ISO C, so the compiler contracts
 * nothing) and sum each channel in its own lane, in the same order as the
 * scalar tail loops: a channel's result is the same bits whichever lane,
 * tail or instruction set computes it, so it does not depend on how
 * callers split channels between threads. */
#ifndef CNN_KERNELS_ISA_H
#define CNN_KERNELS_ISA_H

#include <stdbool.h>

typedef enum cnn_isa {
    CNN_ISA_AUTO = 0, /* the fastest this CPU runs */
    CNN_ISA_GENERIC,  /* the baseline build (SSE2 on x86-64, NEON on ARM) */
    CNN_ISA_AVX2,
    CNN_ISA_AVX512,
} cnn_isa;

/* AUTO -> the fastest supported; an unsupported one -> GENERIC. */
cnn_isa cnn_isa_resolve(cnn_isa want);
bool cnn_isa_supported(cnn_isa isa);
/* "generic", "avx2", "avx512" ("auto" for CNN_ISA_AUTO). */
const char *cnn_isa_name(cnn_isa isa);

/* ---- For the kernel files only ------------------------------------------ */

typedef float cnn_v16f __attribute__((vector_size(64)));
typedef int cnn_v16i __attribute__((vector_size(64)));
/* The same with 4-byte alignment, for loads and stores anywhere. */
typedef cnn_v16f cnn_v16f_u __attribute__((aligned(4), may_alias));
#define CNN_V16_LOAD(p) (*(const cnn_v16f_u *)(const void *)(p))
#define CNN_V16_STORE(p, v) (*(cnn_v16f_u *)(void *)(p) = (v))
/* mask ? a : b, mask from a vector comparison */
#define CNN_V16_SELECT(mask, a, b) \
    ((cnn_v16f)(((cnn_v16i)(a) & (mask)) | ((cnn_v16i)(b) & ~(mask))))

/* Inlines everything into each clone, so the body takes the clone's ISA. */
#define CNN_ISA_BODY static inline __attribute__((always_inline))

#if defined(__x86_64__) || defined(__i386__)
#define CNN_ISA_X86 1
/* name_generic, name_avx2 and name_avx512, running the given bodies. */
#define CNN_ISA_CLONES_OF(name, generic_body, avx2_body, avx512_body, params, args)     \
    static void name##_generic params { generic_body args; }                           \
    __attribute__((target("avx2"))) static void name##_avx2 params { avx2_body args; } \
    __attribute__((target("avx512f"))) static void name##_avx512 params { avx512_body args; }
#define CNN_ISA_CALL(isa, name, args)                                                  \
    do {                                                                               \
        switch (cnn_isa_resolve(isa)) {                                                \
        case CNN_ISA_AVX512: name##_avx512 args; break;                                \
        case CNN_ISA_AVX2: name##_avx2 args; break;                                    \
        default: name##_generic args; break;                                           \
        }                                                                              \
    } while (0)
#else
#define CNN_ISA_CLONES_OF(name, generic_body, avx2_body, avx512_body, params, args) \
    static void name##_generic params { generic_body args; }
#define CNN_ISA_CALL(isa, name, args) \
    do {                              \
        (void)(isa);                  \
        name##_generic args;          \
    } while (0)
#endif
/* The usual case: the same body name_body for every instruction set. */
#define CNN_ISA_CLONES(name, params, args) \
    CNN_ISA_CLONES_OF(name, name##_body, name##_body, name##_body, params, args)

#endif
