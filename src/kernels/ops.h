/*
 * ops.h - the handful of operations the forward pass is written in.
 * The model code never touches quantization formats, SIMD or threads
 * directly: it calls these.  Everything computes and accumulates in f32.
 */
#ifndef G4_OPS_H
#define G4_OPS_H

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

/* y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tok.  x is n_tok x cols,
 * y is n_tok x rows (row-major).  Each weight row is read once per call,
 * whatever n_tok is: prefill batches pay the weight bandwidth once. */
void g4_matmul(g4_pool *pool, const g4_mat *w, const float *x, float *y, int64_t n_tok);

/* Dequantize row r of W into dst (cols floats). */
void g4_mat_row(const g4_mat *w, int64_t r, float *dst);

/* In place: x = x / sqrt(mean(x^2) + eps) * w   (w == NULL: no weight). */
void g4_rmsnorm(float *x, const float *w, int64_t n, float eps);

/* NeoX rotation of the first n_rot dims of a head of hd floats: pairs
 * (i, i + n_rot/2).  freq_div (n_rot/2 entries) may be NULL. */
void g4_rope_neox(float *x, int64_t n_rot, int64_t pos, float base, const float *freq_div);

/* tanh-approximation GELU with f16-quantized input and output (see ops.c);
 * g4_gelu_init() must have run once (g4_model_load does it). */
void  g4_gelu_init(void);
float g4_gelu_tanh(float x);

/* In place, returns nothing; numerically stable (subtracts the max). */
void g4_softmax(float *x, int64_t n);

#endif
