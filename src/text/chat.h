/*
 * chat.h - the Gemma 4 chat template, rendered natively (no Jinja engine).
 *
 * The public entry point is g4_chat_render() in gemma4.h (JSON text in,
 * prompt text out).  This header adds the same renderer on already-parsed
 * jansson values, for in-process callers such as the server, which hold the
 * request as a json_t already.  The rules are described in
 * docs/chat-template.md; the reference is Google's official large-model
 * template (12B / 26B-A4B / 31B, 2026-07-09, SHA-256 ae53464b...).
 */
#ifndef G4_TEXT_CHAT_H
#define G4_TEXT_CHAT_H

#include <jansson.h>

#include "gemma4.h"

/* Maximum nesting (schemas inside schemas, values inside values) that the
 * renderer follows; deeper input is refused with G4_ERR_INVALID. */
#define G4_CHAT_MAX_DEPTH 64

/* Renders `messages` (a JSON array of OpenAI-style messages) with `tools`
 * (a JSON array of OpenAI function tools, or NULL / JSON null).  Tool-call
 * `arguments` given as JSON strings are parsed and replaced in place by the
 * parsed object, so the caller's `messages` may be modified.  On success
 * *out is a malloc'd NUL-terminated string (the caller frees it).  On error
 * *out is NULL and err holds one line naming the message index and field. */
g4_status g4_chat_render_json(json_t *messages, const json_t *tools, const g4_chat_params *p,
                              char **out, char *err, size_t errlen);

#endif
