/*
 * chat.c - `gemma4 chat`: interactive multi-turn chat (docs/chat.md).
 *
 *   gemma4 chat -m MODEL [--system S] [--think] [--ctx N] [-t N] [--temp T]
 *               [--top-p P] [--top-k K] [--seed S] [-n N] [--max-thinking N]
 *               [--repeat-guard N|off] [--batch N]
 *
 * The conversation is kept as OpenAI-style messages.  Every turn renders the
 * whole conversation with the chat template, tokenizes it and compares the
 * tokens with those already in the KV cache: only the part after the common
 * prefix is decoded.  On a terminal, lines are read with libedit (editing,
 * history); otherwise stdin is read line by line, so the command is
 * scriptable.  Answers go to stdout, everything else to stderr.
 *
 * The loop guards of `gemma4 run` (cli/guards.h: -n, --max-thinking,
 * --repeat-guard; same names and defaults) apply to every answer; a guard
 * that stops an answer is reported after its text, one stderr line.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <histedit.h>
#include <jansson.h>

#include "cli/cli.h"
#include "cli/guards.h"
#include "gemma4.h"

#define CMD "chat"

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: gemma4 chat -m MODEL [options]\n"
        "\n"
        "Interactive multi-turn chat.  On a terminal lines are edited with libedit;\n"
        "from a pipe every line of standard input is one message or command.\n"
        "  -m, --model FILE   GGUF model (required)\n"
        "  --system TEXT      system prompt\n"
        "  --think            thinking on (thoughts are shown on stderr)\n"
        "  --ctx N            context size in tokens (default: min(model's, 4096))\n"
        "  -t, --threads N    worker threads (default: one per physical core)\n"
        "  --temp T           temperature, 0 = greedy (default 1.0)\n"
        "  --top-p P          nucleus sampling, 1 = off (default 0.95)\n"
        "  --top-k K          top-k sampling, 0 = off (default 64)\n"
        "  --seed S           sampling seed (default 0xC0FFEE)\n"
        "  --batch N          tokens per forward pass (default 512)\n");
    guard_usage(f);
    fprintf(f,
        "  (the guards apply to each answer)\n"
        "\n"
        "Commands (type /help in the chat): /reset /system TEXT /think on|off\n"
        "/save FILE /load FILE /help /quit.  Ctrl-C stops an answer; Ctrl-D exits.\n");
}

static void help_commands(void)
{
    fprintf(stderr,
        "  /reset          forget the conversation (the system prompt stays)\n"
        "  /system TEXT    set the system prompt (/system alone removes it)\n"
        "  /think on|off   thinking mode (thoughts are shown on stderr)\n"
        "  /save FILE      write the conversation as a JSON array of OpenAI messages\n"
        "  /load FILE      read such a file (replaces the conversation)\n"
        "  /help           this text\n"
        "  /quit           leave (Ctrl-D too)\n"
        "  //TEXT          send a message that starts with '/'\n"
        "  Ctrl-C stops the current answer and keeps the session.\n");
}

/* ---- growable byte string ---- */
typedef struct { char *p; size_t n, cap; } sbuf;

static bool sb_add(sbuf *s, const char *t, size_t n)
{
    if (s->n + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->n + n + 1) cap *= 2;
        char *q = realloc(s->p, cap);
        if (!q) return false;
        s->p = q;
        s->cap = cap;
    }
    memcpy(s->p + s->n, t, n);
    s->n += n;
    s->p[s->n] = 0;
    return true;
}

/* Offset of the first byte that is not part of valid UTF-8 (no overlongs,
 * surrogates or values above U+10FFFF), or -1 when s is valid. */
static long utf8_bad_offset(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) { i++; continue; }
        else if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else return (long)i;
        if (i + len > n) return (long)i;
        if (s[i + 1] < lo || s[i + 1] > hi) return (long)i;
        for (size_t k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return (long)i;
        i += len;
    }
    return -1;
}

typedef struct {
    g4_model   *model;
    g4_context *ctx;
    g4_sampler *smp;
    json_t     *msgs;        /* the conversation: array of OpenAI messages */
    bool        think;
    bool        tty;         /* stdin is a terminal: libedit, questions */
    bool        color;       /* stderr is a terminal: dim thoughts */
    guard       guard;       /* loop guards, reset for every answer */
    uint32_t    n_ctx, n_batch;
    int32_t    *kv;          /* tokens held by the KV cache, n_kv == n_past */
    uint32_t    n_kv;
    int32_t    *toks;        /* the rendered conversation, tokenized */
    size_t      n_toks, toks_cap;
    unsigned long n_reprocess; /* turns whose cache could not be truncated */
    EditLine   *el;
    History    *hist;
    const char *prompt;
    /* per answer */
    sbuf        content, thought;
    bool        thought_open, thought_bol;
    int         n_tool_calls;
} chat;

static char *el_prompt_fn(EditLine *el)
{
    chat *c = NULL;
    el_get(el, EL_CLIENTDATA, &c);
    return (char *)(c && c->prompt ? c->prompt : "> ");
}

/* One input line without its newline, malloc'd; NULL at end of input (or a
 * read error).  *interrupted is set when Ctrl-C cut the read. */
static char *read_line(chat *c, const char *prompt, size_t *len, bool *interrupted)
{
    *interrupted = false;
    if (c->el) {
        c->prompt = prompt;
        int n = 0;
        g_interrupted = 0;
        const char *s = el_gets(c->el, &n);
        if (!s || n <= 0) {
            if (g_interrupted || (n < 0 && errno == EINTR)) {
                g_interrupted = 0;
                *interrupted = true;
                el_reset(c->el);
                fputc('\n', stdout);
                fflush(stdout);
            }
            return NULL;
        }
        size_t l = (size_t)n;
        if (l && s[l - 1] == '\n') l--;
        char *out = malloc(l + 1);
        if (!out) return NULL;
        memcpy(out, s, l);
        out[l] = 0;
        *len = l;
        return out;
    }
    char *line = NULL;
    size_t cap = 0;
    errno = 0;
    ssize_t got = getline(&line, &cap, stdin);
    if (got < 0) {
        if (g_interrupted || errno == EINTR) {
            g_interrupted = 0;
            *interrupted = true;
            clearerr(stdin);
        }
        free(line);
        return NULL;
    }
    size_t l = (size_t)got;
    if (l && line[l - 1] == '\n') l--;
    if (l && line[l - 1] == '\r') l--;
    line[l] = 0;
    *len = l;
    return line;
}

/* ---- conversation ---- */

static json_t *make_msg(const char *role, const char *content)
{
    return json_pack("{s:s, s:s}", "role", role, "content", content);
}

static bool is_system_msg(json_t *m)
{
    const char *r = json_string_value(json_object_get(m, "role"));
    return r && (!strcmp(r, "system") || !strcmp(r, "developer"));
}

static bool has_system(const chat *c)
{
    return json_array_size(c->msgs) > 0 && is_system_msg(json_array_get(c->msgs, 0));
}

/* Renders and tokenizes the conversation into c->toks.  0 ok, -1 error (err set). */
static int build_prompt(chat *c, char *err, size_t errlen)
{
    char *js = json_dumps(c->msgs, JSON_COMPACT);
    if (!js) { snprintf(err, errlen, "out of memory"); return -1; }
    g4_chat_params p = g4_chat_default_params();
    p.enable_thinking = c->think;
    char *text = NULL;
    g4_status st = g4_chat_render(js, NULL, &p, &text, err, errlen);
    free(js);
    if (st != G4_OK) return -1;
    size_t len = strlen(text);
    if (c->toks_cap < len + 1) {
        int32_t *t = realloc(c->toks, (len + 1) * sizeof *t);
        if (!t) { free(text); snprintf(err, errlen, "out of memory"); return -1; }
        c->toks = t;
        c->toks_cap = len + 1;
    }
    /* The render starts with the literal "<bos>": no extra BOS. */
    st = g4_tokenize(c->model, text, len, false, true, c->toks, c->toks_cap, &c->n_toks, err, errlen);
    free(text);
    return st == G4_OK ? 0 : -1;
}

/* Index range [1st, end) of the oldest droppable turn: a user message and
 * everything up to the next user message.  The system message and the last
 * user message (the one being answered) stay.  false when nothing can go. */
static bool oldest_turn(const chat *c, size_t *first, size_t *end)
{
    size_t n = json_array_size(c->msgs), i = has_system(c) ? 1 : 0;
    size_t last_user = n;
    for (size_t k = n; k-- > i;) {
        const char *r = json_string_value(json_object_get(json_array_get(c->msgs, k), "role"));
        if (r && !strcmp(r, "user")) { last_user = k; break; }
    }
    if (i >= last_user) return false;
    size_t j = i + 1;
    while (j < last_user) {
        const char *r = json_string_value(json_object_get(json_array_get(c->msgs, j), "role"));
        if (r && !strcmp(r, "user")) break;
        j++;
    }
    *first = i;
    *end = j;
    return true;
}

static void drop_last(chat *c)
{
    size_t n = json_array_size(c->msgs);
    if (n) json_array_remove(c->msgs, n - 1);
}

/* ---- answer streaming ---- */

static void thought_close(chat *c)
{
    if (!c->thought_open) return;
    if (!c->thought_bol) fputc('\n', stderr);
    fflush(stderr);
    c->thought_open = false;
}

static void show_thought(chat *c, const char *t, size_t n)
{
    if (!c->thought_open) {
        c->thought_open = true;
        c->thought_bol = true;
    }
    if (c->color) {
        fputs("\033[2m", stderr);
        fwrite(t, 1, n, stderr);
        fputs("\033[0m", stderr);
        if (n) c->thought_bol = t[n - 1] == '\n';
    } else {
        /* Not a terminal: every thought line starts with "thought: ". */
        for (size_t i = 0; i < n; i++) {
            if (c->thought_bol) fputs("thought: ", stderr);
            fputc(t[i], stderr);
            c->thought_bol = t[i] == '\n';
        }
    }
    fflush(stderr);
}

static void on_event(const g4_out_event *ev, void *user)
{
    chat *c = user;
    switch (ev->kind) {
    case G4_OUT_CONTENT:
        thought_close(c);
        fwrite(ev->text, 1, ev->len, stdout);
        fflush(stdout);
        if (!sb_add(&c->content, ev->text, ev->len)) cli_error(CMD, "out of memory");
        break;
    case G4_OUT_THOUGHT:
        show_thought(c, ev->text, ev->len);
        if (!sb_add(&c->thought, ev->text, ev->len)) cli_error(CMD, "out of memory");
        break;
    case G4_OUT_TOOL_CALL:
        thought_close(c);
        c->n_tool_calls++;
        fflush(stdout);
        fprintf(stderr, "\n[tool call %s %s: no tools are offered in chat; not kept]\n",
                ev->tool_name ? ev->tool_name : "?", ev->tool_args_json ? ev->tool_args_json : "{}");
        break;
    case G4_OUT_WARNING:
        fflush(stdout);
        fprintf(stderr, "\n[warning: %s]\n", ev->text ? ev->text : "");
        break;
    default:
        break;
    }
}

/* Decodes `n` tokens after the cache, in chunks of n_batch so that Ctrl-C
 * is seen between chunks.  0 ok, 1 interrupted, -1 error (printed). */
static int decode_tokens(chat *c, const int32_t *t, uint32_t n)
{
    char err[512];
    for (uint32_t done = 0; done < n;) {
        if (g_interrupted) return 1;
        uint32_t k = n - done < c->n_batch ? n - done : c->n_batch;
        g4_status st = g4_decode(c->ctx, t + done, k, false, err, sizeof err);
        if (st != G4_OK) {
            cli_error(CMD, "%s", err);
            /* the cache state is unknown now: start from scratch next time */
            g4_kv_clear(c->ctx);
            c->n_kv = 0;
            return -1;
        }
        memcpy(c->kv + c->n_kv, t + done, k * sizeof *t);
        c->n_kv += k;
        done += k;
    }
    return 0;
}

static uint32_t answer_reserve(const chat *c)
{
    int64_t n_max = c->guard.o.max_tokens;
    uint32_t r = n_max >= 0 && n_max < 256 ? (uint32_t)n_max : 256;
    if (r > c->n_ctx / 4) r = c->n_ctx / 4;
    return r ? r : 1;
}

/* Makes the rendered conversation fit n_ctx with room for an answer,
 * dropping the oldest turns (asking first on a terminal).  0 ok, -1 the
 * new message was withdrawn (reported). */
static int fit_context(chat *c)
{
    char err[512];
    uint32_t reserve = answer_reserve(c);
    size_t dropped_turns = 0, dropped_msgs = 0, first_need = 0;
    for (;;) {
        if (build_prompt(c, err, sizeof err)) {
            cli_error(CMD, "%s", err);
            drop_last(c);
            return -1;
        }
        if (c->n_toks + reserve <= c->n_ctx) break;
        size_t a, b;
        bool can_drop = oldest_turn(c, &a, &b);
        if (dropped_turns == 0 && can_drop) {
            first_need = c->n_toks;
            fprintf(stderr, "gemma4 chat: context full: the conversation needs %zu tokens + %u for the answer; "
                            "the cache holds %u / %u (n_ctx)\n",
                    c->n_toks, reserve, g4_context_n_past(c->ctx), c->n_ctx);
        }
        if (!can_drop) {
            cli_error(CMD, "this message needs %zu tokens with %u for the answer, more than n_ctx %u; "
                           "message withdrawn (shorter message, /reset, or a larger --ctx)",
                      c->n_toks, reserve, c->n_ctx);
            drop_last(c);
            return -1;
        }
        if (c->tty && dropped_turns == 0) {
            bool intr = false;
            size_t l = 0;
            char *ans = read_line(c, "drop the oldest turns to make room? [Y/n] ", &l, &intr);
            bool yes = ans && (l == 0 || ans[0] == 'y' || ans[0] == 'Y');
            free(ans);
            if (!yes) {
                fprintf(stderr, "gemma4 chat: message withdrawn; /save, /reset or a larger --ctx can help\n");
                drop_last(c);
                return -1;
            }
        }
        for (size_t k = a; k < b; k++) json_array_remove(c->msgs, a);
        dropped_turns++;
        dropped_msgs += b - a;
    }
    if (dropped_turns)
        fprintf(stderr, "gemma4 chat: dropped the oldest %zu turn%s (%zu message%s): prompt %zu -> %zu tokens of n_ctx %u\n",
                dropped_turns, dropped_turns == 1 ? "" : "s", dropped_msgs, dropped_msgs == 1 ? "" : "s",
                first_need, c->n_toks, c->n_ctx);
    return 0;
}

/* Answers the conversation (its last message is the user's).  0 on
 * success or interruption, -1 on error (reported; the user message withdrawn). */
static int run_turn(chat *c)
{
    char err[512];
    if (fit_context(c)) return -1;

    /* Reuse the cached prefix. */
    uint32_t p = 0;
    while (p < c->n_kv && p < c->n_toks && c->kv[p] == c->toks[p]) p++;
    if (p == c->n_toks && p > 0) p--;   /* decode at least one token: its logits */
    bool reprocessed = false;
    if (p < c->n_kv) {
        if (g4_kv_truncate(c->ctx, p, err, sizeof err) != G4_OK) {
            g4_kv_clear(c->ctx);   /* (the API already cleared it) */
            p = 0;
            reprocessed = true;
            c->n_reprocess++;
        }
        c->n_kv = p;
    }
    uint32_t n_new = (uint32_t)c->n_toks - p;

    g_interrupted = 0;
    double t0 = cli_now_s();
    int r = decode_tokens(c, c->toks + p, n_new);
    double t1 = cli_now_s();
    if (r != 0) {
        if (r > 0) {
            g_interrupted = 0;
            fprintf(stderr, "\n[interrupted while reading the prompt; message withdrawn]\n");
        }
        drop_last(c);
        return r > 0 ? 0 : -1;
    }

    /* Generate. */
    g4_detok *dt = g4_detok_new(c->model, false);
    g4_outparse *op = g4_outparse_new(NULL);
    size_t bcap = g4_token_max_bytes(c->model) + 8;
    char *buf = malloc(bcap);
    if (!dt || !op || !buf) {
        cli_error(CMD, "out of memory");
        g4_detok_free(dt);
        g4_outparse_free(op);
        free(buf);
        drop_last(c);
        return -1;
    }
    c->content.n = c->thought.n = 0;
    if (c->content.p) c->content.p[0] = 0;
    if (c->thought.p) c->thought.p[0] = 0;
    c->thought_open = false;
    c->n_tool_calls = 0;
    const char *stop = "end of turn";
    guard_reset(&c->guard, c->toks, c->n_toks);
    /* a guard's report, printed after the answer's text */
    char stop_msg[256] = "";
    bool failed = false;
    for (;;) {
        if (g_interrupted) { stop = "interrupted"; break; }
        if (guard_check(&c->guard) == GUARD_STOP_LIMIT) {
            guard_message(&c->guard, GUARD_STOP_LIMIT, CMD, stop_msg, sizeof stop_msg);
            stop = "-n limit";
            break;
        }
        const float *logits = g4_get_logits(c->ctx);
        if (!logits) { cli_error(CMD, "no logits"); failed = true; break; }
        int32_t tok = g4_sampler_sample(c->smp, logits);
        g4_sampler_accept(c->smp, tok);
        if (g4_token_is_eog(c->model, tok)) break;

        /* the token and, past the thinking budget, the forced close: the
         * parser sees "<channel|>" as if the model had written it, so the
         * thought ends and the rest is the answer's content */
        int32_t feed[2] = { tok, -1 };
        uint32_t n_feed = 1;
        guard_action act = guard_on_token(&c->guard, tok);
        char close_msg[256] = "";
        if (act == GUARD_CLOSE_THOUGHT) {
            guard_message(&c->guard, act, CMD, close_msg, sizeof close_msg);
            feed[n_feed++] = c->guard.ch_close;
            g4_sampler_accept(c->smp, c->guard.ch_close);
            act = guard_on_token(&c->guard, c->guard.ch_close);
        }
        bool end = false;
        for (uint32_t i = 0; i < n_feed && !failed; i++) {
            size_t n = 0;
            if (g4_detok_push(dt, feed[i], buf, bcap, &n) != G4_OK) {
                cli_error(CMD, "cannot detokenize token %d", feed[i]);
                failed = true;
            } else if (n && g4_outparse_push(op, buf, n, on_event, c) == 1) end = true;
        }
        if (close_msg[0]) {
            /* after the parser has flushed the thought's last text */
            thought_close(c);
            fflush(stdout);
            fputs(close_msg, stderr);
        }
        if (failed || end) break;
        if (act == GUARD_STOP_REPETITION) {
            guard_message(&c->guard, act, CMD, stop_msg, sizeof stop_msg);
            stop = "repetition guard";
            break;
        }
        /* (GUARD_STOP_LIMIT: the check at the top of the loop) */
        if (c->n_kv + n_feed > c->n_ctx) { stop = "context full"; break; }
        if (decode_tokens(c, feed, n_feed)) { failed = true; break; }
    }
    int64_t n_gen = c->guard.n_gen;
    size_t n = 0;
    if (g4_detok_flush(dt, buf, bcap, &n) == G4_OK && n) g4_outparse_push(op, buf, n, on_event, c);
    g4_outparse_finish(op, on_event, c);
    thought_close(c);
    double t2 = cli_now_s();
    fputc('\n', stdout);
    fflush(stdout);
    fputs(stop_msg, stderr);
    g4_detok_free(dt);
    g4_outparse_free(op);
    free(buf);
    bool interrupted = g_interrupted != 0;
    g_interrupted = 0;
    if (failed && n_gen == 0) { drop_last(c); return -1; }
    if (interrupted && n_gen == 0) {
        fprintf(stderr, "[interrupted before the answer began; message withdrawn]\n");
        drop_last(c);
        return 0;
    }

    json_t *m = make_msg("assistant", c->content.p ? c->content.p : "");
    if (m && c->thought.n) json_object_set_new(m, "reasoning_content", json_string(c->thought.p));
    if (!m || json_array_append_new(c->msgs, m)) { cli_error(CMD, "out of memory"); return -1; }

    if (interrupted) fprintf(stderr, "[interrupted; the partial answer is kept]\n");
    if (!strcmp(stop, "context full"))
        fprintf(stderr, "gemma4 chat: context full: %u / %u tokens used; the answer was cut "
                        "(the oldest turns will be dropped next time)\n", c->n_kv, c->n_ctx);
    double tp = t1 - t0, tg = t2 - t1;
    fprintf(stderr, "[prompt %zu tokens: %u reused, %u new%s | answer %lld tokens (%s) | "
                    "%.1f prompt tok/s, %.1f gen tok/s | context %u/%u",
            c->n_toks, p, n_new, reprocessed ? ", cache not truncatable: full re-process" : "",
            (long long)n_gen, stop, tp > 0 ? n_new / tp : 0.0, tg > 0 ? n_gen / tg : 0.0,
            c->n_kv, c->n_ctx);
    if (c->n_reprocess) fprintf(stderr, " | full re-processes %lu", c->n_reprocess);
    fputs("]\n", stderr);
    return 0;
}

/* ---- commands ---- */

static int cmd_save(chat *c, const char *path)
{
    if (json_dump_file(c->msgs, path, JSON_INDENT(2)) != 0) {
        cli_error(CMD, "/save: cannot write '%s': %s", path, errno ? strerror(errno) : "error");
        return -1;
    }
    size_t n = json_array_size(c->msgs);
    fprintf(stderr, "saved %zu message%s to %s\n", n, n == 1 ? "" : "s", path);
    return 0;
}

static int cmd_load(chat *c, const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        if (je.line >= 1)
            cli_error(CMD, "/load: %s: line %d, column %d: %s", path, je.line, je.column, je.text);
        else
            cli_error(CMD, "/load: %s: %s", path, errno ? strerror(errno) : je.text);
        return -1;
    }
    if (!json_is_array(j)) {
        cli_error(CMD, "/load: %s: expected a JSON array of messages", path);
        json_decref(j);
        return -1;
    }
    static const char *const roles[] = { "system", "developer", "user", "assistant", "tool" };
    for (size_t i = 0; i < json_array_size(j); i++) {
        json_t *m = json_array_get(j, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        bool ok = false;
        for (size_t k = 0; role && k < sizeof roles / sizeof roles[0]; k++) ok |= !strcmp(role, roles[k]);
        if (!json_is_object(m) || !ok) {
            cli_error(CMD, "/load: %s: message %zu: %s", path, i,
                      !json_is_object(m) ? "not an object" : "role must be system, developer, user, assistant or tool");
            json_decref(j);
            return -1;
        }
    }
    /* The renderer checks the rest of the shape. */
    char *js = json_dumps(j, JSON_COMPACT), *text = NULL, err[512];
    g4_chat_params p = g4_chat_default_params();
    g4_status st = js ? g4_chat_render(js, NULL, &p, &text, err, sizeof err) : G4_ERR_NOMEM;
    free(js);
    free(text);
    if (st != G4_OK) {
        cli_error(CMD, "/load: %s: %s", path, st == G4_ERR_NOMEM ? "out of memory" : err);
        json_decref(j);
        return -1;
    }
    json_decref(c->msgs);
    c->msgs = j;
    size_t n = json_array_size(j);
    fprintf(stderr, "loaded %zu message%s from %s\n", n, n == 1 ? "" : "s", path);
    return 0;
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

/* Handles a "/..." line.  Returns 1 to quit, else 0. */
static int command(chat *c, const char *line)
{
    const char *a = line + 1;
    size_t w = strcspn(a, " \t");
    const char *arg = skip_ws(a + w);
    /* trailing blanks of the argument */
    size_t alen = strlen(arg);
    while (alen && (arg[alen - 1] == ' ' || arg[alen - 1] == '\t')) alen--;
    char *argv1 = strndup(arg, alen);
    if (!argv1) { cli_error(CMD, "out of memory"); return 0; }
#define IS(name) (w == strlen(name) && !strncmp(a, name, w))
    int rc = 0;
    if (IS("quit") || IS("exit")) rc = 1;
    else if (IS("help")) help_commands();
    else if (IS("reset")) {
        json_t *sys = has_system(c) ? json_incref(json_array_get(c->msgs, 0)) : NULL;
        json_array_clear(c->msgs);
        if (sys) json_array_append_new(c->msgs, sys);
        fprintf(stderr, "conversation cleared%s\n", sys ? " (system prompt kept)" : "");
    } else if (IS("system")) {
        if (!*argv1) {
            if (has_system(c)) json_array_remove(c->msgs, 0);
            fprintf(stderr, "system prompt removed\n");
        } else {
            json_t *m = make_msg("system", argv1);
            if (!m) cli_error(CMD, "out of memory");
            else if (has_system(c)) json_array_set_new(c->msgs, 0, m);
            else json_array_insert_new(c->msgs, 0, m);
            if (m) fprintf(stderr, "system prompt set\n");
        }
    } else if (IS("think")) {
        if (!strcmp(argv1, "on")) c->think = true;
        else if (!strcmp(argv1, "off")) c->think = false;
        else if (*argv1) cli_error(CMD, "/think: say on or off, not '%s'", argv1);
        fprintf(stderr, "thinking %s\n", c->think ? "on" : "off");
    } else if (IS("save")) {
        if (!*argv1) cli_error(CMD, "/save needs a FILE");
        else cmd_save(c, argv1);
    } else if (IS("load")) {
        if (!*argv1) cli_error(CMD, "/load needs a FILE");
        else cmd_load(c, argv1);
    } else cli_error(CMD, "unknown command '/%.*s' (/help lists them; //TEXT sends a message starting with '/')", (int)w, a);
#undef IS
    free(argv1);
    return rc;
}

/* ---- main ---- */

static bool parse_float(const char *opt, const char *s, double lo, double hi, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !(v >= lo && v <= hi)) {
        cli_error(CMD, "%s: '%s' is not a number in [%g, %g]", opt, s, lo, hi);
        return false;
    }
    *out = (float)v;
    return true;
}

int cmd_chat(int argc, char **argv)
{
    const char *model_path = NULL, *system = NULL;
    bool think = false;
    int64_t n_ctx = 0, n_threads = 0, n_batch = 512, v;
    guard_opts gopt = guard_default_opts();
    g4_sampler_params sp = g4_sampler_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        int gr = guard_parse_opt(CMD, &gopt, argc, argv, &i);
        if (gr < 0) return EXIT_USAGE;
        if (gr > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--think")) think = true;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (!(model_path = cli_value(CMD, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "--system")) { if (!(system = cli_value(CMD, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) {
            if (!(val = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, val, 0, UINT32_MAX, &n_ctx)) return EXIT_USAGE;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(val = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, val, 0, 4096, &n_threads)) return EXIT_USAGE;
        } else if (!strcmp(a, "--n-predict")) {   /* the old name of -n */
            if (!(val = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, val, -1, INT32_MAX, &gopt.max_tokens)) return EXIT_USAGE;
        } else if (!strcmp(a, "--batch") || !strcmp(a, "-b")) {
            if (!(val = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, val, 1, 1 << 20, &n_batch)) return EXIT_USAGE;
        } else if (!strcmp(a, "--temp")) {
            if (!(val = cli_value(CMD, argc, argv, &i)) || !parse_float(a, val, 0, 100, &sp.temperature)) return EXIT_USAGE;
        } else if (!strcmp(a, "--top-p")) {
            if (!(val = cli_value(CMD, argc, argv, &i)) || !parse_float(a, val, 0, 1, &sp.top_p)) return EXIT_USAGE;
        } else if (!strcmp(a, "--top-k")) {
            if (!(val = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, val, 0, INT32_MAX, &v)) return EXIT_USAGE;
            sp.top_k = (int32_t)v;
        } else if (!strcmp(a, "--seed")) {
            if (!(val = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, val, 0, INT64_MAX, &v)) return EXIT_USAGE;
            sp.seed = (uint64_t)v;
        } else { cli_error(CMD, "unknown option '%s' (gemma4 chat --help)", a); return EXIT_USAGE; }
    }
    if (!model_path) { usage(stderr); cli_error(CMD, "no model: give -m MODEL"); return EXIT_USAGE; }
    if (system && utf8_bad_offset((const unsigned char *)system, strlen(system)) >= 0) {
        cli_error(CMD, "--system: not valid UTF-8");
        return EXIT_USAGE;
    }

    char err[512];
    chat c = { .think = think };
    c.tty = isatty(STDIN_FILENO);
    c.color = isatty(STDERR_FILENO);
    g4_model_params mp = g4_model_default_params();
    mp.n_threads = (int)n_threads;
    if (g4_model_load(model_path, &mp, &c.model, err, sizeof err) != G4_OK) {
        cli_error(CMD, "%s: %s", model_path, err);
        return 1;
    }
    int rc = 1;
    size_t tlen = 0;
    if (g4_tokenize(c.model, "", 0, false, true, NULL, 0, &tlen, err, sizeof err) == G4_ERR_UNSUPPORTED) {
        cli_error(CMD, "%s: %s", model_path, err);
        goto done;
    }
    g4_context_params cp = g4_context_default_params();
    cp.n_ctx = (uint32_t)n_ctx;
    cp.n_batch = (uint32_t)n_batch;
    cp.n_threads = (int)n_threads;
    if (g4_context_new(c.model, &cp, &c.ctx, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
    c.n_ctx = g4_context_n_ctx(c.ctx);
    c.n_batch = cp.n_batch < c.n_ctx ? cp.n_batch : c.n_ctx;
    if (g4_sampler_new(c.model, &sp, &c.smp, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
    c.kv = malloc((size_t)c.n_ctx * sizeof *c.kv);
    c.msgs = json_array();
    bool guard_ok = guard_init(&c.guard, &gopt, c.model);
    if (!c.kv || !c.msgs || !guard_ok) { cli_error(CMD, "out of memory"); goto done; }
    if (system && *system) json_array_append_new(c.msgs, make_msg("system", system));

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   /* no SA_RESTART: a blocked read returns EINTR */
    struct sigaction old_sa;
    sigaction(SIGINT, &sa, &old_sa);

    if (c.tty) {
        c.el = el_init("gemma4", stdin, stdout, stderr);
        c.hist = history_init();
        if (!c.el || !c.hist) { cli_error(CMD, "cannot initialise line editing"); goto restore; }
        HistEvent ev;
        history(c.hist, &ev, H_SETSIZE, 1000);
        history(c.hist, &ev, H_SETUNIQUE, 1);
        el_set(c.el, EL_CLIENTDATA, &c);
        el_set(c.el, EL_PROMPT, el_prompt_fn);
        el_set(c.el, EL_EDITOR, "emacs");
        el_set(c.el, EL_HIST, history, c.hist);
        el_source(c.el, NULL);   /* ~/.editrc */
        g4_model_info mi;
        g4_model_get_info(c.model, &mi);
        fprintf(stderr, "gemma4 chat: %s, context %u tokens%s.  /help for commands, Ctrl-D to leave.\n",
                mi.name[0] ? mi.name : model_path, c.n_ctx, c.think ? ", thinking on" : "");
    }

    rc = 0;
    for (;;) {
        size_t len = 0;
        bool intr = false;
        char *line = read_line(&c, "> ", &len, &intr);
        if (!line) {
            if (intr && c.tty) continue;   /* Ctrl-C at the prompt: a fresh line */
            if (ferror(stdin) && !intr) { cli_error(CMD, "read error on standard input"); rc = 1; }
            if (c.tty) fputc('\n', stderr);
            break;
        }
        long bad = utf8_bad_offset((const unsigned char *)line, len);
        if (strlen(line) != len) {
            cli_error(CMD, "input contains a NUL byte (at byte %zu); line ignored", strlen(line));
            free(line);
            continue;
        }
        if (bad >= 0) {
            cli_error(CMD, "input is not valid UTF-8 (byte %ld of the line); line ignored", bad + 1);
            free(line);
            continue;
        }
        const char *s = skip_ws(line);
        if (!*s) { free(line); continue; }
        if (c.hist) {
            HistEvent ev;
            history(c.hist, &ev, H_ENTER, line);
        }
        if (s[0] == '/' && s[1] != '/') {
            int q = command(&c, s);
            free(line);
            if (q) break;
            continue;
        }
        if (s[0] == '/') s++;   /* "//text" sends "/text" */
        json_t *m = make_msg("user", s);
        free(line);
        if (!m || json_array_append_new(c.msgs, m)) { cli_error(CMD, "out of memory"); continue; }
        run_turn(&c);
    }

restore:
    sigaction(SIGINT, &old_sa, NULL);
done:
    if (c.el) el_end(c.el);
    if (c.hist) history_end(c.hist);
    free(c.content.p);
    free(c.thought.p);
    free(c.toks);
    free(c.kv);
    guard_free(&c.guard);
    json_decref(c.msgs);
    g4_sampler_free(c.smp);
    g4_context_free(c.ctx);
    g4_model_free(c.model);
    return rc;
}
