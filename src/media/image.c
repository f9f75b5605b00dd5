/* image.c - image files to 8-bit RGB (multimodal spec §2.1) and the
 * reference resize policy (§2.2).  The resampler is in resize.c.
 *
 * Every decoder follows the same order: recognise the format by its magic
 * bytes, read only the header, refuse zero sizes and images over the pixel
 * cap, and only then allocate and decode the pixels.  The libraries that
 * report errors by longjmp (libjpeg, libpng) get their own error managers
 * so that nothing prints and nothing exits; their messages end up in err.
 *
 * Where Pillow (what Hugging Face's processor decodes with) and the file
 * format disagree, we follow Pillow's Image.open(...).convert("RGB"):
 * alpha dropped without compositing, the transparent GIF index keeps its
 * palette colour, CMYK JPEGs read as Adobe-inverted CMYK.  docs/media-files.md
 * lists these choices. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <math.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <webp/decode.h>
#include <gif_lib.h>

#include "media/media_internal.h"

#define IMAGE_MAX_FILE_BYTES (1ull << 30)   /* g4_image_load: 1 GiB */
#define JPEG_MAX_SCANS 500                  /* progressive-JPEG CPU bomb guard */

/* ---- shared helpers ---- */

g4_status g4_media_fail(char *err, size_t errlen, g4_status s, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        size_t n = strlen(err);
        while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == '\r' || err[n - 1] == ' ')) err[--n] = 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)err[i] < 0x20) err[i] = ' ';
    }
    return s;
}

g4_status g4_media_file_open(const char *path, uint64_t max_bytes, const char *what,
                             g4_media_file *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    if (!path) return g4_media_fail(err, errlen, G4_ERR_INVALID, "%s: no file name", what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return g4_media_fail(err, errlen, G4_ERR_IO, "cannot open %s file '%s': %s", what, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return g4_media_fail(err, errlen, G4_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return g4_media_fail(err, errlen, G4_ERR_IO, "'%s' is a directory, not a %s file", path, what);
    }
    if (S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size > max_bytes) {
            close(fd);
            return g4_media_fail(err, errlen, G4_ERR_INVALID, "%s file '%s' is too large (%llu bytes; limit %llu)",
                                 what, path, (unsigned long long)st.st_size, (unsigned long long)max_bytes);
        }
        if (st.st_size > 0) {
            void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (m != MAP_FAILED) {
                close(fd);
                f->map = m;
                f->map_len = (size_t)st.st_size;
                f->data = m;
                f->len = (size_t)st.st_size;
                return G4_OK;
            }
        }
    }
    /* Not mappable (pipe, character device, empty file, exotic file
     * system): read it, growing the buffer geometrically up to the cap. */
    size_t cap = 0, n = 0;
    uint8_t *buf = NULL;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > max_bytes + 1) ncap = (size_t)max_bytes + 1;
            if (ncap <= cap) {
                free(buf);
                close(fd);
                return g4_media_fail(err, errlen, G4_ERR_INVALID, "%s file '%s' is too large (limit %llu bytes)",
                                     what, path, (unsigned long long)max_bytes);
            }
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                close(fd);
                return g4_media_fail(err, errlen, G4_ERR_NOMEM, "out of memory reading '%s'", path);
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            close(fd);
            return g4_media_fail(err, errlen, G4_ERR_IO, "cannot read '%s': %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (n > max_bytes) {
        free(buf);
        return g4_media_fail(err, errlen, G4_ERR_INVALID, "%s file '%s' is too large (limit %llu bytes)",
                             what, path, (unsigned long long)max_bytes);
    }
    f->heap = buf;
    f->data = buf;
    f->len = n;
    return G4_OK;
}

void g4_media_file_close(g4_media_file *f)
{
    if (!f) return;
    if (f->map) munmap(f->map, f->map_len);
    free(f->heap);
    memset(f, 0, sizeof *f);
}

/* The checks every decoder makes on the header's size before it allocates:
 * zero sizes refused, the pixel cap, and width*height*3 fitting size_t. */
static g4_status check_size(const char *fmt, uint64_t w, uint64_t h, uint64_t max_pixels,
                            size_t *bytes, char *err, size_t errlen)
{
    if (w == 0 || h == 0)
        return g4_media_fail(err, errlen, G4_ERR_FORMAT, "%s: image has zero size (%llux%llu)", fmt,
                             (unsigned long long)w, (unsigned long long)h);
    if (w > UINT32_MAX || h > UINT32_MAX || w * h > max_pixels)
        return g4_media_fail(err, errlen, G4_ERR_INVALID,
                             "%s: image of %llux%llu pixels exceeds the limit of %llu pixels", fmt,
                             (unsigned long long)w, (unsigned long long)h, (unsigned long long)max_pixels);
    uint64_t b = w * h;   /* <= max_pixels, and both sides < 2^32: no overflow */
    if (b > SIZE_MAX / 3)
        return g4_media_fail(err, errlen, G4_ERR_NOMEM, "%s: %llux%llu image does not fit in memory", fmt,
                             (unsigned long long)w, (unsigned long long)h);
    *bytes = (size_t)(b * 3);
    return G4_OK;
}

static g4_status alloc_pixels(const char *fmt, size_t bytes, uint8_t **out, char *err, size_t errlen)
{
    *out = malloc(bytes);
    if (!*out)
        return g4_media_fail(err, errlen, G4_ERR_NOMEM, "%s: cannot allocate %zu bytes of pixels", fmt, bytes);
    return G4_OK;
}

/* ---- JPEG (libjpeg-turbo) ---- */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX + 64];
} jpeg_errmgr;

static void jpeg_on_error(j_common_ptr c)
{
    jpeg_errmgr *e = (jpeg_errmgr *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}

/* libjpeg reports damaged or missing entropy-coded data only as warnings
 * and fills the rest of the image with grey; a half-grey picture is a
 * silent truncation, so those warnings are fatal here.  The benign ones
 * (extra bytes between markers, odd but decodable headers) are ignored,
 * as every common decoder does. */
static void jpeg_on_message(j_common_ptr c, int level)
{
    if (level >= 0) return;   /* trace output */
    switch (c->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_MUST_RESYNC:
    case JWRN_ARITH_BAD_CODE:
        jpeg_on_error(c);
        break;
    default:
        break;
    }
}

static void jpeg_on_output(j_common_ptr c) { (void)c; }

static void jpeg_on_progress(j_common_ptr c)
{
    if (!c->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_errmgr *e = (jpeg_errmgr *)c->err;
        snprintf(e->msg, sizeof e->msg, "more than %d progressive scans", JPEG_MAX_SCANS);
        e->pub.msg_code = 0;
        longjmp(e->jb, 1);
    }
}

/* Pillow reads every CMYK JPEG as Adobe-inverted ("CMYK;I") and converts
 * with r = k' - c*k'/255 (k' = 255 - k, integer rounding as below). */
static uint8_t cmyk_channel(int inv_c, int inv_k)
{
    int c = 255 - inv_c, nk = inv_k;   /* nk = 255 - k = the stored byte */
    int t = c * nk + 128;
    int v = nk - (((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static g4_status decode_jpeg(const uint8_t *data, size_t len, uint64_t max_pixels, g4_image *out,
                             char *err, size_t errlen)
{
    struct jpeg_decompress_struct ci;
    struct jpeg_progress_mgr prog;
    jpeg_errmgr je;
    uint8_t *volatile pix = NULL;
    uint8_t *volatile row4 = NULL;
    g4_status st = G4_OK;

    memset(&ci, 0, sizeof ci);
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_on_error;
    je.pub.emit_message = jpeg_on_message;
    je.pub.output_message = jpeg_on_output;
    je.msg[0] = 0;
    if (setjmp(je.jb)) {
        jpeg_destroy_decompress(&ci);
        free(pix);
        free(row4);
        /* Valid files using what libjpeg-turbo does not implement (lossless
         * or 12-bit JPEG, odd colour spaces) are unsupported, not damaged. */
        int code = je.pub.msg_code;
        g4_status es = code == JERR_SOF_UNSUPPORTED || code == JERR_BAD_PRECISION || code == JERR_CONVERSION_NOTIMPL ||
                               code == JERR_NOT_COMPILED || code == JERR_NOTIMPL
                           ? G4_ERR_UNSUPPORTED
                           : G4_ERR_FORMAT;
        return g4_media_fail(err, errlen, es, "JPEG: %s", je.msg);
    }
    jpeg_create_decompress(&ci);
    if (len > ULONG_MAX) {   /* jpeg_mem_src takes an unsigned long */
        jpeg_destroy_decompress(&ci);
        return g4_media_fail(err, errlen, G4_ERR_INVALID, "JPEG: file too large");
    }
    jpeg_mem_src(&ci, data, (unsigned long)len);
    prog.progress_monitor = jpeg_on_progress;
    ci.progress = &prog;
    jpeg_read_header(&ci, TRUE);

    size_t bytes;
    st = check_size("JPEG", ci.image_width, ci.image_height, max_pixels, &bytes, err, errlen);
    if (st != G4_OK) {
        jpeg_destroy_decompress(&ci);
        return st;
    }
    bool cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
    ci.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&ci);
    uint32_t w = ci.output_width, h = ci.output_height;
    if (w != ci.image_width || h != ci.image_height || ci.output_components != (cmyk ? 4 : 3)) {
        jpeg_destroy_decompress(&ci);
        return g4_media_fail(err, errlen, G4_ERR_FORMAT, "JPEG: unexpected output layout");
    }
    uint8_t *p;
    st = alloc_pixels("JPEG", bytes, &p, err, errlen);
    if (st != G4_OK) {
        jpeg_destroy_decompress(&ci);
        return st;
    }
    pix = p;
    if (cmyk) {
        row4 = malloc((size_t)w * 4);
        if (!row4) {
            jpeg_destroy_decompress(&ci);
            free(pix);
            return g4_media_fail(err, errlen, G4_ERR_NOMEM, "JPEG: out of memory");
        }
    }
    while (ci.output_scanline < h) {
        uint32_t y = ci.output_scanline;
        JSAMPROW r = cmyk ? row4 : pix + (size_t)y * w * 3;
        if (jpeg_read_scanlines(&ci, &r, 1) != 1) {
            snprintf(je.msg, sizeof je.msg, "decoder stopped at row %u of %u", y, h);
            je.pub.msg_code = 0;
            longjmp(je.jb, 1);
        }
        if (cmyk) {
            uint8_t *o = pix + (size_t)y * w * 3;
            for (uint32_t x = 0; x < w; x++)
                for (int c = 0; c < 3; c++) o[x * 3 + c] = cmyk_channel(row4[x * 4 + c], row4[x * 4 + 3]);
        }
    }
    /* Trailing data after the last scan cannot change a pixel: the image is
     * complete, so a damaged trailer is not worth refusing it. */
    jpeg_abort_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    free(row4);
    out->width = w;
    out->height = h;
    out->rgb = pix;
    return G4_OK;
}

/* ---- PNG (libpng) ---- */

typedef struct {
    const uint8_t *p;
    size_t len, pos;
    jmp_buf jb;
    char msg[256];
} png_src;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg ? msg : "error");
    longjmp(s->jb, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void png_read_mem(png_structp png, png_bytep out, size_t n)
{
    png_src *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) png_error(png, "truncated file");
    memcpy(out, s->p + s->pos, n);
    s->pos += n;
}

static g4_status decode_png(const uint8_t *data, size_t len, uint64_t max_pixels, g4_image *out,
                            char *err, size_t errlen)
{
    png_src src = {.p = data, .len = len, .pos = 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    if (!png) return g4_media_fail(err, errlen, G4_ERR_NOMEM, "PNG: cannot create a decoder");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return g4_media_fail(err, errlen, G4_ERR_NOMEM, "PNG: cannot create a decoder");
    }
    uint8_t *volatile pix = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(src.jb)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pix);
        free(rows);
        return g4_media_fail(err, errlen, G4_ERR_FORMAT, "PNG: %s", src.msg);
    }
    png_set_read_fn(png, &src, png_read_mem);
    /* libpng's default limit (1e6 per side) would refuse legal long strips;
     * the pixel cap is the limit that matters. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, ctype, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    size_t bytes;
    g4_status st = check_size("PNG", w, h, max_pixels, &bytes, err, errlen);
    if (st != G4_OK) {
        png_destroy_read_struct(&png, &info, NULL);
        return st;
    }
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    /* Keep the high byte, as Pillow and stb_image do for 16-bit samples. */
    if (depth == 16) png_set_strip_16(png);
    /* Also removes the alpha that palette expansion makes from tRNS. */
    png_set_strip_alpha(png);
    if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)w * 3) {
        png_destroy_read_struct(&png, &info, NULL);
        return g4_media_fail(err, errlen, G4_ERR_FORMAT, "PNG: unexpected row layout after conversion");
    }
    uint8_t *p;
    st = alloc_pixels("PNG", bytes, &p, err, errlen);
    if (st != G4_OK) {
        png_destroy_read_struct(&png, &info, NULL);
        return st;
    }
    pix = p;
    png_bytep *r = malloc((size_t)h * sizeof *r);
    if (!r) {
        png_destroy_read_struct(&png, &info, NULL);
        free(p);
        return g4_media_fail(err, errlen, G4_ERR_NOMEM, "PNG: out of memory");
    }
    rows = r;
    for (png_uint_32 y = 0; y < h; y++) r[y] = p + (size_t)y * w * 3;
    png_read_image(png, r);
    /* The chunks after the image data (IEND, text) cannot change a pixel;
     * like Pillow, we do not require them. */
    png_destroy_read_struct(&png, &info, NULL);
    free(r);
    out->width = w;
    out->height = h;
    out->rgb = p;
    return G4_OK;
}

/* ---- WebP (libwebp) ---- */

static const char *webp_status_name(VP8StatusCode s)
{
    switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "corrupt bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated file";
    default: return "decoding error";
    }
}

static g4_status decode_webp(const uint8_t *data, size_t len, uint64_t max_pixels, g4_image *out,
                             char *err, size_t errlen)
{
    WebPBitstreamFeatures f;
    VP8StatusCode s = WebPGetFeatures(data, len, &f);
    if (s != VP8_STATUS_OK) return g4_media_fail(err, errlen, G4_ERR_FORMAT, "WebP: %s", webp_status_name(s));
    if (f.has_animation)
        return g4_media_fail(err, errlen, G4_ERR_UNSUPPORTED, "WebP: animated images are not supported");
    size_t bytes;
    g4_status st = check_size("WebP", (uint64_t)(f.width < 0 ? 0 : f.width),
                              (uint64_t)(f.height < 0 ? 0 : f.height), max_pixels, &bytes, err, errlen);
    if (st != G4_OK) return st;
    uint8_t *p;
    st = alloc_pixels("WebP", bytes, &p, err, errlen);
    if (st != G4_OK) return st;
    /* WebPDecodeRGBInto drops alpha without compositing: what we want. */
    if (!WebPDecodeRGBInto(data, len, p, bytes, f.width * 3)) {
        free(p);
        /* The decoder only says "failed"; a header that parsed but data
         * that did not is damage or truncation. */
        return g4_media_fail(err, errlen, G4_ERR_FORMAT, "WebP: corrupt or truncated image data");
    }
    out->width = (uint32_t)f.width;
    out->height = (uint32_t)f.height;
    out->rgb = p;
    return G4_OK;
}

/* ---- GIF (giflib) ---- */

typedef struct {
    const uint8_t *p;
    size_t len, pos;
} mem_src;

static int gif_read(GifFileType *g, GifByteType *buf, int n)
{
    mem_src *s = g->UserData;
    if (n <= 0) return 0;
    size_t k = (size_t)n;
    if (k > s->len - s->pos) k = s->len - s->pos;
    memcpy(buf, s->p + s->pos, k);
    s->pos += k;
    return (int)k;
}

static const char *gif_error(int code)
{
    if (code == D_GIF_ERR_READ_FAILED || code == D_GIF_ERR_EOF_TOO_SOON) return "truncated file";
    const char *m = GifErrorString(code);
    return m ? m : "decoding error";
}

/* The first frame, on a canvas as Pillow builds it for frame 0: the logical
 * screen, enlarged when the frame reaches past it; pixels the frame does not
 * cover take palette entry `transparent index` (or 0 when there is none);
 * colours from the frame's colour map, else the global one, else a grey
 * ramp; the transparent index keeps its palette colour. */
static g4_status decode_gif(const uint8_t *data, size_t len, uint64_t max_pixels, g4_image *out,
                            char *err, size_t errlen)
{
    mem_src src = {data, len, 0};
    int e = 0;
    GifFileType *g = DGifOpen(&src, gif_read, &e);
    if (!g) return g4_media_fail(err, errlen, G4_ERR_FORMAT, "GIF: %s", gif_error(e));
    g4_status st = G4_OK;
    uint8_t *pix = NULL;
    GifPixelType *line = NULL;
    size_t bytes;
    int trans = -1;
    /* Refuse a bomb by its logical screen before reading anything else. */
    st = check_size("GIF", (uint64_t)(g->SWidth < 0 ? 0 : g->SWidth), (uint64_t)(g->SHeight < 0 ? 0 : g->SHeight),
                    max_pixels, &bytes, err, errlen);
    if (st != G4_OK) goto done;
    for (;;) {
        GifRecordType rt;
        if (DGifGetRecordType(g, &rt) == GIF_ERROR) {
            st = g4_media_fail(err, errlen, G4_ERR_FORMAT, "GIF: %s", gif_error(g->Error));
            goto done;
        }
        if (rt == EXTENSION_RECORD_TYPE) {
            int code;
            GifByteType *ext;
            if (DGifGetExtension(g, &code, &ext) == GIF_ERROR) {
                st = g4_media_fail(err, errlen, G4_ERR_FORMAT, "GIF: %s", gif_error(g->Error));
                goto done;
            }
            if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4) {
                GraphicsControlBlock gcb;
                if (DGifExtensionToGCB(ext[0], ext + 1, &gcb) == GIF_OK) trans = gcb.TransparentColor;
            }
            while (ext) {
                if (DGifGetExtensionNext(g, &ext) == GIF_ERROR) {
                    st = g4_media_fail(err, errlen, G4_ERR_FORMAT, "GIF: %s", gif_error(g->Error));
                    goto done;
                }
            }
            continue;
        }
        if (rt == TERMINATE_RECORD_TYPE) {
            st = g4_media_fail(err, errlen, G4_ERR_FORMAT, "GIF: the file holds no image");
            goto done;
        }
        if (rt != IMAGE_DESC_RECORD_TYPE) {
            st = g4_media_fail(err, errlen, G4_ERR_FORMAT, "GIF: unexpected record");
            goto done;
        }
        break;
    }
    if (DGifGetImageDesc(g) == GIF_ERROR) {
        st = g4_media_fail(err, errlen, G4_ERR_FORMAT, "GIF: %s", gif_error(g->Error));
        goto done;
    }
    const GifImageDesc *d = &g->Image;
    if (d->Left < 0 || d->Top < 0 || d->Width <= 0 || d->Height <= 0) {
        st = g4_media_fail(err, errlen, G4_ERR_FORMAT, "GIF: first frame has zero size");
        goto done;
    }
    uint64_t fl = (uint64_t)d->Left, ft = (uint64_t)d->Top, fw = (uint64_t)d->Width, fh = (uint64_t)d->Height;
    uint64_t cw = (uint64_t)g->SWidth, ch = (uint64_t)g->SHeight;
    if (fl + fw > cw) cw = fl + fw;
    if (ft + fh > ch) ch = ft + fh;
    st = check_size("GIF", cw, ch, max_pixels, &bytes, err, errlen);
    if (st != G4_OK) goto done;

    uint8_t pal[256][3];
    for (int i = 0; i < 256; i++) pal[i][0] = pal[i][1] = pal[i][2] = (uint8_t)i;
    const ColorMapObject *cm = d->ColorMap ? d->ColorMap : g->SColorMap;
    if (cm && cm->Colors) {
        int n = cm->ColorCount < 256 ? cm->ColorCount : 256;
        for (int i = 0; i < n; i++) {
            pal[i][0] = cm->Colors[i].Red;
            pal[i][1] = cm->Colors[i].Green;
            pal[i][2] = cm->Colors[i].Blue;
        }
    }
    st = alloc_pixels("GIF", bytes, &pix, err, errlen);
    if (st != G4_OK) goto done;
    int fill = trans >= 0 && trans < 256 ? trans : 0;
    for (size_t i = 0; i < bytes; i += 3) memcpy(pix + i, pal[fill], 3);
    line = malloc((size_t)fw);
    if (!line) {
        st = g4_media_fail(err, errlen, G4_ERR_NOMEM, "GIF: out of memory");
        goto done;
    }
    /* Interlaced frames store rows in four passes: every 8th row from 0,
     * every 8th from 4, every 4th from 2, every 2nd from 1. */
    static const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
    int passes = d->Interlace ? 4 : 1;
    for (int pass = 0; pass < passes; pass++) {
        uint64_t y0 = d->Interlace ? (uint64_t)start[pass] : 0, dy = d->Interlace ? (uint64_t)step[pass] : 1;
        for (uint64_t y = y0; y < fh; y += dy) {
            if (DGifGetLine(g, line, (int)fw) == GIF_ERROR) {
                st = g4_media_fail(err, errlen, G4_ERR_FORMAT, "GIF: %s", gif_error(g->Error));
                goto done;
            }
            uint8_t *o = pix + ((ft + y) * cw + fl) * 3;
            for (uint64_t x = 0; x < fw; x++) memcpy(o + x * 3, pal[line[x]], 3);
        }
    }
    out->width = (uint32_t)cw;
    out->height = (uint32_t)ch;
    out->rgb = pix;
    pix = NULL;
done:
    free(line);
    free(pix);
    DGifCloseFile(g, &e);
    return st;
}

/* ---- BMP (ours) ---- */

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* BITMAPINFOHEADER and its V2-V5 extensions (same first 40 bytes):
 * 1/4/8-bit palettized and 24/32-bit BGR(X), uncompressed (32-bit also with
 * the standard BGRX bit fields), bottom-up or top-down. */
static g4_status decode_bmp(const uint8_t *data, size_t len, uint64_t max_pixels, g4_image *out,
                            char *err, size_t errlen)
{
    if (len < 14 + 4) return g4_media_fail(err, errlen, G4_ERR_FORMAT, "BMP: truncated file header");
    uint32_t off = rd32(data + 10), hsz = rd32(data + 14);
    if (hsz == 12)
        return g4_media_fail(err, errlen, G4_ERR_UNSUPPORTED, "unsupported BMP: OS/2 BITMAPCOREHEADER");
    if (hsz < 40 || hsz > 1024)
        return g4_media_fail(err, errlen, G4_ERR_UNSUPPORTED, "unsupported BMP: header of %u bytes", hsz);
    if (len < 14 + (uint64_t)hsz) return g4_media_fail(err, errlen, G4_ERR_FORMAT, "BMP: truncated header");
    const uint8_t *h = data + 14;
    int32_t w = (int32_t)rd32(h + 4), hh = (int32_t)rd32(h + 8);
    uint32_t planes = rd16(h + 12), bpp = rd16(h + 14), comp = rd32(h + 16), nclr = rd32(h + 32);
    if (planes != 1) return g4_media_fail(err, errlen, G4_ERR_FORMAT, "BMP: %u planes (must be 1)", planes);
    static const char *comp_names[] = {"none", "RLE8", "RLE4", "bit fields", "JPEG", "PNG", "alpha bit fields"};
    if (comp != 0 && !(comp == 3 && bpp == 32))
        return g4_media_fail(err, errlen, G4_ERR_UNSUPPORTED, "unsupported BMP: %s compression at %u bits per pixel",
                             comp < 7 ? comp_names[comp] : "unknown", bpp);
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 24 && bpp != 32)
        return g4_media_fail(err, errlen, G4_ERR_UNSUPPORTED, "unsupported BMP: %u bits per pixel", bpp);
    if (w < 0) return g4_media_fail(err, errlen, G4_ERR_FORMAT, "BMP: negative width %d", w);
    bool top_down = hh < 0;
    uint64_t width = (uint64_t)w, height = top_down ? (uint64_t)(-(int64_t)hh) : (uint64_t)hh;
    size_t bytes;
    g4_status st = check_size("BMP", width, height, max_pixels, &bytes, err, errlen);
    if (st != G4_OK) return st;
    size_t after_hdr = 14 + (size_t)hsz;
    if (comp == 3) {
        /* The masks follow a 40-byte header; larger headers contain them. */
        size_t mo = hsz == 40 ? after_hdr : 14 + 40;
        if (hsz == 40) after_hdr += 12;
        if (len < mo + 12) return g4_media_fail(err, errlen, G4_ERR_FORMAT, "BMP: truncated bit-field masks");
        if (rd32(data + mo) != 0x00FF0000u || rd32(data + mo + 4) != 0x0000FF00u || rd32(data + mo + 8) != 0x000000FFu)
            return g4_media_fail(err, errlen, G4_ERR_UNSUPPORTED,
                                 "unsupported BMP: 32-bit bit fields other than 8-8-8 BGR");
    }
    /* Indices past the palette read as grey (i, i, i), as in Pillow. */
    uint8_t pal[256][3];
    for (int i = 0; i < 256; i++) pal[i][0] = pal[i][1] = pal[i][2] = (uint8_t)i;
    if (bpp <= 8) {
        uint32_t maxc = 1u << bpp;
        if (nclr == 0) nclr = maxc;
        if (nclr > maxc)
            return g4_media_fail(err, errlen, G4_ERR_FORMAT, "BMP: %u palette entries for %u bits per pixel", nclr, bpp);
        if ((uint64_t)after_hdr + (uint64_t)nclr * 4 > len)
            return g4_media_fail(err, errlen, G4_ERR_FORMAT, "BMP: truncated palette");
        for (uint32_t i = 0; i < nclr; i++) {
            const uint8_t *q = data + after_hdr + (size_t)i * 4;
            pal[i][0] = q[2];
            pal[i][1] = q[1];
            pal[i][2] = q[0];
        }
    }
    uint64_t stride = ((width * bpp + 31) / 32) * 4;
    if (off < after_hdr || off > len || stride * height > (uint64_t)(len - off))
        return g4_media_fail(err, errlen, G4_ERR_FORMAT, "BMP: truncated pixel data (%llu rows of %llu bytes at offset %u, file of %zu bytes)",
                             (unsigned long long)height, (unsigned long long)stride, off, len);
    uint8_t *p;
    st = alloc_pixels("BMP", bytes, &p, err, errlen);
    if (st != G4_OK) return st;
    for (uint64_t y = 0; y < height; y++) {
        const uint8_t *s = data + off + (top_down ? y : height - 1 - y) * stride;
        uint8_t *o = p + y * width * 3;
        switch (bpp) {
        case 24:
        case 32: {
            size_t n = bpp / 8;
            for (uint64_t x = 0; x < width; x++, s += n, o += 3) {
                o[0] = s[2];
                o[1] = s[1];
                o[2] = s[0];
            }
            break;
        }
        default: {
            /* Packed indices, most significant bits first. */
            unsigned per = 8 / bpp, mask = (1u << bpp) - 1;
            for (uint64_t x = 0; x < width; x++, o += 3) {
                unsigned sh = (unsigned)(per - 1 - x % per) * bpp;
                unsigned idx = (s[x / per] >> sh) & mask;
                memcpy(o, pal[idx], 3);
            }
            break;
        }
        }
    }
    out->width = (uint32_t)width;
    out->height = (uint32_t)height;
    out->rgb = p;
    return G4_OK;
}

/* ---- entry points ---- */

g4_status g4_image_decode(const void *data, size_t len, uint64_t max_pixels, g4_image *out,
                          char *err, size_t errlen)
{
    if (!out) return g4_media_fail(err, errlen, G4_ERR_INVALID, "g4_image_decode: out is NULL");
    memset(out, 0, sizeof *out);
    if (!data && len) return g4_media_fail(err, errlen, G4_ERR_INVALID, "g4_image_decode: data is NULL");
    if (len == 0) return g4_media_fail(err, errlen, G4_ERR_FORMAT, "image: empty data");
    if (max_pixels == 0) max_pixels = G4_IMAGE_DEFAULT_MAX_PIXELS;
    const uint8_t *d = data;
    if (len >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF)
        return decode_jpeg(d, len, max_pixels, out, err, errlen);
    if (len >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0)
        return decode_png(d, len, max_pixels, out, err, errlen);
    if (len >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0)
        return decode_webp(d, len, max_pixels, out, err, errlen);
    if (len >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0))
        return decode_gif(d, len, max_pixels, out, err, errlen);
    if (len >= 2 && d[0] == 'B' && d[1] == 'M')
        return decode_bmp(d, len, max_pixels, out, err, errlen);
    return g4_media_fail(err, errlen, G4_ERR_UNSUPPORTED,
                         "image: unrecognised format (expected JPEG, PNG, WebP, GIF or BMP)");
}

g4_status g4_image_load(const char *path, uint64_t max_pixels, g4_image *out, char *err, size_t errlen)
{
    if (!out) return g4_media_fail(err, errlen, G4_ERR_INVALID, "g4_image_load: out is NULL");
    memset(out, 0, sizeof *out);
    g4_media_file f;
    g4_status st = g4_media_file_open(path, IMAGE_MAX_FILE_BYTES, "image", &f, err, errlen);
    if (st != G4_OK) return st;
    char e[256];
    st = g4_image_decode(f.data, f.len, max_pixels, out, e, sizeof e);
    g4_media_file_close(&f);
    if (st != G4_OK) return g4_media_fail(err, errlen, st, "%s: %s", path, e);
    return G4_OK;
}

void g4_image_free(g4_image *img)
{
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->width = img->height = 0;
}

/* ---- the reference resize policy (spec §2.2) ---- */

g4_status g4_image_fit(uint32_t width, uint32_t height, uint32_t max_tokens,
                       uint32_t *out_width, uint32_t *out_height, char *err, size_t errlen)
{
    if (!out_width || !out_height)
        return g4_media_fail(err, errlen, G4_ERR_INVALID, "g4_image_fit: out_width and out_height are required");
    *out_width = *out_height = 0;
    if (max_tokens != 70 && max_tokens != 140 && max_tokens != 280 && max_tokens != 560 && max_tokens != 1120)
        return g4_media_fail(err, errlen, G4_ERR_INVALID,
                             "image token budget %u is not one of 70, 140, 280, 560, 1120", max_tokens);
    if (width == 0 || height == 0)
        return g4_media_fail(err, errlen, G4_ERR_INVALID, "cannot fit an image of zero size (%ux%u)", width, height);
    const double unit = 48.0;   /* patch 16 x pooling 3 */
    double target = (double)max_tokens * 9.0 * 256.0;
    double f = sqrt(target / ((double)height * (double)width));
    /* Every product below is < 2^53 (f*side <= sqrt(target*2^32)), so the
     * floors are exact for the reference's doubles. */
    uint64_t h = (uint64_t)floor(f * (double)height / unit) * 48;
    uint64_t w = (uint64_t)floor(f * (double)width / unit) * 48;
    if (h == 0 && w == 0)
        return g4_media_fail(err, errlen, G4_ERR_INVALID, "image %ux%u cannot be fitted to %u tokens", width, height, max_tokens);
    uint64_t max_side = (uint64_t)max_tokens * 48;
    if (h == 0) {
        h = 48;
        w = (uint64_t)(width / height) * 48;
        if (w > max_side) w = max_side;
    } else if (w == 0) {
        w = 48;
        h = (uint64_t)(height / width) * 48;
        if (h > max_side) h = max_side;
    }
    if ((double)(h * w) > target)
        return g4_media_fail(err, errlen, G4_ERR_INVALID, "image %ux%u: fitted size %llux%llu exceeds %u tokens",
                             width, height, (unsigned long long)w, (unsigned long long)h, max_tokens);
    *out_width = (uint32_t)w;
    *out_height = (uint32_t)h;
    return G4_OK;
}
