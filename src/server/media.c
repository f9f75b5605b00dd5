/*
 * media.c - images and audio in requests, and the prompt with its media.
 *
 * image_url parts carry data: URLs (base64), or file:// URLs that must
 * resolve (realpath, so no "..", no symlink escapes) inside --media-dir;
 * remote http(s) URLs are refused (the server never fetches).  input_audio
 * parts carry base64 audio.  Each item is decoded, embedded by the
 * projector, and identified by the SHA-256 of its source bytes and its
 * token budget: the prompt cache compares these, so a conversation that
 * repeats an image reuses its positions instead of reading it again.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "server/server.h"

/* ------------------------------------------------------------ SHA-256 (FIPS 180-4) */

typedef struct { uint32_t h[8]; uint64_t len; uint8_t buf[64]; size_t nbuf; } sha256;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(sha256 *s, const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d; s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

static void sha_init(sha256 *s)
{
    static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy(s->h, iv, sizeof iv);
    s->len = 0;
    s->nbuf = 0;
}

static void sha_update(sha256 *s, const void *data, size_t n)
{
    const uint8_t *p = data;
    s->len += n;
    while (n) {
        size_t k = 64 - s->nbuf < n ? 64 - s->nbuf : n;
        memcpy(s->buf + s->nbuf, p, k);
        s->nbuf += k;
        p += k;
        n -= k;
        if (s->nbuf == 64) { sha_block(s, s->buf); s->nbuf = 0; }
    }
}

static void sha_final(sha256 *s, uint8_t out[32])
{
    uint64_t bits = s->len * 8;
    uint8_t pad = 0x80;
    sha_update(s, &pad, 1);
    pad = 0;
    while (s->nbuf != 56) sha_update(s, &pad, 1);
    uint8_t L[8];
    for (int i = 0; i < 8; i++) L[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha_update(s, L, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

/* ------------------------------------------------------------ base64 */

static int b64v(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Standard or URL-safe alphabet, padding optional, no whitespace.
 * NULL with the offending offset in *bad. */
static uint8_t *b64_decode(const char *s, size_t n, size_t *out_n, size_t *bad)
{
    while (n && s[n - 1] == '=') n--;
    if (n % 4 == 1) { *bad = n; return NULL; }
    uint8_t *out = malloc(n / 4 * 3 + 3);
    if (!out) { *bad = SIZE_MAX; return NULL; }
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64v((unsigned char)s[i]);
        if (v < 0) { free(out); *bad = i; return NULL; }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    *out_n = o;
    return out;
}

/* ------------------------------------------------------------ media items */

static bool list_push(srv_media_list *l, const srv_media *m)
{
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 4;
        srv_media *g = realloc(l->m, cap * sizeof *g);
        if (!g) return false;
        l->m = g;
        l->cap = cap;
    }
    l->m[l->n++] = *m;
    return true;
}

void media_list_free(srv_media_list *l)
{
    for (uint32_t i = 0; i < l->n; i++) free(l->m[i].rows);
    free(l->m);
    memset(l, 0, sizeof *l);
}

static void media_digest(const void *data, size_t len, uint32_t kind, uint32_t budget, uint8_t d[32])
{
    sha256 h;
    sha_init(&h);
    uint32_t tag[2] = { kind, budget };
    sha_update(&h, tag, sizeof tag);
    sha_update(&h, data, len);
    sha_final(&h, d);
}

static uint64_t digest_key(const uint8_t d[32])
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = x << 8 | d[i];
    return x;
}

/* ------------------------------------------------------------ embedding cache */

/* The projector's output for recently seen media, by SHA-256 of the source
 * bytes and budget: turn two of a conversation that repeats an image gets
 * its rows without decoding or embedding it again (and its positions from
 * the slot's KV cache).  Bounded in entries and bytes; least recently used
 * goes first. */
#define EMB_CACHE_ENTRIES 16
#define EMB_CACHE_BYTES (512ull << 20)

static struct {
    uint8_t  digest[32];
    float   *rows;
    uint32_t n, n_embd;
    uint64_t used;      /* LRU clock */
} emb_cache[EMB_CACHE_ENTRIES];
static uint64_t emb_clock, emb_bytes;
static pthread_mutex_t emb_mu = PTHREAD_MUTEX_INITIALIZER;

/* A malloc'd copy of the cached rows, or NULL. */
static float *emb_lookup(const uint8_t d[32], uint32_t *n)
{
    float *out = NULL;
    pthread_mutex_lock(&emb_mu);
    for (int i = 0; i < EMB_CACHE_ENTRIES; i++) {
        if (!emb_cache[i].rows || memcmp(emb_cache[i].digest, d, 32)) continue;
        size_t bytes = (size_t)emb_cache[i].n * emb_cache[i].n_embd * sizeof(float);
        out = malloc(bytes ? bytes : 1);
        if (out) {
            memcpy(out, emb_cache[i].rows, bytes);
            *n = emb_cache[i].n;
            emb_cache[i].used = ++emb_clock;
        }
        break;
    }
    pthread_mutex_unlock(&emb_mu);
    return out;
}

static void emb_store(const uint8_t d[32], const float *rows, uint32_t n, uint32_t n_embd)
{
    uint64_t bytes = (uint64_t)n * n_embd * sizeof(float);
    if (bytes > EMB_CACHE_BYTES / 4) return;
    float *copy = malloc(bytes ? bytes : 1);
    if (!copy) return;
    memcpy(copy, rows, bytes);
    pthread_mutex_lock(&emb_mu);
    for (;;) {
        int victim = -1, free_i = -1;
        for (int i = 0; i < EMB_CACHE_ENTRIES; i++) {
            if (!emb_cache[i].rows) { if (free_i < 0) free_i = i; continue; }
            if (victim < 0 || emb_cache[i].used < emb_cache[victim].used) victim = i;
        }
        if (free_i >= 0 && emb_bytes + bytes <= EMB_CACHE_BYTES) {
            memcpy(emb_cache[free_i].digest, d, 32);
            emb_cache[free_i].rows = copy;
            emb_cache[free_i].n = n;
            emb_cache[free_i].n_embd = n_embd;
            emb_cache[free_i].used = ++emb_clock;
            emb_bytes += bytes;
            break;
        }
        if (victim < 0) { free(copy); break; }
        emb_bytes -= (uint64_t)emb_cache[victim].n * emb_cache[victim].n_embd * sizeof(float);
        free(emb_cache[victim].rows);
        emb_cache[victim].rows = NULL;
    }
    pthread_mutex_unlock(&emb_mu);
}

void media_cache_free(void)
{
    pthread_mutex_lock(&emb_mu);
    for (int i = 0; i < EMB_CACHE_ENTRIES; i++) {
        free(emb_cache[i].rows);
        emb_cache[i].rows = NULL;
    }
    emb_bytes = 0;
    pthread_mutex_unlock(&emb_mu);
}

/* Reads a file:// URL's file when it lies inside --media-dir. */
static uint8_t *read_media_file(srv_server *s, const char *url, const char *param, size_t *len, srv_err *e)
{
    if (!s->cfg.media_dir) {
        srv_fail(e, 400, "invalid_media", param, "%s: file:// URLs are refused (the server was started without --media-dir)", param);
        return NULL;
    }
    const char *path = url + 7;
    if (!strncmp(path, "localhost/", 10)) path += 9;
    if (path[0] != '/') { srv_fail(e, 400, "invalid_media", param, "%s: a file:// URL needs an absolute path", param); return NULL; }
    char real[PATH_MAX];
    if (!realpath(path, real)) { srv_fail(e, 400, "invalid_media", param, "%s: cannot open the file: %s", param, strerror(errno)); return NULL; }
    size_t dl = strlen(s->cfg.media_dir);
    if (strncmp(real, s->cfg.media_dir, dl) != 0 || (real[dl] != '/' && !(dl == 1 && s->cfg.media_dir[0] == '/'))) {
        srv_fail(e, 400, "invalid_media", param, "%s: the file is outside --media-dir", param);
        return NULL;
    }
    FILE *f = fopen(real, "rb");
    struct stat stt;
    if (!f || fstat(fileno(f), &stt) != 0 || !S_ISREG(stt.st_mode)) {
        if (f) fclose(f);
        srv_fail(e, 400, "invalid_media", param, "%s: not a readable regular file", param);
        return NULL;
    }
    if ((uint64_t)stt.st_size > s->cfg.max_body) {
        fclose(f);
        srv_fail(e, 400, "invalid_media", param, "%s: the file is larger than --max-body", param);
        return NULL;
    }
    uint8_t *buf = malloc((size_t)stt.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)stt.st_size, f) : 0;
    fclose(f);
    if (!buf || n != (size_t)stt.st_size) { free(buf); srv_fail(e, 400, "invalid_media", param, "%s: read error", param); return NULL; }
    *len = n;
    return buf;
}

/* data:[mime][;base64],DATA -> bytes */
static uint8_t *data_url(const char *url, size_t url_len, const char *param, size_t *len, srv_err *e)
{
    const char *comma = memchr(url, ',', url_len);
    if (!comma) { srv_fail(e, 400, "invalid_media", param, "%s: malformed data: URL (no comma)", param); return NULL; }
    size_t hl = (size_t)(comma - url);
    if (hl < 12 || strncmp(comma - 7, ";base64", 7) != 0) {
        srv_fail(e, 400, "invalid_media", param, "%s: data: URLs must be base64 (data:MIME;base64,...)", param);
        return NULL;
    }
    size_t bad = 0;
    uint8_t *b = b64_decode(comma + 1, url_len - hl - 1, len, &bad);
    if (!b) {
        if (bad == SIZE_MAX) srv_fail(e, 500, "internal_error", NULL, "out of memory");
        else srv_fail(e, 400, "invalid_media", param, "%s: invalid base64 at offset %zu of the data", param, bad);
    }
    return b;
}

static bool embed_image(srv_server *s, const uint8_t *data, size_t len, uint32_t budget, const char *param,
                        srv_media_list *out, srv_err *e)
{
    char err[256];
    uint8_t dg[32];
    media_digest(data, len, 1, budget, dg);
    srv_media m = { .kind = G4_EMBD_IMAGE, .hash = digest_key(dg) };
    m.rows = emb_lookup(dg, &m.n);
    if (!m.rows) {
        g4_image img;
        memset(&img, 0, sizeof img);
        if (g4_image_decode(data, len, 0, &img, err, sizeof err) != G4_OK) {
            srv_fail(e, 400, "invalid_media", param, "%s: %s", param, err);
            return false;
        }
        g4_embedding emb;
        memset(&emb, 0, sizeof emb);
        pthread_mutex_lock(&s->mm_mu);
        g4_status st = g4_mmproj_embed_image(s->mmproj, &img, budget, &emb, err, sizeof err);
        pthread_mutex_unlock(&s->mm_mu);
        g4_image_free(&img);
        if (st != G4_OK) {
            srv_fail(e, st == G4_ERR_UNSUPPORTED ? 400 : 500, st == G4_ERR_UNSUPPORTED ? "unsupported_media" : "internal_error", param,
                     "%s: image embedding failed: %s", param, err);
            return false;
        }
        emb_store(dg, emb.rows, emb.n_tokens, emb.n_embd);
        m.rows = emb.rows;
        m.n = emb.n_tokens;
    }
    if (m.n > s->cfg.n_batch) {
        free(m.rows);
        srv_fail(e, 400, "invalid_media", param, "%s: the image takes %u tokens, more than the batch (--batch %u)", param, m.n, s->cfg.n_batch);
        return false;
    }
    if (!list_push(out, &m)) { free(m.rows); srv_fail(e, 500, "internal_error", NULL, "out of memory"); return false; }
    return true;
}

bool media_from_audio_bytes(srv_server *s, const void *data, size_t len, const char *param, srv_media_list *out, srv_err *e)
{
    char err[256];
    if (!s->mmproj || !s->mm_info_audio) {
        srv_fail(e, 400, "unsupported_media", param, "%s: audio input needs a projector with audio (--mmproj)", param);
        return false;
    }
    uint8_t dg[32];
    media_digest(data, len, 2, 0, dg);
    srv_media m = { .kind = G4_EMBD_CAUSAL, .hash = digest_key(dg) };
    m.rows = emb_lookup(dg, &m.n);
    if (!m.rows) {
        g4_audio a;
        memset(&a, 0, sizeof a);
        if (g4_audio_decode(data, len, G4_AUDIO_CHUNK_SECONDS, &a, err, sizeof err) != G4_OK) {
            srv_fail(e, 400, "invalid_media", param, "%s: %s", param, err);
            return false;
        }
        if (a.n_samples == 0) {
            g4_audio_free(&a);
            srv_fail(e, 400, "invalid_media", param, "%s: the audio is empty", param);
            return false;
        }
        g4_embedding emb;
        memset(&emb, 0, sizeof emb);
        pthread_mutex_lock(&s->mm_mu);
        g4_status st = g4_mmproj_embed_audio(s->mmproj, a.samples, a.n_samples, &emb, err, sizeof err);
        pthread_mutex_unlock(&s->mm_mu);
        g4_audio_free(&a);
        if (st != G4_OK) {
            srv_fail(e, st == G4_ERR_UNSUPPORTED ? 400 : 500, st == G4_ERR_UNSUPPORTED ? "unsupported_media" : "internal_error", param,
                     "%s: audio embedding failed: %s", param, err);
            return false;
        }
        emb_store(dg, emb.rows, emb.n_tokens, emb.n_embd);
        m.rows = emb.rows;
        m.n = emb.n_tokens;
    }
    if (!list_push(out, &m)) { free(m.rows); srv_fail(e, 500, "internal_error", NULL, "out of memory"); return false; }
    return true;
}

bool media_from_part(srv_server *s, json_t *part, const char *param, srv_media_list *out, srv_err *e)
{
    const char *type = json_string_value(json_object_get(part, "type"));
    bool audio = !strcmp(type, "input_audio") || !strcmp(type, "audio");
    if (audio) {
        json_t *ia = json_object_get(part, !strcmp(type, "audio") ? "audio" : "input_audio");
        json_t *d = json_is_object(ia) ? json_object_get(ia, "data") : NULL;
        if (!json_is_string(d)) { srv_fail(e, 400, "invalid_type", param, "%s.%s.data: must be a base64 string", param, type); return false; }
        const char *fmt = json_string_value(json_object_get(ia, "format"));
        if (fmt && strcmp(fmt, "wav") && strcmp(fmt, "mp3") && strcmp(fmt, "flac") && strcmp(fmt, "ogg") && strcmp(fmt, "opus")) {
            srv_fail(e, 400, "unsupported_media", param, "%s.%s.format: '%.20s' is not supported (wav, mp3, flac, ogg)", param, type, fmt);
            return false;
        }
        if (!s->mmproj || !s->mm_info_audio) {
            srv_fail(e, 400, "unsupported_media", param, "%s: audio input needs a projector with audio (--mmproj)", param);
            return false;
        }
        size_t n = 0, bad = 0;
        uint8_t *bytes = b64_decode(json_string_value(d), json_string_length(d), &n, &bad);
        if (!bytes) {
            if (bad == SIZE_MAX) srv_fail(e, 500, "internal_error", NULL, "out of memory");
            else srv_fail(e, 400, "invalid_media", param, "%s.%s.data: invalid base64 at offset %zu", param, type, bad);
            return false;
        }
        bool ok = media_from_audio_bytes(s, bytes, n, param, out, e);
        free(bytes);
        return ok;
    }
    /* images */
    json_t *iu = json_object_get(part, !strcmp(type, "image") ? "image" : "image_url");
    const char *url = NULL;
    size_t url_len = 0;
    uint32_t budget = 280;
    if (json_is_string(iu)) { url = json_string_value(iu); url_len = json_string_length(iu); }
    else if (json_is_object(iu) && json_is_string(json_object_get(iu, "url"))) {
        url = json_string_value(json_object_get(iu, "url"));
        url_len = json_string_length(json_object_get(iu, "url"));
        const char *detail = json_string_value(json_object_get(iu, "detail"));
        if (detail) {
            if (!strcmp(detail, "low")) budget = 70;
            else if (!strcmp(detail, "high")) budget = 1120;
            else if (strcmp(detail, "auto")) { srv_fail(e, 400, "invalid_value", param, "%s.image_url.detail: '%.20s' is not low, high or auto", param, detail); return false; }
        }
    } else {
        srv_fail(e, 400, "invalid_type", param, "%s.%s: must be a URL string or {\"url\": ...}", param, type);
        return false;
    }
    if (!s->mmproj || !s->mm_info_vision) {
        srv_fail(e, 400, "unsupported_media", param, "%s: image input needs a projector with vision (--mmproj)", param);
        return false;
    }
    uint8_t *bytes = NULL;
    size_t n = 0;
    if (url_len > 5 && !strncasecmp(url, "data:", 5)) bytes = data_url(url, url_len, param, &n, e);
    else if (url_len > 7 && !strncasecmp(url, "file://", 7)) bytes = read_media_file(s, url, param, &n, e);
    else if (!strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8)) {
        srv_fail(e, 400, "unsupported_media", param, "%s: remote URLs are not fetched; send the image as a data: URL", param);
        return false;
    } else {
        srv_fail(e, 400, "invalid_media", param, "%s: the URL must be a data: URL (or file:// with --media-dir)", param);
        return false;
    }
    if (!bytes) return false;
    bool ok = embed_image(s, bytes, n, budget, param, out, e);
    free(bytes);
    return ok;
}

/* ------------------------------------------------------------ the prompt */

bool prompt_build(srv_server *s, const char *text, bool add_bos, srv_media_list *ml, srv_prompt *p, srv_err *e)
{
    size_t len = strlen(text);
    int32_t *ids = malloc((len + 2) * sizeof *ids);
    size_t n = 0;
    char err[256];
    memset(p, 0, sizeof *p);
    if (!ids) { srv_fail(e, 500, "internal_error", NULL, "out of memory"); return false; }
    if (g4_tokenize(s->model, text, len, add_bos, true, ids, len + 2, &n, err, sizeof err) != G4_OK) {
        free(ids);
        srv_fail(e, 400, "invalid_value", "messages", "the prompt cannot be tokenized: %s", err);
        return false;
    }
    /* positions: every placeholder becomes begin + rows + end */
    uint64_t total = 0;
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool img = s->tok_image >= 0 && ids[i] == s->tok_image, aud = s->tok_audio >= 0 && ids[i] == s->tok_audio;
        if (!img && !aud) { total++; continue; }
        if (k >= ml->n || (ml->m[k].kind == G4_EMBD_IMAGE) != img) {
            free(ids);
            srv_fail(e, 400, "invalid_value", "messages",
                     "the prompt's media placeholders do not match the media parts (a media placeholder written as text, or media in a place the template does not support)");
            return false;
        }
        total += 2 + (uint64_t)ml->m[k].n;
        k++;
    }
    if (k != ml->n) {
        free(ids);
        srv_fail(e, 400, "unsupported_media", "messages", "%u media part(s) are not rendered into the prompt (media is supported in user, assistant and tool messages)", ml->n - k);
        return false;
    }
    if (total > UINT32_MAX / 2) { free(ids); srv_fail(e, 400, "context_length_exceeded", "messages", "the prompt is too long"); return false; }
    p->toks = malloc((total ? total : 1) * sizeof *p->toks);
    p->keys = malloc((total ? total : 1) * sizeof *p->keys);
    p->cont = calloc(total ? total : 1, 1);
    p->media = ml->n ? calloc(ml->n, sizeof *p->media) : NULL;
    if (!p->toks || !p->keys || !p->cont || (ml->n && !p->media)) {
        free(ids);
        srv_prompt_free(p);
        srv_fail(e, 500, "internal_error", NULL, "out of memory");
        return false;
    }
    uint32_t pos = 0;
    k = 0;
    for (size_t i = 0; i < n; i++) {
        bool img = s->tok_image >= 0 && ids[i] == s->tok_image, aud = s->tok_audio >= 0 && ids[i] == s->tok_audio;
        if (!img && !aud) {
            p->toks[pos] = ids[i];
            p->keys[pos] = (uint32_t)ids[i];
            pos++;
            continue;
        }
        srv_media *m = &ml->m[k];
        int32_t open = img ? s->tok_boi : s->tok_boa, close = img ? s->tok_eoi : s->tok_eoa;
        p->toks[pos] = open;
        p->keys[pos] = (uint32_t)open;
        pos++;
        m->pos = pos;
        for (uint32_t j = 0; j < m->n; j++) {
            p->toks[pos + j] = -1;
            p->keys[pos + j] = (1ull << 63) | ((m->hash + j) & ~(1ull << 63));
            p->cont[pos + j] = j > 0;
        }
        pos += m->n;
        p->toks[pos] = close;
        p->keys[pos] = (uint32_t)close;
        pos++;
        p->media[p->n_media++] = *m;
        m->rows = NULL;   /* moved */
        k++;
    }
    p->n = pos;
    free(ids);
    return true;
}
