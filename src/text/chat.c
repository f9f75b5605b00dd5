/*
 * chat.c - native renderer of the Gemma 4 chat template.
 *
 * Reference: Google's official large-model template (gemma-4-12B/26B-A4B/
 * 31B-it, "Canonical Chat Template" of 2026-07-09).  This file follows that
 * template's control flow step by step; names below (loop_messages,
 * prev_message_type, last_user_idx, continues_into_next, ...) are the
 * template's own, so the two can be read side by side.  In outline:
 *
 *   <bos>
 *   [<|turn>system\n [<|think|>\n] [first system/developer text]
 *                    [<|tool>declaration:...<tool|>]* <turn|>\n]
 *   per non-tool message:
 *     <|turn>ROLE\n  (omitted when an assistant continues an assistant)
 *     [<|channel>thought\nREASONING\n<channel|>]  (messages after the last user)
 *     [<|tool_call>call:NAME{args}<tool_call|>]*
 *     [<|tool_response>response:NAME{...}<tool_response|>]*  (the role:tool
 *                    messages that follow, scanned forward)
 *     content (user: trimmed; model: thoughts stripped, trimmed; parts in order)
 *     close: <|tool_response> (calls without results) | nothing (continues
 *            into the next assistant, or results and no text at the end) |
 *            <turn|>\n
 *   generation prompt: <|turn>model\n<|channel>thought\n<channel|> (thinking
 *            off) | <|turn>model\n (thinking on) | <|channel>thought\n (after
 *            tool results, thinking on) | nothing (after tool calls/results).
 *
 * Jinja/Python semantics reproduced where they show in the output: `trim` is
 * Python's str.strip() (all Unicode white space); `dictsort` is a stable sort
 * on the lower-cased key; truthiness is Python's (empty string/list/object,
 * 0, false and null are false); a value printed with {{ }} that is not a
 * string prints as Python's str() (None, True, 1.5, ['STRING', 'NULL']).
 * A subscript on something that is not an object is "undefined", which
 * prints as nothing.
 *
 * Deliberate departures from the template, all on input the template itself
 * rejects or silently drops: tool-call `arguments` given as a JSON string
 * are parsed first (the template raises; vLLM and llama.cpp parse them); a
 * role:tool message whose content is a JSON object renders as the template's
 * mapping form response:NAME{k:v,...} (the template raises on it); unknown
 * roles, unknown content-part types and values of the wrong type are errors
 * instead of being dropped or crashing.  Recursion is bounded by
 * G4_CHAT_MAX_DEPTH.
 */
#include "text/chat.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ string buffer */

typedef struct {
    char  *p;
    size_t len, cap;
    bool   oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom || n == 0) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1) nc *= 2;
        char *q = realloc(b->p, nc);
        if (!q) { b->oom = true; return; }
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
static void sb_put(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_free(sbuf *b) { free(b->p); b->p = NULL; b->len = b->cap = 0; }

/* ------------------------------------------------------------ render context */

typedef struct {
    sbuf   out;
    char  *err;
    size_t errlen;
    bool   failed;
    int    depth;
    char   path[256]; /* where we are, for error messages: "tools[0].function..." */
} rctx;

static bool fail(rctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(rctx *c, const char *fmt, ...)
{
    if (c->failed) return false;
    c->failed = true;
    if (c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* Appends a segment to c->path; returns the old length for path_pop. */
static size_t path_push(rctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(rctx *c, const char *fmt, ...)
{
    size_t old = strlen(c->path);
    va_list ap;
    va_start(ap, fmt);
    if (old < sizeof c->path) vsnprintf(c->path + old, sizeof c->path - old, fmt, ap);
    va_end(ap);
    return old;
}
static void path_pop(rctx *c, size_t old) { c->path[old] = 0; }

static bool enter(rctx *c)
{
    if (++c->depth > G4_CHAT_MAX_DEPTH)
        return fail(c, "%s: nested deeper than %d levels", c->path, G4_CHAT_MAX_DEPTH);
    return true;
}
static void leave(rctx *c) { c->depth--; }

/* ------------------------------------------------------------ JSON helpers */

/* value[key] in Jinja terms: NULL ("undefined") unless v is an object. */
static json_t *jget(const json_t *v, const char *key)
{
    return json_is_object(v) ? json_object_get(v, key) : NULL;
}

/* Python truthiness; NULL (undefined) is false. */
static bool truthy(const json_t *v)
{
    if (!v) return false;
    switch (json_typeof(v)) {
    case JSON_OBJECT: return json_object_size(v) > 0;
    case JSON_ARRAY: return json_array_size(v) > 0;
    case JSON_STRING: return json_string_length(v) > 0;
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_REAL: return json_real_value(v) != 0.0;
    case JSON_TRUE: return true;
    default: return false;
    }
}

static const char *type_name(const json_t *v)
{
    if (!v) return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Object keys in `dictsort` order: case-insensitive (ASCII lower-case), stable. */
typedef struct {
    const char *key;
    size_t      idx;
} skey;

static int lower_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
        if (x != y || !x) return (int)x - (int)y;
    }
}
static int skey_cmp(const void *pa, const void *pb)
{
    const skey *a = pa, *b = pb;
    int r = lower_cmp(a->key, b->key);
    if (r) return r;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}
static skey *sorted_keys(rctx *c, const json_t *obj, size_t *n)
{
    *n = json_object_size(obj);
    skey *k = malloc((*n ? *n : 1) * sizeof *k);
    if (!k) { c->out.oom = true; *n = 0; return NULL; }
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        (void)val;
        k[i].key = key;
        k[i].idx = i;
        i++;
    }
    qsort(k, *n, sizeof *k, skey_cmp);
    return k;
}

/* ------------------------------------------------------------ Python text */

/* Byte length of the Python white-space character at s (0 if none); s has
 * `n` bytes left and is valid UTF-8 (jansson guarantees it). */
static size_t py_space_at(const unsigned char *s, size_t n)
{
    unsigned char b = s[0];
    if ((b >= 0x09 && b <= 0x0d) || (b >= 0x1c && b <= 0x20)) return 1;
    if (b < 0x80) return 0;
    unsigned cp;
    size_t l;
    if ((b & 0xe0) == 0xc0 && n >= 2) { cp = (unsigned)(b & 0x1f) << 6 | (s[1] & 0x3f); l = 2; }
    else if ((b & 0xf0) == 0xe0 && n >= 3) { cp = (unsigned)(b & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 | (s[2] & 0x3f); l = 3; }
    else return 0;
    if (cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
        cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000)
        return l;
    return 0;
}

/* Python str.strip(): [*b, *e) of s[0..n). */
static void py_trim(const char *s, size_t n, size_t *b, size_t *e)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, j = n, l;
    while (i < j && (l = py_space_at(u + i, j - i)) > 0) i += l;
    while (j > i) {
        size_t k = j - 1;
        while (k > i && (u[k] & 0xc0) == 0x80) k--; /* start of the last character */
        if (py_space_at(u + k, j - k) != j - k) break;
        j = k;
    }
    *b = i;
    *e = j;
}
static void put_trimmed(sbuf *o, const char *s, size_t n)
{
    size_t b, e;
    py_trim(s, n, &b, &e);
    sb_add(o, s + b, e - b);
}
static bool is_blank(const char *s, size_t n)
{
    size_t b, e;
    py_trim(s, n, &b, &e);
    return b == e;
}

/* Python repr() of a float (the shortest string that reads back). */
static void py_float(sbuf *o, double d)
{
    if (isnan(d)) { sb_put(o, "nan"); return; }
    if (isinf(d)) { sb_put(o, d < 0 ? "-inf" : "inf"); return; }
    char buf[48];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d) break;
    }
    /* buf = [-]D[.DDD]e(+|-)XX */
    const char *p = buf;
    if (*p == '-') { sb_put(o, "-"); p++; }
    char dig[32];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.' && nd < sizeof dig - 1) dig[nd++] = *p;
    int ex = atoi(p + 1);
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    dig[nd] = 0;
    int decpt = ex + 1;
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            sb_put(o, "0.");
            for (int i = 0; i < -decpt; i++) sb_put(o, "0");
            sb_add(o, dig, nd);
        } else if ((size_t)decpt >= nd) {
            sb_add(o, dig, nd);
            for (size_t i = nd; i < (size_t)decpt; i++) sb_put(o, "0");
            sb_put(o, ".0");
        } else {
            sb_add(o, dig, (size_t)decpt);
            sb_put(o, ".");
            sb_add(o, dig + decpt, nd - (size_t)decpt);
        }
    } else {
        sb_add(o, dig, 1);
        if (nd > 1) { sb_put(o, "."); sb_add(o, dig + 1, nd - 1); }
        char e[16];
        snprintf(e, sizeof e, "e%c%02d", ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
        sb_put(o, e);
    }
}

/* Python repr() of a str (quote choice and escapes of str.__repr__; "not
 * printable" approximated by the C0/C1 controls and the Unicode separators). */
static void py_repr_str(sbuf *o, const char *s, size_t n)
{
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    sb_add(o, &q, 1);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char b = u[i];
        char esc[16];
        if (b < 0x80) {
            if (b == '\\' || b == (unsigned char)q) { esc[0] = '\\'; esc[1] = (char)b; sb_add(o, esc, 2); }
            else if (b == '\n') sb_put(o, "\\n");
            else if (b == '\r') sb_put(o, "\\r");
            else if (b == '\t') sb_put(o, "\\t");
            else if (b < 0x20 || b == 0x7f) { snprintf(esc, sizeof esc, "\\x%02x", b); sb_put(o, esc); }
            else sb_add(o, (const char *)&b, 1);
            i++;
            continue;
        }
        size_t l = (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : 4;
        if (i + l > n) l = n - i;
        unsigned cp = l == 2 ? (unsigned)(b & 0x1f) << 6 | (u[i + 1] & 0x3f)
                    : l == 3 ? (unsigned)(b & 0x0f) << 12 | (unsigned)(u[i + 1] & 0x3f) << 6 | (u[i + 2] & 0x3f)
                    : 0;
        bool unprintable = (cp >= 0x80 && cp <= 0xa0) || cp == 0xad || cp == 0x1680 ||
                           (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
                           (cp >= 0x205f && cp <= 0x2064) || cp == 0x3000 || cp == 0xfeff;
        if (unprintable) {
            snprintf(esc, sizeof esc, cp < 0x100 ? "\\x%02x" : "\\u%04x", cp);
            sb_put(o, esc);
        } else {
            sb_add(o, s + i, l);
        }
        i += l;
    }
    sb_add(o, &q, 1);
}

static bool py_repr(rctx *c, sbuf *o, const json_t *v);

/* Python str() of a value, as {{ v }} prints it; NULL (undefined) prints nothing. */
static bool py_str(rctx *c, sbuf *o, const json_t *v)
{
    if (!v) return true;
    if (json_is_string(v)) { sb_add(o, json_string_value(v), json_string_length(v)); return true; }
    return py_repr(c, o, v);
}

static bool py_repr(rctx *c, sbuf *o, const json_t *v)
{
    char buf[32];
    switch (json_typeof(v)) {
    case JSON_STRING: py_repr_str(o, json_string_value(v), json_string_length(v)); return true;
    case JSON_INTEGER:
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        sb_put(o, buf);
        return true;
    case JSON_REAL: py_float(o, json_real_value(v)); return true;
    case JSON_TRUE: sb_put(o, "True"); return true;
    case JSON_FALSE: sb_put(o, "False"); return true;
    case JSON_NULL: sb_put(o, "None"); return true;
    case JSON_ARRAY: {
        if (!enter(c)) return false;
        sb_put(o, "[");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) sb_put(o, ", ");
            if (!py_repr(c, o, json_array_get(v, i))) return false;
        }
        sb_put(o, "]");
        leave(c);
        return true;
    }
    case JSON_OBJECT: {
        if (!enter(c)) return false;
        sb_put(o, "{");
        const char *key;
        json_t *val;
        bool first = true;
        json_object_foreach((json_t *)v, key, val) {
            if (!first) sb_put(o, ", ");
            first = false;
            py_repr_str(o, key, strlen(key));
            sb_put(o, ": ");
            if (!py_repr(c, o, val)) return false;
        }
        sb_put(o, "}");
        leave(c);
        return true;
    }
    }
    return true;
}

/* str(v) | upper  (ASCII upper-casing; JSON-schema type names are ASCII). */
static bool py_upper(rctx *c, sbuf *o, const json_t *v)
{
    size_t start = o->len;
    if (!py_str(c, o, v)) return false;
    for (size_t i = start; i < o->len && o->p; i++)
        if (o->p[i] >= 'a' && o->p[i] <= 'z') o->p[i] = (char)(o->p[i] - 32);
    return true;
}

/* (v | upper) == want */
static bool upper_is(rctx *c, const json_t *v, const char *want)
{
    sbuf t = { 0 };
    bool ok = py_upper(c, &t, v) && !t.oom && strcmp(t.p ? t.p : "", want) == 0;
    if (t.oom) c->out.oom = true;
    sb_free(&t);
    return ok;
}

/* ------------------------------------------------------------ template macros */

#define Q "<|\"|>" /* Gemma's string quote token */

/* format_argument(argument, escape_keys) */
static bool format_argument(rctx *c, const json_t *v, bool escape_keys)
{
    sbuf *o = &c->out;
    if (!v || json_is_null(v)) { if (v) sb_put(o, "null"); return true; }
    if (json_is_string(v)) {
        sb_put(o, Q);
        sb_add(o, json_string_value(v), json_string_length(v));
        sb_put(o, Q);
        return true;
    }
    if (json_is_boolean(v)) { sb_put(o, json_is_true(v) ? "true" : "false"); return true; }
    if (json_is_object(v)) {
        if (!enter(c)) return false;
        size_t n;
        skey *k = sorted_keys(c, v, &n);
        sb_put(o, "{");
        for (size_t i = 0; i < n; i++) {
            if (i) sb_put(o, ",");
            if (escape_keys) sb_put(o, Q);
            sb_put(o, k[i].key);
            if (escape_keys) sb_put(o, Q);
            sb_put(o, ":");
            size_t m = path_push(c, ".%s", k[i].key);
            bool ok = format_argument(c, json_object_get(v, k[i].key), escape_keys);
            path_pop(c, m);
            if (!ok) { free(k); return false; }
        }
        sb_put(o, "}");
        free(k);
        leave(c);
        return true;
    }
    if (json_is_array(v)) {
        if (!enter(c)) return false;
        sb_put(o, "[");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) sb_put(o, ",");
            size_t m = path_push(c, "[%zu]", i);
            bool ok = format_argument(c, json_array_get(v, i), escape_keys);
            path_pop(c, m);
            if (!ok) return false;
        }
        sb_put(o, "]");
        leave(c);
        return true;
    }
    return py_str(c, o, v); /* numbers */
}

/* required:[<|"|>a<|"|>,...] from a list (each item printed with str()). */
static bool format_required(rctx *c, const json_t *req)
{
    if (!json_is_array(req)) return fail(c, "%s.required: expected an array, got %s", c->path, type_name(req));
    sb_put(&c->out, "required:[");
    for (size_t i = 0; i < json_array_size(req); i++) {
        if (i) sb_put(&c->out, ",");
        sb_put(&c->out, Q);
        if (!py_str(c, &c->out, json_array_get(req, i))) return false;
        sb_put(&c->out, Q);
    }
    sb_put(&c->out, "]");
    return true;
}

/* The `if add_comma %},{% else %}{% set add_comma = true %}` idiom. */
static void comma(rctx *c, bool *add_comma)
{
    if (*add_comma) sb_put(&c->out, ",");
    else *add_comma = true;
}

static bool format_parameters(rctx *c, const json_t *properties, bool filter_keys);

/* items:{...} of an ARRAY property. */
static bool format_items(rctx *c, const json_t *items)
{
    sbuf *o = &c->out;
    size_t n;
    skey *k = sorted_keys(c, items, &n);
    bool found_first = false, ok = true;
    sb_put(o, "items:{");
    for (size_t i = 0; i < n && ok; i++) {
        const char *key = k[i].key;
        const json_t *iv = json_object_get(items, key);
        if (json_is_null(iv)) continue;
        if (found_first) sb_put(o, ",");
        found_first = true;
        size_t m = path_push(c, ".items");
        if (!strcmp(key, "properties")) {
            sb_put(o, "properties:{");
            if (json_is_object(iv)) {
                size_t m2 = path_push(c, ".properties");
                ok = format_parameters(c, iv, false);
                path_pop(c, m2);
            }
            sb_put(o, "}");
        } else if (!strcmp(key, "required")) {
            ok = format_required(c, iv);
        } else if (!strcmp(key, "type")) {
            sb_put(o, "type:");
            if (json_is_string(iv)) {
                sb_put(o, Q);
                ok = py_upper(c, o, iv);
                sb_put(o, Q);
            } else if (json_is_array(iv)) {
                sb_put(o, "[");
                for (size_t j = 0; j < json_array_size(iv) && ok; j++) {
                    if (j) sb_put(o, ",");
                    sb_put(o, Q);
                    ok = py_upper(c, o, json_array_get(iv, j));
                    sb_put(o, Q);
                }
                sb_put(o, "]");
            } else {
                ok = fail(c, "%s.type: expected a string or an array, got %s", c->path, type_name(iv));
            }
        } else {
            sb_put(o, key);
            sb_put(o, ":");
            size_t m2 = path_push(c, ".%s", key);
            ok = format_argument(c, iv, true);
            path_pop(c, m2);
        }
        path_pop(c, m);
    }
    sb_put(o, "}");
    free(k);
    return ok;
}

/* format_parameters(properties, required, filter_keys) */
static bool format_parameters(rctx *c, const json_t *properties, bool filter_keys)
{
    static const char *const standard_keys[] = { "description", "type", "properties", "required", "nullable" };
    if (!json_is_object(properties))
        return fail(c, "%s: expected an object, got %s", c->path, type_name(properties));
    if (!enter(c)) return false;
    sbuf *o = &c->out;
    size_t n;
    skey *k = sorted_keys(c, properties, &n);
    bool found_first = false, ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        const char *key = k[i].key;
        if (filter_keys) {
            bool std = false;
            for (size_t s = 0; s < sizeof standard_keys / sizeof *standard_keys; s++)
                if (!strcmp(key, standard_keys[s])) std = true;
            if (std) continue;
        }
        const json_t *value = json_object_get(properties, key);
        const json_t *type = jget(value, "type");
        size_t m = path_push(c, ".%s", key);
        bool add_comma = false;
        if (found_first) sb_put(o, ",");
        found_first = true;
        sb_put(o, key);
        sb_put(o, ":{");
        if (truthy(jget(value, "description"))) {
            sb_put(o, "description:" Q);
            ok = ok && py_str(c, o, jget(value, "description"));
            sb_put(o, Q);
            add_comma = true;
        }
        if (upper_is(c, type, "STRING")) {
            if (truthy(jget(value, "enum"))) {
                comma(c, &add_comma);
                sb_put(o, "enum:");
                size_t m2 = path_push(c, ".enum");
                ok = ok && format_argument(c, jget(value, "enum"), true);
                path_pop(c, m2);
            }
        } else if (upper_is(c, type, "ARRAY")) {
            const json_t *items = jget(value, "items");
            if (json_is_object(items) && json_object_size(items) > 0) {
                comma(c, &add_comma);
                ok = ok && format_items(c, items);
            }
        }
        if (truthy(jget(value, "nullable"))) {
            comma(c, &add_comma);
            sb_put(o, "nullable:true");
        }
        if (upper_is(c, type, "OBJECT")) {
            const json_t *props = jget(value, "properties");
            comma(c, &add_comma);
            sb_put(o, "properties:{");
            if (json_is_object(props)) {
                size_t m2 = path_push(c, ".properties");
                ok = ok && format_parameters(c, props, false);
                path_pop(c, m2);
            } else {
                /* no usable "properties": the schema's own non-standard keys */
                ok = ok && format_parameters(c, value, true);
            }
            sb_put(o, "}");
            if (truthy(jget(value, "required"))) {
                comma(c, &add_comma);
                ok = ok && format_required(c, jget(value, "required"));
            }
        }
        comma(c, &add_comma);
        sb_put(o, "type:" Q);
        ok = ok && py_upper(c, o, type);
        sb_put(o, Q "}");
        path_pop(c, m);
    }
    free(k);
    leave(c);
    return ok;
}

/* format_function_declaration(tool_data); the template then trims it, which
 * never changes it (it starts with "declaration:" and ends with "}"). */
static bool format_function_declaration(rctx *c, const json_t *tool, size_t ti)
{
    sbuf *o = &c->out;
    const json_t *fn = jget(tool, "function");
    snprintf(c->path, sizeof c->path, "tools[%zu]", ti);
    if (!json_is_object(tool)) return fail(c, "tools[%zu]: expected an object, got %s", ti, type_name(tool));
    if (!json_is_object(fn))
        return fail(c, "tools[%zu].function: expected an object, got %s", ti, type_name(fn));
    const json_t *name = jget(fn, "name");
    if (!json_is_string(name)) return fail(c, "tools[%zu].function.name: expected a string, got %s", ti, type_name(name));
    sb_put(o, "declaration:");
    sb_put(o, json_string_value(name));
    sb_put(o, "{description:" Q);
    if (!py_str(c, o, jget(fn, "description"))) return false;
    sb_put(o, Q);
    const json_t *params = jget(fn, "parameters");
    if (params && !json_is_object(params) && !json_is_null(params))
        return fail(c, "tools[%zu].function.parameters: expected an object, got %s", ti, type_name(params));
    if (truthy(params)) {
        sb_put(o, ",parameters:{");
        snprintf(c->path, sizeof c->path, "tools[%zu].function.parameters", ti);
        if (truthy(jget(params, "properties"))) {
            sb_put(o, "properties:{");
            size_t m = path_push(c, ".properties");
            bool ok = format_parameters(c, jget(params, "properties"), false);
            path_pop(c, m);
            if (!ok) return false;
            sb_put(o, "},");
        }
        if (truthy(jget(params, "required"))) {
            if (!format_required(c, jget(params, "required"))) return false;
            sb_put(o, ",");
        }
        if (truthy(jget(params, "type"))) {
            sb_put(o, "type:" Q);
            if (!py_upper(c, o, jget(params, "type"))) return false;
            sb_put(o, Q "}");
        }
    }
    if (jget(fn, "response")) {
        const json_t *resp = jget(fn, "response");
        sb_put(o, ",response:{");
        if (truthy(jget(resp, "description"))) {
            sb_put(o, "description:" Q);
            if (!py_str(c, o, jget(resp, "description"))) return false;
            sb_put(o, Q ",");
        }
        if (upper_is(c, jget(resp, "type"), "OBJECT")) {
            sb_put(o, "type:" Q);
            if (!py_upper(c, o, jget(resp, "type"))) return false;
            sb_put(o, Q "}");
        }
    }
    sb_put(o, "}");
    return true;
}

/* strip_thinking(text): drop every <|channel>...<channel|> span, then trim. */
static void strip_thinking(sbuf *o, const char *s, size_t n)
{
    static const char open[] = "<|channel>", close[] = "<channel|>";
    sbuf t = { 0 };
    const char *end = s + n;
    for (const char *part = s;;) {
        const char *cl = NULL;
        for (const char *q = part; q + 10 <= end; q++)
            if (!memcmp(q, close, 10)) { cl = q; break; }
        const char *pe = cl ? cl : end;
        const char *op = NULL;
        for (const char *q = part; q + 10 <= pe; q++)
            if (!memcmp(q, open, 10)) { op = q; break; }
        sb_add(&t, part, (size_t)((op ? op : pe) - part));
        if (!cl) break;
        part = cl + 10;
    }
    if (t.oom) o->oom = true;
    else if (t.p) put_trimmed(o, t.p, t.len);
    sb_free(&t);
}

/* format_tool_response_block(tool_name, response) */
static bool format_tool_response_block(rctx *c, const char *name, const json_t *response)
{
    sbuf *o = &c->out;
    sb_put(o, "<|tool_response>response:");
    sb_put(o, name);
    sb_put(o, "{");
    if (json_is_object(response)) {
        size_t n;
        skey *k = sorted_keys(c, response, &n);
        for (size_t i = 0; i < n; i++) {
            if (i) sb_put(o, ",");
            sb_put(o, k[i].key);
            sb_put(o, ":");
            size_t m = path_push(c, ".%s", k[i].key);
            bool ok = format_argument(c, json_object_get(response, k[i].key), false);
            path_pop(c, m);
            if (!ok) { free(k); return false; }
        }
        free(k);
    } else {
        sb_put(o, "value:");
        if (!format_argument(c, response, false)) return false;
    }
    sb_put(o, "}<tool_response|>");
    return true;
}

/* ------------------------------------------------------------ validation */

typedef enum { R_SYSTEM, R_DEVELOPER, R_USER, R_ASSISTANT, R_TOOL } role_t;
static const char *const role_names[] = { "system", "developer", "user", "assistant", "tool" };

static bool is_media(const char *t, const char **placeholder)
{
    if (!strcmp(t, "image") || !strcmp(t, "image_url")) { *placeholder = "<|image|>"; return true; }
    if (!strcmp(t, "audio") || !strcmp(t, "input_audio")) { *placeholder = "<|audio|>"; return true; }
    if (!strcmp(t, "video")) { *placeholder = "<|video|>"; return true; }
    return false;
}

static bool check_parts(rctx *c, size_t mi, const json_t *content)
{
    for (size_t k = 0; k < json_array_size(content); k++) {
        const json_t *part = json_array_get(content, k);
        const char *ph;
        if (!json_is_object(part))
            return fail(c, "messages[%zu].content[%zu]: expected an object, got %s", mi, k, type_name(part));
        const json_t *type = json_object_get(part, "type");
        if (!json_is_string(type))
            return fail(c, "messages[%zu].content[%zu].type: expected a string, got %s", mi, k, type_name(type));
        const char *t = json_string_value(type);
        if (!strcmp(t, "text")) {
            const json_t *text = json_object_get(part, "text");
            if (!json_is_string(text))
                return fail(c, "messages[%zu].content[%zu].text: expected a string, got %s", mi, k, type_name(text));
        } else if (!is_media(t, &ph)) {
            return fail(c, "messages[%zu].content[%zu].type: unknown part type '%.40s' (expected text, image, image_url, "
                           "audio, input_audio or video)", mi, k, t);
        }
    }
    return true;
}

static bool opt_string(rctx *c, const json_t *v, size_t mi, const char *field)
{
    if (v && !json_is_string(v) && !json_is_null(v))
        return fail(c, "messages[%zu].%s: expected a string or null, got %s", mi, field, type_name(v));
    return true;
}

/* Checks one message's shape; parses string tool-call arguments in place. */
static bool check_message(rctx *c, json_t *m, size_t mi, role_t *role)
{
    if (!json_is_object(m)) return fail(c, "messages[%zu]: expected an object, got %s", mi, type_name(m));
    const json_t *r = json_object_get(m, "role");
    if (!r) return fail(c, "messages[%zu].role: missing", mi);
    if (!json_is_string(r)) return fail(c, "messages[%zu].role: expected a string, got %s", mi, type_name(r));
    size_t ri;
    for (ri = 0; ri < 5; ri++)
        if (!strcmp(json_string_value(r), role_names[ri])) break;
    if (ri == 5)
        return fail(c, "messages[%zu].role: unknown role '%.40s' (expected system, developer, user, assistant or tool)",
                    mi, json_string_value(r));
    *role = (role_t)ri;

    const json_t *content = json_object_get(m, "content");
    if (content && json_is_array(content)) {
        if (!check_parts(c, mi, content)) return false;
    } else if (content && !json_is_string(content) && !json_is_null(content)) {
        /* a tool result may be any JSON value (rendered with the DSL) */
        if (*role != R_TOOL)
            return fail(c, "messages[%zu].content: expected a string, an array of parts or null, got %s", mi,
                        type_name(content));
    }
    if (!opt_string(c, json_object_get(m, "reasoning"), mi, "reasoning")) return false;
    if (!opt_string(c, json_object_get(m, "reasoning_content"), mi, "reasoning_content")) return false;
    if (!opt_string(c, json_object_get(m, "tool_call_id"), mi, "tool_call_id")) return false;
    if (!opt_string(c, json_object_get(m, "name"), mi, "name")) return false;

    json_t *calls = json_object_get(m, "tool_calls");
    if (calls && !json_is_array(calls) && !json_is_null(calls))
        return fail(c, "messages[%zu].tool_calls: expected an array, got %s", mi, type_name(calls));
    for (size_t j = 0; j < json_array_size(calls); j++) {
        json_t *tc = json_array_get(calls, j);
        if (!json_is_object(tc))
            return fail(c, "messages[%zu].tool_calls[%zu]: expected an object, got %s", mi, j, type_name(tc));
        const json_t *id = json_object_get(tc, "id");
        if (id && !json_is_string(id) && !json_is_null(id))
            return fail(c, "messages[%zu].tool_calls[%zu].id: expected a string, got %s", mi, j, type_name(id));
        json_t *fn = json_object_get(tc, "function");
        if (!json_is_object(fn))
            return fail(c, "messages[%zu].tool_calls[%zu].function: expected an object, got %s", mi, j, type_name(fn));
        const json_t *name = json_object_get(fn, "name");
        if (!json_is_string(name))
            return fail(c, "messages[%zu].tool_calls[%zu].function.name: expected a string, got %s", mi, j,
                        type_name(name));
        json_t *args = json_object_get(fn, "arguments");
        if (!args) return fail(c, "messages[%zu].tool_calls[%zu].function.arguments: missing", mi, j);
        if (json_is_string(args)) {
            json_error_t je;
            json_t *parsed = json_loadb(json_string_value(args), json_string_length(args), JSON_DECODE_ANY, &je);
            if (!parsed)
                return fail(c, "messages[%zu].tool_calls[%zu].function.arguments: malformed JSON string "
                               "(line %d, column %d: %s)", mi, j, je.line, je.column, je.text);
            if (!json_is_object(parsed) && !json_is_null(parsed)) {
                const char *what = type_name(parsed); /* a string literal: outlives parsed */
                json_decref(parsed);
                return fail(c, "messages[%zu].tool_calls[%zu].function.arguments: the JSON string holds %s, "
                               "expected an object", mi, j, what);
            }
            if (json_object_set_new(fn, "arguments", parsed)) { c->out.oom = true; return false; }
        } else if (!json_is_object(args) && !json_is_null(args)) {
            return fail(c, "messages[%zu].tool_calls[%zu].function.arguments: expected an object or a JSON string, "
                           "got %s", mi, j, type_name(args));
        }
    }

    const json_t *trs = json_object_get(m, "tool_responses"); /* legacy Gemma form */
    if (trs && !json_is_array(trs) && !json_is_null(trs))
        return fail(c, "messages[%zu].tool_responses: expected an array, got %s", mi, type_name(trs));
    for (size_t j = 0; j < json_array_size(trs); j++) {
        const json_t *tr = json_array_get(trs, j);
        if (!json_is_object(tr))
            return fail(c, "messages[%zu].tool_responses[%zu]: expected an object, got %s", mi, j, type_name(tr));
        const json_t *name = json_object_get(tr, "name");
        if (name && !json_is_string(name) && !json_is_null(name))
            return fail(c, "messages[%zu].tool_responses[%zu].name: expected a string, got %s", mi, j, type_name(name));
        if (!json_object_get(tr, "response"))
            return fail(c, "messages[%zu].tool_responses[%zu].response: missing", mi, j);
    }
    return true;
}

/* ------------------------------------------------------------ the template */

typedef enum { PT_NONE, PT_THINK, PT_TOOL, PT_TOOL_CALL, PT_TOOL_RESPONSE } prev_type;

/* message content: string or list of parts, in order */
static void render_content(rctx *c, const json_t *content, bool is_model)
{
    sbuf *o = &c->out;
    if (json_is_string(content)) {
        if (is_model) strip_thinking(o, json_string_value(content), json_string_length(content));
        else put_trimmed(o, json_string_value(content), json_string_length(content));
        return;
    }
    for (size_t k = 0; k < json_array_size(content); k++) {
        const json_t *part = json_array_get(content, k);
        const char *t = json_string_value(json_object_get(part, "type")), *ph;
        if (!strcmp(t, "text")) {
            const json_t *text = json_object_get(part, "text");
            if (is_model) strip_thinking(o, json_string_value(text), json_string_length(text));
            else put_trimmed(o, json_string_value(text), json_string_length(text));
        } else if (is_media(t, &ph)) {
            sb_put(o, ph);
        }
    }
}

/* tc.get('id') == follow.get('tool_call_id'), with absent == null (None). */
static bool ids_equal(const json_t *a, const json_t *b)
{
    bool an = !a || json_is_null(a), bn = !b || json_is_null(b);
    if (an || bn) return an && bn;
    return json_equal((json_t *)a, (json_t *)b);
}

/* The tool messages following an assistant message with tool calls. */
static bool render_tool_results(rctx *c, json_t *msgs, size_t i, const json_t *calls, const role_t *roles, size_t n)
{
    for (size_t k = i + 1; k < n && roles[k] == R_TOOL; k++) {
        const json_t *follow = json_array_get(msgs, k);
        const json_t *fname = json_object_get(follow, "name");
        const char *name = truthy(fname) ? json_string_value(fname) : "unknown";
        for (size_t j = 0; j < json_array_size(calls); j++) {
            const json_t *tc = json_array_get(calls, j);
            if (ids_equal(json_object_get(tc, "id"), json_object_get(follow, "tool_call_id")))
                name = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
        }
        const json_t *body = json_object_get(follow, "content");
        snprintf(c->path, sizeof c->path, "messages[%zu].content", k);
        if (json_is_array(body)) {
            sbuf t = { 0 };
            for (size_t p = 0; p < json_array_size(body); p++) {
                const json_t *part = json_array_get(body, p);
                if (!strcmp(json_string_value(json_object_get(part, "type")), "text")) {
                    const json_t *text = json_object_get(part, "text");
                    sb_add(&t, json_string_value(text), json_string_length(text));
                }
            }
            if (t.oom) c->out.oom = true;
            json_t *s = json_stringn(t.p ? t.p : "", t.len);
            sb_free(&t);
            if (!s) { c->out.oom = true; return false; }
            bool ok = format_tool_response_block(c, name, s);
            json_decref(s);
            if (!ok) return false;
            for (size_t p = 0; p < json_array_size(body); p++) {
                const char *ph;
                if (is_media(json_string_value(json_object_get(json_array_get(body, p), "type")), &ph))
                    sb_put(&c->out, ph);
            }
        } else {
            if (!body) body = json_null(); /* follow.get('content') is None */
            if (!format_tool_response_block(c, name, body)) return false;
        }
    }
    return true;
}

static bool render(rctx *c, json_t *msgs, const json_t *tools, const g4_chat_params *p)
{
    sbuf *o = &c->out;
    size_t n = json_array_size(msgs);
    role_t *roles = malloc((n ? n : 1) * sizeof *roles);
    if (!roles) { o->oom = true; return false; }
    for (size_t i = 0; i < n; i++)
        if (!check_message(c, json_array_get(msgs, i), i, &roles[i])) { free(roles); return false; }
    if (tools && !json_is_array(tools) && !json_is_null(tools)) {
        free(roles);
        return fail(c, "tools: expected an array, got %s", type_name(tools));
    }

    prev_type pt = PT_NONE;
    size_t start = 0;
    sb_put(o, "<bos>");

    /* system turn */
    bool first_sys = n > 0 && (roles[0] == R_SYSTEM || roles[0] == R_DEVELOPER);
    if (p->enable_thinking || truthy(tools) || first_sys) {
        sb_put(o, "<|turn>system\n");
        if (p->enable_thinking) { sb_put(o, "<|think|>\n"); pt = PT_THINK; }
        if (first_sys) {
            const json_t *content = json_object_get(json_array_get(msgs, 0), "content");
            if (json_is_string(content)) {
                put_trimmed(o, json_string_value(content), json_string_length(content));
            } else {
                /* each part: (item['text'] | trim) + ' '; media parts give just ' ' */
                for (size_t k = 0; k < json_array_size(content); k++) {
                    const json_t *text = json_object_get(json_array_get(content, k), "text");
                    sbuf t = { 0 };
                    if (!py_str(c, &t, text)) { sb_free(&t); free(roles); return false; }
                    if (t.oom) o->oom = true;
                    else if (t.p) put_trimmed(o, t.p, t.len);
                    sb_free(&t);
                    sb_put(o, " ");
                }
            }
            start = 1;
        }
        if (truthy(tools)) {
            for (size_t t = 0; t < json_array_size(tools); t++) {
                sb_put(o, "<|tool>");
                if (!format_function_declaration(c, json_array_get(tools, t), t)) { free(roles); return false; }
                sb_put(o, "<tool|>");
            }
            pt = PT_TOOL;
        }
        sb_put(o, "<turn|>\n");
    }

    /* last_user_idx, in loop_messages indices (0 = messages[start]) */
    long last_user = -1;
    for (size_t i = start; i < n; i++)
        if (roles[i] == R_USER) last_user = (long)(i - start);

    bool have_prev = false;
    role_t prev_non_tool_role = R_SYSTEM;
    for (size_t i = start; i < n; i++) {
        if (roles[i] == R_TOOL) continue;
        json_t *m = json_array_get(msgs, i);
        bool is_model = roles[i] == R_ASSISTANT;
        pt = PT_NONE;
        bool continue_same_model_turn = is_model && have_prev && prev_non_tool_role == R_ASSISTANT;
        if (!continue_same_model_turn) {
            sb_put(o, "<|turn>");
            sb_put(o, is_model ? "model" : role_names[roles[i]]);
            sb_put(o, "\n");
        }

        /* reasoning, re-inserted after the last user message */
        const json_t *calls = json_object_get(m, "tool_calls");
        const json_t *thinking = json_object_get(m, "reasoning");
        if (!truthy(thinking)) thinking = json_object_get(m, "reasoning_content");
        bool gate = (long)(i - start) > last_user || (p->preserve_thinking && truthy(calls));
        if (truthy(thinking) && gate) {
            sb_put(o, "<|channel>thought\n");
            sb_add(o, json_string_value(thinking), json_string_length(thinking));
            sb_put(o, "\n<channel|>");
        }

        if (truthy(calls)) {
            for (size_t j = 0; j < json_array_size(calls); j++) {
                const json_t *fn = json_object_get(json_array_get(calls, j), "function");
                const json_t *args = json_object_get(fn, "arguments");
                sb_put(o, "<|tool_call>call:");
                sb_put(o, json_string_value(json_object_get(fn, "name")));
                sb_put(o, "{");
                if (json_is_object(args)) {
                    size_t na;
                    skey *k = sorted_keys(c, args, &na);
                    snprintf(c->path, sizeof c->path, "messages[%zu].tool_calls[%zu].function.arguments", i, j);
                    for (size_t a = 0; a < na; a++) {
                        if (a) sb_put(o, ",");
                        sb_put(o, k[a].key);
                        sb_put(o, ":");
                        size_t mk = path_push(c, ".%s", k[a].key);
                        bool ok = format_argument(c, json_object_get(args, k[a].key), false);
                        path_pop(c, mk);
                        if (!ok) { free(k); free(roles); return false; }
                    }
                    free(k);
                }
                sb_put(o, "}<tool_call|>");
            }
            pt = PT_TOOL_CALL;
        }

        bool tr_out = false;
        const json_t *legacy = json_object_get(m, "tool_responses");
        if (truthy(legacy)) {
            for (size_t j = 0; j < json_array_size(legacy); j++) {
                const json_t *tr = json_array_get(legacy, j);
                const json_t *nm = json_object_get(tr, "name");
                snprintf(c->path, sizeof c->path, "messages[%zu].tool_responses[%zu].response", i, j);
                if (!format_tool_response_block(c, truthy(nm) ? json_string_value(nm) : "unknown",
                                                json_object_get(tr, "response"))) {
                    free(roles);
                    return false;
                }
                tr_out = true;
                pt = PT_TOOL_RESPONSE;
            }
        } else if (truthy(calls)) {
            if (!render_tool_results(c, msgs, i, calls, roles, n)) { free(roles); return false; }
            if (i + 1 < n && roles[i + 1] == R_TOOL) { /* at least one result rendered */
                tr_out = true;
                pt = PT_TOOL_RESPONSE;
            }
        }

        size_t cstart = o->len;
        render_content(c, json_object_get(m, "content"), is_model);
        bool has_content = o->p && !is_blank(o->p + cstart, o->len - cstart);

        /* next non-tool message */
        bool next_found = false;
        role_t next_role = R_SYSTEM;
        for (size_t j = i + 1; j < n; j++)
            if (roles[j] != R_TOOL) { next_found = true; next_role = roles[j]; break; }
        bool continues_into_next =
            is_model && next_found && next_role == R_ASSISTANT && (!truthy(calls) || tr_out);

        if (pt == PT_TOOL_CALL && !tr_out) sb_put(o, "<|tool_response>");
        else if (continues_into_next) { /* the next assistant message continues this turn */ }
        else if (!(tr_out && !has_content && !next_found)) sb_put(o, "<turn|>\n");

        have_prev = true;
        prev_non_tool_role = roles[i];
    }
    free(roles);

    if (p->add_generation_prompt) {
        if (pt != PT_TOOL_RESPONSE && pt != PT_TOOL_CALL) {
            sb_put(o, "<|turn>model\n");
            if (!p->enable_thinking) sb_put(o, "<|channel>thought\n<channel|>");
        } else if (pt == PT_TOOL_RESPONSE && p->enable_thinking) {
            sb_put(o, "<|channel>thought\n");
        }
    }
    return !c->failed;
}

/* ------------------------------------------------------------ public API */

g4_chat_params g4_chat_default_params(void)
{
    g4_chat_params p;
    memset(&p, 0, sizeof p);
    p.enable_thinking = false;
    p.add_generation_prompt = true;
    p.preserve_thinking = false;
    return p;
}

g4_status g4_chat_render_json(json_t *messages, const json_t *tools, const g4_chat_params *p, char **out, char *err,
                              size_t errlen)
{
    rctx c;
    memset(&c, 0, sizeof c);
    c.err = err;
    c.errlen = errlen;
    if (err && errlen) err[0] = 0;
    if (!out) {
        if (err && errlen) snprintf(err, errlen, "chat render: out is NULL");
        return G4_ERR_INVALID;
    }
    *out = NULL;
    g4_chat_params def = g4_chat_default_params();
    if (!p) p = &def;
    if (!json_is_array(messages)) {
        if (err && errlen) snprintf(err, errlen, "messages: expected an array, got %s", type_name(messages));
        return G4_ERR_INVALID;
    }
    bool ok = render(&c, messages, tools, p);
    if (c.out.oom) {
        sb_free(&c.out);
        if (err && errlen) snprintf(err, errlen, "chat render: out of memory");
        return G4_ERR_NOMEM;
    }
    if (!ok) {
        sb_free(&c.out);
        return G4_ERR_INVALID;
    }
    *out = c.out.p;
    return G4_OK;
}

g4_status g4_chat_render(const char *messages_json, const char *tools_json, const g4_chat_params *p, char **out,
                         char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (out) *out = NULL;
    if (!messages_json || !out) {
        if (err && errlen) snprintf(err, errlen, "chat render: %s is NULL", out ? "messages_json" : "out");
        return G4_ERR_INVALID;
    }
    json_error_t je;
    json_t *doc = json_loads(messages_json, JSON_DECODE_ANY, &je);
    if (!doc) {
        if (err && errlen)
            snprintf(err, errlen, "messages: invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
        return G4_ERR_FORMAT;
    }
    json_t *tools = NULL;
    if (tools_json) {
        tools = json_loads(tools_json, JSON_DECODE_ANY, &je);
        if (!tools) {
            json_decref(doc);
            if (err && errlen)
                snprintf(err, errlen, "tools: invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
            return G4_ERR_FORMAT;
        }
    }
    json_t *messages = doc;
    const json_t *use_tools = tools;
    if (json_is_object(doc)) { /* an OpenAI request body: {"messages": [...], "tools": [...]} */
        messages = json_object_get(doc, "messages");
        if (!messages) {
            json_decref(doc);
            json_decref(tools);
            if (err && errlen) snprintf(err, errlen, "messages: the object has no \"messages\" array");
            return G4_ERR_INVALID;
        }
        if (!tools_json) use_tools = json_object_get(doc, "tools");
    }
    g4_status st = g4_chat_render_json(messages, use_tools, p, out, err, errlen);
    json_decref(doc);
    json_decref(tools);
    return st;
}
