/*
 * test_neon.c - the AArch64 kernels (kernels/simd_arm.c) beyond what
 * tests/test_simd.c checks (their agreement with the scalar twins); built
 * and run under qemu-aarch64 by tests/arm/cross-neon.sh.
 *
 *   usage: test_neon DETECTED ACTIVE  (the level names the run expects)
 *
 *   - the CPU probe and G4_CPU: the detected and active levels are the
 *     expected ones (qemu's -cpu max has SDOT, cortex-a57 has not);
 *   - routing: g4_vec_dot / g4_quantize_act give the bits of the kernel of
 *     the highest level <= the active one that has a kernel for the type (the
 *     scalar twin below neon);
 *   - an independent reference: every level's dot against a float64 sum of
 *     the dequantized weight and activation rows (g4_dequantize_row), within
 *     1e-5 of sum|w*a|, ragged block counts included;
 *   - fixed vectors with hand-computed integer answers, -128 activations and
 *     weights included (the SMULL and SDOT paths take them as they are).
 */
#include "kernels/dispatch.h"
#include "kernels/quant.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_s = 0xA64;
static uint64_t rnd(void)
{
    uint64_t z = (rng_s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float unif_pm1(void) { return (float)((double)(rnd() >> 11) * 0x1p-52 - 1.0); }

static const uint32_t TYPES[] = { G4_TYPE_Q4_0, G4_TYPE_Q8_0, G4_TYPE_Q4_K, G4_TYPE_Q5_K, G4_TYPE_Q6_K };
enum { NTYPES = sizeof TYPES / sizeof *TYPES };

static size_t rbytes(uint32_t type, int64_t n)
{
    uint64_t b = 0;
    if (!g4_row_size(type, (uint64_t)n, &b)) abort();
    return (size_t)b;
}

/* a weight row from random floats through the reference quantizer, so the
 * scales are those of real files */
static void gen_w(uint32_t type, uint8_t *w, int64_t n)
{
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = unif_pm1() * (rnd() % 8 == 0 ? 4.0f : 1.0f);
    g4_quantize_row(type, x, w, n);
    free(x);
}

static void gen_a(uint32_t type, uint8_t *a, int64_t n)
{
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = unif_pm1() * 3.0f;
    g4_quantize_act_scalar(g4_vec_dot_type(type), x, a, n);
    free(x);
}

static int level_of(const char *name)
{
    for (int l = 0; l < G4_CPU_LEVELS; l++)
        if (strcmp(name, g4_cpu_level_name(l)) == 0) return l;
    return -1;
}

static void test_levels(const char *want_det, const char *want_act)
{
    printf("  detected %s, active %s (expected %s, %s)\n", g4_cpu_level_name(g4_cpu_detected()),
           g4_cpu_level_name(g4_cpu_level()), want_det, want_act);
    CHECK(g4_cpu_detected() == level_of(want_det));
    CHECK(g4_cpu_level() == level_of(want_act));
    /* the x86 levels have no kernels here */
    CHECK(g4_kernel_vec_dot(G4_CPU_AVX2, G4_TYPE_Q4_0) == NULL);
    CHECK(g4_kernel_quantize_act(G4_CPU_AVX512, G4_TYPE_Q8_0) == NULL);
    /* neon is the baseline of every AArch64 CPU */
    CHECK(g4_kernel_vec_dot(G4_CPU_NEON, G4_TYPE_Q4_K) != NULL);
    CHECK(g4_kernel_quantize_act(G4_CPU_NEON, G4_TYPE_Q8_K) != NULL);
    CHECK((g4_kernel_vec_dot(G4_CPU_DOTPROD, G4_TYPE_Q6_K) != NULL) == (g4_cpu_detected() >= G4_CPU_DOTPROD));
}

static void test_routing(void)
{
    int cases = 0, bad = 0;
    for (int ti = 0; ti < NTYPES; ti++) {
        const uint32_t type = TYPES[ti], vdt = g4_vec_dot_type(type);
        g4_vec_dot_fn want = NULL;
        for (int l = G4_CPU_NEON; l <= g4_cpu_level(); l++)
            if (g4_kernel_vec_dot(l, type)) want = g4_kernel_vec_dot(l, type);
        const int64_t n = 256 * 7;
        uint8_t *w = malloc(rbytes(type, n)), *a = malloc(rbytes(vdt, n));
        uint8_t *q0 = malloc(rbytes(vdt, n)), *q1 = malloc(rbytes(vdt, n));
        float *x = malloc((size_t)n * sizeof *x);
        for (int rep = 0; rep < 8; rep++, cases++) {
            gen_w(type, w, n);
            for (int64_t i = 0; i < n; i++) x[i] = unif_pm1();
            g4_quantize_act(vdt, x, a, n);
            g4_quantize_act_scalar(vdt, x, q0, n);
            memcpy(q1, a, rbytes(vdt, n));
            const float got = g4_vec_dot(type, w, a, n);
            const float exp = want ? want(w, a, n) : g4_vec_dot_scalar(type, w, a, n);
            if (memcmp(&got, &exp, sizeof got) != 0 || memcmp(q0, q1, rbytes(vdt, n)) != 0) bad++;
        }
        free(w); free(a); free(q0); free(q1); free(x);
    }
    CHECKF(bad == 0, "routing: %d of %d public results are not the active level's kernel's", bad, cases);
    printf("  routing at %s: %s (%d rows)\n", g4_cpu_level_name(g4_cpu_level()), bad ? "FAIL" : "ok", cases);
}

static void test_reference(void)
{
    static const int64_t NB[] = { 1, 2, 3, 5, 15, 17 };  /* 256-element units; q4_0/q8_0 x8 blocks */
    for (int level = G4_CPU_NEON; level <= G4_CPU_DOTPROD; level++) {
        for (int ti = 0; ti < NTYPES; ti++) {
            const uint32_t type = TYPES[ti], vdt = g4_vec_dot_type(type);
            const g4_vec_dot_fn f = g4_kernel_vec_dot(level, type);
            if (!f) continue;
            int cases = 0, bad = 0;
            double worst = 0;
            for (size_t k = 0; k < sizeof NB / sizeof *NB; k++) {
                for (int rep = 0; rep < 4; rep++, cases++) {
                    /* q4_0/q8_0: also odd block counts (the two-block unroll's tail) */
                    const int64_t n = g4_type_get(type)->blck == 32 ? 32 * (8 * NB[k] + rep % 2) : 256 * NB[k];
                    uint8_t *w = malloc(rbytes(type, n)), *a = malloc(rbytes(vdt, n));
                    float *wf = malloc((size_t)n * sizeof *wf), *af = malloc((size_t)n * sizeof *af);
                    gen_w(type, w, n);
                    gen_a(type, a, n);
                    g4_dequantize_row(type, w, wf, n);
                    g4_dequantize_row(vdt, a, af, n);
                    double ref = 0, mag = 0;
                    for (int64_t i = 0; i < n; i++) {
                        ref += (double)wf[i] * af[i];
                        mag += fabs((double)wf[i] * af[i]);
                    }
                    const double err = fabs((double)f(w, a, n) - ref);
                    if (err / mag > worst) worst = err / mag;
                    if (!(err <= 1e-5 * mag) && bad++ < 3)
                        fprintf(stderr, "  %s %s n=%lld: %.9g vs float64 reference %.9g\n", g4_cpu_level_name(level),
                                g4_type_get(type)->name, (long long)n, f(w, a, n), ref);
                    free(w); free(a); free(wf); free(af);
                }
            }
            CHECKF(bad == 0, "%s %s: %d of %d dots off the dequantized float64 reference", g4_cpu_level_name(level),
                   g4_type_get(type)->name, bad, cases);
            printf("  %-7s %-4s vs float64 dequantized reference: %s (%d dots, worst %.1e of sum|w*a|)\n",
                   g4_cpu_level_name(level), g4_type_get(type)->name, bad ? "FAIL" : "ok", cases, worst);
        }
    }
}

static void put_h(uint8_t *p, float f)
{
    const uint16_t h = g4_f32_to_f16(f);
    memcpy(p, &h, 2);
}

/* q8_K activation block: d = 1, all qs = v, consistent bsums */
static void q8k_fill(uint8_t *a, int8_t v)
{
    const float one = 1.0f;
    memcpy(a, &one, 4);
    memset(a + 4, (uint8_t)v, 256);
    for (int j = 0; j < 16; j++) {
        const int16_t s = (int16_t)(16 * v);
        memcpy(a + 260 + 2 * j, &s, 2);
    }
}

static void test_fixed(void)
{
    for (int level = G4_CPU_NEON; level <= G4_CPU_DOTPROD; level++) {
        if (!g4_kernel_vec_dot(level, G4_TYPE_Q8_0)) continue;
        const char *ln = g4_cpu_level_name(level);
        /* q8_0: w = -128 everywhere, a = -128 in 0..15 and 127 in 16..31,
         * d = 1 and 0.5: (16*16384 - 16*16256) * 0.5 = 1024 */
        uint8_t w8[34], a8[34];
        put_h(w8, 1.0f);
        put_h(a8, 0.5f);
        memset(w8 + 2, 0x80, 32);
        memset(a8 + 2, 0x80, 16);
        memset(a8 + 18, 127, 16);
        CHECKF(g4_kernel_vec_dot(level, G4_TYPE_Q8_0)(w8, a8, 32) == 1024.0f, "%s q8_0 fixed vector", ln);
        /* q4_0: nibbles 0 (-8) low and 15 (+7) high against a = -128 / 127:
         * 16 * (-8 * -128) + 16 * (7 * 127) = 16384 + 14224 = 30608 */
        uint8_t w4[18];
        put_h(w4, 1.0f);
        memset(w4 + 2, 0xF0, 16);
        put_h(a8, 1.0f);
        CHECKF(g4_kernel_vec_dot(level, G4_TYPE_Q4_0)(w4, a8, 32) == 30608.0f, "%s q4_0 fixed vector", ln);
        /* q4_K: d = dmin = 1, every scale 1 and min 2, every nibble 15,
         * a = 3: 256 * 15 * 3 - 2 * 256 * 3 = 9984 */
        uint8_t wk[144], ak[292];
        put_h(wk, 1.0f);
        put_h(wk + 2, 1.0f);
        for (int j = 0; j < 4; j++) { wk[4 + j] = 1; wk[8 + j] = 2; wk[12 + j] = 0x21; }
        memset(wk + 16, 0xFF, 128);
        q8k_fill(ak, 3);
        CHECKF(g4_kernel_vec_dot(level, G4_TYPE_Q4_K)(wk, ak, 256) == 9984.0f, "%s q4_K fixed vector", ln);
        /* q6_K: every 6-bit value 63 (w = 31), scales alternating 2 and
         * -128, a = -128: 128 * 31 * -128 * (2 - 128) = 63995904 */
        uint8_t w6[210];
        memset(w6, 0xFF, 192);
        for (int j = 0; j < 16; j++) w6[192 + j] = (uint8_t)(j % 2 ? 0x80 : 2);
        put_h(w6 + 208, 1.0f);
        q8k_fill(ak, -128);
        CHECKF(g4_kernel_vec_dot(level, G4_TYPE_Q6_K)(w6, ak, 256) == 63995904.0f, "%s q6_K fixed vector", ln);
        printf("  %-7s fixed vectors: done\n", ln);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_neon DETECTED ACTIVE\n");
        return 2;
    }
    test_levels(argv[1], argv[2]);
    test_routing();
    test_reference();
    test_fixed();
    return tu_finish("neon");
}
