/*
 * run.c - `gemma4 run`: one prompt in, generated text out (docs/run.md).
 *
 * Unless --raw, the prompt becomes one user turn (with an optional system
 * turn) through the chat template; the rendered text starts with the
 * literal "<bos>", so it is tokenized with add_bos = false and
 * parse_special = true: exactly one BOS.  Generated tokens are detokenized
 * with special = true (the output parser needs the marker text) and split
 * by the output parser: the answer streams to stdout, thoughts to stderr
 * between "[thinking]" / "[end of thinking]" lines, tool calls to stdout as
 * one JSON line each: {"tool_call":{"name":...,"arguments":{...}}}.
 *
 * Loop guards (on by default, each reported on stderr when it fires):
 * -n (token limit), --max-thinking (thought budget: the thought is closed
 * by feeding "<channel|>"), --repeat-guard (stop when the output's tail
 * repeats with a short period), and the end of the context.
 *
 * Exit codes: 0 ok (also when a guard stopped generation), 1 runtime
 * failure (model, input data such as invalid UTF-8), 2 usage (options,
 * prompt longer than --ctx).
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/guards.h"
#include "cli/media.h"
#include "gemma4.h"

#define CMD "run"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: gemma4 run -m MODEL (-p TEXT | -p - | -f FILE) [options]\n"
        "\n"
        "Generates the model's answer to one user message (chat template applied)\n"
        "or, with --raw, continues the text as is.  The answer streams to stdout,\n"
        "thoughts and reports to stderr; the last stderr line gives the speeds.\n"
        "\n"
        "  -m, --model FILE      GGUF model\n"
        "  -p, --prompt TEXT     the user message; '-' reads it from stdin\n"
        "  -f, --file FILE       read the user message from FILE\n"
        "  --system TEXT         a system message\n"
        "  --think               thinking on (thoughts go to stderr)\n"
        "  --raw                 no chat template: tokenize TEXT (BOS added) and continue it\n"
        "media (docs/multimodal.md):\n"
        "  --mmproj FILE         the projector GGUF (gemma4uv / gemma4ua) for images and audio\n"
        "  --image FILE          an image (JPEG, PNG, WebP, GIF, BMP); repeatable\n"
        "  --audio FILE          an audio clip (WAV, FLAC, OGG/Vorbis/Opus, MP3); repeatable\n"
        "  --image-tokens M      soft tokens per image: 70, 140, 280 (default), 560 or 1120\n"
        "                        Media go into the user turn before the text, in the order given,\n"
        "                        or where the markers <image> / <audio> stand in the text.\n"
        "sampling (defaults: the checkpoint's):\n"
        "  --temp T              temperature, 0 = greedy (default 1.0)\n"
        "  --top-k K             0 = off (default 64)\n"
        "  --top-p P             1 = off (default 0.95)\n"
        "  --min-p P             0 = off (default 0)\n"
        "  --repeat-penalty R    1 = off (default 1)\n"
        "  --presence-penalty F  0 = off (default 0)\n"
        "  --frequency-penalty F 0 = off (default 0)\n"
        "  --repeat-last-n N     tokens the penalties look at (default 64)\n"
        "  --seed S              generator seed (default 12648430 = 0xC0FFEE)\n");
    guard_usage(f);
    fprintf(f,
        "engine:\n"
        "  --ctx N               context positions (default min(model's, 4096))\n"
        "  -t, --threads N       worker threads (default: one per physical core)\n"
        "  --no-mmap             read the model into memory instead of mapping it\n"
        "  --dump-ids FILE       also write the generated token ids to FILE (verification)\n");
}

static bool parse_f(const char *opt, const char *s, double lo, double hi, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!s[0] || *end || errno == ERANGE || !isfinite(v)) {
        cli_error(CMD, "%s: '%s' is not a finite number", opt, s);
        return false;
    }
    if (v < lo || v > hi) {
        cli_error(CMD, "%s: %s is out of range [%g, %g]", opt, s, lo, hi);
        return false;
    }
    *out = (float)v;
    return true;
}

static bool parse_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s[0] || s[0] == '-' || s[0] == '+' || s[0] == ' ') { cli_error(CMD, "%s: '%s' is not a non-negative integer", opt, s); return false; }
    unsigned long long v = strtoull(s, &end, 0);
    if (*end || errno == ERANGE) { cli_error(CMD, "%s: '%s' is not a non-negative integer", opt, s); return false; }
    *out = v;
    return true;
}

/* The whole stream; *len bytes plus a NUL.  NULL with an error printed. */
static char *read_all(FILE *f, const char *what, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) { cli_error(CMD, "out of memory"); return NULL; }
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= ((size_t)1 << 30)) { cli_error(CMD, "%s is larger than 1 GiB", what); free(buf); return NULL; }
            char *g = realloc(buf, cap * 2);
            if (!g) { cli_error(CMD, "out of memory reading %s", what); free(buf); return NULL; }
            buf = g;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - 1 - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) { cli_error(CMD, "read error on %s", what); free(buf); return NULL; }
            break;
        }
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Offset of the first byte that is not part of valid UTF-8 (or a NUL), or -1. */
static int64_t utf8_bad(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        if (c == 0) return (int64_t)i;
        if (c < 0x80) { i++; continue; }
        size_t k;
        unsigned min;
        if (c >= 0xC2 && c <= 0xDF) { k = 1; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; min = 0x10000; }
        else return (int64_t)i;
        unsigned cp = c & (0x3F >> k);
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (u[i + j] & 0xC0) != 0x80) return (int64_t)i;
            cp = (cp << 6) | (u[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return (int64_t)i;
        i += k + 1;
    }
    return -1;
}

static bool check_text(const char *what, const char *s, size_t n)
{
    int64_t off = utf8_bad(s, n);
    if (off < 0) return true;
    unsigned char b = (unsigned char)s[off];
    if (b == 0) cli_error(CMD, "%s: NUL byte at byte offset %lld", what, (long long)off);
    else cli_error(CMD, "%s: invalid UTF-8 at byte offset %lld (byte 0x%02X)", what, (long long)off, b);
    return false;
}

/* ------------------------------------------------------------ output */

typedef struct {
    bool   in_thought;      /* a "[thinking]" block is open on stderr */
    bool   any_thought;
    bool   ended;           /* G4_OUT_END seen */
    char   last_out;        /* last byte written to stdout */
    size_t n_out;
} out_state;

static void close_thought(out_state *o)
{
    if (o->in_thought) {
        fputs("\n[end of thinking]\n", stderr);
        fflush(stderr);
        o->in_thought = false;
    }
}

static void out_write(out_state *o, const char *s, size_t n)
{
    if (!n) return;
    fwrite(s, 1, n, stdout);
    fflush(stdout);
    o->last_out = s[n - 1];
    o->n_out += n;
}

static void on_event(const g4_out_event *ev, void *user)
{
    out_state *o = user;
    switch (ev->kind) {
    case G4_OUT_CONTENT:
        close_thought(o);
        out_write(o, ev->text, ev->len);
        break;
    case G4_OUT_THOUGHT:
        if (!o->in_thought) {
            fputs("[thinking]\n", stderr);
            o->in_thought = o->any_thought = true;
        }
        fwrite(ev->text, 1, ev->len, stderr);
        fflush(stderr);
        break;
    case G4_OUT_TOOL_CALL: {
        close_thought(o);
        json_t *args = json_loads(ev->tool_args_json ? ev->tool_args_json : "{}", 0, NULL);
        json_t *line = json_pack("{s:{s:s,s:o}}", "tool_call", "name", ev->tool_name ? ev->tool_name : "",
                                 "arguments", args ? args : json_object());
        char *js = line ? json_dumps(line, JSON_COMPACT) : NULL;
        if (js) {
            if (o->n_out && o->last_out != '\n') out_write(o, "\n", 1);
            out_write(o, js, strlen(js));
            out_write(o, "\n", 1);
        }
        free(js);
        json_decref(line);
        break;
    }
    case G4_OUT_WARNING:
        close_thought(o);
        fprintf(stderr, "gemma4 run: warning: %.*s\n", (int)ev->len, ev->text ? ev->text : "");
        break;
    case G4_OUT_END:
        close_thought(o);
        o->ended = true;
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------ media */

/* The user turn's content parts: text split at the markers "<image>" and
 * "<audio>" (each takes the next file of its kind); files without a marker
 * go first, in command-line order. */
static bool user_parts(json_t *msgs, const char *prompt, cli_media *media, size_t n_media)
{
    json_t *parts = json_array();
    size_t n_img = 0, n_aud = 0, used_img = 0, used_aud = 0;
    for (size_t i = 0; i < n_media; i++) { if (media[i].kind == CLI_MEDIA_IMAGE) n_img++; else n_aud++; }
    size_t mk_img = 0, mk_aud = 0;
    for (const char *p = prompt; (p = strchr(p, '<')); p++) {
        if (!strncmp(p, "<image>", 7)) mk_img++;
        else if (!strncmp(p, "<audio>", 7)) mk_aud++;
    }
    if ((mk_img && mk_img != n_img) || (mk_aud && mk_aud != n_aud)) {
        cli_error(CMD, "the prompt has %zu <image> and %zu <audio> markers for %zu --image and %zu --audio files",
                  mk_img, mk_aud, n_img, n_aud);
        json_decref(parts);
        return false;
    }
    /* reorder the items to the order their placeholders will appear in */
    cli_media *order = calloc(n_media, sizeof *order);
    size_t k = 0;
    if (!order) { json_decref(parts); return false; }
    for (size_t i = 0; i < n_media; i++) {
        bool img = media[i].kind == CLI_MEDIA_IMAGE;
        if ((img && mk_img) || (!img && mk_aud)) continue;
        json_array_append_new(parts, json_pack("{s:s}", "type", img ? "image" : "audio"));
        order[k++] = media[i];
    }
    const char *s = prompt;
    for (;;) {
        const char *a = strstr(s, "<image>"), *b = strstr(s, "<audio>");
        const char *q = (a && (!b || a < b)) ? a : b;
        if (!q) break;
        if (q > s) json_array_append_new(parts, json_pack("{s:s,s:s%}", "type", "text", "text", s, (size_t)(q - s)));
        bool img = q == a;
        json_array_append_new(parts, json_pack("{s:s}", "type", img ? "image" : "audio"));
        /* the next file of that kind */
        size_t want = img ? used_img++ : used_aud++, seen = 0;
        for (size_t i = 0; i < n_media; i++)
            if ((media[i].kind == CLI_MEDIA_IMAGE) == img && seen++ == want) { order[k++] = media[i]; break; }
        s = q + 7;
    }
    if (*s) json_array_append_new(parts, json_pack("{s:s,s:s}", "type", "text", "text", s));
    memcpy(media, order, n_media * sizeof *order);
    free(order);
    json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", "user", "content", parts));
    return true;
}

/* ------------------------------------------------------------ main */

typedef struct {
    g4_context *ctx;
    g4_sampler *smp;
    g4_detok   *dt;
    g4_outparse *op;
    out_state   out;
    char       *piece;
    size_t      piece_cap;
    bool        raw;
    FILE       *ids;
} gen;

/* Outputs one token (already accepted by the sampler).  Returns false when
 * the parser saw the end marker. */
static bool emit(gen *g, int32_t tok)
{
    size_t n = 0;
    if (g->ids) fprintf(g->ids, "%d ", (int)tok);
    if (g4_detok_push(g->dt, tok, g->piece, g->piece_cap, &n) != G4_OK) return true;
    if (g->raw) {
        out_write(&g->out, g->piece, n);
        return true;
    }
    return g4_outparse_push(g->op, g->piece, n, on_event, &g->out) != 1;
}

int cmd_run(int argc, char **argv)
{
    const char *model_path = NULL, *prompt_arg = NULL, *prompt_file = NULL, *system = NULL, *dump_ids = NULL;
    bool think = false, raw = false, mmap = true;
    int64_t n_ctx = 0, threads = 0, last_n = 64, top_k = 64;
    guard_opts gopt = guard_default_opts();
    uint64_t seed = 0xC0FFEE;
    g4_sampler_params sp = g4_sampler_default_params();
    const char *mmproj_path = NULL;
    int64_t image_tokens = 280;
    cli_media *media = calloc((size_t)argc, sizeof *media);
    size_t n_media = 0;
    if (!media) { cli_error(CMD, "out of memory"); return 1; }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
#define VAL() do { if (!(v = cli_value(CMD, argc, argv, &i))) { free(media); return EXIT_USAGE; } } while (0)
        int gr = guard_parse_opt(CMD, &gopt, argc, argv, &i);
        if (gr < 0) { free(media); return EXIT_USAGE; }
        if (gr > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); free(media); return 0; }
        else if (!strcmp(a, "--think")) think = true;
        else if (!strcmp(a, "--raw")) raw = true;
        else if (!strcmp(a, "--no-mmap")) mmap = false;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { VAL(); model_path = v; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { VAL(); prompt_arg = v; }
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) { VAL(); prompt_file = v; }
        else if (!strcmp(a, "--system")) { VAL(); system = v; }
        else if (!strcmp(a, "--mmproj")) { VAL(); mmproj_path = v; }
        else if (!strcmp(a, "--image")) { VAL(); media[n_media].kind = CLI_MEDIA_IMAGE; media[n_media++].path = v; }
        else if (!strcmp(a, "--audio")) { VAL(); media[n_media].kind = CLI_MEDIA_AUDIO; media[n_media++].path = v; }
        else if (!strcmp(a, "--image-tokens")) {
            VAL();
            if (!cli_parse_i64(CMD, a, v, 1, 1 << 20, &image_tokens)) { free(media); return EXIT_USAGE; }
            if (image_tokens != 70 && image_tokens != 140 && image_tokens != 280 && image_tokens != 560 && image_tokens != 1120) {
                cli_error(CMD, "--image-tokens: %lld is not one of 70, 140, 280, 560, 1120", (long long)image_tokens);
                free(media);
                return EXIT_USAGE;
            }
        }
        else if (!strcmp(a, "--dump-ids")) { VAL(); dump_ids = v; }
        else if (!strcmp(a, "--ctx")) { VAL(); if (!cli_parse_i64(CMD, a, v, 1, 1 << 30, &n_ctx)) { free(media); return EXIT_USAGE; } }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { VAL(); if (!cli_parse_i64(CMD, a, v, 1, 1024, &threads)) { free(media); return EXIT_USAGE; } }
        else if (!strcmp(a, "--top-k")) { VAL(); if (!cli_parse_i64(CMD, a, v, 0, INT32_MAX, &top_k)) { free(media); return EXIT_USAGE; } }
        else if (!strcmp(a, "--repeat-last-n")) { VAL(); if (!cli_parse_i64(CMD, a, v, 0, 1 << 20, &last_n)) { free(media); return EXIT_USAGE; } }
        else if (!strcmp(a, "--temp") || !strcmp(a, "--temperature")) { VAL(); if (!parse_f(a, v, 0, 1e6, &sp.temperature)) { free(media); return EXIT_USAGE; } }
        else if (!strcmp(a, "--top-p")) { VAL(); if (!parse_f(a, v, 0, 1, &sp.top_p)) { free(media); return EXIT_USAGE; } }
        else if (!strcmp(a, "--min-p")) { VAL(); if (!parse_f(a, v, 0, 1, &sp.min_p)) { free(media); return EXIT_USAGE; } }
        else if (!strcmp(a, "--repeat-penalty")) { VAL(); if (!parse_f(a, v, 1e-6, 1e6, &sp.repeat_penalty)) { free(media); return EXIT_USAGE; } }
        else if (!strcmp(a, "--presence-penalty")) { VAL(); if (!parse_f(a, v, -1e6, 1e6, &sp.presence_penalty)) { free(media); return EXIT_USAGE; } }
        else if (!strcmp(a, "--frequency-penalty")) { VAL(); if (!parse_f(a, v, -1e6, 1e6, &sp.frequency_penalty)) { free(media); return EXIT_USAGE; } }
        else if (!strcmp(a, "--seed")) { VAL(); if (!parse_u64(a, v, &seed)) { free(media); return EXIT_USAGE; } }
        else { cli_error(CMD, "unknown option '%s' (gemma4 run --help)", a); free(media); return EXIT_USAGE; }
#undef VAL
    }
    const char *usage_err = NULL;
    if (!model_path) usage_err = "missing -m MODEL (gemma4 run --help)";
    else if ((prompt_arg != NULL) == (prompt_file != NULL)) usage_err = "give exactly one of -p TEXT, -p - and -f FILE";
    else if (raw && (system || think)) usage_err = "--raw takes the text as is: --system and --think do not apply";
    else if (n_media && !mmproj_path) usage_err = "--image/--audio need --mmproj FILE (the projector GGUF)";
    else if (n_media && raw) usage_err = "--raw takes text only: images and audio go through the chat template";
    if (usage_err) { cli_error(CMD, "%s", usage_err); free(media); return EXIT_USAGE; }
    sp.top_k = (int32_t)top_k;
    sp.penalty_last_n = (int32_t)last_n;
    sp.seed = seed;

    /* the prompt text */
    char *prompt = NULL;
    size_t prompt_len = 0;
    if (prompt_file || !strcmp(prompt_arg, "-")) {
        FILE *f = prompt_file ? fopen(prompt_file, "rb") : stdin;
        if (!f) { cli_error(CMD, "cannot open '%s': %s", prompt_file, strerror(errno)); free(media); return 1; }
        prompt = read_all(f, prompt_file ? prompt_file : "stdin", &prompt_len);
        if (prompt_file) fclose(f);
        if (!prompt) { free(media); return 1; }
    } else {
        prompt_len = strlen(prompt_arg);
        prompt = malloc(prompt_len + 1);
        if (!prompt) { cli_error(CMD, "out of memory"); free(media); return 1; }
        memcpy(prompt, prompt_arg, prompt_len + 1);
    }
    if (!check_text("prompt", prompt, prompt_len) || (system && !check_text("--system", system, strlen(system)))) {
        free(prompt);
        free(media);
        return 1;
    }

    int rc = 1;
    char err[512];
    g4_model *m = NULL;
    g4_mmproj *mm = NULL;
    cli_media_tokens mt;
    char *text = NULL;
    int32_t *ids = NULL;
    gen g;
    memset(&g, 0, sizeof g);
    g.raw = raw;
    guard gd;
    memset(&gd, 0, sizeof gd);

    /* the text to tokenize */
    size_t text_len;
    if (raw) {
        text = prompt;
        text_len = prompt_len;
        prompt = NULL;
    } else {
        json_t *msgs = json_array();
        if (system) json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", system));
        if (n_media) {
            if (!user_parts(msgs, prompt, media, n_media)) { json_decref(msgs); rc = EXIT_USAGE; goto done; }
        } else {
            json_array_append_new(msgs, json_pack("{s:s,s:s%}", "role", "user", "content", prompt, prompt_len));
        }
        char *mj = json_dumps(msgs, JSON_COMPACT);
        json_decref(msgs);
        if (!mj) { cli_error(CMD, "out of memory"); goto done; }
        g4_chat_params cp = g4_chat_default_params();
        cp.enable_thinking = think;
        g4_status st = g4_chat_render(mj, NULL, &cp, &text, err, sizeof err);
        free(mj);
        if (st != G4_OK) { cli_error(CMD, "chat template: %s", err); goto done; }
        text_len = strlen(text);
    }

    double t0 = cli_now_s();
    g4_model_params mp = g4_model_default_params();
    mp.use_mmap = mmap;
    mp.n_threads = (int)threads;
    if (g4_model_load(model_path, &mp, &m, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
    double t_load = cli_now_s() - t0;

    if (g4_sampler_new(m, &sp, &g.smp, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); rc = EXIT_USAGE; goto done; }
    if (n_media) {
        g4_mmproj_params pp = g4_mmproj_default_params();
        pp.use_mmap = mmap;
        pp.n_threads = (int)threads;
        if (g4_mmproj_load(mmproj_path, &pp, &mm, err, sizeof err) != G4_OK) { cli_error(CMD, "%s: %s", mmproj_path, err); goto done; }
        if (g4_mmproj_check_model(mm, m, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
        if (!cli_media_tokens_get(CMD, m, &mt)) goto done;
        if (!cli_media_embed(CMD, mm, media, n_media, (uint32_t)image_tokens)) goto done;
    }

    /* tokens: the render starts with the literal "<bos>": add none */
    size_t n_prompt = 0;
    ids = malloc((text_len + 2) * sizeof *ids);
    if (!ids) { cli_error(CMD, "out of memory"); goto done; }
    if (g4_tokenize(m, text, text_len, raw, true, ids, text_len + 2, &n_prompt, err, sizeof err) != G4_OK) {
        cli_error(CMD, "prompt: %s", err);
        goto done;
    }
    int32_t bos = g4_token_bos(m);
    if (n_prompt == 0 || ids[0] != bos) { cli_error(CMD, "internal: the prompt does not start with BOS"); goto done; }

    /* positions: media placeholders expand to their rows and markers */
    int64_t n_positions = (int64_t)n_prompt;
    if (n_media && (n_positions = cli_media_positions(CMD, &mt, ids, n_prompt, media, n_media)) < 0) { rc = EXIT_USAGE; goto done; }
    g4_context_params cxp = g4_context_default_params();
    cxp.n_ctx = (uint32_t)n_ctx;
    cxp.n_threads = (int)threads;
    /* an image block is one forward pass */
    uint32_t blk = cli_media_max_block(media, n_media);
    if (blk > cxp.n_batch) cxp.n_batch = blk;
    if (g4_context_new(m, &cxp, &g.ctx, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
    uint32_t ctx_n = g4_context_n_ctx(g.ctx);
    if (n_positions >= (int64_t)ctx_n) {
        cli_error(CMD, "the prompt is %lld tokens%s but the context holds %u (--ctx%s): no room to generate",
                  (long long)n_positions, n_media ? " with its media" : "", ctx_n, n_ctx ? "" : " default");
        rc = EXIT_USAGE;
        goto done;
    }

    cli_media_report(CMD, media, n_media);
    g.dt = g4_detok_new(m, true);
    g.piece_cap = g4_token_max_bytes(m) + 8;
    g.piece = malloc(g.piece_cap);
    /* does the prompt end inside a thought (raw text ending with
     * "<|channel>thought\n")?  The guard's thought state says. */
    bool guard_ok = guard_init(&gd, &gopt, m);
    guard_reset(&gd, ids, n_prompt);
    g4_outparse_params opp = g4_outparse_default_params();
    opp.start_in_thought = gd.in_thought;
    g.op = raw ? NULL : g4_outparse_new(&opp);
    if (!g.dt || !g.piece || !guard_ok || (!raw && !g.op)) { cli_error(CMD, "out of memory (or the model has no tokenizer)"); goto done; }
    if (dump_ids && !(g.ids = fopen(dump_ids, "w"))) { cli_error(CMD, "cannot create '%s': %s", dump_ids, strerror(errno)); goto done; }

    /* prefill (g4_decode splits into n_batch chunks) */
    double t1 = cli_now_s();
    if (n_media) {
        if (!cli_media_prefill(CMD, g.ctx, g.smp, &mt, ids, n_prompt, media, n_media, false)) goto done;
    } else {
        if (g4_decode(g.ctx, ids, (uint32_t)n_prompt, false, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
        for (size_t i = 0; i < n_prompt; i++) g4_sampler_accept(g.smp, ids[i]);
    }
    double t_prompt = cli_now_s() - t1;
    n_prompt = (size_t)n_positions;

    /* generation */
    double t2 = cli_now_s();
    const char *stop = "end of generation";
    /* why generation stopped, printed after the last text so that it never
     * lands in the middle of an output line */
    char stop_msg[256] = "";
    for (;;) {
        if (guard_check(&gd) == GUARD_STOP_LIMIT) {
            guard_message(&gd, GUARD_STOP_LIMIT, CMD, stop_msg, sizeof stop_msg);
            stop = "token limit";
            break;
        }
        int32_t tok = g4_sampler_sample(g.smp, g4_get_logits(g.ctx));
        if (tok < 0) { cli_error(CMD, "no token can be sampled (every logit is -inf)"); goto done; }
        g4_sampler_accept(g.smp, tok);
        if (g4_token_is_eog(m, tok)) break;

        /* the token and, past the thinking budget, the forced close */
        int32_t feed[2] = { tok, -1 };
        uint32_t n_feed = 1;
        guard_action act = guard_on_token(&gd, tok);
        if (act == GUARD_CLOSE_THOUGHT) {
            char msg[256];
            fprintf(stderr, "%s%s", g.out.in_thought ? "\n" : "", guard_message(&gd, act, CMD, msg, sizeof msg));
            feed[n_feed++] = gd.ch_close;
            g4_sampler_accept(g.smp, gd.ch_close);
            act = guard_on_token(&gd, gd.ch_close);
        }
        bool end = false;
        for (uint32_t i = 0; i < n_feed; i++)
            if (!emit(&g, feed[i])) end = true;
        if (end) { stop = "end marker"; break; }
        if (act == GUARD_STOP_REPETITION) {
            close_thought(&g.out);
            guard_message(&gd, act, CMD, stop_msg, sizeof stop_msg);
            stop = "repetition guard";
            break;
        }
        /* (GUARD_STOP_LIMIT: the check at the top of the loop) */
        if (g4_context_n_past(g.ctx) + n_feed > ctx_n) {
            close_thought(&g.out);
            snprintf(stop_msg, sizeof stop_msg, "gemma4 run: stopped: the context is full (%u positions; --ctx)\n", ctx_n);
            stop = "context full";
            break;
        }
        if (g4_decode(g.ctx, feed, n_feed, false, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
    }
    /* the rest of the text */
    size_t n = 0;
    if (g4_detok_flush(g.dt, g.piece, g.piece_cap, &n) == G4_OK && n) {
        if (raw) out_write(&g.out, g.piece, n);
        else g4_outparse_push(g.op, g.piece, n, on_event, &g.out);
    }
    if (!raw) g4_outparse_finish(g.op, on_event, &g.out);
    close_thought(&g.out);
    if (g.out.n_out && g.out.last_out != '\n') out_write(&g.out, "\n", 1);
    fputs(stop_msg, stderr);
    double t_gen = cli_now_s() - t2;
    if (g.ids) {
        fputc('\n', g.ids);
        if (fclose(g.ids) != 0) { g.ids = NULL; cli_error(CMD, "write error on '%s'", dump_ids); goto done; }
        g.ids = NULL;
    }
    fprintf(stderr, "gemma4 run: prompt %zu tokens, %.2f tok/s; generated %lld tokens, %.2f tok/s; load %.3f s; stop: %s\n",
            n_prompt, t_prompt > 0 ? n_prompt / t_prompt : 0.0, (long long)gd.n_gen, t_gen > 0 && gd.n_gen ? gd.n_gen / t_gen : 0.0,
            t_load, stop);
    rc = 0;
done:
    if (g.ids) fclose(g.ids);
    g4_outparse_free(g.op);
    g4_detok_free(g.dt);
    free(g.piece);
    guard_free(&gd);
    g4_sampler_free(g.smp);
    g4_context_free(g.ctx);
    cli_media_free(media, n_media);
    free(media);
    g4_mmproj_free(mm);
    g4_model_free(m);
    free(ids);
    free(text);
    free(prompt);
    return rc;
}
