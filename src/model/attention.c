/*
 * attention.c - spec §2 steps 7-8 (scores, softmax, weighted sum of V) for a
 * batch of rows, in tiles:
 *
 *   work item = (tile of up to ATT_TILE consecutive rows of one sequence,
 *                KV head, group of up to ATT_SUB query heads sharing it)
 *
 * The keys the tile needs are walked in chunks of ATT_CHUNK positions
 * aligned to absolute multiples of ATT_CHUNK; each chunk of K and V is
 * converted to f32 once (from the f16 or f32 cache) into rows indexed by
 * the position's offset in its chunk, and used by every row and head of the
 * tile.  The softmax is computed online (running max M and sum L, rescaled
 * when the max grows), so memory does not grow with the context.
 *
 * Per chunk, on the AVX2 / AVX-512 levels (head_dim a multiple of the vector
 * width; other sizes and the scalar level take the plain per-key loop of
 * chunk_scalar), the chunk's work is done in three passes over the tile's
 * queries (all its rows x heads):
 *   - 7, scores: one query against a group of 8 / 16 keys at once, one
 *     vector accumulator per key (an FMA chain over the head dimension in
 *     the key's own lanes), then a transposed reduction whose addition tree
 *     is the same for every key of the group; so a key's score does not
 *     depend on its slot nor on the other keys loaded with it (slots outside
 *     the tile's keys read zeroed rows; outside a row's keys they are masked
 *     out).  Key group outer, queries inner: the group's K rows stay in L1.
 *   - 8, softmax: exp on whole vectors of keys (exp_v below: <= 1 ulp from
 *     expf, 0 below about -104, exp(0) = 1; the levels' only exp, also for
 *     the rescale factor), keys outside the row's range set to exactly 0; L
 *     gets the chunk's e summed lane-wise (lane = offset in the chunk), then
 *     reduced by a fixed tree.
 *   - 8, weighted sum of V: queries with the same key range in groups of up
 *     to 4; per group and slice of 64 (AVX2: 32) floats of the head, a
 *     register tile takes out * rescale, accumulates one FMA per key in
 *     position order, and is stored once.  Slice outer, groups inner: the V
 *     slice stays in L1.
 *
 * Determinism: every (row, head) sees the same chunks (absolute boundaries
 * intersected with its own key range), the same lanes (a key's lane is its
 * offset in the chunk) and the same operations whatever the tile, the batch
 * or the other rows are, so batched, token-by-token and multi-sequence runs
 * stay bit-identical on a given CPU level.  Different levels may differ in
 * the last bits (other summation orders, expf vs exp_v).
 */
#include <math.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "kernels/quant.h"
#include "model/model.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ATT_X86 1
#endif

/* key groups of 8 / 16 must not straddle chunks */
#if G4_ATT_CHUNK % 16 != 0
#error "attention.c: G4_ATT_CHUNK must be a multiple of 16"
#endif

/* Queries of one work item: ATT_TILE rows x ATT_SUB heads. */
#define ATT_MAXQ (G4_ATT_TILE * G4_ATT_SUB)

/* One chunk for the queries of a work item: K and V rows f32, row i =
 * position c0 + i; query i sees rows ca[i]..cb[i] (none when ca > cb). */
typedef struct {
    uint32_t n, hd;
    const float *k, *v;
    const float *q[ATT_MAXQ];
    float *o[ATT_MAXQ];
    uint32_t ca[ATT_MAXQ], cb[ATT_MAXQ];
    float *M, *L;
} att_chunk;

typedef void (*chunk_fn)(const att_chunk *c);

/* ---- scalar level (and head sizes the vector kernels do not take) ------ */

static float dot_scalar(const float *a, const float *b, uint32_t n)
{
    float acc[8] = { 0 };
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void chunk_scalar(const att_chunk *c)
{
    const uint32_t hd = c->hd;
    float s[G4_ATT_CHUNK];
    for (uint32_t i = 0; i < c->n; i++) {
        uint32_t a = c->ca[i], b = c->cb[i];
        if (a > b) continue;
        const float *q = c->q[i];
        float *out = c->o[i];
        /* 7: scores with scale 1.0 (Gemma 4 does not divide by sqrt(hd)) */
        float cm = -INFINITY;
        for (uint32_t p = a; p <= b; p++) {
            s[p] = dot_scalar(q, c->k + (size_t)p * hd, hd);
            if (s[p] > cm) cm = s[p];
        }
        /* 8: online softmax, weighted sum of V */
        float *M = &c->M[i], *L = &c->L[i];
        if (cm > *M) {
            if (*M != -INFINITY) {
                float sc = expf(*M - cm);
                *L *= sc;
                for (uint32_t d = 0; d < hd; d++) out[d] *= sc;
            }
            *M = cm;
        }
        for (uint32_t p = a; p <= b; p++) {
            float e = expf(s[p] - *M);
            *L += e;
            const float *v = c->v + (size_t)p * hd;
            for (uint32_t d = 0; d < hd; d++) out[d] += e * v[d];
        }
    }
}

static void f16_row_scalar(const uint16_t *src, float *dst, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) dst[i] = g4_f16_to_f32(src[i]);
}

#ifdef ATT_X86
/* ---- exp_v: expf on vectors ----------------------------------------------
 * exp(x) = 2^n * e^r, n = round(x / ln 2), r = x - n ln 2 (ln 2 = 355/512 +
 * LN2_LO, the first product exact) in [-ln2/2, ln2/2], e^r = 1 + r + r^2 P(r)
 * with P of degree 5 fitted here for the relative error of e^r (about 5e-11
 * before float rounding); 2^n applied with a single rounding (scalef, or two
 * exact power-of-two factors on AVX2), so results in the subnormal range
 * are rounded once and x below about -104 gives +0.  Both levels evaluate
 * the same operations, hence the same bits; checked against glibc's expf on
 * every float of [-110, 88.7]: at most 1 ulp apart.  x is clamped to
 * [-110, 88.75] first (NaN stays NaN). */
#define EXP_LO -110.0f
#define EXP_HI 88.75f
#define EXP_LOG2E 1.44269504088896341f
#define EXP_LN2_HI 0.693359375f
#define EXP_LN2_LO -2.12194440054690583e-4f
#define EXP_P0 1.9790352962e-4f
#define EXP_P1 1.3944648672e-3f
#define EXP_P2 8.3334967494e-3f
#define EXP_P3 4.1666295379e-2f
#define EXP_P4 1.6666665673e-1f
#define EXP_P5 0.5f

__attribute__((target("avx2,fma"), always_inline)) static inline __m256 exp_v8(__m256 x)
{
    x = _mm256_max_ps(_mm256_set1_ps(EXP_LO), x);
    x = _mm256_min_ps(_mm256_set1_ps(EXP_HI), x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    /* 2^n = 2^n1 * 2^n2 with n1, n2 in [-80, 64]: y * 2^n1 is exact */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    __m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(y, f1), f2);
}

__attribute__((target("avx512f"), always_inline)) static inline __m512 exp_v16(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(EXP_LO), x);
    x = _mm512_min_ps(_mm512_set1_ps(EXP_HI), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P5));
    __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, n);
}

/* ---- AVX2 ------------------------------------------------------------------ */

__attribute__((target("avx2,f16c"))) static void f16_row_avx2(const uint16_t *src, float *dst, uint32_t n)
{
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = g4_f16_to_f32(src[i]);
}

/* s[0..7] = q . k[i * hd] for 8 key rows.  Reduction of the 8 accumulators
 * (lanes l of a 128-bit half written x_l): every key gets
 * half0 + half1 of (x0 + x2) + (x1 + x3), whatever its slot. */
__attribute__((target("avx2,fma"), always_inline)) static inline void scores8_avx2(const float *q, const float *k, size_t hd,
                                                                                    float *s)
{
    __m256 a[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
    for (size_t d = 0; d < hd; d += 8) {
        __m256 qv = _mm256_loadu_ps(q + d);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) a[i] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + (size_t)i * hd + d), a[i]);
    }
    __m256 t[4], u[2];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        t[i] = _mm256_add_ps(_mm256_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm256_unpackhi_ps(a[2 * i], a[2 * i + 1]));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) {
        __m256d x = _mm256_castps_pd(t[2 * i]), y = _mm256_castps_pd(t[2 * i + 1]);
        u[i] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(x, y)), _mm256_castpd_ps(_mm256_unpackhi_pd(x, y)));
    }
    _mm256_storeu_ps(s, _mm256_add_ps(_mm256_permute2f128_ps(u[0], u[1], 0x20), _mm256_permute2f128_ps(u[0], u[1], 0x31)));
}

static inline uint32_t lane_mask(uint32_t lanes, uint32_t g0, uint32_t a, uint32_t b)
{
    /* lanes g0..g0+lanes-1 that lie in [a, b] */
    uint32_t lo = a > g0 ? a - g0 : 0, hi = b - g0 < lanes - 1 ? b - g0 : lanes - 1;
    return (uint32_t)((2ull << hi) - (1ull << lo));
}

/* out[g] = out[g] * sc[g] + sum over keys p of e[g][p] * v[p], G queries x
 * DB vectors of 8 floats from d0, all in registers across the keys. */
__attribute__((target("avx2,fma"), always_inline)) static inline void vsum_avx2(int G, int DB, float *const *out,
                                                                                 const float *sc, const float *const *e,
                                                                                 const float *v, size_t hd, uint32_t n,
                                                                                 size_t d0)
{
    __m256 acc[4][8];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
        __m256 s = _mm256_set1_ps(sc[g]);
#pragma GCC unroll 8
        for (int i = 0; i < DB; i++) acc[g][i] = _mm256_mul_ps(_mm256_loadu_ps(out[g] + d0 + 8 * i), s);
    }
    const float *vp = v + d0;
    for (uint32_t p = 0; p < n; p++, vp += hd) {
        __m256 x[8];
#pragma GCC unroll 8
        for (int i = 0; i < DB; i++) x[i] = _mm256_loadu_ps(vp + 8 * i);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            __m256 w = _mm256_broadcast_ss(e[g] + p);
#pragma GCC unroll 8
            for (int i = 0; i < DB; i++) acc[g][i] = _mm256_fmadd_ps(w, x[i], acc[g][i]);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 8
        for (int i = 0; i < DB; i++) _mm256_storeu_ps(out[g] + d0 + 8 * i, acc[g][i]);
}

__attribute__((target("avx2,fma"), always_inline)) static inline void vsum_g_avx2(uint32_t G, int DB, float *const *out,
                                                                                   const float *sc,
                                                                                   const float *const *e,
                                                                                   const float *v, size_t hd,
                                                                                   uint32_t n, size_t d0)
{
    switch (G) {
    case 1: vsum_avx2(1, DB, out, sc, e, v, hd, n, d0); break;
    case 2: vsum_avx2(2, DB, out, sc, e, v, hd, n, d0); break;
    case 3: vsum_avx2(3, DB, out, sc, e, v, hd, n, d0); break;
    default: vsum_avx2(4, DB, out, sc, e, v, hd, n, d0); break;
    }
}

/* The AVX-512 scheme (chunk_avx512) with 8-float vectors. */
__attribute__((target("avx2,fma"))) static void chunk_avx2(const att_chunk *c)
{
    const size_t hd = c->hd;
    float sc[ATT_MAXQ];
    _Alignas(32) float P[ATT_MAXQ][G4_ATT_CHUNK]; /* scores, then e */
    uint32_t lo = G4_ATT_CHUNK, hi = 0;
    for (uint32_t i = 0; i < c->n; i++)
        if (c->ca[i] <= c->cb[i]) {
            if (c->ca[i] < lo) lo = c->ca[i];
            if (c->cb[i] > hi) hi = c->cb[i];
        }
    if (lo > hi) return;
    /* 7: scores (scale 1.0) */
    for (uint32_t g = lo / 8 * 8; g <= hi; g += 8) {
        const float *k = c->k + g * hd;
        for (uint32_t i = 0; i < c->n; i++) {
            if (c->ca[i] > c->cb[i] || c->cb[i] < g || c->ca[i] > g + 7) continue;
            if (hd == 256) scores8_avx2(c->q[i], k, 256, P[i] + g);
            else scores8_avx2(c->q[i], k, hd, P[i] + g);
        }
    }
    /* 8: online softmax */
    for (uint32_t i = 0; i < c->n; i++) {
        uint32_t a = c->ca[i], b = c->cb[i];
        if (a > b) continue;
        __m256 mx = _mm256_set1_ps(-INFINITY);
        for (uint32_t g = a / 8 * 8; g <= b; g += 8) {
            __m256 m = _mm256_castsi256_ps(_mm256_cmpgt_epi32(
                _mm256_set1_epi32(0),
                _mm256_sllv_epi32(_mm256_set1_epi32((int)lane_mask(8, g, a, b)), _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24))));
            mx = _mm256_max_ps(mx, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_loadu_ps(P[i] + g), m));
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float cm = _mm_cvtss_f32(h), M = c->M[i];
        sc[i] = 1.0f;
        if (cm > M) {
            if (M != -INFINITY) {
                sc[i] = _mm256_cvtss_f32(exp_v8(_mm256_set1_ps(M - cm)));
                c->L[i] *= sc[i];
            }
            c->M[i] = M = cm;
        }
        __m256 Mv = _mm256_set1_ps(M), Lv = _mm256_setzero_ps();
        for (uint32_t g = a / 8 * 8; g <= b; g += 8) {
            __m256 m = _mm256_castsi256_ps(_mm256_cmpgt_epi32(
                _mm256_set1_epi32(0),
                _mm256_sllv_epi32(_mm256_set1_epi32((int)lane_mask(8, g, a, b)), _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24))));
            __m256 e = _mm256_and_ps(m, exp_v8(_mm256_sub_ps(_mm256_loadu_ps(P[i] + g), Mv)));
            _mm256_storeu_ps(P[i] + g, e);
            Lv = _mm256_add_ps(Lv, e);
        }
        __m128 l = _mm_add_ps(_mm256_castps256_ps128(Lv), _mm256_extractf128_ps(Lv, 1));
        l = _mm_add_ps(l, _mm_movehl_ps(l, l));
        l = _mm_add_ss(l, _mm_movehdup_ps(l));
        c->L[i] += _mm_cvtss_f32(l);
    }
    /* 8: weighted sum of V */
    uint32_t gi[ATT_MAXQ], gn[ATT_MAXQ], ng = 0;
    for (uint32_t i = 0; i < c->n;) {
        uint32_t a = c->ca[i], b = c->cb[i], G = 1;
        if (a > b) { i++; continue; }
        while (G < 4 && i + G < c->n && c->ca[i + G] == a && c->cb[i + G] == b) G++;
        gi[ng] = i; gn[ng++] = G;
        i += G;
    }
    for (size_t d = 0; d < hd; d += 32)
        for (uint32_t q = 0; q < ng; q++) {
            uint32_t i = gi[q], G = gn[q], a = c->ca[i], n = c->cb[i] - a + 1;
            const float *e[4] = { 0 };
            for (uint32_t g = 0; g < G; g++) e[g] = P[i + g] + a;
            const float *v = c->v + a * hd;
            if (d + 32 <= hd) {
                if (G <= 2) vsum_g_avx2(G, 4, c->o + i, sc + i, e, v, hd, n, d);
                else { vsum_g_avx2(G, 2, c->o + i, sc + i, e, v, hd, n, d); vsum_g_avx2(G, 2, c->o + i, sc + i, e, v, hd, n, d + 16); }
            } else
                for (size_t dd = d; dd < hd; dd += 8) vsum_g_avx2(G, 1, c->o + i, sc + i, e, v, hd, n, dd);
        }
}

/* ---- AVX-512 --------------------------------------------------------------- */

__attribute__((target("avx512f"))) static void f16_row_avx512(const uint16_t *src, float *dst, uint32_t n)
{
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    for (; i < n; i++) dst[i] = g4_f16_to_f32(src[i]);
}

/* s[0..15] = q . k[i * hd] for 16 key rows.  Reduction of the 16
 * accumulators (lanes l of a 128-bit block written x_l, blocks b_j): every
 * key gets (b0 + b2) + (b1 + b3) of (x0 + x2) + (x1 + x3), whatever its slot. */
__attribute__((target("avx512f"), always_inline)) static inline void scores16_avx512(const float *q, const float *k,
                                                                                     size_t hd, float *s)
{
    __m512 a[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) a[i] = _mm512_setzero_ps();
    for (size_t d = 0; d < hd; d += 16) {
        __m512 qv = _mm512_loadu_ps(q + d);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) a[i] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k + (size_t)i * hd + d), a[i]);
    }
    __m512 t[8], u[4], w[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        t[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m512d x = _mm512_castps_pd(t[2 * i]), y = _mm512_castps_pd(t[2 * i + 1]);
        u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    _mm512_storeu_ps(s, _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                      _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1))));
}

__attribute__((target("avx512f"), always_inline)) static inline void vsum_avx512(int G, int DB, float *const *out,
                                                                                 const float *sc,
                                                                                 const float *const *e,
                                                                                 const float *v, size_t hd,
                                                                                 uint32_t n, size_t d0)
{
    __m512 acc[4][8];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
        __m512 s = _mm512_set1_ps(sc[g]);
#pragma GCC unroll 8
        for (int i = 0; i < DB; i++) acc[g][i] = _mm512_mul_ps(_mm512_loadu_ps(out[g] + d0 + 16 * i), s);
    }
    const float *vp = v + d0;
    for (uint32_t p = 0; p < n; p++, vp += hd) {
        __m512 x[8];
#pragma GCC unroll 8
        for (int i = 0; i < DB; i++) x[i] = _mm512_loadu_ps(vp + 16 * i);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            __m512 wg = _mm512_set1_ps(e[g][p]);
#pragma GCC unroll 8
            for (int i = 0; i < DB; i++) acc[g][i] = _mm512_fmadd_ps(wg, x[i], acc[g][i]);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 8
        for (int i = 0; i < DB; i++) _mm512_storeu_ps(out[g] + d0 + 16 * i, acc[g][i]);
}

/* G (1..4) as a constant for vsum_avx512 */
__attribute__((target("avx512f"), always_inline)) static inline void vsum_g_avx512(uint32_t G, int DB, float *const *out,
                                                                                   const float *sc,
                                                                                   const float *const *e,
                                                                                   const float *v, size_t hd,
                                                                                   uint32_t n, size_t d0)
{
    switch (G) {
    case 1: vsum_avx512(1, DB, out, sc, e, v, hd, n, d0); break;
    case 2: vsum_avx512(2, DB, out, sc, e, v, hd, n, d0); break;
    case 3: vsum_avx512(3, DB, out, sc, e, v, hd, n, d0); break;
    default: vsum_avx512(4, DB, out, sc, e, v, hd, n, d0); break;
    }
}

__attribute__((target("avx512f"))) static void chunk_avx512(const att_chunk *c)
{
    const size_t hd = c->hd;
    float sc[ATT_MAXQ];
    _Alignas(64) float P[ATT_MAXQ][G4_ATT_CHUNK]; /* scores, then e */
    uint32_t lo = G4_ATT_CHUNK, hi = 0;
    for (uint32_t i = 0; i < c->n; i++)
        if (c->ca[i] <= c->cb[i]) {
            if (c->ca[i] < lo) lo = c->ca[i];
            if (c->cb[i] > hi) hi = c->cb[i];
        }
    if (lo > hi) return;
    /* 7: scores (scale 1.0) of the key groups holding each query's keys;
     * group outer, so that its 16 K rows stay in L1 for all the queries;
     * the usual head sizes with a constant row stride */
    for (uint32_t g = lo / 16 * 16; g <= hi; g += 16) {
        const float *k = c->k + g * hd;
        for (uint32_t i = 0; i < c->n; i++) {
            if (c->ca[i] > c->cb[i] || c->cb[i] < g || c->ca[i] > g + 15) continue;
            if (hd == 256) scores16_avx512(c->q[i], k, 256, P[i] + g);
            else if (hd == 512) scores16_avx512(c->q[i], k, 512, P[i] + g);
            else scores16_avx512(c->q[i], k, hd, P[i] + g);
        }
    }
    /* 8: online softmax */
    for (uint32_t i = 0; i < c->n; i++) {
        uint32_t a = c->ca[i], b = c->cb[i];
        if (a > b) continue;
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (uint32_t g = a / 16 * 16; g <= b; g += 16)
            mx = _mm512_mask_max_ps(mx, (__mmask16)lane_mask(16, g, a, b), mx, _mm512_loadu_ps(P[i] + g));
        float cm = _mm512_reduce_max_ps(mx), M = c->M[i];
        sc[i] = 1.0f;
        if (cm > M) {
            if (M != -INFINITY) {
                sc[i] = _mm512_cvtss_f32(exp_v16(_mm512_set1_ps(M - cm)));
                c->L[i] *= sc[i];
            }
            c->M[i] = M = cm;
        }
        __m512 Mv = _mm512_set1_ps(M), Lv = _mm512_setzero_ps();
        for (uint32_t g = a / 16 * 16; g <= b; g += 16) {
            __m512 e = _mm512_maskz_mov_ps((__mmask16)lane_mask(16, g, a, b),
                                           exp_v16(_mm512_sub_ps(_mm512_loadu_ps(P[i] + g), Mv)));
            _mm512_storeu_ps(P[i] + g, e);
            Lv = _mm512_add_ps(Lv, e);
        }
        c->L[i] += _mm512_reduce_add_ps(Lv);
    }
    /* 8: weighted sum of V by groups of up to 4 queries with the same keys;
     * slices of 64 floats of the head outer, so that the V slice stays in
     * L1 for all the groups */
    uint32_t gi[ATT_MAXQ], gn[ATT_MAXQ], ng = 0;
    for (uint32_t i = 0; i < c->n;) {
        uint32_t a = c->ca[i], b = c->cb[i], G = 1;
        if (a > b) { i++; continue; }
        while (G < 4 && i + G < c->n && c->ca[i + G] == a && c->cb[i + G] == b) G++;
        gi[ng] = i; gn[ng++] = G;
        i += G;
    }
    for (size_t d = 0; d < hd; d += 64)
        for (uint32_t q = 0; q < ng; q++) {
            uint32_t i = gi[q], G = gn[q], a = c->ca[i], n = c->cb[i] - a + 1;
            const float *e[4] = { 0 };
            for (uint32_t g = 0; g < G; g++) e[g] = P[i + g] + a;
            const float *v = c->v + a * hd;
            if (d + 64 <= hd) vsum_g_avx512(G, 4, c->o + i, sc + i, e, v, hd, n, d);
            else
                for (size_t dd = d; dd < hd; dd += 16) vsum_g_avx512(G, 1, c->o + i, sc + i, e, v, hd, n, dd);
        }
}
#endif

#ifdef ATT_X86
__attribute__((target("avx2,f16c"))) static void to_f16_avx2(const float *src, uint16_t *dst, uint32_t n)
{
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = g4_f32_to_f16(src[i]);
}
#endif

void g4_f32_to_f16_row(const float *src, uint16_t *dst, uint32_t n)
{
#ifdef ATT_X86
    /* F16C rounds to nearest even like g4_f32_to_f16 (and ggml) */
    if (g4_cpu_level() >= G4_CPU_AVX2) { to_f16_avx2(src, dst, n); return; }
#endif
    for (uint32_t i = 0; i < n; i++) dst[i] = g4_f32_to_f16(src[i]);
}

/* ---- the tiles ----------------------------------------------------------- */

typedef struct {
    uint32_t first, count; /* rows of the batch */
} att_tile;

typedef struct {
    g4_context *ctx;
    const g4_row *rows;
    uint32_t layer, window;
    const att_tile *tiles;
    uint32_t n_kv, n_sub, sub;  /* KV heads; query-head groups per KV head, heads per group */
    uint32_t group;             /* keys per score group of the chunk kernel (1: per key) */
    chunk_fn chunk;
    void (*f16_row)(const uint16_t *, float *, uint32_t);
} att_job;

/* 2.5 and multimodal §4.5: the keys row r sees on this layer. */
static void key_range(const g4_layer *ly, const g4_row *r, uint32_t window, uint32_t *first, uint32_t *last)
{
    uint32_t pos = r->pos;
    *first = (ly->sliding && pos + 1 > window) ? pos + 1 - window : 0;
    *last = pos;
    if (ly->sliding && r->blk_end > pos + 1) {
        uint64_t reach = (uint64_t)pos + window - 1;
        *last = (uint64_t)r->blk_end - 1 < reach ? r->blk_end - 1 : (uint32_t)reach;
    }
}

static void attend_tile(void *arg, int64_t item, int tid)
{
    att_job *j = arg;
    g4_context *ctx = j->ctx;
    const g4_model *m = ctx->model;
    const g4_layer *ly = &m->layers[j->layer];
    const uint32_t hd = ly->head_dim, nq = m->n_head, gq = nq / ly->n_kv_head;
    const att_tile *tl = &j->tiles[item / ((int64_t)j->n_kv * j->n_sub)];
    uint32_t rest = (uint32_t)(item % ((int64_t)j->n_kv * j->n_sub));
    uint32_t kv_head = rest / j->n_sub, h0 = kv_head * gq + (rest % j->n_sub) * j->sub;
    uint32_t nh = j->sub;
    const g4_context *seq = j->rows[tl->first].seq;
    const g4_kv_layer *kv = &seq->kv[j->layer];
    const bool f16 = seq->kv_type == G4_KV_F16;

    float *kbuf = ctx->att + (size_t)tid * 2 * G4_ATT_CHUNK * m->max_head_dim;
    float *vbuf = kbuf + (size_t)G4_ATT_CHUNK * m->max_head_dim;
    float mx[ATT_MAXQ], sum[ATT_MAXQ];
    uint32_t rf[G4_ATT_TILE], rl[G4_ATT_TILE];
    uint32_t lo = UINT32_MAX, hi = 0;
    att_chunk c;
    c.n = tl->count * nh;
    c.hd = hd;
    c.k = kbuf;
    c.v = vbuf;
    c.M = mx;
    c.L = sum;
    for (uint32_t t = 0; t < tl->count; t++) {
        key_range(ly, &j->rows[tl->first + t], j->window, &rf[t], &rl[t]);
        if (rf[t] < lo) lo = rf[t];
        if (rl[t] > hi) hi = rl[t];
        for (uint32_t h = 0; h < nh; h++) {
            size_t qo = ((size_t)(tl->first + t) * nq + h0 + h) * hd;
            mx[t * nh + h] = -INFINITY;
            sum[t * nh + h] = 0.0f;
            c.q[t * nh + h] = ctx->q + qo;
            c.o[t * nh + h] = ctx->o + qo;
            memset(ctx->o + qo, 0, sizeof(float) * hd);
        }
    }

    for (uint64_t c0 = lo - lo % G4_ATT_CHUNK; c0 <= hi; c0 += G4_ATT_CHUNK) {
        uint32_t a0 = c0 > lo ? (uint32_t)c0 : lo;
        uint32_t b0 = c0 + G4_ATT_CHUNK - 1 < hi ? (uint32_t)(c0 + G4_ATT_CHUNK - 1) : hi;
        /* this chunk of K and V, f32, row = offset in the chunk */
        for (uint32_t p = a0; p <= b0; p++) {
            size_t off = (size_t)(p % kv->size) * kv->row + (size_t)kv_head * hd;
            float *kd = kbuf + (size_t)(p - c0) * hd, *vd = vbuf + (size_t)(p - c0) * hd;
            if (f16) {
                j->f16_row((const uint16_t *)kv->k + off, kd, hd);
                j->f16_row((const uint16_t *)kv->v + off, vd, hd);
            } else {
                memcpy(kd, (const float *)kv->k + off, sizeof(float) * hd);
                memcpy(vd, (const float *)kv->v + off, sizeof(float) * hd);
            }
        }
        /* key groups are scored whole: K rows of their slots outside
         * a0..b0 must hold numbers (their scores are masked out) */
        uint32_t ga = (uint32_t)(a0 - c0) / j->group * j->group, gb = (uint32_t)(b0 - c0) / j->group * j->group + j->group;
        if (ga < a0 - c0) memset(kbuf + (size_t)ga * hd, 0, sizeof(float) * hd * (a0 - c0 - ga));
        if (gb > b0 - c0 + 1) memset(kbuf + (size_t)(b0 - c0 + 1) * hd, 0, sizeof(float) * hd * (gb - (b0 - c0 + 1)));
        for (uint32_t t = 0; t < tl->count; t++) {
            uint32_t a = rf[t] > a0 ? rf[t] : a0, b = rl[t] < b0 ? rl[t] : b0;
            for (uint32_t h = 0; h < nh; h++) {
                c.ca[t * nh + h] = a <= b ? (uint32_t)(a - c0) : 1;
                c.cb[t * nh + h] = a <= b ? (uint32_t)(b - c0) : 0;
            }
        }
        j->chunk(&c);
    }
    for (uint32_t t = 0; t < tl->count; t++)
        for (uint32_t h = 0; h < nh; h++) {
            float inv = 1.0f / sum[t * nh + h];
            float *out = c.o[t * nh + h];
            for (uint32_t d = 0; d < hd; d++) out[d] *= inv;
        }
}

void g4_attention(g4_context *ctx, const g4_row *rows, uint32_t n, uint32_t layer)
{
    const g4_model *m = ctx->model;
    const g4_layer *ly = &m->layers[layer];
    att_tile *tiles = ctx->att_tiles; /* n <= n_batch entries */
    uint32_t n_tiles = 0;
    for (uint32_t t = 0; t < n;) {
        uint32_t k = 1;
        while (t + k < n && k < G4_ATT_TILE && rows[t + k].seq == rows[t].seq) k++;
        tiles[n_tiles++] = (att_tile){ t, k };
        t += k;
    }
    uint32_t gq = m->n_head / ly->n_kv_head;
    uint32_t sub = gq < G4_ATT_SUB ? gq : G4_ATT_SUB;
    while (gq % sub) sub--;
    att_job j = { ctx, rows, layer, m->sliding_window, tiles, ly->n_kv_head, gq / sub, sub,
                  1, chunk_scalar, f16_row_scalar };
#ifdef ATT_X86
    /* the vector kernels take whole vectors of the head dimension; other
     * sizes (small test models) stay on the per-key loop */
    int lvl = g4_cpu_level();
    if (lvl >= G4_CPU_AVX512 && ly->head_dim % 16 == 0) { j.group = 16; j.chunk = chunk_avx512; j.f16_row = f16_row_avx512; }
    else if (lvl >= G4_CPU_AVX2 && ly->head_dim % 8 == 0) { j.group = 8; j.chunk = chunk_avx2; j.f16_row = f16_row_avx2; }
    else if (lvl >= G4_CPU_AVX2) j.f16_row = f16_row_avx2;
#endif
    g4_pool_run(ctx->pool, (int64_t)n_tiles * ly->n_kv_head * j.n_sub, attend_tile, &j);
}
