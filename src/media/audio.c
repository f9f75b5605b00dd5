/* audio.c - audio files to mono float samples at 16 kHz (multimodal spec
 * §3.1): libsndfile decodes (reading from memory through its virtual I/O),
 * channels are averaged, libsoxr resamples.
 *
 * Resampler quality: SOXR_HQ (20-bit precision, linear phase, no delay),
 * the setting librosa.load(..., sr=16000) uses by default, i.e. what a
 * Python reference pipeline most likely did.  It is far below the noise of
 * any lossy input and of the projector's own bf16 training.
 *
 * A file already at 16 kHz is not resampled: its samples are exactly what
 * libsndfile gives (PCM16: value / 32768). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sndfile.h>
#include <soxr.h>

#include "media/media_internal.h"

#define AUDIO_MAX_FILE_BYTES (4ull << 30)   /* g4_audio_load: 4 GiB */
#define AUDIO_RATE 16000
#define AUDIO_MAX_CHANNELS 1024            /* libsndfile's own limit */
#define AUDIO_MAX_SRC_RATE 1000000
#define AUDIO_CHUNK_FRAMES 16384

typedef struct {
    const uint8_t *p;
    sf_count_t len, pos;
} vio_src;

static sf_count_t vio_get_len(void *u) { return ((vio_src *)u)->len; }

static sf_count_t vio_seek(sf_count_t off, int whence, void *u)
{
    vio_src *s = u;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? s->pos : whence == SEEK_END ? s->len : -1;
    if (base < 0) return -1;
    if ((off < 0 && -off > base) || (off > 0 && off > INT64_MAX - base)) return -1;
    s->pos = base + off;
    return s->pos;
}

static sf_count_t vio_read(void *ptr, sf_count_t n, void *u)
{
    vio_src *s = u;
    if (n <= 0 || s->pos >= s->len) return 0;
    if (n > s->len - s->pos) n = s->len - s->pos;
    memcpy(ptr, s->p + s->pos, (size_t)n);
    s->pos += n;
    return n;
}

static sf_count_t vio_write(const void *ptr, sf_count_t n, void *u)
{
    (void)ptr;
    (void)n;
    (void)u;
    return 0;
}

static sf_count_t vio_tell(void *u) { return ((vio_src *)u)->pos; }

/* The containers we accept; libsndfile also reads a long tail of old
 * formats (PAF, SVX, VOC, ...) that nobody sends to a speech model, and
 * every one of them is attack surface. */
static const char *container_name(int format)
{
    switch (format & SF_FORMAT_TYPEMASK) {
    case SF_FORMAT_WAV: return "WAV";
    case SF_FORMAT_WAVEX: return "WAV";
    case SF_FORMAT_RF64: return "RF64";
    case SF_FORMAT_W64: return "W64";
    case SF_FORMAT_AIFF: return "AIFF";
    case SF_FORMAT_AU: return "AU";
    case SF_FORMAT_CAF: return "CAF";
    case SF_FORMAT_FLAC: return "FLAC";
    case SF_FORMAT_OGG: return (format & SF_FORMAT_SUBMASK) == SF_FORMAT_OPUS ? "Opus" : "Vorbis";
    case SF_FORMAT_MPEG: return "MP3";
    default: return NULL;
    }
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* libsndfile shortens a WAV whose data chunk runs past the end of the file
 * to what is there, without an error: a silent truncation.  Returns the
 * declared and present byte counts of such a data chunk (0 when whole, or
 * when the size is a streaming placeholder: 0 or 0xFFFFFFFF). */
static int wav_truncated(const uint8_t *d, size_t len, uint64_t *declared, uint64_t *present)
{
    if (len < 12 || memcmp(d, "RIFF", 4) != 0 || memcmp(d + 8, "WAVE", 4) != 0) return 0;
    size_t off = 12;
    for (int i = 0; i < 256 && len - off >= 8; i++) {
        uint32_t sz = le32(d + off + 4);
        if (memcmp(d + off, "data", 4) == 0) {
            uint64_t avail = len - off - 8;
            if (sz != 0 && sz != 0xFFFFFFFFu && sz > avail) {
                *declared = sz;
                *present = avail;
                return 1;
            }
            return 0;
        }
        uint64_t next = (uint64_t)off + 8 + sz + (sz & 1);
        if (next > len) return 0;   /* damaged header: libsndfile will say so */
        off = (size_t)next;
    }
    return 0;
}

/* libsndfile 1.2.0 does not notice an Ogg file cut between two pages (it
 * decodes a shorter stream), and when it refuses one cut inside a page it
 * leaks the Vorbis decoder's state (5.7 KB).  Ogg pages delimit themselves
 * (27-byte header, segment table, body) and the last one carries the
 * end-of-stream flag, so a cut is easy to see first.  Returns false when
 * the data is not Ogg, or is damaged in ways left to libsndfile. */
static bool ogg_truncated(const uint8_t *d, size_t len, char *why, size_t whylen)
{
    if (len < 4 || memcmp(d, "OggS", 4) != 0) return false;
    size_t off = 0;
    int last_flags = 0;
    while (off < len) {
        size_t left = len - off;
        if (left < 27 || left - 27 < d[off + 26]) {
            snprintf(why, whylen, "incomplete page header at byte %zu", off);
            return true;
        }
        if (memcmp(d + off, "OggS", 4) != 0) return false;
        size_t nseg = d[off + 26], body = 0;
        for (size_t i = 0; i < nseg; i++) body += d[off + 27 + i];
        if (left - 27 - nseg < body) {
            snprintf(why, whylen, "incomplete page at byte %zu", off);
            return true;
        }
        last_flags = d[off + 5];
        off += 27 + nseg + body;
    }
    if (!(last_flags & 4)) {
        snprintf(why, whylen, "the last page does not end the stream");
        return true;
    }
    return false;
}

static g4_status too_long(char *err, size_t errlen, const char *fmt, double seconds, bool at_least, double limit)
{
    return g4_media_fail(err, errlen, G4_ERR_INVALID, "audio: %s: %s%.2f s long, over the limit of %.2f s",
                         fmt, at_least ? "at least " : "", seconds, limit);
}

static g4_status resample(const float *in, uint64_t n, uint32_t rate, float **out, uint64_t *n_out,
                          char *err, size_t errlen)
{
    double want = (double)n * AUDIO_RATE / rate;
    /* soxr emits round(n * 16000 / rate) samples; the slack only guards. */
    double cap = ceil(want) + 16;
    if (cap > (double)(SIZE_MAX / sizeof(float)))
        return g4_media_fail(err, errlen, G4_ERR_NOMEM, "audio: %llu samples do not fit in memory", (unsigned long long)n);
    size_t olen = (size_t)cap;
    float *o = malloc(olen * sizeof *o);
    if (!o) return g4_media_fail(err, errlen, G4_ERR_NOMEM, "audio: cannot allocate %zu samples", olen);
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    soxr_runtime_spec_t rt = soxr_runtime_spec(1);   /* no OpenMP pool inside a library */
    size_t idone = 0, odone = 0;
    soxr_error_t e = soxr_oneshot(rate, AUDIO_RATE, 1, in, (size_t)n, &idone, o, olen, &odone, &io, &q, &rt);
    if (e) {
        free(o);
        return g4_media_fail(err, errlen, G4_ERR_FORMAT, "audio: resampling %u Hz -> %d Hz failed: %s", rate, AUDIO_RATE, e);
    }
    *out = o;
    *n_out = odone;
    return G4_OK;
}

g4_status g4_audio_decode(const void *data, size_t len, double max_seconds, g4_audio *out,
                          char *err, size_t errlen)
{
    if (!out) return g4_media_fail(err, errlen, G4_ERR_INVALID, "g4_audio_decode: out is NULL");
    memset(out, 0, sizeof *out);
    if (!data && len) return g4_media_fail(err, errlen, G4_ERR_INVALID, "g4_audio_decode: data is NULL");
    if (!(max_seconds >= 0) || isinf(max_seconds))
        return g4_media_fail(err, errlen, G4_ERR_INVALID, "g4_audio_decode: max_seconds must be finite and >= 0");
    if (len == 0) return g4_media_fail(err, errlen, G4_ERR_FORMAT, "audio: empty data");
    if ((uint64_t)len > (uint64_t)INT64_MAX)
        return g4_media_fail(err, errlen, G4_ERR_INVALID, "audio: data too large");
    uint64_t decl, pres;
    if (wav_truncated(data, len, &decl, &pres))
        return g4_media_fail(err, errlen, G4_ERR_FORMAT,
                             "audio: WAV: truncated file (data chunk declares %llu bytes, %llu present)",
                             (unsigned long long)decl, (unsigned long long)pres);

    char why[96];
    if (ogg_truncated(data, len, why, sizeof why))
        return g4_media_fail(err, errlen, G4_ERR_FORMAT, "audio: OGG: truncated file (%s)", why);

    vio_src src = {data, (sf_count_t)len, 0};
    SF_VIRTUAL_IO vio = {vio_get_len, vio_seek, vio_read, vio_write, vio_tell};
    SF_INFO si;
    memset(&si, 0, sizeof si);
    SNDFILE *sf = sf_open_virtual(&vio, SFM_READ, &si, &src);
    if (!sf) {
        /* A NULL handle's message is libsndfile's last global error. */
        int code = sf_error(NULL);
        return g4_media_fail(err, errlen, code == SF_ERR_UNRECOGNISED_FORMAT ? G4_ERR_UNSUPPORTED : G4_ERR_FORMAT,
                             "audio: cannot decode (%s)", sf_error_number(code));
    }
    g4_status st = G4_OK;
    float *chunk = NULL, *mono = NULL;
    const char *fmt = container_name(si.format);
    if (!fmt) {
        SF_FORMAT_INFO fi = {.format = si.format & SF_FORMAT_TYPEMASK};
        const char *nm = sf_command(sf, SFC_GET_FORMAT_INFO, &fi, sizeof fi) == 0 && fi.name ? fi.name : "this";
        st = g4_media_fail(err, errlen, G4_ERR_UNSUPPORTED,
                           "audio: %s files are not supported (WAV, FLAC, OGG Vorbis/Opus, MP3, AIFF, AU, CAF, W64, RF64)", nm);
        goto done;
    }
    if (si.channels < 1 || si.channels > AUDIO_MAX_CHANNELS || si.samplerate < 1 || si.samplerate > AUDIO_MAX_SRC_RATE) {
        st = g4_media_fail(err, errlen, G4_ERR_FORMAT, "audio: %s: %d channels at %d Hz is not a usable stream",
                           fmt, si.channels, si.samplerate);
        goto done;
    }
    uint32_t rate = (uint32_t)si.samplerate, nch = (uint32_t)si.channels;
    bool exact_len = (si.format & SF_FORMAT_TYPEMASK) != SF_FORMAT_MPEG;   /* MP3 lengths are estimates */
    if (si.frames < 0) si.frames = 0;
    if (max_seconds > 0 && exact_len && (double)si.frames / rate > max_seconds) {
        st = too_long(err, errlen, fmt, (double)si.frames / rate, false, max_seconds);
        goto done;
    }
    /* The frame limit the samples are read under: the duration limit, and
     * what a float buffer can hold. */
    uint64_t max_frames = (uint64_t)(SIZE_MAX / sizeof(float) / 2);
    if (max_seconds > 0 && max_seconds * rate < (double)max_frames) max_frames = (uint64_t)floor(max_seconds * rate);

    chunk = malloc((size_t)AUDIO_CHUNK_FRAMES * nch * sizeof *chunk);
    if (!chunk) {
        st = g4_media_fail(err, errlen, G4_ERR_NOMEM, "audio: out of memory");
        goto done;
    }
    uint64_t n = 0, cap = 0;
    if (exact_len && si.frames > 0) cap = (uint64_t)si.frames <= max_frames ? (uint64_t)si.frames : max_frames;
    if (cap) {
        mono = malloc((size_t)cap * sizeof *mono);
        if (!mono) {
            st = g4_media_fail(err, errlen, G4_ERR_NOMEM, "audio: cannot allocate %llu samples", (unsigned long long)cap);
            goto done;
        }
    }
    for (;;) {
        sf_count_t got = sf_readf_float(sf, chunk, AUDIO_CHUNK_FRAMES);
        if (got <= 0) break;
        if ((uint64_t)got > max_frames - n) {
            if (max_seconds > 0 && (double)(n + (uint64_t)got) > max_seconds * rate)
                st = too_long(err, errlen, fmt, (double)(n + (uint64_t)got) / rate, true, max_seconds);
            else
                st = g4_media_fail(err, errlen, G4_ERR_NOMEM, "audio: %s: too many samples", fmt);
            goto done;
        }
        if (n + (uint64_t)got > cap) {
            uint64_t ncap = cap ? cap * 2 : 65536;
            if (ncap < n + (uint64_t)got) ncap = n + (uint64_t)got;
            if (ncap > max_frames) ncap = max_frames;
            float *nb = realloc(mono, (size_t)ncap * sizeof *nb);
            if (!nb) {
                st = g4_media_fail(err, errlen, G4_ERR_NOMEM, "audio: cannot allocate %llu samples", (unsigned long long)ncap);
                goto done;
            }
            mono = nb;
            cap = ncap;
        }
        for (sf_count_t i = 0; i < got; i++) {
            const float *f = chunk + (size_t)i * nch;
            float v;
            if (nch == 1) {
                v = f[0];
            } else {
                double s = 0;
                for (uint32_t c = 0; c < nch; c++) s += f[c];
                v = (float)(s / nch);
            }
            if (!isfinite(v)) {
                st = g4_media_fail(err, errlen, G4_ERR_FORMAT, "audio: %s: sample %llu is not a finite number", fmt,
                                   (unsigned long long)(n + (uint64_t)i));
                goto done;
            }
            mono[n + (uint64_t)i] = v;
        }
        n += (uint64_t)got;
    }
    if (sf_error(sf) != SF_ERR_NO_ERROR) {
        st = g4_media_fail(err, errlen, G4_ERR_FORMAT, "audio: %s: corrupt data after %llu frames (%s)", fmt,
                           (unsigned long long)n, sf_strerror(sf));
        goto done;
    }
    if (exact_len && n < (uint64_t)si.frames) {
        st = g4_media_fail(err, errlen, G4_ERR_FORMAT, "audio: %s: truncated or corrupt (%llu of %lld frames decoded)",
                           fmt, (unsigned long long)n, (long long)si.frames);
        goto done;
    }
    if (max_seconds > 0 && (double)n / rate > max_seconds) {
        st = too_long(err, errlen, fmt, (double)n / rate, false, max_seconds);
        goto done;
    }
    if (n == 0) {
        /* A valid file without samples decodes to zero samples; the
         * embedder is where an empty clip is refused. */
        free(mono);
        mono = NULL;
    } else if (rate != AUDIO_RATE) {
        float *r = NULL;
        uint64_t nr = 0;
        st = resample(mono, n, rate, &r, &nr, err, errlen);
        if (st != G4_OK) goto done;
        free(mono);
        mono = r;
        n = nr;
    }
    out->samples = mono;
    out->n_samples = n;
    out->src_rate = rate;
    out->src_channels = nch;
    mono = NULL;
done:
    free(chunk);
    free(mono);
    sf_close(sf);
    return st;
}

g4_status g4_audio_load(const char *path, double max_seconds, g4_audio *out, char *err, size_t errlen)
{
    if (!out) return g4_media_fail(err, errlen, G4_ERR_INVALID, "g4_audio_load: out is NULL");
    memset(out, 0, sizeof *out);
    g4_media_file f;
    g4_status st = g4_media_file_open(path, AUDIO_MAX_FILE_BYTES, "audio", &f, err, errlen);
    if (st != G4_OK) return st;
    char e[256];
    st = g4_audio_decode(f.data, f.len, max_seconds, out, e, sizeof e);
    g4_media_file_close(&f);
    if (st != G4_OK) return g4_media_fail(err, errlen, st, "%s: %s", path, e);
    return G4_OK;
}

void g4_audio_free(g4_audio *a)
{
    if (!a) return;
    free(a->samples);
    a->samples = NULL;
    a->n_samples = 0;
}
