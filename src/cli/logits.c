/*
 * logits.c - `gemma4 logits`: a verification interface.  Token ids are used
 * exactly as given (no BOS added); the output is raw little-endian float32,
 * row-major n_positions x n_vocab (or only the last position).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "gemma4.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: gemma4 logits -m MODEL (--tokens 2,651,1000 | --tokens-file F | --embd ROWS.f32) -o OUT.f32\n"
               "                     [--all] [-t N] [--kv f32|f16] [--batch N] [--ctx N] [--no-mmap]\n"
               "                     [--f32-activations]\n"
               "  Runs the ids exactly as given (no BOS is added) and writes little-endian float32\n"
               "  logits of the last position, or of every position with --all (n_positions x n_vocab).\n"
               "  --embd F   soft-token rows instead of ids: little-endian float32, n x n_embd, used\n"
               "             unscaled; with --embd-prefix IDS / --embd-suffix IDS (ids decoded before /\n"
               "             after them) and --embd-kind causal|image (image: one block, bidirectional\n"
               "             on sliding-window layers; default causal)\n"
               "  --batch N  tokens per forward pass (default 512; 1 = token by token)\n"
               "  --kv       KV cache type (default f16)\n"
               "  --f32-activations  keep activations in f32 for every matrix product instead of\n"
               "             rounding them to 8-bit blocks / f16 as llama.cpp does (slower)\n");
}

int cmd_logits(int argc, char **argv)
{
    const char *C = "logits";
    const char *model_path = NULL, *tokens_arg = NULL, *tokens_file = NULL, *out_path = NULL;
    const char *embd_path = NULL, *pre_arg = NULL, *suf_arg = NULL;
    g4_embd_kind kind = G4_EMBD_CAUSAL;
    bool all = false, mmap = true, f32_act = false;
    int64_t threads = 0, batch = 512, n_ctx = 0;
    g4_kv_type kv = G4_KV_F16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--all")) all = true;
        else if (!strcmp(a, "--no-mmap")) mmap = false;
        else if (!strcmp(a, "--f32-activations")) f32_act = true;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (!(model_path = cli_value(C, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "--tokens")) { if (!(tokens_arg = cli_value(C, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "--tokens-file")) { if (!(tokens_file = cli_value(C, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "--embd")) { if (!(embd_path = cli_value(C, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "--embd-prefix")) { if (!(pre_arg = cli_value(C, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "--embd-suffix")) { if (!(suf_arg = cli_value(C, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "--embd-kind")) {
            if (!(v = cli_value(C, argc, argv, &i))) return EXIT_USAGE;
            if (!strcmp(v, "causal")) kind = G4_EMBD_CAUSAL;
            else if (!strcmp(v, "image")) kind = G4_EMBD_IMAGE;
            else { cli_error(C, "--embd-kind: '%s' is not causal or image", v); return EXIT_USAGE; }
        }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { if (!(out_path = cli_value(C, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = cli_value(C, argc, argv, &i)) || !cli_parse_i64(C, a, v, 1, 1024, &threads)) return EXIT_USAGE;
        } else if (!strcmp(a, "--batch")) {
            if (!(v = cli_value(C, argc, argv, &i)) || !cli_parse_i64(C, a, v, 1, 1 << 20, &batch)) return EXIT_USAGE;
        } else if (!strcmp(a, "--ctx")) {
            if (!(v = cli_value(C, argc, argv, &i)) || !cli_parse_i64(C, a, v, 1, 1 << 30, &n_ctx)) return EXIT_USAGE;
        } else if (!strcmp(a, "--kv")) {
            if (!(v = cli_value(C, argc, argv, &i))) return EXIT_USAGE;
            if (!strcmp(v, "f32")) kv = G4_KV_F32;
            else if (!strcmp(v, "f16")) kv = G4_KV_F16;
            else { cli_error(C, "--kv: '%s' is not a KV type (f32 or f16)", v); return EXIT_USAGE; }
        } else {
            cli_error(C, "unknown argument '%s'", a);
            return EXIT_USAGE;
        }
    }
    int n_inputs = (tokens_arg != NULL) + (tokens_file != NULL) + (embd_path != NULL);
    if (!model_path || !out_path || n_inputs != 1) {
        cli_error(C, "%s (gemma4 logits --help for usage)",
                  !model_path ? "missing -m MODEL" : !out_path ? "missing -o OUT.f32"
                                                   : "give exactly one of --tokens, --tokens-file and --embd");
        return EXIT_USAGE;
    }
    if ((pre_arg || suf_arg) && !embd_path) { cli_error(C, "--embd-prefix/--embd-suffix need --embd"); return EXIT_USAGE; }
    int32_t *ids = NULL, *pre = NULL, *suf = NULL;
    int64_t n = 0, n_pre = 0, n_suf = 0, n_rows_in = 0;
    char *embd_raw = NULL;
    size_t embd_len = 0;
    if (embd_path) {
        embd_raw = cli_read_file_len(C, embd_path, (size_t)1 << 34, &embd_len);
        if (!embd_raw) return 1;
        if (pre_arg && (n_pre = cli_parse_tokens(C, "--embd-prefix", pre_arg, &pre)) < 0) { free(embd_raw); return EXIT_USAGE; }
        if (suf_arg && (n_suf = cli_parse_tokens(C, "--embd-suffix", suf_arg, &suf)) < 0) {
            free(embd_raw); free(pre); return EXIT_USAGE;
        }
    } else {
        char *text = tokens_arg ? NULL : cli_read_file(C, tokens_file, 1u << 30);
        if (tokens_file && !text) return 1;
        n = cli_parse_tokens(C, tokens_arg ? "--tokens" : tokens_file, tokens_arg ? tokens_arg : text, &ids);
        free(text);
        if (n < 0) return EXIT_USAGE;
        if (n == 0) { cli_error(C, "no token ids given"); free(ids); return EXIT_USAGE; }
    }

    char err[512];
    int rc = 1;
    g4_model *m = NULL;
    g4_context *ctx = NULL;
    FILE *out = NULL;
    g4_model_params mp = g4_model_default_params();
    mp.use_mmap = mmap;
    mp.n_threads = (int)threads;
    double t0 = cli_now_s();
    if (g4_model_load(model_path, &mp, &m, err, sizeof err) != G4_OK) { cli_error(C, "%s", err); goto done; }
    double t_load = cli_now_s() - t0;
    g4_model_info info;
    g4_model_get_info(m, &info);
    if (embd_path) {
        size_t row = (size_t)info.n_embd * sizeof(float);
        if (embd_len == 0 || embd_len % row) {
            cli_error(C, "%s: %zu bytes is not a whole number of rows of n_embd = %u float32", embd_path, embd_len,
                      info.n_embd);
            goto done;
        }
        n_rows_in = (int64_t)(embd_len / row);
        n = n_pre + n_rows_in + n_suf;
    }
    if (n_ctx == 0) n_ctx = n;
    if (n_ctx < n) { cli_error(C, "--ctx %lld is smaller than the %lld tokens given", (long long)n_ctx, (long long)n); rc = EXIT_USAGE; goto done; }
    if ((uint64_t)n > info.n_ctx_train) { cli_error(C, "%lld tokens exceed the model's context length %u", (long long)n, info.n_ctx_train); goto done; }
    g4_context_params cp = g4_context_default_params();
    cp.n_ctx = (uint32_t)n_ctx;
    cp.n_batch = (uint32_t)batch;
    cp.kv_type = kv;
    cp.f32_activations = f32_act;
    if (g4_context_new(m, &cp, &ctx, err, sizeof err) != G4_OK) { cli_error(C, "%s", err); goto done; }
    t0 = cli_now_s();
    if (embd_path) {
        /* logits of every segment are gathered when --all */
        float *acc = NULL;
        uint32_t nv = info.n_vocab, got = 0;
        if (all && !(acc = malloc(sizeof(float) * nv * (size_t)n))) { cli_error(C, "out of memory"); goto done; }
        struct { const int32_t *ids; const float *rows; int64_t k; } seg[3] = {
            { pre, NULL, n_pre }, { NULL, (const float *)(void *)embd_raw, n_rows_in }, { suf, NULL, n_suf } };
        for (int sg = 0; sg < 3; sg++) {
            if (seg[sg].k == 0) continue;
            g4_status st = seg[sg].ids ? g4_decode(ctx, seg[sg].ids, (uint32_t)seg[sg].k, all, err, sizeof err)
                                       : g4_decode_embd(ctx, seg[sg].rows, (uint32_t)seg[sg].k, kind, all, err, sizeof err);
            if (st != G4_OK) { cli_error(C, "%s", err); free(acc); goto done; }
            for (int64_t r = 0; all && r < seg[sg].k; r++)
                memcpy(acc + (size_t)got++ * nv, g4_get_logits_ith(ctx, (int32_t)r), sizeof(float) * nv);
        }
        if (all) {
            out = fopen(out_path, "wb");
            if (!out) { cli_error(C, "cannot create '%s': %s", out_path, strerror(errno)); free(acc); goto done; }
            size_t w = fwrite(acc, sizeof(float), (size_t)nv * got, out);
            free(acc);
            if (w != (size_t)nv * got) { cli_error(C, "write error on '%s'", out_path); goto done; }
            if (fclose(out) != 0) { out = NULL; cli_error(C, "write error on '%s': %s", out_path, strerror(errno)); goto done; }
            out = NULL;
            printf("n_tokens %lld\nn_vocab %u\nn_rows %u\nload_s %.3f\ndecode_s %.3f\n", (long long)n, info.n_vocab,
                   got, t_load, cli_now_s() - t0);
            rc = 0;
            goto done;
        }
    } else if (g4_decode(ctx, ids, (uint32_t)n, all, err, sizeof err) != G4_OK) { cli_error(C, "%s", err); goto done; }
    double t_decode = cli_now_s() - t0;
    out = fopen(out_path, "wb");
    if (!out) { cli_error(C, "cannot create '%s': %s", out_path, strerror(errno)); goto done; }
    uint32_t rows = all ? (uint32_t)n : 1;
    for (uint32_t r = 0; r < rows; r++) {
        const float *lg = g4_get_logits_ith(ctx, all ? (int32_t)r : -1);
        if (!lg || fwrite(lg, sizeof(float), info.n_vocab, out) != info.n_vocab) {
            cli_error(C, "write error on '%s'", out_path);
            goto done;
        }
    }
    if (fclose(out) != 0) { out = NULL; cli_error(C, "write error on '%s': %s", out_path, strerror(errno)); goto done; }
    out = NULL;
    printf("n_tokens %lld\nn_vocab %u\nn_rows %u\nload_s %.3f\ndecode_s %.3f\n", (long long)n, info.n_vocab, rows,
           t_load, t_decode);
    rc = 0;
done:
    if (out) { fclose(out); remove(out_path); }
    g4_context_free(ctx);
    g4_model_free(m);
    free(ids);
    free(pre);
    free(suf);
    free(embd_raw);
    return rc;
}
