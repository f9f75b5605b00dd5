/*
 * simd_arm.c - AArch64 Advanced SIMD twins of quant.c's g4_quantize_act
 * (Q8_0, Q8_K) and of the f32, f16 and bf16 dots, for the neon level
 * (every AArch64 CPU; the dotprod level uses them too).  The quantized dots
 * (q4_0, q8_0, q4_K, q5_K, q6_K, neon and dotprod) live in gemm_arm.c with
 * the matrix kernels they are the bit-exact twins of.
 * Other architectures (and big-endian AArch64) compile this file to nothing.
 *
 * Contract with the scalar twins (tests/test_simd.c checks it, run under
 * qemu-aarch64 by tests/arm/cross-neon.sh):
 *   - quantize_act writes the same bytes as g4_quantize_act_scalar run on the
 *     same CPU.  Blocks the vector code cannot reproduce are handed to the
 *     scalar code: blocks holding NaN or infinities, and blocks whose scale
 *     overflows (amax so small that 127/amax is infinite), where FCVTNS would
 *     saturate inf/NaN products differently from the scalar x86 emulation.
 *   - the float dots add the same float products in double, in lanes;
 *     results agree to 1e-6 of sum|terms|.
 * Memory: unaligned loads only, never past the row's last block.
 *
 * Block layouts: see the table at the top of simd_x86.c.
 * Speed on real ARM hardware is unmeasured (docs/performance.md, "ARM64").
 */
#include "kernels/dispatch.h"

#if defined(__aarch64__) && !defined(__AARCH64EB__) && (defined(__GNUC__) || defined(__clang__))

#include <arm_neon.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/quant.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
/* GCC's arm_neon.h writes vmulq_f32/vaddq_f32 as plain * and +, which GNU
 * mode would fuse; quantize_act must round the product before the add of
 * ggml's nearest_int, as the scalar twin does. */
#pragma GCC optimize("fp-contract=off")
#endif

enum { QK = 256, SZ_Q8_0 = 34, SZ_Q8_K = 292 };

/* ------------------------------------------------------ float dots */

/* As quant.c's vd_f16/vd_bf16/vd_f32: each product rounded in float (FMUL,
 * not fused), then added in double -- here in four float64x2 lanes, the
 * ragged tail in the scalar way. */
static inline float64x2_t add_prod_f64(float64x2_t acc, float32x2_t p)
{
    return vaddq_f64(acc, vcvt_f64_f32(p));
}

#define FLOAT_DOT_BODY(LOAD4, SCALAR)                                          \
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = vdupq_n_f64(0.0);                 \
    float64x2_t s2 = vdupq_n_f64(0.0), s3 = vdupq_n_f64(0.0);                 \
    int64_t i = 0;                                                           \
    for (; i + 8 <= n; i += 8) {                                             \
        const float32x4_t p0 = vmulq_f32(LOAD4(x + i), LOAD4(y + i));         \
        const float32x4_t p1 = vmulq_f32(LOAD4(x + i + 4), LOAD4(y + i + 4)); \
        s0 = add_prod_f64(s0, vget_low_f32(p0));                             \
        s1 = add_prod_f64(s1, vget_high_f32(p0));                            \
        s2 = add_prod_f64(s2, vget_low_f32(p1));                             \
        s3 = add_prod_f64(s3, vget_high_f32(p1));                            \
    }                                                                        \
    double s = vaddvq_f64(vaddq_f64(vaddq_f64(s0, s1), vaddq_f64(s2, s3)));  \
    for (; i < n; i++)                                                       \
        s += (double)(SCALAR(x[i]) * SCALAR(y[i]));                          \
    return (float)s;

static inline float32x4_t ld_f16x4(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
static inline float32x4_t ld_bf16x4(const uint16_t *p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }

static float vd_f16_neon(const void *wv, const void *av, int64_t n)
{
    const uint16_t *x = wv, *y = av;
    FLOAT_DOT_BODY(ld_f16x4, g4_f16_to_f32)
}

static float vd_bf16_neon(const void *wv, const void *av, int64_t n)
{
    const uint16_t *x = wv, *y = av;
    FLOAT_DOT_BODY(ld_bf16x4, g4_bf16_to_f32)
}

static inline float f32_id(float f) { return f; }

static float vd_f32_neon(const void *wv, const void *av, int64_t n)
{
    const float *x = wv, *y = av;
    FLOAT_DOT_BODY(vld1q_f32, f32_id)
}

/* ------------------------------------------------- quantize_act */

/* max |x| over n (a multiple of 16) floats; NaN if any is NaN (FMAX
 * propagates it), inf if any is infinite */
static inline float amax_f32(const float *x, int n)
{
    float32x4_t m0 = vdupq_n_f32(0.0f), m1 = vdupq_n_f32(0.0f);
    for (int j = 0; j < n; j += 8) {
        m0 = vmaxq_f32(m0, vabsq_f32(vld1q_f32(x + j)));
        m1 = vmaxq_f32(m1, vabsq_f32(vld1q_f32(x + j + 4)));
    }
    return vmaxvq_f32(vmaxq_f32(m0, m1));
}

/* Q8_0 as quant.c's act_q8_01: d = amax/127 (as f16), multiplier 127/amax,
 * round half to even (FCVTNS), saturate to int8 */
static void act_q8_0_neon(const float *x, void *dst, int64_t n)
{
    uint8_t *out = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, out += SZ_Q8_0) {
        const float amax = amax_f32(x, 32);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        if (!(amax <= FLT_MAX) || !(id <= FLT_MAX)) {
            g4_quantize_act_scalar(G4_TYPE_Q8_0, x, out, 32);
            continue;
        }
        const uint16_t dh = g4_f32_to_f16(amax / 127.f);
        memcpy(out, &dh, 2);
        const float32x4_t vid = vdupq_n_f32(id);
        for (int j = 0; j < 32; j += 8) {
            const int32x4_t q0 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + j), vid));
            const int32x4_t q1 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + j + 4), vid));
            const int8x8_t q = vqmovn_s16(vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1)));
            vst1_s8((int8_t *)(out + 2 + j), q);
        }
    }
}

/* Q8_K as quantize_row_q8_K_ref: the element of largest |x| (the first one
 * on ties) sets iscale = -127/max; q = min(127, nearest_int(iscale * x))
 * with ggml's add-1.5*2^23 rounding, done here with the same float add and
 * bit extraction; bsums per 16 elements; d = 1/iscale */
static void act_q8_K_neon(const float *x, void *dst, int64_t n)
{
    uint8_t *out = dst;
    const float32x4_t magic = vdupq_n_f32(12582912.f);
    const int32x4_t mant = vdupq_n_s32(0x007fffff), bias = vdupq_n_s32(0x00400000), q127 = vdupq_n_s32(127);
    for (int64_t i = 0; i < n / QK; i++, x += QK, out += SZ_Q8_K) {
        const float amax = amax_f32(x, QK);
        if (!(amax <= FLT_MAX) || amax == 0.0f) {
            g4_quantize_act_scalar(G4_TYPE_Q8_K, x, out, QK);
            continue;
        }
        int at = 0;
        while (fabsf(x[at]) != amax) at++;
        const float iscale = -127.f / x[at];
        if (!(fabsf(iscale) <= FLT_MAX)) {
            g4_quantize_act_scalar(G4_TYPE_Q8_K, x, out, QK);
            continue;
        }
        const float32x4_t vis = vdupq_n_f32(iscale);
        int8_t *qs = (int8_t *)(out + 4);
        for (int j = 0; j < QK; j += 16) {
            int32x4_t q[4];
            for (int k = 0; k < 4; k++) {
                const float32x4_t t = vaddq_f32(vmulq_f32(vis, vld1q_f32(x + j + 4 * k)), magic);
                const int32x4_t r = vsubq_s32(vandq_s32(vreinterpretq_s32_f32(t), mant), bias);
                q[k] = vminq_s32(r, q127);
            }
            const int8x16_t b = vcombine_s8(vqmovn_s16(vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]))),
                                            vqmovn_s16(vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]))));
            vst1q_s8(qs + j, b);
            const int16_t bsum = (int16_t)vaddlvq_s8(b);
            memcpy(out + 260 + 2 * (j / 16), &bsum, 2);
        }
        const float d = 1 / iscale;
        memcpy(out, &d, 4);
    }
}

/* ------------------------------------------------------------ table */

void g4_simd_arm_fill(int level, g4_kernel_table *t)
{
    if (level == G4_CPU_NEON) {
        t->quantize_act[G4_TYPE_Q8_0] = act_q8_0_neon;
        t->quantize_act[G4_TYPE_Q8_K] = act_q8_K_neon;
        t->vec_dot[G4_TYPE_F32] = vd_f32_neon;
        t->vec_dot[G4_TYPE_F16] = vd_f16_neon;
        t->vec_dot[G4_TYPE_BF16] = vd_bf16_neon;
    }
}

#else
typedef int g4_simd_arm_empty; /* not little-endian AArch64: nothing here */
#endif
