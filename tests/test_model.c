/*
 * test_model.c - engine behaviour that does not need llama.cpp: batched vs
 * token-by-token equality, KV-cache truncation, the sliding-window ring,
 * f16 vs f32 cache, and the API's error paths.  The models come from our
 * own generator (src/model/testmodel.c) with a small sliding window so that
 * the sequences run past it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gemma4.h"
#include "gguf/gguf.h"
#include "model/testmodel.h"
#include "testutil.h"

static char dir[256];

static const char *make_model(const char *file, g4_tm_type type, uint32_t window, uint32_t n_layer)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    g4_test_model_params p;
    g4_test_model_default_params(&p);
    p.type = type;
    p.sliding_window = window;
    p.n_layer = n_layer;
    p.n_embd = 128;
    p.n_ff = 256;
    p.n_vocab = 512;
    p.seed = 7;
    char err[512];
    if (g4_make_test_model(&p, path, err, sizeof err) != 0) {
        fprintf(stderr, "make_test_model: %s\n", err);
        return NULL;
    }
    return path;
}

static float max_diff(const float *a, const float *b, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a huge failure */
    }
    return m;
}

static bool f32_act; /* the activation mode of the contexts below */

static g4_context *new_ctx(g4_model *m, uint32_t n_ctx, uint32_t n_batch, g4_kv_type kv)
{
    g4_context_params cp = g4_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.kv_type = kv;
    cp.f32_activations = f32_act;
    g4_context *c = NULL;
    char err[256];
    if (g4_context_new(m, &cp, &c, err, sizeof err) != G4_OK) fprintf(stderr, "context: %s\n", err);
    return c;
}

/* Logits of every position, decoded in chunks of `batch` tokens per g4_decode. */
static float *run_all(g4_model *m, const int32_t *tok, uint32_t n, uint32_t n_batch, uint32_t call_chunk, g4_kv_type kv)
{
    g4_model_info in;
    g4_model_get_info(m, &in);
    g4_context *c = new_ctx(m, n, n_batch, kv);
    if (!c) return NULL;
    float *out = malloc(sizeof(float) * n * in.n_vocab);
    char err[256];
    for (uint32_t i = 0; i < n; i += call_chunk) {
        uint32_t k = n - i < call_chunk ? n - i : call_chunk;
        if (g4_decode(c, tok + i, k, true, err, sizeof err) != G4_OK) { fprintf(stderr, "%s\n", err); free(out); out = NULL; break; }
        for (uint32_t j = 0; j < k; j++) memcpy(out + (size_t)(i + j) * in.n_vocab, g4_get_logits_ith(c, (int32_t)j), sizeof(float) * in.n_vocab);
    }
    g4_context_free(c);
    return out;
}

static void test_batching(const char *path)
{
    g4_model *m;
    char err[512];
    g4_model_params mp = g4_model_default_params();
    mp.n_threads = 2;
    CHECKF(g4_model_load(path, &mp, &m, err, sizeof err) == G4_OK, "%s", err);
    if (!m) return;
    g4_model_info in;
    g4_model_get_info(m, &in);
    enum { N = 120 };
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 37 + 11) % in.n_vocab);
    float *ref = run_all(m, tok, N, 1, 1, G4_KV_F32);           /* token by token */
    float *bat = run_all(m, tok, N, 512, N, G4_KV_F32);         /* one call, one batch */
    float *chk = run_all(m, tok, N, 7, N, G4_KV_F32);           /* one call, batches of 7 */
    float *mix = run_all(m, tok, N, 16, 13, G4_KV_F32);         /* calls of 13, batches of 16 */
    float *f16 = run_all(m, tok, N, 32, N, G4_KV_F16);
    size_t nv = (size_t)N * in.n_vocab;
    CHECK(ref && bat && chk && mix && f16);
    if (ref && bat && chk && mix && f16) {
        float d1 = max_diff(ref, bat, nv), d2 = max_diff(ref, chk, nv), d3 = max_diff(ref, mix, nv), d4 = max_diff(ref, f16, nv);
        printf("  %s (%s activations): batched %.2e, batch 7 %.2e, calls of 13 %.2e, f16 KV %.2e\n", path,
               f32_act ? "f32" : "llama.cpp-rounded", d1, d2, d3, d4);
        /* one code path for every batch size: identical, not just close */
        CHECKF(d1 == 0.0f, "batched vs token-by-token %g", d1);
        CHECKF(d2 == 0.0f, "batch 7 vs token-by-token %g", d2);
        CHECKF(d3 == 0.0f, "calls of 13 vs token-by-token %g", d3);
        /* f16 rounding of K/V is smooth only when nothing downstream rounds
         * to 8 bits (an 8-bit rounding flip is a 1% step) */
        if (f32_act) CHECKF(d4 <= 2e-2f, "f16 KV vs f32 KV %g", d4);
        /* The logits must depend on the context (not a bag of unigrams). */
        float spread = 0;
        for (size_t i = 0; i < in.n_vocab; i++) spread = fmaxf(spread, fabsf(ref[i] - ref[(size_t)(N - 1) * in.n_vocab + i]));
        CHECKF(spread > 1e-2f, "logits do not vary with position (%g)", spread);
    }
    free(ref); free(bat); free(chk); free(mix); free(f16);
    g4_model_free(m);
}

static void test_truncate(const char *path)
{
    g4_model *m;
    char err[512];
    CHECKF(g4_model_load(path, NULL, &m, err, sizeof err) == G4_OK, "%s", err);
    if (!m) return;
    g4_model_info in;
    g4_model_get_info(m, &in);
    enum { N = 80, B = 8 };
    int32_t a[N], b[N];
    for (int i = 0; i < N; i++) { a[i] = (int32_t)((i * 13 + 5) % in.n_vocab); b[i] = i < N - 6 ? a[i] : (int32_t)((i * 7 + 3) % in.n_vocab); }
    float *ref_b = run_all(m, b, N, B, N, G4_KV_F32);
    g4_context *c = new_ctx(m, 128, B, G4_KV_F32);
    CHECK(c != NULL);
    if (c && ref_b) {
        CHECK(g4_decode(c, a, N, false, err, sizeof err) == G4_OK);
        CHECK(g4_context_n_past(c) == N);
        /* Go back 6 positions (<= n_batch: inside what the ring keeps) and
         * continue with b's tail: must equal a fresh run of b. */
        CHECKF(g4_kv_truncate(c, N - 6, err, sizeof err) == G4_OK, "%s", err);
        CHECK(g4_context_n_past(c) == N - 6);
        CHECK(g4_decode(c, b + N - 6, 6, true, err, sizeof err) == G4_OK);
        float d = 0;
        for (int j = 0; j < 6; j++)
            d = fmaxf(d, max_diff(g4_get_logits_ith(c, j), ref_b + (size_t)(N - 6 + j) * in.n_vocab, in.n_vocab));
        CHECKF(d <= 1e-4f, "truncate+continue vs fresh: %g", d);
        /* Truncating far behind the sliding window's ring must refuse and clear. */
        CHECK(g4_kv_truncate(c, 5, err, sizeof err) == G4_ERR_INVALID);
        CHECKF(strstr(err, "sliding") != NULL, "message: %s", err);
        CHECK(g4_context_n_past(c) == 0);
        CHECK(g4_kv_truncate(c, 3, err, sizeof err) == G4_ERR_INVALID); /* beyond n_past */
        /* After clear, a fresh run of b gives the reference again. */
        CHECK(g4_decode(c, b, N, false, err, sizeof err) == G4_OK);
        d = max_diff(g4_get_logits(c), ref_b + (size_t)(N - 1) * in.n_vocab, in.n_vocab);
        CHECKF(d <= 1e-4f, "after clear: %g", d);
        /* errors */
        CHECK(g4_decode(c, b, 100, false, err, sizeof err) == G4_ERR_CONTEXT_FULL);
        CHECKF(strstr(err, "context full") != NULL, "message: %s", err);
        int32_t bad = (int32_t)in.n_vocab;
        g4_kv_clear(c);
        CHECK(g4_decode(c, &bad, 1, false, err, sizeof err) == G4_ERR_INVALID);
        CHECKF(strstr(err, "vocabulary") != NULL, "message: %s", err);
        bad = -1;
        CHECK(g4_decode(c, &bad, 1, false, err, sizeof err) == G4_ERR_INVALID);
        CHECK(g4_decode(c, a, 0, false, err, sizeof err) == G4_ERR_INVALID);
        CHECK(g4_get_logits_ith(c, 5) == NULL);
    }
    /* The sliding layers' cache is a ring: growing n_ctx grows only the
     * global layers' part. */
    uint64_t k1 = g4_model_kv_bytes(m, 4096, G4_KV_F16), k2 = g4_model_kv_bytes(m, 8192, G4_KV_F16);
    uint64_t global_row = 0;
    for (uint32_t l = 0; l < in.n_layer; l++)
        if (!g4_model_layer_is_sliding(m, l)) global_row += 2ull * 2 * g4_model_layer_n_kv_head(m, l) * in.head_dim_global;
    CHECKF(k2 - k1 == 4096 * global_row, "kv growth %llu vs %llu", (unsigned long long)(k2 - k1), (unsigned long long)(4096 * global_row));
    g4_context_free(c);
    free(ref_b);
    g4_model_free(m);
}

static void test_load_errors(void)
{
    char err[512], path[512];
    g4_model *m = NULL;
    CHECK(g4_model_load("/nonexistent/x.gguf", NULL, &m, err, sizeof err) == G4_ERR_IO);
    CHECKF(strstr(err, "/nonexistent/x.gguf") != NULL, "message: %s", err);
    CHECK(m == NULL);

    /* a valid GGUF of another architecture */
    snprintf(path, sizeof path, "%s/llama.gguf", dir);
    gguf_writer *w = gguf_writer_new();
    gguf_w_str(w, "general.architecture", "llama");
    CHECK(gguf_w_begin(w, path, err, sizeof err) == 0 && gguf_w_finish(w, err, sizeof err) == 0);
    gguf_writer_free(w);
    CHECK(g4_model_load(path, NULL, &m, err, sizeof err) == G4_ERR_UNSUPPORTED);
    CHECKF(strstr(err, "llama") != NULL, "message: %s", err);

    /* gemma4 with per-layer embeddings / MoE: named as not supported */
    const char *feats[][2] = { { "gemma4.embedding_length_per_layer_input", "per-layer embeddings" },
                               { "gemma4.expert_count", "mixture of experts" },
                               { "gemma4.attention.shared_kv_layers", "KV sharing" } };
    for (int i = 0; i < 3; i++) {
        w = gguf_writer_new();
        gguf_w_str(w, "general.architecture", "gemma4");
        gguf_w_u32(w, "gemma4.block_count", 2);
        gguf_w_u32(w, "gemma4.embedding_length", 64);
        gguf_w_u32(w, feats[i][0], 8);
        CHECK(gguf_w_begin(w, path, err, sizeof err) == 0 && gguf_w_finish(w, err, sizeof err) == 0);
        gguf_writer_free(w);
        CHECK(g4_model_load(path, NULL, &m, err, sizeof err) == G4_ERR_UNSUPPORTED);
        CHECKF(strstr(err, feats[i][1]) != NULL, "message: %s", err);
    }
    /* missing required key */
    w = gguf_writer_new();
    gguf_w_str(w, "general.architecture", "gemma4");
    gguf_w_u32(w, "gemma4.embedding_length", 64);
    CHECK(gguf_w_begin(w, path, err, sizeof err) == 0 && gguf_w_finish(w, err, sizeof err) == 0);
    gguf_writer_free(w);
    CHECK(g4_model_load(path, NULL, &m, err, sizeof err) == G4_ERR_FORMAT);
    CHECKF(strstr(err, "gemma4.block_count") != NULL, "message: %s", err);

    /* a real model file cut short: header ok, tensor data missing */
    const char *good = make_model("cut.gguf", G4_TM_Q8_0, 16, 6);
    CHECK(good != NULL);
    if (good) {
        FILE *f = fopen(good, "rb");
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fclose(f);
        CHECK(truncate(good, sz - 1000) == 0);
        CHECK(g4_model_load(good, NULL, &m, err, sizeof err) == G4_ERR_FORMAT);
        CHECKF(strstr(err, "tensor") != NULL, "message: %s", err);
    }
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/g4-test-model-%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0) return 1;
    const char *f32 = make_model("f32.gguf", G4_TM_F32, 16, 6);
    CHECK(f32 != NULL);
    if (f32) { test_batching(f32); test_truncate(f32); }
    const char *q4 = make_model("q4.gguf", G4_TM_Q4_0, 24, 7);
    CHECK(q4 != NULL);
    if (q4) {
        test_batching(q4);
        test_truncate(q4);
        f32_act = true;
        test_batching(q4);
        test_truncate(q4);
        f32_act = false;
    }
    test_load_errors();
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return tu_finish("test_model");
}
