/*
 * test_geglu.c - g4_geglu (the SIMD, threaded GeGLU of the FFN) against
 * g4_gelu_tanh(g) * u element by element: identical bits on every f16
 * value, random floats (incl. values that round across an f16 step),
 * the +-10 cut-offs, infinities, NaN and denormals, for every length tail,
 * with and without a thread pool.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "kernels/quant.h"
#include "testutil.h"

static int compare(g4_pool *pool, const float *g0, const float *u, int64_t n)
{
    float *g = malloc(sizeof(float) * (size_t)n), *want = malloc(sizeof(float) * (size_t)n);
    memcpy(g, g0, sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) want[i] = g4_gelu_tanh(g0[i]) * u[i];
    g4_geglu(pool, g, u, n);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        bool same = memcmp(&g[i], &want[i], 4) == 0 || (isnan(g[i]) && isnan(want[i]));
        if (!same && bad++ < 5) fprintf(stderr, "  x=%a u=%a: got %a want %a\n", g0[i], u[i], g[i], want[i]);
    }
    free(g);
    free(want);
    return bad;
}

int main(void)
{
    g4_gelu_init();
    g4_pool *pool = g4_pool_new(3);
    enum { N = 65536 + 1000 };
    float *g = malloc(sizeof(float) * N), *u = malloc(sizeof(float) * N);
    uint64_t s = 12345;
    for (int i = 0; i < N; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        if (i < 65536) g[i] = g4_f16_to_f32((uint16_t)i);          /* every f16 value */
        else g[i] = ((float)(s >> 40) / (float)(1 << 24) - 0.5f) * 30.0f; /* random in [-15, 15] */
        u[i] = ((float)((s >> 20) & 0xFFFFF) / (float)(1 << 20) - 0.5f) * 4.0f;
    }
    const float special[] = { -10.0f, 10.0f, nextafterf(-10.0f, 0), nextafterf(10.0f, 0), nextafterf(-10.0f, -20),
                              nextafterf(10.0f, 20), INFINITY, -INFINITY, NAN, 1e-40f, -1e-40f, 0.0f, -0.0f,
                              65504.0f, 65520.0f, 1e30f, -1e30f, 0.00006103515625f };
    for (size_t k = 0; k < sizeof special / sizeof special[0]; k++) g[65536 + k] = special[k];
    CHECKF(compare(NULL, g, u, N) == 0, "no pool");
    CHECKF(compare(pool, g, u, N) == 0, "pool of 3");
    for (int64_t n = 1; n <= 40; n++) CHECKF(compare(pool, g + 65536, u, n) == 0, "length %lld", (long long)n);
    /* a long run spread over the pool */
    float *big = malloc(sizeof(float) * 200000), *bu = malloc(sizeof(float) * 200000);
    for (int i = 0; i < 200000; i++) { big[i] = g[i % N]; bu[i] = u[(i * 7) % N]; }
    CHECKF(compare(pool, big, bu, 200000) == 0, "200000 elements");
    free(big); free(bu); free(g); free(u);
    g4_pool_free(pool);
    return tu_finish("test_geglu");
}
