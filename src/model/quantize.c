/*
 * quantize.c - GGUF -> GGUF weight type conversion (see quantize.h).
 *
 * Data path.  A tensor's data is a flat sequence of blocks: rows hold a
 * whole number of blocks of both the input and the output type and follow
 * each other without padding, and the reference quantizers work block by
 * block.  So a tensor is converted as a flat array of elements cut into
 * segments of SEG elements (a multiple of every supported block size, 1, 32
 * and 256): segment k of the input becomes exactly bytes of segment k of
 * the output, whatever the row length.  A batch of segments is converted in
 * parallel on the thread pool (each thread dequantizes one segment into its
 * own f32 scratch and quantizes it into the batch buffer), then written in
 * order.  Memory: the batch buffer plus two segment-sized scratch buffers
 * per thread, a few tens of MB whatever the model size.  Input pages already
 * converted are dropped from the process with MADV_DONTNEED (the mapping is
 * private, read-only and never written, so this only discards clean
 * page-cache references); otherwise streaming a 7 GB model would leave all
 * 7 GB counted in the resident set.
 */
#include "model/quantize.h"

#include "kernels/quant.h"
#include "kernels/threadpool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG          ((uint64_t)65536)  /* elements per work item (multiple of 256) */
#define COPY_CHUNK   ((uint64_t)16 << 20)
#define MAX_THREADS  256

/* ----------------------------------------------------------------- names */

typedef struct {
    const char *name;
    uint32_t    ftype;
    uint32_t    type;      /* default ggml type of the mix */
    bool        quantized; /* llama.cpp applies its per-tensor adjustments */
} mix_info;

static const mix_info k_mixes[] = {
    { "f32",    G4_FTYPE_ALL_F32,       G4_TYPE_F32,  false },
    { "f16",    G4_FTYPE_MOSTLY_F16,    G4_TYPE_F16,  false },
    { "bf16",   G4_FTYPE_MOSTLY_BF16,   G4_TYPE_BF16, false },
    { "q8_0",   G4_FTYPE_MOSTLY_Q8_0,   G4_TYPE_Q8_0, true  },
    { "q4_0",   G4_FTYPE_MOSTLY_Q4_0,   G4_TYPE_Q4_0, true  },
    { "q4_1",   G4_FTYPE_MOSTLY_Q4_1,   G4_TYPE_Q4_1, true  },
    { "q5_0",   G4_FTYPE_MOSTLY_Q5_0,   G4_TYPE_Q5_0, true  },
    { "q5_1",   G4_FTYPE_MOSTLY_Q5_1,   G4_TYPE_Q5_1, true  },
    { "q4_k_s", G4_FTYPE_MOSTLY_Q4_K_S, G4_TYPE_Q4_K, true  },
    { "q4_k_m", G4_FTYPE_MOSTLY_Q4_K_M, G4_TYPE_Q4_K, true  },
    { "q5_k_s", G4_FTYPE_MOSTLY_Q5_K_S, G4_TYPE_Q5_K, true  },
    { "q5_k_m", G4_FTYPE_MOSTLY_Q5_K_M, G4_TYPE_Q5_K, true  },
    { "q6_k",   G4_FTYPE_MOSTLY_Q6_K,   G4_TYPE_Q6_K, true  },
};
#define N_MIXES (sizeof k_mixes / sizeof k_mixes[0])

static const struct { const char *name; uint32_t type; } k_types[] = {
    { "f32", G4_TYPE_F32 },   { "f16", G4_TYPE_F16 },   { "bf16", G4_TYPE_BF16 },
    { "q8_0", G4_TYPE_Q8_0 }, { "q4_0", G4_TYPE_Q4_0 }, { "q4_1", G4_TYPE_Q4_1 },
    { "q5_0", G4_TYPE_Q5_0 }, { "q5_1", G4_TYPE_Q5_1 }, { "q4_k", G4_TYPE_Q4_K },
    { "q5_k", G4_TYPE_Q5_K }, { "q6_k", G4_TYPE_Q6_K },
};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

static const mix_info *find_mix(uint32_t ftype)
{
    for (size_t i = 0; i < N_MIXES; i++)
        if (k_mixes[i].ftype == ftype)
            return &k_mixes[i];
    return NULL;
}

static bool output_type_ok(uint32_t type)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (k_types[i].type == type)
            return true;
    return false;
}

void g4_quantize_default_params(g4_quantize_params *p)
{
    memset(p, 0, sizeof *p);
    p->ftype = G4_FTYPE_MOSTLY_Q4_K_M;
    p->embd_type = -1;
}

int g4_quantize_ftype_from_name(const char *s, uint32_t *ftype)
{
    if (!s)
        return -1;
    if (!strcasecmp(s, "q4_k")) { *ftype = G4_FTYPE_MOSTLY_Q4_K_M; return 0; }
    if (!strcasecmp(s, "q5_k")) { *ftype = G4_FTYPE_MOSTLY_Q5_K_M; return 0; }
    for (size_t i = 0; i < N_MIXES; i++) {
        if (!strcasecmp(s, k_mixes[i].name)) {
            *ftype = k_mixes[i].ftype;
            return 0;
        }
    }
    return -1;
}

const char *g4_quantize_ftype_name(uint32_t ftype)
{
    const mix_info *m = find_mix(ftype);
    return m ? m->name : NULL;
}

int g4_quantize_type_from_name(const char *s, uint32_t *type)
{
    if (!s)
        return -1;
    for (size_t i = 0; i < N_TYPES; i++) {
        if (!strcasecmp(s, k_types[i].name)) {
            *type = k_types[i].type;
            return 0;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------- errors */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void note(const g4_quantize_params *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(const g4_quantize_params *p, const char *fmt, ...)
{
    if (!p->note)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->note(p->note_user, msg);
}

static const char *tname(uint32_t type)
{
    const g4_type_traits *t = g4_type_get(type);
    return t ? t->name : "?";
}

/* ---------------------------------------------------------------- policy */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static bool has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* Dimensions up to the last one > 1 (ggml_n_dims): a [256, 1] tensor is 1-D. */
static uint32_t eff_dims(const gguf_tensor *t)
{
    uint32_t d = 1;
    for (uint32_t i = 0; i < GGUF_MAX_DIMS; i++)
        if (t->ne[i] > 1)
            d = i + 1;
    return d;
}

/* "blk.N." -> N, or -1. */
static int64_t layer_of(const char *name)
{
    if (strncmp(name, "blk.", 4) != 0)
        return -1;
    const char *c = name + 4;
    int64_t v = 0;
    if (*c < '0' || *c > '9')
        return -1;
    for (; *c >= '0' && *c <= '9'; c++) {
        v = v * 10 + (*c - '0');
        if (v > (int64_t)1 << 40)
            return -1;
    }
    return *c == '.' ? v : -1;
}

/* Tensors llama.cpp's quantizer leaves in their input type. */
static bool quantizable(const gguf_tensor *t)
{
    static const char *const never[] = {
        "_norm.weight", "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj",
        "ssm_conv1d.weight", "shortconv.conv.weight", "attn_rel_b.weight",
        "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight",
        "time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight",
        "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight",
        "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
        "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
    };
    const char *name = t->name;
    if (!ends_with(name, "weight") || eff_dims(t) < 2)
        return false;
    if (!strcmp(name, "position_embd.weight") || !strcmp(name, "token_types.weight"))
        return false;
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (has(name, never[i]))
            return false;
    return true;
}

static bool use_more_bits(int64_t i, int64_t n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

typedef struct {
    const mix_info *mix;
    bool     has_output;    /* a separate output.weight (else tied to token_embd) */
    int64_t  n_layer;
    int64_t  n_attention_wv;
    int64_t *wv_rank;       /* per tensor: rank among attn_v tensors in layer order */
    int64_t  i_ffn_down;    /* counter for ffn_down tensors without a layer number */
} plan_state;

/* llama.cpp's per-tensor adjustment of a quantized mix's default type. */
static uint32_t mix_adjust(plan_state *s, uint64_t idx, const gguf_tensor *t)
{
    const char *name = t->name;
    uint32_t ft = s->mix->ftype, ty = s->mix->type;
    if (!strcmp(name, "output.weight") || (!s->has_output && !strcmp(name, "token_embd.weight"))) {
        if (t->ne[0] % g4_type_get(ty)->blck != 0)
            return G4_TYPE_Q8_0;
        return ty == G4_TYPE_Q8_0 ? ty : G4_TYPE_Q6_K;
    }
    if (!strcmp(name, "token_embd.weight") || !strcmp(name, "per_layer_token_embd.weight"))
        return ty;
    if (has(name, "attn_v.weight")) {
        int64_t i = s->wv_rank[idx];
        if ((ft == G4_FTYPE_MOSTLY_Q4_K_M || ft == G4_FTYPE_MOSTLY_Q5_K_M) &&
            use_more_bits(i, s->n_attention_wv))
            return G4_TYPE_Q6_K;
        if (ft == G4_FTYPE_MOSTLY_Q4_K_S && i < 4)
            return G4_TYPE_Q5_K;
        return ty;
    }
    if (has(name, "ffn_down")) {
        int64_t i = layer_of(name);
        if (i < 0)
            i = s->i_ffn_down;
        s->i_ffn_down++;
        if ((ft == G4_FTYPE_MOSTLY_Q4_K_M || ft == G4_FTYPE_MOSTLY_Q5_K_M) && use_more_bits(i, s->n_layer))
            return G4_TYPE_Q6_K;
        if (ft == G4_FTYPE_MOSTLY_Q4_K_S && i < s->n_layer / 8)
            return G4_TYPE_Q5_K;
        return ty;
    }
    if (has(name, "attn_qkv.weight")) {
        if (ft == G4_FTYPE_MOSTLY_Q4_K_M) return G4_TYPE_Q5_K;
        if (ft == G4_FTYPE_MOSTLY_Q5_K_M) return G4_TYPE_Q6_K;
    }
    return ty;
}

/* Row-length fallback: llama.cpp's 32-block partner of a K-quant, else F16. */
static uint32_t fit_rows(const g4_quantize_params *p, const gguf_tensor *t, uint32_t ty)
{
    uint32_t blck = g4_type_get(ty)->blck;
    if (t->ne[0] % blck == 0)
        return ty;
    uint32_t fb;
    switch (ty) {
    case G4_TYPE_Q4_K: fb = G4_TYPE_Q5_0; break;
    case G4_TYPE_Q5_K: fb = G4_TYPE_Q5_1; break;
    case G4_TYPE_Q6_K: fb = G4_TYPE_Q8_0; break;
    default:           fb = G4_TYPE_F16;  break;
    }
    if (t->ne[0] % g4_type_get(fb)->blck != 0)
        fb = G4_TYPE_F16;
    note(p, "tensor '%s': row length %" PRIu64 " is not a multiple of the %s block size %" PRIu32
         "; using %s", t->name, t->ne[0], tname(ty), blck, tname(fb));
    return fb;
}

typedef struct { int64_t layer; const char *name; uint64_t idx; } wv_key;

static int wv_cmp(const void *a, const void *b)
{
    const wv_key *x = a, *y = b;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int64_t model_n_layer(const gguf_file *f)
{
    gguf_str arch;
    uint64_t v;
    if (gguf_get_str(f, "general.architecture", &arch) == 0 && arch.len > 0 && arch.len < 200) {
        char key[256];
        snprintf(key, sizeof key, "%.*s.block_count", (int)arch.len, arch.ptr);
        if (gguf_get_uint(f, key, &v) == 0)
            return v > UINT32_MAX ? (int64_t)UINT32_MAX : (int64_t)v;
    }
    /* no usable block_count: the highest layer number seen */
    int64_t n = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        int64_t l = layer_of(gguf_tensor_at(f, i)->name);
        if (l >= n)
            n = l + 1;
    }
    return n;
}

int g4_quantize_plan(const gguf_file *f, const g4_quantize_params *p, uint32_t *types,
                     char *err, size_t errlen)
{
    const mix_info *mix = find_mix(p->ftype);
    if (!mix) {
        set_err(err, errlen, "unsupported output file type %" PRIu32, p->ftype);
        return -1;
    }
    if (p->embd_type != -1 && (p->embd_type < 0 || p->embd_type > UINT32_MAX ||
                               !output_type_ok((uint32_t)p->embd_type))) {
        set_err(err, errlen, "unsupported token embedding type %" PRId64, p->embd_type);
        return -1;
    }

    uint64_t n = gguf_n_tensors(f);
    plan_state s = { .mix = mix, .has_output = gguf_find_tensor(f, "output.weight") != NULL,
                     .n_layer = model_n_layer(f) };
    s.wv_rank = calloc(n ? n : 1, sizeof *s.wv_rank);
    wv_key *keys = calloc(n ? n : 1, sizeof *keys);
    if (!s.wv_rank || !keys) {
        free(s.wv_rank);
        free(keys);
        set_err(err, errlen, "out of memory");
        return -1;
    }
    uint64_t n_wv = 0;
    for (uint64_t i = 0; i < n; i++) {
        const char *name = gguf_tensor_at(f, i)->name;
        if (has(name, "attn_v.weight"))
            keys[n_wv++] = (wv_key){ layer_of(name), name, i };
        if (has(name, "attn_v.weight") || has(name, "attn_qkv.weight") || has(name, "attn_kv_b.weight"))
            s.n_attention_wv++;
    }
    qsort(keys, (size_t)n_wv, sizeof *keys, wv_cmp);
    for (uint64_t k = 0; k < n_wv; k++)
        s.wv_rank[keys[k].idx] = (int64_t)k;
    free(keys);

    int rc = 0;
    for (uint64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        uint32_t ty;
        if (eff_dims(t) <= 1) {
            ty = G4_TYPE_F32;
        } else if (!quantizable(t)) {
            ty = t->type;
        } else {
            ty = mix->quantized ? mix_adjust(&s, i, t) : mix->type;
            if (p->embd_type >= 0 && !strcmp(t->name, "token_embd.weight"))
                ty = (uint32_t)p->embd_type;
            ty = fit_rows(p, t, ty);
        }
        if (ty != t->type) {
            const g4_type_traits *tr = g4_type_get(t->type);
            if (!tr || !tr->supported || t->type == G4_TYPE_Q8_1 || SEG % tr->blck != 0) {
                set_err(err, errlen, "tensor '%s' has type %s, which cannot be converted (no dequantizer"
                        " for it here); it would have to become %s", t->name,
                        tr ? tr->name : "?", tname(ty));
                rc = -1;
                break;
            }
        }
        types[i] = ty;
    }
    free(s.wv_rank);
    return rc;
}

/* ------------------------------------------------------------ conversion */

typedef struct {
    const uint8_t        *src;   /* tensor data */
    uint32_t              st, dt;
    const g4_type_traits *str, *dtr;
    uint64_t              e0;    /* first element of the batch */
    uint64_t              n_el;  /* elements in the batch */
    uint8_t              *dst;   /* batch output */
    float               **fbuf;  /* per thread: SEG floats */
    uint8_t             **ibuf;  /* per thread: SEG * 4 bytes (aligned input copy) */
} conv_job;

static void conv_item(void *arg, int64_t item, int tid)
{
    const conv_job *j = arg;
    uint64_t off = (uint64_t)item * SEG;
    uint64_t n = j->n_el - off < SEG ? j->n_el - off : SEG;
    uint64_t e = j->e0 + off;
    const uint8_t *s = j->src + e / j->str->blck * j->str->type_size;
    if ((uintptr_t)s % 16 != 0) {
        /* hostile alignment (general.alignment may be 1): the row kernels
         * read 16/32-bit fields, so give them an aligned copy */
        memcpy(j->ibuf[tid], s, (size_t)(n / j->str->blck * j->str->type_size));
        s = j->ibuf[tid];
    }
    uint8_t *d = j->dst + off / j->dtr->blck * j->dtr->type_size;
    if (j->dt == G4_TYPE_F32) {
        g4_dequantize_row(j->st, s, (float *)(void *)d, (int64_t)n);
        return;
    }
    g4_dequantize_row(j->st, s, j->fbuf[tid], (int64_t)n);
    g4_quantize_row(j->dt, j->fbuf[tid], d, (int64_t)n);
}

/* Drops already-converted input pages from the resident set. */
static void release(const void *from, const void *to)
{
    static long page;
    if (!page) {
        page = sysconf(_SC_PAGESIZE);
        if (page <= 0)
            page = 4096;
    }
    uintptr_t a = (uintptr_t)from & ~(uintptr_t)(page - 1);
    uintptr_t b = (uintptr_t)to & ~(uintptr_t)(page - 1);
    if (b > a)
        madvise((void *)a, (size_t)(b - a), MADV_DONTNEED);
}

static int path_stat(const char *path, struct stat *st, bool *exists, char *err, size_t errlen)
{
    if (stat(path, st) == 0) {
        *exists = true;
        return 0;
    }
    *exists = false;
    if (errno == ENOENT)
        return 0;
    set_err(err, errlen, "cannot access '%s': %s", path, strerror(errno));
    return -1;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Output path checks; removes a stale temporary file. */
static int check_paths(const g4_quantize_params *p, const char *in, const char *out, const char *tmp,
                       char *err, size_t errlen)
{
    struct stat si, so, st;
    bool ei, eo, et;
    if (path_stat(in, &si, &ei, err, errlen))
        return -1;
    if (!ei) {
        set_err(err, errlen, "cannot open '%s': %s", in, strerror(ENOENT));
        return -1;
    }
    if (path_stat(out, &so, &eo, err, errlen) || path_stat(tmp, &st, &et, err, errlen))
        return -1;
    if (eo && same_file(&si, &so)) {
        set_err(err, errlen, "output '%s' is the input file", out);
        return -1;
    }
    if (et && same_file(&si, &st)) {
        set_err(err, errlen, "the temporary output '%s' would be the input file", tmp);
        return -1;
    }
    if (eo && S_ISDIR(so.st_mode)) {
        set_err(err, errlen, "output '%s' is a directory", out);
        return -1;
    }
    if (eo && !p->force) {
        set_err(err, errlen, "output '%s' already exists (use --force to replace it)", out);
        return -1;
    }
    if (et) {
        if (!S_ISREG(st.st_mode)) {
            set_err(err, errlen, "temporary output '%s' exists and is not a regular file", tmp);
            return -1;
        }
        if (unlink(tmp) != 0) {
            set_err(err, errlen, "cannot remove stale '%s': %s", tmp, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static bool drop_key(const char *key)
{
    /* llama.cpp drops split metadata: the output is one file */
    return !strcmp(key, "split.no") || !strcmp(key, "split.count") ||
           !strcmp(key, "split.tensors.count");
}

int g4_quantize_file(const g4_quantize_params *p, const char *in, const char *out,
                     char *err, size_t errlen)
{
    if (!p || !in || !out || !*in || !*out) {
        set_err(err, errlen, "input and output paths are required");
        return -1;
    }
    const mix_info *mix = find_mix(p->ftype);
    if (!mix) {
        set_err(err, errlen, "unsupported output file type %" PRIu32, p->ftype);
        return -1;
    }
    size_t olen = strlen(out);
    char *tmp = malloc(olen + 5);
    if (!tmp) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    memcpy(tmp, out, olen);
    memcpy(tmp + olen, ".tmp", 5);

    int rc = -1;
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    g4_pool *pool = NULL;
    uint32_t *types = NULL;
    uint8_t *dst = NULL;
    float **fbuf = NULL;
    uint8_t **ibuf = NULL;
    int nt = 0;
    bool finished = false;

    if (gguf_open(in, &f, err, errlen))
        goto done;
    if (check_paths(p, in, out, tmp, err, errlen))
        goto done;
    {
        uint64_t split = 0;
        if (gguf_get_uint(f, "split.count", &split) == 0 && split > 1) {
            set_err(err, errlen, "'%s' is part 1 of a %" PRIu64 "-part split model; merge the parts first",
                    in, split);
            goto done;
        }
    }

    uint64_t n = gguf_n_tensors(f);
    types = calloc(n ? n : 1, sizeof *types);
    if (!types) {
        set_err(err, errlen, "out of memory");
        goto done;
    }
    if (g4_quantize_plan(f, p, types, err, errlen))
        goto done;

    w = gguf_writer_new();
    if (!w) {
        set_err(err, errlen, "out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        if (!drop_key(kv->key))
            gguf_w_raw(w, kv->key, kv->type, kv->arr_type, kv->n, kv->data);
    }
    gguf_w_u32(w, "general.file_type", mix->ftype);
    if (mix->quantized)
        gguf_w_u32(w, "general.quantization_version", 2);

    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (gguf_w_tensor(w, t->name, types[i], t->n_dims, t->ne, err, errlen))
            goto done;
        total += t->nbytes;
    }
    if (gguf_w_begin(w, tmp, err, errlen))
        goto done;

    nt = p->n_threads > 0 ? p->n_threads : g4_cpu_cores();
    if (nt > MAX_THREADS)
        nt = MAX_THREADS;
    pool = g4_pool_new(nt);
    if (!pool) {
        set_err(err, errlen, "cannot start %d threads", nt);
        goto done;
    }
    nt = g4_pool_size(pool);
    uint64_t items = (uint64_t)nt * 2 < 16 ? 16 : (uint64_t)nt * 2;
    const uint64_t batch_el = items * SEG;
    dst = malloc((size_t)(batch_el * 4));
    fbuf = calloc((size_t)nt, sizeof *fbuf);
    ibuf = calloc((size_t)nt, sizeof *ibuf);
    if (!dst || !fbuf || !ibuf) {
        set_err(err, errlen, "out of memory");
        goto done;
    }
    for (int i = 0; i < nt; i++) {
        fbuf[i] = malloc((size_t)SEG * sizeof(float));
        ibuf[i] = malloc((size_t)SEG * 4);
        if (!fbuf[i] || !ibuf[i]) {
            set_err(err, errlen, "out of memory");
            goto done;
        }
    }
    madvise((void *)(uintptr_t)gguf_base(f), (size_t)gguf_file_size(f), MADV_SEQUENTIAL);

    uint64_t done_bytes = 0;
    for (uint64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const uint8_t *src = t->data;
        if (p->progress)
            p->progress(p->progress_user, done_bytes, total, i, n, t->name, types[i]);
        if (types[i] == t->type) {
            for (uint64_t off = 0; off < t->nbytes; off += COPY_CHUNK) {
                uint64_t k = t->nbytes - off < COPY_CHUNK ? t->nbytes - off : COPY_CHUNK;
                if (gguf_w_data(w, src + off, (size_t)k, err, errlen))
                    goto done;
                release(src + off, src + off + k);
                done_bytes += k;
                if (p->progress && off + k < t->nbytes)
                    p->progress(p->progress_user, done_bytes, total, i, n, t->name, types[i]);
            }
        } else {
            conv_job j = { .src = src, .st = t->type, .dt = types[i], .str = g4_type_get(t->type),
                           .dtr = g4_type_get(types[i]), .dst = dst, .fbuf = fbuf, .ibuf = ibuf };
            for (uint64_t e0 = 0; e0 < t->n_elements; e0 += batch_el) {
                j.e0 = e0;
                j.n_el = t->n_elements - e0 < batch_el ? t->n_elements - e0 : batch_el;
                g4_pool_run(pool, (int64_t)((j.n_el + SEG - 1) / SEG), conv_item, &j);
                size_t ob = (size_t)(j.n_el / j.dtr->blck * j.dtr->type_size);
                if (gguf_w_data(w, dst, ob, err, errlen))
                    goto done;
                uint64_t ib = j.n_el / j.str->blck * j.str->type_size;
                const uint8_t *s0 = src + e0 / j.str->blck * j.str->type_size;
                release(s0, s0 + ib);
                done_bytes += ib;
                if (p->progress && e0 + j.n_el < t->n_elements)
                    p->progress(p->progress_user, done_bytes, total, i, n, t->name, types[i]);
            }
        }
        if (gguf_w_end_tensor(w, err, errlen))
            goto done;
    }
    if (gguf_w_finish(w, err, errlen))
        goto done;
    finished = true;
    if (p->progress)
        p->progress(p->progress_user, total, total, n, n, "", G4_TYPE_F32);

    /* durable before it replaces anything */
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        set_err(err, errlen, "cannot sync '%s': %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto done;
    }
    close(fd);
    if (rename(tmp, out) != 0) {
        set_err(err, errlen, "cannot rename '%s' to '%s': %s", tmp, out, strerror(errno));
        goto done;
    }
    rc = 0;

done:
    if (rc != 0 && finished)
        unlink(tmp);
    gguf_writer_free(w); /* removes an unfinished temporary file */
    if (fbuf)
        for (int i = 0; i < nt; i++)
            free(fbuf[i]);
    if (ibuf)
        for (int i = 0; i < nt; i++)
            free(ibuf[i]);
    free(fbuf);
    free(ibuf);
    free(dst);
    g4_pool_free(pool);
    free(types);
    gguf_close(f);
    free(tmp);
    return rc;
}
