/* test_audio.c - audio decoding (src/media/audio.c): libsndfile decode,
 * channel averaging, libsoxr resampling to 16 kHz.
 *
 * The WAV files are written here byte by byte from the RIFF/WAVE format's
 * definition, so the expected samples are known exactly: at 16 kHz PCM16
 * must decode to value / 32768 bit for bit, 24/32-bit to value / 2^23 and
 * / 2^31, float unchanged, stereo to the mean of the channels.  Resampling
 * is checked against the analytic sine (length, accuracy away from the
 * edges, and the anti-alias filter removing what 16 kHz cannot hold).
 * FLAC, OGG Vorbis, OGG Opus and MP3 files are made with libsndfile's
 * writer (an encoder, independent of the decoder under test); FLAC, being
 * lossless, must give back the PCM16 samples exactly. */
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gemma4.h"
#include "testutil.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static char err[512];

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
static void le16(buf *b, uint32_t v) { uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; put(b, x, 2); }
static void le32(buf *b, uint32_t v) { le16(b, v & 0xFFFF); le16(b, v >> 16); }

/* A canonical WAV: fmt (PCM = 1 or IEEE float = 3), data.  `frames` holds
 * nch * n values: integers for PCM (bits 16/24/32), floats for format 3. */
static buf wav(uint32_t rate, uint32_t nch, uint32_t bits, int is_float, const void *frames, uint32_t n)
{
    buf b = {0};
    uint32_t bytes = bits / 8, data = n * nch * bytes;
    put(&b, "RIFF", 4);
    le32(&b, 4 + 8 + 16 + 8 + data);
    put(&b, "WAVE", 4);
    put(&b, "fmt ", 4);
    le32(&b, 16);
    le16(&b, is_float ? 3 : 1);
    le16(&b, nch);
    le32(&b, rate);
    le32(&b, rate * nch * bytes);
    le16(&b, nch * bytes);
    le16(&b, bits);
    put(&b, "data", 4);
    le32(&b, data);
    for (uint32_t i = 0; i < n * nch; i++) {
        if (is_float) {
            float f = ((const float *)frames)[i];
            uint32_t u;
            memcpy(&u, &f, 4);
            le32(&b, u);
        } else {
            uint32_t v = (uint32_t)((const int32_t *)frames)[i];
            uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
            put(&b, x, bytes);
        }
    }
    return b;
}

static uint32_t rnd_state = 2463534242u;
static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}

/* n random integers of `bits`, the extremes included */
static int32_t *random_pcm(uint32_t n, uint32_t bits)
{
    int32_t *v = malloc(n * sizeof *v);
    int64_t lo = -((int64_t)1 << (bits - 1)), hi = ((int64_t)1 << (bits - 1)) - 1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = rnd();
        v[i] = bits == 32 ? (int32_t)r : (int32_t)(lo + (int64_t)(r % (uint32_t)(hi - lo + 1)));
    }
    v[0] = (int32_t)lo;
    v[1] = (int32_t)hi;
    v[2] = 0;
    return v;
}

static void test_pcm_exact(void)
{
    static const uint32_t bitss[] = {16, 24, 32};
    for (size_t k = 0; k < 3; k++) {
        uint32_t bits = bitss[k], n = 5000;
        int32_t *v = random_pcm(n, bits);
        buf b = wav(16000, 1, bits, 0, v, n);
        g4_audio a;
        g4_status s = g4_audio_decode(b.p, b.n, 0, &a, err, sizeof err);
        CHECKF(s == G4_OK && a.n_samples == n && a.src_rate == 16000 && a.src_channels == 1, "PCM%u: %s", bits,
               s ? err : "bad shape");
        uint32_t bad = 0;
        double scale = ldexp(1.0, -(int)(bits - 1));
        for (uint32_t i = 0; s == G4_OK && i < n; i++) bad += a.samples[i] != (float)((double)v[i] * scale);
        CHECKF(bad == 0, "PCM%u mono 16 kHz: %u of %u samples are not value / 2^%u", bits, bad, n, bits - 1);
        CHECK(s != G4_OK || (a.samples[0] == -1.0f && a.samples[2] == 0.0f));
        g4_audio_free(&a);
        free(b.p);
        free(v);
    }
    /* float: passed through unchanged, even outside [-1, 1] */
    float f[6] = {0.25f, -1.0f, 1.0f, 1.5f, -3.0e-7f, 0.123456789f};
    buf b = wav(16000, 1, 32, 1, f, 6);
    g4_audio a;
    CHECK(g4_audio_decode(b.p, b.n, 0, &a, err, sizeof err) == G4_OK && a.n_samples == 6 &&
          memcmp(a.samples, f, sizeof f) == 0);
    g4_audio_free(&a);
    /* a NaN in a float file: refused, not passed on to the embedder */
    f[3] = NAN;
    free(b.p);
    b = wav(16000, 1, 32, 1, f, 6);
    g4_status s = g4_audio_decode(b.p, b.n, 0, &a, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "sample 3") && strstr(err, "finite"), "NaN: %d %s", s, err);
    free(b.p);
}

static void test_channels(void)
{
    uint32_t n = 3000;
    int32_t *v = random_pcm(2 * n, 16);
    buf b = wav(16000, 2, 16, 0, v, n);
    g4_audio a;
    g4_status s = g4_audio_decode(b.p, b.n, 0, &a, err, sizeof err);
    CHECKF(s == G4_OK && a.n_samples == n && a.src_channels == 2, "stereo: %s", err);
    uint32_t bad = 0;
    /* (L + R) / 65536 is exact in float: 17 significant bits */
    for (uint32_t i = 0; s == G4_OK && i < n; i++) bad += a.samples[i] != (float)((v[2 * i] + v[2 * i + 1]) / 65536.0);
    CHECKF(bad == 0, "stereo: %u of %u samples are not the mean of L and R", bad, n);
    g4_audio_free(&a);
    free(b.p);
    /* 3 channels: the mean, within float rounding */
    b = wav(16000, 3, 16, 0, v, n * 2 / 3);
    s = g4_audio_decode(b.p, b.n, 0, &a, err, sizeof err);
    CHECKF(s == G4_OK && a.n_samples == n * 2 / 3 && a.src_channels == 3, "3 channels: %s", err);
    bad = 0;
    for (uint32_t i = 0; s == G4_OK && i < a.n_samples; i++) {
        double m = (v[3 * i] + v[3 * i + 1] + v[3 * i + 2]) / 3.0 / 32768.0;
        bad += fabs(a.samples[i] - m) > 6e-8 * fabs(m) + 1e-12;
    }
    CHECKF(bad == 0, "3 channels: %u samples off the mean", bad);
    g4_audio_free(&a);
    free(b.p);
    free(v);
}

/* A sine at `rate` written as float WAV, decoded to 16 kHz: the length is
 * round(n * 16000 / rate) (+-1) and, away from the filter's edge effects,
 * the samples are the same sine sampled at 16 kHz. */
static void sine_case(uint32_t rate, double hz, double amp, uint32_t n, int stereo, double tol)
{
    uint32_t nch = stereo ? 2 : 1;
    float *f = malloc((size_t)n * nch * sizeof *f);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t c = 0; c < nch; c++) f[i * nch + c] = (float)(amp * sin(2 * M_PI * hz * i / rate));
    buf b = wav(rate, nch, 32, 1, f, n);
    g4_audio a;
    g4_status s = g4_audio_decode(b.p, b.n, 0, &a, err, sizeof err);
    double want = (double)n * 16000.0 / rate;
    CHECKF(s == G4_OK && fabs((double)a.n_samples - want) <= 1.0 && a.src_rate == rate, "sine %g Hz @%u: %s n=%llu want %.1f",
           hz, rate, s ? err : "", (unsigned long long)a.n_samples, want);
    double maxe = 0;
    uint64_t edge = 400;
    for (uint64_t i = edge; s == G4_OK && i + edge < a.n_samples; i++) {
        double e = fabs(a.samples[i] - amp * sin(2 * M_PI * hz * (double)i / 16000.0));
        if (e > maxe) maxe = e;
    }
    CHECKF(s == G4_OK && maxe <= tol, "sine %g Hz %u -> 16000 Hz: max error %.3g > %.3g", hz, rate, maxe, tol);
    printf("sine %6.0f Hz, %5u -> 16000 Hz%s: %llu samples, max error %.2e\n", hz, rate, stereo ? " (stereo)" : "",
           (unsigned long long)a.n_samples, maxe);
    g4_audio_free(&a);
    free(b.p);
    free(f);
}

static void test_resample(void)
{
    sine_case(44100, 440, 0.5, 44100, 0, 1e-5);
    sine_case(44100, 3000, 0.9, 22050, 1, 1e-5);
    sine_case(48000, 440, 0.5, 48000, 0, 1e-5);
    sine_case(8000, 440, 0.5, 8000, 0, 1e-5);
    sine_case(22050, 1234.5, 0.7, 11025, 0, 1e-5);
    sine_case(11025, 300, 0.3, 11025, 0, 1e-5);
    /* odd lengths: round(n * 16000 / rate) */
    sine_case(44100, 440, 0.5, 44101, 0, 1e-5);
    sine_case(44100, 440, 0.5, 7, 0, 10);   /* tiny: only the length matters */
    /* 10 kHz cannot exist at 16 kHz: the anti-alias filter removes it
     * instead of folding it down to 6 kHz */
    uint32_t n = 44100;
    float *f = malloc(n * sizeof *f);
    for (uint32_t i = 0; i < n; i++) f[i] = (float)(0.8 * sin(2 * M_PI * 10000.0 * i / 44100.0));
    buf b = wav(44100, 1, 32, 1, f, n);
    g4_audio a;
    g4_status s = g4_audio_decode(b.p, b.n, 0, &a, err, sizeof err);
    double e2 = 0;
    uint64_t cnt = 0;
    for (uint64_t i = 400; s == G4_OK && i + 400 < a.n_samples; i++, cnt++) e2 += (double)a.samples[i] * a.samples[i];
    double rms = cnt ? sqrt(e2 / cnt) : 1;
    CHECKF(s == G4_OK && rms < 1e-3, "10 kHz at 44.1 kHz -> 16 kHz: residual RMS %.3g (aliasing)", rms);
    printf("10 kHz tone at 44.1 kHz -> 16 kHz: residual RMS %.2e (input RMS 0.57)\n", rms);
    g4_audio_free(&a);
    free(b.p);
    free(f);
}

/* ---- compressed formats via libsndfile's encoders ---- */

static buf encode(int format, uint32_t rate, uint32_t nch, const short *pcm, uint32_t n)
{
    buf b = {0};
    char path[] = "/tmp/g4-test-audio-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return b;
    close(fd);
    SF_INFO si = {.samplerate = (int)rate, .channels = (int)nch, .format = format};
    SNDFILE *f = sf_open(path, SFM_WRITE, &si);
    if (f) {
        sf_writef_short(f, pcm, n);
        sf_close(f);
        FILE *r = fopen(path, "rb");
        uint8_t chunk[65536];
        size_t k;
        while (r && (k = fread(chunk, 1, sizeof chunk, r)) > 0) put(&b, chunk, k);
        if (r) fclose(r);
    }
    unlink(path);
    return b;
}

static void codec_case(const char *name, int format, uint32_t rate, uint32_t nch, double tol_rms, int lossless)
{
    uint32_t n = rate;   /* one second */
    short *pcm = malloc((size_t)n * nch * sizeof *pcm);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t c = 0; c < nch; c++) pcm[i * nch + c] = (short)lrint(16000.0 * sin(2 * M_PI * 440.0 * i / rate));
    buf b = encode(format, rate, nch, pcm, n);
    CHECKF(b.n > 0, "%s: the encoder wrote nothing", name);
    g4_audio a;
    g4_status s = g4_audio_decode(b.p, b.n, 0, &a, err, sizeof err);
    double want = (double)n * 16000.0 / rate;
    CHECKF(s == G4_OK && a.src_rate == rate && a.src_channels == nch && fabs((double)a.n_samples - want) <= 1.0,
           "%s: %s (n %llu, want %.0f)", name, s ? err : "shape", (unsigned long long)a.n_samples, want);
    if (s == G4_OK && lossless) {
        uint32_t bad = 0;
        for (uint32_t i = 0; i < n && i < a.n_samples; i++) bad += a.samples[i] != pcm[i * nch] / 32768.0f;
        CHECKF(bad == 0, "%s: %u samples differ from the PCM16 source", name, bad);
    }
    double e2 = 0;
    uint64_t cnt = 0;
    for (uint64_t i = 800; s == G4_OK && i + 800 < a.n_samples; i++, cnt++) {
        double e = a.samples[i] - 16000.0 / 32768.0 * sin(2 * M_PI * 440.0 * (double)i / 16000.0);
        e2 += e * e;
    }
    double rms = cnt ? sqrt(e2 / cnt) : 1;
    CHECKF(s == G4_OK && rms <= tol_rms, "%s: RMS error %.3g against the sine > %.3g", name, rms, tol_rms);
    printf("%-12s %5u Hz x%u: %llu samples at 16 kHz, RMS error %.2e\n", name, rate, nch, (unsigned long long)a.n_samples, rms);
    g4_audio_free(&a);
    /* cut in half: a clear error, or (MP3, whose length is an estimate)
     * the part that is there */
    if (b.n > 0) {
        s = g4_audio_decode(b.p, b.n / 2, 0, &a, err, sizeof err);
        if ((format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG)
            CHECKF(s == G4_OK && a.n_samples < want * 0.75, "%s cut in half: %d %s", name, s, err);
        else
            CHECKF(s == G4_ERR_FORMAT && strstr(err, "audio"), "%s cut in half: %d %s", name, s, s ? err : "decoded");
        g4_audio_free(&a);
        if ((format & SF_FORMAT_TYPEMASK) == SF_FORMAT_OGG) {
            CHECKF(s == G4_ERR_FORMAT && strstr(err, "incomplete page"), "%s cut inside a page: %s", name, err);
            /* cut exactly before a page in the middle: still a truncation */
            size_t at = b.n / 2;
            while (at > 4 && memcmp(b.p + at, "OggS", 4) != 0) at--;
            s = g4_audio_decode(b.p, at, 0, &a, err, sizeof err);
            CHECKF(at > 4 && s == G4_ERR_FORMAT && strstr(err, "does not end the stream"),
                   "%s cut between pages (at %zu): %d %s", name, at, s, s ? err : "decoded");
            g4_audio_free(&a);
        }
        s = g4_audio_decode(b.p, 40, 0, &a, err, sizeof err);
        CHECKF(s != G4_OK && strstr(err, "audio"), "%s cut to 40 bytes: %d", name, s);
    }
    free(b.p);
    free(pcm);
}

static void test_codecs(void)
{
    codec_case("FLAC", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 16000, 1, 1e-4, 1);
    codec_case("FLAC", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 44100, 2, 1e-4, 0);
    codec_case("OGG Vorbis", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 44100, 2, 0.02, 0);
    codec_case("OGG Opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, 48000, 1, 0.02, 0);
    codec_case("MP3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 44100, 1, 0.02, 0);
}

/* ---- limits and errors ---- */

static void test_errors(void)
{
    g4_audio a;
    g4_status s;
    uint32_t n = 32000;   /* 2 s at 16 kHz */
    int32_t *v = random_pcm(n, 16);
    buf b = wav(16000, 1, 16, 0, v, n);

    s = g4_audio_decode(b.p, b.n, 1.0, &a, err, sizeof err);
    CHECKF(s == G4_ERR_INVALID && strstr(err, "2.00 s") && strstr(err, "1.00 s") && a.samples == NULL,
           "over max_seconds: %d %s", s, err);
    s = g4_audio_decode(b.p, b.n, 2.0, &a, err, sizeof err);
    CHECKF(s == G4_OK && a.n_samples == n, "exactly max_seconds: %s", err);
    g4_audio_free(&a);
    CHECK(g4_audio_decode(b.p, b.n, -1, &a, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_audio_decode(b.p, b.n, NAN, &a, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_audio_decode(b.p, b.n, INFINITY, &a, err, sizeof err) == G4_ERR_INVALID);

    /* the data chunk cut short: refused (libsndfile alone would shorten it) */
    s = g4_audio_decode(b.p, b.n - 1001, 0, &a, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "WAV") && strstr(err, "truncated"), "truncated WAV: %d %s", s, err);
    /* ... unless the size is the streaming placeholder 0xFFFFFFFF */
    memset(b.p + 40, 0xFF, 4);
    s = g4_audio_decode(b.p, b.n - 1000, 0, &a, err, sizeof err);
    CHECKF(s == G4_OK && a.n_samples == n - 500, "streamed WAV: %d %s n=%llu", s, err, (unsigned long long)a.n_samples);
    g4_audio_free(&a);
    s = g4_audio_decode(b.p, 30, 0, &a, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "audio"), "header-only WAV: %d %s", s, err);

    /* zero samples: a valid file decodes to n_samples = 0 */
    free(b.p);
    b = wav(16000, 1, 16, 0, v, 0);
    s = g4_audio_decode(b.p, b.n, 0, &a, err, sizeof err);
    CHECKF(s == G4_OK && a.n_samples == 0 && a.samples == NULL, "empty WAV: %d %s", s, err);
    g4_audio_free(&a);
    free(b.p);
    b = wav(44100, 2, 16, 0, v, 0);
    s = g4_audio_decode(b.p, b.n, 0, &a, err, sizeof err);
    CHECKF(s == G4_OK && a.n_samples == 0 && a.src_rate == 44100, "empty 44.1 kHz WAV: %d %s", s, err);
    g4_audio_free(&a);

    /* garbage, empty, unknown containers */
    uint8_t junk[2000];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(rnd() >> 7);
    s = g4_audio_decode(junk, sizeof junk, 0, &a, err, sizeof err);
    CHECKF(s != G4_OK && strstr(err, "audio"), "garbage: %d %s", s, err);
    s = g4_audio_decode(junk, 0, 0, &a, err, sizeof err);
    CHECKF(s == G4_ERR_FORMAT && strstr(err, "empty"), "empty: %d %s", s, err);
    short pcm[100] = {0};
    free(b.p);
    b = encode(SF_FORMAT_VOC | SF_FORMAT_PCM_16, 16000, 1, pcm, 100);
    s = g4_audio_decode(b.p, b.n, 0, &a, err, sizeof err);
    CHECKF(b.n > 0 && s == G4_ERR_UNSUPPORTED && strstr(err, "not supported"), "VOC: %d %s", s, err);
    /* WAVE_FORMAT_EXTENSIBLE and 8-bit unsigned PCM (written by
     * libsndfile): the same samples */
    short ramp[100];
    for (int i = 0; i < 100; i++) ramp[i] = (short)(i * 600 - 30000);
    free(b.p);
    b = encode(SF_FORMAT_WAVEX | SF_FORMAT_PCM_16, 16000, 1, ramp, 100);
    s = g4_audio_decode(b.p, b.n, 0, &a, err, sizeof err);
    CHECKF(s == G4_OK && a.n_samples == 100 && a.samples[7] == ramp[7] / 32768.0f && a.samples[99] == ramp[99] / 32768.0f,
           "WAVEX: %d %s", s, err);
    g4_audio_free(&a);
    free(b.p);
    b = encode(SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 16000, 1, ramp, 100);
    s = g4_audio_decode(b.p, b.n, 0, &a, err, sizeof err);
    CHECKF(s == G4_OK && a.n_samples == 100 && fabsf(a.samples[50] - ramp[50] / 32768.0f) <= 1.0f / 128,
           "8-bit WAV: %d %s", s, err);
    g4_audio_free(&a);
    /* AIFF is accepted */
    free(b.p);
    b = encode(SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 16000, 1, pcm, 100);
    s = g4_audio_decode(b.p, b.n, 0, &a, err, sizeof err);
    CHECKF(s == G4_OK && a.n_samples == 100, "AIFF: %d %s", s, err);
    g4_audio_free(&a);
    CHECK(g4_audio_decode(NULL, 4, 0, &a, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_audio_decode(junk, 4, 0, NULL, err, sizeof err) == G4_ERR_INVALID);

    /* g4_audio_load: a file, a missing file, a directory */
    free(b.p);
    b = wav(8000, 1, 16, 0, v, 800);
    char path[] = "/tmp/g4-test-audio-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, b.p, b.n) == (ssize_t)b.n);
    if (fd >= 0) close(fd);
    s = g4_audio_load(path, 0, &a, err, sizeof err);
    CHECKF(s == G4_OK && a.src_rate == 8000 && a.n_samples == 1600, "load: %d %s", s, err);
    g4_audio_free(&a);
    s = g4_audio_load(path, 0.05, &a, err, sizeof err);
    CHECKF(s == G4_ERR_INVALID && strstr(err, path) && strstr(err, "0.10 s"), "load over the limit: %s", err);
    unlink(path);
    s = g4_audio_load("/nonexistent/a.wav", 0, &a, err, sizeof err);
    CHECKF(s == G4_ERR_IO && strstr(err, "No such file"), "missing: %d %s", s, err);
    s = g4_audio_load("/tmp", 0, &a, err, sizeof err);
    CHECKF(s == G4_ERR_IO && strstr(err, "directory"), "directory: %d %s", s, err);
    g4_audio_free(NULL);
    free(b.p);
    free(v);
}

int main(void)
{
    test_pcm_exact();
    test_channels();
    test_resample();
    test_codecs();
    test_errors();
    return tu_finish("audio");
}
