/*
 * rng.h - the project's one pseudo-random generator: xoshiro256** seeded
 * through splitmix64.  Used where results must be reproducible from a seed
 * (the sampler's draws, the test-model generator's weights), so its output
 * sequence is part of those contracts: do not change it.
 */
#ifndef G4_RNG_H
#define G4_RNG_H

#include <stdint.h>

typedef struct { uint64_t s[4]; } g4_rng;

/* splitmix64's output function (a good 64-bit mixer on its own). */
static inline uint64_t g4_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t g4_splitmix64(uint64_t *x)
{
    *x += 0x9e3779b97f4a7c15ULL;
    return g4_mix64(*x);
}

static inline void g4_rng_seed(g4_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = g4_splitmix64(&seed);
}

static inline uint64_t g4_rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t g4_rng_next(g4_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = g4_rotl64(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = g4_rotl64(s[3], 45);
    return result;
}

#endif
