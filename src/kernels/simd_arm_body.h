/*
 * simd_arm_body.h - the AArch64 dot kernels, written once and instantiated
 * twice by simd_arm.c: with SDOT (ARM_DOTPROD 1, functions named *_dp, in a
 * target("arch=armv8.2-a+dotprod") attribute) and with plain Advanced SIMD
 * widening multiplies (ARM_DOTPROD 0, *_neon).  GCC refuses to inline the
 * SDOT intrinsic into a function without that target, even on a branch that
 * is dead, hence a textual template rather than one body with a flag.
 *
 * The includer defines ARM_DOTPROD, ARM_SFX (the name suffix) and ARM_ATTR.
 * Not a header of its own: no include guard, on purpose.
 */
#define ARM_CAT_(a, b) a##b
#define ARM_CAT(a, b) ARM_CAT_(a, b)
#define NM(x) ARM_CAT(x, ARM_SFX)

/* a . b over 16 signed bytes, added into four int32 lanes (which lane holds
 * which element differs between the two versions; the sum does not) */
ARM_ATTR static inline int32x4_t NM(dot16_)(int32x4_t acc, int8x16_t a, int8x16_t b)
{
#if ARM_DOTPROD
    return vdotq_s32(acc, a, b);
#else
    /* |a*b| <= 128*128 fits int16 */
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

/* one q4_0 block (18 bytes) against one q8_0 block (34) */
ARM_ATTR static inline int32x4_t NM(blk_q4_0_)(const uint8_t *w, const uint8_t *a)
{
    const uint8x16_t q = vld1q_u8(w + 2);
    const int8x16_t s8 = vdupq_n_s8(8);
    const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), s8);
    const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), s8);
    const int32x4_t p = NM(dot16_)(vdupq_n_s32(0), lo, ld_s8(a + 2));
    return NM(dot16_)(p, hi, ld_s8(a + 18));
}

ARM_ATTR static float NM(vd_q4_0_)(const void *wv, const void *av, int64_t n)
{
    const uint8_t *w = wv, *a = av;
    const int64_t nb = n / 32;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        const uint8_t *w0 = w + i * SZ_Q4_0, *a0 = a + i * SZ_Q8_0;
        const uint8_t *w1 = w0 + SZ_Q4_0, *a1 = a0 + SZ_Q8_0;
        acc0 = vfmaq_f32(acc0, vcvtq_f32_s32(NM(blk_q4_0_)(w0, a0)), vdupq_n_f32(fh(w0) * fh(a0)));
        acc1 = vfmaq_f32(acc1, vcvtq_f32_s32(NM(blk_q4_0_)(w1, a1)), vdupq_n_f32(fh(w1) * fh(a1)));
    }
    if (i < nb) {
        const uint8_t *w0 = w + i * SZ_Q4_0, *a0 = a + i * SZ_Q8_0;
        acc0 = vfmaq_f32(acc0, vcvtq_f32_s32(NM(blk_q4_0_)(w0, a0)), vdupq_n_f32(fh(w0) * fh(a0)));
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1));
}

ARM_ATTR static inline int32x4_t NM(blk_q8_0_)(const uint8_t *w, const uint8_t *a)
{
    const int32x4_t p = NM(dot16_)(vdupq_n_s32(0), ld_s8(w + 2), ld_s8(a + 2));
    return NM(dot16_)(p, ld_s8(w + 18), ld_s8(a + 18));
}

ARM_ATTR static float NM(vd_q8_0_)(const void *wv, const void *av, int64_t n)
{
    const uint8_t *w = wv, *a = av;
    const int64_t nb = n / 32;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        const uint8_t *w0 = w + i * SZ_Q8_0, *a0 = a + i * SZ_Q8_0;
        const uint8_t *w1 = w0 + SZ_Q8_0, *a1 = a0 + SZ_Q8_0;
        acc0 = vfmaq_f32(acc0, vcvtq_f32_s32(NM(blk_q8_0_)(w0, a0)), vdupq_n_f32(fh(w0) * fh(a0)));
        acc1 = vfmaq_f32(acc1, vcvtq_f32_s32(NM(blk_q8_0_)(w1, a1)), vdupq_n_f32(fh(w1) * fh(a1)));
    }
    if (i < nb) {
        const uint8_t *w0 = w + i * SZ_Q8_0, *a0 = a + i * SZ_Q8_0;
        acc0 = vfmaq_f32(acc0, vcvtq_f32_s32(NM(blk_q8_0_)(w0, a0)), vdupq_n_f32(fh(w0) * fh(a0)));
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1));
}

/* Q4_K / Q5_K: per 256-element block, the scaled sub-block dots in four
 * int32 lanes (each lane <= 8 sub-blocks * 8 elements * 31 * 127 * 63 <
 * 2^24, so its float conversion is exact), then one FMA by d * d8; the mins
 * go through Q8_K's bsums into a separate float sum. */
ARM_ATTR static float NM(vd_k45_)(const void *wv, const void *av, int64_t n, int five)
{
    const uint8_t *w = wv, *a = av;
    const int64_t nb = n / QK;
    const size_t wsz = five ? SZ_Q5_K : SZ_Q4_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), one = vdupq_n_u8(1), two = vdupq_n_u8(2);
    float32x4_t acc = vdupq_n_f32(0.0f);
    float summ = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *wb = w + i * wsz, *ab = a + i * SZ_Q8_K;
        const uint8_t *qs = wb + (five ? 48 : 16);
        const uint8_t *q8 = ab + 4;
        int sc[8], mn[8];
        for (int j = 0; j < 8; j++)
            k4_sm(wb + 4, j, &sc[j], &mn[j]);
        /* mins: sum_j mn[j] * (bsums[2j] + bsums[2j+1]) */
        const int16x8_t bs = vpaddq_s16(ld_s16(ab + 260), ld_s16(ab + 276));
        const int16_t mv[8] = { (int16_t)mn[0], (int16_t)mn[1], (int16_t)mn[2], (int16_t)mn[3],
                                (int16_t)mn[4], (int16_t)mn[5], (int16_t)mn[6], (int16_t)mn[7] };
        const int16x8_t m16 = vld1q_s16(mv);
        const int32x4_t mp = vaddq_s32(vmull_s16(vget_low_s16(bs), vget_low_s16(m16)), vmull_high_s16(bs, m16));
        uint8x16_t h0 = vdupq_n_u8(0), h1 = vdupq_n_u8(0);
        if (five) {
            h0 = vld1q_u8(wb + 16);
            h1 = vld1q_u8(wb + 32);
        }
        int32x4_t isum = vdupq_n_s32(0);
        for (int c = 0; c < 4; c++) {
            const uint8x16_t q0 = vld1q_u8(qs + 32 * c), q1 = vld1q_u8(qs + 32 * c + 16);
            uint8x16_t l0 = vandq_u8(q0, m4), l1 = vandq_u8(q1, m4);
            uint8x16_t u0 = vshrq_n_u8(q0, 4), u1 = vshrq_n_u8(q1, 4);
            if (five) {
                /* bit 2c of qh[l] is the fifth bit of element 64c + l, bit
                 * 2c+1 that of element 64c + 32 + l; h0/h1 shift down by two
                 * per chunk */
                l0 = vorrq_u8(l0, vshlq_n_u8(vandq_u8(h0, one), 4));
                l1 = vorrq_u8(l1, vshlq_n_u8(vandq_u8(h1, one), 4));
                u0 = vorrq_u8(u0, vshlq_n_u8(vandq_u8(h0, two), 3));
                u1 = vorrq_u8(u1, vshlq_n_u8(vandq_u8(h1, two), 3));
                h0 = vshrq_n_u8(h0, 2);
                h1 = vshrq_n_u8(h1, 2);
            }
            int32x4_t p = NM(dot16_)(vdupq_n_s32(0), vreinterpretq_s8_u8(l0), ld_s8(q8 + 64 * c));
            p = NM(dot16_)(p, vreinterpretq_s8_u8(l1), ld_s8(q8 + 64 * c + 16));
            isum = vmlaq_n_s32(isum, p, sc[2 * c]);
            p = NM(dot16_)(vdupq_n_s32(0), vreinterpretq_s8_u8(u0), ld_s8(q8 + 64 * c + 32));
            p = NM(dot16_)(p, vreinterpretq_s8_u8(u1), ld_s8(q8 + 64 * c + 48));
            isum = vmlaq_n_s32(isum, p, sc[2 * c + 1]);
        }
        const float d8 = f32_at(ab);
        acc = vfmaq_f32(acc, vcvtq_f32_s32(isum), vdupq_n_f32(fh(wb) * d8));
        summ += (fh(wb + 2) * d8) * (float)vaddvq_s32(mp);
    }
    return vaddvq_f32(acc) - summ;
}

ARM_ATTR static float NM(vd_q4_K_)(const void *w, const void *a, int64_t n) { return NM(vd_k45_)(w, a, n, 0); }
ARM_ATTR static float NM(vd_q5_K_)(const void *w, const void *a, int64_t n) { return NM(vd_k45_)(w, a, n, 1); }

/* Q6_K: signed 6-bit weights (q - 32), sixteen 16-element sub-blocks with
 * int8 scales.  A lane can reach 16 * 4 * 32 * 128 * 128 > 2^24, so its
 * float conversion may round (relative 2^-24, far inside the contract). */
ARM_ATTR static float NM(vd_q6_K_)(const void *wv, const void *av, int64_t n)
{
    const uint8_t *w = wv, *a = av;
    const int64_t nb = n / QK;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m30 = vdupq_n_u8(0x30);
    const int8x16_t s32 = vdupq_n_s8(32);
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *wb = w + i * SZ_Q6_K, *ab = a + i * SZ_Q8_K;
        const int8_t *scales = (const int8_t *)(wb + 192);
        int32x4_t isum = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = wb + 64 * h, *qh = wb + 128 + 32 * h, *q8 = ab + 4 + 128 * h;
            for (int k = 0; k < 2; k++) {  /* elements l = 16k .. 16k+15 of each 32-group */
                const uint8x16_t la = vld1q_u8(ql + 16 * k), lb = vld1q_u8(ql + 32 + 16 * k);
                const uint8x16_t hb = vld1q_u8(qh + 16 * k);
                uint8x16_t g[4];
                g[0] = vorrq_u8(vandq_u8(la, m4), vandq_u8(vshlq_n_u8(hb, 4), m30));
                g[1] = vorrq_u8(vandq_u8(lb, m4), vandq_u8(vshlq_n_u8(hb, 2), m30));
                g[2] = vorrq_u8(vshrq_n_u8(la, 4), vandq_u8(hb, m30));
                g[3] = vorrq_u8(vshrq_n_u8(lb, 4), vandq_u8(vshrq_n_u8(hb, 2), m30));
                for (int j = 0; j < 4; j++) {
                    /* elements 128h + 32j + 16k .. +15: sub-block 8h + 2j + k */
                    const int8x16_t v = vsubq_s8(vreinterpretq_s8_u8(g[j]), s32);
                    const int32x4_t p = NM(dot16_)(vdupq_n_s32(0), v, ld_s8(q8 + 32 * j + 16 * k));
                    isum = vmlaq_n_s32(isum, p, scales[8 * h + 2 * j + k]);
                }
            }
        }
        acc = vfmaq_f32(acc, vcvtq_f32_s32(isum), vdupq_n_f32(fh(wb + 208) * f32_at(ab)));
    }
    return vaddvq_f32(acc);
}

#undef NM
#undef ARM_CAT
#undef ARM_CAT_
