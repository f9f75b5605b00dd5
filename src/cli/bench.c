/*
 * bench.c - `gemma4 bench`: prompt-processing and generation speed, in the
 * manner of llama-bench, through the public API only (include/gemma4.h).
 *
 *   pp N   N random prompt tokens (ids below the vocabulary size, fixed seed)
 *          decoded in batches of --batch tokens from an empty KV cache;
 *   tg M   M random tokens decoded one per g4_decode call from an empty cache
 *          (no sampling: the ids are fed, the logits are ignored).
 *
 * One warm-up pass (a batch of the prompt test, one generation step) runs
 * first; then each test runs -r times and its tokens/s are reported as mean
 * and sample standard deviation.  Also reported: model load time and the
 * process's peak resident set (getrusage ru_maxrss).  See docs/performance.md
 * for the --json fields.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "gemma4.h"

#define CMD "bench"
#define BENCH_SEED 0x5EEDBE7CULL

static void usage(FILE *f)
{
    fprintf(f,
        "usage: gemma4 bench -m MODEL.gguf [options]\n"
        "\n"
        "Measures prompt processing (pp) and token generation (tg) speed, like llama-bench.\n"
        "  pp N: N random token ids decoded in batches of --batch from an empty cache\n"
        "  tg M: M random token ids decoded one at a time from an empty cache\n"
        "A warm-up pass runs first; each test then runs -r times (mean +- sd tokens/s).\n"
        "\n"
        "  -m, --model FILE   GGUF model (required; may also be given without -m)\n"
        "  -p, --n-prompt N   prompt tokens, 0 = skip the pp test (default 512)\n"
        "  -n, --n-gen N      generated tokens, 0 = skip the tg test (default 128)\n"
        "  -r, --reps N       repetitions of each test (default 3)\n"
        "  -t, --threads N    worker threads, 0 = one per physical core (default 0)\n"
        "  --batch N          tokens per g4_decode call in the pp test (default 512)\n"
        "  --kv f16|f32       KV cache type (default f16)\n"
        "  --json             print one JSON object instead of the table\n"
        "  -h, --help         this text\n"
        "\n"
        "Exit status: 0 ok, 1 model or decode error, 2 bad option.\n");
}

/* splitmix64: a fixed, portable id stream */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t peak_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (uint64_t)ru.ru_maxrss * 1024u; /* Linux: KiB */
}

typedef struct {
    int64_t n;        /* tokens per run; 0 = skipped */
    double *tps;      /* tokens/s of each repetition */
    double mean, sd;
} test_result;

static void stats(test_result *t, int reps)
{
    double s = 0, q = 0;
    for (int i = 0; i < reps; i++) s += t->tps[i];
    t->mean = s / reps;
    for (int i = 0; i < reps; i++) q += (t->tps[i] - t->mean) * (t->tps[i] - t->mean);
    t->sd = reps > 1 ? sqrt(q / (reps - 1)) : 0.0;
}

/* Decodes ids[0..n) from an empty cache, `step` tokens per call.  Returns the
 * seconds taken, or a negative value after printing the error. */
static double timed_decode(g4_context *ctx, const int32_t *ids, int64_t n, int64_t step)
{
    char err[512];
    g4_kv_clear(ctx);
    double t0 = cli_now_s();
    for (int64_t i = 0; i < n; i += step) {
        int64_t m = n - i < step ? n - i : step;
        g4_status st = g4_decode(ctx, ids + i, (uint32_t)m, false, err, sizeof err);
        if (st != G4_OK) {
            cli_error(CMD, "decode failed at position %lld: %s", (long long)i, err);
            return -1;
        }
    }
    return cli_now_s() - t0;
}

static void json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

static void json_test(const char *key, const test_result *t, int reps, bool last)
{
    printf("  \"%s\": ", key);
    if (!t->n) {
        printf("null%s\n", last ? "" : ",");
        return;
    }
    printf("{\"n_tokens\": %lld, \"tps_mean\": %.4f, \"tps_sd\": %.4f, \"tps\": [", (long long)t->n, t->mean, t->sd);
    for (int i = 0; i < reps; i++) printf("%s%.4f", i ? ", " : "", t->tps[i]);
    printf("]}%s\n", last ? "" : ",");
}

int cmd_bench(int argc, char **argv)
{
    const char *path = NULL;
    int64_t n_prompt = 512, n_gen = 128, reps = 3, threads = 0, batch = 512;
    g4_kv_type kv = G4_KV_F16;
    bool json = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "--json")) { json = true; continue; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(v = cli_value(CMD, argc, argv, &i))) return EXIT_USAGE;
            path = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, v, 0, 1 << 20, &n_prompt)) return EXIT_USAGE;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, v, 0, 1 << 20, &n_gen)) return EXIT_USAGE;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--reps")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, v, 1, 1000, &reps)) return EXIT_USAGE;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, v, 0, 1024, &threads)) return EXIT_USAGE;
        } else if (!strcmp(a, "--batch")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, v, 1, 1 << 16, &batch)) return EXIT_USAGE;
        } else if (!strcmp(a, "--kv")) {
            if (!(v = cli_value(CMD, argc, argv, &i))) return EXIT_USAGE;
            if (!strcmp(v, "f16")) kv = G4_KV_F16;
            else if (!strcmp(v, "f32")) kv = G4_KV_F32;
            else { cli_error(CMD, "--kv: expected f16 or f32, got '%s'", v); return EXIT_USAGE; }
        } else if (a[0] == '-' && a[1]) {
            cli_error(CMD, "unknown option '%s' (gemma4 bench --help lists them)", a);
            return EXIT_USAGE;
        } else if (!path) {
            path = a;
        } else {
            cli_error(CMD, "unexpected argument '%s'", a);
            return EXIT_USAGE;
        }
    }
    if (!path) { cli_error(CMD, "no model: give -m MODEL.gguf"); return EXIT_USAGE; }
    if (!n_prompt && !n_gen) { cli_error(CMD, "nothing to measure: -p and -n are both 0"); return EXIT_USAGE; }

    struct stat sb;
    if (stat(path, &sb) != 0) { cli_error(CMD, "cannot open %s: %s", path, strerror(errno)); return 1; }

    char err[512];
    g4_model_params mp = g4_model_default_params();
    mp.n_threads = (int)threads;
    g4_model *model = NULL;
    double t0 = cli_now_s();
    if (g4_model_load(path, &mp, &model, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); return 1; }
    double load_s = cli_now_s() - t0;

    g4_model_info in;
    g4_model_get_info(model, &in);
    if (in.n_vocab == 0) { cli_error(CMD, "%s: model has no vocabulary", path); g4_model_free(model); return 1; }

    int64_t n_ctx_need = n_prompt > n_gen ? n_prompt : n_gen;
    if (n_ctx_need < 1) n_ctx_need = 1;
    g4_context_params cp = g4_context_default_params();
    cp.n_ctx = (uint32_t)n_ctx_need;
    cp.n_batch = (uint32_t)batch;
    cp.kv_type = kv;
    cp.n_threads = (int)threads;
    g4_context *ctx = NULL;
    if (g4_context_new(model, &cp, &ctx, err, sizeof err) != G4_OK) {
        cli_error(CMD, "%s", err);
        g4_model_free(model);
        return 1;
    }

    int rc = 1;
    int32_t *ids = malloc((size_t)n_ctx_need * sizeof *ids);
    test_result pp = { n_prompt, calloc((size_t)reps, sizeof(double)), 0, 0 };
    test_result tg = { n_gen, calloc((size_t)reps, sizeof(double)), 0, 0 };
    if (!ids || !pp.tps || !tg.tps) { cli_error(CMD, "out of memory"); goto done; }
    uint64_t seed = BENCH_SEED;
    for (int64_t i = 0; i < n_ctx_need; i++) ids[i] = (int32_t)(next_rand(&seed) % in.n_vocab);

    /* warm-up: one batch of the prompt test, one generation step */
    if (n_prompt && timed_decode(ctx, ids, n_prompt < batch ? n_prompt : batch, batch) < 0) goto done;
    if (n_gen && timed_decode(ctx, ids, 1, 1) < 0) goto done;

    for (int r = 0; r < reps; r++) {
        if (n_prompt) {
            double dt = timed_decode(ctx, ids, n_prompt, batch);
            if (dt < 0) goto done;
            pp.tps[r] = (double)n_prompt / (dt > 0 ? dt : 1e-9);
        }
        if (n_gen) {
            double dt = timed_decode(ctx, ids, n_gen, 1);
            if (dt < 0) goto done;
            tg.tps[r] = (double)n_gen / (dt > 0 ? dt : 1e-9);
        }
    }
    if (n_prompt) stats(&pp, (int)reps);
    if (n_gen) stats(&tg, (int)reps);

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t shown_threads = threads ? threads : (ncpu > 0 ? ncpu : 1);
    uint64_t rss = peak_rss_bytes();
    const char *kv_name = kv == G4_KV_F16 ? "f16" : "f32";
    if (json) {
        printf("{\n  \"model\": ");
        json_string(in.name);
        printf(",\n  \"path\": ");
        json_string(path);
        printf(",\n  \"file_bytes\": %llu,\n", (unsigned long long)sb.st_size);
        printf("  \"n_params\": %llu,\n  \"weight_bytes\": %llu,\n", (unsigned long long)in.n_params,
               (unsigned long long)in.weight_bytes);
        printf("  \"n_layer\": %u,\n  \"threads\": %lld,\n  \"batch\": %lld,\n  \"kv\": \"%s\",\n", in.n_layer,
               (long long)shown_threads, (long long)batch, kv_name);
        printf("  \"reps\": %lld,\n  \"load_s\": %.6f,\n", (long long)reps, load_s);
        json_test("pp", &pp, (int)reps, false);
        json_test("tg", &tg, (int)reps, false);
        printf("  \"peak_rss_bytes\": %llu\n}\n", (unsigned long long)rss);
    } else {
        printf("model:      %s (%s)\n", in.name[0] ? in.name : "(no name)", path);
        printf("file:       %.2f MiB, %llu params (%.3f B), weights %.2f MiB, %u layers\n",
               sb.st_size / 1048576.0, (unsigned long long)in.n_params, in.n_params / 1e9,
               in.weight_bytes / 1048576.0, in.n_layer);
        printf("setup:      threads %lld, batch %lld, kv %s, reps %lld\n", (long long)shown_threads, (long long)batch,
               kv_name, (long long)reps);
        printf("load:       %.3f s\n", load_s);
        printf("%-10s %12s %10s\n", "test", "tokens/s", "sd");
        char name[32];
        if (n_prompt) {
            snprintf(name, sizeof name, "pp%lld", (long long)n_prompt);
            printf("%-10s %12.2f %10.2f\n", name, pp.mean, pp.sd);
        }
        if (n_gen) {
            snprintf(name, sizeof name, "tg%lld", (long long)n_gen);
            printf("%-10s %12.2f %10.2f\n", name, tg.mean, tg.sd);
        }
        printf("peak RSS:   %.1f MiB\n", rss / 1048576.0);
    }
    rc = 0;
done:
    free(pp.tps);
    free(tg.tps);
    free(ids);
    g4_context_free(ctx);
    g4_model_free(model);
    return rc;
}
