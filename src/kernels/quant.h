/*
 * quant.h - tensor element types with block layouts identical to ggml's, so
 * that GGUF files are interchangeable with llama.cpp.
 *
 * Every supported type has: a scalar dequantizer, a scalar dot product of one
 * quantized row with an f32 vector, and a reference quantizer (used by
 * make-test-model and `gemma4 quantize`).  Type ids are ggml's.
 */
#ifndef G4_QUANT_H
#define G4_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum g4_type {
    G4_TYPE_F32  = 0,
    G4_TYPE_F16  = 1,
    G4_TYPE_Q4_0 = 2,
    G4_TYPE_Q4_1 = 3,
    G4_TYPE_Q5_0 = 6,
    G4_TYPE_Q5_1 = 7,
    G4_TYPE_Q8_0 = 8,
    G4_TYPE_Q8_1 = 9,
    G4_TYPE_Q2_K = 10,
    G4_TYPE_Q3_K = 11,
    G4_TYPE_Q4_K = 12,
    G4_TYPE_Q5_K = 13,
    G4_TYPE_Q6_K = 14,
    G4_TYPE_Q8_K = 15,
    G4_TYPE_BF16 = 30,
    G4_TYPE_COUNT_ = 64 /* ids at or above this are never valid */
};
#define G4_TYPE_NONE 0xffffffffu /* "no such type" result of g4_vec_dot_type */

typedef struct {
    const char *name;      /* ggml's name: "f32", "q4_K", ... */
    uint32_t    blck;      /* elements per block */
    uint32_t    type_size; /* bytes per block */
    bool        supported; /* dequantize/dot/quantize implemented here */
} g4_type_traits;

/* NULL when `type` is not a ggml type id this build knows the size of.
 * Known-but-unsupported types (IQ*, Q2_K, ...) return traits with
 * supported == false so a GGUF file holding them can still be parsed. */
const g4_type_traits *g4_type_get(uint32_t type);

/* Bytes of a row of n elements.  Returns false when n is not a multiple of
 * the block size or the size overflows. */
bool g4_row_size(uint32_t type, uint64_t n, uint64_t *bytes);

/* Half-precision conversions (round to nearest even, like ggml). */
float    g4_f16_to_f32(uint16_t h);
uint16_t g4_f32_to_f16(float f);
float    g4_bf16_to_f32(uint16_t h);
uint16_t g4_f32_to_bf16(float f);

/* n must be a multiple of the type's block size (callers check).
 * g4_dequantize_row also accepts Q8_1 (an activation-only format, see below). */
void  g4_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);
float g4_dot_row(uint32_t type, const void *row, const float *x, int64_t n);
void  g4_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/*
 * Matrix-vector products the way llama.cpp's CPU backend computes them.
 *
 * ggml does not dot a weight row with f32 activations: it first converts the
 * activation row to the weight type's "vec_dot_type" and then runs an integer
 * (or half-precision) dot product of the two encoded rows:
 *
 *   weight type                  vec_dot_type (activation format)
 *   Q4_0, Q5_0, Q8_0             Q8_0
 *   Q4_1, Q5_1                   Q8_1
 *   Q2_K, Q3_K, Q4_K, Q5_K, Q6_K Q8_K
 *   F16 / BF16 / F32             F16 / BF16 / F32
 *
 * g4_vec_dot_type() returns that format, or G4_TYPE_NONE for types without a
 * dot product here (unsupported types, and Q8_K / Q8_1 themselves).
 *
 * g4_quantize_act() encodes one f32 activation row in format vdt exactly as
 * the from_float of ggml's x86 CPU backend does (byte for byte):
 *   Q8_0 / Q8_1: the AVX/AVX2 quantize_row_q8_0/_q8_1 -- d = amax/127 stored
 *     as f16, multiplier 127/amax (not 1/d as in quantize_row_q8_0_ref),
 *     round half to EVEN (the _ref rounds half away from zero), saturate to
 *     [-128, 127] with NaN/out-of-range -> -128 (cvtps2dq + packs); Q8_1 also
 *     stores s = f16(d * sum(qs));
 *   Q8_K: quantize_row_q8_K_ref (x86 has no SIMD version), except that an
 *     all-zero block gets zero bsums where ggml leaves them unwritten;
 *   F16 / BF16: round-to-nearest-even conversion; F32: a copy.
 * Preconditions: n >= 0 and n a multiple of vdt's block size (32 for Q8_0/
 * Q8_1, 256 for Q8_K, any n for the float formats); dst holds
 * g4_row_size(vdt, n) bytes.  Other vdt values write nothing.
 *
 * g4_vec_dot() is the dot product of a weight row of `type` with an
 * activation row already encoded in g4_vec_dot_type(type).  It performs the
 * float operations of ggml's scalar reference kernels (quants.c
 * ggml_vec_dot_*_generic and the non-SIMD branches of vec.cpp) in the same
 * order: exact integer block sums, then per-block scale products and float
 * accumulation; K-quants keep ggml's eight per-lane float partial sums;
 * F16/BF16/F32 accumulate the float products in double.  ggml's SIMD kernels
 * reorder those float operations (results differ in the last bits).
 * Preconditions: n >= 0 and a multiple of the weight type's block size (which
 * makes it a multiple of the activation block too); returns NAN for types
 * without a dot product.
 */
uint32_t g4_vec_dot_type(uint32_t type);
void     g4_quantize_act(uint32_t vdt, const float *x, void *dst, int64_t n);
float    g4_vec_dot(uint32_t type, const void *w_row, const void *act_row, int64_t n);
/* The scalar twins: the reference implementations described above.
 * g4_vec_dot / g4_quantize_act run the SIMD kernel of the active CPU level
 * (kernels/dispatch.h) when there is one: g4_quantize_act's output is the
 * same bytes; g4_vec_dot's integer block sums are the same, its float
 * accumulation order is not (within 1e-6 of the magnitude sum|terms|). */
float    g4_vec_dot_scalar(uint32_t type, const void *w_row, const void *act_row, int64_t n);
void     g4_quantize_act_scalar(uint32_t vdt, const float *x, void *dst, int64_t n);
/* Bytes of one activation row of n elements for weight type `type`
 * (g4_row_size of its vec_dot_type); false as g4_row_size. */
bool     g4_act_row_size(uint32_t type, uint64_t n, uint64_t *bytes);

#endif
