/* util.c - argument parsing helpers for the CLI; every bad value gets an
 * error naming the option and the value. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gemma4 %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool cli_parse_i64(const char *cmd, const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] == 0 || *end != 0 || errno == ERANGE || isspace((unsigned char)s[0])) {
        cli_error(cmd, "%s: '%s' is not an integer", opt, s);
        return false;
    }
    if (v < lo || v > hi) {
        cli_error(cmd, "%s: %lld is out of range [%lld, %lld]", opt, v, (long long)lo, (long long)hi);
        return false;
    }
    *out = v;
    return true;
}

const char *cli_value(const char *cmd, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        cli_error(cmd, "option %s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int64_t cli_parse_tokens(const char *cmd, const char *what, const char *text, int32_t **out)
{
    size_t cap = 64, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) { cli_error(cmd, "out of memory"); return -1; }
    const char *p = text;
    for (;;) {
        while (*p == ',' || isspace((unsigned char)*p)) p++;
        if (!*p) break;
        const char *start = p;
        while (*p && *p != ',' && !isspace((unsigned char)*p)) p++;
        char buf[32];
        size_t len = (size_t)(p - start);
        if (len >= sizeof buf) {
            cli_error(cmd, "%s: token '%.20s...' is not a token id", what, start);
            free(ids);
            return -1;
        }
        memcpy(buf, start, len);
        buf[len] = 0;
        char *end;
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        if (*end != 0 || errno == ERANGE || v < 0 || v > INT32_MAX) {
            cli_error(cmd, "%s: '%s' (token %zu) is not a valid token id", what, buf, n);
            free(ids);
            return -1;
        }
        if (n == cap) {
            int32_t *g = realloc(ids, 2 * cap * sizeof *ids);
            if (!g) { free(ids); cli_error(cmd, "out of memory"); return -1; }
            ids = g;
            cap *= 2;
        }
        ids[n++] = (int32_t)v;
    }
    *out = ids;
    return (int64_t)n;
}

char *cli_read_file(const char *cmd, const char *path, uint64_t max_bytes)
{
    size_t len;
    return cli_read_file_len(cmd, path, max_bytes, &len);
}

char *cli_read_file_len(const char *cmd, const char *path, uint64_t max_bytes, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) { cli_error(cmd, "cannot open '%s': %s", path, strerror(errno)); return NULL; }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap > max_bytes) { cli_error(cmd, "'%s' is larger than %llu bytes", path, (unsigned long long)max_bytes); free(buf); buf = NULL; break; }
            char *g = realloc(buf, cap * 2);
            if (!g) { free(buf); buf = NULL; cli_error(cmd, "out of memory reading '%s'", path); break; }
            buf = g;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - 1 - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) { cli_error(cmd, "read error on '%s'", path); free(buf); buf = NULL; }
            break;
        }
    }
    fclose(f);
    if (buf) { buf[n] = 0; *len = n; }
    return buf;
}

double cli_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
