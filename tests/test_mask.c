/*
 * test_mask.c - soft-token input (g4_decode_embd), the image-block attention
 * mask, continuous batching (g4_decode_multi) and cancellation.
 *
 * The mask test perturbs one LATER row of a block and watches, layer by
 * layer, which rows' residual streams move.  The expected set is derived
 * independently from the mask rule of shared/spec/gemma4-multimodal.md §4.5
 * (sliding layers: causal window plus the rest of the image block within
 * the window; global layers: causal) by propagating "changed" flags through
 * the layers; rows expected unchanged must be bit-identical, rows expected
 * changed must differ.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gemma4.h"
#include "model/model.h"
#include "model/testmodel.h"
#include "testutil.h"

static char dir[256];

static const char *make_model(const char *file, uint32_t window, uint32_t n_layer, uint32_t period, g4_tm_type type)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    g4_test_model_params p;
    g4_test_model_default_params(&p);
    p.type = type;
    p.sliding_window = window;
    p.n_layer = n_layer;
    p.swa_period = period;
    p.n_embd = 128;
    p.n_ff = 256;
    p.n_vocab = 512;
    p.seed = 11;
    char err[512];
    if (g4_make_test_model(&p, path, err, sizeof err) != 0) {
        fprintf(stderr, "make_test_model: %s\n", err);
        return NULL;
    }
    return path;
}

static g4_model *load(const char *path)
{
    g4_model *m = NULL;
    char err[512];
    g4_model_params mp = g4_model_default_params();
    mp.n_threads = 2;
    CHECKF(path && g4_model_load(path, &mp, &m, err, sizeof err) == G4_OK, "%s", path ? err : "no model");
    return m;
}

static g4_context *new_ctx(g4_model *m, uint32_t n_ctx, uint32_t n_batch)
{
    g4_context_params cp = g4_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.kv_type = G4_KV_F32;
    g4_context *c = NULL;
    char err[256];
    if (g4_context_new(m, &cp, &c, err, sizeof err) != G4_OK) fprintf(stderr, "context: %s\n", err);
    return c;
}

/* ---- layer capture ---- */

typedef struct {
    uint32_t n_layer, n, H;
    float *x; /* [layer][row][H] */
} capture;

static void on_layer(void *user, uint32_t layer, const float *x, uint32_t n)
{
    capture *c = user;
    if (layer < c->n_layer && n == c->n) memcpy(c->x + (size_t)layer * n * c->H, x, sizeof(float) * n * c->H);
}

static void rand_rows(float *r, size_t n, uint32_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        r[i] = ((float)(s >> 40) / (float)(1u << 24) - 0.5f) * 2.0f;
    }
}

/* Runs prefix tokens, then the n rows with the given kind, capturing every
 * layer's residual stream of the rows; returns the capture buffer. */
static float *run_capture(g4_model *m, const int32_t *prefix, uint32_t np, const float *rows, uint32_t n,
                          g4_embd_kind kind, float *logits_out)
{
    g4_model_info in;
    g4_model_get_info(m, &in);
    g4_context *c = new_ctx(m, 256, 128);
    if (!c) return NULL;
    char err[256];
    capture cap = { in.n_layer, n, in.n_embd, calloc((size_t)in.n_layer * n * in.n_embd, sizeof(float)) };
    if (np) CHECKF(g4_decode(c, prefix, np, false, err, sizeof err) == G4_OK, "%s", err);
    c->layer_cb = on_layer;
    c->layer_user = &cap;
    g4_status st = g4_decode_embd(c, rows, n, kind, false, err, sizeof err);
    CHECKF(st == G4_OK, "decode_embd: %s", err);
    if (logits_out && st == G4_OK) memcpy(logits_out, g4_get_logits(c), sizeof(float) * in.n_vocab);
    g4_context_free(c);
    return cap.x;
}

/* Expected "changed" flags per layer when row j (of n, at positions
 * p0..p0+n-1) changes, under the spec's mask. */
static void expected_changes(const g4_model *m, uint32_t p0, uint32_t n, uint32_t j, bool image, bool *chg /* [L][n] */)
{
    uint32_t W = m->sliding_window;
    bool *prev = calloc(n, 1);
    prev[j] = true;
    for (uint32_t l = 0; l < m->n_layer; l++) {
        bool sl = m->layers[l].sliding;
        for (uint32_t q = 0; q < n; q++) {
            bool c = prev[q];
            for (uint32_t k = 0; k < n && !c; k++) {
                if (!prev[k]) continue;
                uint32_t pq = p0 + q, pk = p0 + k;
                bool vis;
                if (pk <= pq) vis = !sl || pq - pk < W;
                else vis = sl && image && pk - pq < W;
                c = vis;
            }
            chg[(size_t)l * n + q] = c;
        }
        memcpy(prev, chg + (size_t)l * n, n);
    }
    free(prev);
}

static void test_mask_case(g4_model *m, const char *what, uint32_t np, uint32_t n, uint32_t j, g4_embd_kind kind)
{
    g4_model_info in;
    g4_model_get_info(m, &in);
    const uint32_t H = in.n_embd, L = in.n_layer;
    int32_t prefix[64];
    for (uint32_t i = 0; i < np; i++) prefix[i] = (int32_t)((i * 29 + 3) % in.n_vocab);
    float *rows = malloc(sizeof(float) * n * H), *rows2 = malloc(sizeof(float) * n * H);
    rand_rows(rows, (size_t)n * H, 5);
    memcpy(rows2, rows, sizeof(float) * n * H);
    for (uint32_t i = 0; i < H; i++) rows2[(size_t)j * H + i] += 0.25f * (float)((i % 7) - 3);
    float *a = run_capture(m, prefix, np, rows, n, kind, NULL);
    float *b = run_capture(m, prefix, np, rows2, n, kind, NULL);
    bool *chg = calloc((size_t)L * n, 1);
    expected_changes(m, np, n, j, kind == G4_EMBD_IMAGE, chg);
    int bad = 0, n_same = 0, n_moved = 0;
    for (uint32_t l = 0; l < L && a && b; l++)
        for (uint32_t q = 0; q < n; q++) {
            const float *xa = a + ((size_t)l * n + q) * H, *xb = b + ((size_t)l * n + q) * H;
            bool same = memcmp(xa, xb, sizeof(float) * H) == 0;
            if (same) n_same++; else n_moved++;
            if (same == chg[(size_t)l * n + q]) {
                if (bad++ < 5)
                    fprintf(stderr, "  %s: layer %u (%s) row %u: %s, expected %s\n", what, l,
                            m->layers[l].sliding ? "sliding" : "global", q, same ? "unchanged" : "changed",
                            chg[(size_t)l * n + q] ? "changed" : "unchanged");
            }
        }
    printf("  %s: %d (layer,row) states unchanged, %d moved, %d against the mask\n", what, n_same, n_moved, bad);
    CHECKF(a && b && bad == 0, "%s: %d states disagree with the mask", what, bad);
    CHECKF(n_same > 0 && n_moved > 0, "%s: degenerate case", what);
    free(a); free(b); free(chg); free(rows); free(rows2);
}

static void test_mask(void)
{
    /* 6 layers, global every 3rd (layers 2 and 5), window 8: blocks longer
     * than the window exercise the clamp. */
    g4_model *m = load(make_model("mask.gguf", 8, 6, 3, G4_TM_F32));
    if (!m) return;
    test_mask_case(m, "image, later row 10 of 12", 5, 12, 10, G4_EMBD_IMAGE);
    test_mask_case(m, "image, row 19 of 20 (beyond the window)", 3, 20, 19, G4_EMBD_IMAGE);
    test_mask_case(m, "audio (causal), row 7 of 12", 5, 12, 7, G4_EMBD_CAUSAL);
    g4_model_free(m);
    /* all-global model: an image block is plain causal everywhere */
    m = load(make_model("mask-global.gguf", 8, 3, 1, G4_TM_F32));
    if (!m) return;
    test_mask_case(m, "all-global layers, image", 2, 10, 8, G4_EMBD_IMAGE);
    g4_model_free(m);
}

/* Soft-token rows equal to the scaled token embeddings must reproduce
 * g4_decode of those tokens exactly (the causal embd path is the text
 * path minus the lookup). */
static void test_embd_equals_tokens(void)
{
    g4_model *m = load(make_model("embd.gguf", 16, 4, 2, G4_TM_Q8_0));
    if (!m) return;
    g4_model_info in;
    g4_model_get_info(m, &in);
    enum { N = 40 };
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 41 + 7) % in.n_vocab);
    float *rows = malloc(sizeof(float) * N * in.n_embd);
    for (int i = 0; i < N; i++) {
        g4_mat_row(&m->token_embd, tok[i], rows + (size_t)i * in.n_embd);
        for (uint32_t k = 0; k < in.n_embd; k++) rows[(size_t)i * in.n_embd + k] *= m->embd_scale;
    }
    char err[256];
    g4_context *a = new_ctx(m, 128, 16), *b = new_ctx(m, 128, 16);
    CHECK(a && b);
    if (a && b) {
        CHECKF(g4_decode(a, tok, 10, false, err, sizeof err) == G4_OK, "%s", err);
        CHECKF(g4_decode(a, tok + 10, N - 10, true, err, sizeof err) == G4_OK, "%s", err);
        CHECKF(g4_decode(b, tok, 10, false, err, sizeof err) == G4_OK, "%s", err);
        CHECKF(g4_decode_embd(b, rows + 10 * in.n_embd, N - 10, G4_EMBD_CAUSAL, true, err, sizeof err) == G4_OK, "%s", err);
        int diff = 0;
        for (int i = 0; i < N - 10; i++)
            diff += memcmp(g4_get_logits_ith(a, i), g4_get_logits_ith(b, i), sizeof(float) * in.n_vocab) != 0;
        CHECKF(diff == 0, "embd rows vs tokens: %d of %d logit rows differ", diff, N - 10);
        /* errors */
        float bad[1024];
        memcpy(bad, rows, sizeof(float) * in.n_embd);
        bad[3] = NAN;
        CHECK(g4_decode_embd(b, bad, 1, G4_EMBD_CAUSAL, false, err, sizeof err) == G4_ERR_INVALID);
        CHECKF(strstr(err, "non-finite") != NULL, "%s", err);
        float *big = calloc((size_t)20 * in.n_embd, sizeof(float));
        CHECK(g4_decode_embd(b, big, 20, G4_EMBD_IMAGE, false, err, sizeof err) == G4_ERR_INVALID);
        CHECKF(strstr(err, "n_batch") != NULL, "%s", err);
        CHECK(g4_decode_embd(b, big, 0, G4_EMBD_CAUSAL, false, err, sizeof err) == G4_ERR_INVALID);
        CHECK(g4_decode_embd(b, NULL, 1, G4_EMBD_CAUSAL, false, err, sizeof err) == G4_ERR_INVALID);
        CHECK(g4_decode_embd(b, big, 1, (g4_embd_kind)7, false, err, sizeof err) == G4_ERR_INVALID);
        g4_context *small = new_ctx(m, 12, 16);
        CHECK(small && g4_decode_embd(small, big, 13, G4_EMBD_CAUSAL, false, err, sizeof err) == G4_ERR_CONTEXT_FULL);
        g4_context_free(small);
        free(big);
    }
    g4_context_free(a);
    g4_context_free(b);
    free(rows);
    g4_model_free(m);
}

/* Continuous batching: three sequences at different lengths stepped
 * together give bit-identical logits to stepping each alone. */
static void test_multi(void)
{
    g4_model *m = load(make_model("multi.gguf", 8, 4, 2, G4_TM_Q4_0));
    if (!m) return;
    g4_model_info in;
    g4_model_get_info(m, &in);
    enum { S = 3, STEPS = 12 };
    uint32_t plen[S] = { 5, 19, 11 };
    char err[256];
    g4_context *solo[S], *grp[S];
    for (int s = 0; s < S; s++) { solo[s] = new_ctx(m, 64, 8); grp[s] = new_ctx(m, s == 1 ? 48 : 64, 8); }
    int diff = 0, ok = 1;
    for (int s = 0; s < S && ok; s++) {
        int32_t p[32];
        for (uint32_t i = 0; i < plen[s]; i++) p[i] = (int32_t)((i * 17 + (uint32_t)s * 5 + 1) % in.n_vocab);
        ok &= solo[s] && grp[s] && g4_decode(solo[s], p, plen[s], false, err, sizeof err) == G4_OK &&
              g4_decode(grp[s], p, plen[s], false, err, sizeof err) == G4_OK;
    }
    CHECKF(ok, "prefill: %s", err);
    for (int step = 0; step < STEPS && ok; step++) {
        int32_t t[S];
        for (int s = 0; s < S; s++) t[s] = (int32_t)((step * 31 + s * 7 + 2) % in.n_vocab);
        for (int s = 0; s < S; s++) ok &= g4_decode(solo[s], &t[s], 1, false, err, sizeof err) == G4_OK;
        /* vary the order and the membership of the group */
        g4_context *order[S] = { grp[(step + 0) % S], grp[(step + 1) % S], grp[(step + 2) % S] };
        int32_t tt[S];
        for (int k = 0; k < S; k++) tt[k] = t[(step + k) % S];
        ok &= g4_decode_multi(order, tt, S, err, sizeof err) == G4_OK;
        CHECKF(ok, "step %d: %s", step, err);
        for (int s = 0; s < S && ok; s++) {
            diff += memcmp(g4_get_logits(solo[s]), g4_get_logits(grp[s]), sizeof(float) * in.n_vocab) != 0;
            diff += memcmp(g4_get_hidden(solo[s]), g4_get_hidden(grp[s]), sizeof(float) * in.n_embd) != 0;
            diff += g4_context_n_past(solo[s]) != g4_context_n_past(grp[s]);
        }
    }
    printf("  decode_multi: %d differences over %d steps of %d sequences\n", diff, STEPS, S);
    CHECKF(diff == 0, "decode_multi differs from separate decodes (%d)", diff);
    /* errors */
    int32_t t2[2] = { 1, 2 };
    g4_context *dup[2] = { grp[0], grp[0] };
    CHECK(g4_decode_multi(dup, t2, 2, err, sizeof err) == G4_ERR_INVALID);
    g4_context *two[2] = { grp[0], grp[1] };
    int32_t badt[2] = { 1, (int32_t)in.n_vocab };
    CHECK(g4_decode_multi(two, badt, 2, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_decode_multi(two, t2, 0, err, sizeof err) == G4_ERR_INVALID);
    for (int s = 0; s < S; s++) { g4_context_free(solo[s]); g4_context_free(grp[s]); }
    g4_model_free(m);
}

/* Cancellation: stop after k layers; the cache is as before the call,
 * and decoding again gives the uninterrupted result. */
static int abort_after;
static bool abort_cb(void *user)
{
    int *calls = user;
    return ++*calls > abort_after;
}

static void test_abort(void)
{
    g4_model *m = load(make_model("abort.gguf", 8, 4, 2, G4_TM_F32));
    if (!m) return;
    g4_model_info in;
    g4_model_get_info(m, &in);
    enum { N = 30 };
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 23 + 9) % in.n_vocab);
    char err[256];
    g4_context *ref = new_ctx(m, 64, 8), *c = new_ctx(m, 64, 8);
    if (!ref || !c) { g4_model_free(m); return; }
    CHECK(g4_decode(ref, tok, N, false, err, sizeof err) == G4_OK);
    int calls = 0;
    CHECK(g4_decode(c, tok, 10, false, err, sizeof err) == G4_OK);
    abort_after = 6; /* batches of 8 and 4 layers: stops in the 2nd batch */
    g4_context_set_abort(c, abort_cb, &calls);
    g4_status st = g4_decode(c, tok + 10, N - 10, false, err, sizeof err);
    CHECKF(st == G4_ERR_ABORTED, "expected aborted, got %d (%s)", (int)st, err);
    CHECKF(g4_context_n_past(c) == 18, "n_past after abort %u, expected 18 (one batch done)", g4_context_n_past(c));
    g4_context_set_abort(c, NULL, NULL);
    CHECK(g4_decode(c, tok + 18, N - 18, false, err, sizeof err) == G4_OK);
    CHECKF(memcmp(g4_get_logits(ref), g4_get_logits(c), sizeof(float) * in.n_vocab) == 0,
           "logits after an aborted and resumed decode differ");
    g4_context_free(ref);
    g4_context_free(c);
    g4_model_free(m);
}

/* n_rewind: truncation reaches further back than n_batch on sliding layers,
 * and the continuation equals a cold run. */
static void test_rewind(void)
{
    g4_model *m = load(make_model("rewind.gguf", 8, 4, 2, G4_TM_F32));
    if (!m) return;
    g4_model_info in;
    g4_model_get_info(m, &in);
    enum { N = 90, KEEP = 50 };
    int32_t a[N], b[N];
    for (int i = 0; i < N; i++) {
        a[i] = (int32_t)((i * 19 + 4) % in.n_vocab);
        b[i] = i < KEEP ? a[i] : (int32_t)((i * 23 + 1) % in.n_vocab);
    }
    char err[256];
    g4_context_params cp = g4_context_default_params();
    cp.n_ctx = 128;
    cp.n_batch = 8;
    cp.kv_type = G4_KV_F32;
    g4_context *plain = NULL, *far = NULL, *cold = NULL;
    CHECK(g4_context_new(m, &cp, &plain, err, sizeof err) == G4_OK);
    CHECK(g4_context_new(m, &cp, &cold, err, sizeof err) == G4_OK);
    cp.n_rewind = 48;
    CHECK(g4_context_new(m, &cp, &far, err, sizeof err) == G4_OK);
    if (plain && far && cold) {
        CHECK(g4_decode(plain, a, N, false, err, sizeof err) == G4_OK);
        CHECK(g4_decode(far, a, N, false, err, sizeof err) == G4_OK);
        /* 40 positions back: beyond n_batch (8), within n_rewind (48) */
        CHECK(g4_kv_truncate(plain, KEEP, err, sizeof err) == G4_ERR_INVALID);
        CHECKF(g4_kv_truncate(far, KEEP, err, sizeof err) == G4_OK, "%s", err);
        CHECK(g4_decode(far, b + KEEP, N - KEEP, false, err, sizeof err) == G4_OK);
        CHECK(g4_decode(cold, b, N, false, err, sizeof err) == G4_OK);
        CHECKF(memcmp(g4_get_logits(far), g4_get_logits(cold), sizeof(float) * in.n_vocab) == 0,
               "logits after a 40-position rewind differ from a cold run");
        CHECK(g4_kv_truncate(far, 0, err, sizeof err) == G4_ERR_INVALID); /* too far even so */
    }
    g4_context_free(plain);
    g4_context_free(far);
    g4_context_free(cold);
    g4_model_free(m);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/g4-test-mask-%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0) return 1;
    test_mask();
    test_embd_equals_tokens();
    test_multi();
    test_abort();
    test_rewind();
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return tu_finish("test_mask");
}
