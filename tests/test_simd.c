/*
 * test_simd.c - the SIMD kernels of kernels/simd_x86.c against their scalar
 * twins in kernels/quant.c, for every CPU level this machine runs (levels it
 * lacks are skipped, and said so).
 *
 *   quantize_act: the same bytes as g4_quantize_act_scalar, on rows with
 *     extreme scales, exact rounding ties, zeros, denormals and NaN/inf;
 *   vec_dot: within 1e-6 of the magnitude of the scalar result, the
 *     magnitude being max(sum|w*a|, sum over blocks of max|w| * sum|a|) (the
 *     per-block terms whose float rounding the two orders differ in), on
 *     random weight bytes (any scale, -128 included) and activations encoded
 *     from finite floats of extreme scales, ragged block counts included.
 * Buffers are allocated at their exact sizes so that ASan sees any read past
 * a row's end.
 */
#include "kernels/dispatch.h"
#include "kernels/quant.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_s = 0x5151;
static uint64_t rnd(void)
{
    uint64_t z = (rng_s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double unif(void) { return (double)(rnd() >> 11) * 0x1p-53; }
static float gauss(void)
{
    double u = unif(), v = unif();
    if (u < 1e-300) u = 1e-300;
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

static size_t rbytes(uint32_t type, int64_t n)
{
    uint64_t b = 0;
    if (!g4_row_size(type, (uint64_t)n, &b)) abort();
    return (size_t)b;
}

/* a random finite half: sign, exponent 0..30 (subnormals and the largest
 * normals included), any mantissa */
static uint16_t rnd_half(void)
{
    return (uint16_t)(((rnd() & 1) << 15) | ((rnd() % 31) << 10) | (rnd() & 0x3ff));
}

/* a float row: kind 0 gaussian * 10^U(-30,30) per row; 1 with outliers and
 * all-zero blocks; 2 values on rounding ties; 3 denormals and zeros (with
 * -0); 4 NaN and inf sprinkled in some blocks */
static void gen_x(int kind, float *x, int64_t n, int blk)
{
    const float sc = (float)pow(10.0, unif() * 60 - 30);
    for (int64_t i = 0; i < n; i++) {
        switch (kind) {
        case 0: x[i] = gauss() * sc; break;
        case 1: x[i] = (rnd() % 50 == 0) ? gauss() * 1e4f : gauss(); break;
        case 2: x[i] = (float)((int)(rnd() % 255) - 127) + ((rnd() & 1) ? 0.5f : 0.0f); break;
        case 3: x[i] = (rnd() % 3 == 0) ? ((rnd() & 1) ? -0.0f : 0.0f) : gauss() * 1e-40f; break;
        default: x[i] = gauss(); break;
        }
    }
    if (kind == 2) {
        /* amax exactly 127 (or -127) per block so that the scale is 1 */
        for (int64_t b = 0; b < n; b += blk) {
            x[b + (int64_t)(rnd() % (uint64_t)blk)] = (rnd() & 1) ? 127.0f : -127.0f;
            if (rnd() & 1) x[b + (int64_t)(rnd() % (uint64_t)blk)] = -x[b];  /* a +-max tie */
            for (int64_t i = b; i < b + blk; i++)
                if (fabsf(x[i]) > 127.0f) x[i] = 127.0f;
        }
    }
    if (kind == 1 || kind == 3) {
        for (int64_t b = 0; b < n; b += blk)
            if (rnd() % 4 == 0) memset(x + b, 0, (size_t)blk * sizeof *x);
    }
    if (kind == 4) {
        for (int64_t b = 0; b < n; b += blk) {
            const int r = (int)(rnd() % 4);
            const int64_t j = b + (int64_t)(rnd() % (uint64_t)blk);
            if (r == 1) x[j] = NAN;
            if (r == 2) x[j] = (rnd() & 1) ? INFINITY : -INFINITY;
            if (r == 3) { x[j] = NAN; x[b + (j - b + 1) % blk] = INFINITY; }
        }
    }
}

static const int64_t LENS32[] = { 32, 64, 96, 160, 224, 32 * 33, 3840, 32 * 121 };
static const int64_t LENS256[] = { 256, 512, 768, 256 * 5, 3840, 256 * 17 };

static void test_quantize_act(int level)
{
    static const uint32_t VDT[] = { G4_TYPE_Q8_0, G4_TYPE_Q8_K };
    for (size_t vi = 0; vi < 2; vi++) {
        const uint32_t vdt = VDT[vi];
        const g4_quantize_act_fn f = g4_kernel_quantize_act(level, vdt);
        if (!f) {
            printf("  %-6s quantize_act %-4s: no kernel of its own at this level (uses the next lower level's)\n", g4_cpu_level_name(level),
                   g4_type_get(vdt)->name);
            continue;
        }
        const int blk = (int)g4_type_get(vdt)->blck;
        const int64_t *lens = blk == 32 ? LENS32 : LENS256;
        const int nl = blk == 32 ? (int)(sizeof LENS32 / sizeof *LENS32) : (int)(sizeof LENS256 / sizeof *LENS256);
        int cases = 0, bad = 0;
        for (int kind = 0; kind < 5; kind++) {
            for (int li = 0; li < nl; li++) {
                for (int rep = 0; rep < 4; rep++) {
                    const int64_t n = lens[li];
                    float *x = malloc((size_t)n * sizeof *x);
                    const size_t nbytes = rbytes(vdt, n);
                    uint8_t *q0 = malloc(nbytes), *q1 = malloc(nbytes);
                    gen_x(kind, x, n, blk);
                    memset(q0, 0xA5, nbytes);
                    memset(q1, 0x5A, nbytes);
                    g4_quantize_act_scalar(vdt, x, q0, n);
                    f(x, q1, n);
                    cases++;
                    if (memcmp(q0, q1, nbytes) != 0) {
                        size_t at = 0;
                        while (q0[at] == q1[at]) at++;
                        if (bad++ < 5)
                            fprintf(stderr, "  %s %s kind %d n=%lld: byte %zu differs (%02x vs scalar %02x)\n",
                                    g4_cpu_level_name(level), g4_type_get(vdt)->name, kind, (long long)n, at, q1[at], q0[at]);
                    }
                    free(x); free(q0); free(q1);
                }
            }
        }
        CHECKF(bad == 0, "%s quantize_act %s: %d of %d rows differ from the scalar twin", g4_cpu_level_name(level),
               g4_type_get(vdt)->name, bad, cases);
        printf("  %-6s quantize_act %-4s: %s (%d rows, byte-identical to scalar)\n", g4_cpu_level_name(level),
               g4_type_get(vdt)->name, bad ? "FAIL" : "ok", cases);
    }
}

/* random weight row of `type`: random bytes, then every scale field a random
 * finite half (float weights: finite values of moderate exponent) */
static void gen_w(uint32_t type, uint8_t *w, int64_t n)
{
    const size_t nb = rbytes(type, n);
    for (size_t i = 0; i < nb; i++) w[i] = (uint8_t)rnd();
    const g4_type_traits *t = g4_type_get(type);
    const size_t bs = t->type_size, nblk = nb / bs;
    for (size_t b = 0; b < nblk && t->blck > 1; b++) {
        uint8_t *p = w + b * bs;
        uint16_t h[2] = { rnd_half(), rnd_half() };
        switch (type) {
        case G4_TYPE_Q4_0: case G4_TYPE_Q8_0: memcpy(p, h, 2); break;
        case G4_TYPE_Q4_K: case G4_TYPE_Q5_K: memcpy(p, h, 4); break;
        case G4_TYPE_Q6_K: memcpy(p + 208, h, 2); break;
        default: break;
        }
    }
    if (type == G4_TYPE_F32) {
        float *f = (float *)w;
        for (int64_t i = 0; i < n; i++) f[i] = gauss() * ldexpf(1.0f, (int)(rnd() % 100) - 50);
    } else if (type == G4_TYPE_F16) {
        uint16_t *h = (uint16_t *)w;
        for (int64_t i = 0; i < n; i++) h[i] = rnd_half();
    } else if (type == G4_TYPE_BF16) {
        uint16_t *h = (uint16_t *)w;
        for (int64_t i = 0; i < n; i++) h[i] = g4_f32_to_bf16(gauss() * ldexpf(1.0f, (int)(rnd() % 100) - 50));
    }
}

static double magnitude(uint32_t type, const void *w, const void *a, int64_t n)
{
    const uint32_t vdt = g4_vec_dot_type(type);
    float *wf = malloc((size_t)n * sizeof *wf), *af = malloc((size_t)n * sizeof *af);
    g4_dequantize_row(type, w, wf, n);
    g4_dequantize_row(vdt, a, af, n);
    double m = 0, bound = 0;
    for (int64_t i = 0; i < n; i++) m += fabs((double)wf[i] * af[i]);
    const int64_t B = g4_type_get(type)->blck;
    if (B > 1) {
        for (int64_t b0 = 0; b0 < n; b0 += B) {
            double mx = 0, sa = 0;
            for (int64_t i = b0; i < b0 + B; i++) {
                mx = fmax(mx, fabs((double)wf[i]));
                sa += fabs((double)af[i]);
            }
            bound += mx * sa;
        }
    }
    free(wf); free(af);
    return m > bound ? m : bound;
}

static void test_vec_dot(int level)
{
    static const uint32_t TYPES[] = { G4_TYPE_Q4_0, G4_TYPE_Q8_0, G4_TYPE_Q6_K, G4_TYPE_Q4_K, G4_TYPE_Q5_K,
                                      G4_TYPE_F32, G4_TYPE_F16, G4_TYPE_BF16 };
    static const int64_t LENSF[] = { 1, 7, 8, 15, 16, 17, 33, 255, 3840, 3843 };
    for (size_t ti = 0; ti < sizeof TYPES / sizeof *TYPES; ti++) {
        const uint32_t type = TYPES[ti], vdt = g4_vec_dot_type(type);
        const g4_vec_dot_fn f = g4_kernel_vec_dot(level, type);
        if (!f) {
            printf("  %-6s vec_dot %-5s: no kernel of its own at this level (uses the next lower level's)\n", g4_cpu_level_name(level),
                   g4_type_get(type)->name);
            continue;
        }
        const uint32_t B = g4_type_get(type)->blck;
        const int64_t *lens = B == 32 ? LENS32 : B == 256 ? LENS256 : LENSF;
        const int nl = B == 32 ? (int)(sizeof LENS32 / sizeof *LENS32)
                     : B == 256 ? (int)(sizeof LENS256 / sizeof *LENS256) : (int)(sizeof LENSF / sizeof *LENSF);
        int cases = 0, bad = 0, nonfinite = 0;
        double worst = 0;
        for (int kind = 0; kind < 4; kind++) {
            for (int li = 0; li < nl; li++) {
                for (int rep = 0; rep < 6; rep++) {
                    const int64_t n = lens[li];
                    uint8_t *w = malloc(rbytes(type, n)), *a = malloc(rbytes(vdt, n));
                    float *x = malloc((size_t)n * sizeof *x);
                    gen_w(type, w, n);
                    if (B == 1) {
                        gen_w(type, a, n);             /* float types: the same kind of row */
                    } else {
                        gen_x(kind, x, n, (int)g4_type_get(vdt)->blck);
                        g4_quantize_act_scalar(vdt, x, a, n);
                    }
                    const float s = g4_vec_dot_scalar(type, w, a, n);
                    const float v = f(w, a, n);
                    const double mag = magnitude(type, w, a, n);
                    if (!isfinite(s) || !isfinite(mag)) {
                        /* f16 scales overflowed (rows near 1e30): NaN vs inf
                         * is not compared */
                        nonfinite++;
                        free(w); free(a); free(x);
                        continue;
                    }
                    cases++;
                    const double err = fabs((double)v - (double)s);
                    if (mag > 1e-30 && err / mag > worst) worst = err / mag;
                    if (!(err <= 1e-6 * mag + 1e-37) && bad++ < 5)
                        fprintf(stderr, "  %s %s kind %d n=%lld: simd %.9g scalar %.9g (mag %.3g)\n",
                                g4_cpu_level_name(level), g4_type_get(type)->name, kind, (long long)n, v, s, mag);
                    free(w); free(a); free(x);
                }
            }
        }
        CHECKF(bad == 0, "%s vec_dot %s: %d of %d dots off the scalar twin by > 1e-6 of magnitude",
               g4_cpu_level_name(level), g4_type_get(type)->name, bad, cases);
        CHECK(cases > nonfinite);
        printf("  %-6s vec_dot %-5s: %s (%d dots, worst diff %.1e of magnitude; %d non-finite not compared)\n",
               g4_cpu_level_name(level), g4_type_get(type)->name, bad ? "FAIL" : "ok", cases, worst, nonfinite);
    }
}

/* the public entry points follow the active level */
static void test_dispatch(void)
{
    const int det = g4_cpu_detected(), act = g4_cpu_level();
    printf("  CPU level: detected %s, active %s\n", g4_cpu_level_name(det), g4_cpu_level_name(act));
    CHECK(act >= G4_CPU_SCALAR && act <= det);
    CHECK(g4_kernel_vec_dot(G4_CPU_SCALAR, G4_TYPE_Q4_0) == NULL);
    CHECK(g4_kernel_vec_dot(7, G4_TYPE_Q4_0) == NULL);
    CHECK(g4_kernel_vec_dot(G4_CPU_AVX2, 1000) == NULL);
    /* the wrapper handles what the kernels do not: n == 0, unknown types */
    CHECK(g4_vec_dot(G4_TYPE_Q4_0, NULL, NULL, 0) == 0.0f);
    CHECK(isnan(g4_vec_dot(G4_TYPE_Q8_K, NULL, NULL, 256)));
    uint8_t w[18] = { 0 }, a[34] = { 0 };
    const uint16_t one = g4_f32_to_f16(1.0f);
    memcpy(w, &one, 2);
    memcpy(a, &one, 2);
    for (int j = 0; j < 16; j++) w[2 + j] = 0x9A;   /* 10-8 = 2 (low), 9-8 = 1 (high) */
    for (int j = 0; j < 32; j++) a[2 + j] = (uint8_t)(j < 16 ? 3 : -5);
    CHECK(g4_vec_dot(G4_TYPE_Q4_0, w, a, 32) == 16 * 6.0f - 16 * 5.0f);
}

/* vec_dot_x4: each of the four results is the same float, bit for bit
 * (memcmp; any NaN matches any NaN), as the same level's single-token kernel
 * on that activation row;
 * the four rows are of different kinds (NaN/inf rows included) and
 * separately allocated at their exact sizes */
static void test_vec_dot_x4(int level)
{
    static const uint32_t TYPES[] = { G4_TYPE_Q4_0, G4_TYPE_Q8_0, G4_TYPE_Q6_K, G4_TYPE_Q4_K, G4_TYPE_Q5_K,
                                      G4_TYPE_F32, G4_TYPE_F16, G4_TYPE_BF16 };
    for (size_t ti = 0; ti < sizeof TYPES / sizeof *TYPES; ti++) {
        const uint32_t type = TYPES[ti], vdt = g4_vec_dot_type(type);
        const g4_vec_dot_x4_fn f4 = g4_kernel_vec_dot_x4(level, type);
        const g4_vec_dot_fn f = g4_kernel_vec_dot(level, type);
        if (!f4)
            continue;
        CHECKF(f != NULL, "%s vec_dot_x4 %s without a single-token kernel", g4_cpu_level_name(level),
               g4_type_get(type)->name);
        if (!f)
            continue;
        const uint32_t B = g4_type_get(type)->blck;
        CHECK(B == 32 || B == 256);
        if (B != 32 && B != 256)
            continue;
        const int64_t *lens = B == 32 ? LENS32 : LENS256;
        const int nl = B == 32 ? (int)(sizeof LENS32 / sizeof *LENS32) : (int)(sizeof LENS256 / sizeof *LENS256);
        int cases = 0, bad = 0;
        for (int li = 0; li < nl; li++) {
            for (int rep = 0; rep < 12; rep++) {
                const int64_t n = lens[li];
                uint8_t *w = malloc(rbytes(type, n)), *a[4];
                float *x = malloc((size_t)n * sizeof *x);
                gen_w(type, w, n);
                for (int k = 0; k < 4; k++) {
                    a[k] = malloc(rbytes(vdt, n));
                    gen_x((rep + k) % 5, x, n, (int)g4_type_get(vdt)->blck);
                    g4_quantize_act_scalar(vdt, x, a[k], n);
                }
                const void *const ac[4] = { a[0], a[1], a[2], a[3] };
                float o[4];
                memset(o, 0xA5, sizeof o);
                f4(w, ac, o, n);
                for (int k = 0; k < 4; k++) {
                    const float v = f(w, a[k], n);
                    cases++;
                    /* NaN's sign/payload is not compared: the compiler may
                     * commute the operands of an add (x86 keeps the first
                     * operand's NaN) differently in the two kernels */
                    const int same = memcmp(&v, &o[k], sizeof v) == 0 || (isnan(v) && isnan(o[k]));
                    if (!same && bad++ < 5)
                        fprintf(stderr, "  %s %s x4 n=%lld token %d: x4 %.9g single %.9g\n", g4_cpu_level_name(level),
                                g4_type_get(type)->name, (long long)n, k, o[k], v);
                }
                for (int k = 0; k < 4; k++) free(a[k]);
                free(w); free(x);
            }
        }
        CHECKF(bad == 0, "%s vec_dot_x4 %s: %d of %d results differ from the single-token kernel's bits",
               g4_cpu_level_name(level), g4_type_get(type)->name, bad, cases);
        printf("  %-6s vec_dot_x4 %-5s: %s (%d dots bit-identical to the single-token kernel)\n",
               g4_cpu_level_name(level), g4_type_get(type)->name, bad ? "FAIL" : "ok", cases - bad);
    }
}

/* the active x4 kernel is the twin of the active single-token kernel (from
 * the same level) or absent */
static void test_dispatch_x4(void)
{
    CHECK(g4_kernel_vec_dot_x4(G4_CPU_SCALAR, G4_TYPE_Q4_0) == NULL);
    CHECK(g4_kernel_vec_dot_x4(7, G4_TYPE_Q4_0) == NULL);
    CHECK(g4_kernel_vec_dot_x4(G4_CPU_AVX2, 1000) == NULL);
    for (uint32_t type = 0; type < 64; type++) {
        const g4_vec_dot_x4_fn f4 = g4_dispatch_active.vec_dot_x4[type];
        if (!f4)
            continue;
        int twin = 0;
        for (int l = G4_CPU_AVX2; l <= g4_cpu_level(); l++)
            twin |= g4_kernel_vec_dot_x4(l, type) == f4 && g4_kernel_vec_dot(l, type) == g4_dispatch_active.vec_dot[type];
        CHECKF(twin, "active vec_dot_x4 of type %u is not the twin of the active vec_dot", (unsigned)type);
    }
}

int main(void)
{
    test_dispatch();
    test_dispatch_x4();
    for (int level = G4_CPU_AVX2; level < G4_CPU_LEVELS; level++) {
        if (level > g4_cpu_detected()) {
            printf("  %s: this CPU (or build) lacks it: skipped\n", g4_cpu_level_name(level));
            continue;
        }
        test_quantize_act(level);
        test_vec_dot(level);
        test_vec_dot_x4(level);
    }
    return tu_finish("simd");
}
