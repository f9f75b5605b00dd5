/*
 * dispatch.h - run-time choice of SIMD kernels for g4_vec_dot and
 * g4_quantize_act (kernels/quant.h).
 *
 * The CPU is probed once, at program start (cpuid + xgetbv: the instruction
 * sets and the OS's saving of their registers), and the best level it runs
 * becomes the active one:
 *
 *   scalar  the reference C of quant.c (every build, every CPU)
 *   avx2    x86-64 with AVX2 + FMA + F16C (Haswell and later)
 *   avx512  avx2 plus AVX-512 F/BW/VL/VNNI (Ice Lake, Sapphire Rapids, Zen 4)
 *   neon    AArch64 Advanced SIMD (every ARMv8-A CPU)
 *   dotprod neon plus the ARMv8.2 SDOT instruction (HWCAP_ASIMDDP; Apple M1+,
 *           Cortex-A55/A76 and later, Neoverse)
 * The x86 levels exist only on x86-64, the ARM ones only on AArch64
 * (kernels/simd_arm.c); numerically the ARM levels lie above the x86 ones
 * and never coexist with them.
 *
 * The environment variable G4_CPU=scalar|avx2|avx512|neon|dotprod forces a lower level
 * (for tests and benchmarks).  Asking for a level the CPU lacks keeps the
 * detected one and prints a warning on stderr; so does an unknown value.
 *
 * The SIMD kernels (kernels/simd_x86.c) are compiled with per-function target
 * attributes, so the binary itself runs on any x86-64; on other
 * architectures that file is empty and only the scalar level exists.
 *
 * A level's table holds only the kernels written for it; a type without one
 * at the active level uses the next lower level's kernel, then scalar.
 */
#ifndef G4_DISPATCH_H
#define G4_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

enum { G4_CPU_SCALAR = 0, G4_CPU_AVX2 = 1, G4_CPU_AVX512 = 2, G4_CPU_NEON = 3, G4_CPU_DOTPROD = 4, G4_CPU_LEVELS = 5 };

/* dot of a weight row of one type with an activation row in its
 * vec_dot_type; n > 0, a multiple of the block size */
typedef float (*g4_vec_dot_fn)(const void *w_row, const void *act_row, int64_t n);
/* g4_quantize_act for one vec_dot_type; n > 0, a multiple of its block size */
typedef void (*g4_quantize_act_fn)(const float *x, void *dst, int64_t n);
/* four dots of one weight row with four activation rows, in one pass over
 * the weights: out[k] is BIT-IDENTICAL to the same level's g4_vec_dot_fn of
 * (w_row, act_rows[k], n) -- the same float operations per token, only the
 * weight unpacking is shared.  Same preconditions as g4_vec_dot_fn. */
typedef void (*g4_vec_dot_x4_fn)(const void *w_row, const void *const act_rows[4], float out[4], int64_t n);

/*
 * A matrix kernel: y[t][r] = dot(weight row r, activation row t) for the
 * rows [r0, r1) of a weight matrix and all n_tok activation rows (already
 * encoded in the vec_dot_type), each result BIT-IDENTICAL to the same
 * level's g4_vec_dot_fn of (row r, activation row t) whatever n_tok, r0 and
 * r1 are.  Below G4_GEMM_MIN_TOK tokens it runs as matrix-vector products,
 * from there as a blocked matrix-matrix product (each weight block unpacked
 * once for many tokens).
 *   prep_bytes(n_tok, n): bytes of the prepared activations (n = columns);
 *   prep(act, act_bytes, n_tok, n, dst): lays the encoded activation rows
 *     out for `run` (once per product, before the threads start; dst is
 *     64-byte aligned);
 *   run(w, row_bytes, r0, r1, n, prep, act, act_bytes, n_tok, y, ldy):
 *     writes y[t * ldy + r]; safe to call from several threads on disjoint
 *     row ranges.
 */
enum { G4_GEMM_MIN_TOK = 4 };
typedef struct {
    size_t (*prep_bytes)(int64_t n_tok, int64_t n);
    void   (*prep)(const uint8_t *act, uint64_t act_bytes, int64_t n_tok, int64_t n, void *dst);
    void   (*run)(const uint8_t *w, uint64_t row_bytes, int64_t r0, int64_t r1, int64_t n, const void *prep,
                  const uint8_t *act, uint64_t act_bytes, int64_t n_tok, float *y, int64_t ldy);
    /* optional (NULL: prep only): for n_tok >= G4_GEMM_MIN_TOK, the part of
     * prep's output that belongs to tokens [g * group_tokens, (g + 1) *
     * group_tokens), reading only those activation rows -- so that the
     * groups can be encoded and laid out by several threads at once */
    void   (*prep_group)(const uint8_t *act, uint64_t act_bytes, int64_t n_tok, int64_t n, int64_t g, void *dst);
    int    group_tokens;
} g4_gemm_kernel;

typedef struct {
    g4_vec_dot_fn      vec_dot[64];      /* by weight type id */
    g4_quantize_act_fn quantize_act[64]; /* by vec_dot_type id */
    /* by weight type id; in the active table only when it is the twin of
     * the active vec_dot entry (same level), else NULL */
    g4_vec_dot_x4_fn   vec_dot_x4[64];
    /* by weight type id; the same twin rule as vec_dot_x4 */
    const g4_gemm_kernel *gemm[64];
} g4_kernel_table;

/* The active kernels (with fallbacks filled in); all NULL before the
 * start-up probe, which g4_vec_dot/g4_quantize_act treat as scalar. */
extern g4_kernel_table g4_dispatch_active;

int         g4_cpu_detected(void);  /* best level this CPU and build support */
int         g4_cpu_level(void);     /* the active level (G4_CPU applied) */
const char *g4_cpu_level_name(int level);

/* The kernel written for exactly this level (no fallback), or NULL: none
 * for that type, or the CPU lacks the level.  For tests and benchmarks. */
g4_vec_dot_fn      g4_kernel_vec_dot(int level, uint32_t type);
g4_quantize_act_fn g4_kernel_quantize_act(int level, uint32_t vdt);
g4_vec_dot_x4_fn   g4_kernel_vec_dot_x4(int level, uint32_t type);
const g4_gemm_kernel *g4_kernel_gemm(int level, uint32_t type);

/* simd_x86.c: fills the entries it has for `level` (AVX2 or AVX512) */
void g4_simd_x86_fill(int level, g4_kernel_table *t);
/* gemm_x86.c: the matrix kernels for `level` and the one-row kernels they
 * are twins of (runs after g4_simd_x86_fill and replaces its entries) */
void g4_gemm_x86_fill(int level, g4_kernel_table *t);
/* simd_arm.c: fills the entries it has for `level` (NEON or DOTPROD) */
void g4_simd_arm_fill(int level, g4_kernel_table *t);
/* gemm_arm.c: the matrix kernels for `level` (NEON or DOTPROD) and the
 * one-row kernels they are twins of (runs after g4_simd_arm_fill and
 * replaces its entries) */
void g4_gemm_arm_fill(int level, g4_kernel_table *t);

#endif
