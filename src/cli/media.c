/*
 * media.c - see media.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/media.h"

int32_t cli_single_token(const g4_model *m, const char *s)
{
    int32_t id[4];
    size_t n = 0;
    char err[128];
    if (g4_tokenize(m, s, strlen(s), false, true, id, 4, &n, err, sizeof err) != G4_OK || n != 1) return -1;
    return id[0];
}

bool cli_media_tokens_get(const char *cmd, const g4_model *m, cli_media_tokens *t)
{
    t->image_ph = cli_single_token(m, "<|image|>");
    t->audio_ph = cli_single_token(m, "<|audio|>");
    t->boi = cli_single_token(m, "<|image>");
    t->eoi = cli_single_token(m, "<image|>");
    t->boa = cli_single_token(m, "<|audio>");
    t->eoa = cli_single_token(m, "<audio|>");
    if (t->image_ph < 0 || t->audio_ph < 0 || t->boi < 0 || t->eoi < 0 || t->boa < 0 || t->eoa < 0) {
        cli_error(cmd, "the model's vocabulary lacks the image/audio marker tokens (<|image>, <|image|>, <image|>, "
                       "<|audio>, <|audio|>, <audio|>): not a Gemma 4 multimodal model");
        return false;
    }
    return true;
}

static bool embed_audio(const char *cmd, g4_mmproj *mm, cli_media *it)
{
    char err[512];
    g4_audio a;
    memset(&a, 0, sizeof a);
    if (g4_audio_load(it->path, 0, &a, err, sizeof err) != G4_OK) {
        cli_error(cmd, "%s", err); /* names the file */
        return false;
    }
    if (a.n_samples == 0) {
        cli_error(cmd, "%s: the audio has no samples", it->path);
        g4_audio_free(&a);
        return false;
    }
    const uint64_t chunk = (uint64_t)G4_AUDIO_CHUNK_SECONDS * 16000;
    uint64_t n_parts = (a.n_samples + chunk - 1) / chunk;
    it->parts = calloc(n_parts, sizeof *it->parts);
    if (!it->parts) { cli_error(cmd, "out of memory"); g4_audio_free(&a); return false; }
    double t0 = cli_now_s();
    for (uint64_t p = 0; p < n_parts; p++) {
        uint64_t off = p * chunk, len = a.n_samples - off < chunk ? a.n_samples - off : chunk;
        if (g4_mmproj_embed_audio(mm, a.samples + off, len, &it->parts[p], err, sizeof err) != G4_OK) {
            cli_error(cmd, "%s: %s", it->path, err);
            g4_audio_free(&a);
            return false;
        }
        it->n_parts++;
        it->n_positions += it->parts[p].n_tokens + 2;
    }
    snprintf(it->note, sizeof it->note, "audio %s: %.2f s (%u Hz, %u channel%s) -> %u soft tokens%s%s (%.2f s)",
                it->path, (double)a.n_samples / 16000.0, a.src_rate, a.src_channels, a.src_channels == 1 ? "" : "s",
                it->n_positions - 2 * it->n_parts, n_parts > 1 ? " in blocks of at most 30 s" : "", "",
                cli_now_s() - t0);
    g4_audio_free(&a);
    return true;
}

static bool embed_image(const char *cmd, g4_mmproj *mm, cli_media *it, uint32_t image_tokens)
{
    char err[512];
    g4_image img;
    memset(&img, 0, sizeof img);
    if (g4_image_load(it->path, 0, &img, err, sizeof err) != G4_OK) {
        cli_error(cmd, "%s", err); /* names the file */
        return false;
    }
    it->parts = calloc(1, sizeof *it->parts);
    if (!it->parts) { cli_error(cmd, "out of memory"); g4_image_free(&img); return false; }
    double t0 = cli_now_s();
    g4_status st = g4_mmproj_embed_image(mm, &img, image_tokens, &it->parts[0], err, sizeof err);
    if (st != G4_OK) {
        cli_error(cmd, "%s: %s", it->path, err);
        g4_image_free(&img);
        return false;
    }
    it->n_parts = 1;
    it->n_positions = it->parts[0].n_tokens + 2;
    snprintf(it->note, sizeof it->note, "image %s: %ux%u -> %ux%u, %ux%u patches = %u soft tokens (%.2f s)", it->path,
                img.width, img.height, it->parts[0].width, it->parts[0].height, it->parts[0].grid_w,
                it->parts[0].grid_h, it->parts[0].n_tokens, cli_now_s() - t0);
    g4_image_free(&img);
    return true;
}

void cli_media_report(const char *cmd, const cli_media *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (items[i].note[0]) fprintf(stderr, "gemma4 %s: %s\n", cmd, items[i].note);
}

bool cli_media_embed(const char *cmd, g4_mmproj *mm, cli_media *items, size_t n, uint32_t image_tokens)
{
    g4_mmproj_info in;
    g4_mmproj_get_info(mm, &in);
    for (size_t i = 0; i < n; i++) {
        cli_media *it = &items[i];
        if (it->kind == CLI_MEDIA_IMAGE && !in.has_vision) {
            cli_error(cmd, "%s: the projector has no vision part (an audio-only mmproj)", it->path);
            return false;
        }
        if (it->kind == CLI_MEDIA_AUDIO && !in.has_audio) {
            cli_error(cmd, "%s: the projector has no audio part (a vision-only mmproj)", it->path);
            return false;
        }
        if (!(it->kind == CLI_MEDIA_IMAGE ? embed_image(cmd, mm, it, image_tokens) : embed_audio(cmd, mm, it)))
            return false;
    }
    return true;
}

void cli_media_free(cli_media *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        for (uint32_t p = 0; p < items[i].n_parts; p++) g4_embedding_free(&items[i].parts[p]);
        free(items[i].parts);
        items[i].parts = NULL;
        items[i].n_parts = 0;
    }
}

int64_t cli_media_positions(const char *cmd, const cli_media_tokens *t, const int32_t *ids, size_t n,
                            const cli_media *items, size_t n_items)
{
    int64_t pos = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool img = ids[i] == t->image_ph, aud = ids[i] == t->audio_ph;
        if (!img && !aud) { pos++; continue; }
        if (k >= n_items) {
            cli_error(cmd, "the prompt holds more media placeholders than media files (is '%s' written in the text?)",
                      img ? "<|image|>" : "<|audio|>");
            return -1;
        }
        if ((items[k].kind == CLI_MEDIA_IMAGE) != img) {
            cli_error(cmd, "media placeholder %zu is %s but file %s is %s", k + 1, img ? "an image" : "an audio clip",
                      items[k].path, items[k].kind == CLI_MEDIA_IMAGE ? "an image" : "audio");
            return -1;
        }
        pos += items[k++].n_positions;
    }
    if (k != n_items) {
        cli_error(cmd, "%zu media files but %zu placeholders in the prompt", n_items, k);
        return -1;
    }
    return pos;
}

uint32_t cli_media_max_block(const cli_media *items, size_t n)
{
    uint32_t mx = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i].kind == CLI_MEDIA_IMAGE)
            for (uint32_t p = 0; p < items[i].n_parts; p++)
                if (items[i].parts[p].n_tokens > mx) mx = items[i].parts[p].n_tokens;
    return mx;
}

static bool decode_ids(const char *cmd, g4_context *ctx, g4_sampler *smp, const int32_t *ids, size_t n)
{
    char err[512];
    if (n == 0) return true;
    if (g4_decode(ctx, ids, (uint32_t)n, false, err, sizeof err) != G4_OK) { cli_error(cmd, "%s", err); return false; }
    for (size_t i = 0; smp && i < n; i++) g4_sampler_accept(smp, ids[i]);
    return true;
}

bool cli_media_prefill(const char *cmd, g4_context *ctx, g4_sampler *smp, const cli_media_tokens *t,
                       const int32_t *ids, size_t n, const cli_media *items, size_t n_items, bool quiet)
{
    char err[512];
    size_t start = 0, k = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && ids[i] != t->image_ph && ids[i] != t->audio_ph) continue;
        if (!decode_ids(cmd, ctx, smp, ids + start, i - start)) return false;
        start = i + 1;
        if (i == n) break;
        if (k >= n_items) { cli_error(cmd, "internal: more placeholders than media"); return false; }
        const cli_media *it = &items[k++];
        bool img = it->kind == CLI_MEDIA_IMAGE;
        double t0 = cli_now_s();
        uint32_t rows = 0;
        for (uint32_t p = 0; p < it->n_parts; p++) {
            int32_t open = img ? t->boi : t->boa, close = img ? t->eoi : t->eoa;
            if (!decode_ids(cmd, ctx, smp, &open, 1)) return false;
            if (g4_decode_embd(ctx, it->parts[p].rows, it->parts[p].n_tokens, img ? G4_EMBD_IMAGE : G4_EMBD_CAUSAL, false,
                               err, sizeof err) != G4_OK) {
                cli_error(cmd, "%s: %s", it->path, err);
                return false;
            }
            rows += it->parts[p].n_tokens;
            if (!decode_ids(cmd, ctx, smp, &close, 1)) return false;
        }
        if (!quiet) {
            double dt = cli_now_s() - t0;
            fprintf(stderr, "gemma4 %s: prefill %s %u/%zu: %u soft tokens in %.2f s (%.1f tok/s)\n", cmd,
                    img ? "image" : "audio", (unsigned)k, n_items, rows, dt, dt > 0 ? rows / dt : 0.0);
        }
    }
    return true;
}
