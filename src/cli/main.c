/* main.c - `gemma4` command dispatcher. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "gemma4.h"

int cmd_serve(int argc, char **argv);   /* src/server/serve.c */

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
    const char *later; /* not yet implemented: which capability brings it */
} command;

static const command commands[] = {
    { "info", cmd_info, "show architecture, hyperparameters, tensor types and memory of a GGUF model", NULL },
    { "logits", cmd_logits, "run token ids through the model and write float32 logits (verification)", NULL },
    { "make-test-model", g4_cmd_make_test_model, "write a random-weight Gemma 4 GGUF with the real layout", NULL },
    { "run", cmd_run, "generate text from a prompt", NULL },
    { "chat", cmd_chat, "interactive multi-turn chat (line editing, KV cache reuse)", NULL },
    { "tokenize", cmd_tokenize, "text to token ids (verification)", NULL },
    { "render", cmd_render, "render a chat conversation to the prompt text (verification)", NULL },
    { "serve", cmd_serve, "OpenAI-compatible HTTP server (docs/server.md)", NULL },
    { "transcribe", cmd_transcribe, "speech to text (audio files, any length, in pieces of at most 30 s)", NULL },
    { "mmembed", cmd_mmembed, "image/audio soft-token embeddings (verification)", NULL },
    { "bench", cmd_bench, "prompt/generation speed (pp/tg tokens/s, load time, peak RSS)", NULL },
    { "quantize", cmd_quantize, "convert a GGUF to another weight type", "the CPU speed work" },
};

static void usage(FILE *f)
{
    fprintf(f, "gemma4 %s - Gemma 4 inference on the CPU\n\nusage: gemma4 COMMAND [options]   (gemma4 COMMAND --help for details)\n\n", GEMMA4_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-16s %s%s\n", commands[i].name, commands[i].help, commands[i].fn ? "" : " [not implemented yet]");
}

int main(int argc, char **argv)
{
    if (argc < 2) { usage(stderr); return EXIT_USAGE; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version")) { printf("gemma4 %s\n", GEMMA4_VERSION); return 0; }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        if (!commands[i].fn) {
            fprintf(stderr, "gemma4 %s: not implemented yet (comes with %s)\n", argv[1], commands[i].later);
            return EXIT_USAGE;
        }
        return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "gemma4: unknown command '%s' (gemma4 --help lists them)\n", argv[1]);
    return EXIT_USAGE;
}
