/*
 * server.h - `gemma4 serve`: the OpenAI-compatible HTTP server (docs/server.md,
 * docs/server-api-notes.md).
 *
 * Threads:
 *  - libmicrohttpd runs one thread per connection (http.c).  Handlers parse
 *    and validate the request there, render and tokenize the prompt, then
 *    enqueue a srv_req and wait on it.
 *  - one scheduler thread (sched.c) owns the model's slot contexts: it admits
 *    queued requests to free slots, prefills them chunk by chunk and runs one
 *    multi-sequence decode step for every generating slot.  The endpoint's
 *    formatter (srv_fmt, called from the scheduler thread) turns generated
 *    text into response bytes appended to the request's output buffer, which
 *    the connection thread sends.
 */
#ifndef G4_SERVER_H
#define G4_SERVER_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gemma4.h"

/* ------------------------------------------------------------ buffers */

typedef struct {
    char  *p;
    size_t n, cap;
    bool   oom;        /* an append failed: the content is incomplete */
} sbuf;

void sb_add(sbuf *b, const char *s, size_t n);
void sb_adds(sbuf *b, const char *s);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_free(sbuf *b);

/* ------------------------------------------------------------ errors */

typedef struct {
    int  status;         /* 0 = no error */
    const char *type;    /* invalid_request_error, server_error, ... */
    const char *code;
    char param[160];
    char msg[640];
} srv_err;

void srv_fail(srv_err *e, int status, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* {"error":{...}} as malloc'd compact JSON text. */
char *srv_err_json(const srv_err *e);

/* ------------------------------------------------------------ configuration */

typedef struct {
    const char *model_path, *mmproj_path, *host, *alias;
    int  port, parallel, threads, queue_cap;
    uint32_t n_ctx, n_batch;
    uint32_t n_rewind;    /* --cache-reach: how far back a slot's cache can be cut (g4_context_params.n_rewind) */
    double timeout_s;
    int    idle_timeout_s;      /* a connection with no request in progress */
    uint64_t max_body;
    char *api_key;              /* NULL = no auth */
    const char **cors;          /* exact origins */
    int  n_cors;
    char *media_dir;            /* realpath, NULL = no file access */
} srv_config;

/* ------------------------------------------------------------ prompts */

/* One media item of a prompt: soft-token rows and the hash identifying them. */
typedef struct {
    uint32_t pos;              /* first position in the prompt */
    uint32_t n;                /* rows */
    g4_embd_kind kind;
    uint64_t hash;             /* of the source bytes and the budget */
    float   *rows;             /* n x n_embd, owned */
} srv_media;

/* A prompt as positions.  keys[i] identify what position i holds, for the
 * prompt cache: a token id, or (bit 63 set) row j of a media item (hash + j).
 * cont[i] is 1 on media rows after the first: a reused prefix never ends
 * inside a media item. */
typedef struct {
    int32_t  *toks;            /* token id, -1 on media rows */
    uint64_t *keys;
    uint8_t  *cont;
    uint32_t  n;
    srv_media *media;
    uint32_t  n_media;
} srv_prompt;

void srv_prompt_free(srv_prompt *p);
/* From plain token ids. */
bool srv_prompt_from_tokens(srv_prompt *p, const int32_t *toks, size_t n);

/* ------------------------------------------------------------ requests */

typedef struct srv_req srv_req;

typedef enum { FIN_STOP, FIN_LENGTH, FIN_TOOL_CALLS, FIN_CANCELLED, FIN_ERROR } srv_finish;

/* Per-token log probabilities (only when requested). */
typedef struct {
    int32_t token;
    float   logprob;
    int     n_top;
    int32_t top_tok[20];
    float   top_lp[20];
} srv_logprob;

/* The endpoint's formatter: runs on the scheduler thread, appends response
 * bytes to req->out (under req->mu, taken by the caller). */
typedef struct {
    /* Detokenized text of one generated token (may be empty); lp when
     * logprobs were asked.  Returns true to stop generating (end marker,
     * stop string, first tool call with parallel_tool_calls false). */
    bool (*on_text)(srv_req *r, const char *text, size_t len, const srv_logprob *lp);
    /* Once, at the end.  err: the message when why == FIN_ERROR. */
    void (*on_finish)(srv_req *r, srv_finish why, const srv_err *err);
    void (*free_state)(srv_req *r);
    /* Optional (transcription): a segment ended (why = STOP or LENGTH) and
     * the next prompt, r->segs[r->seg], follows on the same slot. */
    void (*on_segment)(srv_req *r, srv_finish why);
} srv_fmt;

struct srv_req {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int refs;

    /* input (read-only once queued) */
    srv_prompt prompt;
    g4_sampler_params sp;
    int32_t *bias_tok;
    float   *bias_val;
    int64_t  max_tokens;       /* generated tokens */
    bool     want_logprobs;
    int      top_logprobs;
    double   t_arrival, deadline;
    const char *content_type;  /* of a non-streamed answer; NULL = application/json */
    const char *stream_content_type;  /* NULL = text/event-stream */
    bool     stream;
    const srv_fmt *fmt;
    void    *fmt_state;        /* the formatter's, freed by fmt->free_state */
    char   **stop;             /* stop strings */
    int      n_stop;
    const char *prefill_text;  /* text the answer starts with (forced tool call), fed to the formatter first */

    /* more prompts generated one after the other in the same slot
     * (transcription chunks); r->prompt is the current one */
    srv_prompt *segs;
    uint32_t n_segs, seg;

    /* set by the scheduler */
    uint32_t n_prompt, n_cached;   /* summed over segments */
    int64_t  n_gen, seg_gen;
    double   t_start, t_first, t_end;
    int      slot;

    /* output, under mu */
    sbuf out;                  /* response bytes (SSE text, or the body when done) */
    bool done;
    int  status;               /* HTTP status of a non-streamed answer */
    bool started;              /* streaming: headers sent (errors become events) */

    atomic_bool cancelled;     /* client gone / shutdown */
    double t_cancel;           /* when the cancel was noticed */
};

srv_req *srv_req_new(void);
void     srv_req_unref(srv_req *r);
/* Sets cancelled (and the time) unless done. */
void     srv_req_cancel(srv_req *r);

/* ------------------------------------------------------------ the server */

typedef struct srv_sched srv_sched;

typedef struct {
    srv_config cfg;
    g4_model  *model;
    g4_mmproj *mmproj;
    bool      mm_info_vision, mm_info_audio;
    g4_model_info info;
    uint32_t  n_vocab;
    int32_t   tok_image, tok_audio, tok_boi, tok_eoi, tok_boa, tok_eoa;  /* -1 when absent */
    atomic_bool ready, stopping;
    srv_sched *sched;
    double    t_loaded;
    long      created;         /* unix time the model was loaded (for /v1/models) */
    char      model_id[160];
    pthread_mutex_t mm_mu;     /* one projector run at a time */
} srv_server;

extern srv_server *g_srv;

/* sched.c */
srv_sched *sched_new(srv_server *s, char *err, size_t errlen);
void       sched_free(srv_sched *q);
/* Queues r (takes a reference).  false with *e set when the queue is full
 * or the server stops. */
bool       sched_submit(srv_sched *q, srv_req *r, srv_err *e);
/* Stop: queued requests fail with 503, active ones end; joins the thread. */
void       sched_stop(srv_sched *q);
void       sched_metrics(srv_sched *q, sbuf *b);
uint32_t   sched_n_ctx(srv_sched *q);

/* metrics.c */
void metrics_request(const char *endpoint, int status);
void metrics_tokens(uint64_t prompt, uint64_t cached, uint64_t gen, double t_prompt, double t_gen);
void metrics_generated(uint64_t n);    /* running throughput */
void metrics_cancel(double latency_s);
void metrics_step(uint32_t n_seqs, bool multi);
/* A client left before its request reached a handler (counted as cancelled). */
void metrics_client_gone(void);
void metrics_render(sbuf *b);

/* http.c */
int  http_start(srv_server *s, char *err, size_t errlen);   /* returns the bound port or -1 */
void http_quiesce(void);
/* The end of a request that failed or whose client left (why FIN_ERROR /
 * FIN_CANCELLED; e is the error, unused for FIN_CANCELLED): a streamed
 * response that has started gets the error object as an SSE event followed
 * by stream_tail (e.g. "data: [DONE]\n\n", or ""); otherwise the body is
 * replaced by the error object with its status. */
void srv_finish_error(srv_req *r, srv_finish why, const srv_err *e, bool stream, const char *stream_tail);

/* Waits (at most max_s) until every started request has been answered. */
void http_drain(double max_s);
void http_stop(void);

/* util */
double srv_now(void);
void   srv_random_id(char *out, size_t n_chars);   /* alphanumerics, NUL-terminated */

/* json_req.c: typed field access with OpenAI errors */
bool jr_number(json_t *o, const char *key, double lo, double hi, bool *present, double *out, srv_err *e);
bool jr_int(json_t *o, const char *key, int64_t lo, int64_t hi, bool *present, int64_t *out, srv_err *e);
bool jr_bool(json_t *o, const char *key, bool *present, bool *out, srv_err *e);
bool jr_string(json_t *o, const char *key, bool *present, const char **out, srv_err *e);
/* Body text -> JSON object, or the invalid_json / invalid_type error. */
json_t *jr_parse_body(const char *body, size_t len, srv_err *e);
/* Sampling and generation fields shared by chat and completions. */
bool jr_sampling(srv_server *s, json_t *o, srv_req *r, uint32_t n_ctx, srv_err *e);
bool jr_utf8_ok(const char *s, size_t n);

/* handlers: each returns the HTTP response through the connection layer */
typedef struct http_conn http_conn;
void h_chat(http_conn *c, json_t *body);
void h_completions(http_conn *c, json_t *body);
void h_models(http_conn *c, const char *id);
void h_tokenize(http_conn *c, json_t *body);
void h_detokenize(http_conn *c, json_t *body);
void h_transcriptions(http_conn *c, const char *body, size_t len, const char *content_type);

/* Connection-layer services for handlers (http.c). */
void http_reply_json(http_conn *c, int status, json_t *obj);        /* steals obj */
void http_reply_text(http_conn *c, int status, const char *ctype, const char *text, size_t len);
void http_reply_error(http_conn *c, const srv_err *e);
/* Runs r: queued, then either streamed (SSE) or waited for; the answer is
 * sent.  Consumes the caller's reference. */
void http_run_request(http_conn *c, srv_req *r);

/* media.c */
/* Decodes an image_url / input_audio part into r->prompt media.  The media
 * are collected in the order given. */
typedef struct {
    srv_media *m;
    uint32_t   n, cap;
} srv_media_list;
bool media_from_part(srv_server *s, json_t *part, const char *param, srv_media_list *out, srv_err *e);
bool media_from_audio_bytes(srv_server *s, const void *data, size_t len, const char *param,
                            srv_media_list *out, srv_err *e);
void media_list_free(srv_media_list *l);
/* Frees the embedding cache (at shutdown). */
void media_cache_free(void);
/* Tokenizes rendered text and expands placeholders with the media (which
 * move into the prompt). */
bool prompt_build(srv_server *s, const char *text, bool add_bos, srv_media_list *media, srv_prompt *p, srv_err *e);

#endif
