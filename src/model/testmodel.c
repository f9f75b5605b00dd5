/*
 * testmodel.c - random-weight Gemma 4 GGUF generator (see testmodel.h).
 *
 * Design
 * ------
 * 1. A list of tensor specs (name, shape, ggml type, how to fill it) is built
 *    once from the parameters, in the order the file holds them: token_embd,
 *    rope_freqs, output_norm, then blk.N.* per layer.  The same list declares
 *    the tensors to the streaming GGUF writer (header first) and then drives
 *    data generation, so the two can never disagree.
 * 2. Randomness: every row of every tensor has its own xoshiro256** stream,
 *    seeded by splitmix64 from (seed, tensor index, row).  Rows can therefore
 *    be generated in any order by any number of threads and the file bytes
 *    depend only on the parameters.  "Normal" numbers are an Irwin-Hall sum of
 *    four 16-bit uniforms rescaled to unit variance (|z| <= 3.46): cheap (one
 *    64-bit draw per weight, no transcendental functions), which matters when
 *    12 billion weights are made, and close enough to Gaussian for a test.
 * 3. Matrices are produced in batches of rows (~4M weights); the rows of a
 *    batch are generated and quantized in parallel on the thread pool into one
 *    output buffer, which is appended to the file.  Peak memory is one batch
 *    of output plus one f32 row per thread, whatever the model size.
 * 4. Scaling keeps a random Gemma 4 well-conditioned (small rounding
 *    differences must not flip the logits): matrices ~ N(0, 1/fan_in), the
 *    embedding ~ N(0, 1/n_embd) so that embedding * sqrt(n_embd) is O(1), norm
 *    weights 1 +- 0.1 except the post-attention / post-FFN norms (0.3 +- 0.03,
 *    see build_specs), q/k norm weights d^-1/4 (+-10%) because Gemma 4 does not
 *    divide q.k by sqrt(d), layer_output_scale uniform in [0.5, 1.5) so that a
 *    forgotten multiply shows.
 * 5. Tokenizer ("gemma4" BPE, as llama.cpp loads it): specials, 256 byte
 *    tokens, "\n" and "\n\n", U+2581 and printable ASCII as single characters,
 *    then merges learned by plain BPE on a small built-in English text (every
 *    merge result is a token), then "<unusedN>" control tokens up to n_vocab.
 *    With n_vocab >= 512 the specials sit at the real Gemma 4 ids (pad 0,
 *    eos 1, bos 2, unk 3, mask 4, <|tool_response> 50, <|think|> 98,
 *    <|channel> 100, <channel|> 101, <|turn> 105, <turn|> 106; the specials
 *    whose real id is not known to us (<|tool_call>, <tool_call|>,
 *    <tool_response|>, <|"|>) at 5..8, the rest of 0..106 "<unusedN>"), and
 *    when the vocabulary reaches them the multimodal markers (<|image> 255999,
 *    <|audio> 256000, <|image|> 258880 ... <|video|> 258884).  Below 512 the
 *    15 specials are packed at ids 0..14 in the order of k_specials.
 */
#include "kernels/rng.h"
#include "model/testmodel.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "kernels/quant.h"
#include "kernels/threadpool.h"

/* ------------------------------------------------------------------ misc */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *const k_type_names[G4_TM_COUNT_] = {
    "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q6_k"
};

int g4_tm_type_from_name(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < G4_TM_COUNT_; i++)
        if (strcmp(s, k_type_names[i]) == 0)
            return i;
    return -1;
}

const char *g4_tm_type_name(g4_tm_type t)
{
    return ((int)t >= 0 && t < G4_TM_COUNT_) ? k_type_names[t] : "?";
}

/* llama_ftype values for general.file_type */
static uint32_t tm_file_type(g4_tm_type t)
{
    switch (t) {
    case G4_TM_F32: return 0;
    case G4_TM_F16: return 1;
    case G4_TM_BF16: return 32;
    case G4_TM_Q8_0: return 7;
    case G4_TM_Q4_0: return 2;
    case G4_TM_Q4_K_M: return 15;
    case G4_TM_Q6_K: return 18;
    default: return 0;
    }
}

/* ------------------------------------------------------------------ params */

void g4_test_model_default_params(g4_test_model_params *p)
{
    memset(p, 0, sizeof(*p));
    p->name = NULL;
    p->k_eq_v = true;
    p->rope_base = 1000000.0f;
    p->rope_base_swa = 10000.0f;
    p->softcap = 30.0f;
    p->rms_eps = 1e-6f;
    p->type = G4_TM_F32;
    p->embd_type = -1;
    p->seed = 1;
    p->n_threads = 0;
    p->swa_period = 6;
    g4_test_model_preset(p, "tiny");
}

int g4_test_model_preset(g4_test_model_params *p, const char *preset)
{
    if (!preset)
        return -1;
    if (strcmp(preset, "tiny") == 0) {
        p->n_vocab = 1024; p->n_embd = 256; p->n_layer = 6; p->n_head = 4;
        p->n_kv_head_swa = 2; p->n_kv_head_global = 1;
        p->head_dim_swa = 64; p->head_dim_global = 128;
        p->n_ff = 512; p->sliding_window = 32; p->n_ctx_train = 4096;
        p->preset = "tiny";
    } else if (strcmp(preset, "12b") == 0) {
        p->n_vocab = 262144; p->n_embd = 3840; p->n_layer = 48; p->n_head = 16;
        p->n_kv_head_swa = 8; p->n_kv_head_global = 1;
        p->head_dim_swa = 256; p->head_dim_global = 512;
        p->n_ff = 15360; p->sliding_window = 1024; p->n_ctx_train = 262144;
        p->preset = "12b";
    } else if (strcmp(preset, "31b") == 0) {
        p->n_vocab = 262144; p->n_embd = 5376; p->n_layer = 60; p->n_head = 32;
        p->n_kv_head_swa = 16; p->n_kv_head_global = 4;
        p->head_dim_swa = 256; p->head_dim_global = 512;
        p->n_ff = 21504; p->sliding_window = 1024; p->n_ctx_train = 262144;
        p->preset = "31b";
    } else {
        return -1;
    }
    p->swa_period = 6;
    p->k_eq_v = true;
    p->rope_base = 1000000.0f;
    p->rope_base_swa = 10000.0f;
    p->softcap = 30.0f;
    return 0;
}

bool g4_test_model_layer_is_swa(const g4_test_model_params *p, uint32_t l)
{
    if (l + 1 >= p->n_layer)
        return false; /* the last layer is always global (as HF forces it) */
    return p->swa_period == 0 || (l + 1) % p->swa_period != 0;
}

/* ------------------------------------------------------------------ tokenizer */

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_BYTE = 6 };

typedef struct {
    const char *text;
    int         type;
    int32_t     real_id; /* id in the real Gemma 4 vocabulary; -1 unknown */
} special_tok;

/* The order is the packed layout used for small vocabularies. */
static const special_tok k_specials[] = {
    { "<pad>", TT_CONTROL, 0 },
    { "<eos>", TT_CONTROL, 1 },
    { "<bos>", TT_CONTROL, 2 },
    { "<unk>", TT_UNKNOWN, 3 },
    { "<mask>", TT_CONTROL, 4 },
    { "<|turn>", TT_CONTROL, 105 },
    { "<turn|>", TT_CONTROL, 106 },
    { "<|think|>", TT_CONTROL, 98 },
    { "<|channel>", TT_USER, 100 },
    { "<channel|>", TT_USER, 101 },
    { "<|tool_call>", TT_USER, -1 },
    { "<tool_call|>", TT_USER, -1 },
    { "<|tool_response>", TT_USER, 50 },
    { "<tool_response|>", TT_USER, -1 },
    { "<|\"|>", TT_USER, -1 },
};
#define N_SPECIALS ((int)(sizeof(k_specials) / sizeof(k_specials[0])))
#define REAL_LAYOUT_MIN_VOCAB 512u
#define REAL_SPECIAL_END 107 /* ids 0..106 reserved in the real layout */

static const special_tok k_mm_specials[] = {
    { "<|image>", TT_CONTROL, 255999 },
    { "<|audio>", TT_CONTROL, 256000 },
    { "<|image|>", TT_CONTROL, 258880 },
    { "<|audio|>", TT_CONTROL, 258881 },
    { "<image|>", TT_CONTROL, 258882 },
    { "<audio|>", TT_CONTROL, 258883 },
    { "<|video|>", TT_CONTROL, 258884 },
};
#define N_MM_SPECIALS ((int)(sizeof(k_mm_specials) / sizeof(k_mm_specials[0])))

#define N_NEWLINE_TOKENS 2
#define N_CHAR_TOKENS (1 + 94) /* U+2581 and 0x21..0x7E */
#define MIN_MERGES 16

/* Written for this generator: a few paragraphs of plain English with digits
 * and punctuation, enough for a few hundred useful merges. */
static const char k_corpus[] =
    "Once upon a time there was a little engine that read numbers from a file "
    "and turned them into words. The engine was small, but it was careful: it "
    "checked every size, every offset and every type before it trusted them.\n"
    "Each morning the engine loaded its weights, counted its layers and looked "
    "at the window of the last tokens it had seen. Most layers only looked at "
    "the recent past, while every sixth layer looked at the whole story. "
    "That is how the model could remember the beginning of a long text.\n"
    "When the engine and the reference disagreed, the engineers printed the "
    "hidden states of each layer and compared them one by one. The first "
    "layer where the numbers drifted apart told them where to look. Often it "
    "was a small thing: a missing scale, a norm that was added twice, or a "
    "rotation that turned the wrong pairs of values.\n"
    "The test model has random weights, so what it says makes no sense at "
    "all. But it has the same shape as the real thing, and that is what "
    "matters for a test. If the logits of the two engines match on random "
    "weights, they will match on the real weights too.\n"
    "Numbers appear in text as well: 0 1 2 3 4 5 6 7 8 9, 10, 12, 31, 48, 60, "
    "100, 256, 1024, 2048 and 262144. So do symbols such as (a + b) * c = d, "
    "x < y > z, [list], {map}, \"quotes\", 'single', #tag, 50%, a & b, "
    "snake_case, a|b, ~tilde, @user, $5, 2^10, `code` and back\\slash.\n"
    "Hello world! Hello, world. How are you today? I am fine, thank you. "
    "The user asked a question and the model gave an answer in the next turn.\n";

/* A growing vocabulary: token strings (owned), scores, types. */
typedef struct {
    char   **text;
    float   *score;
    int32_t *type;
    uint32_t n, cap;
    char   **merges;  /* "left right" */
    uint32_t n_merges;
    int32_t  bos, eos, unk, pad, mask;
} vocab;

static void vocab_free(vocab *v)
{
    if (v->text)
        for (uint32_t i = 0; i < v->n; i++)
            free(v->text[i]);
    for (uint32_t i = 0; i < v->n_merges; i++)
        free(v->merges[i]);
    free(v->text);
    free(v->score);
    free(v->type);
    free(v->merges);
    memset(v, 0, sizeof(*v));
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Sets slot `id` (must be empty). Returns 0 or -1 on OOM. */
static int vocab_set(vocab *v, uint32_t id, const char *text, int type, float score)
{
    v->text[id] = xstrdup(text);
    if (!v->text[id])
        return -1;
    v->type[id] = type;
    v->score[id] = score;
    return 0;
}

/* ---- BPE learning on the corpus ---- */

typedef struct {
    int32_t *sym;   /* symbol ids of the word */
    int      len;
    int      count; /* occurrences in the corpus */
} bpe_word;

typedef struct {
    char   **sym;   /* symbol strings */
    int      n_sym, cap_sym;
    bpe_word *words;
    int      n_words, cap_words;
} bpe_state;

static int bpe_sym_id(bpe_state *s, const char *str, size_t len)
{
    for (int i = 0; i < s->n_sym; i++)
        if (strlen(s->sym[i]) == len && memcmp(s->sym[i], str, len) == 0)
            return i;
    if (s->n_sym == s->cap_sym) {
        int nc = s->cap_sym ? 2 * s->cap_sym : 256;
        char **ns = realloc(s->sym, (size_t)nc * sizeof(*ns));
        if (!ns)
            return -1;
        s->sym = ns;
        s->cap_sym = nc;
    }
    char *d = malloc(len + 1);
    if (!d)
        return -1;
    memcpy(d, str, len);
    d[len] = 0;
    s->sym[s->n_sym] = d;
    return s->n_sym++;
}

static void bpe_free(bpe_state *s)
{
    for (int i = 0; i < s->n_sym; i++)
        free(s->sym[i]);
    for (int i = 0; i < s->n_words; i++)
        free(s->words[i].sym);
    free(s->sym);
    free(s->words);
}

static const char k_sp[] = "\xe2\x96\x81"; /* U+2581, SentencePiece's space */

/* Splits the corpus into words (each starting at a U+2581 that replaced a
 * space or newline) of single-character symbols, counting duplicates. */
static int bpe_init(bpe_state *s)
{
    memset(s, 0, sizeof(*s));
    size_t n = sizeof(k_corpus) - 1;
    size_t i = 0;
    int32_t buf[256];
    while (i < n) {
        int len = 0;
        /* a word: optional leading separator, then non-separators */
        if (k_corpus[i] == ' ' || k_corpus[i] == '\n') {
            int id = bpe_sym_id(s, k_sp, 3);
            if (id < 0)
                return -1;
            buf[len++] = id;
            i++;
        }
        while (i < n && k_corpus[i] != ' ' && k_corpus[i] != '\n' && len < 255) {
            int id = bpe_sym_id(s, &k_corpus[i], 1);
            if (id < 0)
                return -1;
            buf[len++] = id;
            i++;
        }
        int w;
        for (w = 0; w < s->n_words; w++)
            if (s->words[w].len == len && memcmp(s->words[w].sym, buf, (size_t)len * sizeof(int32_t)) == 0)
                break;
        if (w < s->n_words) {
            s->words[w].count++;
            continue;
        }
        if (s->n_words == s->cap_words) {
            int nc = s->cap_words ? 2 * s->cap_words : 128;
            bpe_word *nw = realloc(s->words, (size_t)nc * sizeof(*nw));
            if (!nw)
                return -1;
            s->words = nw;
            s->cap_words = nc;
        }
        bpe_word *bw = &s->words[s->n_words];
        bw->sym = malloc((size_t)(len ? len : 1) * sizeof(int32_t));
        if (!bw->sym)
            return -1;
        memcpy(bw->sym, buf, (size_t)len * sizeof(int32_t));
        bw->len = len;
        bw->count = 1;
        s->n_words++;
    }
    return 0;
}

typedef struct { int32_t a, b; int count; } bpe_pair;

static int pair_cmp(const void *x, const void *y)
{
    const bpe_pair *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    if (p->b != q->b)
        return p->b < q->b ? -1 : 1;
    return 0;
}

/* One BPE step: the most frequent adjacent pair (ties: shorter result, then
 * byte order of the result).  Pairs seen once are merged too (after all the
 * frequent ones), so a big enough vocabulary ends with whole corpus words.
 * Returns 1 and the pair, 0 when no pair is left, -1 on OOM. */
static int bpe_best_pair(const bpe_state *s, int32_t *pa, int32_t *pb)
{
    size_t np = 0;
    for (int w = 0; w < s->n_words; w++)
        if (s->words[w].len > 1)
            np += (size_t)s->words[w].len - 1;
    if (np == 0)
        return 0;
    bpe_pair *pairs = malloc(np * sizeof(*pairs));
    if (!pairs)
        return -1;
    size_t k = 0;
    for (int w = 0; w < s->n_words; w++)
        for (int j = 0; j + 1 < s->words[w].len; j++) {
            pairs[k].a = s->words[w].sym[j];
            pairs[k].b = s->words[w].sym[j + 1];
            pairs[k].count = s->words[w].count;
            k++;
        }
    qsort(pairs, np, sizeof(*pairs), pair_cmp);
    int best_count = 0;
    int32_t ba = -1, bb = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < np;) {
        size_t j = i;
        int c = 0;
        while (j < np && pairs[j].a == pairs[i].a && pairs[j].b == pairs[i].b)
            c += pairs[j++].count;
        size_t len = strlen(s->sym[pairs[i].a]) + strlen(s->sym[pairs[i].b]);
        bool better = c > best_count;
        if (!better && c == best_count && ba >= 0) {
            if (len != best_len) {
                better = len < best_len;
            } else {
                /* byte order of the concatenation */
                char x[512], y[512];
                snprintf(x, sizeof x, "%s%s", s->sym[pairs[i].a], s->sym[pairs[i].b]);
                snprintf(y, sizeof y, "%s%s", s->sym[ba], s->sym[bb]);
                int cmp = strcmp(x, y);
                better = cmp < 0 || (cmp == 0 && strlen(s->sym[pairs[i].a]) < strlen(s->sym[ba]));
            }
        }
        if (better) {
            best_count = c;
            ba = pairs[i].a;
            bb = pairs[i].b;
            best_len = len;
        }
        i = j;
    }
    free(pairs);
    if (best_count < 1)
        return 0;
    *pa = ba;
    *pb = bb;
    return 1;
}

static void bpe_apply(bpe_state *s, int32_t a, int32_t b, int32_t ab)
{
    for (int w = 0; w < s->n_words; w++) {
        bpe_word *bw = &s->words[w];
        int o = 0;
        for (int j = 0; j < bw->len;) {
            if (j + 1 < bw->len && bw->sym[j] == a && bw->sym[j + 1] == b) {
                bw->sym[o++] = ab;
                j += 2;
            } else {
                bw->sym[o++] = bw->sym[j++];
            }
        }
        bw->len = o;
    }
}

static int vocab_find(const vocab *v, const char *t, uint32_t from, uint32_t to)
{
    for (uint32_t i = from; i < to && i < v->n; i++)
        if (v->text[i] && strcmp(v->text[i], t) == 0)
            return (int)i;
    return -1;
}

uint32_t g4_test_model_min_vocab(void)
{
    return (uint32_t)(N_SPECIALS + 256 + N_NEWLINE_TOKENS + N_CHAR_TOKENS + MIN_MERGES);
}

/* Builds the whole vocabulary of n_vocab tokens. */
static int build_vocab(vocab *v, uint32_t n_vocab, char *err, size_t errlen)
{
    memset(v, 0, sizeof(*v));
    v->n = n_vocab;
    v->text = calloc(n_vocab, sizeof(char *));
    v->score = calloc(n_vocab, sizeof(float));
    v->type = calloc(n_vocab, sizeof(int32_t));
    if (!v->text || !v->score || !v->type)
        goto oom;

    const bool real = n_vocab >= REAL_LAYOUT_MIN_VOCAB;
    uint32_t next = 0;      /* first id after the special block */
    uint32_t unused_k = 0;  /* counter for <unusedN> names */
    char buf[64];

    if (real) {
        /* known ids first, then unknown-id specials into the free slots */
        for (int i = 0; i < N_SPECIALS; i++)
            if (k_specials[i].real_id >= 0 &&
                vocab_set(v, (uint32_t)k_specials[i].real_id, k_specials[i].text,
                          k_specials[i].type, -1000.0f))
                goto oom;
        uint32_t slot = 0;
        for (int i = 0; i < N_SPECIALS; i++) {
            if (k_specials[i].real_id >= 0)
                continue;
            while (v->text[slot])
                slot++;
            if (vocab_set(v, slot, k_specials[i].text, k_specials[i].type, -1000.0f))
                goto oom;
        }
        for (uint32_t id = 0; id < REAL_SPECIAL_END; id++) {
            if (v->text[id])
                continue;
            snprintf(buf, sizeof buf, "<unused%u>", unused_k++);
            if (vocab_set(v, id, buf, TT_CONTROL, -1000.0f))
                goto oom;
        }
        next = REAL_SPECIAL_END;
        for (int i = 0; i < N_MM_SPECIALS; i++)
            if ((uint32_t)k_mm_specials[i].real_id < n_vocab &&
                vocab_set(v, (uint32_t)k_mm_specials[i].real_id, k_mm_specials[i].text,
                          k_mm_specials[i].type, -1000.0f))
                goto oom;
    } else {
        for (int i = 0; i < N_SPECIALS; i++)
            if (vocab_set(v, (uint32_t)i, k_specials[i].text, k_specials[i].type, -1000.0f))
                goto oom;
        next = N_SPECIALS;
    }
    v->pad = vocab_find(v, "<pad>", 0, REAL_SPECIAL_END);
    v->eos = vocab_find(v, "<eos>", 0, REAL_SPECIAL_END);
    v->bos = vocab_find(v, "<bos>", 0, REAL_SPECIAL_END);
    v->unk = vocab_find(v, "<unk>", 0, REAL_SPECIAL_END);
    v->mask = vocab_find(v, "<mask>", 0, REAL_SPECIAL_END);

    /* `next` walks the free ids (the multimodal slots are skipped) */
#define TAKE_ID(idvar) do { while (next < n_vocab && v->text[next]) next++; \
        if (next >= n_vocab) { set_err(err, errlen, "--vocab %u is too small", n_vocab); goto fail; } \
        (idvar) = next++; } while (0)

    uint32_t id;
    for (int b = 0; b < 256; b++) {
        TAKE_ID(id);
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        if (vocab_set(v, id, buf, TT_BYTE, 0.0f))
            goto oom;
    }
    TAKE_ID(id);
    if (vocab_set(v, id, "\n", TT_NORMAL, 0.0f))
        goto oom;
    TAKE_ID(id);
    if (vocab_set(v, id, "\n\n", TT_NORMAL, 0.0f))
        goto oom;
    TAKE_ID(id);
    if (vocab_set(v, id, k_sp, TT_NORMAL, 0.0f))
        goto oom;
    for (int c = 0x21; c < 0x7f; c++) {
        TAKE_ID(id);
        buf[0] = (char)c;
        buf[1] = 0;
        if (vocab_set(v, id, buf, TT_NORMAL, 0.0f))
            goto oom;
    }
    uint32_t first_learned = next;

    /* merges: learn while there is room for their results */
    {
        bpe_state s;
        if (bpe_init(&s)) {
            bpe_free(&s);
            goto oom;
        }
        uint32_t cap_merges = 1024;
        v->merges = malloc(cap_merges * sizeof(char *));
        if (!v->merges) {
            bpe_free(&s);
            goto oom;
        }
        for (;;) {
            while (next < n_vocab && v->text[next])
                next++;
            if (next >= n_vocab)
                break;
            int32_t a, b;
            int r = bpe_best_pair(&s, &a, &b);
            if (r < 0) {
                bpe_free(&s);
                goto oom;
            }
            if (r == 0)
                break;
            char joined[512];
            snprintf(joined, sizeof joined, "%s%s", s.sym[a], s.sym[b]);
            int ab = bpe_sym_id(&s, joined, strlen(joined));
            if (ab < 0) {
                bpe_free(&s);
                goto oom;
            }
            bpe_apply(&s, a, b, ab);
            if (v->n_merges == cap_merges) {
                cap_merges *= 2;
                char **nm = realloc(v->merges, cap_merges * sizeof(char *));
                if (!nm) {
                    bpe_free(&s);
                    goto oom;
                }
                v->merges = nm;
            }
            size_t ml = strlen(s.sym[a]) + strlen(s.sym[b]) + 2;
            char *m = malloc(ml);
            if (!m) {
                bpe_free(&s);
                goto oom;
            }
            snprintf(m, ml, "%s %s", s.sym[a], s.sym[b]);
            v->merges[v->n_merges++] = m;
            if (vocab_find(v, joined, first_learned, next) < 0) {
                if (vocab_set(v, next, joined, TT_NORMAL, -(float)v->n_merges)) {
                    bpe_free(&s);
                    goto oom;
                }
                next++;
            }
        }
        bpe_free(&s);
    }

    /* the rest: unused control tokens */
    for (uint32_t i = 0; i < n_vocab; i++) {
        if (v->text[i])
            continue;
        snprintf(buf, sizeof buf, "<unused%u>", unused_k++);
        if (vocab_set(v, i, buf, TT_CONTROL, -1000.0f))
            goto oom;
    }
#undef TAKE_ID
    return 0;
oom:
    set_err(err, errlen, "out of memory building the vocabulary");
fail:
    vocab_free(v);
    return -1;
}

/* ------------------------------------------------------------------ PRNG */

typedef g4_rng rng_t;
#define mix64 g4_mix64
#define rng_next g4_rng_next

/* The stream of row `row` of tensor number `stream`. */
static void rng_seed(rng_t *r, uint64_t seed, uint64_t stream, uint64_t row)
{
    uint64_t k = mix64(mix64(mix64(seed ^ 0x6a09e667f3bcc909ULL) ^ stream) ^ row);
    for (int i = 0; i < 4; i++)
        r->s[i] = g4_splitmix64(&k);
}

/* Approximately N(0,1): sum of four 16-bit uniforms, centred and scaled. */
static inline float rng_normal(rng_t *r)
{
    uint64_t x = rng_next(r);
    int32_t u = (int32_t)(x & 0xffff) + (int32_t)((x >> 16) & 0xffff) +
                (int32_t)((x >> 32) & 0xffff) + (int32_t)(x >> 48);
    return (float)(u - 131070) * (1.7320508f / 65536.0f);
}

/* uniform in [0, 1) */
static inline float rng_uniform(rng_t *r)
{
    return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* ------------------------------------------------------------------ tensors */

enum tkind { TK_MAT, TK_NORM, TK_ROPE_FREQS, TK_SCALAR };

typedef struct {
    char     name[64];
    uint32_t type;    /* ggml type */
    uint32_t n_dims;
    uint64_t ne[2];
    int      kind;
    float    std;     /* TK_MAT */
    float    center, spread; /* TK_NORM */
    uint64_t nbytes;
} tspec;

static uint32_t ggml_of(g4_tm_type t, bool heavy)
{
    switch (t) {
    case G4_TM_F32: return G4_TYPE_F32;
    case G4_TM_F16: return G4_TYPE_F16;
    case G4_TM_BF16: return G4_TYPE_BF16;
    case G4_TM_Q8_0: return G4_TYPE_Q8_0;
    case G4_TM_Q4_0: return G4_TYPE_Q4_0;
    case G4_TM_Q4_K_M: return heavy ? G4_TYPE_Q6_K : G4_TYPE_Q4_K;
    case G4_TM_Q6_K: return G4_TYPE_Q6_K;
    default: return G4_TYPE_F32;
    }
}

static g4_tm_type resolved_embd_type(const g4_test_model_params *p)
{
    if (p->embd_type >= 0 && p->embd_type < G4_TM_COUNT_)
        return (g4_tm_type)p->embd_type;
    if (p->type == G4_TM_Q4_0 || p->type == G4_TM_Q4_K_M)
        return G4_TM_Q6_K;
    return p->type;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

uint32_t g4_test_model_tensor_type(const g4_test_model_params *p, const char *name,
                                   uint64_t row_len)
{
    if (strstr(name, "norm.weight") || strstr(name, "rope_freqs") ||
        strstr(name, "layer_output_scale"))
        return G4_TYPE_F32;
    bool embd = strcmp(name, "token_embd.weight") == 0 || strcmp(name, "output.weight") == 0;
    g4_tm_type t = embd ? resolved_embd_type(p) : p->type;
    bool heavy = embd || ends_with(name, "attn_v.weight") || ends_with(name, "ffn_down.weight");
    uint32_t gt = ggml_of(t, heavy);
    const g4_type_traits *tr = g4_type_get(gt);
    if (tr && tr->blck > 1 && row_len % tr->blck != 0) {
        /* fallback: Q8_0 (block 32) if it fits, else F16 */
        gt = (row_len % 32 == 0) ? G4_TYPE_Q8_0 : G4_TYPE_F16;
    }
    return gt;
}

/* Appends to the growing spec list. */
typedef struct {
    tspec   *v;
    size_t   n, cap;
    const g4_test_model_params *p;
    bool     oom;
} spec_list;

static tspec *spec_add(spec_list *L, const char *name, int kind, uint64_t ne0, uint64_t ne1)
{
    if (L->oom)
        return NULL;
    if (L->n == L->cap) {
        size_t nc = L->cap ? 2 * L->cap : 64;
        tspec *nv = realloc(L->v, nc * sizeof(*nv));
        if (!nv) {
            L->oom = true;
            return NULL;
        }
        L->v = nv;
        L->cap = nc;
    }
    tspec *t = &L->v[L->n++];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = kind;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->n_dims = kind == TK_MAT ? 2 : 1;
    t->type = kind == TK_MAT ? g4_test_model_tensor_type(L->p, name, ne0) : G4_TYPE_F32;
    t->std = (float)(1.0 / sqrt((double)ne0));
    t->center = 1.0f;
    t->spread = 0.1f;
    return t;
}

enum { POST_NORM_PERCENT = 30 };
#define POST_NORM (POST_NORM_PERCENT / 100.0f)

static int build_specs(const g4_test_model_params *p, spec_list *L)
{
    memset(L, 0, sizeof(*L));
    L->p = p;
    char nm[64];
    const uint64_t E = p->n_embd;
    spec_add(L, "token_embd.weight", TK_MAT, E, p->n_vocab);
    spec_add(L, "rope_freqs.weight", TK_ROPE_FREQS, p->head_dim_global / 2, 1);
    spec_add(L, "output_norm.weight", TK_NORM, E, 1);
    for (uint32_t l = 0; l < p->n_layer; l++) {
        const bool swa = g4_test_model_layer_is_swa(p, l);
        const uint64_t D = swa ? p->head_dim_swa : p->head_dim_global;
        const uint64_t KV = swa ? p->n_kv_head_swa : p->n_kv_head_global;
        const uint64_t H = p->n_head;
        const float qk = (float)pow((double)D, -0.25);
        tspec *t;
#define NM(s) (snprintf(nm, sizeof nm, "blk.%u." s, l), nm)
        spec_add(L, NM("attn_norm.weight"), TK_NORM, E, 1);
        spec_add(L, NM("attn_q.weight"), TK_MAT, E, H * D);
        spec_add(L, NM("attn_k.weight"), TK_MAT, E, KV * D);
        if (swa || !p->k_eq_v)
            spec_add(L, NM("attn_v.weight"), TK_MAT, E, KV * D);
        spec_add(L, NM("attn_output.weight"), TK_MAT, H * D, E);
        if ((t = spec_add(L, NM("attn_q_norm.weight"), TK_NORM, D, 1))) {
            t->center = qk;
            t->spread = 0.1f * qk;
        }
        if ((t = spec_add(L, NM("attn_k_norm.weight"), TK_NORM, D, 1))) {
            t->center = qk;
            t->spread = 0.1f * qk;
        }
        /* Post-norm weights well below 1: each block adds a modest update to
         * the residual stream, as in trained models, instead of one as large
         * as the stream.  With weights ~1 a random model amplifies the f16 /
         * 8-bit rounding flips that any two engines make at different places
         * (see docs/testing.md) about 1.5x more. */
        if ((t = spec_add(L, NM("post_attention_norm.weight"), TK_NORM, E, 1))) {
            t->center = POST_NORM;
            t->spread = 0.1f * POST_NORM;
        }
        spec_add(L, NM("ffn_norm.weight"), TK_NORM, E, 1);
        spec_add(L, NM("ffn_gate.weight"), TK_MAT, E, p->n_ff);
        spec_add(L, NM("ffn_up.weight"), TK_MAT, E, p->n_ff);
        spec_add(L, NM("ffn_down.weight"), TK_MAT, p->n_ff, E);
        if ((t = spec_add(L, NM("post_ffw_norm.weight"), TK_NORM, E, 1))) {
            t->center = POST_NORM;
            t->spread = 0.1f * POST_NORM;
        }
        spec_add(L, NM("layer_output_scale.weight"), TK_SCALAR, 1, 1);
#undef NM
    }
    if (L->oom)
        return -1;
    for (size_t i = 0; i < L->n; i++) {
        tspec *t = &L->v[i];
        uint64_t rb = 0;
        if (!g4_row_size(t->type, t->ne[0], &rb))
            return -1;
        t->nbytes = rb * t->ne[1];
    }
    return 0;
}

/* ------------------------------------------------------------------ validation */

int g4_test_model_validate(const g4_test_model_params *p, char *err, size_t errlen)
{
#define REQ(cond, ...) do { if (!(cond)) { set_err(err, errlen, __VA_ARGS__); return -1; } } while (0)
    const uint32_t big = 1u << 20;
    REQ(p->n_vocab >= g4_test_model_min_vocab(),
        "--vocab %u: the tokenizer needs at least %u tokens", p->n_vocab, g4_test_model_min_vocab());
    REQ(p->n_vocab <= (1u << 24), "--vocab %u: at most %u", p->n_vocab, 1u << 24);
    REQ(p->n_embd > 0 && p->n_embd <= big, "--embd %u: must be in 1..%u", p->n_embd, big);
    REQ(p->n_layer > 0 && p->n_layer <= 4096, "--layers %u: must be in 1..4096", p->n_layer);
    REQ(p->n_head > 0 && p->n_head <= 4096, "--heads %u: must be in 1..4096", p->n_head);
    REQ(p->n_kv_head_swa > 0 && p->n_kv_head_swa <= p->n_head && p->n_head % p->n_kv_head_swa == 0,
        "--kv-heads %u: must divide --heads %u", p->n_kv_head_swa, p->n_head);
    REQ(p->n_kv_head_global > 0 && p->n_kv_head_global <= p->n_head &&
        p->n_head % p->n_kv_head_global == 0,
        "--kv-heads-global %u: must divide --heads %u", p->n_kv_head_global, p->n_head);
    REQ(p->head_dim_swa >= 2 && p->head_dim_swa % 2 == 0 && p->head_dim_swa <= 65536,
        "--head-dim %u: must be even, 2..65536", p->head_dim_swa);
    REQ(p->head_dim_global >= 2 && p->head_dim_global % 2 == 0 && p->head_dim_global <= 65536,
        "--head-dim-global %u: must be even, 2..65536", p->head_dim_global);
    REQ((uint64_t)p->n_head * p->head_dim_global <= big && (uint64_t)p->n_head * p->head_dim_swa <= big,
        "--heads x head dim too large (at most %u)", big);
    REQ(p->n_ff > 0 && p->n_ff <= 4 * big, "--ff %u: must be in 1..%u", p->n_ff, 4 * big);
    REQ(p->sliding_window > 0, "--window: must be at least 1");
    REQ(p->n_ctx_train > 0, "--ctx: must be at least 1");
    REQ(p->swa_period > 0, "--swa-period: must be at least 1");
    REQ(isfinite(p->rope_base) && p->rope_base > 0, "--rope-base: must be a positive number");
    REQ(isfinite(p->rope_base_swa) && p->rope_base_swa > 0, "--rope-base-swa: must be a positive number");
    REQ(isfinite(p->softcap) && p->softcap >= 0, "--softcap: must be >= 0 (0 = off)");
    REQ(isfinite(p->rms_eps) && p->rms_eps > 0, "rms_eps: must be positive");
    REQ((int)p->type >= 0 && p->type < G4_TM_COUNT_, "--type: unknown type");
    REQ(p->embd_type >= -1 && p->embd_type < G4_TM_COUNT_, "--embd-type: unknown type");
    REQ(!p->name || strlen(p->name) < 1024, "--name: too long");
    return 0;
#undef REQ
}

/* ------------------------------------------------------------------ generation */

typedef struct {
    const tspec *t;
    uint64_t     stream;
    uint64_t     seed;
    uint64_t     row0;
    uint64_t     row_bytes;
    uint8_t     *out;
    float      **scratch; /* one row per thread */
} gen_job;

static void gen_row(void *arg, int64_t i, int tid)
{
    gen_job *j = arg;
    const tspec *t = j->t;
    const uint64_t row = j->row0 + (uint64_t)i;
    const int64_t n = (int64_t)t->ne[0];
    float *x = j->scratch[tid];
    rng_t r;
    rng_seed(&r, j->seed, j->stream, row);
    for (int64_t k = 0; k < n; k++)
        x[k] = t->std * rng_normal(&r);
    uint8_t *dst = j->out + (uint64_t)i * j->row_bytes;
    switch (t->type) {
    case G4_TYPE_F32:
        memcpy(dst, x, (size_t)n * sizeof(float));
        break;
    case G4_TYPE_F16:
        for (int64_t k = 0; k < n; k++) {
            uint16_t h = g4_f32_to_f16(x[k]);
            memcpy(dst + 2 * k, &h, 2);
        }
        break;
    case G4_TYPE_BF16:
        for (int64_t k = 0; k < n; k++) {
            uint16_t h = g4_f32_to_bf16(x[k]);
            memcpy(dst + 2 * k, &h, 2);
        }
        break;
    default:
        g4_quantize_row(t->type, x, dst, n);
        break;
    }
}

#define BATCH_ELEMS ((uint64_t)1 << 22)

int g4_make_test_model(const g4_test_model_params *p, const char *path,
                       char *err, size_t errlen)
{
    if (!p || !path) {
        set_err(err, errlen, "make-test-model: missing parameters or output path");
        return -1;
    }
    if (g4_test_model_validate(p, err, errlen))
        return -1;

    int rc = -1;
    bool began = false;
    vocab v;
    memset(&v, 0, sizeof(v));
    spec_list L;
    memset(&L, 0, sizeof(L));
    gguf_writer *w = NULL;
    g4_pool *pool = NULL;
    float **scratch = NULL;
    uint8_t *out = NULL;
    int n_threads = p->n_threads > 0 ? p->n_threads : g4_cpu_cores();
    if (n_threads > 256)
        n_threads = 256;

    if (build_vocab(&v, p->n_vocab, err, errlen))
        goto done;
    if (build_specs(p, &L)) {
        set_err(err, errlen, "make-test-model: out of memory (or bad tensor size)");
        goto done;
    }
    w = gguf_writer_new();
    if (!w) {
        set_err(err, errlen, "make-test-model: out of memory");
        goto done;
    }

    /* ---- metadata ---- */
    char name[256];
    if (p->name)
        snprintf(name, sizeof name, "%s", p->name);
    else
        snprintf(name, sizeof name, "gemma4-test-%s-%s", p->preset ? p->preset : "custom",
                 g4_tm_type_name(p->type));
    gguf_w_str(w, "general.architecture", "gemma4");
    gguf_w_str(w, "general.type", "model");
    gguf_w_str(w, "general.name", name);
    gguf_w_u32(w, "general.file_type", tm_file_type(p->type));
    gguf_w_u32(w, "general.quantization_version", 2);

    const uint32_t L_ = p->n_layer;
    bool *pattern = malloc(L_ * sizeof(bool));
    int32_t *kvh = malloc(L_ * sizeof(int32_t));
    if (!pattern || !kvh) {
        free(pattern);
        free(kvh);
        set_err(err, errlen, "make-test-model: out of memory");
        goto done;
    }
    for (uint32_t l = 0; l < L_; l++) {
        pattern[l] = g4_test_model_layer_is_swa(p, l);
        kvh[l] = (int32_t)(pattern[l] ? p->n_kv_head_swa : p->n_kv_head_global);
    }
    gguf_w_u32(w, "gemma4.context_length", p->n_ctx_train);
    gguf_w_u32(w, "gemma4.embedding_length", p->n_embd);
    gguf_w_u32(w, "gemma4.block_count", p->n_layer);
    gguf_w_u32(w, "gemma4.feed_forward_length", p->n_ff);
    gguf_w_u32(w, "gemma4.attention.head_count", p->n_head);
    gguf_w_arr_i32(w, "gemma4.attention.head_count_kv", kvh, L_);
    gguf_w_u32(w, "gemma4.attention.key_length", p->head_dim_global);
    gguf_w_u32(w, "gemma4.attention.value_length", p->head_dim_global);
    gguf_w_u32(w, "gemma4.attention.key_length_swa", p->head_dim_swa);
    gguf_w_u32(w, "gemma4.attention.value_length_swa", p->head_dim_swa);
    gguf_w_f32(w, "gemma4.attention.layer_norm_rms_epsilon", p->rms_eps);
    gguf_w_u32(w, "gemma4.attention.sliding_window", p->sliding_window);
    gguf_w_arr_bool(w, "gemma4.attention.sliding_window_pattern", pattern, L_);
    gguf_w_u32(w, "gemma4.attention.shared_kv_layers", 0);
    gguf_w_u32(w, "gemma4.embedding_length_per_layer_input", 0);
    gguf_w_f32(w, "gemma4.rope.freq_base", p->rope_base);
    gguf_w_f32(w, "gemma4.rope.freq_base_swa", p->rope_base_swa);
    gguf_w_u32(w, "gemma4.rope.dimension_count", p->head_dim_global);
    gguf_w_u32(w, "gemma4.rope.dimension_count_swa", p->head_dim_swa);
    gguf_w_f32(w, "gemma4.final_logit_softcapping", p->softcap);
    gguf_w_u32(w, "gemma4.vocab_size", p->n_vocab);
    free(pattern);
    free(kvh);

    gguf_w_str(w, "tokenizer.ggml.model", "gemma4");
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.text, v.n);
    gguf_w_arr_f32(w, "tokenizer.ggml.scores", v.score, v.n);
    gguf_w_arr_i32(w, "tokenizer.ggml.token_type", v.type, v.n);
    gguf_w_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v.merges, v.n_merges);
    gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v.bos);
    gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v.eos);
    gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v.unk);
    gguf_w_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)v.pad);
    gguf_w_u32(w, "tokenizer.ggml.mask_token_id", (uint32_t)v.mask);
    gguf_w_bool(w, "tokenizer.ggml.add_bos_token", true);
    gguf_w_bool(w, "tokenizer.ggml.add_eos_token", false);
    gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", false);

    /* ---- tensor infos ---- */
    uint64_t total = 0, max_row = 0, max_batch_bytes = 0;
    for (size_t i = 0; i < L.n; i++) {
        const tspec *t = &L.v[i];
        if (gguf_w_tensor(w, t->name, t->type, t->n_dims, t->ne, err, errlen))
            goto done;
        total += t->nbytes;
        if (t->ne[0] > max_row)
            max_row = t->ne[0];
        if (t->kind == TK_MAT) {
            uint64_t rows = BATCH_ELEMS / t->ne[0];
            if (rows < 1)
                rows = 1;
            if (rows > t->ne[1])
                rows = t->ne[1];
            uint64_t bb = rows * (t->nbytes / t->ne[1]);
            if (bb > max_batch_bytes)
                max_batch_bytes = bb;
        } else if (t->nbytes > max_batch_bytes) {
            max_batch_bytes = t->nbytes;
        }
    }
    if (gguf_w_begin(w, path, err, errlen))
        goto done;
    began = true;
    /* the vocabulary is in the header now */
    vocab_free(&v);

    pool = g4_pool_new(n_threads);
    scratch = calloc((size_t)n_threads, sizeof(float *));
    out = malloc(max_batch_bytes ? max_batch_bytes : 1);
    if (!pool || !scratch || !out) {
        set_err(err, errlen, "make-test-model: out of memory");
        goto done;
    }
    for (int i = 0; i < n_threads; i++) {
        scratch[i] = malloc(max_row * sizeof(float));
        if (!scratch[i]) {
            set_err(err, errlen, "make-test-model: out of memory");
            goto done;
        }
    }

    /* ---- data ---- */
    uint64_t done_bytes = 0;
    for (size_t i = 0; i < L.n; i++) {
        const tspec *t = &L.v[i];
        if (p->progress)
            p->progress(p->progress_user, done_bytes, total, t->name);
        if (t->kind == TK_MAT) {
            const uint64_t row_bytes = t->nbytes / t->ne[1];
            uint64_t rows_per = BATCH_ELEMS / t->ne[0];
            if (rows_per < 1)
                rows_per = 1;
            for (uint64_t r0 = 0; r0 < t->ne[1]; r0 += rows_per) {
                uint64_t nr = t->ne[1] - r0 < rows_per ? t->ne[1] - r0 : rows_per;
                gen_job j = { t, (uint64_t)i, p->seed, r0, row_bytes, out, scratch };
                g4_pool_run(pool, (int64_t)nr, gen_row, &j);
                if (gguf_w_data(w, out, (size_t)(nr * row_bytes), err, errlen))
                    goto done;
                done_bytes += nr * row_bytes;
                if (p->progress && nr < t->ne[1])
                    p->progress(p->progress_user, done_bytes, total, t->name);
            }
        } else {
            float *x = (float *)out;
            rng_t r;
            rng_seed(&r, p->seed, (uint64_t)i, 0);
            const uint64_t n = t->ne[0];
            if (t->kind == TK_NORM) {
                for (uint64_t k = 0; k < n; k++)
                    x[k] = t->center + t->spread * rng_normal(&r);
            } else if (t->kind == TK_ROPE_FREQS) {
                /* proportional RoPE: the first 25% of the pairs rotate */
                uint64_t active = (uint64_t)p->head_dim_global / 8;
                for (uint64_t k = 0; k < n; k++)
                    x[k] = k < active ? 1.0f : 1e30f;
            } else {
                x[0] = 0.5f + rng_uniform(&r);
            }
            if (gguf_w_data(w, x, (size_t)t->nbytes, err, errlen))
                goto done;
            done_bytes += t->nbytes;
        }
        if (gguf_w_end_tensor(w, err, errlen))
            goto done;
    }
    if (gguf_w_finish(w, err, errlen))
        goto done;
    if (p->progress)
        p->progress(p->progress_user, total, total, "");
    rc = 0;
done:
    if (scratch) {
        for (int i = 0; i < n_threads; i++)
            free(scratch[i]);
        free(scratch);
    }
    free(out);
    if (pool)
        g4_pool_free(pool);
    gguf_writer_free(w);
    vocab_free(&v);
    free(L.v);
    if (rc != 0 && began)
        unlink(path);
    return rc;
}
