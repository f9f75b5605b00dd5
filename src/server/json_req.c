/* json_req.c - request bodies: JSON parsing with the error position, and
 * typed, range-checked field access that produces OpenAI error objects
 * naming the field (docs/server-api-notes.md, "Numeric ranges"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

json_t *jr_parse_body(const char *body, size_t len, srv_err *e)
{
    json_error_t je;
    if (len == 0) {
        srv_fail(e, 400, "invalid_json", NULL, "invalid JSON at line 1 column 0: the request body is empty");
        return NULL;
    }
    /* JSON_DECODE_ANY: a bare "hi" or 42 is JSON, just not an object: the
     * type error below names that; duplicate keys: the last wins, as in
     * most JSON parsers clients use */
    json_t *o = json_loadb(body, len, JSON_DECODE_ANY, &je);
    if (!o) {
        srv_fail(e, 400, "invalid_json", NULL, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        srv_fail(e, 400, "invalid_type", NULL, "the request body must be a JSON object");
        json_decref(o);
        return NULL;
    }
    return o;
}

bool jr_utf8_ok(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        if (c < 0x80) { i++; continue; }
        size_t k;
        unsigned min;
        if (c >= 0xC2 && c <= 0xDF) { k = 1; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; min = 0x10000; }
        else return false;
        unsigned cp = c & (0x3F >> k);
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (u[i + j] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (u[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += k + 1;
    }
    return true;
}

/* null counts as absent, as OpenAI's API treats it */
static json_t *field(json_t *o, const char *key, bool *present)
{
    json_t *v = json_object_get(o, key);
    if (v && json_is_null(v)) v = NULL;
    if (present) *present = v != NULL;
    return v;
}

bool jr_number(json_t *o, const char *key, double lo, double hi, bool *present, double *out, srv_err *e)
{
    json_t *v = field(o, key, present);
    if (!v) return true;
    if (!json_is_number(v)) { srv_fail(e, 400, "invalid_type", key, "%s: must be a number", key); return false; }
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi) {
        srv_fail(e, 400, "invalid_value", key, "%s: %g is out of range [%g, %g]", key, d, lo, hi);
        return false;
    }
    *out = d;
    return true;
}

bool jr_int(json_t *o, const char *key, int64_t lo, int64_t hi, bool *present, int64_t *out, srv_err *e)
{
    json_t *v = field(o, key, present);
    if (!v) return true;
    int64_t i;
    if (json_is_integer(v)) i = json_integer_value(v);
    else if (json_is_real(v) && isfinite(json_real_value(v)) && json_real_value(v) == floor(json_real_value(v)) &&
             fabs(json_real_value(v)) < 9e15) i = (int64_t)json_real_value(v);   /* 16.0 is an integer */
    else if (json_is_real(v)) { srv_fail(e, 400, "invalid_value", key, "%s: must be an integer, got %g", key, json_real_value(v)); return false; }
    else { srv_fail(e, 400, "invalid_type", key, "%s: must be an integer", key); return false; }
    if (i < lo || i > hi) {
        srv_fail(e, 400, "invalid_value", key, "%s: %lld is out of range [%lld, %lld]", key, (long long)i, (long long)lo, (long long)hi);
        return false;
    }
    *out = i;
    return true;
}

bool jr_bool(json_t *o, const char *key, bool *present, bool *out, srv_err *e)
{
    json_t *v = field(o, key, present);
    if (!v) return true;
    if (!json_is_boolean(v)) { srv_fail(e, 400, "invalid_type", key, "%s: must be true or false", key); return false; }
    *out = json_is_true(v);
    return true;
}

bool jr_string(json_t *o, const char *key, bool *present, const char **out, srv_err *e)
{
    json_t *v = field(o, key, present);
    if (!v) return true;
    if (!json_is_string(v)) { srv_fail(e, 400, "invalid_type", key, "%s: must be a string", key); return false; }
    *out = json_string_value(v);
    return true;
}

static bool parse_stop(json_t *o, srv_req *r, srv_err *e)
{
    json_t *v = field(o, "stop", NULL);
    if (!v) return true;
    json_t *arr = v;
    bool single = json_is_string(v);
    if (!single && !json_is_array(v)) { srv_fail(e, 400, "invalid_type", "stop", "stop: must be a string or an array of strings"); return false; }
    size_t n = single ? 1 : json_array_size(arr);
    if (n > 4) { srv_fail(e, 400, "invalid_value", "stop", "stop: at most 4 sequences, got %zu", n); return false; }
    r->stop = calloc(n ? n : 1, sizeof *r->stop);
    if (!r->stop) { srv_fail(e, 500, "internal_error", NULL, "out of memory"); return false; }
    for (size_t i = 0; i < n; i++) {
        json_t *s = single ? v : json_array_get(arr, i);
        char param[32];
        snprintf(param, sizeof param, "stop[%zu]", i);
        if (!json_is_string(s)) { srv_fail(e, 400, "invalid_type", param, "%s: must be a string", param); return false; }
        size_t len = json_string_length(s);
        if (len == 0) { srv_fail(e, 400, "invalid_value", param, "%s: must not be empty", param); return false; }
        if (len > 1024) { srv_fail(e, 400, "invalid_value", param, "%s: longer than 1024 bytes", param); return false; }
        if (memchr(json_string_value(s), 0, len)) { srv_fail(e, 400, "invalid_value", param, "%s: contains a NUL", param); return false; }
        r->stop[i] = strdup(json_string_value(s));
        if (!r->stop[i]) { srv_fail(e, 500, "internal_error", NULL, "out of memory"); return false; }
        r->n_stop = (int)i + 1;
    }
    return true;
}

static bool parse_bias(srv_server *s, json_t *o, srv_req *r, srv_err *e)
{
    json_t *v = field(o, "logit_bias", NULL);
    if (!v) return true;
    if (!json_is_object(v)) { srv_fail(e, 400, "invalid_type", "logit_bias", "logit_bias: must be an object of token id -> bias"); return false; }
    size_t n = json_object_size(v);
    if (n > 4096) { srv_fail(e, 400, "invalid_value", "logit_bias", "logit_bias: at most 4096 entries, got %zu", n); return false; }
    r->bias_tok = malloc((n ? n : 1) * sizeof *r->bias_tok);
    r->bias_val = malloc((n ? n : 1) * sizeof *r->bias_val);
    if (!r->bias_tok || !r->bias_val) { srv_fail(e, 500, "internal_error", NULL, "out of memory"); return false; }
    const char *k;
    json_t *val;
    size_t i = 0;
    json_object_foreach(v, k, val) {
        char param[64];
        snprintf(param, sizeof param, "logit_bias.%.40s", k);
        char *end;
        long long id = strtoll(k, &end, 10);
        if (!k[0] || *end || k[0] == ' ' || k[0] == '+' || id < 0 || id >= (long long)s->n_vocab) {
            srv_fail(e, 400, "invalid_value", param, "%s: '%.40s' is not a token id in [0, %u)", param, k, s->n_vocab);
            return false;
        }
        if (!json_is_number(val)) { srv_fail(e, 400, "invalid_type", param, "%s: the bias must be a number", param); return false; }
        double b = json_number_value(val);
        if (!isfinite(b) || b < -100 || b > 100) { srv_fail(e, 400, "invalid_value", param, "%s: %g is out of range [-100, 100]", param, b); return false; }
        r->bias_tok[i] = (int32_t)id;
        /* -100 bans the token, as OpenAI documents */
        r->bias_val[i] = b <= -100 ? -INFINITY : (float)b;
        i++;
    }
    r->sp.bias_tokens = r->bias_tok;
    r->sp.bias_values = r->bias_val;
    r->sp.n_bias = i;
    return true;
}

bool jr_sampling(srv_server *s, json_t *o, srv_req *r, uint32_t n_ctx, srv_err *e)
{
    double d;
    int64_t i;
    bool p, b;
    if (!jr_number(o, "temperature", 0, 2, &p, &d, e)) return false;
    if (p) r->sp.temperature = (float)d;
    if (!jr_number(o, "top_p", 0, 1, &p, &d, e)) return false;
    if (p) r->sp.top_p = (float)d;
    if (!jr_number(o, "min_p", 0, 1, &p, &d, e)) return false;
    if (p) r->sp.min_p = (float)d;
    if (!jr_int(o, "top_k", 0, 1000000, &p, &i, e)) return false;
    if (p) r->sp.top_k = (int32_t)i;
    if (!jr_number(o, "presence_penalty", -2, 2, &p, &d, e)) return false;
    if (p) r->sp.presence_penalty = (float)d;
    if (!jr_number(o, "frequency_penalty", -2, 2, &p, &d, e)) return false;
    if (p) r->sp.frequency_penalty = (float)d;
    if (!jr_number(o, "repetition_penalty", 1e-6, 10, &p, &d, e)) return false;
    if (p) r->sp.repeat_penalty = (float)d;
    if (!jr_number(o, "repeat_penalty", 1e-6, 10, &p, &d, e)) return false;   /* llama-server's name */
    if (p) r->sp.repeat_penalty = (float)d;
    if (!jr_int(o, "repeat_last_n", 0, 1 << 20, &p, &i, e)) return false;
    if (p) r->sp.penalty_last_n = (int32_t)i;
    if (!jr_int(o, "seed", INT64_MIN, INT64_MAX, &p, &i, e)) return false;
    if (p) r->sp.seed = (uint64_t)i;
    else {
        /* no seed: a different draw each request, as OpenAI's API behaves */
        char id[17];
        srv_random_id(id, 16);
        uint64_t x = 0;
        for (int k = 0; k < 16; k++) x = x * 131 + (unsigned char)id[k];
        r->sp.seed = x;
    }
    r->max_tokens = -1;
    if (!jr_int(o, "max_tokens", 1, n_ctx, &p, &i, e)) return false;
    if (p) r->max_tokens = i;
    if (!jr_int(o, "max_completion_tokens", 1, n_ctx, &p, &i, e)) return false;
    if (p) r->max_tokens = i;
    if (!jr_int(o, "n", 1, INT32_MAX, &p, &i, e)) {
        /* n <= 0 or not an integer: the range error above */
        return false;
    }
    if (p && i > 1) {
        srv_fail(e, 400, "unsupported_parameter", "n", "n: only n=1 is supported (got %lld); send separate requests", (long long)i);
        return false;
    }
    if (!jr_bool(o, "stream", &p, &b, e)) return false;
    r->stream = p && b;
    if (!parse_stop(o, r, e)) return false;
    if (!parse_bias(s, o, r, e)) return false;
    return true;
}
