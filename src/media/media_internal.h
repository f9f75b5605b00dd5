/* media_internal.h - helpers shared by the image and audio decoders
 * (src/media/image.c, resize.c, audio.c).  Not part of the public API. */
#ifndef G4_MEDIA_INTERNAL_H
#define G4_MEDIA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "gemma4.h"

/* A whole input file in memory: mapped when it is a regular file (no copy,
 * so a long WAV costs no extra RAM), read otherwise (pipes, /dev/stdin). */
typedef struct {
    const uint8_t *data;
    size_t len;
    void *map;      /* mmap'd region, or NULL */
    size_t map_len;
    uint8_t *heap;  /* malloc'd copy, or NULL */
} g4_media_file;

/* Files larger than max_bytes are refused (what names the caller:
 * "image" / "audio").  G4_ERR_IO when the file cannot be opened or read. */
g4_status g4_media_file_open(const char *path, uint64_t max_bytes, const char *what,
                             g4_media_file *f, char *err, size_t errlen);
void      g4_media_file_close(g4_media_file *f);

/* g4_fail's contract, plus: a library's message (libjpeg, libpng, giflib,
 * libsndfile) may end in a newline or period; the one-line rule holds
 * because control characters become spaces. */
g4_status g4_media_fail(char *err, size_t errlen, g4_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
