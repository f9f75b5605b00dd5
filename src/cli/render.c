/* render.c - `gemma4 render`: a chat conversation (OpenAI JSON) to the Gemma 4
 * prompt text, printed byte for byte (a verification interface; see
 * docs/chat-template.md).  Needs no model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "gemma4.h"

static void render_usage(FILE *f)
{
    fprintf(f,
            "usage: gemma4 render --messages FILE.json [--tools FILE.json] [--think]\n"
            "                     [--no-generation-prompt] [--preserve-thinking]\n"
            "\n"
            "Prints the prompt text that Gemma 4's official chat template (12B/26B/31B)\n"
            "makes of the conversation, exactly, starting with <bos>.\n"
            "  --messages FILE   a JSON array of messages, or {\"messages\": [...], \"tools\": [...]}\n"
            "  --tools FILE      a JSON array of OpenAI function tools\n"
            "  --think           thinking on (<|think|> in the system turn)\n"
            "  --no-generation-prompt   do not open the model turn at the end\n"
            "  --preserve-thinking      keep reasoning of earlier tool-call turns\n");
}

int cmd_render(int argc, char **argv)
{
    const char *cmd = "render", *mpath = NULL, *tpath = NULL;
    g4_chat_params p = g4_chat_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { render_usage(stdout); return 0; }
        else if (!strcmp(a, "--messages")) { if (!(mpath = cli_value(cmd, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "--tools")) { if (!(tpath = cli_value(cmd, argc, argv, &i))) return EXIT_USAGE; }
        else if (!strcmp(a, "--think")) p.enable_thinking = true;
        else if (!strcmp(a, "--no-generation-prompt")) p.add_generation_prompt = false;
        else if (!strcmp(a, "--preserve-thinking")) p.preserve_thinking = true;
        else { cli_error(cmd, "unknown option '%s' (gemma4 render --help)", a); return EXIT_USAGE; }
    }
    if (!mpath) { cli_error(cmd, "--messages FILE.json is required"); return EXIT_USAGE; }

    const uint64_t max_bytes = 256u << 20;
    char *mtext = cli_read_file(cmd, mpath, max_bytes);
    if (!mtext) return 1;
    char *ttext = NULL;
    if (tpath && !(ttext = cli_read_file(cmd, tpath, max_bytes))) { free(mtext); return 1; }

    char err[512], *out = NULL;
    g4_status st = g4_chat_render(mtext, ttext, &p, &out, err, sizeof err);
    free(mtext);
    free(ttext);
    if (st != G4_OK) {
        /* name the file whose JSON did not parse, else the messages file */
        cli_error(cmd, "%s: %s", (tpath && !strncmp(err, "tools", 5)) ? tpath : mpath, err);
        return 1;
    }
    size_t n = strlen(out);
    int rc = fwrite(out, 1, n, stdout) == n && fflush(stdout) == 0 ? 0 : 1;
    if (rc) cli_error(cmd, "write error on standard output");
    free(out);
    return rc;
}
