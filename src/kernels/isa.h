/* Instruction sets for the hand-vectorised kernels (batch_norm, depthwise,
 * global_pool, pool's max pooling), chosen at run time like cnn_gemm's
 * micro-kernels: the default build has no -march, so each kernel body is
 * compiled once per instruction set (target attributes) and the caller
 * picks one.
 *
 * The bodies are written with GCC/clang vector types (CNN_SIMD_TYPES
 * below) of the clone's register width. They use no fused multiply-add
 * (each kernel file turns the compiler's contraction off, as clang and
 * GCC's GNU modes would otherwise fuse vector and scalar code
 * differently) and sum each channel in its own lane, in the same order
 * as the scalar tail loops: a channel's result is the same bits whichever
 * lane, tail or instruction set computes it, so it does not depend on how
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

/* Vectors of W = 4, 8 and 16 floats (and ints, for comparison masks), with
 * unaligned twins for loads and stores anywhere. A vector wider than the
 * instruction set's registers compiles to very slow code (GCC keeps it in
 * memory), so each clone works at its own width: the fast bodies live in
 * a template header included once per width with CNN_SIMD_W defined, in
 * which CNN_V is the vector type, CNN_VI the mask type, CNN_VLOAD/
 * CNN_VSTORE move CNN_SIMD_W floats, and CNN_SIMD_NAME(f) names f's copy
 * for this width. */
#define CNN_SIMD_TYPES(W)                                                        \
    typedef float cnn_vf_##W __attribute__((vector_size(4 * (W))));             \
    typedef int cnn_vi_##W __attribute__((vector_size(4 * (W))));               \
    typedef cnn_vf_##W cnn_vfu_##W __attribute__((aligned(4), may_alias));
CNN_SIMD_TYPES(4)
CNN_SIMD_TYPES(8)
CNN_SIMD_TYPES(16)
#define CNN_SIMD_CAT_(a, b) a##_##b
#define CNN_SIMD_CAT(a, b) CNN_SIMD_CAT_(a, b)
#define CNN_SIMD_NAME(f) CNN_SIMD_CAT(f, CNN_SIMD_W)
#define CNN_V CNN_SIMD_CAT(cnn_vf, CNN_SIMD_W)
#define CNN_VI CNN_SIMD_CAT(cnn_vi, CNN_SIMD_W)
#define CNN_VLOAD(p) (*(const CNN_SIMD_CAT(cnn_vfu, CNN_SIMD_W) *)(const void *)(p))
#define CNN_VSTORE(p, v) (*(CNN_SIMD_CAT(cnn_vfu, CNN_SIMD_W) *)(void *)(p) = (v))
/* mask ? a : b, mask from a vector comparison */
#define CNN_VSELECT(mask, a, b) ((CNN_V)(((CNN_VI)(a) & (mask)) | ((CNN_VI)(b) & ~(mask))))

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
/* The usual case: name_body at 16 floats for the baseline (where GCC
 * splits it into four SSE registers well) and AVX-512, 8 for AVX2. */
#define CNN_ISA_CLONES(name, params, args) \
    CNN_ISA_CLONES_OF(name, name##_body_16, name##_body_8, name##_body_16, params, args)

#endif
