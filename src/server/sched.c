/*
 * sched.c - the scheduler thread: the only thread that touches the slot
 * contexts.  Each step:
 *   1. admit queued requests to free slots (the free slot whose cached
 *      sequence shares the longest prefix with the prompt wins: the prompt
 *      cache), drop cancelled / expired queued requests;
 *   2. finish the slots whose client went away;
 *   3. prefill one chunk (<= n_batch tokens, or one whole media item) for
 *      every slot still reading its prompt, so that a long prompt never
 *      stalls the others for more than one chunk;
 *   4. one g4_decode_multi step over every generating slot (continuous
 *      batching), falling back to one g4_decode per slot when the engine
 *      does not support it; sample each slot's next token and hand its text
 *      to the request's formatter.
 * Cancellation: a flag on the request, read between steps and inside the
 * engine through the abort callback, so a client that leaves stops its
 * generation within one decode step.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server.h"

typedef enum { SLOT_IDLE = 0, SLOT_PREFILL = 1, SLOT_GEN = 2 } slot_state;

typedef struct {
    int         id;
    g4_context *ctx;
    slot_state  st;
    srv_req    *r;
    g4_sampler *smp;
    g4_detok   *dt;
    /* what the KV cache holds: keys of positions 0..n_keys-1 (= n_past) */
    uint64_t   *keys;
    uint8_t    *cont;
    uint32_t    n_keys;
    uint32_t    next;       /* next prompt position to prefill */
    int32_t     pending;    /* sampled token to feed at the next step, -1 none */
    _Atomic int busy_pub;   /* for /metrics, read by other threads */
    _Atomic uint32_t cached_pub;
} slot;

struct srv_sched {
    srv_server *s;
    slot       *slots;
    int         n_slots;
    uint32_t    n_ctx, n_batch;
    pthread_t   th;
    bool        th_started;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    srv_req   **queue;
    int         q_head, q_n, q_cap;
    bool        stop;
    bool        multi_unsupported;
    char       *piece;
    size_t      piece_cap;
    float      *lp_work;
    _Atomic int busy;
};

uint32_t sched_n_ctx(srv_sched *q) { return q->n_ctx; }

static bool abort_cb(void *user)
{
    slot *sl = user;
    return sl->r && atomic_load(&sl->r->cancelled);
}

/* ------------------------------------------------------------ finishing */

static void publish(slot *sl)
{
    atomic_store(&sl->busy_pub, sl->st != SLOT_IDLE);
    atomic_store(&sl->cached_pub, sl->n_keys);
}

static bool slot_begin_prompt(srv_sched *q, slot *sl, srv_req *r);

/* Ends a request that never got a slot (queue: cancelled, expired, stop). */
static void finish_unslotted(srv_req *r, srv_finish why, const srv_err *e)
{
    pthread_mutex_lock(&r->mu);
    r->t_end = srv_now();
    if (r->fmt && r->fmt->on_finish) r->fmt->on_finish(r, why, e);
    r->done = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (why == FIN_CANCELLED) metrics_cancel(srv_now() - r->t_cancel);
    srv_req_unref(r);
}

static void slot_finish(srv_sched *q, slot *sl, srv_finish why, const srv_err *e)
{
    srv_req *r = sl->r;
    if (why != FIN_ERROR && why != FIN_CANCELLED && sl->dt) {
        size_t n = 0;
        if (g4_detok_flush(sl->dt, q->piece, q->piece_cap, &n) == G4_OK && n) {
            pthread_mutex_lock(&r->mu);
            r->fmt->on_text(r, q->piece, n, NULL);
            pthread_mutex_unlock(&r->mu);
        }
    }
    if ((why == FIN_STOP || why == FIN_LENGTH) && r->fmt->on_segment && r->seg < r->n_segs) {
        pthread_mutex_lock(&r->mu);
        r->fmt->on_segment(r, why);
        pthread_mutex_unlock(&r->mu);
        srv_prompt_free(&r->prompt);
        r->prompt = r->segs[r->seg];
        memset(&r->segs[r->seg], 0, sizeof r->segs[r->seg]);
        r->seg++;
        if (g4_context_n_past(sl->ctx) != sl->n_keys) {
            g4_kv_clear(sl->ctx);
            sl->n_keys = 0;
        }
        slot_begin_prompt(q, sl, r);
        return;
    }
    if (why == FIN_CANCELLED) metrics_cancel(srv_now() - r->t_cancel);
    pthread_mutex_lock(&r->mu);
    r->t_end = srv_now();
    if (!r->t_first) r->t_first = r->t_end;
    r->fmt->on_finish(r, why, e);
    r->done = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    metrics_tokens(r->n_prompt > r->n_cached ? r->n_prompt - r->n_cached : 0, r->n_cached, (uint64_t)r->n_gen,
                   r->t_first - r->t_start, r->t_end - r->t_first);
    g4_sampler_free(sl->smp);
    sl->smp = NULL;
    g4_detok_free(sl->dt);
    sl->dt = NULL;
    srv_req_unref(r);
    sl->r = NULL;
    sl->st = SLOT_IDLE;
    sl->pending = -1;
    /* the cache keeps what was decoded; a mismatch (an engine error mid
     * batch) is not worth reasoning about: start clean */
    if (g4_context_n_past(sl->ctx) != sl->n_keys) {
        g4_kv_clear(sl->ctx);
        sl->n_keys = 0;
    }
    atomic_fetch_sub(&q->busy, 1);
    publish(sl);
}

static void slot_fail(srv_sched *q, slot *sl, int status, const char *code, const char *fmt, const char *detail)
{
    srv_err e;
    memset(&e, 0, sizeof e);
    srv_fail(&e, status, code, NULL, fmt, detail);
    slot_finish(q, sl, FIN_ERROR, &e);
}

/* ------------------------------------------------------------ admission */

static uint32_t common_prefix(const slot *sl, const srv_prompt *p)
{
    uint32_t n = sl->n_keys < p->n ? sl->n_keys : p->n;
    uint32_t i = 0;
    while (i < n && sl->keys[i] == p->keys[i]) i++;
    /* at least the prompt's last position is decoded again: its logits
     * give the first token */
    if (i >= p->n) i = p->n ? p->n - 1 : 0;
    /* never inside a media item */
    while (i > 0 && i < p->n && p->cont[i]) i--;
    return i;
}

/* Points the slot at r->prompt: reuses the cached prefix, fresh sampler
 * and detokenizer.  false when the request was failed. */
static bool slot_begin_prompt(srv_sched *q, slot *sl, srv_req *r)
{
    char err[256];
    srv_server *s = q->s;
    sl->st = SLOT_PREFILL;
    sl->pending = -1;
    r->seg_gen = 0;
    r->n_prompt += r->prompt.n;
    uint32_t keep = common_prefix(sl, &r->prompt);
    if (keep == 0) {
        g4_kv_clear(sl->ctx);
    } else if (keep < g4_context_n_past(sl->ctx)) {
        /* sliding layers cannot go back further than their window: the
         * engine then clears the cache, and the prompt is read in full */
        if (g4_kv_truncate(sl->ctx, keep, err, sizeof err) != G4_OK) {
            g4_kv_clear(sl->ctx);
            keep = 0;
        }
    }
    sl->n_keys = keep;
    sl->next = keep;
    r->n_cached += keep;
    publish(sl);

    g4_sampler_free(sl->smp);
    sl->smp = NULL;
    if (g4_sampler_new(s->model, &r->sp, &sl->smp, err, sizeof err) != G4_OK) {
        slot_fail(q, sl, 400, "invalid_value", "%s", err);
        return false;
    }
    /* the penalties look at the prompt's tokens too, as `gemma4 run` does */
    for (uint32_t i = 0; i < r->prompt.n; i++)
        if (r->prompt.toks[i] >= 0) g4_sampler_accept(sl->smp, r->prompt.toks[i]);
    g4_detok_free(sl->dt);
    sl->dt = g4_detok_new(s->model, true);
    if (!sl->dt) { slot_fail(q, sl, 500, "internal_error", "%s", "out of memory (detokenizer)"); return false; }
    return true;
}

static void slot_start(srv_sched *q, slot *sl, srv_req *r)
{
    sl->r = r;
    atomic_fetch_add(&q->busy, 1);
    r->slot = sl->id;
    r->t_start = srv_now();
    pthread_mutex_lock(&r->mu);
    r->started = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    slot_begin_prompt(q, sl, r);
}

/* ------------------------------------------------------------ tokens */

static void logprobs_of(srv_sched *q, const float *logits, int32_t tok, int n_top, srv_logprob *lp)
{
    uint32_t nv = q->s->n_vocab;
    float mx = -INFINITY;
    for (uint32_t i = 0; i < nv; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (uint32_t i = 0; i < nv; i++) sum += exp((double)logits[i] - mx);
    float lse = mx + (float)log(sum);
    lp->token = tok;
    lp->logprob = logits[tok] - lse;
    lp->n_top = 0;
    for (uint32_t i = 0; i < nv && n_top > 0; i++) {
        float v = logits[i];
        if (lp->n_top == n_top && v <= lp->top_lp[n_top - 1] + lse) continue;
        int k = lp->n_top < n_top ? lp->n_top++ : n_top - 1;
        while (k > 0 && lp->top_lp[k - 1] < v - lse) {
            lp->top_lp[k] = lp->top_lp[k - 1];
            lp->top_tok[k] = lp->top_tok[k - 1];
            k--;
        }
        lp->top_lp[k] = v - lse;
        lp->top_tok[k] = (int32_t)i;
    }
}

/* The slot's context holds fresh logits: sample, emit, decide. */
static void slot_token(srv_sched *q, slot *sl)
{
    srv_req *r = sl->r;
    srv_server *s = q->s;
    const float *logits = g4_get_logits(sl->ctx);
    if (!logits) { slot_fail(q, sl, 500, "internal_error", "%s", "no logits after decode"); return; }
    int32_t tok = g4_sampler_sample(sl->smp, logits);
    if (tok < 0) {
        slot_fail(q, sl, 400, "invalid_value", "%s", "no token can be sampled: logit_bias bans every candidate");
        return;
    }
    srv_logprob lp, *plp = NULL;
    if (r->want_logprobs) {
        logprobs_of(q, logits, tok, r->top_logprobs, &lp);
        plp = &lp;
    }
    g4_sampler_accept(sl->smp, tok);
    if (!r->t_first) r->t_first = srv_now();
    r->n_gen++;
    r->seg_gen++;
    metrics_generated(1);
    if (g4_token_is_eog(s->model, tok)) { slot_finish(q, sl, FIN_STOP, NULL); return; }
    size_t n = 0;
    if (g4_detok_push(sl->dt, tok, q->piece, q->piece_cap, &n) != G4_OK) n = 0;
    pthread_mutex_lock(&r->mu);
    bool stop = r->fmt->on_text(r, q->piece, n, plp);
    pthread_mutex_unlock(&r->mu);
    if (stop) { slot_finish(q, sl, FIN_STOP, NULL); return; }
    if (r->max_tokens > 0 && r->seg_gen >= r->max_tokens) { slot_finish(q, sl, FIN_LENGTH, NULL); return; }
    if (g4_context_n_past(sl->ctx) + 1 > q->n_ctx) { slot_finish(q, sl, FIN_LENGTH, NULL); return; }
    if (srv_now() > r->deadline) { slot_finish(q, sl, FIN_LENGTH, NULL); return; }
    sl->pending = tok;
    sl->st = SLOT_GEN;
}

static void keys_push_token(slot *sl, int32_t tok)
{
    sl->keys[sl->n_keys] = (uint32_t)tok;
    sl->cont[sl->n_keys] = 0;
    sl->n_keys++;
    atomic_store(&sl->cached_pub, sl->n_keys);   /* live KV use in /metrics */
}

/* One chunk of the prompt: tokens up to n_batch (stopping at a media item),
 * or one whole media item. */
static void slot_prefill(srv_sched *q, slot *sl)
{
    srv_req *r = sl->r;
    srv_prompt *p = &r->prompt;
    char err[256];
    uint32_t pos = sl->next;
    const srv_media *m = NULL;
    uint32_t next_media = p->n;
    for (uint32_t i = 0; i < p->n_media; i++) {
        if (p->media[i].pos == pos) { m = &p->media[i]; break; }
        if (p->media[i].pos > pos && p->media[i].pos < next_media) next_media = p->media[i].pos;
    }
    g4_status st;
    uint32_t n;
    if (m) {
        n = m->n;
        st = g4_decode_embd(sl->ctx, m->rows, n, m->kind, false, err, sizeof err);
    } else {
        n = next_media - pos;
        if (n > q->n_batch) n = q->n_batch;
        st = g4_decode(sl->ctx, p->toks + pos, n, false, err, sizeof err);
    }
    if (st == G4_ERR_ABORTED) { sl->n_keys = g4_context_n_past(sl->ctx); return; }   /* cancel: seen by the caller */
    if (st != G4_OK) {
        sl->n_keys = 0;
        g4_kv_clear(sl->ctx);
        slot_fail(q, sl, 500, "internal_error", "prompt processing failed: %s", err);
        return;
    }
    memcpy(sl->keys + sl->n_keys, p->keys + pos, n * sizeof *sl->keys);
    memcpy(sl->cont + sl->n_keys, p->cont + pos, n);
    sl->n_keys += n;
    sl->next = pos + n;
    publish(sl);
    if (sl->next == p->n) slot_token(q, sl);
}

static void decode_step(srv_sched *q)
{
    g4_context *ctxs[64];
    int32_t toks[64];
    slot *who[64];
    uint32_t n = 0;
    char err[256];
    for (int i = 0; i < q->n_slots; i++) {
        slot *sl = &q->slots[i];
        if (sl->st == SLOT_GEN && sl->pending >= 0) {
            ctxs[n] = sl->ctx;
            toks[n] = sl->pending;
            who[n++] = sl;
        }
    }
    if (!n) return;
    g4_status st = G4_ERR_UNSUPPORTED;
    if (n > 1 && !q->multi_unsupported) {
        st = g4_decode_multi(ctxs, toks, n, err, sizeof err);
        if (st == G4_ERR_UNSUPPORTED) q->multi_unsupported = true;
    }
    metrics_step(n, st == G4_OK);
    if (st == G4_OK) {
        for (uint32_t i = 0; i < n; i++) keys_push_token(who[i], toks[i]);
    } else if (st == G4_ERR_UNSUPPORTED) {
        for (uint32_t i = 0; i < n; i++) {
            slot *sl = who[i];
            if (atomic_load(&sl->r->cancelled)) continue;
            g4_status s1 = g4_decode(sl->ctx, &toks[i], 1, false, err, sizeof err);
            if (s1 == G4_OK) { keys_push_token(sl, toks[i]); sl->pending = -2; }
            else if (s1 != G4_ERR_ABORTED) slot_fail(q, sl, 500, "internal_error", "decode failed: %s", err);
        }
        for (uint32_t i = 0; i < n; i++)
            if (who[i]->st == SLOT_GEN && who[i]->pending == -2) slot_token(q, who[i]);
        return;
    } else if (st == G4_ERR_ABORTED) {
        return;   /* the cancelled ones are finished by the caller; the others retry */
    } else {
        for (uint32_t i = 0; i < n; i++) slot_fail(q, who[i], 500, "internal_error", "decode failed: %s", err);
        return;
    }
    for (uint32_t i = 0; i < n; i++) slot_token(q, who[i]);
}

/* ------------------------------------------------------------ the thread */

static srv_req *queue_pop(srv_sched *q)
{
    srv_req *r = q->queue[q->q_head];
    q->q_head = (q->q_head + 1) % q->q_cap;
    q->q_n--;
    return r;
}

static void *sched_main(void *arg)
{
    srv_sched *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        bool stopping = q->stop;
        /* admission */
        for (;;) {
            if (!q->q_n) break;
            srv_req *head = q->queue[q->q_head];
            srv_err e;
            memset(&e, 0, sizeof e);
            if (stopping) {
                queue_pop(q);
                srv_fail(&e, 503, "shutting_down", NULL, "the server is shutting down");
                finish_unslotted(head, FIN_ERROR, &e);
                continue;
            }
            if (atomic_load(&head->cancelled)) { queue_pop(q); finish_unslotted(head, FIN_CANCELLED, NULL); continue; }
            if (srv_now() > head->deadline) {
                queue_pop(q);
                srv_fail(&e, 503, "timeout", NULL, "the request waited longer than the server's deadline (--timeout) for a free slot");
                finish_unslotted(head, FIN_ERROR, &e);
                continue;
            }
            slot *best = NULL;
            uint32_t best_n = 0;
            for (int i = 0; i < q->n_slots; i++) {
                slot *sl = &q->slots[i];
                if (sl->st != SLOT_IDLE) continue;
                uint32_t c = common_prefix(sl, &head->prompt);
                if (!best || c > best_n) { best = sl; best_n = c; }
            }
            if (!best) break;
            queue_pop(q);
            pthread_mutex_unlock(&q->mu);
            slot_start(q, best, head);
            pthread_mutex_lock(&q->mu);
        }
        int active = 0;
        for (int i = 0; i < q->n_slots; i++) active += q->slots[i].st != SLOT_IDLE;
        if (!active) {
            if (stopping && !q->q_n) { pthread_mutex_unlock(&q->mu); break; }
            /* a queued request with no free slot cannot exist here; wake
             * up now and then for deadlines of nothing: just wait */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&q->cv, &q->mu, &ts);
            pthread_mutex_unlock(&q->mu);
            continue;
        }
        pthread_mutex_unlock(&q->mu);

        for (int i = 0; i < q->n_slots; i++) {
            slot *sl = &q->slots[i];
            if (sl->st == SLOT_IDLE) continue;
            if (atomic_load(&sl->r->cancelled)) { slot_finish(q, sl, FIN_CANCELLED, NULL); continue; }
            if (stopping) {
                srv_err e;
                memset(&e, 0, sizeof e);
                srv_fail(&e, 503, "shutting_down", NULL, "the server is shutting down");
                slot_finish(q, sl, FIN_ERROR, &e);
            }
        }
        for (int i = 0; i < q->n_slots; i++)
            if (q->slots[i].st == SLOT_PREFILL) slot_prefill(q, &q->slots[i]);
        decode_step(q);
    }
    return NULL;
}

/* ------------------------------------------------------------ api */

srv_sched *sched_new(srv_server *s, char *err, size_t errlen)
{
    srv_sched *q = calloc(1, sizeof *q);
    if (!q) { snprintf(err, errlen, "out of memory"); return NULL; }
    q->s = s;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->n_slots = s->cfg.parallel;
    q->q_cap = s->cfg.queue_cap;
    q->queue = calloc((size_t)q->q_cap, sizeof *q->queue);
    q->slots = calloc((size_t)q->n_slots, sizeof *q->slots);
    q->piece_cap = g4_token_max_bytes(s->model) + 16;
    q->piece = malloc(q->piece_cap);
    if (!q->queue || !q->slots || !q->piece) { snprintf(err, errlen, "out of memory"); sched_free(q); return NULL; }
    g4_context_params cp = g4_context_default_params();
    cp.n_ctx = s->cfg.n_ctx;
    cp.n_batch = s->cfg.n_batch;
    /* multi-turn chat diverges where the previous answer starts (the
     * history drops its empty thought block), so the reach must cover a
     * typical answer, not just one batch */
    cp.n_rewind = s->cfg.n_rewind;
    cp.n_threads = s->cfg.threads;
    for (int i = 0; i < q->n_slots; i++) {
        slot *sl = &q->slots[i];
        sl->id = i;
        sl->pending = -1;
        if (g4_context_new(s->model, &cp, &sl->ctx, err, errlen) != G4_OK) { sched_free(q); return NULL; }
        q->n_ctx = g4_context_n_ctx(sl->ctx);
        sl->keys = malloc((size_t)q->n_ctx * sizeof *sl->keys);
        sl->cont = malloc(q->n_ctx);
        if (!sl->keys || !sl->cont) { snprintf(err, errlen, "out of memory"); sched_free(q); return NULL; }
        g4_context_set_abort(sl->ctx, abort_cb, sl);
    }
    q->n_batch = cp.n_batch ? cp.n_batch : 512;
    if (pthread_create(&q->th, NULL, sched_main, q) != 0) { snprintf(err, errlen, "cannot start the scheduler thread"); sched_free(q); return NULL; }
    q->th_started = true;
    return q;
}

bool sched_submit(srv_sched *q, srv_req *r, srv_err *e)
{
    pthread_mutex_lock(&q->mu);
    if (q->stop) {
        pthread_mutex_unlock(&q->mu);
        srv_fail(e, 503, "shutting_down", NULL, "the server is shutting down");
        return false;
    }
    if (q->q_n >= q->q_cap) {
        pthread_mutex_unlock(&q->mu);
        srv_fail(e, 429, "queue_full", NULL, "too many requests: %d are waiting for a slot (--queue); retry later", q->q_cap);
        return false;
    }
    pthread_mutex_lock(&r->mu);
    r->refs++;
    pthread_mutex_unlock(&r->mu);
    q->queue[(q->q_head + q->q_n) % q->q_cap] = r;
    q->q_n++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return true;
}

void sched_stop(srv_sched *q)
{
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    if (q->th_started) pthread_join(q->th, NULL);
    q->th_started = false;
}

void sched_free(srv_sched *q)
{
    if (!q) return;
    sched_stop(q);
    for (int i = 0; q->slots && i < q->n_slots; i++) {
        g4_context_free(q->slots[i].ctx);
        free(q->slots[i].keys);
        free(q->slots[i].cont);
    }
    free(q->slots);
    free(q->queue);
    free(q->piece);
    free(q->lp_work);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}

void sched_metrics(srv_sched *q, sbuf *b)
{
    pthread_mutex_lock(&q->mu);
    int depth = q->q_n;
    pthread_mutex_unlock(&q->mu);
    uint64_t used = 0;
    sb_printf(b, "# HELP gemma4_queue_depth Requests waiting for a slot.\n# TYPE gemma4_queue_depth gauge\ngemma4_queue_depth %d\n", depth);
    sb_printf(b, "# HELP gemma4_queue_capacity Queue size (--queue).\n# TYPE gemma4_queue_capacity gauge\ngemma4_queue_capacity %d\n", q->q_cap);
    sb_printf(b, "# HELP gemma4_slots_total Slots (--parallel).\n# TYPE gemma4_slots_total gauge\ngemma4_slots_total %d\n", q->n_slots);
    sb_printf(b, "# HELP gemma4_slots_busy Slots serving a request.\n# TYPE gemma4_slots_busy gauge\ngemma4_slots_busy %d\n", atomic_load(&q->busy));
    sb_adds(b, "# HELP gemma4_slot_busy 1 while the slot serves a request.\n# TYPE gemma4_slot_busy gauge\n");
    for (int i = 0; i < q->n_slots; i++) sb_printf(b, "gemma4_slot_busy{slot=\"%d\"} %d\n", i, atomic_load(&q->slots[i].busy_pub));
    sb_adds(b, "# HELP gemma4_slot_cached_tokens Positions held in the slot's KV cache.\n# TYPE gemma4_slot_cached_tokens gauge\n");
    for (int i = 0; i < q->n_slots; i++) {
        uint32_t c = atomic_load(&q->slots[i].cached_pub);
        used += c;
        sb_printf(b, "gemma4_slot_cached_tokens{slot=\"%d\"} %u\n", i, c);
    }
    uint64_t cap = (uint64_t)q->n_ctx * (uint64_t)q->n_slots;
    sb_printf(b, "# HELP gemma4_kv_cache_used_positions KV positions in use, all slots.\n# TYPE gemma4_kv_cache_used_positions gauge\ngemma4_kv_cache_used_positions %llu\n", (unsigned long long)used);
    sb_printf(b, "# HELP gemma4_kv_cache_capacity_positions KV positions, all slots.\n# TYPE gemma4_kv_cache_capacity_positions gauge\ngemma4_kv_cache_capacity_positions %llu\n", (unsigned long long)cap);
    sb_printf(b, "# HELP gemma4_kv_cache_usage_ratio Used / capacity.\n# TYPE gemma4_kv_cache_usage_ratio gauge\ngemma4_kv_cache_usage_ratio %.6f\n", cap ? (double)used / (double)cap : 0.0);
}
