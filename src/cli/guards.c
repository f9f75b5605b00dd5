/* guards.c - loop guards shared by `gemma4 run` and `gemma4 chat` (guards.h). */
#include "cli/guards.h"

#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

guard_opts guard_default_opts(void)
{
    guard_opts o = { .max_tokens = 2048, .max_thinking = 1024, .reps = 4 };
    return o;
}

int guard_parse_opt(const char *cmd, guard_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *v;
    if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) {
        if (!(v = cli_value(cmd, argc, argv, i)) || !cli_parse_i64(cmd, a, v, -1, INT32_MAX, &o->max_tokens)) return -1;
        return 1;
    }
    if (!strcmp(a, "--max-thinking")) {
        if (!(v = cli_value(cmd, argc, argv, i)) || !cli_parse_i64(cmd, a, v, -1, INT32_MAX, &o->max_thinking)) return -1;
        return 1;
    }
    if (!strcmp(a, "--repeat-guard")) {
        if (!(v = cli_value(cmd, argc, argv, i))) return -1;
        if (!strcmp(v, "off")) o->reps = 0;
        else if (!cli_parse_i64(cmd, a, v, 0, 1 << 16, &o->reps)) return -1;
        else if (o->reps == 1) {
            cli_error(cmd, "--repeat-guard: 1 repetition is no repetition (use 2 or more, or off)");
            return -1;
        }
        return 1;
    }
    return 0;
}

void guard_usage(FILE *f)
{
    fprintf(f,
        "loop guards (each prints one stderr line when it fires):\n"
        "  -n, --max-tokens N    stop after N generated tokens (default 2048; -1 = until the\n"
        "                        context is full)\n"
        "  --max-thinking N      close the thought after N thought tokens (default 1024;\n"
        "                        -1 = no budget)\n"
        "  --repeat-guard N      stop when the output ends with N repetitions of the same\n"
        "                        unit of 1..%d tokens (units under %d tokens must fill\n"
        "                        N x %d tokens); default 4, 'off' or 0 = off\n",
        GUARD_MAX_PERIOD, GUARD_MIN_UNIT, GUARD_MIN_UNIT);
}

bool guard_init(guard *g, const guard_opts *o, const g4_model *m)
{
    memset(g, 0, sizeof *g);
    g->o = *o;
    g->ch_open = g->ch_close = -1;
    int32_t tmp[4];
    size_t nt = 0;
    if (g4_tokenize(m, "<|channel>", 10, false, true, tmp, 4, &nt, NULL, 0) == G4_OK && nt == 1) g->ch_open = tmp[0];
    if (g4_tokenize(m, "<channel|>", 10, false, true, tmp, 4, &nt, NULL, 0) == G4_OK && nt == 1) g->ch_close = tmp[0];
    g->run = calloc(GUARD_MAX_PERIOD + 1, sizeof *g->run);
    return g->run != NULL;
}

void guard_free(guard *g)
{
    free(g->run);
    free(g->toks);
    g->run = NULL;
    g->toks = NULL;
    g->n = g->cap = 0;
}

void guard_reset(guard *g, const int32_t *prompt, size_t n_prompt)
{
    g->in_thought = false;
    for (size_t i = 0; i < n_prompt; i++) {
        if (prompt[i] == g->ch_open) g->in_thought = true;
        else if (prompt[i] == g->ch_close) g->in_thought = false;
    }
    g->n_gen = g->n_thought = 0;
    g->period = 0;
    g->n = 0;
    if (g->run) memset(g->run, 0, (GUARD_MAX_PERIOD + 1) * sizeof *g->run);
}

guard_action guard_check(const guard *g)
{
    return g->o.max_tokens >= 0 && g->n_gen >= g->o.max_tokens ? GUARD_STOP_LIMIT : GUARD_CONTINUE;
}

/* Appends a token to the history; returns the shortest repeated period
 * found, or 0. */
static uint32_t rep_push(guard *g, int32_t t)
{
    if (!g->run) return 0;
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 1024;
        int32_t *nt = realloc(g->toks, cap * sizeof *nt);
        if (!nt) return 0;
        g->toks = nt;
        g->cap = cap;
    }
    g->toks[g->n] = t;
    uint32_t found = 0;
    for (uint32_t p = 1; p <= GUARD_MAX_PERIOD; p++) {
        if (p > g->n) { g->run[p] = 0; continue; }
        g->run[p] = g->toks[g->n - p] == t ? g->run[p] + 1 : 0;
        uint32_t unit = p < GUARD_MIN_UNIT ? GUARD_MIN_UNIT : p;
        if (!found && g->o.reps > 0 && g->run[p] + p >= (uint32_t)g->o.reps * unit) found = p;
    }
    g->n++;
    return found;
}

guard_action guard_on_token(guard *g, int32_t tok)
{
    g->n_gen++;
    bool close = false;
    if (tok == g->ch_open) { g->in_thought = true; g->n_thought = 0; }
    else if (tok == g->ch_close) g->in_thought = false;
    else if (g->in_thought && ++g->n_thought >= g->o.max_thinking && g->o.max_thinking >= 0 && g->ch_close >= 0) {
        close = true;
        g->in_thought = false;
    }
    uint32_t p = rep_push(g, tok);
    if (p) {
        g->period = p;
        return GUARD_STOP_REPETITION;
    }
    if (close) return GUARD_CLOSE_THOUGHT;
    return guard_check(g);
}

const char *guard_message(const guard *g, guard_action a, const char *cmd, char *buf, size_t len)
{
    switch (a) {
    case GUARD_CLOSE_THOUGHT:
        snprintf(buf, len, "gemma4 %s: thinking budget reached (--max-thinking %lld): closing the thought\n", cmd,
                 (long long)g->o.max_thinking);
        break;
    case GUARD_STOP_REPETITION:
        snprintf(buf, len, "gemma4 %s: stopped by the repetition guard: the last %u tokens repeat a unit of %u tokens"
                           " (--repeat-guard %lld; 'off' disables it)\n",
                 cmd, (unsigned)(g->run[g->period] + g->period), (unsigned)g->period, (long long)g->o.reps);
        break;
    case GUARD_STOP_LIMIT:
        snprintf(buf, len, "gemma4 %s: stopped at the token limit (-n %lld)\n", cmd, (long long)g->o.max_tokens);
        break;
    default:
        if (len) buf[0] = 0;
        break;
    }
    return buf;
}
