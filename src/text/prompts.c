/*
 * prompts.c - the fixed task prompts Google recommends for Gemma 4's audio
 * input (model card "audio" section): transcription, and transcription
 * followed by translation.  Thinking must be off for them (users report
 * empty or looping reasoning otherwise).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemma4.h"

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 0;
    return 1;
}

char *g4_transcription_prompt(const char *language, const char *translate_to)
{
    const char *lang = (language && *language) ? language : "the original language";
    if (!name_ok(lang) || (translate_to && !name_ok(translate_to))) return NULL;
    char *out = NULL;
    int n;
    if (translate_to && *translate_to) {
        const char *fmt =
            "Transcribe the following speech segment in %s, then translate it into %s.\n"
            "When formatting the answer, first output the transcription in %s, then one newline, "
            "then output the string '%s: ', then the translation in %s.";
        n = snprintf(NULL, 0, fmt, lang, translate_to, lang, translate_to, translate_to);
        if (n < 0 || !(out = malloc((size_t)n + 1))) return NULL;
        snprintf(out, (size_t)n + 1, fmt, lang, translate_to, lang, translate_to, translate_to);
    } else {
        const char *fmt =
            "Transcribe the following speech segment in %s into %s text.\n\n"
            "Follow these specific instructions for formatting the answer:\n"
            "* Only output the transcription, with no newlines.\n"
            "* When transcribing numbers, write the digits, i.e. write 1.7 and not one point seven, "
            "and write 3 instead of three.";
        n = snprintf(NULL, 0, fmt, lang, lang);
        if (n < 0 || !(out = malloc((size_t)n + 1))) return NULL;
        snprintf(out, (size_t)n + 1, fmt, lang, lang);
    }
    return out;
}
