/* util.c - small pieces shared by the server's files: growable buffers,
 * OpenAI error objects, request lifetime, ids. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server.h"

void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom || n == 0) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) {
            if (cap > SIZE_MAX / 2) { b->oom = true; return; }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void sb_adds(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) { sb_add(b, tmp, (size_t)n); return; }
    char *big = malloc((size_t)n + 1);
    if (!big) { b->oom = true; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)n);
    free(big);
}

void sb_free(sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void srv_fail(srv_err *e, int status, const char *code, const char *param, const char *fmt, ...)
{
    if (e->status) return;   /* the first error wins */
    e->status = status;
    e->code = code;
    e->type = status == 429 ? "rate_limit_error" : status >= 500 ? "server_error" : "invalid_request_error";
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    /* one line, always */
    for (char *p = e->msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

char *srv_err_json(const srv_err *e)
{
    json_t *o = json_pack("{s:{s:s,s:s,s:o,s:o}}", "error", "message", e->msg, "type", e->type ? e->type : "server_error",
                          "param", e->param[0] ? json_string(e->param) : json_null(),
                          "code", e->code ? json_string(e->code) : json_null());
    if (!o) {
        /* the message was not UTF-8 (it quotes the request): say so plainly */
        o = json_pack("{s:{s:s,s:s,s:n,s:s}}", "error", "message", "invalid request (message not representable)",
                      "type", "invalid_request_error", "param", "code", e->code ? e->code : "invalid_value");
    }
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

double srv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void srv_random_id(char *out, size_t n_chars)
{
    static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static _Atomic uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* ids only need to be unique, not secret: splitmix64 of time and a counter */
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (atomic_fetch_add(&counter, 1) * 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < n_chars; i++) {
        x += 0x9E3779B97F4A7C15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        out[i] = al[z % (sizeof al - 1)];
    }
    out[n_chars] = 0;
}

srv_req *srv_req_new(void)
{
    srv_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->refs = 1;
    r->slot = -1;
    r->status = 200;
    r->sp = g4_sampler_default_params();
    atomic_init(&r->cancelled, false);
    return r;
}

void srv_req_unref(srv_req *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    int left = --r->refs;
    pthread_mutex_unlock(&r->mu);
    if (left > 0) return;
    if (r->fmt && r->fmt->free_state) r->fmt->free_state(r);
    srv_prompt_free(&r->prompt);
    for (uint32_t i = 0; i < r->n_segs; i++) srv_prompt_free(&r->segs[i]);
    free(r->segs);
    free(r->bias_tok);
    free(r->bias_val);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->stop);
    sb_free(&r->out);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

void srv_req_cancel(srv_req *r)
{
    pthread_mutex_lock(&r->mu);
    if (!r->done && !atomic_load(&r->cancelled)) {
        r->t_cancel = srv_now();
        atomic_store(&r->cancelled, true);
    }
    pthread_mutex_unlock(&r->mu);
}

void srv_prompt_free(srv_prompt *p)
{
    free(p->toks);
    free(p->keys);
    free(p->cont);
    for (uint32_t i = 0; i < p->n_media; i++) free(p->media[i].rows);
    free(p->media);
    memset(p, 0, sizeof *p);
}

bool srv_prompt_from_tokens(srv_prompt *p, const int32_t *toks, size_t n)
{
    memset(p, 0, sizeof *p);
    if (n > UINT32_MAX) return false;
    p->toks = malloc((n ? n : 1) * sizeof *p->toks);
    p->keys = malloc((n ? n : 1) * sizeof *p->keys);
    p->cont = calloc(n ? n : 1, 1);
    if (!p->toks || !p->keys || !p->cont) { srv_prompt_free(p); return false; }
    for (size_t i = 0; i < n; i++) {
        p->toks[i] = toks[i];
        p->keys[i] = (uint32_t)toks[i];
    }
    p->n = (uint32_t)n;
    return true;
}

void srv_finish_error(srv_req *r, srv_finish why, const srv_err *e, bool stream, const char *stream_tail)
{
    srv_err ce;
    if (why == FIN_CANCELLED) {
        memset(&ce, 0, sizeof ce);
        srv_fail(&ce, 499, "cancelled", NULL, "the client went away");
        e = &ce;
    }
    char *js = srv_err_json(e);
    if (stream && r->started) {
        sb_adds(&r->out, "data: ");
        sb_adds(&r->out, js ? js : "{}");
        sb_adds(&r->out, "\n\n");
        sb_adds(&r->out, stream_tail);
    } else {
        r->out.n = 0;
        r->status = e->status;
        sb_adds(&r->out, js ? js : "{}");
    }
    free(js);
}
