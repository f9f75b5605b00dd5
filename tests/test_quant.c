/*
 * test_quant.c - tests for src/kernels/quant.c.
 *
 * Three layers:
 *   1. hand vectors: expected bytes/values worked out on paper from the block
 *      format definitions (not produced by running quant.c);
 *   2. reference comparison against llama.cpp's libggml-base, dlopen()ed at
 *      run time from $G4_GGML_LIB_DIR (default: the oracle npm cache).  For
 *      every supported type and many data distributions / row lengths it
 *      asserts byte-identical quantization (vs ggml_quantize_chunk with no
 *      imatrix, i.e. quantize_row_*_ref), bit-identical dequantization (vs
 *      dequantize_row_*), and dot == sum(dequant * x) to 1e-5 relative.  When
 *      the library is missing this layer prints a SKIP line and counts nothing;
 *   3. edge cases: zero blocks, lone huge values, denormal inputs, sizes.
 */
#include "kernels/quant.h"
#include "testutil.h"

#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_GGML_DIR \
    "/root/.cache/gemma4-oracle/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"

static const uint32_t SUPPORTED[] = {
    G4_TYPE_F32, G4_TYPE_F16, G4_TYPE_BF16, G4_TYPE_Q4_0, G4_TYPE_Q4_1,
    G4_TYPE_Q5_0, G4_TYPE_Q5_1, G4_TYPE_Q8_0, G4_TYPE_Q2_K, G4_TYPE_Q3_K,
    G4_TYPE_Q4_K, G4_TYPE_Q5_K, G4_TYPE_Q6_K, G4_TYPE_Q8_K,
};
#define N_SUPPORTED (sizeof SUPPORTED / sizeof SUPPORTED[0])

static uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static size_t row_bytes(uint32_t type, int64_t n)
{
    uint64_t b = 0;
    if (!g4_row_size(type, (uint64_t)n, &b)) {
        fprintf(stderr, "row_size failed for type %u n %lld\n", type, (long long)n);
        abort();
    }
    return (size_t)b;
}

/* ------------------------------------------------------------ 1. by hand */

static void test_type_table(void)
{
    const g4_type_traits *t;
    t = g4_type_get(G4_TYPE_Q4_K);
    CHECK(t && t->blck == 256 && t->type_size == 144 && t->supported && !strcmp(t->name, "q4_K"));
    t = g4_type_get(G4_TYPE_Q6_K);
    CHECK(t && t->blck == 256 && t->type_size == 210 && t->supported);
    t = g4_type_get(G4_TYPE_Q8_0);
    CHECK(t && t->blck == 32 && t->type_size == 34 && t->supported);
    t = g4_type_get(G4_TYPE_BF16);
    CHECK(t && t->blck == 1 && t->type_size == 2 && t->supported && !strcmp(t->name, "bf16"));
    t = g4_type_get(16); /* IQ2_XXS: known size, not supported */
    CHECK(t && t->blck == 256 && t->type_size == 66 && !t->supported);
    t = g4_type_get(39); /* MXFP4 */
    CHECK(t && t->blck == 32 && t->type_size == 17 && !t->supported);
    CHECK(g4_type_get(4) == NULL);
    CHECK(g4_type_get(5) == NULL);
    CHECK(g4_type_get(31) == NULL);
    CHECK(g4_type_get(38) == NULL);
    CHECK(g4_type_get(43) == NULL);
    CHECK(g4_type_get(G4_TYPE_COUNT_) == NULL);
    CHECK(g4_type_get(0xffffffffu) == NULL);

    uint64_t b = 0;
    CHECK(g4_row_size(G4_TYPE_Q4_0, 64, &b) && b == 36);
    CHECK(g4_row_size(G4_TYPE_Q6_K, 512, &b) && b == 420);
    CHECK(g4_row_size(G4_TYPE_F32, 0, &b) && b == 0);
    CHECK(!g4_row_size(G4_TYPE_Q4_0, 33, &b));
    CHECK(!g4_row_size(G4_TYPE_Q4_K, 128, &b));
    CHECK(!g4_row_size(4, 32, &b));
    CHECK(g4_row_size(G4_TYPE_F32, (uint64_t)1 << 61, &b) && b == (uint64_t)1 << 63);
    CHECK(!g4_row_size(G4_TYPE_F32, (uint64_t)1 << 62, &b));          /* 2^64 bytes */
    CHECK(!g4_row_size(G4_TYPE_Q8_0, UINT64_MAX - UINT64_MAX % 32, &b));
}

static void test_half_by_hand(void)
{
    /* f32 -> f16 */
    CHECK(g4_f32_to_f16(1.0f) == 0x3C00);
    CHECK(g4_f32_to_f16(-2.0f) == 0xC000);
    CHECK(g4_f32_to_f16(65504.0f) == 0x7BFF);            /* largest finite */
    CHECK(g4_f32_to_f16(65519.0f) == 0x7BFF);            /* below the tie */
    CHECK(g4_f32_to_f16(65520.0f) == 0x7C00);            /* tie -> even = inf */
    CHECK(g4_f32_to_f16(0x1p-24f) == 0x0001);            /* smallest subnormal */
    CHECK(g4_f32_to_f16(0x1p-25f) == 0x0000);            /* tie -> even zero */
    CHECK(g4_f32_to_f16(0x1.8p-25f) == 0x0001);          /* above the tie */
    CHECK(g4_f32_to_f16(0x1.8p-24f) == 0x0002);          /* 1.5 ulp: tie -> even 2 */
    CHECK(g4_f32_to_f16(0x1.ff8p-15f) == 0x03FF);        /* 1023 ulp: largest subnormal */
    CHECK(g4_f32_to_f16(0x1.ffcp-15f) == 0x0400);        /* 1023.5 ulp: tie -> even = min normal */
    CHECK(g4_f32_to_f16(0x1p-14f) == 0x0400);
    CHECK(g4_f32_to_f16(1.0f + 0x1p-11f) == 0x3C00);     /* tie -> even */
    CHECK(g4_f32_to_f16(1.0f + 0x3p-11f) == 0x3C02);     /* tie -> even (up) */
    CHECK(g4_f32_to_f16(0.1f) == 0x2E66);
    CHECK(g4_f32_to_f16(-0.0f) == 0x8000);
    CHECK(g4_f32_to_f16(INFINITY) == 0x7C00);
    CHECK(g4_f32_to_f16(-INFINITY) == 0xFC00);
    CHECK(g4_f32_to_f16(NAN) == 0x7E00);
    CHECK(g4_f32_to_f16(1e-30f) == 0x0000);
    /* f16 -> f32 */
    CHECK(g4_f16_to_f32(0x3C00) == 1.0f);
    CHECK(g4_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(g4_f16_to_f32(0x03FF) == 1023 * 0x1p-24f);
    CHECK(g4_f16_to_f32(0x7BFF) == 65504.0f);
    CHECK(g4_f16_to_f32(0x3555) == 0x1.554p-2f);
    CHECK(g4_f16_to_f32(0xFC00) == -INFINITY);
    CHECK(fbits(g4_f16_to_f32(0x8000)) == 0x80000000u);
    CHECK(isnan(g4_f16_to_f32(0x7E00)));
    /* bf16 */
    CHECK(g4_f32_to_bf16(1.0f) == 0x3F80);
    CHECK(g4_f32_to_bf16(1.00390625f) == 0x3F80);                 /* 1+2^-8: tie -> even */
    CHECK(g4_f32_to_bf16(1.01171875f) == 0x3F82);                 /* 1+3*2^-8: tie -> even (up) */
    CHECK(g4_f32_to_bf16(1.00390625f + 0x1p-20f) == 0x3F81);      /* just above the tie */
    CHECK(g4_f32_to_bf16(-2.0f) == 0xC000);
    CHECK(g4_f32_to_bf16(INFINITY) == 0x7F80);
    CHECK(g4_f32_to_bf16(bitsf(0x7F7FFFFFu)) == 0x7F80);          /* FLT_MAX rounds to inf */
    CHECK(g4_f32_to_bf16(bitsf(0x7F800001u)) == 0x7FC0);          /* sNaN -> quiet */
    CHECK(g4_f32_to_bf16(bitsf(0xFFC12345u)) == 0xFFC1);          /* qNaN payload kept */
    CHECK(g4_bf16_to_f32(0x3F80) == 1.0f);
    CHECK(g4_bf16_to_f32(0xC0A0) == -5.0f);
    CHECK(fbits(g4_bf16_to_f32(0x0001)) == 0x00010000u);
}

static void test_q8_0_by_hand(void)
{
    float x[32] = { 127, -127, 2.5f, -2.5f, 0.49f, -0.5f, 1.5f, 100.4f };
    uint8_t q[34];
    /* amax 127 -> d = 1 exactly, id = 1; roundf ties go away from zero */
    const uint8_t want[34] = { 0x00, 0x3C, 0x7F, 0x81, 0x03, 0xFD, 0x00, 0xFF, 0x02, 0x64 };
    g4_quantize_row(G4_TYPE_Q8_0, x, q, 32);
    CHECK(memcmp(q, want, 34) == 0);
    float y[32];
    const float wy[8] = { 127, -127, 3, -3, 0, -1, 2, 100 };
    g4_dequantize_row(G4_TYPE_Q8_0, want, y, 32);
    int ok = 1;
    for (int i = 0; i < 32; i++) ok &= y[i] == (i < 8 ? wy[i] : 0.0f);
    CHECK(ok);
    float ones[32];
    for (int i = 0; i < 32; i++) ones[i] = 1.0f;
    CHECK(g4_dot_row(G4_TYPE_Q8_0, want, ones, 32) == 101.0f);
}

static void test_q4_0_by_hand(void)
{
    float x[32] = { -8, 7, 7.6f, -0.5f, 0.5f, -3.2f };
    x[16] = 2;
    /* max = -8 -> d = 1, id = 1; q = min(15, trunc(x + 8.5)) */
    uint8_t want[18] = { 0x00, 0x3C, 0xA0, 0x8F, 0x8F, 0x88, 0x89, 0x85 };
    for (int i = 8; i < 18; i++) want[i] = 0x88;
    uint8_t q[18];
    g4_quantize_row(G4_TYPE_Q4_0, x, q, 32);
    CHECK(memcmp(q, want, 18) == 0);
    float y[32];
    g4_dequantize_row(G4_TYPE_Q4_0, want, y, 32);
    const float wy[6] = { -8, 7, 7, 0, 1, -3 };
    int ok = 1;
    for (int i = 0; i < 32; i++) ok &= y[i] == (i < 6 ? wy[i] : i == 16 ? 2.0f : 0.0f);
    CHECK(ok);
}

static void test_q5_0_by_hand(void)
{
    float x[32] = { -16, 15 };
    x[17] = 1;
    /* d = 1; q = min(31, trunc(x + 16.5)): 0, 31, 16..., q[17] = 17.
     * qh: 5th bit of every q except q[0] -> 0xFFFFFFFE */
    uint8_t want[22] = { 0x00, 0x3C, 0xFE, 0xFF, 0xFF, 0xFF, 0x00, 0x1F };
    uint8_t q[22];
    g4_quantize_row(G4_TYPE_Q5_0, x, q, 32);
    CHECK(memcmp(q, want, 22) == 0);
    float y[32];
    g4_dequantize_row(G4_TYPE_Q5_0, want, y, 32);
    int ok = 1;
    for (int i = 0; i < 32; i++) ok &= y[i] == (i == 0 ? -16.0f : i == 1 ? 15.0f : i == 17 ? 1.0f : 0.0f);
    CHECK(ok);
}

static void test_q4_K_by_hand(void)
{
    /* d = 1.0, dmin = 0.5; sub-block 0: sc 2, m 3; sub-block 1: sc 1, m 0;
     * sub-block 4: sc = 1 | (top bits of byte 0 = 1) << 4 = 17, m = 2. */
    uint8_t b[144] = { 0 };
    b[0] = 0x00; b[1] = 0x3C;           /* d */
    b[2] = 0x00; b[3] = 0x38;           /* dmin */
    uint8_t *sc = b + 4, *qs = b + 16;
    sc[0] = 2 | 0x40; sc[4] = 3; sc[1] = 1; sc[8] = 0x21;
    qs[0] = 0x75;                        /* elem 0: q 5; elem 32: q 7 */
    qs[64] = 0x03;                       /* elem 128: q 3 */
    float y[256];
    g4_dequantize_row(G4_TYPE_Q4_K, b, y, 256);
    int ok = 1;
    for (int i = 0; i < 256; i++) {
        float w = 0;
        if (i == 0) w = 8.5f;            /* 2*5 - 0.5*3 */
        else if (i < 32) w = -1.5f;
        else if (i == 32) w = 7;
        else if (i == 128) w = 50;       /* 17*3 - 0.5*2 */
        else if (i > 128 && i < 160) w = -1;
        ok &= y[i] == w;
    }
    CHECK(ok);
}

static void test_q6_K_by_hand(void)
{
    uint8_t b[210] = { 0 };
    uint8_t *ql = b, *qh = b + 128;
    int8_t *sc = (int8_t *)(b + 192);
    b[208] = 0x00; b[209] = 0x38;        /* d = 0.5 */
    sc[0] = 3; sc[4] = -2;
    ql[0] = 0xAF;                        /* elem 0 low 0xF, elem 64 low 0xA */
    qh[0] = 0x12;                        /* elem 0 high 2, elem 64 high 1 */
    float y[256];
    g4_dequantize_row(G4_TYPE_Q6_K, b, y, 256);
    int ok = 1;
    for (int i = 0; i < 256; i++) {
        float w = 0;
        if (i == 0) w = 22.5f;           /* 0.5*3*(47-32) */
        else if (i < 16) w = -48;        /* 0.5*3*(0-32) */
        else if (i == 64) w = 6;         /* 0.5*-2*(26-32) */
        else if (i > 64 && i < 80) w = 32;
        ok &= y[i] == w;
    }
    CHECK(ok);
}

/* ---------------------------------------------------------- data sources */

static uint64_t rng_state;
static uint64_t rnd64(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rndu(void) { return (double)(rnd64() >> 11) * 0x1p-53; }
static float rndn(void)
{
    double u1 = rndu(), u2 = rndu();
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

enum { N_DIST = 15 };
static const char *const DIST_NAME[N_DIST] = {
    "gauss", "uniform", "zeros", "tiny", "denormal", "outliers", "positive",
    "negative", "constant", "ties", "huge", "sparse", "underflow", "spike", "mixed-scale",
};

static void gen(int dist, float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float g = rndn();
        float v;
        switch (dist) {
        case 0: v = g; break;
        case 1: v = (float)(2 * rndu() - 1); break;
        case 2: v = 0; break;
        case 3: v = g * 1e-6f; break;
        case 4: v = g * 1e-39f; break;                       /* f32 denormals */
        case 5: v = (i % 97 == 13) ? g * 1000 : g; break;
        case 6: v = (float)rndu(); break;
        case 7: v = -(float)rndu() - 0.25f; break;
        case 8: v = 0.3f; break;
        case 9: v = (float)((int)(rnd64() % 33) - 16) * 0.5f; break; /* exact halves */
        case 10: v = g * 1e5f; break;                        /* scales overflow f16 */
        case 11: v = (rnd64() % 16 == 0) ? g : 0; break;
        case 12: v = g * 1e-20f; break;                      /* scales underflow f16 */
        case 13: v = (i % 256 == 77) ? 1e3f : g * 1e-3f; break;
        default: v = g * powf(10.0f, (float)((i / 16) % 7) - 3); break;
        }
        x[i] = v;
    }
}

/* ------------------------------------------------------------ 2. oracle */

typedef size_t (*chunk_fn)(int, const float *, void *, int64_t, int64_t, int64_t, const float *);
typedef void (*deq_fn)(const void *, float *, int64_t);
typedef void (*qref_fn)(const float *, void *, int64_t);
typedef void (*h2f_fn)(const uint16_t *, float *, int64_t);
typedef void (*f2h_fn)(const float *, uint16_t *, int64_t);

static struct {
    void *h;
    chunk_fn chunk;
    h2f_fn f16_to_f32, bf16_to_f32;
    f2h_fn f32_to_f16, f32_to_bf16;
    qref_fn q8_K_ref;
    const char *(*type_name)(int);
    int64_t (*blck_size)(int);
    size_t (*type_size)(int);
    deq_fn deq[64];
} O;

static void *sym(const char *name)
{
    void *p = dlsym(O.h, name);
    if (!p) fprintf(stderr, "ggml reference: missing symbol %s\n", name);
    return p;
}

static bool oracle_load(void)
{
    const char *dir = getenv("G4_GGML_LIB_DIR");
    if (!dir || !*dir) dir = DEFAULT_GGML_DIR;
    char path[4096];
    snprintf(path, sizeof path, "%s/libggml-base.so", dir);
    O.h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!O.h) {
        printf("SKIP: ggml reference library not found at %s (run scripts/get-llama-oracle.sh)\n", path);
        return false;
    }
    /* POSIX guarantees data<->function pointer conversion for dlsym results;
     * memcpy keeps -Wpedantic quiet. */
#define LOAD(field, name) do { void *p_ = sym(name); memcpy(&O.field, &p_, sizeof p_); } while (0)
    LOAD(chunk, "ggml_quantize_chunk");
    LOAD(f16_to_f32, "ggml_fp16_to_fp32_row");
    LOAD(bf16_to_f32, "ggml_bf16_to_fp32_row");
    LOAD(f32_to_f16, "ggml_fp32_to_fp16_row");
    LOAD(f32_to_bf16, "ggml_fp32_to_bf16_row_ref");
    LOAD(q8_K_ref, "quantize_row_q8_K_ref");
    LOAD(type_name, "ggml_type_name");
    LOAD(blck_size, "ggml_blck_size");
    LOAD(type_size, "ggml_type_size");
    LOAD(deq[G4_TYPE_Q4_0], "dequantize_row_q4_0");
    LOAD(deq[G4_TYPE_Q4_1], "dequantize_row_q4_1");
    LOAD(deq[G4_TYPE_Q5_0], "dequantize_row_q5_0");
    LOAD(deq[G4_TYPE_Q5_1], "dequantize_row_q5_1");
    LOAD(deq[G4_TYPE_Q8_0], "dequantize_row_q8_0");
    LOAD(deq[G4_TYPE_Q2_K], "dequantize_row_q2_K");
    LOAD(deq[G4_TYPE_Q3_K], "dequantize_row_q3_K");
    LOAD(deq[G4_TYPE_Q4_K], "dequantize_row_q4_K");
    LOAD(deq[G4_TYPE_Q5_K], "dequantize_row_q5_K");
    LOAD(deq[G4_TYPE_Q6_K], "dequantize_row_q6_K");
    LOAD(deq[G4_TYPE_Q8_K], "dequantize_row_q8_K");
#undef LOAD
    bool ok = O.chunk && O.f16_to_f32 && O.bf16_to_f32 && O.f32_to_f16 && O.f32_to_bf16 &&
              O.q8_K_ref && O.type_name && O.blck_size && O.type_size;
    for (size_t i = 0; i < N_SUPPORTED; i++) {
        uint32_t t = SUPPORTED[i];
        if (t != G4_TYPE_F32 && t != G4_TYPE_F16 && t != G4_TYPE_BF16) ok = ok && O.deq[t];
    }
    CHECKF(ok, "ggml reference library at %s lacks expected symbols", path);
    printf("ggml reference: %s\n", path);
    return ok;
}

static void oracle_type_table(void)
{
    /* every id up to the library's last known type (q2_0 = 42) */
    int bad = 0;
    for (int id = 0; id <= 42; id++) {
        const g4_type_traits *t = g4_type_get((uint32_t)id);
        const size_t ts = O.type_size(id);
        const int64_t bs = O.blck_size(id);
        if (ts == 0 || bs == 0) {                /* removed id in ggml */
            if (t) { bad++; fprintf(stderr, "type %d: ggml says removed, we know it\n", id); }
            continue;
        }
        if (!t || t->blck != (uint64_t)bs || t->type_size != ts || strcmp(t->name, O.type_name(id))) {
            bad++;
            fprintf(stderr, "type %d: ggml %s/%lld/%zu vs ours %s/%u/%u\n", id, O.type_name(id),
                    (long long)bs, ts, t ? t->name : "NULL", t ? t->blck : 0, t ? t->type_size : 0);
        }
    }
    CHECKF(bad == 0, "%d type table mismatches", bad);
}

static void oracle_halves(void)
{
    /* all 65536 halves -> f32, bit for bit */
    enum { NH = 65536 };
    uint16_t *h = malloc(NH * sizeof *h);
    float *a = malloc(NH * sizeof *a), *b = malloc(NH * sizeof *b);
    for (int i = 0; i < NH; i++) h[i] = (uint16_t)i;
    O.f16_to_f32(h, a, NH);
    int bad = 0;
    for (int i = 0; i < NH; i++) bad += fbits(a[i]) != fbits(g4_f16_to_f32(h[i]));
    CHECKF(bad == 0, "f16->f32: %d of 65536 differ", bad);
    O.bf16_to_f32(h, a, NH);
    bad = 0;
    for (int i = 0; i < NH; i++) bad += fbits(a[i]) != fbits(g4_bf16_to_f32(h[i]));
    CHECKF(bad == 0, "bf16->f32: %d of 65536 differ", bad);

    /* f32 -> f16/bf16: a strided sweep of all bit patterns plus every
     * rounding midpoint (and its neighbours) of both formats */
    enum { CH = 1 << 16 };
    float *x = malloc(CH * sizeof *x);
    uint16_t *g = malloc(CH * sizeof *g);
    long bad16 = 0, badbf = 0, total = 0;
    uint64_t u = 0;
    int phase = 0;
    uint32_t mid = 0;
    for (;;) {
        int n = 0;
        while (n < CH) {
            if (phase == 0) {                          /* stride sweep */
                if (u > 0xffffffffull) { phase = 1; mid = 0; continue; }
                x[n++] = bitsf((uint32_t)u);
                u += 4093;
            } else if (phase == 1) {                   /* f16 midpoints */
                if (mid >= 0x10000) { phase = 2; mid = 0; continue; }
                uint32_t s = mid & 0x8000 ? 0x80000000u : 0;
                float lo = g4_f16_to_f32((uint16_t)(mid & 0x7fff));
                float hi = g4_f16_to_f32((uint16_t)((mid & 0x7fff) + 1));
                mid++;
                if (!isfinite(lo) || !isfinite(hi)) continue;
                uint32_t m = fbits(0.5f * lo + 0.5f * hi) | s;   /* exact midpoint */
                for (int k = -2; k <= 2 && n < CH; k++) x[n++] = bitsf(m + (uint32_t)k);
            } else if (phase == 2) {                   /* bf16 midpoints */
                if (mid >= 0x10000) break;
                uint32_t m = (mid << 16) | 0x8000u;
                mid++;
                for (int k = -1; k <= 1 && n < CH; k++) x[n++] = bitsf(m + (uint32_t)k);
            }
        }
        if (n == 0) break;
        O.f32_to_f16(x, g, n);
        for (int i = 0; i < n; i++) bad16 += g[i] != g4_f32_to_f16(x[i]);
        O.f32_to_bf16(x, g, n);
        for (int i = 0; i < n; i++) badbf += g[i] != g4_f32_to_bf16(x[i]);
        total += n;
        if (n < CH) break;
    }
    CHECKF(bad16 == 0, "f32->f16: %ld of %ld differ", bad16, total);
    CHECKF(badbf == 0, "f32->bf16: %ld of %ld differ", badbf, total);
    printf("  halves: %ld f32 patterns + all 65536 halves checked\n", total);
    free(h); free(a); free(b); free(x); free(g);
}

/* ggml's to-float for one buffer of n elements */
static void ggml_deq(uint32_t type, const void *src, float *dst, int64_t n)
{
    switch (type) {
    case G4_TYPE_F32: memcpy(dst, src, (size_t)n * 4); break;
    case G4_TYPE_F16: O.f16_to_f32(src, dst, n); break;
    case G4_TYPE_BF16: O.bf16_to_f32(src, dst, n); break;
    default: O.deq[type](src, dst, n); break;
    }
}

static void ggml_quant(uint32_t type, const float *src, void *dst, int64_t nrows, int64_t n)
{
    if (type == G4_TYPE_Q8_K) {        /* not handled by ggml_quantize_chunk */
        O.q8_K_ref(src, dst, nrows * n);
        return;
    }
    size_t r = O.chunk((int)type, src, dst, 0, nrows, n, NULL);
    if (r != (size_t)nrows * row_bytes(type, n)) {
        fprintf(stderr, "ggml_quantize_chunk returned %zu\n", r);
        abort();
    }
}

static void oracle_type(uint32_t type)
{
    const g4_type_traits *t = g4_type_get(type);
    static const int64_t lens32[] = { 32, 64, 96, 256, 1056 };
    static const int64_t lens256[] = { 256, 512, 2816 };
    static const int64_t lens1[] = { 1, 7, 256, 1000 };
    const int64_t *lens = t->blck == 32 ? lens32 : t->blck == 256 ? lens256 : lens1;
    const int nlens = t->blck == 32 ? 5 : t->blck == 256 ? 3 : 4;
    int nq = 0, nd = 0, ndot = 0, bq = 0, bd = 0, bdot = 0;

    for (int dist = 0; dist < N_DIST; dist++) {
        for (int li = 0; li < nlens; li++) {
            for (int nrows = 1; nrows <= 3; nrows += 2) {
                const int64_t n = lens[li];
                const size_t rb = row_bytes(type, n);
                rng_state = 0x1234567ull * (uint64_t)(dist + 1) + (uint64_t)n * 31 + (uint64_t)nrows;
                float *x = malloc((size_t)(nrows * n) * sizeof *x);
                float *v = malloc((size_t)n * sizeof *v);
                uint8_t *qg = calloc((size_t)nrows, rb), *qo = calloc((size_t)nrows, rb);
                float *dg = malloc((size_t)(nrows * n) * sizeof *dg);
                float *dn = malloc((size_t)(nrows * n) * sizeof *dn);
                gen(dist, x, nrows * n);
                for (int64_t i = 0; i < n; i++) v[i] = rndn();

                ggml_quant(type, x, qg, nrows, n);
                for (int r = 0; r < nrows; r++)
                    g4_quantize_row(type, x + r * n, qo + (size_t)r * rb, n);
                nq++;
                if (memcmp(qg, qo, (size_t)nrows * rb)) {
                    size_t off = 0;
                    while (qg[off] == qo[off]) off++;
                    if (bq++ < 5)
                        fprintf(stderr, "  %s %s n=%lld rows=%d: quant bytes differ at %zu (block %zu, byte %zu): ggml %02x ours %02x\n",
                                t->name, DIST_NAME[dist], (long long)n, nrows, off, off / t->type_size,
                                off % t->type_size, qg[off], qo[off]);
                }

                ggml_deq(type, qg, dg, nrows * n);
                for (int r = 0; r < nrows; r++)
                    g4_dequantize_row(type, qg + (size_t)r * rb, dn + r * n, n);
                nd++;
                if (memcmp(dg, dn, (size_t)(nrows * n) * sizeof(float))) {
                    int64_t k = 0;
                    while (fbits(dg[k]) == fbits(dn[k])) k++;
                    if (bd++ < 5)
                        fprintf(stderr, "  %s %s n=%lld: dequant differs at %lld: ggml %a ours %a\n",
                                t->name, DIST_NAME[dist], (long long)n, (long long)k, dg[k], dn[k]);
                }

                for (int r = 0; r < nrows; r++) {
                    double ref = 0, mag = 0;
                    int finite = 1;
                    for (int64_t i = 0; i < n; i++) {
                        const double p = (double)dg[r * n + i] * v[i];
                        ref += p;
                        mag += fabs(p);
                        finite &= isfinite(dg[r * n + i]);
                    }
                    if (!finite || !isfinite(mag)) continue;  /* overflowed f16 scales */
                    const float got = g4_dot_row(type, qg + (size_t)r * rb, v, n);
                    ndot++;
                    if (!(fabs(got - ref) <= 1e-5 * mag + 1e-37)) {
                        if (bdot++ < 5)
                            fprintf(stderr, "  %s %s n=%lld: dot %.9g vs %.9g (mag %.3g)\n", t->name,
                                    DIST_NAME[dist], (long long)n, got, ref, mag);
                    }
                }
                free(x); free(v); free(qg); free(qo); free(dg); free(dn);
            }
        }
    }
    /* extra random rows (random distribution and scale per row) so that rare
     * ties inside the K-quant scale searches get exercised */
    {
        const int64_t n = t->blck == 1 ? 512 : 8 * (int64_t)t->blck;
        const size_t rb = row_bytes(type, n);
        float *x = malloc((size_t)n * sizeof *x);
        uint8_t *qg = malloc(rb), *qo = malloc(rb);
        for (int rep = 0; rep < 200; rep++) {
            rng_state = 0xC0FFEEull + (uint64_t)rep * 7919 + type;
            const int dist = (int)(rnd64() % N_DIST);
            const float sc = powf(2.0f, (float)((int)(rnd64() % 41) - 20));
            gen(dist, x, n);
            for (int64_t i = 0; i < n; i++) x[i] *= sc;
            memset(qg, 0, rb);
            memset(qo, 0, rb);
            ggml_quant(type, x, qg, 1, n);
            g4_quantize_row(type, x, qo, n);
            nq++;
            if (memcmp(qg, qo, rb) && bq++ < 5)
                fprintf(stderr, "  %s random row %d (%s x %g): quant bytes differ\n", t->name, rep,
                        DIST_NAME[dist], sc);
        }
        free(x); free(qg); free(qo);
    }
    CHECKF(bq == 0, "%s: %d of %d quantization cases differ from ggml", t->name, bq, nq);
    CHECKF(bd == 0, "%s: %d of %d dequantization cases differ from ggml", t->name, bd, nd);
    CHECKF(bdot == 0, "%s: %d of %d dot products off", t->name, bdot, ndot);
    printf("  %-5s quantize %s (%d cases)  dequantize %s (%d)  dot %s (%d)\n", t->name,
           bq ? "MISMATCH" : "bit-exact", nq, bd ? "MISMATCH" : "bit-exact", nd,
           bdot ? "FAIL" : "ok", ndot);
}

static void test_oracle(void)
{
    if (!oracle_load()) return;
    oracle_type_table();
    oracle_halves();
    for (size_t i = 0; i < N_SUPPORTED; i++) oracle_type(SUPPORTED[i]);
}

/* ---------------------------------------------------------- 3. edge cases */

static void test_edges(void)
{
    float x[512], y[512];
    uint8_t q[2048];
    for (size_t ti = 0; ti < N_SUPPORTED; ti++) {
        const uint32_t type = SUPPORTED[ti];
        const g4_type_traits *t = g4_type_get(type);
        const int64_t n = t->blck == 1 ? 64 : 2 * (int64_t)t->blck;

        /* all zeros -> exact zeros back */
        memset(x, 0, sizeof x);
        memset(q, 0xAA, sizeof q);
        g4_quantize_row(type, x, q, n);
        g4_dequantize_row(type, q, y, n);
        int ok = 1;
        for (int64_t i = 0; i < n; i++) ok &= y[i] == 0.0f;
        CHECKF(ok, "%s: zeros do not round-trip", t->name);
        CHECKF(g4_dot_row(type, q, x, n) == 0.0f, "%s: dot of zeros", t->name);

        /* one huge value among small ones: it survives within the step of
         * its block, nothing becomes NaN/inf */
        rng_state = 99 + type;
        for (int64_t i = 0; i < n; i++) x[i] = rndn() * 1e-3f;
        x[5] = 3000.0f;
        g4_quantize_row(type, x, q, n);
        g4_dequantize_row(type, q, y, n);
        ok = 1;
        for (int64_t i = 0; i < n; i++) ok &= isfinite(y[i]);
        CHECKF(ok, "%s: non-finite output with an outlier", t->name);
        CHECKF(fabsf(y[5] - 3000.0f) <= 3000.0f * 0.07f, "%s: outlier 3000 -> %g", t->name, y[5]);

        /* denormal inputs: no NaN/inf anywhere */
        for (int64_t i = 0; i < n; i++) x[i] = rndn() * 1e-40f;
        g4_quantize_row(type, x, q, n);
        g4_dequantize_row(type, q, y, n);
        ok = 1;
        for (int64_t i = 0; i < n; i++) ok &= isfinite(y[i]);
        CHECKF(ok, "%s: non-finite output for denormal input", t->name);

        /* plain gaussian: reconstruction error sane for the bit width */
        for (int64_t i = 0; i < n; i++) x[i] = rndn();
        g4_quantize_row(type, x, q, n);
        g4_dequantize_row(type, q, y, n);
        double e2 = 0;
        for (int64_t i = 0; i < n; i++) e2 += (double)(y[i] - x[i]) * (y[i] - x[i]);
        const double rmse = sqrt(e2 / (double)n);
        const double lim = type == G4_TYPE_F32 ? 0 : type == G4_TYPE_F16 ? 1e-3 :
                           type == G4_TYPE_BF16 ? 5e-3 : type == G4_TYPE_Q8_0 || type == G4_TYPE_Q8_K ? 0.02 :
                           type == G4_TYPE_Q6_K ? 0.05 : type == G4_TYPE_Q2_K ? 0.5 :
                           type == G4_TYPE_Q3_K ? 0.3 : 0.2;
        CHECKF(rmse <= lim, "%s: gaussian rmse %g > %g", t->name, rmse, lim);
    }

    /* Q8_K all-zero block: d = 0, quants and sums zero */
    memset(x, 0, sizeof x);
    memset(q, 0xAA, sizeof q);
    g4_quantize_row(G4_TYPE_Q8_K, x, q, 256);
    int z = 1;
    for (int i = 0; i < 292; i++) z &= q[i] == 0;
    CHECK(z);
}

/* ------------------------------- 4. activation encoding and encoded dots */

/* Weight types with a llama.cpp matmul dot product, and their vec_dot_type
 * (ggml-cpu.c type_traits_cpu; the oracle check below re-reads it from the
 * library). */
static const uint32_t DOT_TYPES[][2] = {
    { G4_TYPE_F32, G4_TYPE_F32 },   { G4_TYPE_F16, G4_TYPE_F16 },   { G4_TYPE_BF16, G4_TYPE_BF16 },
    { G4_TYPE_Q4_0, G4_TYPE_Q8_0 }, { G4_TYPE_Q4_1, G4_TYPE_Q8_1 }, { G4_TYPE_Q5_0, G4_TYPE_Q8_0 },
    { G4_TYPE_Q5_1, G4_TYPE_Q8_1 }, { G4_TYPE_Q8_0, G4_TYPE_Q8_0 }, { G4_TYPE_Q2_K, G4_TYPE_Q8_K },
    { G4_TYPE_Q3_K, G4_TYPE_Q8_K }, { G4_TYPE_Q4_K, G4_TYPE_Q8_K }, { G4_TYPE_Q5_K, G4_TYPE_Q8_K },
    { G4_TYPE_Q6_K, G4_TYPE_Q8_K },
};
#define N_DOT_TYPES (sizeof DOT_TYPES / sizeof DOT_TYPES[0])
static const uint32_t ACT_TYPES[] = { G4_TYPE_Q8_0, G4_TYPE_Q8_1, G4_TYPE_Q8_K, G4_TYPE_F16, G4_TYPE_BF16, G4_TYPE_F32 };
#define N_ACT_TYPES (sizeof ACT_TYPES / sizeof ACT_TYPES[0])

/* ragged multi-block row lengths per block size */
static int dot_lens(uint32_t type, const int64_t **lens)
{
    static const int64_t l32[] = { 32, 96, 160, 1056, 2080 };
    static const int64_t l256[] = { 256, 768, 2816 };
    static const int64_t l1[] = { 1, 7, 33, 100, 1000, 1027 };
    const uint32_t b = g4_type_get(type)->blck;
    *lens = b == 32 ? l32 : b == 256 ? l256 : l1;
    return b == 32 ? 5 : b == 256 ? 3 : 6;
}

static size_t act_bytes(uint32_t type, int64_t n)
{
    uint64_t b = 0;
    if (!g4_act_row_size(type, (uint64_t)n, &b)) {
        fprintf(stderr, "act_row_size failed for type %u n %lld\n", type, (long long)n);
        abort();
    }
    return (size_t)b;
}

static void test_vec_dot_type(void)
{
    int bad = 0;
    for (size_t i = 0; i < N_DOT_TYPES; i++)
        bad += g4_vec_dot_type(DOT_TYPES[i][0]) != DOT_TYPES[i][1];
    CHECKF(bad == 0, "%d vec_dot_type mismatches", bad);
    CHECK(g4_vec_dot_type(G4_TYPE_Q8_K) == G4_TYPE_NONE);
    CHECK(g4_vec_dot_type(G4_TYPE_Q8_1) == G4_TYPE_NONE);
    CHECK(g4_vec_dot_type(16) == G4_TYPE_NONE);           /* iq2_xxs: not here */
    CHECK(g4_vec_dot_type(4) == G4_TYPE_NONE);
    CHECK(g4_vec_dot_type(0xffffffffu) == G4_TYPE_NONE);
    CHECK(isnan(g4_vec_dot(G4_TYPE_Q8_K, NULL, NULL, 256)));
    CHECK(g4_vec_dot(G4_TYPE_Q4_0, NULL, NULL, 0) == 0.0f);
    uint64_t b = 0;
    CHECK(g4_act_row_size(G4_TYPE_Q4_0, 64, &b) && b == 68);
    CHECK(g4_act_row_size(G4_TYPE_Q5_1, 64, &b) && b == 72);
    CHECK(g4_act_row_size(G4_TYPE_Q4_K, 512, &b) && b == 584);
    CHECK(g4_act_row_size(G4_TYPE_BF16, 7, &b) && b == 14);
    CHECK(g4_act_row_size(G4_TYPE_F32, 7, &b) && b == 28);
    CHECK(!g4_act_row_size(G4_TYPE_Q4_0, 33, &b));
    CHECK(!g4_act_row_size(G4_TYPE_Q8_K, 256, &b));
}

static void test_act_by_hand(void)
{
    /* amax 127 -> d = 1 (f16 0x3C00), multiplier 127/127 = 1: ties round to
     * even (ggml's AVX quantize_row_q8_0), not away from zero (the _ref) */
    float x[32] = { 127, 0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 126.5f, -3.5f, 0.49f, -0.51f };
    const uint8_t want0[34] = { 0x00, 0x3C, 0x7F, 0x00, 0x02, 0x02, 0x00, 0xFE, 0x7E, 0xFC, 0x00, 0xFF };
    uint8_t q[36];
    memset(q, 0xAA, sizeof q);
    g4_quantize_act(G4_TYPE_Q8_0, x, q, 32);
    CHECK(memcmp(q, want0, 34) == 0);
    /* Q8_1: same quants after d and s = f16(d * sum) = f16(250) = 0x5BD0 */
    memset(q, 0xAA, sizeof q);
    g4_quantize_act(G4_TYPE_Q8_1, x, q, 32);
    CHECK(q[0] == 0x00 && q[1] == 0x3C && q[2] == 0xD0 && q[3] == 0x5B);
    CHECK(memcmp(q + 4, want0 + 2, 32) == 0);

    /* a block of f32 denormals: 127/amax overflows to inf, every product is
     * inf or NaN (0*inf), which cvtps2dq turns into INT32_MIN -> -128;
     * d = amax/127 underflows to 0; Q8_1's wrapped sum of 32 INT32_MIN is 0 */
    for (int i = 0; i < 32; i++) x[i] = i == 3 ? 0.0f : 0x1p-149f;
    g4_quantize_act(G4_TYPE_Q8_1, x, q, 32);
    int ok = q[0] == 0 && q[1] == 0 && q[2] == 0 && q[3] == 0;
    for (int i = 0; i < 32; i++) ok &= q[4 + i] == 0x80;
    CHECK(ok);

    /* zeros: d = 0, multiplier 0, quants 0 */
    memset(x, 0, sizeof x);
    memset(q, 0xAA, sizeof q);
    g4_quantize_act(G4_TYPE_Q8_0, x, q, 32);
    ok = 1;
    for (int i = 0; i < 34; i++) ok &= q[i] == 0;
    CHECK(ok);

    /* encoded dot by hand: Q8_0 weights d = 0.5, quants j - 16; activations
     * d = 2, quants 1 -> (sum_j (j - 16)) * (0.5 * 2) = -16 */
    uint8_t w[34], a[34];
    w[0] = 0x00; w[1] = 0x38;            /* 0.5 */
    a[0] = 0x00; a[1] = 0x40;            /* 2.0 */
    for (int j = 0; j < 32; j++) { w[2 + j] = (uint8_t)(int8_t)(j - 16); a[2 + j] = 1; }
    CHECK(g4_vec_dot(G4_TYPE_Q8_0, w, a, 32) == -16.0f);
    /* Q4_0 weights d = 1, all nibbles 9 (value +1) against the same: 32*2 */
    uint8_t w4[18] = { 0x00, 0x3C };
    memset(w4 + 2, 0x99, 16);
    CHECK(g4_vec_dot(G4_TYPE_Q4_0, w4, a, 32) == 64.0f);
    /* F16: 1.5 * 2 + 0.25 * (-4) = 2, accumulated in double */
    const uint16_t h1[2] = { 0x3E00, 0x3400 }, h2[2] = { 0x4000, 0xC400 };
    CHECK(g4_vec_dot(G4_TYPE_F16, h1, h2, 2) == 2.0f);
}

/* sum(dequant(w) * dequant(a)) in double, plus the magnitude that rounding
 * errors scale with.  Q8_1 stores s = f16(d * sum(qs)) rounded to half
 * precision, and ggml's dot uses s (m * s) rather than the dequantized values:
 * correct for that.  The magnitude is sum(|w*a|), but at least
 * sum over blocks of max|w in block| * sum|a in block|: the kernels form
 * per-block terms like dmin*m*sum(a) or d*sc*32*sum(a) (offsets, mins) that
 * cancel only in the final float sums, so their rounding scales with that
 * bound, not with |w*a| (think of a block whose weights are all zero but an
 * outlier). */
static double ref_dot(uint32_t type, const void *w, const void *a, int64_t n, double *mag)
{
    const uint32_t vdt = g4_vec_dot_type(type);
    float *wf = malloc((size_t)n * sizeof *wf), *af = malloc((size_t)n * sizeof *af);
    g4_dequantize_row(type, w, wf, n);
    g4_dequantize_row(vdt, a, af, n);
    double s = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        const double p = (double)wf[i] * af[i];
        s += p;
        m += fabs(p);
    }
    const uint32_t B = g4_type_get(type)->blck;
    double bound = 0;
    if (B > 1) {
        for (int64_t b0 = 0; b0 < n; b0 += B) {
            double mx = 0, sa = 0;
            for (int64_t i = b0; i < b0 + B; i++) {
                mx = fmax(mx, fabs((double)wf[i]));
                sa += fabs((double)af[i]);
            }
            bound += mx * sa;
        }
    }
    if (vdt == G4_TYPE_Q8_1) {
        const size_t wb = g4_type_get(type)->type_size;
        for (int64_t b = 0; b < n / 32; b++) {
            const uint8_t *ab = (const uint8_t *)a + 36 * b, *wbk = (const uint8_t *)w + wb * b;
            const double dy = g4_f16_to_f32((uint16_t)(ab[0] | ab[1] << 8));
            const double sy = g4_f16_to_f32((uint16_t)(ab[2] | ab[3] << 8));
            const double mw = g4_f16_to_f32((uint16_t)(wbk[2] | wbk[3] << 8));
            int qsum = 0;
            for (int j = 0; j < 32; j++) qsum += (int8_t)ab[4 + j];
            s += mw * (sy - dy * qsum);
            m += fabs(mw * sy);
        }
    }
    free(wf); free(af);
    *mag = m > bound ? m : bound;
    return s;
}

/* random weight rows (quantized with our ggml-identical quantizer) and
 * activation rows of distribution `dist`, encoded with g4_quantize_act */
static void make_pair(uint32_t type, int dist, int64_t n, uint64_t seed, void *w, void *a, float *xa)
{
    float *xw = malloc((size_t)n * sizeof *xw);
    rng_state = seed;
    gen(rng_state % 3 == 0 ? 5 : 0, xw, n);                  /* gaussian, sometimes outliers */
    g4_quantize_row(type, xw, w, n);
    gen(dist, xa, n);
    g4_quantize_act(g4_vec_dot_type(type), xa, a, n);
    free(xw);
}

/* (c): g4_vec_dot against the dequantized reference, no ggml involved */
static void test_vec_dot_self(void)
{
    for (size_t ti = 0; ti < N_DOT_TYPES; ti++) {
        const uint32_t type = DOT_TYPES[ti][0];
        const int64_t *lens;
        const int nl = dot_lens(type, &lens);
        int cases = 0, bad = 0;
        double worst = 0;
        for (int dist = 0; dist < N_DIST; dist++) {
            for (int li = 0; li < nl; li++) {
                const int64_t n = lens[li];
                uint8_t *w = malloc(row_bytes(type, n)), *a = malloc(act_bytes(type, n));
                float *xa = malloc((size_t)n * sizeof *xa);
                make_pair(type, dist, n, 0xD07ull * (uint64_t)(dist + 1) + (uint64_t)n * 131 + type, w, a, xa);
                double mag;
                const double ref = ref_dot(type, w, a, n, &mag);
                const float got = g4_vec_dot(type, w, a, n);
                if (isfinite(ref) && isfinite(mag)) {
                    cases++;
                    const double err = fabs(got - ref);
                    if (mag > 1e-30 && err / mag > worst) worst = err / mag;
                    if (!(err <= 1e-5 * mag + 1e-37)) {
                        if (bad++ < 5)
                            fprintf(stderr, "  %s %s n=%lld: vec_dot %.9g vs dequantized %.9g (mag %.3g)\n",
                                    g4_type_get(type)->name, DIST_NAME[dist], (long long)n, got, ref, mag);
                    }
                }
                free(w); free(a); free(xa);
            }
        }
        CHECKF(bad == 0 && cases > 0, "%s: %d of %d encoded dots off the dequantized reference",
               g4_type_get(type)->name, bad, cases);
        printf("  %-5s vec_dot vs dequantized dot: %s (%d cases, worst error %.1e of magnitude)\n",
               g4_type_get(type)->name, bad ? "FAIL" : "ok", cases, worst);
    }
}

/* ----------------------------- 4b. against ggml's CPU backend (oracle) */

typedef void (*from_float_fn)(const float *, void *, int64_t);
typedef void (*vec_dot_fn)(int, float *, size_t, const void *, size_t, const void *, size_t, int);
/* ggml-cpu.h struct ggml_type_traits_cpu of this llama.cpp version */
typedef struct {
    from_float_fn from_float;
    vec_dot_fn vec_dot;
    int vec_dot_type;    /* enum ggml_type */
    int64_t nrows;
} cpu_traits;
typedef const cpu_traits *(*get_traits_fn)(int);

typedef struct {
    void *h;
    char name[64];
    int score;
    get_traits_fn traits;
} cpu_lib;

static bool cpu_open(const char *dir, const char *variant, cpu_lib *L)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/libggml-cpu-%s.so", dir, variant);
    memset(L, 0, sizeof *L);
    snprintf(L->name, sizeof L->name, "%s", variant);
    L->h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!L->h)
        return false;
    void *p = dlsym(L->h, "ggml_backend_score");
    int (*score)(void) = NULL;
    memcpy(&score, &p, sizeof p);
    p = dlsym(L->h, "ggml_get_type_traits_cpu");
    memcpy(&L->traits, &p, sizeof p);
    p = dlsym(L->h, "ggml_cpu_init");
    void (*init)(void) = NULL;
    memcpy(&init, &p, sizeof p);
    L->score = score ? score() : 0;
    if (!L->traits || !init || L->score <= 0) {   /* not runnable on this CPU */
        dlclose(L->h);
        L->h = NULL;
        return false;
    }
    init();   /* fills the fp16 tables the non-F16C builds use */
    return true;
}

/* (a): g4_quantize_act == the backend's from_float, byte for byte */
static void oracle_act(const cpu_lib *L)
{
    for (size_t ai = 0; ai < N_ACT_TYPES; ai++) {
        const uint32_t vdt = ACT_TYPES[ai];
        const cpu_traits *tr = L->traits((int)vdt);
        if (!tr->from_float) {
            /* F32 activations are used as they are (some builds list a copy) */
            CHECKF(vdt == G4_TYPE_F32, "%s: no from_float for %s", L->name, g4_type_get(vdt)->name);
            continue;
        }
        const uint32_t b = g4_type_get(vdt)->blck;
        static const int64_t l32[] = { 32, 64, 1056 }, l256[] = { 256, 2816 }, l1[] = { 1, 7, 256, 1000 };
        const int64_t *lens = b == 32 ? l32 : b == 256 ? l256 : l1;
        const int nl = b == 32 ? 3 : b == 256 ? 2 : 4;
        int cases = 0, bad = 0;
        for (int dist = 0; dist < N_DIST; dist++) {
            for (int li = 0; li < nl; li++) {
                for (int rep = 0; rep < 4; rep++) {
                    const int64_t n = lens[li];
                    const size_t rb = row_bytes(vdt, n);
                    float *x = malloc((size_t)n * sizeof *x);
                    uint8_t *qg = calloc(1, rb), *qo = calloc(1, rb);  /* calloc: ggml skips bsums of zero Q8_K blocks */
                    rng_state = 0xAC7ull * (uint64_t)(dist + 1) + (uint64_t)n * 7 + (uint64_t)rep * 1000003 + vdt;
                    gen(dist, x, n);
                    if (rep & 1) {                           /* random scale */
                        const float sc = powf(2.0f, (float)((int)(rnd64() % 41) - 20));
                        for (int64_t i = 0; i < n; i++) x[i] *= sc;
                    }
                    tr->from_float(x, qg, n);
                    g4_quantize_act(vdt, x, qo, n);
                    cases++;
                    if (memcmp(qg, qo, rb)) {
                        size_t off = 0;
                        while (qg[off] == qo[off]) off++;
                        if (bad++ < 5)
                            fprintf(stderr, "  %s from_float %s %s n=%lld rep %d: byte %zu: ggml %02x ours %02x\n",
                                    L->name, g4_type_get(vdt)->name, DIST_NAME[dist], (long long)n, rep, off, qg[off], qo[off]);
                    }
                    free(x); free(qg); free(qo);
                }
            }
        }
        CHECKF(bad == 0, "%s: %s: %d of %d activation rows differ from ggml's from_float", L->name,
               g4_type_get(vdt)->name, bad, cases);
        printf("  %-14s from_float %-5s %s (%d rows)\n", L->name, g4_type_get(vdt)->name,
               bad ? "MISMATCH" : "bit-exact", cases);
    }
}

/* (b): g4_vec_dot against the backend's vec_dot (SIMD: 1e-6 of the
 * magnitude) and, when `exact` is the plain x86-64 build, bit for bit against
 * its scalar ggml_vec_dot_*_generic / non-SIMD float dots. */
static void oracle_dot(const cpu_lib *L, const cpu_lib *exact)
{
    for (size_t ti = 0; ti < N_DOT_TYPES; ti++) {
        const uint32_t type = DOT_TYPES[ti][0], vdt = DOT_TYPES[ti][1];
        const cpu_traits *tr = L->traits((int)type);
        CHECKF(tr->vec_dot && tr->vec_dot_type == (int)vdt && tr->nrows == 1,
               "%s: %s: vec_dot_type %d (we use %u), nrows %lld", L->name, g4_type_get(type)->name,
               tr->vec_dot_type, vdt, (long long)tr->nrows);
        if (!tr->vec_dot || tr->vec_dot_type != (int)vdt) continue;
        vec_dot_fn gen_fn = NULL;
        if (exact) {
            if (type == G4_TYPE_F32 || type == G4_TYPE_F16 || type == G4_TYPE_BF16) {
                /* vec.cpp: the x64 build has no GGML_SIMD, so these are the
                 * scalar loops (float products, double sum) */
                gen_fn = exact->traits((int)type)->vec_dot;
            } else {
                char nm[96];
                snprintf(nm, sizeof nm, "ggml_vec_dot_%s_%s_generic", g4_type_get(type)->name, g4_type_get(vdt)->name);
                void *p = dlsym(exact->h, nm);
                memcpy(&gen_fn, &p, sizeof p);
            }
            CHECKF(gen_fn != NULL, "%s: no scalar dot for %s", exact->name, g4_type_get(type)->name);
        }
        const int64_t *lens;
        const int nl = dot_lens(type, &lens);
        int cases = 0, bad = 0, nexact = 0, bexact = 0;
        double worst = 0;
        for (int dist = 0; dist < N_DIST; dist++) {
            for (int li = 0; li < nl; li++) {
                for (int rep = 0; rep < 2; rep++) {
                    const int64_t n = lens[li];
                    uint8_t *w = malloc(row_bytes(type, n)), *a = malloc(act_bytes(type, n));
                    float *xa = malloc((size_t)n * sizeof *xa);
                    make_pair(type, dist, n, 0x5EEDull * (uint64_t)(dist + 1) + (uint64_t)n * 17 + (uint64_t)rep * 7777 + type,
                              w, a, xa);
                    double mag;
                    const double ref = ref_dot(type, w, a, n, &mag);
                    const float got = g4_vec_dot(type, w, a, n);
                    if (isfinite(ref) && isfinite(mag)) {
                        float s = NAN;
                        tr->vec_dot((int)n, &s, 0, w, 0, a, 0, 1);
                        cases++;
                        const double err = fabs((double)got - s);
                        if (mag > 1e-30 && err / mag > worst) worst = err / mag;
                        if (!(err <= 1e-6 * mag + 1e-37) && bad++ < 5)
                            fprintf(stderr, "  %s %s %s n=%lld: ours %.9g ggml %.9g exact %.9g (mag %.3g)\n", L->name,
                                    g4_type_get(type)->name, DIST_NAME[dist], (long long)n, got, s, ref, mag);
                        if (gen_fn) {
                            /* bit-exactness is the scalar twin's promise;
                             * g4_vec_dot may run a SIMD kernel (test_simd) */
                            const float got_s = g4_vec_dot_scalar(type, w, a, n);
                            float e = NAN;
                            gen_fn((int)n, &e, 0, w, 0, a, 0, 1);
                            nexact++;
                            if (fbits(e) != fbits(got_s) && bexact++ < 5)
                                fprintf(stderr, "  %s scalar %s %s n=%lld: ours %a ggml %a\n", exact->name,
                                        g4_type_get(type)->name, DIST_NAME[dist], (long long)n, got_s, e);
                        }
                    }
                    free(w); free(a); free(xa);
                }
            }
        }
        CHECKF(bad == 0 && cases > 0, "%s: %s: %d of %d dots differ from ggml's vec_dot by > 1e-6", L->name,
               g4_type_get(type)->name, bad, cases);
        if (gen_fn)
            CHECKF(bexact == 0, "%s: %s: %d of %d dots not bit-identical to the scalar kernel", exact->name,
                   g4_type_get(type)->name, bexact, nexact);
        printf("  %-14s vec_dot %-5s %s (%d cases, worst diff %.1e of magnitude)%s%s\n", L->name,
               g4_type_get(type)->name, bad ? "FAIL" : "ok", cases, worst,
               gen_fn ? "; x64 scalar kernel: " : "", gen_fn ? (bexact ? "MISMATCH" : "bit-exact") : "");
    }
}

static void test_oracle_cpu(void)
{
    const char *dir = getenv("G4_GGML_LIB_DIR");
    if (!dir || !*dir) dir = DEFAULT_GGML_DIR;
    /* the CPU backend variants llama.cpp ships; it loads the best-scoring one
     * this CPU can run (ggml_backend_score), so that is what the oracle runs */
    static const char *const variants[] = {
        "x64", "sse42", "sandybridge", "ivybridge", "piledriver", "haswell", "skylakex", "cannonlake",
        "cascadelake", "icelake", "cooperlake", "zen4", "alderlake", "sapphirerapids",
    };
    cpu_lib best = { 0 }, haswell = { 0 }, x64 = { 0 };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        cpu_lib L;
        if (!cpu_open(dir, variants[i], &L)) continue;
        if (!strcmp(variants[i], "x64")) x64 = L;
        else if (!strcmp(variants[i], "haswell")) haswell = L;
        else if (L.score > best.score) {
            if (best.h) dlclose(best.h);
            best = L;
            continue;
        } else {
            dlclose(L.h);
            continue;
        }
    }
    if (!best.h && !haswell.h && !x64.h) {
        printf("SKIP: ggml CPU backend (libggml-cpu-*.so) not found or not runnable in %s\n", dir);
        return;
    }
    if (haswell.h && haswell.score > best.score) { cpu_lib t = best; best = haswell; haswell = t; }
    printf("ggml CPU backend: runtime variant %s (score %d)%s%s%s\n", best.h ? best.name : "none",
           best.score, haswell.h ? ", also haswell (AVX2)" : "", x64.h ? ", scalar kernels from x64" : "",
           "");
    const cpu_lib *libs[2] = { best.h ? &best : NULL, haswell.h ? &haswell : NULL };
    for (int i = 0; i < 2; i++) {
        if (!libs[i]) continue;
        oracle_act(libs[i]);
        oracle_dot(libs[i], i == 0 && x64.h ? &x64 : NULL);
    }
    if (best.h) dlclose(best.h);
    if (haswell.h) dlclose(haswell.h);
    if (x64.h) dlclose(x64.h);
}

int main(void)
{
    test_type_table();
    test_half_by_hand();
    test_q8_0_by_hand();
    test_q4_0_by_hand();
    test_q5_0_by_hand();
    test_q4_K_by_hand();
    test_q6_K_by_hand();
    test_edges();
    test_vec_dot_type();
    test_act_by_hand();
    test_vec_dot_self();
    test_oracle();
    test_oracle_cpu();
    return tu_finish("test_quant");
}
