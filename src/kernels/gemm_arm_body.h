/*
 * gemm_arm_body.h - the level-dependent part of gemm_arm.c (see there for
 * the contract and the layouts), written once and instantiated twice: with
 * SDOT (ARM_DOTPROD 1, names *_dp, in a target("arch=armv8.2-a+dotprod")
 * attribute) and with SMULL/SADALP (ARM_DOTPROD 0, *_neon).  GCC refuses
 * to inline the SDOT intrinsics into a function without that target even
 * on a dead branch, hence a textual template.
 *
 * The includer defines ARM_DOTPROD, ARM_SFX (the name suffix) and
 * ARM_ATTR.  Not a header of its own: no include guard, on purpose.
 */
#define ARM_CAT_(a, b) a##b
#define ARM_CAT(a, b) ARM_CAT_(a, b)
#define NM(x) ARM_CAT(x, ARM_SFX)

/* ------------------------------------------------ integer primitives */

/* a . b over 16 signed bytes, added into four int32 lanes (which lane holds
 * which element differs between the levels; the sum does not) */
ARM_ATTR INLINE int32x4_t NM(dot16_)(int32x4_t acc, int8x16_t a, int8x16_t b)
{
#if ARM_DOTPROD
    return vdotq_s32(acc, a, b);
#else
    /* |a*b| <= 128*128 fits int16 */
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

/* Tokens in lanes: lane j = sum over the nq dwords q of dot(weight dword
 * q at w, activation dword q of token j), where A[q] holds dword q of the
 * four tokens (prep's layout); nq is a multiple of 4. */
ARM_ATTR INLINE int32x4_t NM(tdot_)(const int8_t *w, const int8x16_t *A, int nq)
{
#if ARM_DOTPROD
    int32x4_t s = vdupq_n_s32(0);
    UNROLL for (int c = 0; c < nq / 4; c++) {
        const int8x16_t W = vld1q_s8(w + 16 * c);
        s = vdotq_laneq_s32(s, A[4 * c + 0], W, 0);
        s = vdotq_laneq_s32(s, A[4 * c + 1], W, 1);
        s = vdotq_laneq_s32(s, A[4 * c + 2], W, 2);
        s = vdotq_laneq_s32(s, A[4 * c + 3], W, 3);
    }
    return s;
#else
    /* the weight dword broadcast: SMULL meets tokens 0-1, SMULL2 tokens
     * 2-3; SADALP leaves two partial sums per token, ADDP joins them */
    int32x4_t lo = vdupq_n_s32(0), hi = vdupq_n_s32(0);
    UNROLL for (int q = 0; q < nq; q++) {
        uint32_t u;
        memcpy(&u, w + 4 * q, 4);
        const int8x16_t W = vreinterpretq_s8_u32(vdupq_n_u32(u));
        lo = vpadalq_s16(lo, vmull_s8(vget_low_s8(A[q]), vget_low_s8(W)));
        hi = vpadalq_s16(hi, vmull_high_s8(A[q], W));
    }
    return vpaddq_s32(lo, hi);
#endif
}

/* ------------------------------------------------ one-row kernels
 * (the level's g4_vec_dot for these types: the block chain, one scalar FMA
 * per block after an exact integer block sum) */

ARM_ATTR INLINE int NM(isum_q4_0_)(const uint8_t *w, const uint8_t *a)
{
    const uint8x16_t q = vld1q_u8(w + 2);
    const int8x16_t s8 = vdupq_n_s8(8);
    const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), s8);
    const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), s8);
    return vaddvq_s32(NM(dot16_)(NM(dot16_)(vdupq_n_s32(0), lo, ld_s8(a + 2)), hi, ld_s8(a + 18)));
}

ARM_ATTR INLINE int NM(isum_q8_0_)(const uint8_t *w, const uint8_t *a)
{
    return vaddvq_s32(NM(dot16_)(NM(dot16_)(vdupq_n_s32(0), ld_s8(w + 2), ld_s8(a + 2)), ld_s8(w + 18), ld_s8(a + 18)));
}

ARM_ATTR static float NM(vd_q4_0_)(const void *wv, const void *av, int64_t n)
{
    const uint8_t *w = wv, *a = av;
    float acc = 0.0f;
    for (int64_t b = 0; b < n / 32; b++, w += SZ_Q4_0, a += SZ_Q8_0)
        acc = fmaf((float)NM(isum_q4_0_)(w, a), fh(w) * fh(a), acc);
    return acc;
}

ARM_ATTR static float NM(vd_q8_0_)(const void *wv, const void *av, int64_t n)
{
    const uint8_t *w = wv, *a = av;
    float acc = 0.0f;
    for (int64_t b = 0; b < n / 32; b++, w += SZ_Q8_0, a += SZ_Q8_0)
        acc = fmaf((float)NM(isum_q8_0_)(w, a), fh(w) * fh(a), acc);
    return acc;
}

/* q4_K / q5_K: isum = sum_j sc[j] * (sub-block j dot), in four int32
 * lanes, then summed; msum from the bsums (k4_msum) */
ARM_ATTR INLINE float NM(vd_k45_)(const uint8_t *w, const uint8_t *a, int64_t nb, int five)
{
    const size_t wsz = five ? SZ_Q5_K : SZ_Q4_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), one = vdupq_n_u8(1), two = vdupq_n_u8(2);
    float acc = 0.0f, accm = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *wb = w + (size_t)i * wsz, *ab = a + (size_t)i * SZ_Q8_K;
        const uint8_t *qs = wb + (five ? 48 : 16), *q8 = ab + 4;
        int sc[8], mn[8];
        for (int j = 0; j < 8; j++) k4_sm(wb + 4, j, &sc[j], &mn[j]);
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
        acc = fmaf((float)vaddvq_s32(isum), fh(wb) * d8, acc);
        accm = fmaf((float)k4_msum(mn, ab), fh(wb + 2) * d8, accm);
    }
    return acc - accm;
}

ARM_ATTR static float NM(vd_q4_K_)(const void *w, const void *a, int64_t n) { return NM(vd_k45_)(w, a, n / QK, 0); }
ARM_ATTR static float NM(vd_q5_K_)(const void *w, const void *a, int64_t n) { return NM(vd_k45_)(w, a, n / QK, 1); }

/* q6_K: weights q - 32 (signed), sixteen 16-element sub-blocks with int8
 * scales */
ARM_ATTR static float NM(vd_q6_K_)(const void *wv, const void *av, int64_t n)
{
    const uint8_t *w = wv, *a = av;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m30 = vdupq_n_u8(0x30);
    const int8x16_t s32 = vdupq_n_s8(32);
    float acc = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        const uint8_t *wb = w + (size_t)i * SZ_Q6_K, *ab = a + (size_t)i * SZ_Q8_K;
        const int8_t *scales = (const int8_t *)(wb + 192);
        int32x4_t isum = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = wb + 64 * h, *qh = wb + 128 + 32 * h, *q8 = ab + 4 + 128 * h;
            for (int k = 0; k < 2; k++) {
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
        acc = fmaf((float)vaddvq_s32(isum), fh(wb + 208) * f32_at(ab), acc);
    }
    return acc;
}

/* ------------------------------------------- matrix-matrix: q4_0, q8_0 */

/* NR rows of the tile (GR or 1: a constant after inlining), token
 * groups [g0, g0 + gn) (rec0: group g0's record of the chunk's first
 * block, gstride bytes between groups), kn blocks; accs[g] carries the
 * chains across chunks */
ARM_ATTR INLINE void NM(chunk0_)(int NR, const tile0 *t, int kn, const uint8_t *rec0, size_t gstride, int gn,
                                 float32x4_t (*accs)[GR], int first)
{
    for (int g = 0; g < gn; g++) {
        float32x4_t acc[GR];
        UNROLL for (int i = 0; i < NR; i++) acc[i] = first ? vdupq_n_f32(0.0f) : accs[g][i];
        const uint8_t *rec = rec0 + (size_t)g * gstride;
        for (int b = 0; b < kn; b++, rec += REC0) {
            int8x16_t A[8];
            UNROLL for (int q = 0; q < 8; q++) A[q] = ld_s8(rec + 16 * q);
            const float32x4_t da = vld1q_f32((const float *)(const void *)(rec + 128));
            UNROLL for (int i = 0; i < NR; i++) {
                const int32x4_t s = NM(tdot_)(t->q[i][b], A, 8);
                acc[i] = vfmaq_f32(acc[i], vcvtq_f32_s32(s), vmulq_n_f32(da, t->dw[i][b]));
            }
        }
        UNROLL for (int i = 0; i < NR; i++) accs[g][i] = acc[i];
    }
}

ARM_ATTR INLINE void NM(rows0_)(int q8, int NR, const uint8_t *w, uint64_t rb, int64_t nb, const uint8_t *prep,
                                int64_t n_tok, float *y, int64_t ldy)
{
    const int64_t ng = (n_tok + GT - 1) / GT;
    tile0 t;
    float32x4_t accs[SG][GR];
    for (int64_t g0 = 0; g0 < ng; g0 += SG) {
        const int gn = (int)(ng - g0 < SG ? ng - g0 : SG);
        for (int64_t b0 = 0; b0 < nb; b0 += KC) {
            const int kn = (int)(nb - b0 < KC ? nb - b0 : KC);
            unpack0(q8, &t, w, rb, NR, b0, kn);
            NM(chunk0_)(NR, &t, kn, prep + ((size_t)g0 * (size_t)nb + (size_t)b0) * REC0, (size_t)nb * REC0, gn, accs,
                        b0 == 0);
        }
        for (int g = 0; g < gn; g++)
            store_group(accs[g], NR, (g0 + g) * GT, n_tok, y, ldy);
    }
}

ARM_ATTR INLINE void NM(run0_)(int q8, const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t n,
                               const void *prep, const uint8_t *act, uint64_t ab, int64_t n_tok, float *y, int64_t ldy)
{
    if (n_tok < G4_GEMM_MIN_TOK) {
        /* 1-3 tokens: the one-row kernel itself */
        for (int64_t tok = 0; tok < n_tok; tok++)
            for (int64_t r = r0; r < r1; r++)
                y[tok * ldy + r] = q8 ? NM(vd_q8_0_)(w + (uint64_t)r * rb, act + (uint64_t)tok * ab, n)
                                      : NM(vd_q4_0_)(w + (uint64_t)r * rb, act + (uint64_t)tok * ab, n);
        return;
    }
    const int64_t nb = n / 32;
    int64_t r = r0;
    for (; r + GR <= r1; r += GR)
        NM(rows0_)(q8, GR, w + (uint64_t)r * rb, rb, nb, prep, n_tok, y + r, ldy);
    /* the last rows one at a time: a constant NR keeps the tile in registers */
    for (; r < r1; r++)
        NM(rows0_)(q8, 1, w + (uint64_t)r * rb, rb, nb, prep, n_tok, y + r, ldy);
}

ARM_ATTR static void NM(run_q4_0_)(const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t n, const void *prep,
                                   const uint8_t *act, uint64_t ab, int64_t n_tok, float *y, int64_t ldy)
{
    NM(run0_)(0, w, rb, r0, r1, n, prep, act, ab, n_tok, y, ldy);
}

ARM_ATTR static void NM(run_q8_0_)(const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t n, const void *prep,
                                   const uint8_t *act, uint64_t ab, int64_t n_tok, float *y, int64_t ldy)
{
    NM(run0_)(1, w, rb, r0, r1, n, prep, act, ab, n_tok, y, ldy);
}

/* ------------------------------------ matrix-matrix: q4_K, q5_K, q6_K */

/* as chunk0_, with 256-element blocks: per sub-block j (q6_K: 16 of 16
 * elements, q4_K/q5_K: 8 of 32) the four tokens' sums scaled by sc[j] in
 * integer; q4_K/q5_K's mins from the prepared bsum pairs */
ARM_ATTR INLINE void NM(chunkK_)(int kt, int NR, const tileK *t, int kn, const uint8_t *rec0, size_t gstride, int gn,
                                 float32x4_t (*accs)[GR], float32x4_t (*accms)[GR], int first)
{
    const int nsub = kt == 6 ? 16 : 8, nq = kt == 6 ? 4 : 8; /* sub-blocks, dwords per sub-block */
    for (int g = 0; g < gn; g++) {
        float32x4_t acc[GR], accm[GR];
        UNROLL for (int i = 0; i < NR; i++) {
            acc[i] = first ? vdupq_n_f32(0.0f) : accs[g][i];
            accm[i] = kt == 6 || first ? vdupq_n_f32(0.0f) : accms[g][i];
        }
        const uint8_t *rec = rec0 + (size_t)g * gstride;
        for (int b = 0; b < kn; b++, rec += RECK) {
            int32x4_t s[GR];
            UNROLL for (int i = 0; i < NR; i++) s[i] = vdupq_n_s32(0);
            for (int j = 0; j < nsub; j++) {
                int8x16_t A[8];
                UNROLL for (int u = 0; u < nq; u++) A[u] = ld_s8(rec + 16 * (nq * j + u));
                UNROLL for (int i = 0; i < NR; i++)
                    s[i] = vmlaq_n_s32(s[i], NM(tdot_)(t->q[i][b] + 4 * nq * j, A, nq), t->sc[i][b][j]);
            }
            const float32x4_t da = vld1q_f32((const float *)(const void *)(rec + 1152));
            UNROLL for (int i = 0; i < NR; i++) {
                acc[i] = vfmaq_f32(acc[i], vcvtq_f32_s32(s[i]), vmulq_n_f32(da, t->d[i][b]));
                if (kt != 6) {
                    int32x4_t m = vdupq_n_s32(0);
                    UNROLL for (int p = 0; p < 8; p++)
                        m = vmlaq_n_s32(m, vld1q_s32((const int32_t *)(const void *)(rec + 1024 + 16 * p)), t->mn[i][b][p]);
                    accm[i] = vfmaq_f32(accm[i], vcvtq_f32_s32(m), vmulq_n_f32(da, t->dmin[i][b]));
                }
            }
        }
        UNROLL for (int i = 0; i < NR; i++) {
            accs[g][i] = acc[i];
            accms[g][i] = accm[i];
        }
    }
}

ARM_ATTR INLINE void NM(rowsK_)(int kt, int NR, const uint8_t *w, uint64_t rb, int64_t nb, const uint8_t *prep,
                                int64_t n_tok, float *y, int64_t ldy)
{
    const int64_t ng = (n_tok + GT - 1) / GT;
    tileK t;
    float32x4_t accs[SG][GR], accms[SG][GR];
    for (int64_t g0 = 0; g0 < ng; g0 += SG) {
        const int gn = (int)(ng - g0 < SG ? ng - g0 : SG);
        for (int64_t b0 = 0; b0 < nb; b0 += KKC) {
            const int kn = (int)(nb - b0 < KKC ? nb - b0 : KKC);
            unpackK(kt, &t, w, rb, NR, b0, kn);
            NM(chunkK_)(kt, NR, &t, kn, prep + ((size_t)g0 * (size_t)nb + (size_t)b0) * RECK, (size_t)nb * RECK, gn,
                        accs, accms, b0 == 0);
        }
        for (int g = 0; g < gn; g++) {
            if (kt != 6)
                for (int i = 0; i < NR; i++) accs[g][i] = vsubq_f32(accs[g][i], accms[g][i]);
            store_group(accs[g], NR, (g0 + g) * GT, n_tok, y, ldy);
        }
    }
}

ARM_ATTR INLINE void NM(runK_)(int kt, const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t n,
                               const void *prep, const uint8_t *act, uint64_t ab, int64_t n_tok, float *y, int64_t ldy)
{
    if (n_tok < G4_GEMM_MIN_TOK) {
        const g4_vec_dot_fn vd = kt == 6 ? NM(vd_q6_K_) : kt == 5 ? NM(vd_q5_K_) : NM(vd_q4_K_);
        for (int64_t tok = 0; tok < n_tok; tok++)
            for (int64_t r = r0; r < r1; r++)
                y[tok * ldy + r] = vd(w + (uint64_t)r * rb, act + (uint64_t)tok * ab, n);
        return;
    }
    const int64_t nb = n / QK;
    int64_t r = r0;
    for (; r + GR <= r1; r += GR)
        NM(rowsK_)(kt, GR, w + (uint64_t)r * rb, rb, nb, prep, n_tok, y + r, ldy);
    for (; r < r1; r++)
        NM(rowsK_)(kt, 1, w + (uint64_t)r * rb, rb, nb, prep, n_tok, y + r, ldy);
}

ARM_ATTR static void NM(run_q4_K_)(const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t n, const void *prep,
                                   const uint8_t *act, uint64_t ab, int64_t n_tok, float *y, int64_t ldy)
{
    NM(runK_)(4, w, rb, r0, r1, n, prep, act, ab, n_tok, y, ldy);
}

ARM_ATTR static void NM(run_q5_K_)(const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t n, const void *prep,
                                   const uint8_t *act, uint64_t ab, int64_t n_tok, float *y, int64_t ldy)
{
    NM(runK_)(5, w, rb, r0, r1, n, prep, act, ab, n_tok, y, ldy);
}

ARM_ATTR static void NM(run_q6_K_)(const uint8_t *w, uint64_t rb, int64_t r0, int64_t r1, int64_t n, const void *prep,
                                   const uint8_t *act, uint64_t ab, int64_t n_tok, float *y, int64_t ldy)
{
    NM(runK_)(6, w, rb, r0, r1, n, prep, act, ab, n_tok, y, ldy);
}

static const g4_gemm_kernel NM(GEMM_Q4_0_) = { prep_bytes_q8_0, prep_q8_0, NM(run_q4_0_), NULL, 0 };
static const g4_gemm_kernel NM(GEMM_Q8_0_) = { prep_bytes_q8_0, prep_q8_0, NM(run_q8_0_), NULL, 0 };
static const g4_gemm_kernel NM(GEMM_Q4_K_) = { prep_bytes_q8_K, prep_q8_K, NM(run_q4_K_), NULL, 0 };
static const g4_gemm_kernel NM(GEMM_Q5_K_) = { prep_bytes_q8_K, prep_q8_K, NM(run_q5_K_), NULL, 0 };
static const g4_gemm_kernel NM(GEMM_Q6_K_) = { prep_bytes_q8_K, prep_q8_K, NM(run_q6_K_), NULL, 0 };

#undef NM
#undef ARM_CAT
#undef ARM_CAT_
