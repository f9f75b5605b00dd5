/*
 * sgemm.c - see sgemm.h for the float contract and the packed layouts.
 *
 * Blocking.  A register tile is MR rows of A by one 32-wide weight panel:
 * AVX-512 keeps 12 x 2 zmm accumulators (24 of 32 registers), AVX2 6 x 2
 * ymm per 16-column half of the panel (12 of 16), the scalar kernel 4 x 32
 * floats.  Per k it loads the panel's 32 weights once and broadcasts each
 * of the MR activations, so every weight load feeds MR fused multiply-adds
 * and every broadcast two (AVX2: two per half).  One k-chunk of a panel
 * (KC x 32 floats = 16 KiB) stays in L1 while all the row blocks of a work
 * item stream past it from L2 (a chunk of A: up to 384 rows x KC = 192 KiB);
 * the item's C block (up to 384 x 128 floats) stays in L2 between chunks.
 *
 * Work items are (row chunk, group of GP panels); a thread owns whole
 * outputs, and every output visits the K chunks in order, so the result
 * does not depend on the thread count or on which item ran where.
 */
#include "kernels/sgemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "kernels/quant.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SG_X86 1
#include <immintrin.h>
#endif

enum {
    NR = G4_SGEMM_NR,
    KC = G4_SGEMM_KC,
    GP = 4,          /* panels per work item: 128 outputs */
    ROWS_CHUNK = 384 /* rows of A per work item (rounded down to the tile) */
};

/* A micro-kernel: the MR x 32 tile at c (row stride ldc) for one k-chunk of
 * kc steps.  ap: kc x MR packed activations; wp: kc x 32 packed weights.
 * init != NULL (the first chunk): c = init[j] + p; else c = c + p. */
typedef void (*tile_fn)(int64_t kc, const float *ap, const float *wp, float *c, int64_t ldc, const float *init);

/* ------------------------------------------------------------------ scalar */

enum { MR_SCALAR = 4 };

static void tile_scalar(int64_t kc, const float *ap, const float *wp, float *c, int64_t ldc, const float *init)
{
    float p[MR_SCALAR][NR];
    memset(p, 0, sizeof p);
    for (int64_t k = 0; k < kc; k++)
        for (int i = 0; i < MR_SCALAR; i++) {
            const float a = ap[k * MR_SCALAR + i];
            for (int j = 0; j < NR; j++) p[i][j] = fmaf(a, wp[k * NR + j], p[i][j]);
        }
    for (int i = 0; i < MR_SCALAR; i++)
        for (int j = 0; j < NR; j++)
            c[i * ldc + j] = (init ? init[j] : c[i * ldc + j]) + p[i][j];
}

#ifdef SG_X86
/* ------------------------------------------------------------------ AVX2 */

#define T2 __attribute__((target("avx2,fma")))
enum { MR_AVX2 = 6 };

/* one 16-column half of the panel (h = 0 or 16) */
T2 static inline __attribute__((always_inline)) void half_avx2(int64_t kc, const float *ap, const float *wp, float *c,
                                                                 int64_t ldc, const float *init)
{
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    __m256 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
    for (int64_t k = 0; k < kc; k++) {
        const __m256 w0 = _mm256_load_ps(wp + k * NR), w1 = _mm256_load_ps(wp + k * NR + 8);
        const float *a = ap + k * MR_AVX2;
        __m256 b;
#define ROW2(i)                                                                                                      \
    b = _mm256_broadcast_ss(a + i);                                                                                  \
    a##i##0 = _mm256_fmadd_ps(b, w0, a##i##0);                                                                       \
    a##i##1 = _mm256_fmadd_ps(b, w1, a##i##1);
        ROW2(0) ROW2(1) ROW2(2) ROW2(3) ROW2(4) ROW2(5)
#undef ROW2
    }
#define OUT2(i)                                                                                                      \
    do {                                                                                                             \
        float *ci = c + (i) * ldc;                                                                                   \
        const __m256 s0 = init ? _mm256_loadu_ps(init) : _mm256_loadu_ps(ci);                                        \
        const __m256 s1 = init ? _mm256_loadu_ps(init + 8) : _mm256_loadu_ps(ci + 8);                               \
        _mm256_storeu_ps(ci, _mm256_add_ps(s0, a##i##0));                                                            \
        _mm256_storeu_ps(ci + 8, _mm256_add_ps(s1, a##i##1));                                                        \
    } while (0)
    OUT2(0); OUT2(1); OUT2(2); OUT2(3); OUT2(4); OUT2(5);
#undef OUT2
}

T2 static void tile_avx2(int64_t kc, const float *ap, const float *wp, float *c, int64_t ldc, const float *init)
{
    half_avx2(kc, ap, wp, c, ldc, init);
    half_avx2(kc, ap, wp + 16, c + 16, ldc, init ? init + 16 : NULL);
}

/* ------------------------------------------------------------------ AVX-512 */

#define T5 __attribute__((target("avx512f,avx2,fma")))
enum { MR_AVX512 = 12 };

T5 static void tile_avx512(int64_t kc, const float *ap, const float *wp, float *c, int64_t ldc, const float *init)
{
    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    __m512 a40 = a00, a41 = a00, a50 = a00, a51 = a00, a60 = a00, a61 = a00, a70 = a00, a71 = a00;
    __m512 a80 = a00, a81 = a00, a90 = a00, a91 = a00, aA0 = a00, aA1 = a00, aB0 = a00, aB1 = a00;
    for (int64_t k = 0; k < kc; k++) {
        const __m512 w0 = _mm512_load_ps(wp + k * NR), w1 = _mm512_load_ps(wp + k * NR + 16);
        const float *a = ap + k * MR_AVX512;
        __m512 b;
#define ROW5(i, n)                                                                                                   \
    b = _mm512_set1_ps(a[n]);                                                                                        \
    a##i##0 = _mm512_fmadd_ps(b, w0, a##i##0);                                                                       \
    a##i##1 = _mm512_fmadd_ps(b, w1, a##i##1);
        ROW5(0, 0) ROW5(1, 1) ROW5(2, 2) ROW5(3, 3) ROW5(4, 4) ROW5(5, 5)
        ROW5(6, 6) ROW5(7, 7) ROW5(8, 8) ROW5(9, 9) ROW5(A, 10) ROW5(B, 11)
#undef ROW5
    }
    const __m512 i0 = init ? _mm512_loadu_ps(init) : _mm512_setzero_ps();
    const __m512 i1 = init ? _mm512_loadu_ps(init + 16) : _mm512_setzero_ps();
#define OUT5(i, n)                                                                                                   \
    do {                                                                                                             \
        float *ci = c + (n) * ldc;                                                                                   \
        const __m512 s0 = init ? i0 : _mm512_loadu_ps(ci), s1 = init ? i1 : _mm512_loadu_ps(ci + 16);             \
        _mm512_storeu_ps(ci, _mm512_add_ps(s0, a##i##0));                                                            \
        _mm512_storeu_ps(ci + 16, _mm512_add_ps(s1, a##i##1));                                                       \
    } while (0)
    OUT5(0, 0); OUT5(1, 1); OUT5(2, 2); OUT5(3, 3); OUT5(4, 4); OUT5(5, 5);
    OUT5(6, 6); OUT5(7, 7); OUT5(8, 8); OUT5(9, 9); OUT5(A, 10); OUT5(B, 11);
#undef OUT5
}
#endif

typedef struct {
    tile_fn fn;
    int mr;
} level_kernel;

static level_kernel kernel_for(int level)
{
#ifdef SG_X86
    const int have = g4_cpu_detected();
    if (level > have) level = have;
    if (level >= G4_CPU_AVX512) return (level_kernel){ tile_avx512, MR_AVX512 };
    if (level == G4_CPU_AVX2) return (level_kernel){ tile_avx2, MR_AVX2 };
#else
    (void)level;
#endif
    return (level_kernel){ tile_scalar, MR_SCALAR };
}

enum { MR_MAX = 12 };

/* ------------------------------------------------------------------ packing W */

static bool mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    if (b && a > UINT64_MAX / b) return false;
    *out = a * b;
    return true;
}

static float *alloc_floats(uint64_t n)
{
    uint64_t bytes;
    if (!mul_ok(n, sizeof(float), &bytes) || bytes > (uint64_t)SIZE_MAX - 128) return NULL;
    return aligned_alloc(64, (size_t)((bytes + 63) / 64 * 64 + 64));
}

typedef struct {
    const g4_mat *src;      /* or: */
    const float *f32;
    int64_t ldw;
    float *scratch;         /* per thread: NR x k floats (src only) */
    g4_sgemm_rows_done done;
    void *ctx;
    g4_sgemm_w *out;
} pack_w_job;

#ifdef SG_X86
__attribute__((target("avx2,fma,f16c"))) static void f16_row_f16c(const uint16_t *h, float *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++) dst[i] = g4_f16_to_f32(h[i]);
}
#endif

/* One stored row as f32: the exact conversion g4_dequantize_row makes, with
 * the two half types done in bulk (F16C converts exactly and quiets NaNs
 * as g4_f16_to_f32 does; BF16 is the upper half of an f32). */
static void row_to_f32(const g4_mat *w, int64_t r, float *dst)
{
    const uint8_t *src = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
    if (w->type == G4_TYPE_BF16) {
        const uint16_t *h = (const uint16_t *)(const void *)src;
        for (int64_t i = 0; i < w->cols; i++) {
            const uint32_t u = (uint32_t)h[i] << 16;
            memcpy(dst + i, &u, sizeof u);
        }
        return;
    }
#ifdef SG_X86
    if (w->type == G4_TYPE_F16 && g4_cpu_detected() >= G4_CPU_AVX2) {
        f16_row_f16c((const uint16_t *)(const void *)src, dst, w->cols);
        return;
    }
#endif
    g4_dequantize_row(w->type, src, dst, w->cols);
}

static void pack_w_panel(void *arg, int64_t p, int tid)
{
    const pack_w_job *j = arg;
    const int64_t K = j->out->k, N = j->out->n;
    float *panel = j->out->panels + (uint64_t)p * (uint64_t)K * NR;
    const int64_t r0 = p * NR, nr = N - r0 < NR ? N - r0 : NR;
    const float *rows[NR];
    for (int64_t i = 0; i < nr; i++) {
        if (j->f32) {
            rows[i] = j->f32 + (uint64_t)(r0 + i) * (uint64_t)j->ldw;
        } else {
            float *s = j->scratch + ((uint64_t)tid * NR + (uint64_t)i) * (uint64_t)K;
            row_to_f32(j->src, r0 + i, s);
            rows[i] = s;
        }
    }
    /* the transpose in blocks of 16 k, so the writes stay within a few
     * L1 lines and every row is read sequentially */
    for (int64_t k0 = 0; k0 < K; k0 += 16) {
        const int64_t k1 = K - k0 < 16 ? K : k0 + 16;
        for (int64_t i = 0; i < NR; i++)
            for (int64_t k = k0; k < k1; k++) panel[k * NR + i] = i < nr ? rows[i][k] : 0.0f;
    }
    if (j->done && j->src)
        j->done(j->ctx, (const uint8_t *)j->src->data + (uint64_t)r0 * j->src->row_bytes,
                (uint64_t)nr * j->src->row_bytes);
}

static bool pack_common(g4_pool *pool, pack_w_job *j, int64_t n, int64_t k, g4_sgemm_w *out)
{
    memset(out, 0, sizeof *out);
    if (n <= 0 || k <= 0) return n >= 0 && k >= 0;
    const uint64_t np = ((uint64_t)n + NR - 1) / NR;
    uint64_t total;
    if (!mul_ok(np * NR, (uint64_t)k, &total)) return false;
    out->panels = alloc_floats(total);
    if (!out->panels) return false;
    out->n = n;
    out->k = k;
    j->out = out;
    if (!j->f32) {
        uint64_t sf;
        if (!mul_ok((uint64_t)g4_pool_size(pool) * NR, (uint64_t)k, &sf) || !(j->scratch = alloc_floats(sf))) {
            g4_sgemm_w_free(out);
            return false;
        }
    }
    g4_pool_run(pool, (int64_t)np, pack_w_panel, j);
    free(j->scratch);
    return true;
}

bool g4_sgemm_pack(g4_pool *pool, const g4_mat *w, g4_sgemm_rows_done done, void *ctx, g4_sgemm_w *out)
{
    pack_w_job j = { .src = w, .done = done, .ctx = ctx };
    return pack_common(pool, &j, w->rows, w->cols, out);
}

bool g4_sgemm_pack_f32(g4_pool *pool, const float *w, int64_t n, int64_t k, int64_t ldw, g4_sgemm_w *out)
{
    pack_w_job j = { .f32 = w, .ldw = ldw };
    if (ldw < k) {
        memset(out, 0, sizeof *out);
        return false;
    }
    return pack_common(pool, &j, n, k, out);
}

void g4_sgemm_w_free(g4_sgemm_w *w)
{
    if (!w) return;
    free(w->panels);
    memset(w, 0, sizeof *w);
}

uint64_t g4_sgemm_w_bytes(const g4_sgemm_w *w)
{
    if (!w || !w->panels) return 0;
    return ((uint64_t)w->n + NR - 1) / NR * NR * (uint64_t)w->k * sizeof(float);
}

/* ------------------------------------------------------------------ the product */

typedef struct {
    const g4_sgemm_w *w;
    level_kernel lk;
    const float *a;
    int64_t lda, n_tok;
    float *ap;              /* packed A: row blocks of k x mr */
    const float *init;      /* panels x 32: bias (or zeros), padded */
    float *c;
    int64_t ldc;
    int64_t n_panels, n_groups, blocks_per_chunk;
} gemm_job;

static void pack_a_block(void *arg, int64_t b, int tid)
{
    (void)tid;
    const gemm_job *j = arg;
    const int mr = j->lk.mr;
    const int64_t K = j->w->k;
    float *dst = j->ap + (uint64_t)b * (uint64_t)K * (uint64_t)mr;
    for (int i = 0; i < mr; i++) {
        const int64_t t = b * mr + i;
        if (t >= j->n_tok) {
            for (int64_t k = 0; k < K; k++) dst[k * mr + i] = 0.0f;
            continue;
        }
        const float *src = j->a + (uint64_t)t * (uint64_t)j->lda;
        for (int64_t k = 0; k < K; k++) dst[k * mr + i] = src[k];
    }
}

static void gemm_item(void *arg, int64_t item, int tid)
{
    (void)tid;
    const gemm_job *j = arg;
    const int mr = j->lk.mr;
    const int64_t K = j->w->k, N = j->w->n;
    const int64_t n_blocks = (j->n_tok + mr - 1) / mr;
    const int64_t g = item % j->n_groups, ch = item / j->n_groups;
    const int64_t p0 = g * GP, p1 = p0 + GP < j->n_panels ? p0 + GP : j->n_panels;
    const int64_t b0 = ch * j->blocks_per_chunk;
    const int64_t b1 = b0 + j->blocks_per_chunk < n_blocks ? b0 + j->blocks_per_chunk : n_blocks;
    float tmp[MR_MAX * NR] __attribute__((aligned(64)));
    memset(tmp, 0, sizeof tmp); /* rows and columns past the edge are computed, then dropped */
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int64_t kc = K - k0 < KC ? K - k0 : KC;
        for (int64_t p = p0; p < p1; p++) {
            const float *wp = j->w->panels + ((uint64_t)p * (uint64_t)K + (uint64_t)k0) * NR;
            const float *init = k0 == 0 ? j->init + p * NR : NULL;
            const int64_t cols = N - p * NR < NR ? N - p * NR : NR;
            for (int64_t b = b0; b < b1; b++) {
                const float *ap = j->ap + ((uint64_t)b * (uint64_t)K + (uint64_t)k0) * (uint64_t)mr;
                float *ct = j->c + (uint64_t)(b * mr) * (uint64_t)j->ldc + (uint64_t)(p * NR);
                const int64_t rows = j->n_tok - b * mr < mr ? j->n_tok - b * mr : mr;
                if (rows == mr && cols == NR) {
                    j->lk.fn(kc, ap, wp, ct, j->ldc, init);
                    continue;
                }
                /* an edge tile: through a full-size copy, so the kernels
                 * never see a partial tile (padded rows and columns hold
                 * zeros in the packed operands and are dropped here) */
                if (!init)
                    for (int64_t i = 0; i < rows; i++) memcpy(tmp + i * NR, ct + i * j->ldc, (size_t)cols * sizeof(float));
                j->lk.fn(kc, ap, wp, tmp, NR, init);
                for (int64_t i = 0; i < rows; i++) memcpy(ct + i * j->ldc, tmp + i * NR, (size_t)cols * sizeof(float));
            }
        }
    }
}

bool g4_sgemm_at(int level, g4_pool *pool, const g4_sgemm_w *w, const float *a, int64_t lda, int64_t n_tok,
                 const float *bias, float *c, int64_t ldc)
{
    if (n_tok <= 0 || w->n <= 0) return true;
    if (w->k == 0) {
        for (int64_t t = 0; t < n_tok; t++)
            for (int64_t n = 0; n < w->n; n++) c[t * ldc + n] = bias ? bias[n] : 0.0f;
        return true;
    }
    gemm_job j = { .w = w, .lk = kernel_for(level), .a = a, .lda = lda, .n_tok = n_tok, .c = c, .ldc = ldc };
    const int mr = j.lk.mr;
    const int64_t n_blocks = (n_tok + mr - 1) / mr;
    j.n_panels = (w->n + NR - 1) / NR;
    j.n_groups = (j.n_panels + GP - 1) / GP;
    j.blocks_per_chunk = ROWS_CHUNK / mr;
    uint64_t a_floats;
    if (!mul_ok((uint64_t)n_blocks * (uint64_t)mr, (uint64_t)w->k, &a_floats) ||
        a_floats > UINT64_MAX - (uint64_t)j.n_panels * NR)
        return false;
    /* one allocation: packed A (64-byte aligned blocks: k * mr * 4 bytes is
     * a multiple of 16; the kernels load A by broadcast only), then init */
    float *buf = alloc_floats(a_floats + (uint64_t)j.n_panels * NR);
    if (!buf) return false;
    j.ap = buf;
    float *init = buf + a_floats;
    for (int64_t n = 0; n < j.n_panels * NR; n++) init[n] = bias && n < w->n ? bias[n] : 0.0f;
    j.init = init;
    g4_pool_run(pool, n_blocks, pack_a_block, &j);
    const int64_t n_chunks = (n_blocks + j.blocks_per_chunk - 1) / j.blocks_per_chunk;
    g4_pool_run(pool, n_chunks * j.n_groups, gemm_item, &j);
    free(buf);
    return true;
}

bool g4_sgemm(g4_pool *pool, const g4_sgemm_w *w, const float *a, int64_t lda, int64_t n_tok, const float *bias,
              float *c, int64_t ldc)
{
    return g4_sgemm_at(g4_cpu_level(), pool, w, a, lda, n_tok, bias, c, ldc);
}

void g4_sgemm_ref(const float *w, int64_t n, int64_t k, const float *a, int64_t n_tok, const float *bias, float *c)
{
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t o = 0; o < n; o++) {
            const float *wr = w + o * k, *ar = a + t * k;
            float acc = bias ? bias[o] : 0.0f;
            for (int64_t k0 = 0; k0 < k; k0 += KC) {
                const int64_t k1 = k - k0 < KC ? k : k0 + KC;
                float p = 0.0f;
                for (int64_t i = k0; i < k1; i++) p = fmaf(ar[i], wr[i], p);
                acc += p;
            }
            c[t * n + o] = acc;
        }
}
