/*
 * loader.c - turn a parsed GGUF file into a g4_model.
 *
 * Every hyperparameter comes from metadata (nothing is hard-coded for the
 * 12B), every tensor is looked up by its GGUF name and its type and shape are
 * checked against what the hyperparameters imply before any pointer into the
 * file is kept.  Weight matrices are used in place (mapped); small vectors
 * (norm weights, rope_freqs) are converted to f32 copies so the forward pass
 * only ever sees floats there.  Variants of the family this engine does not
 * run (PLE, KV sharing, MoE) are refused with a message that names the
 * feature.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quant.h"
#include "model/model.h"
#include "text/tokenizer.h"

g4_status g4_fail(char *err, size_t errlen, g4_status s, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return s;
}

enum { MAX_LAYERS = 4096, MAX_DIM = 1 << 20, MAX_HEADS = 4096 };

typedef struct {
    g4_model *m;
    char *err;
    size_t errlen;
    char key[160];
} loadctx;

static const char *akey(loadctx *L, const char *suffix)
{
    snprintf(L->key, sizeof L->key, "%s.%s", L->m->arch, suffix);
    return L->key;
}

/* Required/optional unsigned key; `lo`..`hi` bounds the value. */
static g4_status get_u32(loadctx *L, const char *suffix, bool required, uint32_t def,
                         uint32_t lo, uint32_t hi, uint32_t *out)
{
    const char *k = akey(L, suffix);
    uint64_t v;
    int r = gguf_get_uint(L->m->gguf, k, &v);
    if (r == -1) {
        if (required) return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "missing required key '%s'", k);
        *out = def;
        return G4_OK;
    }
    if (r != 0) return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key '%s' has the wrong type (want a non-negative integer)", k);
    if (v < lo || v > hi)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key '%s' = %llu is out of range [%u, %u]", k,
                       (unsigned long long)v, lo, hi);
    *out = (uint32_t)v;
    return G4_OK;
}

static g4_status get_f32(loadctx *L, const char *suffix, bool required, float def, float *out)
{
    const char *k = akey(L, suffix);
    double v;
    int r = gguf_get_float(L->m->gguf, k, &v);
    if (r == -1) {
        if (required) return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "missing required key '%s'", k);
        *out = def;
        return G4_OK;
    }
    if (r != 0 || !isfinite(v))
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key '%s' must be a finite number", k);
    *out = (float)v;
    return G4_OK;
}

/* A key that is either a scalar or an array with one value per layer.
 * Fills vals[n_layer]. */
static g4_status get_per_layer(loadctx *L, const char *suffix, bool required, int64_t def,
                               int64_t lo, int64_t hi, int64_t *vals)
{
    const char *k = akey(L, suffix);
    const gguf_kv *kv = gguf_find_kv(L->m->gguf, k);
    uint32_t n_layer = L->m->n_layer;
    if (!kv) {
        if (required) return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "missing required key '%s'", k);
        for (uint32_t i = 0; i < n_layer; i++) vals[i] = def;
        return G4_OK;
    }
    if (kv->type == GGUF_VT_ARRAY) {
        if (!gguf_vtype_is_int(kv->arr_type) && kv->arr_type != GGUF_VT_BOOL)
            return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key '%s': array of %s, want integers", k,
                           gguf_vtype_name(kv->arr_type));
        if (kv->n != n_layer)
            return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key '%s': array has %llu entries, block_count is %u",
                           k, (unsigned long long)kv->n, n_layer);
        for (uint32_t i = 0; i < n_layer; i++) vals[i] = gguf_arr_int(kv, i);
    } else {
        int64_t v;
        if (kv->type == GGUF_VT_BOOL) {
            bool b;
            gguf_get_bool(L->m->gguf, k, &b);
            v = b;
        } else if (gguf_get_int(L->m->gguf, k, &v) != 0) {
            return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key '%s' has the wrong type (%s)", k,
                           gguf_vtype_name(kv->type));
        }
        for (uint32_t i = 0; i < n_layer; i++) vals[i] = v;
    }
    for (uint32_t i = 0; i < n_layer; i++)
        if (vals[i] < lo || vals[i] > hi)
            return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key '%s'[%u] = %lld is out of range [%lld, %lld]", k,
                           i, (long long)vals[i], (long long)lo, (long long)hi);
    return G4_OK;
}

static const gguf_tensor *find_tensor(loadctx *L, const char *name, bool required, g4_status *st)
{
    const gguf_tensor *t = gguf_find_tensor(L->m->gguf, name);
    if (!t && required) *st = g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "missing tensor '%s'", name);
    return t;
}

static g4_status bind_mat(loadctx *L, const char *name, bool required, int64_t cols, int64_t rows, g4_mat *out)
{
    g4_status st = G4_OK;
    memset(out, 0, sizeof *out);
    const gguf_tensor *t = find_tensor(L, name, required, &st);
    if (!t) return st;
    const g4_type_traits *tr = g4_type_get(t->type);
    if (!tr || !tr->supported)
        return g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED, "tensor '%s': type %s (id %u) is not supported yet",
                       name, tr ? tr->name : "unknown", t->type);
    if (t->n_dims != 2 || (int64_t)t->ne[0] != cols || (int64_t)t->ne[1] != rows)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT,
                       "tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%lld, %lld]", name,
                       (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                       (unsigned long long)t->ne[3], (long long)cols, (long long)rows);
    uint64_t rb;
    if (!g4_row_size(t->type, (uint64_t)cols, &rb))
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "tensor '%s': row of %lld is not a whole number of %s blocks",
                       name, (long long)cols, tr->name);
    out->type = t->type;
    out->data = t->data;
    out->rows = rows;
    out->cols = cols;
    out->row_bytes = rb;
    return G4_OK;
}

/* A vector tensor of n elements, converted to a new f32 array. */
static g4_status bind_vec(loadctx *L, const char *name, bool required, int64_t n, float **out)
{
    g4_status st = G4_OK;
    *out = NULL;
    const gguf_tensor *t = find_tensor(L, name, required, &st);
    if (!t) return st;
    const g4_type_traits *tr = g4_type_get(t->type);
    if (!tr || !tr->supported)
        return g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED, "tensor '%s': type %s (id %u) is not supported yet",
                       name, tr ? tr->name : "unknown", t->type);
    if ((int64_t)t->n_elements != n || t->ne[0] != (uint64_t)n)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "tensor '%s' has %llu elements, expected %lld", name,
                       (unsigned long long)t->n_elements, (long long)n);
    float *v = malloc(sizeof(float) * (size_t)n);
    if (!v) return g4_fail(L->err, L->errlen, G4_ERR_NOMEM, "out of memory reading '%s'", name);
    g4_dequantize_row(t->type, t->data, v, n);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            free(v);
            return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "tensor '%s' element %lld is not finite", name, (long long)i);
        }
    *out = v;
    return G4_OK;
}

static g4_status read_file(const char *path, void **buf, size_t *size, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return g4_fail(err, errlen, G4_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    if (fseeko(fp, 0, SEEK_END) != 0) { fclose(fp); return g4_fail(err, errlen, G4_ERR_IO, "cannot seek '%s'", path); }
    off_t sz = ftello(fp);
    rewind(fp);
    if (sz < 0 || (uint64_t)sz > SIZE_MAX) { fclose(fp); return g4_fail(err, errlen, G4_ERR_IO, "cannot size '%s'", path); }
    void *b = malloc(sz ? (size_t)sz : 1);
    if (!b) { fclose(fp); return g4_fail(err, errlen, G4_ERR_NOMEM, "cannot allocate %lld bytes for '%s'", (long long)sz, path); }
    if (fread(b, 1, (size_t)sz, fp) != (size_t)sz) {
        free(b);
        fclose(fp);
        return g4_fail(err, errlen, G4_ERR_IO, "short read on '%s'", path);
    }
    fclose(fp);
    *buf = b;
    *size = (size_t)sz;
    return G4_OK;
}

static g4_status load_hparams(loadctx *L)
{
    g4_model *m = L->m;
    g4_status st;
    gguf_str s;
    if (gguf_get_str(m->gguf, "general.architecture", &s) != 0)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "missing required key 'general.architecture'");
    if (s.len >= sizeof m->arch) s.len = sizeof m->arch - 1;
    memcpy(m->arch, s.ptr, s.len);
    m->arch[s.len] = 0;
    if (strcmp(m->arch, "gemma4") != 0) {
        if (strcmp(m->arch, "gemma4-assistant") == 0)
            return g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED,
                           "this is a gemma4-assistant MTP drafter, not a model: load the target model (drafting is not supported yet)");
        return g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED, "architecture '%s' is not supported (only gemma4)", m->arch);
    }
    if (gguf_get_str(m->gguf, "general.name", &s) == 0) {
        size_t n = s.len < sizeof m->name - 1 ? (size_t)s.len : sizeof m->name - 1;
        memcpy(m->name, s.ptr, n);
        m->name[n] = 0;
    }

    if ((st = get_u32(L, "block_count", true, 0, 1, MAX_LAYERS, &m->n_layer))) return st;
    if ((st = get_u32(L, "embedding_length", true, 0, 1, MAX_DIM, &m->n_embd))) return st;
    if ((st = get_u32(L, "context_length", false, 131072, 1, 1u << 30, &m->n_ctx_train))) return st;
    uint32_t v;
    if ((st = get_u32(L, "embedding_length_per_layer_input", false, 0, 0, MAX_DIM, &v))) return st;
    if (v != 0) return g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED, "not supported yet: per-layer embeddings (E2B/E4B)");
    if ((st = get_u32(L, "attention.shared_kv_layers", false, 0, 0, MAX_LAYERS, &v))) return st;
    if (v != 0) return g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED, "not supported yet: KV sharing between layers (E2B/E4B)");
    if ((st = get_u32(L, "expert_count", false, 0, 0, 1u << 20, &v))) return st;
    if (v != 0) return g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED, "not supported yet: mixture of experts (26B-A4B)");

    uint32_t nl = m->n_layer;
    int64_t *tmp = calloc(nl, sizeof *tmp);
    int64_t *swa = calloc(nl, sizeof *swa);
    if (!tmp || !swa) { free(tmp); free(swa); return g4_fail(L->err, L->errlen, G4_ERR_NOMEM, "out of memory"); }

    if ((st = get_per_layer(L, "feed_forward_length", true, 0, 1, MAX_DIM * 8LL, tmp))) goto out;
    m->n_ff = (uint32_t)tmp[0];
    for (uint32_t i = 1; i < nl; i++)
        if (tmp[i] != tmp[0]) { st = g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED, "not supported yet: per-layer FFN widths (double-wide MLP, E2B)"); goto out; }
    if ((st = get_per_layer(L, "attention.head_count", true, 0, 1, MAX_HEADS, tmp))) goto out;
    m->n_head = (uint32_t)tmp[0];
    for (uint32_t i = 1; i < nl; i++)
        if (tmp[i] != tmp[0]) { st = g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED, "not supported yet: per-layer query head counts"); goto out; }
    if ((st = get_per_layer(L, "attention.sliding_window_pattern", true, 0, 0, 1, swa))) goto out;

    uint32_t kl, vl, kls, vls;
    if ((st = get_u32(L, "attention.key_length", true, 0, 2, 1u << 16, &kl))) goto out;
    if ((st = get_u32(L, "attention.value_length", false, kl, 2, 1u << 16, &vl))) goto out;
    if ((st = get_u32(L, "attention.key_length_swa", false, kl, 2, 1u << 16, &kls))) goto out;
    if ((st = get_u32(L, "attention.value_length_swa", false, kls, 2, 1u << 16, &vls))) goto out;
    if (kl != vl || kls != vls) {
        st = g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED, "key_length and value_length differ (%u/%u, swa %u/%u)", kl, vl, kls, vls);
        goto out;
    }
    if (kl % 2 || kls % 2) { st = g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "head dimensions must be even (key_length %u, key_length_swa %u)", kl, kls); goto out; }
    m->head_dim_global = kl;
    m->head_dim_swa = kls;
    if ((st = get_u32(L, "rope.dimension_count", false, kl, 2, kl, &m->n_rot_global))) goto out;
    if ((st = get_u32(L, "rope.dimension_count_swa", false, kls, 2, kls, &m->n_rot_swa))) goto out;
    if (m->n_rot_global % 2 || m->n_rot_swa % 2) { st = g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "rope dimension counts must be even"); goto out; }
    if ((st = get_f32(L, "rope.freq_base", false, 1000000.0f, &m->rope_base_global))) goto out;
    if ((st = get_f32(L, "rope.freq_base_swa", false, 10000.0f, &m->rope_base_swa))) goto out;
    if (m->rope_base_global <= 1.0f || m->rope_base_swa <= 1.0f) { st = g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "rope.freq_base must be > 1"); goto out; }
    /* No Gemma 4 release scales RoPE; a file that asks for it must not be
     * run silently without it. */
    {
        float factor;
        gguf_str type;
        if ((st = get_f32(L, "rope.scaling.factor", false, 1.0f, &factor))) goto out;
        bool typed = gguf_get_str(m->gguf, akey(L, "rope.scaling.type"), &type) == 0 &&
                     !(type.len == 4 && memcmp(type.ptr, "none", 4) == 0) && type.len > 0;
        if (typed || (factor != 1.0f && factor != 0.0f)) {
            st = g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED, "not supported yet: RoPE scaling (%s, factor %g)",
                         typed ? "rope.scaling.type set" : "rope.scaling.factor", factor);
            goto out;
        }
    }
    if ((st = get_f32(L, "attention.layer_norm_rms_epsilon", true, 0, &m->rms_eps))) goto out;
    if (!(m->rms_eps > 0.0f && m->rms_eps < 1.0f)) { st = g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "attention.layer_norm_rms_epsilon = %g is out of range (0, 1)", m->rms_eps); goto out; }
    /* llama.cpp uses 30 when the key is absent; 0 switches the softcap off. */
    if ((st = get_f32(L, "final_logit_softcapping", false, 30.0f, &m->final_logit_softcap))) goto out;
    if (m->final_logit_softcap < 0.0f) { st = g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "final_logit_softcapping must be >= 0"); goto out; }

    bool any_sliding = false;
    for (uint32_t i = 0; i < nl; i++) any_sliding |= swa[i] != 0;
    if ((st = get_u32(L, "attention.sliding_window", any_sliding, 0, any_sliding ? 1 : 0, 1u << 30, &m->sliding_window))) goto out;

    if ((st = get_per_layer(L, "attention.head_count_kv", true, 0, 1, MAX_HEADS, tmp))) goto out;
    m->layers = calloc(nl, sizeof *m->layers);
    if (!m->layers) { st = g4_fail(L->err, L->errlen, G4_ERR_NOMEM, "out of memory"); goto out; }
    for (uint32_t i = 0; i < nl; i++) {
        g4_layer *ly = &m->layers[i];
        ly->sliding = swa[i] != 0;
        ly->head_dim = ly->sliding ? kls : kl;
        ly->n_rot = ly->sliding ? m->n_rot_swa : m->n_rot_global;
        ly->rope_base = ly->sliding ? m->rope_base_swa : m->rope_base_global;
        ly->n_kv_head = (uint32_t)tmp[i];
        if (m->n_head % ly->n_kv_head != 0) {
            st = g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "layer %u: head_count %u is not a multiple of head_count_kv %u",
                         i, m->n_head, ly->n_kv_head);
            goto out;
        }
    }
out:
    free(tmp);
    free(swa);
    return st;
}

static g4_status load_tensors(loadctx *L)
{
    g4_model *m = L->m;
    g4_status st;
    char name[96];
    const gguf_tensor *te = gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!te) return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "missing tensor 'token_embd.weight'");
    if (te->n_dims != 2 || te->ne[1] < 1 || te->ne[1] > (1u << 24))
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "tensor 'token_embd.weight' has an invalid shape");
    m->n_vocab = (uint32_t)te->ne[1];
    if ((st = bind_mat(L, "token_embd.weight", true, m->n_embd, m->n_vocab, &m->token_embd))) return st;
    const gguf_kv *toks = gguf_find_kv(m->gguf, "tokenizer.ggml.tokens");
    if (toks && toks->n != m->n_vocab)
        return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "tokenizer.ggml.tokens has %llu entries but token_embd has %u rows",
                       (unsigned long long)toks->n, m->n_vocab);
    if ((st = bind_mat(L, "output.weight", false, m->n_embd, m->n_vocab, &m->output))) return st;
    if (!m->output.data) m->output = m->token_embd; /* tied LM head */
    if ((st = bind_vec(L, "output_norm.weight", true, m->n_embd, &m->output_norm))) return st;
    if ((st = bind_vec(L, "rope_freqs.weight", false, m->n_rot_global / 2, &m->rope_freqs))) return st;
    if (m->rope_freqs)
        for (uint32_t i = 0; i < m->n_rot_global / 2; i++)
            if (!(m->rope_freqs[i] > 0.0f))
                return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "tensor 'rope_freqs.weight' element %u is not positive", i);

    for (uint32_t l = 0; l < m->n_layer; l++) {
        g4_layer *ly = &m->layers[l];
        int64_t H = m->n_embd, hd = ly->head_dim;
        int64_t qdim = (int64_t)m->n_head * hd, kvdim = (int64_t)ly->n_kv_head * hd;
#define T(n) (snprintf(name, sizeof name, "blk.%u." n ".weight", l), name)
        if ((st = bind_mat(L, T("attn_q"), true, H, qdim, &ly->attn_q))) return st;
        if (gguf_find_tensor(m->gguf, T("attn_qkv")))
            return g4_fail(L->err, L->errlen, G4_ERR_UNSUPPORTED, "not supported yet: fused attn_qkv tensor (%s)", name);
        if ((st = bind_mat(L, T("attn_k"), true, H, kvdim, &ly->attn_k))) return st;
        if ((st = bind_mat(L, T("attn_v"), false, H, kvdim, &ly->attn_v))) return st;
        ly->k_eq_v = ly->attn_v.data == NULL;
        if ((st = bind_mat(L, T("attn_output"), true, qdim, H, &ly->attn_output))) return st;
        if ((st = bind_mat(L, T("ffn_gate"), true, H, m->n_ff, &ly->ffn_gate))) return st;
        if ((st = bind_mat(L, T("ffn_up"), true, H, m->n_ff, &ly->ffn_up))) return st;
        if ((st = bind_mat(L, T("ffn_down"), true, m->n_ff, H, &ly->ffn_down))) return st;
        if ((st = bind_vec(L, T("attn_norm"), true, H, &ly->attn_norm))) return st;
        if ((st = bind_vec(L, T("attn_q_norm"), true, hd, &ly->attn_q_norm))) return st;
        if ((st = bind_vec(L, T("attn_k_norm"), true, hd, &ly->attn_k_norm))) return st;
        if ((st = bind_vec(L, T("post_attention_norm"), true, H, &ly->post_attention_norm))) return st;
        if ((st = bind_vec(L, T("ffn_norm"), true, H, &ly->ffn_norm))) return st;
        if ((st = bind_vec(L, T("post_ffw_norm"), true, H, &ly->post_ffw_norm))) return st;
        float *scale = NULL;
        if ((st = bind_vec(L, T("layer_output_scale"), false, 1, &scale))) return st;
        ly->layer_output_scale = scale ? scale[0] : 1.0f;
        free(scale);
#undef T
        if ((uint32_t)hd > m->max_head_dim) m->max_head_dim = (uint32_t)hd;
        if ((uint32_t)qdim > m->max_q_dim) m->max_q_dim = (uint32_t)qdim;
        if ((uint32_t)kvdim > m->max_kv_dim) m->max_kv_dim = (uint32_t)kvdim;
    }

    const gguf_kv *sup = gguf_find_kv(m->gguf, "tokenizer.ggml.suppress_tokens");
    if (sup) {
        if (sup->type != GGUF_VT_ARRAY || !gguf_vtype_is_int(sup->arr_type) || sup->n > m->n_vocab)
            return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "key 'tokenizer.ggml.suppress_tokens' must be an integer array of at most n_vocab entries");
        m->suppress_tokens = malloc(sizeof(int32_t) * (sup->n ? sup->n : 1));
        if (!m->suppress_tokens) return g4_fail(L->err, L->errlen, G4_ERR_NOMEM, "out of memory");
        for (uint64_t i = 0; i < sup->n; i++) {
            int64_t id = gguf_arr_int(sup, i);
            if (id < 0 || id >= m->n_vocab)
                return g4_fail(L->err, L->errlen, G4_ERR_FORMAT, "tokenizer.ggml.suppress_tokens[%llu] = %lld is not a token id",
                               (unsigned long long)i, (long long)id);
            m->suppress_tokens[m->n_suppress++] = (int32_t)id;
        }
    }

    for (uint64_t i = 0; i < gguf_n_tensors(m->gguf); i++) {
        const gguf_tensor *t = gguf_tensor_at(m->gguf, i);
        m->n_params += t->n_elements;
        m->weight_bytes += t->nbytes;
    }
    return G4_OK;
}

g4_model_params g4_model_default_params(void)
{
    g4_model_params p = { .use_mmap = true, .n_threads = 0 };
    return p;
}

g4_status g4_model_load(const char *path, const g4_model_params *params, g4_model **out, char *err, size_t errlen)
{
    g4_model_params p = params ? *params : g4_model_default_params();
    if (!path || !out) return g4_fail(err, errlen, G4_ERR_INVALID, "g4_model_load: path and out are required");
    *out = NULL;
    g4_model *m = calloc(1, sizeof *m);
    if (!m) return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory");
    g4_status st;
    char gerr[512];
    int r;
    if (p.use_mmap) {
        r = gguf_open(path, &m->gguf, gerr, sizeof gerr);
    } else {
        size_t size = 0;
        if ((st = read_file(path, &m->file_copy, &size, err, errlen))) { free(m); return st; }
        r = gguf_open_memory(m->file_copy, size, &m->gguf, gerr, sizeof gerr);
    }
    if (r != 0) {
        st = g4_fail(err, errlen, strncmp(gerr, "cannot open", 11) == 0 ? G4_ERR_IO : G4_ERR_FORMAT, "%s", gerr);
        g4_model_free(m);
        return st;
    }
    loadctx L = { .m = m, .err = err, .errlen = errlen };
    if ((st = load_hparams(&L)) || (st = load_tensors(&L))) {
        g4_model_free(m);
        return st;
    }
    if (!(m->tok = g4_tokenizer_load(m->gguf))) { g4_model_free(m); return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory"); }
    g4_gelu_init();
    m->embd_scale = sqrtf((float)m->n_embd);
    m->n_threads = p.n_threads > 0 ? p.n_threads : g4_cpu_cores();
    m->pool = g4_pool_new(m->n_threads);
    if (!m->pool) { g4_model_free(m); return g4_fail(err, errlen, G4_ERR_NOMEM, "cannot start %d threads", p.n_threads); }
    *out = m;
    return G4_OK;
}

void g4_model_free(g4_model *m)
{
    if (!m) return;
    if (m->layers) {
        for (uint32_t l = 0; l < m->n_layer; l++) {
            g4_layer *ly = &m->layers[l];
            free(ly->attn_norm); free(ly->attn_q_norm); free(ly->attn_k_norm);
            free(ly->post_attention_norm); free(ly->ffn_norm); free(ly->post_ffw_norm);
        }
        free(m->layers);
    }
    free(m->output_norm);
    free(m->rope_freqs);
    free(m->suppress_tokens);
    g4_tokenizer_free(m->tok);
    g4_pool_free(m->pool);
    gguf_close(m->gguf);
    free(m->file_copy);
    free(m);
}

void g4_model_get_info(const g4_model *m, g4_model_info *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->arch, sizeof o->arch, "%s", m->arch);
    snprintf(o->name, sizeof o->name, "%s", m->name);
    o->n_vocab = m->n_vocab; o->n_embd = m->n_embd; o->n_layer = m->n_layer;
    o->n_head = m->n_head; o->n_ff = m->n_ff; o->n_ctx_train = m->n_ctx_train;
    o->sliding_window = m->sliding_window;
    o->head_dim_swa = m->head_dim_swa; o->head_dim_global = m->head_dim_global;
    o->n_rot_swa = m->n_rot_swa; o->n_rot_global = m->n_rot_global;
    o->rope_base_swa = m->rope_base_swa; o->rope_base_global = m->rope_base_global;
    o->rms_eps = m->rms_eps; o->final_logit_softcap = m->final_logit_softcap;
    o->n_params = m->n_params; o->weight_bytes = m->weight_bytes;
}

bool g4_model_layer_is_sliding(const g4_model *m, uint32_t l) { return l < m->n_layer && m->layers[l].sliding; }
uint32_t g4_model_layer_n_kv_head(const g4_model *m, uint32_t l) { return l < m->n_layer ? m->layers[l].n_kv_head : 0; }

/* Slots of layer l's cache for a context of n_ctx positions and batches of n_batch. */
uint32_t g4_kv_slots(const g4_model *m, uint32_t l, uint32_t n_ctx, uint32_t n_batch)
{
    if (!m->layers[l].sliding) return n_ctx;
    uint64_t ring = (uint64_t)m->sliding_window + n_batch;
    return ring < n_ctx ? (uint32_t)ring : n_ctx;
}

uint64_t g4_model_kv_bytes(const g4_model *m, uint32_t n_ctx, g4_kv_type kv_type)
{
    uint64_t total = 0, elt = kv_type == G4_KV_F32 ? 4 : 2;
    for (uint32_t l = 0; l < m->n_layer; l++) {
        uint64_t row = (uint64_t)m->layers[l].n_kv_head * m->layers[l].head_dim;
        total += 2 * row * elt * g4_kv_slots(m, l, n_ctx, 512);
    }
    return total;
}

uint64_t g4_model_n_tensors(const g4_model *m) { return gguf_n_tensors(m->gguf); }

bool g4_model_tensor_info(const g4_model *m, uint64_t i, g4_tensor_info *o)
{
    const gguf_tensor *t = gguf_tensor_at(m->gguf, i);
    if (!t) return false;
    const g4_type_traits *tr = g4_type_get(t->type);
    o->name = t->name;
    o->type_name = tr ? tr->name : "?";
    o->type = t->type;
    o->n_dims = t->n_dims;
    for (int d = 0; d < 4; d++) o->ne[d] = t->ne[d];
    o->n_elements = t->n_elements;
    o->nbytes = t->nbytes;
    return true;
}
