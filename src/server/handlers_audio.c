/*
 * handlers_audio.c - POST /v1/audio/transcriptions.
 *
 * multipart/form-data fields: file (required), model, language, prompt,
 * response_format (json | text | verbose_json | srt | vtt), stream,
 * temperature; others are ignored.  The audio is decoded once, cut into
 * chunks of at most G4_AUDIO_CHUNK_SECONDS (the model's design maximum per
 * audio item), and each chunk becomes one user turn: the audio, then
 * Google's transcription prompt.  The chunks run one after the other in
 * the same slot (srv_req segments); their texts are joined with a space.
 * Timestamps are per chunk (the model gives none inside a chunk).
 */
#define _GNU_SOURCE   /* memmem */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/server.h"

#define MAX_AUDIO_SECONDS (20 * 60)
/* A chunk's transcript is bounded by its duration: speech runs at a few
 * tokens per second, so 64 + 16 per second is generous, and a looping
 * model stops after seconds instead of running to the context's end. */
#define SEG_BASE_TOKENS 64
#define SEG_TOKENS_PER_SECOND 16
/* The same piece this many times in a row ends the chunk (a loop). */
#define SEG_REPEAT_STOP 32

typedef enum { RF_JSON, RF_TEXT, RF_VERBOSE, RF_SRT, RF_VTT } resp_fmt;

typedef struct {
    srv_server *s;
    resp_fmt rf;
    bool     stream;
    char    *language;
    g4_outparse *op;        /* markers and thoughts are not transcript text */
    srv_req *r;             /* during a push */
    bool     ended;
    sbuf     cur;           /* text of the current chunk */
    sbuf     all;           /* joined text */
    json_t  *segments;      /* verbose_json / srt / vtt: per chunk */
    double   chunk_s, duration_s;
    uint32_t seg_index;
    int64_t  seg_tokens;     /* tokens of the current chunk */
    char     last[64];       /* the previous piece, for the loop stop */
    size_t   last_len;
    int      repeats;
} tr_state;

/* Tokens the chunk seg_index may produce. */
static int64_t seg_budget(const tr_state *st)
{
    double start = st->seg_index * st->chunk_s;
    double secs = st->duration_s - start < st->chunk_s ? st->duration_s - start : st->chunk_s;
    if (secs < 0) secs = 0;
    return SEG_BASE_TOKENS + (int64_t)ceil(secs * SEG_TOKENS_PER_SECOND);
}

/* ------------------------------------------------------------ multipart */

typedef struct {
    const char *name;  size_t name_len;
    const char *data;  size_t len;
    bool        is_file;
} mp_part;

/* Parameter value from a header like: form-data; name="file"; filename="a.wav" */
static bool header_param(const char *h, size_t hl, const char *key, const char **v, size_t *vl)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 1 < hl; i++) {
        if ((i == 0 || h[i - 1] == ';' || h[i - 1] == ' ' || h[i - 1] == '\t') && !strncasecmp(h + i, key, kl) && h[i + kl] == '=') {
            const char *p = h + i + kl + 1, *end = h + hl;
            if (p < end && *p == '"') {
                const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
                if (!q) return false;
                *v = p + 1;
                *vl = (size_t)(q - p - 1);
            } else {
                const char *q = p;
                while (q < end && *q != ';' && *q != ' ' && *q != '\r') q++;
                *v = p;
                *vl = (size_t)(q - p);
            }
            return true;
        }
    }
    return false;
}

/* Splits body into parts (at most cap).  Returns the count, or -1 with e set. */
static int mp_parse(const char *ct, const char *body, size_t len, mp_part *parts, int cap, srv_err *e)
{
    const char *b;
    size_t bl;
    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0) {
        srv_fail(e, 400, "invalid_value", NULL, "the request must be multipart/form-data (with a 'file' field)");
        return -1;
    }
    if (!header_param(ct, strlen(ct), "boundary", &b, &bl) || bl == 0 || bl > 70) {
        srv_fail(e, 400, "invalid_value", NULL, "multipart/form-data without a valid boundary");
        return -1;
    }
    char delim[80];
    delim[0] = '-';
    delim[1] = '-';
    memcpy(delim + 2, b, bl);
    size_t dl = bl + 2;
    /* the first delimiter may start the body or follow a preamble line */
    const char *p = memmem(body, len, delim, dl);
    if (!p) { srv_fail(e, 400, "invalid_value", NULL, "multipart body without its boundary"); return -1; }
    const char *end = body + len;
    int n = 0;
    for (;;) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') break;   /* closing delimiter */
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') { srv_fail(e, 400, "invalid_value", NULL, "malformed multipart delimiter line"); return -1; }
        p += 2;
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hend) { srv_fail(e, 400, "invalid_value", NULL, "multipart part without the blank line after its headers"); return -1; }
        /* the body runs to CRLF + delimiter */
        char nd[84];
        nd[0] = '\r';
        nd[1] = '\n';
        memcpy(nd + 2, delim, dl);
        const char *data = hend + 4;
        const char *next = memmem(data, (size_t)(end - data), nd, dl + 2);
        if (!next) { srv_fail(e, 400, "invalid_value", NULL, "multipart part not terminated by the boundary"); return -1; }
        if (n == cap) { srv_fail(e, 400, "invalid_value", NULL, "too many multipart fields (at most %d)", cap); return -1; }
        mp_part *mp = &parts[n];
        memset(mp, 0, sizeof *mp);
        /* Content-Disposition among the headers */
        const char *h = p;
        while (h < hend) {
            const char *le = memmem(h, (size_t)(hend - h) + 2, "\r\n", 2);
            if (!le) le = hend;
            size_t ll = (size_t)(le - h);
            if (ll > 20 && !strncasecmp(h, "content-disposition:", 20)) {
                const char *v;
                size_t vl;
                if (header_param(h + 20, ll - 20, "name", &v, &vl)) { mp->name = v; mp->name_len = vl; }
                if (header_param(h + 20, ll - 20, "filename", &v, &vl)) mp->is_file = true;
            }
            h = le + 2;
        }
        if (!mp->name) { srv_fail(e, 400, "invalid_value", NULL, "a multipart part has no name"); return -1; }
        mp->data = data;
        mp->len = (size_t)(next - data);
        n++;
        p = next + 2;
    }
    return n;
}

static const mp_part *field(const mp_part *parts, int n, const char *name)
{
    const mp_part *found = NULL;
    for (int i = 0; i < n; i++)
        if (parts[i].name_len == strlen(name) && !memcmp(parts[i].name, name, parts[i].name_len)) found = &parts[i];
    return found;
}

/* A text field as a NUL-terminated copy (NULL when absent; *bad on error). */
static char *text_field(const mp_part *parts, int n, const char *name, size_t max, srv_err *e, bool *bad)
{
    const mp_part *f = field(parts, n, name);
    if (!f) return NULL;
    if (f->len > max || memchr(f->data, 0, f->len) || !jr_utf8_ok(f->data, f->len)) {
        srv_fail(e, 400, "invalid_value", name, "%s: must be UTF-8 text of at most %zu bytes", name, max);
        *bad = true;
        return NULL;
    }
    char *s = malloc(f->len + 1);
    if (!s) { srv_fail(e, 500, "internal_error", NULL, "out of memory"); *bad = true; return NULL; }
    memcpy(s, f->data, f->len);
    s[f->len] = 0;
    return s;
}

/* ------------------------------------------------------------ formatter */

static void sse_event(srv_req *r, json_t *o)
{
    char *js = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!js) { r->out.oom = true; return; }
    sb_adds(&r->out, "data: ");
    sb_adds(&r->out, js);
    sb_adds(&r->out, "\n\n");
    free(js);
}

static void t_content(tr_state *st, const char *text, size_t n)
{
    srv_req *r = st->r;
    /* a new chunk's text is separated from the previous one by a space */
    if (!st->cur.n && st->all.n && text[0] != ' ') {
        sb_add(&st->all, " ", 1);
        if (st->stream) sse_event(r, json_pack("{s:s,s:s}", "type", "transcript.text.delta", "delta", " "));
    }
    sb_add(&st->cur, text, n);
    sb_add(&st->all, text, n);
    if (st->stream) {
        json_t *d = json_stringn(text, n);
        sse_event(r, json_pack("{s:s,s:o}", "type", "transcript.text.delta", "delta", d ? d : json_string("\xEF\xBF\xBD")));
    }
}

static void t_event(const g4_out_event *ev, void *user)
{
    tr_state *st = user;
    if (ev->kind == G4_OUT_CONTENT && ev->len) t_content(st, ev->text, ev->len);
    else if (ev->kind == G4_OUT_END) st->ended = true;
}

static bool t_on_text(srv_req *r, const char *text, size_t len, const srv_logprob *lp)
{
    tr_state *st = r->fmt_state;
    st->r = r;
    /* a loop: the same piece again and again */
    if (len == st->last_len && len <= sizeof st->last && !memcmp(text, st->last, len)) {
        if (++st->repeats >= SEG_REPEAT_STOP) return true;
    } else {
        st->repeats = 1;
        st->last_len = len <= sizeof st->last ? len : sizeof st->last + 1;
        if (len <= sizeof st->last) memcpy(st->last, text, len);
    }
    if (len && g4_outparse_push(st->op, text, len, t_event, st) == 1) return true;
    return st->ended || ++st->seg_tokens >= seg_budget(st);
}

static void end_segment(tr_state *st)
{
    double start = st->seg_index * st->chunk_s;
    double end = fmin(start + st->chunk_s, st->duration_s);
    /* trim: the model's leading/trailing whitespace is not text */
    size_t a = 0, b = st->cur.n;
    while (a < b && (st->cur.p[a] == ' ' || st->cur.p[a] == '\n')) a++;
    while (b > a && (st->cur.p[b - 1] == ' ' || st->cur.p[b - 1] == '\n')) b--;
    json_t *t = json_stringn(st->cur.p ? st->cur.p + a : "", b - a);
    json_array_append_new(st->segments, json_pack("{s:I,s:I,s:f,s:f,s:o,s:[],s:f,s:f,s:f,s:f}", "id", (json_int_t)st->seg_index,
                                                  "seek", (json_int_t)(start * 100), "start", start, "end", end, "text", t ? t : json_string(""),
                                                  "tokens", "temperature", 0.0, "avg_logprob", 0.0, "compression_ratio", 0.0, "no_speech_prob", 0.0));
    st->cur.n = 0;
    st->seg_index++;
}

static void t_on_segment(srv_req *r, srv_finish why)
{
    tr_state *st = r->fmt_state;
    st->r = r;
    if (!st->ended) g4_outparse_finish(st->op, t_event, st);
    g4_outparse_reset(st->op);
    st->ended = false;
    end_segment(st);
    st->seg_tokens = 0;
    st->repeats = 0;
    st->last_len = 0;
}

static void stamp(sbuf *b, double t, char sep)
{
    long ms = lround(t * 1000);
    sb_printf(b, "%02ld:%02ld:%02ld%c%03ld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, sep, ms % 1000);
}

static void t_on_finish(srv_req *r, srv_finish why, const srv_err *e)
{
    tr_state *st = r->fmt_state;
    if (why == FIN_ERROR || why == FIN_CANCELLED) {
        srv_finish_error(r, why, e, st->stream, "");
        return;
    }
    st->r = r;
    if (!st->ended) g4_outparse_finish(st->op, t_event, st);
    end_segment(st);
    json_t *txt = json_stringn(st->all.p ? st->all.p : "", st->all.n);
    if (!txt) txt = json_string("");
    /* OpenAI's token usage shape for transcriptions */
    json_t *usage = json_pack("{s:s,s:I,s:I,s:I}", "type", "tokens", "input_tokens", (json_int_t)r->n_prompt,
                              "output_tokens", (json_int_t)r->n_gen, "total_tokens", (json_int_t)(r->n_prompt + r->n_gen));
    if (st->stream) {
        sse_event(r, json_pack("{s:s,s:o,s:o}", "type", "transcript.text.done", "text", txt, "usage", usage));
        return;
    }
    r->out.n = 0;
    switch (st->rf) {
    case RF_TEXT:
        sb_add(&r->out, st->all.p ? st->all.p : "", st->all.n);
        sb_add(&r->out, "\n", 1);
        json_decref(txt);
        json_decref(usage);
        break;
    case RF_SRT:
    case RF_VTT: {
        if (st->rf == RF_VTT) sb_adds(&r->out, "WEBVTT\n\n");
        size_t i;
        json_t *sg;
        int k = 0;
        json_array_foreach(st->segments, i, sg) {
            /* every chunk is a cue, also a silent one: the timeline stays whole */
            const char *t = json_string_value(json_object_get(sg, "text"));
            if (!t) t = "";
            if (st->rf == RF_SRT) sb_printf(&r->out, "%d\n", ++k);
            stamp(&r->out, json_real_value(json_object_get(sg, "start")), st->rf == RF_SRT ? ',' : '.');
            sb_adds(&r->out, " --> ");
            stamp(&r->out, json_real_value(json_object_get(sg, "end")), st->rf == RF_SRT ? ',' : '.');
            sb_adds(&r->out, "\n");
            sb_adds(&r->out, t);
            sb_adds(&r->out, "\n\n");
        }
        json_decref(txt);
        json_decref(usage);
        break;
    }
    case RF_VERBOSE: {
        json_t *o = json_pack("{s:s,s:s,s:f,s:o,s:O,s:o}", "task", "transcribe", "language", st->language ? st->language : "unknown",
                              "duration", st->duration_s, "text", txt, "segments", st->segments, "usage", usage);
        char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (js) sb_adds(&r->out, js);
        else r->out.oom = true;
        free(js);
        break;
    }
    case RF_JSON: {
        json_t *o = json_pack("{s:o,s:o}", "text", txt, "usage", usage);
        char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (js) sb_adds(&r->out, js);
        else r->out.oom = true;
        free(js);
        break;
    }
    }
}

static void t_free(srv_req *r)
{
    tr_state *st = r->fmt_state;
    if (!st) return;
    g4_outparse_free(st->op);
    sb_free(&st->cur);
    sb_free(&st->all);
    json_decref(st->segments);
    free(st->language);
    free(st);
    r->fmt_state = NULL;
}

static const srv_fmt tr_fmt = { t_on_text, t_on_finish, t_free, t_on_segment };

/* ------------------------------------------------------------ handler */

/* One chunk's prompt: a user turn with the audio, then the instruction. */
static bool chunk_prompt(srv_server *s, const float *samples, uint64_t n, const char *instr, const char *context,
                         srv_prompt *out, srv_err *e)
{
    char err[256];
    json_t *msgs = json_array();
    if (context) json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", context));
    json_array_append_new(msgs, json_pack("{s:s,s:[{s:s,s:{s:s,s:s}},{s:s,s:s}]}", "role", "user", "content",
                                          "type", "input_audio", "input_audio", "data", "", "format", "wav", "type", "text", "text", instr));
    char *mj = json_dumps(msgs, JSON_COMPACT);
    json_decref(msgs);
    char *text = NULL;
    if (!mj) { srv_fail(e, 500, "internal_error", NULL, "out of memory"); return false; }
    g4_chat_params cp = g4_chat_default_params();
    g4_status rs = g4_chat_render(mj, NULL, &cp, &text, err, sizeof err);
    free(mj);
    if (rs != G4_OK) { srv_fail(e, 400, "invalid_value", "prompt", "prompt: %s", err); return false; }
    g4_embedding emb;
    memset(&emb, 0, sizeof emb);
    pthread_mutex_lock(&s->mm_mu);
    g4_status st = g4_mmproj_embed_audio(s->mmproj, samples, n, &emb, err, sizeof err);
    pthread_mutex_unlock(&s->mm_mu);
    if (st != G4_OK) {
        free(text);
        srv_fail(e, st == G4_ERR_UNSUPPORTED ? 400 : 500, st == G4_ERR_UNSUPPORTED ? "unsupported_media" : "internal_error", "file",
                 "file: audio embedding failed: %s", err);
        return false;
    }
    /* the hash of the samples themselves identifies the chunk for the cache */
    uint64_t h = 1469598103934665603ull;
    const unsigned char *pb = (const unsigned char *)samples;
    for (uint64_t i = 0; i < n * sizeof *samples; i++) h = (h ^ pb[i]) * 1099511628211ull;
    srv_media_list ml = { 0 };
    srv_media m = { .n = emb.n_tokens, .kind = G4_EMBD_CAUSAL, .hash = h, .rows = emb.rows };
    ml.m = &m;
    ml.n = ml.cap = 1;
    bool ok = prompt_build(s, text, false, &ml, out, e);
    free(m.rows);   /* NULL when moved into the prompt */
    free(text);
    return ok;
}

void h_transcriptions(http_conn *c, const char *body, size_t len, const char *content_type)
{
    srv_server *s = g_srv;
    srv_err e;
    memset(&e, 0, sizeof e);
    mp_part parts[32];
    char *language = NULL, *prompt = NULL, *rf = NULL, *stream = NULL, *temp = NULL, *instr = NULL;
    g4_audio a;
    memset(&a, 0, sizeof a);
    srv_req *r = NULL;
    bool bad = false;
    int n = mp_parse(content_type, body, len, parts, 32, &e);
    if (n < 0) goto fail;
    const mp_part *file = field(parts, n, "file");
    if (!file) { srv_fail(&e, 400, "missing_required_parameter", "file", "file: required (the audio as a multipart file field)"); goto fail; }
    language = text_field(parts, n, "language", 64, &e, &bad);
    prompt = text_field(parts, n, "prompt", 4096, &e, &bad);
    rf = text_field(parts, n, "response_format", 32, &e, &bad);
    stream = text_field(parts, n, "stream", 8, &e, &bad);
    temp = text_field(parts, n, "temperature", 32, &e, &bad);
    if (bad) goto fail;
    resp_fmt fmt = RF_JSON;
    if (rf) {
        if (!strcmp(rf, "json")) fmt = RF_JSON;
        else if (!strcmp(rf, "text")) fmt = RF_TEXT;
        else if (!strcmp(rf, "verbose_json")) fmt = RF_VERBOSE;
        else if (!strcmp(rf, "srt")) fmt = RF_SRT;
        else if (!strcmp(rf, "vtt")) fmt = RF_VTT;
        else { srv_fail(&e, 400, "invalid_value", "response_format", "response_format: '%.32s' is not json, text, verbose_json, srt or vtt", rf); goto fail; }
    }
    bool streaming = false;
    if (stream) {
        if (!strcmp(stream, "true")) streaming = true;
        else if (strcmp(stream, "false")) { srv_fail(&e, 400, "invalid_value", "stream", "stream: must be true or false"); goto fail; }
    }
    if (streaming && fmt != RF_JSON && fmt != RF_TEXT) {
        srv_fail(&e, 400, "invalid_value", "stream", "stream: only with response_format json or text");
        goto fail;
    }
    double temperature = 0;
    if (temp) {
        char *end;
        temperature = strtod(temp, &end);
        if (!temp[0] || *end || !isfinite(temperature) || temperature < 0 || temperature > 2) {
            srv_fail(&e, 400, "invalid_value", "temperature", "temperature: '%.32s' is not a number in [0, 2]", temp);
            goto fail;
        }
    }
    if (language && !language[0]) { free(language); language = NULL; }
    instr = g4_transcription_prompt(language, NULL);
    if (!instr) { srv_fail(&e, 400, "invalid_value", "language", "language: at most 64 bytes, no control characters"); goto fail; }
    if (!s->mmproj || !s->mm_info_audio) {
        srv_fail(&e, 400, "unsupported_media", "file", "transcription needs a projector with audio (--mmproj)");
        goto fail;
    }
    char err[256];
    if (file->len == 0) { srv_fail(&e, 400, "invalid_media", "file", "file: the upload is empty"); goto fail; }
    if (g4_audio_decode(file->data, file->len, MAX_AUDIO_SECONDS, &a, err, sizeof err) != G4_OK) {
        srv_fail(&e, 400, "invalid_media", "file", "file: %s", err);
        goto fail;
    }
    if (a.n_samples == 0) { srv_fail(&e, 400, "invalid_media", "file", "file: the audio is empty"); goto fail; }

    r = srv_req_new();
    tr_state *st = r ? calloc(1, sizeof *st) : NULL;
    if (!st) { srv_fail(&e, 500, "internal_error", NULL, "out of memory"); goto fail; }
    r->fmt = &tr_fmt;
    r->fmt_state = st;
    st->s = s;
    st->rf = fmt;
    st->stream = streaming;
    st->language = language;
    language = NULL;
    st->segments = json_array();
    st->op = g4_outparse_new(NULL);
    if (!st->op) { srv_fail(&e, 500, "internal_error", NULL, "out of memory"); goto fail; }
    st->chunk_s = G4_AUDIO_CHUNK_SECONDS;
    st->duration_s = (double)a.n_samples / 16000.0;
    r->stream = streaming;
    if (!streaming && fmt == RF_TEXT) r->content_type = "text/plain; charset=utf-8";
    if (!streaming && (fmt == RF_SRT)) r->content_type = "application/x-subrip; charset=utf-8";
    if (!streaming && (fmt == RF_VTT)) r->content_type = "text/vtt; charset=utf-8";
    r->sp.temperature = (float)temperature;
    r->sp.seed = 0xC0FFEE;
    r->max_tokens = SEG_BASE_TOKENS + SEG_TOKENS_PER_SECOND * G4_AUDIO_CHUNK_SECONDS;   /* per chunk; tighter: seg_budget */
    r->t_arrival = srv_now();
    r->deadline = r->t_arrival + s->cfg.timeout_s;

    uint64_t chunk = (uint64_t)G4_AUDIO_CHUNK_SECONDS * 16000;
    uint64_t n_chunks = (a.n_samples + chunk - 1) / chunk;
    if (n_chunks > 1) {
        r->segs = calloc(n_chunks - 1, sizeof *r->segs);
        if (!r->segs) { srv_fail(&e, 500, "internal_error", NULL, "out of memory"); goto fail; }
    }
    uint32_t n_ctx = sched_n_ctx(s->sched);
    for (uint64_t k = 0; k < n_chunks; k++) {
        uint64_t off = k * chunk, cnt = a.n_samples - off < chunk ? a.n_samples - off : chunk;
        srv_prompt *p = k == 0 ? &r->prompt : &r->segs[k - 1];
        if (!chunk_prompt(s, a.samples + off, cnt, instr, prompt, p, &e)) goto fail;
        if (k > 0) r->n_segs = (uint32_t)k;
        if (p->n + 16 >= n_ctx) {
            srv_fail(&e, 400, "context_length_exceeded", "file", "a %d-second chunk takes %u positions but the context holds %u (--ctx)",
                     G4_AUDIO_CHUNK_SECONDS, p->n, n_ctx);
            goto fail;
        }
    }
    free(instr);
    free(prompt);
    free(rf);
    free(stream);
    free(temp);
    g4_audio_free(&a);
    http_run_request(c, r);
    return;
fail:
    free(language);
    free(prompt);
    free(rf);
    free(stream);
    free(temp);
    free(instr);
    g4_audio_free(&a);
    srv_req_unref(r);
    http_reply_error(c, &e);
}
