/*
 * tokenizer.c - Gemma 4 tokenizer and streaming detokenizer.
 *
 * Encoding (same result as llama.cpp for tokenizer.ggml.model "gemma4"):
 *   1. special-token partition: the CONTROL / USER_DEFINED / UNKNOWN tokens,
 *      longest text first (ties: lower id first), each cut out of every
 *      still-raw fragment at its leftmost non-overlapping occurrences.
 *      CONTROL and UNKNOWN tokens (and every end-of-generation token, which
 *      llama.cpp marks CONTROL) only take part when parse_special is on.
 *   2. each raw fragment: ' ' -> U+2581, then split into maximal runs of
 *      '\n' and of everything else.  A newline run that is a token is
 *      emitted as is; any other run ("word") goes through rank BPE.
 *   3. rank BPE over the word's code points: a binary heap of adjacent
 *      pairs that have a merge, ordered by (rank, left position); the symbols
 *      form a doubly linked list inside an array.  Stale heap entries are
 *      recognised by comparing the symbols' current ids with the ids the
 *      entry was made for.  Each final symbol is its token, or one <0xHH>
 *      token per byte when its text is not in the vocabulary.
 * Time is linear in the text apart from the log factor of the heap; nothing
 * recurses.
 *
 * Lookups: one open-addressing hash table text -> id over the vocabulary
 * (plus "pseudo tokens": merge operands that are not vocabulary strings,
 * ids >= n_vocab, so that such merges still apply exactly like a string-
 * keyed merge table), and one table (left id, right id) -> (rank, result
 * id), filled once at load time.
 */
#include "text/tokenizer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

/* ------------------------------------------------------------------------ */
/* hashing                                                                   */

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) { h ^= s[i]; h *= 0x100000001b3ULL; }
    return h;
}
#define HASH_INIT 0xcbf29ce484222325ULL
static uint64_t hash_fin(uint64_t h) { h ^= h >> 29; h *= 0xbf58476d1ce4e5b9ULL; h ^= h >> 32; return h; }
static uint64_t hash_u64(uint64_t k) { k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ULL; k ^= k >> 33; return k; }

typedef struct { int32_t rank, result; uint64_t key; } pair_slot; /* key 0 = empty (ids+1 stored) */

struct g4_tokenizer {
    char     *error;          /* non-NULL: unusable, this is why */
    uint32_t  n_vocab;        /* real tokens */
    uint32_t  n_sym;          /* real + pseudo tokens */
    char     *arena;          /* all texts, NUL-terminated */
    size_t    arena_len, arena_cap;
    uint64_t *text_off;       /* [n_sym] offset into arena */
    uint32_t *text_len;       /* [n_sym] */
    uint32_t  sym_cap;
    uint8_t  *type;           /* [n_vocab] GGUF type */
    uint8_t  *eog;            /* [n_vocab] 1 = end of generation */
    uint64_t *table;          /* text hash table: (hash tag << 32) | (id + 1); 0 = empty */
    uint64_t  table_mask;
    pair_slot *pairs;
    uint64_t  pair_mask;
    int32_t   byte_id[256];
    int32_t   bos, eos, unk, pad;
    bool      add_bos;
    size_t    max_len;
    int32_t  *specials;       /* partition order */
    uint32_t  n_specials;
};

/* ------------------------------------------------------------------------ */
/* load                                                                      */

static g4_tokenizer *set_error(g4_tokenizer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static g4_tokenizer *set_error(g4_tokenizer *t, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(t->error);
    t->error = strdup(buf);
    if (!t->error) t->error = strdup("out of memory");
    return t;
}

static const char *tok_str(const g4_tokenizer *t, int32_t id) { return t->arena + t->text_off[id]; }

static int32_t table_find_h(const g4_tokenizer *t, uint64_t h, const char *a, size_t na, const char *b, size_t nb);
static int32_t table_find2(const g4_tokenizer *t, const char *a, size_t na, const char *b, size_t nb)
{
    return table_find_h(t, hash_fin(hash_bytes(hash_bytes(HASH_INIT, a, na), b, nb)), a, na, b, nb);
}

/* The same with the hash already computed (the merge loop prefetches). */
static int32_t table_find_h(const g4_tokenizer *t, uint64_t h, const char *a, size_t na, const char *b, size_t nb)
{
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint64_t i = h & t->table_mask;; i = (i + 1) & t->table_mask) {
        uint64_t e = t->table[i];
        if (!e) return -1;
        if ((uint32_t)(e >> 32) != tag) continue;
        int32_t id = (int32_t)(uint32_t)e - 1;
        if (t->text_len[id] == na + nb && memcmp(tok_str(t, id), a, na) == 0 &&
            (nb == 0 || memcmp(tok_str(t, id) + na, b, nb) == 0))
            return id;
    }
}

/* Table slot holding this text, or -1. */
static int64_t table_slot(const g4_tokenizer *t, const char *a, size_t na)
{
    uint64_t h = hash_fin(hash_bytes(HASH_INIT, a, na));
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint64_t i = h & t->table_mask;; i = (i + 1) & t->table_mask) {
        uint64_t e = t->table[i];
        if (!e) return -1;
        if ((uint32_t)(e >> 32) != tag) continue;
        int32_t id = (int32_t)(uint32_t)e - 1;
        if (t->text_len[id] == na && memcmp(tok_str(t, id), a, na) == 0) return (int64_t)i;
    }
}

int32_t g4_tokenizer_find(const g4_tokenizer *t, const char *s, size_t len)
{
    if (!t || t->error) return -1;
    int32_t id = table_find2(t, s, len, NULL, 0);
    return id >= 0 && (uint32_t)id < t->n_vocab ? id : -1;
}

/* Adds a string to the arena (id = n_sym) and, unless dup_slot >= 0, to
 * the table; with dup_slot >= 0 that slot is pointed at the new id (a text
 * seen twice maps to its last id, as in llama.cpp). */
static int add_sym(g4_tokenizer *t, const char *s, size_t n, int64_t dup_slot)
{
    if (t->n_sym == t->sym_cap) {
        uint32_t nc = t->sym_cap ? t->sym_cap * 2 : 1024;
        uint64_t *o = realloc(t->text_off, nc * sizeof *o);
        if (!o) return -1;
        t->text_off = o;
        uint32_t *l = realloc(t->text_len, nc * sizeof *l);
        if (!l) return -1;
        t->text_len = l;
        t->sym_cap = nc;
    }
    if (t->arena_len + n + 1 > t->arena_cap) {
        size_t nc = t->arena_cap ? t->arena_cap : 1 << 16;
        while (nc < t->arena_len + n + 1) nc *= 2;
        char *a = realloc(t->arena, nc);
        if (!a) return -1;
        t->arena = a;
        t->arena_cap = nc;
    }
    memcpy(t->arena + t->arena_len, s, n);
    t->arena[t->arena_len + n] = 0;
    uint32_t id = t->n_sym++;
    t->text_off[id] = t->arena_len;
    t->text_len[id] = (uint32_t)n;
    t->arena_len += n + 1;
    uint64_t h = hash_fin(hash_bytes(HASH_INIT, s, n));
    uint64_t e = (h >> 32 << 32) | (uint64_t)(id + 1);
    if (dup_slot >= 0) { t->table[dup_slot] = e; return 0; }
    uint64_t i = h & t->table_mask;
    while (t->table[i]) i = (i + 1) & t->table_mask;
    t->table[i] = e;
    return 0;
}

static uint64_t pow2_at_least(uint64_t n)
{
    uint64_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

static const g4_tokenizer *g_sort_tok; /* qsort has no context argument in C11 */
static int cmp_special_q(const void *a, const void *b)
{
    const g4_tokenizer *t = g_sort_tok;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->text_len[x] != t->text_len[y]) return t->text_len[x] > t->text_len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static bool get_id_key(const gguf_file *f, const char *key, int32_t n_vocab, int32_t *out)
{
    int64_t v;
    *out = -1;
    if (gguf_get_int(f, key, &v) != 0) return true;
    if (v < 0 || v >= n_vocab) return false;
    *out = (int32_t)v;
    return true;
}

g4_tokenizer *g4_tokenizer_load(const gguf_file *f)
{
    g4_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->bos = t->eos = t->unk = t->pad = -1;
    gguf_str model;
    int r = gguf_get_str(f, "tokenizer.ggml.model", &model);
    if (r == -1) return set_error(t, "the model file has no tokenizer (no tokenizer.ggml.model key)");
    if (r != 0) return set_error(t, "tokenizer.ggml.model is not a string");
    if (!(model.len == 6 && memcmp(model.ptr, "gemma4", 6) == 0)) {
        if (model.len == 5 && memcmp(model.ptr, "llama", 5) == 0)
            return set_error(t, "tokenizer model \"llama\" (SentencePiece, e.g. Gemma 3 files) is not supported; "
                                "only \"gemma4\" is");
        return set_error(t, "tokenizer model \"%.*s\" is not supported; only \"gemma4\" is",
                         (int)(model.len > 64 ? 64 : model.len), model.ptr);
    }
    const gguf_kv *ktok = gguf_find_kv(f, "tokenizer.ggml.tokens");
    const gguf_kv *ktype = gguf_find_kv(f, "tokenizer.ggml.token_type");
    const gguf_kv *kmerge = gguf_find_kv(f, "tokenizer.ggml.merges");
    if (!ktok || ktok->type != GGUF_VT_ARRAY || ktok->arr_type != GGUF_VT_STRING || ktok->n == 0)
        return set_error(t, "tokenizer.ggml.tokens is missing or not a non-empty string array");
    if (ktok->n > (1u << 30)) return set_error(t, "tokenizer.ggml.tokens: %llu tokens is too many", (unsigned long long)ktok->n);
    if (!kmerge || kmerge->type != GGUF_VT_ARRAY || kmerge->arr_type != GGUF_VT_STRING)
        return set_error(t, "tokenizer.ggml.merges is missing or not a string array (required for \"gemma4\")");
    if (kmerge->n > (1u << 30)) return set_error(t, "tokenizer.ggml.merges: too many merges");
    if (ktype && (ktype->type != GGUF_VT_ARRAY || !gguf_vtype_is_int(ktype->arr_type) || ktype->n != ktok->n))
        return set_error(t, "tokenizer.ggml.token_type must be an integer array of %llu entries",
                         (unsigned long long)ktok->n);
    uint32_t n = (uint32_t)ktok->n;
    t->n_vocab = n;
    /* table sized for the vocabulary plus possible pseudo tokens (2 per merge worst case
     * is absurd; we grow nothing, so size for n + merges at load factor <= 0.5) */
    uint64_t want = pow2_at_least(2 * ((uint64_t)n + 1024));
    t->table = calloc(want, sizeof *t->table);
    t->type = calloc(n, 1);
    t->eog = calloc(n, 1);
    if (!t->table || !t->type || !t->eog) goto nomem;
    t->table_mask = want - 1;
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) total += gguf_arr_str(ktok, i).len + 1;
    t->arena_cap = total + 4096;
    t->arena = malloc(t->arena_cap);
    t->sym_cap = n + 1024;
    t->text_off = malloc(t->sym_cap * sizeof *t->text_off);
    t->text_len = malloc(t->sym_cap * sizeof *t->text_len);
    if (!t->arena || !t->text_off || !t->text_len) goto nomem;
    for (uint32_t i = 0; i < n; i++) {
        gguf_str s = gguf_arr_str(ktok, i);
        if (s.len > 65536) return set_error(t, "tokenizer.ggml.tokens[%u] is %llu bytes long", i, (unsigned long long)s.len);
        if (add_sym(t, s.ptr, s.len, table_slot(t, s.ptr, s.len))) goto nomem;
        if (s.len > t->max_len) t->max_len = s.len;
        int64_t ty = ktype ? gguf_arr_int(ktype, i) : G4_TT_NORMAL;
        t->type[i] = (uint8_t)(ty >= 1 && ty <= 6 ? ty : G4_TT_NORMAL);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = table_find2(t, name, 6, NULL, 0);
    }
    if (!get_id_key(f, "tokenizer.ggml.bos_token_id", (int32_t)n, &t->bos) ||
        !get_id_key(f, "tokenizer.ggml.eos_token_id", (int32_t)n, &t->eos) ||
        !get_id_key(f, "tokenizer.ggml.unknown_token_id", (int32_t)n, &t->unk) ||
        !get_id_key(f, "tokenizer.ggml.padding_token_id", (int32_t)n, &t->pad))
        return set_error(t, "a tokenizer.ggml.*_token_id key is outside the vocabulary");
    int32_t eot = -1;
    if (!get_id_key(f, "tokenizer.ggml.eot_token_id", (int32_t)n, &eot))
        return set_error(t, "tokenizer.ggml.eot_token_id is outside the vocabulary");
    bool b;
    t->add_bos = gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b) == 0 ? b : true;
    /* End of generation: eos, eot, "<turn|>", "<|tool_response>".  llama.cpp
     * makes these CONTROL, which matters for the partition (parse_special). */
    static const char *const eog_names[] = { "<turn|>", "<|tool_response>" };
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (eot >= 0) t->eog[eot] = 1;
    for (size_t i = 0; i < sizeof eog_names / sizeof eog_names[0]; i++) {
        int32_t id = g4_tokenizer_find(t, eog_names[i], strlen(eog_names[i]));
        if (id >= 0) t->eog[id] = 1;
    }
    /* merges -> pair table */
    uint64_t nm = kmerge->n;
    uint64_t pcap = pow2_at_least(nm + nm / 2 + 16); /* load factor <= 2/3 */
    t->pairs = calloc(pcap, sizeof *t->pairs);
    if (!t->pairs) goto nomem;
    t->pair_mask = pcap - 1;
    /* The lookups are memory-latency bound: the hashes of merge i + AHEAD are
     * computed early and their table slots prefetched. */
    enum { AHEAD = 16 };
    int32_t *mres = malloc((size_t)(nm ? nm : 1) * 3 * sizeof *mres); /* left, right, result ids */
    if (!mres) goto nomem;
    uint64_t hring[2 * AHEAD][3];
    for (uint64_t i = 0; i < nm + AHEAD; i++) {
        if (i < nm) {
            gguf_str s = gguf_arr_str(kmerge, i);
            const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
            uint64_t *hh = hring[i % (2 * AHEAD)];
            if (sp) {
                size_t nl = (size_t)(sp - s.ptr), nr = s.len - nl - 1;
                hh[0] = hash_fin(hash_bytes(HASH_INIT, s.ptr, nl));
                hh[1] = hash_fin(hash_bytes(HASH_INIT, sp + 1, nr));
                hh[2] = hash_fin(hash_bytes(hash_bytes(HASH_INIT, s.ptr, nl), sp + 1, nr));
                for (int q = 0; q < 3; q++) __builtin_prefetch(&t->table[hh[q] & t->table_mask]);
            }
        }
        if (i < AHEAD) continue;
        uint64_t mi = i - AHEAD;
        const uint64_t *hh = hring[mi % (2 * AHEAD)];
        gguf_str s = gguf_arr_str(kmerge, mi);
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        if (!sp) { free(mres); return set_error(t, "tokenizer.ggml.merges[%llu] has no ' ' separator", (unsigned long long)mi); }
        size_t nl = (size_t)(sp - s.ptr), nr = s.len - nl - 1;
        if (nr == 0) { free(mres); return set_error(t, "tokenizer.ggml.merges[%llu] has an empty right part", (unsigned long long)mi); }
        int32_t l = table_find_h(t, hh[0], s.ptr, nl, NULL, 0);
        if (l < 0) {
            if ((uint64_t)t->n_sym * 2 + 2 > t->table_mask) { free(mres); return set_error(t, "too many merge operands outside the vocabulary"); }
            l = (int32_t)t->n_sym;
            if (add_sym(t, s.ptr, nl, -1)) { free(mres); goto nomem; }
        }
        int32_t rr = table_find_h(t, hh[1], sp + 1, nr, NULL, 0);
        if (rr < 0) {
            if ((uint64_t)t->n_sym * 2 + 2 > t->table_mask) { free(mres); return set_error(t, "too many merge operands outside the vocabulary"); }
            rr = (int32_t)t->n_sym;
            if (add_sym(t, sp + 1, nr, -1)) { free(mres); goto nomem; }
        }
        mres[mi * 3] = l;
        mres[mi * 3 + 1] = rr;
        mres[mi * 3 + 2] = table_find_h(t, hh[2], s.ptr, nl, sp + 1, nr);
    }
    /* second pass: the pair table, slots prefetched AHEAD merges early */
    for (uint64_t i = 0; i < nm + AHEAD; i++) {
        if (i < nm) {
            uint64_t k2 = ((uint64_t)(uint32_t)(mres[i * 3] + 1) << 32) | (uint32_t)(mres[i * 3 + 1] + 1);
            __builtin_prefetch(&t->pairs[hash_u64(k2) & t->pair_mask], 1);
        }
        if (i < AHEAD) continue;
        uint64_t mi = i - AHEAD;
        uint64_t key = ((uint64_t)(uint32_t)(mres[mi * 3] + 1) << 32) | (uint32_t)(mres[mi * 3 + 1] + 1);
        uint64_t j = hash_u64(key) & t->pair_mask;
        while (t->pairs[j].key && t->pairs[j].key != key) j = (j + 1) & t->pair_mask;
        if (t->pairs[j].key) continue; /* duplicate merge: the first (lowest) rank wins */
        t->pairs[j].key = key;
        t->pairs[j].rank = (int32_t)mi;
        t->pairs[j].result = mres[mi * 3 + 2];
    }
    free(mres);
    mres = NULL;
    /* special tokens in partition order */
    t->specials = malloc((size_t)n * sizeof *t->specials);
    if (!t->specials) goto nomem;
    for (uint32_t i = 0; i < n; i++) {
        int ty = t->type[i];
        if ((ty == G4_TT_CONTROL || ty == G4_TT_USER_DEFINED || ty == G4_TT_UNKNOWN) && t->text_len[i] > 0)
            t->specials[t->n_specials++] = (int32_t)i;
    }
    g_sort_tok = t;
    qsort(t->specials, t->n_specials, sizeof *t->specials, cmp_special_q);
    g_sort_tok = NULL;
    return t;
nomem:
    return set_error(t, "out of memory while building the tokenizer");
}

void g4_tokenizer_free(g4_tokenizer *t)
{
    if (!t) return;
    free(t->error); free(t->arena); free(t->text_off); free(t->text_len);
    free(t->type); free(t->eog); free(t->table); free(t->pairs); free(t->specials);
    free(t);
}

const char *g4_tokenizer_error(const g4_tokenizer *t) { return t ? t->error : "no tokenizer"; }
uint32_t g4_tokenizer_n_vocab(const g4_tokenizer *t) { return t && !t->error ? t->n_vocab : 0; }
int32_t g4_tokenizer_bos(const g4_tokenizer *t) { return t && !t->error ? t->bos : -1; }
int32_t g4_tokenizer_eos(const g4_tokenizer *t) { return t && !t->error ? t->eos : -1; }
size_t g4_tokenizer_max_len(const g4_tokenizer *t) { return t && !t->error ? t->max_len : 0; }
bool g4_tokenizer_is_eog(const g4_tokenizer *t, int32_t id)
{
    return t && !t->error && id >= 0 && (uint32_t)id < t->n_vocab && t->eog[id];
}
const char *g4_tokenizer_text(const g4_tokenizer *t, int32_t id, size_t *len)
{
    if (!t || t->error || id < 0 || (uint32_t)id >= t->n_vocab) return NULL;
    if (len) *len = t->text_len[id];
    return tok_str(t, id);
}
int g4_tokenizer_type(const g4_tokenizer *t, int32_t id)
{
    if (!t || t->error || id < 0 || (uint32_t)id >= t->n_vocab) return 0;
    return t->type[id];
}

/* ------------------------------------------------------------------------ */
/* encode                                                                    */

/* Length of the valid UTF-8 prefix (strict: no overlongs, surrogates, or
 * values above U+10FFFF). */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t k;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) k = 1;
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        else return i;
        if (k >= n - i) return i; /* truncated */
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t j = 2; j <= k; j++) if ((s[i + j] & 0xC0) != 0x80) return i;
        i += k + 1;
    }
    return n;
}

static size_t utf8_len(unsigned char c)
{
    static const unsigned char lut[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    return lut[c >> 4];
}

typedef struct { int32_t id; int32_t prev, next; uint32_t off, len; } symbol;
typedef struct { int32_t rank, left, right, lid, rid, res; } bigram;

typedef struct {
    const g4_tokenizer *t;
    int32_t *out;
    size_t cap, n;
    symbol *sym; size_t sym_cap;
    bigram *heap; size_t heap_n, heap_cap;
    char *buf; size_t buf_cap;
    bool nomem;
} enc;

static void emit(enc *e, int32_t id)
{
    if (e->n < e->cap) e->out[e->n] = id;
    e->n++;
}

static bool bg_less(const bigram *a, const bigram *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(enc *e, bigram b)
{
    if (e->heap_n == e->heap_cap) {
        size_t nc = e->heap_cap ? e->heap_cap * 2 : 256;
        bigram *h = realloc(e->heap, nc * sizeof *h);
        if (!h) { e->nomem = true; return; }
        e->heap = h; e->heap_cap = nc;
    }
    size_t i = e->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bg_less(&b, &e->heap[p])) break;
        e->heap[i] = e->heap[p];
        i = p;
    }
    e->heap[i] = b;
}

static bigram heap_pop(enc *e)
{
    bigram top = e->heap[0], last = e->heap[--e->heap_n];
    size_t i = 0, n = e->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && bg_less(&e->heap[c + 1], &e->heap[c])) c++;
        if (!bg_less(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n) e->heap[i] = last;
    return top;
}

static void try_pair(enc *e, int32_t left, int32_t right)
{
    if (left < 0 || right < 0) return;
    const g4_tokenizer *t = e->t;
    int32_t l = e->sym[left].id, r = e->sym[right].id;
    if (l < 0 || r < 0) return;
    uint64_t key = ((uint64_t)(uint32_t)(l + 1) << 32) | (uint32_t)(r + 1);
    for (uint64_t j = hash_u64(key) & t->pair_mask;; j = (j + 1) & t->pair_mask) {
        const pair_slot *ps = &t->pairs[j];
        if (!ps->key) return;
        if (ps->key == key) {
            heap_push(e, (bigram){ ps->rank, left, right, l, r, ps->result });
            return;
        }
    }
}

static int32_t lookup(const g4_tokenizer *t, const char *s, size_t n)
{
    return table_find2(t, s, n, NULL, 0);
}

static void emit_bytes(enc *e, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int32_t id = e->t->byte_id[(unsigned char)s[i]];
        emit(e, id >= 0 ? id : e->t->unk);
    }
}

/* BPE over one word (no '\n' inside, or a newline run that is not a token). */
static void bpe_word(enc *e, const char *w, size_t n)
{
    const g4_tokenizer *t = e->t;
    if (n > e->sym_cap) {
        symbol *s = realloc(e->sym, n * sizeof *s);
        if (!s) { e->nomem = true; return; }
        e->sym = s; e->sym_cap = n;
    }
    int32_t ns = 0;
    for (size_t off = 0; off < n;) {
        size_t k = utf8_len((unsigned char)w[off]);
        if (k > n - off) k = n - off;
        symbol *s = &e->sym[ns];
        s->off = (uint32_t)off; s->len = (uint32_t)k;
        s->prev = ns - 1; s->next = ns + 1;
        s->id = lookup(t, w + off, k);
        ns++;
        off += k;
    }
    e->sym[ns - 1].next = -1;
    e->heap_n = 0;
    for (int32_t i = 0; i + 1 < ns; i++) try_pair(e, i, i + 1);
    while (e->heap_n && !e->nomem) {
        bigram b = heap_pop(e);
        symbol *L = &e->sym[b.left], *R = &e->sym[b.right];
        if (L->len == 0 || R->len == 0 || L->id != b.lid || R->id != b.rid || L->next != b.right) continue;
        L->len += R->len;
        L->id = b.res;
        L->next = R->next;
        if (R->next >= 0) e->sym[R->next].prev = b.left;
        R->len = 0;
        try_pair(e, L->prev, b.left);
        try_pair(e, b.left, L->next);
    }
    for (int32_t i = 0; i >= 0; i = e->sym[i].next) {
        const symbol *s = &e->sym[i];
        if (s->id >= 0 && (uint32_t)s->id < t->n_vocab) emit(e, s->id);
        else emit_bytes(e, w + s->off, s->len);
    }
}

static void encode_raw(enc *e, const char *text, size_t len)
{
    const g4_tokenizer *t = e->t;
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
    size_t need = len + 2 * spaces;
    if (need > e->buf_cap) {
        char *b = realloc(e->buf, need);
        if (!b) { e->nomem = true; return; }
        e->buf = b; e->buf_cap = need;
    }
    size_t m = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') { e->buf[m++] = (char)0xE2; e->buf[m++] = (char)0x96; e->buf[m++] = (char)0x81; }
        else e->buf[m++] = text[i];
    }
    const char *s = e->buf;
    for (size_t i = 0; i < m && !e->nomem;) {
        size_t j = i;
        bool nl = s[i] == '\n';
        while (j < m && (s[j] == '\n') == nl) j++;
        if (nl) {
            int32_t id = lookup(t, s + i, j - i);
            if (id >= 0 && (uint32_t)id < t->n_vocab) emit(e, id);
            else bpe_word(e, s + i, j - i);
        } else {
            bpe_word(e, s + i, j - i);
        }
        i = j;
    }
}

/* First occurrence of needle (nl >= 1) in hay[0..hl), or NULL. */
static const char *find_bytes(const char *hay, size_t hl, const char *needle, size_t nl)
{
    if (nl == 0 || hl < nl) return NULL;
    const char *end = hay + (hl - nl) + 1;
    for (const char *p = hay; p < end;) {
        p = memchr(p, needle[0], (size_t)(end - p));
        if (!p) return NULL;
        if (memcmp(p + 1, needle + 1, nl - 1) == 0) return p;
        p++;
    }
    return NULL;
}

typedef struct { size_t off, len; int32_t id; } frag; /* id < 0: raw text */

g4_status g4_tokenizer_encode(const g4_tokenizer *t, const char *text, size_t len,
                              bool add_bos, bool parse_special, int32_t *out, size_t cap,
                              size_t *n_out, char *err, size_t errlen)
{
    if (n_out) *n_out = 0;
    if (!t || t->error) return g4_fail(err, errlen, G4_ERR_UNSUPPORTED, "%s", t ? t->error : "no tokenizer");
    if (!text && len) return g4_fail(err, errlen, G4_ERR_INVALID, "tokenize: text is NULL");
    if (!out && cap) return g4_fail(err, errlen, G4_ERR_INVALID, "tokenize: out is NULL but cap is %zu", cap);
    size_t bad = utf8_valid_prefix((const unsigned char *)text, len);
    if (bad < len)
        return g4_fail(err, errlen, G4_ERR_INVALID, "invalid UTF-8 at byte offset %zu (byte 0x%02X)",
                       bad, (unsigned char)text[bad]);
    enc e = { .t = t, .out = out, .cap = cap };
    /* partition */
    size_t nf = len ? 1 : 0, fcap = 16;
    frag *fr = malloc(fcap * sizeof *fr), *nfr = NULL;
    if (!fr) return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory");
    if (nf) fr[0] = (frag){ 0, len, -1 };
    for (uint32_t si = 0; si < t->n_specials && nf; si++) {
        int32_t id = t->specials[si];
        int ty = t->type[id];
        if (!parse_special && (ty == G4_TT_CONTROL || ty == G4_TT_UNKNOWN || t->eog[id])) continue;
        const char *st = tok_str(t, id);
        size_t sl = t->text_len[id];
        /* quick test: any occurrence at all? */
        bool any = false;
        for (size_t i = 0; i < nf && !any; i++)
            if (fr[i].id < 0 && fr[i].len >= sl && find_bytes(text + fr[i].off, fr[i].len, st, sl)) any = true;
        if (!any) continue;
        size_t nn = 0, ncap = nf * 2 + 8;
        nfr = malloc(ncap * sizeof *nfr);
        if (!nfr) { free(fr); return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory"); }
        for (size_t i = 0; i < nf; i++) {
            frag f = fr[i];
            for (;;) {
                const char *hit = f.id < 0 && f.len >= sl ? find_bytes(text + f.off, f.len, st, sl) : NULL;
                if (nn + 2 >= ncap) {
                    ncap *= 2;
                    frag *g = realloc(nfr, ncap * sizeof *g);
                    if (!g) { free(nfr); free(fr); return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory"); }
                    nfr = g;
                }
                if (!hit) { if (f.len) nfr[nn++] = f; break; }
                size_t at = (size_t)(hit - text);
                if (at > f.off) nfr[nn++] = (frag){ f.off, at - f.off, -1 };
                nfr[nn++] = (frag){ at, sl, id };
                f.len = f.off + f.len - (at + sl);
                f.off = at + sl;
            }
        }
        free(fr);
        fr = nfr; nf = nn;
        nfr = NULL;
    }
    if (add_bos && t->bos >= 0 && !(nf && fr[0].id == t->bos)) emit(&e, t->bos);
    for (size_t i = 0; i < nf && !e.nomem; i++) {
        if (fr[i].id >= 0) emit(&e, fr[i].id);
        else encode_raw(&e, text + fr[i].off, fr[i].len);
    }
    free(fr);
    free(e.sym); free(e.heap); free(e.buf);
    if (e.nomem) return g4_fail(err, errlen, G4_ERR_NOMEM, "out of memory while tokenizing");
    if (n_out) *n_out = e.n;
    if (e.n > cap)
        return g4_fail(err, errlen, G4_ERR_INVALID, "output buffer too small: %zu tokens needed, room for %zu", e.n, cap);
    return G4_OK;
}

/* ------------------------------------------------------------------------ */
/* public API                                                                */

static const g4_tokenizer *model_tok(const g4_model *m, char *err, size_t errlen, g4_status *st)
{
    if (!m) { *st = g4_fail(err, errlen, G4_ERR_INVALID, "model is NULL"); return NULL; }
    if (!m->tok || m->tok->error) {
        *st = g4_fail(err, errlen, G4_ERR_UNSUPPORTED, "%s", m->tok ? m->tok->error : "the model has no tokenizer");
        return NULL;
    }
    *st = G4_OK;
    return m->tok;
}

g4_status g4_tokenize(const g4_model *model, const char *text, size_t len, bool add_bos, bool parse_special,
                      int32_t *out, size_t cap, size_t *n_out, char *err, size_t errlen)
{
    g4_status st;
    if (n_out) *n_out = 0;
    const g4_tokenizer *t = model_tok(model, err, errlen, &st);
    if (!t) return st;
    return g4_tokenizer_encode(t, text, len, add_bos, parse_special, out, cap, n_out, err, errlen);
}

const char *g4_token_text(const g4_model *m, int32_t token)
{
    return m ? g4_tokenizer_text(m->tok, token, NULL) : NULL;
}

/* Bytes of one token's piece into buf (when it fits); returns the length. */
static int64_t piece(const g4_tokenizer *t, int32_t id, bool special, char *buf, size_t cap)
{
    size_t n = t->text_len[id];
    const char *s = tok_str(t, id);
    int ty = t->type[id];
    if (ty == G4_TT_BYTE) {
        unsigned v;
        if (n == 6 && sscanf(s, "<0x%2X>", &v) == 1) {
            if (cap >= 1) buf[0] = (char)v;
            return 1;
        }
    }
    if ((ty == G4_TT_CONTROL || ty == G4_TT_UNKNOWN) && !special) return 0;
    if (ty == G4_TT_CONTROL || ty == G4_TT_UNKNOWN || ty == G4_TT_USER_DEFINED) {
        if (n && n <= cap) memcpy(buf, s, n);
        return (int64_t)n;
    }
    /* NORMAL / UNUSED: U+2581 -> ' ' */
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 && (unsigned char)s[i + 2] == 0x81) {
            if (o < cap) buf[o] = ' ';
            o++; i += 3;
        } else {
            if (o < cap) buf[o] = s[i];
            o++; i++;
        }
    }
    return (int64_t)o;
}

int64_t g4_token_piece(const g4_model *m, int32_t token, bool special, char *buf, size_t cap)
{
    if (!m || !m->tok || m->tok->error || token < 0 || (uint32_t)token >= m->tok->n_vocab) return -1;
    if (!buf) cap = 0;
    int64_t n = piece(m->tok, token, special, NULL, 0);
    if ((uint64_t)n <= cap) piece(m->tok, token, special, buf, cap);
    return n;
}

size_t g4_token_max_bytes(const g4_model *m) { return m ? g4_tokenizer_max_len(m->tok) : 0; }
uint32_t g4_vocab_size(const g4_model *m) { return m ? g4_tokenizer_n_vocab(m->tok) : 0; }
int32_t g4_token_bos(const g4_model *m) { return m ? g4_tokenizer_bos(m->tok) : -1; }
int32_t g4_token_eos(const g4_model *m) { return m ? g4_tokenizer_eos(m->tok) : -1; }
bool g4_token_is_eog(const g4_model *m, int32_t token) { return m && g4_tokenizer_is_eog(m->tok, token); }

/* ------------------------------------------------------------------------ */
/* streaming detokenizer                                                     */

struct g4_detok {
    const g4_tokenizer *t;
    bool special;
    unsigned char pend[4];  /* bytes of an incomplete UTF-8 sequence */
    unsigned pend_n, need;  /* held bytes, total length of the sequence */
    char *tmp; size_t tmp_cap;
};

g4_detok *g4_detok_new(const g4_model *m, bool special)
{
    if (!m || !m->tok || m->tok->error) return NULL;
    g4_detok *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->t = m->tok;
    d->special = special;
    d->tmp_cap = m->tok->max_len + 1;
    d->tmp = malloc(d->tmp_cap);
    if (!d->tmp) { free(d); return NULL; }
    return d;
}

void g4_detok_free(g4_detok *d)
{
    if (!d) return;
    free(d->tmp);
    free(d);
}

/* Runs bytes through the UTF-8 assembler; writes to o (when o != NULL) and
 * returns the output length.  The state is updated only when o != NULL. */
typedef struct { unsigned char pend[4]; unsigned pend_n, need; } u8state;

static size_t u8_feed(u8state *s, const unsigned char *in, size_t n, char *o)
{
    static const char fffd[3] = { (char)0xEF, (char)0xBF, (char)0xBD };
    size_t w = 0;
#define PUT(c) do { if (o) o[w] = (char)(c); w++; } while (0)
#define PUTFFFD() do { for (int q_ = 0; q_ < 3; q_++) PUT(fffd[q_]); } while (0)
    for (size_t i = 0; i < n; i++) {
        unsigned c = in[i];
        if (s->pend_n) {
            unsigned lo = 0x80, hi = 0xBF;
            if (s->pend_n == 1) {
                unsigned l = s->pend[0];
                if (l == 0xE0) lo = 0xA0;
                else if (l == 0xED) hi = 0x9F;
                else if (l == 0xF0) lo = 0x90;
                else if (l == 0xF4) hi = 0x8F;
            }
            if (c >= lo && c <= hi) {
                s->pend[s->pend_n++] = (unsigned char)c;
                if (s->pend_n == s->need) {
                    for (unsigned q = 0; q < s->pend_n; q++) PUT(s->pend[q]);
                    s->pend_n = 0;
                }
                continue;
            }
            PUTFFFD();
            s->pend_n = 0; /* and c starts afresh */
        }
        if (c < 0x80) PUT(c);
        else if (c >= 0xC2 && c <= 0xDF) { s->pend[0] = (unsigned char)c; s->pend_n = 1; s->need = 2; }
        else if (c >= 0xE0 && c <= 0xEF) { s->pend[0] = (unsigned char)c; s->pend_n = 1; s->need = 3; }
        else if (c >= 0xF0 && c <= 0xF4) { s->pend[0] = (unsigned char)c; s->pend_n = 1; s->need = 4; }
        else PUTFFFD();
    }
#undef PUT
#undef PUTFFFD
    return w;
}

g4_status g4_detok_push(g4_detok *d, int32_t token, char *buf, size_t cap, size_t *n)
{
    if (n) *n = 0;
    if (!d) return G4_ERR_INVALID;
    if (token < 0 || (uint32_t)token >= d->t->n_vocab) return G4_ERR_INVALID;
    int64_t pl = piece(d->t, token, d->special, d->tmp, d->tmp_cap);
    u8state s;
    memcpy(s.pend, d->pend, 4); s.pend_n = d->pend_n; s.need = d->need;
    u8state probe = s;
    size_t need = u8_feed(&probe, (const unsigned char *)d->tmp, (size_t)pl, NULL);
    if (n) *n = need;
    if (need > cap || (need && !buf)) return G4_ERR_INVALID;
    u8_feed(&s, (const unsigned char *)d->tmp, (size_t)pl, buf);
    memcpy(d->pend, s.pend, 4); d->pend_n = s.pend_n; d->need = s.need;
    return G4_OK;
}

g4_status g4_detok_flush(g4_detok *d, char *buf, size_t cap, size_t *n)
{
    if (n) *n = 0;
    if (!d) return G4_ERR_INVALID;
    if (!d->pend_n) return G4_OK;
    if (n) *n = 3;
    if (cap < 3 || !buf) return G4_ERR_INVALID;
    buf[0] = (char)0xEF; buf[1] = (char)0xBF; buf[2] = (char)0xBD;
    d->pend_n = 0;
    return G4_OK;
}
