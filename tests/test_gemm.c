/*
 * test_gemm.c - the matrix kernels (kernels/dispatch.h g4_gemm_kernel) of
 * every CPU level this machine runs, against the same level's one-row
 * kernel g4_vec_dot_fn, bit for bit:
 *
 *   for random weight matrices (random bytes, random finite f16 scales,
 *   -128 and every nibble included) and activation rows encoded from
 *   floats of several kinds (NaN/inf rows included), every y[t][r] of
 *   run() equals vec_dot(row r, activation t) exactly (memcmp; any NaN
 *   matches any NaN), for token counts on both sides of G4_GEMM_MIN_TOK and
 *   of the 16-token groups and the 512-token super-groups, row counts that
 *   are not multiples of the row tiles, columns past one K chunk, and row
 *   ranges split at odd places (as threads would);
 *   g4_matmul gives the same bits as g4_vec_dot of its own encoded rows;
 *   nothing outside y[t][r0..r1) is written.
 * The one-row kernels themselves are held to the scalar twins by
 * test_simd.c.  Buffers are allocated at their exact sizes (ASan).
 */
#include "kernels/dispatch.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_s = 0x6E33;
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

/* a finite half of moderate exponent (products of two stay finite) */
static uint16_t rnd_half(void)
{
    return (uint16_t)(((rnd() & 1) << 15) | ((5 + rnd() % 20) << 10) | (rnd() & 0x3ff));
}

/* a half that is sometimes not an ordinary number: inf, NaN, zero, subnormal */
static uint16_t odd_half(void)
{
    static const uint16_t H[] = { 0x7C00, 0xFC00, 0x7E00, 0x0000, 0x8000, 0x0001, 0x03FF, 0x7BFF };
    return rnd() % 4 == 0 ? H[rnd() % (sizeof H / sizeof *H)] : rnd_half();
}

/* weight bytes: wkind 0 random; 1 every byte value at every offset (a
 * counter stepped by an odd number, so each position of a block meets all
 * 256 values over 256 blocks); 2 all 0xFF (the largest quants, all high
 * bits set, the most negative scales); 3 random with odd scales (inf, NaN,
 * zero, subnormal) */
static void gen_w_kind(uint32_t type, uint8_t *w, size_t bytes, int wkind)
{
    for (size_t i = 0; i < bytes; i++)
        w[i] = wkind == 2 ? 0xFF : (uint8_t)rnd();
    const g4_type_traits *t = g4_type_get(type);
    if (wkind == 1)
        for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)(i / t->type_size + 7 * (i % t->type_size));
    for (size_t b = 0; b < bytes / t->type_size; b++) {
        uint8_t *p = w + b * t->type_size;
        const uint16_t h[2] = { wkind == 3 ? odd_half() : rnd_half(), wkind == 3 ? odd_half() : rnd_half() };
        switch (type) {
        case G4_TYPE_Q4_0: case G4_TYPE_Q8_0: memcpy(p, h, 2); break;
        case G4_TYPE_Q4_K: case G4_TYPE_Q5_K: memcpy(p, h, 4); break;
        case G4_TYPE_Q6_K: memcpy(p + 208, h, 2); break;
        default: break;
        }
    }
}

static void gen_w(uint32_t type, uint8_t *w, size_t bytes) { gen_w_kind(type, w, bytes, 0); }

/* kind 0: gaussian of a random scale; 1: with outliers and zero blocks;
 * 2: NaN/inf in a few places; 3: all zero; 4: one magnitude, random signs
 * (every activation at +-127: the largest integer sums) */
static void gen_x(int kind, float *x, int64_t n)
{
    const float sc = (float)pow(10.0, unif() * 6 - 3);
    for (int64_t i = 0; i < n; i++) x[i] = gauss() * sc;
    if (kind == 1)
        for (int64_t i = 0; i < n; i++) {
            if (rnd() % 40 == 0) x[i] *= 1e3f;
            if (i % 32 == 0 && rnd() % 5 == 0) memset(x + i, 0, (size_t)(n - i < 32 ? n - i : 32) * sizeof *x);
        }
    if (kind == 2)
        for (int k = 0; k < 2; k++) x[rnd() % (uint64_t)n] = (rnd() & 1) ? NAN : INFINITY;
    if (kind == 3)
        memset(x, 0, (size_t)n * sizeof *x);
    if (kind == 4)
        for (int64_t i = 0; i < n; i++) x[i] = (rnd() & 1) ? sc : -sc;
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b)); }

/* wkind: gen_w_kind; xkind: gen_x kind of every token, or 0 for a random mix */
typedef struct { int64_t rows, cols, n_tok; int wkind, xkind; } shape;

/* one matrix, one set of activations: run() over the whole range and over
 * split ranges, both against vec_dot */
static int check_shape(int level, uint32_t type, const g4_gemm_kernel *k, g4_vec_dot_fn vd, shape s, int *cases)
{
    const uint32_t vdt = g4_vec_dot_type(type);
    const size_t wrb = rbytes(type, s.cols), ab = rbytes(vdt, s.cols);
    uint8_t *w = malloc(wrb * (size_t)s.rows);
    uint8_t *act = malloc(ab * (size_t)s.n_tok);
    float *x = malloc((size_t)s.cols * sizeof *x);
    gen_w_kind(type, w, wrb * (size_t)s.rows, s.wkind);
    for (int64_t t = 0; t < s.n_tok; t++) {
        gen_x(s.xkind ? s.xkind : (int)(rnd() % 8 == 0 ? 2 + rnd() % 2 : rnd() % 2), x, s.cols);
        g4_quantize_act_scalar(vdt, x, act + (size_t)t * ab, s.cols);
    }
    const size_t pb = k->prep_bytes(s.n_tok, s.cols);
    void *prep = aligned_alloc(64, (pb + 63) / 64 * 64 + 64);
    k->prep(act, ab, s.n_tok, s.cols, prep);
    int bad_prep = 0;
    if (k->prep_group && s.n_tok >= G4_GEMM_MIN_TOK) {
        /* the groups laid out one by one, in reverse order, into a buffer
         * that starts as garbage: the same bytes as prep's */
        void *prep2 = aligned_alloc(64, (pb + 63) / 64 * 64 + 64);
        memset(prep2, 0x5A, pb);
        const int64_t ng = (s.n_tok + k->group_tokens - 1) / k->group_tokens;
        for (int64_t g = ng - 1; g >= 0; g--)
            k->prep_group(act, ab, s.n_tok, s.cols, g, prep2);
        bad_prep = memcmp(prep, prep2, pb) != 0;
        CHECKF(!bad_prep, "%s gemm %s rows %lld cols %lld n_tok %lld: prep_group bytes differ from prep's",
               g4_cpu_level_name(level), g4_type_get(type)->name, (long long)s.rows, (long long)s.cols, (long long)s.n_tok);
        free(prep2);
    }
    const size_t ny = (size_t)s.rows * (size_t)s.n_tok;
    float *y = malloc(ny * sizeof *y), *y2 = malloc(ny * sizeof *y2);
    memset(y, 0xA5, ny * sizeof *y);
    memset(y2, 0xA5, ny * sizeof *y2);
    k->run(w, wrb, 0, s.rows, s.cols, prep, act, ab, s.n_tok, y, s.rows);
    /* ranges cut at odd rows, in reverse order */
    int64_t cuts[4] = { 0, s.rows / 3, s.rows / 3 + (s.rows > 20 ? 17 : 1), s.rows };
    if (cuts[2] > s.rows) cuts[2] = s.rows;
    for (int c = 2; c >= 0; c--)
        if (cuts[c + 1] > cuts[c])
            k->run(w, wrb, cuts[c], cuts[c + 1], s.cols, prep, act, ab, s.n_tok, y2, s.rows);
    int bad = 0;
    for (int64_t t = 0; t < s.n_tok; t++) {
        for (int64_t r = 0; r < s.rows; r++) {
            const float v = vd(w + (size_t)r * wrb, act + (size_t)t * ab, s.cols);
            const float a = y[t * s.rows + r], b = y2[t * s.rows + r];
            (*cases)++;
            if ((!same_bits(v, a) || !same_bits(v, b)) && bad++ < 4)
                fprintf(stderr, "  %s %s rows %lld cols %lld n_tok %lld: y[%lld][%lld] = %.9g / split %.9g, vec_dot %.9g\n",
                        g4_cpu_level_name(level), g4_type_get(type)->name, (long long)s.rows, (long long)s.cols,
                        (long long)s.n_tok, (long long)t, (long long)r, a, b, v);
        }
    }
    free(w); free(act); free(x); free(prep); free(y); free(y2);
    return bad;
}

/* run() on a sub-range writes nothing outside it */
static void check_bounds(int level, uint32_t type, const g4_gemm_kernel *k)
{
    const uint32_t vdt = g4_vec_dot_type(type);
    const int64_t rows = 40, cols = 2 * (int64_t)g4_type_get(type)->blck;
    const size_t wrb = rbytes(type, cols), ab = rbytes(vdt, cols);
    for (int64_t n_tok = 1; n_tok <= 20; n_tok += 19) {
        uint8_t *w = malloc(wrb * rows), *act = malloc(ab * (size_t)n_tok);
        float *x = malloc((size_t)cols * sizeof *x), *y = malloc((size_t)(rows * n_tok) * sizeof *y);
        gen_w(type, w, wrb * rows);
        for (int64_t t = 0; t < n_tok; t++) {
            gen_x(0, x, cols);
            g4_quantize_act_scalar(vdt, x, act + (size_t)t * ab, cols);
        }
        void *prep = aligned_alloc(64, (k->prep_bytes(n_tok, cols) + 63) / 64 * 64 + 64);
        k->prep(act, ab, n_tok, cols, prep);
        memset(y, 0x7F, (size_t)(rows * n_tok) * sizeof *y);
        k->run(w, wrb, 5, 29, cols, prep, act, ab, n_tok, y, rows);
        int outside = 0;
        for (int64_t t = 0; t < n_tok; t++)
            for (int64_t r = 0; r < rows; r++) {
                uint32_t u;
                memcpy(&u, &y[t * rows + r], 4);
                if ((r < 5 || r >= 29) && u != 0x7F7F7F7Fu) outside++;
            }
        CHECKF(outside == 0, "%s gemm %s n_tok %lld: %d values written outside rows [5, 29)", g4_cpu_level_name(level),
               g4_type_get(type)->name, (long long)n_tok, outside);
        free(w); free(act); free(x); free(y); free(prep);
    }
}

static void test_level(int level)
{
    static const uint32_t TYPES[] = { G4_TYPE_Q4_0, G4_TYPE_Q8_0, G4_TYPE_Q4_K, G4_TYPE_Q5_K, G4_TYPE_Q6_K };
    for (size_t ti = 0; ti < sizeof TYPES / sizeof *TYPES; ti++) {
        const uint32_t type = TYPES[ti];
        const g4_gemm_kernel *k = g4_kernel_gemm(level, type);
        if (!k) {
            printf("  %-6s gemm %-5s: none at this level\n", g4_cpu_level_name(level), g4_type_get(type)->name);
            continue;
        }
        const g4_vec_dot_fn vd = g4_kernel_vec_dot(level, type);
        CHECKF(vd != NULL, "%s gemm %s without a one-row kernel of the same level", g4_cpu_level_name(level),
               g4_type_get(type)->name);
        if (!vd)
            continue;
        const int64_t B = g4_type_get(type)->blck;
        const shape shapes[] = {
            { 1, B, 1, 0, 0 }, { 16, B, 1, 0, 0 }, { 37, 3 * B, 1, 0, 0 }, { 33, 5 * B, 2, 0, 0 }, { 18, 2 * B, 3, 0, 0 },
            { 8, B, 4, 0, 0 }, { 9, 3 * B, 5, 0, 0 }, { 23, 4 * B, 15, 0, 0 }, { 16, 2 * B, 16, 0, 0 }, { 17, B, 17, 0, 0 }, { 40, 2 * B, 33, 0, 0 },
            { 13, B * (B == 32 ? 130 : 17), 6, 0, 0 },   /* more than one K chunk */
            { 64, B == 32 ? 3840 : 3840, 1, 0, 0 },       /* a real row length, matrix-vector */
            { 24, B == 32 ? 3840 : 3840, 20, 0, 0 },      /* and matrix-matrix */
            { 9, B, 16 * 32 + 21, 0, 0 },                 /* more than one super-group of tokens */
            /* matrix-vector tiles of 16 rows: ragged row counts (tails of
             * 1 and 15 rows), several tiles, each split at odd rows */
            { 47, 2 * B, 1, 0, 0 }, { 65, 3 * B, 2, 0, 0 }, { 95, B, 3, 0, 0 }, { 49, 15 * B, 1, 0, 0 },
            /* every byte value, all 0xFF, odd scales; extreme and NaN/inf
             * activations, for both the matrix-vector and -matrix kernels */
            { 64, 4 * B, 1, 1, 0 }, { 33, 8 * B, 2, 1, 4 }, { 40, 8 * B, 21, 1, 4 },
            { 32, 3 * B, 1, 2, 4 }, { 17, 3 * B, 3, 2, 0 }, { 24, 2 * B, 18, 2, 4 },
            { 48, 2 * B, 1, 3, 0 }, { 35, 2 * B, 2, 0, 2 }, { 33, 2 * B, 3, 3, 2 }, { 24, 2 * B, 17, 3, 2 },
        };
        int cases = 0, bad = 0;
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
            bad += check_shape(level, type, k, vd, shapes[si], &cases);
        check_bounds(level, type, k);
        CHECKF(bad == 0, "%s gemm %s: %d of %d results differ from the one-row kernel's bits", g4_cpu_level_name(level),
               g4_type_get(type)->name, bad, cases);
        printf("  %-6s gemm %-5s: %s (%d results bit-identical to vec_dot)\n", g4_cpu_level_name(level),
               g4_type_get(type)->name, bad ? "FAIL" : "ok", cases - bad);
    }
}

/* g4_matmul (the active level) = g4_vec_dot of the activations it encodes,
 * for every batch size: what makes batched and one-by-one logits equal */
static void test_matmul(void)
{
    static const uint32_t TYPES[] = { G4_TYPE_Q4_0, G4_TYPE_Q8_0, G4_TYPE_Q4_K, G4_TYPE_Q5_K, G4_TYPE_Q6_K };
    g4_pool *pool = g4_pool_new(2);
    CHECK(pool != NULL);
    if (!pool) return;
    for (size_t ti = 0; ti < sizeof TYPES / sizeof *TYPES; ti++) {
        const uint32_t type = TYPES[ti], vdt = g4_vec_dot_type(type);
        const int64_t rows = 200, cols = 512, n_tok = 21;
        const size_t wrb = rbytes(type, cols), ab = rbytes(vdt, cols);
        uint8_t *w = malloc(wrb * rows), *a = malloc(ab);
        float *x = malloc((size_t)(cols * n_tok) * sizeof *x);
        float *y = malloc((size_t)(rows * n_tok) * sizeof *y), *y1 = malloc(rows * sizeof *y1);
        gen_w(type, w, wrb * rows);
        for (int64_t t = 0; t < n_tok; t++) gen_x(t % 2, x + t * cols, cols);
        g4_mat m = { type, w, rows, cols, wrb };
        g4_matmul(pool, &m, x, y, n_tok, false);
        int bad = 0;
        for (int64_t t = 0; t < n_tok; t++) {
            g4_matmul(pool, &m, x + t * cols, y1, 1, false);
            g4_quantize_act(vdt, x + t * cols, a, cols);
            for (int64_t r = 0; r < rows; r++) {
                const float v = g4_vec_dot(type, w + (size_t)r * wrb, a, cols);
                bad += !same_bits(v, y[t * rows + r]) || !same_bits(v, y1[r]);
            }
        }
        CHECKF(bad == 0, "g4_matmul %s: %d results differ from g4_vec_dot", g4_type_get(type)->name, bad);
        printf("  g4_matmul %-5s (%s): %s (batch of %lld and one by one = g4_vec_dot)\n", g4_type_get(type)->name,
               g4_cpu_level_name(g4_cpu_level()), bad ? "FAIL" : "ok", (long long)n_tok);
        free(w); free(a); free(x); free(y); free(y1);
    }
    g4_pool_free(pool);
}

/* the active matrix kernel is the twin of the active one-row kernel */
static void test_dispatch(void)
{
    CHECK(g4_kernel_gemm(G4_CPU_SCALAR, G4_TYPE_Q4_0) == NULL);
    CHECK(g4_kernel_gemm(7, G4_TYPE_Q4_0) == NULL);
    CHECK(g4_kernel_gemm(G4_CPU_AVX2, 1000) == NULL);
    for (uint32_t type = 0; type < 64; type++) {
        const g4_gemm_kernel *k = g4_dispatch_active.gemm[type];
        if (!k)
            continue;
        int twin = 0;
        for (int l = G4_CPU_AVX2; l <= g4_cpu_level(); l++)
            twin |= g4_kernel_gemm(l, type) == k && g4_kernel_vec_dot(l, type) == g4_dispatch_active.vec_dot[type];
        CHECKF(twin, "active gemm of type %u is not the twin of the active vec_dot", (unsigned)type);
    }
}

/* g4_matmul_geglu = g4_matmul(gate), g4_matmul(up), g4_geglu, bit for bit:
 * the fused path (one type and shape: one encoding, GeGLU per row block)
 * and the fallback (gate and up of different types), batches below and
 * above the matrix-matrix threshold, a row count off the 64-row items */
static void test_matmul_geglu(void)
{
    static const struct { uint32_t gate, up; } PAIRS[] = {
        { G4_TYPE_Q4_0, G4_TYPE_Q4_0 }, { G4_TYPE_Q8_0, G4_TYPE_Q8_0 }, { G4_TYPE_Q4_K, G4_TYPE_Q4_K },
        { G4_TYPE_Q6_K, G4_TYPE_Q6_K }, { G4_TYPE_Q4_K, G4_TYPE_Q6_K }, { G4_TYPE_F32, G4_TYPE_F32 },
    };
    static const int64_t NTOK[] = { 1, 3, 4, 21, 70 };
    g4_gelu_init();
    g4_pool *pool = g4_pool_new(2);
    CHECK(pool != NULL);
    if (!pool) return;
    const int64_t rows = 200, cols = 512;
    for (size_t pi = 0; pi < sizeof PAIRS / sizeof *PAIRS; pi++) {
        const size_t grb = rbytes(PAIRS[pi].gate, cols), urb = rbytes(PAIRS[pi].up, cols);
        uint8_t *wg = malloc(grb * rows), *wu = malloc(urb * rows);
        gen_w(PAIRS[pi].gate, wg, grb * rows);
        gen_w(PAIRS[pi].up, wu, urb * rows);
        const g4_mat gate = { PAIRS[pi].gate, wg, rows, cols, grb }, up = { PAIRS[pi].up, wu, rows, cols, urb };
        int bad = 0;
        for (size_t ni = 0; ni < sizeof NTOK / sizeof *NTOK; ni++) {
            const int64_t n_tok = NTOK[ni], ny = rows * n_tok;
            float *x = malloc((size_t)(cols * n_tok) * sizeof *x);
            float *g = malloc((size_t)ny * sizeof *g), *u = malloc((size_t)ny * sizeof *u);
            float *g2 = malloc((size_t)ny * sizeof *g2), *u2 = malloc((size_t)ny * sizeof *u2);
            for (int64_t t = 0; t < n_tok; t++) gen_x(t % 3 == 2 ? 2 : t % 2, x + t * cols, cols);
            g4_matmul(pool, &gate, x, g, n_tok, false);
            g4_matmul(pool, &up, x, u, n_tok, false);
            g4_geglu(pool, g, u, ny);
            memset(g2, 0xA5, (size_t)ny * sizeof *g2);
            g4_matmul_geglu(pool, &gate, &up, x, g2, u2, n_tok, false);
            for (int64_t i = 0; i < ny; i++)
                bad += !same_bits(g[i], g2[i]) || !same_bits(u[i], u2[i]);
            free(x); free(g); free(u); free(g2); free(u2);
        }
        CHECKF(bad == 0, "g4_matmul_geglu %s/%s: %d values differ from matmul, matmul, geglu",
               g4_type_get(PAIRS[pi].gate)->name, g4_type_get(PAIRS[pi].up)->name, bad);
        printf("  g4_matmul_geglu %s/%s: %s\n", g4_type_get(PAIRS[pi].gate)->name, g4_type_get(PAIRS[pi].up)->name,
               bad ? "FAIL" : "ok (= matmul, matmul, geglu for 1 to 70 tokens)");
        free(wg); free(wu);
    }
    g4_pool_free(pool);
}

int main(void)
{
    test_dispatch();
    for (int level = G4_CPU_AVX2; level < G4_CPU_LEVELS; level++) {
        if (level > g4_cpu_detected()) {
            printf("  %s: this CPU (or build) lacks it: skipped\n", g4_cpu_level_name(level));
            continue;
        }
        test_level(level);
    }
    test_matmul();
    test_matmul_geglu();
    return tu_finish("gemm");
}
