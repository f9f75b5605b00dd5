/*
 * cmp_logits - compare two float32 logits files (e.g. llama.cpp's and ours).
 *
 *   cmp-logits REF MINE --vocab N [--atol X] [--label TEXT]
 *
 * Both files are raw little-endian float32, row-major [rows][N] (what
 * llama-ref -o and `gemma4 logits -o` write).  Prints one line:
 *
 *   max|d| 3.1e-04 at row 17 token 311 (ref 1.2345 mine 1.2348)  mean|d| 2.0e-05
 *   argmax 99.67% (299/300)  rows 300  atol 1.0e-03  PASS
 *
 * "row" is the row index in the file (the position when the files hold every
 * position).  Exit status: 0 when max|d| <= atol; 1 when max|d| > atol, a
 * value is not finite (NaN/Inf in either file), the sizes differ or are not
 * whole rows; 2 on bad usage or unreadable files.
 *
 * The argmax agreement is informational only: with small random vocabularies
 * near-ties are common, so it never fails the comparison.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "cmp-logits"

static float *load(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, PROG ": cannot open %s: %s\n", path, strerror(errno));
        exit(2);
    }
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fprintf(stderr, PROG ": out of memory reading %s\n", path);
            exit(2);
        }
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) break;
        cap *= 2;
        buf = realloc(buf, cap);
    }
    if (ferror(f)) {
        fprintf(stderr, PROG ": cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    if (len % 4) {
        fprintf(stderr, PROG ": %s: %zu bytes is not a whole number of float32\n", path, len);
        exit(1);
    }
    *n = len / 4;
    /* little-endian bytes to host floats */
    float *out = malloc((*n ? *n : 1) * sizeof *out);
    if (!out) {
        fprintf(stderr, PROG ": out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < *n; i++) {
        const unsigned char *b = buf + 4 * i;
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        memcpy(&out[i], &u, 4);
    }
    free(buf);
    return out;
}

static void usage(void) {
    fprintf(stderr, "usage: " PROG " REF MINE --vocab N [--atol X] [--label TEXT]\n"
                    "  compares two float32 logits files [rows][N]; default atol 1e-3\n");
    exit(2);
}

static size_t argmax(const float *row, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

int main(int argc, char **argv) {
    const char *files[2] = {NULL, NULL};
    const char *label = NULL;
    long vocab = 0;
    double atol = 1e-3;
    int nf = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--vocab") && i + 1 < argc) {
            char *end;
            vocab = strtol(argv[++i], &end, 10);
            if (*end || vocab <= 0) usage();
        } else if (!strcmp(argv[i], "--atol") && i + 1 < argc) {
            char *end;
            atol = strtod(argv[++i], &end);
            if (*end || !(atol >= 0)) usage();
        } else if (!strcmp(argv[i], "--label") && i + 1 < argc) {
            label = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            usage();
        } else if (nf < 2) {
            files[nf++] = argv[i];
        } else {
            usage();
        }
    }
    if (nf != 2 || vocab <= 0) usage();
    const char *lab = label ? label : "";
    const char *sep = label ? ": " : "";

    size_t na, nb;
    float *a = load(files[0], &na);
    float *b = load(files[1], &nb);
    if (na != nb) {
        fprintf(stderr, PROG ": %s%ssize differs: %s has %zu floats, %s has %zu\n", lab, sep,
                files[0], na, files[1], nb);
        return 1;
    }
    if (na == 0 || na % (size_t)vocab) {
        fprintf(stderr, PROG ": %s%s%zu floats is not a whole number (>= 1) of rows of %ld\n", lab,
                sep, na, vocab);
        return 1;
    }
    const size_t V = (size_t)vocab, rows = na / V;

    size_t bad_a = 0, bad_b = 0, first_bad = (size_t)-1;
    double max_d = 0, sum_d = 0;
    size_t at = 0, agree = 0;
    for (size_t r = 0; r < rows; r++) {
        const float *ra = a + r * V, *rb = b + r * V;
        for (size_t j = 0; j < V; j++) {
            int fa = isfinite(ra[j]) != 0, fb = isfinite(rb[j]) != 0;
            if (!fa || !fb) {
                bad_a += !fa;
                bad_b += !fb;
                if (first_bad == (size_t)-1) first_bad = r * V + j;
                continue;
            }
            double d = fabs((double)ra[j] - (double)rb[j]);
            sum_d += d;
            if (d > max_d) {
                max_d = d;
                at = r * V + j;
            }
        }
        agree += argmax(ra, V) == argmax(rb, V);
    }
    if (bad_a || bad_b) {
        fprintf(stderr,
                PROG ": %s%snon-finite values: %zu in %s, %zu in %s (first at row %zu token %zu)\n",
                lab, sep, bad_a, files[0], bad_b, files[1], first_bad / V, first_bad % V);
        printf("%s%snon-finite values  FAIL\n", lab, sep);
        return 1;
    }
    const int pass = max_d <= atol;
    printf("%s%smax|d| %.3e at row %zu token %zu (ref %.6g mine %.6g)  mean|d| %.3e  "
           "argmax %.2f%% (%zu/%zu)  rows %zu  atol %.1e  %s\n",
           lab, sep, max_d, at / V, at % V, (double)a[at], (double)b[at], sum_d / (double)na,
           100.0 * (double)agree / (double)rows, agree, rows, rows, atol, pass ? "PASS" : "FAIL");
    free(a);
    free(b);
    return pass ? 0 : 1;
}
