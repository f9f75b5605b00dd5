/*
 * gemm_arm.c - AArch64 matrix kernels (dispatch.h g4_gemm_kernel) for the
 * neon and dotprod levels: q4_0 and q8_0 (Q8_0 activations), q4_K, q5_K
 * and q6_K (Q8_K activations), and the one-row dot kernels of those types
 * that they are the bit-exact twins of (the only quantized ARM dots:
 * simd_arm.c has the encoders and float dots).  The level-dependent code is
 * gemm_arm_body.h, instantiated once per level.  Other
 * architectures (and big-endian AArch64) compile this file to nothing.
 *
 * Float contract: gemm_x86.c's "block chain".  For a weight row r and an
 * activation row t,
 *
 *     acc = 0;  for each block b in order:
 *         acc = fma((float)isum(r, t, b), dw(r, b) * da(t, b), acc)
 *     y[t][r] = acc                          (q4_0, q8_0, q6_K)
 *
 * where isum is the exact int32 dot product of the block (32 elements for
 * q4_0/q8_0; the whole 256-element super-block for K-quants, sub-block
 * scales applied in integer, q6_K's "-32" in the weights), and dw * da the
 * product of the two scales rounded to float.  q4_K/q5_K add a second
 * chain for the mins, accm = fma((float)msum, dmin * da, accm) with msum =
 * sum_j min_j * (bsum 2j + bsum 2j+1), and y = acc - accm.  The one-row
 * kernel (g4_vec_dot of the level), the 1-3 token path (the one-row kernel
 * per row and token) and the blocked 4+ token path perform exactly these
 * float operations per (row, token), so a token's result is the same bits
 * alone or in a prompt batch, whatever rows a thread's item holds; the
 * integer part is exact whichever instructions build it, so neon and
 * dotprod give the same bits as each other too (and, by construction, as
 * gemm_x86.c's avx512 chain).  tests/test_gemm.c
 * checks the identity, tests/test_simd.c the 1e-6 of sum|terms| to the
 * scalar twin; both run under qemu-aarch64 (tests/arm/cross-neon.sh).
 *
 * Matrix-matrix layout (4 tokens or more): tokens in lanes, GT = 4 tokens
 * per int32x4.  prep() transposes each group of four tokens so that one
 * 16-byte register holds the same activation dword of the four tokens (the
 * scales, and for Q8_K the bsum pairs, likewise four to a register); tokens
 * past n_tok are zeros with a zero scale, their lanes never stored.  The
 * weights of a tile of GR rows x KC blocks are unpacked once into one
 * signed byte per element (L1-sized buffer, below) and serve every token
 * group of up to SG groups: per block and row, each 16 weight bytes meet
 * four activation registers with SDOT by lane (vdotq_laneq_s32: weight
 * dword l against lane l's register), giving the four tokens' block sums
 * in one int32x4; an activation register serves the GR rows.  neon has no
 * SDOT: each weight dword is broadcast and multiplied with SMULL/SMULL2
 * (tokens 0-1 / 2-3), pairs added with SADALP, a final ADDP puts the four
 * tokens in lanes -- the same int32 sums.  The float accumulators of the
 * token groups live on the stack between K chunks, so every (row, token)
 * still visits its blocks in order.
 *
 * Exactness: SDOT and SMULL take every byte value as it is (-128 included,
 * no sign trick); q4_0 nibbles are unpacked to nibble - 8, q6_K to q - 32;
 * no int32 sum can overflow (worst |isum|: q6_K 256 * 32 * 128 * 128 =
 * 2^27).  Memory: unaligned loads, never past a row's last block.
 * Speed on real ARM hardware is unmeasured (docs/performance.md, "ARM64").
 */
#include "kernels/dispatch.h"

#if defined(__aarch64__) && !defined(__AARCH64EB__) && (defined(__GNUC__) || defined(__clang__))

#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "kernels/quant.h"

#if defined(__clang__)
/* clang's arm_neon.h (up to at least 14) declares SDOT only when the whole
 * unit is built for it (Apple's default target is; -march=armv8.2-a+dotprod
 * does it elsewhere); without that, the dotprod level has no kernels and
 * falls back to neon's */
#if defined(__ARM_FEATURE_DOTPROD)
#define G4_ARM_DP 1
#endif
#define T_DOT __attribute__((target("dotprod")))
#else
#define G4_ARM_DP 1
/* GCC 12's arm_neon.h declares SDOT under arch=armv8.2-a+dotprod; a bare
 * "+dotprod" fails to inline it */
#define T_DOT __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

#define INLINE static inline __attribute__((always_inline))
/* the row and dword loops of a tile have constant trip counts after
 * inlining: unrolled, the accumulators stay in registers */
#define UNROLL _Pragma("GCC unroll 8")

enum {
    QK = 256, SZ_Q4_0 = 18, SZ_Q8_0 = 34, SZ_Q4_K = 144, SZ_Q5_K = 176, SZ_Q6_K = 210, SZ_Q8_K = 292,
    GT = 4,      /* tokens per group (int32x4 lanes) */
    GR = 4,      /* weight rows per register tile */
    KC = 64,     /* 32-element blocks per K chunk of the unpacked tile (8 KiB) */
    KKC = 8,     /* 256-element blocks per K chunk (8 KiB) */
    SG = 32,     /* token groups sharing one unpacking (128 tokens) */
    REC0 = 144,  /* prepared bytes per (group, Q8_0 block): 8 x 16 activations, 4 scales */
    RECK = 1168, /* per (group, Q8_K block): 64 x 16 activations, 8 x 4 bsum pairs, 4 scales */
};

/* ------------------------------------------------------------ helpers */

/* f16 -> f32 (FCVT is exact for every half, subnormals included) */
static inline float fh(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

static inline float f32_at(const uint8_t *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

static inline int16_t i16_at(const uint8_t *p)
{
    int16_t v;
    memcpy(&v, p, 2);
    return v;
}

static inline int8x16_t ld_s8(const uint8_t *p) { return vreinterpretq_s8_u8(vld1q_u8(p)); }

/* scale and min j of a q4_K/q5_K block (6-bit fields packed in 12 bytes) */
static inline void k4_sm(const uint8_t *q, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* sum_j min_j * (bsum 2j + bsum 2j+1) of a Q8_K block: the mins' integer */
static inline int k4_msum(const int mn[8], const uint8_t *a)
{
    int s = 0;
    for (int j = 0; j < 8; j++)
        s += mn[j] * (i16_at(a + 260 + 4 * j) + i16_at(a + 262 + 4 * j));
    return s;
}

/* ------------------------------------------------------------ prepare */

static size_t prep_bytes_q8_0(int64_t n_tok, int64_t n)
{
    if (n_tok < G4_GEMM_MIN_TOK)
        return 0; /* 1-3 tokens read the encoded rows as they are */
    return (size_t)((n_tok + GT - 1) / GT) * (size_t)(n / 32) * REC0;
}

static size_t prep_bytes_q8_K(int64_t n_tok, int64_t n)
{
    if (n_tok < G4_GEMM_MIN_TOK)
        return 0;
    return (size_t)((n_tok + GT - 1) / GT) * (size_t)(n / QK) * RECK;
}

/* per (group of 4 tokens, block), groups outer: activation dword k of token
 * j at 16k + 4j, then the 4 scales */
static void prep_q8_0(const uint8_t *act, uint64_t ab, int64_t n_tok, int64_t n, void *dstv)
{
    if (n_tok < G4_GEMM_MIN_TOK)
        return;
    uint8_t *dst = dstv;
    const int64_t nb = n / 32, ng = (n_tok + GT - 1) / GT;
    for (int64_t g = 0; g < ng; g++) {
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *rec = dst + ((size_t)g * (size_t)nb + (size_t)b) * REC0;
            float da[GT];
            for (int j = 0; j < GT; j++) {
                const int64_t t = g * GT + j;
                if (t >= n_tok) {
                    for (int k = 0; k < 8; k++) memset(rec + 16 * k + 4 * j, 0, 4);
                    da[j] = 0.0f;
                    continue;
                }
                const uint8_t *a = act + (uint64_t)t * ab + (uint64_t)b * SZ_Q8_0;
                for (int k = 0; k < 8; k++) memcpy(rec + 16 * k + 4 * j, a + 2 + 4 * k, 4);
                da[j] = fh(a);
            }
            memcpy(rec + 128, da, sizeof da);
        }
    }
}

/* per (group, block): activation dword k (k < 64) of token j at 16k + 4j,
 * then bsum pair p (bsum 2p + bsum 2p+1, the activation sum of 32-element
 * sub-block p) of token j as int32 at 1024 + 16p + 4j, then the 4 scales */
static void prep_q8_K(const uint8_t *act, uint64_t ab, int64_t n_tok, int64_t n, void *dstv)
{
    if (n_tok < G4_GEMM_MIN_TOK)
        return;
    uint8_t *dst = dstv;
    const int64_t nb = n / QK, ng = (n_tok + GT - 1) / GT;
    for (int64_t g = 0; g < ng; g++) {
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *rec = dst + ((size_t)g * (size_t)nb + (size_t)b) * RECK;
            int32_t bsp[8][GT];
            float da[GT];
            for (int j = 0; j < GT; j++) {
                const int64_t t = g * GT + j;
                if (t >= n_tok) {
                    for (int k = 0; k < 64; k++) memset(rec + 16 * k + 4 * j, 0, 4);
                    for (int p = 0; p < 8; p++) bsp[p][j] = 0;
                    da[j] = 0.0f;
                    continue;
                }
                const uint8_t *a = act + (uint64_t)t * ab + (uint64_t)b * SZ_Q8_K;
                for (int k = 0; k < 64; k++) memcpy(rec + 16 * k + 4 * j, a + 4 + 4 * k, 4);
                for (int p = 0; p < 8; p++) bsp[p][j] = i16_at(a + 260 + 4 * p) + i16_at(a + 262 + 4 * p);
                da[j] = f32_at(a);
            }
            memcpy(rec + 1024, bsp, sizeof bsp);
            memcpy(rec + 1152, da, sizeof da);
        }
    }
}

/* ------------------------------------------------- unpacked weight tiles */

/* q4_0 / q8_0: GR rows x KC blocks, one signed byte per element */
typedef struct {
    _Alignas(16) int8_t q[GR][KC][32];
    float dw[GR][KC];
} tile0;

/* K-quants: GR rows x KKC blocks of 256 elements (q4_K/q5_K: 0..15/31;
 * q6_K: q - 32), their sub-block scales (8 or 16), mins and super-scales */
typedef struct {
    _Alignas(16) int8_t q[GR][KKC][QK];
    int32_t sc[GR][KKC][16];
    int32_t mn[GR][KKC][8];
    float d[GR][KKC], dmin[GR][KKC];
} tileK;

static void unpack0(int q8, tile0 *t, const uint8_t *w, uint64_t rb, int nr, int64_t b0, int kn)
{
    const int bs = q8 ? SZ_Q8_0 : SZ_Q4_0;
    for (int i = 0; i < nr; i++) {
        const uint8_t *p = w + (uint64_t)i * rb + (uint64_t)b0 * (uint64_t)bs;
        for (int b = 0; b < kn; b++, p += bs) {
            t->dw[i][b] = fh(p);
            if (q8) {
                vst1q_s8(t->q[i][b], ld_s8(p + 2));
                vst1q_s8(t->q[i][b] + 16, ld_s8(p + 18));
            } else {
                /* element l: low nibble of qs[l], element 16 + l: high */
                const uint8x16_t v = vld1q_u8(p + 2);
                const int8x16_t s8 = vdupq_n_s8(8);
                vst1q_s8(t->q[i][b], vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F))), s8));
                vst1q_s8(t->q[i][b] + 16, vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), s8));
            }
        }
    }
}

/* kt: 4 (q4_K), 5 (q5_K), 6 (q6_K); elements in the order of the Q8_K
 * activations (the block layouts of quant.c) */
static void unpackK(int kt, tileK *t, const uint8_t *w, uint64_t rb, int nr, int64_t b0, int kn)
{
    const int bs = kt == 6 ? SZ_Q6_K : kt == 5 ? SZ_Q5_K : SZ_Q4_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m30 = vdupq_n_u8(0x30), one = vdupq_n_u8(1), two = vdupq_n_u8(2);
    for (int i = 0; i < nr; i++) {
        const uint8_t *p = w + (uint64_t)i * rb + (uint64_t)b0 * (uint64_t)bs;
        for (int b = 0; b < kn; b++, p += bs) {
            int8_t *o = t->q[i][b];
            if (kt == 6) {
                const int8x16_t s32 = vdupq_n_s8(32);
                for (int h = 0; h < 2; h++) {
                    const uint8_t *ql = p + 64 * h, *qh = p + 128 + 32 * h;
                    for (int k = 0; k < 2; k++) {
                        /* elements 128h + 32j + 16k .. +15, j = 0..3 */
                        const uint8x16_t la = vld1q_u8(ql + 16 * k), lb = vld1q_u8(ql + 32 + 16 * k);
                        const uint8x16_t hb = vld1q_u8(qh + 16 * k);
                        uint8x16_t g[4];
                        g[0] = vorrq_u8(vandq_u8(la, m4), vandq_u8(vshlq_n_u8(hb, 4), m30));
                        g[1] = vorrq_u8(vandq_u8(lb, m4), vandq_u8(vshlq_n_u8(hb, 2), m30));
                        g[2] = vorrq_u8(vshrq_n_u8(la, 4), vandq_u8(hb, m30));
                        g[3] = vorrq_u8(vshrq_n_u8(lb, 4), vandq_u8(vshrq_n_u8(hb, 2), m30));
                        for (int j = 0; j < 4; j++)
                            vst1q_s8(o + 128 * h + 32 * j + 16 * k, vsubq_s8(vreinterpretq_s8_u8(g[j]), s32));
                    }
                }
                for (int j = 0; j < 16; j++) t->sc[i][b][j] = (int8_t)p[192 + j];
                t->d[i][b] = fh(p + 208);
            } else {
                const uint8_t *qs = p + (kt == 5 ? 48 : 16);
                uint8x16_t h0 = vdupq_n_u8(0), h1 = vdupq_n_u8(0);
                if (kt == 5) {
                    h0 = vld1q_u8(p + 16);
                    h1 = vld1q_u8(p + 32);
                }
                for (int c = 0; c < 4; c++) {
                    /* elements 64c + l: low nibbles of qs[32c + l], 64c +
                     * 32 + l: high nibbles; q5_K's fifth bits: bit 2c / 2c+1
                     * of qh[l] (h0/h1 shift down by two per chunk) */
                    const uint8x16_t q0 = vld1q_u8(qs + 32 * c), q1 = vld1q_u8(qs + 32 * c + 16);
                    uint8x16_t l0 = vandq_u8(q0, m4), l1 = vandq_u8(q1, m4);
                    uint8x16_t u0 = vshrq_n_u8(q0, 4), u1 = vshrq_n_u8(q1, 4);
                    if (kt == 5) {
                        l0 = vorrq_u8(l0, vshlq_n_u8(vandq_u8(h0, one), 4));
                        l1 = vorrq_u8(l1, vshlq_n_u8(vandq_u8(h1, one), 4));
                        u0 = vorrq_u8(u0, vshlq_n_u8(vandq_u8(h0, two), 3));
                        u1 = vorrq_u8(u1, vshlq_n_u8(vandq_u8(h1, two), 3));
                        h0 = vshrq_n_u8(h0, 2);
                        h1 = vshrq_n_u8(h1, 2);
                    }
                    vst1q_u8((uint8_t *)o + 64 * c, l0);
                    vst1q_u8((uint8_t *)o + 64 * c + 16, l1);
                    vst1q_u8((uint8_t *)o + 64 * c + 32, u0);
                    vst1q_u8((uint8_t *)o + 64 * c + 48, u1);
                }
                int sc[8], mn[8];
                for (int j = 0; j < 8; j++) k4_sm(p + 4, j, &sc[j], &mn[j]);
                for (int j = 0; j < 8; j++) {
                    t->sc[i][b][j] = sc[j];
                    t->mn[i][b][j] = mn[j];
                }
                t->d[i][b] = fh(p);
                t->dmin[i][b] = fh(p + 2);
            }
        }
    }
}

/* the token group's results of rows [0, nr) into y (lanes past n_tok are
 * padding and stay unwritten) */
static void store_group(const float32x4_t *acc, int nr, int64_t tok0, int64_t n_tok, float *y, int64_t ldy)
{
    for (int i = 0; i < nr; i++) {
        float o[GT];
        vst1q_f32(o, acc[i]);
        for (int j = 0; j < GT && tok0 + j < n_tok; j++)
            y[(tok0 + j) * ldy + i] = o[j];
    }
}

/* ---------------------------------------------- the two levels' kernels */

#define ARM_DOTPROD 0
#define ARM_SFX neon
#define ARM_ATTR
#include "kernels/gemm_arm_body.h"
#undef ARM_DOTPROD
#undef ARM_SFX
#undef ARM_ATTR

#ifdef G4_ARM_DP
#define ARM_DOTPROD 1
#define ARM_SFX dp
#define ARM_ATTR T_DOT
#include "kernels/gemm_arm_body.h"
#undef ARM_DOTPROD
#undef ARM_SFX
#undef ARM_ATTR
#endif

/* ------------------------------------------------------------ table */

#define SET_LEVEL(t, S)                                \
    do {                                               \
        (t)->vec_dot[G4_TYPE_Q4_0] = vd_q4_0_##S;      \
        (t)->vec_dot[G4_TYPE_Q8_0] = vd_q8_0_##S;      \
        (t)->vec_dot[G4_TYPE_Q4_K] = vd_q4_K_##S;      \
        (t)->vec_dot[G4_TYPE_Q5_K] = vd_q5_K_##S;      \
        (t)->vec_dot[G4_TYPE_Q6_K] = vd_q6_K_##S;      \
        (t)->gemm[G4_TYPE_Q4_0] = &GEMM_Q4_0_##S;      \
        (t)->gemm[G4_TYPE_Q8_0] = &GEMM_Q8_0_##S;      \
        (t)->gemm[G4_TYPE_Q4_K] = &GEMM_Q4_K_##S;      \
        (t)->gemm[G4_TYPE_Q5_K] = &GEMM_Q5_K_##S;      \
        (t)->gemm[G4_TYPE_Q6_K] = &GEMM_Q6_K_##S;      \
        (t)->vec_dot_x4[G4_TYPE_Q4_0] = NULL;          \
        (t)->vec_dot_x4[G4_TYPE_Q8_0] = NULL;          \
        (t)->vec_dot_x4[G4_TYPE_Q4_K] = NULL;          \
        (t)->vec_dot_x4[G4_TYPE_Q5_K] = NULL;          \
        (t)->vec_dot_x4[G4_TYPE_Q6_K] = NULL;          \
    } while (0)

void g4_gemm_arm_fill(int level, g4_kernel_table *t)
{
    if (level == G4_CPU_NEON) {
        SET_LEVEL(t, neon);
    } else if (level == G4_CPU_DOTPROD) {
#ifdef G4_ARM_DP
        SET_LEVEL(t, dp);
#endif
    }
}

#else
typedef int g4_gemm_arm_empty; /* not little-endian AArch64: nothing here */
#endif
