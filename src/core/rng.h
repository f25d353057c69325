/* A small seeded generator (splitmix64 to seed, xoshiro128+-style output).
 * Every user owns its state: no global RNG, so runs are reproducible. */
#ifndef CNN_CORE_RNG_H
#define CNN_CORE_RNG_H

#include <stdint.h>

typedef struct cnn_rng {
    uint64_t s[2];
} cnn_rng;

static inline uint64_t cnn_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline void cnn_rng_seed(cnn_rng *r, uint64_t seed)
{
    r->s[0] = cnn_splitmix64(&seed);
    r->s[1] = cnn_splitmix64(&seed);
}

/* xoroshiro128+ */
static inline uint64_t cnn_rng_next(cnn_rng *r)
{
    uint64_t s0 = r->s[0], s1 = r->s[1], result = s0 + s1;
    s1 ^= s0;
    r->s[0] = ((s0 << 24) | (s0 >> 40)) ^ s1 ^ (s1 << 16);
    r->s[1] = (s1 << 37) | (s1 >> 27);
    return result;
}

/* Uniform in [0, 1) with 24 random bits (exact in float). */
static inline float cnn_rng_uniform(cnn_rng *r)
{
    return (float)(cnn_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; bias < 2^-32). */
static inline uint64_t cnn_rng_below(cnn_rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)(cnn_rng_next(r)) * n) >> 64);
}

#endif
