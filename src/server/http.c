/*
 * http.c - the HTTP layer on libmicrohttpd: routing, API key, CORS, body
 * limit, replies, and the wait for a queued request (streamed as SSE or sent
 * whole).
 *
 * Threading model: MHD_USE_THREAD_PER_CONNECTION.  A handler may block
 * (waiting for its generation, or inside the streaming callback waiting for
 * the next chunk) without stalling other clients, and while it waits it
 * polls its own socket, so a client that disconnects is noticed within
 * ~25 ms even when nothing is being written to it (non-streamed requests,
 * queued requests, long prefills).  Connections are capped
 * (MHD_OPTION_CONNECTION_LIMIT) so threads stay bounded; the real work is
 * bounded by the slots and the queue anyway.
 */
#define _GNU_SOURCE   /* POLLRDHUP */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/server.h"

enum { R_NONE, R_HEALTH, R_MODELS, R_MODEL_ID, R_CHAT, R_COMPL, R_TRANSCRIBE, R_METRICS, R_TOKENIZE, R_DETOKENIZE };

static const struct {
    const char *path;
    int route;
    const char *method;     /* the one method the route takes (HEAD follows GET) */
    const char *endpoint;   /* metrics label */
} routes[] = {
    { "/health", R_HEALTH, "GET", "/health" },
    { "/v1/health", R_HEALTH, "GET", "/health" },
    { "/v1/models", R_MODELS, "GET", "/v1/models" },
    { "/models", R_MODELS, "GET", "/v1/models" },
    { "/v1/chat/completions", R_CHAT, "POST", "/v1/chat/completions" },
    { "/chat/completions", R_CHAT, "POST", "/v1/chat/completions" },
    { "/v1/completions", R_COMPL, "POST", "/v1/completions" },
    { "/completions", R_COMPL, "POST", "/v1/completions" },
    { "/v1/audio/transcriptions", R_TRANSCRIBE, "POST", "/v1/audio/transcriptions" },
    { "/audio/transcriptions", R_TRANSCRIBE, "POST", "/v1/audio/transcriptions" },
    { "/metrics", R_METRICS, "GET", "/metrics" },
    { "/tokenize", R_TOKENIZE, "POST", "/tokenize" },
    { "/detokenize", R_DETOKENIZE, "POST", "/detokenize" },
};

struct http_conn {
    struct MHD_Connection *mc;
    srv_server *s;
    const char *method;
    char        url[256];
    int         route;
    const char *endpoint;
    const char *model_id;     /* R_MODEL_ID: the id in the path */
    const char *origin;       /* an allowed Origin to answer with, or NULL */
    int         fd;
    sbuf        body;
    bool        too_big;
    bool        replied;
    bool        drop;         /* the client left: close without an answer */
    bool        overloaded;   /* the server-wide body budget is spent */
    uint64_t    counted;      /* bytes of body held against that budget */
};

static struct MHD_Daemon *g_daemon;
/* requests between their first header callback and their completion
 * (response sent or connection lost): shutdown waits for them to drain */
static _Atomic int g_active;
/* Bodies being received, all connections together: many clients each
 * sending a body just under --max-body must not add up to an exhausted
 * machine.  Over budget a request gets 503 overloaded + Retry-After. */
static _Atomic uint64_t g_body_bytes;
static uint64_t body_budget(const srv_server *s) { return s->cfg.max_body * 4 > (256ull << 20) ? s->cfg.max_body * 4 : 256ull << 20; }

/* ------------------------------------------------------------ helpers */

static bool client_gone(int fd)
{
    if (fd < 0) return false;
    struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP, .revents = 0 };
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
    if (p.revents & POLLIN) {
        char ch;
        ssize_t k = recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
        return k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    return false;
}

/* Time-constant in the length of the expected key: no early exit on the
 * first differing byte, and the given key's length only enters the result. */
static bool key_equal(const char *expected, const char *given)
{
    size_t ne = strlen(expected), ng = strlen(given);
    volatile unsigned char diff = (unsigned char)(ne != ng);
    for (size_t i = 0; i < ne; i++) {
        unsigned char g = i < ng ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(expected[i] ^ g);
    }
    return diff == 0;
}

static void add_common_headers(http_conn *c, struct MHD_Response *resp)
{
    if (c->origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", c->origin);
        MHD_add_response_header(resp, "Vary", "Origin");
    }
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
}

static void queue(http_conn *c, int status, struct MHD_Response *resp)
{
    if (!resp) return;
    add_common_headers(c, resp);
    MHD_queue_response(c->mc, (unsigned)status, resp);
    MHD_destroy_response(resp);
    c->replied = true;
    metrics_request(c->endpoint, status);
}

void http_reply_text(http_conn *c, int status, const char *ctype, const char *text, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp) return;
    MHD_add_response_header(resp, "Content-Type", ctype);
    if (status == 429) MHD_add_response_header(resp, "Retry-After", "1");
    queue(c, status, resp);
}

void http_reply_json(http_conn *c, int status, json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!s) {
        srv_err e;
        memset(&e, 0, sizeof e);
        srv_fail(&e, 500, "internal_error", NULL, "out of memory building the response");
        http_reply_error(c, &e);
        return;
    }
    http_reply_text(c, status, "application/json", s, strlen(s));
    free(s);
}

void http_reply_error(http_conn *c, const srv_err *e)
{
    char *s = srv_err_json(e);
    if (!s) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":\"internal_error\"}}";
        http_reply_text(c, 500, "application/json", oom, sizeof oom - 1);
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (!resp) { free(s); return; }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (e->status == 429 || (e->code && !strcmp(e->code, "overloaded"))) MHD_add_response_header(resp, "Retry-After", "1");
    if (e->status == 405) {
        for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
            if (routes[i].route == c->route) {
                MHD_add_response_header(resp, "Allow", !strcmp(routes[i].method, "GET") ? "GET, HEAD" : routes[i].method);
                break;
            }
    }
    queue(c, e->status, resp);
}

static void reply_fail(http_conn *c, int status, const char *code, const char *fmt, const char *arg)
{
    srv_err e;
    memset(&e, 0, sizeof e);
    srv_fail(&e, status, code, NULL, fmt, arg);
    http_reply_error(c, &e);
}

/* ------------------------------------------------------------ running a request */

typedef struct {
    srv_req *r;
    size_t   off;
    int      fd;
    struct MHD_Connection *mc;
    unsigned idle;
} stream_ctx;

/* MHD's idle timeout guards against clients that hold connections open
 * without sending (slowloris).  While an answer is being generated nothing
 * moves on the socket for as long as the model needs, so the timeout is off
 * then, and back (with its timer restarted) once the answer goes out. */
static void idle_timeout(struct MHD_Connection *mc, unsigned s)
{
    MHD_set_connection_option(mc, MHD_CONNECTION_OPTION_TIMEOUT, s);
}

static void wait_a_bit(srv_req *r)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 25 * 1000 * 1000;   /* also how often the socket is checked */
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

/* Under r->mu. */
static void cancel_locked(srv_req *r)
{
    if (!r->done && !atomic_load(&r->cancelled)) {
        r->t_cancel = srv_now();
        atomic_store(&r->cancelled, true);
    }
}

static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_ctx *sc = cls;
    srv_req *r = sc->r;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        if (sc->off < r->out.n) {
            size_t n = r->out.n - sc->off;
            if (n > max) n = max;
            memcpy(buf, r->out.p + sc->off, n);
            sc->off += n;
            pthread_mutex_unlock(&r->mu);
            return (ssize_t)n;
        }
        if (r->done) {
            pthread_mutex_unlock(&r->mu);
            idle_timeout(sc->mc, sc->idle);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        wait_a_bit(r);
        if (!r->done && client_gone(sc->fd)) {
            cancel_locked(r);
            pthread_mutex_unlock(&r->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

static void stream_free(void *cls)
{
    stream_ctx *sc = cls;
    /* the response is gone before the stream ended: the client left */
    srv_req_cancel(sc->r);
    srv_req_unref(sc->r);
    free(sc);
}

void http_run_request(http_conn *c, srv_req *r)
{
    srv_err e;
    memset(&e, 0, sizeof e);
    if (!sched_submit(c->s->sched, r, &e)) {
        http_reply_error(c, &e);
        srv_req_unref(r);
        return;
    }
    unsigned idle = (unsigned)c->s->cfg.idle_timeout_s;
    idle_timeout(c->mc, 0);
    /* Wait for a slot (or the end): errors before the answer starts keep
     * their HTTP status, even for streams. */
    pthread_mutex_lock(&r->mu);
    while (!r->done && !(r->stream && r->started)) {
        wait_a_bit(r);
        if (!r->done && client_gone(c->fd)) cancel_locked(r);
    }
    if (!r->stream || (r->done && r->status != 200)) {
        /* non-streamed: wait for the end, watching the socket */
        while (!r->done) {
            wait_a_bit(r);
            if (!r->done && client_gone(c->fd)) cancel_locked(r);
        }
        int status = r->status;
        bool cancelled = atomic_load(&r->cancelled);
        const char *ctype = status == 200 && r->content_type ? r->content_type : "application/json";
        sbuf out = r->out;
        memset(&r->out, 0, sizeof r->out);
        pthread_mutex_unlock(&r->mu);
        if (cancelled && status == 200) status = 499;   /* nobody listens; for the metrics */
        idle_timeout(c->mc, idle);
        if (out.oom) {
            srv_err e2;
            memset(&e2, 0, sizeof e2);
            srv_fail(&e2, 500, "internal_error", NULL, "out of memory building the response");
            http_reply_error(c, &e2);
        } else if (status == 499) {
            metrics_request(c->endpoint, 499);
            c->replied = c->drop = true;
        } else {
            struct MHD_Response *resp = MHD_create_response_from_buffer(out.n, out.p ? out.p : (void *)"", MHD_RESPMEM_MUST_COPY);
            if (resp) {
                MHD_add_response_header(resp, "Content-Type", ctype);
                if (status == 429) MHD_add_response_header(resp, "Retry-After", "1");
                queue(c, status, resp);
            }
        }
        sb_free(&out);
        srv_req_unref(r);
        return;
    }
    pthread_mutex_unlock(&r->mu);
    stream_ctx *sc = calloc(1, sizeof *sc);
    if (!sc) { srv_req_cancel(r); srv_req_unref(r); idle_timeout(c->mc, idle); reply_fail(c, 500, "internal_error", "%s", "out of memory"); return; }
    sc->r = r;
    sc->fd = c->fd;
    sc->mc = c->mc;
    sc->idle = idle;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_cb, sc, stream_free);
    if (!resp) { stream_free(sc); c->replied = c->drop = true; return; }
    MHD_add_response_header(resp, "Content-Type", r->stream_content_type ? r->stream_content_type : "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    queue(c, 200, resp);
}

/* ------------------------------------------------------------ dispatch */

static void reply_health(http_conn *c)
{
    if (atomic_load(&c->s->stopping)) { reply_fail(c, 503, "shutting_down", "%s", "the server is shutting down"); return; }
    if (!atomic_load(&c->s->ready)) {
        static const char loading[] = "{\"status\":\"loading\"}";
        http_reply_text(c, 503, "application/json", loading, sizeof loading - 1);
        return;
    }
    static const char ok[] = "{\"status\":\"ok\"}";
    http_reply_text(c, 200, "application/json", ok, sizeof ok - 1);
}

static void reply_metrics(http_conn *c)
{
    sbuf b = { 0 };
    bool ready = atomic_load(&c->s->ready);
    sb_printf(&b, "# HELP gemma4_ready 1 once the model is loaded.\n# TYPE gemma4_ready gauge\ngemma4_ready %d\n", ready ? 1 : 0);
    metrics_render(&b);
    if (ready && c->s->sched) sched_metrics(c->s->sched, &b);
    if (b.oom) { sb_free(&b); reply_fail(c, 500, "internal_error", "%s", "out of memory"); return; }
    http_reply_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.p ? b.p : "", b.n);
    sb_free(&b);
}

static void release_body(http_conn *c)
{
    atomic_fetch_sub(&g_body_bytes, c->counted);
    c->counted = 0;
    sb_free(&c->body);
}

static void dispatch(http_conn *c)
{
    srv_server *s = c->s;
    if (c->overloaded) {
        srv_err e;
        memset(&e, 0, sizeof e);
        srv_fail(&e, 503, "overloaded", NULL, "the server is receiving too many large requests at once; retry later");
        http_reply_error(c, &e);
        return;
    }
    if (c->too_big) {
        char lim[32];
        snprintf(lim, sizeof lim, "%llu", (unsigned long long)(s->cfg.max_body >> 20));
        reply_fail(c, 413, "request_too_large", "the request body is larger than the server's limit of %s MB (--max-body)", lim);
        return;
    }
    switch (c->route) {
    case R_HEALTH: reply_health(c); return;
    case R_METRICS: reply_metrics(c); return;
    default: break;
    }
    if (atomic_load(&s->stopping)) { reply_fail(c, 503, "shutting_down", "%s", "the server is shutting down"); return; }
    if (!atomic_load(&s->ready)) { reply_fail(c, 503, "model_loading", "%s", "the model is still loading; retry when GET /health answers 200"); return; }
    if (c->route == R_MODELS) { h_models(c, NULL); return; }
    if (c->route == R_MODEL_ID) { h_models(c, c->model_id); return; }
    if (c->body.oom) { reply_fail(c, 500, "internal_error", "%s", "out of memory reading the request"); return; }
    if (c->route == R_TRANSCRIBE) {
        const char *ct = MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, "Content-Type");
        h_transcriptions(c, c->body.p ? c->body.p : "", c->body.n, ct);
        return;
    }
    srv_err e;
    memset(&e, 0, sizeof e);
    json_t *body = jr_parse_body(c->body.p ? c->body.p : "", c->body.n, &e);
    release_body(c);   /* parsed: the text is not needed while the answer is generated */
    if (!body) { http_reply_error(c, &e); return; }
    switch (c->route) {
    case R_CHAT: h_chat(c, body); break;
    case R_COMPL: h_completions(c, body); break;
    case R_TOKENIZE: h_tokenize(c, body); break;
    case R_DETOKENIZE: h_detokenize(c, body); break;
    default: reply_fail(c, 500, "internal_error", "%s", "no handler"); break;
    }
    json_decref(body);
}

/* Decisions that need only the headers: they are answered before the body
 * is read (an unauthorised or oversized upload is never buffered). */
static bool early(http_conn *c, const char *method)
{
    srv_server *s = c->s;
    bool is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strcmp(method, "OPTIONS")) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!resp) return true;
        if (c->origin) {
            MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
            MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        }
        queue(c, 204, resp);
        return true;
    }
    if (c->route == R_NONE) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s %.200s", method, c->url);
        reply_fail(c, 404, "not_found", "unknown route: %s", msg);
        return true;
    }
    if (c->route == R_MODEL_ID ? !is_get : false) goto not_allowed;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (routes[i].route != c->route) continue;
        bool ok = !strcmp(routes[i].method, "GET") ? is_get : !strcmp(method, routes[i].method);
        if (!ok) goto not_allowed;
        break;
    }
    if (s->cfg.api_key && c->route != R_HEALTH) {
        const char *auth = MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, "Authorization");
        const char *given = "";
        if (auth && !strncasecmp(auth, "Bearer ", 7)) {
            given = auth + 7;
            while (*given == ' ') given++;
        }
        if (!key_equal(s->cfg.api_key, given)) {
            reply_fail(c, 401, "invalid_api_key", "%s", auth ? "invalid API key" : "missing API key: send 'Authorization: Bearer KEY'");
            return true;
        }
    }
    /* JSON routes: a body declared as text or a form is refused; besides
     * naming the mistake, this keeps browsers' cross-site "simple requests"
     * (text/plain, multipart) from reaching the model without a preflight.
     * application/x-www-form-urlencoded is accepted: `curl -d` sends it. */
    const char *ct = MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, "Content-Type");
    if (ct && !strcmp(method, "POST") && c->route != R_TRANSCRIBE) {
        size_t n = strcspn(ct, "; \t");
        bool json = (n == 16 && !strncasecmp(ct, "application/json", 16)) ||
                    (n > 17 && !strncasecmp(ct, "application/", 12) && !strncasecmp(ct + n - 5, "+json", 5)) ||
                    (n == 33 && !strncasecmp(ct, "application/x-www-form-urlencoded", 33));
        if (!json) {
            char msg[160];
            snprintf(msg, sizeof msg, "%.*s", (int)(n < 100 ? n : 100), ct);
            reply_fail(c, 415, "unsupported_media_type", "Content-Type '%s' is not supported: send application/json", msg);
            return true;
        }
    }
    const char *cl = MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno == ERANGE || v > s->cfg.max_body) {
            c->too_big = true;
            dispatch(c);
            return true;
        }
    }
    return false;
not_allowed:;
    char msg[400];
    snprintf(msg, sizeof msg, "method %s not allowed on %.200s", method, c->url);
    reply_fail(c, 405, "method_not_allowed", "%s", msg);
    return true;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    srv_server *s = cls;
    http_conn *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return MHD_NO;
        *con_cls = c;
        atomic_fetch_add(&g_active, 1);
        c->mc = mc;
        c->s = s;
        c->method = method;
        c->fd = -1;
        snprintf(c->url, sizeof c->url, "%s", url);
        c->route = R_NONE;
        c->endpoint = "other";
        for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
            if (!strcmp(url, routes[i].path)) { c->route = routes[i].route; c->endpoint = routes[i].endpoint; break; }
        if (c->route == R_NONE) {
            const char *pre = !strncmp(url, "/v1/models/", 11) ? url + 11 : !strncmp(url, "/models/", 8) ? url + 8 : NULL;
            if (pre && *pre) { c->route = R_MODEL_ID; c->model_id = pre; c->endpoint = "/v1/models"; }
        }
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) c->fd = ci->connect_fd;
        const char *origin = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Origin");
        if (origin)
            for (int i = 0; i < s->cfg.n_cors; i++)
                if (!strcmp(origin, s->cfg.cors[i])) { c->origin = s->cfg.cors[i]; break; }
        early(c, method);
        return MHD_YES;
    }
    if (*upload_size) {
        if (!c->replied && !c->too_big && !c->overloaded) {
            if (c->body.n + *upload_size > c->s->cfg.max_body) {
                c->too_big = true;
            } else if (atomic_fetch_add(&g_body_bytes, *upload_size) + *upload_size > body_budget(c->s)) {
                atomic_fetch_sub(&g_body_bytes, *upload_size);
                c->overloaded = true;
            } else {
                c->counted += *upload_size;
                sb_add(&c->body, upload, *upload_size);
            }
            if (c->too_big || c->overloaded) {
                atomic_fetch_sub(&g_body_bytes, c->counted);
                c->counted = 0;
                sb_free(&c->body);
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (!c->replied) dispatch(c);
    return c->drop ? MHD_NO : MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    http_conn *c = *con_cls;
    if (!c) return;
    if (!c->replied && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && toe != MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN) {
        /* the client left while its request was still being read */
        metrics_request(c->endpoint, 499);
        metrics_client_gone();
    }
    atomic_fetch_sub(&g_body_bytes, c->counted);
    sb_free(&c->body);
    free(c);
    *con_cls = NULL;
    atomic_fetch_sub(&g_active, 1);
}

int http_start(srv_server *s, char *err, size_t errlen)
{
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    const char *host = s->cfg.host;
    if (!strcmp(host, "localhost")) host = "127.0.0.1";
    struct sockaddr *sa;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_POLL;
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)s->cfg.port);
        sa = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)s->cfg.port);
        sa = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "--host: '%s' is not an IPv4 or IPv6 address (or localhost)", s->cfg.host);
        return -1;
    }
    g_daemon = MHD_start_daemon(flags, (uint16_t)s->cfg.port, NULL, NULL, on_access, s,
                                MHD_OPTION_SOCK_ADDR, sa,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg.idle_timeout_s,
                                MHD_OPTION_END);
    if (!g_daemon) {
        snprintf(err, errlen, "cannot listen on %s port %d (in use, or not allowed)", s->cfg.host, s->cfg.port);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(g_daemon, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : s->cfg.port;
}

void http_quiesce(void)
{
    if (!g_daemon) return;
    /* the listening socket is ours to close once quiesced */
    MHD_socket fd = MHD_quiesce_daemon(g_daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

void http_drain(double max_s)
{
    double t0 = srv_now();
    while (atomic_load(&g_active) > 0 && srv_now() - t0 < max_s) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

void http_stop(void)
{
    if (g_daemon) MHD_stop_daemon(g_daemon);
    g_daemon = NULL;
}
