/*
 * context.c - inference contexts: KV cache allocation, batching of
 * g4_decode calls into forward passes of at most n_batch tokens, logits
 * bookkeeping and cache truncation.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

g4_context_params g4_context_default_params(void)
{
    g4_context_params p = { .n_ctx = 0, .n_batch = 512, .kv_type = G4_KV_F16, .n_threads = 0,
                            .f32_activations = false, .n_rewind = 0 };
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
    if (p.n_rewind > p.n_ctx) p.n_rewind = p.n_ctx;
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
        kv->size = g4_kv_slots(m, l, p.n_ctx, p.n_rewind > p.n_batch ? p.n_rewind : p.n_batch);
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
        c->att = alloc_floats((uint64_t)g4_pool_size(c->pool) * 2 * G4_ATT_CHUNK * m->max_head_dim, &ok);
        c->att_tiles = alloc_floats(2 * nb, &ok); /* two u32 per tile */
        c->hidden = alloc_floats(m->n_embd, &ok);
        c->rope_cs = alloc_floats((uint64_t)g4_pool_size(c->pool) * m->max_head_dim, &ok);
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
    free(c->g); free(c->u); free(c->att); free(c->att_tiles); free(c->hidden); free(c->logits); free(c->rope_cs);
    free(c);
}

uint32_t g4_context_n_ctx(const g4_context *c) { return c->n_ctx; }
uint32_t g4_context_n_past(const g4_context *c) { return c->n_past; }

static g4_status reserve_logits(g4_context *c, uint32_t rows, char *err, size_t errlen)
{
    if (rows <= c->cap_logits) return G4_OK;
    uint64_t need = (uint64_t)rows * c->model->n_vocab;
    if (need > SIZE_MAX / sizeof(float))
        return g4_fail(err, errlen, G4_ERR_NOMEM, "logits for %u tokens do not fit in memory", rows);
    float *nl = realloc(c->logits, (size_t)need * sizeof(float));
    if (!nl) return g4_fail(err, errlen, G4_ERR_NOMEM, "cannot allocate logits for %u tokens", rows);
    c->logits = nl;
    c->cap_logits = rows;
    return G4_OK;
}

/* Runs n rows (tokens, or embd rows when tokens is NULL) of one sequence in
 * forward passes of at most n_batch; an image block is one pass. */
static g4_status run_batches(g4_context *c, const int32_t *tokens, const float *embd, uint32_t n, bool want_all,
                             g4_embd_kind kind, char *err, size_t errlen)
{
    const g4_model *m = c->model;
    uint32_t rows = want_all ? n : 1;
    g4_status st = reserve_logits(c, rows, err, errlen);
    if (st != G4_OK) return st;
    int32_t *out_rows = malloc(sizeof(int32_t) * c->n_batch);
    g4_row *rw = malloc(sizeof(g4_row) * c->n_batch);
    if (!out_rows || !rw) {
        free(out_rows); free(rw);
        return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory");
    }
    c->n_logits = 0;
    uint32_t blk_end = kind == G4_EMBD_IMAGE ? c->n_past + n : 0;
    for (uint32_t done = 0; done < n;) {
        uint32_t chunk = n - done < c->n_batch ? n - done : c->n_batch;
        for (uint32_t t = 0; t < chunk; t++) {
            bool keep = want_all || done + t == n - 1;
            out_rows[t] = keep ? (int32_t)(want_all ? done + t : 0) : -1;
            rw[t].seq = c;
            rw[t].pos = c->n_past + t;
            rw[t].blk_end = blk_end;
        }
        uint64_t end = (uint64_t)c->n_past + chunk;
        if (end > c->kv_hw) c->kv_hw = end;  /* conservatively, even if aborted midway */
        bool fin = g4_forward(c, rw, tokens ? tokens + done : NULL, embd ? embd + (size_t)done * m->n_embd : NULL,
                              chunk, out_rows);
        if (!fin) {
            free(out_rows); free(rw);
            return g4_fail(err, errlen, G4_ERR_ABORTED, "aborted at position %u (%u of %u positions done)",
                           c->n_past, done, n);
        }
        c->n_past += chunk;
        done += chunk;
    }
    free(out_rows);
    free(rw);
    c->n_logits = rows;
    return G4_OK;
}

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
    return run_batches(c, tokens, NULL, n, want_all, G4_EMBD_CAUSAL, err, errlen);
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
    c->kv_hw = 0;
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
        uint64_t hw = c->kv_hw > c->n_past ? c->kv_hw : c->n_past;
        uint64_t oldest = hw > size ? hw - size : 0;
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

void g4_context_set_abort(g4_context *c, g4_abort_cb cb, void *user)
{
    c->abort_cb = cb;
    c->abort_user = user;
}

g4_status g4_decode_embd(g4_context *c, const float *rows, uint32_t n, g4_embd_kind kind, bool want_all, char *err,
                         size_t errlen)
{
    const g4_model *m = c->model;
    if (n == 0) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_decode_embd: no rows");
    if (!rows) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_decode_embd: rows is NULL");
    if (kind != G4_EMBD_CAUSAL && kind != G4_EMBD_IMAGE)
        return g4_fail(err, errlen, G4_ERR_INVALID, "g4_decode_embd: unknown kind %d", (int)kind);
    if ((uint64_t)c->n_past + n > c->n_ctx)
        return g4_fail(err, errlen, G4_ERR_CONTEXT_FULL, "context full: %u positions used + %u soft tokens > n_ctx %u",
                       c->n_past, n, c->n_ctx);
    /* The block's rows see each other, so all of their keys must be in the
     * cache before any of them attends: one forward pass. */
    if (kind == G4_EMBD_IMAGE && n > c->n_batch)
        return g4_fail(err, errlen, G4_ERR_INVALID,
                       "an image of %u soft tokens needs a batch of at least %u (n_batch is %u)", n, n, c->n_batch);
    for (uint64_t i = 0; i < (uint64_t)n * m->n_embd; i++)
        if (!isfinite(rows[i]))
            return g4_fail(err, errlen, G4_ERR_INVALID, "soft-token row %llu has a non-finite value",
                           (unsigned long long)(i / m->n_embd));
    return run_batches(c, NULL, rows, n, want_all, kind, err, errlen);
}

g4_status g4_decode_multi(g4_context **ctxs, const int32_t *tokens, uint32_t n, char *err, size_t errlen)
{
    if (n == 0) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_decode_multi: no sequences");
    if (!ctxs || !tokens) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_decode_multi: ctxs and tokens are required");
    g4_context *lead = ctxs[0];
    if (!lead) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_decode_multi: context 0 is NULL");
    const g4_model *m = lead->model;
    for (uint32_t i = 0; i < n; i++) {
        g4_context *c = ctxs[i];
        if (!c) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_decode_multi: context %u is NULL", i);
        if (c->model != m) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_decode_multi: context %u has another model", i);
        if (c->f32_act != lead->f32_act)
            return g4_fail(err, errlen, G4_ERR_INVALID, "g4_decode_multi: contexts differ in f32_activations");
        for (uint32_t j = 0; j < i; j++)
            if (ctxs[j] == c) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_decode_multi: context %u appears twice", i);
        if (c->n_past + 1 > c->n_ctx)
            return g4_fail(err, errlen, G4_ERR_CONTEXT_FULL, "context full: sequence %u holds %u of %u positions", i,
                           c->n_past, c->n_ctx);
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= m->n_vocab)
            return g4_fail(err, errlen, G4_ERR_INVALID, "token %d of sequence %u is outside the vocabulary [0, %u)",
                           tokens[i], i, m->n_vocab);
        /* the scratch owner: the largest context, so that attention's
         * per-thread score rows fit every sequence */
        if (c->n_ctx > lead->n_ctx || (c->n_ctx == lead->n_ctx && c->n_batch > lead->n_batch)) lead = c;
    }
    if (n > lead->n_batch)
        return g4_fail(err, errlen, G4_ERR_INVALID, "g4_decode_multi: %u sequences exceed n_batch %u", n, lead->n_batch);
    g4_status st = reserve_logits(lead, n, err, errlen);
    if (st != G4_OK) return st;
    int32_t *out_rows = malloc(sizeof(int32_t) * n);
    g4_row *rw = malloc(sizeof(g4_row) * n);
    if (!out_rows || !rw) {
        free(out_rows); free(rw);
        return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        out_rows[i] = (int32_t)i;
        rw[i] = (g4_row){ ctxs[i], ctxs[i]->n_past, 0 };
        uint64_t end = (uint64_t)ctxs[i]->n_past + 1;
        if (end > ctxs[i]->kv_hw) ctxs[i]->kv_hw = end;
    }
    /* one step is short: the abort callback is not consulted */
    g4_abort_cb saved = lead->abort_cb;
    lead->abort_cb = NULL;
    g4_forward(lead, rw, tokens, NULL, n, out_rows);
    lead->abort_cb = saved;
    const uint32_t V = m->n_vocab, H = m->n_embd;
    /* Hand each sequence its row; the lead's own row last, since its buffer
     * holds all of them. */
    uint32_t lead_i = 0;
    for (uint32_t i = 0; i < n; i++) {
        g4_context *c = ctxs[i];
        if (c == lead) { lead_i = i; continue; }
        memcpy(c->logits, lead->logits + (size_t)i * V, sizeof(float) * V);
        memcpy(c->hidden, lead->h + (size_t)i * H, sizeof(float) * H);
        c->n_logits = 1;
        c->n_past++;
    }
    if (lead_i) memmove(lead->logits, lead->logits + (size_t)lead_i * V, sizeof(float) * V);
    memcpy(lead->hidden, lead->h + (size_t)lead_i * H, sizeof(float) * H);
    lead->n_logits = 1;
    lead->n_past++;
    free(out_rows);
    free(rw);
    return G4_OK;
}
