/*
 * test_testmodel.c - make-test-model: generates several small models, reads
 * them back with our GGUF reader and checks metadata (values and value
 * types), tensor names/shapes/types, the tokenizer layout, determinism, the
 * quantized-type mixes and block-size fallbacks, and the CLI's error paths.
 *
 * The CLI source is compiled into this test (it is not part of the library)
 * so that option parsing can be tested without spawning the binary.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "kernels/quant.h"
#include "model/testmodel.h"
#include "testutil.h"

#include "cli/util.c"
#include "cli/cmd_make_test_model.c"

static char g_dir[256];

/* A path in the test's temporary folder; one slot per name (no reuse). */
static const char *tmp_path(const char *name)
{
    static char buf[32][512];
    static int k;
    if (k == 32) {
        fprintf(stderr, "tmp_path: too many paths\n");
        exit(1);
    }
    char *b = buf[k++];
    snprintf(b, 512, "%s/%s", g_dir, name);
    return b;
}

static bool kv_is(const gguf_file *f, const char *key, uint32_t type)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    return kv && kv->type == type;
}

static uint64_t get_u(const gguf_file *f, const char *key)
{
    uint64_t v = 0;
    CHECKF(kv_is(f, key, GGUF_VT_UINT32), "%s not u32", key);
    CHECKF(gguf_get_uint(f, key, &v) == 0, "%s", key);
    return v;
}

static double get_f(const gguf_file *f, const char *key)
{
    double v = 0;
    CHECKF(kv_is(f, key, GGUF_VT_FLOAT32), "%s not f32", key);
    CHECKF(gguf_get_float(f, key, &v) == 0, "%s", key);
    return v;
}

static bool str_eq(gguf_str s, const char *c)
{
    return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0;
}

static const gguf_tensor *tensor(const gguf_file *f, const char *name, uint32_t type,
                                 uint64_t ne0, uint64_t ne1)
{
    const gguf_tensor *t = gguf_find_tensor(f, name);
    CHECKF(t != NULL, "missing tensor %s", name);
    if (!t)
        return NULL;
    CHECKF(t->type == type, "%s: type %u, want %u", name, t->type, type);
    CHECKF(t->ne[0] == ne0 && t->ne[1] == ne1, "%s: shape [%llu,%llu], want [%llu,%llu]", name,
           (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
           (unsigned long long)ne0, (unsigned long long)ne1);
    CHECKF(t->n_dims == (ne1 > 1 ? 2u : 1u), "%s: n_dims %u", name, t->n_dims);
    return t;
}

static int token_id(const gguf_kv *toks, const char *text)
{
    for (uint64_t i = 0; i < toks->n; i++)
        if (str_eq(gguf_arr_str(toks, i), text))
            return (int)i;
    return -1;
}

/* Full structural check of a file made from p. */
static void check_model(const char *path, const g4_test_model_params *p, bool check_merges)
{
    char err[512] = "";
    gguf_file *f = NULL;
    int rc = gguf_open(path, &f, err, sizeof err);
    CHECKF(rc == 0, "open %s: %s", path, err);
    if (rc)
        return;

    gguf_str s;
    CHECK(gguf_get_str(f, "general.architecture", &s) == 0 && str_eq(s, "gemma4"));
    CHECK(gguf_get_str(f, "general.name", &s) == 0 && s.len > 0);
    CHECK(kv_is(f, "general.file_type", GGUF_VT_UINT32));

    const uint32_t L = p->n_layer;
    CHECK(get_u(f, "gemma4.block_count") == L);
    CHECK(get_u(f, "gemma4.embedding_length") == p->n_embd);
    CHECK(get_u(f, "gemma4.context_length") == p->n_ctx_train);
    CHECK(get_u(f, "gemma4.feed_forward_length") == p->n_ff);
    CHECK(get_u(f, "gemma4.attention.head_count") == p->n_head);
    CHECK(get_u(f, "gemma4.attention.key_length") == p->head_dim_global);
    CHECK(get_u(f, "gemma4.attention.value_length") == p->head_dim_global);
    CHECK(get_u(f, "gemma4.attention.key_length_swa") == p->head_dim_swa);
    CHECK(get_u(f, "gemma4.attention.value_length_swa") == p->head_dim_swa);
    CHECK(get_u(f, "gemma4.attention.sliding_window") == p->sliding_window);
    CHECK(get_u(f, "gemma4.attention.shared_kv_layers") == 0);
    CHECK(get_u(f, "gemma4.embedding_length_per_layer_input") == 0);
    CHECK(get_u(f, "gemma4.rope.dimension_count") == p->head_dim_global);
    CHECK(get_u(f, "gemma4.rope.dimension_count_swa") == p->head_dim_swa);
    CHECK(get_u(f, "gemma4.vocab_size") == p->n_vocab);
    CHECK(fabs(get_f(f, "gemma4.rope.freq_base") - p->rope_base) < 1e-3 * p->rope_base);
    CHECK(fabs(get_f(f, "gemma4.rope.freq_base_swa") - p->rope_base_swa) < 1e-3 * p->rope_base_swa);
    CHECK(fabs(get_f(f, "gemma4.final_logit_softcapping") - p->softcap) < 1e-6);
    CHECK(fabs(get_f(f, "gemma4.attention.layer_norm_rms_epsilon") - 1e-6) < 1e-9);

    const gguf_kv *pat = gguf_find_kv(f, "gemma4.attention.sliding_window_pattern");
    const gguf_kv *kvh = gguf_find_kv(f, "gemma4.attention.head_count_kv");
    CHECK(pat && pat->type == GGUF_VT_ARRAY && pat->arr_type == GGUF_VT_BOOL && pat->n == L);
    CHECK(kvh && kvh->type == GGUF_VT_ARRAY && kvh->arr_type == GGUF_VT_INT32 && kvh->n == L);
    if (!pat || !kvh || pat->n != L || kvh->n != L) {
        gguf_close(f);
        return;
    }
    CHECK(gguf_arr_int(pat, L - 1) == 0); /* last layer global */

    /* tokenizer */
    CHECK(gguf_get_str(f, "tokenizer.ggml.model", &s) == 0 && str_eq(s, "gemma4"));
    const gguf_kv *toks = gguf_find_kv(f, "tokenizer.ggml.tokens");
    const gguf_kv *types = gguf_find_kv(f, "tokenizer.ggml.token_type");
    const gguf_kv *scores = gguf_find_kv(f, "tokenizer.ggml.scores");
    const gguf_kv *merges = gguf_find_kv(f, "tokenizer.ggml.merges");
    CHECK(toks && toks->arr_type == GGUF_VT_STRING && toks->n == p->n_vocab);
    CHECK(types && types->arr_type == GGUF_VT_INT32 && types->n == p->n_vocab);
    CHECK(scores && scores->arr_type == GGUF_VT_FLOAT32 && scores->n == p->n_vocab);
    CHECK(merges && merges->arr_type == GGUF_VT_STRING && merges->n >= 16);
    CHECK(get_u(f, "tokenizer.ggml.bos_token_id") == 2);
    CHECK(get_u(f, "tokenizer.ggml.eos_token_id") == 1);
    CHECK(get_u(f, "tokenizer.ggml.unknown_token_id") == 3);
    CHECK(get_u(f, "tokenizer.ggml.padding_token_id") == 0);
    CHECK(get_u(f, "tokenizer.ggml.mask_token_id") == 4);
    bool b = false;
    CHECK(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b) == 0 && b);
    CHECK(gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &b) == 0 && !b);
    if (toks && types && toks->n == p->n_vocab && types->n == p->n_vocab) {
        CHECK(str_eq(gguf_arr_str(toks, 0), "<pad>"));
        CHECK(str_eq(gguf_arr_str(toks, 1), "<eos>"));
        CHECK(str_eq(gguf_arr_str(toks, 2), "<bos>"));
        CHECK(str_eq(gguf_arr_str(toks, 3), "<unk>") && gguf_arr_int(types, 3) == 2);
        CHECK(str_eq(gguf_arr_str(toks, 4), "<mask>"));
        if (p->n_vocab >= 512) {
            CHECK(str_eq(gguf_arr_str(toks, 105), "<|turn>"));
            CHECK(str_eq(gguf_arr_str(toks, 106), "<turn|>"));
            CHECK(str_eq(gguf_arr_str(toks, 98), "<|think|>"));
            CHECK(str_eq(gguf_arr_str(toks, 100), "<|channel>"));
            CHECK(str_eq(gguf_arr_str(toks, 101), "<channel|>"));
            CHECK(str_eq(gguf_arr_str(toks, 50), "<|tool_response>"));
        } else {
            CHECK(str_eq(gguf_arr_str(toks, 5), "<|turn>"));
            CHECK(str_eq(gguf_arr_str(toks, 6), "<turn|>"));
        }
        if (p->n_vocab > 258884) {
            CHECK(str_eq(gguf_arr_str(toks, 255999), "<|image>"));
            CHECK(str_eq(gguf_arr_str(toks, 258882), "<image|>"));
            CHECK(str_eq(gguf_arr_str(toks, 258884), "<|video|>"));
        }
        int n_byte = 0;
        for (uint64_t i = 0; i < types->n; i++)
            n_byte += gguf_arr_int(types, i) == 6;
        CHECK(n_byte == 256);
        int b41 = token_id(toks, "<0x41>");
        CHECK(b41 >= 0 && gguf_arr_int(types, (uint64_t)b41) == 6);
        CHECK(token_id(toks, "\xe2\x96\x81") >= 0);
        CHECK(token_id(toks, "\n") >= 0 && token_id(toks, "\n\n") >= 0);
        CHECK(token_id(toks, "A") >= 0 && token_id(toks, "~") >= 0);
        /* all texts distinct, none empty */
        bool distinct = true;
        if (check_merges) {
            for (uint64_t i = 0; i < toks->n && distinct; i++) {
                gguf_str a = gguf_arr_str(toks, i);
                if (a.len == 0)
                    distinct = false;
                for (uint64_t j = i + 1; j < toks->n && distinct; j++) {
                    gguf_str c = gguf_arr_str(toks, j);
                    if (a.len == c.len && memcmp(a.ptr, c.ptr, a.len) == 0)
                        distinct = false;
                }
            }
            CHECK(distinct);
        }
        /* every merge "a b": a, b and ab are tokens */
        if (check_merges && merges) {
            int bad_merges = 0;
            for (uint64_t m = 0; m < merges->n; m++) {
                gguf_str ms = gguf_arr_str(merges, m);
                char buf[512];
                if (ms.len >= sizeof buf) {
                    bad_merges++;
                    continue;
                }
                memcpy(buf, ms.ptr, ms.len);
                buf[ms.len] = 0;
                char *sp = strchr(buf, ' ');
                if (!sp || sp == buf || !sp[1] || strchr(sp + 1, ' ')) {
                    bad_merges++;
                    continue;
                }
                *sp = 0;
                char joined[512];
                snprintf(joined, sizeof joined, "%s%s", buf, sp + 1);
                if (token_id(toks, buf) < 0 || token_id(toks, sp + 1) < 0 || token_id(toks, joined) < 0)
                    bad_merges++;
            }
            CHECKF(bad_merges == 0, "%d bad merges", bad_merges);
        }
    }

    /* tensors */
    uint64_t expect_n = 3;
    for (uint32_t l = 0; l < L; l++) {
        bool swa = gguf_arr_int(pat, l) != 0;
        CHECK(swa == g4_test_model_layer_is_swa(p, l));
        CHECK((uint64_t)gguf_arr_int(kvh, l) == (swa ? p->n_kv_head_swa : p->n_kv_head_global));
        expect_n += (swa || !p->k_eq_v) ? 14 : 13;
    }
    CHECKF(gguf_n_tensors(f) == expect_n, "%llu tensors, want %llu",
           (unsigned long long)gguf_n_tensors(f), (unsigned long long)expect_n);

    const uint64_t E = p->n_embd;
    const gguf_tensor *t;
    t = tensor(f, "token_embd.weight", g4_test_model_tensor_type(p, "token_embd.weight", E), E, p->n_vocab);
    t = tensor(f, "output_norm.weight", G4_TYPE_F32, E, 1);
    t = tensor(f, "rope_freqs.weight", G4_TYPE_F32, p->head_dim_global / 2, 1);
    if (t) {
        const float *fr = t->data;
        uint64_t n1 = 0;
        bool ok = true;
        for (uint64_t i = 0; i < t->ne[0]; i++) {
            if (fr[i] == 1.0f)
                n1++;
            else if (fr[i] != 1e30f)
                ok = false;
            if (i > 0 && fr[i] < fr[i - 1])
                ok = false;
        }
        CHECK(ok && n1 == p->head_dim_global / 8);
    }
    CHECK(gguf_find_tensor(f, "output.weight") == NULL);

    char nm[128];
    for (uint32_t l = 0; l < L; l++) {
        bool swa = g4_test_model_layer_is_swa(p, l);
        uint64_t D = swa ? p->head_dim_swa : p->head_dim_global;
        uint64_t KV = swa ? p->n_kv_head_swa : p->n_kv_head_global;
        uint64_t H = p->n_head;
#define T(suffix, ne0, ne1) (snprintf(nm, sizeof nm, "blk.%u." suffix, l), \
        tensor(f, nm, ((ne1) == 1 ? G4_TYPE_F32 : g4_test_model_tensor_type(p, nm, (ne0))), (ne0), (ne1)))
        T("attn_norm.weight", E, 1);
        T("attn_q.weight", E, H * D);
        T("attn_k.weight", E, KV * D);
        snprintf(nm, sizeof nm, "blk.%u.attn_v.weight", l);
        if (swa || !p->k_eq_v)
            T("attn_v.weight", E, KV * D);
        else
            CHECKF(gguf_find_tensor(f, nm) == NULL, "%s should be absent", nm);
        T("attn_output.weight", H * D, E);
        const gguf_tensor *qn = T("attn_q_norm.weight", D, 1);
        const gguf_tensor *kn = T("attn_k_norm.weight", D, 1);
        const gguf_tensor *an = T("post_attention_norm.weight", E, 1);
        T("ffn_norm.weight", E, 1);
        T("ffn_gate.weight", E, p->n_ff);
        T("ffn_up.weight", E, p->n_ff);
        T("ffn_down.weight", p->n_ff, E);
        T("post_ffw_norm.weight", E, 1);
        const gguf_tensor *ls = T("layer_output_scale.weight", 1, 1);
#undef T
        if (ls) {
            float v = *(const float *)ls->data;
            CHECKF(v >= 0.5f && v < 1.5f, "layer_output_scale %g", (double)v);
        }
        if (qn && kn && an) {
            double want = pow((double)D, -0.25), sq = 0, sk = 0, sa = 0;
            for (uint64_t i = 0; i < D; i++) {
                sq += ((const float *)qn->data)[i];
                sk += ((const float *)kn->data)[i];
            }
            for (uint64_t i = 0; i < E; i++)
                sa += ((const float *)an->data)[i];
            CHECK(fabs(sq / (double)D - want) < 0.05 * want);
            CHECK(fabs(sk / (double)D - want) < 0.05 * want);
            /* post norms are centred on 0.3 (see testmodel.c build_specs) */
            CHECKF(fabs(sa / (double)E - 0.3) < 0.015, "post_attention_norm mean %g", sa / (double)E);
        }
    }
    gguf_close(f);
}

static int make(const g4_test_model_params *p, const char *path)
{
    char err[512] = "";
    int rc = g4_make_test_model(p, path, err, sizeof err);
    CHECKF(rc == 0, "make %s: %s", path, err);
    return rc;
}

static bool files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool eq = fa && fb;
    while (eq) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb)
            eq = false;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return eq;
}

/* Reads matrix row 0 of a tensor as f32 (any supported type). */
static bool row0(const char *path, const char *name, float *out, uint64_t n)
{
    char err[256];
    gguf_file *f;
    if (gguf_open(path, &f, err, sizeof err))
        return false;
    const gguf_tensor *t = gguf_find_tensor(f, name);
    bool ok = t && t->ne[0] == n;
    if (ok)
        g4_dequantize_row(t->type, t->data, out, (int64_t)n);
    gguf_close(f);
    return ok;
}

static int run_cli(const char *args)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", args);
    char *argv[64];
    int argc = 0;
    for (char *tok = strtok(buf, " "); tok && argc < 63; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    argv[argc] = NULL;
    return g4_cmd_make_test_model(argc, argv);
}

int main(void)
{
    const char *td = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/g4-test-testmodel-XXXXXX", td && *td ? td : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }

    g4_test_model_params p;

    /* 1. tiny f32 */
    g4_test_model_default_params(&p);
    p.n_threads = 2;
    const char *a = tmp_path("tiny-f32.gguf");
    if (make(&p, a) == 0)
        check_model(a, &p, true);

    /* determinism: same params (other thread count) = same bytes; seed matters */
    p.n_threads = 1;
    const char *a2 = tmp_path("tiny-f32-again.gguf");
    if (make(&p, a2) == 0)
        CHECK(files_equal(a, a2));
    p.seed = 7;
    if (make(&p, a2) == 0)
        CHECK(!files_equal(a, a2));
    unlink(a2);

    /* weights are well-scaled: token_embd rows ~ N(0, 1/E) */
    {
        float r[256];
        if (row0(a, "token_embd.weight", r, 256)) {
            double ss = 0;
            for (int i = 0; i < 256; i++)
                ss += (double)r[i] * r[i];
            double var = ss / 256 * 256; /* times E: should be ~1 */
            CHECKF(var > 0.6 && var < 1.5, "embedding variance x E = %g", var);
        } else {
            CHECK(0);
        }
    }

    /* 2. quantized types: type of each tensor class */
    static const struct { const char *type; uint32_t q, attn_v, down, embd; uint32_t ftype; } qt[] = {
        { "f16", G4_TYPE_F16, G4_TYPE_F16, G4_TYPE_F16, G4_TYPE_F16, 1 },
        { "bf16", G4_TYPE_BF16, G4_TYPE_BF16, G4_TYPE_BF16, G4_TYPE_BF16, 32 },
        { "q8_0", G4_TYPE_Q8_0, G4_TYPE_Q8_0, G4_TYPE_Q8_0, G4_TYPE_Q8_0, 7 },
        { "q4_0", G4_TYPE_Q4_0, G4_TYPE_Q4_0, G4_TYPE_Q4_0, G4_TYPE_Q6_K, 2 },
        { "q4_k_m", G4_TYPE_Q4_K, G4_TYPE_Q6_K, G4_TYPE_Q6_K, G4_TYPE_Q6_K, 15 },
        { "q6_k", G4_TYPE_Q6_K, G4_TYPE_Q6_K, G4_TYPE_Q6_K, G4_TYPE_Q6_K, 18 },
    };
    float ref[256];
    bool have_ref = row0(a, "blk.0.ffn_up.weight", ref, 256);
    for (size_t i = 0; i < sizeof qt / sizeof qt[0]; i++) {
        g4_test_model_default_params(&p);
        p.type = (g4_tm_type)g4_tm_type_from_name(qt[i].type);
        char fname[64];
        snprintf(fname, sizeof fname, "tiny-%s.gguf", qt[i].type);
        const char *path = tmp_path(fname);
        if (make(&p, path))
            continue;
        check_model(path, &p, false);
        CHECKF(g4_test_model_tensor_type(&p, "blk.0.attn_q.weight", 256) == qt[i].q, "%s q", qt[i].type);
        CHECKF(g4_test_model_tensor_type(&p, "blk.0.attn_v.weight", 256) == qt[i].attn_v, "%s v", qt[i].type);
        CHECKF(g4_test_model_tensor_type(&p, "blk.0.ffn_down.weight", 512) == qt[i].down, "%s down", qt[i].type);
        CHECKF(g4_test_model_tensor_type(&p, "token_embd.weight", 256) == qt[i].embd, "%s embd", qt[i].type);
        gguf_file *f;
        char err[256];
        if (gguf_open(path, &f, err, sizeof err) == 0) {
            uint64_t ft = 99;
            gguf_get_uint(f, "general.file_type", &ft);
            CHECKF(ft == qt[i].ftype, "%s file_type %llu", qt[i].type, (unsigned long long)ft);
            gguf_close(f);
        }
        /* the same random numbers, quantized: close to the f32 row */
        float r[256];
        if (have_ref && row0(path, "blk.0.ffn_up.weight", r, 256)) {
            double num = 0, den = 0;
            for (int k = 0; k < 256; k++) {
                num += (double)(r[k] - ref[k]) * (r[k] - ref[k]);
                den += (double)ref[k] * ref[k];
            }
            CHECKF(num / den < 0.02, "%s: relative error %g", qt[i].type, num / den);
        }
        unlink(path);
    }

    /* --embd-type override */
    g4_test_model_default_params(&p);
    p.type = G4_TM_Q4_0;
    p.embd_type = G4_TM_Q8_0;
    CHECK(g4_test_model_tensor_type(&p, "token_embd.weight", 256) == G4_TYPE_Q8_0);
    CHECK(g4_test_model_tensor_type(&p, "blk.3.attn_q.weight", 256) == G4_TYPE_Q4_0);
    CHECK(g4_test_model_tensor_type(&p, "blk.3.ffn_norm.weight", 256) == G4_TYPE_F32);

    /* 3. block-size fallbacks, odd shapes, cut depth, K != V, packed vocab */
    g4_test_model_default_params(&p);
    p.type = G4_TM_Q4_K_M;
    p.n_embd = 96;            /* 96 % 256 != 0 -> Q8_0 */
    p.n_ff = 200;             /* ffn_down rows of 200 -> F16 */
    p.n_layer = 8;            /* globals at 5 and 7 */
    p.k_eq_v = false;
    p.n_vocab = 400;          /* packed specials */
    p.n_head = 2;
    p.n_kv_head_swa = 1;
    p.n_kv_head_global = 2;
    p.head_dim_swa = 48;
    p.head_dim_global = 80;
    CHECK(g4_test_model_tensor_type(&p, "blk.0.attn_q.weight", 96) == G4_TYPE_Q8_0);
    CHECK(g4_test_model_tensor_type(&p, "blk.0.ffn_down.weight", 200) == G4_TYPE_F16);
    CHECK(g4_test_model_tensor_type(&p, "blk.0.attn_output.weight", 96) == G4_TYPE_Q8_0);
    CHECK(g4_test_model_tensor_type(&p, "blk.0.attn_output.weight", 512) == G4_TYPE_Q4_K);
    CHECK(g4_test_model_layer_is_swa(&p, 4) && !g4_test_model_layer_is_swa(&p, 5) &&
          g4_test_model_layer_is_swa(&p, 6) && !g4_test_model_layer_is_swa(&p, 7));
    const char *c = tmp_path("odd.gguf");
    if (make(&p, c) == 0)
        check_model(c, &p, true);
    unlink(c);

    /* one layer: it is global */
    g4_test_model_default_params(&p);
    p.n_layer = 1;
    CHECK(!g4_test_model_layer_is_swa(&p, 0));
    c = tmp_path("one.gguf");
    if (make(&p, c) == 0)
        check_model(c, &p, true);
    unlink(c);

    /* presets: 12b/31b shapes (not written here: several GB) */
    g4_test_model_default_params(&p);
    CHECK(g4_test_model_preset(&p, "12b") == 0);
    CHECK(p.n_layer == 48 && p.n_embd == 3840 && p.n_head == 16 && p.n_kv_head_swa == 8 &&
          p.n_kv_head_global == 1 && p.head_dim_swa == 256 && p.head_dim_global == 512 &&
          p.n_ff == 15360 && p.sliding_window == 1024 && p.n_vocab == 262144 && p.n_ctx_train == 262144);
    {
        int n_global = 0;
        for (uint32_t l = 0; l < p.n_layer; l++)
            if (!g4_test_model_layer_is_swa(&p, l)) {
                n_global++;
                CHECK(l % 6 == 5);
            }
        CHECK(n_global == 8);
    }
    CHECK(g4_test_model_preset(&p, "31b") == 0);
    CHECK(p.n_layer == 60 && p.n_embd == 5376 && p.n_head == 32 && p.n_kv_head_swa == 16 &&
          p.n_kv_head_global == 4 && p.n_ff == 21504);
    CHECK(g4_test_model_preset(&p, "7b") == -1);

    /* 12b-like vocabulary and a cut-down 12b via the CLI (2 layers, tiny width) */
    c = tmp_path("bigvocab.gguf");
    {
        char cmd[768];
        snprintf(cmd, sizeof cmd,
                 "make-test-model --preset 12b --layers 2 --embd 64 --heads 2 --kv-heads 1 "
                 "--kv-heads-global 1 --head-dim 32 --head-dim-global 64 --ff 64 --type q4_0 "
                 "--embd-type q8_0 -q -o %s", c);
        CHECK(run_cli(cmd) == 0);
        g4_test_model_default_params(&p);
        g4_test_model_preset(&p, "12b");
        p.n_layer = 2; p.n_embd = 64; p.n_head = 2; p.n_kv_head_swa = 1; p.n_kv_head_global = 1;
        p.head_dim_swa = 32; p.head_dim_global = 64; p.n_ff = 64;
        p.type = G4_TM_Q4_0; p.embd_type = G4_TM_Q8_0;
        check_model(c, &p, false);
        unlink(c);
    }

    /* 4. CLI errors: exit status 2, nothing written */
    c = tmp_path("never.gguf");
    static const char *const bad_opts[] = {
        "--layers 0", "--layers abc", "--layers -3", "--layers 5x", "--head-dim 63",
        "--head-dim-global 65", "--window 0", "--vocab 100", "--vocab 0", "--type q5_z",
        "--embd-type x", "--kv-heads 3", "--kv-heads-global 0", "--heads 0", "--embd 0",
        "--ff 0", "--ctx 0", "--swa-period 0", "--softcap -1", "--softcap nan",
        "--rope-base 0", "--rope-base x", "--rope-base-swa -5", "--preset huge",
        "--seed -1", "--bogus", "--embd", "--threads 0",
    };
    for (size_t i = 0; i < sizeof bad_opts / sizeof bad_opts[0]; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "make-test-model -o %s %s", c, bad_opts[i]);
        int rc = run_cli(cmd);
        CHECKF(rc == 2, "'%s' gave %d", bad_opts[i], rc);
        CHECKF(access(c, F_OK) != 0, "'%s' wrote a file", bad_opts[i]);
    }
    CHECK(run_cli("make-test-model --layers 2") == 2); /* no -o */
    CHECK(run_cli("make-test-model -o") == 2);

    /* library-level validation names the option */
    {
        char err[256] = "";
        g4_test_model_default_params(&p);
        p.head_dim_swa = 7;
        CHECK(g4_test_model_validate(&p, err, sizeof err) == -1 && strstr(err, "--head-dim"));
        g4_test_model_default_params(&p);
        p.n_vocab = 10;
        CHECK(g4_test_model_validate(&p, err, sizeof err) == -1 && strstr(err, "--vocab"));
        CHECK(g4_make_test_model(&p, c, err, sizeof err) == -1 && access(c, F_OK) != 0);
        g4_test_model_default_params(&p);
        CHECK(g4_test_model_validate(&p, err, sizeof err) == 0);
        CHECK(g4_test_model_min_vocab() <= 400);
        /* unwritable path: clean error */
        CHECK(g4_make_test_model(&p, "/nonexistent-dir/x.gguf", err, sizeof err) == -1 && err[0]);
    }

    /* CLI success path with options in any order (preset applied first) */
    c = tmp_path("cli.gguf");
    {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "make-test-model --layers 3 -o %s --preset tiny --seed 3 "
                 "--name hello -q --softcap 0 --rope-base 500000 --window 8 --ctx 128", c);
        CHECK(run_cli(cmd) == 0);
        g4_test_model_default_params(&p);
        p.n_layer = 3;
        p.softcap = 0;
        p.rope_base = 500000;
        p.sliding_window = 8;
        p.n_ctx_train = 128;
        check_model(c, &p, false);
        gguf_file *f;
        char err[256];
        if (gguf_open(c, &f, err, sizeof err) == 0) {
            gguf_str s;
            CHECK(gguf_get_str(f, "general.name", &s) == 0 && str_eq(s, "hello"));
            gguf_close(f);
        }
        unlink(c);
    }

    unlink(a);
    rmdir(g_dir);
    return tu_finish("test_testmodel");
}
