/* audio.c - placeholder until the audio decoder lands (helper: media-io). */
#include <stdlib.h>
#include "gemma4.h"
#include "model/model.h"
g4_status g4_audio_decode(const void *d, size_t n, double ms, g4_audio *o, char *e, size_t el)
{ (void)d; (void)n; (void)ms; (void)o; return g4_fail(e, el, G4_ERR_UNSUPPORTED, "audio: not implemented yet"); }
g4_status g4_audio_load(const char *p, double ms, g4_audio *o, char *e, size_t el)
{ (void)p; (void)ms; (void)o; return g4_fail(e, el, G4_ERR_UNSUPPORTED, "audio: not implemented yet"); }
void g4_audio_free(g4_audio *a) { if (a) { free(a->samples); a->samples = NULL; } }
