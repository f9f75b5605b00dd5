/*
 * gguf_read.c - GGUF v2/v3 reader.
 *
 * Layout of a GGUF file (all little-endian):
 *
 *     "GGUF"  u32 version  u64 n_tensors  u64 n_kv
 *     n_kv x      { string key, u32 vtype, value }
 *     n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
 *     zero padding up to a multiple of general.alignment (default 32)
 *     data section: tensor bytes at data_start + offset
 *
 * where a string is { u64 len, len bytes } and an array value is
 * { u32 elem_vtype, u64 n, n elements }.
 *
 * Design.  The whole file is mapped read-only (or handed to us as a buffer)
 * and parsed in one forward pass by a bounds-checked cursor.  Nothing is
 * copied except keys and tensor names (so callers get NUL-terminated C
 * strings) and the gguf_str descriptors of string values.  Numeric values
 * and arrays are left in place, which is why they may be unaligned and are
 * only ever read through byte loads.
 *
 * Invariants the rest of the engine relies on once gguf_open* succeeds:
 *   - every kv->data, gguf_str.ptr and tensor->data range lies inside the
 *     mapping; every tensor range lies inside the data section;
 *   - keys and tensor names are non-empty, unique and contain no NUL byte;
 *   - tensor types are known to g4_type_get(), ne[i] >= 1, n_elements fits
 *     in int64, ne[0] is a multiple of the block size, and nbytes is exact;
 *   - tensor offsets are multiples of the alignment, which is a power of two.
 *
 * Hostile input.  Every count read from the file (n_kv, n_tensors, array
 * lengths, string lengths) is compared with the bytes that remain before
 * anything is allocated for it, using the smallest encoding one item could
 * possibly have; allocation then grows with the items actually parsed.
 * Thus memory use is proportional to the file, never to a header field.  All
 * size arithmetic is overflow-checked, and the only divisions are by
 * constants or by block sizes from our own type table, never by a value from
 * the file (alignment is a power of two, so it is applied with a mask).
 * Duplicate detection and lookups use open-addressing hash tables so a
 * 262,144-entry vocabulary or thousands of tensors parse in linear time.
 *
 * Every failure produces exactly one line naming the key or tensor (by name
 * when it is known, by index before that) and what is wrong with it.
 */
#include "gguf/gguf.h"
#include "kernels/quant.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_KEY_LEN       65535u
/* Sanity caps far above any real model (Gemma 4 has ~50 keys, ~700 tensors)
 * so that a file packed with minimal entries cannot make us build an index
 * of hundreds of millions of entries. */
#define GGUF_MAX_KV            (1u << 20)
#define GGUF_MAX_TENSORS       (1u << 20)
/* Smallest possible encodings, used to reject counts before allocating:
 * a kv is key (8-byte length + >=1 byte) + u32 type + >=1 value byte; a
 * tensor info is name (8 + >=1) + u32 n_dims + one u64 ne + u32 type +
 * u64 offset. */
#define MIN_KV_BYTES     14u
#define MIN_TENSOR_BYTES 33u

struct gguf_file {
    const uint8_t *base;
    uint64_t       size;
    bool           mapped;   /* munmap on close */
    uint32_t       version;
    uint64_t       alignment;
    uint64_t       data_offset;

    gguf_kv       *kv;
    uint64_t       n_kv, cap_kv;
    gguf_tensor   *t;
    uint64_t       n_t, cap_t;

    /* Open-addressing tables of index+1 (0 = empty); capacity a power of two
     * kept at most half full. */
    uint32_t      *kv_hash;
    uint64_t       kv_hash_cap;
    uint32_t      *t_hash;
    uint64_t       t_hash_cap;
};

/* ------------------------------------------------------------------ errors */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* The one-line promise must hold even if a name from the file held a
     * newline: names are printed raw, so flatten control characters. */
    for (char *c = err; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = '?';
}

/* ------------------------------------------------------------ byte cursor */

typedef struct {
    const uint8_t *p;
    uint64_t       size;
    uint64_t       pos;   /* invariant: pos <= size */
} cursor;

static uint64_t cur_left(const cursor *c) { return c->size - c->pos; }

static uint16_t ld_u16(const uint8_t *p) { return (uint16_t)(p[0] | (unsigned)p[1] << 8); }
static uint32_t ld_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ld_u64(const uint8_t *p) { return (uint64_t)ld_u32(p) | (uint64_t)ld_u32(p + 4) << 32; }

static bool rd_u32(cursor *c, uint32_t *v)
{
    if (cur_left(c) < 4) return false;
    *v = ld_u32(c->p + c->pos);
    c->pos += 4;
    return true;
}

static bool rd_u64(cursor *c, uint64_t *v)
{
    if (cur_left(c) < 8) return false;
    *v = ld_u64(c->p + c->pos);
    c->pos += 8;
    return true;
}

/* --------------------------------------------------------------- vtypes */

/* Bytes of one scalar of a numeric or bool type; 0 for string, array and
 * unknown types.  Shared with the writer. */
uint64_t gguf_vtype_size(uint32_t vt)
{
    switch (vt) {
    case GGUF_VT_UINT8: case GGUF_VT_INT8: case GGUF_VT_BOOL: return 1;
    case GGUF_VT_UINT16: case GGUF_VT_INT16: return 2;
    case GGUF_VT_UINT32: case GGUF_VT_INT32: case GGUF_VT_FLOAT32: return 4;
    case GGUF_VT_UINT64: case GGUF_VT_INT64: case GGUF_VT_FLOAT64: return 8;
    default: return 0;   /* string, array, unknown */
    }
}

bool gguf_vtype_is_int(uint32_t vt)
{
    switch (vt) {
    case GGUF_VT_UINT8: case GGUF_VT_INT8: case GGUF_VT_UINT16: case GGUF_VT_INT16:
    case GGUF_VT_UINT32: case GGUF_VT_INT32: case GGUF_VT_UINT64: case GGUF_VT_INT64:
        return true;
    default:
        return false;
    }
}

const char *gguf_vtype_name(uint32_t vt)
{
    static const char *const names[] = {
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
        "bool", "string", "array", "uint64", "int64", "float64",
    };
    return vt < sizeof names / sizeof names[0] ? names[vt] : "unknown";
}

/* ------------------------------------------------------------ hash tables */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

typedef const char *(*name_of_fn)(const gguf_file *f, uint32_t idx);
static const char *kv_name(const gguf_file *f, uint32_t i) { return f->kv[i].key; }
static const char *t_name(const gguf_file *f, uint32_t i) { return f->t[i].name; }

/* Returns the slot holding `name` or the empty slot where it would go. */
static uint64_t hash_slot(const gguf_file *f, const uint32_t *tab, uint64_t cap,
                          name_of_fn name_of, const char *name, size_t len)
{
    uint64_t mask = cap - 1;
    uint64_t s = hash_bytes(name, len) & mask;
    while (tab[s]) {
        const char *other = name_of(f, tab[s] - 1);
        if (strncmp(other, name, len) == 0 && other[len] == '\0')
            return s;
        s = (s + 1) & mask;
    }
    return s;
}

/* Makes room for one more entry (load <= 1/2). */
static bool hash_reserve(const gguf_file *f, uint32_t **tab, uint64_t *cap,
                         uint64_t n_after, name_of_fn name_of)
{
    if (*cap && n_after * 2 <= *cap)
        return true;
    uint64_t ncap = *cap ? *cap * 2 : 64;
    while (ncap < n_after * 2)
        ncap *= 2;
    uint32_t *nt = calloc(ncap, sizeof *nt);
    if (!nt)
        return false;
    for (uint64_t i = 0; i < *cap; i++) {
        uint32_t v = (*tab)[i];
        if (!v) continue;
        const char *nm = name_of(f, v - 1);
        nt[hash_slot(f, nt, ncap, name_of, nm, strlen(nm))] = v;
    }
    free(*tab);
    *tab = nt;
    *cap = ncap;
    return true;
}

static bool grow(void **arr, uint64_t *cap, uint64_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    uint64_t ncap = *cap ? *cap * 2 : 16;
    if (ncap < need) ncap = need;
    void *na = realloc(*arr, (size_t)ncap * elem);
    if (!na)
        return false;
    *arr = na;
    *cap = ncap;
    return true;
}

/* ------------------------------------------------------------------ parse */

/* Reads a string header and checks its bytes are present.  The caller
 * decides what the string is for. */
static bool rd_str(cursor *c, gguf_str *s)
{
    uint64_t len;
    if (!rd_u64(c, &len) || len > cur_left(c))
        return false;
    s->len = len;
    s->ptr = (const char *)c->p + c->pos;
    c->pos += len;
    return true;
}

/* Reads a key or tensor name and checks it is usable as a C string.
 * `what` is "kv" or "tensor"; on failure writes the message itself. */
static char *rd_name(cursor *c, const char *what, uint64_t idx, char *err, size_t errlen)
{
    uint64_t at = c->pos, len;
    if (!rd_u64(c, &len)) {
        set_err(err, errlen, "%s %" PRIu64 ": file truncated at byte %" PRIu64 " reading name length",
                what, idx, at);
        return NULL;
    }
    if (len > cur_left(c)) {
        set_err(err, errlen, "%s %" PRIu64 ": name length %" PRIu64 " exceeds the %" PRIu64
                " bytes left in the file", what, idx, len, cur_left(c));
        return NULL;
    }
    if (len == 0) {
        set_err(err, errlen, "%s %" PRIu64 ": empty name", what, idx);
        return NULL;
    }
    if (len > GGUF_MAX_KEY_LEN) {
        set_err(err, errlen, "%s %" PRIu64 ": name length %" PRIu64 " exceeds the limit of %u",
                what, idx, len, GGUF_MAX_KEY_LEN);
        return NULL;
    }
    const char *src = (const char *)c->p + c->pos;
    if (memchr(src, '\0', (size_t)len)) {
        set_err(err, errlen, "%s %" PRIu64 ": name contains a NUL byte", what, idx);
        return NULL;
    }
    char *s = malloc((size_t)len + 1);
    if (!s) {
        set_err(err, errlen, "%s %" PRIu64 ": out of memory", what, idx);
        return NULL;
    }
    memcpy(s, src, (size_t)len);
    s[len] = '\0';
    c->pos += len;
    return s;
}

/* Parses the value of kv (whose key and type are already set). */
static int parse_value(cursor *c, gguf_kv *kv, char *err, size_t errlen)
{
    const char *key = kv->key;
    uint32_t et = kv->type;
    uint64_t n = 1;

    if (kv->type == GGUF_VT_ARRAY) {
        uint64_t at = c->pos;
        if (!rd_u32(c, &et) || !rd_u64(c, &n)) {
            set_err(err, errlen, "key '%s': file truncated at byte %" PRIu64 " reading array header",
                    key, at);
            return -1;
        }
        if (et == GGUF_VT_ARRAY) {
            set_err(err, errlen, "key '%s': arrays of arrays are not supported", key);
            return -1;
        }
        if (et != GGUF_VT_STRING && gguf_vtype_size(et) == 0) {
            set_err(err, errlen, "key '%s': unknown array element type %" PRIu32, key, et);
            return -1;
        }
        kv->arr_type = et;
    }
    kv->n = n;

    if (et != GGUF_VT_STRING) {
        uint64_t es = gguf_vtype_size(et);
        assert(es > 0);
        /* n * es <= left, written without a multiplication that could wrap */
        if (n > cur_left(c) / es) {
            set_err(err, errlen, "key '%s': %" PRIu64 " %s value%s of %" PRIu64 " bytes each exceed the %"
                    PRIu64 " bytes left in the file", key, n, gguf_vtype_name(et), n == 1 ? "" : "s",
                    es, cur_left(c));
            return -1;
        }
        kv->data = c->p + c->pos;
        c->pos += n * es;
        return 0;
    }

    /* Strings: every element needs at least its 8-byte length. */
    if (n > cur_left(c) / 8) {
        set_err(err, errlen, "key '%s': %" PRIu64 " strings cannot fit in the %" PRIu64
                " bytes left in the file", key, n, cur_left(c));
        return -1;
    }
    /* First pass proves every string is present, so the descriptor array is
     * only allocated for data that really exists. */
    cursor probe = *c;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t at = probe.pos;
        gguf_str s;
        if (!rd_str(&probe, &s)) {
            if (kv->type == GGUF_VT_ARRAY)
                set_err(err, errlen, "key '%s': string %" PRIu64 " at byte %" PRIu64
                        " runs past the end of the file", key, i, at);
            else
                set_err(err, errlen, "key '%s': string value at byte %" PRIu64
                        " runs past the end of the file", key, at);
            return -1;
        }
    }
    gguf_str *strs = malloc((size_t)(n ? n : 1) * sizeof *strs);
    if (!strs) {
        set_err(err, errlen, "key '%s': out of memory for %" PRIu64 " strings", key, n);
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        bool ok = rd_str(c, &strs[i]);
        assert(ok);
        (void)ok;
    }
    kv->data = strs;
    return 0;
}

static int parse_kvs(gguf_file *f, cursor *c, uint64_t n_kv, char *err, size_t errlen)
{
    for (uint64_t i = 0; i < n_kv; i++) {
        char *key = rd_name(c, "kv", i, err, errlen);
        if (!key)
            return -1;
        if (!grow((void **)&f->kv, &f->cap_kv, f->n_kv + 1, sizeof *f->kv) ||
            !hash_reserve(f, &f->kv_hash, &f->kv_hash_cap, f->n_kv + 1, kv_name)) {
            set_err(err, errlen, "key '%s': out of memory", key);
            free(key);
            return -1;
        }
        uint64_t slot = hash_slot(f, f->kv_hash, f->kv_hash_cap, kv_name, key, strlen(key));
        if (f->kv_hash[slot]) {
            set_err(err, errlen, "key '%s': duplicate key (kv %" PRIu64 " and kv %" PRIu64 ")",
                    key, (uint64_t)f->kv_hash[slot] - 1, i);
            free(key);
            return -1;
        }
        gguf_kv *kv = &f->kv[f->n_kv++];
        memset(kv, 0, sizeof *kv);
        kv->key = key;   /* owned by f from here on */
        f->kv_hash[slot] = (uint32_t)f->n_kv;

        uint64_t at = c->pos;
        if (!rd_u32(c, &kv->type)) {
            set_err(err, errlen, "key '%s': file truncated at byte %" PRIu64 " reading value type",
                    key, at);
            return -1;
        }
        if (kv->type != GGUF_VT_ARRAY && kv->type != GGUF_VT_STRING && gguf_vtype_size(kv->type) == 0) {
            set_err(err, errlen, "key '%s': unknown value type %" PRIu32, key, kv->type);
            return -1;
        }
        if (parse_value(c, kv, err, errlen))
            return -1;
    }
    return 0;
}

static int read_alignment(gguf_file *f, char *err, size_t errlen)
{
    const char *key = "general.alignment";
    const gguf_kv *kv = gguf_find_kv(f, key);
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (!kv)
        return 0;
    if (kv->type != GGUF_VT_UINT32) {
        set_err(err, errlen, "key '%s': must be a uint32, not %s", key, gguf_vtype_name(kv->type));
        return -1;
    }
    uint32_t a = ld_u32(kv->data);
    if (a == 0 || (a & (a - 1)) != 0) {
        set_err(err, errlen, "key '%s': %" PRIu32 " is not a non-zero power of two", key, a);
        return -1;
    }
    f->alignment = a;
    return 0;
}

static int parse_tensor(gguf_file *f, cursor *c, uint64_t i, char *err, size_t errlen)
{
    char *name = rd_name(c, "tensor", i, err, errlen);
    if (!name)
        return -1;
    if (!grow((void **)&f->t, &f->cap_t, f->n_t + 1, sizeof *f->t) ||
        !hash_reserve(f, &f->t_hash, &f->t_hash_cap, f->n_t + 1, t_name)) {
        set_err(err, errlen, "tensor '%s': out of memory", name);
        free(name);
        return -1;
    }
    uint64_t slot = hash_slot(f, f->t_hash, f->t_hash_cap, t_name, name, strlen(name));
    if (f->t_hash[slot]) {
        set_err(err, errlen, "tensor '%s': duplicate tensor name (tensor %" PRIu64 " and tensor %" PRIu64 ")",
                name, (uint64_t)f->t_hash[slot] - 1, i);
        free(name);
        return -1;
    }
    gguf_tensor *t = &f->t[f->n_t++];
    memset(t, 0, sizeof *t);
    t->name = name;
    f->t_hash[slot] = (uint32_t)f->n_t;

    uint64_t at = c->pos;
    if (!rd_u32(c, &t->n_dims)) {
        set_err(err, errlen, "tensor '%s': file truncated at byte %" PRIu64 " reading n_dims", name, at);
        return -1;
    }
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS) {
        set_err(err, errlen, "tensor '%s': n_dims %" PRIu32 " is not in 1..%d", name, t->n_dims,
                GGUF_MAX_DIMS);
        return -1;
    }
    uint64_t nel = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d >= t->n_dims)
            continue;
        at = c->pos;
        if (!rd_u64(c, &t->ne[d])) {
            set_err(err, errlen, "tensor '%s': file truncated at byte %" PRIu64 " reading ne[%" PRIu32 "]",
                    name, at, d);
            return -1;
        }
        if (t->ne[d] == 0) {
            set_err(err, errlen, "tensor '%s': ne[%" PRIu32 "] is 0 (empty tensors are not supported)",
                    name, d);
            return -1;
        }
        /* ggml stores element counts as int64_t */
        if (t->ne[d] > (uint64_t)INT64_MAX / nel) {
            set_err(err, errlen, "tensor '%s': element count overflows int64 at ne[%" PRIu32 "] = %" PRIu64,
                    name, d, t->ne[d]);
            return -1;
        }
        nel *= t->ne[d];
    }
    t->n_elements = nel;

    at = c->pos;
    if (!rd_u32(c, &t->type)) {
        set_err(err, errlen, "tensor '%s': file truncated at byte %" PRIu64 " reading type", name, at);
        return -1;
    }
    const g4_type_traits *tr = g4_type_get(t->type);
    if (!tr) {
        set_err(err, errlen, "tensor '%s': unknown ggml type id %" PRIu32, name, t->type);
        return -1;
    }
    assert(tr->blck > 0 && tr->type_size > 0);
    if (t->ne[0] % tr->blck != 0) {
        set_err(err, errlen, "tensor '%s': ne[0] = %" PRIu64 " is not a multiple of the %s block size %" PRIu32,
                name, t->ne[0], tr->name, tr->blck);
        return -1;
    }
    uint64_t nblocks = nel / tr->blck;   /* exact: ne[0] is a multiple of blck */
    if (nblocks > UINT64_MAX / tr->type_size) {
        set_err(err, errlen, "tensor '%s': byte size overflows", name);
        return -1;
    }
    t->nbytes = nblocks * tr->type_size;

    at = c->pos;
    if (!rd_u64(c, &t->offset)) {
        set_err(err, errlen, "tensor '%s': file truncated at byte %" PRIu64 " reading offset", name, at);
        return -1;
    }
    return 0;
}

static int place_tensors(gguf_file *f, uint64_t header_end, char *err, size_t errlen)
{
    uint64_t mask = f->alignment - 1;
    if (header_end > UINT64_MAX - mask) {
        set_err(err, errlen, "data section offset overflows");
        return -1;
    }
    uint64_t ds = (header_end + mask) & ~mask;
    if (ds > f->size) {
        /* A tensor-less file (e.g. vocab only) may end right after its
         * header without padding; there is no data to locate then. */
        if (f->n_t == 0) {
            f->data_offset = f->size;
            return 0;
        }
        set_err(err, errlen, "data section start %" PRIu64 " (header end %" PRIu64 " aligned to %" PRIu64
                ") is past end of file (size %" PRIu64 ")", ds, header_end, f->alignment, f->size);
        return -1;
    }
    f->data_offset = ds;
    uint64_t data_size = f->size - ds;
    for (uint64_t i = 0; i < f->n_t; i++) {
        gguf_tensor *t = &f->t[i];
        if (t->offset & mask) {
            set_err(err, errlen, "tensor '%s': offset %" PRIu64 " is not a multiple of the alignment %" PRIu64,
                    t->name, t->offset, f->alignment);
            return -1;
        }
        if (t->offset > data_size || t->nbytes > data_size - t->offset) {
            set_err(err, errlen, "tensor '%s': data [offset %" PRIu64 ", %" PRIu64 " bytes] extends past end of "
                    "file (size %" PRIu64 ", data section starts at %" PRIu64 ")",
                    t->name, t->offset, t->nbytes, f->size, ds);
            return -1;
        }
        t->data = f->base + ds + t->offset;
    }
    return 0;
}

static int parse(gguf_file *f, char *err, size_t errlen)
{
    cursor c = { f->base, f->size, 0 };

    if (f->size < 4 || memcmp(f->base, "GGUF", 4) != 0) {
        set_err(err, errlen, "not a GGUF file (bad magic)");
        return -1;
    }
    c.pos = 4;
    uint32_t version;
    if (!rd_u32(&c, &version)) {
        set_err(err, errlen, "file truncated in header (size %" PRIu64 ")", f->size);
        return -1;
    }
    if (version == 1) {
        set_err(err, errlen, "GGUF version 1 is not supported (obsolete; re-convert the model)");
        return -1;
    }
    if (version != 2 && version != 3) {
        /* A big-endian file reads as a version with only the top byte set. */
        if ((version & 0xffffu) == 0 && (version >> 24) >= 2 && (version >> 24) <= 3)
            set_err(err, errlen, "big-endian GGUF files are not supported");
        else
            set_err(err, errlen, "unsupported GGUF version %" PRIu32, version);
        return -1;
    }
    f->version = version;

    uint64_t n_tensors, n_kv;
    if (!rd_u64(&c, &n_tensors) || !rd_u64(&c, &n_kv)) {
        set_err(err, errlen, "file truncated in header (size %" PRIu64 ")", f->size);
        return -1;
    }
    uint64_t left = cur_left(&c);
    if (n_kv > GGUF_MAX_KV || n_kv > left / MIN_KV_BYTES) {
        set_err(err, errlen, "n_kv %" PRIu64 " is implausible for the %" PRIu64 " bytes left in the file",
                n_kv, left);
        return -1;
    }
    if (n_tensors > GGUF_MAX_TENSORS ||
        n_tensors > (left - n_kv * MIN_KV_BYTES) / MIN_TENSOR_BYTES) {
        set_err(err, errlen, "n_tensors %" PRIu64 " is implausible for the %" PRIu64 " bytes left in the file",
                n_tensors, left);
        return -1;
    }

    if (parse_kvs(f, &c, n_kv, err, errlen) || read_alignment(f, err, errlen))
        return -1;
    for (uint64_t i = 0; i < n_tensors; i++)
        if (parse_tensor(f, &c, i, err, errlen))
            return -1;
    return place_tensors(f, c.pos, err, errlen);
}

/* ------------------------------------------------------------- lifecycle */

int gguf_open_memory(const void *data, size_t size, gguf_file **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!data && size) {
        set_err(err, errlen, "null buffer");
        return -1;
    }
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    f->base = data;
    f->size = size;
    if (parse(f, err, errlen)) {
        gguf_close(f);
        return -1;
    }
    *out = f;
    return 0;
}

int gguf_open(const char *path, gguf_file **out, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_err(err, errlen, "cannot stat '%s': %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, "'%s' is not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size == 0) {
        /* mmap rejects length 0; say what is actually wrong */
        set_err(err, errlen, "'%s' is empty", path);
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        set_err(err, errlen, "'%s' is too large to map on this system", path);
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);   /* the mapping keeps the file alive */
    if (map == MAP_FAILED) {
        set_err(err, errlen, "cannot mmap '%s': %s", path, strerror(map_errno));
        return -1;
    }
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        munmap(map, size);
        set_err(err, errlen, "out of memory");
        return -1;
    }
    f->base = map;
    f->size = size;
    f->mapped = true;
    char msg[512];
    if (parse(f, msg, sizeof msg)) {
        set_err(err, errlen, "%s: %s", path, msg);
        gguf_close(f);
        return -1;
    }
    *out = f;
    return 0;
}

void gguf_close(gguf_file *f)
{
    if (!f)
        return;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        bool is_str = kv->type == GGUF_VT_STRING ||
                      (kv->type == GGUF_VT_ARRAY && kv->arr_type == GGUF_VT_STRING);
        if (is_str)
            free((void *)kv->data);
        free((void *)kv->key);
    }
    for (uint64_t i = 0; i < f->n_t; i++)
        free((void *)f->t[i].name);
    free(f->kv);
    free(f->t);
    free(f->kv_hash);
    free(f->t_hash);
    if (f->mapped)
        munmap((void *)f->base, (size_t)f->size);
    free(f);
}

/* ------------------------------------------------------------- accessors */

uint32_t gguf_version(const gguf_file *f) { return f->version; }
uint64_t gguf_alignment(const gguf_file *f) { return f->alignment; }
uint64_t gguf_file_size(const gguf_file *f) { return f->size; }
uint64_t gguf_data_offset(const gguf_file *f) { return f->data_offset; }
const void *gguf_base(const gguf_file *f) { return f->base; }
uint64_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }
uint64_t gguf_n_tensors(const gguf_file *f) { return f->n_t; }

const gguf_kv *gguf_kv_at(const gguf_file *f, uint64_t i)
{
    return i < f->n_kv ? &f->kv[i] : NULL;
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i)
{
    return i < f->n_t ? &f->t[i] : NULL;
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key)
{
    if (!f->kv_hash_cap || !key)
        return NULL;
    uint32_t v = f->kv_hash[hash_slot(f, f->kv_hash, f->kv_hash_cap, kv_name, key, strlen(key))];
    return v ? &f->kv[v - 1] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name)
{
    if (!f->t_hash_cap || !name)
        return NULL;
    uint32_t v = f->t_hash[hash_slot(f, f->t_hash, f->t_hash_cap, t_name, name, strlen(name))];
    return v ? &f->t[v - 1] : NULL;
}

/* Element i of an integer or bool value as int64.  uint64 values above
 * INT64_MAX saturate and set *neg_or_big so getters can refuse them. */
static int64_t elem_i64(uint32_t vt, const uint8_t *p, uint64_t i, bool *neg_or_big)
{
    *neg_or_big = false;
    switch (vt) {
    case GGUF_VT_UINT8:  return p[i];
    case GGUF_VT_BOOL:   return p[i] != 0;
    case GGUF_VT_INT8:   return (int8_t)p[i];
    case GGUF_VT_UINT16: return ld_u16(p + 2 * i);
    case GGUF_VT_INT16:  return (int16_t)ld_u16(p + 2 * i);
    case GGUF_VT_UINT32: return ld_u32(p + 4 * i);
    case GGUF_VT_INT32:  return (int32_t)ld_u32(p + 4 * i);
    case GGUF_VT_INT64:  return (int64_t)ld_u64(p + 8 * i);
    case GGUF_VT_UINT64: {
        uint64_t v = ld_u64(p + 8 * i);
        if (v > (uint64_t)INT64_MAX) {
            *neg_or_big = true;
            return INT64_MAX;
        }
        return (int64_t)v;
    }
    default:
        assert(!"not an integer vtype");
        return 0;
    }
}

static double elem_f64(uint32_t vt, const uint8_t *p, uint64_t i)
{
    if (vt == GGUF_VT_FLOAT32) {
        uint32_t b = ld_u32(p + 4 * i);
        float v;
        memcpy(&v, &b, 4);
        return v;
    }
    if (vt == GGUF_VT_FLOAT64) {
        uint64_t b = ld_u64(p + 8 * i);
        double v;
        memcpy(&v, &b, 8);
        return v;
    }
    if (vt == GGUF_VT_UINT64)
        return (double)ld_u64(p + 8 * i);
    bool big;
    return (double)elem_i64(vt, p, i, &big);
}

static uint32_t elem_type(const gguf_kv *kv)
{
    return kv->type == GGUF_VT_ARRAY ? kv->arr_type : kv->type;
}

int gguf_get_uint(const gguf_file *f, const char *key, uint64_t *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return -1;
    if (!gguf_vtype_is_int(kv->type)) return -2;
    if (kv->type == GGUF_VT_UINT64) {
        *out = ld_u64(kv->data);
        return 0;
    }
    bool big;
    int64_t v = elem_i64(kv->type, kv->data, 0, &big);
    if (v < 0) return -2;
    *out = (uint64_t)v;
    return 0;
}

int gguf_get_int(const gguf_file *f, const char *key, int64_t *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return -1;
    if (!gguf_vtype_is_int(kv->type)) return -2;
    bool big;
    int64_t v = elem_i64(kv->type, kv->data, 0, &big);
    if (big) return -2;
    *out = v;
    return 0;
}

int gguf_get_float(const gguf_file *f, const char *key, double *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return -1;
    if (kv->type != GGUF_VT_FLOAT32 && kv->type != GGUF_VT_FLOAT64 && !gguf_vtype_is_int(kv->type))
        return -2;
    *out = elem_f64(kv->type, kv->data, 0);
    return 0;
}

int gguf_get_bool(const gguf_file *f, const char *key, bool *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return -1;
    if (kv->type != GGUF_VT_BOOL) return -2;
    *out = *(const uint8_t *)kv->data != 0;
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return -1;
    if (kv->type != GGUF_VT_STRING) return -2;
    *out = *(const gguf_str *)kv->data;
    return 0;
}

/* Array accessors also accept a scalar (n == 1) of the right kind, since its
 * data has the same layout as a one-element array. */
int64_t gguf_arr_int(const gguf_kv *kv, uint64_t i)
{
    uint32_t vt = elem_type(kv);
    assert(i < kv->n);
    assert(gguf_vtype_is_int(vt) || vt == GGUF_VT_BOOL);
    if (i >= kv->n || !(gguf_vtype_is_int(vt) || vt == GGUF_VT_BOOL))
        return 0;
    bool big;
    return elem_i64(vt, kv->data, i, &big);
}

double gguf_arr_float(const gguf_kv *kv, uint64_t i)
{
    uint32_t vt = elem_type(kv);
    bool ok = vt == GGUF_VT_FLOAT32 || vt == GGUF_VT_FLOAT64 || gguf_vtype_is_int(vt);
    assert(i < kv->n && ok);
    if (i >= kv->n || !ok)
        return 0.0;
    return elem_f64(vt, kv->data, i);
}

gguf_str gguf_arr_str(const gguf_kv *kv, uint64_t i)
{
    gguf_str none = { 0, "" };
    assert(i < kv->n && elem_type(kv) == GGUF_VT_STRING);
    if (i >= kv->n || elem_type(kv) != GGUF_VT_STRING)
        return none;
    return ((const gguf_str *)kv->data)[i];
}
