/* test_image.c - image decoding, the reference resize policy and the
 * Pillow-compatible resize (src/media/image.c, resize.c).
 *
 * Run without arguments: unit tests that need nothing but the library —
 * g4_image_fit against the worked sizes of the multimodal spec §2.4 (typed
 * from the spec's table), BMP files built here byte by byte from the
 * format's definition, headers that claim huge or zero sizes, hand-derived
 * resize values, and the error paths.
 *
 * Run with a command: a tool for the shell tests in tests/media/, which
 * compare against Pillow (the independent reference):
 *   test_image decode FILE [MAX_PIXELS]   prints "W H" or one error line
 *   test_image decode-cmp MANIFEST DIR    lines "FILE W H REF.rgb TOL"
 *   test_image resize-cmp MANIFEST DIR    lines "SRC.rgb SW SH DW DH PIL.rgb"
 *   test_image fit-cmp MANIFEST           lines "W H M OW OH" (0 0 = error)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "gemma4.h"
#include "testutil.h"

static char err[512];

/* ------------------------------------------------------------------ */
/* byte writers                                                         */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 256;
        while (c < b->n + n) c *= 2;
        b->p = realloc(b->p, c);
        if (!b->p) abort();
        b->cap = c;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put8(buf *b, unsigned v) { uint8_t x = (uint8_t)v; put(b, &x, 1); }
static void le16(buf *b, unsigned v) { put8(b, v & 255); put8(b, v >> 8 & 255); }
static void le32(buf *b, uint32_t v) { le16(b, v & 0xFFFF); le16(b, v >> 16); }
static void be16(buf *b, unsigned v) { put8(b, v >> 8 & 255); put8(b, v & 255); }
static void be32(buf *b, uint32_t v) { be16(b, v >> 16); be16(b, v & 0xFFFF); }

/* ------------------------------------------------------------------ */
/* g4_image_fit                                                         */

static void fit_case(uint32_t w, uint32_t h, uint32_t m, uint32_t ew, uint32_t eh, uint32_t etok)
{
    uint32_t ow = 1, oh = 1;
    g4_status s = g4_image_fit(w, h, m, &ow, &oh, err, sizeof err);
    CHECKF(s == G4_OK && ow == ew && oh == eh && (ow / 48) * (oh / 48) == etok,
           "fit %ux%u @%u: got %s %ux%u, want %ux%u (%u tokens)", w, h, m, s ? err : "ok", ow, oh, ew, eh, etok);
    CHECK(ow % 48 == 0 && oh % 48 == 0);
}

static void test_fit(void)
{
    /* spec §2.4, HF columns: input W x H -> w x h -> tokens */
    fit_case(224, 224, 70, 384, 384, 64);
    fit_case(224, 224, 280, 768, 768, 256);
    fit_case(224, 224, 1120, 1584, 1584, 1089);
    fit_case(640, 480, 70, 432, 336, 63);
    fit_case(640, 480, 280, 912, 672, 266);
    fit_case(640, 480, 1120, 1824, 1344, 1064);
    fit_case(768, 768, 70, 384, 384, 64);
    fit_case(768, 768, 280, 768, 768, 256);
    fit_case(768, 768, 1120, 1584, 1584, 1089);
    fit_case(1024, 768, 70, 432, 336, 63);
    fit_case(1024, 768, 280, 912, 672, 266);
    fit_case(1024, 768, 1120, 1824, 1344, 1064);
    fit_case(4000, 3000, 70, 432, 336, 63);
    fit_case(4000, 3000, 280, 912, 672, 266);
    fit_case(4000, 3000, 1120, 1824, 1344, 1064);
    fit_case(1920, 1080, 70, 528, 288, 66);
    fit_case(1920, 1080, 280, 1056, 576, 264);
    fit_case(1920, 1080, 1120, 2112, 1200, 1100);
    fit_case(900, 3, 70, 3360, 48, 70);
    fit_case(900, 3, 280, 13440, 48, 280);
    fit_case(900, 3, 1120, 27792, 48, 579);
    /* the transposes: the policy is symmetric in the two axes */
    fit_case(3, 900, 280, 48, 13440, 280);
    fit_case(480, 640, 280, 672, 912, 266);
    /* 140 and 560, by hand: 224^2 -> f = sqrt(140*2304/50176) = 2.5355,
     * 224f/48 = 11.83 -> 11*48 = 528; 560: f = 5.0709, 23.66 -> 1104. */
    fit_case(224, 224, 140, 528, 528, 121);
    fit_case(224, 224, 560, 1104, 1104, 529);
    /* 1x1 at 280: f = sqrt(645120) = 803.2, 803.2/48 = 16.7 -> 768 */
    fit_case(1, 1, 280, 768, 768, 256);
    /* a 100000x1 strip: h -> 0 so h = 48 and w = min(100000*48, 280*48) */
    fit_case(100000, 1, 280, 13440, 48, 280);

    uint32_t ow = 7, oh = 7;
    CHECK(g4_image_fit(640, 480, 100, &ow, &oh, err, sizeof err) == G4_ERR_INVALID);
    CHECKF(strstr(err, "70, 140, 280, 560, 1120") != NULL, "budget error names the allowed values: %s", err);
    CHECK(ow == 0 && oh == 0);
    CHECK(g4_image_fit(640, 480, 0, &ow, &oh, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_image_fit(0, 480, 280, &ow, &oh, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_image_fit(640, 0, 280, &ow, &oh, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_image_fit(640, 480, 280, NULL, &oh, err, sizeof err) == G4_ERR_INVALID);
    /* the extremes of uint32 must not overflow anything */
    CHECK(g4_image_fit(UINT32_MAX, 1, 1120, &ow, &oh, err, sizeof err) == G4_OK && ow == 1120 * 48 && oh == 48);
    CHECK(g4_image_fit(UINT32_MAX, UINT32_MAX, 70, &ow, &oh, err, sizeof err) == G4_OK && ow == 384 && oh == 384);
}

/* ------------------------------------------------------------------ */
/* resize: values derived by hand from the definition                  */

static void test_resize(void)
{
    /* 2x1 -> 1x1: scale 2, support 4, centre 1.0, taps x=0,1 at distance
     * 0.25 (in the widened kernel): equal weights 1/2 each (2^21 fixed),
     * so the result is floor((a + b + 1) / 2). */
    uint8_t px2[6] = {10, 0, 255, 21, 255, 0};
    g4_image a = {2, 1, px2}, o;
    CHECK(g4_image_resize(&a, 1, 1, &o, err, sizeof err) == G4_OK);
    CHECKF(o.rgb && o.rgb[0] == 16 && o.rgb[1] == 128 && o.rgb[2] == 128, "2x1->1x1: %u %u %u",
           o.rgb ? o.rgb[0] : 0, o.rgb ? o.rgb[1] : 0, o.rgb ? o.rgb[2] : 0);
    g4_image_free(&o);

    /* Same size: a copy. */
    uint8_t px6[18];
    for (int i = 0; i < 18; i++) px6[i] = (uint8_t)(i * 13 + 7);
    g4_image b = {3, 2, px6};
    CHECK(g4_image_resize(&b, 3, 2, &o, err, sizeof err) == G4_OK && memcmp(o.rgb, px6, 18) == 0);
    g4_image_free(&o);

    /* A constant image stays constant, up or down, any aspect: the
     * normalised weights sum to 1 within the fixed-point rounding. */
    static const uint32_t sz[][4] = {{1, 1, 9, 4}, {17, 5, 3, 11}, {40, 40, 7, 7}, {5, 40, 64, 2}, {1, 9, 1, 30}};
    for (size_t c = 0; c < sizeof sz / sizeof sz[0]; c++) {
        uint32_t sw = sz[c][0], sh = sz[c][1], dw = sz[c][2], dh = sz[c][3];
        uint8_t *p = malloc((size_t)sw * sh * 3);
        for (size_t i = 0; i < (size_t)sw * sh; i++) p[i * 3] = 200, p[i * 3 + 1] = 0, p[i * 3 + 2] = 255;
        g4_image s = {sw, sh, p};
        int bad = 0;
        if (g4_image_resize(&s, dw, dh, &o, err, sizeof err) != G4_OK || o.width != dw || o.height != dh) bad = -1;
        else
            for (size_t i = 0; i < (size_t)dw * dh; i++)
                bad += o.rgb[i * 3] != 200 || o.rgb[i * 3 + 1] != 0 || o.rgb[i * 3 + 2] != 255;
        CHECKF(bad == 0, "constant %ux%u -> %ux%u: %d bad pixels", sw, sh, dw, dh, bad);
        g4_image_free(&o);
        free(p);
    }

    /* errors */
    CHECK(g4_image_resize(&b, 0, 5, &o, err, sizeof err) == G4_ERR_INVALID && o.rgb == NULL);
    CHECK(g4_image_resize(&b, 5, 0, &o, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_image_resize(NULL, 5, 5, &o, err, sizeof err) == G4_ERR_INVALID);
    g4_image empty = {0, 0, NULL};
    CHECK(g4_image_resize(&empty, 5, 5, &o, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_image_resize(&b, 5, 5, NULL, err, sizeof err) == G4_ERR_INVALID);
}

/* ------------------------------------------------------------------ */
/* BMP files written here from the format's definition                 */

/* the intended picture: a deterministic pattern, palette-able (16 colours) */
static void pattern(uint32_t w, uint32_t h, uint8_t *rgb, int ncolours)
{
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            unsigned i = (x * 7 + y * 3) % (unsigned)ncolours;
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(i * 37 + 5), p[1] = (uint8_t)(255 - i * 11), p[2] = (uint8_t)(i * 91);
        }
}

/* bpp 1/4/8 (palette of the pattern's colours) or 24/32 (BGR[X]) */
static buf make_bmp(uint32_t w, uint32_t h, unsigned bpp, int top_down, uint32_t comp, const uint8_t *rgb,
                    int ncolours, uint32_t hsz)
{
    buf b = {0};
    uint32_t stride = (w * bpp + 31) / 32 * 4;
    uint32_t npal = bpp <= 8 ? (uint32_t)ncolours : 0;
    uint32_t masks = comp == 3 && hsz == 40 ? 12 : 0;
    uint32_t off = 14 + hsz + masks + npal * 4;
    put(&b, "BM", 2);
    le32(&b, off + stride * h);
    le32(&b, 0);
    le32(&b, off);
    le32(&b, hsz);
    le32(&b, w);
    le32(&b, top_down ? (uint32_t)-(int32_t)h : h);
    le16(&b, 1);
    le16(&b, bpp);
    le32(&b, comp);
    le32(&b, stride * h);
    le32(&b, 2835);
    le32(&b, 2835);
    le32(&b, npal);
    le32(&b, 0);
    for (uint32_t i = 40; i < hsz; i += 4) {
        /* V4/V5 extension: the masks come first, then zeros */
        uint32_t m = i == 40 ? 0x00FF0000u : i == 44 ? 0x0000FF00u : i == 48 ? 0x000000FFu : 0;
        le32(&b, m);
    }
    if (masks) le32(&b, 0x00FF0000u), le32(&b, 0x0000FF00u), le32(&b, 0x000000FFu);
    uint8_t pal[256][3];
    for (uint32_t i = 0; i < npal; i++) {
        pal[i][0] = (uint8_t)(i * 37 + 5), pal[i][1] = (uint8_t)(255 - i * 11), pal[i][2] = (uint8_t)(i * 91);
        put8(&b, pal[i][2]), put8(&b, pal[i][1]), put8(&b, pal[i][0]), put8(&b, 0);
    }
    uint8_t *row = calloc(stride, 1);
    for (uint32_t r = 0; r < h; r++) {
        uint32_t y = top_down ? r : h - 1 - r;
        memset(row, 0, stride);
        for (uint32_t x = 0; x < w; x++) {
            const uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            if (bpp >= 24) {
                uint8_t *q = row + x * (bpp / 8);
                q[0] = p[2], q[1] = p[1], q[2] = p[0];
                if (bpp == 32) q[3] = 0x5A;   /* must be ignored */
            } else {
                uint32_t idx = 0;
                while (idx < npal && memcmp(pal[idx], p, 3) != 0) idx++;
                unsigned per = 8 / bpp;
                row[x / per] |= (uint8_t)(idx << ((per - 1 - x % per) * bpp));
            }
        }
        put(&b, row, stride);
    }
    free(row);
    return b;
}

static void bmp_case(uint32_t w, uint32_t h, unsigned bpp, int top_down, uint32_t comp, uint32_t hsz)
{
    int ncol = bpp == 1 ? 2 : bpp == 4 ? 16 : bpp == 8 ? 16 : 251;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    pattern(w, h, rgb, ncol);
    buf b = make_bmp(w, h, bpp, top_down, comp, rgb, ncol, hsz);
    g4_image im;
    g4_status s = g4_image_decode(b.p, b.n, 0, &im, err, sizeof err);
    CHECKF(s == G4_OK && im.width == w && im.height == h && memcmp(im.rgb, rgb, (size_t)w * h * 3) == 0,
           "BMP %ux%u %u-bit %s comp %u hdr %u: %s", w, h, bpp, top_down ? "top-down" : "bottom-up", comp, hsz,
           s ? err : "pixels differ");
    g4_image_free(&im);
    /* cut inside the pixel rows: a clear error, never a partial image */
    s = g4_image_decode(b.p, b.n - 1, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "BMP") && strstr(err, "truncated") && im.rgb == NULL,
           "truncated BMP: %d %s", s, err);
    free(b.p);
    free(rgb);
}

static void test_bmp(void)
{
    /* odd widths exercise the 4-byte row padding */
    bmp_case(5, 3, 24, 0, 0, 40);
    bmp_case(5, 3, 24, 1, 0, 40);
    bmp_case(7, 4, 32, 0, 0, 40);
    bmp_case(7, 4, 32, 1, 0, 124);
    bmp_case(6, 2, 32, 0, 3, 40);   /* BI_BITFIELDS, masks after the header */
    bmp_case(6, 2, 32, 1, 3, 108);  /* BI_BITFIELDS, masks inside a V4 header */
    bmp_case(9, 5, 8, 0, 0, 40);
    bmp_case(9, 5, 8, 1, 0, 40);
    bmp_case(13, 3, 4, 0, 0, 40);
    bmp_case(37, 2, 1, 0, 0, 40);
    bmp_case(1, 1, 24, 0, 0, 40);

    uint8_t rgb[4 * 4 * 3];
    pattern(4, 4, rgb, 16);
    g4_image im;
    /* RLE8 and 16-bit: recognised, refused by name */
    buf b = make_bmp(4, 4, 8, 0, 1, rgb, 16, 40);
    CHECKF(g4_image_decode(b.p, b.n, 0, &im, err, sizeof err) == G4_ERR_UNSUPPORTED && strstr(err, "unsupported BMP") &&
               strstr(err, "RLE8"),
           "RLE8: %s", err);
    free(b.p);
    b = make_bmp(4, 4, 24, 0, 0, rgb, 16, 40);
    b.p[28] = 16;   /* biBitCount */
    CHECKF(g4_image_decode(b.p, b.n, 0, &im, err, sizeof err) == G4_ERR_UNSUPPORTED && strstr(err, "unsupported BMP"),
           "16-bit: %s", err);
    /* 32-bit bit fields other than 8-8-8 */
    free(b.p);
    b = make_bmp(4, 4, 32, 0, 3, rgb, 16, 40);
    b.p[54] = 0x01;
    CHECKF(g4_image_decode(b.p, b.n, 0, &im, err, sizeof err) == G4_ERR_UNSUPPORTED && strstr(err, "bit fields"),
           "odd masks: %s", err);
    free(b.p);
    b = make_bmp(4, 4, 24, 0, 0, rgb, 16, 40);
    memcpy(b.p + 18, "\x00\x00\x00\x00", 4);   /* width 0 */
    CHECKF(g4_image_decode(b.p, b.n, 0, &im, err, sizeof err) == G4_ERR_FORMAT && strstr(err, "zero size"),
           "0-wide BMP: %s", err);
    /* 100000 x 100000 claimed by a 70-byte file: refused by the cap before
     * anything is allocated (and before the truncation is noticed) */
    memcpy(b.p + 18, "\xA0\x86\x01\x00\xA0\x86\x01\x00", 8);
    CHECKF(g4_image_decode(b.p, b.n, 0, &im, err, sizeof err) == G4_ERR_INVALID && strstr(err, "exceeds the limit"),
           "huge BMP: %s", err);
    /* an explicit small cap applies to real images too */
    memcpy(b.p + 18, "\x04\x00\x00\x00\x04\x00\x00\x00", 8);
    CHECK(g4_image_decode(b.p, b.n, 15, &im, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_image_decode(b.p, b.n, 16, &im, err, sizeof err) == G4_OK && im.width == 4);
    g4_image_free(&im);
    CHECK(g4_image_decode(b.p, 20, 0, &im, err, sizeof err) == G4_ERR_FORMAT);   /* cut in the header */
    free(b.p);
}

/* ------------------------------------------------------------------ */
/* crafted headers: PNG, JPEG, GIF, WebP                                */

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

static buf png_header(uint32_t w, uint32_t h)
{
    buf b = {0};
    put(&b, "\x89PNG\r\n\x1a\n", 8);
    be32(&b, 13);
    size_t at = b.n;
    put(&b, "IHDR", 4);
    be32(&b, w);
    be32(&b, h);
    put8(&b, 8), put8(&b, 2), put8(&b, 0), put8(&b, 0), put8(&b, 0);   /* 8-bit RGB */
    be32(&b, crc32_png(b.p + at, 17));
    return b;
}

static void test_headers(void)
{
    g4_image im;
    /* PNG claiming 100000 x 100000 (10^10 pixels): fails on the header */
    buf b = png_header(100000, 100000);
    put(&b, "\0\0\0\0IDAT", 8);
    g4_status s = g4_image_decode(b.p, b.n, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_INVALID && strstr(err, "PNG") && strstr(err, "exceeds the limit"), "huge PNG: %d %s", s, err);
    free(b.p);
    /* PNG 0 x 0: libpng's own header check names it */
    b = png_header(0, 0);
    s = g4_image_decode(b.p, b.n, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "PNG"), "0x0 PNG: %d %s", s, err);
    free(b.p);
    /* PNG: a bad IHDR CRC, and a file cut after the header */
    b = png_header(4, 4);
    s = g4_image_decode(b.p, b.n, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "PNG") && strstr(err, "truncated"), "header-only PNG: %d %s", s, err);
    b.p[b.n - 1] ^= 1;
    s = g4_image_decode(b.p, b.n, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "PNG"), "bad-CRC PNG: %d %s", s, err);
    free(b.p);

    /* JPEG: SOI, SOF0 65500 x 65500 (4.3e9 pixels; libjpeg-turbo's largest
     * side), SOS.  No tables: the cap must refuse it before they are needed. */
    static const uint8_t jpg[] = {
        0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0xFF, 0xDC, 0xFF, 0xDC, 0x03, 0x01, 0x22, 0x00,
        0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xFF, 0xDA, 0x00, 0x0C, 0x03, 0x01, 0x00, 0x02, 0x11,
        0x03, 0x11, 0x00, 0x3F, 0x00, 0x00, 0x00, 0x00};
    s = g4_image_decode(jpg, sizeof jpg, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_INVALID && strstr(err, "JPEG") && strstr(err, "65500x65500") && im.rgb == NULL,
           "huge JPEG: %d %s", s, err);
    uint8_t j0[sizeof jpg];
    memcpy(j0, jpg, sizeof jpg);
    j0[7] = j0[8] = 0;   /* height 0 */
    s = g4_image_decode(j0, sizeof j0, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "JPEG"), "0-high JPEG: %d %s", s, err);
    memcpy(j0, jpg, sizeof jpg);
    j0[7] = 0, j0[8] = 8, j0[9] = 0, j0[10] = 8;   /* 8x8 without tables or data */
    s = g4_image_decode(j0, sizeof j0, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "JPEG"), "table-less JPEG: %d %s", s, err);
    j0[3] = 0xC3;   /* SOF3: lossless JPEG, which libjpeg-turbo 2.1 lacks */
    s = g4_image_decode(j0, sizeof j0, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_UNSUPPORTED && strstr(err, "JPEG"), "lossless JPEG: %d %s", s, err);
    s = g4_image_decode(jpg, 3, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "JPEG"), "3-byte JPEG: %d %s", s, err);

    /* GIF: a 65535 x 65535 logical screen */
    static const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, ';'};
    s = g4_image_decode(gif, sizeof gif, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_INVALID && strstr(err, "GIF") && strstr(err, "exceeds the limit"), "huge GIF: %d %s", s, err);
    uint8_t g0[sizeof gif];
    memcpy(g0, gif, sizeof gif);
    g0[6] = g0[7] = g0[8] = g0[9] = 0;
    s = g4_image_decode(g0, sizeof g0, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "GIF") && strstr(err, "zero size"), "0x0 GIF: %d %s", s, err);
    g0[6] = 4, g0[8] = 4;   /* 4x4 screen, then the trailer: no image */
    s = g4_image_decode(g0, sizeof g0, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "GIF") && strstr(err, "no image"), "image-less GIF: %d %s", s, err);
    s = g4_image_decode(g0, 8, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "GIF"), "8-byte GIF: %d %s", s, err);

    /* WebP: a VP8L header (lossless) claiming 16384 x 16384 */
    static const uint8_t webp[] = {'R', 'I', 'F', 'F', 22, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'L',
                                   10, 0, 0, 0, 0x2F, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0, 0, 0};
    s = g4_image_decode(webp, sizeof webp, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_INVALID && strstr(err, "WebP") && strstr(err, "16384x16384"), "huge WebP: %d %s", s, err);
    s = g4_image_decode(webp, 16, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "WebP"), "16-byte WebP: %d %s", s, err);

    /* unknown, garbage, empty */
    s = g4_image_decode("II*\0\x08\0\0\0", 8, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_UNSUPPORTED && strstr(err, "unrecognised"), "TIFF: %d %s", s, err);
    uint8_t junk[300];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) x = x * 1103515245u + 12345u, junk[i] = (uint8_t)(x >> 16);
    junk[0] = 0x00;
    s = g4_image_decode(junk, sizeof junk, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_UNSUPPORTED && strstr(err, "unrecognised"), "garbage: %d %s", s, err);
    /* a right signature followed by garbage */
    memcpy(junk, "\x89PNG\r\n\x1a\n", 8);
    s = g4_image_decode(junk, sizeof junk, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "PNG"), "PNG + garbage: %d %s", s, err);
    memcpy(junk, "\xFF\xD8\xFF", 3);
    s = g4_image_decode(junk, sizeof junk, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "JPEG"), "JPEG + garbage: %d %s", s, err);
    memcpy(junk, "GIF89a", 6);
    s = g4_image_decode(junk, sizeof junk, 0, &im, err, sizeof err);
    CHECKF(s != G4_OK && strstr(err, "GIF"), "GIF + garbage: %d %s", s, err);
    s = g4_image_decode("", 0, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "empty"), "empty: %d %s", s, err);
    CHECK(g4_image_decode(NULL, 5, 0, &im, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_image_decode(junk, 5, 0, NULL, err, sizeof err) == G4_ERR_INVALID);
    /* a NULL err buffer is allowed */
    CHECK(g4_image_decode(junk, 5, 0, &im, NULL, 0) == G4_ERR_UNSUPPORTED);

    s = g4_image_load("/nonexistent/dir/x.png", 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_IO && strstr(err, "/nonexistent/dir/x.png") && strstr(err, "No such file"), "missing: %d %s", s, err);
    s = g4_image_load("/", 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_IO && strstr(err, "directory"), "directory: %d %s", s, err);
    s = g4_image_load("/dev/null", 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "empty"), "/dev/null: %d %s", s, err);
    g4_image_free(&im);
    g4_image_free(NULL);
}

/* A valid progressive JPEG of 694 scans (libjpeg's encoder, a scan
 * script of single-coefficient bands refined bit by bit): decoding it
 * costs a pass over the coefficients per scan, the CPU bomb the scan
 * limit (500) is for.  The 10-scan standard progression still decodes. */
static buf many_scans_jpeg(int bomb)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    unsigned long n = 0;
    jpeg_mem_dest(&c, &mem, &n);
    c.image_width = 16, c.image_height = 16, c.input_components = 1, c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    static jpeg_scan_info scans[1 + 63 * 11];
    int k = 0;
    if (bomb) {
        scans[k++] = (jpeg_scan_info){1, {0}, 0, 0, 0, 0};
        for (int ss = 1; ss <= 63; ss++) {
            scans[k++] = (jpeg_scan_info){1, {0}, ss, ss, 0, 10};
            for (int al = 9; al >= 0; al--) scans[k++] = (jpeg_scan_info){1, {0}, ss, ss, al + 1, al};
        }
        c.scan_info = scans;
        c.num_scans = k;
    } else {
        jpeg_simple_progression(&c);
    }
    jpeg_start_compress(&c, TRUE);
    JSAMPLE row[16];
    for (int y = 0; y < 16; y++) {
        for (int x = 0; x < 16; x++) row[x] = (JSAMPLE)(x * 13 + y * 7);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    buf b = {0};
    put(&b, mem, n);
    free(mem);
    return b;
}

static void test_jpeg_scans(void)
{
    g4_image im;
    buf b = many_scans_jpeg(1);
    g4_status s = g4_image_decode(b.p, b.n, 0, &im, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "500 progressive scans"), "694-scan JPEG: %d %s", s, err);
    free(b.p);
    b = many_scans_jpeg(0);
    s = g4_image_decode(b.p, b.n, 0, &im, err, sizeof err);
    CHECKF(s == G4_OK && im.width == 16 && im.rgb[0] == im.rgb[1] && im.rgb[1] == im.rgb[2], "progressive JPEG: %d %s", s, err);
    g4_image_free(&im);
    free(b.p);
}

/* ------------------------------------------------------------------ */
/* tool modes for the shell tests                                     */

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    uint8_t *p = malloc(cap);
    size_t r;
    while (p && (r = fread(p + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            uint8_t *q = realloc(p, cap *= 2);
            if (!q) free(p);
            p = q;
        }
    }
    fclose(f);
    *n = len;
    return p;
}

static int tool_decode(const char *path, uint64_t maxpx)
{
    g4_image im;
    if (g4_image_load(path, maxpx, &im, err, sizeof err) != G4_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("%u %u\n", im.width, im.height);
    g4_image_free(&im);
    return 0;
}

static int tool_decode_cmp(const char *manifest, const char *dir)
{
    FILE *f = fopen(manifest, "r");
    if (!f) return 2;
    char name[256], ref[256], path[1024];
    unsigned w, h, tol;
    int cases = 0, bad = 0, exact = 0;
    while (fscanf(f, "%255s %u %u %255s %u", name, &w, &h, ref, &tol) == 5) {
        cases++;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        g4_image im;
        if (g4_image_load(path, 0, &im, err, sizeof err) != G4_OK) {
            printf("FAIL %s: %s\n", name, err);
            bad++;
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, ref);
        size_t n = 0;
        uint8_t *r = read_all(path, &n);
        if (!r || im.width != w || im.height != h || n != (size_t)w * h * 3) {
            printf("FAIL %s: %ux%u, reference %ux%u (%zu bytes)\n", name, im.width, im.height, w, h, n);
            bad++;
        } else {
            int md = 0;
            size_t ndiff = 0;
            for (size_t i = 0; i < n; i++) {
                int d = abs((int)im.rgb[i] - (int)r[i]);
                if (d > md) md = d;
                ndiff += d != 0;
            }
            exact += md == 0;
            printf("%s %s: %ux%u max diff %d (%zu of %zu values differ, tolerance %u)\n", md <= (int)tol ? "ok  " : "FAIL",
                   name, w, h, md, ndiff, n, tol);
            bad += md > (int)tol;
        }
        free(r);
        g4_image_free(&im);
    }
    fclose(f);
    printf("decode-cmp: %d files, %d identical to Pillow, %d failed\n", cases, exact, bad);
    return bad || cases == 0;
}

static int tool_resize_cmp(const char *manifest, const char *dir)
{
    FILE *f = fopen(manifest, "r");
    if (!f) return 2;
    char src[256], pil[256], path[1024];
    unsigned sw, sh, dw, dh;
    int cases = 0, bad = 0, exact = 0, worst = 0;
    size_t values = 0, off = 0;
    while (fscanf(f, "%255s %u %u %u %u %255s", src, &sw, &sh, &dw, &dh, pil) == 6) {
        cases++;
        size_t ns = 0, np = 0;
        snprintf(path, sizeof path, "%s/%s", dir, src);
        uint8_t *s = read_all(path, &ns);
        snprintf(path, sizeof path, "%s/%s", dir, pil);
        uint8_t *p = read_all(path, &np);
        g4_image in = {sw, sh, s}, out;
        if (!s || !p || ns != (size_t)sw * sh * 3 || np != (size_t)dw * dh * 3) {
            printf("FAIL %s: bad test files\n", src);
            bad++;
        } else if (g4_image_resize(&in, dw, dh, &out, err, sizeof err) != G4_OK) {
            printf("FAIL %s: %s\n", src, err);
            bad++;
        } else {
            int md = 0;
            size_t nd = 0;
            for (size_t i = 0; i < np; i++) {
                int d = abs((int)out.rgb[i] - (int)p[i]);
                if (d > md) md = d;
                nd += d != 0;
            }
            values += np;
            off += nd;
            exact += md == 0;
            if (md > worst) worst = md;
            if (md > 1) bad++;
            if (md > 0) printf("%s %ux%u -> %ux%u: max diff %d (%zu values)\n", md > 1 ? "FAIL" : "near", sw, sh, dw, dh, md, nd);
            g4_image_free(&out);
        }
        free(s);
        free(p);
    }
    fclose(f);
    printf("resize-cmp: %d cases, %d bit-exact, max diff %d, %zu of %zu values differ, %d over 1\n", cases, exact, worst,
           off, values, bad);
    return bad || cases == 0;
}

static int tool_fit_cmp(const char *manifest)
{
    FILE *f = fopen(manifest, "r");
    if (!f) return 2;
    unsigned w, h, m, ew, eh;
    int cases = 0, bad = 0;
    while (fscanf(f, "%u %u %u %u %u", &w, &h, &m, &ew, &eh) == 5) {
        cases++;
        uint32_t ow = 0, oh = 0;
        g4_status s = g4_image_fit(w, h, m, &ow, &oh, err, sizeof err);
        int good = ew == 0 ? s != G4_OK : s == G4_OK && ow == ew && oh == eh;
        if (!good) {
            printf("FAIL fit %ux%u @%u: got %ux%u (%s), want %ux%u\n", w, h, m, ow, oh, s ? err : "ok", ew, eh);
            bad++;
        }
    }
    fclose(f);
    printf("fit-cmp: %d cases, %d failed\n", cases, bad);
    return bad || cases == 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "decode") == 0)
        return tool_decode(argv[2], argc > 3 ? strtoull(argv[3], NULL, 10) : 0);
    if (argc == 4 && strcmp(argv[1], "decode-cmp") == 0) return tool_decode_cmp(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "resize-cmp") == 0) return tool_resize_cmp(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "fit-cmp") == 0) return tool_fit_cmp(argv[2]);
    if (argc > 1) {
        fprintf(stderr, "usage: test_image [decode FILE [MAX_PIXELS] | decode-cmp MANIFEST DIR | resize-cmp MANIFEST DIR | fit-cmp MANIFEST]\n");
        return 2;
    }
    test_fit();
    test_resize();
    test_bmp();
    test_headers();
    test_jpeg_scans();
    return tu_finish("image");
}
