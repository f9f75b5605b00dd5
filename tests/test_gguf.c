/*
 * test_gguf.c - GGUF reader/writer tests.
 *
 * Three parts: a write/read round trip through a real file; a catalogue of
 * malformed files, each built byte by byte in memory so it breaks exactly
 * one rule, checking that parsing fails with a one-line message that names
 * the offending key, tensor or condition; and a mutation fuzz loop over a
 * valid file (meaningful under -fsanitize=address,undefined, where every
 * buffer is a malloc of the exact size so any over-read is caught).
 */
#include "gguf/gguf.h"
#include "kernels/quant.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ byte builder */

typedef struct {
    uint8_t *p;
    size_t   len, cap;
} bb;

static void bb_raw(bb *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n) nc *= 2;
        b->p = realloc(b->p, nc);
        if (!b->p) { perror("realloc"); exit(2); }
        b->cap = nc;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}
static void bb_u8(bb *b, uint8_t v) { bb_raw(b, &v, 1); }
static void bb_u16(bb *b, uint16_t v) { uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) }; bb_raw(b, x, 2); }
static void bb_u32(bb *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    bb_raw(b, x, 4);
}
static void bb_u64(bb *b, uint64_t v) { bb_u32(b, (uint32_t)v); bb_u32(b, (uint32_t)(v >> 32)); }
static void bb_f32(bb *b, float f) { uint32_t u; memcpy(&u, &f, 4); bb_u32(b, u); }
static void bb_f64(bb *b, double f) { uint64_t u; memcpy(&u, &f, 8); bb_u64(b, u); }
static void bb_str(bb *b, const char *s) { bb_u64(b, strlen(s)); bb_raw(b, s, strlen(s)); }
static void bb_pad(bb *b, size_t a) { while (b->len % a) bb_u8(b, 0); }
static void bb_zeros(bb *b, size_t n) { for (size_t i = 0; i < n; i++) bb_u8(b, 0); }
static void bb_free(bb *b) { free(b->p); b->p = NULL; b->len = b->cap = 0; }

static void hdr(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    bb_raw(b, "GGUF", 4);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}

static void kv_u32(bb *b, const char *k, uint32_t v) { bb_str(b, k); bb_u32(b, GGUF_VT_UINT32); bb_u32(b, v); }
static void kv_str(bb *b, const char *k, const char *v) { bb_str(b, k); bb_u32(b, GGUF_VT_STRING); bb_str(b, v); }

static void tinfo(bb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off)
{
    bb_str(b, name);
    bb_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) bb_u64(b, ne[i]);
    bb_u32(b, type);
    bb_u64(b, off);
}

/* A valid small file: 7 kvs of assorted types, 2 tensors. */
static void valid_file(bb *b)
{
    hdr(b, 3, 2, 7);
    kv_str(b, "general.architecture", "gemma4");
    kv_u32(b, "general.alignment", 32);
    bb_str(b, "u8"); bb_u32(b, GGUF_VT_UINT8); bb_u8(b, 7);
    bb_str(b, "f64"); bb_u32(b, GGUF_VT_FLOAT64); bb_f64(b, 0.5);
    bb_str(b, "a.i16"); bb_u32(b, GGUF_VT_ARRAY); bb_u32(b, GGUF_VT_INT16); bb_u64(b, 3);
    bb_u16(b, 1); bb_u16(b, 2); bb_u16(b, 3);
    kv_u32(b, "gemma4.block_count", 2);
    bb_str(b, "tokenizer.ggml.tokens"); bb_u32(b, GGUF_VT_ARRAY); bb_u32(b, GGUF_VT_STRING); bb_u64(b, 3);
    bb_str(b, "<pad>"); bb_str(b, ""); bb_str(b, "hello");
    uint64_t ne1[2] = { 4, 2 }, ne2[1] = { 32 };
    tinfo(b, "a.weight", 2, ne1, G4_TYPE_F32, 0);      /* 32 bytes */
    tinfo(b, "b.weight", 1, ne2, G4_TYPE_Q4_0, 32);    /* 18 bytes */
    bb_pad(b, 32);
    for (int i = 0; i < 50; i++) bb_u8(b, (uint8_t)i);   /* no trailing padding: every prefix is invalid */
}

/* Parses from an exact-size heap copy so ASan sees any over-read. */
static int parse_copy(const uint8_t *p, size_t n, gguf_file **f, char *err, size_t errlen)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, p, n);
    int rc = gguf_open_memory(copy, n, f, err, errlen);
    if (rc == 0) {
        /* touch every range the reader vouched for */
        volatile uint8_t sink = 0;
        for (uint64_t i = 0; i < gguf_n_tensors(*f); i++) {
            const gguf_tensor *t = gguf_tensor_at(*f, i);
            const uint8_t *d = t->data;
            sink ^= d[0];
            sink ^= d[t->nbytes - 1];
        }
        for (uint64_t i = 0; i < gguf_n_kv(*f); i++) {
            const gguf_kv *kv = gguf_kv_at(*f, i);
            uint32_t et = kv->type == GGUF_VT_ARRAY ? kv->arr_type : kv->type;
            for (uint64_t j = 0; j < kv->n; j++) {
                if (et == GGUF_VT_STRING) {
                    gguf_str s = gguf_arr_str(kv, j);
                    if (s.len) { sink ^= (uint8_t)s.ptr[0]; sink ^= (uint8_t)s.ptr[s.len - 1]; }
                } else if (et == GGUF_VT_FLOAT32 || et == GGUF_VT_FLOAT64) {
                    sink ^= (uint8_t)(gguf_arr_float(kv, j) != 0);
                } else {
                    sink ^= (uint8_t)gguf_arr_int(kv, j);
                }
            }
        }
        (void)sink;
        gguf_close(*f);
        *f = NULL;
    }
    free(copy);
    return rc;
}

static int n_cases;

/* Expects failure with a single-line message containing both needles. */
static void expect_fail(const char *what, const bb *b, const char *needle1, const char *needle2)
{
    gguf_file *f = NULL;
    char err[512] = "";
    int rc = parse_copy(b->p, b->len, &f, err, sizeof err);
    n_cases++;
    CHECKF(rc != 0, "%s: parsed but should fail", what);
    CHECKF(err[0] != '\0' && !strchr(err, '\n'), "%s: bad message '%s'", what, err);
    if (needle1) CHECKF(strstr(err, needle1) != NULL, "%s: '%s' lacks '%s'", what, err, needle1);
    if (needle2) CHECKF(strstr(err, needle2) != NULL, "%s: '%s' lacks '%s'", what, err, needle2);
}

static void expect_ok(const char *what, const bb *b)
{
    gguf_file *f = NULL;
    char err[512] = "";
    int rc = parse_copy(b->p, b->len, &f, err, sizeof err);
    CHECKF(rc == 0, "%s: unexpected error '%s'", what, err);
}

/* ----------------------------------------------------------- round trip */

static void test_roundtrip(uint32_t align)
{
    char path[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/test_gguf_%ld_%u.gguf", tmp ? tmp : "/tmp", (long)getpid(), align);
    char err[512] = "";

    const int32_t ai[] = { -1, 0, 2147483647, -2147483647 - 1 };
    const uint32_t au[] = { 0, 1, 4294967295u };
    const float af[] = { 1.5f, -0.0f, 3.4e38f, 1e-45f, 0.1f };
    const bool ab[] = { true, false, true };
    const char *const as[] = { "a", "", "\xe2\x96\x81hello", "<start_of_turn>" };

    gguf_writer *w = gguf_writer_new();
    CHECK(w != NULL);
    gguf_w_str(w, "general.architecture", "wrong");     /* replaced below */
    gguf_w_u32(w, "u32", 4000000000u);
    gguf_w_i32(w, "i32", -123456);
    gguf_w_u64(w, "u64", UINT64_MAX);
    gguf_w_f32(w, "f32", 0.25f);
    gguf_w_bool(w, "bool.t", true);
    gguf_w_bool(w, "bool.f", false);
    gguf_w_str(w, "str.empty", "");
    gguf_w_arr_i32(w, "arr.i32", ai, 4);
    gguf_w_arr_u32(w, "arr.u32", au, 3);
    gguf_w_arr_f32(w, "arr.f32", af, 5);
    gguf_w_arr_bool(w, "arr.bool", ab, 3);
    gguf_w_arr_str(w, "arr.str", as, 4);
    gguf_w_arr_i32(w, "arr.empty", NULL, 0);
    gguf_w_str(w, "general.architecture", "gemma4");
    if (align != 32)
        gguf_w_u32(w, "general.alignment", align);

    struct { const char *name; uint32_t type, n_dims; uint64_t ne[4]; } td[] = {
        { "token_embd.weight", G4_TYPE_Q4_0, 2, { 64, 3 } },
        { "blk.0.attn_norm.weight", G4_TYPE_F32, 1, { 7 } },
        { "blk.0.ffn_up.weight", G4_TYPE_Q8_0, 2, { 32, 5 } },
        { "blk.0.x", G4_TYPE_F16, 3, { 3, 1, 5 } },
        { "blk.0.y", G4_TYPE_BF16, 4, { 2, 2, 2, 2 } },
        { "blk.0.k", G4_TYPE_Q4_K, 1, { 256 } },
    };
    enum { NT = sizeof td / sizeof td[0] };
    uint64_t nbytes[NT];
    uint8_t *payload[NT];
    for (int i = 0; i < NT; i++) {
        CHECKF(gguf_w_tensor(w, td[i].name, td[i].type, td[i].n_dims, td[i].ne, err, sizeof err) == 0, "%s", err);
        const g4_type_traits *tr = g4_type_get(td[i].type);
        uint64_t nel = td[i].ne[0];
        for (uint32_t d = 1; d < td[i].n_dims; d++) nel *= td[i].ne[d];
        nbytes[i] = nel / tr->blck * tr->type_size;
        payload[i] = malloc(nbytes[i]);
        for (uint64_t j = 0; j < nbytes[i]; j++) payload[i][j] = (uint8_t)(j * 7 + (uint64_t)i * 31 + 1);
    }
    CHECKF(gguf_w_begin(w, path, err, sizeof err) == 0, "begin: %s", err);
    for (int i = 0; i < NT; i++) {
        /* in uneven chunks, to exercise the byte accounting */
        uint64_t done = 0, step = 1;
        while (done < nbytes[i]) {
            uint64_t k = nbytes[i] - done < step ? nbytes[i] - done : step;
            CHECKF(gguf_w_data(w, payload[i] + done, (size_t)k, err, sizeof err) == 0, "%s", err);
            done += k;
            step = step * 3 + 1;
        }
        CHECKF(gguf_w_end_tensor(w, err, sizeof err) == 0, "%s", err);
    }
    CHECKF(gguf_w_finish(w, err, sizeof err) == 0, "finish: %s", err);
    gguf_writer_free(w);

    gguf_file *f = NULL;
    int rc = gguf_open(path, &f, err, sizeof err);
    CHECKF(rc == 0, "open: %s", err);
    if (rc == 0) {
        CHECK(gguf_version(f) == 3);
        CHECK(gguf_alignment(f) == align);
        CHECK(gguf_data_offset(f) % align == 0);
        CHECK(gguf_n_kv(f) == (align != 32 ? 15u : 14u));
        CHECK(strcmp(gguf_kv_at(f, 0)->key, "general.architecture") == 0); /* replaced in place */
        gguf_str s;
        CHECK(gguf_get_str(f, "general.architecture", &s) == 0 && s.len == 6 && memcmp(s.ptr, "gemma4", 6) == 0);
        uint64_t u; int64_t i64; double d; bool bv;
        CHECK(gguf_get_uint(f, "u32", &u) == 0 && u == 4000000000u);
        CHECK(gguf_get_int(f, "u32", &i64) == 0 && i64 == 4000000000);
        CHECK(gguf_get_int(f, "i32", &i64) == 0 && i64 == -123456);
        CHECK(gguf_get_uint(f, "i32", &u) == -2);
        CHECK(gguf_get_uint(f, "u64", &u) == 0 && u == UINT64_MAX);
        CHECK(gguf_get_int(f, "u64", &i64) == -2);
        CHECK(gguf_get_float(f, "f32", &d) == 0 && d == 0.25);
        CHECK(gguf_get_float(f, "i32", &d) == 0 && d == -123456.0);
        CHECK(gguf_get_float(f, "general.architecture", &d) == -2);
        CHECK(gguf_get_bool(f, "bool.t", &bv) == 0 && bv);
        CHECK(gguf_get_bool(f, "bool.f", &bv) == 0 && !bv);
        CHECK(gguf_get_bool(f, "u32", &bv) == -2);
        CHECK(gguf_get_uint(f, "bool.t", &u) == -2);
        CHECK(gguf_get_str(f, "str.empty", &s) == 0 && s.len == 0);
        CHECK(gguf_get_str(f, "u32", &s) == -2);
        CHECK(gguf_get_uint(f, "nope", &u) == -1);
        CHECK(gguf_get_str(f, "arr.str", &s) == -2);
        CHECK(gguf_get_int(f, "arr.i32", &i64) == -2);

        const gguf_kv *kv = gguf_find_kv(f, "arr.i32");
        CHECK(kv && kv->type == GGUF_VT_ARRAY && kv->arr_type == GGUF_VT_INT32 && kv->n == 4);
        for (int j = 0; kv && j < 4; j++) CHECK(gguf_arr_int(kv, (uint64_t)j) == ai[j]);
        kv = gguf_find_kv(f, "arr.u32");
        CHECK(kv && kv->arr_type == GGUF_VT_UINT32 && kv->n == 3);
        for (int j = 0; kv && j < 3; j++) CHECK(gguf_arr_int(kv, (uint64_t)j) == (int64_t)au[j]);
        kv = gguf_find_kv(f, "arr.f32");
        CHECK(kv && kv->arr_type == GGUF_VT_FLOAT32 && kv->n == 5);
        for (int j = 0; kv && j < 5; j++) {
            float x = (float)gguf_arr_float(kv, (uint64_t)j);
            CHECK(memcmp(&x, &af[j], 4) == 0);
        }
        kv = gguf_find_kv(f, "arr.bool");
        CHECK(kv && kv->arr_type == GGUF_VT_BOOL && kv->n == 3);
        for (int j = 0; kv && j < 3; j++) CHECK(gguf_arr_int(kv, (uint64_t)j) == ab[j]);
        kv = gguf_find_kv(f, "arr.str");
        CHECK(kv && kv->arr_type == GGUF_VT_STRING && kv->n == 4);
        for (int j = 0; kv && j < 4; j++) {
            gguf_str e = gguf_arr_str(kv, (uint64_t)j);
            CHECK(e.len == strlen(as[j]) && memcmp(e.ptr, as[j], e.len) == 0);
        }
        kv = gguf_find_kv(f, "arr.empty");
        CHECK(kv && kv->type == GGUF_VT_ARRAY && kv->n == 0);

        CHECK(gguf_n_tensors(f) == NT);
        for (int i = 0; i < NT; i++) {
            const gguf_tensor *t = gguf_find_tensor(f, td[i].name);
            CHECKF(t != NULL, "tensor %s missing", td[i].name);
            if (!t) continue;
            CHECK(t == gguf_tensor_at(f, (uint64_t)i));
            CHECK(t->type == td[i].type && t->n_dims == td[i].n_dims);
            for (uint32_t dd = 0; dd < 4; dd++)
                CHECK(t->ne[dd] == (dd < td[i].n_dims ? td[i].ne[dd] : 1));
            CHECK(t->nbytes == nbytes[i]);
            CHECK(t->offset % align == 0);
            CHECK((const uint8_t *)t->data == (const uint8_t *)gguf_base(f) + gguf_data_offset(f) + t->offset);
            CHECKF(memcmp(t->data, payload[i], nbytes[i]) == 0, "tensor %s bytes differ", td[i].name);
        }
        CHECK(gguf_find_tensor(f, "nope") == NULL);
        /* the last tensor is padded like the others (llama.cpp expects it) */
        const gguf_tensor *last = gguf_tensor_at(f, NT - 1);
        uint64_t end = gguf_data_offset(f) + last->offset + last->nbytes;
        CHECK(gguf_file_size(f) == (end + align - 1) / align * align);
        gguf_close(f);
    }
    for (int i = 0; i < NT; i++) free(payload[i]);
    remove(path);
}

/* ------------------------------------------------------ writer failures */

static void test_writer_errors(void)
{
    char err[512], path[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/test_gguf_w_%ld.gguf", tmp ? tmp : "/tmp", (long)getpid());
    uint64_t ne[2] = { 32, 2 }, bad_ne[1] = { 33 };
    uint8_t buf[256] = {0};

    /* declaration errors */
    gguf_writer *w = gguf_writer_new();
    CHECK(gguf_w_tensor(w, "t", 200, 1, ne, err, sizeof err) != 0 && strstr(err, "200") && strstr(err, "'t'"));
    gguf_writer_free(w);
    w = gguf_writer_new();
    CHECK(gguf_w_tensor(w, "q", G4_TYPE_Q4_0, 1, bad_ne, err, sizeof err) != 0 && strstr(err, "block size"));
    gguf_writer_free(w);
    w = gguf_writer_new();
    CHECK(gguf_w_tensor(w, "t", G4_TYPE_F32, 1, ne, err, sizeof err) == 0);
    CHECK(gguf_w_tensor(w, "t", G4_TYPE_F32, 1, ne, err, sizeof err) != 0 && strstr(err, "'t'"));
    gguf_writer_free(w);
    w = gguf_writer_new();
    CHECK(gguf_w_tensor(w, "t", G4_TYPE_F32, 5, ne, err, sizeof err) != 0 && strstr(err, "n_dims"));
    gguf_writer_free(w);
    w = gguf_writer_new();
    CHECK(gguf_w_tensor(w, "this.name.is.much.too.long.for.llama.cpp.which.allows.63.bytes.xx", G4_TYPE_F32,
                        1, ne, err, sizeof err) != 0 && strstr(err, "name"));
    gguf_writer_free(w);

    /* bad alignment is reported by begin */
    w = gguf_writer_new();
    gguf_w_u32(w, "general.alignment", 3);
    CHECK(gguf_w_begin(w, path, err, sizeof err) != 0 && strstr(err, "general.alignment"));
    gguf_writer_free(w);
    w = gguf_writer_new();
    gguf_w_u64(w, "general.alignment", 64);
    CHECK(gguf_w_begin(w, path, err, sizeof err) != 0 && strstr(err, "general.alignment"));
    gguf_writer_free(w);
    w = gguf_writer_new();
    gguf_w_u32(w, "", 1);
    CHECK(gguf_w_begin(w, path, err, sizeof err) != 0 && strstr(err, "empty"));
    gguf_writer_free(w);

    /* too many bytes, too few bytes, too few tensors */
    w = gguf_writer_new();
    CHECK(gguf_w_tensor(w, "a", G4_TYPE_F32, 2, ne, err, sizeof err) == 0);   /* 256 bytes */
    CHECK(gguf_w_begin(w, path, err, sizeof err) == 0);
    CHECK(gguf_w_data(w, buf, 200, err, sizeof err) == 0);
    CHECK(gguf_w_data(w, buf, 100, err, sizeof err) != 0 && strstr(err, "'a'") && strstr(err, "256"));
    CHECK(gguf_w_finish(w, err, sizeof err) != 0 && strstr(err, "'a'"));   /* sticky */
    gguf_writer_free(w);
    CHECK(access(path, F_OK) != 0);   /* partial file removed */

    w = gguf_writer_new();
    CHECK(gguf_w_tensor(w, "a", G4_TYPE_F32, 2, ne, err, sizeof err) == 0);
    CHECK(gguf_w_begin(w, path, err, sizeof err) == 0);
    CHECK(gguf_w_data(w, buf, 255, err, sizeof err) == 0);
    CHECK(gguf_w_end_tensor(w, err, sizeof err) != 0 && strstr(err, "'a'") && strstr(err, "255"));
    gguf_writer_free(w);

    w = gguf_writer_new();
    CHECK(gguf_w_tensor(w, "a", G4_TYPE_F32, 1, ne, err, sizeof err) == 0);
    CHECK(gguf_w_tensor(w, "b", G4_TYPE_F32, 1, ne, err, sizeof err) == 0);
    CHECK(gguf_w_begin(w, path, err, sizeof err) == 0);
    CHECK(gguf_w_data(w, buf, 128, err, sizeof err) == 0);
    CHECK(gguf_w_end_tensor(w, err, sizeof err) == 0);
    CHECK(gguf_w_finish(w, err, sizeof err) != 0 && strstr(err, "1 of 2") && strstr(err, "'b'"));
    gguf_writer_free(w);
    CHECK(access(path, F_OK) != 0);

    w = gguf_writer_new();
    CHECK(gguf_w_begin(w, path, err, sizeof err) == 0);
    CHECK(gguf_w_data(w, buf, 1, err, sizeof err) != 0);   /* no tensors declared */
    gguf_writer_free(w);

    /* metadata after begin */
    w = gguf_writer_new();
    CHECK(gguf_w_begin(w, path, err, sizeof err) == 0);
    gguf_w_u32(w, "late", 1);
    CHECK(gguf_w_tensor(w, "x", G4_TYPE_F32, 1, ne, err, sizeof err) != 0);
    gguf_writer_free(w);

    /* an empty model is still a valid file */
    w = gguf_writer_new();
    gguf_w_str(w, "general.architecture", "gemma4");
    CHECK(gguf_w_begin(w, path, err, sizeof err) == 0);
    CHECKF(gguf_w_finish(w, err, sizeof err) == 0, "%s", err);
    gguf_writer_free(w);
    gguf_file *f = NULL;
    CHECKF(gguf_open(path, &f, err, sizeof err) == 0, "%s", err);
    if (f) { CHECK(gguf_n_tensors(f) == 0 && gguf_n_kv(f) == 1); gguf_close(f); }
    remove(path);

    /* unwritable path, full disk */
    w = gguf_writer_new();
    CHECK(gguf_w_begin(w, "/nonexistent-dir/x.gguf", err, sizeof err) != 0 && strstr(err, "nonexistent-dir"));
    gguf_writer_free(w);
    if (access("/dev/full", W_OK) == 0) {
        w = gguf_writer_new();
        uint64_t big[1] = { 1u << 20 };   /* 4 MiB of f32: more than the I/O buffer */
        CHECK(gguf_w_tensor(w, "big", G4_TYPE_F32, 1, big, err, sizeof err) == 0);
        int rc = gguf_w_begin(w, "/dev/full", err, sizeof err);
        uint8_t *zero = calloc(1, 1u << 22);
        for (int i = 0; rc == 0 && i < 4; i++)
            rc = gguf_w_data(w, zero, 1u << 20, err, sizeof err);
        if (rc == 0) rc = gguf_w_end_tensor(w, err, sizeof err);
        if (rc == 0) rc = gguf_w_finish(w, err, sizeof err);
        CHECKF(rc != 0 && strstr(err, "/dev/full"), "disk full not reported: '%s'", err);
        free(zero);
        gguf_writer_free(w);
    }
}

/* ---------------------------------------------------- malformed inputs */

static void test_open_errors(void)
{
    gguf_file *f = NULL;
    char err[512];
    CHECK(gguf_open("/nonexistent/x.gguf", &f, err, sizeof err) != 0 && f == NULL);
    CHECK(strcmp(err, "cannot open '/nonexistent/x.gguf': No such file or directory") == 0);
    CHECK(gguf_open("/tmp", &f, err, sizeof err) != 0 && strstr(err, "not a regular file"));
    CHECK(gguf_open_memory("", 0, &f, err, sizeof err) != 0 && strstr(err, "magic"));
    /* a NULL err buffer is allowed */
    CHECK(gguf_open_memory("GGUX", 4, &f, NULL, 0) != 0);
}

static void test_malformed(void)
{
    bb b = {0};
    uint64_t ne1[1] = { 32 }, ne2[2] = { 32, 2 };

    bb_raw(&b, "GGUX", 4); bb_u32(&b, 3); bb_u64(&b, 0); bb_u64(&b, 0);
    expect_fail("bad magic", &b, "magic", NULL); bb_free(&b);

    hdr(&b, 1, 0, 0); expect_fail("version 1", &b, "version 1", NULL); bb_free(&b);
    hdr(&b, 99, 0, 0); expect_fail("version 99", &b, "version 99", NULL); bb_free(&b);
    hdr(&b, 0x03000000u, 0, 0); expect_fail("big-endian", &b, "big-endian", NULL); bb_free(&b);

    hdr(&b, 2, 0, 0); expect_ok("empty v2", &b); bb_free(&b);
    hdr(&b, 3, 0, 1); kv_u32(&b, "k", 1); expect_ok("no tensors, no padding", &b); bb_free(&b);

    hdr(&b, 3, 0, UINT64_MAX); expect_fail("n_kv huge", &b, "n_kv", NULL); bb_free(&b);
    hdr(&b, 3, 0, 1u << 20); bb_zeros(&b, 64); expect_fail("n_kv > file", &b, "n_kv", NULL); bb_free(&b);
    hdr(&b, 3, UINT64_MAX, 0); expect_fail("n_tensors huge", &b, "n_tensors", NULL); bb_free(&b);
    hdr(&b, 3, 1000, 1); kv_u32(&b, "k", 1); expect_fail("n_tensors > file", &b, "n_tensors", NULL); bb_free(&b);

    /* key problems */
    hdr(&b, 3, 0, 1); bb_u64(&b, UINT64_MAX); bb_zeros(&b, 16);
    expect_fail("key length huge", &b, "kv 0", "name length"); bb_free(&b);
    hdr(&b, 3, 0, 1); bb_u64(&b, 0); bb_u32(&b, GGUF_VT_UINT8); bb_u8(&b, 1); bb_zeros(&b, 4);
    expect_fail("empty key", &b, "kv 0", "empty"); bb_free(&b);
    hdr(&b, 3, 0, 1); bb_u64(&b, 3); bb_raw(&b, "a\0b", 3); bb_u32(&b, GGUF_VT_UINT8); bb_u8(&b, 1);
    expect_fail("NUL in key", &b, "kv 0", "NUL"); bb_free(&b);
    hdr(&b, 3, 0, 2); kv_u32(&b, "dup.key", 1); kv_u32(&b, "dup.key", 2);
    expect_fail("duplicate key", &b, "'dup.key'", "duplicate"); bb_free(&b);
    hdr(&b, 3, 0, 1); bb_str(&b, "weird"); bb_u32(&b, 13); bb_u32(&b, 0);
    expect_fail("unknown value type", &b, "'weird'", "unknown value type 13"); bb_free(&b);

    /* value problems */
    hdr(&b, 3, 0, 1); bb_str(&b, "s"); bb_u32(&b, GGUF_VT_STRING); bb_u64(&b, (uint64_t)1 << 63); bb_zeros(&b, 8);
    expect_fail("string length huge", &b, "'s'", "past the end"); bb_free(&b);
    hdr(&b, 3, 0, 1); bb_str(&b, "arr"); bb_u32(&b, GGUF_VT_ARRAY); bb_u32(&b, GGUF_VT_UINT32);
    bb_u64(&b, (uint64_t)1 << 62); bb_zeros(&b, 16);
    expect_fail("array length huge", &b, "'arr'", "exceed"); bb_free(&b);
    hdr(&b, 3, 0, 1); bb_str(&b, "arr"); bb_u32(&b, GGUF_VT_ARRAY); bb_u32(&b, GGUF_VT_UINT64);
    bb_u64(&b, (uint64_t)1 << 61); bb_zeros(&b, 16);   /* n * 8 wraps to 0 in 64 bits */
    expect_fail("array bytes wrap", &b, "'arr'", NULL); bb_free(&b);
    hdr(&b, 3, 0, 1); bb_str(&b, "tok"); bb_u32(&b, GGUF_VT_ARRAY); bb_u32(&b, GGUF_VT_STRING);
    bb_u64(&b, (uint64_t)1 << 62); bb_zeros(&b, 16);
    expect_fail("string array length huge", &b, "'tok'", "strings"); bb_free(&b);
    hdr(&b, 3, 0, 1); bb_str(&b, "tok"); bb_u32(&b, GGUF_VT_ARRAY); bb_u32(&b, GGUF_VT_STRING);
    bb_u64(&b, 2); bb_str(&b, "ok"); bb_u64(&b, 1000); bb_zeros(&b, 8);
    expect_fail("string element past EOF", &b, "'tok'", "string 1"); bb_free(&b);
    hdr(&b, 3, 0, 1); bb_str(&b, "nest"); bb_u32(&b, GGUF_VT_ARRAY); bb_u32(&b, GGUF_VT_ARRAY);
    bb_u64(&b, 1); bb_u32(&b, GGUF_VT_UINT8); bb_u64(&b, 1); bb_u8(&b, 0);
    expect_fail("array of arrays", &b, "'nest'", "arrays of arrays"); bb_free(&b);
    hdr(&b, 3, 0, 1); bb_str(&b, "arr"); bb_u32(&b, GGUF_VT_ARRAY); bb_u32(&b, 77); bb_u64(&b, 0);
    expect_fail("unknown array element type", &b, "'arr'", "77"); bb_free(&b);

    /* alignment */
    hdr(&b, 3, 0, 1); kv_u32(&b, "general.alignment", 0);
    expect_fail("alignment 0", &b, "general.alignment", "power of two"); bb_free(&b);
    hdr(&b, 3, 0, 1); kv_u32(&b, "general.alignment", 3);
    expect_fail("alignment 3", &b, "general.alignment", "power of two"); bb_free(&b);
    hdr(&b, 3, 0, 1); bb_str(&b, "general.alignment"); bb_u32(&b, GGUF_VT_UINT64); bb_u64(&b, 32);
    expect_fail("alignment u64", &b, "general.alignment", "uint32"); bb_free(&b);
    hdr(&b, 3, 0, 1); kv_str(&b, "general.alignment", "32");
    expect_fail("alignment string", &b, "general.alignment", "uint32"); bb_free(&b);

    /* tensor infos */
    hdr(&b, 3, 2, 0); tinfo(&b, "t.dup", 1, ne1, G4_TYPE_F32, 0); tinfo(&b, "t.dup", 1, ne1, G4_TYPE_F32, 128);
    bb_pad(&b, 32); bb_zeros(&b, 256);
    expect_fail("duplicate tensor", &b, "'t.dup'", "duplicate"); bb_free(&b);
    hdr(&b, 3, 1, 0); tinfo(&b, "", 1, ne1, G4_TYPE_F32, 0); bb_pad(&b, 32); bb_zeros(&b, 128);
    expect_fail("empty tensor name", &b, "tensor 0", "empty"); bb_free(&b);
    hdr(&b, 3, 1, 0); tinfo(&b, "t0", 0, ne1, G4_TYPE_F32, 0); bb_zeros(&b, 64);
    expect_fail("n_dims 0", &b, "'t0'", "n_dims 0"); bb_free(&b);
    {
        uint64_t ne5[5] = { 1, 1, 1, 1, 1 };
        hdr(&b, 3, 1, 0); tinfo(&b, "t5", 5, ne5, G4_TYPE_F32, 0); bb_zeros(&b, 64);
        expect_fail("n_dims 5", &b, "'t5'", "n_dims 5"); bb_free(&b);
        uint64_t neo[2] = { (uint64_t)1 << 40, (uint64_t)1 << 40 };
        hdr(&b, 3, 1, 0); tinfo(&b, "ovf", 2, neo, G4_TYPE_F32, 0); bb_zeros(&b, 64);
        expect_fail("ne product overflow", &b, "'ovf'", "overflow"); bb_free(&b);
        uint64_t neb[1] = { UINT64_MAX };
        hdr(&b, 3, 1, 0); tinfo(&b, "neg", 1, neb, G4_TYPE_F32, 0); bb_zeros(&b, 64);
        expect_fail("ne > INT64_MAX", &b, "'neg'", "overflow"); bb_free(&b);
        uint64_t nez[2] = { 32, 0 };
        hdr(&b, 3, 1, 0); tinfo(&b, "zero", 2, nez, G4_TYPE_F32, 0); bb_zeros(&b, 64);
        expect_fail("ne 0", &b, "'zero'", "ne[1] is 0"); bb_free(&b);
        /* element count fits int64 but the byte count does not fit uint64 */
        uint64_t neq[2] = { (uint64_t)1 << 32, (uint64_t)1 << 30 };
        hdr(&b, 3, 1, 0); tinfo(&b, "bytes", 2, neq, G4_TYPE_F32, 0); bb_zeros(&b, 64);
        expect_fail("nbytes overflow", &b, "'bytes'", "byte size overflows"); bb_free(&b);
        /* representable but far larger than the file */
        uint64_t neh[2] = { (uint64_t)1 << 32, (uint64_t)1 << 20 };
        hdr(&b, 3, 1, 0); tinfo(&b, "huge", 2, neh, G4_TYPE_F32, 0); bb_pad(&b, 32); bb_zeros(&b, 64);
        expect_fail("huge tensor", &b, "'huge'", "past end of file"); bb_free(&b);
    }
    hdr(&b, 3, 1, 0); tinfo(&b, "badtype", 1, ne1, 200, 0); bb_pad(&b, 32); bb_zeros(&b, 128);
    expect_fail("unknown tensor type", &b, "'badtype'", "200"); bb_free(&b);
    {
        uint64_t ne33[1] = { 33 };
        hdr(&b, 3, 1, 0); tinfo(&b, "q", 1, ne33, G4_TYPE_Q4_0, 0); bb_pad(&b, 32); bb_zeros(&b, 128);
        expect_fail("ne[0] not multiple of block", &b, "'q'", "block size 32"); bb_free(&b);
    }
    hdr(&b, 3, 1, 0); tinfo(&b, "mis", 1, ne1, G4_TYPE_F32, 4); bb_pad(&b, 32); bb_zeros(&b, 256);
    expect_fail("offset misaligned", &b, "'mis'", "alignment"); bb_free(&b);
    hdr(&b, 3, 1, 1); kv_u32(&b, "general.alignment", 64); tinfo(&b, "mis64", 1, ne1, G4_TYPE_F32, 32);
    bb_pad(&b, 64); bb_zeros(&b, 512);
    expect_fail("offset misaligned for 64", &b, "'mis64'", "alignment 64"); bb_free(&b);
    hdr(&b, 3, 1, 0); tinfo(&b, "blk.0.attn_q.weight", 2, ne2, G4_TYPE_F32, 0); bb_pad(&b, 32); bb_zeros(&b, 255);
    expect_fail("tensor past EOF", &b, "'blk.0.attn_q.weight'", "extends past end of file"); bb_free(&b);
    hdr(&b, 3, 1, 0); tinfo(&b, "wrap", 1, ne1, G4_TYPE_F32, UINT64_MAX - 31); bb_pad(&b, 32); bb_zeros(&b, 256);
    expect_fail("offset+size overflow", &b, "'wrap'", "past end of file"); bb_free(&b);
    hdr(&b, 3, 1, 0); tinfo(&b, "nodata", 1, ne1, G4_TYPE_F32, 0);
    expect_fail("data section past EOF", &b, "data section", NULL); bb_free(&b);
    hdr(&b, 3, 1, 0); bb_str(&b, "line\nbreak"); bb_u32(&b, 0); bb_zeros(&b, 64);
    expect_fail("newline in name stays one line", &b, "'line?break'", NULL); bb_free(&b);

    /* ok: a tensor exactly reaching EOF (no trailing padding) */
    hdr(&b, 3, 1, 0); tinfo(&b, "exact", 1, ne1, G4_TYPE_F32, 0); bb_pad(&b, 32); bb_zeros(&b, 128);
    expect_ok("tensor ends at EOF", &b); bb_free(&b);

    /* every prefix of a valid file fails cleanly */
    valid_file(&b);
    expect_ok("valid small file", &b);
    int prefix_fail = 0;
    for (size_t n = 0; n < b.len; n++) {
        gguf_file *f = NULL;
        char err[512] = "";
        if (parse_copy(b.p, n, &f, err, sizeof err) != 0 && err[0] && !strchr(err, '\n'))
            prefix_fail++;
    }
    CHECKF(prefix_fail == (int)b.len, "%d of %zu prefixes failed cleanly", prefix_fail, b.len);
    bb_free(&b);
}

/* Every scalar value type, read through the getters, including unaligned
 * placement of multi-byte values (UBSan flags misaligned loads). */
static void test_all_value_types(void)
{
    bb b = {0};
    hdr(&b, 2, 0, 15);
    bb_str(&b, "u8");  bb_u32(&b, GGUF_VT_UINT8);  bb_u8(&b, 200);
    bb_str(&b, "i8");  bb_u32(&b, GGUF_VT_INT8);   bb_u8(&b, 0x80);
    bb_str(&b, "u16"); bb_u32(&b, GGUF_VT_UINT16); bb_u16(&b, 65535);
    bb_str(&b, "i16"); bb_u32(&b, GGUF_VT_INT16);  bb_u16(&b, 0x8000);
    bb_str(&b, "u32"); bb_u32(&b, GGUF_VT_UINT32); bb_u32(&b, 0xffffffffu);
    bb_str(&b, "i32"); bb_u32(&b, GGUF_VT_INT32);  bb_u32(&b, 0xfffffffeu);
    bb_str(&b, "f32"); bb_u32(&b, GGUF_VT_FLOAT32); bb_f32(&b, -2.5f);
    bb_str(&b, "b");   bb_u32(&b, GGUF_VT_BOOL);   bb_u8(&b, 1);
    bb_str(&b, "s");   bb_u32(&b, GGUF_VT_STRING); bb_str(&b, "x y");
    bb_str(&b, "u64"); bb_u32(&b, GGUF_VT_UINT64); bb_u64(&b, (uint64_t)1 << 63);
    bb_str(&b, "i64"); bb_u32(&b, GGUF_VT_INT64);  bb_u64(&b, (uint64_t)-5);
    bb_str(&b, "f64"); bb_u32(&b, GGUF_VT_FLOAT64); bb_f64(&b, 1e300);
    bb_str(&b, "a.i16"); bb_u32(&b, GGUF_VT_ARRAY); bb_u32(&b, GGUF_VT_INT16); bb_u64(&b, 3);
    bb_u16(&b, 1); bb_u16(&b, 0xffff); bb_u16(&b, 7);
    bb_str(&b, "a.f64"); bb_u32(&b, GGUF_VT_ARRAY); bb_u32(&b, GGUF_VT_FLOAT64); bb_u64(&b, 2);
    bb_f64(&b, 0.5); bb_f64(&b, -1.0);
    bb_str(&b, "a.i64"); bb_u32(&b, GGUF_VT_ARRAY); bb_u32(&b, GGUF_VT_INT64); bb_u64(&b, 2);
    bb_u64(&b, (uint64_t)-9); bb_u64(&b, 9);

    /* offset the buffer by one byte so nothing is naturally aligned */
    uint8_t *raw = malloc(b.len + 1);
    memcpy(raw + 1, b.p, b.len);
    gguf_file *f = NULL;
    char err[512];
    int rc = gguf_open_memory(raw + 1, b.len, &f, err, sizeof err);
    CHECKF(rc == 0, "%s", err);
    if (rc == 0) {
        uint64_t u; int64_t i; double d; bool bv; gguf_str s;
        CHECK(gguf_version(f) == 2 && gguf_alignment(f) == 32);
        CHECK(gguf_get_uint(f, "u8", &u) == 0 && u == 200);
        CHECK(gguf_get_int(f, "i8", &i) == 0 && i == -128);
        CHECK(gguf_get_uint(f, "i8", &u) == -2);
        CHECK(gguf_get_uint(f, "u16", &u) == 0 && u == 65535);
        CHECK(gguf_get_int(f, "i16", &i) == 0 && i == -32768);
        CHECK(gguf_get_uint(f, "u32", &u) == 0 && u == 0xffffffffu);
        CHECK(gguf_get_int(f, "i32", &i) == 0 && i == -2);
        CHECK(gguf_get_float(f, "f32", &d) == 0 && d == -2.5);
        CHECK(gguf_get_bool(f, "b", &bv) == 0 && bv);
        CHECK(gguf_get_str(f, "s", &s) == 0 && s.len == 3 && memcmp(s.ptr, "x y", 3) == 0);
        CHECK(gguf_get_uint(f, "u64", &u) == 0 && u == (uint64_t)1 << 63);
        CHECK(gguf_get_int(f, "u64", &i) == -2);
        CHECK(gguf_get_float(f, "u64", &d) == 0 && d == 9223372036854775808.0);
        CHECK(gguf_get_int(f, "i64", &i) == 0 && i == -5);
        CHECK(gguf_get_uint(f, "i64", &u) == -2);
        CHECK(gguf_get_float(f, "f64", &d) == 0 && d == 1e300);
        CHECK(gguf_get_int(f, "f64", &i) == -2);
        const gguf_kv *kv = gguf_find_kv(f, "a.i16");
        CHECK(kv && kv->n == 3 && gguf_arr_int(kv, 1) == -1 && gguf_arr_int(kv, 2) == 7);
        CHECK(kv && gguf_arr_float(kv, 1) == -1.0);
        kv = gguf_find_kv(f, "a.f64");
        CHECK(kv && gguf_arr_float(kv, 0) == 0.5 && gguf_arr_float(kv, 1) == -1.0);
        kv = gguf_find_kv(f, "a.i64");
        CHECK(kv && gguf_arr_int(kv, 0) == -9 && gguf_arr_int(kv, 1) == 9);
        kv = gguf_find_kv(f, "u16");   /* scalars work with the element accessors */
        CHECK(kv && gguf_arr_int(kv, 0) == 65535);
        CHECK(strcmp(gguf_vtype_name(GGUF_VT_FLOAT64), "float64") == 0);
        CHECK(strcmp(gguf_vtype_name(99), "unknown") == 0);
        CHECK(gguf_vtype_is_int(GGUF_VT_INT64) && !gguf_vtype_is_int(GGUF_VT_BOOL));
        gguf_close(f);
    }
    free(raw);
    bb_free(&b);
}

/* Real vocabularies: 262,144 strings and a 514,906-element array, plus many
 * tensors, must parse quickly (hash sets, not quadratic scans). */
static void test_large_header(void)
{
    enum { NVOCAB = 262144, NMERGE = 514906, NTENS = 3000 };
    bb b = {0};
    hdr(&b, 3, NTENS, 3);
    bb_str(&b, "tokenizer.ggml.tokens"); bb_u32(&b, GGUF_VT_ARRAY); bb_u32(&b, GGUF_VT_STRING); bb_u64(&b, NVOCAB);
    char tok[32];
    for (int i = 0; i < NVOCAB; i++) { snprintf(tok, sizeof tok, "tok%d", i); bb_str(&b, tok); }
    bb_str(&b, "tokenizer.ggml.scores"); bb_u32(&b, GGUF_VT_ARRAY); bb_u32(&b, GGUF_VT_FLOAT32); bb_u64(&b, NMERGE);
    for (int i = 0; i < NMERGE; i++) bb_f32(&b, (float)i);
    kv_u32(&b, "general.alignment", 32);
    uint64_t ne[1] = { 8 };
    for (int i = 0; i < NTENS; i++) {
        snprintf(tok, sizeof tok, "blk.%d.w", i);
        tinfo(&b, tok, 1, ne, G4_TYPE_F32, (uint64_t)i * 32);
    }
    bb_pad(&b, 32);
    bb_zeros(&b, (size_t)NTENS * 32);

    clock_t t0 = clock();
    gguf_file *f = NULL;
    char err[512];
    int rc = gguf_open_memory(b.p, b.len, &f, err, sizeof err);
    double ms = 1000.0 * (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECKF(rc == 0, "%s", err);
    if (rc == 0) {
        const gguf_kv *kv = gguf_find_kv(f, "tokenizer.ggml.tokens");
        CHECK(kv && kv->n == NVOCAB);
        gguf_str s = kv ? gguf_arr_str(kv, NVOCAB - 1) : (gguf_str){ 0, "" };
        CHECK(s.len == 9 && memcmp(s.ptr, "tok262143", 9) == 0);
        kv = gguf_find_kv(f, "tokenizer.ggml.scores");
        CHECK(kv && kv->n == NMERGE && gguf_arr_float(kv, NMERGE - 1) == (double)(NMERGE - 1));
        CHECK(gguf_find_tensor(f, "blk.2999.w") == gguf_tensor_at(f, NTENS - 1));
        gguf_close(f);
    }
    CHECKF(ms < 2000.0, "large header took %.0f ms", ms);
    fprintf(stderr, "test_gguf: large header (262144 tokens, %d tensors) parsed in %.1f ms\n", NTENS, ms);
    bb_free(&b);
}

/* -------------------------------------------------------------- fuzzing */

#ifndef FUZZ_ITERS
#define FUZZ_ITERS 2000   /* fixed seed: reproducible; raise with -DFUZZ_ITERS=... */
#endif

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_fuzz(void)
{
    bb b = {0};
    valid_file(&b);
    uint8_t *m = malloc(b.len);
    int n_ok = 0, n_err = 0, bad_msg = 0;
    for (int it = 0; it < FUZZ_ITERS; it++) {
        memcpy(m, b.p, b.len);
        int flips = 1 + (int)(rng() % 8);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)(rng() % b.len);
            switch (rng() % 4) {
            case 0: m[at] ^= (uint8_t)(1u << (rng() % 8)); break;
            case 1: m[at] = (uint8_t)rng(); break;
            case 2: m[at] = 0xff; break;
            default: m[at] = 0; break;
            }
        }
        size_t len = (rng() % 8 == 0) ? (size_t)(rng() % b.len) : b.len;
        gguf_file *f = NULL;
        char err[512] = "";
        if (parse_copy(m, len, &f, err, sizeof err) == 0)
            n_ok++;
        else {
            n_err++;
            if (!err[0] || strchr(err, '\n')) bad_msg++;
        }
    }
    CHECKF(bad_msg == 0, "%d fuzz errors without a one-line message", bad_msg);
    CHECK(n_ok + n_err == FUZZ_ITERS);
    fprintf(stderr, "test_gguf: fuzz %d mutants: %d parsed, %d rejected\n", FUZZ_ITERS, n_ok, n_err);
    free(m);
    bb_free(&b);
}

int main(void)
{
    test_roundtrip(32);
    test_roundtrip(64);
    test_writer_errors();
    test_open_errors();
    test_malformed();
    test_all_value_types();
    test_large_header();
    test_fuzz();
    fprintf(stderr, "test_gguf: %d malformed-file cases\n", n_cases);
    return tu_finish("test_gguf");
}
