/*
 * handlers_chat.c - POST /v1/chat/completions and POST /v1/completions:
 * request validation, prompt building, and the formatter that turns the
 * generated text into OpenAI response objects or SSE chunks.
 *
 * Chat output goes through the output parser (g4_outparse): thoughts become
 * reasoning_content, Gemma tool-call syntax becomes tool_calls (streamed as
 * argument deltas), the end markers end the answer.  Stop strings are
 * matched on the visible content only (completions: on the raw text); text
 * that may be the start of a stop string is held back until decided.
 */
#define _GNU_SOURCE   /* memmem */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server.h"

#define MAX_CALLS 128

typedef struct {
    srv_server *s;
    bool   chat;
    bool   stream, include_usage;
    char   id[48];
    long   created;
    g4_outparse *op;
    bool   parallel;
    bool   stop_now;          /* a reason to end was found by a callback */
    bool   hit_stop;          /* a stop string matched */
    sbuf   hold;              /* content that may start a stop string */
    sbuf   content, reasoning;/* non-streamed answer */
    json_t *calls;            /* non-streamed: complete tool calls */
    char   call_id[MAX_CALLS][32];
    int    n_calls, n_begun;
    /* streamed: the OpenAI index of each parser call index.  A malformed
     * call (TOOL_ABORT) cannot be taken back from the client, and the
     * parser gives its index to the next call: that one gets a fresh
     * OpenAI index so that clients do not merge the two. */
    int    oai_index[MAX_CALLS];
    int    n_oai;
    int64_t n_reasoning;      /* tokens of thought */
    bool   token_in_thought;
    json_t *lp_all;           /* non-streamed logprobs entries */
    json_t *lp_pending;       /* streamed: entries not yet attached to a chunk */
    srv_req *r;               /* while a callback runs */
    const g4_model *model;
    /* completions logprobs (legacy shape) */
    json_t *c_tokens, *c_lps, *c_tops, *c_offs;
    size_t text_off;
} fmt_state;

/* ------------------------------------------------------------ chunks */

static json_t *lp_entry(const g4_model *m, int32_t tok, float lp)
{
    char buf[512];
    int64_t n = g4_token_piece(m, tok, true, buf, sizeof buf);
    if (n < 0 || n > (int64_t)sizeof buf) n = 0;
    json_t *bytes = json_array();
    for (int64_t i = 0; i < n; i++) json_array_append_new(bytes, json_integer((unsigned char)buf[i]));
    json_t *t = jr_utf8_ok(buf, (size_t)n) ? json_stringn(buf, (size_t)n) : json_string("\xEF\xBF\xBD");
    return json_pack("{s:o,s:f,s:o}", "token", t ? t : json_string(""), "logprob", (double)lp, "bytes", bytes);
}

static void sse_send(srv_req *r, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!s) { r->out.oom = true; return; }
    sb_adds(&r->out, "data: ");
    sb_adds(&r->out, s);
    sb_adds(&r->out, "\n\n");
    free(s);
}

static json_t *chunk_base(fmt_state *st)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:s}", "id", st->id, "object", st->chat ? "chat.completion.chunk" : "text_completion",
                     "created", (json_int_t)st->created, "model", st->s->model_id, "system_fingerprint", "gemma4.c-" GEMMA4_VERSION);
}

/* One streamed chunk with this delta (chat) or text (completions). */
static void send_delta(fmt_state *st, json_t *delta, const char *finish)
{
    json_t *o = chunk_base(st);
    json_t *choice;
    json_t *lp = json_null();
    if (st->lp_pending && json_array_size(st->lp_pending)) {
        if (st->chat) lp = json_pack("{s:O,s:n}", "content", st->lp_pending, "refusal");
        json_array_clear(st->lp_pending);
    }
    if (st->chat) {
        choice = json_pack("{s:i,s:o,s:o,s:o}", "index", 0, "delta", delta, "logprobs", lp,
                           "finish_reason", finish ? json_string(finish) : json_null());
    } else {
        json_t *c_lp = json_null();
        if (st->c_tokens && json_array_size(st->c_tokens)) {
            c_lp = json_pack("{s:O,s:O,s:O,s:O}", "tokens", st->c_tokens, "token_logprobs", st->c_lps,
                             "top_logprobs", st->c_tops, "text_offset", st->c_offs);
            json_array_clear(st->c_tokens);
            json_array_clear(st->c_lps);
            json_array_clear(st->c_tops);
            json_array_clear(st->c_offs);
        }
        json_decref(lp);
        choice = json_pack("{s:i,s:o,s:o,s:o}", "index", 0, "text", delta, "logprobs", c_lp,
                           "finish_reason", finish ? json_string(finish) : json_null());
    }
    json_object_set_new(o, "choices", json_pack("[o]", choice));
    sse_send(st->r, o);
}

/* ------------------------------------------------------------ content and stop strings */

static void emit_content(fmt_state *st, const char *s, size_t n)
{
    if (!n) return;
    if (st->stream) {
        json_t *t = json_stringn(s, n);
        if (!t) t = json_string("\xEF\xBF\xBD");
        if (st->chat) send_delta(st, json_pack("{s:o}", "content", t), NULL);
        else send_delta(st, t, NULL);
    } else {
        sb_add(&st->content, s, n);
    }
}

/* Longest suffix of h that is a proper prefix of some stop string. */
static size_t stop_tail(const srv_req *r, const char *h, size_t n)
{
    size_t best = 0;
    for (int i = 0; i < r->n_stop; i++) {
        size_t ls = strlen(r->stop[i]);
        for (size_t k = ls - 1 < n ? ls - 1 : n; k > best; k--)
            if (!memcmp(h + n - k, r->stop[i], k)) { best = k; break; }
    }
    return best;
}

static void content_text(fmt_state *st, const char *s, size_t n)
{
    srv_req *r = st->r;
    if (st->hit_stop) return;
    if (!r->n_stop) { emit_content(st, s, n); return; }
    sb_add(&st->hold, s, n);
    if (!st->hold.p) return;
    /* earliest match of any stop string */
    size_t at = SIZE_MAX;
    for (int i = 0; i < r->n_stop; i++) {
        const char *f = memmem(st->hold.p, st->hold.n, r->stop[i], strlen(r->stop[i]));
        if (f && (size_t)(f - st->hold.p) < at) at = (size_t)(f - st->hold.p);
    }
    if (at != SIZE_MAX) {
        emit_content(st, st->hold.p, at);
        st->hold.n = 0;
        st->hit_stop = st->stop_now = true;
        return;
    }
    size_t keep = stop_tail(r, st->hold.p, st->hold.n);
    size_t out = st->hold.n - keep;
    /* never cut a UTF-8 sequence */
    while (out > 0 && out < st->hold.n && ((unsigned char)st->hold.p[out] & 0xC0) == 0x80) out--;
    emit_content(st, st->hold.p, out);
    memmove(st->hold.p, st->hold.p + out, st->hold.n - out);
    st->hold.n -= out;
}

static void flush_hold(fmt_state *st)
{
    if (st->hold.n && !st->hit_stop) emit_content(st, st->hold.p, st->hold.n);
    st->hold.n = 0;
}

/* ------------------------------------------------------------ output parser events */

static void on_event(const g4_out_event *ev, void *user)
{
    fmt_state *st = user;
    if (st->stop_now && ev->kind != G4_OUT_END) return;
    switch (ev->kind) {
    case G4_OUT_CONTENT:
        content_text(st, ev->text, ev->len);
        break;
    case G4_OUT_THOUGHT:
        flush_hold(st);
        st->token_in_thought = true;
        if (st->stream) {
            json_t *t = json_stringn(ev->text, ev->len);
            send_delta(st, json_pack("{s:o}", "reasoning_content", t ? t : json_string("\xEF\xBF\xBD")), NULL);
        } else {
            sb_add(&st->reasoning, ev->text, ev->len);
        }
        break;
    case G4_OUT_TOOL_BEGIN:
        flush_hold(st);
        if (ev->tool_index >= 0 && ev->tool_index < MAX_CALLS) {
            char rnd[25];
            srv_random_id(rnd, 24);
            snprintf(st->call_id[ev->tool_index], sizeof st->call_id[0], "call_%s", rnd);
            st->n_begun = ev->tool_index + 1;
            st->oai_index[ev->tool_index] = st->n_oai++;
            if (st->stream) {
                json_t *tc = json_pack("{s:i,s:s,s:s,s:{s:s,s:s}}", "index", st->oai_index[ev->tool_index], "id", st->call_id[ev->tool_index],
                                       "type", "function", "function", "name", ev->tool_name ? ev->tool_name : "", "arguments", "");
                send_delta(st, json_pack("{s:[o]}", "tool_calls", tc), NULL);
            }
        }
        break;
    case G4_OUT_TOOL_ARGS:
        if (st->stream && ev->tool_index >= 0 && ev->tool_index < MAX_CALLS && ev->len) {
            json_t *a = json_stringn(ev->text, ev->len);
            json_t *tc = json_pack("{s:i,s:{s:o}}", "index", st->oai_index[ev->tool_index], "function", "arguments", a ? a : json_string(""));
            send_delta(st, json_pack("{s:[o]}", "tool_calls", tc), NULL);
        }
        break;
    case G4_OUT_TOOL_CALL:
        if (ev->tool_index >= 0 && ev->tool_index < MAX_CALLS) {
            st->n_calls = ev->tool_index + 1;
            if (!st->stream) {
                json_t *tc = json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", st->call_id[ev->tool_index], "type", "function", "function",
                                       "name", ev->tool_name ? ev->tool_name : "", "arguments", ev->tool_args_json ? ev->tool_args_json : "{}");
                if (tc) json_array_append_new(st->calls, tc);
            }
            if (!st->parallel) st->stop_now = true;
        }
        break;
    case G4_OUT_TOOL_ABORT:
    case G4_OUT_WARNING:
    case G4_OUT_END:
        break;
    }
}

/* ------------------------------------------------------------ formatter */

static bool f_on_text(srv_req *r, const char *text, size_t len, const srv_logprob *lp)
{
    fmt_state *st = r->fmt_state;
    st->r = r;
    st->token_in_thought = false;
    if (lp) {
        if (st->chat) {
            json_t *e = lp_entry(st->model, lp->token, lp->logprob);
            json_t *tops = json_array();
            for (int i = 0; i < lp->n_top; i++) json_array_append_new(tops, lp_entry(st->model, lp->top_tok[i], lp->top_lp[i]));
            json_object_set_new(e, "top_logprobs", tops);
            json_array_append_new(st->stream ? st->lp_pending : st->lp_all, e);
        } else {
            json_t *e = lp_entry(st->model, lp->token, lp->logprob);
            json_array_append(st->c_tokens, json_object_get(e, "token"));
            json_array_append_new(st->c_lps, json_real(lp->logprob));
            json_t *tops = json_object();
            for (int i = 0; i < lp->n_top; i++) {
                json_t *t = lp_entry(st->model, lp->top_tok[i], lp->top_lp[i]);
                json_object_set_new(tops, json_string_value(json_object_get(t, "token")), json_real(lp->top_lp[i]));
                json_decref(t);
            }
            json_array_append_new(st->c_tops, tops);
            json_array_append_new(st->c_offs, json_integer((json_int_t)st->text_off));
            json_decref(e);
        }
    }
    st->text_off += len;
    bool end = false;
    if (st->chat) {
        if (len && g4_outparse_push(st->op, text, len, on_event, st) == 1) end = true;
    } else if (len) {
        content_text(st, text, len);
    }
    if (st->token_in_thought) st->n_reasoning++;
    return end || st->stop_now;
}

static json_t *usage_obj(fmt_state *st, srv_req *r)
{
    return json_pack("{s:I,s:I,s:I,s:{s:I},s:{s:I}}", "prompt_tokens", (json_int_t)r->n_prompt, "completion_tokens", (json_int_t)r->n_gen,
                     "total_tokens", (json_int_t)(r->n_prompt + r->n_gen), "prompt_tokens_details", "cached_tokens", (json_int_t)r->n_cached,
                     "completion_tokens_details", "reasoning_tokens", (json_int_t)st->n_reasoning);
}

static void f_on_finish(srv_req *r, srv_finish why, const srv_err *e)
{
    fmt_state *st = r->fmt_state;
    st->r = r;
    if (why == FIN_ERROR || why == FIN_CANCELLED) {
        srv_finish_error(r, why, e, st->stream, "data: [DONE]\n\n");
        return;
    }
    if (st->chat && !st->stop_now) g4_outparse_finish(st->op, on_event, st);
    flush_hold(st);
    const char *finish = why == FIN_LENGTH ? "length" : "stop";
    if (st->chat && st->n_calls > 0) finish = "tool_calls";
    if (st->stream) {
        send_delta(st, st->chat ? json_object() : json_string(""), finish);
        if (st->include_usage) {
            json_t *o = chunk_base(st);
            json_object_set_new(o, "choices", json_array());
            json_object_set_new(o, "usage", usage_obj(st, r));
            sse_send(r, o);
        }
        sb_adds(&r->out, "data: [DONE]\n\n");
        return;
    }
    json_t *choice;
    if (st->chat) {
        json_t *msg = json_pack("{s:s}", "role", "assistant");
        json_t *c = json_stringn(st->content.p ? st->content.p : "", st->content.n);
        if (!c) c = json_string("\xEF\xBF\xBD");
        json_object_set_new(msg, "content", st->n_calls && !st->content.n ? json_null() : c);
        if (st->n_calls && !st->content.n) json_decref(c);
        if (st->reasoning.n) {
            json_t *t = json_stringn(st->reasoning.p, st->reasoning.n);
            json_object_set_new(msg, "reasoning_content", t ? t : json_string("\xEF\xBF\xBD"));
        }
        if (st->n_calls) json_object_set(msg, "tool_calls", st->calls);
        json_t *lp = r->want_logprobs ? json_pack("{s:O,s:n}", "content", st->lp_all, "refusal") : json_null();
        choice = json_pack("{s:i,s:o,s:o,s:s}", "index", 0, "message", msg, "logprobs", lp, "finish_reason", finish);
    } else {
        json_t *c = json_stringn(st->content.p ? st->content.p : "", st->content.n);
        json_t *lp = r->want_logprobs ? json_pack("{s:O,s:O,s:O,s:O}", "tokens", st->c_tokens, "token_logprobs", st->c_lps,
                                                  "top_logprobs", st->c_tops, "text_offset", st->c_offs) : json_null();
        choice = json_pack("{s:i,s:o,s:o,s:s}", "index", 0, "text", c ? c : json_string("\xEF\xBF\xBD"), "logprobs", lp, "finish_reason", finish);
    }
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:[o],s:o}", "id", st->id, "object", st->chat ? "chat.completion" : "text_completion",
                          "created", (json_int_t)st->created, "model", st->s->model_id, "system_fingerprint", "gemma4.c-" GEMMA4_VERSION,
                          "choices", choice, "usage", usage_obj(st, r));
    char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    r->out.n = 0;
    if (js) sb_adds(&r->out, js);
    else r->out.oom = true;
    free(js);
}

static void f_free(srv_req *r)
{
    fmt_state *st = r->fmt_state;
    if (!st) return;
    g4_outparse_free(st->op);
    sb_free(&st->hold);
    sb_free(&st->content);
    sb_free(&st->reasoning);
    json_decref(st->calls);
    json_decref(st->lp_all);
    json_decref(st->lp_pending);
    json_decref(st->c_tokens);
    json_decref(st->c_lps);
    json_decref(st->c_tops);
    json_decref(st->c_offs);
    free(st);
    r->fmt_state = NULL;
}

static const srv_fmt chat_fmt = { f_on_text, f_on_finish, f_free, NULL };

static fmt_state *state_new(srv_server *s, srv_req *r, bool chat)
{
    fmt_state *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->s = s;
    st->chat = chat;
    st->model = s->model;
    st->parallel = true;
    st->created = (long)time(NULL);
    char rnd[25];
    srv_random_id(rnd, 24);
    snprintf(st->id, sizeof st->id, "%s-%s", chat ? "chatcmpl" : "cmpl", rnd);
    st->calls = json_array();
    st->lp_all = json_array();
    st->lp_pending = json_array();
    st->c_tokens = json_array();
    st->c_lps = json_array();
    st->c_tops = json_array();
    st->c_offs = json_array();
    r->fmt = &chat_fmt;
    r->fmt_state = st;
    st->r = r;
    return st;
}

/* ------------------------------------------------------------ shared request setup */

static bool common_fields(srv_server *s, json_t *body, srv_req *r, fmt_state *st, srv_err *e)
{
    uint32_t n_ctx = sched_n_ctx(s->sched);
    if (!jr_sampling(s, body, r, n_ctx, e)) return false;
    st->stream = r->stream;
    const char *model;
    if (!jr_string(body, "model", NULL, &model, e)) return false;
    json_t *so = json_object_get(body, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) { srv_fail(e, 400, "invalid_type", "stream_options", "stream_options: must be an object"); return false; }
        bool iu = false;
        if (!jr_bool(so, "include_usage", NULL, &iu, e)) { snprintf(e->param, sizeof e->param, "stream_options.include_usage"); return false; }
        st->include_usage = iu;
    }
    r->deadline = srv_now() + s->cfg.timeout_s;
    r->t_arrival = srv_now();
    return true;
}

static bool check_length(srv_server *s, srv_req *r, srv_err *e)
{
    uint32_t n_ctx = sched_n_ctx(s->sched);
    if (r->prompt.n == 0) { srv_fail(e, 400, "invalid_value", NULL, "the prompt is empty"); return false; }
    if (r->prompt.n >= n_ctx) {
        srv_fail(e, 400, "context_length_exceeded", "messages",
                 "the prompt is %u tokens but the context holds %u positions (--ctx): no room to generate", r->prompt.n, n_ctx);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ chat */

static bool walk_media(srv_server *s, json_t *messages, srv_media_list *ml, srv_err *e)
{
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        json_t *content = json_is_object(m) ? json_object_get(m, "content") : NULL;
        if (!json_is_array(content)) continue;
        size_t j;
        json_t *part;
        json_array_foreach(content, j, part) {
            const char *type = json_is_object(part) ? json_string_value(json_object_get(part, "type")) : NULL;
            if (!type || !strcmp(type, "text")) continue;
            char param[96];
            snprintf(param, sizeof param, "messages[%zu].content[%zu]", i, j);
            if (!strcmp(type, "image_url") || !strcmp(type, "input_audio") || !strcmp(type, "image") || !strcmp(type, "audio")) {
                if (!media_from_part(s, part, param, ml, e)) return false;
            } else if (!strcmp(type, "video") || !strcmp(type, "video_url") || !strcmp(type, "file") || !strcmp(type, "input_file")) {
                srv_fail(e, 400, "unsupported_media", param, "%s: content part type '%s' is not supported (images and audio are)", param, type);
                return false;
            }
        }
    }
    return true;
}

static bool parse_tools(json_t *body, json_t **tools_out, const char **forced, bool *tools_none, bool *required, srv_err *e)
{
    json_t *tools = json_object_get(body, "tools");
    if (tools && json_is_null(tools)) tools = NULL;
    if (tools) {
        if (!json_is_array(tools)) { srv_fail(e, 400, "invalid_type", "tools", "tools: must be an array"); return false; }
        if (json_array_size(tools) > 512) { srv_fail(e, 400, "invalid_value", "tools", "tools: at most 512 tools"); return false; }
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t) {
            char param[64];
            snprintf(param, sizeof param, "tools[%zu]", i);
            if (!json_is_object(t)) { srv_fail(e, 400, "invalid_type", param, "%s: must be an object", param); return false; }
            const char *type = json_string_value(json_object_get(t, "type"));
            if (!type || strcmp(type, "function")) { srv_fail(e, 400, "invalid_value", param, "%s.type: must be \"function\"", param); return false; }
            json_t *fn = json_object_get(t, "function");
            if (!json_is_object(fn)) { srv_fail(e, 400, "invalid_type", param, "%s.function: must be an object", param); return false; }
            const char *name = json_string_value(json_object_get(fn, "name"));
            if (!name || !name[0]) { srv_fail(e, 400, "invalid_value", param, "%s.function.name: must be a non-empty string", param); return false; }
            for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.')) {
                    srv_fail(e, 400, "invalid_value", param, "%s.function.name: '%.64s' may only hold letters, digits, '_', '-' and '.'", param, name);
                    return false;
                }
            json_t *pr = json_object_get(fn, "parameters");
            if (pr && !json_is_null(pr) && !json_is_object(pr)) { srv_fail(e, 400, "invalid_type", param, "%s.function.parameters: must be an object", param); return false; }
        }
    }
    json_t *tc = json_object_get(body, "tool_choice");
    if (tc && !json_is_null(tc)) {
        if (json_is_string(tc)) {
            const char *v = json_string_value(tc);
            if (!strcmp(v, "none")) *tools_none = true;
            else if (!strcmp(v, "required")) *required = true;
            else if (strcmp(v, "auto")) { srv_fail(e, 400, "invalid_value", "tool_choice", "tool_choice: '%.40s' is not none, auto, required or a function", v); return false; }
        } else if (json_is_object(tc)) {
            json_t *fn = json_object_get(tc, "function");
            const char *name = json_is_object(fn) ? json_string_value(json_object_get(fn, "name")) : NULL;
            if (!name) { srv_fail(e, 400, "invalid_value", "tool_choice", "tool_choice: expected {\"type\":\"function\",\"function\":{\"name\":...}}"); return false; }
            bool found = false;
            size_t i;
            json_t *t;
            if (tools)
                json_array_foreach(tools, i, t)
                    if (!strcmp(json_string_value(json_object_get(json_object_get(t, "function"), "name")), name)) found = true;
            if (!found) { srv_fail(e, 400, "invalid_value", "tool_choice", "tool_choice: function '%.64s' is not in tools", name); return false; }
            *forced = name;
        } else {
            srv_fail(e, 400, "invalid_type", "tool_choice", "tool_choice: must be a string or an object");
            return false;
        }
        if ((*required || *forced) && (!tools || !json_array_size(tools))) {
            srv_fail(e, 400, "invalid_value", "tool_choice", "tool_choice: a tool call is required but no tools are given");
            return false;
        }
    }
    *tools_out = *tools_none ? NULL : tools;
    return true;
}

void h_chat(http_conn *c, json_t *body)
{
    srv_server *s = g_srv;
    srv_err e;
    memset(&e, 0, sizeof e);
    srv_req *r = srv_req_new();
    fmt_state *st = r ? state_new(s, r, true) : NULL;
    srv_media_list ml = { 0 };
    char *text = NULL, *mj = NULL, *tj = NULL;
    if (!st) { srv_fail(&e, 500, "internal_error", NULL, "out of memory"); goto fail; }

    json_t *messages = json_object_get(body, "messages");
    if (!messages) { srv_fail(&e, 400, "missing_required_parameter", "messages", "messages: required"); goto fail; }
    if (!json_is_array(messages)) { srv_fail(&e, 400, "invalid_type", "messages", "messages: must be an array"); goto fail; }
    if (json_array_size(messages) == 0) { srv_fail(&e, 400, "invalid_value", "messages", "messages: must not be empty"); goto fail; }
    if (!common_fields(s, body, r, st, &e)) goto fail;

    bool b, p;
    if (!jr_bool(body, "logprobs", NULL, &r->want_logprobs, &e)) goto fail;
    int64_t tl = 0;
    if (!jr_int(body, "top_logprobs", 0, 20, &p, &tl, &e)) goto fail;
    if (p && tl > 0 && !r->want_logprobs) { srv_fail(&e, 400, "invalid_value", "top_logprobs", "top_logprobs: needs logprobs: true"); goto fail; }
    r->top_logprobs = (int)tl;
    if (!jr_bool(body, "parallel_tool_calls", &p, &b, &e)) goto fail;
    if (p) st->parallel = b;

    json_t *rf = json_object_get(body, "response_format");
    if (rf && !json_is_null(rf)) {
        const char *t = json_is_object(rf) ? json_string_value(json_object_get(rf, "type")) : NULL;
        if (!t) { srv_fail(&e, 400, "invalid_type", "response_format", "response_format: must be an object with a type"); goto fail; }
        if (strcmp(t, "text")) { srv_fail(&e, 400, "unsupported_parameter", "response_format", "response_format: type '%.40s' is not supported (only text)", t); goto fail; }
    }

    /* thinking */
    g4_chat_params cp = g4_chat_default_params();
    const char *effort = NULL;
    if (!jr_string(body, "reasoning_effort", NULL, &effort, &e)) goto fail;
    if (effort) {
        if (!strcmp(effort, "low") || !strcmp(effort, "medium") || !strcmp(effort, "high")) cp.enable_thinking = true;
        else if (strcmp(effort, "none") && strcmp(effort, "minimal")) {
            srv_fail(&e, 400, "invalid_value", "reasoning_effort", "reasoning_effort: '%.40s' is not none, minimal, low, medium or high", effort);
            goto fail;
        }
    }
    json_t *kw = json_object_get(body, "chat_template_kwargs");
    if (kw && !json_is_null(kw)) {
        if (!json_is_object(kw)) { srv_fail(&e, 400, "invalid_type", "chat_template_kwargs", "chat_template_kwargs: must be an object"); goto fail; }
        if (!jr_bool(kw, "enable_thinking", &p, &b, &e)) { snprintf(e.param, sizeof e.param, "chat_template_kwargs.enable_thinking"); goto fail; }
        if (p) cp.enable_thinking = b;
        if (!jr_bool(kw, "preserve_thinking", &p, &b, &e)) { snprintf(e.param, sizeof e.param, "chat_template_kwargs.preserve_thinking"); goto fail; }
        if (p) cp.preserve_thinking = b;
    }

    json_t *tools = NULL;
    const char *forced = NULL;
    bool tools_none = false, required = false;
    if (!parse_tools(body, &tools, &forced, &tools_none, &required, &e)) goto fail;

    /* media types that are never supported, before the template calls them unknown */
    {
        size_t i, j;
        json_t *m, *part;
        json_array_foreach(messages, i, m) {
            json_t *content = json_is_object(m) ? json_object_get(m, "content") : NULL;
            if (!json_is_array(content)) continue;
            json_array_foreach(content, j, part) {
                const char *type = json_is_object(part) ? json_string_value(json_object_get(part, "type")) : NULL;
                if (type && (!strcmp(type, "video") || !strcmp(type, "video_url") || !strcmp(type, "file") || !strcmp(type, "input_file"))) {
                    char param[96];
                    snprintf(param, sizeof param, "messages[%zu].content[%zu]", i, j);
                    srv_fail(&e, 400, "unsupported_media", param, "%s: content part type '%s' is not supported (text, images and audio are)", param, type);
                    goto fail;
                }
            }
        }
    }

    /* render: the template checks roles, parts and shapes */
    mj = json_dumps(messages, JSON_COMPACT);
    tj = tools ? json_dumps(tools, JSON_COMPACT) : NULL;
    if (!mj || (tools && !tj)) { srv_fail(&e, 500, "internal_error", NULL, "out of memory"); goto fail; }
    char err[512];
    g4_status rs = g4_chat_render(mj, tj, &cp, &text, err, sizeof err);
    if (rs != G4_OK) {
        char param[96] = "messages";
        const char *colon = strchr(err, ':');
        if (colon && (size_t)(colon - err) < sizeof param && (!strncmp(err, "messages", 8) || !strncmp(err, "tools", 5))) {
            memcpy(param, err, (size_t)(colon - err));
            param[colon - err] = 0;
        }
        /* the renderer says "expected X, got Y" for a wrong JSON type */
        const char *code = rs == G4_ERR_NOMEM ? "internal_error" : strstr(err, ", got ") ? "invalid_type" : "invalid_value";
        srv_fail(&e, rs == G4_ERR_NOMEM ? 500 : 400, code, param, "%s", err);
        goto fail;
    }
    /* media after the shape check, so that a wrong shape gets the template's message */
    if (!walk_media(s, messages, &ml, &e)) goto fail;

    /* tool_choice required / named: the answer starts with the call */
    const char *prefill = NULL;
    char prefill_buf[200];
    if (forced) {
        snprintf(prefill_buf, sizeof prefill_buf, "<|tool_call>call:%.150s{", forced);
        prefill = prefill_buf;
    } else if (required) {
        prefill = "<|tool_call>call:";
    }
    if (prefill) {
        size_t tl2 = strlen(text), pl = strlen(prefill);
        char *t2 = realloc(text, tl2 + pl + 1);
        if (!t2) { srv_fail(&e, 500, "internal_error", NULL, "out of memory"); goto fail; }
        memcpy(t2 + tl2, prefill, pl + 1);
        text = t2;
    }
    static const char think_open[] = "<|channel>thought\n";
    size_t text_len = strlen(text);
    g4_outparse_params opp = g4_outparse_default_params();
    opp.stream_args = true;
    opp.start_in_thought = !prefill && text_len >= sizeof think_open - 1 && !strcmp(text + text_len - (sizeof think_open - 1), think_open);
    st->op = g4_outparse_new(&opp);
    if (!st->op) { srv_fail(&e, 500, "internal_error", NULL, "out of memory"); goto fail; }

    if (!prompt_build(s, text, false, &ml, &r->prompt, &e)) goto fail;
    if (!check_length(s, r, &e)) goto fail;

    if (st->stream) {
        json_t *d = json_pack("{s:s,s:s}", "role", "assistant", "content", "");
        send_delta(st, d, NULL);
    }
    if (prefill) g4_outparse_push(st->op, prefill, strlen(prefill), on_event, st);

    free(text);
    free(mj);
    free(tj);
    media_list_free(&ml);
    http_run_request(c, r);
    return;
fail:
    free(text);
    free(mj);
    free(tj);
    media_list_free(&ml);
    srv_req_unref(r);
    http_reply_error(c, &e);
}

/* ------------------------------------------------------------ completions */

void h_completions(http_conn *c, json_t *body)
{
    srv_server *s = g_srv;
    srv_err e;
    memset(&e, 0, sizeof e);
    srv_req *r = srv_req_new();
    fmt_state *st = r ? state_new(s, r, false) : NULL;
    int32_t *ids = NULL;
    if (!st) { srv_fail(&e, 500, "internal_error", NULL, "out of memory"); goto fail; }
    json_t *prompt = json_object_get(body, "prompt");
    if (!prompt || json_is_null(prompt)) { srv_fail(&e, 400, "missing_required_parameter", "prompt", "prompt: required"); goto fail; }
    if (!common_fields(s, body, r, st, &e)) goto fail;
    bool echo = false, p;
    if (!jr_bool(body, "echo", NULL, &echo, &e)) goto fail;
    if (echo) { srv_fail(&e, 400, "unsupported_parameter", "echo", "echo: not supported"); goto fail; }
    int64_t best_of = 1, lpn = 0;
    if (!jr_int(body, "best_of", 1, 1000, NULL, &best_of, &e)) goto fail;
    if (best_of > 1) { srv_fail(&e, 400, "unsupported_parameter", "best_of", "best_of: only 1 is supported"); goto fail; }
    json_t *suffix = json_object_get(body, "suffix");
    if (suffix && !json_is_null(suffix)) { srv_fail(&e, 400, "unsupported_parameter", "suffix", "suffix: not supported"); goto fail; }
    if (!jr_int(body, "logprobs", 0, 5, &p, &lpn, &e)) goto fail;
    if (p) { r->want_logprobs = true; r->top_logprobs = (int)lpn; }

    /* a string, [string], or [token ids] */
    json_t *one = prompt;
    if (json_is_array(prompt) && json_array_size(prompt) == 1 && (json_is_string(json_array_get(prompt, 0)) || json_is_array(json_array_get(prompt, 0))))
        one = json_array_get(prompt, 0);
    if (json_is_string(one)) {
        const char *txt = json_string_value(one);
        size_t len = json_string_length(one);
        if (memchr(txt, 0, len)) { srv_fail(&e, 400, "invalid_value", "prompt", "prompt: contains a NUL character"); goto fail; }
        ids = malloc((len + 2) * sizeof *ids);
        size_t n = 0;
        char err[256];
        if (!ids) { srv_fail(&e, 500, "internal_error", NULL, "out of memory"); goto fail; }
        if (g4_tokenize(s->model, txt, len, true, true, ids, len + 2, &n, err, sizeof err) != G4_OK) {
            srv_fail(&e, 400, "invalid_value", "prompt", "prompt: %s", err);
            goto fail;
        }
        if (!srv_prompt_from_tokens(&r->prompt, ids, n)) { srv_fail(&e, 500, "internal_error", NULL, "out of memory"); goto fail; }
    } else if (json_is_array(one)) {
        size_t n = json_array_size(one);
        if (n == 0) { srv_fail(&e, 400, "invalid_value", "prompt", "prompt: must not be empty"); goto fail; }
        if (json_is_string(json_array_get(one, 0))) { srv_fail(&e, 400, "unsupported_parameter", "prompt", "prompt: only one prompt per request is supported"); goto fail; }
        ids = malloc(n * sizeof *ids);
        if (!ids) { srv_fail(&e, 500, "internal_error", NULL, "out of memory"); goto fail; }
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_array_get(one, i);
            char param[48];
            snprintf(param, sizeof param, "prompt[%zu]", i);
            if (!json_is_integer(v)) { srv_fail(&e, 400, "invalid_type", param, "%s: must be a token id (integer)", param); goto fail; }
            json_int_t id = json_integer_value(v);
            if (id < 0 || id >= (json_int_t)s->n_vocab) { srv_fail(&e, 400, "invalid_value", param, "%s: token id %lld is not in [0, %u)", param, (long long)id, s->n_vocab); goto fail; }
            ids[i] = (int32_t)id;
        }
        if (!srv_prompt_from_tokens(&r->prompt, ids, n)) { srv_fail(&e, 500, "internal_error", NULL, "out of memory"); goto fail; }
    } else {
        srv_fail(&e, 400, "invalid_type", "prompt", "prompt: must be a string, an array of one string, or an array of token ids");
        goto fail;
    }
    if (!check_length(s, r, &e)) { snprintf(e.param, sizeof e.param, "prompt"); goto fail; }
    free(ids);
    http_run_request(c, r);
    return;
fail:
    free(ids);
    srv_req_unref(r);
    http_reply_error(c, &e);
}
