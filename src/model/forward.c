/*
 * forward.c - the Gemma 4 decoder forward pass, step by step as in
 * shared/spec/gemma4-text.md §2 (numbers in comments are the spec's steps).
 *
 * A call processes a batch of n rows (token ids or soft-token embeddings);
 * row t belongs to sequence rows[t].seq (whose KV cache it writes and
 * reads) at position rows[t].pos: one sequence's prompt, or one token of
 * each of several sequences (continuous batching).  Activations are f32 row-major
 * [token][feature].  Every weight matrix is read once per batch (g4_matmul),
 * so a prompt costs one pass over the weights per batch, not per token.
 * No SIMD, quantization format or threading detail lives here.
 */
#include <math.h>
#include <string.h>

#include "kernels/quant.h"
#include "model/model.h"

/* ---- KV cache rows ---------------------------------------------------- */

static void kv_store(const g4_context *seq, const g4_kv_layer *kv, uint32_t slot, void *base, const float *src)
{
    if (seq->kv_type == G4_KV_F32) {
        memcpy((float *)base + (size_t)slot * kv->row, src, sizeof(float) * kv->row);
    } else {
        g4_f32_to_f16_row(src, (uint16_t *)base + (size_t)slot * kv->row, kv->row);
    }
}

/* ---- steps 2-6 for one token (tokens spread over the pool) ------------- */

typedef struct {
    g4_context *ctx;
    const g4_row *rows;
    uint32_t l;
} qkv_job;

static void qkv_token(void *arg, int64_t item, int tid)
{
    qkv_job *j = arg;
    g4_context *ctx = j->ctx;
    const g4_model *m = ctx->model;
    const g4_layer *ly = &m->layers[j->l];
    const uint32_t t = (uint32_t)item, hd = ly->head_dim, nq = m->n_head, nkv = ly->n_kv_head;
    const uint32_t qdim = nq * hd, kvdim = nkv * hd;
    const float eps = m->rms_eps;
    uint32_t pos = j->rows[t].pos;
    g4_kv_layer *kv = &j->rows[t].seq->kv[j->l];
    float *q = ctx->q + (size_t)t * qdim, *k = ctx->k + (size_t)t * kvdim, *v = ctx->v + (size_t)t * kvdim;
    float *cs = ctx->rope_cs + (size_t)tid * m->max_head_dim;
    /* 2, 4: per-head q-norm and k-norm (weighted), v-norm (no weight) */
    for (uint32_t h = 0; h < nq; h++) g4_rmsnorm(q + h * hd, ly->attn_q_norm, hd, eps);
    for (uint32_t h = 0; h < nkv; h++) {
        g4_rmsnorm(k + h * hd, ly->attn_k_norm, hd, eps);
        g4_rmsnorm(v + h * hd, NULL, hd, eps);
    }
    /* 5: RoPE on q and k; global layers use the proportional divisors */
    g4_rope_cache(cs, ly->n_rot, pos, ly->rope_base, ly->sliding ? NULL : m->rope_freqs);
    for (uint32_t h = 0; h < nq; h++) g4_rope_apply(q + h * hd, ly->n_rot, cs);
    for (uint32_t h = 0; h < nkv; h++) g4_rope_apply(k + h * hd, ly->n_rot, cs);
    /* 6: append to the cache (ring slot on sliding layers); rows of one
     * batch never share a slot */
    uint32_t slot = pos % kv->size;
    kv_store(j->rows[t].seq, kv, slot, kv->k, k);
    kv_store(j->rows[t].seq, kv, slot, kv->v, v);
}

/* ---- per-token norms and residuals (tokens spread over the pool) -------- */

enum { NORM_PRE, NORM_POST_ATTN, NORM_POST_FFW };

typedef struct {
    g4_context *ctx;
    const g4_layer *ly;
    int step;
    const float *w; /* NORM_PRE: attn_norm or ffn_norm */
} norm_job;

static void norm_token(void *arg, int64_t item, int tid)
{
    (void)tid;
    const norm_job *j = arg;
    g4_context *ctx = j->ctx;
    const g4_model *m = ctx->model;
    const uint32_t H = m->n_embd;
    const float eps = m->rms_eps;
    float *x = ctx->x + (size_t)item * H, *h = ctx->h + (size_t)item * H, *a = ctx->a + (size_t)item * H;
    switch (j->step) {
    case NORM_PRE: /* 1 / 12: h = rmsnorm(x, attn_norm or ffn_norm) */
        memcpy(h, x, sizeof(float) * H);
        g4_rmsnorm(h, j->w, H, eps);
        break;
    case NORM_POST_ATTN: /* 10-11: x += rmsnorm(a, post_attention_norm) */
        g4_rmsnorm(a, j->ly->post_attention_norm, H, eps);
        for (uint32_t i = 0; i < H; i++) x[i] += a[i];
        break;
    default: /* 14-16: x = (x + rmsnorm(a, post_ffw_norm)) * layer_output_scale */
        g4_rmsnorm(a, j->ly->post_ffw_norm, H, eps);
        for (uint32_t i = 0; i < H; i++) x[i] = (x[i] + a[i]) * j->ly->layer_output_scale;
        break;
    }
}

/* ---- one decoder layer ------------------------------------------------- */

static void layer_forward(g4_context *ctx, const g4_row *rows, uint32_t l, uint32_t n)
{
    const g4_model *m = ctx->model;
    const g4_layer *ly = &m->layers[l];
    g4_pool *pool = ctx->pool;
    const uint32_t kvdim = ly->n_kv_head * ly->head_dim;

    /* 1: h = rmsnorm(x, attn_norm) */
    norm_job nj = { ctx, ly, NORM_PRE, ly->attn_norm };
    g4_pool_run(pool, n, norm_token, &nj);

    /* 2-3: projections; V is the raw K projection when attn_v is absent */
    g4_matmul(pool, &ly->attn_q, ctx->h, ctx->q, n, ctx->f32_act);
    g4_matmul(pool, &ly->attn_k, ctx->h, ctx->k, n, ctx->f32_act);
    if (ly->k_eq_v) memcpy(ctx->v, ctx->k, sizeof(float) * (size_t)n * kvdim);
    else            g4_matmul(pool, &ly->attn_v, ctx->h, ctx->v, n, ctx->f32_act);

    qkv_job qj = { ctx, rows, l };
    g4_pool_run(pool, n, qkv_token, &qj);

    /* 7-8: attention over the cache (attention.c) */
    g4_attention(ctx, rows, n, l);

    /* 9-11: output projection, post-attention norm, residual */
    g4_matmul(pool, &ly->attn_output, ctx->o, ctx->a, n, ctx->f32_act);
    nj.step = NORM_POST_ATTN;
    g4_pool_run(pool, n, norm_token, &nj);

    /* 12-13: h = rmsnorm(x, ffn_norm); m = Wdown (gelu_tanh(Wgate h) * (Wup h)) */
    nj.step = NORM_PRE;
    nj.w = ly->ffn_norm;
    g4_pool_run(pool, n, norm_token, &nj);
    g4_matmul_geglu(pool, &ly->ffn_gate, &ly->ffn_up, ctx->h, ctx->g, ctx->u, n, ctx->f32_act);
    g4_matmul(pool, &ly->ffn_down, ctx->g, ctx->a, n, ctx->f32_act);

    /* 14-16: post-FFN norm, residual, layer output scalar */
    nj.step = NORM_POST_FFW;
    g4_pool_run(pool, n, norm_token, &nj);
}

/* ---- whole pass -------------------------------------------------------- */

bool g4_forward(g4_context *ctx, const g4_row *rows, const int32_t *tokens, const float *embd, uint32_t n,
                const int32_t *out_rows)
{
    const g4_model *m = ctx->model;
    const uint32_t H = m->n_embd, V = m->n_vocab;

    /* 2.1: token embedding rows scaled by sqrt(n_embd); soft-token rows
     * (multimodal §4.3) enter as they are. */
    for (uint32_t t = 0; t < n; t++) {
        float *x = ctx->x + (size_t)t * H;
        if (tokens) {
            g4_mat_row(&m->token_embd, tokens[t], x);
            for (uint32_t i = 0; i < H; i++) x[i] *= m->embd_scale;
        } else {
            memcpy(x, embd + (size_t)t * H, sizeof(float) * H);
        }
    }

    for (uint32_t l = 0; l < m->n_layer; l++) {
        if (ctx->abort_cb && ctx->abort_cb(ctx->abort_user)) return false;
        layer_forward(ctx, rows, l, n);
        if (ctx->layer_cb) ctx->layer_cb(ctx->layer_user, l, ctx->x, n);
    }

    /* 2.3: final norm on the rows whose logits are wanted, then the
     * (usually tied) LM head in one batched product, then the softcap. */
    uint32_t n_out = 0;
    for (uint32_t t = 0; t < n; t++) {
        if (out_rows[t] < 0 && t != n - 1) continue;
        float *h = ctx->h + (size_t)n_out * H;
        memcpy(h, ctx->x + (size_t)t * H, sizeof(float) * H);
        g4_rmsnorm(h, m->output_norm, H, m->rms_eps);
        if (t == n - 1) memcpy(ctx->hidden, h, sizeof(float) * H);
        if (out_rows[t] >= 0) n_out++;
    }
    if (n_out == 0) return true;
    /* The batch of n_out rows is contiguous in ctx->h; rows of logits land
     * at consecutive out_rows (the caller numbers them that way). */
    int32_t first_row = -1;
    for (uint32_t t = 0; t < n; t++) if (out_rows[t] >= 0) { first_row = out_rows[t]; break; }
    float *logits = ctx->logits + (size_t)first_row * V;
    g4_matmul(ctx->pool, &m->output, ctx->h, logits, n_out, ctx->f32_act);
    float cap = m->final_logit_softcap;
    for (size_t i = 0; i < (size_t)n_out * V; i++) {
        if (cap > 0.0f) logits[i] = cap * tanhf(logits[i] / cap);
    }
    for (uint32_t r = 0; r < n_out; r++)
        for (uint32_t i = 0; i < m->n_suppress; i++) logits[(size_t)r * V + m->suppress_tokens[i]] = -INFINITY;
    return true;
}
