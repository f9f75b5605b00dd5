/*
 * sgemm.h - f32 x f32 matrix products with f32 accumulation, for the
 * encoder-free projectors (src/media/mmproj.c, multimodal spec §2.8, §3.3):
 *
 *     C[t][n] = bias[n] + sum_k A[t][k] * W[n][k]     t < n_tok, n < N, k < K
 *
 * A is n_tok activation rows, W a weight matrix as GGUF stores it (N rows of
 * K inputs), C n_tok rows of N outputs.  Nothing is rounded to a narrower
 * format: the 6912-wide patch vectors overflow f16 (spec §2.8).
 *
 * The float contract, the same for every CPU level, thread count and batch
 * size: K is cut into chunks of G4_SGEMM_KC; each chunk's partial sum is
 * one chain of fused multiply-adds in k order starting from zero, and C is
 * the chunk sums added in order to bias[n] (0 without bias):
 *
 *     c = bias ? bias[n] : 0
 *     for each chunk [k0, k1):  p = 0;  for k in [k0, k1): p = fmaf(A[t][k], W[n][k], p);  c += p
 *
 * So the AVX-512, AVX2 and scalar kernels give bit-identical results, and a
 * row's result does not depend on the rows batched with it.  The two-level
 * sum keeps the rounding error near (sqrt(KC) + sqrt(K / KC)) ulps of the
 * partial sums instead of the sqrt(K) of a single chain.
 *
 * W is packed once (g4_sgemm_pack) into panels of G4_SGEMM_NR outputs:
 * panel p holds, for every k, the 32 weights W[32p .. 32p+31][k] side by
 * side (rows past N are zero), so the kernels read 32 outputs' weights for
 * one k as two 64-byte lines.  Each call packs A the same way, in blocks of
 * the level's register-tile height.  Threads split the outputs into blocks
 * of columns (and rows of A when there are many); a K sum is never split.
 */
#ifndef G4_SGEMM_H
#define G4_SGEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/ops.h"
#include "kernels/threadpool.h"

enum {
    G4_SGEMM_NR = 32,  /* outputs per packed weight panel */
    G4_SGEMM_KC = 128  /* k per partial-sum chunk (the float contract above) */
};

/* A packed weight matrix: ceil(n / NR) panels of k x NR floats. */
typedef struct {
    float  *panels;   /* 64-byte aligned; NULL when empty */
    int64_t n, k;     /* outputs (W's rows) and inputs (W's columns) */
} g4_sgemm_w;

/* Called when a run of w's stored rows (bytes from rows) has been packed and
 * is not read again, from the pool's threads, once per panel: a caller
 * whose weights are a mapped file hands those pages back to the kernel. */
typedef void (*g4_sgemm_rows_done)(void *ctx, const void *rows, uint64_t bytes);

/* Packs w (any type g4_dequantize_row converts: F32, F16, BF16, Q8_0, ...)
 * into *out, converting each row to f32 (exact for those four types) on
 * the pool's threads; done (may be NULL) sees every stored row exactly
 * once.  false: out of memory or a size that does not fit (*out is then
 * empty, done not called).  Free with g4_sgemm_w_free. */
bool g4_sgemm_pack(g4_pool *pool, const g4_mat *w, g4_sgemm_rows_done done, void *ctx, g4_sgemm_w *out);
/* The same from a row-major f32 matrix (n rows of k, row stride ldw). */
bool g4_sgemm_pack_f32(g4_pool *pool, const float *w, int64_t n, int64_t k, int64_t ldw, g4_sgemm_w *out);
void g4_sgemm_w_free(g4_sgemm_w *w);

/* Bytes a packed matrix takes (for reports). */
uint64_t g4_sgemm_w_bytes(const g4_sgemm_w *w);

/*
 * C = A . W^T (+ bias) at the active CPU level (g4_cpu_level(), so G4_CPU
 * applies).  a: n_tok rows of w->k floats, row stride lda >= k; c: n_tok
 * rows of w->n floats, stride ldc >= n (c must not overlap a); bias: w->n
 * floats or NULL.  n_tok == 0 does nothing.  false only when the packed
 * copy of A cannot be allocated (n_tok x k floats); c is then unchanged.
 */
bool g4_sgemm(g4_pool *pool, const g4_sgemm_w *w, const float *a, int64_t lda, int64_t n_tok, const float *bias,
              float *c, int64_t ldc);
/* The same at a given level (a level the CPU lacks runs the highest one it
 * has, so tests can ask for each).  For tests and benchmarks. */
bool g4_sgemm_at(int level, g4_pool *pool, const g4_sgemm_w *w, const float *a, int64_t lda, int64_t n_tok,
                 const float *bias, float *c, int64_t ldc);

/* The contract above in plain C on an unpacked row-major W (n rows of k),
 * one output at a time: the scalar twin the kernels are tested against. */
void g4_sgemm_ref(const float *w, int64_t n, int64_t k, const float *a, int64_t n_tok, const float *bias, float *c);

#endif
