/*
 * gemma4.h - public C API of gemma4.c, a CPU engine for Google's Gemma 4
 * (12B "Unified" and 31B dense decoders) reading llama.cpp-style GGUF files.
 *
 * Conventions (whisper.cpp style):
 *  - opaque handles; parameters in structs obtained from *_default_params()
 *    so that new fields never break callers;
 *  - every call that can fail returns an enum g4_status and, when `err` is
 *    not NULL, writes a one-line NUL-terminated message into err[errlen];
 *  - the library never prints and never exits.
 */
#ifndef GEMMA4_H
#define GEMMA4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GEMMA4_VERSION "0.1.0"

typedef enum {
    G4_OK = 0,
    G4_ERR_IO = 1,          /* cannot open/read/map a file */
    G4_ERR_FORMAT = 2,      /* malformed or hostile file */
    G4_ERR_UNSUPPORTED = 3, /* valid file, feature not implemented */
    G4_ERR_INVALID = 4,     /* bad argument (token id, position, size) */
    G4_ERR_NOMEM = 5,
    G4_ERR_CONTEXT_FULL = 6 /* batch does not fit in n_ctx */
} g4_status;

typedef struct g4_model g4_model;
typedef struct g4_context g4_context;

typedef enum { G4_KV_F32 = 0, G4_KV_F16 = 1 } g4_kv_type;

typedef struct {
    bool use_mmap;     /* map the file (default true); false reads it into memory */
    int  n_threads;    /* worker threads for compute; 0 = number of CPU cores */
} g4_model_params;

typedef struct {
    uint32_t   n_ctx;    /* positions the context can hold; 0 = min(model's, 4096) */
    uint32_t   n_batch;  /* max tokens per forward pass (prompt chunking); default 512 */
    g4_kv_type kv_type;  /* KV cache storage; default F16 */
    int        n_threads;/* 0 = the model's */
    /* false (default): before each matrix product the activations are
     *   rounded to the weight type's dot-product format (8-bit blocks for
     *   quantized weights, f16/bf16 for half weights), exactly as llama.cpp
     *   does; integer dot products.
     * true: activations stay f32 and weights are dequantized on the fly:
     *   the model's math without activation rounding (slower). */
    bool       f32_activations;
} g4_context_params;

g4_model_params   g4_model_default_params(void);
g4_context_params g4_context_default_params(void);

g4_status g4_model_load(const char *path, const g4_model_params *params,
                        g4_model **out, char *err, size_t errlen);
void      g4_model_free(g4_model *model);

/* Hyperparameters of a loaded model. */
typedef struct {
    char     arch[32];
    char     name[128];
    uint32_t n_vocab, n_embd, n_layer, n_head, n_ff;
    uint32_t n_ctx_train, sliding_window;
    uint32_t head_dim_swa, head_dim_global;
    uint32_t n_rot_swa, n_rot_global;
    float    rope_base_swa, rope_base_global;
    float    rms_eps, final_logit_softcap;
    uint64_t n_params, weight_bytes;
} g4_model_info;

void     g4_model_get_info(const g4_model *model, g4_model_info *out);
/* Per layer: true for a sliding-window layer, and its KV-head count. */
bool     g4_model_layer_is_sliding(const g4_model *model, uint32_t layer);
uint32_t g4_model_layer_n_kv_head(const g4_model *model, uint32_t layer);
/* Bytes of KV cache a context of n_ctx positions needs (sliding layers are
 * capped at their window). */
uint64_t g4_model_kv_bytes(const g4_model *model, uint32_t n_ctx, g4_kv_type kv_type);

/* The tensors of the loaded file, in file order (for `gemma4 info`). */
typedef struct {
    const char *name;       /* valid while the model is loaded */
    const char *type_name;  /* ggml's name: "f32", "q4_0", "q6_K", ... */
    uint32_t    type;       /* ggml type id */
    uint32_t    n_dims;
    uint64_t    ne[4];
    uint64_t    n_elements, nbytes;
} g4_tensor_info;

uint64_t g4_model_n_tensors(const g4_model *model);
bool     g4_model_tensor_info(const g4_model *model, uint64_t i, g4_tensor_info *out);

g4_status g4_context_new(g4_model *model, const g4_context_params *params,
                         g4_context **out, char *err, size_t errlen);
void      g4_context_free(g4_context *ctx);
uint32_t  g4_context_n_ctx(const g4_context *ctx);
/* Number of positions currently in the KV cache (the next token's position). */
uint32_t  g4_context_n_past(const g4_context *ctx);

/* Run the decoder over n tokens that continue the sequence at position
 * n_past.  Batches larger than n_batch are split internally.  When want_all
 * is true, logits of every token are kept (g4_get_logits_ith); otherwise only
 * those of the last token. */
g4_status g4_decode(g4_context *ctx, const int32_t *tokens, uint32_t n,
                    bool want_all, char *err, size_t errlen);

/* Logits (n_vocab floats) of token i of the last g4_decode call; i = -1 is
 * the last one.  NULL when i is out of range or not kept. */
const float *g4_get_logits_ith(const g4_context *ctx, int32_t i);
const float *g4_get_logits(const g4_context *ctx);        /* = ith(-1) */
/* Final hidden state (n_embd floats, after output_norm) of the last token. */
const float *g4_get_hidden(const g4_context *ctx);

/* Forget every position >= pos (pos <= n_past).  Sliding layers can only go
 * back inside their window; a truncation further back than the window's
 * reach clears the cache and returns G4_ERR_INVALID. */
g4_status g4_kv_truncate(g4_context *ctx, uint32_t pos, char *err, size_t errlen);
void      g4_kv_clear(g4_context *ctx);

const char *g4_status_str(g4_status s);

/* ---- text: tokenizer ---- */

/* ---- text: chat template ---- */

/* ---- text: output parser ---- */

#ifdef __cplusplus
}
#endif
#endif
