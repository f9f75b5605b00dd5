/* test_outparse.c - the Gemma 4 output parser (src/text/outparse.c).
 *
 * Every expected event sequence below is written by hand from the spec
 * (shared/spec/gemma4-mtp-tokenizer-template.md §3.3/§3.6).  Each case is
 * fed whole, one byte at a time and at random split points (fixed seed), with
 * and without streamed argument deltas: all feeds must give the same events
 * once adjacent deltas are merged.
 *
 * Recorded form: C[content] T[thought] CALLi[name]{json} W (warning)
 * END[reason,calls]; with stream_args also checked: BEGIN/ARGS/ABORT.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemma4.h"
#include "testutil.h"
#include "text/outparse.h"

/* ------------------------------------------------------------------ */
/* recorder                                                             */

typedef struct {
    char  *s;
    size_t n, cap;
    int    last;       /* kind of the last merged-delta entry, -1 none */
    bool   ended;
    int    bad;        /* contract violations seen */
    /* stream_args checks */
    char  *args;       /* concatenated TOOL_ARGS of the open call */
    size_t nargs, capargs;
    int    open_index; /* index of the begun call, -1 none */
} rec;

static void rput(rec *r, const char *s, size_t n)
{
    if (r->n + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->n + n + 1) cap *= 2;
        r->s = realloc(r->s, cap);
        r->cap = cap;
    }
    memcpy(r->s + r->n, s, n);
    r->n += n;
    r->s[r->n] = 0;
}
static void rputs(rec *r, const char *s) { rput(r, s, strlen(s)); }

static void aput(rec *r, const char *s, size_t n)
{
    if (r->nargs + n + 1 > r->capargs) {
        size_t cap = r->capargs ? r->capargs : 256;
        while (cap < r->nargs + n + 1) cap *= 2;
        r->args = realloc(r->args, cap);
        r->capargs = cap;
    }
    memcpy(r->args + r->nargs, s, n);
    r->nargs += n;
    r->args[r->nargs] = 0;
}

static void on_event(const g4_out_event *ev, void *user)
{
    rec *r = user;
    char tmp[64];
    if (r->ended && ev->kind != G4_OUT_WARNING) r->bad++; /* nothing but a warning after END */
    switch (ev->kind) {
    case G4_OUT_CONTENT:
    case G4_OUT_THOUGHT:
        if (ev->len == 0 || !ev->text || ev->text[ev->len] != 0) r->bad++;
        if (r->last == (int)ev->kind) {
            r->n--; /* drop ']' */
        } else {
            rputs(r, ev->kind == G4_OUT_CONTENT ? "C[" : "T[");
        }
        rput(r, ev->text, ev->len);
        rputs(r, "]");
        r->last = (int)ev->kind;
        return;
    case G4_OUT_TOOL_CALL: {
        json_error_t jerr;
        json_t *j = json_loads(ev->tool_args_json, JSON_ALLOW_NUL, &jerr);
        if (!j || !json_is_object(j)) {
            r->bad++;
            fprintf(stderr, "invalid args JSON: %s (%s)\n", ev->tool_args_json, jerr.text);
        }
        json_decref(j);
        if (r->open_index >= 0) { /* streamed: deltas must add up to the final JSON */
            if (r->open_index != ev->tool_index || strcmp(r->args ? r->args : "", ev->tool_args_json)) {
                r->bad++;
                fprintf(stderr, "streamed args mismatch: [%s] vs [%s]\n", r->args ? r->args : "",
                        ev->tool_args_json);
            }
            r->open_index = -1;
            r->nargs = 0;
        }
        snprintf(tmp, sizeof tmp, "CALL%d[", ev->tool_index);
        rputs(r, tmp);
        rputs(r, ev->tool_name);
        rputs(r, "]");
        rputs(r, ev->tool_args_json);
        break;
    }
    case G4_OUT_TOOL_BEGIN:
        if (r->open_index >= 0 || !ev->tool_name || !ev->tool_name[0]) r->bad++;
        r->open_index = ev->tool_index;
        r->nargs = 0;
        aput(r, "", 0);
        return; /* not part of the recorded form */
    case G4_OUT_TOOL_ARGS:
        if (r->open_index != ev->tool_index || ev->len == 0) r->bad++;
        aput(r, ev->text, ev->len);
        return;
    case G4_OUT_TOOL_ABORT:
        if (r->open_index != ev->tool_index) r->bad++;
        r->open_index = -1;
        r->nargs = 0;
        return;
    case G4_OUT_WARNING:
        if (!ev->text || ev->len == 0 || strlen(ev->text) != ev->len) r->bad++;
        rputs(r, "W");
        break;
    case G4_OUT_END:
        if (r->ended) r->bad++;
        r->ended = true;
        snprintf(tmp, sizeof tmp, "END[%s,%d]",
                 ev->end_reason == G4_OUT_END_TURN ? "turn"
                 : ev->end_reason == G4_OUT_END_TOOL_RESPONSE ? "tool_response" : "finish",
                 ev->tool_index);
        rputs(r, tmp);
        break;
    }
    r->last = -1;
}

/* ------------------------------------------------------------------ */
/* feeding                                                              */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

enum { FEED_WHOLE, FEED_BYTES, FEED_RANDOM };

/* Runs the parser; returns the recorded string (caller frees). *bad gets
 * the number of contract violations. */
static char *run(const char *in, size_t n, int mode, bool stream, size_t max_call, int *bad)
{
    g4_outparse_params prm = g4_outparse_default_params();
    prm.stream_args = stream;
    if (max_call) prm.max_call_bytes = max_call;
    g4_outparse *p = g4_outparse_new(&prm);
    rec r = {0};
    r.last = -1;
    r.open_index = -1;
    rputs(&r, "");
    if (mode == FEED_WHOLE) {
        g4_outparse_push(p, in, n, on_event, &r);
    } else if (mode == FEED_BYTES) {
        for (size_t i = 0; i < n; i++) g4_outparse_push(p, in + i, 1, on_event, &r);
    } else {
        size_t i = 0;
        while (i < n) {
            size_t k = rnd() % 9; /* 0 (empty push) .. 8 bytes */
            if (rnd() % 16 == 0) k = rnd() % 40;
            if (k > n - i) k = n - i;
            g4_outparse_push(p, in + i, k, on_event, &r);
            i += k;
        }
    }
    g4_outparse_finish(p, on_event, &r);
    if (!r.ended) r.bad++;
    if (r.open_index >= 0) r.bad++; /* a begun call was neither completed nor aborted */
    /* reuse after reset gives the same result */
    g4_outparse_reset(p);
    g4_outparse_free(p);
    free(r.args);
    *bad = r.bad;
    return r.s;
}

static int n_cases;

/* Checks all feeds of `in` against `want`. */
static void check_full(const char *name, const char *in, size_t n, const char *want, size_t max_call)
{
    n_cases++;
    for (int stream = 0; stream < 2; stream++) {
        for (int mode = 0; mode < 3; mode++) {
            int iters = mode == FEED_RANDOM ? 40 : 1;
            for (int it = 0; it < iters; it++) {
                int bad = 0;
                char *got = run(in, n, mode, stream, max_call, &bad);
                bool ok = !strcmp(got, want) && bad == 0;
                CHECKF(ok, "%s (mode %d, stream %d, iter %d):\n  got  %s\n  want %s\n  bad %d",
                       name, mode, stream, it, got, want, bad);
                free(got);
                if (!ok) return;
            }
        }
    }
}

static void check(const char *name, const char *in, const char *want)
{
    check_full(name, in, strlen(in), want, 0);
}

/* ------------------------------------------------------------------ */
/* cases                                                                */

static void test_plain(void)
{
    check("plain", "Hello, world!", "C[Hello, world!]END[finish,0]");
    check("plain+turn", "Hi there.<turn|>", "C[Hi there.]END[turn,0]");
    check("empty", "", "END[finish,0]");
    check("lt not marker", "1 < 2 and <b>bold</b> <|x|> <tool>",
          "C[1 < 2 and <b>bold</b> <|x|> <tool>]END[finish,0]");
    check("partial marker at end", "a <|chan", "C[a <|chan]END[finish,0]");
    check("lone lt at end", "x<", "C[x<]END[finish,0]");
    check("double lt", "<<|channel>thought\nz<channel|>", "C[<]T[z]END[finish,0]");
    check("utf8", "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80",
          "C[caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80]END[finish,0]");
    check("turn header", "<|turn>model\nHi<turn|>", "C[Hi]END[turn,0]");
    check("str marker in content", "say <|\"|>x<|\"|>", "C[say <|\"|>x<|\"|>]END[finish,0]");
}

static void test_thought(void)
{
    check("thought then content",
          "<|channel>thought\nLet me think.\nOK.<channel|>The answer is 4.<turn|>",
          "T[Let me think.\nOK.]C[The answer is 4.]END[turn,0]");
    check("thought trailing newline", "<|channel>thought\nabc\n\n<channel|>Done",
          "T[abc]C[Done]END[finish,0]");
    check("thought inner newlines kept", "<|channel>thought\na\n\nb<channel|>",
          "T[a\n\nb]END[finish,0]");
    check("thinking off: empty block", "<|channel>thought\n<channel|>Paris is the capital.<turn|>",
          "C[Paris is the capital.]END[turn,0]");
    check("empty block without newline", "<|channel>thought<channel|>X", "C[X]END[finish,0]");
    check("empty block, nothing in it", "<|channel><channel|>X", "C[X]END[finish,0]");
    check("extra empty block after content", "Answer.<|channel>thought\n<channel|><turn|>",
          "C[Answer.]END[turn,0]");
    check("stray channel close at start", "<channel|>Hello", "C[Hello]END[finish,0]");
    check("stray channel close inside", "Hel<channel|>lo", "C[Hello]END[finish,0]");
    check("unterminated thought", "<|channel>thought\nhmm, so", "T[hmm, so]END[finish,0]");
    check("unterminated thought + turn", "<|channel>thought\nhmm<turn|>", "T[hmm]END[turn,0]");
    check("cut channel name", "<|channel>tho", "T[tho]END[finish,0]");
    check("other channel name", "<|channel>notes\nx<channel|>y", "T[notes\nx]C[y]END[finish,0]");
    check("thought name without newline", "<|channel>thoughtdeep<channel|>", "T[deep]END[finish,0]");
    check("second opener inside thought", "<|channel>thought\na<|channel>thought\nb<channel|>c",
          "T[ab]C[c]END[finish,0]");
    check("content, thought, content", "A<|channel>thought\nB<channel|>C",
          "C[A]T[B]C[C]END[finish,0]");
}

static void test_calls(void)
{
    check("single call, all value kinds",
          "<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>,days:3,metric:true,extra:null,"
          "off:false,temp:-1.5e3,opts:{a:[1,2,{b:false}],c:<|\"|><|\"|>},tags:[]}<tool_call|>"
          "<|tool_response>",
          "CALL0[get_weather]{\"city\":\"Paris\",\"days\":3,\"metric\":true,\"extra\":null,"
          "\"off\":false,\"temp\":-1.5e3,\"opts\":{\"a\":[1,2,{\"b\":false}],\"c\":\"\"},\"tags\":[]}"
          "END[tool_response,1]");
    check("no arguments", "<|tool_call>call:now{}<tool_call|>", "CALL0[now]{}END[finish,1]");
    check("parallel calls",
          "<|tool_call>call:a{x:1}<tool_call|><|tool_call>call:b{y:<|\"|>z<|\"|>}<tool_call|>"
          "<|tool_response>",
          "CALL0[a]{\"x\":1}CALL1[b]{\"y\":\"z\"}END[tool_response,2]");
    check("content then call",
          "Let me check.<|tool_call>call:lookup{q:<|\"|>C11<|\"|>}<tool_call|><|tool_response>",
          "C[Let me check.]CALL0[lookup]{\"q\":\"C11\"}END[tool_response,1]");
    check("content, call, content",
          "A<|tool_call>call:f{}<tool_call|>B<turn|>", "C[A]CALL0[f]{}C[B]END[turn,1]");
    check("thought then call",
          "<|channel>thought\nneed weather<channel|><|tool_call>call:w{c:<|\"|>X<|\"|>}<tool_call|>"
          "<|tool_response>",
          "T[need weather]CALL0[w]{\"c\":\"X\"}END[tool_response,1]");
    check("array of strings and objects",
          "<|tool_call>call:t{l:[<|\"|>a<|\"|>,<|\"|>b<|\"|>],o:[{k:1},{k:2}]}<tool_call|>",
          "CALL0[t]{\"l\":[\"a\",\"b\"],\"o\":[{\"k\":1},{\"k\":2}]}END[finish,1]");
    check("quoted keys (escape_keys form)",
          "<|tool_call>call:t{<|\"|>my key<|\"|>:1,<|\"|>b<|\"|>:{<|\"|>c<|\"|>:2}}<tool_call|>",
          "CALL0[t]{\"my key\":1,\"b\":{\"c\":2}}END[finish,1]");
    check("whitespace between tokens",
          "<|tool_call>call: f { a : 1 ,\n b : [ 1 , 2 ] } \n<tool_call|>",
          "CALL0[f]{\"a\":1,\"b\":[1,2]}END[finish,1]");
    check("python literals and number forms",
          "<|tool_call>call:f{a:True,b:False,c:None,d:+5,e:.5,f:-.25,g:007,h:3.,i:0}<tool_call|>",
          "CALL0[f]{\"a\":true,\"b\":false,\"c\":null,\"d\":5,\"e\":0.5,\"f\":-0.25,\"g\":7,"
          "\"h\":3,\"i\":0}END[finish,1]");
    check("trailing commas", "<|tool_call>call:f{a:[1,2,],}<tool_call|>",
          "CALL0[f]{\"a\":[1,2]}END[finish,1]");
    check("json-quoted strings",
          "<|tool_call>call:f{\"k\":\"a\\\"b\\\\c\\n\\u00e9\\u0001\"}<tool_call|>",
          "CALL0[f]{\"k\":\"a\\\"b\\\\c\\n\xC3\xA9\\u0001\"}END[finish,1]");
    check("no call: prefix", "<|tool_call>ping{}<tool_call|>", "CALL0[ping]{}END[finish,1]");
    check("namespaced name", "<|tool_call>call:mcp.fs/read_file{}<tool_call|>",
          "CALL0[mcp.fs/read_file]{}END[finish,1]");
    check("newline in string arg and then text",
          "<|tool_call>call:w{t:<|\"|>line1\nline2<|\"|>}<tool_call|>ok",
          "CALL0[w]{\"t\":\"line1\\nline2\"}C[ok]END[finish,1]");
}

static void test_escaping(void)
{
    /* quotes, backslashes, newline, tab, CR, a control byte, DEL, '<' and
     * markers-lookalikes inside a string, unicode passthrough */
    check("json escaping",
          "<|tool_call>call:echo{text:<|\"|>He said \"hi\" C:\\path\\n\n\t\r\x01\x7f"
          " a<b <|x 1<2 caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80 \xE2\x80\xA8<|\"|>}<tool_call|>",
          "CALL0[echo]{\"text\":\"He said \\\"hi\\\" C:\\\\path\\\\n\\n\\t\\r\\u0001\x7f"
          " a<b <|x 1<2 caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80 \xE2\x80\xA8\"}END[finish,1]");
    check("escaping in keys", "<|tool_call>call:f{<|\"|>a\"b\\<|\"|>:1}<tool_call|>",
          "CALL0[f]{\"a\\\"b\\\\\":1}END[finish,1]");
    /* invalid UTF-8 in a string becomes U+FFFD so the JSON stays valid */
    check("invalid utf8 in string",
          "<|tool_call>call:f{s:<|\"|>a\xFF" "b\xC3<|\"|>}<tool_call|>",
          "CALL0[f]{\"s\":\"a\xEF\xBF\xBD" "b\xEF\xBF\xBD\"}END[finish,1]");
    check("surrogate escape replaced",
          "<|tool_call>call:f{s:\"\\ud83d\"}<tool_call|>",
          "CALL0[f]{\"s\":\"\xEF\xBF\xBD\"}END[finish,1]");
}

static void test_malformed(void)
{
    check("missing }",
          "<|tool_call>call:f{a:1<tool_call|>after",
          "W" "C[<|tool_call>call:f{a:1<tool_call|>after]END[finish,0]");
    check("missing closing marker then text",
          "<|tool_call>call:f{a:1}Hello",
          "W" "C[<|tool_call>call:f{a:1}Hello]END[finish,0]");
    check("missing closing marker at end",
          "pre <|tool_call>call:f{a:1}",
          "C[pre ]W" "C[<|tool_call>call:f{a:1}]END[finish,0]");
    check("unterminated call at end",
          "<|tool_call>call:f{a:<|\"|>abc",
          "W" "C[<|tool_call>call:f{a:<|\"|>abc]END[finish,0]");
    check("bad value token", "<|tool_call>call:f{a:foo}<tool_call|>x",
          "W" "C[<|tool_call>call:f{a:foo}<tool_call|>x]END[finish,0]");
    check("missing comma", "<|tool_call>call:f{a:1 b:2}<tool_call|>",
          "W" "C[<|tool_call>call:f{a:1 b:2}<tool_call|>]END[finish,0]");
    check("missing colon", "<|tool_call>call:f{a 1}<tool_call|>",
          "W" "C[<|tool_call>call:f{a 1}<tool_call|>]END[finish,0]");
    check("missing value", "<|tool_call>call:f{a:}<tool_call|>",
          "W" "C[<|tool_call>call:f{a:}<tool_call|>]END[finish,0]");
    check("missing name", "<|tool_call>{a:1}<tool_call|>",
          "W" "C[<|tool_call>{a:1}<tool_call|>]END[finish,0]");
    check("bad name", "<|tool_call>call:get weather{}<tool_call|>",
          "W" "C[<|tool_call>call:get weather{}<tool_call|>]END[finish,0]");
    check("mismatched bracket", "<|tool_call>call:f{a:[1}<tool_call|>",
          "W" "C[<|tool_call>call:f{a:[1}<tool_call|>]END[finish,0]");
    check("unterminated string swallowing close",
          "<|tool_call>call:f{a:<|\"|>abc}<tool_call|>rest<turn|>",
          "W" "C[<|tool_call>call:f{a:<|\"|>abc}<tool_call|>rest]END[turn,0]");
    check("broken call then good call",
          "<|tool_call>call:f{a:}<|tool_call>call:g{}<tool_call|>",
          "W" "C[<|tool_call>call:f{a:}]CALL0[g]{}END[finish,1]");
    check("good call, broken call, index not consumed",
          "<|tool_call>call:a{}<tool_call|><|tool_call>call:b{x:y}<tool_call|>"
          "<|tool_call>call:c{}<tool_call|>",
          "CALL0[a]{}W" "C[<|tool_call>call:b{x:y}<tool_call|>]CALL1[c]{}END[finish,2]");
    check("end marker inside call", "<|tool_call>call:f{a:1<turn|>",
          "W" "C[<|tool_call>call:f{a:1]END[turn,0]");
    check("call inside unclosed thought",
          "<|channel>thought\nabc\n<|tool_call>call:f{}<tool_call|>",
          "T[abc]WCALL0[f]{}END[finish,1]");
    check("stray tool_call close", "a<tool_call|>b", "C[a]W" "C[b]END[finish,0]");
    check("text after end", "A<turn|>B", "C[A]END[turn,0]W");
    check("broken call with strings keeps its close marker",
          "<|tool_call>call:f{a:1 b:<|\"|>x<|\"|>}<tool_call|>ok",
          "W" "C[<|tool_call>call:f{a:1 b:<|\"|>x<|\"|>}<tool_call|>ok]END[finish,0]");
    check("stray channel close after broken call",
          "<|tool_call>call:f{a:1}tail<channel|>more",
          "W" "C[<|tool_call>call:f{a:1}tailmore]END[finish,0]");
    check("text after tool_response", "<|tool_call>call:f{}<tool_call|><|tool_response>response:f{}",
          "CALL0[f]{}END[tool_response,1]W");

    /* huge nesting: 100 levels -> content + warning; 63 levels are fine */
    {
        char in[1024], want[1200];
        size_t n = 0;
        n += (size_t)sprintf(in + n, "<|tool_call>call:deep{a:");
        for (int i = 0; i < 100; i++) in[n++] = '[';
        for (int i = 0; i < 100; i++) in[n++] = ']';
        n += (size_t)sprintf(in + n, "}<tool_call|>");
        in[n] = 0;
        snprintf(want, sizeof want, "WC[%s]END[finish,0]", in);
        check("nesting 101", in, want);

        n = 0;
        n += (size_t)sprintf(in + n, "<|tool_call>call:deep{a:");
        for (int i = 0; i < 63; i++) in[n++] = '[';
        for (int i = 0; i < 63; i++) in[n++] = ']';
        n += (size_t)sprintf(in + n, "}<tool_call|>");
        in[n] = 0;
        size_t w = (size_t)sprintf(want, "CALL0[deep]{\"a\":");
        for (int i = 0; i < 63; i++) want[w++] = '[';
        for (int i = 0; i < 63; i++) want[w++] = ']';
        sprintf(want + w, "}END[finish,1]");
        check("nesting 64", in, want);
    }
    /* size limit: a call over max_call_bytes becomes content */
    {
        char in[512], want[600];
        size_t n = (size_t)sprintf(in, "<|tool_call>call:big{s:<|\"|>");
        for (int i = 0; i < 200; i++) in[n++] = 'x';
        n += (size_t)sprintf(in + n, "<|\"|>}<tool_call|>");
        in[n] = 0;
        snprintf(want, sizeof want, "WC[%s]END[finish,0]", in);
        check_full("size limit", in, n, want, 100);
        /* the same call under the default limit is fine */
        char want2[600];
        size_t w = (size_t)sprintf(want2, "CALL0[big]{\"s\":\"");
        for (int i = 0; i < 200; i++) want2[w++] = 'x';
        sprintf(want2 + w, "\"}END[finish,1]");
        check_full("size ok", in, n, want2, 0);
    }
    /* a NUL byte in content and in a string */
    {
        static const char in[] = "a\0b<|tool_call>call:f{s:<|\"|>x\0y<|\"|>}<tool_call|>";
        static const char want[] = "C[a\0b]CALL0[f]{\"s\":\"x\\u0000y\"}END[finish,1]";
        n_cases++;
        int bad = 0;
        for (int mode = 0; mode < 3; mode++) {
            char *got = run(in, sizeof in - 1, mode, mode == 2, 0, &bad);
            CHECKF(!memcmp(got, want, sizeof want - 1) && bad == 0, "NUL bytes mode %d", mode);
            free(got);
        }
    }
}

/* Deltas: streaming must produce argument deltas before the call ends. */
static int n_args_events, n_begin_events;
static void count_cb(const g4_out_event *ev, void *user)
{
    (void)user;
    if (ev->kind == G4_OUT_TOOL_ARGS) n_args_events++;
    if (ev->kind == G4_OUT_TOOL_BEGIN) n_begin_events++;
}

static void test_streaming_api(void)
{
    g4_outparse_params prm = g4_outparse_default_params();
    prm.stream_args = true;
    g4_outparse *p = g4_outparse_new(&prm);
    const char *parts[] = { "<|tool_call>call:w", "{city:<|\"|>Par", "is<|\"|>,n:1", "2}<tool_c", "all|>" };
    n_args_events = n_begin_events = 0;
    for (int i = 0; i < 5; i++) CHECK(g4_outparse_push(p, parts[i], strlen(parts[i]), count_cb, NULL) == 0);
    CHECK(n_begin_events == 1);
    CHECK(n_args_events >= 3);
    CHECK(g4_outparse_push(p, "<|tool_response>", 16, count_cb, NULL) == 1);
    CHECK(g4_outparse_push(p, "more", 4, count_cb, NULL) == 1);
    CHECK(g4_outparse_finish(p, count_cb, NULL) == 0);
    g4_outparse_free(p);

    /* held-back text: nothing is emitted while a marker may be starting */
    p = g4_outparse_new(NULL);
    rec r = {0};
    r.last = -1;
    r.open_index = -1;
    rputs(&r, "");
    g4_outparse_push(p, "Hi <|chan", 9, on_event, &r);
    CHECK(!strcmp(r.s, "C[Hi ]"));
    g4_outparse_push(p, "nel>thought\n", 12, on_event, &r);
    CHECK(!strcmp(r.s, "C[Hi ]"));
    g4_outparse_push(p, "x", 1, on_event, &r);
    CHECK(!strcmp(r.s, "C[Hi ]T[x]"));
    /* a split UTF-8 sequence is not emitted half */
    g4_outparse_push(p, "\xC3", 1, on_event, &r);
    CHECK(!strcmp(r.s, "C[Hi ]T[x]"));
    g4_outparse_push(p, "\xA9", 1, on_event, &r);
    CHECK(!strcmp(r.s, "C[Hi ]T[x\xC3\xA9]"));
    g4_outparse_finish(p, on_event, &r);
    CHECK(!strcmp(r.s, "C[Hi ]T[x\xC3\xA9]END[finish,0]"));
    /* reset: a fresh generation */
    g4_outparse_reset(p);
    free(r.s);
    memset(&r, 0, sizeof r);
    r.last = -1;
    r.open_index = -1;
    rputs(&r, "");
    g4_outparse_push(p, "ok<turn|>", 9, on_event, &r);
    CHECK(!strcmp(r.s, "C[ok]END[turn,0]"));
    g4_outparse_free(p);
    free(r.s);
    free(r.args);

    /* start_in_thought: the prompt ended with "<|channel>thought\n" */
    {
        g4_outparse_params tp = g4_outparse_default_params();
        tp.start_in_thought = true;
        g4_outparse *q = g4_outparse_new(&tp);
        rec t = {0};
        t.last = -1;
        t.open_index = -1;
        rputs(&t, "");
        const char *s = "The tool says 18.\n<channel|>It is 18 C.<turn|>";
        g4_outparse_push(q, s, strlen(s), on_event, &t);
        g4_outparse_finish(q, on_event, &t);
        CHECK(!strcmp(t.s, "T[The tool says 18.]C[It is 18 C.]END[turn,0]"));
        free(t.s);
        g4_outparse_reset(q); /* reset goes back into the thought */
        memset(&t, 0, sizeof t);
        t.last = -1;
        t.open_index = -1;
        rputs(&t, "");
        g4_outparse_push(q, "a<channel|>b", 12, on_event, &t);
        g4_outparse_finish(q, on_event, &t);
        CHECK(!strcmp(t.s, "T[a]C[b]END[finish,0]"));
        free(t.s);
        g4_outparse_free(q);
    }

    CHECK(g4_outparse_push(NULL, "x", 1, on_event, NULL) == -1);
    CHECK(g4_outparse_finish(NULL, on_event, NULL) == -1);
    g4_outparse_free(NULL);
    CHECK(!strcmp(g4_outparse_marker_text(G4_MK_STR), "<|\"|>"));

    /* a long content run goes out in several deltas, merged it is whole */
    size_t big = 3 * G4_OUTPARSE_TEXT_CHUNK + 17;
    char *in = malloc(big + 1);
    for (size_t i = 0; i < big; i++) in[i] = (char)('a' + i % 26);
    in[big] = 0;
    char *want = malloc(big + 32);
    sprintf(want, "C[%s]END[finish,0]", in);
    check_full("long content", in, big, want, 0);
    free(in);
    free(want);
}

/* ------------------------------------------------------------------ */
/* fuzz: random strings of marker fragments and bytes                   */

static void test_fuzz(void)
{
    static const char *frags[] = {
        "<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|tool_response>",
        "<tool_response|>", "<|turn>", "<turn|>", "<|\"|>", "call:", "thought\n", "thought",
        "model\n", "{", "}", "[", "]", ":", ",", " ", "\n", "a", "key", "1", "-2.5", "true",
        "None", "<", "|", ">", "\"", "\\", "<|", "|>", "<|tool", "_call>", "\xC3\xA9",
        "\xF0\x9F\x98\x80", "\xE6\x97", "f", "x:", "<|\"|>s<|\"|>", "call:f{", "}<tool_call|>",
    };
    const int nfr = (int)(sizeof frags / sizeof frags[0]);
    char buf[600];
    int failures = 0;
    const char *env = getenv("G4_OUTPARSE_FUZZ_ITERS");
    int iters = env ? atoi(env) : 3000;
    for (int iter = 0; iter < iters && failures < 5; iter++) {
        size_t n = 0;
        int parts = 1 + (int)(rnd() % 40);
        for (int k = 0; k < parts && n < sizeof buf - 20; k++) {
            if (rnd() % 5 == 0) {
                buf[n++] = (char)(rnd() & 0xFF);
            } else {
                const char *f = frags[rnd() % (unsigned)nfr];
                size_t L = strlen(f);
                memcpy(buf + n, f, L);
                n += L;
            }
        }
        int bad0 = 0, bad1 = 0, bad2 = 0;
        bool stream = iter & 1;
        size_t lim = iter % 7 == 0 ? 80 : 0;
        char *a = run(buf, n, FEED_WHOLE, stream, lim, &bad0);
        char *b = run(buf, n, FEED_BYTES, !stream, lim, &bad1);
        char *c = run(buf, n, FEED_RANDOM, stream, lim, &bad2);
        bool ok = bad0 == 0 && bad1 == 0 && bad2 == 0 && !strcmp(a, b) && !strcmp(a, c);
        if (!ok) {
            failures++;
            fprintf(stderr, "fuzz iter %d: bad %d/%d/%d\n in   [%.*s]\n whole %s\n bytes %s\n rand  %s\n",
                    iter, bad0, bad1, bad2, (int)n, buf, a, b, c);
        }
        CHECK(ok);
        free(a);
        free(b);
        free(c);
    }
    /* pure random bytes, including many '<' */
    for (int iter = 0; iter < 500; iter++) {
        size_t n = rnd() % 300;
        for (size_t i = 0; i < n; i++) {
            unsigned r = rnd() % 8;
            buf[i] = r == 0 ? '<' : r == 1 ? '|' : r == 2 ? '>' : (char)(rnd() & 0xFF);
        }
        int bad0 = 0, bad1 = 0;
        char *a = run(buf, n, FEED_WHOLE, false, 0, &bad0);
        char *b = run(buf, n, FEED_RANDOM, true, 0, &bad1);
        CHECK(bad0 == 0 && bad1 == 0 && !strcmp(a, b));
        free(a);
        free(b);
    }
}

int main(void)
{
    test_plain();
    test_thought();
    test_calls();
    test_escaping();
    test_malformed();
    test_streaming_api();
    test_fuzz();
    printf("%d hand-written cases, each fed whole / bytewise / 40 random splits x (stream on, off)\n",
           n_cases);
    return tu_finish("test_outparse");
}
