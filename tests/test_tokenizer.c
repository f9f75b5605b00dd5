/*
 * test_tokenizer.c - the Gemma 4 tokenizer on a small synthetic vocabulary
 * with hand-computed expectations (merge order, byte fallback, newline runs,
 * special tokens on/off, BOS once, empty string, invalid UTF-8, streaming
 * detokenizer), plus models without / with an unsupported tokenizer.
 *
 * The model files are a tiny random-weight Gemma 4 (g4_make_test_model)
 * whose tokenizer keys are replaced with the vocabulary below.
 *
 *   test_tokenizer [--bench]   (--bench: also print MB/s on this vocabulary)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gemma4.h"
#include "gguf/gguf.h"
#include "model/testmodel.h"
#include "testutil.h"

enum { NV = 1024, BYTE0 = 8 };
enum { T_NL = 264, T_NL2, T_SP, T_A, T_B, T_C, T_AB, T_BC, T_ABC, T_SPA, T_E_ACUTE, T_H, T_I, T_HI, T_SP2, T_FIRST_FREE };

static const char *const merges[] = {
    "a b", "b c", "ab c", "\xE2\x96\x81 a", "h i", "\xE2\x96\x81 \xE2\x96\x81", "\n \n",
};

/* mode: 0 = gemma4 tokenizer, 1 = no tokenizer keys, 2 = tokenizer.ggml.model "llama" */
static int write_model(const char *base, const char *path, int mode)
{
    char err[512];
    gguf_file *g;
    if (gguf_open(base, &g, err, sizeof err)) { fprintf(stderr, "%s\n", err); return -1; }
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < gguf_n_kv(g); i++) {
        const gguf_kv *kv = gguf_kv_at(g, i);
        if (!strncmp(kv->key, "tokenizer.", 10)) continue;
        gguf_w_raw(w, kv->key, kv->type, kv->arr_type, kv->n, kv->data);
    }
    static char names[NV][16];
    const char *tok[NV];
    int32_t type[NV];
    float score[NV];
    static const char *const fixed[] = { "<pad>", "<eos>", "<bos>", "<unk>", "<|turn>", "<turn|>", "<|channel>", "<|tool_response>" };
    static const int fixed_type[] = { 3, 3, 3, 2, 3, 3, 4, 4 };
    for (int i = 0; i < NV; i++) {
        score[i] = 0;
        type[i] = 1;
        if (i < 8) { tok[i] = fixed[i]; type[i] = fixed_type[i]; }
        else if (i < 8 + 256) { snprintf(names[i], sizeof names[i], "<0x%02X>", i - 8); tok[i] = names[i]; type[i] = 6; }
        else { snprintf(names[i], sizeof names[i], "<unused%d>", i); tok[i] = names[i]; }
    }
    tok[T_NL] = "\n"; tok[T_NL2] = "\n\n"; tok[T_SP] = "\xE2\x96\x81";
    tok[T_A] = "a"; tok[T_B] = "b"; tok[T_C] = "c"; tok[T_AB] = "ab"; tok[T_BC] = "bc"; tok[T_ABC] = "abc";
    tok[T_SPA] = "\xE2\x96\x81" "a"; tok[T_E_ACUTE] = "\xC3\xA9"; tok[T_H] = "h"; tok[T_I] = "i"; tok[T_HI] = "hi";
    tok[T_SP2] = "\xE2\x96\x81\xE2\x96\x81";
    if (mode != 1) {
        gguf_w_str(w, "tokenizer.ggml.model", mode == 2 ? "llama" : "gemma4");
        gguf_w_arr_str(w, "tokenizer.ggml.tokens", tok, NV);
        gguf_w_arr_f32(w, "tokenizer.ggml.scores", score, NV);
        gguf_w_arr_i32(w, "tokenizer.ggml.token_type", type, NV);
        if (mode == 0) gguf_w_arr_str(w, "tokenizer.ggml.merges", merges, sizeof merges / sizeof merges[0]);
        gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 2);
        gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 1);
        gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", 3);
        gguf_w_u32(w, "tokenizer.ggml.padding_token_id", 0);
        gguf_w_bool(w, "tokenizer.ggml.add_bos_token", true);
        gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", false);
    }
    for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        if (gguf_w_tensor(w, t->name, t->type, t->n_dims, t->ne, err, sizeof err)) goto fail;
    }
    if (gguf_w_begin(w, path, err, sizeof err)) goto fail;
    for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        if (gguf_w_data(w, t->data, (size_t)t->nbytes, err, sizeof err) || gguf_w_end_tensor(w, err, sizeof err)) goto fail;
    }
    if (gguf_w_finish(w, err, sizeof err)) goto fail;
    gguf_writer_free(w);
    gguf_close(g);
    return 0;
fail:
    fprintf(stderr, "%s\n", err);
    gguf_writer_free(w);
    gguf_close(g);
    return -1;
}

static g4_model *M;

/* Tokenizes s and compares with the expected ids (terminated by -1). */
static void expect(const char *s, bool bos, bool special, const int32_t *want, int line)
{
    int32_t got[256];
    size_t n = 0, nw = 0;
    char err[256] = "";
    while (want[nw] >= 0) nw++;
    g4_status st = g4_tokenize(M, s, strlen(s), bos, special, got, 256, &n, err, sizeof err);
    bool ok = st == G4_OK && n == nw && (n == 0 || memcmp(got, want, n * sizeof *got) == 0);
    if (!ok) {
        fprintf(stderr, "line %d: tokenize(\"%s\", bos=%d, special=%d): status %d %s; got", line, s, bos, special, st, err);
        for (size_t i = 0; i < n && i < 256; i++) fprintf(stderr, " %d", got[i]);
        fprintf(stderr, "; want");
        for (size_t i = 0; i < nw; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
    }
    CHECK(ok);
}
#define EXPECT(s, bos, sp, ...) expect(s, bos, sp, (const int32_t[]){ __VA_ARGS__, -1 }, __LINE__)
#define EXPECT_NONE(s, bos, sp) expect(s, bos, sp, (const int32_t[]){ -1 }, __LINE__)
#define BY(c) (BYTE0 + (c))

static void test_encode(void)
{
    /* merge order: ab (rank 0) before bc (rank 1), then ab+c (rank 2) */
    EXPECT("abc", false, true, T_ABC);
    EXPECT("bcab", false, true, T_BC, T_AB);
    EXPECT("cab", false, true, T_C, T_AB);
    EXPECT("abcabc", false, true, T_ABC, T_ABC);
    /* spaces -> U+2581, no dummy prefix; equal ranks: leftmost pair first */
    EXPECT("a", false, true, T_A);
    EXPECT(" a", false, true, T_SPA);
    EXPECT("a a", false, true, T_A, T_SPA);
    EXPECT("  ", false, true, T_SP2);
    EXPECT("   ", false, true, T_SP2, T_SP);
    EXPECT("hi", false, true, T_HI);
    /* byte fallback: a code point with no token -> its UTF-8 bytes */
    EXPECT("\xC3\xA9", false, true, T_E_ACUTE);
    EXPECT("\xC3\xBC", false, true, BY(0xC3), BY(0xBC));
    EXPECT("\xE2\x82\xAC" "a", false, true, BY(0xE2), BY(0x82), BY(0xAC), T_A);
    EXPECT("x", false, true, BY('x'));
    EXPECT("\xF0\x9F\x98\x80", false, true, BY(0xF0), BY(0x9F), BY(0x98), BY(0x80));
    /* newline runs */
    EXPECT("\n", false, true, T_NL);
    EXPECT("\n\n", false, true, T_NL2);
    EXPECT("\n\n\n", false, true, T_NL2, T_NL);
    EXPECT("a\nb", false, true, T_A, T_NL, T_B);
    EXPECT("ab\n\n c", false, true, T_AB, T_NL2, T_SP, T_C);
    /* specials: CONTROL only with parse_special; USER_DEFINED always; EOG ones as CONTROL */
    EXPECT("<|turn>hi<turn|>", false, true, 4, T_HI, 5);
    EXPECT("<|turn>", false, false, BY('<'), BY('|'), BY('t'), BY('u'), BY('r'), BY('n'), BY('>'));
    EXPECT("<|channel>a", false, false, 6, T_A);
    EXPECT("<|channel>a", false, true, 6, T_A);
    EXPECT("<|tool_response>", false, true, 7);
    EXPECT("<|tool_response>", false, false, BY('<'), BY('|'), BY('t'), BY('o'), BY('o'), BY('l'), BY('_'), BY('r'),
           BY('e'), BY('s'), BY('p'), BY('o'), BY('n'), BY('s'), BY('e'), BY('>'));
    EXPECT("<unk>", false, true, 3);
    EXPECT("a<eos>b", false, true, T_A, 1, T_B);
    EXPECT("<|turn><|turn>", false, true, 4, 4);
    /* BOS: exactly one */
    EXPECT("abc", true, true, 2, T_ABC);
    EXPECT("<bos>abc", true, true, 2, T_ABC);
    EXPECT("<bos>abc", false, true, 2, T_ABC);
    EXPECT("<bos>", true, false, 2, BY('<'), T_B, BY('o'), BY('s'), BY('>'));
    /* empty */
    EXPECT_NONE("", false, true);
    EXPECT("", true, true, 2);

    /* invalid UTF-8: refused with the byte offset */
    char err[256];
    int32_t ids[16];
    size_t n = 99;
    CHECK(g4_tokenize(M, "a\xC3", 2, false, true, ids, 16, &n, err, sizeof err) == G4_ERR_INVALID);
    CHECKF(strstr(err, "offset 1") != NULL, "%s", err);
    CHECK(g4_tokenize(M, "ab\xED\xA0\x80", 5, false, true, ids, 16, &n, err, sizeof err) == G4_ERR_INVALID);
    CHECKF(strstr(err, "offset 2") != NULL, "%s", err);
    CHECK(g4_tokenize(M, "\xC0\xAF", 2, false, true, ids, 16, &n, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_tokenize(M, "\xF5\x80\x80\x80", 4, false, true, ids, 16, &n, err, sizeof err) == G4_ERR_INVALID);
    /* a NUL byte is a valid character (byte fallback) */
    CHECK(g4_tokenize(M, "a\0b", 3, false, true, ids, 16, &n, err, sizeof err) == G4_OK && n == 3 && ids[1] == BY(0));
    /* capacity: the needed count comes back */
    n = 0;
    CHECK(g4_tokenize(M, "xyz", 3, true, true, ids, 2, &n, err, sizeof err) == G4_ERR_INVALID && n == 4);
    CHECK(g4_tokenize(M, "xyz", 3, true, true, NULL, 0, &n, err, sizeof err) == G4_ERR_INVALID && n == 4);
    /* a long single line: linear, no recursion */
    size_t big = 1 << 20;
    char *s = malloc(big + 1);
    int32_t *out = malloc((big + 1) * sizeof *out);
    for (size_t i = 0; i < big; i++) s[i] = "abc "[i % 4];
    CHECK(g4_tokenize(M, s, big, false, true, out, big + 1, &n, err, sizeof err) == G4_OK);
    /* "abc abc ...": ab (rank 0) beats ▁a (rank 3), so each word is abc, ▁ */
    CHECK(n == big / 2 && out[0] == T_ABC && out[1] == T_SP && out[2] == T_ABC && out[n - 1] == T_SP);
    free(s);
    free(out);
}

static void test_info(void)
{
    CHECK(g4_vocab_size(M) == NV);
    CHECK(g4_token_bos(M) == 2);
    CHECK(g4_token_eos(M) == 1);
    CHECK(g4_token_is_eog(M, 1));
    CHECK(g4_token_is_eog(M, 5));  /* <turn|> */
    CHECK(g4_token_is_eog(M, 7));  /* <|tool_response> */
    CHECK(!g4_token_is_eog(M, 2));
    CHECK(!g4_token_is_eog(M, 4));
    CHECK(!g4_token_is_eog(M, -1) && !g4_token_is_eog(M, NV));
    CHECK(g4_token_text(M, T_SPA) && !strcmp(g4_token_text(M, T_SPA), "\xE2\x96\x81" "a"));
    CHECK(g4_token_text(M, NV) == NULL);
    char buf[64];
    CHECK(g4_token_piece(M, T_SPA, false, buf, sizeof buf) == 2 && !memcmp(buf, " a", 2));
    CHECK(g4_token_piece(M, BY(0x41), false, buf, sizeof buf) == 1 && buf[0] == 'A');
    CHECK(g4_token_piece(M, 4, false, buf, sizeof buf) == 0);
    CHECK(g4_token_piece(M, 4, true, buf, sizeof buf) == 7 && !memcmp(buf, "<|turn>", 7));
    CHECK(g4_token_piece(M, 6, false, buf, sizeof buf) == 10 && !memcmp(buf, "<|channel>", 10));
    CHECK(g4_token_piece(M, 6, false, buf, 3) == 10); /* too small: length only */
    CHECK(g4_token_piece(M, -5, false, buf, sizeof buf) == -1);
    CHECK(g4_token_max_bytes(M) >= 16);
}

static void test_detok(void)
{
    char buf[64], acc[256];
    size_t n, a = 0;
    g4_detok *d = g4_detok_new(M, false);
    CHECK(d != NULL);
    if (!d) return;
    /* "€" split across three byte tokens: nothing until the last one */
    CHECK(g4_detok_push(d, BY(0xE2), buf, sizeof buf, &n) == G4_OK && n == 0);
    CHECK(g4_detok_push(d, BY(0x82), buf, sizeof buf, &n) == G4_OK && n == 0);
    CHECK(g4_detok_push(d, BY(0xAC), buf, sizeof buf, &n) == G4_OK && n == 3 && !memcmp(buf, "\xE2\x82\xAC", 3));
    /* U+2581 -> space; control silent; user-defined rendered */
    const int32_t seq[] = { T_H, T_I, T_SPA, 4, 6, T_NL, BY(0xC3), BY(0xA9) };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        CHECK(g4_detok_push(d, seq[i], buf, sizeof buf, &n) == G4_OK);
        memcpy(acc + a, buf, n);
        a += n;
    }
    CHECK(a == 17 && !memcmp(acc, "hi a<|channel>\n\xC3\xA9", 17));
    /* too small a buffer: needed size, state unchanged */
    CHECK(g4_detok_push(d, T_ABC, buf, 2, &n) == G4_ERR_INVALID && n == 3);
    CHECK(g4_detok_push(d, T_ABC, buf, 3, &n) == G4_OK && n == 3 && !memcmp(buf, "abc", 3));
    /* invalid continuation: U+FFFD then the byte afresh */
    CHECK(g4_detok_push(d, BY(0xE2), buf, sizeof buf, &n) == G4_OK && n == 0);
    CHECK(g4_detok_push(d, T_A, buf, sizeof buf, &n) == G4_OK && n == 4 && !memcmp(buf, "\xEF\xBF\xBD" "a", 4));
    CHECK(g4_detok_push(d, BY(0xFF), buf, sizeof buf, &n) == G4_OK && n == 3 && !memcmp(buf, "\xEF\xBF\xBD", 3));
    /* incomplete at the end: flush gives U+FFFD */
    CHECK(g4_detok_push(d, BY(0xF0), buf, sizeof buf, &n) == G4_OK && n == 0);
    CHECK(g4_detok_push(d, BY(0x9F), buf, sizeof buf, &n) == G4_OK && n == 0);
    CHECK(g4_detok_flush(d, buf, sizeof buf, &n) == G4_OK && n == 3 && !memcmp(buf, "\xEF\xBF\xBD", 3));
    CHECK(g4_detok_flush(d, buf, sizeof buf, &n) == G4_OK && n == 0);
    CHECK(g4_detok_push(d, -1, buf, sizeof buf, &n) == G4_ERR_INVALID);
    g4_detok_free(d);
    d = g4_detok_new(M, true);
    CHECK(d && g4_detok_push(d, 4, buf, sizeof buf, &n) == G4_OK && n == 7 && !memcmp(buf, "<|turn>", 7));
    g4_detok_free(d);
}

static void test_no_tokenizer(const char *path, const char *want_msg)
{
    char err[512];
    g4_model *m = NULL;
    CHECKF(g4_model_load(path, NULL, &m, err, sizeof err) == G4_OK, "%s", err);
    if (!m) return;
    int32_t ids[4];
    size_t n;
    err[0] = 0;
    CHECK(g4_tokenize(m, "a", 1, false, true, ids, 4, &n, err, sizeof err) == G4_ERR_UNSUPPORTED);
    CHECKF(strstr(err, want_msg) != NULL, "%s", err);
    CHECK(g4_vocab_size(m) == 0 && g4_detok_new(m, false) == NULL && g4_token_bos(m) == -1);
    g4_model_free(m);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    bool bench = argc > 1 && !strcmp(argv[1], "--bench");
    char dir[64], base[96], path[96], none[96], llama[96], err[512];
    snprintf(dir, sizeof dir, "/tmp/g4-test-tok-%d", (int)getpid());
    snprintf(base, sizeof base, "%s-base.gguf", dir);
    snprintf(path, sizeof path, "%s-vocab.gguf", dir);
    snprintf(none, sizeof none, "%s-none.gguf", dir);
    snprintf(llama, sizeof llama, "%s-llama.gguf", dir);
    g4_test_model_params p;
    g4_test_model_default_params(&p);
    p.n_vocab = NV;
    p.n_layer = 1;
    if (g4_make_test_model(&p, base, err, sizeof err) != 0 || write_model(base, path, 0) ||
        write_model(base, none, 1) || write_model(base, llama, 2)) {
        fprintf(stderr, "cannot write the test models: %s\n", err);
        return 1;
    }
    CHECKF(g4_model_load(path, NULL, &M, err, sizeof err) == G4_OK, "%s", err);
    if (M) {
        test_encode();
        test_info();
        test_detok();
        if (bench) {
            size_t len = 4 << 20;
            char *s = malloc(len);
            int32_t *ids = malloc((len + 1) * sizeof *ids);
            for (size_t i = 0; i < len; i++) s[i] = "abc hi\n\xC3\xA9xy "[i % 13];
            while (len && ((unsigned char)s[len - 1] & 0x80)) len--;
            size_t n;
            double t0 = now();
            CHECK(g4_tokenize(M, s, len, false, true, ids, len + 1, &n, err, sizeof err) == G4_OK);
            double t = now() - t0;
            printf("bench (synthetic vocabulary): %.1f MB in %.1f ms = %.1f MB/s, %zu tokens\n", len / 1e6, t * 1e3, len / 1e6 / t, n);
            free(s);
            free(ids);
        }
        g4_model_free(M);
    }
    test_no_tokenizer(none, "no tokenizer");
    test_no_tokenizer(llama, "not supported");
    remove(base); remove(path); remove(none); remove(llama);
    return tu_finish("test_tokenizer");
}
