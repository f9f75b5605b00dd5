/*
 * gemma4.h - public C API of gemma4.c, a CPU engine for Google's Gemma 4
 * (12B "Unified" and 31B dense decoders) reading llama.cpp-style GGUF files.
 *
 * Conventions (whisper.cpp style):
 *  - opaque handles; parameters in structs obtained from *_default_params()
 *    so that new fields never break callers;
 *  - every call that can fail returns an enum g4_status and, when `err` is
 *    not NULL, writes a one-line NUL-terminated message into err[errlen];
 *  - the library never prints and never exits.
 */
#ifndef GEMMA4_H
#define GEMMA4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GEMMA4_VERSION "0.1.0"

typedef enum {
    G4_OK = 0,
    G4_ERR_IO = 1,          /* cannot open/read/map a file */
    G4_ERR_FORMAT = 2,      /* malformed or hostile file */
    G4_ERR_UNSUPPORTED = 3, /* valid file, feature not implemented */
    G4_ERR_INVALID = 4,     /* bad argument (token id, position, size) */
    G4_ERR_NOMEM = 5,
    G4_ERR_CONTEXT_FULL = 6, /* batch does not fit in n_ctx */
    G4_ERR_ABORTED = 7       /* the abort callback asked to stop */
} g4_status;

typedef struct g4_model g4_model;
typedef struct g4_context g4_context;

typedef enum { G4_KV_F32 = 0, G4_KV_F16 = 1 } g4_kv_type;

typedef struct {
    bool use_mmap;     /* map the file (default true); false reads it into memory */
    int  n_threads;    /* worker threads for compute; 0 = one per physical core */
} g4_model_params;

typedef struct {
    uint32_t   n_ctx;    /* positions the context can hold; 0 = min(model's, 4096) */
    uint32_t   n_batch;  /* max tokens per forward pass (prompt chunking); default 512 */
    g4_kv_type kv_type;  /* KV cache storage; default F16 */
    int        n_threads;/* 0 = the model's */
    /* false (default): before each matrix product the activations are
     *   rounded to the weight type's dot-product format (8-bit blocks for
     *   quantized weights, f16/bf16 for half weights), exactly as llama.cpp
     *   does; integer dot products.
     * true: activations stay f32 and weights are dequantized on the fly:
     *   the model's math without activation rounding (slower). */
    bool       f32_activations;
    /* How far back g4_kv_truncate can go: sliding-window layers keep
     * window + max(n_batch, n_rewind) positions (a prompt cache that reuses
     * a prefix ending r positions before the cached end needs r <= that
     * extra).  0 (default) = n_batch.  Costs KV memory on sliding layers. */
    uint32_t   n_rewind;
} g4_context_params;

g4_model_params   g4_model_default_params(void);
g4_context_params g4_context_default_params(void);

g4_status g4_model_load(const char *path, const g4_model_params *params,
                        g4_model **out, char *err, size_t errlen);
void      g4_model_free(g4_model *model);

/* Hyperparameters of a loaded model. */
typedef struct {
    char     arch[32];
    char     name[128];
    uint32_t n_vocab, n_embd, n_layer, n_head, n_ff;
    uint32_t n_ctx_train, sliding_window;
    uint32_t head_dim_swa, head_dim_global;
    uint32_t n_rot_swa, n_rot_global;
    float    rope_base_swa, rope_base_global;
    float    rms_eps, final_logit_softcap;
    uint64_t n_params, weight_bytes;
} g4_model_info;

void     g4_model_get_info(const g4_model *model, g4_model_info *out);
/* Per layer: true for a sliding-window layer, and its KV-head count. */
bool     g4_model_layer_is_sliding(const g4_model *model, uint32_t layer);
uint32_t g4_model_layer_n_kv_head(const g4_model *model, uint32_t layer);
/* Bytes of KV cache a context of n_ctx positions needs (sliding layers are
 * capped at their window). */
uint64_t g4_model_kv_bytes(const g4_model *model, uint32_t n_ctx, g4_kv_type kv_type);

/* The tensors of the loaded file, in file order (for `gemma4 info`). */
typedef struct {
    const char *name;       /* valid while the model is loaded */
    const char *type_name;  /* ggml's name: "f32", "q4_0", "q6_K", ... */
    uint32_t    type;       /* ggml type id */
    uint32_t    n_dims;
    uint64_t    ne[4];
    uint64_t    n_elements, nbytes;
} g4_tensor_info;

uint64_t g4_model_n_tensors(const g4_model *model);
bool     g4_model_tensor_info(const g4_model *model, uint64_t i, g4_tensor_info *out);

g4_status g4_context_new(g4_model *model, const g4_context_params *params,
                         g4_context **out, char *err, size_t errlen);
void      g4_context_free(g4_context *ctx);
uint32_t  g4_context_n_ctx(const g4_context *ctx);
/* Number of positions currently in the KV cache (the next token's position). */
uint32_t  g4_context_n_past(const g4_context *ctx);

/* Run the decoder over n tokens that continue the sequence at position
 * n_past.  Batches larger than n_batch are split internally.  When want_all
 * is true, logits of every token are kept (g4_get_logits_ith); otherwise only
 * those of the last token. */
g4_status g4_decode(g4_context *ctx, const int32_t *tokens, uint32_t n,
                    bool want_all, char *err, size_t errlen);

/* Logits (n_vocab floats) of token i of the last g4_decode call; i = -1 is
 * the last one.  NULL when i is out of range or not kept. */
const float *g4_get_logits_ith(const g4_context *ctx, int32_t i);
const float *g4_get_logits(const g4_context *ctx);        /* = ith(-1) */
/* Final hidden state (n_embd floats, after output_norm) of the last token. */
const float *g4_get_hidden(const g4_context *ctx);

/* Forget every position >= pos (pos <= n_past).  Sliding layers can only go
 * back inside their window; a truncation further back than the window's
 * reach clears the cache and returns G4_ERR_INVALID. */
g4_status g4_kv_truncate(g4_context *ctx, uint32_t pos, char *err, size_t errlen);
void      g4_kv_clear(g4_context *ctx);

/* Cancellation: g4_decode and g4_decode_embd call cb before each layer
 * (g4_decode_multi, one short step, does not); when it returns true the call stops with G4_ERR_ABORTED
 * and the positions of the interrupted batch are dropped from the cache
 * (n_past is what it was before that batch; earlier batches of the same
 * call stay).  cb == NULL removes it.  cb runs on the calling thread. */
typedef bool (*g4_abort_cb)(void *user);
void      g4_context_set_abort(g4_context *ctx, g4_abort_cb cb, void *user);

/* ---- media: soft tokens into the decoder ---- */
/* How a run of injected rows attends (shared/spec/gemma4-multimodal.md §4.5). */
typedef enum {
    G4_EMBD_CAUSAL = 0, /* audio: causal like text */
    G4_EMBD_IMAGE = 1   /* an image: one block whose rows see each other in both
                           directions on sliding-window layers (within the
                           window), causal on global layers; the whole block
                           must fit in one pass: n <= n_batch */
} g4_embd_kind;

/* Run n soft-token rows (n x n_embd floats, row-major, used as they are:
 * NOT multiplied by sqrt(n_embd) like token embeddings) at positions
 * n_past..n_past+n-1.  want_all as in g4_decode.  Non-finite values are
 * refused (G4_ERR_INVALID). */
g4_status g4_decode_embd(g4_context *ctx, const float *rows, uint32_t n, g4_embd_kind kind,
                         bool want_all, char *err, size_t errlen);

/* One decode step for several sequences at once (continuous batching):
 * token i continues ctxs[i] (distinct contexts of the same model, each with
 * room for one more position).  Every weight matrix is read once for all
 * of them; each context's logits are then g4_get_logits(ctxs[i]).  Results
 * are bit-identical to n separate g4_decode calls.  n <= the smallest
 * n_batch of the contexts. */
g4_status g4_decode_multi(g4_context **ctxs, const int32_t *tokens, uint32_t n,
                          char *err, size_t errlen);

const char *g4_status_str(g4_status s);

/* ---- text: tokenizer ---- */
/* Gemma 4 tokenizer built at g4_model_load from the file's metadata
 * (tokenizer.ggml.model "gemma4"); see docs/tokenizer.md.  Models without
 * tokenizer metadata, or with another tokenizer model ("llama" =
 * SentencePiece files such as Gemma 3), still load: these calls then fail
 * with G4_ERR_UNSUPPORTED and a message saying why. */

/* text[0..len) -> token ids, identical to llama.cpp's llama_tokenize.
 * add_bos: start with exactly one BOS (not added when the text itself
 *   begins with the BOS token, so never two).
 * parse_special: CONTROL tokens written in the text ("<|turn>", "<bos>")
 *   become their ids; USER_DEFINED ones ("<|channel>", "<|"|>") always do.
 * Writes min(needed, cap) ids to out and the needed count to *n_out;
 * needed <= len + 1.  cap < needed returns G4_ERR_INVALID with *n_out set
 * (out may be NULL when cap is 0).  Invalid UTF-8 returns G4_ERR_INVALID
 * naming the byte offset. */
g4_status g4_tokenize(const g4_model *model, const char *text, size_t len,
                      bool add_bos, bool parse_special, int32_t *out, size_t cap,
                      size_t *n_out, char *err, size_t errlen);

/* Vocabulary string of a token exactly as stored (spaces as U+2581, byte
 * tokens as "<0xHH>"); NULL for a bad id or no tokenizer.  Valid while the
 * model is loaded. */
const char *g4_token_text(const g4_model *model, int32_t token);
/* The bytes a token stands for: U+2581 -> ' ', <0xHH> -> that byte,
 * CONTROL/UNKNOWN tokens -> "" unless special (then their text);
 * USER_DEFINED -> their text.  Returns the length (may exceed cap: then
 * nothing is written; a cap of g4_token_max_bytes() always suffices), or
 * -1 for a bad id / no tokenizer. */
int64_t g4_token_piece(const g4_model *model, int32_t token, bool special,
                       char *buf, size_t cap);
size_t  g4_token_max_bytes(const g4_model *model);

uint32_t g4_vocab_size(const g4_model *model);   /* 0 without tokenizer */
int32_t  g4_token_bos(const g4_model *model);    /* -1 without tokenizer */
int32_t  g4_token_eos(const g4_model *model);
/* End of generation: eos, "<turn|>" (106) and "<|tool_response>" (50). */
bool     g4_token_is_eog(const g4_model *model, int32_t token);

/* Streaming detokenizer: push ids one at a time, get UTF-8 text.  Output is
 * always valid UTF-8: an incomplete sequence (e.g. from <0xHH> byte tokens)
 * is held back until it completes; bytes that cannot start or continue a
 * valid sequence become U+FFFD.  special: render CONTROL tokens as their
 * text (else they produce nothing).  NULL without a usable tokenizer. */
typedef struct g4_detok g4_detok;
g4_detok *g4_detok_new(const g4_model *model, bool special);
/* Appends the text for `token` to buf; *n = bytes written.  A cap of
 * g4_token_max_bytes() + 8 always suffices; a smaller cap that does not
 * fit returns G4_ERR_INVALID with *n = bytes needed and the state
 * unchanged.  Bad id: G4_ERR_INVALID. */
g4_status g4_detok_push(g4_detok *d, int32_t token, char *buf, size_t cap, size_t *n);
/* End of stream: held-back bytes of an incomplete sequence -> U+FFFD
 * (at most 3 bytes written; cap >= 3). */
g4_status g4_detok_flush(g4_detok *d, char *buf, size_t cap, size_t *n);
void      g4_detok_free(g4_detok *d);

/* ---- text: chat template ---- */
/* Renders an OpenAI-style conversation into the Gemma 4 prompt text, byte for
 * byte as Google's official large-model template (12B/26B/31B) does; no model
 * needed.  messages_json: a JSON array of messages (roles system, developer,
 * user, assistant, tool), or an object with a "messages" array (and "tools",
 * used when tools_json is NULL).  tools_json: a JSON array of OpenAI function
 * tools, or NULL.  *out: malloc'd NUL-terminated text starting with "<bos>".
 * Errors: G4_ERR_FORMAT (not JSON), G4_ERR_INVALID (wrong shape), with one
 * line naming the message index and field.  docs/chat-template.md. */
typedef struct {
    bool enable_thinking;       /* <|think|> in the system turn; default false */
    bool add_generation_prompt; /* open the model turn at the end; default true */
    bool preserve_thinking;     /* keep reasoning of tool-call turns before the
                                   last user message too; default false */
} g4_chat_params;

g4_chat_params g4_chat_default_params(void);
g4_status      g4_chat_render(const char *messages_json, const char *tools_json,
                              const g4_chat_params *p, char **out, char *err, size_t errlen);

/* Google's recommended speech prompt for Gemma 4 audio (the user-turn text
 * that follows the audio): transcription into `language`, or, when
 * translate_to is not NULL, transcription then translation.  language NULL
 * or "" = "the original language".  malloc'd; NULL when out of memory or a
 * name is longer than 64 bytes or holds a control character. */
char *g4_transcription_prompt(const char *language, const char *translate_to);
/* Longest audio a transcription prompt carries (design maximum, spec §3.4). */
#define G4_AUDIO_CHUNK_SECONDS 30

/* ---- text: sampler ---- */
/* A sampler turns one row of logits into a token through a fixed chain:
 * logit bias -> suppressed tokens (-inf) -> repetition / presence /
 * frequency penalties over the last penalty_last_n accepted tokens ->
 * (temperature == 0: argmax) -> top-k -> softmax with temperature ->
 * top-p -> min-p -> draw with the seeded generator.  Same seed, same
 * logits, same accepted history => same token. */
typedef struct {
    float    temperature;       /* 0 = greedy; default 1.0 (the checkpoint's) */
    int32_t  top_k;             /* <= 0 = off; default 64 */
    float    top_p;             /* >= 1 = off; default 0.95 */
    float    min_p;             /* <= 0 = off; default 0 */
    float    repeat_penalty;    /* 1 = off (llama.cpp's divide/multiply rule) */
    float    presence_penalty;  /* 0 = off (OpenAI semantics) */
    float    frequency_penalty; /* 0 = off (OpenAI semantics) */
    int32_t  penalty_last_n;    /* history the penalties look at; default 64 */
    uint64_t seed;              /* default 0xC0FFEE; same seed => same draws */
    const int32_t *bias_tokens; /* logit bias: n_bias (token, value) pairs; */
    const float   *bias_values; /* copied by g4_sampler_new */
    size_t         n_bias;
} g4_sampler_params;

typedef struct g4_sampler g4_sampler;
g4_sampler_params g4_sampler_default_params(void);
/* model: for the vocabulary size and tokenizer.ggml.suppress_tokens. */
g4_status g4_sampler_new(const g4_model *model, const g4_sampler_params *p,
                         g4_sampler **out, char *err, size_t errlen);
/* Picks a token from n_vocab logits (not modified).  Does not record it:
 * call g4_sampler_accept with the token actually used.  Returns -1 only
 * when no token is possible (every logit -inf/NaN after bias and
 * suppression).  g4_sampler_new fails (G4_ERR_INVALID, message naming the
 * field) on: temperature NaN/inf/< 0, top_p NaN/< 0, min_p NaN/> 1,
 * repeat_penalty NaN/<= 0, non-finite presence/frequency penalties,
 * penalty_last_n < 0 or > 2^20 (0 = penalties off), a bias token outside
 * the vocabulary, a bias value NaN or +inf (-inf bans the token).
 * p may be NULL (defaults).  docs/run.md describes the chain. */
int32_t   g4_sampler_sample(g4_sampler *s, const float *logits);
void      g4_sampler_accept(g4_sampler *s, int32_t token);
void      g4_sampler_reset(g4_sampler *s);   /* history cleared, seed restarted */
void      g4_sampler_free(g4_sampler *s);
/* The candidates that survived the whole chain in the last
 * g4_sampler_sample, most probable first (ties: lower id first), with their
 * probabilities (summing to 1) in the distribution the token was drawn
 * from; temperature 0: the argmax alone, probability 1.  Returns the count
 * (0 before any sample / after reset; both pointers then NULL); the arrays
 * stay valid until the next sample, reset or free.  For logprobs. */
size_t    g4_sampler_candidates(g4_sampler *s, const int32_t **tokens, const float **probs);

/* ---- text: output parser ---- */

/* Incremental parser of the model's output TEXT (what the detokenizer
 * produces, split anywhere, even inside a marker) into thoughts, visible
 * content and tool calls.  The reverse of the chat template; see
 * docs/output-parser.md.
 *
 *   <|channel>thought\n ... <channel|>           -> G4_OUT_THOUGHT deltas
 *   <|tool_call>call:NAME{k:v,...}<tool_call|>   -> G4_OUT_TOOL_CALL (JSON args)
 *   <turn|>  or  <|tool_response>                -> G4_OUT_END (end of generation)
 *   anything else                                 -> G4_OUT_CONTENT deltas
 *
 * Guarantees: no half marker is ever emitted (bytes that may start a marker
 * are held back until decided, flushed by g4_outparse_finish); a malformed
 * tool call never disappears: its raw text comes out as content, preceded by
 * a G4_OUT_WARNING; after merging adjacent deltas the events do not depend on
 * how the input was split; memory is bounded (max_call_bytes, max_depth). */
typedef struct g4_outparse g4_outparse;

typedef enum {
    G4_OUT_CONTENT = 0,    /* text, len: visible answer text (a delta) */
    G4_OUT_THOUGHT = 1,    /* text, len: reasoning text (a delta) */
    G4_OUT_TOOL_CALL = 2,  /* a complete call: tool_index, tool_name, tool_args_json */
    G4_OUT_TOOL_BEGIN = 3, /* stream_args only: a call opened (tool_index, tool_name) */
    G4_OUT_TOOL_ARGS = 4,  /* stream_args only: text, len: next bytes of the JSON args */
    G4_OUT_TOOL_ABORT = 5, /* stream_args only: the begun call tool_index was malformed;
                              forget its deltas (its text follows as content; the index
                              is reused by the next call) */
    G4_OUT_WARNING = 6,    /* text: a one-line message (malformed call, stray marker...) */
    G4_OUT_END = 7         /* once: end_reason; tool_index = number of complete calls */
} g4_out_kind;

typedef enum {
    G4_OUT_END_FINISH = 0,        /* g4_outparse_finish without an end marker */
    G4_OUT_END_TURN = 1,          /* <turn|> */
    G4_OUT_END_TOOL_RESPONSE = 2  /* <|tool_response>: the model awaits tool results */
} g4_out_end_reason;

typedef struct {
    g4_out_kind kind;
    const char *text;           /* CONTENT/THOUGHT/TOOL_ARGS/WARNING; NUL-terminated, len bytes */
    size_t      len;
    int         tool_index;     /* TOOL_*: 0, 1, ... per complete call; END: call count */
    const char *tool_name;      /* TOOL_CALL/TOOL_BEGIN/TOOL_ARGS/TOOL_ABORT, else NULL */
    const char *tool_args_json; /* TOOL_CALL: a JSON object, e.g. {"city":"Paris"} */
    g4_out_end_reason end_reason; /* END */
} g4_out_event;

/* Callback contract: called synchronously from push/finish, in output order.
 * Every pointer in *ev is valid only during the call (copy what you keep).
 * Text deltas are never empty and hold whole UTF-8 sequences unless the
 * input itself is cut or invalid.  The callback must not call push, finish,
 * reset or free on the same parser. */
typedef void (*g4_outparse_cb)(const g4_out_event *ev, void *user);

typedef struct {
    bool   stream_args;    /* also emit TOOL_BEGIN / TOOL_ARGS / TOOL_ABORT (default false) */
    size_t max_call_bytes; /* raw text of one tool call; longer -> content + warning (default 1 MiB) */
    int    max_depth;      /* nesting of {} / [] in arguments (default 64, at most 64) */
    bool   start_in_thought; /* the prompt ended inside a thought block, i.e. with
                                "<|channel>thought\n" (thinking on, after a tool
                                response); default false */
} g4_outparse_params;

g4_outparse_params g4_outparse_default_params(void);
/* params may be NULL (defaults).  NULL when out of memory. */
g4_outparse *g4_outparse_new(const g4_outparse_params *params);
void         g4_outparse_free(g4_outparse *p);
/* Forget all state (a new generation), keep the params. */
void         g4_outparse_reset(g4_outparse *p);
/* Feed len bytes.  Returns 1 once the end marker has been seen (stop
 * generating; later input is ignored with one warning), else 0; -1 when p
 * is NULL. */
int          g4_outparse_push(g4_outparse *p, const char *text, size_t len,
                              g4_outparse_cb cb, void *user);
/* End of input: flushes held-back bytes, closes an unterminated thought,
 * turns an unfinished call into content + warning, and emits G4_OUT_END
 * unless an end marker already did.  Returns 0; -1 when p is NULL. */
int          g4_outparse_finish(g4_outparse *p, g4_outparse_cb cb, void *user);

/* ---- media: mmproj (gemma4uv / gemma4ua), images, audio ---- */
/* The encoder-free projector of Gemma 4 12B "Unified": GGUF architecture
 * "clip" with clip.vision.projector_type "gemma4uv" and/or
 * clip.audio.projector_type "gemma4ua".  See docs/multimodal.md and
 * shared/spec/gemma4-multimodal.md. */
typedef struct g4_mmproj g4_mmproj;

typedef struct {
    bool use_mmap;   /* default true */
    int  n_threads;  /* 0 = one per physical core */
} g4_mmproj_params;

typedef struct {
    bool     has_vision, has_audio;
    char     vision_type[16], audio_type[16]; /* "gemma4uv", "gemma4ua" or "" */
    uint32_t n_embd;          /* output rows' width (= the decoder's n_embd) */
    uint32_t patch;           /* vision: patch side in pixels (48) */
    uint32_t vision_width;    /* vision: patch embedding width (3840) */
    uint32_t n_pos;           /* vision: rows per axis of the position table (1120) */
    float    image_mean[3], image_std[3];
    float    vision_eps;      /* final RMSNorm eps (1e-6) */
    uint32_t audio_frame;     /* audio: samples per soft token (640) */
    uint32_t audio_rate;      /* 16000 */
} g4_mmproj_info;

g4_mmproj_params g4_mmproj_default_params(void);
g4_status g4_mmproj_load(const char *path, const g4_mmproj_params *p, g4_mmproj **out,
                         char *err, size_t errlen);
void      g4_mmproj_free(g4_mmproj *mm);
void      g4_mmproj_get_info(const g4_mmproj *mm, g4_mmproj_info *out);
/* G4_ERR_INVALID naming both widths when the projector does not feed this model. */
g4_status g4_mmproj_check_model(const g4_mmproj *mm, const g4_model *model, char *err, size_t errlen);

/* An 8-bit RGB image, row-major, top row first, 3 bytes per pixel. */
typedef struct {
    uint32_t width, height;
    uint8_t *rgb;   /* malloc'd width*height*3 bytes */
} g4_image;

#define G4_IMAGE_DEFAULT_MAX_PIXELS (64u * 1024u * 1024u)  /* decompression-bomb cap */

/* JPEG, PNG, WebP, GIF (first frame) or BMP, recognised by content.
 * Grayscale and palette images become RGB; alpha is dropped (no
 * compositing); 16-bit channels become 8-bit (high byte).  The pixels are
 * those of Pillow's Image.open(f).convert("RGB") (docs/media-files.md).
 * Images with more than max_pixels pixels (0 = G4_IMAGE_DEFAULT_MAX_PIXELS)
 * are refused (G4_ERR_INVALID) before their pixels are decoded.  Errors name
 * the format and the problem: G4_ERR_FORMAT for damaged, truncated or
 * zero-sized images, G4_ERR_UNSUPPORTED for unrecognised content and
 * unsupported variants (animated WebP, RLE or 16-bit BMP).  On error
 * *out is zeroed. */
g4_status g4_image_decode(const void *data, size_t len, uint64_t max_pixels, g4_image *out,
                          char *err, size_t errlen);
/* The file is mapped (or read, for pipes; at most 1 GiB); errors name the path. */
g4_status g4_image_load(const char *path, uint64_t max_pixels, g4_image *out, char *err, size_t errlen);
void      g4_image_free(g4_image *img);

/* The reference resize policy (multimodal spec §2.2): the size, both sides
 * multiples of 48, that fills a budget of max_tokens soft tokens (70, 140,
 * 280, 560 or 1120; others refused) keeping the aspect ratio. */
g4_status g4_image_fit(uint32_t width, uint32_t height, uint32_t max_tokens,
                       uint32_t *out_width, uint32_t *out_height, char *err, size_t errlen);
/* Pillow-compatible antialiased bicubic resize (Image.resize(BICUBIC)),
 * bit-exact with Pillow 9.4.  Same size: a copy.  G4_ERR_INVALID for an
 * empty source or a zero target side. */
g4_status g4_image_resize(const g4_image *src, uint32_t width, uint32_t height, g4_image *out,
                          char *err, size_t errlen);

/* Mono float audio at 16 kHz in [-1, 1]. */
typedef struct {
    float   *samples;      /* malloc'd */
    uint64_t n_samples;
    uint32_t src_rate, src_channels;  /* of the file */
} g4_audio;

/* WAV (PCM 16/24/32, float), FLAC, OGG/Vorbis, OGG/Opus, MP3 (also AIFF,
 * AU, CAF, W64, RF64) via libsndfile; channels averaged; resampled to
 * 16 kHz with libsoxr (SOXR_HQ), not at all when already 16 kHz.  Float
 * samples are not clipped; NaN/Inf are refused.  Files longer than
 * max_seconds (0 = no limit) are refused (G4_ERR_INVALID, naming both
 * durations).  A valid file without samples gives n_samples = 0 and
 * samples = NULL (g4_mmproj_embed_audio refuses it).  Truncated files are
 * G4_ERR_FORMAT, except MP3, whose length is only an estimate: a cut MP3
 * decodes to the frames present. */
g4_status g4_audio_decode(const void *data, size_t len, double max_seconds, g4_audio *out,
                          char *err, size_t errlen);
/* The file is mapped (or read, for pipes; at most 4 GiB); errors name the path. */
g4_status g4_audio_load(const char *path, double max_seconds, g4_audio *out, char *err, size_t errlen);
void      g4_audio_free(g4_audio *a);

/* Soft-token rows produced by the embedders. */
typedef struct {
    float   *rows;        /* malloc'd n_tokens x n_embd */
    uint32_t n_tokens, n_embd;
    uint32_t width, height;      /* images: the resized size */
    uint32_t grid_w, grid_h;     /* images: patch columns x rows */
} g4_embedding;

/* Image: resized per g4_image_fit(max_tokens) with g4_image_resize (skipped
 * when the size already matches), then the vision embedder (spec §2.8). */
g4_status g4_mmproj_embed_image(g4_mmproj *mm, const g4_image *img, uint32_t max_tokens,
                                g4_embedding *out, char *err, size_t errlen);
/* Audio: 16 kHz mono samples -> ceil(n/640) rows (spec §3).  n == 0 is
 * refused (G4_ERR_INVALID). */
g4_status g4_mmproj_embed_audio(g4_mmproj *mm, const float *samples, uint64_t n_samples,
                                g4_embedding *out, char *err, size_t errlen);
void      g4_embedding_free(g4_embedding *e);

#ifdef __cplusplus
}
#endif
#endif
