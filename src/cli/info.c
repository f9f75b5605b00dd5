/* info.c - `gemma4 info MODEL.gguf [--ctx N]`. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "gemma4.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: gemma4 info MODEL.gguf [--ctx N]\n"
               "  prints architecture, hyperparameters, the per-layer pattern, a tensor-type\n"
               "  histogram, parameter count, weight bytes and the memory estimate for --ctx N\n"
               "  (default 4096) with f16 and f32 KV caches.\n");
}

int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    int64_t n_ctx = 4096;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        if (!strcmp(argv[i], "--ctx")) {
            const char *v = cli_value("info", argc, argv, &i);
            if (!v || !cli_parse_i64("info", "--ctx", v, 1, 1 << 30, &n_ctx)) return EXIT_USAGE;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_error("info", "unknown option '%s'", argv[i]);
            return EXIT_USAGE;
        } else if (!path) {
            path = argv[i];
        } else {
            cli_error("info", "unexpected argument '%s'", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!path) { usage(stderr); return EXIT_USAGE; }

    char err[512];
    g4_model_params mp = g4_model_default_params();
    mp.n_threads = 1;
    g4_model *m;
    if (g4_model_load(path, &mp, &m, err, sizeof err) != G4_OK) { cli_error("info", "%s", err); return 1; }
    g4_model_info in;
    g4_model_get_info(m, &in);
    printf("file:            %s\n", path);
    printf("architecture:    %s\n", in.arch);
    printf("name:            %s\n", in.name[0] ? in.name : "(none)");
    printf("vocab:           %u\n", in.n_vocab);
    printf("embedding:       %u\n", in.n_embd);
    printf("layers:          %u\n", in.n_layer);
    printf("heads:           %u\n", in.n_head);
    printf("ffn:             %u\n", in.n_ff);
    printf("context (train): %u\n", in.n_ctx_train);
    printf("sliding window:  %u\n", in.sliding_window);
    printf("head dim:        sliding %u, global %u\n", in.head_dim_swa, in.head_dim_global);
    printf("rope:            sliding base %g dims %u, global base %g dims %u\n", in.rope_base_swa, in.n_rot_swa,
           in.rope_base_global, in.n_rot_global);
    printf("rms eps:         %g\n", in.rms_eps);
    printf("logit softcap:   %g\n", in.final_logit_softcap);
    printf("layer pattern:   ");
    for (uint32_t l = 0; l < in.n_layer; l++) putchar(g4_model_layer_is_sliding(m, l) ? 'S' : 'G');
    printf("   (S = sliding, G = global)\n");
    printf("kv heads:        ");
    for (uint32_t l = 0; l < in.n_layer; l++) printf("%s%u", l ? "," : "", g4_model_layer_n_kv_head(m, l));
    printf("\n");

    /* tensor-type histogram */
    struct { char name[16]; uint64_t count, elems, bytes; } hist[64];
    int nh = 0;
    uint64_t nt = g4_model_n_tensors(m);
    for (uint64_t i = 0; i < nt; i++) {
        g4_tensor_info ti;
        if (!g4_model_tensor_info(m, i, &ti)) continue;
        int k;
        for (k = 0; k < nh; k++) if (!strcmp(hist[k].name, ti.type_name)) break;
        if (k == nh) {
            if (nh == 64) continue;
            snprintf(hist[nh].name, sizeof hist[nh].name, "%s", ti.type_name);
            hist[nh].count = hist[nh].elems = hist[nh].bytes = 0;
            nh++;
        }
        hist[k].count++;
        hist[k].elems += ti.n_elements;
        hist[k].bytes += ti.nbytes;
    }
    printf("tensors:         %llu\n", (unsigned long long)nt);
    for (int k = 0; k < nh; k++)
        printf("  %-8s %5llu tensors %14llu params %10.2f MiB\n", hist[k].name, (unsigned long long)hist[k].count,
               (unsigned long long)hist[k].elems, hist[k].bytes / 1048576.0);
    printf("parameters:      %llu (%.3f B)\n", (unsigned long long)in.n_params, in.n_params / 1e9);
    printf("weight bytes:    %llu (%.2f GiB)\n", (unsigned long long)in.weight_bytes, in.weight_bytes / 1073741824.0);
    uint64_t kv16 = g4_model_kv_bytes(m, (uint32_t)n_ctx, G4_KV_F16), kv32 = g4_model_kv_bytes(m, (uint32_t)n_ctx, G4_KV_F32);
    printf("memory @ctx %lld: KV f16 %.1f MiB (total %.2f GiB), KV f32 %.1f MiB (total %.2f GiB)\n", (long long)n_ctx,
           kv16 / 1048576.0, (in.weight_bytes + kv16) / 1073741824.0, kv32 / 1048576.0,
           (in.weight_bytes + kv32) / 1073741824.0);
    g4_model_free(m);
    return 0;
}
