/*
 * quant.c - ggml-compatible tensor element types: size table, half-precision
 * conversions, scalar dequantizers, scalar dot products, the reference
 * quantizers, and (at the end) llama.cpp's matmul arithmetic: activation
 * encoding in the weight's vec_dot_type and encoded-row dot products.
 *
 * Design
 * ------
 * Everything here is the *reference* path: plain C, one element at a time,
 * written for bit-exactness rather than speed.  SIMD kernels elsewhere are
 * checked against these functions, and these are checked (tests/test_quant.c)
 * against llama.cpp's own libggml-base:
 *
 *   - the block layouts are ggml's (ggml-common.h), little-endian;
 *   - the dequantizers perform the same float operations in the same order as
 *     ggml's dequantize_row_*, so their output is bit-identical;
 *   - the quantizers reproduce quantize_row_*_ref, which is what
 *     ggml_quantize_chunk() runs when no importance matrix is given (that is
 *     what `llama-quantize` does without --imatrix).  Their search heuristics
 *     (make_qx_quants / make_qkx2_quants / make_q3_quants in ggml) depend on
 *     exact float rounding, so every expression keeps ggml's evaluation order
 *     and operand types (int*float promotions included) and uses the same
 *     "add 1.5*2^23" nearest-integer trick.
 *
 * Bit-exactness assumes IEEE single precision evaluated without excess
 * precision (FLT_EVAL_METHOD == 0: any x86-64/ARM64 build) and without fused
 * multiply-add contraction (a fused a*b+c changes K-quant search decisions;
 * seen with -march=native).  The pragmas below turn contraction off for GCC
 * and clang; do not build this file with -ffast-math or clang's
 * -ffp-contract=fast, which override them.
 *
 * Float -> small-integer casts that ggml performs directly (e.g.
 * `(int8_t)(x*id + 8.5f)`) are undefined in C when the value is out of range,
 * which happens for inputs like denormals where 1/d overflows to inf.  They go
 * through cvt_trunc_i32(), which defines those cases as x86's cvttss2si does
 * (INT32_MIN, whose low byte is 0), so we match llama.cpp's x86 builds there
 * too instead of relying on UB.
 */
#include "kernels/quant.h"
#include "kernels/dispatch.h"

#include <float.h>
#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
/* GCC ignores the STDC pragma; in GNU mode with FMA targets it would fuse
 * a*b+c and change K-quant search decisions (observed with -march=native). */
#pragma GCC optimize("fp-contract=off")
#endif

#define QK_K 256
/* Below this a group is treated as all-zero (ggml's GROUP_MAX_EPS). */
#define GROUP_MAX_EPS 1e-15f

/* ---------------------------------------------------------------- blocks */

/* Field order and sizes are ggml's; the _Static_asserts pin the byte sizes so
 * that a struct can be laid over file data directly. */
typedef struct { uint16_t d; uint8_t qs[16]; } blk_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } blk_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_1;
typedef struct { uint16_t d; int8_t qs[32]; } blk_q8_0;
typedef struct { uint16_t d, s; int8_t qs[32]; } blk_q8_1;  /* s = f16(d * sum(qs)) */
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } blk_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } blk_q3_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } blk_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } blk_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } blk_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } blk_q8_K;

_Static_assert(sizeof(blk_q4_0) == 18, "q4_0 size");
_Static_assert(sizeof(blk_q4_1) == 20, "q4_1 size");
_Static_assert(sizeof(blk_q5_0) == 22, "q5_0 size");
_Static_assert(sizeof(blk_q5_1) == 24, "q5_1 size");
_Static_assert(sizeof(blk_q8_0) == 34, "q8_0 size");
_Static_assert(sizeof(blk_q8_1) == 36, "q8_1 size");
_Static_assert(sizeof(blk_q2_K) == 84, "q2_K size");
_Static_assert(sizeof(blk_q3_K) == 110, "q3_K size");
_Static_assert(sizeof(blk_q4_K) == 144, "q4_K size");
_Static_assert(sizeof(blk_q5_K) == 176, "q5_K size");
_Static_assert(sizeof(blk_q6_K) == 210, "q6_K size");
_Static_assert(sizeof(blk_q8_K) == 292, "q8_K size");

/* ------------------------------------------------------------ type table */

/* Indexed by ggml type id.  Ids 4, 5, 31-33 and 36-38 were removed from ggml
 * and have no entry (NULL).  Sizes were checked against libggml-base's
 * ggml_blck_size()/ggml_type_size() (test_quant does so at run time). */
static const g4_type_traits type_table[] = {
    [0]  = { "f32",     1,   4,   true  },
    [1]  = { "f16",     1,   2,   true  },
    [2]  = { "q4_0",    32,  18,  true  },
    [3]  = { "q4_1",    32,  20,  true  },
    [6]  = { "q5_0",    32,  22,  true  },
    [7]  = { "q5_1",    32,  24,  true  },
    [8]  = { "q8_0",    32,  34,  true  },
    [9]  = { "q8_1",    32,  36,  false },
    [10] = { "q2_K",    256, 84,  true  },
    [11] = { "q3_K",    256, 110, true  },
    [12] = { "q4_K",    256, 144, true  },
    [13] = { "q5_K",    256, 176, true  },
    [14] = { "q6_K",    256, 210, true  },
    [15] = { "q8_K",    256, 292, true  },
    [16] = { "iq2_xxs", 256, 66,  false },
    [17] = { "iq2_xs",  256, 74,  false },
    [18] = { "iq3_xxs", 256, 98,  false },
    [19] = { "iq1_s",   256, 50,  false },
    [20] = { "iq4_nl",  32,  18,  false },
    [21] = { "iq3_s",   256, 110, false },
    [22] = { "iq2_s",   256, 82,  false },
    [23] = { "iq4_xs",  256, 136, false },
    [24] = { "i8",      1,   1,   false },
    [25] = { "i16",     1,   2,   false },
    [26] = { "i32",     1,   4,   false },
    [27] = { "i64",     1,   8,   false },
    [28] = { "f64",     1,   8,   false },
    [29] = { "iq1_m",   256, 56,  false },
    [30] = { "bf16",    1,   2,   true  },
    [34] = { "tq1_0",   256, 54,  false },
    [35] = { "tq2_0",   256, 66,  false },
    [39] = { "mxfp4",   32,  17,  false },
    [40] = { "nvfp4",   64,  36,  false },
    [41] = { "q1_0",    128, 18,  false },
    [42] = { "q2_0",    64,  18,  false },
};

const g4_type_traits *g4_type_get(uint32_t type)
{
    if (type >= sizeof type_table / sizeof type_table[0])
        return NULL;
    const g4_type_traits *t = &type_table[type];
    return t->name ? t : NULL; /* gaps are zero-initialised */
}

bool g4_row_size(uint32_t type, uint64_t n, uint64_t *bytes)
{
    const g4_type_traits *t = g4_type_get(type);
    if (!t || n % t->blck != 0)
        return false;
    uint64_t nb = n / t->blck;
    if (nb > UINT64_MAX / t->type_size)
        return false;
    *bytes = nb * t->type_size;
    return true;
}

/* ------------------------------------------------------- half precision */

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float g4_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) {
        /* ggml converts via a float multiply, which quiets signalling NaNs. */
        uint32_t q = m ? 0x400000u : 0;
        return bits_f32(sign | 0x7f800000u | (m << 13) | q);
    }
    if (e == 0) {
        /* subnormal: m * 2^-24, exact in f32 */
        float v = (float)m * 0x1p-24f;
        return bits_f32(sign | f32_bits(v));
    }
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t g4_f32_to_f16(float f)
{
    uint32_t w = f32_bits(f);
    uint16_t sign = (uint16_t)((w >> 16) & 0x8000u);
    uint32_t a = w & 0x7fffffffu;
    if (a > 0x7f800000u)
        return sign | 0x7e00u;          /* ggml emits the canonical quiet NaN */
    if (a >= 0x477ff000u)               /* >= 65520 rounds (ties-to-even) to inf */
        return sign | 0x7c00u;
    if (a < 0x38800000u) {              /* below 2^-14: half subnormal or zero */
        if (a <= 0x33000000u)           /* <= 2^-25: rounds to (even) zero */
            return sign;
        uint32_t e = a >> 23;
        uint32_t mant = (a & 0x7fffffu) | 0x800000u;  /* value = mant*2^(e-150) */
        uint32_t shift = 126u - e;                     /* 14..24 */
        uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u)))
            q++;                        /* may carry into the smallest normal */
        return (uint16_t)(sign | q);
    }
    uint32_t h = (a >> 13) - (112u << 10);  /* rebias exponent 127 -> 15 */
    uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++;                            /* carry may bump the exponent: still right */
    return (uint16_t)(sign | h);
}

float g4_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t g4_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);   /* keep payload, force quiet */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* -------------------------------------------------------------- helpers */

#define FH(x) g4_f16_to_f32(x)
#define HF(x) g4_f32_to_f16(x)

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* Round to nearest (ties to even) by adding 1.5*2^23, exactly as ggml's
 * nearest_int: valid for |f| <= 2^22; outside that the result is garbage, but
 * the *same* garbage ggml computes, which keeps quantized bytes identical. */
static inline int nearest_int(float f)
{
    float v = f + 12582912.f;
    uint32_t i = f32_bits(v);
    return (int)(i & 0x007fffffu) - 0x00400000;
}

/* Truncating float -> int32 with x86 cvttss2si semantics for NaN and
 * out-of-range values (INT32_MIN) instead of C's undefined behaviour. */
static inline int32_t cvt_trunc_i32(float v)
{
    if (!(v >= -2147483648.0f && v < 2147483648.0f))
        return INT32_MIN;
    return (int32_t)v;
}
/* (int8_t)(float) and (uint8_t)(float) as compiled for x86: truncate to int32,
 * keep the low byte. */
static inline int8_t cvt_i8(float v) { return (int8_t)(uint8_t)((uint32_t)cvt_trunc_i32(v) & 0xffu); }
static inline uint8_t cvt_u8(float v) { return (uint8_t)((uint32_t)cvt_trunc_i32(v) & 0xffu); }

static inline void put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 6-bit scale j and min j of a Q4_K/Q5_K block: j < 4 live in the low 6 bits
 * of bytes j / j+4; j >= 4 keep their low nibbles in byte j+4 and their top
 * two bits in the spare high bits of bytes j-4 / j. */
static inline void k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* 6-bit scale j (0..15) of a Q3_K block, still biased by +32: low nibble
 * from byte j (j<8) or high nibble of byte j-8; two high bits from byte
 * 8 + j%4 at bit position 2*(j/4). */
static inline int k3_scale(int j, const uint8_t *s)
{
    int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return lo | (hi << 4);
}

/* --------------------------------------------------------- dequantizers */

static void deq_q4_0(const blk_q4_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = FH(b[i].d);
        for (int j = 0; j < 16; j++) {
            const int x0 = (b[i].qs[j] & 0x0F) - 8;
            const int x1 = (b[i].qs[j] >> 4) - 8;
            y[j] = x0 * d;
            y[j + 16] = x1 * d;
        }
    }
}

static void deq_q4_1(const blk_q4_1 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = FH(b[i].d), m = FH(b[i].m);
        for (int j = 0; j < 16; j++) {
            const int x0 = b[i].qs[j] & 0x0F;
            const int x1 = b[i].qs[j] >> 4;
            y[j] = x0 * d + m;
            y[j + 16] = x1 * d + m;
        }
    }
}

static void deq_q5_0(const blk_q5_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = FH(b[i].d);
        const uint32_t qh = get_u32le(b[i].qh);
        for (int j = 0; j < 16; j++) {
            const int h0 = (int)((qh >> j) << 4) & 0x10;
            const int h1 = (int)(qh >> (j + 12)) & 0x10;
            const int x0 = ((b[i].qs[j] & 0x0F) | h0) - 16;
            const int x1 = ((b[i].qs[j] >> 4) | h1) - 16;
            y[j] = x0 * d;
            y[j + 16] = x1 * d;
        }
    }
}

static void deq_q5_1(const blk_q5_1 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = FH(b[i].d), m = FH(b[i].m);
        const uint32_t qh = get_u32le(b[i].qh);
        for (int j = 0; j < 16; j++) {
            const int h0 = (int)((qh >> j) << 4) & 0x10;
            const int h1 = (int)(qh >> (j + 12)) & 0x10;
            const int x0 = (b[i].qs[j] & 0x0F) | h0;
            const int x1 = (b[i].qs[j] >> 4) | h1;
            y[j] = x0 * d + m;
            y[j + 16] = x1 * d + m;
        }
    }
}

static void deq_q8_0(const blk_q8_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = FH(b[i].d);
        for (int j = 0; j < 32; j++)
            y[j] = b[i].qs[j] * d;
    }
}

static void deq_q8_1(const blk_q8_1 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = FH(b[i].d);
        for (int j = 0; j < 32; j++)
            y[j] = b[i].qs[j] * d;
    }
}

static void deq_q2_K(const blk_q2_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = FH(b[i].d), mn = FH(b[i].dmin);
        const uint8_t *q = b[i].qs;
        int is = 0;
        /* each 32-byte run of qs holds four 32-element groups (2 bits each),
         * each group split into two 16-element sub-blocks with own scales */
        for (int n = 0; n < QK_K; n += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    const uint8_t sc = b[i].scales[is++];
                    const float dl = d * (sc & 0xF), ml = mn * (sc >> 4);
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * (int8_t)((q[l + 16 * half] >> shift) & 3) - ml;
                }
            }
        }
    }
}

static void deq_q3_K(const blk_q3_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d_all = FH(b[i].d);
        const uint8_t *q = b[i].qs, *hm = b[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int n = 0; n < QK_K; n += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
                for (int half = 0; half < 2; half++) {
                    const float dl = d_all * (k3_scale(is++, b[i].scales) - 32);
                    for (int l = 0; l < 16; l++) {
                        const int k = l + 16 * half;
                        *y++ = dl * ((int8_t)((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4));
                    }
                }
            }
        }
    }
}

static void deq_q4_K(const blk_q4_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q = b[i].qs;
        const float d = FH(b[i].d), mn = FH(b[i].dmin);
        for (int is = 0; is < 8; is += 2, q += 32) {
            uint8_t sc, m;
            k4_scale_min(is, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = mn * m;
            k4_scale_min(is + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = mn * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

static void deq_q5_K(const blk_q5_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *ql = b[i].qs, *qh = b[i].qh;
        const float d = FH(b[i].d), mn = FH(b[i].dmin);
        uint8_t u1 = 1, u2 = 2;
        for (int is = 0; is < 8; is += 2, ql += 32) {
            uint8_t sc, m;
            k4_scale_min(is, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = mn * m;
            k4_scale_min(is + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = mn * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
    }
}

static void deq_q6_K(const blk_q6_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = FH(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        /* 128-element halves: ql low/high nibbles of bytes l and l+32 plus
         * 2-bit pairs of qh[l] give elements l, l+32, l+64, l+96 */
        for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int8_t q1 = (int8_t)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int8_t q3 = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                /* (d * scale) * q, in that order, as ggml */
                y[l] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

static void deq_q8_K(const blk_q8_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK_K)
        for (int j = 0; j < QK_K; j++)
            y[j] = b[i].d * b[i].qs[j];
}

void g4_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n)
{
    const g4_type_traits *t = g4_type_get(type);
    if (n <= 0 || !t)
        return;
    const int64_t nb = n / t->blck;
    switch (type) {
    case G4_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case G4_TYPE_F16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++) dst[i] = g4_f16_to_f32(h[i]);
    } break;
    case G4_TYPE_BF16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++) dst[i] = g4_bf16_to_f32(h[i]);
    } break;
    case G4_TYPE_Q4_0: deq_q4_0(src, dst, nb); break;
    case G4_TYPE_Q4_1: deq_q4_1(src, dst, nb); break;
    case G4_TYPE_Q5_0: deq_q5_0(src, dst, nb); break;
    case G4_TYPE_Q5_1: deq_q5_1(src, dst, nb); break;
    case G4_TYPE_Q8_0: deq_q8_0(src, dst, nb); break;
    case G4_TYPE_Q8_1: deq_q8_1(src, dst, nb); break;  /* activations only */
    case G4_TYPE_Q2_K: deq_q2_K(src, dst, nb); break;
    case G4_TYPE_Q3_K: deq_q3_K(src, dst, nb); break;
    case G4_TYPE_Q4_K: deq_q4_K(src, dst, nb); break;
    case G4_TYPE_Q5_K: deq_q5_K(src, dst, nb); break;
    case G4_TYPE_Q6_K: deq_q6_K(src, dst, nb); break;
    case G4_TYPE_Q8_K: deq_q8_K(src, dst, nb); break;
    default:
        /* unsupported: make misuse loud rather than silently zero */
        for (int64_t i = 0; i < n; i++) dst[i] = NAN;
        break;
    }
}

/* ------------------------------------------------------------------- dot */

float g4_dot_row(uint32_t type, const void *row, const float *x, int64_t n)
{
    const g4_type_traits *t = g4_type_get(type);
    if (!t || !t->supported)
        return NAN;
    if (n <= 0)
        return 0.0f;
    /* Simple and obviously right: dequantize one block (or a 256-element
     * chunk for the unblocked float types) into a buffer, dot it in f32, add
     * the partial into the running sum.  SIMD kernels replace this. */
    float buf[QK_K];
    const uint32_t bl = t->blck == 1 ? QK_K : t->blck;
    const uint8_t *p = row;
    float sum = 0.0f;
    for (int64_t i0 = 0; i0 < n; i0 += bl) {
        const int64_t len = n - i0 < (int64_t)bl ? n - i0 : (int64_t)bl;
        g4_dequantize_row(type, p, buf, len);
        p += (size_t)(len / t->blck) * t->type_size;
        float part = 0.0f;
        for (int64_t j = 0; j < len; j++)
            part += buf[j] * x[i0 + j];
        sum += part;
    }
    return sum;
}

/* ----------------------------------------------------- legacy quantizers */

/* Symmetric 4/5-bit: the scale is chosen so that the element of largest
 * magnitude maps exactly to -8 (-16), keeping its sign; that extra level on
 * the negative side is why `max` (signed) rather than `amax` sets d. */
static void q_q4_0(const float *x, blk_q4_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        const float d = max / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = HF(d);
        for (int j = 0; j < 16; j++) {
            const float x0 = x[j] * id, x1 = x[j + 16] * id;
            const uint8_t q0 = (uint8_t)imin(15, cvt_i8(x0 + 8.5f));
            const uint8_t q1 = (uint8_t)imin(15, cvt_i8(x1 + 8.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void q_q4_1(const float *x, blk_q4_1 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = HF(d);
        y[i].m = HF(min);
        for (int j = 0; j < 16; j++) {
            const float x0 = (x[j] - min) * id, x1 = (x[j + 16] - min) * id;
            const uint8_t q0 = (uint8_t)imin(15, cvt_i8(x0 + 0.5f));
            const uint8_t q1 = (uint8_t)imin(15, cvt_i8(x1 + 0.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void q_q5_0(const float *x, blk_q5_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        const float d = max / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = HF(d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const float x0 = x[j] * id, x1 = x[j + 16] * id;
            const uint8_t q0 = (uint8_t)imin(31, cvt_i8(x0 + 16.5f));
            const uint8_t q1 = (uint8_t)imin(31, cvt_i8(x1 + 16.5f));
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= ((q0 & 0x10u) >> 4) << j;          /* 5th bits: 0..15 */
            qh |= ((q1 & 0x10u) >> 4) << (j + 16);   /* and 16..31 */
        }
        put_u32le(y[i].qh, qh);
    }
}

static void q_q5_1(const float *x, blk_q5_1 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = HF(d);
        y[i].m = HF(min);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const float x0 = (x[j] - min) * id, x1 = (x[j + 16] - min) * id;
            /* ggml does not clamp here (the max element lands on 31.5 -> 31) */
            const uint8_t q0 = cvt_u8(x0 + 0.5f);
            const uint8_t q1 = cvt_u8(x1 + 0.5f);
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= ((q0 & 0x10u) >> 4) << j;
            qh |= ((q1 & 0x10u) >> 4) << (j + 16);
        }
        put_u32le(y[i].qh, qh);
    }
}

static void q_q8_0(const float *x, blk_q8_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) {
            const float a = fabsf(x[j]);
            amax = amax > a ? amax : a;
        }
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = HF(d);
        for (int j = 0; j < 32; j++)
            y[i].qs[j] = cvt_i8(roundf(x[j] * id)); /* roundf: ties away from 0 */
    }
}

/* ------------------------------------------------ k-quant search helpers */

/* Signed fit used by Q6_K (ggml's make_qx_quants with rmse_type 1 and no
 * importance weights, i.e. weights x^2): start from the scale mapping the
 * largest-magnitude element to -nmax, then try 18 nearby scales and keep the
 * one maximising (sum w x l)^2 / sum w l^2.  L gets l + nmax. */
static float fit_signed_qx(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                const int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's signed fit (ggml's make_q3_quants with do_rmse): initial rounding,
 * then up to 5 passes of greedy per-element improvement of the weighted
 * least-squares objective.  L gets l + nmax. */
static float fit_signed_q3(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int nl = nearest_int(x[i] * sl2 / slx);
                nl = imax(-nmax, imin(nmax - 1, nl));
                if (nl != L[i]) {
                    slx += w * x[i] * nl;
                    sl2 += w * nl * nl;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)nl;
                        sumlx = slx;
                        suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (!changed)
            break;
    }
    for (int i = 0; i < n; i++)
        L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Asymmetric fit x ~ scale*l - the_min with l in [0, nmax] (ggml's
 * make_qkx2_quants): start from the min/max range, then scan nstep+1 scales
 * (nmax + rmin + rdelta*is over the range), solving the weighted
 * least-squares scale/min for each rounding and keeping the lowest error.
 * Note `min` is updated inside the scan and the later candidates use it,
 * exactly as in ggml. */
static float fit_asym_qkx2(int n, int nmax, const float *x, const float *weights,
                           uint8_t *L, float *the_min, uint8_t *Laux,
                           float rmin, float rdelta, int nstep, bool use_mad)
{
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = imax(0, imin(nmax, l));
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Pack four 2-bit planes: byte l of each 32-byte run holds elements
 * l, l+32, l+64, l+96 of its 128-element half (Q2_K and Q3_K low bits). */
static void pack_2bit(const uint8_t *L, uint8_t *qs)
{
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) |
                                      (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

/* --------------------------------------------------------- k-quantizers */

static void q_q2_K(const float *x, blk_q2_K *y, int64_t nb)
{
    uint8_t L[QK_K], Laux[16];
    float weights[16], mins[QK_K / 16], scales[QK_K / 16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = fit_asym_qkx2(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                      -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; j++)
                y[i].scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
            y[i].d = HF(max_scale / q4scale);
        } else {
            memset(y[i].scales, 0, sizeof y[i].scales);
            y[i].d = HF(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; j++) {
                /* unsigned shift: l can be garbage-negative for non-finite
                 * input; only the low byte matters, as in ggml */
                const int l = nearest_int(iscale * mins[j]);
                y[i].scales[j] = (uint8_t)(y[i].scales[j] | ((uint32_t)l << 4));
            }
            y[i].dmin = HF(max_min / q4scale);
        } else {
            y[i].dmin = HF(0.f);
        }
        /* requantize against the rounded 4-bit scales/mins */
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = FH(y[i].d) * (y[i].scales[j] & 0xF);
            if (d == 0.0f)
                continue;
            const float dm = FH(y[i].dmin) * (y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ii++) {
                const int l = nearest_int((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = (uint8_t)imax(0, imin(3, l));
            }
        }
        pack_2bit(L, y[i].qs);
    }
}

static void q_q3_K(const float *x, blk_q3_K *y, int64_t nb)
{
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = fit_signed_q3(16, 4, x + 16 * j, L + 16 * j);
            const float s = fabsf(scales[j]);
            if (s > amax) { amax = s; max_scale = scales[j]; }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale != 0.0f) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; j++) {
                int8_t l = (int8_t)nearest_int(iscale * scales[j]);
                l = (int8_t)(imax(-32, imin(31, l)) + 32);      /* 6-bit, biased */
                if (j < 8)
                    y[i].scales[j] = (uint8_t)(l & 0xF);
                else
                    y[i].scales[j - 8] = (uint8_t)(y[i].scales[j - 8] | ((l & 0xF) << 4));
                l = (int8_t)(l >> 4);
                y[i].scales[j % 4 + 8] = (uint8_t)(y[i].scales[j % 4 + 8] | (l << (2 * (j / 4))));
            }
            y[i].d = HF(1 / iscale);
        } else {
            y[i].d = HF(0.f);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const int sc = k3_scale(j, y[i].scales) - 32;
            const float d = FH(y[i].d) * sc;
            if (d == 0.0f)
                continue;
            for (int ii = 0; ii < 16; ii++) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(imax(-4, imin(3, l)) + 4);
            }
        }
        /* bit 2 of element j goes to hmask[j % 32], bit j / 32 */
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        uint8_t low[QK_K];
        for (int j = 0; j < QK_K; j++) {
            int l = L[j];
            if (l > 3) {
                y[i].hmask[j % 32] = (uint8_t)(y[i].hmask[j % 32] | (1u << (j / 32)));
                l -= 4;
            }
            low[j] = (uint8_t)l;
        }
        pack_2bit(low, y[i].qs);
    }
}

/* Pack eight (scale, min) 6-bit pairs into the 12-byte K4 layout (inverse of
 * k4_scale_min). */
static void k4_pack_scales(uint8_t *s, int j, uint8_t ls, uint8_t lm)
{
    if (j < 4) {
        s[j] = ls;
        s[j + 4] = lm;
    } else {
        s[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        s[j - 4] = (uint8_t)(s[j - 4] | ((ls >> 4) << 6));
        s[j] = (uint8_t)(s[j] | ((lm >> 4) << 6));
    }
}

/* Shared first half of Q4_K/Q5_K: per-32 asymmetric fits, 6-bit scales and
 * mins relative to fp16 super-scales, then requantization of every element
 * against the rounded scales.  Fills L (0..nmax), scales[12], d, dmin. */
static void k45_fit(const float *x, int nmax, float rmin, float rdelta, int nstep,
                    uint8_t *L, uint8_t *sc12, uint16_t *dh, uint16_t *dminh)
{
    uint8_t Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        /* weight = rms of the sub-block + |x|: favours large elements */
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = fit_asym_qkx2(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                  rmin, rdelta, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        k4_pack_scales(sc12, j, ls, lm);
    }
    *dh = HF(max_scale / 63.f);
    *dminh = HF(max_min / 63.f);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        k4_scale_min(j, sc12, &sc, &m);
        const float d = FH(*dh) * sc;
        if (d == 0.0f)
            continue;
        const float dm = FH(*dminh) * m;
        for (int ii = 0; ii < 32; ii++) {
            const int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, l));
        }
    }
}

static void q_q4_K(const float *x, blk_q4_K *y, int64_t nb)
{
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        memset(y[i].scales, 0, sizeof y[i].scales);
        k45_fit(x, 15, -1.f, 0.1f, 20, L, y[i].scales, &y[i].d, &y[i].dmin);
        /* byte l of each 32-byte run: element l (low) and l+32 (high) of a 64 */
        uint8_t *q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

static void q_q5_K(const float *x, blk_q5_K *y, int64_t nb)
{
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        memset(y[i].scales, 0, sizeof y[i].scales);
        k45_fit(x, 31, -0.5f, 0.1f, 15, L, y[i].scales, &y[i].d, &y[i].dmin);
        /* low nibbles as Q4_K; 5th bits in qh[l], bit pair (2k, 2k+1) for the
         * k-th 64-element group */
        uint8_t *ql = y[i].qs, *qh = y[i].qh;
        memset(qh, 0, 32);
        uint8_t m1 = 1, m2 = 2;
        for (int n = 0; n < QK_K; n += 64, ql += 32) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
        }
    }
}

static void q_q6_K(const float *x, blk_q6_K *y, int64_t nb)
{
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ib++) {
            scales[ib] = fit_signed_qx(16, 32, x + 16 * ib, L + 16 * ib);
            const float a = fabsf(scales[ib]);
            if (a > max_abs_scale) { max_abs_scale = a; max_scale = scales[ib]; }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            y[i].d = HF(0.f);
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = HF(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ib++)
            y[i].scales[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = FH(y[i].d) * y[i].scales[j];
            if (d == 0.0f)
                continue;
            for (int ii = 0; ii < 16; ii++) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(imax(-32, imin(31, l)) + 32);
            }
        }
        /* inverse of deq_q6_K's layout */
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const int a = L[j + l], b = L[j + l + 32], c = L[j + l + 64], e = L[j + l + 96];
                ql[l] = (uint8_t)((a & 0xF) | ((c & 0xF) << 4));
                ql[l + 32] = (uint8_t)((b & 0xF) | ((e & 0xF) << 4));
                qh[l] = (uint8_t)((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6));
            }
        }
    }
}

static void q_q8_K(const float *x, blk_q8_K *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (amax == 0.0f) {
            /* ggml leaves bsums unwritten here; we zero them (deterministic) */
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        /* -127 (not -128) keeps the range symmetric, as ggml */
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++)
            y[i].qs[j] = (int8_t)imin(127, nearest_int(iscale * x[j]));
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++) sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

void g4_quantize_row(uint32_t type, const float *src, void *dst, int64_t n)
{
    const g4_type_traits *t = g4_type_get(type);
    if (n <= 0 || !t)
        return;
    const int64_t nb = n / t->blck;
    switch (type) {
    case G4_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case G4_TYPE_F16: {
        uint16_t *h = dst;
        for (int64_t i = 0; i < n; i++) h[i] = g4_f32_to_f16(src[i]);
    } break;
    case G4_TYPE_BF16: {
        uint16_t *h = dst;
        for (int64_t i = 0; i < n; i++) h[i] = g4_f32_to_bf16(src[i]);
    } break;
    case G4_TYPE_Q4_0: q_q4_0(src, dst, nb); break;
    case G4_TYPE_Q4_1: q_q4_1(src, dst, nb); break;
    case G4_TYPE_Q5_0: q_q5_0(src, dst, nb); break;
    case G4_TYPE_Q5_1: q_q5_1(src, dst, nb); break;
    case G4_TYPE_Q8_0: q_q8_0(src, dst, nb); break;
    case G4_TYPE_Q2_K: q_q2_K(src, dst, nb); break;
    case G4_TYPE_Q3_K: q_q3_K(src, dst, nb); break;
    case G4_TYPE_Q4_K: q_q4_K(src, dst, nb); break;
    case G4_TYPE_Q5_K: q_q5_K(src, dst, nb); break;
    case G4_TYPE_Q6_K: q_q6_K(src, dst, nb); break;
    case G4_TYPE_Q8_K: q_q8_K(src, dst, nb); break;
    default:
        /* unsupported: deterministic zeros rather than stale memory */
        memset(dst, 0, (size_t)nb * t->type_size);
        break;
    }
}

/* ======================================================================
 * Activation formats and encoded dot products (see quant.h)
 *
 * llama.cpp's CPU matmul encodes each activation row in the weight type's
 * vec_dot_type and dots the two encoded rows.  Everything below reproduces
 * the float arithmetic of that path: the integer parts are exact (any
 * evaluation order gives the same int), the float parts follow ggml's scalar
 * kernels operation by operation, and FP contraction is off for this file.
 * ====================================================================== */

uint32_t g4_vec_dot_type(uint32_t type)
{
    switch (type) {
    case G4_TYPE_F32:  return G4_TYPE_F32;
    case G4_TYPE_F16:  return G4_TYPE_F16;
    case G4_TYPE_BF16: return G4_TYPE_BF16;
    case G4_TYPE_Q4_0: case G4_TYPE_Q5_0: case G4_TYPE_Q8_0:
        return G4_TYPE_Q8_0;
    case G4_TYPE_Q4_1: case G4_TYPE_Q5_1:
        return G4_TYPE_Q8_1;
    case G4_TYPE_Q2_K: case G4_TYPE_Q3_K: case G4_TYPE_Q4_K: case G4_TYPE_Q5_K: case G4_TYPE_Q6_K:
        return G4_TYPE_Q8_K;
    default:
        return G4_TYPE_NONE;
    }
}

bool g4_act_row_size(uint32_t type, uint64_t n, uint64_t *bytes)
{
    const uint32_t vdt = g4_vec_dot_type(type);
    return vdt != G4_TYPE_NONE && g4_row_size(vdt, n, bytes);
}

/* ------------------------------------------------ activation quantizers */

/* x86 cvtps2dq under the default rounding mode: nearest integer, ties to
 * even; NaN and values outside int32 give the "integer indefinite"
 * INT32_MIN.  (a + 2^23) - 2^23 rounds 0 <= a < 2^23 to an integer with
 * ties-to-even in IEEE single precision; at or above 2^23 a float already is
 * an integer. */
static inline int32_t cvt_rne_i32(float v)
{
    const float a = fabsf(v);
    if (!(a < 2147483648.0f))
        return INT32_MIN;
    float r = v;
    if (a < 8388608.0f) {
        const float t = (a + 8388608.0f) - 8388608.0f;
        r = v < 0.0f ? -t : t;
    }
    return (int32_t)r;
}

/* the two signed saturating packs (int32 -> int16 -> int8) */
static inline int8_t sat_i8(int32_t v)
{
    return (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
}

/* AVX/AVX2 quantize_row_q8_0 / _q8_1: d = amax/127, multiplier 127/amax.
 * Q8_1's s sums the int32 values before saturation, wrapping like
 * _mm_add_epi32 (only matters for non-finite input). */
static void act_q8_01(const float *x, void *dst, int64_t nb, bool with_sum)
{
    uint8_t *out = dst;
    const size_t bsz = with_sum ? sizeof(blk_q8_1) : sizeof(blk_q8_0);
    for (int64_t i = 0; i < nb; i++, x += 32, out += bsz) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) {
            const float a = fabsf(x[j]);
            amax = amax > a ? amax : a;
        }
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        int8_t *qs = (int8_t *)(out + (with_sum ? 4 : 2));
        uint32_t sum = 0;
        for (int j = 0; j < 32; j++) {
            const int32_t v = cvt_rne_i32(x[j] * id);
            sum += (uint32_t)v;
            qs[j] = sat_i8(v);
        }
        const uint16_t dh = HF(d);
        memcpy(out, &dh, 2);
        if (with_sum) {
            const uint16_t sh = HF(d * (float)(int32_t)sum);
            memcpy(out + 2, &sh, 2);
        }
    }
}

void g4_quantize_act_scalar(uint32_t vdt, const float *x, void *dst, int64_t n)
{
    if (n <= 0)
        return;
    switch (vdt) {
    case G4_TYPE_Q8_0: act_q8_01(x, dst, n / 32, false); break;
    case G4_TYPE_Q8_1: act_q8_01(x, dst, n / 32, true); break;
    case G4_TYPE_Q8_K:  /* x86 runs quantize_row_q8_K_ref */
    case G4_TYPE_F32:
    case G4_TYPE_F16:
    case G4_TYPE_BF16:
        g4_quantize_row(vdt, x, dst, n);
        break;
    default:
        break;
    }
}

/* ------------------------------------------------- legacy-quant dots */

/* 32-element blocks: the weight block's signed values w[0..31] (element j
 * pairs with activation j), then an exact int dot.  Plain int8 loops the
 * compiler vectorises. */
static inline int dot32_i8(const int8_t *w, const int8_t *a)
{
    int s = 0;
    for (int j = 0; j < 32; j++)
        s += w[j] * a[j];
    return s;
}

static inline void unpack_q4(const uint8_t *qs, int off, int8_t *w)
{
    for (int j = 0; j < 16; j++) {
        w[j] = (int8_t)((qs[j] & 0x0F) - off);
        w[j + 16] = (int8_t)((qs[j] >> 4) - off);
    }
}

static inline void unpack_q5(const uint8_t *qs, const uint8_t *qh4, int off, int8_t *w)
{
    const uint32_t qh = get_u32le(qh4);
    for (int j = 0; j < 16; j++) {
        const int h0 = (int)((qh >> j) << 4) & 0x10;
        const int h1 = (int)(qh >> (j + 12)) & 0x10;
        w[j] = (int8_t)(((qs[j] & 0x0F) | h0) - off);
        w[j + 16] = (int8_t)(((qs[j] >> 4) | h1) - off);
    }
}

static float vd_q4_0(const blk_q4_0 *x, const blk_q8_0 *y, int64_t nb)
{
    int8_t w[32];
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        unpack_q4(x[i].qs, 8, w);
        const int sumi = dot32_i8(w, y[i].qs);
        sumf += sumi * FH(x[i].d) * FH(y[i].d);           /* (sumi*dx)*dy */
    }
    return sumf;
}

static float vd_q4_1(const blk_q4_1 *x, const blk_q8_1 *y, int64_t nb)
{
    int8_t w[32];
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        unpack_q4(x[i].qs, 0, w);
        const int sumi = dot32_i8(w, y[i].qs);
        sumf += (FH(x[i].d) * FH(y[i].d)) * sumi + FH(x[i].m) * FH(y[i].s);
    }
    return sumf;
}

static float vd_q5_0(const blk_q5_0 *x, const blk_q8_0 *y, int64_t nb)
{
    int8_t w[32];
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        unpack_q5(x[i].qs, x[i].qh, 16, w);
        const int sumi = dot32_i8(w, y[i].qs);
        sumf += (FH(x[i].d) * FH(y[i].d)) * sumi;
    }
    return sumf;
}

static float vd_q5_1(const blk_q5_1 *x, const blk_q8_1 *y, int64_t nb)
{
    int8_t w[32];
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        unpack_q5(x[i].qs, x[i].qh, 0, w);
        const int sumi = dot32_i8(w, y[i].qs);
        sumf += (FH(x[i].d) * FH(y[i].d)) * sumi + FH(x[i].m) * FH(y[i].s);
    }
    return sumf;
}

static float vd_q8_0(const blk_q8_0 *x, const blk_q8_0 *y, int64_t nb)
{
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const int sumi = dot32_i8(x[i].qs, y[i].qs);
        sumf += sumi * (FH(x[i].d) * FH(y[i].d));
    }
    return sumf;
}

/* ------------------------------------------------------ k-quant dots */

/* ggml's scalar K-quant kernels keep eight int32 lane sums per block (lane l
 * collects the elements with index % 8 == l, each times its sub-block scale)
 * and eight float partial sums across blocks.  lanes16() computes those lane
 * sums from the unpacked weights w[256] and one scale per 16 elements. */
static inline void lanes16(const int8_t *w, const int8_t *q8, const int *sc16, int32_t lane[8])
{
    for (int l = 0; l < 8; l++)
        lane[l] = 0;
    for (int j = 0; j < QK_K / 16; j++) {
        const int8_t *wj = w + 16 * j, *aj = q8 + 16 * j;
        const int s = sc16[j];
        for (int l = 0; l < 8; l++)
            lane[l] += s * (wj[l] * aj[l] + wj[l + 8] * aj[l + 8]);
    }
}

static float vd_q2_K(const blk_q2_K *x, const blk_q8_K *y, int64_t nb)
{
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *sc = x[i].scales;
        int summs = 0;
        for (int j = 0; j < 16; j++)
            summs += y[i].bsums[j] * (sc[j] >> 4);
        const float dall = y[i].d * FH(x[i].d);
        const float dmin = y[i].d * FH(x[i].dmin);
        /* same element order as deq_q2_K: 128-element halves, four 2-bit
         * planes of 32, each two 16-element sub-blocks */
        int isum = 0;
        const int8_t *q8 = y[i].qs;
        const uint8_t *q2 = x[i].qs;
        int is = 0;
        for (int n = 0; n < QK_K; n += 128, q2 += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++, q8 += 16) {
                    int s = 0;
                    for (int l = 0; l < 16; l++)
                        s += q8[l] * ((q2[l + 16 * half] >> shift) & 3);
                    isum += (sc[is++] & 0xF) * s;
                }
            }
        }
        sumf += dall * isum - dmin * summs;
    }
    return sumf;
}

static float vd_q3_K(const blk_q3_K *x, const blk_q8_K *y, int64_t nb)
{
    float sums[8] = { 0 };
    int8_t w[QK_K];
    int sc16[16];
    int32_t lane[8];
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q = x[i].qs, *hm = x[i].hmask;
        int8_t *p = w;
        uint8_t m = 1;
        for (int n = 0; n < QK_K; n += 128, q += 32)
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1), p += 32)
                for (int l = 0; l < 32; l++)
                    p[l] = (int8_t)(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
        for (int j = 0; j < 16; j++)
            sc16[j] = k3_scale(j, x[i].scales) - 32;
        lanes16(w, y[i].qs, sc16, lane);
        const float d = FH(x[i].d) * y[i].d;
        for (int l = 0; l < 8; l++)
            sums[l] += d * lane[l];
    }
    float sumf = 0.0f;
    for (int l = 0; l < 8; l++)
        sumf += sums[l];
    return sumf;
}

/* Q4_K and Q5_K: unpack w, then the lane sums with 32-element scales; the
 * mins go through Q8_K's bsums (sums of 16 activations) into sumf. */
static float vd_k45(const void *xv, bool five, const blk_q8_K *y, int64_t nb)
{
    float sums[8] = { 0 };
    float sumf = 0.0f;
    int8_t w[QK_K];
    int sc16[16];
    int32_t lane[8];
    for (int64_t i = 0; i < nb; i++) {
        const blk_q4_K *x4 = five ? NULL : (const blk_q4_K *)xv + i;
        const blk_q5_K *x5 = five ? (const blk_q5_K *)xv + i : NULL;
        const uint8_t *scales = five ? x5->scales : x4->scales;
        const uint8_t *ql = five ? x5->qs : x4->qs;
        const uint16_t dh = five ? x5->d : x4->d, dminh = five ? x5->dmin : x4->dmin;
        for (int c = 0; c < 4; c++, ql += 32) {
            int8_t *p = w + 64 * c;
            for (int l = 0; l < 32; l++) {
                p[l] = (int8_t)(ql[l] & 0xF);
                p[l + 32] = (int8_t)(ql[l] >> 4);
            }
            if (five) {
                const uint8_t *qh = x5->qh;
                const uint8_t u1 = (uint8_t)(1u << (2 * c)), u2 = (uint8_t)(2u << (2 * c));
                for (int l = 0; l < 32; l++) {
                    p[l] = (int8_t)(p[l] + ((qh[l] & u1) ? 16 : 0));
                    p[l + 32] = (int8_t)(p[l + 32] + ((qh[l] & u2) ? 16 : 0));
                }
            }
        }
        int sumi = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, mn;
            k4_scale_min(j, scales, &sc, &mn);
            sc16[2 * j] = sc16[2 * j + 1] = sc;
            sumi += (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]) * mn;
        }
        lanes16(w, y[i].qs, sc16, lane);
        const float d = FH(dh) * y[i].d;
        for (int l = 0; l < 8; l++)
            sums[l] += d * lane[l];
        const float dmin = FH(dminh) * y[i].d;
        sumf -= dmin * sumi;
    }
    for (int l = 0; l < 8; l++)
        sumf += sums[l];
    return sumf;
}

static float vd_q6_K(const blk_q6_K *x, const blk_q8_K *y, int64_t nb)
{
    float sums[8] = { 0 };
    int8_t w[QK_K];
    int sc16[16];
    int32_t lane[8];
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        for (int n = 0; n < QK_K; n += 128, ql += 64, qh += 32) {
            int8_t *p = w + n;
            for (int l = 0; l < 32; l++) {
                p[l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                p[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                p[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                p[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        for (int j = 0; j < 16; j++)
            sc16[j] = x[i].scales[j];
        lanes16(w, y[i].qs, sc16, lane);
        const float d = FH(x[i].d) * y[i].d;
        for (int l = 0; l < 8; l++)
            sums[l] += d * lane[l];
    }
    float sumf = 0.0f;
    for (int l = 0; l < 8; l++)
        sumf += sums[l];
    return sumf;
}

/* ----------------------------------------------------- float dots */

/* ggml's scalar vec_dot_f16/bf16/f32: each product in float (exact for
 * f16*f16 and bf16*bf16 unless it overflows/underflows), summed in double. */
static float vd_f16(const uint16_t *x, const uint16_t *y, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)(g4_f16_to_f32(x[i]) * g4_f16_to_f32(y[i]));
    return (float)s;
}

static float vd_bf16(const uint16_t *x, const uint16_t *y, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)(g4_bf16_to_f32(x[i]) * g4_bf16_to_f32(y[i]));
    return (float)s;
}

static float vd_f32(const float *x, const float *y, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)(x[i] * y[i]);
    return (float)s;
}

float g4_vec_dot_scalar(uint32_t type, const void *w, const void *a, int64_t n)
{
    const g4_type_traits *t = g4_type_get(type);
    if (!t || g4_vec_dot_type(type) == G4_TYPE_NONE)
        return NAN;
    if (n <= 0)
        return 0.0f;
    const int64_t nb = n / t->blck;
    switch (type) {
    case G4_TYPE_F32:  return vd_f32(w, a, n);
    case G4_TYPE_F16:  return vd_f16(w, a, n);
    case G4_TYPE_BF16: return vd_bf16(w, a, n);
    case G4_TYPE_Q4_0: return vd_q4_0(w, a, nb);
    case G4_TYPE_Q4_1: return vd_q4_1(w, a, nb);
    case G4_TYPE_Q5_0: return vd_q5_0(w, a, nb);
    case G4_TYPE_Q5_1: return vd_q5_1(w, a, nb);
    case G4_TYPE_Q8_0: return vd_q8_0(w, a, nb);
    case G4_TYPE_Q2_K: return vd_q2_K(w, a, nb);
    case G4_TYPE_Q3_K: return vd_q3_K(w, a, nb);
    case G4_TYPE_Q4_K: return vd_k45(w, false, a, nb);
    case G4_TYPE_Q5_K: return vd_k45(w, true, a, nb);
    case G4_TYPE_Q6_K: return vd_q6_K(w, a, nb);
    default:           return NAN;
    }
}

/* ------------------------------------------------------- dispatch */

/* The SIMD kernels of the active CPU level (kernels/dispatch.h); a NULL
 * entry (no kernel for that type at that level, or a scalar build) runs the
 * scalar twin above. */
void g4_quantize_act(uint32_t vdt, const float *x, void *dst, int64_t n)
{
    if (n > 0 && vdt < G4_TYPE_COUNT_) {
        const g4_quantize_act_fn f = g4_dispatch_active.quantize_act[vdt];
        if (f) {
            f(x, dst, n);
            return;
        }
    }
    g4_quantize_act_scalar(vdt, x, dst, n);
}

float g4_vec_dot(uint32_t type, const void *w, const void *a, int64_t n)
{
    if (n > 0 && type < G4_TYPE_COUNT_) {
        const g4_vec_dot_fn f = g4_dispatch_active.vec_dot[type];
        if (f)
            return f(w, a, n);
    }
    return g4_vec_dot_scalar(type, w, a, n);
}
