/*
 * gemm-bench.c - throughput of one matrix kernel (kernels/dispatch.h
 * g4_gemm_kernel) on one thread: a ROWS x COLS weight matrix of TYPE
 * (quantized from random floats with the reference quantizer) times TOKENS
 * encoded activation rows, prep + run timed together, in G multiply-adds
 * per second (ROWS * COLS * TOKENS / seconds / 1e9).  The kernel of exactly
 * the given level is used (default: the detected one), so levels can be
 * compared in one process.
 *
 *   gemm-bench TYPE ROWS COLS TOKENS [-r REPS] [--level scalar|avx2|avx512|neon|dotprod]
 *
 * Prints best and median of REPS (default 7) runs.  Speed is noisy on
 * shared machines: compare kernels by alternating runs, several times.
 * With TOKENS < 4 it measures the matrix-vector (decode) path; then the
 * weights should exceed the caches (e.g. ROWS 65536) to see memory speed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/dispatch.h"
#include "kernels/quant.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9E3779B97F4A7C15u;
static float rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)(rng >> 40) / (float)(1u << 24) - 0.5f;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long long arg_int(const char *s, const char *what, long long lo, long long hi)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "gemm-bench: %s must be an integer in [%lld, %lld], got '%s'\n", what, lo, hi, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    const char *pos[4];
    int npos = 0, reps = 7, level = g4_cpu_detected();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-r") && i + 1 < argc) {
            reps = (int)arg_int(argv[++i], "-r", 1, 1000);
        } else if (!strcmp(argv[i], "--level") && i + 1 < argc) {
            const char *l = argv[++i];
            level = -1;
            for (int k = 0; k < G4_CPU_LEVELS; k++)
                if (!strcmp(l, g4_cpu_level_name(k))) level = k;
            if (level < 0) {
                fprintf(stderr, "gemm-bench: unknown level '%s'\n", l);
                return 2;
            }
        } else if (argv[i][0] == '-' || npos == 4) {
            fprintf(stderr, "usage: gemm-bench TYPE ROWS COLS TOKENS [-r REPS] [--level L]\n");
            return 2;
        } else {
            pos[npos++] = argv[i];
        }
    }
    if (npos != 4) {
        fprintf(stderr, "usage: gemm-bench TYPE ROWS COLS TOKENS [-r REPS] [--level L]\n");
        return 2;
    }
    uint32_t type = G4_TYPE_COUNT_;
    for (uint32_t t = 0; t < G4_TYPE_COUNT_; t++) {
        const g4_type_traits *tr = g4_type_get(t);
        if (tr && tr->name && !strcmp(tr->name, pos[0])) type = t;
    }
    if (type == G4_TYPE_COUNT_) {
        fprintf(stderr, "gemm-bench: unknown type '%s' (ggml names: q4_0, q8_0, q4_K, q5_K, q6_K)\n", pos[0]);
        return 2;
    }
    const int64_t rows = arg_int(pos[1], "ROWS", 1, 1 << 20), cols = arg_int(pos[2], "COLS", 1, 1 << 20),
                  ntok = arg_int(pos[3], "TOKENS", 1, 8192);
    const g4_gemm_kernel *k = g4_kernel_gemm(level, type);
    if (!k) {
        fprintf(stderr, "gemm-bench: no matrix kernel for %s at level %s on this CPU\n", pos[0], g4_cpu_level_name(level));
        return 1;
    }
    const uint32_t vdt = g4_vec_dot_type(type);
    const int64_t blck = g4_type_get(type)->blck;
    uint64_t rb, ab;
    if (cols % blck || !g4_row_size(type, (uint64_t)cols, &rb) || !g4_row_size(vdt, (uint64_t)cols, &ab)) {
        fprintf(stderr, "gemm-bench: COLS must be a multiple of %s's block size %lld\n", pos[0], (long long)blck);
        return 2;
    }
    uint8_t *w = malloc(rb * (uint64_t)rows), *act = malloc(ab * (uint64_t)ntok);
    float *x = malloc(sizeof(float) * (size_t)cols), *y = malloc(sizeof(float) * (size_t)(rows * ntok));
    const size_t pb = k->prep_bytes(ntok, cols);
    void *prep = aligned_alloc(64, (pb + 63) / 64 * 64 + 64);
    double *dt = malloc(sizeof(double) * (size_t)reps);
    if (!w || !act || !x || !y || !prep || !dt) {
        fprintf(stderr, "gemm-bench: out of memory\n");
        return 1;
    }
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < cols; i++) x[i] = rnd() * (float)(1 + i % 7);
        g4_quantize_row(type, x, w + rb * (uint64_t)r, cols);
    }
    for (int64_t t = 0; t < ntok; t++) {
        for (int64_t i = 0; i < cols; i++) x[i] = rnd();
        g4_quantize_act(vdt, x, act + ab * (uint64_t)t, cols);
    }
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        k->prep(act, ab, ntok, cols, prep);
        k->run(w, rb, 0, rows, cols, prep, act, ab, ntok, y, rows);
        dt[r] = now() - t0;
    }
    qsort(dt, (size_t)reps, sizeof *dt, cmp_double);
    const double macs = (double)rows * (double)cols * (double)ntok * 1e-9;
    printf("%s %s rows %lld cols %lld tokens %lld: best %.1f GMAC/s (%.2f GB/s of weights), median %.1f GMAC/s\n",
           g4_cpu_level_name(level), pos[0], (long long)rows, (long long)cols, (long long)ntok, macs / dt[0],
           (double)rb * (double)rows / dt[0] * 1e-9, macs / dt[reps / 2]);
    free(w); free(act); free(x); free(y); free(prep); free(dt);
    return 0;
}
