/*
 * outparse.c - incremental parser of Gemma 4 output text.
 *
 * Two layers:
 *  1. a lexer that turns bytes into items: a literal byte, or a whole
 *     marker (<|channel>, <tool_call|>, <|"|>, ...).  A '<' that may start a
 *     marker is held (at most 16 bytes) until the marker is complete or
 *     ruled out; so the layer above never sees half a marker, whatever the
 *     split points of the input.
 *  2. a state machine over items: content, thought, tool call (name, then
 *     the argument DSL converted to JSON on the fly), recovery after a
 *     malformed call, done.
 * Text deltas are collected in a small buffer and emitted at the end of each
 * push (or when the buffer is full, or before any other event).
 */
#include "text/outparse.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const mk_text[G4_MK_COUNT] = {
    "<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>",
    "<|tool_response>", "<tool_response|>", "<|turn>", "<turn|>", "<|\"|>",
};
#define MK_MAXLEN 16

const char *g4_outparse_marker_text(g4_marker m)
{
    return (unsigned)m < G4_MK_COUNT ? mk_text[m] : "";
}

/* ------------------------------------------------------------------ */
/* growable byte buffer with a ceiling                                  */

typedef struct {
    char  *p;
    size_t n, cap;
} sbuf;

static bool sb_reserve(sbuf *b, size_t extra, size_t limit)
{
    if (extra > limit || b->n > limit - extra) return false;
    size_t need = b->n + extra + 1; /* +1: keep room for a NUL */
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
    char *q = realloc(b->p, cap);
    if (!q) return false;
    b->p = q;
    b->cap = cap;
    return true;
}

static bool sb_put(sbuf *b, const char *s, size_t n, size_t limit)
{
    if (!sb_reserve(b, n, limit)) return false;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

/* ------------------------------------------------------------------ */

typedef enum {
    S_CONTENT, S_TURN_ROLE, S_CHAN_NAME, S_THOUGHT,
    S_CALL_NAME, S_CALL_ARGS, S_CALL_END, S_RECOVER, S_DONE
} pstate;

/* token being read inside the arguments */
typedef enum {
    TK_NONE, TK_BKEY, TK_QKEY, TK_JKEY, TK_QSTR, TK_JSTR, TK_WORD
} tkind;

/* what the innermost container expects next */
typedef enum {
    X_ITEM,  /* object: key or '}'; array: value or ']' */
    X_COLON, /* object: ':' after a key */
    X_VALUE, /* object: value after ':' */
    X_SEP    /* ',' or the closing bracket */
} xexp;

typedef struct {
    char is_arr;
    char exp;
    char first;
} frame;

struct g4_outparse {
    g4_outparse_params prm;
    size_t json_limit;

    g4_outparse_cb cb;
    void *user;

    pstate st;

    /* lexer */
    char   hold[MK_MAXLEN];
    size_t nhold;

    /* pending text delta */
    int    out_kind; /* G4_OUT_CONTENT / G4_OUT_THOUGHT, -1 none */
    char   out[G4_OUTPARSE_TEXT_CHUNK + 1];
    size_t nout;

    /* thought / turn header */
    size_t held_nl;
    char   name[16];
    size_t nname;

    /* tool call */
    sbuf   raw;                 /* exact input text of the call so far */
    sbuf   json;                /* arguments converted so far */
    size_t json_sent;           /* bytes of json already sent as TOOL_ARGS */
    char   fname[G4_OUTPARSE_MAX_NAME + 8];
    size_t nfname;
    const char *tool;           /* validated name inside fname */
    frame  fr[G4_OUTPARSE_DEPTH_CAP];
    int    depth;
    tkind  tok;
    char   word[G4_OUTPARSE_MAX_WORD + 1];
    size_t nword;
    unsigned char u8[4];        /* pending UTF-8 sequence in a string */
    int    nu8, need8;
    int    esc;                 /* JSON-quoted string: 0, 1 after '\\', 2..5 hex digits */
    unsigned uval;
    const char *err;            /* set by the DSL on a malformed call */
    bool   begun;               /* TOOL_BEGIN sent for this call */

    int    n_calls;
    bool   done, warned_after_end;
    char   msg[160];
};

/* ------------------------------------------------------------------ */
/* event emission                                                       */

static void emit_raw(g4_outparse *p, g4_out_event *ev)
{
    if (p->cb) p->cb(ev, p->user);
}

/* Length of an incomplete UTF-8 sequence at the end of s[0..n). */
static size_t utf8_tail(const char *s, size_t n)
{
    size_t k = 0;
    while (k < n && k < 3 && (((unsigned char)s[n - 1 - k]) & 0xC0) == 0x80) k++;
    if (k == n) return 0;
    unsigned char lead = (unsigned char)s[n - 1 - k];
    size_t want = lead >= 0xF0 && lead <= 0xF4 ? 4 : lead >= 0xE0 && lead < 0xF0 ? 3
                : lead >= 0xC2 && lead < 0xE0 ? 2 : 1;
    return want > k + 1 ? k + 1 : 0;
}

/* Emit the pending text delta; keep an incomplete UTF-8 tail if asked. */
static void flush_text(g4_outparse *p, bool keep_tail)
{
    if (p->nout == 0) return;
    size_t tail = keep_tail ? utf8_tail(p->out, p->nout) : 0;
    size_t n = p->nout - tail;
    if (n > 0) {
        char save = p->out[n];
        p->out[n] = 0;
        g4_out_event ev = {0};
        ev.kind = (g4_out_kind)p->out_kind;
        ev.text = p->out;
        ev.len = n;
        emit_raw(p, &ev);
        p->out[n] = save;
        memmove(p->out, p->out + n, tail);
        p->nout = tail;
    }
}

static void text_out(g4_outparse *p, int kind, const char *s, size_t n)
{
    if (p->nout > 0 && p->out_kind != kind) flush_text(p, false);
    p->out_kind = kind;
    while (n > 0) {
        size_t room = G4_OUTPARSE_TEXT_CHUNK - p->nout;
        size_t k = n < room ? n : room;
        memcpy(p->out + p->nout, s, k);
        p->nout += k;
        s += k;
        n -= k;
        if (p->nout == G4_OUTPARSE_TEXT_CHUNK) {
            flush_text(p, true);
            if (p->nout == G4_OUTPARSE_TEXT_CHUNK) flush_text(p, false);
        }
    }
}

static void flush_args(g4_outparse *p)
{
    if (!p->prm.stream_args || !p->begun || p->json_sent >= p->json.n) return;
    g4_out_event ev = {0};
    ev.kind = G4_OUT_TOOL_ARGS;
    ev.text = p->json.p + p->json_sent;
    ev.len = p->json.n - p->json_sent;
    ev.tool_index = p->n_calls;
    ev.tool_name = p->tool;
    emit_raw(p, &ev);
    p->json_sent = p->json.n;
}

/* Any non-delta event: pending deltas go first. */
static void emit_ev(g4_outparse *p, g4_out_event *ev)
{
    flush_text(p, false);
    emit_raw(p, ev);
}

static void warn(g4_outparse *p, const char *fmt, const char *arg)
{
    snprintf(p->msg, sizeof p->msg, fmt, arg ? arg : "");
    g4_out_event ev = {0};
    ev.kind = G4_OUT_WARNING;
    ev.text = p->msg;
    ev.len = strlen(p->msg);
    emit_ev(p, &ev);
}

static void end_gen(g4_outparse *p, g4_out_end_reason why)
{
    if (p->done) return;
    p->held_nl = 0;
    g4_out_event ev = {0};
    ev.kind = G4_OUT_END;
    ev.tool_index = p->n_calls;
    ev.end_reason = why;
    emit_ev(p, &ev);
    p->done = true;
    p->st = S_DONE;
}

/* ------------------------------------------------------------------ */
/* tool call: start / fail / complete                                   */

static void call_clear(g4_outparse *p)
{
    p->raw.n = 0;
    p->json.n = 0;
    p->json_sent = 0;
    p->nfname = 0;
    p->tool = NULL;
    p->depth = 0;
    p->tok = TK_NONE;
    p->nword = 0;
    p->nu8 = p->need8 = 0;
    p->esc = 0;
    p->err = NULL;
    p->begun = false;
}

static void call_start(g4_outparse *p)
{
    call_clear(p);
    p->st = S_CALL_NAME;
    if (!sb_put(&p->raw, mk_text[G4_MK_CALL_OPEN], strlen(mk_text[G4_MK_CALL_OPEN]),
                p->prm.max_call_bytes)) {
        /* cannot even hold the marker: let it through as text */
        warn(p, "tool call dropped to content: %s", "out of memory");
        text_out(p, G4_OUT_CONTENT, mk_text[G4_MK_CALL_OPEN],
                 strlen(mk_text[G4_MK_CALL_OPEN]));
        p->st = S_RECOVER;
    }
}

/* The call is malformed: warning, (abort), its raw text as content. */
static void call_fail(g4_outparse *p, const char *why)
{
    if (p->begun) {
        g4_out_event ev = {0};
        ev.kind = G4_OUT_TOOL_ABORT;
        ev.tool_index = p->n_calls;
        ev.tool_name = p->tool;
        emit_ev(p, &ev);
    }
    warn(p, "malformed tool call, kept as content: %s", why);
    text_out(p, G4_OUT_CONTENT, p->raw.p, p->raw.n);
    call_clear(p);
    p->st = S_RECOVER;
}

static void call_done(g4_outparse *p)
{
    flush_text(p, false);
    flush_args(p);
    g4_out_event ev = {0};
    ev.kind = G4_OUT_TOOL_CALL;
    ev.tool_index = p->n_calls;
    ev.tool_name = p->tool;
    ev.tool_args_json = p->json.p;
    emit_raw(p, &ev);
    p->n_calls++;
    call_clear(p);
    p->st = S_CONTENT;
}

/* ------------------------------------------------------------------ */
/* JSON writing (errors are recorded in p->err)                         */

static void jput(g4_outparse *p, const char *s, size_t n)
{
    if (p->err) return;
    if (!sb_put(&p->json, s, n, p->json_limit)) p->err = "arguments too large or out of memory";
}

static void jputc(g4_outparse *p, char c) { jput(p, &c, 1); }

static void jput_cp_escape(g4_outparse *p, unsigned c)
{
    char t[8];
    switch (c) {
    case '"':  jput(p, "\\\"", 2); return;
    case '\\': jput(p, "\\\\", 2); return;
    case '\b': jput(p, "\\b", 2); return;
    case '\f': jput(p, "\\f", 2); return;
    case '\n': jput(p, "\\n", 2); return;
    case '\r': jput(p, "\\r", 2); return;
    case '\t': jput(p, "\\t", 2); return;
    default:
        snprintf(t, sizeof t, "\\u%04x", c & 0xFFFFu);
        jput(p, t, 6);
    }
}

static void jput_replacement(g4_outparse *p) { jput(p, "\xEF\xBF\xBD", 3); }

/* One byte of string (or key) text: escaped, UTF-8 checked (an invalid
 * sequence becomes U+FFFD, so the JSON is always valid UTF-8). */
static void str_byte(g4_outparse *p, unsigned char c)
{
    if (p->nu8 > 0) {
        bool ok = (c & 0xC0) == 0x80;
        if (ok && p->nu8 == 1) { /* second byte: exclude overlongs, surrogates, > U+10FFFF */
            unsigned char l = p->u8[0];
            if ((l == 0xE0 && c < 0xA0) || (l == 0xED && c > 0x9F) ||
                (l == 0xF0 && c < 0x90) || (l == 0xF4 && c > 0x8F)) ok = false;
        }
        if (!ok) {
            jput_replacement(p);
            p->nu8 = p->need8 = 0;
            /* c starts afresh below */
        } else {
            p->u8[p->nu8++] = c;
            if (p->nu8 == p->need8) {
                jput(p, (const char *)p->u8, (size_t)p->nu8);
                p->nu8 = p->need8 = 0;
            }
            return;
        }
    }
    if (c < 0x20 || c == '"' || c == '\\') { jput_cp_escape(p, c); return; }
    if (c < 0x80) { jputc(p, (char)c); return; }
    int need = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
             : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (need == 0) { jput_replacement(p); return; }
    p->u8[0] = c;
    p->nu8 = 1;
    p->need8 = need;
}

static void str_close(g4_outparse *p)
{
    if (p->nu8 > 0) jput_replacement(p);
    p->nu8 = p->need8 = 0;
    jputc(p, '"');
}

/* Start of an item (key in an object, value in an array): separator. */
static void item_begin(g4_outparse *p, frame *f)
{
    if (!f->first) jputc(p, ',');
    f->first = 0;
}

static bool is_ws(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static bool is_word_char(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '+' || c == '-' || c == '.' || c == '_';
}

static bool is_key_char(int c)
{
    return c > 0x20 && c != 0x7F && !strchr(":,{}[]\"'", c);
}

/* JSON number grammar: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)? */
static bool json_number_ok(const char *s)
{
    if (*s == '-') s++;
    if (*s == '0') s++;
    else if (*s >= '1' && *s <= '9') while (*s >= '0' && *s <= '9') s++;
    else return false;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9')) return false;
        while (*s >= '0' && *s <= '9') s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (!(*s >= '0' && *s <= '9')) return false;
        while (*s >= '0' && *s <= '9') s++;
    }
    return *s == 0;
}

/* A bare scalar is complete: true/false/null (also Python's True/False/
 * None), or a number (a leading '+', leading zeros, ".5" and "5." are
 * normalised). */
static void word_finish(g4_outparse *p)
{
    frame *f = &p->fr[p->depth - 1];
    char *w = p->word;
    w[p->nword] = 0;
    p->tok = TK_NONE;
    f->exp = X_SEP;
    if (!strcmp(w, "true") || !strcmp(w, "True")) { jput(p, "true", 4); return; }
    if (!strcmp(w, "false") || !strcmp(w, "False")) { jput(p, "false", 5); return; }
    if (!strcmp(w, "null") || !strcmp(w, "None")) { jput(p, "null", 4); return; }
    if (json_number_ok(w)) { jput(p, w, strlen(w)); return; }
    /* normalise */
    char t[G4_OUTPARSE_MAX_WORD + 4];
    size_t n = 0;
    const char *s = w;
    if (*s == '-') t[n++] = *s++;
    else if (*s == '+') s++;
    while (s[0] == '0' && s[1] >= '0' && s[1] <= '9') s++;
    if (*s == '.') t[n++] = '0';
    size_t len = strlen(s);
    memcpy(t + n, s, len);
    n += len;
    if (n > 0 && t[n - 1] == '.') n--;
    t[n] = 0;
    if (n > 0 && json_number_ok(t)) { jput(p, t, n); return; }
    if (!p->err) p->err = "bad value token";
}

static void push_frame(g4_outparse *p, bool is_arr)
{
    if (p->depth >= p->prm.max_depth) { p->err = "arguments nested too deep"; return; }
    frame *f = &p->fr[p->depth++];
    f->is_arr = is_arr;
    f->exp = X_ITEM;
    f->first = 1;
    jputc(p, is_arr ? '[' : '{');
}

static void pop_frame(g4_outparse *p)
{
    frame *f = &p->fr[p->depth - 1];
    jputc(p, f->is_arr ? ']' : '}');
    p->depth--;
    if (p->depth == 0) p->st = S_CALL_END;
}

/* First byte of a value (the separator is already written). */
static void value_begin(g4_outparse *p, frame *f, unsigned char c)
{
    f->exp = X_SEP; /* what follows the value, once it is complete */
    if (c == '{') { push_frame(p, false); return; }
    if (c == '[') { push_frame(p, true); return; }
    if (c == '"') { jputc(p, '"'); p->tok = TK_JSTR; p->esc = 0; return; }
    if (is_word_char(c)) { p->tok = TK_WORD; p->word[0] = (char)c; p->nword = 1; return; }
    p->err = "unexpected character where a value was expected";
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A byte inside a "..." string (JSON-style escapes accepted). Returns true
 * when the closing quote was consumed. */
static bool jstr_byte(g4_outparse *p, unsigned char c)
{
    if (p->esc == 1) {
        p->esc = 0;
        switch (c) {
        case '"': case '\\': case '/': str_byte(p, c); return false;
        case 'b': str_byte(p, '\b'); return false;
        case 'f': str_byte(p, '\f'); return false;
        case 'n': str_byte(p, '\n'); return false;
        case 'r': str_byte(p, '\r'); return false;
        case 't': str_byte(p, '\t'); return false;
        case 'u': p->esc = 2; p->uval = 0; return false;
        default: p->err = "bad escape in quoted string"; return false;
        }
    }
    if (p->esc >= 2) {
        int h = hexval(c);
        if (h < 0) { p->err = "bad \\u escape in quoted string"; return false; }
        p->uval = p->uval * 16 + (unsigned)h;
        if (++p->esc < 6) return false;
        p->esc = 0;
        unsigned u = p->uval;
        if (u >= 0xD800 && u <= 0xDFFF) { jput_replacement(p); return false; }
        if (p->nu8 > 0) { jput_replacement(p); p->nu8 = p->need8 = 0; }
        if (u < 0x20 || u == '"' || u == '\\') { jput_cp_escape(p, u); return false; }
        char t[3];
        if (u < 0x80) { t[0] = (char)u; jput(p, t, 1); }
        else if (u < 0x800) {
            t[0] = (char)(0xC0 | (u >> 6)); t[1] = (char)(0x80 | (u & 0x3F)); jput(p, t, 2);
        } else {
            t[0] = (char)(0xE0 | (u >> 12)); t[1] = (char)(0x80 | ((u >> 6) & 0x3F));
            t[2] = (char)(0x80 | (u & 0x3F)); jput(p, t, 3);
        }
        return false;
    }
    if (c == '\\') { p->esc = 1; return false; }
    if (c == '"') { str_close(p); return true; }
    str_byte(p, c);
    return false;
}

/* One literal byte of the argument body. */
static void dsl_byte(g4_outparse *p, unsigned char c)
{
    frame *f = &p->fr[p->depth - 1];
    switch (p->tok) {
    case TK_QKEY:
    case TK_QSTR:
        str_byte(p, c); /* <|"|> strings take every byte literally */
        return;
    case TK_JKEY:
        if (jstr_byte(p, c)) { p->tok = TK_NONE; f->exp = X_COLON; }
        return;
    case TK_JSTR:
        if (jstr_byte(p, c)) { p->tok = TK_NONE; f->exp = X_SEP; }
        return;
    case TK_BKEY:
        if (is_key_char(c)) { str_byte(p, c); return; }
        str_close(p);
        p->tok = TK_NONE;
        f->exp = X_COLON;
        break; /* c is handled below */
    case TK_WORD:
        if (is_word_char(c)) {
            if (p->nword >= G4_OUTPARSE_MAX_WORD) { p->err = "value token too long"; return; }
            p->word[p->nword++] = (char)c;
            return;
        }
        word_finish(p);
        if (p->err) return;
        break;
    case TK_NONE:
        break;
    }

    if (is_ws(c)) return;
    switch ((xexp)f->exp) {
    case X_ITEM:
        if (c == (f->is_arr ? ']' : '}')) { pop_frame(p); return; }
        item_begin(p, f);
        if (f->is_arr) { value_begin(p, f, c); return; }
        if (c == '"') { jputc(p, '"'); p->tok = TK_JKEY; p->esc = 0; return; }
        if (is_key_char(c)) { jputc(p, '"'); str_byte(p, c); p->tok = TK_BKEY; return; }
        p->err = "unexpected character where a key was expected";
        return;
    case X_COLON:
        if (c == ':') { jputc(p, ':'); f->exp = X_VALUE; return; }
        p->err = "expected ':' after a key";
        return;
    case X_VALUE:
        value_begin(p, f, c);
        return;
    case X_SEP:
        if (c == ',') { f->exp = X_ITEM; return; }
        if (c == (f->is_arr ? ']' : '}')) { pop_frame(p); return; }
        p->err = f->is_arr ? "expected ',' or ']'" : "expected ',' or '}'";
        return;
    }
}

/* A marker inside the argument body: only <|"|> has a meaning there. */
static void dsl_marker(g4_outparse *p, g4_marker m)
{
    frame *f = &p->fr[p->depth - 1];
    if (m != G4_MK_STR) { p->err = "marker inside the arguments"; return; }
    switch (p->tok) {
    case TK_QKEY: str_close(p); p->tok = TK_NONE; f->exp = X_COLON; return;
    case TK_QSTR: str_close(p); p->tok = TK_NONE; f->exp = X_SEP; return;
    case TK_WORD: word_finish(p); if (p->err) return; break;
    case TK_BKEY: str_close(p); p->tok = TK_NONE; f->exp = X_COLON; break;
    case TK_JKEY: case TK_JSTR: p->err = "<|\"|> inside a quoted string"; return;
    case TK_NONE: break;
    }
    switch ((xexp)f->exp) {
    case X_ITEM:
        item_begin(p, f);
        jputc(p, '"');
        p->tok = f->is_arr ? TK_QSTR : TK_QKEY;
        if (f->is_arr) f->exp = X_SEP;
        return;
    case X_VALUE:
        jputc(p, '"');
        p->tok = TK_QSTR;
        f->exp = X_SEP;
        return;
    default:
        p->err = "unexpected string";
        return;
    }
}

static bool name_char_ok(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '_' || c == '-' || c == '.' || c == ':' || c == '/' || c == '@';
}

/* The text between <|tool_call> and '{': "call:NAME" (the "call:" prefix
 * is optional).  Returns the name or NULL. */
static const char *name_finish(g4_outparse *p)
{
    char *s = p->fname;
    s[p->nfname] = 0;
    while (is_ws(*s)) s++;
    char *e = s + strlen(s);
    while (e > s && is_ws(e[-1])) *--e = 0;
    if (!strncmp(s, "call:", 5)) s += 5;
    while (is_ws(*s)) s++;
    if (!*s) return NULL;
    for (const char *q = s; *q; q++)
        if (!name_char_ok((unsigned char)*q)) return NULL;
    return s;
}

/* ------------------------------------------------------------------ */
/* the state machine over lexer items                                   */

typedef struct {
    int  marker;        /* g4_marker, or -1 for a byte */
    unsigned char byte;
} item;

static void step(g4_outparse *p, item it);

static void flush_held_nl(g4_outparse *p)
{
    char nl[32];
    memset(nl, '\n', sizeof nl);
    while (p->held_nl > 0) {
        size_t k = p->held_nl < sizeof nl ? p->held_nl : sizeof nl;
        text_out(p, G4_OUT_THOUGHT, nl, k);
        p->held_nl -= k;
    }
}

static void content_item(g4_outparse *p, item it)
{
    if (it.marker < 0) { char c = (char)it.byte; text_out(p, G4_OUT_CONTENT, &c, 1); return; }
    switch ((g4_marker)it.marker) {
    case G4_MK_CHANNEL_OPEN: p->st = S_CHAN_NAME; p->nname = 0; return;
    case G4_MK_CHANNEL_CLOSE: return; /* stray close: a known quirk, ignored */
    case G4_MK_CALL_OPEN: call_start(p); return;
    case G4_MK_CALL_CLOSE:
    case G4_MK_RESP_CLOSE:
        warn(p, "stray %s ignored", mk_text[it.marker]);
        return;
    case G4_MK_RESP_OPEN: end_gen(p, G4_OUT_END_TOOL_RESPONSE); return;
    case G4_MK_TURN_CLOSE: end_gen(p, G4_OUT_END_TURN); return;
    case G4_MK_TURN_OPEN: p->st = S_TURN_ROLE; p->nname = 0; return;
    case G4_MK_STR: text_out(p, G4_OUT_CONTENT, mk_text[G4_MK_STR], 5); return;
    case G4_MK_COUNT: return;
    }
}

static void thought_item(g4_outparse *p, item it)
{
    if (it.marker < 0) {
        if (it.byte == '\n') {
            if (++p->held_nl > G4_OUTPARSE_MAX_HELD_NL) flush_held_nl(p);
            return;
        }
        flush_held_nl(p);
        char c = (char)it.byte;
        text_out(p, G4_OUT_THOUGHT, &c, 1);
        return;
    }
    switch ((g4_marker)it.marker) {
    case G4_MK_CHANNEL_CLOSE: p->held_nl = 0; p->st = S_CONTENT; return;
    case G4_MK_CHANNEL_OPEN: /* a second opener: continue the thought */
        flush_held_nl(p);
        p->st = S_CHAN_NAME;
        p->nname = 0;
        return;
    case G4_MK_CALL_OPEN:
        p->held_nl = 0;
        warn(p, "%s", "tool call inside an unclosed thought: thought closed");
        call_start(p);
        return;
    case G4_MK_RESP_OPEN: end_gen(p, G4_OUT_END_TOOL_RESPONSE); return;
    case G4_MK_TURN_CLOSE: end_gen(p, G4_OUT_END_TURN); return;
    case G4_MK_STR:
        flush_held_nl(p);
        text_out(p, G4_OUT_THOUGHT, mk_text[G4_MK_STR], 5);
        return;
    case G4_MK_CALL_CLOSE:
    case G4_MK_RESP_CLOSE:
        warn(p, "stray %s ignored", mk_text[it.marker]);
        return;
    case G4_MK_TURN_OPEN:
    case G4_MK_COUNT:
        return;
    }
}

/* After <|channel>: strip the channel name "thought" and one '\n'. */
static void chan_name_item(g4_outparse *p, item it)
{
    static const char want[] = "thought\n";
    if (it.marker < 0 && p->nname < 8 && (char)it.byte == want[p->nname]) {
        p->name[p->nname++] = (char)it.byte;
        if (p->nname == 8) { p->nname = 0; p->st = S_THOUGHT; }
        return;
    }
    /* not (or no longer) the expected name */
    p->st = S_THOUGHT;
    if (p->nname != 7) { /* "thought" without the newline is a name too */
        for (size_t i = 0; i < p->nname; i++) {
            char c = p->name[i];
            text_out(p, G4_OUT_THOUGHT, &c, 1);
        }
    }
    p->nname = 0;
    thought_item(p, it);
}

/* After <|turn>: skip the role line ("model\n"). */
static void turn_role_item(g4_outparse *p, item it)
{
    if (it.marker < 0 && it.byte == '\n') { p->nname = 0; p->st = S_CONTENT; return; }
    if (it.marker < 0 && p->nname < sizeof p->name && it.byte != '<') {
        p->name[p->nname++] = (char)it.byte;
        return;
    }
    /* not a role line: keep the bytes as content */
    p->st = S_CONTENT;
    text_out(p, G4_OUT_CONTENT, p->name, p->nname);
    p->nname = 0;
    content_item(p, it);
}

/* An item of a tool call. */
static void call_item(g4_outparse *p, item it)
{
    size_t raw_before = p->raw.n;
    const char *txt = it.marker >= 0 ? mk_text[it.marker] : (const char *)&it.byte;
    size_t tlen = it.marker >= 0 ? strlen(txt) : 1;
    if (!sb_put(&p->raw, txt, tlen, p->prm.max_call_bytes)) {
        call_fail(p, "tool call too large (or out of memory)");
        step(p, it);
        return;
    }
    switch (p->st) {
    case S_CALL_NAME:
        if (it.marker >= 0) { p->err = "marker inside the call header"; break; }
        if (it.byte != '{') {
            if (p->nfname >= G4_OUTPARSE_MAX_NAME + 5) { p->err = "tool name too long"; break; }
            p->fname[p->nfname++] = (char)it.byte;
            break;
        }
        p->tool = name_finish(p);
        if (!p->tool) { p->err = "missing or invalid tool name"; break; }
        p->st = S_CALL_ARGS;
        push_frame(p, false);
        if (!p->err && p->prm.stream_args) {
            g4_out_event ev = {0};
            ev.kind = G4_OUT_TOOL_BEGIN;
            ev.tool_index = p->n_calls;
            ev.tool_name = p->tool;
            emit_ev(p, &ev);
            p->begun = true;
        }
        break;
    case S_CALL_ARGS:
        if (it.marker >= 0) dsl_marker(p, (g4_marker)it.marker);
        else dsl_byte(p, it.byte);
        break;
    case S_CALL_END:
        if (it.marker == G4_MK_CALL_CLOSE) { call_done(p); return; }
        if (it.marker < 0 && is_ws(it.byte)) break;
        p->err = "expected <tool_call|> after the arguments";
        break;
    default:
        break;
    }
    if (p->err) {
        const char *why = p->err;
        p->raw.n = raw_before;
        call_fail(p, why);
        step(p, it); /* the offending item, now outside the call */
    }
}

/* After a malformed call: plain content, except that the call's own
 * <tool_call|> (if it comes) is part of its text and ends the recovery. */
static void recover_item(g4_outparse *p, item it)
{
    p->st = S_CONTENT;
    if (it.marker == G4_MK_CALL_CLOSE) {
        text_out(p, G4_OUT_CONTENT, mk_text[it.marker], strlen(mk_text[it.marker]));
        return;
    }
    content_item(p, it);
    if (p->st == S_CONTENT) p->st = S_RECOVER; /* still in the broken call's tail */
}

static void step(g4_outparse *p, item it)
{
    switch (p->st) {
    case S_CONTENT: content_item(p, it); return;
    case S_TURN_ROLE: turn_role_item(p, it); return;
    case S_CHAN_NAME: chan_name_item(p, it); return;
    case S_THOUGHT: thought_item(p, it); return;
    case S_CALL_NAME:
    case S_CALL_ARGS:
    case S_CALL_END: call_item(p, it); return;
    case S_RECOVER: recover_item(p, it); return;
    case S_DONE: return;
    }
}

/* ------------------------------------------------------------------ */
/* lexer                                                                */

static void lex_byte(g4_outparse *p, char c)
{
    if (p->nhold == 0) {
        if (c != '<') { item it = { -1, (unsigned char)c }; step(p, it); return; }
        p->hold[p->nhold++] = c;
        return;
    }
    p->hold[p->nhold++] = c;
    bool prefix = false;
    for (int m = 0; m < G4_MK_COUNT; m++) {
        size_t L = strlen(mk_text[m]);
        if (p->nhold <= L && !memcmp(p->hold, mk_text[m], p->nhold)) {
            if (p->nhold == L) {
                p->nhold = 0;
                item it = { m, 0 };
                step(p, it);
                return;
            }
            prefix = true;
        }
    }
    if (prefix) return;
    /* no marker starts here: the '<' is text; rescan the rest */
    char tmp[MK_MAXLEN];
    size_t n = p->nhold - 1;
    memcpy(tmp, p->hold + 1, n);
    p->nhold = 0;
    item lt = { -1, '<' };
    step(p, lt);
    for (size_t i = 0; i < n; i++) lex_byte(p, tmp[i]);
}

/* ------------------------------------------------------------------ */
/* public API                                                           */

g4_outparse_params g4_outparse_default_params(void)
{
    g4_outparse_params pr;
    memset(&pr, 0, sizeof pr);
    pr.stream_args = false;
    pr.start_in_thought = false;
    pr.max_call_bytes = G4_OUTPARSE_DEFAULT_MAX_CALL;
    pr.max_depth = G4_OUTPARSE_DEPTH_CAP;
    return pr;
}

g4_outparse *g4_outparse_new(const g4_outparse_params *params)
{
    g4_outparse *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->prm = params ? *params : g4_outparse_default_params();
    if (p->prm.max_depth <= 0 || p->prm.max_depth > G4_OUTPARSE_DEPTH_CAP)
        p->prm.max_depth = G4_OUTPARSE_DEPTH_CAP;
    if (p->prm.max_call_bytes < 64) p->prm.max_call_bytes = 64;
    /* worst case: every raw byte becomes a 6-byte \u00XX escape */
    p->json_limit = p->prm.max_call_bytes > ((size_t)-1) / 8 ? ((size_t)-1) / 2
                                                             : p->prm.max_call_bytes * 6 + 64;
    g4_outparse_reset(p);
    return p;
}

void g4_outparse_reset(g4_outparse *p)
{
    if (!p) return;
    call_clear(p);
    p->st = p->prm.start_in_thought ? S_THOUGHT : S_CONTENT;
    p->nhold = 0;
    p->out_kind = -1;
    p->nout = 0;
    p->held_nl = 0;
    p->nname = 0;
    p->n_calls = 0;
    p->done = false;
    p->warned_after_end = false;
}

void g4_outparse_free(g4_outparse *p)
{
    if (!p) return;
    free(p->raw.p);
    free(p->json.p);
    free(p);
}

int g4_outparse_push(g4_outparse *p, const char *text, size_t len,
                     g4_outparse_cb cb, void *user)
{
    if (!p) return -1;
    p->cb = cb;
    p->user = user;
    if (p->done) {
        if (len > 0 && !p->warned_after_end) {
            p->warned_after_end = true;
            warn(p, "%s", "text after the end-of-generation marker ignored");
        }
        return 1;
    }
    size_t i = 0;
    while (i < len && !p->done) lex_byte(p, text[i++]);
    if (!p->done) {
        flush_text(p, true);
        flush_args(p);
    } else if (i < len && !p->warned_after_end) {
        p->warned_after_end = true;
        warn(p, "%s", "text after the end-of-generation marker ignored");
    }
    p->cb = NULL;
    p->user = NULL;
    return p->done ? 1 : 0;
}

int g4_outparse_finish(g4_outparse *p, g4_outparse_cb cb, void *user)
{
    if (!p) return -1;
    p->cb = cb;
    p->user = user;
    if (!p->done) {
        /* held bytes are not a marker: plain text */
        size_t n = p->nhold;
        char tmp[MK_MAXLEN];
        memcpy(tmp, p->hold, n);
        p->nhold = 0;
        for (size_t i = 0; i < n && !p->done; i++) {
            item it = { -1, (unsigned char)tmp[i] };
            step(p, it);
        }
    }
    if (!p->done) {
        switch (p->st) {
        case S_TURN_ROLE: p->nname = 0; break; /* an unfinished header: nothing to show */
        case S_CHAN_NAME:
            if (p->nname != 7)
                text_out(p, G4_OUT_THOUGHT, p->name, p->nname);
            p->nname = 0;
            break;
        case S_THOUGHT: p->held_nl = 0; break; /* unterminated thought stays thought */
        case S_CALL_NAME:
        case S_CALL_ARGS:
        case S_CALL_END:
            call_fail(p, "unterminated tool call at end of output");
            break;
        default: break;
        }
        p->st = S_CONTENT;
        end_gen(p, G4_OUT_END_FINISH);
    }
    flush_text(p, false);
    p->cb = NULL;
    p->user = NULL;
    return 0;
}
