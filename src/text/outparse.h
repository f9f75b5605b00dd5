/*
 * outparse.h - Gemma 4 output parser (internal header).
 *
 * The public API (g4_outparse_*) is declared in gemma4.h; this header adds
 * the limits and the marker table that the implementation and the tests
 * share.  See docs/output-parser.md for the grammar and the quirks handled.
 */
#ifndef G4_TEXT_OUTPARSE_H
#define G4_TEXT_OUTPARSE_H

#include <stddef.h>

#include "gemma4.h"

/* Hard ceiling of argument nesting ({} and [] together). */
#define G4_OUTPARSE_DEPTH_CAP 64
/* Default raw size of one tool call (marker to marker). */
#define G4_OUTPARSE_DEFAULT_MAX_CALL ((size_t)1 << 20)
/* Longest tool name accepted (bytes, after "call:"). */
#define G4_OUTPARSE_MAX_NAME 256
/* Longest bare scalar (number / true / false / null). */
#define G4_OUTPARSE_MAX_WORD 64
/* Size of the text-delta buffer: a longer run is emitted in several deltas. */
#define G4_OUTPARSE_TEXT_CHUNK 4096
/* Newlines held back at the end of a thought (dropped before <channel|>);
 * a longer run is emitted. */
#define G4_OUTPARSE_MAX_HELD_NL 256

/* The marker texts the parser recognises (literal special-token texts). */
typedef enum {
    G4_MK_CHANNEL_OPEN = 0, /* <|channel>        */
    G4_MK_CHANNEL_CLOSE,    /* <channel|>        */
    G4_MK_CALL_OPEN,        /* <|tool_call>      */
    G4_MK_CALL_CLOSE,       /* <tool_call|>      */
    G4_MK_RESP_OPEN,        /* <|tool_response>  */
    G4_MK_RESP_CLOSE,       /* <tool_response|>  */
    G4_MK_TURN_OPEN,        /* <|turn>           */
    G4_MK_TURN_CLOSE,       /* <turn|>           */
    G4_MK_STR,              /* <|"|>             */
    G4_MK_COUNT
} g4_marker;

/* Text of marker m (NUL-terminated). */
const char *g4_outparse_marker_text(g4_marker m);

#endif
