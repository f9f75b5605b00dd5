/*
 * tokenize-bench - tokenizer speed: model load (tokenizer build) time and
 * tokenization throughput in MB/s on a deterministic mixed-script text.
 *
 *   tokenize-bench -m MODEL [--mb N] [--file F]
 *
 * Prints measurements only (no pass/fail).  The default text is about N MB
 * (default 1) of English, code, CJK, Cyrillic, emoji, whitespace and newline
 * runs; --file F tokenizes the bytes of F instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemma4.h"
#include "gguf/gguf.h"
#include "text/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *file = NULL;
    double mb = 1.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-m")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--mb")) mb = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--file")) file = argv[i + 1];
    }
    if (!model || mb <= 0) { fprintf(stderr, "usage: tokenize-bench -m MODEL [--mb N] [--file F]\n"); return 2; }
    char err[512];
    g4_model *m;
    double t0 = now();
    g4_model_params mp = g4_model_default_params();
    mp.n_threads = 1;
    if (g4_model_load(model, &mp, &m, err, sizeof err)) { fprintf(stderr, "tokenize-bench: %s\n", err); return 1; }
    double t_load = now() - t0;
    /* the tokenizer build alone (metadata already parsed) */
    gguf_file *gf;
    double t_tok = -1;
    if (gguf_open(model, &gf, err, sizeof err) == 0) {
        t0 = now();
        g4_tokenizer *tk = g4_tokenizer_load(gf);
        t_tok = now() - t0;
        g4_tokenizer_free(tk);
        gguf_close(gf);
    }
    size_t len = 0;
    char *text;
    if (file) {
        FILE *f = fopen(file, "rb");
        if (!f) { fprintf(stderr, "tokenize-bench: cannot open %s\n", file); return 1; }
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, 0, SEEK_SET);
        text = malloc((size_t)sz + 1);
        if (!text || fread(text, 1, (size_t)sz, f) != (size_t)sz) { fprintf(stderr, "tokenize-bench: cannot read %s\n", file); return 1; }
        fclose(f);
        len = (size_t)sz;
    } else {
        static const char *const parts[] = {
            "The quick brown fox jumps over the lazy dog. ", "int main(void) { return 0; }\n",
            "你好，世界！这是一个测试。", "Привет, мир! ", "emoji 😀👍🏽 ", "\n\n", "    indented code\n",
            "{\"key\": [1, 2, 3]} ", "Größe und Straße ", "\t\ttabs ",
        };
        size_t want = (size_t)(mb * 1e6), cap = want + 256;
        text = malloc(cap);
        if (!text) return 1;
        uint64_t s = 1;
        while (len < want) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            const char *p = parts[(s >> 33) % (sizeof parts / sizeof parts[0])];
            size_t l = strlen(p);
            memcpy(text + len, p, l);
            len += l;
        }
    }
    int32_t *ids = malloc((len + 1) * sizeof *ids);
    size_t n = 0;
    if (!ids) return 1;
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        t0 = now();
        if (g4_tokenize(m, text, len, false, true, ids, len + 1, &n, err, sizeof err)) {
            fprintf(stderr, "tokenize-bench: %s\n", err);
            return 1;
        }
        double t = now() - t0;
        if (t < best) best = t;
    }
    printf("model load (incl. tokenizer build): %.1f ms; tokenizer build alone: %.1f ms (%u tokens)\n",
           t_load * 1e3, t_tok * 1e3, g4_vocab_size(m));
    printf("tokenized %.2f MB -> %zu tokens in %.1f ms: %.1f MB/s, %.2f Mtok/s (best of 3)\n",
           len / 1e6, n, best * 1e3, len / 1e6 / best, n / 1e6 / best);
    free(ids);
    free(text);
    g4_model_free(m);
    return 0;
}
