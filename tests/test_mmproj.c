/*
 * test_mmproj.c - the gemma4uv / gemma4ua projector (src/media/mmproj.c).
 *
 *  - each step of the vision embedder (spec §2.8) on tiny generated
 *    projectors against a double-precision computation written here from the
 *    spec, with the weights read from the file by name through the GGUF
 *    reader (not through the projector's own binding);
 *  - the patch vector's (C,Y,X) layout and the row-major patch order, from
 *    pixel values that encode their own coordinates;
 *  - audio (§3.3): token counts ceil(n/640), the padded last frame, silence,
 *    non-finite and empty input;
 *  - loader errors: files rewritten from a good one with one thing broken.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gemma4.h"
#include "gguf/gguf.h"
#include "kernels/quant.h"
#include "media/mmproj_internal.h"
#include "media/testmmproj.h"
#include "model/testmodel.h"
#include "testutil.h"

static char dir[256];

/* Paths in a ring of buffers: valid for the next 15 calls (keep a copy
 * for longer). */
static const char *tmp(const char *file)
{
    static char path[16][512];
    static int k;
    k = (k + 1) % 16;
    snprintf(path[k], sizeof path[k], "%s/%s", dir, file);
    return path[k];
}

/* The tiny projector most tests use: 6-px patches (D = 108). */
static void tiny_params(g4_test_mmproj_params *p)
{
    g4_test_mmproj_default_params(p);
    p->n_embd = 24;
    p->vision_width = 40;
    p->n_pos = 24;
    p->patch_size = 2;
    p->image_mean[0] = 0.5f; p->image_mean[1] = 0.4f; p->image_mean[2] = 0.3f;
    p->image_std[0] = 0.25f; p->image_std[1] = 0.5f; p->image_std[2] = 2.0f;
    p->vision_eps = 1e-6f;
    p->seed = 42;
    p->n_threads = 2;
}

static const char *make(const char *file, const g4_test_mmproj_params *p)
{
    const char *path = tmp(file);
    char err[512];
    if (g4_make_test_mmproj(p, path, err, sizeof err) != 0) {
        fprintf(stderr, "g4_make_test_mmproj %s: %s\n", file, err);
        return NULL;
    }
    return path;
}

static g4_mmproj *load(const char *path, int threads)
{
    g4_mmproj_params mp = g4_mmproj_default_params();
    mp.n_threads = threads;
    g4_mmproj *mm = NULL;
    char err[512];
    g4_status st = g4_mmproj_load(path, &mp, &mm, err, sizeof err);
    CHECKF(st == G4_OK, "load %s: %s", path, err);
    return mm;
}

/* ------------------------------------------------------------ reference weights */

/* A whole tensor, dequantized to double; NULL when absent. */
static double *tensor(gguf_file *f, const char *name, uint64_t *n)
{
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return NULL;
    float *tmpf = malloc(sizeof(float) * t->n_elements);
    double *d = malloc(sizeof(double) * t->n_elements);
    g4_dequantize_row(t->type, t->data, tmpf, (int64_t)t->n_elements);
    for (uint64_t i = 0; i < t->n_elements; i++) d[i] = tmpf[i];
    free(tmpf);
    if (n) *n = t->n_elements;
    return d;
}

typedef struct {
    gguf_file *f;
    uint32_t D, W, E, n_pos, P, F;
    double mean[3], sd[3], eps;
    double *g1, *b1, *dense, *bias, *g2, *b2, *pos, *g3, *b3, *proj, *proj_a;
} refw;

static bool ref_open(refw *R, const char *path)
{
    memset(R, 0, sizeof *R);
    char err[256];
    if (gguf_open(path, &R->f, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); return false; }
    uint64_t n;
    const gguf_tensor *t = gguf_find_tensor(R->f, "v.patch_embd.weight");
    if (t) {
        R->D = (uint32_t)t->ne[0];
        R->W = (uint32_t)t->ne[1];
        R->P = (uint32_t)lrint(sqrt(R->D / 3.0));
        R->g1 = tensor(R->f, "v.patch_norm.1.weight", NULL);
        R->b1 = tensor(R->f, "v.patch_norm.1.bias", NULL);
        R->dense = tensor(R->f, "v.patch_embd.weight", NULL);
        R->bias = tensor(R->f, "v.patch_embd.bias", NULL);
        R->g2 = tensor(R->f, "v.patch_norm.2.weight", NULL);
        R->b2 = tensor(R->f, "v.patch_norm.2.bias", NULL);
        R->pos = tensor(R->f, "v.position_embd.weight", &n);
        R->n_pos = (uint32_t)(n / 2 / R->W);
        R->g3 = tensor(R->f, "v.patch_norm.3.weight", NULL);
        R->b3 = tensor(R->f, "v.patch_norm.3.bias", NULL);
        R->proj = tensor(R->f, "mm.input_projection.weight", &n);
        R->E = (uint32_t)(n / R->W);
        const gguf_kv *m = gguf_find_kv(R->f, "clip.vision.image_mean"), *s = gguf_find_kv(R->f, "clip.vision.image_std");
        for (int c = 0; c < 3; c++) {
            R->mean[c] = m ? gguf_arr_float(m, (uint64_t)c) : 0.0;
            R->sd[c] = s ? gguf_arr_float(s, (uint64_t)c) : 1.0;
        }
        double e;
        R->eps = gguf_get_float(R->f, "clip.vision.attention.layer_norm_epsilon", &e) == 0 ? e : 1e-6;
    }
    t = gguf_find_tensor(R->f, "mm.a.input_projection.weight");
    if (t) {
        R->F = (uint32_t)t->ne[0];
        R->E = (uint32_t)t->ne[1];
        R->proj_a = tensor(R->f, "mm.a.input_projection.weight", NULL);
    }
    return true;
}

static void ref_close(refw *R)
{
    double *v[] = { R->g1, R->b1, R->dense, R->bias, R->g2, R->b2, R->pos, R->g3, R->b3, R->proj, R->proj_a };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) free(v[i]);
    gguf_close(R->f);
}

/* y = LayerNorm(x) * g + b over n, eps 1e-5, population variance (spec §2.8) */
static void ref_ln(double *x, const double *g, const double *b, uint32_t n)
{
    double mu = 0, var = 0;
    for (uint32_t i = 0; i < n; i++) mu += x[i];
    mu /= n;
    for (uint32_t i = 0; i < n; i++) var += (x[i] - mu) * (x[i] - mu);
    var /= n;
    for (uint32_t i = 0; i < n; i++) x[i] = (x[i] - mu) / sqrt(var + 1e-5) * g[i] + b[i];
}

static void ref_matvec(const double *w, const double *x, double *y, uint32_t rows, uint32_t cols)
{
    for (uint32_t r = 0; r < rows; r++) {
        double s = 0;
        for (uint32_t c = 0; c < cols; c++) s += w[(size_t)r * cols + c] * x[c];
        y[r] = s;
    }
}

enum { ST_LN1, ST_DENSE, ST_LN2, ST_POS, ST_POSNORM, ST_RMS, ST_OUT, N_ST };
static const char *const st_name[N_ST] = { "LN1", "dense+bias", "LN2", "+pos", "pos_norm", "RMSNorm", "projection" };

/* The seven steps of §2.8 for one patch vector v (D values). st[k] must hold
 * D (LN1), W (steps 2-6) or E (output) doubles. */
static void ref_patch(const refw *R, const double *v, uint32_t col, uint32_t row, double *st[N_ST])
{
    const uint32_t D = R->D, W = R->W;
    memcpy(st[ST_LN1], v, D * sizeof(double));
    ref_ln(st[ST_LN1], R->g1, R->b1, D);
    ref_matvec(R->dense, st[ST_LN1], st[ST_DENSE], W, D);
    for (uint32_t i = 0; i < W; i++) st[ST_DENSE][i] += R->bias[i];
    memcpy(st[ST_LN2], st[ST_DENSE], W * sizeof(double));
    ref_ln(st[ST_LN2], R->g2, R->b2, W);
    /* ggml ne [W, n_pos, 2]: x-table row col, y-table row row (§2.7) */
    for (uint32_t i = 0; i < W; i++)
        st[ST_POS][i] = st[ST_LN2][i] + R->pos[(size_t)col * W + i] + R->pos[((size_t)R->n_pos + row) * W + i];
    memcpy(st[ST_POSNORM], st[ST_POS], W * sizeof(double));
    ref_ln(st[ST_POSNORM], R->g3, R->b3, W);
    double ss = 0;
    for (uint32_t i = 0; i < W; i++) ss += st[ST_POSNORM][i] * st[ST_POSNORM][i];
    for (uint32_t i = 0; i < W; i++) st[ST_RMS][i] = st[ST_POSNORM][i] / sqrt(ss / W + R->eps);
    ref_matvec(R->proj, st[ST_RMS], st[ST_OUT], R->E, W);
}

/* The patch vector straight from the spec's index formula (§2.6). */
static void ref_patch_vector(const refw *R, const g4_image *img, uint32_t col, uint32_t row, double *v)
{
    const uint32_t P = R->P;
    for (uint32_t c = 0; c < 3; c++)
        for (uint32_t y = 0; y < P; y++)
            for (uint32_t x = 0; x < P; x++) {
                size_t px = ((size_t)(row * P + y) * img->width + col * P + x) * 3 + c;
                v[c * P * P + y * P + x] = (img->rgb[px] / 255.0 - R->mean[c]) / R->sd[c];
            }
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const double *b, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]);
        if (!(e <= d)) d = e; /* NaN shows as a failure */
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    return s > 0 ? d / s : d;
}

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

static g4_image noise_image(uint32_t w, uint32_t h, uint64_t seed)
{
    g4_image img = { w, h, malloc((size_t)w * h * 3) };
    for (size_t i = 0; i < (size_t)w * h * 3; i++) img.rgb[i] = (uint8_t)lcg(&seed);
    return img;
}

/* ------------------------------------------------------------ vision */

static void test_patch_vector(const char *path)
{
    g4_mmproj *mm = load(path, 1);
    if (!mm) return;
    g4_mmproj_info in;
    g4_mmproj_get_info(mm, &in);
    CHECK(in.patch == 6);
    /* each byte tells where it came from: x, y, channel */
    g4_image img = { 18, 12, malloc(18 * 12 * 3) };
    for (uint32_t y = 0; y < 12; y++)
        for (uint32_t x = 0; x < 18; x++)
            for (uint32_t c = 0; c < 3; c++) img.rgb[(y * 18 + x) * 3 + c] = (uint8_t)(x + 20 * y + 7 * c);
    float v[108];
    g4_mmproj_patch_vector(mm, &img, 2, 1, v); /* pixels x 12..17, y 6..11 */
    int bad = 0;
    for (uint32_t c = 0; c < 3; c++)
        for (uint32_t y = 0; y < 6; y++)
            for (uint32_t x = 0; x < 6; x++) {
                double u = (12 + x) + 20 * (6 + y) + 7 * c;
                double want = (u / 255.0 - in.image_mean[c]) / in.image_std[c];
                if (fabs(v[c * 36 + y * 6 + x] - want) > 1e-6) bad++;
            }
    CHECKF(bad == 0, "%d elements of the (C,Y,X) patch vector are wrong", bad);
    /* a hand-picked element: channel 2, y 3, x 4 of patch (2,1) = pixel (16, 9) */
    double u = 16 + 20 * 9 + 14;
    CHECK(fabs(v[2 * 36 + 3 * 6 + 4] - (u / 255.0 - 0.3) / 2.0) < 1e-6);
    g4_image_free(&img);
    g4_mmproj_free(mm);
}

/* Every step of §2.8 against the double reference, for patches chosen to
 * hit the corners: a flat patch (LN1 variance 0), saturated 0/255 contrast,
 * noise; positions 0 and n_pos-1 on both axes. */
static void test_steps(const char *path, const char *what, double tol)
{
    g4_mmproj *mm = load(path, 3);
    refw R;
    if (!mm || !ref_open(&R, path)) { g4_mmproj_free(mm); return; }
    g4_mmproj_info in;
    g4_mmproj_get_info(mm, &in);
    CHECK(in.vision_width == R.W && in.n_embd == R.E && in.n_pos == R.n_pos && in.patch == R.P);
    enum { N = 6 };
    const uint32_t D = R.D, W = R.W, E = R.E;
    uint32_t cols[N] = { 0, R.n_pos - 1, 3, 0, 5, R.n_pos - 1 }, rows[N] = { 0, 0, 7, R.n_pos - 1, 2, R.n_pos - 1 };
    float *x = malloc(sizeof(float) * N * D);
    uint64_t seed = 99;
    for (uint32_t i = 0; i < N; i++)
        for (uint32_t k = 0; k < D; k++) {
            float val;
            if (i == 0) val = 0.25f;                                   /* flat */
            else if (i == 1) val = (k / 7) % 2 ? 4.0f : -2.0f;         /* hard contrast */
            else val = (float)((double)lcg(&seed) / 2147483648.0 * 2.0 - 1.0);
            x[(size_t)i * D + k] = val;
        }
    float *tr[N_ST], *out = malloc(sizeof(float) * N * E);
    for (int s = 0; s < N_ST - 1; s++) tr[s] = malloc(sizeof(float) * N * (s == ST_LN1 ? D : W));
    g4_mmproj_trace trace = { tr[ST_LN1], tr[ST_DENSE], tr[ST_LN2], tr[ST_POS], tr[ST_POSNORM], tr[ST_RMS] };
    char err[256];
    g4_status st = g4_mmproj_vision_rows(mm, x, cols, rows, N, out, &trace, err, sizeof err);
    CHECKF(st == G4_OK, "%s", err);
    tr[ST_OUT] = out;
    double worst[N_ST] = { 0 };
    double *ref[N_ST], v[4096];
    for (int s = 0; s < N_ST; s++) ref[s] = malloc(sizeof(double) * (D > W ? (D > E ? D : E) : (W > E ? W : E)));
    for (uint32_t i = 0; i < N && st == G4_OK; i++) {
        for (uint32_t k = 0; k < D; k++) v[k] = x[(size_t)i * D + k];
        ref_patch(&R, v, cols[i], rows[i], ref);
        for (int s = 0; s < N_ST; s++) {
            uint32_t n = s == ST_LN1 ? D : s == ST_OUT ? E : W;
            double e = rel_err(tr[s] + (size_t)i * n, ref[s], n);
            if (e > worst[s] || isnan(e)) worst[s] = isnan(e) ? INFINITY : e;
        }
        if (i == 0) { /* flat patch: variance 0, LN1 gives exactly its bias */
            int off = 0;
            for (uint32_t k = 0; k < D; k++) off += tr[ST_LN1][k] != (float)R.b1[k];
            CHECKF(off == 0, "%s: flat patch: %d LN1 values differ from the bias", what, off);
        }
    }
    printf("  %s: max rel. error per step:", what);
    for (int s = 0; s < N_ST; s++) printf(" %s %.1e", st_name[s], worst[s]);
    printf("\n");
    for (int s = 0; s < N_ST; s++) CHECKF(worst[s] <= tol, "%s: step %s error %g > %g", what, st_name[s], worst[s], tol);
    /* the input is not modified */
    CHECK(x[0] == 0.25f);
    for (int s = 0; s < N_ST; s++) { free(ref[s]); if (s != ST_OUT) free(tr[s]); }
    free(out);
    free(x);
    ref_close(&R);
    g4_mmproj_free(mm);
}

/* A whole image through g4_mmproj_embed_sized against the reference built
 * from the pixels: patch order (row-major), positions (col, row), and more
 * patches than one batch. */
static void test_embed_sized(const char *path, uint32_t w, uint32_t h, double tol)
{
    g4_mmproj *mm = load(path, 4);
    refw R;
    if (!mm || !ref_open(&R, path)) { g4_mmproj_free(mm); return; }
    g4_image img = noise_image(w, h, w * 31 + h);
    /* a flat region covering patch (0,0) */
    for (uint32_t y = 0; y < R.P; y++)
        for (uint32_t x = 0; x < R.P; x++) memset(img.rgb + ((size_t)y * w + x) * 3, 77, 3);
    g4_embedding e;
    char err[256];
    g4_status st = g4_mmproj_embed_sized(mm, &img, &e, err, sizeof err);
    CHECKF(st == G4_OK, "%s", err);
    const uint32_t gw = w / R.P, gh = h / R.P;
    if (st == G4_OK) {
        CHECK(e.n_tokens == gw * gh && e.n_embd == R.E && e.grid_w == gw && e.grid_h == gh && e.width == w &&
              e.height == h);
        double *ref[N_ST], *v = malloc(sizeof(double) * R.D), worst = 0;
        for (int s = 0; s < N_ST; s++) ref[s] = malloc(sizeof(double) * (R.D + R.W + R.E));
        for (uint32_t r = 0; r < gh; r++)
            for (uint32_t c = 0; c < gw; c++) {
                ref_patch_vector(&R, &img, c, r, v);
                ref_patch(&R, v, c, r, ref);
                double er = rel_err(e.rows + ((size_t)r * gw + c) * R.E, ref[ST_OUT], R.E);
                if (!(er <= worst)) worst = er;
            }
        printf("  image %ux%u (%u patches): max rel. error %.2e\n", w, h, gw * gh, worst);
        CHECKF(worst <= tol, "embed_sized %ux%u: %g", w, h, worst);
        for (int s = 0; s < N_ST; s++) free(ref[s]);
        free(v);
        /* one thread gives the same bits: rows are independent of the split */
        g4_mmproj *m1 = load(path, 1);
        g4_embedding e1;
        if (m1 && g4_mmproj_embed_sized(m1, &img, &e1, err, sizeof err) == G4_OK) {
            CHECK(memcmp(e1.rows, e.rows, sizeof(float) * e.n_tokens * e.n_embd) == 0);
            g4_embedding_free(&e1);
        } else CHECKF(0, "%s", err);
        g4_mmproj_free(m1);
        g4_embedding_free(&e);
        CHECK(e.rows == NULL && e.n_tokens == 0);
    }
    g4_image_free(&img);
    ref_close(&R);
    g4_mmproj_free(mm);
}

static void test_vision_errors(const char *path)
{
    g4_mmproj *mm = load(path, 2);
    if (!mm) return;
    g4_mmproj_info in;
    g4_mmproj_get_info(mm, &in);
    char err[256] = "";
    g4_embedding e;
    /* sides not multiples of the patch */
    g4_image img = noise_image(20, 12, 1);
    CHECK(g4_mmproj_embed_sized(mm, &img, &e, err, sizeof err) == G4_ERR_INVALID && strstr(err, "multiples"));
    CHECK(e.rows == NULL);
    g4_image_free(&img);
    /* a grid wider than the position table */
    img = noise_image(6 * (in.n_pos + 1), 6, 2);
    CHECK(g4_mmproj_embed_sized(mm, &img, &e, err, sizeof err) == G4_ERR_INVALID && strstr(err, "position table"));
    g4_image_free(&img);
    img = noise_image(6, 6 * in.n_pos, 3); /* exactly n_pos rows: fine */
    CHECKF(g4_mmproj_embed_sized(mm, &img, &e, err, sizeof err) == G4_OK, "%s", err);
    CHECK(e.n_tokens == in.n_pos && e.grid_w == 1 && e.grid_h == in.n_pos);
    g4_embedding_free(&e);
    g4_image_free(&img);
    float x[108] = { 0 }, out[24];
    uint32_t c = in.n_pos, r = 0;
    CHECK(g4_mmproj_vision_rows(mm, x, &c, &r, 1, out, NULL, err, sizeof err) == G4_ERR_INVALID &&
          strstr(err, "outside"));
    /* images need the 12B's 48-px patch (g4_image_fit's alignment) */
    img = noise_image(48, 48, 4);
    CHECK(g4_mmproj_embed_image(mm, &img, 280, &e, err, sizeof err) == G4_ERR_UNSUPPORTED && strstr(err, "48"));
    g4_image_free(&img);
    g4_image empty = { 0, 0, NULL };
    CHECK(g4_mmproj_embed_sized(mm, &empty, &e, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_mmproj_embed_image(mm, NULL, 280, &e, err, sizeof err) == G4_ERR_INVALID);
    g4_mmproj_free(mm);
}

/* The public entry point with real 48-px patches: an image already at its
 * fitted size is embedded as it is (no resize), and a resized one equals
 * g4_image_resize followed by the embedder. */
static void test_embed_image(void)
{
    g4_test_mmproj_params p;
    g4_test_mmproj_default_params(&p);
    p.n_embd = 16;
    p.vision_width = 32;
    p.n_pos = 64;
    p.type = G4_TYPE_F16;
    p.seed = 5;
    const char *path = make("p48.gguf", &p);
    if (!path) { CHECK(0); return; }
    g4_mmproj *mm = load(path, 4);
    if (!mm) return;
    char err[256];
    g4_image img = noise_image(768, 768, 8);
    g4_embedding a, b;
    g4_status st = g4_mmproj_embed_image(mm, &img, 280, &a, err, sizeof err);
    CHECKF(st == G4_OK, "%s", err);
    if (st == G4_OK) {
        CHECK(a.n_tokens == 256 && a.grid_w == 16 && a.grid_h == 16 && a.width == 768 && a.height == 768);
        CHECK(g4_mmproj_embed_sized(mm, &img, &b, err, sizeof err) == G4_OK);
        CHECK(b.rows && memcmp(a.rows, b.rows, sizeof(float) * 256 * 16) == 0);
        g4_embedding_free(&b);
    }
    g4_embedding_free(&a);
    CHECK(g4_mmproj_embed_image(mm, &img, 100, &a, err, sizeof err) == G4_ERR_INVALID);
    g4_image_free(&img);

    img = noise_image(224, 160, 9);
    uint32_t fw = 0, fh = 0;
    g4_image rs = { 0, 0, NULL };
    if (g4_image_fit(224, 160, 70, &fw, &fh, err, sizeof err) == G4_OK &&
        g4_image_resize(&img, fw, fh, &rs, err, sizeof err) == G4_OK) {
        st = g4_mmproj_embed_image(mm, &img, 70, &a, err, sizeof err);
        CHECKF(st == G4_OK, "%s", err);
        if (st == G4_OK) {
            CHECK(a.width == fw && a.height == fh && a.n_tokens == (fw / 48) * (fh / 48) && a.n_tokens <= 70);
            CHECK(g4_mmproj_embed_sized(mm, &rs, &b, err, sizeof err) == G4_OK);
            CHECK(b.rows && memcmp(a.rows, b.rows, sizeof(float) * a.n_tokens * 16) == 0);
            g4_embedding_free(&b);
        }
        g4_embedding_free(&a);
    } else {
        printf("  SKIP resized g4_mmproj_embed_image: %s\n", err);
    }
    g4_image_free(&rs);
    g4_image_free(&img);
    g4_mmproj_free(mm);
}

/* ------------------------------------------------------------ audio */

static void test_audio(const char *path)
{
    g4_mmproj *mm = load(path, 3);
    refw R;
    if (!mm || !ref_open(&R, path)) { g4_mmproj_free(mm); return; }
    g4_mmproj_info in;
    g4_mmproj_get_info(mm, &in);
    CHECK(in.has_audio && !strcmp(in.audio_type, "gemma4ua") && in.audio_frame == 640 && in.audio_rate == 16000);
    char err[256];
    g4_embedding e;
    const uint64_t lens[] = { 1, 639, 640, 641, 1280, 32333 };
    const uint32_t want[] = { 1, 1, 1, 2, 2, 51 };
    float *s = malloc(sizeof(float) * 32333);
    uint64_t seed = 3;
    for (int i = 0; i < 32333; i++)
        s[i] = (float)(((double)lcg(&seed) / 2147483648.0 - 0.5) * (i < 16000 ? 0.01 : 1.6));
    double worst = 0;
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        g4_status st = g4_mmproj_embed_audio(mm, s, lens[k], &e, err, sizeof err);
        CHECKF(st == G4_OK, "%s", err);
        if (st != G4_OK) continue;
        CHECKF(e.n_tokens == want[k], "%llu samples: %u tokens, want %u", (unsigned long long)lens[k], e.n_tokens, want[k]);
        CHECK(e.n_embd == in.n_embd && e.width == 0 && e.grid_w == 0);
        /* reference: pad with zeros, RMSNorm over all 640 (eps 1e-6), project */
        double fr[640], y[64];
        for (uint32_t t = 0; t < e.n_tokens && in.n_embd <= 64; t++) {
            double ss = 0;
            for (uint32_t i = 0; i < 640; i++) {
                uint64_t j = (uint64_t)t * 640 + i;
                fr[i] = j < lens[k] ? s[j] : 0.0;
                ss += fr[i] * fr[i];
            }
            for (uint32_t i = 0; i < 640; i++) fr[i] /= sqrt(ss / 640 + 1e-6);
            ref_matvec(R.proj_a, fr, y, in.n_embd, 640);
            double er = rel_err(e.rows + (size_t)t * in.n_embd, y, in.n_embd);
            if (!(er <= worst)) worst = er;
        }
        g4_embedding_free(&e);
    }
    printf("  audio: max rel. error %.2e (lengths 1..32333, padded last frames)\n", worst);
    CHECKF(worst <= 1e-5, "audio error %g", worst);

    /* silence: 0 / sqrt(1e-6) = 0, never NaN */
    float *z = calloc(16000, sizeof(float));
    CHECK(g4_mmproj_embed_audio(mm, z, 16000, &e, err, sizeof err) == G4_OK);
    CHECK(e.n_tokens == 25);
    bool fin = e.rows != NULL;
    for (size_t i = 0; fin && i < (size_t)e.n_tokens * e.n_embd; i++) fin = e.rows[i] == 0.0f;
    CHECKF(fin, "silent audio must give finite (zero) rows");
    g4_embedding_free(&e);
    /* a quiet frame is normalised up: its rows have the size of a loud one's */
    for (int i = 0; i < 640; i++) z[i] = 1e-3f * (i % 2 ? 1.0f : -1.0f), z[640 + i] = i % 2 ? 0.5f : -0.5f;
    CHECK(g4_mmproj_embed_audio(mm, z, 1280, &e, err, sizeof err) == G4_OK);
    if (e.rows) {
        double n0 = 0, n1 = 0;
        for (uint32_t i = 0; i < e.n_embd; i++) n0 += e.rows[i] * e.rows[i], n1 += e.rows[e.n_embd + i] * e.rows[e.n_embd + i];
        /* x / sqrt(mean x^2 + eps): 1e-3 / sqrt(1e-6 + 1e-6) vs ~1: ratio 1/sqrt(2) */
        CHECKF(fabs(sqrt(n0 / n1) - sqrt(0.5)) < 1e-3, "quiet/loud row ratio %g", sqrt(n0 / n1));
    }
    g4_embedding_free(&e);
    free(z);

    CHECK(g4_mmproj_embed_audio(mm, s, 0, &e, err, sizeof err) == G4_ERR_INVALID && e.rows == NULL);
    s[700] = NAN;
    CHECK(g4_mmproj_embed_audio(mm, s, 1000, &e, err, sizeof err) == G4_ERR_INVALID && strstr(err, "700"));
    s[700] = INFINITY;
    CHECK(g4_mmproj_embed_audio(mm, s, 1000, &e, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_mmproj_embed_audio(mm, NULL, 10, &e, err, sizeof err) == G4_ERR_INVALID);
    free(s);
    ref_close(&R);
    g4_mmproj_free(mm);
}

/* ------------------------------------------------------------ loader errors */

/* A copy of src with one thing changed.  Keys are copied raw, then the
 * override (a repeated key replaces the earlier value). */
typedef struct {
    const char *drop_kv;
    const char *str_key, *str_val;
    const char *u32_key;
    uint32_t    u32_val;
    const char *bool_key;
    bool        bool_val;
    const char *f32_key;
    float       f32_val;
    const char *arr_key;
    const float *arr;
    uint64_t    arr_n;
    const char *drop_tensor;
    const char *shape_tensor;   /* new shape, zero data */
    uint32_t    n_dims;
    uint64_t    ne[3];
    const char *type_tensor;    /* converted to new_type */
    uint32_t    new_type;
    const char *nan_tensor;     /* f32: element 0 becomes NaN */
} mutation;

static const char *rewrite(const char *src, const char *file, const mutation *m)
{
    const char *dst = tmp(file);
    char err[512];
    gguf_file *f;
    if (gguf_open(src, &f, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); return NULL; }
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        if (m->drop_kv && !strcmp(kv->key, m->drop_kv)) continue;
        gguf_w_raw(w, kv->key, kv->type, kv->arr_type, kv->n, kv->data);
    }
    if (m->str_key) gguf_w_str(w, m->str_key, m->str_val);
    if (m->u32_key) gguf_w_u32(w, m->u32_key, m->u32_val);
    if (m->bool_key) gguf_w_bool(w, m->bool_key, m->bool_val);
    if (m->f32_key) gguf_w_f32(w, m->f32_key, m->f32_val);
    if (m->arr_key) gguf_w_arr_f32(w, m->arr_key, m->arr, m->arr_n);
    const char *ok = dst;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (m->drop_tensor && !strcmp(t->name, m->drop_tensor)) continue;
        if (m->shape_tensor && !strcmp(t->name, m->shape_tensor))
            gguf_w_tensor(w, t->name, t->type, m->n_dims, m->ne, err, sizeof err);
        else if (m->type_tensor && !strcmp(t->name, m->type_tensor))
            gguf_w_tensor(w, t->name, m->new_type, t->n_dims, t->ne, err, sizeof err);
        else
            gguf_w_tensor(w, t->name, t->type, t->n_dims, t->ne, err, sizeof err);
    }
    if (gguf_w_begin(w, dst, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); ok = NULL; }
    for (uint64_t i = 0; ok && i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (m->drop_tensor && !strcmp(t->name, m->drop_tensor)) continue;
        if (m->shape_tensor && !strcmp(t->name, m->shape_tensor)) {
            uint64_t n = 1, rb;
            for (uint32_t d = 0; d < m->n_dims; d++) n *= m->ne[d];
            g4_row_size(t->type, n, &rb);
            void *z = calloc(1, rb);
            gguf_w_data(w, z, rb, err, sizeof err);
            free(z);
        } else if (m->type_tensor && !strcmp(t->name, m->type_tensor)) {
            uint64_t rb;
            g4_row_size(m->new_type, t->n_elements, &rb);
            float *x = malloc(sizeof(float) * t->n_elements);
            void *q = malloc(rb);
            g4_dequantize_row(t->type, t->data, x, (int64_t)t->n_elements);
            if (m->new_type == G4_TYPE_BF16)
                for (uint64_t k = 0; k < t->n_elements; k++) ((uint16_t *)q)[k] = g4_f32_to_bf16(x[k]);
            else
                g4_quantize_row(m->new_type, x, q, (int64_t)t->n_elements);
            gguf_w_data(w, q, rb, err, sizeof err);
            free(x);
            free(q);
        } else if (m->nan_tensor && !strcmp(t->name, m->nan_tensor)) {
            float *x = malloc(t->nbytes);
            memcpy(x, t->data, t->nbytes);
            x[0] = NAN;
            gguf_w_data(w, x, t->nbytes, err, sizeof err);
            free(x);
        } else {
            gguf_w_data(w, t->data, t->nbytes, err, sizeof err);
        }
        if (gguf_w_end_tensor(w, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); ok = NULL; }
    }
    if (ok && gguf_w_finish(w, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); ok = NULL; }
    gguf_writer_free(w);
    gguf_close(f);
    return ok;
}

/* Loading `path` fails with status st and a message containing want. */
static void expect_load_error(const char *what, const char *path, g4_status st, const char *want)
{
    if (!path) { CHECKF(0, "%s: could not write the file", what); return; }
    g4_mmproj *mm = (g4_mmproj *)1;
    char err[512] = "";
    g4_status got = g4_mmproj_load(path, NULL, &mm, err, sizeof err);
    CHECKF(got == st && mm == NULL && strstr(err, want) && !strchr(err, '\n'),
           "%s: status %d (want %d), message '%s' (want '%s')", what, got, st, err, want);
    if (got == G4_OK) g4_mmproj_free(mm);
}

static void test_loader_errors(const char *good)
{
    const mutation none = { 0 };
    mutation m;
    /* the rewriter itself keeps a good file good */
    const char *same = rewrite(good, "same.gguf", &none);
    g4_mmproj *mm = same ? load(same, 1) : NULL;
    CHECK(mm != NULL);
    g4_mmproj_free(mm);

#define MUT(file, ...) (m = none, (void)(__VA_ARGS__), rewrite(good, file, &m))
    expect_load_error("wrong arch", MUT("arch.gguf", m.str_key = "general.architecture", m.str_val = "gemma4"),
                      G4_ERR_FORMAT, "general.architecture is 'gemma4', not 'clip'");
    expect_load_error("no arch", MUT("noarch.gguf", m.drop_kv = "general.architecture"), G4_ERR_FORMAT,
                      "not an mmproj file");
    expect_load_error("gemma4v", MUT("v.gguf", m.str_key = "clip.vision.projector_type", m.str_val = "gemma4v"),
                      G4_ERR_UNSUPPORTED,
                      "projector type 'gemma4v' (E2B/E4B vision tower) is not supported; gemma4.c supports gemma4uv/gemma4ua (Gemma 4 12B Unified)");
    expect_load_error("gemma4a", MUT("a.gguf", m.str_key = "clip.audio.projector_type", m.str_val = "gemma4a"),
                      G4_ERR_UNSUPPORTED, "'gemma4a' (E2B/E4B audio tower) is not supported");
    expect_load_error("other projector", MUT("mlp.gguf", m.str_key = "clip.vision.projector_type", m.str_val = "mlp"),
                      G4_ERR_UNSUPPORTED, "'mlp' is not supported");
    expect_load_error("no projector type", MUT("nopt.gguf", m.drop_kv = "clip.vision.projector_type"), G4_ERR_FORMAT,
                      "clip.vision.projector_type");
    /* the file-wide key counts when the per-modality one is absent */
    {
        mutation a = none;
        a.drop_kv = "clip.audio.projector_type";
        a.str_key = "clip.projector_type";
        a.str_val = "gemma4ua";
        const char *p = rewrite(good, "global_pt.gguf", &a);
        g4_mmproj *x = p ? load(p, 1) : NULL;
        CHECK(x != NULL);
        g4_mmproj_free(x);
        a.str_val = "gemma4a";
        expect_load_error("file-wide gemma4a", rewrite(good, "global_pt2.gguf", &a), G4_ERR_UNSUPPORTED, "gemma4a");
    }
    expect_load_error("no encoders", MUT("none.gguf", m.drop_kv = "clip.has_vision_encoder",
                                         m.bool_key = "clip.has_audio_encoder", m.bool_val = false),
                      G4_ERR_FORMAT, "has no projector");
    {
        mutation a = none;
        a.drop_kv = "clip.has_vision_encoder";
        const char *p = rewrite(good, "audio_only.gguf", &a);
        /* has_audio_encoder as an integer is the wrong type */
        expect_load_error("has_audio_encoder not bool", MUT("hae.gguf", m.u32_key = "clip.has_audio_encoder", m.u32_val = 1),
                          G4_ERR_FORMAT, "clip.has_audio_encoder");
        g4_mmproj *x = p ? load(p, 1) : NULL;
        if (x) {
            g4_mmproj_info in;
            g4_mmproj_get_info(x, &in);
            CHECK(!in.has_vision && in.has_audio && in.vision_type[0] == 0);
            g4_embedding e;
            char err[256];
            g4_image img = noise_image(48, 48, 1);
            CHECK(g4_mmproj_embed_image(x, &img, 280, &e, err, sizeof err) == G4_ERR_UNSUPPORTED && strstr(err, "vision"));
            g4_image_free(&img);
        }
        g4_mmproj_free(x);
    }
    const char *tensors[] = { "v.patch_norm.1.weight", "v.patch_norm.1.bias", "v.patch_embd.weight",
                              "v.patch_embd.bias", "v.patch_norm.2.weight", "v.patch_norm.2.bias",
                              "v.position_embd.weight", "v.patch_norm.3.weight", "v.patch_norm.3.bias",
                              "mm.input_projection.weight", "mm.a.input_projection.weight" };
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++) {
        char want[96];
        snprintf(want, sizeof want, "missing tensor '%s'", tensors[i]);
        expect_load_error(want, MUT("missing.gguf", m.drop_tensor = tensors[i]), G4_ERR_FORMAT, want);
    }
    /* shapes (tiny: D = 108, W = 40, n_pos 24, E = 24, frame 640) */
    expect_load_error("patch_size vs patch_embd", MUT("ps.gguf", m.u32_key = "clip.vision.patch_size", m.u32_val = 3),
                      G4_ERR_FORMAT, "v.patch_embd.weight");
    expect_load_error("merge vs patch_embd", MUT("sf.gguf", m.u32_key = "clip.vision.projector.scale_factor", m.u32_val = 2),
                      G4_ERR_FORMAT, "merge 2");
    expect_load_error("merge 2.5", MUT("sf25.gguf", m.f32_key = "clip.vision.projector.scale_factor", m.f32_val = 2.5f),
                      G4_ERR_FORMAT, "scale_factor");
    {   /* an explicit merge of 3, as an integer or an integral float, is the default */
        mutation a = none;
        a.f32_key = "clip.vision.projector.scale_factor";
        a.f32_val = 3.0f;
        const char *p = rewrite(good, "sf3.gguf", &a);
        g4_mmproj *x = p ? load(p, 1) : NULL;
        CHECK(x != NULL);
        g4_mmproj_free(x);
        a.f32_key = NULL;
        a.u32_key = "clip.vision.projector.scale_factor";
        a.u32_val = 3;
        p = rewrite(good, "sf3u.gguf", &a);
        x = p ? load(p, 1) : NULL;
        CHECK(x != NULL);
        g4_mmproj_free(x);
    }
    expect_load_error("no patch_size", MUT("nops.gguf", m.drop_kv = "clip.vision.patch_size"), G4_ERR_FORMAT,
                      "clip.vision.patch_size");
    expect_load_error("huge patch", MUT("hp.gguf", m.u32_key = "clip.vision.patch_size", m.u32_val = 1000),
                      G4_ERR_FORMAT, "too large");
    expect_load_error("ln1 length", MUT("ln1.gguf", m.shape_tensor = "v.patch_norm.1.weight", m.n_dims = 1, m.ne[0] = 107),
                      G4_ERR_FORMAT, "v.patch_norm.1.weight");
    expect_load_error("ln3 2-D", MUT("ln3.gguf", m.shape_tensor = "v.patch_norm.3.bias", m.n_dims = 2, m.ne[0] = 40, m.ne[1] = 1),
                      G4_ERR_FORMAT, "v.patch_norm.3.bias");
    expect_load_error("pos 2-D", MUT("pos2.gguf", m.shape_tensor = "v.position_embd.weight", m.n_dims = 2, m.ne[0] = 40, m.ne[1] = 48),
                      G4_ERR_FORMAT, "v.position_embd.weight");
    expect_load_error("pos 3 tables", MUT("pos3.gguf", m.shape_tensor = "v.position_embd.weight", m.n_dims = 3, m.ne[0] = 40, m.ne[1] = 16, m.ne[2] = 3),
                      G4_ERR_FORMAT, "v.position_embd.weight");
    expect_load_error("pos width", MUT("posw.gguf", m.shape_tensor = "v.position_embd.weight", m.n_dims = 3, m.ne[0] = 41, m.ne[1] = 24, m.ne[2] = 2),
                      G4_ERR_FORMAT, "v.position_embd.weight");
    expect_load_error("projection width", MUT("pw.gguf", m.shape_tensor = "mm.input_projection.weight", m.n_dims = 2, m.ne[0] = 39, m.ne[1] = 24),
                      G4_ERR_FORMAT, "mm.input_projection.weight");
    expect_load_error("audio vs vision n_embd", MUT("ae.gguf", m.shape_tensor = "mm.a.input_projection.weight", m.n_dims = 2, m.ne[0] = 640, m.ne[1] = 25),
                      G4_ERR_FORMAT, "outputs 25 values but mm.input_projection.weight outputs 24");
    expect_load_error("audio 3-D", MUT("a3.gguf", m.shape_tensor = "mm.a.input_projection.weight", m.n_dims = 3, m.ne[0] = 640, m.ne[1] = 24, m.ne[2] = 1),
                      G4_ERR_FORMAT, "mm.a.input_projection.weight");
    expect_load_error("embedding_length", MUT("el.gguf", m.u32_key = "clip.vision.embedding_length", m.u32_val = 3840),
                      G4_ERR_FORMAT, "clip.vision.embedding_length");
    expect_load_error("audio embedding_length", MUT("ael.gguf", m.u32_key = "clip.audio.embedding_length", m.u32_val = 128),
                      G4_ERR_FORMAT, "clip.audio.embedding_length");
    /* placeholders are never used: zero heads / blocks and a wrong num_mel_bins load fine */
    {
        mutation a = none;
        a.u32_key = "clip.audio.num_mel_bins";
        a.u32_val = 0;
        const char *p = rewrite(good, "mel0.gguf", &a);
        g4_mmproj *x = p ? load(p, 1) : NULL;
        CHECK(x != NULL);
        g4_mmproj_free(x);
    }
    /* types */
    expect_load_error("q4_0 matrix", MUT("q4.gguf", m.type_tensor = "mm.a.input_projection.weight", m.new_type = G4_TYPE_Q4_0),
                      G4_ERR_UNSUPPORTED, "f32, f16, bf16 or q8_0");
    expect_load_error("bf16 norm", MUT("bfn.gguf", m.type_tensor = "v.patch_norm.2.weight", m.new_type = G4_TYPE_BF16),
                      G4_ERR_UNSUPPORTED, "must be f32 or f16");
    expect_load_error("NaN norm", MUT("nan.gguf", m.nan_tensor = "v.patch_norm.3.weight"), G4_ERR_FORMAT, "not finite");
    /* mean / std */
    const float std0[3] = { 1.0f, 0.0f, 1.0f }, two[2] = { 1.0f, 1.0f }, neg[3] = { 1, 1, -1 };
    expect_load_error("std 0", MUT("std0.gguf", m.arr_key = "clip.vision.image_std", m.arr = std0, m.arr_n = 3),
                      G4_ERR_FORMAT, "image_std'[1] = 0");
    expect_load_error("std negative", MUT("stdn.gguf", m.arr_key = "clip.vision.image_std", m.arr = neg, m.arr_n = 3),
                      G4_ERR_FORMAT, "image_std");
    expect_load_error("mean of 2", MUT("mean2.gguf", m.arr_key = "clip.vision.image_mean", m.arr = two, m.arr_n = 2),
                      G4_ERR_FORMAT, "expected 3");
    expect_load_error("mean not an array", MUT("means.gguf", m.str_key = "clip.vision.image_mean", m.str_val = "0"),
                      G4_ERR_FORMAT, "clip.vision.image_mean");
    {   /* absent mean/std: 0 and 1 */
        mutation a = none;
        a.drop_kv = "clip.vision.image_std";
        const char *p = rewrite(good, "nostd.gguf", &a);
        g4_mmproj *x = p ? load(p, 1) : NULL;
        if (x) {
            g4_mmproj_info in;
            g4_mmproj_get_info(x, &in);
            CHECK(in.image_std[0] == 1.0f && in.image_std[2] == 1.0f && in.image_mean[0] == 0.5f);
        }
        g4_mmproj_free(x);
    }
    expect_load_error("eps 0", MUT("eps.gguf", m.u32_key = "clip.vision.attention.layer_norm_epsilon", m.u32_val = 0),
                      G4_ERR_FORMAT, "layer_norm_epsilon");
#undef MUT

    /* not an mmproj: a text model */
    g4_test_model_params tp;
    g4_test_model_default_params(&tp);
    tp.n_embd = 32;
    tp.n_ff = 64;
    tp.n_layer = 2;
    tp.n_vocab = 512;
    char err[512];
    const char *text = tmp("text.gguf");
    CHECKF(g4_make_test_model(&tp, text, err, sizeof err) == 0, "%s", err);
    expect_load_error("text model", text, G4_ERR_FORMAT, "general.architecture is 'gemma4', not 'clip'");
    /* truncated, empty, garbage, missing */
    struct stat sb;
    if (stat(good, &sb) == 0) {
        FILE *in = fopen(good, "rb");
        size_t n = (size_t)sb.st_size;
        char *buf = malloc(n);
        CHECK(in && fread(buf, 1, n, in) == n);
        if (in) fclose(in);
        const size_t cuts[] = { n - 1, n / 2, 300, 20, 0 };
        for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
            const char *p = tmp("cut.gguf");
            FILE *o = fopen(p, "wb");
            fwrite(buf, 1, cuts[k], o);
            fclose(o);
            char what[64];
            snprintf(what, sizeof what, "truncated to %zu bytes", cuts[k]);
            expect_load_error(what, p, G4_ERR_FORMAT, "");
            /* and read into memory instead of mapped */
            g4_mmproj_params mp = g4_mmproj_default_params();
            mp.use_mmap = false;
            g4_mmproj *x = NULL;
            CHECK(g4_mmproj_load(p, &mp, &x, err, sizeof err) == G4_ERR_FORMAT && x == NULL);
        }
        free(buf);
    }
    expect_load_error("missing file", tmp("nope.gguf"), G4_ERR_IO, "cannot open");
    g4_mmproj *x = (g4_mmproj *)1;
    CHECK(g4_mmproj_load(NULL, NULL, &x, err, sizeof err) == G4_ERR_INVALID && x == NULL);
    CHECK(g4_mmproj_load(good, NULL, NULL, err, sizeof err) == G4_ERR_INVALID);
    g4_mmproj_free(NULL);
}

/* check_model: the rows must be as wide as the decoder's n_embd */
static void test_check_model(const char *mm_path)
{
    g4_mmproj *mm = load(mm_path, 1);
    if (!mm) return;
    char err[512];
    g4_test_model_params tp;
    g4_test_model_default_params(&tp);
    tp.n_layer = 2;
    tp.n_vocab = 512;
    tp.n_ff = 64;
    const uint32_t widths[2] = { 24, 32 };
    for (int k = 0; k < 2; k++) {
        tp.n_embd = widths[k];
        const char *p = tmp(k ? "t32.gguf" : "t24.gguf");
        if (g4_make_test_model(&tp, p, err, sizeof err) != 0) { CHECKF(0, "%s", err); continue; }
        g4_model *m = NULL;
        if (g4_model_load(p, NULL, &m, err, sizeof err) != G4_OK) { CHECKF(0, "%s", err); continue; }
        g4_status st = g4_mmproj_check_model(mm, m, err, sizeof err);
        if (k == 0) CHECKF(st == G4_OK, "%s", err);
        else CHECKF(st == G4_ERR_INVALID && strstr(err, "24") && strstr(err, "32"), "%d %s", st, err);
        g4_model_free(m);
    }
    CHECK(g4_mmproj_check_model(mm, NULL, err, sizeof err) == G4_ERR_INVALID);
    g4_mmproj_free(mm);
}

static void test_generator(void)
{
    g4_test_mmproj_params p;
    tiny_params(&p);
    const char *a = make("ga.gguf", &p);
    p.n_threads = 1;
    const char *b = make("gb.gguf", &p);
    p.seed = 43;
    const char *c = make("gc.gguf", &p);
    CHECK(a && b && c);
    if (a && b && c) {
        FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb"), *fc = fopen(c, "rb");
        static char ba[1 << 20], bb[1 << 20], bc[1 << 20];
        size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb), nc = fread(bc, 1, sizeof bc, fc);
        fclose(fa); fclose(fb); fclose(fc);
        CHECK(na == nb && memcmp(ba, bb, na) == 0);       /* thread count does not matter */
        CHECK(na == nc && memcmp(ba, bc, na) != 0);       /* the seed does */
    }
    /* q8_0 rows that are not whole blocks fall back to f16: width 40 */
    tiny_params(&p);
    p.type = G4_TYPE_Q8_0;
    const char *q = make("gq.gguf", &p);
    gguf_file *f;
    char err[256];
    if (q && gguf_open(q, &f, err, sizeof err) == 0) {
        CHECK(gguf_find_tensor(f, "v.patch_embd.weight")->type == G4_TYPE_F16);     /* 108 % 32 != 0 */
        CHECK(gguf_find_tensor(f, "mm.a.input_projection.weight")->type == G4_TYPE_Q8_0);
        gguf_str s;
        CHECK(gguf_get_str(f, "general.architecture", &s) == 0 && s.len == 4 && !memcmp(s.ptr, "clip", 4));
        gguf_close(f);
    } else CHECK(0);
    p.vision = p.audio = false;
    CHECK(g4_test_mmproj_validate(&p, err, sizeof err) != 0);
    tiny_params(&p);
    p.image_std[1] = 0;
    CHECK(g4_test_mmproj_validate(&p, err, sizeof err) != 0 && strstr(err, "std"));
    tiny_params(&p);
    p.type = G4_TYPE_Q4_0;
    CHECK(g4_test_mmproj_validate(&p, err, sizeof err) != 0);
    CHECK(g4_test_mmproj_type_from_name("bf16") == G4_TYPE_BF16 && g4_test_mmproj_type_from_name("q4_0") == -1);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/g4-test-mmproj-%d", (int)getpid());
    mkdir(dir, 0700);

    test_generator();

    g4_test_mmproj_params p;
    tiny_params(&p);
    char f32[512];
    const char *made = make("tiny-f32.gguf", &p);
    snprintf(f32, sizeof f32, "%s", made ? made : "");
    if (made) {
        g4_mmproj *mm = load(f32, 1);
        if (mm) {
            g4_mmproj_info in;
            g4_mmproj_get_info(mm, &in);
            CHECK(in.has_vision && in.has_audio && !strcmp(in.vision_type, "gemma4uv") && !strcmp(in.audio_type, "gemma4ua"));
            CHECK(in.n_embd == 24 && in.patch == 6 && in.vision_width == 40 && in.n_pos == 24);
            CHECK(in.image_mean[1] == 0.4f && in.image_std[2] == 2.0f && in.vision_eps == 1e-6f);
            CHECK(in.audio_frame == 640 && in.audio_rate == 16000);
            g4_mmproj_free(mm);
        }
        test_patch_vector(f32);
        test_steps(f32, "f32", 1e-5);
        test_embed_sized(f32, 18 * 6, 13 * 6, 1e-5); /* 234 patches */
        test_embed_sized(f32, 20 * 6, 15 * 6, 1e-5); /* 300 patches: several batches */
        test_vision_errors(f32);
        test_audio(f32);
        test_loader_errors(f32);
        test_check_model(f32);
    } else CHECK(0);

    /* the other weight types; the reference uses the same dequantized weights */
    const uint32_t types[3] = { G4_TYPE_F16, G4_TYPE_BF16, G4_TYPE_Q8_0 };
    const char *names[3] = { "f16", "bf16", "q8_0" };
    for (int k = 0; k < 3; k++) {
        tiny_params(&p);
        p.type = types[k];
        p.norm_type = k == 0 ? G4_TYPE_F16 : G4_TYPE_F32;
        p.patch_size = 4;      /* D = 432 = 13.5 blocks: patch_embd falls back to f16 for q8_0 */
        p.vision_width = 64;   /* whole q8_0 blocks for the position table and the projection */
        p.n_pos = 40;
        char file[32];
        snprintf(file, sizeof file, "tiny-%s.gguf", names[k]);
        char path[512];
        made = make(file, &p);
        if (!made) { CHECK(0); continue; }
        snprintf(path, sizeof path, "%s", made);
        test_steps(path, names[k], 1e-5);
        test_embed_sized(path, 12 * 5, 12 * 3, 1e-5);
        test_audio(path);
        /* mapped and read-into-memory give the same rows */
        g4_mmproj_params mp = g4_mmproj_default_params();
        mp.use_mmap = false;
        g4_mmproj *a = NULL, *b = load(path, 2);
        char err[256];
        CHECK(g4_mmproj_load(path, &mp, &a, err, sizeof err) == G4_OK);
        g4_image img = noise_image(24, 36, 5);
        g4_embedding ea, eb;
        if (a && b && g4_mmproj_embed_sized(a, &img, &ea, err, sizeof err) == G4_OK) {
            CHECK(g4_mmproj_embed_sized(b, &img, &eb, err, sizeof err) == G4_OK);
            CHECK(eb.rows && memcmp(ea.rows, eb.rows, sizeof(float) * ea.n_tokens * ea.n_embd) == 0);
            g4_embedding_free(&ea);
            g4_embedding_free(&eb);
        } else CHECK(0);
        g4_image_free(&img);
        g4_mmproj_free(a);
        g4_mmproj_free(b);
    }
    test_embed_image();

    g4_embedding z = { 0 };
    g4_embedding_free(&z);
    g4_embedding_free(NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return tu_finish("test_mmproj");
}
