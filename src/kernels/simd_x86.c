/*
 * simd_x86.c - AVX2 and AVX-512 twins of quant.c's g4_vec_dot and
 * g4_quantize_act kernels, chosen at run time by dispatch.c.
 *
 * Every function carries its own target attribute (no global -m flags), so
 * the binary runs on any x86-64 and these are only called after the CPU
 * probe.  Non-x86 builds compile this file to nothing.
 *
 * Contract with the scalar twins (tests/test_simd.c checks it):
 *   - quantize_act kernels write the same bytes (blocks holding NaN, and for
 *     Q8_K also infinities, are handed to the scalar code);
 *   - dot kernels compute the same exact integer block sums, then combine
 *     them in a different float order: the integer sums of a block (per lane)
 *     are converted to float, multiplied by the block's float scale product
 *     and accumulated per lane with FMA (scalar: one running sum, or ggml's
 *     eight lane sums for K-quants); the float dots accumulate the same float
 *     products in double, in lanes.  Results agree with the scalar twin to
 *     1e-6 of sum|terms|.
 *     Exception: the AVX-512 q4_K/q5_K/q6_K dots (and q4_0/q8_0, which live
 *     in gemm_x86.c) follow gemm_x86.c's "block chain" instead -- one exact
 *     int32 per 256-element block, then a scalar FMA chain over the blocks
 *     -- so that its matrix kernels are their bit-exact twins.
 *   - the integer paths are exact for every weight byte and for activations
 *     in [-127, 127], i.e. every Q8_0/Q8_K row encoded from finite floats
 *     (-128 only encodes NaN/inf; the sign trick wraps there, as ggml's).
 * Memory: unaligned loads only, never past the row's last block.
 *
 * Block layouts (ggml's, see quant.c), as byte offsets:
 *   q4_0 (18): d f16 @0, qs[16] @2          q8_0 (34): d f16 @0, qs[32] @2
 *   q4_K (144): d @0, dmin @2, scales[12] @4, qs[128] @16
 *   q5_K (176): d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128] @48
 *   q6_K (210): ql[128] @0, qh[64] @128, scales[16] (int8) @192, d @208
 *   q8_K (292): d f32 @0, qs[256] @4, bsums[16] (int16) @260
 */
#include "kernels/dispatch.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/quant.h"

#define T2 __attribute__((target("avx2,fma,f16c")))
#define T5 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

enum { QK = 256, SZ_Q4_0 = 18, SZ_Q8_0 = 34, SZ_Q4_K = 144, SZ_Q5_K = 176, SZ_Q6_K = 210, SZ_Q8_K = 292 };

/* ------------------------------------------------------------ helpers */

T2 static inline float fh(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline float f32_at(const uint8_t *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

T2 static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

T2 static inline double hsum_pd(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

T2 static inline int hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

T2 static inline float hmax_ps(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

T2 static inline __m256i loadu256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
T2 static inline __m128i loadu128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

/* the 32 signed 4-bit values of a q4_0 block, minus 8, elements 0..31 */
T2 static inline __m256i unpack_q4_0(const uint8_t *qs)
{
    const __m128i q = loadu128(qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    return _mm256_sub_epi8(_mm256_and_si256(v, _mm256_set1_epi8(0x0F)), _mm256_set1_epi8(8));
}

/* sum of x[i]*y[i] for signed bytes, in 8 int32 lanes (|x*y| pairs fit int16
 * unless y holds -128 where x < 0, see the header) */
T2 static inline __m256i dot_i8_avx2(__m256i x, __m256i y)
{
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}


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

/* ------------------------------------------------------- AVX2 dots */

T2 static float vd_q4_0_avx2(const void *wv, const void *av, int64_t n)
{
    const uint8_t *w = wv, *a = av;
    const int64_t nb = n / 32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2, w += 2 * SZ_Q4_0, a += 2 * SZ_Q8_0) {
        const __m256i p0 = dot_i8_avx2(unpack_q4_0(w + 2), loadu256(a + 2));
        const __m256i p1 = dot_i8_avx2(unpack_q4_0(w + SZ_Q4_0 + 2), loadu256(a + SZ_Q8_0 + 2));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(fh(w) * fh(a)), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(fh(w + SZ_Q4_0) * fh(a + SZ_Q8_0)), acc1);
    }
    if (i < nb) {
        const __m256i p0 = dot_i8_avx2(unpack_q4_0(w + 2), loadu256(a + 2));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(fh(w) * fh(a)), acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

T2 static float vd_q8_0_avx2(const void *wv, const void *av, int64_t n)
{
    const uint8_t *w = wv, *a = av;
    const int64_t nb = n / 32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2, w += 2 * SZ_Q8_0, a += 2 * SZ_Q8_0) {
        const __m256i p0 = dot_i8_avx2(loadu256(w + 2), loadu256(a + 2));
        const __m256i p1 = dot_i8_avx2(loadu256(w + SZ_Q8_0 + 2), loadu256(a + SZ_Q8_0 + 2));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(fh(w) * fh(a)), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(fh(w + SZ_Q8_0) * fh(a + SZ_Q8_0)), acc1);
    }
    if (i < nb) {
        const __m256i p0 = dot_i8_avx2(loadu256(w + 2), loadu256(a + 2));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(fh(w) * fh(a)), acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* q6_K: 4 planes of 32 six-bit values per 128 elements; sum (q-32)*a is
 * computed as sum q*a - 32*sum a, the sums of a being Q8_K's bsums.
 * Scale broadcasts: SH holds the 8 int16 scales of one 128-element half in
 * both 128-bit lanes; CTL6[k] picks scale 2k for lane 0, 2k+1 for lane 1. */
#define R8(a, b) a, b, a, b, a, b, a, b, a, b, a, b, a, b, a, b
static const uint8_t CTL6[4][32] = {
    { R8(0, 1), R8(2, 3) }, { R8(4, 5), R8(6, 7) }, { R8(8, 9), R8(10, 11) }, { R8(12, 13), R8(14, 15) },
};
/* for 512-bit: lane L picks scale L (01) or 4+L (23) of a half */
static const uint8_t CTL6_01[64] = { R8(0, 1), R8(2, 3), R8(4, 5), R8(6, 7) };
static const uint8_t CTL6_23[64] = { R8(8, 9), R8(10, 11), R8(12, 13), R8(14, 15) };

T2 static float vd_q6_K_avx2(const void *wv, const void *av, int64_t n)
{
    const uint8_t *w = wv, *a = av;
    const int64_t nb = n / QK;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++, w += SZ_Q6_K, a += SZ_Q8_K) {
        const uint8_t *q8 = a + 4;
        const __m256i s16 = _mm256_cvtepi8_epi16(loadu128(w + 192));
        const __m256i corr = _mm256_madd_epi16(loadu256(a + 260), s16);
        __m256i isum = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5));
        for (int h = 0; h < 2; h++) {
            const __m256i sh = h ? _mm256_permute2x128_si256(s16, s16, 0x11) : _mm256_permute2x128_si256(s16, s16, 0x00);
            const __m256i l0 = loadu256(w + 64 * h), l1 = loadu256(w + 64 * h + 32), hb = loadu256(w + 128 + 32 * h);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
            for (int k = 0; k < 4; k++) {
                const __m256i p = _mm256_maddubs_epi16(q[k], loadu256(q8 + 128 * h + 32 * k));
                const __m256i sc = _mm256_shuffle_epi8(sh, loadu256(CTL6[k]));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, sc));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(fh(w + 208) * f32_at(a)), acc);
    }
    return hsum_ps(acc);
}

/* The scalar part of a q4_K / q5_K block, the same at every level: the 8
 * sub-block scales into sc, and the return value sum_j min_j * (sum of the
 * 32 activations of sub-block j), from Q8_K's bsums at byte 260. */
static inline int k45_scales(const uint8_t *w, const uint8_t *a, int sc[8])
{
    int mn[8];
    for (int j = 0; j < 8; j++)
        k4_sm(w + 4, j, &sc[j], &mn[j]);
    int16_t bs[16];
    memcpy(bs, a + 260, sizeof bs);
    int msum = 0;
    for (int j = 0; j < 8; j++)
        msum += mn[j] * (bs[2 * j] + bs[2 * j + 1]);
    return msum;
}

/* q4_K / q5_K: 8 sub-blocks of 32 with 6-bit scales and mins; the mins
 * multiply Q8_K's bsums (sums of 16 activations). */
T2 static inline float k45_avx2(const uint8_t *w, const uint8_t *a, int64_t nb, int five)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    const int sz = five ? SZ_Q5_K : SZ_Q4_K;
    for (int64_t i = 0; i < nb; i++, w += sz, a += SZ_Q8_K) {
        int sc[8];
        const int msum = k45_scales(w, a, sc);
        const uint8_t *qs = w + (five ? 48 : 16), *q8 = a + 4;
        __m256i hv = five ? loadu256(w + 16) : _mm256_setzero_si256();
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i qv = loadu256(qs + 32 * c);
            __m256i lo = _mm256_and_si256(qv, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
            if (five) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hv, one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 1), one), 4));
                hv = _mm256_srli_epi16(hv, 2);
            }
            const __m256i p0 = _mm256_maddubs_epi16(lo, loadu256(q8 + 64 * c));
            const __m256i p1 = _mm256_maddubs_epi16(hi, loadu256(q8 + 64 * c + 32));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p0, _mm256_set1_epi16((short)sc[2 * c])));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p1, _mm256_set1_epi16((short)sc[2 * c + 1])));
        }
        const float yd = f32_at(a);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(fh(w) * yd), acc);
        summ += (fh(w + 2) * yd) * (float)msum;
    }
    return hsum_ps(acc) - summ;
}

T2 static float vd_q4_K_avx2(const void *w, const void *a, int64_t n) { return k45_avx2(w, a, n / QK, 0); }
T2 static float vd_q5_K_avx2(const void *w, const void *a, int64_t n) { return k45_avx2(w, a, n / QK, 1); }

/* float dots: float products (exactly the scalar ones), summed in double */
#define FDOT_AVX2(NAME, LOAD8, T)                                                       \
    T2 static float NAME(const void *wv, const void *av, int64_t n)                      \
    {                                                                                    \
        const T *x = wv, *y = av;                                                        \
        __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;                     \
        int64_t i = 0;                                                                   \
        for (; i + 16 <= n; i += 16) {                                                   \
            const __m256 p0 = _mm256_mul_ps(LOAD8(x + i), LOAD8(y + i));                 \
            const __m256 p1 = _mm256_mul_ps(LOAD8(x + i + 8), LOAD8(y + i + 8));         \
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(p0)));         \
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(p0, 1)));       \
            s2 = _mm256_add_pd(s2, _mm256_cvtps_pd(_mm256_castps256_ps128(p1)));         \
            s3 = _mm256_add_pd(s3, _mm256_cvtps_pd(_mm256_extractf128_ps(p1, 1)));       \
        }                                                                                \
        for (; i + 8 <= n; i += 8) {                                                     \
            const __m256 p0 = _mm256_mul_ps(LOAD8(x + i), LOAD8(y + i));                 \
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(p0)));         \
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(p0, 1)));       \
        }                                                                                \
        double s = hsum_pd(_mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3))); \
        for (; i < n; i++)                                                               \
            s += (double)(SCALAR1(x[i]) * SCALAR1(y[i]));                                \
        return (float)s;                                                                 \
    }

T2 static inline __m256 ld_f32(const float *p) { return _mm256_loadu_ps(p); }
T2 static inline __m256 ld_f16(const uint16_t *p) { return _mm256_cvtph_ps(loadu128(p)); }
T2 static inline __m256 ld_bf16(const uint16_t *p)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(loadu128(p)), 16));
}

#define SCALAR1(v) (v)
FDOT_AVX2(vd_f32_avx2, ld_f32, float)
#undef SCALAR1
#define SCALAR1(v) g4_f16_to_f32(v)
FDOT_AVX2(vd_f16_avx2, ld_f16, uint16_t)
#undef SCALAR1
#define SCALAR1(v) g4_bf16_to_f32(v)
FDOT_AVX2(vd_bf16_avx2, ld_bf16, uint16_t)
#undef SCALAR1

/* -------------------------------------------- AVX2 activation encoders */

/* Q8_0 as quant.c's act_q8_01: amax over |x| (max is order-free without
 * NaN; a block with NaN goes to the scalar code, whose sequential max
 * treats NaN in its own way), d = amax/127, x*(127/amax) rounded by cvtps2dq
 * (nearest, ties to even), saturating packs. */
T2 static void qa_q8_0_avx2(const float *x, void *dst, int64_t n)
{
    uint8_t *out = dst;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t i = 0; i < n / 32; i++, x += 32, out += SZ_Q8_0) {
        const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        const __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        const __m256 nan = _mm256_or_ps(_mm256_or_ps(_mm256_cmp_ps(v0, v0, _CMP_UNORD_Q), _mm256_cmp_ps(v1, v1, _CMP_UNORD_Q)),
                                        _mm256_or_ps(_mm256_cmp_ps(v2, v2, _CMP_UNORD_Q), _mm256_cmp_ps(v3, v3, _CMP_UNORD_Q)));
        if (_mm256_movemask_ps(nan)) {
            g4_quantize_act_scalar(G4_TYPE_Q8_0, x, out, 32);
            continue;
        }
        const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
                                       _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
        const float amax = hmax_ps(m);
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        const __m256 iv = _mm256_set1_ps(id);
        const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, iv)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, iv));
        const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, iv)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, iv));
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)(out + 2), _mm256_permutevar8x32_epi32(p, perm));
        const uint16_t dh = g4_f32_to_f16(d);
        memcpy(out, &dh, 2);
    }
}

/* Q8_K as quantize_row_q8_K_ref: max = the first element of largest |x|,
 * iscale = -127/max, q = min(127, nearest(iscale*x)) (finite blocks:
 * |iscale*x| <= 127.x, where the 1.5*2^23 trick equals cvtps2dq's ties to
 * even), bsums, d = 1/iscale.  Blocks with NaN or inf, or so tiny that
 * iscale overflows: scalar code. */
T2 static void qa_q8_K_avx2(const float *x, void *dst, int64_t n)
{
    uint8_t *out = dst;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 inf = _mm256_set1_ps(INFINITY);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), c127 = _mm256_set1_epi32(127);
    for (int64_t i = 0; i < n / QK; i++, x += QK, out += SZ_Q8_K) {
        __m256 m = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
        for (int j = 0; j < QK; j += 8) {
            const __m256 av = _mm256_and_ps(_mm256_loadu_ps(x + j), absmask);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps(av, inf, _CMP_NLT_UQ));
            m = _mm256_max_ps(m, av);
        }
        if (_mm256_movemask_ps(bad)) {
            g4_quantize_act_scalar(G4_TYPE_Q8_K, x, out, QK);
            continue;
        }
        const float amax = hmax_ps(m);
        if (amax == 0.0f) {
            memset(out, 0, SZ_Q8_K);
            continue;
        }
        int jm = 0;
        while (fabsf(x[jm]) != amax)
            jm++;
        const float iscale = -127.f / x[jm];
        if (!isfinite(iscale)) {            /* max below ~1e-37: the scalar code's garbage */
            g4_quantize_act_scalar(G4_TYPE_Q8_K, x, out, QK);
            continue;
        }
        const __m256 iv = _mm256_set1_ps(iscale);
        int16_t bsums[16];
        for (int j = 0; j < QK; j += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; k++)
                q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), iv)), c127);
            __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            p = _mm256_permutevar8x32_epi32(p, perm);
            _mm256_storeu_si256((__m256i *)(out + 4 + j), p);
            /* two bsums: 16 bytes each */
            const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), p);     /* pairs */
            const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));      /* quads */
            const __m256i s64 = _mm256_hadd_epi32(s32, s32);
            const __m256i s128 = _mm256_hadd_epi32(s64, s64);
            bsums[j / 16] = (int16_t)_mm256_extract_epi32(s128, 0);
            bsums[j / 16 + 1] = (int16_t)_mm256_extract_epi32(s128, 4);
        }
        memcpy(out + 260, bsums, sizeof bsums);
        const float d = 1 / iscale;
        memcpy(out, &d, 4);
    }
}

/* -------------------------------------------------- AVX-512 dots */

/* q6_K with 64 elements per zmm: planes 0+1 and 2+3 of a 128-element half;
 * the high bits come from one 32-byte qh load broadcast to both halves and
 * shifted per half (sllv/srlv). */
T5 static float vd_q6_K_avx512(const void *wv, const void *av, int64_t n)
{
    const uint8_t *w = wv, *a = av;
    const int64_t nb = n / QK;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const __m512i cnt01 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i cnt23 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i ctl01 = _mm512_loadu_si512(CTL6_01), ctl23 = _mm512_loadu_si512(CTL6_23);
    __m128 acc = _mm_setzero_ps();
    for (int64_t i = 0; i < nb; i++, w += SZ_Q6_K, a += SZ_Q8_K) {
        const uint8_t *q8 = a + 4;
        const __m256i corr = _mm256_madd_epi16(loadu256(a + 260), _mm256_cvtepi8_epi16(loadu128(w + 192)));
        __m512i isum = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            const __m512i s = _mm512_broadcast_i32x4(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(w + 192 + 8 * h))));
            const __m512i ql = _mm512_loadu_si512(w + 64 * h);
            const __m512i hb = _mm512_broadcast_i64x4(loadu256(w + 128 + 32 * h));
            const __m512i q01 = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_sllv_epi16(hb, cnt01), m30));
            const __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                                _mm512_and_si512(_mm512_srlv_epi16(hb, cnt23), m30));
            const __m512i p01 = _mm512_maddubs_epi16(q01, _mm512_loadu_si512(q8 + 128 * h));
            const __m512i p23 = _mm512_maddubs_epi16(q23, _mm512_loadu_si512(q8 + 128 * h + 64));
            isum = _mm512_dpwssd_epi32(isum, p01, _mm512_shuffle_epi8(s, ctl01));
            isum = _mm512_dpwssd_epi32(isum, p23, _mm512_shuffle_epi8(s, ctl23));
        }
        __m256i i8 = _mm256_add_epi32(_mm512_castsi512_si256(isum), _mm512_extracti64x4_epi64(isum, 1));
        i8 = _mm256_sub_epi32(i8, _mm256_slli_epi32(corr, 5));
        acc = _mm_fmadd_ss(_mm_set_ss((float)hsum_epi32(i8)), _mm_set_ss(fh(w + 208) * f32_at(a)), acc);
    }
    return _mm_cvtss_f32(acc);
}

/* the 8 six-bit scales (bytes 0-7) and 8 mins (bytes 8-15) of a q4_K /
 * q5_K block, as k4_sm unpacks them one by one; q points at the 12 packed
 * bytes (the 4 bytes read after them are still inside the block).  As
 * dwords u0..u2: scales 0-3 = u0 & 3f.., scales 4-7 = (u2 & 0f..) | top
 * bits of u0, mins 0-3 = u1 & 3f.., mins 4-7 = (u2 >> 4 & 0f..) | top bits
 * of u1 ((x >> 6) << 4 per byte is (x >> 2) & 0x30 per dword). */
T5 static inline __m128i k45_sm(const uint8_t *q)
{
    const __m128i u = loadu128(q);
    const __m128i lo = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(2, 1, 2, 0)), _mm_setr_epi32(0, 0, 0, 4)),
                                     _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m128i hi = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(1, 1, 0, 0)), 2),
                                     _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
    return _mm_or_si128(lo, hi);
}

/* q4_K / q5_K: 64 elements (one 32-byte qs chunk: two sub-blocks) per zmm;
 * scales and mins unpacked in registers (the scalar k45_scales costs more
 * than the dot itself) */
T5 static inline float k45_avx512(const uint8_t *w, const uint8_t *a, int64_t nb, int five)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), one = _mm512_set1_epi8(1);
    /* chunk c multiplies by scale 2c (low 256 bits) and 2c+1 (high) */
    __m512i sidx[4];
    for (int c = 0; c < 4; c++)
        sidx[c] = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * c)), _mm256_set1_epi16((short)(2 * c + 1)), 1);
    __m128 acc = _mm_setzero_ps(), accm = _mm_setzero_ps();
    const int sz = five ? SZ_Q5_K : SZ_Q4_K;
    for (int64_t i = 0; i < nb; i++, w += sz, a += SZ_Q8_K) {
        const __m128i sm = k45_sm(w + 4);
        /* sum_j min_j * (activation sum of sub-block j), from the bsums */
        const __m256i bsp = _mm256_madd_epi16(loadu256(a + 260), _mm256_set1_epi16(1));
        const int msum = hsum_epi32(_mm256_mullo_epi32(bsp, _mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8))));
        const __m512i sc16 = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(sm));
        const uint8_t *qs = w + (five ? 48 : 16), *q8 = a + 4;
        __m512i hv = five ? _mm512_broadcast_i64x4(loadu256(w + 16)) : _mm512_setzero_si512();
        if (five)  /* low half: bit 2c (low nibbles), high half: bit 2c+1 */
            hv = _mm512_mask_srli_epi16(hv, (__mmask32)0xFFFF0000u, hv, 1);
        __m512i isum = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            const __m256i qv = loadu256(qs + 32 * c);
            __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(qv), _mm256_srli_epi16(qv, 4), 1);
            q = _mm512_and_si512(q, m4);
            if (five) {
                q = _mm512_or_si512(q, _mm512_slli_epi16(_mm512_and_si512(hv, one), 4));
                hv = _mm512_srli_epi16(hv, 2);
            }
            const __m512i p = _mm512_maddubs_epi16(q, _mm512_loadu_si512(q8 + 64 * c));
            isum = _mm512_dpwssd_epi32(isum, p, _mm512_permutexvar_epi16(sidx[c], sc16));
        }
        const __m256i i8 = _mm256_add_epi32(_mm512_castsi512_si256(isum), _mm512_extracti64x4_epi64(isum, 1));
        const float yd = f32_at(a);
        acc = _mm_fmadd_ss(_mm_set_ss((float)hsum_epi32(i8)), _mm_set_ss(fh(w) * yd), acc);
        accm = _mm_fmadd_ss(_mm_set_ss((float)msum), _mm_set_ss(fh(w + 2) * yd), accm);
    }
    return _mm_cvtss_f32(_mm_sub_ss(acc, accm));
}

T5 static float vd_q4_K_avx512(const void *w, const void *a, int64_t n) { return k45_avx512(w, a, n / QK, 0); }
T5 static float vd_q5_K_avx512(const void *w, const void *a, int64_t n) { return k45_avx512(w, a, n / QK, 1); }

/* Q8_0 encoder, 32 floats in two zmm; vpmovsdb saturates int32 -> int8 in
 * one step, the same as the two packs */
T5 static void qa_q8_0_avx512(const float *x, void *dst, int64_t n)
{
    uint8_t *out = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, out += SZ_Q8_0) {
        const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        if (_mm512_cmp_ps_mask(v0, v0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v1, v1, _CMP_UNORD_Q)) {
            g4_quantize_act_scalar(G4_TYPE_Q8_0, x, out, 32);
            continue;
        }
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        const __m512 iv = _mm512_set1_ps(id);
        _mm_storeu_si128((__m128i *)(out + 2), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, iv))));
        _mm_storeu_si128((__m128i *)(out + 18), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, iv))));
        const uint16_t dh = g4_f32_to_f16(d);
        memcpy(out, &dh, 2);
    }
}

/* ------------------------------------------------------------- tables */

static void fill_x4(int level, g4_kernel_table *t); /* multi-token twins, at the end */

void g4_simd_x86_fill(int level, g4_kernel_table *t)
{
    fill_x4(level, t);
    if (level == G4_CPU_AVX2) {
        t->vec_dot[G4_TYPE_Q4_0] = vd_q4_0_avx2;
        t->vec_dot[G4_TYPE_Q8_0] = vd_q8_0_avx2;
        t->vec_dot[G4_TYPE_Q6_K] = vd_q6_K_avx2;
        t->vec_dot[G4_TYPE_Q4_K] = vd_q4_K_avx2;
        t->vec_dot[G4_TYPE_Q5_K] = vd_q5_K_avx2;
        t->vec_dot[G4_TYPE_F32] = vd_f32_avx2;
        t->vec_dot[G4_TYPE_F16] = vd_f16_avx2;
        t->vec_dot[G4_TYPE_BF16] = vd_bf16_avx2;
        t->quantize_act[G4_TYPE_Q8_0] = qa_q8_0_avx2;
        t->quantize_act[G4_TYPE_Q8_K] = qa_q8_K_avx2;
    } else if (level == G4_CPU_AVX512) {
        /* q4_0, q8_0: gemm_x86.c */
        t->vec_dot[G4_TYPE_Q6_K] = vd_q6_K_avx512;
        t->vec_dot[G4_TYPE_Q4_K] = vd_q4_K_avx512;
        t->vec_dot[G4_TYPE_Q5_K] = vd_q5_K_avx512;
        t->quantize_act[G4_TYPE_Q8_0] = qa_q8_0_avx512;
    }
}

/* ------------------------------------------- multi-token (x4) twins
 *
 * vec_dot_x4: one pass over a weight row for four activation rows.  Each
 * weight block is loaded and unpacked once; every token then runs exactly
 * the float operations of the single-token kernel above (its own
 * accumulators, the same FMA sequence, the same horizontal sums), so
 * out[k] is bit-identical to that kernel's result for act_rows[k]
 * (tests/test_simd.c checks it).  Integer block sums are exact, in any
 * order.  Keep each in step with its single-token twin. */

#define UNROLL4 _Pragma("GCC unroll 4")

/* twin of vd_q4_0_avx2 */
T2 static void vd4_q4_0_avx2(const void *wv, const void *const av[4], float out[4], int64_t n)
{
    const uint8_t *w = wv;
    const uint8_t *a[4] = { av[0], av[1], av[2], av[3] };
    const int64_t nb = n / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc0[4], acc1[4];
    UNROLL4 for (int k = 0; k < 4; k++)
        acc0[k] = acc1[k] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2, w += 2 * SZ_Q4_0) {
        const __m256i x0 = unpack_q4_0(w + 2), x1 = unpack_q4_0(w + SZ_Q4_0 + 2);
        const __m256i ax0 = _mm256_sign_epi8(x0, x0), ax1 = _mm256_sign_epi8(x1, x1);
        const float dw0 = fh(w), dw1 = fh(w + SZ_Q4_0);
        UNROLL4 for (int k = 0; k < 4; k++) {
            const uint8_t *ak = a[k] + i * SZ_Q8_0;
            const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(ax0, _mm256_sign_epi8(loadu256(ak + 2), x0)), ones);
            const __m256i p1 =
                _mm256_madd_epi16(_mm256_maddubs_epi16(ax1, _mm256_sign_epi8(loadu256(ak + SZ_Q8_0 + 2), x1)), ones);
            acc0[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(dw0 * fh(ak)), acc0[k]);
            acc1[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(dw1 * fh(ak + SZ_Q8_0)), acc1[k]);
        }
    }
    if (i < nb) {
        const __m256i x0 = unpack_q4_0(w + 2);
        const float dw0 = fh(w);
        UNROLL4 for (int k = 0; k < 4; k++) {
            const uint8_t *ak = a[k] + i * SZ_Q8_0;
            const __m256i p0 = dot_i8_avx2(x0, loadu256(ak + 2));
            acc0[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(dw0 * fh(ak)), acc0[k]);
        }
    }
    UNROLL4 for (int k = 0; k < 4; k++)
        out[k] = hsum_ps(_mm256_add_ps(acc0[k], acc1[k]));
}

/* twin of vd_q6_K_avx2 */
T2 static void vd4_q6_K_avx2(const void *wv, const void *const av[4], float out[4], int64_t n)
{
    const uint8_t *w = wv;
    const uint8_t *a[4] = { av[0], av[1], av[2], av[3] };
    const int64_t nb = n / QK;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256 acc[4];
    UNROLL4 for (int k = 0; k < 4; k++)
        acc[k] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++, w += SZ_Q6_K) {
        const __m256i s16 = _mm256_cvtepi8_epi16(loadu128(w + 192));
        __m256i isum[4];
        UNROLL4 for (int k = 0; k < 4; k++) {
            const __m256i corr = _mm256_madd_epi16(loadu256(a[k] + i * SZ_Q8_K + 260), s16);
            isum[k] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5));
        }
        for (int h = 0; h < 2; h++) {
            const __m256i sh = h ? _mm256_permute2x128_si256(s16, s16, 0x11) : _mm256_permute2x128_si256(s16, s16, 0x00);
            const __m256i l0 = loadu256(w + 64 * h), l1 = loadu256(w + 64 * h + 32), hb = loadu256(w + 128 + 32 * h);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
            for (int j = 0; j < 4; j++) {
                const __m256i sc = _mm256_shuffle_epi8(sh, loadu256(CTL6[j]));
                UNROLL4 for (int k = 0; k < 4; k++) {
                    const uint8_t *q8 = a[k] + i * SZ_Q8_K + 4;
                    const __m256i p = _mm256_maddubs_epi16(q[j], loadu256(q8 + 128 * h + 32 * j));
                    isum[k] = _mm256_add_epi32(isum[k], _mm256_madd_epi16(p, sc));
                }
            }
        }
        const float dw = fh(w + 208);
        UNROLL4 for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[k]), _mm256_set1_ps(dw * f32_at(a[k] + i * SZ_Q8_K)), acc[k]);
    }
    UNROLL4 for (int k = 0; k < 4; k++)
        out[k] = hsum_ps(acc[k]);
}

static void fill_x4(int level, g4_kernel_table *t)
{
    if (level == G4_CPU_AVX2) {
        t->vec_dot_x4[G4_TYPE_Q4_0] = vd4_q4_0_avx2;
        t->vec_dot_x4[G4_TYPE_Q6_K] = vd4_q6_K_avx2;
    }
    /* AVX-512: the matrix kernels of gemm_x86.c instead */
}

#else
typedef int g4_simd_x86_empty; /* not x86-64: the scalar level only */
#endif
