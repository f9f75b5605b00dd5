/*
 * media.h - images and audio in CLI prompts (`gemma4 run`, `gemma4
 * transcribe`): loading the files through the projector into soft-token
 * rows, and the prefill that puts them where the chat template left their
 * placeholders.  docs/multimodal.md.
 */
#ifndef G4_CLI_MEDIA_H
#define G4_CLI_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gemma4.h"

typedef enum { CLI_MEDIA_IMAGE = 0, CLI_MEDIA_AUDIO = 1 } cli_media_kind;

/* One media item of a prompt: a file, and after cli_media_embed its rows
 * (one g4_embedding, or several for audio longer than 30 s, each a block). */
typedef struct {
    cli_media_kind kind;
    const char    *path;
    g4_embedding  *parts;
    uint32_t       n_parts;
    uint32_t       n_positions; /* rows + 2 markers per part */
    char           note[320];   /* what embedding did, for cli_media_report */
} cli_media;

/* The placeholder tokens and the block markers (looked up by text). */
typedef struct {
    int32_t image_ph, audio_ph;      /* <|image|>, <|audio|> */
    int32_t boi, eoi, boa, eoa;      /* <|image>, <image|>, <|audio>, <audio|> */
} cli_media_tokens;

/* The id of a text that is exactly one token (parsing specials), or -1. */
int32_t cli_single_token(const g4_model *m, const char *text);

bool cli_media_tokens_get(const char *cmd, const g4_model *m, cli_media_tokens *t);

/* Loads and embeds every item (a note per item for cli_media_report).  Audio longer than
 * G4_AUDIO_CHUNK_SECONDS becomes consecutive blocks of at most that length. */
bool cli_media_embed(const char *cmd, g4_mmproj *mm, cli_media *items, size_t n, uint32_t image_tokens);
/* One stderr line per item: size, resize, soft tokens, time. */
void cli_media_report(const char *cmd, const cli_media *items, size_t n);
void cli_media_free(cli_media *items, size_t n);

/* Positions the prompt ids take once every placeholder is expanded; -1 when
 * the placeholders do not match the items (count or kind, message printed). */
int64_t cli_media_positions(const char *cmd, const cli_media_tokens *t, const int32_t *ids, size_t n,
                            const cli_media *items, size_t n_items);

/* Runs the prompt: text ids through g4_decode, each placeholder replaced by
 * begin marker + rows (g4_decode_embd) + end marker.  The sampler (may be
 * NULL) accepts the text and marker ids.  Returns false with a message. */
bool cli_media_prefill(const char *cmd, g4_context *ctx, g4_sampler *smp, const cli_media_tokens *t,
                       const int32_t *ids, size_t n, const cli_media *items, size_t n_items, bool quiet);

/* Largest image block of the items (for the context's n_batch). */
uint32_t cli_media_max_block(const cli_media *items, size_t n);

#endif
