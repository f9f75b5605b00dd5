/*
 * quantize.c - `gemma4 quantize IN.gguf OUT.gguf TYPE`: converts a GGUF model
 * to another weight type (the library side is src/model/quantize.h).
 *
 * Exit status: 0 ok, 1 failure (I/O, bad input file, existing output),
 * 2 usage error.  Progress goes to stderr when it is a terminal; the final
 * summary line is always printed (stderr).
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "kernels/quant.h"
#include "model/quantize.h"

static const char *CMD = "quantize";

static void usage(FILE *f)
{
    fprintf(f,
        "usage: gemma4 quantize IN.gguf OUT.gguf TYPE [options]\n"
        "\n"
        "Converts a GGUF model to another weight type; llama.cpp and gemma4 load the\n"
        "result.  All metadata is copied; general.file_type is updated.\n"
        "\n"
        "TYPE (llama-quantize's mixes):\n"
        "  f32 | f16 | bf16       every weight matrix in that type\n"
        "  q8_0                   Q8_0 matrices, token_embd included\n"
        "  q4_0 | q4_1 | q5_0 | q5_1\n"
        "                         that type; token_embd (the tied output) Q6_K\n"
        "  q4_k_m (alias q4_k)    Q4_K; Q6_K for token_embd and for about half of the\n"
        "                         attn_v / ffn_down matrices (llama.cpp's use_more_bits:\n"
        "                         the first and last eighth of the layers and every\n"
        "                         third one between)\n"
        "  q4_k_s                 Q4_K; Q5_K for the first 4 attn_v and the ffn_down of\n"
        "                         the first eighth of the layers; token_embd Q6_K\n"
        "  q5_k_m (alias q5_k)    like q4_k_m with Q5_K\n"
        "  q5_k_s                 Q5_K; token_embd Q6_K\n"
        "  q6_k                   Q6_K\n"
        "Norms and other 1-D tensors are always F32.  A matrix whose row length does not\n"
        "fit the type's blocks falls back (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0,\n"
        "else F16) with a note.  Tensors whose type does not change are copied as is.\n"
        "\n"
        "options:\n"
        "  --embd-type T     type of token_embd.weight: f32 f16 bf16 q8_0 q4_0 q4_1\n"
        "                    q5_0 q5_1 q4_k q5_k q6_k (default: as described above)\n"
        "  -t, --threads N   worker threads (default: one per physical core)\n"
        "  -f, --force       replace OUT if it exists\n"
        "  -q, --quiet       no progress and no notes (errors and the summary remain)\n"
        "  -h, --help        this text\n"
        "\n"
        "OUT is written as OUT.tmp and renamed when complete; on failure nothing is left.\n");
}

typedef struct {
    bool   tty;
    bool   quiet;
    bool   drawn;      /* a progress line is on screen */
    double last;
} progress_state;

static void clear_line(progress_state *ps)
{
    if (ps->drawn) {
        fputs("\r\033[K", stderr);
        ps->drawn = false;
    }
}

static void on_progress(void *user, uint64_t done, uint64_t total, uint64_t i_tensor,
                        uint64_t n_tensors, const char *tensor, uint32_t type)
{
    progress_state *ps = user;
    if (!ps->tty || ps->quiet)
        return;
    if (i_tensor >= n_tensors) {   /* finished */
        clear_line(ps);
        return;
    }
    int pct = total ? (int)(100.0 * (double)done / (double)total) : 100;
    double t = cli_now_s();
    if (ps->drawn && t - ps->last < 0.1)
        return;   /* at most 10 redraws a second */
    ps->last = t;
    const g4_type_traits *tr = g4_type_get(type);
    fprintf(stderr, "\r\033[K[%3d%%] %s %s", pct, tensor, tr ? tr->name : "?");
    fflush(stderr);
    ps->drawn = true;
}

static void on_note(void *user, const char *msg)
{
    progress_state *ps = user;
    if (ps->quiet)
        return;
    clear_line(ps);
    cli_error(CMD, "note: %s", msg);
}

static double mib(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_size / (1024.0 * 1024.0) : 0.0;
}

int cmd_quantize(int argc, char **argv)
{
    g4_quantize_params p;
    g4_quantize_default_params(&p);
    progress_state ps = { .tty = isatty(STDERR_FILENO) == 1 };
    const char *pos[3] = { NULL, NULL, NULL };
    int n_pos = 0;
    bool opts_done = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && a[0] == '-' && a[1] != '\0') {
            if (!strcmp(a, "--")) {
                opts_done = true;
            } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
                usage(stdout);
                return 0;
            } else if (!strcmp(a, "-f") || !strcmp(a, "--force")) {
                p.force = true;
            } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
                ps.quiet = true;
            } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
                const char *v = cli_value(CMD, argc, argv, &i);
                int64_t n;
                if (!v || !cli_parse_i64(CMD, a, v, 1, 256, &n))
                    return EXIT_USAGE;
                p.n_threads = (int)n;
            } else if (!strcmp(a, "--embd-type")) {
                const char *v = cli_value(CMD, argc, argv, &i);
                uint32_t t;
                if (!v)
                    return EXIT_USAGE;
                if (g4_quantize_type_from_name(v, &t)) {
                    cli_error(CMD, "--embd-type: unknown type '%s' (f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 "
                              "q4_k q5_k q6_k)", v);
                    return EXIT_USAGE;
                }
                p.embd_type = t;
            } else {
                cli_error(CMD, "unknown option '%s' (see --help)", a);
                return EXIT_USAGE;
            }
            continue;
        }
        if (n_pos == 3) {
            cli_error(CMD, "unexpected argument '%s' (usage: gemma4 quantize IN.gguf OUT.gguf TYPE)", a);
            return EXIT_USAGE;
        }
        pos[n_pos++] = a;
    }
    if (n_pos < 3) {
        cli_error(CMD, "expected IN.gguf OUT.gguf TYPE (see --help)");
        return EXIT_USAGE;
    }
    if (g4_quantize_ftype_from_name(pos[2], &p.ftype)) {
        cli_error(CMD, "unknown TYPE '%s' (f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_s q4_k_m q5_k_s "
                  "q5_k_m q6_k; q4_k = q4_k_m, q5_k = q5_k_m)", pos[2]);
        return EXIT_USAGE;
    }
    p.progress = on_progress;
    p.progress_user = &ps;
    p.note = on_note;
    p.note_user = &ps;

    double t0 = cli_now_s();
    char err[640];
    if (g4_quantize_file(&p, pos[0], pos[1], err, sizeof err)) {
        clear_line(&ps);
        cli_error(CMD, "%s", err);
        return 1;
    }
    clear_line(&ps);
    fprintf(stderr, "gemma4 quantize: wrote %s (%s): %.2f MiB -> %.2f MiB in %.1f s\n", pos[1],
            g4_quantize_ftype_name(p.ftype), mib(pos[0]), mib(pos[1]), cli_now_s() - t0);
    return 0;
}
