/*
 * test_chat.c - the Gemma 4 chat-template renderer (src/text/chat.c).
 *
 * 1. Golden conversations: every tests/chat/NN-name.messages.json (with an
 *    optional .tools.json and .args holding `gemma4 render` flags) must
 *    render to exactly the bytes of NN-name.expected.  The expected texts
 *    were written by hand from Google's official large-model template and
 *    checked against it with tests/chat/check-official.py.
 * 2. Properties: string and object tool-call arguments render identically;
 *    Python float formatting; legacy tool_responses; empty conversations.
 * 3. Error paths: each bad input gives G4_ERR_INVALID / G4_ERR_FORMAT and a
 *    one-line message naming the message index and field.
 * 4. Hostile input: every prefix and 2,000 byte mutations of the golden
 *    files either render or fail cleanly (run under ASan+UBSan too).
 *
 * ctest runs this in the build directory; the goldens are found at
 * ../tests/chat or tests/chat relative to the working directory, or in the
 * directory named by the environment variable G4_CHAT_CASES.
 */
#include "gemma4.h"
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (n + 1 >= cap) b = realloc(b, cap *= 2);
        if (!b) { fclose(f); return NULL; }
        size_t r = fread(b + n, 1, cap - 1 - n, f);
        n += r;
        if (!r) break;
    }
    fclose(f);
    b[n] = 0;
    if (len) *len = n;
    return b;
}

static const char *find_cases(void)
{
    const char *env = getenv("G4_CHAT_CASES"); /* for out-of-tree build directories */
    if (env && *env) return env;
    static const char *const dirs[] = { "../tests/chat", "tests/chat", "../../tests/chat" };
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char p[512];
        struct stat st;
        snprintf(p, sizeof p, "%s/01-plain-user.messages.json", dirs[i]);
        if (stat(p, &st) == 0) return dirs[i];
    }
    return NULL;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static g4_chat_params params_from_args(const char *args)
{
    g4_chat_params p = g4_chat_default_params();
    if (args && strstr(args, "--think")) p.enable_thinking = true;
    if (args && strstr(args, "--no-generation-prompt")) p.add_generation_prompt = false;
    if (args && strstr(args, "--preserve-thinking")) p.preserve_thinking = true;
    return p;
}

/* Renders a golden case; returns the output (malloc'd) or NULL. */
static char *render_case(const char *dir, const char *base, char *err, size_t errlen)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s.messages.json", dir, base);
    char *msgs = read_all(p, NULL);
    snprintf(p, sizeof p, "%s/%s.tools.json", dir, base);
    char *tools = read_all(p, NULL);
    snprintf(p, sizeof p, "%s/%s.args", dir, base);
    char *args = read_all(p, NULL);
    g4_chat_params prm = params_from_args(args);
    char *out = NULL;
    if (msgs && g4_chat_render(msgs, tools, &prm, &out, err, errlen) != G4_OK) out = NULL;
    free(msgs);
    free(tools);
    free(args);
    return out;
}

static int golden(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t l = strlen(e->d_name), sl = strlen(".messages.json");
        if (l > sl && !strcmp(e->d_name + l - sl, ".messages.json")) names[n++] = strndup(e->d_name, l - sl);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        char p[600], err[512];
        snprintf(p, sizeof p, "%s/%s.expected", dir, names[i]);
        size_t elen = 0;
        char *exp = read_all(p, &elen);
        CHECKF(exp != NULL, "%s: missing .expected", names[i]);
        char *out = render_case(dir, names[i], err, sizeof err);
        CHECKF(out != NULL, "%s: render failed: %s", names[i], err);
        if (exp && out) {
            size_t olen = strlen(out), k = 0;
            while (k < olen && k < elen && out[k] == exp[k]) k++;
            CHECKF(olen == elen && k == olen, "%s: differs at byte %zu:\n  got:  %.80s\n  want: %.80s", names[i], k,
                   out + (k > 20 ? k - 20 : 0), exp + (k > 20 ? k - 20 : 0));
        }
        free(exp);
        free(out);
        free(names[i]);
    }
    return (int)n;
}

/* render with default params; returns status, output in *out */
static g4_status r(const char *msgs, const char *tools, char **out, char *err, size_t errlen)
{
    g4_chat_params p = g4_chat_default_params();
    return g4_chat_render(msgs, tools, &p, out, err, errlen);
}

static void expect_ok(const char *msgs, const char *tools, const char *want)
{
    char err[512], *out = NULL;
    g4_status st = r(msgs, tools, &out, err, sizeof err);
    CHECKF(st == G4_OK, "render failed: %s\n  input: %s", err, msgs);
    if (st == G4_OK) CHECKF(!strcmp(out, want), "\n  got:  %s\n  want: %s", out, want);
    free(out);
}

static void expect_err(g4_status want_st, const char *msgs, const char *tools, const char *want1, const char *want2)
{
    char err[512], *out = (char *)1;
    g4_status st = r(msgs, tools, &out, err, sizeof err);
    CHECKF(st == want_st, "status %d, want %d for %s", st, want_st, msgs);
    CHECKF(out == NULL, "out not NULL on error");
    CHECKF(strstr(err, want1) != NULL, "message '%s' lacks '%s'", err, want1);
    if (want2) CHECKF(strstr(err, want2) != NULL, "message '%s' lacks '%s'", err, want2);
    CHECKF(strchr(err, '\n') == NULL, "message is not one line: %s", err);
}

#define GP "<|turn>model\n<|channel>thought\n<channel|>"
#define Q "<|\"|>"

static void properties(const char *dir)
{
    /* string-JSON and object arguments render identically */
    char err[512];
    char *a = render_case(dir, "10-args-string", err, sizeof err), *b = render_case(dir, "11-args-object", err, sizeof err);
    CHECK(a && b && !strcmp(a, b));
    free(a);
    free(b);

    /* numbers print as Python prints them */
    expect_ok("[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":"
              "{\"a\":1e16,\"b\":1e15,\"c\":0.0001,\"d\":1e-5,\"e\":-0.0,\"f\":100.0,\"g\":0.1,\"h\":1.5e300,"
              "\"i\":-7,\"j\":2.5e-7,\"k\":123456789.125}}}]}]",
              NULL,
              "<bos><|turn>model\n<|tool_call>call:f{a:1e+16,b:1000000000000000.0,c:0.0001,d:1e-05,e:-0.0,f:100.0,"
              "g:0.1,h:1.5e+300,i:-7,j:2.5e-07,k:123456789.125}<tool_call|><|tool_response>");

    /* empty conversation; OpenAI request-body form; tools in the body */
    expect_ok("[]", NULL, "<bos>" GP);
    expect_ok("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"function\":{\"name\":\"t\"}}]}", NULL,
              "<bos><|turn>system\n<|tool>declaration:t{description:" Q Q "}<tool|><turn|>\n<|turn>user\nx<turn|>\n" GP);

    /* legacy Gemma form: tool_responses on the assistant message */
    expect_ok("[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":"
              "\"f\",\"arguments\":null}}],\"tool_responses\":[{\"name\":\"f\",\"response\":{\"b\":[1,\"x\"],\"A\":null}},"
              "{\"response\":7}]}]",
              NULL,
              "<bos><|turn>user\nq<turn|>\n<|turn>model\n<|tool_call>call:f{}<tool_call|><|tool_response>response:f{A:null,"
              "b:[1," Q "x" Q "]}<tool_response|><|tool_response>response:unknown{value:7}<tool_response|>");

    /* Unicode white space is trimmed (Python str.strip) */
    expect_ok("[{\"role\":\"user\",\"content\":\"\\u3000\\u00a0 hi \\u2003\\n\"}]", NULL, "<bos><|turn>user\nhi<turn|>\n" GP);

    /* a tool message with no preceding tool call is dropped, as the template does */
    expect_ok("[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"tool\",\"content\":\"r\"}]", NULL,
              "<bos><|turn>user\na<turn|>\n" GP);

    /* nesting: a 10-deep schema renders, a 100-deep schema / argument is refused */
    char big[8192];
    for (int depth = 10; depth <= 100; depth += 90) {
        size_t n = (size_t)snprintf(big, sizeof big, "[{\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":");
        for (int i = 0; i < depth; i++) n += (size_t)snprintf(big + n, sizeof big - n, "{\"p\":{\"type\":\"object\",\"properties\":");
        n += (size_t)snprintf(big + n, sizeof big - n, "{}");
        for (int i = 0; i < depth; i++) n += (size_t)snprintf(big + n, sizeof big - n, "}}");
        snprintf(big + n, sizeof big - n, "}}}]");
        char *out = NULL;
        g4_status st = r("[]", big, &out, err, sizeof err);
        if (depth == 10) CHECKF(st == G4_OK, "10-deep schema: %s", err);
        else {
            CHECK(st == G4_ERR_INVALID);
            CHECKF(strstr(err, "deeper than 64") && strstr(err, "tools[0]"), "%s", err);
        }
        free(out);
    }
    {
        size_t n = (size_t)snprintf(big, sizeof big, "[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":{\"a\":");
        for (int i = 0; i < 100; i++) n += (size_t)snprintf(big + n, sizeof big - n, "[");
        for (int i = 0; i < 100; i++) n += (size_t)snprintf(big + n, sizeof big - n, "]");
        snprintf(big + n, sizeof big - n, "}}}]}]");
        expect_err(G4_ERR_INVALID, big, NULL, "messages[0].tool_calls[0].function.arguments", "deeper than 64");
    }
}

static void errors(void)
{
    expect_err(G4_ERR_INVALID, "[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"robot\",\"content\":\"b\"}]", NULL,
               "messages[1].role", "unknown role 'robot'");
    expect_err(G4_ERR_INVALID, "[{\"content\":\"b\"}]", NULL, "messages[0].role", "missing");
    expect_err(G4_ERR_INVALID, "[{\"role\":5}]", NULL, "messages[0].role", "expected a string");
    expect_err(G4_ERR_INVALID, "[\"hello\"]", NULL, "messages[0]", "expected an object");
    expect_err(G4_ERR_INVALID,
               "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"tool_calls\":[{\"function\":"
               "{\"name\":\"f\",\"arguments\":\"{\\\"a\\\": 1,\"}}]}]",
               NULL, "messages[1].tool_calls[0].function.arguments", "malformed JSON");
    expect_err(G4_ERR_INVALID,
               "[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"[1,2]\"}}]}]", NULL,
               "messages[0].tool_calls[0].function.arguments", "expected an object");
    expect_err(G4_ERR_INVALID, "[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\"}}]}]", NULL,
               "messages[0].tool_calls[0].function.arguments", "missing");
    expect_err(G4_ERR_INVALID, "[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"arguments\":{}}}]}]", NULL,
               "messages[0].tool_calls[0].function.name", NULL);
    expect_err(G4_ERR_INVALID, "[{\"role\":\"assistant\",\"tool_calls\":{\"a\":1}}]", NULL, "messages[0].tool_calls",
               "expected an array");
    expect_err(G4_ERR_INVALID, "[{\"role\":\"user\",\"content\":{\"text\":\"hi\"}}]", NULL, "messages[0].content",
               "got an object");
    expect_err(G4_ERR_INVALID, "[{\"role\":\"user\",\"content\":42}]", NULL, "messages[0].content", "got a number");
    expect_err(G4_ERR_INVALID, "[{\"role\":\"user\",\"content\":[{\"type\":\"file\"}]}]", NULL,
               "messages[0].content[0].type", "unknown part type 'file'");
    expect_err(G4_ERR_INVALID, "[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]", NULL,
               "messages[0].content[0].text", NULL);
    expect_err(G4_ERR_INVALID, "[{\"role\":\"user\",\"content\":[\"hi\"]}]", NULL, "messages[0].content[0]",
               "expected an object");
    expect_err(G4_ERR_INVALID, "[{\"role\":\"assistant\",\"reasoning_content\":[1]}]", NULL,
               "messages[0].reasoning_content", NULL);
    expect_err(G4_ERR_INVALID, "[{\"role\":\"tool\",\"tool_call_id\":3}]", NULL, "messages[0].tool_call_id", NULL);
    expect_err(G4_ERR_INVALID, "[]", "{\"function\":{\"name\":\"f\"}}", "tools", "expected an array");
    expect_err(G4_ERR_INVALID, "[]", "[{\"function\":{\"description\":\"d\"}}]", "tools[0].function.name", NULL);
    expect_err(G4_ERR_INVALID, "[]", "[{\"type\":\"function\",\"name\":\"f\"}]", "tools[0].function", NULL);
    expect_err(G4_ERR_INVALID, "[]",
               "[{\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":"
               "\"object\",\"properties\":{},\"required\":\"x\"}}}}}]",
               "tools[0].function.parameters.properties.x.required", "expected an array");
    expect_err(G4_ERR_INVALID, "{\"model\":\"x\"}", NULL, "messages", "no \"messages\"");
    expect_err(G4_ERR_INVALID, "42", NULL, "messages", "expected an array");
    expect_err(G4_ERR_FORMAT, "[{\"role\":\"user\",\n \"content\": \"a\",,}]", NULL, "line 2", "column");
    expect_err(G4_ERR_FORMAT, "[]", "[{,", "tools: invalid JSON", "line 1");

    char err[64], *out = NULL;
    CHECK(g4_chat_render(NULL, NULL, NULL, &out, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_chat_render("[]", NULL, NULL, NULL, err, sizeof err) == G4_ERR_INVALID);
    CHECK(g4_chat_render("[]", NULL, NULL, &out, NULL, 0) == G4_OK); /* NULL params = defaults */
    CHECK(out && !strcmp(out, "<bos>" GP));
    free(out);
    char tiny[8]; /* a short err buffer truncates, never overflows */
    CHECK(g4_chat_render("[{\"role\":\"nobody\"}]", NULL, NULL, &out, tiny, sizeof tiny) == G4_ERR_INVALID);
    CHECK(strlen(tiny) < sizeof tiny);
}

/* Hostile input: prefixes and byte mutations must never crash. */
static void hostile(const char *dir)
{
    static const char *const bases[] = { "09-parallel-tool-calls", "08-tools-nested-schema", "16-consecutive-assistants" };
    unsigned seed = 12345;
    int rendered = 0, refused = 0;
    for (size_t b = 0; b < sizeof bases / sizeof *bases; b++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s.messages.json", dir, bases[b]);
        size_t mlen;
        char *m = read_all(p, &mlen);
        snprintf(p, sizeof p, "%s/%s.tools.json", dir, bases[b]);
        char *t = read_all(p, NULL);
        if (!m) { CHECKF(0, "cannot read %s", bases[b]); free(t); continue; }
        for (size_t cut = 0; cut < mlen; cut += 7) {
            char *pre = strndup(m, cut), *out = NULL, err[256];
            g4_status st = r(pre, t, &out, err, sizeof err);
            if (st == G4_OK) rendered++; else refused++;
            free(out);
            free(pre);
        }
        for (int k = 0; k < 700; k++) {
            char *mut = strdup(m), *out = NULL, err[256];
            for (int f = 0; f < 3; f++) {
                seed = seed * 1103515245u + 12345u;
                size_t at = (seed >> 8) % mlen;
                seed = seed * 1103515245u + 12345u;
                char c = (char)(" {}[]\",:0a\\ntrue"[(seed >> 8) % 16]);
                mut[at] = c;
            }
            g4_status st = r(mut, t, &out, err, sizeof err);
            if (st == G4_OK) rendered++; else refused++;
            free(out);
            free(mut);
        }
        free(m);
        free(t);
    }
    CHECKF(rendered > 0 && refused > 0, "hostile: %d rendered, %d refused", rendered, refused);
}

int main(void)
{
    const char *dir = find_cases();
    if (!dir) {
        fprintf(stderr, "test_chat: cannot find the golden conversations (tests/chat) from the working directory; "
                        "run from the build directory or the source root, or set G4_CHAT_CASES\n");
        tu_failed++;
        return tu_finish("chat");
    }
    int n = golden(dir);
    CHECKF(n >= 12, "only %d golden conversations in %s", n, dir);
    properties(dir);
    errors();
    hostile(dir);
    return tu_finish("chat");
}
