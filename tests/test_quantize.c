/*
 * test_quantize.c - `gemma4 quantize` (src/model/quantize.c, src/cli/quantize.c)
 * and the writer's gguf_w_raw().
 *
 * Small random models are generated in f32 with the test-model library,
 * converted to every mix, and read back with our GGUF reader:
 *   - every metadata key is identical (same position, type, count, bytes)
 *     except general.file_type / general.quantization_version;
 *   - tensor names, shapes and order are unchanged, and each tensor's type
 *     is the one the policy prescribes (written out literally here for the
 *     tiny model, not recomputed with the implementation's rules);
 *   - each converted tensor's bytes equal g4_quantize_row() of the source
 *     rows (dequantized with g4_dequantize_row() when the source is
 *     quantized), row by row -- an independent check of the segmented,
 *     multithreaded data path;
 * plus block-size fallbacks, --embd-type, thread-count independence, and
 * the error paths (missing input, bad type, existing output, output == input,
 * corrupt input, unsupported tensor type), none of which may leave an output
 * or temporary file behind.
 *
 * The CLI source is compiled into this test (it is not part of the library)
 * so that its argument handling and exit codes can be checked in-process.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "kernels/quant.h"
#include "model/quantize.h"
#include "model/testmodel.h"
#include "testutil.h"

#include "cli/util.c"
#include "cli/quantize.c"

static char g_dir[256];

static const char *tmp_path(const char *name)
{
    static char buf[64][512];
    static int k;
    if (k == 64) {
        fprintf(stderr, "tmp_path: too many paths\n");
        exit(1);
    }
    char *b = buf[k++];
    snprintf(b, 512, "%s/%s", g_dir, name);
    return b;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static bool no_output(const char *out)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    return !exists(out) && !exists(tmp);
}

static uint64_t file_hash(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    uint64_t h = 1469598103934665603ull;
    int c;
    while ((c = fgetc(f)) != EOF) {
        h ^= (uint64_t)(unsigned char)c;
        h *= 1099511628211ull;
    }
    fclose(f);
    return h;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fwrite(data, 1, n, f);
    fclose(f);
}

/* ------------------------------------------------------------- notes */

static char g_notes[16384];

static void collect_note(void *user, const char *msg)
{
    (void)user;
    size_t n = strlen(g_notes);
    snprintf(g_notes + n, sizeof g_notes - n, "%s\n", msg);
}

typedef struct {
    int      calls;
    bool     monotonic;
    uint64_t last, total;
} prog;

static void count_progress(void *user, uint64_t done, uint64_t total, uint64_t i, uint64_t n,
                           const char *tensor, uint32_t type)
{
    (void)i; (void)n; (void)tensor; (void)type;
    prog *pr = user;
    if (done < pr->last || done > total)
        pr->monotonic = false;
    pr->last = done;
    pr->total = total;
    pr->calls++;
}

static int quantize(const char *in, const char *out, uint32_t ftype, int64_t embd, int threads,
                    bool force, char *err, size_t errlen)
{
    g4_quantize_params p;
    g4_quantize_default_params(&p);
    p.ftype = ftype;
    p.embd_type = embd;
    p.n_threads = threads;
    p.force = force;
    p.note = collect_note;
    g_notes[0] = '\0';
    err[0] = '\0';
    return g4_quantize_file(&p, in, out, err, errlen);
}

/* ------------------------------------------------------------- checks */

static uint64_t vsize(uint32_t vt)
{
    switch (vt) {
    case GGUF_VT_UINT8: case GGUF_VT_INT8: case GGUF_VT_BOOL: return 1;
    case GGUF_VT_UINT16: case GGUF_VT_INT16: return 2;
    case GGUF_VT_UINT32: case GGUF_VT_INT32: case GGUF_VT_FLOAT32: return 4;
    default: return 8;
    }
}

static bool kv_equal(const gguf_kv *a, const gguf_kv *b)
{
    if (strcmp(a->key, b->key) || a->type != b->type || a->n != b->n)
        return false;
    uint32_t et = a->type;
    if (a->type == GGUF_VT_ARRAY) {
        if (a->arr_type != b->arr_type)
            return false;
        et = a->arr_type;
    }
    if (et == GGUF_VT_STRING) {
        const gguf_str *x = a->data, *y = b->data;
        for (uint64_t i = 0; i < a->n; i++)
            if (x[i].len != y[i].len || memcmp(x[i].ptr, y[i].ptr, (size_t)x[i].len))
                return false;
        return true;
    }
    return memcmp(a->data, b->data, (size_t)(a->n * vsize(et))) == 0;
}

/* All metadata of out equals in's, in the same order, except the two keys
 * quantize sets. */
static void check_metadata(const gguf_file *in, const gguf_file *out, uint32_t ftype, bool quantized,
                           const char *label)
{
    CHECKF(gguf_n_kv(in) == gguf_n_kv(out), "%s: %llu vs %llu keys", label,
           (unsigned long long)gguf_n_kv(in), (unsigned long long)gguf_n_kv(out));
    uint64_t n = gguf_n_kv(in) < gguf_n_kv(out) ? gguf_n_kv(in) : gguf_n_kv(out);
    int bad = 0;
    for (uint64_t i = 0; i < n; i++) {
        const gguf_kv *a = gguf_kv_at(in, i), *b = gguf_kv_at(out, i);
        if (!strcmp(a->key, "general.file_type") || !strcmp(a->key, "general.quantization_version")) {
            CHECKF(!strcmp(a->key, b->key), "%s: key %llu", label, (unsigned long long)i);
            continue;
        }
        if (!kv_equal(a, b)) {
            if (bad++ < 3)
                fprintf(stderr, "%s: key '%s' differs\n", label, a->key);
        }
    }
    CHECKF(bad == 0, "%s: %d keys differ", label, bad);
    uint64_t v = 999;
    const gguf_kv *ft = gguf_find_kv(out, "general.file_type");
    CHECKF(ft && ft->type == GGUF_VT_UINT32 && gguf_get_uint(out, "general.file_type", &v) == 0 && v == ftype,
           "%s: file_type %llu, want %u", label, (unsigned long long)v, ftype);
    uint64_t qv_in = 0, qv = 0;
    gguf_get_uint(in, "general.quantization_version", &qv_in);
    CHECKF(gguf_get_uint(out, "general.quantization_version", &qv) == 0 && qv == (quantized ? 2 : qv_in),
           "%s: quantization_version %llu", label, (unsigned long long)qv);
}

/* Tensor data of out, tensor by tensor and row by row, against the
 * reference row functions applied to in; names/shapes must match. */
static void check_tensors(const gguf_file *in, const gguf_file *out, const char *label)
{
    CHECKF(gguf_n_tensors(in) == gguf_n_tensors(out), "%s: tensor count", label);
    int bad = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(in) && i < gguf_n_tensors(out); i++) {
        const gguf_tensor *a = gguf_tensor_at(in, i), *b = gguf_tensor_at(out, i);
        bool shape = !strcmp(a->name, b->name) && a->n_dims == b->n_dims &&
                     !memcmp(a->ne, b->ne, sizeof a->ne);
        CHECKF(shape, "%s: tensor %llu '%s' vs '%s'", label, (unsigned long long)i, a->name, b->name);
        if (!shape)
            continue;
        if (a->type == b->type) {
            if (a->nbytes != b->nbytes || memcmp(a->data, b->data, (size_t)a->nbytes)) {
                if (bad++ < 3)
                    fprintf(stderr, "%s: '%s' not copied unchanged\n", label, a->name);
            }
            continue;
        }
        uint64_t ne0 = a->ne[0], rows = a->n_elements / ne0, ra = 0, rb = 0;
        CHECK(g4_row_size(a->type, ne0, &ra) && g4_row_size(b->type, ne0, &rb));
        CHECKF(b->nbytes == rb * rows, "%s: '%s' size", label, a->name);
        float *f = malloc((size_t)ne0 * sizeof *f);
        uint8_t *q = malloc((size_t)rb);
        for (uint64_t r = 0; r < rows; r++) {
            g4_dequantize_row(a->type, (const uint8_t *)a->data + r * ra, f, (int64_t)ne0);
            g4_quantize_row(b->type, f, q, (int64_t)ne0);
            if (memcmp(q, (const uint8_t *)b->data + r * rb, (size_t)rb)) {
                if (bad++ < 3)
                    fprintf(stderr, "%s: '%s' row %llu differs from g4_quantize_row\n", label, a->name,
                            (unsigned long long)r);
                break;
            }
        }
        free(f);
        free(q);
    }
    CHECKF(bad == 0, "%s: %d tensors with wrong data", label, bad);
}

static bool in_list(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(name, *list))
            return true;
    return false;
}

/* Expected type of a tensor of the tiny model (6 layers, attn_v on layers
 * 0-4 only, all rows multiples of 256) for each mix, written out. */
static uint32_t tiny_expected(const gguf_tensor *t, uint32_t ftype)
{
    static const char *const q4km_q6k[] = {
        /* token_embd = the tied output; use_more_bits(i, 5) for attn_v: 2, 4;
         * use_more_bits(layer, 6) for ffn_down: 2, 5 */
        "token_embd.weight", "blk.2.attn_v.weight", "blk.4.attn_v.weight",
        "blk.2.ffn_down.weight", "blk.5.ffn_down.weight", NULL };
    static const char *const q4ks_q5k[] = {
        /* first 4 attn_v; ffn_down of layers < 6/8 = 0: none */
        "blk.0.attn_v.weight", "blk.1.attn_v.weight", "blk.2.attn_v.weight",
        "blk.3.attn_v.weight", NULL };
    bool one_d = t->n_dims == 1 || (t->ne[1] == 1 && t->ne[2] == 1 && t->ne[3] == 1);
    if (one_d)
        return G4_TYPE_F32;
    bool embd = !strcmp(t->name, "token_embd.weight");
    switch (ftype) {
    case G4_FTYPE_ALL_F32:     return G4_TYPE_F32;
    case G4_FTYPE_MOSTLY_F16:  return G4_TYPE_F16;
    case G4_FTYPE_MOSTLY_BF16: return G4_TYPE_BF16;
    case G4_FTYPE_MOSTLY_Q8_0: return G4_TYPE_Q8_0;
    case G4_FTYPE_MOSTLY_Q4_0: return embd ? G4_TYPE_Q6_K : G4_TYPE_Q4_0;
    case G4_FTYPE_MOSTLY_Q4_1: return embd ? G4_TYPE_Q6_K : G4_TYPE_Q4_1;
    case G4_FTYPE_MOSTLY_Q5_0: return embd ? G4_TYPE_Q6_K : G4_TYPE_Q5_0;
    case G4_FTYPE_MOSTLY_Q5_1: return embd ? G4_TYPE_Q6_K : G4_TYPE_Q5_1;
    case G4_FTYPE_MOSTLY_Q6_K: return G4_TYPE_Q6_K;
    case G4_FTYPE_MOSTLY_Q4_K_M:
        return in_list(t->name, q4km_q6k) ? G4_TYPE_Q6_K : G4_TYPE_Q4_K;
    case G4_FTYPE_MOSTLY_Q5_K_M:
        return in_list(t->name, q4km_q6k) ? G4_TYPE_Q6_K : G4_TYPE_Q5_K;
    case G4_FTYPE_MOSTLY_Q4_K_S:
        return embd ? G4_TYPE_Q6_K : in_list(t->name, q4ks_q5k) ? G4_TYPE_Q5_K : G4_TYPE_Q4_K;
    case G4_FTYPE_MOSTLY_Q5_K_S:
        return embd ? G4_TYPE_Q6_K : G4_TYPE_Q5_K;
    }
    return G4_TYPE_COUNT_;
}

static gguf_file *open_ok(const char *path)
{
    gguf_file *f = NULL;
    char err[512];
    if (gguf_open(path, &f, err, sizeof err)) {
        fprintf(stderr, "open %s: %s\n", path, err);
        return NULL;
    }
    return f;
}

static const char *make_model(const char *name, uint32_t embd, uint32_t ff, g4_tm_type type)
{
    const char *path = tmp_path(name);
    g4_test_model_params tp;
    g4_test_model_default_params(&tp);
    if (embd) tp.n_embd = embd;
    if (ff) tp.n_ff = ff;
    tp.type = type;
    tp.n_threads = 2;
    char err[512];
    if (g4_make_test_model(&tp, path, err, sizeof err)) {
        fprintf(stderr, "make_model %s: %s\n", name, err);
        exit(1);
    }
    return path;
}

/* ------------------------------------------------------------- tests */

static void test_names(void)
{
    uint32_t ft = 0, t = 0;
    CHECK(g4_quantize_ftype_from_name("q4_k_m", &ft) == 0 && ft == 15);
    CHECK(g4_quantize_ftype_from_name("Q4_K", &ft) == 0 && ft == 15);
    CHECK(g4_quantize_ftype_from_name("q5_k", &ft) == 0 && ft == 17);
    CHECK(g4_quantize_ftype_from_name("bf16", &ft) == 0 && ft == 32);
    CHECK(g4_quantize_ftype_from_name("q8_0", &ft) == 0 && ft == 7);
    CHECK(g4_quantize_ftype_from_name("q4_0", &ft) == 0 && ft == 2);
    CHECK(g4_quantize_ftype_from_name("q6_k", &ft) == 0 && ft == 18);
    CHECK(g4_quantize_ftype_from_name("f16", &ft) == 0 && ft == 1);
    CHECK(g4_quantize_ftype_from_name("f32", &ft) == 0 && ft == 0);
    CHECK(g4_quantize_ftype_from_name("q3_k", &ft) == -1);
    CHECK(g4_quantize_ftype_from_name("", &ft) == -1);
    CHECK(g4_quantize_ftype_from_name(NULL, &ft) == -1);
    CHECK(!strcmp(g4_quantize_ftype_name(15), "q4_k_m"));
    CHECK(g4_quantize_ftype_name(12) == NULL);
    CHECK(g4_quantize_type_from_name("q4_k", &t) == 0 && t == G4_TYPE_Q4_K);
    CHECK(g4_quantize_type_from_name("Q6_K", &t) == 0 && t == G4_TYPE_Q6_K);
    CHECK(g4_quantize_type_from_name("q4_k_m", &t) == -1);
    CHECK(g4_quantize_type_from_name("iq2_xxs", &t) == -1);
}

static void test_raw_writer(void)
{
    const char *path = tmp_path("raw.gguf");
    gguf_writer *w = gguf_writer_new();
    uint8_t u8 = 200; int8_t i8 = -5; uint16_t u16 = 65000; int16_t i16 = -30000;
    int64_t i64 = -1234567890123LL; double f64 = 3.25; uint64_t u64 = 1ull << 63;
    uint8_t b = 1;
    gguf_w_raw(w, "t.u8", GGUF_VT_UINT8, 0, 1, &u8);
    gguf_w_raw(w, "t.i8", GGUF_VT_INT8, 0, 1, &i8);
    gguf_w_raw(w, "t.u16", GGUF_VT_UINT16, 0, 1, &u16);
    gguf_w_raw(w, "t.i16", GGUF_VT_INT16, 0, 1, &i16);
    gguf_w_raw(w, "t.i64", GGUF_VT_INT64, 0, 1, &i64);
    gguf_w_raw(w, "t.f64", GGUF_VT_FLOAT64, 0, 1, &f64);
    gguf_w_raw(w, "t.u64", GGUF_VT_UINT64, 0, 1, &u64);
    gguf_w_raw(w, "t.bool", GGUF_VT_BOOL, 0, 1, &b);
    int16_t ai16[3] = { -1, 2, -3 };
    double af64[2] = { 0.5, -1e300 };
    gguf_w_raw(w, "t.ai16", GGUF_VT_ARRAY, GGUF_VT_INT16, 3, ai16);
    gguf_w_raw(w, "t.af64", GGUF_VT_ARRAY, GGUF_VT_FLOAT64, 2, af64);
    gguf_w_raw(w, "t.empty", GGUF_VT_ARRAY, GGUF_VT_UINT8, 0, NULL);
    gguf_str strs[3] = { { 3, "abc" }, { 0, "" }, { 3, "x\0y" } };
    gguf_w_raw(w, "t.strs", GGUF_VT_ARRAY, GGUF_VT_STRING, 3, strs);
    gguf_w_raw(w, "t.str", GGUF_VT_STRING, 0, 1, &strs[2]);
    char err[512];
    CHECKF(gguf_w_begin(w, path, err, sizeof err) == 0, "%s", err);
    CHECKF(gguf_w_finish(w, err, sizeof err) == 0, "%s", err);
    gguf_writer_free(w);

    gguf_file *f = open_ok(path);
    CHECK(f != NULL);
    if (f) {
        int64_t v;
        uint64_t u;
        double d;
        CHECK(gguf_find_kv(f, "t.u8")->type == GGUF_VT_UINT8 && gguf_get_uint(f, "t.u8", &u) == 0 && u == 200);
        CHECK(gguf_find_kv(f, "t.i8")->type == GGUF_VT_INT8 && gguf_get_int(f, "t.i8", &v) == 0 && v == -5);
        CHECK(gguf_find_kv(f, "t.u16")->type == GGUF_VT_UINT16 && gguf_get_uint(f, "t.u16", &u) == 0 && u == 65000);
        CHECK(gguf_find_kv(f, "t.i16")->type == GGUF_VT_INT16 && gguf_get_int(f, "t.i16", &v) == 0 && v == -30000);
        CHECK(gguf_find_kv(f, "t.i64")->type == GGUF_VT_INT64 && gguf_get_int(f, "t.i64", &v) == 0 &&
              v == -1234567890123LL);
        CHECK(gguf_find_kv(f, "t.f64")->type == GGUF_VT_FLOAT64 && gguf_get_float(f, "t.f64", &d) == 0 && d == 3.25);
        CHECK(gguf_get_uint(f, "t.u64", &u) == 0 && u == 1ull << 63);
        bool bv = false;
        CHECK(gguf_get_bool(f, "t.bool", &bv) == 0 && bv);
        const gguf_kv *kv = gguf_find_kv(f, "t.ai16");
        CHECK(kv && kv->arr_type == GGUF_VT_INT16 && kv->n == 3 && gguf_arr_int(kv, 2) == -3);
        kv = gguf_find_kv(f, "t.af64");
        CHECK(kv && kv->arr_type == GGUF_VT_FLOAT64 && kv->n == 2 && gguf_arr_float(kv, 1) == -1e300);
        kv = gguf_find_kv(f, "t.empty");
        CHECK(kv && kv->type == GGUF_VT_ARRAY && kv->n == 0);
        kv = gguf_find_kv(f, "t.strs");
        CHECK(kv && kv->n == 3 && gguf_arr_str(kv, 0).len == 3 && gguf_arr_str(kv, 1).len == 0 &&
              gguf_arr_str(kv, 2).len == 3 && !memcmp(gguf_arr_str(kv, 2).ptr, "x\0y", 3));
        gguf_str s;
        CHECK(gguf_get_str(f, "t.str", &s) == 0 && s.len == 3 && !memcmp(s.ptr, "x\0y", 3));
        gguf_close(f);
    }

    /* bad calls are reported by begin */
    w = gguf_writer_new();
    gguf_w_raw(w, "bad", GGUF_VT_UINT32, 0, 2, &u64);
    CHECK(gguf_w_begin(w, tmp_path("raw-bad.gguf"), err, sizeof err) != 0 && strstr(err, "'bad'"));
    gguf_writer_free(w);
    w = gguf_writer_new();
    gguf_w_raw(w, "nest", GGUF_VT_ARRAY, GGUF_VT_ARRAY, 1, &u64);
    CHECK(gguf_w_begin(w, tmp_path("raw-bad2.gguf"), err, sizeof err) != 0 && strstr(err, "arrays of arrays"));
    gguf_writer_free(w);
    w = gguf_writer_new();
    gguf_w_raw(w, "unk", 99, 0, 1, &u64);
    CHECK(gguf_w_begin(w, tmp_path("raw-bad3.gguf"), err, sizeof err) != 0 && strstr(err, "unknown value type"));
    gguf_writer_free(w);
    CHECK(!exists(tmp_path("raw-bad.gguf")));
}

static void test_all_types(const char *in_path)
{
    static const uint32_t ftypes[] = {
        G4_FTYPE_ALL_F32, G4_FTYPE_MOSTLY_F16, G4_FTYPE_MOSTLY_BF16, G4_FTYPE_MOSTLY_Q8_0,
        G4_FTYPE_MOSTLY_Q4_0, G4_FTYPE_MOSTLY_Q4_1, G4_FTYPE_MOSTLY_Q5_0, G4_FTYPE_MOSTLY_Q5_1,
        G4_FTYPE_MOSTLY_Q4_K_S, G4_FTYPE_MOSTLY_Q4_K_M, G4_FTYPE_MOSTLY_Q5_K_S,
        G4_FTYPE_MOSTLY_Q5_K_M, G4_FTYPE_MOSTLY_Q6_K,
    };
    gguf_file *in = open_ok(in_path);
    CHECK(in != NULL);
    if (!in)
        return;
    for (size_t k = 0; k < sizeof ftypes / sizeof ftypes[0]; k++) {
        uint32_t ft = ftypes[k];
        char name[64], err[640];
        snprintf(name, sizeof name, "tiny-%s.gguf", g4_quantize_ftype_name(ft));
        const char *out = tmp_path(name);
        int rc = quantize(in_path, out, ft, -1, 3, false, err, sizeof err);
        CHECKF(rc == 0, "%s: %s", name, err);
        CHECKF(g_notes[0] == '\0', "%s: unexpected notes: %s", name, g_notes);
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.tmp", out);
        CHECK(!exists(tmp));
        gguf_file *o = rc == 0 ? open_ok(out) : NULL;
        CHECK(o != NULL);
        if (!o)
            continue;
        bool quantized = ft != G4_FTYPE_ALL_F32 && ft != G4_FTYPE_MOSTLY_F16 && ft != G4_FTYPE_MOSTLY_BF16;
        check_metadata(in, o, ft, quantized, name);
        int wrong = 0;
        for (uint64_t i = 0; i < gguf_n_tensors(o); i++) {
            const gguf_tensor *t = gguf_tensor_at(o, i);
            uint32_t want = tiny_expected(t, ft);
            if (t->type != want && wrong++ < 3)
                fprintf(stderr, "%s: '%s' is %s, want %s\n", name, t->name, g4_type_get(t->type)->name,
                        g4_type_get(want) ? g4_type_get(want)->name : "?");
        }
        CHECKF(wrong == 0, "%s: %d tensors of the wrong type", name, wrong);
        check_tensors(in, o, name);
        gguf_close(o);
    }
    gguf_close(in);
}

/* q8_0 -> f32 is exactly the dequantized q8_0 (and q6_k embedding) data;
 * q8_0 -> q4_0 requantizes the dequantized rows. */
static void test_round_trip(void)
{
    char err[640];
    const char *q8 = tmp_path("tiny-q8_0.gguf");       /* written by test_all_types */
    const char *back = tmp_path("rt-f32.gguf");
    CHECKF(quantize(q8, back, G4_FTYPE_ALL_F32, -1, 2, false, err, sizeof err) == 0, "%s", err);
    gguf_file *a = open_ok(q8), *b = open_ok(back);
    CHECK(a && b);
    if (a && b) {
        int n_q = 0;
        for (uint64_t i = 0; i < gguf_n_tensors(b); i++) {
            const gguf_tensor *t = gguf_tensor_at(b, i);
            CHECKF(t->type == G4_TYPE_F32, "'%s' not f32", t->name);
            if (gguf_tensor_at(a, i)->type != G4_TYPE_F32)
                n_q++;
        }
        CHECK(n_q > 30);
        check_tensors(a, b, "q8_0->f32");
        /* spot check against a plain dequantization */
        const gguf_tensor *ta = gguf_find_tensor(a, "blk.1.ffn_down.weight");
        const gguf_tensor *tb = gguf_find_tensor(b, "blk.1.ffn_down.weight");
        CHECK(ta && tb && ta->type == G4_TYPE_Q8_0);
        if (ta && tb) {
            float *f = malloc((size_t)ta->n_elements * sizeof *f);
            g4_dequantize_row(ta->type, ta->data, f, (int64_t)ta->n_elements);
            CHECK(memcmp(f, tb->data, (size_t)ta->n_elements * sizeof *f) == 0);
            free(f);
        }
    }
    gguf_close(b);

    const char *q4 = tmp_path("rq-q4_0.gguf");
    CHECKF(quantize(q8, q4, G4_FTYPE_MOSTLY_Q4_0, -1, 2, false, err, sizeof err) == 0, "%s", err);
    b = open_ok(q4);
    CHECK(b != NULL);
    if (a && b) {
        const gguf_tensor *t = gguf_find_tensor(b, "blk.0.attn_q.weight");
        CHECK(t && t->type == G4_TYPE_Q4_0);
        check_tensors(a, b, "q8_0->q4_0");
    }
    gguf_close(b);

    /* same type in and out: a byte-identical copy of every tensor */
    const char *same = tmp_path("same-q8_0.gguf");
    CHECKF(quantize(q8, same, G4_FTYPE_MOSTLY_Q8_0, -1, 2, false, err, sizeof err) == 0, "%s", err);
    b = open_ok(same);
    if (a && b) {
        bool all = gguf_n_tensors(a) == gguf_n_tensors(b);
        for (uint64_t i = 0; all && i < gguf_n_tensors(a); i++) {
            const gguf_tensor *x = gguf_tensor_at(a, i), *y = gguf_tensor_at(b, i);
            all = x->type == y->type && x->nbytes == y->nbytes && !memcmp(x->data, y->data, (size_t)x->nbytes);
        }
        CHECK(all);
    }
    gguf_close(b);
    gguf_close(a);
}

static void test_threads_and_progress(const char *in)
{
    char err[640];
    const char *o1 = tmp_path("thr1.gguf"), *o4 = tmp_path("thr4.gguf");
    CHECKF(quantize(in, o1, G4_FTYPE_MOSTLY_Q4_K_M, -1, 1, false, err, sizeof err) == 0, "%s", err);
    g4_quantize_params p;
    g4_quantize_default_params(&p);
    CHECK(p.ftype == G4_FTYPE_MOSTLY_Q4_K_M && p.embd_type == -1 && p.n_threads == 0 && !p.force);
    p.n_threads = 4;
    prog pr = { .monotonic = true };
    p.progress = count_progress;
    p.progress_user = &pr;
    CHECKF(g4_quantize_file(&p, in, o4, err, sizeof err) == 0, "%s", err);
    CHECK(file_hash(o1) == file_hash(o4) && file_hash(o1) != 0);
    CHECK(pr.calls >= 86 && pr.monotonic && pr.total > 0 && pr.last == pr.total);
}

static void test_embd_type(const char *in)
{
    char err[640];
    const char *out = tmp_path("embd.gguf");
    CHECKF(quantize(in, out, G4_FTYPE_MOSTLY_Q4_K_M, G4_TYPE_Q8_0, 2, false, err, sizeof err) == 0, "%s", err);
    gguf_file *f = open_ok(out), *src = open_ok(in);
    if (f && src) {
        CHECK(gguf_find_tensor(f, "token_embd.weight")->type == G4_TYPE_Q8_0);
        CHECK(gguf_find_tensor(f, "blk.2.attn_v.weight")->type == G4_TYPE_Q6_K);
        CHECK(gguf_find_tensor(f, "blk.0.attn_q.weight")->type == G4_TYPE_Q4_K);
        check_tensors(src, f, "embd-type");
    }
    gguf_close(f);
    gguf_close(src);
    /* f16 mix with a quantized embedding */
    out = tmp_path("embd2.gguf");
    CHECKF(quantize(in, out, G4_FTYPE_MOSTLY_F16, G4_TYPE_Q4_0, 2, false, err, sizeof err) == 0, "%s", err);
    f = open_ok(out);
    if (f) {
        CHECK(gguf_find_tensor(f, "token_embd.weight")->type == G4_TYPE_Q4_0);
        CHECK(gguf_find_tensor(f, "blk.0.ffn_up.weight")->type == G4_TYPE_F16);
    }
    gguf_close(f);
    /* an unsupported embedding type is refused */
    out = tmp_path("embd3.gguf");
    CHECK(quantize(in, out, G4_FTYPE_MOSTLY_Q8_0, G4_TYPE_Q8_K, 2, false, err, sizeof err) != 0 &&
          strstr(err, "token embedding type"));
    CHECK(no_output(out));
}

/* Rows of 272 (not a multiple of 32) and 544 (of 32 but not of 256). */
static void test_fallback(void)
{
    const char *in = make_model("fb.gguf", 272, 544, G4_TM_F32);
    char err[640];
    const char *out = tmp_path("fb-q4km.gguf");
    CHECKF(quantize(in, out, G4_FTYPE_MOSTLY_Q4_K_M, -1, 2, false, err, sizeof err) == 0, "%s", err);
    CHECK(strstr(g_notes, "tensor 'blk.0.attn_q.weight': row length 272 is not a multiple of the q4_K "
                          "block size 256; using f16") != NULL);
    CHECK(strstr(g_notes, "tensor 'blk.0.ffn_down.weight': row length 544 is not a multiple of the q4_K "
                          "block size 256; using q5_0") != NULL);
    CHECK(strstr(g_notes, "tensor 'blk.2.ffn_down.weight': row length 544 is not a multiple of the q6_K "
                          "block size 256; using q8_0") != NULL);
    gguf_file *f = open_ok(out), *src = open_ok(in);
    if (f && src) {
        CHECK(gguf_find_tensor(f, "token_embd.weight")->type == G4_TYPE_F16);
        CHECK(gguf_find_tensor(f, "blk.0.attn_q.weight")->type == G4_TYPE_F16);
        CHECK(gguf_find_tensor(f, "blk.0.attn_output.weight")->type == G4_TYPE_Q4_K); /* rows of 4*64 */
        CHECK(gguf_find_tensor(f, "blk.0.ffn_down.weight")->type == G4_TYPE_Q5_0);
        CHECK(gguf_find_tensor(f, "blk.2.ffn_down.weight")->type == G4_TYPE_Q8_0);
        check_tensors(src, f, "fallback q4_k_m");
    }
    gguf_close(f);
    out = tmp_path("fb-q8.gguf");
    CHECKF(quantize(in, out, G4_FTYPE_MOSTLY_Q8_0, -1, 2, false, err, sizeof err) == 0, "%s", err);
    f = open_ok(out);
    if (f && src) {
        CHECK(gguf_find_tensor(f, "blk.0.ffn_up.weight")->type == G4_TYPE_F16);
        CHECK(gguf_find_tensor(f, "blk.0.ffn_down.weight")->type == G4_TYPE_Q8_0);
        check_tensors(src, f, "fallback q8_0");
    }
    gguf_close(f);
    gguf_close(src);
}

static void test_errors(const char *in)
{
    char err[640];
    const char *out = tmp_path("err.gguf");

    /* missing input */
    CHECK(quantize(tmp_path("nope.gguf"), out, G4_FTYPE_MOSTLY_Q8_0, -1, 1, false, err, sizeof err) != 0);
    CHECKF(strstr(err, "nope.gguf") && strstr(err, "No such file"), "%s", err);
    CHECK(no_output(out));

    /* bad type */
    CHECK(quantize(in, out, 12345, -1, 1, false, err, sizeof err) != 0 && strstr(err, "unsupported output file type"));
    CHECK(no_output(out));

    /* existing output without force: refused and untouched; with force: replaced */
    write_file(out, "keep", 4);
    uint64_t h = file_hash(out);
    CHECK(quantize(in, out, G4_FTYPE_MOSTLY_Q8_0, -1, 1, false, err, sizeof err) != 0);
    CHECKF(strstr(err, "already exists") && strstr(err, "err.gguf"), "%s", err);
    CHECK(file_hash(out) == h);
    CHECKF(quantize(in, out, G4_FTYPE_MOSTLY_Q8_0, -1, 1, true, err, sizeof err) == 0, "%s", err);
    gguf_file *f = open_ok(out);
    CHECK(f != NULL);
    gguf_close(f);
    unlink(out);

    /* output == input (same path, a symlink, a hard link), even with force */
    uint64_t hin = file_hash(in);
    CHECK(quantize(in, in, G4_FTYPE_MOSTLY_Q8_0, -1, 1, true, err, sizeof err) != 0 &&
          strstr(err, "is the input file"));
    const char *sl = tmp_path("link.gguf"), *hl = tmp_path("hard.gguf");
    CHECK(symlink(in, sl) == 0);
    CHECK(quantize(in, sl, G4_FTYPE_MOSTLY_Q8_0, -1, 1, true, err, sizeof err) != 0 &&
          strstr(err, "is the input file"));
    CHECK(link(in, hl) == 0);
    CHECK(quantize(in, hl, G4_FTYPE_MOSTLY_Q8_0, -1, 1, true, err, sizeof err) != 0 &&
          strstr(err, "is the input file"));
    CHECK(file_hash(in) == hin);
    unlink(sl);
    unlink(hl);

    /* OUT.tmp would be the input */
    const char *tin = tmp_path("x.gguf.tmp"), *tout = tmp_path("x.gguf");
    CHECK(link(in, tin) == 0);
    CHECK(quantize(tin, tout, G4_FTYPE_MOSTLY_Q8_0, -1, 1, true, err, sizeof err) != 0 &&
          strstr(err, "would be the input file"));
    CHECK(file_hash(tin) == hin && !exists(tout));
    unlink(tin);

    /* a stale OUT.tmp is replaced and removed */
    char stale[600];
    snprintf(stale, sizeof stale, "%s.tmp", out);
    write_file(stale, "junk", 4);
    CHECKF(quantize(in, out, G4_FTYPE_MOSTLY_Q4_0, -1, 1, false, err, sizeof err) == 0, "%s", err);
    CHECK(exists(out) && !exists(stale));
    unlink(out);

    /* output is a directory */
    const char *dir = tmp_path("adir");
    CHECK(mkdir(dir, 0755) == 0);
    CHECK(quantize(in, dir, G4_FTYPE_MOSTLY_Q8_0, -1, 1, true, err, sizeof err) != 0 && strstr(err, "directory"));
    rmdir(dir);

    /* output directory missing: the temporary file cannot be created */
    const char *deep = tmp_path("no/such/dir/out.gguf");
    CHECK(quantize(in, deep, G4_FTYPE_MOSTLY_Q8_0, -1, 1, false, err, sizeof err) != 0 &&
          strstr(err, "cannot create"));

    /* corrupt (truncated) input */
    FILE *fp = fopen(in, "rb");
    static uint8_t buf[200000];
    size_t n = fp ? fread(buf, 1, sizeof buf, fp) : 0;
    if (fp)
        fclose(fp);
    const char *bad = tmp_path("trunc.gguf");
    write_file(bad, buf, n);
    CHECK(quantize(bad, out, G4_FTYPE_MOSTLY_Q8_0, -1, 1, false, err, sizeof err) != 0);
    CHECKF(strstr(err, "trunc.gguf") != NULL, "%s", err);
    CHECK(no_output(out));
    /* not a GGUF at all */
    write_file(bad, "hello world, this is not a model", 32);
    CHECK(quantize(bad, out, G4_FTYPE_MOSTLY_Q8_0, -1, 1, false, err, sizeof err) != 0);
    CHECKF(strstr(err, "trunc.gguf") != NULL, "%s", err);
    CHECK(no_output(out));

    /* a tensor type with no dequantizer: refused, naming the tensor; copying it unchanged is fine */
    const char *iq = tmp_path("iq.gguf");
    gguf_writer *w = gguf_writer_new();
    gguf_w_str(w, "general.architecture", "gemma4");
    uint64_t ne[2] = { 256, 2 };
    CHECK(gguf_w_tensor(w, "blk.0.attn_q.weight", 16 /* iq2_xxs */, 2, ne, err, sizeof err) == 0);
    CHECK(gguf_w_begin(w, iq, err, sizeof err) == 0);
    static uint8_t zeros[2 * 66];
    CHECK(gguf_w_data(w, zeros, sizeof zeros, err, sizeof err) == 0);
    CHECK(gguf_w_end_tensor(w, err, sizeof err) == 0);
    CHECK(gguf_w_finish(w, err, sizeof err) == 0);
    gguf_writer_free(w);
    CHECK(quantize(iq, out, G4_FTYPE_MOSTLY_Q8_0, -1, 1, false, err, sizeof err) != 0);
    CHECKF(strstr(err, "blk.0.attn_q.weight") && strstr(err, "iq2_xxs"), "%s", err);
    CHECK(no_output(out));

    /* split files are refused */
    const char *sp = tmp_path("split.gguf");
    w = gguf_writer_new();
    gguf_w_u32(w, "split.count", 3);
    CHECK(gguf_w_begin(w, sp, err, sizeof err) == 0 && gguf_w_finish(w, err, sizeof err) == 0);
    gguf_writer_free(w);
    CHECK(quantize(sp, out, G4_FTYPE_MOSTLY_Q8_0, -1, 1, false, err, sizeof err) != 0 && strstr(err, "split"));
    CHECK(no_output(out));
}

static int run_cli(int argc, const char **argv)
{
    return cmd_quantize(argc, (char **)argv);
}

static void test_cli(const char *in)
{
    const char *out = tmp_path("cli.gguf");
    {
        const char *a[] = { "quantize", in, out, "q4_0", "-t", "2", NULL };
        CHECK(run_cli(6, a) == 0);
        gguf_file *f = open_ok(out);
        CHECK(f && gguf_find_tensor(f, "token_embd.weight")->type == G4_TYPE_Q6_K);
        gguf_close(f);
    }
    {   /* exists -> 1; --force -> 0 */
        const char *a[] = { "quantize", in, out, "q8_0", NULL };
        CHECK(run_cli(4, a) == 1);
        const char *b[] = { "quantize", "--force", in, out, "Q8_0", "--embd-type", "f16", NULL };
        CHECK(run_cli(7, b) == 0);
        gguf_file *f = open_ok(out);
        CHECK(f && gguf_find_tensor(f, "token_embd.weight")->type == G4_TYPE_F16 &&
              gguf_find_tensor(f, "blk.0.attn_q.weight")->type == G4_TYPE_Q8_0);
        gguf_close(f);
        unlink(out);
    }
    const char *e1[] = { "quantize", in, out, "q3_k", NULL };
    CHECK(run_cli(4, e1) == 2 && no_output(out));
    const char *e2[] = { "quantize", in, out, NULL };
    CHECK(run_cli(3, e2) == 2);
    const char *e3[] = { "quantize", in, out, "q8_0", "extra", NULL };
    CHECK(run_cli(5, e3) == 2);
    const char *e4[] = { "quantize", in, out, "q8_0", "-t", "0", NULL };
    CHECK(run_cli(6, e4) == 2);
    const char *e5[] = { "quantize", in, out, "q8_0", "--embd-type", "q4_k_m", NULL };
    CHECK(run_cli(6, e5) == 2);
    const char *e6[] = { "quantize", in, out, "q8_0", "--bogus", NULL };
    CHECK(run_cli(5, e6) == 2);
    const char *e7[] = { "quantize", in, out, "q8_0", "--embd-type", NULL };
    CHECK(run_cli(5, e7) == 2);
    const char *e8[] = { "quantize", tmp_path("missing.gguf"), out, "q8_0", NULL };
    CHECK(run_cli(4, e8) == 1 && no_output(out));
    const char *e9[] = { "quantize", in, in, "q8_0", "-f", NULL };
    CHECK(run_cli(5, e9) == 1);
    const char *h[] = { "quantize", "--help", NULL };
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    int rc = run_cli(2, h);
    fclose(stdout);
    stdout = saved;
    CHECK(rc == 0);
}

static void cleanup_dir(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", g_dir);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/g4-test-quantize-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_names();
    test_raw_writer();
    const char *in = make_model("tiny-f32-src.gguf", 0, 0, G4_TM_F32);
    test_all_types(in);
    test_round_trip();
    test_threads_and_progress(in);
    test_embd_type(in);
    test_fallback();
    test_errors(in);
    test_cli(in);
    cleanup_dir();
    return tu_finish("test_quantize");
}
