/*
 * mmproj.c - the encoder-free projectors of Gemma 4 12B "Unified"
 * (shared/spec/gemma4-multimodal.md): gemma4uv turns each 48x48 patch of an
 * image into one soft token (§2.8), gemma4ua each 640-sample frame of 16 kHz
 * audio (§3.3).  No transformer: a patch's row depends only on its pixels
 * and its grid position, a frame's only on its samples.
 *
 * Loading follows the text loader (src/model/loader.c): the GGUF reader has
 * already checked the file's structure; here every tensor's type and shape
 * is checked against what the others imply before a pointer into the file
 * is kept.  Widths come from tensor shapes, never from metadata values that
 * llama.cpp's converter fills with placeholders (head counts, block counts,
 * num_mel_bins): nothing here divides by a metadata value.
 *
 * Numerics: f32 activations everywhere.  llama.cpp found that rounding the
 * 6912-wide activations to f16 overflows on high-contrast patches (§2.8),
 * so the matrix products never use the half / 8-bit activation formats the
 * decoder uses for llama.cpp parity: the three matrices, whatever their
 * type (F32, F16, BF16, Q8_0), are converted to f32 at load (exact) straight
 * into the panel layout of kernels/sgemm.h (~175 MB for the 12B projector,
 * the size of an all-F32 file; no other copy is kept, and the file pages
 * they came from are handed back to the kernel when the file is mapped),
 * and every product is g4_sgemm: f32 x f32 with f32 accumulation in a fixed
 * order, no rounding of the activations, the same bits at every CPU level
 * and thread count.  The position table stays as stored (one row per patch
 * is dequantized).  LayerNorm statistics are accumulated in double.
 * Patches (frames) go through in batches so that each weight matrix is
 * streamed from memory once per batch, not once per token.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/quant.h"
#include "media/mmproj_internal.h"
#include "model/model.h"

enum {
    MAX_WIDTH = 1 << 20,  /* any tensor dimension we accept */
    MAX_PATCH = 1024,     /* model patch side in pixels */
    BATCH = 256,          /* patches / frames per pass over the weights: a 768x768
                             image in one pass; each pass streams the 175 MB of
                             packed f32 weights from memory once (7 MB of patch
                             vectors per batch) */
    BATCH_BYTES = 64 << 20 /* ... but no more than this much input per batch
                              (an odd file's 3 x 1024^2 patch would need 3 GB) */
};

/* Rows per batch for inputs of `width` floats, at most n (n > 0). */
static uint32_t batch_rows(uint64_t n, uint64_t width)
{
    uint64_t b = BATCH_BYTES / (width * sizeof(float));
    if (b > BATCH) b = BATCH;
    if (b < 1) b = 1;
    return (uint32_t)(n < b ? n : b);
}

static const char *const SUPPORTED = "gemma4.c supports gemma4uv/gemma4ua (Gemma 4 12B Unified)";

/* ------------------------------------------------------------------ loading */

typedef struct {
    g4_mmproj *mm;
    char *err;
    size_t errlen;
} loadctx;

/* A GGUF string (not NUL-terminated, maybe hostile) as printable text. */
static void str_copy(char *dst, size_t cap, gguf_str s)
{
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[n] = 0;
}

static bool str_is(gguf_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static g4_status opt_bool(loadctx *L, const char *key, bool *out)
{
    int r = gguf_get_bool(L->mm->gguf, key, out);
    if (r == -1) { *out = false; return G4_OK; }
    if (r != 0) return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key '%s' must be a boolean", key);
    return G4_OK;
}

/* Optional unsigned key in [lo, hi]; *present tells whether it was there. */
static g4_status opt_u32(loadctx *L, const char *key, uint32_t lo, uint32_t hi, uint32_t *out, bool *present)
{
    uint64_t v;
    int r = gguf_get_uint(L->mm->gguf, key, &v);
    *present = r != -1;
    if (r == -1) return G4_OK;
    if (r != 0) return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key '%s' must be a non-negative integer", key);
    if (v < lo || v > hi)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key '%s' = %llu is out of range [%u, %u]", key,
                       (unsigned long long)v, lo, hi);
    *out = (uint32_t)v;
    return G4_OK;
}

/* Three floats (image_mean / image_std); absent: def. */
static g4_status opt_f32x3(loadctx *L, const char *key, float def, float out[3])
{
    const gguf_kv *kv = gguf_find_kv(L->mm->gguf, key);
    for (int c = 0; c < 3; c++) out[c] = def;
    if (!kv) return G4_OK;
    if (kv->type != GGUF_VT_ARRAY || !(kv->arr_type == GGUF_VT_FLOAT32 || kv->arr_type == GGUF_VT_FLOAT64 ||
                                       gguf_vtype_is_int(kv->arr_type)))
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key '%s' must be an array of 3 numbers", key);
    if (kv->n != 3)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key '%s' has %llu values, expected 3 (R, G, B)", key,
                       (unsigned long long)kv->n);
    for (int c = 0; c < 3; c++) {
        double v = gguf_arr_float(kv, (uint64_t)c);
        if (!isfinite(v) || fabs(v) > 1e30)
            return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key '%s'[%d] is not a finite number", key, c);
        out[c] = (float)v;
    }
    return G4_OK;
}

/* The projector type of one modality: clip.<modality>.projector_type, else
 * the file-wide clip.projector_type.  Only `want` is supported. */
static g4_status projector_type(loadctx *L, const char *modality, const char *want, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof key, "clip.%s.projector_type", modality);
    gguf_str s;
    int r = gguf_get_str(L->mm->gguf, key, &s);
    if (r == -1) {
        snprintf(key, sizeof key, "clip.projector_type");
        r = gguf_get_str(L->mm->gguf, key, &s);
    }
    if (r == -1)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "missing key 'clip.%s.projector_type' (clip.has_%s_encoder is true)",
                       modality, modality);
    if (r != 0) return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key '%s' must be a string", key);
    char name[64];
    str_copy(name, sizeof name, s);
    if (str_is(s, want)) {
        snprintf(out, cap, "%s", want);
        return G4_OK;
    }
    if (str_is(s, "gemma4v"))
        return g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED,
                       "projector type 'gemma4v' (E2B/E4B vision tower) is not supported; %s", SUPPORTED);
    if (str_is(s, "gemma4a"))
        return g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED,
                       "projector type 'gemma4a' (E2B/E4B audio tower) is not supported; %s", SUPPORTED);
    return g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED, "%s projector type '%s' is not supported; %s", modality,
                   name, SUPPORTED);
}

static g4_status find(loadctx *L, const char *name, const gguf_tensor **out)
{
    *out = gguf_find_tensor(L->mm->gguf, name);
    if (!*out) return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "missing tensor '%s'", name);
    return G4_OK;
}

static const char *shape_str(const gguf_tensor *t, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "[");
    for (uint32_t d = 0; d < t->n_dims && n > 0 && (size_t)n < cap; d++)
        n += snprintf(buf + n, cap - (size_t)n, d ? ", %llu" : "%llu", (unsigned long long)t->ne[d]);
    if (n > 0 && (size_t)n < cap) snprintf(buf + n, cap - (size_t)n, "]");
    return buf;
}

/* A vector (norm weight, bias) of n elements, F32 or F16, as a new f32 array. */
static g4_status bind_vec(loadctx *L, const char *name, uint64_t n, float **out)
{
    const gguf_tensor *t;
    g4_status st;
    char sh[96];
    *out = NULL;
    if ((st = find(L, name, &t))) return st;
    if (t->type != G4_TYPE_F32 && t->type != G4_TYPE_F16) {
        const g4_type_traits *tr = g4_type_get(t->type);
        return g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED, "tensor '%s' has type %s; norms and biases must be f32 or f16",
                       name, tr ? tr->name : "unknown");
    }
    if (t->n_dims != 1 || t->ne[0] != n)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "tensor '%s' has shape %s, expected [%llu]", name,
                       shape_str(t, sh, sizeof sh), (unsigned long long)n);
    float *v = malloc(sizeof(float) * (size_t)n);
    if (!v) return g4_fail(L->err, L->errlen, G4_ERR_NOMEM, "out of memory reading '%s'", name);
    g4_dequantize_row(t->type, t->data, v, (int64_t)n);
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            free(v);
            return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "tensor '%s' element %llu is not finite", name,
                           (unsigned long long)i);
        }
    *out = v;
    return G4_OK;
}

/* g4_sgemm_rows_done for a mapped file: drops the pages wholly inside
 * [p, p + n) from the resident set, as each panel is packed (a packed
 * matrix never reads its source again, and a read-only file mapping reloads
 * a page if anything touches it later), so loading an F32 file never holds
 * a matrix twice. */
static void release_pages(void *ctx, const void *p, uint64_t n)
{
    (void)ctx;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) page = 4096;
    const uintptr_t pg = (uintptr_t)page;
    const uintptr_t a = ((uintptr_t)p + pg - 1) & ~(pg - 1), b = ((uintptr_t)p + (uintptr_t)n) & ~(pg - 1);
    if (b > a) madvise((void *)a, (size_t)(b - a), MADV_DONTNEED);
}

/* A matrix: F32, F16, BF16 or Q8_0, rows of `cols` elements.  n_dims and
 * the expected ne[] were checked by the caller.  With packed, the matrix is
 * converted to f32 into g4_sgemm's layout (see the top of the file) and
 * *out only describes the stored tensor. */
static g4_status bind_mat(loadctx *L, const gguf_tensor *t, uint64_t cols, uint64_t rows, g4_sgemm_w *packed,
                          g4_mat *out)
{
    const g4_type_traits *tr = g4_type_get(t->type);
    if (t->type != G4_TYPE_F32 && t->type != G4_TYPE_F16 && t->type != G4_TYPE_BF16 && t->type != G4_TYPE_Q8_0)
        return g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED,
                       "tensor '%s' has type %s; projector matrices must be f32, f16, bf16 or q8_0", t->name,
                       tr ? tr->name : "unknown");
    uint64_t rb;
    if (!g4_row_size(t->type, cols, &rb))
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "tensor '%s': rows of %llu are not whole %s blocks", t->name,
                       (unsigned long long)cols, tr->name);
    out->type = t->type;
    out->data = t->data;
    out->rows = (int64_t)rows;
    out->cols = (int64_t)cols;
    out->row_bytes = rb;
    if (!packed) return G4_OK;
    if (rows > SIZE_MAX / sizeof(float) / cols)
        return g4_fail(L->err, L->errlen, G4_ERR_NOMEM, "tensor '%s' is too large to convert to f32", t->name);
    /* read into malloc'ed memory (no mmap): those pages must stay */
    if (!g4_sgemm_pack(L->mm->pool, out, L->mm->file_copy ? NULL : release_pages, NULL, packed))
        return g4_fail(L->err, L->errlen, G4_ERR_NOMEM, "out of memory converting '%s' to f32", t->name);
    return G4_OK;
}

static g4_status load_vision(loadctx *L)
{
    g4_mmproj *mm = L->mm;
    g4_mmproj_info *in = &mm->info;
    g4_status st;
    bool present;
    char sh[96];
    if ((st = projector_type(L, "vision", "gemma4uv", in->vision_type, sizeof in->vision_type))) return st;

    /* The stored patch size is the 16-px "teacher" patch; the model's patch
     * merges n_merge x n_merge of them (spec §2.10). */
    uint32_t ps = 0, merge = 3;
    if ((st = opt_u32(L, "clip.vision.patch_size", 1, MAX_PATCH, &ps, &present))) return st;
    if (!present) return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "missing key 'clip.vision.patch_size'");
    /* llama.cpp writes scale_factor as an integer; accept an integral float too */
    double sf;
    if (gguf_get_float(mm->gguf, "clip.vision.projector.scale_factor", &sf) == 0 && sf == floor(sf) && sf >= 1 &&
        sf <= MAX_PATCH)
        merge = (uint32_t)sf;
    else if ((st = opt_u32(L, "clip.vision.projector.scale_factor", 1, MAX_PATCH, &merge, &present)))
        return st;
    uint64_t patch = (uint64_t)ps * merge;
    if (patch > MAX_PATCH)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "patch size %u x merge %u = %llu pixels is too large (at most %d)",
                       ps, merge, (unsigned long long)patch, MAX_PATCH);
    in->patch = (uint32_t)patch;
    const uint64_t D = 3 * patch * patch;
    mm->patch_dim = (uint32_t)D;

    const gguf_tensor *t;
    if ((st = find(L, "v.patch_embd.weight", &t))) return st;
    if (t->n_dims != 2 || t->ne[0] != D || t->ne[1] < 1 || t->ne[1] > MAX_WIDTH)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT,
                       "tensor 'v.patch_embd.weight' has shape %s, expected [%llu, width] (3 x %llu x %llu: patch_size %u x merge %u)",
                       shape_str(t, sh, sizeof sh), (unsigned long long)D, (unsigned long long)patch,
                       (unsigned long long)patch, ps, merge);
    const uint64_t W = t->ne[1];
    in->vision_width = (uint32_t)W;
    g4_mat m;
    if ((st = bind_mat(L, t, D, W, &mm->patch_embd, &m))) return st;
    uint32_t key_w = 0;
    if ((st = opt_u32(L, "clip.vision.embedding_length", 0, UINT32_MAX, &key_w, &present))) return st;
    if (present && key_w != W)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT,
                       "key 'clip.vision.embedding_length' = %u but v.patch_embd.weight has width %llu", key_w,
                       (unsigned long long)W);

    if ((st = bind_vec(L, "v.patch_norm.1.weight", D, &mm->ln1_w))) return st;
    if ((st = bind_vec(L, "v.patch_norm.1.bias", D, &mm->ln1_b))) return st;
    if ((st = bind_vec(L, "v.patch_embd.bias", W, &mm->patch_b))) return st;
    if ((st = bind_vec(L, "v.patch_norm.2.weight", W, &mm->ln2_w))) return st;
    if ((st = bind_vec(L, "v.patch_norm.2.bias", W, &mm->ln2_b))) return st;
    if ((st = bind_vec(L, "v.patch_norm.3.weight", W, &mm->ln3_w))) return st;
    if ((st = bind_vec(L, "v.patch_norm.3.bias", W, &mm->ln3_b))) return st;

    /* ne [W, n_pos, 2]: the x-table's n_pos rows, then the y-table's (§2.7) */
    if ((st = find(L, "v.position_embd.weight", &t))) return st;
    if (t->n_dims != 3 || t->ne[0] != W || t->ne[1] < 1 || t->ne[1] > MAX_WIDTH || t->ne[2] != 2)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT,
                       "tensor 'v.position_embd.weight' has shape %s, expected [%llu, n_pos, 2]",
                       shape_str(t, sh, sizeof sh), (unsigned long long)W);
    in->n_pos = (uint32_t)t->ne[1];
    if ((st = bind_mat(L, t, W, 2 * t->ne[1], NULL, &mm->pos))) return st;

    if ((st = find(L, "mm.input_projection.weight", &t))) return st;
    if (t->n_dims != 2 || t->ne[0] != W || t->ne[1] < 1 || t->ne[1] > MAX_WIDTH)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT,
                       "tensor 'mm.input_projection.weight' has shape %s, expected [%llu, n_embd]",
                       shape_str(t, sh, sizeof sh), (unsigned long long)W);
    in->n_embd = (uint32_t)t->ne[1];
    if ((st = bind_mat(L, t, W, t->ne[1], &mm->proj, &m))) return st;
    uint32_t key_e = 0;
    if ((st = opt_u32(L, "clip.vision.projection_dim", 0, UINT32_MAX, &key_e, &present))) return st;
    if (present && key_e != in->n_embd)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT,
                       "key 'clip.vision.projection_dim' = %u but mm.input_projection.weight outputs %u", key_e,
                       in->n_embd);

    if ((st = opt_f32x3(L, "clip.vision.image_mean", 0.0f, in->image_mean))) return st;
    if ((st = opt_f32x3(L, "clip.vision.image_std", 1.0f, in->image_std))) return st;
    for (int c = 0; c < 3; c++)
        if (!(in->image_std[c] > 0.0f))
            return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key 'clip.vision.image_std'[%d] = %g: must be positive", c,
                           (double)in->image_std[c]);
    double eps = 1e-6;
    int r = gguf_get_float(mm->gguf, "clip.vision.attention.layer_norm_epsilon", &eps);
    if (r == -1) eps = 1e-6;
    else if (r != 0 || !isfinite(eps) || !(eps > 0.0 && eps < 1.0))
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT,
                       "key 'clip.vision.attention.layer_norm_epsilon' must be a number in (0, 1)");
    in->vision_eps = (float)eps;
    in->has_vision = true;
    return G4_OK;
}

static g4_status load_audio(loadctx *L)
{
    g4_mmproj *mm = L->mm;
    g4_mmproj_info *in = &mm->info;
    g4_status st;
    char sh[96];
    if ((st = projector_type(L, "audio", "gemma4ua", in->audio_type, sizeof in->audio_type))) return st;
    /* The frame size is the projection's input width; clip.audio.num_mel_bins
     * is a converter artefact (spec §3.5, §7.8). */
    const gguf_tensor *t;
    if ((st = find(L, "mm.a.input_projection.weight", &t))) return st;
    if (t->n_dims != 2 || t->ne[0] < 1 || t->ne[0] > MAX_WIDTH || t->ne[1] < 1 || t->ne[1] > MAX_WIDTH)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT,
                       "tensor 'mm.a.input_projection.weight' has shape %s, expected [frame, n_embd]",
                       shape_str(t, sh, sizeof sh));
    if (in->has_vision && t->ne[1] != in->n_embd)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT,
                       "mm.a.input_projection.weight outputs %llu values but mm.input_projection.weight outputs %u",
                       (unsigned long long)t->ne[1], in->n_embd);
    g4_mat m;
    if ((st = bind_mat(L, t, t->ne[0], t->ne[1], &mm->proj_a, &m))) return st;
    in->audio_frame = (uint32_t)t->ne[0];
    in->n_embd = (uint32_t)t->ne[1];
    in->audio_rate = G4_MM_AUDIO_RATE;
    bool present;
    uint32_t key_f = 0;
    if ((st = opt_u32(L, "clip.audio.embedding_length", 0, UINT32_MAX, &key_f, &present))) return st;
    if (present && key_f != in->audio_frame)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT,
                       "key 'clip.audio.embedding_length' = %u but mm.a.input_projection.weight takes %u samples", key_f,
                       in->audio_frame);
    in->has_audio = true;
    return G4_OK;
}

static g4_status read_whole(const char *path, void **buf, size_t *size, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return g4_fail(err, errlen, G4_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    g4_status st = G4_OK;
    off_t end = -1;
    if (fseeko(fp, 0, SEEK_END) != 0 || (end = ftello(fp)) < 0 || fseeko(fp, 0, SEEK_SET) != 0)
        st = g4_fail(err, errlen, G4_ERR_IO, "cannot seek '%s'", path);
    else if ((uint64_t)end > (uint64_t)SIZE_MAX - 1)
        st = g4_fail(err, errlen, G4_ERR_NOMEM, "'%s' is too large to read into memory", path);
    else if (!(*buf = malloc((size_t)end + 1)))
        st = g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory reading '%s'", path);
    else if (fread(*buf, 1, (size_t)end, fp) != (size_t)end) {
        free(*buf);
        *buf = NULL;
        st = g4_fail(err, errlen, G4_ERR_IO, "read error on '%s'", path);
    }
    fclose(fp);
    if (st == G4_OK) *size = (size_t)end;
    return st;
}

g4_mmproj_params g4_mmproj_default_params(void)
{
    g4_mmproj_params p = { .use_mmap = true, .n_threads = 0 };
    return p;
}

g4_status g4_mmproj_load(const char *path, const g4_mmproj_params *params, g4_mmproj **out, char *err,
                         size_t errlen)
{
    if (!out) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_mmproj_load: out is required");
    *out = NULL;
    if (!path) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_mmproj_load: path is required");
    g4_mmproj_params p = params ? *params : g4_mmproj_default_params();
    g4_mmproj *mm = calloc(1, sizeof *mm);
    if (!mm) return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory");
    if (pthread_mutex_init(&mm->lock, NULL) != 0) {
        free(mm);
        return g4_fail(err, errlen, G4_ERR_NOMEM, "cannot create a mutex");
    }
    g4_status st;
    char gerr[512];
    int r;
    if (p.use_mmap) {
        r = gguf_open(path, &mm->gguf, gerr, sizeof gerr);
    } else {
        size_t size = 0;
        if ((st = read_whole(path, &mm->file_copy, &size, err, errlen))) {
            g4_mmproj_free(mm);
            return st;
        }
        r = gguf_open_memory(mm->file_copy, size, &mm->gguf, gerr, sizeof gerr);
    }
    if (r != 0) {
        st = g4_fail(err, errlen, strncmp(gerr, "cannot open", 11) == 0 ? G4_ERR_IO : G4_ERR_FORMAT, "%s", gerr);
        g4_mmproj_free(mm);
        return st;
    }
    mm->n_threads = p.n_threads > 0 ? p.n_threads : g4_cpu_cores();
    if (!(mm->pool = g4_pool_new(mm->n_threads))) {
        g4_mmproj_free(mm);
        return g4_fail(err, errlen, G4_ERR_NOMEM, "cannot start %d threads", mm->n_threads);
    }
    loadctx L = { mm, err, errlen };
    gguf_str arch;
    r = gguf_get_str(mm->gguf, "general.architecture", &arch);
    if (r != 0) {
        st = g4_fail(err, errlen, G4_ERR_FORMAT, "'%s' is not an mmproj file: %s", path,
                     r == -1 ? "no general.architecture key" : "general.architecture is not a string");
        g4_mmproj_free(mm);
        return st;
    }
    if (!str_is(arch, "clip")) {
        char a[64];
        str_copy(a, sizeof a, arch);
        st = g4_fail(err, errlen, G4_ERR_FORMAT, "'%s' is not an mmproj file: general.architecture is '%s', not 'clip'",
                     path, a);
        g4_mmproj_free(mm);
        return st;
    }
    bool hv = false, ha = false;
    if ((st = opt_bool(&L, "clip.has_vision_encoder", &hv)) || (st = opt_bool(&L, "clip.has_audio_encoder", &ha)) ||
        (hv && (st = load_vision(&L))) || (ha && (st = load_audio(&L)))) {
        g4_mmproj_free(mm);
        return st;
    }
    if (!hv && !ha) {
        g4_mmproj_free(mm);
        return g4_fail(err, errlen, G4_ERR_FORMAT,
                       "mmproj '%s' has no projector: neither clip.has_vision_encoder nor clip.has_audio_encoder is true",
                       path);
    }
    *out = mm;
    return G4_OK;
}

void g4_mmproj_free(g4_mmproj *mm)
{
    if (!mm) return;
    free(mm->ln1_w); free(mm->ln1_b); free(mm->patch_b);
    free(mm->ln2_w); free(mm->ln2_b); free(mm->ln3_w); free(mm->ln3_b);
    g4_sgemm_w_free(&mm->patch_embd);
    g4_sgemm_w_free(&mm->proj);
    g4_sgemm_w_free(&mm->proj_a);
    g4_pool_free(mm->pool);
    gguf_close(mm->gguf);
    free(mm->file_copy);
    pthread_mutex_destroy(&mm->lock);
    free(mm);
}

void g4_mmproj_get_info(const g4_mmproj *mm, g4_mmproj_info *out)
{
    if (!out) return;
    if (!mm) { memset(out, 0, sizeof *out); return; }
    *out = mm->info;
}

g4_status g4_mmproj_check_model(const g4_mmproj *mm, const g4_model *model, char *err, size_t errlen)
{
    if (!mm || !model) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_mmproj_check_model: mmproj and model are required");
    g4_model_info mi;
    g4_model_get_info(model, &mi);
    if (mi.n_embd != mm->info.n_embd)
        return g4_fail(err, errlen, G4_ERR_INVALID,
                       "the mmproj produces rows of %u values but the model's n_embd is %u: they do not belong together",
                       mm->info.n_embd, mi.n_embd);
    return G4_OK;
}

/* ------------------------------------------------------------------ math */

/* In place, affine, population variance; statistics in double (the mean of
 * 6912 values near 0.5 would otherwise lose the variance of a flat patch). */
static void layer_norm(float *x, const float *w, const float *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    const double mu = s / (double)n;
    double v = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = x[i] - mu;
        v += d * d;
    }
    const double inv = 1.0 / sqrt(v / (double)n + G4_MM_LN_EPS);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(((double)x[i] - mu) * inv * w[i] + b[i]);
}

static bool all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

/* Steps 3-6 of §2.8 for one patch, and step 1 (LN1). */
typedef struct {
    g4_mmproj *mm;
    float *x;               /* n x patch_dim: patch vectors, LN1 in place */
    float *h;               /* n x vision_width */
    const uint32_t *cols, *rows;
    float *scratch;         /* per thread: 2 x vision_width */
    const g4_mmproj_trace *tr;
    uint32_t t0;            /* index of the batch's first patch in the trace */
} vjob;

static void ln1_item(void *arg, int64_t i, int tid)
{
    (void)tid;
    vjob *j = arg;
    const uint64_t D = j->mm->patch_dim;
    float *x = j->x + (uint64_t)i * D;
    layer_norm(x, j->mm->ln1_w, j->mm->ln1_b, (int64_t)D);
    if (j->tr && j->tr->ln1) memcpy(j->tr->ln1 + (j->t0 + (uint64_t)i) * D, x, D * sizeof(float));
}

#define TRACE(field, src) do { if (j->tr && j->tr->field) \
        memcpy(j->tr->field + (j->t0 + (uint64_t)i) * W, src, W * sizeof(float)); } while (0)

static void mid_item(void *arg, int64_t i, int tid)
{
    vjob *j = arg;
    g4_mmproj *mm = j->mm;
    const uint64_t W = mm->info.vision_width;
    float *h = j->h + (uint64_t)i * W; /* the dense output, bias included */
    TRACE(dense, h);
    layer_norm(h, mm->ln2_w, mm->ln2_b, (int64_t)W);
    TRACE(ln2, h);
    float *px = j->scratch + (uint64_t)tid * 2 * W, *py = px + W;
    g4_mat_row(&mm->pos, j->cols[i], px);
    g4_mat_row(&mm->pos, (int64_t)mm->info.n_pos + j->rows[i], py);
    for (uint64_t k = 0; k < W; k++) h[k] += px[k] + py[k];
    TRACE(pos, h);
    layer_norm(h, mm->ln3_w, mm->ln3_b, (int64_t)W);
    TRACE(pos_norm, h);
    g4_rmsnorm(h, NULL, (int64_t)W, mm->info.vision_eps);
    TRACE(rms, h);
}
#undef TRACE

/* x: n patch vectors (consumed: LN1 runs in place); h: n x width scratch. */
static g4_status vision_batch(g4_mmproj *mm, float *x, float *h, float *scratch, const uint32_t *cols,
                              const uint32_t *rows, uint32_t n, float *out, const g4_mmproj_trace *tr, uint32_t t0,
                              char *err, size_t errlen)
{
    vjob j = { mm, x, h, cols, rows, scratch, tr, t0 };
    const int64_t D = mm->patch_dim, W = mm->info.vision_width, E = mm->info.n_embd;
    g4_pool_run(mm->pool, n, ln1_item, &j);
    if (!g4_sgemm(mm->pool, &mm->patch_embd, x, D, n, mm->patch_b, h, W))
        return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory for a batch of %u patches", n);
    g4_pool_run(mm->pool, n, mid_item, &j);
    if (!g4_sgemm(mm->pool, &mm->proj, h, W, n, NULL, out, E))
        return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory for a batch of %u patches", n);
    if (!all_finite(out, (size_t)n * mm->info.n_embd))
        return g4_fail(err, errlen, G4_ERR_FORMAT,
                       "the vision projector produced a non-finite value: its weights hold inf or NaN");
    return G4_OK;
}

typedef struct {
    float *x, *h, *scratch;
} vbufs;

static g4_status vbufs_new(g4_mmproj *mm, uint32_t n, vbufs *b, char *err, size_t errlen)
{
    const size_t W = mm->info.vision_width;
    b->x = malloc((size_t)n * mm->patch_dim * sizeof(float));
    b->h = malloc((size_t)n * W * sizeof(float));
    b->scratch = malloc((size_t)g4_pool_size(mm->pool) * 2 * W * sizeof(float));
    if (!b->x || !b->h || !b->scratch) {
        free(b->x); free(b->h); free(b->scratch);
        return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory for a batch of %u patches", n);
    }
    return G4_OK;
}

static void vbufs_free(vbufs *b)
{
    free(b->x); free(b->h); free(b->scratch);
}

static g4_status check_pos(const g4_mmproj *mm, uint32_t col, uint32_t row, char *err, size_t errlen)
{
    if (col >= mm->info.n_pos || row >= mm->info.n_pos)
        return g4_fail(err, errlen, G4_ERR_INVALID,
                       "patch position (column %u, row %u) is outside the position table (%u per axis)", col, row,
                       mm->info.n_pos);
    return G4_OK;
}

g4_status g4_mmproj_vision_rows(g4_mmproj *mm, const float *patches, const uint32_t *cols, const uint32_t *rows,
                                uint32_t n, float *out, const g4_mmproj_trace *trace, char *err, size_t errlen)
{
    if (!mm || !mm->info.has_vision) return g4_fail(err, errlen, G4_ERR_UNSUPPORTED, "this mmproj has no vision projector");
    if (n == 0) return G4_OK;
    if (!patches || !cols || !rows || !out) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_mmproj_vision_rows: missing array");
    g4_status st;
    for (uint32_t i = 0; i < n; i++)
        if ((st = check_pos(mm, cols[i], rows[i], err, errlen))) return st;
    uint32_t bn = batch_rows(n, mm->patch_dim);
    vbufs b;
    if ((st = vbufs_new(mm, bn, &b, err, errlen))) return st;
    pthread_mutex_lock(&mm->lock);
    for (uint32_t i0 = 0; i0 < n && st == G4_OK; i0 += bn) {
        uint32_t k = n - i0 < bn ? n - i0 : bn;
        memcpy(b.x, patches + (size_t)i0 * mm->patch_dim, (size_t)k * mm->patch_dim * sizeof(float));
        st = vision_batch(mm, b.x, b.h, b.scratch, cols + i0, rows + i0, k, out + (size_t)i0 * mm->info.n_embd,
                          trace, i0, err, errlen);
    }
    pthread_mutex_unlock(&mm->lock);
    vbufs_free(&b);
    return st;
}

void g4_mmproj_patch_vector(const g4_mmproj *mm, const g4_image *img, uint32_t col, uint32_t row, float *v)
{
    const uint32_t P = mm->info.patch;
    const size_t plane = (size_t)P * P;
    for (uint32_t c = 0; c < 3; c++) {
        const float mean = mm->info.image_mean[c], sd = mm->info.image_std[c];
        for (uint32_t y = 0; y < P; y++) {
            const uint8_t *src = img->rgb + (((size_t)row * P + y) * img->width + (size_t)col * P) * 3 + c;
            float *dst = v + c * plane + (size_t)y * P;
            for (uint32_t x = 0; x < P; x++) dst[x] = ((float)src[3 * x] / 255.0f - mean) / sd;
        }
    }
}

typedef struct {
    const g4_mmproj *mm;
    const g4_image *img;
    float *x;
    const uint32_t *cols, *rows;
} pjob;

static void patch_item(void *arg, int64_t i, int tid)
{
    (void)tid;
    pjob *j = arg;
    g4_mmproj_patch_vector(j->mm, j->img, j->cols[i], j->rows[i], j->x + (size_t)i * j->mm->patch_dim);
}

static g4_status embd_alloc(g4_embedding *out, uint64_t n_tokens, uint32_t n_embd, const char *what, char *err,
                            size_t errlen)
{
    if (n_tokens > UINT32_MAX || n_tokens > SIZE_MAX / sizeof(float) / n_embd)
        return g4_fail(err, errlen, G4_ERR_INVALID, "%s would give %llu soft tokens: too many", what,
                       (unsigned long long)n_tokens);
    out->rows = malloc((size_t)n_tokens * n_embd * sizeof(float));
    if (!out->rows)
        return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory for %llu soft tokens of %u values",
                       (unsigned long long)n_tokens, n_embd);
    out->n_tokens = (uint32_t)n_tokens;
    out->n_embd = n_embd;
    return G4_OK;
}

g4_status g4_mmproj_embed_sized(g4_mmproj *mm, const g4_image *img, g4_embedding *out, char *err, size_t errlen)
{
    if (!out) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_mmproj_embed_image: out is required");
    memset(out, 0, sizeof *out);
    if (!mm || !img) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_mmproj_embed_image: mmproj and image are required");
    if (!mm->info.has_vision)
        return g4_fail(err, errlen, G4_ERR_UNSUPPORTED, "this mmproj has no vision projector (audio only)");
    const uint32_t P = mm->info.patch;
    if (!img->rgb || img->width == 0 || img->height == 0)
        return g4_fail(err, errlen, G4_ERR_INVALID, "empty image (%ux%u)", img->width, img->height);
    if (img->width % P || img->height % P)
        return g4_fail(err, errlen, G4_ERR_INVALID, "image %ux%u: sides must be multiples of the %u-pixel patch",
                       img->width, img->height, P);
    const uint32_t gw = img->width / P, gh = img->height / P;
    if (gw > mm->info.n_pos || gh > mm->info.n_pos)
        return g4_fail(err, errlen, G4_ERR_INVALID,
                       "image %ux%u has a %ux%u patch grid; the position table has %u entries per axis", img->width,
                       img->height, gw, gh, mm->info.n_pos);
    g4_status st;
    const uint64_t N = (uint64_t)gw * gh;
    if ((st = embd_alloc(out, N, mm->info.n_embd, "the image", err, errlen))) return st;
    out->width = img->width;
    out->height = img->height;
    out->grid_w = gw;
    out->grid_h = gh;

    const uint32_t bn = batch_rows(N, mm->patch_dim);
    vbufs b;
    uint32_t *cols = malloc(bn * sizeof *cols), *rows = malloc(bn * sizeof *rows);
    if (!cols || !rows || (st = vbufs_new(mm, bn, &b, err, errlen))) {
        free(cols); free(rows);
        g4_embedding_free(out);
        return st ? st : g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&mm->lock);
    for (uint64_t i0 = 0; i0 < N && st == G4_OK; i0 += bn) {
        uint32_t k = N - i0 < bn ? (uint32_t)(N - i0) : bn;
        /* row-major patch order: i = row * gw + col (§2.6) */
        for (uint32_t i = 0; i < k; i++) {
            cols[i] = (uint32_t)((i0 + i) % gw);
            rows[i] = (uint32_t)((i0 + i) / gw);
        }
        pjob pj = { mm, img, b.x, cols, rows };
        g4_pool_run(mm->pool, k, patch_item, &pj);
        st = vision_batch(mm, b.x, b.h, b.scratch, cols, rows, k, out->rows + i0 * mm->info.n_embd, NULL, 0, err,
                          errlen);
    }
    pthread_mutex_unlock(&mm->lock);
    vbufs_free(&b);
    free(cols);
    free(rows);
    if (st) g4_embedding_free(out);
    return st;
}

g4_status g4_mmproj_embed_image(g4_mmproj *mm, const g4_image *img, uint32_t max_tokens, g4_embedding *out,
                                char *err, size_t errlen)
{
    if (!out) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_mmproj_embed_image: out is required");
    memset(out, 0, sizeof *out);
    if (!mm || !img) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_mmproj_embed_image: mmproj and image are required");
    if (!mm->info.has_vision)
        return g4_fail(err, errlen, G4_ERR_UNSUPPORTED, "this mmproj has no vision projector (audio only)");
    if (!img->rgb || img->width == 0 || img->height == 0)
        return g4_fail(err, errlen, G4_ERR_INVALID, "empty image (%ux%u)", img->width, img->height);
    /* g4_image_fit aligns to the 12B's 48-px patch; another patch size would
     * silently change the token count */
    if (mm->info.patch != 48)
        return g4_fail(err, errlen, G4_ERR_UNSUPPORTED, "the projector's patch is %u pixels; image sizing supports 48",
                       mm->info.patch);
    uint32_t w, h;
    g4_status st = g4_image_fit(img->width, img->height, max_tokens, &w, &h, err, errlen);
    if (st) return st;
    if (w == img->width && h == img->height) return g4_mmproj_embed_sized(mm, img, out, err, errlen);
    g4_image rs = { 0, 0, NULL };
    if ((st = g4_image_resize(img, w, h, &rs, err, errlen))) return st;
    if (rs.width != w || rs.height != h || !rs.rgb) {
        g4_image_free(&rs);
        return g4_fail(err, errlen, G4_ERR_INVALID, "resize to %ux%u failed", w, h);
    }
    st = g4_mmproj_embed_sized(mm, &rs, out, err, errlen);
    g4_image_free(&rs);
    return st;
}

/* ------------------------------------------------------------------ audio */

typedef struct {
    const g4_mmproj *mm;
    const float *samples;
    uint64_t n_samples, f0; /* first frame of the batch */
    float *x;
} ajob;

/* One frame: 640 samples, zero-padded past the end, RMSNorm without weight
 * over all of them (padding included, §3.3). */
static void frame_item(void *arg, int64_t i, int tid)
{
    (void)tid;
    ajob *j = arg;
    const uint64_t F = j->mm->info.audio_frame, s0 = (j->f0 + (uint64_t)i) * F;
    float *x = j->x + (uint64_t)i * F;
    uint64_t have = j->n_samples - s0 < F ? j->n_samples - s0 : F;
    memcpy(x, j->samples + s0, have * sizeof(float));
    memset(x + have, 0, (F - have) * sizeof(float));
    g4_rmsnorm(x, NULL, (int64_t)F, G4_MM_AUDIO_EPS);
}

g4_status g4_mmproj_embed_audio(g4_mmproj *mm, const float *samples, uint64_t n_samples, g4_embedding *out,
                                char *err, size_t errlen)
{
    if (!out) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_mmproj_embed_audio: out is required");
    memset(out, 0, sizeof *out);
    if (!mm) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_mmproj_embed_audio: mmproj is required");
    if (!mm->info.has_audio)
        return g4_fail(err, errlen, G4_ERR_UNSUPPORTED, "this mmproj has no audio projector (vision only)");
    if (n_samples == 0) return g4_fail(err, errlen, G4_ERR_INVALID, "empty audio (0 samples)");
    if (!samples) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_mmproj_embed_audio: samples is NULL");
    for (uint64_t i = 0; i < n_samples; i++)
        if (!isfinite(samples[i]))
            return g4_fail(err, errlen, G4_ERR_INVALID, "audio sample %llu is not finite", (unsigned long long)i);
    const uint64_t F = mm->info.audio_frame;
    const uint64_t T = n_samples / F + (n_samples % F != 0);
    g4_status st = embd_alloc(out, T, mm->info.n_embd, "the audio", err, errlen);
    if (st) return st;
    const uint32_t bn = batch_rows(T, F);
    float *x = malloc((size_t)bn * F * sizeof(float));
    if (!x) {
        g4_embedding_free(out);
        return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory for a batch of %u audio frames", bn);
    }
    pthread_mutex_lock(&mm->lock);
    for (uint64_t f0 = 0; f0 < T; f0 += bn) {
        uint32_t k = T - f0 < bn ? (uint32_t)(T - f0) : bn;
        ajob j = { mm, samples, n_samples, f0, x };
        g4_pool_run(mm->pool, k, frame_item, &j);
        float *o = out->rows + f0 * mm->info.n_embd;
        if (!g4_sgemm(mm->pool, &mm->proj_a, x, (int64_t)F, k, NULL, o, mm->info.n_embd)) {
            st = g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory for a batch of %u audio frames", k);
            break;
        }
        if (!all_finite(o, (size_t)k * mm->info.n_embd)) {
            st = g4_fail(err, errlen, G4_ERR_FORMAT,
                         "the audio projector produced a non-finite value: its weights hold inf or NaN");
            break;
        }
    }
    pthread_mutex_unlock(&mm->lock);
    free(x);
    if (st) g4_embedding_free(out);
    return st;
}

void g4_embedding_free(g4_embedding *e)
{
    if (!e) return;
    free(e->rows);
    memset(e, 0, sizeof *e);
}
