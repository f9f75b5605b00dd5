/*
 * gemm_x86.c - AVX-512 VNNI matrix kernels (dispatch.h g4_gemm_kernel):
 * q4_0 and q8_0 (Q8_0 activations), q4_K, q5_K and q6_K (Q8_K activations,
 * further down).
 *
 * The float contract ("block chain"), the same for every batch size: for a
 * weight row r and an activation row t,
 *
 *     acc = 0;  for each block b in order:
 *         acc = fma((float)isum(r, t, b), dw(r, b) * da(t, b), acc)
 *     y[t][r] = acc
 *
 * where isum is the exact integer dot product of the block (any summation
 * order gives the same int32) and dw * da the product of the two f16 scales
 * rounded to float.  Every kernel of this file -- the one-row dot product
 * (the level's g4_vec_dot), the matrix-vector kernel (1 to 3 tokens) and
 * the blocked matrix-matrix kernel (4 tokens or more) -- performs exactly
 * these float operations per (row, token), so a token's logits are
 * bit-identical whether it is decoded alone or inside a prompt batch, and
 * whatever rows a thread's item happens to hold.  The result is within
 * 1e-6 of sum|terms| of quant.c's scalar twin (which rounds sumi*dx*dy in
 * two steps and adds without FMA).
 *
 * Layouts:
 *  - matrix-vector (rows in lanes): 16 weight rows per zmm; per block, pairs
 *    of rows are unpacked into one zmm each (128-bit lanes: row 2p elements
 *    0-15, row 2p+1 0-15, row 2p 16-31, row 2p+1 16-31) and dotted with the
 *    activation block laid out the same way (prepared once per call); a
 *    shuffle/add tree turns the eight zmm into the 16 block sums, lane
 *    4k+m holding row 4m+k; the weight scales come by a gather in that
 *    order and the accumulator is put back in row order at the end.
 *  - matrix-matrix (tokens in lanes): 16 tokens per zmm; per block, the
 *    activations of the 16 tokens are eight zmm (dword q of lane j = bytes
 *    4q..4q+3 of token j), prepared once per call; each weight row's four
 *    bytes are broadcast and met with VPDPBUSD, so one unpacked weight block
 *    serves 16 tokens and one activation block GR rows, from registers;
 *    the GR rows' VPDPBUSD chains are interleaved in program order, so that
 *    GR independent instructions cover the instruction's latency.  The
 *    weights are unpacked per panel of GPR rows x KC blocks (into L1); per
 *    token group, the panel's GPR / GR register tiles walk the same KC
 *    activation records in turn, so the prepared activations stream from
 *    L2/L3 once per GPR rows (not once per register tile: that was the
 *    limit on long rows).  The float accumulators of up to SG token groups
 *    live on the stack between K chunks (blocks are still visited in order
 *    for every (row, token)); the stack use stays under ~90 KB.
 *  - exactness of the integer part: q4_0 nibbles are used unsigned (0..15)
 *    against signed activations, minus 8 * sum(activations of the block);
 *    q8_0 weights (signed) meet activations + 128 (unsigned), minus
 *    128 * sum(weights of the block) -- exact for every byte value.
 */
#include "kernels/dispatch.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "kernels/quant.h"

#define T5 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define INLINE5 T5 static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

/* matrix-vector software prefetch distance in blocks (0: none); the 16
 * row streams at once are more than the hardware prefetchers follow well */
#ifndef G4_GEMV_PF
#define G4_GEMV_PF 16
#endif

enum {
    SZ_Q4_0 = 18, SZ_Q8_0 = 34,
    GT = 16,   /* tokens per group (zmm lanes) */
    GR = 8,    /* weight rows per register tile */
    GPR = 64,  /* weight rows per panel (register tiles sharing the activations from L1) */
    KC = 8,   /* blocks per K chunk of the unpacked weight panel */
    SG = 16,   /* token groups whose accumulators are kept across K chunks */
    REC = 640, /* prepared bytes per (token group, block): 8 x 64 activations, 64 sums, 64 scales */
    GV = 72,   /* prepared bytes per (token, block) for the matrix-vector kernel: 64 + sum + scale */
};

T5 static inline float fh(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

T5 static inline int hsum_epi32_256(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

static inline uint32_t ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* exact integer dot of one block: q4_0 (q8 == 0) or q8_0 weights with a
 * Q8_0 activation block */
INLINE5 int block_isum(int q8, const uint8_t *w, const uint8_t *a)
{
    const __m256i y = _mm256_loadu_si256((const __m256i *)(a + 2));
    __m256i p;
    if (q8) {
        const __m256i x = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(w + 2)), _mm256_set1_epi8((char)0x80));
        /* (w + 128) * a - 128 * a */
        p = _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), x, y),
                             _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8((char)0x80), y));
    } else {
        const __m128i q = _mm_loadu_si128((const __m128i *)(w + 2));
        const __m256i x = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
        p = _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), x, y),
                             _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), y));
    }
    return hsum_epi32_256(p);
}

/* the one-row twin: the block chain in scalar FMA */
INLINE5 float dot_chain(int q8, const uint8_t *w, const uint8_t *a, int64_t nb)
{
    const int bs = q8 ? SZ_Q8_0 : SZ_Q4_0;
    __m128 acc = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; b++, w += bs, a += SZ_Q8_0) {
        const __m128 f = _mm_set_ss((float)block_isum(q8, w, a));
        acc = _mm_fmadd_ss(f, _mm_set_ss(fh(w) * fh(a)), acc);
    }
    return _mm_cvtss_f32(acc);
}

T5 static float vd_q4_0_chain(const void *w, const void *a, int64_t n) { return dot_chain(0, w, a, n / 32); }
T5 static float vd_q8_0_chain(const void *w, const void *a, int64_t n) { return dot_chain(1, w, a, n / 32); }

/* ------------------------------------------------------------ prepare */

static size_t prep_bytes(int64_t n_tok, int64_t n)
{
    const size_t nb = (size_t)(n / 32);
    if (n_tok >= G4_GEMM_MIN_TOK)
        return (size_t)((n_tok + GT - 1) / GT) * nb * REC;
    return (size_t)n_tok * nb * GV;
}

/* matrix-vector layout, per token: nb x 64 activation bytes, then nb int32
 * sums of the block's activations, then nb float scales */
static void prep_gemv(const uint8_t *act, uint64_t ab, int64_t n_tok, int64_t nb, uint8_t *dst)
{
    for (int64_t t = 0; t < n_tok; t++) {
        const uint8_t *a = act + (uint64_t)t * ab;
        uint8_t *yv = dst + (size_t)t * (size_t)nb * GV;
        int32_t *as = (int32_t *)(yv + (size_t)nb * 64);
        float *da = (float *)(yv + (size_t)nb * 68);
        for (int64_t b = 0; b < nb; b++, a += SZ_Q8_0) {
            uint8_t *o = yv + b * 64;
            memcpy(o, a + 2, 16);
            memcpy(o + 16, a + 2, 16);
            memcpy(o + 32, a + 18, 16);
            memcpy(o + 48, a + 18, 16);
            int s = 0;
            for (int i = 0; i < 32; i++) s += (int8_t)a[2 + i];
            as[b] = s;
            da[b] = g4_f16_to_f32((uint16_t)(a[0] | a[1] << 8));
        }
    }
}

/* matrix-matrix layout, per (group of 16 tokens, block): activation dword q
 * of token j at 64q + 4j (XOR 0x80 for q8_0 weights), then -8 * the
 * block's activation sum per token (q4_0), then the 16 scales; tokens past
 * n_tok are zero activations with a zero scale */
static void prep_gemm_group(int q8, const uint8_t *act, uint64_t ab, int64_t n_tok, int64_t nb, int64_t g, uint8_t *dst)
{
    const uint32_t flip = q8 ? 0x80808080u : 0;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *rec = dst + ((size_t)g * (size_t)nb + (size_t)b) * REC;
        int32_t *ns = (int32_t *)(rec + 512);
        float *da = (float *)(rec + 576);
        for (int j = 0; j < GT; j++) {
            const int64_t t = g * GT + j;
            if (t >= n_tok) {
                for (int q = 0; q < 8; q++) {
                    memcpy(rec + 64 * q + 4 * j, &flip, 4);
                }
                ns[j] = 0;
                da[j] = 0.0f;
                continue;
            }
            const uint8_t *a = act + (uint64_t)t * ab + (uint64_t)b * SZ_Q8_0;
            for (int q = 0; q < 8; q++) {
                const uint32_t v = ld32(a + 2 + 4 * q) ^ flip;
                memcpy(rec + 64 * q + 4 * j, &v, 4);
            }
            int s = 0;
            for (int i = 0; i < 32; i++) s += (int8_t)a[2 + i];
            ns[j] = -8 * s;
            da[j] = g4_f16_to_f32((uint16_t)(a[0] | a[1] << 8));
        }
    }
}

static void prep_gemm(int q8, const uint8_t *act, uint64_t ab, int64_t n_tok, int64_t nb, uint8_t *dst)
{
    const int64_t ng = (n_tok + GT - 1) / GT;
    for (int64_t g = 0; g < ng; g++)
        prep_gemm_group(q8, act, ab, n_tok, nb, g, dst);
}

static void prep_q4_0(const uint8_t *act, uint64_t ab, int64_t n_tok, int64_t n, void *dst)
{
    if (n_tok >= G4_GEMM_MIN_TOK) prep_gemm(0, act, ab, n_tok, n / 32, dst);
    else prep_gemv(act, ab, n_tok, n / 32, dst);
}

static void prep_q8_0(const uint8_t *act, uint64_t ab, int64_t n_tok, int64_t n, void *dst)
{
    if (n_tok >= G4_GEMM_MIN_TOK) prep_gemm(1, act, ab, n_tok, n / 32, dst);
    else prep_gemv(act, ab, n_tok, n / 32, dst);
}

static void prep_group_q4_0(const uint8_t *act, uint64_t ab, int64_t n_tok, int64_t n, int64_t g, void *dst)
{
    prep_gemm_group(0, act, ab, n_tok, n / 32, g, dst);
}

static void prep_group_q8_0(const uint8_t *act, uint64_t ab, int64_t n_tok, int64_t n, int64_t g, void *dst)
{
    prep_gemm_group(1, act, ab, n_tok, n / 32, g, dst);
}

/* ------------------------------------------------------ matrix-vector */

/* 16 rows from r, one token: returns nothing, stores y[r .. r+15] */
INLINE5 void gemv16(int q8, const uint8_t *w, uint64_t rb, int64_t nb, const uint8_t *pv, const __m512i gidx, float *yr)
{
    const int bs = q8 ? SZ_Q8_0 : SZ_Q4_0;
    const int32_t *as = (const int32_t *)(pv + (size_t)nb * 64);
    const float *da = (const float *)(pv + (size_t)nb * 68);
    const __m512i m4 = _mm512_set1_epi8(0x0F), flip = _mm512_set1_epi8((char)0x80);
    const __m512i pairidx = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m512i yv = _mm512_loadu_si512((const void *)(pv + b * 64));
        const uint8_t *wb = w + b * bs;
#if G4_GEMV_PF > 0
        /* 16 interleaved streams: fetch each row G4_GEMV_PF blocks ahead,
         * every third block (54 or 102 bytes, so no cache line is missed
         * for q4_0; q8_0 every block) */
        if (q8 || b % 3 == 0) {
            UNROLL for (int r = 0; r < 16; r++)
                _mm_prefetch((const char *)(wb + (uint64_t)r * rb + G4_GEMV_PF * bs), _MM_HINT_T0);
        }
#endif
        __m512i d[8];
        UNROLL for (int p = 0; p < 8; p++) {
            const uint8_t *w0 = wb + (uint64_t)(2 * p) * rb, *w1 = w0 + rb;
            __m512i x;
            if (q8) {
                x = _mm512_permutex2var_epi64(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(w0 + 2))), pairidx,
                                              _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(w1 + 2))));
                x = _mm512_xor_si512(x, flip);
            } else {
                const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(w0 + 2))),
                                                          _mm_loadu_si128((const __m128i *)(w1 + 2)), 1);
                x = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1), m4);
            }
            d[p] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), x, yv);
        }
        __m512i f[4];
        UNROLL for (int m = 0; m < 4; m++)
            f[m] = _mm512_add_epi32(_mm512_shuffle_i64x2(d[2 * m], d[2 * m + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                                    _mm512_shuffle_i64x2(d[2 * m], d[2 * m + 1], _MM_SHUFFLE(3, 2, 3, 2)));
        const __m512i g01 = _mm512_add_epi32(_mm512_unpacklo_epi32(f[0], f[1]), _mm512_unpackhi_epi32(f[0], f[1]));
        const __m512i g23 = _mm512_add_epi32(_mm512_unpacklo_epi32(f[2], f[3]), _mm512_unpackhi_epi32(f[2], f[3]));
        __m512i s = _mm512_add_epi32(_mm512_unpacklo_epi64(g01, g23), _mm512_unpackhi_epi64(g01, g23));
        /* q4_0: - 8 * sum(a); q8_0: - 128 * sum(a) (the + 128 of the weights) */
        s = _mm512_sub_epi32(s, _mm512_set1_epi32(as[b] * (q8 ? 128 : 8)));
        const __m512i dw16 = _mm512_i32gather_epi32(gidx, (const void *)wb, 1);
        const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dw16));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(da[b])), acc);
    }
    /* lane 4k+m holds row 4m+k */
    const __m512i back = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_ps(yr, _mm512_permutexvar_ps(back, acc));
}

INLINE5 void gemv(int q8, const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t nb, const uint8_t *pv,
                  const uint8_t *act_row, float *y)
{
    int64_t r = r0;
    /* gather offsets: lane L reads row 4(L%4) + L/4 */
    if (rb <= (uint64_t)INT32_MAX / 16) {
        int32_t off[16];
        for (int L = 0; L < 16; L++) off[L] = (int32_t)((uint64_t)(4 * (L % 4) + L / 4) * rb);
        const __m512i gidx = _mm512_loadu_si512(off);
        for (; r + 16 <= r1; r += 16)
            gemv16(q8, w + (uint64_t)r * rb, rb, nb, pv, gidx, y + r);
    }
    for (; r < r1; r++)
        y[r] = dot_chain(q8, w + (uint64_t)r * rb, act_row, nb);
}

/* ------------------------------------------------------ matrix-matrix */

/* one token group's results for rows [0, nr) into y: acc (minus accm, the
 * K-quant mins chain, when given); lanes past n_tok are padding, unwritten */
INLINE5 void store_group(const __m512 *acc, const __m512 *accm, int nr, int64_t tok0, int64_t n_tok, float *y,
                         int64_t ldy)
{
    for (int i = 0; i < nr; i++) {
        _Alignas(64) float o[GT];
        _mm512_store_ps(o, accm ? _mm512_sub_ps(acc[i], accm[i]) : acc[i]);
        for (int j = 0; j < GT && tok0 + j < n_tok; j++)
            y[(tok0 + j) * ldy + i] = o[j];
    }
}

typedef struct {
    uint8_t s[GPR][KC][32];   /* q4_0: unpacked nibbles, element order */
    int32_t corr[GPR][KC];    /* q8_0: -128 * sum of the block's weights */
    float   dw[GPR][KC];
} wtile;

INLINE5 void unpack_tile(int q8, wtile *t, const uint8_t *w, uint64_t rb, int nr, int64_t b0, int kn)
{
    const int bs = q8 ? SZ_Q8_0 : SZ_Q4_0;
    for (int i = 0; i < nr; i++) {
        const uint8_t *p = w + (uint64_t)i * rb + (uint64_t)b0 * bs;
        for (int b = 0; b < kn; b++, p += bs) {
            t->dw[i][b] = fh(p);
            if (q8) {
                const __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 2)), _mm256_set1_epi8((char)0x80));
                const __m256i s4 = _mm256_sad_epu8(v, _mm256_setzero_si256());
                const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
                const int sum = (int)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 128 * 32;
                t->corr[i][b] = -128 * sum;
            } else {
                const __m128i q = _mm_loadu_si128((const __m128i *)(p + 2));
                const __m256i x = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
                _mm256_store_si256((__m256i *)t->s[i][b], x);
            }
        }
    }
}

/* np register tiles of NR rows (NR a compile-time constant after inlining)
 * starting at w, token groups [g0, g0 + gn), K chunk of kn blocks;
 * accs[g][i] carries row i's chain between chunks.  Per token group the
 * chunk's activation records (kn x REC bytes) stay in L1 while the np tiles
 * walk them in turn. */
INLINE5 void tile_chunk(int q8, int NR, int np, const wtile *t, const uint8_t *w, uint64_t rb, int64_t b0, int kn,
                        int64_t nb, const uint8_t *prep, int64_t g0, int gn, __m512 (*accs)[GPR], int first)
{
    for (int g = 0; g < gn; g++) {
        for (int p = 0; p < np; p++) {
            const int i0 = p * NR;
            __m512 acc[GR];
            UNROLL for (int i = 0; i < NR; i++) acc[i] = first ? _mm512_setzero_ps() : accs[g][i0 + i];
            const uint8_t *rec = prep + ((size_t)(g0 + g) * (size_t)nb + (size_t)b0) * REC;
            for (int b = 0; b < kn; b++, rec += REC) {
                const __m512 dv = _mm512_load_ps((const void *)(rec + 576));
                /* one VPDPBUSD chain per row, the NR chains interleaved in
                 * program order so that NR independent instructions cover
                 * the instruction's latency */
                __m512i s[GR];
                if (q8) {
                    UNROLL for (int i = 0; i < NR; i++) s[i] = _mm512_set1_epi32(t->corr[i0 + i][b]);
                } else {
                    const __m512i ns = _mm512_load_si512((const void *)(rec + 512));
                    UNROLL for (int i = 0; i < NR; i++) s[i] = ns;
                }
                UNROLL for (int q = 0; q < 8; q++) {
                    const __m512i A = _mm512_load_si512((const void *)(rec + 64 * q));
                    UNROLL for (int i = 0; i < NR; i++) {
                        if (q8) {
                            const uint8_t *wp = w + (uint64_t)(i0 + i) * rb + (uint64_t)(b0 + b) * SZ_Q8_0 + 2;
                            s[i] = _mm512_dpbusd_epi32(s[i], A, _mm512_set1_epi32((int)ld32(wp + 4 * q)));
                        } else {
                            s[i] = _mm512_dpbusd_epi32(s[i], _mm512_set1_epi32((int)ld32(t->s[i0 + i][b] + 4 * q)), A);
                        }
                    }
                }
                UNROLL for (int i = 0; i < NR; i++)
                    acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[i]), _mm512_mul_ps(_mm512_set1_ps(t->dw[i0 + i][b]), dv),
                                             acc[i]);
            }
            UNROLL for (int i = 0; i < NR; i++) accs[g][i0 + i] = acc[i];
        }
    }
}

/* a panel of np register tiles of NR rows (np * NR <= GPR) from w, all tokens */
INLINE5 void gemm_panel(int q8, int NR, int np, const uint8_t *w, uint64_t rb, int64_t nb, const uint8_t *prep,
                        int64_t n_tok, float *y, int64_t ldy)
{
    const int64_t ng = (n_tok + GT - 1) / GT;
    const int nr = NR * np;
    _Alignas(64) wtile t;
    _Alignas(64) __m512 accs[SG][GPR];
    for (int64_t g0 = 0; g0 < ng; g0 += SG) {
        const int gn = (int)(ng - g0 < SG ? ng - g0 : SG);
        for (int64_t b0 = 0; b0 < nb; b0 += KC) {
            const int kn = (int)(nb - b0 < KC ? nb - b0 : KC);
            unpack_tile(q8, &t, w, rb, nr, b0, kn);
            tile_chunk(q8, NR, np, &t, w, rb, b0, kn, nb, prep, g0, gn, accs, b0 == 0);
        }
        for (int g = 0; g < gn; g++)
            store_group(accs[g], NULL, nr, (g0 + g) * GT, n_tok, y, ldy);
    }
}

INLINE5 void run_q80(int q8, const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t n, const void *prepv,
                     const uint8_t *act, uint64_t ab, int64_t n_tok, float *y, int64_t ldy)
{
    const int64_t nb = n / 32;
    const uint8_t *prep = prepv;
    if (n_tok < G4_GEMM_MIN_TOK) {
        for (int64_t tok = 0; tok < n_tok; tok++)
            gemv(q8, w, rb, r0, r1, nb, prep + (size_t)tok * (size_t)nb * GV, act + (uint64_t)tok * ab, y + tok * ldy);
        return;
    }
    int64_t r = r0;
    while (r1 - r >= GR) {
        const int np = (int)((r1 - r) / GR < GPR / GR ? (r1 - r) / GR : GPR / GR);
        gemm_panel(q8, GR, np, w + (uint64_t)r * rb, rb, nb, prep, n_tok, y + r, ldy);
        r += (int64_t)np * GR;
    }
    if (r < r1) /* the last rows, one per register tile */
        gemm_panel(q8, 1, (int)(r1 - r), w + (uint64_t)r * rb, rb, nb, prep, n_tok, y + r, ldy);
}

T5 static void run_q4_0(const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t n, const void *prep,
                        const uint8_t *act, uint64_t ab, int64_t n_tok, float *y, int64_t ldy)
{
    run_q80(0, w, rb, r0, r1, n, prep, act, ab, n_tok, y, ldy);
}

T5 static void run_q8_0(const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t n, const void *prep,
                        const uint8_t *act, uint64_t ab, int64_t n_tok, float *y, int64_t ldy)
{
    run_q80(1, w, rb, r0, r1, n, prep, act, ab, n_tok, y, ldy);
}


/* ---------------------------------------------------- K-quants (Q8_K)
 *
 * The block chain with 256-element super-blocks: isum(r, t, b) is the
 * exact sum over sub-blocks of scale * (sub-block dot), q6_K's "-32" folded
 * in through Q8_K's bsums; q4_K/q5_K carry a second chain for the mins:
 *     acc  = fma((float)isum, d(r, b) * da(t, b), acc)
 *     accm = fma((float)msum, dmin(r, b) * da(t, b), accm)     (q4_K, q5_K)
 *     y = acc - accm                                            (q6_K: acc)
 * The one-row kernels (simd_x86.c, vd_q6_K_avx512 / k45_avx512) do exactly
 * this; the matrix-vector kernels (1-3 tokens) run the same integer and
 * float operations 16 rows at a time (rows in lanes, below), the one-row
 * kernel only for the rows past the last 16-row tile.  Matrix-matrix: tokens in lanes,
 * weights unpacked to one byte per element (values 0..15/31/63, unsigned)
 * and broadcast four at a time, sub-block sums scaled with VPMULLD. */

enum {
    SZ_Q4_K = 144, SZ_Q5_K = 176, SZ_Q6_K = 210, SZ_Q8_K = 292,
    KREC = 4928,   /* per (token group, block): 64 x 64 activations, 8 x 64 bsum pairs, 4 x 64 sub-block sum pairs, 64 scales */
    KKC = 2,       /* blocks per K chunk */
    KGR = 8,       /* rows per register tile */
    KPR = 32,      /* rows per panel: the register tiles that share each activation record from L1 */
    KSG = 16,      /* token groups per pass (their float chains wait in L1/L2 between K chunks) */
};

static size_t kprep_bytes(int64_t n_tok, int64_t n)
{
    if (n_tok >= G4_GEMM_MIN_TOK)
        return (size_t)((n_tok + GT - 1) / GT) * (size_t)(n / 256) * KREC;
    return 0;
}

static inline uint32_t pack16(int lo, int hi) { return (uint32_t)(uint16_t)lo | (uint32_t)(uint16_t)hi << 16; }

static void kprep_group(const uint8_t *act, uint64_t ab, int64_t n_tok, int64_t n, int64_t g, void *dstv)
{
    uint8_t *dst = dstv;
    const int64_t nb = n / 256;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *rec = dst + ((size_t)g * (size_t)nb + (size_t)b) * KREC;
        uint32_t *bs6 = (uint32_t *)(rec + 4096), *bsp = (uint32_t *)(rec + 4608);
        float *da = (float *)(rec + 4864);
        for (int j = 0; j < GT; j++) {
            const int64_t t = g * GT + j;
            if (t >= n_tok) {
                for (int q = 0; q < 64; q++) memset(rec + 64 * q + 4 * j, 0, 4);
                for (int p = 0; p < 8; p++) bs6[16 * p + j] = 0;
                for (int p = 0; p < 4; p++) bsp[16 * p + j] = 0;
                da[j] = 0.0f;
                continue;
            }
            const uint8_t *a = act + (uint64_t)t * ab + (uint64_t)b * SZ_Q8_K;
            for (int q = 0; q < 64; q++) memcpy(rec + 64 * q + 4 * j, a + 4 + 4 * q, 4);
            int16_t bs[16];
            memcpy(bs, a + 260, sizeof bs);
            for (int p = 0; p < 8; p++) bs6[16 * p + j] = pack16(bs[2 * p], bs[2 * p + 1]);
            for (int p = 0; p < 4; p++)
                bsp[16 * p + j] = pack16(bs[4 * p] + bs[4 * p + 1], bs[4 * p + 2] + bs[4 * p + 3]);
            memcpy(&da[j], a, 4);
        }
    }
}

static void kprep(const uint8_t *act, uint64_t ab, int64_t n_tok, int64_t n, void *dst)
{
    if (n_tok < G4_GEMM_MIN_TOK)
        return;
    const int64_t ng = (n_tok + GT - 1) / GT;
    for (int64_t g = 0; g < ng; g++)
        kprep_group(act, ab, n_tok, n, g, dst);
}

typedef struct {
    uint8_t  q[KPR][KKC][256];   /* element values, unsigned */
    int32_t  sc[KPR][KKC][16];   /* sub-block scales (q6_K: 16, q4_K/q5_K: 8) */
    uint32_t cp[KPR][KKC][8];    /* q6_K: (-32 sc[2p], -32 sc[2p+1]) as int16 pairs; q4/5_K: (m[2p], m[2p+1]), p < 4 */
    float    d[KPR][KKC], dmin[KPR][KKC];
} ktile;

static inline void k4_scale_min(const uint8_t *q, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* kt: 4 (q4_K), 5 (q5_K), 6 (q6_K) */
INLINE5 void kunpack(int kt, ktile *t, const uint8_t *w, uint64_t rb, int nr, int64_t b0, int kn)
{
    const int bs = kt == 6 ? SZ_Q6_K : kt == 5 ? SZ_Q5_K : SZ_Q4_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30), one = _mm256_set1_epi8(1);
    for (int i = 0; i < nr; i++) {
        const uint8_t *p = w + (uint64_t)i * rb + (uint64_t)b0 * bs;
        for (int b = 0; b < kn; b++, p += bs) {
            uint8_t *o = t->q[i][b];
            if (kt == 6) {
                UNROLL for (int h = 0; h < 2; h++) {
                    const __m256i l0 = _mm256_loadu_si256((const __m256i *)(p + 64 * h));
                    const __m256i l1 = _mm256_loadu_si256((const __m256i *)(p + 64 * h + 32));
                    const __m256i hb = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h));
                    uint8_t *oh = o + 128 * h;
                    _mm256_store_si256((__m256i *)oh, _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30)));
                    _mm256_store_si256((__m256i *)(oh + 32), _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30)));
                    _mm256_store_si256((__m256i *)(oh + 64), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m30)));
                    _mm256_store_si256((__m256i *)(oh + 96), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                                                             _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30)));
                }
                for (int j = 0; j < 16; j++) t->sc[i][b][j] = (int8_t)p[192 + j];
                UNROLL for (int q = 0; q < 8; q++) t->cp[i][b][q] = pack16(-32 * (int8_t)p[192 + 2 * q], -32 * (int8_t)p[192 + 2 * q + 1]);
                t->d[i][b] = fh(p + 208);
            } else {
                const uint8_t *qs = p + (kt == 5 ? 48 : 16);
                __m256i hv = kt == 5 ? _mm256_loadu_si256((const __m256i *)(p + 16)) : _mm256_setzero_si256();
                UNROLL for (int c = 0; c < 4; c++) {
                    const __m256i qv = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
                    __m256i lo = _mm256_and_si256(qv, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
                    if (kt == 5) {
                        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hv, one), 4));
                        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 1), one), 4));
                        hv = _mm256_srli_epi16(hv, 2);
                    }
                    _mm256_store_si256((__m256i *)(o + 64 * c), lo);
                    _mm256_store_si256((__m256i *)(o + 64 * c + 32), hi);
                }
                int sc[8], mn[8];
                for (int j = 0; j < 8; j++) k4_scale_min(p + 4, j, &sc[j], &mn[j]);
                for (int j = 0; j < 8; j++) t->sc[i][b][j] = sc[j];
                for (int q = 0; q < 4; q++) t->cp[i][b][q] = pack16(mn[2 * q], mn[2 * q + 1]);
                t->d[i][b] = fh(p);
                t->dmin[i][b] = fh(p + 2);
            }
        }
    }
}

/* block b of the unpacked tile, rows [i0, i0 + NR), one token group (the
 * record rec): the exact isum of each (row, token), then one step of each
 * float chain (acc[i], accm[i]: that row's 16 tokens) */
INLINE5 void kblock(int kt, int NR, const ktile *t, int i0, int b, const uint8_t *rec, __m512 *acc, __m512 *accm)
{
    /* sub-blocks: q6_K 16 of 16 elements (4 quads), q4/5_K 8 of 32 (8 quads) */
    const int nsub = kt == 6 ? 16 : 8, nq = kt == 6 ? 4 : 8;
    __m512i s[KGR];
    UNROLL for (int i = 0; i < NR; i++) {
        s[i] = _mm512_setzero_si512();
        if (kt == 6)
            UNROLL for (int p = 0; p < 8; p++)
                s[i] = _mm512_dpwssd_epi32(s[i], _mm512_load_si512((const void *)(rec + 4096 + 64 * p)),
                                           _mm512_set1_epi32((int)t->cp[i0 + i][b][p]));
    }
    for (int j = 0; j < nsub; j++) {
        /* one VPDPBUSD chain per row, the NR chains interleaved in program
         * order: NR independent instructions between two dependent ones
         * cover the instruction's latency (row after row, the out-of-order
         * window would have to look a whole sub-block ahead) */
        __m512i x[KGR];
        UNROLL for (int i = 0; i < NR; i++) x[i] = _mm512_setzero_si512();
        UNROLL for (int u = 0; u < nq; u++) {
            const __m512i A = _mm512_load_si512((const void *)(rec + 64 * (nq * j + u)));
            UNROLL for (int i = 0; i < NR; i++)
                x[i] = _mm512_dpbusd_epi32(x[i], _mm512_set1_epi32((int)ld32(t->q[i0 + i][b] + 4 * (nq * j + u))), A);
        }
        UNROLL for (int i = 0; i < NR; i++)
            s[i] = _mm512_add_epi32(s[i], _mm512_mullo_epi32(x[i], _mm512_set1_epi32(t->sc[i0 + i][b][j])));
    }
    const __m512 dv = _mm512_load_ps((const void *)(rec + 4864));
    UNROLL for (int i = 0; i < NR; i++) {
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[i]), _mm512_mul_ps(_mm512_set1_ps(t->d[i0 + i][b]), dv), acc[i]);
        if (kt != 6) {
            __m512i m = _mm512_setzero_si512();
            UNROLL for (int p = 0; p < 4; p++)
                m = _mm512_dpwssd_epi32(m, _mm512_load_si512((const void *)(rec + 4608 + 64 * p)),
                                        _mm512_set1_epi32((int)t->cp[i0 + i][b][p]));
            accm[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(_mm512_set1_ps(t->dmin[i0 + i][b]), dv), accm[i]);
        }
    }
}

/* A panel of np register tiles of NR rows (np * NR <= KPR) from w, all
 * tokens.  Per K chunk the panel's weights are unpacked once (into L1) and
 * each activation record (token group x block) is loaded once for the np
 * tiles, so the prepared activations stream from the outer caches once per
 * KPR rows rather than once per register tile.  The float chains of KSG
 * token groups wait on the stack between blocks; every (row, token) still
 * visits the blocks in order. */
INLINE5 void kgemm_panel(int kt, int NR, int np, const uint8_t *w, uint64_t rb, int64_t nb, const uint8_t *prep,
                         int64_t n_tok, float *y, int64_t ldy)
{
    const int64_t ng = (n_tok + GT - 1) / GT;
    const int nr = NR * np;
    _Alignas(64) ktile t;
    _Alignas(64) __m512 accs[KSG][KPR];
    _Alignas(64) __m512 accms[kt == 6 ? 1 : KSG][KPR];
    for (int64_t g0 = 0; g0 < ng; g0 += KSG) {
        const int gn = (int)(ng - g0 < KSG ? ng - g0 : KSG);
        for (int g = 0; g < gn; g++)
            for (int i = 0; i < nr; i++) {
                accs[g][i] = _mm512_setzero_ps();
                if (kt != 6) accms[g][i] = _mm512_setzero_ps();
            }
        for (int64_t b0 = 0; b0 < nb; b0 += KKC) {
            const int kn = (int)(nb - b0 < KKC ? nb - b0 : KKC);
            kunpack(kt, &t, w, rb, nr, b0, kn);
            for (int g = 0; g < gn; g++) {
                const uint8_t *rec = prep + ((size_t)(g0 + g) * (size_t)nb + (size_t)b0) * KREC;
                for (int b = 0; b < kn; b++, rec += KREC)
                    for (int p = 0; p < np; p++)
                        kblock(kt, NR, &t, p * NR, b, rec, accs[g] + p * NR, kt == 6 ? NULL : accms[g] + p * NR);
            }
        }
        for (int g = 0; g < gn; g++)
            store_group(accs[g], kt == 6 ? NULL : accms[g], nr, (g0 + g) * GT, n_tok, y, ldy);
    }
}

/* ------------------------------------------ K-quant matrix-vector (decode)
 *
 * 16 rows at once, one token: the activation block is loaded once for the
 * 16 rows, each row's exact block isum is built in its own zmm (the same
 * integer operations as the one-row kernel; any order gives the same
 * int32), then a transpose-and-add tree turns the 16 zmm into one zmm of
 * 16 block sums in row order, and the block chain runs in the 16 lanes:
 * acc = fma((float)isum, d * da, acc) per lane, the same float operations
 * the one-row kernel performs per row.  Software prefetch KPF blocks ahead
 * on the 16 row streams (into the next 16-row tile past the row's end):
 * short rows (15 blocks for 3840 columns) give the hardware prefetchers
 * too little to lock on to. */

#ifndef G4_KGEMV_PF
#define G4_KGEMV_PF 4
#endif

/* lane r = the sum of the 16 int32 of v[r] */
INLINE5 __m512i hsum16x16(__m512i v[16])
{
    __m512i w[8], x[4], y0, y1;
    UNROLL for (int i = 0; i < 8; i++)
        w[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
    UNROLL for (int j = 0; j < 4; j++)
        x[j] = _mm512_add_epi32(_mm512_unpacklo_epi64(w[2 * j], w[2 * j + 1]), _mm512_unpackhi_epi64(w[2 * j], w[2 * j + 1]));
    y0 = _mm512_add_epi32(_mm512_shuffle_i64x2(x[0], x[1], _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_i64x2(x[0], x[1], _MM_SHUFFLE(3, 2, 3, 2)));
    y1 = _mm512_add_epi32(_mm512_shuffle_i64x2(x[2], x[3], _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_i64x2(x[2], x[3], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_epi32(_mm512_shuffle_i64x2(y0, y1, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_i64x2(y0, y1, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* prefetch row r's block KPF ahead of b (bs bytes, 4 lines cover it with
 * the next block's first line); past the row's end: the next tile's rows */
INLINE5 void kgemv_prefetch(const uint8_t *w, uint64_t rb, int64_t b, int64_t nb, int bs)
{
#if G4_KGEMV_PF > 0
    int64_t pb = b + G4_KGEMV_PF;
    const uint8_t *p = w;
    if (pb >= nb) {
        pb -= nb;
        p += 16 * rb;
        if (pb >= nb)
            return;
    }
    p += (uint64_t)pb * (uint64_t)bs;
    UNROLL for (int r = 0; r < 16; r++)
        UNROLL for (int l = 0; l < 4; l++)
            _mm_prefetch((const char *)(p + (uint64_t)r * rb + 64 * l), _MM_HINT_T0);
#else
    (void)w; (void)rb; (void)b; (void)nb; (void)bs;
#endif
}

/* the dword at byte `off` of a block of rows 0-15 (gidx: lane r = r * rb) */
INLINE5 __m512i gather_rows(const uint8_t *wb, int off, __m512i gidx)
{
    return _mm512_i32gather_epi32(gidx, (const void *)(wb + off), 1);
}
/* the f16 in the low (hi = 0) or high half of each dword, as floats */
INLINE5 __m512 f16_half(__m512i v, int hi)
{
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(hi ? _mm512_srli_epi32(v, 16) : v));
}

/* q6_K, rows [0, 16) from w, token a (Q8_K): the twin of vd_q6_K_avx512 */
INLINE5 void q6k_gemv16(const uint8_t *w, uint64_t rb, int64_t nb, const uint8_t *a, __m512i gidx, float *yr)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const __m512i cnt01 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i cnt23 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    /* 128-bit lane L of the 16-element planes 0+1 of half h takes scale
     * 8h + L, planes 2+3 scale 8h + 4 + L */
    __m512i sidx[4];
    UNROLL for (int k = 0; k < 4; k++) {
        const int base = 8 * (k >> 1) + 4 * (k & 1);
        sidx[k] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)base)),
                                                                                     _mm_set1_epi16((short)(base + 1)), 1)),
                                     _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)(base + 2))),
                                                             _mm_set1_epi16((short)(base + 3)), 1), 1);
    }
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *ab = a + b * SZ_Q8_K, *wb = w + b * SZ_Q6_K;
        kgemv_prefetch(w, rb, b, nb, SZ_Q6_K);
        __m512i A[4];
        UNROLL for (int k = 0; k < 4; k++) A[k] = _mm512_loadu_si512((const void *)(ab + 4 + 64 * k));
        /* -bsums: the "-32" of every weight, 32 * scale * -bsum per pair */
        const __m512i nbs = _mm512_zextsi256_si512(_mm256_sub_epi16(_mm256_setzero_si256(), _mm256_loadu_si256((const __m256i *)(ab + 260))));
        __m512i v[16];
        UNROLL for (int r = 0; r < 16; r++) {
            const uint8_t *p = wb + (uint64_t)r * rb;
            const __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 192)));
            const __m512i s = _mm512_zextsi256_si512(sc);
            __m512i isum = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_zextsi256_si512(_mm256_slli_epi16(sc, 5)), nbs);
            UNROLL for (int h = 0; h < 2; h++) {
                const __m512i ql = _mm512_loadu_si512((const void *)(p + 64 * h));
                const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h)));
                const __m512i q01 = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_sllv_epi16(hb, cnt01), m30));
                const __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                                    _mm512_and_si512(_mm512_srlv_epi16(hb, cnt23), m30));
                isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(q01, A[2 * h]), _mm512_permutexvar_epi16(sidx[2 * h], s));
                isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(q23, A[2 * h + 1]), _mm512_permutexvar_epi16(sidx[2 * h + 1], s));
            }
            v[r] = isum;
        }
        const __m512i is = hsum16x16(v);
        float da;
        memcpy(&da, ab, 4);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(f16_half(gather_rows(wb, 206, gidx), 1), _mm512_set1_ps(da)), acc);
    }
    _mm512_storeu_ps(yr, acc);
}

/* the 8 scales (bytes 0-7) and 8 mins (8-15) of a q4_K / q5_K block, as
 * simd_x86.c's k45_sm unpacks them (see there) */
INLINE5 __m128i k45_sm_g(const uint8_t *q)
{
    const __m128i u = _mm_loadu_si128((const __m128i *)q);
    const __m128i lo = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(2, 1, 2, 0)), _mm_setr_epi32(0, 0, 0, 4)),
                                     _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m128i hi = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(1, 1, 0, 0)), 2),
                                     _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
    return _mm_or_si128(lo, hi);
}

/* lane r = the sum of the 8 int32 of m[r] (rows paired in zmm halves so
 * that the tree ends in row order) */
INLINE5 __m512i hsum16x8(const __m256i m[16])
{
    __m512i M[8], w[4], x[2];
    UNROLL for (int i = 0; i < 8; i++) {
        const int lo = (i & 3) + 8 * (i >> 2);
        M[i] = _mm512_inserti64x4(_mm512_castsi256_si512(m[lo]), m[lo + 4], 1);
    }
    UNROLL for (int i = 0; i < 4; i++)
        w[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(M[2 * i], M[2 * i + 1]), _mm512_unpackhi_epi32(M[2 * i], M[2 * i + 1]));
    UNROLL for (int j = 0; j < 2; j++)
        x[j] = _mm512_add_epi32(_mm512_unpacklo_epi64(w[2 * j], w[2 * j + 1]), _mm512_unpackhi_epi64(w[2 * j], w[2 * j + 1]));
    return _mm512_add_epi32(_mm512_shuffle_i64x2(x[0], x[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_i64x2(x[0], x[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/* q4_K / q5_K, rows [0, 16) from w, token a (Q8_K): the twin of
 * k45_avx512 (two chains, y = acc - accm) */
INLINE5 void k45_gemv16(int five, const uint8_t *w, uint64_t rb, int64_t nb, const uint8_t *a, __m512i gidx, float *yr)
{
    const int bs = five ? SZ_Q5_K : SZ_Q4_K;
    const __m512i m4 = _mm512_set1_epi8(0x0F), one = _mm512_set1_epi8(1);
    __m512i sidx[4];
    for (int c = 0; c < 4; c++)
        sidx[c] = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * c)), _mm256_set1_epi16((short)(2 * c + 1)), 1);
    __m512 acc = _mm512_setzero_ps(), accm = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *ab = a + b * SZ_Q8_K, *wb = w + b * bs;
        kgemv_prefetch(w, rb, b, nb, bs);
        __m512i A[4];
        UNROLL for (int c = 0; c < 4; c++) A[c] = _mm512_loadu_si512((const void *)(ab + 4 + 64 * c));
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)(ab + 260));
        __m512i v[16];
        __m256i mv[16];
        UNROLL for (int r = 0; r < 16; r++) {
            const uint8_t *p = wb + (uint64_t)r * rb;
            const __m128i sm = k45_sm_g(p + 4);
            /* min j against bsums 2j and 2j+1: the exact products of the
             * one-row kernel's min_j * (bsum 2j + bsum 2j+1) */
            mv[r] = _mm256_madd_epi16(bsums, _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm)));
            const __m512i sc16 = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(sm));
            const uint8_t *qs = p + (five ? 48 : 16);
            __m512i hv = five ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(p + 16))) : _mm512_setzero_si512();
            if (five)
                hv = _mm512_mask_srli_epi16(hv, (__mmask32)0xFFFF0000u, hv, 1);
            __m512i isum = _mm512_setzero_si512();
            UNROLL for (int c = 0; c < 4; c++) {
                const __m256i qv = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
                __m512i q = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(qv), _mm256_srli_epi16(qv, 4), 1), m4);
                if (five) {
                    q = _mm512_or_si512(q, _mm512_slli_epi16(_mm512_and_si512(hv, one), 4));
                    hv = _mm512_srli_epi16(hv, 2);
                }
                isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(q, A[c]), _mm512_permutexvar_epi16(sidx[c], sc16));
            }
            v[r] = isum;
        }
        const __m512i is = hsum16x16(v), ms = hsum16x8(mv);
        float da;
        memcpy(&da, ab, 4);
        const __m512i dd = gather_rows(wb, 0, gidx);
        const __m512 dav = _mm512_set1_ps(da);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(f16_half(dd, 0), dav), acc);
        accm = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ms), _mm512_mul_ps(f16_half(dd, 1), dav), accm);
    }
    _mm512_storeu_ps(yr, _mm512_sub_ps(acc, accm));
}

/* 1-3 tokens: 16-row tiles, the rest (and rows too long for 32-bit
 * gather offsets) with the one-row kernel */
INLINE5 void kgemv(int kt, const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t n, const uint8_t *act,
                   uint64_t ab, int64_t n_tok, float *y, int64_t ldy, g4_vec_dot_fn vd)
{
    const int64_t nb = n / 256;
    for (int64_t tok = 0; tok < n_tok; tok++) {
        const uint8_t *a = act + (uint64_t)tok * ab;
        float *yt = y + tok * ldy;
        int64_t r = r0;
        if (rb <= (uint64_t)INT32_MAX / 16) {
            const __m512i gidx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                    _mm512_set1_epi32((int)rb));
            for (; r + 16 <= r1; r += 16) {
                if (kt == 6) q6k_gemv16(w + (uint64_t)r * rb, rb, nb, a, gidx, yt + r);
                else         k45_gemv16(kt == 5, w + (uint64_t)r * rb, rb, nb, a, gidx, yt + r);
            }
        }
        for (; r < r1; r++)
            yt[r] = vd(w + (uint64_t)r * rb, a, n);
    }
}

static g4_vec_dot_fn kvd[3]; /* the AVX-512 one-row kernels of q4_K, q5_K, q6_K (simd_x86.c) */

INLINE5 void krun(int kt, const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t n, const void *prepv,
                  const uint8_t *act, uint64_t ab, int64_t n_tok, float *y, int64_t ldy)
{
    const int64_t nb = n / 256;
    if (n_tok < G4_GEMM_MIN_TOK) {
        kgemv(kt, w, rb, r0, r1, n, act, ab, n_tok, y, ldy, kvd[kt - 4]);
        return;
    }
    int64_t r = r0;
    while (r1 - r >= KGR) {
        const int np = (int)((r1 - r) / KGR < KPR / KGR ? (r1 - r) / KGR : KPR / KGR);
        kgemm_panel(kt, KGR, np, w + (uint64_t)r * rb, rb, nb, prepv, n_tok, y + r, ldy);
        r += (int64_t)np * KGR;
    }
    if (r < r1) /* the last rows, one per register tile */
        kgemm_panel(kt, 1, (int)(r1 - r), w + (uint64_t)r * rb, rb, nb, prepv, n_tok, y + r, ldy);
}

T5 static void run_q4_K(const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t n, const void *prep,
                        const uint8_t *act, uint64_t ab, int64_t n_tok, float *y, int64_t ldy)
{
    krun(4, w, rb, r0, r1, n, prep, act, ab, n_tok, y, ldy);
}
T5 static void run_q5_K(const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t n, const void *prep,
                        const uint8_t *act, uint64_t ab, int64_t n_tok, float *y, int64_t ldy)
{
    krun(5, w, rb, r0, r1, n, prep, act, ab, n_tok, y, ldy);
}
T5 static void run_q6_K(const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t n, const void *prep,
                        const uint8_t *act, uint64_t ab, int64_t n_tok, float *y, int64_t ldy)
{
    krun(6, w, rb, r0, r1, n, prep, act, ab, n_tok, y, ldy);
}

static const g4_gemm_kernel GEMM_Q4_K = { kprep_bytes, kprep, run_q4_K, kprep_group, GT };
static const g4_gemm_kernel GEMM_Q5_K = { kprep_bytes, kprep, run_q5_K, kprep_group, GT };
static const g4_gemm_kernel GEMM_Q6_K = { kprep_bytes, kprep, run_q6_K, kprep_group, GT };

static const g4_gemm_kernel GEMM_Q4_0 = { prep_bytes, prep_q4_0, run_q4_0, prep_group_q4_0, GT };
static const g4_gemm_kernel GEMM_Q8_0 = { prep_bytes, prep_q8_0, run_q8_0, prep_group_q8_0, GT };

void g4_gemm_x86_fill(int level, g4_kernel_table *t)
{
    if (level == G4_CPU_AVX512) {
        t->vec_dot[G4_TYPE_Q4_0] = vd_q4_0_chain;
        t->vec_dot[G4_TYPE_Q8_0] = vd_q8_0_chain;
        t->vec_dot_x4[G4_TYPE_Q4_0] = NULL;
        t->vec_dot_x4[G4_TYPE_Q8_0] = NULL;
        t->gemm[G4_TYPE_Q4_0] = &GEMM_Q4_0;
        t->gemm[G4_TYPE_Q8_0] = &GEMM_Q8_0;
        /* K-quants: the one-row kernels are simd_x86.c's block-chain ones */
        kvd[0] = t->vec_dot[G4_TYPE_Q4_K];
        kvd[1] = t->vec_dot[G4_TYPE_Q5_K];
        kvd[2] = t->vec_dot[G4_TYPE_Q6_K];
        if (kvd[0] && kvd[1] && kvd[2]) {
            t->vec_dot_x4[G4_TYPE_Q6_K] = NULL;
            t->gemm[G4_TYPE_Q4_K] = &GEMM_Q4_K;
            t->gemm[G4_TYPE_Q5_K] = &GEMM_Q5_K;
            t->gemm[G4_TYPE_Q6_K] = &GEMM_Q6_K;
        }
    }
}

#else
typedef int g4_gemm_x86_empty; /* not x86-64: the scalar level only */
#endif
