/*
 * guards.h - the loop guards shared by `gemma4 run` and `gemma4 chat`
 * (docs/run.md, "Loop guards"): a token limit (-n), a thinking budget
 * (--max-thinking: the thought is closed by feeding "<channel|>") and a
 * repetition guard (--repeat-guard: stop when the generated tokens end with
 * N repetitions of a unit of 1..GUARD_MAX_PERIOD tokens).  All on by
 * default; each is reported with one stderr line (guard_message) when it
 * fires.  The end of the context is left to the commands.
 */
#ifndef G4_CLI_GUARDS_H
#define G4_CLI_GUARDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gemma4.h"

#define GUARD_MAX_PERIOD 512   /* longest repeated unit the guard looks for */
#define GUARD_MIN_UNIT 8       /* units shorter than this count as this long */

typedef struct {
    int64_t max_tokens;     /* generated tokens per answer; -1 = no limit */
    int64_t max_thinking;   /* thought tokens before the forced close; -1 = none */
    int64_t reps;           /* repetitions that stop generation; 0 = off */
} guard_opts;

/* -n 2048, --max-thinking 1024, --repeat-guard 4. */
guard_opts guard_default_opts(void);
/* Parses the guard option at argv[*i] (-n/--max-tokens, --max-thinking,
 * --repeat-guard), advancing *i past its value.  1 parsed, 0 not a guard
 * option, -1 usage error (printed as "gemma4 CMD: ..."). */
int guard_parse_opt(const char *cmd, guard_opts *o, int argc, char **argv, int *i);
/* The "loop guards:" lines of --help. */
void guard_usage(FILE *f);

typedef enum {
    GUARD_CONTINUE,
    GUARD_CLOSE_THOUGHT,    /* feed "<channel|>" (guard.ch_close) now, and pass it to guard_on_token */
    GUARD_STOP_REPETITION,
    GUARD_STOP_LIMIT,
} guard_action;

typedef struct {
    guard_opts o;
    int32_t  ch_open, ch_close;   /* the thought markers' ids, -1 when not single tokens */
    /* per answer */
    bool     in_thought;
    int64_t  n_gen, n_thought;
    uint32_t period;              /* the repeated unit found */
    uint32_t *run;                /* run[p]: trailing tokens equal to the one p back */
    int32_t  *toks;
    size_t   n, cap;
} guard;

/* false when out of memory. */
bool guard_init(guard *g, const guard_opts *o, const g4_model *m);
void guard_free(guard *g);
/* Starts an answer: counters and history cleared; the thought state is
 * the one the prompt's last thought marker leaves. */
void guard_reset(guard *g, const int32_t *prompt, size_t n_prompt);
/* Before sampling: GUARD_STOP_LIMIT when the token limit is reached. */
guard_action guard_check(const guard *g);
/* A generated (non end-of-generation) token, or the forced close: counts
 * it and returns what to do (repetition first, then the thought budget,
 * then the limit). */
guard_action guard_on_token(guard *g, int32_t tok);
/* The report line (with its '\n') of an action other than GUARD_CONTINUE:
 * "gemma4 CMD: ...".  Returns buf. */
const char *guard_message(const guard *g, guard_action a, const char *cmd, char *buf, size_t len);

#endif
