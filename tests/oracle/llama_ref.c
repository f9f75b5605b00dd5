/*
 * llama_ref - run llama.cpp (a prebuilt libllama) as the reference for
 * gemma4.c's fidelity tests.
 *
 * Design
 * ------
 * - Nothing of llama.cpp is linked or included.  libllama is dlopen()ed at run
 *   time from --lib DIR (or $G4_LLAMA_LIB); scripts/get-llama-oracle.sh
 *   installs the pinned build (npm package @node-llama-cpp/linux-x64@3.22.1,
 *   llama.cpp "v0.5.0", ggml 0.25.1) and prints that folder.  The program
 *   therefore builds with a bare C11 compiler and -ldl, and a machine without
 *   the library simply cannot run it (the fidelity test then says SKIP).
 * - The llama.h C API passes and returns its parameter structs BY VALUE, so
 *   the declarations below must match the library's layout byte for byte.
 *   They were written from that build's include/llama.h.  Before anything
 *   else the program verifies the match and stops with "ABI mismatch":
 *     * every default returned by llama_model_default_params() and
 *       llama_context_default_params() is compared with the value this build
 *       is known to return (n_ctx 512, n_batch 2048, n_ubatch 512, ...), so a
 *       field that moved or changed type shows up as a wrong value;
 *     * on x86-64 (System V) the two functions are additionally called with
 *       a caller-owned, pattern-filled return buffer (a struct returned in
 *       memory is written through a hidden pointer passed in %rdi), which
 *       measures how many bytes the library actually writes: a struct that
 *       grew or shrank at its end is caught even when all old defaults agree.
 *   The real calls go through wrappers with spare room after the struct so a
 *   bigger library struct can never write past our buffer before the check.
 * - The batch (struct llama_batch, also by value) is built from our own
 *   arrays; llama_batch_init/free are not used.
 * - llama.cpp's log (which also carries ggml's) is silenced unless -v; the
 *   last error lines are kept and printed if a call fails.
 * - Everything runs on the CPU: n_gpu_layers = 0, and ggml's CPU backend
 *   variants are loaded from the library folder (ggml picks the best one for
 *   the CPU).
 *
 * Modes
 *   logits (default)   decode --tokens/--tokens-file ids (or --embd rows) at
 *                      positions 0..n-1 of sequence 0, in chunks of --batch
 *                      tokens per llama_decode call or one token per call
 *                      (--step); write float32 logits of every position
 *                      (--all) or of the last one to -o FILE.
 *   --tokenize TEXT    print the token ids of TEXT (or --tokenize-file FILE)
 *                      as one comma-separated line; --no-add-special (alias
 *                      --no-bos) and --no-parse-special as in llama_tokenize.
 *   --embd FILE        input is FILE: n rows of n_embd_inp little-endian
 *                      float32, fed through llama_batch.embd instead of token
 *                      ids (the rows replace the token embedding lookup, so
 *                      for Gemma they are NOT multiplied by sqrt(n_embd)).
 *   --bench            speed, measured like llama-bench and like `gemma4
 *                      bench`: pp = -p N random ids (fixed seed, the same
 *                      generator and seed as gemma4 bench) decoded in --batch
 *                      chunks from an empty cache; tg = -n M random ids one
 *                      per llama_decode call from an empty cache; one warm-up
 *                      pass (a batch of pp, one tg step), then -r repetitions.
 *                      Prints one JSON object on stdout: load_s (model load,
 *                      incl. llama.cpp's weight repacking), ctx_s, pp and tg
 *                      {n_tokens, tps_mean, tps_sd, tps[]} (null when 0),
 *                      threads, batch, kv, reps, peak_rss_bytes (getrusage).
 *
 * Output file: raw little-endian float32, row-major [rows][n_vocab].
 * Exit status: 0 ok, 1 error (incl. ABI mismatch), 3 non-finite logits (the
 * file is still written).
 */
#include <dlfcn.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define PROG "llama-ref"
#define EXPECTED_VERSION "0.5.0" /* llama_version() of the pinned build */

/* ------------------------------------------------------------------------ */
/* Declarations of the llama.h ABI of the pinned build                        */

typedef int32_t lr_token;
typedef int32_t lr_pos;
typedef int32_t lr_seq_id;

struct lr_model;   /* struct llama_model   (opaque) */
struct lr_context; /* struct llama_context (opaque) */
struct lr_vocab;   /* struct llama_vocab   (opaque) */

/* ggml_type values (ggml.h) */
enum { LR_TYPE_F32 = 0, LR_TYPE_F16 = 1, LR_TYPE_Q8_0 = 8, LR_TYPE_BF16 = 30 };
/* ggml_log_level values */
enum { LR_LOG_ERROR = 4, LR_LOG_CONT = 5 };
/* llama_flash_attn_type */
enum { LR_FA_AUTO = -1, LR_FA_OFF = 0, LR_FA_ON = 1 };

/* struct llama_model_params */
struct lr_model_params {
    void **devices;
    const void *tensor_buft_overrides;
    int32_t n_gpu_layers;
    int32_t split_mode; /* enum llama_split_mode (1 = layer) */
    int32_t load_mode;  /* enum llama_load_mode (-1 = auto) */
    int32_t lazy_mode;  /* enum llama_lazy_mode (1 = auto) */
    int32_t main_gpu;
    const float *tensor_split;
    bool (*progress_callback)(float progress, void *user);
    void *progress_callback_user_data;
    const void *kv_overrides;
    bool vocab_only;
    bool check_tensors;
    bool use_extra_bufts;
    bool no_host;
    bool no_alloc;
    bool load_mtp;
};

/* struct llama_context_params */
struct lr_context_params {
    uint32_t n_ctx;
    uint32_t n_batch;
    uint32_t n_ubatch;
    uint32_t n_seq_max;
    uint32_t n_rs_seq;
    uint32_t n_outputs_max;
    uint32_t n_outputs_max_per_seq;
    int32_t n_threads;
    int32_t n_threads_batch;
    int32_t ctx_type;
    int32_t rope_scaling_type;
    int32_t pooling_type;
    int32_t attention_type;
    int32_t flash_attn_type;
    float rope_freq_base;
    float rope_freq_scale;
    float yarn_ext_factor;
    float yarn_attn_factor;
    float yarn_beta_fast;
    float yarn_beta_slow;
    uint32_t yarn_orig_ctx;
    float defrag_thold;
    bool (*cb_eval)(void *tensor, bool ask, void *user);
    void *cb_eval_user_data;
    int32_t type_k; /* enum ggml_type */
    int32_t type_v;
    bool (*abort_callback)(void *data);
    void *abort_callback_data;
    bool embeddings;
    bool offload_kqv;
    bool no_perf;
    bool op_offload;
    bool swa_full;
    bool kv_unified;
    void *samplers;
    size_t n_samplers;
    struct lr_context *ctx_other;
};

/* struct llama_batch */
struct lr_batch {
    int32_t n_tokens;
    lr_token *token;
    float *embd;
    lr_pos *pos;
    int32_t *n_seq_id;
    lr_seq_id **seq_id;
    int8_t *logits;
};

/* Sizes of this build's structs on LP64 targets (offsets worked out from
 * llama.h: 6 trailing bools end the model params at byte 78, padded to 80;
 * the context params end with ctx_other at byte 152..160). */
#define MP_SIZE 80
#define MP_END_MIN 78
#define CP_SIZE 160
#define CP_END_MIN 160
#if defined(__LP64__) || defined(_LP64)
_Static_assert(sizeof(struct lr_model_params) == MP_SIZE, "model params layout");
_Static_assert(sizeof(struct lr_context_params) == CP_SIZE, "context params layout");
_Static_assert(offsetof(struct lr_context_params, type_k) == 104, "context params layout");
_Static_assert(sizeof(struct lr_batch) == 56, "batch layout");
#endif

/* By-value wrappers with spare room, see the top comment. */
struct lr_mp_room { struct lr_model_params p; unsigned char spare[256]; };
struct lr_cp_room { struct lr_context_params p; unsigned char spare[256]; };

/* ------------------------------------------------------------------------ */
/* Errors and logging                                                          */

static int g_verbose;
static char g_lasterr[4096]; /* ERROR-level lines of llama.cpp's log (first 4 KiB) */

static _Noreturn void die(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (g_lasterr[0] && !g_verbose)
        fprintf(stderr, PROG ": llama.cpp said: %s%s", g_lasterr,
                g_lasterr[strlen(g_lasterr) - 1] == '\n' ? "" : "\n");
    exit(1);
}

static void log_cb(int level, const char *text, void *user) {
    static int cur = 0;
    (void)user;
    if (level != LR_LOG_CONT) cur = level;
    if (g_verbose) {
        fputs(text, stderr);
        return;
    }
    if (cur >= LR_LOG_ERROR) {
        size_t have = strlen(g_lasterr);
        snprintf(g_lasterr + have, sizeof g_lasterr - have, "%s", text);
    }
}

/* ------------------------------------------------------------------------ */
/* Binding the library                                                        */

static struct {
    void *h;
    const char *(*version)(void);
    void (*log_set)(void (*cb)(int, const char *, void *), void *user);
    void (*backend_init)(void);
    void (*backend_free)(void);
    void (*load_backends)(const char *dir); /* ggml_backend_load_all_from_path */
    struct lr_mp_room (*model_default_params)(void);
    struct lr_cp_room (*context_default_params)(void);
    struct lr_model *(*model_load)(const char *path, struct lr_mp_room p);
    void (*model_free)(struct lr_model *m);
    struct lr_context *(*init_from_model)(struct lr_model *m, struct lr_cp_room p);
    void (*free_ctx)(struct lr_context *c);
    const struct lr_vocab *(*model_get_vocab)(const struct lr_model *m);
    int32_t (*model_n_embd_inp)(const struct lr_model *m);
    int32_t (*vocab_n_tokens)(const struct lr_vocab *v);
    int32_t (*tokenize)(const struct lr_vocab *v, const char *text, int32_t len, lr_token *out,
                        int32_t n_max, bool add_special, bool parse_special);
    int32_t (*token_to_piece)(const struct lr_vocab *v, lr_token t, char *buf, int32_t len,
                              int32_t lstrip, bool special);
    int32_t (*decode)(struct lr_context *c, struct lr_batch b);
    float *(*get_logits_ith)(struct lr_context *c, int32_t i);
    void (*synchronize)(struct lr_context *c);
    void *(*get_memory)(struct lr_context *c);          /* --bench only */
    void (*memory_clear)(void *mem, bool data);         /* --bench only */
} L;

static void *need_sym(const char *name) {
    void *p = dlsym(L.h, name);
    if (!p) die("symbol %s not found in libllama: %s", name, dlerror());
    return p;
}

/* libllama.so, else the shortest libllama.*.so (libllama.v0.5.0.so), never
 * libllama-common.so */
static char *find_libllama(const char *dir) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/libllama.so", dir);
    if (access(path, R_OK) == 0) return path;
    char pat[4096];
    snprintf(pat, sizeof pat, "%s/libllama.*.so", dir);
    glob_t g;
    size_t best = (size_t)-1;
    if (glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            if (best == (size_t)-1 || strlen(g.gl_pathv[i]) < strlen(g.gl_pathv[best])) best = i;
        if (best != (size_t)-1) snprintf(path, sizeof path, "%s", g.gl_pathv[best]);
    }
    globfree(&g);
    if (best == (size_t)-1) die("no libllama.so or libllama.*.so in %s", dir);
    return path;
}

static void bind_library(const char *dir) {
    const char *path = find_libllama(dir);
    L.h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!L.h) die("cannot dlopen %s: %s", path, dlerror());
#define BIND(field, name) *(void **)(&L.field) = need_sym(name)
    BIND(version, "llama_version");
    BIND(log_set, "llama_log_set");
    BIND(backend_init, "llama_backend_init");
    BIND(backend_free, "llama_backend_free");
    BIND(load_backends, "ggml_backend_load_all_from_path");
    BIND(model_default_params, "llama_model_default_params");
    BIND(context_default_params, "llama_context_default_params");
    BIND(model_load, "llama_model_load_from_file");
    BIND(model_free, "llama_model_free");
    BIND(init_from_model, "llama_init_from_model");
    BIND(free_ctx, "llama_free");
    BIND(model_get_vocab, "llama_model_get_vocab");
    BIND(model_n_embd_inp, "llama_model_n_embd_inp");
    BIND(vocab_n_tokens, "llama_vocab_n_tokens");
    BIND(tokenize, "llama_tokenize");
    BIND(token_to_piece, "llama_token_to_piece");
    BIND(decode, "llama_decode");
    BIND(get_logits_ith, "llama_get_logits_ith");
    BIND(synchronize, "llama_synchronize");
#undef BIND
}

/* ------------------------------------------------------------------------ */
/* ABI check                                                                  */

#if defined(__x86_64__) && defined(__linux__)
#define HAVE_SRET_PROBE 1
/* How many bytes does a function "S f(void)" returning a struct in memory
 * write?  System V x86-64: the caller passes the result address as a hidden
 * first argument, so the function can be called as "void *f(void *out)" with
 * a buffer we fill ourselves.  Two fills with different patterns tell exactly
 * which bytes were stored.  Returns one past the last byte written. */
static size_t probe_written_extent(void *fn) {
    enum { N = 1024 };
    static unsigned char a[N], b[N];
    void *(*f)(void *);
    *(void **)(&f) = fn;
    memset(a, 0xA5, N);
    memset(b, 0x5A, N);
    f(a);
    f(b);
    size_t end = 0;
    for (size_t i = 0; i < N; i++)
        if (a[i] != 0xA5 || b[i] != 0x5A) end = i + 1;
    return end;
}
#endif

static void check_abi(void) {
    int bad = 0;
    const char *ver = L.version();
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, PROG ": ABI mismatch: expected %s\n", #cond);                          \
            bad = 1;                                                                               \
        }                                                                                          \
    } while (0)

#ifdef HAVE_SRET_PROBE
    size_t me = probe_written_extent(*(void **)(&L.model_default_params));
    size_t ce = probe_written_extent(*(void **)(&L.context_default_params));
    if (me < MP_END_MIN || me > MP_SIZE) {
        fprintf(stderr, PROG ": ABI mismatch: llama_model_params is %zu bytes here, expected %d\n",
                me, MP_SIZE);
        bad = 1;
    }
    if (ce < CP_END_MIN || ce > CP_SIZE) {
        fprintf(stderr, PROG ": ABI mismatch: llama_context_params is %zu bytes here, expected %d\n",
                ce, CP_SIZE);
        bad = 1;
    }
#endif
    struct lr_mp_room mr = L.model_default_params();
    struct lr_cp_room cr = L.context_default_params();
    const struct lr_model_params *m = &mr.p;
    const struct lr_context_params *c = &cr.p;

    EXPECT(m->devices == NULL && m->tensor_buft_overrides == NULL);
    EXPECT(m->n_gpu_layers == -1 && m->split_mode == 1);
    EXPECT(m->load_mode == -1 && m->lazy_mode == 1 && m->main_gpu == 0);
    EXPECT(m->tensor_split == NULL && m->progress_callback == NULL);
    EXPECT(m->progress_callback_user_data == NULL && m->kv_overrides == NULL);
    EXPECT(!m->vocab_only && !m->check_tensors && m->use_extra_bufts);
    EXPECT(!m->no_host && !m->no_alloc && !m->load_mtp);

    EXPECT(c->n_ctx == 512 && c->n_batch == 2048 && c->n_ubatch == 512);
    EXPECT(c->n_seq_max == 1 && c->n_rs_seq == 0);
    EXPECT(c->n_outputs_max == 0 && c->n_outputs_max_per_seq == 1);
    EXPECT(c->n_threads == 4 && c->n_threads_batch == 4);
    EXPECT(c->ctx_type == 0 && c->rope_scaling_type == -1 && c->pooling_type == -1);
    EXPECT(c->attention_type == -1 && c->flash_attn_type == LR_FA_AUTO);
    EXPECT(c->rope_freq_base == 0.0f && c->rope_freq_scale == 0.0f);
    EXPECT(c->yarn_ext_factor == -1.0f && c->yarn_attn_factor == -1.0f);
    EXPECT(c->yarn_beta_fast == -1.0f && c->yarn_beta_slow == -1.0f);
    EXPECT(c->yarn_orig_ctx == 0 && c->defrag_thold == -1.0f);
    EXPECT(c->cb_eval == NULL && c->cb_eval_user_data == NULL);
    EXPECT(c->type_k == LR_TYPE_F16 && c->type_v == LR_TYPE_F16);
    EXPECT(c->abort_callback == NULL && c->abort_callback_data == NULL);
    EXPECT(!c->embeddings && c->offload_kqv && c->no_perf && c->op_offload);
    EXPECT(c->swa_full && !c->kv_unified);
    EXPECT(c->samplers == NULL && c->n_samplers == 0 && c->ctx_other == NULL);
#undef EXPECT
    if (bad)
        die("ABI mismatch: this libllama (llama_version() = \"%s\") is not the build llama_ref.c "
            "was written for (node-llama-cpp 3.22.1, llama.cpp \"%s\"); refusing to run. "
            "Use scripts/get-llama-oracle.sh, or update the declarations and expected defaults "
            "in tests/oracle/llama_ref.c from that build's include/llama.h",
            ver ? ver : "?", EXPECTED_VERSION);
    if (g_verbose) {
        fprintf(stderr, PROG ": libllama %s, ABI check passed", ver ? ver : "?");
#ifdef HAVE_SRET_PROBE
        fprintf(stderr, " (params structs: %zu and %zu bytes written)", me, ce);
#endif
        fputc('\n', stderr);
    }
}

/* ------------------------------------------------------------------------ */
/* Input helpers                                                              */

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) die("out of memory");
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) {
            if (ferror(f)) die("cannot read %s: %s", path, strerror(errno));
            break;
        }
        cap *= 2;
        buf = realloc(buf, cap + 1);
        if (!buf) die("out of memory");
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* ids separated by commas and/or whitespace */
static int parse_ids(const char *s, const char *what, lr_token **out) {
    int n = 0, cap = 256;
    lr_token *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) die("out of memory");
    const char *p = s;
    for (;;) {
        while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX)
            die("%s: bad token id near \"%.20s\"", what, p);
        if (*end && *end != ',' && *end != ' ' && *end != '\t' && *end != '\n' && *end != '\r')
            die("%s: bad token id near \"%.20s\"", what, p);
        if (n == cap) {
            cap *= 2;
            ids = realloc(ids, (size_t)cap * sizeof *ids);
            if (!ids) die("out of memory");
        }
        ids[n++] = (lr_token)v;
        p = end;
    }
    *out = ids;
    return n;
}

static int parse_int(const char *s, const char *opt, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        die("%s: expected an integer in [%ld, %ld], got \"%s\"", opt, lo, hi, s);
    return (int)v;
}

static bool host_is_little_endian(void) {
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void swap4(void *p, size_t n) {
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++, b += 4) {
        unsigned char t = b[0];
        b[0] = b[3];
        b[3] = t;
        t = b[1];
        b[1] = b[2];
        b[2] = t;
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* Options                                                                    */

struct opts {
    const char *lib, *model, *out;
    const char *tokens, *tokens_file, *embd_file, *embd_prefix, *embd_suffix;
    const char *tok_text, *tok_file, *tok_jsonl;
    bool tokenize, add_special, parse_special, pieces;
    bool all, step, bench;
    int batch, ubatch, ctx, threads, fa, kv;
    int n_prompt, n_gen, reps; /* --bench */
};

static void usage(FILE *f) {
    fprintf(f,
        "usage: " PROG " -m MODEL.gguf [--lib DIR] INPUT [options]\n"
        "\n"
        "Runs llama.cpp (libllama, dlopen()ed from --lib DIR or $G4_LLAMA_LIB) on the CPU.\n"
        "\n"
        "input (logits mode):\n"
        "  --tokens IDS        token ids, separated by commas and/or whitespace\n"
        "  --tokens-file FILE  the same, read from FILE\n"
        "  --embd FILE         float32 rows (n x n_embd_inp) fed as input embeddings\n"
        "  --embd-prefix IDS   with --embd: token ids decoded before the rows\n"
        "  --embd-suffix IDS   with --embd: token ids decoded after the rows\n"
        "output:\n"
        "  -o FILE             write little-endian float32 logits [rows][n_vocab]\n"
        "  --all               logits of every position (default: the last one only)\n"
        "decoding:\n"
        "  --step              one token per llama_decode call (default: --batch chunks)\n"
        "  --batch N           tokens per llama_decode call and n_batch (default 512)\n"
        "  --ubatch N          n_ubatch (default: = --batch)\n"
        "  --ctx N             n_ctx (default: max(512, number of inputs))\n"
        "  --kv f32|f16|bf16|q8_0  KV cache type (default f16, llama.cpp's default)\n"
        "  --fa on|off|auto    flash attention (default auto, llama.cpp's default)\n"
        "  --threads N         threads (default: all online CPUs)\n"
        "bench mode (prints one JSON object):\n"
        "  --bench             pp/tg speed with random ids, like llama-bench (no input needed)\n"
        "  -p, --n-prompt N    prompt tokens, in --batch chunks (default 512; 0 = skip)\n"
        "  -n, --n-gen N       generated tokens, one per call (default 128; 0 = skip)\n"
        "  -r, --reps N        repetitions after one warm-up pass (default 3)\n"
        "tokenizer mode:\n"
        "  --tokenize TEXT     print the ids of TEXT on one line, comma-separated\n"
        "  --tokenize-file F   the same for the bytes of file F\n"
        "  --tokenize-jsonl F  F: one JSON string per line; one line of space-separated ids each\n"
        "  --no-add-special    do not add BOS/EOS (alias --no-bos)\n"
        "  --no-parse-special  treat <...> control-token text as plain text\n"
        "  --pieces            also print one \"id<TAB>piece\" line per token\n"
        "other:\n"
        "  -v                  show llama.cpp's log\n"
        "  -h, --help          this text\n"
        "\n"
        "Exit status: 0 ok, 1 error (incl. ABI mismatch), 3 non-finite logits.\n");
}

static void parse_args(int argc, char **argv, struct opts *o) {
    memset(o, 0, sizeof *o);
    o->add_special = o->parse_special = true;
    o->batch = 512;
    o->fa = LR_FA_AUTO;
    o->kv = LR_TYPE_F16;
    o->n_prompt = 512;
    o->n_gen = 128;
    o->reps = 3;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = ncpu > 0 ? (int)ncpu : 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define VAL() (i + 1 < argc ? argv[++i] : (die("%s needs a value", a), (char *)NULL))
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); exit(0); }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = VAL();
        else if (!strcmp(a, "--lib")) o->lib = VAL();
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) o->out = VAL();
        else if (!strcmp(a, "--tokens")) o->tokens = VAL();
        else if (!strcmp(a, "--tokens-file")) o->tokens_file = VAL();
        else if (!strcmp(a, "--embd")) o->embd_file = VAL();
        else if (!strcmp(a, "--embd-prefix")) o->embd_prefix = VAL();
        else if (!strcmp(a, "--embd-suffix")) o->embd_suffix = VAL();
        else if (!strcmp(a, "--tokenize")) { o->tokenize = true; o->tok_text = VAL(); }
        else if (!strcmp(a, "--tokenize-file")) { o->tokenize = true; o->tok_file = VAL(); }
        else if (!strcmp(a, "--tokenize-jsonl")) { o->tokenize = true; o->tok_jsonl = VAL(); }
        else if (!strcmp(a, "--no-add-special") || !strcmp(a, "--no-bos")) o->add_special = false;
        else if (!strcmp(a, "--no-parse-special")) o->parse_special = false;
        else if (!strcmp(a, "--pieces")) o->pieces = true;
        else if (!strcmp(a, "--all")) o->all = true;
        else if (!strcmp(a, "--step")) o->step = true;
        else if (!strcmp(a, "--bench")) o->bench = true;
        else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) o->n_prompt = parse_int(VAL(), a, 0, 1 << 20);
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) o->n_gen = parse_int(VAL(), a, 0, 1 << 20);
        else if (!strcmp(a, "-r") || !strcmp(a, "--reps")) o->reps = parse_int(VAL(), a, 1, 1000);
        else if (!strcmp(a, "--batch")) o->batch = parse_int(VAL(), a, 1, 1 << 20);
        else if (!strcmp(a, "--ubatch")) o->ubatch = parse_int(VAL(), a, 1, 1 << 20);
        else if (!strcmp(a, "--ctx")) o->ctx = parse_int(VAL(), a, 1, 1 << 24);
        else if (!strcmp(a, "--threads")) o->threads = parse_int(VAL(), a, 1, 4096);
        else if (!strcmp(a, "--kv")) {
            const char *v = VAL();
            if (!strcmp(v, "f32")) o->kv = LR_TYPE_F32;
            else if (!strcmp(v, "f16")) o->kv = LR_TYPE_F16;
            else if (!strcmp(v, "bf16")) o->kv = LR_TYPE_BF16;
            else if (!strcmp(v, "q8_0")) o->kv = LR_TYPE_Q8_0;
            else die("--kv: expected f32, f16, bf16 or q8_0, got \"%s\"", v);
        } else if (!strcmp(a, "--fa")) {
            const char *v = VAL();
            if (!strcmp(v, "on")) o->fa = LR_FA_ON;
            else if (!strcmp(v, "off")) o->fa = LR_FA_OFF;
            else if (!strcmp(v, "auto")) o->fa = LR_FA_AUTO;
            else die("--fa: expected on, off or auto, got \"%s\"", v);
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) g_verbose = 1;
        else {
            usage(stderr);
            die("unknown argument \"%s\"", a);
        }
#undef VAL
    }
    if (!o->ubatch) o->ubatch = o->batch;
    if (!o->model) { usage(stderr); die("no model: give -m MODEL.gguf"); }
    if (!o->lib) o->lib = getenv("G4_LLAMA_LIB");
    if (!o->lib || !*o->lib)
        die("no llama.cpp library folder: give --lib DIR or set G4_LLAMA_LIB "
            "(scripts/get-llama-oracle.sh installs it and prints the folder)");
    int inputs = (o->tokens != NULL) + (o->tokens_file != NULL) + (o->embd_file != NULL);
    if (o->bench) {
        if (o->tokenize || inputs || o->out) die("--bench takes no input, no -o and no --tokenize");
        if (!o->n_prompt && !o->n_gen) die("--bench: -p and -n are both 0, nothing to measure");
    } else if (o->tokenize) {
        if ((o->tok_text != NULL) + (o->tok_file != NULL) + (o->tok_jsonl != NULL) != 1)
            die("give only one of --tokenize, --tokenize-file and --tokenize-jsonl");
        if (inputs || o->out) die("--tokenize prints ids; it takes no other input or -o");
    } else if (inputs != 1) {
        die("give exactly one input: --tokens IDS, --tokens-file FILE or --embd FILE");
    }
    if ((o->embd_prefix || o->embd_suffix) && !o->embd_file) die("--embd-prefix/--embd-suffix need --embd");
}

/* ------------------------------------------------------------------------ */
/* Modes                                                                      */

static struct lr_model *load_model(const char *path, bool vocab_only) {
    struct lr_mp_room mp = L.model_default_params();
    mp.p.n_gpu_layers = 0; /* CPU only */
    mp.p.vocab_only = vocab_only;
    struct lr_model *m = L.model_load(path, mp);
    if (!m) die("cannot load model %s (run with -v for llama.cpp's log)", path);
    return m;
}

static void print_piece(const struct lr_vocab *v, lr_token t) {
    char buf[256];
    int32_t n = L.token_to_piece(v, t, buf, (int32_t)sizeof buf, 0, true);
    if (n < 0 || n > (int32_t)sizeof buf) {
        fputs("<?>", stdout);
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\\') fputs("\\\\", stdout);
        else if (ch == '\n') fputs("\\n", stdout);
        else if (ch == '\t') fputs("\\t", stdout);
        else if (ch < 0x20 || ch == 0x7f) printf("\\x%02x", ch);
        else putchar(ch);
    }
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

/* Decodes the JSON string s[0..n) (with its quotes, optional surrounding
 * blanks) into out (room for n bytes); returns the length or -1. */
static long json_string_decode(const char *s, size_t n, char *out) {
    size_t i = 0, o = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    while (n > i && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    if (n - i < 2 || s[i] != '"' || s[n - 1] != '"') return -1;
    i++; n--;
    while (i < n) {
        unsigned char c = (unsigned char)s[i++];
        if (c == '"' || c < 0x20) return -1;
        if (c != '\\') { out[o++] = (char)c; continue; }
        if (i >= n) return -1;
        c = (unsigned char)s[i++];
        switch (c) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            uint32_t cp = 0;
            for (int k = 0; k < 4; k++) {
                int h = i < n ? hexval(s[i++]) : -1;
                if (h < 0) return -1;
                cp = cp * 16 + (uint32_t)h;
            }
            if (cp >= 0xD800 && cp < 0xDC00) { /* needs a low surrogate */
                uint32_t lo = 0;
                if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u') return -1;
                i += 2;
                for (int k = 0; k < 4; k++) {
                    int h = hexval(s[i++]);
                    if (h < 0) return -1;
                    lo = lo * 16 + (uint32_t)h;
                }
                if (lo < 0xDC00 || lo > 0xDFFF) return -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                return -1;
            }
            o += put_utf8(out + o, cp); /* \uXXXX is 6 bytes of input, at most 4 of output */
            break;
        }
        default: return -1;
        }
    }
    return (long)o;
}

static int run_tokenize_jsonl(const struct opts *o) {
    struct lr_model *model = load_model(o->model, true);
    const struct lr_vocab *vocab = L.model_get_vocab(model);
    size_t len;
    char *all = read_all(o->tok_jsonl, &len);
    char *text = malloc(len + 1);
    int32_t cap = 1024;
    lr_token *ids = malloc((size_t)cap * sizeof *ids);
    if (!text || !ids) die("out of memory");
    size_t pos = 0;
    long lineno = 0;
    while (pos < len) {
        const char *nl = memchr(all + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - all) : len;
        lineno++;
        long tl = json_string_decode(all + pos, end - pos, text);
        if (tl < 0) die("%s: line %ld is not a JSON string this reader understands", o->tok_jsonl, lineno);
        if (tl > INT32_MAX / 2) die("text too long");
        int32_t n = L.tokenize(vocab, text, (int32_t)tl, ids, cap, o->add_special, o->parse_special);
        if (n < 0) {
            cap = -n;
            ids = realloc(ids, (size_t)cap * sizeof *ids);
            if (!ids) die("out of memory");
            n = L.tokenize(vocab, text, (int32_t)tl, ids, cap, o->add_special, o->parse_special);
        }
        if (n < 0) die("llama_tokenize failed (%d) on line %ld", n, lineno);
        for (int32_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
        pos = end + 1;
    }
    free(ids);
    free(text);
    free(all);
    L.model_free(model);
    return 0;
}

static int run_tokenize(const struct opts *o) {
    if (o->tok_jsonl) return run_tokenize_jsonl(o);
    struct lr_model *model = load_model(o->model, true);
    const struct lr_vocab *vocab = L.model_get_vocab(model);
    size_t len;
    char *text;
    if (o->tok_file) {
        text = read_all(o->tok_file, &len);
    } else {
        len = strlen(o->tok_text);
        text = malloc(len + 1);
        if (!text) die("out of memory");
        memcpy(text, o->tok_text, len + 1);
    }
    if (len > INT32_MAX / 2) die("text too long");
    int32_t cap = (int32_t)len + 8;
    lr_token *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) die("out of memory");
    int32_t n = L.tokenize(vocab, text, (int32_t)len, ids, cap, o->add_special, o->parse_special);
    if (n < 0) { /* -n = the number needed */
        cap = -n;
        ids = realloc(ids, (size_t)cap * sizeof *ids);
        if (!ids) die("out of memory");
        n = L.tokenize(vocab, text, (int32_t)len, ids, cap, o->add_special, o->parse_special);
    }
    if (n < 0) die("llama_tokenize failed (%d)", n);
    for (int32_t i = 0; i < n; i++) printf(i ? ",%d" : "%d", ids[i]);
    putchar('\n');
    if (o->pieces) {
        for (int32_t i = 0; i < n; i++) {
            printf("%d\t", ids[i]);
            print_piece(vocab, ids[i]);
            putchar('\n');
        }
    }
    free(ids);
    free(text);
    L.model_free(model);
    return 0;
}

static int run_logits(const struct opts *o) {
    struct lr_model *model = load_model(o->model, false);
    const struct lr_vocab *vocab = L.model_get_vocab(model);
    const int n_vocab = L.vocab_n_tokens(vocab);
    const int n_embd = L.model_n_embd_inp(model);
    if (n_vocab <= 0 || n_embd <= 0) die("model reports n_vocab %d, n_embd %d", n_vocab, n_embd);

    /* input: token ids, or embedding rows (with optional token ids before
     * and after them: segments 0, 1, 2) */
    lr_token *ids = NULL, *pre = NULL, *suf = NULL;
    float *embd = NULL;
    int n, n_pre = 0, n_suf = 0;
    if (o->embd_file) {
        size_t len;
        char *raw = read_all(o->embd_file, &len);
        size_t row = (size_t)n_embd * sizeof(float);
        if (len == 0 || len % row)
            die("%s: %zu bytes is not a whole number of rows of n_embd_inp = %d float32", o->embd_file,
                len, n_embd);
        if (len / row > INT32_MAX) die("%s: too many rows", o->embd_file);
        n = (int)(len / row);
        embd = (float *)(void *)raw; /* malloc'ed, so suitably aligned */
        if (!host_is_little_endian()) swap4(embd, (size_t)n * (size_t)n_embd);
        for (size_t i = 0; i < (size_t)n * (size_t)n_embd; i++)
            if (!isfinite(embd[i])) die("%s: non-finite value at float %zu", o->embd_file, i);
        if (o->embd_prefix) n_pre = parse_ids(o->embd_prefix, "--embd-prefix", &pre);
        if (o->embd_suffix) n_suf = parse_ids(o->embd_suffix, "--embd-suffix", &suf);
        for (int i = 0; i < n_pre; i++) if (pre[i] >= n_vocab) die("--embd-prefix: id %d >= n_vocab", pre[i]);
        for (int i = 0; i < n_suf; i++) if (suf[i] >= n_vocab) die("--embd-suffix: id %d >= n_vocab", suf[i]);
        if (n > INT32_MAX - n_pre - n_suf) die("too many inputs");
    } else {
        if (o->tokens) {
            n = parse_ids(o->tokens, "--tokens", &ids);
        } else {
            size_t len;
            char *s = read_all(o->tokens_file, &len);
            if (strlen(s) != len) die("%s: contains a NUL byte", o->tokens_file);
            n = parse_ids(s, o->tokens_file, &ids);
            free(s);
        }
        for (int i = 0; i < n; i++)
            if (ids[i] >= n_vocab) die("token id %d (position %d) is not below n_vocab %d", ids[i], i, n_vocab);
    }
    const int n_mid = n;
    n = n_pre + n_mid + n_suf;
    if (n == 0) die("no input tokens");

    int n_ctx = o->ctx ? o->ctx : (n < 512 ? 512 : n);
    if (n_ctx < n) die("--ctx %d is smaller than the %d inputs", n_ctx, n);

    struct lr_cp_room cp = L.context_default_params();
    cp.p.n_ctx = (uint32_t)n_ctx;
    cp.p.n_batch = (uint32_t)o->batch;
    cp.p.n_ubatch = (uint32_t)o->ubatch;
    cp.p.n_threads = o->threads;
    cp.p.n_threads_batch = o->threads;
    cp.p.flash_attn_type = o->fa;
    cp.p.type_k = o->kv;
    cp.p.type_v = o->kv;
    cp.p.no_perf = true;
    struct lr_context *ctx = L.init_from_model(model, cp);
    if (!ctx) die("llama_init_from_model failed (run with -v for llama.cpp's log)");

    /* our own batch arrays, sized for the largest chunk */
    const int chunk = o->step ? 1 : o->batch;
    const int cap = chunk < n ? chunk : n;
    struct lr_batch b;
    memset(&b, 0, sizeof b);
    lr_seq_id seq0 = 0;
    b.pos = malloc((size_t)cap * sizeof *b.pos);
    b.n_seq_id = malloc((size_t)cap * sizeof *b.n_seq_id);
    b.seq_id = malloc((size_t)cap * sizeof *b.seq_id);
    b.logits = malloc((size_t)cap);
    if (!b.pos || !b.n_seq_id || !b.seq_id || !b.logits) die("out of memory");
    for (int i = 0; i < cap; i++) {
        b.n_seq_id[i] = 1;
        b.seq_id[i] = &seq0;
    }

    const int n_rows = o->all ? n : 1;
    float *rows = malloc((size_t)n_rows * (size_t)n_vocab * sizeof(float));
    if (!rows) die("out of memory for %d x %d logits", n_rows, n_vocab);

    int r = 0, calls = 0;
    double t0 = now_s();
    /* Segments never share a llama_decode call: a batch is either ids or
     * embeddings. */
    const int seg_n[3] = { n_pre, n_mid, n_suf };
    int base = 0;
    for (int sg = 0; sg < 3; sg++) {
        for (int off = 0; off < seg_n[sg]; off += chunk) {
            int m = seg_n[sg] - off < chunk ? seg_n[sg] - off : chunk;
            int start = base + off;
            b.n_tokens = m;
            b.token = NULL;
            b.embd = NULL;
            if (sg == 0) b.token = pre + off;
            else if (sg == 2) b.token = suf + off;
            else if (ids) b.token = ids + off;
            else b.embd = embd + (size_t)off * (size_t)n_embd;
            for (int i = 0; i < m; i++) {
                b.pos[i] = start + i;
                b.logits[i] = (int8_t)(o->all || start + i == n - 1);
            }
            int32_t rc = L.decode(ctx, b);
            calls++;
            if (rc != 0) die("llama_decode returned %d at position %d", rc, start);
            for (int i = 0; i < m; i++) {
                if (!b.logits[i]) continue;
                const float *lg = L.get_logits_ith(ctx, i);
                if (!lg) die("no logits for position %d", start + i);
                memcpy(rows + (size_t)r * (size_t)n_vocab, lg, (size_t)n_vocab * sizeof(float));
                r++;
            }
        }
        base += seg_n[sg];
    }
    L.synchronize(ctx);
    double dt = now_s() - t0;
    if (r != n_rows) die("internal error: %d rows, expected %d", r, n_rows);

    size_t total = (size_t)n_rows * (size_t)n_vocab, n_bad = 0;
    for (size_t i = 0; i < total; i++)
        if (!isfinite(rows[i])) n_bad++;

    printf("n_inputs: %d (%s)\n", n, ids ? "token ids" : "embedding rows");
    printf("n_vocab: %d\n", n_vocab);
    printf("rows: %d (%s)\n", n_rows, o->all ? "every position" : "last position");
    printf("decode_calls: %d\n", calls);
    printf("non_finite: %zu\n", n_bad);
    printf("decode_s: %.4f\n", dt);
    if (o->out) {
        if (!host_is_little_endian()) swap4(rows, total);
        FILE *f = fopen(o->out, "wb");
        if (!f) die("cannot write %s: %s", o->out, strerror(errno));
        if (fwrite(rows, sizeof(float), total, f) != total || fclose(f) != 0)
            die("cannot write %s: %s", o->out, strerror(errno));
        printf("wrote: %s (%d x %d float32)\n", o->out, n_rows, n_vocab);
    }

    free(rows);
    free(b.pos);
    free(b.n_seq_id);
    free(b.seq_id);
    free(b.logits);
    free(ids);
    free(embd);
    free(pre);
    free(suf);
    L.free_ctx(ctx);
    L.model_free(model);
    return n_bad ? 3 : 0;
}

/* --bench: the same id stream as gemma4 bench (splitmix64, same seed) */
static uint64_t bench_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Decodes ids[0..n) from an empty cache, `step` per llama_decode call, only
 * the last token's logits requested; returns the seconds taken. */
static double bench_decode(struct lr_context *ctx, struct lr_batch *b, const lr_token *ids, int n, int step) {
    L.memory_clear(L.get_memory(ctx), true);
    double t0 = now_s();
    for (int start = 0; start < n; start += step) {
        int m = n - start < step ? n - start : step;
        b->n_tokens = m;
        b->token = (lr_token *)ids + start;
        for (int i = 0; i < m; i++) {
            b->pos[i] = start + i;
            b->logits[i] = (int8_t)(i == m - 1);
        }
        int32_t rc = L.decode(ctx, *b);
        if (rc != 0) die("llama_decode returned %d at position %d", rc, start);
    }
    L.synchronize(ctx);
    return now_s() - t0;
}

static void bench_json_test(const char *key, int n, const double *tps, int reps) {
    printf("  \"%s\": ", key);
    if (!n) {
        printf("null,\n");
        return;
    }
    double mean = 0, q = 0;
    for (int i = 0; i < reps; i++) mean += tps[i];
    mean /= reps;
    for (int i = 0; i < reps; i++) q += (tps[i] - mean) * (tps[i] - mean);
    printf("{\"n_tokens\": %d, \"tps_mean\": %.4f, \"tps_sd\": %.4f, \"tps\": [", n, mean,
           reps > 1 ? sqrt(q / (reps - 1)) : 0.0);
    for (int i = 0; i < reps; i++) printf("%s%.4f", i ? ", " : "", tps[i]);
    printf("]},\n");
}

static int run_bench(const struct opts *o) {
    *(void **)(&L.get_memory) = need_sym("llama_get_memory");
    *(void **)(&L.memory_clear) = need_sym("llama_memory_clear");
    double t0 = now_s();
    struct lr_model *model = load_model(o->model, false);
    double load_s = now_s() - t0;
    const int n_vocab = L.vocab_n_tokens(L.model_get_vocab(model));
    if (n_vocab <= 0) die("model reports n_vocab %d", n_vocab);

    const int n = o->n_prompt > o->n_gen ? o->n_prompt : o->n_gen;
    struct lr_cp_room cp = L.context_default_params();
    cp.p.n_ctx = (uint32_t)(o->ctx ? o->ctx : n);
    if ((int)cp.p.n_ctx < n) die("--ctx %d is smaller than %d tokens", o->ctx, n);
    cp.p.n_batch = (uint32_t)o->batch;
    cp.p.n_ubatch = (uint32_t)o->ubatch;
    cp.p.n_threads = o->threads;
    cp.p.n_threads_batch = o->threads;
    cp.p.flash_attn_type = o->fa;
    cp.p.type_k = o->kv;
    cp.p.type_v = o->kv;
    cp.p.no_perf = true;
    t0 = now_s();
    struct lr_context *ctx = L.init_from_model(model, cp);
    if (!ctx) die("llama_init_from_model failed (run with -v for llama.cpp's log)");
    double ctx_s = now_s() - t0;

    lr_token *ids = malloc((size_t)n * sizeof *ids);
    const int cap = o->batch < n ? o->batch : n;
    struct lr_batch b;
    memset(&b, 0, sizeof b);
    lr_seq_id seq0 = 0;
    b.pos = malloc((size_t)cap * sizeof *b.pos);
    b.n_seq_id = malloc((size_t)cap * sizeof *b.n_seq_id);
    b.seq_id = malloc((size_t)cap * sizeof *b.seq_id);
    b.logits = malloc((size_t)cap);
    double *pp = calloc((size_t)o->reps, sizeof *pp), *tg = calloc((size_t)o->reps, sizeof *tg);
    if (!ids || !b.pos || !b.n_seq_id || !b.seq_id || !b.logits || !pp || !tg) die("out of memory");
    for (int i = 0; i < cap; i++) {
        b.n_seq_id[i] = 1;
        b.seq_id[i] = &seq0;
    }
    uint64_t seed = 0x5EEDBE7CULL; /* = BENCH_SEED of src/cli/bench.c */
    for (int i = 0; i < n; i++) ids[i] = (lr_token)(bench_rand(&seed) % (uint64_t)n_vocab);

    if (o->n_prompt) bench_decode(ctx, &b, ids, o->n_prompt < o->batch ? o->n_prompt : o->batch, o->batch);
    if (o->n_gen) bench_decode(ctx, &b, ids, 1, 1);
    for (int r = 0; r < o->reps; r++) {
        if (o->n_prompt) {
            double dt = bench_decode(ctx, &b, ids, o->n_prompt, o->batch);
            pp[r] = o->n_prompt / (dt > 0 ? dt : 1e-9);
        }
        if (o->n_gen) {
            double dt = bench_decode(ctx, &b, ids, o->n_gen, 1);
            tg[r] = o->n_gen / (dt > 0 ? dt : 1e-9);
        }
    }
    struct rusage ru;
    uint64_t rss = getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_maxrss * 1024u : 0;
    const char *kv = o->kv == LR_TYPE_F32 ? "f32" : o->kv == LR_TYPE_F16 ? "f16" : o->kv == LR_TYPE_BF16 ? "bf16" : "q8_0";
    printf("{\n  \"engine\": \"llama.cpp %s\",\n  \"load_s\": %.6f,\n  \"ctx_s\": %.6f,\n", L.version(), load_s, ctx_s);
    printf("  \"threads\": %d,\n  \"batch\": %d,\n  \"kv\": \"%s\",\n  \"reps\": %d,\n", o->threads, o->batch, kv, o->reps);
    bench_json_test("pp", o->n_prompt, pp, o->reps);
    bench_json_test("tg", o->n_gen, tg, o->reps);
    printf("  \"peak_rss_bytes\": %llu\n}\n", (unsigned long long)rss);

    free(pp);
    free(tg);
    free(b.pos);
    free(b.n_seq_id);
    free(b.seq_id);
    free(b.logits);
    free(ids);
    L.free_ctx(ctx);
    L.model_free(model);
    return 0;
}

int main(int argc, char **argv) {
    struct opts o;
    parse_args(argc, argv, &o);
    bind_library(o.lib);
    L.log_set(log_cb, NULL); /* before anything can log */
    check_abi();
    L.load_backends(o.lib);
    L.backend_init();
    int rc = o.bench ? run_bench(&o) : o.tokenize ? run_tokenize(&o) : run_logits(&o);
    L.backend_free();
    return rc;
}
