/*
 * ops.c - see ops.h.  Plain C, multithreaded by row blocks.  The SIMD
 * kernels issue replaces the inner loops; the math and the split stay.
 */
#include "kernels/ops.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quant.h"

enum { MATMUL_ROWS_PER_ITEM = 16, MATMUL_MAX_THREADS = 256 };

typedef struct {
    const g4_mat *w;
    const float *x;
    float *y;
    int64_t n_tok;
    float **scratch; /* per thread: one dequantized row */
} matmul_job;

static void matmul_item(void *arg, int64_t item, int tid)
{
    matmul_job *j = arg;
    const g4_mat *w = j->w;
    int64_t r0 = item * MATMUL_ROWS_PER_ITEM;
    int64_t r1 = r0 + MATMUL_ROWS_PER_ITEM;
    if (r1 > w->rows) r1 = w->rows;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
        /* Dequantize once, reuse for every token of the batch.  Batches of
         * one take the same path, so a token gets bit-identical results
         * whether it is decoded alone or inside a prompt batch. */
        float *buf = j->scratch[tid];
        g4_dequantize_row(w->type, row, buf, w->cols);
        for (int64_t t = 0; t < j->n_tok; t++) {
            const float *xt = j->x + t * w->cols;
            float s = 0.0f;
            for (int64_t c = 0; c < w->cols; c++) s += buf[c] * xt[c];
            j->y[t * w->rows + r] = s;
        }
    }
}

void g4_matmul(g4_pool *pool, const g4_mat *w, const float *x, float *y, int64_t n_tok)
{
    int nt = g4_pool_size(pool);
    if (nt > MATMUL_MAX_THREADS) nt = MATMUL_MAX_THREADS;
    float *scratch[MATMUL_MAX_THREADS] = {0};
    float *block = NULL;
    block = malloc(sizeof(float) * (size_t)w->cols * (size_t)nt);
    if (!block) abort(); /* a few KiB: failing here means the process is lost anyway */
    for (int i = 0; i < nt; i++) scratch[i] = block + (size_t)i * (size_t)w->cols;
    matmul_job j = { w, x, y, n_tok, scratch };
    int64_t items = (w->rows + MATMUL_ROWS_PER_ITEM - 1) / MATMUL_ROWS_PER_ITEM;
    g4_pool_run(pool, items, matmul_item, &j);
    free(block);
}

void g4_mat_row(const g4_mat *w, int64_t r, float *dst)
{
    g4_dequantize_row(w->type, (const uint8_t *)w->data + (uint64_t)r * w->row_bytes, dst, w->cols);
}

void g4_rmsnorm(float *x, const float *w, int64_t n, float eps)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
    if (w) for (int64_t i = 0; i < n; i++) x[i] = x[i] * scale * w[i];
    else   for (int64_t i = 0; i < n; i++) x[i] *= scale;
}

void g4_rope_neox(float *x, int64_t n_rot, int64_t pos, float base, const float *freq_div)
{
    int64_t half = n_rot / 2;
    for (int64_t i = 0; i < half; i++) {
        /* angles in double: at position 10^5 an f32 angle is off by ~1e-2 rad */
        double theta = (double)pos * pow((double)base, -2.0 * (double)i / (double)n_rot);
        if (freq_div) theta /= freq_div[i];
        float c = (float)cos(theta), s = (float)sin(theta);
        float a = x[i], b = x[i + half];
        x[i] = a * c - b * s;
        x[i + half] = b * c + a * s;
    }
}

/*
 * GELU (tanh form) through a table indexed by the f16 bits of the input,
 * holding f16-rounded results: the same quantization llama.cpp's CPU backend
 * applies, which keeps our logits within its own noise (an exact GELU differs
 * from it by ~2e-3 on small random models, see docs/testing.md).  The f16
 * rounding (rel. 2^-11) is finer than the bf16 the reference HF model runs in.
 * Beyond |x| >= 10 the function is exactly 0 or x.
 */
static float gelu_table[65536];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static float gelu_exact(float x)
{
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * x * (1.0f + 0.044715f * x * x)));
}

static void gelu_table_init(void)
{
    for (uint32_t h = 0; h < 65536; h++)
        gelu_table[h] = g4_f16_to_f32(g4_f32_to_f16(gelu_exact(g4_f16_to_f32((uint16_t)h))));
}

void g4_gelu_init(void) { pthread_once(&gelu_once, gelu_table_init); }

float g4_gelu_tanh(float x)
{
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    if (x != x) return x;
    return gelu_table[g4_f32_to_f16(x)];
}

void g4_softmax(float *x, int64_t n)
{
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) if (x[i] > m) m = x[i];
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) { x[i] = expf(x[i] - m); sum += x[i]; }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}
