/*
 * tokenize.c - `gemma4 tokenize`: text to token ids (a verification
 * interface: the output format below is fixed; docs/tokenizer.md).
 *
 *   gemma4 tokenize -m MODEL [--no-parse-special] [--add-bos] [--pieces] (TEXT | --file F)
 *
 * TEXT: one line of output.  --file F: F is JSON Lines, each line one JSON
 * string; one output line per input line.  An output line is the ids
 * separated by single spaces (empty for no tokens).  With --pieces each
 * text instead gives one "id<TAB>piece" line per token followed by one
 * empty line, where piece is the token's vocabulary string with '\\' -> "\\\\",
 * newline -> "\\n", tab -> "\\t", CR -> "\\r" and other bytes < 0x20 and 0x7F
 * -> "\\xHH".  BOS only with --add-bos; specials in the text are parsed
 * unless --no-parse-special.  Invalid UTF-8 is an error naming the byte
 * offset (and, with --file, the line).  Exit status 0 ok, 1 error, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "gemma4.h"

#define CMD "tokenize"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: gemma4 tokenize -m MODEL [--no-parse-special] [--add-bos] [--pieces] (TEXT | --file F)\n"
        "\n"
        "Prints the token ids of TEXT on one line, separated by single spaces.\n"
        "  --file F            F is JSON Lines: each line one JSON string; one output line each\n"
        "  --add-bos           start with BOS (never twice)\n"
        "  --no-parse-special  control-token text such as \"<|turn>\" stays text\n"
        "                      (user-defined markers such as \"<|channel>\" are always parsed)\n"
        "  --pieces            per text: one \"id<TAB>piece\" line per token, then an empty line\n");
}

static void print_escaped(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\\') fputs("\\\\", stdout);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02X", c);
        else putchar(c);
    }
}

typedef struct {
    g4_model *m;
    bool add_bos, parse_special, pieces;
    int32_t *ids;
    size_t cap;
} tokctx;

/* 0 ok, 1 error (printed; `where` prefixes it). */
static int do_text(tokctx *c, const char *text, size_t len, const char *where)
{
    char err[256];
    size_t n = 0;
    if (c->cap < len + 1) {
        int32_t *p = realloc(c->ids, (len + 1) * sizeof *p);
        if (!p) { cli_error(CMD, "out of memory"); return 1; }
        c->ids = p;
        c->cap = len + 1;
    }
    g4_status st = g4_tokenize(c->m, text, len, c->add_bos, c->parse_special, c->ids, c->cap, &n, err, sizeof err);
    if (st != G4_OK) {
        cli_error(CMD, "%s%s", where, err);
        return 1;
    }
    if (c->pieces) {
        for (size_t i = 0; i < n; i++) {
            printf("%d\t", c->ids[i]);
            const char *s = g4_token_text(c->m, c->ids[i]);
            print_escaped(s ? s : "");
            putchar('\n');
        }
        putchar('\n');
    } else {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", c->ids[i]);
        putchar('\n');
    }
    return 0;
}

static int do_file(tokctx *c, const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) { cli_error(CMD, "cannot open %s", path); return 1; }
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    unsigned long lineno = 0;
    int rc = 0;
    while ((got = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        size_t n = (size_t)got;
        if (n && line[n - 1] == '\n') n--;
        if (n && line[n - 1] == '\r') n--;
        json_error_t je;
        json_t *j = json_loadb(line, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!j) {
            cli_error(CMD, "%s: line %lu, column %d: %s", path, lineno, je.column, je.text);
            rc = 1;
            break;
        }
        if (!json_is_string(j)) {
            cli_error(CMD, "%s: line %lu, column 1: expected a JSON string", path, lineno);
            json_decref(j);
            rc = 1;
            break;
        }
        char where[64];
        snprintf(where, sizeof where, "%s: line %lu: ", path, lineno);
        rc = do_text(c, json_string_value(j), json_string_length(j), where);
        json_decref(j);
        if (rc) break;
    }
    if (!rc && ferror(f)) { cli_error(CMD, "error reading %s", path); rc = 1; }
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *file = NULL, *text = NULL;
    tokctx c = { .parse_special = true };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (!(model = cli_value(CMD, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "--file")) { if (!(file = cli_value(CMD, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "--add-bos")) c.add_bos = true;
        else if (!strcmp(a, "--no-parse-special")) c.parse_special = false;
        else if (!strcmp(a, "--pieces")) c.pieces = true;
        else if (!strcmp(a, "--")) { if (i + 1 < argc && !text) text = argv[++i]; else { cli_error(CMD, "-- takes exactly one TEXT"); return EXIT_USAGE; } }
        else if (a[0] == '-' && a[1]) { cli_error(CMD, "unknown option %s (gemma4 tokenize --help)", a); return EXIT_USAGE; }
        else if (!text) text = a;
        else { cli_error(CMD, "give one TEXT (quote it)"); return EXIT_USAGE; }
    }
    if (!model) { usage(stderr); cli_error(CMD, "no model: give -m MODEL"); return EXIT_USAGE; }
    if ((text != NULL) == (file != NULL)) { cli_error(CMD, "give either TEXT or --file F"); return EXIT_USAGE; }
    char err[512];
    g4_model_params mp = g4_model_default_params();
    mp.n_threads = 1;
    if (g4_model_load(model, &mp, &c.m, err, sizeof err) != G4_OK) { cli_error(CMD, "%s", err); return 1; }
    int rc;
    if (!g4_vocab_size(c.m)) {
        size_t n;
        g4_tokenize(c.m, "", 0, false, false, NULL, 0, &n, err, sizeof err);
        cli_error(CMD, "%s: %s", model, err);
        rc = 1;
    } else {
        rc = file ? do_file(&c, file) : do_text(&c, text, strlen(text), "");
    }
    if (fflush(stdout) != 0) { cli_error(CMD, "error writing the output"); rc = 1; }
    free(c.ids);
    g4_model_free(c.m);
    return rc;
}
