/* mmproj.c - placeholder until the projector lands (helper: mmproj). */
#include <stdlib.h>
#include "gemma4.h"
#include "model/model.h"
g4_mmproj_params g4_mmproj_default_params(void) { g4_mmproj_params p = { true, 0 }; return p; }
g4_status g4_mmproj_load(const char *p, const g4_mmproj_params *pp, g4_mmproj **o, char *e, size_t el)
{ (void)p; (void)pp; *o = NULL; return g4_fail(e, el, G4_ERR_UNSUPPORTED, "mmproj: not implemented yet"); }
void g4_mmproj_free(g4_mmproj *mm) { (void)mm; }
void g4_mmproj_get_info(const g4_mmproj *mm, g4_mmproj_info *o) { (void)mm; (void)o; }
g4_status g4_mmproj_check_model(const g4_mmproj *mm, const g4_model *m, char *e, size_t el)
{ (void)mm; (void)m; return g4_fail(e, el, G4_ERR_UNSUPPORTED, "mmproj: not implemented yet"); }
g4_status g4_mmproj_embed_image(g4_mmproj *mm, const g4_image *i, uint32_t mt, g4_embedding *o, char *e, size_t el)
{ (void)mm; (void)i; (void)mt; (void)o; return g4_fail(e, el, G4_ERR_UNSUPPORTED, "mmproj: not implemented yet"); }
g4_status g4_mmproj_embed_audio(g4_mmproj *mm, const float *s, uint64_t n, g4_embedding *o, char *e, size_t el)
{ (void)mm; (void)s; (void)n; (void)o; return g4_fail(e, el, G4_ERR_UNSUPPORTED, "mmproj: not implemented yet"); }
void g4_embedding_free(g4_embedding *e) { if (e) { free(e->rows); e->rows = NULL; } }
