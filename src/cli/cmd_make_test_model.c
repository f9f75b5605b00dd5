/*
 * cmd_make_test_model.c - `gemma4 make-test-model`: writes a random-weight
 * Gemma 4 GGUF (see src/model/testmodel.h for what the file holds).
 *
 * Options are parsed in two passes: first --preset (which sets every shape
 * field), then everything else overrides the preset, whatever the order on
 * the command line.  Every bad value is a one-line error naming the option,
 * exit status 2.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "kernels/quant.h"
#include "media/testmmproj.h"
#include "model/testmodel.h"

static void usage(FILE *f)
{
    g4_test_model_params d;
    g4_test_model_default_params(&d);
    fprintf(f,
        "usage: gemma4 make-test-model -o FILE [options]\n"
        "       gemma4 make-test-model [-o FILE] --mmproj-out MMPROJ [options]\n"
        "\n"
        "Writes a random-weight Gemma 4 GGUF with the real layout and metadata and a\n"
        "small \"gemma4\" BPE tokenizer; llama.cpp loads it.  Same options = same bytes.\n"
        "\n"
        "  -o, --output FILE       output path (required unless --mmproj-out is given)\n"
        "  --preset NAME           tiny | 12b | 31b (default tiny); other options override it\n"
        "                            tiny: 6 layers, embd 256, 4 heads, kv 2/1, head dims 64/128,\n"
        "                                  ff 512, vocab 1024, window 32, ctx 4096\n"
        "                            12b:  48 layers, embd 3840, 16 heads, kv 8/1, head dims 256/512,\n"
        "                                  ff 15360, vocab 262144, window 1024, ctx 262144\n"
        "                            31b:  60 layers, embd 5376, 32 heads, kv 16/4, head dims 256/512,\n"
        "                                  ff 21504, vocab 262144, window 1024, ctx 262144\n"
        "  --type T                f32 | f16 | bf16 | q8_0 | q4_0 | q4_k_m | q6_k (default %s)\n"
        "                            q4_k_m: Q4_K, with Q6_K for token_embd, attn_v, ffn_down\n"
        "  --embd-type T           type of token_embd (default: as --type, but q6_k for q4_0 and q4_k_m)\n"
        "  --seed S                PRNG seed (default %llu)\n"
        "  --layers N              layers (default %u); layer l is global when (l+1) %% period == 0,\n"
        "                          and the last layer is always global\n"
        "  --vocab N               vocabulary size (default %u, at least %u)\n"
        "  --embd N                hidden size (default %u)\n"
        "  --heads N               query heads (default %u)\n"
        "  --kv-heads N            KV heads of sliding layers (default %u)\n"
        "  --kv-heads-global N     KV heads of global layers (default %u)\n"
        "  --head-dim N            head size of sliding layers, even (default %u)\n"
        "  --head-dim-global N     head size of global layers, even (default %u)\n"
        "  --ff N                  FFN size (default %u)\n"
        "  --window N              sliding window (default %u)\n"
        "  --ctx N                 training context length (default %u)\n"
        "  --swa-period N          one global layer every N layers (default %u)\n"
        "  --no-k-eq-v             give global layers their own attn_v (default: V = K)\n"
        "  --rope-base F           RoPE theta of global layers (default %g)\n"
        "  --rope-base-swa F       RoPE theta of sliding layers (default %g)\n"
        "  --softcap F             final logit soft-cap, 0 = off (default %g)\n"
        "  --name S                general.name (default gemma4-test-PRESET-TYPE)\n"
        "  --threads N             worker threads (default: one per physical core)\n"
        "  -q, --quiet             no progress lines\n"
        "\n"
        "A matching Gemma 4 12B Unified projector (GGUF arch \"clip\": gemma4uv vision,\n"
        "gemma4ua audio), output width = the text model's --embd; -o may then be omitted:\n"
        "  --mmproj-out FILE       write the mmproj to FILE\n"
        "  --mmproj-type T         f32 | f16 | bf16 | q8_0: patch_embd, position table and both\n"
        "                          projections (default f32; rows that are not whole q8_0 blocks: f16)\n"
        "  --mmproj-norm-type T    f32 | f16: norms and biases (default f32)\n"
        "  --mmproj-width N        vision patch-embedding width (default: --embd)\n"
        "  --mmproj-pos N          position-table rows per axis (default 1120)\n"
        "  --mmproj-patch N        clip.vision.patch_size, the 16-px teacher patch (default 16;\n"
        "                          the model patch is 3N, and images need 3N = 48)\n"
        "  --mmproj-frame N        audio samples per token (default 640)\n"
        "  --mmproj-image-mean R,G,B / --mmproj-image-std R,G,B   (default 0,0,0 / 1,1,1)\n"
        "  --mmproj-vision-only    no audio projector\n"
        "  --mmproj-audio-only     no vision projector\n"
        "  -h, --help              this text\n"
        "\n"
        "Matrices whose row length is not a multiple of the type's block size fall back\n"
        "to Q8_0 (or F16).  Norms, layer_output_scale and rope_freqs are F32.\n",
        g4_tm_type_name(d.type), (unsigned long long)d.seed, d.n_layer, d.n_vocab,
        g4_test_model_min_vocab(), d.n_embd, d.n_head, d.n_kv_head_swa, d.n_kv_head_global,
        d.head_dim_swa, d.head_dim_global, d.n_ff, d.sliding_window, d.n_ctx_train,
        d.swa_period, (double)d.rope_base, (double)d.rope_base_swa, (double)d.softcap);
}

static int bad(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, "gemma4 make-test-model: %s '%s': %s\n", opt, val, why);
    return 2;
}

/* Strict unsigned parse: digits only, > 0 unless allow_zero, <= max. */
static int parse_u32(const char *opt, const char *s, uint32_t *out, uint32_t max)
{
    if (!s || !*s)
        return bad(opt, s ? s : "", "expected a positive integer");
    for (const char *c = s; *c; c++)
        if (*c < '0' || *c > '9')
            return bad(opt, s, "expected a positive integer");
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno || v > max)
        return bad(opt, s, "too large");
    if (v == 0)
        return bad(opt, s, "must be at least 1");
    *out = (uint32_t)v;
    return 0;
}

static int parse_u64(const char *opt, const char *s, uint64_t *out)
{
    if (!s || !*s)
        return bad(opt, s ? s : "", "expected a non-negative integer");
    for (const char *c = s; *c; c++)
        if (*c < '0' || *c > '9')
            return bad(opt, s, "expected a non-negative integer");
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno)
        return bad(opt, s, "too large");
    *out = (uint64_t)v;
    return 0;
}

static int parse_f32x3(const char *opt, const char *s, float out[3])
{
    const char *p = s;
    for (int c = 0; c < 3; c++) {
        char *end = NULL;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || fabs(v) > 1e30 || *end != (c < 2 ? ',' : 0))
            return bad(opt, s, "expected three finite numbers R,G,B");
        out[c] = (float)v;
        p = end + 1;
    }
    return 0;
}

static int parse_f32(const char *opt, const char *s, float *out, bool allow_zero)
{
    if (!s || !*s)
        return bad(opt, s ? s : "", "expected a number");
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || fabs(v) > 3.0e38)
        return bad(opt, s, "expected a finite number");
    if (v < 0 || (!allow_zero && v == 0))
        return bad(opt, s, allow_zero ? "must be >= 0" : "must be positive");
    *out = (float)v;
    return 0;
}

typedef struct {
    bool   quiet;
    double t0;
    double last;
    int    last_pct;
} progress_state;

static void on_progress(void *user, uint64_t done, uint64_t total, const char *tensor)
{
    progress_state *ps = user;
    if (ps->quiet || total < ((uint64_t)256 << 20))
        return; /* small models: no progress lines */
    double t = cli_now_s();
    int pct = (int)(100.0 * (double)done / (double)total);
    if (done < total && t - ps->last < 30.0 && pct < ps->last_pct + 10)
        return;
    ps->last = t;
    ps->last_pct = pct;
    fprintf(stderr, "make-test-model: %3d%%  %.2f / %.2f GiB  %5.1f s  %s\n", pct,
            (double)done / 1073741824.0, (double)total / 1073741824.0, t - ps->t0,
            done < total ? tensor : "done");
}

static int write_mmproj(const g4_test_mmproj_params *mp, const char *path)
{
    char err[512];
    double t0 = cli_now_s();
    if (g4_make_test_mmproj(mp, path, err, sizeof err)) {
        fprintf(stderr, "gemma4 make-test-model: %s\n", err);
        return 1;
    }
    struct stat st;
    double mib = stat(path, &st) == 0 ? (double)st.st_size / 1048576.0 : 0.0;
    static const char *const tn[] = { [G4_TYPE_F32] = "f32", [G4_TYPE_F16] = "f16", [G4_TYPE_Q8_0] = "q8_0",
                                      [G4_TYPE_BF16] = "bf16" };
    printf("wrote %s: mmproj %s%s%s, n_embd %u", path, mp->vision ? "gemma4uv" : "",
           mp->vision && mp->audio ? " + " : "", mp->audio ? "gemma4ua" : "", mp->n_embd);
    if (mp->vision)
        printf(", width %u, n_pos %u, patch %u", mp->vision_width, mp->n_pos, 3 * mp->patch_size);
    if (mp->audio)
        printf(", frame %u", mp->audio_frame);
    printf(", type %s, %.2f MiB, %.1f s\n", tn[mp->type], mib, cli_now_s() - t0);
    return 0;
}

#define NEED_VALUE() do { if (i + 1 >= argc) { \
        fprintf(stderr, "gemma4 make-test-model: %s needs a value\n", a); return 2; } } while (0)

int g4_cmd_make_test_model(int argc, char **argv)
{
    g4_test_model_params p;
    g4_test_model_default_params(&p);
    g4_test_mmproj_params mp;
    g4_test_mmproj_default_params(&mp);
    uint32_t mm_width = 0; /* 0 = the text model's n_embd */
    const char *out = NULL, *mm_out = NULL;
    bool mm_opt = false; /* an --mmproj-* option other than --mmproj-out */
    progress_state ps = { false, 0, 0, -100 };
    const uint32_t max = 0x7fffffffu;

    /* pass 1: help and preset */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--preset") == 0) {
            NEED_VALUE();
            if (g4_test_model_preset(&p, argv[i + 1]))
                return bad("--preset", argv[i + 1], "expected tiny, 12b or 31b");
        }
    }
    /* pass 2: everything else */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = 0;
        uint32_t *u = NULL;
        if (strncmp(a, "--mmproj-", 9) == 0 && strcmp(a, "--mmproj-out") != 0)
            mm_opt = true;
        if (strcmp(a, "--preset") == 0) {
            i++;
            continue;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            NEED_VALUE();
            out = argv[++i];
            if (!*out)
                return bad(a, out, "empty path");
            continue;
        } else if (strcmp(a, "--type") == 0 || strcmp(a, "--embd-type") == 0) {
            NEED_VALUE();
            int t = g4_tm_type_from_name(argv[++i]);
            if (t < 0)
                return bad(a, argv[i], "unknown type (f32, f16, bf16, q8_0, q4_0, q4_k_m, q6_k)");
            if (a[2] == 't')
                p.type = (g4_tm_type)t;
            else
                p.embd_type = t;
            continue;
        } else if (strcmp(a, "--seed") == 0) {
            NEED_VALUE();
            rc = parse_u64(a, argv[++i], &p.seed);
        } else if (strcmp(a, "--threads") == 0) {
            NEED_VALUE();
            uint32_t t;
            rc = parse_u32(a, argv[++i], &t, 256);
            if (!rc)
                p.n_threads = (int)t;
        } else if (strcmp(a, "--name") == 0) {
            NEED_VALUE();
            p.name = argv[++i];
            if (!*p.name || strlen(p.name) >= 256)
                return bad(a, p.name, "must be 1..255 characters");
            continue;
        } else if (strcmp(a, "--mmproj-out") == 0) {
            NEED_VALUE();
            mm_out = argv[++i];
            if (!*mm_out)
                return bad(a, mm_out, "empty path");
            continue;
        } else if (strcmp(a, "--mmproj-type") == 0 || strcmp(a, "--mmproj-norm-type") == 0) {
            NEED_VALUE();
            int t = g4_test_mmproj_type_from_name(argv[++i]);
            bool norm = strcmp(a, "--mmproj-norm-type") == 0;
            if (t < 0 || (norm && t != G4_TYPE_F32 && t != G4_TYPE_F16))
                return bad(a, argv[i], norm ? "expected f32 or f16" : "expected f32, f16, bf16 or q8_0");
            if (norm)
                mp.norm_type = (uint32_t)t;
            else
                mp.type = (uint32_t)t;
            continue;
        } else if (strcmp(a, "--mmproj-image-mean") == 0 || strcmp(a, "--mmproj-image-std") == 0) {
            NEED_VALUE();
            rc = parse_f32x3(a, argv[++i], strcmp(a, "--mmproj-image-mean") == 0 ? mp.image_mean : mp.image_std);
        } else if (strcmp(a, "--mmproj-vision-only") == 0) {
            mp.audio = false;
            continue;
        } else if (strcmp(a, "--mmproj-audio-only") == 0) {
            mp.vision = false;
            continue;
        } else if (strcmp(a, "--no-k-eq-v") == 0) {
            p.k_eq_v = false;
            continue;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            ps.quiet = true;
            continue;
        } else if (strcmp(a, "--rope-base") == 0) {
            NEED_VALUE();
            rc = parse_f32(a, argv[++i], &p.rope_base, false);
        } else if (strcmp(a, "--rope-base-swa") == 0) {
            NEED_VALUE();
            rc = parse_f32(a, argv[++i], &p.rope_base_swa, false);
        } else if (strcmp(a, "--softcap") == 0) {
            NEED_VALUE();
            rc = parse_f32(a, argv[++i], &p.softcap, true);
        } else if (strcmp(a, "--layers") == 0) u = &p.n_layer;
        else if (strcmp(a, "--vocab") == 0) u = &p.n_vocab;
        else if (strcmp(a, "--embd") == 0) u = &p.n_embd;
        else if (strcmp(a, "--heads") == 0) u = &p.n_head;
        else if (strcmp(a, "--kv-heads") == 0) u = &p.n_kv_head_swa;
        else if (strcmp(a, "--kv-heads-global") == 0) u = &p.n_kv_head_global;
        else if (strcmp(a, "--head-dim") == 0) u = &p.head_dim_swa;
        else if (strcmp(a, "--head-dim-global") == 0) u = &p.head_dim_global;
        else if (strcmp(a, "--ff") == 0) u = &p.n_ff;
        else if (strcmp(a, "--window") == 0) u = &p.sliding_window;
        else if (strcmp(a, "--ctx") == 0) u = &p.n_ctx_train;
        else if (strcmp(a, "--swa-period") == 0) u = &p.swa_period;
        else if (strcmp(a, "--mmproj-width") == 0) u = &mm_width;
        else if (strcmp(a, "--mmproj-pos") == 0) u = &mp.n_pos;
        else if (strcmp(a, "--mmproj-patch") == 0) u = &mp.patch_size;
        else if (strcmp(a, "--mmproj-frame") == 0) u = &mp.audio_frame;
        else {
            fprintf(stderr, "gemma4 make-test-model: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (u) {
            NEED_VALUE();
            rc = parse_u32(a, argv[++i], u, max);
        }
        if (rc)
            return rc;
    }
    if (!out && !mm_out) {
        fprintf(stderr, "gemma4 make-test-model: -o FILE is required (see --help)\n");
        return 2;
    }
    if (!mm_out && mm_opt) {
        fprintf(stderr, "gemma4 make-test-model: --mmproj-* options need --mmproj-out FILE\n");
        return 2;
    }
    if (!mp.vision && !mp.audio) {
        fprintf(stderr, "gemma4 make-test-model: --mmproj-vision-only and --mmproj-audio-only exclude each other\n");
        return 2;
    }
    char err[512];
    if (g4_test_model_validate(&p, err, sizeof err)) {
        fprintf(stderr, "gemma4 make-test-model: %s\n", err);
        return 2;
    }
    mp.n_embd = p.n_embd;
    mp.vision_width = mm_width ? mm_width : p.n_embd;
    mp.seed = p.seed;
    mp.n_threads = p.n_threads;
    if (mm_out && g4_test_mmproj_validate(&mp, err, sizeof err)) {
        fprintf(stderr, "gemma4 make-test-model: %s\n", err);
        return 2;
    }
    if (!out)
        return write_mmproj(&mp, mm_out);

    ps.t0 = ps.last = cli_now_s();
    p.progress = on_progress;
    p.progress_user = &ps;
    if (g4_make_test_model(&p, out, err, sizeof err)) {
        fprintf(stderr, "gemma4 make-test-model: %s\n", err);
        return 1;
    }
    struct stat st;
    double mib = stat(out, &st) == 0 ? (double)st.st_size / 1048576.0 : 0.0;
    int et = p.embd_type;
    const char *etn = et >= 0 ? g4_tm_type_name((g4_tm_type)et)
                              : (p.type == G4_TM_Q4_0 || p.type == G4_TM_Q4_K_M)
                                    ? "q6_k" : g4_tm_type_name(p.type);
    printf("wrote %s: %u layers, embd %u, vocab %u, type %s (token_embd %s), %.2f MiB, %.1f s\n",
           out, p.n_layer, p.n_embd, p.n_vocab, g4_tm_type_name(p.type), etn, mib,
           cli_now_s() - ps.t0);
    return mm_out ? write_mmproj(&mp, mm_out) : 0;
}
