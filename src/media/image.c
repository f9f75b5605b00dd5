/* image.c - placeholder until the image decoder lands (helper: media-io). */
#include <stdlib.h>
#include "gemma4.h"
#include "model/model.h"
g4_status g4_image_decode(const void *d, size_t n, uint64_t mp, g4_image *o, char *e, size_t el)
{ (void)d; (void)n; (void)mp; (void)o; return g4_fail(e, el, G4_ERR_UNSUPPORTED, "images: not implemented yet"); }
g4_status g4_image_load(const char *p, uint64_t mp, g4_image *o, char *e, size_t el)
{ (void)p; (void)mp; (void)o; return g4_fail(e, el, G4_ERR_UNSUPPORTED, "images: not implemented yet"); }
void g4_image_free(g4_image *img) { if (img) { free(img->rgb); img->rgb = NULL; } }
g4_status g4_image_fit(uint32_t w, uint32_t h, uint32_t m, uint32_t *ow, uint32_t *oh, char *e, size_t el)
{ (void)w; (void)h; (void)m; (void)ow; (void)oh; return g4_fail(e, el, G4_ERR_UNSUPPORTED, "images: not implemented yet"); }
g4_status g4_image_resize(const g4_image *s, uint32_t w, uint32_t h, g4_image *o, char *e, size_t el)
{ (void)s; (void)w; (void)h; (void)o; return g4_fail(e, el, G4_ERR_UNSUPPORTED, "images: not implemented yet"); }
