/*
 * gguf_write.c - streaming GGUF v3 writer.
 *
 * A writer goes through three states:
 *
 *     DECLARE  metadata setters and gguf_w_tensor() collect the header;
 *     DATA     gguf_w_begin() has written the header and tensor infos, and
 *              tensor bytes are appended in declaration order with
 *              gguf_w_data() / gguf_w_end_tensor();
 *     DONE     gguf_w_finish() flushed and closed the file;
 *
 * plus FAILED, which any error enters and never leaves; every later call
 * then returns the first error message again, so a caller may check only
 * the final gguf_w_finish().
 *
 * Why streaming: a 7 GB model must be written (quantized, converted) one
 * tensor at a time without holding it in memory.  That is possible because
 * a tensor's size follows from its declared type and shape, so all offsets
 * are known before the first data byte is written.  Offsets follow
 * llama.cpp's rule exactly: tensor i starts where tensor i-1 ended, rounded
 * up to the alignment, and every tensor, the last included, is followed by
 * zero padding to the alignment (llama.cpp reads the data section as the sum
 * of padded sizes).
 *
 * Metadata setters return void, so a bad key or an allocation failure is
 * remembered and reported by gguf_w_begin().  Values are serialized when
 * set, which makes the header writer a simple concatenation.  Tensor names
 * are limited to 63 bytes because llama.cpp (GGML_MAX_NAME) rejects longer
 * ones; the writer's purpose is files llama.cpp can load.
 *
 * Every fwrite/fflush/fclose result is checked (a full disk must not yield
 * a silently truncated model).  A writer freed before a successful finish
 * removes its partial file (only if it is a regular file).
 */
#include "gguf/gguf.h"
#include "kernels/quant.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define W_DEFAULT_ALIGNMENT 32u
#define W_MAX_KEY_LEN       65535u
#define W_MAX_NAME_LEN      63u       /* llama.cpp: GGML_MAX_NAME - 1 */
#define W_IOBUF_SIZE        (4u << 20)

enum { ST_DECLARE, ST_DATA, ST_DONE, ST_FAILED };

typedef struct {
    uint8_t *p;
    size_t   len, cap;
    bool     oom;
} bytes;

typedef struct {
    char    *key;
    uint32_t type;
    bytes    val;      /* serialized value (after the type field) */
} wkv;

typedef struct {
    char    *name;
    uint32_t type, n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes, offset;
} wtensor;

struct gguf_writer {
    int      state;
    char     msg[512];  /* first error; valid in ST_FAILED or when pending */
    bool     pending;   /* a metadata setter failed; reported by begin */

    wkv     *kv;
    size_t   n_kv, cap_kv;
    wtensor *t;
    size_t   n_t, cap_t;

    uint64_t alignment;
    FILE    *fp;
    char    *path;
    char    *iobuf;
    bool     regular;   /* path is a regular file we may remove on failure */
    uint64_t pos;       /* bytes written so far */
    size_t   cur;       /* tensor being written */
    uint64_t cur_bytes; /* bytes of it written so far */
};

/* ---------------------------------------------------------------- errors */

static void copy_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

/* Enters FAILED with a message and copies it to err; returns -1. */
static int fail(gguf_writer *w, char *err, size_t errlen, const char *fmt, ...)
{
    if (w->state != ST_FAILED) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->msg, sizeof w->msg, fmt, ap);
        va_end(ap);
        w->state = ST_FAILED;
    }
    copy_err(err, errlen, w->msg);
    return -1;
}

/* Re-reports the stored error (vsnprintf must not read w->msg into itself). */
static int fail_again(gguf_writer *w, char *err, size_t errlen)
{
    w->state = ST_FAILED;
    copy_err(err, errlen, w->msg);
    return -1;
}

/* Remembers the first metadata error for gguf_w_begin(). */
static void defer_err(gguf_writer *w, const char *fmt, ...)
{
    if (w->pending || w->state == ST_FAILED)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg, sizeof w->msg, fmt, ap);
    va_end(ap);
    w->pending = true;
}

/* ------------------------------------------------------------ byte buffer */

static void put(bytes *b, const void *src, size_t n)
{
    if (b->oom)
        return;
    if (n > SIZE_MAX - b->len) {
        b->oom = true;
        return;
    }
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->len + n) {
            if (nc > SIZE_MAX / 2) { nc = b->len + n; break; }
            nc *= 2;
        }
        uint8_t *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    if (n)
        memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u8(bytes *b, uint8_t v) { put(b, &v, 1); }

static void put_u32(bytes *b, uint32_t v)
{
    uint8_t le[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    put(b, le, 4);
}

static void put_u64(bytes *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_f32(bytes *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    put_u32(b, u);
}

static void put_str(bytes *b, const char *s)
{
    size_t n = strlen(s);
    put_u64(b, n);
    put(b, s, n);
}

/* ------------------------------------------------------------ lifecycle */

gguf_writer *gguf_writer_new(void)
{
    gguf_writer *w = calloc(1, sizeof *w);
    if (w) {
        w->state = ST_DECLARE;
        w->alignment = W_DEFAULT_ALIGNMENT;
    }
    return w;
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    if (w->fp) {
        /* abandoned or failed mid-write: don't leave a truncated model */
        fclose(w->fp);
        if (w->regular)
            remove(w->path);
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val.p);
    }
    for (size_t i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w->path);
    free(w->iobuf);
    free(w);
}

/* ------------------------------------------------------------- metadata */

/* Takes ownership of val.  A repeated key keeps its position, so the file
 * lists keys in first-set order. */
static void set_kv(gguf_writer *w, const char *key, uint32_t type, bytes val)
{
    if (!key || !*key) {
        defer_err(w, "metadata key is empty");
        goto drop;
    }
    if (strlen(key) > W_MAX_KEY_LEN) {
        defer_err(w, "metadata key '%.64s...' is longer than %u bytes", key, W_MAX_KEY_LEN);
        goto drop;
    }
    if (w->state != ST_DECLARE) {
        defer_err(w, "key '%s': metadata set after gguf_w_begin", key);
        goto drop;
    }
    if (val.oom) {
        defer_err(w, "key '%s': out of memory", key);
        goto drop;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].val.p);
            w->kv[i].type = type;
            w->kv[i].val = val;
            return;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t nc = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *nk = realloc(w->kv, nc * sizeof *nk);
        if (!nk) {
            defer_err(w, "key '%s': out of memory", key);
            goto drop;
        }
        w->kv = nk;
        w->cap_kv = nc;
    }
    char *k = strdup(key);
    if (!k) {
        defer_err(w, "key '%s': out of memory", key);
        goto drop;
    }
    w->kv[w->n_kv].key = k;
    w->kv[w->n_kv].type = type;
    w->kv[w->n_kv].val = val;
    w->n_kv++;
    return;
drop:
    free(val.p);
}

void gguf_w_u32(gguf_writer *w, const char *key, uint32_t v)
{
    bytes b = {0};
    put_u32(&b, v);
    set_kv(w, key, GGUF_VT_UINT32, b);
}

void gguf_w_i32(gguf_writer *w, const char *key, int32_t v)
{
    bytes b = {0};
    put_u32(&b, (uint32_t)v);
    set_kv(w, key, GGUF_VT_INT32, b);
}

void gguf_w_u64(gguf_writer *w, const char *key, uint64_t v)
{
    bytes b = {0};
    put_u64(&b, v);
    set_kv(w, key, GGUF_VT_UINT64, b);
}

void gguf_w_f32(gguf_writer *w, const char *key, float v)
{
    bytes b = {0};
    put_f32(&b, v);
    set_kv(w, key, GGUF_VT_FLOAT32, b);
}

void gguf_w_bool(gguf_writer *w, const char *key, bool v)
{
    bytes b = {0};
    put_u8(&b, v ? 1 : 0);
    set_kv(w, key, GGUF_VT_BOOL, b);
}

void gguf_w_str(gguf_writer *w, const char *key, const char *v)
{
    bytes b = {0};
    put_str(&b, v ? v : "");
    set_kv(w, key, GGUF_VT_STRING, b);
}

static void arr_header(bytes *b, uint32_t et, uint64_t n)
{
    put_u32(b, et);
    put_u64(b, n);
}

void gguf_w_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n)
{
    bytes b = {0};
    arr_header(&b, GGUF_VT_INT32, n);
    for (uint64_t i = 0; i < n && !b.oom; i++)
        put_u32(&b, (uint32_t)v[i]);
    set_kv(w, key, GGUF_VT_ARRAY, b);
}

void gguf_w_arr_u32(gguf_writer *w, const char *key, const uint32_t *v, uint64_t n)
{
    bytes b = {0};
    arr_header(&b, GGUF_VT_UINT32, n);
    for (uint64_t i = 0; i < n && !b.oom; i++)
        put_u32(&b, v[i]);
    set_kv(w, key, GGUF_VT_ARRAY, b);
}

void gguf_w_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n)
{
    bytes b = {0};
    arr_header(&b, GGUF_VT_FLOAT32, n);
    for (uint64_t i = 0; i < n && !b.oom; i++)
        put_f32(&b, v[i]);
    set_kv(w, key, GGUF_VT_ARRAY, b);
}

void gguf_w_arr_bool(gguf_writer *w, const char *key, const bool *v, uint64_t n)
{
    bytes b = {0};
    arr_header(&b, GGUF_VT_BOOL, n);
    for (uint64_t i = 0; i < n && !b.oom; i++)
        put_u8(&b, v[i] ? 1 : 0);
    set_kv(w, key, GGUF_VT_ARRAY, b);
}

void gguf_w_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n)
{
    bytes b = {0};
    arr_header(&b, GGUF_VT_STRING, n);
    for (uint64_t i = 0; i < n && !b.oom; i++)
        put_str(&b, v[i] ? v[i] : "");
    set_kv(w, key, GGUF_VT_ARRAY, b);
}

/* Grows b to hold at least `extra` more bytes (one allocation for a big
 * string array instead of log2(n) doublings). */
static void reserve(bytes *b, uint64_t extra)
{
    if (b->oom || extra <= b->cap - b->len)
        return;
    if (extra > (uint64_t)(SIZE_MAX - b->len)) {
        b->oom = true;
        return;
    }
    size_t nc = b->len + (size_t)extra;
    uint8_t *np = realloc(b->p, nc);
    if (!np) {
        b->oom = true;
        return;
    }
    b->p = np;
    b->cap = nc;
}

/* Serializes n elements of type et (not ARRAY) from the reader's layout. */
static void put_raw_elems(bytes *b, uint32_t et, uint64_t n, const void *data)
{
    if (et == GGUF_VT_STRING) {
        const gguf_str *s = data;
        uint64_t total = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t add = 8 + s[i].len;
            if (s[i].len > UINT64_MAX - 8 || add > UINT64_MAX - total) {
                b->oom = true;
                return;
            }
            total += add;
        }
        reserve(b, total);
        for (uint64_t i = 0; i < n && !b->oom; i++) {
            put_u64(b, s[i].len);
            if (s[i].len > SIZE_MAX) {
                b->oom = true;
                return;
            }
            put(b, s[i].ptr, (size_t)s[i].len);
        }
        return;
    }
    uint64_t es = gguf_vtype_size(et);
    if (n > UINT64_MAX / es || n * es > SIZE_MAX) {
        b->oom = true;
        return;
    }
    /* GGUF is little-endian and so is the reader's raw data: a byte copy */
    put(b, data, (size_t)(n * es));
}

void gguf_w_raw(gguf_writer *w, const char *key, uint32_t type, uint32_t arr_type,
                uint64_t n, const void *data)
{
    bytes b = {0};
    const char *k = key ? key : "";
    if (type == GGUF_VT_ARRAY) {
        if (arr_type == GGUF_VT_ARRAY) {
            defer_err(w, "key '%s': arrays of arrays are not supported", k);
            return;
        }
        if (arr_type != GGUF_VT_STRING && gguf_vtype_size(arr_type) == 0) {
            defer_err(w, "key '%s': unknown array element type %" PRIu32, k, arr_type);
            return;
        }
        if (n && !data) {
            defer_err(w, "key '%s': no data for %" PRIu64 " elements", k, n);
            return;
        }
        arr_header(&b, arr_type, n);
        if (n)
            put_raw_elems(&b, arr_type, n, data);
    } else {
        if (type != GGUF_VT_STRING && gguf_vtype_size(type) == 0) {
            defer_err(w, "key '%s': unknown value type %" PRIu32, k, type);
            return;
        }
        if (n != 1 || !data) {
            defer_err(w, "key '%s': a scalar needs exactly one value", k);
            return;
        }
        put_raw_elems(&b, type, 1, data);
    }
    set_kv(w, key, type, b);
}

/* --------------------------------------------------------------- tensors */

int gguf_w_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                  const uint64_t *ne, char *err, size_t errlen)
{
    if (w->state == ST_FAILED)
        return fail_again(w, err, errlen);
    if (w->state != ST_DECLARE)
        return fail(w, err, errlen, "tensor '%s': declared after gguf_w_begin", name ? name : "");
    if (!name || !*name)
        return fail(w, err, errlen, "tensor %zu: empty name", w->n_t);
    if (strlen(name) > W_MAX_NAME_LEN)
        return fail(w, err, errlen, "tensor '%s': name longer than %u bytes", name, W_MAX_NAME_LEN);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return fail(w, err, errlen, "tensor '%s': declared twice", name);
    const g4_type_traits *tr = g4_type_get(type);
    if (!tr)
        return fail(w, err, errlen, "tensor '%s': unknown ggml type id %" PRIu32, name, type);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return fail(w, err, errlen, "tensor '%s': n_dims %" PRIu32 " is not in 1..%d", name, n_dims,
                    GGUF_MAX_DIMS);

    wtensor t = { .type = type, .n_dims = n_dims };
    uint64_t nel = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] == 0)
            return fail(w, err, errlen, "tensor '%s': ne[%" PRIu32 "] is 0", name, d);
        if (t.ne[d] > (uint64_t)INT64_MAX / nel)
            return fail(w, err, errlen, "tensor '%s': element count overflows int64", name);
        nel *= t.ne[d];
    }
    if (t.ne[0] % tr->blck != 0)
        return fail(w, err, errlen, "tensor '%s': ne[0] = %" PRIu64 " is not a multiple of the %s block size %"
                    PRIu32, name, t.ne[0], tr->name, tr->blck);
    uint64_t nblocks = nel / tr->blck;
    if (nblocks > UINT64_MAX / tr->type_size)
        return fail(w, err, errlen, "tensor '%s': byte size overflows", name);
    t.nbytes = nblocks * tr->type_size;

    if (w->n_t == w->cap_t) {
        size_t nc = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *nt = realloc(w->t, nc * sizeof *nt);
        if (!nt)
            return fail(w, err, errlen, "tensor '%s': out of memory", name);
        w->t = nt;
        w->cap_t = nc;
    }
    t.name = strdup(name);
    if (!t.name)
        return fail(w, err, errlen, "tensor '%s': out of memory", name);
    w->t[w->n_t++] = t;
    return 0;
}

/* ------------------------------------------------------------------ I/O */

static int wr(gguf_writer *w, const void *p, size_t n, char *err, size_t errlen)
{
    if (n && fwrite(p, 1, n, w->fp) != n)
        return fail(w, err, errlen, "write to '%s' failed: %s", w->path, strerror(errno));
    w->pos += n;
    return 0;
}

static int pad(gguf_writer *w, char *err, size_t errlen)
{
    static const uint8_t zeros[4096];
    uint64_t mask = w->alignment - 1;
    uint64_t n = ((w->pos + mask) & ~mask) - w->pos;
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (wr(w, zeros, k, err, errlen))
            return -1;
        n -= k;
    }
    return 0;
}

int gguf_w_begin(gguf_writer *w, const char *path, char *err, size_t errlen)
{
    if (w->state == ST_FAILED)
        return fail_again(w, err, errlen);
    if (w->pending)
        return fail_again(w, err, errlen);
    if (w->state != ST_DECLARE)
        return fail(w, err, errlen, "gguf_w_begin called twice");

    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0)
            continue;
        if (w->kv[i].type != GGUF_VT_UINT32)
            return fail(w, err, errlen, "key 'general.alignment': must be a uint32");
        const uint8_t *p = w->kv[i].val.p;
        uint32_t a = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        if (a == 0 || (a & (a - 1)) != 0)
            return fail(w, err, errlen, "key 'general.alignment': %" PRIu32 " is not a non-zero power of two", a);
        w->alignment = a;
    }

    /* offsets: each tensor starts at the aligned end of the previous one */
    uint64_t mask = w->alignment - 1, off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        if (w->t[i].nbytes > UINT64_MAX - off - mask)
            return fail(w, err, errlen, "tensor '%s': data section size overflows", w->t[i].name);
        off = (off + w->t[i].nbytes + mask) & ~mask;
    }

    w->path = strdup(path);
    w->iobuf = malloc(W_IOBUF_SIZE);
    if (!w->path || !w->iobuf)
        return fail(w, err, errlen, "out of memory");
    w->fp = fopen(path, "wb");
    if (!w->fp)
        return fail(w, err, errlen, "cannot create '%s': %s", path, strerror(errno));
    setvbuf(w->fp, w->iobuf, _IOFBF, W_IOBUF_SIZE);
    /* Only a regular file is ours to delete on failure: the target may be
     * a device or pipe (and deleting /dev/full as root would be a disaster). */
    struct stat st;
    w->regular = fstat(fileno(w->fp), &st) == 0 && S_ISREG(st.st_mode);

    bytes h = {0};
    put(&h, "GGUF", 4);
    put_u32(&h, 3);
    put_u64(&h, w->n_t);
    put_u64(&h, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(&h, w->kv[i].key);
        put_u32(&h, w->kv[i].type);
        put(&h, w->kv[i].val.p, w->kv[i].val.len);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(&h, t->name);
        put_u32(&h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_u64(&h, t->ne[d]);
        put_u32(&h, t->type);
        put_u64(&h, t->offset);
    }
    if (h.oom) {
        free(h.p);
        return fail(w, err, errlen, "out of memory building the header");
    }
    int rc = wr(w, h.p, h.len, err, errlen);
    free(h.p);
    if (rc || pad(w, err, errlen))
        return -1;
    w->state = ST_DATA;
    w->cur = 0;
    w->cur_bytes = 0;
    return 0;
}

int gguf_w_data(gguf_writer *w, const void *data, size_t n, char *err, size_t errlen)
{
    if (w->state == ST_FAILED)
        return fail_again(w, err, errlen);
    if (w->state != ST_DATA)
        return fail(w, err, errlen, "gguf_w_data called outside gguf_w_begin/gguf_w_finish");
    if (w->cur >= w->n_t)
        return fail(w, err, errlen, "data written after all %zu declared tensors", w->n_t);
    const wtensor *t = &w->t[w->cur];
    if (n > t->nbytes - w->cur_bytes)
        return fail(w, err, errlen, "tensor '%s': %" PRIu64 " bytes written, but its type and shape give %" PRIu64,
                    t->name, w->cur_bytes + n, t->nbytes);
    if (wr(w, data, n, err, errlen))
        return -1;
    w->cur_bytes += n;
    return 0;
}

int gguf_w_end_tensor(gguf_writer *w, char *err, size_t errlen)
{
    if (w->state == ST_FAILED)
        return fail_again(w, err, errlen);
    if (w->state != ST_DATA || w->cur >= w->n_t)
        return fail(w, err, errlen, "gguf_w_end_tensor called with no tensor in progress");
    const wtensor *t = &w->t[w->cur];
    if (w->cur_bytes != t->nbytes)
        return fail(w, err, errlen, "tensor '%s': %" PRIu64 " bytes written, but its type and shape give %" PRIu64,
                    t->name, w->cur_bytes, t->nbytes);
    if (pad(w, err, errlen))
        return -1;
    w->cur++;
    w->cur_bytes = 0;
    return 0;
}

int gguf_w_finish(gguf_writer *w, char *err, size_t errlen)
{
    if (w->state == ST_FAILED)
        return fail_again(w, err, errlen);
    if (w->state != ST_DATA)
        return fail(w, err, errlen, "gguf_w_finish called before gguf_w_begin or twice");
    if (w->cur < w->n_t)
        return fail(w, err, errlen, "only %zu of %zu tensors written; tensor '%s' is missing%s",
                    w->cur, w->n_t, w->t[w->cur].name, w->cur_bytes ? " or incomplete" : "");
    FILE *fp = w->fp;
    w->fp = NULL;
    int e1 = fflush(fp) != 0 ? errno : 0;
    int bad = ferror(fp);
    int e2 = fclose(fp) != 0 ? errno : 0;
    if (e1 || e2 || bad) {
        if (w->regular)
            remove(w->path);
        return fail(w, err, errlen, "write to '%s' failed: %s", w->path,
                    strerror(e1 ? e1 : e2 ? e2 : EIO));
    }
    w->state = ST_DONE;
    return 0;
}
