/*
 * quantize.h - convert a GGUF model to another weight type ("gemma4 quantize").
 *
 * The output is a GGUF that llama.cpp loads: every metadata key of the input
 * is copied exactly (in order), general.file_type is set to the llama_ftype
 * of the requested mix, and general.quantization_version = 2 is set for
 * quantized mixes.  Tensors keep their order, names and shapes; each gets a
 * type chosen by the policy below and its data is converted block of rows by
 * block of rows (dequantized to f32, then quantized with the reference
 * quantizers of kernels/quant.h, which are byte-identical to ggml's), so
 * memory stays bounded whatever the model size.
 *
 * Tensor policy (that of llama.cpp's llama_model_quantize without imatrix):
 *
 *   - tensors with one non-trivial dimension (norms, rope_freqs,
 *     layer_output_scale, biases) become F32 whatever their input type;
 *   - "weight" matrices (2-D or more) get the mix's default type, except
 *     those llama.cpp never quantizes (*_norm.weight, ffn_gate_inp, altup,
 *     laurel, per_layer_model_proj, position/token-type embeddings, ...),
 *     which keep their input type and bytes;
 *   - for quantized mixes (not f32/f16/bf16) llama.cpp's adjustments:
 *       * the output matrix -- output.weight, or token_embd.weight when the
 *         embeddings are tied as in Gemma -- gets Q6_K (Q8_0 stays Q8_0;
 *         Q8_0 as well when its rows don't fit the default type's blocks);
 *       * Q4_K_M / Q5_K_M: attn_v.weight number i of n and ffn_down.weight of
 *         layer i of n_layer get Q6_K when use_more_bits(i, n):
 *             i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2
 *         (attn_v tensors are counted in layer order, so layers without one,
 *         e.g. Gemma 4 global layers with V = K, don't count);
 *         attn_qkv.weight gets Q5_K (Q4_K_M) / Q6_K (Q5_K_M);
 *       * Q4_K_S: the first 4 attn_v and ffn_down of the first n_layer/8
 *         layers get Q5_K;
 *   - --embd-type (params.embd_type) overrides token_embd.weight's type;
 *   - a matrix whose row length is not a multiple of the chosen type's block
 *     size falls back like llama.cpp (Q4_K -> Q5_0, Q5_K -> Q5_1,
 *     Q6_K -> Q8_0) and, when that doesn't fit either (or for the 32-block
 *     types, where llama.cpp gives up), to F16; each fallback is reported
 *     through the note callback;
 *   - a tensor whose type doesn't change is copied byte for byte.
 *
 * Safety: the input is parsed by the hostile-input GGUF reader; a tensor
 * whose type would have to be converted but has no dequantizer here is an
 * error naming it.  The output is written to "OUT.tmp" and renamed over OUT
 * only after everything succeeded (the temporary file is removed on any
 * failure); OUT must not be the input (same inode, also checked for
 * OUT.tmp), and an existing OUT is only replaced with params.force.
 */
#ifndef G4_QUANTIZE_H
#define G4_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"

/* llama.cpp's llama_ftype values (general.file_type) of the supported mixes. */
enum {
    G4_FTYPE_ALL_F32       = 0,
    G4_FTYPE_MOSTLY_F16    = 1,
    G4_FTYPE_MOSTLY_Q4_0   = 2,
    G4_FTYPE_MOSTLY_Q4_1   = 3,
    G4_FTYPE_MOSTLY_Q8_0   = 7,
    G4_FTYPE_MOSTLY_Q5_0   = 8,
    G4_FTYPE_MOSTLY_Q5_1   = 9,
    G4_FTYPE_MOSTLY_Q4_K_S = 14,
    G4_FTYPE_MOSTLY_Q4_K_M = 15,
    G4_FTYPE_MOSTLY_Q5_K_S = 16,
    G4_FTYPE_MOSTLY_Q5_K_M = 17,
    G4_FTYPE_MOSTLY_Q6_K   = 18,
    G4_FTYPE_MOSTLY_BF16   = 32,
};

/* Progress: input tensor bytes converted so far / in total, the tensor being
 * written (index i of n) and its output type.  Called at least once per
 * tensor and once per row block of big tensors, from the calling thread. */
typedef void (*g4_quantize_progress_fn)(void *user, uint64_t done, uint64_t total,
                                        uint64_t i_tensor, uint64_t n_tensors,
                                        const char *tensor, uint32_t type);
/* One-line notes (type fallbacks), before any data is written. */
typedef void (*g4_quantize_note_fn)(void *user, const char *msg);

typedef struct {
    uint32_t ftype;       /* G4_FTYPE_*; default G4_FTYPE_MOSTLY_Q4_K_M */
    int64_t  embd_type;   /* ggml type id for token_embd.weight; -1 (default)
                             = the mix's choice */
    int      n_threads;   /* 0 (default) = one per physical core */
    bool     force;       /* replace an existing output file; default false */
    g4_quantize_progress_fn progress;  /* may be NULL */
    void    *progress_user;
    g4_quantize_note_fn note;          /* may be NULL */
    void    *note_user;
} g4_quantize_params;

void g4_quantize_default_params(g4_quantize_params *p);

/* Mix names, case-insensitive: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_s
 * q4_k_m q5_k_s q5_k_m q6_k, and llama-quantize's aliases q4_k (= q4_k_m)
 * and q5_k (= q5_k_m).  Returns 0, or -1 if unknown. */
int         g4_quantize_ftype_from_name(const char *s, uint32_t *ftype);
const char *g4_quantize_ftype_name(uint32_t ftype);   /* NULL if not supported */
/* Single ggml types accepted for embd_type (case-insensitive): f32 f16 bf16
 * q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k.  Returns 0, or -1. */
int         g4_quantize_type_from_name(const char *s, uint32_t *type);

/* The output type of every tensor of f (types[i] for tensor i), by the policy
 * above; fallbacks are reported through p->note.  Returns 0, or -1 with a
 * one-line message (bad params, or an input tensor that needs a conversion
 * its type has no dequantizer for). */
int g4_quantize_plan(const gguf_file *f, const g4_quantize_params *p, uint32_t *types,
                     char *err, size_t errlen);

/* Converts in -> out.  Returns 0, or -1 with a one-line message; on failure
 * out is untouched and no temporary file is left behind. */
int g4_quantize_file(const g4_quantize_params *p, const char *in, const char *out,
                     char *err, size_t errlen);

#endif
