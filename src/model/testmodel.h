/*
 * testmodel.h - random-weight Gemma 4 GGUF generator ("make-test-model").
 *
 * Writes a GGUF file with the real Gemma 4 dense layout (arch "gemma4": sliding
 * and global layers, K = V on global layers, proportional RoPE, per-layer
 * output scale, tied embeddings), the metadata keys llama.cpp requires, and a
 * small but valid "gemma4" BPE tokenizer.  Weights come from a deterministic
 * PRNG: the same parameters always give byte-identical files, whatever the
 * thread count.  Tensors are generated, quantized and written in row blocks,
 * so memory stays bounded (tens of MB) even for the full 12B/31B shapes.
 */
#ifndef G4_TESTMODEL_H
#define G4_TESTMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Weight "file types": a single ggml type, or the Q4_K_M mix. */
typedef enum {
    G4_TM_F32 = 0,
    G4_TM_F16,
    G4_TM_BF16,
    G4_TM_Q8_0,
    G4_TM_Q4_0,
    G4_TM_Q4_K_M, /* Q4_K; Q6_K for token_embd, attn_v and ffn_down */
    G4_TM_Q6_K,
    G4_TM_COUNT_
} g4_tm_type;

/* Progress callback: bytes of tensor data written so far / total, and the
 * tensor being written.  Called at least once per tensor and once per row
 * block of big tensors. */
typedef void (*g4_tm_progress_fn)(void *user, uint64_t done, uint64_t total,
                                  const char *tensor);

typedef struct {
    const char *name;           /* general.name; NULL = "gemma4-test-<preset>-<type>" */
    uint32_t n_vocab;           /* >= g4_test_model_min_vocab() */
    uint32_t n_embd;
    uint32_t n_layer;
    uint32_t n_head;
    uint32_t n_kv_head_swa;     /* KV heads of sliding layers */
    uint32_t n_kv_head_global;  /* KV heads of global layers */
    uint32_t head_dim_swa;
    uint32_t head_dim_global;
    uint32_t n_ff;
    uint32_t sliding_window;
    uint32_t n_ctx_train;
    uint32_t swa_period;        /* layer l is global iff (l+1) % period == 0 or l is last */
    bool     k_eq_v;            /* global layers have no attn_v (V = K) */
    float    rope_base;         /* global layers */
    float    rope_base_swa;     /* sliding layers */
    float    softcap;           /* final logit soft-cap; 0 = off */
    float    rms_eps;
    g4_tm_type type;            /* matrices */
    int        embd_type;       /* token_embd: a g4_tm_type, or -1 = default
                                   (as `type`, except q4_0/q4_k_m -> q6_k) */
    uint64_t seed;
    int      n_threads;         /* 0 = online CPUs */
    const char *preset;         /* informational, used for the default name */
    g4_tm_progress_fn progress; /* may be NULL */
    void    *progress_user;
} g4_test_model_params;

/* Defaults = the "tiny" preset, f32, seed 1. */
void g4_test_model_default_params(g4_test_model_params *p);
/* Overwrites the shape fields with a preset: "tiny", "12b" or "31b".
 * Returns 0, or -1 for an unknown name. */
int  g4_test_model_preset(g4_test_model_params *p, const char *preset);

/* "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q6_k" -> type; -1 if unknown. */
int         g4_tm_type_from_name(const char *s);
const char *g4_tm_type_name(g4_tm_type t);

/* Smallest vocabulary the tokenizer layout fits in. */
uint32_t g4_test_model_min_vocab(void);

/* Checks every field; returns 0 or -1 with a one-line message naming the
 * offending option (CLI spelling, e.g. "--head-dim"). */
int g4_test_model_validate(const g4_test_model_params *p, char *err, size_t errlen);

/* Layer l is a sliding-window layer (the rule used for the pattern). */
bool g4_test_model_layer_is_swa(const g4_test_model_params *p, uint32_t l);

/* ggml type chosen for a tensor of the given name and row length (after the
 * block-size fallback), e.g. to predict what the file holds. */
uint32_t g4_test_model_tensor_type(const g4_test_model_params *p, const char *name,
                                   uint64_t row_len);

/* Writes the model.  Returns 0, or -1 with a one-line message (the partial
 * file is removed). */
int g4_make_test_model(const g4_test_model_params *p, const char *path,
                       char *err, size_t errlen);

#endif
