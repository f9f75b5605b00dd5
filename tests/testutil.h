/* testutil.h - a tiny assertion harness shared by the unit tests.
 * Each test binary ends with the plain line "N passed, N failed". */
#ifndef G4_TESTUTIL_H
#define G4_TESTUTIL_H
#include <stdio.h>

extern int tu_passed, tu_failed;

#define CHECK(cond) do { if (cond) tu_passed++; else { tu_failed++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECKF(cond, ...) do { if (cond) tu_passed++; else { tu_failed++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* Prints the summary line and returns the process exit code. */
int tu_finish(const char *suite);
#endif
