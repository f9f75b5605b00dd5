/*
 * attention.c - spec §2 steps 7-8 (scores, softmax, weighted sum of V) for a
 * batch of rows, in tiles:
 *
 *   work item = (tile of up to ATT_TILE consecutive rows of one sequence,
 *                KV head, group of up to ATT_SUB query heads sharing it)
 *
 * The keys the tile needs are walked in chunks of ATT_CHUNK positions
 * aligned to absolute multiples of ATT_CHUNK; each chunk of K and V is
 * converted to f32 once (from the f16 or f32 cache) and used by every row
 * and head of the tile.  The softmax is computed online (running max and
 * sum, rescaled when the max grows), so memory does not grow with the
 * context.
 *
 * Determinism: every (row, head) sees the same chunks (absolute boundaries
 * intersected with its own key range) and the same operations whatever the
 * tile, the batch or the other rows are, so batched, token-by-token and
 * multi-sequence runs stay bit-identical.
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

/* ---- vector helpers: one version per CPU level ------------------------- */

typedef float (*dot_fn)(const float *a, const float *b, uint32_t n);
typedef void (*axpy_fn)(float *y, float a, const float *x, uint32_t n);

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

static void axpy_scalar(float *y, float a, const float *x, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) y[i] += a * x[i];
}

#ifdef ATT_X86
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, uint32_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float s = _mm_cvtss_f32(h);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((target("avx2,fma"))) static void axpy_avx2(float *y, float a, const float *x, uint32_t n)
{
    __m256 va = _mm256_set1_ps(a);
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

__attribute__((target("avx2,f16c"))) static void f16_row_avx2(const uint16_t *src, float *dst, uint32_t n)
{
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = g4_f16_to_f32(src[i]);
}

__attribute__((target("avx512f"))) static float dot_avx512(const float *a, const float *b, uint32_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    uint32_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((target("avx512f"))) static void axpy_avx512(float *y, float a, const float *x, uint32_t n)
{
    __m512 va = _mm512_set1_ps(a);
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
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

static void f16_row_scalar(const uint16_t *src, float *dst, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) dst[i] = g4_f16_to_f32(src[i]);
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
    dot_fn dot;
    axpy_fn axpy;
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
    float mx[G4_ATT_TILE * G4_ATT_SUB], sum[G4_ATT_TILE * G4_ATT_SUB];
    uint32_t rf[G4_ATT_TILE], rl[G4_ATT_TILE];
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint32_t t = 0; t < tl->count; t++) {
        key_range(ly, &j->rows[tl->first + t], j->window, &rf[t], &rl[t]);
        if (rf[t] < lo) lo = rf[t];
        if (rl[t] > hi) hi = rl[t];
        for (uint32_t h = 0; h < nh; h++) {
            mx[t * nh + h] = -INFINITY;
            sum[t * nh + h] = 0.0f;
            memset(ctx->o + ((size_t)(tl->first + t) * nq + h0 + h) * hd, 0, sizeof(float) * hd);
        }
    }

    float s[G4_ATT_CHUNK];
    for (uint64_t c0 = lo - lo % G4_ATT_CHUNK; c0 <= hi; c0 += G4_ATT_CHUNK) {
        uint32_t a0 = c0 > lo ? (uint32_t)c0 : lo;
        uint32_t b0 = c0 + G4_ATT_CHUNK - 1 < hi ? (uint32_t)(c0 + G4_ATT_CHUNK - 1) : hi;
        /* this chunk of K and V, f32 */
        for (uint32_t p = a0; p <= b0; p++) {
            size_t off = (size_t)(p % kv->size) * kv->row + (size_t)kv_head * hd;
            float *kd = kbuf + (size_t)(p - a0) * hd, *vd = vbuf + (size_t)(p - a0) * hd;
            if (f16) {
                j->f16_row((const uint16_t *)kv->k + off, kd, hd);
                j->f16_row((const uint16_t *)kv->v + off, vd, hd);
            } else {
                memcpy(kd, (const float *)kv->k + off, sizeof(float) * hd);
                memcpy(vd, (const float *)kv->v + off, sizeof(float) * hd);
            }
        }
        for (uint32_t t = 0; t < tl->count; t++) {
            uint32_t a = rf[t] > a0 ? rf[t] : a0, b = rl[t] < b0 ? rl[t] : b0;
            if (a > b) continue;
            for (uint32_t h = 0; h < nh; h++) {
                size_t qo = ((size_t)(tl->first + t) * nq + h0 + h) * hd;
                const float *q = ctx->q + qo;
                float *out = ctx->o + qo;
                /* 7: scores with scale 1.0 (Gemma 4 does not divide by sqrt(hd)) */
                float cm = -INFINITY;
                for (uint32_t p = a; p <= b; p++) {
                    float v = j->dot(q, kbuf + (size_t)(p - a0) * hd, hd);
                    s[p - a] = v;
                    if (v > cm) cm = v;
                }
                /* 8: online softmax, weighted sum of V */
                float *M = &mx[t * nh + h], *L = &sum[t * nh + h];
                if (cm > *M) {
                    if (*M != -INFINITY) {
                        float sc = expf(*M - cm);
                        *L *= sc;
                        for (uint32_t d = 0; d < hd; d++) out[d] *= sc;
                    }
                    *M = cm;
                }
                for (uint32_t p = a; p <= b; p++) {
                    float e = expf(s[p - a] - *M);
                    *L += e;
                    j->axpy(out, e, vbuf + (size_t)(p - a0) * hd, hd);
                }
            }
        }
    }
    for (uint32_t t = 0; t < tl->count; t++)
        for (uint32_t h = 0; h < nh; h++) {
            float inv = 1.0f / sum[t * nh + h];
            float *out = ctx->o + ((size_t)(tl->first + t) * nq + h0 + h) * hd;
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
                  dot_scalar, axpy_scalar, f16_row_scalar };
#ifdef ATT_X86
    int lvl = g4_cpu_level();
    if (lvl >= G4_CPU_AVX512) { j.dot = dot_avx512; j.axpy = axpy_avx512; j.f16_row = f16_row_avx2; }
    else if (lvl >= G4_CPU_AVX2) { j.dot = dot_avx2; j.axpy = axpy_avx2; j.f16_row = f16_row_avx2; }
#endif
    g4_pool_run(ctx->pool, (int64_t)n_tiles * ly->n_kv_head * j.n_sub, attend_tile, &j);
}
