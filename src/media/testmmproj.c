/*
 * testmmproj.c - random-weight gemma4uv / gemma4ua mmproj generator (see
 * testmmproj.h).
 *
 * Like the text generator (src/model/testmodel.c): one list of tensor specs
 * drives both the header and the data, every row of every tensor has its own
 * PRNG stream seeded from (seed, tensor index, row), so any thread count
 * gives the same bytes, and matrices are streamed in row batches so memory
 * stays bounded for the full 12B shapes.
 *
 * Scales keep the embedder's output O(1) like a trained one (soft-token rows
 * enter the decoder unscaled, next to text rows of size ~1): matrices
 * ~ N(0, 1/fan_in), LayerNorm weights 1 +- 0.1, biases ~ N(0, 0.1^2), the
 * position tables ~ N(0, 0.5^2) so that a wrong column/row shows clearly.
 */
#include "media/testmmproj.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "kernels/quant.h"
#include "kernels/rng.h"
#include "kernels/threadpool.h"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void g4_test_mmproj_default_params(g4_test_mmproj_params *p)
{
    memset(p, 0, sizeof *p);
    p->vision = p->audio = true;
    p->n_embd = 3840;
    p->vision_width = 3840;
    p->n_pos = 1120;
    p->patch_size = 16;
    p->audio_frame = 640;
    p->type = G4_TYPE_F32;
    p->norm_type = G4_TYPE_F32;
    for (int c = 0; c < 3; c++) {
        p->image_mean[c] = 0.0f;
        p->image_std[c] = 1.0f;
    }
    p->vision_eps = 1e-6f;
    p->seed = 1;
}

int g4_test_mmproj_type_from_name(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "f32")) return G4_TYPE_F32;
    if (!strcmp(s, "f16")) return G4_TYPE_F16;
    if (!strcmp(s, "bf16")) return G4_TYPE_BF16;
    if (!strcmp(s, "q8_0")) return G4_TYPE_Q8_0;
    return -1;
}

enum { N_MERGE = 3 };

int g4_test_mmproj_validate(const g4_test_mmproj_params *p, char *err, size_t errlen)
{
#define REQ(cond, ...) do { if (!(cond)) { set_err(err, errlen, __VA_ARGS__); return -1; } } while (0)
    const uint32_t big = 1u << 16;
    REQ(p->vision || p->audio, "mmproj: holds neither vision nor audio");
    REQ(p->n_embd > 0 && p->n_embd <= 1u << 20, "mmproj n_embd %u: must be in 1..%u", p->n_embd, 1u << 20);
    REQ(p->type == G4_TYPE_F32 || p->type == G4_TYPE_F16 || p->type == G4_TYPE_BF16 || p->type == G4_TYPE_Q8_0,
        "--mmproj-type: must be f32, f16, bf16 or q8_0");
    REQ(p->norm_type == G4_TYPE_F32 || p->norm_type == G4_TYPE_F16, "mmproj norm type: must be f32 or f16");
    REQ(!p->name || strlen(p->name) < 256, "mmproj name: too long");
    if (p->vision) {
        REQ(p->vision_width > 0 && p->vision_width <= big, "--mmproj-width %u: must be in 1..%u", p->vision_width, big);
        REQ(p->n_pos > 0 && p->n_pos <= big, "--mmproj-pos %u: must be in 1..%u", p->n_pos, big);
        REQ(p->patch_size > 0 && p->patch_size <= 64, "--mmproj-patch %u: must be in 1..64", p->patch_size);
        for (int c = 0; c < 3; c++) {
            REQ(isfinite(p->image_mean[c]), "--mmproj-image-mean: must be finite");
            REQ(isfinite(p->image_std[c]) && p->image_std[c] > 0, "--mmproj-image-std: must be positive");
        }
        REQ(isfinite(p->vision_eps) && p->vision_eps > 0 && p->vision_eps < 1, "mmproj vision eps: must be in (0, 1)");
        /* the dense matrix is the largest: keep every tensor under 2^32 elements */
        uint64_t pd = 3ull * N_MERGE * p->patch_size * N_MERGE * p->patch_size;
        REQ(pd * p->vision_width < (1ull << 32), "mmproj: patch embedding too large");
    }
    if (p->audio)
        REQ(p->audio_frame > 0 && p->audio_frame <= big, "--mmproj-frame %u: must be in 1..%u", p->audio_frame, big);
    return 0;
#undef REQ
}

typedef struct {
    const char *name;
    uint32_t type, n_dims;
    uint64_t ne[3];
    float    center, std; /* elements ~ center + std * N(0,1) */
    uint64_t rows, row_bytes;
} tspec;

/* The order of the tensors in the file follows the converter's (spec §2.10). */
static int build_specs(const g4_test_mmproj_params *p, tspec *v, size_t *n)
{
    size_t k = 0;
    const uint64_t P = (uint64_t)N_MERGE * p->patch_size, D = 3 * P * P, W = p->vision_width;
#define ADD(nm, ty, nd, a, b, c, ctr, sd) (v[k++] = (tspec){ nm, ty, nd, { a, b, c }, ctr, sd, 0, 0 })
    if (p->vision) {
        ADD("v.patch_norm.1.weight", p->norm_type, 1, D, 1, 1, 1.0f, 0.1f);
        ADD("v.patch_norm.1.bias", p->norm_type, 1, D, 1, 1, 0.0f, 0.1f);
        ADD("v.patch_embd.weight", p->type, 2, D, W, 1, 0.0f, (float)(1.0 / sqrt((double)D)));
        ADD("v.patch_embd.bias", p->norm_type, 1, W, 1, 1, 0.0f, 0.1f);
        ADD("v.patch_norm.2.weight", p->norm_type, 1, W, 1, 1, 1.0f, 0.1f);
        ADD("v.patch_norm.2.bias", p->norm_type, 1, W, 1, 1, 0.0f, 0.1f);
        ADD("v.position_embd.weight", p->type, 3, W, p->n_pos, 2, 0.0f, 0.5f);
        ADD("v.patch_norm.3.weight", p->norm_type, 1, W, 1, 1, 1.0f, 0.1f);
        ADD("v.patch_norm.3.bias", p->norm_type, 1, W, 1, 1, 0.0f, 0.1f);
        ADD("mm.input_projection.weight", p->type, 2, W, p->n_embd, 1, 0.0f, (float)(1.0 / sqrt((double)W)));
    }
    if (p->audio)
        ADD("mm.a.input_projection.weight", p->type, 2, p->audio_frame, p->n_embd, 1, 0.0f,
            (float)(1.0 / sqrt((double)p->audio_frame)));
#undef ADD
    for (size_t i = 0; i < k; i++) {
        tspec *t = &v[i];
        if (t->type == G4_TYPE_Q8_0 && t->ne[0] % 32 != 0)
            t->type = G4_TYPE_F16; /* rows must be whole Q8_0 blocks */
        t->rows = t->ne[1] * t->ne[2];
        if (!g4_row_size(t->type, t->ne[0], &t->row_bytes))
            return -1;
    }
    *n = k;
    return 0;
}

typedef struct {
    const tspec *t;
    uint64_t     seed, stream, row0;
    uint8_t     *out;
    float      **scratch;
} gen_job;

static void gen_row(void *arg, int64_t i, int tid)
{
    gen_job *j = arg;
    const tspec *t = j->t;
    const uint64_t row = j->row0 + (uint64_t)i;
    const int64_t n = (int64_t)t->ne[0];
    float *x = j->scratch[tid];
    g4_rng r;
    uint64_t k = g4_mix64(g4_mix64(g4_mix64(j->seed ^ 0x3c6ef372fe94f82bULL) ^ j->stream) ^ row);
    for (int s = 0; s < 4; s++)
        r.s[s] = g4_splitmix64(&k);
    for (int64_t e = 0; e < n; e++) {
        /* Irwin-Hall sum of four 16-bit uniforms: unit variance, cheap */
        uint64_t u = g4_rng_next(&r);
        int32_t s = (int32_t)(u & 0xffff) + (int32_t)((u >> 16) & 0xffff) + (int32_t)((u >> 32) & 0xffff) +
                    (int32_t)(u >> 48);
        x[e] = t->center + t->std * ((float)(s - 131070) * (1.7320508f / 65536.0f));
    }
    uint8_t *dst = j->out + (uint64_t)i * t->row_bytes;
    if (t->type == G4_TYPE_F32)
        memcpy(dst, x, (size_t)n * sizeof(float));
    else if (t->type == G4_TYPE_F16)
        for (int64_t e = 0; e < n; e++) {
            uint16_t h = g4_f32_to_f16(x[e]);
            memcpy(dst + 2 * e, &h, 2);
        }
    else if (t->type == G4_TYPE_BF16)
        for (int64_t e = 0; e < n; e++) {
            uint16_t h = g4_f32_to_bf16(x[e]);
            memcpy(dst + 2 * e, &h, 2);
        }
    else
        g4_quantize_row(t->type, x, dst, n);
}

#define BATCH_ELEMS ((uint64_t)1 << 22)

int g4_make_test_mmproj(const g4_test_mmproj_params *p, const char *path, char *err, size_t errlen)
{
    if (!p || !path) {
        set_err(err, errlen, "mmproj: missing parameters or output path");
        return -1;
    }
    if (g4_test_mmproj_validate(p, err, errlen))
        return -1;
    tspec specs[16];
    size_t n_specs = 0;
    if (build_specs(p, specs, &n_specs)) {
        set_err(err, errlen, "mmproj: bad tensor size");
        return -1;
    }
    int rc = -1, n_threads = p->n_threads > 0 ? p->n_threads : g4_cpu_cores();
    if (n_threads > 256) n_threads = 256;
    bool began = false;
    g4_pool *pool = NULL;
    float **scratch = NULL;
    uint8_t *out = NULL;
    gguf_writer *w = gguf_writer_new();
    if (!w) {
        set_err(err, errlen, "mmproj: out of memory");
        return -1;
    }
    const uint32_t W = p->vision_width, E = p->n_embd;
    gguf_w_str(w, "general.architecture", "clip");
    gguf_w_str(w, "general.type", "mmproj");
    gguf_w_str(w, "general.name", p->name ? p->name : "gemma4-test-mmproj");
    gguf_w_u32(w, "general.file_type", p->type == G4_TYPE_F32 ? 0 : p->type == G4_TYPE_F16 ? 1
                                        : p->type == G4_TYPE_BF16 ? 32 : 7);
    gguf_w_bool(w, "clip.has_vision_encoder", p->vision);
    gguf_w_bool(w, "clip.has_audio_encoder", p->audio);
    gguf_w_bool(w, "clip.use_gelu", false);
    if (p->vision) {
        gguf_w_str(w, "clip.vision.projector_type", "gemma4uv");
        gguf_w_u32(w, "clip.vision.image_size", 224);
        gguf_w_u32(w, "clip.vision.patch_size", p->patch_size);
        gguf_w_u32(w, "clip.vision.embedding_length", W);
        gguf_w_u32(w, "clip.vision.feed_forward_length", 0);
        gguf_w_u32(w, "clip.vision.block_count", 0);
        gguf_w_u32(w, "clip.vision.attention.head_count", 0);
        gguf_w_u32(w, "clip.vision.projection_dim", E);
        gguf_w_f32(w, "clip.vision.attention.layer_norm_epsilon", p->vision_eps);
        gguf_w_arr_f32(w, "clip.vision.image_mean", p->image_mean, 3);
        gguf_w_arr_f32(w, "clip.vision.image_std", p->image_std, 3);
    }
    if (p->audio) {
        gguf_w_str(w, "clip.audio.projector_type", "gemma4ua");
        gguf_w_u32(w, "clip.audio.embedding_length", p->audio_frame);
        gguf_w_u32(w, "clip.audio.projection_dim", E);
        gguf_w_u32(w, "clip.audio.feed_forward_length", 0);
        gguf_w_u32(w, "clip.audio.block_count", 0);
        gguf_w_u32(w, "clip.audio.attention.head_count", 0);
        /* a converter artefact that readers must ignore (spec §3.5) */
        gguf_w_u32(w, "clip.audio.num_mel_bins", 128);
        gguf_w_f32(w, "clip.audio.attention.layer_norm_epsilon", 1e-6f);
    }
    uint64_t max_row = 0, max_batch = 0;
    for (size_t i = 0; i < n_specs; i++) {
        const tspec *t = &specs[i];
        if (gguf_w_tensor(w, t->name, t->type, t->n_dims, t->ne, err, errlen))
            goto done;
        if (t->ne[0] > max_row) max_row = t->ne[0];
        uint64_t rows = BATCH_ELEMS / t->ne[0];
        if (rows < 1) rows = 1;
        if (rows > t->rows) rows = t->rows;
        if (rows * t->row_bytes > max_batch) max_batch = rows * t->row_bytes;
    }
    if (gguf_w_begin(w, path, err, errlen))
        goto done;
    began = true;
    pool = g4_pool_new(n_threads);
    scratch = calloc((size_t)n_threads, sizeof *scratch);
    out = malloc(max_batch);
    if (!pool || !scratch || !out) {
        set_err(err, errlen, "mmproj: out of memory");
        goto done;
    }
    for (int i = 0; i < n_threads; i++)
        if (!(scratch[i] = malloc(max_row * sizeof(float)))) {
            set_err(err, errlen, "mmproj: out of memory");
            goto done;
        }
    for (size_t i = 0; i < n_specs; i++) {
        const tspec *t = &specs[i];
        uint64_t per = BATCH_ELEMS / t->ne[0];
        if (per < 1) per = 1;
        for (uint64_t r0 = 0; r0 < t->rows; r0 += per) {
            uint64_t nr = t->rows - r0 < per ? t->rows - r0 : per;
            gen_job j = { t, p->seed, (uint64_t)i, r0, out, scratch };
            g4_pool_run(pool, (int64_t)nr, gen_row, &j);
            if (gguf_w_data(w, out, (size_t)(nr * t->row_bytes), err, errlen))
                goto done;
        }
        if (gguf_w_end_tensor(w, err, errlen))
            goto done;
    }
    if (gguf_w_finish(w, err, errlen))
        goto done;
    rc = 0;
done:
    if (scratch) {
        for (int i = 0; i < n_threads; i++)
            free(scratch[i]);
        free(scratch);
    }
    free(out);
    if (pool) g4_pool_free(pool);
    gguf_writer_free(w);
    if (rc != 0 && began)
        unlink(path);
    return rc;
}
