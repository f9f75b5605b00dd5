/*
 * tokenizer.h - Gemma 4 tokenizer (GGUF tokenizer.ggml.model = "gemma4"):
 * rank BPE over UTF-8 code points with SentencePiece-style spaces (U+2581),
 * newline-run pre-splitting, <0xHH> byte fallback and llama.cpp's special-
 * token partition; plus a streaming detokenizer.  See docs/tokenizer.md.
 *
 * Internal interface; the public one is the "text: tokenizer" part of
 * gemma4.h (implemented in tokenizer.c on top of this).
 */
#ifndef G4_TOKENIZER_H
#define G4_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gemma4.h"
#include "gguf/gguf.h"

typedef struct g4_tokenizer g4_tokenizer;

/* GGUF token types (tokenizer.ggml.token_type). */
enum {
    G4_TT_NORMAL = 1, G4_TT_UNKNOWN = 2, G4_TT_CONTROL = 3,
    G4_TT_USER_DEFINED = 4, G4_TT_UNUSED = 5, G4_TT_BYTE = 6
};

/* Builds the tokenizer from the file's metadata.  Always returns a handle
 * (NULL only when out of memory): when the file has no tokenizer, or an
 * unsupported or malformed one, the handle is "unusable" and carries the
 * reason, which every call then reports (g4_tokenizer_error). */
g4_tokenizer *g4_tokenizer_load(const gguf_file *f);
void          g4_tokenizer_free(g4_tokenizer *t);
/* NULL when usable; else the one-line reason it is not. */
const char   *g4_tokenizer_error(const g4_tokenizer *t);

/* Encodes text[0..len).  Writes min(needed, cap) ids to out and the needed
 * count to *n_out.  Needed <= len + 1 always.  Invalid UTF-8 is refused
 * (G4_ERR_INVALID, message with the byte offset).  cap < needed:
 * G4_ERR_INVALID with *n_out = needed. */
g4_status g4_tokenizer_encode(const g4_tokenizer *t, const char *text, size_t len,
                              bool add_bos, bool parse_special, int32_t *out, size_t cap,
                              size_t *n_out, char *err, size_t errlen);

uint32_t    g4_tokenizer_n_vocab(const g4_tokenizer *t);
int32_t     g4_tokenizer_bos(const g4_tokenizer *t);
int32_t     g4_tokenizer_eos(const g4_tokenizer *t);
bool        g4_tokenizer_is_eog(const g4_tokenizer *t, int32_t id);
/* Raw vocabulary text (NUL-terminated; *len may be NULL) or NULL. */
const char *g4_tokenizer_text(const g4_tokenizer *t, int32_t id, size_t *len);
int         g4_tokenizer_type(const g4_tokenizer *t, int32_t id); /* G4_TT_*, 0 if bad id */
/* Id of an exact vocabulary string, or -1. */
int32_t     g4_tokenizer_find(const g4_tokenizer *t, const char *s, size_t len);
/* Longest token text in bytes. */
size_t      g4_tokenizer_max_len(const g4_tokenizer *t);

#endif
