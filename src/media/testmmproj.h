/*
 * testmmproj.h - random-weight Gemma 4 "Unified" mmproj generator
 * (`gemma4 make-test-model --mmproj-out`).
 *
 * Writes a GGUF with general.architecture "clip" holding the encoder-free
 * projectors of Gemma 4 12B Unified: the gemma4uv vision embedder (9 tensors,
 * multimodal spec §2.10) and/or the gemma4ua audio projection (1 tensor,
 * §3.5), with the real tensor names, ggml shapes and metadata keys but
 * configurable widths so that tests stay small.  Weights come from a
 * deterministic PRNG: the same parameters give byte-identical files.
 */
#ifndef G4_TESTMMPROJ_H
#define G4_TESTMMPROJ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;        /* general.name; NULL = "gemma4-test-mmproj" */
    bool     vision, audio;  /* which projectors the file holds (at least one) */
    uint32_t n_embd;         /* output width = the text model's n_embd (3840) */
    uint32_t vision_width;   /* patch embedding width, mm_embed_dim (3840) */
    uint32_t n_pos;          /* rows per axis of the position table (1120) */
    uint32_t patch_size;     /* clip.vision.patch_size, the "teacher" patch (16);
                                the model patch is 3x that */
    uint32_t audio_frame;    /* samples per audio token (640) */
    uint32_t type;           /* ggml type of the matrices (patch_embd, position
                                table, both projections): F32, F16, BF16, Q8_0;
                                a matrix whose rows are not whole Q8_0 blocks
                                falls back to F16 */
    uint32_t norm_type;      /* norms and biases: F32 or F16 */
    float    image_mean[3], image_std[3];
    float    vision_eps;     /* clip.vision.attention.layer_norm_epsilon */
    uint64_t seed;
    int      n_threads;      /* 0 = online CPUs */
} g4_test_mmproj_params;

/* The 12B shapes (3840 / 3840 / 1120 / 16 / 640), both projectors, F32
 * matrices, F32 norms, mean 0, std 1, eps 1e-6, seed 1. */
void g4_test_mmproj_default_params(g4_test_mmproj_params *p);

/* "f32", "f16", "bf16", "q8_0" -> ggml type id; -1 if unknown. */
int g4_test_mmproj_type_from_name(const char *s);

/* Checks every field; 0 or -1 with a one-line message naming the field. */
int g4_test_mmproj_validate(const g4_test_mmproj_params *p, char *err, size_t errlen);

/* Writes the file.  0, or -1 with a one-line message (the partial file is
 * removed). */
int g4_make_test_mmproj(const g4_test_mmproj_params *p, const char *path, char *err, size_t errlen);

#endif
