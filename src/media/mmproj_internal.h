/*
 * mmproj_internal.h - the parts of the gemma4uv / gemma4ua projector
 * (src/media/mmproj.c) that the public API does not show: the loaded
 * weights, and the embedder below the resize step, so that tests can check
 * each step of multimodal spec §2.8 on their own.
 */
#ifndef G4_MMPROJ_INTERNAL_H
#define G4_MMPROJ_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "gemma4.h"
#include "gguf/gguf.h"
#include "kernels/ops.h"
#include "kernels/sgemm.h"
#include "kernels/threadpool.h"

/* LayerNorm eps of LN1, LN2 and pos_norm: PyTorch's default, not stored in
 * any config or GGUF key (spec §1). */
#define G4_MM_LN_EPS 1e-5
/* Audio RMSNorm eps: hard-coded like llama.cpp does for gemma4ua; the GGUF
 * key clip.audio.attention.layer_norm_epsilon is ignored (spec §3.5). */
#define G4_MM_AUDIO_EPS 1e-6f
#define G4_MM_AUDIO_RATE 16000u

struct g4_mmproj {
    gguf_file *gguf;
    void      *file_copy;   /* use_mmap == false: the file read into memory */
    g4_pool   *pool;
    int        n_threads;
    /* The pool runs one job at a time: embed calls on one handle from
     * several threads take turns. */
    pthread_mutex_t lock;
    g4_mmproj_info info;
    uint32_t patch_dim;     /* 3 * patch * patch */

    /* vision (spec §2.10); vectors are f32 copies; the three matrices are
     * f32 copies packed for g4_sgemm (kernels/sgemm.h), whatever type the
     * file stores them in; the position table points into the file */
    float *ln1_w, *ln1_b;   /* v.patch_norm.1.*, patch_dim, (C,Y,X) order */
    g4_sgemm_w patch_embd;  /* v.patch_embd.weight: vision_width x patch_dim */
    float *patch_b;         /* v.patch_embd.bias */
    float *ln2_w, *ln2_b;   /* v.patch_norm.2.* */
    g4_mat pos;             /* v.position_embd.weight as 2*n_pos rows of
                               vision_width: x-table (columns), then y-table (rows) */
    float *ln3_w, *ln3_b;   /* v.patch_norm.3.* (HF pos_norm) */
    g4_sgemm_w proj;        /* mm.input_projection.weight: n_embd x vision_width */

    /* audio (spec §3.5) */
    g4_sgemm_w proj_a;      /* mm.a.input_projection.weight: n_embd x audio_frame */
};

/* Patch vector of grid cell (col, row) of img, in the GGUF weights' (C,Y,X)
 * planar order: v[c*P*P + y*P + x] = (u8/255 - mean[c]) / std[c] of pixel
 * (col*P + x, row*P + y).  The cell must lie inside the image. */
void g4_mmproj_patch_vector(const g4_mmproj *mm, const g4_image *img, uint32_t col, uint32_t row,
                            float *v);

/* Where g4_mmproj_vision_rows copies the result of each step of spec §2.8
 * (any pointer may be NULL): ln1 is n x patch_dim, the others n x
 * vision_width.  dense includes the bias; pos is LN2's output plus both
 * position rows. */
typedef struct {
    float *ln1, *dense, *ln2, *pos, *pos_norm, *rms;
} g4_mmproj_trace;

/* Steps 1-7 of spec §2.8 for n patch vectors (n x patch_dim, not modified)
 * at grid positions (cols[i], rows[i]); writes n x n_embd rows to out.
 * Positions outside the tables are refused (G4_ERR_INVALID). */
g4_status g4_mmproj_vision_rows(g4_mmproj *mm, const float *patches, const uint32_t *cols,
                                const uint32_t *rows, uint32_t n, float *out,
                                const g4_mmproj_trace *trace, char *err, size_t errlen);

/* The vision embedder on an image whose sides are already multiples of the
 * patch size (no resize, no token budget): one row per patch, row-major
 * patch order.  out->width/height = the image's, grid = its patch grid. */
g4_status g4_mmproj_embed_sized(g4_mmproj *mm, const g4_image *img, g4_embedding *out,
                                char *err, size_t errlen);

#endif
