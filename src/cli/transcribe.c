/*
 * transcribe.c - `gemma4 transcribe`: speech to text with Gemma 4's audio
 * input (docs/multimodal.md).
 *
 * The audio is cut into pieces of at most G4_AUDIO_CHUNK_SECONDS (the
 * model's design maximum, multimodal spec §3.4); a cut falls on the
 * quietest 20 ms inside the last 5 s before the limit, so that words are
 * rarely split.  Each piece is one prompt: a user turn holding the audio and
 * Google's recommended transcription (or translation) prompt, thinking off
 * (users of other engines report empty or looping reasoning on audio when it
 * is on), greedy decoding with the loop guards.  The text of each piece goes
 * to stdout; with several pieces (or --timestamps) each line starts with its
 * time range "[mm:ss.mmm --> mm:ss.mmm]".
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/guards.h"
#include "cli/media.h"
#include "gemma4.h"

#define CMD "transcribe"
#define RATE 16000

static void usage(FILE *f)
{
    fprintf(f,
        "usage: gemma4 transcribe -m MODEL --mmproj MMPROJ AUDIO [options]\n"
        "\n"
        "Prints the transcription of AUDIO (WAV, FLAC, OGG/Vorbis/Opus, MP3).\n"
        "Files longer than 30 s are transcribed in pieces of at most 30 s, one\n"
        "line per piece with its time range.\n"
        "\n"
        "  -m, --model FILE        GGUF model (Gemma 4 12B Unified)\n"
        "  --mmproj FILE           its projector GGUF (with a gemma4ua audio part)\n"
        "  --language L            the spoken language, e.g. English (default: not named)\n"
        "  --translate-to L        also translate into L (the prompt's translation variant)\n"
        "  --timestamps            time ranges even for a single piece\n"
        "  -n, --max-tokens N      tokens per piece (default 512)\n"
        "  --ctx N                 context positions (default: what a piece needs)\n"
        "  -t, --threads N         worker threads (default: one per physical core)\n"
        "  --no-mmap               read the files into memory instead of mapping them\n"
        "  -q, --quiet             no progress lines on stderr\n");
}

static void fmt_time(double s, char *buf, size_t len)
{
    long ms = lround(s * 1000.0);
    snprintf(buf, len, "%02ld:%02ld.%03ld", ms / 60000, (ms / 1000) % 60, ms % 1000);
}

/* End of the piece that starts at `start`: the limit, or the quietest 20 ms
 * frame in the 5 s before it. */
static uint64_t piece_end(const float *x, uint64_t n, uint64_t start)
{
    const uint64_t max_len = (uint64_t)G4_AUDIO_CHUNK_SECONDS * RATE, win = RATE / 50, look = 5 * RATE;
    if (n - start <= max_len) return n;
    uint64_t limit = start + max_len, best = limit;
    double best_e = INFINITY;
    for (uint64_t e = limit; e >= win && e - win >= limit - look; e -= win) {
        double acc = 0;
        for (uint64_t i = e - win; i < e; i++) acc += (double)x[i] * x[i];
        if (acc < best_e) { best_e = acc; best = e; }
    }
    return best;
}

typedef struct {
    char  *text;
    size_t len, cap;
} sbuf;

static void on_event(const g4_out_event *ev, void *user)
{
    sbuf *b = user;
    if (ev->kind != G4_OUT_CONTENT || !ev->len) return;
    if (b->len + ev->len + 1 > b->cap) {
        size_t nc = (b->len + ev->len + 1) * 2;
        char *g = realloc(b->text, nc);
        if (!g) return;
        b->text = g;
        b->cap = nc;
    }
    memcpy(b->text + b->len, ev->text, ev->len);
    b->len += ev->len;
    b->text[b->len] = 0;
}

int cmd_transcribe(int argc, char **argv)
{
    const char *model_path = NULL, *mmproj_path = NULL, *audio_path = NULL, *language = NULL, *translate = NULL;
    bool mmap = true, stamps = false, quiet = false;
    int64_t max_tokens = 512, n_ctx = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
#define VAL() do { if (!(v = cli_value(CMD, argc, argv, &i))) return EXIT_USAGE; } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--no-mmap")) mmap = false;
        else if (!strcmp(a, "--timestamps")) stamps = true;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = true;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { VAL(); model_path = v; }
        else if (!strcmp(a, "--mmproj")) { VAL(); mmproj_path = v; }
        else if (!strcmp(a, "--language")) { VAL(); language = v; }
        else if (!strcmp(a, "--translate-to")) { VAL(); translate = v; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) { VAL(); if (!cli_parse_i64(CMD, a, v, 1, 1 << 20, &max_tokens)) return EXIT_USAGE; }
        else if (!strcmp(a, "--ctx")) { VAL(); if (!cli_parse_i64(CMD, a, v, 64, 1 << 30, &n_ctx)) return EXIT_USAGE; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { VAL(); if (!cli_parse_i64(CMD, a, v, 1, 1024, &threads)) return EXIT_USAGE; }
        else if (a[0] == '-' && a[1]) { cli_error(CMD, "unknown option '%s' (gemma4 transcribe --help)", a); return EXIT_USAGE; }
        else if (audio_path) { cli_error(CMD, "one audio file at a time ('%s' and '%s')", audio_path, a); return EXIT_USAGE; }
        else audio_path = a;
#undef VAL
    }
    if (!model_path) { cli_error(CMD, "missing -m MODEL (gemma4 transcribe --help)"); return EXIT_USAGE; }
    if (!mmproj_path) { cli_error(CMD, "missing --mmproj MMPROJ: audio input needs the projector GGUF"); return EXIT_USAGE; }
    if (!audio_path) { cli_error(CMD, "missing the audio file"); return EXIT_USAGE; }
    char *task = g4_transcription_prompt(language, translate);
    if (!task) { cli_error(CMD, "--language/--translate-to: at most 64 bytes, no control characters"); return EXIT_USAGE; }

    int rc = 1;
    char err[512];
    g4_model *m = NULL;
    g4_mmproj *mm = NULL;
    g4_context *ctx = NULL;
    g4_sampler *smp = NULL;
    g4_detok *dt = NULL;
    g4_outparse *op = NULL;
    g4_audio au;
    memset(&au, 0, sizeof au);
    char *text = NULL, *piece = NULL;
    int32_t *ids = NULL;
    sbuf out = { 0 };
    guard gd;
    memset(&gd, 0, sizeof gd);
    cli_media item = { .kind = CLI_MEDIA_AUDIO, .path = audio_path };

    /* the prompt: one user turn with the audio, then the task text */
    json_t *msgs = json_pack("[{s:s,s:[{s:s},{s:s,s:s}]}]", "role", "user", "content", "type", "audio", "type", "text", "text", task);
    char *mj = msgs ? json_dumps(msgs, JSON_COMPACT) : NULL;
    json_decref(msgs);
    g4_chat_params chp = g4_chat_default_params();
    chp.enable_thinking = false;
    g4_status st = mj ? g4_chat_render(mj, NULL, &chp, &text, err, sizeof err) : G4_ERR_NOMEM;
    free(mj);
    if (st != G4_OK) { cli_error(CMD, "chat template: %s", err); goto done; }

    g4_model_params mp = g4_model_default_params();
    mp.use_mmap = mmap;
    mp.n_threads = (int)threads;
    if (g4_model_load(model_path, &mp, &m, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
    g4_mmproj_params pp = g4_mmproj_default_params();
    pp.use_mmap = mmap;
    pp.n_threads = (int)threads;
    if (g4_mmproj_load(mmproj_path, &pp, &mm, err, sizeof err) != G4_OK) { cli_error(CMD, "%s: %s", mmproj_path, err); goto done; }
    if (g4_mmproj_check_model(mm, m, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
    g4_mmproj_info mi;
    g4_mmproj_get_info(mm, &mi);
    if (!mi.has_audio) { cli_error(CMD, "%s has no audio part (a vision-only projector)", mmproj_path); goto done; }
    cli_media_tokens mt;
    if (!cli_media_tokens_get(CMD, m, &mt)) goto done;
    if (g4_audio_load(audio_path, 0, &au, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
    if (au.n_samples == 0) { cli_error(CMD, "%s: the audio has no samples: nothing to transcribe", audio_path); goto done; }

    size_t text_len = strlen(text), n_ids = 0;
    ids = malloc((text_len + 2) * sizeof *ids);
    if (!ids) { cli_error(CMD, "out of memory"); goto done; }
    if (g4_tokenize(m, text, text_len, false, true, ids, text_len + 2, &n_ids, err, sizeof err) != G4_OK) {
        cli_error(CMD, "prompt: %s", err);
        goto done;
    }
    const uint64_t max_piece = (uint64_t)G4_AUDIO_CHUNK_SECONDS * RATE;
    uint64_t need = n_ids + (max_piece + 639) / 640 + 2 + (uint64_t)max_tokens + 8;
    g4_context_params cxp = g4_context_default_params();
    cxp.n_ctx = n_ctx ? (uint32_t)n_ctx : (uint32_t)need;
    cxp.n_threads = (int)threads;
    if (g4_context_new(m, &cxp, &ctx, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
    g4_sampler_params sp = g4_sampler_default_params();
    sp.temperature = 0;
    guard_opts go = guard_default_opts();
    go.max_tokens = max_tokens;
    if (g4_sampler_new(m, &sp, &smp, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
    dt = g4_detok_new(m, true);
    op = g4_outparse_new(NULL);
    size_t piece_cap = g4_token_max_bytes(m) + 8;
    piece = malloc(piece_cap);
    if (!dt || !op || !piece || !guard_init(&gd, &go, m)) { cli_error(CMD, "out of memory"); goto done; }

    uint64_t start = 0;
    int n_pieces = 0;
    bool many = au.n_samples > max_piece;
    while (start < au.n_samples) {
        uint64_t end = piece_end(au.samples, au.n_samples, start);
        double t0 = cli_now_s();
        item.parts = calloc(1, sizeof *item.parts);
        if (!item.parts) { cli_error(CMD, "out of memory"); goto done; }
        if (g4_mmproj_embed_audio(mm, au.samples + start, end - start, &item.parts[0], err, sizeof err) != G4_OK) {
            cli_error(CMD, "%s: %s", audio_path, err);
            goto done;
        }
        item.n_parts = 1;
        item.n_positions = item.parts[0].n_tokens + 2;
        if (cli_media_positions(CMD, &mt, ids, n_ids, &item, 1) + max_tokens > (int64_t)g4_context_n_ctx(ctx)) {
            cli_error(CMD, "--ctx %u is too small for a %.1f s piece and %lld tokens", g4_context_n_ctx(ctx),
                      (double)(end - start) / RATE, (long long)max_tokens);
            rc = EXIT_USAGE;
            goto done;
        }
        g4_kv_clear(ctx);
        g4_sampler_reset(smp);
        g4_outparse_reset(op);
        out.len = 0;
        if (!cli_media_prefill(CMD, ctx, smp, &mt, ids, n_ids, &item, 1, true)) goto done;
        guard_reset(&gd, ids, n_ids);
        const char *why = NULL;
        char msg[256];
        for (;;) {
            if (guard_check(&gd) == GUARD_STOP_LIMIT) { why = guard_message(&gd, GUARD_STOP_LIMIT, CMD, msg, sizeof msg); break; }
            int32_t tok = g4_sampler_sample(smp, g4_get_logits(ctx));
            if (tok < 0 || g4_token_is_eog(m, tok)) break;
            g4_sampler_accept(smp, tok);
            guard_action act = guard_on_token(&gd, tok);
            size_t n = 0;
            if (g4_detok_push(dt, tok, piece, piece_cap, &n) == G4_OK && g4_outparse_push(op, piece, n, on_event, &out) == 1) break;
            if (act == GUARD_STOP_REPETITION) { why = guard_message(&gd, act, CMD, msg, sizeof msg); break; }
            if (g4_context_n_past(ctx) + 1 > g4_context_n_ctx(ctx)) { why = "gemma4 transcribe: stopped: the context is full\n"; break; }
            if (g4_decode(ctx, &tok, 1, false, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
        }
        size_t n = 0;
        if (g4_detok_flush(dt, piece, piece_cap, &n) == G4_OK && n) g4_outparse_push(op, piece, n, on_event, &out);
        g4_outparse_finish(op, on_event, &out);
        /* one line per piece: newlines inside the text become spaces */
        for (size_t i = 0; i < out.len; i++) if (out.text[i] == '\n' || out.text[i] == '\r') out.text[i] = ' ';
        size_t b = 0, e = out.len;
        while (b < e && out.text[b] == ' ') b++;
        while (e > b && out.text[e - 1] == ' ') e--;
        if (many || stamps) {
            char t1[32], t2[32];
            fmt_time((double)start / RATE, t1, sizeof t1);
            fmt_time((double)end / RATE, t2, sizeof t2);
            printf("[%s --> %s] ", t1, t2);
        }
        printf("%.*s\n", (int)(e - b), out.text ? out.text + b : "");
        fflush(stdout);
        if (why) fputs(why, stderr);
        if (!quiet)
            fprintf(stderr, "gemma4 transcribe: piece %d: %.2f-%.2f s, %u audio tokens, %lld generated, %.2f s\n", ++n_pieces,
                    (double)start / RATE, (double)end / RATE, item.parts[0].n_tokens, (long long)gd.n_gen, cli_now_s() - t0);
        cli_media_free(&item, 1);
        start = end;
    }
    rc = 0;
done:
    cli_media_free(&item, 1);
    free(item.parts);
    guard_free(&gd);
    free(out.text);
    free(piece);
    g4_outparse_free(op);
    g4_detok_free(dt);
    g4_sampler_free(smp);
    g4_context_free(ctx);
    g4_audio_free(&au);
    g4_mmproj_free(mm);
    g4_model_free(m);
    free(ids);
    free(text);
    free(task);
    return rc;
}
