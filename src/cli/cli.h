/* cli.h - shared helpers of the gemma4 command-line tool (a client of gemma4.h). */
#ifndef G4_CLI_H
#define G4_CLI_H

#include <stdbool.h>
#include <stdint.h>

/* Exit codes: 0 ok, 1 runtime failure (model, I/O), 2 usage error. */
enum { EXIT_USAGE = 2 };

/* Prints "gemma4 CMD: message" to stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Strict integer parse of an option value: whole string, in [lo, hi]. */
bool cli_parse_i64(const char *cmd, const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);
/* The value after option argv[*i]; error when missing. */
const char *cli_value(const char *cmd, int argc, char **argv, int *i);
/* Parse "2,651,1000" / whitespace separated ids.  Returns count or -1. */
int64_t cli_parse_tokens(const char *cmd, const char *what, const char *text, int32_t **out);
/* Monotonic clock in seconds, for the timings the commands print. */
double cli_now_s(void);
/* Whole file into a NUL-terminated buffer; NULL with an error printed. */
char *cli_read_file(const char *cmd, const char *path, uint64_t max_bytes);
/* The same for binary data: *len = bytes read (a NUL follows them). */
char *cli_read_file_len(const char *cmd, const char *path, uint64_t max_bytes, size_t *len);

int cmd_bench(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_mmembed(int argc, char **argv);
int g4_cmd_make_test_model(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_transcribe(int argc, char **argv);

#endif
