/*
 * serve.c - `gemma4 serve`: options, start-up and shutdown.
 *
 * Order: listen first (so /health can answer 503 "loading" at once), load
 * the model and the projector in a loader thread, create the slots and the
 * scheduler, then flip /health to 200.  The main thread only waits for
 * SIGINT / SIGTERM (sigwait: the signals are blocked in every thread), then
 * stops accepting connections, ends every request (streams get their final
 * event and [DONE]), waits for the connection threads and frees everything.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/media.h"
#include "server/server.h"

#define CMD "serve"

srv_server *g_srv;

int cmd_serve(int argc, char **argv);

static void usage(FILE *f)
{
    fprintf(f,
        "usage: gemma4 serve -m MODEL [options]\n"
        "\n"
        "OpenAI-compatible HTTP server (docs/server.md): /v1/chat/completions,\n"
        "/v1/completions, /v1/models, /v1/audio/transcriptions, /health, /metrics,\n"
        "/tokenize, /detokenize.\n"
        "\n"
        "  -m, --model FILE      GGUF model\n"
        "  --mmproj FILE         projector GGUF for image / audio input\n"
        "  --host ADDR           listen address (default 127.0.0.1: this machine only)\n"
        "  --port N              TCP port (default 8080; 0 = any free port, printed)\n"
        "  --parallel N          slots: requests generated at the same time (default 2)\n"
        "  --ctx N               context positions per slot (default min(model's, 4096))\n"
        "  --batch N             tokens per forward pass (default 256; 1120 with vision)\n"
        "  --cache-reach N       a slot's cache can be reused up to N positions before its end\n"
        "                        (default 1024; costs KV memory on sliding-window layers)\n"
        "  --api-key KEY         require 'Authorization: Bearer KEY' (not on /health)\n"
        "  --api-key-file FILE   the key is the file's first line\n"
        "  --cors-origin ORIGIN  allow this browser origin (exact match; repeatable)\n"
        "  --media-dir DIR       allow file:// image URLs under DIR (default: none)\n"
        "  --max-body MB         request body limit (default 32)\n"
        "  --queue N             requests waiting for a slot before 429 (default 64)\n"
        "  --timeout S           per-request deadline in seconds (default 600)\n"
        "  --idle-timeout S      close connections idle (or sending slowly) this long (default 120)\n"
        "  --alias NAME          model id reported by the API (default: file name)\n"
        "  -t, --threads N       compute threads (default: one per physical core)\n");
}

static char *read_key_file(const char *path)
{
    char *txt = cli_read_file(CMD, path, 1 << 16);
    if (!txt) return NULL;
    char *nl = strpbrk(txt, "\r\n");
    if (nl) *nl = 0;
    size_t n = strlen(txt);
    while (n && (txt[n - 1] == ' ' || txt[n - 1] == '\t')) txt[--n] = 0;
    if (!n) { cli_error(CMD, "--api-key-file %s: the first line is empty", path); free(txt); return NULL; }
    return txt;
}

typedef struct {
    srv_server *s;
    int rc;
} loader_arg;

static void *loader(void *arg)
{
    loader_arg *la = arg;
    srv_server *s = la->s;
    char err[512];
    g4_model_params mp = g4_model_default_params();
    mp.n_threads = s->cfg.threads;
    double t0 = srv_now();
    if (g4_model_load(s->cfg.model_path, &mp, &s->model, err, sizeof err) != G4_OK) {
        cli_error(CMD, "%s", err);
        goto fail;
    }
    g4_model_get_info(s->model, &s->info);
    s->n_vocab = g4_vocab_size(s->model);
    if (!s->n_vocab) { cli_error(CMD, "%s: the model has no usable tokenizer", s->cfg.model_path); goto fail; }
    s->tok_image = cli_single_token(s->model, "<|image|>");
    s->tok_audio = cli_single_token(s->model, "<|audio|>");
    s->tok_boi = cli_single_token(s->model, "<|image>");
    s->tok_eoi = cli_single_token(s->model, "<image|>");
    s->tok_boa = cli_single_token(s->model, "<|audio>");
    s->tok_eoa = cli_single_token(s->model, "<audio|>");
    if (s->tok_boi < 0 || s->tok_eoi < 0) s->tok_image = -1;
    if (s->tok_boa < 0 || s->tok_eoa < 0) s->tok_audio = -1;
    if (s->cfg.mmproj_path) {
        g4_mmproj_params pp = g4_mmproj_default_params();
        pp.n_threads = s->cfg.threads;
        if (g4_mmproj_load(s->cfg.mmproj_path, &pp, &s->mmproj, err, sizeof err) != G4_OK ||
            g4_mmproj_check_model(s->mmproj, s->model, err, sizeof err) != G4_OK) {
            cli_error(CMD, "--mmproj: %s", err);
            goto fail;
        }
        g4_mmproj_info mi;
        g4_mmproj_get_info(s->mmproj, &mi);
        s->mm_info_vision = mi.has_vision && s->tok_image >= 0;
        s->mm_info_audio = mi.has_audio && s->tok_audio >= 0;
        /* an image's rows must fit one pass (bidirectional block) */
        if (s->mm_info_vision && s->cfg.n_batch < 1120) s->cfg.n_batch = 1120;
    }
    s->sched = sched_new(s, err, sizeof err);
    if (!s->sched) { cli_error(CMD, "%s", err); goto fail; }
    s->created = (long)time(NULL);
    atomic_store(&s->ready, true);
    printf("gemma4 serve: ready: model %s (%s, %u layers, %.2f s), %d slots x %u positions%s%s\n", s->model_id, s->info.name,
           s->info.n_layer, srv_now() - t0, s->cfg.parallel, sched_n_ctx(s->sched),
           s->mmproj ? ", mmproj " : "", s->mmproj ? (s->mm_info_vision ? (s->mm_info_audio ? "vision+audio" : "vision") : "audio") : "");
    fflush(stdout);
    la->rc = 0;
    return NULL;
fail:
    la->rc = 1;
    kill(getpid(), SIGUSR1);
    return NULL;
}

int cmd_serve(int argc, char **argv)
{
    srv_server srv;
    memset(&srv, 0, sizeof srv);
    srv_config *cfg = &srv.cfg;
    cfg->host = "127.0.0.1";
    cfg->port = 8080;
    cfg->parallel = 2;
    cfg->queue_cap = 64;
    cfg->timeout_s = 600;
    cfg->idle_timeout_s = 120;
    cfg->max_body = 32ull << 20;
    cfg->n_batch = 256;
    cfg->n_rewind = 1024;
    const char *key_file = NULL, *media_dir = NULL;
    const char **cors = calloc((size_t)argc, sizeof *cors);
    if (!cors) { cli_error(CMD, "out of memory"); return 1; }
    cfg->cors = cors;
    int64_t v;
    int rc = EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
#define VAL() do { if (!(val = cli_value(CMD, argc, argv, &i))) goto out; } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); rc = 0; goto out; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { VAL(); cfg->model_path = val; }
        else if (!strcmp(a, "--mmproj")) { VAL(); cfg->mmproj_path = val; }
        else if (!strcmp(a, "--host")) { VAL(); cfg->host = val; }
        else if (!strcmp(a, "--port")) { VAL(); if (!cli_parse_i64(CMD, a, val, 0, 65535, &v)) goto out; cfg->port = (int)v; }
        else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) { VAL(); if (!cli_parse_i64(CMD, a, val, 1, 64, &v)) goto out; cfg->parallel = (int)v; }
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) { VAL(); if (!cli_parse_i64(CMD, a, val, 16, 1 << 20, &v)) goto out; cfg->n_ctx = (uint32_t)v; }
        else if (!strcmp(a, "--batch") || !strcmp(a, "-b")) { VAL(); if (!cli_parse_i64(CMD, a, val, 64, 8192, &v)) goto out; cfg->n_batch = (uint32_t)v; }
        else if (!strcmp(a, "--cache-reach")) { VAL(); if (!cli_parse_i64(CMD, a, val, 0, 1 << 20, &v)) goto out; cfg->n_rewind = (uint32_t)v; }
        else if (!strcmp(a, "--api-key")) { VAL(); if (!val[0]) { cli_error(CMD, "--api-key: empty key"); goto out; } free(cfg->api_key); cfg->api_key = strdup(val); }
        else if (!strcmp(a, "--api-key-file")) { VAL(); key_file = val; }
        else if (!strcmp(a, "--cors-origin")) {
            VAL();
            if (!strcmp(val, "*") || !val[0] || strchr(val, ' ') || strchr(val, ',')) {
                cli_error(CMD, "--cors-origin: '%s' is not one origin (wildcards are refused: give each origin, e.g. http://localhost:3000)", val);
                goto out;
            }
            cors[cfg->n_cors++] = val;
        }
        else if (!strcmp(a, "--media-dir")) { VAL(); media_dir = val; }
        else if (!strcmp(a, "--max-body")) { VAL(); if (!cli_parse_i64(CMD, a, val, 1, 4096, &v)) goto out; cfg->max_body = (uint64_t)v << 20; }
        else if (!strcmp(a, "--queue")) { VAL(); if (!cli_parse_i64(CMD, a, val, 1, 100000, &v)) goto out; cfg->queue_cap = (int)v; }
        else if (!strcmp(a, "--idle-timeout")) { VAL(); if (!cli_parse_i64(CMD, a, val, 1, 86400, &v)) goto out; cfg->idle_timeout_s = (int)v; }
        else if (!strcmp(a, "--timeout")) { VAL(); if (!cli_parse_i64(CMD, a, val, 1, 86400 * 7, &v)) goto out; cfg->timeout_s = (double)v; }
        else if (!strcmp(a, "--alias")) { VAL(); if (!val[0] || strlen(val) >= sizeof srv.model_id) { cli_error(CMD, "--alias: 1 to %zu bytes", sizeof srv.model_id - 1); goto out; } cfg->alias = val; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { VAL(); if (!cli_parse_i64(CMD, a, val, 1, 1024, &v)) goto out; cfg->threads = (int)v; }
        else { cli_error(CMD, "unknown option '%s' (gemma4 serve --help)", a); goto out; }
#undef VAL
    }
    if (!cfg->model_path) { cli_error(CMD, "missing -m MODEL (gemma4 serve --help)"); goto out; }
    if (cfg->api_key && key_file) { cli_error(CMD, "give --api-key or --api-key-file, not both"); goto out; }
    if (key_file && !(cfg->api_key = read_key_file(key_file))) goto out;
    if (media_dir) {
        char real[PATH_MAX];
        struct stat st;
        if (!realpath(media_dir, real) || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
            cli_error(CMD, "--media-dir %s: not a directory", media_dir);
            goto out;
        }
        cfg->media_dir = strdup(real);
    }
    {
        struct stat st;
        if (stat(cfg->model_path, &st) != 0) { cli_error(CMD, "cannot open '%s': %s", cfg->model_path, strerror(errno)); rc = 1; goto out; }
    }
    if (cfg->alias) snprintf(srv.model_id, sizeof srv.model_id, "%s", cfg->alias);
    else {
        const char *b = strrchr(cfg->model_path, '/');
        b = b ? b + 1 : cfg->model_path;
        size_t n = strlen(b);
        if (n > 5 && !strcmp(b + n - 5, ".gguf")) n -= 5;
        if (n >= sizeof srv.model_id) n = sizeof srv.model_id - 1;
        memcpy(srv.model_id, b, n);
        srv.model_id[n] = 0;
        if (!jr_utf8_ok(srv.model_id, n)) snprintf(srv.model_id, sizeof srv.model_id, "gemma4");
    }
    atomic_init(&srv.ready, false);
    atomic_init(&srv.stopping, false);
    pthread_mutex_init(&srv.mm_mu, NULL);
    g_srv = &srv;

    /* signals: handled by sigwait in this thread only */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    char err[512];
    int port = http_start(&srv, err, sizeof err);
    if (port < 0) { cli_error(CMD, "%s", err); rc = 1; goto out; }
    printf("gemma4 serve: listening on http://%s%s%s:%d\n", strchr(cfg->host, ':') ? "[" : "", cfg->host, strchr(cfg->host, ':') ? "]" : "", port);
    if (strcmp(cfg->host, "127.0.0.1") && strcmp(cfg->host, "localhost") && strcmp(cfg->host, "::1"))
        fprintf(stderr, "gemma4 serve: warning: listening on %s: reachable from other machines%s\n", cfg->host,
                cfg->api_key ? "" : " without an API key (--api-key)");
    fflush(stdout);

    loader_arg la = { &srv, -1 };
    pthread_t lt;
    if (pthread_create(&lt, NULL, loader, &la) != 0) { cli_error(CMD, "cannot start the loader thread"); http_stop(); rc = 1; goto out; }
    int sig = 0;
    sigwait(&set, &sig);
    pthread_join(lt, NULL);
    atomic_store(&srv.stopping, true);
    if (sig != SIGUSR1) fprintf(stderr, "gemma4 serve: %s: shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    http_quiesce();
    sched_stop(srv.sched);          /* every request ends: streams get their last event */
    http_drain(10);                 /* ... and are sent before the connections close */
    http_stop();                    /* connection threads finish sending and exit */
    sched_free(srv.sched);
    g4_mmproj_free(srv.mmproj);
    media_cache_free();
    g4_model_free(srv.model);
    pthread_mutex_destroy(&srv.mm_mu);
    g_srv = NULL;
    rc = la.rc == 0 ? 0 : 1;
out:
    free(cfg->api_key);
    free(cfg->media_dir);
    free(cors);
    return rc;
}
