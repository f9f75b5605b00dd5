/*
 * test_sgemm.c - the f32 matrix product of kernels/sgemm.h.
 *
 *  - Every CPU level this machine runs (scalar, AVX2, AVX-512), with 1, 2
 *    and 3 threads, gives exactly the bits of the float contract of sgemm.h
 *    (K chunks of G4_SGEMM_KC fused multiply-add chains from zero, chunk
 *    sums added in order to the bias), computed here by a loop written from
 *    that contract, and so does the library's scalar twin g4_sgemm_ref.
 *    Shapes cover single elements, tiles cut at every edge (rows past the
 *    register tile, outputs past a 32-wide panel, K past a chunk or shorter
 *    than one), several row chunks and panel groups, row strides wider than
 *    the rows, with and without bias; nothing outside the n_tok x N output
 *    (the stride padding) is written.
 *  - Against a double-precision product: every element within the
 *    worst-case rounding bound of the contract, (KC + K/KC + 2) ulp of
 *    sum|terms|, and on the projector's widest product (K = 6912, inputs
 *    with a mean like normalised pixels) within 1e-6 of the largest output;
 *    activations of 1e5 (past f16's range, spec §2.8) stay exact to that
 *    bound.
 *  - Packing: the panel layout (panel p, step k, lane j = W[32p + j][k],
 *    zeros past N) from f32, and g4_sgemm_pack of F16 / BF16 / Q8_0 / F32
 *    matrices equals packing their rows converted by g4_dequantize_row,
 *    bit for bit, half-precision specials included (subnormals, infinities,
 *    signalling and quiet NaNs, -0; in the 8-wide part and the tail of a
 *    row); the rows-done callback sees every stored row once; the same bits
 *    for any thread count; empty matrices; n_tok = 0 writes nothing.
 */
#include "kernels/dispatch.h"
#include "kernels/quant.h"
#include "kernels/sgemm.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_s = 0x5E33;
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
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

enum { KIND_GAUSS, KIND_SCALES, KIND_LARGE, KIND_PIXELS };

static float sample(int kind, int64_t k)
{
    switch (kind) {
    case KIND_SCALES: return ldexpf(gauss(), (int)(rnd() % 41) - 20); /* magnitudes 2^-20 .. 2^20 */
    case KIND_LARGE:  return (float)((0.5 + unif()) * 1e5 * (rnd() & 1 ? 1 : -1));
    case KIND_PIXELS: return (float)(unif() * 2.0) + 0.01f * (float)(k % 7);
    default:          return gauss();
    }
}

/* The contract of sgemm.h, written out here on its own. */
static float contract(const float *a, const float *w, int64_t K, float bias)
{
    float c = bias;
    for (int64_t k0 = 0; k0 < K; k0 += G4_SGEMM_KC) {
        float p = 0.0f;
        for (int64_t k = k0; k < K && k < k0 + G4_SGEMM_KC; k++) p = fmaf(a[k], w[k], p);
        c = c + p;
    }
    return c;
}

static bool same_bits(float x, float y) { return memcmp(&x, &y, sizeof x) == 0; }

static const uint32_t SENTINEL = 0x7fc0beefu;

static g4_pool *pools[3]; /* NULL (the caller only), 2 threads, 3 threads */

static int levels_run[G4_CPU_LEVELS];

typedef struct {
    int64_t n_tok, N, K, lda, ldc;
    bool bias;
    int kind_a, kind_w;
} shape;

/* One shape: all levels and pools against the contract (bits) and double. */
static double run_case(shape s, double *worst_rel)
{
    const int64_t n_tok = s.n_tok, N = s.N, K = s.K, lda = s.lda, ldc = s.ldc;
    float *a = malloc(sizeof(float) * (size_t)(n_tok * lda + 1));
    float *w = malloc(sizeof(float) * (size_t)(N * K));
    float *bias = s.bias ? malloc(sizeof(float) * (size_t)N) : NULL;
    float *want = malloc(sizeof(float) * (size_t)(n_tok * N + 1));
    float *a_dense = malloc(sizeof(float) * (size_t)(n_tok * K + 1));
    float *got = malloc(sizeof(float) * (size_t)(n_tok * ldc + 1));
    double *ref = malloc(sizeof(double) * (size_t)(n_tok * N + 1));
    double *bound = malloc(sizeof(double) * (size_t)(n_tok * N + 1));
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t k = 0; k < lda; k++) a[t * lda + k] = k < K ? sample(s.kind_a, k) : NAN; /* the stride gap is never read */
    for (int64_t i = 0; i < N * K; i++) w[i] = sample(s.kind_w, i % K) / (float)sqrt((double)K);
    for (int64_t n = 0; s.bias && n < N; n++) bias[n] = 0.1f * gauss();
    for (int64_t t = 0; t < n_tok; t++) memcpy(a_dense + t * K, a + t * lda, sizeof(float) * (size_t)K);

    const double u = 0x1p-24, nb = (double)((K + G4_SGEMM_KC - 1) / G4_SGEMM_KC);
    double maxref = 0.0, maxerr = 0.0;
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t n = 0; n < N; n++) {
            const float b = bias ? bias[n] : 0.0f;
            want[t * N + n] = contract(a + t * lda, w + n * K, K, b);
            double r = b, m = fabs((double)b);
            for (int64_t k = 0; k < K; k++) {
                r += (double)a[t * lda + k] * w[n * K + k];
                m += fabs((double)a[t * lda + k] * w[n * K + k]);
            }
            ref[t * N + n] = r;
            bound[t * N + n] = 1.01 * (G4_SGEMM_KC + nb + 2) * u * m;
            if (fabs(r) > maxref) maxref = fabs(r);
        }
    int bad_bound = 0;
    for (int64_t i = 0; i < n_tok * N; i++) {
        const double e = fabs((double)want[i] - ref[i]);
        if (e > maxerr) maxerr = e;
        if (!(e <= bound[i])) bad_bound++;
    }
    CHECKF(bad_bound == 0, "%lldx%lldx%lld: %d elements past the rounding bound", (long long)n_tok, (long long)N,
           (long long)K, bad_bound);
    if (worst_rel && maxref > 0 && maxerr / maxref > *worst_rel) *worst_rel = maxerr / maxref;

    /* the library's scalar twin */
    g4_sgemm_ref(w, N, K, a_dense, n_tok, bias, got);
    int bad = 0;
    for (int64_t i = 0; i < n_tok * N; i++) bad += !same_bits(got[i], want[i]);
    CHECKF(bad == 0, "g4_sgemm_ref %lldx%lldx%lld: %d elements differ from the contract", (long long)n_tok,
           (long long)N, (long long)K, bad);

    g4_sgemm_w pw;
    CHECK(g4_sgemm_pack_f32(pools[2], w, N, K, K, &pw));
    for (int level = 0; level < G4_CPU_LEVELS; level++) {
        if (level > g4_cpu_detected()) continue;
        levels_run[level]++;
        for (int pi = 0; pi < 3; pi++) {
            for (int64_t i = 0; i < n_tok * ldc; i++) memcpy(got + i, &SENTINEL, sizeof SENTINEL);
            CHECK(g4_sgemm_at(level, pools[pi], &pw, a, lda, n_tok, bias, got, ldc));
            int diff = 0, touched = 0;
            for (int64_t t = 0; t < n_tok; t++)
                for (int64_t n = 0; n < ldc; n++) {
                    uint32_t bits;
                    memcpy(&bits, got + t * ldc + n, sizeof bits);
                    if (n >= N) touched += bits != SENTINEL;
                    else diff += !same_bits(got[t * ldc + n], want[t * N + n]);
                }
            CHECKF(diff == 0 && touched == 0, "level %s, %d threads, %lldx%lldx%lld lda %lld ldc %lld bias %d: %d differ, %d written past N",
                   g4_cpu_level_name(level), g4_pool_size(pools[pi]), (long long)n_tok, (long long)N, (long long)K,
                   (long long)lda, (long long)ldc, s.bias, diff, touched);
        }
    }
    /* the active level through the plain entry point */
    for (int64_t i = 0; i < n_tok * ldc; i++) got[i] = -1.0f;
    CHECK(g4_sgemm(pools[1], &pw, a, lda, n_tok, bias, got, ldc));
    bad = 0;
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t n = 0; n < N; n++) bad += !same_bits(got[t * ldc + n], want[t * N + n]);
    CHECKF(bad == 0, "g4_sgemm (active level %s): %d differ", g4_cpu_level_name(g4_cpu_level()), bad);

    g4_sgemm_w_free(&pw);
    free(a); free(w); free(bias); free(want); free(a_dense); free(got); free(ref); free(bound);
    return maxref > 0 ? maxerr / maxref : 0.0;
}

static void test_shapes(void)
{
    const shape shapes[] = {
        { 1, 1, 1, 1, 1, false, KIND_GAUSS, KIND_GAUSS },
        { 1, 1, 1, 1, 1, true, KIND_GAUSS, KIND_GAUSS },
        { 12, 32, 128, 128, 32, false, KIND_GAUSS, KIND_GAUSS },   /* one full AVX-512 tile, one chunk */
        { 6, 32, 128, 128, 32, true, KIND_GAUSS, KIND_GAUSS },     /* one full AVX2 tile */
        { 13, 33, 129, 131, 40, true, KIND_GAUSS, KIND_GAUSS },    /* one past every edge */
        { 11, 31, 127, 127, 31, false, KIND_SCALES, KIND_GAUSS },  /* one short of every edge */
        { 5, 70, 7, 9, 71, true, KIND_GAUSS, KIND_SCALES },        /* K shorter than a chunk */
        { 37, 100, 300, 300, 100, true, KIND_SCALES, KIND_SCALES },
        { 25, 130, 640, 641, 130, false, KIND_GAUSS, KIND_GAUSS }, /* audio-like K, two panel groups */
        { 400, 40, 140, 150, 45, true, KIND_GAUSS, KIND_GAUSS },   /* two row chunks */
        { 3, 161, 1000, 1000, 161, true, KIND_LARGE, KIND_GAUSS }, /* 1e5 activations (past f16) */
        { 24, 96, 512, 512, 96, true, KIND_PIXELS, KIND_GAUSS },
    };
    double worst = 0.0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) run_case(shapes[i], &worst);
    fprintf(stderr, "sgemm: worst max|err| / max|ref| over the small shapes: %.2e\n", worst);
}

/* The projector's widest product, K = 6912 with pixel-like inputs. */
static void test_wide(void)
{
    shape s = { 8, 48, 6912, 6912, 48, true, KIND_PIXELS, KIND_GAUSS };
    double rel = run_case(s, NULL);
    CHECKF(rel <= 1e-6, "K = 6912: max|err| / max|ref| = %.3g", rel);
    fprintf(stderr, "sgemm: K = 6912: max|err| / max|ref| = %.2e\n", rel);
}

static void test_pack_layout(void)
{
    const int64_t N = 70, K = 37, ld = 40;
    float *w = malloc(sizeof(float) * (size_t)(N * ld));
    for (int64_t i = 0; i < N * ld; i++) w[i] = (float)i;
    g4_sgemm_w p1, p3;
    CHECK(g4_sgemm_pack_f32(NULL, w, N, K, ld, &p1));
    CHECK(g4_sgemm_pack_f32(pools[2], w, N, K, ld, &p3));
    CHECK(p1.n == N && p1.k == K && p1.panels);
    CHECK(g4_sgemm_w_bytes(&p1) == 3 * 32 * K * sizeof(float));
    int bad = 0;
    for (int64_t p = 0; p < 3; p++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t j = 0; j < 32; j++) {
                const int64_t n = p * 32 + j;
                const float v = p1.panels[(p * K + k) * 32 + j];
                bad += n < N ? v != w[n * ld + k] : v != 0.0f;
            }
    CHECKF(bad == 0, "panel layout: %d misplaced", bad);
    CHECK(memcmp(p1.panels, p3.panels, g4_sgemm_w_bytes(&p1)) == 0);
    g4_sgemm_w_free(&p1);
    g4_sgemm_w_free(&p3);
    CHECK(p1.panels == NULL && p1.n == 0);
    g4_sgemm_w_free(NULL);
    CHECK(!g4_sgemm_pack_f32(NULL, w, N, K, K - 1, &p1)); /* stride shorter than a row */
    CHECK(p1.panels == NULL);
    CHECK(g4_sgemm_pack_f32(NULL, w, 0, K, ld, &p1) && p1.panels == NULL && g4_sgemm_w_bytes(&p1) == 0);
    float c[4] = { 1, 2, 3, 4 };
    CHECK(g4_sgemm(NULL, &p1, w, ld, 1, NULL, c, 4) && c[0] == 1 && c[3] == 4); /* no outputs */
    CHECK(g4_sgemm_pack_f32(NULL, w, N, K, ld, &p1));
    CHECK(g4_sgemm(pools[1], &p1, w, ld, 0, NULL, c, 4) && c[0] == 1 && c[3] == 4); /* no rows */
    g4_sgemm_w_free(&p1);
    free(w);
}

/* g4_sgemm_rows_done: counts how often each stored row was reported
 * (panels report disjoint rows, so threads never write the same slot) */
typedef struct {
    const uint8_t *base;
    uint64_t row_bytes;
    int64_t rows;
    int *seen;
    int misaligned;
} done_log;

static void rows_done(void *ctx, const void *rows, uint64_t bytes)
{
    done_log *d = ctx;
    const uint64_t off = (uint64_t)((const uint8_t *)rows - d->base);
    if (off % d->row_bytes || bytes % d->row_bytes || off / d->row_bytes + bytes / d->row_bytes > (uint64_t)d->rows) {
        d->misaligned++;
        return;
    }
    for (uint64_t r = off / d->row_bytes; r < (off + bytes) / d->row_bytes; r++) d->seen[r]++;
}

/* g4_sgemm_pack of each stored type = packing its rows converted to f32;
 * the rows_done callback sees every stored row once */
static void test_pack_types(void)
{
    const uint32_t types[] = { G4_TYPE_F32, G4_TYPE_F16, G4_TYPE_BF16, G4_TYPE_Q8_0 };
    const int64_t N = 45, KMAX = 101;
    float *src = malloc(sizeof(float) * (size_t)(N * KMAX)), *deq = malloc(sizeof(float) * (size_t)(N * KMAX));
    for (int64_t i = 0; i < N * KMAX; i++) src[i] = gauss();
    /* half-precision specials, at the start (8-wide conversion) and the
     * tail (one at a time) of a row: subnormals, infinities, signalling
     * and quiet NaNs, -0 */
    static const uint16_t f16_special[] = { 0x0001, 0x03ff, 0x7c00, 0xfc00, 0x7c01, 0x7e00, 0x8000, 0xfdff };
    static const uint16_t bf16_special[] = { 0x0001, 0x007f, 0x7f80, 0xff80, 0x7f81, 0x7fc0, 0x8000, 0xffbf };
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const int64_t K = types[ti] == G4_TYPE_Q8_0 ? 96 : KMAX; /* 101: a tail past the 8-wide steps */
        uint64_t rb = 0;
        CHECK(g4_row_size(types[ti], (uint64_t)K, &rb));
        uint8_t *data = malloc((size_t)(rb * (uint64_t)N));
        for (int64_t r = 0; r < N; r++) g4_quantize_row(types[ti], src + r * K, data + (uint64_t)r * rb, K);
        if (types[ti] == G4_TYPE_F16 || types[ti] == G4_TYPE_BF16) {
            const uint16_t *sp = types[ti] == G4_TYPE_F16 ? f16_special : bf16_special;
            uint16_t *row3 = (uint16_t *)(void *)(data + 3 * rb);
            for (int i = 0; i < 8; i++) {
                row3[i] = sp[i];
                row3[K - 1 - i] = sp[i];
            }
        }
        for (int64_t r = 0; r < N; r++) g4_dequantize_row(types[ti], data + (uint64_t)r * rb, deq + r * K, K);
        /* the conversion itself, checked element-wise where it is simple */
        if (types[ti] == G4_TYPE_F16)
            CHECK(deq[K + 5] == g4_f16_to_f32(((const uint16_t *)(data + rb))[5]));
        if (types[ti] == G4_TYPE_F32)
            CHECK(memcmp(deq, src, sizeof(float) * (size_t)(N * K)) == 0);
        g4_mat m = { types[ti], data, N, K, rb };
        g4_sgemm_w a, b, c;
        int seen[45] = { 0 };
        done_log log = { data, rb, N, seen, 0 };
        CHECK(g4_sgemm_pack(pools[2], &m, rows_done, &log, &a));
        int once = 0;
        for (int64_t r = 0; r < N; r++) once += seen[r] == 1;
        CHECKF(once == N && log.misaligned == 0, "rows_done: %d of %lld rows reported once, %d bad ranges", once,
               (long long)N, log.misaligned);
        CHECK(g4_sgemm_pack(NULL, &m, NULL, NULL, &c));
        CHECK(g4_sgemm_pack_f32(NULL, deq, N, K, K, &b));
        CHECK(g4_sgemm_w_bytes(&b) == 2 * 32 * (uint64_t)K * sizeof(float));
        CHECKF(a.n == b.n && a.k == b.k && memcmp(a.panels, b.panels, g4_sgemm_w_bytes(&b)) == 0 &&
                   memcmp(c.panels, b.panels, g4_sgemm_w_bytes(&b)) == 0,
               "pack of type %u differs from its f32 rows", types[ti]);
        g4_sgemm_w_free(&a);
        g4_sgemm_w_free(&b);
        g4_sgemm_w_free(&c);
        free(data);
    }
    free(src);
    free(deq);
}

int main(void)
{
    pools[0] = NULL;
    pools[1] = g4_pool_new(2);
    pools[2] = g4_pool_new(3);
    CHECK(pools[1] && pools[2]);
    fprintf(stderr, "sgemm: CPU level %s (detected %s)\n", g4_cpu_level_name(g4_cpu_level()),
            g4_cpu_level_name(g4_cpu_detected()));
    test_pack_layout();
    test_pack_types();
    test_shapes();
    test_wide();
    for (int l = 0; l < G4_CPU_LEVELS; l++)
        fprintf(stderr, "sgemm: level %s: %s\n", g4_cpu_level_name(l), levels_run[l] ? "tested" : "not on this CPU");
    CHECK(levels_run[G4_CPU_SCALAR] > 0);
    g4_pool_free(pools[1]);
    g4_pool_free(pools[2]);
    return tu_finish("sgemm");
}
