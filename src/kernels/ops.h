/*
 * ops.h - the handful of operations the forward pass is written in.
 * The model code never touches quantization formats, SIMD or threads
 * directly: it calls these.  Activations are f32 between operations.
 */
#ifndef G4_OPS_H
#define G4_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/threadpool.h"

/* A weight matrix as stored in GGUF: `rows` rows of `cols` elements
 * (ne[1] = rows = output features, ne[0] = cols = input features). */
typedef struct {
    uint32_t    type;
    const void *data;
    int64_t     rows, cols;
    uint64_t    row_bytes;
} g4_mat;

/* y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tok.  Unless f32_act, the
 * activations are first rounded to the weight type's dot-product format
 * (Q8_0/Q8_1/Q8_K blocks, f16, bf16) exactly as llama.cpp does; with f32_act
 * they stay f32 and the weights are dequantized on the fly (the model's
 * math without activation rounding; slower).  x is n_tok x cols,
 * y is n_tok x rows (row-major).  Each weight row is read once per call,
 * whatever n_tok is (the AVX-512 matrix kernels: once per 512 tokens):
 * prefill batches pay the weight bandwidth once.  Every y[t][r] is the same
 * bits whatever n_tok is (kernels/dispatch.h). */
void g4_matmul(g4_pool *pool, const g4_mat *w, const float *x, float *y, int64_t n_tok, bool f32_act);

/* The FFN's first half (spec §2 step 13): g = gelu_tanh(gate x) * (up x),
 * u = up x.  The same bits as g4_matmul(gate), g4_matmul(up), g4_geglu;
 * when both matrices have one type and shape and the level a matrix kernel
 * for it, the input is encoded once and each thread's block of rows of both
 * products gets its GeGLU right away. */
void g4_matmul_geglu(g4_pool *pool, const g4_mat *gate, const g4_mat *up, const float *x, float *g, float *u,
                     int64_t n_tok, bool f32_act);

/* Dequantize row r of W into dst (cols floats). */
void g4_mat_row(const g4_mat *w, int64_t r, float *dst);

/* In place: x = x / sqrt(mean(x^2) + eps) * w   (w == NULL: no weight). */
void g4_rmsnorm(float *x, const float *w, int64_t n, float eps);

/* RoPE, NeoX pairing.  g4_rope_cache fills cs (n_rot floats: cos, sin per
 * pair) for position pos, theta_i = pos * base^(-2i/n_rot) / freq_div[i]
 * (freq_div may be NULL); g4_rope_apply rotates the first n_rot dims of a
 * head, pairs (i, i + n_rot/2); dims past n_rot are left alone. */
void g4_rope_cache(float *cs, int64_t n_rot, int64_t pos, float base, const float *freq_div);
void g4_rope_apply(float *x, int64_t n_rot, const float *cs);

/* tanh-approximation GELU with f16-quantized input and output (see ops.c);
 * g4_gelu_init() must have run once (g4_model_load does it). */
void  g4_gelu_init(void);
float g4_gelu_tanh(float x);
/* g[i] = g4_gelu_tanh(g[i]) * u[i] for i < n (identical values), SIMD and
 * spread over the pool. */
void  g4_geglu(g4_pool *pool, float *g, const float *u, int64_t n);


#endif
