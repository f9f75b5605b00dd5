/*
 * ops.c - see ops.h.  Plain C, multithreaded by row blocks.  The SIMD
 * kernels issue replaces the inner loops; the math and the split stay.
 */
#include "kernels/ops.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "kernels/quant.h"

enum { MATMUL_ROWS_PER_ITEM = 16 };

typedef struct {
    const g4_mat *w;
    const uint8_t *act;   /* n_tok activation rows in the weight's vec_dot_type */
    uint64_t act_bytes;   /* bytes per activation row */
    float *y;
    int64_t n_tok;
    bool plain;           /* no vec_dot_type (Q8_K weights): f32 activations, g4_dot_row */
} matmul_job;

static void matmul_item(void *arg, int64_t item, int tid)
{
    (void)tid;
    const matmul_job *j = arg;
    const g4_mat *w = j->w;
    int64_t r0 = item * MATMUL_ROWS_PER_ITEM;
    int64_t r1 = r0 + MATMUL_ROWS_PER_ITEM;
    if (r1 > w->rows) r1 = w->rows;
    /* the multi-token twin of the active g4_vec_dot kernel, if any (NULL
     * for plain rows, for types without one and at the scalar level) */
    const g4_vec_dot_x4_fn x4 = !j->plain && j->n_tok >= 4 && w->cols > 0 && w->type < G4_TYPE_COUNT_
                                    ? g4_dispatch_active.vec_dot_x4[w->type]
                                    : NULL;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
        /* The weight row stays in cache while every token of the batch is
         * dotted with it.  Each y depends only on (row, token's encoded
         * activations): a token gets bit-identical results whether it is
         * decoded alone or inside a prompt batch. */
        int64_t t = 0;
        /* Groups of four tokens share one pass over the weight row (each
         * block unpacked once); the x4 kernel gives each token exactly the
         * single-token kernel's result, so the invariant above holds. */
        if (x4)
            for (; t + 4 <= j->n_tok; t += 4) {
                const void *at[4];
                float o[4];
                for (int k = 0; k < 4; k++)
                    at[k] = j->act + (uint64_t)(t + k) * j->act_bytes;
                x4(row, at, o, w->cols);
                for (int k = 0; k < 4; k++)
                    j->y[(t + k) * w->rows + r] = o[k];
            }
        for (; t < j->n_tok; t++) {
            const void *at = j->act + (uint64_t)t * j->act_bytes;
            j->y[t * w->rows + r] = j->plain ? g4_dot_row(w->type, row, at, w->cols)
                                             : g4_vec_dot(w->type, row, at, w->cols);
        }
    }
}

/* rows per work item of a matrix kernel: a multiple of its row tiles (8
 * for matrix-matrix, 16 for matrix-vector) */
enum { GEMM_ROWS_PER_ITEM = 64 };

typedef struct {
    const g4_mat *w;
    const g4_gemm_kernel *k;
    const void *prep;
    const uint8_t *act;
    uint64_t act_bytes;
    float *y;
    int64_t n_tok;
} gemm_job;

static void gemm_item(void *arg, int64_t item, int tid)
{
    (void)tid;
    const gemm_job *j = arg;
    int64_t r0 = item * GEMM_ROWS_PER_ITEM, r1 = r0 + GEMM_ROWS_PER_ITEM;
    if (r1 > j->w->rows) r1 = j->w->rows;
    j->k->run(j->w->data, j->w->row_bytes, r0, r1, j->w->cols, j->prep, j->act, j->act_bytes, j->n_tok, j->y, j->w->rows);
}

/* one group of a matrix kernel's tokens: encode its activation rows, then
 * lay them out (prep_group) -- the serial part of a product, spread */
typedef struct {
    const g4_gemm_kernel *k;
    const float *x;
    int64_t cols, n_tok;
    uint32_t vdt;
    uint8_t *act;
    uint64_t act_bytes;
    void *prep;
} encode_job;

static void encode_group(void *arg, int64_t g, int tid)
{
    (void)tid;
    const encode_job *e = arg;
    const int64_t t0 = g * e->k->group_tokens;
    const int64_t t1 = t0 + e->k->group_tokens < e->n_tok ? t0 + e->k->group_tokens : e->n_tok;
    for (int64_t t = t0; t < t1; t++)
        g4_quantize_act(e->vdt, e->x + t * e->cols, e->act + (uint64_t)t * e->act_bytes, e->cols);
    e->k->prep_group(e->act, e->act_bytes, e->n_tok, e->cols, g, e->prep);
}

/* The activations of one product, encoded once: act (n_tok rows in the
 * weight type's vec_dot_type, or f32 when plain) and, when the active level
 * has a matrix kernel for the type, its prepared layout. */
typedef struct {
    const g4_gemm_kernel *k; /* NULL: per-row dot products */
    bool plain;              /* f32 activations, weights dequantized on the fly */
    uint8_t *act;
    uint64_t act_bytes;
    void *prep;
} encoded;

static encoded encode(g4_pool *pool, const g4_mat *w, const float *x, int64_t n_tok, bool f32_act)
{
    encoded e = { 0 };
    /* llama.cpp's order of work: encode each activation row once in the
     * weight type's vec_dot_type (Q8_0 / Q8_1 / Q8_K / F16 / BF16 / F32),
     * then integer (or half) dot products against the encoded weights. */
    uint32_t vdt = g4_vec_dot_type(w->type);
    /* f32_act, and Q8_K weights (ggml has no matmul for them): activations
     * stay f32 and each weight block is dequantized on the fly. */
    e.plain = f32_act || vdt == G4_TYPE_NONE;
    if (e.plain) vdt = G4_TYPE_F32;
    if (!g4_row_size(vdt, (uint64_t)w->cols, &e.act_bytes))
        abort(); /* the loader only admits whole blocks */
    e.act = malloc(e.act_bytes * (uint64_t)n_tok + 1);
    if (!e.act) abort(); /* n_tok rows of ~cols bytes: out of memory here is fatal anyway */
    /* the active level's matrix kernel: every (row, token) result is the
     * same bits as its g4_vec_dot, whatever the batch (dispatch.h) */
    e.k = !e.plain && w->cols > 0 && w->type < G4_TYPE_COUNT_ ? g4_dispatch_active.gemm[w->type] : NULL;
    const bool grouped = e.k && e.k->prep_group && e.k->group_tokens > 0 && n_tok >= G4_GEMM_MIN_TOK;
    if (!grouped)
        for (int64_t t = 0; t < n_tok; t++)
            g4_quantize_act(vdt, x + t * w->cols, e.act + (uint64_t)t * e.act_bytes, w->cols);
    if (e.k) {
        const size_t pb = e.k->prep_bytes(n_tok, w->cols);
        e.prep = aligned_alloc(64, (pb + 63) / 64 * 64 + 64);
        if (!e.prep) abort();
        if (grouped) {
            encode_job ej = { e.k, x, w->cols, n_tok, vdt, e.act, e.act_bytes, e.prep };
            g4_pool_run(pool, (n_tok + e.k->group_tokens - 1) / e.k->group_tokens, encode_group, &ej);
        } else {
            e.k->prep(e.act, e.act_bytes, n_tok, w->cols, e.prep);
        }
    }
    return e;
}

void g4_matmul(g4_pool *pool, const g4_mat *w, const float *x, float *y, int64_t n_tok, bool f32_act)
{
    if (n_tok <= 0 || w->rows <= 0)
        return;
    encoded e = encode(pool, w, x, n_tok, f32_act);
    if (e.k) {
        gemm_job gj = { w, e.k, e.prep, e.act, e.act_bytes, y, n_tok };
        g4_pool_run(pool, (w->rows + GEMM_ROWS_PER_ITEM - 1) / GEMM_ROWS_PER_ITEM, gemm_item, &gj);
    } else {
        matmul_job j = { w, e.act, e.act_bytes, y, n_tok, e.plain };
        g4_pool_run(pool, (w->rows + MATMUL_ROWS_PER_ITEM - 1) / MATMUL_ROWS_PER_ITEM, matmul_item, &j);
    }
    free(e.prep);
    free(e.act);
}

/* gate and up share their input: one encoding, and each item computes the
 * same 64 rows of both, then g = gelu(g) * u on that block while it is in
 * cache (no separate pass over the n_tok x n_ff arrays) */
typedef struct {
    const g4_mat *gate, *up;
    encoded e;
    float *g, *u;
    int64_t n_tok;
} geglu_mm_job;

static void geglu_span(float *g, const float *u, int64_t n);

static void geglu_mm_item(void *arg, int64_t item, int tid)
{
    (void)tid;
    const geglu_mm_job *j = arg;
    const int64_t rows = j->gate->rows;
    int64_t r0 = item * GEMM_ROWS_PER_ITEM, r1 = r0 + GEMM_ROWS_PER_ITEM;
    if (r1 > rows) r1 = rows;
    j->e.k->run(j->gate->data, j->gate->row_bytes, r0, r1, j->gate->cols, j->e.prep, j->e.act, j->e.act_bytes, j->n_tok,
                j->g, rows);
    j->e.k->run(j->up->data, j->up->row_bytes, r0, r1, j->up->cols, j->e.prep, j->e.act, j->e.act_bytes, j->n_tok, j->u,
                rows);
    for (int64_t t = 0; t < j->n_tok; t++)
        geglu_span(j->g + t * rows + r0, j->u + t * rows + r0, r1 - r0);
}

void g4_matmul_geglu(g4_pool *pool, const g4_mat *gate, const g4_mat *up, const float *x, float *g, float *u,
                     int64_t n_tok, bool f32_act)
{
    if (n_tok <= 0 || gate->rows <= 0)
        return;
    encoded e = { 0 };
    if (gate->type == up->type && gate->rows == up->rows && gate->cols == up->cols)
        e = encode(pool, gate, x, n_tok, f32_act);
    if (!e.k) {
        free(e.prep);
        free(e.act);
        g4_matmul(pool, gate, x, g, n_tok, f32_act);
        g4_matmul(pool, up, x, u, n_tok, f32_act);
        g4_geglu(pool, g, u, n_tok * gate->rows);
        return;
    }
    geglu_mm_job j = { gate, up, e, g, u, n_tok };
    g4_pool_run(pool, (gate->rows + GEMM_ROWS_PER_ITEM - 1) / GEMM_ROWS_PER_ITEM, geglu_mm_item, &j);
    free(e.prep);
    free(e.act);
}

void g4_mat_row(const g4_mat *w, int64_t r, float *dst)
{
    g4_dequantize_row(w->type, (const uint8_t *)w->data + (uint64_t)r * w->row_bytes, dst, w->cols);
}

void g4_rmsnorm(float *x, const float *w, int64_t n, float eps)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
    if (w) for (int64_t i = 0; i < n; i++) x[i] = x[i] * scale * w[i];
    else   for (int64_t i = 0; i < n; i++) x[i] *= scale;
}

void g4_rope_cache(float *cs, int64_t n_rot, int64_t pos, float base, const float *freq_div)
{
    /* f32 angles built as a running product of base^(-2/n_rot), the way
     * llama.cpp's CPU backend does; the reference HF model also works in f32
     * angles, so an exact (double) angle would differ from both. */
    const float step = powf(base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int64_t i = 0; i < n_rot / 2; i++) {
        float t = freq_div ? theta / freq_div[i] : theta;
        cs[2 * i] = cosf(t);
        cs[2 * i + 1] = sinf(t);
        theta *= step;
    }
}

void g4_rope_apply(float *x, int64_t n_rot, const float *cs)
{
    int64_t half = n_rot / 2;
    for (int64_t i = 0; i < half; i++) {
        float c = cs[2 * i], s = cs[2 * i + 1];
        float a = x[i], b = x[i + half];
        x[i] = a * c - b * s;
        x[i + half] = b * c + a * s;
    }
}

/*
 * GELU (tanh form) through a table indexed by the f16 bits of the input,
 * holding f16-rounded results: the same quantization llama.cpp's CPU backend
 * applies, which keeps our logits within its own noise (an exact GELU differs
 * from it by ~2e-3 on small random models, see docs/testing.md).  The f16
 * rounding (rel. 2^-11) is finer than the bf16 the reference HF model runs in.
 * Beyond |x| >= 10 the function is exactly 0 or x.
 */
static float gelu_table[65536];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static float gelu_exact(float x)
{
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * x * (1.0f + 0.044715f * x * x)));
}

static void gelu_table_init(void)
{
    for (uint32_t h = 0; h < 65536; h++)
        gelu_table[h] = g4_f16_to_f32(g4_f32_to_f16(gelu_exact(g4_f16_to_f32((uint16_t)h))));
}

void g4_gelu_init(void) { pthread_once(&gelu_once, gelu_table_init); }

float g4_gelu_tanh(float x)
{
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    if (x != x) return x;
    return gelu_table[g4_f32_to_f16(x)];
}

/* GeGLU: g[i] = gelu(g[i]) * u[i], the same values as g4_gelu_tanh
 * element by element (F16C rounds to nearest even like g4_f32_to_f16), in
 * chunks over the pool. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
__attribute__((target("avx2,f16c"))) static void geglu_avx2(float *g, const float *u, int64_t n)
{
    const __m256 lo = _mm256_set1_ps(-10.0f), hi = _mm256_set1_ps(10.0f), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(g + i);
        __m256i idx = _mm256_cvtepu16_epi32(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
        __m256 y = _mm256_i32gather_ps(gelu_table, idx, 4);
        y = _mm256_blendv_ps(y, zero, _mm256_cmp_ps(x, lo, _CMP_LE_OQ));
        y = _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, hi, _CMP_GE_OQ));
        y = _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(y, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = g4_gelu_tanh(g[i]) * u[i];
}
#define G4_HAVE_GEGLU_AVX2 1
#endif

static void geglu_span(float *g, const float *u, int64_t n)
{
#ifdef G4_HAVE_GEGLU_AVX2
    if (g4_cpu_level() >= G4_CPU_AVX2 && g4_cpu_level() <= G4_CPU_AVX512) { geglu_avx2(g, u, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) g[i] = g4_gelu_tanh(g[i]) * u[i];
}

typedef struct { float *g; const float *u; int64_t n; } geglu_job;
#define GEGLU_CHUNK 16384

static void geglu_item(void *arg, int64_t item, int tid)
{
    (void)tid;
    geglu_job *j = arg;
    int64_t a = item * GEGLU_CHUNK, b = a + GEGLU_CHUNK < j->n ? a + GEGLU_CHUNK : j->n;
    geglu_span(j->g + a, j->u + a, b - a);
}

void g4_geglu(g4_pool *pool, float *g, const float *u, int64_t n)
{
    if (n <= GEGLU_CHUNK || !pool) { geglu_span(g, u, n); return; }
    geglu_job j = { g, u, n };
    g4_pool_run(pool, (n + GEGLU_CHUNK - 1) / GEGLU_CHUNK, geglu_item, &j);
}
