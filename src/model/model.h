/*
 * model.h - in-memory Gemma 4 decoder: hyperparameters read from GGUF
 * metadata, weights bound to tensors of the (mapped) file, and the context
 * state (KV cache, scratch) the forward pass works in.
 *
 * Names follow the spec (shared/spec/gemma4-text.md) and the GGUF tensor
 * names: sliding / global layer, attn_q, ffn_gate, layer_output_scale, ...
 */
#ifndef G4_MODEL_H
#define G4_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "gemma4.h"
#include "gguf/gguf.h"
#include "kernels/ops.h"
#include "kernels/threadpool.h"

typedef struct {
    bool     sliding;     /* sliding-window layer (else global) */
    uint32_t head_dim;    /* 256 sliding / 512 global on 12B */
    uint32_t n_kv_head;
    uint32_t n_rot;
    float    rope_base;
    bool     k_eq_v;      /* no attn_v: V is the raw K projection */

    g4_mat attn_q, attn_k, attn_v, attn_output;
    g4_mat ffn_gate, ffn_up, ffn_down;
    float *attn_norm, *attn_q_norm, *attn_k_norm, *post_attention_norm;
    float *ffn_norm, *post_ffw_norm;
    float  layer_output_scale; /* 1.0 when the tensor is absent */
} g4_layer;

struct g4_model {
    gguf_file *gguf;
    void      *file_copy;     /* use_mmap == false: the file read into memory */
    int        n_threads;
    g4_pool   *pool;

    char     arch[32], name[128];
    uint32_t n_vocab, n_embd, n_layer, n_head, n_ff;
    uint32_t n_ctx_train, sliding_window;
    uint32_t head_dim_swa, head_dim_global, n_rot_swa, n_rot_global;
    float    rope_base_swa, rope_base_global;
    float    rms_eps, final_logit_softcap;
    float    embd_scale;     /* sqrt(n_embd), fp32 like llama.cpp */

    g4_mat    token_embd;
    g4_mat    output;        /* == token_embd when tied */
    float    *output_norm;
    float    *rope_freqs;    /* n_rot_global/2 divisors, or NULL */
    g4_layer *layers;

    int32_t  *suppress_tokens;
    uint32_t  n_suppress;

    struct g4_tokenizer *tok;  /* src/text/tokenizer.c; may be "unusable" (no tokenizer metadata) */

    uint64_t n_params, weight_bytes;
    uint32_t max_head_dim, max_q_dim, max_kv_dim;
};

/* One layer's KV cache.  Global layers hold n_ctx positions; sliding layers
 * a ring of `size` = min(n_ctx, window + n_batch) slots, slot = pos % size.
 * The extra n_batch slots let a whole batch be written before attention
 * reads the window of its first token, and let the cache be truncated back
 * by up to n_batch positions. */
typedef struct {
    uint32_t size;
    uint32_t row;     /* floats per position: n_kv_head * head_dim */
    void    *k, *v;   /* size x row, f32 or f16 */
} g4_kv_layer;

struct g4_context {
    g4_model *model;
    g4_pool  *pool;   /* the model's pool or the context's own */
    bool      own_pool;
    uint32_t  n_ctx, n_batch;
    g4_kv_type kv_type;
    bool      f32_act;  /* g4_context_params.f32_activations */
    uint32_t  n_past;
    g4_kv_layer *kv;

    /* scratch for one batch of up to n_batch tokens */
    float *x, *h, *q, *k, *v, *o, *a, *g, *u;
    float *att;       /* per thread: a chunk of K and V in f32 (attention.c) */
    void  *att_tiles; /* n_batch row tiles (attention.c) */
    float *rope_cs;   /* per thread: cos/sin of one position, max_head_dim floats */

    float   *logits;    /* n_logits x n_vocab */
    uint32_t n_logits;  /* rows kept by the last decode */
    uint32_t cap_logits;
    float   *hidden;    /* n_embd */

    uint64_t kv_hw;     /* one past the highest position ever written since the
                           last clear: ring slots below kv_hw - size are gone */
    g4_abort_cb abort_cb;
    void       *abort_user;
    /* Test hook (tests/test_mask.c): called after each layer with the
     * residual stream x of the batch (n rows of n_embd). */
    void (*layer_cb)(void *user, uint32_t layer, const float *x, uint32_t n);
    void  *layer_user;
};

/* One row of a forward batch: the sequence (context) it belongs to, its
 * position, and the end of its image block (positions pos < blk_end that it
 * also sees on sliding layers; blk_end <= pos + 1 means causal). */
typedef struct {
    g4_context *seq;
    uint32_t    pos;
    uint32_t    blk_end;
} g4_row;

/* forward.c: run n (<= ctx->n_batch) rows through the decoder, with ctx's
 * scratch and thread pool; input is token ids (tokens) or soft-token rows
 * (embd, n x n_embd) when tokens is NULL.  Every row's sequence must have
 * the rows' positions free.  Writes logits for rows whose out_rows[i] >= 0
 * into ctx->logits + out_rows[i] * n_vocab (consecutive), their final
 * hidden states to ctx->h (consecutive rows), and the last row's into
 * ctx->hidden.  Returns false when ctx's abort callback stopped it (KV rows
 * of some layers were written: the caller must not advance n_past). */
bool g4_forward(g4_context *ctx, const g4_row *rows, const int32_t *tokens, const float *embd, uint32_t n,
                const int32_t *out_rows);

/* attention.c: steps 7-8 for the n rows of a forward batch (q in ctx->q,
 * results in ctx->o); keys walked in chunks of G4_ATT_CHUNK positions for
 * tiles of G4_ATT_TILE rows and G4_ATT_SUB query heads. */
#define G4_ATT_CHUNK 64
#define G4_ATT_TILE 8
#define G4_ATT_SUB 4
void g4_attention(g4_context *ctx, const g4_row *rows, uint32_t n, uint32_t layer);
/* f32 -> f16 (round to nearest even), with F16C where the CPU level allows. */
void g4_f32_to_f16_row(const float *src, uint16_t *dst, uint32_t n);

/* Cache slots of layer l for a context of n_ctx positions, batches of n_batch. */
uint32_t g4_kv_slots(const g4_model *m, uint32_t l, uint32_t n_ctx, uint32_t n_batch);

/* Error helper shared by the model files. */
g4_status g4_fail(char *err, size_t errlen, g4_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
