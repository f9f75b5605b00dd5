/*
 * mmembed.c - `gemma4 mmembed`: the soft-token rows an image or an audio
 * clip becomes (a verification interface: the output format is fixed;
 * docs/mmproj.md).
 *
 *   gemma4 mmembed --mmproj MMPROJ (--image F [--image-tokens M] | --audio F)
 *                  -o OUT.f32 [--threads N] [--no-mmap]
 *
 * OUT.f32: little-endian float32, n_tokens x n_embd, row-major.  stdout:
 *   images: "tokens N\nimage WxH\ngrid GWxGH\n" (W x H = the resized size)
 *   audio:  "tokens N\nsamples S\n"            (S = samples at 16 kHz, mono)
 * Exit status 0 ok, 1 runtime failure (files), 2 usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "gemma4.h"

#define CMD "mmembed"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: gemma4 mmembed --mmproj MMPROJ (--image F [--image-tokens M] | --audio F) -o OUT.f32\n"
        "                      [--threads N] [--no-mmap]\n"
        "\n"
        "Runs the Gemma 4 12B Unified projector (gemma4uv / gemma4ua) and writes the soft-token\n"
        "rows as little-endian float32, n_tokens x n_embd.  Prints the token count and, for an\n"
        "image, the resized size and the patch grid (\"tokens N\", \"image WxH\", \"grid GWxGH\");\n"
        "for audio the sample count at 16 kHz (\"tokens N\", \"samples S\").\n"
        "  --image F          JPEG, PNG, WebP, GIF or BMP\n"
        "  --image-tokens M   soft-token budget: 70, 140, 280, 560 or 1120 (default 280)\n"
        "  --audio F          WAV, FLAC, OGG, MP3 (mixed to mono, resampled to 16 kHz)\n"
        "  --threads N        worker threads (default: one per physical core)\n"
        "  --no-mmap          read the projector into memory instead of mapping it\n");
}

static int write_rows(const char *path, const g4_embedding *e)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        cli_error(CMD, "cannot create '%s': %s", path, strerror(errno));
        return 1;
    }
    size_t n = (size_t)e->n_tokens * e->n_embd;
    bool ok = fwrite(e->rows, sizeof(float), n, f) == n;
    if (fclose(f) != 0) ok = false;
    if (!ok) {
        cli_error(CMD, "write error on '%s'", path);
        remove(path);
        return 1;
    }
    return 0;
}

int cmd_mmembed(int argc, char **argv)
{
    const char *mm_path = NULL, *image = NULL, *audio = NULL, *out = NULL;
    int64_t threads = 0, budget = 280;
    bool budget_set = false, mmap = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--no-mmap")) mmap = false;
        else if (!strcmp(a, "--mmproj")) { if (!(mm_path = cli_value(CMD, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "--image")) { if (!(image = cli_value(CMD, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "--audio")) { if (!(audio = cli_value(CMD, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { if (!(out = cli_value(CMD, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, v, 1, 1024, &threads)) return EXIT_USAGE;
        } else if (!strcmp(a, "--image-tokens")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, v, 1, 1 << 20, &budget)) return EXIT_USAGE;
            if (budget != 70 && budget != 140 && budget != 280 && budget != 560 && budget != 1120) {
                cli_error(CMD, "--image-tokens: %lld is not one of 70, 140, 280, 560, 1120", (long long)budget);
                return EXIT_USAGE;
            }
            budget_set = true;
        } else {
            cli_error(CMD, "unknown argument '%s' (gemma4 mmembed --help for usage)", a);
            return EXIT_USAGE;
        }
    }
    if (!mm_path) { cli_error(CMD, "missing --mmproj MMPROJ (gemma4 mmembed --help for usage)"); return EXIT_USAGE; }
    if (!image == !audio) { cli_error(CMD, "give exactly one of --image and --audio"); return EXIT_USAGE; }
    if (!out) { cli_error(CMD, "missing -o OUT.f32"); return EXIT_USAGE; }
    if (budget_set && !image) { cli_error(CMD, "--image-tokens applies to --image only"); return EXIT_USAGE; }

    char err[512];
    int rc = 1;
    g4_mmproj *mm = NULL;
    g4_embedding e = { 0 };
    g4_mmproj_params mp = g4_mmproj_default_params();
    mp.use_mmap = mmap;
    mp.n_threads = (int)threads;
    if (g4_mmproj_load(mm_path, &mp, &mm, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
    g4_mmproj_info info;
    g4_mmproj_get_info(mm, &info);
    if (image) {
        if (!info.has_vision) { cli_error(CMD, "'%s' has no vision projector (audio only): cannot embed an image", mm_path); goto done; }
        g4_image img = { 0, 0, NULL };
        if (g4_image_load(image, 0, &img, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
        g4_status st = g4_mmproj_embed_image(mm, &img, (uint32_t)budget, &e, err, sizeof err);
        g4_image_free(&img);
        if (st != G4_OK) { cli_error(CMD, "%s", err); goto done; }
        if ((rc = write_rows(out, &e))) goto done;
        printf("tokens %u\nimage %ux%u\ngrid %ux%u\n", e.n_tokens, e.width, e.height, e.grid_w, e.grid_h);
    } else {
        if (!info.has_audio) { cli_error(CMD, "'%s' has no audio projector (vision only): cannot embed audio", mm_path); goto done; }
        g4_audio a = { NULL, 0, 0, 0 };
        if (g4_audio_load(audio, 0, &a, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); goto done; }
        uint64_t n = a.n_samples;
        g4_status st = g4_mmproj_embed_audio(mm, a.samples, a.n_samples, &e, err, sizeof err);
        g4_audio_free(&a);
        if (st != G4_OK) { cli_error(CMD, "%s", err); goto done; }
        if ((rc = write_rows(out, &e))) goto done;
        printf("tokens %u\nsamples %llu\n", e.n_tokens, (unsigned long long)n);
    }
    rc = 0;
done:
    g4_embedding_free(&e);
    g4_mmproj_free(mm);
    return rc;
}
