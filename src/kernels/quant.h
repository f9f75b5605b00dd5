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

/* n must be a multiple of the type's block size (callers check). */
void  g4_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);
float g4_dot_row(uint32_t type, const void *row, const float *x, int64_t n);
void  g4_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

#endif
