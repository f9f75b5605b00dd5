/* resize.c - Pillow-compatible antialiased bicubic resize, i.e. what
 * Pillow's Image.resize((w, h), Image.BICUBIC) gives on an RGB image
 * (multimodal spec §2.2; the reference processor resizes with it).
 *
 * Pillow's resampler, as documented and as its behaviour shows, is
 * separable and runs in two passes: horizontal first, over only the source
 * rows the vertical pass will read, then vertical.  Each pass turns the
 * filter weights into fixed-point integers (22 fractional bits) and each
 * pass's output is rounded and clipped to 8 bits.  The filter is the cubic
 * convolution kernel with a = -0.5 and support 2, widened by the scale
 * when down-scaling (that is the antialiasing).  A dimension whose size
 * does not change is not resampled at all.  Reproducing the coefficient
 * computation in double precision with the same operation order and the
 * same fixed-point rounding makes the output bit-exact
 * (tests/media/resize-vs-pillow.sh measures it).
 *
 * Every product of two doubles here must be rounded before the following
 * addition, exactly like Pillow's x86-64 build: no fused multiply-add.
 * GCC does not contract in ISO C mode (-std=c11); clang needs the pragma. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media/media_internal.h"

#define FIX_BITS 22                     /* 32 - 8 value bits - 2 headroom bits */
#define FIX_HALF (1 << (FIX_BITS - 1))
#define RESIZE_MAX_SIDE (1u << 28)      /* keeps every int index and product in range */

static double cubic(double x)
{
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* For one axis: for each output index, the first source index, the number
 * of source samples it reads, and their fixed-point weights (ksize slots,
 * the unused ones zero). */
typedef struct {
    int32_t *first, *count;
    int32_t *w;
    size_t ksize;
} axis_coeffs;

static void axis_free(axis_coeffs *c)
{
    free(c->first);
    free(c->count);
    free(c->w);
    memset(c, 0, sizeof *c);
}

static int axis_init(axis_coeffs *c, uint32_t in_size, uint32_t out_size)
{
    memset(c, 0, sizeof *c);
    /* Pillow passes the source box as C floats: (float)in_size - 0.0f. */
    double scale = (double)(float)in_size / (double)out_size;
    double fscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * fscale;
    size_t ksize = (size_t)ceil(support) * 2 + 1;
    /* No output reads more than in_size samples: keep only what is used. */
    if (ksize > (size_t)in_size) ksize = in_size;
    if ((size_t)out_size > SIZE_MAX / sizeof(int32_t) / ksize) return -1;
    c->ksize = ksize;
    c->first = malloc((size_t)out_size * sizeof *c->first);
    c->count = malloc((size_t)out_size * sizeof *c->count);
    c->w = calloc((size_t)out_size * ksize, sizeof *c->w);
    double *k = malloc(ksize * sizeof *k);
    if (!c->first || !c->count || !c->w || !k) {
        free(k);
        axis_free(c);
        return -1;
    }
    double inv = 1.0 / fscale;
    for (uint32_t o = 0; o < out_size; o++) {
        double center = 0.0 + ((double)o + 0.5) * scale;
        /* (int) truncates toward zero, as in Pillow; then clamp. */
        int64_t lo = (int64_t)(center - support + 0.5);
        int64_t hi = (int64_t)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > (int64_t)in_size) hi = in_size;
        int64_t n = hi - lo;
        if (n < 0) n = 0;
        if ((size_t)n > ksize) n = (int64_t)ksize;   /* cannot happen: support bounds it */
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) {
            double wt = cubic(((double)(i + lo) - center + 0.5) * inv);
            k[i] = wt;
            sum += wt;
        }
        int32_t *fw = c->w + (size_t)o * ksize;
        for (int64_t i = 0; i < n; i++) {
            double v = sum != 0.0 ? k[i] / sum : k[i];
            fw[i] = v < 0 ? (int32_t)(-0.5 + v * (1 << FIX_BITS)) : (int32_t)(0.5 + v * (1 << FIX_BITS));
        }
        c->first[o] = (int32_t)lo;
        c->count[o] = (int32_t)n;
    }
    free(k);
    return 0;
}

/* The weights' absolute sum stays below 2 (cubic lobes), so an 8-bit value
 * times a weight summed over a window fits in int32 with room to spare:
 * that is what the two headroom bits are for. */
static inline uint8_t clip8(int32_t v)
{
    if (v < 0) return 0;
    v >>= FIX_BITS;
    return (uint8_t)(v > 255 ? 255 : v);
}

/* rows [y0, y0 + nrows) of src (sw wide) -> dst (dw wide, nrows rows) */
static void pass_horizontal(const uint8_t *src, uint32_t sw, uint32_t y0, uint32_t nrows,
                            uint8_t *dst, uint32_t dw, const axis_coeffs *c)
{
    for (uint32_t y = 0; y < nrows; y++) {
        const uint8_t *s = src + (size_t)(y0 + y) * sw * 3;
        uint8_t *d = dst + (size_t)y * dw * 3;
        for (uint32_t x = 0; x < dw; x++) {
            const int32_t *w = c->w + (size_t)x * c->ksize;
            const uint8_t *p = s + (size_t)c->first[x] * 3;
            int32_t r = FIX_HALF, g = FIX_HALF, b = FIX_HALF;
            for (int32_t i = 0; i < c->count[x]; i++) {
                r += p[i * 3 + 0] * w[i];
                g += p[i * 3 + 1] * w[i];
                b += p[i * 3 + 2] * w[i];
            }
            d[x * 3 + 0] = clip8(r);
            d[x * 3 + 1] = clip8(g);
            d[x * 3 + 2] = clip8(b);
        }
    }
}

/* src rows are relative to row_base (the first row the horizontal pass
 * kept); integer sums make the row-at-a-time order give Pillow's values. */
static void pass_vertical(const uint8_t *src, uint32_t row_base, uint32_t width,
                          uint8_t *dst, uint32_t dh, const axis_coeffs *c, int32_t *acc)
{
    size_t n = (size_t)width * 3;
    for (uint32_t y = 0; y < dh; y++) {
        for (size_t i = 0; i < n; i++) acc[i] = FIX_HALF;
        const int32_t *w = c->w + (size_t)y * c->ksize;
        for (int32_t j = 0; j < c->count[y]; j++) {
            const uint8_t *s = src + (size_t)(c->first[y] + j - (int32_t)row_base) * n;
            int32_t wj = w[j];
            for (size_t i = 0; i < n; i++) acc[i] += s[i] * wj;
        }
        uint8_t *d = dst + (size_t)y * n;
        for (size_t i = 0; i < n; i++) d[i] = clip8(acc[i]);
    }
}

g4_status g4_image_resize(const g4_image *src, uint32_t width, uint32_t height, g4_image *out,
                          char *err, size_t errlen)
{
    if (!out) return g4_media_fail(err, errlen, G4_ERR_INVALID, "g4_image_resize: out is NULL");
    memset(out, 0, sizeof *out);
    if (!src || !src->rgb || src->width == 0 || src->height == 0)
        return g4_media_fail(err, errlen, G4_ERR_INVALID, "g4_image_resize: empty source image");
    if (width == 0 || height == 0)
        return g4_media_fail(err, errlen, G4_ERR_INVALID, "g4_image_resize: target size %ux%u has a zero side", width, height);
    if (src->width > RESIZE_MAX_SIDE || src->height > RESIZE_MAX_SIDE || width > RESIZE_MAX_SIDE || height > RESIZE_MAX_SIDE)
        return g4_media_fail(err, errlen, G4_ERR_INVALID, "g4_image_resize: %ux%u -> %ux%u: a side exceeds %u",
                             src->width, src->height, width, height, RESIZE_MAX_SIDE);
    uint64_t out_px = (uint64_t)width * height;
    if (out_px > SIZE_MAX / 3)
        return g4_media_fail(err, errlen, G4_ERR_NOMEM, "g4_image_resize: %ux%u does not fit in memory", width, height);
    uint32_t sw = src->width, sh = src->height;
    uint8_t *dst = malloc((size_t)out_px * 3);
    if (!dst) return g4_media_fail(err, errlen, G4_ERR_NOMEM, "g4_image_resize: cannot allocate %ux%u", width, height);
    if (sw == width && sh == height) {
        memcpy(dst, src->rgb, (size_t)out_px * 3);
        goto ok;
    }

    axis_coeffs cx = {0}, cy = {0};
    uint8_t *tmp = NULL;
    int32_t *acc = NULL;
    const uint8_t *vin = src->rgb;   /* the vertical pass's input */
    uint32_t row_base = 0;
    if (sh != height && axis_init(&cy, sh, height) != 0) goto nomem;
    if (sw != width) {
        if (axis_init(&cx, sw, width) != 0) goto nomem;
        uint32_t y0 = 0, y1 = sh;
        if (sh != height) {
            /* Only the rows the vertical pass reads are resampled. */
            y0 = (uint32_t)cy.first[0];
            y1 = (uint32_t)(cy.first[height - 1] + cy.count[height - 1]);
        }
        uint64_t tmp_bytes = (uint64_t)width * (y1 - y0) * 3;
        if (tmp_bytes > SIZE_MAX) goto nomem;
        uint8_t *t = sh != height ? malloc((size_t)tmp_bytes) : dst;
        if (!t) goto nomem;
        if (sh != height) tmp = t;
        pass_horizontal(src->rgb, sw, y0, y1 - y0, t, width, &cx);
        vin = t;
        row_base = y0;
    }
    if (sh != height) {
        acc = malloc((size_t)width * 3 * sizeof *acc);
        if (!acc) goto nomem;
        pass_vertical(vin, row_base, width, dst, height, &cy, acc);
    }
    free(acc);
    free(tmp);
    axis_free(&cx);
    axis_free(&cy);
ok:
    out->width = width;
    out->height = height;
    out->rgb = dst;
    return G4_OK;
nomem:
    free(acc);
    free(tmp);
    axis_free(&cx);
    axis_free(&cy);
    free(dst);
    return g4_media_fail(err, errlen, G4_ERR_NOMEM, "g4_image_resize: out of memory for %ux%u -> %ux%u",
                         sw, sh, width, height);
}
