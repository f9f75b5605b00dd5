/*
 * context.c - inference contexts: KV cache allocation, batching of
 * g4_decode calls into forward passes of at most n_batch tokens, logits
 * bookkeeping and cache truncation.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

g4_context_params g4_context_default_params(void)
{
    g4_context_params p = { .n_ctx = 0, .n_batch = 512, .kv_type = G4_KV_F16, .n_threads = 0,
                            .f32_activations = false };
    return p;
}

const char *g4_status_str(g4_status s)
{
    switch (s) {
    case G4_OK: return "ok";
    case G4_ERR_IO: return "I/O error";
    case G4_ERR_FORMAT: return "malformed model file";
    case G4_ERR_UNSUPPORTED: return "not supported";
    case G4_ERR_INVALID: return "invalid argument";
    case G4_ERR_NOMEM: return "out of memory";
    case G4_ERR_CONTEXT_FULL: return "context full";
    case G4_ERR_ABORTED: return "aborted";
    }
    return "unknown error";
}

static void *alloc_floats(uint64_t n, bool *ok)
{
    if (n > SIZE_MAX / sizeof(float)) { *ok = false; return NULL; }
    void *p = calloc(n ? (size_t)n : 1, sizeof(float));
    if (!p) *ok = false;
    return p;
}

g4_status g4_context_new(g4_model *m, const g4_context_params *params, g4_context **out, char *err, size_t errlen)
{
    if (!m || !out) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_context_new: model and out are required");
    *out = NULL;
    g4_context_params p = params ? *params : g4_context_default_params();
    if (p.n_ctx == 0) p.n_ctx = m->n_ctx_train < 4096 ? m->n_ctx_train : 4096;
    if (p.n_batch == 0) p.n_batch = 512;
    if (p.n_ctx > m->n_ctx_train)
        return g4_fail(err, errlen, G4_ERR_INVALID, "n_ctx %u exceeds the model's context length %u", p.n_ctx, m->n_ctx_train);
    if (p.n_batch > p.n_ctx) p.n_batch = p.n_ctx;
    if (p.kv_type != G4_KV_F32 && p.kv_type != G4_KV_F16)
        return g4_fail(err, errlen, G4_ERR_INVALID, "unknown KV cache type %d", (int)p.kv_type);

    g4_context *c = calloc(1, sizeof *c);
    if (!c) return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory");
    c->model = m;
    c->n_ctx = p.n_ctx;
    c->n_batch = p.n_batch;
    c->kv_type = p.kv_type;
    c->f32_act = p.f32_activations;
    if (p.n_threads > 0 && p.n_threads != m->n_threads) {
        c->pool = g4_pool_new(p.n_threads);
        c->own_pool = true;
    } else {
        c->pool = m->pool;
    }
    bool ok = c->pool != NULL;
    size_t elt = p.kv_type == G4_KV_F32 ? 4 : 2;
    c->kv = calloc(m->n_layer, sizeof *c->kv);
    ok = ok && c->kv;
    for (uint32_t l = 0; ok && l < m->n_layer; l++) {
        g4_kv_layer *kv = &c->kv[l];
        kv->size = g4_kv_slots(m, l, p.n_ctx, p.n_batch);
        kv->row = m->layers[l].n_kv_head * m->layers[l].head_dim;
        uint64_t bytes = (uint64_t)kv->size * kv->row * elt;
        if (bytes > SIZE_MAX) { ok = false; break; }
        kv->k = calloc(1, (size_t)bytes);
        kv->v = calloc(1, (size_t)bytes);
        ok = kv->k && kv->v;
    }
    uint64_t nb = p.n_batch;
    if (ok) {
        c->x = alloc_floats(nb * m->n_embd, &ok);
        c->h = alloc_floats(nb * m->n_embd, &ok);
        c->a = alloc_floats(nb * m->n_embd, &ok);
        c->q = alloc_floats(nb * m->max_q_dim, &ok);
        c->o = alloc_floats(nb * m->max_q_dim, &ok);
        c->k = alloc_floats(nb * m->max_kv_dim, &ok);
        c->v = alloc_floats(nb * m->max_kv_dim, &ok);
        c->g = alloc_floats(nb * m->n_ff, &ok);
        c->u = alloc_floats(nb * m->n_ff, &ok);
        c->att = alloc_floats((uint64_t)g4_pool_size(c->pool) * p.n_ctx, &ok);
        c->hidden = alloc_floats(m->n_embd, &ok);
        c->rope_cs = alloc_floats(m->max_head_dim, &ok);
        c->logits = alloc_floats(m->n_vocab, &ok);
        c->cap_logits = 1;
    }
    if (!ok) {
        g4_context_free(c);
        return g4_fail(err, errlen, G4_ERR_NOMEM, "cannot allocate a context of %u positions (KV cache %.1f MiB)",
                       p.n_ctx, (double)g4_model_kv_bytes(m, p.n_ctx, p.kv_type) / (1 << 20));
    }
    *out = c;
    return G4_OK;
}

void g4_context_free(g4_context *c)
{
    if (!c) return;
    if (c->kv) {
        for (uint32_t l = 0; l < c->model->n_layer; l++) { free(c->kv[l].k); free(c->kv[l].v); }
        free(c->kv);
    }
    if (c->own_pool) g4_pool_free(c->pool);
    free(c->x); free(c->h); free(c->a); free(c->q); free(c->o); free(c->k); free(c->v);
    free(c->g); free(c->u); free(c->att); free(c->hidden); free(c->logits); free(c->rope_cs);
    free(c);
}

uint32_t g4_context_n_ctx(const g4_context *c) { return c->n_ctx; }
uint32_t g4_context_n_past(const g4_context *c) { return c->n_past; }

g4_status g4_decode(g4_context *c, const int32_t *tokens, uint32_t n, bool want_all, char *err, size_t errlen)
{
    const g4_model *m = c->model;
    if (n == 0) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_decode: empty batch");
    if (!tokens) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_decode: tokens is NULL");
    if ((uint64_t)c->n_past + n > c->n_ctx)
        return g4_fail(err, errlen, G4_ERR_CONTEXT_FULL, "context full: %u positions used + %u new > n_ctx %u",
                       c->n_past, n, c->n_ctx);
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= m->n_vocab)
            return g4_fail(err, errlen, G4_ERR_INVALID, "token %d at index %u is outside the vocabulary [0, %u)",
                           tokens[i], i, m->n_vocab);
    uint32_t rows = want_all ? n : 1;
    if (rows > c->cap_logits) {
        uint64_t need = (uint64_t)rows * m->n_vocab;
        if (need > SIZE_MAX / sizeof(float))
            return g4_fail(err, errlen, G4_ERR_NOMEM, "logits for %u tokens do not fit in memory", rows);
        float *nl = realloc(c->logits, (size_t)need * sizeof(float));
        if (!nl) return g4_fail(err, errlen, G4_ERR_NOMEM, "cannot allocate logits for %u tokens", rows);
        c->logits = nl;
        c->cap_logits = rows;
    }
    int32_t *out_rows = malloc(sizeof(int32_t) * (c->n_batch ? c->n_batch : 1));
    if (!out_rows) return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory");
    c->n_logits = 0;
    for (uint32_t done = 0; done < n;) {
        uint32_t chunk = n - done < c->n_batch ? n - done : c->n_batch;
        for (uint32_t t = 0; t < chunk; t++) {
            bool keep = want_all || done + t == n - 1;
            out_rows[t] = keep ? (int32_t)(want_all ? done + t : 0) : -1;
        }
        g4_forward(c, tokens + done, chunk, out_rows);
        c->n_past += chunk;
        done += chunk;
    }
    free(out_rows);
    c->n_logits = rows;
    return G4_OK;
}

const float *g4_get_logits_ith(const g4_context *c, int32_t i)
{
    if (c->n_logits == 0) return NULL;
    if (i < 0) i += (int32_t)c->n_logits;
    if (i < 0 || (uint32_t)i >= c->n_logits) return NULL;
    return c->logits + (size_t)i * c->model->n_vocab;
}

const float *g4_get_logits(const g4_context *c) { return g4_get_logits_ith(c, -1); }
const float *g4_get_hidden(const g4_context *c) { return c->n_logits ? c->hidden : NULL; }

void g4_kv_clear(g4_context *c)
{
    c->n_past = 0;
    c->n_logits = 0;
}

g4_status g4_kv_truncate(g4_context *c, uint32_t pos, char *err, size_t errlen)
{
    if (pos > c->n_past)
        return g4_fail(err, errlen, G4_ERR_INVALID, "cannot truncate to position %u: only %u positions are cached", pos, c->n_past);
    const g4_model *m = c->model;
    /* The next token at `pos` needs positions pos-window+1 .. pos-1 on the
     * sliding layers; the ring holds the last `size` positions written. */
    uint64_t need_from = pos + 1 > m->sliding_window ? (uint64_t)pos + 1 - m->sliding_window : 0;
    for (uint32_t l = 0; l < m->n_layer; l++) {
        uint64_t size = c->kv[l].size;
        uint64_t oldest = c->n_past > size ? c->n_past - size : 0;
        if (m->layers[l].sliding && need_from < oldest) {
            g4_kv_clear(c);
            return g4_fail(err, errlen, G4_ERR_INVALID,
                           "cannot truncate from %u back to %u: the sliding-window cache keeps only %llu positions; cache cleared",
                           c->n_past, pos, (unsigned long long)size);
        }
    }
    c->n_past = pos;
    c->n_logits = 0;
    return G4_OK;
}

/* ---- placeholders (engine work in progress) ---- */
void g4_context_set_abort(g4_context *c, g4_abort_cb cb, void *user) { (void)c; (void)cb; (void)user; }
g4_status g4_decode_embd(g4_context *c, const float *rows, uint32_t n, g4_embd_kind kind, bool want_all, char *err, size_t errlen)
{ (void)c; (void)rows; (void)n; (void)kind; (void)want_all; return g4_fail(err, errlen, G4_ERR_UNSUPPORTED, "g4_decode_embd: not implemented yet"); }
g4_status g4_decode_multi(g4_context **c, const int32_t *t, uint32_t n, char *err, size_t errlen)
{ (void)c; (void)t; (void)n; return g4_fail(err, errlen, G4_ERR_UNSUPPORTED, "g4_decode_multi: not implemented yet"); }
